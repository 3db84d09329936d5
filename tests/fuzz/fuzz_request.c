/* fuzz_request.c -- libFuzzer target: a whole HTTP request (method, URL
 * with query, headers, body) sent to a real region (RocksDB, fan-out
 * workers, the libmicrohttpd server and the router) over loopback TCP.
 *
 * An input is one request, as text:
 *
 *     METHOD SP URL LF  (NAME ":" VALUE LF)*  LF  BODY
 *
 * and the target sends it well-formed, so mutations reach the handlers
 * rather than stop in the HTTP parser: URL bytes outside visible ASCII are
 * sent %-escaped (the handlers see them decoded), header values lose
 * control characters, and the target sets Host, Content-Length and
 * Connection itself. "$TOKEN", "$USER", "$OTHER", "$POST" and "$ADMIN" are
 * replaced by a real token, user ids, a post id and the admin token, so
 * authenticated routes are reached too.
 *
 * Every answer must have a status from 100 to 599; every JSON answer must
 * parse (so it is valid UTF-8); every error answer must be JSON with
 * error.code and error.message, except the few libmicrohttpd sends itself
 * before any handler runs; and the region must still answer /health 200. */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(x, what)                                                                            \
    ((x) ? (void)0                                                                                 \
         : (fprintf(stderr, "check failed: %s (%s; errno %s)\n", #x, what, strerror(errno)),     \
            abort()))

#define ANSWER_MAX (1 << 20)
#define DEADLINE_MS 5000

static api_config cfg;
static api_ctx ctx;
static api_server *server;
static char datadir[] = "/tmp/df-fuzz-request-XXXXXX";
static char token[128], user[STG_ID_MAX + 1], other[STG_ID_MAX + 1], post[STG_ID_MAX + 1];
static const char *admin = "fuzz-admin-token";

typedef struct answer {
    int status;
    char type[64];
    const char *body;
    size_t body_len;
    bool stream; /* text/event-stream: only its headers were read */
    char buf[ANSWER_MAX + 1];
} answer;

static answer ans;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads the answer on fd until the server closes it (every request says
 * Connection: close) or, for an event stream, until its headers are in. */
static void read_answer(int fd, answer *a)
{
    size_t n = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    memset(a, 0, offsetof(answer, buf));
    for (;;) {
        uint64_t now = now_ms();
        CHECK(now < deadline, "the region did not answer in time");
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0) continue;
        ssize_t got = read(fd, a->buf + n, ANSWER_MAX - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        n += (size_t)got;
        a->buf[n] = '\0';
        CHECK(n < ANSWER_MAX, "answer too large");
        char *end = strstr(a->buf, "\r\n\r\n");
        if (end && strcasestr(a->buf, "\r\nContent-Type: text/event-stream") &&
            strcasestr(a->buf, "\r\nContent-Type: text/event-stream") < end) {
            a->stream = true;
            break;
        }
    }
    a->buf[n] = '\0';
    if (n == 0) return; /* status 0: no answer */
    CHECK(n >= 12 && memcmp(a->buf, "HTTP/1.", 7) == 0, "status line");
    a->status = atoi(a->buf + 9);
    char *end = strstr(a->buf, "\r\n\r\n");
    CHECK(end != NULL, "end of the headers");
    *end = '\0';
    const char *ct = strcasestr(a->buf, "\r\nContent-Type: ");
    if (ct) {
        ct += 16;
        size_t k = strcspn(ct, "\r");
        if (k >= sizeof a->type) k = sizeof a->type - 1;
        memcpy(a->type, ct, k);
    }
    a->body = end + 4;
    a->body_len = n - (size_t)(a->body - a->buf);
}

/* A loopback listener the target connects through: the server gets real
 * TCP sockets (as accepted ones), with a client address that is not
 * loopback, so no demo privilege applies. */
static int listener = -1;

static void listen_loopback(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener >= 0 && bind(listener, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(listener, 16) == 0,
          "listen on loopback");
}

/* Sends req (len bytes) on a new connection and reads the answer. */
static void exchange(const char *req, size_t len, answer *a)
{
    struct sockaddr_in at;
    socklen_t al = sizeof at;
    CHECK(getsockname(listener, (struct sockaddr *)&at, &al) == 0, "getsockname");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0, "socket");
    /* libFuzzer's timers send signals: a connect they interrupt goes on
     * in the background and is done when accept returns it. */
    CHECK(connect(c, (struct sockaddr *)&at, sizeof at) == 0 || errno == EINTR, "connect");
    int s;
    while ((s = accept(listener, NULL, NULL)) < 0 && errno == EINTR) continue;
    CHECK(s >= 0, "accept");
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(40000)};
    inet_pton(AF_INET, "192.0.2.1", &from.sin_addr);
    CHECK(api_server_add_connection(server, s, (struct sockaddr *)&from, sizeof from) == 0,
          "add connection");
    for (size_t off = 0; off < len;) {
        ssize_t w = write(c, req + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* the server answered early (413) and closed */
        off += (size_t)w;
    }
    read_answer(c, a);
    /* Reset, not closed: a TIME_WAIT per input would use up the loopback
     * ports in seconds. */
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(c);
}

