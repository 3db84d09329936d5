/* posts.c -- POST /v1/posts.
 *
 * Idempotency-Key: the first POST with a key stores (author, key) -> entry
 * in the same batch as the post. Until the entry's deadline a repeat with
 * the same body answers the same post, one with another body 422. Past
 * the deadline the entry counts as absent (the next POST with the key
 * makes a new post and replaces it), and compaction drops it
 * (api_idem_sweep). Keys are serialised by a small lock array of their
 * own, so two concurrent requests with one key create one post.
 *
 * Entry: u8 format (IDEM_FORMAT) | u64 deadline, wall-clock ms, big-endian
 * | BLAKE2b-256 of the body (body_hash) | post id. The deadline is set from
 * --idempotency-window-s when the key is first used, so the sweep, which
 * runs without the config, agrees with reads. The first format was the
 * bare post id: such an entry matches any body, and its deadline is its
 * post's time + API_IDEM_WINDOW_S. */
#include "api.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_MAX 128
#define IDEM_LOCKS 64
#define IDEM_FORMAT 2
#define IDEM_HASH 32
#define IDEM_HEAD (1 + 8 + IDEM_HASH)

static pthread_mutex_t idem_locks[IDEM_LOCKS] = {[0 ... IDEM_LOCKS - 1] =
                                                     PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *idem_lock(const char *k, size_t n)
{
    return &idem_locks[df_hash32(k, n) % IDEM_LOCKS];
}

typedef struct idem_entry {
    uint64_t deadline_ms;
    bool has_hash; /* false: first format, any body matches */
    unsigned char hash[IDEM_HASH];
    const char *post_id; /* into the stored value */
    size_t idlen;
} idem_entry;

/* Decodes a stored entry into e. Returns 0 or DF_ECORRUPT. */
static int idem_decode(const char *v, size_t n, idem_entry *e)
{
    stg_version ver;
    if (n > IDEM_HEAD && (unsigned char)v[0] == IDEM_FORMAT) {
        e->deadline_ms = stg_key_get_u64(v + 1);
        e->has_hash = true;
        memcpy(e->hash, v + 9, IDEM_HASH);
        e->post_id = v + IDEM_HEAD;
        e->idlen = n - IDEM_HEAD;
    } else if (stg_parse_id(v, n, &ver) == 0) {
        e->deadline_ms = repl_hlc_ms(ver.hlc) + API_IDEM_WINDOW_S * 1000ULL;
        e->has_hash = false;
        e->post_id = v;
        e->idlen = n;
    } else {
        return DF_ECORRUPT;
    }
    return stg_valid_id(e->post_id, e->idlen) ? 0 : DF_ECORRUPT;
}

/* What the entry for a new post holds; render_post fills in its value. */
typedef struct idem {
    const char *key;
    size_t klen;
    uint64_t deadline_ms;
    unsigned char hash[IDEM_HASH];
    char value[IDEM_HEAD + STG_ID_MAX];
} idem;

/* A new post, named and dated by the version the commit stamps on it. */
typedef struct new_post {
    const char *text;
    char id[STG_ID_MAX + 1];
    char *payload; /* free() */
    idem *ik; /* NULL without an Idempotency-Key */
    repl_local *w; /* whose extra put (the entry) is complete once rendered */
} new_post;

static int render_post(void *arg, stg_record *rec)
{
    new_post *np = arg;
    char created[32];
    api_version_names(&rec->ver, np->id, created);
    /* Written out rather than packed and dumped by jansson, which cost a
     * twentieth of a post. */
    api_buf b = {0};
    api_buf_append(&b, "{\"id\":", 6);
    api_buf_json_string(&b, np->id);
    api_buf_append(&b, ",\"author\":", 10);
    api_buf_json_text(&b, rec->owner, rec->ownerlen);
    api_buf_append(&b, ",\"text\":", 8);
    api_buf_json_string(&b, np->text);
    api_buf_append(&b, ",\"created_at\":", 14);
    api_buf_json_string(&b, created);
    api_buf_append(&b, ",\"region\":", 10);
    api_buf_json_string(&b, rec->ver.origin);
    api_buf_append(&b, "}", 1);
    np->payload = b.p;
    rec->payload = b.p;
    rec->paylen = b.len;
    rec->key = np->id;
    rec->keylen = strlen(np->id);
    if (np->ik) {
        idem *ik = np->ik;
        ik->value[0] = IDEM_FORMAT;
        stg_key_u64(ik->value + 1, ik->deadline_ms);
        memcpy(ik->value + 9, ik->hash, IDEM_HASH);
        memcpy(ik->value + IDEM_HEAD, np->id, rec->keylen);
        np->w->extra_vlen = IDEM_HEAD + rec->keylen;
    }
    return 0;
}

/* The body's fingerprint: everything in it that shapes the post (the
 * text), so the same request spelled differently (spacing, escapes) is
 * still the same body. */
static void body_hash(const char *text, unsigned char out[IDEM_HASH])
{
    crypto_generichash(out, IDEM_HASH, (const unsigned char *)text, strlen(text), NULL, 0);
}

bool api_idem_sweep(stg_db *db, const char *key, size_t klen, stg_sweep_memo *memo)
{
    /* The sweep sees the key only: read its newest value. If that one is
     * past its deadline, so is every older one; what does not decode is
     * kept (reads treat it as absent). */
    char *v;
    size_t vl;
    if (stg_get(db, STG_CF_IDEM, key, klen, &v, &vl) < 0) return false;
    idem_entry e;
    bool expired = idem_decode(v, vl, &e) == 0 && df_now_ms() >= e.deadline_ms;
    free(v);
    return expired;
}

static void create(api_req *r, const char *text, idem *ik, api_record_reply reply)
{
    stg_record rec = {.kind = STG_KIND_POST, .owner = r->user, .ownerlen = strlen(r->user)};
    repl_local w = {.render = render_post};
    new_post np = {.text = text, .ik = ik, .w = &w};
    w.arg = &np;
    if (ik) {
        w.extra_cf = STG_CF_IDEM;
        w.extra_key = ik->key;
        w.extra_klen = ik->klen;
        w.extra_val = ik->value;
    }
    int rc = repl_write(r->ctx->rp, &rec, &w);
    if (rc < 0)
        api_error_df(r, rc, "post");
    else
        reply(r, 201, &rec);
    free(np.payload);
}

void api_post_publish(api_req *r, const char *text, const char *key, api_record_reply reply)
{
    if (!key) {
        create(r, text, NULL, reply);
        return;
    }
    size_t kn = strlen(key);
    bool ok = kn > 0 && kn <= IDEM_MAX;
    for (size_t i = 0; i < kn && ok; i++) ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!ok) {
        api_error(r, 400, "invalid_idempotency_key",
                  "Idempotency-Key must be 1..128 visible ASCII characters");
        return;
    }
    char ikey[STG_ID_MAX + IDEM_MAX + 2], *v;
    size_t vl;
    int il = stg_key_join(ikey, sizeof ikey, r->user, strlen(r->user), key, kn);
    idem ik = {.key = ikey, .klen = (size_t)il};
    body_hash(text, ik.hash);
    pthread_mutex_t *mu = idem_lock(ikey, (size_t)il);
    pthread_mutex_lock(mu);
    uint64_t now = df_now_ms();
    int rc = stg_get(r->ctx->db, STG_CF_IDEM, ikey, (size_t)il, &v, &vl);
    idem_entry e = {0};
    bool live = rc == 0 && idem_decode(v, vl, &e) == 0 && now < e.deadline_ms;
    if (live && e.has_hash && memcmp(e.hash, ik.hash, IDEM_HASH) != 0) {
        api_error(r, 422, "idempotency_key_reused",
                  "this Idempotency-Key was used for a post with another body; "
                  "use a new key for a new post");
    } else if (live) {
        api_reply_post_with(r, 201, e.post_id, e.idlen, reply);
    } else if (rc == 0 || rc == DF_ENOTFOUND) {
        ik.deadline_ms = now + (uint64_t)r->ctx->cfg->idem_window_s * 1000;
        create(r, text, &ik, reply);
    } else {
        api_error_df(r, rc, "post");
    }
    if (rc == 0) free(v);
    pthread_mutex_unlock(mu);
}

void api_posts_create(api_req *r)
{
    if (api_auth_or_401(r, false) < 0 || api_scope_or_403(r, API_SCOPE_WRITE) < 0 ||
        api_rate_or_429(r) < 0)
        return;
    api_post_body in;
    if (api_body_or_4xx(r, api_decode_post, &in) < 0) return;
    api_post_publish(r, in.text, api_header(r, "Idempotency-Key"), api_reply_record);
}
