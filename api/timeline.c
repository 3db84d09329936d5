/* timeline.c -- GET /v1/timeline (home) and GET /v1/users/{id}/posts
 * (profile): pages of posts, newest first, from the feed module. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

static void reply(api_req *r, int rc, feed_page *page)
{
    if (rc == DF_EINVAL)
        api_error(r, 400, "invalid_cursor", "invalid cursor");
    else if (rc < 0)
        api_error_df(r, rc, "timeline");
    else
        api_reply_page(r, page);
    feed_page_free(page);
}

/* A page comes from the feed's kept pages when it can, and is kept after
 * it is rendered (feed_home_cached). */
void api_timeline(api_req *r)
{
    int limit;
    if (api_auth_or_401(r, false) < 0 || api_limit_or_400(r, &limit) < 0) return;
    feed *fd = r->ctx->fd;
    const char *cursor = api_cursor(r);
    feed_stamp stamp;
    const char *kept;
    size_t len;
    df_cache_ref *ref;
    if (feed_home_cached(fd, r->user, cursor, limit, &kept, &len, &ref, &stamp)) {
        api_reply_held(r, kept, len, ref);
        return;
    }
    api_buf b = {0};
    feed_page page;
    int rc = feed_home(fd, r->user, cursor, limit, &page);
    if (rc < 0) {
        reply(r, rc, &page);
        return;
    }
    api_render_page(&b, &page);
    feed_page_free(&page);
    feed_home_keep(fd, r->user, cursor, limit, &stamp, b.p, b.len);
    api_reply_buf(r, 200, &b, "application/json");
}

void api_profile(api_req *r)
{
    int limit;
    if (api_user_param_or_4xx(r) < 0 || api_limit_or_400(r, &limit) < 0) return;
    feed_page page;
    reply(r, feed_profile(r->ctx->fd, r->params[0], api_cursor(r), limit, &page), &page);
}
