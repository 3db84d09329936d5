/* conversations.c -- GET /v1/conversations: the caller's conversations by
 * their latest message, newest first, from the conversation index. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

void api_conversations(api_req *r)
{
    int limit;
    if (api_auth_or_401(r, false) < 0 || api_limit_or_400(r, &limit) < 0) return;
    const char *cursor = api_cursor(r);
    if (cursor && !stg_valid_id(cursor, strlen(cursor))) {
        api_error(r, 400, "invalid_cursor", "invalid cursor");
        return;
    }
    /* The user's conversations by their latest message, newest first; a
     * page continues with those older than the cursor. */
    char lo[STG_ID_MAX + 2], hi[2 * STG_ID_MAX + 2];
    int ll = stg_key_join(lo, sizeof lo, r->user, strlen(r->user), NULL, 0);
    int hl = cursor ? stg_key_join(hi, sizeof hi, r->user, strlen(r->user), cursor, strlen(cursor))
                    : stg_key_successor(lo, (size_t)ll, hi);
    stg_iter *it = stg_iter_range(r->ctx->db, STG_CF_CONV_TIMES, lo, (size_t)ll, hi, (size_t)hl, true);
    struct {
        char peer[STG_ID_MAX + 1], latest[STG_ID_MAX + 1];
    } cs[100 + 1]; /* limit <= 100 (api_limit_or_400), and one to know there are more */
    size_t n = 0;
    const char *k, *v, *latest;
    size_t kl, vl, nl;
    while (n <= (size_t)limit && stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (stg_key_split(k, kl, &latest, &nl) < 0 || nl > STG_ID_MAX || vl > STG_ID_MAX) continue;
        memcpy(cs[n].peer, v, vl);
        cs[n].peer[vl] = '\0';
        memcpy(cs[n].latest, latest, nl);
        cs[n].latest[nl] = '\0';
        n++;
    }
    stg_iter_free(it);
    api_buf b = {0};
    api_buf_append(&b, "{\"items\":[", 10);
    size_t shown = n < (size_t)limit ? n : (size_t)limit;
    for (size_t i = 0; i < shown; i++) {
        char key[STG_KEY_MAX];
        int ml = stg_key_message(key, sizeof key, r->user, cs[i].peer, cs[i].latest);
        stg_record m;
        char *raw = NULL;
        if (i) api_buf_append(&b, ",", 1);
        api_buf_append(&b, "{\"peer\":", 8);
        api_buf_json_string(&b, cs[i].peer);
        api_buf_append(&b, ",\"latest\":", 10);
        if (ml > 0 && stg_record_load(r->ctx->db, STG_KIND_MESSAGE, key, (size_t)ml, &m, &raw) == 0)
            api_buf_append(&b, m.payload, m.paylen);
        else
            api_buf_append(&b, "null", 4);
        api_buf_append(&b, "}", 1);
        free(raw);
    }
    api_buf_append(&b, "],\"next\":", 9);
    if (n > shown)
        api_buf_json_string(&b, cs[shown - 1].latest);
    else
        api_buf_append(&b, "null", 4);
    api_buf_append(&b, "}", 1);
    api_reply_buf(r, 200, &b, "application/json");
}
