/*
 * test_store.c: the store against real SQLite files in a temporary directory.
 *
 * Each test gets a fresh directory under /tmp (removed afterwards) and opens
 * "sqlite:<dir>/var/store.db", so the parent-directory creation runs every time.
 * Some tests look at the file with a separate raw SQLite connection, to check what
 * really reached the database rather than what the store says about it.
 */
#define _GNU_SOURCE /* nftw, mkdtemp */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"
#include "store/store_int.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

typedef struct fixture {
    char dir[64];
    char url[160];
    char path[128];
    bh_clock_t clock;
} fixture_t;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/var/store.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    clock_fake_init(&f->clock, T0_MS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static store_t *open_store(fixture_t *f, int read_connections, int max_group)
{
    store_options_t opt = { .clock = &f->clock, .read_connections = read_connections, .max_group = max_group };
    store_t *s = NULL;
    const char *msg = NULL;
    int rc = store_open(f->url, &opt, &s, &msg);
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", msg ? msg : "?");
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Opens the database file directly, bypassing the store. */
static sqlite3 *raw_open(fixture_t *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static store_signing_key_t make_key(const char *kid, unsigned char fill, int64_t created)
{
    store_signing_key_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "%s", kid);
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

/* ---- opening ---------------------------------------------------------------------- */

static void test_open_urls(void **state)
{
    fixture_t *f = *state;
    store_options_t opt = { .clock = &f->clock };
    store_t *s = (store_t *)0x1;
    const char *msg = NULL;

    assert_int_equal(store_open("postgres://u@localhost/db", &opt, &s, &msg), BH_EINVAL);
    assert_null(s);
    assert_string_equal(msg, "the PostgreSQL back-end is not built yet");
    msg = NULL;
    assert_int_equal(store_open("postgresql://localhost/db", &opt, &s, &msg), BH_EINVAL);
    assert_string_equal(msg, "the PostgreSQL back-end is not built yet");

    msg = NULL;
    assert_int_equal(store_open("mysql://localhost/db", &opt, &s, &msg), BH_EINVAL);
    assert_non_null(msg);
    assert_int_equal(store_open("sqlite:", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open("", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open(NULL, &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open(":memory:", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open("sqlite::memory:", &opt, &s, &msg), BH_EINVAL);
    store_options_t bad = { .clock = &f->clock, .read_connections = -1 };
    assert_int_equal(store_open(f->url, &bad, &s, &msg), BH_EINVAL);
    bad = (store_options_t){ .clock = &f->clock, .max_group = -5 };
    assert_int_equal(store_open(f->url, &bad, &s, &msg), BH_EINVAL);

    /* The directory "var" does not exist yet: store_open creates it. */
    char var[128];
    snprintf(var, sizeof(var), "%s/var", f->dir);
    struct stat st;
    assert_int_not_equal(stat(var, &st), 0);
    assert_int_equal(store_open(f->url, NULL, &s, &msg), 0);
    assert_int_equal(stat(var, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* the file holds signing keys */
    assert_int_equal(store_ping(s), 0);
    store_close(s);

    /* A bare path and the sqlite:// spelling name the same kind of store. */
    char bare[128];
    snprintf(bare, sizeof(bare), "%s/deeper/dir/bare.db", f->dir);
    s = NULL;
    assert_int_equal(store_open(bare, &opt, &s, NULL), 0);
    assert_int_equal(store_ping(s), 0);
    store_close(s);
    char slashes[160];
    snprintf(slashes, sizeof(slashes), "sqlite://%s/slashes.db", f->dir);
    s = NULL;
    assert_int_equal(store_open(slashes, &opt, &s, NULL), 0);
    store_close(s);
    char made[128];
    snprintf(made, sizeof(made), "%s/slashes.db", f->dir);
    assert_int_equal(stat(made, &st), 0);

    store_close(NULL);
}

/* ---- migrations ------------------------------------------------------------------- */

static void test_migrations(void **state)
{
    fixture_t *f = *state;
    assert_true(sqlite__n_migrations >= 1);

    store_t *s = open_store(f, 0, 0);
    int v = -1;
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "acme", &t), 0);
    store_close(s);

    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM schema_migrations"),
                     (int64_t)sqlite__n_migrations);
    assert_int_equal(raw_int(db, "SELECT MIN(version) FROM schema_migrations"), 1);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM schema_migrations"),
                     (int64_t)sqlite__n_migrations);
    assert_int_equal(raw_int(db, "SELECT MAX(applied_at) FROM schema_migrations"), T0_MS);
    char mode[16];
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    sqlite3_close(db);

    /* A second open, later, applies nothing and keeps the data. */
    clock_fake_advance(&f->clock, 60000);
    s = open_store(f, 0, 0);
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    assert_int_equal(store_tenant_get(s, "acme", &t), 0);
    store_close(s);

    db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM schema_migrations"),
                     (int64_t)sqlite__n_migrations);
    assert_int_equal(raw_int(db, "SELECT MAX(applied_at) FROM schema_migrations"), T0_MS);

    /* A database from a newer breakhook is refused rather than misread. */
    char *sql = sqlite3_mprintf("INSERT INTO schema_migrations VALUES (%d, 0)",
                                (int)sqlite__n_migrations + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    sqlite3_close(db);
    const char *msg = NULL;
    store_options_t opt = { .clock = &f->clock };
    s = NULL;
    assert_int_equal(store_open(f->url, &opt, &s, &msg), BH_ECONFLICT);
    assert_null(s);
    assert_non_null(strstr(msg, "newer"));
}

/* ---- tenants ---------------------------------------------------------------------- */

static void test_tenants(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);

    store_tenant_t a, b, got;
    assert_int_equal(store_tenant_create(s, "acme", &a), 0);
    assert_true(a.id > 0);
    assert_string_equal(a.name, "acme");
    assert_int_equal(a.created_at_ms, T0_MS);
    clock_fake_advance(&f->clock, 5);
    assert_int_equal(store_tenant_create(s, "0-globex-9", &b), 0);
    assert_int_not_equal(a.id, b.id);
    assert_int_equal(b.created_at_ms, T0_MS + 5);
    assert_int_equal(store_tenant_create(s, "no-out", NULL), 0);

    assert_int_equal(store_tenant_get(s, "acme", &got), 0);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, "acme");
    assert_int_equal(got.created_at_ms, T0_MS);
    assert_int_equal(store_tenant_get(s, "0-globex-9", &got), 0);
    assert_int_equal(got.id, b.id);
    assert_int_equal(store_tenant_get(s, "initech", &got), BH_ENOTFOUND);
    assert_int_equal(store_tenant_get(s, "Acme", &got), BH_ENOTFOUND);

    assert_int_equal(store_tenant_create(s, "acme", &got), BH_EEXIST);

    /* Names: 1..63 of [a-z0-9-], starting with a letter or digit. */
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'b', 64);
    n64[64] = '\0';
    const char *bad[] = { "", "-acme", "Acme", "ac_me", "ac me", "acme.io", "ac/me",
                          "é", n64 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_tenant_create(s, bad[i], &got), BH_EINVAL);
    assert_int_equal(store_tenant_create(s, NULL, &got), BH_EINVAL);
    assert_int_equal(store_tenant_create(s, n63, &got), 0);
    assert_int_equal(store_tenant_create(s, "x", &got), 0);
    assert_int_equal(store_tenant_create(s, "7-", &got), 0);

    store_tenant_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(s, &list, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(list[0].name, "acme");
    assert_string_equal(list[1].name, "0-globex-9");
    assert_string_equal(list[2].name, "no-out");
    assert_string_equal(list[3].name, n63);
    assert_string_equal(list[4].name, "x");
    assert_string_equal(list[5].name, "7-");
    for (size_t i = 1; i < n; i++)
        assert_true(list[i].id > list[i - 1].id);
    free(list);

    /* Failed creates did not write: only the six successful ones count. */
    store_stats_t stats;
    store_get_stats(s, &stats);
    assert_int_equal(stats.writes, 6);
    store_close(s);
}

/* ---- clients ---------------------------------------------------------------------- */

static void test_clients(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    store_tenant_t ta, tb;
    assert_int_equal(store_tenant_create(s, "tenant-a", &ta), 0);
    assert_int_equal(store_tenant_create(s, "tenant-b", &tb), 0);

    store_client_t c1 = make_client("c1", "Payroll", "breaks:read people:read");
    c1.tenant_id = tb.id;  /* ignored: the argument decides */
    c1.revoked_at_ms = 42; /* ignored: a new client is active */
    assert_int_equal(store_client_create(s, ta.id, &c1), 0);
    clock_fake_advance(&f->clock, 10);
    store_client_t c2 = make_client("c2", "HR", "breaks:write");
    assert_int_equal(store_client_create(s, ta.id, &c2), 0);
    clock_fake_advance(&f->clock, 10);
    store_client_t c0 = make_client("c0", "Analytics", "");
    assert_int_equal(store_client_create(s, ta.id, &c0), 0);

    store_client_t got;
    assert_int_equal(store_client_get(s, ta.id, "c1", &got), 0);
    assert_int_equal(got.tenant_id, ta.id);
    assert_string_equal(got.client_id, "c1");
    assert_string_equal(got.name, "Payroll");
    assert_string_equal(got.scopes, "breaks:read people:read");
    assert_string_equal(got.secret_hash, c1.secret_hash);
    assert_int_equal(got.created_at_ms, T0_MS);
    assert_int_equal(got.revoked_at_ms, 0);

    /* Tenant isolation: tenant B sees nothing of A's, exactly like a missing one. */
    assert_int_equal(store_client_get(s, tb.id, "c1", &got), BH_ENOTFOUND);
    assert_int_equal(store_client_get(s, ta.id, "nope", &got), BH_ENOTFOUND);
    store_client_t *list = NULL;
    size_t n = 99;
    assert_int_equal(store_client_list(s, tb.id, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(store_client_revoke(s, tb.id, "c1", T0_MS + 100), BH_ENOTFOUND);
    assert_int_equal(store_client_get(s, ta.id, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, 0);

    /* The same client id in another tenant is another client. */
    store_client_t b1 = make_client("c1", "B's payroll", "breaks:read");
    assert_int_equal(store_client_create(s, tb.id, &b1), 0);
    assert_int_equal(store_client_get(s, tb.id, "c1", &got), 0);
    assert_string_equal(got.name, "B's payroll");
    assert_int_equal(got.tenant_id, tb.id);
    assert_int_equal(store_client_get(s, ta.id, "c1", &got), 0);
    assert_string_equal(got.name, "Payroll");

    assert_int_equal(store_client_create(s, ta.id, &c1), BH_EEXIST);
    assert_int_equal(store_client_create(s, 999999, &c1), BH_ENOTFOUND);
    store_client_t bad = make_client("", "x", "");
    assert_int_equal(store_client_create(s, ta.id, &bad), BH_EINVAL);
    bad = make_client("ok", "x", "");
    bad.secret_hash[0] = '\0';
    assert_int_equal(store_client_create(s, ta.id, &bad), BH_EINVAL);
    bad = make_client("ok", "x", "");
    memset(bad.name, 'n', sizeof(bad.name)); /* no NUL inside the field */
    assert_int_equal(store_client_create(s, ta.id, &bad), BH_EINVAL);

    /* Ordered by creation, not by id. */
    assert_int_equal(store_client_list(s, ta.id, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].client_id, "c1");
    assert_string_equal(list[1].client_id, "c2");
    assert_string_equal(list[2].client_id, "c0");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].tenant_id, ta.id);
    free(list);
    assert_int_equal(store_client_list(s, tb.id, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "B's payroll");
    free(list);

    /* Revocation: the first one wins; B's c1 is untouched. */
    assert_int_equal(store_client_revoke(s, ta.id, "c1", T0_MS + 1000), 0);
    assert_int_equal(store_client_revoke(s, ta.id, "c1", T0_MS + 2000), 0);
    assert_int_equal(store_client_get(s, ta.id, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, T0_MS + 1000);
    assert_int_equal(store_client_get(s, tb.id, "c1", &got), 0);
    assert_int_equal(got.revoked_at_ms, 0);
    assert_int_equal(store_client_revoke(s, ta.id, "missing", T0_MS), BH_ENOTFOUND);
    assert_int_equal(store_client_revoke(s, ta.id, "c2", 0), BH_EINVAL);

    /* The revoked list names exactly A's c1, with its tenant. */
    assert_int_equal(store_client_list_revoked(s, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].tenant_id, ta.id);
    assert_string_equal(list[0].client_id, "c1");
    assert_int_equal(list[0].revoked_at_ms, T0_MS + 1000);
    free(list);
    store_close(s);
}

/* ---- signing keys ----------------------------------------------------------------- */

static void test_signing_keys(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);

    store_signing_key_t *list = NULL;
    size_t n = 99;
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);

    /* First start: the candidate becomes the active key. */
    store_signing_key_t k1 = make_key("k1", 0x11, 1000), active;
    assert_int_equal(store_signing_key_ensure(s, &k1, &active), 0);
    assert_string_equal(active.kid, "k1");
    assert_memory_equal(active.secret, k1.secret, 32);
    assert_int_equal(active.created_at_ms, 1000);
    assert_int_equal(active.retired_at_ms, 0);

    /* Later starts: the stored key wins over a new candidate. */
    store_signing_key_t k2 = make_key("k2", 0x22, 1500);
    assert_int_equal(store_signing_key_ensure(s, &k2, &active), 0);
    assert_string_equal(active.kid, "k1");
    assert_memory_equal(active.secret, k1.secret, 32);
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, 1);
    free(list);

    /* Rotation: k3 becomes active, k1 is retired at k3's creation time. */
    store_signing_key_t k3 = make_key("k3", 0x33, 2000);
    assert_int_equal(store_signing_key_add(s, &k3), 0);
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].kid, "k3");
    assert_int_equal(list[0].retired_at_ms, 0);
    assert_int_equal(list[0].created_at_ms, 2000);
    assert_memory_equal(list[0].secret, k3.secret, 32);
    assert_string_equal(list[1].kid, "k1");
    assert_int_equal(list[1].retired_at_ms, 2000);
    assert_memory_equal(list[1].secret, k1.secret, 32);
    free(list);

    /* A duplicate kid fails as a whole: the retirement of k3 is undone too. */
    store_signing_key_t dup = make_key("k1", 0x44, 3000);
    assert_int_equal(store_signing_key_add(s, &dup), BH_EEXIST);
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].kid, "k3");
    assert_int_equal(list[0].retired_at_ms, 0);
    assert_int_equal(list[1].retired_at_ms, 2000);
    free(list);

    store_signing_key_t k4 = make_key("k4", 0x55, 4000);
    assert_int_equal(store_signing_key_ensure(s, &k4, &active), 0);
    assert_string_equal(active.kid, "k3");

    store_signing_key_t badk = make_key("", 0x66, 1);
    assert_int_equal(store_signing_key_add(s, &badk), BH_EINVAL);
    store_close(s);

    /* Exactly one active key, as the raw file sees it. */
    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM signing_keys WHERE retired_at_ms IS NULL"),
                     1);
    sqlite3_close(db);
}

