/* oauth_scope.c -- OAuth scope strings as Mastodon apps send them, parsed
 * into a set of known scope names and mapped onto driftfeed's three
 * permissions (API_SCOPE_READ, WRITE, FOLLOW).
 *
 * Pure functions of their input (fuzzed by fuzz_scopes). A set is a bit
 * mask over the table below, so it is canonical: parsing "write read read"
 * and joining gives "read write". The broad scopes cover granular ones as
 * Mastodon defines them: "read" every read:*, "write" every write:*, and
 * "follow" the follow, block and mute scopes. "push" is accepted and
 * grants nothing here (driftfeed has no Web Push). */
#include "api.h"

#include <string.h>

typedef struct scope_def {
    const char *name;
    unsigned bits; /* what a token with it may do */
    unsigned covered_by; /* broad scopes that include it: 1 read, 2 write, 4 follow */
} scope_def;

enum { BY_READ = 1, BY_WRITE = 2, BY_FOLLOW = 4 };

static const scope_def scopes[] = {
    {"read", API_SCOPE_READ, 0},
    {"write", API_SCOPE_WRITE, 0},
    {"follow", API_SCOPE_FOLLOW, 0},
    {"push", 0, 0},
    {"read:accounts", API_SCOPE_READ, BY_READ},
    {"read:blocks", API_SCOPE_READ, BY_READ | BY_FOLLOW},
    {"read:bookmarks", API_SCOPE_READ, BY_READ},
    {"read:favourites", API_SCOPE_READ, BY_READ},
    {"read:filters", API_SCOPE_READ, BY_READ},
    {"read:follows", API_SCOPE_READ, BY_READ | BY_FOLLOW},
    {"read:lists", API_SCOPE_READ, BY_READ},
    {"read:mutes", API_SCOPE_READ, BY_READ | BY_FOLLOW},
    {"read:notifications", API_SCOPE_READ, BY_READ},
    {"read:search", API_SCOPE_READ, BY_READ},
    {"read:statuses", API_SCOPE_READ, BY_READ},
    {"write:accounts", API_SCOPE_WRITE, BY_WRITE},
    {"write:blocks", API_SCOPE_FOLLOW, BY_WRITE | BY_FOLLOW},
    {"write:bookmarks", API_SCOPE_WRITE, BY_WRITE},
    {"write:conversations", API_SCOPE_WRITE, BY_WRITE},
    {"write:favourites", API_SCOPE_WRITE, BY_WRITE},
    {"write:filters", API_SCOPE_WRITE, BY_WRITE},
    {"write:follows", API_SCOPE_FOLLOW, BY_WRITE | BY_FOLLOW},
    {"write:lists", API_SCOPE_WRITE, BY_WRITE},
    {"write:media", API_SCOPE_WRITE, BY_WRITE},
    {"write:mutes", API_SCOPE_FOLLOW, BY_WRITE | BY_FOLLOW},
    {"write:notifications", API_SCOPE_WRITE, BY_WRITE},
    {"write:reports", API_SCOPE_WRITE, BY_WRITE},
    {"write:statuses", API_SCOPE_WRITE, BY_WRITE},
};
#define NSCOPES (sizeof scopes / sizeof scopes[0])
_Static_assert(NSCOPES <= 64, "a scope set is a 64-bit mask");

/* The table's first three entries are the broad scopes, in BY_* order. */
static const uint64_t broad[3] = {1u << 0, 1u << 1, 1u << 2};

static bool separator(char c) { return c == ' ' || c == '+'; }

int api_scopes_parse(const char *s, size_t n, uint64_t *set)
{
    *set = 0;
    if (n > API_SCOPES_TEXT_MAX) return -1;
    for (size_t i = 0; i < n;) {
        if (separator(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !separator(s[j])) j++;
        size_t k = 0;
        while (k < NSCOPES &&
               !(strlen(scopes[k].name) == j - i && memcmp(scopes[k].name, s + i, j - i) == 0))
            k++;
        if (k == NSCOPES) return -1;
        *set |= (uint64_t)1 << k;
        i = j;
    }
    return 0;
}

unsigned api_scopes_bits(uint64_t set)
{
    unsigned bits = 0;
    for (size_t k = 0; k < NSCOPES; k++)
        if (set & ((uint64_t)1 << k)) bits |= scopes[k].bits;
    return bits;
}

bool api_scopes_within(uint64_t want, uint64_t have)
{
    for (size_t k = 0; k < NSCOPES; k++) {
        uint64_t bit = (uint64_t)1 << k;
        if (!(want & bit) || (have & bit)) continue;
        bool covered = false;
        for (int b = 0; b < 3; b++)
            covered = covered || ((scopes[k].covered_by & (1u << b)) && (have & broad[b]));
        if (!covered) return false;
    }
    return true;
}

size_t api_scopes_names(uint64_t set, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t k = 0; k < NSCOPES && n < max; k++)
        if (set & ((uint64_t)1 << k)) out[n++] = scopes[k].name;
    return n;
}

void api_scopes_join(uint64_t set, char out[API_SCOPES_JOIN_MAX])
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < NSCOPES; k++) {
        if (!(set & ((uint64_t)1 << k))) continue;
        size_t m = strlen(scopes[k].name);
        if (len + m + 2 > API_SCOPES_JOIN_MAX) break; /* cannot happen: every name fits */
        if (len) out[len++] = ' ';
        memcpy(out + len, scopes[k].name, m + 1);
        len += m;
    }
}
