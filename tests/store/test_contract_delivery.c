/*
 * test_contract_delivery.c: the back-end contract (tests/store/), part 4: the delivery
 * state through store.h only. The active list (expired and disabled webhooks left out,
 * swept or not), the attempt log (every field round trip, status filter and keyset
 * paging, the log of a disabled webhook, pruning by age), store_delivery_commit (an
 * invalid field refuses the whole batch; a record's ack only rises; the watermark only
 * rises and drops the acks at or below it; times only rise), the retry read-back,
 * tenant scoping of all of it, and large and concurrent commits.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test;
 * every test writes to two tenants of its own. That acks below the watermark leave the
 * SQLite file (rather than being filtered by the reads), and the migrations of the
 * delivery tables, are checked in tests/unit/test_store_sqlite.c.
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

#include "core/clock.h"
#include "core/err.h"
#include "model/model.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS 86400000LL
#define CAP 100

/* The store and two tenants, ta and tb (fixture_store.h). */
typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "dlv", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

/* ---- helpers ---------------------------------------------------------------------- */

static int id_num(const char *id)
{
    assert_int_equal(strlen(id), STORE_WEBHOOK_ID_LEN);
    return (int)strtol(id + 24, NULL, 10);
}

/* Creates webhook n of tenant, valid from T0 for valid_ms. */
static void create(fixture_t *f, int64_t tenant, int n, int64_t valid_ms)
{
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    fx_webhook_id(w.id, n);
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://hooks.example.com/%d", n);
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    w.key_blob_len = 60;
    for (size_t i = 0; i < w.key_blob_len; i++)
        w.key_blob[i] = (unsigned char)(n * 7 + (int)i);
    w.created_at_ms = T0_MS;
    w.valid_until_ms = T0_MS + valid_ms;
    assert_int_equal(store_webhook_create(f->fx.s, tenant, &w, CAP), 0);
}

static store_webhook_t get(fixture_t *f, int64_t tenant, int n)
{
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, n);
    store_webhook_t w;
    assert_int_equal(store_webhook_get(f->fx.s, tenant, id, &w), 0);
    return w;
}

/* A fully filled attempt of webhook n: every field derives from i, so a round trip
 * can be checked field by field. */
static void mk_attempt(store_attempt_t *a, int64_t tenant, int n, int i)
{
    memset(a, 0, sizeof(*a));
    a->tenant_id = tenant;
    fx_webhook_id(a->webhook_id, n);
    snprintf(a->event_id, sizeof(a->event_id), "evt_%d_%d_%s", n, i,
             "0123456789abcdef0123456789abcdef");
    a->record_id = 1000 + i;
    a->version = (uint64_t)(500 + i);
    a->change_type = i % 4 == 3 ? STORE_CHANGE_DELETE : STORE_CHANGE_UPSERT;
    a->attempt = 1 + i % 13;
    a->attempted_at_ms = T0_MS + i * 1000;
    a->duration_ms = 17 + i;
    a->status = (store_attempt_status_t)(i % 3);
    if (i % 5 == 1) {
        /* no answer: a transport error */
        a->http_status = 0;
        snprintf(a->error, sizeof(a->error), "connect refused (attempt %d)", i);
    } else {
        a->http_status = a->status == STORE_ATTEMPT_DELIVERED ? 200 + i % 5 : 503;
        /* answer bodies of every length, the longest at the cap */
        size_t len = (size_t)(i * 397) % (STORE_EXCERPT_MAX + 1);
        if (i % 7 == 0)
            len = STORE_EXCERPT_MAX;
        for (size_t k = 0; k < len; k++)
            a->excerpt[k] = (char)(' ' + (int)((k * 31 + (size_t)i) % 95));
        a->excerpt[len] = '\0';
    }
    a->next_attempt_at_ms = a->status == STORE_ATTEMPT_FAILED ? T0_MS + i * 1000 + 5000 : 0;
}

static void assert_attempt_equal(const store_attempt_t *x, const store_attempt_t *y)
{
    assert_int_equal(x->tenant_id, y->tenant_id);
    assert_string_equal(x->webhook_id, y->webhook_id);
    assert_string_equal(x->event_id, y->event_id);
    assert_int_equal(x->record_id, y->record_id);
    assert_int_equal(x->version, y->version);
    assert_int_equal(x->change_type, y->change_type);
    assert_int_equal(x->attempt, y->attempt);
    assert_int_equal(x->attempted_at_ms, y->attempted_at_ms);
    assert_int_equal(x->duration_ms, y->duration_ms);
    assert_int_equal(x->http_status, y->http_status);
    assert_string_equal(x->error, y->error);
    assert_int_equal(x->next_attempt_at_ms, y->next_attempt_at_ms);
    assert_int_equal(x->status, y->status);
    assert_int_equal(strlen(x->excerpt), strlen(y->excerpt));
    assert_memory_equal(x->excerpt, y->excerpt, strlen(x->excerpt) + 1);
}

/* An acknowledgement and a watermark as the engine fills them, by field name so that
 * a new field (zero by default) changes nothing here. */
#define ACK(t, w, rec, ver)                                                                \
    ((struct store_ack){ .tenant_id = (t), .webhook_id = (w), .record_id = (rec),         \
                         .version = (ver) })
