/* test_timeline.c -- feed/timeline.c with feed/workers.c behind it: home and
 * profile timelines checked against a simple reference ("the newest cap
 * live posts by the user and the users they follow, by id descending"),
 * with pagination, fan-out workers running, large accounts merged at read
 * time, and again after compaction has swept what trims left below the
 * home floors. Writes go through a real replication engine (repl_write). */
#include "../unit.h"
#include "../../../feed/internal.h" /* the home key format (plain "internal.h" is replication's) */
#include "repl.h"

#include <stdlib.h>
#include <string.h>

/* ---- A region under test ------------------------------------------------------------ */

typedef struct world {
    char *dir;
    stg_db *db;
    feed *fd;
    repl *r;
} world;

/* Opens the region in w->dir (a fresh directory if NULL); start: run the
 * fan-out workers. */
static void world_open_in(world *w, char *dir, const feed_config *fc, bool start)
{
    memset(w, 0, sizeof *w);
    w->dir = dir ? dir : unit_mkdtemp();
    stg_options so = {.sweep[STG_CF_HOME] = feed_home_sweep}; /* as the server opens it */
    ck_assert_int_eq(stg_open(w->dir, &so, &w->db), 0);
    ck_assert_int_eq(feed_open(&w->fd, w->db, fc), 0);
    if (start) ck_assert_int_eq(feed_start(w->fd), 0);
    repl_config cfg = {.region = "paris", .npeers = 1, .peers = {"tokyo"}};
    ck_assert_int_eq(repl_open(&w->r, w->db, w->fd, &cfg), 0);
}

static void world_open(world *w, const feed_config *fc) { world_open_in(w, NULL, fc, true); }

/* Stops everything; returns the directory, which is kept. */
static char *world_stop(world *w)
{
    repl_close(w->r);
    feed_close(w->fd);
    stg_close(w->db);
    return w->dir;
}

static void world_close(world *w) { unit_rmtree(world_stop(w)); }

static void drain(world *w) { ck_assert_msg(feed_drain(w->fd, 20000), "fan-out did not drain"); }

static void user_id(char out[STG_ID_MAX + 1], int i)
{
    snprintf(out, STG_ID_MAX + 1, "u%02d@paris", i);
}

static void create_user(world *w, const char *id)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", id);
    stg_record rec = {.kind = STG_KIND_USER,
                      .key = id,
                      .keylen = strlen(id),
                      .owner = id,
                      .ownerlen = strlen(id),
                      .payload = payload,
                      .paylen = strlen(payload)};
    ck_assert_int_eq(repl_write(w->r, &rec, NULL), 0);
}

static void set_follow(world *w, const char *follower, const char *followee, bool on)
{
    char key[2 * STG_ID_MAX + 2];
    int kl = stg_key_join(key, sizeof key, follower, strlen(follower), followee, strlen(followee));
    stg_record rec = {.kind = STG_KIND_FOLLOW,
                      .key = key,
                      .keylen = (size_t)kl,
                      .tombstone = !on,
                      .owner = follower,
                      .ownerlen = strlen(follower),
                      .payload = "",
                      .paylen = 0};
    ck_assert_int_eq(repl_write(w->r, &rec, NULL), 0);
}

/* Writes a post as the API does: id from a fresh version; returns it in id. */
static void make_post(world *w, const char *author, char id[STG_ID_MAX + 1])
{
    stg_record rec = {.kind = STG_KIND_POST, .owner = author, .ownerlen = strlen(author)};
    rec.ver.hlc = repl_hlc_tick(repl_clock(w->r));
    snprintf(rec.ver.origin, sizeof rec.ver.origin, "%s", repl_region(w->r));
    stg_make_id(id, &rec.ver);
    char payload[256];
    snprintf(payload, sizeof payload, "{\"id\":\"%s\",\"author\":\"%s\",\"text\":\"hi\"}", id,
             author);
    rec.key = id;
    rec.keylen = strlen(id);
    rec.payload = payload;
    rec.paylen = strlen(payload);
    ck_assert_int_eq(repl_write(w->r, &rec, NULL), 0);
}

