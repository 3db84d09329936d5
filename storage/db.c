/* db.c -- the RocksDB wrapper: open/close, reads, batches, iterators, locks.
 *
 * DESIGN: one RocksDB instance per region, one column family per kind of
 * key (see stg_cf). RocksDB is thread-safe, so HTTP handlers, fan-out
 * workers and replication threads all use the same handle. Updates that
 * read before they write (last-write-wins) are serialised per key by a
 * fixed array of mutex stripes. A writer holds one stripe, or a lock set
 * holds several but never waits for one while it holds another, so
 * stripes never deadlock. Writes go to the WAL without fsync unless the
 * database was opened with sync: a process crash (kill -9) loses nothing,
 * a machine crash may lose the last moments of acknowledged writes. */
#include "internal.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSTRIPES 1024

static const char *cf_names[STG_CF_COUNT] = {
    [STG_CF_META] = "default",    [STG_CF_USERS] = "users",       [STG_CF_FOLLOWS] = "follows",
    [STG_CF_POSTS] = "posts",     [STG_CF_MESSAGES] = "messages", [STG_CF_FOLLOWERS] = "followers",
    [STG_CF_PROFILE] = "profile", [STG_CF_CONVS] = "convs",       [STG_CF_COUNTS] = "counts",
    [STG_CF_HOME] = "home",       [STG_CF_FANOUT] = "fanout",     [STG_CF_OUTBOX] = "outbox",
    [STG_CF_IDEM] = "idem",       [STG_CF_CONV_TIMES] = "conv_times", [STG_CF_TREE] = "tree",
};

struct stg_db {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *cf_opts[STG_CF_COUNT]; /* opts + each family's own (family_options) */
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *bloom; /* owned by table */
    rocksdb_mergeoperator_t *merge; /* owned by opts */
    rocksdb_column_family_handle_t *cf[STG_CF_COUNT];
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    pthread_mutex_t stripes[NSTRIPES];
    stg_tree *tree; /* the committed records' Merkle tree (tree.c) */
    stg_tally *tally; /* the committed live posts of each user (tally.c) */
    struct sweep {
        stg_db *db;
        stg_sweep_fn fn;
    } sweep[STG_CF_COUNT];
    _Atomic bool ready; /* db->db is set: sweeps may read */
    struct subscriber {
        stg_event_fn fn;
        void *arg;
    } subs[STG_SUBSCRIBERS_MAX];
    size_t nsubs;
};

struct stg_batch {
    rocksdb_writebatch_t *wb;
    rocksdb_column_family_handle_t **cf; /* the database's handles */
    stg_tree_change *changes; /* the staged records' changes to the tree */
    size_t nchanges, capchanges;
    struct tally_change {
        char user[STG_ID_MAX];
        size_t len;
        int64_t d;
    } *tallies; /* ... and to the users' live posts */
    size_t ntallies, captallies;
};

/* ---- Merge operator: int64 counters ---------------------------------------- */

static int64_t get_i64(const char *p) { return (int64_t)stg_key_get_u64(p); }

static char *counter_result(int64_t v, unsigned char *success, size_t *len)
{
    char *out = malloc(8); /* released by RocksDB with free() */
    if (!out) {
        *success = 0;
        return NULL;
    }
    stg_key_u64(out, (uint64_t)v);
    *success = 1;
    *len = 8;
    return out;
}

static char *counter_full_merge(void *state, const char *key, size_t klen, const char *existing,
                                size_t existing_len, const char *const *ops, const size_t *op_lens,
                                int nops, unsigned char *success, size_t *new_len)
{
    int64_t v = existing && existing_len == 8 ? get_i64(existing) : 0;
    for (int i = 0; i < nops; i++)
        if (op_lens[i] == 8) v += get_i64(ops[i]);
    return counter_result(v, success, new_len);
}

