/* form.c -- the parameters of a Mastodon or OAuth request: a JSON object
 * or an application/x-www-form-urlencoded body (apps send either), then
 * the query string.
 *
 * api_form_parse is a pure function of the bytes (fuzzed by fuzz_form).
 * Every value it keeps is valid UTF-8 without NUL; a body that is neither
 * is refused, so a handler never sees bytes it could not echo. A JSON
 * string, number or boolean is one value; an array of them is one value
 * each under "name[]", the name a form uses for a list. Nested objects
 * are left out. */
#include "api.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail_with(api_fail *f, int status, const char *code, const char *msg)
{
    f->status = status;
    snprintf(f->code, sizeof f->code, "%s", code);
    snprintf(f->message, sizeof f->message, "%s", msg);
    return -1;
}

static void add(api_form *f, const char *k, size_t kl, const char *v, size_t vl)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->items = xrealloc(f->items, f->cap * sizeof *f->items);
    }
    f->items[f->n].key = xstrndup(k, kl);
    f->items[f->n].value = xstrndup(v, vl);
    f->n++;
}

/* Decodes a urlencoded part ('+' is a space, %XX a byte) in place;
 * returns its length, or -1 for a broken escape. */
static long form_unescape(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) return -1;
            int a = df_hex_digit(s[i + 1]), b = df_hex_digit(s[i + 2]);
            if (a < 0 || b < 0) return -1;
            c = (char)(a << 4 | b);
            i += 2;
        }
        s[o++] = c;
    }
    return (long)o;
}

static int parse_urlencoded(const char *body, size_t len, api_form *f, api_fail *fail)
{
    char *copy = xstrndup(body, len);
    int rc = 0;
    for (char *p = copy, *end = copy + len; p < end && rc == 0;) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        char *stop = amp ? amp : end;
        char *eq = memchr(p, '=', (size_t)(stop - p));
        char *kend = eq ? eq : stop, *v = eq ? eq + 1 : stop;
        long kl = form_unescape(p, (size_t)(kend - p));
        long vl = form_unescape(v, (size_t)(stop - v));
        if (kl < 0 || vl < 0)
            rc = fail_with(fail, 400, "malformed_form", "the form body has a broken % escape");
        else if (!api_utf8_valid(p, (size_t)kl) || !api_utf8_valid(v, (size_t)vl))
            rc = fail_with(fail, 400, "malformed_form", "the form body is not UTF-8 text");
        else if (kl > 0)
            add(f, p, (size_t)kl, v, (size_t)vl);
        p = stop + 1;
    }
    free(copy);
    return rc;
}

/* One JSON scalar as text into add(); false for objects, arrays and null. */
static bool add_scalar(api_form *f, const char *k, size_t kl, json_t *v)
{
    char num[64];
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strlen(s) != n) return true; /* a NUL inside: left out */
        add(f, k, kl, s, n);
    } else if (json_is_true(v) || json_is_false(v)) {
        add(f, k, kl, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
    } else if (json_is_integer(v)) {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        add(f, k, kl, num, (size_t)n);
    } else if (json_is_real(v)) {
        int n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
        add(f, k, kl, num, (size_t)n);
    } else {
        return false;
    }
    return true;
}

static int parse_json(const char *body, size_t len, api_form *f, api_fail *fail)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return fail_with(fail, 400, "malformed_json", "the body must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        size_t kl = strlen(k);
        if (add_scalar(f, k, kl, v) || !json_is_array(v) || kl > API_FORM_KEY_MAX) continue;
        char list[API_FORM_KEY_MAX + 3];
        int ll = snprintf(list, sizeof list, "%s[]", k);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) add_scalar(f, list, (size_t)ll, e);
    }
    json_decref(j);
    return 0;
}

/* The media type of a Content-Type value, without parameters. */
static bool type_is(const char *type, const char *want)
{
    size_t n = strlen(want);
    return strncasecmp(type, want, n) == 0 &&
           (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

int api_form_parse(const char *type, const char *body, size_t len, api_form *f, api_fail *fail)
{
    memset(f, 0, sizeof *f);
    if (len == 0) return 0; /* no body: the query alone */
    if (type && type_is(type, "application/json")) return parse_json(body, len, f, fail);
    if (type && type_is(type, "application/x-www-form-urlencoded"))
        return parse_urlencoded(body, len, f, fail);
    return fail_with(fail, 415, "unsupported_media_type",
                     "the body must be application/json or application/x-www-form-urlencoded");
}

void api_form_free(api_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].key);
        free(f->items[i].value);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

const char *api_form_get(const api_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->items[i].key, name) == 0) return f->items[i].value;
    return NULL;
}

int api_form_or_4xx(api_req *r, api_form *f)
{
    api_fail fail;
    if (api_form_parse(api_header(r, "Content-Type"), r->body, r->body_len, f, &fail) == 0)
        return 0;
    api_form_free(f);
    api_error(r, fail.status, fail.code, "%s", fail.message);
    return -1;
}

const char *api_param(api_req *r, const api_form *f, const char *name)
{
    const char *v = f ? api_form_get(f, name) : NULL;
    return v ? v : api_query(r, name);
}

typedef struct query_list {
    const char *name;
    const char **out;
    size_t max, n;
} query_list;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    query_list *q = cls;
    if (value && strcmp(key, q->name) == 0 && q->n < q->max) q->out[q->n++] = value;
    return MHD_YES;
}

size_t api_param_list(api_req *r, const api_form *f, const char *name, const char **out,
                      size_t max)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->n && n < max; i++)
        if (strcmp(f->items[i].key, name) == 0) out[n++] = f->items[i].value;
    if (n) return n;
    query_list q = {.name = name, .out = out, .max = max};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect, &q);
    return q.n;
}
