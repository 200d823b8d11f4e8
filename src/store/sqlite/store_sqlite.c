/*
 * store_sqlite.c: the embedded SQLite back-end of the store.
 *
 * Shape. SQLite allows one writer at a time per database, and a durable commit
 * costs an fsync, so writes all go to one writer thread that owns the only
 * read-write connection. Callers queue a job and sleep; the writer takes everything
 * queued (up to max_group jobs), runs the jobs in one BEGIN IMMEDIATE transaction,
 * each inside its own SAVEPOINT so one failing job is undone alone, commits once,
 * and wakes every caller with its own result. N concurrent writes thus share one
 * fsync (group commit). Reads run on a pool of read-only connections; in WAL mode
 * they see the last committed state and never wait for the writer.
 *
 * Durability: synchronous=FULL, so a write whose call returned 0 survives a power
 * loss, not only a process crash.
 *
 * Lifetime: every call counts itself "in flight" while it uses the handle. Shutdown
 * refuses new calls (BH_ESHUTDOWN), waits for the calls in flight (which drains
 * the write queue, since every queued job belongs to a waiting call), then stops
 * and joins the writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store_int.h"

/* How long a connection waits for a lock held by another process (the CLI writing
 * while the server runs) before failing with SQLITE_BUSY. */
#define SQLITE__BUSY_TIMEOUT_MS 5000

/* Every statement the back-end runs more than once, prepared once per connection
 * on first use and kept (SQLITE_PREPARE_PERSISTENT) until the connection closes. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_PING,
    ST_SCHEMA_VERSION,
    ST_TENANT_INSERT,
    ST_TENANT_GET,
    ST_TENANT_LIST,
    ST_CLIENT_INSERT,
    ST_CLIENT_GET,
    ST_CLIENT_LIST,
    ST_CLIENT_REVOKE,
    ST_CLIENT_LIST_REVOKED,
    ST_CLIENT_EXISTS,
    ST_KEY_LIST,
    ST_KEY_ACTIVE,
    ST_KEY_RETIRE,
    ST_KEY_INSERT,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT job",
    [ST_RELEASE] = "RELEASE job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO job",
    [ST_PING] = "SELECT 1",
    [ST_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [ST_TENANT_INSERT] = "INSERT INTO tenants (name, created_at_ms) VALUES (?1, ?2)",
    [ST_TENANT_GET] = "SELECT id, name, created_at_ms FROM tenants WHERE name = ?1",
    [ST_TENANT_LIST] = "SELECT id, name, created_at_ms FROM tenants ORDER BY id",
    [ST_CLIENT_INSERT] = "INSERT INTO clients (tenant_id, client_id, name, scopes, secret_hash,"
                         " created_at_ms, revoked_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
    [ST_CLIENT_GET] = "SELECT tenant_id, client_id, name, scopes, secret_hash, created_at_ms,"
                      " revoked_at_ms FROM clients WHERE tenant_id = ?1 AND client_id = ?2",
    [ST_CLIENT_LIST] = "SELECT tenant_id, client_id, name, scopes, secret_hash, created_at_ms,"
                       " revoked_at_ms FROM clients WHERE tenant_id = ?1"
                       " ORDER BY created_at_ms, rowid",
    [ST_CLIENT_REVOKE] = "UPDATE clients SET revoked_at_ms = ?3 WHERE tenant_id = ?1"
                         " AND client_id = ?2 AND revoked_at_ms IS NULL",
    [ST_CLIENT_LIST_REVOKED] = "SELECT tenant_id, client_id, name, scopes, secret_hash,"
                               " created_at_ms, revoked_at_ms FROM clients"
                               " WHERE revoked_at_ms IS NOT NULL ORDER BY tenant_id, client_id",
    [ST_CLIENT_EXISTS] = "SELECT 1 FROM clients WHERE tenant_id = ?1 AND client_id = ?2",
    [ST_KEY_LIST] = "SELECT kid, secret, created_at_ms, retired_at_ms FROM signing_keys"
                    " ORDER BY created_at_ms DESC, rowid DESC",
    [ST_KEY_ACTIVE] = "SELECT kid, secret, created_at_ms, retired_at_ms FROM signing_keys"
                      " WHERE retired_at_ms IS NULL",
    [ST_KEY_RETIRE] = "UPDATE signing_keys SET retired_at_ms = ?1 WHERE retired_at_ms IS NULL",
    [ST_KEY_INSERT] = "INSERT INTO signing_keys (kid, secret, created_at_ms, retired_at_ms)"
                      " VALUES (?1, ?2, ?3, NULL)",
};

/* One connection with its statement cache. A connection is used by one thread at a
 * time (the writer, or whoever took it from the read pool), so it is opened with
 * SQLITE_OPEN_NOMUTEX. */
