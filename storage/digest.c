/* digest.c -- the convergence digest over all source records.
 *
 * DESIGN: order-independent. Each record contributes BLAKE2b-128 of
 * (kind byte, key length, key, value); contributions are added as two
 * 64-bit lanes modulo 2^64. The value includes the header, so a record's
 * version and tombstone flag count: two regions have equal digests exactly
 * when (with overwhelming probability) they hold the same records. */
#include "storage.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const stg_kind kinds[] = {STG_KIND_USER, STG_KIND_FOLLOW, STG_KIND_POST, STG_KIND_MESSAGE};

int stg_digest(stg_db *db, char hex[33], uint64_t *records)
{
    uint64_t lane[2] = {0, 0}, n = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        stg_iter *it = stg_iter_range(db, stg_kind_cf(kinds[i]), NULL, 0, NULL, 0, false);
        const char *k, *v;
        size_t kl, vl;
        while (stg_iter_next(it, &k, &kl, &v, &vl)) {
            crypto_generichash_state st;
            unsigned char h[16], pre[9];
            pre[0] = (unsigned char)kinds[i];
            stg_key_u64((char *)pre + 1, kl);
            crypto_generichash_init(&st, NULL, 0, sizeof h);
            crypto_generichash_update(&st, pre, sizeof pre);
            crypto_generichash_update(&st, (const unsigned char *)k, kl);
            crypto_generichash_update(&st, (const unsigned char *)v, vl);
            crypto_generichash_final(&st, h, sizeof h);
            lane[0] += stg_key_get_u64((const char *)h);
            lane[1] += stg_key_get_u64((const char *)h + 8);
            n++;
        }
        int rc = stg_iter_close(it);
        if (rc < 0) return rc;
    }
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)lane[0], (unsigned long long)lane[1]);
    if (records) *records = n;
    return 0;
}
