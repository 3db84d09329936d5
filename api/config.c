/* config.c -- command-line flags (and --config FILE with the same names), from
 * one table: name, value, where it lands, default and help; the usage text
 * and the defaults are made from it. */
#include "api.h"

#include <errno.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- The settings: one row each, the only place a flag is named ---------------------- */

typedef enum {
    T_STR, /* a string into a char array */
    T_INT, /* an integer from lo to hi, into an int or an int64_t (by the field's size) */
    T_REAL, /* an integer from lo to hi, into a double */
    T_FLAG, /* no value: sets a bool */
    T_SECRET, /* a path: the first line of that file (mode 0600), into a char array */
    T_CALL, /* parsed by call */
} kind;

typedef struct setting {
    const char *name;
    const char *meta; /* the value in the usage ("N", "DIR"); NULL for a flag */
    kind kind;
    size_t off, size; /* where it lands in api_config */
    long long lo, hi;
    const char *def; /* parsed like a flag's value before the flags; NULL: none */
    const char *shown; /* the default as the usage says it, when def does not */
    const char *help; /* lines of the usage, "\n" between them */
    int (*call)(api_config *c, const char *arg);
} setting;

#define AT(f) offsetof(api_config, f), sizeof(((api_config *)0)->f)
#define STR(f) T_STR, AT(f), 0, 0
#define INT(f, lo, hi) T_INT, AT(f), lo, hi
#define FLAG(f) T_FLAG, AT(f), 0, 0
#define CALL 0, 0, 0, 0

static int set_region(api_config *c, const char *arg);
static int set_log_level(api_config *c, const char *arg);
static int refuse_admin_token(api_config *c, const char *arg);
static int parse_file(api_config *c, const char *path);

