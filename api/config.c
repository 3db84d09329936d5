/* config.c -- command-line flags (and --config FILE with the same names). */
#include "api.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    O_REGION = 1000,
    O_PORT,
    O_BIND,
    O_DATA,
    O_REDIS,
    O_PEERS,
    O_PEER_REDIS,
    O_DELAY,
    O_PUBLIC_URL,
    O_WEB,
    O_ADMIN_TOKEN,
    O_ADMIN_TOKEN_FILE,
    O_KEY_DIR,
    O_KEYGEN,
    O_REDIS_AUTH,
    O_PEER_REDIS_AUTH,
    O_DEMO,
    O_SYNC,
    O_CLOCK,
    O_LINGER,
    O_THREADS,
    O_WORKERS,
    O_LARGE,
    O_CAP,
    O_QUEUE,
    O_MAXCONN,
    O_PERIP,
    O_TIMEOUT,
    O_RATE,
    O_BURST,
    O_SIGNUP_RATE,
    O_SIGNUP_BURST,
    O_IDEM_WINDOW,
    O_STREAMS_PER_USER,
    O_MAX_STREAMS,
    O_LOG,
    O_CONFIG,
    O_HELP,
    O_CACHE,
    O_POST_CACHE,
    O_MEMTABLE,
    O_PAGE_CACHE,
};

static const struct option options[] = {
    {"region", required_argument, 0, O_REGION},
    {"port", required_argument, 0, O_PORT},
    {"bind", required_argument, 0, O_BIND},
    {"data", required_argument, 0, O_DATA},
    {"redis", required_argument, 0, O_REDIS},
    {"peers", required_argument, 0, O_PEERS},
    {"peer-redis", required_argument, 0, O_PEER_REDIS},
    {"delay", required_argument, 0, O_DELAY},
    {"public-url", required_argument, 0, O_PUBLIC_URL},
    {"web", required_argument, 0, O_WEB},
    {"admin-token", required_argument, 0, O_ADMIN_TOKEN},
    {"admin-token-file", required_argument, 0, O_ADMIN_TOKEN_FILE},
    {"key-dir", required_argument, 0, O_KEY_DIR},
    {"keygen", no_argument, 0, O_KEYGEN},
    {"redis-auth-file", required_argument, 0, O_REDIS_AUTH},
    {"peer-redis-auth-file", required_argument, 0, O_PEER_REDIS_AUTH},
    {"demo", no_argument, 0, O_DEMO},
    {"sync", no_argument, 0, O_SYNC},
    {"cache-mb", required_argument, 0, O_CACHE},
    {"post-cache-mb", required_argument, 0, O_POST_CACHE},
    {"memtable-mb", required_argument, 0, O_MEMTABLE},
    {"page-cache-mb", required_argument, 0, O_PAGE_CACHE},
    {"clock-offset-ms", required_argument, 0, O_CLOCK},
    {"publish-linger-ms", required_argument, 0, O_LINGER},
    {"threads", required_argument, 0, O_THREADS},
    {"fanout-workers", required_argument, 0, O_WORKERS},
    {"large-threshold", required_argument, 0, O_LARGE},
    {"timeline-cap", required_argument, 0, O_CAP},
    {"queue-max", required_argument, 0, O_QUEUE},
    {"max-connections", required_argument, 0, O_MAXCONN},
    {"per-ip-connections", required_argument, 0, O_PERIP},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"rate-limit", required_argument, 0, O_RATE},
    {"rate-burst", required_argument, 0, O_BURST},
    {"signup-rate", required_argument, 0, O_SIGNUP_RATE},
    {"signup-burst", required_argument, 0, O_SIGNUP_BURST},
    {"idempotency-window-s", required_argument, 0, O_IDEM_WINDOW},
    {"streams-per-user", required_argument, 0, O_STREAMS_PER_USER},
    {"max-streams", required_argument, 0, O_MAX_STREAMS},
    {"log-level", required_argument, 0, O_LOG},
    {"config", required_argument, 0, O_CONFIG},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0},
};