typedef struct ensure_arg {
    store_t *s;
    int idx;
    int rc;
    store_signing_key_t active;
} ensure_arg_t;

static void *ensure_thread(void *p)
{
    ensure_arg_t *a = p;
    char kid[16];
    snprintf(kid, sizeof(kid), "race-%d", a->idx);
    store_signing_key_t cand = make_key(kid, (unsigned char)a->idx, 100 + a->idx);
    a->rc = store_signing_key_ensure(a->s, &cand, &a->active);
    return NULL;
}

/* Many nodes starting at once must agree on one key. */
static void test_signing_key_ensure_race(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    enum { N = 8 };
    pthread_t th[N];
    ensure_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (ensure_arg_t){ .s = s, .idx = i };
        assert_int_equal(pthread_create(&th[i], NULL, ensure_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(args[i].rc, 0);
        assert_string_equal(args[i].active.kid, args[0].active.kid);
        assert_memory_equal(args[i].active.secret, args[0].active.secret, 32);
    }
    store_signing_key_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].kid, args[0].active.kid);
    free(list);
    store_close(s);
}

/* ---- group commit ----------------------------------------------------------------- */

enum { GC_THREADS = 8, GC_PER_THREAD = 200 };

typedef struct gc_arg {
    store_t *s;
    int idx;
    int failures;
} gc_arg_t;

