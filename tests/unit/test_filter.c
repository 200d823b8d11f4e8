/*
 * test_filter.c: the Protime filter grammar, the constraint categories and the
 * breaks/webhooks filter rules. Reasons are compared word for word: they are
 * the API's answer to a client, so a change in them is a change in behaviour.
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
#include "core/date.h"
#include "core/err.h"
#include "filter/filter.h"

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

static int32_t day(const char *s)
{
    int32_t d = 0;
    if (date_parse(s, strlen(s), &d) != 0)
        fail_msg("bad test date %s", s);
    return d;
}

/* ---- Parser: valid input ---------------------------------------------------- */

static const filter_node_t *parse_ok(arena_t *a, const char *s)
{
    const filter_node_t *root = NULL;
    filter_error_t e;
    int rc = filter_parse(s, strlen(s), a, &root, &e);
    if (rc != 0)
        fail_msg("filter_parse(\"%s\") = %d: %s", s, rc, e.msg);
    assert_non_null(root);
    return root;
}

static void expect_cond(const filter_node_t *n, const char *field, filter_op_t op)
{
    assert_non_null(n);
    assert_int_equal(n->kind, FILTER_NODE_COND);
    assert_string_equal(n->field.p, field);
    assert_int_equal(n->field.n, strlen(field));
    assert_int_equal(n->op, op);
}

static void test_parse_simple(void **state)
{
    const filter_node_t *n = parse_ok(*state, "date ge '2024-01-01'");
    expect_cond(n, "date", FILTER_OP_GE);
    assert_int_equal(n->pos, 0);
    assert_int_equal(n->op_pos, 5);
    assert_int_equal(n->factor_pos, 8);
    assert_false(n->is_list);
    assert_int_equal(n->list_name.n, 0);
    assert_int_equal(n->n_values, 1);
    assert_int_equal(n->values[0].kind, FILTER_V_STRING);
    assert_int_equal(n->values[0].pos, 8);
    assert_string_equal(n->values[0].s.p, "2024-01-01");
    assert_int_equal(n->values[0].s.n, 10);
    assert_null(n->next);
}

static void test_parse_and_chain(void **state)
{
    const filter_node_t *n = parse_ok(*state, "a eq 1 and b le 2 and c eq 3");
    assert_int_equal(n->kind, FILTER_NODE_AND);
    assert_int_equal(n->pos, 7);
    assert_int_equal(n->n_kids, 3);
    const filter_node_t *k = n->first;
    expect_cond(k, "a", FILTER_OP_EQ);
    assert_int_equal(k->values[0].kind, FILTER_V_INT);
    assert_int_equal(k->values[0].i, 1);
    k = k->next;
    expect_cond(k, "b", FILTER_OP_LE);
    assert_int_equal(k->pos, 11);
    k = k->next;
    expect_cond(k, "c", FILTER_OP_EQ);
    assert_null(k->next);
}

static void test_parse_precedence(void **state)
{
    /* "and" binds tighter than "or". */
    const filter_node_t *n = parse_ok(*state, "a eq 1 or b eq 2 and c eq 3");
    assert_int_equal(n->kind, FILTER_NODE_OR);
    assert_int_equal(n->pos, 7);
    assert_int_equal(n->n_kids, 2);
    expect_cond(n->first, "a", FILTER_OP_EQ);
    const filter_node_t *t = n->first->next;
    assert_int_equal(t->kind, FILTER_NODE_AND);
    assert_int_equal(t->n_kids, 2);
    expect_cond(t->first, "b", FILTER_OP_EQ);
    expect_cond(t->first->next, "c", FILTER_OP_EQ);
}

static void test_parse_parentheses(void **state)
{
    const filter_node_t *n = parse_ok(*state, "(a eq 1 or b eq 2) and c eq 3");
    assert_int_equal(n->kind, FILTER_NODE_AND);
    assert_int_equal(n->first->kind, FILTER_NODE_OR);
    assert_int_equal(n->first->pos, 8);
    expect_cond(n->first->first, "a", FILTER_OP_EQ);
    expect_cond(n->first->first->next, "b", FILTER_OP_EQ);
    expect_cond(n->first->next, "c", FILTER_OP_EQ);

    /* Redundant parentheses leave no trace. */
    n = parse_ok(*state, "((( a eq 1 )))");
    expect_cond(n, "a", FILTER_OP_EQ);
    assert_int_equal(n->pos, 4);
}

static void test_parse_lists(void **state)
{
    const filter_node_t *n = parse_ok(*state, "person in (1, 2,3 , -4 )");
    expect_cond(n, "person", FILTER_OP_IN);
    assert_true(n->is_list);
    assert_int_equal(n->factor_pos, 10);
    assert_int_equal(n->n_values, 4);
    assert_int_equal(n->values[0].i, 1);
    assert_int_equal(n->values[1].i, 2);
    assert_int_equal(n->values[2].i, 3);
    assert_int_equal(n->values[2].pos, 16);
    assert_int_equal(n->values[3].i, -4);

    n = parse_ok(*state, "tag in ('a', 'b''c', true)");
    assert_int_equal(n->n_values, 3);
    assert_string_equal(n->values[1].s.p, "b'c");
    assert_int_equal(n->values[2].kind, FILTER_V_BOOL);
    assert_true(n->values[2].b);

    n = parse_ok(*state, "x in (7)");
    assert_true(n->is_list);
    assert_int_equal(n->n_values, 1);
}

static void test_parse_named_lists(void **state)
{
    const filter_node_t *n = parse_ok(*state, "person in circle(2, 8)");
    assert_true(n->is_list);
    assert_string_equal(n->list_name.p, "circle");
    assert_int_equal(n->list_name.n, 6);
    assert_int_equal(n->factor_pos, 10);
    assert_int_equal(n->n_values, 2);
    n = parse_ok(*state, "person in org-group (121, 122)");
    assert_string_equal(n->list_name.p, "org-group");
    assert_int_equal(n->n_values, 2);
}

