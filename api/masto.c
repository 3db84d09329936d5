/* masto.c -- what the Mastodon routes share: status ids, the entities
 * (Account, Status, Relationship) made from driftfeed's records, and
 * paging links.
 *
 * Status ids: Mastodon clients take ids as strings and order them, some
 * by comparing them as strings, some by length and then as strings. A
 * driftfeed id is a version, "<hlc in 16 hex digits>-<origin>", with an
 * origin of any length, so it is spelled here as digits of one length:
 * the hlc in 20 decimal digits, then each origin character as two digits
 * ("0"-"9" 01-10, "_" 11, "a"-"z" 12-37, in their byte order) padded with
 * 00 to STG_ORIGIN_MAX characters. Both orders then agree with the
 * version order, and the id maps back to the record without a lookup.
 *
 * Account ids are driftfeed's user ids ("alice@paris"): acct is the same,
 * username the name. Fields driftfeed has no notion of (notes, avatars,
 * emojis, boosts, favourites) get the documented empty values: the
 * avatar and header are the default images this server serves. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

/* ---- Ids ------------------------------------------------------------------------------- */

static int origin_code(char c)
{
    if (c >= '0' && c <= '9') return c - '0' + 1;
    if (c == '_') return 11;
    if (c >= 'a' && c <= 'z') return c - 'a' + 12;
    return -1;
}

static char origin_char(int code)
{
    return code >= 1 && code <= 10 ? (char)('0' + code - 1)
           : code == 11            ? '_'
           : code >= 12 && code <= 37 ? (char)('a' + code - 12)
                                      : '\0';
}

void api_masto_id(const stg_version *v, char out[API_MASTO_ID_LEN + 1])
{
    snprintf(out, 21, "%020llu", (unsigned long long)v->hlc);
    size_t n = strlen(v->origin);
    for (size_t i = 0; i < STG_ORIGIN_MAX; i++) {
        int c = i < n ? origin_code(v->origin[i]) : 0;
        if (c < 0) c = 0; /* not a region name (stg_valid_name): cannot happen */
        out[20 + 2 * i] = (char)('0' + c / 10);
        out[21 + 2 * i] = (char)('0' + c % 10);
    }
    out[API_MASTO_ID_LEN] = '\0';
}

void api_masto_id_of(const char *record_id, size_t n, char out[API_MASTO_ID_LEN + 1])
{
    stg_version v;
    if (stg_parse_id(record_id, n, &v) == 0)
        api_masto_id(&v, out);
    else
        out[0] = '\0';
}

int api_masto_parse_id(const char *s, char record_id[STG_ID_MAX + 1])
{
    if (strlen(s) != API_MASTO_ID_LEN || strspn(s, "0123456789") != API_MASTO_ID_LEN) return -1;
    stg_version v = {0};
    for (int i = 0; i < 20; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v.hlc > (UINT64_MAX - d) / 10) return -1;
        v.hlc = v.hlc * 10 + d;
    }
    size_t n = 0;
    bool ended = false;
    for (size_t i = 0; i < STG_ORIGIN_MAX; i++) {
        int code = (s[20 + 2 * i] - '0') * 10 + (s[21 + 2 * i] - '0');
        if (code == 0) {
            ended = true;
            continue;
        }
        char c = origin_char(code);
        if (ended || !c) return -1; /* a character after the padding, or no character */
        v.origin[n++] = c;
    }
    if (n == 0) return -1;
    v.origin[n] = '\0';
    stg_make_id(record_id, &v);
    return 0;
}

int api_masto_id_param_or_404(api_req *r, const char *s, char record_id[STG_ID_MAX + 1])
{
    if (api_masto_parse_id(s, record_id) == 0) return 0;
    api_error(r, 404, "not_found", "Record not found");
    return -1;
}

/* ---- Text ------------------------------------------------------------------------------ */

void api_masto_html(api_buf *b, const char *text, size_t n)
{
    api_buf_append(b, "<p>", 3);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        switch (text[i]) {
        case '&': esc = "&amp;"; break;
        case '<': esc = "&lt;"; break;
        case '>': esc = "&gt;"; break;
        case '"': esc = "&quot;"; break;
        case '\'': esc = "&#39;"; break;
        case '\n': esc = i + 1 < n && text[i + 1] == '\n' ? "</p><p>" : "<br />"; break;
        case '\r': esc = ""; break;
        }
        if (!esc) {
            run++;
            continue;
        }
        api_buf_append(b, text + i - run, run);
        api_buf_append(b, esc, strlen(esc));
        run = 0;
        if (text[i] == '\n' && i + 1 < n && text[i + 1] == '\n') i++;
    }
    api_buf_append(b, text + n - run, run);
    api_buf_append(b, "</p>", 4);
}

