/*
 * test_model.c: the resources of SPEC §3, their validation and their JSON.
 *
 * Validation messages are part of the API (they are the reasons of a 400), so
 * every refusal is checked word for word, one field at a time: each case takes
 * a valid body, breaks exactly one thing, and expects exactly one reason. The
 * boundary values next to each refusal are checked to be accepted, so a range
 * that is off by one fails here. Serialisation is what webhooks sign, so it is
 * checked byte for byte, and against jansson's own encoder for escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/date.h"
#include "core/err.h"
#include "model/model.h"
#include "model/model_int.h" /* model__reason, tested directly below */

/* ---- helpers --------------------------------------------------------------- */

static const char BREAK_BODY[] =
    "{\"id\":42,\"person\":{\"id\":7},\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\","
    "\"calculatedDurationInMinutes\":30,\"clockedDurationInMinutes\":25,"
    "\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,\"isBreakTaken\":true}";

static const char DEFINITION_BODY[] =
    "{\"id\":3,\"name\":{\"default\":\"Lunch\",\"translations\":{\"nl\":\"Middagpauze\","
    "\"fr-BE\":\"Pause de midi\"}},\"friendlyName\":{\"default\":\"Lunch break\"},"
    "\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":20,"
    "\"maximumDurationInMinutes\":45,\"ifNotClockedDurationInMinutes\":30,"
    "\"hasToBeTakenUninterrupted\":true}";

static const char PERSON_BODY[] =
    "{\"id\":7,\"externalReferences\":{\"HRMID\":\"h-1\",\"@employee-number\":\"E-4821\"}}";

/* Returns base with the member at a dotted path replaced by the JSON text value,
 * or removed when value is NULL. The result is malloc'd (jansson). */
static char *mutate(const char *base, const char *path, const char *value)
{
    json_error_t e;
    json_t *root = json_loads(base, 0, &e);
    assert_non_null(root);
    char keybuf[256];
    assert_true(strlen(path) < sizeof(keybuf));
    memcpy(keybuf, path, strlen(path) + 1);
    json_t *obj = root;
    char *key = keybuf, *dot;
    while ((dot = strchr(key, '.')) != NULL) {
        *dot = '\0';
        obj = json_object_get(obj, key);
        assert_non_null(obj);
        key = dot + 1;
    }
    if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
        if (!v)
            fail_msg("bad test value %s: %s", value, e.text);
        assert_int_equal(json_object_set_new(obj, key, v), 0);
    } else {
        assert_int_equal(json_object_del(obj, key), 0);
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(s);
    json_decref(root);
    return s;
}

/* A parser under test, reduced to "rc and reasons" so one table runner serves
 * all three resources. */
typedef int (*parse_fn)(const char *p, size_t n, int64_t path_id, model_errors_t *errs);

static int parse_break(const char *p, size_t n, int64_t path_id, model_errors_t *errs)
{
    model_break_t b;
    return model_break_parse(p, n, path_id, &b, errs);
}

static int parse_definition(const char *p, size_t n, int64_t path_id, model_errors_t *errs)
{
    model_definition_t d;
    return model_definition_parse(p, n, path_id, &d, errs);
}

static int parse_person(const char *p, size_t n, int64_t path_id, model_errors_t *errs)
{
    model_person_t pe;
    return model_person_parse(p, n, path_id, &pe, errs);
}

static int parse_line(const char *p, size_t n, int64_t path_id, model_errors_t *errs)
{
    (void)path_id;
    model_batch_line_t l;
    return model_batch_line_parse(p, n, &l, errs);
}

typedef struct bad_case {
    const char *path;   /* member to change; NULL: body is used as is */
    const char *value;  /* new JSON value; NULL: remove the member */
    int64_t path_id;
    const char *reason;
} bad_case_t;

typedef struct good_case {
    const char *path;
    const char *value;
    int64_t path_id;
} good_case_t;

/* Asserts that a reason is valid UTF-8 and so can go into a JSON error body. */
static void assert_utf8(const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        fail_msg("reason is not valid UTF-8: %s", s);
    json_decref(j);
}

static void run_bad(parse_fn fn, const char *base, const bad_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const bad_case_t *c = &cases[i];
        char *body = c->path ? mutate(base, c->path, c->value) : NULL;
        const char *text = body ? body : c->value;
        model_errors_t errs;
        memset(&errs, 0x5a, sizeof(errs));
        int rc = fn(text, strlen(text), c->path_id, &errs);
        if (rc != BH_EINVAL || errs.n != 1 || strcmp(errs.reasons[0], c->reason) != 0) {
            print_message("case %zu: body %s path id %lld\n", i, text, (long long)c->path_id);
            for (size_t k = 0; k < errs.n && k < MODEL_REASONS_MAX; k++)
                print_message("  reason %zu: %s\n", k, errs.reasons[k]);
        }
        assert_int_equal(rc, BH_EINVAL);
        assert_int_equal(errs.n, 1);
        assert_string_equal(errs.reasons[0], c->reason);
        assert_utf8(errs.reasons[0]);
        free(body);
    }
}

static void run_good(parse_fn fn, const char *base, const good_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const good_case_t *c = &cases[i];
        char *body = mutate(base, c->path, c->value);
        model_errors_t errs;
        int rc = fn(body, strlen(body), c->path_id, &errs);
        if (rc != 0) {
            print_message("case %zu: body %s\n", i, body);
            for (size_t k = 0; k < errs.n; k++)
                print_message("  reason %zu: %s\n", k, errs.reasons[k]);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(errs.n, 0);
        free(body);
    }
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- versions -------------------------------------------------------------- */

static void test_version_format(void **state)
{
    (void)state;
    char s[MODEL_VERSION_LEN + 1];
    model_version_format(0, s);
    assert_string_equal(s, "00000000000000000000");
    model_version_format(0x1a2bULL, s);
    assert_string_equal(s, "00000000000000001A2B");
    model_version_format(UINT64_MAX, s);
    assert_string_equal(s, "0000FFFFFFFFFFFFFFFF");
    /* String order is counter order (SPEC §3.4). */
    char a[MODEL_VERSION_LEN + 1], b[MODEL_VERSION_LEN + 1];
    const uint64_t vs[] = { 0, 1, 9, 10, 15, 16, 255, 256, 0xffffffffULL, 0x100000000ULL,
                            UINT64_MAX - 1, UINT64_MAX };
    for (size_t i = 0; i + 1 < N_OF(vs); i++) {
        model_version_format(vs[i], a);
        model_version_format(vs[i + 1], b);
        assert_true(strcmp(a, b) < 0);
    }
}

static void test_version_parse(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(model_version_parse("00000000000000001A2B", 20, &v), 0);
    assert_int_equal(v, 0x1a2b);
    assert_int_equal(model_version_parse("00000000000000001a2b", 20, &v), 0);
    assert_int_equal(v, 0x1a2b);
    assert_int_equal(model_version_parse("0000FFFFFFFFFFFFFFFF", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(model_version_parse("00000000000000000000", 20, &v), 0);
    assert_int_equal(v, 0);

    v = 7;
    assert_int_equal(model_version_parse("0000000000000001A2B", 19, &v), BH_EINVAL);
    assert_int_equal(model_version_parse("000000000000000001A2B", 21, &v), BH_EINVAL);
    assert_int_equal(model_version_parse("0000000000000000001G", 20, &v), BH_EINVAL);
    assert_int_equal(model_version_parse("000000000000000000 1", 20, &v), BH_EINVAL);
    assert_int_equal(model_version_parse("+0000000000000000001", 20, &v), BH_EINVAL);
    assert_int_equal(model_version_parse("", 0, &v), BH_EINVAL);
    assert_int_equal(model_version_parse(NULL, 20, &v), BH_EINVAL);
    /* The length is what counts, not a NUL: 20 digits out of a longer text. */
    assert_int_equal(model_version_parse("00000000000000000001ZZZ", 20, &v), 0);
    assert_int_equal(v, 1);
    /* More than 64 bits. */
    v = 7;
    assert_int_equal(model_version_parse("00010000000000000000", 20, &v), BH_ERANGE);
    assert_int_equal(model_version_parse("FFFFFFFFFFFFFFFFFFFF", 20, &v), BH_ERANGE);
    assert_int_equal(v, 7);

    char s[MODEL_VERSION_LEN + 1];
    const uint64_t vs[] = { 0, 1, 0xdeadbeefULL, 0x123456789abcdefULL, UINT64_MAX };
    for (size_t i = 0; i < N_OF(vs); i++) {
        model_version_format(vs[i], s);
        assert_int_equal(model_version_parse(s, strlen(s), &v), 0);
        assert_true(v == vs[i]);
    }
}

/* ---- breaks ------------------------------------------------------------- */

static void test_break_parse_fields(void **state)
{
    (void)state;
    model_break_t b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &b, &errs), 0);
    assert_int_equal(errs.n, 0);
    int32_t day;
    assert_int_equal(date_parse("2024-02-29", 10, &day), 0);
    assert_int_equal(b.id, 42);
    assert_int_equal(b.version, 0);
    assert_int_equal(b.person_id, 7);
    assert_int_equal(b.definition_id, 3);
    assert_int_equal(b.date, day);
    assert_int_equal(b.calculated, 30);
    assert_true(b.calculated_given);
    assert_int_equal(b.clocked, 25);
    assert_int_equal(b.start, 720);
    assert_int_equal(b.end, 780);
    assert_true(b.taken);

    /* path id 0 ($batch): the body's id is used. */
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 0, &b, &errs), 0);
    assert_int_equal(b.id, 42);
}

