/* engine.c -- the engine's state: opening it (clock, outbox seq, peer
 * cursors, store epoch), starting and stopping its threads, peer rewinds
 * and rejections, and its status and demo controls. Writes are commit.c's. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int persist_mark(void *arg, uint64_t mark)
{
    return stg_meta_put_u64_sync(((repl *)arg)->db, "hlc_mark", mark);
}

/* Fills slot p for peer name: where its log is, and its cursor, stream
 * generation and store epoch as this store last saw them. Returns 0 or
 * DF_E* (then p holds nothing). */
static int peer_init(repl *r, peer *p, const char *name, const char *addr, const char *auth,
                     uint32_t delay_ms)
{
    char ck[64];
    uint64_t applied = 0, generation = 0, epoch = 0;
    int rc;
    repl_cursor_key(ck, sizeof ck, name);
    if ((rc = stg_meta_get_u64(r->db, ck, &applied)) < 0 && rc != DF_ENOTFOUND) return rc;
    snprintf(ck, sizeof ck, "generation:%s", name);
    if ((rc = stg_meta_get_u64(r->db, ck, &generation)) < 0 && rc != DF_ENOTFOUND) return rc;
    snprintf(ck, sizeof ck, "epoch:%s", name);
    if ((rc = stg_meta_get_u64(r->db, ck, &epoch)) < 0 && rc != DF_ENOTFOUND) return rc;
    uint64_t removed = 0, equal_at = 0;
    snprintf(ck, sizeof ck, "removed:%s", name);
    if ((rc = stg_meta_get_u64(r->db, ck, &removed)) < 0 && rc != DF_ENOTFOUND) return rc;
    snprintf(ck, sizeof ck, "equal_at:%s", name);
    if ((rc = stg_meta_get_u64(r->db, ck, &equal_at)) < 0 && rc != DF_ENOTFOUND) return rc;
    atomic_store(&p->repair_equal_at, equal_at);
    p->r = r;
    atomic_store(&p->removed, removed != 0);
    p->index = (int)(p - r->peers);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->redis_addr = addr ? xstrdup(addr) : NULL;
    p->redis_auth = auth ? xstrdup(auth) : NULL;
    atomic_store(&p->delay_ms, delay_ms);
    atomic_store(&p->state, removed                      ? REPL_REMOVED
                            : r->log_addr || p->redis_addr ? REPL_DISCONNECTED
                                                           : REPL_STANDALONE);
    df_window_init(&p->lag);
    pthread_mutex_init(&p->repair_mu, NULL);
    atomic_store(&p->applied, applied);
    p->generation = generation;
    p->epoch = epoch;
    return 0;
}

peer *repl_peer_named(repl *r, const char *name)
{
    size_t n = r->npeers;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->peers[i].name, name) == 0) return &r->peers[i];
    return NULL;
}

