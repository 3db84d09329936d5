/* test_record.c -- replication/record.c: the wire form of a source record,
 * its round trip and everything the decoder must refuse. */
#include "../unit.h"
#include "repl.h"

#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------------- */

/* Offsets in the wire form: codec, kind, key length (u16 BE), key... */
enum { OFF_CODEC = 0, OFF_KIND = 1, OFF_KLEN = 2, OFF_KEY = 4 };

static const char POST_ID[] = "00018bcfe5680000-paris";
static const char FOLLOW_KEY[] = "alice@paris\0bob@tokyo";
static const char MESSAGE_KEY[] = "alice@paris\0bob@tokyo\0"
                                  "00018bcfe5680001-tokyo";

static stg_record rec_of(stg_kind kind, const char *key, size_t keylen, bool tomb,
                         const char *owner, const char *payload)
{
    stg_record r = {.kind = kind,
                    .tombstone = tomb,
                    .key = key,
                    .keylen = keylen,
                    .owner = owner,
                    .ownerlen = strlen(owner),
                    .payload = payload,
                    .paylen = strlen(payload)};
    r.ver.hlc = 0x00018bcfe5680002ull;
    snprintf(r.ver.origin, sizeof r.ver.origin, "%s", "tokyo");
    return r;
}

static stg_record user_r(void)
{
    return rec_of(STG_KIND_USER, "alice@paris", 11, false, "alice@paris",
                  "{\"id\":\"alice@paris\",\"name\":\"alice\"}");
}
static stg_record follow_r(bool tomb)
{
    return rec_of(STG_KIND_FOLLOW, FOLLOW_KEY, sizeof FOLLOW_KEY - 1, tomb, "alice@paris", "");
}
static stg_record post_r(bool tomb)
{
    return rec_of(STG_KIND_POST, POST_ID, sizeof POST_ID - 1, tomb, "alice@paris",
                  tomb ? "" : "{\"id\":\"00018bcfe5680000-paris\",\"text\":\"hi\"}");
}
static stg_record message_r(void)
{
    return rec_of(STG_KIND_MESSAGE, MESSAGE_KEY, sizeof MESSAGE_KEY - 1, false, "bob@tokyo",
                  "{\"text\":\"hello\"}");
}

static void assert_same(const stg_record *got, const stg_record *want)
{
    ck_assert_int_eq(got->kind, want->kind);
    ck_assert_uint_eq(got->keylen, want->keylen);
    ck_assert_mem_eq(got->key, want->key, want->keylen);
    ck_assert_int_eq(got->tombstone, want->tombstone);
    ck_assert_uint_eq(got->ver.hlc, want->ver.hlc);
    ck_assert_str_eq(got->ver.origin, want->ver.origin);
    ck_assert_uint_eq(got->ownerlen, want->ownerlen);
    ck_assert_mem_eq(got->owner, want->owner, want->ownerlen);
    ck_assert_uint_eq(got->paylen, want->paylen);
    if (want->paylen) ck_assert_mem_eq(got->payload, want->payload, want->paylen);
}

/* Decodes a copy of buf[0..len) held in exactly len bytes (so ASan sees
 * any read past the end). On success the record is checked to point into
 * the copy, then re-pointed into buf so it stays valid for the caller. */
static int decode_exact(const char *buf, size_t len, stg_record *out)
{
    char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    stg_record rec;
    int rc = repl_record_decode(copy, len, &rec);
    if (rc == 0) {
        ck_assert(rec.key >= copy && rec.key + rec.keylen <= copy + len);
        ck_assert(rec.owner >= copy && rec.owner + rec.ownerlen <= copy + len);
        ck_assert(rec.payload >= copy && rec.payload + rec.paylen <= copy + len);
        rec.key = buf + (rec.key - copy);
        rec.owner = buf + (rec.owner - copy);
        rec.payload = buf + (rec.payload - copy);
        if (out) *out = rec;
    }
    free(copy);
    return rc;
}

/* Encodes rec with its key replaced by key[0..keylen) and decodes it. */
static int decode_with_key(stg_record rec, const char *key, size_t keylen)
{
    rec.key = key;
    rec.keylen = keylen;
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    int rc = decode_exact(buf, len, NULL);
    free(buf);
    return rc;
}

