/* home.c -- home timeline entries: their key encoding, the per-user floor,
 * and the upgrade from the first key format.
 *
 * DESIGN: a home entry is key user \0 ~id, value u64 delivered ms | author,
 * where ~id is the post id with every byte inverted (ids are ASCII, so no
 * inverted byte is 0) and 0xff appended (so an id that is a prefix of
 * another still sorts after it). A forward scan of user \0 thus yields the
 * newest post first: timeline pages and trims step forward, which RocksDB
 * does several times faster than backward (in the memtable a step back is
 * a search from the top of the skip list).
 *
 * Floors (internal.h) live in the meta family as "floor" \0 user -> post id
 * and only rise; floor_mu serialises the read-compare-write. A database
 * whose home entries predate this encoding has them dropped at open, and a
 * floor for every user -- the newest post id then -- sends reads of older
 * posts to the profiles. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int feed_home_key(char *buf, size_t cap, const char *user, const char *id, size_t idlen)
{
    size_t ul = strlen(user);
    if (idlen == 0 || idlen > STG_ID_MAX || ul + 1 + idlen + 1 > cap) return -1;
    memcpy(buf, user, ul);
    buf[ul] = '\0';
    char *p = buf + ul + 1;
    for (size_t i = 0; i < idlen; i++) p[i] = (char)(0xff - (unsigned char)id[i]);
    p[idlen] = (char)0xff;
    return (int)(ul + idlen + 2);
}

int feed_home_key_id(const char *k, size_t kl, char out[STG_ID_MAX + 1])
{
    const char *inv;
    size_t n;
    if (stg_key_split(k, kl, &inv, &n) < 0 || n < 2 || n - 1 > STG_ID_MAX ||
        (unsigned char)inv[n - 1] != 0xff)
        return -1;
    for (size_t i = 0; i + 1 < n; i++) out[i] = (char)(0xff - (unsigned char)inv[i]);
    out[n - 1] = '\0';
    return (int)(n - 1);
}

/* ---- Floors ------------------------------------------------------------------------ */

static int floor_key(char *buf, size_t cap, const char *user)
{
    return stg_key_join(buf, cap, "floor", 5, user, strlen(user));
}

static bool load_id(stg_db *db, const char *key, size_t kl, char out[STG_ID_MAX + 1])
{
    char *v;
    size_t vl;
    if (stg_get(db, STG_CF_META, key, kl, &v, &vl) < 0) return false;
    bool ok = vl > 0 && vl <= STG_ID_MAX;
    if (ok) {
        memcpy(out, v, vl);
        out[vl] = '\0';
    }
    free(v);
    return ok;
}

bool feed_home_floor(feed *f, const char *user, char out[STG_ID_MAX + 1])
{
    char key[STG_ID_MAX + 8];
    int kl = floor_key(key, sizeof key, user);
    bool own = kl > 0 && load_id(f->db, key, (size_t)kl, out);
    if (f->floor_all[0] && (!own || strcmp(f->floor_all, out) > 0)) {
        strcpy(out, f->floor_all);
        return true;
    }
    return own;
}

/* What the home sweep remembers within one compaction: the last user seen
 * (its keys come together) and that user's floor. A floor that rises during
 * the compaction is used at its older, lower value: an entry is kept, never
 * dropped above the floor. The shared floor (floor_all, set only by the
 * format upgrade) is left to reads: its entries stay until their own
 * user's floor passes them. */
typedef struct sweep_memo {
    char user[STG_ID_MAX + 1];
    char floor[STG_ID_MAX + 1];
    bool has_floor;
} sweep_memo;
_Static_assert(sizeof(sweep_memo) <= sizeof(stg_sweep_memo), "sweep memo too large");

bool feed_home_sweep(stg_db *db, const char *k, size_t kl, stg_sweep_memo *memo)
{
    sweep_memo *m = (sweep_memo *)memo->bytes;
    char id[STG_ID_MAX + 1];
    const char *sep = memchr(k, 0, kl);
    if (feed_home_key_id(k, kl, id) < 0 || (size_t)(sep - k) > STG_ID_MAX)
        return false; /* not a home entry: keep */
    size_t ul = (size_t)(sep - k);
    if (strncmp(m->user, k, sizeof m->user) != 0) {
        char key[STG_ID_MAX + 8];
        memcpy(m->user, k, ul + 1);
        int fl = floor_key(key, sizeof key, m->user);
        m->has_floor = fl > 0 && load_id(db, key, (size_t)fl, m->floor);
    }
    return m->has_floor && strcmp(id, m->floor) <= 0;
}

