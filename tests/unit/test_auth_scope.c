/*
 * test_auth_scope.c: OAuth scopes as space-separated lists.
 *
 * Scope checks decide what a token may do, so the cases that matter are the near
 * misses: a prefix or an extension of a real scope, a comma where a space belongs,
 * an empty item.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

#define BR SCOPE_BREAKS_READ
#define BW SCOPE_BREAKS_WRITE
#define WR SCOPE_WEBHOOKS_READ
#define WW SCOPE_WEBHOOKS_WRITE
#define PR SCOPE_PEOPLE_READ

static void test_known_scopes(void **state)
{
    (void)state;
    size_t n = 0;
    for (; auth_known_scopes[n]; n++)
        assert_true(auth_scope_known(slice_from_cstr(auth_known_scopes[n])));
    assert_int_equal(n, 8);
    assert_true(auth_scope_known(SLICE_LIT(SCOPE_BREAK_DEFINITIONS_WRITE)));
    assert_false(auth_scope_known(SLICE_LIT("connector-protimeapi-breaks.rea")));
    assert_false(auth_scope_known(SLICE_LIT("connector-protimeapi-breaks.reads")));
    assert_false(auth_scope_known(SLICE_LIT("CONNECTOR-PROTIMEAPI-BREAKS.READ")));
    assert_false(auth_scope_known(SLICE_LIT("")));
    assert_false(auth_scope_known(SLICE_NULL));
    /* Only n bytes count: a known scope followed by more text in the buffer. */
    assert_true(auth_scope_known(slice_make(BR " trailing", strlen(BR))));
    assert_false(auth_scope_known(slice_make(BR, strlen(BR) - 1)));
}

static void test_subset_empty_request(void **state)
{
    (void)state;
    const char *bad = (const char *)1;
    size_t bad_len = 77;
    assert_true(auth_scopes_subset("", BR, &bad, &bad_len));
    assert_true(auth_scopes_subset("", "", &bad, &bad_len));
    assert_true(auth_scopes_subset("    ", BR, &bad, &bad_len));
    /* Success leaves *bad alone. */
    assert_ptr_equal(bad, (const char *)1);
    assert_int_equal(bad_len, 77);
}

static void test_subset_exact_and_reordered(void **state)
{
    (void)state;
    assert_true(auth_scopes_subset(BR, BR, NULL, NULL));
    assert_true(auth_scopes_subset(BR " " WR, BR " " WR, NULL, NULL));
    assert_true(auth_scopes_subset(WR " " BR, BR " " WR, NULL, NULL));
    assert_true(auth_scopes_subset(WR, BR " " WR " " WW, NULL, NULL));
    /* Extra spaces anywhere. */
    assert_true(auth_scopes_subset("  " WR "   " BR "  ", BR " " WR, NULL, NULL));
    assert_true(auth_scopes_subset(WR, "   " BR "    " WR "   ", NULL, NULL));
    /* The same scope twice is still a subset. */
    assert_true(auth_scopes_subset(BR " " BR, BR, NULL, NULL));
}

static void test_subset_superset_refused(void **state)
{
    (void)state;
    const char *bad = NULL;
    size_t bad_len = 0;
    const char *req = BR " " WW " " PR;
    assert_false(auth_scopes_subset(req, BR " " PR, &bad, &bad_len));
    /* *bad points into requested, at the first offending scope. */
    assert_ptr_equal(bad, req + strlen(BR) + 1);
    assert_int_equal(bad_len, strlen(WW));
    assert_memory_equal(bad, WW, bad_len);

    /* Nothing allowed at all. */
    bad = NULL;
    assert_false(auth_scopes_subset(BR, "", &bad, &bad_len));
    assert_ptr_equal(bad, BR);
    assert_int_equal(bad_len, strlen(BR));

    /* Unknown scope names are simply not allowed. */
    const char *req2 = "  openid";
    assert_false(auth_scopes_subset(req2, BR, &bad, &bad_len));
    assert_ptr_equal(bad, req2 + 2);
    assert_int_equal(bad_len, 6);

    /* bad may be NULL. */
    assert_false(auth_scopes_subset(WW, BR, NULL, NULL));
}

