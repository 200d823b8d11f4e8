/*
 * test_clock.c: RFC 3339 time stamps, the fake clock and the random sources.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static void expect_format(int64_t ms, const char *want)
{
    char out[32];
    memset(out, 'X', sizeof(out));
    clock_format_rfc3339(ms, out);
    if (strcmp(out, want) != 0)
        fail_msg("clock_format_rfc3339(%lld) = \"%s\", want \"%s\"", (long long)ms, out, want);
}

static void expect_parse(const char *s, int64_t want)
{
    int64_t got = -777;
    int rc = clock_parse_rfc3339(s, &got);
    if (rc != 0)
        fail_msg("clock_parse_rfc3339(\"%s\") = %d, want 0", s, rc);
    if (got != want)
        fail_msg("clock_parse_rfc3339(\"%s\") gave %lld, want %lld", s, (long long)got,
                 (long long)want);
}

static void expect_reject(const char *s)
{
    int64_t got = -777;
    int rc = clock_parse_rfc3339(s, &got);
    if (rc != BH_EINVAL)
        fail_msg("clock_parse_rfc3339(\"%s\") = %d (value %lld), want BH_EINVAL", s, rc,
                 (long long)got);
}

static void test_format(void **state)
{
    (void)state;
    expect_format(0, "1970-01-01T00:00:00.000Z");
    expect_format(T0_MS, "2026-01-01T00:00:00.000Z");
    expect_format(T0_MS + DAY + 3 * HOUR + 4 * MIN + 5 * SEC + 678, "2026-01-02T03:04:05.678Z");
    expect_format(T0_MS + 7, "2026-01-01T00:00:00.007Z");
    expect_format(T0_MS - 1, "2025-12-31T23:59:59.999Z");
    expect_format(1709164800000LL, "2024-02-29T00:00:00.000Z");
    expect_format(951782400000LL, "2000-02-29T00:00:00.000Z");
    expect_format(-1, "1969-12-31T23:59:59.999Z");
    expect_format(-1000, "1969-12-31T23:59:59.000Z");
    expect_format(-1001, "1969-12-31T23:59:58.999Z");
    expect_format(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

static void test_parse(void **state)
{
    (void)state;
    expect_parse("2026-01-01T00:00:00Z", T0_MS);
    expect_parse("2026-01-01T00:00:00.000Z", T0_MS);
    expect_parse("2026-01-02T03:04:05.678Z", T0_MS + DAY + 3 * HOUR + 4 * MIN + 5 * SEC + 678);
    expect_parse("1970-01-01T00:00:00Z", 0);
    expect_parse("1969-12-31T23:59:59.999Z", -1);
    /* Fractions: fewer digits scale up, more are cut to milliseconds. */
    expect_parse("2026-01-01T00:00:00.5Z", T0_MS + 500);
    expect_parse("2026-01-01T00:00:00.05Z", T0_MS + 50);
    expect_parse("2026-01-01T00:00:00.123456789Z", T0_MS + 123);
    expect_parse("2026-01-01T00:00:00.999999Z", T0_MS + 999);
}

static void test_parse_offsets(void **state)
{
    (void)state;
    expect_parse("2026-01-01T01:00:00+01:00", T0_MS);
    expect_parse("2025-12-31T19:00:00-05:00", T0_MS);
    expect_parse("2026-01-01T05:30:00+05:30", T0_MS);
    expect_parse("2025-12-31T14:15:00-09:45", T0_MS);
    expect_parse("2026-01-01T00:00:00+00:00", T0_MS);
    expect_parse("2026-01-01T00:00:00-00:00", T0_MS);
    expect_parse("2026-01-01T01:00:00.250+01:00", T0_MS + 250);
    /* An offset can move the instant across a day, month and year boundary. */
    expect_parse("2025-12-31T23:30:00-01:00", T0_MS + 30 * MIN);
    expect_parse("2024-03-01T00:30:00+01:00", 1709164800000LL + 23 * HOUR + 30 * MIN);
}