static void test_break_round_trip(void **state)
{
    (void)state;
    model_break_t a, b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &a, &errs), 0);
    a.version = 99;
    buf_t out;
    buf_init(&out, 4096);
    assert_int_equal(model_break_json(&out, &a, NULL), 0);
    assert_int_equal(model_break_parse(out.p, out.len, 42, &b, &errs), 0);
    assert_true(model_break_same(&a, &b));
    assert_int_equal(b.version, 0); /* changeVersion is read-only */

    /* Negative minutes and isBreakTaken false survive as well. */
    char *body = mutate(BREAK_BODY, "startTimeInMinutes", "-1440");
    char *body2 = mutate(body, "isBreakTaken", "false");
    assert_int_equal(model_break_parse(body2, strlen(body2), 42, &a, &errs), 0);
    buf_reset(&out);
    assert_int_equal(model_break_json(&out, &a, NULL), 0);
    assert_non_null(strstr(out.p, "\"startTimeInMinutes\":-1440,"));
    assert_non_null(strstr(out.p, "\"isBreakTaken\":false}"));
    assert_int_equal(model_break_parse(out.p, out.len, 42, &b, &errs), 0);
    assert_true(model_break_same(&a, &b));
    free(body);
    free(body2);
    buf_deinit(&out);
}

/* A GET answer, with changeVersion and person.externalReferences, can be PUT
 * back unchanged (SPEC §4). */
static void test_break_get_shape_accepted(void **state)
{
    (void)state;
    const char get[] =
        "{\"changeVersion\":\"0000000000000000002A\",\"id\":42,\"person\":{\"id\":7,"
        "\"externalReferences\":{\"@employee-number\":\"E-4821\",\"HRMID\":\"x\"}},"
        "\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\",\"calculatedDurationInMinutes\":30,"
        "\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,"
        "\"isBreakTaken\":true}";
    model_break_t a, b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(get, strlen(get), 42, &a, &errs), 0);
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &b, &errs), 0);
    assert_true(model_break_same(&a, &b));
    assert_int_equal(a.version, 0);

    /* And what model_break_json writes with embedded references, likewise. */
    const model_ref_t refs[] = { { "@badge-number", "B-1" }, { "HRMID", "h\"1" } };
    model_embed_t embed = { refs, 2, true };
    buf_t out;
    buf_init(&out, 4096);
    a.version = 0x2a;
    assert_int_equal(model_break_json(&out, &a, &embed), 0);
    assert_int_equal(model_break_parse(out.p, out.len, 42, &b, &errs), 0);
    assert_true(model_break_same(&a, &b));
    buf_deinit(&out);
}

static void test_break_calculated_optional(void **state)
{
    (void)state;
    model_break_t b;
    model_errors_t errs;
    char *absent = mutate(BREAK_BODY, "calculatedDurationInMinutes", NULL);
    char *null = mutate(BREAK_BODY, "calculatedDurationInMinutes", "null");
    char *zero = mutate(BREAK_BODY, "calculatedDurationInMinutes", "0");
    assert_int_equal(model_break_parse(absent, strlen(absent), 42, &b, &errs), 0);
    assert_false(b.calculated_given);
    assert_int_equal(b.calculated, 0);
    assert_int_equal(model_break_parse(null, strlen(null), 42, &b, &errs), 0);
    assert_false(b.calculated_given);
    assert_int_equal(model_break_parse(zero, strlen(zero), 42, &b, &errs), 0);
    assert_true(b.calculated_given);
    assert_int_equal(b.calculated, 0);
    free(absent);
    free(null);
    free(zero);
}

static void test_break_each_error(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        { "id", NULL, 0, "id: is required" },
        { "id", "\"42\"", 0, "id: must be an integer" },
        { "id", "42.0", 0, "id: must be an integer" },
        { "id", "4.2e1", 0, "id: must be an integer" },
        { "id", "null", 0, "id: must be an integer" },
        { "id", "0", 0, "id: must be between 1 and 9007199254740992" },
        { "id", "-5", 0, "id: must be between 1 and 9007199254740992" },
        { "id", "9007199254740993", 0, "id: must be between 1 and 9007199254740992" },
        { "id", "43", 42, "id: must equal the id in the path (42)" },
        { "id", NULL, 42, "id: must equal the id in the path (42)" },
        { "id", "\"42\"", 42, "id: must be an integer" },
        /* A path id the router should never pass is still not trusted. */
        { "id", "-3", -3, "id: must be between 1 and 9007199254740992" },
        { "id", "9007199254740993", 9007199254740993LL,
          "id: must be between 1 and 9007199254740992" },
        { "person", NULL, 42, "person: is required" },
        { "person", "7", 42, "person: must be an object" },
        { "person", "[7]", 42, "person: must be an object" },
        { "person.id", NULL, 42, "person.id: is required" },
        { "person.id", "7.5", 42, "person.id: must be an integer" },
        { "person.id", "\"7\"", 42, "person.id: must be an integer" },
        { "person.id", "0", 42, "person.id: must be between 1 and 9007199254740992" },
        { "person.colour", "1", 42, "unknown property 'person.colour'" },
        { "breakDefinition", NULL, 42, "breakDefinition: is required" },
        { "breakDefinition", "true", 42, "breakDefinition: must be an object" },
        { "breakDefinition.id", NULL, 42, "breakDefinition.id: is required" },
        { "breakDefinition.id", "false", 42, "breakDefinition.id: must be an integer" },
        { "breakDefinition.id", "9007199254740993", 42,
          "breakDefinition.id: must be between 1 and 9007199254740992" },
        /* Only person carries read-only externalReferences in a GET. */
        { "breakDefinition.externalReferences", "{}", 42,
          "unknown property 'breakDefinition.externalReferences'" },
        { "date", NULL, 42, "date: is required" },
        { "date", "20240229", 42, "date: must be a string" },
        { "date", "\"2023-02-29\"", 42, "date: '2023-02-29' is not a calendar date" },
        { "date", "\"1900-02-29\"", 42, "date: '1900-02-29' is not a calendar date" },
        { "date", "\"2024-04-31\"", 42, "date: '2024-04-31' is not a calendar date" },
        { "date", "\"2024-13-01\"", 42, "date: '2024-13-01' is not a calendar date" },
        { "date", "\"2024-00-10\"", 42, "date: '2024-00-10' is not a calendar date" },
        { "date", "\"2024-01-00\"", 42, "date: '2024-01-00' is not a calendar date" },
        { "date", "\"0000-01-01\"", 42, "date: '0000-01-01' is not a calendar date" },
        { "date", "\"24-02-29\"", 42, "date: '24-02-29' is not written YYYY-MM-DD" },
        { "date", "\"2024-2-29\"", 42, "date: '2024-2-29' is not written YYYY-MM-DD" },
        { "date", "\"2024/02/29\"", 42, "date: '2024/02/29' is not written YYYY-MM-DD" },
        { "date", "\"2024-02-29T00:00:00Z\"", 42,
          "date: '2024-02-29T00:00:00Z' is not written YYYY-MM-DD" },
        { "date", "\"\"", 42, "date: '' is not written YYYY-MM-DD" },
        { "calculatedDurationInMinutes", "-1", 42,
          "calculatedDurationInMinutes: must be between 0 and 100000" },
        { "calculatedDurationInMinutes", "100001", 42,
          "calculatedDurationInMinutes: must be between 0 and 100000" },
        { "calculatedDurationInMinutes", "30.0", 42,
          "calculatedDurationInMinutes: must be an integer" },
        { "calculatedDurationInMinutes", "\"30\"", 42,
          "calculatedDurationInMinutes: must be an integer" },
        { "clockedDurationInMinutes", NULL, 42, "clockedDurationInMinutes: is required" },
        { "clockedDurationInMinutes", "-1", 42,
          "clockedDurationInMinutes: must be between 0 and 100000" },
        { "clockedDurationInMinutes", "1e2", 42, "clockedDurationInMinutes: must be an integer" },
        { "startTimeInMinutes", NULL, 42,
          "startTimeInMinutes: is required when endTimeInMinutes is given" },
        { "startTimeInMinutes", "-1441", 42,
          "startTimeInMinutes: must be between -1440 and 2880" },
        { "startTimeInMinutes", "781", 42,
          "endTimeInMinutes: must not be before startTimeInMinutes" },
        { "endTimeInMinutes", NULL, 42,
          "endTimeInMinutes: is required when startTimeInMinutes is given" },
        { "endTimeInMinutes", "2881", 42, "endTimeInMinutes: must be between -1440 and 2880" },
        { "endTimeInMinutes", "719", 42,
          "endTimeInMinutes: must not be before startTimeInMinutes" },
        { "endTimeInMinutes", "[780]", 42, "endTimeInMinutes: must be an integer" },
        { "isBreakTaken", NULL, 42, "isBreakTaken: is required" },
        { "isBreakTaken", "\"true\"", 42, "isBreakTaken: must be a boolean" },
        { "isBreakTaken", "1", 42, "isBreakTaken: must be a boolean" },
        { "isBreakTaken", "null", 42, "isBreakTaken: must be a boolean" },
        { "colour", "\"red\"", 42, "unknown property 'colour'" },
        { "externalReferences", "{}", 42, "unknown property 'externalReferences'" },
    };
    run_bad(parse_break, BREAK_BODY, cases, N_OF(cases));
}