static void delete_post(world *w, const char *author, const char *id)
{
    stg_record rec = {.kind = STG_KIND_POST,
                      .key = id,
                      .keylen = strlen(id),
                      .tombstone = true,
                      .owner = author,
                      .ownerlen = strlen(author),
                      .payload = "",
                      .paylen = 0};
    ck_assert_int_eq(repl_write(w->r, &rec, NULL), 0);
}

/* ---- Reading whole timelines ---------------------------------------------------------- */

typedef struct idlist {
    char (*ids)[STG_ID_MAX + 1];
    size_t n, cap;
} idlist;

static void idlist_push(idlist *l, const char *id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->ids = realloc(l->ids, l->cap * sizeof *l->ids);
    }
    snprintf(l->ids[l->n++], STG_ID_MAX + 1, "%s", id);
}

static void idlist_free(idlist *l)
{
    free(l->ids);
    memset(l, 0, sizeof *l);
}

typedef int (*read_fn)(feed *, const char *, const char *, int, feed_page *);

/* Reads who's timeline page by page (limit each) into out, checking every
 * item on the way: its id comes from its version, its owner and payload
 * agree with it, and ids strictly decrease across pages (no overlap). */
static void read_all(world *w, read_fn rd, const char *who, int limit, idlist *out)
{
    char cursor[STG_ID_MAX + 32] = "";
    for (int page = 0;; page++) {
        ck_assert_msg(page < 1000, "%s: pagination does not end", who);
        feed_page p;
        ck_assert_int_eq(rd(w->fd, who, page ? cursor : NULL, limit, &p), 0);
        ck_assert_uint_le(p.n, (size_t)limit);
        for (size_t i = 0; i < p.n; i++) {
            const stg_record *post = &p.items[i].post;
            char id[STG_ID_MAX + 1], needle[STG_ID_MAX + 16];
            ck_assert(!post->tombstone);
            stg_make_id(id, &post->ver);
            snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
            ck_assert_msg(memmem(post->payload, post->paylen, needle, strlen(needle)) != NULL,
                          "%s: payload of %s does not name it", who, id);
            ck_assert_msg(out->n == 0 || strcmp(out->ids[out->n - 1], id) > 0,
                          "%s: page %d repeats or reorders: %s after %s", who, page, id,
                          out->ids[out->n - 1]);
            char needle2[STG_ID_MAX + 16];
            snprintf(needle2, sizeof needle2, "\"author\":\"%.*s\"", (int)post->ownerlen,
                     post->owner);
            ck_assert(memmem(post->payload, post->paylen, needle2, strlen(needle2)) != NULL);
            idlist_push(out, id);
        }
        bool done = p.next[0] == '\0';
        snprintf(cursor, sizeof cursor, "%s", p.next);
        feed_page_free(&p);
        if (done) break;
    }
}

/* Asserts got == want, with a readable message on the first difference. */
static void assert_ids(const char *what, const char *who, const idlist *got, const idlist *want)
{
    size_t n = got->n < want->n ? got->n : want->n;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(got->ids[i], want->ids[i]) == 0,
                      "%s of %s, item %zu: got %s, want %s (got %zu items, want %zu)", what, who, i,
                      got->ids[i], want->ids[i], got->n, want->n);
    ck_assert_msg(got->n == want->n, "%s of %s: got %zu items, want %zu%s%s", what, who, got->n,
                  want->n, got->n > want->n ? "; first extra " : "; first missing ",
                  got->n > want->n ? got->ids[n] : want->ids[n]);
}

static bool in_home_cf(world *w, const char *user, const char *post_id)
{
    char k[HOME_KEYCAP], *v;
    size_t vl;
    int kl = feed_home_key(k, sizeof k, user, post_id, strlen(post_id));
    int rc = stg_get(w->db, STG_CF_HOME, k, (size_t)kl, &v, &vl);
    if (rc == 0) free(v);
    return rc == 0;
}

