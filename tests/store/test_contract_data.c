/*
 * test_contract_data.c: the back-end contract (tests/store/), part 2: the breaks data
 * through store.h only. People, break definitions and breaks (put, get, delete, the
 * outcomes, computed durations and the definition fan-out, the definition's window,
 * references and their conflicts, $batch), the reads (lists, keyset paging, several
 * people at once), the change log (one row per version, bodies, tombstones, paging),
 * the per-tenant version counter (no gap, no sharing, commit order under concurrent
 * writers), tenant scoping, reopening, commit times and commit notifications.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test;
 * every test writes to two tenants of its own. Where the store's answers could hide a
 * mistake (a change row written for an unchanged PUT, a version skipped), the test
 * reads the whole change log of the tenant and counts.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/date.h"
#include "core/err.h"
#include "model/model.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY0 20454            /* 2026-01-01 in days since the epoch */
#define NO_TENANT INT64_MAX   /* a tenant id no store hands out */

/* The store and two tenants, ta and tb (fixture_store.h). */
typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "data", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

/* ---- helpers ---------------------------------------------------------------------- */

/* The rows of the tenant's whole change log, every collection. */
static int64_t change_rows(fixture_t *f, int64_t tenant)
{
    static const store_collection_t colls[] = { STORE_COLL_PEOPLE, STORE_COLL_DEFINITIONS,
                                                STORE_COLL_BREAKS };
    int64_t rows = 0;
    for (size_t i = 0; i < sizeof(colls) / sizeof(colls[0]); i++) {
        store_change_t *c = NULL;
        size_t n = 0;
        assert_int_equal(store_changes_after(f->fx.s, tenant, colls[i], 0, 100000000, &c, &n), 0);
        store_changes_free(c, n);
        rows += (int64_t)n;
    }
    return rows;
}

/* The tenant's breaks on any date (the tests' dates are within a year of DAY0). */
static size_t break_rows(fixture_t *f, int64_t tenant)
{
    store_breaks_query_t q = { .date_from = DAY0 - 400, .date_to = DAY0 + 400, .limit = 1000000 };
    model_break_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_breaks_list(f->fx.s, tenant, &q, &list, &n), 0);
    free(list);
    return n;
}

static uint64_t tenant_version(fixture_t *f, int64_t tenant)
{
    uint64_t v = 0;
    assert_int_equal(store_tenant_version(f->fx.s, tenant, &v), 0);
    return v;
}

static model_person_t mk_person(int64_t id, const char *emp, const char *badge)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    /* Sorted by name, as model_person_parse leaves them. */
    if (badge) {
        snprintf(p.refs[p.n_refs].name, MODEL_REF_NAME_MAX, "@badge-number");
        snprintf(p.refs[p.n_refs].value, MODEL_REF_VALUE_MAX, "%s", badge);
        p.n_refs++;
    }
    if (emp) {
        snprintf(p.refs[p.n_refs].name, MODEL_REF_NAME_MAX, "@employee-number");
        snprintf(p.refs[p.n_refs].value, MODEL_REF_VALUE_MAX, "%s", emp);
        p.n_refs++;
    }
    return p;
}

static model_definition_t *mk_def(int64_t id, int32_t min, int32_t max, int32_t inc)
{
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = id;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch %lld", (long long)id);
    d->name.n_tr = 2;
    snprintf(d->name.tr[0].lang, sizeof(d->name.tr[0].lang), "fr");
    snprintf(d->name.tr[0].text, sizeof(d->name.tr[0].text), "D\xc3\xa9jeuner \"%lld\"",
             (long long)id);
    snprintf(d->name.tr[1].lang, sizeof(d->name.tr[1].lang), "nl");
    snprintf(d->name.tr[1].text, sizeof(d->name.tr[1].text), "Middagpauze");
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->paid = 15;
    d->minimum = min;
    d->maximum = max;
    d->if_not_clocked = inc;
    d->uninterrupted = true;
    return d;
}

/* A break; calc < 0 leaves the duration to the server. */
static model_break_t mk_break(int64_t id, int64_t person, int64_t def, int32_t date,
                              int32_t clocked, bool taken, int32_t calc)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.person_id = person;
    b.definition_id = def;
    b.date = date;
    b.clocked = clocked;
    b.taken = taken;
    b.calculated_given = calc >= 0;
    b.calculated = calc >= 0 ? calc : 0;
    b.start = 720;
    b.end = 840;
    return b;
}

static store_write_result_t put_person(fixture_t *f, int64_t tenant, const model_person_t *p)
{
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, tenant, p, &r), 0);
    return r;
}

static store_write_result_t put_def(fixture_t *f, int64_t tenant, const model_definition_t *d)
{
    store_write_result_t r;
    assert_int_equal(store_definition_put(f->fx.s, tenant, d, &r), 0);
    return r;
}

static store_write_result_t put_break(fixture_t *f, int64_t tenant, const model_break_t *b)
{
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, tenant, b, &r), 0);
    return r;
}

/* People 1..n_people and definitions 1..n_defs (min 10, max 60, not clocked 30). */
static void seed(fixture_t *f, int64_t tenant, int n_people, int n_defs)
{
    for (int i = 1; i <= n_people; i++) {
        model_person_t p = mk_person(i, NULL, NULL);
        assert_int_equal(put_person(f, tenant, &p).rc, 0);
    }
    for (int i = 1; i <= n_defs; i++) {
        model_definition_t *d = mk_def(i, 10, 60, 30);
        assert_int_equal(put_def(f, tenant, d).rc, 0);
        free(d);
    }
}

/* The expected canonical body of a record, for comparing with the change log. */
static char *break_body(const model_break_t *b)
{
    buf_t buf;
    buf_init(&buf, 1 << 16);
    assert_int_equal(model_break_json(&buf, b, NULL), 0);
    char *s = strdup(buf_cstr(&buf));
    buf_deinit(&buf);
    return s;
}

static char *tombstone_body(uint64_t v, int64_t id)
{
    buf_t buf;
    buf_init(&buf, 1 << 10);
    assert_int_equal(model_tombstone_json(&buf, v, id), 0);
    char *s = strdup(buf_cstr(&buf));
    buf_deinit(&buf);
    return s;
}

/* All changes of a collection after `after` (one call, generous limit). */
static store_change_t *changes(fixture_t *f, int64_t tenant, store_collection_t coll,
                               uint64_t after, size_t *n)
{
    store_change_t *c = NULL;
    assert_int_equal(store_changes_after(f->fx.s, tenant, coll, after, 1000000, &c, n), 0);
    return c;
}

/* ---- versions --------------------------------------------------------------------- */

/* One counter per tenant across all collections, strictly increasing by one per
 * change; another tenant's counter is its own. */
static void test_versions(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tenant_version(f, f->ta), 0);
    assert_int_equal(tenant_version(f, f->tb), 0);

    model_person_t p = mk_person(7, "E-7", NULL);
    store_write_result_t r = put_person(f, f->ta, &p);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, 1);
    model_definition_t *d = mk_def(3, 10, 60, 30);
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, 2);
    model_break_t b = mk_break(100, 7, 3, DAY0, 45, true, -1);
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, 3);
    assert_int_equal(tenant_version(f, f->ta), 3);

    /* Tenant B starts at 1 whatever A did, and does not move A's counter. */
    r = put_person(f, f->tb, &p);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, 1);
    r = put_def(f, f->tb, d);
    assert_int_equal(r.version, 2);
    assert_int_equal(tenant_version(f, f->tb), 2);
    assert_int_equal(tenant_version(f, f->ta), 3);

    b.clocked = 50;
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, 4);
    store_write_result_t del;
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 100, &del), 0);
    assert_int_equal(del.rc, 0);
    assert_int_equal(del.outcome, STORE_OUT_DELETED);
    assert_int_equal(del.version, 5);

    /* The change log holds each version once, by collection. */
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_PEOPLE, 0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].version, 1);
    assert_int_equal(c[0].collection, STORE_COLL_PEOPLE);
    assert_int_equal(c[0].record_id, 7);
    assert_int_equal(c[0].committed_at_ms, T0_MS);
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_DEFINITIONS, 0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].version, 2);
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_BREAKS, 0, &n);
    assert_int_equal(n, 3);
    assert_int_equal(c[0].version, 3);
    assert_int_equal(c[1].version, 4);
    assert_int_equal(c[2].version, 5);
    assert_int_equal(c[2].type, STORE_CHANGE_DELETE);
    store_changes_free(c, n);
    assert_int_equal(change_rows(f, f->ta), 5);
    assert_int_equal(change_rows(f, f->tb), 2);

    /* An unknown tenant has no counter and takes no write. */
    uint64_t v;
    assert_int_equal(store_tenant_version(f->fx.s, NO_TENANT, &v), BH_ENOTFOUND);
    assert_int_equal(store_person_put(f->fx.s, NO_TENANT, &p, &r), BH_ENOTFOUND);
    assert_int_equal(store_person_put(f->fx.s, 0, &p, &r), BH_ENOTFOUND);
    free(d);
}

