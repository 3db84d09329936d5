/* test_session_token.c -- api/session_token.c: Session-Token encoding,
 * decoding and merging. Tokens are also built here byte by byte (with
 * their check, computed the way the format says), so the encoder is checked
 * against an independent writer and each malformed token is refused for the
 * reason it was made for, not for a wrong check. */
#include "../unit.h"

#include "api.h"

#include <sodium.h>

/* ---- Building tokens by hand ------------------------------------------------- */
typedef struct raw {
    unsigned char b[2048];
    size_t n;
} raw;

static void put(raw *t, const void *p, size_t n)
{
    ck_assert_uint_le(t->n + n, sizeof t->b);
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void put_u8(raw *t, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(t, &c, 1);
}

/* A seq in the fewest LEB128 bytes. */
static void put_leb(raw *t, uint64_t v)
{
    do {
        put_u8(t, (unsigned)(v & 0x7f) | (v >= 0x80 ? 0x80u : 0));
        v >>= 7;
    } while (v);
}

/* One entry's name and epoch; its seq follows (put_leb, or raw bytes). */
static void put_name_epoch(raw *t, const char *name, uint32_t epoch)
{
    put_u8(t, (unsigned)strlen(name));
    put(t, name, strlen(name));
    unsigned char e[4] = {epoch >> 24, epoch >> 16, epoch >> 8, epoch};
    put(t, e, 4);
}

static void put_pos(raw *t, const char *name, uint32_t epoch, uint64_t seq)
{
    put_name_epoch(t, name, epoch);
    put_leb(t, seq);
}

static raw header(unsigned version, unsigned count)
{
    raw t = {.n = 0};
    put_u8(&t, version);
    put_u8(&t, count);
    return t;
}

/* base64url (no padding) of t's bytes and their check: the first 4 bytes
 * of SipHash-2-4 keyed "driftfeed-sess-1". */
static void seal(const raw *t, char *out, size_t cap)
{
    static const unsigned char key[crypto_shorthash_KEYBYTES] = "driftfeed-sess-1";
    unsigned char h[crypto_shorthash_BYTES], b[sizeof t->b + 4];
    crypto_shorthash(h, t->b, t->n, key);
    memcpy(b, t->b, t->n);
    memcpy(b + t->n, h, 4);
    ck_assert_uint_ge(
        cap, sodium_base64_ENCODED_LEN(t->n + 4, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    sodium_bin2base64(out, cap, b, t->n + 4, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static bool decodes(const char *s)
{
    api_session_vec v;
    int rc = api_session_decode(s, strlen(s), &v);
    ck_assert(rc == 0 || rc == -1);
    if (rc < 0) ck_assert_uint_eq(v.n, 0);
    return rc == 0;
}

/* t sealed must be refused (what). */
static void refused(const raw *t, const char *what)
{
    char tok[4096];
    seal(t, tok, sizeof tok);
    ck_assert_msg(!decodes(tok), "%s: %s was accepted", what, tok);
}

/* ---- Vectors -------------------------------------------------------------------- */
static repl_pos pos(const char *name, uint32_t epoch, uint64_t seq)
{
    repl_pos p = {.epoch = epoch, .seq = seq};
    snprintf(p.origin, sizeof p.origin, "%s", name);
    return p;
}

static void vec_eq(const api_session_vec *got, const api_session_vec *want)
{
    ck_assert_uint_eq(got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        ck_assert_str_eq(got->pos[i].origin, want->pos[i].origin);
        ck_assert_uint_eq(got->pos[i].epoch, want->pos[i].epoch);
        ck_assert_uint_eq(got->pos[i].seq, want->pos[i].seq);
    }
}

/* Encodes v, checks it is the token written by hand and decodes back to v. */
static void round_trip(const api_session_vec *v)
{
    char tok[API_SESSION_TOKEN_MAX + 1], want[4096];
    size_t n = api_session_encode(v, tok, sizeof tok);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, API_SESSION_TOKEN_MAX);
    ck_assert_uint_eq(strlen(tok), n);
    raw t = header(1, (unsigned)v->n);
    for (size_t i = 0; i < v->n; i++) put_pos(&t, v->pos[i].origin, v->pos[i].epoch, v->pos[i].seq);
    seal(&t, want, sizeof want);
    ck_assert_str_eq(tok, want);
    api_session_vec back;
    ck_assert_int_eq(api_session_decode(tok, n, &back), 0);
    vec_eq(&back, v);
}

static const uint64_t seqs[] = {0, 1, 127, 128, 16383, 16384, UINT64_MAX - 1, UINT64_MAX};
static const uint32_t epochs[] = {0, 1, 0x80000000u, 0xffffffffu};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_one_position_round_trips)
{
    for (size_t i = 0; i < LEN(seqs); i++)
        for (size_t j = 0; j < LEN(epochs); j++) {
            api_session_vec v = {.n = 1, .pos = {pos("paris", epochs[j], seqs[i])}};
            round_trip(&v);
        }
    api_session_vec v = {.n = 1, .pos = {pos("abcdefghijklmnopqrstuvwxyz_01234", 7, 9)}};
    round_trip(&v); /* the longest name */
}
END_TEST

/* The i-th longest name: 'r', two letters for i, '_', then 'x' up to
 * STG_ORIGIN_MAX characters. */
static void long_name(char out[STG_ORIGIN_MAX + 1], size_t i)
{
    memset(out, 'x', STG_ORIGIN_MAX);
    out[STG_ORIGIN_MAX] = '\0';
    out[0] = 'r';
    out[1] = (char)('a' + i / 26);
    out[2] = (char)('a' + i % 26);
    out[3] = '_';
}

/* REPL_POS_MAX positions with names of the longest length and the
 * largest seqs: the longest token, still within API_SESSION_TOKEN_MAX. */
START_TEST(test_full_vector_round_trips)
{
    for (size_t k = 0; k < LEN(seqs); k++) {
        api_session_vec v = {.n = REPL_POS_MAX};
        for (size_t i = 0; i < REPL_POS_MAX; i++) {
            v.pos[i] = pos("", epochs[(i + k) % LEN(epochs)], seqs[(i + k) % LEN(seqs)]);
            long_name(v.pos[i].origin, i);
        }
        round_trip(&v);
    }
    api_session_vec v = {.n = REPL_POS_MAX};
    for (size_t i = 0; i < REPL_POS_MAX; i++) {
        v.pos[i] = pos("", 0xffffffffu, UINT64_MAX);
        long_name(v.pos[i].origin, i);
    }
    char tok[API_SESSION_TOKEN_MAX + 1];
    size_t n = api_session_encode(&v, tok, sizeof tok);
    ck_assert_uint_gt(n, 1000);
    ck_assert_uint_le(n, API_SESSION_TOKEN_MAX);
    ck_assert_uint_eq(api_session_encode(&v, tok, n), 0); /* no room for the NUL */
    ck_assert_uint_eq(api_session_encode(&v, tok, n + 1), n);
}
END_TEST

START_TEST(test_random_vectors_round_trip)
{
    rng r = rng_seeded("test_random_vectors_round_trip", 1789);
    for (int round = 0; round < 2000; round++) {
        api_session_vec v = {.n = 1 + rng_below(&r, REPL_POS_MAX)};
        for (size_t i = 0; i < v.n; i++) {
            char name[STG_ORIGIN_MAX + 1];
            int len = snprintf(name, sizeof name, "%zu_", i); /* distinct */
            size_t more = rng_below(&r, STG_ORIGIN_MAX - (size_t)len + 1);
            for (size_t k = 0; k < more; k++) name[len + k] = "az09_"[rng_below(&r, 5)];
            name[len + more] = '\0';
            uint64_t seq = rng_next(&r) >> rng_below(&r, 64);
            v.pos[i] = pos(name, (uint32_t)rng_next(&r), seq);
        }
        round_trip(&v);
    }
}
END_TEST

/* The length given is the token: bytes after it are not read. */
START_TEST(test_length_bounds_the_token)
{
    api_session_vec v = {.n = 1, .pos = {pos("tokyo", 3, 300)}};
    char tok[API_SESSION_TOKEN_MAX + 8];
    size_t n = api_session_encode(&v, tok, sizeof tok);
    strcat(tok, "AAAA");
    api_session_vec back;
    ck_assert_int_eq(api_session_decode(tok, n, &back), 0);
    vec_eq(&back, &v);
    ck_assert_int_eq(api_session_decode(tok, n + 4, &back), -1);
    ck_assert_int_eq(api_session_decode(tok, n - 1, &back), -1);
}
END_TEST

/* ---- What decode refuses ------------------------------------------------------------ */
static void valid_token(char *tok, size_t cap)
{
    api_session_vec v = {.n = 3,
                         .pos = {pos("paris", 1, 42), pos("tokyo", 2, 128), pos("lima", 0, 0)}};
    ck_assert_uint_gt(api_session_encode(&v, tok, cap), 0);
    ck_assert(decodes(tok));
}

START_TEST(test_rejects_bad_text)
{
    api_session_vec v;
    ck_assert_int_eq(api_session_decode("", 0, &v), -1);
    ck_assert_int_eq(api_session_decode("AQ", 0, &v), -1);

    char big[API_SESSION_TOKEN_MAX + 2];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(api_session_decode(big, API_SESSION_TOKEN_MAX + 1, &v), -1);

    char tok[256], t[260];
    valid_token(tok, sizeof tok);
    size_t n = strlen(tok);
    /* Characters outside base64url, in the middle and at the end. */
    const char *bad = "+/=.* \t\n%\x80\xff";
    for (const char *c = bad; *c; c++) {
        for (size_t at = 0; at < n; at += n / 3) {
            snprintf(t, sizeof t, "%s", tok);
            t[at] = *c;
            ck_assert_msg(!decodes(t), "'%c' at %zu accepted", *c, at);
        }
        snprintf(t, sizeof t, "%s%c", tok, *c);
        ck_assert_msg(!decodes(t), "'%c' at the end accepted", *c);
    }
    /* A NUL inside the given length. */
    snprintf(t, sizeof t, "%s", tok);
    t[n / 2] = '\0';
    ck_assert_int_eq(api_session_decode(t, n, &v), -1);
}
END_TEST

/* Bytes 0x80..0xff in place of a character: libsodium 1.0.18 decodes each
 * of them as '_', so in place of a '_' the token would decode to the same
 * bytes, check included. */
START_TEST(test_rejects_high_bytes)
{
    api_session_vec v = {.n = 2,
                         .pos = {pos("paris", 0xffffffffu, UINT64_MAX), pos("tokyo", 1, 1)}};
    char tok[256], t[256];
    size_t n = api_session_encode(&v, tok, sizeof tok);
    ck_assert_ptr_nonnull(strchr(tok, '_'));
    for (size_t at = 0; at < n; at++) {
        if (tok[at] != '_') continue;
        for (int c = 0x80; c <= 0xff; c++) {
            memcpy(t, tok, n + 1);
            t[at] = (char)c;
            ck_assert_msg(!decodes(t), "0x%02x in place of '_' at %zu accepted", c, at);
        }
    }
}
END_TEST

/* The encoder writes no padding; a padded token is refused, whether the
 * padding comes after a token or from a padded encoder. */
START_TEST(test_rejects_padding)
{
    char tok[256], t[260];
    for (int names = 1; names <= 3; names++) {
        api_session_vec v = {.n = (size_t)names,
                             .pos = {pos("a", 1, 1), pos("bb", 2, 2), pos("ccc", 3, 3)}};
        size_t n = api_session_encode(&v, tok, sizeof tok);
        snprintf(t, sizeof t, "%s=", tok);
        ck_assert(!decodes(t));
        snprintf(t, sizeof t, "%s==", tok);
        ck_assert(!decodes(t));
        unsigned char bin[256];
        size_t bn;
        ck_assert_int_eq(sodium_base642bin(bin, sizeof bin, tok, n, NULL, &bn, NULL,
                                           sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                         0);
        sodium_bin2base64(t, sizeof t, bin, bn, sodium_base64_VARIANT_URLSAFE);
        ck_assert_int_eq(strcmp(t, tok) != 0,
                         bn % 3 != 0); /* padded when it is not a multiple of 3 */
        if (bn % 3) ck_assert(!decodes(t));
    }
}
END_TEST

/* Any one character changed, and any cut: the check (or the base64
 * itself) refuses it. */
START_TEST(test_rejects_changed_or_cut)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char tok[256], t[256];
    valid_token(tok, sizeof tok);
    size_t n = strlen(tok);
    for (size_t at = 0; at < n; at++) {
        snprintf(t, sizeof t, "%s", tok);
        const char *p = strchr(alphabet, t[at]);
        ck_assert_ptr_nonnull(p);
        t[at] = alphabet[(size_t)(p - alphabet + 1 + at % 63) % 64];
        ck_assert_msg(!decodes(t), "changed at %zu: %s accepted", at, t);
    }
    api_session_vec v;
    for (size_t len = 0; len < n; len++)
        ck_assert_msg(api_session_decode(tok, len, &v) == -1, "cut to %zu accepted", len);
    /* The check is of the bytes: a wrong one is refused, the right one not. */
    raw t1 = header(1, 1);
    put_pos(&t1, "paris", 1, 1);
    char good[64];
    seal(&t1, good, sizeof good);
    ck_assert(decodes(good));
    unsigned char bin[64];
    size_t bn;
    ck_assert_int_eq(sodium_base642bin(bin, sizeof bin, good, strlen(good), NULL, &bn, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    for (size_t i = 0; i < bn * 8; i++) {
        bin[i / 8] ^= (unsigned char)(1u << (i % 8));
        sodium_bin2base64(t, sizeof t, bin, bn, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        ck_assert_msg(!decodes(t), "bit %zu flipped accepted", i);
        bin[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
}
END_TEST

/* Tokens with a right check, wrong inside. */
START_TEST(test_rejects_bad_structure)
{
    raw t;
    for (unsigned version = 0; version < 256; version++) {
        if (version == 1) continue;
        t = header(version, 1);
        put_pos(&t, "paris", 1, 1);
        refused(&t, "version");
    }
    t = header(1, 0);
    refused(&t, "n=0");
    t = header(1, 0);
    put_pos(&t, "paris", 1, 1);
    refused(&t, "n=0 with an entry");
    t = header(1, REPL_POS_MAX + 1);
    for (size_t i = 0; i < REPL_POS_MAX + 1; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%zu", i);
        put_pos(&t, name, 1, 1);
    }
    refused(&t, "n>REPL_POS_MAX");
    t = header(1, 255);
    put_pos(&t, "paris", 1, 1);
    refused(&t, "n=255");
    t = header(1, 2);
    put_pos(&t, "paris", 1, 1);
    refused(&t, "fewer entries than n");
    t = header(1, 1);
    put_pos(&t, "paris", 1, 1);
    put_pos(&t, "tokyo", 1, 1);
    refused(&t, "more entries than n");
    t = header(1, 1);
    put_pos(&t, "paris", 1, 1);
    put_u8(&t, 0);
    refused(&t, "a trailing byte");
    t = header(1, 1);
    refused(&t, "no entry at all");

    /* Cut inside an entry, each place, with a check of what is left. */
    raw whole = header(1, 1);
    put_pos(&whole, "paris", 0x01020304, 300);
    for (size_t n = 2; n < whole.n; n++) {
        t = whole;
        t.n = n;
        refused(&t, "cut entry");
    }
}
END_TEST

START_TEST(test_rejects_bad_names)
{
    raw t = header(1, 3);
    put_pos(&t, "paris", 1, 1);
    put_pos(&t, "tokyo", 1, 1);
    put_pos(&t, "paris", 2, 2);
    refused(&t, "duplicate");
    t = header(1, 2);
    put_pos(&t, "paris", 1, 1);
    put_pos(&t, "paris", 1, 1);
    refused(&t, "same entry twice");
    const char *bad[] = {
        "",       "Paris",  "PARIS",     "par-is",
        "par is", "par.is", "p\xc3\xa9", "abcdefghijklmnopqrstuvwxyz_012345" /* 33 */};
    for (size_t i = 0; i < LEN(bad); i++) {
        t = header(1, 1);
        put_pos(&t, bad[i], 1, 1);
        refused(&t, bad[i]);
        t = header(1, 2);
        put_pos(&t, "tokyo", 1, 1);
        put_pos(&t, bad[i], 1, 1);
        refused(&t, bad[i]);
    }
    /* A NUL inside the name (stg_valid_name sees all of it). */
    t = header(1, 1);
    put_u8(&t, 3);
    put(&t, "a\0b", 3);
    put(&t, "\0\0\0\1", 4);
    put_leb(&t, 1);
    refused(&t, "NUL in a name");
    /* A length past the end of the token. */
    t = header(1, 1);
    put_u8(&t, 20);
    put(&t, "paris", 5);
    put(&t, "\0\0\0\1\1", 5);
    refused(&t, "name longer than the token");
    for (unsigned len = STG_ORIGIN_MAX + 1; len < 256; len += 37) {
        t = header(1, 1);
        put_u8(&t, len);
        for (unsigned k = 0; k < len; k++) put_u8(&t, 'a');
        put(&t, "\0\0\0\1\1", 5);
        refused(&t, "name too long");
    }
}
END_TEST

/* A token of one entry whose seq is the n bytes b: refused unless ok,
 * and then it reads as want. */
static void seq_bytes(const char *b, size_t n, bool ok, uint64_t want)
{
    raw t = header(1, 1);
    put_name_epoch(&t, "paris", 1);
    put(&t, b, n);
    char tok[64];
    seal(&t, tok, sizeof tok);
    api_session_vec v;
    int rc = api_session_decode(tok, strlen(tok), &v);
    ck_assert_msg(rc == (ok ? 0 : -1), "seq of %zu bytes from 0x%02x: %d", n, n ? b[0] & 0xff : 0,
                  rc);
    if (ok) ck_assert_uint_eq(v.pos[0].seq, want);
}

START_TEST(test_leb128_is_canonical)
{
    static const struct {
        const char *b;
        size_t n;
        bool ok;
        uint64_t want;
    } cases[] = {
        {"\x00", 1, true, 0},
        {"\x7f", 1, true, 127},
        {"\x80\x01", 2, true, 128},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, true, UINT64_MAX},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10, true, 1ull << 63},
        /* Not in the fewest bytes. */
        {"\x80\x00", 2, false, 0},
        {"\x81\x00", 2, false, 0},
        {"\xff\x80\x00", 3, false, 0},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 10, false, 0},
        /* Past 64 bits, or longer than ten bytes. */
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10, false, 0},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, false, 0},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00", 11, false, 0},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11, false, 0},
        /* Cut: none, or the last byte still says "more". */
        {"", 0, false, 0},
        {"\x80", 1, false, 0},
        {"\xff\xff", 2, false, 0},
    };
    for (size_t i = 0; i < LEN(cases); i++)
        seq_bytes(cases[i].b, cases[i].n, cases[i].ok, cases[i].want);
}
END_TEST

/* ---- Merge ---------------------------------------------------------------------------- */
START_TEST(test_merge_takes_larger_seq)
{
    api_session_vec v = {.n = 2, .pos = {pos("paris", 1, 5), pos("tokyo", 2, 9)}};
    repl_pos in[] = {pos("paris", 1, 7), pos("tokyo", 2, 3), pos("lima", 4, 1)};
    api_session_merge(&v, in, LEN(in));
    api_session_vec want = {.n = 3,
                            .pos = {pos("paris", 1, 7), pos("tokyo", 2, 9), pos("lima", 4, 1)}};
    vec_eq(&v, &want);
    api_session_merge(&v, in, LEN(in)); /* again: nothing changes */
    vec_eq(&v, &want);
    api_session_merge(&v, v.pos, v.n); /* with itself */
    vec_eq(&v, &want);
    api_session_vec e = {0};
    api_session_merge(&e, in, 0);
    ck_assert_uint_eq(e.n, 0);
}
END_TEST

/* Seq 0 is merged like any other (a standalone region's own position at
 * seq 0 still names its store); callers leave out what they do not want. */
START_TEST(test_merge_keeps_seq_0)
{
    api_session_vec v = {.n = 1, .pos = {pos("paris", 1, 5)}};
    repl_pos in[] = {pos("london", 1, 0), pos("paris", 0, 0), pos("paris", 1, 0)};
    api_session_merge(&v, in, LEN(in));
    api_session_vec want = {.n = 2, .pos = {pos("paris", 1, 5), pos("london", 1, 0)}};
    vec_eq(&v, &want); /* london added; paris keeps its seq and its epoch */
    repl_pos other = pos("paris", 9, 0);
    api_session_merge(&v, &other, 1);
    api_session_vec want2 = {.n = 2, .pos = {pos("paris", 9, 0), pos("london", 1, 0)}};
    vec_eq(&v, &want2); /* another store of paris, even at seq 0 */
    api_session_vec e = {0};
    repl_pos own = pos("lima", 0x5eed, 0);
    api_session_merge(&e, &own, 1);
    api_session_vec want3 = {.n = 1, .pos = {pos("lima", 0x5eed, 0)}};
    vec_eq(&e, &want3);
    round_trip(&e);
}
END_TEST

START_TEST(test_merge_epochs)
{
    /* Another store of the region: its position counts, even if lower. */
    api_session_vec v = {.n = 2, .pos = {pos("paris", 1, 100), pos("tokyo", 2, 9)}};
    repl_pos other = pos("paris", 3, 4);
    api_session_merge(&v, &other, 1);
    api_session_vec want = {.n = 2, .pos = {pos("paris", 3, 4), pos("tokyo", 2, 9)}};
    vec_eq(&v, &want);
    /* An unknown epoch (0) takes the other's, and the larger seq. */
    api_session_vec z = {.n = 1, .pos = {pos("paris", 0, 50)}};
    repl_pos known = pos("paris", 7, 3);
    api_session_merge(&z, &known, 1);
    api_session_vec want_z = {.n = 1, .pos = {pos("paris", 7, 50)}};
    vec_eq(&z, &want_z);
    /* A position of unknown epoch keeps the known one. */
    repl_pos unknown = pos("paris", 0, 60);
    api_session_merge(&z, &unknown, 1);
    api_session_vec want_z2 = {.n = 1, .pos = {pos("paris", 7, 60)}};
    vec_eq(&z, &want_z2);
    unknown.seq = 10;
    api_session_merge(&z, &unknown, 1);
    vec_eq(&z, &want_z2);
}
END_TEST

START_TEST(test_merge_capacity)
{
    api_session_vec v = {.n = 0};
    for (size_t i = 0; i < REPL_POS_MAX - 1; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%zu", i);
        v.pos[v.n++] = pos(name, 1, i + 1);
    }
    repl_pos in[] = {pos("x", 1, 1), pos("y", 1, 1), pos("r0", 1, 99), pos("z", 1, 1)};
    api_session_merge(&v, in, LEN(in));
    ck_assert_uint_eq(v.n, REPL_POS_MAX);
    ck_assert_str_eq(v.pos[REPL_POS_MAX - 1].origin, "x"); /* the first that fit */
    ck_assert_uint_eq(v.pos[0].seq, 99); /* known regions still merge when full */
    for (size_t i = 0; i < v.n; i++) {
        ck_assert_str_ne(v.pos[i].origin, "y");
        ck_assert_str_ne(v.pos[i].origin, "z");
    }
    round_trip(&v);
}
END_TEST

int main(void)
{
    if (sodium_init() < 0) return EXIT_FAILURE;
    Suite *s = suite_create("session_token");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_one_position_round_trips);
    tcase_add_test(tc, test_full_vector_round_trips);
    tcase_add_test(tc, test_random_vectors_round_trip);
    tcase_add_test(tc, test_length_bounds_the_token);
    tcase_add_test(tc, test_rejects_bad_text);
    tcase_add_test(tc, test_rejects_high_bytes);
    tcase_add_test(tc, test_rejects_padding);
    tcase_add_test(tc, test_rejects_changed_or_cut);
    tcase_add_test(tc, test_rejects_bad_structure);
    tcase_add_test(tc, test_rejects_bad_names);
    tcase_add_test(tc, test_leb128_is_canonical);
    tcase_add_test(tc, test_merge_takes_larger_seq);
    tcase_add_test(tc, test_merge_keeps_seq_0);
    tcase_add_test(tc, test_merge_epochs);
    tcase_add_test(tc, test_merge_capacity);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