#define MARK(t, w, ver, success_ms, failure_ms)                                            \
    ((struct store_watermark){ .tenant_id = (t), .webhook_id = (w), .version = (ver),      \
                               .last_success_at_ms = (success_ms),                         \
                               .last_failure_at_ms = (failure_ms) })

static int commit_attempts(fixture_t *f, const store_attempt_t *a, size_t n)
{
    store_delivery_batch_t b = { .attempts = a, .n_attempts = n };
    return store_delivery_commit(f->fx.s, &b);
}

static int commit_acks(fixture_t *f, const struct store_ack *k, size_t n)
{
    store_delivery_batch_t b = { .acks = k, .n_acks = n };
    return store_delivery_commit(f->fx.s, &b);
}

static int commit_mark(fixture_t *f, int64_t tenant, const char *id, uint64_t version,
                       int64_t success_ms, int64_t failure_ms)
{
    struct store_watermark m = MARK(tenant, id, version, success_ms, failure_ms);
    store_delivery_batch_t b = { .marks = &m, .n_marks = 1 };
    return store_delivery_commit(f->fx.s, &b);
}

/* Lists one page; returns the row count (the arrays are the caller's). */
static size_t list(fixture_t *f, int64_t tenant, const char *id, int status, int64_t before,
                   size_t limit, store_attempt_t **rows, int64_t **seqs)
{
    store_attempt_query_t q = { status, before, limit };
    size_t n = 9999;
    assert_int_equal(store_attempts_list(f->fx.s, tenant, id, &q, rows, seqs, &n), 0);
    return n;
}

/* The acked versions of a webhook as a record_id -> version lookup for the test. */
static size_t acked(fixture_t *f, int64_t tenant, const char *id, store_acked_t **out)
{
    size_t n = 9999;
    assert_int_equal(store_delivery_acked(f->fx.s, tenant, id, 0, out, &n), 0);
    for (size_t i = 1; i < n; i++)
        assert_true((*out)[i - 1].record_id < (*out)[i].record_id);
    return n;
}

/* How many attempts webhook id of tenant has in its log. */
static size_t attempts_count(fixture_t *f, int64_t tenant, const char *id)
{
    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    size_t n = list(f, tenant, id, -1, 0, 1000000, &rows, &seqs);
    free(rows);
    free(seqs);
    return n;
}

/* The webhook numbers of the active list at now_ms that belong to this test's tenants,
 * in the list's order (a shared store has other tenants' webhooks too); n_all gets
 * the whole list's length. */
static size_t active_mine(fixture_t *f, int64_t now_ms, int *nums, size_t *n_all)
{
    store_webhook_t *w = NULL;
    size_t n = 0, k = 0;
    assert_int_equal(store_webhooks_active(f->fx.s, now_ms, &w, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (w[i].tenant_id != f->ta && w[i].tenant_id != f->tb)
            continue;
        assert_int_equal(w[i].status, STORE_WH_ENABLED);
        assert_true(w[i].valid_until_ms > now_ms);
        nums[k++] = id_num(w[i].id);
    }
    free(w);
    if (n_all)
        *n_all = n;
    return k;
}

static uint64_t acked_version(const store_acked_t *a, size_t n, int64_t record_id)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].record_id == record_id)
            return a[i].version;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the active list ------------------------------------------------------------- */

/* Enabled webhooks of every tenant, with their keys; expired (swept or not) and
 * disabled ones are left out. */
