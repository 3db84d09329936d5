/* fanout_bench.c -- fan-out throughput: one post to N followers, against a
 * RocksDB write ceiling measured in the same run.
 *
 * Seeds N follow edges through the real derived-index path
 * (stg_record_stage: the edge, the followers index, the follower count) in
 * large batches, closes and reopens the database (so the followers index is
 * flushed to SST files, as on a long-running region), then creates one post
 * with repl_write -- the post, its profile entry and its fan-out job in one
 * batch, exactly as POST /v1/posts does -- and times the feed workers until
 * feed_drain says the queue is empty. Every home entry is then counted.
 * The ceiling is a db_bench fillrandom-like loop over the same storage
 * layer: random 32-byte keys, batches of 100, one thread.
 *
 * A second run measures what POST /v1/posts asks of the workers: many
 * small fan-outs (--users users, each followed by --follows others, every
 * one posting in turn) into home timelines already at their cap
 * (--cap), so every delivery also costs its share of trimming.
 *
 * usage: fanout_bench [--followers N] [--workers N] [--batch N] [--dir DIR]
 *                     [--ceiling-puts N] [--value-size N] [--users N]
 *                     [--follows N] [--cap N] [--rounds N] [--keep]
 * --dir names a directory to work in (default: a new one under /tmp); the
 * data and ceiling databases made there are removed unless --keep. */
#include "feed.h"
#include "../../feed/internal.h" /* feed_home_key_id: the home key encoding */
#include "repl.h"
#include "storage.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEED_BATCH 10000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (all threads, RocksDB's included): on a
 * shared machine, work per CPU-second is steadier than work per second. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double load1(void)
{
    double l = -1;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &l) != 1) l = -1;
        fclose(fp);
    }
    return l;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "fanout_bench: %s: %s\n", what, df_strerror(rc));
    exit(1);
}

static void follower_id(char *out, size_t cap, long i) { snprintf(out, cap, "f%08ld@bench", i); }

/* Stages the follow edge follower -> followee as a region stages an
 * applied follow record: the edge, the followers index, the count. */
static void stage_follow(stg_db *db, repl *rp, stg_batch *b, const char *follower,
                         const char *followee)
{
    char key[2 * STG_ID_MAX + 2];
    int kl = stg_key_join(key, sizeof key, follower, strlen(follower), followee, strlen(followee));
    stg_record rec = {.kind = STG_KIND_FOLLOW,
                      .key = key,
                      .keylen = (size_t)kl,
                      .owner = follower,
                      .ownerlen = strlen(follower),
                      .payload = "",
                      .paylen = 0};
    rec.ver.hlc = repl_hlc_tick(repl_clock(rp));
    snprintf(rec.ver.origin, sizeof rec.ver.origin, "bench");
    stg_record_stage(db, b, &rec, NULL);
}

static void commit(stg_db *db, stg_batch *b)
{
    int rc = stg_write(db, b);
    if (rc < 0) die("seeding follows", rc);
    stg_batch_clear(b);
}

static int write_user(repl *rp, const char *id)
{
    char payload[256];
    snprintf(payload, sizeof payload, "{\"id\":\"%s\",\"name\":\"star\",\"display_name\":\"Star\"}",
             id);
    stg_record rec = {.kind = STG_KIND_USER,
                      .key = id,
                      .keylen = strlen(id),
                      .owner = id,
                      .ownerlen = strlen(id),
                      .payload = payload,
                      .paylen = strlen(payload)};
    return repl_write(rp, &rec, NULL);
}

/* The post as POST /v1/posts writes it; its id goes to id. */
static int write_post(repl *rp, const char *author, char id[STG_ID_MAX + 1])
{
    stg_record rec = {.kind = STG_KIND_POST, .owner = author, .ownerlen = strlen(author)};
    rec.ver.hlc = repl_hlc_tick(repl_clock(rp));
    snprintf(rec.ver.origin, sizeof rec.ver.origin, "bench");
    stg_make_id(id, &rec.ver);
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"id\":\"%s\",\"author\":\"%s\",\"text\":\"one post, many followers\","
             "\"created_at\":\"2026-01-01T00:00:00.000Z\",\"region\":\"bench\"}",
             id, author);
    rec.key = id;
    rec.keylen = strlen(id);
    rec.payload = payload;
    rec.paylen = strlen(payload);
    return repl_write(rp, &rec, NULL);
}

