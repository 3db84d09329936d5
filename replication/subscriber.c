/* subscriber.c -- one thread per peer: reads df:log:<peer> and applies it.
 *
 * DESIGN: the thread reads with XREAD BLOCK from its durable cursor (the
 * highest seq applied, stored in the same batch as each record), so a
 * restart resumes exactly where the last commit left off. Pausing stops
 * reading; a simulated distance holds each record until delay_ms after its
 * creation. After each batch, and once a second, the thread publishes its
 * cursor in df:progress:<region> (our version vector, which the peer's
 * publisher reads to truncate), reads the peer's df:seq to know how far
 * behind it is, and reads the regions announced in the peer's Redis. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_COUNT 512 /* entries per XREAD */
#define CHUNK 256 /* the most entries the publisher signs at once */
#define GAP_RETRY_MS 1000 /* a log with a gap is read again this often */

/* Appends to c's pipeline: publish our cursor and where the peer's log has
 * a gap (0: none; the peer's publisher reads it and rewrites its stream if
 * the entry there is not what it wrote), read the peer's df:seq
 * (PROGRESS_CMDS commands, whose replies take_progress reads). */
#define PROGRESS_CMDS 3

static void append_progress(peer *p, redisContext *c)
{
    char key[64], num[72], val[200], seqkey[64];
    snprintf(key, sizeof key, "df:progress:%s", p->r->region);
    /* "<applied seq>.<generation>.<epoch>" of the peer's stream it is in */
    snprintf(num, sizeof num, "%llu.%llu.%llu", (unsigned long long)atomic_load(&p->applied),
             (unsigned long long)p->generation, (unsigned long long)p->epoch);
    repl_value_seal(p->r, key, p->name, num, val, sizeof val);
    const char *hset[] = {"HSET", key, p->name, val};
    redisAppendCommandArgv(c, 4, hset, NULL);
    char gkey[64], gval[200];
    snprintf(gkey, sizeof gkey, "df:gaps:%s", p->r->region);
    snprintf(num, sizeof num, "%llu", (unsigned long long)atomic_load(&p->gap_from));
    repl_value_seal(p->r, gkey, p->name, num, gval, sizeof gval);
    const char *gset[] = {"HSET", gkey, p->name, gval};
    redisAppendCommandArgv(c, 4, gset, NULL);
    snprintf(seqkey, sizeof seqkey, "df:seq:%s", p->name);
    const char *get[] = {"GET", seqkey};
    redisAppendCommandArgv(c, 2, get, NULL);
}

/* The peer's store is epoch (signed), its stream in generation gen: a
 * later epoch than we follow is a new store whose seqs start again, read
 * from the start; the first we see is taken as it is. Returns whether we
 * follow epoch now. */
static bool follow_epoch(peer *p, uint64_t epoch, uint64_t gen)
{
    if (epoch == p->epoch) return true;
    if (epoch < p->epoch) return false; /* an older store's leftovers */
    if (p->epoch == 0) {
        char ek[64];
        snprintf(ek, sizeof ek, "epoch:%s", p->name);
        if (stg_meta_put_u64_sync(p->r->db, ek, epoch) < 0) return false;
        p->epoch = epoch;
        return true;
    }
    return repl_peer_rewind(p, epoch, gen, 1) == 0;
}

static void take_progress(peer *p, redisReply **reps)
{
    char seqkey[64], num[72];
    uint64_t pv[3];
    snprintf(seqkey, sizeof seqkey, "df:seq:%s", p->name);
    const redisReply *seq = reps[PROGRESS_CMDS - 1];
    int n = seq->type == REDIS_REPLY_STRING
                ? repl_value_open(repl_peer_key(p), seqkey, "", seq->str, seq->len, num, sizeof num)
                : -1;
    if (n >= 0 && repl_parse_dotted(num, (size_t)n, pv, 3) &&
        (!repl_peer_key(p) || follow_epoch(p, pv[2], pv[1]))) {
        uint64_t v = pv[0], gen = pv[1];
        atomic_store(&p->published, v);
        /* In the same generation a signed log never shrinks below what we
         * have applied (the seq is announced with the entries, and only
         * authentic entries move our cursor) -- unless the peer's store was
         * restored from an older copy, or its Redis lost the stream: its
         * next seqs are new records, so read again from where it is.
         * (Unsigned, a forged entry past the seq would move the cursor and
         * make this loop; the publisher's own check covers restores.) */
        if (repl_peer_key(p) && gen == p->generation && v < atomic_load(&p->applied))
            repl_peer_rewind(p, p->epoch, gen, v + 1);
    }
    for (int i = 0; i < PROGRESS_CMDS; i++) freeReplyObject(reps[i]);
}

