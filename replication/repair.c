/* repair.c -- anti-entropy: rounds that compare our Merkle tree with each
 * peer's and pull the records we lack.
 *
 * A round against peer P: ask P for its root (with its store epoch and its
 * last local seq); if it equals ours, done. Else ask for the children of
 * every node that differs, level by level, down to the leaves; ask for the
 * entries (kind, key, hash, hlc) of the leaves that differ; look each up in
 * our own tree and ask for the records P holds in a version we lack or
 * that is newer than ours; apply them through the one commit, last write
 * wins, as if from P's log (fan-out included). Traffic follows the
 * difference: a record that differs costs its path of nodes, its leaf's
 * entries and itself. Rounds only pull; P pulls what it lacks from us in
 * its own rounds, so two regions meet in the middle.
 *
 * Records younger than SETTLE_MS (plus P's simulated distance) are left to
 * the log, which is moments from delivering them -- except while P's log
 * has a gap: then nothing is left out, and a round that completes tells
 * the subscriber everything P wrote up to its seq is here, so the cursor
 * can move past the gap (subscriber.c).
 *
 * Transport: requests go to P's list in P's Redis, answers come back to
 * ours in our Redis (repair_server.c); both are signed with the regions'
 * log keys, so repair runs only with --key-dir. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASK_TIMEOUT_MS 5000
#define SETTLE_MS 2000
#define GAP_ROUND_MS 1000 /* rounds against a peer whose log has a gap */
#define BUSY_TRIES 200 /* naps of 50 ms for the fan-out queue to drain */

void repl_keys_add(repl_keys *l, stg_kind kind, const char *key, size_t klen)
{
    if (klen > STG_KEY_MAX) return; /* no stored key is longer */
    if (l->n == l->cap) l->v = xrealloc(l->v, (l->cap = l->cap ? 2 * l->cap : 64) * sizeof *l->v);
    repl_key *k = &l->v[l->n++];
    k->kind = kind;
    k->klen = klen;
    memcpy(k->key, key, klen);
}

typedef struct client {
    repl *r;
    redisContext *own; /* our Redis: answers arrive there */
    redisContext *pc[REPL_MAX_PEERS]; /* peers' Redis: requests go there */
    char answers[80];
    repl_writer w;
    uint64_t nonce;
    redisReply *rep; /* the last answer; its payload is read in place */
    repl_keys wants; /* records to ask for */
    repl_keys zombies; /* records of ours the peer purged as deleted */
    /* The descent: differing nodes of a level, their children, sums. */
    uint32_t diff[STG_TREE_LEAVES], kids[STG_TREE_LEAVES], next[STG_TREE_LEAVES];
    stg_digest_sum theirs[REPL_REPAIR_NODES_MAX], ours[REPL_REPAIR_NODES_MAX];
    bool rejected_logged;
} client;

/* Starts a request of type to p. */
static void begin(client *c, peer *p, unsigned type)
{
    randombytes_buf(&c->nonce, sizeof c->nonce);
    repl_repair_header(&c->w, type, c->r->region, p->name, c->nonce);
}

/* Counts an answer of p's that we refuse, logging the first. */
static void refuse(client *c, peer *p)
{
    atomic_fetch_add(&p->repair_rejected, 1);
    if (!c->rejected_logged)
        df_log(DF_LOG_WARN, "repair: refused an answer from %s (a signature that does not "
                            "verify, or a record it may not send); counted in /v1/replication, "
                            "further ones are not logged",
               p->name);
    c->rejected_logged = true;
}

/* Sends the request in c->w and waits for p's answer; *out reads its
 * payload (valid until the next ask). False on a timeout or no Redis. */
