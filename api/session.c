/* session.c -- session guarantees and write acknowledgements over HTTP.
 *
 * DESIGN: a request that carries a Session-Token runs once this region has
 * applied every position the token holds (read-your-writes, monotonic
 * reads, writes-follow-reads in any region); its answer carries the token
 * merged with what it wrote (a write: this region's last seq) or read (a
 * read: this region's version vector). A write with ?ack=quorum|all is
 * committed here first and its answer held until enough peers report, in
 * their df:progress, that they have applied our log that far (Acked-By
 * names them), or until --ack-wait-ms passes: then 202, the write durable
 * here and still on its way.
 *
 * A request that has to wait is suspended (libmicrohttpd's
 * suspend/resume), so waiting holds no HTTP thread. One thread keeps the
 * list of waiters: replication tells it when positions move
 * (repl_on_progress, feed_on_done), and it resumes each waiter that can
 * go on or whose bound has passed; the resumed request is handled again on
 * its HTTP thread (api_session_resumed). A home timeline read also waits
 * for the fan-out of what its token holds (feed_ticket): the timeline is
 * derived from the records by the workers. Requests without a token or
 * ?ack cost one header lookup. */
#include "api.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { WAIT_NONE, WAIT_TOKEN, WAIT_ACKS } wait_kind;
/* A peer's position past anything we have seen of its log is taken for
 * one from the future (400) only after a wait this long: a fresh write's
 * record reaches its log in a few ms. Shorter waits end in 503. */
#define FUTURE_AFTER_MS 250
enum { ACK_LOCAL, ACK_QUORUM, ACK_ALL };
static const char *const ack_names[] = {"local", "quorum", "all"};

struct api_session {
    api_req *req;
    api_session_vec token; /* the request's; the answer's is merged from it */
    bool has_token, answered;
    int ack;
    wait_kind waiting; /* what it is suspended for, or will be resumed for */
    uint64_t deadline; /* mono ms */
    bool long_wait; /* at least FUTURE_AFTER_MS */
    bool fanout; /* a home timeline read: also waits for the token's fan-out */
    bool ticketed;
    uint64_t ticket; /* the fan-out jobs queued when the token was covered */
    uint64_t ack_seq; /* our seq the acknowledgements are for */
    size_t ack_need; /* peers that must have it */
    struct MHD_Response *held; /* the answer waiting for them */
    int held_status;
    struct api_session *prev, *next;
    bool listed;
};

struct api_sessions {
    api_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct api_session *head; /* suspended requests */
    bool dirty;
    _Atomic bool stopping; /* also read, unlocked, by resumed requests */
    pthread_t thread;
    bool joined;
    _Atomic uint64_t nwaiting;
    _Atomic uint64_t waits, caught_up, timeouts, refused, acks[3], ack_timeouts;
};

/* ---- Checking a token ---------------------------------------------------------------------- */

typedef enum { GO, BEHIND, ANSWERED } verdict;

/* Whether every position of s's token is here. BEHIND sets *behind to the
 * first region it waits for; a token no wait can satisfy is answered 400
 * (when r is given; the waiter thread only asks). */
static verdict check_token(api_req *r, struct api_session *s, bool final, const char **behind)
{
    repl *rp = s->req->ctx->rp;
    for (size_t i = 0; i < s->token.n; i++) {
        const repl_pos *p = &s->token.pos[i];
        repl_cover c = repl_covers(rp, p, final);
        if (c == REPL_COVERED) continue;
        if (c == REPL_BEHIND) {
            *behind = p->origin;
            return BEHIND;
        }
        if (!r) return ANSWERED;
        atomic_fetch_add(&s->req->ctx->sessions->refused, 1);
        if (c == REPL_UNKNOWN_REGION)
            api_error(r, 400, "invalid_session_token",
                      "the Session-Token names region %s, which is not in this cluster", p->origin);
        else if (c == REPL_OTHER_STORE)
            api_error(r, 400, "invalid_session_token",
                      "the Session-Token is from another store of region %s (another cluster, "
                      "or one rebuilt since)",
                      p->origin);
        else
            api_error(r, 400, "invalid_session_token",
                      "the Session-Token names seq %llu of region %s, past anything it has "
                      "written",
                      (unsigned long long)p->seq, p->origin);
        return ANSWERED;
    }
    /* A home timeline holds the token's posts once their fan-out ran:
     * every job queued by the time the records were here. */
    if (s->fanout) {
        feed *fd = s->req->ctx->fd;
        if (!s->ticketed) {
            s->ticket = feed_ticket(fd);
            s->ticketed = true;
        }
        if (!feed_ticket_done(fd, s->ticket)) {
            *behind = NULL;
            return BEHIND;
        }
    }
    return GO;
}