/* ---- The reference model ------------------------------------------------------------------ */

enum { NUSERS = 40, NCELEBS = 3 };

typedef struct mpost {
    char id[STG_ID_MAX + 1];
    int author;
    bool live;
} mpost;

typedef struct model {
    bool follows[NUSERS][NUSERS];
    mpost *posts;
    size_t nposts;
} model;

static int id_desc(const void *a, const void *b)
{
    return -strcmp(((const mpost *)a)->id, ((const mpost *)b)->id);
}

/* The reference home timeline of u: newest cap live posts by u and the
 * users u follows. Posts are kept newest first. */
static void model_home(const model *m, int u, int cap, idlist *out)
{
    for (size_t i = 0; i < m->nposts && out->n < (size_t)cap; i++) {
        const mpost *p = &m->posts[i];
        if (p->live && (p->author == u || m->follows[u][p->author])) idlist_push(out, p->id);
    }
}

static void model_profile(const model *m, int a, idlist *out)
{
    for (size_t i = 0; i < m->nposts; i++)
        if (m->posts[i].live && m->posts[i].author == a) idlist_push(out, m->posts[i].id);
}

/* ---- The randomized model check ------------------------------------------------------------- */

typedef struct scenario {
    const char *name;
    int cap; /* timeline_cap, also the model's */
    bool removals; /* unfollows and deletes */
    uint64_t seed;
} scenario;

static const scenario scenarios[] = {
    /* Every operation; the cap is out of reach, so nothing is trimmed. */
    {"uncapped, all operations", 100000, true, 71},
    /* A small cap, trims happen; only follows and posts. */
    {"cap 30, follows and posts", 30, false, 72},
    /* The full check: a small cap with unfollows and deletes. */
    {"cap 30, all operations", 30, true, 73},
    {"cap 12, all operations", 12, true, 74},
};

static void check_everyone(world *w, const model *m, int cap, const char *when)
{
    char who[STG_ID_MAX + 1];
    for (int u = 0; u < NUSERS; u++) {
        user_id(who, u);
        idlist got = {0}, want = {0};
        read_all(w, feed_home, who, 7, &got);
        model_home(m, u, cap, &want);
        char what[96];
        snprintf(what, sizeof what, "home (%s)", when);
        assert_ids(what, who, &got, &want);
        idlist_free(&got);
        idlist_free(&want);

        read_all(w, feed_profile, who, 7, &got);
        model_profile(m, u, &want);
        snprintf(what, sizeof what, "profile (%s)", when);
        assert_ids(what, who, &got, &want);
        idlist_free(&got);
        idlist_free(&want);
    }
}

/* Whom a follows: one of the celebrities (who soon pass large_threshold),
 * one of its five ring neighbours (at most five followers each, so they
 * stay fanned out on write), or now and then anyone. */
static int pick_followee(rng *r, int a)
{
    uint64_t x = rng_below(r, 100);
    if (x < 15) return (int)rng_below(r, NCELEBS);
    if (x < 90)
        return NCELEBS + (a - NCELEBS + 1 + (int)rng_below(r, 5) + NUSERS) % (NUSERS - NCELEBS);
    return (int)rng_below(r, NUSERS);
}