/* ---- PUT outcomes ----------------------------------------------------------------- */

static void test_put_outcomes(void **state)
{
    fixture_t *f = *state;
    model_person_t p = mk_person(1, "E-1", "B-1");
    assert_int_equal(put_person(f, f->ta, &p).outcome, STORE_OUT_CREATED);
    store_write_result_t r = put_person(f, f->ta, &p);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(r.version, 0);
    snprintf(p.refs[1].value, MODEL_REF_VALUE_MAX, "E-1b");
    r = put_person(f, f->ta, &p);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, 2);
    /* Dropping a reference is a change too (full replace). */
    model_person_t fewer = mk_person(1, "E-1b", NULL);
    r = put_person(f, f->ta, &fewer);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    model_person_t got;
    assert_int_equal(store_person_get(f->fx.s, f->ta, 1, &got), 0);
    assert_int_equal(got.version, 3);
    assert_int_equal(got.n_refs, 1);
    assert_string_equal(got.refs[0].name, "@employee-number");
    assert_string_equal(got.refs[0].value, "E-1b");
    assert_true(model_person_same(&got, &fewer));

    model_definition_t *d = mk_def(1, 10, 60, 30);
    assert_int_equal(put_def(f, f->ta, d).outcome, STORE_OUT_CREATED);
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(r.version, 0);
    snprintf(d->name.tr[1].text, sizeof(d->name.tr[1].text), "Lunchpauze");
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, 5);
    assert_int_equal(r.fanout, 0);
    model_definition_t *gd = calloc(1, sizeof(*gd));
    assert_non_null(gd);
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 1, gd), 0);
    assert_int_equal(gd->version, 5);
    assert_true(model_definition_same(gd, d));
    assert_string_equal(gd->name.tr[0].text, "D\xc3\xa9jeuner \"1\"");
    assert_string_equal(gd->name.tr[1].text, "Lunchpauze");
    assert_int_equal(gd->friendly_name.n_tr, 0);

    model_break_t b = mk_break(9, 1, 1, DAY0 + 3, 20, true, -1);
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, 6);
    assert_int_equal(r.stored.version, 6);
    assert_int_equal(r.stored.calculated, 20);
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(r.version, 0);
    assert_int_equal(r.stored.version, 6); /* the record as stored */
    b.end = 900;
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, 7);
    model_break_t gb;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 9, &gb), 0);
    assert_int_equal(gb.version, 7);
    assert_int_equal(gb.end, 900);
    assert_int_equal(gb.date, DAY0 + 3);

    /* Unchanged PUTs wrote nothing: 7 versions, 7 change rows, and the bodies are the
     * canonical JSON of each version. */
    assert_int_equal(tenant_version(f, f->ta), 7);
    assert_int_equal(change_rows(f, f->ta), 7);
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, 0, &n);
    assert_int_equal(n, 2);
    char *want = break_body(&gb);
    assert_string_equal(c[1].body, want);
    assert_int_equal(c[1].date, DAY0 + 3);
    assert_int_equal(c[1].type, STORE_CHANGE_UPSERT);
    free(want);
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_PEOPLE, 0, &n);
    assert_int_equal(n, 3);
    assert_string_equal(c[2].body, "{\"changeVersion\":\"00000000000000000003\",\"id\":1,"
                                   "\"externalReferences\":{\"@employee-number\":\"E-1b\"}}");
    store_changes_free(c, n);

    free(gd);
    free(d);
}

/* ---- computed duration ------------------------------------------------------------ */

static void test_computed_duration(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 0);
    model_definition_t *d = mk_def(1, 20, 45, 30);
    put_def(f, f->ta, d);

    struct {
        int32_t clocked;
        bool taken;
        int32_t given;
        int32_t want;
    } cases[] = {
        { 10, true, -1, 20 },  /* clamped up to the minimum */
        { 33, true, -1, 33 },  /* inside the range */
        { 90, true, -1, 45 },  /* clamped down to the maximum */
        { 90, false, -1, 30 }, /* not taken: ifNotClocked */
        { 0, false, -1, 30 },
        { 90, true, 77, 77 },  /* given: kept as is */
        { 5, false, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        model_break_t b = mk_break((int64_t)i + 1, 1, 1, DAY0, cases[i].clocked, cases[i].taken,
                                   cases[i].given);
        b.calculated = 12345; /* ignored unless given */
        if (cases[i].given >= 0)
            b.calculated = cases[i].given;
        store_write_result_t r = put_break(f, f->ta, &b);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.stored.calculated, cases[i].want);
        assert_int_equal(r.stored.calculated_given, cases[i].given >= 0);
        model_break_t got;
        assert_int_equal(store_break_get(f->fx.s, f->ta, b.id, &got), 0);
        assert_int_equal(got.calculated, cases[i].want);
        assert_true(model_break_same(&got, &r.stored));
    }
    free(d);
}

/* ---- definition fan-out ----------------------------------------------------------- */

static void test_definition_fanout(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 3, 0);
    model_definition_t *d = mk_def(1, 10, 60, 30);
    put_def(f, f->ta, d);
    model_definition_t *other = mk_def(2, 10, 60, 30);
    put_def(f, f->ta, other);

    /* Computed from definition 1, and will change when its minimum becomes 25. The
     * count crosses the writer's fan-out chunk size. */
    enum { N = 600 };
    for (int i = 0; i < N; i++) {
        model_break_t b = mk_break(1000 + i, 1 + i % 3, 1, DAY0 + i % 5, 15, true, -1);
        assert_int_equal(put_break(f, f->ta, &b).stored.calculated, 15);
    }
    /* Given durations: untouched. */
    for (int i = 0; i < 5; i++) {
        model_break_t b = mk_break(2000 + i, 1, 1, DAY0, 15, true, 15);
        put_break(f, f->ta, &b);
    }
    /* Computed, but the new definition gives the same value: no version. */
    model_break_t same_taken = mk_break(3000, 1, 1, DAY0, 40, true, -1);
    model_break_t same_not_taken = mk_break(3001, 2, 1, DAY0, 0, false, -1);
    put_break(f, f->ta, &same_taken);
    put_break(f, f->ta, &same_not_taken);
    /* Computed from another definition: untouched. */
    model_break_t elsewhere = mk_break(4000, 1, 2, DAY0, 15, true, -1);
    put_break(f, f->ta, &elsewhere);

    uint64_t before = tenant_version(f, f->ta);
    int64_t rows_before = change_rows(f, f->ta);

    d->minimum = 25;
    store_write_result_t r = put_def(f, f->ta, d);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, before + 1);
    assert_int_equal(r.fanout, N);
    assert_int_equal(tenant_version(f, f->ta), before + 1 + N);
    assert_int_equal(change_rows(f, f->ta), rows_before + 1 + N);

    /* The definition's change comes first, then one change per recomputed break,
     * each with its own version and the new value in its body. */
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, before, &n);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].version, before + 2 + i);
        assert_int_equal(c[i].type, STORE_CHANGE_UPSERT);
        assert_true(c[i].record_id >= 1000 && c[i].record_id < 1000 + N);
        model_break_t got;
        assert_int_equal(store_break_get(f->fx.s, f->ta, c[i].record_id, &got), 0);
        assert_int_equal(got.version, c[i].version);
        assert_int_equal(got.calculated, 25);
        assert_int_equal(c[i].date, got.date);
        char *want = break_body(&got);
        assert_string_equal(c[i].body, want);
        free(want);
    }
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_DEFINITIONS, before, &n);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].version, before + 1);
    store_changes_free(c, n);

    model_break_t got;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_break_get(f->fx.s, f->ta, 2000 + i, &got), 0);
        assert_int_equal(got.calculated, 15);
        assert_true(got.version <= before);
    }
    assert_int_equal(store_break_get(f->fx.s, f->ta, 3000, &got), 0);
    assert_int_equal(got.calculated, 40);
    assert_true(got.version <= before);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 3001, &got), 0);
    assert_int_equal(got.calculated, 30);
    assert_true(got.version <= before);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 4000, &got), 0);
    assert_int_equal(got.calculated, 15);
    assert_true(got.version <= before);

    /* A change that cannot move any duration (the name) recomputes nothing. */
    snprintf(d->name.def, sizeof(d->name.def), "Renamed");
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.fanout, 0);
    assert_int_equal(tenant_version(f, f->ta), before + N + 2);

    /* A break that switches from a given to a computed duration of the same value
     * gets no version, but takes part in the next fan-out. */
    model_break_t given = mk_break(2000, 1, 1, DAY0, 30, true, 30);
    assert_int_equal(put_break(f, f->ta, &given).outcome, STORE_OUT_REPLACED);
    model_break_t computed = given;
    computed.calculated_given = false;
    computed.calculated = 0;
    r = put_break(f, f->ta, &computed);
    assert_int_equal(r.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(r.stored.calculated, 30);
    assert_false(r.stored.calculated_given);
    uint64_t v = tenant_version(f, f->ta);
    d->maximum = 28;
    r = put_def(f, f->ta, d);
    /* Only 2000 (30, now computed) and 3000 (40) exceed the new maximum; the others
     * stay at 25 (clamped up) or 30 (not taken). */
    assert_int_equal(r.fanout, 2);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2000, &got), 0);
    assert_int_equal(got.calculated, 28);
    assert_int_equal(got.version, v + 2);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 3000, &got), 0);
    assert_int_equal(got.calculated, 28);
    assert_int_equal(got.version, v + 3);
    assert_int_equal(tenant_version(f, f->ta), v + 3);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2001, &got), 0);
    assert_int_equal(got.calculated, 15); /* still given */

    free(other);
    free(d);
}

