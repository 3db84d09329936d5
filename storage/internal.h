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

#endif