static void test_break_boundaries_accepted(void **state)
{
    (void)state;
    static const good_case_t cases[] = {
        { "id", "1", 0 },
        { "id", "9007199254740992", 0 },
        { "id", "9007199254740992", 9007199254740992LL },
        { "person.id", "9007199254740992", 42 },
        { "breakDefinition.id", "1", 42 },
        { "date", "\"0001-01-01\"", 42 },
        { "date", "\"9999-12-31\"", 42 },
        { "date", "\"2000-02-29\"", 42 },
        { "calculatedDurationInMinutes", "100000", 42 },
        { "clockedDurationInMinutes", "0", 42 },
        { "clockedDurationInMinutes", "100000", 42 },
        { "startTimeInMinutes", "-1440", 42 },
        { "startTimeInMinutes", "780", 42 }, /* end == start */
        { "endTimeInMinutes", "2880", 42 },
        { "changeVersion", "\"anything: read-only, ignored\"", 42 },
        { "person.externalReferences", "{\"@employee-number\":\"E-1\"}", 42 },
    };
    run_good(parse_break, BREAK_BODY, cases, N_OF(cases));
}

static void test_break_start_end_range_both(void **state)
{
    (void)state;
    /* start -1440 .. end 2880 at the same time, and the reverse refused. */
    char *a = mutate(BREAK_BODY, "startTimeInMinutes", "-1440");
    char *b = mutate(a, "endTimeInMinutes", "2880");
    model_break_t r;
    model_errors_t errs;
    assert_int_equal(model_break_parse(b, strlen(b), 42, &r, &errs), 0);
    assert_int_equal(r.start, -1440);
    assert_int_equal(r.end, 2880);
    char *c = mutate(BREAK_BODY, "startTimeInMinutes", "2880");
    char *d = mutate(c, "endTimeInMinutes", "-1440");
    assert_int_equal(model_break_parse(d, strlen(d), 42, &r, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], "endTimeInMinutes: must not be before startTimeInMinutes");
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_break_multiple_errors(void **state)
{
    (void)state;
    const char body[] =
        "{\"id\":42,\"colour\":1,\"person\":{\"id\":0,\"x\":1},\"breakDefinition\":{},"
        "\"date\":\"2023-02-29\",\"clockedDurationInMinutes\":-1,"
        "\"startTimeInMinutes\":720,\"endTimeInMinutes\":3000,\"isBreakTaken\":\"no\"}";
    model_break_t b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(body, strlen(body), 41, &b, &errs), BH_EINVAL);
    static const char *const want[] = {
        "id: must equal the id in the path (41)",
        "person.id: must be between 1 and 9007199254740992",
        "unknown property 'person.x'",
        "breakDefinition.id: is required",
        "date: '2023-02-29' is not a calendar date",
        "clockedDurationInMinutes: must be between 0 and 100000",
        "endTimeInMinutes: must be between -1440 and 2880",
        "isBreakTaken: must be a boolean",
        "unknown property 'colour'",
    };
    assert_int_equal(errs.n, N_OF(want));
    for (size_t i = 0; i < N_OF(want); i++)
        assert_string_equal(errs.reasons[i], want[i]);

    /* An empty object: every required field is reported (start and end, omitted
     * as a pair, are taken from the definition). */
    assert_int_equal(model_break_parse("{}", 2, 0, &b, &errs), BH_EINVAL);
    static const char *const want2[] = {
        "id: is required",
        "person: is required",
        "breakDefinition: is required",
        "date: is required",
        "clockedDurationInMinutes: is required",
        "isBreakTaken: is required",
    };
    assert_int_equal(errs.n, N_OF(want2));
    for (size_t i = 0; i < N_OF(want2); i++)
        assert_string_equal(errs.reasons[i], want2[i]);
}

static void test_reasons_capped(void **state)
{
    (void)state;
    buf_t body;
    buf_init(&body, 1 << 16);
    assert_int_equal(buf_append_str(&body, "{"), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_printf(&body, "%s\"u%d\":%d", i ? "," : "", i, i), 0);
    assert_int_equal(buf_append_str(&body, "}"), 0);
    model_break_t b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(body.p, body.len, 0, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, MODEL_REASONS_MAX);
    assert_string_equal(errs.reasons[0], "id: is required");
    /* 6 missing fields, then unknown properties in document order. */
    assert_string_equal(errs.reasons[6], "unknown property 'u0'");
    assert_string_equal(errs.reasons[MODEL_REASONS_MAX - 1], "unknown property 'u25'");
    buf_deinit(&body);
}

static void test_body_level_errors(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        { NULL, "{\"id\":42,\"id\":42}", 42,
          "body is not valid JSON: duplicate object key near '\"id\"' at line 1 column 13" },
        { NULL, "{\"id\":1,}", 0,
          "body is not valid JSON: string or '}' expected near '}' at line 1 column 9" },
        { NULL, "{\"id\":", 0,
          "body is not valid JSON: unexpected token near end of file at line 1 column 6" },
        { NULL, "", 0,
          "body is not valid JSON: unexpected token near end of file at line 1 column 0" },
        { NULL, "{\"id\":1} x", 0,
          "body is not valid JSON: end of file expected near 'x' at line 1 column 10" },
        { NULL, "{\n\"id\":\n1.5e999}", 0,
          "body is not valid JSON: real number overflow near '1.5e999' at line 3 column 7" },
        { NULL, "[]", 0, "body must be a JSON object" },
        { NULL, "5", 0, "body must be a JSON object" },
        { NULL, "\"x\"", 0, "body must be a JSON object" },
        { NULL, "null", 0, "body must be a JSON object" },
    };
    run_bad(parse_break, BREAK_BODY, cases, N_OF(cases));
    run_bad(parse_person, PERSON_BODY, cases, N_OF(cases));
    run_bad(parse_definition, DEFINITION_BODY, cases, N_OF(cases));
}

static void test_duplicate_keys_refused(void **state)
{
    (void)state;
    /* Nested duplicates as well as top-level ones, in every parser. */
    const char b[] =
        "{\"id\":42,\"person\":{\"id\":7,\"id\":8},\"breakDefinition\":{\"id\":3},"
        "\"date\":\"2024-02-29\",\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":720,"
        "\"endTimeInMinutes\":780,\"isBreakTaken\":true}";
    model_break_t br;
    model_errors_t errs;
    assert_int_equal(model_break_parse(b, strlen(b), 42, &br, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.reasons[0], "body is not valid JSON: duplicate object key"));
    const char p[] = "{\"id\":7,\"externalReferences\":{\"HRMID\":\"a\",\"HRMID\":\"b\"}}";
    model_person_t pe;
    assert_int_equal(model_person_parse(p, strlen(p), 7, &pe, &errs), BH_EINVAL);
    assert_non_null(strstr(errs.reasons[0], "duplicate object key"));
    const char l[] = "{\"op\":\"delete\",\"op\":\"upsert\",\"id\":1}";
    model_batch_line_t line;
    assert_int_equal(model_batch_line_parse(l, strlen(l), &line, &errs), BH_EINVAL);
    assert_string_equal(errs.reasons[0],
                        "line is not valid JSON: duplicate object key near '\"op\"' at line 1 "
                        "column 19");
}

