/*
 * test_extref.c: the externalReferences=(collection,name)... parameter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "filter/extref.h"

static int setup(void **state)
{
    arena_t *a = malloc(sizeof(*a));
    if (!a)
        return -1;
    arena_init(a, 1 << 20);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    arena_t *a = *state;
    arena_deinit(a);
    free(a);
    return 0;
}

static extref_list_t parse_ok(arena_t *a, const char *s)
{
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    int rc = extref_parse(s, strlen(s), a, &l, err, sizeof(err));
    if (rc != 0)
        fail_msg("extref_parse(\"%s\") = %d: %s", s, rc, err);
    assert_non_null(l.items);
    return l;
}

static void expect_ref(const extref_t *r, const char *name, bool predefined)
{
    assert_string_equal(r->collection, "people");
    assert_string_equal(r->name, name);
    assert_int_equal(r->name_len, strlen(name));
    assert_int_equal(r->predefined, predefined);
}

static void expect_error_n(arena_t *a, const char *s, size_t n, const char *msg)
{
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    int rc = extref_parse(s, n, a, &l, err, sizeof(err));
    if (rc != BH_EINVAL)
        fail_msg("extref_parse(\"%.*s\") = %d, want BH_EINVAL", (int)n, s, rc);
    if (strcmp(err, msg) != 0)
        fail_msg("extref_parse(\"%.*s\")\n  reason \"%s\"\n  want   \"%s\"", (int)n, s, err, msg);
    assert_null(l.items);
    assert_int_equal(l.n, 0);
}

static void expect_error(arena_t *a, const char *s, const char *msg)
{
    expect_error_n(a, s, strlen(s), msg);
}

static void test_valid(void **state)
{
    arena_t *a = *state;
    extref_list_t l = parse_ok(a, "(people,@employee-number)");
    assert_int_equal(l.n, 1);
    expect_ref(&l.items[0], "@employee-number", true);

    l = parse_ok(a, "(people,@employee-number)(people,HRMID)");
    assert_int_equal(l.n, 2);
    expect_ref(&l.items[0], "@employee-number", true);
    expect_ref(&l.items[1], "HRMID", false);

    l = parse_ok(a, "(people,@badge-number)(people,a.b_c-D9)(people,1)");
    assert_int_equal(l.n, 3);
    expect_ref(&l.items[0], "@badge-number", true);
    expect_ref(&l.items[1], "a.b_c-D9", false);
    expect_ref(&l.items[2], "1", false);
}

static void test_duplicates_collapse(void **state)
{
    arena_t *a = *state;
    extref_list_t l = parse_ok(a, "(people,HRMID)(people,@badge-number)(people,HRMID)"
                                  "(people,@badge-number)(people,hrmid)");
    assert_int_equal(l.n, 3);
    expect_ref(&l.items[0], "HRMID", false);
    expect_ref(&l.items[1], "@badge-number", true);
    expect_ref(&l.items[2], "hrmid", false); /* names are case-sensitive */
}

static void test_blanks_tolerated(void **state)
{
    arena_t *a = *state;
    extref_list_t l = parse_ok(a, " ( people , HRMID ) (people,\t@badge-number)\t");
    assert_int_equal(l.n, 2);
    expect_ref(&l.items[0], "HRMID", false);
    expect_ref(&l.items[1], "@badge-number", true);
}

