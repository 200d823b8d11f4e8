/*
 * test_slice.c: borrowed (pointer, length) views.
 *
 * Slices come from network buffers that are not NUL-terminated, so several
 * inputs here are slices of a longer string: a function that reads past n
 * sees the extra bytes and gives a wrong answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "core/slice.h"

static bool to_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    return slice_to_u64(slice_from_cstr(s), max, out);
}

static void test_to_u64_valid(void **state)
{
    (void)state;
    unsigned long long v = 99;
    assert_true(to_u64("0", ULLONG_MAX, &v));
    assert_int_equal(v, 0);
    assert_true(to_u64("7", ULLONG_MAX, &v));
    assert_int_equal(v, 7);
    assert_true(to_u64("123456", ULLONG_MAX, &v));
    assert_int_equal(v, 123456);
    assert_true(to_u64("007", ULLONG_MAX, &v));
    assert_int_equal(v, 7);
    assert_true(to_u64("18446744073709551615", ULLONG_MAX, &v));
    assert_true(v == ULLONG_MAX);
    /* Only the first n bytes count. */
    assert_true(slice_to_u64(slice_make("123x", 3), ULLONG_MAX, &v));
    assert_int_equal(v, 123);
    assert_true(slice_to_u64(slice_make("4599", 2), ULLONG_MAX, &v));
    assert_int_equal(v, 45);
}

static void test_to_u64_bounds(void **state)
{
    (void)state;
    unsigned long long v = 0;
    assert_true(to_u64("65535", 65535, &v));
    assert_int_equal(v, 65535);
    assert_false(to_u64("65536", 65535, &v));
    assert_false(to_u64("65540", 65535, &v));
    assert_false(to_u64("100000", 65535, &v));
    assert_true(to_u64("100", 100, &v));
    assert_false(to_u64("101", 100, &v));
    assert_true(to_u64("0", 0, &v));
    assert_int_equal(v, 0);
    assert_true(to_u64("10", 10, &v));
    assert_false(to_u64("11", 10, &v));
    assert_true(to_u64("9", 9, &v));
    assert_false(to_u64("10", 9, &v));
    assert_true(to_u64("5", 5, &v));
    assert_int_equal(v, 5);
    assert_true(to_u64("12", 15, &v));
    assert_false(to_u64("16", 15, &v));
    assert_false(to_u64("19", 15, &v));
}

static void test_to_u64_digit_above_small_max(void **state)
{
    (void)state;
    unsigned long long v = 0;
    /* A max below 9 with a digit larger than max. */
    assert_true(to_u64("3", 5, &v));
    assert_int_equal(v, 3);
    assert_false(to_u64("10", 5, &v));
    /* Regression (fixed): slice_to_u64 computes (max - d) / 10 in unsigned arithmetic; when a digit d
     * is larger than max (possible only for max < 9) it wraps to a huge bound and the
     * overflow check passes. Inputs: "7" with max 5 -> expected false, actual true
     * with *out = 7; "99999" with max 5 -> expected false, actual true with 99999;
     * "9" with max 0 -> expected false, actual true with 9. */
    assert_false(to_u64("7", 5, &v));
    assert_false(to_u64("99999", 5, &v));
    assert_false(to_u64("9", 0, &v));
    assert_false(to_u64("1", 0, &v));
}

static void test_to_u64_overflow(void **state)
{
    (void)state;
    unsigned long long v = 42;
    assert_false(to_u64("18446744073709551616", ULLONG_MAX, &v));
    assert_false(to_u64("18446744073709551620", ULLONG_MAX, &v));
    assert_false(to_u64("99999999999999999999", ULLONG_MAX, &v));
    assert_false(to_u64("184467440737095516150", ULLONG_MAX, &v));
    assert_false(to_u64("000000000000000000000000000018446744073709551616", ULLONG_MAX, &v));
    assert_true(to_u64("000000000000000000000000000018446744073709551615", ULLONG_MAX, &v));
    assert_true(v == ULLONG_MAX);
}

static void test_to_u64_rejects_non_digits(void **state)
{
    (void)state;
    static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "a1", "0x10", "1.5",
                                       "1e3", "１", "/", ":", "\t7" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned long long v = 1234;
        if (to_u64(bad[i], ULLONG_MAX, &v))
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(v, 1234); /* out untouched on failure */
    }
    unsigned long long v = 0;
    assert_false(slice_to_u64(SLICE_NULL, ULLONG_MAX, &v));
    assert_false(slice_to_u64(slice_make("12\0" "3", 4), ULLONG_MAX, &v));
}

