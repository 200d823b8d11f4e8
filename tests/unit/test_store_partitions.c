/*
 * test_store_partitions.c: delivery state keyed by (webhook, partition) (store.h,
 * "delivery state"): a watermark per partition, acks in their record's partition,
 * pending events, change-log pruning and the retry read-back going by each
 * partition's own watermark, and migration 7 keeping a store's delivery state.
 *
 * Every webhook the API creates has one partition; a webhook with two is made with
 * store__webhook_create (store_int.h, test-only until the multi-node issue). Apart
 * from that and the migration test, which builds a file at the previous schema,
 * the tests talk to store.h only.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "fixture_store.h"
#include "model/model.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"
#include "store/store_int.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS 86400000LL
#define DAY0 20454 /* 2026-01-01 in days since the epoch */
#define CAP 100

typedef struct fixture {
    fx_store_t fx;
    int64_t tenant;
    uint64_t seeded; /* the tenant's version after the seed */
} fixture_t;

/* A store with one tenant holding person 1 and definition 1 (two changes). */
static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    fx_store_new(&f->fx, "part", T0_MS, false);
    fx_store_open(&f->fx);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(f->fx.s, "tenant-a", &t), 0);
    f->tenant = t.id;
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->fx.s, f->tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    model_definition_t *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = 1;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch");
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->paid = 15;
    d->minimum = 10;
    d->maximum = 60;
    d->if_not_clocked = 30;
    assert_int_equal(store_definition_put(f->fx.s, f->tenant, d, &r), 0);
    assert_int_equal(r.rc, 0);
    free(d);
    assert_int_equal(store_tenant_version(f->fx.s, f->tenant, &f->seeded), 0);
    *state = f;
    return 0;
}

/* A fixture without a store, for the migration test. */
static int setup_bare(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    fx_store_new(&f->fx, "part", T0_MS, false);
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

/* ---- helpers ---------------------------------------------------------------------- */

static void mk_webhook(store_webhook_t *w, int n)
{
    memset(w, 0, sizeof(*w));
    fx_webhook_id(w->id, n);
    w->collection = STORE_COLL_BREAKS;
    snprintf(w->destination_url, sizeof(w->destination_url), "https://hooks.example.com/%d", n);
    snprintf(w->ext_refs, sizeof(w->ext_refs), "[]");
    w->key_blob_len = 16;
    memset(w->key_blob, n, w->key_blob_len);
    w->created_at_ms = T0_MS;
    w->valid_until_ms = T0_MS + DAY_MS;
}

/* Webhook n of the tenant with `partitions` partitions (the test-only way). */
static void create(fixture_t *f, int n, uint32_t partitions, char id[STORE_WEBHOOK_ID_LEN + 1])
{
    store_webhook_t w;
    mk_webhook(&w, n);
    assert_int_equal(store__webhook_create(f->fx.s, f->tenant, &w, CAP, partitions), 0);
    assert_int_equal(w.partitions, partitions);
    memcpy(id, w.id, STORE_WEBHOOK_ID_LEN + 1);
}

static store_webhook_t get(fixture_t *f, const char *id)
{
    store_webhook_t w;
    assert_int_equal(store_webhook_get(f->fx.s, f->tenant, id, &w), 0);
    return w;
}

/* A new version of break id (its record id) with clocked minutes; returns the
 * version. */
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
    b.end = 840;
    store_write_result_t r;
    assert_int_equal(store_break_put(f->fx.s, f->tenant, &b, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.version > 0);
    return r.version;
}

static int commit_mark(fixture_t *f, const char *id, uint32_t part, uint64_t version,
                       int64_t success_ms, int64_t failure_ms)
{
    struct store_watermark m = { f->tenant, id, version, success_ms, failure_ms, part };
    store_delivery_batch_t b = { .marks = &m, .n_marks = 1 };
    return store_delivery_commit(f->fx.s, &b);
}

static void commit_ack(fixture_t *f, const char *id, int64_t record_id, uint64_t version)
{
    struct store_ack k = { f->tenant, id, record_id, version };
    store_delivery_batch_t b = { .acks = &k, .n_acks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
}

/* A failed attempt (number attempt) of record_id at version, retried at T0 + version. */
static void commit_failure(fixture_t *f, const char *id, int64_t record_id, uint64_t version,
                           int attempt)
{
    store_attempt_t a;
    memset(&a, 0, sizeof(a));
    a.tenant_id = f->tenant;
    memcpy(a.webhook_id, id, STORE_WEBHOOK_ID_LEN + 1);
    snprintf(a.event_id, sizeof(a.event_id), "evt_%lld_%llu_%d", (long long)record_id,
             (unsigned long long)version, attempt);
    a.record_id = record_id;
    a.version = version;
    a.change_type = STORE_CHANGE_UPSERT;
    a.attempt = attempt;
    a.attempted_at_ms = T0_MS;
    a.http_status = 503;
    a.next_attempt_at_ms = T0_MS + (int64_t)version;
    a.status = STORE_ATTEMPT_FAILED;
    store_delivery_batch_t b = { .attempts = &a, .n_attempts = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
}

/* The partition's acks as "record@version record@version ..." (by record id). */
static const char *acked(fixture_t *f, const char *id, uint32_t part)
{
    static char out[512];
    store_acked_t *a = NULL;
    size_t n = 9999;
    assert_int_equal(store_delivery_acked(f->fx.s, f->tenant, id, part, &a, &n), 0);
    out[0] = '\0';
    for (size_t i = 0, len = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%lld@%llu", i ? " " : "",
                                (long long)a[i].record_id, (unsigned long long)a[i].version);
    free(a);
    return out;
}

/* The partition's retry state as "record@version#attempt ..." (by record id). */
static const char *retrying(fixture_t *f, const char *id, uint32_t part)
{
    static char out[512];
    store_retrying_t *r = NULL;
    size_t n = 9999;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->tenant, id, part, &r, &n), 0);
    out[0] = '\0';
    for (size_t i = 0, len = 0; i < n; i++) {
        assert_int_equal(r[i].next_attempt_at_ms, T0_MS + (int64_t)r[i].version);
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%lld@%llu#%d", i ? " " : "",
                                (long long)r[i].record_id, (unsigned long long)r[i].version,
                                r[i].attempt);
    }
    free(r);
    return out;
}