static void simple(const char *method, const char *path, const char *auth, const char *body,
                   answer *a)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth ? "Authorization: Bearer " : "", auth ? auth : "",
                     auth ? "\r\n" : "", strlen(body), body);
    exchange(req, (size_t)n, a);
}

static void copy_field(const answer *a, const char *field, char *out, size_t cap)
{
    json_t *j = json_loadb(a->body, a->body_len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, field));
    CHECK(v && strlen(v) < cap, field);
    memcpy(out, v, strlen(v) + 1);
    json_decref(j);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void shut_down(void)
{
    api_streams_stop(ctx.streams);
    api_sessions_stop(ctx.sessions);
    api_server_stop(server);
    api_close(&ctx);
    api_config_free(&cfg);
    nftw(datadir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void start_region(void)
{
    json_set_alloc_funcs(xmalloc, free);
    CHECK(sodium_init() >= 0, "libsodium");
    signal(SIGPIPE, SIG_IGN);
    CHECK(mkdtemp(datadir) != NULL, "mkdtemp");
    setenv("DRIFTFEED_ADMIN_TOKEN", admin, 1);
    char *argv[] = {"driftfeed", "--region", "fuzz", "--data", datadir, "--log-level", "error",
                    "--rate-limit", "0", "--threads", "2", "--fanout-workers", "1", NULL};
    CHECK(api_config_parse(&cfg, (int)(sizeof argv / sizeof argv[0]) - 1, argv) == 0, "config");
    df_log_set_level(cfg.log_level);
    CHECK(api_open(&ctx, &cfg) == 0, "open the region");
    CHECK(api_server_start(&server, &ctx, false) == 0, "start the server");
    atexit(shut_down);
    listen_loopback();

    simple("POST", "/v1/users", NULL, "{\"name\":\"fuzzer\",\"display_name\":\"Fuzzer\"}", &ans);
    CHECK(ans.status == 201, "create the user");
    copy_field(&ans, "token", token, sizeof token);
    copy_field(&ans, "id", user, sizeof user);
    simple("POST", "/v1/users", NULL, "{\"name\":\"other\",\"display_name\":\"Other\"}", &ans);
    CHECK(ans.status == 201, "create the other user");
    copy_field(&ans, "id", other, sizeof other);
    simple("POST", "/v1/posts", token, "{\"text\":\"seeded\"}", &ans);
    CHECK(ans.status == 201, "create the post");
    copy_field(&ans, "id", post, sizeof post);
}

/* ---- Building the request ------------------------------------------------------------------ */

typedef struct out {
    char *p;
    size_t len, cap;
} out;

static void put(out *o, const void *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = xrealloc(o->p, o->cap);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* How put_text passes bytes on: as they are (a body), %XX-escaped outside
 * visible ASCII (a URL), or without control characters (a header value). */
enum { AS_IS, URL, HEADER };

/* Appends s[0..n) with the placeholders replaced. */
static void put_text(out *o, const char *s, size_t n, int how)
{
    static const struct {
        const char *name;
        const char *value;
    } subst[] = {{"$TOKEN", token}, {"$USER", user}, {"$OTHER", other}, {"$POST", post},
                 {"$ADMIN", NULL}};
    for (size_t i = 0; i < n; i++) {
        bool done = false;
        for (size_t k = 0; k < sizeof subst / sizeof subst[0] && !done; k++) {
            size_t kl = strlen(subst[k].name);
            if (n - i >= kl && memcmp(s + i, subst[k].name, kl) == 0) {
                puts_(o, subst[k].value ? subst[k].value : admin);
                i += kl - 1;
                done = true;
            }
        }
        if (done) continue;
        unsigned char c = (unsigned char)s[i];
        if (how == URL && (c <= 0x20 || c >= 0x7f)) {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            put(o, hex, 3);
        } else if (how == HEADER && ((c < 0x20 && c != '\t') || c == 0x7f)) {
            continue; /* not allowed in a header value */
        } else {
            put(o, &s[i], 1);
        }
    }
}

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The target's own headers; the input's copies are dropped. */
static bool reserved(const char *name, size_t n)
{
    static const char *own[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection",
                                "Expect"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strlen(own[i]) == n && strncasecmp(own[i], name, n) == 0) return true;
    return false;
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

#define ARGS_MAX 100

/* Builds the request from the input; returns whether it is a HEAD. */
static bool build(out *o, const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *eol = line_end(p, end);
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    size_t ml = 0;
    char method[17];
    for (const char *m = p; sp && m < sp && ml < 16; m++)
        if (tchar((unsigned char)*m)) method[ml++] = *m;
    if (ml == 0) memcpy(method, "GET", ml = 3);
    method[ml] = '\0';
    puts_(o, method);
    puts_(o, " ");
    const char *url = sp ? sp + 1 : p;
    if (url == eol) puts_(o, "/");
    /* At most ARGS_MAX query arguments: libmicrohttpd 0.9.75 keeps one
     * record per argument (empty ones too) in the connection's 16 KiB
     * pool, and past ~240 it has no room to answer: the connection closes
     * or hangs unanswered until --timeout. A known limit of the library,
     * bounded by the idle timeout and the per-address connection cap (see
     * README, Limits); cut here so the fuzzer looks past it. */
    const char *cut = url;
    for (int args = 0; cut < eol; cut++)
        if (*cut == '&' && ++args > ARGS_MAX) break;
    put_text(o, url, (size_t)(cut - url), URL);
    puts_(o, " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    p = eol < end ? eol + 1 : end;
    while (p < end && *p != '\n') {
        eol = line_end(p, end);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        size_t nl = colon ? (size_t)(colon - p) : 0;
        bool ok = nl > 0 && !reserved(p, nl);
        for (size_t i = 0; ok && i < nl; i++) ok = tchar((unsigned char)p[i]);
        if (ok) {
            put(o, p, nl + 1);
            put_text(o, colon + 1, (size_t)(eol - colon - 1), HEADER);
            puts_(o, "\r\n");
        }
        p = eol < end ? eol + 1 : end;
    }
    if (p < end) p++; /* the empty line */
    out body = {0};
    put_text(&body, p, (size_t)(end - p), AS_IS);
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n\r\n", body.len);
    puts_(o, cl);
    if (body.len) put(o, body.p, body.len);
    free(body.p);
    return strcmp(method, "HEAD") == 0;
}

/* ---- Checking the answer ------------------------------------------------------------------- */

/* libmicrohttpd answers these itself, in HTML, before a handler runs: a
 * request line or headers it cannot parse or hold. */
static bool from_libmicrohttpd(const answer *a)
{
    return (a->status == 400 || a->status == 414 || a->status == 431 || a->status == 505) &&
           a->body_len >= 6 && memcmp(a->body, "<html>", 6) == 0;
}

static void check_answer(const answer *a, bool head)
{
    CHECK(a->status >= 100 && a->status <= 599, "status");
    if (head || a->stream) return;
    bool json = strncmp(a->type, "application/json", 16) == 0;
    json_t *j = NULL;
    if (json) {
        json_error_t err;
        j = json_loadb(a->body, a->body_len, 0, &err);
        CHECK(j != NULL, "a JSON answer parses");
    }
    if (a->status >= 400 && !from_libmicrohttpd(a)) {
        CHECK(json, "an error answer is JSON");
        json_t *e = json_object_get(j, "error");
        CHECK(json_is_string(json_object_get(e, "code")), "error.code");
        CHECK(json_is_string(json_object_get(e, "message")), "error.message");
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    if (!started) {
        start_region();
        started = true;
    }
    out req = {0};
    bool head = build(&req, data, size);
    exchange(req.p, req.len, &ans);
    free(req.p);
    CHECK(ans.status != 0, "an answer");
    check_answer(&ans, head);
    simple("GET", "/health", NULL, "", &ans);
    CHECK(ans.status == 200, "the region still answers /health");
    return 0;
}
