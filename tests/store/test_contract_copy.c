/*
 * test_contract_copy.c: the back-end contract (tests/store/), part 8: store_copy (what
 * `breakhook migrate` runs) and store_in_use, through store.h only.
 *
 * The source is the store under test ($BREAKHOOK_TEST_STORE_URL when set, else a
 * fresh SQLite file) with one tenant filled with every kind of row: a client, a
 * signing key, a person, a definition, breaks and their change log, a webhook with
 * an acknowledgement, a watermark and attempts, a delta. The target is always a
 * fresh SQLite file, so on the PostgreSQL run this is the copy back down. After the
 * copy the target must answer the same reads (ids, versions, bodies, windows,
 * delivery state), a second copy into it is refused, and every table's count must
 * match (on a shared source other tests' rows come along, so counts are compared,
 * not fixed).
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

#include "core/err.h"
#include "fixture_store.h"
#include "model/model.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY0 20454

typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "copy", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

/* Fills tenant with one of everything; returns the webhook's id in wid. */
static void fill(store_t *s, int64_t tenant, char wid[STORE_WEBHOOK_ID_LEN + 1])
{
    store_client_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.client_id, sizeof(c.client_id), "bh_copy_%lld", (long long)tenant);
    snprintf(c.name, sizeof(c.name), "copy");
    snprintf(c.scopes, sizeof(c.scopes), "connector-protimeapi-breaks.read");
    snprintf(c.secret_hash, sizeof(c.secret_hash), "pbkdf2-sha256$1$c2FsdA$aGFzaA");
    c.created_at_ms = T0_MS;
    assert_int_equal(store_client_create(s, tenant, &c), 0);

    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    p.n_refs = 1;
    snprintf(p.refs[0].name, sizeof(p.refs[0].name), "@employee-number");
    snprintf(p.refs[0].value, sizeof(p.refs[0].value), "E-%lld", (long long)tenant);
    store_write_result_t r;
    assert_int_equal(store_person_put(s, tenant, &p, &r), 0);
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = 1;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch");
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch break");
    d->paid = 15;
    d->minimum = 15;
    d->maximum = 60;
    d->if_not_clocked = 30;
    assert_int_equal(store_definition_put(s, tenant, d, &r), 0);
    free(d);

    fx_webhook_id(wid, 1);
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    memcpy(w.id, wid, sizeof(w.id));
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://hooks.example.com/copy");
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    w.key_blob_len = 60;
    for (size_t i = 0; i < w.key_blob_len; i++)
        w.key_blob[i] = (unsigned char)(i * 3 + 1);
    w.created_at_ms = T0_MS;
    w.valid_until_ms = T0_MS + 30LL * 86400000;
    assert_int_equal(store_webhook_create(s, tenant, &w, 100), 0);

    for (int i = 1; i <= 5; i++) {
        model_break_t b;
        memset(&b, 0, sizeof(b));
        b.id = i;
        b.person_id = 1;
        b.definition_id = 1;
        b.date = DAY0 + i;
        b.clocked = 20 + i;
        b.taken = true;
        b.start = 720;
        b.end = 800;
        assert_int_equal(store_break_put(s, tenant, &b, &r), 0);
        assert_int_equal(r.rc, 0);
    }
    assert_int_equal(store_break_delete(s, tenant, 5, &r), 0);

    store_attempt_t a;
    memset(&a, 0, sizeof(a));
    a.tenant_id = tenant;
    memcpy(a.webhook_id, wid, sizeof(a.webhook_id));
    snprintf(a.event_id, sizeof(a.event_id), "evt_copy");
    a.record_id = 2;
    a.version = r.version - 1;
    a.attempt = 1;
    a.attempted_at_ms = T0_MS + 1000;
    a.duration_ms = 12;
    a.http_status = 204;
    a.status = STORE_ATTEMPT_DELIVERED;
    snprintf(a.excerpt, sizeof(a.excerpt), "ok");
    struct store_ack k = { .tenant_id = tenant, .webhook_id = wid, .record_id = 2,
                           .version = a.version };
    struct store_watermark m = { .tenant_id = tenant, .webhook_id = wid, .version = w.from_version + 1,
                                 .last_success_at_ms = T0_MS + 1000 };
    store_delivery_batch_t batch = { .attempts = &a, .n_attempts = 1, .acks = &k, .n_acks = 1,
                                     .marks = &m, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(s, &batch), 0);

    store_delta_t dl;
    memset(&dl, 0, sizeof(dl));
    snprintf(dl.id, sizeof(dl.id), "0123456789abcdef0123456789abcdef");
    snprintf(dl.client_id, sizeof(dl.client_id), "%s", c.client_id);
    dl.collection = STORE_COLL_BREAKS;
    dl.date_from = DAY0;
    dl.date_to = DAY0 + 30;
    dl.created_at_ms = T0_MS;
    assert_int_equal(store_delta_start(s, tenant, &dl), 0);
}

