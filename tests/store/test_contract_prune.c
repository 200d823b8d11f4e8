/*
 * test_contract_prune.c: the back-end contract (tests/store/), part 5: retention,
 * through store.h only. The change log is pruned by age, but never past what an
 * Enabled webhook still has to deliver (a pending event is never pruned); webhooks
 * disabled longer than the retention go with their attempt logs and delivery state
 * (and a webhook created again under the same id starts from nothing); deleted
 * webhooks do not count against the cap; only a tenant's own Enabled webhooks, from
 * the start of their windows, hold its changes back.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test;
 * every test writes to a tenant of its own. The prunes act on every tenant, so on a
 * shared store their counts are lower bounds (fixture_store.h).
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0 1800000000000LL
#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define RETENTION (7 * DAY)

typedef struct fx {
    fx_store_t fx;  /* the store, its directory and fake clock (fixture_store.h) */
    int64_t tenant;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fx_store_new(&f->fx, "prune", T0, true);
    fx_store_open(&f->fx);
    f->tenant = fx_store_tenant(&f->fx, "prune", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fx_store_free(&f->fx);
    free(f);
    return 0;
}

static uint64_t put_person(fx_t *f, int64_t id)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, f->tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

/* The tenant's people changes after `after`, which must not be below the prune
 * horizon: then every one of them is still there. */
static size_t count_changes(fx_t *f, uint64_t after)
{
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(
        store_changes_after(f->fx.s, f->tenant, STORE_COLL_PEOPLE, after, 1000, &c, &n), 0);
    store_changes_free(c, n);
    return n;
}

/* Reading from below the horizon answers BH_EGONE and nothing. */
static void assert_gone(fx_t *f, int64_t tenant, uint64_t after)
{
    store_change_t *c = NULL;
    size_t n = 7;
    assert_int_equal(store_changes_after(f->fx.s, tenant, STORE_COLL_PEOPLE, after, 1000, &c, &n),
                     BH_EGONE);
    assert_null(c);
    assert_int_equal(n, 0);
}

static void test_prune_by_age(void **state)
{
    fx_t *f = *state;
    for (int i = 1; i <= 5; i++) {
        put_person(f, i);
        clock_fake_advance(&f->fx.clock, HOUR);
    }
    /* Changes at T0, T0+1h, …, T0+4h; prune what is older than T0+2h: two go. */
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 2 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 2);
    /* The horizon is version 2: a reader from before it may have missed changes. */
    assert_gone(f, f->tenant, 0);
    assert_gone(f, f->tenant, 1);
    assert_int_equal(count_changes(f, 2), 3);
    /* Again: nothing more. */
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 2 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
    assert_int_equal(count_changes(f, 2), 3);
}

/* Creates a webhook now (the fake clock), valid until valid_until_ms, with a random
 * id from seed; cap is the tenant's limit of Enabled webhooks. Returns the create's
 * code. */
static int new_webhook(fx_t *f, uint64_t seed, int64_t valid_until_ms, size_t cap,
                       store_webhook_t *w)
{
    memset(w, 0, sizeof(*w));
    bh_rand_t r;
    rand_fake_init(&r, seed);
    assert_int_equal(crypto_uuid4(&r, w->id), 0);
    w->collection = STORE_COLL_BREAKS;
    snprintf(w->destination_url, sizeof(w->destination_url), "https://x.invalid/");
    snprintf(w->ext_refs, sizeof(w->ext_refs), "[]");
    w->key_blob_len = 33;
    w->created_at_ms = clock_now_ms(&f->fx.clock);
    w->valid_until_ms = valid_until_ms;
    return store_webhook_create(f->fx.s, f->tenant, w, cap);
}

