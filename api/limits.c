/* limits.c -- the per-token write rate limit: a token bucket per user.
 *
 * Buckets live in a hash table split into stripes, each with its own
 * mutex; idle buckets (full again) are dropped when a stripe grows. */
#include "api.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64

typedef struct bucket {
    char user[STG_ID_MAX + 1];
    double tokens;
    uint64_t at_ms;
} bucket;

typedef struct stripe {
    pthread_mutex_t mu;
    bucket *b;
    size_t n, cap;
} stripe;

struct api_limits {
    double rate;
    double burst;
    stripe s[STRIPES];
};

struct api_limits *api_limits_new(double rate, int burst)
{
    struct api_limits *l = xcalloc(1, sizeof *l);
    l->rate = rate;
    l->burst = burst > 0 ? burst : (rate > 1 ? rate * 2 : 2);
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&l->s[i].mu, NULL);
    return l;
}

void api_limits_free(struct api_limits *l)
{
    if (!l) return;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&l->s[i].mu);
        free(l->s[i].b);
    }
    free(l);
}

static void refill(struct api_limits *l, bucket *b, uint64_t now)
{
    b->tokens = fmin(l->burst, b->tokens + (double)(now - b->at_ms) * l->rate / 1000.0);
    b->at_ms = now;
}

int api_rate_or_429(api_req *r)
{
    struct api_limits *l = r->ctx->limits;
    if (!l || l->rate <= 0) return 0;
    stripe *s = &l->s[df_hash32(r->user, strlen(r->user)) % STRIPES];
    uint64_t now = df_mono_ms();
    pthread_mutex_lock(&s->mu);
    bucket *b = NULL;
    for (size_t i = 0; i < s->n && !b; i++)
        if (strcmp(s->b[i].user, r->user) == 0) b = &s->b[i];
    if (!b) {
        if (s->n == s->cap) {
            /* Drop buckets that are full again: they carry no state. */
            size_t k = 0;
            for (size_t i = 0; i < s->n; i++) {
                refill(l, &s->b[i], now);
                if (s->b[i].tokens < l->burst) s->b[k++] = s->b[i];
            }
            s->n = k;
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                s->b = xrealloc(s->b, s->cap * sizeof *s->b);
            }
        }
        b = &s->b[s->n++];
        snprintf(b->user, sizeof b->user, "%s", r->user);
        b->tokens = l->burst;
        b->at_ms = now;
    }
    refill(l, b, now);
    bool ok = b->tokens >= 1.0;
    double wait_s = ok ? 0 : (1.0 - b->tokens) / l->rate;
    if (ok) b->tokens -= 1.0;
    pthread_mutex_unlock(&s->mu);
    if (ok) return 0;
    int retry = (int)ceil(wait_s) > 0 ? (int)ceil(wait_s) : 1;
    api_error_retry(r, 429, "rate_limited", retry, "too many writes; retry in %d s", retry);
    return -1;
}