START_TEST(test_model_check)
{
    const scenario *sc = &scenarios[_i];
    fprintf(stderr, "scenario: %s\n", sc->name);
    rng r = rng_seeded("timeline_model", sc->seed);
    /* Reads below a floor merge 4 followees at a time: most users follow
     * more, so the grouped merge is what gets checked. */
    feed_config fc = {
        .workers = 2, .large_threshold = 5, .timeline_cap = sc->cap, .batch = 3, .merge_group = 4};
    world w;
    world_open(&w, &fc);
    model *m = calloc(1, sizeof *m);
    m->posts = calloc(2000, sizeof *m->posts);
    char ids[NUSERS][STG_ID_MAX + 1];
    for (int u = 0; u < NUSERS; u++) {
        user_id(ids[u], u);
        create_user(&w, ids[u]);
    }

    enum { NOPS = 1200, CHECK_EVERY = 300 };
    size_t counts[4] = {0};
    for (int op = 1; op <= NOPS; op++) {
        int kind = (int)rng_below(&r, 100);
        if (!sc->removals && kind >= 25 && kind < 35) kind = 0;
        if (!sc->removals && kind >= 80) kind = 50;
        if (kind < 25) { /* follow */
            int a = (int)rng_below(&r, NUSERS), b = pick_followee(&r, a);
            if (a != b && !m->follows[a][b]) {
                set_follow(&w, ids[a], ids[b], true);
                m->follows[a][b] = true;
                counts[0]++;
            }
        } else if (kind < 35) { /* unfollow */
            int a = (int)rng_below(&r, NUSERS), start = (int)rng_below(&r, NUSERS);
            for (int k = 0; k < NUSERS; k++) {
                int b = (start + k) % NUSERS;
                if (m->follows[a][b]) {
                    set_follow(&w, ids[a], ids[b], false);
                    m->follows[a][b] = false;
                    counts[1]++;
                    break;
                }
            }
        } else if (kind < 80) { /* post; celebrities post a little more */
            int a =
                rng_below(&r, 10) == 0 ? (int)rng_below(&r, NCELEBS) : (int)rng_below(&r, NUSERS);
            ck_assert_uint_lt(m->nposts, 2000);
            mpost *p = &m->posts[m->nposts++];
            p->author = a;
            p->live = true;
            make_post(&w, ids[a], p->id);
            counts[2]++;
        } else if (m->nposts) { /* delete a random live post */
            size_t start = rng_below(&r, m->nposts);
            for (size_t k = 0; k < m->nposts; k++) {
                mpost *p = &m->posts[(start + k) % m->nposts];
                if (p->live) {
                    delete_post(&w, ids[p->author], p->id);
                    p->live = false;
                    counts[3]++;
                    break;
                }
            }
        }
        if (op % CHECK_EVERY == 0) {
            drain(&w);
            qsort(m->posts, m->nposts, sizeof *m->posts, id_desc);
            char when[48];
            snprintf(when, sizeof when, "after %d operations", op);
            check_everyone(&w, m, sc->cap, when);
            /* Compaction sweeps what trims left below the floors: the
             * timelines read the same after it. */
            ck_assert_int_eq(stg_compact(w.db, STG_CF_HOME), 0);
            snprintf(when, sizeof when, "after %d operations, compacted", op);
            check_everyone(&w, m, sc->cap, when);
        }
    }
    feed_stats st;
    feed_get_stats(w.fd, &st);
    fprintf(stderr,
            "  %zu follows, %zu unfollows, %zu posts, %zu deletes; %zu large accounts, "
            "%llu deliveries\n",
            counts[0], counts[1], counts[2], counts[3], st.large_accounts,
            (unsigned long long)st.deliveries);
    ck_assert_uint_gt(st.large_accounts, 0); /* the hybrid path was exercised */
    ck_assert_uint_lt(st.large_accounts, NUSERS); /* ... and so was fan-out on write */
    ck_assert_uint_eq(st.depth, 0);
    free(m->posts);
    free(m);
    world_close(&w);
}
END_TEST

/* ---- Focused behaviours -----------------------------------------------------------------------
 */

static void home_of(world *w, const char *who, idlist *out) { read_all(w, feed_home, who, 7, out); }

