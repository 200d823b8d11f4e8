/*
 * test_contract_webhooks.c: the back-end contract (tests/store/), part 3: webhooks
 * through store.h only. Create (the written-back window start, every BH_EINVAL, the
 * duplicate, the cap of Enabled ones with expired ones not counted), get and list
 * (filters, keyset paging, expiry as a reader sees it before any sweep), disable
 * (first reason wins, an expired one stays Expired), the expiry sweep, tenant scoping,
 * and the outbox rule: a webhook's window (from_version, until_version] and
 * committed_at_ms < valid_until holds exactly the changes committed while it was
 * Enabled, one pending event each, also while webhooks are created concurrently with
 * writes.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test;
 * every test writes to two tenants of its own. What the SQLite file holds after a
 * migration is checked in tests/unit/test_store_sqlite.c.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "model/model.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY0 20454            /* 2026-01-01 in days since the epoch */
#define DAY_MS 86400000LL
#define CAP 100               /* max_enabled where the test is not about the cap */
#define NO_TENANT INT64_MAX   /* a tenant id no store hands out */

/* The store and two tenants, ta and tb (fixture_store.h). */
typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "wh", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

/* ---- helpers ---------------------------------------------------------------------- */

/* Raises webhook n's watermark to version, as the delivery engine does. */
static void mark_delivered(fixture_t *f, int64_t tenant, int n, uint64_t version)
{
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, n);
    struct store_watermark m = { .tenant_id = tenant, .webhook_id = id, .version = version };
    store_delivery_batch_t b = { .marks = &m, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
}

/* A webhook as the API hands it to create: valid for 30 days from T0. */
static store_webhook_t mk_webhook(int n, store_collection_t coll)
{
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    fx_webhook_id(w.id, n);
    w.collection = coll;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://hooks.example.com/%d", n);
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[\"@employee-number\"]");
    w.key_blob_len = 60;
    for (size_t i = 0; i < w.key_blob_len; i++)
        w.key_blob[i] = (unsigned char)(n * 7 + (int)i);
    w.created_at_ms = T0_MS;
    w.valid_until_ms = T0_MS + 30 * DAY_MS;
    /* The store owns these: whatever the caller leaves here is ignored. */
    w.status = STORE_WH_DISABLED;
    w.reason = STORE_WH_DELETED;
    w.from_version = 999;
    w.until_version = 999;
    w.last_delivered_version = 999;
    return w;
}

static store_webhook_t create(fixture_t *f, int64_t tenant, int n, store_collection_t coll)
{
    store_webhook_t w = mk_webhook(n, coll);
    assert_int_equal(store_webhook_create(f->fx.s, tenant, &w, CAP), 0);
    return w;
}

static store_webhook_t get(fixture_t *f, int64_t tenant, int n)
{
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, n);
    store_webhook_t w;
    assert_int_equal(store_webhook_get(f->fx.s, tenant, id, &w), 0);
    return w;
}

static int disable(fixture_t *f, int64_t tenant, int n, store_webhook_reason_t reason,
                   int64_t now_ms)
{
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, n);
    return store_webhook_disable(f->fx.s, tenant, id, reason, now_ms);
}

/* Pending count of webhook n at now_ms; *oldest (if given) the oldest version. */
static uint64_t pending(fixture_t *f, int64_t tenant, int n, int64_t now_ms, uint64_t *oldest)
{
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, n);
    uint64_t count = 99999, old = 99999;
    assert_int_equal(store_webhook_pending(f->fx.s, tenant, id, now_ms, &count, &old), 0);
    if (oldest)
        *oldest = old;
    return count;
}

static uint64_t tenant_version(fixture_t *f, int64_t tenant)
{
    uint64_t v = 0;
    assert_int_equal(store_tenant_version(f->fx.s, tenant, &v), 0);
    return v;
}

/* The number wh_id encoded in id. */
static int id_num(const char *id)
{
    assert_int_equal(strlen(id), STORE_WEBHOOK_ID_LEN);
    return (int)strtol(id + 24, NULL, 10);
}

/* The ids (as numbers) of a list answer, for comparing with an expected order. */
static size_t list_ids(fixture_t *f, int64_t tenant, int status, store_collection_t coll,
                       const char *after, size_t limit, int64_t now_ms, int *ids,
                       store_webhook_t **rows)
{
    store_webhook_query_t q = { status, coll, after, limit, now_ms };
    store_webhook_t *w = NULL;
    size_t n = 0;
    assert_int_equal(store_webhooks_list(f->fx.s, tenant, &q, &w, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(w[i].tenant_id, tenant);
        ids[i] = id_num(w[i].id);
    }
    if (rows)
        *rows = w;
    else
        free(w);
    return n;
}

/* ---- breaks data helpers ---------------------------------------------------------- */

static model_definition_t *mk_def(int64_t id, const char *name)
{
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = id;
    snprintf(d->name.def, sizeof(d->name.def), "%s", name);
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->paid = 15;
    d->minimum = 10;
    d->maximum = 60;
    d->if_not_clocked = 30;
    return d;
}

static model_break_t mk_break(int64_t id, int32_t clocked)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.person_id = 1;
    b.definition_id = 1;
    b.date = DAY0 + (int32_t)(id % 30);
    b.clocked = clocked;
    b.taken = true;
    b.start = 720;
    b.end = 840;
    return b;
}

/* Person 1 and definition 1 "Lunch": two changes. */
static void seed(fixture_t *f, int64_t tenant)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    model_definition_t *d = mk_def(1, "Lunch");
    assert_int_equal(store_definition_put(f->fx.s, tenant, d, &r), 0);
    assert_int_equal(r.rc, 0);
    free(d);
}

/* A new version of break id; returns it. */
static uint64_t put_break(fixture_t *f, int64_t tenant, int64_t id, int32_t clocked)
{
    model_break_t b = mk_break(id, clocked);
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, tenant, &b, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.version > 0);
    return r.version;
}

/* Break changes after `after` in the change log. */
static size_t break_changes_after(fixture_t *f, int64_t tenant, uint64_t after,
                                  uint64_t *first)
{
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(store_changes_after(f->fx.s, tenant, STORE_COLL_BREAKS, after, 10000000, &c,
                                         &n),
                     0);
    if (first)
        *first = n ? c[0].version : 0;
    store_changes_free(c, n);
    return n;
}

/* ---- create and get --------------------------------------------------------------- */

