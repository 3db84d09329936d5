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
 * Home entries are complete only above the user's home floor (internal.h):
 * trims at the cap and follow backfills stop there. Once a delete or an
 * unfollow thins the entries, the newest timeline_cap posts reach below
 * it, so the merge stops at the floor and continues from the profiles of
 * the user and everyone the user follows -- rarely, and only for deep pages.
 *
 * Cursors are "<last post id>~<depth>": the page continues strictly below
 * that id, so posts arriving meanwhile (always newer) never shift a page;
 * depth counts entries already returned and enforces the cap. */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct source {
    stg_iter *it; /* NULL for a list source */
    char *list; /* a list source: post ids, each NUL-terminated, newest first */
    size_t listlen, pos;
    bool live; /* id holds the current post; false when exhausted */
    bool home; /* home entries (forward, newest first) carry the author;
                * profile entries (backward) are the owner's own */
    char id[STG_ID_MAX + 1];
    size_t idlen;
    uint64_t delivered;
    char author[STG_ID_MAX + 1];
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
    s->live = false;
    if (!s->it) {
        if (s->pos >= s->listlen) return;
        s->idlen = strlen(s->list + s->pos);
        memcpy(s->id, s->list + s->pos, s->idlen + 1);
        s->pos += s->idlen + 1;
        s->live = true;
        return;
    }
    while (stg_iter_next(s->it, &k, &kl, &v, &vl)) {
        if (s->home) {
            int n = feed_home_key_id(k, kl, s->id);
            if (n < 0 || vl < 8 || vl - 8 > STG_ID_MAX) continue;
            s->idlen = (size_t)n;
            s->delivered = stg_key_get_u64(v);
            memcpy(s->author, v + 8, vl - 8);
            s->author[vl - 8] = '\0';
        } else {
            if (stg_key_split(k, kl, &id, &nid) < 0 || nid == 0 || nid > STG_ID_MAX) continue;
            memcpy(s->id, id, nid);
            s->id[nid] = '\0';
            s->idlen = nid;
        }
        s->live = true;
        return;
    }
}

static int id_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t m = na < nb ? na : nb;
    int c = memcmp(a, b, m);
    return c ? c : (na > nb) - (na < nb);
}

/* A bound on the ids a source yields: those below id[0..len) -- len may
 * count id's NUL, which makes the bound inclusive -- or all if id is NULL. */
typedef struct bound {
    const char *id;
    size_t len;
} bound;

/* Opens an iterator over owner's entries in cf (ids below the bound),
 * newest first: forward over home keys, backward over profile keys. */
static bool source_open(feed *f, source *s, stg_cf cf, const char *owner, bound ub)
{
    char lo[HOME_KEYCAP + 1], hi[HOME_KEYCAP + 1];
    int ll, hl;
    memset(s, 0, sizeof *s);
    s->home = cf == STG_CF_HOME;
    if (s->home) {
        /* Inverted ids: ids below the bound are keys above the bound's key. */
        char prefix[STG_ID_MAX + 2];
        int pl = stg_key_join(prefix, sizeof prefix, owner, strlen(owner), NULL, 0);
        hl = pl < 0 ? -1 : stg_key_successor(prefix, (size_t)pl, hi);
        if (ub.id) {
            bool inclusive = ub.len > strlen(ub.id);
            ll = feed_home_key(lo, sizeof lo - 1, owner, ub.id, strlen(ub.id));
            if (ll > 0 && !inclusive) lo[ll++] = '\0'; /* just past the bound's own key */
        } else {
            ll = stg_key_join(lo, sizeof lo, owner, strlen(owner), NULL, 0);
        }
    } else {
        ll = stg_key_join(lo, sizeof lo, owner, strlen(owner), NULL, 0);
        hl = ub.id ? stg_key_join(hi, sizeof hi, owner, strlen(owner), ub.id, ub.len)
                   : stg_key_successor(lo, (size_t)ll, hi);
        snprintf(s->author, sizeof s->author, "%s", owner);
    }
    if (ll < 0 || hl < 0) return false;
    s->it = stg_iter_range(f->db, cf, lo, (size_t)ll, hi, (size_t)hl, !s->home);
    source_advance(s);
    return true;
}

/* The newest timeline_cap post ids of author (its profile index), kept in
 * f->heads: a large account's posts merge into many timelines, and one of
 * its posts can only be on a capped timeline if all its newer ones are.
 * Returns the ids, each NUL-terminated, newest first (free()); NULL on a
 * read error. */
