/* test_render.c -- api/render.c: JSON strings from arbitrary client bytes,
 * and cutting client input on a character boundary. jansson, which
 * refuses invalid UTF-8, is the judge of what is valid JSON. */
#include "../unit.h"

#include "api.h"

#include <jansson.h>

/* Encodes n bytes of s; checks jansson decodes the result to a string and
 * returns that string (caller frees). */
static char *encode_decode(const char *s, size_t n)
{
    api_buf b = {0};
    api_buf_json_text(&b, s, n);
    json_error_t err;
    json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    ck_assert_msg(j != NULL, "not valid JSON: %s (%s)", b.p, err.text);
    ck_assert(json_is_string(j));
    char *out = strndup(json_string_value(j), json_string_length(j));
    json_decref(j);
    free(b.p);
    return out;
}

START_TEST(test_valid_text_round_trips)
{
    const char *cases[] = {"", "plain", "quote \" and \\ back", "tab\tnew\nline",
                           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\x7f del"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = encode_decode(cases[i], strlen(cases[i]));
        ck_assert_str_eq(got, cases[i]);
        free(got);
    }
}
END_TEST

START_TEST(test_invalid_bytes_become_replacement)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"\xff", "\xef\xbf\xbd"},
        {"a\xc3", "a\xef\xbf\xbd"}, /* cut short */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong '/' */
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong, 3 bytes */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"x\x80y", "x\xef\xbf\xbdy"}, /* lone continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = encode_decode(cases[i].in, strlen(cases[i].in));
        ck_assert_msg(strcmp(got, cases[i].out) == 0, "case %zu", i);
        free(got);
    }
}
END_TEST

START_TEST(test_nul_is_escaped)
{
    api_buf b = {0};
    api_buf_json_text(&b, "a\0b", 3);
    ck_assert_str_eq(b.p, "\"a\\u0000b\"");
    free(b.p);
}
END_TEST

/* Random bytes: the result is always valid JSON (the crash of
 * GET /v1/posts/%FF was an error reply that was not). */
START_TEST(test_random_bytes_always_encode)
{
    rng g = rng_seeded("test_random_bytes_always_encode", 7);
    for (int round = 0; round < 20000; round++) {
        unsigned char s[24];
        size_t n = rng_below(&g, sizeof s);
        for (size_t i = 0; i < n; i++) {
            /* Mostly the bytes around UTF-8's edges. */
            static const unsigned char pick[] = {0x00, 0x22, 0x5c, 0x41, 0x7f, 0x80, 0xbf,
                                                 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
                                                 0xf4, 0xf5, 0xff, 0xa0, 0x90, 0x8f};
            s[i] = rng_below(&g, 4) ? pick[rng_below(&g, sizeof pick)] : (unsigned char)rng_next(&g);
        }
        free(encode_decode((const char *)s, n));
    }
}
END_TEST

START_TEST(test_cut_on_character_boundary)
{
    const char *e = "\xc3\xa9\xc3\xa9\xc3\xa9"; /* three 2-byte characters */
    ck_assert_uint_eq(api_utf8_cut(e, 6, 6), 6);
    ck_assert_uint_eq(api_utf8_cut(e, 6, 5), 4);
    ck_assert_uint_eq(api_utf8_cut(e, 6, 1), 0);
    ck_assert_uint_eq(api_utf8_cut(e, 5, 6), 4); /* a character cut short at the end */
    ck_assert_uint_eq(api_utf8_cut("\xff\xff", 2, 1), 1); /* an invalid byte is one */
}
END_TEST

START_TEST(test_excerpt_is_bounded)
{
    char big[4096], out[API_EXCERPT_MAX + 4];
    for (size_t i = 0; i + 2 < sizeof big; i += 2) memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof big - 2] = '\0';
    api_excerpt(out, big);
    ck_assert_uint_le(strlen(out), API_EXCERPT_MAX + 3);
    ck_assert_str_eq(out + strlen(out) - 3, "\xe2\x80\xa6");
    json_t *j = json_string(out); /* valid UTF-8 */
    ck_assert(j != NULL);
    json_decref(j);
    ck_assert_str_eq(api_excerpt(out, "short"), "short");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("json_text");
    tcase_add_test(tc, test_valid_text_round_trips);
    tcase_add_test(tc, test_invalid_bytes_become_replacement);
    tcase_add_test(tc, test_nul_is_escaped);
    tcase_add_test(tc, test_random_bytes_always_encode);
    tcase_add_test(tc, test_cut_on_character_boundary);
    tcase_add_test(tc, test_excerpt_is_bounded);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
