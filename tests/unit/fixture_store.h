/*
 * fixture_store.h: the one store fixture of the store tests (tests/unit/test_store*.c
 * and the back-end contract in tests/store/): a fresh SQLite file in its own
 * temporary directory (or, for tests that talk only to store.h, the store
 * $BREAKHOOK_TEST_STORE_URL names), a fake clock, uniquely named tenants, and the
 * cleanup.
 */
#ifndef BREAKHOOK_TESTS_FIXTURE_STORE_H
#define BREAKHOOK_TESTS_FIXTURE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "store/store.h"

typedef struct fx_store {
    char dir[64];     /* the temporary directory; "" for a store from the environment */
    char path[128];   /* the SQLite file in dir ("" for a store from the environment) */
    char url[256];
    bh_clock_t clock; /* fake, at the t0 given to fx_store_new */
    store_t *s;       /* NULL until fx_store_open */
} fx_store_t;

/* A new temporary directory /tmp/bh-<name>-XXXXXX with the URL of a SQLite file in
 * it, and the fake clock at t0_ms; or, with from_env and $BREAKHOOK_TEST_STORE_URL
 * set, that store. Opens nothing. Fails the test (cmocka) when the directory cannot
 * be made. */
void fx_store_new(fx_store_t *fx, const char *name, int64_t t0_ms, bool from_env);
/* store_open of fx->url with the fake clock into fx->s; fails the test with
 * store_open's message when the store does not open. */
void fx_store_open(fx_store_t *fx);
/* Closes the store (if open) and removes the temporary directory. */
void fx_store_free(fx_store_t *fx);

/* True when fx is the store $BREAKHOOK_TEST_STORE_URL names rather than a fresh file:
 * other tests and earlier runs may have rows in it, so a test that reads across
 * tenants (the active list, the sweeps) checks its own tenants' rows and bounds the
 * totals from below instead of expecting them exactly. */
bool fx_store_shared(const fx_store_t *fx);
/* Checks a count that spans every tenant (rows a sweep or prune acted on): exactly
 * want on a store of the test's own, at least want on a shared one. */
void fx_store_assert_count(const fx_store_t *fx, size_t n, size_t want);
/* Creates, in the open store, a tenant named "<label>-<suffix>" with a suffix no other
 * process or run uses, and returns its id; *name_out (if given, STORE_NAME_MAX bytes)
 * receives the name. Fails the test when the store refuses. */
int64_t fx_store_tenant(fx_store_t *fx, const char *label, char *name_out);

/* The fixture of the contract tests: the store (fx_store_new with from_env) with two
 * tenants "<label>-a" and "<label>-b". setup allocates it into *state; teardown frees
 * it. cmocka setup/teardown shapes. */
typedef struct fx_two {
    fx_store_t fx;
    int64_t ta, tb;
} fx_two_t;
int fx_two_setup(void **state, const char *label, int64_t t0_ms);
int fx_two_teardown(void **state);

/* Runs a group of cmocka tests like cmocka_run_group_tests, leaving out those named
 * (exactly, comma-separated) in $BH_TEST_EXCLUDE: the CTest registration of a
 * back-end that does not do something yet names the tests of it there, in
 * CMakeLists.txt, where it shows. tests is modified. */
struct CMUnitTest;
int fx_run_tests(const char *group, struct CMUnitTest *tests, size_t n);

/* A UUID-shaped webhook id whose string order is n's order. */
void fx_webhook_id(char out[STORE_WEBHOOK_ID_LEN + 1], int n);

#endif
