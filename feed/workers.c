/* workers.c -- running fan-out jobs: deliveries, removals, backfills, trims.
 *
 * DESIGN: a job works in chunks of cfg.batch deliveries; each chunk commits
 * its home-timeline entries together with the job's checkpoint (the last
 * follower done), so a restarted job resumes after the last committed chunk
 * and never delivers twice (a delivery is a put of a fixed key, so even a
 * repeat would be harmless). Each chunk runs under the lock stripe of the
 * record the job came from (the post, or the follow edge) and first checks
 * that the record is still in the state that created the job: a post
 * deleted, or an edge flipped, while its job waits makes the job stop, and
 * the job of the later change does the rest. Home entries (home.c):
 * key user \0 ~post id (newest first), value u64 delivered ms | author.
 *
 * Trims keep the newest timeline_cap entries and a backfill copies at most
 * timeline_cap posts; both raise the user's home floor (internal.h) past
 * what they leave out, in the batch that leaves it out. What a trim leaves
 * out stays stored until compaction sweeps it (feed_home_sweep). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>


/* Leaves user's home the newest timeline_cap entries (the first ones of a
 * forward scan) by raising its floor to the next one: reads stop at the
 * floor, and compaction drops the entries below it (feed_home_sweep) --
 * a delete for each would double the writes of fan-out. */
static void trim_home(feed *f, const char *user)
{
    char prefix[STG_ID_MAX + 2], newest[STG_ID_MAX + 1] = "";
    int pl = stg_key_join(prefix, sizeof prefix, user, strlen(user), NULL, 0);
    if (pl < 0) return;
    stg_iter *it = stg_iter_prefix(f->db, STG_CF_HOME, prefix, (size_t)pl, false);
    const char *k;
    size_t kl;
    int seen = 0;
    while (stg_iter_next(it, &k, &kl, NULL, NULL))
        if (++seen > f->cfg.timeline_cap && feed_home_key_id(k, kl, newest) > 0) break;
    stg_iter_free(it);
    if (!newest[0]) return;
    stg_batch *b = stg_batch_new(f->db);
    if (feed_write_with_floor(f, b, user, newest) == 0) feed_forget_page(f, user);
    stg_batch_free(b);
}

/* Counts a delivery to user; every timeline_cap deliveries trims the
 * timeline, so a home holds from timeline_cap to 2 x timeline_cap entries
 * above its floor. (A trim steps over timeline_cap entries to find the
 * next floor: trimming every cap/2 cost two of those steps a delivery,
 * 13% of the CPU under posts with followers.) */
static bool needs_trim(feed *f, const char *user)
{
    unsigned slot = feed_user_slot(user);
    uint16_t n = atomic_fetch_add(&f->trim[slot], 1) + 1;
    int every = f->cfg.timeline_cap > 16 ? f->cfg.timeline_cap : 16;
    if (every > UINT16_MAX) every = UINT16_MAX;
    if (n < every) return false;
    atomic_store(&f->trim[slot], 0);
    return true;
}

void feed_delivered(feed *f, const char *user, const char *post_id, uint64_t now)
{
    atomic_fetch_add(&f->deliveries, 1);
    stg_event ev = {.type = STG_EVENT_DELIVERY, .user = user, .post_id = post_id, .delivered_ms = now};
    stg_notify(f->db, &ev);
    if (needs_trim(f, user)) trim_home(f, user);
}

void feed_post_done(feed *f, const char *post_id)
{
    stg_version v;
    if (stg_parse_id(post_id, strlen(post_id), &v) == 0) {
        uint64_t created = v.hlc >> 16, now = df_now_ms();
        df_window_add(&f->latency, now > created ? now - created : 0);
    }
}

/* Rewrites the job with its checkpoint (or deletes it when done). */
static void stage_progress(stg_batch *b, uint64_t id, const job *j, bool done)
{
    char key[8], val[JOB_MAX];
    size_t vl;
    stg_key_u64(key, id);
    if (done) {
        stg_batch_delete(b, STG_CF_FANOUT, key, 8);
    } else {
        job_encode(j, val, &vl);
        stg_batch_put(b, STG_CF_FANOUT, key, 8, val, vl);
    }
}

static bool post_live(feed *f, const char *post_id)
{
    stg_record rec;
    char *raw;
    if (stg_record_load(f->db, STG_KIND_POST, post_id, strlen(post_id), &rec, &raw) < 0)
        return false;
    bool live = !rec.tombstone;
    free(raw);
    return live;
}