static char *counter_partial_merge(void *state, const char *key, size_t klen,
                                   const char *const *ops, const size_t *op_lens, int nops,
                                   unsigned char *success, size_t *new_len)
{
    return counter_full_merge(state, key, klen, NULL, 0, ops, op_lens, nops, success, new_len);
}

static void counter_delete(void *state, const char *v, size_t len) { free((void *)v); }
static const char *counter_name(void *state) { return "driftfeed.counter"; }
static void counter_destroy(void *state) {}

/* ---- The home family: hashed by user ------------------------------------------- */

/* Home keys start with "user \0", and every read of them stays inside one
 * user's prefix. */
static char *user_prefix(void *state, const char *key, size_t len, size_t *plen)
{
    const char *sep = memchr(key, 0, len);
    *plen = sep ? (size_t)(sep - key) + 1 : len;
    return (char *)key;
}
static unsigned char has_user_prefix(void *state, const char *key, size_t len)
{
    return memchr(key, 0, len) != NULL;
}
static unsigned char in_range(void *state, const char *key, size_t len) { return 0; }
static const char *user_prefix_name(void *state) { return "driftfeed.user_prefix"; }
static void no_destroy(void *state) {}

/* Tree keys start with their leaf (2 bytes, tree.c), and every bounded
 * read of them stays inside one leaf. */
static char *leaf_prefix(void *state, const char *key, size_t len, size_t *plen)
{
    *plen = 2;
    return (char *)key;
}
static unsigned char has_leaf_prefix(void *state, const char *key, size_t len)
{
    return len >= 2;
}
static const char *leaf_prefix_name(void *state) { return "driftfeed.leaf_prefix"; }

/* A memtable hashed by key prefix: a short skip list a prefix instead of
 * one of every key, for families written at random places. Only for
 * families read forward within one prefix (or unbounded, which
 * stg_iter_range makes a total-order scan): a seek under the hashed
 * memtable reads the bucket of its target's prefix, so a reverse scan,
 * which seeks to the bound past the prefix, would miss the memtable. */
static rocksdb_options_t *hashed_options(const rocksdb_options_t *base,
                                         rocksdb_slicetransform_t *prefix, size_t buckets)
{
    rocksdb_options_t *o = rocksdb_options_create_copy((rocksdb_options_t *)base);
    rocksdb_options_set_prefix_extractor(o, prefix);
    rocksdb_options_set_hash_skip_list_rep(o, buckets, 4, 4);
    return o;
}

/* Fan-out inserts ~10 home entries per post: in one skip list of every
 * user's entries each insert is a ~20-level search with a cache miss a
 * level. Hashing the memtable by user
 * leaves a short skip list per user to search, and the prefix bloom lets a
 * read skip table files without the user. */
static rocksdb_options_t *home_options(const rocksdb_options_t *base)
{
    rocksdb_options_t *o = hashed_options(
        base,
        rocksdb_slicetransform_create(NULL, no_destroy, user_prefix, has_user_prefix, in_range,
                                      user_prefix_name),
        200000);
    /* Every user gets entries, so each new table file overlaps all of
     * level 1 and leveled compaction rewrote the whole family every few
     * flushes (a third of the CPU under posts). Universal compaction merges
     * runs of similar size instead: each entry is rewritten a few times,
     * and the prefix bloom keeps reads across the runs cheap. Entries are
     * short ids, not worth compressing. */
    rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
    int none[7] = {0};
    rocksdb_options_set_compression_per_level(o, none, 7);
    rocksdb_options_set_compression(o, rocksdb_no_compression);
    return o;
}

/* ---- Sweeps: records compaction drops ------------------------------------------- */

/* One per compaction (RocksDB frees it at the end), with the sweep's memo. */
typedef struct sweep_run {
    struct sweep *sweep;
    stg_sweep_memo memo;
} sweep_run;

