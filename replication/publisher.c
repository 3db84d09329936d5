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
 * peer has applied (df:progress:<peer>). While writes wait for
 * acknowledgements (ack=quorum|all) it reads that progress every
 * ACK_POLL_MS as well. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256
/* While a write waits for acknowledgements, peers' progress is read this
 * often (ms): a peer publishes it right after each batch it applies. */
#define ACK_POLL_MS 5

/* The id of the stream's last entry (0-0 if it is empty). */
static bool stream_last(redisContext **c, const char *key, uint64_t *ms, uint64_t *sq)
{
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    redisReply *rep = repl_redis_cmd(c, 6, argv, NULL);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY;
    *ms = *sq = 0;
    if (ok && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1 && rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
        ok = repl_parse_stream_id(rep->element[0]->element[0]->str, rep->element[0]->element[0]->len,
                                  ms, sq);
    if (rep) freeReplyObject(rep);
    return ok;
}

/* Whether the stream's entries for seqs from..to are the ones we wrote:
 * 1 yes, 0 no (missing, or other bytes), -1 connection error. Entries no
 * longer in the outbox (every peer has applied them) are not compared. */
static int stream_matches(repl *r, redisContext **c, const char *key, uint64_t from, uint64_t to)
{
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%llu-1", (unsigned long long)from);
    snprintf(hi, sizeof hi, "%llu-1", (unsigned long long)to);
    const char *argv[] = {"XRANGE", key, lo, hi};
    redisReply *rep = repl_redis_cmd(c, 4, argv, NULL);
    if (!rep) return -1;
    int ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == to - from + 1;
    for (size_t i = 0; ok && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        ok = e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
             e->element[0]->type == REDIS_REPLY_STRING &&
             repl_parse_entry_id(e->element[0]->str) == from + i &&
             e->element[1]->type == REDIS_REPLY_ARRAY;
        if (!ok) break;
        const redisReply *f = e->element[1], *val = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (f->element[j]->type == REDIS_REPLY_STRING && strcmp(f->element[j]->str, "r") == 0)
                val = f->element[j + 1];
        char k[8], *v;
        size_t vl;
        stg_key_u64(k, from + i);
        int rc = stg_get(r->db, STG_CF_OUTBOX, k, 8, &v, &vl);
        if (rc == DF_ENOTFOUND) continue;
        ok = rc == 0 && val && val->type == REDIS_REPLY_STRING && val->len == vl &&
             memcmp(val->str, v, vl) == 0;
        if (rc == 0) free(v);
    }
    freeReplyObject(rep);
    return ok;
}

/* df:seq:<region> = "<last published seq>.<generation>.<epoch>", signed. */
static void seq_value(const repl *r, uint64_t seq, char key[64], char *val, size_t cap)
{
    char v[72];
    snprintf(key, 64, "df:seq:%s", r->region);
    snprintf(v, sizeof v, "%llu.%llu.%llu", (unsigned long long)seq,
             (unsigned long long)r->generation, (unsigned long long)r->epoch);
    repl_value_seal(r, key, "", v, val, cap);
}

/* df:rewrites <region> = "<generation>.<first seq>.<epoch>": subscribers
 * that saw an older generation of this epoch read the stream again from
 * that seq (re-applying is idempotent), so nothing a forged entry
 * displaced is missed. */
static void announce_generation(repl *r, redisContext **c)
{
    if (r->generation == 0) return;
    char v[72], val[200];
    snprintf(v, sizeof v, "%llu.%llu.%llu", (unsigned long long)r->generation,
             (unsigned long long)r->rewrite_from, (unsigned long long)r->epoch);
    repl_value_seal(r, "df:rewrites", r->region, v, val, sizeof val);
    const char *set[] = {"HSET", "df:rewrites", r->region, val};
    redisReply *rep = repl_redis_cmd(c, 4, set, NULL);
    if (rep) freeReplyObject(rep);
}

/* Our stream holds entries we did not write (forged, or another store's
 * under our name): it is deleted and written again from the outbox, so
 * peers stopped at the gap read the real records. */
static void rewrite_stream(repl *r, redisContext **c, const char *key, uint64_t at)
{
    uint64_t floor = atomic_load(&r->floor);
    df_log(DF_LOG_ERROR,
           "replication: %s holds an entry at seq %llu that this region did not write; "
           "rewriting the stream from the outbox (seq %llu on)",
           key, (unsigned long long)at, (unsigned long long)floor);
    /* The new generation is durable before the stream goes, so a restart
     * never announces an older one for it. */
    if (repl_next_generation(r, floor) < 0) return;
    const char *del[] = {"DEL", key};
    redisReply *rep = repl_redis_cmd(c, 2, del, NULL);
    if (!rep) return;
    freeReplyObject(rep);
    atomic_store(&r->published, floor - 1);
    atomic_fetch_add(&r->log_rewrites, 1);
    announce_generation(r, c);
}

/* Whether the stream holds every seq from its first entry to last. */
static bool stream_whole(redisContext **c, const char *key, uint64_t last)
{
    const char *len[] = {"XLEN", key}, *head[] = {"XRANGE", key, "-", "+", "COUNT", "1"};
    redisAppendCommandArgv(*c, 2, len, NULL);
    redisAppendCommandArgv(*c, 6, head, NULL);
    redisReply *reps[2];
    if (repl_redis_replies(c, 2, reps) < 0) return true; /* reconnect first */
    uint64_t first = 0;
    bool whole = true;
    if (reps[0]->type == REDIS_REPLY_INTEGER && reps[1]->type == REDIS_REPLY_ARRAY &&
        reps[1]->elements == 1 && reps[1]->element[0]->type == REDIS_REPLY_ARRAY &&
        reps[1]->element[0]->elements == 2 &&
        reps[1]->element[0]->element[0]->type == REDIS_REPLY_STRING &&
        (first = repl_parse_entry_id(reps[1]->element[0]->element[0]->str)) != 0)
        whole = first <= last && (uint64_t)reps[0]->integer == last - first + 1;
    freeReplyObject(reps[0]);
    freeReplyObject(reps[1]);
    return whole;
}

/* Where publishing resumes: after the stream's last entry, but never past
 * what we have, and from the oldest kept entry if the stream lost some. A
 * stream whose last entry we did not write is rewritten. */
static void resync(repl *r, redisContext **c, const char *key)
{
    uint64_t last, sq;
    if (!stream_last(c, key, &last, &sq)) {
        if (*c) rewrite_stream(r, c, key, 0); /* an id no region writes */
        return;
    }
    pthread_mutex_lock(&r->seq_mu);
    uint64_t seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    uint64_t published = atomic_load(&r->published);
    uint64_t floor = atomic_load(&r->floor);
    if ((last || sq) && (sq != 1 || last > seq)) {
        rewrite_stream(r, c, key, last);
    } else if (last < published && floor - 1 < published) {
        /* (A stream merely trimmed to empty ends below published too, but
         * then the floor says nothing is missing.) */
        df_log(DF_LOG_WARN,
               "replication: stream %s ends at %llu but %llu was published; "
               "republishing from %llu",
               key, (unsigned long long)last, (unsigned long long)published,
               (unsigned long long)floor);
        atomic_store(&r->published, floor - 1);
    } else if (last && !stream_whole(c, key, last)) {
        if (*c) rewrite_stream(r, c, key, last); /* entries deleted from its middle */
    } else if (last > published) {
        /* Restarted: these are out already, if the last one is ours. */
        int m = stream_matches(r, c, key, last, last);
        if (m == 1)
            atomic_store(&r->published, last);
        else if (m == 0)
            rewrite_stream(r, c, key, last);
    }
}

/* The chunk being published: copies of its outbox entries, and their
 * record hashes when the log is signed. */
typedef struct chunk {
    uint64_t first, seq[CHUNK];
    size_t off[CHUNK + 1];
    char *bytes;
    size_t cap;
    unsigned char hash[CHUNK][REPL_HASH_LEN];
    int n;
} chunk;

static void chunk_load(repl *r, chunk *ch, uint64_t from, uint64_t upto)
{
    char lo[8], hi[8];
    stg_key_u64(lo, from);
    stg_key_u64(hi, upto + 1);
    stg_iter *it = stg_iter_range(r->db, STG_CF_OUTBOX, lo, 8, hi, 8, false);
    const char *k, *v;
    size_t kl, vl;
    ch->n = 0;
    ch->first = from;
    ch->off[0] = 0;
    while (ch->n < CHUNK && stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (kl != 8) continue;
        size_t at = ch->off[ch->n];
        if (at + vl > ch->cap) {
            ch->cap = (at + vl) * 2;
            ch->bytes = xrealloc(ch->bytes, ch->cap);
        }
        memcpy(ch->bytes + at, v, vl);
        if (r->authenticated) repl_record_hash(v, vl, ch->hash[ch->n]);
        ch->seq[ch->n++] = stg_key_get_u64(k);
        ch->off[ch->n] = at + vl;
    }
    stg_iter_free(it);
}

/* Appends MULTI, the chunk's XADDs, EXEC: subscribers see a chunk whole or
 * not at all. The last entry carries the chunk's signature: fields a (its
 * first seq), e (our epoch), h (every record's hash, in seq order) and s
 * (the signature of h, written under the stream key and field
 * "<epoch>:<first>-<last>"). */
static void append_chunk(repl *r, redisContext *c, const char *key, const chunk *ch,
                         const char *seqkey, const char *seqval)
{
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    redisAppendCommandArgv(c, 1, multi, NULL);
    for (int i = 0; i < ch->n; i++) {
        char id[32], first[24], epoch[24], range[72];
        unsigned char sig[REPL_SIG_LEN];
        snprintf(id, sizeof id, "%llu-1", (unsigned long long)ch->seq[i]);
        const char *argv[13] = {"XADD", key, id, "r", ch->bytes + ch->off[i]};
        size_t lens[13] = {4, strlen(key), strlen(id), 1, ch->off[i + 1] - ch->off[i]};
        int argc = 5;
        if (r->authenticated && i == ch->n - 1) {
            snprintf(first, sizeof first, "%llu", (unsigned long long)ch->seq[0]);
            snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)r->epoch);
            snprintf(range, sizeof range, "%s:%s-%llu", epoch, first, (unsigned long long)ch->seq[i]);
            repl_sign(r, key, range, ch->hash, (size_t)ch->n * REPL_HASH_LEN, sig);
            const char *extra[] = {"a", first, "e", epoch, "h", (const char *)ch->hash,
                                   "s", (const char *)sig};
            size_t elens[] = {1, strlen(first), 1, strlen(epoch), 1, (size_t)ch->n * REPL_HASH_LEN,
                              1, sizeof sig};
            for (int e = 0; e < 8; e++, argc++) {
                argv[argc] = extra[e];
                lens[argc] = elens[e];
            }
        }
        redisAppendCommandArgv(c, argc, argv, lens);
    }
    /* How far we are, in the same transaction: a peer never sees entries
     * past the seq announced, so a seq below its cursor means a log that
     * went back. */
    const char *set[] = {"SET", seqkey, seqval};
    redisAppendCommandArgv(c, 3, set, NULL);
    redisAppendCommandArgv(c, 1, exec, NULL);
}

