/* oauth_authorize.c -- GET /oauth/authorize shows the sign-in page; POST
 * /oauth/authorize signs the user in (or makes an account) and sends the
 * browser back to the app with a code.
 *
 * The request's parameters are checked on both before anything else:
 * an unknown client, an unregistered redirect URI, a scope the app did
 * not register, a response type other than "code" or a PKCE method other
 * than S256 answer 400 with an error page, never a redirect (so a link
 * cannot bounce a browser anywhere through this region). driftfeed
 * accounts have no passwords: the user proves who they are with their
 * account token. There is no ambient authority (no cookie, no session),
 * so a form posted from elsewhere proves nothing it did not carry. */
#include "api.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAX 1024
#define CHALLENGE_LEN 43 /* BASE64URL(SHA-256(verifier)) */

typedef struct authz {
    const char *client_id, *redirect_uri, *scope_text, *state, *challenge, *method;
    uint64_t scope;
    api_oauth_app app;
} authz;

/* form-action must name the redirect's origin too: Chromium applies it to
 * the redirect that answers the form. An IPv6 literal cannot be a CSP
 * host, so it gets its scheme, as does a native app's own scheme. */
static void send_html(api_req *r, int status, api_buf *b, const char *redirect_uri)
{
    char csp[API_APP_URI_MAX + 160], origin[API_APP_URI_MAX + 1] = "";
    if (redirect_uri && strncmp(redirect_uri, "http", 4) == 0) {
        const char *host = strstr(redirect_uri, "://") + 3;
        size_t n = host[0] == '[' ? (size_t)(host - redirect_uri) - 2
                                  : (size_t)(host - redirect_uri) + strcspn(host, "/?");
        snprintf(origin, sizeof origin, " %.*s", (int)n, redirect_uri);
    } else if (redirect_uri) { /* a native app's scheme: a scheme source */
        size_t k = api_oauth_native_scheme(redirect_uri, strlen(redirect_uri));
        if (k) snprintf(origin, sizeof origin, " %.*s", (int)k, redirect_uri);
    }
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'%s; "
             "frame-ancestors 'none'; base-uri 'none'",
             origin);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
    b->p = NULL;
    b->len = b->cap = 0;
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    api_reply_response(r, status, resp);
}

static int error_page(api_req *r, int status, const char *msg)
{
    api_buf b = {0};
    api_oauth_page_error(&b, repl_region(r->ctx->rp), msg);
    send_html(r, status, &b, NULL);
    return -1;
}

static int storage_error_page(api_req *r, int rc)
{
    return error_page(r, rc == DF_EBUSY ? 503 : 500,
                      rc == DF_EBUSY ? "The server is overloaded; try again shortly."
                                     : "The server could not read its data; try again later.");
}