static json_t *html_of(const char *text)
{
    api_buf b = {0};
    api_masto_html(&b, text, strlen(text));
    json_t *j = json_stringn(b.p, b.len);
    free(b.p);
    return j ? j : json_string("");
}

/* ---- Entities -------------------------------------------------------------------------- */

const char *api_masto_base(api_ctx *ctx) { return ctx->cfg->public_url; }

static json_t *url_of(api_ctx *ctx, const char *path, const char *id)
{
    api_buf b = {0};
    api_buf_printf(&b, "%s%s%s", api_masto_base(ctx), path, id ? id : "");
    json_t *j = json_stringn(b.p, b.len);
    free(b.p);
    return j;
}

static json_t *account_from(api_ctx *ctx, const stg_record *rec)
{
    json_t *u = api_payload_json(rec);
    const char *name = u ? json_string_value(json_object_get(u, "name")) : NULL;
    const char *display = u ? json_string_value(json_object_get(u, "display_name")) : NULL;
    const char *created = u ? json_string_value(json_object_get(u, "created_at")) : NULL;
    if (!name) {
        json_decref(u);
        return NULL;
    }
    char id[STG_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)rec->keylen, rec->key);
    stg_counts c;
    stg_user_counts(ctx->db, id, &c);
    json_t *avatar = url_of(ctx, "/avatar.svg", NULL), *header = url_of(ctx, "/header.svg", NULL);
    json_t *a = json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:b,s:b,s:n,s:s,s:s,s:o,s:o,s:O,s:O,s:O,s:O,s:I,s:I,s:I,s:n,s:[],"
        "s:[]}",
        "id", id, "username", name, "acct", id, "display_name", display ? display : name,
        "locked", 0, "bot", 0, "group", 0, "discoverable", "created_at", created ? created : "",
        "note", "", "url", url_of(ctx, "/v1/users/", id), "uri", url_of(ctx, "/v1/users/", id),
        "avatar", avatar, "avatar_static", avatar, "header", header, "header_static", header,
        "followers_count", (json_int_t)(c.followers > 0 ? c.followers : 0), "following_count",
        (json_int_t)(c.following > 0 ? c.following : 0), "statuses_count",
        (json_int_t)(c.posts > 0 ? c.posts : 0), "last_status_at", "emojis", "fields");
    json_decref(avatar);
    json_decref(header);
    json_decref(u);
    return a;
}

json_t *api_masto_account(api_ctx *ctx, const char *id, api_masto_accounts *seen)
{
    if (seen)
        for (size_t i = 0; i < seen->n; i++)
            if (strcmp(seen->ids[i], id) == 0) return json_incref(seen->accounts[i]);
    stg_record rec;
    char *raw;
    if (!stg_valid_user_id(id, strlen(id))) return NULL;
    if (stg_record_load(ctx->db, STG_KIND_USER, id, strlen(id), &rec, &raw) < 0) return NULL;
    json_t *a = rec.tombstone ? NULL : account_from(ctx, &rec);
    free(raw);
    if (a && seen && seen->n < API_MASTO_ACCOUNTS_MAX) {
        snprintf(seen->ids[seen->n], sizeof seen->ids[seen->n], "%s", id);
        seen->accounts[seen->n++] = json_incref(a);
    }
    return a;
}

void api_masto_accounts_free(api_masto_accounts *seen)
{
    for (size_t i = 0; i < seen->n; i++) json_decref(seen->accounts[i]);
    seen->n = 0;
}

/* A mention of the account id, as Mastodon's Status.mentions lists them. */
static json_t *mention(api_ctx *ctx, const char *id)
{
    const char *at = strchr(id, '@');
    return json_pack("{s:s,s:s#,s:s,s:o}", "id", id, "username", id, (int)(at - id), "acct", id,
                     "url", url_of(ctx, "/v1/users/", id));
}

/* The parts every Status has; record_id names it, text its content. */
static json_t *status_common(api_ctx *ctx, const char *record_id, const char *text,
                             const char *created, json_t *account, const char *visibility,
                             const char *uri_path)
{
    char mid[API_MASTO_ID_LEN + 1];
    api_masto_id_of(record_id, strlen(record_id), mid);
    json_t *uri = url_of(ctx, uri_path, record_id);
    return json_pack(
        "{s:s,s:s,s:n,s:n,s:b,s:s,s:s,s:n,s:O,s:o,s:i,s:i,s:i,s:n,s:b,s:b,s:b,s:b,s:b,s:o,s:n,"
        "s:n,s:O,s:[],s:[],s:[],s:[],s:n,s:n}",
        "id", mid, "created_at", created, "in_reply_to_id", "in_reply_to_account_id",
        "sensitive", 0, "spoiler_text", "", "visibility", visibility, "language", "uri", uri,
        "url", uri, "replies_count", 0, "reblogs_count", 0, "favourites_count", 0, "edited_at",
        "favourited", 0, "reblogged", 0, "muted", 0, "bookmarked", 0, "pinned", 0, "content",
        html_of(text), "reblog", "application", "account", account, "media_attachments",
        "mentions", "tags", "emojis", "card", "poll");
}