START_TEST(test_follow_backfills_and_unfollow_hides)
{
    feed_config fc = {.workers = 2, .large_threshold = 100, .timeline_cap = 50};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris", *u = "u@paris";
    create_user(&w, a);
    create_user(&w, u);
    char p[3][STG_ID_MAX + 1];
    for (int i = 0; i < 3; i++) make_post(&w, a, p[i]);
    drain(&w);
    idlist got = {0};
    home_of(&w, u, &got);
    ck_assert_uint_eq(got.n, 0);
    idlist_free(&got);

    set_follow(&w, u, a, true);
    drain(&w);
    home_of(&w, u, &got);
    ck_assert_uint_eq(got.n, 3);
    ck_assert_str_eq(got.ids[0], p[2]);
    ck_assert_str_eq(got.ids[2], p[0]);
    idlist_free(&got);
    ck_assert(in_home_cf(&w, u, p[0])); /* fanned out, not merged */

    /* Unfollow hides at once, before any cleanup job has run. */
    set_follow(&w, u, a, false);
    home_of(&w, u, &got);
    ck_assert_uint_eq(got.n, 0);
    idlist_free(&got);
    drain(&w);
    ck_assert(!in_home_cf(&w, u, p[0])); /* and the cleanup removed the entries */

    /* Delete hides at once too. */
    set_follow(&w, u, a, true);
    drain(&w);
    delete_post(&w, a, p[1]);
    home_of(&w, u, &got);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_str_eq(got.ids[0], p[2]);
    ck_assert_str_eq(got.ids[1], p[0]);
    idlist_free(&got);
    world_close(&w);
}
END_TEST

START_TEST(test_large_account_merged_at_read)
{
    feed_config fc = {.workers = 2, .large_threshold = 2, .timeline_cap = 50};
    world w;
    world_open(&w, &fc);
    const char *star = "star@paris", *fans[] = {"f1@paris", "f2@paris", "f3@paris"},
               *other = "o@paris";
    create_user(&w, star);
    create_user(&w, other);
    for (int i = 0; i < 3; i++) {
        create_user(&w, fans[i]);
        set_follow(&w, fans[i], star, true);
    }
    drain(&w);
    feed_stats st;
    feed_get_stats(w.fd, &st);
    ck_assert_uint_eq(st.large_accounts, 1);

    char post[STG_ID_MAX + 1];
    make_post(&w, star, post);
    drain(&w);
    for (int i = 0; i < 3; i++) {
        ck_assert(!in_home_cf(&w, fans[i], post)); /* not fanned out */
        idlist got = {0};
        home_of(&w, fans[i], &got);
        ck_assert_uint_eq(got.n, 1);
        ck_assert_str_eq(got.ids[0], post);
        idlist_free(&got);
    }
    ck_assert(in_home_cf(&w, star, post)); /* the author's own home has it */
    idlist got = {0};
    home_of(&w, other, &got);
    ck_assert_uint_eq(got.n, 0);
    idlist_free(&got);

    /* A new follower of a large account sees its posts without a backfill. */
    set_follow(&w, other, star, true);
    home_of(&w, other, &got);
    ck_assert_uint_eq(got.n, 1);
    idlist_free(&got);
    /* An unfollower stops seeing them. */
    set_follow(&w, fans[0], star, false);
    home_of(&w, fans[0], &got);
    ck_assert_uint_eq(got.n, 0);
    idlist_free(&got);
    world_close(&w);
}
END_TEST

/* Posts arriving between pages never shift the next page. */
START_TEST(test_cursor_stable_under_new_posts)
{
    feed_config fc = {.workers = 2, .large_threshold = 100, .timeline_cap = 100};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris", *u = "u@paris";
    create_user(&w, a);
    create_user(&w, u);
    set_follow(&w, u, a, true);
    char p[10][STG_ID_MAX + 1], extra[STG_ID_MAX + 1];
    for (int i = 0; i < 10; i++) make_post(&w, a, p[i]);
    drain(&w);
    feed_page pg;
    ck_assert_int_eq(feed_home(w.fd, u, NULL, 4, &pg), 0);
    ck_assert_uint_eq(pg.n, 4);
    char cursor[STG_ID_MAX + 32];
    snprintf(cursor, sizeof cursor, "%s", pg.next);
    feed_page_free(&pg);
    for (int i = 0; i < 3; i++) make_post(&w, a, extra);
    drain(&w);
    ck_assert_int_eq(feed_home(w.fd, u, cursor, 4, &pg), 0);
    ck_assert_uint_eq(pg.n, 4);
    for (size_t i = 0; i < 4; i++) {
        char id[STG_ID_MAX + 1];
        stg_make_id(id, &pg.items[i].post.ver);
        ck_assert_str_eq(id, p[5 - i]);
    }
    feed_page_free(&pg);
    world_close(&w);
}
END_TEST