static bool ask(client *c, peer *p, unsigned type, repl_reader *out)
{
    repl *r = c->r;
    char list[80];
    repl_repair_list(list, sizeof list, p->name, false);
    repl_repair_seal(r, &c->w, list);
    redisContext **pc = &c->pc[p->index];
    if (!*pc) *pc = repl_redis_connect(p->redis_addr, p->redis_auth, 1000);
    if (!*pc || !repl_repair_push(pc, list, &c->w)) return false;
    uint64_t deadline = df_mono_ms() + ASK_TIMEOUT_MS;
    while (df_mono_ms() < deadline && !atomic_load(&r->stopping)) {
        if (!c->own && !(c->own = repl_redis_connect(r->log_addr, r->redis_auth, 1000))) return false;
        const char *argv[] = {"BLPOP", c->answers, "0.5"};
        redisReply *rep = repl_redis_cmd(&c->own, 3, argv, NULL);
        if (!rep) continue;
        repl_repair_msg m;
        bool ours = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                    rep->element[1]->type == REDIS_REPLY_STRING &&
                    repl_repair_decode(rep->element[1]->str, rep->element[1]->len, REPL_SIG_LEN,
                                       &m) == 0 &&
                    m.type == (type | REPL_REPAIR_ANSWER) && strcmp(m.from, p->name) == 0 &&
                    strcmp(m.to, r->region) == 0 && m.nonce == c->nonce;
        if (ours && !repl_verify(p->pk, c->answers, "", rep->element[1]->str, m.bodylen,
                                 (const unsigned char *)m.sig, m.siglen)) {
            refuse(c, p);
            ours = false;
        }
        if (!ours) { /* a late answer to an earlier request, or none */
            freeReplyObject(rep);
            continue;
        }
        atomic_fetch_add(&p->repair_bytes, rep->element[1]->len);
        if (c->rep) freeReplyObject(c->rep);
        c->rep = rep;
        *out = (repl_reader){m.payload, m.paylen, 0, false};
        return true;
    }
    return false;
}

/* Asks for the sums of nodes idx[0..n) of level; *epoch and *seq are p's. */
static bool ask_nodes(client *c, peer *p, unsigned level, const uint32_t *idx, size_t n,
                      stg_digest_sum *sums, uint64_t *epoch, uint64_t *seq, uint64_t *horizon)
{
    begin(c, p, REPL_REPAIR_NODES);
    repl_write_uint(&c->w, level, 1);
    repl_write_uint(&c->w, n, 2);
    for (size_t i = 0; i < n; i++) repl_write_uint(&c->w, idx[i], 4);
    repl_reader rd;
    unsigned got_level;
    size_t got;
    if (!ask(c, p, REPL_REPAIR_NODES, &rd)) return false;
    return repl_repair_nodes_answer(&rd, epoch, seq, horizon, &got_level, sums, n, &got) &&
           got_level == level && got == n;
}

/* The nodes of level below the differing ones of the level above (diff,
 * *nd), compared with ours; *nd becomes their number. */
static bool descend(client *c, peer *p, unsigned level, uint32_t *diff, size_t *nd)
{
    uint32_t *kids = c->kids, *next = c->next;
    stg_digest_sum *theirs = c->theirs, *ours = c->ours;
    size_t nk = 0, nn = 0;
    for (size_t i = 0; i < *nd; i++)
        for (uint32_t k = 0; k < STG_TREE_FANOUT; k++) kids[nk++] = diff[i] * STG_TREE_FANOUT + k;
    for (size_t at = 0; at < nk; at += REPL_REPAIR_NODES_MAX) {
        size_t n = nk - at < REPL_REPAIR_NODES_MAX ? nk - at : REPL_REPAIR_NODES_MAX;
        uint64_t epoch, seq, horizon;
        if (!ask_nodes(c, p, level, kids + at, n, theirs, &epoch, &seq, &horizon) ||
            stg_tree_nodes(c->r->db, level, kids + at, n, ours) < 0)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!stg_digest_equal(&theirs[i], &ours[i])) next[nn++] = kids[at + i];
    }
    memcpy(diff, next, nn * sizeof *next);
    *nd = nn;
    return true;
}

