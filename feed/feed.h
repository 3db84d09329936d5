/* feed.h -- fan-out and timelines: the durable fan-out queue, its worker
 * threads, and home/profile timeline reads with pagination.
 *
 * A post (local or replicated), a delete, a follow or an unfollow stages a
 * fan-out job in the same write batch as the record (feed_stage); after the
 * batch commits, the store's commit event hands the job to the workers.
 * Jobs survive restarts: feed_start requeues every job still stored. */
#ifndef DF_FEED_H
#define DF_FEED_H

#include "storage.h"

typedef struct feed feed;

typedef struct feed_config {
    int workers; /* worker threads (default 2) */
    int64_t large_threshold; /* followers above which posts are merged at read (10000) */
    int timeline_cap; /* home timeline entries kept per user (800) */
    uint64_t queue_max; /* jobs queued before writes get 503 (100000) */
    int batch; /* deliveries per write batch (1000) */
    int post_cache_mb; /* post values kept in memory for reads (32) */
    int page_cache_mb; /* rendered first pages kept in memory (64; -1: none) */
    int merge_group; /* followee profiles a read below a home floor holds open at once (256) */
} feed_config;

/* The sweep of the home family (stg_options.sweep[STG_CF_HOME]): drops the
 * entries at or below their user's home floor, which reads never reach --
 * so a trim at the timeline cap only raises the floor, and compaction
 * removes what it left out. */
bool feed_home_sweep(stg_db *db, const char *key, size_t klen, stg_sweep_memo *memo);

/* Opens the feed over db; loads the large-account set. Returns 0 or DF_E*. */
int feed_open(feed **out, stg_db *db, const feed_config *cfg);
/* Requeues stored jobs and starts the workers. */
int feed_start(feed *f);
/* Stops the workers (jobs in progress stop at their next checkpoint) and
 * frees everything. Accepts NULL. */
void feed_close(feed *f);

/* Stages into b what replacing old (NULL: none) by rec calls for: a
 * fan-out job (*job is its id), or, for a post or delete of an author
 * nobody follows, the author's own home entry itself (*job is
 * FEED_JOB_DIRECT or FEED_JOB_DIRECT + 1: no job runs); *job is 0 when
 * nothing is needed. The caller holds rec's lock, commits b, and then
 * passes *job in the commit event -- or, when b is dropped instead, to
 * feed_unstage. Returns 0, or DF_EBUSY when a job is needed and the queue
 * is full (nothing staged; a writer answers 503). */
#define FEED_JOB_DIRECT (UINT64_MAX - 1)
int feed_stage(feed *f, stg_batch *b, const stg_record *rec, const stg_record *old, uint64_t *job);
void feed_unstage(feed *f, uint64_t job);

/* The feed subscribes to the store's commits (stg_subscribe): a committed
 * record's job goes to the workers and its cached copies are forgotten. A
 * post written into a home timeline is an STG_EVENT_DELIVERY, told on the
 * worker thread (post_id's record may be read with stg_record_load). */

/* True when the queue is too deep to take another job (answer 503). */
bool feed_overloaded(feed *f);

typedef struct feed_stats {
    uint64_t depth; /* jobs queued or running */
    uint64_t depth_max; /* the most there have been since start */
    uint64_t jobs_done;
    uint64_t deliveries; /* home timeline entries written */
    uint64_t latency_p50_ms; /* post creation -> last delivery, recent jobs */
    uint64_t latency_p99_ms;
    size_t large_accounts;
    df_cache_counts posts, pages; /* the read caches (pages: kept but outdated counts as a miss) */
} feed_stats;
void feed_get_stats(feed *f, feed_stats *out);

/* A ticket for the jobs queued so far (every committed record's job is
 * queued before its commit returns), and whether all of them have run:
 * what a read that must see those records in home timelines waits for. */
uint64_t feed_ticket(feed *f);
bool feed_ticket_done(feed *f, uint64_t ticket);
/* Calls fn(arg) on a worker thread after each job (fn must be quick). Set
 * once, before feed_start. */
void feed_on_done(feed *f, void (*fn)(void *arg), void *arg);
/* Blocks until the queue is empty or timeout_ms passes; true if empty. */
bool feed_drain(feed *f, uint64_t timeout_ms);

/* ---- Reads ------------------------------------------------------------------- */
typedef struct feed_item {
    char *raw; /* the stored post value (free()) */
    stg_record post; /* decoded, pointing into raw */
    uint64_t delivered_ms;
} feed_item;

typedef struct feed_page {
    feed_item *items;
    size_t n;
    char next[STG_ID_MAX + 32]; /* cursor for the following page; "" when done */
} feed_page;

/* The home timeline of user: own posts and followees' posts, newest first
 * by version, at most the newest timeline_cap of them. cursor is NULL or a
 * value of next from the previous page. Returns 0, DF_EINVAL (bad cursor)
 * or DF_EIO. */
int feed_home(feed *f, const char *user, const char *cursor, int limit, feed_page *out);
/* The live posts of author, newest first. */
int feed_profile(feed *f, const char *author, const char *cursor, int limit, feed_page *out);
void feed_page_free(feed_page *p);

/* Rendered home timeline pages (pages.c). feed_home_cached points *body
 * at the kept body of user's page (cursor as for feed_home, limit posts),
 * held until df_cache_release(*ref), and returns true if nothing that
 * could change the page committed since it was read; it always fills
 * *stamp, which a caller that missed reads and renders the page after, and
 * passes to feed_home_keep. */
typedef struct feed_stamp {
    uint64_t ver, epoch, gen;
} feed_stamp;
bool feed_home_cached(feed *f, const char *user, const char *cursor, int limit, const char **body,
                      size_t *len, df_cache_ref **ref, feed_stamp *stamp);
void feed_home_keep(feed *f, const char *user, const char *cursor, int limit,
                    const feed_stamp *stamp, const char *body, size_t len);
/* Parses a cursor ("<post id>~<depth>"; NULL or "" is the first page) into
 * the id to continue below (or "") and the depth. Returns 0 or DF_EINVAL. */
int feed_parse_cursor(const char *cursor, char id[STG_ID_MAX + 1], long *depth);

#endif