static void test_subset_substrings_do_not_match(void **state)
{
    (void)state;
    const char *bad = NULL;
    size_t bad_len = 0;
    /* A prefix of an allowed scope. */
    assert_false(auth_scopes_subset("connector-protimeapi-breaks.rea", BR, &bad, &bad_len));
    assert_int_equal(bad_len, strlen("connector-protimeapi-breaks.rea"));
    assert_false(auth_scopes_subset("connector-protimeapi-breaks", BR, NULL, NULL));
    assert_false(auth_scopes_subset("breaks.read", BR, NULL, NULL));
    assert_false(auth_scopes_subset("read", BR, NULL, NULL));
    /* An extension of an allowed scope. */
    assert_false(auth_scopes_subset(BR "x", BR, NULL, NULL));
    assert_false(auth_scopes_subset(BR ".write", BR, NULL, NULL));
    assert_false(auth_scopes_subset("x" BR, BR, NULL, NULL));
    /* The requested scope appears only inside a longer allowed one. */
    assert_false(auth_scopes_subset(BR, BR "s " WR, NULL, NULL));
    assert_false(auth_scopes_subset(BR, "x" BR, NULL, NULL));
    /* break-definitions.read contains "read" and shares a prefix with breaks.read. */
    assert_false(auth_scopes_subset(BR, SCOPE_BREAK_DEFINITIONS_READ, NULL, NULL));
    /* Commas are not separators in a token request: "a,b" is one (unknown) item,
     * and so is ",a". */
    assert_false(auth_scopes_subset(BR "," WR, BR " " WR, NULL, NULL));
    assert_false(auth_scopes_subset("," BR, BR, NULL, NULL));
    assert_false(auth_scopes_subset(BR ",", BR, NULL, NULL));
    /* Case matters. */
    assert_false(auth_scopes_subset("CONNECTOR-PROTIMEAPI-BREAKS.READ", BR, NULL, NULL));
}

static void test_contain(void **state)
{
    (void)state;
    const char *list = BR " " WR " " WW;
    assert_true(auth_scopes_contain(list, BR));
    assert_true(auth_scopes_contain(list, WR));
    assert_true(auth_scopes_contain(list, WW));
    assert_false(auth_scopes_contain(list, PR));
    assert_false(auth_scopes_contain(list, BW));
    assert_false(auth_scopes_contain(list, "connector-protimeapi-breaks.rea"));
    assert_false(auth_scopes_contain(list, "connector-protimeapi-webhooks"));
    assert_false(auth_scopes_contain(list, "read"));
    assert_false(auth_scopes_contain(list, BR " " WR));
    assert_false(auth_scopes_contain(list, ""));
    assert_false(auth_scopes_contain("", BR));
    assert_false(auth_scopes_contain("   ", BR));
    assert_true(auth_scopes_contain("  " BR "  ", BR));
    assert_false(auth_scopes_contain(BR "s", BR));
    assert_false(auth_scopes_contain("x" BR, BR));
    assert_false(auth_scopes_contain(BR "," WR, WR));
    assert_false(auth_scopes_contain("," BR, BR));
    assert_false(auth_scopes_contain(BR ",", BR));
}

static void test_normalize_separators_and_duplicates(void **state)
{
    (void)state;
    char out[256];
    const char *bad = NULL;
    size_t bad_len = 0;
    assert_int_equal(auth_scopes_normalize(BR "," WR, out, sizeof(out), &bad, &bad_len), 0);
    assert_string_equal(out, BR " " WR);
    assert_int_equal(
        auth_scopes_normalize("  " BR " ,, " WR " ,", out, sizeof(out), &bad, &bad_len), 0);
    assert_string_equal(out, BR " " WR);
    /* Order of first appearance is kept; duplicates dropped. */
    assert_int_equal(auth_scopes_normalize(WW " " BR "," WW " " BR " " WW, out, sizeof(out),
                                           &bad, &bad_len),
                     0);
    assert_string_equal(out, WW " " BR);
    /* Empty input, only separators. */
    memset(out, 'X', sizeof(out));
    assert_int_equal(auth_scopes_normalize("", out, sizeof(out), &bad, &bad_len), 0);
    assert_string_equal(out, "");
    assert_int_equal(auth_scopes_normalize(" , ,", out, sizeof(out), &bad, &bad_len), 0);
    assert_string_equal(out, "");
    /* All eight known scopes fit in the usual 1024-byte field. */
    char all[1024] = "", big[1024];
    size_t off = 0;
    for (size_t i = 0; auth_known_scopes[i]; i++)
        off += (size_t)snprintf(all + off, sizeof(all) - off, "%s%s", i ? "," : "",
                                auth_known_scopes[i]);
    assert_int_equal(auth_scopes_normalize(all, big, sizeof(big), &bad, &bad_len), 0);
    for (size_t i = 0; auth_known_scopes[i]; i++)
        assert_true(auth_scopes_contain(big, auth_known_scopes[i]));
    assert_null(strchr(big, ','));
}

