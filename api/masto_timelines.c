/* masto_timelines.c -- GET /api/v1/timelines/home and
 * /api/v1/accounts/{id}/statuses: pages of Statuses, newest first, read
 * from the feed as /v1/timeline and /v1/users/{id}/posts are.
 *
 * Paging is Mastodon's: max_id (older than), since_id (the newest ones
 * newer than), min_id (the ones just newer than: the next page up), and a
 * Link header with both directions. The feed reads downwards only, so a
 * page above an id reads down from the top (or from max_id) until it
 * reaches that id; the feed's timeline cap bounds how far. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#define SCAN_PAGE 100 /* posts read at a time when paging upwards */

typedef int (*page_reader)(feed *f, const char *who, const char *cursor, int limit,
                           feed_page *out);

/* A status id parameter as the record id it names ("" when absent). */
static int id_query_or_400(api_req *r, const char *name, char out[STG_ID_MAX + 1])
{
    const char *s = api_query(r, name);
    out[0] = '\0';
    if (!s || !*s || api_masto_parse_id(s, out) == 0) return 0;
    api_error(r, 400, "invalid_id", "%s is not a status id", name);
    return -1;
}

/* The record id of a page item: its version. */
static void item_id(const feed_item *it, char id[STG_ID_MAX + 1]) { stg_make_id(id, &it->post.ver); }

typedef struct collected {
    feed_page *pages;
    size_t npages;
    const feed_item **items;
    size_t n, cap;
} collected;

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->npages; i++) feed_page_free(&c->pages[i]);
    free(c->pages);
    free(c->items);
}

/* Reads down from max_id (or the top) every item above floor ("" for
 * none: just limit items). */
static int collect(api_req *r, page_reader read, const char *who, const char *max_id,
                   const char *floor, int limit, collected *c)
{
    char cursor[STG_ID_MAX + 32];
    if (max_id[0]) snprintf(cursor, sizeof cursor, "%s~0", max_id);
    bool has_cursor = max_id[0] != '\0';
    for (;;) {
        c->pages = xrealloc(c->pages, (c->npages + 1) * sizeof *c->pages);
        feed_page *pg = &c->pages[c->npages];
        int want = floor[0] ? SCAN_PAGE : limit;
        int rc = read(r->ctx->fd, who, has_cursor ? cursor : NULL, want, pg);
        if (rc < 0) return rc;
        c->npages++;
        bool below = false;
        for (size_t i = 0; i < pg->n && !below; i++) {
            char id[STG_ID_MAX + 1];
            item_id(&pg->items[i], id);
            if (floor[0] && strcmp(id, floor) <= 0) {
                below = true;
                break;
            }
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 64;
                c->items = xrealloc(c->items, c->cap * sizeof *c->items);
            }
            c->items[c->n++] = &pg->items[i];
        }
        if (!floor[0] || below || !pg->next[0]) return 0;
        snprintf(cursor, sizeof cursor, "%s", pg->next);
        has_cursor = true;
    }
}

static void masto_page(api_req *r, page_reader read, const char *who, const char *path)
{
    int limit;
    char max_id[STG_ID_MAX + 1], since_id[STG_ID_MAX + 1], min_id[STG_ID_MAX + 1];
    if (api_masto_limit_or_400(r, 20, 40, &limit) < 0 || id_query_or_400(r, "max_id", max_id) < 0 ||
        id_query_or_400(r, "since_id", since_id) < 0 || id_query_or_400(r, "min_id", min_id) < 0)
        return;
    const char *floor = min_id[0] ? min_id : since_id;
    collected c = {0};
    int rc = collect(r, read, who, max_id, floor, limit, &c);
    if (rc < 0) {
        collected_free(&c);
        if (rc == DF_EINVAL)
            api_error(r, 400, "invalid_id", "max_id is not a status id");
        else
            api_error_df(r, rc, "timeline");
        return;
    }
    /* min_id: the limit items just above it; otherwise the newest ones. */
    size_t from = min_id[0] && c.n > (size_t)limit ? c.n - (size_t)limit : 0;
    size_t to = from + (size_t)limit < c.n ? from + (size_t)limit : c.n;
    json_t *list = json_array();
    api_masto_accounts seen = {0};
    for (size_t i = from; i < to; i++) {
        json_t *s = api_masto_status(r->ctx, &c.items[i]->post, &seen);
        if (s) json_array_append_new(list, s);
    }
    api_masto_accounts_free(&seen);
    api_buf link = {0};
    if (to > from) {
        char first[STG_ID_MAX + 1], last[STG_ID_MAX + 1];
        char fm[API_MASTO_ID_LEN + 1], lm[API_MASTO_ID_LEN + 1];
        item_id(c.items[from], first);
        item_id(c.items[to - 1], last);
        api_masto_id_of(first, strlen(first), fm);
        api_masto_id_of(last, strlen(last), lm);
        api_masto_link(r, &link, path, limit, lm, fm);
    }
    collected_free(&c);
    api_reply_json_with(r, 200, list, link.p ? "Link" : NULL, link.p);
    free(link.p);
}

void api_masto_home(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_READ) < 0) return;
    masto_page(r, feed_home, r->user, "/api/v1/timelines/home");
}

void api_masto_account_statuses(api_req *r)
{
    const char *id = r->params[0];
    if (!stg_valid_user_id(id, strlen(id)) || api_known_user_or_404(r, id) < 0) {
        if (!r->answered) api_error(r, 404, "not_found", "Record not found");
        return;
    }
    char path[STG_ID_MAX + 40];
    snprintf(path, sizeof path, "/api/v1/accounts/%s/statuses", id);
    masto_page(r, feed_profile, id, path);
}
