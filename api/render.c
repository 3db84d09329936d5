/* render.c -- JSON out: growable buffers, stored records as JSON, pages.
 *
 * Stored payloads are already compact JSON objects, so hot lists (timelines)
 * are written by splicing stored bytes instead of parsing and re-encoding. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_buf_append(api_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void api_buf_printf(api_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        api_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    api_buf_append(b, big, (size_t)n);
    free(big);
}

/* Length of the strict UTF-8 character at s[0..n) (no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 if the bytes there are not one. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (s[0] == 0xe0 && s[1] < 0xa0) return 0; /* overlong */
    if (s[0] == 0xed && s[1] > 0x9f) return 0; /* surrogate */
    if (s[0] == 0xf0 && s[1] < 0x90) return 0; /* overlong */
    if (s[0] == 0xf4 && s[1] > 0x8f) return 0; /* past U+10FFFF */
    return len;
}

bool api_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0, c; i < n; i += c)
        if (u[i] == 0 || (c = utf8_char(u + i, n - i)) == 0) return false;
    return true;
}

/* Whether s[0..n) is the start of a character that n cut short. */
static bool truncated_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len <= n) return false;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return false;
    return true;
}

size_t api_utf8_cut(const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t at = 0;
    while (at < n) {
        size_t c = utf8_char(u + at, n - at);
        if (c == 0 && truncated_char(u + at, n - at)) break; /* cut inside a character */
        if (c == 0) c = 1; /* an invalid byte stands alone */
        if (at + c > max) break;
        at += c;
    }
    return at;
}

const char *api_excerpt(char out[API_EXCERPT_MAX + 4], const char *s)
{
    size_t n = strlen(s), cut = api_utf8_cut(s, n, API_EXCERPT_MAX);
    memcpy(out, s, cut);
    if (cut < n) memcpy(out + cut, "\xe2\x80\xa6", 3); /* ... */
    out[cut + (cut < n ? 3 : 0)] = '\0';
    return out;
}

void api_buf_json_text(api_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    api_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes since the last escape, copied in one go */
    for (size_t i = 0; i < n;) {
        size_t c = utf8_char(u + i, n - i);
        char esc[8];
        size_t elen = 0;
        if (c == 0) {
            memcpy(esc, "\\ufffd", 6); /* an invalid byte: U+FFFD */
            elen = 6;
            c = 1;
        } else if (u[i] == '"' || u[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            elen = 2;
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[u[i] >> 4];
            esc[5] = hex[u[i] & 15];
            elen = 6;
        }
        if (elen) {
            api_buf_append(b, s + i - run, run);
            api_buf_append(b, esc, elen);
            run = 0;
        } else {
            run += c;
        }
        i += c;
    }
    api_buf_append(b, s + n - run, run);
    api_buf_append(b, "\"", 1);
}

void api_buf_json_string(api_buf *b, const char *s) { api_buf_json_text(b, s, strlen(s)); }

json_t *api_payload_json(const stg_record *rec)
{
    if (!rec->paylen) return NULL;
    json_t *j = json_loadb(rec->payload, rec->paylen, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void api_post_item(api_buf *b, const stg_record *post, uint64_t delivered_ms)
{
    if (post->paylen < 2 || post->payload[post->paylen - 1] != '}') {
        api_buf_append(b, "null", 4);
        return;
    }
    char ts[32];
    df_format_time(delivered_ms, ts);
    api_buf_append(b, post->payload, post->paylen - 1);
    api_buf_printf(b, ",\"delivered_at\":\"%s\"}", ts);
}

void api_render_page(api_buf *b, const feed_page *page)
{
    api_buf_append(b, "{\"items\":[", 10);
    for (size_t i = 0; i < page->n; i++) {
        if (i) api_buf_append(b, ",", 1);
        api_post_item(b, &page->items[i].post, page->items[i].delivered_ms);
    }
    api_buf_append(b, "],\"next\":", 9);
    if (page->next[0])
        api_buf_json_string(b, page->next);
    else
        api_buf_append(b, "null", 4);
    api_buf_append(b, "}", 1);
}

void api_reply_page(api_req *r, const feed_page *page)
{
    api_buf b = {0};
    api_render_page(&b, page);
    api_reply_buf(r, 200, &b, "application/json");
}

void api_version_names(const stg_version *v, char id[STG_ID_MAX + 1], char created[32])
{
    stg_make_id(id, v);
    df_format_time(repl_hlc_ms(v->hlc), created);
}

int api_set_payload(stg_record *rec, json_t *j, char **out)
{
    *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!*out) return DF_EINVAL;
    rec->payload = *out;
    rec->paylen = strlen(*out);
    return 0;
}
