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

/* Appends to c's pipeline: publish our cursor, read the peer's df:seq
 * (PROGRESS_CMDS commands, whose replies take_progress reads). */
#define PROGRESS_CMDS 2

static void append_progress(peer *p, redisContext *c)
{
    char key[64], val[32], seqkey[64];
    snprintf(key, sizeof key, "df:progress:%s", p->r->region);
    snprintf(val, sizeof val, "%llu", (unsigned long long)atomic_load(&p->applied));
    const char *hset[] = {"HSET", key, p->name, val};
    redisAppendCommandArgv(c, 4, hset, NULL);
    snprintf(seqkey, sizeof seqkey, "df:seq:%s", p->name);
    const char *get[] = {"GET", seqkey};
    redisAppendCommandArgv(c, 2, get, NULL);
}

static void take_progress(peer *p, redisReply **reps)
{
    if (reps[1]->type == REDIS_REPLY_STRING)
        atomic_store(&p->published, strtoull(reps[1]->str, NULL, 10));
    freeReplyObject(reps[0]);
    freeReplyObject(reps[1]);
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
#define MAX_FUTURE_MS (60 * 60 * 1000ull)

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

/* Applies the entries of one XREAD reply, in batches of up to
 * STG_LOCKSET_MAX records. Returns false to re-read (paused, stopping, or a
 * storage failure: what was not committed is read again). */
static bool apply_entries(peer *p, repl_applier *a, const redisReply *entries)
{
    uint64_t last = atomic_load(&p->applied); /* committed or staged */
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        uint64_t seq = repl_parse_entry_id(e->element[0]->str);
        if (seq == 0 || seq <= last) continue;
        if (seq != last + 1)
            df_log(DF_LOG_WARN, "replication: %s log jumps from %llu to %llu", p->name,
                   (unsigned long long)last, (unsigned long long)seq);
        const redisReply *fields = e->element[1];
        const redisReply *val = NULL;
        for (size_t f = 0; f + 1 < fields->elements; f += 2)
            if (fields->element[f]->type == REDIS_REPLY_STRING &&
                strcmp(fields->element[f]->str, "r") == 0 &&
                fields->element[f + 1]->type == REDIS_REPLY_STRING)
                val = fields->element[f + 1];
        stg_record rec;
        if (!val || repl_record_decode(val->str, val->len, &rec) < 0 ||
            strcmp(rec.ver.origin, p->name) != 0) {
            /* Never from a driftfeed region; the next record moves the
             * cursor past it. */
            df_log(DF_LOG_ERROR, "replication: %s entry %llu is not a valid record; skipped",
                   p->name, (unsigned long long)seq);
            continue;
        }
        if (!hold(p, &rec, a)) {
            repl_applier_commit(a); /* the records before it stay applied */
            return false;
        }
        if (repl_applier_add(a, seq, &rec) < 0) return false;
        last = seq;
    }
    return repl_applier_commit(a) == 0;
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
    while (!atomic_load(&r->stopping)) {
        if (!c) {
            atomic_store(&p->state, REPL_DISCONNECTED);
            if (!(c = repl_redis_reconnect(r, p->redis_addr, &backoff))) continue;
            df_log(DF_LOG_INFO, "replication: reading %s from %s after seq %llu", key,
                   p->redis_addr, (unsigned long long)atomic_load(&p->applied));
            next_house = 0;
        }
        uint64_t now = df_mono_ms();
        if (now >= next_house) {
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
        atomic_store(&p->state, REPL_STREAMING);
        /* One round trip: the progress of the last batch, then the next read. */
        int n = 0;
        if (progressed) {
            append_progress(p, c);
            n = PROGRESS_CMDS;
        }
        char from[32];
        snprintf(from, sizeof from, "%llu-1", (unsigned long long)atomic_load(&p->applied));
        const char *argv[] = {"XREAD", "COUNT", "512", "BLOCK", "500", "STREAMS", key, from};
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
            if (!apply_entries(p, a, rep->element[0]->element[1])) repl_nap(r, 20);
            progressed = atomic_load(&p->applied) != before;
        }
        freeReplyObject(rep);
    }
    repl_applier_free(a);
    if (c) redisFree(c);
    return NULL;
}