static const setting settings[] = {
    {"region", "NAME", T_CALL, CALL, "local", 0, "region name, [a-z0-9_]", set_region},
    {"port", "N", INT(port, 1, 65535), "8080", 0, "HTTP port", 0},
    {"bind", "ADDR", STR(bind), "127.0.0.1", 0, "IPv4 address to listen on", 0},
    {"data", "DIR", STR(data), 0, "var/REGION", "RocksDB directory, created if missing", 0},
    {"redis", "HOST:PORT", STR(redis), 0, 0,
     "Redis for this region's replication log; without it the\nregion runs alone (full API, no "
     "replication)", 0},
    {"peers", "A,B", STR(peers_raw), 0, 0, "peer regions to replicate with", 0},
    {"peer-redis", "A=H:P,...", STR(peer_redis_raw), 0, "--redis", "where a peer's log lives", 0},
    {"delay", "A=MS,...", STR(delays_raw), 0, 0,
     "initial simulated distance to peers (apply delay)", 0},
    {"key-dir", "DIR", STR(key_dir), 0, 0,
     "log keys: DIR/REGION.key (secret, mode 0600) and DIR/PEER.pub\nfor every peer; records "
     "are signed and checked (without it\nthe log is not authenticated)", 0},
    {"keygen", 0, FLAG(keygen), 0, 0,
     "create DIR/REGION.key and .pub in --key-dir (kept if present)\nand exit", 0},
    {"drop-records", "KIND:ID,...", STR(drop_records), 0, 0,
     "take these records (user:ID or post:ID) out of --data as if\nthe store had lost them, and "
     "exit: for tests of repair", 0},
    {"redis-auth-file", "PATH", T_SECRET, AT(redis_auth), 0, 0, 0, 0,
     "Redis AUTH for --redis: \"password\" or \"user password\"", 0},
    {"peer-redis-auth-file", "A=PATH,...", STR(peer_redis_auth_raw), 0, "--redis-auth-file",
     "the same per peer", 0},
    {"public-url", "URL", STR(public_url), 0, "http://BIND:PORT",
     "URL announced for /v1/cluster", 0},
    {"web", "DIR", STR(web_dir), DF_WEB_DIR, "the source tree's web/", "browser demo files", 0},
    {"demo", 0, FLAG(demo), 0, 0, "enable /v1/admin/replication for loopback clients", 0},
    {"admin-token", "TOKEN", T_CALL, CALL, 0, 0, 0, refuse_admin_token}, /* gone: not in the usage */
    {"admin-token-file", "PATH", T_SECRET, AT(admin_token), 0, 0, 0, 0,
     "enable /v1/admin/replication for the bearer token in PATH\n(or in the environment: "
     "DRIFTFEED_ADMIN_TOKEN)", 0},
    {"sync", 0, FLAG(sync), 0, 0,
     "fsync the WAL on every write (survives machine crashes;\ndefault: WAL without fsync, "
     "survives process crashes)", 0},
    {"cache-mb", "N", INT(cache_mb, 8, 1 << 20), "64", 0,
     "RocksDB block cache, index and filters included, MiB", 0},
    {"memtable-mb", "N", INT(memtable_mb, 16, 1 << 20), "64", 0,
     "RocksDB memtables of all column families, MiB", 0},
    {"post-cache-mb", "N", INT(post_cache_mb, 1, 1 << 20), "32", 0,
     "post values kept in memory for timelines, MiB", 0},
    {"page-cache-mb", "N", INT(page_cache_mb, 0, 1 << 20), "64", 0,
     "rendered first timeline pages kept, MiB, 0 = off", 0},
    {"clock-offset-ms", "N", INT(clock_offset_ms, -86400000LL, 86400000LL), 0, 0,
     "shift this region's wall clock (tests of clock skew)", 0},
    {"publish-linger-ms", "N", INT(linger_ms, 0, 1000), "5", 0,
     "a busy publisher gathers records this long", 0},
    {"repair-interval-ms", "N", INT(repair_interval_ms, 0, 86400000LL), "3000", 0,
     "anti-entropy: a Merkle tree round per peer this often (with\n--key-dir), 0 = off", 0},
    {"log-retention", "N", INT(retain_records, 0, 1LL << 40), "1000000", 0,
     "with repair: the log keeps at most N records a peer has not\napplied (0 = no bound)", 0},
    {"log-retention-s", "S", INT(retain_s, 0, 1LL << 32), "604800", 0,
     "with repair: and none older than S seconds (0 = no bound)", 0},
    {"tombstone-grace-s", "S", INT(tombstone_grace_s, 1, 1LL << 32), "864000", 0,
     "with repair: tombstones older than S seconds that every peer\nholds are purged", 0},
    {"threads", "N", INT(threads, 1, 256), 0, "cores", "HTTP threads", 0},
    {"fanout-workers", "N", INT(fanout_workers, 1, 64), "2", 0, "fan-out worker threads", 0},
    {"large-threshold", "N", INT(large_threshold, 1, 1LL << 40), "10000", 0,
     "followers above which posts merge at read", 0},
    {"timeline-cap", "N", INT(timeline_cap, 1, 100000), "800", 0,
     "home timeline entries per user", 0},
    {"queue-max", "N", INT(queue_max, 1, 1LL << 40), "100000", 0,
     "fan-out jobs queued before 503", 0},
    {"max-connections", "N", INT(max_connections, 1, 1000000), "4096", 0, "open connections", 0},
    {"per-ip-connections", "N", INT(per_ip_connections, 0, 1000000), "2048", 0,
     "open connections per client address", 0},
    {"timeout", "S", INT(timeout_s, 0, 86400), "30", 0, "idle connection timeout in seconds", 0},
    {"rate-limit", "N", T_REAL, AT(rate_limit), 0, 100000000, "100", 0,
     "writes per second per token; 0 turns every\nrate limit off, --signup-rate's included "
     "(load tests)", 0},
    {"rate-burst", "N", INT(rate_burst, 1, 100000000), 0, "2 x rate", "write burst per token", 0},
    {"signup-rate", "N", INT(signup_rate, 0, 100000000), "10", 0,
     "accounts created per minute per client address (an IPv6\nclient's /64), 429 past it; 0 = "
     "off", 0},
    {"signup-burst", "N", INT(signup_burst, 1, 100000000), "5", 0,
     "signup burst per client address", 0},
    {"idempotency-window-s", "S", INT(idem_window_s, 1, 366 * 86400), "86400", "86400, 24 h",
     "how long a post's Idempotency-Key is remembered, seconds", 0},
    {"streams-per-user", "N", INT(streams_per_user, 1, 100000), "16", 0,
     "open event streams per user; one more ends the oldest", 0},
    {"max-streams", "N", INT(max_streams, 1, 1000000), "1024", 0,
     "open event streams per region, 503 past it", 0},
    {"session-wait-ms", "MS", INT(session_wait_ms, 0, 600000), "2000", 0,
     "a request with a Session-Token this region has not caught up\nwith waits this long, "
     "then 503", 0},
    {"session-wait-max-ms", "MS", INT(session_wait_max_ms, 0, 600000), "10000", 0,
     "the most a Session-Wait-Ms header can ask for", 0},
    {"ack-wait-ms", "MS", INT(ack_wait_ms, 0, 600000), "5000", 0,
     "a write with ?ack=quorum|all waits this long for the other\nregions, then answers 202",
     0},
    {"log-level", "LEVEL", T_CALL, CALL, "info", 0, "debug, info, warn or error", set_log_level},
    {"config", "FILE", T_CALL, CALL, 0, 0,
     "read flags from FILE: one \"name value\" per line, # comments", parse_file},
    {"help", 0, T_CALL, CALL, 0, 0, "this text", 0},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

void api_config_usage(FILE *out)
{
    fputs("usage: driftfeed [flags]\n\nOne driftfeed region: the HTTP/JSON API over its own "
          "RocksDB, replicating\nthrough Redis streams to its peers.\n\n",
          out);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (!s->help) continue;
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", s->name, s->meta ? " " : "", s->meta ? s->meta : "");
        const char *def = s->shown ? s->shown : s->def;
        if (strlen(head) > 24)
            fprintf(out, "  %s\n  %-24s ", head, "");
        else
            fprintf(out, "  %-24s ", head);
        for (const char *p = s->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n') fprintf(out, "  %-24s ", "");
        }
        fprintf(out, def ? " (default: %s)\n" : "\n", def);
    }
}

