/* repair_wire.c -- the bytes of anti-entropy messages (repl.h): a writer,
 * a bounds-checked reader, and the parsers of each payload. Every byte
 * read here came through Redis and is checked before use. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const char magic[4] = {'D', 'F', 'R', '1'};

/* ---- Writing ------------------------------------------------------------------------ */

void repl_write_bytes(repl_writer *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = w->cap ? w->cap : 256;
        while (w->len + n > w->cap) w->cap *= 2;
        w->p = xrealloc(w->p, w->cap);
    }
    if (n) memcpy(w->p + w->len, p, n);
    w->len += n;
}

void repl_write_uint(repl_writer *w, uint64_t v, unsigned bytes)
{
    unsigned char b[8];
    for (unsigned i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    repl_write_bytes(w, b, bytes);
}

static void write_name(repl_writer *w, const char *s)
{
    size_t n = strlen(s);
    repl_write_uint(w, n, 1);
    repl_write_bytes(w, s, n);
}

void repl_repair_header(repl_writer *w, unsigned type, const char *from, const char *to,
                        uint64_t nonce)
{
    w->len = 0;
    repl_write_bytes(w, magic, sizeof magic);
    repl_write_uint(w, type, 1);
    write_name(w, from);
    write_name(w, to);
    repl_write_uint(w, nonce, 8);
}

/* ---- Reading ------------------------------------------------------------------------ */

const char *repl_read_bytes(repl_reader *rd, size_t n)
{
    if (rd->bad || n > rd->n - rd->off) {
        rd->bad = true;
        return NULL;
    }
    const char *p = rd->p + rd->off;
    rd->off += n;
    return p;
}

uint64_t repl_read_uint(repl_reader *rd, unsigned bytes)
{
    const unsigned char *b = (const unsigned char *)repl_read_bytes(rd, bytes);
    uint64_t v = 0;
    for (unsigned i = 0; b && i < bytes; i++) v = v << 8 | b[i];
    return v;
}

bool repl_read_end(const repl_reader *rd) { return !rd->bad && rd->off == rd->n; }

static bool read_name(repl_reader *rd, char out[STG_ORIGIN_MAX + 1])
{
    size_t n = (size_t)repl_read_uint(rd, 1);
    const char *s = repl_read_bytes(rd, n);
    if (!s || !stg_valid_name(s, n, STG_ORIGIN_MAX)) return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

int repl_repair_decode(const char *buf, size_t len, size_t sig_len, repl_repair_msg *m)
{
    memset(m, 0, sizeof *m);
    if (len < sig_len) return DF_EINVAL;
    repl_reader rd = {buf, len - sig_len, 0, false};
    const char *mg = repl_read_bytes(&rd, sizeof magic);
    if (!mg || memcmp(mg, magic, sizeof magic) != 0) return DF_EINVAL;
    m->type = (unsigned)repl_read_uint(&rd, 1);
    unsigned base = m->type & ~REPL_REPAIR_ANSWER;
    if (base < REPL_REPAIR_NODES || base > REPL_REPAIR_RECORDS) return DF_EINVAL;
    if (!read_name(&rd, m->from) || !read_name(&rd, m->to)) return DF_EINVAL;
    m->nonce = repl_read_uint(&rd, 8);
    if (rd.bad) return DF_EINVAL;
    m->payload = buf + rd.off;
    m->paylen = rd.n - rd.off;
    m->bodylen = rd.n;
    m->sig = buf + rd.n;
    m->siglen = sig_len;
    return 0;
}

/* ---- Payloads ----------------------------------------------------------------------- */

bool repl_repair_nodes_request(repl_reader *rd, unsigned *level, uint32_t *idx, size_t *n)
{
    *level = (unsigned)repl_read_uint(rd, 1);
    *n = (size_t)repl_read_uint(rd, 2);
    if (rd->bad || *level > STG_TREE_DEPTH || *n == 0 || *n > REPL_REPAIR_NODES_MAX) return false;
    uint32_t w = stg_tree_width(*level);
    for (size_t i = 0; i < *n; i++)
        if ((idx[i] = (uint32_t)repl_read_uint(rd, 4)) >= w) return false;
    return repl_read_end(rd);
}

bool repl_repair_nodes_answer(repl_reader *rd, uint64_t *epoch, uint64_t *seq, uint64_t *horizon,
                              unsigned *level, stg_digest_sum *sums, size_t max, size_t *n)
{
    *epoch = repl_read_uint(rd, 8);
    *seq = repl_read_uint(rd, 8);
    *horizon = repl_read_uint(rd, 8);
    *level = (unsigned)repl_read_uint(rd, 1);
    *n = (size_t)repl_read_uint(rd, 2);
    if (rd->bad || *level > STG_TREE_DEPTH || *n > max) return false;
    for (size_t i = 0; i < *n; i++) {
        sums[i].lane[0] = repl_read_uint(rd, 8);
        sums[i].lane[1] = repl_read_uint(rd, 8);
        sums[i].records = repl_read_uint(rd, 8);
    }
    return repl_read_end(rd);
}

bool repl_repair_leaves_request(repl_reader *rd, uint32_t *leaves, size_t *n)
{
    *n = (size_t)repl_read_uint(rd, 2);
    if (rd->bad || *n == 0 || *n > REPL_REPAIR_LEAVES_MAX) return false;
    for (size_t i = 0; i < *n; i++)
        if ((leaves[i] = (uint32_t)repl_read_uint(rd, 4)) >= STG_TREE_LEAVES) return false;
    return repl_read_end(rd);
}

bool repl_repair_count(repl_reader *rd, unsigned bytes, uint64_t *n)
{
    *n = repl_read_uint(rd, bytes);
    return !rd->bad;
}

/* The end of a list: nothing may follow its last item. */
static int list_end(const repl_reader *rd) { return repl_read_end(rd) ? 0 : -1; }

static bool read_key(repl_reader *rd, stg_kind *kind, const char **key, size_t *klen)
{
    unsigned k = (unsigned)repl_read_uint(rd, 1);
    *klen = (size_t)repl_read_uint(rd, 2);
    *key = repl_read_bytes(rd, *klen);
    *kind = (stg_kind)k;
    return *key && k >= STG_KIND_USER && k <= STG_KIND_MAX && *klen > 0 && *klen <= STG_KEY_MAX;
}

int repl_repair_entry_next(repl_reader *rd, uint64_t *left, repl_repair_entry *e)
{
    if (*left == 0) return list_end(rd);
    e->leaf = (uint32_t)repl_read_uint(rd, 4);
    if (!read_key(rd, &e->kind, &e->key, &e->klen)) return -1;
    e->hash = (const unsigned char *)repl_read_bytes(rd, STG_DIGEST_HASH_LEN);
    e->hlc = repl_read_uint(rd, 8);
    if (rd->bad || e->leaf >= STG_TREE_LEAVES) return -1;
    (*left)--;
    return 1;
}

int repl_repair_key_next(repl_reader *rd, uint64_t *left, stg_kind *kind, const char **key,
                         size_t *klen)
{
    if (*left == 0) return list_end(rd);
    if (!read_key(rd, kind, key, klen)) return -1;
    (*left)--;
    return 1;
}

int repl_repair_blob_next(repl_reader *rd, uint64_t *left, const char **p, size_t *n)
{
    if (*left == 0) return list_end(rd);
    *n = (size_t)repl_read_uint(rd, 4);
    if (!(*p = repl_read_bytes(rd, *n))) return -1;
    (*left)--;
    return 1;
}
