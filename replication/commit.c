/* commit.c -- the one commit: every write of a source record, made here or
 * applied from a peer's log, goes through stage() and commit().
 *
 * A transaction gathers records into one write batch. stage() takes the
 * record's lock stripe (held until the commit), loads the stored version,
 * checks that the writer owns the key, stamps a local record with a version
 * newer than the stored one, compares (last-write-wins on (hlc, origin)),
 * refuses a fan-out job the queue has no room for, and stages the record,
 * its derived indexes, its fan-out job and, for a local record, its outbox
 * entry. commit() writes the batch with its bookkeeping (the outbox seq of
 * a local write, the cursor of a peer's log), then tells the store's
 * subscribers (feed, live streams, metrics) about every record that won.
 *
 * seq_mu covers assigning an outbox seq *and* the write, so seqs commit in
 * order and the publisher never sees a gap. A peer's cursor moves in the
 * same batch as its records, so a crash can neither skip nor repeat one. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct staged {
    stg_record rec; /* pointing into the caller's bytes */
    uint64_t job;
    bool newer;
} staged;

struct repl_applier {
    repl *r;
    peer *p; /* NULL when local, or for an origin that is not our peer (tests) */
    bool local;
    bool repair; /* records a repair round got from origin: no cursor */
    char origin[STG_ORIGIN_MAX + 1]; /* "" when local */
    stg_batch *b;
    stg_lockset *locks;
    staged v[STG_LOCKSET_MAX];
    size_t n;
    char *wire; /* local: the outbox entry of v[0] (a local transaction holds one record) */
    size_t wlen;
    uint64_t seq; /* the peer's: the last staged or skipped */
    bool moved; /* seq moved past a skipped entry: the cursor must be written */
};

static repl_applier *txn_new(repl *r, const char *origin)
{
    repl_applier *t = xcalloc(1, sizeof *t);
    t->r = r;
    t->local = origin == NULL;
    t->p = origin ? repl_peer_named(r, origin) : NULL;
    snprintf(t->origin, sizeof t->origin, "%s", origin ? origin : "");
    t->b = stg_batch_new(r->db);
    t->locks = stg_lockset_new(r->db);
    return t;
}

static void discard(repl_applier *t)
{
    for (size_t i = 0; i < t->n; i++) feed_unstage(t->r->fd, t->v[i].job);
    stg_batch_clear(t->b);
    stg_lockset_release(t->locks);
    free(t->wire);
    t->wire = NULL;
    t->n = 0;
    t->moved = false;
}

static void txn_free(repl_applier *t)
{
    if (!t) return;
    discard(t);
    stg_lockset_free(t->locks);
    stg_batch_free(t->b);
    free(t);
}

/* A local transaction is taken from a small pool: a write costs no setup. */
static repl_applier *local_txn(repl *r)
{
    pthread_mutex_lock(&r->pool_mu);
    repl_applier *t = r->pool_n ? r->pool[--r->pool_n] : NULL;
    pthread_mutex_unlock(&r->pool_mu);
    return t ? t : txn_new(r, NULL);
}

static void local_done(repl_applier *t)
{
    repl *r = t->r;
    discard(t);
    pthread_mutex_lock(&r->pool_mu);
    bool kept = r->pool_n < REPL_TXN_POOL;
    if (kept) r->pool[r->pool_n++] = t;
    pthread_mutex_unlock(&r->pool_mu);
    if (!kept) txn_free(t);
}

void repl_txn_pool_free(repl *r)
{
    while (r->pool_n) txn_free(r->pool[--r->pool_n]);
}

/* The version of a local record: newer than the stored one, if any. */
static void stamp(repl *r, stg_record *rec, const stg_record *old)
{
    if (rec->ver.hlc) return; /* set by the caller (tests) */
    rec->ver.hlc = old ? repl_hlc_observe(r->clock, old->ver.hlc) : repl_hlc_tick(r->clock);
    snprintf(rec->ver.origin, sizeof rec->ver.origin, "%s", r->region);
}

