/* internal.h -- what the replication files share; not the module's API. */
#ifndef DF_REPL_INTERNAL_H
#define DF_REPL_INTERNAL_H

#include "repl.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#define MAX_REGIONS 32
#define REPL_TXN_POOL 16

typedef struct peer {
    struct repl *r;
    int index;
    char name[STG_ORIGIN_MAX + 1];
    char *redis_addr;
    pthread_t thread;
    bool started;
    _Atomic uint64_t applied; /* highest seq applied (durable in meta) */
    _Atomic uint64_t published; /* the peer's published seq, as last read */
    _Atomic uint64_t seen; /* the highest entry id read from its stream (authentic or not) */
    _Atomic uint64_t applied_total;
    _Atomic uint32_t delay_ms;
    _Atomic int state; /* repl_state */
    df_window lag; /* creation at the origin -> applied here, ms */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES]; /* when r->authenticated */
    char *redis_auth; /* "password" or "user password", or NULL */
    _Atomic uint64_t rejected[REPL_REJECT_N];
    _Atomic uint32_t rejected_logged; /* a bit per reason: logged once */
    _Atomic uint64_t gap_from, gap_to; /* state REPL_GAP */
    /* Subscriber thread only: the last stream id read. Entries with ids no
     * region writes are passed over here, in memory; the durable cursor
     * (applied) never moves past a seq that was not applied or skipped as
     * authentic but invalid. */
    uint64_t read_ms, read_sq;
    uint64_t counted_gap; /* the gap entry last counted, so a re-read is not */
    uint64_t generation; /* the peer's last stream rewrite we followed (durable) */
    uint64_t epoch; /* the peer's store incarnation we follow (durable; 0: none seen) */
    _Atomic uint64_t rewinds; /* times the cursor went back: a rewrite, a restored peer */
    /* Anti-entropy (repair.c): rounds completed against the peer, records
     * we served it and received from it, answers refused, and when a round
     * last found our trees equal (wall ms, 0: never). */
    _Atomic uint64_t repair_rounds, repair_sent, repair_received, repair_rejected;
    _Atomic uint64_t repair_bytes; /* of the peer's answers (sums, entries, records) */
    _Atomic uint64_t repair_equal_at;
    /* The last complete round: everything the peer's store (epoch) wrote up
     * to seq is here; the subscriber moves its cursor past a gap to it. */
    pthread_mutex_t repair_mu;
    uint64_t repaired_epoch, repaired_seq;
    _Atomic bool removed; /* decommissioned (durable: meta "removed:<name>") */
    /* How much of our log the peer has applied, from its df:progress (the
     * publisher reads it; acknowledgements wait on it). */
    _Atomic uint64_t acked;
} peer;