static void *gc_writer(void *p)
{
    gc_arg_t *a = p;
    for (int i = 0; i < GC_PER_THREAD; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%d-%d", a->idx, i);
        store_tenant_t t;
        if (store_tenant_create(a->s, name, &t) != 0 || strcmp(t.name, name) != 0)
            a->failures++;
    }
    return NULL;
}

typedef struct reader_arg {
    store_t *s;
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
        if (store_ping(a->s) != 0 || store_tenant_get(a->s, "seed", &t) != 0)
            a->failures++;
        a->reads++;
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 2, 0);
    assert_int_equal(store_tenant_create(s, "seed", NULL), 0);
    store_stats_t before;
    store_get_stats(s, &before);
    assert_int_equal(before.writes, 1);
    assert_int_equal(before.commits, 1);

    volatile int stop = 0;
    pthread_t wt[GC_THREADS], rt[2];
    gc_arg_t wa[GC_THREADS];
    reader_arg_t ra[2];
    for (int i = 0; i < 2; i++) {
        ra[i] = (reader_arg_t){ .s = s, .stop = &stop };
        assert_int_equal(pthread_create(&rt[i], NULL, gc_reader, &ra[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        wa[i] = (gc_arg_t){ .s = s, .idx = i };
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
    store_get_stats(s, &after);
    uint64_t writes = after.writes - before.writes;
    uint64_t commits = after.commits - before.commits;
    fprintf(stderr, "group commit: %llu writes in %llu commits\n", (unsigned long long)writes,
            (unsigned long long)commits);
    assert_int_equal(writes, GC_THREADS * GC_PER_THREAD);
    assert_true(commits >= 1);
    assert_true(commits < writes);

    store_tenant_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(s, &list, &n), 0);
    assert_int_equal(n, GC_THREADS * GC_PER_THREAD + 1);
    free(list);
    for (int i = 0; i < GC_THREADS; i++) {
        for (int j = 0; j < GC_PER_THREAD; j++) {
            char name[32];
            snprintf(name, sizeof(name), "t%d-%d", i, j);
            store_tenant_t t;
            assert_int_equal(store_tenant_get(s, name, &t), 0);
        }
    }
    store_close(s);
}

/* One write on its own thread: a tenant create, or a signing key add when key is set. */
typedef struct one_create {
    store_t *s;
    const char *name;
    int rc;
    const store_signing_key_t *key;
} one_create_t;

static void *one_create_thread(void *p)
{
    one_create_t *a = p;
    int rc = a->key ? store_signing_key_add(a->s, a->key)
                    : store_tenant_create(a->s, a->name, NULL);
    __atomic_store_n(&a->rc, rc, __ATOMIC_RELEASE);
    return NULL;
}

/*
 * Forces jobs into one group: a raw connection holds the write lock, so the writer
 * takes the first job ("first") and then waits in BEGIN IMMEDIATE while the others
 * queue up behind it. When the lock is released the writer commits "first", then
 * takes all the queued jobs as one group. In that group one job fails on a name
 * committed earlier ("taken"), one on a name inserted earlier in the same
 * transaction ("twin"), and a signing key add fails on its second statement after
 * its first one (retiring the active key) succeeded: each is rolled back alone, to
 * its savepoint, and the rest commit.
 */
static void test_failing_job_in_group(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    assert_int_equal(store_tenant_create(s, "taken", NULL), 0);
    store_signing_key_t key = make_key("key", 0x01, 1000), dupkey = make_key("key", 0x02, 2000),
                        active;
    assert_int_equal(store_signing_key_ensure(s, &key, &active), 0);
    store_stats_t before;
    store_get_stats(s, &before);

    sqlite3 *db = raw_open(f);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    one_create_t first = { s, "first", 99, NULL };
    pthread_t first_th;
    assert_int_equal(pthread_create(&first_th, NULL, one_create_thread, &first), 0);
    sleep_ms(150);

    enum { N = 7 };
    one_create_t jobs[N] = {
        { s, "alpha", 99, NULL }, { s, "taken", 99, NULL }, { s, "twin", 99, NULL },
        { s, "twin", 99, NULL },  { s, "beta", 99, NULL },  { s, "gamma", 99, NULL },
        { s, NULL, 99, &dupkey },
    };
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, one_create_thread, &jobs[i]), 0);
    sleep_ms(400);
    /* Still blocked behind the raw lock. */
    assert_int_equal(__atomic_load_n(&first.rc, __ATOMIC_ACQUIRE), 99);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    pthread_join(first_th, NULL);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    assert_int_equal(first.rc, 0);
    assert_int_equal(jobs[0].rc, 0);
    assert_int_equal(jobs[1].rc, BH_EEXIST);
    assert_true((jobs[2].rc == 0 && jobs[3].rc == BH_EEXIST) ||
                (jobs[2].rc == BH_EEXIST && jobs[3].rc == 0));
    assert_int_equal(jobs[4].rc, 0);
    assert_int_equal(jobs[5].rc, 0);
    assert_int_equal(jobs[6].rc, BH_EEXIST);

    store_stats_t after;
    store_get_stats(s, &after);
    assert_int_equal(after.writes - before.writes, 5); /* first alpha twin beta gamma */
    assert_true(after.commits - before.commits <= 2);  /* the failures shared a commit */
    store_close(s);

    /* All five survived on disk; the "taken" row is the original one. */
    s = open_store(f, 0, 0);
    const char *names[] = { "first", "alpha", "twin", "beta", "gamma", "taken" };
    store_tenant_t t;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(store_tenant_get(s, names[i], &t), 0);
    store_tenant_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(s, &list, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(list[0].name, "taken");
    free(list);
    /* The failed add's retirement of the active key was rolled back with it. */
    store_signing_key_t *keys = NULL;
    assert_int_equal(store_signing_key_list(s, &keys, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].kid, "key");
    assert_int_equal(keys[0].retired_at_ms, 0);
    assert_memory_equal(keys[0].secret, key.secret, 32);
    free(keys);
    store_close(s);
}

/* ---- durability and shutdown ------------------------------------------------------ */

/* The WAL file is cut back to SQLITE__WAL_LIMIT_BYTES once it has been checkpointed,
 * however large one transaction made it (here 16 MiB written by another connection,
 * as `breakhook import` would): otherwise it keeps its largest size on disk, and a
 * full disk cannot get that space back. */
static void test_wal_bounded(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 2, 0);
    sqlite3 *db = raw_open(f);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE scratch (b BLOB);"
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                                  " FROM n WHERE i < 16)"
                                  " INSERT INTO scratch SELECT zeroblob(1048576) FROM n",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 2 * SQLITE__WAL_LIMIT_BYTES - 1024 * 1024);

    /* The store's checkpointer folds the WAL back (every second); the next write
     * after that starts it over and truncates it. Bounded: 60 s. */
    bool bounded = false;
    for (int i = 0; i < 300 && !bounded; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t-%d", i);
        store_tenant_t t;
        assert_int_equal(store_tenant_create(s, name, &t), 0);
        assert_int_equal(stat(wal, &st), 0);
        bounded = st.st_size <= SQLITE__WAL_LIMIT_BYTES;
        if (!bounded)
            sleep_ms(200);
    }
    if (!bounded)
        fail_msg("the WAL stayed at %lld bytes, over the %d-byte limit", (long long)st.st_size,
                 SQLITE__WAL_LIMIT_BYTES);
    store_close(s);
}

