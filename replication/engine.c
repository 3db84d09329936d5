/* engine.c -- local writes with their outbox entries, LWW apply of remote
 * records, and the engine's status and demo controls.
 *
 * DESIGN: every write, local or remote, runs under the lock stripe of its
 * record, reads the stored version and commits the record, its derived
 * indexes and its fan-out job in one batch. A local write is stamped with a
 * version newer than the stored one (the clock observes it first), so it
 * always wins where it was made; its outbox entry goes into the same batch
 * under the next seq. seq_mu covers assigning the seq *and* the commit, so
 * seqs commit in order and the publisher never sees a gap. A remote record
 * wins only if its version is newer; either way the subscriber's cursor
 * moves in the same batch, so a crash can neither skip nor repeat it. A
 * subscriber applies up to STG_LOCKSET_MAX records of its peer's log in
 * one batch, holding each one's stripe until the commit. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int persist_mark(void *arg, uint64_t mark)
{
    return stg_meta_put_u64_sync(((repl *)arg)->db, "hlc_mark", mark);
}

static void cursor_key(char *buf, size_t cap, const char *origin)
{
    snprintf(buf, cap, "applied:%s", origin);
}

int repl_open(repl **out, stg_db *db, feed *fd, const repl_config *cfg)
{
    if (!cfg->region || !stg_valid_name(cfg->region, strlen(cfg->region), STG_ORIGIN_MAX))
        return DF_EINVAL;
    repl *r = xcalloc(1, sizeof *r);
    r->db = db;
    r->fd = fd;
    snprintf(r->region, sizeof r->region, "%s", cfg->region);
    r->log_addr = cfg->log_redis ? xstrdup(cfg->log_redis) : NULL;
    r->public_url = xstrdup(cfg->public_url ? cfg->public_url : "");
    r->redis_auth = cfg->redis_auth ? xstrdup(cfg->redis_auth) : NULL;
    r->linger_ms = cfg->linger_ms;
    pthread_mutex_init(&r->seq_mu, NULL);
    pthread_cond_init(&r->seq_cv, NULL);
    pthread_mutex_init(&r->cluster_mu, NULL);

    uint64_t mark = 0;
    int rc = stg_meta_get_u64(db, "hlc_mark", &mark);
    if (rc < 0 && rc != DF_ENOTFOUND) goto fail;
    r->clock = repl_hlc_new(mark, cfg->clock_offset_ms, NULL, persist_mark, r);

    /* The last seq is the newest outbox entry, or the truncation floor. */
    uint64_t floor = 1;
    rc = stg_meta_get_u64(db, "outbox_floor", &floor);
    if (rc < 0 && rc != DF_ENOTFOUND) goto fail;
    if (rc == DF_ENOTFOUND) floor = 1;
    r->seq = floor - 1;
    stg_iter *it = stg_iter_range(db, STG_CF_OUTBOX, NULL, 0, NULL, 0, true);
    const char *k;
    size_t kl;
    if (stg_iter_next(it, &k, &kl, NULL, NULL) && kl == 8 && stg_key_get_u64(k) > r->seq)
        r->seq = stg_key_get_u64(k);
    stg_iter_free(it);
    atomic_store(&r->floor, floor);
    /* Every entry below the floor was applied by every peer, so it was
     * published; the publisher's resync moves this up to the stream's last
     * entry. (Starting from 0 would report, and announce in df:seq, that
     * nothing was published when the stream was trimmed to empty.) */
    atomic_store(&r->published, floor - 1);

    for (size_t i = 0; i < cfg->npeers && i < REPL_MAX_PEERS; i++) {
        peer *p = &r->peers[r->npeers];
        if (!stg_valid_name(cfg->peers[i], strlen(cfg->peers[i]), STG_ORIGIN_MAX) ||
            strcmp(cfg->peers[i], r->region) == 0) {
            rc = DF_EINVAL;
            goto fail;
        }
        p->r = r;
        p->index = (int)r->npeers;
        snprintf(p->name, sizeof p->name, "%s", cfg->peers[i]);
        const char *addr = cfg->peer_redis[i] ? cfg->peer_redis[i] : cfg->log_redis;
        p->redis_addr = addr ? xstrdup(addr) : NULL;
        const char *auth = cfg->peer_redis_auth[i] ? cfg->peer_redis_auth[i] : cfg->redis_auth;
        p->redis_auth = auth ? xstrdup(auth) : NULL;
        atomic_store(&p->delay_ms, cfg->delay_ms[i]);
        atomic_store(&p->state, r->log_addr || p->redis_addr ? REPL_DISCONNECTED : REPL_STANDALONE);
        df_window_init(&p->lag);
        char ck[64];
        cursor_key(ck, sizeof ck, p->name);
        uint64_t applied = 0;
        rc = stg_meta_get_u64(db, ck, &applied);
        if (rc < 0 && rc != DF_ENOTFOUND) goto fail;
        atomic_store(&p->applied, applied);
        snprintf(ck, sizeof ck, "generation:%s", p->name);
        if ((rc = stg_meta_get_u64(db, ck, &p->generation)) < 0 && rc != DF_ENOTFOUND) goto fail;
        snprintf(ck, sizeof ck, "epoch:%s", p->name);
        if ((rc = stg_meta_get_u64(db, ck, &p->epoch)) < 0 && rc != DF_ENOTFOUND) goto fail;
        r->npeers++;
    }
    if ((rc = stg_meta_get_u64(db, "log_generation", &r->generation)) < 0 && rc != DF_ENOTFOUND)
        goto fail;
    if ((rc = stg_meta_get_u64(db, "log_rewrite_from", &r->rewrite_from)) < 0 &&
        rc != DF_ENOTFOUND)
        goto fail;
    if ((rc = stg_meta_get_u64(db, "log_epoch", &r->epoch)) == DF_ENOTFOUND) {
        r->epoch = df_now_ms() << 16 | randombytes_uniform(1 << 16);
        rc = stg_meta_put_u64_sync(db, "log_epoch", r->epoch);
    }
    if (rc < 0) goto fail;
    if (cfg->key_dir && (rc = repl_keys_load(r, cfg->key_dir)) < 0) goto fail;
    bool replicating = r->log_addr != NULL;
    for (size_t i = 0; i < r->npeers; i++) replicating = replicating || r->peers[i].redis_addr;
    if (!r->authenticated && replicating)
        df_log(DF_LOG_WARN, "replication: no --key-dir: the log is not authenticated, and anyone "
                            "who can write to Redis can forge records (see README, Multi-host)");
    /* Our own entry in the cluster list, until Redis tells us more. */
    snprintf(r->cluster[0].name, sizeof r->cluster[0].name, "%s", r->region);
    snprintf(r->cluster[0].url, sizeof r->cluster[0].url, "%s", r->public_url);
    r->cluster[0].authenticated = true;
    r->ncluster = 1;
    *out = r;
    return 0;