/* Home entries holding post_id, over every user's home. */
static long count_home(stg_db *db, const char *post_id)
{
    stg_iter *it = stg_iter_range(db, STG_CF_HOME, NULL, 0, NULL, 0, false);
    const char *k;
    size_t kl;
    char id[STG_ID_MAX + 1];
    long n = 0;
    while (stg_iter_next(it, &k, &kl, NULL, NULL))
        if (feed_home_key_id(k, kl, id) >= 0 && strcmp(id, post_id) == 0) n++;
    stg_iter_free(it);
    return n;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* db_bench fillrandom, roughly: random 32-byte keys, batches of 100.
 * Returns puts per second; *per_cpu gets puts per CPU-second. */
static double ceiling(const char *dir, long puts, int value_size, double *per_cpu)
{
    stg_db *db;
    stg_options so = {.sweep[STG_CF_HOME] = feed_home_sweep};
    int rc = stg_open(dir, &so, &db);
    if (rc < 0) die("opening the ceiling database", rc);
    char *value = xmalloc((size_t)value_size);
    for (int i = 0; i < value_size; i++) value[i] = (char)('a' + i % 26);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    stg_batch *b = stg_batch_new(db);
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < puts; i++) {
        char key[32];
        stg_key_u64(key, xorshift(&seed));
        memset(key + 8, '0', 24);
        stg_batch_put(b, STG_CF_HOME, key, sizeof key, value, (size_t)value_size);
        if ((i + 1) % 100 == 0 || i + 1 == puts) {
            if ((rc = stg_write(db, b)) < 0) die("ceiling write", rc);
            stg_batch_clear(b);
        }
    }
    double dt = now_s() - t0;
    *per_cpu = (double)puts / (cpu_s() - c0);
    stg_batch_free(b);
    free(value);
    stg_close(db);
    return (double)puts / dt;
}

static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: fanout_bench [--followers N] [--workers N] [--batch N] [--dir DIR]\n"
            "                    [--ceiling-puts N] [--value-size N] [--users N]\n"
            "                    [--follows N] [--cap N] [--rounds N] [--keep]\n");
    exit(status);
}

typedef struct opts {
    long followers, ceiling_puts;
    int workers, batch, value_size, users, follows, cap, rounds;
} opts;

typedef struct env {
    stg_db *db;
    feed *fd;
    repl *rp;
} env;

static void env_open(env *e, const char *path, const feed_config *fc, bool start)
{
    stg_options so = {.sweep[STG_CF_HOME] = feed_home_sweep};
    repl_config rcfg = {.region = "bench"};
    int rc;
    if ((rc = stg_open(path, &so, &e->db)) < 0) die("opening the database", rc);
    if ((rc = feed_open(&e->fd, e->db, fc)) < 0) die("opening the feed", rc);
    if ((rc = repl_open(&e->rp, e->db, e->fd, &rcfg)) < 0) die("opening replication", rc);
    if (start && (rc = feed_start(e->fd)) < 0) die("starting the feed", rc);
}

static void env_close(env *e)
{
    repl_close(e->rp);
    feed_close(e->fd);
    stg_close(e->db);
}

typedef struct result {
    double seed_s, ack_ms, wall_s, rate, rate_cpu;
    uint64_t deliveries;
    long counted;
} result;

/* One post to o->followers followers. */
static result big_fanout(const opts *o, const char *path)
{
    result res = {0};
    const char *star = "star@bench";
    feed_config fc = {.workers = o->workers,
                      .large_threshold = (int64_t)o->followers * 2 + 1,
                      .timeline_cap = 800,
                      .queue_max = 100000,
                      .batch = o->batch};
    env e;
    env_open(&e, path, &fc, false);
    double t0 = now_s();
    int rc;
    if ((rc = write_user(e.rp, star)) < 0) die("writing the author", rc);
    stg_batch *b = stg_batch_new(e.db);
    for (long i = 0; i < o->followers; i++) {
        char follower[STG_ID_MAX + 1];
        follower_id(follower, sizeof follower, i);
        stage_follow(e.db, e.rp, b, follower, star);
        if ((i + 1) % SEED_BATCH == 0 || i + 1 == o->followers) commit(e.db, b);
    }
    stg_batch_free(b);
    res.seed_s = now_s() - t0;
    env_close(&e); /* flushes: the followers index goes to SST files */
    env_open(&e, path, &fc, true);
    if (stg_follower_count(e.db, star) != o->followers) {
        fprintf(stderr, "fanout_bench: follower count %lld, want %ld\n",
                (long long)stg_follower_count(e.db, star), o->followers);
        exit(1);
    }

    char post_id[STG_ID_MAX + 1];
    t0 = now_s();
    double c0 = cpu_s();
    if ((rc = write_post(e.rp, star, post_id)) < 0) die("writing the post", rc);
    double acked = now_s();
    if (!feed_drain(e.fd, 600000)) die("draining the queue", DF_EBUSY);
    double done = now_s(), cpu = cpu_s() - c0;
    feed_stats st;
    feed_get_stats(e.fd, &st);
    res.counted = count_home(e.db, post_id);
    env_close(&e);
    res.ack_ms = (acked - t0) * 1e3;
    res.wall_s = done - t0;
    res.deliveries = st.deliveries;
    res.rate = (double)st.deliveries / (done - acked);
    res.rate_cpu = (double)st.deliveries / cpu;
    return res;
}

