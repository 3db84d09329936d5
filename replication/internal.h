/* internal.h -- what the replication files share; not the module's API. */
#ifndef DF_REPL_INTERNAL_H
#define DF_REPL_INTERNAL_H

#include "repl.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define MAX_REGIONS 32

typedef struct peer {
    struct repl *r;
    int index;
    char name[STG_ORIGIN_MAX + 1];
    char *redis_addr;
    pthread_t thread;
    bool started;
    _Atomic uint64_t applied; /* highest seq applied (durable in meta) */
    _Atomic uint64_t published; /* the peer's published seq, as last read */
    _Atomic uint64_t applied_total;
    _Atomic uint32_t delay_ms;
    _Atomic int state; /* repl_state */
    df_window lag; /* creation at the origin -> applied here, ms */
} peer;

struct repl {
    stg_db *db;
    feed *fd;
    char region[STG_ORIGIN_MAX + 1];
    char *log_addr;
    char *public_url;
    repl_hlc *clock;

    pthread_mutex_t seq_mu; /* assigns outbox seqs in commit order */
    pthread_cond_t seq_cv; /* signalled when a seq commits */
    uint64_t seq; /* last committed local seq */
    _Atomic uint64_t published;
    _Atomic uint64_t floor; /* outbox entries below it are truncated */
    _Atomic bool log_connected;
    uint32_t linger_ms;

    size_t npeers;
    peer peers[REPL_MAX_PEERS];
    pthread_t publisher;
    bool publisher_started;
    _Atomic bool stopping, paused;

    repl_listener_fn listener;
    void *listener_arg;

    pthread_mutex_t cluster_mu;
    repl_region_info cluster[MAX_REGIONS];
    size_t ncluster;
};

/* redis.c: connections with timeouts and backoff, reply helpers. */
redisContext *repl_redis_connect(const char *addr, int timeout_ms);
/* One connection attempt; on failure naps *backoff ms (doubling it, up to
 * 2 s) and returns NULL; on success resets *backoff. */
redisContext *repl_redis_reconnect(struct repl *r, const char *addr, uint64_t *backoff);
/* Sleeps up to ms in short steps; returns early (false) when stopping. */
bool repl_nap(struct repl *r, uint64_t ms);
/* Runs a command; NULL (and *c freed, set NULL) on a connection error. */
redisReply *repl_redis_cmd(redisContext **c, int argc, const char **argv, const size_t *lens);
/* Reads the replies of n commands appended to *c (a pipeline) into out.
 * Returns 0, or -1 after freeing *c (NULL) and every reply on an error. */
int repl_redis_replies(redisContext **c, int n, redisReply **out);
/* Merges announced regions (a HGETALL reply) into the cluster cache. */
void repl_cluster_merge(struct repl *r, const redisReply *all);
/* Stream entry id "<seq>-1" -> seq; 0 if it is not of that form. */
uint64_t repl_parse_entry_id(const char *s);

void *repl_publisher_main(void *arg);
void *repl_subscriber_main(void *arg);

#endif
