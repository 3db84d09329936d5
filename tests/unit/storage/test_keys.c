/* test_keys.c -- storage/keys.c and the id/name helpers of storage/header.c:
 * composite keys, big-endian integers, message keys, prefix successors,
 * post/message ids and the name validators. */
#include "../unit.h"
#include "storage.h"

#include <string.h>

/* Fills buf with n random bytes that are never 0 (a key part). */
static void random_part(rng *r, char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) buf[i] = (char)(1 + rng_below(r, 255));
}

/* A random valid region name: short names from a small alphabet, so equal
 * names and names that are prefixes of each other are common. */
static void random_origin(rng *r, char out[STG_ORIGIN_MAX + 1])
{
    static const char alpha[] = "ab_9z";
    size_t n = 1 + rng_below(r, 4);
    if (rng_below(r, 10) == 0) n = STG_ORIGIN_MAX;
    for (size_t i = 0; i < n; i++) out[i] = alpha[rng_below(r, sizeof alpha - 1)];
    out[n] = '\0';
}

static void random_version(rng *r, stg_version *v)
{
    memset(v, 0, sizeof *v);
    switch (rng_below(r, 4)) {
    case 0: v->hlc = rng_below(r, 4); break; /* many equal hlcs: origin decides */
    case 1: v->hlc = UINT64_MAX - rng_below(r, 4); break;
    default: v->hlc = rng_next(r) >> rng_below(r, 64); break;
    }
    random_origin(r, v->origin);
}

/* True if key starts with prefix. */
static bool has_prefix(const char *key, size_t kl, const char *prefix, size_t pl)
{
    return kl >= pl && memcmp(key, prefix, pl) == 0;
}

/* ---- stg_key_join / stg_key_split -------------------------------------------- */

START_TEST(test_join_split_roundtrip)
{
    rng r = rng_seeded("join_split_roundtrip", 11);
    for (int iter = 0; iter < 2000; iter++) {
        char a[64], b[64], key[130];
        size_t na = rng_below(&r, sizeof a), nb = 1 + rng_below(&r, sizeof b - 1);
        random_part(&r, a, na);
        random_part(&r, b, nb);
        int kl = stg_key_join(key, sizeof key, a, na, b, nb);
        ck_assert_int_eq(kl, (int)(na + 1 + nb));
        const char *pb = NULL;
        size_t nbb = 0;
        int nap = stg_key_split(key, (size_t)kl, &pb, &nbb);
        ck_assert_int_eq(nap, (int)na);
        ck_assert_mem_eq(key, a, na);
        ck_assert_uint_eq(nbb, nb);
        ck_assert_mem_eq(pb, b, nb);
        ck_assert_ptr_eq(pb, key + na + 1);
    }
}
END_TEST

START_TEST(test_join_prefix_form)
{
    char key[16];
    int kl = stg_key_join(key, sizeof key, "alice", 5, NULL, 0);
    ck_assert_int_eq(kl, 6);
    ck_assert_mem_eq(key, "alice\0", 6);
    const char *b;
    size_t nb = 99;
    ck_assert_int_eq(stg_key_split(key, (size_t)kl, &b, &nb), 5);
    ck_assert_uint_eq(nb, 0);
    ck_assert_ptr_eq(b, key + 6);

    /* Every full key a \0 b starts with the prefix form of a. */
    char full[32];
    int fl = stg_key_join(full, sizeof full, "alice", 5, "bob", 3);
    ck_assert(has_prefix(full, (size_t)fl, key, (size_t)kl));
    /* ... and a key of a longer first part does not. */
    fl = stg_key_join(full, sizeof full, "alicex", 6, "bob", 3);
    ck_assert(!has_prefix(full, (size_t)fl, key, (size_t)kl));
}
END_TEST

