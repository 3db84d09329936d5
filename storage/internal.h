/* internal.h -- what the storage files share; not the module's API. */
#ifndef DF_STG_INTERNAL_H
#define DF_STG_INTERNAL_H

#include "storage.h"

/* tree.c: the sums of the Merkle tree, in memory. */
typedef struct stg_tree stg_tree;
typedef struct stg_tree_change {
    uint32_t leaf;
    stg_digest_sum d;
} stg_tree_change;
stg_tree *stg_tree_new(void);
void stg_tree_free(stg_tree *t); /* accepts NULL */
/* At open, before anything writes: fills STG_CF_TREE from the records of a
 * store made before it, then sums it into t. Returns 0, DF_EIO or
 * DF_ECORRUPT. */
int stg_tree_load(stg_db *db, stg_tree *t);
/* Adds a committed batch's changes. */
void stg_tree_apply(stg_tree *t, const stg_tree_change *c, size_t n);
/* The database's tree (db.c). */
stg_tree *stg_db_tree(stg_db *db);
/* The STG_CF_TREE key of a record: leaf (u16 BE) | kind | key. */
#define STG_TREE_KEY_MAX (3 + STG_KEY_MAX)
size_t stg_tree_key(char *buf, uint32_t leaf, stg_kind kind, const char *key, size_t klen);
/* Its value: the record's digest hash, then its version's hlc (u64 BE). */
#define STG_TREE_VALUE_LEN (STG_DIGEST_HASH_LEN + 8)
void stg_tree_value(char out[STG_TREE_VALUE_LEN], stg_kind kind, const char *key, size_t klen,
                    const char *val, size_t vlen, uint64_t hlc);

/* tally.c: every user's live posts, in memory (summed from STG_CF_PROFILE
 * at open, moved by committed batches). */
typedef struct stg_tally stg_tally;
stg_tally *stg_tally_new(void);
void stg_tally_free(stg_tally *t); /* accepts NULL */
void stg_tally_add(stg_tally *t, const char *user, size_t n, int64_t d);
int64_t stg_tally_get(stg_tally *t, const char *user, size_t n);
/* At open, before anything writes. Returns 0 or DF_EIO. */
int stg_tally_load(stg_db *db, stg_tally *t);
/* A change to user's live posts, made when b commits (db.c). */
void stg_batch_tally(stg_batch *b, const char *user, size_t n, int64_t d);
/* The database's tally (db.c). */
stg_tally *stg_db_tally(stg_db *db);

#endif