static int copy(char *dst, size_t cap, const char *src, const char *flag)
{
    if (strlen(src) >= cap) {
        fprintf(stderr, "driftfeed: --%s is too long\n", flag);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int number(const char *s, long long lo, long long hi, long long *out, const char *flag)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "driftfeed: --%s wants a number from %lld to %lld\n", flag, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* The first line of a secret's file, trimmed, into out. A secret readable
 * by group or others is refused: it is the same as no secret. */
static int read_secret(const char *path, char *out, size_t cap, const char *flag)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (!f) {
        fprintf(stderr, "driftfeed: --%s: cannot read %s: %s\n", flag, path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fprintf(stderr, "driftfeed: --%s: %s is readable by others; chmod 600 it\n", flag, path);
        fclose(f);
        return -1;
    }
    char line[1024] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *p = line + strspn(line, " \t");
    size_t n = strcspn(p, "\r\n");
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (!ok || n == 0 || n >= cap) {
        fprintf(stderr, "driftfeed: --%s: %s holds no secret (or one over %zu bytes)\n", flag,
                path, cap - 1);
        sodium_memzero(line, sizeof line);
        return -1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    sodium_memzero(line, sizeof line);
    return 0;
}

static int set_region(api_config *c, const char *arg)
{
    if (!stg_valid_name(arg, strlen(arg), STG_ORIGIN_MAX)) {
        fprintf(stderr, "driftfeed: --region must match [a-z0-9_]{1,32}\n");
        return -1;
    }
    return copy(c->region, sizeof c->region, arg, "region");
}

static int set_log_level(api_config *c, const char *arg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    static const int levels[] = {DF_LOG_DEBUG, DF_LOG_INFO, DF_LOG_WARN, DF_LOG_ERROR};
    for (int i = 0; i < 4; i++)
        if (!strcmp(arg, names[i])) {
            c->log_level = levels[i];
            return 0;
        }
    fprintf(stderr, "driftfeed: --log-level is debug, info, warn or error\n");
    return -1;
}

static int refuse_admin_token(api_config *c, const char *arg)
{
    (void)c, (void)arg;
    fprintf(stderr, "driftfeed: --admin-token is gone (argv is visible in ps): put the token "
                    "in a file for --admin-token-file, or in DRIFTFEED_ADMIN_TOKEN\n");
    return -1;
}

static const setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].name, name)) return &settings[i];
    return NULL;
}

