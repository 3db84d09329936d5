/* test_masto.c -- api/masto.c's status ids and content HTML, and
 * api/form.c's parameter parsing: pure functions, checked here against
 * what the Mastodon routes rely on. */
#include "../unit.h"

#include "api.h"

#include <stdlib.h>

static void id_of(uint64_t hlc, const char *origin, char out[API_MASTO_ID_LEN + 1])
{
    stg_version v = {.hlc = hlc};
    snprintf(v.origin, sizeof v.origin, "%s", origin);
    api_masto_id(&v, out);
}

START_TEST(test_ids_round_trip)
{
    static const char *origins[] = {"paris", "a", "tokyo_2", "z9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    uint64_t hlcs[] = {0, 1, 0x01a2511202ee0000ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof origins / sizeof *origins; i++)
        for (size_t k = 0; k < sizeof hlcs / sizeof *hlcs; k++) {
            char mid[API_MASTO_ID_LEN + 1], rid[STG_ID_MAX + 1], want[STG_ID_MAX + 1];
            id_of(hlcs[k], origins[i], mid);
            ck_assert_uint_eq(strlen(mid), API_MASTO_ID_LEN);
            ck_assert_int_eq(api_masto_parse_id(mid, rid), 0);
            stg_version v = {.hlc = hlcs[k]};
            snprintf(v.origin, sizeof v.origin, "%s", origins[i]);
            stg_make_id(want, &v);
            ck_assert_str_eq(rid, want);
        }
}
END_TEST

/* Ids compare as versions do: by hlc, then origin, whether a client
 * compares them as strings or by length first (they are all one length). */
START_TEST(test_ids_sort_like_versions)
{
    struct {
        uint64_t hlc;
        const char *origin;
    } in_order[] = {{5, "tokyo"}, {6, "a"}, {6, "a_"}, {6, "aa"}, {6, "newyork"}, {6, "paris"},
                    {7, "0"}, {100, "9"}, {100, "_"}, {100, "z"}};
    char prev[API_MASTO_ID_LEN + 1] = "";
    for (size_t i = 0; i < sizeof in_order / sizeof *in_order; i++) {
        char mid[API_MASTO_ID_LEN + 1];
        id_of(in_order[i].hlc, in_order[i].origin, mid);
        if (i) ck_assert_int_lt(strcmp(prev, mid), 0);
        memcpy(prev, mid, sizeof mid);
    }
}
END_TEST

START_TEST(test_ids_refuse_non_ids)
{
    char rid[STG_ID_MAX + 1], good[API_MASTO_ID_LEN + 1], bad[API_MASTO_ID_LEN + 2];
    id_of(42, "paris", good);
    ck_assert_int_eq(api_masto_parse_id("", rid), -1);
    ck_assert_int_eq(api_masto_parse_id("123", rid), -1);
    memcpy(bad, good, sizeof good);
    bad[3] = 'x';
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1); /* not a digit */
    memcpy(bad, good, sizeof good);
    memcpy(bad + API_MASTO_ID_LEN - 2, "12", 2); /* a character after the padding */
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1);
    memcpy(bad, good, sizeof good);
    memcpy(bad + 20, "99", 2); /* no character has code 99 */
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1);
    memset(bad, '0', API_MASTO_ID_LEN); /* no origin at all */
    bad[API_MASTO_ID_LEN] = '\0';
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1);
    memset(bad, '9', 20); /* an hlc past 2^64 */
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1);
    memcpy(bad, good, sizeof good);
    bad[API_MASTO_ID_LEN] = '0';
    bad[API_MASTO_ID_LEN + 1] = '\0';
    ck_assert_int_eq(api_masto_parse_id(bad, rid), -1); /* too long */
}
END_TEST

static char *html(const char *text)
{
    api_buf b = {0};
    api_masto_html(&b, text, strlen(text));
    api_buf_append(&b, "", 1);
    return b.p;
}

START_TEST(test_html_escapes_and_breaks)
{
    char *h = html("a < b & \"c\" 'd' >");
    ck_assert_str_eq(h, "<p>a &lt; b &amp; &quot;c&quot; &#39;d&#39; &gt;</p>");
    free(h);
    h = html("one\ntwo\n\nthree\r\n");
    ck_assert_str_eq(h, "<p>one<br />two</p><p>three<br /></p>");
    free(h);
    h = html("<script>alert(1)</script>");
    ck_assert_str_eq(h, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    free(h);
}
END_TEST

static int parse(const char *type, const char *body, api_form *f)
{
    api_fail fail;
    int rc = api_form_parse(type, body, strlen(body), f, &fail);
    if (rc < 0) ck_assert_int_ge(fail.status, 400);
    return rc;
}

START_TEST(test_form_urlencoded)
{
    api_form f;
    ck_assert_int_eq(parse("application/x-www-form-urlencoded; charset=utf-8",
                           "status=a+b%21&visibility=direct&empty=&flag&id[]=1&id[]=2", &f),
                     0);
    ck_assert_str_eq(api_form_get(&f, "status"), "a b!");
    ck_assert_str_eq(api_form_get(&f, "visibility"), "direct");
    ck_assert_str_eq(api_form_get(&f, "empty"), "");
    ck_assert_str_eq(api_form_get(&f, "flag"), "");
    ck_assert_ptr_null(api_form_get(&f, "missing"));
    ck_assert_uint_eq(f.n, 6);
    api_form_free(&f);
    const char *bad[] = {"a=%zz", "a=%f", "a=%ff", "a=%c3%28", "a=%00", "%ff=x", "a=\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(parse("application/x-www-form-urlencoded", bad[i], &f), -1);
        api_form_free(&f);
    }
}
END_TEST

START_TEST(test_form_json)
{
    api_form f;
    ck_assert_int_eq(parse("application/json",
                           "{\"status\":\"hi\",\"n\":3,\"b\":false,\"nul\":null,"
                           "\"media_ids\":[\"7\",8],\"poll\":{\"options\":[\"x\"]}}",
                           &f),
                     0);
    ck_assert_str_eq(api_form_get(&f, "status"), "hi");
    ck_assert_str_eq(api_form_get(&f, "n"), "3");
    ck_assert_str_eq(api_form_get(&f, "b"), "false");
    ck_assert_ptr_null(api_form_get(&f, "nul"));
    ck_assert_ptr_null(api_form_get(&f, "poll")); /* nested objects are left out */
    ck_assert_str_eq(api_form_get(&f, "media_ids[]"), "7");
    api_form_free(&f);
    const char *bad[] = {"[1]", "{", "{\"a\":1,\"a\":2}", "\"x\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(parse("application/json", bad[i], &f), -1);
        api_form_free(&f);
    }
    ck_assert_int_eq(parse("text/plain", "a=b", &f), -1);
    api_form_free(&f);
    ck_assert_int_eq(parse(NULL, "", &f), 0); /* no body: an empty form */
    ck_assert_uint_eq(f.n, 0);
    api_form_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("masto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ids_round_trip);
    tcase_add_test(tc, test_ids_sort_like_versions);
    tcase_add_test(tc, test_ids_refuse_non_ids);
    tcase_add_test(tc, test_html_escapes_and_breaks);
    tcase_add_test(tc, test_form_urlencoded);
    tcase_add_test(tc, test_form_json);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
