/*
 * test_contract_notify.c: the back-end contract (tests/store/), commit notifications
 * between store handles: two store_open calls on one database are two nodes (two
 * processes, as far as the store can tell). Each hears the other's commits, and
 * never its own twice. PostgreSQL says which tenant and version (LISTEN/NOTIFY,
 * store/pg/notify.c); SQLite only "look everywhere" (tenant 0, PRAGMA data_version).
 * On PostgreSQL the listener's connection is also killed from outside, to check that
 * it comes back and says "look everywhere" again.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "model/model.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL
/* How long anything announced may take to arrive; far above the store's intervals,
 * for a loaded machine. */
#define WAIT_MS 10000
/* How long to keep listening for a notification that must not come. */
#define SETTLE_MS 500
#define BOTH (STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS)

typedef fx_two_t fixture_t;

static int setup(void **state)
{
    return fx_two_setup(state, "notify", T0_MS);
}

static int teardown(void **state)
{
    return fx_two_teardown(state);
}

static bool is_postgres(const fixture_t *f)
{
    return strncmp(f->fx.url, "postgres", 8) == 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a subscriber that logs what it hears ----------------------------------------- */

#define LOG_MAX 4096
typedef struct note {
    int64_t tenant;
    uint64_t version;
    unsigned what;
} note_t;

typedef struct heard {
    pthread_mutex_t lock;
    size_t n;
    note_t log[LOG_MAX];
} heard_t;

static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    heard_t *h = arg;
    pthread_mutex_lock(&h->lock);
    if (h->n < LOG_MAX)
        h->log[h->n++] = (note_t){ tenant_id, version, what };
    pthread_mutex_unlock(&h->lock);
}

