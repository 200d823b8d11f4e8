/*
 * test_store_sqlite.c: what only the SQLite back-end has, against real SQLite files
 * in a temporary directory (the shared store fixture, fixture_store.h). Everything a
 * user of store.h can observe is the back-end contract in tests/store/; here are the
 * file and its SQLite connection: the "sqlite:" URL forms and the directory and file
 * mode they create, the schema migrations of an existing file (and a file from a newer
 * breakhook refused), WAL mode and the WAL's bound, group commit forced through a raw
 * write lock with failing jobs rolled back to their savepoints, durability seen by
 * another connection, signing keys sealed at rest in the file, acks below the
 * watermark deleted from the file rather than filtered by the reads, shutdown under
 * load, and the batch write throughput of the file (printed, not asserted).
 *
 * Some tests look at the file with a separate raw SQLite connection, to check what
 * really reached the database rather than what the store says about it.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"
#include "store/store_int.h"
#include "fixture_store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

typedef struct fixture {
    fx_store_t fx; /* a fresh SQLite file, never $BREAKHOOK_TEST_STORE_URL's store */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    fx_store_new(&f->fx, "sqlite", T0_MS, false);
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

/* Opens the fixture's file with the given pool sizes (0: the defaults). The tests
 * below open and close stores themselves, several at a time; fx.s stays NULL. */
