/*
 * test_contract_admin.c: the back-end contract (tests/store/), part 6: everything of
 * store.h that is not breaks data, webhooks or delivery state, through store.h only.
 * The handle (ping, schema version, stats, metrics, reopening keeps the data),
 * tenants (names, BH_EINVAL and BH_EEXIST, the list), API clients (tenant scoping,
 * BH_EEXIST, BH_ENOTFOUND, BH_EINVAL, first revocation wins, the all-tenant revoked
 * list), the global token signing keys (ensure, add with its retirement, a failed add
 * undone as a whole, a race of nodes agreeing on one key), group commit with reads
 * going on, and commit notifications: at most STORE_MAX_SUBSCRIBERS, each one after
 * its COMMIT (a thread woken by it reads what it announces), once per tenant and commit
 * with the tenant's last version, in version order.
 *
 * The store is $BREAKHOOK_TEST_STORE_URL when set, else a fresh SQLite file per test.
 * Tenant names and key ids carry a suffix no other run uses; the lists that span every
 * tenant (tenants, revoked clients, signing keys) are checked for this test's rows, in
 * their order, whatever else a shared store holds.
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
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "fixture_store.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define NO_TENANT INT64_MAX   /* a tenant id no store hands out */

typedef struct fixture {
    fx_store_t fx;    /* the store: $BREAKHOOK_TEST_STORE_URL or a fresh SQLite file */
    char suffix[32];  /* makes this test's names unique in a shared store */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    fx_store_new(&f->fx, "admin", T0_MS, true);
    fx_store_open(&f->fx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(f->suffix, sizeof(f->suffix), "%x-%llx", (unsigned)getpid(),
             (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
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

/* Reopens the store with the given pool sizes (0: the defaults). */
static void reopen(fixture_t *f, int read_connections, int max_group)
{
    store_close(f->fx.s);
    store_options_t opt = { .clock = &f->fx.clock, .read_connections = read_connections,
                            .max_group = max_group };
    const char *msg = NULL;
    f->fx.s = NULL;
    if (store_open(f->fx.url, &opt, &f->fx.s, &msg) != 0)
        fail_msg("store_open %s: %s", f->fx.url, msg ? msg : "?");
}

/* "<base>-<suffix>": a name of this test's own. */
static void name_of(const fixture_t *f, const char *base, char out[STORE_NAME_MAX])
{
    snprintf(out, STORE_NAME_MAX, "%s-%s", base, f->suffix);
}

static int64_t now_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store_signing_key_t make_key(const fixture_t *f, const char *kid, unsigned char fill,
                                    int64_t created)
{
    store_signing_key_t k;
    memset(&k, 0, sizeof(k));
    int n = snprintf(k.kid, sizeof(k.kid), "%s-%s", kid, f->suffix);
    assert_true(n > 0 && (size_t)n < sizeof(k.kid));
    memset(k.secret, fill, sizeof(k.secret));
    k.created_at_ms = created;
    return k;
}

static store_client_t make_client(const char *id, const char *name, const char *scopes)
{
    store_client_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.client_id, sizeof(c.client_id), "%s", id);
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.scopes, sizeof(c.scopes), "%s", scopes);
    snprintf(c.secret_hash, sizeof(c.secret_hash), "$argon2id$v=19$m=65536,t=3,p=1$%s", id);
    return c;
}

/* ---- the handle ------------------------------------------------------------------- */

/* A new handle answers ping, knows its schema version (the same after a reopen), counts
 * only its own writes, and writes its metric families. Closing NULL is a no-op. */
static void test_handle(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_ping(f->fx.s), 0);
    int v = 0;
    assert_int_equal(store_schema_version(f->fx.s, &v), 0);
    assert_true(v >= 1);
    store_stats_t st;
    store_get_stats(f->fx.s, &st);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.commits, 0);
    assert_int_equal(st.disk_rc, 0);

    char name[STORE_NAME_MAX];
    name_of(f, "handle", name);
    assert_int_equal(store_tenant_create(f->fx.s, name, NULL), 0);
    store_get_stats(f->fx.s, &st);
    assert_int_equal(st.writes, 1);
    assert_int_equal(st.commits, 1);

    buf_t out;
    buf_init(&out, 1 << 20);
    assert_int_equal(store_metrics_write(f->fx.s, &out), 0);
    const char *families[] = {
        "# TYPE breakhook_events_created_total counter\n",
        "# TYPE breakhook_store_call_duration_seconds histogram\n",
        "breakhook_store_call_duration_seconds_count{op=\"tenant_create\"} 1\n",
        "# TYPE breakhook_store_group_commit_size histogram\n",
        "breakhook_store_ready 1\n",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (!strstr(buf_cstr(&out), families[i]))
            fail_msg("no '%s' in the metrics:\n%s", families[i], buf_cstr(&out));
    buf_deinit(&out);

    reopen(f, 0, 0);
    int again = 0;
    assert_int_equal(store_schema_version(f->fx.s, &again), 0);
    assert_int_equal(again, v);
    store_get_stats(f->fx.s, &st);
    assert_int_equal(st.writes, 0); /* per handle */
    store_tenant_t t;
    assert_int_equal(store_tenant_get(f->fx.s, name, &t), 0);
    store_close(NULL);
}

/* A buffer too small for the families: BH_ETOOBIG (store.h, buf.h's bounded buffer). */
static void test_metrics_write_full(void **state)
{
    fixture_t *f = *state;
    buf_t out;
    buf_init(&out, 64);
    assert_int_equal(store_metrics_write(f->fx.s, &out), BH_ETOOBIG);
    buf_deinit(&out);
}

/* A store that does not exist under a scheme no back-end knows: BH_EINVAL, a message,
 * no handle. */
static void test_open_refused(void **state)
{
    fixture_t *f = *state;
    store_options_t opt = { .clock = &f->fx.clock };
    store_t *s = (store_t *)0x1;
    const char *msg = NULL;
    assert_int_equal(store_open("mysql://localhost/db", &opt, &s, &msg), BH_EINVAL);
    assert_null(s);
    assert_non_null(msg);
    assert_int_equal(store_open(NULL, &opt, &s, &msg), BH_EINVAL);
    store_options_t bad = { .clock = &f->fx.clock, .read_connections = -1 };
    assert_int_equal(store_open(f->fx.url, &bad, &s, &msg), BH_EINVAL);
}

/* ---- tenants ---------------------------------------------------------------------- */

static void test_tenants(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->fx.s;
    char acme[STORE_NAME_MAX], globex[STORE_NAME_MAX], noout[STORE_NAME_MAX];
    name_of(f, "acme", acme);
    name_of(f, "0-globex-9", globex);
    name_of(f, "no-out", noout);

    store_tenant_t a, b, got;
    assert_int_equal(store_tenant_create(s, acme, &a), 0);
    assert_true(a.id > 0);
    assert_string_equal(a.name, acme);
    assert_int_equal(a.created_at_ms, T0_MS); /* the store's clock */
    clock_fake_advance(&f->fx.clock, 5);
    assert_int_equal(store_tenant_create(s, globex, &b), 0);
    assert_int_not_equal(a.id, b.id);
    assert_int_equal(b.created_at_ms, T0_MS + 5);
    assert_int_equal(store_tenant_create(s, noout, NULL), 0);

    assert_int_equal(store_tenant_get(s, acme, &got), 0);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, acme);
    assert_int_equal(got.created_at_ms, T0_MS);
    assert_int_equal(store_tenant_get(s, globex, &got), 0);
    assert_int_equal(got.id, b.id);
    char missing[STORE_NAME_MAX];
    name_of(f, "initech", missing);
    assert_int_equal(store_tenant_get(s, missing, &got), BH_ENOTFOUND);
    char upper[STORE_NAME_MAX];
    name_of(f, "Acme", upper);
    assert_int_equal(store_tenant_get(s, upper, &got), BH_ENOTFOUND);

    assert_int_equal(store_tenant_create(s, acme, &got), BH_EEXIST);

    /* Names: 1..63 of [a-z0-9-], starting with a letter or digit. */
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    memcpy(n63, f->suffix, strlen(f->suffix)); /* unique, still of the alphabet */
    n63[63] = '\0';
    memset(n64, 'b', 64);
    n64[64] = '\0';
    const char *bad[] = { "", "-acme", "Acme", "ac_me", "ac me", "acme.io", "ac/me",
                          "\xc3\xa9", n64 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_tenant_create(s, bad[i], &got), BH_EINVAL);
    assert_int_equal(store_tenant_create(s, NULL, &got), BH_EINVAL);
    assert_int_equal(store_tenant_create(s, n63, &got), 0);
    /* The shortest names cannot be unique: a shared store may have them already. */
    size_t made = 4;
    const char *shortest[] = { "x", "7-" };
    for (size_t i = 0; i < 2; i++) {
        int rc = store_tenant_create(s, shortest[i], &got);
        if (rc == 0)
            made++;
        else if (!(rc == BH_EEXIST && fx_store_shared(&f->fx)))
            fail_msg("store_tenant_create %s: %d", shortest[i], rc);
    }

    /* The list holds ours in creation order (ids rise), among whatever else. */
    store_tenant_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(s, &list, &n), 0);
    const char *ours[] = { acme, globex, noout, n63 };
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(list[i].id > list[i - 1].id);
        if (k < 4 && strcmp(list[i].name, ours[k]) == 0)
            k++;
    }
    assert_int_equal(k, 4);
    fx_store_assert_count(&f->fx, n, made);
    free(list);

    /* Failed creates did not write. */
    store_stats_t stats;
    store_get_stats(s, &stats);
    assert_int_equal(stats.writes, made);
}

