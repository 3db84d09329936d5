/* postcache.c -- stored post values kept in memory for timeline reads.
 *
 * DESIGN: a timeline page reads ~20 posts; from RocksDB each is a search of
 * the memtable skip list and the table files. Posts never change except to
 * become tombstones, so their stored values can be cached. The cache is
 * direct-mapped and split into shards, each with a mutex and a generation.
 * Only live values are cached. A tombstone, once committed, is forgotten
 * (feed_committed -> pc_forget), which clears the slot and bumps the
 * generation; a reader takes the generation *before* reading RocksDB and
 * inserts only if it has not moved, so a value read before the tombstone
 * committed can never be inserted after it was forgotten. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define PC_SHARDS 64
#define PC_SLOTS 1024 /* per shard: 65,536 posts */
#define PC_VALUE_MAX 4096

typedef struct pc_slot {
    char id[STG_ID_MAX + 1];
    char *val;
    size_t len;
} pc_slot;

typedef struct pc_shard {
    pthread_mutex_t mu;
    uint64_t gen;
    pc_slot slot[PC_SLOTS];
} pc_shard;

struct post_cache {
    pc_shard shard[PC_SHARDS];
};

static uint32_t hash_id(const char *id, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h;
}

static pc_slot *slot_of(post_cache *pc, const char *id, size_t n, pc_shard **shard)
{
    uint32_t h = hash_id(id, n);
    *shard = &pc->shard[h % PC_SHARDS];
    return &(*shard)->slot[(h / PC_SHARDS) % PC_SLOTS];
}

static bool slot_is(const pc_slot *s, const char *id, size_t n)
{
    return s->val && strlen(s->id) == n && memcmp(s->id, id, n) == 0;
}

post_cache *pc_new(void)
{
    post_cache *pc = xcalloc(1, sizeof *pc);
    for (int i = 0; i < PC_SHARDS; i++) pthread_mutex_init(&pc->shard[i].mu, NULL);
    return pc;
}

void pc_free(post_cache *pc)
{
    if (!pc) return;
    for (int i = 0; i < PC_SHARDS; i++) {
        for (int j = 0; j < PC_SLOTS; j++) free(pc->shard[i].slot[j].val);
        pthread_mutex_destroy(&pc->shard[i].mu);
    }
    free(pc);
}

bool pc_get(post_cache *pc, const char *id, size_t n, char **val, size_t *len, uint64_t *gen)
{
    pc_shard *sh;
    pc_slot *s = slot_of(pc, id, n, &sh);
    pthread_mutex_lock(&sh->mu);
    bool hit = slot_is(s, id, n);
    if (hit) {
        *val = xmalloc(s->len);
        memcpy(*val, s->val, s->len);
        *len = s->len;
    }
    *gen = sh->gen;
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

void pc_put(post_cache *pc, const char *id, size_t n, const char *val, size_t len, uint64_t gen)
{
    if (n > STG_ID_MAX || len > PC_VALUE_MAX) return;
    pc_shard *sh;
    pc_slot *s = slot_of(pc, id, n, &sh);
    char *copy = xmalloc(len);
    memcpy(copy, val, len);
    pthread_mutex_lock(&sh->mu);
    if (sh->gen == gen) {
        free(s->val);
        memcpy(s->id, id, n);
        s->id[n] = '\0';
        s->val = copy;
        s->len = len;
        copy = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
    free(copy);
}

void pc_forget(post_cache *pc, const char *id, size_t n)
{
    pc_shard *sh;
    pc_slot *s = slot_of(pc, id, n, &sh);
    pthread_mutex_lock(&sh->mu);
    sh->gen++;
    if (slot_is(s, id, n)) {
        free(s->val);
        s->val = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
}
