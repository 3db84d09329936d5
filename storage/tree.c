/* tree.c -- the Merkle tree over the source records (storage.h).
 *
 * Leaves are chosen by SipHash of (kind, key) under a fixed key, so every
 * region puts a record in the same leaf. The nodes of all levels sit in
 * one array, level by level; a change to a leaf is added to it and to
 * every node above it, under one mutex (a few dozen additions a batch). */
#include "internal.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#define NODES (1 + 16 + 256 + 4096)
static const uint32_t level_off[STG_TREE_DEPTH + 1] = {0, 1, 17, 273};
_Static_assert(STG_TREE_LEAVES == 4096 && STG_TREE_FANOUT == 16 && STG_TREE_DEPTH == 3,
               "level_off and NODES follow the shape");

/* The same in every region, and never changed: the leaves are part of the
 * protocol between regions. */
static const unsigned char leaf_key[crypto_shorthash_KEYBYTES] = "driftfeed-tree-1";

struct stg_tree {
    pthread_mutex_t mu;
    stg_digest_sum node[NODES];
};

uint32_t stg_tree_width(unsigned level)
{
    return level > STG_TREE_DEPTH ? 0 : 1u << (4 * level);
}

uint32_t stg_tree_leaf(stg_kind kind, const char *key, size_t klen)
{
    unsigned char buf[1 + STG_KEY_MAX], h[crypto_shorthash_BYTES];
    if (klen > STG_KEY_MAX) klen = STG_KEY_MAX; /* no stored key is longer */
    buf[0] = (unsigned char)kind;
    memcpy(buf + 1, key, klen);
    crypto_shorthash(h, buf, 1 + klen, leaf_key);
    return (((uint32_t)h[0] << 8) | h[1]) % STG_TREE_LEAVES;
}

void stg_tree_value(char out[STG_TREE_VALUE_LEN], stg_kind kind, const char *key, size_t klen,
                    const char *val, size_t vlen, uint64_t hlc)
{
    stg_digest_hash(kind, key, klen, val, vlen, (unsigned char *)out);
    stg_key_u64(out + STG_DIGEST_HASH_LEN, hlc);
}

size_t stg_tree_key(char *buf, uint32_t leaf, stg_kind kind, const char *key, size_t klen)
{
    if (klen > STG_KEY_MAX) klen = STG_KEY_MAX;
    buf[0] = (char)(leaf >> 8);
    buf[1] = (char)(leaf & 0xff);
    buf[2] = (char)kind;
    memcpy(buf + 3, key, klen);
    return 3 + klen;
}

stg_tree *stg_tree_new(void)
{
    stg_tree *t = xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void stg_tree_free(stg_tree *t)
{
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void add_leaf(stg_tree *t, uint32_t leaf, const stg_digest_sum *d)
{
    for (unsigned l = 0; l <= STG_TREE_DEPTH; l++)
        stg_digest_merge(&t->node[level_off[l] + (leaf >> (4 * (STG_TREE_DEPTH - l)))], d, 1);
}

void stg_tree_apply(stg_tree *t, const stg_tree_change *c, size_t n)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < n; i++) add_leaf(t, c[i].leaf, &c[i].d);
    pthread_mutex_unlock(&t->mu);
}

int stg_tree_nodes(stg_db *db, unsigned level, const uint32_t *idx, size_t n, stg_digest_sum *out)
{
    uint32_t w = stg_tree_width(level);
    for (size_t i = 0; i < n; i++)
        if (w == 0 || idx[i] >= w) return DF_EINVAL;
    stg_tree *t = stg_db_tree(db);
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < n; i++) out[i] = t->node[level_off[level] + idx[i]];
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void stg_digest(stg_db *db, char hex[33], uint64_t *records)
{
    stg_digest_sum s;
    uint32_t root = 0;
    stg_tree_nodes(db, 0, &root, 1, &s);
    stg_digest_hex(&s, hex);
    if (records) *records = s.records;
}

