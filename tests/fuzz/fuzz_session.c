/* fuzz_session.c -- libFuzzer target: Session-Token headers
 * (api_session_decode), bytes a client hands back to us. A token that
 * decodes re-encodes to the same characters (the format is canonical) and
 * holds 1..REPL_POS_MAX distinct valid region names. The decoded vectors
 * are merged (api_session_merge) with themselves, with each other and with
 * a nearly full vector, and every merge is checked entry by entry against
 * what the merge promises.
 *
 * Each input is read twice. As text: one token, or two joined by '.' (not
 * a base64url character, so the whole input then never decodes; each half
 * is tried). As the bytes inside a token: sealed here with the check and
 * base64url-encoded, so mutations reach the parser behind the check
 * (random text almost never carries a right one). */
#include "api.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks stay in release builds (assert would vanish under NDEBUG). */
#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

static bool pos_eq(const repl_pos *a, const repl_pos *b)
{
    return strcmp(a->origin, b->origin) == 0 && a->epoch == b->epoch && a->seq == b->seq;
}

static bool vec_eq(const api_session_vec *a, const api_session_vec *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!pos_eq(&a->pos[i], &b->pos[i])) return false;
    return true;
}

/* The entry of pos[0..n) for origin, or NULL. */
static const repl_pos *find(const repl_pos *pos, size_t n, const char *origin)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pos[i].origin, origin) == 0) return &pos[i];
    return NULL;
}

/* At most REPL_POS_MAX entries, valid names, each once. */
static void check_vec(const api_session_vec *v)
{
    CHECK(v->n <= REPL_POS_MAX);
    for (size_t i = 0; i < v->n; i++) {
        const char *o = v->pos[i].origin;
        CHECK(stg_valid_name(o, strnlen(o, STG_ORIGIN_MAX + 1), STG_ORIGIN_MAX));
        CHECK(find(v->pos, i, o) == NULL);
    }
}

/* A token that decodes: its invariants, and it encodes back to s. */
static void check_decoded(const api_session_vec *v, const char *s, size_t len)
{
    check_vec(v);
    CHECK(v->n >= 1);
    char out[API_SESSION_TOKEN_MAX + 1];
    size_t n = api_session_encode(v, out, sizeof out);
    CHECK(n == len && memcmp(out, s, len) == 0);
    CHECK(api_session_encode(v, out, n) == 0); /* no room for the NUL */
}

/* Merges pos (n entries, names distinct) into a copy of into and checks
 * the result: into's entries stay first and in order; a region in both
 * takes pos's entry when both epochs are known and differ, else the larger
 * seq and the known epoch; pos's new regions follow in order while there
 * is room. Returns the result. */
static api_session_vec merge_checked(const api_session_vec *into, const repl_pos *pos, size_t n)
{
    api_session_vec got = *into;
    api_session_merge(&got, pos, n);
    check_vec(&got);
    CHECK(got.n >= into->n);
    for (size_t i = 0; i < into->n; i++) {
        const repl_pos *a = &into->pos[i], *r = &got.pos[i];
        const repl_pos *b = find(pos, n, a->origin);
        CHECK(strcmp(r->origin, a->origin) == 0);
        if (!b) {
            CHECK(pos_eq(r, a));
        } else if (a->epoch && b->epoch && a->epoch != b->epoch) {
            CHECK(pos_eq(r, b));
        } else {
            CHECK(r->epoch == (a->epoch ? a->epoch : b->epoch));
            CHECK(r->seq == (a->seq > b->seq ? a->seq : b->seq));
        }
    }
    size_t next = into->n;
    for (size_t i = 0; i < n; i++) {
        if (find(into->pos, into->n, pos[i].origin)) continue;
        if (next == REPL_POS_MAX) {
            CHECK(find(got.pos, got.n, pos[i].origin) == NULL); /* no room: left out */
            continue;
        }
        CHECK(next < got.n && pos_eq(&got.pos[next], &pos[i]));
        next++;
    }
    CHECK(got.n == next);
    return got;
}

/* What session.c does with a merged vector: encode it (when not empty) and
 * read it back. */