void repl_peer_join(repl *r, const char *name, const unsigned char pk[32])
{
    pthread_mutex_lock(&r->peers_mu);
    size_t n = r->npeers;
    bool known = strcmp(name, r->region) == 0 || repl_peer_named(r, name);
    peer *p = &r->peers[n];
    if (known || n == REPL_MAX_PEERS || atomic_load(&r->stopping) || !r->log_addr ||
        peer_init(r, p, name, r->log_addr, r->redis_auth, 0) < 0) {
        pthread_mutex_unlock(&r->peers_mu);
        return;
    }
    if (atomic_load(&p->removed)) { /* decommissioned here once: stays out */
        free(p->redis_addr);
        free(p->redis_auth);
        df_window_destroy(&p->lag);
        pthread_mutex_destroy(&p->repair_mu);
        memset(p, 0, sizeof *p);
        pthread_mutex_unlock(&r->peers_mu);
        return;
    }
    memcpy(p->pk, pk, sizeof p->pk);
    atomic_store(&r->npeers, n + 1); /* the slot is complete: readers may see it */
    p->started = pthread_create(&p->thread, NULL, repl_subscriber_main, p) == 0;
    pthread_mutex_unlock(&r->peers_mu);
    df_log(DF_LOG_INFO, "replication: %s announced itself, signed by %s/%s.pub: replicating with "
                        "it (its log read from %s)",
           name, r->key_dir, name, r->log_addr);
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
    r->repair_interval_ms = cfg->repair_interval_ms;
    r->retain_records = cfg->retain_records;
    r->retain_ms = cfg->retain_ms;
    r->grace_ms = cfg->tombstone_grace_ms;
    pthread_mutex_init(&r->seq_mu, NULL);
    pthread_cond_init(&r->seq_cv, NULL);
    pthread_mutex_init(&r->cluster_mu, NULL);
    pthread_mutex_init(&r->pool_mu, NULL);
    pthread_mutex_init(&r->peers_mu, NULL);

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
        if (!stg_valid_name(cfg->peers[i], strlen(cfg->peers[i]), STG_ORIGIN_MAX) ||
            strcmp(cfg->peers[i], r->region) == 0) {
            rc = DF_EINVAL;
            goto fail;
        }
        const char *addr = cfg->peer_redis[i] ? cfg->peer_redis[i] : cfg->log_redis;
        const char *auth = cfg->peer_redis_auth[i] ? cfg->peer_redis_auth[i] : cfg->redis_auth;
        if ((rc = peer_init(r, &r->peers[r->npeers], cfg->peers[i], addr, auth,
                            cfg->delay_ms[i])) < 0)
            goto fail;
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
    uint64_t horizon = 0;
    if ((rc = stg_meta_get_u64(db, "gc_horizon", &horizon)) < 0 && rc != DF_ENOTFOUND) goto fail;
    atomic_store(&r->gc_horizon, horizon);
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
        if (!p->redis_addr || atomic_load(&p->removed)) continue;
        if (pthread_create(&p->thread, NULL, repl_subscriber_main, p) != 0) return DF_EIO;
        p->started = true;
    }
    /* Anti-entropy answers and asks with signed messages only. */
    if (r->authenticated && r->log_addr && r->npeers > 0 && r->repair_interval_ms > 0) {
        if (pthread_create(&r->repair_server, NULL, repl_repair_server_main, r) != 0) return DF_EIO;
        r->repair_server_started = true;
        if (pthread_create(&r->repair, NULL, repl_repair_main, r) != 0) return DF_EIO;
        r->repair_started = true;
    }
    return 0;
}

void repl_close(repl *r)
{
    if (!r) return;
    atomic_store(&r->stopping, true);
    pthread_mutex_lock(&r->peers_mu); /* no join is half done */
    pthread_mutex_unlock(&r->peers_mu);
    pthread_mutex_lock(&r->seq_mu);
    pthread_cond_broadcast(&r->seq_cv);
    pthread_mutex_unlock(&r->seq_mu);
    if (r->publisher_started) pthread_join(r->publisher, NULL);
    if (r->repair_started) pthread_join(r->repair, NULL);
    if (r->repair_server_started) pthread_join(r->repair_server, NULL);
    for (size_t i = 0; i < r->npeers; i++) {
        if (r->peers[i].started) pthread_join(r->peers[i].thread, NULL);
        free(r->peers[i].redis_addr);
        free(r->peers[i].redis_auth);
        df_window_destroy(&r->peers[i].lag);
        pthread_mutex_destroy(&r->peers[i].repair_mu);
    }
    repl_hlc_free(r->clock);
    repl_txn_pool_free(r);
    pthread_mutex_destroy(&r->pool_mu);
    pthread_mutex_destroy(&r->seq_mu);
    pthread_cond_destroy(&r->seq_cv);
    pthread_mutex_destroy(&r->cluster_mu);
    pthread_mutex_destroy(&r->peers_mu);
    free(r->key_dir);
    free(r->log_addr);
    free(r->public_url);
    free(r->redis_auth);
    sodium_memzero(r->sk, sizeof r->sk);
    free(r);
}

