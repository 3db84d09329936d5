/* test_lww.c -- replication/engine.c: last-write-wins apply of remote
 * records, checked against a sort-based model, the per-origin cursor, and
 * local writes racing remote ones. A real RocksDB, a feed that is not
 * started, and an engine for region "paris" with peer "tokyo" and no Redis
 * (so no threads). */
#include "../unit.h"
#include "repl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

typedef struct region {
    char *dir;
    stg_db *db;
    feed *fd;
    repl *r;
    size_t applied_events; /* listener calls for remote records */
    size_t local_events; /* listener calls for local writes */
} region;

static void on_commit(void *arg, const stg_event *ev)
{
    region *g = arg;
    if (ev->type != STG_EVENT_COMMIT) return;
    if (!ev->origin)
        g->local_events++;
    else
        g->applied_events++;
}

static void engine_open(region *g)
{
    repl_config cfg = {.region = "paris", .npeers = 1, .peers = {"tokyo"}};
    ck_assert_int_eq(repl_open(&g->r, g->db, g->fd, &cfg), 0);
}

static void region_open(region *g)
{
    memset(g, 0, sizeof *g);
    g->dir = unit_mkdtemp();
    ck_assert_int_eq(stg_open(g->dir, NULL, &g->db), 0);
    feed_config fc = {.workers = 1};
    ck_assert_int_eq(feed_open(&g->fd, g->db, &fc), 0);
    stg_subscribe(g->db, on_commit, g);
    engine_open(g);
}

static void region_close(region *g)
{
    repl_close(g->r);
    feed_close(g->fd);
    stg_close(g->db);
    unit_rmtree(g->dir);
}

/* One candidate record for a key, owning its bytes. */
typedef struct cand {
    int key; /* index into the key table */
    bool tomb;
    stg_version ver;
    char payload[48];
} cand;

typedef struct tkey {
    stg_kind kind;
    char key[2 * STG_ID_MAX + 2];
    size_t keylen;
    char owner[STG_ID_MAX + 1];
} tkey;

static stg_record cand_record(const tkey *keys, const cand *c)
{
    const tkey *k = &keys[c->key];
    stg_record rec = {.kind = k->kind,
                      .tombstone = c->tomb,
                      .ver = c->ver,
                      .key = k->key,
                      .keylen = k->keylen,
                      .owner = k->owner,
                      .ownerlen = strlen(k->owner),
                      .payload = c->payload,
                      .paylen = strlen(c->payload)};
    return rec;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return stg_version_cmp(&x->ver, &y->ver);
}

/* A table of keys of three kinds: users, follow edges (all following
 * "star@paris"), posts (all by "author@tokyo"). */