/* Follows a rewrite of the peer's stream (df:rewrites, see publisher.c). */
static void follow_rewrite(peer *p, redisContext **c)
{
    const char *get[] = {"HGET", "df:rewrites", p->name};
    redisReply *rep = repl_redis_cmd(c, 3, get, NULL);
    char v[72];
    int n = rep && rep->type == REDIS_REPLY_STRING
                ? repl_value_open(repl_peer_key(p), "df:rewrites", p->name, rep->str, rep->len, v,
                                  sizeof v)
                : -1;
    if (rep) freeReplyObject(rep);
    uint64_t gv[3]; /* generation, first seq, epoch */
    /* (Unsigned logs follow no epoch: p->epoch stays 0.) */
    if (n < 0 || !repl_parse_dotted(v, (size_t)n, gv, 3) || (p->epoch && gv[2] != p->epoch) ||
        gv[0] <= p->generation)
        return;
    repl_peer_rewind(p, p->epoch, gv[0], gv[1]);
}

static void publish_progress(peer *p, redisContext **c)
{
    redisReply *reps[PROGRESS_CMDS];
    if (!*c) return;
    append_progress(p, *c);
    if (repl_redis_replies(c, PROGRESS_CMDS, reps) == 0) take_progress(p, reps);
}

/* Waits until the record is delay_ms old (when a simulated distance is
 * set), and until it is no more than MAX_FUTURE_MS ahead of our clock: a
 * record from far in the future (a peer with a broken clock) would drag our
 * HLC with it, so its stream waits instead -- visibly, as records behind.
 * What the applier holds is committed before any wait. False if stopping,
 * paused, or that commit failed. */

static bool hold(peer *p, const stg_record *rec, repl_applier *a)
{
    bool warned = false;
    for (;;) {
        if (atomic_load(&p->r->stopping) || atomic_load(&p->r->paused)) return false;
        uint64_t created = repl_hlc_ms(rec->ver.hlc), delay = atomic_load(&p->delay_ms);
        /* Without a simulated distance a record is due at once: one from a
         * clock merely ahead of ours (seconds, minutes) must not wait for
         * our clock to catch up, or a fast clock would partition its region. */
        uint64_t due = delay ? created + delay : 0;
        bool future = created > MAX_FUTURE_MS && created - MAX_FUTURE_MS > due;
        if (future) due = created - MAX_FUTURE_MS;
        uint64_t now = df_now_ms();
        if (now >= due) return true;
        if (repl_applier_commit(a) < 0) return false;
        if (future && !warned) {
            df_log(DF_LOG_WARN, "replication: %s record is %llu ms in the future; holding it",
                   p->name, (unsigned long long)(created - now));
            warned = true;
        }
        repl_nap(p->r, due - now < 20 ? due - now : 20);
    }
}

/* One stream entry: its id and the fields a driftfeed region writes. */
typedef struct entry {
    uint64_t ms, sq; /* the id; a region's entries are "<seq>-1" */
    const redisReply *r, *a, *e, *h, *s; /* record; on a chunk's last entry: first seq, epoch,
                                          * hashes, signature */
} entry;

static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
        if (fields->element[f]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[f]->str, name) == 0 &&
            fields->element[f + 1]->type == REDIS_REPLY_STRING)
            return fields->element[f + 1];
    return NULL;
}

static bool parse_entry(const redisReply *e, entry *out)
{
    memset(out, 0, sizeof *out);
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        !repl_parse_stream_id(e->element[0]->str, e->element[0]->len, &out->ms, &out->sq))
        return false;
    const redisReply *fields = e->element[1];
    out->r = field(fields, "r");
    out->a = field(fields, "a");
    out->e = field(fields, "e");
    out->h = field(fields, "h");
    out->s = field(fields, "s");
    return true;
}

/* What applying a reply came to. */
typedef enum { APPLY_OK, APPLY_RETRY, APPLY_GAP } apply_result;