static const char usage[] =
    "usage: driftfeed [flags]\n"
    "\n"
    "One driftfeed region: the HTTP/JSON API over its own RocksDB, replicating\n"
    "through Redis streams to its peers.\n"
    "\n"
    "  --region NAME            region name, [a-z0-9_] (default: local)\n"
    "  --port N                 HTTP port (default: 8080)\n"
    "  --bind ADDR              IPv4 address to listen on (default: 127.0.0.1)\n"
    "  --data DIR               RocksDB directory, created if missing (default: var/REGION)\n"
    "  --redis HOST:PORT        Redis for this region's replication log; without it the\n"
    "                           region runs alone (full API, no replication)\n"
    "  --peers A,B              peer regions to replicate with\n"
    "  --peer-redis A=H:P,...   where a peer's log lives (default: --redis)\n"
    "  --delay A=MS,...         initial simulated distance to peers (apply delay)\n"
    "  --key-dir DIR            log keys: DIR/REGION.key (secret, mode 0600) and DIR/PEER.pub\n"
    "                           for every peer; records are signed and checked (without it\n"
    "                           the log is not authenticated)\n"
    "  --keygen                 create DIR/REGION.key and .pub in --key-dir (kept if present)\n"
    "                           and exit\n"
    "  --redis-auth-file PATH   Redis AUTH for --redis: \"password\" or \"user password\"\n"
    "  --peer-redis-auth-file A=PATH,...  the same per peer (default: --redis-auth-file)\n"
    "  --public-url URL         URL announced for /v1/cluster (default: http://BIND:PORT)\n"
    "  --web DIR                browser demo files (default: the source tree's web/)\n"
    "  --demo                   enable /v1/admin/replication for loopback clients\n"
    "  --admin-token-file PATH  enable /v1/admin/replication for the bearer token in PATH\n"
    "                           (or in the environment: DRIFTFEED_ADMIN_TOKEN)\n"
    "  --sync                   fsync the WAL on every write (survives machine crashes;\n"
    "                           default: WAL without fsync, survives process crashes)\n"
    "  --cache-mb N             RocksDB block cache, index and filters included, MiB (default: "
    "64)\n"
    "  --memtable-mb N          RocksDB memtables of all column families, MiB (default: 64)\n"
    "  --post-cache-mb N        post values kept in memory for timelines, MiB (default: 32)\n"
    "  --page-cache-mb N        rendered first timeline pages kept, MiB, 0 = off (default: 64)\n"
    "  --clock-offset-ms N      shift this region's wall clock (tests of clock skew)\n"
    "  --publish-linger-ms N    a busy publisher gathers records this long (default: 5)\n"
    "  --threads N              HTTP threads (default: cores)\n"
    "  --fanout-workers N       fan-out worker threads (default: 2)\n"
    "  --large-threshold N      followers above which posts merge at read (default: 10000)\n"
    "  --timeline-cap N         home timeline entries per user (default: 800)\n"
    "  --queue-max N            fan-out jobs queued before 503 (default: 100000)\n"
    "  --max-connections N      open connections (default: 4096)\n"
    "  --per-ip-connections N   open connections per client address (default: 2048)\n"
    "  --timeout S              idle connection timeout in seconds (default: 30)\n"
    "  --rate-limit N           writes per second per token (default: 100); 0 turns every\n"
    "                           rate limit off, --signup-rate's included (load tests)\n"
    "  --rate-burst N           write burst per token (default: 2 x rate)\n"
    "  --signup-rate N          accounts created per minute per client address (an IPv6\n"
    "                           client's /64), 429 past it; 0 = off (default: 10)\n"
    "  --signup-burst N         signup burst per client address (default: 5)\n"
    "  --idempotency-window-s S how long a post's Idempotency-Key is remembered, seconds\n"
    "                           (default: 86400, 24 h)\n"
    "  --streams-per-user N     open event streams per user; one more ends the oldest\n"
    "                           (default: 16)\n"
    "  --max-streams N          open event streams per region, 503 past it (default: 1024)\n"
    "  --log-level LEVEL        debug, info, warn or error (default: info)\n"
    "  --config FILE            read flags from FILE: one \"name value\" per line, # comments\n"
    "  --help                   this text\n";

