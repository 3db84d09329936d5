/* fuzz_form.c -- libFuzzer target: the parameters of Mastodon and OAuth
 * requests (api/form.c) and Mastodon status ids (api/masto.c). The first
 * byte picks: a JSON body, a urlencoded body, or a status id. A parsed form
 * holds only UTF-8 text without NUL; an id that parses spells back to
 * itself. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        json_set_alloc_funcs(xmalloc, free);
        init = 1;
    }
    if (size < 1) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] % 3 == 2) {
        char *s = xstrndup(body, len), rid[STG_ID_MAX + 1], back[API_MASTO_ID_LEN + 1];
        if (api_masto_parse_id(s, rid) == 0) {
            CHECK(stg_valid_id(rid, strlen(rid)));
            api_masto_id_of(rid, strlen(rid), back);
            CHECK(strcmp(back, s) == 0);
        }
        free(s);
        return 0;
    }
    static const char *const types[] = {"application/json", "application/x-www-form-urlencoded"};
    api_form f;
    api_fail fail = {0};
    if (api_form_parse(types[data[0] % 3], body, len, &f, &fail) == 0) {
        for (size_t i = 0; i < f.n; i++) {
            CHECK(api_utf8_valid(f.items[i].key, strlen(f.items[i].key)));
            CHECK(api_utf8_valid(f.items[i].value, strlen(f.items[i].value)));
            CHECK(api_form_get(&f, f.items[i].key) != NULL);
        }
    } else {
        CHECK(fail.status >= 400 && fail.status < 500 && fail.code[0]);
    }
    api_form_free(&f);
    return 0;
}
