/* repl.h -- replication: the HLC, the record codec, local writes with their
 * outbox entries, LWW apply of remote records, and the Redis log threads.
 *
 * Threads: local writes run on the caller's (HTTP handler) thread and never
 * touch Redis. One publisher thread copies the outbox into the region's
 * Redis stream; one subscriber thread per peer reads that peer's stream and
 * applies it. Each thread owns its own Redis connection. */
#ifndef DF_REPL_H
#define DF_REPL_H

#include "feed.h"
#include "storage.h"

/* ---- Hybrid logical clock (hlc.c) ------------------------------------------- */
typedef struct repl_hlc repl_hlc;
typedef uint64_t (*repl_hlc_clock_fn)(void *arg); /* wall clock, ms */
typedef int (*repl_hlc_persist_fn)(void *arg, uint64_t mark); /* 0 or DF_E* */

/* A clock that starts at the persisted mark (ms) and reads clock() (NULL:
 * the system clock) shifted by offset_ms. persist is called, synchronously,
 * before a value at or past the current mark is handed out. */
repl_hlc *repl_hlc_new(uint64_t mark, int64_t offset_ms, repl_hlc_clock_fn clock,
                       repl_hlc_persist_fn persist, void *arg);
void repl_hlc_free(repl_hlc *h); /* accepts NULL */
/* A fresh value for a local event, greater than every value before it. */
uint64_t repl_hlc_tick(repl_hlc *h);
/* Merges a remote value; returns the clock's new value (> remote). */
uint64_t repl_hlc_observe(repl_hlc *h, uint64_t remote);
uint64_t repl_hlc_peek(repl_hlc *h);
static inline uint64_t repl_hlc_ms(uint64_t v) { return v >> 16; }

/* ---- Replication record codec (record.c) ----------------------------------- */
/* Wire form of a source record, as stored in the outbox and the Redis log:
 * u8 codec(1) | u8 kind | u16 key length BE | key | stored value
 * (stg_value_encode). */
void repl_record_encode(const stg_record *rec, char **out, size_t *outlen);
/* Decodes and validates buf; rec points into buf. Returns 0 or DF_EINVAL. */
int repl_record_decode(const char *buf, size_t len, stg_record *rec);

/* Why a peer's log entry was not applied. */
typedef enum {
    REPL_REJECT_NONE,
    REPL_REJECT_MALFORMED, /* not a record, or an unusable entry id */
    REPL_REJECT_UNSIGNED, /* no signature covers it */
    REPL_REJECT_SIGNATURE, /* a signature or record hash that does not verify */
    REPL_REJECT_ORIGIN, /* its version names another region than the log's */
    REPL_REJECT_OWNER, /* a record that region may not write (see repl_record_check) */
    REPL_REJECT_EPOCH, /* signed by an older store of that region than the one we follow */
    REPL_REJECT_N
} repl_reject;
const char *repl_reject_name(repl_reject why);

/* Whether a decoded record is one that origin's log may carry: its version
 * is origin's; a user record only from the user's home region and owned by
 * the user; a follow edge owned by its follower; a live post or message
 * exactly as minted (its version is the one in its id, so it can never be
 * rewritten), a message owned by one of its participants and deleted only
 * by a participant's home region. Returns REPL_REJECT_NONE or the reason. */
repl_reject repl_record_check(const char *origin, const stg_record *rec);

/* ---- Anti-entropy messages (repair_wire.c) ---------------------------------- */
/* A repair request or answer as it travels through Redis (see repair.c):
 *   "DFR1" | u8 type | u8 n, from | u8 n, to | u64 nonce | payload | signature
 * integers big-endian; the signature (when authenticated) covers all before
 * it. An answer's type has REPL_REPAIR_ANSWER set. Payloads:
 *   NODES    request: u8 level | u16 n | n x u32 index
 *            answer:  u64 epoch | u64 seq | u64 horizon | u8 level | u16 n |
 *                     n x (u64, u64, u64) sum
 *   LEAVES   request: u16 n | n x u32 leaf
 *            answer:  u32 n | n x entry (u32 leaf | u8 kind | u16 n, key | 16 hash | u64 hlc)
 *   RECORDS  request: u16 n | n x (u8 kind | u16 n, key)
 *            answer:  u16 n | n x (u32 n, replication record)
 * A NODES answer's epoch and seq are the answering region's store and last
 * local seq, read before its tree: everything it wrote up to seq is in it;
 * horizon is its tombstone GC horizon (ms; gc.c). */
enum { REPL_REPAIR_NODES = 1, REPL_REPAIR_LEAVES = 2, REPL_REPAIR_RECORDS = 3 };
#define REPL_REPAIR_ANSWER 0x80u
#define REPL_REPAIR_NODES_MAX 1024 /* indexes in one NODES request */
#define REPL_REPAIR_LEAVES_MAX 32 /* leaves in one LEAVES request */
#define REPL_REPAIR_RECORDS_MAX 128 /* keys in one RECORDS request */

