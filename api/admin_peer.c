/* admin_peer.c -- DELETE /v1/admin/peers/{name}: decommission a peer
 * (admins only; answers as GET /v1/replication). deploy/cluster remove
 * calls it in every remaining region once they have applied all of the
 * region's log. */
#include "api.h"

#include <string.h>

void api_admin_peer_remove(api_req *r)
{
    if (api_admin_or_4xx(r) < 0) return;
    const char *name = r->params[0];
    if (!stg_valid_name(name, strlen(name), STG_ORIGIN_MAX)) {
        api_error(r, 400, "invalid_peer", "a region name is 1-32 of a-z, 0-9 and _");
        return;
    }
    int rc = repl_remove_peer(r->ctx->rp, name);
    if (rc == DF_ENOTFOUND) {
        api_error(r, 404, "not_found", "no peer named \"%s\"", name);
        return;
    }
    if (rc < 0) {
        api_error(r, 503, "unavailable", "the store could not record the removal; retry");
        return;
    }
    api_replication(r);
}
