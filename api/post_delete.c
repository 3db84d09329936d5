/* post_delete.c -- DELETE /v1/posts/{id}: a tombstone, by the author only. */
#include "api.h"

#include <string.h>

int api_post_remove(api_req *r, const char *id)
{
    stg_record rec = {.kind = STG_KIND_POST,
                      .key = id,
                      .keylen = strlen(id),
                      .tombstone = true,
                      .owner = r->user,
                      .ownerlen = strlen(r->user),
                      .payload = "",
                      .paylen = 0};
    repl_local w = {.flags = REPL_MUST_EXIST};
    int rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc == DF_EPERM)
        api_error(r, 403, "forbidden", "only the author may delete a post");
    else if (rc < 0)
        api_error_df(r, rc, "post");
    return rc < 0 ? -1 : 0;
}

void api_posts_delete(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_WRITE) < 0) return;
    if (api_post_param_or_400(r) < 0 || api_rate_or_429(r) < 0) return;
    if (api_post_remove(r, r->params[0]) == 0) api_reply_empty(r, 204);
}