static uint64_t pending(fixture_t *f, const char *id, uint64_t *oldest)
{
    uint64_t count = 9999, old = 9999;
    assert_int_equal(store_webhook_pending(f->fx.s, f->tenant, id, T0_MS, &count, &old), 0);
    *oldest = old;
    return count;
}

/* How many of the tenant's break changes after `after` (at or above the prune
 * horizon) the change log still holds. */
static size_t break_changes(fixture_t *f, uint64_t after)
{
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(
        store_changes_after(f->fx.s, f->tenant, STORE_COLL_BREAKS, after, 100000, &c, &n), 0);
    store_changes_free(c, n);
    return n;
}

/* ---- the partition of a record ------------------------------------------------------ */

/* store_record_partition is record_id mod partitions, and SQL's % computes the same
 * (SQLite here; PostgreSQL's % truncates likewise). */
static void test_record_partition(void **state)
{
    (void)state;
    static const struct {
        int64_t record;
        uint32_t partitions, want;
    } cases[] = {
        { 1, 1, 0 },  { 7, 1, 0 },  { 1, 2, 1 },   { 2, 2, 0 },
        { 7, 3, 1 },  { 9, 3, 0 },  { 11, 4, 3 },  { INT64_MAX, 2, 1 },
        { 1000000007, 1024, 1000000007 % 1024 },
    };
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1 % ?2", -1, &st, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(store_record_partition(cases[i].record, cases[i].partitions),
                         cases[i].want);
        sqlite3_bind_int64(st, 1, cases[i].record);
        sqlite3_bind_int64(st, 2, cases[i].partitions);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(st, 0), cases[i].want);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- creation ----------------------------------------------------------------------- */

/* store_webhook_create makes one partition whatever the caller puts in the field; a
 * webhook's partitions are readable, each with a watermark of 0, and a partition it
 * does not have is not found. */
