/* window.c -- a window over the most recent values of a measurement, and
 * its quantiles (fan-out latency, replication lag). */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

void df_window_init(df_window *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
}

void df_window_destroy(df_window *w) { pthread_mutex_destroy(&w->mu); }

void df_window_add(df_window *w, uint64_t v)
{
    pthread_mutex_lock(&w->mu);
    w->v[w->n++ % DF_WINDOW] = v;
    pthread_mutex_unlock(&w->mu);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

df_quantiles df_window_quantiles(df_window *w)
{
    uint64_t v[DF_WINDOW];
    pthread_mutex_lock(&w->mu);
    size_t n = w->n < DF_WINDOW ? w->n : DF_WINDOW;
    memcpy(v, w->v, n * sizeof *v);
    pthread_mutex_unlock(&w->mu);
    df_quantiles q = {0, 0, 0};
    if (n) {
        qsort(v, n, sizeof *v, cmp_u64);
        q.p50 = v[n / 2];
        q.p99 = v[(n * 99) / 100];
        q.max = v[n - 1];
    }
    return q;
}
