/* messages.c -- direct messages: POST /v1/messages, GET /v1/messages/{peer},
 * GET /v1/conversations. A conversation is only ever read through the
 * caller's own identity, so no call can reach another pair's messages. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new message, named and dated by the version the commit stamps on it. */
typedef struct new_message {
    const char *to, *text;
    char id[STG_ID_MAX + 1];
    char key[STG_KEY_MAX];
    char *payload; /* free() */
} new_message;

static int render_message(void *arg, stg_record *rec)
{
    new_message *nm = arg;
    char created[32];
    stg_make_id(nm->id, &rec->ver);
    df_format_time(repl_hlc_ms(rec->ver.hlc), created);
    char from[STG_ID_MAX + 1];
    snprintf(from, sizeof from, "%.*s", (int)rec->ownerlen, rec->owner);
    int kl = stg_key_message(nm->key, sizeof nm->key, from, nm->to, nm->id);
    if (kl < 0) return DF_EINVAL;
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", nm->id, "from", from, "to", nm->to,
                          "text", nm->text, "created_at", created, "region", rec->ver.origin);
    nm->payload = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    if (!nm->payload) return DF_EINVAL;
    rec->key = nm->key;
    rec->keylen = (size_t)kl;
    rec->payload = nm->payload;
    rec->paylen = strlen(nm->payload);
    return 0;
}

void api_messages_send(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_rate_or_429(r) < 0) return;
    api_message_body in;
    if (api_body_or_4xx(r, api_decode_message, &in) < 0) return;
    const char *to = in.to, *text = in.text;
    if (strcmp(to, r->user) == 0) {
        api_error(r, 400, "invalid_id", "you cannot message yourself");
        return;
    }
    stg_record u;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_USER, to, strlen(to), &u, &raw);
    bool live = rc == 0 && !u.tombstone;
    if (rc == 0) free(raw);
    if (!live) {
        api_error(r, 404, "not_found", "user %s is unknown in this region", to);
        return;
    }
    new_message nm = {.to = to, .text = text};
    stg_record rec = {.kind = STG_KIND_MESSAGE, .owner = r->user, .ownerlen = strlen(r->user)};
    repl_local w = {.render = render_message, .arg = &nm};
    rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc < 0)
        api_error_df(r, rc, "message");
    else
        api_reply_raw(r, 201, nm.payload, rec.paylen, "application/json");
    free(nm.payload);
}

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
