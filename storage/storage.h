/* storage.h -- driftfeed's storage module: RocksDB, keys, record headers, digest.
 *
 * Everything below the feed and replication modules lives here: the error
 * convention and memory policy the whole project shares, the column families,
 * key encoding, the binary record header (version + tombstone), write
 * batches, iterators, the per-key lock stripes that serialise
 * read-modify-write (LWW) updates, the derived indexes that follow from a
 * source record, and the convergence digest. Nothing here knows about HTTP,
 * JSON requests or Redis.
 *
 * Errors: functions that can fail return 0 or a negative DF_E* code; the
 * library's own message goes to the log.
 * Memory: x*alloc() log and abort on exhaustion; there is no other policy. */
#ifndef DF_STORAGE_H
#define DF_STORAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Errors (shared by every module) ---------------------------------- */
enum {
    DF_OK = 0,
    DF_EIO = -1, /* RocksDB or file system failure */
    DF_ENOTFOUND = -2, /* absent (or deleted) */
    DF_EINVAL = -3, /* malformed input */
    DF_EEXIST = -4, /* already exists / taken */
    DF_EBUSY = -5, /* overloaded, retry later */
    DF_ECORRUPT = -6, /* stored bytes do not decode */
    DF_ESTALE = -7, /* LWW: the incoming version is not newer */
    DF_ENET = -8, /* Redis / network failure */
    DF_EPERM = -9, /* a record its writer may not write (someone else's) */
    DF_EHELD = -10, /* a lock set holds this stripe already */
};
const char *df_strerror(int err);

/* ---- Memory: log and abort on exhaustion -------------------------------- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* The value of a hex digit (either case), or -1. */
int df_hex_digit(char c);

/* ---- Logging -------------------------------------------------------------- */
enum { DF_LOG_DEBUG, DF_LOG_INFO, DF_LOG_WARN, DF_LOG_ERROR };
void df_log_set_level(int level);
void df_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wall clock in milliseconds since the epoch, and a monotonic clock. */
uint64_t df_now_ms(void);
uint64_t df_mono_ms(void);
/* FNV-1a over n bytes: spreads ids over lock stripes, buckets and slots. */
uint32_t df_hash32(const void *p, size_t n);
/* Names the calling thread (seen in top -H, perf and /proc/PID/task/TID/comm);
 * at most 15 characters are kept. */
void df_thread_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds into out[32]. */
void df_format_time(uint64_t ms, char out[32]);

/* ---- Recent-values window (window.c) ---------------------------------------- */
/* The last DF_WINDOW values of a measurement (latencies, lags), thread-safe,
 * with quantiles over them. Initialise with df_window_init. */
#define DF_WINDOW 1024
typedef struct df_window {
    pthread_mutex_t mu;
    uint64_t v[DF_WINDOW];
    size_t n; /* values ever added */
} df_window;
typedef struct df_quantiles {
    uint64_t p50, p99, max; /* 0 when empty */
} df_quantiles;
void df_window_init(df_window *w);
void df_window_destroy(df_window *w);
void df_window_add(df_window *w, uint64_t v);
df_quantiles df_window_quantiles(df_window *w);

/* ---- In-memory cache (cache.c) --------------------------------------------- */
/* Values kept in memory in front of RocksDB: direct-mapped (a key replaces
 * whatever shared its slot), thread-safe, at most about `entries` keys and
 * max_bytes. Writers forget a key after the batch that changed it commits.
 * df_cache_get copies a hit into *val (NUL-terminated, free()) and always
 * reports the key's generation in *gen (may be NULL); a reader that missed
 * passes it to df_cache_put after reading RocksDB, which inserts only if no
 * df_cache_forget ran on the key's shard since. */
typedef struct df_cache df_cache;
df_cache *df_cache_new(size_t entries, size_t max_bytes);
void df_cache_free(df_cache *c); /* accepts NULL */
bool df_cache_get(df_cache *c, const void *key, size_t n, char **val, size_t *len, uint64_t *gen);
void df_cache_put(df_cache *c, const void *key, size_t n, const void *val, size_t len,
                  uint64_t gen);