/* ---- Round trips --------------------------------------------------------------------- */

START_TEST(test_roundtrip_every_kind)
{
    stg_record recs[] = {user_r(),      follow_r(false), follow_r(true),
                         post_r(false), post_r(true),    message_r()};
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        char *buf;
        size_t len;
        repl_record_encode(&recs[i], &buf, &len);
        ck_assert_int_eq(buf[OFF_CODEC], 1);
        ck_assert_int_eq(buf[OFF_KIND], (int)recs[i].kind);
        ck_assert_uint_eq(((size_t)(unsigned char)buf[OFF_KLEN] << 8) |
                              (unsigned char)buf[OFF_KLEN + 1],
                          recs[i].keylen);
        ck_assert_mem_eq(buf + OFF_KEY, recs[i].key, recs[i].keylen);
        stg_record got;
        ck_assert_int_eq(decode_exact(buf, len, &got), 0);
        assert_same(&got, &recs[i]);
        free(buf);
    }
}
END_TEST

/* A key longer than 255 bytes needs both bytes of its length. */
START_TEST(test_roundtrip_long_key)
{
    char key[3 * STG_ID_MAX];
    memset(key, 'a', sizeof key);
    key[STG_ID_MAX] = key[2 * STG_ID_MAX + 1] = '\0';
    key[STG_ID_MAX + 1] = 'b'; /* participants in order */
    stg_record rec = rec_of(STG_KIND_MESSAGE, key, sizeof key, false, "a@b", "{}");
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    ck_assert_int_eq((unsigned char)buf[OFF_KLEN], sizeof key >> 8);
    stg_record got;
    ck_assert_int_eq(decode_exact(buf, len, &got), 0);
    assert_same(&got, &rec);
    free(buf);
}
END_TEST

/* ---- Rejections ------------------------------------------------------------------------ */

START_TEST(test_every_truncation_rejected)
{
    /* Records without payload: every byte counts, so every proper prefix
     * must be refused. */
    stg_record recs[] = {follow_r(false), follow_r(true), post_r(true)};
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        char *buf;
        size_t len;
        repl_record_encode(&recs[i], &buf, &len);
        for (size_t cut = 0; cut < len; cut++)
            ck_assert_msg(decode_exact(buf, cut, NULL) == DF_EINVAL,
                          "record %zu: %zu/%zu bytes decoded", i, cut, len);
        free(buf);
    }
    /* With a payload, every prefix that cuts into the key or the header. */
    stg_record withp[] = {user_r(), post_r(false), message_r()};
    for (size_t i = 0; i < sizeof withp / sizeof withp[0]; i++) {
        char *buf;
        size_t len;
        repl_record_encode(&withp[i], &buf, &len);
        for (size_t cut = 0; cut < len - withp[i].paylen; cut++)
            ck_assert_msg(decode_exact(buf, cut, NULL) == DF_EINVAL,
                          "record %zu: %zu/%zu bytes decoded", i, cut, len);
        free(buf);
    }
}
END_TEST

START_TEST(test_bad_codec_byte)
{
    stg_record rec = post_r(false);
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    static const unsigned char bad[] = {0, 2, 0x7f, 0x81, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        buf[OFF_CODEC] = (char)bad[i];
        ck_assert_msg(decode_exact(buf, len, NULL) == DF_EINVAL, "codec %u accepted", bad[i]);
    }
    free(buf);
}
END_TEST

START_TEST(test_bad_kind)
{
    stg_record rec = post_r(false);
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    static const unsigned char bad[] = {0, STG_KIND_MAX + 1, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        buf[OFF_KIND] = (char)bad[i];
        ck_assert_msg(decode_exact(buf, len, NULL) == DF_EINVAL, "kind %u accepted", bad[i]);
    }
    free(buf);
}
END_TEST

