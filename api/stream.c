/* stream.c -- GET /v1/stream: Server-Sent Events for the caller.
 *
 * DESIGN: events for a user go into that user's ring (the last RING events,
 * each with a per-user sequence number); every open stream of the user
 * reads the ring from its own position. Event ids are "<boot>.<seq>", so a
 * browser reconnecting with Last-Event-ID resumes exactly where it left
 * off; if the ring no longer reaches back that far (or the server
 * restarted) the stream says `reset` first, and the client reloads its
 * timeline -- nothing is silently skipped. A stream with nothing to send
 * suspends its connection (no thread spins); a push resumes it. A small
 * thread resumes idle streams for a heartbeat every HEARTBEAT_MS, which is
 * also how a vanished client is noticed; a client that closed its end is
 * noticed sooner, by that thread peeking at the parked stream's socket
 * once a second. A slow client only falls behind in its ring (bounded
 * memory) and gets `reset`.
 *
 * Limits: a user has at most --streams-per-user open streams; one more
 * ends the oldest, which is told so (`closed`, with a 60 s retry, so two
 * tabs past the cap do not take turns every second). The region has at
 * most --max-streams; past it a new stream is 503. A user's ring outlives
 * their last stream by RESUME_MS only, time enough for a reconnect to
 * resume with Last-Event-ID; after that a resume says `reset`.
 *
 * Events: `post` when a post reaches the caller's home timeline in this
 * region (data: the post with delivered_at), `delete` when a post by the
 * caller or someone the caller follows is deleted ({"id"}), `message` when
 * a direct message from or to the caller is stored here. */
#include "api.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RING 256
#define HEARTBEAT_MS 15000
#define BUCKETS 1024
#define RESUME_MS 5000
#define REWAKE_MS 1000

typedef struct event {
    uint64_t seq;
    const char *name;
    char *data;
} event;

typedef struct hub_user hub_user;
typedef struct api_stream sse;

struct hub_user {
    char id[STG_ID_MAX + 1];
    pthread_mutex_t mu;
    event ring[RING];
    uint64_t next_seq; /* seq of the next event; the ring holds [next_seq - RING, next_seq) */
    uint64_t base; /* the first seq of this user's ring: an id from before is not in it */
    sse *streams;
    int alive; /* stream objects not yet freed; the user lives while > 0 */
    int open; /* streams in the list that are not ending */
    uint64_t idle_since; /* mono ms when the last stream object went */
    hub_user *next;
};

struct api_stream {
    struct api_streams *hub;
    hub_user *u;
    struct MHD_Connection *conn;
    uint64_t pos; /* next seq to send */
    bool suspended, closed, hello, reset_first;
    bool evicted, bye; /* ended by a newer stream of its user; told so */
    bool hung_up; /* the client closed its end while the stream was parked */
    bool masto; /* Mastodon's events (update, delete, conversation) instead of ours */
    int fd; /* the connection's socket, peeked at only while suspended */
    int refs; /* the connection and the response each hold one */
    uint64_t last_write;
    uint64_t woken; /* mono ms of a resume not yet taken up by read_events, or 0 */
    bool rewoken; /* a resume was made again (logged once a stream) */
    char *pending; /* a formatted event not yet fully written */
    size_t pending_len, pending_off;
    sse *next;
};

struct api_streams {
    api_ctx *ctx;
    pthread_rwlock_t mu; /* guards the buckets (users come and go) */
    hub_user *buckets[BUCKETS];
    _Atomic int nusers;
    _Atomic int nstreams; /* open streams, against max_streams */
    _Atomic uint64_t pushed; /* events pushed and rings made, for base */
    _Atomic uint64_t refused, evictions;
    _Atomic uint64_t rewoken; /* resumes MHD did not take up, made again */
    int per_user, max_streams;
    uint64_t boot;
    pthread_t ticker;
    _Atomic bool stopping;
};

static unsigned bucket_of(const char *id) { return df_hash32(id, strlen(id)) % BUCKETS; }

