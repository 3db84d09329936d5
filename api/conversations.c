/* conversations.c -- GET /v1/conversations: the caller's conversations by
 * their latest message, newest first, from the conversation index. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

int api_conversations_read(api_ctx *ctx, const char *user, const char *before, size_t want,
                           api_conversation *out, size_t *n)
{
    /* The user's conversations by their latest message, newest first,
     * those older than before. */
    char lo[STG_ID_MAX + 2], hi[2 * STG_ID_MAX + 2];
    int ll = stg_key_join(lo, sizeof lo, user, strlen(user), NULL, 0);
    int hl = before ? stg_key_join(hi, sizeof hi, user, strlen(user), before, strlen(before))
                    : stg_key_successor(lo, (size_t)ll, hi);
    stg_iter *it = stg_iter_range(ctx->db, STG_CF_CONV_TIMES, lo, (size_t)ll, hi, (size_t)hl, true);
    const char *k, *v, *latest;
    size_t kl, vl, nl;
    *n = 0;
    while (*n < want && stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (stg_key_split(k, kl, &latest, &nl) < 0 || nl > STG_ID_MAX || vl > STG_ID_MAX) continue;
        memcpy(out[*n].peer, v, vl);
        out[*n].peer[vl] = '\0';
        memcpy(out[*n].latest, latest, nl);
        out[*n].latest[nl] = '\0';
        (*n)++;
    }
    return stg_iter_close(it);
}

void api_conversations(api_req *r)
{
    int limit;
    if (api_auth_or_401(r, false) < 0 || api_limit_or_400(r, &limit) < 0) return;
    const char *cursor = api_cursor(r);
    if (cursor && !stg_valid_id(cursor, strlen(cursor))) {
        api_error(r, 400, "invalid_cursor", "invalid cursor");
        return;
    }
    api_conversation cs[100 + 1]; /* limit <= 100 (api_limit_or_400), and one to know there are more */
    size_t n;
    int rc = api_conversations_read(r->ctx, r->user, cursor, (size_t)limit + 1, cs, &n);
    if (rc < 0) {
        api_error_df(r, rc, "conversations");
        return;
    }
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
