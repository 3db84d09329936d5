/* oauth_token.c -- POST /oauth/token (grant types authorization_code,
 * with PKCE, and client_credentials) and POST /oauth/revoke.
 *
 * Parameters come as a form or JSON body (or the query); a client may
 * also authenticate with HTTP Basic (RFC 6749 2.3.1). Errors are RFC
 * 6749's: 400 invalid_request, invalid_grant, unsupported_grant_type,
 * invalid_scope; 401 invalid_client. A public client (no secret) may
 * redeem a code only when the code was issued with a PKCE challenge. */
#include "api.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VERIFIER_MIN 43
#define VERIFIER_MAX 128

typedef struct token_req {
    const char *grant, *client_id, *client_secret, *code, *redirect_uri, *verifier, *scope;
    char basic_id[API_OAUTH_KEY_LEN + 1], basic_secret[API_OAUTH_KEY_LEN + 1];
} token_req;

/* Authorization: Basic base64(client_id ":" client_secret), when sent. */
static void basic_auth(api_req *r, token_req *t)
{
    const char *h = api_header(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0) return;
    char raw[2 * API_OAUTH_KEY_LEN + 8];
    size_t n;
    if (sodium_base642bin((unsigned char *)raw, sizeof raw - 1, h + 6, strlen(h + 6), NULL, &n,
                          NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return;
    raw[n] = '\0';
    char *colon = strchr(raw, ':');
    if (!colon || (size_t)(colon - raw) > API_OAUTH_KEY_LEN ||
        strlen(colon + 1) > API_OAUTH_KEY_LEN)
        return;
    memcpy(t->basic_id, raw, (size_t)(colon - raw));
    t->basic_id[colon - raw] = '\0';
    memcpy(t->basic_secret, colon + 1, strlen(colon + 1) + 1);
    if (!t->client_id) t->client_id = t->basic_id;
    if (!t->client_secret) t->client_secret = t->basic_secret;
}

static int read_or_400(api_req *r, const api_form *f, token_req *t, bool revoke)
{
    memset(t, 0, sizeof *t);
    if (api_oauth_param(r, f, "grant_type", 64, &t->grant) < 0 ||
        api_oauth_param(r, f, "client_id", 64, &t->client_id) < 0 ||
        api_oauth_param(r, f, "client_secret", 64, &t->client_secret) < 0 ||
        api_oauth_param(r, f, revoke ? "token" : "code", API_TOKEN_MAX, &t->code) < 0 ||
        api_oauth_param(r, f, "redirect_uri", API_APP_URI_MAX, &t->redirect_uri) < 0 ||
        api_oauth_param(r, f, "code_verifier", VERIFIER_MAX, &t->verifier) < 0 ||
        api_oauth_param(r, f, "scope", API_SCOPES_TEXT_MAX, &t->scope) < 0) {
        api_error(r, 400, "invalid_request", "a parameter is too long or is not text");
        return -1;
    }
    basic_auth(r, t);
    return 0;
}

/* Loads the client and checks its secret (which may be absent only when
 * public is set); -1 with 401 invalid_client answered. */
static int client_or_401(api_req *r, const token_req *t, bool public, api_oauth_app *app)
{
    memset(app, 0, sizeof *app);
    if (!t->client_id) {
        api_error(r, 401, "invalid_client", "client_id is missing");
        return -1;
    }
    int rc = api_oauth_app_load(r->ctx, t->client_id, app);
    if (rc < 0 && rc != DF_ENOTFOUND) {
        api_error_df(r, rc, "app");
        return -1;
    }
    if (rc == DF_ENOTFOUND ||
        (t->client_secret && !api_oauth_app_secret_ok(app, t->client_secret)) ||
        (!t->client_secret && !public)) {
        api_oauth_app_free(app);
        api_error(r, 401, "invalid_client", "Client authentication failed");
        return -1;
    }
    return 0;
}

static void reply_token(api_req *r, const char *tok, uint64_t scope, const api_oauth_grant *g)
{
    char text[API_SCOPES_JOIN_MAX];
    api_scopes_join(scope, text);
    api_reply_json_with(r, 200,
                        json_pack("{s:s,s:s,s:s,s:I}", "access_token", tok, "token_type", "Bearer",
                                  "scope", text, "created_at", (json_int_t)g->issued_s),
                        "Cache-Control", "no-store");
}

/* Whether BASE64URL(SHA-256(verifier)) is challenge (RFC 7636 4.6). */
static bool verifier_ok(const char *verifier, const char *challenge)
{
    size_t n = strlen(verifier);
    if (n < VERIFIER_MIN || n > VERIFIER_MAX ||
        strspn(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != n)
        return false;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, n);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return strlen(challenge) == 43 && sodium_memcmp(b64, challenge, 43) == 0;
}

static void code_grant(api_req *r, const token_req *t)
{
    if (!t->code || !*t->code) {
        api_error(r, 400, "invalid_request", "code is missing");
        return;
    }
    api_oauth_app app;
    if (client_or_401(r, t, true, &app) < 0) return;
    api_oauth_code c = {0};
    api_oauth_grant reused;
    int rc = api_oauth_code_take(r->ctx->oauth, t->code, &c, &reused);
    const char *msg = NULL;
    if (rc == DF_ESTALE) {
        /* Someone has the code who should not: the token it got goes too. */
        if (reused.revoke_key[0]) api_oauth_revoke_grant(r->ctx, &reused);
        msg = "the code was used already";
    } else if (rc < 0) {
        msg = "the code is unknown or has expired";
    } else if (strcmp(c.client_id, app.client_id) != 0) {
        msg = "the code was issued to another client";
    } else if (!t->redirect_uri || strcmp(t->redirect_uri, c.redirect_uri) != 0) {
        msg = "redirect_uri is not the one the code was issued for";
    } else if (c.challenge[0] && (!t->verifier || !verifier_ok(t->verifier, c.challenge))) {
        msg = "code_verifier does not match the code challenge";
    } else if (!c.challenge[0] && t->verifier) {
        msg = "the code was issued without a code challenge";
    }
    if (!msg && !c.challenge[0] && !t->client_secret) {
        api_error(r, 401, "invalid_client", "client_secret is required without PKCE");
    } else if (msg) {
        api_error(r, 400, "invalid_grant", "%s", msg);
    } else {
        char tok[API_TOKEN_MAX];
        api_oauth_grant g;
        rc = api_oauth_mint(r->ctx, c.user, api_scopes_bits(c.scope), app.tag, tok, &g);
        if (rc < 0) {
            api_error_df(r, rc, "token");
        } else {
            api_oauth_code_redeemed(r->ctx->oauth, t->code, &g);
            reply_token(r, tok, c.scope, &g);
        }
    }
    api_oauth_code_clear(&c);
    api_oauth_app_free(&app);
}

static void client_grant(api_req *r, const token_req *t)
{
    api_oauth_app app;
    if (client_or_401(r, t, false, &app) < 0) return;
    uint64_t scope;
    int rc = api_scopes_parse(t->scope ? t->scope : "", t->scope ? strlen(t->scope) : 0, &scope);
    if (rc == 0 && !scope) api_scopes_parse("read", 4, &scope); /* the default */
    if (rc < 0 || !api_scopes_within(scope, app.scope)) {
        api_error(r, 400, "invalid_scope", "the scope is unknown or more than the app registered");
        api_oauth_app_free(&app);
        return;
    }
    char tok[API_TOKEN_MAX];
    api_oauth_grant g;
    rc = api_oauth_mint(r->ctx, "", api_scopes_bits(scope), app.tag, tok, &g);
    if (rc < 0)
        api_error_df(r, rc, "token");
    else
        reply_token(r, tok, scope, &g);
    api_oauth_app_free(&app);
}

void api_oauth_token(api_req *r)
{
    api_form f;
    if (api_form_or_4xx(r, &f) < 0) return;
    token_req t;
    if (read_or_400(r, &f, &t, false) == 0) {
        if (!t.grant)
            api_error(r, 400, "invalid_request", "grant_type is missing");
        else if (strcmp(t.grant, "authorization_code") == 0)
            code_grant(r, &t);
        else if (strcmp(t.grant, "client_credentials") == 0)
            client_grant(r, &t);
        else
            api_error(r, 400, "unsupported_grant_type",
                      "grant_type must be authorization_code or client_credentials");
    }
    api_form_free(&f);
}

void api_oauth_revoke(api_req *r)
{
    api_form f;
    if (api_form_or_4xx(r, &f) < 0) return;
    token_req t;
    api_oauth_app app;
    if (read_or_400(r, &f, &t, true) < 0 || client_or_401(r, &t, false, &app) < 0) {
        api_form_free(&f);
        return;
    }
    api_oauth_grant g;
    int rc = t.code ? api_oauth_verify(r->ctx, t.code, &g) : DF_EINVAL;
    if (!t.code)
        api_error(r, 400, "invalid_request", "token is missing");
    else if (rc == DF_EINVAL) /* not ours, or revoked already: nothing to do (RFC 7009 2.2) */
        api_reply_json(r, 200, json_object());
    else if (rc < 0)
        api_error_df(r, rc, "token");
    else if (g.app != app.tag)
        api_error(r, 403, "unauthorized_client", "You are not authorized to revoke this token");
    else if ((rc = api_oauth_revoke_grant(r->ctx, &g)) < 0)
        api_error_df(r, rc, "token");
    else
        api_reply_json(r, 200, json_object());
    api_oauth_app_free(&app);
    api_form_free(&f);
}