static void test_active(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->ta, 2, 30 * DAY_MS);
    create(f, f->ta, 3, 1 * DAY_MS);  /* expires, not swept */
    create(f, f->tb, 4, 30 * DAY_MS);
    create(f, f->tb, 5, 2 * DAY_MS);  /* expires, swept */
    create(f, f->tb, 6, 30 * DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 2);
    assert_int_equal(store_webhook_disable(f->fx.s, f->ta, id, STORE_WH_DELETED, T0_MS + 5), 0);
    fx_webhook_id(id, 6);
    assert_int_equal(store_webhook_disable(f->fx.s, f->tb, id, STORE_WH_RETRIES_EXHAUSTED,
                                           T0_MS + 5),
                     0);

    store_webhook_t *w = NULL;
    size_t n = 0;
    assert_int_equal(store_webhooks_active(f->fx.s, T0_MS + 10, &w, &n), 0);
    size_t k = 0;
    int want[] = { 1, 3, 4, 5 };
    for (size_t i = 0; i < n; i++) {
        if (w[i].tenant_id != f->ta && w[i].tenant_id != f->tb)
            continue;
        assert_true(k < 4);
        assert_int_equal(id_num(w[i].id), want[k]);
        assert_int_equal(w[i].status, STORE_WH_ENABLED);
        assert_int_equal(w[i].key_blob_len, 60);
        assert_int_equal(w[i].key_blob[1], (unsigned char)(want[k] * 7 + 1));
        assert_int_equal(w[i].tenant_id, want[k] <= 3 ? f->ta : f->tb);
        k++;
    }
    assert_int_equal(k, 4);
    fx_store_assert_count(&f->fx, n, 4);
    free(w);

    size_t swept = 0;
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 3 * DAY_MS, &swept), 0);
    fx_store_assert_count(&f->fx, swept, 2); /* 3 and 5 */
    /* At two days, 3 is expired (unswept at that time, but swept now) and 5 is not
     * past valid_until, but swept: the sweep has the last word. */
    int got[8];
    assert_int_equal(active_mine(f, T0_MS + 1 * DAY_MS + 1, got, NULL), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 4);

    /* Unswept expiry: valid_until <= now_ms is not active. */
    create(f, f->ta, 7, 4 * DAY_MS);
    assert_int_equal(active_mine(f, T0_MS + 4 * DAY_MS, got, NULL), 2);
    assert_int_equal(active_mine(f, T0_MS + 4 * DAY_MS - 1, got, NULL), 3);
    assert_int_equal(active_mine(f, T0_MS + 31 * DAY_MS, got, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
    if (!fx_store_shared(&f->fx)) {
        assert_int_equal(store_webhooks_active(f->fx.s, T0_MS + 31 * DAY_MS, &w, &n), 0);
        assert_null(w);
    }

    assert_int_equal(store_webhooks_active(f->fx.s, 0, &w, &n), BH_EINVAL);
    assert_int_equal(store_webhooks_active(f->fx.s, T0_MS, NULL, &n), BH_EINVAL);
}

/* ---- the attempt log ------------------------------------------------------------- */

/* Every field survives the round trip, newest first; seq rises with each append. */
static void test_attempts_roundtrip(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->ta, 2, 30 * DAY_MS);
    enum { N = 30 };
    store_attempt_t *in = calloc(N, sizeof(*in));
    assert_non_null(in);
    for (int i = 0; i < N; i++)
        mk_attempt(&in[i], f->ta, 1, i);
    /* Two commits, and an attempt of another webhook in between. */
    assert_int_equal(commit_attempts(f, in, 10), 0);
    store_attempt_t other;
    mk_attempt(&other, f->ta, 2, 99);
    assert_int_equal(commit_attempts(f, &other, 1), 0);
    assert_int_equal(commit_attempts(f, in + 10, N - 10), 0);

    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    size_t n = list(f, f->ta, id, -1, 0, 100, &rows, &seqs);
    assert_int_equal(n, N);
    bool saw_full = false, saw_error = false, saw_empty = false;
    for (size_t i = 0; i < n; i++) {
        assert_attempt_equal(&rows[i], &in[N - 1 - i]);
        if (i > 0)
            assert_true(seqs[i] < seqs[i - 1]);
        saw_full |= strlen(rows[i].excerpt) == STORE_EXCERPT_MAX;
        saw_error |= rows[i].http_status == 0 && rows[i].error[0];
        saw_empty |= rows[i].excerpt[0] == '\0';
    }
    assert_true(saw_full && saw_error && saw_empty);
    free(rows);
    free(seqs);

    fx_webhook_id(id, 2);
    n = list(f, f->ta, id, -1, 0, 100, &rows, &seqs);
    assert_int_equal(n, 1);
    assert_attempt_equal(&rows[0], &other);
    free(rows);
    free(seqs);

    /* limit 0: no rows, but the webhook exists. */
    n = list(f, f->ta, id, -1, 0, 0, &rows, &seqs);
    assert_int_equal(n, 0);
    assert_null(rows);
    assert_null(seqs);
    free(in);
}

/* Status filter and keyset paging, with and without the filter: pages chain without
 * gaps or repeats, in seq order. */
static void test_attempts_paging(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    enum { N = 100 };
    store_attempt_t *in = calloc(N, sizeof(*in));
    assert_non_null(in);
    size_t per_status[3] = { 0 };
    for (int i = 0; i < N; i++) {
        mk_attempt(&in[i], f->ta, 1, i);
        /* an uneven mix: runs of one status */
        in[i].status = (store_attempt_status_t)(i < 10 ? 2 : (i / 7) % 3 == 0 ? 1 : 0);
        per_status[in[i].status]++;
    }
    for (int i = 0; i < N; i += 9)
        assert_int_equal(commit_attempts(f, in + i, (size_t)(N - i < 9 ? N - i : 9)), 0);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);

    for (int status = -1; status <= 2; status++) {
        for (size_t page = 1; page <= 8; page += 3) {
            int64_t before = 0, last_seq = INT64_MAX;
            size_t total = 0;
            int expect = N - 1; /* index into in[], newest first */
            for (;;) {
                store_attempt_t *rows = NULL;
                int64_t *seqs = NULL;
                size_t n = list(f, f->ta, id, status, before, page, &rows, &seqs);
                assert_true(n <= page);
                for (size_t i = 0; i < n; i++) {
                    assert_true(seqs[i] < last_seq);
                    last_seq = seqs[i];
                    if (status != -1)
                        assert_int_equal(rows[i].status, status);
                    while (status != -1 && (int)in[expect].status != status)
                        expect--;
                    assert_true(expect >= 0);
                    assert_string_equal(rows[i].event_id, in[expect].event_id);
                    expect--;
                }
                total += n;
                if (n > 0)
                    before = seqs[n - 1];
                free(rows);
                free(seqs);
                if (n < page)
                    break;
            }
            assert_int_equal(total, status == -1 ? N : per_status[status]);
        }
    }

    /* A cursor older than everything: an empty page. */
    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    assert_int_equal(list(f, f->ta, id, -1, 1, 10, &rows, &seqs), 0);

    /* Bad queries. */
    store_attempt_query_t q = { 3, 0, 10 };
    size_t n;
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, id, &q, &rows, &seqs, &n), BH_EINVAL);
    q.status = -2;
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, id, &q, &rows, &seqs, &n), BH_EINVAL);
    q.status = -1;
    q.before_seq = -1;
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, id, &q, &rows, &seqs, &n), BH_EINVAL);
    q.before_seq = 0;
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, id, &q, &rows, NULL, &n), BH_EINVAL);
    free(in);
}

