/* replication.c -- GET /v1/replication: the engine's and the fan-out's
 * state, per peer (applied, lag, rejections, gaps). */
#include "api.h"

#include <stdio.h>

void api_replication(api_req *r)
{
    repl_status st;
    feed_stats fs;
    repl_get_status(r->ctx->rp, &st);
    feed_get_stats(r->ctx->fd, &fs);
    json_t *peers = json_array();
    for (size_t i = 0; i < st.npeers; i++) {
        const repl_peer_status *p = &st.peers[i];
        uint64_t behind = p->published_seq > p->applied_seq ? p->published_seq - p->applied_seq : 0;
        json_t *rejected = json_object(), *gap = json_null();
        if (p->state == REPL_GAP)
            gap = json_pack("{s:I,s:I}", "from", (json_int_t)p->gap_from, "to",
                            (json_int_t)p->gap_to);
        json_t *equal_at = json_null();
        if (p->repair_equal_at) {
            char t[32];
            df_format_time(p->repair_equal_at, t);
            equal_at = json_string(t);
        }
        json_t *repair = json_pack(
            "{s:I,s:I,s:I,s:I,s:I,s:o}", "rounds", (json_int_t)p->repair_rounds, "records_sent",
            (json_int_t)p->repair_sent, "records_received", (json_int_t)p->repair_received,
            "bytes_received", (json_int_t)p->repair_bytes,
            "rejected", (json_int_t)p->repair_rejected, "last_equal_at", equal_at);
        for (int k = REPL_REJECT_NONE + 1; k < REPL_REJECT_N; k++)
            json_object_set_new(rejected, repl_reject_name((repl_reject)k),
                                json_integer((json_int_t)p->rejected[k]));
        json_array_append_new(
            peers,
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:o,s:o,s:I,s:o,s:I}", "name", p->name, "applied_seq",
                      (json_int_t)p->applied_seq, "published_seq", (json_int_t)p->published_seq,
                      "behind", (json_int_t)behind, "lag_ms_p50", (json_int_t)p->lag_p50_ms,
                      "lag_ms_p99", (json_int_t)p->lag_p99_ms, "lag_ms_max",
                      (json_int_t)p->lag_max_ms, "applied_total", (json_int_t)p->applied_total,
                      "delay_ms", (json_int_t)p->delay_ms, "state", repl_state_name(p->state),
                      "rejected", rejected, "gap", gap, "rewinds", (json_int_t)p->rewinds,
                      "repair", repair, "acked_seq", (json_int_t)p->acked_seq));
    }
    char hlc[24];
    snprintf(hlc, sizeof hlc, "%llu", (unsigned long long)st.hlc);
    json_t *fanout =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "depth", (json_int_t)fs.depth, "depth_max",
                  (json_int_t)fs.depth_max, "jobs_done",
                  (json_int_t)fs.jobs_done, "deliveries", (json_int_t)fs.deliveries,
                  "latency_ms_p50", (json_int_t)fs.latency_p50_ms, "latency_ms_p99",
                  (json_int_t)fs.latency_p99_ms, "large_accounts", (json_int_t)fs.large_accounts);
    uint32_t delay = st.npeers ? st.peers[0].delay_ms : 0;
    json_t *gc_horizon = json_null();
    if (st.gc_horizon_ms) {
        char t[32];
        df_format_time(st.gc_horizon_ms, t);
        gc_horizon = json_string(t);
    }
    json_t *gc = json_pack("{s:o,s:I,s:I}", "horizon", gc_horizon, "tombstones_purged",
                           (json_int_t)st.tombstones_purged, "zombies_buried",
                           (json_int_t)st.zombies_buried);
    api_reply_json(r, 200,
                   json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:b,s:b,s:b,s:b,s:I,s:o,s:I,s:o}", "region",
                             r->ctx->cfg->region, "hlc", hlc, "seq", (json_int_t)st.seq,
                             "published_seq", (json_int_t)st.published_seq, "outbox_depth",
                             (json_int_t)st.outbox_depth, "fanout_depth", (json_int_t)fs.depth,
                             "fanout", fanout, "paused", st.paused, "log_connected", st.connected,
                             "log_authenticated", st.authenticated, "repairing", st.repairing, "log_rewrites",
                             (json_int_t)st.log_rewrites, "gc", gc,
                             "delay_ms", (json_int_t)delay, "peers", peers));
}