static void test_nesting_limit(void **state)
{
    (void)state;
    /* body(1) > person(2) > externalReferences(3) > five arrays = 8 levels. */
    char *ok = mutate(BREAK_BODY, "person.externalReferences", "{\"a\":[[[[[1]]]]]}");
    char *deep = mutate(BREAK_BODY, "person.externalReferences", "{\"a\":[[[[[[1]]]]]]}");
    model_break_t b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(ok, strlen(ok), 42, &b, &errs), 0);
    assert_int_equal(model_break_parse(deep, strlen(deep), 42, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], "body nests deeper than 8 levels");

    /* A very deep document is refused without trouble (jansson stops at its own
     * limit, we at ours). */
    buf_t big;
    buf_init(&big, 1 << 16);
    assert_int_equal(buf_append_str(&big, "{\"a\":"), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(buf_append_char(&big, '['), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(buf_append_char(&big, ']'), 0);
    assert_int_equal(buf_append_char(&big, '}'), 0);
    assert_int_equal(model_break_parse(big.p, big.len, 0, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_utf8(errs.reasons[0]);
    buf_deinit(&big);
    free(ok);
    free(deep);

    /* model_break_from_json applies the same limit to a tree built elsewhere. */
    json_error_t e;
    json_t *j = json_loads("{\"a\":[[[[[[[[[1]]]]]]]]]}", 0, &e);
    assert_non_null(j);
    assert_int_equal(model_break_from_json(j, 0, &b, &errs), BH_EINVAL);
    assert_string_equal(errs.reasons[0], "body nests deeper than 8 levels");
    json_decref(j);
}

static void test_reasons_are_valid_utf8(void **state)
{
    (void)state;
    model_break_t b;
    model_errors_t errs;
    /* Invalid UTF-8 in the body: jansson refuses it, and our reason quoting its
     * message must still be valid UTF-8. */
    const char bad[] = "{\"id\":\xff\xfe}";
    assert_int_equal(model_break_parse(bad, strlen(bad), 0, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.reasons[0], "body is not valid JSON: "));
    assert_utf8(errs.reasons[0]);
    const char bad2[] = "{\"a\":\"\xc3\"}";
    assert_int_equal(model_break_parse(bad2, strlen(bad2), 0, &b, &errs), BH_EINVAL);
    assert_utf8(errs.reasons[0]);

}

/* The reason helper keeps reasons valid UTF-8 even when a message does not fit
 * and is cut inside a character, or carries stray bytes; and it stops at
 * MODEL_REASONS_MAX. */
static void test_reason_helper(void **state)
{
    (void)state;
    model_errors_t errs;
    errs.n = 0;
    model__reason(&errs, "a%sb", "\xff\xc3");
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], "a??b");
    char big[200];
    memset(big, 'x', 150);
    for (int i = 0; i < 5; i++)
        memcpy(big + 150 + 2 * i, "\xc3\xa9", 2);
    big[160] = '\0';
    model__reason(&errs, "%s", big);
    assert_int_equal(errs.n, 2);
    assert_int_equal(strlen(errs.reasons[1]), 159);
    assert_memory_equal(errs.reasons[1] + 150, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9?", 10);
    assert_utf8(errs.reasons[1]);
    while (errs.n < MODEL_REASONS_MAX)
        model__reason(&errs, "r%zu", errs.n);
    model__reason(&errs, "one too many");
    assert_int_equal(errs.n, MODEL_REASONS_MAX);
    assert_string_equal(errs.reasons[MODEL_REASONS_MAX - 1], "r31");
}

static void test_long_key_quoted(void **state)
{
    (void)state;
    buf_t body;
    buf_init(&body, 4096);
    assert_int_equal(buf_append_str(&body, "{\"id\":7,\"x"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_append_str(&body, "\xc3\xa9"), 0); /* é */
    assert_int_equal(buf_append_str(&body, "\":1}"), 0);
    model_person_t p;
    model_errors_t errs;
    assert_int_equal(model_person_parse(body.p, body.len, 7, &p, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    /* "x" and 19 two-byte characters make 39 bytes: the 20th would pass 40. */
    char want[160] = "unknown property 'x";
    for (int i = 0; i < 19; i++)
        memcpy(want + strlen(want), "\xc3\xa9", 3);
    memcpy(want + strlen(want), "...'", 5);
    assert_string_equal(errs.reasons[0], want);
    assert_utf8(errs.reasons[0]);
    buf_deinit(&body);
}

static void test_break_from_json(void **state)
{
    (void)state;
    json_error_t e;
    json_t *j = json_loads(BREAK_BODY, 0, &e);
    assert_non_null(j);
    model_break_t a, b;
    model_errors_t errs;
    assert_int_equal(model_break_from_json(j, 0, &a, &errs), 0);
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 0, &b, &errs), 0);
    assert_true(model_break_same(&a, &b));
    assert_int_equal(model_break_from_json(j, 41, &a, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], "id: must equal the id in the path (41)");
    json_decref(j);
    json_t *arr = json_array();
    assert_int_equal(model_break_from_json(arr, 0, &a, &errs), BH_EINVAL);
    assert_string_equal(errs.reasons[0], "body must be a JSON object");
    json_decref(arr);
}

/* ---- computed duration, comparison ---------------------------------------- */

static void test_break_compute(void **state)
{
    (void)state;
    model_definition_t d;
    memset(&d, 0, sizeof(d));
    d.minimum = 20;
    d.maximum = 45;
    d.if_not_clocked = 30;
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.taken = true;
    const struct { int32_t clocked, want; } taken[] = {
        { 0, 20 }, { 10, 20 }, { 19, 20 }, { 20, 20 }, { 21, 21 },
        { 33, 33 }, { 44, 44 }, { 45, 45 }, { 46, 45 }, { 600, 45 },
    };
    for (size_t i = 0; i < N_OF(taken); i++) {
        b.clocked = taken[i].clocked;
        assert_int_equal(model_break_compute(&b, &d), taken[i].want);
    }
    /* Not taken: the definition's value, whatever was clocked. */
    b.taken = false;
    b.clocked = 40;
    assert_int_equal(model_break_compute(&b, &d), 30);
    b.clocked = 0;
    assert_int_equal(model_break_compute(&b, &d), 30);
    d.if_not_clocked = 0;
    assert_int_equal(model_break_compute(&b, &d), 0);
}

static void test_break_same(void **state)
{
    (void)state;
    model_break_t a, b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &a, &errs), 0);
    b = a;
    b.version = 12345; /* not writer-controlled */
    assert_true(model_break_same(&a, &b));
    for (int f = 0; f < 10; f++) {
        b = a;
        switch (f) {
        case 0: b.id++; break;
        case 1: b.person_id++; break;
        case 2: b.definition_id++; break;
        case 3: b.date++; break;
        case 4: b.calculated++; break;
        case 5: b.calculated_given = !b.calculated_given; break;
        case 6: b.clocked++; break;
        case 7: b.start--; break;
        case 8: b.end++; break;
        case 9: b.taken = !b.taken; break;
        }
        if (model_break_same(&a, &b))
            fail_msg("field %d ignored by model_break_same", f);
    }
}

/* ---- break definitions ----------------------------------------------------- */

static void test_definition_parse_fields(void **state)
{
    (void)state;
    model_definition_t d;
    model_errors_t errs;
    assert_int_equal(
        model_definition_parse(DEFINITION_BODY, strlen(DEFINITION_BODY), 3, &d, &errs), 0);
    assert_int_equal(d.id, 3);
    assert_string_equal(d.name.def, "Lunch");
    assert_int_equal(d.name.n_tr, 2);
    /* Sorted by language, whatever the body's order. */
    assert_string_equal(d.name.tr[0].lang, "fr-BE");
    assert_string_equal(d.name.tr[0].text, "Pause de midi");
    assert_string_equal(d.name.tr[1].lang, "nl");
    assert_string_equal(d.name.tr[1].text, "Middagpauze");
    assert_string_equal(d.friendly_name.def, "Lunch break");
    assert_int_equal(d.friendly_name.n_tr, 0);
    assert_int_equal(d.paid, 0);
    assert_int_equal(d.minimum, 20);
    assert_int_equal(d.maximum, 45);
    assert_int_equal(d.if_not_clocked, 30);
    assert_true(d.uninterrupted);
}

static void test_definition_round_trip(void **state)
{
    (void)state;
    model_definition_t a, b;
    model_errors_t errs;
    char *body = mutate(DEFINITION_BODY, "friendlyName.translations",
                        "{\"zh-Hant\":\"\xe5\x8d\x88\xe9\xa4\x90\",\"de\":\"Mittag \\\"pause\\\"\\n\","
                        "\"en-GB\":\"a\\\\b/c\\u0001\"}");
    assert_int_equal(model_definition_parse(body, strlen(body), 3, &a, &errs), 0);
    assert_int_equal(a.friendly_name.n_tr, 3);
    assert_string_equal(a.friendly_name.tr[0].lang, "de");
    assert_string_equal(a.friendly_name.tr[1].lang, "en-GB");
    assert_string_equal(a.friendly_name.tr[2].lang, "zh-Hant");
    a.version = 5;
    buf_t out;
    buf_init(&out, 1 << 16);
    assert_int_equal(model_definition_json(&out, &a), 0);
    assert_int_equal(model_definition_parse(out.p, out.len, 3, &b, &errs), 0);
    assert_true(model_definition_same(&a, &b));
    free(body);
    buf_deinit(&out);
}

static void test_definition_same(void **state)
{
    (void)state;
    model_definition_t a, b;
    model_errors_t errs;
    assert_int_equal(
        model_definition_parse(DEFINITION_BODY, strlen(DEFINITION_BODY), 3, &a, &errs), 0);
    for (int f = 0; f < 12; f++) {
        b = a;
        switch (f) {
        case 0: b.version = 77; break; /* the one field that does not count */
        case 1: b.id++; break;
        case 2: b.name.def[0] = 'l'; break;
        case 3: b.name.tr[1].text[0] = 'm'; break;
        case 4: b.name.tr[0].lang[0] = 'F'; break;
        case 5: b.name.n_tr = 1; break;
        case 6: b.friendly_name.def[0] = 'X'; break;
        case 7: b.paid++; break;
        case 8: b.minimum++; break;
        case 9: b.maximum++; break;
        case 10: b.if_not_clocked++; break;
        case 11: b.uninterrupted = !b.uninterrupted; break;
        }
        if (model_definition_same(&a, &b) != (f == 0))
            fail_msg("model_definition_same wrong for change %d", f);
    }
    /* Bytes after the NUL do not count. */
    b = a;
    memset(b.name.def + 6, 'z', 10);
    assert_true(model_definition_same(&a, &b));
}

static void test_definition_each_error(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        { "id", NULL, 0, "id: is required" },
        { "id", "3", 4, "id: must equal the id in the path (4)" },
        { "name", NULL, 3, "name: is required" },
        { "name", "\"Lunch\"", 3, "name: must be an object" },
        { "name.default", NULL, 3, "name.default: is required" },
        { "name.default", "5", 3, "name.default: must be a string" },
        { "name.default", "\"\"", 3, "name.default: must be between 1 and 255 bytes long" },
        { "name.default",
          "\"0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345\"",
          3, "name.default: must be between 1 and 255 bytes long" },
        { "name.translations", "[]", 3, "name.translations: must be an object" },
        { "name.translations", "\"nl\"", 3, "name.translations: must be an object" },
        { "name.translations", "{\"nl_BE\":\"x\"}", 3,
          "name.translations: 'nl_BE' is not a language tag" },
        { "name.translations", "{\"\":\"x\"}", 3, "name.translations: '' is not a language tag" },
        { "name.translations", "{\"abcdefghijklmnop\":\"x\"}", 3,
          "name.translations: 'abcdefghijklmnop' is not a language tag" },
        { "name.translations", "{\"nl\":5}", 3, "name.translations.nl: must be a string" },
        { "name.translations", "{\"nl\":null}", 3, "name.translations.nl: must be a string" },
        { "name.translations", "{\"nl\":\"\"}", 3,
          "name.translations.nl: must be between 1 and 255 bytes long" },
        { "name.translations",
          "{\"a0\":\"x\",\"a1\":\"x\",\"a2\":\"x\",\"a3\":\"x\",\"a4\":\"x\",\"a5\":\"x\",\"a6\":\"x\","
          "\"a7\":\"x\",\"a8\":\"x\",\"a9\":\"x\",\"b0\":\"x\",\"b1\":\"x\",\"b2\":\"x\",\"b3\":\"x\","
          "\"b4\":\"x\",\"b5\":\"x\",\"b6\":\"x\",\"b7\":\"x\",\"b8\":\"x\",\"b9\":\"x\",\"c0\":\"x\","
          "\"c1\":\"x\",\"c2\":\"x\",\"c3\":\"x\",\"c4\":\"x\",\"c5\":\"x\",\"c6\":\"x\",\"c7\":\"x\","
          "\"c8\":\"x\",\"c9\":\"x\",\"d0\":\"x\",\"d1\":\"x\",\"d2\":\"x\"}",
          3, "name.translations: must have at most 32 entries" },
        { "name.colour", "\"x\"", 3, "unknown property 'name.colour'" },
        { "friendlyName", NULL, 3, "friendlyName: is required" },
        { "friendlyName", "null", 3, "friendlyName: must be an object" },
        { "friendlyName.default", NULL, 3, "friendlyName.default: is required" },
        { "friendlyName.translations", "{\"x y\":\"z\"}", 3,
          "friendlyName.translations: 'x y' is not a language tag" },
        { "paidDurationInMinutes", NULL, 3, "paidDurationInMinutes: is required" },
        { "paidDurationInMinutes", "-1", 3,
          "paidDurationInMinutes: must be between 0 and 100000" },
        { "paidDurationInMinutes", "0.5", 3, "paidDurationInMinutes: must be an integer" },
        { "minimumDurationInMinutes", NULL, 3, "minimumDurationInMinutes: is required" },
        { "minimumDurationInMinutes", "46", 3,
          "maximumDurationInMinutes: must not be less than minimumDurationInMinutes" },
        { "minimumDurationInMinutes", "-1", 3,
          "minimumDurationInMinutes: must be between 0 and 100000" },
        { "maximumDurationInMinutes", NULL, 3, "maximumDurationInMinutes: is required" },
        { "maximumDurationInMinutes", "19", 3,
          "maximumDurationInMinutes: must not be less than minimumDurationInMinutes" },
        { "maximumDurationInMinutes", "100001", 3,
          "maximumDurationInMinutes: must be between 0 and 100000" },
        { "ifNotClockedDurationInMinutes", NULL, 3,
          "ifNotClockedDurationInMinutes: is required" },
        { "ifNotClockedDurationInMinutes", "\"30\"", 3,
          "ifNotClockedDurationInMinutes: must be an integer" },
        { "ifNotClockedDurationInMinutes", "100001", 3,
          "ifNotClockedDurationInMinutes: must be between 0 and 100000" },
        { "hasToBeTakenUninterrupted", NULL, 3, "hasToBeTakenUninterrupted: is required" },
        { "hasToBeTakenUninterrupted", "0", 3, "hasToBeTakenUninterrupted: must be a boolean" },
        { "colour", "1", 3, "unknown property 'colour'" },
    };
    run_bad(parse_definition, DEFINITION_BODY, cases, N_OF(cases));
}

