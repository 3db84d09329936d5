/* test_header.c -- storage/header.c: the stored value (format, tombstone
 * flag, version, owner, payload) and the total order of versions. */
#include "../unit.h"
#include "storage.h"

#include <stdlib.h>
#include <string.h>

/* Offsets in a stored value: format, flags, hlc, origin length, origin... */
enum { OFF_FORMAT = 0, OFF_FLAGS = 1, OFF_HLC = 2, OFF_OLEN = 10, OFF_ORIGIN = 11 };

static stg_record make_rec(bool tomb, uint64_t hlc, const char *origin, const char *owner,
                           const char *payload, size_t paylen)
{
    stg_record rec = {.kind = STG_KIND_POST,
                      .tombstone = tomb,
                      .owner = owner,
                      .ownerlen = strlen(owner),
                      .payload = payload,
                      .paylen = paylen};
    rec.ver.hlc = hlc;
    snprintf(rec.ver.origin, sizeof rec.ver.origin, "%s", origin);
    return rec;
}

/* Decodes val into a record whose kind and key hold sentinels, and checks
 * it equals want field by field (kind and key must stay untouched). */
static const char sentinel[] = "sentinel";

static void assert_decodes_to(const char *val, size_t len, const stg_record *want)
{
    stg_record got;
    memset(&got, 0, sizeof got);
    got.kind = STG_KIND_MESSAGE;
    got.key = sentinel;
    got.keylen = 8;
    ck_assert_int_eq(stg_value_decode(val, len, &got), 0);
    ck_assert_int_eq(got.kind, STG_KIND_MESSAGE);
    ck_assert_ptr_eq(got.key, sentinel);
    ck_assert_uint_eq(got.keylen, 8);
    ck_assert_int_eq(got.tombstone, want->tombstone);
    ck_assert_uint_eq(got.ver.hlc, want->ver.hlc);
    ck_assert_str_eq(got.ver.origin, want->ver.origin);
    ck_assert_uint_eq(got.ownerlen, want->ownerlen);
    if (want->ownerlen) ck_assert_mem_eq(got.owner, want->owner, want->ownerlen);
    ck_assert_uint_eq(got.paylen, want->paylen);
    if (want->paylen) ck_assert_mem_eq(got.payload, want->payload, want->paylen);
    /* owner and payload point into val. */
    ck_assert(got.owner >= val && got.owner + got.ownerlen <= val + len);
    ck_assert(got.payload >= val && got.payload + got.paylen <= val + len);
}

/* Decodes a copy of val[0..len) in a buffer of exactly len bytes, so a
 * read past the end shows under ASan. */
static int decode_exact(const char *val, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, val, len);
    stg_record rec;
    int rc = stg_value_decode(copy, len, &rec);
    free(copy);
    return rc;
}

/* ---- Round trips ---------------------------------------------------------------- */

START_TEST(test_roundtrip_table)
{
    static const char bin[] = "{\"t\":\"a\0b\"}\xff";
    stg_record cases[] = {
        make_rec(false, 0x0001020304050607ull, "paris", "alice@paris", "{\"id\":1}", 8),
        make_rec(true, 42, "tokyo", "bob@tokyo", "", 0),
        make_rec(false, 0, "a", "", "", 0), /* empty owner and payload */
        make_rec(false, UINT64_MAX, "abcdefghijklmnopqrstuvwxyzabcdef", "x", "p", 1),
        make_rec(true, 1, "new_york", "carol@new_york", bin, sizeof bin - 1), /* binary payload */
    };
    char owner96[STG_ID_MAX + 1];
    memset(owner96, 'o', STG_ID_MAX);
    owner96[STG_ID_MAX] = '\0';
    stg_record longest = make_rec(false, 7, "z", owner96, "{}", 2);

    for (size_t i = 0; i <= sizeof cases / sizeof cases[0]; i++) {
        const stg_record *rec = i < sizeof cases / sizeof cases[0] ? &cases[i] : &longest;
        char *val;
        size_t len;
        stg_value_encode(rec, &val, &len);
        ck_assert_uint_eq(len, 12 + strlen(rec->ver.origin) + rec->ownerlen + rec->paylen);
        ck_assert_int_eq(val[OFF_FORMAT], 1);
        ck_assert_int_eq(val[OFF_FLAGS], rec->tombstone ? 1 : 0);
        ck_assert_uint_eq(stg_key_get_u64(val + OFF_HLC), rec->ver.hlc);
        assert_decodes_to(val, len, rec);
        free(val);
    }
}
END_TEST

