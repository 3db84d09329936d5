/* oauth_page.c -- the HTML of /oauth/authorize: the sign-in page, the
 * out-of-band code page, the error page.
 *
 * Self-contained (inline style, no script, no images: the page's CSP is
 * default-src 'none'), and every string from a request or an app goes
 * through api_html_escape, attribute values included. */
#include "api.h"

#include <string.h>

static const char style[] =
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#1d1d22}"
    "main{max-width:26rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;"
    "border-radius:.75rem;box-shadow:0 1px 4px #0002}"
    "h1{font-size:1.3rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}"
    "label{display:block;margin:.6rem 0}input{display:block;width:100%;box-sizing:border-box;"
    "padding:.45rem;font:inherit;border:1px solid #999;border-radius:.35rem}"
    "button{margin-top:.6rem;padding:.5rem 1rem;font:inherit;border:0;border-radius:.35rem;"
    "background:#3b4fd8;color:#fff}.error{color:#a40e26;font-weight:600}"
    "code{display:block;word-break:break-all;padding:.6rem;background:#eef;border-radius:.35rem}"
    "small{color:#555}";

void api_html_escape(api_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': api_buf_append(b, "&amp;", 5); break;
        case '<': api_buf_append(b, "&lt;", 4); break;
        case '>': api_buf_append(b, "&gt;", 4); break;
        case '"': api_buf_append(b, "&quot;", 6); break;
        case '\'': api_buf_append(b, "&#39;", 5); break;
        default: api_buf_append(b, p, 1); break;
        }
    }
}

static void head(api_buf *b, const char *title, const char *region)
{
    api_buf_printf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                      "<meta name=\"referrer\" content=\"no-referrer\"><title>");
    api_buf_printf(b, "%s ", title);
    api_html_escape(b, region);
    api_buf_printf(b, "</title><style>%s</style></head>\n<body><main>\n", style);
}

static void tail(api_buf *b) { api_buf_printf(b, "</main></body></html>\n"); }

static void hidden(api_buf *b, const char *name, const char *value)
{
    if (!value) return;
    api_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    api_html_escape(b, value);
    api_buf_printf(b, "\">\n");
}

static void request_fields(api_buf *b, const api_oauth_page *p)
{
    hidden(b, "response_type", "code");
    hidden(b, "client_id", p->client_id);
    hidden(b, "redirect_uri", p->redirect_uri);
    hidden(b, "scope", p->scope);
    hidden(b, "state", p->state);
    hidden(b, "code_challenge", p->challenge);
    hidden(b, "code_challenge_method", p->challenge_method);
}

void api_oauth_page_signin(api_buf *b, const api_oauth_page *p)
{
    head(b, "Sign in to driftfeed", p->region);
    api_buf_printf(b, "<h1>Sign in to driftfeed &middot; ");
    api_html_escape(b, p->region);
    api_buf_printf(b, "</h1>\n<p><strong>");
    api_html_escape(b, p->app_name);
    api_buf_printf(b, "</strong>");
    if (p->app_website) {
        api_buf_printf(b, " (<a href=\"");
        api_html_escape(b, p->app_website);
        api_buf_printf(b, "\" rel=\"noopener noreferrer\">");
        api_html_escape(b, p->app_website);
        api_buf_printf(b, "</a>)");
    }
    api_buf_printf(b, " asks to use your account with these permissions:</p>\n<ul>\n");
    for (size_t i = 0; i < p->nscopes; i++) {
        api_buf_printf(b, "<li>");
        api_html_escape(b, p->scope_names[i]);
        api_buf_printf(b, "</li>\n");
    }
    api_buf_printf(b, "</ul>\n");
    if (p->message) {
        api_buf_printf(b, "<p class=\"error\" role=\"alert\">");
        api_html_escape(b, p->message);
        api_buf_printf(b, "</p>\n");
    }
    api_buf_printf(b, "<form method=\"post\" action=\"/oauth/authorize\">\n");
    request_fields(b, p);
    api_buf_printf(b, "<label>Your account token <input type=\"password\" name=\"token\" "
                      "autocomplete=\"current-password\" required></label>\n"
                      "<small>driftfeed accounts have no passwords: the token you got when "
                      "you made the account proves it is yours.</small><br>\n"
                      "<button type=\"submit\">Authorize</button>\n</form>\n"
                      "<h2>New to driftfeed?</h2>\n"
                      "<form method=\"post\" action=\"/oauth/authorize\">\n");
    request_fields(b, p);
    api_buf_printf(b,
                   "<label>Name (a-z, 0-9, _) <input name=\"name\" required maxlength=\"%d\" "
                   "pattern=\"[a-z0-9_]+\" autocomplete=\"username\" value=\"",
                   API_NAME_MAX);
    api_html_escape(b, p->name ? p->name : "");
    api_buf_printf(b,
                   "\"></label>\n<label>Display name <input name=\"display_name\" "
                   "maxlength=\"%d\" value=\"",
                   API_DISPLAY_MAX);
    api_html_escape(b, p->display_name ? p->display_name : "");
    api_buf_printf(b, "\"></label>\n<button type=\"submit\">Create the account and authorize"
                      "</button>\n</form>\n");
    tail(b);
}

void api_oauth_page_code(api_buf *b, const char *region, const char *app_name, const char *code)
{
    head(b, "Authorized on driftfeed", region);
    api_buf_printf(b, "<h1>Authorized</h1>\n<p>Copy this code into <strong>");
    api_html_escape(b, app_name);
    api_buf_printf(b, "</strong>:</p>\n<code id=\"code\">");
    api_html_escape(b, code);
    api_buf_printf(b, "</code>\n<p><small>It works once, within ten minutes.</small></p>\n");
    tail(b);
}

void api_oauth_page_error(api_buf *b, const char *region, const char *message)
{
    head(b, "Sign-in failed on driftfeed", region);
    api_buf_printf(b, "<h1>This sign-in link does not work</h1>\n<p class=\"error\">");
    api_html_escape(b, message);
    api_buf_printf(b, "</p>\n<p>Go back to the app and start signing in again.</p>\n");
    tail(b);
}
