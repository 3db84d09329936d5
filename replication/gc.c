/* gc.c -- tombstone GC: purging tombstones every region holds, without
 * letting deleted data come back.
 *
 * A round that finds a peer's tree equal to ours is evidence that the peer
 * held everything we held at that moment (repl_note_equal keeps the time,
 * durably). So every record older than the horizon
 *   min(now - grace, the oldest of the peers' last equal rounds)
 * is in every region's store. A pass moves the horizon there (durably,
 * first) and then purges the tombstones older than it. From then on a
 * peer's record older than the horizon for a key we lack can only be one we
 * deleted and purged, and the commit refuses it (commit.c); and a region
 * that holds a record older than a peer's horizon which that peer lacks --
 * restored from a copy older than the grace, say -- holds a zombie: it
 * deletes it (repair.c), the safe direction. Regions without peers, or
 * with a peer that never compared equal, purge nothing. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PURGE_MAX 10000 /* tombstones a pass takes out; the next takes more */

void repl_note_equal(repl *r, peer *p, uint64_t at_ms)
{
    atomic_store(&p->repair_equal_at, at_ms);
    char ck[64];
    snprintf(ck, sizeof ck, "equal_at:%s", p->name);
    stg_batch *b = stg_batch_new(r->db);
    stg_batch_meta_u64(b, ck, at_ms);
    stg_write(r->db, b); /* lost in a crash: the GC waits for the next equal round */
    stg_batch_free(b);
}

/* The horizon the peers' evidence allows now; 0 if none. */
static uint64_t safe_horizon(repl *r)
{
    uint64_t now = df_now_ms(), cut = now > r->grace_ms ? now - r->grace_ms : 0;
    size_t live = 0;
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        if (atomic_load(&p->removed)) continue;
        uint64_t at = atomic_load(&p->repair_equal_at);
        if (at < cut) cut = at;
        live++;
    }
    return live ? cut : 0;
}

static void pass(repl *r, uint64_t horizon)
{
    static const stg_kind kinds[] = {STG_KIND_USER, STG_KIND_FOLLOW, STG_KIND_POST,
                                     STG_KIND_MESSAGE};
    /* Durable first: after a crash the horizon still covers what went. */
    if (stg_meta_put_u64_sync(r->db, "gc_horizon", horizon) < 0) return;
    atomic_store(&r->gc_horizon, horizon);
    repl_keys v = {0};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0] && v.n < PURGE_MAX; k++) {
        stg_iter *it = stg_iter_range(r->db, stg_kind_cf(kinds[k]), NULL, 0, NULL, 0, false);
        const char *key, *val;
        size_t kl, vl;
        stg_record rec;
        while (v.n < PURGE_MAX && stg_iter_next(it, &key, &kl, &val, &vl))
            if (stg_value_decode(val, vl, &rec) == 0 && rec.tombstone &&
                repl_hlc_ms(rec.ver.hlc) < horizon)
                repl_keys_add(&v, kinds[k], key, kl);
        stg_iter_free(it);
    }
    uint64_t purged = 0;
    for (size_t i = 0; i < v.n; i++)
        if (stg_record_purge(r->db, v.v[i].kind, v.v[i].key, v.v[i].klen, horizon) == 1) purged++;
    free(v.v);
    atomic_fetch_add(&r->tombstones_purged, purged);
    if (purged)
        df_log(DF_LOG_INFO, "gc: %llu tombstones older than the horizon purged",
               (unsigned long long)purged);
}

void repl_gc_maybe(repl *r)
{
    uint64_t now = df_mono_ms();
    if (!r->grace_ms || now < r->gc_next) return;
    /* A pass scans the store: a few times a grace period, at most hourly. */
    uint64_t every = r->grace_ms / 4;
    r->gc_next = now + (every < 1000 ? 1000 : every > 3600000 ? 3600000 : every);
    uint64_t h = safe_horizon(r);
    if (h > atomic_load(&r->gc_horizon)) pass(r, h);
}