static void test_definition_boundaries_accepted(void **state)
{
    (void)state;
    static const good_case_t cases[] = {
        { "name.default", "\"x\"", 3 },
        { "name.default",
          "\"0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "0123456789012345678901234567890123456789012345678901234567890123456789"
          "012345678901234567890123456789012345678901234\"",
          3 },
        { "name.translations", "{}", 3 },
        { "name.translations", "null", 3 },
        { "name.translations", "{\"abcdefghijklmno\":\"x\",\"A-1\":\"y\"}", 3 },
        { "name.translations",
          "{\"a0\":\"x\",\"a1\":\"x\",\"a2\":\"x\",\"a3\":\"x\",\"a4\":\"x\",\"a5\":\"x\",\"a6\":\"x\","
          "\"a7\":\"x\",\"a8\":\"x\",\"a9\":\"x\",\"b0\":\"x\",\"b1\":\"x\",\"b2\":\"x\",\"b3\":\"x\","
          "\"b4\":\"x\",\"b5\":\"x\",\"b6\":\"x\",\"b7\":\"x\",\"b8\":\"x\",\"b9\":\"x\",\"c0\":\"x\","
          "\"c1\":\"x\",\"c2\":\"x\",\"c3\":\"x\",\"c4\":\"x\",\"c5\":\"x\",\"c6\":\"x\",\"c7\":\"x\","
          "\"c8\":\"x\",\"c9\":\"x\",\"d0\":\"x\",\"d1\":\"x\"}",
          3 },
        { "minimumDurationInMinutes", "45", 3 }, /* == maximum */
        { "maximumDurationInMinutes", "100000", 3 },
        { "paidDurationInMinutes", "100000", 3 },
        { "ifNotClockedDurationInMinutes", "0", 3 },
        { "changeVersion", "\"00000000000000000001\"", 3 },
    };
    run_good(parse_definition, DEFINITION_BODY, cases, N_OF(cases));
}

static void test_definition_multiple_errors(void **state)
{
    (void)state;
    const char body[] =
        "{\"id\":3,\"name\":{\"translations\":{\"n l\":\"x\",\"fr\":\"\"}},\"friendlyName\":{\"default\":1},"
        "\"paidDurationInMinutes\":-1,\"minimumDurationInMinutes\":50,"
        "\"maximumDurationInMinutes\":40,\"hasToBeTakenUninterrupted\":true,\"x\":1}";
    model_definition_t d;
    model_errors_t errs;
    assert_int_equal(model_definition_parse(body, strlen(body), 3, &d, &errs), BH_EINVAL);
    static const char *const want[] = {
        "name.default: is required",
        "name.translations: 'n l' is not a language tag",
        "name.translations.fr: must be between 1 and 255 bytes long",
        "friendlyName.default: must be a string",
        "paidDurationInMinutes: must be between 0 and 100000",
        "maximumDurationInMinutes: must not be less than minimumDurationInMinutes",
        "ifNotClockedDurationInMinutes: is required",
        "unknown property 'x'",
    };
    assert_int_equal(errs.n, N_OF(want));
    for (size_t i = 0; i < N_OF(want); i++)
        assert_string_equal(errs.reasons[i], want[i]);
}

/* ---- people ------------------------------------------------------------- */

static void test_person_parse_round_trip(void **state)
{
    (void)state;
    model_person_t a, b;
    model_errors_t errs;
    assert_int_equal(model_person_parse(PERSON_BODY, strlen(PERSON_BODY), 7, &a, &errs), 0);
    assert_int_equal(a.id, 7);
    assert_int_equal(a.n_refs, 2);
    /* Sorted by name: '@' sorts before letters. */
    assert_string_equal(a.refs[0].name, "@employee-number");
    assert_string_equal(a.refs[0].value, "E-4821");
    assert_string_equal(a.refs[1].name, "HRMID");
    assert_string_equal(a.refs[1].value, "h-1");
    buf_t out;
    buf_init(&out, 4096);
    assert_int_equal(model_person_json(&out, &a), 0);
    assert_int_equal(model_person_parse(out.p, out.len, 7, &b, &errs), 0);
    assert_true(model_person_same(&a, &b));

    /* No references at all: absent, null, empty object. */
    const char *const none[] = { "{\"id\":7}", "{\"id\":7,\"externalReferences\":null}",
                                 "{\"id\":7,\"externalReferences\":{}}",
                                 "{\"id\":7,\"externalReferences\":{\"@badge-number\":null}}" };
    for (size_t i = 0; i < N_OF(none); i++) {
        assert_int_equal(model_person_parse(none[i], strlen(none[i]), 7, &a, &errs), 0);
        assert_int_equal(a.n_refs, 0);
    }
    buf_deinit(&out);
}