static unsigned char sweep_filter(void *state, int level, const char *k, size_t kl, const char *v,
                                  size_t vl, char **nv, size_t *nvl, unsigned char *changed)
{
    sweep_run *run = state;
    *changed = 0;
    /* A compaction may start while rocksdb_open has not returned the
     * handle a sweep reads through: keep everything until it has. */
    stg_db *db = run->sweep->db;
    return atomic_load(&db->ready) && run->sweep->fn(db, k, kl, &run->memo);
}
static const char *sweep_name(void *state) { return "driftfeed.sweep"; }
static void sweep_run_free(void *state) { free(state); }

static rocksdb_compactionfilter_t *sweep_begin(void *state, rocksdb_compactionfiltercontext_t *ctx)
{
    sweep_run *run = xcalloc(1, sizeof *run);
    run->sweep = state;
    return rocksdb_compactionfilter_create(run, sweep_run_free, sweep_filter, sweep_name);
}

/* Each family's memtable, in 64ths of --memtable-mb, by how much it is
 * written (per post: ~10 home entries, the post, its outbox record). Not
 * one shared budget: RocksDB's write buffer manager flushes the family
 * with the oldest memtable when the budget is full, which cut the small
 * families into hundreds of tiny table files. A family holds at most
 * two memtables (one being flushed). */
static const int memtable_share[STG_CF_COUNT] = {
    [STG_CF_META] = 2,     [STG_CF_USERS] = 2,     [STG_CF_FOLLOWS] = 2, [STG_CF_POSTS] = 8,
    [STG_CF_MESSAGES] = 4, [STG_CF_FOLLOWERS] = 2, [STG_CF_PROFILE] = 2, [STG_CF_CONVS] = 2,
    [STG_CF_COUNTS] = 2,   [STG_CF_HOME] = 24,     [STG_CF_FANOUT] = 4,  [STG_CF_OUTBOX] = 8,
    [STG_CF_IDEM] = 2,     [STG_CF_CONV_TIMES] = 2, [STG_CF_TREE] = 4,
};

/* Regions on one host get the same deliveries, so their memtables filled
 * in step: the three flushed `home` at the same moment, and each flush of
 * the hashed memtable first sorts all of it (~200k entries, 0.3-0.8 s of a
 * core). Three at once stalled everything else on two cores -- replication
 * lag jumped to 300-400 ms in every region together. Memtables scaled by
 * 0.75..1.25 per region (stg_options.stagger) flush at different times. */
static double stagger_factor(uint32_t stagger)
{
    return stagger ? 0.75 + (double)(stagger % 1000) / 2000.0 : 1.0;
}

static rocksdb_options_t *family_options(const rocksdb_options_t *base, stg_cf cf,
                                         size_t memtable_mb, double factor)
{
    rocksdb_options_t *o;
    if (cf == STG_CF_HOME)
        o = home_options(base);
    else if (cf == STG_CF_TREE) /* every record's entry, at a random leaf */
        o = hashed_options(base,
                           rocksdb_slicetransform_create(NULL, no_destroy, leaf_prefix,
                                                         has_leaf_prefix, in_range,
                                                         leaf_prefix_name),
                           STG_TREE_LEAVES);
    else
        o = rocksdb_options_create_copy((rocksdb_options_t *)base);
    size_t bytes =
        (size_t)((double)((memtable_mb << 20) / 64 * (size_t)memtable_share[cf]) * factor);
    rocksdb_options_set_write_buffer_size(o, bytes < (1 << 20) ? 1 << 20 : bytes);
    rocksdb_options_set_max_write_buffer_number(o, 2);
    return o;
}

/* ---- Open / close -------------------------------------------------------------- */

