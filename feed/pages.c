/* pages.c -- rendered home timeline pages, kept in memory.
 *
 * DESIGN: a timeline page is read again and again (the first one most)
 * before anything on it changes. The API renders a page once and keeps its
 * bytes here (f->pages, a df_cache keyed by user, cursor and limit). A kept
 * page records two versions from before it was read, and is served only
 * while both still hold:
 *   - the user's page version (f->page_ver, a slot per user hash), bumped
 *     after every committed change to the user's home entries (deliveries,
 *     removals, trims, backfills: workers.c) and after a follow or unfollow
 *     by the user (the feed's commit event: the follow filter changes at once);
 *   - f->epoch, bumped by what may change pages of many users at once: a
 *     post or delete by a large account (merged at read time into the pages
 *     of its followers), any delete (a page shows only live posts), an
 *     account becoming large. These are rare next to deliveries.
 * Both are read before the page is read from RocksDB and bumped after a
 * change commits, so a page read before a change is never served after it. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value: u64 user page version | u64 epoch | body. The versions lead, on
 * the cache line of the entry's header and key, so checking them does not
 * fetch the end of a page of several kilobytes. */
#define HEAD 16

static int page_key(char *buf, size_t cap, const char *user, const char *cursor, int limit)
{
    int n = snprintf(buf, cap, "%s%c%s%c%d", user, 0, cursor ? cursor : "", 0, limit);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

bool feed_home_cached(feed *f, const char *user, const char *cursor, int limit, const char **body,
                      size_t *len, df_cache_ref **ref, feed_stamp *stamp)
{
    stamp->ver = atomic_load(&f->page_ver[feed_user_slot(user)]);
    stamp->epoch = atomic_load(&f->epoch);
    char key[2 * STG_ID_MAX + 64];
    const char *v;
    size_t vl;
    int kl = page_key(key, sizeof key, user, cursor, limit);
    if (!f->pages || kl < 0 || !df_cache_hold(f->pages, key, (size_t)kl, &v, &vl, &stamp->gen, ref))
        return false;
    if (vl < HEAD || stg_key_get_u64(v) != stamp->ver || stg_key_get_u64(v + 8) != stamp->epoch) {
        df_cache_release(*ref);
        *ref = NULL;
        atomic_fetch_add(&f->pages_outdated, 1);
        return false;
    }
    *len = vl - HEAD;
    *body = v + HEAD;
    return true;
}

void feed_home_keep(feed *f, const char *user, const char *cursor, int limit,
                    const feed_stamp *stamp, const char *body, size_t len)
{
    char key[2 * STG_ID_MAX + 64];
    int kl = page_key(key, sizeof key, user, cursor, limit);
    if (!f->pages || kl < 0) return;
    char *v = xmalloc(HEAD + len);
    stg_key_u64(v, stamp->ver);
    stg_key_u64(v + 8, stamp->epoch);
    memcpy(v + HEAD, body, len);
    df_cache_put(f->pages, key, (size_t)kl, v, HEAD + len, stamp->gen);
    free(v);
}

void feed_forget_page(feed *f, const char *user)
{
    atomic_fetch_add(&f->page_ver[feed_user_slot(user)], 1);
}