/* An XADD refused because the id is in the stream already: published. */
static bool already_there(const redisReply *rep)
{
    return rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "equal or smaller") != NULL;
}

/* Publishes up to CHUNK outbox entries after r->published. Returns how
 * many, -1 on a connection error, -2 if Redis refused them (out of memory,
 * read-only, persistence failing...): nothing counts as published until
 * Redis has said so for every entry. */
static int publish_chunk(repl *r, redisContext **c, const char *key, uint64_t upto, chunk *ch)
{
    uint64_t from = atomic_load(&r->published) + 1;
    if (from > upto) return 0;
    chunk_load(r, ch, from, upto);
    int n = ch->n;
    if (n == 0) return 0;
    char seqkey[64], seqval[200];
    seq_value(r, ch->seq[n - 1], seqkey, seqval, sizeof seqval);
    append_chunk(r, *c, key, ch, seqkey, seqval);
    /* Replies: +OK (MULTI), +QUEUED per XADD and for the SET, then EXEC's. */
    redisReply *reps[CHUNK + 4];
    if (repl_redis_replies(c, n + 3, reps) < 0) return -1;
    const redisReply *ex = reps[n + 2];
    bool ok = ex->type == REDIS_REPLY_ARRAY && ex->elements == (size_t)n + 1;
    const char *why = ex->type == REDIS_REPLY_ERROR ? ex->str : NULL;
    for (int i = 0; ok && i < n; i++) {
        const redisReply *e = ex->element[i];
        if (e->type == REDIS_REPLY_STRING || already_there(e)) continue;
        ok = false;
        why = e->type == REDIS_REPLY_ERROR ? e->str : "unexpected reply";
    }
    /* A refusal at queueing time (-OOM, -MISCONF) shows on the XADD itself. */
    for (int i = 1; !ok && !why && i <= n + 1; i++)
        if (reps[i]->type == REDIS_REPLY_ERROR) why = reps[i]->str;
    if (!ok && !r->publish_failing)
        df_log(DF_LOG_ERROR, "replication: Redis refused %s entries %llu..%llu: %.200s; retrying",
               key, (unsigned long long)ch->seq[0], (unsigned long long)ch->seq[n - 1],
               why ? why : "unexpected reply");
    r->publish_failing = !ok;
    /* Refused as present: a prefix of the chunk. Present as we wrote it? */
    int dups = 0;
    while (ok && dups < n && already_there(ex->element[dups])) dups++;
    for (int i = 0; i < n + 3; i++) freeReplyObject(reps[i]);
    if (!ok) return -2;
    if (dups) {
        int m = stream_matches(r, c, key, ch->seq[0], ch->seq[dups - 1]);
        if (m < 0) return -1;
        if (m == 0) {
            rewrite_stream(r, c, key, ch->seq[0]);
            return -2;
        }
    }
    atomic_store(&r->published, ch->seq[n - 1]);
    return n;
}

