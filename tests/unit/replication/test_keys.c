/* test_keys.c -- replication/keys.c: key files (created, kept, refused
 * when unsafe or mismatched), signatures bound to their Redis key and
 * field, and signed values. A real RocksDB under an engine with no Redis. */
#include "../unit.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture {
    char *dir, keys[600];
    stg_db *db;
    feed *fd;
} fixture;

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(sodium_init() >= 0, 1);
    f->dir = unit_mkdtemp();
    snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
    char data[600];
    snprintf(data, sizeof data, "%s/db", f->dir);
    ck_assert_int_eq(stg_open(data, NULL, &f->db), 0);
    feed_config fc = {.workers = 1};
    ck_assert_int_eq(feed_open(&f->fd, f->db, &fc), 0);
}

static void teardown(fixture *f)
{
    feed_close(f->fd);
    stg_close(f->db);
    unit_rmtree(f->dir);
}

static int open_engine(fixture *f, repl **out)
{
    repl_config cfg = {.region = "paris", .npeers = 1, .peers = {"tokyo"}, .key_dir = f->keys};
    return repl_open(out, f->db, f->fd, &cfg);
}

/* Keys for paris and tokyo, and paris's engine over them. */
static repl *keyed_engine(fixture *f)
{
    repl *r;
    setup(f);
    ck_assert_int_eq(repl_keygen(f->keys, "paris"), 0);
    ck_assert_int_eq(repl_keygen(f->keys, "tokyo"), 0);
    ck_assert_int_eq(open_engine(f, &r), 0);
    return r;
}

static void path_of(const fixture *f, char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", f->keys, name);
}

START_TEST(test_keygen_makes_a_private_key_and_keeps_it)
{
    fixture f;
    setup(&f);
    ck_assert_int_eq(repl_keygen(f.keys, "paris"), 0);
    char p[700], buf[200];
    struct stat st;
    path_of(&f, p, sizeof p, "paris.key");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    FILE *fp = fopen(p, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, fp));
    fclose(fp);
    /* Run again: the same key, not a new one. */
    ck_assert_int_eq(repl_keygen(f.keys, "paris"), 0);
    char again[200];
    fp = fopen(p, "r");
    ck_assert_ptr_nonnull(fgets(again, sizeof again, fp));
    fclose(fp);
    ck_assert_str_eq(buf, again);
    ck_assert_int_eq(repl_keygen(f.keys, "../x"), DF_EINVAL);
    teardown(&f);
}
END_TEST

START_TEST(test_load_needs_every_peer_key_and_a_private_secret)
{
    fixture f;
    setup(&f);
    repl *r = NULL;
    ck_assert_int_eq(repl_keygen(f.keys, "paris"), 0);
    ck_assert_int_lt(open_engine(&f, &r), 0); /* no tokyo.pub */
    ck_assert_int_eq(repl_keygen(f.keys, "tokyo"), 0);
    ck_assert_int_eq(open_engine(&f, &r), 0);
    repl_status st;
    repl_get_status(r, &st);
    ck_assert(st.authenticated);
    repl_close(r);
    char p[700];
    path_of(&f, p, sizeof p, "paris.key");
    ck_assert_int_eq(chmod(p, 0640), 0);
    ck_assert_int_lt(open_engine(&f, &r), 0); /* readable by the group */
    ck_assert_int_eq(chmod(p, 0600), 0);
    /* paris.pub that is not paris.key's public key. */
    char q[700];
    path_of(&f, q, sizeof q, "tokyo.pub");
    path_of(&f, p, sizeof p, "paris.pub");
    ck_assert_int_eq(rename(q, p), 0);
    ck_assert_int_lt(open_engine(&f, &r), 0);
    teardown(&f);
}
END_TEST

START_TEST(test_signatures_are_bound_to_key_field_and_value)
{
    fixture f;
    repl *r = keyed_engine(&f);
    unsigned char sig[REPL_SIG_LEN];
    repl_sign(r, "df:log:paris", "1-3", "hashes", 6, sig);
    ck_assert(repl_verify(r->pk, "df:log:paris", "1-3", "hashes", 6, sig, sizeof sig));
    ck_assert(!repl_verify(r->pk, "df:log:tokyo", "1-3", "hashes", 6, sig, sizeof sig));
    ck_assert(!repl_verify(r->pk, "df:log:paris", "2-3", "hashes", 6, sig, sizeof sig));
    ck_assert(!repl_verify(r->pk, "df:log:paris", "1-3", "hashez", 6, sig, sizeof sig));
    ck_assert(!repl_verify(r->peers[0].pk, "df:log:paris", "1-3", "hashes", 6, sig, sizeof sig));
    ck_assert(!repl_verify(r->pk, "df:log:paris", "1-3", "hashes", 6, sig, sizeof sig - 1));
    /* Parts are length-prefixed: moving a byte between them changes it. */
    ck_assert(!repl_verify(r->pk, "df:log:paris1", "-3", "hashes", 6, sig, sizeof sig));
    sig[10] ^= 1;
    ck_assert(!repl_verify(r->pk, "df:log:paris", "1-3", "hashes", 6, sig, sizeof sig));
    repl_close(r);
    teardown(&f);
}
END_TEST

START_TEST(test_sealed_values)
{
    fixture f;
    repl *r = keyed_engine(&f);
    char sealed[300], v[64];
    repl_value_seal(r, "df:progress:paris", "tokyo", "42.0", sealed, sizeof sealed);
    ck_assert_int_eq(strlen(sealed), 4 + 1 + 2 * REPL_SIG_LEN);
    size_t n = strlen(sealed);
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "tokyo", sealed, n, v, sizeof v), 4);
    ck_assert_str_eq(v, "42.0");
    /* Without a key the value is taken and the signature ignored. */
    ck_assert_int_eq(repl_value_open(NULL, "x", "y", sealed, n, v, sizeof v), 4);
    /* Another field, another value, another signer, a cut or no signature. */
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "newyork", sealed, n, v, sizeof v), -1);
    char altered[300];
    memcpy(altered, sealed, n + 1);
    altered[1] = '3';
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "tokyo", altered, n, v, sizeof v), -1);
    ck_assert_int_eq(repl_value_open(r->peers[0].pk, "df:progress:paris", "tokyo", sealed, n, v, sizeof v), -1);
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "tokyo", sealed, n - 2, v, sizeof v), -1);
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "tokyo", "42.0", 4, v, sizeof v), -1);
    ck_assert_int_eq(repl_value_open(r->pk, "df:progress:paris", "tokyo", sealed, n, v, 4), -1);
    /* Garbage of every length never verifies and never overruns. */
    rng g = rng_seeded("test_sealed_values", 7);
    for (int i = 0; i < 2000; i++) {
        char junk[300];
        size_t jl = rng_below(&g, sizeof junk);
        for (size_t j = 0; j < jl; j++) junk[j] = (char)(rng_below(&g, 3) ? '0' + rng_below(&g, 16) : ' ');
        ck_assert_int_eq(repl_value_open(r->pk, "k", "f", junk, jl, v, sizeof v), -1);
    }
    repl_close(r);
    teardown(&f);
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("replication/keys");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keygen_makes_a_private_key_and_keeps_it);
    tcase_add_test(tc, test_load_needs_every_peer_key_and_a_private_secret);
    tcase_add_test(tc, test_signatures_are_bound_to_key_field_and_value);
    tcase_add_test(tc, test_sealed_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return unit_run(keys_suite()); }