static void test_parse_strings(void **state)
{
    const filter_node_t *n = parse_ok(*state, "name eq 'O''Brien'");
    assert_string_equal(n->values[0].s.p, "O'Brien");
    assert_int_equal(n->values[0].s.n, 7);
    n = parse_ok(*state, "name eq ''''");
    assert_string_equal(n->values[0].s.p, "'");
    n = parse_ok(*state, "name eq ''");
    assert_int_equal(n->values[0].s.n, 0);
    assert_string_equal(n->values[0].s.p, "");
    n = parse_ok(*state, "name eq 'a and b or (c)'");
    assert_string_equal(n->values[0].s.p, "a and b or (c)");
    n = parse_ok(*state, "name eq '\xc3\xa9t\xc3\xa9'"); /* bytes pass through untouched */
    assert_string_equal(n->values[0].s.p, "\xc3\xa9t\xc3\xa9");
}

static void test_parse_constants(void **state)
{
    const filter_node_t *n = parse_ok(*state, "flag eq true");
    assert_int_equal(n->values[0].kind, FILTER_V_BOOL);
    assert_true(n->values[0].b);
    n = parse_ok(*state, "flag eq false");
    assert_false(n->values[0].b);
    n = parse_ok(*state, "x eq 9223372036854775807");
    assert_true(n->values[0].i == INT64_MAX);
    n = parse_ok(*state, "x eq -9223372036854775808");
    assert_true(n->values[0].i == INT64_MIN);
    n = parse_ok(*state, "x eq 007");
    assert_int_equal(n->values[0].i, 7);
}

static void test_parse_lexical(void **state)
{
    /* Tabs, no blanks where none are needed, identifier characters. */
    const filter_node_t *n = parse_ok(*state, "\tdate\tge\t'2024-01-01'\t");
    expect_cond(n, "date", FILTER_OP_GE);
    assert_int_equal(n->pos, 1);
    n = parse_ok(*state, "person in(1,2)and date eq'2024-01-01'");
    assert_int_equal(n->kind, FILTER_NODE_AND);
    n = parse_ok(*state, "collection-name eq 'breaks'");
    expect_cond(n, "collection-name", FILTER_OP_EQ);
    n = parse_ok(*state, "a.b_c-9 le 1");
    expect_cond(n, "a.b_c-9", FILTER_OP_LE);
    /* Keywords are only keywords where one is expected. */
    n = parse_ok(*state, "and eq 1 and or eq 2");
    assert_int_equal(n->kind, FILTER_NODE_AND);
    expect_cond(n->first, "and", FILTER_OP_EQ);
    expect_cond(n->first->next, "or", FILTER_OP_EQ);
}

