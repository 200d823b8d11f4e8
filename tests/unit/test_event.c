/*
 * test_event.c: one builder for a change as consumers see it (delivery/event.c). What
 * a webhook delivers for a change is, byte for byte, {"changeType":…,"data":X} where
 * X is what GET /breaks/{id} answers for the record at that version, with the same
 * external references embedded in the same order; a delete carries the tombstone;
 * a definition is delivered as stored; a name the person has no value for is left
 * out. On the shared store fixture (a SQLite file).
 */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "delivery/event.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL
#define DAY0 20454

typedef struct fixture {
    fx_store_t fx;
    int64_t tenant;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fx_store_new(&f->fx, "event", T0_MS, false);
    fx_store_open(&f->fx);
    f->tenant = fx_store_tenant(&f->fx, "event", NULL);
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    p.n_refs = 2; /* sorted by name */
    snprintf(p.refs[0].name, MODEL_REF_NAME_MAX, "@employee-number");
    snprintf(p.refs[0].value, MODEL_REF_VALUE_MAX, "E-100");
    snprintf(p.refs[1].name, MODEL_REF_NAME_MAX, "HRMID");
    snprintf(p.refs[1].value, MODEL_REF_VALUE_MAX, "h\"7");
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, f->tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = 1;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch");
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->maximum = 120;
    d->if_not_clocked = 30;
    assert_int_equal(store_definition_put(f->fx.s, f->tenant, d, &r), 0);
    assert_int_equal(r.rc, 0);
    free(d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fx_store_free(&f->fx);
    free(f);
    return 0;
}

static uint64_t put_break(fixture_t *f, int64_t id, int32_t clocked)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.person_id = 1;
    b.definition_id = 1;
    b.date = DAY0;
    b.clocked = clocked;
    b.taken = true;
    b.start = 720;
    b.end = 780;
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, f->tenant, &b, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

/* What GET /breaks/{id} answers now, embedding refs (asked). */
static char *get_json(fixture_t *f, int64_t id, const extref_list_t *refs)
{
    model_break_t b;
    assert_int_equal(store_break_get(f->fx.s, f->tenant, id, &b), 0);
    buf_t out;
    buf_init(&out, 1 << 16);
    event_refs_t er = { .refs = refs, .asked = refs != NULL };
    assert_int_equal(event_breaks_json(f->fx.s, f->tenant, &b, 1, &er, &out), 0);
    char *s = strdup(buf_cstr(&out));
    buf_deinit(&out);
    return s;
}

/* The bodies of every change of coll, refs embedded. */
static char **bodies_of(fixture_t *f, store_collection_t coll, const extref_list_t *refs,
                        size_t *n)
{
    store_change_t *ch = NULL;
    assert_int_equal(store_changes_after(f->fx.s, f->tenant, coll, 0, 100, &ch, n), 0);
    char **bodies = calloc(*n + 1, sizeof(*bodies));
    assert_non_null(bodies);
    event_refs_t er = { .refs = refs, .asked = false };
    assert_int_equal(event_bodies(f->fx.s, f->tenant, coll, ch, *n, &er, bodies), 0);
    store_changes_free(ch, *n);
    return bodies;
}

static void free_bodies(char **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i]);
    free(b);
}

static char *wrapped(const char *type, const char *data)
{
    char *s = NULL;
    assert_true(asprintf(&s, "{\"changeType\":\"%s\",\"data\":%s}", type, data) > 0);
    return s;
}

/* The delivered body equals the GET representation, with and without references,
 * and the references come in the order asked, unknown names left out. */
static void test_delivery_matches_get(void **state)
{
    fixture_t *f = *state;
    put_break(f, 7, 25);
    /* Asked in the order HRMID, a name the person lacks, @employee-number. */
    const extref_t items[] = { { "people", "HRMID", 5, false },
                               { "people", "NoSuch", 6, false },
                               { "people", "@employee-number", 16, true } };
    const extref_list_t refs = { items, 3 };
    size_t n = 0;
    char **b = bodies_of(f, STORE_COLL_BREAKS, &refs, &n);
    assert_int_equal(n, 1);
    char *get = get_json(f, 7, &refs);
    char *want = wrapped("InsertOrUpdate", get);
    assert_string_equal(b[0], want);
    const char *hrm = strstr(b[0], "\"HRMID\""), *emp = strstr(b[0], "\"@employee-number\"");
    assert_non_null(hrm);
    assert_non_null(emp);
    assert_true(hrm < emp);
    assert_null(strstr(b[0], "NoSuch"));
    assert_non_null(strstr(b[0], "\"h\\\"7\""));
    free(want);
    free(get);
    free_bodies(b, n);

    /* Without references: the stored record as it is, equal to GET without them. */
    b = bodies_of(f, STORE_COLL_BREAKS, NULL, &n);
    get = get_json(f, 7, NULL);
    want = wrapped("InsertOrUpdate", get);
    assert_string_equal(b[0], want);
    assert_null(strstr(b[0], "externalReferences"));
    free(want);
    free(get);
    free_bodies(b, n);
}

/* Each change is built at its own version; a delete carries its tombstone whatever
 * references the webhook asks for; definitions are delivered as stored. */
static void test_versions_deletes_definitions(void **state)
{
    fixture_t *f = *state;
    uint64_t v1 = put_break(f, 7, 25);
    uint64_t v2 = put_break(f, 7, 26);
    store_write_result_t r;
    assert_int_equal(store_break_delete(f->fx.s, f->tenant, 7, &r), 0);
    const extref_t items[] = { { "people", "HRMID", 5, false } };
    const extref_list_t refs = { items, 1 };
    size_t n = 0;
    char **b = bodies_of(f, STORE_COLL_BREAKS, &refs, &n);
    assert_int_equal(n, 3);
    char v[64];
    snprintf(v, sizeof(v), "\"changeVersion\":\"%020llu\"", (unsigned long long)v1);
    assert_non_null(strstr(b[0], v));
    assert_non_null(strstr(b[0], "\"clockedDurationInMinutes\":25"));
    snprintf(v, sizeof(v), "\"changeVersion\":\"%020llu\"", (unsigned long long)v2);
    assert_non_null(strstr(b[1], v));
    assert_non_null(strstr(b[1], "\"HRMID\""));
    char tomb[128];
    snprintf(tomb, sizeof(tomb), "{\"changeType\":\"Delete\",\"data\":{\"changeVersion\":\"%020llu\",\"id\":7}}",
             (unsigned long long)r.version);
    assert_string_equal(b[2], tomb);
    free_bodies(b, n);

    store_change_t *ch = NULL;
    assert_int_equal(store_changes_after(f->fx.s, f->tenant, STORE_COLL_DEFINITIONS, 0, 10, &ch, &n), 0);
    assert_int_equal(n, 1);
    char *stored = wrapped("InsertOrUpdate", ch[0].body);
    store_changes_free(ch, n);
    b = bodies_of(f, STORE_COLL_DEFINITIONS, &refs, &n);
    assert_string_equal(b[0], stored);
    free(stored);
    free_bodies(b, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery_matches_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_deletes_definitions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