static void test_create(void **state)
{
    fixture_t *f = *state;
    store_webhook_t w;
    mk_webhook(&w, 1);
    w.partitions = 5;
    assert_int_equal(store_webhook_create(f->fx.s, f->tenant, &w, CAP), 0);
    assert_int_equal(w.partitions, 1);
    assert_int_equal(get(f, w.id).partitions, 1);
    assert_string_equal(acked(f, w.id, 0), "");
    store_acked_t *a = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_acked(f->fx.s, f->tenant, w.id, 1, &a, &n), BH_ENOTFOUND);
    store_retrying_t *r = NULL;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->tenant, w.id, 1, &r, &n),
                     BH_ENOTFOUND);

    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 2, 2, id);
    store_webhook_t g = get(f, id);
    assert_int_equal(g.partitions, 2);
    assert_int_equal(g.last_delivered_version, 0);
    assert_string_equal(acked(f, id, 0), "");
    assert_string_equal(acked(f, id, 1), "");
    assert_string_equal(retrying(f, id, 1), "");
    assert_int_equal(store_delivery_acked(f->fx.s, f->tenant, id, 2, &a, &n), BH_ENOTFOUND);

    /* Both kinds list and serve like any webhook. */
    store_webhook_t *all = NULL;
    assert_int_equal(store_webhooks_active(f->fx.s, T0_MS, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(all[0].partitions + all[1].partitions, 3);
    free(all);

    store_webhook_t bad;
    mk_webhook(&bad, 3);
    assert_int_equal(store__webhook_create(f->fx.s, f->tenant, &bad, CAP, 0), BH_EINVAL);
}

/* ---- watermarks ----------------------------------------------------------------------- */

/* Each partition keeps its own watermark; the webhook shows the lowest and the
 * latest times of any; a mark of a partition the webhook lacks changes nothing. */
static void test_watermark_per_partition(void **state)
{
    fixture_t *f = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 1, 2, id);

    assert_int_equal(commit_mark(f, id, 1, 10, T0_MS + 1, 0), 0);
    store_webhook_t w = get(f, id);
    assert_int_equal(w.last_delivered_version, 0); /* partition 0 is still at 0 */
    assert_int_equal(w.last_success_at_ms, T0_MS + 1);
    assert_int_equal(w.last_failure_at_ms, 0);

    assert_int_equal(commit_mark(f, id, 0, 7, 0, T0_MS + 2), 0);
    w = get(f, id);
    assert_int_equal(w.last_delivered_version, 7);
    assert_int_equal(w.last_success_at_ms, T0_MS + 1);
    assert_int_equal(w.last_failure_at_ms, T0_MS + 2);

    assert_int_equal(commit_mark(f, id, 0, 12, T0_MS + 3, 0), 0);
    w = get(f, id);
    assert_int_equal(w.last_delivered_version, 10); /* now partition 1 is the lowest */
    assert_int_equal(w.last_success_at_ms, T0_MS + 3);

    /* Only raised: a lower mark of partition 1 leaves 10. */
    assert_int_equal(commit_mark(f, id, 1, 4, 0, 0), 0);
    assert_int_equal(get(f, id).last_delivered_version, 10);

    /* Partition 2 does not exist: ignored, not stored anywhere. */
    assert_int_equal(commit_mark(f, id, 2, 50, T0_MS + 9, T0_MS + 9), 0);
    w = get(f, id);
    assert_int_equal(w.last_delivered_version, 10);
    assert_int_equal(w.last_success_at_ms, T0_MS + 3);
    assert_int_equal(w.last_failure_at_ms, T0_MS + 2);

    /* The list and the engine's list show the same. */
    store_webhook_t *all = NULL;
    size_t n = 0;
    assert_int_equal(store_webhooks_active(f->fx.s, T0_MS, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].last_delivered_version, 10);
    free(all);
    store_webhook_query_t q = { .status = -1, .limit = 10, .now_ms = T0_MS };
    assert_int_equal(store_webhooks_list(f->fx.s, f->tenant, &q, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].last_delivered_version, 10);
    assert_int_equal(all[0].last_failure_at_ms, T0_MS + 2);
    free(all);
}