static int local_checks(const repl_local *w, const stg_record *old)
{
    bool live = old && !old->tombstone;
    if (w && (w->flags & REPL_CREATE) && live) return DF_EEXIST;
    if (w && (w->flags & REPL_MUST_EXIST) && !live) return DF_ENOTFOUND;
    return 0;
}

static int commit(repl_applier *t);

/* Stages rec in t (w: a local record's conditions, NULL for a peer's).
 * Returns 1 when staged, 0 when not newer than the stored record (nothing
 * staged), or DF_E*: DF_EPERM (someone else's key), DF_EBUSY (no room in
 * the fan-out queue), a local condition's code, DF_EIO. */
static int stage(repl_applier *t, stg_record *rec, const repl_local *w)
{
    repl *r = t->r;
    int rc;
    bool named_by_version = t->local && rec->key == NULL;
    if (named_by_version) {
        /* A new post or message: its id is its version. */
        stamp(r, rec, NULL);
        if ((rc = w->render(w->arg, rec)) < 0) return rc;
    }
    const char *lk;
    size_t lkl = stg_record_lock_key(rec, &lk);
    if (stg_lockset_add(t->locks, lk, lkl) < 0) {
        /* The batch holds this stripe (the same key again: its load must
         * see the earlier record committed), or another thread does. */
        if ((rc = commit(t)) < 0) return rc;
        stg_lockset_add(t->locks, lk, lkl); /* an empty set waits for it */
    }
    stg_record old;
    char *raw = NULL;
    /* A key made from a fresh version names nothing stored yet: the clock
     * never hands out a value twice, not even across restarts. */
    rc = named_by_version ? DF_ENOTFOUND
                          : stg_record_load(r->db, rec->kind, rec->key, rec->keylen, &old, &raw);
    if (rc < 0 && rc != DF_ENOTFOUND) return rc;
    const stg_record *oldp = rc == 0 ? &old : NULL;
    if (t->local && (rc = local_checks(w, oldp)) < 0) goto out;
    if (oldp && !(oldp->ownerlen == rec->ownerlen &&
                  memcmp(oldp->owner, rec->owner, rec->ownerlen) == 0)) {
        rc = DF_EPERM; /* whoever made a record owns every later version of it */
        goto out;
    }
    if (t->local) {
        if (!named_by_version) {
            stamp(r, rec, oldp);
            if (w && w->render && (rc = w->render(w->arg, rec)) < 0) goto out;
        }
    }
    bool newer = !oldp || stg_version_cmp(&rec->ver, &oldp->ver) > 0;
    /* A peer's record older than the GC horizon that we lack was deleted
     * and its tombstone purged here: taking it would bring it back. */
    if (!t->local && !oldp && repl_hlc_ms(rec->ver.hlc) < atomic_load(&r->gc_horizon))
        newer = false;
    if (t->local && !newer) {
        rc = DF_ESTALE; /* only a caller-set version can lose */
        goto out;
    }
    uint64_t job = 0;
    if (newer && (rc = feed_stage(r->fd, t->b, rec, oldp, &job)) < 0) goto out;
    staged *s = &t->v[t->n++];
    s->rec = *rec;
    s->job = job;
    s->newer = newer;
    if (newer) stg_record_stage(r->db, t->b, rec, oldp);
    if (t->local) {
        if (w && w->extra_key)
            stg_batch_put(t->b, w->extra_cf, w->extra_key, w->extra_klen, w->extra_val,
                          w->extra_vlen);
        if (r->npeers) repl_record_encode(rec, &t->wire, &t->wlen);
    } else {
        /* Observed before the record becomes visible: any local write made
         * after a reader saw it is stamped after it (harmless if the commit
         * fails). */
        repl_hlc_observe(r->clock, rec->ver.hlc);
    }
    rc = newer ? 1 : 0;
out:
    free(raw);
    return rc;
}

