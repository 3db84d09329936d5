/* redis.c -- Redis connections for the replication threads. Each thread
 * owns its connection; a failed one is freed and reconnected with backoff. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

redisContext *repl_redis_connect(const char *addr, int timeout_ms)
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
    return c;
}

redisContext *repl_redis_reconnect(struct repl *r, const char *addr, uint64_t *backoff)
{
    redisContext *c = repl_redis_connect(addr, 1000);
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

uint64_t repl_parse_entry_id(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || strcmp(end, "-1") != 0) return 0;
    return v;
}

void repl_cluster_merge(struct repl *r, const redisReply *all)
{
    if (!all || all->type != REDIS_REPLY_ARRAY) return;
    pthread_mutex_lock(&r->cluster_mu);
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const redisReply *n = all->element[i], *u = all->element[i + 1];
        if (n->type != REDIS_REPLY_STRING || u->type != REDIS_REPLY_STRING) continue;
        if (!stg_valid_name(n->str, n->len, STG_ORIGIN_MAX) || u->len >= 256) continue;
        size_t j = 0;
        while (j < r->ncluster && strcmp(r->cluster[j].name, n->str) != 0) j++;
        if (j == r->ncluster) {
            if (r->ncluster == MAX_REGIONS) continue;
            r->ncluster++;
        }
        snprintf(r->cluster[j].name, sizeof r->cluster[j].name, "%s", n->str);
        snprintf(r->cluster[j].url, sizeof r->cluster[j].url, "%.*s", (int)u->len, u->str);
    }
    pthread_mutex_unlock(&r->cluster_mu);
}