/* An authentic entry whose record is invalid: counted, and the cursor moves
 * past it (the origin published it; reading it again changes nothing). */
static void skip(peer *p, repl_applier *a, const entry *e, repl_reject why)
{
    repl_peer_reject(p, why, e->ms);
    repl_applier_skip(a, e->ms);
}

/* The log lacks the real records from..to (to 0: unknown) -- missing, or
 * taken by entries that are not authentic. Nothing after from is applied;
 * the entry at fault is counted once, not on every re-read. */
static apply_result gap(peer *p, repl_applier *a, uint64_t from, uint64_t to, repl_reject why)
{
    if (why != REPL_REJECT_NONE && p->counted_gap != from) repl_peer_reject(p, why, from);
    p->counted_gap = from;
    if (atomic_load(&p->gap_from) != from)
        df_log(DF_LOG_ERROR,
               "replication: %s log has a gap at seq %llu (%s); applying nothing after seq "
               "%llu until the real records are there",
               p->name, (unsigned long long)from,
               why == REPL_REJECT_NONE ? "missing" : repl_reject_name(why),
               (unsigned long long)(from - 1));
    atomic_store(&p->gap_to, to);
    atomic_store(&p->gap_from, from);
    return repl_applier_commit(a) == 0 ? APPLY_GAP : APPLY_RETRY;
}

/* Applies one authentic (or, unsigned, unchecked) entry: decode, check,
 * apply, or skip an invalid one. */
static apply_result apply_one(peer *p, repl_applier *a, const entry *e)
{
    stg_record rec;
    repl_reject why = REPL_REJECT_NONE;
    if (!e->r || repl_record_decode(e->r->str, e->r->len, &rec) < 0)
        why = REPL_REJECT_MALFORMED;
    else
        why = repl_record_check(p->name, &rec);
    if (why != REPL_REJECT_NONE) {
        skip(p, a, e, why);
        return APPLY_OK;
    }
    if (!hold(p, &rec, a)) {
        repl_applier_commit(a); /* the records before it stay applied */
        return APPLY_RETRY;
    }
    int rc = repl_applier_add(a, e->ms, &rec);
    if (rc == DF_EPERM) {
        skip(p, a, e, REPL_REJECT_OWNER);
    } else if (rc == DF_EBUSY) {
        /* The fan-out queue is full: the log waits, the queue stays bounded. */
        repl_applier_commit(a);
        return APPLY_RETRY;
    } else if (rc < 0) {
        return APPLY_RETRY;
    }
    return APPLY_OK;
}

/* Checks the chunk signature on sig (the chunk's last entry) and applies
 * the pending entries it covers, up to the first that is not authentic. */
static apply_result apply_chunk(peer *p, repl_applier *a, const entry *pend, size_t np,
                                const entry *sig)
{
    char key[64], range[72];
    snprintf(key, sizeof key, "df:log:%s", p->name);
    uint64_t first = 0, epoch = 0;
    bool ok = sig->a && sig->e && sig->h && repl_parse_u64(sig->a->str, sig->a->len, &first) &&
              repl_parse_u64(sig->e->str, sig->e->len, &epoch) && first >= 1 &&
              first <= sig->ms && sig->ms - first < CHUNK &&
              sig->h->len == (size_t)(sig->ms - first + 1) * REPL_HASH_LEN;
    if (ok) {
        snprintf(range, sizeof range, "%llu:%llu-%llu", (unsigned long long)epoch,
                 (unsigned long long)first, (unsigned long long)sig->ms);
        ok = repl_verify(p->pk, key, range, sig->h->str, sig->h->len,
                         (const unsigned char *)sig->s->str, sig->s->len);
    }
    if (!ok) return gap(p, a, pend[0].ms, sig->ms, REPL_REJECT_SIGNATURE);
    if (epoch != p->epoch) {
        /* Entries an older store wrote wait for its successor to rewrite
         * the stream; a newer store's are read from its first seq. */
        if (epoch < p->epoch) return gap(p, a, pend[0].ms, sig->ms, REPL_REJECT_EPOCH);
        bool adopting = p->epoch == 0; /* the first epoch we see: apply on */
        if (repl_applier_commit(a) < 0 || !follow_epoch(p, epoch, 0) || !adopting) return APPLY_RETRY;
    }
    for (size_t i = 0; i < np; i++) {
        const entry *e = &pend[i];
        if (e->ms < first) return gap(p, a, e->ms, first - 1, REPL_REJECT_UNSIGNED);
        unsigned char h[REPL_HASH_LEN];
        if (e->r) repl_record_hash(e->r->str, e->r->len, h);
        if (!e->r || sodium_memcmp(h, sig->h->str + (e->ms - first) * REPL_HASH_LEN,
                                   REPL_HASH_LEN) != 0)
            return gap(p, a, e->ms, e->ms, REPL_REJECT_SIGNATURE);
        apply_result res = apply_one(p, a, e);
        if (res != APPLY_OK) return res;
    }
    return APPLY_OK;
}