/* ---- the definition's window (issue #14 point 7) ---------------------------------- */

#define WINDOW_REASON(def)                                                                  \
    "startTimeInMinutes, endTimeInMinutes: not given, and break definition " #def          \
    " has no earliestStartTimeInMinutes/latestEndTimeInMinutes"

/* A break without start and end: it takes them from its definition's window. */
static model_break_t mk_taken(int64_t id, int64_t def, int32_t calc)
{
    model_break_t b = mk_break(id, 1, def, DAY0, 15, true, calc);
    b.window_taken = true;
    b.start = b.end = 0;
    return b;
}

/* A break without start and end takes the window and remembers it did; without a
 * window on the definition (or with half of one) the write is refused, in a single
 * PUT and in a $batch op alike, and takes no version. */
static void test_window_fill_and_refusal(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 0);
    model_definition_t *d = mk_def(1, 10, 60, 30);
    d->has_earliest = d->has_latest = true;
    d->earliest = 600;
    d->latest = 660;
    put_def(f, f->ta, d);
    model_definition_t *bare = mk_def(2, 10, 60, 30);
    put_def(f, f->ta, bare);
    model_definition_t *half = mk_def(3, 10, 60, 30);
    half->has_earliest = true;
    half->earliest = 600;
    put_def(f, f->ta, half);

    model_definition_t got_d;
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 1, &got_d), 0);
    assert_true(got_d.has_earliest && got_d.has_latest);
    assert_int_equal(got_d.earliest, 600);
    assert_int_equal(got_d.latest, 660);
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 2, &got_d), 0);
    assert_false(got_d.has_earliest || got_d.has_latest);
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 3, &got_d), 0);
    assert_true(got_d.has_earliest);
    assert_false(got_d.has_latest);

    uint64_t v = tenant_version(f, f->ta);
    model_break_t b = mk_taken(1, 1, -1);
    store_write_result_t r = put_break(f, f->ta, &b);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);
    assert_int_equal(r.version, v + 1);
    assert_int_equal(r.stored.start, 600);
    assert_int_equal(r.stored.end, 660);
    assert_true(r.stored.window_taken);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &got), 0);
    assert_int_equal(got.start, 600);
    assert_int_equal(got.end, 660);
    assert_true(got.window_taken);
    /* The change log holds what a GET shows: the stored start and end. */
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, v, &n);
    assert_int_equal(n, 1);
    assert_non_null(strstr(c[0].body, "\"startTimeInMinutes\":600,\"endTimeInMinutes\":660"));
    store_changes_free(c, n);

    /* Refused: no window, or half of one. */
    v = tenant_version(f, f->ta);
    b = mk_taken(2, 2, -1);
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.rc, BH_EINVAL);
    assert_string_equal(r.reason, WINDOW_REASON(2));
    b = mk_taken(2, 3, -1);
    r = put_break(f, f->ta, &b);
    assert_int_equal(r.rc, BH_EINVAL);
    assert_string_equal(r.reason, WINDOW_REASON(3));
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2, &got), BH_ENOTFOUND);
    /* Given start and end need no window. */
    b = mk_break(2, 1, 2, DAY0, 15, true, -1);
    assert_int_equal(put_break(f, f->ta, &b).outcome, STORE_OUT_CREATED);

    /* The same in a $batch: the refused op alone, the others applied. */
    store_break_op_t ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].rec = mk_taken(10, 1, -1);
    ops[1].rec = mk_taken(11, 2, -1);
    ops[2].rec = mk_taken(12, 1, 5);
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 3), 0);
    assert_int_equal(ops[0].res.rc, 0);
    assert_int_equal(ops[0].res.stored.start, 600);
    assert_int_equal(ops[1].res.rc, BH_EINVAL);
    assert_string_equal(ops[1].res.reason, WINDOW_REASON(2));
    assert_int_equal(ops[1].res.version, 0);
    assert_int_equal(ops[2].res.rc, 0);
    assert_int_equal(ops[2].res.stored.end, 660);
    assert_int_equal(tenant_version(f, f->ta), v + 3);

    free(d);
    free(bare);
    free(half);
}

/* A window change gives each break that took the window one new version and one
 * change-log row, and none to a break that gave its start and end; a break whose
 * duration AND window both change gets one version; an unchanged PUT takes none. */
static void test_window_fanout(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 0);
    model_definition_t *d = mk_def(1, 10, 60, 30);
    d->has_earliest = d->has_latest = true;
    d->earliest = 600;
    d->latest = 660;
    put_def(f, f->ta, d);

    /* Taken windows, given durations; crosses the fan-out chunk size. */
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        model_break_t b = mk_taken(1000 + i, 1, 15);
        assert_int_equal(put_break(f, f->ta, &b).rc, 0);
    }
    /* Given windows and durations: never touched by the definition. */
    for (int i = 0; i < 5; i++) {
        model_break_t b = mk_break(2000 + i, 1, 1, DAY0, 15, true, 15);
        put_break(f, f->ta, &b);
    }
    /* Taken window AND computed duration. */
    model_break_t both = mk_taken(3000, 1, -1);
    assert_int_equal(put_break(f, f->ta, &both).stored.calculated, 15);

    /* Unchanged PUTs: no version. */
    uint64_t before = tenant_version(f, f->ta);
    assert_int_equal(put_def(f, f->ta, d).outcome, STORE_OUT_UNCHANGED);
    model_break_t again = mk_taken(1000, 1, 15);
    assert_int_equal(put_break(f, f->ta, &again).outcome, STORE_OUT_UNCHANGED);
    /* Giving exactly the window's values is no visible change either, but the row
     * now gives its window and leaves the fan-out. */
    model_break_t pinned = mk_break(1001, 1, 1, DAY0, 15, true, 15);
    pinned.start = 600;
    pinned.end = 660;
    store_write_result_t r = put_break(f, f->ta, &pinned);
    assert_int_equal(r.outcome, STORE_OUT_UNCHANGED);
    assert_false(r.stored.window_taken);
    assert_int_equal(tenant_version(f, f->ta), before);
    int64_t rows_before = change_rows(f, f->ta);

    /* The window moves: N - 1 taken breaks plus 3000. */
    d->earliest = 540;
    d->latest = 600;
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.version, before + 1);
    assert_int_equal(r.fanout, N);
    assert_int_equal(tenant_version(f, f->ta), before + 1 + N);
    assert_int_equal(change_rows(f, f->ta), rows_before + 1 + N);
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, before, &n);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].version, before + 2 + i);
        assert_true((c[i].record_id != 1001 && c[i].record_id < 2000) ||
                    c[i].record_id == 3000);
        model_break_t got;
        assert_int_equal(store_break_get(f->fx.s, f->ta, c[i].record_id, &got), 0);
        assert_int_equal(got.version, c[i].version);
        assert_int_equal(got.start, 540);
        assert_int_equal(got.end, 600);
        assert_true(got.window_taken);
        char *want = break_body(&got);
        assert_string_equal(c[i].body, want);
        free(want);
    }
    store_changes_free(c, n);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1001, &got), 0);
    assert_int_equal(got.start, 600);
    assert_true(got.version <= before);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_break_get(f->fx.s, f->ta, 2000 + i, &got), 0);
        assert_int_equal(got.start, 720);
        assert_true(got.version <= before);
    }

    /* Duration rule and window at once: 3000 changes in both, one version; the
     * others (given durations) in their window only. */
    uint64_t v = tenant_version(f, f->ta);
    d->minimum = 25;
    d->earliest = 500;
    r = put_def(f, f->ta, d);
    assert_int_equal(r.fanout, N);
    assert_int_equal(tenant_version(f, f->ta), v + 1 + N);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 3000, &got), 0);
    assert_int_equal(got.calculated, 25);
    assert_int_equal(got.start, 500);
    assert_int_equal(got.end, 600);
    c = changes(f, f->ta, STORE_COLL_BREAKS, v, &n);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++)
        seen += c[i].record_id == 3000;
    assert_int_equal(seen, 1);
    store_changes_free(c, n);

    /* A duration rule alone moves only 3000 (the others give theirs). */
    v = tenant_version(f, f->ta);
    d->minimum = 26;
    assert_int_equal(put_def(f, f->ta, d).fanout, 1);
    assert_int_equal(tenant_version(f, f->ta), v + 2);

    /* The window removed: the breaks keep the start and end they took, no version;
     * a new window reaches them again. */
    v = tenant_version(f, f->ta);
    d->has_earliest = d->has_latest = false;
    d->earliest = d->latest = 0;
    r = put_def(f, f->ta, d);
    assert_int_equal(r.outcome, STORE_OUT_REPLACED);
    assert_int_equal(r.fanout, 0);
    assert_int_equal(tenant_version(f, f->ta), v + 1);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1000, &got), 0);
    assert_int_equal(got.start, 500);
    assert_true(got.window_taken);
    d->has_earliest = d->has_latest = true;
    d->earliest = 700;
    d->latest = 710;
    assert_int_equal(put_def(f, f->ta, d).fanout, N);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1000, &got), 0);
    assert_int_equal(got.start, 700);
    free(d);
}

