/* timeline.c -- home and profile timeline reads, with pagination.
 *
 * DESIGN: a home timeline is a k-way merge, newest post id first, of the
 * user's home entries (fanned out on write) and the profile indexes of the
 * large accounts the user follows (merged on read). Post ids sort by
 * version, so every region holding the same posts shows the same order.
 * Entries are filtered on read: the post must be live and its author the
 * user or someone the user follows now -- so a delete or an unfollow hides
 * entries at once, before its cleanup job removes them.
 *
 * Cursors are "<last post id>~<depth>": the page continues strictly below
 * that id, so posts arriving meanwhile (always newer) never shift a page;
 * depth counts entries already returned and enforces the cap. */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCES 65
#define KEYCAP (2 * STG_ID_MAX + 2)

typedef struct source {
    stg_iter *it;
    const char *id; /* current post id, or NULL when exhausted */
    size_t idlen;
    uint64_t delivered;
    char author[STG_ID_MAX + 1];
    bool home; /* home entries carry the author; profile entries are its own */
} source;

typedef struct cand {
    char id[STG_ID_MAX + 1];
    char author[STG_ID_MAX + 1];
    uint64_t delivered;
} cand;

static void source_advance(source *s)
{
    const char *k, *v, *id;
    size_t kl, vl, nid;
    s->id = NULL;
    while (stg_iter_next(s->it, &k, &kl, &v, &vl)) {
        if (stg_key_split(k, kl, &id, &nid) < 0 || nid > STG_ID_MAX) continue;
        s->id = id;
        s->idlen = nid;
        if (s->home) {
            if (vl < 8 || vl - 8 > STG_ID_MAX) continue;
            s->delivered = stg_key_get_u64(v);
            memcpy(s->author, v + 8, vl - 8);
            s->author[vl - 8] = '\0';
        }
        return;
    }
}

static int id_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t m = na < nb ? na : nb;
    int c = memcmp(a, b, m);
    return c ? c : (na > nb) - (na < nb);
}

/* Opens a reverse iterator over owner \0 (ids below before, if given). */
static bool source_open(feed *f, source *s, stg_cf cf, const char *owner, const char *before)
{
    char lo[KEYCAP], hi[KEYCAP];
    int ll = stg_key_join(lo, sizeof lo, owner, strlen(owner), NULL, 0);
    int hl = before ? stg_key_join(hi, sizeof hi, owner, strlen(owner), before, strlen(before))
                    : stg_key_successor(lo, (size_t)ll, hi);
    if (ll < 0 || hl < 0) return false;
    memset(s, 0, sizeof *s);
    s->it = stg_iter_range(f->db, cf, lo, (size_t)ll, hi, (size_t)hl, true);
    s->home = cf == STG_CF_HOME;
    if (!s->home) snprintf(s->author, sizeof s->author, "%s", owner);
    source_advance(s);
    return true;
}

/* The next candidate of the merge, skipping duplicates; false at the end. */
static bool merge_next(source *src, size_t n, cand *out, char *last, size_t *lastlen)
{
    for (;;) {
        source *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (src[i].id && (!best || id_cmp(src[i].id, src[i].idlen, best->id, best->idlen) > 0))
                best = &src[i];
        if (!best) return false;
        bool dup = *lastlen && id_cmp(best->id, best->idlen, last, *lastlen) == 0;
        if (!dup) {
            memcpy(out->id, best->id, best->idlen);
            out->id[best->idlen] = '\0';
            strcpy(out->author, best->author);
            out->delivered = best->delivered;
            memcpy(last, best->id, best->idlen);
            *lastlen = best->idlen;
        }
        source_advance(best);
        if (!dup) return true;
    }
}

typedef struct author_cache {
    char (*names)[STG_ID_MAX + 1];
    bool *ok;
    size_t n, cap;
} author_cache;

static bool visible(feed *f, author_cache *c, const char *user, const char *author)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->names[i], author) == 0) return c->ok[i];
    bool ok = feed_follows(f->db, user, author);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->names = xrealloc(c->names, c->cap * sizeof *c->names);
        c->ok = xrealloc(c->ok, c->cap * sizeof *c->ok);
    }
    strcpy(c->names[c->n], author);
    c->ok[c->n++] = ok;
    return ok;
}

int feed_parse_cursor(const char *cursor, char id[STG_ID_MAX + 1], long *depth)
{
    *depth = 0;
    id[0] = '\0';
    if (!cursor || !*cursor) return 0;
    const char *tilde = strchr(cursor, '~');
    if (!tilde) return DF_EINVAL;
    size_t n = (size_t)(tilde - cursor);
    if (!stg_valid_id(cursor, n)) return DF_EINVAL;
    char *end;
    long d = strtol(tilde + 1, &end, 10);
    if (end == tilde + 1 || *end || d < 0 || d > 1000000) return DF_EINVAL;
    memcpy(id, cursor, n);
    id[n] = '\0';
    *depth = d;
    return 0;
}

