/* test_digest.c -- storage/digest.c and storage/records.c on a real RocksDB:
 * the convergence digest is a function of the set of source records, and
 * the derived indexes (followers, follower counts, profiles, conversations)
 * follow from the records staged; the Merkle tree splits the digest by key. */
#include "../unit.h"
#include "storage.h"

#include <stdlib.h>
#include <string.h>

/* ---- Helpers ----------------------------------------------------------------------- */

typedef struct tdb {
    char *dir;
    stg_db *db;
} tdb;

static tdb tdb_open(void)
{
    tdb t = {.dir = unit_mkdtemp()};
    stg_options opt = {.sync = false, .cache_mb = 8};
    ck_assert_int_eq(stg_open(t.dir, &opt, &t.db), 0);
    return t;
}

static void tdb_reopen(tdb *t)
{
    stg_close(t->db);
    ck_assert_int_eq(stg_open(t->dir, NULL, &t->db), 0);
}

static void tdb_close(tdb *t)
{
    stg_close(t->db);
    unit_rmtree(t->dir);
}

/* A source record that owns its bytes. */
typedef struct trec {
    stg_kind kind;
    char key[3 * STG_ID_MAX];
    size_t keylen;
    bool tomb;
    stg_version ver;
    char owner[STG_ID_MAX + 1];
    char payload[1024];
} trec;

static stg_record as_record(const trec *t)
{
    stg_record r = {.kind = t->kind,
                    .tombstone = t->tomb,
                    .ver = t->ver,
                    .key = t->key,
                    .keylen = t->keylen,
                    .owner = t->owner,
                    .ownerlen = strlen(t->owner),
                    .payload = t->payload,
                    .paylen = strlen(t->payload)};
    return r;
}

static void set_version(trec *t, uint64_t hlc, const char *origin)
{
    memset(&t->ver, 0, sizeof t->ver);
    t->ver.hlc = hlc;
    snprintf(t->ver.origin, sizeof t->ver.origin, "%s", origin);
}

static trec user_rec(int i, uint64_t hlc)
{
    trec t = {.kind = STG_KIND_USER};
    t.keylen = (size_t)snprintf(t.owner, sizeof t.owner, "u%d@paris", i);
    memcpy(t.key, t.owner, t.keylen);
    snprintf(t.payload, sizeof t.payload, "{\"id\":\"%s\",\"n\":%d}", t.owner, i);
    set_version(&t, hlc, "paris");
    return t;
}

static trec follow_rec(const char *follower, const char *followee, bool tomb, uint64_t hlc,
                       const char *origin)
{
    trec t = {.kind = STG_KIND_FOLLOW, .tomb = tomb};
    t.keylen = (size_t)stg_key_join(t.key, sizeof t.key, follower, strlen(follower), followee,
                                    strlen(followee));
    snprintf(t.owner, sizeof t.owner, "%s", follower);
    set_version(&t, hlc, origin);
    return t;
}

static trec post_rec(const char *author, uint64_t hlc, const char *origin, const char *text)
{
    trec t = {.kind = STG_KIND_POST};
    set_version(&t, hlc, origin);
    stg_make_id(t.key, &t.ver);
    t.keylen = strlen(t.key);
    snprintf(t.owner, sizeof t.owner, "%s", author);
    snprintf(t.payload, sizeof t.payload, "{\"id\":\"%s\",\"author\":\"%s\",\"text\":\"%s\"}",
             t.key, author, text);
    return t;
}

static trec message_rec(const char *from, const char *to, uint64_t hlc, const char *origin)
{
    trec t = {.kind = STG_KIND_MESSAGE};
    set_version(&t, hlc, origin);
    char id[STG_ID_MAX + 1];
    stg_make_id(id, &t.ver);
    t.keylen = (size_t)stg_key_message(t.key, sizeof t.key, from, to, id);
    snprintf(t.owner, sizeof t.owner, "%s", from);
    snprintf(t.payload, sizeof t.payload, "{\"id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}", id, from,
             to);
    return t;
}

/* The tombstone that replaces t, one version later. */
static trec tombstone_of(const trec *t)
{
    trec d = *t;
    d.tomb = true;
    d.payload[0] = '\0';
    d.ver.hlc++;
    return d;
}

/* A mixed set of n source records of every kind, all with distinct keys. */
static trec *record_set(size_t n)
{
    trec *recs = calloc(n, sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "u%zu@paris", i % 7);
        snprintf(b, sizeof b, "v%zu@tokyo", i);
        uint64_t hlc = (1000 + i) << 16 | (i % 3);
        switch (i % 4) {
        case 0: recs[i] = user_rec((int)i, hlc); break;
        case 1: recs[i] = follow_rec(a, b, i % 8 == 5, hlc, "tokyo"); break;
        case 2: recs[i] = post_rec(a, hlc, i % 3 ? "paris" : "tokyo", "hello"); break;
        case 3: recs[i] = message_rec(a, b, hlc, "paris"); break;
        }
        if (i % 10 == 6) recs[i].tomb = true;
    }
    return recs;
}