static size_t acked(api_req *r, struct api_session *s, const char **names, size_t max)
{
    size_t regions;
    return repl_acked_by(r->ctx->rp, s->ack_seq, names, max, &regions);
}

/* ---- The waiters ---------------------------------------------------------------------------- */

static bool ready(struct api_session *s, uint64_t now, bool stopping)
{
    if (stopping || now >= s->deadline) return true;
    const char *behind;
    if (s->waiting == WAIT_TOKEN) return check_token(NULL, s, false, &behind) != BEHIND;
    const char *names[REPL_MAX_PEERS];
    return acked(s->req, s, names, REPL_MAX_PEERS) >= s->ack_need;
}

static void unlink_waiter(struct api_sessions *ss, struct api_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->listed = false;
    atomic_fetch_sub(&ss->nwaiting, 1);
}

/* Suspends r until the waiter thread resumes it. False when the server
 * is stopping: answer now. */
static bool park(api_req *r, wait_kind kind)
{
    struct api_sessions *ss = r->ctx->sessions;
    struct api_session *s = r->session;
    pthread_mutex_lock(&ss->mu);
    if (ss->stopping) {
        pthread_mutex_unlock(&ss->mu);
        return false;
    }
    s->waiting = kind;
    /* Suspended before it is listed: the waiter thread resumes only
     * requests that are suspended. */
    MHD_suspend_connection(r->conn);
    s->next = ss->head;
    if (ss->head) ss->head->prev = s;
    ss->head = s;
    s->listed = true;
    atomic_fetch_add(&ss->nwaiting, 1);
    pthread_cond_signal(&ss->cv); /* its deadline may be the nearest */
    pthread_mutex_unlock(&ss->mu);
    return true;
}

/* Waiters released at once (1,000 readers whose region just caught up)
 * are resumed RESUME_BATCH at a time, RESUME_GAP_US apart: all at once,
 * the HTTP threads answered them in one pass and a /health behind them
 * waited 35-57 ms (tests/load/sessions). */
#define RESUME_BATCH 64
#define RESUME_GAP_US 1000

static void *waiter_main(void *arg)
{
    struct api_sessions *ss = arg;
    df_thread_name("df-sessions");
    pthread_mutex_lock(&ss->mu);
    for (;;) {
        uint64_t now = df_mono_ms(), next = now + 1000;
        int resumed = 0;
        for (struct api_session *s = ss->head, *n; s; s = n) {
            n = s->next;
            if ((resumed < RESUME_BATCH || ss->stopping) && ready(s, now, ss->stopping)) {
                unlink_waiter(ss, s);
                MHD_resume_connection(s->req->conn);
                resumed++;
            } else if (s->deadline < next) {
                next = s->deadline;
            }
        }
        if (ss->stopping) break;
        if (resumed >= RESUME_BATCH) {
            /* More may be ready: let the HTTP threads answer these first. */
            pthread_mutex_unlock(&ss->mu);
            struct timespec gap = {0, RESUME_GAP_US * 1000L};
            nanosleep(&gap, NULL);
            pthread_mutex_lock(&ss->mu);
            continue;
        }
        if (!ss->dirty) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ms = next > now ? next - now : 0;
            ts.tv_sec += (time_t)(ms / 1000);
            ts.tv_nsec += (long)(ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ss->cv, &ss->mu, &ts);
        }
        ss->dirty = false;
    }
    pthread_mutex_unlock(&ss->mu);
    return NULL;
}

/* Replication moved (a peer's batch applied here, or a peer's progress
 * through our log), or a fan-out job ran: look at the waiters again. */
static void on_progress(void *arg)
{
    struct api_sessions *ss = arg;
    if (atomic_load(&ss->nwaiting) == 0) return;
    pthread_mutex_lock(&ss->mu);
    ss->dirty = true;
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu);
}

struct api_sessions *api_sessions_new(api_ctx *ctx)
{
    struct api_sessions *ss = xcalloc(1, sizeof *ss);
    ss->ctx = ctx;
    pthread_mutex_init(&ss->mu, NULL);
    pthread_cond_init(&ss->cv, NULL);
    if (pthread_create(&ss->thread, NULL, waiter_main, ss) != 0) {
        df_log(DF_LOG_ERROR, "could not start the session thread");
        abort();
    }
    repl_on_progress(ctx->rp, on_progress, ss);
    feed_on_done(ctx->fd, on_progress, ss);
    return ss;
}