typedef struct sqlite__conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST__COUNT];
    struct sqlite__conn *next_free;
} sqlite__conn_t;

/* A write, run by the writer inside a savepoint. Returns 0 or a BH_E* code; on error
 * everything it did is rolled back. */
typedef int (*sqlite__job_fn)(sqlite__conn_t *c, void *arg);

/* Lives on the stack of the calling thread until done is set. rc and the job's
 * outputs are written by the writer and read by the caller after it saw done under
 * the queue lock. */
typedef struct sqlite__job {
    sqlite__job_fn fn;
    void *arg;
    int rc;
    bool done;
    struct sqlite__job *next;
} sqlite__job_t;

typedef struct sqlite__store {
    store_t base; /* first: the handle callers hold */
    store__config_t cfg;

    /* lock guards the queue, the lifetime flags, in-flight count and the stats. */
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* to the writer: a job arrived, or stop */
    pthread_cond_t done_cond; /* to callers: a group finished; to shutdown: in-flight fell */
    sqlite__job_t *head, *tail;
    bool closing; /* new calls get BH_ESHUTDOWN */
    bool stop;    /* the writer exits when the queue is empty */
    int inflight;
    uint64_t writes, commits;

    pthread_t writer;
    bool writer_started;
    sqlite__conn_t wconn;

    /* The read pool: readers is the array, free_readers the idle ones. */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    sqlite__conn_t *readers;
    int n_readers;
    sqlite__conn_t *free_readers;
} sqlite__store_t;

/* The handle callers hold is the first member of the back-end's struct. */
static inline sqlite__store_t *from_base(store_t *s)
{
    return (sqlite__store_t *)s;
}

/* ---- connections and statements -------------------------------------------------- */

/* Turns an SQLite result code into a BH_E* code. Constraint failures are expected
 * outcomes and silent; anything else is logged with SQLite's message, which names
 * tables and columns but never the values, so no secret reaches the log. */
static int map_error(sqlite3 *db, int rc, const char *op)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return BH_EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return BH_ENOTFOUND;
    default:
        break;
    }
    log_error("store: sqlite operation failed", LOG_STR("op", op), LOG_INT("code", rc),
              LOG_STR("error", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    return (rc & 0xff) == SQLITE_NOMEM ? BH_ENOMEM : BH_EIO;
}

/* The cached statement id, prepared on first use, with no bindings. NULL on error
 * (logged, *rc set). */
static sqlite3_stmt *stmt_get(sqlite__conn_t *c, int id, int *rc)
{
    if (!c->stmts[id]) {
        int src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                     &c->stmts[id], NULL);
        if (src != SQLITE_OK) {
            c->stmts[id] = NULL;
            *rc = map_error(c->db, src, stmt_sql[id]);
            return NULL;
        }
    }
    return c->stmts[id];
}

/* Puts a statement back to its ready state so that it holds no read lock and the
 * enclosing transaction can commit. */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a cached statement that returns no rows (BEGIN, COMMIT, SAVEPOINT...). */
static int stmt_exec(sqlite__conn_t *c, int id)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, id, &rc);
    if (!st)
        return rc;
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = map_error(c->db, src, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* Finalizes the cached statements first: sqlite3_close refuses to close a
 * connection that still has statements. Safe on a connection that never opened. */
static void conn_close(sqlite__conn_t *c)
{
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(c->stmts[i]);
        c->stmts[i] = NULL;
    }
    if (c->db) {
        int rc = sqlite3_close(c->db);
        if (rc != SQLITE_OK)
            log_error("store: sqlite close failed", LOG_INT("code", rc),
                      LOG_STR("error", sqlite3_errmsg(c->db)));
        c->db = NULL;
    }
}

/* Runs one PRAGMA and, when want is given, checks the value it answers (journal_mode
 * answers the mode actually in force, which is not WAL on some file systems). */