/* Stages and commits one record (as every writer does: one per batch). */
static void put_one(stg_db *db, const trec *t, const trec *old)
{
    stg_batch *b = stg_batch_new(db);
    stg_record rec = as_record(t), o;
    if (old) o = as_record(old);
    stg_record_stage(db, b, &rec, old ? &o : NULL);
    ck_assert_int_eq(stg_write(db, b), 0);
    stg_batch_free(b);
}

/* Writes recs[order[i]] in batches of per_batch records (keys distinct). */
static void put_all(stg_db *db, const trec *recs, const size_t *order, size_t n, size_t per_batch)
{
    stg_batch *b = stg_batch_new(db);
    for (size_t i = 0; i < n; i++) {
        stg_record rec = as_record(&recs[order ? order[i] : i]);
        stg_record_stage(db, b, &rec, NULL);
        if ((i + 1) % per_batch == 0 || i + 1 == n) {
            ck_assert_int_eq(stg_write(db, b), 0);
            stg_batch_clear(b);
        }
    }
    stg_batch_free(b);
}

static void delete_one(stg_db *db, const trec *t)
{
    stg_batch *b = stg_batch_new(db);
    stg_batch_delete(b, stg_kind_cf(t->kind), t->key, t->keylen);
    ck_assert_int_eq(stg_write(db, b), 0);
    stg_batch_free(b);
}

/* The digest by a scan of every record: these tests write records behind
 * the running digest's back (deletes, overwrites staged without the old
 * record), to see that the function itself notices every change. */
static void digest_of(stg_db *db, char hex[33], uint64_t *n)
{
    stg_digest_sum s;
    ck_assert_int_eq(stg_digest_scan(db, &s), 0);
    stg_digest_hex(&s, hex);
    if (n) *n = s.records;
}

/* The running digest, which must equal the scan's. */
static void running_digest(stg_db *db, char hex[33], uint64_t *n)
{
    char scan[33];
    uint64_t ns;
    stg_digest(db, hex, n);
    digest_of(db, scan, &ns);
    ck_assert_str_eq(hex, scan);
    ck_assert_uint_eq(*n, ns);
}

/* Stages rec over what is stored, as the writers do (load, then stage). */
static void stage_over(stg_db *db, stg_batch *b, const trec *t)
{
    stg_record rec = as_record(t), old;
    char *raw = NULL;
    int rc = stg_record_load(db, t->kind, t->key, t->keylen, &old, &raw);
    ck_assert(rc == 0 || rc == DF_ENOTFOUND);
    stg_record_stage(db, b, &rec, rc == 0 ? &old : NULL);
    free(raw);
}

static void shuffle(rng *r, size_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(r, i), t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static bool exists(stg_db *db, stg_cf cf, const char *k, size_t kl)
{
    char *v;
    size_t vl;
    int rc = stg_get(db, cf, k, kl, &v, &vl);
    ck_assert(rc == 0 || rc == DF_ENOTFOUND);
    if (rc == 0) free(v);
    return rc == 0;
}

static bool has_follower(stg_db *db, const char *followee, const char *follower)
{
    char k[2 * STG_ID_MAX + 2];
    int kl = stg_key_join(k, sizeof k, followee, strlen(followee), follower, strlen(follower));
    return exists(db, STG_CF_FOLLOWERS, k, (size_t)kl);
}

static bool in_profile(stg_db *db, const trec *post)
{
    char k[2 * STG_ID_MAX + 2];
    int kl = stg_key_join(k, sizeof k, post->owner, strlen(post->owner), post->key, post->keylen);
    return exists(db, STG_CF_PROFILE, k, (size_t)kl);
}

/* The latest message id of user's conversation with peer, into id ("" if none). */
static void conv_latest(stg_db *db, const char *user, const char *peer, char id[STG_ID_MAX + 1])
{
    char k[2 * STG_ID_MAX + 2], *v;
    size_t vl;
    int kl = stg_key_join(k, sizeof k, user, strlen(user), peer, strlen(peer));
    id[0] = '\0';
    if (stg_get(db, STG_CF_CONVS, k, (size_t)kl, &v, &vl) != 0) return;
    ck_assert_uint_le(vl, STG_ID_MAX);
    memcpy(id, v, vl);
    id[vl] = '\0';
    free(v);
}

/* user's conversations from the by-time index, newest first, as
 * "peer=id,peer=id". */
static void conv_list(stg_db *db, const char *user, char *out, size_t cap)
{
    char prefix[STG_ID_MAX + 2];
    int pl = stg_key_join(prefix, sizeof prefix, user, strlen(user), NULL, 0);
    stg_iter *it = stg_iter_prefix(db, STG_CF_CONV_TIMES, prefix, (size_t)pl, true);
    const char *k, *v, *id;
    size_t kl, vl, nid, n = 0;
    out[0] = '\0';
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        ck_assert_int_ge(stg_key_split(k, kl, &id, &nid), 0);
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s=%.*s", n ? "," : "", (int)vl, v, (int)nid,
                              id);
        ck_assert_uint_lt(n, cap);
    }
    ck_assert_int_eq(stg_iter_close(it), 0);
}