void api_sessions_stop(struct api_sessions *ss)
{
    if (!ss || ss->joined) return;
    pthread_mutex_lock(&ss->mu);
    ss->stopping = true; /* the thread resumes every waiter, and ends */
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu);
    pthread_join(ss->thread, NULL);
    ss->joined = true;
}

/* After repl_close: the hook may be called until the engine stops (it
 * finds no waiters once stopped). */
void api_sessions_free(struct api_sessions *ss)
{
    if (!ss) return;
    api_sessions_stop(ss);
    pthread_cond_destroy(&ss->cv);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

void api_sessions_get_stats(struct api_sessions *ss, api_sessions_stats *out)
{
    out->waiting = atomic_load(&ss->nwaiting);
    out->waits = atomic_load(&ss->waits);
    out->caught_up = atomic_load(&ss->caught_up);
    out->timeouts = atomic_load(&ss->timeouts);
    out->refused = atomic_load(&ss->refused);
    for (int i = 0; i < 3; i++) out->acks[i] = atomic_load(&ss->acks[i]);
    out->ack_timeouts = atomic_load(&ss->ack_timeouts);
}

/* ---- Requests -------------------------------------------------------------------------------- */

static bool is_write(const api_req *r)
{
    return r->method == API_POST || r->method == API_PUT || r->method == API_DELETE;
}

/* A token covers more than this region has: wait, or answer 503. */
static int behind(api_req *r, const char *region, bool final)
{
    struct api_sessions *ss = r->ctx->sessions;
    if (!final && park(r, WAIT_TOKEN)) return -1;
    atomic_fetch_add(&ss->timeouts, 1);
    if (!region)
        api_error_retry(r, 503, "session_behind", 1,
                        "region %s has what this Session-Token holds but has not yet delivered "
                        "it into home timelines; retry shortly",
                        repl_region(r->ctx->rp));
    else
        api_error_retry(r, 503, "session_behind", 1,
                        "region %s has not yet applied what this Session-Token holds from %s; "
                        "retry shortly, here or in %s",
                        repl_region(r->ctx->rp), region, region);
    return -1;
}

/* Session-Wait-Ms: 1 to 9 digits, at most the cap (more is the cap). */
static int wait_ms_or_400(api_req *r, uint64_t *ms)
{
    const api_config *cfg = r->ctx->cfg;
    const char *h = api_header(r, "Session-Wait-Ms");
    *ms = (uint64_t)cfg->session_wait_ms;
    if (!h) return 0;
    size_t n = strspn(h, "0123456789");
    if (n == 0 || n > 9 || h[n]) {
        api_error(r, 400, "invalid_session_wait",
                  "Session-Wait-Ms must be a whole number of milliseconds");
        return -1;
    }
    uint64_t v = strtoull(h, NULL, 10);
    *ms = v < (uint64_t)cfg->session_wait_max_ms ? v : (uint64_t)cfg->session_wait_max_ms;
    return 0;
}

int api_session_before(api_req *r)
{
    if (!r->sessions) return 0;
    const char *tok = api_header(r, "Session-Token");
    const char *ack = is_write(r) ? api_query(r, "ack") : NULL;
    if (!tok && !ack) return 0;
    struct api_session *s = r->session = xcalloc(1, sizeof *s);
    s->req = r;
    if (ack) {
        s->ack = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(ack, ack_names[i]) == 0) s->ack = i;
        if (s->ack < 0) {
            char ex[API_EXCERPT_MAX + 4];
            api_error(r, 400, "invalid_ack", "ack must be local, quorum or all, not \"%s\"",
                      api_excerpt(ex, ack));
            return -1;
        }
    }
    if (!tok) return 0;
    uint64_t wait;
    if (wait_ms_or_400(r, &wait) < 0) return -1;
    if (api_session_decode(tok, strlen(tok), &s->token) < 0) {
        atomic_fetch_add(&r->ctx->sessions->refused, 1);
        api_error(r, 400, "invalid_session_token",
                  "the Session-Token is not one this cluster made (garbled or cut?)");
        return -1;
    }
    s->has_token = true;
    s->fanout = strcmp(api_route_name(r->route), "timeline") == 0;
    s->deadline = df_mono_ms() + wait;
    s->long_wait = wait >= FUTURE_AFTER_MS;
    const char *region;
    verdict v = check_token(r, s, false, &region);
    if (v == GO) return 0;
    if (v == ANSWERED) return -1;
    atomic_fetch_add(&r->ctx->sessions->waits, wait ? 1 : 0);
    return behind(r, region, wait == 0);
}