static void test_create_get(void **state)
{
    fixture_t *f = *state;
    store_webhook_t w = create(f, f->ta, 1, STORE_COLL_BREAKS);
    /* Written back: Enabled, from the tenant's version (0: nothing written yet). */
    assert_int_equal(w.status, STORE_WH_ENABLED);
    assert_int_equal(w.reason, STORE_WH_REASON_NONE);
    assert_int_equal(w.from_version, 0);
    assert_int_equal(w.until_version, 0);
    assert_int_equal(w.last_delivered_version, 0);
    assert_int_equal(w.tenant_id, f->ta);

    seed(f, f->ta);
    put_break(f, f->ta, 1, 20);
    uint64_t v = tenant_version(f, f->ta);
    assert_int_equal(v, 3);
    store_webhook_t w2 = create(f, f->ta, 2, STORE_COLL_DEFINITIONS);
    assert_int_equal(w2.from_version, v);

    store_webhook_t g = get(f, f->ta, 2);
    store_webhook_t want = mk_webhook(2, STORE_COLL_DEFINITIONS);
    assert_string_equal(g.id, want.id);
    assert_int_equal(g.tenant_id, f->ta);
    assert_int_equal(g.collection, STORE_COLL_DEFINITIONS);
    assert_string_equal(g.destination_url, want.destination_url);
    assert_string_equal(g.ext_refs, want.ext_refs);
    assert_int_equal(g.key_blob_len, want.key_blob_len);
    assert_memory_equal(g.key_blob, want.key_blob, want.key_blob_len);
    assert_int_equal(g.created_at_ms, T0_MS);
    assert_int_equal(g.valid_until_ms, T0_MS + 30 * DAY_MS);
    assert_int_equal(g.status, STORE_WH_ENABLED);
    assert_int_equal(g.reason, STORE_WH_REASON_NONE);
    assert_int_equal(g.disabled_at_ms, 0);
    assert_int_equal(g.from_version, v);
    assert_int_equal(g.until_version, 0);
    assert_int_equal(g.last_delivered_version, 0);
    assert_int_equal(g.last_success_at_ms, 0);
    assert_int_equal(g.last_failure_at_ms, 0);

    /* Missing, malformed, other tenant's. */
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 3);
    store_webhook_t out;
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, id, &out), BH_ENOTFOUND);
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, "short", &out), BH_ENOTFOUND);
    assert_int_equal(store_webhook_get(f->fx.s, 0, w.id, &out), BH_ENOTFOUND);
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, NULL, &out), BH_EINVAL);
}

static void test_create_invalid(void **state)
{
    fixture_t *f = *state;
    store_webhook_t w;

    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.id[35] = '\0';
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    memset(w.id, 'a', sizeof(w.id)); /* no NUL inside the field */
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_PEOPLE);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, (store_collection_t)0);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.destination_url[0] = '\0';
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    memset(w.destination_url, 'h', sizeof(w.destination_url));
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.key_blob_len = 0;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.key_blob_len = STORE_KEY_BLOB_MAX + 1;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.valid_until_ms = w.created_at_ms;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.created_at_ms = -1;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EINVAL);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, NULL, CAP), BH_EINVAL);
    int ids[4];
    assert_int_equal(list_ids(f, f->ta, -1, 0, NULL, 100, T0_MS, ids, NULL), 0);

    /* A tenant that does not exist. */
    w = mk_webhook(1, STORE_COLL_BREAKS);
    assert_int_equal(store_webhook_create(f->fx.s, 0, &w, CAP), BH_ENOTFOUND);
    assert_int_equal(store_webhook_create(f->fx.s, NO_TENANT, &w, CAP), BH_ENOTFOUND);

    /* The edges that are fine: a full-size URL and key, a 1 ms validity. */
    w = mk_webhook(1, STORE_COLL_BREAKS);
    memset(w.destination_url, 'h', STORE_URL_MAX);
    w.destination_url[STORE_URL_MAX] = '\0';
    w.key_blob_len = STORE_KEY_BLOB_MAX;
    w.valid_until_ms = w.created_at_ms + 1;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), 0);
    store_webhook_t g = get(f, f->ta, 1);
    assert_int_equal(strlen(g.destination_url), STORE_URL_MAX);
    assert_int_equal(g.key_blob_len, STORE_KEY_BLOB_MAX);
    assert_memory_equal(g.key_blob, w.key_blob, STORE_KEY_BLOB_MAX);
}

static void test_duplicate(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, STORE_COLL_BREAKS);
    store_webhook_t w = mk_webhook(1, STORE_COLL_DEFINITIONS);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EEXIST);
    /* The first one is untouched. */
    assert_int_equal(get(f, f->ta, 1).collection, STORE_COLL_BREAKS);
    /* Ids are scoped by tenant like everything else. */
    assert_int_equal(store_webhook_create(f->fx.s, f->tb, &w, CAP), 0);
    assert_int_equal(get(f, f->tb, 1).collection, STORE_COLL_DEFINITIONS);
    /* A duplicate of a Disabled one is still a duplicate. */
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_DELETED, T0_MS + 1), 0);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), BH_EEXIST);
}

/* ---- the cap ---------------------------------------------------------------------- */

static void test_cap(void **state)
{
    fixture_t *f = *state;
    store_webhook_t w;

    /* 1 expires at T0 + 1000; 2 and 3 last 30 days. */
    w = mk_webhook(1, STORE_COLL_BREAKS);
    w.valid_until_ms = T0_MS + 1000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), 0);
    w = mk_webhook(2, STORE_COLL_BREAKS);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), 0);
    w = mk_webhook(3, STORE_COLL_DEFINITIONS);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), 0);

    /* Full: both collections count. */
    w = mk_webhook(4, STORE_COLL_BREAKS);
    w.created_at_ms = T0_MS + 999;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), BH_ECONFLICT);
    /* Tenant B has its own count. */
    assert_int_equal(store_webhook_create(f->fx.s, f->tb, &w, 3), 0);

    /* At valid_until, 1 no longer counts, although the sweep has not marked it. */
    w.created_at_ms = T0_MS + 1000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), 0);
    int ids[8];
    assert_int_equal(list_ids(f, f->ta, STORE_WH_ENABLED, 0, NULL, 100, T0_MS, ids, NULL), 4);
    w = mk_webhook(5, STORE_COLL_BREAKS);
    w.created_at_ms = T0_MS + 2000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), BH_ECONFLICT);

    /* A Disabled one frees its place. */
    assert_int_equal(disable(f, f->ta, 2, STORE_WH_DELETED, T0_MS + 2000), 0);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), 0);
    w = mk_webhook(6, STORE_COLL_BREAKS);
    w.created_at_ms = T0_MS + 2000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, 3), BH_ECONFLICT);

    /* A refused create wrote nothing. */
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 6);
    store_webhook_t out;
    assert_int_equal(store_webhook_get(f->fx.s, f->ta, id, &out), BH_ENOTFOUND);
    /* max_enabled 0 allows none. */
    assert_int_equal(store_webhook_create(f->fx.s, f->tb, &w, 0), BH_ECONFLICT);
}

