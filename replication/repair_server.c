/* repair_server.c -- answering peers' anti-entropy requests.
 *
 * A request arrives in the list df:repair:<us> in our log's Redis, signed
 * by a peer; the answer, signed by us, goes to df:repair:answers:<peer> in
 * that peer's log's Redis (where we read its log). Requests from anyone
 * else, unsigned ones and malformed ones are dropped: an answer carries
 * records (direct messages among them) only to a region whose key signed
 * for it. Answers are bounded: a NODES answer by REPL_REPAIR_NODES_MAX
 * sums, a LEAVES one by ANSWER_ENTRIES_MAX entries, a RECORDS one by
 * REPL_REPAIR_RECORDS_MAX records. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_ENTRIES_MAX 65536
#define LIST_TTL_S "60" /* a list nobody reads expires */
#define LIST_KEEP "-256" /* and holds at most this many messages */

void repl_repair_list(char *buf, size_t cap, const char *region, bool answers)
{
    snprintf(buf, cap, "df:repair:%s%s", answers ? "answers:" : "", region);
}

void repl_repair_seal(const repl *r, repl_writer *w, const char *list)
{
    unsigned char sig[REPL_SIG_LEN];
    repl_sign(r, list, "", w->p, w->len, sig);
    repl_write_bytes(w, sig, sizeof sig);
}

bool repl_repair_push(redisContext **c, const char *list, const repl_writer *w)
{
    redisAppendCommand(*c, "RPUSH %s %b", list, w->p, w->len);
    redisAppendCommand(*c, "LTRIM %s " LIST_KEEP " -1", list);
    redisAppendCommand(*c, "EXPIRE %s " LIST_TTL_S, list);
    redisReply *reps[3];
    if (repl_redis_replies(c, 3, reps) < 0) return false;
    bool ok = reps[0]->type == REDIS_REPLY_INTEGER;
    for (int i = 0; i < 3; i++) freeReplyObject(reps[i]);
    return ok;
}

/* ---- The answers -------------------------------------------------------------------- */

/* The server thread's scratch space for a NODES answer. */
typedef struct scratch {
    uint32_t idx[REPL_REPAIR_NODES_MAX];
    stg_digest_sum sums[REPL_REPAIR_NODES_MAX];
} scratch;

static bool answer_nodes(repl *r, scratch *sc, repl_reader *rd, repl_writer *w)
{
    uint32_t *idx = sc->idx;
    stg_digest_sum *sums = sc->sums;
    unsigned level;
    size_t n;
    if (!repl_repair_nodes_request(rd, &level, idx, &n)) return false;
    /* The seq first: every record written up to it is in the tree read after. */
    pthread_mutex_lock(&r->seq_mu);
    uint64_t seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    if (stg_tree_nodes(r->db, level, idx, n, sums) < 0) return false;
    repl_write_uint(w, r->epoch, 8);
    repl_write_uint(w, seq, 8);
    repl_write_uint(w, atomic_load(&r->gc_horizon), 8);
    repl_write_uint(w, level, 1);
    repl_write_uint(w, n, 2);
    for (size_t i = 0; i < n; i++) {
        repl_write_uint(w, sums[i].lane[0], 8);
        repl_write_uint(w, sums[i].lane[1], 8);
        repl_write_uint(w, sums[i].records, 8);
    }
    return true;
}

typedef struct leaf_out {
    repl_writer *w;
    uint32_t leaf;
    uint64_t n;
} leaf_out;

static bool put_entry(void *arg, stg_kind kind, const char *key, size_t klen,
                      const unsigned char *hash, uint64_t hlc)
{
    leaf_out *o = arg;
    repl_write_uint(o->w, o->leaf, 4);
    repl_write_uint(o->w, (uint64_t)kind, 1);
    repl_write_uint(o->w, klen, 2);
    repl_write_bytes(o->w, key, klen);
    repl_write_bytes(o->w, hash, STG_DIGEST_HASH_LEN);
    repl_write_uint(o->w, hlc, 8);
    return ++o->n < ANSWER_ENTRIES_MAX;
}

static bool answer_leaves(repl *r, repl_reader *rd, repl_writer *w)
{
    uint32_t leaves[REPL_REPAIR_LEAVES_MAX];
    size_t n;
    if (!repl_repair_leaves_request(rd, leaves, &n)) return false;
    size_t at = w->len;
    repl_write_uint(w, 0, 4); /* the count, filled in below */
    leaf_out o = {w, 0, 0};
    for (size_t i = 0; i < n && o.n < ANSWER_ENTRIES_MAX; i++) {
        o.leaf = leaves[i];
        if (stg_tree_leaf_scan(r->db, leaves[i], put_entry, &o) < 0) return false;
    }
    for (int i = 0; i < 4; i++) w->p[at + i] = (char)(o.n >> (8 * (3 - i)));
    return true;
}