/* The message id at the end of a message key. */
static const char *message_id(const trec *m)
{
    const char *rest, *id;
    size_t nrest, nid;
    ck_assert_int_ge(stg_key_split(m->key, m->keylen, &rest, &nrest), 0);
    ck_assert_int_ge(stg_key_split(rest, nrest, &id, &nid), 0);
    return id;
}

/* ---- Digest ---------------------------------------------------------------------------- */

START_TEST(test_empty_database)
{
    tdb t = tdb_open();
    char hex[33];
    uint64_t n = 99;
    digest_of(t.db, hex, &n);
    ck_assert_str_eq(hex, "00000000000000000000000000000000");
    ck_assert_uint_eq(n, 0);
    /* Derived and bookkeeping families do not count. */
    stg_batch *b = stg_batch_new(t.db);
    stg_batch_put(b, STG_CF_HOME, "a\0b", 3, "x", 1);
    stg_batch_put(b, STG_CF_PROFILE, "a\0b", 3, "", 0);
    stg_batch_meta_u64(b, "hlc_mark", 7);
    ck_assert_int_eq(stg_write(t.db, b), 0);
    stg_batch_free(b);
    digest_of(t.db, hex, &n);
    ck_assert_str_eq(hex, "00000000000000000000000000000000");
    ck_assert_uint_eq(n, 0);
    tdb_close(&t);
}
END_TEST

START_TEST(test_equal_sets_equal_digests)
{
    enum { N = 200 };
    rng r = rng_seeded("digest_equal_sets", 31);
    trec *recs = record_set(N);
    size_t order[N];
    shuffle(&r, order, N);
    tdb a = tdb_open(), b = tdb_open();
    put_all(a.db, recs, NULL, N, 5);
    put_all(b.db, recs, order, N, 3);
    char ha[33], hb[33];
    uint64_t na, nb;
    digest_of(a.db, ha, &na);
    digest_of(b.db, hb, &nb);
    ck_assert_uint_eq(na, N);
    ck_assert_uint_eq(nb, N);
    ck_assert_str_eq(ha, hb);
    ck_assert_str_ne(ha, "00000000000000000000000000000000");

    /* A third database reaches the same set through overwrites: an older
     * version of some records first, then the final one. */
    tdb c = tdb_open();
    for (size_t i = 0; i < N; i += 3) {
        trec older = recs[i];
        older.ver.hlc--;
        older.tomb = !older.tomb;
        put_one(c.db, &older, NULL);
    }
    put_all(c.db, recs, order, N, 7);
    char hc[33];
    uint64_t nc;
    digest_of(c.db, hc, &nc);
    ck_assert_uint_eq(nc, N);
    ck_assert_str_eq(hc, ha);

    /* And the digest survives a reopen. */
    tdb_reopen(&a);
    digest_of(a.db, hb, &nb);
    ck_assert_str_eq(hb, ha);
    ck_assert_uint_eq(nb, N);

    tdb_close(&a);
    tdb_close(&b);
    tdb_close(&c);
    free(recs);
}
END_TEST

