/* test_cache.c -- storage/cache.c: hits, misses, the generation rule that
 * keeps a value read before a write out of the cache, collisions, the
 * byte budget and what eviction keeps. */
#include "../unit.h"
#include "storage.h"

static const char ID[] = "01a215eac54e0003-paris";

START_TEST(test_miss_then_hit)
{
    df_cache *pc = df_cache_new(65536, 64 << 20);
    char *v;
    size_t len;
    uint64_t gen;
    ck_assert(!df_cache_get(pc, ID, strlen(ID), &v, &len, &gen));
    df_cache_put(pc, ID, strlen(ID), "value", 5, gen);
    ck_assert(df_cache_get(pc, ID, strlen(ID), &v, &len, &gen));
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(v, "value", 5);
    free(v);
    df_cache_free(pc);
}
END_TEST

START_TEST(test_forget_removes)
{
    df_cache *pc = df_cache_new(65536, 64 << 20);
    char *v;
    size_t len;
    uint64_t gen;
    df_cache_get(pc, ID, strlen(ID), &v, &len, &gen);
    df_cache_put(pc, ID, strlen(ID), "value", 5, gen);
    df_cache_forget(pc, ID, strlen(ID));
    ck_assert(!df_cache_get(pc, ID, strlen(ID), &v, &len, &gen));
    df_cache_free(pc);
}
END_TEST

/* A reader took the generation, then the post was deleted and forgotten,
 * then the reader tries to insert what it read before: refused. */
START_TEST(test_put_after_forget_is_refused)
{
    df_cache *pc = df_cache_new(65536, 64 << 20);
    char *v;
    size_t len;
    uint64_t gen;
    ck_assert(!df_cache_get(pc, ID, strlen(ID), &v, &len, &gen));
    df_cache_forget(pc, ID, strlen(ID));
    df_cache_put(pc, ID, strlen(ID), "stale live value", 16, gen);
    uint64_t gen2;
    ck_assert(!df_cache_get(pc, ID, strlen(ID), &v, &len, &gen2));
    ck_assert_uint_ne(gen, gen2);
    df_cache_free(pc);
}
END_TEST

/* Ids sharing a slot replace each other; a lookup never returns another
 * id's value. */
START_TEST(test_collisions_never_mix_values)
{
    df_cache *pc = df_cache_new(65536, 64 << 20);
    char id[64], *v;
    size_t len;
    uint64_t gen;
    for (int i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "%016x-paris", i);
        df_cache_get(pc, id, strlen(id), &v, &len, &gen);
        df_cache_put(pc, id, strlen(id), id, strlen(id), gen);
    }
    int hits = 0;
    for (int i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "%016x-paris", i);
        if (df_cache_get(pc, id, strlen(id), &v, &len, &gen)) {
            ck_assert_uint_eq(len, strlen(id));
            ck_assert_mem_eq(v, id, len);
            free(v);
            hits++;
        }
    }
    ck_assert_int_gt(hits, 0);
    df_cache_free(pc);
}
END_TEST

/* Values are copied out NUL-terminated; keys may hold any bytes. */
START_TEST(test_binary_keys_and_terminated_values)
{
    df_cache *c = df_cache_new(16, 1 << 20);
    char *v;
    size_t len;
    uint64_t gen;
    ck_assert(!df_cache_get(c, "a\0b", 3, &v, &len, &gen));
    df_cache_put(c, "a\0b", 3, "xyz", 3, gen);
    ck_assert(!df_cache_get(c, "a", 1, &v, &len, NULL));
    ck_assert(df_cache_get(c, "a\0b", 3, &v, &len, NULL));
    ck_assert_str_eq(v, "xyz");
    free(v);
    df_cache_free(c);
}
END_TEST

/* Puts key prefix+i with value val as a reader does: with the generation
 * its lookup reported. */