/* An invalid field refuses the whole batch, and nothing is written. */
static void test_commit_invalid(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    store_attempt_t a[2];
    mk_attempt(&a[0], f->ta, 1, 1);
    mk_attempt(&a[1], f->ta, 1, 2);

    store_attempt_t bad = a[1];
    bad.status = (store_attempt_status_t)3;
    store_attempt_t pair[2] = { a[0], bad };
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    bad.tenant_id = 0;
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    bad.webhook_id[10] = '\0';
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    memset(bad.excerpt, 'x', sizeof(bad.excerpt)); /* no NUL inside the field */
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    bad.event_id[0] = '\0';
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    bad.version = (uint64_t)INT64_MAX + 1;
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);
    bad = a[1];
    bad.attempt = 0;
    pair[1] = bad;
    assert_int_equal(commit_attempts(f, pair, 2), BH_EINVAL);

    struct store_ack k = ACK(f->ta, id, 5, 0);
    assert_int_equal(commit_acks(f, &k, 1), BH_EINVAL);
    k.version = 3;
    k.webhook_id = "short";
    assert_int_equal(commit_acks(f, &k, 1), BH_EINVAL);
    assert_int_equal(commit_mark(f, f->ta, id, (uint64_t)INT64_MAX + 1, 0, 0), BH_EINVAL);
    assert_int_equal(commit_mark(f, f->ta, id, 3, -1, 0), BH_EINVAL);
    assert_int_equal(commit_mark(f, 0, id, 3, 0, 0), BH_EINVAL);

    store_delivery_batch_t b = { .attempts = NULL, .n_attempts = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), BH_EINVAL);
    assert_int_equal(store_delivery_commit(f->fx.s, NULL), BH_EINVAL);
    store_delivery_batch_t empty = { 0 };
    assert_int_equal(store_delivery_commit(f->fx.s, &empty), 0);

    assert_int_equal(attempts_count(f, f->ta, id), 0);
    store_acked_t *acks = NULL;
    assert_int_equal(acked(f, f->ta, id, &acks), 0);
    free(acks);
    assert_int_equal(get(f, f->ta, 1).last_delivered_version, 0);

    /* An attempt whose record the engine no longer knows (record id 0) is logged. */
    bad = a[1];
    bad.record_id = -1;
    assert_int_equal(commit_attempts(f, &bad, 1), BH_EINVAL);
    bad.record_id = 0;
    assert_int_equal(commit_attempts(f, &bad, 1), 0);
    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    assert_int_equal(list(f, f->ta, id, -1, 0, 10, &rows, &seqs), 1);
    assert_int_equal(rows[0].record_id, 0);
    free(rows);
    free(seqs);
}

/* ---- acks and watermarks --------------------------------------------------------- */

