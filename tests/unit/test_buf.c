/*
 * test_buf.c: the bounded byte buffer.
 *
 * The point of buf_t is its hard maximum, so most tests sit exactly on the
 * boundary: filling to max must succeed, one byte more must fail with
 * BH_ETOOBIG and leave the content byte for byte as it was. Every check also
 * looks at the trailing NUL, which callers rely on to pass the content to C APIs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

/* Asserts the invariants every operation must keep: len within max, storage large
 * enough for the content and its NUL, and the NUL in place. */
static void check_invariants(const buf_t *b)
{
    assert_true(b->len <= b->max);
    if (b->p) {
        assert_true(b->cap >= b->len + 1);
        assert_int_equal(b->p[b->len], '\0');
    } else {
        assert_int_equal(b->len, 0);
    }
    assert_int_equal(strlen(buf_cstr(b)) <= b->len, 1);
}

static void test_init_is_empty(void **state)
{
    (void)state;
    buf_t b;
    memset(&b, 0xa5, sizeof(b));
    buf_init(&b, 100);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    assert_string_equal(buf_cstr(&b), "");
    slice_t s = buf_slice(&b);
    assert_non_null(s.p);
    assert_int_equal(s.n, 0);
    buf_deinit(&b);
}

static void test_append_up_to_max_exactly(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "0123", 4), 0);
    assert_int_equal(buf_append(&b, "456789", 6), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(buf_cstr(&b), "0123456789");
    check_invariants(&b);

    /* One byte more, through every append flavour: refused, content untouched. */
    assert_int_equal(buf_append(&b, "x", 1), BH_ETOOBIG);
    assert_int_equal(buf_append_char(&b, 'x'), BH_ETOOBIG);
    assert_int_equal(buf_append_str(&b, "x"), BH_ETOOBIG);
    assert_int_equal(buf_printf(&b, "%c", 'x'), BH_ETOOBIG);
    assert_int_equal(buf_reserve(&b, 1), BH_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(buf_cstr(&b), "0123456789");
    check_invariants(&b);

    /* Appending nothing to a full buffer is fine. */
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_string_equal(buf_cstr(&b), "0123456789");
    buf_deinit(&b);
}

static void test_append_too_big_leaves_content(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    /* Would reach 9 bytes: refused as a whole, nothing partially copied. */
    assert_int_equal(buf_append(&b, "defghi", 6), BH_ETOOBIG);
    assert_int_equal(b.len, 3);
    assert_string_equal(buf_cstr(&b), "abc");
    check_invariants(&b);
    /* A length that would overflow len + n must not wrap around the check. */
    assert_int_equal(buf_append(&b, "z", SIZE_MAX), BH_ETOOBIG);
    assert_int_equal(buf_append(&b, "z", SIZE_MAX - 2), BH_ETOOBIG);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "abc");
    /* Exactly the rest still fits. */
    assert_int_equal(buf_append(&b, "defgh", 5), 0);
    assert_string_equal(buf_cstr(&b), "abcdefgh");
    check_invariants(&b);
    buf_deinit(&b);
}

static void test_max_zero(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(buf_append_char(&b, 'a'), BH_ETOOBIG);
    assert_int_equal(buf_printf(&b, "%d", 1), BH_ETOOBIG);
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, 0);
    check_invariants(&b);
    buf_deinit(&b);
}

static void test_max_size_max(void **state)
{
    (void)state;
    buf_t b;
    /* SIZE_MAX - 1 (max + 1 still representable) behaves like an unbounded buffer. */
    buf_init(&b, SIZE_MAX - 1);
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    assert_string_equal(buf_cstr(&b), "abc");
    check_invariants(&b);
    buf_deinit(&b);

    buf_init(&b, SIZE_MAX);
    assert_int_equal(b.max, SIZE_MAX);
    /* Regression (fixed): buf_reserve clamps cap to b->max + 1, which wraps to 0 when max is
     * SIZE_MAX: it then realloc()s 0 bytes, records cap 0, and buf_append writes
     * "abc" and the NUL past that allocation (heap overflow under ASan).
     * Expected: rc 0 and content "abc". */
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    assert_string_equal(buf_cstr(&b), "abc");
    check_invariants(&b);
    buf_deinit(&b);
}

static void test_growth_byte_by_byte(void **state)
{
    (void)state;
    enum { MAX = 100000 };
    buf_t b;
    buf_init(&b, MAX);
    for (size_t i = 0; i < MAX; i++) {
        assert_int_equal(buf_append_char(&b, (char)('a' + i % 26)), 0);
        assert_true(b.cap <= (size_t)MAX + 1);
    }
    assert_int_equal(b.len, MAX);
    check_invariants(&b);
    for (size_t i = 0; i < MAX; i++)
        assert_int_equal(b.p[i], 'a' + i % 26);
    assert_int_equal(buf_append_char(&b, 'x'), BH_ETOOBIG);
    assert_int_equal(b.len, MAX);
    buf_deinit(&b);
}

static void test_binary_content(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 64);
    assert_int_equal(buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(buf_append_char(&b, '\0'), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "a\0b\0", 5); /* content plus the terminator */
    slice_t s = buf_slice(&b);
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.p, "a\0b\0", 4);
    buf_deinit(&b);
}