static int pragma(sqlite__conn_t *c, const char *sql, const char *want, const char **err_msg)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
        if (src == SQLITE_ROW || src == SQLITE_DONE) {
            const unsigned char *v = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
            if (want && (!v || strcmp((const char *)v, want) != 0)) {
                *err_msg = store__set_open_error("%s answered \"%s\", expected \"%s\"", sql,
                                                 v ? (const char *)v : "", want);
                sqlite3_finalize(st);
                return BH_EIO;
            }
            src = SQLITE_OK;
        }
    }
    if (src != SQLITE_OK) {
        *err_msg = store__set_open_error("%s failed: %s", sql, sqlite3_errmsg(c->db));
        sqlite3_finalize(st);
        return BH_EIO;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Opens one connection and applies the settings every connection needs. The
 * read-write one also switches the database to WAL (a persistent setting) and
 * requests full durability. */
static int conn_open(sqlite__conn_t *c, const char *path, bool writer, const char **err_msg)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    memset(c, 0, sizeof(*c));
    int src = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (src != SQLITE_OK) {
        *err_msg = store__set_open_error("cannot open %s: %s", path,
                                         c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        conn_close(c);
        return src == SQLITE_NOMEM ? BH_ENOMEM : BH_EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQLITE__BUSY_TIMEOUT_MS);

    int rc = 0;
    if (writer) {
        rc = pragma(c, "PRAGMA journal_mode=WAL", "wal", err_msg);
        if (rc == 0)
            rc = pragma(c, "PRAGMA synchronous=FULL", NULL, err_msg);
    }
    if (rc == 0)
        rc = pragma(c, "PRAGMA foreign_keys=ON", NULL, err_msg);
    if (rc != 0)
        conn_close(c);
    return rc;
}


/* Runs a cached statement that answers one integer (SELECT 1, the schema version). */
static int query_int(sqlite__conn_t *c, int id, int64_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, id, &rc);
    if (!st)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = map_error(c->db, src == SQLITE_DONE ? SQLITE_ERROR : src, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* ---- schema migrations ------------------------------------------------------------ */

/* Brings the schema up to date, one migration per transaction together with its row
 * in schema_migrations. The version is read inside each BEGIN IMMEDIATE transaction,
 * so two processes opening the same file at once cannot apply a migration twice: the
 * second one waits for the first, then sees its row. */
static int migrate(sqlite__store_t *s, const char **err_msg)
{
    sqlite3 *db = s->wconn.db;
    char *errmsg = NULL;

    /* applied_at is in milliseconds since the epoch, like every time in the schema. */
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY,"
                     " applied_at INTEGER NOT NULL)",
                     NULL, NULL, &errmsg) != SQLITE_OK)
        goto out_fail;

    for (;;) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &errmsg) != SQLITE_OK)
            goto out_fail;
        int64_t version = 0;
        if (query_int(&s->wconn, ST_SCHEMA_VERSION, &version) != 0)
            goto out_rollback;
        if (version == (int64_t)sqlite__n_migrations) {
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK)
                goto out_rollback;
            return 0;
        }
        if (version < 0 || version > (int64_t)sqlite__n_migrations) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            *err_msg = store__set_open_error("the database schema version %lld is newer than "
                                             "this breakhook knows (%zu); upgrade breakhook",
                                             (long long)version, sqlite__n_migrations);
            return BH_ECONFLICT;
        }
        if (sqlite3_exec(db, sqlite__migrations[version], NULL, NULL, &errmsg) != SQLITE_OK)
            goto out_rollback;
        char *ins = sqlite3_mprintf("INSERT INTO schema_migrations (version, applied_at) "
                                    "VALUES (%lld, %lld)",
                                    (long long)(version + 1),
                                    (long long)clock_now_ms(s->cfg.clock));
        int src = ins ? sqlite3_exec(db, ins, NULL, NULL, &errmsg) : SQLITE_NOMEM;
        sqlite3_free(ins);
        if (src != SQLITE_OK)
            goto out_rollback;
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK)
            goto out_rollback;
        log_info("store: schema migration applied", LOG_INT("version", version + 1));
    }

out_rollback:
    /* Keep the failing statement's message: ROLLBACK replaces sqlite3_errmsg. */
    if (!errmsg)
        errmsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out_fail:
    *err_msg = store__set_open_error("schema migration failed: %s",
                                     errmsg ? errmsg : sqlite3_errmsg(db));
    sqlite3_free(errmsg);
    return BH_EIO;
}

