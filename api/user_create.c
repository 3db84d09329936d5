/* user_create.c -- POST /v1/users: a new account in this region, with its
 * bearer token (only its hash is stored). */
#include "api.h"

#include <stdio.h>
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

int api_user_new(api_req *r, const api_user_body *in, json_t **account)
{
    const char *region = repl_region(r->ctx->rp);
    char id[STG_ID_MAX + 1], token[API_TOKEN_MAX], hash[65];
    snprintf(id, sizeof id, "%s@%s", in->name, region);
    api_token_new(id, token, hash);
    stg_record rec = {.kind = STG_KIND_USER,
                      .key = id,
                      .keylen = strlen(id),
                      .owner = id,
                      .ownerlen = strlen(id)};
    new_user nu = {.in = in, .token_hash = hash};
    repl_local w = {.flags = REPL_CREATE, .render = render_user, .arg = &nu};
    int rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc == 0) {
        json_object_del(nu.json, "token_hash");
        json_object_set_new(nu.json, "token", json_string(token));
        *account = json_incref(nu.json);
    }
    json_decref(nu.json);
    free(nu.payload);
    return rc;
}

void api_users_create(api_req *r)
{
    api_user_body in;
    if (api_body_or_4xx(r, api_decode_user, &in) < 0 || api_signup_rate_or_429(r) < 0) return;
    json_t *account;
    int rc = api_user_new(r, &in, &account);
    if (rc == DF_EEXIST)
        api_error(r, 409, "name_taken", "the name \"%s\" is taken in region %s", in.name,
                  repl_region(r->ctx->rp));
    else if (rc < 0)
        api_error_df(r, rc, "user");
    else
        api_reply_json(r, 201, account);
}