static void test_person_same(void **state)
{
    (void)state;
    model_person_t a, b;
    model_errors_t errs;
    assert_int_equal(model_person_parse(PERSON_BODY, strlen(PERSON_BODY), 7, &a, &errs), 0);
    b = a;
    b.version = 3;
    assert_true(model_person_same(&a, &b));
    b = a;
    b.id = 8;
    assert_false(model_person_same(&a, &b));
    b = a;
    b.n_refs = 1;
    assert_false(model_person_same(&a, &b));
    b = a;
    b.refs[1].value[0] = 'H';
    assert_false(model_person_same(&a, &b));
    b = a;
    b.refs[1].name[0] = 'h';
    assert_false(model_person_same(&a, &b));
}

static void test_person_each_error(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        { "id", NULL, 0, "id: is required" },
        { "id", NULL, 7, "id: must equal the id in the path (7)" },
        { "id", "8", 7, "id: must equal the id in the path (7)" },
        { "id", "7.0", 7, "id: must be an integer" },
        { "externalReferences", "[]", 7, "externalReferences: must be an object" },
        { "externalReferences", "\"E-1\"", 7, "externalReferences: must be an object" },
        { "externalReferences", "{\"@foo\":\"x\"}", 7,
          "externalReferences: '@foo' is not a predefined reference (@employee-number, "
          "@badge-number)" },
        { "externalReferences", "{\"@\":\"x\"}", 7,
          "externalReferences: '@' is not a predefined reference (@employee-number, "
          "@badge-number)" },
        { "externalReferences", "{\"@Employee-Number\":\"x\"}", 7,
          "externalReferences: '@Employee-Number' is not a predefined reference "
          "(@employee-number, @badge-number)" },
        { "externalReferences", "{\"@employee-numbers\":\"x\"}", 7,
          "externalReferences: '@employee-numbers' is not a predefined reference "
          "(@employee-number, @badge-number)" },
        { "externalReferences", "{\"@badge\":\"x\"}", 7,
          "externalReferences: '@badge' is not a predefined reference (@employee-number, "
          "@badge-number)" },
        { "externalReferences", "{\"a b\":\"x\"}", 7,
          "externalReferences: 'a b' is not a valid reference name" },
        { "externalReferences", "{\"\":\"x\"}", 7,
          "externalReferences: '' is not a valid reference name" },
        { "externalReferences", "{\"a@b\":\"x\"}", 7,
          "externalReferences: 'a@b' is not a valid reference name" },
        { "externalReferences",
          "{\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij12345\":\"x\"}", 7,
          "externalReferences: 'abcdefghijabcdefghijabcdefghijabcdefghij...' is not a valid "
          "reference name" },
        { "externalReferences", "{\"HRMID\":5}", 7, "externalReferences.HRMID: must be a string" },
        { "externalReferences", "{\"HRMID\":\"\"}", 7,
          "externalReferences.HRMID: must be between 1 and 128 bytes long" },
        { "externalReferences",
          "{\"HRMID\":\"01234567890123456789012345678901234567890123456789012345678901234567890"
          "1234567890123456789012345678901234567890123456789012345678\"}",
          7, "externalReferences.HRMID: must be between 1 and 128 bytes long" },
        { "externalReferences",
          "{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\","
          "\"i\":\"1\",\"j\":\"1\",\"k\":\"1\",\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":\"1\",\"p\":\"1\","
          "\"q\":\"1\"}",
          7, "externalReferences: must have at most 16 entries" },
        { "colour", "1", 7, "unknown property 'colour'" },
    };
    run_bad(parse_person, PERSON_BODY, cases, N_OF(cases));
}

static void test_person_boundaries_accepted(void **state)
{
    (void)state;
    static const good_case_t cases[] = {
        { "externalReferences",
          "{\"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234\":\"x\"}", 7 },
        { "externalReferences", "{\"A-z_0.9\":\"x\",\"@badge-number\":\"B\"}", 7 },
        { "externalReferences",
          "{\"HRMID\":\"01234567890123456789012345678901234567890123456789012345678901234567890"
          "123456789012345678901234567890123456789012345678901234567\"}",
          7 },
        { "externalReferences",
          "{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\","
          "\"i\":\"1\",\"j\":\"1\",\"k\":\"1\",\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":\"1\",\"p\":\"1\"}",
          7 },
        { "changeVersion", "\"00000000000000000009\"", 7 },
    };
    run_good(parse_person, PERSON_BODY, cases, N_OF(cases));
}

/* ---- $batch lines ---------------------------------------------------------- */

static void test_batch_line_ok(void **state)
{
    (void)state;
    model_batch_line_t l;
    model_errors_t errs;
    model_break_t want;
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &want, &errs), 0);

    buf_t line;
    buf_init(&line, 4096);
    assert_int_equal(buf_printf(&line, "{\"op\":\"upsert\",\"data\":%s}", BREAK_BODY), 0);
    assert_int_equal(model_batch_line_parse(line.p, line.len, &l, &errs), 0);
    assert_false(l.del);
    assert_true(model_break_same(&l.rec, &want));

    /* op after data, GET-shaped data. */
    buf_reset(&line);
    want.version = 1;
    model_embed_t embed = { NULL, 0, true };
    assert_int_equal(buf_append_str(&line, "{\"data\":"), 0);
    assert_int_equal(model_break_json(&line, &want, &embed), 0);
    assert_int_equal(buf_append_str(&line, ",\"op\":\"upsert\"}"), 0);
    assert_int_equal(model_batch_line_parse(line.p, line.len, &l, &errs), 0);
    assert_true(model_break_same(&l.rec, &want));

    const char del[] = "{\"op\":\"delete\",\"id\":9007199254740992}";
    assert_int_equal(model_batch_line_parse(del, strlen(del), &l, &errs), 0);
    assert_true(l.del);
    assert_int_equal(l.rec.id, 9007199254740992LL);
    buf_deinit(&line);
}

static void test_batch_line_errors(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        { NULL, "{\"op\":\"delete\"}", 0, "id: is required" },
        { NULL, "{\"op\":\"delete\",\"id\":0}", 0, "id: must be between 1 and 9007199254740992" },
        { NULL, "{\"op\":\"delete\",\"id\":\"1\"}", 0, "id: must be an integer" },
        { NULL, "{\"op\":\"delete\",\"id\":1,\"data\":{}}", 0, "unknown property 'data'" },
        { NULL, "{\"op\":\"remove\",\"id\":1}", 0, "op: 'remove' is not 'upsert' or 'delete'" },
        { NULL, "{\"op\":\"Upsert\",\"data\":{}}", 0, "op: 'Upsert' is not 'upsert' or 'delete'" },
        { NULL, "{\"id\":1}", 0, "op: is required" },
        { NULL, "{\"op\":5,\"id\":1}", 0, "op: must be a string" },
        { NULL, "{\"op\":\"upsert\"}", 0, "data: is required" },
        { NULL, "{\"op\":\"upsert\",\"data\":[]}", 0, "data: must be an object" },
        { NULL, "{\"op\":\"upsert\",\"data\":\"{}\"}", 0, "data: must be an object" },
        { NULL,
          "{\"op\":\"upsert\",\"data\":{\"person\":{\"id\":7},\"breakDefinition\":{\"id\":3},"
          "\"date\":\"2024-02-29\",\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":720,"
          "\"endTimeInMinutes\":780,\"isBreakTaken\":true}}",
          0, "data.id: is required" },
        { NULL,
          "{\"op\":\"upsert\",\"data\":{\"id\":1,\"person\":{\"id\":7,\"x\":1},\"breakDefinition\":"
          "{\"id\":3},\"date\":\"2024-02-29\",\"clockedDurationInMinutes\":25,"
          "\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,\"isBreakTaken\":true}}",
          0, "unknown property 'data.person.x'" },
        { NULL,
          "{\"op\":\"upsert\",\"id\":1,\"data\":{\"id\":1,\"person\":{\"id\":7},\"breakDefinition\":"
          "{\"id\":3},\"date\":\"2024-02-29\",\"clockedDurationInMinutes\":25,"
          "\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,\"isBreakTaken\":true}}",
          0, "unknown property 'id'" },
        { NULL, "{\"op\":\"delete\",\"id\":1,\"op2\":1}", 0, "unknown property 'op2'" },
        { NULL, "[{\"op\":\"delete\",\"id\":1}]", 0, "line must be a JSON object" },
        { NULL, "{\"op\":\"delete\",\"id\":1", 0,
          "line is not valid JSON: '}' expected near end of file at line 1 column 21" },
    };
    run_bad(parse_line, "{}", cases, N_OF(cases));

    /* Several problems at once. */
    const char l[] = "{\"op\":\"x\",\"foo\":1}";
    model_batch_line_t line;
    model_errors_t errs;
    assert_int_equal(model_batch_line_parse(l, strlen(l), &line, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.reasons[0], "op: 'x' is not 'upsert' or 'delete'");
    assert_string_equal(errs.reasons[1], "unknown property 'foo'");
    const char l2[] = "{\"op\":\"upsert\",\"data\":{\"id\":1,\"date\":\"2024-02-30\",\"x\":1}}";
    assert_int_equal(model_batch_line_parse(l2, strlen(l2), &line, &errs), BH_EINVAL);
    static const char *const want[] = {
        "data.person: is required",
        "data.breakDefinition: is required",
        "data.date: '2024-02-30' is not a calendar date",
        "data.clockedDurationInMinutes: is required",
        "data.isBreakTaken: is required",
        "unknown property 'data.x'",
    };
    assert_int_equal(errs.n, N_OF(want));
    for (size_t i = 0; i < N_OF(want); i++)
        assert_string_equal(errs.reasons[i], want[i]);
}

