/*
 * test_contract_order.c: the back-end contract (tests/store/), part 1: the
 * commit-order invariant of store.h, through store.h only. The store under test is
 * $BREAKHOOK_TEST_STORE_URL when set (a PostgreSQL URL, later), else a fresh SQLite
 * file in a temporary directory; each test writes to a tenant of its own.
 *
 * Commit order (store.h): a reader never sees changeVersion v+1 committed while v is
 * not, so a consumer that has read up to v can resume after v and miss nothing.
 * Writers on several threads put people of one tenant (every version of the
 * tenant is then a change of that one collection, so the committed versions must
 * always be a gap-free prefix 1..n); readers on other threads read the change log
 * after what they have seen and fail on any gap: a version above one missing is a
 * version committed before the one below it. With BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK=1
 * the store takes each write's version from a sequence before the write reaches the
 * tenant's lock (store/writes.c), as a back-end using a database sequence would;
 * test_commit_order_check_can_fail runs the same check on such a store and requires
 * it to report the broken order: that is how we know the check can fail.
 */

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
#include <unistd.h>

#include "core/clock.h"
#include "fixture_store.h"
#include "store/store.h"

#define WRITERS 4
#define WRITES_PER_WRITER 400
#define READERS 2

typedef struct fixture {
    fx_store_t fx; /* the store: $BREAKHOOK_TEST_STORE_URL or a fresh SQLite file */
    int64_t tenant;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    fx_store_new(&f->fx, "contract", 1767225600000LL, true);
    fx_store_open(&f->fx);
    f->tenant = fx_store_tenant(&f->fx, "order", NULL);
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

typedef struct run {
    fixture_t *f;
    int index;
    atomic_int writers_left;
    atomic_int failures;       /* gaps or errors seen */
    char why[256];
    pthread_mutex_t why_lock;
} run_t;

typedef struct worker {
    run_t *run;
    int index;
} worker_t;

static void fail_run(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_run(run_t *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->why_lock);
    if (atomic_fetch_add(&r->failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof(r->why), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&r->why_lock);
}

static void *writer_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    for (int i = 0; i < WRITES_PER_WRITER && atomic_load(&r->failures) == 0; i++) {
        model_person_t p;
        memset(&p, 0, sizeof(p));
        p.id = (int64_t)w->index * 100000 + i + 1;
        store_write_result_t res;
        int rc = store_person_put(r->f->fx.s, r->f->tenant, &p, &res);
        if (rc != 0 || res.rc != 0 || res.version == 0)
            fail_run(r, "writer %d: person_put failed (%d, %d)", w->index, rc, res.rc);
    }
    atomic_fetch_sub(&r->writers_left, 1);
    return NULL;
}

/* Reads the change log after what it has seen until the writers are done and it has
 * read everything: each batch must continue exactly at seen + 1, without a gap. */
static void *reader_main(void *arg)
{
    worker_t *w = arg;
    run_t *r = w->run;
    uint64_t seen = 0;
    for (;;) {
        bool done = atomic_load(&r->writers_left) == 0;
        store_change_t *c = NULL;
        size_t n = 0;
        int rc = store_changes_after(r->f->fx.s, r->f->tenant, STORE_COLL_PEOPLE, seen, 1000, &c, &n);
        if (rc != 0) {
            fail_run(r, "reader %d: changes_after failed (%d)", w->index, rc);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (c[i].version != seen + 1) {
                fail_run(r, "reader %d saw version %llu right after %llu: version %llu was "
                            "not committed yet while a later one was",
                         w->index, (unsigned long long)c[i].version, (unsigned long long)seen,
                         (unsigned long long)(seen + 1));
                store_changes_free(c, n);
                return NULL;
            }
            seen = c[i].version;
        }
        store_changes_free(c, n);
        if (done && n == 0)
            break;
        if (atomic_load(&r->failures))
            return NULL;
    }
    if (seen != (uint64_t)WRITERS * WRITES_PER_WRITER)
        fail_run(r, "reader %d read %llu versions, %d were written", w->index,
                 (unsigned long long)seen, WRITERS * WRITES_PER_WRITER);
    return NULL;
}

/* Runs the writers and readers on f; returns the number of failures seen, with the
 * first one's description in why. */
static int commit_order_run(fixture_t *f, char *why, size_t why_len)
{
    run_t r = { .f = f, .why_lock = PTHREAD_MUTEX_INITIALIZER };
    atomic_init(&r.writers_left, WRITERS);
    atomic_init(&r.failures, 0);
    pthread_t wt[WRITERS], rt[READERS];
    worker_t ww[WRITERS], rw[READERS];
    for (int i = 0; i < READERS; i++) {
        rw[i] = (worker_t){ &r, i };
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &rw[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        ww[i] = (worker_t){ &r, i };
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &ww[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    snprintf(why, why_len, "%s", r.why);
    return atomic_load(&r.failures);
}

static void test_commit_order(void **state)
{
    fixture_t *f = *state;
    char why[256];
    if (commit_order_run(f, why, sizeof(why)))
        fail_msg("commit order broken: %s", why);
    uint64_t last = 0;
    assert_int_equal(store_tenant_version(f->fx.s, f->tenant, &last), 0);
    assert_int_equal(last, (uint64_t)WRITERS * WRITES_PER_WRITER);
}

/* The same check on a store that takes versions outside the lock must fail. */
static void test_commit_order_check_can_fail(void **state)
{
    fixture_t *f = *state;
    store_close(f->fx.s);
    setenv("BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK", "1", 1);
    fx_store_open(&f->fx);
    unsetenv("BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK");
    char why[256] = "";
    int failures = commit_order_run(f, why, sizeof(why));
    if (failures == 0)
        fail_msg("versions taken outside the lock went unnoticed: the commit-order check "
                 "cannot fail");
    fprintf(stderr, "as it must, the check caught it: %s\n", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_order_check_can_fail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
