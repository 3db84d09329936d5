/* masto_statuses.c -- POST /api/v1/statuses, GET and DELETE
 * /api/v1/statuses/{id}, and GET /api/v1/conversations.
 *
 * A status is a driftfeed post, written by the same code as POST
 * /v1/posts (Idempotency-Key included). A status with visibility "direct"
 * is a driftfeed direct message to the one account it mentions, and
 * conversations are driftfeed's. What driftfeed has no notion of -- media,
 * polls, replies threads, content warnings, followers-only posts -- is
 * refused with 422 rather than dropped without a word; "unlisted" is
 * public (driftfeed has no public timelines to leave it out of). */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#define CONV_MAX 40
#define DM_SCAN_MAX 256 /* conversations searched for a direct status by id */

/* A new status is 200 in Mastodon (the shared code answers 201 for /v1). */
static void reply_post_status(api_req *r, int status, const stg_record *rec)
{
    (void)status;
    api_masto_reply(r, 200, api_masto_status(r->ctx, rec, NULL));
}

static void reply_message_status(api_req *r, int status, const stg_record *rec)
{
    (void)status;
    api_masto_reply(r, 200, api_masto_message_status(r->ctx, rec, NULL));
}

static bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

/* The accounts text mentions ("@name@region", or "@name" of this region),
 * each once, the caller left out; returns how many (at most max). */
static size_t mentions(api_req *r, const char *text, char (*out)[STG_ID_MAX + 1], size_t max)
{
    size_t n = 0;
    for (const char *p = text; (p = strchr(p, '@')) != NULL && n < max;) {
        const char *name = ++p, *e = name;
        while (name_char(*e)) e++;
        if (e == name || (name > text + 1 && name_char(name[-2]))) {
            p = e;
            continue; /* "@" alone, or inside a word (a mail address) */
        }
        char id[STG_ID_MAX + 1];
        if (*e == '@' && name_char(e[1])) {
            const char *region = e + 1, *re = region;
            while (name_char(*re)) re++;
            snprintf(id, sizeof id, "%.*s", (int)(re - name), name);
            p = re;
        } else {
            snprintf(id, sizeof id, "%.*s@%s", (int)(e - name), name, r->ctx->cfg->region);
            p = e;
        }
        bool dup = strcmp(id, r->user) == 0 || !stg_valid_user_id(id, strlen(id));
        for (size_t i = 0; i < n && !dup; i++) dup = strcmp(out[i], id) == 0;
        if (!dup) snprintf(out[n++], STG_ID_MAX + 1, "%s", id);
    }
    return n;
}

/* The status text: 1..API_POST_MAX characters, not blank (form.c has
 * checked it is UTF-8). */
static int text_or_422(api_req *r, const char *text, size_t max)
{
    size_t chars = 0;
    bool blank = true;
    for (const char *p = text; *p; p++) {
        chars += ((unsigned char)*p & 0xc0) != 0x80;
        blank = blank && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r');
    }
    if (blank) {
        api_error(r, 422, "empty_status", "Validation failed: Text can't be blank");
        return -1;
    }
    if (chars > max) {
        api_error(r, 422, "status_too_long",
                  "Validation failed: Text is too long (at most %zu characters)", max);
        return -1;
    }
    return 0;
}

/* What a status may ask for that driftfeed does not have. */
static int unsupported_or_422(api_req *r, const api_form *f)
{
    static const char *const refused[][2] = {
        {"media_ids[]", "media attachments"}, {"poll[options][]", "polls"},
        {"in_reply_to_id", "replies"},        {"spoiler_text", "content warnings"},
        {"scheduled_at", "scheduled statuses"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *v = api_form_get(f, refused[i][0]);
        if (v && *v) {
            api_error(r, 422, "unsupported", "driftfeed has no %s", refused[i][1]);
            return -1;
        }
    }
    return 0;
}

void api_masto_status_create(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_WRITE) < 0 ||
        api_rate_or_429(r) < 0)
        return;
    api_form f;
    if (api_form_or_4xx(r, &f) < 0) return;
    const char *text = api_form_get(&f, "status");
    const char *vis = api_form_get(&f, "visibility");
    bool direct = vis && strcmp(vis, "direct") == 0;
    if (vis && !direct && strcmp(vis, "public") && strcmp(vis, "unlisted")) {
        api_error(r, 422, "invalid_visibility",
                  strcmp(vis, "private") == 0
                      ? "driftfeed has no followers-only posts: every post is public"
                      : "Validation failed: Visibility is not valid");
    } else if (!text) {
        api_error(r, 422, "empty_status", "Validation failed: Text can't be blank");
    } else if (unsupported_or_422(r, &f) < 0 ||
               text_or_422(r, text, direct ? API_MESSAGE_MAX : API_POST_MAX) < 0) {
        /* answered */
    } else if (!direct) {
        api_post_publish(r, text, api_header(r, "Idempotency-Key"), reply_post_status);
    } else {
        char to[2][STG_ID_MAX + 1];
        if (mentions(r, text, to, 2) != 1)
            api_error(r, 422, "direct_needs_one_mention",
                      "a direct status in driftfeed goes to one account: mention exactly one");
        else
            api_message_send(r, to[0], text, reply_message_status);
    }
    api_form_free(&f);
}