/* Applies the entries of one XREAD reply (full: it holds as many as were
 * asked for), in batches of up to STG_LOCKSET_MAX records, in seq order
 * and without a hole: a seq that is missing, or whose entry is not
 * authentic, stops it (APPLY_GAP). APPLY_RETRY: paused, stopping, or a
 * storage failure; what was not committed is read again.
 *
 * A signed log is applied a chunk at a time: entries wait for the
 * signature on their chunk's last entry. Chunks are published whole (MULTI)
 * and hold at most CHUNK entries, so an entry without a signature after it
 * in a reply that is not full, or more than CHUNK entries before the end of
 * a full one, is not covered by any. */
static apply_result apply_entries(peer *p, repl_applier *a, const redisReply *entries, bool full)
{
    uint64_t last = atomic_load(&p->applied); /* committed, staged or skipped */
    bool signed_log = repl_peer_key(p) != NULL;
    entry pend[READ_COUNT];
    size_t np = 0, npos[READ_COUNT];
    size_t n = entries->elements < READ_COUNT ? entries->elements : READ_COUNT;
    for (size_t i = 0; i < n; i++) {
        entry e;
        if (!parse_entry(entries->element[i], &e)) continue; /* Redis always sends ids */
        if (e.sq != 1 || e.ms == 0) {
            /* An id no region writes: not a seq, so not a gap; passed over. */
            repl_peer_reject(p, REPL_REJECT_MALFORMED, e.ms);
            if (np == 0) {
                p->read_ms = e.ms;
                p->read_sq = e.sq;
            }
            continue;
        }
        if (e.ms <= last) continue;
        if (e.ms != last + 1) /* pending entries can't be verified without it either */
            return gap(p, a, np ? pend[0].ms : last + 1, e.ms - 1, REPL_REJECT_NONE);
        last = e.ms;
        if (!signed_log) {
            apply_result res = apply_one(p, a, &e);
            if (res != APPLY_OK) return res;
            continue;
        }
        npos[np] = i;
        pend[np++] = e;
        if (e.s) {
            apply_result res = apply_chunk(p, a, pend, np, &e);
            if (res != APPLY_OK) return res;
            np = 0;
        }
    }
    /* Pending entries a later read may still see covered are read again. */
    if (np && (!full || npos[0] + CHUNK < n))
        return gap(p, a, pend[0].ms, 0, REPL_REJECT_UNSIGNED);
    if (repl_applier_commit(a) < 0) return APPLY_RETRY;
    if (atomic_load(&p->gap_from) && atomic_load(&p->applied) >= atomic_load(&p->gap_from)) {
        df_log(DF_LOG_INFO, "replication: %s log continues after the gap at %llu", p->name,
               (unsigned long long)atomic_load(&p->gap_from));
        atomic_store(&p->gap_from, 0);
        atomic_store(&p->gap_to, 0);
    }
    return APPLY_OK;
}

/* A complete repair round brought everything the peer wrote up to its seq
 * at the time: past a gap, the cursor moves there. Returns whether it did. */
static bool fill_gap(peer *p, repl_applier *a)
{
    pthread_mutex_lock(&p->repair_mu);
    uint64_t epoch = p->repaired_epoch, seq = p->repaired_seq;
    pthread_mutex_unlock(&p->repair_mu);
    uint64_t from = atomic_load(&p->gap_from);
    if (!from || epoch != p->epoch || seq < from) return false;
    repl_applier_skip(a, seq);
    if (repl_applier_commit(a) < 0) return false;
    df_log(DF_LOG_INFO, "replication: %s log's gap at %llu filled by repair through seq %llu",
           p->name, (unsigned long long)from, (unsigned long long)seq);
    atomic_store(&p->gap_from, 0);
    atomic_store(&p->gap_to, 0);
    p->read_ms = p->read_sq = 0;
    return true;
}

