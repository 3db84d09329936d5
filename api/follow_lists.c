/* follow_lists.c -- GET /v1/users/{id}/following and /followers: one list
 * reader over the follows family (records) and the followers index. */
#include "api.h"

#include <string.h>

int api_list_ids(api_ctx *ctx, stg_cf cf, bool records, const char *user, const char *after,
                 size_t limit, char (*ids)[STG_ID_MAX + 1], size_t *n, bool *more)
{
    char lo[2 * STG_ID_MAX + 3], hi[2 * STG_ID_MAX + 3];
    int pl = stg_key_join(lo, sizeof lo, user, strlen(user), NULL, 0);
    int hl = stg_key_successor(lo, (size_t)pl, hi);
    int ll = after ? stg_key_join(lo, sizeof lo, user, strlen(user), after, strlen(after) + 1) : pl;
    stg_iter *it = stg_iter_range(ctx->db, cf, lo, (size_t)ll, hi, (size_t)hl, false);
    const char *k, *v, *other;
    size_t kl, vl, no;
    *n = 0;
    *more = false;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (stg_key_split(k, kl, &other, &no) < 0 || no > STG_ID_MAX) continue;
        if (records) {
            stg_record e;
            if (stg_value_decode(v, vl, &e) < 0 || e.tombstone) continue;
        }
        if (*n == limit) {
            *more = true;
            break;
        }
        memcpy(ids[*n], other, no);
        ids[(*n)++][no] = '\0';
    }
    return stg_iter_close(it);
}

/* {"items":[ids],"next":cursor} of the second key parts under the user. */
static void list_ids(api_req *r, stg_cf cf, bool records)
{
    int limit;
    if (api_user_param_or_4xx(r) < 0 || api_limit_or_400(r, &limit) < 0) return;
    const char *cursor = api_cursor(r);
    if (cursor && !stg_valid_user_id(cursor, strlen(cursor))) {
        api_error(r, 400, "invalid_cursor", "invalid cursor");
        return;
    }
    char ids[100][STG_ID_MAX + 1]; /* limit <= 100 */
    size_t n;
    bool more;
    int rc = api_list_ids(r->ctx, cf, records, r->params[0], cursor, (size_t)limit, ids, &n, &more);
    if (rc < 0) {
        api_error_df(r, rc, "list");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(items, json_string(ids[i]));
    api_reply_json(r, 200,
                   json_pack("{s:o,s:o}", "items", items, "next",
                             more ? json_string(ids[n - 1]) : json_null()));
}

void api_users_following(api_req *r) { list_ids(r, STG_CF_FOLLOWS, true); }
void api_users_followers(api_req *r) { list_ids(r, STG_CF_FOLLOWERS, false); }