/* A direct message of the caller's with record id, searched in their
 * latest conversations (a message's key names both sides). */
static int load_message(api_req *r, const char *id, stg_record *m, char **raw)
{
    api_conversation cs[DM_SCAN_MAX];
    size_t n;
    if (!r->user[0] || api_conversations_read(r->ctx, r->user, NULL, DM_SCAN_MAX, cs, &n) < 0)
        return DF_ENOTFOUND;
    for (size_t i = 0; i < n; i++) {
        char key[STG_KEY_MAX];
        int kl = stg_key_message(key, sizeof key, r->user, cs[i].peer, id);
        if (kl > 0 && stg_record_load(r->ctx->db, STG_KIND_MESSAGE, key, (size_t)kl, m, raw) == 0)
            return 0;
    }
    return DF_ENOTFOUND;
}

void api_masto_status_get(api_req *r)
{
    char id[STG_ID_MAX + 1];
    if (api_masto_id_param_or_404(r, r->params[0], id) < 0) return;
    stg_record rec;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_POST, id, strlen(id), &rec, &raw);
    if (rc == 0) {
        json_t *s = rec.tombstone ? NULL : api_masto_status(r->ctx, &rec, NULL);
        free(raw);
        api_masto_reply(r, 200, s);
        return;
    }
    /* Not a post: a direct status, when the caller is one of its sides. */
    if (api_header(r, "Authorization") && api_auth_or_401(r, false) < 0) return;
    if (load_message(r, id, &rec, &raw) == 0) {
        json_t *s = api_masto_message_status(r->ctx, &rec, NULL);
        free(raw);
        api_masto_reply(r, 200, s);
        return;
    }
    api_masto_reply(r, 404, NULL);
}

/* Answers the deleted status with its text, as Mastodon does (for
 * "delete and redraft"). */
void api_masto_status_delete(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_WRITE) < 0 ||
        api_rate_or_429(r) < 0)
        return;
    char id[STG_ID_MAX + 1];
    if (api_masto_id_param_or_404(r, r->params[0], id) < 0) return;
    stg_record rec;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_POST, id, strlen(id), &rec, &raw);
    if (rc == 0 && rec.tombstone) {
        free(raw);
        rc = DF_ENOTFOUND;
    }
    bool mine = rc == 0 && rec.ownerlen == strlen(r->user) &&
                memcmp(rec.owner, r->user, rec.ownerlen) == 0;
    if (rc == 0 && !mine) { /* someone else's: Mastodon does not say it exists */
        free(raw);
        rc = DF_ENOTFOUND;
    }
    if (rc == DF_ENOTFOUND) {
        api_masto_reply(r, 404, NULL);
        return;
    }
    if (rc < 0) {
        api_error_df(r, rc, "status");
        return;
    }
    json_t *s = api_masto_status(r->ctx, &rec, NULL);
    json_t *p = api_payload_json(&rec);
    free(raw);
    if (s && p) json_object_set(s, "text", json_object_get(p, "text"));
    json_decref(p);
    if (api_post_remove(r, id) == 0)
        api_masto_reply(r, 200, s);
    else
        json_decref(s);
}

void api_masto_conversations(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_READ) < 0) return;
    const char *max = api_query(r, "max_id");
    int limit;
    if (api_masto_limit_or_400(r, 20, CONV_MAX, &limit) < 0) return;
    char before[STG_ID_MAX + 1];
    if (max && api_masto_parse_id(max, before) < 0) {
        api_error(r, 400, "invalid_id", "max_id is not a status id");
        return;
    }
    api_conversation cs[CONV_MAX];
    size_t n;
    int rc = api_conversations_read(r->ctx, r->user, max ? before : NULL, (size_t)limit, cs, &n);
    if (rc < 0) {
        api_error_df(r, rc, "conversations");
        return;
    }
    json_t *list = json_array();
    api_masto_accounts seen = {0};
    for (size_t i = 0; i < n; i++) {
        char key[STG_KEY_MAX], *raw;
        stg_record m;
        int kl = stg_key_message(key, sizeof key, r->user, cs[i].peer, cs[i].latest);
        if (kl < 0 || stg_record_load(r->ctx->db, STG_KIND_MESSAGE, key, (size_t)kl, &m, &raw) < 0)
            continue;
        json_t *last = api_masto_message_status(r->ctx, &m, &seen);
        json_t *peer = api_masto_account(r->ctx, cs[i].peer, &seen);
        free(raw);
        if (last && peer)
            json_array_append_new(list, json_pack("{s:s,s:b,s:[o],s:o}", "id", cs[i].peer,
                                                  "unread", 0, "accounts", peer, "last_status",
                                                  last));
        else {
            json_decref(last);
            json_decref(peer);
        }
    }
    api_masto_accounts_free(&seen);
    api_buf link = {0};
    if (n == (size_t)limit) {
        char lm[API_MASTO_ID_LEN + 1];
        api_masto_id_of(cs[n - 1].latest, strlen(cs[n - 1].latest), lm);
        api_masto_link(r, &link, "/api/v1/conversations", limit, lm, NULL);
    }
    api_reply_json_with(r, 200, list, link.p ? "Link" : NULL, link.p);
    free(link.p);
}
