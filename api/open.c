/* open.c -- a region's parts, opened and closed in dependency order:
 * storage, fan-out, replication, then the API's own state. main() and the
 * whole-request fuzz target run the same region. */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int mkdir_p(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int api_open(api_ctx *ctx, const api_config *cfg)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = cfg;
    if (mkdir_p(cfg->data) < 0) {
        df_log(DF_LOG_ERROR, "cannot create %s: %s", cfg->data, strerror(errno));
        return DF_EIO;
    }
    stg_options so = {.sync = cfg->sync,
                      .cache_mb = (size_t)cfg->cache_mb,
                      .memtable_mb = (size_t)cfg->memtable_mb,
                      .stagger = df_hash32(cfg->region, strlen(cfg->region)),
                      .sweep[STG_CF_HOME] = feed_home_sweep,
                      .sweep[STG_CF_IDEM] = api_idem_sweep};
    int rc = stg_open(cfg->data, &so, &ctx->db);
    if (rc < 0) return rc;
    feed_config fc = {.workers = cfg->fanout_workers,
                      .large_threshold = cfg->large_threshold,
                      .timeline_cap = cfg->timeline_cap,
                      .queue_max = cfg->queue_max,
                      .post_cache_mb = cfg->post_cache_mb,
                      .page_cache_mb = cfg->page_cache_mb ? cfg->page_cache_mb : -1};
    if ((rc = feed_open(&ctx->fd, ctx->db, &fc)) < 0) goto fail;
    if ((rc = repl_open(&ctx->rp, ctx->db, ctx->fd, &cfg->repl)) < 0) goto fail;
    ctx->metrics = api_metrics_new();
    ctx->limits = api_limits_new(cfg);
    ctx->tokens = df_cache_new(256 * 1024, 64 << 20);
    ctx->oauth = api_oauth_new();
    ctx->streams = api_streams_new(ctx);
    ctx->sessions = api_sessions_new(ctx);
    if ((rc = feed_start(ctx->fd)) < 0 || (rc = repl_start(ctx->rp)) < 0) goto fail;
    return 0;
fail:
    api_close(ctx);
    return rc;
}

void api_close(api_ctx *ctx)
{
    api_sessions_stop(ctx->sessions); /* no request waits on the engine any more */
    repl_close(ctx->rp); /* stops subscribers before the feed they enqueue into */
    ctx->rp = NULL;
    feed_close(ctx->fd); /* and its workers before the streams they tell */
    api_streams_free(ctx->streams); /* each of these takes NULL */
    api_sessions_free(ctx->sessions);
    api_limits_free(ctx->limits);
    api_metrics_free(ctx->metrics);
    df_cache_free(ctx->tokens);
    api_oauth_free(ctx->oauth);
    stg_close(ctx->db);
    memset(ctx, 0, sizeof *ctx);
}