/* ---- list ------------------------------------------------------------------------- */

static void assert_ids(const int *got, size_t n, const int *want, size_t n_want)
{
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_list(void **state)
{
    fixture_t *f = *state;
    int ids[64];
    int64_t now = T0_MS + 5000;

    /* Created out of id order. Breaks: 1 3 5 7 9; definitions: 2 4 6 8 10.
     * 3 and 8 are disabled; 5 and 6 have expired by `now` but are Enabled in the
     * table; 9 expires exactly at `now`. */
    int order[] = { 7, 2, 10, 1, 5, 9, 3, 8, 4, 6 };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int n = order[i];
        store_webhook_t w = mk_webhook(n, n % 2 ? STORE_COLL_BREAKS : STORE_COLL_DEFINITIONS);
        if (n == 5 || n == 6)
            w.valid_until_ms = T0_MS + 1000;
        if (n == 9)
            w.valid_until_ms = now;
        assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), 0);
    }
    assert_int_equal(disable(f, f->ta, 3, STORE_WH_DELETED, T0_MS + 10), 0);
    assert_int_equal(disable(f, f->ta, 8, STORE_WH_DESTINATION_GONE, T0_MS + 20), 0);
    create(f, f->tb, 11, STORE_COLL_BREAKS); /* another tenant's: never listed for A */

    const int all[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    size_t n = list_ids(f, f->ta, -1, 0, NULL, 100, now, ids, NULL);
    assert_ids(ids, n, all, 10);

    const int enabled[] = { 1, 2, 4, 7, 10 };
    n = list_ids(f, f->ta, STORE_WH_ENABLED, 0, NULL, 100, now, ids, NULL);
    assert_ids(ids, n, enabled, 5);

    const int disabled[] = { 3, 5, 6, 8, 9 };
    store_webhook_t *rows = NULL;
    n = list_ids(f, f->ta, STORE_WH_DISABLED, 0, NULL, 100, now, ids, &rows);
    assert_ids(ids, n, disabled, 5);
    /* The read is what a client sees: expired ones are Disabled/Expired since
     * valid_until; disabled ones keep their reason and time. */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].status, STORE_WH_DISABLED);
        int k = ids[i];
        if (k == 3 || k == 8) {
            assert_int_equal(rows[i].reason, k == 3 ? STORE_WH_DELETED
                                                    : STORE_WH_DESTINATION_GONE);
            assert_int_equal(rows[i].disabled_at_ms, T0_MS + (k == 3 ? 10 : 20));
        } else {
            assert_int_equal(rows[i].reason, STORE_WH_EXPIRED);
            assert_int_equal(rows[i].disabled_at_ms, rows[i].valid_until_ms);
        }
    }
    free(rows);

    /* Any status: the same rows show their status as of now. */
    n = list_ids(f, f->ta, -1, 0, NULL, 100, now, ids, &rows);
    for (size_t i = 0; i < n; i++) {
        bool en = ids[i] == 1 || ids[i] == 2 || ids[i] == 4 || ids[i] == 7 || ids[i] == 10;
        assert_int_equal(rows[i].status, en ? STORE_WH_ENABLED : STORE_WH_DISABLED);
        assert_int_equal(rows[i].reason == STORE_WH_REASON_NONE, en);
    }
    free(rows);
    /* Earlier, 5, 6 and 9 were Enabled. */
    const int enabled_t0[] = { 1, 2, 4, 5, 6, 7, 9, 10 };
    n = list_ids(f, f->ta, STORE_WH_ENABLED, 0, NULL, 100, T0_MS, ids, NULL);
    assert_ids(ids, n, enabled_t0, 8);
    const int disabled_t0[] = { 3, 8 };
    n = list_ids(f, f->ta, STORE_WH_DISABLED, 0, NULL, 100, T0_MS, ids, NULL);
    assert_ids(ids, n, disabled_t0, 2);

    /* Collection filters, alone and with a status. */
    const int breaks[] = { 1, 3, 5, 7, 9 };
    n = list_ids(f, f->ta, -1, STORE_COLL_BREAKS, NULL, 100, now, ids, NULL);
    assert_ids(ids, n, breaks, 5);
    const int defs_disabled[] = { 6, 8 };
    n = list_ids(f, f->ta, STORE_WH_DISABLED, STORE_COLL_DEFINITIONS, NULL, 100, now, ids,
                 NULL);
    assert_ids(ids, n, defs_disabled, 2);
    const int breaks_enabled[] = { 1, 7 };
    n = list_ids(f, f->ta, STORE_WH_ENABLED, STORE_COLL_BREAKS, NULL, 100, now, ids, NULL);
    assert_ids(ids, n, breaks_enabled, 2);
    n = list_ids(f, f->ta, -1, STORE_COLL_PEOPLE, NULL, 100, now, ids, NULL);
    assert_int_equal(n, 0);

    /* Keyset paging, page sizes 1..4, for every filter: the pages add up to the
     * whole list, in order, without repeats. */
    struct {
        int status;
        store_collection_t coll;
        const int *want;
        size_t n;
    } cases[] = {
        { -1, 0, all, 10 },
        { STORE_WH_ENABLED, 0, enabled, 5 },
        { STORE_WH_DISABLED, 0, disabled, 5 },
        { -1, STORE_COLL_BREAKS, breaks, 5 },
        { STORE_WH_DISABLED, STORE_COLL_DEFINITIONS, defs_disabled, 2 },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t page = 1; page <= 4; page++) {
            int got[64];
            size_t total = 0;
            char after[STORE_WEBHOOK_ID_LEN + 1] = "";
            for (int guard = 0; guard < 20; guard++) {
                int pg[8];
                size_t k = list_ids(f, f->ta, cases[c].status, cases[c].coll,
                                    total ? after : NULL, page, now, pg, NULL);
                assert_true(k <= page);
                memcpy(got + total, pg, k * sizeof(int));
                total += k;
                if (k < page)
                    break;
                fx_webhook_id(after, pg[k - 1]);
            }
            assert_ids(got, total, cases[c].want, cases[c].n);
        }
    }

    /* Arguments. */
    store_webhook_query_t q = { 5, 0, NULL, 10, now };
    store_webhook_t *w = NULL;
    assert_int_equal(store_webhooks_list(f->fx.s, f->ta, &q, &w, &n), BH_EINVAL);
    q.status = -1;
    q.collection = (store_collection_t)7;
    assert_int_equal(store_webhooks_list(f->fx.s, f->ta, &q, &w, &n), BH_EINVAL);
    q.collection = 0;
    q.after_id = "00000000-0000-4000-8000-0000000000001"; /* 37 characters */
    assert_int_equal(store_webhooks_list(f->fx.s, f->ta, &q, &w, &n), BH_EINVAL);
    q.after_id = NULL;
    q.limit = 0;
    assert_int_equal(store_webhooks_list(f->fx.s, f->ta, &q, &w, &n), 0);
    assert_int_equal(n, 0);
    assert_null(w);
}

