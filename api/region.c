/* region.c -- GET /v1/region: the region's name, its peers and its clock. */
#include "api.h"

#include <stdio.h>

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