/* ---- canonical output ---------------------------------------------------- */

static model_break_t fixed_break(void)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = 42;
    b.version = 0x1f;
    b.person_id = 7;
    b.definition_id = 3;
    assert_int_equal(date_parse("2024-02-29", 10, &b.date), 0);
    b.calculated = 30;
    b.calculated_given = false;
    b.clocked = 25;
    b.start = -60;
    b.end = 780;
    b.taken = true;
    return b;
}

/* ---- the definition's window (issue #14 point 7) ----------------------------- */

/* Parses s as a break (path id 42) and expects exactly the one reason want. */
static void break_one_reason(char *s, const char *want)
{
    model_break_t b;
    model_errors_t errs;
    assert_int_equal(model_break_parse(s, strlen(s), 42, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], want);
    free(s);
}

static void test_break_window_pair(void **state)
{
    (void)state;
    model_break_t b;
    model_errors_t errs;
    /* Both given: as always. */
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &b, &errs), 0);
    assert_false(b.window_taken);
    assert_int_equal(b.start, 720);
    assert_int_equal(b.end, 780);

    /* Both omitted, or both null: taken from the definition. */
    char *s1 = mutate(BREAK_BODY, "startTimeInMinutes", NULL);
    char *s2 = mutate(s1, "endTimeInMinutes", NULL);
    assert_int_equal(model_break_parse(s2, strlen(s2), 42, &b, &errs), 0);
    assert_true(b.window_taken);
    assert_int_equal(b.start, 0);
    assert_int_equal(b.end, 0);
    free(s1);
    free(s2);
    s1 = mutate(BREAK_BODY, "startTimeInMinutes", "null");
    s2 = mutate(s1, "endTimeInMinutes", "null");
    assert_int_equal(model_break_parse(s2, strlen(s2), 42, &b, &errs), 0);
    assert_true(b.window_taken);
    free(s1);
    free(s2);

    /* Only one of the two: the other is named. */
    break_one_reason(mutate(BREAK_BODY, "endTimeInMinutes", NULL),
                     "endTimeInMinutes: is required when startTimeInMinutes is given");
    break_one_reason(mutate(BREAK_BODY, "startTimeInMinutes", "null"),
                     "startTimeInMinutes: is required when endTimeInMinutes is given");
    /* A bad value of the one given is reported too. */
    s1 = mutate(BREAK_BODY, "endTimeInMinutes", NULL);
    s2 = mutate(s1, "startTimeInMinutes", "2881");
    assert_int_equal(model_break_parse(s2, strlen(s2), 42, &b, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.reasons[0], "startTimeInMinutes: must be between -1440 and 2880");
    assert_string_equal(errs.reasons[1],
                        "endTimeInMinutes: is required when startTimeInMinutes is given");
    free(s1);
    free(s2);

    /* The same parse for a $batch line, under data. */
    const char line[] = "{\"op\":\"upsert\",\"data\":{\"id\":1,\"person\":{\"id\":7},"
                        "\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\","
                        "\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":5,"
                        "\"isBreakTaken\":true}}";
    model_batch_line_t l;
    assert_int_equal(model_batch_line_parse(line, strlen(line), &l, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0],
                        "data.endTimeInMinutes: is required when startTimeInMinutes is given");
    const char line2[] = "{\"op\":\"upsert\",\"data\":{\"id\":1,\"person\":{\"id\":7},"
                         "\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\","
                         "\"clockedDurationInMinutes\":25,\"isBreakTaken\":true}}";
    assert_int_equal(model_batch_line_parse(line2, strlen(line2), &l, &errs), 0);
    assert_true(l.rec.window_taken);

    /* Taken or given is part of the record model_break_same compares. */
    model_break_t a;
    assert_int_equal(model_break_parse(BREAK_BODY, strlen(BREAK_BODY), 42, &a, &errs), 0);
    b = a;
    b.window_taken = true;
    assert_false(model_break_same(&a, &b));
}

/* Parses s as a definition (path id 3) and expects exactly the one reason want. */
static void definition_one_reason(char *s, const char *want)
{
    model_definition_t d;
    model_errors_t errs;
    assert_int_equal(model_definition_parse(s, strlen(s), 3, &d, &errs), BH_EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.reasons[0], want);
    free(s);
}

static void test_definition_window(void **state)
{
    (void)state;
    model_definition_t d, e;
    model_errors_t errs;
    /* Not set: absent from the JSON. */
    assert_int_equal(
        model_definition_parse(DEFINITION_BODY, strlen(DEFINITION_BODY), 3, &d, &errs), 0);
    assert_false(d.has_earliest);
    assert_false(d.has_latest);
    buf_t b;
    buf_init(&b, 1 << 16);
    assert_int_equal(model_definition_json(&b, &d), 0);
    assert_null(strstr(buf_cstr(&b), "earliestStartTimeInMinutes"));
    assert_null(strstr(buf_cstr(&b), "latestEndTimeInMinutes"));

    /* Both set, at the range's ends, and equal bounds: accepted, written back. */
    static const char *const ok[][2] = {
        { "-1440", "2880" }, { "600", "600" }, { "0", "60" },
    };
    for (size_t i = 0; i < N_OF(ok); i++) {
        char *s1 = mutate(DEFINITION_BODY, "earliestStartTimeInMinutes", ok[i][0]);
        char *s2 = mutate(s1, "latestEndTimeInMinutes", ok[i][1]);
        assert_int_equal(model_definition_parse(s2, strlen(s2), 3, &d, &errs), 0);
        assert_true(d.has_earliest && d.has_latest);
        char want[96];
        snprintf(want, sizeof(want),
                 "\"earliestStartTimeInMinutes\":%s,\"latestEndTimeInMinutes\":%s}", ok[i][0],
                 ok[i][1]);
        buf_reset(&b);
        assert_int_equal(model_definition_json(&b, &d), 0);
        assert_non_null(strstr(buf_cstr(&b), want));
        /* The JSON parses back to the same record. */
        assert_int_equal(model_definition_parse(b.p, b.len, 3, &e, &errs), 0);
        assert_true(model_definition_same(&d, &e));
        free(s1);
        free(s2);
    }

    /* One bound alone, or null: optional each. */
    char *s1 = mutate(DEFINITION_BODY, "latestEndTimeInMinutes", "900");
    assert_int_equal(model_definition_parse(s1, strlen(s1), 3, &d, &errs), 0);
    assert_false(d.has_earliest);
    assert_true(d.has_latest);
    assert_int_equal(d.latest, 900);
    buf_reset(&b);
    assert_int_equal(model_definition_json(&b, &d), 0);
    assert_null(strstr(buf_cstr(&b), "earliestStartTimeInMinutes"));
    free(s1);
    s1 = mutate(DEFINITION_BODY, "earliestStartTimeInMinutes", "null");
    assert_int_equal(model_definition_parse(s1, strlen(s1), 3, &d, &errs), 0);
    assert_false(d.has_earliest);
    free(s1);
    buf_deinit(&b);

    /* Refusals, each naming its field. */
    definition_one_reason(mutate(DEFINITION_BODY, "earliestStartTimeInMinutes", "-1441"),
                          "earliestStartTimeInMinutes: must be between -1440 and 2880");
    definition_one_reason(mutate(DEFINITION_BODY, "latestEndTimeInMinutes", "2881"),
                          "latestEndTimeInMinutes: must be between -1440 and 2880");
    definition_one_reason(mutate(DEFINITION_BODY, "latestEndTimeInMinutes", "\"9\""),
                          "latestEndTimeInMinutes: must be an integer");
    s1 = mutate(DEFINITION_BODY, "earliestStartTimeInMinutes", "601");
    definition_one_reason(mutate(s1, "latestEndTimeInMinutes", "600"),
                          "latestEndTimeInMinutes: must not be before earliestStartTimeInMinutes");
    free(s1);

    /* The window is part of what model_definition_same compares. */
    s1 = mutate(DEFINITION_BODY, "earliestStartTimeInMinutes", "600");
    assert_int_equal(model_definition_parse(s1, strlen(s1), 3, &d, &errs), 0);
    assert_int_equal(
        model_definition_parse(DEFINITION_BODY, strlen(DEFINITION_BODY), 3, &e, &errs), 0);
    assert_false(model_definition_same(&d, &e));
    assert_false(model_definition_window_same(&d, &e));
    e.has_earliest = true;
    e.earliest = 600;
    assert_true(model_definition_same(&d, &e));
    free(s1);
}

