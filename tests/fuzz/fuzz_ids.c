/* fuzz_ids.c -- libFuzzer target: everything that parses ids and keys out
 * of request paths, cursors and stored values: post/message ids, user ids,
 * names, composite keys and record headers. */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks stay in release builds (assert would vanish under NDEBUG). */
#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    stg_version v;
    if (stg_parse_id(s, size, &v) == 0) {
        char id[STG_ID_MAX + 1];
        stg_make_id(id, &v);
        CHECK(strlen(id) == size && memcmp(id, s, size) == 0); /* canonical */
    }
    (void)stg_valid_user_id(s, size);
    (void)stg_valid_name(s, size, 30);
    const char *b;
    size_t nb;
    int na = stg_key_split(s, size, &b, &nb);
    CHECK(na < 0 || (size_t)na + 1 + nb == size);
    stg_record rec = {0};
    if (stg_value_decode(s, size, &rec) == 0) {
        CHECK(rec.paylen <= size && rec.ownerlen <= STG_ID_MAX);
        char *out;
        size_t outlen;
        stg_value_encode(&rec, &out, &outlen);
        CHECK(outlen == size && memcmp(out, s, size) == 0);
        free(out);
    }
    return 0;
}