START_TEST(test_roundtrip_random)
{
    rng r = rng_seeded("header_roundtrip_random", 21);
    for (int iter = 0; iter < 3000; iter++) {
        char origin[STG_ORIGIN_MAX + 1], owner[STG_ID_MAX + 1], payload[300];
        size_t ol = 1 + rng_below(&r, STG_ORIGIN_MAX), wl = rng_below(&r, STG_ID_MAX + 1);
        size_t pl = rng_below(&r, sizeof payload);
        for (size_t i = 0; i < ol; i++) origin[i] = "abc_019z"[rng_below(&r, 8)];
        origin[ol] = '\0';
        for (size_t i = 0; i < wl; i++) owner[i] = (char)(0x21 + rng_below(&r, 94));
        owner[wl] = '\0';
        for (size_t i = 0; i < pl; i++) payload[i] = (char)rng_next(&r);
        stg_record rec = make_rec(rng_below(&r, 2), rng_next(&r), origin, owner, payload, pl);
        char *val;
        size_t len;
        stg_value_encode(&rec, &val, &len);
        assert_decodes_to(val, len, &rec);
        free(val);
    }
}
END_TEST

/* ---- Rejections ------------------------------------------------------------------ */

/* With an empty payload every byte is load-bearing: every proper prefix
 * must be refused. */
START_TEST(test_every_truncation_rejected)
{
    stg_record recs[] = {
        make_rec(false, 0x1122334455667788ull, "paris", "alice@paris", "", 0),
        make_rec(true, 5, "tokyo", "", "", 0),
    };
    for (size_t r = 0; r < sizeof recs / sizeof recs[0]; r++) {
        char *val;
        size_t len;
        stg_value_encode(&recs[r], &val, &len);
        ck_assert_int_eq(decode_exact(val, len), 0);
        for (size_t cut = 0; cut < len; cut++)
            ck_assert_msg(decode_exact(val, cut) == DF_ECORRUPT,
                          "record %zu: prefix of %zu/%zu bytes decoded", r, cut, len);
        free(val);
    }
}
END_TEST

/* With a payload, every prefix that cuts into the header or the owner is
 * refused. The payload has no length of its own (it is the rest of the
 * value), so a prefix that only shortens it decodes -- to that prefix. */
START_TEST(test_truncation_into_payload)
{
    stg_record rec = make_rec(false, 99, "paris", "alice@paris", "{\"text\":\"hi\"}", 13);
    char *val;
    size_t len;
    stg_value_encode(&rec, &val, &len);
    size_t header = len - rec.paylen;
    for (size_t cut = 0; cut < header; cut++)
        ck_assert_msg(decode_exact(val, cut) == DF_ECORRUPT, "prefix of %zu bytes decoded", cut);
    for (size_t cut = header; cut < len; cut++) {
        stg_record want = rec;
        want.paylen = cut - header;
        assert_decodes_to(val, cut, &want);
    }
    free(val);
}
END_TEST

START_TEST(test_bad_format_byte)
{
    stg_record rec = make_rec(false, 1, "paris", "a@paris", "{}", 2);
    char *val;
    size_t len;
    stg_value_encode(&rec, &val, &len);
    static const unsigned char bad[] = {0, 2, 3, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        val[OFF_FORMAT] = (char)bad[i];
        ck_assert_msg(decode_exact(val, len) == DF_ECORRUPT, "format %u accepted", bad[i]);
    }
    val[OFF_FORMAT] = 1;
    ck_assert_int_eq(decode_exact(val, len), 0);
    free(val);
}
END_TEST