int feed_write_with_floor(feed *f, stg_batch *b, const char *user, const char *id)
{
    char key[STG_ID_MAX + 8], cur[STG_ID_MAX + 1];
    int kl = id ? floor_key(key, sizeof key, user) : -1;
    if (kl < 0) return stg_write(f->db, b);
    pthread_mutex_lock(&f->floor_mu);
    if (!load_id(f->db, key, (size_t)kl, cur) || strcmp(id, cur) > 0)
        stg_batch_put(b, STG_CF_META, key, (size_t)kl, id, strlen(id));
    int rc = stg_write(f->db, b);
    pthread_mutex_unlock(&f->floor_mu);
    return rc;
}

/* ---- Format ------------------------------------------------------------------------- */

#define FORMAT_KEY "home_format"
#define FLOOR_ALL_KEY "home_floor_all"
#define FORMAT 2

/* Drops home entries of the first format (key user \0 post id). */
static int drop_old_entries(feed *f, bool *dropped)
{
    stg_iter *it = stg_iter_range(f->db, STG_CF_HOME, NULL, 0, NULL, 0, false);
    stg_batch *b = stg_batch_new(f->db);
    const char *k;
    size_t kl;
    char id[STG_ID_MAX + 1];
    int rc = 0;
    *dropped = false;
    while (rc == 0 && stg_iter_next(it, &k, &kl, NULL, NULL)) {
        if (feed_home_key_id(k, kl, id) >= 0) continue;
        stg_batch_delete(b, STG_CF_HOME, k, kl);
        *dropped = true;
        if (stg_batch_count(b) >= 10000) {
            rc = stg_write(f->db, b);
            stg_batch_clear(b);
        }
    }
    if (rc == 0) rc = stg_iter_status(it);
    stg_iter_free(it);
    if (rc == 0 && stg_batch_count(b)) rc = stg_write(f->db, b);
    stg_batch_free(b);
    return rc;
}

int feed_home_open(feed *f)
{
    uint64_t format = 0;
    int rc = stg_meta_get_u64(f->db, FORMAT_KEY, &format);
    if (rc < 0 && rc != DF_ENOTFOUND) return rc;
    if (rc == DF_ENOTFOUND) {
        bool dropped;
        if ((rc = drop_old_entries(f, &dropped)) < 0) return rc;
        stg_batch *b = stg_batch_new(f->db);
        if (dropped) {
            /* Everything up to the newest post is read from the profiles. */
            stg_iter *it = stg_iter_range(f->db, STG_CF_POSTS, NULL, 0, NULL, 0, true);
            const char *k;
            size_t kl;
            if (stg_iter_next(it, &k, &kl, NULL, NULL) && kl <= STG_ID_MAX)
                stg_batch_put(b, STG_CF_META, FLOOR_ALL_KEY, strlen(FLOOR_ALL_KEY), k, kl);
            stg_iter_free(it);
            df_log(DF_LOG_WARN, "feed: dropped home entries of an older format; older posts "
                                "are merged from profiles at read time");
        }
        stg_batch_meta_u64(b, FORMAT_KEY, FORMAT);
        rc = stg_write(f->db, b);
        stg_batch_free(b);
        if (rc < 0) return rc;
    } else if (format != FORMAT) {
        df_log(DF_LOG_ERROR, "feed: home entries in format %llu, this build reads %d",
               (unsigned long long)format, FORMAT);
        return DF_ECORRUPT;
    }
    if (!load_id(f->db, FLOOR_ALL_KEY, strlen(FLOOR_ALL_KEY), f->floor_all)) f->floor_all[0] = '\0';
    return 0;
}

void feed_home_put(stg_batch *b, const char *user, const char *post_id, const char *author,
                     uint64_t now)
{
    char key[HOME_KEYCAP], val[8 + STG_ID_MAX];
    int kl = feed_home_key(key, sizeof key, user, post_id, strlen(post_id));
    size_t al = strlen(author);
    if (kl < 0 || al > STG_ID_MAX) return;
    stg_key_u64(val, now);
    memcpy(val + 8, author, al);
    stg_batch_put(b, STG_CF_HOME, key, (size_t)kl, val, 8 + al);
}

void feed_home_delete(stg_batch *b, const char *user, const char *post_id)
{
    char key[HOME_KEYCAP];
    int kl = feed_home_key(key, sizeof key, user, post_id, strlen(post_id));
    if (kl > 0) stg_batch_delete(b, STG_CF_HOME, key, (size_t)kl);
}
