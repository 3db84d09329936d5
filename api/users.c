/* users.c -- GET /v1/users/{id}, and the checks of user parameters the
 * user routes share. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

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
