/* api.h -- the HTTP/JSON API: configuration, the server, and what every
 * resource file uses to read a request and answer it.
 *
 * Threads: libmicrohttpd's internal pool (one thread per core, epoll) runs
 * the handlers. A handler reads and writes RocksDB directly and never waits
 * on Redis. Handlers answer through api_reply_* / api_error, which also
 * feed /metrics; helpers named *_or_4xx answer the error themselves and
 * return -1, so the handler just returns. */
#ifndef DF_API_H
#define DF_API_H

#include "feed.h"
#include "repl.h"
#include "storage.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

/* ---- Configuration (config.c) ------------------------------------------------ */
typedef struct api_config {
    char region[STG_ORIGIN_MAX + 1];
    char bind[64];
    int port;
    char data[512];
    char redis[256]; /* "" = standalone */
    char peers_raw[1024]; /* "newyork,tokyo" */
    char peer_redis_raw[2048]; /* "tokyo=10.0.0.3:6390,..." */
    char delays_raw[1024]; /* "newyork=40,tokyo=110" */
    char public_url[256];
    char web_dir[512];
    char admin_token[256]; /* from --admin-token-file or DRIFTFEED_ADMIN_TOKEN */
    char key_dir[512]; /* "" = the log is not authenticated */
    bool keygen; /* --keygen: create the region's key pair and exit */
    char drop_records[4096]; /* --drop-records: "kind:id,..." to take out, then exit */
    char redis_auth[512]; /* from --redis-auth-file */
    char peer_redis_auth_raw[2048]; /* "tokyo=/etc/df/tokyo.auth,..." */
    bool demo;
    bool sync;
    int cache_mb;
    int post_cache_mb;
    int memtable_mb;
    int page_cache_mb;
    int64_t clock_offset_ms;
    int linger_ms;
    int repair_interval_ms;
    int64_t retain_records, retain_s, tombstone_grace_s;
    int threads;
    int fanout_workers;
    int64_t large_threshold;
    int timeline_cap;
    uint64_t queue_max;
    int max_connections;
    int per_ip_connections;
    int timeout_s;
    double rate_limit; /* writes per second per token; 0 = every rate limit off */
    int rate_burst;
    int signup_rate; /* accounts per minute per client address; 0 = off */
    int signup_burst;
    int idem_window_s; /* how long an Idempotency-Key is remembered */
    int streams_per_user; /* open SSE streams per user; one more ends the oldest */
    int max_streams;      /* open SSE streams per region; past it 503 */
    int session_wait_ms, session_wait_max_ms; /* a Session-Token's wait: default, cap */
    int ack_wait_ms; /* ack=quorum|all wait at most this long, then 202 */
    int log_level;
    repl_config repl; /* derived from the above */
} api_config;

/* Fills cfg from argv (and --config FILE). Returns 0; 1 if --help was
 * printed; -1 on a bad flag (message on stderr). */
int api_config_parse(api_config *cfg, int argc, char **argv);
/* The usage text, made from the settings table (--help). */
void api_config_usage(FILE *out);
/* Frees what parsing allocated (the peer table). */
void api_config_free(api_config *cfg);
/* --drop-records (drop.c): takes the listed records out of cfg->data as if
 * the store had lost them. Returns 0, or -1 (reported on stderr). */
int api_drop_records(const api_config *cfg);

/* ---- The server (http.c) --------------------------------------------------------- */
typedef struct api_server api_server;

typedef struct api_ctx {
    const api_config *cfg;
    stg_db *db;
    feed *fd;
    repl *rp;
    struct api_streams *streams;
    struct api_sessions *sessions;
    struct api_metrics *metrics;
    struct api_limits *limits;
    df_cache *tokens; /* user id -> stored token hash (auth.c) */
    struct api_oauth *oauth; /* the region secret and pending codes (oauth.c) */
} api_ctx;

/* Opens the region's parts from cfg (which must outlive ctx) and starts
 * its threads; api_close stops and frees them (also a partly opened ctx). */
int api_open(api_ctx *ctx, const api_config *cfg);
void api_close(api_ctx *ctx);

/* Serves ctx over HTTP: on cfg->bind:cfg->port if listen, else only on
 * the connections handed to api_server_add_connection. */
int api_server_start(api_server **out, api_ctx *ctx, bool listen);
void api_server_stop(api_server *s); /* accepts NULL */
/* Serves one connected socket (taken: closed by the server), as if it had
 * been accepted from addr. */
