/* http.c -- the libmicrohttpd server: request state, bodies, responses.
 *
 * DESIGN: the access handler is called several times per request. The
 * first call only allocates the request state (answering in the first
 * call would make libmicrohttpd 0.9.75 close keep-alive connections); the
 * upload calls append to a body capped at API_BODY_MAX (past it the request
 * is answered 413 at once, without buffering the rest); the last call
 * (no more upload data) routes and answers. Every answer carries the CORS
 * headers, so a page served by one region can call every region. */
#include "api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct api_server {
    struct MHD_Daemon *d;
    api_ctx *ctx;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int method_of(const char *m)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"};
    for (int i = 0; i < 6; i++)
        if (strcmp(m, names[i]) == 0) return i;
    return API_OTHER;
}

const char *api_header(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *api_query(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

size_t api_url_unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi = *p == '%' ? df_hex_digit(p[1]) : -1;
        int lo = hi >= 0 ? df_hex_digit(p[2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            *w++ = *p; /* not an escape, or %00: kept as it was sent */
            continue;
        }
        *w++ = (char)(hi << 4 | lo);
        p += 2;
    }
    *w = '\0';
    return (size_t)(w - s);
}

static size_t unescape_cb(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return api_url_unescape(s);
}

/* n bytes of a equal b without its trailing slashes. */
static bool same_url(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    while (m > 0 && b[m - 1] == '/') m--;
    return n == m && strncmp(a, b, n) == 0;
}

/* An Origin the admin routes answer: this region's --public-url, a region
 * URL of the cluster that this region or a peer's key vouches for, or a
 * loopback origin the request was sent to (its Host). */
static bool trusted_origin(api_req *r, const char *origin)
{
    size_t n = strlen(origin);
    const char *host = api_header(r, "Host");
    const char *rest = !strncmp(origin, "http://", 7) ? origin + 7
                       : !strncmp(origin, "https://", 8) ? origin + 8
                                                          : NULL;
    /* Same origin counts only for a loopback host: a name could be a
     * rebinding attacker's, pointed at this address. */
    bool loopback = rest && (!strncmp(rest, "127.", 4) || !strncmp(rest, "[::1]", 5) ||
                             !strncmp(rest, "localhost:", 10) || !strcmp(rest, "localhost"));
    if (loopback && host && strcmp(rest, host) == 0) return true;
    if (same_url(origin, n, r->ctx->cfg->public_url)) return true;
    repl_region_info info[32];
    size_t k = repl_cluster(r->ctx->rp, info, 32);
    for (size_t i = 0; i < k; i++)
        if (info[i].authenticated && same_url(origin, n, info[i].url)) return true;
    return false;
}

/* Every answer may be read by a page from anywhere, except the admin
 * routes': only by the cluster's own pages. */
static void add_common_headers(api_req *r, struct MHD_Response *resp)
{
    const char *origin = r->admin ? api_header(r, "Origin") : NULL;
    if (!r->admin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    } else if (origin && trusted_origin(r, origin)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    /* Named only where present: a connection's memory pool holds these
     * (api_server_start), and most answers have no Session-Token. */
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            MHD_get_response_header(resp, "Session-Token")
                                ? "Retry-After, Location, X-Request-Id, Session-Token, Acked-By"
                            : MHD_get_response_header(resp, "Link")
                                ? "Retry-After, Location, X-Request-Id, Link"
                                : "Retry-After, Location, X-Request-Id");
}

/* A client's X-Request-Id comes back on the answer (tracing, and how a
 * load generator pairs answers with requests): printable ASCII only. */
static void echo_request_id(api_req *r, struct MHD_Response *resp)
{
    const char *id = api_header(r, "X-Request-Id");
    if (!id) return;
    size_t n = 0;
    for (; id[n]; n++)
        if (n == 128 || id[n] < 0x20 || id[n] > 0x7e) return;
    MHD_add_response_header(resp, "X-Request-Id", id);
}

void api_send_response(api_req *r, int status, struct MHD_Response *resp)
{
    if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
        df_log(DF_LOG_WARN, "could not queue a %d answer for %s", status, r->path);
    MHD_destroy_response(resp);
    r->answered = true;
    api_metrics_observe(r->ctx->metrics, r->route, status, now_us() - r->start_us);
}

/* Queues resp for r (or hands it to a wait for acknowledgements) and
 * records the answer in the metrics. */
static void queue(api_req *r, int status, struct MHD_Response *resp)
{
    api_session_headers(r, status, resp);
    add_common_headers(r, resp);
    echo_request_id(r, resp);
    if (api_session_hold(r, status, resp))
        r->answered = true; /* sent, or sent once the acknowledgements are in */
    else
        api_send_response(r, status, resp);
}

void api_reply_response(api_req *r, int status, struct MHD_Response *resp)
{
    queue(r, status, resp);
}

void api_reply_raw(api_req *r, int status, const char *body, size_t len, const char *type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (type) MHD_add_response_header(resp, "Content-Type", type);
    queue(r, status, resp);
}

void api_reply_buf(api_req *r, int status, api_buf *b, const char *type)
{
    struct MHD_Response *resp =
        b->p ? MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    b->p = NULL;
    b->len = b->cap = 0;
    if (type) MHD_add_response_header(resp, "Content-Type", type);
    queue(r, status, resp);
}

static void release_held(void *ref) { df_cache_release(ref); }

void api_reply_held(api_req *r, const char *body, size_t len, df_cache_ref *ref)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        len, (void *)body, release_held, ref);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    queue(r, 200, resp);
}