static heard_t *heard_new(void)
{
    heard_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

static size_t heard_n(heard_t *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->n;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* Calls from index from on that named tenant (with any version); *highest (if
 * given) the highest version among them. */
static size_t heard_of(heard_t *h, size_t from, int64_t tenant, uint64_t *highest)
{
    pthread_mutex_lock(&h->lock);
    size_t n = 0;
    if (highest)
        *highest = 0;
    for (size_t i = from; i < h->n; i++) {
        if (h->log[i].tenant != tenant)
            continue;
        n++;
        if (highest && h->log[i].version > *highest)
            *highest = h->log[i].version;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* Waits until a call from index from on names tenant with version at least v (and
 * the changes bit), or, for tenant 0, says "look everywhere". */
static bool heard_wait(heard_t *h, size_t from, int64_t tenant, uint64_t v)
{
    for (int64_t until = now_ms() + WAIT_MS; now_ms() < until; usleep(5000)) {
        bool ok = false;
        pthread_mutex_lock(&h->lock);
        for (size_t i = from; i < h->n && !ok; i++) {
            const note_t *x = &h->log[i];
            ok = tenant == 0 ? x->tenant == 0 && x->version == 0 && x->what == BOTH
                             : x->tenant == tenant && x->version >= v &&
                                   (x->what & STORE_COMMIT_CHANGES);
        }
        pthread_mutex_unlock(&h->lock);
        if (ok)
            return true;
    }
    return false;
}

static store_t *open_other(fixture_t *f)
{
    store_t *s = NULL;
    store_options_t opt = { .clock = &f->fx.clock };
    const char *msg = NULL;
    if (store_open(f->fx.url, &opt, &s, &msg) != 0)
        fail_msg("store_open %s: %s", f->fx.url, msg ? msg : "?");
    return s;
}

static uint64_t put_person(store_t *s, int64_t tenant, int64_t id)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    snprintf(p.refs[0].name, MODEL_REF_NAME_MAX, "@employee-number");
    snprintf(p.refs[0].value, MODEL_REF_VALUE_MAX, "E%lld-%lld", (long long)tenant,
             (long long)id);
    p.n_refs = 1;
    store_write_result_t r;
    assert_int_equal(store_person_put(s, tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

/* On PostgreSQL a subscriber hears "look everywhere" once the store listens; a
 * commit made after that is heard by tenant. SQLite says nothing until a commit: its
 * first poll (within STORE_EXTERNAL_POLL_MS of opening) takes the baseline that
 * later commits are told from. */
static void wait_listening(fixture_t *f, heard_t *h)
{
    if (!is_postgres(f))
        usleep(3 * STORE_EXTERNAL_POLL_MS * 1000);
    else if (!heard_wait(h, 0, 0, 0))
        fail_msg("the store did not start listening within %d ms", WAIT_MS);
}

/* What another node commits is heard after its commit: by tenant and version on a
 * back-end that says which, else as "look everywhere". */
static void expect_heard(fixture_t *f, heard_t *h, size_t from, int64_t tenant, uint64_t v,
                         const char *what)
{
    if (!heard_wait(h, from, is_postgres(f) ? tenant : 0, v))
        fail_msg("%s: tenant %lld version %llu not announced within %d ms", what,
                 (long long)tenant, (unsigned long long)v, WAIT_MS);
}

/* ---- tests ------------------------------------------------------------------------- */

/* Two handles, two nodes: each hears the other's commit of its own tenant (A writes
 * ta, B writes tb) with tenant and version, and hears its own exactly once (the
 * in-process announcement; its own NOTIFY comes back to its listener and is
 * dropped). */
static void test_notify_between_handles(void **state)
{
    fixture_t *f = *state;
    store_t *a = f->fx.s, *b = open_other(f);
    heard_t *ha = heard_new(), *hb = heard_new();
    assert_int_equal(store_subscribe(a, on_commit, ha), 0);
    assert_int_equal(store_subscribe(b, on_commit, hb), 0);
    wait_listening(f, ha);
    wait_listening(f, hb);

    size_t a0 = heard_n(ha), b0 = heard_n(hb);
    uint64_t va = put_person(a, f->ta, 1);
    uint64_t vb = put_person(b, f->tb, 1);
    expect_heard(f, hb, b0, f->ta, va, "B hears A");
    expect_heard(f, ha, a0, f->tb, vb, "A hears B");
    usleep(SETTLE_MS * 1000);

    uint64_t top = 0;
    assert_int_equal(heard_of(ha, a0, f->ta, &top), 1); /* its own, once */
    assert_int_equal(top, va);
    assert_int_equal(heard_of(hb, b0, f->tb, &top), 1);
    assert_int_equal(top, vb);
    if (is_postgres(f)) {
        /* The other's, by tenant, exactly as committed. */
        assert_int_equal(heard_of(hb, b0, f->ta, &top), 1);
        assert_int_equal(top, va);
        assert_int_equal(heard_of(ha, a0, f->tb, &top), 1);
        assert_int_equal(top, vb);
    }
    store_unsubscribe(a, on_commit, ha);
    store_unsubscribe(b, on_commit, hb);
    store_close(b);
    free(ha);
    free(hb);
}

/* A short-lived writer (the import CLI) that commits a burst and closes at once:
 * everything it committed is heard once store_close returned, with the tenant's
 * last version last, and the burst costs fewer announcements than commits
 * (coalesced per node) unless the machine is very slow. */
static void test_notify_burst_then_close(void **state)
{
    fixture_t *f = *state;
    heard_t *h = heard_new();
    assert_int_equal(store_subscribe(f->fx.s, on_commit, h), 0);
    wait_listening(f, h);
    size_t from = heard_n(h);

    store_t *cli = open_other(f);
    enum { BURST = 40 };
    uint64_t last = 0;
    for (int i = 0; i < BURST; i++)
        last = put_person(cli, i % 2 ? f->ta : f->tb, 100 + i / 2);
    uint64_t last_b = 0;
    assert_int_equal(store_tenant_version(f->fx.s, f->tb, &last_b), 0);
    store_close(cli);

    expect_heard(f, h, from, f->ta, last, "the burst's tenant a");
    expect_heard(f, h, from, f->tb, last_b, "the burst's tenant b");
    if (is_postgres(f)) {
        /* A tenant's announced versions never go down. */
        pthread_mutex_lock(&h->lock);
        uint64_t prev[2] = { 0, 0 };
        for (size_t i = from; i < h->n; i++) {
            int k = h->log[i].tenant == f->ta ? 0 : h->log[i].tenant == f->tb ? 1 : -1;
            if (k < 0)
                continue;
            assert_true(h->log[i].version >= prev[k]);
            prev[k] = h->log[i].version;
        }
        pthread_mutex_unlock(&h->lock);
        size_t calls = heard_of(h, from, f->ta, NULL) + heard_of(h, from, f->tb, NULL);
        fprintf(stderr, "%d commits announced in %zu notifications\n", BURST, calls);
        assert_true(calls <= BURST);
    }
    store_unsubscribe(f->fx.s, on_commit, h);
    free(h);
}

/* PostgreSQL: the listening connection is killed (pg_terminate_backend, as a
 * restart or a network cut would): the store reconnects by itself, says "look
 * everywhere" (what was committed meanwhile was not heard), and hears by tenant
 * again. */
static void test_notify_listener_reconnects(void **state)
{
    fixture_t *f = *state;
    if (!is_postgres(f)) {
        fprintf(stderr, "PostgreSQL only: SQLite has no listening connection\n");
        return;
    }
    heard_t *h = heard_new();
    assert_int_equal(store_subscribe(f->fx.s, on_commit, h), 0);
    wait_listening(f, h);

    PGconn *admin = PQconnectdb(f->fx.url);
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    size_t from = heard_n(h);
    PGresult *r = PQexec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE datname = current_database()"
                                " AND query = 'LISTEN breakhook' AND pid <> pg_backend_pid()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    PQclear(r);
    PQfinish(admin);
    if (!heard_wait(h, from, 0, 0))
        fail_msg("no \"look everywhere\" within %d ms of the listener's loss", WAIT_MS);

    store_t *other = open_other(f);
    size_t from2 = heard_n(h);
    uint64_t v = put_person(other, f->ta, 7);
    expect_heard(f, h, from2, f->ta, v, "after the reconnect");
    store_close(other);
    store_unsubscribe(f->fx.s, on_commit, h);
    free(h);
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_between_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_burst_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_listener_reconnects, setup, teardown),
    };
    const char *filter = getenv("BH_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return fx_run_tests("test_contract_notify", tests, sizeof(tests) / sizeof(tests[0]));
}
