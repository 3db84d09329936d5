/* test_home.c -- feed/home.c: the home key encoding (a forward scan must
 * yield the newest post first, prefix-related ids included), home floors
 * (they only rise), the compaction sweep below them and the upgrade from
 * the first key format. */
#include "../unit.h"
#include "../../../feed/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *origins[] = {"a", "ab", "eu", "eu2", "paris", "tokyo", "newyork"};

/* A post id whose HLC comes from a small range, so equal HLCs (ids that
 * differ only by origin, some a prefix of another) are common. */
static void random_id(rng *r, char out[STG_ID_MAX + 1])
{
    stg_version v = {.hlc = 0x01a2000000000000ull + rng_below(r, 8)};
    snprintf(v.origin, sizeof v.origin, "%s", origins[rng_below(r, 7)]);
    stg_make_id(out, &v);
}

START_TEST(test_key_round_trip_and_order)
{
    rng r = rng_seeded("key_order", 31);
    char a[STG_ID_MAX + 1], b[STG_ID_MAX + 1], back[STG_ID_MAX + 1];
    char ka[HOME_KEYCAP], kb[HOME_KEYCAP];
    for (int i = 0; i < 20000; i++) {
        random_id(&r, a);
        random_id(&r, b);
        int la = feed_home_key(ka, sizeof ka, "u@paris", a, strlen(a));
        int lb = feed_home_key(kb, sizeof kb, "u@paris", b, strlen(b));
        ck_assert_int_gt(la, 0);
        ck_assert_int_gt(lb, 0);
        ck_assert_int_eq(feed_home_key_id(ka, (size_t)la, back), (int)strlen(a));
        ck_assert_str_eq(back, a);
        ck_assert_ptr_null(memchr(ka + 8, '\0', (size_t)la - 8)); /* one separator only */
        int want = -unit_sign(unit_bytes_cmp(a, strlen(a), b, strlen(b)));
        ck_assert_msg(unit_sign(unit_bytes_cmp(ka, (size_t)la, kb, (size_t)lb)) == want,
                      "keys of %s and %s are not in reverse id order", a, b);
    }
}
END_TEST

START_TEST(test_key_rejects)
{
    char k[HOME_KEYCAP], id[STG_ID_MAX + 1], big[STG_ID_MAX + 2];
    ck_assert_int_eq(feed_home_key(k, sizeof k, "u@paris", "", 0), -1);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(feed_home_key(k, sizeof k, "u@paris", big, strlen(big)), -1);
    ck_assert_int_eq(feed_home_key(k, 10, "u@paris", "01a2-paris", 10), -1);
    /* The first format (user \0 post id) and bare prefixes are not home keys. */
    const char old[] = "u@paris\0"
                       "01a2000000000001-paris";
    ck_assert_int_eq(feed_home_key_id(old, sizeof old - 1, id), -1);
    ck_assert_int_eq(feed_home_key_id("u@paris\0", 8, id), -1);
    ck_assert_int_eq(feed_home_key_id("u@paris", 7, id), -1);
}
END_TEST

typedef struct world {
    char *dir;
    stg_db *db;
    feed *fd;
} world;

static void world_open(world *w)
{
    feed_config fc = {.workers = 1};
    ck_assert_int_eq(stg_open(w->dir, NULL, &w->db), 0);
    ck_assert_int_eq(feed_open(&w->fd, w->db, &fc), 0);
}

static void world_close(world *w)
{
    feed_close(w->fd);
    stg_close(w->db);
}

static int count_home(stg_db *db, int *old)
{
    stg_iter *it = stg_iter_range(db, STG_CF_HOME, NULL, 0, NULL, 0, false);
    const char *k;
    size_t kl;
    char id[STG_ID_MAX + 1];
    int n = 0;
    *old = 0;
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) {
        n++;
        if (feed_home_key_id(k, kl, id) < 0) (*old)++;
    }
    stg_iter_free(it);
    return n;
}

START_TEST(test_floors_only_rise)
{
    world w = {.dir = unit_mkdtemp()};
    world_open(&w);
    char out[STG_ID_MAX + 1];
    ck_assert(!feed_home_floor(w.fd, "u@paris", out));
    stg_batch *b = stg_batch_new(w.db);
    ck_assert_int_eq(feed_write_with_floor(w.fd, b, "u@paris", "01a2000000000005-paris"), 0);
    stg_batch_clear(b);
    ck_assert_int_eq(feed_write_with_floor(w.fd, b, "u@paris", "01a2000000000003-paris"), 0);
    stg_batch_clear(b);
    ck_assert_int_eq(feed_write_with_floor(w.fd, b, "u@paris", NULL), 0);
    stg_batch_free(b);
    ck_assert(feed_home_floor(w.fd, "u@paris", out));
    ck_assert_str_eq(out, "01a2000000000005-paris");
    ck_assert(!feed_home_floor(w.fd, "v@paris", out)); /* floors are per user */
    world_close(&w);
    unit_rmtree(w.dir);
}
END_TEST

