/* feed.c -- the feed module's state: the in-memory job queue, the worker
 * threads, the large-account set and statistics.
 *
 * DESIGN: the durable queue is the fanout column family; the in-memory
 * ring only holds ids of committed jobs. Writers push ids after their batch
 * commits; workers pop under the mutex and run jobs without it. Depth is
 * queued + running; feed_overloaded compares it with queue_max.
 *
 * Wake-ups: a writer wakes a sleeping worker only when no worker is awake,
 * or when more than WAKE_BACKLOG jobs wait per awake worker; a worker in a
 * long job wakes one between chunks if jobs wait (feed_nudge). Most jobs
 * take microseconds, so waking a worker for each one cost more (a futex
 * wake, a context switch, a futex wait: a fifth of the CPU of a post) than
 * the job; a job now waits at most one chunk of a running job. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *worker_main(void *arg);

static void on_event(void *arg, const stg_event *ev);

int feed_open(feed **out, stg_db *db, const feed_config *cfg)
{
    feed *f = xcalloc(1, sizeof *f);
    f->db = db;
    f->cfg = *cfg;
    if (f->cfg.workers <= 0) f->cfg.workers = 2;
    if (f->cfg.large_threshold <= 0) f->cfg.large_threshold = 10000;
    if (f->cfg.timeline_cap <= 0) f->cfg.timeline_cap = 800;
    if (f->cfg.queue_max == 0) f->cfg.queue_max = 100000;
    if (f->cfg.batch <= 0) f->cfg.batch = 1000;
    if (f->cfg.merge_group <= 0) f->cfg.merge_group = 256;
    if (f->cfg.batch < 2) f->cfg.batch = 2; /* a chunk holds the author and >= 1 follower */
    if (f->cfg.post_cache_mb <= 0) f->cfg.post_cache_mb = 32;
    f->posts = df_cache_new(256 * 1024, (size_t)f->cfg.post_cache_mb << 20);
    f->follows = df_cache_new(64 * 1024, 32 << 20);
    f->heads = df_cache_new(1024, 64 << 20);
    f->followers = df_cache_new(64 * 1024, 16 << 20);
    f->counts = df_cache_new(64 * 1024, 8 << 20);
    if (f->cfg.page_cache_mb == 0) f->cfg.page_cache_mb = 64;
    if (f->cfg.page_cache_mb > 0)
        f->pages = df_cache_new(256 * 1024, (size_t)f->cfg.page_cache_mb << 20);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->wake, NULL);
    pthread_cond_init(&f->idle, NULL);
    pthread_rwlock_init(&f->large_mu, NULL);
    df_window_init(&f->latency);
    pthread_mutex_init(&f->floor_mu, NULL);

    /* Large accounts persisted as meta keys "large\0<user>". */
    stg_iter *it = stg_iter_prefix(db, STG_CF_META, "large", 6, false);
    const char *k;
    size_t kl;
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) {
        char user[STG_ID_MAX + 1];
        size_t n = kl - 6 > STG_ID_MAX ? STG_ID_MAX : kl - 6;
        memcpy(user, k + 6, n);
        user[n] = '\0';
        feed_mark_large(f, user);
    }
    int rc = stg_iter_close(it);

    /* Job ids continue after the last stored job. */
    uint64_t next = 1;
    it = stg_iter_range(db, STG_CF_FANOUT, NULL, 0, NULL, 0, true);
    if (stg_iter_next(it, &k, &kl, NULL, NULL) && kl == 8) next = stg_key_get_u64(k) + 1;
    if (rc == 0) rc = stg_iter_status(it);
    stg_iter_free(it);
    atomic_store(&f->next_job, next);
    if (rc == 0) rc = feed_home_open(f);
    if (rc < 0) {
        feed_close(f);
        return rc;
    }
    stg_subscribe(db, on_event, f);
    *out = f;
    return 0;
}

