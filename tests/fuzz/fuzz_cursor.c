/* fuzz_cursor.c -- libFuzzer target: timeline cursors from ?cursor=. */
#include "feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size); /* query values are C strings */
    char id[STG_ID_MAX + 1];
    long depth;
    if (feed_parse_cursor(s, id, &depth) == 0) {
        CHECK(depth >= 0 && depth <= 1000000);
        CHECK(id[0] == '\0' || stg_valid_id(id, strlen(id)));
    }
    free(s);
    return 0;
}