/* A tree entry's leaf, kind and key; false if the entry is not one. */
static bool parse_entry(const char *k, size_t kl, size_t vl, uint32_t *leaf, stg_kind *kind)
{
    if (kl < 3 || vl != STG_TREE_VALUE_LEN) return false;
    *leaf = ((uint32_t)(unsigned char)k[0] << 8) | (unsigned char)k[1];
    *kind = (stg_kind)(unsigned char)k[2];
    return *leaf < STG_TREE_LEAVES && *kind >= STG_KIND_USER && *kind <= STG_KIND_MAX;
}

/* Calls fn(arg, leaf, kind, key, klen, value) for every tree entry under
 * prefix (plen 0: all), until it returns false. Returns 0, DF_EIO, or
 * DF_ECORRUPT for an entry that is not one. */
typedef bool (*entry_fn)(void *arg, uint32_t leaf, stg_kind kind, const char *key, size_t klen,
                         const char *val);
static int each_entry(stg_db *db, const char *prefix, size_t plen, entry_fn fn, void *arg)
{
    stg_iter *it = plen ? stg_iter_prefix(db, STG_CF_TREE, prefix, plen, false)
                        : stg_iter_range(db, STG_CF_TREE, NULL, 0, NULL, 0, false);
    const char *k, *v;
    size_t kl, vl;
    int rc = 0;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        uint32_t leaf;
        stg_kind kind;
        if (!parse_entry(k, kl, vl, &leaf, &kind)) {
            rc = DF_ECORRUPT;
            break;
        }
        if (!fn(arg, leaf, kind, k + 3, kl - 3, v)) break;
    }
    int irc = stg_iter_close(it);
    return rc < 0 ? rc : irc;
}

typedef struct leaf_call {
    stg_tree_fn fn;
    void *arg;
} leaf_call;

static bool call_leaf_fn(void *arg, uint32_t leaf, stg_kind kind, const char *key, size_t klen,
                         const char *val)
{
    (void)leaf;
    const leaf_call *c = arg;
    return c->fn(c->arg, kind, key, klen, (const unsigned char *)val,
                 stg_key_get_u64(val + STG_DIGEST_HASH_LEN));
}

int stg_tree_leaf_scan(stg_db *db, uint32_t leaf, stg_tree_fn fn, void *arg)
{
    if (leaf >= STG_TREE_LEAVES) return DF_EINVAL;
    char prefix[2] = {(char)(leaf >> 8), (char)(leaf & 0xff)};
    leaf_call c = {fn, arg};
    return each_entry(db, prefix, sizeof prefix, call_leaf_fn, &c);
}

int stg_tree_get(stg_db *db, stg_kind kind, const char *key, size_t klen,
                 unsigned char hash[STG_DIGEST_HASH_LEN], uint64_t *hlc)
{
    char tk[STG_TREE_KEY_MAX], *v;
    size_t vl;
    int rc = stg_get(db, STG_CF_TREE, tk, stg_tree_key(tk, stg_tree_leaf(kind, key, klen), kind,
                                                       key, klen),
                     &v, &vl);
    if (rc < 0) return rc;
    if (vl != STG_TREE_VALUE_LEN) rc = DF_ECORRUPT;
    if (rc == 0) {
        memcpy(hash, v, STG_DIGEST_HASH_LEN);
        *hlc = stg_key_get_u64(v + STG_DIGEST_HASH_LEN);
    }
    free(v);
    return rc;
}

/* Writes a tree entry for every record of a store made before the tree. */
static int build(stg_db *db)
{
    static const stg_kind kinds[] = {STG_KIND_USER, STG_KIND_FOLLOW, STG_KIND_POST,
                                     STG_KIND_MESSAGE};
    stg_batch *b = stg_batch_new(db);
    uint64_t n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof kinds / sizeof kinds[0]; i++) {
        stg_iter *it = stg_iter_range(db, stg_kind_cf(kinds[i]), NULL, 0, NULL, 0, false);
        const char *k, *v;
        size_t kl, vl;
        while (rc == 0 && stg_iter_next(it, &k, &kl, &v, &vl)) {
            char tk[STG_TREE_KEY_MAX], tv[STG_TREE_VALUE_LEN];
            stg_record rec;
            if (stg_value_decode(v, vl, &rec) < 0) {
                rc = DF_ECORRUPT;
                break;
            }
            size_t tl = stg_tree_key(tk, stg_tree_leaf(kinds[i], k, kl), kinds[i], k, kl);
            stg_tree_value(tv, kinds[i], k, kl, v, vl, rec.ver.hlc);
            stg_batch_put(b, STG_CF_TREE, tk, tl, tv, sizeof tv);
            if (++n % 1024 == 0) {
                rc = stg_write(db, b);
                stg_batch_clear(b);
            }
        }
        int irc = stg_iter_close(it);
        if (rc == 0) rc = irc;
    }
    if (rc == 0) {
        stg_batch_meta_u64(b, "tree_built", 1);
        rc = stg_write(db, b);
    }
    stg_batch_free(b);
    if (rc == 0 && n) df_log(DF_LOG_INFO, "tree: %llu records indexed", (unsigned long long)n);
    return rc;
}