static void test_durability(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 1, 4);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "durable", &t), 0);
    store_client_t c = make_client("cli", "Durable client", "a b");
    assert_int_equal(store_client_create(s, t.id, &c), 0);
    assert_int_equal(store_client_revoke(s, t.id, "cli", T0_MS + 7), 0);
    store_signing_key_t k = make_key("kd", 0x7a, 1234), active;
    assert_int_equal(store_signing_key_ensure(s, &k, &active), 0);
    store_close(s);

    /* Another connection, not the store, finds everything in the file. */
    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM tenants WHERE name = 'durable'"), 1);
    assert_int_equal(raw_int(db, "SELECT revoked_at_ms FROM clients WHERE client_id = 'cli'"),
                     T0_MS + 7);
    assert_int_equal(raw_int(db, "SELECT length(secret) FROM signing_keys WHERE kid = 'kd'"),
                     33);
    sqlite3_close(db);
}

/* ---- signing keys at rest --------------------------------------------------------- */

#define MASTER_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define OTHER_HEX "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* Opens with an optional master key (hex); returns store_open's code, *msg its reason. */
static int open_with_master(fixture_t *f, const char *hex, store_t **s, const char **msg)
{
    crypto_master_t m;
    assert_int_equal(crypto_master_parse(hex, &m), 0);
    store_options_t opt = { .clock = &f->clock, .master = &m };
    *s = NULL;
    *msg = NULL;
    return store_open(f->url, &opt, s, msg);
}