/* The last seq to truncate: what every peer applied (min) -- or, where
 * anti-entropy runs, also what is past the retention by count or age, so a
 * peer that is away for long no longer holds the outbox and the stream
 * back: it finds a gap when it returns, and repair fills it. */
#define RETENTION_SCAN_MAX 100000 /* outbox entries read for their age a pass */
static uint64_t retained_below(repl *r, uint64_t min, uint64_t floor, uint64_t published)
{
    if (!r->repair_interval_ms || !r->authenticated) return min;
    uint64_t cut = min;
    if (r->retain_records && published > r->retain_records && published - r->retain_records > cut)
        cut = published - r->retain_records;
    if (r->retain_ms) {
        uint64_t now = df_now_ms(), n = 0;
        char lo[8], hi[8];
        stg_key_u64(lo, cut + 1 > floor ? cut + 1 : floor);
        stg_key_u64(hi, published + 1);
        stg_iter *it = stg_iter_range(r->db, STG_CF_OUTBOX, lo, 8, hi, 8, false);
        const char *k, *v;
        size_t kl, vl;
        stg_record rec;
        while (n++ < RETENTION_SCAN_MAX && stg_iter_next(it, &k, &kl, &v, &vl) && kl == 8 &&
               repl_record_decode(v, vl, &rec) == 0 &&
               repl_hlc_ms(rec.ver.hlc) + r->retain_ms < now)
            cut = stg_key_get_u64(k);
        stg_iter_free(it);
    }
    if (cut > min)
        df_log(DF_LOG_INFO, "replication: retention drops seqs %llu..%llu of our log before every "
                            "peer applied them (repair catches a returning peer up)",
               (unsigned long long)(min + 1), (unsigned long long)cut);
    return cut;
}