fail:
    repl_close(r);
    return rc;
}

int repl_start(repl *r)
{
    if (r->log_addr && r->npeers > 0) {
        if (pthread_create(&r->publisher, NULL, repl_publisher_main, r) != 0) return DF_EIO;
        r->publisher_started = true;
    }
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        if (!p->redis_addr) continue;
        if (pthread_create(&p->thread, NULL, repl_subscriber_main, p) != 0) return DF_EIO;
        p->started = true;
    }
    return 0;
}

void repl_close(repl *r)
{
    if (!r) return;
    atomic_store(&r->stopping, true);
    pthread_mutex_lock(&r->seq_mu);
    pthread_cond_broadcast(&r->seq_cv);
    pthread_mutex_unlock(&r->seq_mu);
    if (r->publisher_started) pthread_join(r->publisher, NULL);
    for (size_t i = 0; i < r->npeers; i++) {
        if (r->peers[i].started) pthread_join(r->peers[i].thread, NULL);
        free(r->peers[i].redis_addr);
        free(r->peers[i].redis_auth);
        df_window_destroy(&r->peers[i].lag);
    }
    repl_hlc_free(r->clock);
    pthread_mutex_destroy(&r->seq_mu);
    pthread_cond_destroy(&r->seq_cv);
    pthread_mutex_destroy(&r->cluster_mu);
    free(r->log_addr);
    free(r->public_url);
    free(r->redis_auth);
    sodium_memzero(r->sk, sizeof r->sk);
    free(r);
}

