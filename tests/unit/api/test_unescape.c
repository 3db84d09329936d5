/* test_unescape.c -- api_url_unescape: %XX decoding of paths and query
 * parameters, with %00 kept as text so a NUL never ends a parameter. */
#include "../unit.h"

#include "api.h"

static void check(const char *in, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    size_t n = api_url_unescape(buf);
    ck_assert_msg(strcmp(buf, want) == 0, "%s -> %s, want %s", in, buf, want);
    ck_assert_uint_eq(n, strlen(want));
}

START_TEST(test_escapes_decode)
{
    check("", "");
    check("plain", "plain");
    check("%41%62c", "Abc");
    check("a%2Fb%2fc", "a/b/c");
    check("caf%C3%A9", "caf\xc3\xa9");
    check("%FF", "\xff");
    check("100%25", "100%");
}
END_TEST

START_TEST(test_nul_stays_text)
{
    check("%00", "%00");
    check("id%00x", "id%00x");
    check("%41%00%42", "A%00B");
}
END_TEST

START_TEST(test_malformed_escapes_stay)
{
    check("%", "%");
    check("%4", "%4");
    check("%zz", "%zz");
    check("a%G1", "a%G1");
    check("%%41", "%A");
}
END_TEST

START_TEST(test_random_input_never_grows_or_holds_nul)
{
    rng r = rng_seeded("test_random_input_never_grows_or_holds_nul", 61);
    const char alphabet[] = "%0aF9zG";
    for (int i = 0; i < 20000; i++) {
        char buf[40];
        size_t len = rng_below(&r, sizeof buf);
        for (size_t k = 0; k < len; k++) buf[k] = alphabet[rng_below(&r, sizeof alphabet - 1)];
        buf[len] = '\0';
        size_t n = api_url_unescape(buf);
        ck_assert_uint_le(n, len);
        ck_assert_uint_eq(strlen(buf), n); /* no NUL inside the result */
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unescape");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_escapes_decode);
    tcase_add_test(tc, test_nul_stays_text);
    tcase_add_test(tc, test_malformed_escapes_stay);
    tcase_add_test(tc, test_random_input_never_grows_or_holds_nul);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