/* ---- clients ---------------------------------------------------------------------- */

static void test_clients(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->fx.s;
    int64_t ta = fx_store_tenant(&f->fx, "clients-a", NULL);
    int64_t tb = fx_store_tenant(&f->fx, "clients-b", NULL);

    store_client_t c1 = make_client("c1", "Payroll", "breaks:read people:read");
    c1.tenant_id = tb;     /* ignored: the argument decides */
    c1.revoked_at_ms = 42; /* ignored: a new client is active */
    assert_int_equal(store_client_create(s, ta, &c1), 0);
    clock_fake_advance(&f->fx.clock, 10);
    store_client_t c2 = make_client("c2", "HR", "breaks:write");
    assert_int_equal(store_client_create(s, ta, &c2), 0);
    clock_fake_advance(&f->fx.clock, 10);
    store_client_t c0 = make_client("c0", "Analytics", "");
    assert_int_equal(store_client_create(s, ta, &c0), 0);

    store_client_t got;
    assert_int_equal(store_client_get(s, ta, "c1", &got), 0);
    assert_int_equal(got.tenant_id, ta);
    assert_string_equal(got.client_id, "c1");
    assert_string_equal(got.name, "Payroll");
    assert_string_equal(got.scopes, "breaks:read people:read");
    assert_string_equal(got.secret_hash, c1.secret_hash);
    assert_int_equal(got.created_at_ms, T0_MS);
    assert_int_equal(got.revoked_at_ms, 0);

    /* Tenant isolation: tenant B sees nothing of A's, exactly like a missing one. */
    assert_int_equal(store_client_get(s, tb, "c1", &got), BH_ENOTFOUND);
    assert_int_equal(store_client_get(s, ta, "nope", &got), BH_ENOTFOUND);
    store_client_t *list = NULL;
    size_t n = 99;
    assert_int_equal(store_client_list(s, tb, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(store_client_revoke(s, tb, "c1", T0_MS + 100), BH_ENOTFOUND);
    assert_int_equal(store_client_get(s, ta, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, 0);

    /* The same client id in another tenant is another client. */
    store_client_t b1 = make_client("c1", "B's payroll", "breaks:read");
    assert_int_equal(store_client_create(s, tb, &b1), 0);
    assert_int_equal(store_client_get(s, tb, "c1", &got), 0);
    assert_string_equal(got.name, "B's payroll");
    assert_int_equal(got.tenant_id, tb);
    assert_int_equal(store_client_get(s, ta, "c1", &got), 0);
    assert_string_equal(got.name, "Payroll");

    assert_int_equal(store_client_create(s, ta, &c1), BH_EEXIST);
    assert_int_equal(store_client_create(s, NO_TENANT, &c1), BH_ENOTFOUND);
    store_client_t bad = make_client("", "x", "");
    assert_int_equal(store_client_create(s, ta, &bad), BH_EINVAL);
    bad = make_client("ok", "x", "");
    bad.secret_hash[0] = '\0';
    assert_int_equal(store_client_create(s, ta, &bad), BH_EINVAL);
    bad = make_client("ok", "x", "");
    memset(bad.name, 'n', sizeof(bad.name)); /* no NUL inside the field */
    assert_int_equal(store_client_create(s, ta, &bad), BH_EINVAL);

    /* Ordered by creation, not by id. */
    assert_int_equal(store_client_list(s, ta, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].client_id, "c1");
    assert_string_equal(list[1].client_id, "c2");
    assert_string_equal(list[2].client_id, "c0");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].tenant_id, ta);
    free(list);
    assert_int_equal(store_client_list(s, tb, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "B's payroll");
    free(list);

    /* Revocation: the first one wins; B's c1 is untouched. */
    assert_int_equal(store_client_revoke(s, ta, "c1", T0_MS + 1000), 0);
    assert_int_equal(store_client_revoke(s, ta, "c1", T0_MS + 2000), 0);
    assert_int_equal(store_client_get(s, ta, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, T0_MS + 1000);
    assert_int_equal(store_client_get(s, tb, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, 0);
    assert_int_equal(store_client_revoke(s, ta, "missing", T0_MS), BH_ENOTFOUND);
    assert_int_equal(store_client_revoke(s, ta, "c2", 0), BH_EINVAL);

    /* The revoked list (every tenant's) names exactly A's c1 of our tenants. */
    assert_int_equal(store_client_list_revoked(s, &list, &n), 0);
    size_t ours = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(list[i].revoked_at_ms > 0);
        if (list[i].tenant_id != ta && list[i].tenant_id != tb)
            continue;
        ours++;
        assert_int_equal(list[i].tenant_id, ta);
        assert_string_equal(list[i].client_id, "c1");
        assert_int_equal(list[i].revoked_at_ms, T0_MS + 1000);
    }
    assert_int_equal(ours, 1);
    fx_store_assert_count(&f->fx, n, 1);
    free(list);
}

/* ---- signing keys (global) -------------------------------------------------------- */

/* The index of kid in list, or -1. */
static int key_index(const store_signing_key_t *list, size_t n, const char *kid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].kid, kid) == 0)
            return (int)i;
    return -1;
}