static char *author_head(feed *f, const char *author, size_t *len)
{
    char *list;
    uint64_t gen;
    size_t an = strlen(author);
    if (df_cache_get(f->heads, author, an, &list, len, &gen)) return list;
    char prefix[STG_ID_MAX + 2];
    int pl = stg_key_join(prefix, sizeof prefix, author, an, NULL, 0);
    if (pl < 0) return NULL;
    size_t cap = 1024, n = 0;
    list = xmalloc(cap);
    stg_iter *it = stg_iter_prefix(f->db, STG_CF_PROFILE, prefix, (size_t)pl, true);
    const char *k, *id;
    size_t kl, nid;
    int count = 0;
    while (count < f->cfg.timeline_cap && stg_iter_next(it, &k, &kl, NULL, NULL)) {
        if (stg_key_split(k, kl, &id, &nid) < 0 || nid == 0 || nid > STG_ID_MAX) continue;
        feed_pack(&list, &n, &cap, id, nid);
        count++;
    }
    int rc = stg_iter_close(it);
    if (rc < 0) {
        free(list);
        return NULL;
    }
    df_cache_put(f->heads, author, an, list, n, gen);
    *len = n;
    return list;
}

/* A source over author's cached head, ids below the bound; false if the
 * head could not be read. */
static bool source_open_head(feed *f, source *s, const char *author, bound ub)
{
    memset(s, 0, sizeof *s);
    s->list = author_head(f, author, &s->listlen);
    if (!s->list) return false;
    snprintf(s->author, sizeof s->author, "%s", author);
    if (ub.id) {
        bool inclusive = ub.len > strlen(ub.id);
        while (s->pos < s->listlen) {
            int c = strcmp(s->list + s->pos, ub.id);
            if (c < 0 || (c == 0 && inclusive)) break;
            s->pos += strlen(s->list + s->pos) + 1;
        }
    }
    source_advance(s);
    return true;
}

typedef struct sources {
    source *v;
    size_t n, cap;
} sources;

static source *sources_slot(sources *ss)
{
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? 2 * ss->cap : 8;
        ss->v = xrealloc(ss->v, ss->cap * sizeof *ss->v);
    }
    return &ss->v[ss->n];
}

static void sources_add(feed *f, sources *ss, stg_cf cf, const char *owner, bound ub)
{
    if (source_open(f, sources_slot(ss), cf, owner, ub)) ss->n++;
}

static void sources_add_head(feed *f, sources *ss, const char *author, bound ub)
{
    if (source_open_head(f, sources_slot(ss), author, ub)) ss->n++;
}

static void sources_free(sources *ss)
{
    for (size_t i = 0; i < ss->n; i++) {
        stg_iter_free(ss->v[i].it);
        free(ss->v[i].list);
    }
    free(ss->v);
    ss->v = NULL;
    ss->n = ss->cap = 0;
}

