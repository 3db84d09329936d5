/* fuzz_record.c -- libFuzzer target: the replication record decoder, the
 * one parser that reads bytes another process wrote (Redis stream entries).
 * A record that decodes must re-encode to the same bytes, and the
 * consistency check (repl_record_check) answers for it from either log. */
#include "repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks stay in release builds (assert would vanish under NDEBUG). */
#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stg_record rec;
    if (repl_record_decode((const char *)data, size, &rec) < 0) return 0;
    char *out;
    size_t outlen;
    repl_record_encode(&rec, &out, &outlen);
    CHECK(outlen == size && memcmp(out, data, size) == 0);
    stg_record again;
    CHECK(repl_record_decode(out, outlen, &again) == 0);
    CHECK(again.kind == rec.kind && again.keylen == rec.keylen && again.tombstone == rec.tombstone);
    CHECK(stg_version_cmp(&again.ver, &rec.ver) == 0);
    repl_reject why = repl_record_check(rec.ver.origin, &rec);
    CHECK(why >= REPL_REJECT_NONE && why < REPL_REJECT_N && why != REPL_REJECT_ORIGIN);
    CHECK(repl_record_check("zz_not_the_origin", &rec) == REPL_REJECT_ORIGIN ||
          strcmp(rec.ver.origin, "zz_not_the_origin") == 0);
    free(out);
    return 0;
}
