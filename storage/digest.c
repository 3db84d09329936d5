/* digest.c -- the convergence digest over all source records.
 *
 * DESIGN: order-independent. Each record contributes BLAKE2b-128 of
 * (kind byte, key length, key, value); contributions are added as two
 * 64-bit lanes modulo 2^64. The value includes the header, so a record's
 * version and tombstone flag count: two regions have equal digests exactly
 * when (with overwhelming probability) they hold the same records.
 *
 * Being a sum, it is kept up to date instead of recomputed: replacing a
 * record subtracts the stored value's contribution and adds the new one
 * (records.c), split by key into the leaves of the Merkle tree (tree.c),
 * whose root is the digest. */
#include "storage.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const stg_kind kinds[] = {STG_KIND_USER, STG_KIND_FOLLOW, STG_KIND_POST, STG_KIND_MESSAGE};

void stg_digest_hash(stg_kind kind, const char *key, size_t klen, const char *val, size_t vlen,
                     unsigned char h[STG_DIGEST_HASH_LEN])
{
    crypto_generichash_state st;
    unsigned char pre[9];
    pre[0] = (unsigned char)kind;
    stg_key_u64((char *)pre + 1, klen);
    crypto_generichash_init(&st, NULL, 0, STG_DIGEST_HASH_LEN);
    crypto_generichash_update(&st, pre, sizeof pre);
    crypto_generichash_update(&st, (const unsigned char *)key, klen);
    crypto_generichash_update(&st, (const unsigned char *)val, vlen);
    crypto_generichash_final(&st, h, STG_DIGEST_HASH_LEN);
}

void stg_digest_add(stg_digest_sum *s, const unsigned char h[STG_DIGEST_HASH_LEN], int sign)
{
    uint64_t m = sign < 0 ? (uint64_t)-1 : 1; /* times -1 mod 2^64 */
    s->lane[0] += m * stg_key_get_u64((const char *)h);
    s->lane[1] += m * stg_key_get_u64((const char *)h + 8);
    s->records += m;
}

void stg_digest_merge(stg_digest_sum *s, const stg_digest_sum *d, int sign)
{
    uint64_t m = sign < 0 ? (uint64_t)-1 : 1;
    s->lane[0] += m * d->lane[0];
    s->lane[1] += m * d->lane[1];
    s->records += m * d->records;
}

bool stg_digest_equal(const stg_digest_sum *a, const stg_digest_sum *b)
{
    return a->lane[0] == b->lane[0] && a->lane[1] == b->lane[1] && a->records == b->records;
}

void stg_digest_hex(const stg_digest_sum *s, char hex[33])
{
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)s->lane[0],
             (unsigned long long)s->lane[1]);
}

int stg_digest_scan(stg_db *db, stg_digest_sum *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        stg_iter *it = stg_iter_range(db, stg_kind_cf(kinds[i]), NULL, 0, NULL, 0, false);
        const char *k, *v;
        size_t kl, vl;
        unsigned char h[STG_DIGEST_HASH_LEN];
        while (stg_iter_next(it, &k, &kl, &v, &vl)) {
            stg_digest_hash(kinds[i], k, kl, v, vl, h);
            stg_digest_add(out, h, 1);
        }
        int rc = stg_iter_close(it);
        if (rc < 0) return rc;
    }
    return 0;
}