json_t *api_masto_status(api_ctx *ctx, const stg_record *post, api_masto_accounts *seen)
{
    json_t *p = api_payload_json(post);
    const char *id = p ? json_string_value(json_object_get(p, "id")) : NULL;
    const char *author = p ? json_string_value(json_object_get(p, "author")) : NULL;
    const char *text = p ? json_string_value(json_object_get(p, "text")) : NULL;
    const char *created = p ? json_string_value(json_object_get(p, "created_at")) : NULL;
    json_t *account = author ? api_masto_account(ctx, author, seen) : NULL;
    json_t *s = NULL;
    if (account && id && text && created && stg_valid_id(id, strlen(id)))
        s = status_common(ctx, id, text, created, account, "public", "/v1/posts/");
    json_decref(account);
    json_decref(p);
    return s;
}

json_t *api_masto_message_status(api_ctx *ctx, const stg_record *msg, api_masto_accounts *seen)
{
    json_t *m = api_payload_json(msg);
    const char *id = m ? json_string_value(json_object_get(m, "id")) : NULL;
    const char *from = m ? json_string_value(json_object_get(m, "from")) : NULL;
    const char *to = m ? json_string_value(json_object_get(m, "to")) : NULL;
    const char *text = m ? json_string_value(json_object_get(m, "text")) : NULL;
    const char *created = m ? json_string_value(json_object_get(m, "created_at")) : NULL;
    json_t *account = from ? api_masto_account(ctx, from, seen) : NULL;
    json_t *s = NULL;
    if (account && id && to && text && created && stg_valid_user_id(to, strlen(to))) {
        s = status_common(ctx, id, text, created, account, "direct", "/v1/messages/");
        json_array_append_new(json_object_get(s, "mentions"), mention(ctx, to));
    }
    json_decref(account);
    json_decref(m);
    return s;
}

json_t *api_masto_relationship(api_ctx *ctx, const char *viewer, const char *id)
{
    bool following = false, followed_by = false;
    for (int dir = 0; dir < 2; dir++) {
        const char *a = dir ? id : viewer, *b = dir ? viewer : id;
        char key[2 * STG_ID_MAX + 2], *raw;
        stg_record e;
        int kl = stg_key_join(key, sizeof key, a, strlen(a), b, strlen(b));
        bool live = kl > 0 &&
                    stg_record_load(ctx->db, STG_KIND_FOLLOW, key, (size_t)kl, &e, &raw) == 0;
        if (live) {
            live = !e.tombstone;
            free(raw);
        }
        if (dir)
            followed_by = live;
        else
            following = live;
    }
    return json_pack("{s:s,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:s,s:[]}", "id", id,
                     "following", following, "showing_reblogs", following, "notifying", 0,
                     "followed_by", followed_by, "blocking", 0, "blocked_by", 0, "muting", 0,
                     "muting_notifications", 0, "requested", 0, "requested_by", 0,
                     "domain_blocking", 0, "endorsed", 0, "note", "", "languages");
}

/* ---- Parameters ------------------------------------------------------------------------ */

int api_masto_limit_or_400(api_req *r, int def, int max, int *limit)
{
    long v = def;
    if (api_query_digits(r, "limit", &v) < 0) {
        api_error(r, 400, "invalid_limit", "limit must be a number");
        return -1;
    }
    *limit = v < 1 ? 1 : v > max ? max : (int)v;
    return 0;
}

/* ---- Answers --------------------------------------------------------------------------- */

void api_masto_reply(api_req *r, int status, json_t *j)
{
    if (!j) {
        api_error(r, 404, "not_found", "Record not found");
        return;
    }
    api_reply_json(r, status, j);
}

void api_masto_link(api_req *r, api_buf *out, const char *path, int limit, const char *next_max,
                    const char *prev_min)
{
    const char *base = api_masto_base(r->ctx);
    if (next_max)
        api_buf_printf(out, "<%s%s?limit=%d&max_id=%s>; rel=\"next\"", base, path, limit,
                       next_max);
    if (prev_min)
        api_buf_printf(out, "%s<%s%s?limit=%d&min_id=%s>; rel=\"prev\"", out->len ? ", " : "",
                       base, path, limit, prev_min);
}
