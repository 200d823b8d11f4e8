/*
 * test_contract_deltas.c: the back-end contract (tests/store/), part 7: delta sync and
 * webhook rollover (#16), through store.h only. A break change's previous date
 * (insert, update, move, definition fan-out, delete, $batch); deltas (start, get,
 * touch and every refusal, the prune of unused ones); the change-log prune keeping
 * what a live delta still needs, and its horizon (store_changes_after answers
 * BH_EGONE below it); a webhook resumed after a version (its backlog pending,
 * BH_ERANGE, BH_EGONE after a prune).
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test;
 * every test writes to two tenants of its own. The prunes act on every tenant, so on
 * a shared store their counts are lower bounds (fixture_store.h).
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "model/model.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY0 20454            /* 2026-01-01 in days since the epoch */
#define HOUR_MS 3600000LL
#define TTL_MS (72 * HOUR_MS)
#define FAR_MS (T0_MS + 1000 * 24 * HOUR_MS) /* a prune horizon past every change */
#define NO_TENANT INT64_MAX                  /* a tenant id no store hands out */

/* The store and two tenants, ta and tb (fixture_store.h). */
typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "delta", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

/* ---- helpers ---------------------------------------------------------------------- */

static uint64_t tenant_version(fixture_t *f, int64_t tenant)
{
    uint64_t v = 0;
    assert_int_equal(store_tenant_version(f->fx.s, tenant, &v), 0);
    return v;
}

static uint64_t put_person(fixture_t *f, int64_t tenant, int64_t id)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

static model_definition_t *mk_def(int64_t id, int32_t min)
{
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = id;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch %lld", (long long)id);
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->paid = 15;
    d->minimum = min;
    d->maximum = 60;
    d->if_not_clocked = 30;
    return d;
}

static store_write_result_t put_def(fixture_t *f, int64_t tenant, int64_t id, int32_t min)
{
    model_definition_t *d = mk_def(id, min);
    store_write_result_t r;
    assert_int_equal(store_definition_put(f->fx.s, tenant, d, &r), 0);
    assert_int_equal(r.rc, 0);
    free(d);
    return r;
}

/* A break of person 1 and definition 1 on date, its duration computed by the store
 * (so a change of the definition's minimum recomputes it). */
static model_break_t mk_break(int64_t id, int32_t date, int32_t clocked)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.person_id = 1;
    b.definition_id = 1;
    b.date = date;
    b.clocked = clocked;
    b.taken = true;
    b.start = 720;
    b.end = 840;
    return b;
}