static void make_keys(tkey *keys, int nkeys, int round)
{
    for (int i = 0; i < nkeys; i++) {
        tkey *k = &keys[i];
        memset(k, 0, sizeof *k);
        switch (i % 3) {
        case 0:
            k->kind = STG_KIND_USER;
            k->keylen = (size_t)snprintf(k->owner, sizeof k->owner, "u%d_%d@tokyo", round, i);
            memcpy(k->key, k->owner, k->keylen);
            break;
        case 1:
            k->kind = STG_KIND_FOLLOW;
            snprintf(k->owner, sizeof k->owner, "f%d_%d@tokyo", round, i);
            k->keylen = (size_t)stg_key_join(k->key, sizeof k->key, k->owner, strlen(k->owner),
                                             "star@paris", 10);
            break;
        case 2: {
            k->kind = STG_KIND_POST;
            stg_version v = {.hlc = ((uint64_t)(round * 100 + i) << 16) | 1, .origin = "tokyo"};
            stg_make_id(k->key, &v);
            k->keylen = strlen(k->key);
            snprintf(k->owner, sizeof k->owner, "author@tokyo");
            break;
        }
        }
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

static uint64_t cursor_of(stg_db *db, const char *origin)
{
    char name[64];
    snprintf(name, sizeof name, "applied:%s", origin);
    uint64_t v = 0;
    ck_assert_int_eq(stg_meta_get_u64(db, name, &v), 0);
    return v;
}

static void assert_stored(stg_db *db, const tkey *k, const stg_record *want)
{
    stg_record got;
    char *raw;
    ck_assert_int_eq(stg_record_load(db, k->kind, k->key, k->keylen, &got, &raw), 0);
    ck_assert_int_eq(got.tombstone, want->tombstone);
    ck_assert_uint_eq(got.ver.hlc, want->ver.hlc);
    ck_assert_str_eq(got.ver.origin, want->ver.origin);
    ck_assert_uint_eq(got.paylen, want->paylen);
    ck_assert_mem_eq(got.payload, want->payload, want->paylen);
    ck_assert_uint_eq(got.ownerlen, want->ownerlen);
    ck_assert_mem_eq(got.owner, want->owner, want->ownerlen);
    free(raw);
}

static const uint64_t YEAR_MS = 365ull * 86400 * 1000;

/* ---- LWW against a model ------------------------------------------------------------------ */

enum { NKEYS = 9, PER_KEY = 8, ROUNDS = 6 };

/* The region's running digest, checked against a scan of its records. */
static void digest_checked(stg_db *db, char hex[33], uint64_t *n)
{
    stg_digest_sum scan;
    uint64_t records;
    char scanned[33];
    stg_digest(db, hex, &records);
    ck_assert_int_eq(stg_digest_scan(db, &scan), 0);
    stg_digest_hex(&scan, scanned);
    ck_assert_str_eq(hex, scanned);
    ck_assert_uint_eq(records, scan.records);
    if (n) *n = records;
}

START_TEST(test_apply_matches_sort_model)
{
    static const char *origins[] = {"tokyo", "newyork", "berlin", "a"};
    rng r = rng_seeded("lww_model", 61);
    region g;
    region_open(&g);
    uint64_t seq = 0;
    int64_t live_follows = 0;
    size_t expected_events = 0;

    for (int round = 0; round < ROUNDS; round++) {
        tkey keys[NKEYS];
        make_keys(keys, NKEYS, round);

        /* PER_KEY candidates per key with distinct versions: hlcs from a
         * narrow range, so equal hlcs (origin decides) are common. */
        cand cands[NKEYS * PER_KEY];
        size_t nc = 0;
        for (int k = 0; k < NKEYS; k++) {
            for (int j = 0; j < PER_KEY; j++) {
                cand *c = &cands[nc];
                bool dup;
                do {
                    memset(c, 0, sizeof *c);
                    c->key = k;
                    c->ver.hlc = (1000 + rng_below(&r, 4)) << 16 | rng_below(&r, 2);
                    snprintf(c->ver.origin, sizeof c->ver.origin, "%s", origins[rng_below(&r, 4)]);
                    dup = false;
                    for (size_t m = nc - (size_t)j; m < nc; m++)
                        dup = dup || stg_version_cmp(&cands[m].ver, &c->ver) == 0;
                } while (dup);
                c->tomb = rng_below(&r, 3) == 0;
                if (c->tomb)
                    c->payload[0] = '\0';
                else
                    snprintf(c->payload, sizeof c->payload, "{\"k\":%d,\"j\":%d}", k, j);
                nc++;
            }
        }
        /* The apply sequence: every candidate once, plus duplicates, shuffled. */
        size_t order[NKEYS * PER_KEY * 2], n = 0;
        for (size_t i = 0; i < nc; i++) order[n++] = i;
        for (size_t i = 0; i < nc / 2; i++) order[n++] = rng_below(&r, nc);
        for (size_t i = n; i > 1; i--) {
            size_t j = rng_below(&r, i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }

        /* Apply, checking each answer against the running maximum. */
        const cand *best[NKEYS] = {0};
        for (size_t i = 0; i < n; i++) {
            const cand *c = &cands[order[i]];
            stg_record rec = cand_record(keys, c);
            bool newer = !best[c->key] || stg_version_cmp(&c->ver, &best[c->key]->ver) > 0;
            int rc = repl_apply(g.r, "tokyo", ++seq, &rec);
            ck_assert_msg(rc == (newer ? 1 : 0), "round %d, apply %zu: got %d", round, i, rc);
            if (newer) {
                best[c->key] = c;
                expected_events++;
            }
            ck_assert_uint_eq(cursor_of(g.db, "tokyo"), seq);
        }

        /* The model: sort the candidates, the last of each key wins. */
        qsort(cands, nc, sizeof cands[0], cand_cmp);
        for (int k = 0; k < NKEYS; k++) {
            const cand *win = &cands[(size_t)k * PER_KEY + PER_KEY - 1];
            ck_assert_int_eq(win->key, k);
            stg_record want = cand_record(keys, win);
            assert_stored(g.db, &keys[k], &want);
            /* Derived indexes follow the winner. */
            if (keys[k].kind == STG_KIND_FOLLOW) {
                char fk[2 * STG_ID_MAX + 2];
                int fl = stg_key_join(fk, sizeof fk, "star@paris", 10, keys[k].owner,
                                      strlen(keys[k].owner));
                ck_assert_int_eq(exists(g.db, STG_CF_FOLLOWERS, fk, (size_t)fl), !win->tomb);
                live_follows += !win->tomb;
            } else if (keys[k].kind == STG_KIND_POST) {
                char pk[2 * STG_ID_MAX + 2];
                int pl = stg_key_join(pk, sizeof pk, keys[k].owner, strlen(keys[k].owner),
                                      keys[k].key, keys[k].keylen);
                ck_assert_int_eq(exists(g.db, STG_CF_PROFILE, pk, (size_t)pl), !win->tomb);
            }
        }
        ck_assert_int_eq(stg_follower_count(g.db, "star@paris"), live_follows);
    }

    repl_status st;
    repl_get_status(g.r, &st);
    ck_assert_uint_eq(st.npeers, 1);
    ck_assert_str_eq(st.peers[0].name, "tokyo");
    ck_assert_uint_eq(st.peers[0].applied_seq, seq);
    ck_assert_uint_eq(st.peers[0].applied_total, seq);
    ck_assert_uint_eq(st.seq, 0); /* applying writes nothing to our own outbox */
    ck_assert_uint_eq(g.applied_events, expected_events);
    ck_assert_uint_eq(g.local_events, 0);

    /* The cursor survives a restart of the engine. */
    repl_close(g.r);
    engine_open(&g);
    repl_get_status(g.r, &st);
    ck_assert_uint_eq(st.peers[0].applied_seq, seq);
    region_close(&g);
}
END_TEST

/* Two regions that apply the same records in different orders converge:
 * equal digests. */
START_TEST(test_apply_order_does_not_matter)
{
    rng r = rng_seeded("lww_converge", 62);
    region a, b;
    region_open(&a);
    region_open(&b);
    tkey keys[NKEYS];
    make_keys(keys, NKEYS, 0);
    cand cands[NKEYS * PER_KEY];
    size_t nc = 0;
    for (int k = 0; k < NKEYS; k++)
        for (int j = 0; j < PER_KEY; j++, nc++) {
            memset(&cands[nc], 0, sizeof cands[nc]);
            cands[nc].key = k;
            cands[nc].ver.hlc = ((uint64_t)(2000 + j) << 16) | rng_below(&r, 5);
            snprintf(cands[nc].ver.origin, sizeof cands[nc].ver.origin, "tokyo");
            cands[nc].tomb = rng_below(&r, 2);
            snprintf(cands[nc].payload, sizeof cands[nc].payload, "{\"j\":%d}", j);
        }
    for (size_t i = 0; i < nc; i++) {
        stg_record rec = cand_record(keys, &cands[i]);
        ck_assert_int_ge(repl_apply(a.r, "tokyo", i + 1, &rec), 0);
    }
    for (size_t i = 0; i < nc; i++) {
        stg_record rec = cand_record(keys, &cands[nc - 1 - i]); /* newest first */
        ck_assert_int_ge(repl_apply(b.r, "tokyo", i + 1, &rec), 0);
    }
    char ha[33], hb[33];
    uint64_t na, nb;
    digest_checked(a.db, ha, &na);
    digest_checked(b.db, hb, &nb);
    ck_assert_uint_eq(na, NKEYS);
    ck_assert_uint_eq(nb, NKEYS);
    ck_assert_str_eq(ha, hb);
    ck_assert_int_eq(stg_follower_count(a.db, "star@paris"),
                     stg_follower_count(b.db, "star@paris"));
    region_close(&a);
    region_close(&b);
}
END_TEST

/* Records applied in batches (repl_applier; keys repeating within a batch,
 * so the batch must commit before a key's second record) end in the same
 * state as one at a time, with the same answers and events. */
START_TEST(test_batched_apply_matches_one_by_one)
{
    rng r = {0xba7c4};
    region a, b;
    region_open(&a);
    region_open(&b);
    tkey keys[NKEYS];
    make_keys(keys, NKEYS, 0);
    enum { N = 200 };
    cand cands[N];
    for (size_t i = 0; i < N; i++) {
        memset(&cands[i], 0, sizeof cands[i]);
        cands[i].key = (int)rng_below(&r, NKEYS);
        cands[i].ver.hlc = ((uint64_t)(3000 + rng_below(&r, 50)) << 16) | rng_below(&r, 5);
        snprintf(cands[i].ver.origin, sizeof cands[i].ver.origin, "tokyo");
        cands[i].tomb = rng_below(&r, 3) == 0;
        snprintf(cands[i].payload, sizeof cands[i].payload, "{\"i\":%zu}", i);
    }
    repl_applier *ap = repl_applier_new(a.r, "tokyo");
    for (size_t i = 0; i < N; i++) {
        stg_record rec = cand_record(keys, &cands[i]);
        int batched = repl_applier_add(ap, i + 1, &rec);
        int single = repl_apply(b.r, "tokyo", i + 1, &rec);
        ck_assert_int_eq(batched, single);
        if (i % 37 == 36) ck_assert_int_eq(repl_applier_commit(ap), 0);
    }
    ck_assert_int_eq(repl_applier_commit(ap), 0);
    repl_applier_free(ap);
    char ha[33], hb[33];
    digest_checked(a.db, ha, NULL);
    digest_checked(b.db, hb, NULL);
    ck_assert_str_eq(ha, hb);
    ck_assert_uint_eq(cursor_of(a.db, "tokyo"), N);
    ck_assert_uint_eq(a.applied_events, b.applied_events);
    ck_assert_int_eq(stg_follower_count(a.db, "star@paris"),
                     stg_follower_count(b.db, "star@paris"));
    region_close(&a);
    region_close(&b);
}
END_TEST

/* Lock sets: a stripe another thread holds is DF_EBUSY (a set never waits
 * for one while it holds another), a stripe the set holds DF_EHELD (the
 * same key again), and a full set DF_EBUSY. */
typedef struct holder {
    stg_db *db;
    const char *key;
    size_t keylen;
    pthread_barrier_t locked, release;
} holder;

static void *hold_stripe(void *arg)
{
    holder *h = arg;
    stg_lock(h->db, h->key, h->keylen);
    pthread_barrier_wait(&h->locked);
    pthread_barrier_wait(&h->release);
    stg_unlock(h->db, h->key, h->keylen);
    return NULL;
}

START_TEST(test_lockset_busy_and_repeated_stripes)
{
    region g;
    region_open(&g);
    holder h = {.db = g.db, .key = "busy", .keylen = 4};
    pthread_barrier_init(&h.locked, NULL, 2);
    pthread_barrier_init(&h.release, NULL, 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold_stripe, &h), 0);
    pthread_barrier_wait(&h.locked);
    stg_lockset *s = stg_lockset_new(g.db);
    ck_assert_int_eq(stg_lockset_add(s, "mine", 4), 0);
    ck_assert_int_eq(stg_lockset_add(s, "mine", 4), DF_EHELD);
    ck_assert_int_eq(stg_lockset_add(s, "busy", 4), DF_EBUSY);
    stg_lockset_release(s);
    ck_assert_int_eq(stg_lockset_add(s, "mine", 4), 0); /* released, and taken again */
    stg_lockset_free(s);
    pthread_barrier_wait(&h.release);
    pthread_join(t, NULL);
    /* Full: STG_LOCKSET_MAX stripes, then DF_EBUSY whatever the key. */
    s = stg_lockset_new(g.db);
    char key[16];
    int taken = 0;
    for (int i = 0; taken < STG_LOCKSET_MAX; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int rc = stg_lockset_add(s, key, strlen(key));
        ck_assert(rc == 0 || rc == DF_EHELD);
        taken += rc == 0;
    }
    for (int i = 0, busy = 0; busy < 3; i++) {
        snprintf(key, sizeof key, "k%d", i + 100000);
        int rc = stg_lockset_add(s, key, strlen(key));
        ck_assert(rc == DF_EBUSY || rc == DF_EHELD);
        busy += rc == DF_EBUSY;
    }
    stg_lockset_free(s);
    pthread_barrier_destroy(&h.locked);
    pthread_barrier_destroy(&h.release);
    region_close(&g);
}
END_TEST

START_TEST(test_stale_apply_only_moves_cursor)
{
    region g;
    region_open(&g);
    tkey keys[3];
    make_keys(keys, 3, 0);
    cand newer = {.key = 0, .ver = {.hlc = 500 << 16, .origin = "tokyo"}, .payload = "{\"v\":2}"};
    cand older = {.key = 0, .ver = {.hlc = 499 << 16, .origin = "tokyo"}, .payload = "{\"v\":1}"};
    stg_record rn = cand_record(keys, &newer), ro = cand_record(keys, &older);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 7, &rn), 1);
    char before[33], after[33];
    digest_checked(g.db, before, NULL);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 8, &ro), 0);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 9, &rn), 0); /* the same record again */
    digest_checked(g.db, after, NULL);
    ck_assert_str_eq(before, after);
    assert_stored(g.db, &keys[0], &rn);
    ck_assert_uint_eq(cursor_of(g.db, "tokyo"), 9);
    ck_assert_uint_eq(g.applied_events, 1);
    region_close(&g);
}
END_TEST

