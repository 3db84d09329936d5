/* limits.c -- rate limits: token buckets keyed by any string; the region's
 * write limit per token and signup limit per client address.
 *
 * Buckets live in a hash table split into stripes, each with its own
 * mutex; idle buckets (full again) are dropped when a stripe grows, so a
 * bucket that is not kept is the same as a full one. Buckets are in memory
 * only: a restart refills them all. */
#include "api.h"

#include <arpa/inet.h>
#include <assert.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64

typedef struct bucket {
    char key[API_LIMIT_KEY_MAX + 1];
    double tokens;
    uint64_t at_ms;
} bucket;

typedef struct stripe {
    pthread_mutex_t mu;
    bucket *b;
    size_t n, cap;
} stripe;

struct api_limiter {
    double per_ms;
    double burst;
    stripe s[STRIPES];
};

api_limiter *api_limiter_new(double per_s, double burst)
{
    assert(per_s > 0 && burst >= 1);
    api_limiter *l = xcalloc(1, sizeof *l);
    l->per_ms = per_s / 1000.0;
    l->burst = burst;
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&l->s[i].mu, NULL);
    return l;
}

void api_limiter_free(api_limiter *l)
{
    if (!l) return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&l->s[i].mu);
        free(l->s[i].b);
    }
    free(l);
}

/* Adds what accrued since b was last seen. A thread may bring a now read
 * before another thread's later one: time never runs backwards here. */
static void refill(const api_limiter *l, bucket *b, uint64_t now)
{
    if (now <= b->at_ms) return;
    b->tokens = fmin(l->burst, b->tokens + (double)(now - b->at_ms) * l->per_ms);
    b->at_ms = now;
}

/* key's bucket in s, made full if absent. The caller holds s->mu. */
static bucket *find(const api_limiter *l, stripe *s, const char *key, uint64_t now)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->b[i].key, key) == 0) return &s->b[i];
    if (s->n == s->cap) {
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
            refill(l, &s->b[i], now);
            if (s->b[i].tokens < l->burst) s->b[k++] = s->b[i];
        }
        s->n = k;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->b = xrealloc(s->b, s->cap * sizeof *s->b);
        }
    }
    bucket *b = &s->b[s->n++];
    snprintf(b->key, sizeof b->key, "%s", key);
    b->tokens = l->burst;
    b->at_ms = now;
    return b;
}

uint64_t api_limiter_take(api_limiter *l, const char *key, uint64_t now_ms)
{
    char k[API_LIMIT_KEY_MAX + 1];
    snprintf(k, sizeof k, "%s", key);
    stripe *s = &l->s[df_hash32(k, strlen(k)) % STRIPES];
    pthread_mutex_lock(&s->mu);
    bucket *b = find(l, s, k, now_ms);
    refill(l, b, now_ms);
    uint64_t wait = 0;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (uint64_t)ceil((1.0 - b->tokens) / l->per_ms);
    pthread_mutex_unlock(&s->mu);
    return wait;
}

/* ---- The region's limits ------------------------------------------------------------------ */

struct api_limits {
    api_limiter *writes; /* per user id; NULL = off */
    api_limiter *signups; /* per client address; NULL = off */
};

struct api_limits *api_limits_new(const api_config *cfg)
{
    struct api_limits *l = xcalloc(1, sizeof *l);
    if (cfg->rate_limit <= 0) return l; /* --rate-limit 0: every limit off */
    double burst = cfg->rate_burst > 0 ? cfg->rate_burst : fmax(2, cfg->rate_limit * 2);
    l->writes = api_limiter_new(cfg->rate_limit, burst);
    if (cfg->signup_rate > 0)
        l->signups = api_limiter_new(cfg->signup_rate / 60.0, cfg->signup_burst);
    return l;
}

void api_limits_free(struct api_limits *l)
{
    if (!l) return;
    api_limiter_free(l->writes);
    api_limiter_free(l->signups);
    free(l);
}

/* Takes a token from key's bucket in l; 429 with Retry-After (whole
 * seconds, rounded up: the next request then succeeds) itself if empty. */
static int take_or_429(api_req *r, api_limiter *l, const char *key, const char *what)
{
    uint64_t wait_ms = l ? api_limiter_take(l, key, df_mono_ms()) : 0;
    if (wait_ms == 0) return 0;
    int retry = (int)((wait_ms + 999) / 1000);
    api_error_retry(r, 429, "rate_limited", retry, "too many %s; retry in %d s", what, retry);
    return -1;
}

int api_rate_or_429(api_req *r)
{
    return take_or_429(r, r->ctx->limits ? r->ctx->limits->writes : NULL, r->user, "writes");
}

/* The signup key of r's client: its IPv4 address, or the /64 an IPv6
 * address is in (a single host is commonly given a whole /64). "" when
 * the connection has no address (all such clients share one bucket). */
static void client_key(api_req *r, char out[INET6_ADDRSTRLEN])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr) return;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
        inet_ntop(AF_INET, &in->sin_addr, out, INET6_ADDRSTRLEN);
    } else if (ci->client_addr->sa_family == AF_INET6) {
        struct in6_addr a = ((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], out, INET6_ADDRSTRLEN);
            return;
        }
        memset(&a.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &a, out, INET6_ADDRSTRLEN);
    }
}

int api_signup_rate_or_429(api_req *r)
{
    api_limiter *l = r->ctx->limits ? r->ctx->limits->signups : NULL;
    if (!l) return 0;
    char key[INET6_ADDRSTRLEN];
    client_key(r, key);
    return take_or_429(r, l, key, "signups from this address");
}