static uint64_t put_break(fixture_t *f, int64_t tenant, int64_t id, int32_t date, int32_t clocked)
{
    model_break_t b = mk_break(id, date, clocked);
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, tenant, &b, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

/* The one change of coll at version v. */
static store_change_t change_at(fixture_t *f, int64_t tenant, store_collection_t coll,
                                uint64_t v)
{
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(store_changes_after(f->fx.s, tenant, coll, v - 1, 1, &c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].version, v);
    store_change_t out = c[0];
    out.body = NULL;
    store_changes_free(c, n);
    return out;
}

/* How many changes of coll follow `after`; the call's code in *rc. */
static size_t count_after(fixture_t *f, int64_t tenant, store_collection_t coll, uint64_t after,
                          int *rc)
{
    store_change_t *c = NULL;
    size_t n = 0;
    *rc = store_changes_after(f->fx.s, tenant, coll, after, 100000, &c, &n);
    if (*rc != 0) {
        assert_null(c);
        assert_int_equal(n, 0);
    }
    store_changes_free(c, n);
    return n;
}

/* A delta as the API hands it to start: id "<c>" * 32, the client, a range. */
static store_delta_t mk_delta(char c, const char *client, store_collection_t coll,
                              int64_t created_at_ms)
{
    store_delta_t d;
    memset(&d, 0, sizeof(d));
    memset(d.id, c, STORE_DELTA_ID_LEN);
    snprintf(d.client_id, sizeof(d.client_id), "%s", client);
    d.collection = coll;
    if (coll == STORE_COLL_BREAKS) {
        d.date_from = DAY0;
        d.date_to = DAY0 + 30;
    }
    d.created_at_ms = created_at_ms;
    return d;
}

static store_webhook_t mk_webhook(int n, bool resume, uint64_t resume_after)
{
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    fx_webhook_id(w.id, n);
    w.collection = STORE_COLL_DEFINITIONS;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://hooks.example.com/%d", n);
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    w.key_blob_len = 60;
    memset(w.key_blob, 0x5a, w.key_blob_len);
    w.created_at_ms = T0_MS;
    w.valid_until_ms = T0_MS + 30 * 24 * HOUR_MS;
    w.resume = resume;
    w.resume_after = resume_after;
    return w;
}

/* ---- prev_date ---------------------------------------------------------------------- */

/* Every break change carries the date the break had just before it: none for an
 * insert, the old one for an update (moved or not), the unchanged one for a
 * definition fan-out, the last one for a delete. Other collections have none. */
static void test_prev_date(void **state)
{
    fixture_t *f = *state;
    uint64_t vp = put_person(f, f->ta, 1);
    uint64_t vd = put_def(f, f->ta, 1, 10).version;
    assert_false(change_at(f, f->ta, STORE_COLL_PEOPLE, vp).has_prev_date);
    assert_false(change_at(f, f->ta, STORE_COLL_DEFINITIONS, vd).has_prev_date);

    uint64_t v1 = put_break(f, f->ta, 7, DAY0, 15);
    store_change_t c = change_at(f, f->ta, STORE_COLL_BREAKS, v1);
    assert_false(c.has_prev_date);
    assert_int_equal(c.date, DAY0);

    uint64_t v2 = put_break(f, f->ta, 7, DAY0, 20); /* an update in place */
    c = change_at(f, f->ta, STORE_COLL_BREAKS, v2);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0);
    assert_int_equal(c.date, DAY0);

    uint64_t v3 = put_break(f, f->ta, 7, DAY0 + 40, 20); /* a move */
    c = change_at(f, f->ta, STORE_COLL_BREAKS, v3);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0);
    assert_int_equal(c.date, DAY0 + 40);

    /* The fan-out recomputes the break (clocked 20, minimum 10 -> 25). */
    store_write_result_t r = put_def(f, f->ta, 1, 25);
    assert_int_equal(r.fanout, 1);
    c = change_at(f, f->ta, STORE_COLL_BREAKS, r.version + 1);
    assert_int_equal(c.record_id, 7);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0 + 40);
    assert_int_equal(c.date, DAY0 + 40);

    store_write_result_t del;
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 7, &del), 0);
    assert_int_equal(del.rc, 0);
    c = change_at(f, f->ta, STORE_COLL_BREAKS, del.version);
    assert_int_equal(c.type, STORE_CHANGE_DELETE);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0 + 40);
    assert_int_equal(c.date, DAY0 + 40);
}

/* In a $batch, an op on a break an earlier op of the same chunk wrote sees that
 * op's date as the previous one. */
static void test_prev_date_batch(void **state)
{
    fixture_t *f = *state;
    put_person(f, f->ta, 1);
    put_def(f, f->ta, 1, 10);
    store_break_op_t ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].rec = mk_break(9, DAY0 + 1, 15);
    ops[1].rec = mk_break(9, DAY0 + 2, 15);
    ops[2].del = true;
    ops[2].rec.id = 9;
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops[i].res.rc, 0);
    store_change_t c = change_at(f, f->ta, STORE_COLL_BREAKS, ops[0].res.version);
    assert_false(c.has_prev_date);
    c = change_at(f, f->ta, STORE_COLL_BREAKS, ops[1].res.version);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0 + 1);
    assert_int_equal(c.date, DAY0 + 2);
    c = change_at(f, f->ta, STORE_COLL_BREAKS, ops[2].res.version);
    assert_true(c.has_prev_date);
    assert_int_equal(c.prev_date, DAY0 + 2);
}