/* Called with s->mu held (read or write). */
static hub_user *find_user(struct api_streams *s, const char *id)
{
    for (hub_user *u = s->buckets[bucket_of(id)]; u; u = u->next)
        if (strcmp(u->id, id) == 0) return u;
    return NULL;
}

/* Milliseconds from t to now; 0 when t is later (set by another thread
 * after this one read its clock). */
static uint64_t since(uint64_t now, uint64_t t) { return now > t ? now - t : 0; }

/* Resumes a suspended stream; called with its user's mutex held. */
static void wake(sse *st)
{
    if (st->suspended && !st->closed) {
        st->suspended = false;
        st->woken = df_mono_ms();
        MHD_resume_connection(st->conn);
    }
}

/* A resume MHD has not acted on within REWAKE_MS is made again: a resume
 * that races MHD's own handling of the connection just after it was
 * suspended can be lost (seen under load with libmicrohttpd 0.9.75), and
 * the stream would then sleep forever with events waiting. A resume of a
 * connection that is not suspended (a slow client's, whose socket is full)
 * costs one idle call of read_events. */
static void rewake_if_lost(struct api_streams *s, sse *st, uint64_t now)
{
    if (st->suspended || st->closed || !st->woken || since(now, st->woken) < REWAKE_MS) return;
    st->woken = now;
    atomic_fetch_add(&s->rewoken, 1);
    if (!st->rewoken)
        df_log(DF_LOG_WARN, "stream of %s: a resume was not acted on within %d ms; resuming again",
               st->u->id, REWAKE_MS);
    st->rewoken = true;
    MHD_resume_connection(st->conn);
}

/* Appends an event to the user's ring and wakes its streams. Takes data. */
static void push(struct api_streams *s, const char *user, const char *name, char *data)
{
    pthread_rwlock_rdlock(&s->mu);
    hub_user *u = find_user(s, user);
    if (u) {
        pthread_mutex_lock(&u->mu);
        event *e = &u->ring[u->next_seq % RING];
        free(e->data);
        e->seq = u->next_seq++;
        atomic_fetch_add(&s->pushed, 1);
        e->name = name;
        e->data = data;
        data = NULL;
        for (sse *st = u->streams; st; st = st->next) wake(st);
        pthread_mutex_unlock(&u->mu);
    }
    pthread_rwlock_unlock(&s->mu);
    free(data);
}

static bool has_user(struct api_streams *s, const char *user)
{
    if (atomic_load(&s->nusers) == 0) return false;
    pthread_rwlock_rdlock(&s->mu);
    bool found = find_user(s, user) != NULL;
    pthread_rwlock_unlock(&s->mu);
    return found;
}

/* ---- Event sources ------------------------------------------------------------------- */

static void on_delivered(struct api_streams *s, const char *user, const char *post_id,
                         uint64_t delivered_ms)
{
    if (!has_user(s, user)) return;
    stg_record rec;
    char *raw;
    if (stg_record_load(s->ctx->db, STG_KIND_POST, post_id, strlen(post_id), &rec, &raw) < 0)
        return;
    api_buf b = {0};
    if (!rec.tombstone) api_post_item(&b, &rec, delivered_ms);
    free(raw);
    if (b.p) push(s, user, "post", b.p);
}