int stg_open(const char *path, const stg_options *opt, stg_db **out)
{
    stg_db *db = xcalloc(1, sizeof *db);
    char *err = NULL;

    db->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(db->opts, 1);
    rocksdb_options_set_create_missing_column_families(db->opts, 1);
    rocksdb_options_increase_parallelism(db->opts, 2);
    rocksdb_options_set_max_background_jobs(db->opts, 2);
    size_t memtable_mb = opt && opt->memtable_mb ? opt->memtable_mb : 64;
    /* Forced flushes of the family holding the oldest log, when the logs
     * outgrow twice the memtables: bounds recovery after a crash. */
    rocksdb_options_set_max_total_wal_size(db->opts, (uint64_t)(2 * memtable_mb) << 20);
    /* Levels 0 and 1 are rewritten most by compaction and hold the newest,
     * most read data: not compressed. Snappy below. */
    int levels[7] = {rocksdb_no_compression,     rocksdb_no_compression,
                     rocksdb_snappy_compression, rocksdb_snappy_compression,
                     rocksdb_snappy_compression, rocksdb_snappy_compression,
                     rocksdb_snappy_compression};
    rocksdb_options_set_num_levels(db->opts, 7);
    rocksdb_options_set_compression_per_level(db->opts, levels, 7);
    /* A bloom filter over whole keys in each memtable: point reads of keys
     * that are not there (most post lookups of a timeline page) skip the
     * skip-list search. */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(db->opts, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(db->opts, 1);
    db->merge = rocksdb_mergeoperator_create(NULL, counter_destroy, counter_full_merge,
                                             counter_partial_merge, counter_delete, counter_name);
    rocksdb_options_set_merge_operator(db->opts, db->merge);
    db->table = rocksdb_block_based_options_create();
    db->cache = rocksdb_cache_create_lru((opt && opt->cache_mb ? opt->cache_mb : 64) << 20);
    rocksdb_block_based_options_set_block_cache(db->table, db->cache);
    db->bloom = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(db->table, db->bloom);
    /* Index and filter blocks live in the block cache, so memory stays
     * within --cache-mb however much data there is, in 4 KiB partitions
     * under a small pinned top level: a whole large index is bigger than a
     * cache shard, and one that cannot stay is read and decompressed again
     * on every lookup. */
    rocksdb_block_based_options_set_index_type(
        db->table, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_partition_filters(db->table, 1);
    rocksdb_block_based_options_set_metadata_block_size(db->table, 4096);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(db->table, 1);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(db->table, 1);
    rocksdb_options_set_block_based_table_factory(db->opts, db->table);

    /* (A hashed memtable takes one writer at a time; with two cores that
     * costs nothing.) */
    rocksdb_options_set_allow_concurrent_memtable_write(db->opts, 0);
    const rocksdb_options_t *cf_opts[STG_CF_COUNT];
    for (int i = 0; i < STG_CF_COUNT; i++) {
        cf_opts[i] = db->cf_opts[i] = family_options(db->opts, (stg_cf)i, memtable_mb,
                                                     stagger_factor(opt ? opt->stagger : 0));
        if (opt && opt->sweep[i]) {
            db->sweep[i] = (struct sweep){db, opt->sweep[i]};
            rocksdb_compactionfilterfactory_t *factory = rocksdb_compactionfilterfactory_create(
                &db->sweep[i], no_destroy, sweep_begin, sweep_name);
            rocksdb_options_set_compaction_filter_factory(db->cf_opts[i], factory); /* owns it */
        }
    }
    db->db =
        rocksdb_open_column_families(db->opts, path, STG_CF_COUNT, cf_names, cf_opts, db->cf, &err);
    if (err) {
        df_log(DF_LOG_ERROR, "rocksdb open %s: %s", path, err);
        rocksdb_free(err);
        db->db = NULL;
        stg_close(db);
        return DF_EIO;
    }
    db->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(db->wopts, opt && opt->sync);
    db->ropts = rocksdb_readoptions_create();
    atomic_store(&db->ready, true);
    for (int i = 0; i < NSTRIPES; i++) pthread_mutex_init(&db->stripes[i], NULL);
    /* Nothing writes yet, so the tree's entries and its sums agree, and
     * so do the profile index and the tally. */
    uint64_t t0 = df_now_ms();
    db->tree = stg_tree_new();
    db->tally = stg_tally_new();
    int rc = stg_tree_load(db, db->tree);
    if (rc == 0) rc = stg_tally_load(db, db->tally);
    if (rc == 0) rc = stg_conv_times_build(db);
    if (rc == 0) rc = stg_counts_build(db);
    if (rc < 0) {
        stg_close(db);
        return rc;
    }
    uint64_t records;
    char hex[33];
    stg_digest(db, hex, &records);
    df_log(DF_LOG_INFO, "digest: %llu source records summed in %llu ms",
           (unsigned long long)records, (unsigned long long)(df_now_ms() - t0));
    *out = db;
    return 0;
}

/* Writes family cf's memtable to a table file. Returns 0 or DF_EIO (logged). */
static int flush_family(stg_db *db, stg_cf cf)
{
    char *err = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flush_cf(db->db, fo, db->cf[cf], &err);
    rocksdb_flushoptions_destroy(fo);
    if (!err) return 0;
    df_log(DF_LOG_WARN, "rocksdb flush %s: %s", cf_names[cf], err);
    rocksdb_free(err);
    return DF_EIO;
}

void stg_close(stg_db *db)
{
    if (!db) return;
    if (db->db) {
        for (int i = 0; i < STG_CF_COUNT; i++) flush_family(db, (stg_cf)i);
        for (int i = 0; i < STG_CF_COUNT; i++) rocksdb_column_family_handle_destroy(db->cf[i]);
        rocksdb_close(db->db);
        for (int i = 0; i < NSTRIPES; i++) pthread_mutex_destroy(&db->stripes[i]);
    }
    if (db->wopts) rocksdb_writeoptions_destroy(db->wopts);
    if (db->ropts) rocksdb_readoptions_destroy(db->ropts);
    rocksdb_options_destroy(db->opts); /* also releases the merge operator */
    for (int i = 0; i < STG_CF_COUNT; i++)
        if (db->cf_opts[i]) rocksdb_options_destroy(db->cf_opts[i]);
    rocksdb_block_based_options_destroy(db->table); /* and the bloom filter */
    rocksdb_cache_destroy(db->cache);
    stg_tree_free(db->tree);
    stg_tally_free(db->tally);
    free(db);
}

int stg_compact(stg_db *db, stg_cf cf)
{
    if (flush_family(db, cf) < 0) return DF_EIO;
    rocksdb_compact_range_cf(db->db, db->cf[cf], NULL, 0, NULL, 0);
    return 0;
}

/* ---- Reads ------------------------------------------------------------------------ */

int stg_get(stg_db *db, stg_cf cf, const char *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    char *v = rocksdb_get_cf(db->db, db->ropts, db->cf[cf], key, klen, vlen, &err);
    if (err) {
        df_log(DF_LOG_ERROR, "rocksdb get: %s", err);
        rocksdb_free(err);
        return DF_EIO;
    }
    if (!v) return DF_ENOTFOUND;
    *val = v;
    return 0;
}

int stg_multi_get(stg_db *db, stg_cf cf, size_t n, const char *const *keys, const size_t *klens,
                  char **vals, size_t *vlens)
{
    if (n == 0) return 0;
    rocksdb_column_family_handle_t *cfs_small[64];
    char *errs_small[64];
    rocksdb_column_family_handle_t **cfs = n <= 64 ? cfs_small : xmalloc(n * sizeof *cfs);
    char **errs = n <= 64 ? errs_small : xmalloc(n * sizeof *errs);
    for (size_t i = 0; i < n; i++) cfs[i] = db->cf[cf];
    rocksdb_multi_get_cf(db->db, db->ropts, (const rocksdb_column_family_handle_t *const *)cfs, n,
                         keys, klens, vals, vlens, errs);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (errs[i]) {
            df_log(DF_LOG_ERROR, "rocksdb multi_get: %s", errs[i]);
            rocksdb_free(errs[i]);
            free(vals[i]);
            vals[i] = NULL;
            rc = DF_EIO;
        }
    }
    if (cfs != cfs_small) free(cfs);
    if (errs != errs_small) free(errs);
    return rc;
}

uint64_t stg_estimate_keys(stg_db *db, stg_cf cf)
{
    char *v = rocksdb_property_value_cf(db->db, db->cf[cf], "rocksdb.estimate-num-keys");
    uint64_t n = v ? strtoull(v, NULL, 10) : 0;
    rocksdb_free(v);
    return n;
}

static uint64_t property_sum(stg_db *db, const char *name)
{
    uint64_t sum = 0, v;
    for (int i = 0; i < STG_CF_COUNT; i++)
        if (rocksdb_property_int_cf(db->db, db->cf[i], name, &v) == 0) sum += v;
    return sum;
}

void stg_get_memory(stg_db *db, stg_memory *out)
{
    out->memtables = property_sum(db, "rocksdb.size-all-mem-tables");
    out->table_readers = property_sum(db, "rocksdb.estimate-table-readers-mem");
    out->block_cache = rocksdb_cache_get_usage(db->cache);
    out->block_cache_pinned = rocksdb_cache_get_pinned_usage(db->cache);
    const rocksdb_livefiles_t *live = rocksdb_livefiles(db->db);
    out->table_files = live ? (uint64_t)rocksdb_livefiles_count(live) : 0;
    if (live) rocksdb_livefiles_destroy(live);
}

/* ---- Batches ------------------------------------------------------------------------ */

stg_batch *stg_batch_new(stg_db *db)
{
    stg_batch *b = xcalloc(1, sizeof *b);
    b->wb = rocksdb_writebatch_create();
    b->cf = db->cf;
    return b;
}

void stg_batch_free(stg_batch *b)
{
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b->changes);
    free(b->tallies);
    free(b);
}