static void test_acks_watermark(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->ta, 2, 30 * DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1], id2[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    fx_webhook_id(id2, 2);

    store_acked_t *a = NULL;
    assert_int_equal(acked(f, f->ta, id, &a), 0);
    assert_null(a);
    /* A webhook has one partition: every record's acks are in partition 0
     * (store_record_partition), the one acked() reads. */
    assert_int_equal(get(f, f->ta, 1).partitions, 1);
    assert_int_equal(store_record_partition(41, get(f, f->ta, 1).partitions), 0);

    /* A record's acked version only rises, also within one batch. */
    struct store_ack k1[] = {
        ACK(f->ta, id, 10, 5), ACK(f->ta, id, 11, 7), ACK(f->ta, id, 12, 9),
        ACK(f->ta, id, 10, 8), ACK(f->ta, id, 10, 6), ACK(f->ta, id2, 10, 4),
    };
    assert_int_equal(commit_acks(f, k1, sizeof(k1) / sizeof(k1[0])), 0);
    size_t n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 3);
    assert_int_equal(acked_version(a, n, 10), 8);
    assert_int_equal(acked_version(a, n, 11), 7);
    assert_int_equal(acked_version(a, n, 12), 9);
    free(a);
    struct store_ack k2[] = { ACK(f->ta, id, 11, 3), ACK(f->ta, id, 12, 20) };
    assert_int_equal(commit_acks(f, k2, 2), 0);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(acked_version(a, n, 11), 7);
    assert_int_equal(acked_version(a, n, 12), 20);
    free(a);

    /* The watermark rises to 8: acks at or below it are dropped, the others stay;
     * webhook 2's acks are untouched. */
    assert_int_equal(commit_mark(f, f->ta, id, 8, T0_MS + 100, 0), 0);
    store_webhook_t w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 8);
    assert_int_equal(w.last_success_at_ms, T0_MS + 100);
    assert_int_equal(w.last_failure_at_ms, 0);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].record_id, 12);
    assert_int_equal(a[0].version, 20);
    free(a);
    n = acked(f, f->ta, id2, &a);
    assert_int_equal(n, 1);
    assert_int_equal(acked_version(a, n, 10), 4);
    free(a);

    /* The watermark never falls; the times only rise, 0 leaves them. */
    assert_int_equal(commit_mark(f, f->ta, id, 4, T0_MS + 50, T0_MS + 60), 0);
    w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 8);
    assert_int_equal(w.last_success_at_ms, T0_MS + 100);
    assert_int_equal(w.last_failure_at_ms, T0_MS + 60);
    assert_int_equal(commit_mark(f, f->ta, id, 0, 0, T0_MS + 70), 0);
    w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 8);
    assert_int_equal(w.last_success_at_ms, T0_MS + 100);
    assert_int_equal(w.last_failure_at_ms, T0_MS + 70);

    /* An ack at or below the watermark is not kept. */
    struct store_ack k3[] = { ACK(f->ta, id, 30, 8), ACK(f->ta, id, 31, 2),
                              ACK(f->ta, id, 32, 9) };
    assert_int_equal(commit_acks(f, k3, 3), 0);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 2);
    assert_int_equal(acked_version(a, n, 32), 9);
    assert_int_equal(acked_version(a, n, 12), 20);
    free(a);

    /* One batch: attempts, acks and marks together, the mark covering some of the
     * batch's own acks. Two marks for one webhook: the higher wins. */
    store_attempt_t at;
    mk_attempt(&at, f->ta, 1, 3);
    struct store_ack k4[] = { ACK(f->ta, id, 40, 15), ACK(f->ta, id, 41, 25),
                              ACK(f->ta, id2, 11, 6) };
    struct store_watermark m4[] = { MARK(f->ta, id, 15, T0_MS + 200, 0),
                                    MARK(f->ta, id, 12, T0_MS + 150, 0),
                                    MARK(f->ta, id2, 5, 0, T0_MS + 300) };
    store_delivery_batch_t b = { .attempts = &at, .n_attempts = 1, .acks = k4, .n_acks = 3,
                                 .marks = m4, .n_marks = 3 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
    w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 15);
    assert_int_equal(w.last_success_at_ms, T0_MS + 200);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 2); /* 12@20 and 41@25; 32@9 and 40@15 dropped */
    assert_int_equal(acked_version(a, n, 12), 20);
    assert_int_equal(acked_version(a, n, 41), 25);
    free(a);
    w = get(f, f->ta, 2);
    assert_int_equal(w.last_delivered_version, 5);
    assert_int_equal(w.last_failure_at_ms, T0_MS + 300);
    n = acked(f, f->ta, id2, &a);
    assert_int_equal(n, 1); /* 10@4 dropped, 11@6 kept */
    assert_int_equal(a[0].record_id, 11);
    free(a);

    /* A disabled webhook's state is still recorded (results of requests in flight). */
    assert_int_equal(store_webhook_disable(f->fx.s, f->ta, id, STORE_WH_DELETED, T0_MS + 400), 0);
    assert_int_equal(commit_mark(f, f->ta, id, 30, T0_MS + 500, 0), 0);
    assert_int_equal(get(f, f->ta, 1).last_delivered_version, 30);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 0);
    free(a);
}

/* ---- tenancy and soft delete ----------------------------------------------------- */

/* One attempt of webhook 1 for (record, version) with status and attempt number. */
static store_attempt_t retry_row(fixture_t *f, int64_t record, uint64_t version,
                                 store_attempt_status_t status, int attempt)
{
    store_attempt_t a;
    mk_attempt(&a, f->ta, 1, 0);
    a.record_id = record;
    a.version = version;
    a.status = status;
    a.attempt = attempt;
    a.next_attempt_at_ms = status == STORE_ATTEMPT_FAILED ? T0_MS + attempt * 60000 : 0;
    return a;
}

/* store_delivery_retrying: per record, the newest Failed attempt above the watermark
 * (what a restart resumes); nothing for records whose newest attempt is not a failure,
 * nor at or below the watermark; BH_ENOTFOUND for a missing webhook. */
static void test_retrying(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    store_retrying_t *r = NULL;
    size_t n = 99;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->ta, id, 0, &r, &n), 0);
    assert_int_equal(n, 0);
    free(r);

    store_attempt_t a[] = {
        retry_row(f, 10, 100, STORE_ATTEMPT_FAILED, 1),    /* record 10: failing, ... */
        retry_row(f, 10, 100, STORE_ATTEMPT_FAILED, 2),    /* ... twice now */
        retry_row(f, 11, 101, STORE_ATTEMPT_FAILED, 1),    /* record 11: failed, ... */
        retry_row(f, 11, 101, STORE_ATTEMPT_DELIVERED, 2), /* ... then delivered */
        retry_row(f, 12, 50, STORE_ATTEMPT_FAILED, 4),     /* record 12: below the mark */
        retry_row(f, 13, 103, STORE_ATTEMPT_GAVE_UP, 3),   /* record 13: not a retry */
    };
    assert_int_equal(commit_attempts(f, a, sizeof(a) / sizeof(a[0])), 0);
    /* The engine commits an ack with each delivery (record 11); record 10 has an ack
     * of an older version, which does not end its retries. */
    struct store_ack k[] = { ACK(f->ta, id, 11, 101), ACK(f->ta, id, 10, 90) };
    assert_int_equal(commit_acks(f, k, 2), 0);
    assert_int_equal(commit_mark(f, f->ta, id, 60, 0, 0), 0);
    assert_int_equal(store_delivery_retrying(f->fx.s, f->ta, id, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].record_id, 10);
    assert_int_equal(r[0].version, 100);
    assert_int_equal(r[0].attempt, 2);
    assert_int_equal(r[0].next_attempt_at_ms, T0_MS + 2 * 60000);
    free(r);

    /* The other tenant, or an unknown id: not found. */
    r = NULL;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->tb, id, 0, &r, &n), BH_ENOTFOUND);
    assert_null(r);
    fx_webhook_id(id, 2);
    assert_int_equal(store_delivery_retrying(f->fx.s, f->ta, id, 0, &r, &n), BH_ENOTFOUND);
}