void df_cache_forget(df_cache *c, const void *key, size_t n);
/* Like df_cache_get, without the copy: *val points into the entry, which
 * stays valid (even if replaced or forgotten meanwhile) until
 * df_cache_release(*ref). */
typedef struct df_cache_ref df_cache_ref;
bool df_cache_hold(df_cache *c, const void *key, size_t n, const char **val, size_t *len,
                   uint64_t *gen, df_cache_ref **ref);
void df_cache_release(df_cache_ref *ref); /* accepts NULL */
typedef struct df_cache_counts {
    uint64_t hits, misses; /* lookups since the cache was made */
    size_t bytes; /* held now */
} df_cache_counts;
void df_cache_stats(df_cache *c, df_cache_counts *out);

/* ---- Names and versions --------------------------------------------------- */
#define STG_ORIGIN_MAX 32 /* longest region name */
#define STG_ID_MAX 96 /* longest id of any record */
#define STG_KEY_MAX (3 * STG_ID_MAX + 8) /* longest key of any family (a message: from, to, id) */

/* A record's version: hybrid-logical-clock value, then origin region. */
typedef struct stg_version {
    uint64_t hlc;
    char origin[STG_ORIGIN_MAX + 1];
} stg_version;

/* Total order of versions: by hlc, then origin bytewise. <0, 0, >0. */
int stg_version_cmp(const stg_version *a, const stg_version *b);

/* True if s (length n) matches [a-z0-9_]{1,max}. */
bool stg_valid_name(const char *s, size_t n, size_t max);

/* Post and message ids: 16 hex digits of the version's HLC, '-', origin,
 * so byte order is version order. stg_make_id writes one into out. */
void stg_make_id(char out[STG_ID_MAX + 1], const stg_version *v);
bool stg_valid_id(const char *s, size_t n);
/* Parses an id back into its version. Returns 0 or DF_EINVAL. */
int stg_parse_id(const char *s, size_t n, stg_version *v);
/* User ids: name@region, both [a-z0-9_]. */
bool stg_valid_user_id(const char *s, size_t n);

/* ---- Column families ------------------------------------------------------ */
typedef enum stg_cf {
    STG_CF_META, /* "default": clock mark, sequence floor, cursors */
    STG_CF_USERS, /* source: user id -> record */
    STG_CF_FOLLOWS, /* source: follower \0 followee -> record */
    STG_CF_POSTS, /* source: post id -> record */
    STG_CF_MESSAGES, /* source: a \0 b \0 message id -> record (a < b) */
    STG_CF_FOLLOWERS, /* derived: followee \0 follower -> "" */
    STG_CF_PROFILE, /* derived: author \0 post id -> "" (live posts) */
    STG_CF_CONVS, /* derived: user \0 peer -> latest message id */
    STG_CF_COUNTS, /* derived: 'f'|'g'|'s' user -> int64 followers, followees, live posts (merge) */
    STG_CF_HOME, /* feed: user \0 post id -> home entry */
    STG_CF_FANOUT, /* feed: job seq -> job */
    STG_CF_OUTBOX, /* replication: seq -> replication record */
    STG_CF_IDEM, /* api: user \0 idempotency key -> post id */
    STG_CF_CONV_TIMES, /* derived: user \0 latest message id -> peer (CONVS by time) */
    STG_CF_TREE, /* derived: leaf | kind | key -> the record's digest hash and hlc (tree.c) */
    STG_CF_COUNT
} stg_cf;

/* ---- Record kinds and headers ---------------------------------------------- */
typedef enum stg_kind {
    STG_KIND_USER = 1,
    STG_KIND_FOLLOW = 2,
    STG_KIND_POST = 3,
    STG_KIND_MESSAGE = 4,
} stg_kind;
#define STG_KIND_MAX 4

stg_cf stg_kind_cf(stg_kind kind);
bool stg_kind_valid(int kind);

/* A source record as stored: header (format, flags, version) + payload.
 * key and payload point into someone else's memory. */