static void test_parse_leap_days(void **state)
{
    (void)state;
    expect_parse("2024-02-29T00:00:00Z", 1709164800000LL);
    expect_parse("2000-02-29T00:00:00Z", 951782400000LL);
    expect_reject("2023-02-29T00:00:00Z");
    expect_reject("2100-02-29T00:00:00Z"); /* divisible by 100, not by 400 */
    expect_reject("1900-02-29T00:00:00Z");
    expect_reject("2024-02-30T00:00:00Z");
    expect_parse("2023-02-28T23:59:59.999Z", 1677628799999LL);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-01-01",
        "2026-01-01T00:00:00",      /* no zone */
        "2026-01-01T00:00Z",        /* no seconds */
        "2026-01-01T00:00:00.Z",    /* empty fraction */
        "2026-01-01T00:00:00,5Z",
        "2026-01-01T00:00:00ZZ",
        "2026-01-01T00:00:00Z ",
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00+01",
        "2026-01-01T00:00:00+1:00",
        "2026-01-01T00:00:00+01:00Z",
        "2026-01-01T00:00:00+01:0x",
        "2026-01-01T00:00:00UTC",
        "2026-01-01X00:00:00Z",
        "2026/01/01T00:00:00Z",
        "2026-1-01T00:00:00Z",
        "2026-01-1T00:00:00Z",
        "20x6-01-01T00:00:00Z",
        "2026-0a-01T00:00:00Z",
        "2026-01-01T0a:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-06-31T00:00:00Z",
        "2026-09-31T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T00:00:61Z",
        "-026-01-01T00:00:00Z",
        "+2026-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(bad[i]);
}

static void test_parse_rejects_bad_offsets(void **state)
{
    (void)state;
    expect_parse("2026-01-01T23:59:00+23:59", T0_MS);
    /* Regression (fixed): clock_parse_rfc3339 does not range-check the offset; RFC 3339 limits it
     * to hours 00-23 and minutes 00-59. Inputs "2026-01-01T00:00:00+25:00",
     * "2026-01-01T00:00:00+01:60" and "2026-01-01T00:00:00-99:99": expected
     * BH_EINVAL, actual 0 (with the instant shifted by 25 h, 2 h, and 100 h 39 min).
     * */
    expect_reject("2026-01-01T00:00:00+25:00");
    expect_reject("2026-01-01T00:00:00+01:60");
    expect_reject("2026-01-01T00:00:00-99:99");
}

static void test_round_trip(void **state)
{
    (void)state;
    bh_rand_t r;
    rand_fake_init(&r, 42);
    int64_t fixed[] = { 0, -1, 1, T0_MS, T0_MS + 999, 951782400000LL, 1709164800000LL,
                        253402300799999LL, 4102444800000LL /* 2100-01-01 */ };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        char s[32];
        int64_t back = 0;
        clock_format_rfc3339(fixed[i], s);
        assert_int_equal(strlen(s), 24);
        if (clock_parse_rfc3339(s, &back) != 0 || back != fixed[i])
            fail_msg("%lld -> \"%s\" -> %lld", (long long)fixed[i], s, (long long)back);
    }
    /* Random instants between 1970 and 9999. */
    for (int i = 0; i < 2000; i++) {
        uint64_t v;
        assert_int_equal(rand_bytes(&r, &v, sizeof(v)), 0);
        int64_t ms = (int64_t)(v % 253402300800000ULL);
        char s[32];
        int64_t back = 0;
        clock_format_rfc3339(ms, s);
        if (clock_parse_rfc3339(s, &back) != 0 || back != ms)
            fail_msg("%lld -> \"%s\" -> %lld", (long long)ms, s, (long long)back);
    }
}

static void test_fake_clock(void **state)
{
    (void)state;
    bh_clock_t c;
    clock_fake_init(&c, T0_MS);
    assert_int_equal(clock_now_ms(&c), T0_MS);
    int64_t m0 = clock_mono_ms(&c);
    /* Time does not move on its own. */
    assert_int_equal(clock_now_ms(&c), T0_MS);
    assert_int_equal(clock_mono_ms(&c), m0);
    clock_fake_advance(&c, 250);
    assert_int_equal(clock_now_ms(&c), T0_MS + 250);
    assert_int_equal(clock_mono_ms(&c), m0 + 250);
    clock_fake_advance(&c, 30 * DAY);
    assert_int_equal(clock_now_ms(&c), T0_MS + 250 + 30 * DAY);
    assert_int_equal(clock_mono_ms(&c), m0 + 250 + 30 * DAY);
    clock_fake_advance(&c, 0);
    assert_int_equal(clock_now_ms(&c), T0_MS + 250 + 30 * DAY);

    /* Two fake clocks are independent. */
    bh_clock_t d;
    clock_fake_init(&d, 5);
    clock_fake_advance(&d, 10);
    assert_int_equal(clock_now_ms(&d), 15);
    assert_int_equal(clock_now_ms(&c), T0_MS + 250 + 30 * DAY);
}

static void test_system_clock(void **state)
{
    (void)state;
    bh_clock_t *c = clock_system();
    assert_non_null(c);
    assert_ptr_equal(c, clock_system());
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
    int64_t ref = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = clock_now_ms(c);
    assert_true(now >= ref && now - ref < 5000);
    int64_t m1 = clock_mono_ms(c);
    int64_t m2 = clock_mono_ms(c);
    assert_true(m2 >= m1);
}