static store_t *open_master(fixture_t *f, const char *hex)
{
    store_t *s;
    const char *msg;
    int rc = open_with_master(f, hex, &s, &msg);
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", msg ? msg : "?");
    assert_int_equal(rc, 0);
    return s;
}

/* True when the stored secret of kid contains the 32 key bytes anywhere. */
static bool raw_secret_holds(sqlite3 *db, const char *kid, const unsigned char *key,
                             int *len_out)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT secret FROM signing_keys WHERE kid = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *b = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    bool found = false;
    for (int i = 0; b && i + 32 <= n && !found; i++)
        found = memcmp(b + i, key, 32) == 0;
    *len_out = n;
    sqlite3_finalize(st);
    return found;
}

/* A token signed with the keys the store lists now. */
static char *issue_token(store_t *s)
{
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &keys, &n), 0);
    auth_keyring_t ring;
    auth_keyring_init(&ring);
    auth_keyring_set(&ring, keys, n);
    free(keys);
    auth_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.tenant, sizeof(c.tenant), "acme");
    c.tenant_id = 1;
    snprintf(c.client_id, sizeof(c.client_id), "bh_client");
    snprintf(c.scope, sizeof(c.scope), "breaks.read");
    c.iat = c.nbf = T0_MS / 1000;
    c.exp = c.iat + 3600;
    char *tok = NULL;
    assert_int_equal(auth_token_issue(&ring, rand_system(), &c, &tok), 0);
    auth_keyring_deinit(&ring);
    return tok;
}