/* How much of our log peer p has applied, from its df:progress value
 * (HGET reply rep), as a seq of this store's: a value that is missing,
 * malformed or not signed by p counts as 0 -- it can hold truncation and
 * acknowledgements back, never hurry them -- and so does progress in
 * another epoch's log (epoch 0: a subscriber that follows none, as over an
 * unsigned log). A peer that applied seqs or a generation of ours we never
 * issued (past seq, the last we committed) means this store is older than
 * our log (restored from a copy): *restored is set, with the generation
 * it saw in *gen, and it counts as 0. */
static uint64_t progress_value(repl *r, peer *p, const redisReply *rep, uint64_t seq,
                               bool *restored, uint64_t *gen_seen)
{
    char pk[64], num[72];
    uint64_t pv[3] = {0};
    snprintf(pk, sizeof pk, "df:progress:%s", p->name);
    int nl = rep && rep->type == REDIS_REPLY_STRING
                 ? repl_value_open(repl_peer_key(p), pk, r->region, rep->str, rep->len, num,
                                   sizeof num)
                 : -1;
    if (nl < 0 || !repl_parse_dotted(num, (size_t)nl, pv, 3) || (pv[2] && pv[2] != r->epoch))
        return 0;
    uint64_t v = pv[0], gen = pv[1];
    if (gen > r->generation || (gen == r->generation && v > seq)) {
        *restored = true;
        *gen_seen = gen;
        return 0;
    }
    /* Progress made in an older generation of our stream may count
     * entries that were not ours: only what came before the rewrite. */
    if (gen < r->generation && v >= r->rewrite_from) v = r->rewrite_from - 1;
    /* What acknowledgements wait for (repl_acked_by) moves only forward. */
    if (v > atomic_load(&p->acked)) {
        atomic_store(&p->acked, v);
        repl_progressed(r);
    }
    return v;
}

