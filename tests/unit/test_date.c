/*
 * test_date.c: calendar dates <-> days since 1970-01-01.
 *
 * The conversions are checked against an independent, deliberately naive
 * reference: walking the calendar one day at a time from 0001-01-01 with the
 * month-length rule, so an error in the closed-form arithmetic cannot hide
 * behind the same error in the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/date.h"
#include "core/err.h"

static void expect_days(const char *s, int32_t want)
{
    int32_t got = 12345;
    int rc = date_parse(s, strlen(s), &got);
    if (rc != 0)
        fail_msg("date_parse(\"%s\") = %d, want 0", s, rc);
    if (got != want)
        fail_msg("date_parse(\"%s\") gave %d, want %d", s, got, want);
}

static void expect_invalid(const char *s, size_t n)
{
    int32_t got = 12345;
    int rc = date_parse(s, n, &got);
    if (rc != BH_EINVAL)
        fail_msg("date_parse(\"%.*s\") = %d (days %d), want BH_EINVAL", (int)n, s ? s : "", rc,
                 got);
    if (got != 12345)
        fail_msg("date_parse(\"%.*s\") wrote its output on failure", (int)n, s ? s : "");
}

static void test_parse_valid(void **state)
{
    (void)state;
    expect_days("1970-01-01", 0);
    expect_days("1970-01-02", 1);
    expect_days("1969-12-31", -1);
    expect_days("2000-02-29", 11016);
    expect_days("2024-02-29", 19782);
    expect_days("2024-01-01", 19723);
    expect_days("2025-06-15", 20254);
    expect_days("1900-03-01", -25508);
    expect_days("1600-02-29", -135081);
    expect_days("0001-01-01", DATE_MIN_DAYS);
    expect_days("9999-12-31", DATE_MAX_DAYS);
    assert_int_equal(DATE_MIN_DAYS, -719162);
    assert_int_equal(DATE_MAX_DAYS, 2932896);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2023-02-29", /* not a leap year */
        "1900-02-29", /* divisible by 100, not by 400 */
        "2023-02-30", "2024-02-30", "2023-04-31", "2023-06-31", "2023-09-31", "2023-11-31",
        "2023-01-32", "2023-13-01", "2023-00-10", "2023-01-00", "0000-01-01", "0000-12-31",
        "2023-1-01",  "2023-01-1",  "2023/01/01", "2023-01/01", "+023-01-01", "-023-01-01",
        " 023-01-01", "2023-01-0 ", "2023-0a-01", "2023-01-01T00:00", "20230101", "",
        "2023-01-01 ", "99999-01-01", "2023-012-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_invalid(bad[i], strlen(bad[i]));
    expect_invalid(NULL, 0);
}

static void test_parse_is_a_slice(void **state)
{
    (void)state;
    /* Only the n bytes given count: a valid prefix of a longer buffer parses,
     * and a length that is not 10 never does. */
    const char buf[] = "2024-03-05XYZ";
    int32_t d = 0;
    assert_int_equal(date_parse(buf, 10, &d), 0);
    assert_int_equal(d, 19787);
    expect_invalid(buf, 11);
    expect_invalid(buf, 9);
    char raw[10];
    memcpy(raw, "2024-03-05", 10); /* no NUL anywhere */
    assert_int_equal(date_parse(raw, sizeof(raw), &d), 0);
    assert_int_equal(d, 19787);
}

static void test_days_in_month(void **state)
{
    (void)state;
    assert_int_equal(date_days_in_month(2000, 2), 29);
    assert_int_equal(date_days_in_month(1900, 2), 28);
    assert_int_equal(date_days_in_month(2024, 2), 29);
    assert_int_equal(date_days_in_month(2023, 2), 28);
    assert_int_equal(date_days_in_month(2023, 1), 31);
    assert_int_equal(date_days_in_month(2023, 4), 30);
    assert_int_equal(date_days_in_month(2023, 12), 31);
    assert_int_equal(date_days_in_month(2023, 0), 0);
    assert_int_equal(date_days_in_month(2023, 13), 0);
}

