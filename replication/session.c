/* session.c -- what a session token's positions mean in this region, and
 * which peers have acknowledged our writes.
 *
 * DESIGN: a position names an origin's store by its epoch and a seq in its
 * log. Ours is covered once committed (seqs commit in order); a peer's once
 * its subscriber's durable cursor has passed it -- the cursor moves only
 * after the records before it are committed, in order. Acknowledgements
 * are the same cursors seen from the other side: each peer publishes its
 * cursor through our log in df:progress after every batch, and the
 * publisher reads it (every few ms while a write waits), so acks cost no
 * round trip per write. Both ends tell a hook, which wakes waiting
 * requests. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static void position(repl_pos *out, const char *origin, uint64_t epoch, uint64_t seq)
{
    snprintf(out->origin, sizeof out->origin, "%s", origin);
    out->epoch = (uint32_t)epoch;
    out->seq = seq;
}

void repl_own_position(repl *r, repl_pos *out)
{
    pthread_mutex_lock(&r->seq_mu);
    uint64_t seq = r->seq;
    pthread_mutex_unlock(&r->seq_mu);
    position(out, r->region, r->epoch, seq);
}

size_t repl_positions(repl *r, repl_pos *out, size_t max)
{
    if (max == 0) return 0;
    repl_own_position(r, &out[0]);
    size_t n = 1, np = atomic_load(&r->npeers);
    for (size_t i = 0; i < np && n < max; i++) {
        peer *p = &r->peers[i];
        if (atomic_load(&p->removed)) continue;
        position(&out[n++], p->name, p->epoch, atomic_load(&p->applied));
    }
    return n;
}

repl_cover repl_covers(repl *r, const repl_pos *pos, bool final)
{
    if (strcmp(pos->origin, r->region) == 0) {
        if (pos->epoch && pos->epoch != (uint32_t)r->epoch) return REPL_OTHER_STORE;
        pthread_mutex_lock(&r->seq_mu);
        uint64_t seq = r->seq;
        pthread_mutex_unlock(&r->seq_mu);
        return pos->seq <= seq ? REPL_COVERED : REPL_FUTURE;
    }
    peer *p = repl_peer_named(r, pos->origin);
    if (!p) return REPL_UNKNOWN_REGION;
    if (atomic_load(&p->removed)) return REPL_COVERED;
    /* (Over an unsigned log we follow no epoch: p->epoch is 0.) */
    if (pos->epoch && p->epoch && pos->epoch != (uint32_t)p->epoch) return REPL_OTHER_STORE;
    if (pos->seq <= atomic_load(&p->applied)) return REPL_COVERED;
    /* Past the wait, a seq beyond what the peer announced and beyond every
     * entry we read from its stream, while we read it all along, is not on
     * its way. (A region cut off from its own Redis, while we still read
     * that Redis, writes seqs it cannot publish: its tokens look like
     * this too, until it is back.) */
    uint64_t published = atomic_load(&p->published), seen = atomic_load(&p->seen);
    if (final && !atomic_load(&r->paused) && atomic_load(&p->state) == REPL_STREAMING &&
        pos->seq > published && pos->seq > seen)
        return REPL_FUTURE;
    return REPL_BEHIND;
}

void repl_on_progress(repl *r, void (*fn)(void *arg), void *arg)
{
    r->progress_arg = arg;
    r->progress_fn = fn;
}

void repl_progressed(repl *r)
{
    if (r->progress_fn) r->progress_fn(r->progress_arg);
}

void repl_acks_wanted(repl *r, int delta)
{
    if (atomic_fetch_add(&r->ack_waiters, delta) == 0 && delta > 0) {
        /* The publisher may be waiting for a commit: read progress now. */
        pthread_mutex_lock(&r->seq_mu);
        pthread_cond_broadcast(&r->seq_cv);
        pthread_mutex_unlock(&r->seq_mu);
    }
}

size_t repl_acked_by(repl *r, uint64_t seq, const char **names, size_t max, size_t *regions)
{
    size_t n = 0, np = atomic_load(&r->npeers);
    *regions = 1;
    for (size_t i = 0; i < np; i++) {
        peer *p = &r->peers[i];
        if (atomic_load(&p->removed)) continue;
        ++*regions;
        if (atomic_load(&p->acked) >= seq && n < max) names[n++] = p->name;
    }
    return n;
}