struct sockaddr;
int api_server_add_connection(api_server *s, int fd, const struct sockaddr *addr,
                              unsigned addr_len);

/* ---- Requests ------------------------------------------------------------------------ */
#define API_BODY_MAX (64 * 1024)
#define API_MAX_PARAMS 3

enum { API_GET, API_POST, API_PUT, API_DELETE, API_OPTIONS, API_HEAD, API_OTHER };
/* Which API a request speaks, by its path: it decides the shape of errors
 * ({"error":{"code","message"}}, Mastodon's {"error":message}, or OAuth's
 * {"error":code,"error_description":message}). */
enum { API_DIALECT_V1, API_DIALECT_MASTO, API_DIALECT_OAUTH };
/* OAuth scopes a token carries; an account's own token carries them all. */
enum { API_SCOPE_READ = 1, API_SCOPE_WRITE = 2, API_SCOPE_FOLLOW = 4, API_SCOPE_ALL = 7 };

typedef struct api_req {
    struct MHD_Connection *conn;
    api_ctx *ctx;
    int method;
    char *path;
    char *body;
    size_t body_len, body_cap; /* body_cap: bytes allocated, without the NUL (before the
                                * first byte arrives: the declared Content-Length) */
    bool body_too_large;
    bool answered;
    bool admin; /* under /v1/admin/ (routing cuts path up) */
    int dialect; /* API_DIALECT_* */
    int route;
    uint64_t start_us;
    const char *params[API_MAX_PARAMS]; /* path parameters, decoded */
    char user[STG_ID_MAX + 1]; /* set by api_auth_or_401 */
    unsigned scopes; /* API_SCOPE_* of the token, set by api_auth_or_401 */
    struct api_stream *stream; /* set when the request is an SSE stream */
    bool sessions; /* a /v1 route that takes Session-Token and ?ack */
    struct api_session *session; /* what it asked of them, when anything (session.c) */
} api_req;

/* Decodes the %XX escapes of s in place (libmicrohttpd calls it for the
 * path and for every query key and value) and returns the new length.
 * %00 stays as the three characters it was: decoded, a NUL would end the
 * parameter early, and "DELETE /v1/posts/<id>%00x" deleted <id>. */
size_t api_url_unescape(char *s);

/* Request readers. */
const char *api_header(api_req *r, const char *name);
const char *api_query(api_req *r, const char *name);
/* Query parameter name as a number of at most 9 digits and nothing else:
 * 1 with *v set, 0 when absent (*v untouched), -1 otherwise. */
int api_query_digits(api_req *r, const char *name, long *v);
/* ?limit (1..100, default 20); answers 400 itself and returns -1. */
int api_limit_or_400(api_req *r, int *limit);
/* ?cursor, NULL when absent. */
const char *api_cursor(api_req *r);
/* Decodes the body with dec (one of api_decode_*): 415 unless the content
 * type is JSON, the decoder's 4xx if it fails. */
typedef struct api_fail {
    int status;
    char code[32];
    char message[192];
} api_fail;
typedef int (*api_decoder)(const char *buf, size_t len, void *out, api_fail *fail);
int api_body_or_4xx(api_req *r, api_decoder dec, void *out);