/* Sets s from arg (NULL for a flag). */
static int apply(api_config *c, const setting *s, const char *arg)
{
    char *field = (char *)c + s->off;
    long long v;
    switch (s->kind) {
    case T_STR: return copy(field, s->size, arg, s->name);
    case T_SECRET: return read_secret(arg, field, s->size, s->name);
    case T_FLAG: *(bool *)field = true; return 0;
    case T_CALL: return s->call(c, arg);
    case T_REAL:
    case T_INT:
        if (number(arg, s->lo, s->hi, &v, s->name) < 0) return -1;
        if (s->kind == T_REAL)
            *(double *)field = (double)v;
        else if (s->size == sizeof(int))
            *(int *)field = (int)v;
        else
            *(int64_t *)field = v;
        return 0;
    }
    return -1;
}

static void defaults(api_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def && apply(c, &settings[i], settings[i].def) < 0) abort(); /* a bad row */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = cores > 0 ? (int)cores : 2;
}

static int parse_file(api_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "driftfeed: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "#\r\n")] = '\0';
        if (!*p) continue;
        char *name = p, *val = p + strcspn(p, " \t=");
        if (*val) *val++ = '\0';
        val += strspn(val, " \t=");
        for (char *e = val + strlen(val); e > val && (e[-1] == ' ' || e[-1] == '\t');) *--e = '\0';
        const setting *st = find(name);
        if (!st || !strcmp(name, "config") || !strcmp(name, "help")) {
            fprintf(stderr, "driftfeed: %s:%d: unknown setting \"%s\"\n", path, lineno, name);
            rc = -1;
        } else {
            rc = apply(c, st, st->kind == T_FLAG ? NULL : val);
        }
    }
    fclose(f);
    return rc;
}

/* Splits "a=b,c=d" (or "a,b" when values are not wanted) into the peer
 * table of the replication config. */
static int peers_from(api_config *c)
{
    repl_config *rc = &c->repl;
    static __thread char scratch[1024];
    snprintf(scratch, sizeof scratch, "%s", c->peers_raw);
    for (char *save = NULL, *t = strtok_r(scratch, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!*t) continue;
        if (rc->npeers == REPL_MAX_PEERS || !stg_valid_name(t, strlen(t), STG_ORIGIN_MAX) ||
            !strcmp(t, c->region)) {
            fprintf(stderr, "driftfeed: --peers: bad or too many peers (\"%s\")\n", t);
            return -1;
        }
        rc->peers[rc->npeers++] = xstrdup(t);
    }
    const char *lists[3] = {c->peer_redis_raw, c->delays_raw, c->peer_redis_auth_raw};
    const char *flags[3] = {"peer-redis", "delay", "peer-redis-auth-file"};
    for (int l = 0; l < 3; l++) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", lists[l]);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            size_t i = 0;
            if (eq) *eq = '\0';
            while (i < rc->npeers && strcmp(rc->peers[i], t) != 0) i++;
            if (!eq || i == rc->npeers) {
                fprintf(stderr, "driftfeed: --%s: \"%s\" is not PEER=VALUE for a peer in --peers\n",
                        flags[l], t);
                return -1;
            }
            long long v;
            char secret[512];
            if (l == 0) {
                free((char *)rc->peer_redis[i]);
                rc->peer_redis[i] = xstrdup(eq + 1);
            } else if (l == 1) {
                if (number(eq + 1, 0, 60000, &v, "delay") < 0) return -1;
                rc->delay_ms[i] = (uint32_t)v;
            } else {
                if (read_secret(eq + 1, secret, sizeof secret, flags[l]) < 0) return -1;
                free((char *)rc->peer_redis_auth[i]);
                rc->peer_redis_auth[i] = xstrdup(secret);
                sodium_memzero(secret, sizeof secret);
            }
        }
    }
    return 0;
}