static bool answer_records(repl *r, peer *p, repl_reader *rd, repl_writer *w)
{
    uint64_t left;
    if (!repl_repair_count(rd, 2, &left) || left > REPL_REPAIR_RECORDS_MAX) return false;
    size_t at = w->len;
    repl_write_uint(w, 0, 2);
    uint64_t n = 0;
    stg_kind kind;
    const char *key;
    size_t klen;
    int more;
    while ((more = repl_repair_key_next(rd, &left, &kind, &key, &klen)) == 1) {
        stg_record rec;
        char *raw = NULL, *wire;
        size_t wlen;
        int rc = stg_record_load(r->db, kind, key, klen, &rec, &raw);
        if (rc == DF_ENOTFOUND) continue;
        if (rc < 0) return false;
        repl_record_encode(&rec, &wire, &wlen);
        free(raw);
        repl_write_uint(w, wlen, 4);
        repl_write_bytes(w, wire, wlen);
        free(wire);
        n++;
    }
    if (more < 0) return false;
    w->p[at] = (char)(n >> 8);
    w->p[at + 1] = (char)n;
    atomic_fetch_add(&p->repair_sent, n);
    return true;
}

/* Answers one request; false drops it (logged once per reason). */
static bool answer(repl *r, scratch *sc, const char *buf, size_t len, repl_writer *w, peer **to)
{
    repl_repair_msg m;
    if (repl_repair_decode(buf, len, REPL_SIG_LEN, &m) < 0 || (m.type & REPL_REPAIR_ANSWER) ||
        strcmp(m.to, r->region) != 0)
        return false;
    peer *p = repl_peer_named(r, m.from);
    char list[80];
    repl_repair_list(list, sizeof list, r->region, false);
    if (!p || !p->redis_addr || atomic_load(&p->removed) ||
        !repl_verify(p->pk, list, "", buf, m.bodylen, (const unsigned char *)m.sig, m.siglen))
        return false;
    repl_reader rd = {m.payload, m.paylen, 0, false};
    repl_repair_header(w, m.type | REPL_REPAIR_ANSWER, r->region, p->name, m.nonce);
    bool ok = m.type == REPL_REPAIR_NODES    ? answer_nodes(r, sc, &rd, w)
              : m.type == REPL_REPAIR_LEAVES ? answer_leaves(r, &rd, w)
                                             : answer_records(r, p, &rd, w);
    *to = p;
    return ok;
}

/* Sends a sealed answer to p's list, connecting to p's Redis when needed. */
static void send_answer(repl *r, peer *p, redisContext **c, repl_writer *w)
{
    char list[80];
    repl_repair_list(list, sizeof list, p->name, true);
    repl_repair_seal(r, w, list);
    if (!*c) *c = repl_redis_connect(p->redis_addr, p->redis_auth, 1000);
    if (*c) repl_repair_push(c, list, w); /* lost: the peer asks again */
}

void *repl_repair_server_main(void *arg)
{
    repl *r = arg;
    df_thread_name("df-repair-srv");
    char list[80];
    repl_repair_list(list, sizeof list, r->region, false);
    redisContext *own = NULL, *pc[REPL_MAX_PEERS] = {0};
    uint64_t backoff = 50;
    repl_writer w = {0};
    scratch *sc = xcalloc(1, sizeof *sc);
    bool warned = false;
    while (!atomic_load(&r->stopping)) {
        if (!own && !(own = repl_redis_reconnect(r, r->log_addr, r->redis_auth, &backoff)))
            continue;
        const char *argv[] = {"BLPOP", list, "0.5"};
        redisReply *rep = repl_redis_cmd(&own, 3, argv, NULL);
        if (!rep) continue;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
            rep->element[1]->type == REDIS_REPLY_STRING) {
            const redisReply *msg = rep->element[1];
            peer *p = NULL;
            if (answer(r, sc, msg->str, msg->len, &w, &p)) {
                send_answer(r, p, &pc[p->index], &w);
            } else if (!warned) {
                df_log(DF_LOG_WARN, "repair: dropped a request that is not a peer's, signed and "
                                    "well formed (further ones are not logged)");
                warned = true;
            }
        }
        freeReplyObject(rep);
    }
    free(w.p);
    free(sc);
    if (own) redisFree(own);
    for (size_t i = 0; i < REPL_MAX_PEERS; i++)
        if (pc[i]) redisFree(pc[i]);
    return NULL;
}