static void on_record(struct api_streams *s, const stg_record *rec)
{
    if (rec->kind == STG_KIND_MESSAGE && !rec->tombstone) {
        json_t *m = api_payload_json(rec);
        const char *from = m ? json_string_value(json_object_get(m, "from")) : NULL;
        const char *to = m ? json_string_value(json_object_get(m, "to")) : NULL;
        if (from && to) {
            push(s, from, "message", xstrndup(rec->payload, rec->paylen));
            push(s, to, "message", xstrndup(rec->payload, rec->paylen));
        }
        json_decref(m);
    } else if (rec->kind == STG_KIND_POST && rec->tombstone) {
        char author[STG_ID_MAX + 1], data[STG_ID_MAX + 16];
        snprintf(author, sizeof author, "%.*s", (int)rec->ownerlen, rec->owner);
        snprintf(data, sizeof data, "{\"id\":\"%.*s\"}", (int)rec->keylen, rec->key);
        /* Collect the interested users first: no storage reads under locks. */
        char(*users)[STG_ID_MAX + 1] = NULL;
        size_t n = 0;
        pthread_rwlock_rdlock(&s->mu);
        for (size_t i = 0; i < BUCKETS; i++)
            for (hub_user *u = s->buckets[i]; u; u = u->next) {
                users = xrealloc(users, (n + 1) * sizeof *users);
                memcpy(users[n++], u->id, sizeof u->id);
            }
        pthread_rwlock_unlock(&s->mu);
        for (size_t i = 0; i < n; i++) {
            char key[2 * STG_ID_MAX + 2], *raw;
            int kl =
                stg_key_join(key, sizeof key, users[i], strlen(users[i]), author, strlen(author));
            stg_record edge;
            bool follows = strcmp(users[i], author) == 0;
            if (!follows && kl > 0 &&
                stg_record_load(s->ctx->db, STG_KIND_FOLLOW, key, (size_t)kl, &edge, &raw) == 0) {
                follows = !edge.tombstone;
                free(raw);
            }
            if (follows) push(s, users[i], "delete", xstrdup(data));
        }
        free(users);
    }
}

/* The store's events: posts delivered into timelines, messages, deletes. */
static void on_event(void *arg, const stg_event *ev)
{
    struct api_streams *s = arg;
    if (atomic_load(&s->nusers) == 0) return;
    if (ev->type == STG_EVENT_DELIVERY)
        on_delivered(s, ev->user, ev->post_id, ev->delivered_ms);
    else
        on_record(s, ev->rec);
}

/* ---- The response ----------------------------------------------------------------------- */

static void stream_unref(void *cls)
{
    sse *st = cls;
    hub_user *u = st->u;
    pthread_mutex_lock(&u->mu);
    bool last = --st->refs == 0;
    if (last && --u->alive == 0) u->idle_since = df_mono_ms();
    pthread_mutex_unlock(&u->mu);
    if (last) {
        free(st->pending);
        free(st);
    }
}

/* An event as Mastodon's streaming API names and shapes it, appended to
 * b: "update" with a Status, "delete" with a status id, "conversation"
 * with a Conversation. Nothing for what does not decode. */
static void masto_event(sse *st, const event *e, api_buf *b)
{
    api_ctx *ctx = st->hub->ctx;
    stg_record rec = {.payload = e->data, .paylen = strlen(e->data)};
    json_t *j = NULL;
    const char *name = NULL;
    if (strcmp(e->name, "post") == 0) {
        name = "update";
        j = api_masto_status(ctx, &rec, NULL);
    } else if (strcmp(e->name, "message") == 0) {
        json_t *m = api_payload_json(&rec);
        const char *from = json_string_value(json_object_get(m, "from"));
        const char *to = json_string_value(json_object_get(m, "to"));
        const char *peer = from && to && strcmp(from, st->u->id) == 0 ? to : from;
        json_t *last = api_masto_message_status(ctx, &rec, NULL);
        json_t *acc = peer ? api_masto_account(ctx, peer, NULL) : NULL;
        if (last && acc) {
            name = "conversation";
            j = json_pack("{s:s,s:b,s:[O],s:O}", "id", peer, "unread", 0, "accounts", acc,
                          "last_status", last);
        }
        json_decref(last);
        json_decref(acc);
        json_decref(m);
    } else if (strcmp(e->name, "delete") == 0) {
        json_t *d = api_payload_json(&rec);
        const char *id = json_string_value(json_object_get(d, "id"));
        char mid[API_MASTO_ID_LEN + 1] = "";
        if (id) api_masto_id_of(id, strlen(id), mid);
        if (mid[0]) {
            name = "delete";
            j = json_string(mid);
        }
        json_decref(d);
    }
    char *data = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!data) return;
    size_t n = strlen(data);
    if (strcmp(name, "delete") == 0) /* the bare id, not a JSON string */
        api_buf_printf(b, "event: delete\ndata: %.*s\n\n", (int)(n - 2), data + 1);
    else
        api_buf_printf(b, "event: %s\ndata: %s\n\n", name, data);
    free(data);
}