/* Each kind of change moves the digest; undoing it brings it back. */
START_TEST(test_any_change_changes_digest)
{
    enum { N = 40 };
    trec *recs = record_set(N);
    tdb t = tdb_open();
    put_all(t.db, recs, NULL, N, 4);
    char base[33], h[33];
    uint64_t n0, n;
    digest_of(t.db, base, &n0);
    ck_assert_uint_eq(n0, N);

    for (size_t i = 0; i < N; i++) {
        const trec *orig = &recs[i];
        trec m[6];
        size_t nm = 0;
        m[nm] = *orig; /* a payload byte */
        if (m[nm].payload[0]) {
            m[nm].payload[strlen(m[nm].payload) - 1] ^= 1;
            nm++;
        }
        m[nm] = *orig; /* the tombstone flag */
        m[nm++].tomb = !orig->tomb;
        m[nm] = *orig; /* the version's hlc */
        m[nm++].ver.hlc ^= 1;
        m[nm] = *orig; /* the version's origin */
        snprintf(m[nm++].ver.origin, STG_ORIGIN_MAX + 1, "%s",
                 strcmp(orig->ver.origin, "paris") ? "paris" : "pariz");
        m[nm] = *orig; /* the owner */
        m[nm++].owner[0] ^= 2;
        for (size_t j = 0; j < nm; j++) {
            put_one(t.db, &m[j], NULL);
            digest_of(t.db, h, &n);
            ck_assert_msg(strcmp(h, base) != 0, "record %zu, change %zu kept the digest", i, j);
            ck_assert_uint_eq(n, N);
            put_one(t.db, orig, NULL);
            digest_of(t.db, h, &n);
            ck_assert_str_eq(h, base);
        }
        /* A deleted record. */
        delete_one(t.db, orig);
        digest_of(t.db, h, &n);
        ck_assert_str_ne(h, base);
        ck_assert_uint_eq(n, N - 1);
        put_one(t.db, orig, NULL);
        digest_of(t.db, h, &n);
        ck_assert_str_eq(h, base);
        ck_assert_uint_eq(n, N);
    }

    /* An extra record. */
    trec extra = user_rec(9999, 77);
    put_one(t.db, &extra, NULL);
    digest_of(t.db, h, &n);
    ck_assert_str_ne(h, base);
    ck_assert_uint_eq(n, N + 1);
    delete_one(t.db, &extra);
    digest_of(t.db, h, &n);
    ck_assert_str_eq(h, base);

    tdb_close(&t);
    free(recs);
}
END_TEST

/* The running digest follows every committed batch -- new records,
 * overwrites, tombstones, several records a batch -- and nothing else:
 * a batch that is cleared, or written twice, changes it once or not at
 * all. It equals a scan at every step and after a reopen. */
START_TEST(test_running_digest_follows_writes)
{
    enum { KEYS = 24, STEPS = 300 };
    rng r = rng_seeded("running_digest", 7);
    trec *base = record_set(KEYS);
    tdb t = tdb_open();
    char hex[33], again[33];
    uint64_t n, n2;
    running_digest(t.db, hex, &n);
    ck_assert_uint_eq(n, 0);
    stg_batch *b = stg_batch_new(t.db);
    uint64_t hlc = 5000;
    for (int step = 0; step < STEPS; step++) {
        /* Up to 4 records of distinct keys: a batch stages a key once. */
        size_t first = rng_below(&r, KEYS), count = 1 + rng_below(&r, 4);
        for (size_t j = 0; j < count && first + j < KEYS; j++) {
            trec v = base[first + j];
            v.ver.hlc = ++hlc << 16;
            v.tomb = rng_below(&r, 4) == 0;
            if (v.tomb) v.payload[0] = '\0';
            stage_over(t.db, b, &v);
        }
        switch (rng_below(&r, 5)) {
        case 0: stg_batch_clear(b); break; /* given up: never committed */
        case 1:
            ck_assert_int_eq(stg_write(t.db, b), 0);
            ck_assert_int_eq(stg_write(t.db, b), 0); /* the same puts again */
            stg_batch_clear(b);
            break;
        default: ck_assert_int_eq(stg_write(t.db, b), 0); stg_batch_clear(b);
        }
        running_digest(t.db, hex, &n);
        ck_assert_uint_le(n, KEYS);
    }
    ck_assert_str_ne(hex, "00000000000000000000000000000000");
    stg_batch_free(b);
    tdb_reopen(&t);
    running_digest(t.db, again, &n2);
    ck_assert_str_eq(again, hex);
    ck_assert_uint_eq(n2, n);
    tdb_close(&t);
    free(base);
}
END_TEST

/* The same key and value under another kind is another record. */
START_TEST(test_kind_counts)
{
    tdb a = tdb_open(), b = tdb_open();
    trec u = user_rec(1, 5);
    put_one(a.db, &u, NULL);
    trec p = u;
    p.kind = STG_KIND_POST;
    put_one(b.db, &p, NULL);
    char ha[33], hb[33];
    uint64_t na, nb;
    digest_of(a.db, ha, &na);
    digest_of(b.db, hb, &nb);
    ck_assert_uint_eq(na, 1);
    ck_assert_uint_eq(nb, 1);
    ck_assert_str_ne(ha, hb);
    tdb_close(&a);
    tdb_close(&b);
}
END_TEST

/* ---- Derived indexes --------------------------------------------------------------------- */