/* Whether tok verifies against the keys the store lists now. */
static auth_token_status_t verify_token(store_t *s, const char *tok)
{
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &keys, &n), 0);
    auth_keyring_t ring;
    auth_keyring_init(&ring);
    auth_keyring_set(&ring, keys, n);
    free(keys);
    auth_claims_t out;
    auth_token_status_t st = auth_token_verify(&ring, tok, strlen(tok), T0_MS + 1000, 3600, &out);
    auth_keyring_deinit(&ring);
    return st;
}

/* With a master key the database file never holds a signing key's bytes, and the
 * store hands back the key itself: tokens it signed verify after a restart. With
 * another master key the store refuses to open and says why; without one it opens
 * (tenant and client commands need no keys) but refuses to read the keys or to add
 * one in the clear. */
static void test_signing_keys_sealed(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_master(f, MASTER_HEX);
    store_signing_key_t k1 = make_key("k1", 0x5a, T0_MS - 1000), k2 = make_key("k2", 0x6b, T0_MS),
                        active;
    assert_int_equal(store_signing_key_ensure(s, &k1, &active), 0);
    assert_memory_equal(active.secret, k1.secret, 32);
    char *tok1 = issue_token(s);
    assert_int_equal(store_signing_key_add(s, &k2), 0); /* breakhook key rotate */
    char *tok2 = issue_token(s);
    store_close(s);

    sqlite3 *db = raw_open(f);
    int len = 0;
    assert_false(raw_secret_holds(db, "k1", k1.secret, &len));
    assert_int_equal(len, 61);
    assert_false(raw_secret_holds(db, "k2", k2.secret, &len));
    assert_int_equal(len, 61);
    sqlite3_close(db);

    s = open_master(f, MASTER_HEX);
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &keys, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].kid, "k2");
    assert_memory_equal(keys[0].secret, k2.secret, 32);
    assert_memory_equal(keys[1].secret, k1.secret, 32);
    free(keys);
    assert_int_equal(verify_token(s, tok1), AUTH_TOKEN_OK);
    assert_int_equal(verify_token(s, tok2), AUTH_TOKEN_OK);
    store_close(s);

    const char *msg;
    assert_int_equal(open_with_master(f, OTHER_HEX, &s, &msg), BH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(msg, "does not open with this BREAKHOOK_MASTER_KEY"));

    assert_int_equal(open_with_master(f, NULL, &s, &msg), 0);
    assert_int_equal(store_signing_key_list(s, &keys, &n), BH_EINVAL);
    store_signing_key_t k3 = make_key("k3", 0x7c, T0_MS + 1);
    assert_int_equal(store_signing_key_ensure(s, &k3, &active), BH_EINVAL);
    assert_int_equal(store_signing_key_add(s, &k3), BH_EINVAL);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "acme", &t), 0);
    store_close(s);
    db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM signing_keys"), 2);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM signing_keys WHERE length(secret) = 61"),
                     2);
    sqlite3_close(db);
    free(tok1);
    free(tok2);
}

