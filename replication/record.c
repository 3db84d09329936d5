/* record.c -- the replication record codec: a source record on the wire. */
#include "repl.h"

#include <stdlib.h>
#include <string.h>

#define CODEC 1
#define KEY_MAX (3 * STG_ID_MAX + 8)

void repl_record_encode(const stg_record *rec, char **out, size_t *outlen)
{
    char *val;
    size_t vlen;
    stg_value_encode(rec, &val, &vlen);
    size_t n = 4 + rec->keylen + vlen;
    char *p = xmalloc(n);
    p[0] = CODEC;
    p[1] = (char)rec->kind;
    p[2] = (char)(rec->keylen >> 8);
    p[3] = (char)(rec->keylen & 0xff);
    memcpy(p + 4, rec->key, rec->keylen);
    memcpy(p + 4 + rec->keylen, val, vlen);
    free(val);
    *out = p;
    *outlen = n;
}

/* Key parts are non-empty, printable ASCII without separators. */
static bool valid_key(stg_kind kind, const char *k, size_t n)
{
    if (n == 0 || n > KEY_MAX) return false;
    size_t parts = 1, partlen = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == 0) {
            if (partlen == 0) return false;
            parts++;
            partlen = 0;
        } else if (c < 0x21 || c > 0x7e || ++partlen > STG_ID_MAX) {
            return false;
        }
    }
    if (partlen == 0) return false;
    switch (kind) {
    case STG_KIND_USER:
    case STG_KIND_POST: return parts == 1;
    case STG_KIND_FOLLOW: return parts == 2;
    case STG_KIND_MESSAGE: return parts == 3;
    }
    return false;
}

int repl_record_decode(const char *buf, size_t len, stg_record *rec)
{
    if (len < 4 || buf[0] != CODEC || !stg_kind_valid((unsigned char)buf[1])) return DF_EINVAL;
    size_t klen = ((size_t)(unsigned char)buf[2] << 8) | (unsigned char)buf[3];
    if (4 + klen > len) return DF_EINVAL;
    memset(rec, 0, sizeof *rec);
    rec->kind = (stg_kind)(unsigned char)buf[1];
    rec->key = buf + 4;
    rec->keylen = klen;
    if (!valid_key(rec->kind, rec->key, klen)) return DF_EINVAL;
    if (stg_value_decode(buf + 4 + klen, len - 4 - klen, rec) < 0) return DF_EINVAL;
    if (rec->ownerlen == 0 || memchr(rec->owner, 0, rec->ownerlen)) return DF_EINVAL;
    if (rec->kind == STG_KIND_MESSAGE && !rec->tombstone) {
        const char *b;
        size_t nb;
        int na = stg_key_split(rec->key, klen, &b, &nb);
        const char *id;
        size_t nid;
        int nb2 = na < 0 ? -1 : stg_key_split(b, nb, &id, &nid);
        if (nb2 < 0) return DF_EINVAL;
        size_t m = (size_t)na < (size_t)nb2 ? (size_t)na : (size_t)nb2;
        int c = memcmp(rec->key, b, m);
        if (c > 0 || (c == 0 && na >= nb2)) return DF_EINVAL; /* participants a < b */
    }
    return 0;
}

const char *repl_reject_name(repl_reject why)
{
    switch (why) {
    case REPL_REJECT_NONE: return "none";
    case REPL_REJECT_MALFORMED: return "malformed";
    case REPL_REJECT_UNSIGNED: return "unsigned";
    case REPL_REJECT_SIGNATURE: return "bad_signature";
    case REPL_REJECT_ORIGIN: return "wrong_origin";
    case REPL_REJECT_OWNER: return "not_owner";
    case REPL_REJECT_EPOCH: return "stale_epoch";
    case REPL_REJECT_N: break;
    }
    return "unknown";
}

static bool same(const char *a, size_t na, const char *b, size_t nb)
{
    return na == nb && memcmp(a, b, na) == 0;
}

/* The home region of user id u (name@region), or false. */
static bool home_is(const char *u, size_t n, const char *region)
{
    const char *at = memchr(u, '@', n);
    return at && stg_valid_user_id(u, n) && same(at + 1, n - (size_t)(at + 1 - u), region, strlen(region));
}

/* A live record keyed by an id minted from its own version. */
static bool as_minted(const char *id, size_t n, const stg_record *rec)
{
    stg_version v;
    return stg_parse_id(id, n, &v) == 0 && stg_version_cmp(&v, &rec->ver) == 0;
}

repl_reject repl_record_check(const char *origin, const stg_record *rec)
{
    if (strcmp(rec->ver.origin, origin) != 0) return REPL_REJECT_ORIGIN;
    const char *b, *id;
    size_t nb, nid;
    int na;
    switch (rec->kind) {
    case STG_KIND_USER:
        /* Accounts (and their token hashes) are written only at home. */
        if (!same(rec->owner, rec->ownerlen, rec->key, rec->keylen) ||
            !home_is(rec->key, rec->keylen, origin))
            return REPL_REJECT_OWNER;
        return REPL_REJECT_NONE;
    case STG_KIND_FOLLOW:
        na = stg_key_split(rec->key, rec->keylen, &b, &nb);
        if (na < 0 || !same(rec->owner, rec->ownerlen, rec->key, (size_t)na) ||
            !stg_valid_user_id(rec->key, (size_t)na) || !stg_valid_user_id(b, nb))
            return REPL_REJECT_OWNER;
        return REPL_REJECT_NONE;
    case STG_KIND_POST:
        if (!stg_valid_id(rec->key, rec->keylen) || !stg_valid_user_id(rec->owner, rec->ownerlen))
            return REPL_REJECT_OWNER;
        if (!rec->tombstone && !as_minted(rec->key, rec->keylen, rec)) return REPL_REJECT_OWNER;
        return REPL_REJECT_NONE;
    case STG_KIND_MESSAGE: {
        na = stg_key_split(rec->key, rec->keylen, &b, &nb);
        int nb2 = na < 0 ? -1 : stg_key_split(b, nb, &id, &nid);
        if (nb2 < 0) return REPL_REJECT_OWNER;
        bool from_a = same(rec->owner, rec->ownerlen, rec->key, (size_t)na);
        bool from_b = same(rec->owner, rec->ownerlen, b, (size_t)nb2);
        if (!from_a && !from_b) return REPL_REJECT_OWNER;
        if (rec->tombstone)
            return home_is(rec->key, (size_t)na, origin) || home_is(b, (size_t)nb2, origin)
                       ? REPL_REJECT_NONE
                       : REPL_REJECT_OWNER;
        return as_minted(id, nid, rec) ? REPL_REJECT_NONE : REPL_REJECT_OWNER;
    }
    }
    return REPL_REJECT_MALFORMED;
}