/* ---- the writer ------------------------------------------------------------------- */

/* Runs one job inside its own savepoint, so that its failure undoes its own changes
 * and nothing else in the group. */
static int run_job(sqlite__conn_t *c, sqlite__job_t *j)
{
    int rc = stmt_exec(c, ST_SAVEPOINT);
    if (rc != 0)
        return rc;
    rc = j->fn(c, j->arg);
    if (rc == 0) {
        rc = stmt_exec(c, ST_RELEASE);
        if (rc == 0)
            return 0;
    }
    /* ROLLBACK TO keeps the savepoint open; RELEASE then removes it. When SQLite has
     * already aborted the whole transaction both fail, and the caller sees that
     * through sqlite3_get_autocommit. */
    if (stmt_exec(c, ST_ROLLBACK_TO) == 0)
        (void)stmt_exec(c, ST_RELEASE);
    return rc;
}

/* Marks every job from first up to (not including) end that had succeeded as failed
 * with rc: their transaction did not commit. */
static void fail_succeeded(sqlite__job_t *first, sqlite__job_t *end, int rc)
{
    for (sqlite__job_t *j = first; j != end; j = j->next)
        if (j->rc == 0)
            j->rc = rc;
}

/* Runs a group of jobs (a list ending in NULL) and commits them together. Sets each
 * job's rc, and adds to *applied and *commits what reached the disk. Normally this
 * is one transaction; only when SQLite aborts a transaction by itself (disk full, I/O
 * error) are the jobs already run failed and the rest retried in a new one. */
static void run_group(sqlite__store_t *s, sqlite__job_t *group, uint64_t *applied,
                      uint64_t *commits)
{
    sqlite__conn_t *c = &s->wconn;
    sqlite__job_t *pending = group;

    while (pending) {
        int rc = stmt_exec(c, ST_BEGIN);
        if (rc != 0) {
            for (sqlite__job_t *j = pending; j; j = j->next)
                j->rc = rc;
            return;
        }
        sqlite__job_t *first = pending;
        uint64_t ok = 0;
        bool aborted = false;
        while (pending) {
            sqlite__job_t *j = pending;
            pending = j->next;
            j->rc = run_job(c, j);
            if (j->rc == 0)
                ok++;
            if (sqlite3_get_autocommit(c->db)) {
                aborted = true;
                break;
            }
        }
        if (aborted) {
            log_error("store: sqlite aborted a write transaction",
                      LOG_STR("error", sqlite3_errmsg(c->db)));
            fail_succeeded(first, pending, BH_EIO);
            continue;
        }
        if (ok == 0) {
            /* Nothing to keep: skip the fsync. */
            (void)stmt_exec(c, ST_ROLLBACK);
            return;
        }
        rc = stmt_exec(c, ST_COMMIT);
        if (rc != 0) {
            if (!sqlite3_get_autocommit(c->db))
                (void)stmt_exec(c, ST_ROLLBACK);
            fail_succeeded(first, NULL, rc);
            return;
        }
        *applied += ok;
        (*commits)++;
    }
}

/* The writer thread: sleeps until jobs are queued, takes up to max_group of them,
 * runs them as one transaction, and wakes their callers. Exits once told to stop
 * and the queue is empty. */
static void *writer_main(void *arg)
{
    sqlite__store_t *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work_cond, &s->lock);
        if (!s->head)
            break;

        sqlite__job_t *group = s->head, *last = group;
        for (int n = 1; n < s->cfg.max_group && last->next; n++)
            last = last->next;
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->lock);

        uint64_t applied = 0, commits = 0;
        run_group(s, group, &applied, &commits);

        pthread_mutex_lock(&s->lock);
        s->writes += applied;
        s->commits += commits;
        for (sqlite__job_t *j = group, *next; j; j = next) {
            next = j->next;
            j->done = true;
        }
        pthread_cond_broadcast(&s->done_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Queues a write and waits for its result. Called from any thread but the writer. */
static int submit(sqlite__store_t *s, sqlite__job_fn fn, void *arg)
{
    sqlite__job_t job = { .fn = fn, .arg = arg, .rc = 0, .done = false, .next = NULL };
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        pthread_mutex_unlock(&s->lock);
        return BH_ESHUTDOWN;
    }
    s->inflight++;
    if (s->tail)
        s->tail->next = &job;
    else
        s->head = &job;
    s->tail = &job;
    pthread_cond_signal(&s->work_cond);
    while (!job.done)
        pthread_cond_wait(&s->done_cond, &s->lock);
    if (--s->inflight == 0 && s->closing)
        pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
    return job.rc;
}