void stg_batch_clear(stg_batch *b)
{
    rocksdb_writebatch_clear(b->wb);
    b->nchanges = 0;
    b->ntallies = 0;
}

void stg_batch_tree_change(stg_batch *b, uint32_t leaf, const stg_digest_sum *d)
{
    if (b->nchanges == b->capchanges) {
        b->capchanges = b->capchanges ? 2 * b->capchanges : 8;
        b->changes = xrealloc(b->changes, b->capchanges * sizeof *b->changes);
    }
    b->changes[b->nchanges++] = (stg_tree_change){leaf % STG_TREE_LEAVES, *d};
}

stg_tree *stg_db_tree(stg_db *db) { return db->tree; }

void stg_batch_tally(stg_batch *b, const char *user, size_t n, int64_t d)
{
    if (n > STG_ID_MAX) return; /* no stored user is longer */
    if (b->ntallies == b->captallies) {
        b->captallies = b->captallies ? 2 * b->captallies : 4;
        b->tallies = xrealloc(b->tallies, b->captallies * sizeof *b->tallies);
    }
    struct tally_change *c = &b->tallies[b->ntallies++];
    memcpy(c->user, user, n);
    c->len = n;
    c->d = d;
}

stg_tally *stg_db_tally(stg_db *db) { return db->tally; }