/* ---- deltas --------------------------------------------------------------------------- */

/* A start takes the tenant's version under the writer, so a change committed after
 * it is above start_version; a second start replaces the client's delta on that
 * collection only; each tenant and client has its own. */
static void test_delta_start_get(void **state)
{
    fixture_t *f = *state;
    put_person(f, f->ta, 1);
    put_person(f, f->ta, 2);
    uint64_t v = tenant_version(f, f->ta);

    store_delta_t d = mk_delta('a', "client-1", STORE_COLL_BREAKS, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), 0);
    assert_int_equal(d.start_version, v);
    assert_int_equal(d.floor_version, v);
    assert_int_equal(d.last_used_at_ms, T0_MS);
    assert_int_equal(d.tenant_id, f->ta);
    assert_true(put_person(f, f->ta, 3) > d.start_version);

    store_delta_t got;
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, &got), 0);
    assert_string_equal(got.id, d.id);
    assert_string_equal(got.client_id, "client-1");
    assert_int_equal(got.tenant_id, f->ta);
    assert_int_equal(got.collection, STORE_COLL_BREAKS);
    assert_int_equal(got.date_from, DAY0);
    assert_int_equal(got.date_to, DAY0 + 30);
    assert_int_equal(got.start_version, v);
    assert_int_equal(got.floor_version, v);
    assert_int_equal(got.created_at_ms, T0_MS);
    assert_int_equal(got.last_used_at_ms, T0_MS);

    /* Not on the other collection, not for another client or tenant. */
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_DEFINITIONS, &got),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-2", STORE_COLL_BREAKS, &got),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_get(f->fx.s, f->tb, "client-1", STORE_COLL_BREAKS, &got),
                     BH_ENOTFOUND);

    /* A definitions delta beside it, then a new breaks delta that replaces the first. */
    store_delta_t dd = mk_delta('b', "client-1", STORE_COLL_DEFINITIONS, T0_MS + 1);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &dd), 0);
    store_delta_t d2 = mk_delta('c', "client-1", STORE_COLL_BREAKS, T0_MS + 2);
    d2.date_from = d2.date_to = DAY0 + 3;
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d2), 0);
    assert_int_equal(d2.start_version, tenant_version(f, f->ta));
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, &got), 0);
    assert_string_equal(got.id, d2.id);
    assert_int_equal(got.date_from, DAY0 + 3);
    assert_int_equal(got.created_at_ms, T0_MS + 2);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_DEFINITIONS, &got),
                     0);
    assert_string_equal(got.id, dd.id);
    assert_int_equal(got.date_from, 0);
}

/* Caller bugs and a missing tenant. */
static void test_delta_start_arguments(void **state)
{
    fixture_t *f = *state;
    store_delta_t d = mk_delta('a', "c", STORE_COLL_BREAKS, T0_MS);
    d.id[STORE_DELTA_ID_LEN - 1] = '\0';
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), BH_EINVAL);
    d = mk_delta('a', "", STORE_COLL_BREAKS, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), BH_EINVAL);
    d = mk_delta('a', "c", STORE_COLL_PEOPLE, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), BH_EINVAL);
    d = mk_delta('a', "c", STORE_COLL_BREAKS, T0_MS);
    d.date_from = d.date_to + 1;
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), BH_EINVAL);
    d = mk_delta('a', "c", STORE_COLL_BREAKS, 0);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), BH_EINVAL);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, NULL), BH_EINVAL);
    d = mk_delta('a', "c", STORE_COLL_BREAKS, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, NO_TENANT, &d), BH_ENOTFOUND);
    store_delta_t got;
    assert_int_equal(store_delta_get(f->fx.s, NO_TENANT, "c", STORE_COLL_BREAKS, &got),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "c", STORE_COLL_PEOPLE, &got), BH_EINVAL);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "", STORE_COLL_BREAKS, &got), BH_ENOTFOUND);
}