START_TEST(test_follow_edges_update_followers)
{
    tdb t = tdb_open();
    const char *star = "star@paris";
    ck_assert_int_eq(stg_follower_count(t.db, star), 0);

    trec a = follow_rec("a@paris", star, false, 10, "paris");
    trec b = follow_rec("b@tokyo", star, false, 11, "tokyo");
    put_one(t.db, &a, NULL);
    put_one(t.db, &b, NULL);
    ck_assert(has_follower(t.db, star, "a@paris"));
    ck_assert(has_follower(t.db, star, "b@tokyo"));
    ck_assert_int_eq(stg_follower_count(t.db, star), 2);
    ck_assert_int_eq(stg_follower_count(t.db, "a@paris"), 0); /* counts are per followee */

    /* A newer live version of a live edge changes nothing derived. */
    trec a2 = a;
    a2.ver.hlc = 20;
    put_one(t.db, &a2, &a);
    ck_assert_int_eq(stg_follower_count(t.db, star), 2);

    /* Unfollow: the entry goes, the count drops, once. */
    trec a3 = tombstone_of(&a2);
    put_one(t.db, &a3, &a2);
    ck_assert(!has_follower(t.db, star, "a@paris"));
    ck_assert(has_follower(t.db, star, "b@tokyo"));
    ck_assert_int_eq(stg_follower_count(t.db, star), 1);
    trec a4 = a3;
    a4.ver.hlc++;
    put_one(t.db, &a4, &a3);
    ck_assert_int_eq(stg_follower_count(t.db, star), 1);

    /* Follow again. */
    trec a5 = a4;
    a5.tomb = false;
    a5.ver.hlc++;
    put_one(t.db, &a5, &a4);
    ck_assert(has_follower(t.db, star, "a@paris"));
    ck_assert_int_eq(stg_follower_count(t.db, star), 2);

    /* An edge that arrives as a tombstone never counted. */
    trec c = follow_rec("c@paris", star, true, 30, "paris");
    put_one(t.db, &c, NULL);
    ck_assert(!has_follower(t.db, star, "c@paris"));
    ck_assert_int_eq(stg_follower_count(t.db, star), 2);

    /* The count survives a reopen (merge operands are durable). */
    tdb_reopen(&t);
    ck_assert_int_eq(stg_follower_count(t.db, star), 2);

    /* The followers index lists exactly the live followers, in key order. */
    char prefix[STG_ID_MAX + 2];
    int pl = stg_key_join(prefix, sizeof prefix, star, strlen(star), NULL, 0);
    stg_iter *it = stg_iter_prefix(t.db, STG_CF_FOLLOWERS, prefix, (size_t)pl, false);
    const char *k, *who;
    size_t kl, nwho;
    const char *want[] = {"a@paris", "b@tokyo"};
    size_t seen = 0;
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) {
        ck_assert_int_eq(stg_key_split(k, kl, &who, &nwho), (int)strlen(star));
        ck_assert_uint_lt(seen, 2);
        ck_assert_uint_eq(nwho, strlen(want[seen]));
        ck_assert_mem_eq(who, want[seen], nwho);
        seen++;
    }
    ck_assert_int_eq(stg_iter_status(it), 0);
    stg_iter_free(it);
    ck_assert_uint_eq(seen, 2);
    tdb_close(&t);
}
END_TEST

START_TEST(test_post_tombstone_removes_profile_entry)
{
    tdb t = tdb_open();
    trec p1 = post_rec("alice@paris", 100 << 16, "paris", "one");
    trec p2 = post_rec("alice@paris", 101 << 16, "tokyo", "two");
    put_one(t.db, &p1, NULL);
    put_one(t.db, &p2, NULL);
    ck_assert(in_profile(t.db, &p1));
    ck_assert(in_profile(t.db, &p2));

    trec d1 = tombstone_of(&p1);
    put_one(t.db, &d1, &p1);
    ck_assert(!in_profile(t.db, &p1));
    ck_assert(in_profile(t.db, &p2));

    /* A post first seen as a tombstone never enters the profile. */
    trec p3 = post_rec("alice@paris", 102 << 16, "paris", "three");
    trec d3 = tombstone_of(&p3);
    put_one(t.db, &d3, NULL);
    ck_assert(!in_profile(t.db, &p3));

    /* The live-post count follows the profile: each post once, a
     * tombstone takes its post out, a post born a tombstone never counted,
     * another author counts apart; after a reopen it is counted again from
     * the profile alone (it is never written). */
    stg_counts c;
    trec q = post_rec("bob@tokyo", 103 << 16, "tokyo", "bob's");
    put_one(t.db, &q, NULL);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(stg_user_counts(t.db, "alice@paris", &c), 0);
        ck_assert_int_eq(c.posts, 1);
        ck_assert_int_eq(stg_user_counts(t.db, "bob@tokyo", &c), 0);
        ck_assert_int_eq(c.posts, 1);
        ck_assert_int_eq(stg_user_counts(t.db, "nobody@paris", &c), 0);
        ck_assert_int_eq(c.posts, 0);
        tdb_reopen(&t);
    }
    trec d2 = tombstone_of(&p2);
    put_one(t.db, &d2, &p2);
    ck_assert_int_eq(stg_user_counts(t.db, "alice@paris", &c), 0);
    ck_assert_int_eq(c.posts, 0);

    /* The stored record is the tombstone. */
    stg_record got;
    char *raw;
    ck_assert_int_eq(stg_record_load(t.db, STG_KIND_POST, p1.key, p1.keylen, &got, &raw), 0);
    ck_assert(got.tombstone);
    ck_assert_uint_eq(got.ver.hlc, d1.ver.hlc);
    ck_assert_int_eq(got.kind, STG_KIND_POST);
    free(raw);
    tdb_close(&t);
}
END_TEST