void stg_batch_put(stg_batch *b, stg_cf cf, const char *k, size_t kl, const char *v, size_t vl)
{
    rocksdb_writebatch_put_cf(b->wb, b->cf[cf], k, kl, v, vl);
}

void stg_batch_delete(stg_batch *b, stg_cf cf, const char *k, size_t kl)
{
    rocksdb_writebatch_delete_cf(b->wb, b->cf[cf], k, kl);
}

void stg_batch_merge_add(stg_batch *b, stg_cf cf, const char *k, size_t kl, int64_t delta)
{
    char v[8];
    stg_key_u64(v, (uint64_t)delta);
    rocksdb_writebatch_merge_cf(b->wb, b->cf[cf], k, kl, v, 8);
}

size_t stg_batch_count(const stg_batch *b) { return (size_t)rocksdb_writebatch_count(b->wb); }

int stg_write(stg_db *db, stg_batch *b)
{
    char *err = NULL;
    rocksdb_write(db->db, db->wopts, b->wb, &err);
    if (err) {
        df_log(DF_LOG_ERROR, "rocksdb write: %s", err);
        rocksdb_free(err);
        return DF_EIO;
    }
    if (b->nchanges) {
        stg_tree_apply(db->tree, b->changes, b->nchanges);
        b->nchanges = 0; /* committed: a second write changes nothing */
    }
    for (size_t i = 0; i < b->ntallies; i++)
        stg_tally_add(db->tally, b->tallies[i].user, b->tallies[i].len, b->tallies[i].d);
    b->ntallies = 0;
    return 0;
}