static void push_locked(feed *f, uint64_t id)
{
    if (f->qlen == f->qcap) {
        size_t ncap = f->qcap ? f->qcap * 2 : 1024;
        uint64_t *nq = xmalloc(ncap * sizeof *nq);
        for (size_t i = 0; i < f->qlen; i++) nq[i] = f->q[(f->qhead + i) % f->qcap];
        free(f->q);
        f->q = nq;
        f->qcap = ncap;
        f->qhead = 0;
    }
    f->q[(f->qhead + f->qlen) % f->qcap] = id;
    f->qlen++;
    f->queued_total++;
    if (f->qlen + f->running > f->depth_max) f->depth_max = f->qlen + f->running;
}

#define WAKE_BACKLOG 16

/* Wakes a sleeping worker if the awake ones (running, idle, or being
 * woken) are none or have too much waiting. Holds mu. */
static void wake_locked(feed *f, size_t backlog)
{
    if (f->sleeping <= f->wakeups) return; /* every sleeper is being woken */
    size_t awake = (size_t)f->nthreads - f->sleeping + f->wakeups;
    if (awake == 0 || f->qlen > backlog * awake) {
        f->wakeups++;
        pthread_cond_signal(&f->wake);
    }
}

static void enqueue(feed *f, uint64_t id);

/* A record was committed (after the batch that staged it): forget what the
 * caches hold of it, and hand its job (0: none) to the workers -- or, for a
 * direct post, finish its one delivery here. */
static void committed(feed *f, const stg_record *rec, uint64_t id)
{
    if (rec->kind == STG_KIND_POST) {
        if (rec->tombstone) df_cache_forget(f->posts, rec->key, rec->keylen);
        df_cache_forget(f->heads, rec->owner, rec->ownerlen);
        char author[STG_ID_MAX + 1];
        feed_copy_id(author, rec->owner, rec->ownerlen);
        if (rec->tombstone || feed_is_large(f, author)) atomic_fetch_add(&f->epoch, 1);
        if (id >= FEED_JOB_DIRECT) {
            feed_unstage(f, id); /* committed: a waiting backfill may go on */
            char post[STG_ID_MAX + 1];
            feed_copy_id(post, rec->key, rec->keylen);
            feed_forget_page(f, author);
            if (!rec->tombstone) {
                feed_delivered(f, author, post, df_now_ms());
                feed_post_done(f, post);
            }
            return;
        }
    } else if (rec->kind == STG_KIND_FOLLOW) {
        const char *followee;
        size_t nfollowee;
        int nfollower = stg_key_split(rec->key, rec->keylen, &followee, &nfollowee);
        if (nfollower > 0) {
            df_cache_forget(f->follows, rec->key, (size_t)nfollower);
            df_cache_forget(f->followers, followee, nfollowee);
            df_cache_forget(f->counts, followee, nfollowee);
            char follower[STG_ID_MAX + 1];
            feed_copy_id(follower, rec->key, (size_t)nfollower);
            feed_forget_page(f, follower);
        }
    }
    enqueue(f, id);
}

static void on_event(void *arg, const stg_event *ev)
{
    if (ev->type == STG_EVENT_COMMIT) committed(arg, ev->rec, ev->job);
}

static void enqueue(feed *f, uint64_t id)
{
    if (!id) return;
    pthread_mutex_lock(&f->mu);
    push_locked(f, id);
    wake_locked(f, WAKE_BACKLOG);
    pthread_mutex_unlock(&f->mu);
}

void feed_nudge(feed *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->qlen > 0) wake_locked(f, 0);
    pthread_mutex_unlock(&f->mu);
}