/* The retry read-back per record: a newer version's failure replaces an older one's
 * (with its own attempt count), an ack of a newer version than the failure ends it,
 * and failures committed in separate batches count like one batch. */
static void test_retrying_newest_attempt(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    store_attempt_t a[] = {
        retry_row(f, 21, 100, STORE_ATTEMPT_FAILED, 3),  /* record 21: v100 failing, ... */
        retry_row(f, 21, 110, STORE_ATTEMPT_FAILED, 1),  /* ... then v110 failing */
        retry_row(f, 22, 100, STORE_ATTEMPT_FAILED, 1),  /* record 22: acked at v105 */
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        assert_int_equal(commit_attempts(f, &a[i], 1), 0);
    struct store_ack k = ACK(f->ta, id, 22, 105);
    assert_int_equal(commit_acks(f, &k, 1), 0);
    store_retrying_t *r = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->ta, id, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].record_id, 21);
    assert_int_equal(r[0].version, 110);
    assert_int_equal(r[0].attempt, 1);
    assert_int_equal(r[0].next_attempt_at_ms, T0_MS + 60000);
    free(r);
}

/* A record is retrying when its newest attempt above the watermark failed: a
 * failure followed by a give-up of the same version is not (store.h). The engine
 * disables a webhook when it gives up, so it does not read this today; a later
 * replay or re-enable would. */
static void test_retrying_after_give_up(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    store_attempt_t a[] = {
        retry_row(f, 20, 100, STORE_ATTEMPT_FAILED, 1),
        retry_row(f, 20, 100, STORE_ATTEMPT_GAVE_UP, 2),
    };
    assert_int_equal(commit_attempts(f, a, 2), 0);
    store_retrying_t *r = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_retrying(f->fx.s, f->ta, id, 0, &r, &n), 0);
    free(r);
    assert_int_equal(n, 0);
}

static void test_tenant_isolation(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->tb, 2, 30 * DAY_MS);
    char id[STORE_WEBHOOK_ID_LEN + 1], idb[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    fx_webhook_id(idb, 2);
    store_attempt_t at;
    mk_attempt(&at, f->ta, 1, 0);
    struct store_ack k = ACK(f->ta, id, 5, 9);
    struct store_watermark m = MARK(f->ta, id, 3, T0_MS + 1, 0);
    store_delivery_batch_t b = { .attempts = &at, .n_attempts = 1, .acks = &k, .n_acks = 1,
                                 .marks = &m, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);

    /* B cannot see A's log or acks: its id is not found, exactly like a missing one. */
    store_attempt_query_t q = { -1, 0, 10 };
    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    size_t n = 0;
    assert_int_equal(store_attempts_list(f->fx.s, f->tb, id, &q, &rows, &seqs, &n), BH_ENOTFOUND);
    assert_null(rows);
    assert_int_equal(n, 0);
    q.limit = 0;
    assert_int_equal(store_attempts_list(f->fx.s, f->tb, id, &q, &rows, &seqs, &n), BH_ENOTFOUND);
    q.limit = 10;
    char missing[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(missing, 3);
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, missing, &q, &rows, &seqs, &n),
                     BH_ENOTFOUND);
    assert_int_equal(store_attempts_list(f->fx.s, f->ta, "nope", &q, &rows, &seqs, &n),
                     BH_ENOTFOUND);
    assert_int_equal(store_attempts_list(f->fx.s, 0, id, &q, &rows, &seqs, &n), BH_ENOTFOUND);
    store_acked_t *a = NULL;
    assert_int_equal(store_delivery_acked(f->fx.s, f->tb, id, 0, &a, &n), BH_ENOTFOUND);
    assert_int_equal(store_delivery_acked(f->fx.s, f->ta, missing, 0, &a, &n), BH_ENOTFOUND);
    assert_int_equal(store_delivery_acked(f->fx.s, f->ta, "nope", 0, &a, &n), BH_ENOTFOUND);

    /* B's writes naming A's webhook change nothing of A's. */
    struct store_ack kb = ACK(f->tb, id, 6, 50);
    struct store_watermark mb = MARK(f->tb, id, 40, T0_MS + 9, T0_MS + 9);
    store_delivery_batch_t bb = { .acks = &kb, .n_acks = 1, .marks = &mb, .n_marks = 1 };
    assert_int_equal(store_delivery_commit(f->fx.s, &bb), 0);
    store_webhook_t w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 3);
    assert_int_equal(w.last_success_at_ms, T0_MS + 1);
    assert_int_equal(w.last_failure_at_ms, 0);
    n = acked(f, f->ta, id, &a);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].record_id, 5);
    free(a);
    n = acked(f, f->tb, idb, &a);
    assert_int_equal(n, 0);
    assert_int_equal(get(f, f->tb, 2).last_delivered_version, 0);

    /* A sees its own log; B's webhook has an empty one. */
    n = list(f, f->ta, id, -1, 0, 10, &rows, &seqs);
    assert_int_equal(n, 1);
    free(rows);
    free(seqs);
    n = list(f, f->tb, idb, -1, 0, 10, &rows, &seqs);
    assert_int_equal(n, 0);
}