static void test_pending_events_are_kept(void **state)
{
    fx_t *f = *state;
    /* A webhook created before any change: its window starts at version 0 and it has
     * delivered nothing, so nothing may be pruned however old. */
    store_webhook_t w;
    assert_int_equal(new_webhook(f, 3, T0 + 1000 * HOUR, 10, &w), 0);
    uint64_t v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = put_person(f, i + 1);
        clock_fake_advance(&f->fx.clock, HOUR);
    }
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 100 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
    assert_int_equal(count_changes(f, 0), 5);
    /* It delivers up to the third change: those three may go, the rest stays. */
    struct store_watermark m = { .tenant_id = f->tenant, .webhook_id = w.id, .version = v[2],
                                 .last_success_at_ms = T0 };
    store_delivery_batch_t b = { .marks = &m, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 100 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 3);
    assert_gone(f, f->tenant, 0);
    assert_int_equal(count_changes(f, v[2]), 2);
    store_change_t *c = NULL;
    size_t nc = 0;
    assert_int_equal(
        store_changes_after(f->fx.s, f->tenant, STORE_COLL_PEOPLE, v[2], 10, &c, &nc), 0);
    assert_int_equal(nc, 2);
    assert_int_equal(c[0].version, v[3]); /* the undelivered ones, from the oldest */
    store_changes_free(c, nc);
    /* Once the webhook is disabled it no longer holds anything back. */
    assert_int_equal(store_webhook_disable(f->fx.s, f->tenant, w.id, STORE_WH_DELETED, T0 + 6 * HOUR),
                     0);
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 100 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 2);
    assert_gone(f, f->tenant, v[3]);
    assert_int_equal(count_changes(f, v[4]), 0);
}