/* window_given is stored: it survives a reopen and still decides the fan-out. */
static void test_window_reopen(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 0);
    model_definition_t *d = mk_def(1, 10, 60, 30);
    d->has_earliest = d->has_latest = true;
    d->earliest = 600;
    d->latest = 660;
    put_def(f, f->ta, d);
    model_break_t taken = mk_taken(1, 1, 15);
    put_break(f, f->ta, &taken);
    model_break_t given = mk_break(2, 1, 1, DAY0, 15, true, 15);
    put_break(f, f->ta, &given);

    store_close(f->fx.s);
    store_options_t opt = { .clock = &f->fx.clock };
    assert_int_equal(store_open(f->fx.url, &opt, &f->fx.s, NULL), 0);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &got), 0);
    assert_true(got.window_taken);
    assert_int_equal(got.start, 600);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2, &got), 0);
    assert_false(got.window_taken);
    model_definition_t got_d;
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 1, &got_d), 0);
    assert_true(model_definition_same(&got_d, d));

    d->latest = 690;
    assert_int_equal(put_def(f, f->ta, d).fanout, 1);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &got), 0);
    assert_int_equal(got.end, 690);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2, &got), 0);
    assert_int_equal(got.end, 840);
    free(d);
}

/* ---- references ------------------------------------------------------------------- */

static void test_reference_checks(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 1);
    uint64_t v = tenant_version(f, f->ta);

    model_break_t b = mk_break(1, 99, 1, DAY0, 10, true, -1);
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, f->ta, &b, &r), 0);
    assert_int_equal(r.rc, BH_EINVAL);
    assert_string_equal(r.reason, "person.id: no person 99");
    assert_int_equal(r.version, 0);
    b = mk_break(1, 1, 42, DAY0, 10, true, -1);
    assert_int_equal(store_break_put(f->fx.s, f->ta, &b, &r), 0);
    assert_int_equal(r.rc, BH_EINVAL);
    assert_string_equal(r.reason, "breakDefinition.id: no break definition 42");
    /* Even a given duration needs its definition to exist. */
    b = mk_break(1, 1, 42, DAY0, 10, true, 10);
    assert_int_equal(store_break_put(f->fx.s, f->ta, &b, &r), 0);
    assert_int_equal(r.rc, BH_EINVAL);

    assert_int_equal(tenant_version(f, f->ta), v);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &got), BH_ENOTFOUND);
    assert_int_equal(break_rows(f, f->ta), 0);

    /* A refused replace leaves the stored break as it was. */
    b = mk_break(1, 1, 1, DAY0, 10, true, -1);
    assert_int_equal(put_break(f, f->ta, &b).outcome, STORE_OUT_CREATED);
    b.person_id = 5;
    assert_int_equal(store_break_put(f->fx.s, f->ta, &b, &r), 0);
    assert_int_equal(r.rc, BH_EINVAL);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &got), 0);
    assert_int_equal(got.person_id, 1);

    /* Caller bugs. */
    assert_int_equal(store_break_put(f->fx.s, f->ta, NULL, &r), BH_EINVAL);
    b.id = 0;
    assert_int_equal(store_break_put(f->fx.s, f->ta, &b, &r), BH_EINVAL);
    model_person_t bad = mk_person(3, "x", "y");
    memcpy(bad.refs[0].name, "@zzz", 5); /* not sorted any more */
    assert_int_equal(store_person_put(f->fx.s, f->ta, &bad, &r), BH_EINVAL);
}

/* ---- deletes ---------------------------------------------------------------------- */

