/* test_config.c -- api/config.c: the settings table gives the defaults, the
 * usage text and the parsing of flags and --config files. */
#include "../unit.h"

#include "api.h"

static int parse(api_config *c, int argc, const char **argv)
{
    return api_config_parse(c, argc, (char **)argv);
}

START_TEST(test_defaults)
{
    api_config c;
    const char *argv[] = {"driftfeed"};
    ck_assert_int_eq(parse(&c, 1, argv), 0);
    ck_assert_str_eq(c.region, "local");
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.port, 8080);
    ck_assert_str_eq(c.data, "var/local");
    ck_assert_str_eq(c.public_url, "http://127.0.0.1:8080");
    ck_assert_int_eq(c.cache_mb, 64);
    ck_assert_int_eq(c.timeline_cap, 800);
    ck_assert_int_eq(c.large_threshold, 10000);
    ck_assert_uint_eq(c.queue_max, 100000);
    ck_assert(c.rate_limit == 100.0);
    ck_assert_int_eq(c.signup_rate, 10);
    ck_assert_int_eq(c.idem_window_s, 86400);
    ck_assert_int_eq(c.max_streams, 1024);
    ck_assert_int_eq(c.log_level, DF_LOG_INFO);
    ck_assert_int_gt(c.threads, 0);
    ck_assert(!c.sync && !c.demo && !c.keygen);
    api_config_free(&c);
}
END_TEST

START_TEST(test_flags_land_where_they_should)
{
    api_config c;
    const char *argv[] = {"driftfeed",        "--region",       "tokyo", "--port=9001",
                          "--sync",           "--rate-limit",   "0",     "--queue-max",
                          "1099511627776",    "--clock-offset-ms", "-5000", "--log-level",
                          "warn",             "--timeline-cap", "40"};
    ck_assert_int_eq(parse(&c, 15, argv), 0);
    ck_assert_str_eq(c.region, "tokyo");
    ck_assert_int_eq(c.port, 9001);
    ck_assert(c.sync);
    ck_assert(c.rate_limit == 0.0);
    ck_assert_uint_eq(c.queue_max, 1ull << 40);
    ck_assert_int_eq(c.clock_offset_ms, -5000);
    ck_assert_int_eq(c.log_level, DF_LOG_WARN);
    ck_assert_int_eq(c.timeline_cap, 40);
    ck_assert_str_eq(c.data, "var/tokyo");
    ck_assert_str_eq(c.public_url, "http://127.0.0.1:9001");
    api_config_free(&c);
}
END_TEST

START_TEST(test_bad_flags_are_refused)
{
    const char *bad[][3] = {
        {"--port", "0", 0},          {"--port", "65536", 0},      {"--port", "80x", 0},
        {"--region", "Paris", 0},    {"--log-level", "loud", 0},  {"--nope", 0, 0},
        {"--sync=yes", 0, 0},        {"--port", 0, 0},            {"-p", "1", 0},
        {"--admin-token", "t", 0},   {"--timeline-cap", "-1", 0}, {"--config", "/nonexistent", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        api_config c;
        const char *argv[3] = {"driftfeed", bad[i][0], bad[i][1]};
        int argc = bad[i][1] ? 3 : 2;
        int rc = parse(&c, argc, argv);
        api_config_free(&c);
        ck_assert_msg(rc == -1, "%s %s was taken", bad[i][0], bad[i][1] ? bad[i][1] : "");
    }
}
END_TEST

START_TEST(test_config_file_uses_the_same_names)
{
    char *dir = unit_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/df.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("# a region\nregion newyork\nport = 9100\n  demo\nmax-streams 7  # trailing\n", f);
    fclose(f);
    api_config c;
    const char *argv[] = {"driftfeed", "--config", path, "--port", "9200"};
    ck_assert_int_eq(parse(&c, 5, argv), 0);
    ck_assert_str_eq(c.region, "newyork");
    ck_assert_int_eq(c.port, 9200); /* later flags win */
    ck_assert(c.demo);
    ck_assert_int_eq(c.max_streams, 7);
    api_config_free(&c);
    f = fopen(path, "w");
    fputs("prot 9100\n", f);
    fclose(f);
    const char *argv2[] = {"driftfeed", "--config", path};
    ck_assert_int_eq(parse(&c, 3, argv2), -1);
    api_config_free(&c);
    unit_rmtree(dir);
}
END_TEST

START_TEST(test_usage_names_every_setting)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    api_config_usage(out);
    fclose(out);
    const char *names[] = {"region", "port", "bind", "data", "redis", "peers", "peer-redis",
                           "delay", "key-dir", "keygen", "redis-auth-file",
                           "peer-redis-auth-file", "public-url", "web", "demo",
                           "admin-token-file", "sync", "cache-mb", "memtable-mb",
                           "post-cache-mb", "page-cache-mb", "clock-offset-ms",
                           "publish-linger-ms", "threads", "fanout-workers", "large-threshold",
                           "timeline-cap", "queue-max", "max-connections", "per-ip-connections",
                           "timeout", "rate-limit", "rate-burst", "signup-rate", "signup-burst",
                           "idempotency-window-s", "streams-per-user", "max-streams",
                           "log-level", "config", "help"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "\n  --%s ", names[i]);
        ck_assert_msg(strstr(text, flag) != NULL, "the usage lacks --%s", names[i]);
    }
    ck_assert_ptr_null(strstr(text, "--admin-token ")); /* gone: refused, not offered */
    ck_assert_ptr_nonnull(strstr(text, "(default: 8080)"));
    free(text);
    api_config c;
    const char *argv[] = {"driftfeed", "--help"};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    ck_assert_int_eq(parse(&c, 2, argv), 1);
    fclose(stdout);
    stdout = saved;
    api_config_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_flags_land_where_they_should);
    tcase_add_test(tc, test_bad_flags_are_refused);
    tcase_add_test(tc, test_config_file_uses_the_same_names);
    tcase_add_test(tc, test_usage_names_every_setting);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
