/* oauth.c -- OAuth access tokens and authorization codes: the region
 * secret, minting and checking tokens, revocation, the pending codes.
 *
 * DESIGN. Access tokens are stateless: a token carries what it grants
 * and a MAC made with the region secret, so checking one costs a hash
 * and one point read (its revocation key), not a lookup table.
 *
 *   user token  "<user id>.<43 base64url chars>"  (the shape of an account
 *               token, so everything that splits tokens at the last '.'
 *               still finds the user)
 *   app token   "~app.<43 base64url chars>"  (client_credentials: acts for
 *               no user; "~app" can never be a user id)
 *
 * The 43 characters are 32 bytes, big-endian fields:
 *   [0]      format: 1 user token, 2 app token
 *   [1]      API_SCOPE_* bits the token grants
 *   [2..6)   issue time, u32 seconds since the epoch (until 2106)
 *   [6..10)  the tag of the app it was issued to (oauth_apps.c)
 *   [10..16) 48 random bits: with the tag, the token's id
 *   [16..32) BLAKE2b-128 keyed with the region secret over
 *            "driftfeed oauth token 1" \0 region \0 user id ("" for an
 *            app token) \0 bytes [0..16)
 * Only the region that issued a token can check it (its secret never
 * leaves it), so an OAuth token works in that region only, as a token of
 * a Mastodon instance does; account tokens keep working everywhere.
 * Revoking writes STG_CF_META "oauth/revoked/<hex of bytes 6..16>",
 * which every check looks for.
 *
 * The region secret is 32 random bytes under STG_CF_META "oauth/secret",
 * made on first use and written synced before any token depends on it.
 *
 * Authorization codes live only in memory, in a ring of CODES_MAX slots
 * under one mutex: 256 random bits each (only their hash is kept), single
 * use, ten minutes; when the ring is full the oldest code is dropped. A
 * restart forgets pending codes: the user signs in again. A redeemed
 * code stays in its slot until it expires, so a second redemption is
 * recognised and revokes the token the first one got (RFC 6749 4.1.2). */
#include "api.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_KEY "oauth/secret"
#define REVOKED_PREFIX "oauth/revoked/"
#define CODES_MAX 4096
#define CODE_TTL_MS (10 * 60 * 1000)
#define MAC_LEN 16
#define RAW_LEN 32

enum { FORMAT_USER = 1, FORMAT_APP = 2 };

typedef struct code_slot {
    unsigned char hash[32]; /* BLAKE2b-256 of the code; all zero when free */
    uint64_t expires_ms; /* monotonic */
    bool redeemed;
    api_oauth_code c;
    api_oauth_grant issued; /* after redemption: the grant it got */
} code_slot;

struct api_oauth {
    pthread_mutex_t mu; /* secret loading; the code ring */
    atomic_bool have_secret;
    unsigned char secret[32];
    code_slot *codes;
    size_t next; /* the slot the next code takes (the oldest) */
};