START_TEST(test_messages_keep_newest_in_conversation)
{
    tdb t = tdb_open();
    const char *alice = "alice@paris", *bob = "bob@tokyo", *carol = "carol@paris";
    trec m1 = message_rec(alice, bob, 100 << 16, "paris");
    trec m2 = message_rec(bob, alice, 100 << 16, "tokyo"); /* same hlc: origin decides */
    trec m3 = message_rec(alice, bob, 101 << 16, "paris");
    trec other = message_rec(carol, alice, 150 << 16, "paris");
    char id[STG_ID_MAX + 1];

    conv_latest(t.db, alice, bob, id);
    ck_assert_str_eq(id, "");
    put_one(t.db, &m2, NULL);
    conv_latest(t.db, alice, bob, id);
    ck_assert_str_eq(id, message_id(&m2));
    conv_latest(t.db, bob, alice, id);
    ck_assert_str_eq(id, message_id(&m2));

    /* An older message arriving later does not move the index back. */
    put_one(t.db, &m1, NULL);
    conv_latest(t.db, alice, bob, id);
    ck_assert_str_eq(id, message_id(&m2));
    conv_latest(t.db, bob, alice, id);
    ck_assert_str_eq(id, message_id(&m2));

    /* A newer one does, on both sides. */
    put_one(t.db, &m3, NULL);
    conv_latest(t.db, alice, bob, id);
    ck_assert_str_eq(id, message_id(&m3));
    conv_latest(t.db, bob, alice, id);
    ck_assert_str_eq(id, message_id(&m3));

    /* Conversations are separate. */
    put_one(t.db, &other, NULL);
    conv_latest(t.db, alice, carol, id);
    ck_assert_str_eq(id, message_id(&other));
    conv_latest(t.db, alice, bob, id);
    ck_assert_str_eq(id, message_id(&m3));
    conv_latest(t.db, bob, carol, id);
    ck_assert_str_eq(id, "");

    /* Each user's list by time holds each conversation once, at its latest. */
    char list[512], want[512];
    conv_list(t.db, alice, list, sizeof list);
    snprintf(want, sizeof want, "%s=%s,%s=%s", carol, message_id(&other), bob, message_id(&m3));
    ck_assert_str_eq(list, want);
    conv_list(t.db, bob, list, sizeof list);
    snprintf(want, sizeof want, "%s=%s", alice, message_id(&m3));
    ck_assert_str_eq(list, want);

    /* A store made before the list existed gets it built when opened. */
    stg_batch *b = stg_batch_new(t.db);
    stg_iter *it = stg_iter_range(t.db, STG_CF_CONV_TIMES, NULL, 0, NULL, 0, false);
    const char *k;
    size_t kl;
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) stg_batch_delete(b, STG_CF_CONV_TIMES, k, kl);
    ck_assert_int_eq(stg_iter_close(it), 0);
    stg_batch_delete(b, STG_CF_META, "conv_times_built", 16);
    ck_assert_int_eq(stg_write(t.db, b), 0);
    stg_batch_free(b);
    conv_list(t.db, alice, list, sizeof list);
    ck_assert_str_eq(list, "");
    tdb_reopen(&t);
    conv_list(t.db, alice, list, sizeof list);
    snprintf(want, sizeof want, "%s=%s,%s=%s", carol, message_id(&other), bob, message_id(&m3));
    ck_assert_str_eq(list, want);

    /* The message record itself is stored under the ordered key. */
    stg_record got;
    char *raw;
    ck_assert_int_eq(stg_record_load(t.db, STG_KIND_MESSAGE, m2.key, m2.keylen, &got, &raw), 0);
    ck_assert_uint_eq(got.ownerlen, strlen(bob));
    ck_assert_mem_eq(got.owner, bob, got.ownerlen);
    free(raw);
    tdb_close(&t);
}
END_TEST


/* ---- Merkle tree -------------------------------------------------------------------- */

/* Every node is the sum of its children, the root is a scan's digest, and
 * each leaf's entries are the records whose key falls in it. */