/* The keys are global, so a shared store may have an active key already: then ensure
 * keeps it, and the test's own keys take over from it through add. Created times are
 * the wall clock's, so that this test's keys are the newest. */
static void test_signing_keys(void **state)
{
    fixture_t *f = *state;
    store_t *s = f->fx.s;
    int64_t t = now_real_ms();

    store_signing_key_t *list = NULL;
    size_t n0 = 99;
    assert_int_equal(store_signing_key_list(s, &list, &n0), 0);
    free(list);
    if (!fx_store_shared(&f->fx))
        assert_int_equal(n0, 0);

    /* First start: the candidate becomes the active key, unless one is active. */
    store_signing_key_t k1 = make_key(f, "k1", 0x11, t), active;
    assert_int_equal(store_signing_key_ensure(s, &k1, &active), 0);
    bool fresh = strcmp(active.kid, k1.kid) == 0;
    if (!fx_store_shared(&f->fx))
        assert_true(fresh);
    if (fresh) {
        assert_memory_equal(active.secret, k1.secret, 32);
        assert_int_equal(active.created_at_ms, t);
    }
    assert_int_equal(active.retired_at_ms, 0);
    store_signing_key_t first = active;

    /* Later starts: the stored key wins over a new candidate. */
    store_signing_key_t k2 = make_key(f, "k2", 0x22, t + 500);
    assert_int_equal(store_signing_key_ensure(s, &k2, &active), 0);
    assert_string_equal(active.kid, first.kid);
    assert_memory_equal(active.secret, first.secret, 32);
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, n0 + fresh);
    assert_int_equal(key_index(list, n, k2.kid), -1);
    free(list);

    /* Rotation: k3 becomes active, the previous one is retired at k3's creation. */
    store_signing_key_t k3 = make_key(f, "k3", 0x33, t + 1000);
    assert_int_equal(store_signing_key_add(s, &k3), 0);
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, n0 + fresh + 1);
    assert_string_equal(list[0].kid, k3.kid); /* newest first */
    assert_int_equal(list[0].retired_at_ms, 0);
    assert_int_equal(list[0].created_at_ms, t + 1000);
    assert_memory_equal(list[0].secret, k3.secret, 32);
    int i1 = key_index(list, n, first.kid);
    assert_true(i1 > 0);
    assert_int_equal(list[i1].retired_at_ms, t + 1000);
    assert_memory_equal(list[i1].secret, first.secret, 32);
    for (size_t i = 1; i < n; i++) {
        assert_true(list[i].created_at_ms <= list[i - 1].created_at_ms);
        assert_true(list[i].retired_at_ms != 0); /* one active key */
    }
    free(list);

    /* A duplicate kid fails as a whole: the retirement of k3 is undone too. */
    store_signing_key_t dup = make_key(f, "k1", 0x44, t + 3000);
    snprintf(dup.kid, sizeof(dup.kid), "%s", first.kid);
    assert_int_equal(store_signing_key_add(s, &dup), BH_EEXIST);
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, n0 + fresh + 1);
    assert_string_equal(list[0].kid, k3.kid);
    assert_int_equal(list[0].retired_at_ms, 0);
    i1 = key_index(list, n, first.kid);
    assert_int_equal(list[i1].retired_at_ms, t + 1000);
    assert_memory_equal(list[i1].secret, first.secret, 32);
    free(list);

    store_signing_key_t k4 = make_key(f, "k4", 0x55, t + 4000);
    assert_int_equal(store_signing_key_ensure(s, &k4, &active), 0);
    assert_string_equal(active.kid, k3.kid);

    store_signing_key_t badk = make_key(f, "", 0x66, t + 1);
    badk.kid[0] = '\0';
    assert_int_equal(store_signing_key_add(s, &badk), BH_EINVAL);
}

