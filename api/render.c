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

void api_buf_json_string(api_buf *b, const char *s)
{
    json_t *j = json_string(s);
    char *enc = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (enc)
        api_buf_append(b, enc, strlen(enc));
    else
        api_buf_append(b, "null", 4);
    free(enc);
    json_decref(j);
}

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