/* ---- tenant isolation ------------------------------------------------------------- */

static void test_tenant_isolation(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    store_webhook_t a = create(f, f->ta, 1, STORE_COLL_BREAKS);
    put_break(f, f->ta, 1, 20);

    store_webhook_t out;
    assert_int_equal(store_webhook_get(f->fx.s, f->tb, a.id, &out), BH_ENOTFOUND);
    int ids[8];
    assert_int_equal(list_ids(f, f->tb, -1, 0, NULL, 100, T0_MS, ids, NULL), 0);
    assert_int_equal(list_ids(f, f->tb, STORE_WH_ENABLED, 0, NULL, 100, T0_MS, ids, NULL), 0);
    assert_int_equal(list_ids(f, f->tb, STORE_WH_DISABLED, 0, NULL, 100, T0_MS + 40 * DAY_MS,
                              ids, NULL),
                     0);
    assert_int_equal(store_webhook_disable(f->fx.s, f->tb, a.id, STORE_WH_DELETED, T0_MS + 1),
                     BH_ENOTFOUND);
    uint64_t count = 7, oldest = 7;
    assert_int_equal(store_webhook_pending(f->fx.s, f->tb, a.id, T0_MS, &count, &oldest),
                     BH_ENOTFOUND);

    /* A is untouched, and B's writes are not A's events. */
    seed(f, f->tb);
    put_break(f, f->tb, 1, 20);
    put_break(f, f->tb, 2, 20);
    store_webhook_t g = get(f, f->ta, 1);
    assert_int_equal(g.status, STORE_WH_ENABLED);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, NULL), 1);
    assert_int_equal(list_ids(f, f->ta, -1, 0, NULL, 100, T0_MS, ids, NULL), 1);
    /* B's webhook of the same id sees B's break changes only. */
    create(f, f->tb, 1, STORE_COLL_BREAKS);
    put_break(f, f->tb, 3, 20);
    assert_int_equal(pending(f, f->tb, 1, T0_MS, NULL), 1);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, NULL), 1);
}

/* ---- disable and expire ----------------------------------------------------------- */

static void test_disable(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    create(f, f->ta, 1, STORE_COLL_BREAKS);
    put_break(f, f->ta, 1, 20);
    uint64_t v = tenant_version(f, f->ta);

    assert_int_equal(disable(f, f->ta, 1, STORE_WH_DELETED, T0_MS + 100), 0);
    store_webhook_t g = get(f, f->ta, 1);
    assert_int_equal(g.status, STORE_WH_DISABLED);
    assert_int_equal(g.reason, STORE_WH_DELETED);
    assert_int_equal(g.disabled_at_ms, T0_MS + 100);
    assert_int_equal(g.until_version, v);

    /* Disabled stays disabled with its first reason and time. */
    put_break(f, f->ta, 2, 20);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_RETRIES_EXHAUSTED, T0_MS + 200), 0);
    g = get(f, f->ta, 1);
    assert_int_equal(g.reason, STORE_WH_DELETED);
    assert_int_equal(g.disabled_at_ms, T0_MS + 100);
    assert_int_equal(g.until_version, v);

    /* Missing, malformed, bad arguments. */
    assert_int_equal(disable(f, f->ta, 2, STORE_WH_DELETED, T0_MS), BH_ENOTFOUND);
    assert_int_equal(store_webhook_disable(f->fx.s, f->ta, "x", STORE_WH_DELETED, T0_MS),
                     BH_ENOTFOUND);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_REASON_NONE, T0_MS), BH_EINVAL);
    assert_int_equal(disable(f, f->ta, 1, (store_webhook_reason_t)9, T0_MS), BH_EINVAL);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_DELETED, 0), BH_EINVAL);

    /* An Enabled webhook past valid_until expired first: deleting it afterwards
     * keeps Expired, at valid_until, in the table itself. */
    store_webhook_t w = mk_webhook(3, STORE_COLL_BREAKS);
    w.valid_until_ms = T0_MS + 1000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), 0);
    put_break(f, f->ta, 3, 20);
    uint64_t v3 = tenant_version(f, f->ta);
    assert_int_equal(disable(f, f->ta, 3, STORE_WH_DELETED, T0_MS + 5000), 0);
    /* Read at the store's clock (T0, before valid_until): the stored row, not the
     * derived expiry; until_version shows it was marked. */
    g = get(f, f->ta, 3);
    assert_int_equal(g.status, STORE_WH_DISABLED);
    assert_int_equal(g.reason, STORE_WH_EXPIRED);
    assert_int_equal(g.disabled_at_ms, T0_MS + 1000);
    assert_int_equal(g.until_version, v3);
    /* Deleted before valid_until: Deleted. */
    w = mk_webhook(4, STORE_COLL_BREAKS);
    w.valid_until_ms = T0_MS + 1000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), 0);
    assert_int_equal(disable(f, f->ta, 4, STORE_WH_DELETED, T0_MS + 999), 0);
    assert_int_equal(get(f, f->ta, 4).reason, STORE_WH_DELETED);
}

typedef struct heard {
    pthread_mutex_t lock;
    int calls;                 /* of the tenant under test */
    unsigned what;             /* or'ed over its calls */
} heard_t;

typedef struct listener {
    heard_t h;
    int64_t tenant;
} listener_t;

static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    listener_t *l = arg;
    (void)version;
    if (tenant_id != l->tenant)
        return; /* a shared store: other tests' tenants */
    pthread_mutex_lock(&l->h.lock);
    l->h.calls++;
    l->h.what |= what;
    pthread_mutex_unlock(&l->h.lock);
}

static heard_t heard_take(listener_t *l)
{
    pthread_mutex_lock(&l->h.lock);
    heard_t got = l->h;
    l->h.calls = 0;
    l->h.what = 0;
    pthread_mutex_unlock(&l->h.lock);
    return got;
}

/* Creating a webhook and disabling an Enabled one are announced to the commit
 * subscribers as STORE_COMMIT_WEBHOOKS of its tenant (the delivery engine reloads its
 * list then, not on a timer); disabling one already Disabled, or a refused create,
 * changes nothing and is not. */
