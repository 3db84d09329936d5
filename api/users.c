/* users.c -- POST /v1/users, GET /v1/users/{id}, and the follow lists. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

/* A new account, dated by the version the commit stamps on it. */
typedef struct new_user {
    const api_user_body *in;
    const char *token_hash;
    json_t *json; /* the record's payload as JSON */
    char *payload; /* free() */
} new_user;

static int render_user(void *arg, stg_record *rec)
{
    new_user *nu = arg;
    char created[32];
    df_format_time(repl_hlc_ms(rec->ver.hlc), created);
    nu->json = json_pack("{s:s#,s:s,s:s,s:s,s:s,s:s}", "id", rec->key, (int)rec->keylen, "name",
                         nu->in->name, "display_name", nu->in->display_name, "region",
                         rec->ver.origin, "created_at", created, "token_hash", nu->token_hash);
    nu->payload = nu->json ? json_dumps(nu->json, JSON_COMPACT) : NULL;
    if (!nu->payload) return DF_EINVAL;
    rec->payload = nu->payload;
    rec->paylen = strlen(nu->payload);
    return 0;
}

void api_users_create(api_req *r)
{
    api_user_body in;
    if (api_body_or_4xx(r, api_decode_user, &in) < 0 || api_signup_rate_or_429(r) < 0) return;
    const char *region = repl_region(r->ctx->rp);
    char id[STG_ID_MAX + 1], token[API_TOKEN_MAX], hash[65];
    snprintf(id, sizeof id, "%s@%s", in.name, region);
    api_token_new(id, token, hash);
    stg_record rec = {.kind = STG_KIND_USER,
                      .key = id,
                      .keylen = strlen(id),
                      .owner = id,
                      .ownerlen = strlen(id)};
    new_user nu = {.in = &in, .token_hash = hash};
    repl_local w = {.flags = REPL_CREATE, .render = render_user, .arg = &nu};
    int rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc == DF_EEXIST) {
        api_error(r, 409, "name_taken", "the name \"%s\" is taken in region %s", in.name, region);
    } else if (rc < 0) {
        api_error_df(r, rc, "user");
    } else {
        json_object_del(nu.json, "token_hash");
        json_object_set_new(nu.json, "token", json_string(token));
        api_reply_json(r, 201, json_incref(nu.json));
    }
    json_decref(nu.json);
    free(nu.payload);
}

/* Loads the live user r->params[0]; answers 400/404 itself. */
static int load_user_param_or_4xx(api_req *r, stg_record *rec, char **raw)
{
    const char *id = r->params[0];
    if (!stg_valid_user_id(id, strlen(id))) {
        char q[API_EXCERPT_MAX + 4];
        api_error(r, 400, "invalid_id", "\"%s\" is not a user id (name@region)",
                  api_excerpt(q, id));
        return -1;
    }
    int rc = stg_record_load(r->ctx->db, STG_KIND_USER, id, strlen(id), rec, raw);
    if (rc == 0 && rec->tombstone) {
        free(*raw);
        rc = DF_ENOTFOUND;
    }
    if (rc < 0) {
        api_error_df(r, rc, "user");
        return -1;
    }
    return 0;
}

int api_user_param_or_4xx(api_req *r)
{
    stg_record rec;
    char *raw;
    if (load_user_param_or_4xx(r, &rec, &raw) < 0) return -1;
    free(raw);
    return 0;
}

int api_known_user_or_404(api_req *r, const char *id)
{
    stg_record u;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_USER, id, strlen(id), &u, &raw);
    bool live = rc == 0 && !u.tombstone;
    if (rc == 0) free(raw);
    if (live) return 0;
    api_error(r, 404, "not_found", "user %s is unknown in this region", id);
    return -1;
}

void api_users_get(api_req *r)
{
    stg_record rec;
    char *raw;
    if (load_user_param_or_4xx(r, &rec, &raw) < 0) return;
    json_t *u = api_payload_json(&rec);
    free(raw);
    if (!u) {
        api_error(r, 500, "internal", "stored user does not decode");
        return;
    }
    json_object_del(u, "token_hash");
    api_reply_json(r, 200, u);
}

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
