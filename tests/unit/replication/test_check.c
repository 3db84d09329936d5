/* test_check.c -- replication/record.c: repl_record_check, which records a
 * region's log may carry (its own version, accounts of its own users, edges
 * owned by their follower, posts and messages exactly as minted). */
#include "../unit.h"
#include "repl.h"

#include <stdio.h>
#include <string.h>

/* A record of kind with key and owner, version (hlc, origin). */
static stg_record rec(stg_kind kind, const char *key, size_t keylen, const char *owner,
                      uint64_t hlc, const char *origin, bool tomb)
{
    stg_record r = {.kind = kind,
                    .tombstone = tomb,
                    .key = key,
                    .keylen = keylen,
                    .owner = owner,
                    .ownerlen = strlen(owner),
                    .payload = "{}",
                    .paylen = 2};
    r.ver.hlc = hlc;
    snprintf(r.ver.origin, sizeof r.ver.origin, "%s", origin);
    return r;
}

#define HLC 0x00018bcfe5680002ull

START_TEST(test_version_must_be_the_logs_region)
{
    stg_record r = rec(STG_KIND_USER, "alice@paris", 11, "alice@paris", HLC, "paris", false);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_NONE);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_ORIGIN);
}
END_TEST

START_TEST(test_user_only_from_home_and_owned_by_itself)
{
    stg_record r = rec(STG_KIND_USER, "alice@paris", 11, "alice@paris", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER); /* not her home */
    r = rec(STG_KIND_USER, "alice@paris", 11, "mallory@paris", HLC, "paris", false);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_OWNER);
    r = rec(STG_KIND_USER, "alice@parisx", 12, "alice@parisx", HLC, "paris", false);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_OWNER); /* a prefix is not it */
    r = rec(STG_KIND_USER, "alice@paris", 11, "alice@paris", HLC, "paris", true);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_NONE);
}
END_TEST

START_TEST(test_follow_owned_by_its_follower_from_anywhere)
{
    static const char key[] = "alice@paris\0bob@tokyo";
    stg_record r = rec(STG_KIND_FOLLOW, key, sizeof key - 1, "alice@paris", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_NONE); /* she follows from tokyo */
    r = rec(STG_KIND_FOLLOW, key, sizeof key - 1, "bob@tokyo", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER);
    static const char bad[] = "alice\0bob@tokyo";
    r = rec(STG_KIND_FOLLOW, bad, sizeof bad - 1, "alice", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER);
}
END_TEST

START_TEST(test_post_as_minted_or_a_tombstone)
{
    char id[STG_ID_MAX + 1];
    stg_version v = {.hlc = HLC, .origin = "tokyo"};
    stg_make_id(id, &v);
    stg_record r = rec(STG_KIND_POST, id, strlen(id), "alice@paris", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_NONE);
    /* The same post with a newer version: a rewrite. */
    r = rec(STG_KIND_POST, id, strlen(id), "alice@paris", HLC + 1, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER);
    /* Minted in tokyo, claimed by paris's log. */
    r = rec(STG_KIND_POST, id, strlen(id), "alice@paris", HLC, "paris", false);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_OWNER);
    /* Deleted anywhere her token works; the owner check against the stored
     * post is the applier's (DF_EPERM). */
    r = rec(STG_KIND_POST, id, strlen(id), "alice@paris", HLC + 5, "paris", true);
    ck_assert_int_eq(repl_record_check("paris", &r), REPL_REJECT_NONE);
    r = rec(STG_KIND_POST, "not-an-id", 9, "alice@paris", HLC, "tokyo", true);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER);
    r = rec(STG_KIND_POST, id, strlen(id), "nobody", HLC, "tokyo", false);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_OWNER);
}
END_TEST

START_TEST(test_message_from_a_participant_as_minted)
{
    char id[STG_ID_MAX + 1], key[256];
    stg_version v = {.hlc = HLC, .origin = "newyork"};
    stg_make_id(id, &v);
    int kl = stg_key_message(key, sizeof key, "alice@paris", "bob@tokyo", id);
    ck_assert_int_gt(kl, 0);
    stg_record r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "bob@tokyo", HLC, "newyork", false);
    ck_assert_int_eq(repl_record_check("newyork", &r), REPL_REJECT_NONE);
    r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "alice@paris", HLC, "newyork", false);
    ck_assert_int_eq(repl_record_check("newyork", &r), REPL_REJECT_NONE);
    r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "carol@paris", HLC, "newyork", false);
    ck_assert_int_eq(repl_record_check("newyork", &r), REPL_REJECT_OWNER);
    r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "bob@tokyo", HLC + 1, "newyork", false);
    ck_assert_int_eq(repl_record_check("newyork", &r), REPL_REJECT_OWNER); /* rewritten */
    /* Deleted only by a participant's home region. */
    r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "bob@tokyo", HLC + 1, "newyork", true);
    ck_assert_int_eq(repl_record_check("newyork", &r), REPL_REJECT_OWNER);
    r = rec(STG_KIND_MESSAGE, key, (size_t)kl, "bob@tokyo", HLC + 1, "tokyo", true);
    ck_assert_int_eq(repl_record_check("tokyo", &r), REPL_REJECT_NONE);
}
END_TEST

/* Every record the codec accepts gets an answer (no crash), whatever its
 * kind, key and owner bytes. */
START_TEST(test_random_records_never_crash)
{
    rng g = rng_seeded("test_random_records_never_crash", 42);
    static const char *parts[] = {"alice@paris", "bob@tokyo", "00018bcfe5680002-tokyo", "x",
                                  "@", "a@", "@b", ""};
    for (int i = 0; i < 20000; i++) {
        char key[256];
        size_t kl = 0;
        int n = 1 + (int)rng_below(&g, 3);
        for (int j = 0; j < n; j++) {
            const char *p = parts[rng_below(&g, 8)];
            if (j) key[kl++] = '\0';
            memcpy(key + kl, p, strlen(p));
            kl += strlen(p);
        }
        stg_record r = rec((stg_kind)(1 + rng_below(&g, 4)), key, kl, parts[rng_below(&g, 8)],
                           HLC + rng_below(&g, 2), rng_below(&g, 2) ? "tokyo" : "paris",
                           rng_below(&g, 2));
        repl_reject why = repl_record_check(rng_below(&g, 2) ? "tokyo" : "paris", &r);
        ck_assert(why >= REPL_REJECT_NONE && why < REPL_REJECT_N);
    }
}
END_TEST

static Suite *check_suite(void)
{
    Suite *s = suite_create("replication/check");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_version_must_be_the_logs_region);
    tcase_add_test(tc, test_user_only_from_home_and_owned_by_itself);
    tcase_add_test(tc, test_follow_owned_by_its_follower_from_anywhere);
    tcase_add_test(tc, test_post_as_minted_or_a_tombstone);
    tcase_add_test(tc, test_message_from_a_participant_as_minted);
    tcase_add_test(tc, test_random_records_never_crash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(check_suite()); }