/* The log of a deleted (or otherwise disabled) webhook stays readable. */
static void test_deleted_listable(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->ta, 2, 1 * DAY_MS);
    store_attempt_t at[3];
    mk_attempt(&at[0], f->ta, 1, 0);
    mk_attempt(&at[1], f->ta, 1, 1);
    mk_attempt(&at[2], f->ta, 2, 2);
    assert_int_equal(commit_attempts(f, at, 3), 0);
    char id[STORE_WEBHOOK_ID_LEN + 1], id2[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    fx_webhook_id(id2, 2);
    assert_int_equal(store_webhook_disable(f->fx.s, f->ta, id, STORE_WH_DELETED, T0_MS + 5), 0);
    size_t swept = 0;
    assert_int_equal(store_webhooks_expire(f->fx.s, T0_MS + 2 * DAY_MS, &swept), 0);
    fx_store_assert_count(&f->fx, swept, 1);

    /* An attempt that finishes after the delete is still logged. */
    store_attempt_t late;
    mk_attempt(&late, f->ta, 1, 5);
    assert_int_equal(commit_attempts(f, &late, 1), 0);

    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    size_t n = list(f, f->ta, id, -1, 0, 10, &rows, &seqs);
    assert_int_equal(n, 3);
    assert_attempt_equal(&rows[0], &late);
    assert_attempt_equal(&rows[2], &at[0]);
    free(rows);
    free(seqs);
    n = list(f, f->ta, id2, -1, 0, 10, &rows, &seqs);
    assert_int_equal(n, 1);
    free(rows);
    free(seqs);
}

/* ---- retention ------------------------------------------------------------------- */