void *repl_subscriber_main(void *arg)
{
    peer *p = arg;
    repl *r = p->r;
    df_thread_name("df-sub-%s", p->name);
    char key[64];
    snprintf(key, sizeof key, "df:log:%s", p->name);
    redisContext *c = NULL;
    uint64_t backoff = 50, next_house = 0;
    bool progressed = false;
    repl_applier *a = repl_applier_new(r, p->name);
    while (!atomic_load(&r->stopping) && !atomic_load(&p->removed)) {
        if (!c) {
            atomic_store(&p->state, REPL_DISCONNECTED);
            if (!(c = repl_redis_reconnect(r, p->redis_addr, p->redis_auth, &backoff))) continue;
            df_log(DF_LOG_INFO, "replication: reading %s from %s after seq %llu", key,
                   p->redis_addr, (unsigned long long)atomic_load(&p->applied));
            next_house = 0;
        }
        uint64_t now = df_mono_ms();
        if (now >= next_house) {
            follow_rewrite(p, &c);
            publish_progress(p, &c);
            progressed = false;
            const char *all[] = {"HGETALL", "df:regions"};
            redisReply *rep = repl_redis_cmd(&c, 2, all, NULL);
            if (rep) {
                repl_cluster_merge(r, rep);
                freeReplyObject(rep);
            }
            next_house = now + 1000;
            if (!c) continue;
        }
        if (atomic_load(&r->paused)) {
            atomic_store(&p->state, REPL_PAUSED);
            repl_nap(r, 50);
            continue;
        }
        fill_gap(p, a);
        atomic_store(&p->state, atomic_load(&p->gap_from) ? REPL_GAP : REPL_STREAMING);
        /* One round trip: the progress of the last batch, then the next read. */
        int n = 0;
        if (progressed) {
            append_progress(p, c);
            n = PROGRESS_CMDS;
        }
        /* After the cursor, or after entries with foreign ids past it. */
        char from[48];
        uint64_t applied = atomic_load(&p->applied);
        if (p->read_ms < applied || (p->read_ms == applied && p->read_sq < 1)) {
            p->read_ms = applied;
            p->read_sq = 1;
        }
        snprintf(from, sizeof from, "%llu-%llu", (unsigned long long)p->read_ms,
                 (unsigned long long)p->read_sq);
        char count[16];
        snprintf(count, sizeof count, "%d", READ_COUNT);
        const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", "500", "STREAMS", key, from};
        redisAppendCommandArgv(c, 8, argv, NULL);
        redisReply *reps[PROGRESS_CMDS + 1];
        if (repl_redis_replies(&c, n + 1, reps) < 0) continue;
        if (n) take_progress(p, reps);
        redisReply *rep = reps[n];
        progressed = false;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
            rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2 &&
            rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
            uint64_t before = atomic_load(&p->applied);
            const redisReply *entries = rep->element[0]->element[1];
            const redisReply *last = entries->elements ? entries->element[entries->elements - 1]
                                                       : NULL;
            uint64_t id = last && last->type == REDIS_REPLY_ARRAY && last->elements >= 1 &&
                                  last->element[0]->type == REDIS_REPLY_STRING
                              ? repl_parse_entry_id(last->element[0]->str)
                              : 0;
            if (id > atomic_load(&p->seen)) atomic_store(&p->seen, id);
            apply_result res = apply_entries(p, a, entries, entries->elements >= READ_COUNT);
            if (res == APPLY_GAP) {
                atomic_store(&p->state, REPL_GAP);
                p->read_ms = p->read_sq = 0; /* from the cursor: the stream may be rewritten */
                repl_nap(r, GAP_RETRY_MS);
            } else if (res == APPLY_RETRY) {
                repl_nap(r, 20);
            }
            progressed = atomic_load(&p->applied) != before;
        }
        freeReplyObject(rep);
    }
    if (atomic_load(&p->removed)) atomic_store(&p->state, REPL_REMOVED);
    repl_applier_free(a);
    if (c) redisFree(c);
    return NULL;
}
