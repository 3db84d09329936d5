/* records.c -- source records and the derived indexes that follow from them.
 *
 * DESIGN: a source record (user, follow edge, post, message) is the unit of
 * replication and of last-write-wins. Its derived indexes -- followers of a
 * user, follower counts, a user's live posts (profile), the latest message
 * of each conversation -- are functions of the source records alone, so
 * every region that holds the same records derives the same indexes. They
 * are staged in the same write batch as the record, under the record's lock
 * stripe, so they can never disagree with it. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>


int stg_record_load(stg_db *db, stg_kind kind, const char *key, size_t klen, stg_record *rec,
                    char **raw)
{
    size_t vlen;
    int rc = stg_get(db, stg_kind_cf(kind), key, klen, raw, &vlen);
    if (rc < 0) return rc;
    rc = stg_value_decode(*raw, vlen, rec);
    if (rc < 0) {
        free(*raw);
        *raw = NULL;
        return rc;
    }
    rec->kind = kind;
    rec->key = key;
    rec->keylen = klen;
    return 0;
}

size_t stg_record_lock_key(const stg_record *rec, const char **lk)
{
    *lk = rec->key;
    if (rec->kind != STG_KIND_MESSAGE) return rec->keylen;
    const char *b;
    size_t nb;
    int na = stg_key_split(rec->key, rec->keylen, &b, &nb);
    if (na < 0) return rec->keylen;
    const char *sep = memchr(b, '\0', nb);
    return sep ? (size_t)(sep - rec->key) : rec->keylen;
}

/* A user's counters: 'f' followers, 'g' followees. (Live posts are counted
 * in memory, tally.c; stores made before that hold stale 's' counters.) */
static void count_key(char *buf, size_t *len, char which, const char *user, size_t n)
{
    buf[0] = which;
    memcpy(buf + 1, user, n);
    *len = n + 1;
}

static int64_t count_value(const char *v, size_t vl) { return vl == 8 ? (int64_t)stg_key_get_u64(v) : 0; }

int64_t stg_follower_count(stg_db *db, const char *user)
{
    char key[STG_ID_MAX + 2], *v;
    size_t kl, vl;
    size_t n = strlen(user);
    if (n > STG_ID_MAX) return 0;
    count_key(key, &kl, 'f', user, n);
    if (stg_get(db, STG_CF_COUNTS, key, kl, &v, &vl) < 0) return 0;
    int64_t c = count_value(v, vl);
    free(v);
    return c;
}

int stg_user_counts(stg_db *db, const char *user, stg_counts *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(user);
    if (n > STG_ID_MAX) return 0;
    char keys[2][STG_ID_MAX + 2], *vals[2];
    const char *kp[2] = {keys[0], keys[1]};
    size_t kl[2], vl[2];
    count_key(keys[0], &kl[0], 'f', user, n);
    count_key(keys[1], &kl[1], 'g', user, n);
    int rc = stg_multi_get(db, STG_CF_COUNTS, 2, kp, kl, vals, vl);
    if (rc < 0) return rc;
    int64_t *dst[2] = {&out->followers, &out->following};
    for (int i = 0; i < 2; i++) {
        if (vals[i]) *dst[i] = count_value(vals[i], vl[i]);
        free(vals[i]);
    }
    out->posts = stg_tally_get(stg_db_tally(db), user, n);
    return 0;
}

static bool live(const stg_record *r) { return r && !r->tombstone; }

static void stage_follow(stg_batch *b, const stg_record *rec, const stg_record *old)
{
    bool now = live(rec), was = live(old);
    if (now == was) return;
    const char *followee;
    size_t nfollowee;
    int nfollower = stg_key_split(rec->key, rec->keylen, &followee, &nfollowee);
    if (nfollower < 0) return;
    char key[STG_KEY_MAX], ckey[STG_ID_MAX + 2];
    size_t cl;
    int kl = stg_key_join(key, sizeof key, followee, nfollowee, rec->key, (size_t)nfollower);
    if (kl < 0 || nfollowee > STG_ID_MAX || nfollower > STG_ID_MAX) return;
    if (now)
        stg_batch_put(b, STG_CF_FOLLOWERS, key, (size_t)kl, "", 0);
    else
        stg_batch_delete(b, STG_CF_FOLLOWERS, key, (size_t)kl);
    count_key(ckey, &cl, 'f', followee, nfollowee);
    stg_batch_merge_add(b, STG_CF_COUNTS, ckey, cl, now ? 1 : -1);
    count_key(ckey, &cl, 'g', rec->key, (size_t)nfollower);
    stg_batch_merge_add(b, STG_CF_COUNTS, ckey, cl, now ? 1 : -1);
}

