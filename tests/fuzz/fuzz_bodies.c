/* fuzz_bodies.c -- libFuzzer target: every endpoint's request body decoder
 * (api/decode.c). The first byte picks the decoder; a decoder either fails
 * with a 4xx and a code, or returns fields that satisfy its contract. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

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
    api_fail fail = {0};
    union {
        api_user_body user;
        api_post_body post;
        api_message_body message;
        api_admin_body admin;
    } out;
    int rc;
    switch (data[0] % 4) {
    case 0:
        rc = api_decode_user(body, len, &out, &fail);
        if (rc == 0) {
            CHECK(stg_valid_name(out.user.name, strlen(out.user.name), API_NAME_MAX));
            CHECK(chars(out.user.display_name) >= 1 &&
                  chars(out.user.display_name) <= API_DISPLAY_MAX);
        }
        break;
    case 1:
        rc = api_decode_post(body, len, &out, &fail);
        if (rc == 0) CHECK(chars(out.post.text) >= 1 && chars(out.post.text) <= API_POST_MAX);
        break;
    case 2:
        rc = api_decode_message(body, len, &out, &fail);
        if (rc == 0) {
            CHECK(stg_valid_user_id(out.message.to, strlen(out.message.to)));
            CHECK(chars(out.message.text) >= 1 && chars(out.message.text) <= API_MESSAGE_MAX);
        }
        break;
    default:
        rc = api_decode_admin(body, len, &out, &fail);
        if (rc == 0) CHECK(out.admin.has_paused || out.admin.has_delay);
        if (rc == 0 && out.admin.has_delay) CHECK(out.admin.delay_ms <= 60000);
        break;
    }
    if (rc < 0) CHECK(fail.status >= 400 && fail.status < 500 && fail.code[0]);
    return 0;
}
