/* router.c -- the route table: method + path pattern -> handler. */
#include "api.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct route {
    int method;
    const char *pattern; /* segments; "*" matches one non-empty segment */
    const char *name; /* for metrics */
    void (*handler)(api_req *r);
} route;

static const route routes[] = {
    {API_POST, "/v1/users", "users_create", api_users_create},
    {API_GET, "/v1/users/*", "users_get", api_users_get},
    {API_GET, "/v1/users/*/following", "users_following", api_users_following},
    {API_GET, "/v1/users/*/followers", "users_followers", api_users_followers},
    {API_GET, "/v1/users/*/posts", "profile", api_profile},
    {API_PUT, "/v1/following/*", "follow", api_follow},
    {API_DELETE, "/v1/following/*", "unfollow", api_unfollow},
    {API_POST, "/v1/posts", "posts_create", api_posts_create},
    {API_GET, "/v1/posts/*", "posts_get", api_posts_get},
    {API_DELETE, "/v1/posts/*", "posts_delete", api_posts_delete},
    {API_GET, "/v1/timeline", "timeline", api_timeline},
    {API_POST, "/v1/messages", "messages_send", api_messages_send},
    {API_GET, "/v1/messages/*", "messages_list", api_messages_list},
    {API_GET, "/v1/conversations", "conversations", api_conversations},
    {API_GET, "/v1/stream", "stream", api_stream},
    {API_GET, "/v1/region", "region", api_region},
    {API_GET, "/v1/cluster", "cluster", api_cluster},
    {API_GET, "/v1/replication", "replication", api_replication},
    {API_GET, "/v1/digest", "digest", api_digest},
    {API_POST, "/v1/admin/replication", "admin_replication", api_admin_replication},
    {API_DELETE, "/v1/admin/peers/*", "admin_peer_remove", api_admin_peer_remove},
    /* The Mastodon subset (masto*.c): fixed names before the "*" beside them. */
    {API_GET, "/api/v1/instance", "masto_instance", api_masto_instance_v1},
    {API_GET, "/api/v2/instance", "masto_instance_v2", api_masto_instance_v2},
    {API_GET, "/api/v1/accounts/verify_credentials", "masto_verify_credentials",
     api_masto_verify_credentials},
    {API_GET, "/api/v1/accounts/lookup", "masto_lookup", api_masto_lookup},
    {API_GET, "/api/v1/accounts/relationships", "masto_relationships", api_masto_relationships},
    {API_GET, "/api/v1/accounts/*", "masto_account", api_masto_account_get},
    {API_GET, "/api/v1/accounts/*/statuses", "masto_account_statuses",
     api_masto_account_statuses},
    {API_GET, "/api/v1/accounts/*/followers", "masto_followers", api_masto_followers},
    {API_GET, "/api/v1/accounts/*/following", "masto_following", api_masto_following},
    {API_POST, "/api/v1/accounts/*/follow", "masto_follow", api_masto_follow},
    {API_POST, "/api/v1/accounts/*/unfollow", "masto_unfollow", api_masto_unfollow},
    {API_POST, "/api/v1/statuses", "masto_status_create", api_masto_status_create},
    {API_GET, "/api/v1/statuses/*", "masto_status", api_masto_status_get},
    {API_DELETE, "/api/v1/statuses/*", "masto_status_delete", api_masto_status_delete},
    {API_GET, "/api/v1/timelines/home", "masto_home", api_masto_home},
    {API_GET, "/api/v1/conversations", "masto_conversations", api_masto_conversations},
    {API_GET, "/api/v1/streaming/user", "masto_stream_user", api_masto_stream_user},
    {API_GET, "/api/v1/streaming", "masto_stream", api_masto_stream},
    {API_POST, "/api/v1/apps", "apps_create", api_apps_create},
    {API_GET, "/api/v1/apps/verify_credentials", "apps_verify", api_apps_verify},
    {API_GET, "/oauth/authorize", "oauth_authorize_page", api_oauth_authorize_get},
    {API_POST, "/oauth/authorize", "oauth_authorize", api_oauth_authorize_post},
    {API_POST, "/oauth/token", "oauth_token", api_oauth_token},
    {API_POST, "/oauth/revoke", "oauth_revoke", api_oauth_revoke},
    {API_GET, "/health", "health", api_health},
    {API_GET, "/metrics", "metrics", api_metrics},
    {API_GET, "/", "static", api_static},
    {API_GET, "/*", "static", api_static},
};
#define NROUTES (sizeof routes / sizeof routes[0])
_Static_assert(NROUTES + 1 <= API_ROUTES_MAX, "metrics keep API_ROUTES_MAX routes");

size_t api_route_count(void) { return NROUTES + 1; } /* + "unmatched" */

const char *api_route_name(int i)
{
    return i >= 0 && (size_t)i < NROUTES ? routes[i].name : "unmatched";
}

static const char *method_name(int m)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "OTHER"};
    return names[m];
}

#define MAX_SEGS 8

/* Cuts path (in place) at '/' into segments; returns how many, or -1 if
 * it does not start with '/' or has too many. "/" has none. */
static int split(char *path, char **segs)
{
    if (path[0] != '/') return -1;
    int n = 0;
    char *s = path + 1;
    if (*s == '\0') return 0;
    for (;;) {
        if (n == MAX_SEGS) return -1;
        segs[n++] = s;
        char *e = strchr(s, '/');
        if (!e) return n;
        *e = '\0';
        s = e + 1;
    }
}

static char pattern_buf[NROUTES][64];
static char *pattern_segs[NROUTES][MAX_SEGS];
static int pattern_n[NROUTES];
static pthread_once_t patterns_once = PTHREAD_ONCE_INIT;

static void split_patterns(void)
{
    for (size_t i = 0; i < NROUTES; i++) {
        snprintf(pattern_buf[i], sizeof pattern_buf[i], "%s", routes[i].pattern);
        pattern_n[i] = split(pattern_buf[i], pattern_segs[i]);
    }
}

static bool match(size_t i, char **segs, int n, const char **params)
{
    if (pattern_n[i] != n) return false;
    size_t np = 0;
    for (int k = 0; k < n; k++) {
        const char *p = pattern_segs[i][k];
        if (strcmp(p, "*") == 0) {
            if (!segs[k][0] || np == API_MAX_PARAMS) return false;
            params[np++] = segs[k];
        } else if (strcmp(p, segs[k]) != 0) {
            return false;
        }
    }
    return true;
}

int api_route_match(api_req *r, char *path, const char **allow)
{
    static __thread char allowbuf[64];
    pthread_once(&patterns_once, split_patterns);
    char *segs[MAX_SEGS];
    int n = split(path, segs);
    allowbuf[0] = '\0';
    *allow = allowbuf;
    if (n < 0) return -1;
    int found = -1;
    for (size_t i = 0; i < NROUTES; i++) {
        const char *params[API_MAX_PARAMS] = {0};
        if (!match(i, segs, n, params)) continue;
        if (routes[i].method == r->method ||
            (r->method == API_HEAD && routes[i].method == API_GET)) {
            memcpy(r->params, params, sizeof params);
            return (int)i;
        }
        found = -2;
        if (!strstr(allowbuf, method_name(routes[i].method)) &&
            strlen(allowbuf) + 10 < sizeof allowbuf) {
            if (allowbuf[0]) strcat(allowbuf, ", ");
            strcat(allowbuf, method_name(routes[i].method));
        }
    }
    return found;
}

void api_route_call(api_req *r, int i) { routes[i].handler(r); }