struct api_oauth *api_oauth_new(void)
{
    struct api_oauth *o = xcalloc(1, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    atomic_init(&o->have_secret, false);
    o->codes = xcalloc(CODES_MAX, sizeof *o->codes);
    return o;
}

void api_oauth_free(struct api_oauth *o)
{
    if (!o) return;
    for (size_t i = 0; i < CODES_MAX; i++) api_oauth_code_clear(&o->codes[i].c);
    free(o->codes);
    pthread_mutex_destroy(&o->mu);
    sodium_memzero(o->secret, sizeof o->secret);
    free(o);
}

/* ---- The region secret ----------------------------------------------------------------- */

static int region_secret(api_ctx *ctx, const unsigned char **out)
{
    struct api_oauth *o = ctx->oauth;
    *out = o->secret;
    if (atomic_load_explicit(&o->have_secret, memory_order_acquire)) return 0;
    pthread_mutex_lock(&o->mu);
    int rc = 0;
    if (!atomic_load_explicit(&o->have_secret, memory_order_relaxed)) {
        char *v;
        size_t vl;
        rc = stg_get(ctx->db, STG_CF_META, SECRET_KEY, strlen(SECRET_KEY), &v, &vl);
        if (rc == 0) {
            if (vl == sizeof o->secret)
                memcpy(o->secret, v, vl);
            else
                rc = DF_ECORRUPT;
            free(v);
        } else if (rc == DF_ENOTFOUND) {
            randombytes_buf(o->secret, sizeof o->secret);
            rc = stg_meta_put_sync(ctx->db, SECRET_KEY, o->secret, sizeof o->secret);
            if (rc == 0) df_log(DF_LOG_INFO, "oauth: made this region's token secret");
        }
        if (rc == 0)
            atomic_store_explicit(&o->have_secret, true, memory_order_release);
        else
            df_log(DF_LOG_ERROR, "oauth: the region secret: %s", df_strerror(rc));
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* ---- Tokens ------------------------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void mac(const unsigned char key[32], const char *region, const char *user,
                const unsigned char head[RAW_LEN - MAC_LEN], unsigned char out[MAC_LEN])
{
    static const char domain[] = "driftfeed oauth token 1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)domain, sizeof domain);
    crypto_generichash_update(&st, (const unsigned char *)region, strlen(region) + 1);
    crypto_generichash_update(&st, (const unsigned char *)user, strlen(user) + 1);
    crypto_generichash_update(&st, head, RAW_LEN - MAC_LEN);
    crypto_generichash_final(&st, out, MAC_LEN);
}

static void grant_of(const unsigned char raw[RAW_LEN], const char *user, api_oauth_grant *g)
{
    memset(g, 0, sizeof *g);
    snprintf(g->user, sizeof g->user, "%s", user);
    g->scopes = raw[1];
    g->issued_s = get_u32(raw + 2);
    g->app = get_u32(raw + 6);
    memcpy(g->revoke_key, REVOKED_PREFIX, sizeof REVOKED_PREFIX - 1);
    sodium_bin2hex(g->revoke_key + sizeof REVOKED_PREFIX - 1,
                   sizeof g->revoke_key - (sizeof REVOKED_PREFIX - 1), raw + 6, 10);
}

int api_oauth_mint(api_ctx *ctx, const char *user, unsigned scopes, uint32_t app,
                   char tok[API_TOKEN_MAX], api_oauth_grant *g)
{
    const unsigned char *key;
    int rc = region_secret(ctx, &key);
    if (rc < 0) return rc;
    unsigned char raw[RAW_LEN];
    raw[0] = user[0] ? FORMAT_USER : FORMAT_APP;
    raw[1] = (unsigned char)(scopes & API_SCOPE_ALL);
    put_u32(raw + 2, (uint32_t)(df_now_ms() / 1000));
    put_u32(raw + 6, app);
    randombytes_buf(raw + 10, 6);
    mac(key, repl_region(ctx->rp), user, raw, raw + RAW_LEN - MAC_LEN);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(tok, API_TOKEN_MAX, "%s.%s", user[0] ? user : API_OAUTH_APP_PREFIX, b64);
    grant_of(raw, user, g);
    return 0;
}

int api_oauth_verify(api_ctx *ctx, const char *tok, api_oauth_grant *g)
{
    const char *dot = strrchr(tok, '.');
    if (!dot || strlen(dot + 1) != 43) return DF_EINVAL;
    size_t plen = (size_t)(dot - tok);
    bool app = plen == strlen(API_OAUTH_APP_PREFIX) && !memcmp(tok, API_OAUTH_APP_PREFIX, plen);
    if (!app && !stg_valid_user_id(tok, plen)) return DF_EINVAL;
    unsigned char raw[RAW_LEN];
    size_t n;
    /* libsodium refuses non-canonical base64 (set bits past the end), so
     * one token has one spelling. */
    if (sodium_base642bin(raw, sizeof raw, dot + 1, 43, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != RAW_LEN)
        return DF_EINVAL;
    if (raw[0] != (app ? FORMAT_APP : FORMAT_USER) || (raw[1] & ~API_SCOPE_ALL)) return DF_EINVAL;
    char user[STG_ID_MAX + 1] = "";
    if (!app) {
        memcpy(user, tok, plen);
        user[plen] = '\0';
    }
    const unsigned char *key;
    int rc = region_secret(ctx, &key);
    if (rc < 0) return rc;
    unsigned char want[MAC_LEN];
    mac(key, repl_region(ctx->rp), user, raw, want);
    if (sodium_memcmp(want, raw + RAW_LEN - MAC_LEN, MAC_LEN) != 0) return DF_EINVAL;
    grant_of(raw, user, g);
    char *v;
    size_t vl;
    rc = stg_get(ctx->db, STG_CF_META, g->revoke_key, strlen(g->revoke_key), &v, &vl);
    if (rc == 0) {
        free(v);
        return DF_EINVAL; /* revoked */
    }
    return rc == DF_ENOTFOUND ? 0 : rc;
}

int api_oauth_revoke_grant(api_ctx *ctx, const api_oauth_grant *g)
{
    char when[24];
    int n = snprintf(when, sizeof when, "%llu", (unsigned long long)(df_now_ms() / 1000));
    return stg_meta_put_sync(ctx->db, g->revoke_key, when, (size_t)n);
}

/* ---- Authorization codes ------------------------------------------------------------------ */

static void code_hash(const char *code, unsigned char h[32])
{
    crypto_generichash(h, 32, (const unsigned char *)code, strlen(code), NULL, 0);
}

void api_oauth_code_clear(api_oauth_code *c)
{
    free(c->redirect_uri);
    c->redirect_uri = NULL;
}

void api_oauth_code_issue(struct api_oauth *o, const api_oauth_code *c,
                          char code[API_OAUTH_KEY_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(code, API_OAUTH_KEY_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    pthread_mutex_lock(&o->mu);
    code_slot *s = &o->codes[o->next];
    o->next = (o->next + 1) % CODES_MAX;
    api_oauth_code_clear(&s->c); /* the oldest code goes, redeemed or not */
    code_hash(code, s->hash);
    s->expires_ms = df_mono_ms() + CODE_TTL_MS;
    s->redeemed = false;
    s->c = *c;
    s->c.redirect_uri = xstrdup(c->redirect_uri);
    memset(&s->issued, 0, sizeof s->issued);
    pthread_mutex_unlock(&o->mu);
}

/* The live slot of code; the caller holds o->mu. */
static code_slot *find_code(struct api_oauth *o, const char *code)
{
    unsigned char h[32];
    code_hash(code, h);
    uint64_t now = df_mono_ms();
    for (size_t i = 0; i < CODES_MAX; i++) {
        code_slot *s = &o->codes[i];
        if (s->c.redirect_uri && s->expires_ms > now && memcmp(s->hash, h, 32) == 0) return s;
    }
    return NULL;
}

int api_oauth_code_take(struct api_oauth *o, const char *code, api_oauth_code *out,
                        api_oauth_grant *reused)
{
    if (strlen(code) != API_OAUTH_KEY_LEN) return DF_ENOTFOUND;
    pthread_mutex_lock(&o->mu);
    code_slot *s = find_code(o, code);
    int rc = s ? 0 : DF_ENOTFOUND;
    if (s && s->redeemed) {
        *reused = s->issued;
        memset(&s->issued, 0, sizeof s->issued); /* revoked once is enough */
        rc = DF_ESTALE;
    } else if (s) {
        s->redeemed = true;
        *out = s->c;
        out->redirect_uri = xstrdup(s->c.redirect_uri);
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void api_oauth_code_redeemed(struct api_oauth *o, const char *code, const api_oauth_grant *g)
{
    pthread_mutex_lock(&o->mu);
    code_slot *s = find_code(o, code);
    if (s && s->redeemed) s->issued = *g;
    pthread_mutex_unlock(&o->mu);
}
