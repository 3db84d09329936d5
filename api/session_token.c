/* session_token.c -- the Session-Token codec: a vector of log positions,
 * small and URL-safe. Pure functions (fuzzed).
 *
 * DESIGN: binary, then base64url without padding:
 *   u8 version (1) | u8 n (1..REPL_POS_MAX) |
 *   n x (u8 len, region name | u32 epoch, big-endian | seq, LEB128) |
 *   4 bytes of SipHash-2-4 over everything before them
 * Names are valid region names, each once; a seq is written in the fewest
 * bytes. The check catches a token that was cut, copied wrong or made up;
 * it is not a signature: a forged token can only make its own request
 * wait (bounded) or fail. Three regions take about 60 characters. */
#include "api.h"

#include <sodium.h>
#include <string.h>

#define VERSION 1
#define CHECK_LEN 4
#define BIN_MAX (2 + REPL_POS_MAX * (1 + STG_ORIGIN_MAX + 4 + 10) + CHECK_LEN)

static const unsigned char check_key[crypto_shorthash_KEYBYTES] = "driftfeed-sess-1";

static void check(const unsigned char *p, size_t n, unsigned char out[CHECK_LEN])
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, p, n, check_key);
    memcpy(out, h, CHECK_LEN);
}

/* base64url without padding, by table. The token is not secret, so the
 * constant-time codec of libsodium buys nothing here, and it cost about
 * 8,000 instructions a token read (of ~68,000 for the whole read); it
 * also decodes bytes 0x80-0xff as '_' (libsodium 1.0.18). */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *p, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        for (int k = 18; k >= 0; k -= 6) out[o++] = b64[v >> k & 63];
    }
    if (n - i == 1) {
        out[o++] = b64[p[i] >> 2];
        out[o++] = b64[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = b64[v >> 10];
        out[o++] = b64[v >> 4 & 63];
        out[o++] = b64[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes s (canonical only: no padding, unused low bits zero) into out
 * (cap bytes); returns the length or -1. */
static long b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap) return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc ? -1 : (long)n; /* leftover bits must be zero */
}

size_t api_session_encode(const api_session_vec *v, char *out, size_t cap)
{
    unsigned char bin[BIN_MAX];
    size_t n = 0;
    bin[n++] = VERSION;
    bin[n++] = (unsigned char)v->n;
    for (size_t i = 0; i < v->n; i++) {
        const repl_pos *p = &v->pos[i];
        size_t len = strlen(p->origin);
        bin[n++] = (unsigned char)len;
        memcpy(bin + n, p->origin, len);
        n += len;
        for (int s = 24; s >= 0; s -= 8) bin[n++] = (unsigned char)(p->epoch >> s);
        uint64_t seq = p->seq;
        do {
            bin[n++] = (unsigned char)((seq & 0x7f) | (seq > 0x7f ? 0x80 : 0));
            seq >>= 7;
        } while (seq);
    }
    check(bin, n, bin + n);
    n += CHECK_LEN;
    if (cap < (n * 4 + 2) / 3 + 1) return 0;
    return b64_encode(bin, n, out);
}

int api_session_decode(const char *s, size_t len, api_session_vec *v)
{
    unsigned char bin[BIN_MAX];
    v->n = 0;
    long got = len && len <= API_SESSION_TOKEN_MAX ? b64_decode(s, len, bin, sizeof bin) : -1;
    if (got < 2 + CHECK_LEN) return -1;
    size_t n = (size_t)got;
    unsigned char want[CHECK_LEN];
    check(bin, n - CHECK_LEN, want);
    if (sodium_memcmp(want, bin + n - CHECK_LEN, CHECK_LEN) != 0) return -1;
    n -= CHECK_LEN;
    if (bin[0] != VERSION || bin[1] == 0 || bin[1] > REPL_POS_MAX) return -1;
    size_t off = 2, count = bin[1];
    for (size_t i = 0; i < count; i++) {
        repl_pos *p = &v->pos[i];
        if (off >= n) return -1;
        size_t nl = bin[off++];
        if (nl > STG_ORIGIN_MAX || n - off < nl + 4 ||
            !stg_valid_name((const char *)bin + off, nl, STG_ORIGIN_MAX))
            return -1;
        memcpy(p->origin, bin + off, nl);
        p->origin[nl] = '\0';
        off += nl;
        for (size_t j = 0; j < i; j++)
            if (strcmp(v->pos[j].origin, p->origin) == 0) return -1;
        p->epoch = (uint32_t)bin[off] << 24 | (uint32_t)bin[off + 1] << 16 |
                   (uint32_t)bin[off + 2] << 8 | bin[off + 3];
        off += 4;
        uint64_t seq = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (off >= n || shift > 63) return -1;
            unsigned char b = bin[off++];
            /* the last of ten bytes holds one bit; a trailing 0 byte is not canonical */
            if ((shift == 63 && b > 1) || (shift > 0 && b == 0)) return -1;
            seq |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
        }
        p->seq = seq;
    }
    if (off != n) return -1;
    v->n = count;
    return 0;
}

void api_session_merge(api_session_vec *into, const repl_pos *pos, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < into->n && strcmp(into->pos[j].origin, pos[i].origin) != 0) j++;
        if (j == into->n) {
            if (into->n == REPL_POS_MAX) continue;
            into->pos[into->n++] = pos[i];
        } else if (pos[i].epoch && into->pos[j].epoch && pos[i].epoch != into->pos[j].epoch) {
            into->pos[j] = pos[i]; /* another store of that region: this one counts */
        } else {
            if (!into->pos[j].epoch) into->pos[j].epoch = pos[i].epoch;
            if (pos[i].seq > into->pos[j].seq) into->pos[j].seq = pos[i].seq;
        }
    }
}
