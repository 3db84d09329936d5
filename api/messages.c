/* messages.c -- GET /v1/messages/{peer}: the caller's conversation with
 * peer, newest first. A conversation is only ever read through the
 * caller's own identity, so no call can reach another pair's messages. */
#include "api.h"

#include <string.h>

void api_messages_list(api_req *r)
{
    int limit;
    if (api_auth_or_401(r, false) < 0 || api_limit_or_400(r, &limit) < 0) return;
    const char *peer = r->params[0], *cursor = api_cursor(r);
    if (!stg_valid_user_id(peer, strlen(peer))) {
        char q[API_EXCERPT_MAX + 4];
        api_error(r, 400, "invalid_id", "\"%s\" is not a user id (name@region)",
                  api_excerpt(q, peer));
        return;
    }
    if (cursor && !stg_valid_id(cursor, strlen(cursor))) {
        api_error(r, 400, "invalid_cursor", "invalid cursor");
        return;
    }
    char lo[STG_KEY_MAX], hi[STG_KEY_MAX];
    int ll = stg_key_message(lo, sizeof lo, r->user, peer, NULL);
    int hl = cursor ? stg_key_message(hi, sizeof hi, r->user, peer, cursor)
                    : stg_key_successor(lo, (size_t)ll, hi);
    stg_iter *it =
        stg_iter_range(r->ctx->db, STG_CF_MESSAGES, lo, (size_t)ll, hi, (size_t)hl, true);
    api_buf b = {0};
    api_buf_append(&b, "{\"items\":[", 10);
    const char *k, *v;
    size_t kl, vl;
    int n = 0;
    char last[STG_ID_MAX + 1] = "";
    bool more = false;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        stg_record m;
        if (stg_value_decode(v, vl, &m) < 0 || m.tombstone) continue;
        if (n == limit) {
            more = true;
            break;
        }
        if (n++) api_buf_append(&b, ",", 1);
        api_buf_append(&b, m.payload, m.paylen);
        stg_make_id(last, &m.ver);
    }
    stg_iter_free(it);
    api_buf_append(&b, "],\"next\":", 9);
    if (more)
        api_buf_json_string(&b, last);
    else
        api_buf_append(&b, "null", 4);
    api_buf_append(&b, "}", 1);
    api_reply_buf(r, 200, &b, "application/json");
}