/* The next candidate of the merge, skipping duplicates; false at the end. */
static bool merge_next(source *src, size_t n, cand *out, char *last, size_t *lastlen)
{
    for (;;) {
        source *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (src[i].live &&
                (!best || id_cmp(src[i].id, src[i].idlen, best->id, best->idlen) > 0))
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

/* Whom the viewer follows, for filtering home entries: the first
 * FOLLOW_SCAN live edges of one prefix scan (one seek and short steps,
 * cheaper than a point read per author), kept in f->follows, then point
 * reads, remembered for the page, for authors past the scanned part. */
#define FOLLOW_SCAN 256

typedef struct follow_set {
    const char *viewer;
    bool loaded, complete; /* complete: the scan saw every edge */
    char *packed; /* the cached form: 'c' (complete) or 'p', the last
                   * followee scanned, then the live ones, each NUL-terminated */
    const char **ids; /* live followees, in key order, into packed */
    size_t n;
    const char *last; /* the last followee scanned, when not complete */
    char (*extra)[STG_ID_MAX + 1]; /* authors past last, and their answers */
    bool *extra_ok;
    size_t nextra, extra_cap;
} follow_set;

/* Scans viewer's edges into the packed form; false on a read error. */
static bool follow_scan(feed *f, const char *viewer, char **out, size_t *outlen)
{
    char prefix[STG_ID_MAX + 2], last[STG_ID_MAX + 1] = "";
    int pl = stg_key_join(prefix, sizeof prefix, viewer, strlen(viewer), NULL, 0);
    if (pl < 0) return false;
    size_t cap = 512, len = 0;
    char *ids = xmalloc(cap);
    bool complete = true;
    stg_iter *it = stg_iter_prefix(f->db, STG_CF_FOLLOWS, prefix, (size_t)pl, false);
    const char *k, *v, *followee;
    size_t kl, vl, nf, seen = 0;
    while (stg_iter_next(it, &k, &kl, &v, &vl)) {
        if (seen == FOLLOW_SCAN) {
            complete = false;
            break;
        }
        stg_record rec;
        if (stg_key_split(k, kl, &followee, &nf) < 0 || nf > STG_ID_MAX) continue;
        memcpy(last, followee, nf);
        last[nf] = '\0';
        seen++;
        if (stg_value_decode(v, vl, &rec) == 0 && !rec.tombstone)
            feed_pack(&ids, &len, &cap, last, nf);
    }
    int rc = stg_iter_close(it);
    if (rc < 0) {
        free(ids);
        return false;
    }
    size_t hcap = len + STG_ID_MAX + 4, hlen = 0;
    char *p = xmalloc(hcap);
    feed_pack(&p, &hlen, &hcap, complete ? "c" : "p", 1);
    feed_pack(&p, &hlen, &hcap, last, strlen(last));
    memcpy(p + hlen, ids, len);
    free(ids);
    *out = p;
    *outlen = hlen + len;
    return true;
}

static void follow_set_load(feed *f, follow_set *fs)
{
    const char *viewer = fs->viewer;
    size_t vn = strlen(viewer), len;
    uint64_t gen;
    fs->loaded = true;
    if (!df_cache_get(f->follows, viewer, vn, &fs->packed, &len, &gen)) {
        if (!follow_scan(f, viewer, &fs->packed, &len)) {
            fs->complete = false; /* point reads for everyone */
            fs->last = "";
            return;
        }
        df_cache_put(f->follows, viewer, vn, fs->packed, len, gen);
    }
    char *p = fs->packed, *end = p + len;
    fs->complete = p[0] == 'c';
    p += 2;
    fs->last = p;
    p += strlen(p) + 1;
    size_t cap = 0;
    for (; p < end; p += strlen(p) + 1) {
        if (fs->n == cap) {
            cap = cap ? 2 * cap : 32;
            fs->ids = xrealloc(fs->ids, cap * sizeof *fs->ids);
        }
        fs->ids[fs->n++] = p;
    }
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, *(const char *const *)b); }

/* True if fs's viewer is author or follows author now. */
static bool visible(feed *f, follow_set *fs, const char *author)
{
    const char *viewer = fs->viewer;
    if (strcmp(author, viewer) == 0) return true;
    if (!fs->loaded) follow_set_load(f, fs);
    if (fs->n && bsearch(author, fs->ids, fs->n, sizeof *fs->ids, cmp_id)) return true;
    if (fs->complete || strcmp(author, fs->last) <= 0) return false;
    for (size_t i = 0; i < fs->nextra; i++)
        if (strcmp(fs->extra[i], author) == 0) return fs->extra_ok[i];
    bool ok = feed_follows(f->db, viewer, author);
    if (fs->nextra == fs->extra_cap) {
        fs->extra_cap = fs->extra_cap ? fs->extra_cap * 2 : 16;
        fs->extra = xrealloc(fs->extra, fs->extra_cap * sizeof *fs->extra);
        fs->extra_ok = xrealloc(fs->extra_ok, fs->extra_cap * sizeof *fs->extra_ok);
    }
    strcpy(fs->extra[fs->nextra], author);
    fs->extra_ok[fs->nextra++] = ok;
    return ok;
}

static void follow_set_free(follow_set *fs)
{
    free(fs->packed);
    free(fs->ids);
    free(fs->extra);
    free(fs->extra_ok);
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

/* Runs the merge over src, appending to out (room for want items) until
 * it holds want live posts whose authors fs's viewer sees (fs NULL: every
 * author), or the merge reaches ids at or below stop (NULL: no stop). */
static int collect(feed *f, source *src, size_t nsrc, follow_set *fs, size_t want, const char *stop,
                   feed_page *out)
{
    char last[STG_ID_MAX + 1];
    size_t lastlen = 0;
    cand chunk[32];
    int rc = 0;
    bool more = true;
    while (out->n < want && more) {
        size_t nc = 0, room = want - out->n;
        if (room > 32) room = 32;
        while (nc < room && (more = merge_next(src, nsrc, &chunk[nc], last, &lastlen))) {
            if (stop && strcmp(chunk[nc].id, stop) <= 0) {
                more = false;
                break;
            }
            if (!fs || visible(f, fs, chunk[nc].author)) nc++;
        }
        if (nc == 0) break;
        /* Cached posts first; the rest in one batched read, then cached. */
        const char *keys[32];
        size_t klens[32], vlens[32], mvlens[32], miss[32], nmiss = 0;
        char *vals[32], *mvals[32];
        uint64_t gens[32];
        for (size_t i = 0; i < nc; i++) {
            size_t n = strlen(chunk[i].id);
            if (df_cache_get(f->posts, chunk[i].id, n, &vals[i], &vlens[i], &gens[i])) continue;
            vals[i] = NULL;
            keys[nmiss] = chunk[i].id;
            klens[nmiss] = n;
            miss[nmiss++] = i;
        }
        rc = stg_multi_get(f->db, STG_CF_POSTS, nmiss, keys, klens, mvals, mvlens);
        for (size_t m = 0; m < nmiss; m++) {
            size_t i = miss[m];
            vals[i] = mvals[m];
            vlens[i] = mvlens[m];
            stg_record probe;
            if (vals[i] && stg_value_decode(vals[i], vlens[i], &probe) == 0 && !probe.tombstone)
                df_cache_put(f->posts, keys[m], klens[m], vals[i], vlens[i], gens[i]);
        }
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

/* Below a home floor the home entries may be incomplete: the user's own
 * profile and those of everyone the user follows give the full set. They
 * are merged cfg.merge_group profiles at a time, each group's newest
 * `want` ids folded into `top`, so a user who follows many accounts holds
 * that many iterators at most, however many followees there are. */

typedef struct top {
    char (*ids)[STG_ID_MAX + 1]; /* newest first, distinct */
    size_t n, want;
} top;

static void top_add(top *t, const char *id)
{
    size_t i = t->n;
    while (i > 0 && strcmp(t->ids[i - 1], id) < 0) i--;
    if ((i > 0 && strcmp(t->ids[i - 1], id) == 0) || i == t->want) return;
    if (t->n == t->want) t->n--; /* the oldest makes room */
    memmove(t->ids[i + 1], t->ids[i], (t->n - i) * sizeof t->ids[0]);
    snprintf(t->ids[i], sizeof t->ids[i], "%s", id);
    t->n++;
}

/* Folds the newest ids of the group's sources into t, then closes them. */
static void top_drain(top *t, sources *ss)
{
    char last[STG_ID_MAX + 1];
    size_t lastlen = 0;
    cand c;
    for (size_t taken = 0; taken < t->want && merge_next(ss->v, ss->n, &c, last, &lastlen);
         taken++)
        top_add(t, c.id);
    sources_free(ss);
}

static void top_profile(feed *f, top *t, sources *ss, const char *owner, bound ub)
{
    sources_add(f, ss, STG_CF_PROFILE, owner, ub);
    if (ss->n >= (size_t)f->cfg.merge_group) top_drain(t, ss);
}

static void followee_top(feed *f, follow_set *fs, bound ub, top *t)
{
    sources ss = {0};
    top_profile(f, t, &ss, fs->viewer, ub);
    if (!fs->loaded) follow_set_load(f, fs);
    for (size_t i = 0; i < fs->n; i++) top_profile(f, t, &ss, fs->ids[i], ub);
    if (!fs->complete) {
        /* Followees past the scanned part. */
        char prefix[STG_ID_MAX + 2], lo[2 * STG_ID_MAX + 3], hi[STG_ID_MAX + 2];
        int pl = stg_key_join(prefix, sizeof prefix, fs->viewer, strlen(fs->viewer), NULL, 0);
        int ll = stg_key_join(lo, sizeof lo, fs->viewer, strlen(fs->viewer), fs->last,
                              fs->last[0] ? strlen(fs->last) + 1 : 0);
        int hl = pl < 0 ? -1 : stg_key_successor(prefix, (size_t)pl, hi);
        stg_iter *it = ll < 0 || hl < 0 ? NULL
                                        : stg_iter_range(f->db, STG_CF_FOLLOWS, lo, (size_t)ll, hi,
                                                         (size_t)hl, false);
        const char *k, *v, *followee;
        size_t kl, vl, nf;
        while (it && stg_iter_next(it, &k, &kl, &v, &vl)) {
            stg_record rec;
            if (stg_key_split(k, kl, &followee, &nf) < 0 || nf > STG_ID_MAX ||
                stg_value_decode(v, vl, &rec) < 0 || rec.tombstone)
                continue;
            char name[STG_ID_MAX + 1];
            memcpy(name, followee, nf);
            name[nf] = '\0';
            top_profile(f, t, &ss, name, ub);
        }
        stg_iter_free(it);
    }
    top_drain(t, &ss);
}

/* Fills out up to want items from below the floor: the newest ids of
 * followee_top, read as one list source. */
static int collect_below_floor(feed *f, follow_set *fs, bound ub, size_t want, feed_page *out)
{
    top t = {.ids = xmalloc((want - out->n) * sizeof *t.ids), .want = want - out->n};
    followee_top(f, fs, ub, &t);
    source s = {0};
    s.list = xmalloc(t.n * (STG_ID_MAX + 1) + 1);
    for (size_t i = 0; i < t.n; i++) {
        size_t n = strlen(t.ids[i]) + 1;
        memcpy(s.list + s.listlen, t.ids[i], n);
        s.listlen += n;
    }
    free(t.ids);
    source_advance(&s);
    int rc = collect(f, &s, 1, NULL, want, NULL, out);
    free(s.list);
    return rc;
}

int feed_home(feed *f, const char *user, const char *cursor, int limit, feed_page *out)
{
    memset(out, 0, sizeof *out);
    char before[STG_ID_MAX + 1], floor_id[STG_ID_MAX + 1];
    long depth;
    if (feed_parse_cursor(cursor, before, &depth) < 0) return DF_EINVAL;
    long left = f->cfg.timeline_cap - depth;
    size_t want = left <= 0 ? 0 : (size_t)(left < limit ? left : limit);
    out->items = xcalloc(want ? want : 1, sizeof *out->items);
    if (want == 0) return 0;
    bool has_floor = feed_home_floor(f, user, floor_id);
    follow_set fs = {.viewer = user};

    /* Above the floor: home entries, and the large accounts the user
     * follows merged from their profiles. */
    sources ss = {0};
    bound ub = {before[0] ? before : NULL, strlen(before)};
    if (!has_floor || !ub.id || strcmp(ub.id, floor_id) > 0) {
        sources_add(f, &ss, STG_CF_HOME, user, ub);
        pthread_rwlock_rdlock(&f->large_mu);
        size_t nlarge = f->nlarge;
        char(*large)[STG_ID_MAX + 1] = xmalloc((nlarge ? nlarge : 1) * sizeof *large);
        for (size_t i = 0; i < nlarge; i++) snprintf(large[i], sizeof large[i], "%s", f->large[i]);
        pthread_rwlock_unlock(&f->large_mu);
        for (size_t i = 0; i < nlarge; i++)
            if (strcmp(large[i], user) != 0 && visible(f, &fs, large[i]))
                sources_add_head(f, &ss, large[i], ub);
        free(large);
    }
    int rc = collect(f, ss.v, ss.n, &fs, want, has_floor ? floor_id : NULL, out);
    sources_free(&ss);

    /* At or below the floor: the profiles of the user and every followee. */
    if (rc == 0 && has_floor && out->n < want) {
        if (!ub.id || strcmp(ub.id, floor_id) > 0) ub = (bound){floor_id, strlen(floor_id) + 1};
        rc = collect_below_floor(f, &fs, ub, want, out);
    }
    follow_set_free(&fs);
    if (rc == 0) set_next(out, want, depth, f->cfg.timeline_cap);
    return rc;
}

int feed_profile(feed *f, const char *author, const char *cursor, int limit, feed_page *out)
{
    memset(out, 0, sizeof *out);
    char before[STG_ID_MAX + 1];
    long depth;
    if (feed_parse_cursor(cursor, before, &depth) < 0) return DF_EINVAL;
    out->items = xcalloc((size_t)limit, sizeof *out->items);
    source src;
    bound ub = {before[0] ? before : NULL, strlen(before)};
    if (!source_open(f, &src, STG_CF_PROFILE, author, ub)) return 0;
    int rc = collect(f, &src, 1, NULL, (size_t)limit, NULL, out);
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