static store_t *open_store(fixture_t *f, int read_connections, int max_group)
{
    store_options_t opt = { .clock = &f->fx.clock, .read_connections = read_connections,
                            .max_group = max_group };
    store_t *s = NULL;
    const char *msg = NULL;
    int rc = store_open(f->fx.url, &opt, &s, &msg);
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
    assert_int_equal(sqlite3_open_v2(f->fx.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
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
    store_options_t opt = { .clock = &f->fx.clock };
    store_t *s = (store_t *)0x1;
    const char *msg = NULL;

    /* Both PostgreSQL spellings reach the PostgreSQL back-end; nothing listens on
     * port 1, so the open fails with libpq's reason. */
    assert_int_equal(store_open("postgres://u@127.0.0.1:1/db", &opt, &s, &msg), BH_EIO);
    assert_null(s);
    assert_non_null(strstr(msg, "cannot connect to PostgreSQL"));
    msg = NULL;
    assert_int_equal(store_open("postgresql://127.0.0.1:1/db", &opt, &s, &msg), BH_EIO);
    assert_non_null(strstr(msg, "cannot connect to PostgreSQL"));

    msg = NULL;
    assert_int_equal(store_open("mysql://localhost/db", &opt, &s, &msg), BH_EINVAL);
    assert_non_null(msg);
    assert_int_equal(store_open("sqlite:", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open("", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open(NULL, &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open(":memory:", &opt, &s, &msg), BH_EINVAL);
    assert_int_equal(store_open("sqlite::memory:", &opt, &s, &msg), BH_EINVAL);
    store_options_t bad = { .clock = &f->fx.clock, .read_connections = -1 };
    assert_int_equal(store_open(f->fx.url, &bad, &s, &msg), BH_EINVAL);
    bad = (store_options_t){ .clock = &f->fx.clock, .max_group = -5 };
    assert_int_equal(store_open(f->fx.url, &bad, &s, &msg), BH_EINVAL);

    /* The directory "var" does not exist yet: store_open creates it. */
    char var[128], in_var[160], in_var_url[192];
    snprintf(var, sizeof(var), "%s/var", f->fx.dir);
    snprintf(in_var, sizeof(in_var), "%s/store.db", var);
    snprintf(in_var_url, sizeof(in_var_url), "sqlite:%s", in_var);
    struct stat st;
    assert_int_not_equal(stat(var, &st), 0);
    assert_int_equal(store_open(in_var_url, NULL, &s, &msg), 0);
    assert_int_equal(stat(var, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(stat(in_var, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* the file holds signing keys */
    assert_int_equal(store_ping(s), 0);
    store_close(s);

    /* A bare path and the sqlite:// spelling name the same kind of store. */
    char bare[128];
    snprintf(bare, sizeof(bare), "%s/deeper/dir/bare.db", f->fx.dir);
    s = NULL;
    assert_int_equal(store_open(bare, &opt, &s, NULL), 0);
    assert_int_equal(store_ping(s), 0);
    store_close(s);
    char slashes[160];
    snprintf(slashes, sizeof(slashes), "sqlite://%s/slashes.db", f->fx.dir);
    s = NULL;
    assert_int_equal(store_open(slashes, &opt, &s, NULL), 0);
    store_close(s);
    char made[128];
    snprintf(made, sizeof(made), "%s/slashes.db", f->fx.dir);
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
    clock_fake_advance(&f->fx.clock, 60000);
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
    store_options_t opt = { .clock = &f->fx.clock };
    s = NULL;
    assert_int_equal(store_open(f->fx.url, &opt, &s, &msg), BH_ECONFLICT);
    assert_null(s);
    assert_non_null(strstr(msg, "newer"));
}

/* ---- group commit ----------------------------------------------------------------- */

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
    snprintf(wal, sizeof(wal), "%s-wal", f->fx.path);
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
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM signing_keys WHERE retired_at_ms IS NULL"),
                     1);
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
    store_options_t opt = { .clock = &f->fx.clock, .master = &m };
    *s = NULL;
    *msg = NULL;
    return store_open(f->fx.url, &opt, s, msg);
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

    /* Back to schema 4, as an older breakhook left it (migrations 6 to 8 undone too). */
    sqlite3 *db = raw_open(f);
    char *sql = sqlite3_mprintf(
        "DELETE FROM schema_migrations WHERE version >= 5;"
        "DROP TABLE deltas;"
        "ALTER TABLE changes DROP COLUMN prev_date;"
        "ALTER TABLE tenants DROP COLUMN pruned_upto;"
        "DROP TABLE delivery_marks;"
        "ALTER TABLE webhooks DROP COLUMN partitions;"
        "ALTER TABLE webhooks ADD COLUMN last_delivered_version INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE webhooks ADD COLUMN last_success_at_ms INTEGER;"
        "ALTER TABLE webhooks ADD COLUMN last_failure_at_ms INTEGER;"
        "DROP TABLE delivery_acks;"
        "CREATE TABLE delivery_acks (tenant_id INTEGER NOT NULL, webhook_id TEXT NOT NULL,"
        " record_id INTEGER NOT NULL, version INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, webhook_id, record_id)) WITHOUT ROWID;"
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

/* ---- the delivery tables in the file ---------------------------------------------- */

#define DAY0 20454 /* 2026-01-01 in days since the epoch */
#define WH1 "00000000-0000-4000-8000-000000000001"

/* Runs sql on a raw connection and returns its one integer. */
static int64_t raw_int_at(fixture_t *f, const char *sql)
{
    sqlite3 *db = raw_open(f);
    int64_t v = raw_int(db, sql);
    sqlite3_close(db);
    return v;
}

static void raw_exec(fixture_t *f, const char *sql)
{
    sqlite3 *db = raw_open(f);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec: %s\n", err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

/* Webhook WH1 of tenant, breaks, valid for 30 days from T0. */
static void create_wh1(store_t *s, int64_t tenant)
{
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    snprintf(w.id, sizeof(w.id), "%s", WH1);
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://hooks.example.com/1");
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    w.key_blob_len = 60;
    w.created_at_ms = T0_MS;
    w.valid_until_ms = T0_MS + 30 * 86400000LL;
    assert_int_equal(store_webhook_create(s, tenant, &w, 100), 0);
}

static int commit_mark(store_t *s, int64_t tenant, uint64_t version)
{
    struct store_watermark m = { .tenant_id = tenant, .webhook_id = WH1, .version = version,
                                 .last_success_at_ms = T0_MS };
    store_delivery_batch_t b = { .marks = &m, .n_marks = 1 };
    return store_delivery_commit(s, &b);
}

static int commit_ack(store_t *s, int64_t tenant, int64_t record, uint64_t version)
{
    struct store_ack k = { .tenant_id = tenant, .webhook_id = WH1, .record_id = record,
                           .version = version };
    store_delivery_batch_t b = { .acks = &k, .n_acks = 1 };
    return store_delivery_commit(s, &b);
}

/* Acks at or below a raised watermark are deleted from the file, not only hidden by
 * the reads (the table would otherwise grow with every delivery); and an ack written
 * behind the store's back below the watermark is still not answered. */
static void test_acks_leave_the_file(void **state)
{
    fixture_t *f = *state;
    store_t *s = open_store(f, 0, 0);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "acks", &t), 0);
    create_wh1(s, t.id);
    for (int i = 0; i < 10; i++)
        assert_int_equal(commit_ack(s, t.id, 100 + i, (uint64_t)(1 + i)), 0);
    assert_int_equal(raw_int_at(f, "SELECT COUNT(*) FROM delivery_acks"), 10);
    assert_int_equal(commit_mark(s, t.id, 6), 0);
    assert_int_equal(raw_int_at(f, "SELECT COUNT(*) FROM delivery_acks"), 4);
    assert_int_equal(raw_int_at(f, "SELECT MIN(version) FROM delivery_acks"), 7);
    /* Acks that arrive at or below the watermark are not stored at all. */
    assert_int_equal(commit_ack(s, t.id, 200, 5), 0);
    assert_int_equal(raw_int_at(f, "SELECT COUNT(*) FROM delivery_acks"), 4);

    char sql[160];
    snprintf(sql, sizeof(sql), "INSERT INTO delivery_acks VALUES (%lld, '%s', 0, 77, 3)",
             (long long)t.id, WH1);
    raw_exec(f, sql);
    store_acked_t *a = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_acked(s, t.id, WH1, 0, &a, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(a[i].record_id, 77);
    free(a);
    store_close(s);
}

/* ---- migrations of files with data ------------------------------------------------- */

/* A file at schema `at` (the first `at` migrations applied by hand) holding the rows
 * of `data`. */
static void make_old_file(fixture_t *f, int at, const char *data)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->fx.path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                                  " applied_at INTEGER NOT NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < at; i++) {
        assert_int_equal(sqlite3_exec(db, sqlite__migrations[i], NULL, NULL, NULL), SQLITE_OK);
        char *sql = sqlite3_mprintf("INSERT INTO schema_migrations VALUES (%d, 0)", i + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_free(sql);
    }
    assert_int_equal(sqlite3_exec(db, data, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A database at schema 2 with changes in it migrates to the last: the webhooks table
 * appears, and changes_by_collection carries committed_at_ms without losing rows. */
static void test_migration_webhooks(void **state)
{
    fixture_t *f = *state;
    assert_true(sqlite__n_migrations >= 3);
    make_old_file(f, 2,
                  "INSERT INTO tenants (id, name, created_at_ms, last_version)"
                  " VALUES (1, 'old', 0, 3);"
                  "INSERT INTO changes VALUES (1, 1, 3, 0, 1, 20454, 5, '{}'),"
                  " (1, 2, 2, 0, 1, NULL, 6, '{}'), (1, 3, 3, 0, 2, 20454, 7, '{}');");
    store_t *s = open_store(f, 0, 0);
    int v = 0;
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    assert_int_equal(raw_int_at(f, "SELECT COUNT(*) FROM pragma_index_info('changes_by_collection')"),
                     4);
    assert_int_equal(raw_int_at(f, "SELECT name = 'committed_at_ms' FROM"
                                   " pragma_index_info('changes_by_collection') WHERE seqno = 3"),
                     1);
    store_tenant_t t;
    assert_int_equal(store_tenant_get(s, "old", &t), 0);
    create_wh1(s, t.id);
    store_webhook_t w;
    assert_int_equal(store_webhook_get(s, t.id, WH1, &w), 0);
    assert_int_equal(w.from_version, 3);
    raw_exec(f, "UPDATE webhooks SET from_version = 0");
    uint64_t count = 0, oldest = 0;
    assert_int_equal(store_webhook_pending(s, t.id, WH1, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 2); /* the two break changes kept their rows */
    assert_int_equal(oldest, 1);
    store_close(s);
}

/* A database at schema 3 with a webhook migrates to the last: the webhook keeps
 * working with the delivery tables. */
static void test_migration_delivery(void **state)
{
    fixture_t *f = *state;
    assert_true(sqlite__n_migrations >= 4);
    make_old_file(f, 3,
                  "INSERT INTO tenants (id, name, created_at_ms, last_version)"
                  " VALUES (1, 'old', 0, 3);"
                  "INSERT INTO webhooks (tenant_id, id, collection,"
                  " destination_url, ext_refs, key_blob, created_at_ms,"
                  " valid_until_ms, status, reason, from_version) VALUES (1,"
                  " '" WH1 "', 3, 'https://x/', '[]', x'01', 0, 9999999999999, 0, 0, 3);");
    store_t *s = open_store(f, 0, 0);
    int v = 0;
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    store_webhook_t *w = NULL;
    size_t n = 0;
    assert_int_equal(store_webhooks_active(s, T0_MS, &w, &n), 0);
    assert_int_equal(n, 1);
    free(w);
    assert_int_equal(commit_mark(s, 1, 2), 0);
    assert_int_equal(commit_ack(s, 1, 9, 4), 0);
    store_acked_t *a = NULL;
    assert_int_equal(store_delivery_acked(s, 1, WH1, 0, &a, &n), 0);
    assert_int_equal(n, 1);
    free(a);
    store_close(s);
}

/* A database at schema 7 with changes, a webhook and its mark migrates to 8
 * keeping them: the old changes read back without a previous date, nothing is gone
 * (the horizon starts at 0), versions go on, the webhook still holds its backlog,
 * and deltas and prev_date work on the migrated file. */
static void test_migration_deltas(void **state)
{
    fixture_t *f = *state;
    assert_true(sqlite__n_migrations >= 8);
    make_old_file(f, 7,
                  "INSERT INTO tenants (id, name, created_at_ms, last_version)"
                  " VALUES (1, 'old', 0, 3);"
                  "INSERT INTO changes VALUES (1, 1, 3, 0, 1, 20454, 5, '{}'),"
                  " (1, 2, 2, 0, 1, NULL, 6, '{}'), (1, 3, 3, 0, 2, 20455, 7, '{}');"
                  "INSERT INTO webhooks (tenant_id, id, collection,"
                  " destination_url, ext_refs, key_blob, created_at_ms,"
                  " valid_until_ms, status, reason, from_version) VALUES (1,"
                  " '" WH1 "', 3, 'https://x/', '[]', x'01', 0, 9999999999999, 0, 0, 0);"
                  "INSERT INTO delivery_marks VALUES (1, '" WH1 "', 0, 1, 5, NULL);");
    store_t *s = open_store(f, 0, 0);
    int v = 0;
    assert_int_equal(store_schema_version(s, &v), 0);
    assert_int_equal(v, (int)sqlite__n_migrations);
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(store_changes_after(s, 1, STORE_COLL_BREAKS, 0, 10, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].version, 1);
    assert_int_equal(c[0].date, 20454);
    assert_false(c[0].has_prev_date);
    assert_int_equal(c[1].version, 3);
    assert_false(c[1].has_prev_date);
    store_changes_free(c, n);
    uint64_t count = 0, oldest = 0;
    assert_int_equal(store_webhook_pending(s, 1, WH1, T0_MS, &count, &oldest), 0);
    assert_int_equal(count, 1); /* above its watermark 1: version 3 */
    assert_int_equal(oldest, 3);
    uint64_t tv = 0;
    assert_int_equal(store_tenant_version(s, 1, &tv), 0);
    assert_int_equal(tv, 3);

    store_delta_t d;
    memset(&d, 0, sizeof(d));
    memset(d.id, 'a', STORE_DELTA_ID_LEN);
    snprintf(d.client_id, sizeof(d.client_id), "client");
    d.collection = STORE_COLL_BREAKS;
    d.date_from = 20000;
    d.date_to = 21000;
    d.created_at_ms = T0_MS;
    assert_int_equal(store_delta_start(s, 1, &d), 0);
    assert_int_equal(d.start_version, 3);
    store_delta_t got;
    assert_int_equal(store_delta_get(s, 1, "client", STORE_COLL_BREAKS, &got), 0);
    assert_string_equal(got.id, d.id);
    assert_int_equal(got.floor_version, 3);
    assert_int_equal(raw_int_at(f, "SELECT pruned_upto FROM tenants WHERE id = 1"), 0);
    store_close(s);
}

/* ---- throughput (printed, not asserted) ------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* $batch writes into the file: 400,000 inserts then as many replaces, 8,000 a batch.
 * Not part of the back-end contract: a figure for this back-end (and the time is
 * mostly here, better not spent against a shared database). Every version is one
 * change-log row. */
static void test_batch_throughput(void **state)
{
    fixture_t *f = *state;
    enum { BATCHES = 50, PER = STORE_BATCH_MAX, PEOPLE = 500 };
    store_t *s = open_store(f, 0, 0);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(s, "throughput", &t), 0);
    store_write_result_t r;
    for (int i = 1; i <= PEOPLE; i++) {
        model_person_t p;
        memset(&p, 0, sizeof(p));
        p.id = i;
        assert_int_equal(store_person_put(s, t.id, &p, &r), 0);
        assert_int_equal(r.rc, 0);
    }
    for (int i = 1; i <= 3; i++) {
        model_definition_t *d = calloc(1, sizeof(*d));
        assert_non_null(d);
        d->id = i;
        snprintf(d->name.def, sizeof(d->name.def), "Lunch %d", i);
        d->minimum = 10;
        d->maximum = 60;
        d->if_not_clocked = 30;
        assert_int_equal(store_definition_put(s, t.id, d, &r), 0);
        assert_int_equal(r.rc, 0);
        free(d);
    }
    store_break_op_t *ops = calloc(PER, sizeof(*ops));
    assert_non_null(ops);

    double t_pass[2];
    for (int pass = 0; pass < 2; pass++) {
        double t0 = now_s();
        for (int bi = 0; bi < BATCHES; bi++) {
            for (int i = 0; i < PER; i++) {
                int64_t id = (int64_t)bi * PER + i + 1;
                memset(&ops[i], 0, sizeof(ops[i]));
                model_break_t *b = &ops[i].rec;
                b->id = id;
                b->person_id = 1 + id % PEOPLE;
                b->definition_id = 1 + id % 3;
                b->date = DAY0 + (int32_t)(id % 366);
                b->clocked = (int32_t)(id % 90) + pass; /* the second pass: a replace */
                b->taken = id % 4 != 0;
                b->start = 720;
                b->end = 840;
            }
            assert_int_equal(store_breaks_apply(s, t.id, ops, PER), 0);
            for (int i = 0; i < PER; i++)
                assert_int_equal(ops[i].res.rc, 0);
        }
        t_pass[pass] = now_s() - t0;
    }
    int total = BATCHES * PER;
    fprintf(stderr,
            "store_breaks_apply: %d x %d upserts: insert %.2f s (%.0f/s), "
            "replace %.2f s (%.0f/s)\n",
            BATCHES, PER, t_pass[0], total / t_pass[0], t_pass[1], total / t_pass[1]);
    uint64_t v = 0;
    assert_int_equal(store_tenant_version(s, t.id, &v), 0);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM changes WHERE tenant_id = %lld",
             (long long)t.id);
    assert_int_equal(raw_int_at(f, sql), (int64_t)v);
    free(ops);
    store_close(s);
}

/* serve's store is "in use" for every other process (migrate refuses to copy it)
 * while the server holds it, and no longer once the server is gone, however it
 * ended: the lock is the kernel's. */
static void test_in_use_while_served(void **state)
{
    fixture_t *f = *state;
    fx_store_open(&f->fx);
    bool busy = true;
    assert_int_equal(store_in_use(f->fx.s, &busy), 0);
    assert_false(busy);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]); /* or reading go[0] would never end */
        close(ready[0]);
        store_options_t o = { .serving = true };
        store_t *s = NULL;
        const char *msg = NULL;
        char c = store_open(f->fx.url, &o, &s, &msg) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0); /* without store_close: as if killed */
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    assert_int_equal(store_in_use(f->fx.s, &busy), 0);
    assert_true(busy);
    close(go[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(store_in_use(f->fx.s, &busy), 0);
    assert_false(busy);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_job_in_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_keys_sealed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_leave_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_deltas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_use_while_served, setup, teardown),
    };
    /* BH_TEST_FILTER=test_batch_throughput runs one test (e.g. to time it alone). */
    const char *filter = getenv("BH_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