static bool sum_entry(void *arg, uint32_t leaf, stg_kind kind, const char *key, size_t klen,
                      const char *val)
{
    (void)kind, (void)key, (void)klen;
    stg_digest_sum d = {0};
    stg_digest_add(&d, (const unsigned char *)val, 1);
    add_leaf(arg, leaf, &d);
    return true;
}

int stg_tree_load(stg_db *db, stg_tree *t)
{
    uint64_t built;
    int rc = stg_meta_get_u64(db, "tree_built", &built) == 0 ? 0 : build(db);
    return rc < 0 ? rc : each_entry(db, NULL, 0, sum_entry, t);
}

/* Takes out the record stored as val (freed), with its tree entry and its
 * share of the sums. */
static int drop_value(stg_db *db, stg_kind kind, const char *key, size_t klen, char *val,
                      size_t vlen)
{
    int rc;
    unsigned char h[STG_DIGEST_HASH_LEN];
    stg_digest_hash(kind, key, klen, val, vlen, h);
    free(val);
    stg_digest_sum d = {0};
    stg_digest_add(&d, h, -1);
    uint32_t leaf = stg_tree_leaf(kind, key, klen);
    char tk[STG_TREE_KEY_MAX];
    size_t tl = stg_tree_key(tk, leaf, kind, key, klen);
    stg_batch *b = stg_batch_new(db);
    stg_batch_delete(b, stg_kind_cf(kind), key, klen);
    stg_batch_delete(b, STG_CF_TREE, tk, tl);
    stg_batch_tree_change(b, leaf, &d);
    rc = stg_write(db, b);
    stg_batch_free(b);
    return rc;
}

int stg_record_drop(stg_db *db, stg_kind kind, const char *key, size_t klen)
{
    char *val;
    size_t vlen;
    int rc = stg_get(db, stg_kind_cf(kind), key, klen, &val, &vlen);
    return rc < 0 ? rc : drop_value(db, kind, key, klen, val, vlen);
}

int stg_record_purge(stg_db *db, stg_kind kind, const char *key, size_t klen, uint64_t before_ms)
{
    stg_record rec;
    char *raw;
    int rc = stg_record_load(db, kind, key, klen, &rec, &raw);
    if (rc < 0) return rc == DF_ENOTFOUND ? 0 : rc;
    const char *lk;
    size_t lkl = stg_record_lock_key(&rec, &lk);
    char lock[STG_KEY_MAX];
    memcpy(lock, lk, lkl);
    free(raw);
    stg_lock(db, lock, lkl);
    /* Again under the lock: a newer version may have come meanwhile. */
    char *val;
    size_t vlen;
    rc = stg_get(db, stg_kind_cf(kind), key, klen, &val, &vlen);
    if (rc == 0) {
        bool old_tomb = stg_value_decode(val, vlen, &rec) == 0 && rec.tombstone &&
                        (rec.ver.hlc >> 16) < before_ms;
        if (old_tomb) {
            rc = drop_value(db, kind, key, klen, val, vlen) == 0 ? 1 : DF_EIO;
        } else {
            free(val);
            rc = 0;
        }
    } else if (rc == DF_ENOTFOUND) {
        rc = 0;
    }
    stg_unlock(db, lock, lkl);
    return rc;
}