/* A follow-up's touch moves the floor and the last use of the client's active
 * delta, and refuses, changing nothing, a replaced delta (BH_ECONFLICT), an expired
 * one (BH_EGONE; the expiry is "last used at or before now - ttl") and a missing
 * one (BH_ENOTFOUND). */
static void test_delta_touch(void **state)
{
    fixture_t *f = *state;
    put_person(f, f->ta, 1);
    store_delta_t d = mk_delta('a', "client-1", STORE_COLL_BREAKS, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), 0);
    put_person(f, f->ta, 2);
    uint64_t v = tenant_version(f, f->ta);

    store_delta_t out;
    int64_t now = T0_MS + HOUR_MS;
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d.id, v,
                                       now, TTL_MS, &out),
                     0);
    assert_string_equal(out.id, d.id);
    assert_int_equal(out.floor_version, v);
    assert_int_equal(out.last_used_at_ms, now);
    assert_int_equal(out.start_version, d.start_version);
    store_delta_t got;
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, &got), 0);
    assert_int_equal(got.floor_version, v);
    assert_int_equal(got.last_used_at_ms, now);
    /* out may be NULL; the last moment before expiry still counts. */
    int64_t last_ok = now + TTL_MS - 1;
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d.id, v,
                                       last_ok, TTL_MS, NULL),
                     0);

    /* Expired: last used exactly ttl ago. */
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d.id,
                                       v + 1, last_ok + TTL_MS, TTL_MS, &out),
                     BH_EGONE);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, &got), 0);
    assert_int_equal(got.last_used_at_ms, last_ok);
    assert_int_equal(got.floor_version, v);

    /* Missing: another client, another collection, another tenant. */
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-2", STORE_COLL_BREAKS, d.id, v,
                                       now, TTL_MS, &out),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_DEFINITIONS, d.id,
                                       v, now, TTL_MS, &out),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_touch(f->fx.s, f->tb, "client-1", STORE_COLL_BREAKS, d.id, v,
                                       now, TTL_MS, &out),
                     BH_ENOTFOUND);

    /* Replaced: the old id conflicts, expired or not; the new one is served. */
    store_delta_t d2 = mk_delta('b', "client-1", STORE_COLL_BREAKS, now);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d2), 0);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d.id, v,
                                       now + 1, TTL_MS, &out),
                     BH_ECONFLICT);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d.id, v,
                                       now + 10 * TTL_MS, TTL_MS, &out),
                     BH_ECONFLICT);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, &got), 0);
    assert_string_equal(got.id, d2.id);
    assert_int_equal(got.last_used_at_ms, now);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d2.id, v,
                                       now + 1, TTL_MS, &out),
                     0);

    /* Caller bugs: an id of the wrong length, times, a collection without deltas. */
    char short_id[STORE_DELTA_ID_LEN];
    memset(short_id, 'b', sizeof(short_id) - 1);
    short_id[sizeof(short_id) - 1] = '\0';
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, short_id,
                                       v, now, TTL_MS, &out),
                     BH_EINVAL);
    char long_id[STORE_DELTA_ID_LEN + 2];
    memset(long_id, 'b', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, long_id,
                                       v, now, TTL_MS, &out),
                     BH_EINVAL);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d2.id, v,
                                       now, 0, &out),
                     BH_EINVAL);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_BREAKS, d2.id, v,
                                       0, TTL_MS, &out),
                     BH_EINVAL);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_PEOPLE, d2.id, v,
                                       now, TTL_MS, &out),
                     BH_EINVAL);
}

/* Deltas unused since before the cut go, of every tenant; a touch of one then finds
 * nothing. */