struct repl {
    stg_db *db;
    feed *fd;
    char region[STG_ORIGIN_MAX + 1];
    char *log_addr;
    char *public_url;
    char *redis_auth; /* for our log's Redis */
    repl_hlc *clock;
    /* Our signing key; peers' public keys are in peer.pk. Without keys
     * (authenticated false) nothing is signed or checked. */
    bool authenticated;
    unsigned char sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES];

    pthread_mutex_t seq_mu; /* assigns outbox seqs in commit order */
    pthread_cond_t seq_cv; /* signalled when a seq commits */
    uint64_t seq; /* last committed local seq */
    _Atomic uint64_t published;
    _Atomic uint64_t floor; /* outbox entries below it are truncated */
    _Atomic bool log_connected;
    bool publish_failing; /* publisher thread only: the last chunk was refused */
    _Atomic uint64_t log_rewrites;
    /* How often our stream was rewritten (durable): announced with the seq
     * it restarts from in df:rewrites, so subscribers read it again. */
    uint64_t generation, rewrite_from;
    /* Our store's incarnation: made with the store (creation time in ms
     * << 16 | 16 random bits, so a later store has a larger one), durable,
     * and part of every signed chunk and value. A store recreated from
     * nothing starts its seqs again under a new epoch, and peers read its
     * log from the start instead of taking its seqs for ones they have. */
    uint64_t epoch;
    uint32_t linger_ms;

    /* Peers: those configured, then any that joins (repl_peer_join). A slot
     * is filled before npeers counts it and never changes after, so readers
     * take npeers and read the slots below it without a lock. */
    _Atomic size_t npeers;
    peer peers[REPL_MAX_PEERS];
    pthread_mutex_t peers_mu; /* joins, one at a time */
    char *key_dir; /* where peers' public keys are (NULL: unauthenticated) */
    pthread_t publisher;
    bool publisher_started;
    uint32_t repair_interval_ms; /* 0: no anti-entropy */
    uint64_t retain_records, retain_ms; /* the log's retention (with repair), 0: none */
    /* Tombstone GC (gc.c): every record older than the horizon (ms) was in
     * every peer's store when they last compared equal with us, so one we
     * lack older than it was deleted and purged: it is refused (commit.c). */
    uint64_t grace_ms;
    _Atomic uint64_t gc_horizon;
    _Atomic uint64_t tombstones_purged, zombies_buried;
    uint64_t gc_next; /* the repair thread's: when the next GC pass is due (mono ms) */
    pthread_t repair, repair_server;
    bool repair_started, repair_server_started;
    _Atomic bool stopping, paused;

    pthread_mutex_t pool_mu; /* local transactions kept for reuse (commit.c) */
    struct repl_applier *pool[REPL_TXN_POOL];
    size_t pool_n;

    pthread_mutex_t cluster_mu;
    repl_region_info cluster[MAX_REGIONS];
    size_t ncluster;

    /* Sessions (session.c): writes waiting for acknowledgements (the
     * publisher then reads peers' progress often), and who is told when
     * a peer's records are applied here or a peer acknowledges ours. */
    _Atomic int ack_waiters;
    void (*progress_fn)(void *arg);
    void *progress_arg;
};

/* commit.c: the meta key of origin's cursor; the pool's release (repl_close). */
void repl_cursor_key(char *buf, size_t cap, const char *origin);
void repl_txn_pool_free(struct repl *r);

/* keys.c: key files, signatures, signed values. */
#define REPL_SIG_LEN crypto_sign_BYTES
#define REPL_HASH_LEN 32
int repl_keys_load(struct repl *r, const char *dir);
/* key_dir/name.pub into pk: DF_ENOTFOUND (quietly) if there is none. */
int repl_peer_key_find(const struct repl *r, const char *name, unsigned char pk[32]);
/* engine.c: the peer called name, or NULL. */
peer *repl_peer_named(struct repl *r, const char *name);
/* engine.c: a region that announced itself, signed by a key in key_dir,
 * becomes a peer: read from our log's Redis, answered and asked by repair. */
void repl_peer_join(struct repl *r, const char *name, const unsigned char pk[32]);
/* Signs (verifies) val as written under Redis key and field. */
void repl_sign(const struct repl *r, const char *key, const char *field, const void *val,
               size_t len, unsigned char sig[REPL_SIG_LEN]);
bool repl_verify(const unsigned char pk[32], const char *key, const char *field, const void *val,
                 size_t len, const unsigned char *sig, size_t siglen);
void repl_record_hash(const void *rec, size_t len, unsigned char out[REPL_HASH_LEN]);
/* A small value as stored in Redis: "<val>", signed "<val> <hex>" when
 * authenticated. open checks it against pk (NULL: takes the value, ignores
 * any signature) and copies the value into val; returns its length or -1. */
void repl_value_seal(const struct repl *r, const char *key, const char *field, const char *val,
                     char *out, size_t cap);
int repl_value_open(const unsigned char *pk, const char *key, const char *field, const char *s,
                    size_t n, char *val, size_t cap);
/* The peer's key when we check signatures, else NULL. */
static inline const unsigned char *repl_peer_key(const peer *p)
{
    return p->r->authenticated ? p->pk : NULL;
}
/* Counts a rejected entry of p's log and logs the first of each reason. */
void repl_peer_reject(peer *p, repl_reject why, uint64_t seq);
/* p rewrote its stream (generation gen, from seq from on), or its store is
 * a new incarnation (a new epoch, from seq 1): moves the cursor back to
 * before from, durably with epoch and gen. Subscriber thread, between
 * batches. */
int repl_peer_rewind(peer *p, uint64_t epoch, uint64_t gen, uint64_t from);
/* Persists a new generation of our stream, rewritten from seq from. */
int repl_next_generation(struct repl *r, uint64_t from);