/* Whether we want p's version of an entry: one we lack, or hold older. */
static bool wanted(client *c, const repl_repair_entry *e, uint64_t settle_ms, bool *fresh)
{
    uint64_t now = df_now_ms();
    if (repl_hlc_ms(e->hlc) + settle_ms > now) {
        *fresh = true; /* on its way through the log */
        return false;
    }
    unsigned char h[STG_DIGEST_HASH_LEN];
    uint64_t hlc;
    int rc = stg_tree_get(c->r->db, e->kind, e->key, e->klen, h, &hlc);
    /* Lacking one older than our GC horizon: we purged it (the commit
     * would refuse it anyway). */
    if (rc == DF_ENOTFOUND) return repl_hlc_ms(e->hlc) >= atomic_load(&c->r->gc_horizon);
    return rc == 0 && memcmp(h, e->hash, sizeof h) != 0 && hlc <= e->hlc;
}

/* Applies one record of p's answer. False stops the round (storage, the
 * queue, stopping); a record we refuse is counted and passed over. */
static bool apply_record(client *c, peer *p, repl_applier *a, const char *blob, size_t n,
                         bool *complete)
{
    stg_record rec;
    if (repl_record_decode(blob, n, &rec) < 0 ||
        repl_record_check(rec.ver.origin, &rec) != REPL_REJECT_NONE) {
        refuse(c, p); /* signed by p, yet not a record any region may write */
        return true;
    }
    atomic_fetch_add(&p->repair_received, 1);
    if (repl_hlc_ms(rec.ver.hlc) > df_now_ms() + MAX_FUTURE_MS) {
        *complete = false; /* would drag our clock: later, as the log does */
        return true;
    }
    for (int tries = 0; tries < BUSY_TRIES; tries++) {
        int rc = repl_applier_add(a, 0, &rec);
        if (rc == DF_EPERM) {
            refuse(c, p);
            return true;
        }
        if (rc != DF_EBUSY) return rc >= 0;
        /* The fan-out queue is full: what is staged commits, the rest waits. */
        if (repl_applier_commit(a) < 0 || !repl_nap(c->r, 50)) return false;
    }
    return false;
}

/* Asks p for the wanted records, in chunks, and applies them. */
static bool fetch(client *c, peer *p, repl_applier *a, bool *complete)
{
    for (size_t at = 0; at < c->wants.n; at += REPL_REPAIR_RECORDS_MAX) {
        size_t n = c->wants.n - at < REPL_REPAIR_RECORDS_MAX ? c->wants.n - at
                                                            : REPL_REPAIR_RECORDS_MAX;
        begin(c, p, REPL_REPAIR_RECORDS);
        repl_write_uint(&c->w, n, 2);
        for (size_t i = 0; i < n; i++) {
            const repl_key *w = &c->wants.v[at + i];
            repl_write_uint(&c->w, (uint64_t)w->kind, 1);
            repl_write_uint(&c->w, w->klen, 2);
            repl_write_bytes(&c->w, w->key, w->klen);
        }
        repl_reader rd;
        uint64_t left;
        if (!ask(c, p, REPL_REPAIR_RECORDS, &rd) || !repl_repair_count(&rd, 2, &left) || left > n)
            return false;
        const char *blob;
        size_t blen;
        int more;
        while ((more = repl_repair_blob_next(&rd, &left, &blob, &blen)) == 1)
            if (!apply_record(c, p, a, blob, blen, complete)) return false;
        /* The records point into the answer: committed before the next ask. */
        if (more < 0 || repl_applier_commit(a) < 0) return false;
    }
    c->wants.n = 0;
    return true;
}

/* One of the peer's entries in the chunk being compared. */
typedef struct entry_ref {
    stg_kind kind;
    const char *key;
    size_t klen;
} entry_ref;

static int ref_cmp(const void *pa, const void *pb)
{
    const entry_ref *a = pa, *b = pb;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    size_t m = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, m);
    return c ? c : a->klen < b->klen ? -1 : a->klen > b->klen;
}