typedef struct ensure_arg {
    fixture_t *f;
    int idx;
    int rc;
    store_signing_key_t active;
} ensure_arg_t;

static void *ensure_thread(void *p)
{
    ensure_arg_t *a = p;
    char kid[16];
    snprintf(kid, sizeof(kid), "race-%d", a->idx);
    store_signing_key_t cand = make_key(a->f, kid, (unsigned char)a->idx, now_real_ms());
    a->rc = store_signing_key_ensure(a->f->fx.s, &cand, &a->active);
    return NULL;
}

/* Many nodes starting at once must agree on one key. */
static void test_signing_key_ensure_race(void **state)
{
    fixture_t *f = *state;
    store_signing_key_t *list = NULL;
    size_t n0 = 0, n = 0;
    assert_int_equal(store_signing_key_list(f->fx.s, &list, &n0), 0);
    free(list);
    enum { N = 8 };
    pthread_t th[N];
    ensure_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (ensure_arg_t){ .f = f, .idx = i };
        assert_int_equal(pthread_create(&th[i], NULL, ensure_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(args[i].rc, 0);
        assert_string_equal(args[i].active.kid, args[0].active.kid);
        assert_memory_equal(args[i].active.secret, args[0].active.secret, 32);
    }
    assert_int_equal(store_signing_key_list(f->fx.s, &list, &n), 0);
    assert_int_equal(n, n0 == 0 ? 1 : n0); /* one key added, or none */
    assert_true(key_index(list, n, args[0].active.kid) >= 0);
    free(list);
}

/* ---- reopening -------------------------------------------------------------------- */

static void test_reopen_keeps_data(void **state)
{
    fixture_t *f = *state;
    char name[STORE_NAME_MAX];
    int64_t tenant = fx_store_tenant(&f->fx, "durable", name);
    store_client_t c = make_client("cli", "Durable client", "a b");
    assert_int_equal(store_client_create(f->fx.s, tenant, &c), 0);
    assert_int_equal(store_client_revoke(f->fx.s, tenant, "cli", T0_MS + 7), 0);
    store_signing_key_t k = make_key(f, "kd", 0x7a, now_real_ms()), active;
    assert_int_equal(store_signing_key_ensure(f->fx.s, &k, &active), 0);

    reopen(f, 1, 4);
    store_tenant_t t2;
    assert_int_equal(store_tenant_get(f->fx.s, name, &t2), 0);
    assert_int_equal(t2.id, tenant);
    store_client_t got;
    assert_int_equal(store_client_get(f->fx.s, tenant, "cli", &got), 0);
    assert_string_equal(got.secret_hash, c.secret_hash);
    assert_int_equal(got.revoked_at_ms, T0_MS + 7);
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(f->fx.s, &keys, &n), 0);
    int i = key_index(keys, n, active.kid);
    assert_true(i >= 0);
    assert_memory_equal(keys[i].secret, active.secret, 32);
    assert_int_equal(keys[i].retired_at_ms, 0);
    free(keys);
}