/* The held answer of an acknowledged write goes out: its status if enough
 * regions have it, else 202; Acked-By names them, this one first. */
static void send_held(api_req *r, struct api_session *s)
{
    const char *names[REPL_MAX_PEERS];
    size_t n = acked(r, s, names, REPL_MAX_PEERS);
    api_buf b = {0};
    api_buf_printf(&b, "%s", repl_region(r->ctx->rp));
    for (size_t i = 0; i < n; i++) api_buf_printf(&b, ",%s", names[i]);
    MHD_add_response_header(s->held, "Acked-By", b.p);
    free(b.p);
    int status = s->held_status;
    if (n < s->ack_need) {
        status = 202;
        atomic_fetch_add(&r->ctx->sessions->ack_timeouts, 1);
    }
    struct MHD_Response *resp = s->held;
    s->held = NULL;
    s->waiting = WAIT_NONE;
    repl_acks_wanted(r->ctx->rp, -1);
    api_send_response(r, status, resp);
}

int api_session_resumed(api_req *r)
{
    struct api_session *s = r->session;
    struct api_sessions *ss = r->ctx->sessions;
    bool stopping = ss->stopping, final = stopping || df_mono_ms() >= s->deadline;
    if (s->waiting == WAIT_ACKS) {
        const char *names[REPL_MAX_PEERS];
        if (final || acked(r, s, names, REPL_MAX_PEERS) >= s->ack_need || !park(r, WAIT_ACKS))
            send_held(r, s);
        return -1;
    }
    const char *region;
    /* (A wait cut short by a stop proves nothing about the token.) */
    verdict v = check_token(r, s, final && s->long_wait && !stopping, &region);
    if (v == ANSWERED) return -1;
    if (v == GO) {
        s->waiting = WAIT_NONE;
        atomic_fetch_add(&ss->caught_up, 1);
        return 0;
    }
    return behind(r, region, final || stopping);
}

bool api_session_waiting(const api_req *r) { return r->session && r->session->waiting; }

void api_session_headers(api_req *r, int status, struct MHD_Response *resp)
{
    if (!r->sessions) return;
    struct api_session *s = r->session;
    bool wrote = is_write(r) && status >= 200 && status < 300;
    if (!wrote && !(s && s->has_token)) return; /* a read without a token */
    if (s && s->answered) return;
    api_session_vec v = {0};
    if (s && s->has_token) v = s->token;
    repl_pos own, all[REPL_POS_MAX];
    if (wrote) {
        repl_own_position(r->ctx->rp, &own);
        api_session_merge(&v, &own, 1);
        if (s) s->ack_seq = own.seq;
    } else if (status != 503) { /* a 503 read nothing */
        size_t n = repl_positions(r->ctx->rp, all, REPL_POS_MAX), k = 0;
        for (size_t i = 0; i < n; i++)
            if (all[i].seq) all[k++] = all[i]; /* nothing to wait for: left out */
        api_session_merge(&v, all, k);
    }
    char tok[API_SESSION_TOKEN_MAX + 8];
    if (v.n && api_session_encode(&v, tok, sizeof tok))
        MHD_add_response_header(resp, "Session-Token", tok);
    if (wrote) atomic_fetch_add(&r->ctx->sessions->acks[s ? s->ack : ACK_LOCAL], 1);
}

bool api_session_hold(api_req *r, int status, struct MHD_Response *resp)
{
    struct api_session *s = r->session;
    if (!s || s->ack == ACK_LOCAL || s->answered || !is_write(r) || status < 200 || status > 299)
        return false;
    s->answered = true;
    size_t regions;
    const char *names[REPL_MAX_PEERS];
    repl_acked_by(r->ctx->rp, s->ack_seq, names, REPL_MAX_PEERS, &regions);
    s->ack_need = s->ack == ACK_ALL ? regions - 1 : regions / 2; /* a majority, us included */
    s->held = resp;
    s->held_status = status;
    s->deadline = df_mono_ms() + (uint64_t)r->ctx->cfg->ack_wait_ms;
    repl_acks_wanted(r->ctx->rp, 1);
    if (acked(r, s, names, REPL_MAX_PEERS) >= s->ack_need || r->ctx->cfg->ack_wait_ms == 0 ||
        !park(r, WAIT_ACKS))
        send_held(r, s);
    return true;
}

void api_session_done(api_req *r)
{
    struct api_session *s = r->session;
    if (!s) return;
    if (s->held) {
        MHD_destroy_response(s->held);
        repl_acks_wanted(r->ctx->rp, -1);
    }
    free(s);
    r->session = NULL;
}