/* Every version of a key belongs to whoever made it: a newer record with
 * another owner is refused (DF_EPERM), changes nothing and moves no cursor. */
START_TEST(test_owner_of_a_key_never_changes)
{
    region g;
    region_open(&g);
    tkey keys[3];
    make_keys(keys, 3, 0);
    cand first = {.key = 2, .ver = {.hlc = (1000ull << 16), .origin = "tokyo"}, .payload = "{}"};
    stg_record r1 = cand_record(keys, &first);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 1, &r1), 1);
    cand later = first;
    later.ver.hlc += 1 << 16;
    later.tomb = true;
    stg_record r2 = cand_record(keys, &later);
    r2.owner = "mallory@tokyo";
    r2.ownerlen = strlen(r2.owner);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 2, &r2), DF_EPERM);
    assert_stored(g.db, &keys[2], &r1);
    ck_assert_uint_eq(cursor_of(g.db, "tokyo"), 1);
    /* The owner's own tombstone goes through. */
    stg_record r3 = cand_record(keys, &later);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 2, &r3), 1);
    assert_stored(g.db, &keys[2], &r3);
    region_close(&g);
}
END_TEST

/* ---- Local writes after remote ones ------------------------------------------------------- */

START_TEST(test_local_write_beats_far_future_remote)
{
    region g;
    region_open(&g);
    tkey keys[3];
    make_keys(keys, 3, 0);
    uint64_t remote_hlc = ((df_now_ms() + 10 * YEAR_MS) << 16) | 3;
    cand far = {.key = 0, .ver = {.hlc = remote_hlc, .origin = "tokyo"}, .payload = "{\"far\":1}"};
    stg_record rf = cand_record(keys, &far);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 1, &rf), 1);
    ck_assert_uint_gt(repl_hlc_peek(repl_clock(g.r)), remote_hlc);

    /* A local write of the same record, unstamped: it must win. */
    stg_record local = rf;
    memset(&local.ver, 0, sizeof local.ver);
    local.payload = "{\"local\":1}";
    local.paylen = strlen(local.payload);
    ck_assert_int_eq(repl_write(g.r, &local, NULL), 0);
    ck_assert_uint_gt(local.ver.hlc, remote_hlc);
    ck_assert_str_eq(local.ver.origin, "paris");
    assert_stored(g.db, &keys[0], &local);

    /* The remote record arriving again changes nothing. */
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 2, &rf), 0);
    assert_stored(g.db, &keys[0], &local);

    /* A write to a fresh key is stamped after the remote value too. */
    stg_record fresh = cand_record(keys, &far);
    fresh.kind = keys[1].kind;
    fresh.key = keys[1].key;
    fresh.keylen = keys[1].keylen;
    fresh.owner = keys[1].owner;
    fresh.ownerlen = strlen(keys[1].owner);
    memset(&fresh.ver, 0, sizeof fresh.ver);
    ck_assert_int_eq(repl_write(g.r, &fresh, NULL), 0);
    ck_assert_uint_gt(fresh.ver.hlc, local.ver.hlc);

    /* Both local writes went to the outbox, in order. */
    repl_status st;
    repl_get_status(g.r, &st);
    ck_assert_uint_eq(st.seq, 2);
    ck_assert_uint_eq(st.outbox_depth, 2);
    ck_assert_uint_eq(g.local_events, 2);
    for (uint64_t s = 1; s <= 2; s++) {
        char k[8], *v;
        size_t vl;
        stg_key_u64(k, s);
        ck_assert_int_eq(stg_get(g.db, STG_CF_OUTBOX, k, 8, &v, &vl), 0);
        stg_record out;
        ck_assert_int_eq(repl_record_decode(v, vl, &out), 0);
        ck_assert_uint_eq(out.ver.hlc, s == 1 ? local.ver.hlc : fresh.ver.hlc);
        free(v);
    }

    /* The clock mark was persisted past the remote value, so a restarted
     * engine (even with a clock far behind) still stamps after it. */
    uint64_t mark = 0;
    ck_assert_int_eq(stg_meta_get_u64(g.db, "hlc_mark", &mark), 0);
    ck_assert_uint_gt(mark, repl_hlc_ms(fresh.ver.hlc));
    repl_close(g.r);
    engine_open(&g);
    ck_assert_uint_gt(repl_hlc_tick(repl_clock(g.r)), fresh.ver.hlc);
    region_close(&g);
}
END_TEST