/* ---- acks ---------------------------------------------------------------------------- */

/* An ack goes to its record's partition; a raised watermark drops only its own
 * partition's acks at or below it; an ack at or below its own partition's
 * watermark is not kept, whatever the other partition's watermark. */
static void test_acks_by_partition(void **state)
{
    fixture_t *f = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 1, 2, id);

    struct store_ack k[] = { { f->tenant, id, 1, 5 }, { f->tenant, id, 2, 6 },
                             { f->tenant, id, 3, 7 }, { f->tenant, id, 4, 8 } };
    store_delivery_batch_t b = { .acks = k, .n_acks = 4 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
    assert_string_equal(acked(f, id, 0), "2@6 4@8");
    assert_string_equal(acked(f, id, 1), "1@5 3@7");

    /* Partition 0 to 7: drops 2@6, keeps 4@8; partition 1's 1@5 and 3@7 stay. */
    assert_int_equal(commit_mark(f, id, 0, 7, T0_MS, 0), 0);
    assert_string_equal(acked(f, id, 0), "4@8");
    assert_string_equal(acked(f, id, 1), "1@5 3@7");

    /* Below partition 0's watermark: not kept there; the same version of a record of
     * partition 1 (watermark 0) is. */
    commit_ack(f, id, 6, 5);
    commit_ack(f, id, 5, 5);
    assert_string_equal(acked(f, id, 0), "4@8");
    assert_string_equal(acked(f, id, 1), "1@5 3@7 5@5");

    /* Acks and a covering mark of partition 1 in one batch: gone at commit. */
    struct store_ack k2[] = { { f->tenant, id, 7, 9 }, { f->tenant, id, 8, 9 } };
    struct store_watermark m = { f->tenant, id, 9, T0_MS, 0, 1 };
    store_delivery_batch_t b2 = { .acks = k2, .n_acks = 2, .marks = &m, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b2), 0);
    assert_string_equal(acked(f, id, 1), "");
    assert_string_equal(acked(f, id, 0), "4@8 8@9");
    assert_int_equal(get(f, id).last_delivered_version, 7);
}

/* ---- pending -------------------------------------------------------------------------- */

/* Each partition's records count after its own watermark: with partition 0 at 4
 * and partition 1 at 7 the pending events are not those after the lowest (4) nor
 * after the highest (7). */
static void test_pending_per_partition(void **state)
{
    fixture_t *f = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 1, 2, id);
    uint64_t v[7];
    for (int r = 1; r <= 6; r++)
        v[r] = put_break(f, r, 20);
    /* Partition 0: breaks 2, 4, 6; partition 1: breaks 1, 3, 5. */
    uint64_t oldest = 0;
    assert_int_equal(pending(f, id, &oldest), 6);
    assert_int_equal(oldest, v[1]);

    assert_int_equal(commit_mark(f, id, 1, v[5], T0_MS, 0), 0);
    assert_int_equal(pending(f, id, &oldest), 3);
    assert_int_equal(oldest, v[2]);

    assert_int_equal(commit_mark(f, id, 0, v[2], T0_MS, 0), 0);
    assert_int_equal(pending(f, id, &oldest), 2); /* breaks 4 and 6 */
    assert_int_equal(oldest, v[4]);

    /* A newer version of break 5 is pending again in partition 1. */
    uint64_t v5 = put_break(f, 5, 25);
    assert_int_equal(pending(f, id, &oldest), 3);
    assert_int_equal(oldest, v[4]);
    assert_int_equal(commit_mark(f, id, 0, v5, T0_MS, 0), 0);
    assert_int_equal(pending(f, id, &oldest), 1);
    assert_int_equal(oldest, v5);

    /* Disabled: nothing pending in any partition. */
    assert_int_equal(store_webhook_disable(f->fx.s, f->tenant, id, STORE_WH_DELETED, T0_MS + 1),
                     0);
    assert_int_equal(pending(f, id, &oldest), 0);
    assert_int_equal(oldest, 0);
}

/* ---- pruning ---------------------------------------------------------------------------- */