typedef struct zombie_scan {
    client *c;
    const entry_ref *theirs;
    size_t n;
    uint64_t horizon;
} zombie_scan;

/* One of our entries: older than the peer's GC horizon and absent there,
 * it is a zombie (see gc.c). */
static bool find_zombie(void *arg, stg_kind kind, const char *key, size_t klen,
                        const unsigned char *hash, uint64_t hlc)
{
    (void)hash;
    zombie_scan *z = arg;
    entry_ref k = {kind, key, klen};
    if (repl_hlc_ms(hlc) >= z->horizon ||
        (z->n && bsearch(&k, z->theirs, z->n, sizeof k, ref_cmp)))
        return true;
    repl_keys_add(&z->c->zombies, kind, key, klen);
    return true;
}

/* A record we hold that the peer deleted and purged: deleted here too (a
 * tombstone through the commit, so the derived views follow), then purged
 * like the peer's; a tombstone the peer purged first is purged. False
 * stops the round. */
static bool bury(client *c, repl_applier *a, const repl_key *z)
{
    repl *r = c->r;
    stg_record rec;
    char *raw;
    int rc = stg_record_load(r->db, z->kind, z->key, z->klen, &rec, &raw);
    if (rc == DF_ENOTFOUND) return true;
    if (rc < 0) return false;
    uint64_t hlc = rec.ver.hlc;
    bool zombie = !rec.tombstone; /* else just a tombstone the peer purged first */
    if (zombie) {
        stg_record t = rec;
        t.tombstone = true;
        t.payload = NULL;
        t.paylen = 0;
        t.value = NULL;
        t.ver.hlc = ++hlc;
        rc = repl_applier_add(a, 0, &t);
        if (rc >= 0) rc = repl_applier_commit(a);
    }
    free(raw);
    if (rc < 0) return false;
    if (stg_record_purge(r->db, z->kind, z->key, z->klen, repl_hlc_ms(hlc) + 1) != 1)
        return true;
    if (!zombie) {
        atomic_fetch_add(&r->tombstones_purged, 1);
        return true;
    }
    atomic_fetch_add(&r->zombies_buried, 1);
    df_log(DF_LOG_WARN, "gc: a record older than a peer's GC horizon, deleted and purged there, "
                        "was still here (a store older than the grace?); deleted");
    return true;
}

/* The entries of the differing leaves, a chunk at a time; what we want of
 * each chunk is fetched, and our zombies in it buried, before the next. */
static bool compare_leaves(client *c, peer *p, const uint32_t *leaves, size_t nl,
                           uint64_t settle_ms, uint64_t horizon, repl_applier *a, bool *complete)
{
    entry_ref *theirs = NULL;
    size_t cap = 0;
    bool ok = true;
    for (size_t at = 0; ok && at < nl; at += REPL_REPAIR_LEAVES_MAX) {
        size_t n = nl - at < REPL_REPAIR_LEAVES_MAX ? nl - at : REPL_REPAIR_LEAVES_MAX;
        begin(c, p, REPL_REPAIR_LEAVES);
        repl_write_uint(&c->w, n, 2);
        for (size_t i = 0; i < n; i++) repl_write_uint(&c->w, leaves[at + i], 4);
        repl_reader rd;
        uint64_t left;
        if (!ask(c, p, REPL_REPAIR_LEAVES, &rd) || !repl_repair_count(&rd, 4, &left)) {
            ok = false;
            break;
        }
        repl_repair_entry e;
        int more;
        bool fresh = false;
        size_t nt = 0;
        c->wants.n = c->zombies.n = 0;
        while ((more = repl_repair_entry_next(&rd, &left, &e)) == 1) {
            if (wanted(c, &e, settle_ms, &fresh)) repl_keys_add(&c->wants, e.kind, e.key, e.klen);
            if (nt == cap) theirs = xrealloc(theirs, (cap = cap ? 2 * cap : 256) * sizeof *theirs);
            theirs[nt++] = (entry_ref){e.kind, e.key, e.klen};
        }
        if (more < 0) {
            ok = false;
            break;
        }
        if (fresh) *complete = false;
        /* Ours that the peer purged, looked up among its entries (which
         * point into its answer: before the next ask). */
        if (horizon) {
            if (nt) qsort(theirs, nt, sizeof *theirs, ref_cmp);
            zombie_scan z = {c, theirs, nt, horizon};
            for (size_t i = 0; i < n; i++)
                if (stg_tree_leaf_scan(c->r->db, leaves[at + i], find_zombie, &z) < 0) ok = false;
        }
        ok = ok && fetch(c, p, a, complete);
        for (size_t i = 0; ok && i < c->zombies.n; i++) ok = bury(c, a, &c->zombies.v[i]);
    }
    free(theirs);
    return ok;
}