void api_reply_json(api_req *r, int status, json_t *j)
{
    api_reply_json_with(r, status, j, NULL, NULL);
}

void api_reply_json_with(api_req *r, int status, json_t *j, const char *hname, const char *hval)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) {
        api_error(r, 500, "internal", "could not encode the response");
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (hname) MHD_add_response_header(resp, hname, hval);
    queue(r, status, resp);
}

void api_reply_empty(api_req *r, int status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    queue(r, status, resp);
}

/* The error body is built here byte by byte, never by jansson: a message
 * may quote what a client sent, and no bytes of it can make the answer
 * fail (api_buf_json_text escapes anything). */
static void reply_error_headers(api_req *r, int status, const char *code, const char *msg,
                                const char *hname, const char *hval)
{
    api_buf b = {0};
    if (r->dialect == API_DIALECT_MASTO) {
        api_buf_append(&b, "{\"error\":", 9);
        api_buf_json_string(&b, msg);
        api_buf_append(&b, "}", 1);
    } else if (r->dialect == API_DIALECT_OAUTH) {
        api_buf_append(&b, "{\"error\":", 9);
        api_buf_json_string(&b, code);
        api_buf_append(&b, ",\"error_description\":", 21);
        api_buf_json_string(&b, msg);
        api_buf_append(&b, "}", 1);
    } else {
        api_buf_append(&b, "{\"error\":{\"code\":", 17);
        api_buf_json_string(&b, code);
        api_buf_append(&b, ",\"message\":", 11);
        api_buf_json_string(&b, msg);
        api_buf_append(&b, "}}", 2);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (hname) MHD_add_response_header(resp, hname, hval);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    queue(r, status, resp);
}

static void verror(api_req *r, int status, const char *code, int retry_s, const char *fmt,
                   va_list ap)
{
    char msg[512], retry[16];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) /* cut: end on a character boundary */
        msg[api_utf8_cut(msg, sizeof msg - 1, sizeof msg - 1)] = '\0';
    snprintf(retry, sizeof retry, "%d", retry_s);
    reply_error_headers(r, status, code, msg, retry_s > 0 ? "Retry-After" : NULL, retry);
}

void api_error(api_req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, status == 503 || status == 429 ? 1 : 0, fmt, ap);
    va_end(ap);
}

void api_error_retry(api_req *r, int status, const char *code, int retry_s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, status, code, retry_s, fmt, ap);
    va_end(ap);
}

/* An error answer with one extra header (Allow, Retry-After). */
static void error_with(api_req *r, int status, const char *code, const char *msg, const char *hname,
                       const char *hval)
{
    reply_error_headers(r, status, code, msg, hname, hval);
}