/* A store from before signing keys were sealed (schema 4: the bare 32-byte key in
 * the secret column) is sealed at the first open with a master key, and the tokens
 * signed before still verify. */
static void test_signing_keys_sealed_at_open(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    store_signing_key_t k = make_key("old", 0x3c, 1000), active;
    assert_int_equal(store_signing_key_ensure(s, &k, &active), 0);
    char *tok = issue_token(s);
    store_close(s);

    /* Back to schema 4, as an older breakhook left it (migration 6 undone too). */
    sqlite3 *db = raw_open(f);
    char *sql = sqlite3_mprintf(
        "DELETE FROM schema_migrations WHERE version >= 5;"
        "DROP INDEX breaks_by_definition;"
        "ALTER TABLE breaks DROP COLUMN window_given;"
        "ALTER TABLE break_definitions DROP COLUMN earliest_start;"
        "ALTER TABLE break_definitions DROP COLUMN latest_end;"
        "CREATE INDEX breaks_by_definition ON breaks (tenant_id, definition_id,"
        " calculated_given);"
        "DROP TABLE signing_keys;"
        "CREATE TABLE signing_keys (kid TEXT PRIMARY KEY NOT NULL,"
        " secret BLOB NOT NULL CHECK (length(secret) = 32), created_at_ms INTEGER NOT NULL,"
        " retired_at_ms INTEGER);"
        "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at_ms IS NULL))"
        " WHERE retired_at_ms IS NULL;"
        "INSERT INTO signing_keys VALUES ('old', x'%s', 1000, NULL);",
        "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c");
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    int len = 0;
    assert_true(raw_secret_holds(db, "old", k.secret, &len));
    assert_int_equal(len, 32);
    sqlite3_close(db);

    s = open_master(f, MASTER_HEX);
    int v = 0;
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    assert_int_equal(verify_token(s, tok), AUTH_TOKEN_OK);
    store_close(s);

    db = raw_open(f);
    assert_false(raw_secret_holds(db, "old", k.secret, &len));
    assert_int_equal(len, 61);
    sqlite3_close(db);

    /* Sealed for good: the keys cannot be read without the master key, and are the
     * same key with it. */
    const char *msg;
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(open_with_master(f, NULL, &s, &msg), 0);
    assert_int_equal(store_signing_key_list(s, &keys, &n), BH_EINVAL);
    store_close(s);
    s = open_master(f, MASTER_HEX);
    assert_int_equal(verify_token(s, tok), AUTH_TOKEN_OK);
    store_close(s);
    free(tok);
}