START_TEST(test_upgrade_drops_first_format)
{
    world w = {.dir = unit_mkdtemp()};
    /* A database written before the home key encoding: old home entries and
     * posts, no format mark. */
    ck_assert_int_eq(stg_open(w.dir, NULL, &w.db), 0);
    stg_batch *b = stg_batch_new(w.db);
    const char *posts[] = {"01a2000000000001-paris", "01a2000000000007-tokyo",
                           "01a2000000000004-paris"};
    for (int i = 0; i < 3; i++) {
        char k[2 * STG_ID_MAX + 2];
        int kl = stg_key_join(k, sizeof k, "u@paris", 7, posts[i], strlen(posts[i]));
        stg_batch_put(b, STG_CF_HOME, k, (size_t)kl, "\0\0\0\0\0\0\0\1a@paris", 15);
        stg_batch_put(b, STG_CF_POSTS, posts[i], strlen(posts[i]), "x", 1);
    }
    ck_assert_int_eq(stg_write(w.db, b), 0);
    stg_batch_free(b);
    stg_close(w.db);

    world_open(&w);
    int old;
    ck_assert_int_eq(count_home(w.db, &old), 0);
    char out[STG_ID_MAX + 1];
    ck_assert(feed_home_floor(w.fd, "anyone@paris", out)); /* older posts: from profiles */
    ck_assert_str_eq(out, "01a2000000000007-tokyo");
    uint64_t format = 0;
    ck_assert_int_eq(stg_meta_get_u64(w.db, "home_format", &format), 0);
    ck_assert_int_eq(format, 2);
    /* An entry of the current format survives the next open untouched. */
    char k[HOME_KEYCAP];
    int kl = feed_home_key(k, sizeof k, "u@paris", "01a2000000000009-paris", 22);
    b = stg_batch_new(w.db);
    stg_batch_put(b, STG_CF_HOME, k, (size_t)kl, "\0\0\0\0\0\0\0\1a@paris", 15);
    ck_assert_int_eq(stg_write(w.db, b), 0);
    stg_batch_free(b);
    world_close(&w);

    world_open(&w);
    ck_assert_int_eq(count_home(w.db, &old), 1);
    ck_assert_int_eq(old, 0);
    world_close(&w);
    unit_rmtree(w.dir);
}
END_TEST

static void put_home(stg_db *db, const char *user, int n)
{
    stg_batch *b = stg_batch_new(db);
    for (int i = 1; i <= n; i++) {
        char id[STG_ID_MAX + 1], k[HOME_KEYCAP];
        snprintf(id, sizeof id, "01a20000000000%02d-paris", i);
        int kl = feed_home_key(k, sizeof k, user, id, strlen(id));
        stg_batch_put(b, STG_CF_HOME, k, (size_t)kl, "\0\0\0\0\0\0\0\1a@paris", 15);
    }
    ck_assert_int_eq(stg_write(db, b), 0);
    stg_batch_free(b);
}

/* Entries of one user, newest first, as ids "01a20000000000NN-paris" -> NN. */
static int home_ids(stg_db *db, const char *user, int *out, int cap)
{
    char prefix[STG_ID_MAX + 2], id[STG_ID_MAX + 1];
    int pl = stg_key_join(prefix, sizeof prefix, user, strlen(user), NULL, 0);
    stg_iter *it = stg_iter_prefix(db, STG_CF_HOME, prefix, (size_t)pl, false);
    const char *k;
    size_t kl;
    int n = 0;
    while (n < cap && stg_iter_next(it, &k, &kl, NULL, NULL))
        if (feed_home_key_id(k, kl, id) > 0) out[n++] = atoi(id + 14);
    stg_iter_free(it);
    return n;
}

/* Compaction drops a user's entries at or below its floor, and nothing of
 * a user without one; a record that is not a home entry stays. */
START_TEST(test_compaction_sweeps_below_the_floor)
{
    world w = {.dir = unit_mkdtemp()};
    stg_options so = {.sweep[STG_CF_HOME] = feed_home_sweep};
    feed_config fc = {.workers = 1};
    ck_assert_int_eq(stg_open(w.dir, &so, &w.db), 0);
    ck_assert_int_eq(feed_open(&w.fd, w.db, &fc), 0);
    put_home(w.db, "u@paris", 12);
    put_home(w.db, "v@paris", 12);
    stg_batch *b = stg_batch_new(w.db);
    stg_batch_put(b, STG_CF_HOME, "stray", 5, "x", 1);
    ck_assert_int_eq(feed_write_with_floor(w.fd, b, "u@paris", "01a2000000000005-paris"), 0);
    stg_batch_free(b);
    ck_assert_int_eq(stg_compact(w.db, STG_CF_HOME), 0);

    int ids[32];
    ck_assert_int_eq(home_ids(w.db, "u@paris", ids, 32), 7);
    ck_assert_int_eq(ids[0], 12);
    ck_assert_int_eq(ids[6], 6); /* 5 and older are gone */
    ck_assert_int_eq(home_ids(w.db, "v@paris", ids, 32), 12);
    char *v;
    size_t vl;
    ck_assert_int_eq(stg_get(w.db, STG_CF_HOME, "stray", 5, &v, &vl), 0);
    free(v);
    world_close(&w);
    unit_rmtree(w.dir);
}
END_TEST

START_TEST(test_fresh_database_has_no_floor)
{
    world w = {.dir = unit_mkdtemp()};
    world_open(&w);
    char out[STG_ID_MAX + 1];
    ck_assert(!feed_home_floor(w.fd, "u@paris", out));
    world_close(&w);
    unit_rmtree(w.dir);
}
END_TEST

static Suite *home_suite(void)
{
    Suite *s = suite_create("feed/home");
    TCase *tc = tcase_create("home");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_key_round_trip_and_order);
    tcase_add_test(tc, test_key_rejects);
    tcase_add_test(tc, test_floors_only_rise);
    tcase_add_test(tc, test_upgrade_drops_first_format);
    tcase_add_test(tc, test_fresh_database_has_no_floor);
    tcase_add_test(tc, test_compaction_sweeps_below_the_floor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    df_log_set_level(DF_LOG_ERROR);
    return unit_run(home_suite());
}