START_TEST(test_key_length_past_end)
{
    stg_record rec = post_r(false);
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    buf[OFF_KLEN] = (char)0xff;
    buf[OFF_KLEN + 1] = (char)0xff;
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    /* A key length that swallows the value leaves no valid header. */
    buf[OFF_KLEN] = 0;
    buf[OFF_KLEN + 1] = (char)(len - 4);
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    free(buf);
}
END_TEST

START_TEST(test_wrong_number_of_key_parts)
{
    /* A key with the right number of parts for each kind decodes. */
    ck_assert_int_eq(decode_with_key(user_r(), "a@b", 3), 0);
    ck_assert_int_eq(decode_with_key(follow_r(false), "a@b\0c@d", 7), 0);
    ck_assert_int_eq(decode_with_key(message_r(), "a@b\0c@d\0id", 10), 0);
    /* ... and one part more or fewer does not. */
    ck_assert_int_eq(decode_with_key(user_r(), "a@b\0c@d", 7), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(post_r(false), "a\0b", 3), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(follow_r(false), "a@b", 3), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(follow_r(false), "a@b\0c@d\0e", 9), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(message_r(), "a@b\0c@d", 7), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(message_r(), "a@b\0c@d\0id\0x", 12), DF_EINVAL);
}
END_TEST

START_TEST(test_empty_key_parts)
{
    ck_assert_int_eq(decode_with_key(user_r(), "", 0), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(follow_r(false), "\0b", 2), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(follow_r(false), "a\0", 2), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(follow_r(false), "\0", 1), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(message_r(), "a\0\0id", 5), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(message_r(), "a\0b\0", 4), DF_EINVAL);
    ck_assert_int_eq(decode_with_key(message_r(), "\0a\0id", 5), DF_EINVAL);
}
END_TEST

START_TEST(test_non_printable_key_bytes)
{
    static const unsigned char bad[] = {0x01, 0x09, 0x0a, 0x1f, ' ', 0x7f, 0x80, 0xc3, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        char key[] = "ali?e@paris";
        key[3] = (char)bad[i];
        ck_assert_msg(decode_with_key(user_r(), key, 11) == DF_EINVAL, "byte 0x%02x accepted",
                      bad[i]);
        char fkey[] = "alice@paris\0bo?@tokyo";
        fkey[14] = (char)bad[i];
        ck_assert_msg(decode_with_key(follow_r(false), fkey, sizeof fkey - 1) == DF_EINVAL,
                      "byte 0x%02x accepted in a follow key", bad[i]);
    }
    /* The printable extremes are fine. */
    ck_assert_int_eq(decode_with_key(user_r(), "!~", 2), 0);
}
END_TEST

START_TEST(test_key_part_too_long)
{
    char key[2 * STG_ID_MAX + 4];
    memset(key, 'a', sizeof key);
    ck_assert_int_eq(decode_with_key(user_r(), key, STG_ID_MAX), 0);
    ck_assert_int_eq(decode_with_key(user_r(), key, STG_ID_MAX + 1), DF_EINVAL);
    key[3] = '\0';
    ck_assert_int_eq(decode_with_key(follow_r(false), key, 4 + STG_ID_MAX), 0);
    ck_assert_int_eq(decode_with_key(follow_r(false), key, 4 + STG_ID_MAX + 1), DF_EINVAL);
}
END_TEST

START_TEST(test_message_participants_out_of_order)
{
    ck_assert_int_eq(decode_with_key(message_r(), "a@x\0b@x\0id", 10), 0);
    ck_assert_int_eq(decode_with_key(message_r(), "b@x\0a@x\0id", 10), DF_EINVAL);
    /* Equal participants: nobody messages themselves. */
    ck_assert_int_eq(decode_with_key(message_r(), "a@x\0a@x\0id", 10), DF_EINVAL);
    /* A prefix sorts first. */
    ck_assert_int_eq(decode_with_key(message_r(), "a\0ab\0id", 7), 0);
    ck_assert_int_eq(decode_with_key(message_r(), "ab\0a\0id", 7), DF_EINVAL);
}
END_TEST

START_TEST(test_missing_or_bad_owner)
{
    stg_record rec = post_r(false);
    rec.owner = "";
    rec.ownerlen = 0;
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    free(buf);
    rec.owner = "ali\0e";
    rec.ownerlen = 5;
    repl_record_encode(&rec, &buf, &len);
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    free(buf);
}
END_TEST