/* One round against p. */
static void round_with(client *c, peer *p)
{
    uint32_t *diff = c->diff;
    repl *r = c->r;
    uint32_t root = 0;
    stg_digest_sum theirs, ours;
    uint64_t epoch, seq, horizon;
    if (!ask_nodes(c, p, 0, &root, 1, &theirs, &epoch, &seq, &horizon)) return;
    stg_tree_nodes(r->db, 0, &root, 1, &ours);
    bool complete = true;
    if (stg_digest_equal(&theirs, &ours)) {
        repl_note_equal(r, p, df_now_ms());
    } else {
        /* In a gap nothing waits for the log; else what is in flight does. */
        uint64_t settle = atomic_load(&p->gap_from) ? 0 : SETTLE_MS + atomic_load(&p->delay_ms);
        size_t nd = 1;
        diff[0] = 0;
        for (unsigned level = 1; level <= STG_TREE_DEPTH; level++)
            if (!descend(c, p, level, diff, &nd)) return;
        repl_applier *a = repl_repair_applier_new(r, p->name);
        bool ok = compare_leaves(c, p, diff, nd, settle, horizon, a, &complete);
        repl_applier_free(a);
        if (!ok) return;
    }
    atomic_fetch_add(&p->repair_rounds, 1);
    if (complete) {
        pthread_mutex_lock(&p->repair_mu);
        p->repaired_epoch = epoch;
        p->repaired_seq = seq;
        pthread_mutex_unlock(&p->repair_mu);
    }
}

void *repl_repair_main(void *arg)
{
    repl *r = arg;
    df_thread_name("df-repair");
    client *c = xcalloc(1, sizeof *c); /* the descent's arrays: not on the stack */
    c->r = r;
    repl_repair_list(c->answers, sizeof c->answers, r->region, true);
    uint64_t next[REPL_MAX_PEERS], last[REPL_MAX_PEERS] = {0};
    /* The first round soon, spread over the peers (and any that joins). */
    for (size_t i = 0; i < REPL_MAX_PEERS; i++) next[i] = df_mono_ms() + 500 + 300 * i;
    while (!atomic_load(&r->stopping)) {
        for (size_t i = 0; i < r->npeers && !atomic_load(&r->stopping); i++) {
            peer *p = &r->peers[i];
            uint64_t now = df_mono_ms();
            bool gap = atomic_load(&p->gap_from) != 0;
            if (atomic_load(&r->paused) || !p->redis_addr || atomic_load(&p->removed)) continue;
            if (now < next[i] && !(gap && now >= last[i] + GAP_ROUND_MS)) continue;
            last[i] = now;
            round_with(c, p);
            next[i] = df_mono_ms() + r->repair_interval_ms;
        }
        repl_gc_maybe(r);
        repl_nap(r, 100);
    }
    if (c->rep) freeReplyObject(c->rep);
    if (c->own) redisFree(c->own);
    for (size_t i = 0; i < REPL_MAX_PEERS; i++)
        if (c->pc[i]) redisFree(c->pc[i]);
    free(c->w.p);
    free(c->wants.v);
    free(c->zombies.v);
    free(c);
    return NULL;
}
