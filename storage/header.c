/* header.c -- the record header: format, tombstone flag and version. */
#include "storage.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT 1
#define FLAG_TOMBSTONE 1

int stg_version_cmp(const stg_version *a, const stg_version *b)
{
    if (a->hlc != b->hlc) return a->hlc < b->hlc ? -1 : 1;
    return strcmp(a->origin, b->origin);
}

bool stg_valid_name(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

void stg_make_id(char out[STG_ID_MAX + 1], const stg_version *v)
{
    snprintf(out, STG_ID_MAX + 1, "%016llx-%s", (unsigned long long)v->hlc, v->origin);
}

int stg_parse_id(const char *s, size_t n, stg_version *v)
{
    if (n < 18 || n > 17 + STG_ORIGIN_MAX || s[16] != '-') return DF_EINVAL;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return DF_EINVAL;
        h = (h << 4) | (uint64_t)d;
    }
    if (!stg_valid_name(s + 17, n - 17, STG_ORIGIN_MAX)) return DF_EINVAL;
    if (v) {
        v->hlc = h;
        memcpy(v->origin, s + 17, n - 17);
        v->origin[n - 17] = '\0';
    }
    return 0;
}

bool stg_valid_id(const char *s, size_t n) { return stg_parse_id(s, n, NULL) == 0; }

bool stg_valid_user_id(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at) return false;
    size_t nn = (size_t)(at - s);
    return stg_valid_name(s, nn, 30) && stg_valid_name(at + 1, n - nn - 1, STG_ORIGIN_MAX);
}

bool stg_kind_valid(int kind) { return kind >= STG_KIND_USER && kind <= STG_KIND_MAX; }

stg_cf stg_kind_cf(stg_kind kind)
{
    switch (kind) {
    case STG_KIND_USER: return STG_CF_USERS;
    case STG_KIND_FOLLOW: return STG_CF_FOLLOWS;
    case STG_KIND_POST: return STG_CF_POSTS;
    case STG_KIND_MESSAGE: return STG_CF_MESSAGES;
    }
    return STG_CF_META;
}

void stg_value_encode(const stg_record *rec, char **out, size_t *outlen)
{
    size_t olen = strlen(rec->ver.origin), wlen = rec->ownerlen;
    size_t n = 1 + 1 + 8 + 1 + olen + 1 + wlen + rec->paylen;
    assert(olen > 0 && olen <= STG_ORIGIN_MAX && wlen <= STG_ID_MAX);
    char *p = xmalloc(n);
    p[0] = FORMAT;
    p[1] = rec->tombstone ? FLAG_TOMBSTONE : 0;
    stg_key_u64(p + 2, rec->ver.hlc);
    p[10] = (char)olen;
    memcpy(p + 11, rec->ver.origin, olen);
    p[11 + olen] = (char)wlen;
    if (wlen) memcpy(p + 12 + olen, rec->owner, wlen);
    if (rec->paylen) memcpy(p + 12 + olen + wlen, rec->payload, rec->paylen);
    *out = p;
    *outlen = n;
}

int stg_value_decode(const char *val, size_t len, stg_record *rec)
{
    if (len < 11 || val[0] != FORMAT || (val[1] & ~FLAG_TOMBSTONE)) return DF_ECORRUPT;
    size_t olen = (unsigned char)val[10];
    if (olen == 0 || olen > STG_ORIGIN_MAX || 12 + olen > len) return DF_ECORRUPT;
    size_t wlen = (unsigned char)val[11 + olen];
    if (wlen > STG_ID_MAX || 12 + olen + wlen > len) return DF_ECORRUPT;
    rec->tombstone = (val[1] & FLAG_TOMBSTONE) != 0;
    rec->ver.hlc = stg_key_get_u64(val + 2);
    memcpy(rec->ver.origin, val + 11, olen);
    rec->ver.origin[olen] = '\0';
    if (!stg_valid_name(rec->ver.origin, olen, STG_ORIGIN_MAX)) return DF_ECORRUPT;
    rec->owner = val + 12 + olen;
    rec->ownerlen = wlen;
    rec->payload = val + 12 + olen + wlen;
    rec->paylen = len - 12 - olen - wlen;
    rec->value = val;
    rec->valuelen = len;
    return 0;
}