static void test_webhook_changes_notified(void **state)
{
    fixture_t *f = *state;
    listener_t l = { .h = { .lock = PTHREAD_MUTEX_INITIALIZER }, .tenant = f->ta };
    assert_int_equal(store_subscribe(f->fx.s, on_commit, &l), 0);
    create(f, f->ta, 1, STORE_COLL_BREAKS);
    heard_t got = heard_take(&l);
    assert_int_equal(got.calls, 1);
    assert_int_equal(got.what, STORE_COMMIT_WEBHOOKS);
    store_webhook_t dup = mk_webhook(1, STORE_COLL_BREAKS);
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &dup, CAP), BH_EEXIST);
    assert_int_equal(heard_take(&l).calls, 0);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_DELETED, T0_MS + 100), 0);
    got = heard_take(&l);
    assert_int_equal(got.calls, 1);
    assert_int_equal(got.what, STORE_COMMIT_WEBHOOKS);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_DELETED, T0_MS + 200), 0);
    assert_int_equal(heard_take(&l).calls, 0);
    store_unsubscribe(f->fx.s, on_commit, &l);
}

static void test_expire_sweep(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta); /* A at version 2, B at 0 */
    put_break(f, f->ta, 1, 20);
    seed(f, f->tb);
    seed(f, f->tb);  /* unchanged: no new versions */
    put_break(f, f->tb, 1, 20);
    put_break(f, f->tb, 2, 20);
    uint64_t va = tenant_version(f, f->ta), vb = tenant_version(f, f->tb);
    assert_int_equal(va, 3);
    assert_int_equal(vb, 4);

    struct {
        int64_t tenant;
        int n;
        int64_t until;
    } hooks[] = {
        { f->ta, 1, T0_MS + 100 }, { f->ta, 2, T0_MS + 200 }, { f->ta, 3, T0_MS + 300 },
        { f->tb, 4, T0_MS + 150 }, { f->tb, 5, T0_MS + 200 }, { f->tb, 6, T0_MS + 250 },
    };
    for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
        store_webhook_t w = mk_webhook(hooks[i].n, STORE_COLL_BREAKS);
        w.valid_until_ms = hooks[i].until;
        assert_int_equal(store_webhook_create(f->fx.s, hooks[i].tenant, &w, CAP), 0);
    }
    /* 6 was deleted before it expired: the sweep leaves it alone. */
    assert_int_equal(disable(f, f->tb, 6, STORE_WH_DELETED, T0_MS + 10), 0);

    size_t n = 99;
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 99, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
    assert_int_equal(get(f, f->ta, 1).until_version, 0);
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 100, &n), 0);
    fx_store_assert_count(&f->fx, n, 1); /* 1, at exactly valid_until */
    /* Versions move on between sweeps: each webhook's until_version is its
     * tenant's version when the sweep marked it. */
    put_break(f, f->ta, 2, 20);
    put_break(f, f->ta, 3, 20);
    put_break(f, f->tb, 3, 20);
    put_break(f, f->tb, 4, 20); /* A at 5, B at 6 */
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 260, &n), 0);
    fx_store_assert_count(&f->fx, n, 3); /* 2, 4, 5 */
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 260, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);

    struct {
        int64_t tenant;
        int n;
        int status, reason;
        int64_t disabled_at;
        uint64_t until_version;
    } want[] = {
        { f->ta, 1, STORE_WH_DISABLED, STORE_WH_EXPIRED, T0_MS + 100, 3 },
        { f->ta, 2, STORE_WH_DISABLED, STORE_WH_EXPIRED, T0_MS + 200, 5 },
        { f->ta, 3, STORE_WH_ENABLED, STORE_WH_REASON_NONE, 0, 0 },
        { f->tb, 4, STORE_WH_DISABLED, STORE_WH_EXPIRED, T0_MS + 150, 6 },
        { f->tb, 5, STORE_WH_DISABLED, STORE_WH_EXPIRED, T0_MS + 200, 6 },
        { f->tb, 6, STORE_WH_DISABLED, STORE_WH_DELETED, T0_MS + 10, 4 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        /* Read at the store's clock, T0, before every valid_until: what the sweep
         * stored, not the expiry a read derives. */
        store_webhook_t g = get(f, want[i].tenant, want[i].n);
        assert_int_equal(g.status, want[i].status);
        assert_int_equal(g.reason, want[i].reason);
        assert_int_equal(g.disabled_at_ms, want[i].disabled_at);
        assert_int_equal(g.until_version, want[i].until_version);
    }
    assert_int_equal(store_webhooks_expire(f->fx.s, 0, &n), BH_EINVAL);
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS, NULL), BH_EINVAL);
}

/* ---- the outbox rule -------------------------------------------------------------- */

enum { OB_N = 24, OB_K = 3 };

