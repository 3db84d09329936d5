/* region.c -- what a region says about itself and the cluster:
 * GET /v1/region, /v1/cluster, /v1/replication, /v1/digest, and the demo
 * control POST /v1/admin/replication. */
#include "api.h"

#include <stdio.h>
#include <string.h>

void api_region(api_req *r)
{
    const api_config *cfg = r->ctx->cfg;
    json_t *peers = json_array();
    for (size_t i = 0; i < cfg->repl.npeers; i++)
        json_array_append_new(peers, json_string(cfg->repl.peers[i]));
    char hlc[24];
    snprintf(hlc, sizeof hlc, "%llu", (unsigned long long)repl_hlc_peek(repl_clock(r->ctx->rp)));
    api_reply_json(r, 200,
                   json_pack("{s:s,s:o,s:s,s:b}", "region", cfg->region, "peers", peers, "hlc", hlc,
                             "replicating", cfg->redis[0] != '\0'));
}

void api_cluster(api_req *r)
{
    repl_region_info info[32];
    size_t n = repl_cluster(r->ctx->rp, info, 32);
    json_t *regions = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(regions, json_pack("{s:s,s:s,s:b}", "name", info[i].name, "url",
                                                 info[i].url, "authenticated",
                                                 info[i].authenticated));
    api_reply_json(r, 200, json_pack("{s:s,s:o}", "self", r->ctx->cfg->region, "regions", regions));
}

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
        for (int k = REPL_REJECT_NONE + 1; k < REPL_REJECT_N; k++)
            json_object_set_new(rejected, repl_reject_name((repl_reject)k),
                                json_integer((json_int_t)p->rejected[k]));
        json_array_append_new(
            peers,
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:o,s:o,s:I}", "name", p->name, "applied_seq",
                      (json_int_t)p->applied_seq, "published_seq", (json_int_t)p->published_seq,
                      "behind", (json_int_t)behind, "lag_ms_p50", (json_int_t)p->lag_p50_ms,
                      "lag_ms_p99", (json_int_t)p->lag_p99_ms, "lag_ms_max",
                      (json_int_t)p->lag_max_ms, "applied_total", (json_int_t)p->applied_total,
                      "delay_ms", (json_int_t)p->delay_ms, "state", repl_state_name(p->state),
                      "rejected", rejected, "gap", gap, "rewinds", (json_int_t)p->rewinds));
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
    api_reply_json(r, 200,
                   json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:b,s:b,s:b,s:I,s:I,s:o}", "region",
                             r->ctx->cfg->region, "hlc", hlc, "seq", (json_int_t)st.seq,
                             "published_seq", (json_int_t)st.published_seq, "outbox_depth",
                             (json_int_t)st.outbox_depth, "fanout_depth", (json_int_t)fs.depth,
                             "fanout", fanout, "paused", st.paused, "log_connected", st.connected,
                             "log_authenticated", st.authenticated, "log_rewrites",
                             (json_int_t)st.log_rewrites,
                             "delay_ms", (json_int_t)delay, "peers", peers));
}

void api_digest(api_req *r)
{
    char hex[33];
    uint64_t n;
    stg_digest(r->ctx->db, hex, &n);
    api_reply_json(r, 200, json_pack("{s:s,s:I}", "digest", hex, "records", (json_int_t)n));
}

void api_admin_replication(api_req *r)
{
    api_admin_body in;
    if (api_admin_or_4xx(r) < 0 || api_body_or_4xx(r, api_decode_admin, &in) < 0) return;
    if (in.has_delay && repl_set_delay(r->ctx->rp, in.peer[0] ? in.peer : NULL, in.delay_ms) < 0) {
        api_error(r, 404, "not_found", "no peer named \"%s\"", in.peer);
        return;
    }
    if (in.has_paused) repl_set_paused(r->ctx->rp, in.paused);
    api_replication(r);
}