/* Formats the next thing to send into st->pending; false if nothing.
 * Called with the user's mutex held. */
static bool next_chunk(sse *st, uint64_t now)
{
    hub_user *u = st->u;
    unsigned long long boot = (unsigned long long)st->hub->boot;
    api_buf b = {0};
    if (st->evicted) {
        if (st->bye || st->masto) return false;
        st->bye = true;
        api_buf_printf(&b, "retry: 60000\nevent: closed\ndata: {\"reason\":\"too_many_streams\"}\n\n");
    } else if (st->masto && (!st->hello || st->reset_first)) {
        st->hello = true; /* Mastodon's streams open with a comment, and cannot resume */
        st->reset_first = false;
        api_buf_printf(&b, ":)\n\n");
    } else if (st->masto && st->pos < u->next_seq) {
        if (st->pos + RING < u->next_seq) st->pos = u->next_seq - RING;
        masto_event(st, &u->ring[st->pos % RING], &b);
        st->pos++;
        if (!b.p) api_buf_printf(&b, ":\n\n"); /* an event Mastodon has no name for */
    } else if (!st->hello) {
        /* Its id is the position the stream starts from. */
        st->hello = true;
        api_buf_printf(&b, "retry: 1000\nid: %llu.%llu\nevent: hello\ndata: {\"user\":\"%s\"}\n\n",
                       boot, (unsigned long long)st->pos, u->id);
    } else if (st->reset_first || st->pos + RING < u->next_seq) {
        st->reset_first = false;
        if (st->pos + RING < u->next_seq) st->pos = u->next_seq - RING;
        api_buf_printf(&b, "id: %llu.%llu\nevent: reset\ndata: {}\n\n", boot,
                       (unsigned long long)st->pos);
    } else if (st->pos < u->next_seq) {
        const event *e = &u->ring[st->pos % RING];
        api_buf_printf(&b, "id: %llu.%llu\nevent: %s\ndata: ", boot,
                       (unsigned long long)(e->seq + 1), e->name);
        api_buf_append(&b, e->data, strlen(e->data));
        api_buf_append(&b, "\n\n", 2);
        st->pos++;
    } else if (now - st->last_write >= HEARTBEAT_MS) {
        /* Once: read_events asks for chunks until its buffer is full. */
        st->last_write = now;
        api_buf_printf(&b, st->masto ? ":thump\n\n" : ": heartbeat\n\n");
    }
    if (!b.p) return false;
    st->pending = b.p;
    st->pending_len = b.len;
    st->pending_off = 0;
    return true;
}