/* ---- group commit ----------------------------------------------------------------- */

enum { GC_THREADS = 8, GC_PER_THREAD = 200 };

typedef struct gc_arg {
    fixture_t *f;
    int idx;
    int failures;
} gc_arg_t;

static void *gc_writer(void *p)
{
    gc_arg_t *a = p;
    for (int i = 0; i < GC_PER_THREAD; i++) {
        char base[32], name[STORE_NAME_MAX];
        snprintf(base, sizeof(base), "gc%d-%d", a->idx, i);
        name_of(a->f, base, name);
        store_tenant_t t;
        if (store_tenant_create(a->f->fx.s, name, &t) != 0 || strcmp(t.name, name) != 0)
            a->failures++;
    }
    return NULL;
}

typedef struct reader_arg {
    fixture_t *f;
    const char *seed;
    volatile int *stop;
    int failures;
    int reads;
} reader_arg_t;

/* Reads while the writer writes: they must keep working on the read pool. */
static void *gc_reader(void *p)
{
    reader_arg_t *a = p;
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        store_tenant_t t;
        if (store_ping(a->f->fx.s) != 0 || store_tenant_get(a->f->fx.s, a->seed, &t) != 0)
            a->failures++;
        a->reads++;
    }
    return NULL;
}

/* Writes from many threads are committed in groups (store.h), and reads go on while
 * they are. */