static void check_reencodes(const api_session_vec *v)
{
    if (v->n == 0) return;
    char out[API_SESSION_TOKEN_MAX + 1];
    size_t n = api_session_encode(v, out, sizeof out);
    CHECK(n > 0 && n <= API_SESSION_TOKEN_MAX && strlen(out) == n);
    api_session_vec back;
    CHECK(api_session_decode(out, n, &back) == 0 && vec_eq(&back, v));
}

/* Merges of one decoded vector on its own. */
static void check_merges(const api_session_vec *v)
{
    /* With itself: nothing changes. */
    api_session_vec same = merge_checked(v, v->pos, v->n);
    CHECK(vec_eq(&same, v));
    /* Into nothing: v again. */
    api_session_vec empty = {0};
    api_session_vec fresh = merge_checked(&empty, v->pos, v->n);
    CHECK(vec_eq(&fresh, v));
    /* Into a vector with one free slot, epochs 0 and 1, seqs 0 and 1: the
     * cap, both epoch rules and seq 0 in into. */
    static api_session_vec full;
    if (full.n == 0) {
        for (size_t i = 0; i + 1 < REPL_POS_MAX; i++) {
            repl_pos *p = &full.pos[full.n++];
            snprintf(p->origin, sizeof p->origin, "%c", (int)('a' + i));
            p->epoch = (uint32_t)(i & 1);
            p->seq = i % 3 == 0 ? 0 : 1;
        }
    }
    api_session_vec capped = merge_checked(&full, v->pos, v->n);
    check_reencodes(&capped);
    /* And full merged into v. */
    api_session_vec rev = merge_checked(v, full.pos, full.n);
    check_reencodes(&rev);
}

/* The bytes b of a token (version, count, entries) with their check, as
 * the token's text in out; false if it would be longer than a token. */
static bool seal(const uint8_t *b, size_t n, char out[API_SESSION_TOKEN_MAX + 1])
{
    static const unsigned char key[crypto_shorthash_KEYBYTES] = "driftfeed-sess-1";
    unsigned char bin[API_SESSION_TOKEN_MAX], h[crypto_shorthash_BYTES];
    if (n + 4 > API_SESSION_TOKEN_MAX / 4 * 3) return false;
    crypto_shorthash(h, b, n, key);
    memcpy(bin, b, n);
    memcpy(bin + n, h, 4);
    sodium_bin2base64(out, API_SESSION_TOKEN_MAX + 1, bin, n + 4,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return true;
}

/* The input as the bytes inside a token. */
static void as_bytes(const uint8_t *data, size_t size)
{
    char tok[API_SESSION_TOKEN_MAX + 1];
    if (!seal(data, size, tok)) return;
    size_t n = strlen(tok);
    api_session_vec v;
    if (api_session_decode(tok, n, &v) < 0) return;
    check_decoded(&v, tok, n);
    check_merges(&v);
}

/* The input as text: one token, or two joined by '.'. */
static void as_text(const char *s, size_t size)
{
    api_session_vec v;
    if (api_session_decode(s, size, &v) == 0) {
        check_decoded(&v, s, size);
        check_merges(&v);
    } else {
        CHECK(v.n == 0);
    }
    const char *dot = memchr(s, '.', size);
    if (!dot) return;
    size_t na = (size_t)(dot - s), nb = size - na - 1;
    api_session_vec a, b;
    bool ok_a = api_session_decode(s, na, &a) == 0, ok_b = api_session_decode(dot + 1, nb, &b) == 0;
    if (ok_a) check_decoded(&a, s, na);
    if (ok_b) check_decoded(&b, dot + 1, nb);
    if (ok_a && ok_b) {
        api_session_vec ab = merge_checked(&a, b.pos, b.n);
        api_session_vec ba = merge_checked(&b, a.pos, a.n);
        check_reencodes(&ab);
        check_reencodes(&ba);
        /* Merging is idempotent: b again changes nothing. */
        api_session_vec again = merge_checked(&ab, b.pos, b.n);
        CHECK(vec_eq(&again, &ab));
    } else if (ok_a || ok_b) {
        check_merges(ok_a ? &a : &b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_bytes(data, size);
    as_text((const char *)data, size); /* not NUL-terminated: the length rules */
    return 0;
}