/* ---- Iterators ------------------------------------------------------------------------ */

struct stg_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *lo, *hi;
    size_t lolen, hilen;
    bool reverse, started;
};

stg_iter *stg_iter_range(stg_db *db, stg_cf cf, const char *lo, size_t lolen, const char *hi,
                         size_t hilen, bool reverse)
{
    stg_iter *it = xcalloc(1, sizeof *it);
    it->ro = rocksdb_readoptions_create();
    if (lo) {
        it->lo = xstrndup(lo, lolen);
        it->lolen = lolen;
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lo, lolen);
    }
    if (hi) {
        it->hi = xstrndup(hi, hilen);
        it->hilen = hilen;
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, hilen);
    }
    /* Unbounded scans cross prefixes (home_options), and read whole
     * families (the digest's sum at open: every source record) whose
     * blocks, kept, would push out those the requests read. */
    if (!lo || !hi) {
        rocksdb_readoptions_set_total_order_seek(it->ro, 1);
        rocksdb_readoptions_set_fill_cache(it->ro, 0);
    }
    it->it = rocksdb_create_iterator_cf(db->db, it->ro, db->cf[cf]);
    it->reverse = reverse;
    return it;
}

stg_iter *stg_iter_prefix(stg_db *db, stg_cf cf, const char *prefix, size_t plen, bool reverse)
{
    char succ[STG_ID_MAX * 3 + 16];
    int slen = plen <= sizeof succ ? stg_key_successor(prefix, plen, succ) : -1;
    return stg_iter_range(db, cf, prefix, plen, slen < 0 ? NULL : succ, slen < 0 ? 0 : (size_t)slen,
                          reverse);
}

bool stg_iter_next(stg_iter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    if (!it->started) {
        it->started = true;
        if (it->reverse)
            rocksdb_iter_seek_to_last(it->it);
        else
            rocksdb_iter_seek_to_first(it->it);
    } else if (it->reverse) {
        rocksdb_iter_prev(it->it);
    } else {
        rocksdb_iter_next(it->it);
    }
    if (!rocksdb_iter_valid(it->it)) return false;
    *k = rocksdb_iter_key(it->it, kl);
    if (v) *v = rocksdb_iter_value(it->it, vl);
    return true;
}

int stg_iter_status(stg_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err) {
        df_log(DF_LOG_ERROR, "rocksdb iterator: %s", err);
        rocksdb_free(err);
        return DF_EIO;
    }
    return 0;
}

void stg_iter_free(stg_iter *it)
{
    if (!it) return;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ro);
    free(it->lo);
    free(it->hi);
    free(it);
}

int stg_iter_close(stg_iter *it)
{
    int rc = stg_iter_status(it);
    stg_iter_free(it);
    return rc;
}

/* ---- Locks and meta ------------------------------------------------------------------ */

static unsigned stripe_of(const char *key, size_t klen) { return df_hash32(key, klen) % NSTRIPES; }

void stg_lock(stg_db *db, const char *key, size_t klen)
{
    pthread_mutex_lock(&db->stripes[stripe_of(key, klen)]);
}