/* The change log is pruned only up to the lowest watermark of the webhook's
 * partitions: partition 0 far ahead does not let partition 1's events go. */
static void test_prune_per_partition(void **state)
{
    fixture_t *f = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 1, 2, id);
    uint64_t v[5];
    for (int r = 1; r <= 4; r++)
        v[r] = put_break(f, r, 20);
    clock_fake_advance(&f->fx.clock, 1000);

    assert_int_equal(commit_mark(f, id, 0, v[4], T0_MS, 0), 0);
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, T0_MS + 1000, &n), 0);
    assert_int_equal(n, f->seeded); /* only the seed, before the webhook's window */
    assert_int_equal(break_changes(f, v[1] - 1), 4); /* the horizon: the last seed */

    /* Partition 1 (breaks 1 and 3) delivered up to v[2]: break 1's v[1] is behind
     * it, break 3's v[3] is still pending. */
    assert_int_equal(commit_mark(f, id, 1, v[2], T0_MS, 0), 0);
    n = 0;
    assert_int_equal(store_changes_prune(f->fx.s, T0_MS + 1000, &n), 0);
    assert_int_equal(n, 2); /* v[1] and v[2] */
    assert_int_equal(break_changes(f, v[2]), 2);
    uint64_t oldest = 0;
    assert_int_equal(pending(f, id, &oldest), 1);
    assert_int_equal(oldest, v[3]);
}

/* ---- retry read-back ------------------------------------------------------------------ */

/* Per partition: the newest failed attempt of each of its records above its own
 * watermark, unless acknowledged at that version or a newer one. */
static void test_retrying_per_partition(void **state)
{
    fixture_t *f = *state;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    create(f, 1, 2, id);
    commit_failure(f, id, 1, 5, 1); /* partition 1 */
    commit_failure(f, id, 2, 6, 2); /* partition 0 */
    commit_failure(f, id, 3, 7, 1); /* partition 1, acknowledged below */
    commit_failure(f, id, 4, 8, 1); /* partition 0, a newer version acknowledged */
    commit_failure(f, id, 5, 3, 1); /* partition 1, then a newer failure */
    commit_failure(f, id, 5, 9, 2);
    commit_failure(f, id, 6, 4, 3); /* partition 0, acknowledged at an older version */
    commit_ack(f, id, 3, 7);
    commit_ack(f, id, 4, 10);
    commit_ack(f, id, 6, 2);

    assert_string_equal(retrying(f, id, 0), "2@6#2 6@4#3");
    assert_string_equal(retrying(f, id, 1), "1@5#1 5@9#2");

    /* Partition 1's watermark passes record 1's failure: partition 0 keeps its own. */
    assert_int_equal(commit_mark(f, id, 1, 5, 0, T0_MS), 0);
    assert_string_equal(retrying(f, id, 1), "5@9#2");
    assert_string_equal(retrying(f, id, 0), "2@6#2 6@4#3");
    assert_int_equal(commit_mark(f, id, 0, 4, 0, T0_MS), 0);
    assert_string_equal(retrying(f, id, 0), "2@6#2");
}

/* ---- migration 7 ------------------------------------------------------------------- */

/* A file at schema 6 (before migration 7) with a webhook's delivery state (watermark,
 * times, acks, a failed attempt, changes) opens with that state intact, as partition
 * 0 of a one-partition webhook, and keeps working. */
