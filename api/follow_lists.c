/* follow_lists.c -- GET /v1/users/{id}/following and /followers: one list
 * reader over the follows family (records) and the followers index. */
#include "api.h"

#include <string.h>

/* Lists the second key parts under id \0 in cf, skipping tombstones when
 * the values are records: {"items":[ids],"next":cursor}. */
static void list_ids(api_req *r, stg_cf cf, bool records)
{
    int limit;
    if (api_user_param_or_4xx(r) < 0 || api_limit_or_400(r, &limit) < 0) return;
    const char *id = r->params[0], *cursor = api_cursor(r);
    if (cursor && !stg_valid_user_id(cursor, strlen(cursor))) {
        api_error(r, 400, "invalid_cursor", "invalid cursor");
        return;
    }
    char lo[2 * STG_ID_MAX + 3], hi[2 * STG_ID_MAX + 3];
    int pl = stg_key_join(lo, sizeof lo, id, strlen(id), NULL, 0);
    int hl = stg_key_successor(lo, (size_t)pl, hi);
    int ll = cursor ? stg_key_join(lo, sizeof lo, id, strlen(id), cursor, strlen(cursor) + 1) : pl;
    stg_iter *it = stg_iter_range(r->ctx->db, cf, lo, (size_t)ll, hi, (size_t)hl, false);
    json_t *items = json_array();
    const char *k, *v, *other;
    size_t kl, vl, no;
    char last[STG_ID_MAX + 1] = "";
    bool more = false;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (stg_key_split(k, kl, &other, &no) < 0 || no > STG_ID_MAX) continue;
        if (records) {
            stg_record e;
            if (stg_value_decode(v, vl, &e) < 0 || e.tombstone) continue;
        }
        if ((int)json_array_size(items) == limit) {
            more = true;
            break;
        }
        memcpy(last, other, no);
        last[no] = '\0';
        json_array_append_new(items, json_string(last));
    }
    int rc = stg_iter_close(it);
    if (rc < 0) {
        json_decref(items);
        api_error_df(r, rc, "list");
        return;
    }
    api_reply_json(
        r, 200,
        json_pack("{s:o,s:o}", "items", items, "next", more ? json_string(last) : json_null()));
}

void api_users_following(api_req *r) { list_ids(r, STG_CF_FOLLOWS, true); }
void api_users_followers(api_req *r) { list_ids(r, STG_CF_FOLLOWERS, false); }