static void test_printf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(buf_cstr(&b), "42-x");
    /* printf appends, it does not overwrite. */
    assert_int_equal(buf_printf(&b, "|%05u|%-3s|", 7u, "ab"), 0);
    assert_string_equal(buf_cstr(&b), "42-x|00007|ab |");
    assert_int_equal(b.len, strlen("42-x|00007|ab |"));

    /* Output longer than the first allocation, so printf has to grow the storage. */
    char big[1001];
    memset(big, 'q', 1000);
    big[1000] = '\0';
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 1002);
    assert_int_equal(b.p[0], '<');
    assert_int_equal(b.p[1001], '>');
    assert_int_equal(b.p[500], 'q');
    check_invariants(&b);
    buf_deinit(&b);
}

static void test_printf_exact_fit_and_overflow(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 6);
    assert_int_equal(buf_printf(&b, "%s", "ab"), 0);
    /* "cdef" takes it to exactly 6. */
    assert_int_equal(buf_printf(&b, "%c%c%s", 'c', 'd', "ef"), 0);
    assert_string_equal(buf_cstr(&b), "abcdef");
    check_invariants(&b);
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "ab"), 0);
    /* "12345" would make 7: refused, "ab" intact. */
    assert_int_equal(buf_printf(&b, "%d", 12345), BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "ab");
    assert_int_equal(b.len, 2);
    check_invariants(&b);
    buf_deinit(&b);
}

static int call_vprintf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int call_vprintf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_vprintf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 32);
    assert_int_equal(call_vprintf(&b, "%s=%lld", "n", -5LL), 0);
    assert_string_equal(buf_cstr(&b), "n=-5");
    assert_int_equal(call_vprintf(&b, "%040d", 1), BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "n=-5");
    buf_deinit(&b);
}

static void test_consume(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 64);
    assert_int_equal(buf_append_str(&b, "hello world"), 0);
    buf_consume(&b, 0);
    assert_string_equal(buf_cstr(&b), "hello world");
    buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_cstr(&b), "world");
    check_invariants(&b);
    buf_consume(&b, 4);
    assert_string_equal(buf_cstr(&b), "d");
    buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    check_invariants(&b);

    /* Consuming frees room under the maximum. */
    buf_t c;
    buf_init(&c, 4);
    assert_int_equal(buf_append_str(&c, "abcd"), 0);
    assert_int_equal(buf_append_char(&c, 'e'), BH_ETOOBIG);
    buf_consume(&c, 2);
    assert_int_equal(buf_append_str(&c, "ef"), 0);
    assert_string_equal(buf_cstr(&c), "cdef");
    assert_int_equal(buf_append_char(&c, 'g'), BH_ETOOBIG);
    check_invariants(&c);
    buf_deinit(&c);
    buf_deinit(&b);
}

static void test_consume_empty(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    buf_consume(&b, 0); /* never allocated: must not touch p */
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    buf_deinit(&b);
}

static void test_reset_keeps_storage(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 16);
    assert_int_equal(buf_append_str(&b, "0123456789abcdef"), 0);
    char *p = b.p;
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.max, 16);
    check_invariants(&b);
    /* The maximum still holds after a reset, and is available in full again. */
    assert_int_equal(buf_append_str(&b, "fedcba9876543210"), 0);
    assert_int_equal(buf_append_char(&b, 'x'), BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "fedcba9876543210");
    buf_deinit(&b);

    /* Reset of a never-used buffer is harmless. */
    buf_init(&b, 4);
    buf_reset(&b);
    assert_null(b.p);
    assert_string_equal(buf_cstr(&b), "");
    buf_deinit(&b);
}

static void test_deinit_then_reuse(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    buf_deinit(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(buf_append_str(&b, "12345678"), 0);
    assert_int_equal(buf_append_char(&b, '9'), BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "12345678");
    buf_deinit(&b);
    buf_deinit(&b); /* twice is fine */
}

static void test_reserve(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 1000);
    assert_int_equal(buf_append_str(&b, "ab"), 0);
    assert_int_equal(buf_reserve(&b, 500), 0);
    assert_int_equal(b.len, 2);
    assert_true(b.cap >= 2 + 500 + 1);
    assert_string_equal(buf_cstr(&b), "ab");
    /* Writing in place into the reserved room, then committing by hand. */
    memset(b.p + b.len, 'z', 500);
    b.len += 500;
    b.p[b.len] = '\0';
    check_invariants(&b);
    assert_int_equal(buf_reserve(&b, 498), 0);
    assert_int_equal(buf_reserve(&b, 499), BH_ETOOBIG);
    assert_int_equal(b.len, 502);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_up_to_max_exactly),
        cmocka_unit_test(test_append_too_big_leaves_content),
        cmocka_unit_test(test_max_zero),
        cmocka_unit_test(test_max_size_max),
        cmocka_unit_test(test_growth_byte_by_byte),
        cmocka_unit_test(test_binary_content),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_exact_fit_and_overflow),
        cmocka_unit_test(test_vprintf),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_consume_empty),
        cmocka_unit_test(test_reset_keeps_storage),
        cmocka_unit_test(test_deinit_then_reuse),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
