/* cache.c -- df_cache: values kept in memory in front of RocksDB.
 *
 * DESIGN: a read of RocksDB is a search of the memtable skip lists and the
 * table files; the hot ones (a timeline's posts, a viewer's followees, a
 * token's user) repeat across requests. The cache is direct-mapped and
 * split into shards, each with a mutex, a generation and a byte budget;
 * an entry is one allocation holding key and value.
 *
 * Each key hashes to a set of WAYS slots in one cache line; a slot keeps
 * the key's hash next to its entry, so a probe only follows the pointer
 * of a matching hash. A key that finds its set full replaces the way its
 * hash picks. A shard over its byte budget evicts round its slots with a
 * clock hand that gives a second chance: a hit marks its entry, the hand
 * clears the mark and passes over it, and takes the first unmarked entry.
 * A page or post read again and again stays; one read once, such as a deep
 * timeline page, goes on the hand's next round.
 *
 * Invalidation is by the writer, after its batch commits: df_cache_forget
 * clears the key's slot and bumps the shard's generation. A reader takes
 * the generation *before* reading RocksDB (df_cache_get reports it on a
 * miss) and inserts only if it has not moved, so a value read before a
 * write committed can never be inserted after that write was forgotten. */
#include "storage.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64
#define WAYS 4

typedef struct entry {
    _Atomic uint32_t refs; /* the cache's own, and one per df_cache_hold */
    uint32_t klen;
    uint32_t vlen;
    uint32_t hit; /* read since the clock hand last passed (under the shard's mutex) */
    char data[]; /* key, then value */
} entry;

typedef struct slot {
    uint64_t hash; /* 0: empty */
    entry *e;
} slot;

typedef struct shard {
    pthread_mutex_t mu;
    uint64_t gen;
    uint64_t hits, misses;
    size_t bytes;
    size_t hand; /* the next slot to evict when over budget */
    slot *sets; /* nsets x WAYS */
} shard;

struct df_cache {
    size_t nsets; /* per shard, a power of two */
    size_t budget; /* bytes per shard */
    shard shard[SHARDS];
};

static uint64_t hash_key(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    /* FNV-1a leaves the high bits of short keys poorly mixed, and they pick
     * the shard: a final avalanche (MurmurHash3's fmix64) spreads them. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h | 1; /* never 0, the empty mark */
}

/* The set of hash h, and its shard. */
static slot *set_of(df_cache *c, uint64_t h, shard **sh)
{
    *sh = &c->shard[(h >> 56) % SHARDS];
    return &(*sh)->sets[((h >> 1) & (c->nsets - 1)) * WAYS];
}

/* The slot holding key in set, or NULL. */
static slot *find(slot *set, uint64_t h, const void *key, size_t n)
{
    for (int w = 0; w < WAYS; w++)
        if (set[w].hash == h && set[w].e->klen == n && memcmp(set[w].e->data, key, n) == 0)
            return &set[w];
    return NULL;
}

static size_t entry_size(const entry *e) { return sizeof *e + e->klen + e->vlen; }

static void release(entry *e)
{
    if (atomic_fetch_sub(&e->refs, 1) == 1) free(e);
}

df_cache *df_cache_new(size_t entries, size_t max_bytes)
{
    df_cache *c = xcalloc(1, sizeof *c);
    c->nsets = 1;
    while (c->nsets * SHARDS * WAYS < entries) c->nsets *= 2;
    c->budget = max_bytes / SHARDS;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shard[i].mu, NULL);
        c->shard[i].sets = xcalloc(c->nsets * WAYS, sizeof(slot));
    }
    return c;
}

void df_cache_free(df_cache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        for (size_t j = 0; j < c->nsets * WAYS; j++)
            if (c->shard[i].sets[j].e) release(c->shard[i].sets[j].e);
        free(c->shard[i].sets);
        pthread_mutex_destroy(&c->shard[i].mu);
    }
    free(c);
}

bool df_cache_hold(df_cache *c, const void *key, size_t n, const char **val, size_t *len,
                   uint64_t *gen, df_cache_ref **ref)
{
    uint64_t h = hash_key(key, n);
    shard *sh;
    slot *set = set_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    slot *s = find(set, h, key, n);
    *(s ? &sh->hits : &sh->misses) += 1;
    if (s) {
        atomic_fetch_add(&s->e->refs, 1);
        s->e->hit = 1;
        *val = s->e->data + n;
        *len = s->e->vlen;
        *ref = (df_cache_ref *)s->e;
    }
    if (gen) *gen = sh->gen;
    pthread_mutex_unlock(&sh->mu);
    return s != NULL;
}

void df_cache_release(df_cache_ref *ref)
{
    if (ref) release((entry *)ref);
}

bool df_cache_get(df_cache *c, const void *key, size_t n, char **val, size_t *len, uint64_t *gen)
{
    const char *v;
    df_cache_ref *ref;
    if (!df_cache_hold(c, key, n, &v, len, gen, &ref)) return false;
    *val = xmalloc(*len + 1);
    memcpy(*val, v, *len);
    (*val)[*len] = '\0';
    df_cache_release(ref);
    return true;
}

static void clear(shard *sh, slot *s)
{
    sh->bytes -= entry_size(s->e);
    release(s->e);
    s->e = NULL;
    s->hash = 0;
}

void df_cache_put(df_cache *c, const void *key, size_t n, const void *val, size_t len, uint64_t gen)
{
    if (n > UINT32_MAX || len > UINT32_MAX) return;
    uint64_t h = hash_key(key, n);
    entry *e = xmalloc(sizeof *e + n + len);
    atomic_init(&e->refs, 1);
    e->klen = (uint32_t)n;
    e->vlen = (uint32_t)len;
    e->hit = 0;
    memcpy(e->data, key, n);
    memcpy(e->data + n, val, len);
    shard *sh;
    slot *set = set_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    if (sh->gen == gen) {
        slot *s = find(set, h, key, n);
        for (int w = 0; !s && w < WAYS; w++)
            if (!set[w].e) s = &set[w];
        if (!s) s = &set[(h >> 40) % WAYS];
        if (s->e) clear(sh, s);
        /* Over budget: the clock hand evicts what was not read since it
         * last passed. Two rounds at most: the first clears every mark. */
        size_t nslots = c->nsets * WAYS;
        for (size_t i = 0; i < 2 * nslots && sh->bytes + entry_size(e) > c->budget; i++) {
            slot *v = &sh->sets[sh->hand];
            sh->hand = (sh->hand + 1) % nslots;
            if (!v->e || v == s) continue;
            if (v->e->hit)
                v->e->hit = 0;
            else
                clear(sh, v);
        }
        if (sh->bytes + entry_size(e) <= c->budget) {
            s->hash = h;
            s->e = e;
            sh->bytes += entry_size(e);
            e = NULL;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    free(e);
}

void df_cache_forget(df_cache *c, const void *key, size_t n)
{
    uint64_t h = hash_key(key, n);
    shard *sh;
    slot *set = set_of(c, h, &sh);
    pthread_mutex_lock(&sh->mu);
    sh->gen++;
    slot *s = find(set, h, key, n);
    if (s) clear(sh, s);
    pthread_mutex_unlock(&sh->mu);
}

void df_cache_stats(df_cache *c, df_cache_counts *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < SHARDS; i++) {
        shard *sh = &c->shard[i];
        pthread_mutex_lock(&sh->mu);
        out->hits += sh->hits;
        out->misses += sh->misses;
        out->bytes += sh->bytes;
        pthread_mutex_unlock(&sh->mu);
    }
}