static void test_group_commit(void **state)
{
    fixture_t *f = *state;
    reopen(f, 2, 0);
    char seed[STORE_NAME_MAX];
    name_of(f, "seed", seed);
    assert_int_equal(store_tenant_create(f->fx.s, seed, NULL), 0);
    store_stats_t before;
    store_get_stats(f->fx.s, &before);
    assert_int_equal(before.writes, 1);
    assert_int_equal(before.commits, 1);

    volatile int stop = 0;
    pthread_t wt[GC_THREADS], rt[2];
    gc_arg_t wa[GC_THREADS];
    reader_arg_t ra[2];
    for (int i = 0; i < 2; i++) {
        ra[i] = (reader_arg_t){ .f = f, .seed = seed, .stop = &stop };
        assert_int_equal(pthread_create(&rt[i], NULL, gc_reader, &ra[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        wa[i] = (gc_arg_t){ .f = f, .idx = i };
        assert_int_equal(pthread_create(&wt[i], NULL, gc_writer, &wa[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(wt[i], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);
    for (int i = 0; i < GC_THREADS; i++)
        assert_int_equal(wa[i].failures, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ra[i].failures, 0);
        assert_true(ra[i].reads > 0);
    }

    store_stats_t after;
    store_get_stats(f->fx.s, &after);
    uint64_t writes = after.writes - before.writes;
    uint64_t commits = after.commits - before.commits;
    fprintf(stderr, "group commit: %llu writes in %llu commits\n", (unsigned long long)writes,
            (unsigned long long)commits);
    assert_int_equal(writes, GC_THREADS * GC_PER_THREAD);
    assert_true(commits >= 1);
    assert_true(commits <= writes);
    /* Grouping writes into fewer commits is SQLite's single writer's doing; on
     * PostgreSQL each write is a transaction of its own and the server groups the WAL
     * flushes of concurrent commits, which the client does not see. */
    if (strncmp(f->fx.url, "postgres", 8) != 0)
        assert_true(commits < writes);

    store_tenant_t *list = NULL;
    size_t n = 0, ours = 0;
    assert_int_equal(store_tenant_list(f->fx.s, &list, &n), 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i].name), sl = strlen(f->suffix);
        ours += strncmp(list[i].name, "gc", 2) == 0 && len > sl &&
                strcmp(list[i].name + len - sl, f->suffix) == 0;
    }
    assert_int_equal(ours, GC_THREADS * GC_PER_THREAD);
    free(list);
}

/* ---- commit notifications --------------------------------------------------------- */

/* What the subscriber heard, handed to a checker thread the way the engine hands it to
 * its loop: the callback only queues. */
enum { NOTE_MAX = 1 << 14 };

typedef struct note {
    int64_t tenant;
    uint64_t version;
} note_t;

typedef struct heard {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    note_t q[NOTE_MAX];
    size_t head, tail;
    bool done;
    int64_t tenants[2];
    uint64_t highest[2]; /* the highest version heard per tenant */
} heard_t;

static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    heard_t *h = arg;
    (void)what;
    pthread_mutex_lock(&h->lock);
    if (h->tail - h->head < NOTE_MAX)
        h->q[h->tail++ % NOTE_MAX] = (note_t){ tenant_id, version };
    for (int k = 0; k < 2; k++)
        if (tenant_id == h->tenants[k] && version > h->highest[k])
            h->highest[k] = version;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

/* Waits (at most 10 s) until each tenant's version want[k] has been announced. */
static bool heard_wait(heard_t *h, const uint64_t want[2])
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&h->lock);
        bool all = h->highest[0] >= want[0] && h->highest[1] >= want[1];
        pthread_mutex_unlock(&h->lock);
        if (all)
            return true;
        usleep(10000);
    }
    return false;
}

typedef struct checker {
    fixture_t *f;
    heard_t *h;
    int64_t tenants[2];
    uint64_t last[2];   /* the last version announced per tenant */
    size_t notes;
    int failures;
    char why[160];
} checker_t;

/* For each note: the tenant's committed version, read right away, is at least the one
 * announced (the notification came after the COMMIT), and a tenant's announced
 * versions never go down (once per commit, in commit order). */
static void *checker_main(void *p)
{
    checker_t *c = p;
    heard_t *h = c->h;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        while (h->head == h->tail && !h->done)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->head == h->tail) {
            pthread_mutex_unlock(&h->lock);
            return NULL;
        }
        note_t n = h->q[h->head++ % NOTE_MAX];
        pthread_mutex_unlock(&h->lock);
        int k = n.tenant == c->tenants[0] ? 0 : n.tenant == c->tenants[1] ? 1 : -1;
        if (k < 0)
            continue; /* another process's commit (tenant 0) on a shared store */
        c->notes++;
        uint64_t committed = 0;
        if (store_tenant_version(c->f->fx.s, n.tenant, &committed) != 0 ||
            committed < n.version) {
            if (!c->failures++)
                snprintf(c->why, sizeof(c->why), "version %llu announced, %llu committed",
                         (unsigned long long)n.version, (unsigned long long)committed);
        }
        if (n.version < c->last[k] && !c->failures++)
            snprintf(c->why, sizeof(c->why), "version %llu announced after %llu",
                     (unsigned long long)n.version, (unsigned long long)c->last[k]);
        c->last[k] = n.version;
    }
}