typedef struct repl_repair_msg {
    unsigned type;
    char from[STG_ORIGIN_MAX + 1], to[STG_ORIGIN_MAX + 1];
    uint64_t nonce;
    const char *payload, *sig; /* into the message */
    size_t paylen, siglen, bodylen; /* bodylen: the bytes the signature covers */
} repl_repair_msg;
/* Splits a message (with a signature of exactly sig_len bytes at its end,
 * 0: none) into m; checks the header only. Returns 0 or DF_EINVAL. */
int repl_repair_decode(const char *buf, size_t len, size_t sig_len, repl_repair_msg *m);

/* Reading a payload: every read past the end sets bad and returns 0/NULL. */
typedef struct repl_reader {
    const char *p;
    size_t n, off;
    bool bad;
} repl_reader;
uint64_t repl_read_uint(repl_reader *rd, unsigned bytes); /* 1, 2, 4 or 8, big-endian */
const char *repl_read_bytes(repl_reader *rd, size_t n);
bool repl_read_end(const repl_reader *rd); /* everything read, nothing bad */

typedef struct repl_repair_entry {
    uint32_t leaf;
    stg_kind kind;
    const char *key;
    size_t klen;
    const unsigned char *hash; /* STG_DIGEST_HASH_LEN */
    uint64_t hlc;
} repl_repair_entry;
/* Payload parsers; each returns false for a payload that is not one. The
 * list ones read one item per call: 1, 0 at the end, -1 if malformed. */
bool repl_repair_nodes_request(repl_reader *rd, unsigned *level, uint32_t *idx, size_t *n);
bool repl_repair_nodes_answer(repl_reader *rd, uint64_t *epoch, uint64_t *seq, uint64_t *horizon,
                              unsigned *level, stg_digest_sum *sums, size_t max, size_t *n);
bool repl_repair_leaves_request(repl_reader *rd, uint32_t *leaves, size_t *n);
/* LEAVES answer: first the count, then the entries. */
bool repl_repair_count(repl_reader *rd, unsigned bytes, uint64_t *n);
int repl_repair_entry_next(repl_reader *rd, uint64_t *left, repl_repair_entry *e);
/* RECORDS request (after a u16 count): one key. */
int repl_repair_key_next(repl_reader *rd, uint64_t *left, stg_kind *kind, const char **key,
                         size_t *klen);
/* RECORDS answer (after a u16 count): one encoded record. */
int repl_repair_blob_next(repl_reader *rd, uint64_t *left, const char **p, size_t *n);

/* ---- The replication engine (engine.c) -------------------------------------- */
typedef struct repl repl;

#define REPL_MAX_PEERS 16

typedef struct repl_config {
    const char *region;
    size_t npeers;
    const char *peers[REPL_MAX_PEERS];
    const char *log_redis; /* host:port of our log; NULL: standalone */
    const char *peer_redis[REPL_MAX_PEERS]; /* where each peer's log is; NULL: log_redis */
    const char *public_url; /* announced in Redis for /v1/cluster */
    int64_t clock_offset_ms;
    uint32_t delay_ms[REPL_MAX_PEERS]; /* initial simulated distance per peer */
    uint32_t linger_ms; /* a busy publisher gathers records this long (0: never) */
    const char *key_dir; /* <region>.key and every <peer>.pub; NULL: unauthenticated */
    const char *redis_auth; /* AUTH for log_redis: "password" or "user password" */
    const char *peer_redis_auth[REPL_MAX_PEERS]; /* per peer; NULL: redis_auth */
    uint32_t repair_interval_ms; /* anti-entropy rounds per peer (with keys); 0: none */
    /* With anti-entropy, the outbox and the stream keep at most this many
     * records, none older than retain_ms, even if a peer has not applied
     * them (0: no bound); without it, what a peer lacks is kept. */
    uint64_t retain_records, retain_ms;
    /* Tombstones older than this that every peer holds are purged (gc.c). */
    uint64_t tombstone_grace_ms;
} repl_config;

/* Creates dir/<region>.key (secret, 0600) and dir/<region>.pub unless the
 * key exists already. Returns 0 or DF_E*. */
int repl_keygen(const char *dir, const char *region);

/* Opens the engine over db: loads the clock mark, the outbox sequence and
 * the per-peer cursors. No thread is started. Returns 0 or DF_E*. */
int repl_open(repl **out, stg_db *db, feed *fd, const repl_config *cfg);
/* Starts the publisher and subscriber threads (none when standalone). */
int repl_start(repl *r);
/* Stops the threads and frees everything. Accepts NULL. */
void repl_close(repl *r);