int api_config_parse(api_config *c, int argc, char **argv)
{
    defaults(c);
    for (int i = 1; i < argc; i++) {
        /* --name VALUE or --name=VALUE; a flag takes none. */
        const char *a = argv[i], *eq = strchr(a, '=');
        char name[64];
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || n < 3 || n - 2 >= sizeof name) {
            fprintf(stderr, "driftfeed: unexpected argument \"%s\"; see --help\n", a);
            return -1;
        }
        memcpy(name, a + 2, n - 2);
        name[n - 2] = '\0';
        const setting *s = find(name);
        if (!s) {
            fprintf(stderr, "driftfeed: unknown flag --%s; see --help\n", name);
            return -1;
        }
        if (!strcmp(name, "help")) {
            api_config_usage(stdout);
            return 1;
        }
        const char *val = NULL;
        if (s->kind != T_FLAG) {
            val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!val) {
                fprintf(stderr, "driftfeed: --%s wants a value; see --help\n", name);
                return -1;
            }
        } else if (eq) {
            fprintf(stderr, "driftfeed: --%s takes no value\n", name);
            return -1;
        }
        if (apply(c, s, val) < 0) {
            fprintf(stderr, "driftfeed: see --help\n");
            return -1;
        }
    }
    const char *env_token = getenv("DRIFTFEED_ADMIN_TOKEN");
    if (!c->admin_token[0] && env_token && *env_token &&
        copy(c->admin_token, sizeof c->admin_token, env_token, "DRIFTFEED_ADMIN_TOKEN") < 0)
        return -1;
    if (c->keygen && !c->key_dir[0]) {
        fprintf(stderr, "driftfeed: --keygen needs --key-dir\n");
        return -1;
    }
    if (!c->data[0]) snprintf(c->data, sizeof c->data, "var/%s", c->region);
    if (!c->public_url[0])
        snprintf(c->public_url, sizeof c->public_url, "http://%s:%d",
                 strcmp(c->bind, "0.0.0.0") ? c->bind : "127.0.0.1", c->port);
    if (!repl_valid_url(c->public_url, strlen(c->public_url))) {
        fprintf(stderr, "driftfeed: --public-url must be an http:// or https:// URL without "
                        "spaces or quotes\n");
        return -1;
    }
    if (peers_from(c) < 0) return -1;
    if (c->repl.npeers && !c->redis[0]) {
        bool all = true;
        for (size_t i = 0; i < c->repl.npeers; i++) all = all && c->repl.peer_redis[i];
        if (!all) {
            fprintf(stderr, "driftfeed: --peers needs --redis (or --peer-redis for every peer)\n");
            return -1;
        }
    }
    c->repl.region = c->region;
    c->repl.log_redis = c->redis[0] ? c->redis : NULL;
    c->repl.public_url = c->public_url;
    c->repl.clock_offset_ms = c->clock_offset_ms;
    c->repl.linger_ms = (uint32_t)c->linger_ms;
    c->repl.repair_interval_ms = (uint32_t)c->repair_interval_ms;
    c->repl.retain_records = (uint64_t)c->retain_records;
    c->repl.retain_ms = (uint64_t)c->retain_s * 1000;
    c->repl.tombstone_grace_ms = (uint64_t)c->tombstone_grace_s * 1000;
    c->repl.key_dir = c->key_dir[0] ? c->key_dir : NULL;
    c->repl.redis_auth = c->redis_auth[0] ? c->redis_auth : NULL;
    return 0;
}

void api_config_free(api_config *c)
{
    for (size_t i = 0; i < c->repl.npeers; i++) {
        free((char *)c->repl.peers[i]);
        free((char *)c->repl.peer_redis[i]);
        free((char *)c->repl.peer_redis_auth[i]);
    }
    sodium_memzero(c->redis_auth, sizeof c->redis_auth);
    sodium_memzero(c->admin_token, sizeof c->admin_token);
    c->repl.npeers = 0;
}