const char *repl_region(const repl *r) { return r->region; }
repl_hlc *repl_clock(repl *r) { return r->clock; }

void repl_set_listener(repl *r, repl_listener_fn fn, void *arg)
{
    r->listener = fn;
    r->listener_arg = arg;
}

/* ---- Writes ------------------------------------------------------------------------ */

int repl_write(repl *r, stg_record *rec, repl_check_fn check, void *arg)
{
    const char *lk;
    size_t lkl = stg_record_lock_key(rec, &lk);
    stg_record old;
    char *raw = NULL;
    stg_batch *b = NULL;
    uint64_t job = 0;

    stg_lock(r->db, lk, lkl);
    int rc = stg_record_load(r->db, rec->kind, rec->key, rec->keylen, &old, &raw);
    const stg_record *oldp = rc == 0 ? &old : NULL;
    if (rc < 0 && rc != DF_ENOTFOUND) goto out;
    b = stg_batch_new(r->db);
    rc = check ? check(oldp, b, arg) : 0;
    if (rc < 0) goto out;
    if (rec->ver.hlc == 0) {
        rec->ver.hlc = oldp ? repl_hlc_observe(r->clock, oldp->ver.hlc) : repl_hlc_tick(r->clock);
        snprintf(rec->ver.origin, sizeof rec->ver.origin, "%s", r->region);
    }
    if (oldp && stg_version_cmp(&rec->ver, &oldp->ver) <= 0) {
        rc = DF_ESTALE;
        goto out;
    }
    if (feed_stages_job(rec, oldp) && feed_overloaded(r->fd)) {
        rc = DF_EBUSY;
        goto out;
    }
    stg_record_stage(r->db, b, rec, oldp);
    job = feed_stage(r->fd, b, rec, oldp);
    char *wire = NULL;
    size_t wlen = 0;
    if (r->npeers) repl_record_encode(rec, &wire, &wlen);

    if (wire) {
        pthread_mutex_lock(&r->seq_mu);
        char key[8];
        stg_key_u64(key, r->seq + 1);
        stg_batch_put(b, STG_CF_OUTBOX, key, 8, wire, wlen);
        rc = stg_write(r->db, b);
        if (rc == 0) {
            r->seq++;
            pthread_cond_broadcast(&r->seq_cv);
        }
        pthread_mutex_unlock(&r->seq_mu);
        free(wire);
    } else {
        rc = stg_write(r->db, b); /* no peers: nothing to ship */
    }
out:
    stg_unlock(r->db, lk, lkl);
    free(raw);
    stg_batch_free(b);
    if (rc == 0) {
        feed_committed(r->fd, rec, job);
        if (r->listener) r->listener(r->listener_arg, rec, true);
    }
    return rc;
}

/* ---- Applying a peer's log ------------------------------------------------------- */

typedef struct staged {
    stg_record rec; /* pointing into the caller's bytes */
    uint64_t job;
    bool newer;
} staged;

struct repl_applier {
    repl *r;
    peer *p; /* NULL for an origin that is not our peer (tests) */
    char origin[STG_ORIGIN_MAX + 1];
    stg_batch *b;
    stg_lockset *locks;
    staged v[STG_LOCKSET_MAX];
    size_t n;
    uint64_t seq; /* the last staged or skipped */
    bool moved; /* seq moved past a skipped entry: the cursor must be written */
};

repl_applier *repl_applier_new(repl *r, const char *origin)
{
    repl_applier *a = xcalloc(1, sizeof *a);
    a->r = r;
    for (size_t i = 0; i < r->npeers && !a->p; i++)
        if (strcmp(r->peers[i].name, origin) == 0) a->p = &r->peers[i];
    snprintf(a->origin, sizeof a->origin, "%s", origin);
    a->b = stg_batch_new(r->db);
    a->locks = stg_lockset_new(r->db);
    return a;
}

static void discard(repl_applier *a)
{
    stg_batch_clear(a->b);
    stg_lockset_release(a->locks);
    a->n = 0;
    a->moved = false;
}

void repl_applier_free(repl_applier *a)
{
    if (!a) return;
    discard(a);
    stg_lockset_free(a->locks);
    stg_batch_free(a->b);
    free(a);
}