static void test_normalize_unknown(void **state)
{
    (void)state;
    char out[256];
    const char *bad = NULL;
    size_t bad_len = 0;
    const char *in = BR ",connector-protimeapi-breaks.rea " WR;
    assert_int_equal(auth_scopes_normalize(in, out, sizeof(out), &bad, &bad_len), BH_EINVAL);
    assert_ptr_equal(bad, in + strlen(BR) + 1);
    assert_int_equal(bad_len, strlen("connector-protimeapi-breaks.rea"));

    const char *in2 = "openid";
    assert_int_equal(auth_scopes_normalize(in2, out, sizeof(out), &bad, &bad_len), BH_EINVAL);
    assert_ptr_equal(bad, in2);
    assert_int_equal(bad_len, 6);

    const char *in3 = WR " " WR "x";
    assert_int_equal(auth_scopes_normalize(in3, out, sizeof(out), &bad, &bad_len), BH_EINVAL);
    assert_ptr_equal(bad, in3 + strlen(WR) + 1);
    assert_int_equal(bad_len, strlen(WR) + 1);

    /* Case matters. */
    assert_int_equal(auth_scopes_normalize("CONNECTOR-PROTIMEAPI-BREAKS.READ", out, sizeof(out),
                                           &bad, &bad_len),
                     BH_EINVAL);
}

static void test_normalize_overflow(void **state)
{
    (void)state;
    const char *bad = NULL;
    size_t bad_len = 0;
    const char *in = BR "," WR;
    const size_t want = strlen(BR " " WR);
    char out[128];
    /* Exactly enough room (the NUL included) works. */
    memset(out, 'X', sizeof(out));
    assert_int_equal(auth_scopes_normalize(in, out, want + 1, &bad, &bad_len), 0);
    assert_string_equal(out, BR " " WR);
    /* One byte short, or much shorter, or nothing at all: BH_ETOOBIG, and the bytes
     * past n are untouched. */
    memset(out, 'X', sizeof(out));
    assert_int_equal(auth_scopes_normalize(in, out, want, &bad, &bad_len), BH_ETOOBIG);
    for (size_t i = want; i < sizeof(out); i++)
        assert_int_equal(out[i], 'X');
    memset(out, 'X', sizeof(out));
    assert_int_equal(auth_scopes_normalize(in, out, 5, &bad, &bad_len), BH_ETOOBIG);
    for (size_t i = 5; i < sizeof(out); i++)
        assert_int_equal(out[i], 'X');
    assert_int_equal(auth_scopes_normalize(in, out, strlen(BR), &bad, &bad_len), BH_ETOOBIG);
    memset(out, 'X', sizeof(out));
    assert_int_equal(auth_scopes_normalize(in, out, 0, &bad, &bad_len), BH_ETOOBIG);
    assert_int_equal(out[0], 'X');
    /* A duplicate needs no room. */
    assert_int_equal(auth_scopes_normalize(BR " " BR, out, strlen(BR) + 1, &bad, &bad_len), 0);
    assert_string_equal(out, BR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_scopes),
        cmocka_unit_test(test_subset_empty_request),
        cmocka_unit_test(test_subset_exact_and_reordered),
        cmocka_unit_test(test_subset_superset_refused),
        cmocka_unit_test(test_subset_substrings_do_not_match),
        cmocka_unit_test(test_contain),
        cmocka_unit_test(test_normalize_separators_and_duplicates),
        cmocka_unit_test(test_normalize_unknown),
        cmocka_unit_test(test_normalize_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