void api_error_df(api_req *r, int err, const char *what)
{
    switch (err) {
    case DF_ENOTFOUND: api_error(r, 404, "not_found", "%s not found", what); break;
    case DF_EEXIST: api_error(r, 409, "conflict", "%s already exists", what); break;
    case DF_EBUSY:
        api_error(r, 503, "overloaded", "the server is overloaded; retry shortly");
        break;
    case DF_EINVAL: api_error(r, 400, "invalid", "invalid %s", what); break;
    case DF_EPERM: api_error(r, 403, "forbidden", "this %s is someone else's", what); break;
    default: api_error(r, 500, "internal", "%s: %s", what, df_strerror(err)); break;
    }
}

int api_query_digits(api_req *r, const char *name, long *v)
{
    const char *s = api_query(r, name);
    if (!s) return 0;
    /* Digits only: strtol alone would take " 5", "+5" and "-0". */
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 9 || s[n]) return -1;
    *v = strtol(s, NULL, 10);
    return 1;
}

int api_limit_or_400(api_req *r, int *limit)
{
    long v = 20;
    int rc = api_query_digits(r, "limit", &v);
    if (rc < 0 || v < 1 || v > 100) {
        api_error(r, 400, "invalid_limit", "limit must be an integer from 1 to 100");
        return -1;
    }
    *limit = (int)v;
    return 0;
}

const char *api_cursor(api_req *r)
{
    const char *c = api_query(r, "cursor");
    return c && *c ? c : NULL;
}

int api_body_or_4xx(api_req *r, api_decoder dec, void *out)
{
    const char *type = api_header(r, "Content-Type");
    if (!type || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] && type[16] != ';' && type[16] != ' ')) {
        api_error(r, 415, "unsupported_media_type", "the body must be application/json");
        return -1;
    }
    api_fail fail;
    if (dec(r->body, r->body_len, out, &fail) == 0) return 0;
    api_error(r, fail.status, fail.code, "%s", fail.message);
    return -1;
}

/* ---- The access handler -------------------------------------------------------------------- */

static void dispatch(api_req *r)
{
    const char *origin = r->admin ? api_header(r, "Origin") : NULL;
    if (origin && !trusted_origin(r, origin)) {
        /* A page elsewhere must not drive a region (demo mode trusts
         * loopback, and the browser would send the request from there). */
        api_error(r, 403, "forbidden_origin",
                  "admin routes answer only pages from this cluster's regions");
        return;
    }
    if (r->method == API_OPTIONS) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                "GET, POST, PUT, DELETE, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, "
                                "X-Request-Id, Session-Token, Session-Wait-Ms");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        queue(r, 204, resp);
        return;
    }
    const char *allow;
    int route = api_route_match(r, r->path, &allow);
    if (route == -1) {
        api_error(r, 404, "not_found", "no such resource");
        return;
    }
    if (route == -2) {
        error_with(r, 405, "method_not_allowed", "method not allowed here", "Allow", allow);
        return;
    }
    r->route = route;
    if (api_session_before(r) < 0) return; /* answered, or waiting for replication */
    api_route_call(r, route);
    if (!r->answered) api_error(r, 500, "internal", "no answer");
}

/* A request resumed after a session wait: it runs now, waits on, or was
 * answered (its held answer sent). */
static void resumed(api_req *r)
{
    if (api_session_resumed(r) < 0) return;
    api_route_call(r, r->route);
    if (!r->answered) api_error(r, 500, "internal", "no answer");
}

static enum MHD_Result check_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    const char **first = cls;
    if (strcasecmp(key, "Content-Length") != 0) return MHD_YES;
    if (!*first)
        *first = value;
    else if (strcmp(*first, value) != 0)
        *first = "";
    return MHD_YES;
}

/* libmicrohttpd uses the first of several Content-Length headers; two that
 * disagree are a request-smuggling pattern and must be refused (RFC 9112). */
static bool content_lengths_differ(struct MHD_Connection *conn)
{
    const char *first = NULL;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, check_length, &first);
    return first && !*first;
}

static void too_large(api_req *r)
{
    api_error(r, 413, "body_too_large", "the body is larger than %d bytes", API_BODY_MAX);
}

/* Room for need body bytes and a NUL. The first allocation takes the
 * declared Content-Length (body_cap), so a body arrives in one buffer of
 * its own size; a fixed API_BODY_MAX buffer per request cost a 64 KiB
 * malloc and free (and with it a consolidation of malloc's free lists)
 * for every post and message. need never exceeds API_BODY_MAX. */