int repl_applier_add(repl_applier *a, uint64_t seq, const stg_record *rec)
{
    const char *lk;
    size_t lkl = stg_record_lock_key(rec, &lk);
    int rc = stg_lockset_add(a->locks, lk, lkl);
    if (rc < 0) {
        /* The batch holds this stripe (the same key again: its load must
         * see the earlier record committed), or another thread does. */
        if ((rc = repl_applier_commit(a)) < 0) return rc;
        stg_lockset_add(a->locks, lk, lkl); /* an empty set waits for it */
    }
    stg_record old;
    char *raw = NULL;
    rc = stg_record_load(a->r->db, rec->kind, rec->key, rec->keylen, &old, &raw);
    if (rc < 0 && rc != DF_ENOTFOUND) {
        discard(a);
        return rc;
    }
    const stg_record *oldp = rc == 0 ? &old : NULL;
    if (oldp && !(oldp->ownerlen == rec->ownerlen &&
                  memcmp(oldp->owner, rec->owner, rec->ownerlen) == 0)) {
        /* Whoever made a record owns every later version of it. */
        free(raw);
        return DF_EPERM;
    }
    bool newer = !oldp || stg_version_cmp(&rec->ver, &oldp->ver) > 0;
    if (newer && feed_stages_job(rec, oldp) && feed_overloaded(a->r->fd)) {
        free(raw); /* the caller commits what is staged and offers rec again later */
        return DF_EBUSY;
    }
    staged *s = &a->v[a->n++];
    s->rec = *rec;
    s->job = 0;
    s->newer = newer;
    if (s->newer) {
        stg_record_stage(a->r->db, a->b, rec, oldp);
        s->job = feed_stage(a->r->fd, a->b, rec, oldp);
    }
    free(raw);
    a->seq = seq;
    /* Observed before the record becomes visible: any local write made
     * after a reader saw it is stamped after it (harmless if the commit
     * fails). */
    repl_hlc_observe(a->r->clock, rec->ver.hlc);
    return s->newer ? 1 : 0;
}

void repl_applier_skip(repl_applier *a, uint64_t seq)
{
    a->seq = seq;
    a->moved = true;
}

int repl_applier_commit(repl_applier *a)
{
    if (a->n == 0 && !a->moved) {
        stg_lockset_release(a->locks); /* a refused add may still hold its stripe */
        return 0;
    }
    char ck[64];
    cursor_key(ck, sizeof ck, a->origin);
    stg_batch_meta_u64(a->b, ck, a->seq);
    int rc = stg_write(a->r->db, a->b);
    size_t n = a->n;
    discard(a);
    if (rc < 0) return rc;
    peer *p = a->p;
    uint64_t now = df_now_ms();
    for (size_t i = 0; i < n; i++) {
        const staged *s = &a->v[i];
        if (p) {
            uint64_t created = repl_hlc_ms(s->rec.ver.hlc);
            df_window_add(&p->lag, now > created ? now - created : 0);
        }
        if (s->newer) {
            feed_committed(a->r->fd, &s->rec, s->job);
            if (a->r->listener) a->r->listener(a->r->listener_arg, &s->rec, false);
        }
    }
    if (p) {
        atomic_store(&p->applied, a->seq);
        atomic_fetch_add(&p->applied_total, n);
    }
    return 0;
}

int repl_peer_rewind(peer *p, uint64_t epoch, uint64_t gen, uint64_t from)
{
    char ck[64], gk[64], ek[64];
    uint64_t applied = atomic_load(&p->applied);
    uint64_t to = from && from - 1 < applied ? from - 1 : applied;
    cursor_key(ck, sizeof ck, p->name);
    snprintf(gk, sizeof gk, "generation:%s", p->name);
    snprintf(ek, sizeof ek, "epoch:%s", p->name);
    stg_batch *b = stg_batch_new(p->r->db);
    stg_batch_meta_u64(b, ck, to);
    stg_batch_meta_u64(b, gk, gen);
    stg_batch_meta_u64(b, ek, epoch);
    int rc = stg_write(p->r->db, b);
    stg_batch_free(b);
    if (rc < 0) return rc;
    bool new_store = epoch != p->epoch;
    df_log(DF_LOG_WARN, "replication: %s's log %s %llu; reading it again after seq %llu", p->name,
           new_store                ? "is a new store, epoch"
           : gen != p->generation ? "was rewritten, generation"
                                  : "went back, generation",
           (unsigned long long)(new_store ? epoch : gen), (unsigned long long)to);
    atomic_fetch_add(&p->rewinds, 1);
    p->epoch = epoch;
    p->generation = gen;
    atomic_store(&p->applied, to);
    atomic_store(&p->gap_from, 0);
    atomic_store(&p->gap_to, 0);
    p->read_ms = p->read_sq = 0;
    return 0;
}