static void offer(df_cache *c, const char *prefix, int i, const char *val, size_t len)
{
    char key[32], *v;
    size_t n;
    uint64_t gen;
    snprintf(key, sizeof key, "%s%d", prefix, i);
    if (df_cache_get(c, key, strlen(key), &v, &n, &gen)) free(v);
    df_cache_put(c, key, strlen(key), val, len, gen);
}

/* Reads keys prefix+lo .. prefix+(hi-1); returns how many the cache held,
 * and in *bytes (if not NULL) the length of their values. */
static int read_held(df_cache *c, const char *prefix, int lo, int hi, size_t *bytes)
{
    char key[32], *v;
    size_t len;
    int held = 0;
    if (bytes) *bytes = 0;
    for (int i = lo; i < hi; i++) {
        snprintf(key, sizeof key, "%s%d", prefix, i);
        if (df_cache_get(c, key, strlen(key), &v, &len, NULL)) {
            free(v);
            held++;
            if (bytes) *bytes += len;
        }
    }
    return held;
}

/* The byte budget is a bound: a cache of 64 KiB never takes in more,
 * however many values are offered. */
START_TEST(test_byte_budget_bounds_contents)
{
    df_cache *c = df_cache_new(65536, 64 << 10);
    char val[1000];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 10000; i++) offer(c, "k", i, val, sizeof val);
    size_t bytes;
    ck_assert_int_gt(read_held(c, "k", 0, 10000, &bytes), 0);
    ck_assert_uint_le(bytes, 64 << 10);
    df_cache_free(c);
}
END_TEST

/* Over budget, what is read again stays and what was read once goes: 256
 * keys read between every 100 of 20,000 keys put once are all still held
 * (a hand that ignored reads took them as it went round). */
START_TEST(test_eviction_keeps_what_is_read)
{
    df_cache *c = df_cache_new(65536, 2 << 20);
    char val[1000];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 256; i++) offer(c, "hot", i, val, sizeof val);
    for (int i = 0; i < 20000; i++) {
        if (i % 100 == 0) read_held(c, "hot", 0, 256, NULL);
        offer(c, "cold", i, val, sizeof val);
    }
    ck_assert_int_eq(read_held(c, "hot", 0, 256, NULL), 256);
    /* The rest of the budget still turns over: recent cold keys are in. */
    ck_assert_int_gt(read_held(c, "cold", 19000, 20000, NULL), 0);
    df_cache_free(c);
}
END_TEST

/* A held entry outlives its replacement and its forgetting. */
START_TEST(test_held_entry_survives_forget)
{
    df_cache *c = df_cache_new(16, 1 << 20);
    uint64_t gen;
    const char *v;
    size_t len;
    df_cache_ref *ref;
    char *copy;
    ck_assert(!df_cache_hold(c, "k", 1, &v, &len, &gen, &ref));
    df_cache_put(c, "k", 1, "first", 5, gen);
    ck_assert(df_cache_hold(c, "k", 1, &v, &len, NULL, &ref));
    df_cache_forget(c, "k", 1);
    df_cache_get(c, "k", 1, &copy, &len, &gen);
    df_cache_put(c, "k", 1, "second", 6, gen);
    ck_assert_mem_eq(v, "first", 5); /* ASan: not freed */
    df_cache_release(ref);
    ck_assert(df_cache_get(c, "k", 1, &copy, &len, NULL));
    ck_assert_str_eq(copy, "second");
    free(copy);
    df_cache_free(c);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("storage/cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_miss_then_hit);
    tcase_add_test(tc, test_forget_removes);
    tcase_add_test(tc, test_put_after_forget_is_refused);
    tcase_add_test(tc, test_collisions_never_mix_values);
    tcase_add_test(tc, test_binary_keys_and_terminated_values);
    tcase_add_test(tc, test_byte_budget_bounds_contents);
    tcase_add_test(tc, test_held_entry_survives_forget);
    tcase_add_test(tc, test_eviction_keeps_what_is_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(cache_suite()); }
