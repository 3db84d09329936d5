/* message_send.c -- POST /v1/messages: a direct message, named and dated by
 * its version, stored under the conversation of sender and recipient. */
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
    char created[32], from[STG_ID_MAX + 1];
    api_version_names(&rec->ver, nm->id, created);
    snprintf(from, sizeof from, "%.*s", (int)rec->ownerlen, rec->owner);
    int kl = stg_key_message(nm->key, sizeof nm->key, from, nm->to, nm->id);
    if (kl < 0) return DF_EINVAL;
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", nm->id, "from", from, "to", nm->to,
                          "text", nm->text, "created_at", created, "region", rec->ver.origin);
    if (api_set_payload(rec, m, &nm->payload) < 0) return DF_EINVAL;
    rec->key = nm->key;
    rec->keylen = (size_t)kl;
    return 0;
}

void api_message_send(api_req *r, const char *to, const char *text, api_record_reply reply)
{
    if (strcmp(to, r->user) == 0) {
        api_error(r, 400, "invalid_id", "you cannot message yourself");
        return;
    }
    if (api_known_user_or_404(r, to) < 0) return;
    new_message nm = {.to = to, .text = text};
    stg_record rec = {.kind = STG_KIND_MESSAGE, .owner = r->user, .ownerlen = strlen(r->user)};
    repl_local w = {.render = render_message, .arg = &nm};
    int rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc < 0)
        api_error_df(r, rc, "message");
    else
        reply(r, 201, &rec);
    free(nm.payload);
}

void api_messages_send(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_WRITE) < 0 ||
        api_rate_or_429(r) < 0)
        return;
    api_message_body in;
    if (api_body_or_4xx(r, api_decode_message, &in) < 0) return;
    api_message_send(r, in.to, in.text, api_reply_record);
}