START_TEST(test_bad_flags)
{
    stg_record rec = make_rec(false, 1, "paris", "a@paris", "{}", 2);
    char *val;
    size_t len;
    stg_value_encode(&rec, &val, &len);
    static const unsigned char bad[] = {2, 3, 4, 0x10, 0x80, 0x81, 0xfe, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        val[OFF_FLAGS] = (char)bad[i];
        ck_assert_msg(decode_exact(val, len) == DF_ECORRUPT, "flags 0x%02x accepted", bad[i]);
    }
    /* Exactly the tombstone bit is fine, both ways. */
    stg_record got;
    val[OFF_FLAGS] = 1;
    ck_assert_int_eq(stg_value_decode(val, len, &got), 0);
    ck_assert(got.tombstone);
    val[OFF_FLAGS] = 0;
    ck_assert_int_eq(stg_value_decode(val, len, &got), 0);
    ck_assert(!got.tombstone);
    free(val);
}
END_TEST

/* Builds a value by hand: header with the given origin bytes and length
 * byte, then owner and payload. */
static size_t build_value(char *out, unsigned olen_byte, const char *origin, size_t olen,
                          unsigned wlen_byte, const char *owner, size_t wlen, const char *payload)
{
    size_t n = 0;
    out[n++] = 1;
    out[n++] = 0;
    stg_key_u64(out + n, 1234);
    n += 8;
    out[n++] = (char)olen_byte;
    memcpy(out + n, origin, olen);
    n += olen;
    out[n++] = (char)wlen_byte;
    memcpy(out + n, owner, wlen);
    n += wlen;
    size_t pl = strlen(payload);
    memcpy(out + n, payload, pl);
    return n + pl;
}

START_TEST(test_bad_origin)
{
    char buf[512];
    const char *owner = "alice@paris";
    size_t wl = strlen(owner);
    /* The builder itself makes valid values. */
    size_t n = build_value(buf, 5, "paris", 5, (unsigned)wl, owner, wl, "{}");
    ck_assert_int_eq(decode_exact(buf, n), 0);

    static const char *bad_origins[] = {"Paris",  "pa ris", "pa-ris",
                                        "pa@ris", "par\0s", "\xe9t\xe9"};
    static const size_t bad_lens[] = {5, 6, 6, 6, 5, 3};
    for (size_t i = 0; i < sizeof bad_origins / sizeof bad_origins[0]; i++) {
        n = build_value(buf, (unsigned)bad_lens[i], bad_origins[i], bad_lens[i], (unsigned)wl,
                        owner, wl, "{}");
        ck_assert_msg(decode_exact(buf, n) == DF_ECORRUPT, "origin %zu accepted", i);
    }
    /* Empty origin. */
    n = build_value(buf, 0, "", 0, (unsigned)wl, owner, wl, "{}");
    ck_assert_int_eq(decode_exact(buf, n), DF_ECORRUPT);
    /* 33 characters: one past STG_ORIGIN_MAX, though the bytes are there. */
    const char *o33 = "abcdefghijklmnopqrstuvwxyzabcdefg";
    n = build_value(buf, 33, o33, 33, (unsigned)wl, owner, wl, "{}");
    ck_assert_int_eq(decode_exact(buf, n), DF_ECORRUPT);
    n = build_value(buf, 32, o33, 32, (unsigned)wl, owner, wl, "{}");
    ck_assert_int_eq(decode_exact(buf, n), 0);
    /* An origin length that runs past the end of the value. */
    n = build_value(buf, 30, "paris", 5, 0, "", 0, "");
    ck_assert_int_eq(decode_exact(buf, n), DF_ECORRUPT);
}
END_TEST

START_TEST(test_bad_owner_length)
{
    char buf[512], owner[200];
    memset(owner, 'o', sizeof owner);
    /* 97 bytes of owner: one past STG_ID_MAX. */
    size_t n = build_value(buf, 5, "paris", 5, STG_ID_MAX + 1, owner, STG_ID_MAX + 1, "{}");
    ck_assert_int_eq(decode_exact(buf, n), DF_ECORRUPT);
    n = build_value(buf, 5, "paris", 5, STG_ID_MAX, owner, STG_ID_MAX, "{}");
    ck_assert_int_eq(decode_exact(buf, n), 0);
    /* An owner length that runs past the end. */
    n = build_value(buf, 5, "paris", 5, 20, owner, 3, "");
    ck_assert_int_eq(decode_exact(buf, n), DF_ECORRUPT);
}
END_TEST