START_TEST(test_join_capacity)
{
    char key[8];
    /* "abc\0def" is 7 bytes: fits in 7, not in 6. */
    ck_assert_int_eq(stg_key_join(key, 7, "abc", 3, "def", 3), 7);
    ck_assert_int_eq(stg_key_join(key, 6, "abc", 3, "def", 3), -1);
    ck_assert_int_eq(stg_key_join(key, 4, "abc", 3, NULL, 0), 4);
    ck_assert_int_eq(stg_key_join(key, 3, "abc", 3, NULL, 0), -1);
    ck_assert_int_eq(stg_key_join(key, 0, "", 0, NULL, 0), -1);
    /* A refused join leaves the buffer alone. */
    memset(key, 'x', sizeof key);
    ck_assert_int_eq(stg_key_join(key, 5, "abc", 3, "def", 3), -1);
    ck_assert_mem_eq(key, "xxxxxxxx", 8);
}
END_TEST

START_TEST(test_split_without_separator)
{
    const char *b = NULL;
    size_t nb = 0;
    ck_assert_int_eq(stg_key_split("abc", 3, &b, &nb), -1);
    ck_assert_int_eq(stg_key_split("", 0, &b, &nb), -1);
    /* Only the first separator counts. */
    ck_assert_int_eq(stg_key_split("a\0b\0c", 5, &b, &nb), 1);
    ck_assert_uint_eq(nb, 3);
    ck_assert_mem_eq(b, "b\0c", 3);
}
END_TEST

/* ---- stg_key_u64 ---------------------------------------------------------------- */

START_TEST(test_u64_roundtrip_and_layout)
{
    char k[8];
    stg_key_u64(k, 0x0102030405060708ull);
    ck_assert_mem_eq(k, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    static const uint64_t edge[] = {
        0,         1, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1,
        UINT64_MAX};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        stg_key_u64(k, edge[i]);
        ck_assert_uint_eq(stg_key_get_u64(k), edge[i]);
    }
}
END_TEST

START_TEST(test_u64_byte_order_is_numeric_order)
{
    rng r = rng_seeded("u64_byte_order", 12);
    for (int iter = 0; iter < 20000; iter++) {
        /* Shifted values give many small numbers and shared high bytes. */
        uint64_t x = rng_next(&r) >> rng_below(&r, 64), y = rng_next(&r) >> rng_below(&r, 64);
        if (iter % 7 == 0) y = x + rng_below(&r, 3) - 1;
        char kx[8], ky[8];
        stg_key_u64(kx, x);
        stg_key_u64(ky, y);
        int want = (x > y) - (x < y);
        ck_assert_msg(unit_sign(memcmp(kx, ky, 8)) == want, "%llu vs %llu", (unsigned long long)x,
                      (unsigned long long)y);
        ck_assert_uint_eq(stg_key_get_u64(kx), x);
    }
}
END_TEST

/* ---- stg_key_message --------------------------------------------------------------- */

START_TEST(test_message_key_orders_participants)
{
    char k1[128], k2[128];
    int l1 = stg_key_message(k1, sizeof k1, "bob@tokyo", "alice@paris", "0000000000010000-paris");
    int l2 = stg_key_message(k2, sizeof k2, "alice@paris", "bob@tokyo", "0000000000010000-paris");
    ck_assert_int_eq(l1, l2);
    ck_assert_int_eq(l1, 11 + 1 + 9 + 1 + 22);
    ck_assert_mem_eq(k1, k2, (size_t)l1);
    ck_assert_mem_eq(k1,
                     "alice@paris\0bob@tokyo\0"
                     "0000000000010000-paris",
                     (size_t)l1);
}
END_TEST

