/* unit.h -- small helpers shared by the libcheck unit tests: a seeded PRNG,
 * scratch directories, and running a suite.
 *
 * Randomized tests print their seed; set DF_TEST_SEED=<n> to replay one.
 * Everything here is static inline so each test binary stays one file. */
#ifndef DF_UNIT_H
#define DF_UNIT_H

#include <check.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Seeded PRNG (splitmix64) ------------------------------------------- */
typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

/* The seed for a randomized test: DF_TEST_SEED if set, else def. Printed
 * so a failure can be replayed. */
static inline rng rng_seeded(const char *test, uint64_t def)
{
    const char *env = getenv("DF_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : def;
    fprintf(stderr, "%s: seed %llu\n", test, (unsigned long long)seed);
    rng r = {seed};
    return r;
}

/* ---- Scratch directories --------------------------------------------------- */
/* Creates a fresh directory under TMPDIR (or /tmp); returns it (free()).
 * Tests remove it when they pass; a failing test leaves it (a dfunit.*
 * directory holding its RocksDB) for inspection. */
static inline char *unit_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/dfunit.XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(path);
    ck_assert_msg(dir != NULL, "mkdtemp failed");
    return strdup(dir);
}

static inline int unit_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Removes dir and everything under it, then frees dir. */
static inline void unit_rmtree(char *dir)
{
    if (!dir) return;
    nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* ---- Bytewise key order, as RocksDB's default comparator ------------------ */
static inline int unit_bytes_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t m = na < nb ? na : nb;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (na > nb) - (na < nb);
}

static inline int unit_sign(int x) { return (x > 0) - (x < 0); }

/* ---- Running ------------------------------------------------------------------ */
/* Runs s and returns the process exit status (0 when everything passed). */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