/* Every peer's progress through our log (peers not removed), in one
 * round trip: the lowest into *min (UINT64_MAX: no peer); *restored and
 * *newest as progress_value says. Moves what acknowledgements wait on.
 * False on a connection error. */
static bool read_progress(repl *r, redisContext **c, uint64_t *min, bool *restored,
                          uint64_t *newest)
{
    size_t n = atomic_load(&r->npeers), asked = 0;
    redisReply *reps[REPL_MAX_PEERS];
    peer *asked_of[REPL_MAX_PEERS];
    pthread_mutex_lock(&r->seq_mu);
    uint64_t seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    *min = UINT64_MAX;
    *restored = false;
    *newest = 0;
    for (size_t i = 0; i < n; i++) {
        peer *p = &r->peers[i];
        if (atomic_load(&p->removed)) continue; /* decommissioned: not waited for */
        char pk[64];
        snprintf(pk, sizeof pk, "df:progress:%s", p->name);
        const char *get[] = {"HGET", pk, r->region};
        redisAppendCommandArgv(*c, 3, get, NULL);
        asked_of[asked++] = p;
    }
    if (!asked) return true;
    if (repl_redis_replies(c, (int)asked, reps) < 0) return false;
    for (size_t i = 0; i < asked; i++) {
        uint64_t gen = 0, v = progress_value(r, asked_of[i], reps[i], seq, restored, &gen);
        if (gen > *newest) *newest = gen;
        if (v < *min) *min = v;
        freeReplyObject(reps[i]);
    }
    return true;
}

