/* masto_accounts.c -- the Mastodon account routes: the caller's own
 * account, an account by id or by acct, its followers and followees,
 * follow and unfollow, and relationships. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#define LIST_MAX 40 /* accounts a page; ids a relationships call */

static void reply_account(api_req *r, const char *id)
{
    api_masto_reply(r, 200, api_masto_account(r->ctx, id, NULL));
}

void api_masto_verify_credentials(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_READ) < 0) return;
    json_t *a = api_masto_account(r->ctx, r->user, NULL);
    if (a)
        json_object_set_new(a, "source",
                            json_pack("{s:s,s:b,s:s,s:s,s:[],s:i}", "privacy", "public",
                                      "sensitive", 0, "language", "", "note", "", "fields",
                                      "follow_requests_count", 0));
    api_masto_reply(r, 200, a);
}

void api_masto_account_get(api_req *r) { reply_account(r, r->params[0]); }

/* ?acct=: "alice@paris", "@alice@paris", or "alice" for this region. */
void api_masto_lookup(api_req *r)
{
    const char *acct = api_query(r, "acct");
    if (!acct || !*acct) {
        api_error(r, 400, "missing_acct", "acct is required");
        return;
    }
    if (acct[0] == '@') acct++;
    char id[STG_ID_MAX + 1];
    if (strchr(acct, '@'))
        snprintf(id, sizeof id, "%s", acct);
    else
        snprintf(id, sizeof id, "%s@%s", acct, r->ctx->cfg->region);
    reply_account(r, id);
}

/* A page of accounts listed under the account r->params[0] in cf; paged
 * by account id (max_id: after that one, in id order). */
static void account_list(api_req *r, stg_cf cf, bool records, const char *what)
{
    const char *id = r->params[0], *after = api_query(r, "max_id");
    if (!stg_valid_user_id(id, strlen(id)) || api_known_user_or_404(r, id) < 0) {
        if (!r->answered) api_error(r, 404, "not_found", "Record not found");
        return;
    }
    if (after && !stg_valid_user_id(after, strlen(after))) {
        api_error(r, 400, "invalid_id", "max_id is not an account id");
        return;
    }
    int limit;
    if (api_masto_limit_or_400(r, LIST_MAX, LIST_MAX, &limit) < 0) return;
    char ids[LIST_MAX][STG_ID_MAX + 1];
    size_t n;
    bool more;
    int rc = api_list_ids(r->ctx, cf, records, id, after, (size_t)limit, ids, &n, &more);
    if (rc < 0) {
        api_error_df(r, rc, what);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *a = api_masto_account(r->ctx, ids[i], NULL);
        if (a) json_array_append_new(list, a);
    }
    api_buf link = {0};
    char path[STG_ID_MAX + 40];
    snprintf(path, sizeof path, "/api/v1/accounts/%s/%s", id, what);
    if (more) api_masto_link(r, &link, path, limit, ids[n - 1], NULL);
    api_reply_json_with(r, 200, list, link.p ? "Link" : NULL, link.p);
    free(link.p);
}

void api_masto_followers(api_req *r) { account_list(r, STG_CF_FOLLOWERS, false, "followers"); }
void api_masto_following(api_req *r) { account_list(r, STG_CF_FOLLOWS, true, "following"); }

static void write_edge(api_req *r, bool follow)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_FOLLOW) < 0 ||
        api_rate_or_429(r) < 0)
        return;
    const char *id = r->params[0];
    if (api_edge_write(r, id, follow) == 0)
        api_masto_reply(r, 200, api_masto_relationship(r->ctx, r->user, id));
}

void api_masto_follow(api_req *r) { write_edge(r, true); }
void api_masto_unfollow(api_req *r) { write_edge(r, false); }

/* ?id[]=...: how the caller and each account follow each other. */
void api_masto_relationships(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_READ) < 0) return;
    const char *ids[LIST_MAX];
    size_t n = api_param_list(r, NULL, "id[]", ids, LIST_MAX);
    if (n == 0) n = api_param_list(r, NULL, "id", ids, LIST_MAX);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        if (stg_valid_user_id(ids[i], strlen(ids[i])))
            json_array_append_new(list, api_masto_relationship(r->ctx, r->user, ids[i]));
    api_reply_json(r, 200, list);
}
