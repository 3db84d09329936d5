/* follows.c -- PUT and DELETE /v1/following/{id}: follow edges.
 *
 * Each edge (follower, followee) is its own LWW register: following is a
 * live record, unfollowing a tombstone. Both calls always write: the edge
 * may already be in the asked state here while a concurrent change made in
 * another region is still on its way, and only a newer version makes this
 * choice win over it everywhere. Repeating a call changes nothing. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

int api_edge_write(api_req *r, const char *target, bool follow)
{
    if (!stg_valid_user_id(target, strlen(target))) {
        char q[API_EXCERPT_MAX + 4];
        api_error(r, 400, "invalid_id", "\"%s\" is not a user id (name@region)",
                  api_excerpt(q, target));
        return -1;
    }
    if (strcmp(target, r->user) == 0) {
        api_error(r, 400, "invalid_id", "you cannot follow yourself");
        return -1;
    }
    char key[2 * STG_ID_MAX + 2];
    int kl = stg_key_join(key, sizeof key, r->user, strlen(r->user), target, strlen(target));
    if (kl < 0) {
        api_error(r, 400, "invalid_id", "id too long");
        return -1;
    }
    if (follow && api_known_user_or_404(r, target) < 0) return -1;
    stg_record rec = {.kind = STG_KIND_FOLLOW,
                      .key = key,
                      .keylen = (size_t)kl,
                      .owner = r->user,
                      .ownerlen = strlen(r->user),
                      .tombstone = !follow,
                      .payload = "",
                      .paylen = 0};
    int rc = repl_write(r->ctx->rp, &rec, NULL);
    if (rc < 0) {
        api_error_df(r, rc, "follow");
        return -1;
    }
    return 0;
}

static void write_edge(api_req *r, bool follow)
{
    if (api_auth_or_401(r, false) < 0 ||
        api_scope_or_403(r, API_SCOPE_WRITE | API_SCOPE_FOLLOW) < 0 || api_rate_or_429(r) < 0)
        return;
    const char *target = r->params[0];
    if (api_edge_write(r, target, follow) < 0) return;
    if (follow)
        api_reply_json(
            r, 200,
            json_pack("{s:s,s:s,s:b}", "follower", r->user, "followee", target, "following", 1));
    else
        api_reply_empty(r, 204);
}

void api_follow(api_req *r) { write_edge(r, true); }
void api_unfollow(api_req *r) { write_edge(r, false); }
