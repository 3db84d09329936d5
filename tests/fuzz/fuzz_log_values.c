/* fuzz_log_values.c -- libFuzzer target: the small values a region reads
 * from Redis beside its peers' logs (replication/keys.c, redis.c): signed
 * values "<value> <signature>", "<a>.<b>" pairs, decimal seqs and stream
 * entry ids, and announced URLs. None may crash or overrun; a value opened
 * without a key comes back as its text up to the first space; a pair or a
 * number that parses prints back to the same bytes. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char pk[32];
    static bool init;
    if (!init) {
        unsigned char sk[64];
        if (sodium_init() < 0) abort();
        crypto_sign_keypair(pk, sk);
        init = true;
    }
    const char *s = (const char *)data;
    char val[64];
    /* Random bytes never carry a valid signature of that key. */
    CHECK(repl_value_open(pk, "df:seq:paris", "", s, size, val, sizeof val) == -1);
    int n = repl_value_open(NULL, "df:seq:paris", "", s, size, val, sizeof val);
    if (n >= 0) {
        CHECK((size_t)n < sizeof val && strlen(val) == (size_t)n && memcmp(val, s, (size_t)n) == 0);
        CHECK((size_t)n == size || s[n] == ' ');
    }
    uint64_t a, b;
    char back[96];
    for (size_t k = 1; k <= 3; k++) {
        uint64_t v[3], v2[3];
        if (!repl_parse_dotted(s, size, v, k)) continue;
        int m = 0;
        for (size_t i = 0; i < k; i++)
            m += snprintf(back + m, sizeof back - (size_t)m, "%s%llu", i ? "." : "",
                          (unsigned long long)v[i]);
        /* Leading zeros are accepted, so compare values, not bytes. */
        CHECK(repl_parse_dotted(back, (size_t)m, v2, k) && memcmp(v, v2, k * sizeof v[0]) == 0);
        CHECK(k == 1 ? repl_parse_u64(s, size, &a) && a == v[0] : memchr(s, '.', size) != NULL);
    }
    if (repl_parse_u64(s, size, &a)) {
        int m = snprintf(back, sizeof back, "%llu", (unsigned long long)a);
        CHECK(m > 0 && (size_t)m <= size);
    }
    if (repl_parse_stream_id(s, size, &a, &b)) CHECK(memchr(s, '-', size) != NULL);
    if (repl_valid_url(s, size)) CHECK(size < 256 && memchr(s, ' ', size) == NULL);
    /* Entry ids are NUL-terminated strings from hiredis. */
    char id[64];
    if (size < sizeof id) {
        memcpy(id, s, size);
        id[size] = '\0';
        uint64_t seq = repl_parse_entry_id(id);
        if (seq) CHECK(repl_parse_stream_id(id, strlen(id), &a, &b) && a == seq && b == 1);
    }
    return 0;
}