static void stage_post(stg_batch *b, const stg_record *rec, const stg_record *old)
{
    bool now = live(rec), was = live(old);
    if (now == was) return;
    char key[STG_KEY_MAX];
    int kl = stg_key_join(key, sizeof key, rec->owner, rec->ownerlen, rec->key, rec->keylen);
    if (kl < 0 || rec->ownerlen > STG_ID_MAX) return;
    if (now)
        stg_batch_put(b, STG_CF_PROFILE, key, (size_t)kl, "", 0);
    else
        stg_batch_delete(b, STG_CF_PROFILE, key, (size_t)kl);
    stg_batch_tally(b, rec->owner, rec->ownerlen, now ? 1 : -1);
}

/* Adds 1 to the followee counter ('g') of the follower each live follow
 * record starts with (the part of its key before the first \0). */
static int count_followees(stg_db *db, stg_batch *b)
{
    stg_iter *it = stg_iter_range(db, STG_CF_FOLLOWS, NULL, 0, NULL, 0, false);
    const char *k, *v, *rest;
    size_t kl, vl, nrest;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        stg_record e;
        int nu = stg_key_split(k, kl, &rest, &nrest);
        if (nu < 0 || nu > STG_ID_MAX) continue;
        if (stg_value_decode(v, vl, &e) < 0 || e.tombstone) continue;
        char ckey[STG_ID_MAX + 2];
        size_t cl;
        count_key(ckey, &cl, 'g', k, (size_t)nu);
        stg_batch_merge_add(b, STG_CF_COUNTS, ckey, cl, 1);
    }
    return stg_iter_close(it);
}

int stg_counts_build(stg_db *db)
{
    static const char done[] = "user_counts_built";
    uint64_t v;
    if (stg_meta_get_u64(db, done, &v) == 0) return 0;
    stg_batch *b = stg_batch_new(db);
    int rc = count_followees(db, b);
    size_t n = stg_batch_count(b);
    if (rc == 0) {
        stg_batch_meta_u64(b, done, 1);
        rc = stg_write(db, b);
    }
    stg_batch_free(b);
    if (rc == 0 && n) df_log(DF_LOG_INFO, "counts: %zu follows counted", n);
    return rc;
}

/* Points user \0 peer at the message if it is newer than the latest one,
 * and moves the conversation to its new place in user's list by time. */
static void stage_conv_side(stg_db *db, stg_batch *b, const char *user, size_t nu, const char *peer,
                            size_t np, const char *id, size_t nid)
{
    char key[STG_KEY_MAX], tkey[STG_KEY_MAX], *cur;
    size_t curlen;
    int kl = stg_key_join(key, sizeof key, user, nu, peer, np);
    int tl = stg_key_join(tkey, sizeof tkey, user, nu, id, nid);
    if (kl < 0 || tl < 0) return;
    if (stg_get(db, STG_CF_CONVS, key, (size_t)kl, &cur, &curlen) == 0) {
        size_t m = curlen < nid ? curlen : nid;
        int c = memcmp(cur, id, m);
        bool newer = c < 0 || (c == 0 && curlen < nid);
        char okey[STG_KEY_MAX];
        int ol = stg_key_join(okey, sizeof okey, user, nu, cur, curlen);
        if (newer && ol > 0) stg_batch_delete(b, STG_CF_CONV_TIMES, okey, (size_t)ol);
        free(cur);
        if (!newer) return;
    }
    stg_batch_put(b, STG_CF_CONVS, key, (size_t)kl, id, nid);
    stg_batch_put(b, STG_CF_CONV_TIMES, tkey, (size_t)tl, peer, np);
}