static void test_prune(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    create(f, f->tb, 2, 30 * DAY_MS);
    /* 12,345 old attempts (more than two chunks), then 20 recent ones, of two
     * tenants, committed out of time order. */
    enum { OLD = 12345, NEW = 20 };
    store_attempt_t *at = calloc(OLD + NEW, sizeof(*at));
    assert_non_null(at);
    for (int i = 0; i < OLD + NEW; i++) {
        mk_attempt(&at[i], i % 2 ? f->tb : f->ta, i % 2 ? 2 : 1, i % 50);
        at[i].attempted_at_ms = i < OLD ? T0_MS + (int64_t)((i * 7919) % OLD)
                                        : T0_MS + 8 * DAY_MS + i;
    }
    for (size_t i = 0; i < OLD + NEW; i += 4000) {
        size_t k = OLD + NEW - i < 4000 ? OLD + NEW - i : 4000;
        assert_int_equal(commit_attempts(f, at + i, k), 0);
    }
    char id[STORE_WEBHOOK_ID_LEN + 1], id2[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    fx_webhook_id(id2, 2);
    /* Nothing older than the oldest. */
    size_t n = 99;
    assert_int_equal(store_attempts_prune(f->fx.s, T0_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, 0);
    assert_int_equal(attempts_count(f, f->ta, id) + attempts_count(f, f->tb, id2), OLD + NEW);
    /* Strictly before: the attempts at T0 + 0 .. T0 + 99 (one each). */
    assert_int_equal(store_attempts_prune(f->fx.s, T0_MS + 100, &n), 0);
    fx_store_assert_count(&f->fx, n, 100);
    assert_int_equal(attempts_count(f, f->ta, id) + attempts_count(f, f->tb, id2),
                     OLD + NEW - 100);

    double t0 = now_s();
    assert_int_equal(store_attempts_prune(f->fx.s, T0_MS + 7 * DAY_MS, &n), 0);
    double dt = now_s() - t0;
    fx_store_assert_count(&f->fx, n, OLD - 100);
    printf("    prune of %d attempts in chunks: %.1f ms\n", OLD - 100, dt * 1000);
    assert_int_equal(attempts_count(f, f->ta, id) + attempts_count(f, f->tb, id2), NEW);

    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    n = list(f, f->ta, id, -1, 0, 100, &rows, &seqs);
    assert_int_equal(n, NEW / 2);
    for (size_t i = 0; i < n; i++)
        assert_true(rows[i].attempted_at_ms >= T0_MS + 8 * DAY_MS);
    int64_t newest = seqs[0];
    free(rows);
    free(seqs);

    /* Emptied, the log keeps counting: a new attempt never reuses a seq a client may
     * hold as a cursor. */
    assert_int_equal(store_attempts_prune(f->fx.s, T0_MS + 30 * DAY_MS, &n), 0);
    fx_store_assert_count(&f->fx, n, NEW);
    assert_int_equal(commit_attempts(f, at, 1), 0);
    n = list(f, f->ta, id, -1, 0, 100, &rows, &seqs);
    assert_int_equal(n, 1);
    assert_true(seqs[0] > newest);
    free(rows);
    free(seqs);

    assert_int_equal(store_attempts_prune(f->fx.s, 0, &n), BH_EINVAL);
    assert_int_equal(store_attempts_prune(f->fx.s, T0_MS, NULL), BH_EINVAL);
    free(at);
}

/* ---- scale and concurrency ------------------------------------------------------- */

/* The engine's worst batch: thousands of attempts and acks across webhooks of both
 * tenants, in one job. */
static void test_large_commit(void **state)
{
    fixture_t *f = *state;
    enum { WH = 10, N = 5000 };
    for (int i = 0; i < WH; i++)
        create(f, i % 2 ? f->tb : f->ta, i + 1, 30 * DAY_MS);
    store_attempt_t *at = calloc(N, sizeof(*at));
    struct store_ack *k = calloc(N, sizeof(*k));
    char (*ids)[STORE_WEBHOOK_ID_LEN + 1] = calloc(WH, sizeof(*ids));
    assert_non_null(at);
    assert_non_null(k);
    assert_non_null(ids);
    for (int i = 0; i < WH; i++)
        fx_webhook_id(ids[i], i + 1);
    for (int i = 0; i < N; i++) {
        int w = i % WH;
        int64_t tenant = w % 2 ? f->tb : f->ta;
        mk_attempt(&at[i], tenant, w + 1, i);
        at[i].excerpt[i % 600] = '\0'; /* realistic bodies: a few hundred bytes */
        k[i] = ACK(tenant, ids[w], 1 + i / WH, (uint64_t)(100 + i));
    }
    struct store_watermark m[WH];
    for (int w = 0; w < WH; w++)
        m[w] = MARK(w % 2 ? f->tb : f->ta, ids[w], (uint64_t)(100 + N / 2), T0_MS + 1, 0);

    store_delivery_batch_t b = { .attempts = at, .n_attempts = N, .acks = k, .n_acks = N,
                                 .marks = m, .n_marks = WH };
    double t0 = now_s();
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
    double dt = now_s() - t0;
    printf("    commit of %d attempts + %d acks + %d marks: %.1f ms\n", N, N, WH, dt * 1000);

    /* A second batch of the same size (steady state: the tables are not empty). */
    for (int i = 0; i < N; i++) {
        at[i].version += N;
        k[i].version += N;
    }
    for (int w = 0; w < WH; w++)
        m[w].version += N;
    t0 = now_s();
    assert_int_equal(store_delivery_commit(f->fx.s, &b), 0);
    dt = now_s() - t0;
    printf("    second commit of the same size: %.1f ms\n", dt * 1000);

    /* Each record's ack went from 100+i to 100+N+i; the watermark is 100+N+N/2, so
     * the upper half of each webhook's acks is left. */
    size_t attempts = 0, acks = 0, n = 0;
    for (int w = 0; w < WH; w++) {
        int64_t tenant = w % 2 ? f->tb : f->ta;
        attempts += attempts_count(f, tenant, ids[w]);
        store_acked_t *a = NULL;
        n = acked(f, tenant, ids[w], &a);
        for (size_t i = 0; i < n; i++)
            assert_true(a[i].version > 100 + N + N / 2);
        acks += n;
        free(a);
    }
    assert_int_equal(attempts, 2 * N);
    assert_int_equal(acks, N / 2 - 1);

    store_attempt_t *rows = NULL;
    int64_t *seqs = NULL;
    t0 = now_s();
    n = list(f, f->tb, ids[1], -1, 0, 50, &rows, &seqs);
    dt = now_s() - t0;
    printf("    first page of 50 (no filter, %d attempts): %.2f ms\n", 2 * N / WH, dt * 1000);
    assert_int_equal(n, 50);
    assert_int_equal(rows[0].record_id, at[N - WH + 1].record_id);
    free(rows);
    free(seqs);
    free(at);
    free(k);
    free(ids);
}

typedef struct {
    fixture_t *f;
    int thread;
} worker_arg_t;

enum { THREADS = 8, ROUNDS = 40 };

/* Small batches from many threads share group commits (each job in a savepoint). */
static void *worker(void *p)
{
    worker_arg_t *w = p;
    fixture_t *f = w->f;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    for (int r = 0; r < ROUNDS; r++) {
        int i = w->thread * ROUNDS + r;
        store_attempt_t at;
        mk_attempt(&at, f->ta, 1, i);
        struct store_ack k = ACK(f->ta, id, 1000 + i, (uint64_t)(10 + i));
        struct store_watermark m = MARK(f->ta, id, (uint64_t)(5 + i), T0_MS + i, 0);
        store_delivery_batch_t b = { .attempts = &at, .n_attempts = 1, .acks = &k, .n_acks = 1,
                                 .marks = &m, .n_marks = 1 };
        if (store_delivery_commit(f->fx.s, &b) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    fixture_t *f = *state;
    create(f, f->ta, 1, 30 * DAY_MS);
    pthread_t th[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){ f, i };
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    int last = THREADS * ROUNDS - 1;
    store_webhook_t w = get(f, f->ta, 1);
    assert_int_equal(w.last_delivered_version, 5 + last);
    assert_int_equal(w.last_success_at_ms, T0_MS + last);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    fx_webhook_id(id, 1);
    assert_int_equal(attempts_count(f, f->ta, id), THREADS * ROUNDS);
    /* Every ack left is above the final watermark, and every one above it is left. */
    store_acked_t *a = NULL;
    size_t n = acked(f, f->ta, id, &a);
    for (size_t i = 0; i < n; i++)
        assert_true(a[i].version > w.last_delivered_version);
    free(a);
    assert_int_equal(n, 5); /* versions 10 + last - 4 .. 10 + last */
    store_stats_t st;
    store_get_stats(f->fx.s, &st);
    printf("    %llu writes in %llu commits\n", (unsigned long long)st.writes,
           (unsigned long long)st.commits);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_watermark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retrying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retrying_newest_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retrying_after_give_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_listable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