/* The cap holds across pages: depth travels in the cursor. */
START_TEST(test_cap_across_pages)
{
    feed_config fc = {.workers = 2, .large_threshold = 100, .timeline_cap = 10};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris";
    create_user(&w, a);
    char p[STG_ID_MAX + 1];
    for (int i = 0; i < 14; i++) make_post(&w, a, p);
    drain(&w);
    idlist got = {0};
    read_all(&w, feed_home, a, 3, &got);
    ck_assert_uint_eq(got.n, 10);
    ck_assert_str_eq(got.ids[0], p);
    idlist_free(&got);
    /* The profile is not capped. */
    read_all(&w, feed_profile, a, 3, &got);
    ck_assert_uint_eq(got.n, 14);
    idlist_free(&got);
    world_close(&w);
}
END_TEST

START_TEST(test_bad_cursor)
{
    feed_config fc = {.workers = 1};
    world w;
    world_open(&w, &fc);
    static const char *bad[] = {"garbage",
                                "0000000000000001-paris",
                                "0000000000000001-paris~",
                                "0000000000000001-paris~-1",
                                "0000000000000001-paris~1x",
                                "x~3",
                                "0000000000000001-Paris~1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        feed_page pg;
        ck_assert_msg(feed_home(w.fd, "u@paris", bad[i], 5, &pg) == DF_EINVAL, "home took \"%s\"",
                      bad[i]);
        feed_page_free(&pg);
        ck_assert_msg(feed_profile(w.fd, "u@paris", bad[i], 5, &pg) == DF_EINVAL,
                      "profile took \"%s\"", bad[i]);
        feed_page_free(&pg);
    }
    feed_page pg;
    ck_assert_int_eq(feed_home(w.fd, "u@paris", "0000000000000001-paris~3", 5, &pg), 0);
    ck_assert_uint_eq(pg.n, 0);
    ck_assert_str_eq(pg.next, "");
    feed_page_free(&pg);
    world_close(&w);
}
END_TEST

/* Jobs are durable: written while no worker runs, they are delivered
 * after a restart; the large-account set is reloaded too. */
START_TEST(test_jobs_and_large_accounts_survive_restart)
{
    feed_config fc = {.workers = 2, .large_threshold = 2, .timeline_cap = 50};
    world w;
    world_open_in(&w, NULL, &fc, false);
    const char *a = "a@paris", *u = "u@paris", *star = "star@paris";
    const char *fans[] = {"f1@paris", "f2@paris", "f3@paris"};
    create_user(&w, a);
    create_user(&w, u);
    create_user(&w, star);
    set_follow(&w, u, a, true);
    char p[4][STG_ID_MAX + 1];
    for (int i = 0; i < 4; i++) make_post(&w, a, p[i]);
    for (int i = 0; i < 3; i++) {
        create_user(&w, fans[i]);
        set_follow(&w, fans[i], star, true);
    }
    ck_assert(!in_home_cf(&w, u, p[0])); /* nothing ran */

    world_open_in(&w, world_stop(&w), &fc, true);
    drain(&w);
    idlist got = {0};
    home_of(&w, u, &got);
    ck_assert_uint_eq(got.n, 4);
    ck_assert_str_eq(got.ids[0], p[3]);
    idlist_free(&got);
    feed_stats st;
    feed_get_stats(w.fd, &st);
    ck_assert_uint_eq(st.large_accounts, 1);
    ck_assert_uint_eq(st.depth, 0);

    /* A post of the (reloaded) large account is merged at read, not fanned out. */
    char sp[STG_ID_MAX + 1];
    make_post(&w, star, sp);
    drain(&w);
    ck_assert(!in_home_cf(&w, fans[1], sp));
    home_of(&w, fans[1], &got);
    ck_assert_uint_eq(got.n, 1);
    ck_assert_str_eq(got.ids[0], sp);
    idlist_free(&got);
    world_close(&w);
}
END_TEST