typedef struct stg_record {
    stg_kind kind;
    bool tombstone;
    stg_version ver;
    const char *key;
    size_t keylen;
    const char *owner; /* user who made it: author, sender, follower, the user */
    size_t ownerlen;
    const char *payload; /* JSON bytes, exactly as the origin produced them */
    size_t paylen;
    const char *value; /* the stored bytes it was decoded from (stg_value_decode), or NULL */
    size_t valuelen;
} stg_record;

#define STG_HEADER_MAX (1 + 1 + 8 + 1 + STG_ORIGIN_MAX + 1 + STG_ID_MAX)

/* Encodes rec's header and payload into a new buffer (*out, *outlen; free()).
 * Value layout: u8 format(1) | u8 flags(bit0 tombstone) | u64 hlc BE |
 * u8 origin length | origin | u8 owner length | owner | payload. */
void stg_value_encode(const stg_record *rec, char **out, size_t *outlen);
/* Decodes a stored value into rec (kind and key untouched; owner and
 * payload point into val). Returns 0 or DF_ECORRUPT. */
int stg_value_decode(const char *val, size_t len, stg_record *rec);

/* ---- Keys (keys.c) ---------------------------------------------------------- */
/* Composite keys are parts joined by a 0 byte; parts never contain 0.
 * stg_key_join writes "a\0b" (nb = 0 for a prefix "a\0") into buf of cap
 * bytes; returns the length or -1 if it does not fit. */
int stg_key_join(char *buf, size_t cap, const char *a, size_t na, const char *b, size_t nb);
/* Splits key at its first 0 byte: second part at *b, its length *nb.
 * Returns the first part's length or -1 if there is no separator. */
int stg_key_split(const char *key, size_t len, const char **b, size_t *nb);
/* Big-endian u64 keys sort numerically. */
void stg_key_u64(char out[8], uint64_t v);
uint64_t stg_key_get_u64(const char *in);
/* Message key: the two participants in order, then the message id. */
int stg_key_message(char *buf, size_t cap, const char *a, const char *b, const char *msg_id);
/* Smallest key strictly greater than every key with this prefix; writes
 * into out (cap >= len) and returns its length, or -1 if none exists. */
int stg_key_successor(const char *prefix, size_t len, char *out);

/* ---- Database --------------------------------------------------------------- */
typedef struct stg_db stg_db;

/* A sweep decides, while RocksDB compacts a family, whether a record may
 * go: true drops it. It runs on RocksDB's threads and may read db. memo
 * starts zeroed at each compaction and is the sweep's own until it ends
 * (keys arrive in order: e.g. what it looked up for the previous key). */
typedef struct stg_sweep_memo {
    _Alignas(8) char bytes[256];
} stg_sweep_memo;
typedef bool (*stg_sweep_fn)(stg_db *db, const char *key, size_t klen, stg_sweep_memo *memo);

typedef struct stg_options {
    bool sync; /* fsync the WAL on each write (survives machine crash) */
    size_t cache_mb; /* block cache in MiB (0: 64) */
    size_t memtable_mb; /* memtables of all column families, MiB (0: 64) */
    uint32_t stagger; /* a hash (of the region's name) that scales the memtables by 0.75
                       * to 1.25, so regions sharing a host do not flush in step (0: 1x) */
    stg_sweep_fn sweep[STG_CF_COUNT]; /* per family; NULL: compaction keeps every record */
} stg_options;

/* Opens (creating if missing) the database at path with every column
 * family. Returns 0 and *out, or DF_EIO with the reason logged. */
int stg_open(const char *path, const stg_options *opt, stg_db **out);
/* Flushes and closes. Accepts NULL. */
void stg_close(stg_db *db);
/* Compacts all of family cf now (its memtable included), running its
 * sweep over every record. Returns 0 or DF_EIO. */
int stg_compact(stg_db *db, stg_cf cf);

/* Point read. On success *val (free with free()) and *vlen. Returns 0,
 * DF_ENOTFOUND or DF_EIO. */
