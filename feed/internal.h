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
int job_decode(const char *buf, size_t len, job *j);
#define JOB_MAX (1 + 3 * (1 + STG_ID_MAX))

#define LAT_RING 256
#define TRIM_SLOTS 65536

struct feed {
    stg_db *db;
    feed_config cfg;

    pthread_mutex_t mu; /* guards the queue */
    pthread_cond_t wake, idle;
    uint64_t *q;
    size_t qhead, qlen, qcap;
    size_t running;
    bool stopping;
    pthread_t *threads;
    int nthreads;
    _Atomic uint64_t next_job;

    pthread_rwlock_t large_mu; /* guards the large-account set */
    char **large;
    size_t nlarge;

    _Atomic uint64_t jobs_done, deliveries;
    pthread_mutex_t lat_mu;
    uint64_t lat[LAT_RING];
    size_t nlat;

    _Atomic uint16_t trim[TRIM_SLOTS]; /* deliveries since the last trim, by user hash */

    feed_listener_fn listener;
    void *listener_arg;
};

bool feed_is_large(feed *f, const char *user);
void feed_mark_large(feed *f, const char *user);
void feed_record_latency(feed *f, uint64_t ms);
void feed_run_job(feed *f, uint64_t id);
/* True if follower follows followee (or is followee). */
bool feed_follows(stg_db *db, const char *follower, const char *followee);

#endif