int feed_start(feed *f)
{
    stg_iter *it = stg_iter_range(f->db, STG_CF_FANOUT, NULL, 0, NULL, 0, false);
    const char *k;
    size_t kl, n = 0;
    pthread_mutex_lock(&f->mu);
    while (stg_iter_next(it, &k, &kl, NULL, NULL))
        if (kl == 8) {
            push_locked(f, stg_key_get_u64(k));
            n++;
        }
    pthread_mutex_unlock(&f->mu);
    int rc = stg_iter_close(it);
    if (rc < 0) return rc;
    if (n) df_log(DF_LOG_INFO, "feed: resuming %zu fan-out jobs", n);
    f->threads = xcalloc((size_t)f->cfg.workers, sizeof *f->threads);
    f->running_ord = xmalloc((size_t)f->cfg.workers * sizeof *f->running_ord);
    for (int i = 0; i < f->cfg.workers; i++) f->running_ord[i] = UINT64_MAX;
    for (int i = 0; i < f->cfg.workers; i++) {
        if (pthread_create(&f->threads[i], NULL, worker_main, f) != 0) return DF_EIO;
        f->nthreads++;
    }
    return 0;
}

void feed_close(feed *f)
{
    if (!f) return;
    stg_unsubscribe(f->db, on_event, f);
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->nthreads; i++) pthread_join(f->threads[i], NULL);
    free(f->threads);
    free(f->running_ord);
    free(f->q);
    df_cache_free(f->posts);
    df_cache_free(f->follows);
    df_cache_free(f->heads);
    df_cache_free(f->followers);
    df_cache_free(f->counts);
    df_cache_free(f->pages);
    for (size_t i = 0; i < f->nlarge; i++) free(f->large[i]);
    free(f->large);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->wake);
    pthread_cond_destroy(&f->idle);
    pthread_rwlock_destroy(&f->large_mu);
    df_window_destroy(&f->latency);
    pthread_mutex_destroy(&f->floor_mu);
    free(f);
}