/* Runs the merge over src until want live, visible posts are collected. */
static int collect(feed *f, source *src, size_t nsrc, const char *viewer, size_t want,
                   feed_page *out)
{
    author_cache ac = {0};
    char last[STG_ID_MAX + 1];
    size_t lastlen = 0;
    cand chunk[32];
    out->items = xcalloc(want ? want : 1, sizeof *out->items);
    int rc = 0;
    bool more = true;
    while (out->n < want && more) {
        size_t nc = 0, room = want - out->n + 2;
        if (room > 32) room = 32;
        while (nc < room && (more = merge_next(src, nsrc, &chunk[nc], last, &lastlen)))
            if (!viewer || visible(f, &ac, viewer, chunk[nc].author)) nc++;
        if (nc == 0) break;
        const char *keys[32];
        size_t klens[32], vlens[32];
        char *vals[32];
        for (size_t i = 0; i < nc; i++) {
            keys[i] = chunk[i].id;
            klens[i] = strlen(chunk[i].id);
        }
        rc = stg_multi_get(f->db, STG_CF_POSTS, nc, keys, klens, vals, vlens);
        for (size_t i = 0; i < nc; i++) {
            if (!vals[i]) continue;
            feed_item *it = &out->items[out->n];
            if (out->n >= want || stg_value_decode(vals[i], vlens[i], &it->post) < 0 ||
                it->post.tombstone) {
                free(vals[i]);
                continue;
            }
            it->raw = vals[i];
            it->post.kind = STG_KIND_POST;
            it->post.key = NULL; /* the id is in the payload and the version */
            it->post.keylen = 0;
            it->delivered_ms = chunk[i].delivered ? chunk[i].delivered : it->post.ver.hlc >> 16;
            out->n++;
        }
        if (rc < 0) break;
    }
    free(ac.names);
    free(ac.ok);
    return rc;
}

/* A cursor only when the page is full and the cap still leaves room. */
static void set_next(feed_page *out, size_t want, long depth, long cap)
{
    out->next[0] = '\0';
    if (out->n == 0 || out->n < want || depth + (long)out->n >= cap) return;
    char id[STG_ID_MAX + 1];
    stg_make_id(id, &out->items[out->n - 1].post.ver);
    snprintf(out->next, sizeof out->next, "%s~%ld", id, depth + (long)out->n);
}

int feed_home(feed *f, const char *user, const char *cursor, int limit, feed_page *out)
{
    memset(out, 0, sizeof *out);
    char before[STG_ID_MAX + 1];
    long depth;
    if (feed_parse_cursor(cursor, before, &depth) < 0) return DF_EINVAL;
    long left = f->cfg.timeline_cap - depth;
    size_t want = left <= 0 ? 0 : (size_t)(left < limit ? left : limit);
    source src[MAX_SOURCES];
    size_t nsrc = 0;
    const char *bound = before[0] ? before : NULL;
    if (source_open(f, &src[nsrc], STG_CF_HOME, user, bound)) nsrc++;
    /* Large accounts the user follows are merged from their profiles. */
    pthread_rwlock_rdlock(&f->large_mu);
    size_t nlarge = f->nlarge;
    char(*large)[STG_ID_MAX + 1] = xmalloc((nlarge ? nlarge : 1) * sizeof *large);
    for (size_t i = 0; i < nlarge; i++) snprintf(large[i], sizeof large[i], "%s", f->large[i]);
    pthread_rwlock_unlock(&f->large_mu);
    for (size_t i = 0; i < nlarge && nsrc < MAX_SOURCES; i++)
        if (feed_follows(f->db, user, large[i]) &&
            source_open(f, &src[nsrc], STG_CF_PROFILE, large[i], bound))
            nsrc++;
    free(large);
    int rc = collect(f, src, nsrc, user, want, out);
    for (size_t i = 0; i < nsrc; i++) stg_iter_free(src[i].it);
    if (rc == 0) set_next(out, want, depth, f->cfg.timeline_cap);
    return rc;
}

int feed_profile(feed *f, const char *author, const char *cursor, int limit, feed_page *out)
{
    memset(out, 0, sizeof *out);
    char before[STG_ID_MAX + 1];
    long depth;
    if (feed_parse_cursor(cursor, before, &depth) < 0) return DF_EINVAL;
    source src;
    if (!source_open(f, &src, STG_CF_PROFILE, author, before[0] ? before : NULL)) return 0;
    int rc = collect(f, &src, 1, NULL, (size_t)limit, out);
    stg_iter_free(src.it);
    if (rc == 0) set_next(out, (size_t)limit, depth, LONG_MAX);
    return rc;
}

void feed_page_free(feed_page *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) free(p->items[i].raw);
    free(p->items);
    p->items = NULL;
    p->n = 0;
}