/* ---- Trimming ---------------------------------------------------------------------------------
 */

/* Trimming a home timeline at the cap must not lose posts for good: after
 * deletes (or an unfollow) below the newest cap entries, the older live
 * posts that were trimmed away are part of the timeline again. Otherwise
 * two users with the same follows -- or two regions that saw the deletes
 * at different times -- would see different timelines. */
START_TEST(test_trimmed_entries_return_after_delete)
{
    feed_config fc = {.workers = 2, .large_threshold = 100, .timeline_cap = 8};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris", *u = "u@paris", *late = "late@paris";
    create_user(&w, a);
    create_user(&w, u);
    create_user(&w, late);
    set_follow(&w, u, a, true);
    char p[40][STG_ID_MAX + 1];
    for (int i = 0; i < 40; i++) make_post(&w, a, p[i]);
    drain(&w);
    for (int i = 5; i < 40; i++) delete_post(&w, a, p[i]);
    set_follow(&w, late, a, true); /* follows after the deletes: backfilled */
    drain(&w);

    idlist want = {0};
    for (int i = 4; i >= 0; i--) idlist_push(&want, p[i]);
    const char *who[] = {late, u, a};
    for (size_t i = 0; i < 3; i++) {
        idlist got = {0};
        home_of(&w, who[i], &got);
        assert_ids("home", who[i], &got, &want);
        idlist_free(&got);
    }
    idlist_free(&want);
    world_close(&w);
}
END_TEST

/* The same through an unfollow: the remaining followee's posts were
 * trimmed away by the unfollowed one's newer posts. */
START_TEST(test_trimmed_entries_return_after_unfollow)
{
    feed_config fc = {.workers = 2, .large_threshold = 100, .timeline_cap = 8};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris", *b = "b@paris", *u = "u@paris";
    create_user(&w, a);
    create_user(&w, b);
    create_user(&w, u);
    set_follow(&w, u, a, true);
    set_follow(&w, u, b, true);
    char pa[5][STG_ID_MAX + 1], pb[STG_ID_MAX + 1];
    for (int i = 0; i < 5; i++) make_post(&w, a, pa[i]);
    for (int i = 0; i < 40; i++) make_post(&w, b, pb);
    drain(&w);
    set_follow(&w, u, b, false);
    drain(&w);

    idlist want = {0}, got = {0};
    for (int i = 4; i >= 0; i--) idlist_push(&want, pa[i]);
    home_of(&w, u, &got);
    assert_ids("home", u, &got, &want);
    idlist_free(&got);
    idlist_free(&want);
    world_close(&w);
}
END_TEST

/* ---- Known bugs
 * ---------------------------------------------------------------------------------- */

/* A post of an author nobody follows needs no job: the commit stages the
 * author's own home entry. A follow of that author whose backfill runs
 * while such a post is staged, but not yet written, must wait for it, or
 * the follower would never get the post (its stage saw no follower). The
 * post is staged here by hand, as the commit does, and held back. */
