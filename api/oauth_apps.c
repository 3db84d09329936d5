/* oauth_apps.c -- OAuth clients: POST /api/v1/apps registers one,
 * GET /api/v1/apps/verify_credentials names the app behind a token; and
 * the store they live in.
 *
 * An app is region-local, as on a Mastodon instance: STG_CF_META
 * "oauth/app/<client_id>" holds its JSON (the client secret only as its
 * BLAKE2b-256 hash), and "oauth/apptag/<8 hex digits>" -> client_id finds
 * it from the 32-bit tag its tokens carry (oauth.c). Tags are unique in a
 * region: registration draws a free one under a lock. */
#include "api.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define APP_PREFIX "oauth/app/"
#define TAG_PREFIX "oauth/apptag/"

static pthread_mutex_t register_mu = PTHREAD_MUTEX_INITIALIZER; /* tags are drawn one at a time */

int api_oauth_param(api_req *r, const api_form *f, const char *name, size_t max, const char **out)
{
    const char *v = api_param(r, f, name);
    *out = v;
    if (!v) return 0;
    size_t n = strlen(v);
    if (n > max || !api_utf8_valid(v, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return -1;
    }
    return 0;
}

/* ---- Redirect URIs ---------------------------------------------------------------------- */

static bool uri_char(char c) { return c > 0x20 && c < 0x7f && !strchr("\"<>\\^`{|}#", c); }

/* The rest of a URI from i: printable ASCII without a fragment, every %
 * an escape. */
static bool uri_rest_ok(const char *s, size_t i, size_t n)
{
    for (; i < n; i++) {
        if (!uri_char(s[i])) return false;
        if (s[i] == '%' && (i + 2 >= n || df_hex_digit(s[i + 1]) < 0 || df_hex_digit(s[i + 2]) < 0))
            return false;
    }
    return true;
}

/* A native app's own scheme (RFC 8252 7.1: "com.example.app:/cb",
 * "tusky://oauth"): a scheme, then a path of its own; never one a browser
 * runs or reads (javascript:, data:, file:, ...). Returns the scheme's
 * length with the ':', or 0. */
size_t api_oauth_native_scheme(const char *s, size_t n)
{
    static const char *const refused[] = {"javascript", "vbscript", "data", "file", "blob",
                                          "about", "filesystem", "http", "https", "ws",
                                          "wss", "ftp", "mailto", "urn", "view-source"};
    size_t k = 0;
    while (k < n && ((s[k] >= 'a' && s[k] <= 'z') ||
                     (k > 0 && ((s[k] >= '0' && s[k] <= '9') || s[k] == '+' || s[k] == '.' ||
                                s[k] == '-'))))
        k++;
    if (k == 0 || k >= n || s[k] != ':' || k + 1 == n) return 0;
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (strlen(refused[i]) == k && memcmp(s, refused[i], k) == 0) return 0;
    return k + 1;
}

bool api_oauth_uri_valid(const char *s, size_t n, bool native)
{
    if (n == strlen(API_OAUTH_OOB) && memcmp(s, API_OAUTH_OOB, n) == 0) return true;
    if (n > API_APP_URI_MAX) return false;
    size_t i = n >= 8 && !memcmp(s, "https://", 8) ? 8 : n >= 7 && !memcmp(s, "http://", 7) ? 7 : 0;
    if (!i) {
        size_t k = native ? api_oauth_native_scheme(s, n) : 0;
        return k > 0 && uri_rest_ok(s, k, n);
    }
    /* The host: a name or IPv4 address, or an IPv6 literal in brackets. */
    size_t h = i;
    if (i < n && s[i] == '[') {
        while (++i < n && (df_hex_digit(s[i]) >= 0 || s[i] == ':' || s[i] == '.')) {
        }
        if (i >= n || s[i] != ']' || i == h + 1) return false;
        i++;
    } else {
        while (i < n && (df_hex_digit(s[i]) >= 0 || (s[i] >= 'a' && s[i] <= 'z') ||
                         (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' || s[i] == '-'))
            i++;
        if (i == h) return false;
    }
    if (i < n && s[i] == ':') {
        unsigned port = 0, digits = 0;
        while (++i < n && s[i] >= '0' && s[i] <= '9' && digits < 6) {
            port = port * 10 + (unsigned)(s[i] - '0');
            digits++;
        }
        if (digits == 0 || digits > 5 || port == 0 || port > 65535) return false;
    }
    if (i < n && s[i] != '/' && s[i] != '?') return false; /* user info, or junk in the host */
    return uri_rest_ok(s, i, n);
}

/* ---- The store ---------------------------------------------------------------------------- */

static void app_key(char *out, size_t cap, const char *client_id)
{
    snprintf(out, cap, "%s%s", APP_PREFIX, client_id);
}

static void tag_key(char out[32], uint32_t tag)
{
    snprintf(out, 32, "%s%08x", TAG_PREFIX, (unsigned)tag);
}

static void secret_hash(const char *secret, char hex[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

int api_oauth_app_load(api_ctx *ctx, const char *client_id, api_oauth_app *a)
{
    memset(a, 0, sizeof *a);
    if (strlen(client_id) != API_OAUTH_KEY_LEN) return DF_ENOTFOUND;
    char key[sizeof APP_PREFIX + API_OAUTH_KEY_LEN], *v;
    size_t vl;
    app_key(key, sizeof key, client_id);
    int rc = stg_get(ctx->db, STG_CF_META, key, strlen(key), &v, &vl);
    if (rc < 0) return rc;
    a->json = json_loadb(v, vl, 0, NULL);
    free(v);
    const char *scopes = json_string_value(json_object_get(a->json, "scopes"));
    a->client_id = json_string_value(json_object_get(a->json, "client_id"));
    a->name = json_string_value(json_object_get(a->json, "name"));
    a->website = json_string_value(json_object_get(a->json, "website"));
    a->tag = (uint32_t)json_integer_value(json_object_get(a->json, "tag"));
    if (!scopes || !a->client_id || !a->name ||
        !json_is_array(json_object_get(a->json, "redirect_uris")) ||
        api_scopes_parse(scopes, strlen(scopes), &a->scope) < 0) {
        api_oauth_app_free(a);
        df_log(DF_LOG_ERROR, "oauth: the stored app %s does not decode", client_id);
        return DF_ECORRUPT;
    }
    return 0;
}

/* The app whose tokens carry tag: 0, DF_ENOTFOUND or DF_E*. */
static int app_by_tag(api_ctx *ctx, uint32_t tag, api_oauth_app *a)
{
    char key[32], *v;
    size_t vl;
    tag_key(key, tag);
    memset(a, 0, sizeof *a);
    int rc = stg_get(ctx->db, STG_CF_META, key, strlen(key), &v, &vl);
    if (rc < 0) return rc;
    char id[API_OAUTH_KEY_LEN + 1] = "";
    if (vl == API_OAUTH_KEY_LEN) memcpy(id, v, vl);
    free(v);
    return api_oauth_app_load(ctx, id, a);
}

void api_oauth_app_free(api_oauth_app *a)
{
    json_decref(a->json);
    memset(a, 0, sizeof *a);
}

bool api_oauth_app_secret_ok(const api_oauth_app *a, const char *secret)
{
    const char *stored = json_string_value(json_object_get(a->json, "secret_hash"));
    if (!stored || strlen(stored) != 64 || !secret) return false;
    char hex[65];
    secret_hash(secret, hex);
    return sodium_memcmp(stored, hex, 64) == 0;
}

bool api_oauth_app_redirect_ok(const api_oauth_app *a, const char *uri)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(a->json, "redirect_uris"), i, u)
    {
        const char *s = json_string_value(u);
        if (s && strcmp(s, uri) == 0) return true;
    }
    return false;
}

const char *api_oauth_app_sole_redirect(const api_oauth_app *a)
{
    json_t *uris = json_object_get(a->json, "redirect_uris");
    return json_array_size(uris) == 1 ? json_string_value(json_array_get(uris, 0)) : NULL;
}

static void random_key(char out[API_OAUTH_KEY_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, API_OAUTH_KEY_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Stores app (its record without the secret's hash and tag, which this
 * adds) under a new client id and a free tag: 0 and client_id, or DF_E*. */
static int app_register(api_ctx *ctx, json_t *app, const char *secret,
                        char client_id[API_OAUTH_KEY_LEN + 1])
{
    char hash[65], tkey[32], akey[sizeof APP_PREFIX + API_OAUTH_KEY_LEN];
    secret_hash(secret, hash);
    random_key(client_id);
    pthread_mutex_lock(&register_mu);
    int rc = DF_EEXIST;
    uint32_t tag = 0;
    for (int tries = 0; tries < 8 && rc == DF_EEXIST; tries++) {
        tag = randombytes_random();
        char *v;
        size_t vl;
        tag_key(tkey, tag);
        rc = stg_get(ctx->db, STG_CF_META, tkey, strlen(tkey), &v, &vl);
        if (rc == 0) {
            free(v);
            rc = DF_EEXIST;
        } else if (rc == DF_ENOTFOUND) {
            rc = 0;
        }
    }
    if (rc == 0) {
        json_object_set_new(app, "client_id", json_string(client_id));
        json_object_set_new(app, "secret_hash", json_string(hash));
        json_object_set_new(app, "tag", json_integer(tag));
        char *s = json_dumps(app, JSON_COMPACT);
        app_key(akey, sizeof akey, client_id);
        /* The app first: a tag whose app is missing would name nothing. */
        rc = s ? stg_meta_put_sync(ctx->db, akey, s, strlen(s)) : DF_EINVAL;
        if (rc == 0) rc = stg_meta_put_sync(ctx->db, tkey, client_id, API_OAUTH_KEY_LEN);
        free(s);
    }
    pthread_mutex_unlock(&register_mu);
    return rc;
}

/* ---- POST /api/v1/apps -------------------------------------------------------------------- */

static int invalid(api_req *r, const char *msg)
{
    api_error(r, 422, "validation_failed", "Validation failed: %s", msg);
    return -1;
}

/* Appends uri (n bytes) to uris unless there already; -1 with the 422
 * answered if it is not one an app may register. */
static int add_uri(api_req *r, json_t *uris, const char *uri, size_t n)
{
    char q[API_EXCERPT_MAX + 4], *copy = xstrndup(uri, n);
    int rc = 0;
    if (!api_oauth_uri_valid(uri, n, true)) {
        api_error(r, 422, "validation_failed",
                  "Validation failed: Redirect URI \"%s\" must be an absolute http(s) URL "
                  "without a fragment, an app's own scheme (com.example.app:/cb), or " API_OAUTH_OOB,
                  api_excerpt(q, copy));
        rc = -1;
    } else if (json_array_size(uris) == API_APP_URIS_MAX) {
        rc = invalid(r, "an app has at most 16 redirect URIs");
    } else {
        bool seen = false;
        size_t i;
        json_t *u;
        json_array_foreach(uris, i, u) seen = seen || strcmp(json_string_value(u), copy) == 0;
        if (!seen) json_array_append_new(uris, json_string(copy));
    }
    free(copy);
    return rc;
}

/* The redirect URIs: a list (redirect_uris[]), or one string with the URIs
 * separated by white space. -1 with the 422 answered. */
static int read_uris(api_req *r, const api_form *f, json_t *uris)
{
    const char *list[API_APP_URIS_MAX + 1];
    size_t n = api_param_list(r, f, "redirect_uris[]", list, API_APP_URIS_MAX + 1);
    for (size_t i = 0; i < n; i++)
        if (add_uri(r, uris, list[i], strlen(list[i])) < 0) return -1;
    const char *s;
    if (!n &&
        api_oauth_param(r, f, "redirect_uris", API_APP_URIS_MAX * (API_APP_URI_MAX + 1), &s) < 0)
        return invalid(r, "redirect_uris is not text");
    for (const char *p = n ? "" : s ? s : ""; *p;) {
        size_t sp = strspn(p, " \t\r\n");
        p += sp;
        size_t len = strcspn(p, " \t\r\n");
        if (len && add_uri(r, uris, p, len) < 0) return -1;
        p += len;
    }
    if (json_array_size(uris) == 0) return invalid(r, "Redirect URI can't be blank");
    return 0;
}

/* The name shown on the sign-in page: text of 1..60 characters on one line. */
static bool name_ok(const char *s)
{
    size_t chars = 0;
    bool blank = true;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20) return false;
        chars += ((unsigned char)*p & 0xc0) != 0x80;
        blank = blank && *p == ' ';
    }
    return !blank && chars <= API_APP_NAME_MAX;
}

static json_t *scope_array(uint64_t set)
{
    const char *names[64];
    size_t n = api_scopes_names(set, names, 64);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(names[i]));
    return a;
}

/* The Application entity: what every app request answers. */
static json_t *application(const api_oauth_app *a)
{
    json_t *uris = json_object_get(a->json, "redirect_uris");
    api_buf joined = {0};
    size_t i;
    json_t *u;
    json_array_foreach(uris, i, u)
    {
        if (i) api_buf_append(&joined, "\n", 1);
        api_buf_printf(&joined, "%s", json_string_value(u));
    }
    json_t *j =
        json_pack("{s:O,s:s,s:o,s:o,s:s#,s:O,s:s}", "id", json_object_get(a->json, "id"), "name",
                  a->name, "website", a->website ? json_string(a->website) : json_null(), "scopes",
                  scope_array(a->scope), "redirect_uri", joined.p ? joined.p : "", (int)joined.len,
                  "redirect_uris", uris, "vapid_key", "");
    free(joined.p);
    return j;
}

void api_apps_create(api_req *r)
{
    api_form f;
    if (api_form_or_4xx(r, &f) < 0) return;
    const char *name, *website, *scopes;
    json_t *uris = json_array();
    uint64_t scope;
    if (api_oauth_param(r, &f, "client_name", 4 * API_APP_NAME_MAX, &name) < 0 || !name ||
        !name_ok(name)) {
        invalid(r, "client_name must be 1 to 60 characters of text on one line");
        goto out;
    }
    if (read_uris(r, &f, uris) < 0) goto out;
    if (api_oauth_param(r, &f, "scopes", API_SCOPES_TEXT_MAX, &scopes) < 0 ||
        api_scopes_parse(scopes ? scopes : "", scopes ? strlen(scopes) : 0, &scope) < 0) {
        invalid(r, "Scopes must only contain scopes Mastodon defines");
        goto out;
    }
    if (!scope) api_scopes_parse("read", 4, &scope); /* Mastodon's default */
    if (api_oauth_param(r, &f, "website", API_APP_URI_MAX, &website) < 0 ||
        (website && *website &&
         (!api_oauth_uri_valid(website, strlen(website), false) || !strncmp(website, "urn:", 4)))) {
        invalid(r, "Website must be an http(s) URL");
        goto out;
    }
    if (api_signup_rate_or_429(r) < 0) goto out;
    char scope_text[API_SCOPES_JOIN_MAX], id[32], client_id[API_OAUTH_KEY_LEN + 1],
        secret[API_OAUTH_KEY_LEN + 1];
    api_scopes_join(scope, scope_text);
    snprintf(id, sizeof id, "%llu",
             (unsigned long long)(df_now_ms() << 16 | (randombytes_random() & 0xffff)));
    random_key(secret);
    char created[32];
    df_format_time(df_now_ms(), created);
    json_t *rec = json_pack("{s:s,s:s,s:o,s:s,s:O,s:s}", "id", id, "name", name, "website",
                            website && *website ? json_string(website) : json_null(), "scopes",
                            scope_text, "redirect_uris", uris, "created_at", created);
    int rc = app_register(r->ctx, rec, secret, client_id);
    if (rc < 0) {
        api_error_df(r, rc, "app");
    } else {
        api_oauth_app a = {.json = rec,
                           .client_id = client_id,
                           .name = name,
                           .website = json_string_value(json_object_get(rec, "website")),
                           .scope = scope};
        json_t *j = application(&a);
        json_object_set_new(j, "client_id", json_string(client_id));
        json_object_set_new(j, "client_secret", json_string(secret));
        json_object_set_new(j, "client_secret_expires_at", json_integer(0));
        api_reply_json(r, 200, j);
    }
    json_decref(rec);
out:
    json_decref(uris);
    api_form_free(&f);
}

/* ---- GET /api/v1/apps/verify_credentials ---------------------------------------------------- */

void api_apps_verify(api_req *r)
{
    const char *h = api_header(r, "Authorization");
    api_oauth_grant g;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        api_error(r, 401, "unauthorized", "The access token is invalid");
        return;
    }
    h += 7;
    while (*h == ' ') h++;
    int rc = api_oauth_verify(r->ctx, h, &g);
    api_oauth_app a;
    if (rc == 0) rc = app_by_tag(r->ctx, g.app, &a);
    if (rc == DF_EINVAL || rc == DF_ENOTFOUND)
        api_error(r, 401, "unauthorized", "The access token is invalid");
    else if (rc < 0)
        api_error_df(r, rc, "app");
    else
        api_reply_json(r, 200, application(&a));
    if (rc == 0) api_oauth_app_free(&a);
}
