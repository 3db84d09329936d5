/* jobs.c -- fan-out jobs: their encoding and staging them with a record. */
#include "internal.h"

#include <string.h>
#include <time.h>

static size_t put_str(char *out, const char *s)
{
    size_t n = strlen(s);
    out[0] = (char)n;
    memcpy(out + 1, s, n);
    return n + 1;
}

static int get_str(const char **p, const char *end, char *out)
{
    if (*p >= end) return -1;
    size_t n = (unsigned char)**p;
    if (n > STG_ID_MAX || *p + 1 + n > end) return -1;
    memcpy(out, *p + 1, n);
    out[n] = '\0';
    *p += 1 + n;
    return 0;
}

void job_encode(const job *j, char *out, size_t *len)
{
    size_t n = 0;
    out[n++] = (char)j->type;
    n += put_str(out + n, j->a);
    n += put_str(out + n, j->b);
    n += put_str(out + n, j->checkpoint);
    *len = n;
}

int job_decode(const char *buf, size_t len, job *j)
{
    const char *p = buf + 1, *end = buf + len;
    if (len < 1) return DF_ECORRUPT;
    j->type = (unsigned char)buf[0];
    if (j->type < JOB_POST || j->type > JOB_UNFOLLOW) return DF_ECORRUPT;
    if (get_str(&p, end, j->a) < 0 || get_str(&p, end, j->b) < 0 ||
        get_str(&p, end, j->checkpoint) < 0)
        return DF_ECORRUPT;
    return 0;
}

void feed_copy_id(char dst[STG_ID_MAX + 1], const char *src, size_t n)
{
    if (n > STG_ID_MAX) n = STG_ID_MAX;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void feed_pack(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap *= 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    (*buf)[*len + n] = '\0';
    *len += n + 1;
}

static bool stages_job(const stg_record *rec, const stg_record *old)
{
    return (rec->kind == STG_KIND_POST || rec->kind == STG_KIND_FOLLOW) &&
           !rec->tombstone != (old && !old->tombstone);
}

/* ---- Direct posts (internal.h) ---- */

static uint64_t direct_enter(feed *f)
{
    for (;;) {
        uint64_t e = atomic_load(&f->direct_epoch);
        atomic_fetch_add(&f->direct_in[e & 1], 1);
        if (atomic_load(&f->direct_epoch) == e) return e;
        atomic_fetch_sub(&f->direct_in[e & 1], 1); /* the barrier moved on: enter the new one */
    }
}

static void direct_leave(feed *f, uint64_t e)
{
    atomic_fetch_sub(&f->direct_in[e & 1], 1);
}

void feed_direct_barrier(feed *f)
{
    uint64_t e = atomic_fetch_add(&f->direct_epoch, 1);
    uint64_t start = df_now_ms(), warned = start;
    struct timespec nap = {0, 50 * 1000};
    while (atomic_load(&f->direct_in[e & 1]) > 0) {
        /* A commit in flight takes microseconds; one that does not end is
         * a stuck writer, worth a line in the log. */
        if (df_now_ms() - warned > 5000) {
            df_log(DF_LOG_WARN, "feed: a follow's backfill has waited %llu ms for direct posts",
                   (unsigned long long)(df_now_ms() - start));
            warned = df_now_ms();
        }
        nanosleep(&nap, NULL);
    }
}

int feed_stage(feed *f, stg_batch *b, const stg_record *rec, const stg_record *old, uint64_t *out)
{
    *out = 0;
    if (!stages_job(rec, old)) return 0;
    bool now = !rec->tombstone;
    job j = {0};
    if (rec->kind == STG_KIND_POST) {
        j.type = now ? JOB_POST : JOB_UNPOST;
        feed_copy_id(j.a, rec->key, rec->keylen);
        feed_copy_id(j.b, rec->owner, rec->ownerlen);
        uint64_t e = direct_enter(f);
        if (feed_follower_count(f, j.b) <= 0) {
            if (now)
                feed_home_put(b, j.b, j.a, j.b, df_now_ms());
            else
                feed_home_delete(b, j.b, j.a);
            *out = FEED_JOB_DIRECT + (e & 1);
            return 0;
        }
        direct_leave(f, e);
    }
    if (feed_overloaded(f)) return DF_EBUSY;
    if (rec->kind == STG_KIND_FOLLOW) {
        const char *followee;
        size_t nfollowee;
        int nfollower = stg_key_split(rec->key, rec->keylen, &followee, &nfollowee);
        if (nfollower < 0) return 0;
        j.type = now ? JOB_FOLLOW : JOB_UNFOLLOW;
        feed_copy_id(j.a, rec->key, (size_t)nfollower);
        feed_copy_id(j.b, followee, nfollowee);
        /* Large accounts are sticky: once merged at read time, always. */
        if (now && !feed_is_large(f, j.b) &&
            feed_follower_count(f, j.b) + 1 > f->cfg.large_threshold) {
            char mk[STG_ID_MAX + 8];
            int ml = stg_key_join(mk, sizeof mk, "large", 5, j.b, strlen(j.b));
            if (ml > 0) stg_batch_put(b, STG_CF_META, mk, (size_t)ml, "", 0);
            feed_mark_large(f, j.b);
        }
    }
    uint64_t id = atomic_fetch_add(&f->next_job, 1);
    char key[8], val[JOB_MAX];
    size_t vl;
    stg_key_u64(key, id);
    job_encode(&j, val, &vl);
    stg_batch_put(b, STG_CF_FANOUT, key, 8, val, vl);
    *out = id;
    return 0;
}

void feed_unstage(feed *f, uint64_t id)
{
    if (id >= FEED_JOB_DIRECT) direct_leave(f, id);
}