static void *worker_main(void *arg)
{
    feed *f = arg;
    df_thread_name("df-fanout");
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stopping && f->qlen == 0) {
            f->sleeping++;
            pthread_cond_wait(&f->wake, &f->mu);
            f->sleeping--;
            if (f->wakeups) f->wakeups--;
        }
        if (f->stopping) break;
        uint64_t id = f->q[f->qhead];
        f->qhead = (f->qhead + 1) % f->qcap;
        f->qlen--;
        f->running++;
        int slot = 0;
        while (f->running_ord[slot] != UINT64_MAX) slot++; /* running <= workers */
        f->running_ord[slot] = f->taken_total++;
        pthread_mutex_unlock(&f->mu);
        feed_run_job(f, id);
        pthread_mutex_lock(&f->mu);
        f->running_ord[slot] = UINT64_MAX;
        f->running--;
        if (f->qlen == 0 && f->running == 0) pthread_cond_broadcast(&f->idle);
        if (f->done_fn) { /* a read waiting for this job may go on */
            pthread_mutex_unlock(&f->mu);
            f->done_fn(f->done_arg);
            pthread_mutex_lock(&f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

bool feed_overloaded(feed *f)
{
    pthread_mutex_lock(&f->mu);
    bool over = f->qlen + f->running >= f->cfg.queue_max;
    pthread_mutex_unlock(&f->mu);
    return over;
}

uint64_t feed_ticket(feed *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t t = f->queued_total;
    pthread_mutex_unlock(&f->mu);
    return t;
}

bool feed_ticket_done(feed *f, uint64_t ticket)
{
    pthread_mutex_lock(&f->mu);
    uint64_t low = f->taken_total; /* every job before it was taken... */
    for (int i = 0; i < f->nthreads; i++) /* ...and those taken, but running, are not done */
        if (f->running_ord[i] < low) low = f->running_ord[i];
    pthread_mutex_unlock(&f->mu);
    return low >= ticket;
}

void feed_on_done(feed *f, void (*fn)(void *arg), void *arg)
{
    f->done_arg = arg;
    f->done_fn = fn;
}

bool feed_drain(feed *f, uint64_t timeout_ms)
{
    uint64_t deadline = df_mono_ms() + timeout_ms;
    pthread_mutex_lock(&f->mu);
    while (f->qlen + f->running > 0 && df_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&f->idle, &f->mu, &ts);
    }
    bool empty = f->qlen + f->running == 0;
    pthread_mutex_unlock(&f->mu);
    return empty;
}

unsigned feed_user_slot(const char *user) { return df_hash32(user, strlen(user)) % USER_SLOTS; }

/* Every post asks whether its author has followers (the direct path when
 * none): a cached count answers without a RocksDB read of a key that the
 * counter merges of every follow keep busy. Forgotten when a follow of the
 * author commits (committed()); a post staged in between, counted without
 * that follower, is still delivered by the follow's backfill. */
int64_t feed_follower_count(feed *f, const char *user)
{
    size_t n = strlen(user), vl;
    const char *v;
    uint64_t gen;
    df_cache_ref *ref = NULL;
    int64_t c;
    if (df_cache_hold(f->counts, user, n, &v, &vl, &gen, &ref) && vl == sizeof c) {
        memcpy(&c, v, sizeof c);
        df_cache_release(ref);
        return c;
    }
    df_cache_release(ref);
    c = stg_follower_count(f->db, user);
    df_cache_put(f->counts, user, n, &c, sizeof c, gen);
    return c;
}

/* ---- Large accounts ----------------------------------------------------------- */

bool feed_is_large(feed *f, const char *user)
{
    bool found = false;
    pthread_rwlock_rdlock(&f->large_mu);
    for (size_t i = 0; i < f->nlarge && !found; i++) found = strcmp(f->large[i], user) == 0;
    pthread_rwlock_unlock(&f->large_mu);
    return found;
}

void feed_mark_large(feed *f, const char *user)
{
    pthread_rwlock_wrlock(&f->large_mu);
    bool found = false;
    for (size_t i = 0; i < f->nlarge && !found; i++) found = strcmp(f->large[i], user) == 0;
    if (!found) {
        f->large = xrealloc(f->large, (f->nlarge + 1) * sizeof *f->large);
        f->large[f->nlarge++] = xstrdup(user);
        atomic_fetch_add(&f->epoch, 1);
        df_log(DF_LOG_INFO, "feed: %s is a large account; its posts merge at read time", user);
    }
    pthread_rwlock_unlock(&f->large_mu);
}

/* ---- Statistics ---------------------------------------------------------------- */

void feed_get_stats(feed *f, feed_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&f->mu);
    out->depth = f->qlen + f->running;
    out->depth_max = f->depth_max;
    pthread_mutex_unlock(&f->mu);
    out->jobs_done = atomic_load(&f->jobs_done);
    out->deliveries = atomic_load(&f->deliveries);
    df_quantiles q = df_window_quantiles(&f->latency);
    out->latency_p50_ms = q.p50;
    out->latency_p99_ms = q.p99;
    pthread_rwlock_rdlock(&f->large_mu);
    out->large_accounts = f->nlarge;
    pthread_rwlock_unlock(&f->large_mu);
    df_cache_stats(f->posts, &out->posts);
    if (f->pages) df_cache_stats(f->pages, &out->pages);
    uint64_t outdated = atomic_load(&f->pages_outdated);
    out->pages.hits -= outdated < out->pages.hits ? outdated : out->pages.hits;
    out->pages.misses += outdated;
}

bool feed_follows(stg_db *db, const char *follower, const char *followee)
{
    if (strcmp(follower, followee) == 0) return true;
    char key[2 * STG_ID_MAX + 2], *raw;
    int kl = stg_key_join(key, sizeof key, follower, strlen(follower), followee, strlen(followee));
    stg_record rec;
    if (kl < 0 || stg_record_load(db, STG_KIND_FOLLOW, key, (size_t)kl, &rec, &raw) < 0)
        return false;
    bool live = !rec.tombstone;
    free(raw);
    return live;
}
