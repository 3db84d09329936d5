/* util.c -- the shared error strings, memory policy, logging and clocks. */
#include "storage.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *df_strerror(int err)
{
    switch (err) {
    case DF_OK: return "ok";
    case DF_EIO: return "storage failure";
    case DF_ENOTFOUND: return "not found";
    case DF_EINVAL: return "invalid input";
    case DF_EEXIST: return "already exists";
    case DF_EBUSY: return "overloaded";
    case DF_ECORRUPT: return "corrupt record";
    case DF_ESTALE: return "stale version";
    case DF_ENET: return "network failure";
    case DF_EPERM: return "not permitted";
    case DF_EHELD: return "stripe held by this lock set";
    default: return "unknown error";
    }
}

static void oom(size_t n)
{
    fprintf(stderr, "driftfeed: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

int df_hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int log_level = DF_LOG_INFO;

void df_log_set_level(int level) { log_level = level; }

void df_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_level) return;
    char ts[32], line[1024];
    df_format_time(df_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s %s %s\n", ts, names[level & 3], line);
}

uint32_t df_hash32(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

void df_thread_name(const char *fmt, ...)
{
    char name[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pthread_setname_np(pthread_self(), name);
}

uint64_t df_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t df_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void df_format_time(uint64_t ms, char out[32])
{
    /* Hot (every timeline item): the date part is formatted once a second
     * per thread, the milliseconds by hand. */
    static __thread uint64_t cached_sec = UINT64_MAX;
    static __thread char prefix[32]; /* "YYYY-MM-DDTHH:MM:SS" */
    uint64_t sec = ms / 1000;
    if (sec != cached_sec) {
        time_t secs = (time_t)sec;
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(prefix, sizeof prefix, "%04u-%02u-%02uT%02u:%02u:%02u",
                 (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) % 100,
                 (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100,
                 (unsigned)tm.tm_sec % 100);
        cached_sec = sec;
    }
    unsigned m = (unsigned)(ms % 1000);
    memcpy(out, prefix, 19);
    out[19] = '.';
    out[20] = (char)('0' + m / 100);
    out[21] = (char)('0' + m / 10 % 10);
    out[22] = (char)('0' + m % 10);
    out[23] = 'Z';
    out[24] = '\0';
}