static void test_deltas_prune(void **state)
{
    fixture_t *f = *state;
    store_delta_t old = mk_delta('a', "old", STORE_COLL_BREAKS, T0_MS);
    store_delta_t recent = mk_delta('b', "recent", STORE_COLL_BREAKS, T0_MS + 10 * HOUR_MS);
    store_delta_t other = mk_delta('c', "old", STORE_COLL_DEFINITIONS, T0_MS + HOUR_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &old), 0);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &recent), 0);
    assert_int_equal(store_delta_start(f->fx.s, f->tb, &other), 0);

    size_t n = 0;
    assert_int_equal(store_deltas_prune(f->fx.s, T0_MS, &n), 0); /* strictly before */
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "old", STORE_COLL_BREAKS, &old), 0);
    assert_int_equal(store_deltas_prune(f->fx.s, T0_MS + 5 * HOUR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 2);
    store_delta_t got;
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "old", STORE_COLL_BREAKS, &got),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_get(f->fx.s, f->tb, "old", STORE_COLL_DEFINITIONS, &got),
                     BH_ENOTFOUND);
    assert_int_equal(store_delta_get(f->fx.s, f->ta, "recent", STORE_COLL_BREAKS, &got), 0);
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "old", STORE_COLL_BREAKS, old.id, 0,
                                       T0_MS + 6 * HOUR_MS, TTL_MS, NULL),
                     BH_ENOTFOUND);

    assert_int_equal(store_deltas_prune(f->fx.s, 0, &n), BH_EINVAL);
    assert_int_equal(store_deltas_prune(f->fx.s, T0_MS, NULL), BH_EINVAL);
}

/* ---- the prune and its horizon ---------------------------------------------------------- */

/* The prune keeps every change above a live delta's floor; its horizon is the highest
 * version it deleted, below which store_changes_after answers BH_EGONE (at it, the
 * changes after it); once the delta moves on or is pruned, its changes go too. */
static void test_prune_keeps_delta_floor(void **state)
{
    fixture_t *f = *state;
    uint64_t v[8];
    for (int i = 0; i < 3; i++)
        v[i] = put_person(f, f->ta, i + 1);
    store_delta_t d = mk_delta('a', "client-1", STORE_COLL_DEFINITIONS, T0_MS);
    assert_int_equal(store_delta_start(f->fx.s, f->ta, &d), 0);
    assert_int_equal(d.floor_version, v[2]);
    for (int i = 3; i < 8; i++)
        v[i] = put_person(f, f->ta, i + 1);

    int rc = 0;
    size_t n = 0;
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, 0, &rc), 8);
    assert_int_equal(rc, 0);
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 3);
    count_after(f, f->ta, STORE_COLL_PEOPLE, 0, &rc);
    assert_int_equal(rc, BH_EGONE);
    count_after(f, f->ta, STORE_COLL_PEOPLE, v[2] - 1, &rc);
    assert_int_equal(rc, BH_EGONE);
    /* Every collection of the tenant shares the horizon. */
    count_after(f, f->ta, STORE_COLL_BREAKS, 0, &rc);
    assert_int_equal(rc, BH_EGONE);
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, v[2], &rc), 5);
    assert_int_equal(rc, 0);

    /* A follow-up served up to v[5]: the prune may take what it passed. */
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_DEFINITIONS, d.id,
                                       v[5], T0_MS + HOUR_MS, TTL_MS, NULL),
                     0);
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 3);
    count_after(f, f->ta, STORE_COLL_PEOPLE, v[4], &rc);
    assert_int_equal(rc, BH_EGONE);
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, v[5], &rc), 2);
    assert_int_equal(rc, 0);

    /* A client that re-sends an older token moves the floor back: what is gone stays
     * gone, what is left stays. */
    assert_int_equal(store_delta_touch(f->fx.s, f->ta, "client-1", STORE_COLL_DEFINITIONS, d.id,
                                       v[3], T0_MS + 2 * HOUR_MS, TTL_MS, NULL),
                     0);
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, v[5], &rc), 2);

    /* The delta unused for the TTL is pruned; then nothing holds the log back. */
    assert_int_equal(store_deltas_prune(f->fx.s, T0_MS + 3 * HOUR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 1);
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 2);
    count_after(f, f->ta, STORE_COLL_PEOPLE, v[6], &rc);
    assert_int_equal(rc, BH_EGONE);
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, v[7], &rc), 0);
    assert_int_equal(rc, 0);
    /* The other tenant had nothing pruned: reading from 0 is fine there. */
    count_after(f, f->tb, STORE_COLL_PEOPLE, 0, &rc);
    assert_int_equal(rc, 0);
    /* Versions go on; the new change is read from the horizon. */
    uint64_t v9 = put_person(f, f->ta, 9);
    assert_int_equal(v9, v[7] + 1);
    assert_int_equal(count_after(f, f->ta, STORE_COLL_PEOPLE, v[7], &rc), 1);
}