/* ---- the read pool ---------------------------------------------------------------- */

/* Takes an idle read connection, waiting for one when all are busy. Counts the call
 * as in flight until reader_put. */
static int reader_take(sqlite__store_t *s, sqlite__conn_t **out)
{
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        pthread_mutex_unlock(&s->lock);
        return BH_ESHUTDOWN;
    }
    s->inflight++;
    pthread_mutex_unlock(&s->lock);

    pthread_mutex_lock(&s->pool_lock);
    while (!s->free_readers)
        pthread_cond_wait(&s->pool_cond, &s->pool_lock);
    *out = s->free_readers;
    s->free_readers = (*out)->next_free;
    pthread_mutex_unlock(&s->pool_lock);
    return 0;
}

/* Returns a connection to the pool and ends the call's in-flight count. */
static void reader_put(sqlite__store_t *s, sqlite__conn_t *c)
{
    pthread_mutex_lock(&s->pool_lock);
    c->next_free = s->free_readers;
    s->free_readers = c;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);

    pthread_mutex_lock(&s->lock);
    if (--s->inflight == 0 && s->closing)
        pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- row decoding ----------------------------------------------------------------- */

/* Copies a text column into a fixed field. Input checks keep every stored value
 * short enough; a longer one means the file was edited behind our back, and is an
 * error rather than a silently truncated secret hash. */
static int col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t) {
        dst[0] = '\0';
        return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : BH_ENOMEM;
    }
    if (n >= cap) {
        log_error("store: stored value too long for its field",
                  LOG_STR("column", sqlite3_column_name(st, col)), LOG_INT("length", n));
        return BH_EIO;
    }
    memcpy(dst, t, n);
    dst[n] = '\0';
    return 0;
}

/* Row decoders: the column order is the one of the matching SELECT in stmt_sql. */
static int row_tenant(sqlite3_stmt *st, store_tenant_t *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(st, 0);
    t->created_at_ms = sqlite3_column_int64(st, 2);
    return col_text(st, 1, t->name, sizeof(t->name));
}

static int row_client(sqlite3_stmt *st, store_client_t *c)
{
    memset(c, 0, sizeof(*c));
    c->tenant_id = sqlite3_column_int64(st, 0);
    c->created_at_ms = sqlite3_column_int64(st, 5);
    c->revoked_at_ms = sqlite3_column_int64(st, 6); /* NULL reads as 0: active */
    int rc = col_text(st, 1, c->client_id, sizeof(c->client_id));
    if (rc == 0)
        rc = col_text(st, 2, c->name, sizeof(c->name));
    if (rc == 0)
        rc = col_text(st, 3, c->scopes, sizeof(c->scopes));
    if (rc == 0)
        rc = col_text(st, 4, c->secret_hash, sizeof(c->secret_hash));
    return rc;
}

static int row_signing_key(sqlite3_stmt *st, store_signing_key_t *k)
{
    memset(k, 0, sizeof(*k));
    k->created_at_ms = sqlite3_column_int64(st, 2);
    k->retired_at_ms = sqlite3_column_int64(st, 3);
    int rc = col_text(st, 0, k->kid, sizeof(k->kid));
    if (rc != 0)
        return rc;
    const void *secret = sqlite3_column_blob(st, 1);
    if (!secret || sqlite3_column_bytes(st, 1) != (int)sizeof(k->secret)) {
        log_error("store: signing key secret has the wrong size",
                  LOG_INT("length", sqlite3_column_bytes(st, 1)));
        return BH_EIO;
    }
    memcpy(k->secret, secret, sizeof(k->secret));
    return 0;
}

/* Steps a statement to its first row and decodes it into out with decode. */
typedef int (*row_fn)(sqlite3_stmt *st, void *out);