/* ---- Versions ------------------------------------------------------------------- */

static void random_version(rng *r, stg_version *v)
{
    static const char *origins[] = {"a", "ab", "abc", "b", "paris", "tokyo", "new_york", "z"};
    memset(v, 0, sizeof *v);
    v->hlc = rng_below(r, 3) == 0 ? rng_next(r) : rng_below(r, 4);
    snprintf(v->origin, sizeof v->origin, "%s", origins[rng_below(r, 8)]);
}

static int qsort_version(const void *a, const void *b) { return stg_version_cmp(a, b); }

START_TEST(test_version_cmp_examples)
{
    stg_version a = {.hlc = 1, .origin = "tokyo"}, b = {.hlc = 2, .origin = "a"};
    ck_assert_int_lt(stg_version_cmp(&a, &b), 0); /* hlc decides first */
    ck_assert_int_gt(stg_version_cmp(&b, &a), 0);
    stg_version c = {.hlc = 2, .origin = "ab"};
    ck_assert_int_lt(stg_version_cmp(&b, &c), 0); /* then origin, bytewise */
    stg_version d = {.hlc = 2, .origin = "b"};
    ck_assert_int_lt(stg_version_cmp(&c, &d), 0);
    stg_version e = {.hlc = UINT64_MAX, .origin = "a"}, f = {.hlc = 0, .origin = "z"};
    ck_assert_int_gt(stg_version_cmp(&e, &f), 0);
    ck_assert_int_eq(stg_version_cmp(&c, &c), 0);
}
END_TEST

START_TEST(test_version_cmp_total_order)
{
    rng r = rng_seeded("version_total_order", 22);
    for (int iter = 0; iter < 20000; iter++) {
        stg_version a, b, c;
        random_version(&r, &a);
        random_version(&r, &b);
        random_version(&r, &c);
        int ab = unit_sign(stg_version_cmp(&a, &b)), ba = unit_sign(stg_version_cmp(&b, &a));
        int bc = unit_sign(stg_version_cmp(&b, &c)), ac = unit_sign(stg_version_cmp(&a, &c));
        ck_assert_int_eq(stg_version_cmp(&a, &a), 0);
        ck_assert_int_eq(ab, -ba); /* antisymmetric */
        ck_assert_int_eq(ab == 0, a.hlc == b.hlc && !strcmp(a.origin, b.origin)); /* 0 iff equal */
        if (ab <= 0 && bc <= 0) ck_assert_int_le(ac, 0); /* transitive */
        if (ab >= 0 && bc >= 0) ck_assert_int_ge(ac, 0);
        if (a.hlc != b.hlc) ck_assert_int_eq(ab, a.hlc < b.hlc ? -1 : 1);
    }
    /* Sorting by it gives a sequence in which every pair is in order. */
    stg_version v[200];
    for (size_t i = 0; i < 200; i++) random_version(&r, &v[i]);
    qsort(v, 200, sizeof v[0], qsort_version);
    for (size_t i = 0; i < 200; i++)
        for (size_t j = i + 1; j < 200; j++) ck_assert_int_le(stg_version_cmp(&v[i], &v[j]), 0);
}
END_TEST

static Suite *header_suite(void)
{
    Suite *s = suite_create("storage/header");
    TCase *tc = tcase_create("value");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_table);
    tcase_add_test(tc, test_roundtrip_random);
    tcase_add_test(tc, test_every_truncation_rejected);
    tcase_add_test(tc, test_truncation_into_payload);
    tcase_add_test(tc, test_bad_format_byte);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_test(tc, test_bad_origin);
    tcase_add_test(tc, test_bad_owner_length);
    suite_add_tcase(s, tc);
    TCase *ver = tcase_create("versions");
    tcase_set_timeout(ver, 60);
    tcase_add_test(ver, test_version_cmp_examples);
    tcase_add_test(ver, test_version_cmp_total_order);
    suite_add_tcase(s, ver);
    return s;
}

int main(void) { return unit_run(header_suite()); }