static void test_migration_keeps_state(void **state)
{
    fixture_t *f = *state;
    const int before = 6;
    assert_true((int)sqlite__n_migrations > before);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->fx.path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                                  " applied_at INTEGER NOT NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < before; i++) {
        assert_int_equal(sqlite3_exec(db, sqlite__migrations[i], NULL, NULL, NULL), SQLITE_OK);
        char *sql = sqlite3_mprintf("INSERT INTO schema_migrations VALUES (%d, 0)", i + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_free(sql);
    }
    char *sql = sqlite3_mprintf(
        "INSERT INTO tenants (id, name, created_at_ms, last_version) VALUES (1, 'old', 0, 12);"
        "INSERT INTO webhooks (tenant_id, id, collection, destination_url, ext_refs, key_blob,"
        " created_at_ms, valid_until_ms, status, reason, from_version, last_delivered_version,"
        " last_success_at_ms, last_failure_at_ms) VALUES"
        " (1, '00000000-0000-4000-8000-000000000001', 3, 'https://x/', '[]', x'01', 0,"
        "  %lld, 0, 0, 3, 7, %lld, %lld),"
        " (1, '00000000-0000-4000-8000-000000000002', 3, 'https://y/', '[]', x'02', 0,"
        "  %lld, 0, 0, 3, 0, NULL, NULL);"
        "INSERT INTO delivery_acks VALUES (1, '00000000-0000-4000-8000-000000000001', 9, 10),"
        " (1, '00000000-0000-4000-8000-000000000001', 12, 8);"
        "INSERT INTO delivery_attempts (tenant_id, webhook_id, event_id, record_id, version,"
        " change_type, attempt, attempted_at_ms, duration_ms, http_status, next_attempt_at_ms,"
        " status, excerpt) VALUES (1, '00000000-0000-4000-8000-000000000001', 'e1', 20, 11, 0,"
        " 2, %lld, 5, 503, %lld, 1, '');"
        "WITH RECURSIVE n(v) AS (SELECT 4 UNION ALL SELECT v + 1 FROM n WHERE v < 12)"
        " INSERT INTO changes (tenant_id, version, collection, type, record_id, date,"
        " committed_at_ms, body) SELECT 1, v, 3, 0, 100 + v, %d, %lld, '{}' FROM n;",
        T0_MS + DAY_MS, T0_MS - 5, T0_MS - 9, T0_MS + DAY_MS, T0_MS - 20, T0_MS + 11, DAY0,
        T0_MS - 30);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    sqlite3_close(db);

    fx_store_open(&f->fx);
    int v = 0;
    assert_int_equal(store_schema_version(f->fx.s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    f->tenant = 1;
    char id[STORE_WEBHOOK_ID_LEN + 1], id2[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    fx_webhook_id(id2, 2);

    store_webhook_t w = get(f, id);
    assert_int_equal(w.partitions, 1);
    assert_int_equal(w.from_version, 3);
    assert_int_equal(w.last_delivered_version, 7);
    assert_int_equal(w.last_success_at_ms, T0_MS - 5);
    assert_int_equal(w.last_failure_at_ms, T0_MS - 9);
    store_webhook_t w2 = get(f, id2);
    assert_int_equal(w2.partitions, 1);
    assert_int_equal(w2.last_delivered_version, 0);
    assert_int_equal(w2.last_success_at_ms, 0);
    assert_string_equal(acked(f, id, 0), "9@10 12@8");
    assert_string_equal(acked(f, id2, 0), "");
    store_retrying_t *r = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_retrying(f->fx.s, 1, id, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].record_id, 20);
    assert_int_equal(r[0].version, 11);
    assert_int_equal(r[0].attempt, 2);
    assert_int_equal(r[0].next_attempt_at_ms, T0_MS + 11);
    free(r);
    uint64_t oldest = 0;
    assert_int_equal(pending(f, id, &oldest), 5); /* 8..12 */
    assert_int_equal(oldest, 8);
    assert_int_equal(pending(f, id2, &oldest), 9); /* 4..12 */

    /* The old webhook columns are gone: the marks are the only copy. */
    assert_int_equal(sqlite3_open_v2(f->fx.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT COUNT(*) FROM pragma_table_info('webhooks')"
                                        " WHERE name IN ('last_delivered_version',"
                                        " 'last_success_at_ms', 'last_failure_at_ms')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* And it keeps working: raising the watermark drops the covered ack. */
    assert_int_equal(commit_mark(f, id, 0, 9, T0_MS, 0), 0);
    assert_string_equal(acked(f, id, 0), "9@10");
    assert_int_equal(get(f, id).last_delivered_version, 9);
    assert_int_equal(pending(f, id, &oldest), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_partition),
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watermark_per_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_by_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_per_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_per_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retrying_per_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_keeps_state, setup_bare, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