void repl_cursor_key(char *buf, size_t cap, const char *origin)
{
    snprintf(buf, cap, "applied:%s", origin);
}

static int write_batch(repl_applier *t)
{
    repl *r = t->r;
    if (!t->local && !t->repair) {
        char ck[64];
        repl_cursor_key(ck, sizeof ck, t->origin);
        stg_batch_meta_u64(t->b, ck, t->seq);
    }
    if (!t->wire) return stg_write(r->db, t->b); /* no peers: nothing to ship */
    pthread_mutex_lock(&r->seq_mu);
    char key[8];
    stg_key_u64(key, r->seq + 1);
    stg_batch_put(t->b, STG_CF_OUTBOX, key, 8, t->wire, t->wlen);
    int rc = stg_write(r->db, t->b);
    if (rc == 0) {
        r->seq++;
        pthread_cond_broadcast(&r->seq_cv);
    }
    pthread_mutex_unlock(&r->seq_mu);
    return rc;
}

static int commit(repl_applier *t)
{
    if (t->n == 0 && !t->moved) {
        stg_lockset_release(t->locks); /* a refused record may still hold its stripe */
        return 0;
    }
    int rc = write_batch(t);
    size_t n = t->n;
    if (rc == 0) t->n = 0; /* written: the commit events, not discard, finish the jobs */
    discard(t);
    if (rc < 0) return rc;
    peer *p = t->repair ? NULL : t->p; /* a repair moves no cursor and has no lag */
    uint64_t now = df_now_ms();
    for (size_t i = 0; i < n; i++) {
        const staged *s = &t->v[i];
        if (p) {
            uint64_t created = repl_hlc_ms(s->rec.ver.hlc);
            df_window_add(&p->lag, now > created ? now - created : 0);
        }
        if (s->newer) {
            stg_event ev = {.type = STG_EVENT_COMMIT,
                            .rec = &s->rec,
                            .origin = t->local ? NULL : t->origin,
                            .job = s->job};
            stg_notify(t->r->db, &ev);
        }
    }
    if (p) {
        atomic_store(&p->applied, t->seq);
        atomic_fetch_add(&p->applied_total, n);
        repl_progressed(t->r); /* sessions waiting for these records */
    }
    return 0;
}

/* ---- Local writes ------------------------------------------------------------------ */

int repl_write(repl *r, stg_record *rec, const repl_local *w)
{
    repl_applier *t = local_txn(r);
    int rc = stage(t, rec, w);
    if (rc >= 0) rc = commit(t);
    local_done(t);
    return rc;
}

/* ---- A peer's log ------------------------------------------------------------------ */

repl_applier *repl_applier_new(repl *r, const char *origin) { return txn_new(r, origin); }

repl_applier *repl_repair_applier_new(repl *r, const char *from)
{
    repl_applier *t = txn_new(r, from);
    t->repair = true;
    return t;
}

void repl_applier_free(repl_applier *a) { txn_free(a); }

int repl_applier_add(repl_applier *a, uint64_t seq, const stg_record *rec)
{
    stg_record copy = *rec; /* stage() stamps only local records */
    int rc = stage(a, &copy, NULL);
    if (rc == DF_EPERM || rc == DF_EBUSY) return rc; /* the rest stays staged */
    if (rc < 0) {
        discard(a);
        return rc;
    }
    a->seq = seq;
    return rc;
}

void repl_applier_skip(repl_applier *a, uint64_t seq)
{
    a->seq = seq;
    a->moved = true;
}

int repl_applier_commit(repl_applier *a) { return commit(a); }

int repl_apply(repl *r, const char *origin, uint64_t seq, const stg_record *rec)
{
    repl_applier *a = repl_applier_new(r, origin);
    int rc = repl_applier_add(a, seq, rec);
    if (rc >= 0) {
        int crc = repl_applier_commit(a);
        if (crc < 0) rc = crc;
    }
    repl_applier_free(a);
    return rc;
}