static bool count_entry(void *arg, stg_kind kind, const char *key, size_t klen,
                        const unsigned char *hash, uint64_t hlc)
{
    (void)hash;
    ck_assert_uint_ne(hlc, 0);
    uint32_t *leaf = arg;
    ck_assert_uint_eq(stg_tree_leaf(kind, key, klen), leaf[0]);
    leaf[1]++;
    return true;
}

static void check_tree(stg_db *db)
{
    static uint32_t idx[STG_TREE_LEAVES];
    static stg_digest_sum lv[STG_TREE_DEPTH + 1][STG_TREE_LEAVES];
    for (unsigned l = 0; l <= STG_TREE_DEPTH; l++) {
        uint32_t w = stg_tree_width(l);
        for (uint32_t i = 0; i < w; i++) idx[i] = i;
        ck_assert_int_eq(stg_tree_nodes(db, l, idx, w, lv[l]), 0);
    }
    for (unsigned l = 0; l < STG_TREE_DEPTH; l++)
        for (uint32_t i = 0; i < stg_tree_width(l); i++) {
            stg_digest_sum sum = {0};
            for (uint32_t c = 0; c < STG_TREE_FANOUT; c++)
                stg_digest_merge(&sum, &lv[l + 1][i * STG_TREE_FANOUT + c], 1);
            ck_assert(stg_digest_equal(&sum, &lv[l][i]));
        }
    stg_digest_sum scan;
    ck_assert_int_eq(stg_digest_scan(db, &scan), 0);
    ck_assert(stg_digest_equal(&scan, &lv[0][0]));
    for (uint32_t leaf = 0; leaf < STG_TREE_LEAVES; leaf++) {
        uint32_t arg[2] = {leaf, 0};
        ck_assert_int_eq(stg_tree_leaf_scan(db, leaf, count_entry, arg), 0);
        ck_assert_uint_eq(arg[1], lv[STG_TREE_DEPTH][leaf].records);
    }
}

START_TEST(test_tree_sums_follow_writes)
{
    tdb t = tdb_open();
    enum { N = 600 };
    trec *recs = record_set(N);
    put_all(t.db, recs, NULL, N, 16);
    check_tree(t.db);
    /* Overwrites and tombstones move sums, not counts. */
    for (size_t i = 0; i < N; i += 5) {
        trec d = tombstone_of(&recs[i]);
        stg_batch *b = stg_batch_new(t.db);
        stage_over(t.db, b, &d);
        ck_assert_int_eq(stg_write(t.db, b), 0);
        stg_batch_free(b);
    }
    check_tree(t.db);
    char before[33], after[33];
    uint64_t n;
    stg_digest(t.db, before, &n);
    ck_assert_uint_eq(n, N);
    tdb_reopen(&t);
    stg_digest(t.db, after, &n);
    ck_assert_str_eq(before, after);
    check_tree(t.db);
    free(recs);
    tdb_close(&t);
}
END_TEST

/* Two stores that differ in one record differ in one node of each level,
 * on the path to that record's leaf. */
START_TEST(test_tree_difference_is_one_path)
{
    tdb a = tdb_open(), b = tdb_open();
    enum { N = 400 };
    trec *recs = record_set(N);
    put_all(a.db, recs, NULL, N, 32);
    put_all(b.db, recs, NULL, N, 7);
    const trec *lost = &recs[123];
    ck_assert_int_eq(stg_record_drop(b.db, lost->kind, lost->key, lost->keylen), 0);
    ck_assert_int_eq(stg_record_drop(b.db, lost->kind, lost->key, lost->keylen), DF_ENOTFOUND);
    check_tree(b.db);
    uint32_t leaf = stg_tree_leaf(lost->kind, lost->key, lost->keylen);
    static uint32_t idx[STG_TREE_LEAVES];
    static stg_digest_sum na[STG_TREE_LEAVES], nb[STG_TREE_LEAVES];
    for (unsigned l = 0; l <= STG_TREE_DEPTH; l++) {
        uint32_t w = stg_tree_width(l);
        for (uint32_t i = 0; i < w; i++) idx[i] = i;
        ck_assert_int_eq(stg_tree_nodes(a.db, l, idx, w, na), 0);
        ck_assert_int_eq(stg_tree_nodes(b.db, l, idx, w, nb), 0);
        for (uint32_t i = 0; i < w; i++) {
            bool on_path = i == leaf >> (4 * (STG_TREE_DEPTH - l));
            ck_assert_int_eq(!stg_digest_equal(&na[i], &nb[i]), on_path);
        }
    }
    uint32_t bad = STG_TREE_LEAVES;
    ck_assert_int_eq(stg_tree_nodes(a.db, STG_TREE_DEPTH, &bad, 1, na), DF_EINVAL);
    ck_assert_int_eq(stg_tree_nodes(a.db, STG_TREE_DEPTH + 1, idx, 1, na), DF_EINVAL);
    /* Putting it back makes them equal again. */
    put_one(b.db, lost, NULL);
    char ha[33], hb[33];
    uint64_t ca, cb;
    stg_digest(a.db, ha, &ca);
    stg_digest(b.db, hb, &cb);
    ck_assert_str_eq(ha, hb);
    free(recs);
    tdb_close(&a);
    tdb_close(&b);
}
END_TEST