/* ---- webhook rollover ------------------------------------------------------------------ */

/* A webhook created with resume_after delivers every change after it: its window
 * starts there, so that many events are pending at once. Reads show resume unset. */
static void test_webhook_resume(void **state)
{
    fixture_t *f = *state;
    uint64_t v[5];
    for (int i = 0; i < 5; i++)
        v[i] = put_def(f, f->ta, i + 1, 10).version;
    put_person(f, f->ta, 1); /* another collection: not the webhook's */
    uint64_t last = tenant_version(f, f->ta);

    store_webhook_t w = mk_webhook(1, true, v[1]);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 10), 0);
    assert_int_equal(w.from_version, v[1]);
    uint64_t count = 0, oldest = 0;
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, w.id, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 3);
    assert_int_equal(oldest, v[2]);
    store_webhook_t got;
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, w.id, &got), 0);
    assert_int_equal(got.from_version, v[1]);
    assert_false(got.resume);
    assert_int_equal(got.resume_after, 0);

    /* At the tenant's last version: nothing pending; after it: out of range. */
    store_webhook_t now = mk_webhook(2, true, last);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &now, 10), 0);
    assert_int_equal(now.from_version, last);
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, now.id, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 0);
    store_webhook_t ahead = mk_webhook(3, true, last + 1);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &ahead, 10), BH_ERANGE);
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, ahead.id, &got), BH_ENOTFOUND);
    /* Another tenant's versions do not count: tb has none. */
    store_webhook_t elsewhere = mk_webhook(4, true, 1);
    assert_int_equal(store_webhook_create(f->fx.s, f->tb, &elsewhere, 10), BH_ERANGE);
    /* Without resume, resume_after is ignored. */
    store_webhook_t plain = mk_webhook(5, false, 1);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &plain, 10), 0);
    assert_int_equal(plain.from_version, last);
}

/* After a prune, a resume from below the horizon is refused (its changes are gone);
 * from the horizon on it is accepted, and then holds the log back like any webhook. */
static void test_webhook_resume_after_prune(void **state)
{
    fixture_t *f = *state;
    uint64_t v[6];
    for (int i = 0; i < 4; i++)
        v[i] = put_def(f, f->ta, i + 1, 10).version;
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 4);

    store_webhook_t w = mk_webhook(1, true, v[2]);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 10), BH_EGONE);
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, w.id, &w), BH_ENOTFOUND);

    /* Newer changes; resuming at the horizon gets every one of them. */
    v[4] = put_def(f, f->ta, 5, 10).version;
    v[5] = put_def(f, f->ta, 6, 10).version;
    w = mk_webhook(1, true, v[3]);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 10), 0);
    uint64_t count = 0, oldest = 0;
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, w.id, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 2);
    assert_int_equal(oldest, v[4]);
    assert_int_equal(store_changes_prune(f->fx.s, FAR_MS, &n), 0);
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, w.id, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 2);
    int rc = 0;
    assert_int_equal(count_after(f, f->ta, STORE_COLL_DEFINITIONS, v[3], &rc), 2);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prev_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prev_date_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_start_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_start_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deltas_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_delta_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_resume_after_prune, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
