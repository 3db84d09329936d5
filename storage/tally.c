/* tally.c -- every user's live posts, counted in memory (internal.h).
 *
 * A post used to add a counter merge to its batch: one more memtable insert
 * a post, and a read that walked every merge operand since the last flush.
 * The count is a function of the profile index (author \0 post, one key a
 * live post), so it is kept here instead: summed from the index at open,
 * moved by each committed batch (stg_write), never written. A crash loses
 * nothing, the next open counts again.
 *
 * Users hash to shards, each a mutex over an open-addressing table of
 * (user, count); entries stay when their count drops to 0, so a probe never
 * meets a hole where a key used to be. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64

typedef struct entry {
    char *user; /* NULL: an empty slot */
    size_t len;
    uint32_t hash;
    int64_t count;
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    entry *slot;
    size_t cap, used; /* cap: a power of two, 0 before the first user */
} shard;

struct stg_tally {
    shard shard[SHARDS];
};

stg_tally *stg_tally_new(void)
{
    stg_tally *t = xcalloc(1, sizeof *t);
    for (int i = 0; i < SHARDS; i++) pthread_mutex_init(&t->shard[i].mu, NULL);
    return t;
}

void stg_tally_free(stg_tally *t)
{
    if (!t) return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &t->shard[i];
        for (size_t j = 0; j < s->cap; j++) free(s->slot[j].user);
        free(s->slot);
        pthread_mutex_destroy(&s->mu);
    }
    free(t);
}

/* The slot holding user, or the empty one where it would go. */
static entry *probe(entry *slot, size_t cap, uint32_t h, const char *user, size_t n)
{
    for (size_t i = (h / SHARDS) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        entry *e = &slot[i];
        if (!e->user || (e->hash == h && e->len == n && memcmp(e->user, user, n) == 0)) return e;
    }
}

static void grow(shard *s)
{
    size_t cap = s->cap ? 2 * s->cap : 16;
    entry *slot = xcalloc(cap, sizeof *slot);
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i].user) {
            entry *e = &s->slot[i];
            *probe(slot, cap, e->hash, e->user, e->len) = *e;
        }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
}

void stg_tally_add(stg_tally *t, const char *user, size_t n, int64_t d)
{
    uint32_t h = df_hash32(user, n);
    shard *s = &t->shard[h % SHARDS];
    pthread_mutex_lock(&s->mu);
    if (4 * (s->used + 1) > 3 * s->cap) grow(s);
    entry *e = probe(s->slot, s->cap, h, user, n);
    if (!e->user) {
        *e = (entry){xstrndup(user, n), n, h, 0};
        s->used++;
    }
    e->count += d;
    pthread_mutex_unlock(&s->mu);
}

int64_t stg_tally_get(stg_tally *t, const char *user, size_t n)
{
    uint32_t h = df_hash32(user, n);
    shard *s = &t->shard[h % SHARDS];
    int64_t c = 0;
    pthread_mutex_lock(&s->mu);
    if (s->cap) {
        entry *e = probe(s->slot, s->cap, h, user, n);
        if (e->user) c = e->count;
    }
    pthread_mutex_unlock(&s->mu);
    return c;
}

int stg_tally_load(stg_db *db, stg_tally *t)
{
    stg_iter *it = stg_iter_range(db, STG_CF_PROFILE, NULL, 0, NULL, 0, false);
    const char *k, *post;
    size_t kl, np;
    char user[STG_ID_MAX];
    size_t ul = 0;
    int64_t run = 0; /* keys are sorted by user: one add a user */
    while (stg_iter_next(it, &k, &kl, NULL, NULL)) {
        int nu = stg_key_split(k, kl, &post, &np);
        if (nu <= 0 || nu > STG_ID_MAX) continue;
        if (run && !((size_t)nu == ul && memcmp(user, k, ul) == 0)) {
            stg_tally_add(t, user, ul, run);
            run = 0;
        }
        memcpy(user, k, (size_t)nu);
        ul = (size_t)nu;
        run++;
    }
    if (run) stg_tally_add(t, user, ul, run);
    return stg_iter_close(it);
}