/* Both stores answer the same for tenant (by name: ids are copied too). */
static void expect_same(store_t *a, store_t *b, const char *name, const char *wid)
{
    store_tenant_t ta, tb;
    assert_int_equal(store_tenant_get(a, name, &ta), 0);
    assert_int_equal(store_tenant_get(b, name, &tb), 0);
    assert_int_equal(ta.id, tb.id);
    uint64_t va, vb;
    assert_int_equal(store_tenant_version(a, ta.id, &va), 0);
    assert_int_equal(store_tenant_version(b, tb.id, &vb), 0);
    assert_int_equal(va, vb);
    store_change_t *ca = NULL, *cb = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(store_changes_after(a, ta.id, STORE_COLL_BREAKS, 0, 100, &ca, &na), 0);
    assert_int_equal(store_changes_after(b, tb.id, STORE_COLL_BREAKS, 0, 100, &cb, &nb), 0);
    assert_int_equal(na, nb);
    assert_int_equal(na, 6);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(ca[i].version, cb[i].version);
        assert_int_equal(ca[i].type, cb[i].type);
        assert_int_equal(ca[i].has_prev_date, cb[i].has_prev_date);
        assert_string_equal(ca[i].body, cb[i].body);
    }
    store_changes_free(ca, na);
    store_changes_free(cb, nb);
    store_webhook_t wa, wb;
    assert_int_equal(store_webhook_get(a, ta.id, wid, &wa), 0);
    assert_int_equal(store_webhook_get(b, tb.id, wid, &wb), 0);
    assert_int_equal(wa.from_version, wb.from_version);
    assert_int_equal(wa.last_delivered_version, wb.last_delivered_version);
    assert_int_equal(wa.key_blob_len, wb.key_blob_len);
    assert_memory_equal(wa.key_blob, wb.key_blob, wa.key_blob_len);
    store_acked_t *ka = NULL, *kb = NULL;
    assert_int_equal(store_delivery_acked(a, ta.id, wid, 0, &ka, &na), 0);
    assert_int_equal(store_delivery_acked(b, tb.id, wid, 0, &kb, &nb), 0);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_int_equal(ka[0].version, kb[0].version);
    free(ka);
    free(kb);
    store_attempt_query_t q = { .status = -1, .limit = 10 };
    store_attempt_t *aa = NULL, *ab = NULL;
    int64_t *sa = NULL, *sb = NULL;
    assert_int_equal(store_attempts_list(a, ta.id, wid, &q, &aa, &sa, &na), 0);
    assert_int_equal(store_attempts_list(b, tb.id, wid, &q, &ab, &sb, &nb), 0);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_int_equal(sa[0], sb[0]);
    assert_string_equal(aa[0].event_id, ab[0].event_id);
    free(aa);
    free(ab);
    free(sa);
    free(sb);
    char client[64];
    snprintf(client, sizeof(client), "bh_copy_%lld", (long long)ta.id);
    store_delta_t da, db;
    assert_int_equal(store_delta_get(a, ta.id, client, STORE_COLL_BREAKS, &da), 0);
    assert_int_equal(store_delta_get(b, tb.id, client, STORE_COLL_BREAKS, &db), 0);
    assert_string_equal(da.id, db.id);
    assert_int_equal(da.start_version, db.start_version);
}

static void test_copy(void **state)
{
    fixture_t *f = *state;
    char wid[STORE_WEBHOOK_ID_LEN + 1];
    fill(f->fx.s, f->ta, wid);
    store_signing_key_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "copy-%lld", (long long)f->ta);
    k.created_at_ms = T0_MS + f->ta;
    for (size_t i = 0; i < sizeof(k.secret); i++)
        k.secret[i] = (unsigned char)i;
    assert_int_equal(store_signing_key_add(f->fx.s, &k), 0);

    bool busy = true;
    assert_int_equal(store_in_use(f->fx.s, &busy), 0);
    assert_false(busy); /* opened by a test, not by a server */

    fx_store_t dst;
    fx_store_new(&dst, "copy-dst", T0_MS, false);
    fx_store_open(&dst);
    store_copy_count_t counts[STORE_COPY_TABLES];
    assert_int_equal(store_copy(f->fx.s, dst.s, NULL, NULL, counts), 0);
    for (size_t i = 0; i < STORE_COPY_TABLES; i++) {
        if (counts[i].source != counts[i].target)
            fail_msg("table %s: %llu rows in the source, %llu in the copy", counts[i].table,
                     (unsigned long long)counts[i].source, (unsigned long long)counts[i].target);
        if (!fx_store_shared(&f->fx) && counts[i].source == 0)
            fail_msg("table %s: nothing to copy, so nothing was checked", counts[i].table);
    }
    store_tenant_t *all = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(f->fx.s, &all, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (all[i].id == f->ta)
            expect_same(f->fx.s, dst.s, all[i].name, wid);
    free(all);
    /* The signing keys came along, sealed or not, as they were. */
    store_signing_key_t *ka = NULL, *kb = NULL;
    size_t nka = 0, nkb = 0;
    assert_int_equal(store_signing_key_list(f->fx.s, &ka, &nka), 0);
    assert_int_equal(store_signing_key_list(dst.s, &kb, &nkb), 0);
    assert_int_equal(nka, nkb);
    free(ka);
    free(kb);

    /* The target is no longer empty: a second copy is refused before writing. */
    assert_int_equal(store_copy(f->fx.s, dst.s, NULL, NULL, counts), BH_ECONFLICT);
    assert_int_equal(store_copy(f->fx.s, f->fx.s, NULL, NULL, counts), BH_EINVAL);
    fx_store_free(&dst);
}

/* Progress: every table reported at its end with done == total. */
typedef struct seen {
    size_t ends;
} seen_t;

static void on_progress(void *arg, const char *table, uint64_t done, uint64_t total)
{
    seen_t *s = arg;
    assert_non_null(table);
    assert_true(done <= total);
    if (done == total)
        s->ends++;
}

static void test_copy_progress(void **state)
{
    fixture_t *f = *state;
    char wid[STORE_WEBHOOK_ID_LEN + 1];
    fill(f->fx.s, f->tb, wid);
    fx_store_t dst;
    fx_store_new(&dst, "copy-dst2", T0_MS, false);
    fx_store_open(&dst);
    store_copy_count_t counts[STORE_COPY_TABLES];
    seen_t seen = { 0 };
    assert_int_equal(store_copy(f->fx.s, dst.s, on_progress, &seen, counts), 0);
    assert_int_equal(seen.ends, STORE_COPY_TABLES);
    fx_store_free(&dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_progress, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
