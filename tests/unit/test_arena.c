/*
 * test_arena.c: the per-request bump allocator.
 *
 * Allocations are written in full after they are handed out, so that an
 * allocation which is too small or overlaps another shows up as a changed
 * pattern here (and as an overflow under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdalign.h>
#include <string.h>

#include "core/arena.h"

#define ALIGN_ANY alignof(max_align_t)

static void assert_aligned(const void *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % ALIGN_ANY, 0);
}

static void test_alignment(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 4095, 4096,
                                    4097, 1, 3 };
    void *ptrs[sizeof(sizes) / sizeof(sizes[0])];
    arena_t a;
    arena_init(&a, 1 << 20);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ptrs[i] = arena_alloc(&a, sizes[i]);
        assert_aligned(ptrs[i]);
        memset(ptrs[i], (int)i + 1, sizes[i]);
    }
    /* No allocation overlapped another: each still holds its own pattern. */
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const unsigned char *p = ptrs[i];
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(p[k], i + 1);
    }
    /* Storing the most demanding types at the returned address is valid. */
    long double *ld = arena_alloc(&a, sizeof(*ld));
    assert_aligned(ld);
    *ld = 1.5L;
    assert_true(*ld == 1.5L);
    arena_deinit(&a);
}

static void test_large_allocation(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 1 << 20);
    char *small = arena_alloc(&a, 10);
    assert_non_null(small);
    memset(small, 's', 10);
    /* Bigger than any default block. */
    char *big = arena_alloc(&a, 100000);
    assert_aligned(big);
    memset(big, 'b', 100000);
    char *after = arena_alloc(&a, 10);
    assert_aligned(after);
    memset(after, 'a', 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(small[i], 's');
        assert_int_equal(after[i], 'a');
    }
    assert_int_equal(big[0], 'b');
    assert_int_equal(big[99999], 'b');
    assert_true(a.used >= 100000 + 20);
    arena_deinit(&a);
}

static void test_max_enforced(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 256);
    for (int i = 0; i < 16; i++) {
        void *p = arena_alloc(&a, 16);
        assert_aligned(p);
        memset(p, 0xee, 16);
    }
    assert_int_equal(a.used, 256);
    /* The arena is full: even one byte is refused, and the refusal changes nothing. */
    assert_null(arena_alloc(&a, 1));
    assert_null(arena_alloc(&a, 16));
    assert_int_equal(a.used, 256);
    assert_null(arena_strndup(&a, "x", 1));
    assert_null(arena_printf(&a, "%d", 1));
    arena_deinit(&a);
}

static void test_max_single_request(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 4096);
    assert_null(arena_alloc(&a, 4097));
    assert_int_equal(a.used, 0);
    /* Sizes that overflow when rounded up to the alignment. */
    assert_null(arena_alloc(&a, SIZE_MAX));
    assert_null(arena_alloc(&a, SIZE_MAX - 1));
    assert_null(arena_alloc(&a, SIZE_MAX - ALIGN_ANY + 2));
    assert_int_equal(a.used, 0);
    /* The whole budget in one piece still works. */
    void *p = arena_alloc(&a, 4096);
    assert_aligned(p);
    memset(p, 1, 4096);
    assert_null(arena_alloc(&a, 1));
    arena_deinit(&a);
}

static void test_reset_reuses(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 1 << 20);
    char *first = arena_alloc(&a, 32);
    assert_non_null(first);
    /* Force several more blocks. */
    for (int i = 0; i < 20; i++) {
        char *p = arena_alloc(&a, 3000);
        assert_non_null(p);
        memset(p, 'x', 3000);
    }
    assert_true(a.used >= 20 * 3000);
    arena_reset(&a);
    assert_int_equal(a.used, 0);
    /* The first block is kept and handed out again from its start. */
    char *again = arena_alloc(&a, 32);
    assert_ptr_equal(again, first);
    memset(again, 'y', 32);
    arena_deinit(&a);
}

static void test_reset_restores_budget(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 1024);
    for (int round = 0; round < 3; round++) {
        void *p = arena_alloc(&a, 1024);
        assert_aligned(p);
        memset(p, round, 1024);
        assert_null(arena_alloc(&a, 16));
        arena_reset(&a);
        assert_int_equal(a.used, 0);
    }
    arena_deinit(&a);
}

static void test_reset_empty_and_deinit(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 64);
    arena_reset(&a);
    assert_null(a.head);
    assert_int_equal(a.used, 0);
    void *p = arena_alloc(&a, 8);
    assert_aligned(p);
    arena_deinit(&a);
    assert_null(a.head);
    assert_int_equal(a.used, 0);
}

static void test_strndup(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 4096);
    const char src[] = { 'h', 'e', 'l', 'l', 'o', '!', '!' }; /* no terminator */
    char *s = arena_strndup(&a, src, 5);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_ptr_not_equal(s, src);
    char *e = arena_strndup(&a, src, 0);
    assert_non_null(e);
    assert_string_equal(e, "");
    /* Embedded NULs are copied: n bytes, then the terminator. */
    char *z = arena_strndup(&a, "a\0b", 3);
    assert_non_null(z);
    assert_memory_equal(z, "a\0b\0", 4);
    /* The earlier copies are not disturbed by later ones. */
    assert_string_equal(s, "hello");
    arena_deinit(&a);
}

static void test_strndup_respects_max(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 64);
    char src[64];
    memset(src, 'k', sizeof(src));
    /* 64 bytes plus the NUL do not fit in 64. */
    assert_null(arena_strndup(&a, src, 64));
    assert_int_equal(a.used, 0);
    char *s = arena_strndup(&a, src, 63);
    assert_non_null(s);
    assert_int_equal(strlen(s), 63);
    arena_deinit(&a);
}

static void test_printf(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 1 << 16);
    char *s = arena_printf(&a, "%s-%d-%05.1f", "abc", 42, 2.5);
    assert_non_null(s);
    assert_string_equal(s, "abc-42-002.5");
    char *empty = arena_printf(&a, "%s", "");
    assert_non_null(empty);
    assert_string_equal(empty, "");
    /* Longer than a block. */
    char *big = arena_printf(&a, "[%5000d]", 7);
    assert_non_null(big);
    assert_int_equal(strlen(big), 5002);
    assert_int_equal(big[0], '[');
    assert_int_equal(big[5000], '7');
    assert_int_equal(big[5001], ']');
    assert_string_equal(s, "abc-42-002.5");
    arena_deinit(&a);
}

static void test_printf_respects_max(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a, 32);
    assert_null(arena_printf(&a, "%040d", 1));
    assert_int_equal(a.used, 0);
    char *s = arena_printf(&a, "%031d", 1); /* 31 chars + NUL = 32 */
    assert_non_null(s);
    assert_int_equal(strlen(s), 31);
    arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_large_allocation),
        cmocka_unit_test(test_max_enforced),
        cmocka_unit_test(test_max_single_request),
        cmocka_unit_test(test_reset_reuses),
        cmocka_unit_test(test_reset_restores_budget),
        cmocka_unit_test(test_reset_empty_and_deinit),
        cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_strndup_respects_max),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_printf_respects_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
