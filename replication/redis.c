/* redis.c -- Redis connections for the replication threads. Each thread
 * owns its connection; a failed one is freed and reconnected with backoff. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* AUTH password, or AUTH user password. A refusal is logged once per
 * thread until a connection succeeds again. */
static __thread bool auth_refused_logged;

static bool authenticate(redisContext *c, const char *addr, const char *auth)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", auth);
    const char *argv[3] = {"AUTH", buf, NULL};
    char *sp = strchr(buf, ' ');
    int argc = 2;
    if (sp) {
        *sp = '\0';
        argv[2] = sp + 1;
        argc = 3;
    }
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    sodium_memzero(buf, sizeof buf);
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (!ok && !auth_refused_logged) {
        df_log(DF_LOG_ERROR, "replication: Redis at %s refused AUTH: %.200s", addr,
               rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
        auth_refused_logged = true;
    }
    if (rep) freeReplyObject(rep);
    return ok;
}

redisContext *repl_redis_connect(const char *addr, const char *auth, int timeout_ms)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    int port = 6379;
    size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
    if (hl >= sizeof host) return NULL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (colon) port = atoi(colon + 1);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c) return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    /* Reads block at most this long beyond any XREAD BLOCK time. */
    struct timeval rt = {5, 0};
    redisSetTimeout(c, rt);
    if (auth && !authenticate(c, addr, auth)) {
        redisFree(c);
        return NULL;
    }
    auth_refused_logged = false;
    return c;
}

redisContext *repl_redis_reconnect(struct repl *r, const char *addr, const char *auth,
                                   uint64_t *backoff)
{
    redisContext *c = repl_redis_connect(addr, auth, 1000);
    if (c) {
        *backoff = 50;
        return c;
    }
    repl_nap(r, *backoff);
    *backoff = *backoff * 2 > 2000 ? 2000 : *backoff * 2;
    return NULL;
}

bool repl_nap(struct repl *r, uint64_t ms)
{
    uint64_t end = df_mono_ms() + ms;
    while (!atomic_load(&r->stopping)) {
        uint64_t now = df_mono_ms();
        if (now >= end) return true;
        uint64_t step = end - now < 20 ? end - now : 20;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

redisReply *repl_redis_cmd(redisContext **c, int argc, const char **argv, const size_t *lens)
{
    if (!*c) return NULL;
    redisReply *rep = redisCommandArgv(*c, argc, argv, lens);
    if (!rep || (*c)->err) {
        if (rep) freeReplyObject(rep);
        redisFree(*c);
        *c = NULL;
        return NULL;
    }
    return rep;
}

int repl_redis_replies(redisContext **c, int n, redisReply **out)
{
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; *c && i < n; i++) {
        if (redisGetReply(*c, (void **)&out[i]) == REDIS_OK && out[i] && !(*c)->err) continue;
        for (int j = 0; j <= i; j++)
            if (out[j]) freeReplyObject(out[j]);
        redisFree(*c);
        *c = NULL;
    }
    return *c ? 0 : -1;
}

bool repl_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool repl_parse_dotted(const char *s, size_t n, uint64_t *v, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        const char *dot = i + 1 < k ? memchr(s, '.', n) : s + n;
        if (!dot || !repl_parse_u64(s, (size_t)(dot - s), &v[i])) return false;
        n -= (size_t)(dot - s) + (i + 1 < k);
        s = dot + 1;
    }
    return true;
}

bool repl_parse_stream_id(const char *s, size_t n, uint64_t *ms, uint64_t *sq)
{
    const char *dash = memchr(s, '-', n);
    return dash && repl_parse_u64(s, (size_t)(dash - s), ms) &&
           repl_parse_u64(dash + 1, n - (size_t)(dash + 1 - s), sq);
}

uint64_t repl_parse_entry_id(const char *s)
{
    uint64_t ms, sq;
    return repl_parse_stream_id(s, strlen(s), &ms, &sq) && sq == 1 ? ms : 0;
}

bool repl_valid_url(const char *s, size_t n)
{
    if (n >= 256 || !((n > 7 && memcmp(s, "http://", 7) == 0) ||
                      (n > 8 && memcmp(s, "https://", 8) == 0)))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\')
            return false;
    }
    return true;
}

/* The key that signs name's announcements: ours, a peer's, or none. */
static const unsigned char *announcer_key(struct repl *r, const char *name)
{
    if (strcmp(name, r->region) == 0) return r->pk;
    const peer *p = repl_peer_named(r, name);
    return p ? p->pk : NULL;
}

static bool removed_peer(struct repl *r, const char *name)
{
    peer *p = repl_peer_named(r, name);
    return p && atomic_load(&p->removed);
}

void repl_cluster_merge(struct repl *r, const redisReply *all)
{
    if (!all || all->type != REDIS_REPLY_ARRAY) return;
    struct {
        char name[STG_ORIGIN_MAX + 1];
        unsigned char pk[32];
    } join[4]; /* at most a few new regions a pass */
    size_t njoin = 0;
    pthread_mutex_lock(&r->cluster_mu);
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const redisReply *n = all->element[i], *u = all->element[i + 1];
        if (n->type != REDIS_REPLY_STRING || u->type != REDIS_REPLY_STRING) continue;
        if (!stg_valid_name(n->str, n->len, STG_ORIGIN_MAX) || removed_peer(r, n->str)) continue;
        const unsigned char *pk = r->authenticated ? announcer_key(r, n->str) : NULL;
        char url[256];
        int ul;
        /* A region we do not replicate with, whose key is in our key dir:
         * a region joining the cluster. */
        bool joins = false;
        if (r->authenticated && !pk && njoin < sizeof join / sizeof join[0] &&
            repl_peer_key_find(r, n->str, join[njoin].pk) == 0) {
            pk = join[njoin].pk;
            joins = true;
        }
        if (r->authenticated && !pk) continue; /* a region we hold no key for */
        ul = repl_value_open(pk, "df:regions", n->str, u->str, u->len, url, sizeof url);
        if (ul < 0 || !repl_valid_url(url, (size_t)ul)) continue;
        if (joins) snprintf(join[njoin++].name, sizeof join[0].name, "%s", n->str);
        size_t j = 0;
        while (j < r->ncluster && strcmp(r->cluster[j].name, n->str) != 0) j++;
        if (j == r->ncluster) {
            if (r->ncluster == MAX_REGIONS) continue;
            r->ncluster++;
        }
        snprintf(r->cluster[j].name, sizeof r->cluster[j].name, "%s", n->str);
        snprintf(r->cluster[j].url, sizeof r->cluster[j].url, "%s", url);
        r->cluster[j].authenticated = pk != NULL || strcmp(n->str, r->region) == 0;
    }
    pthread_mutex_unlock(&r->cluster_mu);
    for (size_t i = 0; i < njoin; i++) repl_peer_join(r, join[i].name, join[i].pk);
}
