/* masto_instance.c -- GET /api/v1/instance and /api/v2/instance: what a
 * Mastodon client reads first (the version it checks for features, the
 * limits it enforces while one types). The counts are RocksDB's estimates
 * of this region's records. */
#include "api.h"

#include <string.h>

/* The version clients parse: a Mastodon version whose API this subset
 * follows, and what it really is. */
#define MASTO_VERSION "4.2.0 (compatible; driftfeed 1.0)"

/* The host[:port] of the region's URL. */
static const char *domain_of(api_ctx *ctx)
{
    const char *u = api_masto_base(ctx), *s = strstr(u, "://");
    return s ? s + 3 : u;
}

static json_t *statuses_limits(void)
{
    return json_pack("{s:i,s:i,s:i}", "max_characters", API_POST_MAX, "max_media_attachments", 0,
                     "characters_reserved_per_url", 23);
}

static json_t *other_limits(json_t *into)
{
    json_object_set_new(into, "accounts", json_pack("{s:i}", "max_featured_tags", 0));
    json_object_set_new(into, "statuses", statuses_limits());
    json_object_set_new(into, "media_attachments",
                        json_pack("{s:[],s:i,s:i,s:i,s:i,s:i}", "supported_mime_types",
                                  "image_size_limit", 0, "image_matrix_limit", 0,
                                  "video_size_limit", 0, "video_frame_rate_limit", 0,
                                  "video_matrix_limit", 0));
    json_object_set_new(into, "polls",
                        json_pack("{s:i,s:i,s:i,s:i}", "max_options", 0,
                                  "max_characters_per_option", 0, "min_expiration", 0,
                                  "max_expiration", 0));
    return into;
}

static json_t *title(api_ctx *ctx)
{
    char t[STG_ORIGIN_MAX + 16];
    snprintf(t, sizeof t, "driftfeed %s", ctx->cfg->region);
    return json_string(t);
}

#define DESCRIPTION "An eventually consistent feed: this region answers at once, others soon after."

void api_masto_instance_v1(api_req *r)
{
    api_ctx *ctx = r->ctx;
    json_int_t users = (json_int_t)stg_estimate_keys(ctx->db, STG_CF_USERS);
    json_int_t posts = (json_int_t)stg_estimate_keys(ctx->db, STG_CF_PROFILE);
    repl_region_info info[32];
    json_int_t regions = (json_int_t)repl_cluster(ctx->rp, info, 32);
    json_t *j = json_pack(
        "{s:s,s:o,s:s,s:s,s:s,s:s,s:{s:s},s:{s:I,s:I,s:I},s:n,s:[s],s:b,s:b,s:b,s:o,s:n,s:[]}",
        "uri", domain_of(ctx), "title", title(ctx), "short_description", DESCRIPTION,
        "description", DESCRIPTION, "email", "", "version", MASTO_VERSION, "urls", "streaming_api",
        api_masto_base(ctx), "stats", "user_count", users, "status_count", posts, "domain_count",
        regions, "thumbnail", "languages", "en", "registrations", 1, "approval_required", 0,
        "invites_enabled", 0, "configuration", other_limits(json_object()), "contact_account",
        "rules");
    api_masto_reply(r, 200, j);
}

void api_masto_instance_v2(api_req *r)
{
    api_ctx *ctx = r->ctx;
    json_int_t users = (json_int_t)stg_estimate_keys(ctx->db, STG_CF_USERS);
    json_t *conf = other_limits(json_object());
    json_object_set_new(conf, "urls", json_pack("{s:s}", "streaming", api_masto_base(ctx)));
    json_object_set_new(conf, "translation", json_pack("{s:b}", "enabled", 0));
    json_t *thumb = json_pack("{s:s+}", "url", api_masto_base(ctx), "/favicon.svg");
    json_t *j = json_pack(
        "{s:s,s:o,s:s,s:s,s:{s:{s:I}},s:o,s:[s],s:o,s:{s:b,s:b,s:n},s:{s:s,s:n},s:[]}",
        "domain", domain_of(ctx), "title", title(ctx), "version", MASTO_VERSION,
        "description", DESCRIPTION, "usage", "users",
        "active_month", users, "thumbnail", thumb, "languages", "en", "configuration", conf,
        "registrations", "enabled", 1, "approval_required", 0, "message", "contact", "email", "",
        "account", "rules");
    api_masto_reply(r, 200, j);
}
