/*
 * test_duration.c: "500ms", "5s", "10m", "72h", "30d" and lists of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/duration.h"
#include "core/err.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static void expect_ms(const char *s, int64_t want)
{
    int64_t got = -12345;
    int rc = duration_parse(s, &got);
    if (rc != 0)
        fail_msg("duration_parse(\"%s\") = %d, want 0", s, rc);
    if (got != want)
        fail_msg("duration_parse(\"%s\") gave %lld, want %lld", s, (long long)got,
                 (long long)want);
}

static void expect_invalid(const char *s)
{
    int64_t got = -12345;
    int rc = duration_parse(s, &got);
    if (rc != BH_EINVAL)
        fail_msg("duration_parse(\"%s\") = %d (value %lld), want BH_EINVAL", s, rc,
                 (long long)got);
}

static void test_parse_units(void **state)
{
    (void)state;
    expect_ms("500ms", 500);
    expect_ms("5s", 5 * SEC);
    expect_ms("10m", 10 * MIN);
    expect_ms("72h", 72 * HOUR);
    expect_ms("30d", 30 * DAY);
    expect_ms("0s", 0);
    expect_ms("0ms", 0);
    expect_ms("1ms", 1);
    expect_ms("1m", MIN);   /* "m" is minutes, not a prefix of "ms" */
    expect_ms("1h", HOUR);
    expect_ms("1d", DAY);
    expect_ms("007s", 7 * SEC);
    expect_ms("90s", 90 * SEC);
}

static void test_parse_limits(void **state)
{
    (void)state;
    expect_ms("9223372036854775807ms", INT64_MAX);
    expect_ms("106751991167d", 106751991167LL * DAY);
    expect_ms("9223372036854775s", 9223372036854775LL * SEC);
    expect_invalid("9223372036854775808ms");
    expect_invalid("106751991168d");
    expect_invalid("9223372036854776s");
    expect_invalid("9999999999999999999d");
    expect_invalid("99999999999999999999999999999ms");
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",    "5",   "s",    "ms",   "-5s",  "+5s", "5x",   "5 s",  " 5s",  "5s ",
        "1.5s", "5S", "5MS",  "5sec", "5mss", "5hh", "5s5",  "s5",   "5,s",  "5\ts",
        "0x5s", "5s\n", "５s",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_invalid(bad[i]);
    int64_t v;
    assert_int_equal(duration_parse(NULL, &v), BH_EINVAL);
}

static void test_list(void **state)
{
    (void)state;
    int64_t out[8];
    size_t n = 99;
    assert_int_equal(duration_parse_list("5s,30s,2m", out, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 5 * SEC);
    assert_int_equal(out[1], 30 * SEC);
    assert_int_equal(out[2], 2 * MIN);

    assert_int_equal(duration_parse_list("72h", out, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 72 * HOUR);
}

static void test_list_exactly_max(void **state)
{
    (void)state;
    int64_t out[3];
    size_t n = 0;
    assert_int_equal(duration_parse_list("1s,2s,3s", out, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2], 3 * SEC);
}

static void test_list_too_many(void **state)
{
    (void)state;
    /* One slot more than needed in the array, so a write past max would be seen. */
    int64_t out[4] = { -1, -1, -1, -1 };
    size_t n = 77;
    assert_int_equal(duration_parse_list("1s,2s,3s", out, 2, &n), BH_ETOOBIG);
    assert_int_equal(out[2], -1);
    assert_int_equal(n, 77);
    out[0] = -1;
    assert_int_equal(duration_parse_list("1s", out, 0, &n), BH_ETOOBIG);
    assert_int_equal(out[0], -1);
    assert_int_equal(duration_parse_list("1s,2s,3s,4s", out, 3, &n), BH_ETOOBIG);
    assert_int_equal(out[3], -1);
}

static void test_list_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", ",", "5s,", ",5s", "5s,,30s", "5s, 30s", "5s ,30s", "5s;30s", "5s,x", "5s,5",
        "5s,-1s", "5s,99999999999999999999d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t out[8];
        size_t n = 77;
        int rc = duration_parse_list(bad[i], out, 8, &n);
        if (rc != BH_EINVAL)
            fail_msg("duration_parse_list(\"%s\") = %d, want BH_EINVAL", bad[i], rc);
        assert_int_equal(n, 77);
    }
    int64_t out[1];
    size_t n;
    assert_int_equal(duration_parse_list(NULL, out, 1, &n), BH_EINVAL);
}

static void expect_format(int64_t ms, const char *want)
{
    char out[32];
    memset(out, 'X', sizeof(out));
    duration_format(ms, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("duration_format(%lld) = \"%s\", want \"%s\"", (long long)ms, out, want);
}

static void test_format(void **state)
{
    (void)state;
    expect_format(500, "500ms");
    expect_format(5 * SEC, "5s");
    expect_format(90 * SEC, "90s");
    expect_format(10 * MIN, "10m");
    expect_format(HOUR, "1h");
    expect_format(3600000, "1h");
    expect_format(25 * HOUR, "25h");
    expect_format(72 * HOUR, "3d");
    expect_format(30 * DAY, "30d");
    expect_format(1500, "1500ms");
    expect_format(61 * SEC, "61s");
    expect_format(0, "0ms");
    expect_format(1, "1ms");
    expect_format(INT64_MAX, "9223372036854775807ms");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const int64_t values[] = {
        0,        1,         999,          1000,        1001,      59999,
        60000,    90000,     3599999,      3600000,     86399999,  86400000,
        30 * DAY, 72 * HOUR, 123456789012, INT64_MAX,   INT64_MAX - 1,
        106751991167LL * DAY,
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char out[32];
        int64_t back = -1;
        duration_format(values[i], out, sizeof(out));
        if (duration_parse(out, &back) != 0 || back != values[i])
            fail_msg("%lld formats as \"%s\", which parses back as %lld",
                     (long long)values[i], out, (long long)back);
    }
    /* And text -> ms -> text -> ms is stable too. */
    static const char *const texts[] = { "500ms", "5s", "10m", "72h", "30d", "1500ms" };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int64_t a, b;
        char out[32];
        assert_int_equal(duration_parse(texts[i], &a), 0);
        duration_format(a, out, sizeof(out));
        assert_int_equal(duration_parse(out, &b), 0);
        assert_int_equal(a, b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_units),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_exactly_max),
        cmocka_unit_test(test_list_too_many),
        cmocka_unit_test(test_list_rejects),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
