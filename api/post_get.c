/* post_get.c -- GET /v1/posts/{id}, and what the post routes share: the
 * check of a post id parameter and the answer with a stored post. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

int api_post_param_or_400(api_req *r)
{
    const char *id = r->params[0];
    if (stg_valid_id(id, strlen(id))) return 0;
    char q[API_EXCERPT_MAX + 4];
    api_error(r, 400, "invalid_id", "\"%s\" is not a post id", api_excerpt(q, id));
    return -1;
}

void api_reply_record(api_req *r, int status, const stg_record *rec)
{
    api_reply_raw(r, status, rec->payload, rec->paylen, "application/json");
}

void api_reply_post_with(api_req *r, int status, const char *id, size_t idlen,
                         api_record_reply reply)
{
    stg_record rec;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_POST, id, idlen, &rec, &raw);
    if (rc == 0 && rec.tombstone) {
        free(raw);
        rc = DF_ENOTFOUND;
    }
    if (rc < 0) {
        api_error_df(r, rc, "post");
        return;
    }
    reply(r, status, &rec);
    free(raw);
}

void api_posts_get(api_req *r)
{
    if (api_post_param_or_400(r) < 0) return;
    api_reply_post_with(r, 200, r->params[0], strlen(r->params[0]), api_reply_record);
}