static void body_reserve(api_req *r, size_t need)
{
    if (r->body && need <= r->body_cap) return;
    size_t cap = r->body ? 2 * r->body_cap : r->body_cap;
    if (cap < need) cap = need < 256 ? 256 : need;
    if (cap > API_BODY_MAX) cap = API_BODY_MAX;
    r->body = xrealloc(r->body, cap + 1);
    r->body_cap = cap;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    api_ctx *ctx = cls;
    api_req *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->conn = conn;
        r->ctx = ctx;
        r->method = method_of(method);
        r->path = xstrdup(url);
        r->admin = strncmp(url, "/v1/admin/", 10) == 0;
        r->sessions = !r->admin && strncmp(url, "/v1/", 4) == 0;
        r->dialect = !strncmp(url, "/api/", 5)     ? API_DIALECT_MASTO
                     : !strncmp(url, "/oauth/", 7) ? API_DIALECT_OAUTH
                                                   : API_DIALECT_V1;
        r->start_us = now_us();
        r->route = (int)api_route_count() - 1;
        *con_cls = r;
        /* A declared length over the cap is refused before any body is
         * read (this answer closes the connection, as it should). */
        const char *cl = api_header(r, "Content-Length");
        if (content_lengths_differ(conn))
            api_error(r, 400, "bad_request", "conflicting Content-Length headers");
        else if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
            too_large(r);
        else if (cl)
            r->body_cap = strtoull(cl, NULL, 10); /* a hint: body_reserve allocates it */
        return MHD_YES;
    }
    if (api_session_waiting(r)) {
        resumed(r);
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0; /* discard the rest of an over-long body */
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* libmicrohttpd cannot answer in the middle of an upload: past the
         * cap the rest is read and dropped, and the answer is 413. */
        if (r->body_too_large || r->body_len + *upload_data_size > API_BODY_MAX) {
            r->body_too_large = true;
            *upload_data_size = 0;
            return MHD_YES;
        }
        body_reserve(r, r->body_len + *upload_data_size);
        memcpy(r->body + r->body_len, upload_data, *upload_data_size);
        r->body_len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->body_too_large)
        too_large(r);
    else
        dispatch(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    api_req *r = *con_cls;
    if (!r) return;
    if (r->stream) api_stream_closed(r);
    api_session_done(r);
    free(r->body);
    free(r->path);
    free(r);
    *con_cls = NULL;
}

static void on_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    df_log(DF_LOG_ERROR, "libmicrohttpd: %s:%u %s", file, line, reason ? reason : "");
    abort();
}

int api_server_start(api_server **out, api_ctx *ctx, bool listen)
{
    const api_config *cfg = ctx->cfg;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->bind, &addr.sin_addr) != 1) {
        df_log(DF_LOG_ERROR, "bad bind address %s", cfg->bind);
        return DF_EINVAL;
    }
    MHD_set_panic_func(on_panic, NULL);
    api_server *s = xcalloc(1, sizeof *s);
    s->ctx = ctx;
    /* Each connection's memory pool holds a request's line and headers
     * (bodies stream through on_request) and the answer's headers.
     * libmicrohttpd clears the pool between the requests of a keep-alive
     * connection, so its size is paid on every request: 64 KiB cost ~9%
     * of a cached timeline read (A/B, 13.3 -> 12.0 us of CPU a request).
     * 16 KiB takes ~14 KB of headers; more is answered 431. */
    enum { POOL_BYTES = 16 * 1024 };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (listen ? 0 : MHD_USE_NO_LISTEN_SOCKET);
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, ctx,
                            MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, ctx,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_connections,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)POOL_BYTES,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL, MHD_OPTION_END);
    if (!s->d) {
        df_log(DF_LOG_ERROR, "could not listen on %s:%d", cfg->bind, cfg->port);
        free(s);
        return DF_EIO;
    }
    *out = s;
    return 0;
}

int api_server_add_connection(api_server *s, int fd, const struct sockaddr *addr,
                              unsigned addr_len)
{
    return MHD_add_connection(s->d, fd, addr, (socklen_t)addr_len) == MHD_YES ? 0 : DF_EIO;
}

void api_server_stop(api_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}