static int query_one(sqlite__conn_t *c, sqlite3_stmt *st, int id, row_fn decode, void *out)
{
    int src = sqlite3_step(st);
    int rc;
    if (src == SQLITE_ROW)
        rc = decode(st, out);
    else if (src == SQLITE_DONE)
        rc = BH_ENOTFOUND;
    else
        rc = map_error(c->db, src, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* Steps a statement through every row into a malloc'd array of elem_size elements. */
static int query_all(sqlite__conn_t *c, sqlite3_stmt *st, int id, row_fn decode,
                     size_t elem_size, void **out, size_t *n_out)
{
    char *arr = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = map_error(c->db, src, stmt_sql[id]);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *narr = realloc(arr, ncap * elem_size);
            if (!narr) {
                rc = BH_ENOMEM;
                break;
            }
            arr = narr;
            cap = ncap;
        }
        rc = decode(st, arr + n * elem_size);
        if (rc != 0)
            break;
        n++;
    }
    stmt_done(st);
    if (rc != 0) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n_out = n;
    return 0;
}

/* Adapters from the typed decoders to row_fn, for query_one and query_all. */
static int decode_tenant(sqlite3_stmt *st, void *out)
{
    return row_tenant(st, out);
}

static int decode_client(sqlite3_stmt *st, void *out)
{
    return row_client(st, out);
}

static int decode_signing_key(sqlite3_stmt *st, void *out)
{
    return row_signing_key(st, out);
}

/* ---- health and stats ------------------------------------------------------------- */

/* Readiness: a trivial query on a read connection proves the file is readable. */
static int sq_ping(store_t *base)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    int64_t one = 0;
    rc = query_int(c, ST_PING, &one);
    reader_put(s, c);
    return rc;
}

static int sq_schema_version(store_t *base, int *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    int64_t v = 0;
    rc = query_int(c, ST_SCHEMA_VERSION, &v);
    reader_put(s, c);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

static void sq_get_stats(store_t *base, store_stats_t *out)
{
    sqlite__store_t *s = from_base(base);
    pthread_mutex_lock(&s->lock);
    out->writes = s->writes;
    out->commits = s->commits;
    pthread_mutex_unlock(&s->lock);
}

/* ---- tenants ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t now_ms;
    store_tenant_t *out;
} tenant_create_arg_t;

static int job_tenant_create(sqlite__conn_t *c, void *arg)
{
    tenant_create_arg_t *a = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_TENANT_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->now_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_TENANT_INSERT]);
    stmt_done(st);
    if (rc == 0 && a->out) {
        memset(a->out, 0, sizeof(*a->out));
        a->out->id = sqlite3_last_insert_rowid(c->db);
        snprintf(a->out->name, sizeof(a->out->name), "%s", a->name);
        a->out->created_at_ms = a->now_ms;
    }
    return rc;
}

static int sq_tenant_create(store_t *base, const char *name, store_tenant_t *out)
{
    sqlite__store_t *s = from_base(base);
    tenant_create_arg_t a = { name, clock_now_ms(s->cfg.clock), out };
    return submit(s, job_tenant_create, &a);
}

static int sq_tenant_get(store_t *base, const char *name, store_tenant_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_TENANT_GET, &rc);
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = query_one(c, st, ST_TENANT_GET, decode_tenant, out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_tenant_list(store_t *base, store_tenant_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_TENANT_LIST, &rc);
    if (st)
        rc = query_all(c, st, ST_TENANT_LIST, decode_tenant, sizeof(**out), (void **)out,
                       n_out);
    reader_put(s, c);
    return rc;
}

/* ---- clients ---------------------------------------------------------------------- */

typedef struct {
    int64_t tenant_id;
    const store_client_t *c;
    int64_t created_at_ms;
} client_create_arg_t;

/* A missing tenant fails the foreign key, which map_error turns into BH_ENOTFOUND. */
static int job_client_create(sqlite__conn_t *c, void *arg)
{
    client_create_arg_t *a = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_CLIENT_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, a->tenant_id);
    sqlite3_bind_text(st, 2, a->c->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->c->scopes, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->c->secret_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, a->created_at_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_CLIENT_INSERT]);
    stmt_done(st);
    return rc;
}

/* The client starts active whatever c->revoked_at_ms says; c->created_at_ms of 0
 * means "now". */
static int sq_client_create(store_t *base, int64_t tenant_id, const store_client_t *cl)
{
    sqlite__store_t *s = from_base(base);
    client_create_arg_t a = { tenant_id, cl,
                              cl->created_at_ms ? cl->created_at_ms
                                                : clock_now_ms(s->cfg.clock) };
    return submit(s, job_client_create, &a);
}

