/* cluster.c -- GET /v1/cluster: the regions this one knows of, from their
 * announcements, and whether a key vouches for each. */
#include "api.h"

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