int stg_conv_times_build(stg_db *db)
{
    static const char done[] = "conv_times_built";
    uint64_t v;
    if (stg_meta_get_u64(db, done, &v) == 0) return 0;
    stg_batch *b = stg_batch_new(db);
    stg_iter *it = stg_iter_range(db, STG_CF_CONVS, NULL, 0, NULL, 0, false);
    const char *k, *val, *peer;
    size_t kl, vl, np;
    uint64_t n = 0;
    while (stg_iter_next(it, &k, &kl, &val, &vl)) {
        char tkey[STG_KEY_MAX];
        int nu = stg_key_split(k, kl, &peer, &np);
        int tl = nu < 0 ? -1 : stg_key_join(tkey, sizeof tkey, k, (size_t)nu, val, vl);
        if (tl < 0) continue;
        stg_batch_put(b, STG_CF_CONV_TIMES, tkey, (size_t)tl, peer, np);
        n++;
    }
    int rc = stg_iter_close(it);
    if (rc == 0) {
        stg_batch_meta_u64(b, done, 1);
        rc = stg_write(db, b);
    }
    stg_batch_free(b);
    if (rc == 0 && n)
        df_log(DF_LOG_INFO, "conversations: %llu indexed by time", (unsigned long long)n);
    return rc;
}

static void stage_message(stg_db *db, stg_batch *b, const stg_record *rec, const stg_record *old)
{
    if (old || rec->tombstone) return; /* messages are immutable */
    const char *rest, *id;
    size_t nrest, nid;
    int na = stg_key_split(rec->key, rec->keylen, &rest, &nrest);
    if (na < 0) return;
    int nb = stg_key_split(rest, nrest, &id, &nid);
    if (nb < 0) return;
    stage_conv_side(db, b, rec->key, (size_t)na, rest, (size_t)nb, id, nid);
    stage_conv_side(db, b, rest, (size_t)nb, rec->key, (size_t)na, id, nid);
}

void stg_record_stage(stg_db *db, stg_batch *b, const stg_record *rec, const stg_record *old)
{
    char *val;
    size_t vlen;
    stg_value_encode(rec, &val, &vlen);
    stg_batch_put(b, stg_kind_cf(rec->kind), rec->key, rec->keylen, val, vlen);
    char tv[STG_TREE_VALUE_LEN]; /* the hash, then the hlc */
    stg_digest_sum d = {0};
    stg_tree_value(tv, rec->kind, rec->key, rec->keylen, val, vlen, rec->ver.hlc);
    stg_digest_add(&d, (const unsigned char *)tv, 1);
    free(val);
    if (old) { /* what is stored goes out: its bytes as loaded, else re-encoded */
        char *oval = NULL;
        size_t olen = old->valuelen;
        unsigned char oh[STG_DIGEST_HASH_LEN];
        if (!old->value) stg_value_encode(old, &oval, &olen);
        stg_digest_hash(rec->kind, rec->key, rec->keylen, old->value ? old->value : oval, olen, oh);
        stg_digest_add(&d, oh, -1);
        free(oval);
    }
    /* The record's leaf: its entry (the same key for every version) and
     * the change to the sums. */
    uint32_t leaf = stg_tree_leaf(rec->kind, rec->key, rec->keylen);
    char tk[STG_TREE_KEY_MAX];
    size_t tl = stg_tree_key(tk, leaf, rec->kind, rec->key, rec->keylen);
    stg_batch_put(b, STG_CF_TREE, tk, tl, tv, sizeof tv);
    stg_batch_tree_change(b, leaf, &d);
    switch (rec->kind) {
    case STG_KIND_FOLLOW: stage_follow(b, rec, old); break;
    case STG_KIND_POST: stage_post(b, rec, old); break;
    case STG_KIND_MESSAGE: stage_message(db, b, rec, old); break;
    case STG_KIND_USER: break;
    }
}