typedef struct delivered {
    char user[STG_ID_MAX + 1];
} delivered;

/* Up to room followers of author after `after` ("": from the first), in
 * key order, each NUL-terminated, into a malloc'd list of *len bytes;
 * *last tells whether they were the last ones. A list of all the followers
 * is kept in f->followers (most authors have a few dozen), so the next post
 * skips the seek through every level of the followers family. NULL on a
 * read error. */
static char *followers_chunk(feed *f, const char *author, const char *after, size_t room,
                             size_t *len, bool *last)
{
    size_t an = strlen(author);
    uint64_t gen = 0;
    char *list;
    if (!after[0] && df_cache_get(f->followers, author, an, &list, len, &gen)) {
        *last = true; /* kept lists are complete and shorter than a chunk */
        return list;
    }
    char prefix[STG_ID_MAX + 2], lo[STG_KEY_MAX], hi[STG_KEY_MAX];
    int pl = stg_key_join(prefix, sizeof prefix, author, an, NULL, 0);
    /* From just past author \0 after (its NUL appended). */
    int ll = stg_key_join(lo, sizeof lo, author, an, after, after[0] ? strlen(after) + 1 : 0);
    int hl = pl < 0 ? -1 : stg_key_successor(prefix, (size_t)pl, hi);
    if (ll < 0) return NULL;
    stg_iter *it =
        stg_iter_range(f->db, STG_CF_FOLLOWERS, lo, (size_t)ll, hi, hl < 0 ? 0 : (size_t)hl, false);
    size_t cap = 256, count = 0;
    list = xmalloc(cap);
    *len = 0;
    const char *k, *follower;
    size_t kl, nf;
    while (count < room && stg_iter_next(it, &k, &kl, NULL, NULL)) {
        if (stg_key_split(k, kl, &follower, &nf) < 0 || nf > STG_ID_MAX) continue;
        feed_pack(&list, len, &cap, follower, nf);
        count++;
    }
    *last = count < room;
    int rc = stg_iter_close(it);
    if (rc < 0) {
        free(list);
        return NULL;
    }
    if (!after[0] && *last) df_cache_put(f->followers, author, an, list, *len, gen);
    return list;
}

/* JOB_POST and JOB_UNPOST: the author, then every follower, in chunks. */
static void run_post_job(feed *f, uint64_t id, job *j)
{
    bool add = j->type == JOB_POST;
    bool large = feed_is_large(f, j->b);
    size_t cap = (size_t)f->cfg.batch;
    delivered *done = xmalloc((cap + 1) * sizeof *done); /* the users of a chunk */
    stg_batch *b = stg_batch_new(f->db);
    bool finished = false;

    while (!finished) {
        size_t n = 0;
        stg_lock(f->db, j->a, strlen(j->a));
        if (add && !post_live(f, j->a)) {
            finished = true; /* deleted meanwhile: its JOB_UNPOST cleans up */
            stage_progress(b, id, j, true);
            stg_write(f->db, b);
            stg_unlock(f->db, j->a, strlen(j->a));
            break;
        }
        uint64_t now = df_now_ms();
        if (j->checkpoint[0] == '\0') {
            if (add)
                feed_home_put(b, j->b, j->a, j->b, now);
            else
                feed_home_delete(b, j->b, j->a);
            strcpy(done[n++].user, j->b);
        }
        /* Followers after the checkpoint; a large account's posts are
         * merged at read time, but removals still sweep (cheap, idempotent). */
        if (!(add && large)) {
            /* Up to cap deliveries a chunk, the author's included, and at
             * least one follower, so every chunk moves the checkpoint. */
            size_t room = n < cap ? cap - n : 1, len;
            char *list = followers_chunk(f, j->b, j->checkpoint, room, &len, &finished);
            if (!list) {
                stg_unlock(f->db, j->a, strlen(j->a));
                break; /* a read error: the job stays stored and runs again after a restart */
            }
            for (const char *who = list; who < list + len; who += strlen(who) + 1) {
                if (add)
                    feed_home_put(b, who, j->a, j->b, now);
                else
                    feed_home_delete(b, who, j->a);
                strcpy(done[n++].user, who);
                strcpy(j->checkpoint, who);
            }
            free(list);
        } else {
            finished = true;
        }
        stage_progress(b, id, j, finished);
        int rc = stg_write(f->db, b);
        stg_unlock(f->db, j->a, strlen(j->a));
        stg_batch_clear(b);
        if (rc < 0) break; /* the job stays stored and runs again after a restart */
        for (size_t i = 0; i < n; i++) feed_forget_page(f, done[i].user);
        if (add)
            for (size_t i = 0; i < n; i++) feed_delivered(f, done[i].user, j->a, now);
        if (f->stopping) break;
        if (!finished) feed_nudge(f);
    }
    if (add && finished) feed_post_done(f, j->a);
    stg_batch_free(b);
    free(done);
}