START_TEST(test_message_key_roundtrip)
{
    rng r = rng_seeded("message_key_roundtrip", 13);
    for (int iter = 0; iter < 2000; iter++) {
        char a[40], b[40], id[40], key[128];
        /* Printable parts; sometimes one is a prefix of the other. */
        size_t na = 1 + rng_below(&r, 30), nb = 1 + rng_below(&r, 30), nid = 1 + rng_below(&r, 30);
        for (size_t i = 0; i < na; i++) a[i] = (char)('a' + rng_below(&r, 3));
        for (size_t i = 0; i < nb; i++) b[i] = (char)('a' + rng_below(&r, 3));
        for (size_t i = 0; i < nid; i++) id[i] = (char)('0' + rng_below(&r, 10));
        if (iter % 5 == 0) memcpy(b, a, nb < na ? nb : na);
        a[na] = b[nb] = id[nid] = '\0';
        int kl = stg_key_message(key, sizeof key, a, b, id);
        ck_assert_int_eq(kl, (int)(na + nb + nid + 2));
        const char *lo = strcmp(a, b) <= 0 ? a : b, *hi = lo == a ? b : a;
        const char *rest, *pid;
        size_t nrest, npid;
        int n1 = stg_key_split(key, (size_t)kl, &rest, &nrest);
        ck_assert_int_eq(n1, (int)strlen(lo));
        ck_assert_mem_eq(key, lo, strlen(lo));
        int n2 = stg_key_split(rest, nrest, &pid, &npid);
        ck_assert_int_eq(n2, (int)strlen(hi));
        ck_assert_mem_eq(rest, hi, strlen(hi));
        ck_assert_uint_eq(npid, nid);
        ck_assert_mem_eq(pid, id, nid);
        /* Swapping the participants gives the same key. */
        char key2[128];
        ck_assert_int_eq(stg_key_message(key2, sizeof key2, b, a, id), kl);
        ck_assert_mem_eq(key2, key, (size_t)kl);
    }
}
END_TEST

START_TEST(test_message_key_prefix_and_capacity)
{
    char key[64];
    /* No message id: the conversation prefix a \0 b \0. */
    int kl = stg_key_message(key, sizeof key, "b@x", "a@x", NULL);
    ck_assert_int_eq(kl, 8);
    ck_assert_mem_eq(key, "a@x\0b@x\0", 8);
    ck_assert_int_eq(stg_key_message(key, 10, "a@x", "b@x", "12"), 10);
    ck_assert_int_eq(stg_key_message(key, 9, "a@x", "b@x", "12"), -1);
}
END_TEST

/* ---- stg_key_successor --------------------------------------------------------------- */

START_TEST(test_successor_examples)
{
    char out[8];
    ck_assert_int_eq(stg_key_successor("abc", 3, out), 3);
    ck_assert_mem_eq(out, "abd", 3);
    ck_assert_int_eq(stg_key_successor("a\0", 2, out), 2);
    ck_assert_mem_eq(out, "a\x01", 2);
    ck_assert_int_eq(stg_key_successor("ab\xff", 3, out), 2);
    ck_assert_mem_eq(out, "ac", 2);
    ck_assert_int_eq(stg_key_successor("a\xff\xff", 3, out), 1);
    ck_assert_mem_eq(out, "b", 1);
    ck_assert_int_eq(stg_key_successor("\xfe\xff", 2, out), 1);
    ck_assert_mem_eq(out, "\xff", 1);
    ck_assert_int_eq(stg_key_successor("\xff", 1, out), -1);
    ck_assert_int_eq(stg_key_successor("\xff\xff\xff", 3, out), -1);
    ck_assert_int_eq(stg_key_successor("", 0, out), -1);
}
END_TEST

/* For random prefixes p and keys k: k starts with p exactly when
 * p <= k < successor(p) (with no upper bound when there is no successor). */
START_TEST(test_successor_bounds_the_prefix)
{
    static const char alpha[] = {0x00, 0x01, 0x61, 0x7f, (char)0xfe, (char)0xff};
    rng r = rng_seeded("successor_bounds", 14);
    for (int iter = 0; iter < 20000; iter++) {
        char p[6], k[8], succ[6];
        size_t pl = rng_below(&r, sizeof p + 1), kl = rng_below(&r, sizeof k + 1);
        for (size_t i = 0; i < pl; i++) p[i] = alpha[rng_below(&r, sizeof alpha)];
        for (size_t i = 0; i < kl; i++) k[i] = alpha[rng_below(&r, sizeof alpha)];
        if (iter % 3 == 0 && kl >= pl) memcpy(k, p, pl); /* often a real match */
        int sl = stg_key_successor(p, pl, succ);
        bool all_ff = true;
        for (size_t i = 0; i < pl; i++) all_ff = all_ff && (unsigned char)p[i] == 0xff;
        ck_assert_int_eq(sl < 0, all_ff);
        if (sl >= 0) ck_assert_int_gt(unit_bytes_cmp(succ, (size_t)sl, p, pl), 0);
        bool in_range = unit_bytes_cmp(k, kl, p, pl) >= 0 &&
                        (sl < 0 || unit_bytes_cmp(k, kl, succ, (size_t)sl) < 0);
        ck_assert_msg(in_range == has_prefix(k, kl, p, pl), "iteration %d", iter);
    }
}
END_TEST