/* Every day of years 1..9999, against the one-day-at-a-time walk. */
static void test_every_day_against_reference(void **state)
{
    (void)state;
    int32_t days = DATE_MIN_DAYS;
    char text[11], want[48];
    for (int y = 1; y <= 9999; y++) {
        for (int m = 1; m <= 12; m++) {
            int len = (m == 2) ? ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28)
                      : (m == 4 || m == 6 || m == 9 || m == 11) ? 30
                                                                 : 31;
            for (int d = 1; d <= len; d++, days++) {
                if (date_from_ymd(y, m, d) != days)
                    fail_msg("date_from_ymd(%d, %d, %d) = %d, want %d", y, m, d,
                             date_from_ymd(y, m, d), days);
                int gy, gm, gd;
                date_ymd(days, &gy, &gm, &gd);
                if (gy != y || gm != m || gd != d)
                    fail_msg("date_ymd(%d) = %d-%d-%d, want %d-%d-%d", days, gy, gm, gd, y, m, d);
                date_format(days, text);
                snprintf(want, sizeof(want), "%04d-%02d-%02d", y, m, d);
                if (strcmp(text, want) != 0)
                    fail_msg("date_format(%d) = %s, want %s", days, text, want);
                int32_t back;
                if (date_parse(text, 10, &back) != 0 || back != days)
                    fail_msg("date_parse(\"%s\") did not give %d", text, days);
            }
        }
    }
    assert_int_equal(days - 1, DATE_MAX_DAYS);
}

static void test_ymd_outside_years_1_to_9999(void **state)
{
    (void)state;
    int y, m, d;
    date_ymd(DATE_MIN_DAYS - 1, &y, &m, &d); /* the day before 0001-01-01 */
    assert_int_equal(y, 0);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
    date_ymd(DATE_MIN_DAYS - 366, &y, &m, &d); /* year 0 is a leap year */
    assert_int_equal(y, 0);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    date_ymd(DATE_MAX_DAYS + 1, &y, &m, &d);
    assert_int_equal(y, 10000);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    /* The extremes of int32_t convert without overflow and back exactly. */
    const int32_t extremes[] = { INT32_MIN, INT32_MIN + 1, INT32_MAX - 1, INT32_MAX };
    for (size_t i = 0; i < 4; i++) {
        date_ymd(extremes[i], &y, &m, &d);
        assert_true(m >= 1 && m <= 12);
        assert_true(d >= 1 && d <= date_days_in_month(y, m));
        assert_int_equal(date_from_ymd(y, m, d), extremes[i]);
    }
}

static void test_format(void **state)
{
    (void)state;
    char out[11];
    date_format(0, out);
    assert_string_equal(out, "1970-01-01");
    date_format(-1, out);
    assert_string_equal(out, "1969-12-31");
    date_format(19782, out);
    assert_string_equal(out, "2024-02-29");
    date_format(DATE_MIN_DAYS, out);
    assert_string_equal(out, "0001-01-01");
    date_format(DATE_MAX_DAYS, out);
    assert_string_equal(out, "9999-12-31");
    date_format(DATE_MIN_DAYS - 1, out);
    assert_string_equal(out, "0000-00-00");
    date_format(DATE_MAX_DAYS + 1, out);
    assert_string_equal(out, "0000-00-00");
    date_format(INT32_MAX, out);
    assert_string_equal(out, "0000-00-00");
    date_format(INT32_MIN, out);
    assert_string_equal(out, "0000-00-00");
}

static void test_from_ms(void **state)
{
    (void)state;
    assert_int_equal(date_from_ms(0), 0);
    assert_int_equal(date_from_ms(86399999), 0);
    assert_int_equal(date_from_ms(86400000), 1);
    assert_int_equal(date_from_ms(-1), -1); /* 1969-12-31T23:59:59.999Z */
    assert_int_equal(date_from_ms(-86400000), -1);
    assert_int_equal(date_from_ms(-86400001), -2);
    assert_int_equal(date_from_ms(1700000000000LL), 19675); /* 2023-11-14T22:13:20Z */
    assert_int_equal(date_from_ms((int64_t)19782 * 86400000 + 43200000), 19782);
    assert_int_equal(date_from_ms(INT64_MAX), INT32_MAX);
    assert_int_equal(date_from_ms(INT64_MIN), INT32_MIN);
    assert_int_equal(date_from_ms((int64_t)INT32_MAX * 86400000), INT32_MAX);
    assert_int_equal(date_from_ms((int64_t)INT32_MIN * 86400000), INT32_MIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_is_a_slice),
        cmocka_unit_test(test_days_in_month),
        cmocka_unit_test(test_every_day_against_reference),
        cmocka_unit_test(test_ymd_outside_years_1_to_9999),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_from_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