int stg_get(stg_db *db, stg_cf cf, const char *key, size_t klen, char **val, size_t *vlen);
/* Batched point reads of n keys; vals[i] is NULL where absent (free each
 * non-NULL one with free()). Returns 0 or DF_EIO. */
int stg_multi_get(stg_db *db, stg_cf cf, size_t n, const char *const *keys, const size_t *klens,
                  char **vals, size_t *vlens);

/* Write batches: a change and everything derived from it commit together. */
typedef struct stg_batch stg_batch;
stg_batch *stg_batch_new(stg_db *db);
void stg_batch_free(stg_batch *b); /* accepts NULL */
void stg_batch_clear(stg_batch *b);
void stg_batch_put(stg_batch *b, stg_cf cf, const char *k, size_t kl, const char *v, size_t vl);
void stg_batch_delete(stg_batch *b, stg_cf cf, const char *k, size_t kl);
void stg_batch_merge_add(stg_batch *b, stg_cf cf, const char *k, size_t kl, int64_t delta);
size_t stg_batch_count(const stg_batch *b);
/* Commits b atomically, and with it b's change to the digest (below).
 * Returns 0 or DF_EIO. */
int stg_write(stg_db *db, stg_batch *b);

/* Iterators over [lo, hi) in one column family, forward or reverse; lo or
 * hi may be NULL for unbounded. Keys and values returned by next are valid
 * until the following call. */
typedef struct stg_iter stg_iter;
stg_iter *stg_iter_range(stg_db *db, stg_cf cf, const char *lo, size_t lolen, const char *hi,
                         size_t hilen, bool reverse);
/* All keys starting with prefix. */
stg_iter *stg_iter_prefix(stg_db *db, stg_cf cf, const char *prefix, size_t plen, bool reverse);
bool stg_iter_next(stg_iter *it, const char **k, size_t *kl, const char **v, size_t *vl);
/* Returns DF_EIO if the iteration stopped on an error, else 0. */
int stg_iter_status(stg_iter *it);
void stg_iter_free(stg_iter *it); /* accepts NULL */
/* stg_iter_status, then stg_iter_free: the end of a scan. */
int stg_iter_close(stg_iter *it);

/* Number of keys in cf (RocksDB's estimate for large families, exact below). */
uint64_t stg_estimate_keys(stg_db *db, stg_cf cf);

/* Where RocksDB's memory is, summed over the families, in bytes; and the
 * number of table files (each an open descriptor). */
typedef struct stg_memory {
    uint64_t memtables; /* active, immutable and pinned memtables */
    uint64_t table_readers; /* table readers outside the block cache */
    uint64_t block_cache; /* block cache in use (pinned included) */
    uint64_t block_cache_pinned;
    uint64_t table_files;
} stg_memory;
void stg_get_memory(stg_db *db, stg_memory *out);

/* Lock stripes: every read-modify-write of a key runs under the stripe of
 * its lock key, so concurrent writers of one record are serialised. */
void stg_lock(stg_db *db, const char *key, size_t klen);
void stg_unlock(stg_db *db, const char *key, size_t klen);

/* The stripes of several keys at once (a batch of records), taken one at
 * a time. stg_lockset_add takes key's stripe: it waits for it only while
 * the set is empty, so a set never waits holding a stripe, and cannot
 * deadlock with single writers or other sets. Returns 0 when taken,
 * DF_EHELD if the set holds it already (this key, or one that shares its
 * stripe), DF_EBUSY if another thread holds it or the set is full: commit
 * what the set covers, release, and add again. */
#define STG_LOCKSET_MAX 64
typedef struct stg_lockset stg_lockset;
stg_lockset *stg_lockset_new(stg_db *db);
int stg_lockset_add(stg_lockset *s, const char *key, size_t klen);
void stg_lockset_release(stg_lockset *s); /* every stripe held */
void stg_lockset_free(stg_lockset *s); /* releases; accepts NULL */