const char *repl_region(const repl *r);
repl_hlc *repl_clock(repl *r);

/* ---- The commit (commit.c): every write of a source record ---------------- */
/* A local write's conditions, and what it carries besides the record. */
#define REPL_CREATE 1u /* refuse when a live record is stored: DF_EEXIST */
#define REPL_MUST_EXIST 2u /* refuse when none is: DF_ENOTFOUND */
typedef struct repl_local {
    unsigned flags;
    /* Makes rec's payload, and its key if rec->key is NULL, once rec is
     * stamped: for a record named or dated by its version. It only fills
     * rec (and extra_val); it must not touch the store. Returns 0 or DF_E*. */
    int (*render)(void *arg, stg_record *rec);
    void *arg;
    /* One more put in the record's batch (an idempotency entry); read
     * after render, when extra_key is set. */
    stg_cf extra_cf;
    const char *extra_key, *extra_val;
    size_t extra_klen, extra_vlen;
} repl_local;

/* Local write (w may be NULL: no conditions). Under rec's lock: loads the
 * stored record, refuses a key someone else made (DF_EPERM) and what w's
 * flags rule out, stamps rec with a version newer than the stored one
 * (unless rec->ver.hlc is set already), renders it, then commits rec, its
 * derived indexes, its fan-out job, w's extra put and its outbox entry in
 * one batch, and notifies the store's subscribers (STG_EVENT_COMMIT).
 * Returns 0, DF_EPERM, DF_EEXIST, DF_ENOTFOUND, DF_EBUSY (the record calls
 * for a fan-out job and the queue is full: nothing written), or DF_EIO. */
int repl_write(repl *r, stg_record *rec, const repl_local *w);

/* Applies a remote record from origin's log at seq: last-write-wins on
 * (hlc, origin); the record, its derived changes and the cursor
 * (origin -> seq) commit in one batch. Returns 1 if applied, 0 if it was
 * not newer than the stored record (only the cursor moved), or DF_E*
 * (DF_EPERM: see repl_applier_add). */
int repl_apply(repl *r, const char *origin, uint64_t seq, const stg_record *rec);

/* The same for many records of origin's log, in one batch: add stages a
 * record (returning 1, 0 or DF_E* as repl_apply), committing the records
 * before it first when it must (its key's stripe is held by the batch or
 * by another thread, or the batch is full); commit commits what is staged,
 * with the cursor at the last seq added. A record's bytes must stay valid
 * until it is committed. On an error nothing staged is kept, except that
 * add stages nothing and keeps the rest for DF_EPERM, a record whose owner
 * is not the stored record's (every version of a key belongs to whoever
 * made it), and DF_EBUSY, a record calling for a fan-out job while the
 * queue is full (commit, and offer it again once the queue drains). */
typedef struct repl_applier repl_applier;
repl_applier *repl_applier_new(repl *r, const char *origin);
int repl_applier_add(repl_applier *a, uint64_t seq, const stg_record *rec);
int repl_applier_commit(repl_applier *a);
/* Moves the cursor past seq without applying it: an authentic entry whose
 * record is invalid (the origin published it; no later read can do better). */
void repl_applier_skip(repl_applier *a, uint64_t seq);
void repl_applier_free(repl_applier *a); /* drops what is not committed; accepts NULL */

/* ---- Sessions and acknowledgements (session.c) ------------------------------- */
/* A position in a region's log: everything origin's store (its epoch, cut
 * to 32 bits; 0: unknown) wrote up to seq. A session token is a vector of
 * them (api/session.c). */
typedef struct repl_pos {
    char origin[STG_ORIGIN_MAX + 1];
    uint32_t epoch;
    uint64_t seq;
} repl_pos;
#define REPL_POS_MAX (REPL_MAX_PEERS + 1)

/* This region's last committed local write. */
void repl_own_position(repl *r, repl_pos *out);
/* This region's version vector: its own position, then what it has
 * applied of each peer not removed. Returns the count (<= max). */
size_t repl_positions(repl *r, repl_pos *out, size_t max);

typedef enum {
    REPL_COVERED, /* here (or written by a removed region: nothing more comes) */
    REPL_BEHIND, /* not applied here yet */
    REPL_UNKNOWN_REGION, /* no region of ours is called that */
    REPL_OTHER_STORE, /* another store of that name: another cluster, or one rebuilt */
    REPL_FUTURE /* past anything that region has written, as far as we can see */
} repl_cover;
/* Whether what pos covers has been applied here. A peer's position past
 * what it has published is BEHIND while we wait for it, and FUTURE when
 * final is set (a wait long enough for a record on its way to reach
 * the log is over) and we are reading the peer's log. */