static void test_parse_limits_accepted(void **state)
{
    arena_t *a = *state;
    char buf[FILTER_MAX_INPUT + 16];

    /* Exactly FILTER_MAX_INPUT bytes. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "x eq '", 6);
    buf[FILTER_MAX_INPUT - 1] = '\'';
    const filter_node_t *root;
    filter_error_t e;
    assert_int_equal(filter_parse(buf, FILTER_MAX_INPUT, a, &root, &e), 0);
    assert_int_equal(root->values[0].s.n, FILTER_MAX_INPUT - 7);

    /* FILTER_MAX_DEPTH nested parentheses. */
    size_t o = 0;
    for (int i = 0; i < FILTER_MAX_DEPTH; i++)
        buf[o++] = '(';
    memcpy(buf + o, "a eq 1", 6);
    o += 6;
    for (int i = 0; i < FILTER_MAX_DEPTH; i++)
        buf[o++] = ')';
    assert_int_equal(filter_parse(buf, o, a, &root, &e), 0);
    expect_cond(root, "a", FILTER_OP_EQ);

    /* FILTER_MAX_NODES nodes: 255 conditions and the "and" node. */
    o = 0;
    for (int i = 0; i < FILTER_MAX_NODES - 1; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sa eq 1", i ? " and " : "");
    assert_int_equal(filter_parse(buf, o, a, &root, &e), 0);
    assert_int_equal(root->n_kids, FILTER_MAX_NODES - 1);

    /* A list of FILTER_MAX_LIST values. */
    o = (size_t)snprintf(buf, sizeof(buf), "p in (");
    for (int i = 0; i < FILTER_MAX_LIST; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s1", i ? "," : "");
    buf[o++] = ')';
    assert_int_equal(filter_parse(buf, o, a, &root, &e), 0);
    assert_int_equal(root->n_values, FILTER_MAX_LIST);
}

/* ---- Parser: errors ------------------------------------------------------------- */

static void expect_parse_error_n(arena_t *a, const char *s, size_t n, size_t pos, const char *msg)
{
    const filter_node_t *root = NULL;
    filter_error_t e;
    int rc = filter_parse(s, n, a, &root, &e);
    if (rc != BH_EINVAL)
        fail_msg("filter_parse(\"%.*s\") = %d, want BH_EINVAL", (int)n, s, rc);
    if (strcmp(e.msg, msg) != 0)
        fail_msg("filter_parse(\"%.*s\")\n  reason \"%s\"\n  want   \"%s\"", (int)n, s, e.msg,
                 msg);
    if (e.pos != pos)
        fail_msg("filter_parse(\"%.*s\") position %zu, want %zu", (int)n, s, e.pos, pos);
    assert_null(root);
}

static void expect_parse_error(arena_t *a, const char *s, size_t pos, const char *msg)
{
    expect_parse_error_n(a, s, strlen(s), pos, msg);
}

static void test_parse_errors_operator_and_strings(void **state)
{
    arena_t *a = *state;
    expect_parse_error(a, "date gt 5", 5,
                       "expected a comparison operator (eq, ge, le, in) at position 5, found 'gt'");
    expect_parse_error(a, "date GE '2024-01-01'", 5,
                       "expected a comparison operator (eq, ge, le, in) at position 5, found 'GE'");
    expect_parse_error(a, "date", 4,
                       "expected a comparison operator (eq, ge, le, in) at position 4, found end "
                       "of input");
    expect_parse_error(a, "date = '2024-01-01'", 5, "unexpected character '=' at position 5");
    expect_parse_error(a, "name eq 'abc", 8, "unterminated string starting at position 8");
    expect_parse_error(a, "name eq 'it''s", 8, "unterminated string starting at position 8");
    expect_parse_error(a, "name eq '", 8, "unterminated string starting at position 8");
    expect_parse_error(a, "x eq \"a\"", 5,
                       "unexpected character '\"' at position 5 (strings are written in single "
                       "quotes)");
}

static void test_parse_errors_values(void **state)
{
    arena_t *a = *state;
    expect_parse_error(a, "date eq", 7,
                       "expected a value (integer, quoted string, true, false or list) at "
                       "position 7, found end of input");
    expect_parse_error(a, "status eq Enabled", 10,
                       "expected a value (integer, quoted string, true, false or list) at "
                       "position 10, found 'Enabled' (dates and strings are written in single "
                       "quotes)");
    expect_parse_error(a, "x eq ,", 5,
                       "expected a value (integer, quoted string, true, false or list) at "
                       "position 5, found ','");
    expect_parse_error(a, "date ge 2024-01-01", 8,
                       "invalid integer '2024-01-01' at position 8 (dates and strings are written "
                       "in single quotes, e.g. '2024-01-31')");
    expect_parse_error(a, "x eq 12abc", 5,
                       "invalid integer '12abc' at position 5 (dates and strings are written in "
                       "single quotes, e.g. '2024-01-31')");
    expect_parse_error(a, "x eq 9223372036854775808", 5,
                       "integer out of range at position 5: '9223372036854775808'");
    expect_parse_error(a, "x eq -9223372036854775809", 5,
                       "integer out of range at position 5: '-9223372036854775809'");
    expect_parse_error(a, "x eq - 1", 5, "unexpected character '-' at position 5");
}

static void test_parse_errors_lists(void **state)
{
    arena_t *a = *state;
    expect_parse_error(a, "person in (1, 2", 15,
                       "expected ',' or ')' at position 15, found end of input");
    expect_parse_error(a, "person in (1 2)", 13, "expected ',' or ')' at position 13, found '2'");
    expect_parse_error(a, "person in ()", 11,
                       "expected a value (integer, quoted string, true or false) at position 11, "
                       "found ')'");
    expect_parse_error(a, "person in (1,)", 13,
                       "expected a value (integer, quoted string, true or false) at position 13, "
                       "found ')'");
    expect_parse_error(a, "person in ((1))", 11,
                       "expected a value (integer, quoted string, true or false) at position 11, "
                       "found '('");
    expect_parse_error(a, "person in (x)", 11,
                       "expected a value (integer, quoted string, true or false) at position 11, "
                       "found 'x'");
}

static void test_parse_errors_structure(void **state)
{
    arena_t *a = *state;
    expect_parse_error(a, "(person eq 1 or x eq 2", 22,
                       "expected ')' at position 22, found end of input");
    expect_parse_error(a, "a eq 1 b eq 2", 7,
                       "expected 'and', 'or' or end of input at position 7, found 'b'");
    expect_parse_error(a, "a eq 1 AND b eq 2", 7,
                       "expected 'and', 'or' or end of input at position 7, found 'AND'");
    expect_parse_error(a, "(a eq 1 b eq 2)", 8,
                       "expected 'and', 'or' or ')' at position 8, found 'b'");
    expect_parse_error(a, "a eq 1 and", 10,
                       "expected a field name or '(' at position 10, found end of input");
    expect_parse_error(a, "a eq 1 or or b eq 1", 13,
                       "expected a comparison operator (eq, ge, le, in) at position 13, found "
                       "'b'");
    expect_parse_error(a, "a eq 1)", 6,
                       "expected 'and', 'or' or end of input at position 6, found ')'");
    expect_parse_error(a, "()", 1, "expected a field name or '(' at position 1, found ')'");
    expect_parse_error(a, "1 eq 1", 0, "expected a field name or '(' at position 0, found '1'");
    expect_parse_error(a, "'x' eq 1", 0,
                       "expected a field name or '(' at position 0, found the string 'x'");
    expect_parse_error(a, "", 0, "the filter expression is empty");
    expect_parse_error(a, " \t ", 0, "the filter expression is empty");
    expect_parse_error(a, "x eq 1 # y", 7, "unexpected character '#' at position 7");
}

static void test_parse_errors_quote_bytes_safely(void **state)
{
    arena_t *a = *state;
    /* Control and non-ASCII bytes are shown as \xNN: reasons go into JSON. */
    expect_parse_error(a, "x eq 1\n", 6, "unexpected character '\\x0A' at position 6");
    expect_parse_error(a, "x eq \xc3\xa9", 5, "unexpected character '\\xC3' at position 5");
    expect_parse_error_n(a, "x eq 1\0", 7, 6, "unexpected character '\\x00' at position 6");
    /* Long tokens are cut at 32 bytes. */
    expect_parse_error(a, "x yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", 2,
                       "expected a comparison operator (eq, ge, le, in) at position 2, found "
                       "'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...'");
}

static void test_parse_errors_limits(void **state)
{
    arena_t *a = *state;
    char buf[FILTER_MAX_INPUT + 16];

    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "x eq '", 6);
    buf[FILTER_MAX_INPUT] = '\'';
    expect_parse_error_n(a, buf, FILTER_MAX_INPUT + 1, FILTER_MAX_INPUT,
                         "filter expression too long: 4097 bytes, at most 4096");

    size_t o = 0;
    for (int i = 0; i < FILTER_MAX_DEPTH + 1; i++)
        buf[o++] = '(';
    memcpy(buf + o, "a eq 1", 6);
    o += 6;
    for (int i = 0; i < FILTER_MAX_DEPTH + 1; i++)
        buf[o++] = ')';
    expect_parse_error_n(a, buf, o, 32,
                         "parentheses nested too deeply at position 32: at most 32 levels");

    o = 0;
    for (int i = 0; i < FILTER_MAX_NODES; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sa eq 1", i ? " and " : "");
    expect_parse_error_n(a, buf, o, 2805,
                         "filter expression too complex at position 2805: at most 256 conditions "
                         "and operators");

    o = (size_t)snprintf(buf, sizeof(buf), "p in (");
    for (int i = 0; i < FILTER_MAX_LIST + 1; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s1", i ? "," : "");
    buf[o++] = ')';
    expect_parse_error_n(a, buf, o, 5, "the list at position 5 is too long: at most 1000 values");
}

static void test_parse_out_of_memory(void **state)
{
    (void)state;
    arena_t small;
    arena_init(&small, 64);
    const filter_node_t *root = NULL;
    filter_error_t e;
    const char *s = "a eq 1 and b eq 2 and c in (1, 2, 3, 4, 5, 6, 7, 8)";
    assert_int_equal(filter_parse(s, strlen(s), &small, &root, &e), BH_ENOMEM);
    assert_string_equal(e.msg, "out of memory while parsing the filter");
    arena_deinit(&small);
    /* A NULL error pointer is allowed. */
    arena_t big;
    arena_init(&big, 1 << 16);
    assert_int_equal(filter_parse("a eq", 4, &big, &root, NULL), BH_EINVAL);
    arena_deinit(&big);
}

/* ---- Compile: generic rules -------------------------------------------------- */

static const char *const colors[] = { "red", "green", NULL };

static const filter_field_t fields[] = {
    { .name = "date", .type = FILTER_T_DATE, .category = FILTER_RANGE },
    { .name = "person", .type = FILTER_T_INT, .category = FILTER_MULTIPLE },
    { .name = "status", .type = FILTER_T_STRING, .category = FILTER_SINGLE, .allowed = colors },
    { .name = "n", .type = FILTER_T_INT, .category = FILTER_RANGE },
    { .name = "tag", .type = FILTER_T_STRING, .category = FILTER_MULTIPLE },
    { .name = "code", .type = FILTER_T_INT, .category = FILTER_SINGLE },
    { .name = "day", .type = FILTER_T_DATE, .category = FILTER_SINGLE },
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))
enum { F_DATE, F_PERSON, F_STATUS, F_N, F_TAG, F_CODE, F_DAY };

static filter_query_t compile_ok(arena_t *a, const char *s)
{
    filter_query_t q;
    char err[FILTER_ERR_MAX];
    const filter_node_t *root = parse_ok(a, s);
    int rc = filter_compile(root, fields, N_FIELDS, a, &q, err, sizeof(err));
    if (rc != 0)
        fail_msg("filter_compile(\"%s\") = %d: %s", s, rc, err);
    assert_int_equal(q.n_fields, N_FIELDS);
    return q;
}

static void expect_compile_error(arena_t *a, const char *s, const char *msg)
{
    filter_query_t q;
    char err[FILTER_ERR_MAX];
    const filter_node_t *root = parse_ok(a, s);
    int rc = filter_compile(root, fields, N_FIELDS, a, &q, err, sizeof(err));
    if (rc != BH_EINVAL)
        fail_msg("filter_compile(\"%s\") = %d, want BH_EINVAL", s, rc);
    if (strcmp(err, msg) != 0)
        fail_msg("filter_compile(\"%s\")\n  reason \"%s\"\n  want   \"%s\"", s, err, msg);
}

static void test_compile_nothing(void **state)
{
    filter_query_t q;
    char err[FILTER_ERR_MAX];
    assert_int_equal(filter_compile(NULL, fields, N_FIELDS, *state, &q, err, sizeof(err)), 0);
    for (size_t i = 0; i < N_FIELDS; i++)
        assert_false(q.conds[i].present);
}

static void test_compile_range(void **state)
{
    arena_t *a = *state;
    filter_query_t q = compile_ok(a, "date ge '2024-01-01' and date le '2024-01-31'");
    const filter_cond_t *c = &q.conds[F_DATE];
    assert_true(c->present);
    assert_true(c->has_lo && c->has_hi);
    assert_int_equal(c->lo, day("2024-01-01"));
    assert_int_equal(c->hi, day("2024-01-31"));
    assert_false(q.conds[F_PERSON].present);

    q = compile_ok(a, "date le '2024-01-31' and (date ge '2024-01-01')");
    assert_int_equal(q.conds[F_DATE].lo, day("2024-01-01"));
    assert_int_equal(q.conds[F_DATE].hi, day("2024-01-31"));

    q = compile_ok(a, "n ge -5");
    assert_true(q.conds[F_N].has_lo);
    assert_false(q.conds[F_N].has_hi);
    assert_int_equal(q.conds[F_N].lo, -5);

    q = compile_ok(a, "date eq '2024-02-29'");
    c = &q.conds[F_DATE];
    assert_true(c->has_lo && c->has_hi);
    assert_int_equal(c->lo, day("2024-02-29"));
    assert_int_equal(c->hi, day("2024-02-29"));
}

static void test_compile_single(void **state)
{
    arena_t *a = *state;
    filter_query_t q = compile_ok(a, "status eq 'green' and code eq 42 and day eq '2024-03-01'");
    assert_true(q.conds[F_STATUS].present);
    assert_int_equal(q.conds[F_STATUS].n_strs, 1);
    assert_string_equal(q.conds[F_STATUS].strs[0].p, "green");
    assert_int_equal(q.conds[F_CODE].n_ints, 1);
    assert_int_equal(q.conds[F_CODE].ints[0], 42);
    assert_true(q.conds[F_CODE].has_lo && q.conds[F_CODE].has_hi);
    assert_int_equal(q.conds[F_CODE].lo, 42);
    assert_int_equal(q.conds[F_CODE].hi, 42);
    assert_int_equal(q.conds[F_DAY].ints[0], day("2024-03-01"));
}

static void test_compile_multiple(void **state)
{
    arena_t *a = *state;
    filter_query_t q = compile_ok(a, "person eq 3");
    assert_int_equal(q.conds[F_PERSON].n_ints, 1);
    assert_int_equal(q.conds[F_PERSON].ints[0], 3);

    q = compile_ok(a, "person in (3, 1, 2, 3, 1)");
    const filter_cond_t *c = &q.conds[F_PERSON];
    assert_int_equal(c->n_ints, 3);
    assert_int_equal(c->ints[0], 1);
    assert_int_equal(c->ints[1], 2);
    assert_int_equal(c->ints[2], 3);

    /* "or" on the same multi-value field, nested, mixed with "in". */
    q = compile_ok(a, "date ge '2024-01-01' and (person eq 9 or (person in (1, 9) or person eq "
                      "-2)) and date le '2024-01-02'");
    c = &q.conds[F_PERSON];
    assert_int_equal(c->n_ints, 3);
    assert_int_equal(c->ints[0], -2);
    assert_int_equal(c->ints[1], 1);
    assert_int_equal(c->ints[2], 9);
    assert_true(q.conds[F_DATE].has_lo && q.conds[F_DATE].has_hi);

    q = compile_ok(a, "tag in ('b', 'a', 'b', 'ab', '') or tag eq 'a'");
    c = &q.conds[F_TAG];
    assert_int_equal(c->n_strs, 4);
    assert_string_equal(c->strs[0].p, "");
    assert_string_equal(c->strs[1].p, "a");
    assert_string_equal(c->strs[2].p, "ab");
    assert_string_equal(c->strs[3].p, "b");
}

static void test_compile_unknown_field(void **state)
{
    arena_t *a = *state;
    expect_compile_error(a, "foo eq 1",
                         "unknown field 'foo' at position 0; known fields: date, person, status, "
                         "n, tag, code, day");
    expect_compile_error(a, "person eq 1 or Person eq 2",
                         "unknown field 'Person' at position 15; known fields: date, person, "
                         "status, n, tag, code, day");
}

static void test_compile_or_rules(void **state)
{
    arena_t *a = *state;
    expect_compile_error(a, "person eq 1 or date ge '2024-01-01'",
                         "'or' at position 12 joins different fields ('person' and 'date'): 'or' "
                         "is only allowed between conditions on the same multi-value field "
                         "(person, tag)");
    expect_compile_error(a, "date ge '2024-01-01' or date le '2024-02-01'",
                         "'or' at position 21 joins conditions on 'date', which takes a single "
                         "value or range: 'or' is only allowed between conditions on the same "
                         "multi-value field (person, tag)");
    expect_compile_error(a, "(person eq 1 and person eq 2) or person eq 3",
                         "'or' at position 30 joins a group of conditions joined by 'and' (at "
                         "position 13): 'or' is only allowed between conditions on the same "
                         "multi-value field (person, tag)");
    expect_compile_error(a, "person eq 1 or tag eq 'x'",
                         "'or' at position 12 joins different fields ('person' and 'tag'): 'or' "
                         "is only allowed between conditions on the same multi-value field "
                         "(person, tag)");
}

static void test_compile_type_errors(void **state)
{
    arena_t *a = *state;
    expect_compile_error(a, "date ge 5",
                         "field 'date' expects a date in single quotes, e.g. '2024-01-31', at "
                         "position 8, found 5");
    expect_compile_error(a, "date ge true",
                         "field 'date' expects a date in single quotes, e.g. '2024-01-31', at "
                         "position 8, found true");
    expect_compile_error(a, "date ge '2023-02-30'",
                         "invalid date '2023-02-30' for field 'date' at position 8: expected a "
                         "real calendar date 'YYYY-MM-DD'");
    expect_compile_error(a, "date ge '2024-1-1'",
                         "invalid date '2024-1-1' for field 'date' at position 8: expected a real "
                         "calendar date 'YYYY-MM-DD'");
    expect_compile_error(a, "person eq 'x'",
                         "field 'person' expects an integer at position 10, found the string 'x'");
    expect_compile_error(a, "person in (1, 'x')",
                         "field 'person' expects an integer at position 14, found the string 'x'");
    expect_compile_error(a, "person eq false",
                         "field 'person' expects an integer at position 10, found false");
    expect_compile_error(a, "status eq 5",
                         "field 'status' expects a string in single quotes at position 10, "
                         "found 5");
    expect_compile_error(a, "status eq 'blue'",
                         "invalid value 'blue' for field 'status' at position 10: expected 'red' "
                         "or 'green'");
    expect_compile_error(a, "status eq 'Red'",
                         "invalid value 'Red' for field 'status' at position 10: expected 'red' "
                         "or 'green'");
}

static void test_compile_operator_errors(void **state)
{
    arena_t *a = *state;
    expect_compile_error(a, "status ge 'red'",
                         "operator 'ge' is not allowed on field 'status' at position 7: use eq");
    expect_compile_error(a, "status in ('red')",
                         "operator 'in' is not allowed on field 'status' at position 7: use eq");
    expect_compile_error(a, "date in ('2024-01-01')",
                         "operator 'in' is not allowed on field 'date' at position 5: use ge and "
                         "le, or eq");
    expect_compile_error(a, "person le 5",
                         "operator 'le' is not allowed on field 'person' at position 7: use eq or "
                         "in");
    expect_compile_error(a, "person eq (1,2)",
                         "operator 'eq' takes a single value, not a list, at position 10 (field "
                         "'person'); use 'in' for a list");
    expect_compile_error(a, "date ge ('2024-01-01')",
                         "operator 'ge' takes a single value, not a list, at position 8 (field "
                         "'date')");
    expect_compile_error(a, "person in 5",
                         "operator 'in' needs a list such as (1, 2) at position 10 (field "
                         "'person')");
    expect_compile_error(a, "person in circle(2, 8)",
                         "named lists are not supported by this server: 'circle(...)' at position "
                         "10");
    expect_compile_error(a, "person in org-group(121, 122)",
                         "named lists are not supported by this server: 'org-group(...)' at "
                         "position 10");
}

static void test_compile_repeated_fields(void **state)
{
    arena_t *a = *state;
    expect_compile_error(a, "status eq 'red' and status eq 'green'",
                         "field 'status' may be given only once (again at position 20)");
    expect_compile_error(a, "person eq 1 and person eq 2",
                         "field 'person' is given more than once (again at position 16): put its "
                         "values in one list with 'in', or join them with 'or'");
    expect_compile_error(a, "(person eq 1 or person eq 2) and person in (3)",
                         "field 'person' is given more than once (again at position 33): put its "
                         "values in one list with 'in', or join them with 'or'");
    expect_compile_error(a, "date ge '2024-01-01' and date ge '2024-02-01'",
                         "field 'date' has a second lower bound at position 25: give at most one "
                         "ge (or one eq)");
    expect_compile_error(a, "date le '2024-01-01' and date le '2024-02-01'",
                         "field 'date' has a second upper bound at position 25: give at most one "
                         "le (or one eq)");
    expect_compile_error(a, "date eq '2024-01-01' and date ge '2024-01-01'",
                         "field 'date' has a second lower bound at position 25: give at most one "
                         "ge (or one eq)");
    expect_compile_error(a, "date ge '2024-01-01' and date eq '2024-01-01'",
                         "field 'date' has 'eq' together with another bound at position 25: give "
                         "one eq, or ge and le");
}

static void test_compile_value_limit(void **state)
{
    arena_t *a = *state;
    char buf[FILTER_MAX_INPUT];
    /* 1000 distinct values in the list plus one more through "or": too many. */
    size_t o = (size_t)snprintf(buf, sizeof(buf), "person in (");
    for (int i = 1; i <= FILTER_MAX_LIST; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%d", i > 1 ? "," : "", i);
    size_t list_end = o;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, ") or person eq 1001");
    assert_true(o < sizeof(buf));
    expect_compile_error(a, buf, "field 'person' has too many values: at most 1000");
    /* A duplicate does not count. */
    snprintf(buf + list_end, sizeof(buf) - list_end, ") or person eq 1000");
    filter_query_t q = compile_ok(a, buf);
    assert_int_equal(q.conds[F_PERSON].n_ints, FILTER_MAX_LIST);
    assert_int_equal(q.conds[F_PERSON].ints[999], 1000);
}

static void test_compile_bad_tables(void **state)
{
    arena_t *a = *state;
    filter_query_t q;
    char err[FILTER_ERR_MAX];
    const filter_node_t *root = parse_ok(a, "s eq 'x'");
    static const filter_field_t bad[] = {
        { .name = "s", .type = FILTER_T_STRING, .category = FILTER_RANGE },
    };
    assert_int_equal(filter_compile(root, bad, 1, a, &q, err, sizeof(err)), BH_EINVAL);
    assert_string_equal(err, "internal error: field 's' cannot be a range of strings");
    filter_field_t many[FILTER_MAX_FIELDS + 1];
    for (size_t i = 0; i <= FILTER_MAX_FIELDS; i++)
        many[i] = fields[F_CODE];
    assert_int_equal(filter_compile(root, many, FILTER_MAX_FIELDS + 1, a, &q, err, sizeof(err)),
                     BH_EINVAL);
    assert_string_equal(err, "internal error: more than 16 filter fields");
    /* No fields at all: every name is unknown. */
    assert_int_equal(filter_compile(root, NULL, 0, a, &q, err, sizeof(err)), BH_EINVAL);
    assert_string_equal(err, "unknown field 's' at position 0; this collection has no filters");
}

static void test_compile_small_error_buffer(void **state)
{
    arena_t *a = *state;
    filter_query_t q;
    char err[12];
    memset(err, 'Z', sizeof(err));
    const filter_node_t *root = parse_ok(a, "foo eq 1");
    assert_int_equal(filter_compile(root, fields, N_FIELDS, a, &q, err, sizeof(err)), BH_EINVAL);
    assert_string_equal(err, "unknown fie");
    assert_int_equal(filter_compile(root, fields, N_FIELDS, a, &q, NULL, 0), BH_EINVAL);
}

/* ---- Breaks ---------------------------------------------------------------------- */

static filter_breaks_t breaks_ok(arena_t *a, const char *s, bool delta, const char *today)
{
    filter_breaks_t b;
    char err[FILTER_ERR_MAX];
    int rc = filter_breaks_compile(s, strlen(s), delta, day(today), a, &b, err, sizeof(err));
    if (rc != 0)
        fail_msg("filter_breaks_compile(\"%s\", delta=%d) = %d: %s", s, delta, rc, err);
    return b;
}

static void expect_breaks_error(arena_t *a, const char *s, bool delta, const char *today,
                                const char *msg)
{
    filter_breaks_t b;
    char err[FILTER_ERR_MAX];
    int rc = filter_breaks_compile(s, strlen(s), delta, day(today), a, &b, err, sizeof(err));
    if (rc != BH_EINVAL)
        fail_msg("filter_breaks_compile(\"%s\", delta=%d) = %d, want BH_EINVAL", s, delta, rc);
    if (strcmp(err, msg) != 0)
        fail_msg("filter_breaks_compile(\"%s\", delta=%d)\n  reason \"%s\"\n  want   \"%s\"", s,
                 delta, err, msg);
}

#define TODAY "2025-06-15"

static void test_breaks_list(void **state)
{
    arena_t *a = *state;
    filter_breaks_t b = breaks_ok(a, "date ge '2024-01-01' and date le '2024-01-31'", false, TODAY);
    assert_int_equal(b.date_from, day("2024-01-01"));
    assert_int_equal(b.date_to, day("2024-01-31"));
    assert_null(b.persons);
    assert_int_equal(b.n_persons, 0);

    b = breaks_ok(a, "date eq '2020-02-29'", false, TODAY); /* list ranges may be old */
    assert_int_equal(b.date_from, day("2020-02-29"));
    assert_int_equal(b.date_to, day("2020-02-29"));

    b = breaks_ok(a, "person in (7, 3, 7, 5) and date ge '2024-01-01' and date le '2024-01-01'",
                  false, TODAY);
    assert_int_equal(b.n_persons, 3);
    assert_int_equal(b.persons[0], 3);
    assert_int_equal(b.persons[1], 5);
    assert_int_equal(b.persons[2], 7);

    b = breaks_ok(a, "(person eq 12 or person eq 4 or person eq 12) and date ge '2024-01-01' and "
                     "date le '2024-01-01'",
                  false, TODAY);
    assert_int_equal(b.n_persons, 2);
    assert_int_equal(b.persons[0], 4);
    assert_int_equal(b.persons[1], 12);
}

static void test_breaks_range_limit(void **state)
{
    arena_t *a = *state;
    /* 2024 is a leap year: all of it is 366 days, the most allowed. */
    filter_breaks_t b =
        breaks_ok(a, "date ge '2024-01-01' and date le '2024-12-31'", false, TODAY);
    assert_int_equal(b.date_to - b.date_from + 1, 366);
    breaks_ok(a, "date ge '2023-01-01' and date le '2024-01-01'", false, TODAY); /* 366 */
    expect_breaks_error(a, "date ge '2024-01-01' and date le '2025-01-01'", false, TODAY,
                        "the date range is too long: 2024-01-01 to 2025-01-01 spans 367 days, at "
                        "most 366 (one year) are allowed");
    expect_breaks_error(a, "date ge '2023-01-01' and date le '2024-01-02'", false, TODAY,
                        "the date range is too long: 2023-01-01 to 2024-01-02 spans 367 days, at "
                        "most 366 (one year) are allowed");
    expect_breaks_error(a, "date ge '0001-01-01' and date le '9999-12-31'", false, TODAY,
                        "the date range is too long: 0001-01-01 to 9999-12-31 spans 3652059 "
                        "days, at most 366 (one year) are allowed");
    expect_breaks_error(a, "date ge '2024-02-01' and date le '2024-01-31'", false, TODAY,
                        "the date range is empty: start 2024-02-01 is after end 2024-01-31");
}

static void test_breaks_required(void **state)
{
    arena_t *a = *state;
    const char *need = "a date filter is required, e.g. date ge '2024-01-01' and date le "
                       "'2024-01-31'";
    expect_breaks_error(a, "", false, TODAY, need);
    expect_breaks_error(a, "  ", false, TODAY, need);
    expect_breaks_error(a, "person eq 1", false, TODAY, need);
    expect_breaks_error(a, "date ge '2024-01-01'", false, TODAY,
                        "the date range needs an end: add date le 'YYYY-MM-DD'");
    expect_breaks_error(a, "date le '2024-01-01'", false, TODAY,
                        "the date range needs a start: add date ge 'YYYY-MM-DD'");
    filter_breaks_t b;
    char err[FILTER_ERR_MAX];
    assert_int_equal(filter_breaks_compile(NULL, 0, false, day(TODAY), a, &b, err, sizeof(err)),
                     BH_EINVAL);
    assert_string_equal(err, need);
}

static void test_breaks_errors_pass_through(void **state)
{
    arena_t *a = *state;
    expect_breaks_error(a, "date ge '2024-01-01' and", false, TODAY,
                        "expected a field name or '(' at position 24, found end of input");
    expect_breaks_error(a, "date ge '2024-01-01' and date le '2024-01-31' and foo eq 1", false,
                        TODAY, "unknown field 'foo' at position 50; known fields: date, person");
    expect_breaks_error(a, "date ge '2024-01-01' or person eq 1", false, TODAY,
                        "'or' at position 21 joins different fields ('date' and 'person'): 'or' "
                        "is only allowed between conditions on the same multi-value field "
                        "(person)");
    expect_breaks_error(a, "date ge '2024-01-01' and date le '2024-01-31' and person eq '7'",
                        false, TODAY,
                        "field 'person' expects an integer at position 60, found the string '7'");
    expect_breaks_error(a, "date ge '2024-13-01' and date le '2024-01-31'", false, TODAY,
                        "invalid date '2024-13-01' for field 'date' at position 8: expected a "
                        "real calendar date 'YYYY-MM-DD'");
}

static void test_breaks_delta(void **state)
{
    arena_t *a = *state;
    filter_breaks_t b = breaks_ok(a, "date ge '2025-01-01'", true, TODAY);
    assert_int_equal(b.date_from, day("2025-01-01"));
    assert_int_equal(b.date_to, INT32_MAX);
    b = breaks_ok(a, "date ge '2025-01-01' and date le '2025-03-31'", true, TODAY);
    assert_int_equal(b.date_to, day("2025-03-31"));
    expect_breaks_error(a, "", true, TODAY,
                        "a delta needs a start date filter, e.g. date ge '2025-01-01'");
    expect_breaks_error(a, "date le '2025-03-31'", true, TODAY,
                        "a delta needs a start date: add date ge 'YYYY-MM-DD'");
    expect_breaks_error(a, "date ge '2025-01-01' and person eq 1", true, TODAY,
                        "person cannot be used in a delta filter");
    expect_breaks_error(a, "date ge '2024-01-01' and date le '2025-01-01'", true, TODAY,
                        "the date range is too long: 2024-01-01 to 2025-01-01 spans 367 days, at "
                        "most 366 (one year) are allowed");
    expect_breaks_error(a, "date ge '2025-02-01' and date le '2025-01-31'", true, TODAY,
                        "the date range is empty: start 2025-02-01 is after end 2025-01-31");
}

static void test_breaks_delta_previous_year(void **state)
{
    arena_t *a = *state;
    /* Today 2025-06-15: the earliest start is 2024-01-01. */
    filter_breaks_t b = breaks_ok(a, "date ge '2024-01-01'", true, TODAY);
    assert_int_equal(b.date_from, day("2024-01-01"));
    expect_breaks_error(a, "date ge '2023-12-31'", true, TODAY,
                        "a delta may start no earlier than 2024-01-01 (1 January of the previous "
                        "year), got 2023-12-31");
    /* The boundary moves on 1 January, not a year after today. */
    breaks_ok(a, "date ge '2023-01-01'", true, "2024-12-31");
    expect_breaks_error(a, "date ge '2023-01-01'", true, "2025-01-01",
                        "a delta may start no earlier than 2024-01-01 (1 January of the previous "
                        "year), got 2023-01-01");
    breaks_ok(a, "date ge '2024-01-01'", true, "2025-01-01");
    /* A plain list has no such bound. */
    breaks_ok(a, "date ge '2010-01-01' and date le '2010-01-31'", false, TODAY);
}

static void test_breaks_out_of_memory(void **state)
{
    (void)state;
    arena_t small;
    arena_init(&small, 128);
    filter_breaks_t b;
    char err[FILTER_ERR_MAX];
    const char *s = "date ge '2024-01-01' and date le '2024-01-31' and person in (1,2,3,4,5)";
    assert_int_equal(filter_breaks_compile(s, strlen(s), false, 0, &small, &b, err, sizeof(err)),
                     BH_ENOMEM);
    arena_deinit(&small);
}

/* ---- Webhooks ----------------------------------------------------------------------- */

static filter_webhooks_t webhooks_ok(arena_t *a, const char *s)
{
    filter_webhooks_t w;
    char err[FILTER_ERR_MAX];
    int rc = filter_webhooks_compile(s, strlen(s), a, &w, err, sizeof(err));
    if (rc != 0)
        fail_msg("filter_webhooks_compile(\"%s\") = %d: %s", s, rc, err);
    return w;
}

static void expect_webhooks_error(arena_t *a, const char *s, const char *msg)
{
    filter_webhooks_t w;
    char err[FILTER_ERR_MAX];
    int rc = filter_webhooks_compile(s, strlen(s), a, &w, err, sizeof(err));
    if (rc != BH_EINVAL)
        fail_msg("filter_webhooks_compile(\"%s\") = %d, want BH_EINVAL", s, rc);
    if (strcmp(err, msg) != 0)
        fail_msg("filter_webhooks_compile(\"%s\")\n  reason \"%s\"\n  want   \"%s\"", s, err, msg);
}

static void test_webhooks(void **state)
{
    arena_t *a = *state;
    filter_webhooks_t w = webhooks_ok(a, "");
    assert_int_equal(w.status, FILTER_WEBHOOK_ANY);
    assert_null(w.collection_name);
    w = webhooks_ok(a, "status eq 'Disabled'");
    assert_int_equal(w.status, FILTER_WEBHOOK_DISABLED);
    assert_null(w.collection_name);
    w = webhooks_ok(a, "status eq 'Enabled' and collection-name eq 'breaks'");
    assert_int_equal(w.status, FILTER_WEBHOOK_ENABLED);
    assert_string_equal(w.collection_name, "breaks");
    assert_int_equal(w.collection_name_len, 6);
    w = webhooks_ok(a, "(collection-name eq 'clockings')");
    assert_int_equal(w.status, FILTER_WEBHOOK_ANY);
    assert_string_equal(w.collection_name, "clockings");
    filter_webhooks_t w2;
    char err[FILTER_ERR_MAX];
    assert_int_equal(filter_webhooks_compile(NULL, 0, a, &w2, err, sizeof(err)), 0);
    assert_int_equal(w2.status, FILTER_WEBHOOK_ANY);
}

static void test_webhooks_errors(void **state)
{
    arena_t *a = *state;
    expect_webhooks_error(a, "status eq 'enabled'",
                          "invalid value 'enabled' for field 'status' at position 10: expected "
                          "'Enabled' or 'Disabled'");
    expect_webhooks_error(a, "status eq 'Enabled' or status eq 'Disabled'",
                          "'or' at position 20 joins conditions on 'status', which takes a single "
                          "value or range: 'or' is not allowed in this filter, none of its fields "
                          "takes several values");
    expect_webhooks_error(a, "collection-name eq 'breaks' and collection-name eq 'x'",
                          "field 'collection-name' may be given only once (again at position 32)");
    expect_webhooks_error(a, "collection-name in ('breaks')",
                          "operator 'in' is not allowed on field 'collection-name' at position "
                          "16: use eq");
    expect_webhooks_error(a, "collectionName eq 'breaks'",
                          "unknown field 'collectionName' at position 0; known fields: status, "
                          "collection-name");
    expect_webhooks_error(a, "status eq Disabled",
                          "expected a value (integer, quoted string, true, false or list) at "
                          "position 10, found 'Disabled' (dates and strings are written in single "
                          "quotes)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_simple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_and_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_parentheses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_named_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_constants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_lexical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_limits_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_operator_and_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_quote_bytes_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_multiple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_unknown_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_or_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_type_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_operator_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_repeated_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_value_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_bad_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_small_error_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_range_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_errors_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_delta_previous_year, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
