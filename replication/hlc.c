/* hlc.c -- the hybrid logical clock (Kulkarni et al. 2014).
 *
 * DESIGN: a value is 48 bits of physical milliseconds and a 16-bit logical
 * counter. Every local event ticks the clock, every applied remote record
 * is observed, so a region orders its writes after everything it has seen
 * even when its wall clock is behind. A mutex makes it thread-safe. To stay
 * monotonic across restarts, the clock persists a mark ahead of every value
 * it hands out (synchronously, before handing out a value past the old
 * mark); a restarted clock starts at the mark. A counter that would
 * overflow borrows the next millisecond instead. */
#include "repl.h"

#include <pthread.h>
#include <stdlib.h>

#define MARK_AHEAD_MS 1000
#define LOGICAL_MAX 0xffffu

struct repl_hlc {
    pthread_mutex_t mu;
    uint64_t cur; /* last value handed out or observed */
    uint64_t mark; /* persisted: every value handed out is below mark << 16 */
    repl_hlc_clock_fn clock;
    repl_hlc_persist_fn persist;
    void *arg;
    int64_t offset_ms;
};

static uint64_t system_clock(void *arg) { return df_now_ms(); }

repl_hlc *repl_hlc_new(uint64_t mark, int64_t offset_ms, repl_hlc_clock_fn clock,
                       repl_hlc_persist_fn persist, void *arg)
{
    repl_hlc *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->mark = mark;
    h->cur = mark << 16;
    h->clock = clock ? clock : system_clock;
    h->persist = persist;
    h->arg = arg;
    h->offset_ms = offset_ms;
    return h;
}

void repl_hlc_free(repl_hlc *h)
{
    if (!h) return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static uint64_t physical(repl_hlc *h)
{
    int64_t pt = (int64_t)h->clock(h->arg) + h->offset_ms;
    return pt < 0 ? 0 : (uint64_t)pt & ((1ull << 48) - 1);
}

/* The value after cur whose physical part is at least pt. At the very top
 * of the range it saturates rather than wrap to 0 (a clock that reached it
 * can only have observed a corrupt remote value; see subscriber.c). */
static uint64_t advance(uint64_t cur, uint64_t pt)
{
    uint64_t l = cur >> 16, c = cur & LOGICAL_MAX;
    if (pt > l) return pt << 16;
    if (c < LOGICAL_MAX) return cur + 1;
    if (l + 1 >= 1ull << 48) return UINT64_MAX;
    return (l + 1) << 16;
}

/* Called with mu held: persist a new mark before handing out v. */
static void ensure_mark(repl_hlc *h, uint64_t v)
{
    if ((v >> 16) < h->mark) return;
    uint64_t mark = (v >> 16) + MARK_AHEAD_MS;
    if (h->persist && h->persist(h->arg, mark) < 0)
        df_log(DF_LOG_ERROR, "hlc: could not persist the clock mark");
    h->mark = mark;
}

uint64_t repl_hlc_tick(repl_hlc *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t v = advance(h->cur, physical(h));
    ensure_mark(h, v);
    h->cur = v;
    pthread_mutex_unlock(&h->mu);
    return v;
}

uint64_t repl_hlc_observe(repl_hlc *h, uint64_t remote)
{
    pthread_mutex_lock(&h->mu);
    uint64_t base = remote > h->cur ? remote : h->cur;
    uint64_t v = advance(base, physical(h));
    ensure_mark(h, v);
    h->cur = v;
    pthread_mutex_unlock(&h->mu);
    return v;
}

uint64_t repl_hlc_peek(repl_hlc *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t v = h->cur;
    pthread_mutex_unlock(&h->mu);
    return v;
}