static void test_outbox(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta); /* v1 person, v2 definition */
    for (int k = 1; k <= OB_K; k++)
        assert_int_equal(create(f, f->ta, k, STORE_COLL_BREAKS).from_version, 2);
    create(f, f->ta, 10, STORE_COLL_DEFINITIONS);
    for (int k = 1; k <= OB_K; k++)
        assert_int_equal(pending(f, f->ta, k, T0_MS, NULL), 0);

    /* N break changes: single PUTs, a $batch (with a refused op and an unchanged
     * one, which make no change), a replace and a delete. */
    uint64_t first = put_break(f, f->ta, 1, 20);
    for (int i = 2; i <= 8; i++)
        put_break(f, f->ta, i, 20);
    store_break_op_t *ops = calloc(12, sizeof(*ops));
    assert_non_null(ops);
    for (int i = 0; i < 10; i++)
        ops[i].rec = mk_break(100 + i, 25);
    ops[10].rec = mk_break(1, 20);            /* unchanged */
    ops[11].rec = mk_break(200, 25);
    ops[11].rec.person_id = 42;               /* refused: no such person */
    assert_int_equal(store_breaks_apply(f->fx.s, f->ta, ops, 12), 0);
    assert_int_equal(ops[10].res.outcome, STORE_OUT_UNCHANGED);
    assert_int_equal(ops[11].res.rc, BH_EINVAL);
    free(ops);
    put_break(f, f->ta, 1, 30);               /* replace */
    store_write_result_t r;
    assert_int_equal(store_break_delete(f->fx.s, f->ta, 2, &r), 0);
    assert_int_equal(r.rc, 0);
    /* A person change and a definition rename (no duration depends on a name, so
     * no break fans out). */
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 2;
    assert_int_equal(store_person_put(f->fx.s, f->ta, &p, &r), 0);
    model_definition_t *d = mk_def(1, "Lunch break");
    assert_int_equal(store_definition_put(f->fx.s, f->ta, d, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.fanout, 0);
    uint64_t def_version = r.version;
    free(d);
    for (int i = 9; i <= 12; i++)
        put_break(f, f->ta, i, 20);
    /* 8 + 10 + 1 + 1 + 4 */
    const uint64_t n_breaks = 24;
    assert_int_equal(n_breaks, OB_N);
    assert_int_equal(break_changes_after(f, f->ta, 2, NULL), OB_N);

    for (int k = 1; k <= OB_K; k++) {
        uint64_t oldest = 0;
        assert_int_equal(pending(f, f->ta, k, T0_MS, &oldest), OB_N);
        assert_int_equal(oldest, first);
    }
    uint64_t oldest = 0;
    assert_int_equal(pending(f, f->ta, 10, T0_MS, &oldest), 1);
    assert_int_equal(oldest, def_version);

    /* A webhook created now sees only what comes after. */
    uint64_t v = tenant_version(f, f->ta);
    assert_int_equal(create(f, f->ta, 20, STORE_COLL_BREAKS).from_version, v);
    assert_int_equal(pending(f, f->ta, 20, T0_MS, &oldest), 0);
    assert_int_equal(oldest, 0);
    uint64_t later = put_break(f, f->ta, 13, 20);
    put_break(f, f->ta, 14, 20);
    assert_int_equal(pending(f, f->ta, 20, T0_MS, &oldest), 2);
    assert_int_equal(oldest, later);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, NULL), OB_N + 2);
    assert_int_equal(pending(f, f->ta, 10, T0_MS, NULL), 1);

    /* Delivered events are not pending: the window starts after
     * max(from_version, last_delivered_version). */
    mark_delivered(f, f->ta, 1, first + 4);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, &oldest),
                     break_changes_after(f, f->ta, first + 4, NULL));
    assert_int_equal(pending(f, f->ta, 1, T0_MS, &oldest), OB_N + 2 - 5);
    assert_int_equal(oldest, first + 5);
    /* A last_delivered_version below from_version changes nothing. */
    mark_delivered(f, f->ta, 20, 1);
    assert_int_equal(pending(f, f->ta, 20, T0_MS, NULL), 2);

    /* Missing webhook. */
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 99);
    uint64_t count;
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, id, T0_MS, &count, &oldest),
                     BH_ENOTFOUND);
    assert_int_equal(store_webhook_pending(f->fx.s, f->ta, id, T0_MS, NULL, &oldest), BH_EINVAL);
}

static void test_disable_window(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    create(f, f->ta, 1, STORE_COLL_BREAKS);
    create(f, f->ta, 2, STORE_COLL_BREAKS);
    for (int i = 1; i <= 3; i++)
        put_break(f, f->ta, i, 20);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, NULL), 3);

    uint64_t v = tenant_version(f, f->ta);
    assert_int_equal(disable(f, f->ta, 1, STORE_WH_RETRIES_EXHAUSTED, T0_MS + 5), 0);
    store_webhook_t g = get(f, f->ta, 1);
    assert_int_equal(g.until_version, v);
    /* Nothing more will be delivered. */
    uint64_t oldest = 9;
    assert_int_equal(pending(f, f->ta, 1, T0_MS, &oldest), 0);
    assert_int_equal(oldest, 0);
    for (int i = 4; i <= 6; i++)
        put_break(f, f->ta, i, 20);
    assert_int_equal(pending(f, f->ta, 1, T0_MS, NULL), 0);
    /* The window (from_version, until_version] holds exactly the changes made while
     * it was Enabled, and nothing after. */
    g = get(f, f->ta, 1);
    assert_int_equal(g.until_version, v);
    assert_int_equal(break_changes_after(f, f->ta, g.from_version, NULL) -
                         break_changes_after(f, f->ta, g.until_version, NULL),
                     3);
    /* The other webhook goes on. */
    assert_int_equal(pending(f, f->ta, 2, T0_MS, NULL), 6);
    /* A webhook disabled before its tenant's first change has the empty window. */
    create(f, f->tb, 3, STORE_COLL_BREAKS);
    assert_int_equal(disable(f, f->tb, 3, STORE_WH_DELETED, T0_MS + 5), 0);
    assert_int_equal(get(f, f->tb, 3).until_version, 0);
    seed(f, f->tb);
    put_break(f, f->tb, 1, 20);
    assert_int_equal(pending(f, f->tb, 3, T0_MS, NULL), 0);
}

/* The validUntil bound: changes committed at or after valid_until are outside the
 * window, whatever time the caller asks at. Commit times come from the store's
 * clock, which here is the fake one. */