static void test_input_is_a_slice(void **state)
{
    arena_t *a = *state;
    const char buf[] = "(people,HRMID)(people,X)";
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    assert_int_equal(extref_parse(buf, 14, a, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    expect_ref(&l.items[0], "HRMID", false);
    /* The copy outlives the input. */
    char tmp[32];
    memcpy(tmp, "(people,ABC)", 12);
    assert_int_equal(extref_parse(tmp, 12, a, &l, err, sizeof(err)), 0);
    memset(tmp, 'Z', sizeof(tmp));
    expect_ref(&l.items[0], "ABC", false);
}

static void test_limits(void **state)
{
    arena_t *a = *state;
    char buf[2048];
    size_t o = 0;
    for (int i = 0; i < EXTREF_MAX_PAIRS; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "(people,R%d)", i);
    /* Repeats of pairs already seen are free. */
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "(people,R0)(people,R15)");
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    assert_int_equal(extref_parse(buf, o, a, &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, EXTREF_MAX_PAIRS);
    expect_ref(&l.items[15], "R15", false);
    size_t pos = o;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "(people,R16)");
    char want[128];
    snprintf(want, sizeof(want),
             "too many external references at position %zu: at most 16 different pairs", pos);
    expect_error_n(a, buf, o, want);

    /* Names of 64 bytes are fine, 65 are not. */
    char name[80];
    memset(name, 'n', sizeof(name));
    o = (size_t)snprintf(buf, sizeof(buf), "(people,%.*s)", EXTREF_MAX_NAME, name);
    l = parse_ok(a, buf);
    assert_int_equal(l.items[0].name_len, EXTREF_MAX_NAME);
    o = (size_t)snprintf(buf, sizeof(buf), "(people,%.*s)", EXTREF_MAX_NAME + 1, name);
    expect_error_n(a, buf, o,
                   "reference name 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...' at position 8 of "
                   "externalReferences is too long: 65 characters, at most 64");

    char big[EXTREF_MAX_INPUT + 1];
    memset(big, ' ', sizeof(big));
    expect_error_n(a, big, sizeof(big), "externalReferences too long: 4097 bytes, at most 4096");
}

static void test_unknown_names(void **state)
{
    arena_t *a = *state;
    expect_error(a, "(clockings,@badge-number)",
                 "unknown collection 'clockings' in externalReferences at position 1: only people "
                 "is supported");
    expect_error(a, "(people,HRMID)(People,HRMID)",
                 "unknown collection 'People' in externalReferences at position 15: only people "
                 "is supported");
    expect_error(a, "(people,@foo)",
                 "unknown predefined reference '@foo' for people at position 8 of "
                 "externalReferences: expected @employee-number or @badge-number");
    expect_error(a, "(people,@Employee-Number)",
                 "unknown predefined reference '@Employee-Number' for people at position 8 of "
                 "externalReferences: expected @employee-number or @badge-number");
}

static void test_syntax_errors(void **state)
{
    arena_t *a = *state;
    expect_error(a, "", "externalReferences is empty: expected pairs such as "
                        "(people,@employee-number)");
    expect_error(a, "  ", "externalReferences is empty: expected pairs such as "
                          "(people,@employee-number)");
    expect_error(a, "people,HRMID",
                 "expected '(' in externalReferences at position 0, found 'p'");
    expect_error(a, "(people,HRMID",
                 "expected ')' in externalReferences at position 13, found end of input");
    expect_error(a, "(people HRMID)",
                 "expected ',' after the collection name in externalReferences at position 8, "
                 "found 'H'");
    expect_error(a, "(people,)",
                 "expected a reference name in externalReferences at position 8, found ')'");
    expect_error(a, "(people,@)",
                 "expected a reference name in externalReferences at position 9, found ')'");
    expect_error(a, "(,HRMID)",
                 "expected a collection name in externalReferences at position 1, found ','");
    expect_error(a, "(people,A))",
                 "expected '(' in externalReferences at position 10, found ')'");
    expect_error(a, "(people,A),(people,B)",
                 "expected '(' in externalReferences at position 10, found ','");
    expect_error(a, "(people,A,B)",
                 "expected ')' in externalReferences at position 9, found ','");
    expect_error(a, "(people,HR MID)",
                 "expected ')' in externalReferences at position 11, found 'M'");
    expect_error(a, "(people,HR%ID)",
                 "invalid character '%' in reference name at position 10 of externalReferences: "
                 "names use letters, digits, '-', '_' and '.'");
    expect_error(a, "(people,@employee-number",
                 "expected ')' in externalReferences at position 24, found end of input");
    /* Bytes outside printable ASCII are quoted as \xNN, so the reason is valid JSON. */
    expect_error(a, "(people,\xc3\x84)",
                 "expected a reference name in externalReferences at position 8, found '\\xC3'");
    expect_error(a, "(people,A\xc3\x84)",
                 "invalid character '\\xC3' in reference name at position 9 of "
                 "externalReferences: names use letters, digits, '-', '_' and '.'");
    expect_error_n(a, "(people,A)\0", 11,
                   "expected '(' in externalReferences at position 10, found '\\x00'");
}

static void test_out_of_memory_and_null_err(void **state)
{
    (void)state;
    arena_t small;
    arena_init(&small, 64);
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    assert_int_equal(extref_parse("(people,X)", 10, &small, &l, err, sizeof(err)), BH_ENOMEM);
    assert_string_equal(err, "out of memory while parsing externalReferences");
    arena_deinit(&small);

    arena_t big;
    arena_init(&big, 1 << 16);
    assert_int_equal(extref_parse("(x,y)", 5, &big, &l, NULL, 0), BH_EINVAL);
    arena_deinit(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_collapse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blanks_tolerated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_is_a_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory_and_null_err, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