START_TEST(test_backfill_waits_for_direct_posts)
{
    world w;
    feed_config fc = {.workers = 1};
    world_open(&w, &fc);
    create_user(&w, "a@paris");
    create_user(&w, "f@paris");
    stg_record rec = {.kind = STG_KIND_POST, .owner = "a@paris", .ownerlen = 7};
    rec.ver.hlc = repl_hlc_tick(repl_clock(w.r));
    snprintf(rec.ver.origin, sizeof rec.ver.origin, "paris");
    char id[STG_ID_MAX + 1], got[STG_ID_MAX + 1];
    stg_make_id(id, &rec.ver);
    rec.key = id;
    rec.keylen = strlen(id);
    rec.payload = "{}";
    rec.paylen = 2;
    stg_batch *b = stg_batch_new(w.db);
    uint64_t jid;
    ck_assert_int_eq(feed_stage(w.fd, b, &rec, NULL, &jid), 0);
    ck_assert_msg(jid >= FEED_JOB_DIRECT, "a post nobody follows got a job");
    stg_record_stage(w.db, b, &rec, NULL);

    set_follow(&w, "f@paris", "a@paris", true);
    /* The backfill job stays queued or running while the post is staged:
     * the queue does not drain (feed_drain waits on the feed's condition
     * variable until its deadline). */
    ck_assert_msg(!feed_drain(w.fd, 300), "the backfill did not wait for the staged post");
    feed_stats st;
    feed_get_stats(w.fd, &st);
    ck_assert_uint_eq(st.depth, 1);
    ck_assert_int_eq(stg_write(w.db, b), 0);
    stg_event ev = {.type = STG_EVENT_COMMIT, .rec = &rec, .job = jid};
    stg_notify(w.db, &ev);
    stg_batch_free(b);
    drain(&w);
    const char *readers[] = {"f@paris", "a@paris"}; /* the backfill's, and the commit's own */
    for (int i = 0; i < 2; i++) {
        feed_page pg;
        ck_assert_int_eq(feed_home(w.fd, readers[i], NULL, 10, &pg), 0);
        ck_assert_uint_eq(pg.n, 1);
        stg_make_id(got, &pg.items[0].post.ver);
        ck_assert_str_eq(got, id);
        feed_page_free(&pg);
    }
    world_close(&w);
}
END_TEST

/* BUG (feed/workers.c, run_post_job): with feed_config.batch == 1 a post
 * job never finishes: each chunk takes up to batch - 1 = 0 followers and
 * "finished = count < cap - 1" is never true, so the worker spins
 * rewriting the job and the followers never get the post. feed_open
 * accepts any batch > 0. */
START_TEST(test_batch_of_one_finishes)
{
    feed_config fc = {.workers = 1, .large_threshold = 100, .timeline_cap = 50, .batch = 1};
    world w;
    world_open(&w, &fc);
    const char *a = "a@paris", *u = "u@paris";
    create_user(&w, a);
    create_user(&w, u);
    set_follow(&w, u, a, true);
    char p[STG_ID_MAX + 1];
    make_post(&w, a, p);
    bool drained = feed_drain(w.fd, 2000), delivered = in_home_cf(&w, u, p);
    world_close(&w); /* first: this one is expected to fail until fixed */
    ck_assert_msg(drained, "the fan-out job never finished");
    ck_assert(delivered);
}
END_TEST

static Suite *timeline_suite(void)
{
    Suite *s = suite_create("feed/timeline");
    TCase *mc = tcase_create("model");
    tcase_set_timeout(mc, 300);
    tcase_add_loop_test(mc, test_model_check, 0, (int)(sizeof scenarios / sizeof scenarios[0]));
    suite_add_tcase(s, mc);
    TCase *tc = tcase_create("behaviours");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_follow_backfills_and_unfollow_hides);
    tcase_add_test(tc, test_large_account_merged_at_read);
    tcase_add_test(tc, test_cursor_stable_under_new_posts);
    tcase_add_test(tc, test_cap_across_pages);
    tcase_add_test(tc, test_bad_cursor);
    tcase_add_test(tc, test_jobs_and_large_accounts_survive_restart);
    tcase_add_test(tc, test_trimmed_entries_return_after_delete);
    tcase_add_test(tc, test_trimmed_entries_return_after_unfollow);
    suite_add_tcase(s, tc);
    TCase *bugs = tcase_create("edges");
    tcase_set_timeout(bugs, 60);
    tcase_add_test(bugs, test_batch_of_one_finishes);
    tcase_add_test(bugs, test_backfill_waits_for_direct_posts);
    suite_add_tcase(s, bugs);
    return s;
}

int main(void)
{
    df_log_set_level(DF_LOG_WARN); /* the feed announces every large account */
    return unit_run(timeline_suite());
}