typedef struct nw_arg {
    fixture_t *f;
    int64_t tenant;
    int idx;
    int failures;
} nw_arg_t;

enum { NW_THREADS = 4, NW_PER_THREAD = 150 };

static void *nw_writer(void *p)
{
    nw_arg_t *a = p;
    for (int i = 0; i < NW_PER_THREAD; i++) {
        model_person_t pp;
        memset(&pp, 0, sizeof(pp));
        pp.id = (int64_t)a->idx * 100000 + i + 1;
        store_write_result_t r;
        if (store_person_put(a->f->fx.s, a->tenant, &pp, &r) != 0 || r.rc != 0)
            a->failures++;
    }
    return NULL;
}

static void test_commit_notifications(void **state)
{
    fixture_t *f = *state;
    heard_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    checker_t c = { .f = f, .h = h };
    c.tenants[0] = h->tenants[0] = fx_store_tenant(&f->fx, "notes-a", NULL);
    c.tenants[1] = h->tenants[1] = fx_store_tenant(&f->fx, "notes-b", NULL);

    /* At most STORE_MAX_SUBSCRIBERS at once; a place freed is free again. */
    int dummy[STORE_MAX_SUBSCRIBERS];
    for (int i = 0; i < STORE_MAX_SUBSCRIBERS - 1; i++)
        assert_int_equal(store_subscribe(f->fx.s, on_commit, &dummy[i]), 0);
    assert_int_equal(store_subscribe(f->fx.s, on_commit, h), 0);
    assert_int_equal(store_subscribe(f->fx.s, on_commit, &dummy[0]), BH_ERANGE);
    store_unsubscribe(f->fx.s, on_commit, &dummy[0]);
    assert_int_equal(store_subscribe(f->fx.s, on_commit, &dummy[0]), 0);
    for (int i = 0; i < STORE_MAX_SUBSCRIBERS - 1; i++)
        store_unsubscribe(f->fx.s, on_commit, &dummy[i]);

    pthread_t ct;
    assert_int_equal(pthread_create(&ct, NULL, checker_main, &c), 0);
    pthread_t th[NW_THREADS];
    nw_arg_t args[NW_THREADS];
    for (int i = 0; i < NW_THREADS; i++) {
        args[i] = (nw_arg_t){ .f = f, .tenant = c.tenants[i % 2], .idx = i };
        assert_int_equal(pthread_create(&th[i], NULL, nw_writer, &args[i]), 0);
    }
    for (int i = 0; i < NW_THREADS; i++)
        pthread_join(th[i], NULL);
    /* Every tenant's last commit is announced. */
    uint64_t last[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(store_tenant_version(f->fx.s, c.tenants[k], &last[k]), 0);
    if (!heard_wait(h, last))
        fail_msg("the last commits (versions %llu, %llu) were not announced within 10 s",
                 (unsigned long long)last[0], (unsigned long long)last[1]);
    store_unsubscribe(f->fx.s, on_commit, h);
    pthread_mutex_lock(&h->lock);
    h->done = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(ct, NULL);

    for (int i = 0; i < NW_THREADS; i++)
        assert_int_equal(args[i].failures, 0);
    if (c.failures)
        fail_msg("%d bad notifications, the first: %s", c.failures, c.why);
    /* Each tenant's last announcement is its last version; at most one per write. */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(last[k], (uint64_t)NW_THREADS / 2 * NW_PER_THREAD);
        assert_int_equal(c.last[k], last[k]);
    }
    assert_true(c.notes >= 2);
    assert_true(c.notes <= (size_t)NW_THREADS * NW_PER_THREAD);
    fprintf(stderr, "%zu notifications for %d writes\n", c.notes, NW_THREADS * NW_PER_THREAD);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_write_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_ensure_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_notifications, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