static void test_break_json_canonical(void **state)
{
    (void)state;
    model_break_t b = fixed_break();
    buf_t out;
    buf_init(&out, 4096);
    assert_int_equal(model_break_json(&out, &b, NULL), 0);
    assert_string_equal(
        out.p,
        "{\"changeVersion\":\"0000000000000000001F\",\"id\":42,\"person\":{\"id\":7},"
        "\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\","
        "\"calculatedDurationInMinutes\":30,\"clockedDurationInMinutes\":25,"
        "\"startTimeInMinutes\":-60,\"endTimeInMinutes\":780,\"isBreakTaken\":true}");

    /* Asked for references the person has none of: an empty map. */
    buf_reset(&out);
    model_embed_t none = { NULL, 0, true };
    b.taken = false;
    assert_int_equal(model_break_json(&out, &b, &none), 0);
    assert_string_equal(
        out.p,
        "{\"changeVersion\":\"0000000000000000001F\",\"id\":42,\"person\":{\"id\":7,"
        "\"externalReferences\":{}},\"breakDefinition\":{\"id\":3},\"date\":\"2024-02-29\","
        "\"calculatedDurationInMinutes\":30,\"clockedDurationInMinutes\":25,"
        "\"startTimeInMinutes\":-60,\"endTimeInMinutes\":780,\"isBreakTaken\":false}");

    /* References in the order given, escaped. Not asked: nothing. */
    buf_reset(&out);
    const model_ref_t refs[] = { { "@employee-number", "E-4821" }, { "HRMID", "a\"b\\c" } };
    model_embed_t two = { refs, 2, true };
    assert_int_equal(model_break_json(&out, &b, &two), 0);
    assert_non_null(strstr(out.p, "\"person\":{\"id\":7,\"externalReferences\":{"
                                  "\"@employee-number\":\"E-4821\",\"HRMID\":\"a\\\"b\\\\c\"}},"));
    buf_reset(&out);
    model_embed_t not_asked = { NULL, 0, false };
    assert_int_equal(model_break_json(&out, &b, &not_asked), 0);
    assert_non_null(strstr(out.p, "\"person\":{\"id\":7},"));

    /* Appends: what was in the buffer stays. */
    buf_reset(&out);
    assert_int_equal(buf_append_str(&out, "[x,"), 0);
    assert_int_equal(model_break_json(&out, &b, NULL), 0);
    assert_memory_equal(out.p, "[x,{\"changeVersion\":", 20);
    buf_deinit(&out);
}

static void test_other_json_canonical(void **state)
{
    (void)state;
    buf_t out;
    buf_init(&out, 4096);
    model_definition_t d;
    model_errors_t errs;
    assert_int_equal(
        model_definition_parse(DEFINITION_BODY, strlen(DEFINITION_BODY), 3, &d, &errs), 0);
    d.version = 0xABCDEF;
    assert_int_equal(model_definition_json(&out, &d), 0);
    assert_string_equal(
        out.p,
        "{\"changeVersion\":\"00000000000000ABCDEF\",\"id\":3,\"name\":{\"default\":\"Lunch\","
        "\"translations\":{\"fr-BE\":\"Pause de midi\",\"nl\":\"Middagpauze\"}},"
        "\"friendlyName\":{\"default\":\"Lunch break\",\"translations\":{}},"
        "\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":20,"
        "\"maximumDurationInMinutes\":45,\"ifNotClockedDurationInMinutes\":30,"
        "\"hasToBeTakenUninterrupted\":true}");

    buf_reset(&out);
    model_person_t p;
    assert_int_equal(model_person_parse(PERSON_BODY, strlen(PERSON_BODY), 7, &p, &errs), 0);
    p.version = 2;
    assert_int_equal(model_person_json(&out, &p), 0);
    assert_string_equal(out.p, "{\"changeVersion\":\"00000000000000000002\",\"id\":7,"
                               "\"externalReferences\":{\"@employee-number\":\"E-4821\","
                               "\"HRMID\":\"h-1\"}}");
    buf_reset(&out);
    p.n_refs = 0;
    assert_int_equal(model_person_json(&out, &p), 0);
    assert_string_equal(out.p, "{\"changeVersion\":\"00000000000000000002\",\"id\":7,"
                               "\"externalReferences\":{}}");

    buf_reset(&out);
    assert_int_equal(model_tombstone_json(&out, 0x10, 9007199254740992LL), 0);
    assert_string_equal(out.p, "{\"changeVersion\":\"00000000000000000010\",\"id\":9007199254740992}");
    buf_deinit(&out);
}

/* Our writer against jansson's encoder on the same tree: every ASCII byte (the
 * escapes are all there), multi-byte UTF-8, and the integers at the edges. */
static void test_json_matches_jansson(void **state)
{
    (void)state;
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 9007199254740992LL;
    p.version = UINT64_MAX;
    /* Each ASCII byte 1..127 in a reference value, 8 to a value. */
    for (int c = 1; c < 128; c++) {
        model_ref_t *r = &p.refs[(c - 1) / 8];
        size_t len = strlen(r->value);
        r->value[len] = (char)c;
        if (!r->name[0])
            snprintf(r->name, sizeof(r->name), "n%02d", (c - 1) / 8);
    }
    p.n_refs = 16;
    snprintf(p.refs[15].value + strlen(p.refs[15].value), 64,
             "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8/");
    json_t *j = json_object();
    json_t *refs = json_object();
    char v[MODEL_VERSION_LEN + 1];
    model_version_format(p.version, v);
    assert_int_equal(json_object_set_new(j, "changeVersion", json_string(v)), 0);
    assert_int_equal(json_object_set_new(j, "id", json_integer(p.id)), 0);
    for (size_t i = 0; i < p.n_refs; i++)
        assert_int_equal(json_object_set_new(refs, p.refs[i].name, json_string(p.refs[i].value)), 0);
    assert_int_equal(json_object_set_new(j, "externalReferences", refs), 0);
    char *want = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(want);
    buf_t out;
    buf_init(&out, 8192);
    assert_int_equal(model_person_json(&out, &p), 0);
    assert_string_equal(out.p, want);
    free(want);
    json_decref(j);

    /* Integers: negative, zero, large. */
    model_break_t b = fixed_break();
    b.start = MODEL_MINUTES_MIN;
    b.end = 0;
    b.calculated = MODEL_DURATION_MAX;
    b.id = 9007199254740992LL;
    buf_reset(&out);
    assert_int_equal(model_break_json(&out, &b, NULL), 0);
    json_error_t e;
    json_t *back = json_loads(out.p, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(back);
    char *again = json_dumps(back, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(again, out.p);
    free(again);
    json_decref(back);
    buf_deinit(&out);
}

static void test_json_too_big_leaves_buffer(void **state)
{
    (void)state;
    model_break_t b = fixed_break();
    buf_t out;
    buf_init(&out, 40);
    assert_int_equal(buf_append_str(&out, "prefix"), 0);
    assert_int_equal(model_break_json(&out, &b, NULL), BH_ETOOBIG);
    assert_int_equal(out.len, 6);
    assert_string_equal(out.p, "prefix");
    model_definition_t d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(model_definition_json(&out, &d), BH_ETOOBIG);
    assert_string_equal(out.p, "prefix");
    model_person_t p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(model_person_json(&out, &p), BH_ETOOBIG);
    assert_string_equal(out.p, "prefix");
    assert_int_equal(model_tombstone_json(&out, 1, 1), BH_ETOOBIG);
    assert_string_equal(out.p, "prefix");
    buf_deinit(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_format),
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_break_parse_fields),
        cmocka_unit_test(test_break_round_trip),
        cmocka_unit_test(test_break_get_shape_accepted),
        cmocka_unit_test(test_break_calculated_optional),
        cmocka_unit_test(test_break_each_error),
        cmocka_unit_test(test_break_boundaries_accepted),
        cmocka_unit_test(test_break_start_end_range_both),
        cmocka_unit_test(test_break_multiple_errors),
        cmocka_unit_test(test_reasons_capped),
        cmocka_unit_test(test_body_level_errors),
        cmocka_unit_test(test_duplicate_keys_refused),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_reasons_are_valid_utf8),
        cmocka_unit_test(test_reason_helper),
        cmocka_unit_test(test_long_key_quoted),
        cmocka_unit_test(test_break_from_json),
        cmocka_unit_test(test_break_compute),
        cmocka_unit_test(test_break_same),
        cmocka_unit_test(test_definition_parse_fields),
        cmocka_unit_test(test_definition_round_trip),
        cmocka_unit_test(test_definition_same),
        cmocka_unit_test(test_definition_each_error),
        cmocka_unit_test(test_definition_boundaries_accepted),
        cmocka_unit_test(test_definition_multiple_errors),
        cmocka_unit_test(test_person_parse_round_trip),
        cmocka_unit_test(test_person_same),
        cmocka_unit_test(test_person_each_error),
        cmocka_unit_test(test_person_boundaries_accepted),
        cmocka_unit_test(test_batch_line_ok),
        cmocka_unit_test(test_batch_line_errors),
        cmocka_unit_test(test_break_window_pair),
        cmocka_unit_test(test_definition_window),
        cmocka_unit_test(test_break_json_canonical),
        cmocka_unit_test(test_other_json_canonical),
        cmocka_unit_test(test_json_matches_jansson),
        cmocka_unit_test(test_json_too_big_leaves_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