/* Responses. api_reply_json steals j. */
void api_reply_json(api_req *r, int status, json_t *j);
/* The same with one more header (hname NULL: none). */
void api_reply_json_with(api_req *r, int status, json_t *j, const char *hname, const char *hval);
void api_reply_raw(api_req *r, int status, const char *body, size_t len, const char *type);
void api_reply_empty(api_req *r, int status);
/* Answers with b's bytes, taking them (b is left empty). */
struct api_buf;
void api_reply_buf(api_req *r, int status, struct api_buf *b, const char *type);
/* Answers 200 with JSON held in a df_cache entry, released when sent. */
void api_reply_held(api_req *r, const char *body, size_t len, df_cache_ref *ref);
/* Sends resp as it is, headers and all (a held answer); takes resp. */
struct MHD_Response;
void api_send_response(api_req *r, int status, struct MHD_Response *resp);
/* Queues a response built by the caller (SSE); takes resp. */
void api_reply_response(api_req *r, int status, struct MHD_Response *resp);
void api_error(api_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with Retry-After: retry_s (429 and 503 from api_error get 1). */
void api_error_retry(api_req *r, int status, const char *code, int retry_s, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Maps a DF_E* code from storage to 404 / 409 / 503 / 500. */
void api_error_df(api_req *r, int err, const char *what);

/* The path parameter is the id of a live user here; 400/404 otherwise. */
/* 0 if id is a live user of this region, else -1 with 404 answered. */
int api_known_user_or_404(api_req *r, const char *id);
int api_user_param_or_4xx(api_req *r);

/* ---- Parameters of Mastodon and OAuth requests (form.c) ------------------------------- */
/* A JSON object or urlencoded form body as (key, value) pairs: UTF-8
 * text, without NUL; a JSON array of scalars is a value each under
 * "key[]". */
#define API_FORM_KEY_MAX 64
typedef struct api_form {
    struct api_form_item {
        char *key, *value;
    } *items;
    size_t n, cap;
} api_form;
/* Pure: parses body by its Content-Type (type may be NULL; an empty body
 * is an empty form). 0, or -1 with the 4xx in *fail (f is then to free). */
int api_form_parse(const char *type, const char *body, size_t len, api_form *f, api_fail *fail);
void api_form_free(api_form *f);
const char *api_form_get(const api_form *f, const char *name);
/* Parses r's body; answers the 4xx itself and returns -1. */
int api_form_or_4xx(api_req *r, api_form *f);
/* A parameter from the body (f may be NULL), else from the query. */
const char *api_param(api_req *r, const api_form *f, const char *name);
/* Up to max values of a list parameter ("id[]"): the body's, else the query's. */
size_t api_param_list(api_req *r, const api_form *f, const char *name, const char **out,
                      size_t max);

/* ---- Request bodies (decode.c): pure functions, fuzzed ------------------------------- */
#define API_NAME_MAX 30
#define API_DISPLAY_MAX 64
#define API_POST_MAX 500
#define API_MESSAGE_MAX 2000

typedef struct api_user_body {
    char name[API_NAME_MAX + 1];
    char display_name[4 * API_DISPLAY_MAX + 1];
} api_user_body;
typedef struct api_post_body {
    char text[4 * API_POST_MAX + 1];
} api_post_body;
typedef struct api_message_body {
    char to[STG_ID_MAX + 1];
    char text[4 * API_MESSAGE_MAX + 1];
} api_message_body;
typedef struct api_admin_body {
    bool has_paused, paused, has_delay;
    uint32_t delay_ms;
    char peer[STG_ORIGIN_MAX + 1]; /* "" = every peer */
} api_admin_body;

/* Decoders of api_decoder's type; body points to the api_*_body named. */
int api_decode_user(const char *buf, size_t len, void *body, api_fail *fail);
int api_decode_post(const char *buf, size_t len, void *body, api_fail *fail);
int api_decode_message(const char *buf, size_t len, void *body, api_fail *fail);
int api_decode_admin(const char *buf, size_t len, void *body, api_fail *fail);

/* ---- Auth (auth.c) ----------------------------------------------------------------------- */
/* A new token for user id: "<id>.<43 base64url chars>" (256 random bits)
 * into token[] and the hex hash to store into hash[]. */
#define API_TOKEN_MAX (STG_ID_MAX + 64)
void api_token_new(const char *user_id, char token[API_TOKEN_MAX], char hash[65]);
/* Authenticates the bearer token (header, or ?access_token= when
 * allow_query); sets r->user. Answers 401 itself and returns -1. */
int api_auth_or_401(api_req *r, bool allow_query);
/* Checks tok as an account's own token (not an OAuth one): 0 with its
 * user in user, DF_ENOTFOUND if it is not one, DF_E* from storage. */
int api_token_check(api_req *r, const char *tok, char user[STG_ID_MAX + 1]);
/* After api_auth_or_401: 0 if the token has one of the scopes in need,
 * else 403 answered and -1. */
int api_scope_or_403(api_req *r, unsigned need);
/* The admin/demo gate for /v1/admin: 404 when neither --demo nor
 * --admin-token; 401 without the right token (demo: loopback clients need
 * none). */
int api_admin_or_4xx(api_req *r);

/* ---- OAuth (oauth*.c) ------------------------------------------------------------------------ */
/* Scopes (oauth_scope.c, pure): a scope string ("read write:statuses",
 * names separated by spaces or '+') as a set of known names, a bit mask. */
#define API_SCOPES_TEXT_MAX 1024 /* longest scope string taken */
#define API_SCOPES_JOIN_MAX 512 /* room for every name, joined */
/* 0 with *set (0 when s names none), or -1 for an unknown name or a
 * string longer than API_SCOPES_TEXT_MAX. */
int api_scopes_parse(const char *s, size_t n, uint64_t *set);
/* The API_SCOPE_* permissions set grants. */
unsigned api_scopes_bits(uint64_t set);
/* Whether each scope of want is in have or covered by a broad one there
 * ("read" covers "read:statuses"). */
bool api_scopes_within(uint64_t want, uint64_t have);
/* The names of set (static strings), in the table's order. */
size_t api_scopes_names(uint64_t set, const char **out, size_t max);
/* The names of set, space-separated. */
void api_scopes_join(uint64_t set, char out[API_SCOPES_JOIN_MAX]);

/* The module's state (oauth.c): the region secret, loaded or made on
 * first use, and the authorization codes waiting to be redeemed. */
struct api_oauth *api_oauth_new(void);
void api_oauth_free(struct api_oauth *o); /* accepts NULL */

/* Access tokens (oauth.c has the format). */
#define API_OAUTH_APP_PREFIX "~app" /* an app token's, never a user id */
typedef struct api_oauth_grant {
    char user[STG_ID_MAX + 1]; /* "" for an app token */
    unsigned scopes; /* API_SCOPE_* */
    uint32_t app; /* the tag of the app it was issued to */
    uint64_t issued_s;
    char revoke_key[48]; /* its key in STG_CF_META once revoked */
} api_oauth_grant;
/* Mints a token of this region for user ("" for an app token) into tok;
 * 0 and *g, or DF_E* when the region secret cannot be read or made. */
int api_oauth_mint(api_ctx *ctx, const char *user, unsigned scopes, uint32_t app,
                   char tok[API_TOKEN_MAX], api_oauth_grant *g);
/* Checks tok: 0 and *g when this region issued it and it is not revoked;
 * DF_EINVAL when it is not such a token (garbled, forged, another
 * region's, revoked); DF_E* on a storage failure. */
int api_oauth_verify(api_ctx *ctx, const char *tok, api_oauth_grant *g);
/* Revokes g's token for good (a synced write): 0 or DF_EIO. */
int api_oauth_revoke_grant(api_ctx *ctx, const api_oauth_grant *g);

/* Authorization codes (oauth.c), in memory: a restart forgets them. */
#define API_OAUTH_KEY_LEN 43 /* client ids, client secrets, codes: 256 random bits, base64url */
typedef struct api_oauth_code {
    char client_id[API_OAUTH_KEY_LEN + 1];
    char user[STG_ID_MAX + 1];
    char *redirect_uri; /* owned (api_oauth_code_clear) */
    uint64_t scope; /* a scope set */
    char challenge[44]; /* S256 code challenge, "" when none */
} api_oauth_code;
/* Issues a code for c (copied) into code. */
void api_oauth_code_issue(struct api_oauth *o, const api_oauth_code *c,
                          char code[API_OAUTH_KEY_LEN + 1]);
/* Redeems code once: 0 and *out (clear it after); DF_ENOTFOUND when it is
 * unknown or expired; DF_ESTALE when it was redeemed before, with the
 * grant issued then in *reused (revoke it; reused->revoke_key is "" if
 * none was issued). */
int api_oauth_code_take(struct api_oauth *o, const char *code, api_oauth_code *out,
                        api_oauth_grant *reused);
/* Records the grant issued for a redeemed code, for api_oauth_code_take. */
void api_oauth_code_redeemed(struct api_oauth *o, const char *code, const api_oauth_grant *g);
void api_oauth_code_clear(api_oauth_code *c);

/* Registered apps (oauth_apps.c), stored in STG_CF_META. */
#define API_APP_NAME_MAX 60 /* characters */
#define API_APP_URI_MAX 2000 /* bytes of one redirect URI or website */
#define API_APP_URIS_MAX 16
#define API_OAUTH_OOB "urn:ietf:wg:oauth:2.0:oob"
typedef struct api_oauth_app {
    json_t *json; /* as stored: id, name, website, scopes, redirect_uris, secret_hash, tag */
    const char *client_id, *name, *website; /* into json; website may be NULL */
    uint64_t scope; /* the scope set it registered */
    uint32_t tag;
} api_oauth_app;
/* Loads the app of client_id: 0, DF_ENOTFOUND, or DF_E*. */
int api_oauth_app_load(api_ctx *ctx, const char *client_id, api_oauth_app *a);
void api_oauth_app_free(api_oauth_app *a); /* accepts an app not loaded (zeroed) */
/* Whether secret is the app's client secret (constant time). */
bool api_oauth_app_secret_ok(const api_oauth_app *a, const char *secret);
/* Whether uri is one of the app's redirect URIs (byte for byte). */
bool api_oauth_app_redirect_ok(const api_oauth_app *a, const char *uri);
/* The only redirect URI of the app, or NULL when it has several. */
const char *api_oauth_app_sole_redirect(const api_oauth_app *a);
/* Whether s is a redirect URI an app may register: an absolute http(s)
 * URL of printable ASCII without a fragment or user info, the
 * out-of-band URN, or (native) a native app's own scheme and path. */
bool api_oauth_uri_valid(const char *s, size_t n, bool native);
/* The length of s's native-app scheme with its ':', 0 if it has none. */
size_t api_oauth_native_scheme(const char *s, size_t n);

/* A text parameter (api_param): 0 with *out (NULL when absent), or -1
 * when it is not UTF-8 text without control characters or is longer
 * than max bytes (nothing answered). */
int api_oauth_param(api_req *r, const api_form *f, const char *name, size_t max,
                    const char **out);

/* The sign-in page (oauth_page.c). Every string is escaped as it goes
 * into the HTML; NULL strings are left out. */
typedef struct api_oauth_page {
    const char *region, *app_name, *app_website;
    const char *scope_names[64];
    size_t nscopes;
    const char *message; /* an error to show above the forms */
    /* The request, carried in hidden fields. */
    const char *client_id, *redirect_uri, *scope, *state, *challenge, *challenge_method;
    const char *name, *display_name; /* what the sign-up form had */
} api_oauth_page;
void api_html_escape(struct api_buf *b, const char *s);
void api_oauth_page_signin(struct api_buf *b, const api_oauth_page *p);
/* The out-of-band page: the code in <code id="code">. */
void api_oauth_page_code(struct api_buf *b, const char *region, const char *app_name, const char *code);
void api_oauth_page_error(struct api_buf *b, const char *region, const char *message);

/* Routes. */
void api_apps_create(api_req *r);
void api_apps_verify(api_req *r);
void api_oauth_authorize_get(api_req *r);
void api_oauth_authorize_post(api_req *r);
void api_oauth_token(api_req *r);
void api_oauth_revoke(api_req *r);

/* ---- Limits (limits.c) --------------------------------------------------------------------- */
/* Token buckets, one per key (a string; only its first API_LIMIT_KEY_MAX
 * bytes count): per_s tokens a second, at most burst (>= 1), full when
 * first seen. Thread-safe. */
#define API_LIMIT_KEY_MAX STG_ID_MAX
typedef struct api_limiter api_limiter;
api_limiter *api_limiter_new(double per_s, double burst);
void api_limiter_free(api_limiter *l); /* accepts NULL */
/* Takes one token from key's bucket at now_ms (monotonic). Returns 0 if
 * taken, else the ms until one is there (>= 1) and takes nothing. */
uint64_t api_limiter_take(api_limiter *l, const char *key, uint64_t now_ms);

/* The region's limits from cfg (--rate-limit 0 turns them all off). */
struct api_limits *api_limits_new(const api_config *cfg);
void api_limits_free(struct api_limits *l); /* accepts NULL */
/* Takes a write token for r->user; 429 with Retry-After itself if empty. */
int api_rate_or_429(api_req *r);
/* Takes a signup token for r's client address; 429 with Retry-After
 * itself if empty. */
int api_signup_rate_or_429(api_req *r);

/* ---- Idempotency keys (posts.c) ------------------------------------------------------------ */
#define API_IDEM_WINDOW_S 86400 /* default of --idempotency-window-s */
/* The sweep of STG_CF_IDEM (stg_options.sweep): drops entries whose
 * window has passed. */
bool api_idem_sweep(stg_db *db, const char *key, size_t klen, stg_sweep_memo *memo);

/* ---- Metrics (metrics.c) ------------------------------------------------------------------- */
struct api_metrics *api_metrics_new(void);
void api_metrics_free(struct api_metrics *m);
void api_metrics_observe(struct api_metrics *m, int route, int status, uint64_t micros);

/* ---- Sessions (session_token.c, session.c) ------------------------------------------------ */
/* A Session-Token: the log positions a client has written or read. */
typedef struct api_session_vec {
    size_t n;
    repl_pos pos[REPL_POS_MAX];
} api_session_vec;
#define API_SESSION_TOKEN_MAX 1100 /* characters; a full vector takes about 1,070 */
/* Encodes v into out (cap bytes); returns its length, 0 if out is too small. */
size_t api_session_encode(const api_session_vec *v, char *out, size_t cap);
/* Decodes a token; 0, or -1 if it is not one (garbled, cut, made up). */
int api_session_decode(const char *s, size_t len, api_session_vec *v);
/* Merges n positions into a vector: the later seq of each region (a
 * position of another store of that region replaces it). */
void api_session_merge(api_session_vec *into, const repl_pos *pos, size_t n);

/* The waits: requests whose token this region has not caught up with, and
 * writes waiting for acknowledgements (ack=quorum|all), each suspended --
 * no thread waits with them -- until replication moves or its bound passes. */
struct api_sessions *api_sessions_new(api_ctx *ctx);
/* Ends every wait (a token's with 503, an ack's with what it has); call
 * before api_server_stop. */
void api_sessions_stop(struct api_sessions *s);
void api_sessions_free(struct api_sessions *s); /* accepts NULL */
typedef struct api_sessions_stats {
    uint64_t waiting; /* suspended now */
    uint64_t waits, caught_up, timeouts, refused; /* token waits: begun, answered, 503, 400 */
    uint64_t acks[3], ack_timeouts; /* writes by ack level (local, quorum, all); answered 202 */
} api_sessions_stats;
void api_sessions_get_stats(struct api_sessions *s, api_sessions_stats *out);
/* http.c, before a /v1 route's handler: reads Session-Token,
 * Session-Wait-Ms and ?ack. Returns 0 to run the handler now, or -1 when
 * the request was answered (400, 503) or suspended until it can run. */
int api_session_before(api_req *r);
/* Whether r is suspended, or resumed, for a wait (http.c then calls
 * api_session_resumed instead of routing it again). */
bool api_session_waiting(const api_req *r);
/* After a resume: 0 to run the handler now, -1 while it is still waiting
 * (or was answered now). */
int api_session_resumed(api_req *r);
/* http.c, on the answer: adds Session-Token when there is one to give. */
void api_session_headers(api_req *r, int status, struct MHD_Response *resp);
/* Then: true when it takes resp, to send (api_send_response, with
 * Acked-By) once acknowledgements arrive. */
bool api_session_hold(api_req *r, int status, struct MHD_Response *resp);
/* Frees a request's session state (on_completed). */
void api_session_done(api_req *r);

/* ---- Streams (stream.c) -------------------------------------------------------------------- */
struct api_streams *api_streams_new(api_ctx *ctx);
/* Ends every open stream; call before api_server_stop. */
void api_streams_stop(struct api_streams *s);
typedef struct api_streams_stats {
    int open;  /* streams open now */
    int users; /* users with a ring: a stream open or closed < RESUME_MS ago */
    uint64_t refused, evicted; /* 503s past --max-streams; ended by the per-user cap */
    uint64_t rewoken; /* resumes libmicrohttpd did not act on, made again */
} api_streams_stats;
void api_streams_get_stats(struct api_streams *s, api_streams_stats *out);
void api_streams_free(struct api_streams *s);
/* Called by http.c when a stream request finishes. */
void api_stream_closed(api_req *r);

/* ---- Shared JSON for records ---------------------------------------------------------------- */
/* A new record's id (its version's) and creation time (RFC 3339). */
void api_version_names(const stg_version *v, char id[STG_ID_MAX + 1], char created[32]);
/* Makes j (taken; NULL fails) rec's payload: *out holds the bytes (free()).
 * Returns 0 or DF_EINVAL. */
int api_set_payload(stg_record *rec, json_t *j, char **out);
/* The stored payload of a record as a JSON object (new reference), or
 * NULL if it does not parse. */
json_t *api_payload_json(const stg_record *rec);
/* Appends a post item (payload + "delivered_at") to buf. */
typedef struct api_buf {
    char *p;
    size_t len, cap;
} api_buf;
void api_buf_append(api_buf *b, const char *s, size_t n);
void api_buf_printf(api_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the n bytes at s as a JSON string: escaped, each byte that is
 * not part of a strict UTF-8 character as U+FFFD, so any bytes a client
 * sent make valid JSON. api_buf_json_string takes a NUL-ended s. */
void api_buf_json_text(api_buf *b, const char *s, size_t n);
void api_buf_json_string(api_buf *b, const char *s);
/* The longest prefix of s[0..n) of at most max bytes that ends on a
 * character boundary (an invalid byte counts as one character). */
size_t api_utf8_cut(const char *s, size_t n, size_t max);
/* Whether s[0..n) is strict UTF-8 text without NUL. */
bool api_utf8_valid(const char *s, size_t n);
/* Client input to echo in a message: at most API_EXCERPT_MAX bytes of s,
 * cut on a character boundary, with an ellipsis when cut. Returns out. */
#define API_EXCERPT_MAX 64
const char *api_excerpt(char out[API_EXCERPT_MAX + 4], const char *s);
void api_post_item(api_buf *b, const stg_record *post, uint64_t delivered_ms);
/* {"items":[...],"next":...} from a feed page: appended to b, or as the
 * 200 answer. */
void api_render_page(api_buf *b, const feed_page *page);
void api_reply_page(api_req *r, const feed_page *page);

/* ---- Lists shared by /v1 and the Mastodon routes ---------------------------------------------- */
/* Up to limit ids listed under user in cf (the second key parts: follows
 * or followers) after `after` (NULL: from the first), leaving out
 * tombstoned records when records; *more when there are more. 0 or DF_EIO. */
int api_list_ids(api_ctx *ctx, stg_cf cf, bool records, const char *user, const char *after,
                 size_t limit, char (*ids)[STG_ID_MAX + 1], size_t *n, bool *more);
/* Up to want of user's conversations, newest latest message first, those
 * whose latest message is older than before (a message id; NULL: all). */
typedef struct api_conversation {
    char peer[STG_ID_MAX + 1], latest[STG_ID_MAX + 1];
} api_conversation;
int api_conversations_read(api_ctx *ctx, const char *user, const char *before, size_t want,
                           api_conversation *out, size_t *n);

/* ---- The Mastodon subset (masto*.c) ---------------------------------------------------------- */
/* A status id: the record's version in digits of one length (masto.c). */
#define API_MASTO_ID_LEN (20 + 2 * STG_ORIGIN_MAX)
void api_masto_id(const stg_version *v, char out[API_MASTO_ID_LEN + 1]);
/* The status id of a record id ("" if it is not one). */
void api_masto_id_of(const char *record_id, size_t n, char out[API_MASTO_ID_LEN + 1]);
/* The record id a status id names; 0, or -1 if s is not a status id. */
int api_masto_parse_id(const char *s, char record_id[STG_ID_MAX + 1]);
/* The same for a path parameter: 404 answered and -1 if it is not one. */
int api_masto_id_param_or_404(api_req *r, const char *s, char record_id[STG_ID_MAX + 1]);
/* Plain text as Mastodon's content: escaped HTML in paragraphs. */
void api_masto_html(api_buf *b, const char *text, size_t n);
/* The URL this region is reached at (--public-url), for links. */
const char *api_masto_base(api_ctx *ctx);
/* Accounts already rendered while answering one request. */
#define API_MASTO_ACCOUNTS_MAX 64
typedef struct api_masto_accounts {
    size_t n;
    char ids[API_MASTO_ACCOUNTS_MAX][STG_ID_MAX + 1];
    json_t *accounts[API_MASTO_ACCOUNTS_MAX];
} api_masto_accounts;
void api_masto_accounts_free(api_masto_accounts *seen);
/* Entities (new references; NULL when the record is gone or does not
 * decode). seen may be NULL. */
json_t *api_masto_account(api_ctx *ctx, const char *user_id, api_masto_accounts *seen);
json_t *api_masto_status(api_ctx *ctx, const stg_record *post, api_masto_accounts *seen);
json_t *api_masto_message_status(api_ctx *ctx, const stg_record *msg, api_masto_accounts *seen);
/* How viewer and user_id follow each other. */
json_t *api_masto_relationship(api_ctx *ctx, const char *viewer, const char *user_id);
/* ?limit the way Mastodon reads it: def when absent, clamped to 1..max;
 * anything but digits is 400 answered and -1. */
int api_masto_limit_or_400(api_req *r, int def, int max, int *limit);
/* Answers j (taken), or 404 "Record not found" when j is NULL. */
void api_masto_reply(api_req *r, int status, json_t *j);
/* Appends a Link header value for a page of path: rel="next" (older than
 * next_max) and rel="prev" (newer than prev_min), each when not NULL. */
void api_masto_link(api_req *r, api_buf *out, const char *path, int limit, const char *next_max,
                    const char *prev_min);

/* ---- Routes (one file per resource) ---------------------------------------------------------- */
void api_users_create(api_req *r);
/* Makes account in in this region (user_create.c, no rate limit): 0 with
 * *account, the account as POST /v1/users answers it (token included; a
 * new reference), DF_EEXIST if the name is taken, or DF_E*. */
int api_user_new(api_req *r, const api_user_body *in, json_t **account);
void api_users_get(api_req *r);
void api_users_following(api_req *r);
void api_users_followers(api_req *r);
void api_follow(api_req *r);
void api_unfollow(api_req *r);
/* A post id parameter (params[0]) that is valid, or 400 answered. */
int api_post_param_or_400(api_req *r);
/* How a route answers with a record it wrote or read (its payload, or
 * another API's rendering of it). api_reply_record answers the payload. */
typedef void (*api_record_reply)(api_req *r, int status, const stg_record *rec);
void api_reply_record(api_req *r, int status, const stg_record *rec);
/* Answers the stored, live post id through reply (404 when deleted or absent). */
void api_reply_post_with(api_req *r, int status, const char *id, size_t idlen,
                         api_record_reply reply);
/* Publishes text as a post of r->user (authenticated, rate checked),
 * honouring an Idempotency-Key (NULL: none); answers through reply, or
 * the error itself. */
void api_post_publish(api_req *r, const char *text, const char *idem_key, api_record_reply reply);
/* Tombstones post id of r->user: 0, or -1 with the error answered. */
int api_post_remove(api_req *r, const char *id);
/* Sends a direct message from r->user (authenticated, rate checked);
 * answers through reply, or the error itself. */
void api_message_send(api_req *r, const char *to, const char *text, api_record_reply reply);
/* Writes the follow edge r->user -> target (follow, or unfollow): 0, or
 * -1 with the error answered. */
int api_edge_write(api_req *r, const char *target, bool follow);
void api_posts_create(api_req *r);
void api_posts_get(api_req *r);
void api_posts_delete(api_req *r);
void api_profile(api_req *r);
void api_timeline(api_req *r);
void api_messages_send(api_req *r);
void api_messages_list(api_req *r);
void api_conversations(api_req *r);
void api_stream(api_req *r);
void api_region(api_req *r);
void api_cluster(api_req *r);
void api_replication(api_req *r);
void api_digest(api_req *r);
void api_admin_replication(api_req *r);
void api_admin_peer_remove(api_req *r);
void api_masto_instance_v1(api_req *r);
void api_masto_instance_v2(api_req *r);
void api_masto_verify_credentials(api_req *r);
void api_masto_lookup(api_req *r);
void api_masto_relationships(api_req *r);
void api_masto_account_get(api_req *r);
void api_masto_account_statuses(api_req *r);
void api_masto_followers(api_req *r);
void api_masto_following(api_req *r);
void api_masto_follow(api_req *r);
void api_masto_unfollow(api_req *r);
void api_masto_status_create(api_req *r);
void api_masto_status_get(api_req *r);
void api_masto_status_delete(api_req *r);
void api_masto_home(api_req *r);
void api_masto_conversations(api_req *r);
void api_masto_stream_user(api_req *r);
void api_masto_stream(api_req *r);
void api_health(api_req *r);
void api_metrics(api_req *r);
void api_static(api_req *r);

/* Route names for metrics, indexed like the router's table, which has
 * fewer than API_ROUTES_MAX (with "unmatched"). */
#define API_ROUTES_MAX 96
size_t api_route_count(void);
const char *api_route_name(int route);
/* Finds the route of method+path, filling r->params; returns the index,
 * -1 if the path is unknown, -2 if only the method is wrong (Allow: *allow). */
int api_route_match(api_req *r, char *path, const char **allow);
void api_route_call(api_req *r, int route);

#endif
