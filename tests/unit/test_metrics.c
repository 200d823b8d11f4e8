/*
 * test_metrics.c: core/metrics: histogram buckets (inclusive upper bounds,
 * cumulative in the text), the text format's numbers and label escaping, counters
 * from several threads, and the process families.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"

static const uint64_t bounds[] = { 1000, 60000000000ull };

static void test_hist_buckets(void **state)
{
    (void)state;
    metrics_hist_t h;
    metrics_hist_init(&h, bounds, 2, 1e9);
    metrics_hist_observe(&h, 999);
    metrics_hist_observe(&h, 1000);          /* on the bound: in it */
    metrics_hist_observe(&h, 1001);
    metrics_hist_observe(&h, 70000000000ull); /* past the last: +Inf only */
    assert_int_equal(metrics_hist_count(&h), 4);
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(metrics_write_hist(&b, "x_seconds", "a=\"1\"", &h), 0);
    assert_string_equal(buf_cstr(&b), "x_seconds_bucket{a=\"1\",le=\"1e-06\"} 2\n"
                                      "x_seconds_bucket{a=\"1\",le=\"60\"} 3\n"
                                      "x_seconds_bucket{a=\"1\",le=\"+Inf\"} 4\n"
                                      "x_seconds_sum{a=\"1\"} 70.000003\n"
                                      "x_seconds_count{a=\"1\"} 4\n");
    buf_deinit(&b);
}

static void test_text_format(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(metrics_write_family(&b, "y_total", "counter", "Things."), 0);
    assert_int_equal(metrics_write_u64(&b, "y_total", NULL, 18446744073709551615ull), 0);
    assert_int_equal(metrics_write_double(&b, "z", NULL, 0.1), 0);
    assert_int_equal(metrics_write_double(&b, "z", NULL, 1.0 / 3.0), 0);
    assert_string_equal(buf_cstr(&b), "# HELP y_total Things.\n# TYPE y_total counter\n"
                                      "y_total 18446744073709551615\n"
                                      "z 0.1\n"
                                      "z 0.3333333333333333\n");
    char mem[128];
    buf_t l = { mem, 0, sizeof(mem), sizeof(mem) - 1 };
    assert_int_equal(metrics_label(&l, "tenant", "a\"b\\c\nd"), 0);
    assert_int_equal(metrics_label(&l, "k", "v"), 0);
    assert_string_equal(buf_cstr(&l), "tenant=\"a\\\"b\\\\c\\nd\",k=\"v\"");
    /* A full buffer fails the write instead of cutting a line. */
    buf_t small;
    buf_init(&small, 16);
    assert_int_not_equal(metrics_write_family(&small, "a_very_long_name", "gauge", "help"), 0);
    buf_deinit(&small);
    buf_deinit(&b);
}

static metrics_counter_t shared;

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        metrics_counter_add(&shared, 1);
    return NULL;
}

static void test_counter_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(metrics_counter_get(&shared), 400000);
}

static void test_process(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 1 << 16);
    assert_int_equal(metrics_write_process(&b), 0);
    static const char *const names[] = { "process_resident_memory_bytes ",
                                         "process_virtual_memory_bytes ",
                                         "process_cpu_seconds_total ", "process_open_fds ",
                                         "process_max_fds ", "process_start_time_seconds " };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(buf_cstr(&b), names[i]))
            fail_msg("missing %s in:\n%s", names[i], buf_cstr(&b));
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_counter_threads),
        cmocka_unit_test(test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
