/* fuzz_repair.c -- libFuzzer target: anti-entropy messages, which arrive
 * through Redis from anyone who can write to it. The header and every
 * payload parser (requests as the server reads them, answers as the
 * client reads them) must stay inside the buffer, and what they accept
 * must hold the bounds the code after them relies on. */
#include "repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) ((x) ? (void)0 : (fprintf(stderr, "check failed: %s\n", #x), abort()))

static void walk(const repl_repair_msg *m)
{
    static uint32_t idx[REPL_REPAIR_NODES_MAX], leaves[REPL_REPAIR_LEAVES_MAX];
    static stg_digest_sum sums[REPL_REPAIR_NODES_MAX];
    repl_reader rd = {m->payload, m->paylen, 0, false};
    unsigned level;
    size_t n;
    uint64_t left, epoch, seq, horizon;
    switch (m->type) {
    case REPL_REPAIR_NODES:
        if (repl_repair_nodes_request(&rd, &level, idx, &n)) {
            CHECK(level <= STG_TREE_DEPTH && n >= 1 && n <= REPL_REPAIR_NODES_MAX);
            for (size_t i = 0; i < n; i++) CHECK(idx[i] < stg_tree_width(level));
            CHECK(rd.off == rd.n);
        }
        break;
    case REPL_REPAIR_NODES | REPL_REPAIR_ANSWER:
        if (repl_repair_nodes_answer(&rd, &epoch, &seq, &horizon, &level, sums, 16, &n))
            CHECK(n <= 16 && level <= STG_TREE_DEPTH);
        break;
    case REPL_REPAIR_LEAVES:
        if (repl_repair_leaves_request(&rd, leaves, &n))
            for (size_t i = 0; i < n; i++) CHECK(leaves[i] < STG_TREE_LEAVES);
        break;
    case REPL_REPAIR_LEAVES | REPL_REPAIR_ANSWER: {
        repl_repair_entry e;
        if (!repl_repair_count(&rd, 4, &left)) break;
        while (repl_repair_entry_next(&rd, &left, &e) == 1) {
            CHECK(e.leaf < STG_TREE_LEAVES && e.klen >= 1 && e.klen <= STG_KEY_MAX);
            CHECK(e.key >= m->payload && e.key + e.klen <= m->payload + m->paylen);
            (void)stg_tree_leaf(e.kind, e.key, e.klen);
        }
        break;
    }
    case REPL_REPAIR_RECORDS: {
        stg_kind kind;
        const char *key;
        size_t klen;
        if (!repl_repair_count(&rd, 2, &left)) break;
        while (repl_repair_key_next(&rd, &left, &kind, &key, &klen) == 1)
            CHECK(kind >= STG_KIND_USER && kind <= STG_KIND_MAX && klen <= STG_KEY_MAX);
        break;
    }
    case REPL_REPAIR_RECORDS | REPL_REPAIR_ANSWER: {
        const char *p;
        size_t len;
        if (!repl_repair_count(&rd, 2, &left)) break;
        while (repl_repair_blob_next(&rd, &left, &p, &len) == 1) {
            CHECK(p >= m->payload && p + len <= m->payload + m->paylen);
            stg_record rec;
            if (repl_record_decode(p, len, &rec) == 0) (void)repl_record_check(rec.ver.origin, &rec);
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    repl_repair_msg m;
    /* Signed (the 64 bytes at the end) and unsigned framings. */
    for (size_t sig = 0; sig <= 64; sig += 64) {
        if (repl_repair_decode((const char *)data, size, sig, &m) < 0) continue;
        CHECK(m.bodylen + m.siglen == size && m.paylen <= m.bodylen);
        CHECK(strlen(m.from) <= STG_ORIGIN_MAX && strlen(m.to) <= STG_ORIGIN_MAX);
        walk(&m);
    }
    return 0;
}