/* JOB_FOLLOW: backfill the followee's newest posts; JOB_UNFOLLOW: remove
 * them. Runs under the edge's lock, so it cannot interleave with a flip. */
static void run_edge_job(feed *f, uint64_t id, job *j)
{
    char edge[STG_KEY_MAX];
    int el = stg_key_join(edge, sizeof edge, j->a, strlen(j->a), j->b, strlen(j->b));
    if (el < 0) return;
    stg_batch *b = stg_batch_new(f->db);
    stg_lock(f->db, edge, (size_t)el);
    bool following = feed_follows(f->db, j->a, j->b);
    uint64_t now = df_now_ms();
    char floor_id[STG_ID_MAX + 1] = "";
    if (j->type == JOB_FOLLOW && following && !feed_is_large(f, j->b)) {
        /* A post of j->b that found no follower, and so no job, is in the
         * profile before the backfill reads it. */
        feed_direct_barrier(f);
        char prefix[STG_ID_MAX + 2];
        int pl = stg_key_join(prefix, sizeof prefix, j->b, strlen(j->b), NULL, 0);
        stg_iter *it = stg_iter_prefix(f->db, STG_CF_PROFILE, prefix, (size_t)pl, true);
        const char *k, *post;
        size_t kl, np;
        int n = 0;
        while (stg_iter_next(it, &k, &kl, NULL, NULL)) {
            if (stg_key_split(k, kl, &post, &np) < 0 || np > STG_ID_MAX) continue;
            char pid[STG_ID_MAX + 1];
            memcpy(pid, post, np);
            pid[np] = '\0';
            if (n == f->cfg.timeline_cap) { /* older posts stay out: below the floor */
                strcpy(floor_id, pid);
                break;
            }
            feed_home_put(b, j->a, pid, j->b, now);
            n++;
        }
        stg_iter_free(it);
        atomic_fetch_add(&f->deliveries, (uint64_t)n);
    } else if (j->type == JOB_UNFOLLOW && !following) {
        char prefix[STG_ID_MAX + 2];
        int pl = stg_key_join(prefix, sizeof prefix, j->a, strlen(j->a), NULL, 0);
        stg_iter *it = stg_iter_prefix(f->db, STG_CF_HOME, prefix, (size_t)pl, false);
        const char *k, *v;
        size_t kl, vl, nb = strlen(j->b);
        while (stg_iter_next(it, &k, &kl, &v, &vl))
            if (vl == 8 + nb && memcmp(v + 8, j->b, nb) == 0)
                stg_batch_delete(b, STG_CF_HOME, k, kl);
        stg_iter_free(it);
    }
    stage_progress(b, id, j, true);
    if (feed_write_with_floor(f, b, j->a, floor_id[0] ? floor_id : NULL) == 0)
        feed_forget_page(f, j->a);
    stg_unlock(f->db, edge, (size_t)el);
    stg_batch_free(b);
    if (j->type == JOB_FOLLOW) trim_home(f, j->a);
}

void feed_run_job(feed *f, uint64_t id)
{
    char key[8], *val;
    size_t vl;
    stg_key_u64(key, id);
    if (stg_get(f->db, STG_CF_FANOUT, key, 8, &val, &vl) < 0) return;
    job j;
    int rc = job_decode(val, vl, &j);
    free(val);
    if (rc < 0) {
        df_log(DF_LOG_ERROR, "feed: job %llu does not decode; dropped", (unsigned long long)id);
        stg_batch *b = stg_batch_new(f->db);
        stg_batch_delete(b, STG_CF_FANOUT, key, 8);
        stg_write(f->db, b);
        stg_batch_free(b);
        return;
    }
    if (j.type == JOB_POST || j.type == JOB_UNPOST)
        run_post_job(f, id, &j);
    else
        run_edge_job(f, id, &j);
    atomic_fetch_add(&f->jobs_done, 1);
}
