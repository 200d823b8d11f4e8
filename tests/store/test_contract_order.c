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
 * test_commit_order_two_processes runs half the writers in a second process with a
 * store handle of its own (this binary again, `--write URL TENANT`): two nodes.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* The other process of a two-process run: this binary again, as
 * `test_contract_order --write URL TENANT`, putting WRITES_PER_WRITER people from each
 * of WRITERS / 2 threads into the tenant on its own store handle (its own connections,
 * its own writer), with ids apart from the parent's. */
typedef struct child {
    pid_t pid;
    run_t *r;
    int status;
} child_t;

static void *child_wait(void *arg)
{
    child_t *c = arg;
    int st = 0;
    if (waitpid(c->pid, &st, 0) != c->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_run(c->r, "the second process's writers failed (status %d)", st);
    atomic_fetch_sub(&c->r->writers_left, WRITERS / 2);
    return NULL;
}

static int child_main(const char *url, const char *tenant)
{
    store_options_t o = { 0 };
    store_t *s = NULL;
    const char *msg = NULL;
    if (store_open(url, &o, &s, &msg) != 0) {
        fprintf(stderr, "child: store_open %s: %s\n", url, msg ? msg : "?");
        return 1;
    }
    fixture_t f = { .tenant = strtoll(tenant, NULL, 10) };
    f.fx.s = s;
    run_t r = { .f = &f, .why_lock = PTHREAD_MUTEX_INITIALIZER };
    atomic_init(&r.writers_left, WRITERS / 2);
    atomic_init(&r.failures, 0);
    pthread_t wt[WRITERS / 2];
    worker_t ww[WRITERS / 2];
    for (int i = 0; i < WRITERS / 2; i++) {
        ww[i] = (worker_t){ &r, WRITERS + i }; /* ids apart from the parent's writers */
        if (pthread_create(&wt[i], NULL, writer_main, &ww[i]) != 0)
            return 1;
    }
    for (int i = 0; i < WRITERS / 2; i++)
        pthread_join(wt[i], NULL);
    store_close(s);
    if (atomic_load(&r.failures))
        fprintf(stderr, "child: %s\n", r.why);
    return atomic_load(&r.failures) ? 1 : 0;
}

/* Runs the writers and readers on f; returns the number of failures seen, with the
 * first one's description in why. With two_processes, half the writers run in another
 * process on a store handle of its own (another node, for PostgreSQL). */
static int commit_order_run_ex(fixture_t *f, bool two_processes, char *why, size_t why_len)
{
    run_t r = { .f = f, .why_lock = PTHREAD_MUTEX_INITIALIZER };
    atomic_init(&r.writers_left, WRITERS);
    atomic_init(&r.failures, 0);
    child_t child = { .pid = -1, .r = &r };
    pthread_t waiter;
    if (two_processes) {
        char tenant[32];
        snprintf(tenant, sizeof(tenant), "%lld", (long long)f->tenant);
        char *const argv[] = { (char *)"/proc/self/exe", (char *)"--write", f->fx.url, tenant,
                               NULL };
        extern char **environ;
        assert_int_equal(posix_spawn(&child.pid, "/proc/self/exe", NULL, NULL, argv, environ),
                         0);
        assert_int_equal(pthread_create(&waiter, NULL, child_wait, &child), 0);
    }
    pthread_t wt[WRITERS], rt[READERS];
    worker_t ww[WRITERS], rw[READERS];
    for (int i = 0; i < READERS; i++) {
        rw[i] = (worker_t){ &r, i };
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &rw[i]), 0);
    }
    int here = two_processes ? WRITERS / 2 : WRITERS;
    for (int i = 0; i < here; i++) {
        ww[i] = (worker_t){ &r, i };
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &ww[i]), 0);
    }
    for (int i = 0; i < here; i++)
        pthread_join(wt[i], NULL);
    if (two_processes)
        pthread_join(waiter, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    snprintf(why, why_len, "%s", r.why);
    return atomic_load(&r.failures);
}

static int commit_order_run(fixture_t *f, char *why, size_t why_len)
{
    return commit_order_run_ex(f, false, why, why_len);
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

/* Writers in two processes, each with its own store handle (two nodes on one
 * PostgreSQL database; two processes on one SQLite file). */
static void test_commit_order_two_processes(void **state)
{
    fixture_t *f = *state;
    char why[256];
    if (commit_order_run_ex(f, true, why, sizeof(why)))
        fail_msg("commit order broken with two processes: %s", why);
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

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--write") == 0)
        return child_main(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_order_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_order_check_can_fail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
