/* internal.h -- what the feed's files share; not part of the module's API. */
#ifndef DF_FEED_INTERNAL_H
#define DF_FEED_INTERNAL_H

#include "feed.h"

#include <pthread.h>
#include <stdatomic.h>

enum { JOB_POST = 1, JOB_UNPOST = 2, JOB_FOLLOW = 3, JOB_UNFOLLOW = 4 };

/* A fan-out job as stored: what to do (a, b) and how far it got. */
typedef struct job {
    int type;
    char a[STG_ID_MAX + 1]; /* JOB_POST/UNPOST: post id; FOLLOW/UNFOLLOW: follower */
    char b[STG_ID_MAX + 1]; /* JOB_POST/UNPOST: author;  FOLLOW/UNFOLLOW: followee */
    char checkpoint[STG_ID_MAX + 1]; /* last follower done; "" at the start */
} job;

void job_encode(const job *j, char *out, size_t *len); /* out >= JOB_MAX */
/* Copies a key part (at most STG_ID_MAX bytes) into dst, NUL-terminated. */
void feed_copy_id(char dst[STG_ID_MAX + 1], const char *src, size_t n);
/* Appends s[0..n) and a NUL to the list *buf of *len bytes (*cap
 * allocated, doubled as needed): the NUL-separated id lists of the caches. */
void feed_pack(char **buf, size_t *len, size_t *cap, const char *s, size_t n);
int job_decode(const char *buf, size_t len, job *j);
#define JOB_MAX (1 + 3 * (1 + STG_ID_MAX))

/* Per-user counters live in slots by user hash (feed_user_slot). */
#define USER_SLOTS 65536
unsigned feed_user_slot(const char *user);
/* stg_follower_count through a cache (feed.c). */
int64_t feed_follower_count(feed *f, const char *user);

struct feed {
    stg_db *db;
    feed_config cfg;

    pthread_mutex_t mu; /* guards the queue */
    pthread_cond_t wake, idle;
    uint64_t *q;
    size_t qhead, qlen, qcap;
    size_t running;
    /* Jobs by the order they were queued (the queue is FIFO): how many
     * were queued and taken, and the order of each running one (by
     * worker slot; UINT64_MAX: none), for feed_ticket_done. */
    uint64_t queued_total, taken_total;
    uint64_t *running_ord;
    void (*done_fn)(void *arg);
    void *done_arg;
    size_t depth_max; /* the largest qlen + running seen */
    size_t sleeping, wakeups; /* workers in cond_wait; signals not yet taken */
    bool stopping;
    pthread_t *threads;
    int nthreads;
    _Atomic uint64_t next_job;

    pthread_mutex_t floor_mu; /* serialises raising home floors */
    char floor_all[STG_ID_MAX + 1]; /* every user's floor at least ("": none) */

    pthread_rwlock_t large_mu; /* guards the large-account set */
    char **large;
    size_t nlarge;

    _Atomic uint64_t jobs_done, deliveries;
    _Atomic uint64_t direct_epoch;
    _Atomic int64_t direct_in[2]; /* direct commits in flight, by epoch parity */
    df_window latency; /* post creation -> last delivery, ms */

    _Atomic uint16_t trim[USER_SLOTS]; /* deliveries since the last trim, by user hash */

    /* Caches (df_cache; forgotten when a record commits):
     * posts: post id -> stored value, live posts only;
     * follows: viewer -> its followees (timeline.c, follow_set);
     * heads: author -> its newest timeline_cap post ids (large accounts,
     * merged into home timelines on read);
     * followers: author -> all its followers, when they fit one fan-out
     * chunk (workers.c);
     * counts: author -> its follower count (feed_follower_count). */
    df_cache *posts, *follows, *heads, *followers, *counts;
    df_cache *pages; /* rendered pages (pages.c); NULL: off */
    _Atomic uint64_t page_ver[USER_SLOTS]; /* bumped by changes to a user's pages */
    _Atomic uint64_t epoch; /* bumped by changes that may alter any page */
    _Atomic uint64_t pages_outdated; /* kept pages found but not served */

};

/* Outdates user's kept pages (pages.c), after a change to its home
 * entries or its follows committed. */
void feed_forget_page(feed *f, const char *user);

bool feed_is_large(feed *f, const char *user);
void feed_mark_large(feed *f, const char *user);
void feed_run_job(feed *f, uint64_t id);
/* Called by a worker between chunks of a long job: wakes a sleeping worker
 * if jobs are waiting. */
void feed_nudge(feed *f);
/* Home entries (home.c): key user \0 ~id, where ~id is the post id with
 * every byte inverted and 0xff appended, so a forward scan of user \0
 * yields the newest post first. feed_home_key writes the key of (user,
 * id) into buf and returns its length, or -1 if it does not fit;
 * feed_home_key_id decodes the id of a key into out and returns its
 * length, or -1 if the key is not a home key. */
int feed_home_key(char *buf, size_t cap, const char *user, const char *id, size_t idlen);
int feed_home_key_id(const char *k, size_t kl, char out[STG_ID_MAX + 1]);
#define HOME_KEYCAP (2 * STG_ID_MAX + 3)
/* Stage the entry of post_id (by author, delivered now) in user's home, or
 * its removal. */
void feed_home_put(stg_batch *b, const char *user, const char *post_id, const char *author,
                   uint64_t now);
void feed_home_delete(stg_batch *b, const char *user, const char *post_id);
/* After a committed delivery (workers.c): counts it, tells the store's
 * subscribers (STG_EVENT_DELIVERY), trims user's home now and then. */
void feed_delivered(feed *f, const char *user, const char *post_id, uint64_t now);
/* A post reached everyone it will: its delivery latency is recorded. */
void feed_post_done(feed *f, const char *post_id);

/* Direct posts (jobs.c). A post (or delete) of an author nobody follows
 * needs no job: its author's own home entry is staged with the record.
 * The follower count it read must still hold when it commits, so a
 * follow's backfill first waits (feed_direct_barrier) until every direct
 * commit that could have missed the follow has committed. A direct commit
 * enters the current epoch before it reads the count and leaves it when
 * committed or dropped; the barrier moves to a new epoch and waits for the
 * old one to empty (two counters, by parity). */
void feed_direct_barrier(feed *f);

/* Home floors. A user's home entries hold every visible post newer than
 * the floor; at or below it entries may be missing (trimmed at the cap, or
 * past a follow's backfill), so reads there merge the followees' profiles.
 * feed_home_floor copies the floor into out; false if the user has none.
 * feed_write_with_floor commits b after staging into it, under floor_mu, a
 * rise of user's floor to id (NULL: no change); returns 0 or DF_EIO. */
bool feed_home_floor(feed *f, const char *user, char out[STG_ID_MAX + 1]);
int feed_write_with_floor(feed *f, stg_batch *b, const char *user, const char *id);
/* Checks the home format at open (upgrading the first one); loads the
 * floor every user shares. Returns 0 or DF_E*. */
int feed_home_open(feed *f);

/* True if follower follows followee (or is followee). */
bool feed_follows(stg_db *db, const char *follower, const char *followee);

#endif