/* Announces, reads the cluster, publishes our seq, truncates. */
static void housekeeping(repl *r, redisContext **c, const char *key)
{
    char seqkey[64], val[400];
    seq_value(r, atomic_load(&r->published), seqkey, val, sizeof val);
    const char *set[] = {"SET", seqkey, val};
    redisReply *rep = repl_redis_cmd(c, 3, set, NULL);
    if (rep) freeReplyObject(rep);
    if (r->public_url[0]) {
        repl_value_seal(r, "df:regions", r->region, r->public_url, val, sizeof val);
        const char *ann[] = {"HSET", "df:regions", r->region, val};
        if ((rep = repl_redis_cmd(c, 4, ann, NULL))) freeReplyObject(rep);
    }
    announce_generation(r, c);
    const char *all[] = {"HGETALL", "df:regions"};
    if ((rep = repl_redis_cmd(c, 2, all, NULL))) {
        repl_cluster_merge(r, rep);
        freeReplyObject(rep);
    }
    /* A peer stopped at a gap in our stream: is the entry there ours? */
    for (size_t i = 0; i < r->npeers && *c; i++) {
        if (atomic_load(&r->peers[i].removed)) continue;
        char gk[64], num[32];
        uint64_t at = 0;
        snprintf(gk, sizeof gk, "df:gaps:%s", r->peers[i].name);
        const char *get[] = {"HGET", gk, r->region};
        rep = repl_redis_cmd(c, 3, get, NULL);
        int nl = rep && rep->type == REDIS_REPLY_STRING
                     ? repl_value_open(repl_peer_key(&r->peers[i]), gk, r->region, rep->str,
                                       rep->len, num, sizeof num)
                     : -1;
        if (rep) freeReplyObject(rep);
        if (nl < 0 || !repl_parse_u64(num, (size_t)nl, &at) || at == 0) continue;
        if (at >= atomic_load(&r->floor) && at <= atomic_load(&r->published) &&
            stream_matches(r, c, key, at, at) == 0)
            rewrite_stream(r, c, key, at);
    }
    /* The lowest seq of ours that every peer has applied. */
    uint64_t min, newest;
    bool restored;
    pthread_mutex_lock(&r->seq_mu);
    uint64_t seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    if (!*c || !read_progress(r, c, &min, &restored, &newest)) return;
    if (restored && *c) {
        /* Our next seqs would look like records peers already have: a new
         * generation, past every one they saw, makes them read again. */
        df_log(DF_LOG_WARN, "replication: peers have applied more of %s than this store holds "
                            "(restored from an older copy?); starting a new generation", key);
        if (newest > r->generation) r->generation = newest;
        rewrite_stream(r, c, key, seq + 1);
        return;
    }
    uint64_t published = atomic_load(&r->published);
    uint64_t floor = atomic_load(&r->floor);
    if (min != UINT64_MAX) min = retained_below(r, min, floor, published);
    if (min > published) min = published;
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
    uint64_t backoff = 50, refused_backoff = 50, next_house = 0, next_ack = 0;
    chunk *ch = xcalloc(1, sizeof *ch);
    while (!atomic_load(&r->stopping)) {
        if (!c) {
            atomic_store(&r->log_connected, false);
            if (!(c = repl_redis_reconnect(r, r->log_addr, r->redis_auth, &backoff))) continue;
            resync(r, &c, key);
            if (!c) continue;
            atomic_store(&r->log_connected, true);
            df_log(DF_LOG_INFO, "replication: publishing to %s at %s", key, r->log_addr);
            next_house = 0;
        }
        pthread_mutex_lock(&r->seq_mu);
        uint64_t upto = r->seq;
        pthread_mutex_unlock(&r->seq_mu);
        int n = publish_chunk(r, &c, key, upto, ch);
        if (n == -1) continue;
        if (n == -2) {
            repl_nap(r, refused_backoff);
            refused_backoff = refused_backoff * 2 > 2000 ? 2000 : refused_backoff * 2;
            n = 0;
        } else {
            refused_backoff = 50;
        }
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
        bool acking = atomic_load(&r->ack_waiters) > 0;
        if (acking && c && now >= next_ack) {
            /* Only the acknowledgements matter here; housekeeping acts on the rest. */
            uint64_t min, newest;
            bool restored;
            read_progress(r, &c, &min, &restored, &newest);
            next_ack = now + ACK_POLL_MS;
        }
        if (n == 0 && c) {
            /* Nothing to publish: wait for a commit or the next housekeeping. */
            pthread_mutex_lock(&r->seq_mu);
            if (r->seq == atomic_load(&r->published) && !atomic_load(&r->stopping)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (acking ? ACK_POLL_MS : 200) * 1000000L;
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
    free(ch->bytes);
    free(ch);
    return NULL;
}