static void defaults(api_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->region, sizeof c->region, "local");
    snprintf(c->bind, sizeof c->bind, "127.0.0.1");
    c->port = 8080;
    snprintf(c->web_dir, sizeof c->web_dir, "%s", DF_WEB_DIR);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = cores > 0 ? (int)cores : 2;
    c->fanout_workers = 2;
    c->large_threshold = 10000;
    c->timeline_cap = 800;
    c->post_cache_mb = 32;
    c->memtable_mb = 64;
    c->linger_ms = 5;
    c->page_cache_mb = 64;
    c->queue_max = 100000;
    c->max_connections = 4096;
    c->per_ip_connections = 2048;
    c->timeout_s = 30;
    c->rate_limit = 100;
    c->signup_rate = 10;
    c->signup_burst = 5;
    c->idem_window_s = API_IDEM_WINDOW_S;
    c->streams_per_user = 16;
    c->max_streams = 1024;
    c->log_level = DF_LOG_INFO;
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

static int parse_file(api_config *c, const char *path);

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

static int apply(api_config *c, int opt, const char *arg)
{
    long long v = 0;
    switch (opt) {
    case O_REGION:
        if (!stg_valid_name(arg, strlen(arg), STG_ORIGIN_MAX)) {
            fprintf(stderr, "driftfeed: --region must match [a-z0-9_]{1,32}\n");
            return -1;
        }
        return copy(c->region, sizeof c->region, arg, "region");
    case O_PORT:
        if (number(arg, 1, 65535, &v, "port") < 0) return -1;
        c->port = (int)v;
        return 0;
    case O_BIND: return copy(c->bind, sizeof c->bind, arg, "bind");
    case O_DATA: return copy(c->data, sizeof c->data, arg, "data");
    case O_REDIS: return copy(c->redis, sizeof c->redis, arg, "redis");
    case O_PEERS: return copy(c->peers_raw, sizeof c->peers_raw, arg, "peers");
    case O_PEER_REDIS: return copy(c->peer_redis_raw, sizeof c->peer_redis_raw, arg, "peer-redis");
    case O_DELAY: return copy(c->delays_raw, sizeof c->delays_raw, arg, "delay");
    case O_PUBLIC_URL: return copy(c->public_url, sizeof c->public_url, arg, "public-url");
    case O_WEB: return copy(c->web_dir, sizeof c->web_dir, arg, "web");
    case O_ADMIN_TOKEN:
        fprintf(stderr, "driftfeed: --admin-token is gone (argv is visible in ps): put the token "
                        "in a file for --admin-token-file, or in DRIFTFEED_ADMIN_TOKEN\n");
        return -1;
    case O_ADMIN_TOKEN_FILE:
        return read_secret(arg, c->admin_token, sizeof c->admin_token, "admin-token-file");
    case O_KEY_DIR: return copy(c->key_dir, sizeof c->key_dir, arg, "key-dir");
    case O_KEYGEN: c->keygen = true; return 0;
    case O_REDIS_AUTH: return read_secret(arg, c->redis_auth, sizeof c->redis_auth, "redis-auth-file");
    case O_PEER_REDIS_AUTH:
        return copy(c->peer_redis_auth_raw, sizeof c->peer_redis_auth_raw, arg,
                    "peer-redis-auth-file");
    case O_DEMO: c->demo = true; return 0;
    case O_SYNC: c->sync = true; return 0;
    case O_CACHE:
        if (number(arg, 8, 1 << 20, &v, "cache-mb") < 0) return -1;
        c->cache_mb = (int)v;
        return 0;
    case O_MEMTABLE:
        if (number(arg, 16, 1 << 20, &v, "memtable-mb") < 0) return -1;
        c->memtable_mb = (int)v;
        return 0;
    case O_POST_CACHE:
        if (number(arg, 1, 1 << 20, &v, "post-cache-mb") < 0) return -1;
        c->post_cache_mb = (int)v;
        return 0;
    case O_PAGE_CACHE:
        if (number(arg, 0, 1 << 20, &v, "page-cache-mb") < 0) return -1;
        c->page_cache_mb = (int)v;
        return 0;
    case O_CLOCK:
        if (number(arg, -86400000LL, 86400000LL, &v, "clock-offset-ms") < 0) return -1;
        c->clock_offset_ms = v;
        return 0;
    case O_LINGER:
        if (number(arg, 0, 1000, &v, "publish-linger-ms") < 0) return -1;
        c->linger_ms = (int)v;
        return 0;
    case O_THREADS:
        if (number(arg, 1, 256, &v, "threads") < 0) return -1;
        c->threads = (int)v;
        return 0;
    case O_WORKERS:
        if (number(arg, 1, 64, &v, "fanout-workers") < 0) return -1;
        c->fanout_workers = (int)v;
        return 0;
    case O_LARGE:
        if (number(arg, 1, 1LL << 40, &v, "large-threshold") < 0) return -1;
        c->large_threshold = v;
        return 0;
    case O_CAP:
        if (number(arg, 1, 100000, &v, "timeline-cap") < 0) return -1;
        c->timeline_cap = (int)v;
        return 0;
    case O_QUEUE:
        if (number(arg, 1, 1LL << 40, &v, "queue-max") < 0) return -1;
        c->queue_max = (uint64_t)v;
        return 0;
    case O_MAXCONN:
        if (number(arg, 1, 1000000, &v, "max-connections") < 0) return -1;
        c->max_connections = (int)v;
        return 0;
    case O_PERIP:
        if (number(arg, 0, 1000000, &v, "per-ip-connections") < 0) return -1;
        c->per_ip_connections = (int)v;
        return 0;
    case O_TIMEOUT:
        if (number(arg, 0, 86400, &v, "timeout") < 0) return -1;
        c->timeout_s = (int)v;
        return 0;
    case O_RATE:
        if (number(arg, 0, 100000000, &v, "rate-limit") < 0) return -1;
        c->rate_limit = (double)v;
        return 0;
    case O_BURST:
        if (number(arg, 1, 100000000, &v, "rate-burst") < 0) return -1;
        c->rate_burst = (int)v;
        return 0;
    case O_SIGNUP_RATE:
        if (number(arg, 0, 100000000, &v, "signup-rate") < 0) return -1;
        c->signup_rate = (int)v;
        return 0;
    case O_SIGNUP_BURST:
        if (number(arg, 1, 100000000, &v, "signup-burst") < 0) return -1;
        c->signup_burst = (int)v;
        return 0;
    case O_IDEM_WINDOW:
        if (number(arg, 1, 366 * 86400, &v, "idempotency-window-s") < 0) return -1;
        c->idem_window_s = (int)v;
        return 0;
    case O_STREAMS_PER_USER:
        if (number(arg, 1, 100000, &v, "streams-per-user") < 0) return -1;
        c->streams_per_user = (int)v;
        return 0;
    case O_MAX_STREAMS:
        if (number(arg, 1, 1000000, &v, "max-streams") < 0) return -1;
        c->max_streams = (int)v;
        return 0;
    case O_LOG:
        if (!strcmp(arg, "debug"))
            c->log_level = DF_LOG_DEBUG;
        else if (!strcmp(arg, "info"))
            c->log_level = DF_LOG_INFO;
        else if (!strcmp(arg, "warn"))
            c->log_level = DF_LOG_WARN;
        else if (!strcmp(arg, "error"))
            c->log_level = DF_LOG_ERROR;
        else {
            fprintf(stderr, "driftfeed: --log-level is debug, info, warn or error\n");
            return -1;
        }
        return 0;
    case O_CONFIG: return parse_file(c, arg);
    }
    return -1;
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
        const struct option *o = options;
        while (o->name && strcmp(o->name, name) != 0) o++;
        if (!o->name || o->val == O_CONFIG || o->val == O_HELP) {
            fprintf(stderr, "driftfeed: %s:%d: unknown setting \"%s\"\n", path, lineno, name);
            rc = -1;
        } else {
            rc = apply(c, o->val, val);
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
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == O_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (opt == '?' || apply(c, opt, optarg) < 0) {
            fprintf(stderr, "driftfeed: see --help\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "driftfeed: unexpected argument \"%s\"; see --help\n", argv[optind]);
        return -1;
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