static int sq_client_get(store_t *base, int64_t tenant_id, const char *client_id,
                         store_client_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_CLIENT_GET, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, client_id, -1, SQLITE_STATIC);
        rc = query_one(c, st, ST_CLIENT_GET, decode_client, out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_client_list(store_t *base, int64_t tenant_id, store_client_t **out,
                          size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_CLIENT_LIST, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        rc = query_all(c, st, ST_CLIENT_LIST, decode_client, sizeof(**out), (void **)out,
                       n_out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_client_list_revoked(store_t *base, store_client_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_CLIENT_LIST_REVOKED, &rc);
    if (st)
        rc = query_all(c, st, ST_CLIENT_LIST_REVOKED, decode_client, sizeof(**out), (void **)out,
                       n_out);
    reader_put(s, c);
    return rc;
}

typedef struct {
    int64_t tenant_id;
    const char *client_id;
    int64_t now_ms;
} client_revoke_arg_t;

/* Only an active client is updated, so the first revocation time stays. When nothing
 * changed, the client is either already revoked (success) or absent. */
static int job_client_revoke(sqlite__conn_t *c, void *arg)
{
    client_revoke_arg_t *a = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_CLIENT_REVOKE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, a->tenant_id);
    sqlite3_bind_text(st, 2, a->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->now_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_CLIENT_REVOKE]);
    stmt_done(st);
    if (rc != 0 || sqlite3_changes(c->db) > 0)
        return rc;

    st = stmt_get(c, ST_CLIENT_EXISTS, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, a->tenant_id);
    sqlite3_bind_text(st, 2, a->client_id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = BH_ENOTFOUND;
    else if (src != SQLITE_ROW)
        rc = map_error(c->db, src, stmt_sql[ST_CLIENT_EXISTS]);
    stmt_done(st);
    return rc;
}

static int sq_client_revoke(store_t *base, int64_t tenant_id, const char *client_id,
                            int64_t now_ms)
{
    client_revoke_arg_t a = { tenant_id, client_id, now_ms };
    return submit(from_base(base), job_client_revoke, &a);
}

/* ---- signing keys ----------------------------------------------------------------- */

static int sq_signing_key_list(store_t *base, store_signing_key_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_LIST, &rc);
    if (st)
        rc = query_all(c, st, ST_KEY_LIST, decode_signing_key, sizeof(**out), (void **)out,
                       n_out);
    reader_put(s, c);
    return rc;
}

/* Inserts k as the active key (retired_at_ms NULL). */
static int key_insert(sqlite__conn_t *c, const store_signing_key_t *k, int64_t created_at_ms)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, k->kid, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, k->secret, (int)sizeof(k->secret), SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, created_at_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_KEY_INSERT]);
    stmt_done(st);
    return rc;
}

typedef struct {
    const store_signing_key_t *k;
    int64_t created_at_ms;
    store_signing_key_t *active; /* ensure only */
} signing_key_arg_t;

/* Retires the active key and inserts the new one in one savepoint: a duplicate kid
 * undoes the retirement too, so there is never a moment without an active key. */
static int job_signing_key_add(sqlite__conn_t *c, void *arg)
{
    signing_key_arg_t *a = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_RETIRE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, a->created_at_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_KEY_RETIRE]);
    stmt_done(st);
    if (rc != 0)
        return rc;
    return key_insert(c, a->k, a->created_at_ms);
}

/* created_at_ms of 0 means "now". */
static int sq_signing_key_add(store_t *base, const store_signing_key_t *k)
{
    sqlite__store_t *s = from_base(base);
    signing_key_arg_t a = { k, k->created_at_ms ? k->created_at_ms
                                                : clock_now_ms(s->cfg.clock), NULL };
    return submit(s, job_signing_key_add, &a);
}

/* Check and insert happen in one writer job, inside one write transaction: no other
 * thread of this process and no other process on the file can slip a key in between
 * (and the unique index on active keys would refuse it if one did). */
static int job_signing_key_ensure(sqlite__conn_t *c, void *arg)
{
    signing_key_arg_t *a = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_ACTIVE, &rc);
    if (!st)
        return rc;
    rc = query_one(c, st, ST_KEY_ACTIVE, decode_signing_key, a->active);
    if (rc != BH_ENOTFOUND)
        return rc;
    rc = key_insert(c, a->k, a->created_at_ms);
    if (rc == 0) {
        *a->active = *a->k;
        a->active->created_at_ms = a->created_at_ms;
        a->active->retired_at_ms = 0;
    }
    return rc;
}