repl_cover repl_covers(repl *r, const repl_pos *pos, bool final);

/* Calls fn(arg) (from a replication thread; fn must be quick) whenever a
 * batch of a peer's records is applied here or a peer's progress through
 * our log moves. Set once, before repl_start. */
void repl_on_progress(repl *r, void (*fn)(void *arg), void *arg);
/* A write begins (+1) or ends (-1) waiting for acknowledgements: while
 * any waits, peers' progress through our log is read every few ms. */
void repl_acks_wanted(repl *r, int delta);
/* The peers (not removed) that have applied our log up to seq: their
 * names into names[] (up to max). *regions is how many regions the
 * cluster has: us and every peer not removed. Returns the count. */
size_t repl_acked_by(repl *r, uint64_t seq, const char **names, size_t max, size_t *regions);

/* ---- Status and demo controls -------------------------------------------------- */
/* REPL_GAP: the peer's log lacks records after applied_seq (a missing or
 * unauthentic entry at gap_from): nothing after it is applied until the
 * log holds the real records again (the publisher rewrites a tampered
 * stream) or a repair fills the gap. */
/* REPL_REMOVED: decommissioned (repl_remove_peer): not read, not waited for. */
typedef enum {
    REPL_STANDALONE,
    REPL_STREAMING,
    REPL_PAUSED,
    REPL_DISCONNECTED,
    REPL_GAP,
    REPL_REMOVED
} repl_state;
const char *repl_state_name(repl_state s);

typedef struct repl_peer_status {
    char name[STG_ORIGIN_MAX + 1];
    uint64_t applied_seq; /* highest seq of the peer applied here */
    uint64_t published_seq; /* highest seq the peer has published, as last seen */
    uint64_t acked_seq; /* how much of our log the peer reports it has applied */
    uint64_t lag_p50_ms, lag_p99_ms, lag_max_ms;
    uint64_t applied_total; /* records applied since start */
    uint32_t delay_ms;
    repl_state state;
    uint64_t rejected[REPL_REJECT_N]; /* entries not applied, by reason */
    uint64_t gap_from, gap_to; /* state gap: the seqs missing (gap_to 0: unknown) */
    uint64_t rewinds; /* times we read the peer's log again: it was rewritten or went back */
    /* Anti-entropy (cumulative): rounds against the peer, records sent to
     * and received from it, its answers refused; when a round last found
     * our trees equal (wall ms, 0: never). */
    uint64_t repair_rounds, repair_sent, repair_received, repair_rejected, repair_equal_at;
    uint64_t repair_bytes; /* bytes of the peer's answers received */
} repl_peer_status;

typedef struct repl_status {
    uint64_t hlc;
    uint64_t seq; /* last local seq */
    uint64_t published_seq; /* last local seq in Redis */
    uint64_t outbox_depth;
    bool paused;
    bool connected; /* our log's Redis */
    bool authenticated; /* records are signed and checked */
    bool repairing; /* anti-entropy rounds run */
    uint64_t log_rewrites; /* times our stream held entries we did not write and was rewritten */
    uint64_t gc_horizon_ms; /* tombstones older were purged; older records we lack are refused */
    uint64_t tombstones_purged; /* since start */
    uint64_t zombies_buried; /* live records here that peers had purged as deleted, since start */
    size_t npeers;
    repl_peer_status peers[REPL_MAX_PEERS];
} repl_status;

void repl_get_status(repl *r, repl_status *out);
/* Decommissions peer name, for good (durably; a removed name never joins
 * again): its log is no longer read, the outbox and repair no longer wait
 * for it, and /v1/cluster no longer lists it. What it wrote and we applied
 * stays. Returns 0, DF_ENOTFOUND (no such peer) or DF_EIO. */
int repl_remove_peer(repl *r, const char *name);
/* Pauses or resumes applying every peer's log. */
void repl_set_paused(repl *r, bool paused);
/* Simulated distance: apply each record from peer no earlier than delay_ms
 * after its creation. peer NULL: every peer. Returns DF_ENOTFOUND for an
 * unknown peer. */
int repl_set_delay(repl *r, const char *peer, uint32_t delay_ms);

/* The regions announced in Redis: name and URL, up to max. Returns the
 * count (0 when standalone or unreachable: then only our own is known). */
typedef struct repl_region_info {
    char name[STG_ORIGIN_MAX + 1];
    char url[256];
    bool authenticated; /* ours, or announced with a signature a peer's key verifies */
} repl_region_info;
/* The URLs a region may announce: http(s)://, printable ASCII without
 * spaces, quotes or angle brackets, under 256 bytes. */
bool repl_valid_url(const char *s, size_t n);
size_t repl_cluster(repl *r, repl_region_info *out, size_t max);

#endif