void stg_unlock(stg_db *db, const char *key, size_t klen)
{
    pthread_mutex_unlock(&db->stripes[stripe_of(key, klen)]);
}

struct stg_lockset {
    stg_db *db;
    size_t n;
    unsigned held[STG_LOCKSET_MAX];
    uint8_t bits[NSTRIPES / 8]; /* the stripes in held */
};

stg_lockset *stg_lockset_new(stg_db *db)
{
    stg_lockset *s = xcalloc(1, sizeof *s);
    s->db = db;
    return s;
}

int stg_lockset_add(stg_lockset *s, const char *key, size_t klen)
{
    unsigned i = stripe_of(key, klen);
    if (s->bits[i / 8] & (1u << (i % 8))) return DF_EHELD;
    if (s->n == STG_LOCKSET_MAX) return DF_EBUSY;
    if (s->n == 0)
        pthread_mutex_lock(&s->db->stripes[i]);
    else if (pthread_mutex_trylock(&s->db->stripes[i]) != 0)
        return DF_EBUSY;
    s->held[s->n++] = i;
    s->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    return 0;
}

void stg_lockset_release(stg_lockset *s)
{
    for (size_t k = 0; k < s->n; k++) {
        pthread_mutex_unlock(&s->db->stripes[s->held[k]]);
        s->bits[s->held[k] / 8] = 0;
    }
    s->n = 0;
}

void stg_lockset_free(stg_lockset *s)
{
    if (!s) return;
    stg_lockset_release(s);
    free(s);
}

void stg_subscribe(stg_db *db, stg_event_fn fn, void *arg)
{
    if (db->nsubs == STG_SUBSCRIBERS_MAX) {
        df_log(DF_LOG_ERROR, "stg_subscribe: more than %d subscribers", STG_SUBSCRIBERS_MAX);
        abort();
    }
    db->subs[db->nsubs++] = (struct subscriber){fn, arg};
}

void stg_unsubscribe(stg_db *db, stg_event_fn fn, void *arg)
{
    for (size_t i = 0; i < db->nsubs; i++)
        if (db->subs[i].fn == fn && db->subs[i].arg == arg) {
            /* The order stays: the feed, subscribed first, hears first. */
            memmove(&db->subs[i], &db->subs[i + 1], (db->nsubs - i - 1) * sizeof db->subs[0]);
            db->nsubs--;
            return;
        }
}

void stg_notify(stg_db *db, const stg_event *ev)
{
    for (size_t i = 0; i < db->nsubs; i++) db->subs[i].fn(db->subs[i].arg, ev);
}

int stg_meta_get_u64(stg_db *db, const char *name, uint64_t *out)
{
    char *v;
    size_t vl;
    int rc = stg_get(db, STG_CF_META, name, strlen(name), &v, &vl);
    if (rc < 0) return rc;
    if (vl != 8) {
        free(v);
        return DF_ECORRUPT;
    }
    *out = stg_key_get_u64(v);
    free(v);
    return 0;
}

void stg_batch_meta_u64(stg_batch *b, const char *name, uint64_t v)
{
    char buf[8];
    stg_key_u64(buf, v);
    stg_batch_put(b, STG_CF_META, name, strlen(name), buf, 8);
}

int stg_meta_put_u64_sync(stg_db *db, const char *name, uint64_t v)
{
    char buf[8];
    stg_key_u64(buf, v);
    return stg_meta_put_sync(db, name, buf, 8);
}

int stg_meta_put_sync(stg_db *db, const char *name, const void *v, size_t n)
{
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    rocksdb_put_cf(db->db, wo, db->cf[STG_CF_META], name, strlen(name), v, n, &err);
    rocksdb_writeoptions_destroy(wo);
    if (err) {
        df_log(DF_LOG_ERROR, "rocksdb put: %s", err);
        rocksdb_free(err);
        return DF_EIO;
    }
    return 0;
}