/* What happened to the store, told to every subscriber on the thread that
 * did it, after the fact (keep handlers short; they may read the store but
 * must not write it). Every commit of a source record, local or applied,
 * is one STG_EVENT_COMMIT; a post written into a home timeline is one
 * STG_EVENT_DELIVERY. Subscribe while opening, before anything writes:
 * the list is read without a lock. */
typedef enum { STG_EVENT_COMMIT, STG_EVENT_DELIVERY } stg_event_type;
typedef struct stg_event {
    stg_event_type type;
    const stg_record *rec; /* COMMIT: the record as stored now */
    const char *origin; /* COMMIT: the peer whose log it came from; NULL if written here */
    uint64_t job; /* COMMIT: the fan-out job committed with it, 0 if none */
    const char *user, *post_id; /* DELIVERY: post_id reached user's home timeline */
    uint64_t delivered_ms;
} stg_event;
typedef void (*stg_event_fn)(void *arg, const stg_event *ev);
#define STG_SUBSCRIBERS_MAX 8
void stg_subscribe(stg_db *db, stg_event_fn fn, void *arg);
void stg_unsubscribe(stg_db *db, stg_event_fn fn, void *arg); /* once nothing writes */
void stg_notify(stg_db *db, const stg_event *ev);

/* Meta values (u64, stored big-endian in the meta family). */
int stg_meta_get_u64(stg_db *db, const char *name, uint64_t *out);
void stg_batch_meta_u64(stg_batch *b, const char *name, uint64_t v);
int stg_meta_put_u64_sync(stg_db *db, const char *name, uint64_t v);
/* Writes the n bytes at v under name in the meta family, synced (the WAL
 * is on disk when it returns). Returns 0 or DF_EIO. */
int stg_meta_put_sync(stg_db *db, const char *name, const void *v, size_t n);

/* ---- Source records (records.c) -------------------------------------------- */
/* Loads the stored record of kind at key. *raw holds the bytes the record
 * points into (free()). Returns 0, DF_ENOTFOUND, DF_EIO or DF_ECORRUPT. */
int stg_record_load(stg_db *db, stg_kind kind, const char *key, size_t klen, stg_record *rec,
                    char **raw);
/* Adds rec, and every derived-index change that follows from replacing old
 * (NULL if none) by rec, to batch b. The caller holds the record's lock. */
void stg_record_stage(stg_db *db, stg_batch *b, const stg_record *rec, const stg_record *old);
/* The lock key of a record: its own key, except messages, which lock their
 * conversation (a \0 b) so the conversation index updates stay serialised. */
size_t stg_record_lock_key(const stg_record *rec, const char **lk);
/* Fills STG_CF_CONV_TIMES from STG_CF_CONVS once, for a store made before
 * it existed (stg_open calls it). Returns 0 or DF_EIO. */
int stg_conv_times_build(stg_db *db);
/* Follower count of user (0 if none). */
int64_t stg_follower_count(stg_db *db, const char *user);
/* All of user's counters at once. Returns 0 or DF_EIO. */
typedef struct stg_counts {
    int64_t followers, following, posts;
} stg_counts;
int stg_user_counts(stg_db *db, const char *user, stg_counts *out);
/* Counts followees once, for a store made before that
 * counter existed (stg_open calls it). Returns 0 or DF_EIO. */
int stg_counts_build(stg_db *db);

/* ---- Convergence digest (digest.c) ------------------------------------------ */
/* Order-independent digest of a set of source records, tombstones included:
 * the sum (mod 2^64, per half) of a 128-bit BLAKE2b hash of (kind, key,
 * value) for every record, and their count. Equal sets of records give
 * equal sums, and a sum can take a record out as easily as put it in. */
#define STG_DIGEST_HASH_LEN 16
typedef struct stg_digest_sum {
    uint64_t lane[2];
    uint64_t records; /* mod 2^64: a batch's change may be negative */
} stg_digest_sum;
/* The hash of the record of kind at key with stored value val. */
void stg_digest_hash(stg_kind kind, const char *key, size_t klen, const char *val, size_t vlen,
                     unsigned char h[STG_DIGEST_HASH_LEN]);
