/* publisher.c -- copies the outbox into the Redis stream df:log:<region>.
 *
 * DESIGN: entries go out in seq order with explicit ids "<seq>-1", so a
 * repeat is refused by Redis and costs nothing. On every (re)connect and
 * once a second the publisher compares the stream's last id with what it
 * published: a stream that is behind (Redis restarted without its data)
 * is refilled from the oldest outbox entry still kept -- the outbox keeps
 * every entry until all peers have applied it, so that is enough for every
 * peer. A publisher that just sent a partial chunk waits linger_ms before
 * the next (Kafka's linger.ms): under load every Redis command, and every
 * subscriber wake-up that follows it, then carries many records; a quiet
 * region publishes its next write at once. Once a second it also
 * announces the region's URL, reads the announced regions, publishes
 * df:seq:<region> and truncates the outbox and the stream below what every
 * peer has applied (df:progress:<peer>). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256

static uint64_t stream_last_seq(redisContext **c, const char *key, bool *ok)
{
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    redisReply *rep = repl_redis_cmd(c, 6, argv, NULL);
    *ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY;
    uint64_t seq = 0;
    if (*ok && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1 && rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
        seq = repl_parse_entry_id(rep->element[0]->element[0]->str);
    if (rep) freeReplyObject(rep);
    return seq;
}

/* Where publishing resumes: after the stream's last entry, but never past
 * what we have, and from the oldest kept entry if the stream lost some. */
static void resync(repl *r, redisContext **c, const char *key)
{
    bool ok;
    uint64_t last = stream_last_seq(c, key, &ok);
    if (!ok) return;
    uint64_t published = atomic_load(&r->published);
    uint64_t floor = atomic_load(&r->floor);
    if (last < published && floor - 1 < published) {
        /* (A stream merely trimmed to empty ends below published too, but
         * then the floor says nothing is missing.) */
        df_log(DF_LOG_WARN,
               "replication: stream %s ends at %llu but %llu was published; "
               "republishing from %llu",
               key, (unsigned long long)last, (unsigned long long)published,
               (unsigned long long)floor);
        atomic_store(&r->published, floor - 1);
    } else if (last > published) {
        atomic_store(&r->published, last); /* restarted: these are out already */
    }
}

/* Publishes up to CHUNK outbox entries after r->published. Returns how
 * many, or -1 on a connection error. */
static int publish_chunk(repl *r, redisContext **c, const char *key, uint64_t upto)
{
    uint64_t from = atomic_load(&r->published) + 1;
    if (from > upto) return 0;
    char lo[8], hi[8];
    stg_key_u64(lo, from);
    stg_key_u64(hi, upto + 1);
    stg_iter *it = stg_iter_range(r->db, STG_CF_OUTBOX, lo, 8, hi, 8, false);
    const char *k, *v;
    size_t kl, vl;
    int n = 0;
    uint64_t last = from - 1;
    while (n < CHUNK && stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (kl != 8) continue;
        char id[32];
        uint64_t seq = stg_key_get_u64(k);
        snprintf(id, sizeof id, "%llu-1", (unsigned long long)seq);
        const char *argv[] = {"XADD", key, id, "r", v};
        size_t lens[] = {4, strlen(key), strlen(id), 1, vl};
        redisAppendCommandArgv(*c, 5, argv, lens);
        last = seq;
        n++;
    }
    stg_iter_free(it);
    char seqkey[64], seqval[32];
    if (n) {
        /* How far we are, for peers to tell how far behind they are. */
        snprintf(seqkey, sizeof seqkey, "df:seq:%s", r->region);
        snprintf(seqval, sizeof seqval, "%llu", (unsigned long long)last);
        const char *set[] = {"SET", seqkey, seqval};
        redisAppendCommandArgv(*c, 3, set, NULL);
    }
    for (int i = 0; i < n + (n > 0); i++) {
        redisReply *rep = NULL;
        if (redisGetReply(*c, (void **)&rep) != REDIS_OK || !rep) {
            redisFree(*c);
            *c = NULL;
            return -1;
        }
        /* An error here means the id is already in the stream. */
        freeReplyObject(rep);
    }
    if (n) atomic_store(&r->published, last);
    return n;
}