/* redis.c: connections with timeouts and backoff, reply helpers. */
/* Connects and, with auth ("password" or "user password"), authenticates. */
redisContext *repl_redis_connect(const char *addr, const char *auth, int timeout_ms);
/* One connection attempt; on failure naps *backoff ms (doubling it, up to
 * 2 s) and returns NULL; on success resets *backoff. */
redisContext *repl_redis_reconnect(struct repl *r, const char *addr, const char *auth,
                                   uint64_t *backoff);
/* Sleeps up to ms in short steps; returns early (false) when stopping. */
bool repl_nap(struct repl *r, uint64_t ms);
/* Runs a command; NULL (and *c freed, set NULL) on a connection error. */
redisReply *repl_redis_cmd(redisContext **c, int argc, const char **argv, const size_t *lens);
/* Reads the replies of n commands appended to *c (a pipeline) into out.
 * Returns 0, or -1 after freeing *c (NULL) and every reply on an error. */
int repl_redis_replies(redisContext **c, int n, redisReply **out);
/* Merges announced regions (a HGETALL reply) into the cluster cache;
 * when authenticated, only announcements signed by a peer's key. */
void repl_cluster_merge(struct repl *r, const redisReply *all);
/* Stream entry id "<seq>-1" -> seq; 0 if it is not of that form. */
uint64_t repl_parse_entry_id(const char *s);
/* Any stream entry id "<ms>-<seq>"; false if it is not one. */
bool repl_parse_stream_id(const char *s, size_t n, uint64_t *ms, uint64_t *sq);
/* A decimal u64 with nothing around it; false if s is not one. */
bool repl_parse_u64(const char *s, size_t n, uint64_t *out);
/* Exactly k decimal u64s joined by '.' ("<seq>.<generation>.<epoch>", say)
 * into v[0..k); false if s is not that. */
bool repl_parse_dotted(const char *s, size_t n, uint64_t *v, size_t k);

/* repair_wire.c: writing repair messages (repl.h has the format). */
typedef struct repl_writer {
    char *p;
    size_t len, cap;
} repl_writer;
void repl_write_bytes(repl_writer *w, const void *p, size_t n);
void repl_write_uint(repl_writer *w, uint64_t v, unsigned bytes); /* big-endian */
/* Starts w over with a message's header. */
void repl_repair_header(repl_writer *w, unsigned type, const char *from, const char *to,
                        uint64_t nonce);

/* repair_server.c: the lists repair messages travel in (requests to
 * region, or answers to it), signing, and sending (RPUSH, bounded, expiring). */
void repl_repair_list(char *buf, size_t cap, const char *region, bool answers);
void repl_repair_seal(const struct repl *r, repl_writer *w, const char *list);
bool repl_repair_push(redisContext **c, const char *list, const repl_writer *w);
void *repl_repair_server_main(void *arg);
void *repl_repair_main(void *arg); /* repair.c */
/* repair.c: records' kinds and keys, copied, in a growable list (what a
 * round asks for, what it buries, what the GC purges). */
typedef struct repl_key {
    stg_kind kind;
    size_t klen;
    char key[STG_KEY_MAX];
} repl_key;
typedef struct repl_keys {
    repl_key *v;
    size_t n, cap;
} repl_keys;
void repl_keys_add(repl_keys *l, stg_kind kind, const char *key, size_t klen);
/* gc.c: a tombstone GC pass, when one is due (the repair thread). */
void repl_gc_maybe(struct repl *r);
/* Persists when a round last found peer p's tree equal to ours (the GC's
 * evidence that p holds what we hold). */
void repl_note_equal(struct repl *r, peer *p, uint64_t at_ms);
/* commit.c: a transaction applying records a repair round got from peer
 * from: like its log's, without a cursor. */
struct repl_applier *repl_repair_applier_new(struct repl *r, const char *from);

/* A record from further ahead of our clock waits (its log) or is left for
 * a later round (repair): it would drag our HLC with it. */
#define MAX_FUTURE_MS (60 * 60 * 1000ull)

/* session.c: tells the progress hook (repl_on_progress) that positions moved. */
void repl_progressed(struct repl *r);

void *repl_publisher_main(void *arg);
void *repl_subscriber_main(void *arg);

#endif