/* Adds (sign 1) or takes out (-1) a record's hash. */
void stg_digest_add(stg_digest_sum *s, const unsigned char h[STG_DIGEST_HASH_LEN], int sign);
/* Adds (sign 1) or takes out (-1) sum d. */
void stg_digest_merge(stg_digest_sum *s, const stg_digest_sum *d, int sign);
bool stg_digest_equal(const stg_digest_sum *a, const stg_digest_sum *b);
/* s as 32 hex digits + NUL. */
void stg_digest_hex(const stg_digest_sum *s, char hex[33]);
/* The sum over every stored record, by reading them all. Returns 0 or DF_EIO. */
int stg_digest_scan(stg_db *db, stg_digest_sum *out);

/* ---- Merkle tree (tree.c) ------------------------------------------------------ */
/* The digest, split by key: every record belongs to one of STG_TREE_LEAVES
 * leaves (by a hash of its kind and key, the same in every region); a leaf
 * holds the digest sum of its records, and a node the sum of its
 * STG_TREE_FANOUT children, up to the root at level 0, which is the
 * database's digest. Two stores compare roots, then the children of the
 * nodes that differ, down to the leaves, whose records (STG_CF_TREE, kept
 * with each record in its batch) say which keys differ.
 *
 * The sums live in memory, summed from STG_CF_TREE at open and changed by
 * every committed batch: stg_record_stage records each record's change in
 * its batch, stg_write adds a committed batch's changes. */
#define STG_TREE_FANOUT 16
#define STG_TREE_DEPTH 3 /* levels below the root */
#define STG_TREE_LEAVES 4096 /* STG_TREE_FANOUT ^ STG_TREE_DEPTH */
/* The root as 32 hex digits + NUL, and its record count: a scan's sum
 * (stg_digest_scan) once the writes in flight commit. */
void stg_digest(stg_db *db, char hex[33], uint64_t *records);
/* Number of nodes at level (0..STG_TREE_DEPTH). */
uint32_t stg_tree_width(unsigned level);
/* The leaf of the record of kind at key. */
uint32_t stg_tree_leaf(stg_kind kind, const char *key, size_t klen);
/* The sums of the nodes idx[0..n) of level. Returns 0, or DF_EINVAL for a
 * level or index out of range. */
int stg_tree_nodes(stg_db *db, unsigned level, const uint32_t *idx, size_t n, stg_digest_sum *out);
/* Calls fn for every record of leaf, in (kind, key) order, with its digest
 * hash and its version's hlc, until fn returns false.
 * Returns 0, DF_EIO or DF_ECORRUPT. */
typedef bool (*stg_tree_fn)(void *arg, stg_kind kind, const char *key, size_t klen,
                            const unsigned char hash[STG_DIGEST_HASH_LEN], uint64_t hlc);
int stg_tree_leaf_scan(stg_db *db, uint32_t leaf, stg_tree_fn fn, void *arg);
/* The tree entry of the record of kind at key: its digest hash and hlc.
 * Returns 0, DF_ENOTFOUND, DF_EIO or DF_ECORRUPT. */
int stg_tree_get(stg_db *db, stg_kind kind, const char *key, size_t klen,
                 unsigned char hash[STG_DIGEST_HASH_LEN], uint64_t *hlc);
/* Records in b a change d to leaf, added to the tree when b commits. */
void stg_batch_tree_change(stg_batch *b, uint32_t leaf, const stg_digest_sum *d);
/* Takes the record of kind at key out of the store, as if it had been
 * lost: its record, its tree entry and its share of the sums, nothing
 * derived from it. For tools and tests that make a store lose data.
 * Returns 0, DF_ENOTFOUND or DF_EIO. */
int stg_record_drop(stg_db *db, stg_kind kind, const char *key, size_t klen);
/* Tombstone GC: takes out the record of kind at key, under its lock, if it
 * is a tombstone whose version is older than before_ms. Returns 1 if it
 * did, 0 if not, or DF_EIO. */
int stg_record_purge(stg_db *db, stg_kind kind, const char *key, size_t klen, uint64_t before_ms);

#endif
