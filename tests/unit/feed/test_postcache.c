/* test_postcache.c -- feed/postcache.c: hits, misses, and the generation
 * rule that keeps a value read before a tombstone out of the cache. */
#include "../unit.h"
#include "../../../feed/internal.h" /* the cache is internal to the feed */

static const char ID[] = "01a215eac54e0003-paris";

START_TEST(test_miss_then_hit)
{
    post_cache *pc = pc_new();
    char *v;
    size_t len;
    uint64_t gen;
    ck_assert(!pc_get(pc, ID, strlen(ID), &v, &len, &gen));
    pc_put(pc, ID, strlen(ID), "value", 5, gen);
    ck_assert(pc_get(pc, ID, strlen(ID), &v, &len, &gen));
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(v, "value", 5);
    free(v);
    pc_free(pc);
}
END_TEST

START_TEST(test_forget_removes)
{
    post_cache *pc = pc_new();
    char *v;
    size_t len;
    uint64_t gen;
    pc_get(pc, ID, strlen(ID), &v, &len, &gen);
    pc_put(pc, ID, strlen(ID), "value", 5, gen);
    pc_forget(pc, ID, strlen(ID));
    ck_assert(!pc_get(pc, ID, strlen(ID), &v, &len, &gen));
    pc_free(pc);
}
END_TEST

/* A reader took the generation, then the post was deleted and forgotten,
 * then the reader tries to insert what it read before: refused. */
START_TEST(test_put_after_forget_is_refused)
{
    post_cache *pc = pc_new();
    char *v;
    size_t len;
    uint64_t gen;
    ck_assert(!pc_get(pc, ID, strlen(ID), &v, &len, &gen));
    pc_forget(pc, ID, strlen(ID));
    pc_put(pc, ID, strlen(ID), "stale live value", 16, gen);
    uint64_t gen2;
    ck_assert(!pc_get(pc, ID, strlen(ID), &v, &len, &gen2));
    ck_assert_uint_ne(gen, gen2);
    pc_free(pc);
}
END_TEST

/* Ids sharing a slot replace each other; a lookup never returns another
 * id's value. */
START_TEST(test_collisions_never_mix_values)
{
    post_cache *pc = pc_new();
    char id[64], *v;
    size_t len;
    uint64_t gen;
    for (int i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "%016x-paris", i);
        pc_get(pc, id, strlen(id), &v, &len, &gen);
        pc_put(pc, id, strlen(id), id, strlen(id), gen);
    }
    int hits = 0;
    for (int i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "%016x-paris", i);
        if (pc_get(pc, id, strlen(id), &v, &len, &gen)) {
            ck_assert_uint_eq(len, strlen(id));
            ck_assert_mem_eq(v, id, len);
            free(v);
            hits++;
        }
    }
    ck_assert_int_gt(hits, 0);
    pc_free(pc);
}
END_TEST

static Suite *postcache_suite(void)
{
    Suite *s = suite_create("feed/postcache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_miss_then_hit);
    tcase_add_test(tc, test_forget_removes);
    tcase_add_test(tc, test_put_after_forget_is_refused);
    tcase_add_test(tc, test_collisions_never_mix_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(postcache_suite()); }
