/* admin.c -- POST /v1/admin/replication: the demo's pause and distance
 * controls (admins only; answers as GET /v1/replication). */
#include "api.h"

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