static void test_deletes(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 2, 2);
    model_break_t b = mk_break(5, 1, 1, DAY0 + 10, 10, true, -1);
    put_break(f, f->ta, &b);
    uint64_t v = tenant_version(f, f->ta);

    store_write_result_t r;
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 5, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_DELETED);
    assert_int_equal(r.version, v + 1);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 5, &got), BH_ENOTFOUND);

    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, v, &n);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].type, STORE_CHANGE_DELETE);
    assert_int_equal(c[0].record_id, 5);
    assert_int_equal(c[0].date, DAY0 + 10);
    char *want = tombstone_body(v + 1, 5);
    assert_string_equal(c[0].body, want);
    free(want);
    char hex[MODEL_VERSION_LEN + 1];
    model_version_format(v + 1, hex);
    assert_non_null(strstr(c[0].body, hex));
    store_changes_free(c, n);

    /* A second delete, and a delete of something never there: not found, no version. */
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 5, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(r.version, 0);
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 12345, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_break_delete(f->fx.s, f->ta, -1, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_person_delete(f->fx.s, f->ta, 77, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_definition_delete(f->fx.s, f->ta, 77, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(tenant_version(f, f->ta), v + 1);

    /* Unreferenced people and definitions go, with tombstones in their collections. */
    assert_int_equal(store_person_delete(f->fx.s, f->ta, 2, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.version, v + 2);
    assert_int_equal(store_definition_delete(f->fx.s, f->ta, 2, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.version, v + 3);
    model_person_t gp;
    assert_int_equal(store_person_get(f->fx.s, f->ta, 2, &gp), BH_ENOTFOUND);
    model_definition_t *gd = calloc(1, sizeof(*gd));
    assert_int_equal(store_definition_get(f->fx.s, f->ta, 2, gd), BH_ENOTFOUND);
    free(gd);
    c = changes(f, f->ta, STORE_COLL_PEOPLE, v, &n);
    assert_int_equal(n, 1);
    want = tombstone_body(v + 2, 2);
    assert_string_equal(c[0].body, want);
    assert_int_equal(c[0].type, STORE_CHANGE_DELETE);
    free(want);
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_DEFINITIONS, v, &n);
    assert_int_equal(n, 1);
    want = tombstone_body(v + 3, 2);
    assert_string_equal(c[0].body, want);
    free(want);
    store_changes_free(c, n);

    /* A deleted break can come back: a new create with a new version. */
    assert_int_equal(put_break(f, f->ta, &b).outcome, STORE_OUT_CREATED);
    assert_int_equal(tenant_version(f, f->ta), v + 4);
}

static void test_delete_conflicts(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 2, 2);
    model_break_t b1 = mk_break(1, 1, 1, DAY0, 10, true, -1);
    model_break_t b2 = mk_break(2, 2, 1, DAY0, 10, true, 10); /* given: still a reference */
    put_break(f, f->ta, &b1);
    put_break(f, f->ta, &b2);
    uint64_t v = tenant_version(f, f->ta);

    store_write_result_t r;
    assert_int_equal(store_definition_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "break definition 1 is used by 2 breaks");
    assert_int_equal(store_person_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "person 1 is used by 1 break");
    assert_int_equal(tenant_version(f, f->ta), v);
    model_person_t gp;
    assert_int_equal(store_person_get(f->fx.s, f->ta, 1, &gp), 0);

    /* Once the breaks are gone, the deletes go through. */
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(store_person_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(store_definition_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "break definition 1 is used by 1 break");
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 2, &r), 0);
    assert_int_equal(store_definition_delete(f->fx.s, f->ta, 1, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(tenant_version(f, f->ta), v + 4);
}

/* ---- external references ---------------------------------------------------------- */

static void test_ref_uniqueness(void **state)
{
    fixture_t *f = *state;
    model_person_t p12 = mk_person(12, "E-1", "B-1");
    put_person(f, f->ta, &p12);
    uint64_t v = tenant_version(f, f->ta);

    model_person_t p13 = mk_person(13, "E-1", NULL);
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, f->ta, &p13, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "@employee-number 'E-1' is already used by person 12");
    model_person_t got;
    assert_int_equal(store_person_get(f->fx.s, f->ta, 13, &got), BH_ENOTFOUND);
    assert_int_equal(tenant_version(f, f->ta), v);

    /* The same value under another name is another reference. */
    p13 = mk_person(13, "B-1", "E-1");
    r = put_person(f, f->ta, &p13);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.outcome, STORE_OUT_CREATED);

    /* A person may keep its own values; and once 12 lets go of one, 13 can take it. */
    assert_int_equal(put_person(f, f->ta, &p12).outcome, STORE_OUT_UNCHANGED);
    model_person_t p14 = mk_person(14, NULL, "B-1");
    assert_int_equal(store_person_put(f->fx.s, f->ta, &p14, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "@badge-number 'B-1' is already used by person 12");
    p12 = mk_person(12, "E-1", NULL);
    assert_int_equal(put_person(f, f->ta, &p12).outcome, STORE_OUT_REPLACED);
    assert_int_equal(put_person(f, f->ta, &p14).outcome, STORE_OUT_CREATED);

    /* A refused replace keeps the stored references. */
    model_person_t p13b = mk_person(13, "E-1", NULL);
    assert_int_equal(store_person_put(f->fx.s, f->ta, &p13b, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_int_equal(store_person_get(f->fx.s, f->ta, 13, &got), 0);
    assert_true(model_person_same(&got, &p13));

    /* Another tenant's people are not in the way. */
    assert_int_equal(put_person(f, f->tb, &p13b).outcome, STORE_OUT_CREATED);

    /* Custom names count like predefined ones. */
    model_person_t c1 = mk_person(20, NULL, NULL), c2 = mk_person(21, NULL, NULL);
    c1.n_refs = c2.n_refs = 1;
    snprintf(c1.refs[0].name, MODEL_REF_NAME_MAX, "HRMID");
    snprintf(c1.refs[0].value, MODEL_REF_VALUE_MAX, "h-1");
    c2.refs[0] = c1.refs[0];
    assert_int_equal(put_person(f, f->ta, &c1).rc, 0);
    assert_int_equal(store_person_put(f->fx.s, f->ta, &c2, &r), 0);
    assert_int_equal(r.rc, BH_ECONFLICT);
    assert_string_equal(r.reason, "HRMID 'h-1' is already used by person 20");
}

/* ---- tenant isolation ------------------------------------------------------------- */

static void test_tenant_isolation(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 2, 1);
    model_break_t b = mk_break(1, 1, 1, DAY0, 10, true, -1);
    put_break(f, f->ta, &b);
    uint64_t va = tenant_version(f, f->ta);
    store_write_result_t r;

    /* Reads. */
    model_person_t p;
    model_break_t gb;
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_int_equal(store_person_get(f->fx.s, f->tb, 1, &p), BH_ENOTFOUND);
    assert_int_equal(store_break_get(f->fx.s, f->tb, 1, &gb), BH_ENOTFOUND);
    assert_int_equal(store_definition_get(f->fx.s, f->tb, 1, d), BH_ENOTFOUND);
    free(d);
    model_definition_t *defs = NULL;
    size_t n = 99;
    assert_int_equal(store_definitions_list(f->fx.s, f->tb, 0, 100, &defs, &n), 0);
    assert_int_equal(n, 0);
    free(defs);
    model_break_t *list = NULL;
    store_breaks_query_t q = { .date_from = DAY0 - 10, .date_to = DAY0 + 10, .limit = 100 };
    assert_int_equal(store_breaks_list(f->fx.s, f->tb, &q, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    int64_t ids[] = { 1, 2 };
    q.persons = ids;
    q.n_persons = 2;
    assert_int_equal(store_breaks_list(f->fx.s, f->tb, &q, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    model_person_t *people = NULL;
    assert_int_equal(store_people_get_many(f->fx.s, f->tb, ids, 2, &people, &n), 0);
    assert_int_equal(n, 0);
    free(people);
    store_change_t *c = changes(f, f->tb, STORE_COLL_BREAKS, 0, &n);
    assert_int_equal(n, 0);
    store_changes_free(c, n);
    assert_int_equal(tenant_version(f, f->tb), 0);

    /* Writes: B cannot delete A's records, nor reference A's people or definitions. */
    assert_int_equal(store_break_delete(f->fx.s, f->tb, 1, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_person_delete(f->fx.s, f->tb, 2, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_definition_delete(f->fx.s, f->tb, 1, &r), 0);
    assert_int_equal(r.rc, BH_ENOTFOUND);
    assert_int_equal(store_break_put(f->fx.s, f->tb, &b, &r), 0);
    assert_int_equal(r.rc, BH_EINVAL);
    store_break_op_t ops[2] = { { .del = true, .rec = { .id = 1 } }, { .rec = b } };
    assert_int_equal(store_breaks_apply(f->fx.s, f->tb, ops, 2), 0);
    assert_int_equal(ops[0].res.rc, BH_ENOTFOUND);
    assert_int_equal(ops[1].res.rc, BH_EINVAL);
    assert_int_equal(tenant_version(f, f->tb), 0);
    assert_int_equal(change_rows(f, f->tb), 0);

    /* B's records with the same ids are B's own, and A's are unchanged. */
    seed(f, f->tb, 2, 1);
    model_break_t bb = mk_break(1, 2, 1, DAY0 + 1, 50, true, -1);
    assert_int_equal(put_break(f, f->tb, &bb).outcome, STORE_OUT_CREATED);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &gb), 0);
    assert_int_equal(gb.person_id, 1);
    assert_int_equal(gb.date, DAY0);
    assert_int_equal(store_break_get(f->fx.s, f->tb, 1, &gb), 0);
    assert_int_equal(gb.person_id, 2);
    assert_int_equal(store_break_delete(f->fx.s, f->tb, 1, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 1, &gb), 0);
    assert_int_equal(tenant_version(f, f->ta), va);
}

/* ---- $batch ----------------------------------------------------------------------- */

static void test_batch(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 2, 1);
    model_break_t existing = mk_break(50, 1, 1, DAY0, 10, true, -1);
    put_break(f, f->ta, &existing);
    uint64_t v = tenant_version(f, f->ta);
    store_stats_t st0, st1;
    store_get_stats(f->fx.s, &st0);

    store_break_op_t ops[7];
    memset(ops, 0, sizeof(ops));
    ops[0].rec = mk_break(1, 1, 1, DAY0, 20, true, -1);
    ops[1].rec = mk_break(2, 99, 1, DAY0, 20, true, -1); /* no such person */
    ops[2].del = true;
    ops[2].rec.id = 777;                                  /* no such break */
    ops[3].rec = mk_break(3, 2, 1, DAY0 + 1, 70, true, -1);
    ops[4].del = true;
    ops[4].rec.id = 50;
    ops[5].rec = mk_break(1, 1, 1, DAY0, 20, true, -1);   /* same as op 0: unchanged */
    ops[6].rec = mk_break(4, 1, 9, DAY0, 20, true, -1);   /* no such definition */
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 7), 0);

    assert_int_equal(ops[0].res.rc, 0);
    assert_int_equal(ops[0].res.outcome, STORE_OUT_CREATED);
    assert_int_equal(ops[0].res.version, v + 1);
    assert_int_equal(ops[0].res.stored.calculated, 20);
    assert_int_equal(ops[1].res.rc, BH_EINVAL);
    assert_string_equal(ops[1].res.reason, "person.id: no person 99");
    assert_int_equal(ops[1].res.version, 0);
    assert_int_equal(ops[2].res.rc, BH_ENOTFOUND);
    assert_int_equal(ops[3].res.rc, 0);
    assert_int_equal(ops[3].res.version, v + 2); /* the refused ops took no version */
    assert_int_equal(ops[3].res.stored.calculated, 60);
    assert_int_equal(ops[4].res.rc, 0);
    assert_int_equal(ops[4].res.outcome, STORE_OUT_DELETED);
    assert_int_equal(ops[4].res.version, v + 3);
    assert_int_equal(ops[5].res.rc, 0);
    assert_int_equal(ops[5].res.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(ops[5].res.version, 0);
    assert_int_equal(ops[6].res.rc, BH_EINVAL);
    assert_string_equal(ops[6].res.reason, "breakDefinition.id: no break definition 9");

    assert_int_equal(tenant_version(f, f->ta), v + 3);
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, v, &n);
    assert_int_equal(n, 3);
    assert_int_equal(c[0].record_id, 1);
    assert_int_equal(c[1].record_id, 3);
    assert_int_equal(c[2].record_id, 50);
    assert_int_equal(c[2].type, STORE_CHANGE_DELETE);
    store_changes_free(c, n);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, 2, &got), BH_ENOTFOUND);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 4, &got), BH_ENOTFOUND);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 50, &got), BH_ENOTFOUND);
    assert_int_equal(store_break_get(f->fx.s, f->ta, 3, &got), 0);

    /* One job, one commit. */
    store_get_stats(f->fx.s, &st1);
    assert_int_equal(st1.commits - st0.commits, 1);

    /* Bounds and caller bugs. */
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 0), 0);
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, NULL, 1), BH_EINVAL);
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, STORE_BATCH_MAX + 1), BH_EINVAL);
    ops[0].rec.id = 0;
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 1), BH_EINVAL);
    ops[0].rec.id = 1;
    assert_int_equal(store_breaks_apply(f->fx.s, NO_TENANT, ops, 1), BH_ENOTFOUND);
    assert_int_equal(tenant_version(f, f->ta), v + 3);
}

