/* digest.c -- GET /v1/digest: the convergence digest of the region's records. */
#include "api.h"

void api_digest(api_req *r)
{
    char hex[33];
    uint64_t n;
    stg_digest(r->ctx->db, hex, &n);
    api_reply_json(r, 200, json_pack("{s:s,s:I}", "digest", hex, "records", (json_int_t)n));
}