/* Many small fan-outs into homes at their cap. */
static result small_fanouts(const opts *o, const char *path)
{
    result res = {0};
    feed_config fc = {.workers = o->workers,
                      .large_threshold = 1000000000,
                      .timeline_cap = o->cap,
                      .queue_max = 100000000,
                      .batch = o->batch};
    env e;
    env_open(&e, path, &fc, false);
    char(*ids)[STG_ID_MAX + 1] = xmalloc((size_t)o->users * sizeof *ids);
    for (int i = 0; i < o->users; i++) snprintf(ids[i], sizeof ids[i], "u%06d@bench", i);
    double t0 = now_s();
    uint64_t seed = 42;
    stg_batch *b = stg_batch_new(e.db);
    for (int i = 0; i < o->users; i++) {
        /* o->follows distinct others, from a random start. */
        int v = (int)(xorshift(&seed) % (uint64_t)o->users);
        for (int k = 0; k < o->follows; k++, v = (v + 1) % o->users) {
            if (v == i) v = (v + 1) % o->users;
            stage_follow(e.db, e.rp, b, ids[i], ids[v]);
        }
        if ((i + 1) % 100 == 0 || i + 1 == o->users) commit(e.db, b);
    }
    stg_batch_free(b);
    env_close(&e);
    env_open(&e, path, &fc, true);

    /* Fill the homes to their cap, then measure. */
    int warm = o->cap / (o->follows > 0 ? o->follows : 1) + 2, rc;
    char post_id[STG_ID_MAX + 1];
    for (int r = 0; r < warm; r++)
        for (int i = 0; i < o->users; i++)
            if ((rc = write_post(e.rp, ids[i], post_id)) < 0) die("writing a post", rc);
    if (!feed_drain(e.fd, 600000)) die("draining the queue", DF_EBUSY);
    res.seed_s = now_s() - t0;
    feed_stats before, after;
    feed_get_stats(e.fd, &before);
    t0 = now_s();
    double c0 = cpu_s();
    for (int r = 0; r < o->rounds; r++)
        for (int i = 0; i < o->users; i++)
            if ((rc = write_post(e.rp, ids[i], post_id)) < 0) die("writing a post", rc);
    if (!feed_drain(e.fd, 600000)) die("draining the queue", DF_EBUSY);
    double done = now_s(), cpu = cpu_s() - c0;
    feed_get_stats(e.fd, &after);
    res.deliveries = after.deliveries - before.deliveries;
    /* The last post reached its author and every follower. */
    res.counted = count_home(e.db, post_id) - stg_follower_count(e.db, ids[o->users - 1]) - 1;
    env_close(&e);
    free(ids);
    res.wall_s = done - t0;
    res.rate = (double)res.deliveries / res.wall_s;
    res.rate_cpu = (double)res.deliveries / cpu;
    return res;
}