static void test_valid_until_window(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    store_webhook_t w = mk_webhook(1, STORE_COLL_BREAKS);
    w.valid_until_ms = T0_MS + 10000;
    assert_int_equal(store_webhook_create(f->fx.s, f->ta, &w, CAP), 0);
    create(f, f->ta, 2, STORE_COLL_BREAKS); /* 30 days */

    put_break(f, f->ta, 1, 20);
    put_break(f, f->ta, 2, 20);
    clock_fake_advance(&f->fx.clock, 9999);
    put_break(f, f->ta, 3, 20);
    assert_int_equal(pending(f, f->ta, 1, T0_MS + 9999, NULL), 3);
    clock_fake_advance(&f->fx.clock, 1); /* now valid_until */
    uint64_t at_end = put_break(f, f->ta, 4, 20);
    clock_fake_advance(&f->fx.clock, 1);
    put_break(f, f->ta, 5, 20);

    /* The store stamped the changes with its (fake) clock. */
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(store_changes_after(f->fx.s, f->ta, STORE_COLL_BREAKS, 0, 100, &c, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(c[0].committed_at_ms, T0_MS);
    assert_int_equal(c[2].committed_at_ms, T0_MS + 9999);
    assert_int_equal(c[3].version, at_end);
    assert_int_equal(c[3].committed_at_ms, T0_MS + 10000);
    assert_int_equal(c[4].committed_at_ms, T0_MS + 10001);
    store_changes_free(c, n);

    /* Asked with a "now" still before valid_until (a caller whose clock lags), the
     * webhook is Enabled but the changes committed from valid_until on are not its. */
    assert_int_equal(pending(f, f->ta, 1, T0_MS + 9999, NULL), 3);
    /* From valid_until on it is Expired: nothing is pending. */
    uint64_t oldest = 9;
    assert_int_equal(pending(f, f->ta, 1, T0_MS + 10000, &oldest), 0);
    assert_int_equal(oldest, 0);
    /* The 30-day webhook has them all. */
    assert_int_equal(pending(f, f->ta, 2, T0_MS + 10001, NULL), 5);

    /* get judges expiry by the store's clock, which is past valid_until. */
    store_webhook_t g = get(f, f->ta, 1);
    assert_int_equal(g.status, STORE_WH_DISABLED);
    assert_int_equal(g.reason, STORE_WH_EXPIRED);
    assert_int_equal(g.disabled_at_ms, T0_MS + 10000);
    assert_int_equal(get(f, f->ta, 2).status, STORE_WH_ENABLED);
    /* ... while it is still Enabled as stored until the sweep marks it: read as of a
     * time before valid_until, and without an until_version. */
    int ids[4];
    store_webhook_t *rows = NULL;
    assert_int_equal(list_ids(f, f->ta, STORE_WH_ENABLED, 0, NULL, 100, T0_MS, ids, NULL), 2);
    assert_int_equal(g.until_version, 0);
    size_t swept = 0;
    assert_int_equal(store_webhooks_expire(f->fx.s, clock_now_ms(&f->fx.clock), &swept), 0);
    fx_store_assert_count(&f->fx, swept, 1);
    assert_int_equal(list_ids(f, f->ta, STORE_WH_ENABLED, 0, NULL, 100, T0_MS, ids, &rows), 1);
    assert_int_equal(ids[0], 2);
    free(rows);
    assert_int_equal(get(f, f->ta, 1).until_version, tenant_version(f, f->ta));
    assert_int_equal(pending(f, f->ta, 1, T0_MS + 9999, NULL), 0);
}

/* ---- concurrency ------------------------------------------------------------------ */

enum { CC_WRITERS = 4, CC_PER_WRITER = 250, CC_HOOKS = 40 };

typedef struct cc_writer_arg {
    fixture_t *f;
    int idx;
    int failures;
} cc_writer_arg_t;

static void *cc_writer(void *p)
{
    cc_writer_arg_t *a = p;
    for (int i = 0; i < CC_PER_WRITER; i++) {
        model_break_t b = mk_break(1 + a->idx * 100000 + i, 20);
        store_write_result_t r;
        if (store_break_put(a->f->fx.s, a->f->ta, &b, &r) != 0 || r.rc != 0)
            a->failures++;
        if (i % 25 == 0) {
            /* A small $batch too. */
            store_break_op_t ops[5];
            memset(ops, 0, sizeof(ops));
            for (int j = 0; j < 5; j++)
                ops[j].rec = mk_break(1 + a->idx * 100000 + 50000 + i * 5 + j, 21);
            if (store_breaks_apply(a->f->fx.s, a->f->ta, ops, 5) != 0)
                a->failures++;
        }
    }
    return NULL;
}

typedef struct cc_creator_arg {
    fixture_t *f;
    int failures;
    uint64_t before[CC_HOOKS], from[CC_HOOKS], after[CC_HOOKS];
} cc_creator_arg_t;

static void *cc_creator(void *p)
{
    cc_creator_arg_t *a = p;
    for (int k = 0; k < CC_HOOKS; k++) {
        store_webhook_t w = mk_webhook(k + 1, STORE_COLL_BREAKS);
        if (store_tenant_version(a->f->fx.s, a->f->ta, &a->before[k]) != 0 ||
            store_webhook_create(a->f->fx.s, a->f->ta, &w, CAP) != 0 ||
            store_tenant_version(a->f->fx.s, a->f->ta, &a->after[k]) != 0)
            a->failures++;
        a->from[k] = w.from_version;
        struct timespec ts = { 0, 500000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    pthread_t th[CC_WRITERS + 1];
    cc_writer_arg_t wa[CC_WRITERS];
    cc_creator_arg_t *ca = calloc(1, sizeof(*ca));
    assert_non_null(ca);
    ca->f = f;
    for (int i = 0; i < CC_WRITERS; i++) {
        wa[i] = (cc_writer_arg_t){ f, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, cc_writer, &wa[i]), 0);
    }
    assert_int_equal(pthread_create(&th[CC_WRITERS], NULL, cc_creator, ca), 0);
    for (int i = 0; i <= CC_WRITERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < CC_WRITERS; i++)
        assert_int_equal(wa[i].failures, 0);
    assert_int_equal(ca->failures, 0);

    uint64_t total = break_changes_after(f, f->ta, 0, NULL);
    assert_int_equal(total, CC_WRITERS * (CC_PER_WRITER + (CC_PER_WRITER / 25) * 5));
    size_t distinct = 0;
    for (int k = 0; k < CC_HOOKS; k++) {
        /* from_version is the version when the webhook came to exist. */
        assert_true(ca->before[k] <= ca->from[k]);
        assert_true(ca->from[k] <= ca->after[k]);
        assert_int_equal(get(f, f->ta, k + 1).from_version, ca->from[k]);
        uint64_t first = 0, oldest = 0;
        uint64_t want = break_changes_after(f, f->ta, ca->from[k], &first);
        assert_int_equal(pending(f, f->ta, k + 1, T0_MS, &oldest), want);
        assert_int_equal(oldest, first);
        if (k > 0 && ca->from[k] != ca->from[k - 1])
            distinct++;
    }
    /* The creates really did interleave with the writes. */
    assert_true(distinct > 0);
    free(ca);
}

/* ---- the window under the tenant's lock, observed -------------------------------- */

/* While writers write, one thread creates and deletes webhooks 101..100+LW_HOOKS and
 * another lets webhooks 201..200+LW_HOOKS expire by sweeps; observers read the
 * tenant's version V and then the webhook. What they see bounds the windows:
 * absent after V was committed: from_version >= V (a change committed before the
 * webhook existed is not its event); Enabled after V: until_version >= V once it is
 * disabled (a change committed while it was Enabled is its event); Disabled with
 * until_version U: U <= the version read right after (no window ends at a version not
 * yet committed). A store that read the window outside the tenant's write lock
 * would, sooner or later, let a change commit between the window and the state. */
enum { LW_WRITERS = 3, LW_PER_WRITER = 300, LW_HOOKS = 25, LW_OBSERVERS = 2 };

typedef struct lw_seen {
    uint64_t absent_after[2 * LW_HOOKS];  /* highest V before an absent read */
    uint64_t enabled_after[2 * LW_HOOKS]; /* highest V before an Enabled read */
    int failures;
    char why[160];
} lw_seen_t;

typedef struct lw_run {
    fixture_t *f;
    atomic_int writers_left;
    lw_seen_t seen[LW_OBSERVERS];
    atomic_int lifecycle_failures;
} lw_run_t;

typedef struct lw_arg {
    lw_run_t *run;
    int idx;
} lw_arg_t;

/* Hook number k (0 .. 2 * LW_HOOKS - 1) is webhook 101 + k, or 201 + k - LW_HOOKS. */
static int lw_num(int k)
{
    return k < LW_HOOKS ? 101 + k : 201 + k - LW_HOOKS;
}

static void lw_pause(void)
{
    struct timespec ts = { 0, 300000 };
    nanosleep(&ts, NULL);
}

static void *lw_writer(void *p)
{
    lw_arg_t *a = p;
    fixture_t *f = a->run->f;
    for (int i = 0; i < LW_PER_WRITER; i++) {
        model_break_t b = mk_break(1 + a->idx * 100000 + i, 20);
        store_write_result_t r;
        if (store_break_put(f->fx.s, f->ta, &b, &r) != 0 || r.rc != 0)
            atomic_fetch_add(&a->run->lifecycle_failures, 1);
    }
    atomic_fetch_sub(&a->run->writers_left, 1);
    return NULL;
}

/* Creates and deletes 101.. one after the other. */
static void *lw_deleter(void *p)
{
    lw_run_t *run = p;
    fixture_t *f = run->f;
    for (int k = 0; k < LW_HOOKS; k++) {
        store_webhook_t w = mk_webhook(lw_num(k), STORE_COLL_BREAKS);
        if (store_webhook_create(f->fx.s, f->ta, &w, CAP) != 0)
            atomic_fetch_add(&run->lifecycle_failures, 1);
        lw_pause();
        if (store_webhook_disable(f->fx.s, f->ta, w.id, STORE_WH_DELETED, T0_MS + 1) != 0)
            atomic_fetch_add(&run->lifecycle_failures, 1);
        lw_pause();
    }
    return NULL;
}

/* Creates 201.. valid until T0 + 1 + k and sweeps each at its valid_until. */
static void *lw_sweeper(void *p)
{
    lw_run_t *run = p;
    fixture_t *f = run->f;
    for (int k = LW_HOOKS; k < 2 * LW_HOOKS; k++) {
        store_webhook_t w = mk_webhook(lw_num(k), STORE_COLL_BREAKS);
        w.valid_until_ms = T0_MS + 1 + k;
        size_t n = 0;
        if (store_webhook_create(f->fx.s, f->ta, &w, CAP) != 0)
            atomic_fetch_add(&run->lifecycle_failures, 1);
        lw_pause();
        if (store_webhooks_expire(f->fx.s, w.valid_until_ms, &n) != 0 || n < 1)
            atomic_fetch_add(&run->lifecycle_failures, 1);
        lw_pause();
    }
    return NULL;
}

static void lw_fail(lw_seen_t *seen, const char *what, int num, uint64_t a, uint64_t b)
{
    if (seen->failures++ == 0)
        snprintf(seen->why, sizeof(seen->why), "webhook %d: %s (%llu, %llu)", num, what,
                 (unsigned long long)a, (unsigned long long)b);
}

static void *lw_observer(void *p)
{
    lw_arg_t *a = p;
    fixture_t *f = a->run->f;
    lw_seen_t *seen = &a->run->seen[a->idx];
    for (unsigned i = (unsigned)a->idx; atomic_load(&a->run->writers_left) > 0; i++) {
        int k = (int)(i % (2 * LW_HOOKS));
        char id[STORE_WEBHOOK_ID_LEN + 1];
        fx_webhook_id(id, lw_num(k));
        uint64_t v = 0, v_after = 0;
        store_webhook_t w;
        if (store_tenant_version(f->fx.s, f->ta, &v) != 0) {
            lw_fail(seen, "tenant_version failed", lw_num(k), 0, 0);
            continue;
        }
        int rc = store_webhook_get(f->fx.s, f->ta, id, &w);
        if (rc == BH_ENOTFOUND) {
            if (v > seen->absent_after[k])
                seen->absent_after[k] = v;
        } else if (rc != 0) {
            lw_fail(seen, "get failed", lw_num(k), (uint64_t)-rc, 0);
        } else if (w.status == STORE_WH_ENABLED) {
            if (v > seen->enabled_after[k])
                seen->enabled_after[k] = v;
        } else {
            if (store_tenant_version(f->fx.s, f->ta, &v_after) != 0 || w.until_version > v_after)
                lw_fail(seen, "until_version above the committed version", lw_num(k),
                        w.until_version, v_after);
        }
    }
    return NULL;
}

static void test_window_under_lock(void **state)
{
    fixture_t *f = *state;
    seed(f, f->ta);
    lw_run_t *run = calloc(1, sizeof(*run));
    assert_non_null(run);
    run->f = f;
    atomic_init(&run->writers_left, LW_WRITERS);
    pthread_t wt[LW_WRITERS], ot[LW_OBSERVERS], dt, st;
    lw_arg_t wa[LW_WRITERS], oa[LW_OBSERVERS];
    for (int i = 0; i < LW_OBSERVERS; i++) {
        oa[i] = (lw_arg_t){ run, i };
        assert_int_equal(pthread_create(&ot[i], NULL, lw_observer, &oa[i]), 0);
    }
    for (int i = 0; i < LW_WRITERS; i++) {
        wa[i] = (lw_arg_t){ run, i };
        assert_int_equal(pthread_create(&wt[i], NULL, lw_writer, &wa[i]), 0);
    }
    assert_int_equal(pthread_create(&dt, NULL, lw_deleter, run), 0);
    assert_int_equal(pthread_create(&st, NULL, lw_sweeper, run), 0);
    pthread_join(dt, NULL);
    pthread_join(st, NULL);
    for (int i = 0; i < LW_WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < LW_OBSERVERS; i++)
        pthread_join(ot[i], NULL);
    assert_int_equal(atomic_load(&run->lifecycle_failures), 0);

    size_t overlapped = 0;
    for (int o = 0; o < LW_OBSERVERS; o++) {
        lw_seen_t *seen = &run->seen[o];
        if (seen->failures)
            fail_msg("%d bad observations, the first: %s", seen->failures, seen->why);
        for (int k = 0; k < 2 * LW_HOOKS; k++) {
            store_webhook_t w = get(f, f->ta, lw_num(k));
            assert_int_equal(w.status, STORE_WH_DISABLED);
            assert_true(w.from_version <= w.until_version);
            if (seen->absent_after[k] > w.from_version)
                fail_msg("webhook %d: absent after version %llu, but its window starts at "
                         "%llu", lw_num(k), (unsigned long long)seen->absent_after[k],
                         (unsigned long long)w.from_version);
            if (seen->enabled_after[k] > w.until_version)
                fail_msg("webhook %d: Enabled after version %llu, but its window ends at %llu",
                         lw_num(k), (unsigned long long)seen->enabled_after[k],
                         (unsigned long long)w.until_version);
            overlapped += w.until_version > w.from_version;
        }
    }
    /* The lifecycles really did interleave with the writes. */
    assert_true(overlapped > 0);
    free(run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_changes_notified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_until_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_under_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