/* One attempt and one acknowledgement of w at at_ms: what a delivery leaves. */
static void log_delivery(fx_t *f, const store_webhook_t *w, int64_t at_ms)
{
    store_attempt_t a;
    memset(&a, 0, sizeof(a));
    a.tenant_id = f->tenant;
    snprintf(a.webhook_id, sizeof(a.webhook_id), "%s", w->id);
    snprintf(a.event_id, sizeof(a.event_id), "evt_%s", w->id);
    a.record_id = 1;
    a.version = 5;
    a.attempt = 1;
    a.attempted_at_ms = at_ms;
    a.http_status = 200;
    a.status = STORE_ATTEMPT_DELIVERED;
    struct store_ack ack = { .tenant_id = f->tenant, .webhook_id = w->id, .record_id = 1,
                             .version = 5 };
    store_delivery_batch_t b = { .attempts = &a, .n_attempts = 1, .acks = &ack, .n_acks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
}

/* How many acknowledgements webhook id has; its store_delivery_acked code in *rc. */
static size_t count_acks(fx_t *f, const char *id, int *rc)
{
    store_acked_t *a = NULL;
    size_t n = 0;
    *rc = store_delivery_acked(f->fx.s, f->tenant, id, 0, &a, &n);
    free(a);
    return n;
}

static size_t count_attempts(fx_t *f, const char *id, int *rc)
{
    store_attempt_query_t q = { -1, 0, 100 };
    store_attempt_t *a = NULL;
    int64_t *seq = NULL;
    size_t n = 0;
    *rc = store_attempts_list(f->fx.s, f->tenant, id, &q, &a, &seq, &n);
    free(a);
    free(seq);
    return n;
}

/* Ten days after T0, with the default 7-day retention: a webhook deleted 8 days ago
 * and one that expired 9 days ago are gone with their logs and delivery state (GET
 * answers not found); one deleted 6 days ago, and an Enabled one created 10 days ago,
 * stay readable with their logs. */
static void test_disabled_webhooks_pruned(void **state)
{
    fx_t *f = *state;
    store_webhook_t old, recent, enabled, expired;
    assert_int_equal(new_webhook(f, 11, T0 + 60 * DAY, 10, &old), 0);
    assert_int_equal(new_webhook(f, 12, T0 + 60 * DAY, 10, &recent), 0);
    assert_int_equal(new_webhook(f, 13, T0 + 60 * DAY, 10, &enabled), 0);
    assert_int_equal(new_webhook(f, 14, T0 + 1 * DAY, 10, &expired), 0);
    log_delivery(f, &old, T0 + 1 * DAY);
    log_delivery(f, &expired, T0 + 1 * DAY - HOUR);
    log_delivery(f, &recent, T0 + 3 * DAY + 12 * HOUR);
    log_delivery(f, &enabled, T0 + 9 * DAY);

    assert_int_equal(store_webhook_disable(f->fx.s, f->tenant, old.id, STORE_WH_DELETED, T0 + 2 * DAY),
                     0);
    assert_int_equal(
        store_webhook_disable(f->fx.s, f->tenant, recent.id, STORE_WH_DELETED, T0 + 4 * DAY), 0);
    size_t n = 0;
    assert_int_equal(store_webhooks_expire(f->fx.s, T0 + 2 * DAY, &n), 0);
    fx_store_assert_count(&f->fx, n, 1);
    int rc = 0;
    assert_int_equal(count_acks(f, old.id, &rc), 1);
    assert_int_equal(rc, 0);

    clock_fake_advance(&f->fx.clock, 10 * DAY);
    int64_t now = clock_now_ms(&f->fx.clock);
    assert_int_equal(store_webhooks_prune(f->fx.s, now - RETENTION, &n), 0);
    fx_store_assert_count(&f->fx, n, 2);

    store_webhook_t got;
    const store_webhook_t *gone[] = { &old, &expired };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(store_webhook_get(f->fx.s, f->tenant, gone[i]->id, &got), BH_ENOTFOUND);
        count_attempts(f, gone[i]->id, &rc);
        assert_int_equal(rc, BH_ENOTFOUND);
        count_acks(f, gone[i]->id, &rc);
        assert_int_equal(rc, BH_ENOTFOUND);
    }
    /* Its state went with it: the same id created again starts from nothing. */
    store_webhook_t again = old;
    again.created_at_ms = now;
    again.valid_until_ms = now + DAY;
    assert_int_equal(store_webhook_create(f->fx.s, f->tenant, &again, 10), 0);
    assert_int_equal(count_attempts(f, old.id, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(count_acks(f, old.id, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, old.id, &got), 0);
    assert_int_equal(got.last_delivered_version, 0);
    assert_int_equal(got.status, STORE_WH_ENABLED);
    assert_int_equal(store_webhook_disable(f->fx.s, f->tenant, old.id, STORE_WH_DELETED, now), 0);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, recent.id, &got), 0);
    assert_int_equal(got.status, STORE_WH_DISABLED);
    assert_int_equal(got.reason, STORE_WH_DELETED);
    assert_int_equal(count_attempts(f, recent.id, &rc), 1);
    assert_int_equal(rc, 0);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, enabled.id, &got), 0);
    assert_int_equal(got.status, STORE_WH_ENABLED);
    assert_int_equal(count_attempts(f, enabled.id, &rc), 1);

    /* Two days later the recent one has passed the retention too. */
    clock_fake_advance(&f->fx.clock, 2 * DAY);
    now = clock_now_ms(&f->fx.clock);
    assert_int_equal(store_webhooks_prune(f->fx.s, now - RETENTION, &n), 0);
    fx_store_assert_count(&f->fx, n, 1);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, recent.id, &got), BH_ENOTFOUND);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, enabled.id, &got), 0);
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, old.id, &got), 0); /* too recent */
    assert_int_equal(store_webhooks_prune(f->fx.s, now - RETENTION, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
}

/* Deleted webhooks do not count against the cap of Enabled ones: a consumer that
 * deletes and creates again and again (the monthly rollover) never gets a 409, and
 * once the retention has passed the deleted ones are gone. */
static void test_deleted_webhooks_do_not_count(void **state)
{
    fx_t *f = *state;
    enum { CAP = 3, CYCLES = 60 };
    store_webhook_t keep[CAP - 1], w;
    for (int i = 0; i < CAP - 1; i++)
        assert_int_equal(new_webhook(f, 100 + (uint64_t)i, T0 + 60 * DAY, CAP, &keep[i]), 0);
    for (int i = 0; i < CYCLES; i++) {
        assert_int_equal(new_webhook(f, 200 + (uint64_t)i, T0 + 60 * DAY, CAP, &w), 0);
        assert_int_equal(
            store_webhook_disable(f->fx.s, f->tenant, w.id, STORE_WH_DELETED, T0 + i), 0);
    }
    /* The cap itself still holds for Enabled webhooks. */
    assert_int_equal(new_webhook(f, 300, T0 + 60 * DAY, CAP, &w), 0);
    store_webhook_t over;
    assert_int_equal(new_webhook(f, 301, T0 + 60 * DAY, CAP, &over), BH_ECONFLICT);

    clock_fake_advance(&f->fx.clock, 8 * DAY);
    size_t n = 0;
    assert_int_equal(store_webhooks_prune(f->fx.s, clock_now_ms(&f->fx.clock) - RETENTION, &n), 0);
    fx_store_assert_count(&f->fx, n, CYCLES);
    store_webhook_query_t q = { .status = -1, .limit = 1000,
                                .now_ms = clock_now_ms(&f->fx.clock) };
    store_webhook_t *list = NULL;
    size_t nl = 0;
    assert_int_equal(store_webhooks_list(f->fx.s, f->tenant, &q, &list, &nl), 0);
    assert_int_equal(nl, CAP);
    free(list);
}

/* What holds a change back is its own tenant's Enabled webhooks, each from the start
 * of its window: a webhook created after some changes does not keep them (they are
 * not its events), and one tenant's webhook keeps nothing of another tenant's. */
static void test_window_start_and_tenant(void **state)
{
    fx_t *f = *state;
    int64_t other = fx_store_tenant(&f->fx, "prune-other", NULL);
    uint64_t v[6];
    for (int i = 0; i < 3; i++) {
        v[i] = put_person(f, i + 1);
        clock_fake_advance(&f->fx.clock, HOUR);
    }
    store_webhook_t w;
    assert_int_equal(new_webhook(f, 21, T0 + 1000 * HOUR, 10, &w), 0);
    assert_int_equal(w.from_version, v[2]);
    for (int i = 3; i < 6; i++) {
        v[i] = put_person(f, i + 1);
        clock_fake_advance(&f->fx.clock, HOUR);
    }
    /* The other tenant writes too, and has no webhook. */
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, other, &p, &r), 0);
    assert_int_equal(r.rc, 0);

    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, T0 + 100 * HOUR, &n), 0);
    fx_store_assert_count(&f->fx, n, 3 + 1);
    store_change_t *c = NULL;
    size_t nc = 0;
    assert_gone(f, f->tenant, 0);
    assert_int_equal(
        store_changes_after(f->fx.s, f->tenant, STORE_COLL_PEOPLE, v[2], 10, &c, &nc), 0);
    assert_int_equal(nc, 3);
    for (size_t i = 0; i < nc; i++)
        assert_int_equal(c[i].version, v[3 + i]);
    store_changes_free(c, nc);
    /* Each tenant has its own horizon: the other one pruned its version 1. */
    assert_gone(f, other, 0);
    assert_int_equal(store_changes_after(f->fx.s, other, STORE_COLL_PEOPLE, 1, 10, &c, &nc), 0);
    assert_int_equal(nc, 0);
    store_changes_free(c, nc);
    /* Versions go on from where they were: pruning is not a reset. */
    assert_int_equal(put_person(f, 10), v[5] + 1);
}

/* Caller bugs. */
static void test_prune_arguments(void **state)
{
    fx_t *f = *state;
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, 0, &n), BH_EINVAL);
    assert_int_equal(store_changes_prune(f->fx.s, T0, NULL), BH_EINVAL);
    assert_int_equal(store_webhooks_prune(f->fx.s, 0, &n), BH_EINVAL);
    assert_int_equal(store_webhooks_prune(f->fx.s, T0, NULL), BH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_events_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_webhooks_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_webhooks_do_not_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_start_and_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