/* ---- Ids ------------------------------------------------------------------------------- */

START_TEST(test_id_format)
{
    stg_version v = {.hlc = 0x0001a2b3c4d5e6f7ull, .origin = "paris"};
    char id[STG_ID_MAX + 1];
    stg_make_id(id, &v);
    ck_assert_str_eq(id, "0001a2b3c4d5e6f7-paris");
}
END_TEST

START_TEST(test_id_roundtrip)
{
    rng r = rng_seeded("id_roundtrip", 15);
    for (int iter = 0; iter < 5000; iter++) {
        stg_version v, back;
        random_version(&r, &v);
        char id[STG_ID_MAX + 1];
        stg_make_id(id, &v);
        ck_assert_uint_eq(strlen(id), 17 + strlen(v.origin));
        ck_assert(stg_valid_id(id, strlen(id)));
        memset(&back, 0x55, sizeof back);
        ck_assert_int_eq(stg_parse_id(id, strlen(id), &back), 0);
        ck_assert_uint_eq(back.hlc, v.hlc);
        ck_assert_str_eq(back.origin, v.origin);
        ck_assert_int_eq(stg_version_cmp(&back, &v), 0);
    }
}
END_TEST

START_TEST(test_id_byte_order_is_version_order)
{
    rng r = rng_seeded("id_byte_order", 16);
    for (int iter = 0; iter < 20000; iter++) {
        stg_version a, b;
        random_version(&r, &a);
        random_version(&r, &b);
        if (iter % 4 == 0) b.hlc = a.hlc;
        char ia[STG_ID_MAX + 1], ib[STG_ID_MAX + 1];
        stg_make_id(ia, &a);
        stg_make_id(ib, &b);
        int bytes = unit_bytes_cmp(ia, strlen(ia), ib, strlen(ib));
        ck_assert_msg(bytes == unit_sign(stg_version_cmp(&a, &b)), "%s vs %s", ia, ib);
    }
}
END_TEST