static int sq_signing_key_ensure(store_t *base, const store_signing_key_t *candidate,
                                 store_signing_key_t *active)
{
    sqlite__store_t *s = from_base(base);
    signing_key_arg_t a = { candidate,
                            candidate->created_at_ms ? candidate->created_at_ms
                                                     : clock_now_ms(s->cfg.clock),
                            active };
    return submit(s, job_signing_key_ensure, &a);
}

/* ---- lifetime --------------------------------------------------------------------- */

/* See the lifetime notes at the top of the file. Only the first call joins the
 * writer; later calls find it stopped and return at once. */
static void sq_shutdown(store_t *base)
{
    sqlite__store_t *s = from_base(base);
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    while (s->inflight > 0)
        pthread_cond_wait(&s->done_cond, &s->lock);
    bool join = s->writer_started && !s->stop;
    s->stop = true;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->lock);
    if (join)
        pthread_join(s->writer, NULL);
}

/* Frees a store at any stage of sqlite__open: connections that never opened have a
 * NULL db and are skipped. The readers close first so that the writer's close is the
 * last one, which checkpoints the WAL into the database file. */
static void sq_destroy(store_t *base)
{
    sqlite__store_t *s = from_base(base);
    for (int i = 0; s->readers && i < s->n_readers; i++)
        conn_close(&s->readers[i]);
    free(s->readers);
    conn_close(&s->wconn);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->done_cond);
    pthread_cond_destroy(&s->work_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const store__ops_t sqlite_ops = {
    .name = "sqlite",
    .shutdown = sq_shutdown,
    .destroy = sq_destroy,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .get_stats = sq_get_stats,
    .tenant_create = sq_tenant_create,
    .tenant_get = sq_tenant_get,
    .tenant_list = sq_tenant_list,
    .client_create = sq_client_create,
    .client_get = sq_client_get,
    .client_list = sq_client_list,
    .client_list_revoked = sq_client_list_revoked,
    .client_revoke = sq_client_revoke,
    .signing_key_list = sq_signing_key_list,
    .signing_key_add = sq_signing_key_add,
    .signing_key_ensure = sq_signing_key_ensure,
};

/* Creates the database file readable by its owner only before SQLite opens it: it
 * holds token signing keys, and SQLite gives the -wal and -shm files the mode of the
 * database file. An existing file keeps its mode. */
static int create_private_file(const char *path, const char **err_msg)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        *err_msg = store__set_open_error("cannot open %s: %s", path, strerror(errno));
        return BH_EIO;
    }
    close(fd);
    return 0;
}

int sqlite__open(const char *path, const store__config_t *cfg, store_t **out,
                 const char **err_msg)
{
    if (!sqlite3_threadsafe()) {
        *err_msg = "this SQLite library was built without thread support";
        return BH_EINVAL;
    }
    int rc = create_private_file(path, err_msg);
    if (rc != 0)
        return rc;

    sqlite__store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return BH_ENOMEM;
    s->base.ops = &sqlite_ops;
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cond, NULL);

    /* The writer first: it creates the schema and turns WAL on, which read-only
     * connections cannot do. */
    rc = conn_open(&s->wconn, path, true, err_msg);
    if (rc != 0)
        goto out_destroy;
    rc = migrate(s, err_msg);
    if (rc != 0)
        goto out_destroy;

    s->readers = calloc((size_t)cfg->read_connections, sizeof(*s->readers));
    if (!s->readers) {
        rc = BH_ENOMEM;
        goto out_destroy;
    }
    for (int i = 0; i < cfg->read_connections; i++) {
        rc = conn_open(&s->readers[i], path, false, err_msg);
        if (rc != 0)
            goto out_destroy;
        s->n_readers = i + 1;
        s->readers[i].next_free = s->free_readers;
        s->free_readers = &s->readers[i];
    }

    int prc = pthread_create(&s->writer, NULL, writer_main, s);
    if (prc != 0) {
        *err_msg = store__set_open_error("cannot start the store writer thread: %s",
                                         strerror(prc));
        rc = BH_EIO;
        goto out_destroy;
    }
    s->writer_started = true;
    *out = &s->base;
    return 0;

out_destroy:
    sq_destroy(&s->base);
    return rc;
}
