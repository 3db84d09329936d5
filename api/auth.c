/* auth.c -- bearer tokens: minting, hashing, checking; the admin gate.
 *
 * A token is "<user id>.<secret>", the secret 256 random bits in base64url.
 * Only BLAKE2b-256(secret) is stored, in the user record (so a token works
 * in every region the user has replicated to); checking compares hashes in
 * constant time. A token that names a user but is not theirs may be an
 * OAuth token (oauth.c), which says its scopes. */
#include "api.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void hash_secret(const char *secret, size_t n, char hex[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, n, NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

void api_token_new(const char *user_id, char token[API_TOKEN_MAX], char hash[65])
{
    unsigned char raw[32];
    char secret[64];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(secret, sizeof secret, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(token, API_TOKEN_MAX, "%s.%s", user_id, secret);
    hash_secret(secret, strlen(secret), hash);
}

static int unauthorized(api_req *r, const char *msg)
{
    api_error(r, 401, "unauthorized", "%s", msg);
    return -1;
}

static const char *bearer(api_req *r, bool allow_query)
{
    const char *h = api_header(r, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') h++;
        return h;
    }
    return allow_query ? api_query(r, "access_token") : NULL;
}

/* The stored token hash of user id into hash; 0, DF_ENOTFOUND or DF_E*.
 * A user's token hash never changes once the user exists (there is no
 * rotation), so the hashes looked up stay in ctx->tokens and need no
 * forgetting; that skips a read and a JSON parse per request. */
static int stored_hash(api_req *r, const char *id, size_t idlen, char hash[65])
{
    const char *cached;
    size_t len;
    uint64_t gen;
    df_cache_ref *ref;
    if (df_cache_hold(r->ctx->tokens, id, idlen, &cached, &len, &gen, &ref)) {
        bool ok = len == 64;
        if (ok) {
            memcpy(hash, cached, 64);
            hash[64] = '\0';
        }
        df_cache_release(ref);
        if (ok) return 0;
    }
    stg_record rec;
    char *raw;
    int rc = stg_record_load(r->ctx->db, STG_KIND_USER, id, idlen, &rec, &raw);
    if (rc < 0) return rc;
    json_t *u = rec.tombstone ? NULL : api_payload_json(&rec);
    free(raw);
    const char *stored = u ? json_string_value(json_object_get(u, "token_hash")) : NULL;
    rc = stored && strlen(stored) == 64 ? 0 : DF_ENOTFOUND;
    if (rc == 0) {
        memcpy(hash, stored, 65);
        df_cache_put(r->ctx->tokens, id, idlen, stored, 64, gen);
    }
    json_decref(u);
    return rc;
}

/* Checks tok as an account token: 0 with its user in id; DF_EINVAL when
 * it names a user but is not that user's token (an OAuth token may still
 * be); DF_ENOTFOUND when it is not shaped like one or names no user. */
static int account_token(api_req *r, const char *tok, char id[STG_ID_MAX + 1])
{
    const char *dot = strrchr(tok, '.');
    size_t idlen = dot ? (size_t)(dot - tok) : 0;
    if (!dot || !stg_valid_user_id(tok, idlen) || strlen(dot + 1) != 43) return DF_ENOTFOUND;
    char stored[65], hex[65];
    memcpy(id, tok, idlen);
    id[idlen] = '\0';
    int rc = stored_hash(r, id, idlen, stored);
    if (rc < 0) return rc;
    hash_secret(dot + 1, 43, hex);
    return sodium_memcmp(stored, hex, 64) == 0 ? 0 : DF_EINVAL;
}

int api_token_check(api_req *r, const char *tok, char user[STG_ID_MAX + 1])
{
    int rc = account_token(r, tok, user);
    return rc == DF_EINVAL ? DF_ENOTFOUND : rc;
}

int api_auth_or_401(api_req *r, bool allow_query)
{
    const char *tok = bearer(r, allow_query);
    if (!tok || !*tok) return unauthorized(r, "a bearer token is required");
    char id[STG_ID_MAX + 1];
    int rc = account_token(r, tok, id);
    if (rc == 0) {
        memcpy(r->user, id, strlen(id) + 1);
        r->scopes = API_SCOPE_ALL;
        return 0;
    }
    /* Not the account's own token: an OAuth token of this region, then. */
    api_oauth_grant g;
    if (rc == DF_EINVAL) rc = api_oauth_verify(r->ctx, tok, &g);
    if (rc == 0) {
        memcpy(r->user, g.user, strlen(g.user) + 1);
        r->scopes = g.scopes;
        return 0;
    }
    if (rc == DF_ENOTFOUND && !strncmp(tok, API_OAUTH_APP_PREFIX ".", sizeof API_OAUTH_APP_PREFIX))
        return unauthorized(r, "this is an app token: it acts for no account");
    if (rc == DF_ENOTFOUND || rc == DF_EINVAL) return unauthorized(r, "invalid token");
    api_error_df(r, rc, "user");
    return -1;
}

int api_scope_or_403(api_req *r, unsigned need)
{
    if (r->scopes & need) return 0;
    api_error(r, 403, "insufficient_scope", "This action is outside the authorized scopes");
    return -1;
}

static bool from_loopback(api_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return false;
    if (ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ci->client_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ci->client_addr;
        return memcmp(&in6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0;
    }
    return false;
}

int api_admin_or_4xx(api_req *r)
{
    const api_config *cfg = r->ctx->cfg;
    if (!cfg->demo && !cfg->admin_token[0]) {
        api_error(r, 404, "not_found",
                  "admin endpoints are off (start with --demo or --admin-token)");
        return -1;
    }
    const char *tok = bearer(r, false);
    if (cfg->admin_token[0] && tok && strlen(tok) == strlen(cfg->admin_token) &&
        sodium_memcmp(tok, cfg->admin_token, strlen(tok)) == 0)
        return 0;
    if (cfg->demo && from_loopback(r)) return 0;
    return unauthorized(r, "an admin token is required");
}
