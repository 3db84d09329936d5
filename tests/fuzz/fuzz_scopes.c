/* fuzz_scopes.c -- libFuzzer target: OAuth scope strings (api/oauth_scope.c)
 * and redirect URIs (api_oauth_uri_valid). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint64_t set;
    if (api_scopes_parse(s, size, &set) == 0) {
        /* Canonical: the joined names parse back to the same set. */
        char joined[API_SCOPES_JOIN_MAX], again[API_SCOPES_JOIN_MAX];
        api_scopes_join(set, joined);
        uint64_t back;
        CHECK(api_scopes_parse(joined, strlen(joined), &back) == 0 && back == set);
        api_scopes_join(back, again);
        CHECK(strcmp(joined, again) == 0);
        CHECK(api_scopes_within(set, set));
        CHECK((api_scopes_bits(set) & ~(unsigned)API_SCOPE_ALL) == 0);
        const char *names[64];
        size_t n = api_scopes_names(set, names, 64);
        CHECK((n == 0) == (set == 0));
    }
    /* A valid redirect URI is printable ASCII without '#': safe in a
     * Location header and a CSP source list. */
    for (int native = 0; native < 2; native++)
        if (api_oauth_uri_valid(s, size, native)) {
            CHECK(size <= API_APP_URI_MAX);
            for (size_t i = 0; i < size; i++) CHECK(s[i] > 0x20 && s[i] < 0x7f && s[i] != '#');
            if (!native) CHECK(api_oauth_uri_valid(s, size, true));
            if (size >= 11) CHECK(memcmp(s, "javascript:", 11) != 0);
        }
    return 0;
}
