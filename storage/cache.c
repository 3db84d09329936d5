/* cache.c -- df_cache: values kept in memory in front of RocksDB.
 *
 * DESIGN: a read of RocksDB is a search of the memtable skip lists and the
 * table files; the hot ones (a timeline's posts, a viewer's followees, a
 * token's user) repeat across requests. The cache is direct-mapped and
 * split into shards, each with a mutex, a generation and a byte budget;
 * an entry is one allocation holding key and value.
 *
 * Invalidation is by the writer, after its batch commits: df_cache_forget
 * clears the key's slot and bumps the shard's generation. A reader takes
 * the generation *before* reading RocksDB (df_cache_get reports it on a
 * miss) and inserts only if it has not moved, so a value read before a
 * write committed can never be inserted after that write was forgotten. */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

#define SHARDS 64

typedef struct entry {
    uint32_t hash, klen;
    size_t vlen;
    char data[]; /* key, then value */
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    uint64_t gen;
    size_t bytes;
    entry **slot;
} shard;

struct df_cache {
    size_t slots; /* per shard, a power of two */
    size_t budget; /* bytes per shard */
    shard shard[SHARDS];
};

static uint32_t hash_key(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static entry **slot_of(df_cache *c, uint32_t h, shard **sh)
{
    *sh = &c->shard[h % SHARDS];
    return &(*sh)->slot[(h / SHARDS) & (c->slots - 1)];
}

static bool entry_is(const entry *e, uint32_t h, const void *key, size_t n)
{
    return e && e->hash == h && e->klen == n && memcmp(e->data, key, n) == 0;
}

static size_t entry_size(const entry *e) { return sizeof *e + e->klen + e->vlen; }

df_cache *df_cache_new(size_t entries, size_t max_bytes)
{
    df_cache *c = xcalloc(1, sizeof *c);
    c->slots = 1;
    while (c->slots * SHARDS < entries) c->slots *= 2;
    c->budget = max_bytes / SHARDS;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shard[i].mu, NULL);
        c->shard[i].slot = xcalloc(c->slots, sizeof *c->shard[i].slot);
    }
    return c;
}

void df_cache_free(df_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        for (size_t j = 0; j < c->slots; j++) free(c->shard[i].slot[j]);
        free(c->shard[i].slot);
        pthread_mutex_destroy(&c->shard[i].mu);
    }
    free(c);
}

bool df_cache_get(df_cache *c, const void *key, size_t n, char **val, size_t *len, uint64_t *gen)
{
    uint32_t h = hash_key(key, n);
    shard *sh;
    entry **s = slot_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    bool hit = entry_is(*s, h, key, n);
    if (hit) {
        *len = (*s)->vlen;
        *val = xmalloc(*len + 1);
        memcpy(*val, (*s)->data + n, *len);
        (*val)[*len] = '\0';
    }
    if (gen) *gen = sh->gen;
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

void df_cache_put(df_cache *c, const void *key, size_t n, const void *val, size_t len, uint64_t gen)
{
    uint32_t h = hash_key(key, n);
    entry *e = xmalloc(sizeof *e + n + len);
    e->hash = h;
    e->klen = (uint32_t)n;
    e->vlen = len;
    memcpy(e->data, key, n);
    memcpy(e->data + n, val, len);
    shard *sh;
    entry **s = slot_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    size_t old = *s ? entry_size(*s) : 0;
    if (sh->gen == gen && sh->bytes - old + entry_size(e) <= c->budget) {
        free(*s);
        *s = e;
        sh->bytes = sh->bytes - old + entry_size(e);
        e = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
    free(e);
}

void df_cache_forget(df_cache *c, const void *key, size_t n)
{
    uint32_t h = hash_key(key, n);
    shard *sh;
    entry **s = slot_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    sh->gen++;
    if (entry_is(*s, h, key, n)) {
        sh->bytes -= entry_size(*s);
        free(*s);
        *s = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
}