int main(int argc, char **argv)
{
    opts o = {.followers = 1000000,
              .ceiling_puts = 1000000,
              .workers = 2,
              .batch = 1000,
              .value_size = 100,
              .users = 2000,
              .follows = 40,
              .cap = 200,
              .rounds = 5};
    int keep = 0;
    char dir[512] = "";
    static const struct option lopts[] = {
        {"followers", required_argument, 0, 'n'},
        {"workers", required_argument, 0, 'w'},
        {"batch", required_argument, 0, 'b'},
        {"dir", required_argument, 0, 'd'},
        {"ceiling-puts", required_argument, 0, 'c'},
        {"value-size", required_argument, 0, 'v'},
        {"users", required_argument, 0, 'u'},
        {"follows", required_argument, 0, 'f'},
        {"cap", required_argument, 0, 'p'},
        {"rounds", required_argument, 0, 'r'},
        {"keep", no_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'n': o.followers = atol(optarg); break;
        case 'w': o.workers = atoi(optarg); break;
        case 'b': o.batch = atoi(optarg); break;
        case 'd': snprintf(dir, sizeof dir, "%s", optarg); break;
        case 'c': o.ceiling_puts = atol(optarg); break;
        case 'v': o.value_size = atoi(optarg); break;
        case 'u': o.users = atoi(optarg); break;
        case 'f': o.follows = atoi(optarg); break;
        case 'p': o.cap = atoi(optarg); break;
        case 'r': o.rounds = atoi(optarg); break;
        case 'k': keep = 1; break;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (o.followers < 1 || o.workers < 1 || o.batch < 2 || o.ceiling_puts < 1 || o.value_size < 1 ||
        o.users < 2 || o.follows < 0 || o.follows >= o.users || o.cap < 1 || o.rounds < 0)
        usage(2);
    bool made_dir = !dir[0];
    if (made_dir) {
        snprintf(dir, sizeof dir, "/tmp/fanout-bench-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    df_log_set_level(DF_LOG_WARN);
    char big_dir[600], small_dir[600], ceil_dir[600];
    snprintf(big_dir, sizeof big_dir, "%s/big", dir);
    snprintf(small_dir, sizeof small_dir, "%s/small", dir);
    snprintf(ceil_dir, sizeof ceil_dir, "%s/ceiling", dir);

    result big = big_fanout(&o, big_dir);
    result small = {0};
    if (o.rounds > 0) small = small_fanouts(&o, small_dir);
    double ceil_cpu, ceil_rate = ceiling(ceil_dir, o.ceiling_puts, o.value_size, &ceil_cpu);

    printf("fan-out: one post to %ld followers (%d workers, batches of %d; seeded in %.1f s;"
           " %ld CPUs, load average %.1f)\n",
           o.followers, o.workers, o.batch, big.seed_s, sysconf(_SC_NPROCESSORS_ONLN), load1());
    printf("| measure                                         | value            |\n");
    printf("|-------------------------------------------------|------------------|\n");
    printf("| deliveries (home entries written)               | %16llu |\n",
           (unsigned long long)big.deliveries);
    printf("| home entries holding the post, counted          | %16ld |\n", big.counted);
    printf("| post acknowledged after                         | %13.2f ms |\n", big.ack_ms);
    printf("| time until the last follower has it             | %14.2f s |\n", big.wall_s);
    printf("| deliveries per second                           | %16.0f |\n", big.rate);
    printf("| deliveries per CPU-second (all threads)         | %16.0f |\n", big.rate_cpu);
    printf("| RocksDB ceiling: fillrandom, 32 B keys, %3d B   | %10.0f puts/s |\n", o.value_size,
           ceil_rate);
    printf("|   values, batches of 100, 1 thread: per CPU-s   | %10.0f puts/s |\n", ceil_cpu);
    printf("| deliveries/s / ceiling                          | %16.2f |\n", big.rate / ceil_rate);
    printf("| target: >= 250,000 deliveries/s                 | %16s |\n",
           big.rate >= 250000 ? "met" : "NOT met");
    if (o.rounds > 0) {
        printf("| small fan-outs: %d users x %d followers, cap %-4d | %16s |\n", o.users, o.follows,
               o.cap, "");
        printf("|   %d rounds of posts: deliveries per second     | %16.0f |\n", o.rounds,
               small.rate);
        printf("|   deliveries per CPU-second (incl. the posts)   | %16.0f |\n", small.rate_cpu);
    }

    int bad = big.counted != o.followers + 1 || small.counted != 0;
    if (bad)
        fprintf(stderr, "fanout_bench: wrong home entry counts (%ld; %+ld)\n", big.counted,
                small.counted);
    if (!keep) {
        char cmd[2000];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", big_dir, small_dir, ceil_dir);
        if (system(cmd) != 0 || (made_dir && rmdir(dir) < 0))
            fprintf(stderr, "fanout_bench: could not remove %s\n", dir);
    }
    return bad;
}