static void test_reopen_keeps_data(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "durable", &t), 0);
    store_client_t c = make_client("cli", "Durable client", "a b");
    assert_int_equal(store_client_create(s, t.id, &c), 0);
    store_signing_key_t k = make_key("kd", 0x7a, 1234), active;
    assert_int_equal(store_signing_key_ensure(s, &k, &active), 0);
    store_close(s);

    s = open_store(f, 0, 0);
    store_tenant_t t2;
    assert_int_equal(store_tenant_get(s, "durable", &t2), 0);
    assert_int_equal(t2.id, t.id);
    store_client_t got;
    assert_int_equal(store_client_get(s, t.id, "cli", &got), 0);
    assert_string_equal(got.secret_hash, c.secret_hash);
    store_signing_key_t *keys = NULL;
    size_t n = 0;
    assert_int_equal(store_signing_key_list(s, &keys, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(keys[0].secret, k.secret, 32);
    free(keys);
    /* The stats are per open handle. */
    store_stats_t st;
    store_get_stats(s, &st);
    assert_int_equal(st.writes, 0);
    store_close(s);
}

typedef struct sd_arg {
    store_t *s;
    int idx;
    int ok;
    int other;
} sd_arg_t;

static void *sd_writer(void *p)
{
    sd_arg_t *a = p;
    for (int i = 0;; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d-%d", a->idx, i);
        int rc = store_tenant_create(a->s, name, NULL);
        if (rc == BH_ESHUTDOWN)
            break;
        if (rc == 0)
            a->ok++;
        else
            a->other++;
    }
    return NULL;
}

/*
 * Shutdown under load: writers keep creating tenants until they are told
 * BH_ESHUTDOWN. Every create that returned 0 must be in the file afterwards and
 * no other one: shutdown drained the queue and refused the rest.
 */
static void test_shutdown(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    enum { N = 4 };
    pthread_t th[N];
    sd_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (sd_arg_t){ .s = s, .idx = i };
        assert_int_equal(pthread_create(&th[i], NULL, sd_writer, &args[i]), 0);
    }
    sleep_ms(100);
    store__shutdown(s);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "late", &t), BH_ESHUTDOWN);
    assert_int_equal(store_tenant_get(s, "late", &t), BH_ESHUTDOWN);
    assert_int_equal(store_ping(s), BH_ESHUTDOWN);
    store__shutdown(s); /* idempotent */
    store_close(s);

    int ok = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(args[i].other, 0);
        ok += args[i].ok;
    }
    assert_true(ok > 0);

    s = open_store(f, 0, 0);
    store_tenant_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_tenant_list(s, &list, &n), 0);
    assert_int_equal(n, (size_t)ok);
    free(list);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_ensure_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_job_in_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys_sealed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