static void test_trim(void **state)
{
    (void)state;
    slice_t t = slice_trim(slice_from_cstr("  a b\t "));
    assert_int_equal(t.n, 3);
    assert_memory_equal(t.p, "a b", 3);
    t = slice_trim(slice_from_cstr("\t\tx"));
    assert_true(slice_eq_cstr(t, "x"));
    t = slice_trim(slice_from_cstr("x  "));
    assert_true(slice_eq_cstr(t, "x"));
    t = slice_trim(slice_from_cstr("nothing"));
    assert_true(slice_eq_cstr(t, "nothing"));
    t = slice_trim(slice_from_cstr(" \t \t"));
    assert_int_equal(t.n, 0);
    t = slice_trim(slice_from_cstr(""));
    assert_int_equal(t.n, 0);
    t = slice_trim(SLICE_NULL);
    assert_int_equal(t.n, 0);
    /* Only spaces and tabs: CR, LF and others stay. */
    static const char *const kept[] = { "\r\nv\n", "\nv\n", "\rv\r", "\vv\f", "\xa0" "a" "\xa0" };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        t = slice_trim(slice_from_cstr(kept[i]));
        if (!slice_eq_cstr(t, kept[i]))
            fail_msg("trim changed \"%s\"", kept[i]);
    }
    /* Trimming stays within n: the space after the slice is not part of it. */
    t = slice_trim(slice_make("ab   cd", 4));
    assert_true(slice_eq_cstr(t, "ab"));
    t = slice_trim(slice_make(" ab", 2));
    assert_true(slice_eq_cstr(t, "a"));
}

static void test_eq_nocase(void **state)
{
    (void)state;
    assert_true(slice_eq_nocase(slice_from_cstr("Content-Type"), "content-type"));
    assert_true(slice_eq_nocase(slice_from_cstr("CONTENT-TYPE"), "Content-Type"));
    assert_true(slice_eq_nocase(slice_from_cstr("x"), "X"));
    assert_false(slice_eq_nocase(slice_from_cstr("Content"), "Content-Type"));
    assert_false(slice_eq_nocase(slice_from_cstr("Content-Type"), "Content"));
    assert_false(slice_eq_nocase(slice_from_cstr("Content-Typf"), "content-type"));
    assert_false(slice_eq_nocase(slice_from_cstr("a"), ""));
    assert_true(slice_eq_nocase(slice_from_cstr(""), ""));
    assert_true(slice_eq_nocase(SLICE_NULL, ""));
    /* Not a letter: '[' and '{' differ from each other despite the 0x20 gap. */
    assert_false(slice_eq_nocase(slice_from_cstr("["), "{"));
    /* Compares n bytes of a longer buffer. */
    assert_true(slice_eq_nocase(slice_make("HOSTNAME", 4), "host"));
    assert_false(slice_eq_nocase(slice_make("HOSTNAME", 5), "host"));
}

static void test_eq_and_prefix(void **state)
{
    (void)state;
    assert_true(slice_eq(SLICE_LIT("abc"), slice_from_cstr("abc")));
    assert_false(slice_eq(SLICE_LIT("abc"), SLICE_LIT("abd")));
    assert_false(slice_eq(SLICE_LIT("abc"), SLICE_LIT("ab")));
    assert_false(slice_eq(SLICE_LIT("abc"), SLICE_LIT("ABC")));
    assert_true(slice_eq(SLICE_NULL, SLICE_LIT("")));
    assert_false(slice_eq_cstr(slice_make("a\0b", 3), "a"));
    assert_int_equal(SLICE_LIT("abc").n, 3);
    assert_int_equal(slice_from_cstr(NULL).n, 0);
    assert_true(slice_starts_with(SLICE_LIT("Bearer xyz"), "Bearer "));
    assert_false(slice_starts_with(SLICE_LIT("Bear"), "Bearer "));
    assert_false(slice_starts_with(SLICE_LIT("bearer xyz"), "Bearer "));
    assert_true(slice_starts_with(SLICE_LIT("x"), ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_u64_valid),
        cmocka_unit_test(test_to_u64_bounds),
        cmocka_unit_test(test_to_u64_digit_above_small_max),
        cmocka_unit_test(test_to_u64_overflow),
        cmocka_unit_test(test_to_u64_rejects_non_digits),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_eq_nocase),
        cmocka_unit_test(test_eq_and_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