/* A batch that upserts the same break twice, then deletes and recreates it: each
 * step sees the previous one, and versions follow the order of the ops. */
static void test_batch_same_record(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 1);
    store_break_op_t ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].rec = mk_break(1, 1, 1, DAY0, 20, true, -1);
    ops[1].rec = mk_break(1, 1, 1, DAY0 + 1, 20, true, -1);
    ops[2].del = true;
    ops[2].rec.id = 1;
    ops[3].rec = mk_break(1, 1, 1, DAY0 + 2, 20, true, -1);
    uint64_t v = tenant_version(f, f->ta);
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 4), 0);
    assert_int_equal(ops[0].res.outcome, STORE_OUT_CREATED);
    assert_int_equal(ops[1].res.outcome, STORE_OUT_REPLACED);
    assert_int_equal(ops[2].res.outcome, STORE_OUT_DELETED);
    assert_int_equal(ops[3].res.outcome, STORE_OUT_CREATED);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ops[i].res.version, v + 1 + (uint64_t)i);
    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_BREAKS, v, &n);
    assert_int_equal(n, 4);
    assert_int_equal(c[1].date, DAY0 + 1);
    assert_int_equal(c[2].date, DAY0 + 1); /* the deleted break's date */
    assert_int_equal(c[3].date, DAY0 + 2);
    store_changes_free(c, n);
}

/* A $batch chunk is decided in windows (store/writes.c): across window boundaries, with
 * a break written, deleted and refused several times within one window and in later
 * ones, every line must come out exactly as the same ops applied one at a time:
 * outcome, refusal and reason, version (relative to the start) and change-log body. */
static void test_batch_matches_single_writes(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 5, 2);
    seed(f, f->tb, 5, 2);
    enum { N = 3000 };
    store_break_op_t *ops = calloc(N, sizeof(*ops));
    assert_non_null(ops);
    uint32_t r = 12345;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        int64_t id = 1 + (int64_t)((r >> 8) % 200);
        int kind = (int)((r >> 20) % 10);
        if (kind == 0) {
            ops[i].del = true;
            ops[i].rec.id = id;
        } else {
            int64_t person = kind == 1 ? 99 : 1 + (int64_t)((r >> 4) % 5); /* 99: missing */
            int64_t def = kind == 2 ? 77 : 1 + (int64_t)((r >> 12) % 2);   /* 77: missing */
            int32_t clocked = (int32_t)((r >> 16) % 3) * 10;              /* repeats */
            ops[i].rec = mk_break(id, person, def, DAY0 + (int32_t)(id % 7), clocked,
                                  (r >> 24) % 2, (r >> 26) % 3 == 0 ? 15 : -1);
        }
    }
    uint64_t va = tenant_version(f, f->ta), vb = tenant_version(f, f->tb);
    assert_int_equal(va, vb); /* seeded alike: the bodies must match byte for byte */
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, N), 0);
    for (int i = 0; i < N; i++) {
        store_write_result_t one;
        if (ops[i].del)
            assert_int_equal(store_break_delete(f->fx.s, f->tb, ops[i].rec.id, &one), 0);
        else
            assert_int_equal(store_break_put(f->fx.s, f->tb, &ops[i].rec, &one), 0);
        const store_write_result_t *b = &ops[i].res;
        assert_int_equal(b->rc, one.rc);
        assert_int_equal(b->outcome, one.outcome);
        assert_string_equal(b->reason, one.reason);
        assert_int_equal(b->version ? b->version - va : 0, one.version ? one.version - vb : 0);
        if (b->rc == 0 && !ops[i].del)
            assert_int_equal(b->stored.calculated, one.stored.calculated);
    }
    assert_int_equal(tenant_version(f, f->ta) - va, tenant_version(f, f->tb) - vb);
    size_t na = 0, nb = 0;
    store_change_t *ca = changes(f, f->ta, STORE_COLL_BREAKS, va, &na);
    store_change_t *cb = changes(f, f->tb, STORE_COLL_BREAKS, vb, &nb);
    assert_int_equal(na, nb);
    assert_true(na > 1024); /* more than one window wrote */
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(ca[i].version - va, cb[i].version - vb);
        assert_int_equal(ca[i].type, cb[i].type);
        assert_int_equal(ca[i].record_id, cb[i].record_id);
        assert_int_equal(ca[i].date, cb[i].date);
        assert_string_equal(ca[i].body, cb[i].body);
    }
    store_changes_free(ca, na);
    store_changes_free(cb, nb);
    free(ops);
}

/* ---- listing ---------------------------------------------------------------------- */