static ssize_t read_events(void *cls, uint64_t offset, char *buf, size_t max)
{
    sse *st = cls;
    hub_user *u = st->u;
    uint64_t now = df_mono_ms();
    pthread_mutex_lock(&u->mu);
    st->woken = 0;
    if (st->closed || atomic_load(&st->hub->stopping)) {
        pthread_mutex_unlock(&u->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (st->hung_up) {
        pthread_mutex_unlock(&u->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = 0;
    while (n < max && (st->pending || next_chunk(st, now))) {
        size_t k = st->pending_len - st->pending_off;
        if (k > max - n) k = max - n;
        memcpy(buf + n, st->pending + st->pending_off, k);
        n += k;
        st->pending_off += k;
        if (st->pending_off == st->pending_len) {
            free(st->pending);
            st->pending = NULL;
        }
    }
    if (n) {
        st->last_write = now;
    } else if (st->evicted) {
        pthread_mutex_unlock(&u->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: park the connection until a push or heartbeat. */
        st->suspended = true;
        MHD_suspend_connection(st->conn);
    }
    pthread_mutex_unlock(&u->mu);
    return (ssize_t)n;
}

/* The stream position named by Last-Event-ID "<boot>.<pos>"; false if it
 * is absent, from another boot, or not of that form. */
static bool resume_point(struct api_streams *s, api_req *r, uint64_t *pos)
{
    const char *id = api_header(r, "Last-Event-ID");
    if (!id) id = api_query(r, "last_event_id");
    unsigned long long boot, p;
    char tail;
    if (!id || sscanf(id, "%llu.%llu%c", &boot, &p, &tail) != 2 || boot != s->boot) return false;
    *pos = p;
    return true;
}

/* Ends u's oldest streams until a new one fits in the per-user cap.
 * Called with u->mu held. */
static void make_room(struct api_streams *s, hub_user *u)
{
    while (u->open >= s->per_user) {
        sse *oldest = NULL; /* the list is newest first */
        for (sse *st = u->streams; st; st = st->next)
            if (!st->evicted) oldest = st;
        oldest->evicted = true;
        u->open--;
        atomic_fetch_add(&s->evictions, 1);
        wake(oldest);
    }
}

/* True if the client at the other end of fd has closed it (or reset it).
 * Only for a parked stream: whatever the client sent since stays queued. */
static bool hung_up(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Opens the stream of r->user (authenticated). */
static void open_stream(api_req *r)
{
    struct api_streams *s = r->ctx->streams;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_rwlock_wrlock(&s->mu);
    hub_user *u = find_user(s, r->user);
    if (!u) {
        u = xcalloc(1, sizeof *u);
        snprintf(u->id, sizeof u->id, "%s", r->user);
        pthread_mutex_init(&u->mu, NULL);
        /* pushed counts every event and every ring made, so a user's
         * next_seq is never past pushed + 1: a ring made again starts past
         * every id its user was given before. */
        u->base = u->next_seq = atomic_fetch_add(&s->pushed, 1) + 2;
        unsigned b = bucket_of(u->id);
        u->next = s->buckets[b];
        s->buckets[b] = u;
        atomic_fetch_add(&s->nusers, 1);
    }
    pthread_mutex_lock(&u->mu);
    /* A stream that ends one of the user's own takes no more room. */
    if (u->open < s->per_user && atomic_load(&s->nstreams) >= s->max_streams) {
        pthread_mutex_unlock(&u->mu);
        pthread_rwlock_unlock(&s->mu);
        atomic_fetch_add(&s->refused, 1);
        api_error_retry(r, 503, "too_many_streams", 5,
                        "this region has its maximum of %d open streams; retry in 5 s",
                        s->max_streams);
        return;
    }
    atomic_fetch_add(&s->nstreams, 1);
    sse *st = xcalloc(1, sizeof *st);
    st->fd = ci ? ci->connect_fd : -1;
    st->hub = s;
    st->u = u;
    st->conn = r->conn;
    st->masto = r->dialect == API_DIALECT_MASTO;
    st->refs = 2;
    st->last_write = df_mono_ms();
    uint64_t pos;
    bool had = resume_point(s, r, &pos);
    const char *id = api_header(r, "Last-Event-ID");
    if (!id) id = api_query(r, "last_event_id");
    if (had && pos >= u->base && pos <= u->next_seq) {
        st->pos = pos;
    } else {
        st->pos = u->next_seq;
        st->reset_first = id != NULL; /* it asked to resume but cannot: reload */
    }
    make_room(s, u);
    u->alive++;
    u->open++;
    st->next = u->streams;
    u->streams = st;
    pthread_mutex_unlock(&u->mu);
    pthread_rwlock_unlock(&s->mu);

    r->stream = st;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                  read_events, st, stream_unref);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    api_reply_response(r, 200, resp);
}

void api_stream(api_req *r)
{
    if (api_auth_or_401(r, true) == 0) open_stream(r);
}

/* GET /api/v1/streaming/user, and /api/v1/streaming?stream=user: the
 * caller's stream in Mastodon's events. Only the user stream exists here. */
void api_masto_stream_user(api_req *r)
{
    if (api_auth_or_401(r, true) == 0 && api_scope_or_403(r, API_SCOPE_READ) == 0) open_stream(r);
}

void api_masto_stream(api_req *r)
{
    const char *which = api_query(r, "stream");
    if (!which || strcmp(which, "user") != 0) {
        api_error(r, 400, "unknown_stream", "only stream=user is offered here");
        return;
    }
    api_masto_stream_user(r);
}

void api_stream_closed(api_req *r)
{
    sse *st = r->stream;
    hub_user *u = st->u;
    pthread_mutex_lock(&u->mu);
    st->closed = true;
    if (!st->evicted) u->open--;
    for (sse **pp = &u->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    pthread_mutex_unlock(&u->mu);
    atomic_fetch_sub(&st->hub->nstreams, 1);
    r->stream = NULL;
    stream_unref(st);
}

/* Once a second: heartbeats for idle streams; forget users without
 * streams for RESUME_MS. */
static void *ticker_main(void *arg)
{
    struct api_streams *s = arg;
    df_thread_name("df-stream-tick");
    while (!atomic_load(&s->stopping)) {
        struct timespec ts = {0, 200 * 1000000L};
        for (int i = 0; i < 5 && !atomic_load(&s->stopping); i++) nanosleep(&ts, NULL);
        uint64_t now = df_mono_ms();
        pthread_rwlock_wrlock(&s->mu);
        for (size_t b = 0; b < BUCKETS; b++)
            for (hub_user **pp = &s->buckets[b]; *pp;) {
                hub_user *u = *pp;
                pthread_mutex_lock(&u->mu);
                for (sse *st = u->streams; st; st = st->next) {
                    if (st->suspended && st->fd >= 0 && hung_up(st->fd)) st->hung_up = true;
                    if (st->hung_up || since(now, st->last_write) >= HEARTBEAT_MS ||
                        atomic_load(&s->stopping))
                        wake(st);
                    rewake_if_lost(s, st, now);
                }
                bool gone = u->alive == 0 && since(now, u->idle_since) > RESUME_MS;
                pthread_mutex_unlock(&u->mu);
                if (!gone) {
                    pp = &u->next;
                    continue;
                }
                *pp = u->next;
                for (size_t i = 0; i < RING; i++) free(u->ring[i].data);
                pthread_mutex_destroy(&u->mu);
                free(u);
                atomic_fetch_sub(&s->nusers, 1);
            }
        pthread_rwlock_unlock(&s->mu);
    }
    return NULL;
}

struct api_streams *api_streams_new(api_ctx *ctx)
{
    struct api_streams *s = xcalloc(1, sizeof *s);
    s->ctx = ctx;
    s->boot = df_now_ms();
    s->per_user = ctx->cfg->streams_per_user;
    s->max_streams = ctx->cfg->max_streams;
    pthread_rwlock_init(&s->mu, NULL);
    stg_subscribe(ctx->db, on_event, s);
    pthread_create(&s->ticker, NULL, ticker_main, s);
    return s;
}

void api_streams_get_stats(struct api_streams *s, api_streams_stats *out)
{
    out->open = atomic_load(&s->nstreams);
    out->users = atomic_load(&s->nusers);
    out->refused = atomic_load(&s->refused);
    out->evicted = atomic_load(&s->evictions);
    out->rewoken = atomic_load(&s->rewoken);
}

void api_streams_stop(struct api_streams *s)
{
    if (!s) return;
    /* libmicrohttpd must not be stopped with suspended connections: end
     * every stream (a reader that sees stopping ends its response). */
    atomic_store(&s->stopping, true);
    pthread_rwlock_rdlock(&s->mu);
    for (size_t b = 0; b < BUCKETS; b++)
        for (hub_user *u = s->buckets[b]; u; u = u->next) {
            pthread_mutex_lock(&u->mu);
            for (sse *st = u->streams; st; st = st->next) wake(st);
            pthread_mutex_unlock(&u->mu);
        }
    pthread_rwlock_unlock(&s->mu);
}

void api_streams_free(struct api_streams *s)
{
    if (!s) return;
    stg_unsubscribe(s->ctx->db, on_event, s);
    atomic_store(&s->stopping, true);
    pthread_join(s->ticker, NULL);
    for (size_t b = 0; b < BUCKETS; b++)
        for (hub_user *u = s->buckets[b], *next; u; u = next) {
            next = u->next;
            for (size_t i = 0; i < RING; i++) free(u->ring[i].data);
            pthread_mutex_destroy(&u->mu);
            free(u);
        }
    pthread_rwlock_destroy(&s->mu);
    free(s);
}