/* A store written before the tree existed gets its entries at open. */
START_TEST(test_tree_built_for_older_store)
{
    tdb t = tdb_open();
    enum { N = 300 };
    trec *recs = record_set(N);
    put_all(t.db, recs, NULL, N, 10);
    char want[33], got[33];
    uint64_t n;
    stg_digest(t.db, want, &n);
    /* What an older store looks like: no tree family entries, no mark. */
    stg_batch *b = stg_batch_new(t.db);
    stg_iter *it = stg_iter_range(t.db, STG_CF_TREE, NULL, 0, NULL, 0, false);
    const char *k, *v;
    size_t kl, vl;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) stg_batch_delete(b, STG_CF_TREE, k, kl);
    ck_assert_int_eq(stg_iter_close(it), 0);
    stg_batch_delete(b, STG_CF_META, "tree_built", strlen("tree_built"));
    ck_assert_int_eq(stg_write(t.db, b), 0);
    stg_batch_free(b);
    tdb_reopen(&t);
    stg_digest(t.db, got, &n);
    ck_assert_str_eq(got, want);
    ck_assert_uint_eq(n, N);
    check_tree(t.db);
    free(recs);
    tdb_close(&t);
}
END_TEST

/* Tombstone GC: only a tombstone older than the bound goes, with its tree
 * entry and its share of the sums. */
START_TEST(test_purge_takes_only_old_tombstones)
{
    tdb t = tdb_open();
    trec live = post_rec("u1@paris", (uint64_t)5000 << 16, "paris", "stays");
    trec old = post_rec("u2@paris", (uint64_t)6000 << 16, "paris", "deleted");
    trec young = post_rec("u3@paris", (uint64_t)9000 << 16, "paris", "deleted later");
    put_one(t.db, &live, NULL);
    put_one(t.db, &old, NULL);
    put_one(t.db, &young, NULL);
    trec old_d = tombstone_of(&old), young_d = tombstone_of(&young);
    put_one(t.db, &old_d, &old);
    put_one(t.db, &young_d, &young);
    ck_assert_int_eq(stg_record_purge(t.db, live.kind, live.key, live.keylen, 8000), 0);
    ck_assert_int_eq(stg_record_purge(t.db, young.kind, young.key, young.keylen, 8000), 0);
    ck_assert_int_eq(stg_record_purge(t.db, old.kind, old.key, old.keylen, 8000), 1);
    ck_assert_int_eq(stg_record_purge(t.db, old.kind, old.key, old.keylen, 8000), 0); /* gone */
    ck_assert(!exists(t.db, STG_CF_POSTS, old.key, old.keylen));
    ck_assert(exists(t.db, STG_CF_POSTS, young.key, young.keylen));
    char hex[33];
    uint64_t n;
    stg_digest(t.db, hex, &n);
    ck_assert_uint_eq(n, 2);
    check_tree(t.db);
    tdb_close(&t);
}
END_TEST

static Suite *digest_suite(void)
{
    Suite *s = suite_create("storage/digest");
    TCase *tc = tcase_create("digest");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_empty_database);
    tcase_add_test(tc, test_equal_sets_equal_digests);
    tcase_add_test(tc, test_any_change_changes_digest);
    tcase_add_test(tc, test_kind_counts);
    tcase_add_test(tc, test_running_digest_follows_writes);
    suite_add_tcase(s, tc);
    TCase *idx = tcase_create("derived indexes");
    tcase_set_timeout(idx, 60);
    tcase_add_test(idx, test_follow_edges_update_followers);
    tcase_add_test(idx, test_post_tombstone_removes_profile_entry);
    tcase_add_test(idx, test_messages_keep_newest_in_conversation);
    suite_add_tcase(s, idx);
    TCase *tree = tcase_create("tree");
    tcase_set_timeout(tree, 60);
    tcase_add_test(tree, test_tree_sums_follow_writes);
    tcase_add_test(tree, test_tree_difference_is_one_path);
    tcase_add_test(tree, test_tree_built_for_older_store);
    tcase_add_test(tree, test_purge_takes_only_old_tombstones);
    suite_add_tcase(s, tree);
    return s;
}

int main(void) { return unit_run(digest_suite()); }
