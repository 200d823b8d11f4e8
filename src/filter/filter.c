/*
 * filter.c: the Protime filter grammar: lexer, recursive-descent parser, the
 * constraint-category checker and the rules of the breaks and webhooks lists.
 *
 * The parser is a textbook one-token-lookahead recursive descent over the
 * grammar in filter.h. Recursion only happens through parentheses, and their
 * nesting is capped at FILTER_MAX_DEPTH, so the C stack use is bounded whatever
 * the input. Every reason quotes the input through quote(), which keeps the
 * text printable ASCII: reasons go straight into JSON error bodies, and a
 * hostile byte sequence must not make that body invalid.
 */
#include "filter/filter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"

/* ---- Reasons ------------------------------------------------------------------ */

/* Bytes of input quoted in one reason; longer stretches end in "...". Each byte
 * may take 4 characters (\xNN), so a quote fits QUOTE_BUF. */
#define QUOTE_MAX 32
#define QUOTE_BUF (QUOTE_MAX * 4 + 4)

static void quote(const char *p, size_t n, char out[QUOTE_BUF])
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (n > QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void vset_err(char *err, size_t err_len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vset_err(char *err, size_t err_len, const char *fmt, va_list ap)
{
    if (err && err_len > 0)
        vsnprintf(err, err_len, fmt, ap);
}

static int set_err(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_err(err, err_len, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- Lexer ---------------------------------------------------------------------- */

typedef enum tok_kind {
    T_END,
    T_IDENT,
    T_INT,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    size_t pos; /* first byte in the input */
    size_t len; /* bytes in the input, quotes included for a string */
    int64_t i;  /* T_INT */
} tok_t;

typedef struct parser {
    const char *p;
    size_t n;
    size_t off;  /* the next byte the lexer looks at */
    tok_t tok;   /* the current token */
    arena_t *a;
    size_t nodes;
    filter_error_t *err; /* NULL while looking ahead, so nothing is reported twice */
} parser_t;

static int perr(parser_t *ps, int rc, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(parser_t *ps, int rc, size_t pos, const char *fmt, ...)
{
    if (ps->err) {
        va_list ap;
        va_start(ap, fmt);
        ps->err->pos = pos;
        vset_err(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int nomem(parser_t *ps)
{
    return perr(ps, BH_ENOMEM, ps->tok.pos, "out of memory while parsing the filter");
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* What the current token is, for "found ..." in a reason. */
static void describe(const parser_t *ps, char *out, size_t cap)
{
    const tok_t *t = &ps->tok;
    char q[QUOTE_BUF];
    if (t->kind == T_END) {
        snprintf(out, cap, "end of input");
    } else if (t->kind == T_STRING) {
        quote(ps->p + t->pos + 1, t->len - 2, q);
        snprintf(out, cap, "the string '%s'", q);
    } else {
        quote(ps->p + t->pos, t->len, q);
        snprintf(out, cap, "'%s'", q);
    }
}

#define FOUND_BUF (QUOTE_BUF + 16)

static int lex_number(parser_t *ps, size_t i)
{
    const char *p = ps->p;
    bool neg = p[i] == '-';
    size_t j = i + 1;
    /* Take the whole word so "2024-01-01" or "12abc" is one bad token, reported
     * with a hint, rather than a number followed by a puzzling second error. */
    while (j < ps->n && is_ident_char(p[j]))
        j++;
    tok_t *t = &ps->tok;
    t->kind = T_INT;
    t->len = j - i;
    ps->off = j;
    slice_t digits = slice_make(p + i + neg, j - i - neg);
    unsigned long long max = (unsigned long long)INT64_MAX + neg; /* |INT64_MIN| when negative */
    unsigned long long v;
    char q[QUOTE_BUF];
    for (size_t k = 0; k < digits.n; k++) {
        if (!is_digit(digits.p[k])) {
            quote(p + i, j - i, q);
            return perr(ps, BH_EINVAL, i,
                        "invalid integer '%s' at position %zu (dates and strings are written "
                        "in single quotes, e.g. '2024-01-31')",
                        q, i);
        }
    }
    if (!slice_to_u64(digits, max, &v)) {
        quote(p + i, j - i, q);
        return perr(ps, BH_EINVAL, i, "integer out of range at position %zu: '%s'", i, q);
    }
    /* -(2^63) has no positive counterpart in int64_t: build it from INT64_MIN. */
    if (neg)
        t->i = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        t->i = (int64_t)v;
    return 0;
}

/* Reads the next token into ps->tok. */
static int lex(parser_t *ps)
{
    const char *p = ps->p;
    size_t n = ps->n, i = ps->off;
    while (i < n && is_blank(p[i]))
        i++;
    tok_t *t = &ps->tok;
    t->pos = i;
    t->len = 1;
    t->i = 0;
    if (i == n) {
        t->kind = T_END;
        t->len = 0;
        ps->off = i;
        return 0;
    }
    char c = p[i];
    switch (c) {
    case '(': t->kind = T_LPAREN; ps->off = i + 1; return 0;
    case ')': t->kind = T_RPAREN; ps->off = i + 1; return 0;
    case ',': t->kind = T_COMMA; ps->off = i + 1; return 0;
    case '\'': {
        size_t j = i + 1;
        for (;;) {
            if (j >= n)
                return perr(ps, BH_EINVAL, i, "unterminated string starting at position %zu", i);
            if (p[j] == '\'') {
                if (j + 1 < n && p[j + 1] == '\'') {
                    j += 2; /* '' is a quote inside the string */
                    continue;
                }
                break;
            }
            j++;
        }
        t->kind = T_STRING;
        t->len = j + 1 - i;
        ps->off = j + 1;
        return 0;
    }
    default: break;
    }
    if (is_digit(c) || (c == '-' && i + 1 < n && is_digit(p[i + 1])))
        return lex_number(ps, i);
    if (is_alpha(c)) {
        size_t j = i + 1;
        while (j < n && is_ident_char(p[j]))
            j++;
        t->kind = T_IDENT;
        t->len = j - i;
        ps->off = j;
        return 0;
    }
    char q[QUOTE_BUF];
    quote(p + i, 1, q);
    if (c == '"')
        return perr(ps, BH_EINVAL, i,
                    "unexpected character '%s' at position %zu (strings are written in single "
                    "quotes)",
                    q, i);
    return perr(ps, BH_EINVAL, i, "unexpected character '%s' at position %zu", q, i);
}

static bool is_kw(const parser_t *ps, const char *kw)
{
    return ps->tok.kind == T_IDENT &&
           slice_eq_cstr(slice_make(ps->p + ps->tok.pos, ps->tok.len), kw);
}

/* ---- Parser ----------------------------------------------------------------- */

static int new_node(parser_t *ps, filter_node_kind_t kind, size_t pos, filter_node_t **out)
{
    if (ps->nodes >= FILTER_MAX_NODES)
        return perr(ps, BH_EINVAL, pos,
                    "filter expression too complex at position %zu: at most %d conditions "
                    "and operators",
                    pos, FILTER_MAX_NODES);
    filter_node_t *node = arena_alloc(ps->a, sizeof(*node));
    if (!node)
        return nomem(ps);
    memset(node, 0, sizeof(*node));
    node->kind = kind;
    node->pos = pos;
    ps->nodes++;
    *out = node;
    return 0;
}

static bool tok_is_constant(const parser_t *ps)
{
    return ps->tok.kind == T_INT || ps->tok.kind == T_STRING || is_kw(ps, "true") ||
           is_kw(ps, "false");
}

/* Stores the current token, which tok_is_constant() accepted, in v and moves on. */
static int take_constant(parser_t *ps, filter_value_t *v)
{
    const tok_t *t = &ps->tok;
    memset(v, 0, sizeof(*v));
    v->pos = t->pos;
    if (t->kind == T_INT) {
        v->kind = FILTER_V_INT;
        v->i = t->i;
    } else if (t->kind == T_STRING) {
        const char *src = ps->p + t->pos + 1;
        size_t raw = t->len - 2, len = 0;
        char *s = arena_alloc(ps->a, raw + 1);
        if (!s)
            return nomem(ps);
        for (size_t k = 0; k < raw; k++) {
            s[len++] = src[k];
            if (src[k] == '\'')
                k++; /* the lexer guarantees quotes come in pairs here */
        }
        s[len] = '\0';
        v->kind = FILTER_V_STRING;
        v->s = slice_make(s, len);
    } else {
        v->kind = FILTER_V_BOOL;
        v->b = is_kw(ps, "true");
    }
    return lex(ps);
}

/* Counts the constants of the list that starts at the current '(' without
 * consuming anything, so the list can be stored in one exact allocation. A
 * malformed list just stops the count; the real pass reports it. */
static size_t count_list(const parser_t *ps)
{
    parser_t look = *ps;
    look.err = NULL;
    size_t count = 0;
    for (;;) {
        if (lex(&look) != 0 || !tok_is_constant(&look))
            break;
        if (++count > FILTER_MAX_LIST)
            break;
        if (lex(&look) != 0 || look.tok.kind != T_COMMA)
            break;
    }
    return count;
}

/* list = "(" constant { "," constant } ")", the current token being "(". */
static int parse_list(parser_t *ps, filter_node_t *node)
{
    size_t open = ps->tok.pos;
    size_t cap = count_list(ps);
    if (cap > FILTER_MAX_LIST)
        cap = FILTER_MAX_LIST;
    if (cap == 0)
        cap = 1;
    filter_value_t *vals = arena_alloc(ps->a, cap * sizeof(*vals));
    if (!vals)
        return nomem(ps);
    size_t count = 0;
    char found[FOUND_BUF];
    int rc = lex(ps);
    if (rc)
        return rc;
    for (;;) {
        if (!tok_is_constant(ps)) {
            describe(ps, found, sizeof(found));
            return perr(ps, BH_EINVAL, ps->tok.pos,
                        "expected a value (integer, quoted string, true or false) at position "
                        "%zu, found %s",
                        ps->tok.pos, found);
        }
        if (count == FILTER_MAX_LIST)
            return perr(ps, BH_EINVAL, open,
                        "the list at position %zu is too long: at most %d values", open,
                        FILTER_MAX_LIST);
        if (count == cap) /* count_list() and this loop disagree: a bug */
            return perr(ps, BH_EINTERNAL, open, "internal error while parsing a list");
        rc = take_constant(ps, &vals[count++]);
        if (rc)
            return rc;
        if (ps->tok.kind == T_COMMA) {
            rc = lex(ps);
            if (rc)
                return rc;
            continue;
        }
        if (ps->tok.kind == T_RPAREN)
            break;
        describe(ps, found, sizeof(found));
        return perr(ps, BH_EINVAL, ps->tok.pos, "expected ',' or ')' at position %zu, found %s",
                    ps->tok.pos, found);
    }
    node->is_list = true;
    node->values = vals;
    node->n_values = count;
    return lex(ps);
}

/* factor = constant | list, for the condition node. */
static int parse_factor(parser_t *ps, filter_node_t *node)
{
    char found[FOUND_BUF];
    node->factor_pos = ps->tok.pos;
    if (ps->tok.kind == T_LPAREN)
        return parse_list(ps, node);
    if (tok_is_constant(ps)) {
        filter_value_t *v = arena_alloc(ps->a, sizeof(*v));
        if (!v)
            return nomem(ps);
        node->values = v;
        node->n_values = 1;
        return take_constant(ps, v);
    }
    if (ps->tok.kind == T_IDENT) {
        /* A named list ("circle(2, 8)") is the only place an identifier may stand
         * for a value; look past blanks for its '('. */
        size_t j = ps->off;
        while (j < ps->n && is_blank(ps->p[j]))
            j++;
        if (j < ps->n && ps->p[j] == '(') {
            node->list_name.p = arena_strndup(ps->a, ps->p + ps->tok.pos, ps->tok.len);
            if (!node->list_name.p)
                return nomem(ps);
            node->list_name.n = ps->tok.len;
            int rc = lex(ps);
            if (rc)
                return rc;
            return parse_list(ps, node);
        }
        describe(ps, found, sizeof(found));
        return perr(ps, BH_EINVAL, ps->tok.pos,
                    "expected a value (integer, quoted string, true, false or list) at position "
                    "%zu, found %s (dates and strings are written in single quotes)",
                    ps->tok.pos, found);
    }
    describe(ps, found, sizeof(found));
    return perr(ps, BH_EINVAL, ps->tok.pos,
                "expected a value (integer, quoted string, true, false or list) at position %zu, "
                "found %s",
                ps->tok.pos, found);
}

static int parse_chain(parser_t *ps, int depth, filter_node_kind_t kind, filter_node_t **out);

/* condition = simple-condition | "(" expression ")". */
static int parse_condition(parser_t *ps, int depth, filter_node_t **out)
{
    char found[FOUND_BUF];
    int rc;
    if (ps->tok.kind == T_LPAREN) {
        if (depth >= FILTER_MAX_DEPTH)
            return perr(ps, BH_EINVAL, ps->tok.pos,
                        "parentheses nested too deeply at position %zu: at most %d levels",
                        ps->tok.pos, FILTER_MAX_DEPTH);
        rc = lex(ps);
        if (rc)
            return rc;
        rc = parse_chain(ps, depth + 1, FILTER_NODE_OR, out);
        if (rc)
            return rc;
        if (ps->tok.kind == T_RPAREN)
            return lex(ps);
        if (ps->tok.kind == T_END)
            return perr(ps, BH_EINVAL, ps->tok.pos,
                        "expected ')' at position %zu, found end of input", ps->tok.pos);
        describe(ps, found, sizeof(found));
        return perr(ps, BH_EINVAL, ps->tok.pos,
                    "expected 'and', 'or' or ')' at position %zu, found %s", ps->tok.pos, found);
    }
    if (ps->tok.kind != T_IDENT) {
        describe(ps, found, sizeof(found));
        return perr(ps, BH_EINVAL, ps->tok.pos,
                    "expected a field name or '(' at position %zu, found %s", ps->tok.pos, found);
    }
    filter_node_t *node = NULL;
    rc = new_node(ps, FILTER_NODE_COND, ps->tok.pos, &node);
    if (rc)
        return rc;
    node->field.p = arena_strndup(ps->a, ps->p + ps->tok.pos, ps->tok.len);
    if (!node->field.p)
        return nomem(ps);
    node->field.n = ps->tok.len;
    rc = lex(ps);
    if (rc)
        return rc;
    static const struct {
        const char *kw;
        filter_op_t op;
    } ops[] = { { "eq", FILTER_OP_EQ }, { "ge", FILTER_OP_GE }, { "le", FILTER_OP_LE },
                { "in", FILTER_OP_IN } };
    size_t k = 0;
    while (k < sizeof(ops) / sizeof(ops[0]) && !is_kw(ps, ops[k].kw))
        k++;
    if (k == sizeof(ops) / sizeof(ops[0])) {
        describe(ps, found, sizeof(found));
        return perr(ps, BH_EINVAL, ps->tok.pos,
                    "expected a comparison operator (eq, ge, le, in) at position %zu, found %s",
                    ps->tok.pos, found);
    }
    node->op = ops[k].op;
    node->op_pos = ps->tok.pos;
    rc = lex(ps);
    if (rc)
        return rc;
    rc = parse_factor(ps, node);
    if (rc)
        return rc;
    *out = node;
    return 0;
}

/* expression (kind OR: terms joined by "or") or term (kind AND: conditions
 * joined by "and"). A chain of one element is that element, not a node. */
static int parse_chain(parser_t *ps, int depth, filter_node_kind_t kind, filter_node_t **out)
{
    const char *kw = kind == FILTER_NODE_OR ? "or" : "and";
    filter_node_t *first;
    int rc = kind == FILTER_NODE_OR ? parse_chain(ps, depth, FILTER_NODE_AND, &first)
                                    : parse_condition(ps, depth, &first);
    if (rc)
        return rc;
    if (!is_kw(ps, kw)) {
        *out = first;
        return 0;
    }
    filter_node_t *node = NULL;
    rc = new_node(ps, kind, ps->tok.pos, &node);
    if (rc)
        return rc;
    node->first = first;
    node->n_kids = 1;
    filter_node_t *last = first;
    while (is_kw(ps, kw)) {
        rc = lex(ps);
        if (rc)
            return rc;
        filter_node_t *kid;
        rc = kind == FILTER_NODE_OR ? parse_chain(ps, depth, FILTER_NODE_AND, &kid)
                                    : parse_condition(ps, depth, &kid);
        if (rc)
            return rc;
        last->next = kid;
        last = kid;
        node->n_kids++;
    }
    *out = node;
    return 0;
}

int filter_parse(const char *p, size_t n, arena_t *a, const filter_node_t **root_out,
                 filter_error_t *err)
{
    parser_t ps = { .p = p, .n = n, .a = a, .err = err };
    if (err) {
        err->pos = 0;
        err->msg[0] = '\0';
    }
    if (n > FILTER_MAX_INPUT)
        return perr(&ps, BH_EINVAL, FILTER_MAX_INPUT,
                    "filter expression too long: %zu bytes, at most %d", n, FILTER_MAX_INPUT);
    int rc = lex(&ps);
    if (rc)
        return rc;
    if (ps.tok.kind == T_END)
        return perr(&ps, BH_EINVAL, 0, "the filter expression is empty");
    filter_node_t *root;
    rc = parse_chain(&ps, 0, FILTER_NODE_OR, &root);
    if (rc)
        return rc;
    if (ps.tok.kind != T_END) {
        char found[FOUND_BUF];
        describe(&ps, found, sizeof(found));
        return perr(&ps, BH_EINVAL, ps.tok.pos,
                    "expected 'and', 'or' or end of input at position %zu, found %s",
                    ps.tok.pos, found);
    }
    *root_out = root;
    return 0;
}

/* ---- Semantics ------------------------------------------------------------------ */

typedef struct compiler {
    const filter_field_t *fields;
    size_t n_fields;
    arena_t *a;
    filter_query_t *q;
    char *err;
    size_t err_len;
    size_t cap[FILTER_MAX_FIELDS];    /* values the tree holds for each field */
    size_t groups[FILTER_MAX_FIELDS]; /* top-level conjuncts naming each field */
    int64_t *ints[FILTER_MAX_FIELDS];
    slice_t *strs[FILTER_MAX_FIELDS];
} compiler_t;

static int cerr(compiler_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cerr(compiler_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_err(c->err, c->err_len, fmt, ap);
    va_end(ap);
    return BH_EINVAL;
}

static const char *op_name(filter_op_t op)
{
    switch (op) {
    case FILTER_OP_EQ: return "eq";
    case FILTER_OP_GE: return "ge";
    case FILTER_OP_LE: return "le";
    case FILTER_OP_IN: return "in";
    }
    return "?";
}

static int find_field(const compiler_t *c, slice_t name)
{
    for (size_t i = 0; i < c->n_fields; i++)
        if (slice_eq_cstr(name, c->fields[i].name))
            return (int)i;
    return -1;
}

/* "a, b, c" of the names of the fields that pass the test (all when any). */
static void field_names(const compiler_t *c, bool multiple_only, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->n_fields && o < cap; i++) {
        if (multiple_only && c->fields[i].category != FILTER_MULTIPLE)
            continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", c->fields[i].name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

static int unknown_field(compiler_t *c, const filter_node_t *cond)
{
    char q[QUOTE_BUF], known[128];
    quote(cond->field.p, cond->field.n, q);
    field_names(c, false, known, sizeof(known));
    if (c->n_fields == 0)
        return cerr(c, "unknown field '%s' at position %zu; this collection has no filters", q,
                    cond->pos);
    return cerr(c, "unknown field '%s' at position %zu; known fields: %s", q, cond->pos, known);
}

/* The common end of every "or" reason. */
static void or_rule(const compiler_t *c, char *out, size_t cap)
{
    char multi[128];
    field_names(c, true, multi, sizeof(multi));
    if (multi[0])
        snprintf(out, cap, "'or' is only allowed between conditions on the same multi-value "
                           "field (%s)", multi);
    else
        snprintf(out, cap, "'or' is not allowed in this filter, none of its fields takes "
                           "several values");
}

static void value_text(const filter_value_t *v, char *out, size_t cap)
{
    char q[QUOTE_BUF];
    switch (v->kind) {
    case FILTER_V_INT: snprintf(out, cap, "%lld", (long long)v->i); break;
    case FILTER_V_BOOL: snprintf(out, cap, "%s", v->b ? "true" : "false"); break;
    case FILTER_V_STRING:
        quote(v->s.p, v->s.n, q);
        snprintf(out, cap, "the string '%s'", q);
        break;
    }
}

/* The value as the field's type wants it: an integer (days for a date) or a string. */
static int convert(compiler_t *c, const filter_field_t *f, const filter_value_t *v, int64_t *iv,
                   slice_t *sv)
{
    char text[FOUND_BUF], q[QUOTE_BUF];
    switch (f->type) {
    case FILTER_T_DATE: {
        if (v->kind != FILTER_V_STRING) {
            value_text(v, text, sizeof(text));
            return cerr(c, "field '%s' expects a date in single quotes, e.g. '2024-01-31', at "
                           "position %zu, found %s",
                        f->name, v->pos, text);
        }
        int32_t days;
        if (date_parse(v->s.p, v->s.n, &days) != 0) {
            quote(v->s.p, v->s.n, q);
            return cerr(c, "invalid date '%s' for field '%s' at position %zu: expected a real "
                           "calendar date 'YYYY-MM-DD'",
                        q, f->name, v->pos);
        }
        *iv = days;
        return 0;
    }
    case FILTER_T_INT:
        if (v->kind != FILTER_V_INT) {
            value_text(v, text, sizeof(text));
            return cerr(c, "field '%s' expects an integer at position %zu, found %s", f->name,
                        v->pos, text);
        }
        *iv = v->i;
        return 0;
    case FILTER_T_STRING:
        if (v->kind != FILTER_V_STRING) {
            value_text(v, text, sizeof(text));
            return cerr(c, "field '%s' expects a string in single quotes at position %zu, "
                           "found %s",
                        f->name, v->pos, text);
        }
        if (f->allowed) {
            size_t k = 0;
            while (f->allowed[k] && !slice_eq_cstr(v->s, f->allowed[k]))
                k++;
            if (!f->allowed[k]) {
                char list[128];
                size_t o = 0;
                list[0] = '\0';
                for (k = 0; f->allowed[k] && o < sizeof(list); k++) {
                    const char *sep = k == 0 ? "" : f->allowed[k + 1] ? ", " : " or ";
                    int w = snprintf(list + o, sizeof(list) - o, "%s'%s'", sep, f->allowed[k]);
                    if (w < 0)
                        break;
                    o += (size_t)w;
                }
                quote(v->s.p, v->s.n, q);
                return cerr(c, "invalid value '%s' for field '%s' at position %zu: expected %s",
                            q, f->name, v->pos, list);
            }
        }
        *sv = v->s;
        return 0;
    }
    return cerr(c, "internal error: field '%s' has an unknown type", f->name);
}

/* One condition on field idx: operator, values, and what it adds to the query. */
static int compile_cond(compiler_t *c, int idx, const filter_node_t *cond)
{
    const filter_field_t *f = &c->fields[idx];
    filter_cond_t *qc = &c->q->conds[idx];
    const char *op = op_name(cond->op);
    if (cond->list_name.n > 0) {
        char q[QUOTE_BUF];
        quote(cond->list_name.p, cond->list_name.n, q);
        return cerr(c, "named lists are not supported by this server: '%s(...)' at position %zu",
                    q, cond->factor_pos);
    }
    switch (f->category) {
    case FILTER_SINGLE:
        if (cond->op != FILTER_OP_EQ)
            return cerr(c, "operator '%s' is not allowed on field '%s' at position %zu: use eq",
                        op, f->name, cond->op_pos);
        break;
    case FILTER_RANGE:
        if (cond->op == FILTER_OP_IN)
            return cerr(c, "operator 'in' is not allowed on field '%s' at position %zu: use ge "
                           "and le, or eq",
                        f->name, cond->op_pos);
        break;
    case FILTER_MULTIPLE:
        if (cond->op == FILTER_OP_GE || cond->op == FILTER_OP_LE)
            return cerr(c, "operator '%s' is not allowed on field '%s' at position %zu: use eq "
                           "or in",
                        op, f->name, cond->op_pos);
        break;
    }
    if (cond->op == FILTER_OP_IN && !cond->is_list)
        return cerr(c, "operator 'in' needs a list such as (1, 2) at position %zu (field '%s')",
                    cond->factor_pos, f->name);
    if (cond->op != FILTER_OP_IN && cond->is_list)
        return cerr(c, "operator '%s' takes a single value, not a list, at position %zu "
                       "(field '%s')%s",
                    op, cond->factor_pos, f->name,
                    f->category == FILTER_MULTIPLE ? "; use 'in' for a list" : "");

    bool is_str = f->type == FILTER_T_STRING;
    for (size_t k = 0; k < cond->n_values; k++) {
        int64_t iv = 0;
        slice_t sv = SLICE_NULL;
        int rc = convert(c, f, &cond->values[k], &iv, &sv);
        if (rc)
            return rc;
        if (f->category == FILTER_RANGE) {
            /* The parser gives exactly one value here (no lists survive above). */
            if (cond->op == FILTER_OP_EQ && (qc->has_lo || qc->has_hi))
                return cerr(c, "field '%s' has 'eq' together with another bound at position "
                               "%zu: give one eq, or ge and le",
                            f->name, cond->pos);
            if (cond->op == FILTER_OP_GE && qc->has_lo)
                return cerr(c, "field '%s' has a second lower bound at position %zu: give at "
                               "most one ge (or one eq)",
                            f->name, cond->pos);
            if (cond->op == FILTER_OP_LE && qc->has_hi)
                return cerr(c, "field '%s' has a second upper bound at position %zu: give at "
                               "most one le (or one eq)",
                            f->name, cond->pos);
            if (cond->op != FILTER_OP_LE) {
                qc->has_lo = true;
                qc->lo = iv;
            }
            if (cond->op != FILTER_OP_GE) {
                qc->has_hi = true;
                qc->hi = iv;
            }
            continue;
        }
        /* SINGLE and MULTIPLE collect the values; pass 1 sized the arrays. */
        size_t *count = is_str ? &qc->n_strs : &qc->n_ints;
        if (*count >= c->cap[idx])
            return cerr(c, "internal error: value count of field '%s'", f->name);
        if (is_str) {
            c->strs[idx][(*count)++] = sv;
        } else {
            c->ints[idx][(*count)++] = iv;
            if (f->category == FILTER_SINGLE) {
                qc->has_lo = qc->has_hi = true;
                qc->lo = qc->hi = iv;
            }
        }
    }
    return 0;
}

/* Conditions that one top-level conjunct places on field idx: one condition, or
 * several joined by "or" (on a MULTIPLE field). pos is where the conjunct starts. */
static int compile_group(compiler_t *c, int idx, const filter_node_t *const *conds, size_t n,
                         size_t pos)
{
    const filter_field_t *f = &c->fields[idx];
    c->groups[idx]++;
    if (c->groups[idx] > 1 && f->category == FILTER_SINGLE)
        return cerr(c, "field '%s' may be given only once (again at position %zu)", f->name, pos);
    if (c->groups[idx] > 1 && f->category == FILTER_MULTIPLE)
        return cerr(c, "field '%s' is given more than once (again at position %zu): put its "
                       "values in one list with 'in', or join them with 'or'",
                    f->name, pos);
    c->q->conds[idx].present = true;
    for (size_t k = 0; k < n; k++) {
        int rc = compile_cond(c, idx, conds[k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* The leaves of an "or", through nested "or"s (parentheses); an "and" inside is
 * refused, since no Protime category gives it a meaning. */
static int collect_or(compiler_t *c, const filter_node_t *or_node, const filter_node_t *node,
                      const filter_node_t **leaves, size_t *n)
{
    char rule[192];
    switch (node->kind) {
    case FILTER_NODE_COND:
        if (*n >= FILTER_MAX_NODES)
            return cerr(c, "filter expression too complex: at most %d conditions",
                        FILTER_MAX_NODES);
        leaves[(*n)++] = node;
        return 0;
    case FILTER_NODE_AND:
        or_rule(c, rule, sizeof(rule));
        return cerr(c, "'or' at position %zu joins a group of conditions joined by 'and' (at "
                       "position %zu): %s",
                    or_node->pos, node->pos, rule);
    case FILTER_NODE_OR:
        for (const filter_node_t *k = node->first; k; k = k->next) {
            int rc = collect_or(c, or_node, k, leaves, n);
            if (rc)
                return rc;
        }
        return 0;
    }
    return cerr(c, "internal error: unknown node kind");
}

static int compile_or(compiler_t *c, const filter_node_t *node)
{
    const filter_node_t *leaves[FILTER_MAX_NODES];
    size_t n = 0;
    int rc = collect_or(c, node, node, leaves, &n);
    if (rc)
        return rc;
    int idx = -1;
    for (size_t k = 0; k < n; k++) {
        int i = find_field(c, leaves[k]->field);
        if (i < 0)
            return unknown_field(c, leaves[k]);
        if (idx < 0)
            idx = i;
    }
    char rule[192];
    for (size_t k = 0; k < n; k++) {
        int i = find_field(c, leaves[k]->field);
        if (i != idx) {
            or_rule(c, rule, sizeof(rule));
            return cerr(c, "'or' at position %zu joins different fields ('%s' and '%s'): %s",
                        node->pos, c->fields[idx].name, c->fields[i].name, rule);
        }
    }
    if (c->fields[idx].category != FILTER_MULTIPLE) {
        or_rule(c, rule, sizeof(rule));
        return cerr(c, "'or' at position %zu joins conditions on '%s', which takes a single "
                       "value or range: %s",
                    node->pos, c->fields[idx].name, rule);
    }
    return compile_group(c, idx, leaves, n, leaves[0]->pos);
}

/* A conjunct of the top level ("and" nodes are flattened, whatever parentheses
 * made them). */
static int compile_conj(compiler_t *c, const filter_node_t *node)
{
    switch (node->kind) {
    case FILTER_NODE_AND:
        for (const filter_node_t *k = node->first; k; k = k->next) {
            int rc = compile_conj(c, k);
            if (rc)
                return rc;
        }
        return 0;
    case FILTER_NODE_OR:
        return compile_or(c, node);
    case FILTER_NODE_COND: {
        int idx = find_field(c, node->field);
        if (idx < 0)
            return unknown_field(c, node);
        return compile_group(c, idx, &node, 1, node->pos);
    }
    }
    return cerr(c, "internal error: unknown node kind");
}

static void count_values(compiler_t *c, const filter_node_t *node)
{
    if (node->kind == FILTER_NODE_COND) {
        int idx = find_field(c, node->field);
        if (idx >= 0)
            c->cap[idx] += node->n_values;
        return;
    }
    for (const filter_node_t *k = node->first; k; k = k->next)
        count_values(c, k);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_slice(const void *a, const void *b)
{
    const slice_t *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = n ? memcmp(x->p, y->p, n) : 0;
    if (r)
        return r;
    return (x->n > y->n) - (x->n < y->n);
}

/* Sorts a MULTIPLE field's values and drops duplicates. */
static int finish_set(compiler_t *c, int idx)
{
    filter_cond_t *qc = &c->q->conds[idx];
    size_t n, out = 0;
    if (c->fields[idx].type == FILTER_T_STRING) {
        n = qc->n_strs;
        qsort(c->strs[idx], n, sizeof(slice_t), cmp_slice);
        for (size_t k = 0; k < n; k++)
            if (out == 0 || cmp_slice(&c->strs[idx][out - 1], &c->strs[idx][k]) != 0)
                c->strs[idx][out++] = c->strs[idx][k];
        qc->n_strs = out;
    } else {
        n = qc->n_ints;
        qsort(c->ints[idx], n, sizeof(int64_t), cmp_i64);
        for (size_t k = 0; k < n; k++)
            if (out == 0 || c->ints[idx][out - 1] != c->ints[idx][k])
                c->ints[idx][out++] = c->ints[idx][k];
        qc->n_ints = out;
    }
    if (out > FILTER_MAX_LIST)
        return cerr(c, "field '%s' has too many values: at most %d", c->fields[idx].name,
                    FILTER_MAX_LIST);
    return 0;
}

int filter_compile(const filter_node_t *root, const filter_field_t *fields, size_t n_fields,
                   arena_t *a, filter_query_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    if (err && err_len > 0)
        err[0] = '\0';
    compiler_t c = { .fields = fields, .n_fields = n_fields, .a = a, .q = out, .err = err,
                     .err_len = err_len };
    if (n_fields > FILTER_MAX_FIELDS)
        return cerr(&c, "internal error: more than %d filter fields", FILTER_MAX_FIELDS);
    for (size_t i = 0; i < n_fields; i++)
        if (fields[i].category == FILTER_RANGE && fields[i].type == FILTER_T_STRING)
            return cerr(&c, "internal error: field '%s' cannot be a range of strings",
                        fields[i].name);
    out->n_fields = n_fields;
    if (!root)
        return 0;

    count_values(&c, root);
    for (size_t i = 0; i < n_fields; i++) {
        if (c.cap[i] == 0 || fields[i].category == FILTER_RANGE)
            continue;
        void *p = fields[i].type == FILTER_T_STRING ? arena_alloc(a, c.cap[i] * sizeof(slice_t))
                                                    : arena_alloc(a, c.cap[i] * sizeof(int64_t));
        if (!p)
            return set_err(err, err_len, BH_ENOMEM, "out of memory while compiling the filter");
        if (fields[i].type == FILTER_T_STRING)
            c.strs[i] = p;
        else
            c.ints[i] = p;
    }

    int rc = compile_conj(&c, root);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_fields; i++) {
        filter_cond_t *qc = &out->conds[i];
        if (!qc->present)
            continue;
        if (fields[i].category == FILTER_MULTIPLE) {
            rc = finish_set(&c, (int)i);
            if (rc)
                return rc;
        }
        qc->ints = c.ints[i];
        qc->strs = c.strs[i];
    }
    return 0;
}

/* ---- Breaks (SPEC §5, §6) ------------------------------------------------------- */

static const filter_field_t breaks_fields[] = {
    { .name = "date", .type = FILTER_T_DATE, .category = FILTER_RANGE },
    { .name = "person", .type = FILTER_T_INT, .category = FILTER_MULTIPLE },
};
enum { BREAKS_DATE, BREAKS_PERSON };

static bool blank(const char *p, size_t n)
{
    return slice_trim(slice_make(p, n)).n == 0;
}

static int missing_date(bool delta, char *err, size_t err_len)
{
    if (delta)
        return set_err(err, err_len, BH_EINVAL,
                       "a delta needs a start date filter, e.g. date ge '2025-01-01'");
    return set_err(err, err_len, BH_EINVAL,
                   "a date filter is required, e.g. date ge '2024-01-01' and date le "
                   "'2024-01-31'");
}

/* Parses expr into a tree, copying a syntax error into err. */
static int parse_into(const char *expr, size_t n, arena_t *a, const filter_node_t **root,
                      char *err, size_t err_len)
{
    filter_error_t fe;
    int rc = filter_parse(expr, n, a, root, &fe);
    if (rc)
        set_err(err, err_len, rc, "%s", fe.msg);
    return rc;
}

int filter_breaks_compile(const char *expr, size_t n, bool delta, int32_t today_days, arena_t *a,
                          filter_breaks_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    if (err && err_len > 0)
        err[0] = '\0';
    if (blank(expr, n))
        return missing_date(delta, err, err_len);
    const filter_node_t *root;
    int rc = parse_into(expr, n, a, &root, err, err_len);
    if (rc)
        return rc;
    filter_query_t q;
    rc = filter_compile(root, breaks_fields, sizeof(breaks_fields) / sizeof(breaks_fields[0]), a,
                        &q, err, err_len);
    if (rc)
        return rc;

    const filter_cond_t *date = &q.conds[BREAKS_DATE], *person = &q.conds[BREAKS_PERSON];
    if (delta && person->present)
        return set_err(err, err_len, BH_EINVAL, "person cannot be used in a delta filter");
    if (!date->present)
        return missing_date(delta, err, err_len);
    if (!date->has_lo)
        return set_err(err, err_len, BH_EINVAL,
                       delta ? "a delta needs a start date: add date ge 'YYYY-MM-DD'"
                             : "the date range needs a start: add date ge 'YYYY-MM-DD'");
    if (!delta && !date->has_hi)
        return set_err(err, err_len, BH_EINVAL,
                       "the date range needs an end: add date le 'YYYY-MM-DD'");

    /* Date values come from date_parse(), so they fit int32_t. */
    int32_t lo = (int32_t)date->lo, hi = date->has_hi ? (int32_t)date->hi : INT32_MAX;
    char from[11], to[11];
    date_format(lo, from);
    date_format(hi, to);
    if (date->has_hi && lo > hi)
        return set_err(err, err_len, BH_EINVAL,
                       "the date range is empty: start %s is after end %s", from, to);
    if (date->has_hi && (int64_t)hi - lo + 1 > FILTER_BREAKS_MAX_DAYS)
        return set_err(err, err_len, BH_EINVAL,
                       "the date range is too long: %s to %s spans %lld days, at most %d (one "
                       "year) are allowed",
                       from, to, (long long)hi - lo + 1, FILTER_BREAKS_MAX_DAYS);
    if (delta) {
        int y, m, d;
        date_ymd(today_days, &y, &m, &d);
        int32_t earliest = date_from_ymd(y - 1, 1, 1);
        if (lo < earliest) {
            char e[11];
            date_format(earliest, e);
            return set_err(err, err_len, BH_EINVAL,
                           "a delta may start no earlier than %s (1 January of the previous "
                           "year), got %s",
                           e, from);
        }
    }
    out->date_from = lo;
    out->date_to = hi;
    if (person->present) {
        out->persons = person->ints;
        out->n_persons = person->n_ints;
    }
    return 0;
}

/* ---- Webhooks (SPEC §7.1) --------------------------------------------------------- */

static const char *const webhook_statuses[] = { "Enabled", "Disabled", NULL };

static const filter_field_t webhook_fields[] = {
    { .name = "status", .type = FILTER_T_STRING, .category = FILTER_SINGLE,
      .allowed = webhook_statuses },
    { .name = "collection-name", .type = FILTER_T_STRING, .category = FILTER_SINGLE },
};
enum { WEBHOOKS_STATUS, WEBHOOKS_COLLECTION };

int filter_webhooks_compile(const char *expr, size_t n, arena_t *a, filter_webhooks_t *out,
                            char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    out->status = FILTER_WEBHOOK_ANY;
    if (err && err_len > 0)
        err[0] = '\0';
    if (blank(expr, n))
        return 0;
    const filter_node_t *root;
    int rc = parse_into(expr, n, a, &root, err, err_len);
    if (rc)
        return rc;
    filter_query_t q;
    rc = filter_compile(root, webhook_fields, sizeof(webhook_fields) / sizeof(webhook_fields[0]),
                        a, &q, err, err_len);
    if (rc)
        return rc;
    const filter_cond_t *status = &q.conds[WEBHOOKS_STATUS];
    const filter_cond_t *coll = &q.conds[WEBHOOKS_COLLECTION];
    if (status->present)
        out->status = slice_eq_cstr(status->strs[0], "Enabled") ? FILTER_WEBHOOK_ENABLED
                                                                 : FILTER_WEBHOOK_DISABLED;
    if (coll->present) {
        /* The parser NUL-terminates every string it stores. */
        out->collection_name = coll->strs[0].p;
        out->collection_name_len = coll->strs[0].n;
    }
    return 0;
}