/* A local write carrying a version not newer than the stored one is
 * refused and changes nothing. */
START_TEST(test_local_write_with_stale_version)
{
    region g;
    region_open(&g);
    tkey keys[3];
    make_keys(keys, 3, 0);
    cand c = {.key = 0, .ver = {.hlc = 900 << 16, .origin = "tokyo"}, .payload = "{\"r\":1}"};
    stg_record remote = cand_record(keys, &c);
    ck_assert_int_eq(repl_apply(g.r, "tokyo", 1, &remote), 1);
    stg_record local = remote;
    local.ver.hlc = 800 << 16; /* preset, older */
    snprintf(local.ver.origin, sizeof local.ver.origin, "paris");
    local.payload = "{\"l\":1}";
    local.paylen = 7;
    ck_assert_int_eq(repl_write(g.r, &local, NULL), DF_ESTALE);
    assert_stored(g.db, &keys[0], &remote);
    repl_status st;
    repl_get_status(g.r, &st);
    ck_assert_uint_eq(st.seq, 0);
    region_close(&g);
}
END_TEST

static Suite *lww_suite(void)
{
    Suite *s = suite_create("replication/lww");
    TCase *tc = tcase_create("apply");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_apply_matches_sort_model);
    tcase_add_test(tc, test_apply_order_does_not_matter);
    tcase_add_test(tc, test_stale_apply_only_moves_cursor);
    tcase_add_test(tc, test_batched_apply_matches_one_by_one);
    tcase_add_test(tc, test_lockset_busy_and_repeated_stripes);
    tcase_add_test(tc, test_owner_of_a_key_never_changes);
    tcase_add_test(tc, test_local_write_beats_far_future_remote);
    tcase_add_test(tc, test_local_write_with_stale_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    df_log_set_level(DF_LOG_WARN); /* the feed announces every large account */
    return unit_run(lww_suite());
}
