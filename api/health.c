/* health.c -- GET /health: liveness, cheap enough to be the load ceiling. */
#include "api.h"

void api_health(api_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    api_reply_raw(r, 200, body, sizeof body - 1, "application/json");
}