/* Errors in the stored value part surface as DF_EINVAL too. */
START_TEST(test_bad_value_part)
{
    stg_record rec = follow_r(false);
    char *buf;
    size_t len;
    repl_record_encode(&rec, &buf, &len);
    size_t v = OFF_KEY + rec.keylen; /* start of the stored value */
    buf[v] = 9; /* format */
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    buf[v] = 1;
    buf[v + 1] = 4; /* flags */
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    buf[v + 1] = 0;
    buf[v + 11] = 'T'; /* origin "tokyo" -> "Tokyo" */
    ck_assert_int_eq(decode_exact(buf, len, NULL), DF_EINVAL);
    buf[v + 11] = 't';
    ck_assert_int_eq(decode_exact(buf, len, NULL), 0);
    free(buf);
}
END_TEST

/* ---- Mutations ---------------------------------------------------------------------------- */

/* Random damage: flips, overwrites, truncations, insertions, deletions. */
static size_t mutate(rng *r, char *buf, size_t len, size_t cap)
{
    int rounds = 1 + (int)rng_below(r, 4);
    for (int i = 0; i < rounds; i++) {
        size_t at = len ? rng_below(r, len) : 0;
        switch (rng_below(r, 6)) {
        case 0:
            if (len) buf[at] ^= (char)(1u << rng_below(r, 8));
            break;
        case 1:
            if (len) buf[at] = (char)rng_next(r);
            break;
        case 2: /* a header byte: where the interesting checks are */
            if (len) buf[rng_below(r, len < 16 ? len : 16)] = (char)rng_below(r, 6);
            break;
        case 3: len = len ? rng_below(r, len) : 0; break;
        case 4:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (char)rng_next(r);
                len++;
            }
            break;
        case 5:
            if (len) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        }
    }
    return len;
}

START_TEST(test_mutations_never_crash)
{
    rng r = rng_seeded("record_mutations", 51);
    stg_record seeds[] = {user_r(),      follow_r(false), follow_r(true),
                          post_r(false), post_r(true),    message_r()};
    size_t accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        const stg_record *seed = &seeds[rng_below(&r, sizeof seeds / sizeof seeds[0])];
        char *enc, buf[512];
        size_t len;
        repl_record_encode(seed, &enc, &len);
        memcpy(buf, enc, len);
        free(enc);
        len = mutate(&r, buf, len, sizeof buf);
        stg_record got;
        int rc = decode_exact(buf, len, &got);
        ck_assert(rc == 0 || rc == DF_EINVAL);
        if (rc < 0) continue;
        accepted++;
        /* Whatever decodes re-encodes to something that decodes the same. */
        repl_record_encode(&got, &enc, &len);
        stg_record again;
        ck_assert_msg(decode_exact(enc, len, &again) == 0, "iteration %d: re-encoding refused",
                      iter);
        assert_same(&again, &got);
        free(enc);
    }
    fprintf(stderr, "record_mutations: %zu of 200000 mutants decoded\n", accepted);
    ck_assert_uint_gt(accepted, 0); /* the loop exercised the accepting path too */
}
END_TEST

static Suite *record_suite(void)
{
    Suite *s = suite_create("replication/record");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_every_kind);
    tcase_add_test(tc, test_roundtrip_long_key);
    tcase_add_test(tc, test_every_truncation_rejected);
    tcase_add_test(tc, test_bad_codec_byte);
    tcase_add_test(tc, test_bad_kind);
    tcase_add_test(tc, test_key_length_past_end);
    tcase_add_test(tc, test_wrong_number_of_key_parts);
    tcase_add_test(tc, test_empty_key_parts);
    tcase_add_test(tc, test_non_printable_key_bytes);
    tcase_add_test(tc, test_key_part_too_long);
    tcase_add_test(tc, test_message_participants_out_of_order);
    tcase_add_test(tc, test_missing_or_bad_owner);
    tcase_add_test(tc, test_bad_value_part);
    tcase_add_test(tc, test_mutations_never_crash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(record_suite()); }