/* Announces, reads the cluster, publishes our seq, truncates. */
static void housekeeping(repl *r, redisContext **c, const char *key)
{
    char seqkey[64], pub[32];
    snprintf(seqkey, sizeof seqkey, "df:seq:%s", r->region);
    snprintf(pub, sizeof pub, "%llu", (unsigned long long)atomic_load(&r->published));
    const char *set[] = {"SET", seqkey, pub};
    redisReply *rep = repl_redis_cmd(c, 3, set, NULL);
    if (rep) freeReplyObject(rep);
    if (r->public_url[0]) {
        const char *ann[] = {"HSET", "df:regions", r->region, r->public_url};
        if ((rep = repl_redis_cmd(c, 4, ann, NULL))) freeReplyObject(rep);
    }
    const char *all[] = {"HGETALL", "df:regions"};
    if ((rep = repl_redis_cmd(c, 2, all, NULL))) {
        repl_cluster_merge(r, rep);
        freeReplyObject(rep);
    }
    /* The lowest seq of ours that every peer has applied. */
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < r->npeers && *c; i++) {
        char pk[64];
        snprintf(pk, sizeof pk, "df:progress:%s", r->peers[i].name);
        const char *get[] = {"HGET", pk, r->region};
        rep = repl_redis_cmd(c, 3, get, NULL);
        uint64_t v = 0;
        if (rep && rep->type == REDIS_REPLY_STRING) v = strtoull(rep->str, NULL, 10);
        if (rep) freeReplyObject(rep);
        if (v < min) min = v;
    }
    uint64_t published = atomic_load(&r->published);
    if (min > published) min = published;
    uint64_t floor = atomic_load(&r->floor);
    if (!*c || min == UINT64_MAX || min < floor) return;
    char lo[8], hi[8];
    stg_key_u64(lo, floor);
    stg_key_u64(hi, min + 1);
    stg_batch *b = stg_batch_new(r->db);
    stg_iter *it = stg_iter_range(r->db, STG_CF_OUTBOX, lo, 8, hi, 8, false);
    const char *k;
    size_t kl;
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) stg_batch_delete(b, STG_CF_OUTBOX, k, kl);
    stg_iter_free(it);
    stg_batch_meta_u64(b, "outbox_floor", min + 1);
    if (stg_write(r->db, b) == 0) atomic_store(&r->floor, min + 1);
    stg_batch_free(b);
    char minid[32];
    snprintf(minid, sizeof minid, "%llu", (unsigned long long)(min + 1));
    const char *trim[] = {"XTRIM", key, "MINID", minid};
    if ((rep = repl_redis_cmd(c, 4, trim, NULL))) freeReplyObject(rep);
}

void *repl_publisher_main(void *arg)
{
    repl *r = arg;
    df_thread_name("df-publish");
    char key[64];
    snprintf(key, sizeof key, "df:log:%s", r->region);
    redisContext *c = NULL;
    uint64_t backoff = 50, next_house = 0;
    while (!atomic_load(&r->stopping)) {
        if (!c) {
            atomic_store(&r->log_connected, false);
            if (!(c = repl_redis_reconnect(r, r->log_addr, &backoff))) continue;
            resync(r, &c, key);
            if (!c) continue;
            atomic_store(&r->log_connected, true);
            df_log(DF_LOG_INFO, "replication: publishing to %s at %s", key, r->log_addr);
            next_house = 0;
        }
        pthread_mutex_lock(&r->seq_mu);
        uint64_t upto = r->seq;
        pthread_mutex_unlock(&r->seq_mu);
        int n = publish_chunk(r, &c, key, upto);
        if (n < 0) continue;
        /* Busy but not full: let the next records gather for a moment, so
         * Redis and every subscriber wake once for many of them. The first
         * record after a quiet spell still goes out at once. */
        if (n > 0 && n < CHUNK && r->linger_ms) repl_nap(r, r->linger_ms);
        uint64_t now = df_mono_ms();
        if (now >= next_house) {
            housekeeping(r, &c, key);
            if (c) resync(r, &c, key);
            next_house = now + 1000;
        }
        if (n == 0 && c) {
            /* Nothing to publish: wait for a commit or the next housekeeping. */
            pthread_mutex_lock(&r->seq_mu);
            if (r->seq == atomic_load(&r->published) && !atomic_load(&r->stopping)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 200 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&r->seq_cv, &r->seq_mu, &ts);
            }
            pthread_mutex_unlock(&r->seq_mu);
        }
    }
    if (c) redisFree(c);
    return NULL;
}