/* Reads and checks the request's parameters; -1 with the 400 page answered. */
static int authz_or_400(api_req *r, const api_form *f, authz *a)
{
    const char *type;
    memset(a, 0, sizeof *a);
    if (api_oauth_param(r, f, "response_type", 16, &type) < 0 ||
        api_oauth_param(r, f, "client_id", 64, &a->client_id) < 0 ||
        api_oauth_param(r, f, "redirect_uri", API_APP_URI_MAX, &a->redirect_uri) < 0 ||
        api_oauth_param(r, f, "scope", API_SCOPES_TEXT_MAX, &a->scope_text) < 0 ||
        api_oauth_param(r, f, "state", STATE_MAX, &a->state) < 0 ||
        api_oauth_param(r, f, "code_challenge", 128, &a->challenge) < 0 ||
        api_oauth_param(r, f, "code_challenge_method", 16, &a->method) < 0)
        return error_page(r, 400, "A parameter of the request is too long or is not text.");
    if (!type || strcmp(type, "code") != 0)
        return error_page(r, 400, "response_type must be \"code\".");
    if (!a->client_id) return error_page(r, 400, "client_id is missing.");
    int rc = api_oauth_app_load(r->ctx, a->client_id, &a->app);
    if (rc == DF_ENOTFOUND) return error_page(r, 400, "No app is registered with this client_id.");
    if (rc < 0) return storage_error_page(r, rc);
    if (!a->redirect_uri || !*a->redirect_uri)
        a->redirect_uri = api_oauth_app_sole_redirect(&a->app);
    const char *msg = NULL;
    if (!a->redirect_uri)
        msg = "redirect_uri is missing (the app registered several).";
    else if (!api_oauth_app_redirect_ok(&a->app, a->redirect_uri))
        msg = "redirect_uri is not one the app registered.";
    else if (api_scopes_parse(a->scope_text ? a->scope_text : "",
                              a->scope_text ? strlen(a->scope_text) : 0, &a->scope) < 0)
        msg = "scope names a scope that does not exist.";
    if (!msg && !a->scope) {
        a->scope_text = "read";
        api_scopes_parse("read", 4, &a->scope);
    }
    if (!msg && !api_scopes_within(a->scope, a->app.scope))
        msg = "scope asks for more than the app registered.";
    else if (!msg && (a->challenge || a->method) && (!a->method || strcmp(a->method, "S256") != 0))
        msg = "code_challenge_method must be S256.";
    else if (!msg && a->method && !a->challenge)
        msg = "code_challenge is missing.";
    else if (!msg && a->challenge &&
             (strlen(a->challenge) != CHALLENGE_LEN ||
              strspn(a->challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_") != CHALLENGE_LEN))
        msg = "code_challenge must be the base64url SHA-256 of the verifier (43 characters).";
    if (msg) {
        api_oauth_app_free(&a->app);
        return error_page(r, 400, msg);
    }
    return 0;
}

static void signin_page(api_req *r, int status, const authz *a, const char *msg, const char *name,
                        const char *display_name)
{
    api_oauth_page p = {.region = repl_region(r->ctx->rp),
                        .app_name = a->app.name,
                        .app_website = a->app.website,
                        .message = msg,
                        .client_id = a->client_id,
                        .redirect_uri = a->redirect_uri,
                        .scope = a->scope_text,
                        .state = a->state,
                        .challenge = a->challenge,
                        .challenge_method = a->method,
                        .name = name,
                        .display_name = display_name};
    p.nscopes = api_scopes_names(a->scope, p.scope_names, 64);
    api_buf b = {0};
    api_oauth_page_signin(&b, &p);
    send_html(r, status, &b, a->redirect_uri);
}

void api_oauth_authorize_get(api_req *r)
{
    authz a;
    if (authz_or_400(r, NULL, &a) < 0) return;
    signin_page(r, 200, &a, NULL, NULL, NULL);
    api_oauth_app_free(&a.app);
}

/* Appends s percent-encoded (all but RFC 3986's unreserved characters). */
static void pct_encode(api_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            api_buf_append(b, (const char *)p, 1);
        else
            api_buf_printf(b, "%%%02X", *p);
    }
}

static void send_code(api_req *r, const authz *a, const char *code)
{
    if (strcmp(a->redirect_uri, API_OAUTH_OOB) == 0) {
        api_buf b = {0};
        api_oauth_page_code(&b, repl_region(r->ctx->rp), a->app.name, code);
        send_html(r, 200, &b, NULL);
        return;
    }
    api_buf loc = {0};
    api_buf_printf(&loc, "%s%ccode=%s", a->redirect_uri, strchr(a->redirect_uri, '?') ? '&' : '?',
                   code);
    if (a->state) {
        api_buf_append(&loc, "&state=", 7);
        pct_encode(&loc, a->state);
    }
    api_buf_append(&loc, "", 1); /* the NUL */
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Location", loc.p);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    free(loc.p);
    api_reply_response(r, 302, resp);
}

/* The account the form names, made now: 0 with its id in user, or -1
 * with the page (or a 429) answered. */
static int sign_up(api_req *r, const authz *a, const char *name, const char *display,
                   char user[STG_ID_MAX + 1])
{
    json_t *in = json_pack("{s:s}", "name", name);
    if (display && *display) json_object_set_new(in, "display_name", json_string(display));
    char *s = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    api_user_body body;
    api_fail fail = {.message = "The name is not valid."};
    /* The rules of POST /v1/users, by its own decoder. */
    int rc = s ? api_decode_user(s, strlen(s), &body, &fail) : -1;
    free(s);
    if (rc < 0) {
        signin_page(r, 400, a, fail.message, name, display);
        return -1;
    }
    if (api_signup_rate_or_429(r) < 0) return -1;
    json_t *account;
    rc = api_user_new(r, &body, &account);
    if (rc == DF_EEXIST) {
        char msg[128];
        snprintf(msg, sizeof msg, "The name \"%s\" is taken here; choose another.", body.name);
        signin_page(r, 409, a, msg, name, display);
        return -1;
    }
    if (rc < 0) return storage_error_page(r, rc);
    snprintf(user, STG_ID_MAX + 1, "%s", json_string_value(json_object_get(account, "id")));
    json_decref(account);
    return 0;
}

void api_oauth_authorize_post(api_req *r)
{
    api_form f;
    if (api_form_or_4xx(r, &f) < 0) return;
    authz a;
    if (authz_or_400(r, &f, &a) < 0) {
        api_form_free(&f);
        return;
    }
    const char *token = api_form_get(&f, "token"), *name = api_form_get(&f, "name");
    const char *display = api_form_get(&f, "display_name");
    char user[STG_ID_MAX + 1];
    int rc = 0;
    if (token && *token) {
        rc = api_token_check(r, token, user);
        if (rc == DF_ENOTFOUND) {
            signin_page(r, 401, &a, "That is not the token of an account known here.", NULL, NULL);
        } else if (rc < 0) {
            storage_error_page(r, rc);
        }
    } else if (name && *name) {
        rc = sign_up(r, &a, name, display, user);
    } else {
        signin_page(r, 400, &a, "Enter your account token, or a name for a new account.", NULL,
                    NULL);
        rc = -1;
    }
    if (rc == 0) {
        api_oauth_code c = {.redirect_uri = (char *)a.redirect_uri, .scope = a.scope};
        snprintf(c.client_id, sizeof c.client_id, "%s", a.client_id);
        snprintf(c.user, sizeof c.user, "%s", user);
        snprintf(c.challenge, sizeof c.challenge, "%s", a.challenge ? a.challenge : "");
        char code[API_OAUTH_KEY_LEN + 1];
        api_oauth_code_issue(r->ctx->oauth, &c, code);
        send_code(r, &a, code);
    }
    api_oauth_app_free(&a.app);
    api_form_free(&f);
}
