/* metrics.c -- request counters by route and status, latency histograms,
 * and GET /metrics in the Prometheus text format. */
#include "api.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES API_ROUTES_MAX
#define NSTATUS 600
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof bounds / sizeof bounds[0])

struct api_metrics {
    _Atomic uint64_t status[MAX_ROUTES][NSTATUS];
    _Atomic uint64_t bucket[MAX_ROUTES][NBUCKETS + 1];
    _Atomic uint64_t sum_us[MAX_ROUTES];
};

struct api_metrics *api_metrics_new(void) { return xcalloc(1, sizeof(struct api_metrics)); }
void api_metrics_free(struct api_metrics *m) { free(m); }

void api_metrics_observe(struct api_metrics *m, int route, int status, uint64_t micros)
{
    if (!m || route < 0 || route >= MAX_ROUTES || status < 100 || status >= NSTATUS) return;
    atomic_fetch_add_explicit(&m->status[route][status], 1, memory_order_relaxed);
    size_t b = 0;
    double s = (double)micros / 1e6;
    while (b < NBUCKETS && s > bounds[b]) b++;
    atomic_fetch_add_explicit(&m->bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us[route], micros, memory_order_relaxed);
}

void api_metrics(api_req *r)
{
    struct api_metrics *m = r->ctx->metrics;
    api_buf b = {0};
    size_t nroutes = api_route_count() < MAX_ROUTES ? api_route_count() : MAX_ROUTES;
    api_buf_printf(&b, "# HELP driftfeed_http_requests_total HTTP requests by route and status.\n"
                       "# TYPE driftfeed_http_requests_total counter\n");
    for (size_t i = 0; i < nroutes; i++)
        for (int s = 100; s < NSTATUS; s++) {
            uint64_t v = atomic_load(&m->status[i][s]);
            if (v)
                api_buf_printf(&b,
                               "driftfeed_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                               api_route_name((int)i), s, (unsigned long long)v);
        }
    api_buf_printf(&b, "# HELP driftfeed_http_request_seconds Request latency by route.\n"
                       "# TYPE driftfeed_http_request_seconds histogram\n");
    for (size_t i = 0; i < nroutes; i++) {
        uint64_t cum = 0, total = 0;
        for (size_t k = 0; k <= NBUCKETS; k++) total += atomic_load(&m->bucket[i][k]);
        if (!total) continue;
        const char *name = api_route_name((int)i);
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += atomic_load(&m->bucket[i][k]);
            api_buf_printf(&b,
                           "driftfeed_http_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                           name, bounds[k], (unsigned long long)cum);
        }
        api_buf_printf(&b,
                       "driftfeed_http_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                       "driftfeed_http_request_seconds_sum{route=\"%s\"} %.6f\n"
                       "driftfeed_http_request_seconds_count{route=\"%s\"} %llu\n",
                       name, (unsigned long long)total, name,
                       (double)atomic_load(&m->sum_us[i]) / 1e6, name, (unsigned long long)total);
    }
    feed_stats fs;
    feed_get_stats(r->ctx->fd, &fs);
    api_buf_printf(
        &b,
        "# TYPE driftfeed_fanout_queue_depth gauge\ndriftfeed_fanout_queue_depth %llu\n"
        "# TYPE driftfeed_fanout_jobs_total counter\ndriftfeed_fanout_jobs_total %llu\n"
        "# TYPE driftfeed_fanout_deliveries_total counter\ndriftfeed_fanout_deliveries_total %llu\n"
        "# TYPE driftfeed_fanout_latency_ms gauge\n"
        "driftfeed_fanout_latency_ms{quantile=\"0.5\"} %llu\n"
        "driftfeed_fanout_latency_ms{quantile=\"0.99\"} %llu\n"
        "# TYPE driftfeed_large_accounts gauge\ndriftfeed_large_accounts %zu\n",
        (unsigned long long)fs.depth, (unsigned long long)fs.jobs_done,
        (unsigned long long)fs.deliveries, (unsigned long long)fs.latency_p50_ms,
        (unsigned long long)fs.latency_p99_ms, fs.large_accounts);
    api_streams_stats ss;
    api_streams_get_stats(r->ctx->streams, &ss);
    api_buf_printf(&b,
                   "# TYPE driftfeed_streams_open gauge\ndriftfeed_streams_open %d\n"
                   "# TYPE driftfeed_stream_users gauge\ndriftfeed_stream_users %d\n"
                   "# TYPE driftfeed_streams_refused_total counter\n"
                   "driftfeed_streams_refused_total %llu\n"
                   "# TYPE driftfeed_streams_evicted_total counter\n"
                   "driftfeed_streams_evicted_total %llu\n"
                   "# TYPE driftfeed_streams_rewoken_total counter\n"
                   "driftfeed_streams_rewoken_total %llu\n",
                   ss.open, ss.users, (unsigned long long)ss.refused,
                   (unsigned long long)ss.evicted, (unsigned long long)ss.rewoken);
    api_sessions_stats st;
    api_sessions_get_stats(r->ctx->sessions, &st);
    api_buf_printf(&b,
                   "# HELP driftfeed_session_waiting Requests suspended for a Session-Token or "
                   "acknowledgements.\n"
                   "# TYPE driftfeed_session_waiting gauge\ndriftfeed_session_waiting %llu\n"
                   "# HELP driftfeed_session_waits_total Requests whose Session-Token this region "
                   "had to wait for.\n"
                   "# TYPE driftfeed_session_waits_total counter\n"
                   "driftfeed_session_waits_total %llu\n"
                   "# TYPE driftfeed_session_caught_up_total counter\n"
                   "driftfeed_session_caught_up_total %llu\n"
                   "# TYPE driftfeed_session_timeouts_total counter\n"
                   "driftfeed_session_timeouts_total %llu\n"
                   "# TYPE driftfeed_session_tokens_refused_total counter\n"
                   "driftfeed_session_tokens_refused_total %llu\n"
                   "# HELP driftfeed_writes_by_ack_total Successful writes by ack level.\n"
                   "# TYPE driftfeed_writes_by_ack_total counter\n"
                   "driftfeed_writes_by_ack_total{ack=\"local\"} %llu\n"
                   "driftfeed_writes_by_ack_total{ack=\"quorum\"} %llu\n"
                   "driftfeed_writes_by_ack_total{ack=\"all\"} %llu\n"
                   "# HELP driftfeed_ack_timeouts_total Acknowledged writes answered 202.\n"
                   "# TYPE driftfeed_ack_timeouts_total counter\n"
                   "driftfeed_ack_timeouts_total %llu\n",
                   (unsigned long long)st.waiting, (unsigned long long)st.waits,
                   (unsigned long long)st.caught_up, (unsigned long long)st.timeouts,
                   (unsigned long long)st.refused, (unsigned long long)st.acks[0],
                   (unsigned long long)st.acks[1], (unsigned long long)st.acks[2],
                   (unsigned long long)st.ack_timeouts);
    api_buf_printf(&b, "# TYPE driftfeed_cache_hits_total counter\n"
                       "# TYPE driftfeed_cache_misses_total counter\n"
                       "# TYPE driftfeed_cache_bytes gauge\n");
    const struct {
        const char *name;
        const df_cache_counts *c;
    } caches[] = {{"posts", &fs.posts}, {"pages", &fs.pages}};
    for (size_t i = 0; i < sizeof caches / sizeof *caches; i++)
        api_buf_printf(&b,
                       "driftfeed_cache_hits_total{cache=\"%s\"} %llu\n"
                       "driftfeed_cache_misses_total{cache=\"%s\"} %llu\n"
                       "driftfeed_cache_bytes{cache=\"%s\"} %zu\n",
                       caches[i].name, (unsigned long long)caches[i].c->hits, caches[i].name,
                       (unsigned long long)caches[i].c->misses, caches[i].name, caches[i].c->bytes);
    /* Memory by owner: what a soak's RSS growth is made of. malloc's own
     * view: bytes handed out, and bytes it holds free (glibc's mallinfo2;
     * zeros where another allocator stands in, as in sanitizer builds). */
    stg_memory mem;
    stg_get_memory(r->ctx->db, &mem);
    struct mallinfo2 mi = mallinfo2();
    const struct {
        const char *part;
        uint64_t bytes;
    } parts[] = {{"memtables", mem.memtables},
                 {"table_readers", mem.table_readers},
                 {"block_cache", mem.block_cache},
                 {"block_cache_pinned", mem.block_cache_pinned},
                 {"malloc_in_use", mi.uordblks + mi.hblkhd},
                 {"malloc_free", mi.fordblks}};
    api_buf_printf(&b, "# HELP driftfeed_memory_bytes Memory by owner.\n"
                       "# TYPE driftfeed_memory_bytes gauge\n");
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        api_buf_printf(&b, "driftfeed_memory_bytes{part=\"%s\"} %llu\n", parts[i].part,
                       (unsigned long long)parts[i].bytes);
    api_buf_printf(&b, "# TYPE driftfeed_table_files gauge\ndriftfeed_table_files %llu\n",
                   (unsigned long long)mem.table_files);
    repl_status rs;
    repl_get_status(r->ctx->rp, &rs);
    api_buf_printf(
        &b,
        "# TYPE driftfeed_hlc gauge\ndriftfeed_hlc %llu\n"
        "# TYPE driftfeed_outbox_seq gauge\ndriftfeed_outbox_seq %llu\n"
        "# TYPE driftfeed_outbox_published_seq gauge\ndriftfeed_outbox_published_seq %llu\n"
        "# TYPE driftfeed_outbox_depth gauge\ndriftfeed_outbox_depth %llu\n"
        "# TYPE driftfeed_replication_paused gauge\ndriftfeed_replication_paused %d\n"
        "# TYPE driftfeed_log_authenticated gauge\ndriftfeed_log_authenticated %d\n"
        "# TYPE driftfeed_log_rewrites_total counter\ndriftfeed_log_rewrites_total %llu\n"
        "# TYPE driftfeed_tombstones_purged_total counter\ndriftfeed_tombstones_purged_total %llu\n"
        "# TYPE driftfeed_zombies_buried_total counter\ndriftfeed_zombies_buried_total %llu\n",
        (unsigned long long)rs.hlc, (unsigned long long)rs.seq,
        (unsigned long long)rs.published_seq, (unsigned long long)rs.outbox_depth,
        rs.paused ? 1 : 0, rs.authenticated ? 1 : 0, (unsigned long long)rs.log_rewrites,
        (unsigned long long)rs.tombstones_purged, (unsigned long long)rs.zombies_buried);
    api_buf_printf(&b, "# TYPE driftfeed_replication_applied_seq gauge\n"
                       "# TYPE driftfeed_replication_behind gauge\n"
                       "# TYPE driftfeed_replication_lag_ms gauge\n"
                       "# TYPE driftfeed_replication_applied_total counter\n"
                       "# TYPE driftfeed_replication_streaming gauge\n"
                       "# TYPE driftfeed_replication_rejected_total counter\n"
                       "# TYPE driftfeed_replication_gap_seqs gauge\n"
                       "# TYPE driftfeed_repair_rounds_total counter\n"
                       "# TYPE driftfeed_repair_records_sent_total counter\n"
                       "# TYPE driftfeed_repair_records_received_total counter\n"
                       "# TYPE driftfeed_repair_rejected_total counter\n"
                       "# TYPE driftfeed_repair_last_equal_at_seconds gauge\n");
    for (size_t i = 0; i < rs.npeers; i++) {
        const repl_peer_status *p = &rs.peers[i];
        uint64_t behind = p->published_seq > p->applied_seq ? p->published_seq - p->applied_seq : 0;
        api_buf_printf(&b,
                       "driftfeed_replication_applied_seq{peer=\"%s\"} %llu\n"
                       "driftfeed_replication_behind{peer=\"%s\"} %llu\n"
                       "driftfeed_replication_lag_ms{peer=\"%s\",quantile=\"0.5\"} %llu\n"
                       "driftfeed_replication_lag_ms{peer=\"%s\",quantile=\"0.99\"} %llu\n"
                       "driftfeed_replication_applied_total{peer=\"%s\"} %llu\n"
                       "driftfeed_replication_streaming{peer=\"%s\"} %d\n",
                       p->name, (unsigned long long)p->applied_seq, p->name,
                       (unsigned long long)behind, p->name, (unsigned long long)p->lag_p50_ms,
                       p->name, (unsigned long long)p->lag_p99_ms, p->name,
                       (unsigned long long)p->applied_total, p->name, p->state == REPL_STREAMING);
        /* At a gap: the seqs known missing (at least 1; to 0 is unknown). */
        uint64_t missing = p->state != REPL_GAP ? 0
                           : p->gap_to >= p->gap_from ? p->gap_to - p->gap_from + 1
                                                      : 1;
        api_buf_printf(&b, "driftfeed_replication_gap_seqs{peer=\"%s\"} %llu\n", p->name,
                       (unsigned long long)missing);
        api_buf_printf(&b,
                       "driftfeed_repair_rounds_total{peer=\"%s\"} %llu\n"
                       "driftfeed_repair_records_sent_total{peer=\"%s\"} %llu\n"
                       "driftfeed_repair_records_received_total{peer=\"%s\"} %llu\n"
                       "driftfeed_repair_rejected_total{peer=\"%s\"} %llu\n"
                       "driftfeed_repair_last_equal_at_seconds{peer=\"%s\"} %.3f\n",
                       p->name, (unsigned long long)p->repair_rounds, p->name,
                       (unsigned long long)p->repair_sent, p->name,
                       (unsigned long long)p->repair_received, p->name,
                       (unsigned long long)p->repair_rejected, p->name,
                       (double)p->repair_equal_at / 1000.0);
        for (int k = REPL_REJECT_NONE + 1; k < REPL_REJECT_N; k++)
            api_buf_printf(&b, "driftfeed_replication_rejected_total{peer=\"%s\",reason=\"%s\"} %llu\n",
                           p->name, repl_reject_name((repl_reject)k),
                           (unsigned long long)p->rejected[k]);
    }
    api_reply_buf(r, 200, &b, "text/plain; version=0.0.4");
}