int repl_next_generation(repl *r, uint64_t from)
{
    stg_batch *b = stg_batch_new(r->db);
    stg_batch_meta_u64(b, "log_generation", r->generation + 1);
    stg_batch_meta_u64(b, "log_rewrite_from", from);
    int rc = stg_write(r->db, b);
    stg_batch_free(b);
    if (rc < 0) return rc;
    r->generation++;
    r->rewrite_from = from;
    return 0;
}

void repl_peer_reject(peer *p, repl_reject why, uint64_t seq)
{
    atomic_fetch_add(&p->rejected[why], 1);
    uint32_t bit = 1u << why;
    if (!(atomic_fetch_or(&p->rejected_logged, bit) & bit))
        df_log(DF_LOG_ERROR,
               "replication: %s entry %llu rejected (%s); skipped, and counted in "
               "/v1/replication (further %s entries are not logged)",
               p->name, (unsigned long long)seq, repl_reject_name(why), repl_reject_name(why));
}

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

/* ---- Status and controls ------------------------------------------------------------ */

const char *repl_state_name(repl_state s)
{
    switch (s) {
    case REPL_STANDALONE: return "standalone";
    case REPL_STREAMING: return "streaming";
    case REPL_PAUSED: return "paused";
    case REPL_DISCONNECTED: return "disconnected";
    case REPL_GAP: return "gap";
    }
    return "unknown";
}

void repl_get_status(repl *r, repl_status *out)
{
    memset(out, 0, sizeof *out);
    out->hlc = repl_hlc_peek(r->clock);
    pthread_mutex_lock(&r->seq_mu);
    out->seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    out->published_seq = atomic_load(&r->published);
    uint64_t floor = atomic_load(&r->floor);
    out->outbox_depth = out->seq + 1 > floor ? out->seq + 1 - floor : 0;
    out->paused = atomic_load(&r->paused);
    out->connected = atomic_load(&r->log_connected);
    out->authenticated = r->authenticated;
    out->log_rewrites = atomic_load(&r->log_rewrites);
    out->npeers = r->npeers;
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        repl_peer_status *s = &out->peers[i];
        snprintf(s->name, sizeof s->name, "%s", p->name);
        s->applied_seq = atomic_load(&p->applied);
        s->published_seq = atomic_load(&p->published);
        s->applied_total = atomic_load(&p->applied_total);
        s->delay_ms = atomic_load(&p->delay_ms);
        s->state = (repl_state)atomic_load(&p->state);
        for (int k = 0; k < REPL_REJECT_N; k++) s->rejected[k] = atomic_load(&p->rejected[k]);
        s->rewinds = atomic_load(&p->rewinds);
        s->gap_from = atomic_load(&p->gap_from);
        s->gap_to = atomic_load(&p->gap_to);
        df_quantiles q = df_window_quantiles(&p->lag);
        s->lag_p50_ms = q.p50;
        s->lag_p99_ms = q.p99;
        s->lag_max_ms = q.max;
    }
}

void repl_set_paused(repl *r, bool paused) { atomic_store(&r->paused, paused); }

int repl_set_delay(repl *r, const char *name, uint32_t delay_ms)
{
    bool found = false;
    for (size_t i = 0; i < r->npeers; i++)
        if (!name || strcmp(r->peers[i].name, name) == 0) {
            atomic_store(&r->peers[i].delay_ms, delay_ms);
            found = true;
        }
    return found || !name ? 0 : DF_ENOTFOUND;
}

size_t repl_cluster(repl *r, repl_region_info *out, size_t max)
{
    pthread_mutex_lock(&r->cluster_mu);
    size_t n = r->ncluster < max ? r->ncluster : max;
    memcpy(out, r->cluster, n * sizeof *out);
    pthread_mutex_unlock(&r->cluster_mu);
    return n;
}