static void test_fake_rand_deterministic(void **state)
{
    (void)state;
    bh_rand_t a, b, c;
    rand_fake_init(&a, 12345);
    rand_fake_init(&b, 12345);
    rand_fake_init(&c, 12346);
    unsigned char x[64], y[64], z[64];
    assert_int_equal(rand_bytes(&a, x, sizeof(x)), 0);
    assert_int_equal(rand_bytes(&b, y, sizeof(y)), 0);
    assert_int_equal(rand_bytes(&c, z, sizeof(z)), 0);
    assert_memory_equal(x, y, sizeof(x));
    assert_memory_not_equal(x, z, sizeof(x));
    /* The stream moves on: the next draw differs from the first. */
    unsigned char x2[64];
    assert_int_equal(rand_bytes(&a, x2, sizeof(x2)), 0);
    assert_memory_not_equal(x, x2, sizeof(x));
    /* Re-seeding starts the same stream again. */
    rand_fake_init(&a, 12345);
    assert_int_equal(rand_bytes(&a, x2, sizeof(x2)), 0);
    assert_memory_equal(x, x2, sizeof(x));
}

static void test_fake_rand_fills_every_byte(void **state)
{
    (void)state;
    /* Odd sizes, into buffers pre-filled differently: equal results mean every
     * byte was written (and nothing past n, checked by the guard bytes). */
    for (size_t n = 1; n <= 21; n++) {
        bh_rand_t a, b;
        rand_fake_init(&a, 7);
        rand_fake_init(&b, 7);
        unsigned char p[32], q[32];
        memset(p, 0xaa, sizeof(p));
        memset(q, 0x55, sizeof(q));
        assert_int_equal(rand_bytes(&a, p, n), 0);
        assert_int_equal(rand_bytes(&b, q, n), 0);
        assert_memory_equal(p, q, n);
        assert_int_equal(p[n], 0xaa);
        assert_int_equal(q[n], 0x55);
    }
}

static int const_bytes(bh_rand_t *r, void *p, size_t n)
{
    memset(p, (int)r->fake_state, n);
    return 0;
}

static int failing_bytes(bh_rand_t *r, void *p, size_t n)
{
    (void)r;
    (void)p;
    (void)n;
    return BH_EIO;
}

static void test_rand_unit_range(void **state)
{
    (void)state;
    bh_rand_t r;
    rand_fake_init(&r, 99);
    double sum = 0, lo = 1, hi = 0;
    int below_half = 0;
    for (int i = 0; i < 20000; i++) {
        double u = rand_unit(&r);
        if (!(u >= 0.0 && u < 1.0))
            fail_msg("rand_unit gave %f", u);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        below_half += u < 0.5;
    }
    assert_true(sum / 20000 > 0.48 && sum / 20000 < 0.52);
    assert_true(lo < 0.01);
    assert_true(hi > 0.99);
    assert_in_range(below_half, 9600, 10400);

    /* The extremes of the underlying bytes stay inside [0, 1). */
    bh_rand_t k = { const_bytes, 0xff };
    double top = rand_unit(&k);
    assert_true(top < 1.0);
    assert_true(top > 0.999999);
    k.fake_state = 0;
    assert_true(rand_unit(&k) == 0.0);

    /* A failing source still gives a value in range. */
    bh_rand_t f = { failing_bytes, 0 };
    double u = rand_unit(&f);
    assert_true(u >= 0.0 && u < 1.0);
}

static void test_rand_unit_deterministic(void **state)
{
    (void)state;
    bh_rand_t a, b;
    rand_fake_init(&a, 5);
    rand_fake_init(&b, 5);
    for (int i = 0; i < 100; i++)
        assert_true(rand_unit(&a) == rand_unit(&b));
}

static void test_system_rand(void **state)
{
    (void)state;
    bh_rand_t *r = rand_system();
    assert_non_null(r);
    unsigned char a[32], b[32];
    assert_int_equal(rand_bytes(r, a, sizeof(a)), 0);
    assert_int_equal(rand_bytes(r, b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    double u = rand_unit(r);
    assert_true(u >= 0.0 && u < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_offsets),
        cmocka_unit_test(test_parse_leap_days),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_rejects_bad_offsets),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fake_clock),
        cmocka_unit_test(test_system_clock),
        cmocka_unit_test(test_fake_rand_deterministic),
        cmocka_unit_test(test_fake_rand_fills_every_byte),
        cmocka_unit_test(test_rand_unit_range),
        cmocka_unit_test(test_rand_unit_deterministic),
        cmocka_unit_test(test_system_rand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
