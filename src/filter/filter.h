/*
 * filter.h: the Protime filter grammar (the `filter=` query parameter).
 *
 *   expression = term { "or" term }.
 *   term       = condition { "and" condition }.
 *   condition  = simple-condition | "(" expression ")".
 *   simple-condition = identifier rel-op factor.
 *   rel-op     = "eq" | "ge" | "le" | "in".
 *   factor     = constant | list.
 *   constant   = integer | string | bool.
 *   list       = [identifier] "(" constant { "," constant } ")".
 *
 * Lexical rules: identifiers are letters, digits, '-', '_' and '.', starting with
 * a letter; keywords (and, or, eq, ge, le, in, true, false) are lower-case and
 * case-sensitive; integers are decimal with an optional '-' and must fit int64_t;
 * strings are single-quoted, a doubled '' inside standing for one quote; spaces
 * and tabs separate tokens, any other control byte is an error.
 *
 * Three layers, each usable alone:
 *   1. filter_parse: text -> syntax tree (no knowledge of fields);
 *   2. filter_compile: syntax tree + a table of the collection's fields -> a
 *      filter_query_t of per-field bounds and value sets, enforcing the Protime
 *      constraint categories (Single, Range, Multiple);
 *   3. filter_breaks_compile / filter_webhooks_compile: the complete rules of
 *      one endpoint (SPEC §5, §6, §7.1), from text to a ready-to-use struct.
 *
 * Every function here is pure computation: it does not block, keeps no global
 * state and may be called from any thread. All memory comes from the caller's
 * arena; everything returned lives until that arena is reset. Nothing grows
 * without bound: the input, nesting depth, node count and list length have the
 * hard limits below, so a hostile expression costs a few kilobytes at most.
 *
 * Errors are BH_EINVAL with a one-line English reason meant to be returned to
 * the API client as is ("expected a comparison operator (eq, ge, le, in) at
 * position 5, found 'gt'"). Positions are 0-based byte offsets into the
 * expression as received (after URL decoding). Any byte of the input that the
 * reason quotes is shown as printable ASCII, others as \xNN, so the reason is
 * always valid UTF-8 and safe to put in JSON. BH_ENOMEM when the arena is full.
 */
#ifndef BREAKHOOK_FILTER_FILTER_H
#define BREAKHOOK_FILTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/slice.h"

#define FILTER_MAX_INPUT 4096 /* bytes of expression text */
#define FILTER_MAX_DEPTH 32   /* nested parentheses */
#define FILTER_MAX_NODES 256  /* conditions plus and/or nodes in the tree */
#define FILTER_MAX_LIST 1000  /* constants in one list, and values of one field */
#define FILTER_MAX_FIELDS 16  /* fields in one filter_field_t table */
#define FILTER_ERR_MAX 512    /* a buffer this size holds every reason untruncated */

/* ---- 1. Syntax ---------------------------------------------------------------- */

typedef enum filter_node_kind {
    FILTER_NODE_COND, /* field op factor */
    FILTER_NODE_AND,  /* two or more children joined by "and" */
    FILTER_NODE_OR,   /* two or more children joined by "or" */
} filter_node_kind_t;

typedef enum filter_op {
    FILTER_OP_EQ,
    FILTER_OP_GE,
    FILTER_OP_LE,
    FILTER_OP_IN,
} filter_op_t;

typedef enum filter_value_kind {
    FILTER_V_INT,
    FILTER_V_STRING,
    FILTER_V_BOOL,
} filter_value_kind_t;

/* One constant. */
typedef struct filter_value {
    filter_value_kind_t kind;
    size_t pos;  /* where the literal starts (the opening quote of a string) */
    int64_t i;   /* FILTER_V_INT */
    bool b;      /* FILTER_V_BOOL */
    slice_t s;   /* FILTER_V_STRING: the content with '' undone; NUL-terminated, in the arena */
} filter_value_t;

/* A node of the syntax tree. Parentheses leave no node of their own: they only
 * shape the tree, so "(a eq 1)" is the same COND as "a eq 1". */
typedef struct filter_node {
    filter_node_kind_t kind;
    size_t pos; /* COND: start of the field name; AND/OR: the first 'and'/'or' keyword */

    /* AND / OR: the children in source order, linked through next. */
    const struct filter_node *first;
    size_t n_kids;
    const struct filter_node *next; /* the following sibling, or NULL */

    /* COND */
    slice_t field;              /* NUL-terminated copy in the arena */
    filter_op_t op;
    size_t op_pos;
    bool is_list;               /* the factor was a list, "(1, 2)" or "circle(1, 2)" */
    slice_t list_name;          /* the identifier of a named list ("circle"); n == 0 if none */
    size_t factor_pos;          /* where the constant or list starts */
    const filter_value_t *values; /* 1 for a constant, 1..FILTER_MAX_LIST for a list */
    size_t n_values;
} filter_node_t;

typedef struct filter_error {
    size_t pos;               /* 0-based byte offset the reason is about */
    char msg[FILTER_ERR_MAX]; /* the reason, NUL-terminated; it includes the position */
} filter_error_t;

/* Parses the expression (p, n), borrowed, not necessarily NUL-terminated; the tree
 * does not point into it. On success *root_out is the root, allocated in a.
 * Fails with BH_EINVAL and err filled for a syntax error, an empty expression or
 * one over the limits above; BH_ENOMEM (err filled too) when the arena is full.
 * err may be NULL. */