START_TEST(test_id_rejects)
{
    static const char *bad[] = {
        "",
        "0000000000000001", /* no '-' nor origin */
        "0000000000000001-", /* empty origin */
        "000000000000001-paris", /* 15 hex digits */
        "00000000000000001-paris", /* 17 hex digits */
        "000000000000000A-paris", /* uppercase hex */
        "000000000000000g-paris", /* not hex */
        "0000000000000001_paris", /* wrong separator */
        "0000000000000001-Paris", /* uppercase origin */
        "0000000000000001-par is", /* space */
        "0000000000000001-paris-2", /* '-' in origin */
        "0000000000000001-abcdefghijklmnopqrstuvwxyzabcdefg", /* 33-char origin */
        " 000000000000001-paris",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stg_version v;
        ck_assert_msg(!stg_valid_id(bad[i], strlen(bad[i])), "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(stg_parse_id(bad[i], strlen(bad[i]), &v), DF_EINVAL);
    }
    /* A 32-char origin is the longest allowed. */
    const char *longest = "0000000000000001-abcdefghijklmnopqrstuvwxyzabcdef";
    ck_assert(stg_valid_id(longest, strlen(longest)));
    /* The length given counts, not a NUL: a trailing NUL byte is invalid. */
    ck_assert(!stg_valid_id("0000000000000001-paris", 23));
    ck_assert(stg_valid_id("0000000000000001-parisXYZ", 22));
}
END_TEST

/* ---- Names and user ids ------------------------------------------------------------------ */

START_TEST(test_valid_name_table)
{
    static const struct {
        const char *s;
        size_t max;
        bool ok;
    } cases[] = {
        {"paris", 32, true},
        {"a", 1, true},
        {"new_york", 32, true},
        {"r2d2", 32, true},
        {"___", 32, true},
        {"abcdefghijklmnopqrstuvwxyzabcdef", 32, true},
        {"abcdefghijklmnopqrstuvwxyzabcdefg", 32, false}, /* 33 > max */
        {"ab", 1, false},
        {"", 32, false},
        {"Paris", 32, false},
        {"pa ris", 32, false},
        {"pa-ris", 32, false},
        {"pa@ris", 32, false},
        {"pa.ris", 32, false},
        {"pa\xc3\xa9", 32, false},
        {"x\n", 32, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(stg_valid_name(cases[i].s, strlen(cases[i].s), cases[i].max) == cases[i].ok,
                      "\"%s\" (max %zu): expected %s", cases[i].s, cases[i].max,
                      cases[i].ok ? "valid" : "invalid");
    /* An embedded NUL within the given length is invalid. */
    ck_assert(!stg_valid_name("ab\0c", 4, 32));
}
END_TEST

START_TEST(test_valid_user_id_table)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"alice@paris", true},
        {"a@b", true},
        {"al_1@new_york", true},
        {"abcdefghijklmnopqrstuvwxyzabcd@paris", true}, /* 30-char name */
        {"abcdefghijklmnopqrstuvwxyzabcde@paris", false}, /* 31-char name */
        {"a@abcdefghijklmnopqrstuvwxyzabcdef", true}, /* 32-char region */
        {"a@abcdefghijklmnopqrstuvwxyzabcdefg", false}, /* 33-char region */
        {"", false},
        {"@", false},
        {"alice", false},
        {"alice@", false},
        {"@paris", false},
        {"Alice@paris", false},
        {"alice@Paris", false},
        {"alice@@paris", false},
        {"alice@paris@tokyo", false},
        {"al ice@paris", false},
        {"alice@pa ris", false},
        {"alice-x@paris", false},
        {"alice@paris\n", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(stg_valid_user_id(cases[i].s, strlen(cases[i].s)) == cases[i].ok,
                      "\"%s\": expected %s", cases[i].s, cases[i].ok ? "valid" : "invalid");
    /* The given length counts: a NUL inside it is invalid, bytes past it ignored. */
    ck_assert(!stg_valid_user_id("alice@paris\0", 12));
    ck_assert(stg_valid_user_id("alice@parisXX", 11));
    ck_assert(!stg_valid_user_id("alice@parisXX", 5));
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("storage/keys");
    TCase *tc = tcase_create("keys");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_join_split_roundtrip);
    tcase_add_test(tc, test_join_prefix_form);
    tcase_add_test(tc, test_join_capacity);
    tcase_add_test(tc, test_split_without_separator);
    tcase_add_test(tc, test_u64_roundtrip_and_layout);
    tcase_add_test(tc, test_u64_byte_order_is_numeric_order);
    tcase_add_test(tc, test_message_key_orders_participants);
    tcase_add_test(tc, test_message_key_roundtrip);
    tcase_add_test(tc, test_message_key_prefix_and_capacity);
    tcase_add_test(tc, test_successor_examples);
    tcase_add_test(tc, test_successor_bounds_the_prefix);
    suite_add_tcase(s, tc);
    TCase *ids = tcase_create("ids and names");
    tcase_set_timeout(ids, 60);
    tcase_add_test(ids, test_id_format);
    tcase_add_test(ids, test_id_roundtrip);
    tcase_add_test(ids, test_id_byte_order_is_version_order);
    tcase_add_test(ids, test_id_rejects);
    tcase_add_test(ids, test_valid_name_table);
    tcase_add_test(ids, test_valid_user_id_table);
    suite_add_tcase(s, ids);
    return s;
}

int main(void) { return unit_run(keys_suite()); }