const char *repl_region(const repl *r) { return r->region; }
repl_hlc *repl_clock(repl *r) { return r->clock; }

int repl_peer_rewind(peer *p, uint64_t epoch, uint64_t gen, uint64_t from)
{
    char ck[64], gk[64], ek[64];
    uint64_t applied = atomic_load(&p->applied);
    uint64_t to = from && from - 1 < applied ? from - 1 : applied;
    repl_cursor_key(ck, sizeof ck, p->name);
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

/* ---- Status and controls ------------------------------------------------------------ */

const char *repl_state_name(repl_state s)
{
    switch (s) {
    case REPL_STANDALONE: return "standalone";
    case REPL_STREAMING: return "streaming";
    case REPL_PAUSED: return "paused";
    case REPL_DISCONNECTED: return "disconnected";
    case REPL_GAP: return "gap";
    case REPL_REMOVED: return "removed";
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
    out->repairing = r->repair_started;
    out->gc_horizon_ms = atomic_load(&r->gc_horizon);
    out->tombstones_purged = atomic_load(&r->tombstones_purged);
    out->zombies_buried = atomic_load(&r->zombies_buried);
    out->log_rewrites = atomic_load(&r->log_rewrites);
    out->npeers = r->npeers;
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        repl_peer_status *s = &out->peers[i];
        snprintf(s->name, sizeof s->name, "%s", p->name);
        s->applied_seq = atomic_load(&p->applied);
        s->published_seq = atomic_load(&p->published);
        s->acked_seq = atomic_load(&p->acked);
        s->applied_total = atomic_load(&p->applied_total);
        s->delay_ms = atomic_load(&p->delay_ms);
        s->state = atomic_load(&p->removed) ? REPL_REMOVED : (repl_state)atomic_load(&p->state);
        for (int k = 0; k < REPL_REJECT_N; k++) s->rejected[k] = atomic_load(&p->rejected[k]);
        s->rewinds = atomic_load(&p->rewinds);
        s->gap_from = atomic_load(&p->gap_from);
        s->gap_to = atomic_load(&p->gap_to);
        s->repair_rounds = atomic_load(&p->repair_rounds);
        s->repair_sent = atomic_load(&p->repair_sent);
        s->repair_received = atomic_load(&p->repair_received);
        s->repair_rejected = atomic_load(&p->repair_rejected);
        s->repair_equal_at = atomic_load(&p->repair_equal_at);
        s->repair_bytes = atomic_load(&p->repair_bytes);
        df_quantiles q = df_window_quantiles(&p->lag);
        s->lag_p50_ms = q.p50;
        s->lag_p99_ms = q.p99;
        s->lag_max_ms = q.max;
    }
}

int repl_remove_peer(repl *r, const char *name)
{
    pthread_mutex_lock(&r->peers_mu);
    peer *p = repl_peer_named(r, name);
    int rc = p ? 0 : DF_ENOTFOUND;
    if (p && !atomic_load(&p->removed)) {
        char ck[64];
        snprintf(ck, sizeof ck, "removed:%s", name);
        if ((rc = stg_meta_put_u64_sync(r->db, ck, 1)) == 0) {
            atomic_store(&p->removed, true); /* its subscriber stops at its next read */
            df_log(DF_LOG_WARN, "replication: %s decommissioned; no longer read or waited for",
                   name);
        }
    }
    pthread_mutex_unlock(&r->peers_mu);
    if (rc == 0) {
        pthread_mutex_lock(&r->cluster_mu);
        for (size_t j = 0; j < r->ncluster; j++)
            if (strcmp(r->cluster[j].name, name) == 0) r->cluster[j] = r->cluster[--r->ncluster];
        pthread_mutex_unlock(&r->cluster_mu);
    }
    return rc;
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