BH_MUST_USE int filter_parse(const char *p, size_t n, arena_t *a, const filter_node_t **root_out,
                             filter_error_t *err);

/* ---- 2. Semantics -------------------------------------------------------------- */

typedef enum filter_type {
    FILTER_T_DATE,   /* 'YYYY-MM-DD', compiled to days since 1970-01-01 */
    FILTER_T_INT,    /* integer */
    FILTER_T_STRING, /* 'text' */
} filter_type_t;

/* Protime's constraint categories. */
typedef enum filter_category {
    FILTER_SINGLE,   /* one "eq" */
    FILTER_RANGE,    /* "ge" and/or "le" (at most one of each), or one "eq"; DATE or INT only */
    FILTER_MULTIPLE, /* "eq" or "in", and "or" between conditions on this same field */
} filter_category_t;

/* One filterable field of a collection. Tables are usually static const. */
typedef struct filter_field {
    const char *name;           /* as written in the expression, e.g. "collection-name" */
    filter_type_t type;
    filter_category_t category;
    const char *const *allowed; /* STRING only: NULL-terminated list of the accepted
                                   values (case-sensitive), or NULL for any string */
} filter_field_t;

/* What the expression says about one field. Bounds are inclusive. */
typedef struct filter_cond {
    bool present;       /* the field appears in the expression */
    /* DATE and INT fields, SINGLE or RANGE: "ge" sets lo, "le" sets hi, "eq" both. */
    bool has_lo, has_hi;
    int64_t lo, hi;
    /* The values of "eq"/"in", sorted ascending and without duplicates:
     * SINGLE gives exactly one, MULTIPLE one or more (the union over "or").
     * ints for DATE (days) and INT, strs for STRING (byte order). In the arena. */
    const int64_t *ints;
    size_t n_ints;
    const slice_t *strs;
    size_t n_strs;
} filter_cond_t;

typedef struct filter_query {
    size_t n_fields;
    filter_cond_t conds[FILTER_MAX_FIELDS]; /* conds[i] belongs to fields[i] */
} filter_query_t;

/* Checks the tree against the field table and fills *out. root == NULL (no filter
 * given) yields a query with nothing present. The rules: the top level is a
 * conjunction of fields; "or" only joins conditions on one MULTIPLE field; each
 * field appears in one conjunct only, except a RANGE field's separate lower and
 * upper bound; operators, value types, allowed values and dates are checked; a
 * named list ("circle(…)") is refused because this server has no such groups.
 * Whether a field is required and how wide a range may be are the caller's rules
 * (lo > hi is not checked either). Value sets are allocated in a; string
 * values point into the tree's storage, so keep the tree as long as the result.
 * Fails with BH_EINVAL and a reason in err (err may be NULL when err_len is 0)
 * for input errors and for a table with more than FILTER_MAX_FIELDS fields or a
 * RANGE on STRING; BH_ENOMEM. */
BH_MUST_USE int filter_compile(const filter_node_t *root, const filter_field_t *fields,
                               size_t n_fields, arena_t *a, filter_query_t *out, char *err,
                               size_t err_len);

/* ---- 3. Endpoint rules ------------------------------------------------------- */

/* GET /breaks (SPEC §5) and its delta start (SPEC §6). */
typedef struct filter_breaks {
    int32_t date_from;      /* inclusive, days since 1970-01-01 */
    int32_t date_to;        /* inclusive; INT32_MAX for a delta without "date le" */
    const int64_t *persons; /* ascending, unique, in the arena; NULL when not filtered */
    size_t n_persons;
} filter_breaks_t;

/* The number of days, counted inclusively, a breaks date range may span. */
#define FILTER_BREAKS_MAX_DAYS 366

/* Parses and checks the breaks filter (expr, n) (borrowed; empty or blank means
 * no filter). Fields: `date` (RANGE, required) and `person` (MULTIPLE, optional).
 * A list needs both ends of the range (ge and le, or eq); a delta needs the start
 * and may omit the end. Start <= end; at most FILTER_BREAKS_MAX_DAYS days from
 * start to end inclusive; for a delta, no start before 1 January of the year
 * before today_days (today's date, days since 1970-01-01, from the caller's
 * clock) and no `person`. Fails with BH_EINVAL and a reason for the client in
 * err, or BH_ENOMEM. */
BH_MUST_USE int filter_breaks_compile(const char *expr, size_t n, bool delta, int32_t today_days,
                                      arena_t *a, filter_breaks_t *out, char *err,
                                      size_t err_len);

typedef enum filter_webhook_status {
    FILTER_WEBHOOK_ANY,
    FILTER_WEBHOOK_ENABLED,
    FILTER_WEBHOOK_DISABLED,
} filter_webhook_status_t;

/* GET /webhooks (SPEC §7.1). */
typedef struct filter_webhooks {
    filter_webhook_status_t status;
    const char *collection_name; /* NUL-terminated in the arena; NULL when not filtered */
    size_t collection_name_len;
} filter_webhooks_t;

/* Parses and checks the webhook list filter (expr, n) (borrowed; empty or blank
 * means no filter): optional `status eq 'Enabled'|'Disabled'` and optional
 * `collection-name eq '<name>'` (any name; an unknown one simply matches
 * nothing), each at most once, joined by "and". Fails with BH_EINVAL and a
 * reason in err, or BH_ENOMEM. */
BH_MUST_USE int filter_webhooks_compile(const char *expr, size_t n, arena_t *a,
                                        filter_webhooks_t *out, char *err, size_t err_len);

#endif