static int cmp_break_key(const void *a, const void *b)
{
    const model_break_t *x = a, *y = b;
    if (x->date != y->date)
        return x->date < y->date ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Pages through q with page size `page` and checks the union against want[0..n_want),
 * which is sorted by (date, id). */
static void check_paging(fixture_t *f, store_breaks_query_t q, size_t page,
                         const model_break_t *want, size_t n_want)
{
    q.limit = page;
    q.has_after = false;
    size_t seen = 0;
    for (int guard = 0; guard < 10000; guard++) {
        model_break_t *list = NULL;
        size_t n = 0;
        assert_int_equal(store_breaks_list(f->fx.s, f->ta, &q, &list, &n), 0);
        assert_true(n <= page);
        for (size_t i = 0; i < n; i++) {
            assert_true(seen < n_want);
            assert_int_equal(list[i].id, want[seen].id);
            assert_int_equal(list[i].date, want[seen].date);
            seen++;
        }
        if (n > 0) {
            q.has_after = true;
            q.after_date = list[n - 1].date;
            q.after_id = list[n - 1].id;
        }
        free(list);
        if (n < page)
            break;
    }
    assert_int_equal(seen, n_want);
}

static void test_list_keyset(void **state)
{
    fixture_t *f = *state;
    enum { PEOPLE = 40, BREAKS = 500 };
    seed(f, f->ta, PEOPLE, 1);
    /* Ids not in date order, many breaks per date. */
    store_break_op_t *ops = calloc(BREAKS, sizeof(*ops));
    model_break_t *all = calloc(BREAKS, sizeof(*all));
    for (int i = 0; i < BREAKS; i++) {
        int64_t id = 1 + (int64_t)((i * 7919) % 100000);
        ops[i].rec = mk_break(id, 1 + i % PEOPLE, 1, DAY0 + (i * 31) % 9, 10, true, -1);
        all[i] = ops[i].rec;
    }
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, BREAKS), 0);
    for (int i = 0; i < BREAKS; i++)
        assert_int_equal(ops[i].res.rc, 0);
    qsort(all, BREAKS, sizeof(*all), cmp_break_key);

    /* Every row exactly once, in (date, id) order, whatever the page size. */
    store_breaks_query_t q = { .date_from = DAY0, .date_to = DAY0 + 8 };
    check_paging(f, q, 1, all, BREAKS);
    check_paging(f, q, 7, all, BREAKS);
    check_paging(f, q, 100, all, BREAKS);
    check_paging(f, q, BREAKS, all, BREAKS);
    check_paging(f, q, 10000, all, BREAKS);

    /* The range is inclusive at both ends. */
    model_break_t *sub = calloc(BREAKS, sizeof(*sub));
    size_t n_sub = 0;
    for (int i = 0; i < BREAKS; i++)
        if (all[i].date >= DAY0 + 2 && all[i].date <= DAY0 + 4)
            sub[n_sub++] = all[i];
    assert_true(n_sub > 0);
    q = (store_breaks_query_t){ .date_from = DAY0 + 2, .date_to = DAY0 + 4 };
    check_paging(f, q, 13, sub, n_sub);
    /* A keyset point before the range start starts at the range. */
    q.has_after = true;
    q.after_date = DAY0;
    q.after_id = 50;
    q.limit = 10000;
    model_break_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_breaks_list(f->fx.s, f->ta, &q, &list, &n), 0);
    assert_int_equal(n, n_sub);
    free(list);
    q = (store_breaks_query_t){ .date_from = DAY0 + 20, .date_to = DAY0 + 30, .limit = 10 };
    assert_int_equal(store_breaks_list(f->fx.s, f->ta, &q, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);

    /* Person filters: a few people (breaks_by_person) and many (breaks_by_date). */
    int64_t few[] = { 3, 17, 999 };
    n_sub = 0;
    for (int i = 0; i < BREAKS; i++)
        if (all[i].person_id == 3 || all[i].person_id == 17)
            sub[n_sub++] = all[i];
    q = (store_breaks_query_t){ .date_from = DAY0, .date_to = DAY0 + 8, .persons = few,
                                .n_persons = 3 };
    check_paging(f, q, 4, sub, n_sub);
    int64_t many[36];
    for (int i = 0; i < 36; i++)
        many[i] = 1 + 2 * i; /* odd ids, some beyond the 40 people */
    n_sub = 0;
    for (int i = 0; i < BREAKS; i++)
        if (all[i].person_id % 2 == 1)
            sub[n_sub++] = all[i];
    q.persons = many;
    q.n_persons = 36;
    check_paging(f, q, 9, sub, n_sub);
    q.n_persons = 0;
    q.limit = 10;
    assert_int_equal(store_breaks_list(f->fx.s, f->ta, &q, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);

    /* The rows carry every field. */
    q = (store_breaks_query_t){ .date_from = DAY0, .date_to = DAY0 + 8, .limit = 1 };
    assert_int_equal(store_breaks_list(f->fx.s, f->ta, &q, &list, &n), 0);
    assert_int_equal(n, 1);
    model_break_t got;
    assert_int_equal(store_break_get(f->fx.s, f->ta, list[0].id, &got), 0);
    assert_memory_equal(&got, &list[0], sizeof(got));
    assert_true(got.version > 0);
    free(list);

    free(sub);
    free(all);
    free(ops);
}

static void test_definitions_and_people_reads(void **state)
{
    fixture_t *f = *state;
    for (int id = 10; id >= 1; id--) {
        model_definition_t *d = mk_def(id, 5, 50 + id, 20);
        put_def(f, f->ta, d);
        free(d);
    }
    model_definition_t *defs = NULL;
    size_t n = 0;
    assert_int_equal(store_definitions_list(f->fx.s, f->ta, 0, 4, &defs, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(defs[i].id, (int64_t)i + 1);
    model_definition_t *want = mk_def(4, 5, 54, 20);
    want->version = defs[3].version;
    assert_true(model_definition_same(&defs[3], want));
    free(want);
    free(defs);
    assert_int_equal(store_definitions_list(f->fx.s, f->ta, 8, 100, &defs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(defs[0].id, 9);
    assert_int_equal(defs[1].id, 10);
    free(defs);

    model_person_t p1 = mk_person(1, "E-1", "B-1"), p2 = mk_person(2, NULL, NULL),
                   p3 = mk_person(3, "E-3", NULL);
    put_person(f, f->ta, &p1);
    put_person(f, f->ta, &p2);
    put_person(f, f->ta, &p3);
    int64_t ids[] = { 3, 99, 1, 3, 2 };
    model_person_t *people = NULL;
    assert_int_equal(store_people_get_many(f->fx.s, f->ta, ids, 5, &people, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(people[0].id, 1);
    assert_true(model_person_same(&people[0], &p1));
    assert_int_equal(people[1].id, 2);
    assert_int_equal(people[1].n_refs, 0);
    assert_true(model_person_same(&people[2], &p3));
    assert_true(people[2].version > people[0].version);
    free(people);
}

/* ---- change log paging ------------------------------------------------------------ */

static void test_changes_paging(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 2, 1);
    for (int i = 1; i <= 20; i++) {
        model_break_t b = mk_break(i, 1 + i % 2, 1, DAY0 + i, 10, true, -1);
        put_break(f, f->ta, &b);
        if (i % 5 == 0) {
            model_person_t p = mk_person(1, i % 10 ? "x" : "y", NULL);
            put_person(f, f->ta, &p); /* interleaved changes of another collection */
        }
    }
    store_write_result_t r;
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 4, &r), 0);

    uint64_t after = 0, last = 0;
    size_t total = 0;
    for (int guard = 0; guard < 100; guard++) {
        store_change_t *c = NULL;
        size_t n = 0;
        assert_int_equal(store_changes_after(f->fx.s, f->ta, STORE_COLL_BREAKS, after, 3, &c, &n),
                         0);
        assert_true(n <= 3);
        for (size_t i = 0; i < n; i++) {
            assert_true(c[i].version > last);
            assert_int_equal(c[i].collection, STORE_COLL_BREAKS);
            assert_non_null(c[i].body);
            last = c[i].version;
        }
        total += n;
        if (n > 0)
            after = c[n - 1].version;
        store_changes_free(c, n);
        if (n < 3)
            break;
    }
    assert_int_equal(total, 21);
    assert_int_equal(last, tenant_version(f, f->ta));

    size_t n = 0;
    store_change_t *c = changes(f, f->ta, STORE_COLL_PEOPLE, 0, &n);
    assert_int_equal(n, 2 + 4);
    store_changes_free(c, n);
    c = changes(f, f->ta, STORE_COLL_BREAKS, last, &n);
    assert_int_equal(n, 0);
    store_changes_free(c, n);
    assert_int_equal(store_changes_after(f->fx.s, f->ta, (store_collection_t)9, 0, 10, &c, &n),
                     BH_EINVAL);
    store_changes_free(NULL, 0);
}

/* ---- concurrency ------------------------------------------------------------------ */

enum { CC_THREADS = 4, CC_PER_THREAD = 300 };

typedef struct cc_arg {
    fixture_t *f;
    int idx;
    int failures;
    uint64_t versions[CC_PER_THREAD * 2];
    size_t n_versions;
} cc_arg_t;

static void *cc_writer(void *p)
{
    cc_arg_t *a = p;
    for (int i = 0; i < CC_PER_THREAD; i++) {
        model_break_t b = mk_break(1 + a->idx * 100000 + i, 1 + i % 5, 1 + i % 2, DAY0 + i % 30,
                                   i % 90, true, -1);
        store_write_result_t r;
        if (store_break_put(a->f->fx.s, a->f->ta, &b, &r) != 0 || r.rc != 0 ||
            r.outcome != STORE_OUT_CREATED)
            a->failures++;
        else
            a->versions[a->n_versions++] = r.version;
        if (i % 10 == 0) {
            /* A replace as well, and a person update: several collections at once. */
            b.clocked += 1;
            if (store_break_put(a->f->fx.s, a->f->ta, &b, &r) != 0 || r.rc != 0)
                a->failures++;
            else
                a->versions[a->n_versions++] = r.version;
            model_person_t pp = mk_person(10 + a->idx, NULL, NULL);
            char v[16];
            snprintf(v, sizeof(v), "T%d-%d", a->idx, i);
            pp = mk_person(10 + a->idx, v, NULL);
            if (store_person_put(a->f->fx.s, a->f->ta, &pp, &r) != 0 || r.rc != 0)
                a->failures++;
            else
                a->versions[a->n_versions++] = r.version;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrent_puts(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 5, 2);
    uint64_t v0 = tenant_version(f, f->ta);
    int64_t rows0 = change_rows(f, f->ta);

    pthread_t th[CC_THREADS];
    cc_arg_t *args = calloc(CC_THREADS, sizeof(*args));
    for (int i = 0; i < CC_THREADS; i++) {
        args[i].f = f;
        args[i].idx = i;
        assert_int_equal(pthread_create(&th[i], NULL, cc_writer, &args[i]), 0);
    }
    for (int i = 0; i < CC_THREADS; i++)
        pthread_join(th[i], NULL);

    uint64_t *all = calloc(CC_THREADS * CC_PER_THREAD * 2, sizeof(*all));
    size_t n = 0;
    for (int i = 0; i < CC_THREADS; i++) {
        assert_int_equal(args[i].failures, 0);
        /* Each thread saw its own versions rise. */
        for (size_t j = 1; j < args[i].n_versions; j++)
            assert_true(args[i].versions[j] > args[i].versions[j - 1]);
        memcpy(all + n, args[i].versions, args[i].n_versions * sizeof(*all));
        n += args[i].n_versions;
    }
    /* Unique, and with no gap: exactly v0+1 .. v0+n. */
    qsort(all, n, sizeof(*all), cmp_u64);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(all[i], v0 + 1 + i);
    assert_int_equal(tenant_version(f, f->ta), v0 + n);
    assert_int_equal(change_rows(f, f->ta) - rows0, (int64_t)n);
    assert_int_equal(break_rows(f, f->ta), CC_THREADS * CC_PER_THREAD);
    free(all);
    free(args);
}

/* ---- reopen ----------------------------------------------------------------------- */

static void test_reopen(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta, 1, 1);
    model_break_t b = mk_break(1, 1, 1, DAY0, 10, true, -1);
    put_break(f, f->ta, &b);
    uint64_t v = tenant_version(f, f->ta);
    store_close(f->fx.s);
    store_options_t opt = { .clock = &f->fx.clock };
    assert_int_equal(store_open(f->fx.url, &opt, &f->fx.s, NULL), 0);
    int schema = 0;
    assert_int_equal(store_schema_version(f->fx.s, &schema), 0);
    assert_true(schema >= 2);
    assert_int_equal(tenant_version(f, f->ta), v);
    b.clocked = 20;
    assert_int_equal(put_break(f, f->ta, &b).version, v + 1);
}

/* The commit times the delivery engine measures latency from: every version a write
 * committed is known, stamped between the call's start and return; a refused write
 * (a break of a missing person) takes no version and leaves nothing; versions this
 * process never committed, or another tenant's, are 0. The change-log entries are
 * counted per collection in the store's metrics. */
static void test_commit_times(void **state)
{
    fixture_t *f = *state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    model_person_t p1 = mk_person(1, "E1", NULL), p2 = mk_person(2, "E2", NULL);
    store_write_result_t r1 = put_person(f, f->ta, &p1);
    store_write_result_t r2 = put_person(f, f->ta, &p2);
    store_write_result_t rb = put_person(f, f->tb, &p1);
    model_break_t orphan = mk_break(50, 77, 1, DAY0, 30, true, -1);
    store_write_result_t ro;
    assert_int_equal(store_break_put(f->fx.s, f->ta, &orphan, &ro), 0);
    assert_int_not_equal(ro.rc, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;

    uint64_t v[4] = { r1.version, r2.version, r2.version + 1, r2.version + 100 };
    int64_t at[4];
    store_commit_times(f->fx.s, f->ta, v, 4, at);
    assert_true(at[0] >= before && at[0] <= after);
    assert_true(at[1] >= at[0] && at[1] <= after);
    assert_int_equal(at[2], 0); /* the refused break took none */
    assert_int_equal(at[3], 0);
    uint64_t vb = rb.version;
    int64_t atb;
    store_commit_times(f->fx.s, f->tb, &vb, 1, &atb);
    assert_true(atb >= at[1] && atb <= after);
    /* Tenant b's version is not tenant a's. */
    uint64_t va = rb.version + 50;
    store_commit_times(f->fx.s, f->ta, &va, 1, &atb);
    assert_int_equal(atb, 0);

    buf_t out;
    buf_init(&out, 1 << 20);
    assert_int_equal(store_metrics_write(f->fx.s, &out), 0);
    assert_non_null(strstr(buf_cstr(&out),
                           "breakhook_events_created_total{collection=\"people\"} 3\n"));
    assert_non_null(strstr(buf_cstr(&out),
                           "breakhook_events_created_total{collection=\"breaks\"} 0\n"));
    assert_non_null(strstr(buf_cstr(&out), "breakhook_store_call_duration_seconds_count"
                                           "{op=\"person_put\"} 3\n"));
    buf_deinit(&out);
}

/* The first HEARD_LOG calls a subscriber heard, and the last one. */
#define HEARD_LOG 64
typedef struct heard {
    pthread_mutex_t lock;
    int calls;
    int64_t tenant;
    uint64_t version;
    unsigned what;
    struct {
        int64_t tenant;
        uint64_t version;
        unsigned what;
    } log[HEARD_LOG];
} heard_t;

static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    heard_t *h = arg;
    pthread_mutex_lock(&h->lock);
    if (h->calls < HEARD_LOG) {
        h->log[h->calls].tenant = tenant_id;
        h->log[h->calls].version = version;
        h->log[h->calls].what = what;
    }
    h->calls++;
    h->tenant = tenant_id;
    h->version = version;
    h->what = what;
    pthread_mutex_unlock(&h->lock);
}

static heard_t heard_get(heard_t *h)
{
    pthread_mutex_lock(&h->lock);
    heard_t copy = *h;
    pthread_mutex_unlock(&h->lock);
    return copy;
}

/* How many of the logged calls named tenant; *last_i (if given) the last one's index. */
static int heard_of(heard_t *h, int64_t tenant, int *last_i)
{
    pthread_mutex_lock(&h->lock);
    int n = 0;
    for (int i = 0; i < h->calls && i < HEARD_LOG; i++) {
        if (h->log[i].tenant == tenant) {
            n++;
            if (last_i)
                *last_i = i;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* Commit notifications: a write through this store is announced once, with its
 * tenant and version, by the time the write returns; a refused write is not; after
 * unsubscribing, nothing. ("Look everywhere", tenant 0, may come at any time: a
 * back-end that listens to other processes says it when it starts listening.) */
static void test_commit_notifications(void **state)
{
    fixture_t *f = *state;
    heard_t h = { .lock = PTHREAD_MUTEX_INITIALIZER };
    assert_int_equal(store_subscribe(f->fx.s, on_commit, &h), 0);
    model_person_t p = mk_person(1, "E1", NULL);
    store_write_result_t r = put_person(f, f->ta, &p);
    int i = -1;
    assert_int_equal(heard_of(&h, f->ta, &i), 1);
    assert_int_equal(h.log[i].version, r.version);
    assert_int_equal(h.log[i].what, STORE_COMMIT_CHANGES);
    model_break_t orphan = mk_break(50, 77, 1, DAY0, 30, true, -1);
    store_write_result_t ro;
    assert_int_equal(store_break_put(f->fx.s, f->ta, &orphan, &ro), 0);
    assert_int_not_equal(ro.rc, 0);
    assert_int_equal(heard_of(&h, f->ta, NULL), 1);

    store_unsubscribe(f->fx.s, on_commit, &h);
    int before = heard_get(&h).calls;
    model_person_t p3 = mk_person(3, "E3", NULL);
    (void)put_person(f, f->ta, &p3);
    assert_int_equal(heard_get(&h).calls, before);
}

/* A commit by another connection to the same store (another process, as the import
 * CLI beside a server) is announced within the poll interval, by a call made after
 * the write began: "look everywhere" (tenant 0, version 0, both bits), or, from a
 * back-end that says which (PostgreSQL), the tenant with its version. */
static void test_commit_notifications_external(void **state)
{
    fixture_t *f = *state;
    heard_t h = { .lock = PTHREAD_MUTEX_INITIALIZER };
    assert_int_equal(store_subscribe(f->fx.s, on_commit, &h), 0);
    store_t *other = NULL;
    store_options_t opt = { .clock = &f->fx.clock };
    assert_int_equal(store_open(f->fx.url, &opt, &other, NULL), 0);
    model_person_t q = mk_person(2, "E2", NULL);
    store_write_result_t rq;
    int before = heard_get(&h).calls;
    assert_int_equal(store_person_put(other, f->tb, &q, &rq), 0);
    assert_int_equal(rq.rc, 0);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool announced = false;
    while (!announced) {
        pthread_mutex_lock(&h.lock);
        for (int i = before; i < h.calls && i < HEARD_LOG; i++) {
            bool everywhere = h.log[i].tenant == 0 && h.log[i].version == 0 &&
                              h.log[i].what == (STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS);
            bool this_one = h.log[i].tenant == f->tb && h.log[i].version == rq.version &&
                            h.log[i].what == STORE_COMMIT_CHANGES;
            announced = announced || everywhere || this_one;
        }
        pthread_mutex_unlock(&h.lock);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!announced && now.tv_sec - start.tv_sec > 5)
            fail_msg("another connection's commit was not announced within 5 s");
        usleep(10000);
    }
    store_close(other);
    store_unsubscribe(f->fx.s, on_commit, &h);
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_computed_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definition_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_fill_and_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reference_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_uniqueness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_same_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_matches_single_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_keyset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definitions_and_people_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_notifications_external, setup, teardown),
    };
    /* BH_TEST_FILTER=test_batch runs only the tests of that name (cmocka pattern). */
    const char *filter = getenv("BH_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return fx_run_tests("test_contract_data", tests, sizeof(tests) / sizeof(tests[0]));
}
