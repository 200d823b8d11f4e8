/*
 * store_pg.c: the PostgreSQL back-end of the store ("postgres://...").
 *
 * Shape. Every call takes a blocking libpq connection from a bounded pool, runs on
 * the caller's thread (store.h: callers are workers or the CLI, never an event
 * loop), and gives the connection back. Connections are opened on first need, up to
 * read_connections + PG__WRITE_CONNECTIONS, and reopened when the server dropped
 * one. Statements are prepared once per connection on first use.
 *
 * Writes. run_write hands the domain layer's function (store/writes.c, delivery.c,
 * deltas.c) to one of the store's PG__WRITE_CONNECTIONS writer threads, which runs it
 * inside one READ COMMITTED transaction on a pooled connection and commits it, while
 * the caller waits; there is no group commit here, PostgreSQL groups commits itself
 * (commit_delay, synchronous_commit). The tenant's write lock is the row lock of its
 * counter row: counter_get is SELECT ... FOR NO KEY UPDATE on tenants, held to
 * COMMIT, so two writers of one tenant run one after another and version order is
 * commit order (store.h, "Commit order"), while writers of different tenants never
 * wait on each other. FOR NO KEY UPDATE rather than FOR UPDATE: an insert that
 * references the tenant (a client, a person) takes FOR KEY SHARE on the row, which
 * only the stronger lock would block. In READ COMMITTED each statement after the
 * lock sees what the previous holder committed.
 *
 * What is stored and why is not decided here: the rules live in the domain layer,
 * which reaches the tables only through the primitives below. A set-shaped
 * primitive sends its rows' statements as one libpq pipeline (run_each): one round
 * trip per group of rows, with the semantics of a loop.
 *
 * Commit notifications: after each COMMIT in this process, store__committed with
 * the notes the job took, in ticket order (pg__store_t), and the same notes to the
 * notifier (notify.c), which sends them to the other processes on the database
 * after the commit, coalesced per node: one pg_notify at most every
 * PG__NOTIFY_INTERVAL_MS on a connection of its own, never a NOTIFY inside a write
 * transaction (that would take PostgreSQL's cluster-wide notify lock at every
 * COMMIT). Their commits come back the other way: the first store_subscribe starts
 * the listener (LISTEN on a connection of its own), which tells this process's
 * subscribers per tenant, and "look everywhere" after each (re)connect. Shutdown
 * sends what is still pending before it returns.
 *
 * Lifetime: every call counts itself in flight while it holds a connection.
 * Shutdown refuses new calls (BH_ESHUTDOWN) and waits for those in flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "store/pg/pg_int.h"
#include "store/store_int.h"

/* Connections beyond read_connections, for write transactions (each holds one until
 * its COMMIT, also while it waits for a tenant's row lock). */
#define PG__WRITE_CONNECTIONS 4
/* The most parameters a statement takes. */
#define PG__MAX_PARAMS 16
/* Rows one prune chunk deletes; other writes run between chunks. */
#define PRUNE_CHUNK 5000

enum {
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
    ST_KEY_RESEAL,
    ST_KEY_LOCK,
    ST_VERSION_GET,
    ST_COUNTER_LOCK,
    ST_VERSION_SET,
    ST_CHANGE_INSERT,
    ST_CHANGES_AFTER,
    ST_PERSON_GET,
    ST_PEOPLE_MANY,
    ST_PERSON_EXISTS,
    ST_PERSON_UPSERT,
    ST_PERSON_DELETE,
    ST_PERSON_USES,
    ST_REFS_DELETE,
    ST_REF_INSERT,
    ST_REF_OWNER,
    ST_DEF_GET,
    ST_DEF_CALC,
    ST_DEF_UPSERT,
    ST_DEF_DELETE,
    ST_DEF_LIST,
    ST_DEF_USES,
    ST_DEF_COMPUTED,
    ST_BREAK_PROBE,
    ST_BREAK_GET,
    ST_BREAK_INSERT,
    ST_BREAK_UPDATE,
    ST_BREAK_SET_DERIVED,
    ST_BREAK_SET_GIVEN,
    ST_BREAK_DELETE,
    ST_BREAKS_LIST,
    ST_BREAKS_LIST_PERSONS,
    ST_WH_ENABLED_COUNT,
    ST_WH_INSERT,
    ST_WH_GET,
    ST_WH_LIST,
    ST_WH_LIST_ENABLED,
    ST_WH_LIST_DISABLED,
    ST_WH_SET_DISABLED,
    ST_WH_MARK_GET,
    ST_WH_EXISTS,
    ST_WH_EXPIRING,
    ST_CHANGES_COUNT,
    ST_CHANGES_COUNT_PART,
    ST_WH_ACTIVE,
    ST_ACKS_ABOVE,
    ST_ATTEMPTS_NEWEST,
    ST_ATTEMPT_INSERT,
    ST_ACK_RAISE,
    ST_MARK_SET,
    ST_ACKS_DROP,
    ST_ATTEMPTS_LIST,
    ST_ATTEMPTS_PRUNE,
    ST_CHANGES_NEWEST,
    ST_FLOORS,
    ST_CHANGES_PRUNE,
    ST_HORIZON_GET,
    ST_HORIZON_RAISE,
    ST_DELTA_GET,
    ST_DELTA_LOCK,
    ST_DELTA_UPSERT,
    ST_DELTAS_PRUNE,
    ST_WH_PRUNE_ACKS,
    ST_WH_PRUNE_MARKS,
    ST_WH_PRUNE_ATTEMPTS,
    ST_WH_PRUNE,
    ST__COUNT
};

/* The webhooks a prune chunk deletes (ST_WH_PRUNE*). */
#define WH_PRUNABLE "SELECT tenant_id, id FROM webhooks WHERE status = 1" \
                    " AND disabled_at_ms < $1 ORDER BY tenant_id, id LIMIT $2"
/* The column lists the row decoders read, in their order (as in the SQLite back-end). */
#define BREAK_COLS "id, version, person_id, definition_id, date, calculated," \
                   " calculated_given, clocked, start, \"end\", taken, window_given"
#define DEF_COLS "id, version, paid, minimum, maximum, if_not_clocked, uninterrupted," \
                 " name, name_tr, friendly, friendly_tr, earliest_start, latest_end"
#define PERSON_SELECT "SELECT p.id, p.version, r.name, r.value FROM people p" \
                      " LEFT JOIN person_refs r ON r.tenant_id = p.tenant_id" \
                      " AND r.person_id = p.id"
#define WH_COLS "id, tenant_id, collection, destination_url, ext_refs, key_blob," \
                " created_at_ms, valid_until_ms, status, reason, disabled_at_ms," \
                " from_version, until_version, partitions"
#define WH_PAGE " AND id > $2 AND ($3::integer = 0 OR collection = $3::integer)"
#define DELTA_COLS "tenant_id, client_id, collection, id, date_from, date_to, start_version," \
                   " floor_version, created_at_ms, last_used_at_ms"
#define ATTEMPT_COLS "seq, tenant_id, webhook_id, event_id, record_id, version, change_type," \
                     " attempt, attempted_at_ms, duration_ms, http_status, error," \
                     " next_attempt_at_ms, status, excerpt"
#define CLIENT_COLS "tenant_id, client_id, name, scopes, secret_hash, created_at_ms," \
                    " revoked_at_ms"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_PING] = "SELECT 1",
    [ST_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [ST_TENANT_INSERT] = "INSERT INTO tenants (name, created_at_ms) VALUES ($1, $2) RETURNING id",
    [ST_TENANT_GET] = "SELECT id, name, created_at_ms FROM tenants WHERE name = $1",
    [ST_TENANT_LIST] = "SELECT id, name, created_at_ms FROM tenants ORDER BY id",
    [ST_CLIENT_INSERT] = "INSERT INTO clients (tenant_id, client_id, name, scopes, secret_hash,"
                         " created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    [ST_CLIENT_GET] = "SELECT " CLIENT_COLS " FROM clients WHERE tenant_id = $1"
                      " AND client_id = $2",
    [ST_CLIENT_LIST] = "SELECT " CLIENT_COLS " FROM clients WHERE tenant_id = $1"
                       " ORDER BY created_at_ms, seq",
    [ST_CLIENT_REVOKE] = "UPDATE clients SET revoked_at_ms = $3 WHERE tenant_id = $1"
                         " AND client_id = $2 AND revoked_at_ms IS NULL",
    [ST_CLIENT_LIST_REVOKED] = "SELECT " CLIENT_COLS " FROM clients"
                               " WHERE revoked_at_ms IS NOT NULL ORDER BY tenant_id, client_id",
    [ST_CLIENT_EXISTS] = "SELECT 1 FROM clients WHERE tenant_id = $1 AND client_id = $2",
    [ST_KEY_LIST] = "SELECT kid, secret, created_at_ms, retired_at_ms FROM signing_keys"
                    " ORDER BY created_at_ms DESC, seq DESC",
    [ST_KEY_ACTIVE] = "SELECT kid, secret, created_at_ms, retired_at_ms FROM signing_keys"
                      " WHERE retired_at_ms IS NULL",
    [ST_KEY_RETIRE] = "UPDATE signing_keys SET retired_at_ms = $1 WHERE retired_at_ms IS NULL",
    [ST_KEY_INSERT] = "INSERT INTO signing_keys (kid, secret, created_at_ms)"
                      " VALUES ($1, $2, $3)",
    [ST_KEY_RESEAL] = "UPDATE signing_keys SET secret = $2 WHERE kid = $1",
    [ST_KEY_LOCK] = "SELECT pg_advisory_xact_lock($1::bigint)",
    [ST_VERSION_GET] = "SELECT last_version FROM tenants WHERE id = $1",
    /* The tenant's write lock, held to COMMIT (see the top of the file). */
    [ST_COUNTER_LOCK] = "SELECT last_version FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
    [ST_VERSION_SET] = "UPDATE tenants SET last_version = $2 WHERE id = $1",
    [ST_CHANGE_INSERT] = "INSERT INTO changes (tenant_id, version, collection, type, record_id,"
                         " date, committed_at_ms, body, prev_date)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    /* The horizon and the rows in one statement, so in one snapshot: one row per
     * change, or one row with NULL change columns when there is none; no row for a
     * missing tenant. */
    [ST_CHANGES_AFTER] = "SELECT t.pruned_upto, c.version, c.collection, c.type, c.record_id,"
                         " c.date, c.committed_at_ms, c.body, c.prev_date FROM tenants t"
                         " LEFT JOIN LATERAL (SELECT * FROM changes WHERE tenant_id = t.id"
                         " AND collection = $2 AND version > $3 ORDER BY version LIMIT $4) c"
                         " ON true WHERE t.id = $1 ORDER BY c.version",
    [ST_PERSON_GET] = PERSON_SELECT " WHERE p.tenant_id = $1 AND p.id = $2 ORDER BY r.name",
    [ST_PEOPLE_MANY] = PERSON_SELECT " WHERE p.tenant_id = $1 AND p.id = ANY ($2::bigint[])"
                       " ORDER BY p.id, r.name",
    [ST_PERSON_EXISTS] = "SELECT 1 FROM people WHERE tenant_id = $1 AND id = $2",
    [ST_PERSON_UPSERT] = "INSERT INTO people (tenant_id, id, version) VALUES ($1, $2, $3)"
                         " ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version",
    [ST_PERSON_DELETE] = "DELETE FROM people WHERE tenant_id = $1 AND id = $2",
    [ST_PERSON_USES] = "SELECT COUNT(*) FROM breaks WHERE tenant_id = $1 AND person_id = $2",
    [ST_REFS_DELETE] = "DELETE FROM person_refs WHERE tenant_id = $1 AND person_id = $2",
    [ST_REF_INSERT] = "INSERT INTO person_refs (tenant_id, person_id, name, value)"
                      " VALUES ($1, $2, $3, $4)",
    [ST_REF_OWNER] = "SELECT person_id FROM person_refs WHERE tenant_id = $1 AND name = $2"
                     " AND value = $3",
    [ST_DEF_GET] = "SELECT " DEF_COLS " FROM break_definitions WHERE tenant_id = $1 AND id = $2",
    [ST_DEF_CALC] = "SELECT paid, minimum, maximum, if_not_clocked, uninterrupted,"
                    " earliest_start, latest_end"
                    " FROM break_definitions WHERE tenant_id = $1 AND id = $2",
    [ST_DEF_UPSERT] = "INSERT INTO break_definitions (tenant_id, " DEF_COLS ")"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                      " ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version,"
                      " paid = excluded.paid, minimum = excluded.minimum,"
                      " maximum = excluded.maximum, if_not_clocked = excluded.if_not_clocked,"
                      " uninterrupted = excluded.uninterrupted, name = excluded.name,"
                      " name_tr = excluded.name_tr, friendly = excluded.friendly,"
                      " friendly_tr = excluded.friendly_tr,"
                      " earliest_start = excluded.earliest_start,"
                      " latest_end = excluded.latest_end",
    [ST_DEF_DELETE] = "DELETE FROM break_definitions WHERE tenant_id = $1 AND id = $2",
    [ST_DEF_LIST] = "SELECT " DEF_COLS " FROM break_definitions WHERE tenant_id = $1"
                    " AND id > $2 ORDER BY id LIMIT $3",
    [ST_DEF_USES] = "SELECT COUNT(*) FROM breaks WHERE tenant_id = $1 AND definition_id = $2",
    [ST_DEF_COMPUTED] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = $1"
                        " AND definition_id = $2 AND id > $3"
                        " AND (calculated_given = 0 OR window_given = 0)"
                        " ORDER BY id LIMIT $4",
    [ST_BREAK_PROBE] = "SELECT EXISTS (SELECT 1 FROM people WHERE tenant_id = $1 AND id = $3),"
                       " b.id, b.version, b.person_id, b.definition_id, b.date, b.calculated,"
                       " b.calculated_given, b.clocked, b.start, b.\"end\", b.taken,"
                       " b.window_given FROM (SELECT 1) one"
                       " LEFT JOIN breaks b ON b.tenant_id = $1 AND b.id = $2",
    [ST_BREAK_GET] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = $1 AND id = $2",
    [ST_BREAK_INSERT] = "INSERT INTO breaks (tenant_id, " BREAK_COLS ")"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    [ST_BREAK_UPDATE] = "UPDATE breaks SET version = $3, person_id = $4, definition_id = $5,"
                        " date = $6, calculated = $7, calculated_given = $8, clocked = $9,"
                        " start = $10, \"end\" = $11, taken = $12, window_given = $13"
                        " WHERE tenant_id = $1 AND id = $2",
    [ST_BREAK_SET_DERIVED] = "UPDATE breaks SET calculated = $3, version = $4, start = $5,"
                             " \"end\" = $6 WHERE tenant_id = $1 AND id = $2",
    [ST_BREAK_SET_GIVEN] = "UPDATE breaks SET calculated_given = $3, window_given = $4"
                           " WHERE tenant_id = $1 AND id = $2",
    [ST_BREAK_DELETE] = "DELETE FROM breaks WHERE tenant_id = $1 AND id = $2",
    /* GET /breaks: a keyset range in (date, id) order; the caller folds date_from into
     * $2/$3. */
    [ST_BREAKS_LIST] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = $1"
                       " AND (date, id) > ($2::integer, $3::bigint) AND date <= $4"
                       " ORDER BY date, id LIMIT $5",
    [ST_BREAKS_LIST_PERSONS] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = $1"
                               " AND person_id = ANY ($6::bigint[])"
                               " AND (date, id) > ($2::integer, $3::bigint) AND date <= $4"
                               " ORDER BY date, id LIMIT $5",
    [ST_WH_ENABLED_COUNT] = "SELECT COUNT(*) FROM webhooks WHERE tenant_id = $1 AND status = 0"
                            " AND valid_until_ms > $2",
    [ST_WH_INSERT] = "INSERT INTO webhooks (tenant_id, id, collection, destination_url,"
                     " ext_refs, key_blob, created_at_ms, valid_until_ms, status, reason,"
                     " from_version, partitions)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10)",
    [ST_WH_GET] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = $1 AND id = $2",
    /* Lists: $4 the page size, $5 the time that decides expiry. */
    [ST_WH_LIST] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = $1" WH_PAGE
                   " ORDER BY id LIMIT $4",
    [ST_WH_LIST_ENABLED] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = $1"
                           " AND status = 0 AND valid_until_ms > $5" WH_PAGE
                           " ORDER BY id LIMIT $4",
    [ST_WH_LIST_DISABLED] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = $1"
                            " AND (status = 1 OR valid_until_ms <= $5)" WH_PAGE
                            " ORDER BY id LIMIT $4",
    [ST_WH_SET_DISABLED] = "UPDATE webhooks SET status = 1, reason = $3, disabled_at_ms = $4,"
                           " until_version = $5 WHERE tenant_id = $1 AND id = $2 AND status = 0",
    [ST_WH_MARK_GET] = "SELECT w.partitions, m.version, m.last_success_at_ms,"
                       " m.last_failure_at_ms FROM webhooks w LEFT JOIN delivery_marks m"
                       " ON m.tenant_id = w.tenant_id AND m.webhook_id = w.id AND m.part = $3"
                       " WHERE w.tenant_id = $1 AND w.id = $2",
    [ST_WH_EXISTS] = "SELECT 1 FROM webhooks WHERE tenant_id = $1 AND id = $2",
    [ST_WH_EXPIRING] = "SELECT tenant_id, id, valid_until_ms FROM webhooks"
                       " WHERE status = 0 AND valid_until_ms <= $1 ORDER BY tenant_id, id",
    [ST_CHANGES_COUNT] = "SELECT COUNT(*), MIN(version) FROM changes WHERE tenant_id = $1"
                         " AND collection = $2 AND version > $3 AND version <= $4"
                         " AND committed_at_ms < $5",
    [ST_CHANGES_COUNT_PART] = "SELECT COUNT(*), MIN(version) FROM changes WHERE tenant_id = $1"
                              " AND collection = $2 AND version > $3 AND version <= $4"
                              " AND committed_at_ms < $5 AND record_id % $6 = $7",
    [ST_WH_ACTIVE] = "SELECT " WH_COLS " FROM webhooks WHERE status = 0"
                     " AND valid_until_ms > $1 ORDER BY tenant_id, id",
    [ST_ACKS_ABOVE] = "SELECT record_id, version FROM delivery_acks WHERE tenant_id = $1"
                      " AND webhook_id = $2 AND part = $3 AND version > $4 ORDER BY record_id",
    /* Per record of partition $6 of $5, its newest attempt of status $3 above $4. */
    [ST_ATTEMPTS_NEWEST] = "SELECT DISTINCT ON (record_id) record_id, version, attempt,"
                           " next_attempt_at_ms FROM delivery_attempts"
                           " WHERE tenant_id = $1 AND webhook_id = $2 AND status = $3"
                           " AND version > $4 AND record_id % $5 = $6"
                           " ORDER BY record_id, seq DESC",
    [ST_ATTEMPT_INSERT] = "INSERT INTO delivery_attempts (tenant_id, webhook_id, event_id,"
                          " record_id, version, change_type, attempt, attempted_at_ms,"
                          " duration_ms, http_status, error, next_attempt_at_ms, status,"
                          " excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                          " $12, $13, $14)",
    [ST_ACK_RAISE] = "INSERT INTO delivery_acks (tenant_id, webhook_id, part, record_id,"
                     " version) VALUES ($1, $2, $3, $4, $5)"
                     " ON CONFLICT (tenant_id, webhook_id, part, record_id)"
                     " DO UPDATE SET version = excluded.version"
                     " WHERE excluded.version > delivery_acks.version",
    [ST_MARK_SET] = "INSERT INTO delivery_marks (tenant_id, webhook_id, part, version,"
                    " last_success_at_ms, last_failure_at_ms) VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (tenant_id, webhook_id, part) DO UPDATE SET"
                    " version = excluded.version,"
                    " last_success_at_ms = excluded.last_success_at_ms,"
                    " last_failure_at_ms = excluded.last_failure_at_ms",
    [ST_ACKS_DROP] = "DELETE FROM delivery_acks WHERE tenant_id = $1 AND webhook_id = $2"
                     " AND part = $3 AND version <= $4",
    /* The log of webhook ($1, $2) before seq $3, newest first, $4 rows, of status $5
     * (-1: any). */
    [ST_ATTEMPTS_LIST] = "SELECT " ATTEMPT_COLS " FROM delivery_attempts WHERE tenant_id = $1"
                         " AND webhook_id = $2 AND seq < $3"
                         " AND ($5::integer < 0 OR status = $5::integer)"
                         " ORDER BY seq DESC LIMIT $4",
    [ST_ATTEMPTS_PRUNE] = "DELETE FROM delivery_attempts WHERE seq IN (SELECT seq"
                          " FROM delivery_attempts WHERE attempted_at_ms < $1"
                          " ORDER BY attempted_at_ms LIMIT $2)",
    [ST_CHANGES_NEWEST] = "SELECT t.id, COALESCE((SELECT MAX(c.version) FROM changes c"
                          " WHERE c.tenant_id = t.id AND c.committed_at_ms < $1), 0)"
                          " FROM tenants t ORDER BY t.id",
    [ST_FLOORS] = "SELECT w.tenant_id, w.from_version, m.version FROM webhooks w"
                  " LEFT JOIN delivery_marks m"
                  " ON m.tenant_id = w.tenant_id AND m.webhook_id = w.id"
                  " WHERE w.tenant_id = $1 AND w.status = 0"
                  " UNION ALL SELECT tenant_id, floor_version, floor_version FROM deltas"
                  " WHERE tenant_id = $1",
    [ST_CHANGES_PRUNE] = "DELETE FROM changes WHERE tenant_id = $1 AND version IN (SELECT version"
                         " FROM changes WHERE tenant_id = $1 AND version <= $2 ORDER BY version"
                         " LIMIT $3) RETURNING version",
    [ST_HORIZON_GET] = "SELECT pruned_upto FROM tenants WHERE id = $1",
    [ST_HORIZON_RAISE] = "UPDATE tenants SET pruned_upto = GREATEST(pruned_upto, $2)"
                         " WHERE id = $1",
    [ST_DELTA_GET] = "SELECT " DELTA_COLS " FROM deltas WHERE tenant_id = $1 AND client_id = $2"
                     " AND collection = $3",
    /* deltas_read: the row stays locked until COMMIT, so a check made on it holds
     * when it is written back. */
    [ST_DELTA_LOCK] = "SELECT " DELTA_COLS " FROM deltas WHERE tenant_id = $1"
                      " AND client_id = $2 AND collection = $3 FOR UPDATE",
    [ST_DELTA_UPSERT] = "INSERT INTO deltas (" DELTA_COLS ") VALUES ($1, $2, $3, $4, $5, $6,"
                        " $7, $8, $9, $10) ON CONFLICT (tenant_id, client_id, collection)"
                        " DO UPDATE SET id = excluded.id, date_from = excluded.date_from,"
                        " date_to = excluded.date_to, start_version = excluded.start_version,"
                        " floor_version = excluded.floor_version,"
                        " created_at_ms = excluded.created_at_ms,"
                        " last_used_at_ms = excluded.last_used_at_ms",
    [ST_DELTAS_PRUNE] = "DELETE FROM deltas WHERE (tenant_id, client_id, collection) IN"
                        " (SELECT tenant_id, client_id, collection FROM deltas"
                        " WHERE last_used_at_ms < $1 ORDER BY last_used_at_ms LIMIT $2)",
    [ST_WH_PRUNE_ACKS] = "DELETE FROM delivery_acks WHERE (tenant_id, webhook_id) IN"
                         " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE_MARKS] = "DELETE FROM delivery_marks WHERE (tenant_id, webhook_id) IN"
                          " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE_ATTEMPTS] = "DELETE FROM delivery_attempts WHERE (tenant_id, webhook_id) IN"
                             " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE] = "DELETE FROM webhooks WHERE (tenant_id, id) IN (" WH_PRUNABLE ")",
};

/* One pooled connection and which statements it has prepared. Used by one thread
 * at a time: whoever took it from the pool. */
typedef struct pg__conn {
    PGconn *db;
    bool prepared[ST__COUNT];
    struct pg__conn *next_free;
} pg__conn_t;

/* A write waiting for a writer thread (pg_run_write), on its caller's stack. */
typedef struct pg__job {
    store__tx_fn fn;
    void *arg;
    int rc;
    bool done;
    struct pg__job *next;
} pg__job_t;

typedef struct pg__store {
    store_t base; /* first: the handle callers hold */
    /* The writer threads and their queue, guarded by lock: jcond wakes a writer,
     * jdone the callers whose job finished. */
    pthread_t writers[PG__WRITE_CONNECTIONS];
    int n_writers;
    pg__job_t *jhead, *jtail;
    pthread_cond_t jcond, jdone;
    bool jstop;
    store__config_t cfg;
    char *url;

    /* lock guards the lifetime flags, the in-flight count, the stats and the pool. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a connection came back; in-flight fell */
    bool closing;
    int inflight;
    uint64_t writes, commits;
    /* Commit notifications in commit order: a transaction that took notes takes a
     * ticket right before its COMMIT, while it still holds its tenants' row locks, so
     * one tenant's tickets follow its commit order; store__committed runs in ticket
     * order (next_notify), so subscribers hear a tenant's versions rising even though
     * the COMMITs of several threads return in any order. */
    uint64_t next_ticket, next_notify;

    pg__conn_t *conns;
    int n_conns;
    pg__conn_t *free_conns;

    /* Other processes on the database: what this one commits goes to them, what
     * they commit comes to this one's subscribers (notify.c). */
    pg__notify_t *notify;
} pg__store_t;

/* A write transaction: its connection and the notes its job took (store__committed
 * gets them after the COMMIT). */
struct store__tx {
    pg__store_t *s;
    pg__conn_t *c;
    store__commit_t *notes;
    size_t n_notes, cap_notes;
};

static inline pg__store_t *from_base(store_t *s)
{
    return (pg__store_t *)s;
}

/* ---- parameters ------------------------------------------------------------------- */

/* A statement's parameters, in text format except byte slices (binary format: bytea,
 * or text given by length). Numbers are printed into num. */
typedef struct params {
    int n;
    const char *v[PG__MAX_PARAMS];
    int len[PG__MAX_PARAMS];
    int fmt[PG__MAX_PARAMS];
    char num[PG__MAX_PARAMS][24];
} params_t;

static void p_i64(params_t *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
    p->v[p->n] = p->num[p->n];
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_null(params_t *p)
{
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_text(params_t *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_bytes(params_t *p, const void *b, size_t n)
{
    p->v[p->n] = b;
    p->len[p->n] = (int)n;
    p->fmt[p->n] = 1;
    p->n++;
}

/* v, or NULL when it is 0 ("none"). */
static void p_i64_or_null(params_t *p, int64_t v)
{
    if (v)
        p_i64(p, v);
    else
        p_null(p);
}

static int64_t limit_arg(size_t limit)
{
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

/* ---- connections and statements --------------------------------------------------- */

/* Turns a failed result into a BH_E* code. Unique and foreign-key violations are
 * expected outcomes and silent; anything else is logged with PostgreSQL's message,
 * which names tables and constraints (values may appear in DETAIL, which is not
 * logged). */
static int map_result(pg__conn_t *c, const PGresult *r, const char *op)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0)
        return BH_EEXIST;
    if (state && strcmp(state, "23503") == 0)
        return BH_ENOTFOUND;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->db);
    log_error("store: postgres operation failed", LOG_STR("op", op),
              LOG_STR("sqlstate", state ? state : ""), LOG_STR("error", msg ? msg : ""));
    if (!r)
        return PQstatus(c->db) == CONNECTION_OK ? BH_ENOMEM : BH_EIO;
    if (state && strcmp(state, "53100") == 0)
        return BH_ENOSPC;
    if (state && strcmp(state, "58030") == 0)
        return BH_EDISKIO;
    if (state && strcmp(state, "53200") == 0)
        return BH_ENOMEM;
    return BH_EIO;
}

static void stmt_name(int id, char name[16])
{
    snprintf(name, 16, "bh%d", id);
}

/* Prepares statement id on c unless it is already. */
static int stmt_prepare(pg__conn_t *c, int id)
{
    if (c->prepared[id])
        return 0;
    char name[16];
    stmt_name(id, name);
    PGresult *r = PQprepare(c->db, name, stmt_sql[id], 0, NULL);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = map_result(c, r, stmt_sql[id]);
    PQclear(r);
    c->prepared[id] = rc == 0;
    return rc;
}

/* Runs cached statement id with p, preparing it on first use. The result (rows or
 * none), or NULL with *rc set. */
static PGresult *run(pg__conn_t *c, int id, const params_t *p, int *rc)
{
    char name[16];
    stmt_name(id, name);
    int prc = stmt_prepare(c, id);
    if (prc != 0) {
        *rc = prc;
        return NULL;
    }
    PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL,
                                 p ? p->len : NULL, p ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        *rc = map_result(c, r, stmt_sql[id]);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Runs statement id and drops its result; *changed (if given) gets the rows it
 * affected. */
static int run_done(pg__conn_t *c, int id, const params_t *p, uint64_t *changed)
{
    int rc = 0;
    PGresult *r = run(c, id, p, &rc);
    if (!r)
        return rc;
    if (changed)
        *changed = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

/* Runs a plain command (BEGIN, COMMIT, a migration) without parameters. */
static int exec_plain(pg__conn_t *c, const char *sql)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = 0;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = map_result(c, r, sql);
    PQclear(r);
    return rc;
}

/* Statements one pipelined group sends before it reads their results: few enough
 * that the answers of a group fit the socket buffers, since a blocking connection
 * does not read while it sends. */
#define PG__PIPELINE_GROUP 128

/* What run_each asks per row: fill sets row i's parameters and returns its
 * statement; take (NULL: nothing to take) gets its result, rows or none. */
typedef int (*fill_fn)(void *ctx, size_t i, params_t *p);
typedef int (*take_fn)(void *ctx, size_t i, const PGresult *r);

/* A connection whose protocol state is no longer known (a pipeline broken halfway):
 * closed, so that the next conn_take opens it again. */
static void conn_poison(pg__conn_t *c)
{
    PQfinish(c->db);
    c->db = NULL;
    memset(c->prepared, 0, sizeof(c->prepared));
}

/*
 * Runs n statements in order, in pipeline mode (libpq 14+): a group of
 * PG__PIPELINE_GROUP statements costs one round trip instead of one each. This is
 * how a set primitive is one store round trip while keeping the exact row-by-row
 * semantics of the loop it replaces (rows applied in order, later ones seeing
 * earlier ones). The first failure is the answer; PostgreSQL aborts the rest of the
 * pipeline and, inside a write transaction, the transaction. A single row runs
 * without the pipeline.
 */
static int run_each(pg__conn_t *c, size_t n, fill_fn fill, take_fn take, void *ctx)
{
    int rc = 0;
    if (n == 1) {
        params_t p = { 0 };
        int id = fill(ctx, 0, &p);
        PGresult *r = run(c, id, &p, &rc);
        if (!r)
            return rc;
        rc = take ? take(ctx, 0, r) : 0;
        PQclear(r);
        return rc;
    }
    /* Statements are prepared outside the pipeline, where a failure is simple. */
    bool need[ST__COUNT] = { false };
    for (size_t i = 0; i < n; i++) {
        params_t p = { 0 };
        need[fill(ctx, i, &p)] = true;
    }
    for (int id = 0; rc == 0 && id < ST__COUNT; id++)
        if (need[id])
            rc = stmt_prepare(c, id);
    if (rc != 0 || n == 0)
        return rc;
    if (PQenterPipelineMode(c->db) != 1)
        return map_result(c, NULL, "pipeline");
    for (size_t start = 0; start < n; start += PG__PIPELINE_GROUP) {
        size_t end = n - start < PG__PIPELINE_GROUP ? n : start + PG__PIPELINE_GROUP;
        for (size_t i = start; i < end; i++) {
            params_t p = { 0 };
            int id = fill(ctx, i, &p);
            char name[16];
            stmt_name(id, name);
            if (!PQsendQueryPrepared(c->db, name, p.n, p.v, p.len, p.fmt, 0)) {
                log_error("store: postgres pipeline send failed",
                          LOG_STR("error", PQerrorMessage(c->db)));
                conn_poison(c);
                return BH_EIO;
            }
        }
        if (!PQpipelineSync(c->db)) {
            log_error("store: postgres pipeline sync failed",
                      LOG_STR("error", PQerrorMessage(c->db)));
            conn_poison(c);
            return BH_EIO;
        }
        /* Each statement's result is followed by NULL; the group ends with its sync. */
        size_t i = start;
        for (;;) {
            PGresult *r = PQgetResult(c->db);
            if (!r) {
                if (PQstatus(c->db) != CONNECTION_OK || ++i > end) {
                    log_error("store: postgres pipeline ended early",
                              LOG_STR("error", PQerrorMessage(c->db)));
                    conn_poison(c);
                    return BH_EIO;
                }
                continue;
            }
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                break;
            }
            if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                if (rc == 0 && take)
                    rc = take(ctx, i, r);
            } else if (st != PGRES_PIPELINE_ABORTED && rc == 0) {
                rc = map_result(c, r, "pipelined statement");
            }
            PQclear(r);
        }
        if (rc != 0)
            break;
    }
    if (PQexitPipelineMode(c->db) != 1) {
        conn_poison(c);
        return rc ? rc : BH_EIO;
    }
    return rc;
}

/* Column readers: NULL reads as 0, false or "". */
static bool col_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) != 0;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return col_null(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int32_t col_i32(const PGresult *r, int row, int col)
{
    return (int32_t)col_i64(r, row, col);
}

static bool col_bool(const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);
    return !col_null(r, row, col) && (v[0] == 't' || (v[0] >= '1' && v[0] <= '9'));
}

/* Copies a text column into a fixed field; a longer value than the field holds is
 * an error, not a silently truncated secret hash. */
static int col_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n >= cap) {
        log_error("store: stored value too long for its field",
                  LOG_STR("column", PQfname(r, col)), LOG_INT("length", n));
        return BH_EIO;
    }
    memcpy(dst, PQgetvalue(r, row, col), n);
    dst[n] = '\0';
    return 0;
}

/* Decodes a bytea column (text form) into dst of cap bytes. */
static int col_bytes(const PGresult *r, int row, int col, unsigned char *dst, size_t cap,
                     size_t *len)
{
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
    if (!b)
        return BH_ENOMEM;
    int rc = 0;
    if (n > cap) {
        log_error("store: stored bytes too long for their field",
                  LOG_STR("column", PQfname(r, col)), LOG_INT("length", n));
        rc = BH_EIO;
    } else {
        memcpy(dst, b, n);
        *len = n;
    }
    PQfreemem(b);
    return rc;
}

static void notice_drop(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Opens (or reopens) c's connection. Prepared statements die with a connection. */
static int conn_open(pg__store_t *s, pg__conn_t *c, const char **err_msg)
{
    if (c->db)
        PQfinish(c->db);
    memset(c->prepared, 0, sizeof(c->prepared));
    c->db = PQconnectdb(s->url);
    if (!c->db)
        return BH_ENOMEM;
    if (PQstatus(c->db) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->db));
        msg[strcspn(msg, "\n")] = '\0';
        if (err_msg)
            *err_msg = store__set_open_error("cannot connect to PostgreSQL: %s", msg);
        else
            log_error("store: cannot connect to PostgreSQL", LOG_STR("error", msg));
        PQfinish(c->db);
        c->db = NULL;
        return BH_EIO;
    }
    /* IF NOT EXISTS and the like answer notices; libpq would print them to stderr. */
    PQsetNoticeProcessor(c->db, notice_drop, NULL);
    return 0;
}

/* Takes a connection from the pool, waiting while all are busy, and counts the call
 * as in flight until conn_put. A connection the server dropped is reopened here. */
static int conn_take(pg__store_t *s, pg__conn_t **out)
{
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        pthread_mutex_unlock(&s->lock);
        return BH_ESHUTDOWN;
    }
    s->inflight++;
    while (!s->free_conns)
        pthread_cond_wait(&s->cond, &s->lock);
    pg__conn_t *c = s->free_conns;
    s->free_conns = c->next_free;
    pthread_mutex_unlock(&s->lock);

    int rc = 0;
    if (!c->db || PQstatus(c->db) != CONNECTION_OK)
        rc = conn_open(s, c, NULL);
    if (rc != 0) {
        pthread_mutex_lock(&s->lock);
        c->next_free = s->free_conns;
        s->free_conns = c;
        s->inflight--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    *out = c;
    return 0;
}

/* Returns a connection and ends the call's in-flight count. A connection left inside
 * a transaction (a failure halfway) is rolled back first. */
static void conn_put(pg__store_t *s, pg__conn_t *c)
{
    if (c->db && PQstatus(c->db) == CONNECTION_OK &&
        PQtransactionStatus(c->db) != PQTRANS_IDLE)
        (void)exec_plain(c, "ROLLBACK");
    pthread_mutex_lock(&s->lock);
    c->next_free = s->free_conns;
    s->free_conns = c;
    s->inflight--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- generic reads ---------------------------------------------------------------- */

typedef int (*row_fn)(const PGresult *r, int row, void *out);

/* Statement id's first row decoded into out; BH_ENOTFOUND when it has none. */
static int q_one(pg__conn_t *c, int id, const params_t *p, row_fn decode, void *out)
{
    int rc = 0;
    PGresult *r = run(c, id, p, &rc);
    if (!r)
        return rc;
    rc = PQntuples(r) > 0 ? decode(r, 0, out) : BH_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* Every row of statement id into a malloc'd array (NULL when empty). */
static int q_all(pg__conn_t *c, int id, const params_t *p, row_fn decode, size_t elem_size,
                 void **out, size_t *n_out)
{
    int rc = 0;
    PGresult *r = run(c, id, p, &rc);
    if (!r)
        return rc;
    int n = PQntuples(r);
    char *arr = n ? calloc((size_t)n, elem_size) : NULL;
    if (n && !arr)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = decode(r, i, arr + (size_t)i * elem_size);
    PQclear(r);
    if (rc != 0) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n_out = (size_t)n;
    return 0;
}

/* The first column of the first row as an integer; *found tells whether there was a
 * row. */
static int q_int(pg__conn_t *c, int id, const params_t *p, int64_t *out, bool *found)
{
    int rc = 0;
    PGresult *r = run(c, id, p, &rc);
    if (!r)
        return rc;
    *found = PQntuples(r) > 0;
    *out = *found ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/* Every row of a statement with no parameter, or one integer $1, on a pooled
 * connection. */
static int read_all(store_t *base, int id, const int64_t *param, row_fn decode,
                    size_t elem_size, void **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    if (param)
        p_i64(&p, *param);
    rc = q_all(c, id, &p, decode, elem_size, out, n_out);
    conn_put(s, c);
    return rc;
}

/* The context of the set primitives' run_each: the tenant, the input rows, and
 * where the answers go. */
typedef struct each {
    int64_t tenant_id;
    const void *in;
    void *out;
    bool *found;
    int id;         /* the statement, for those that run one */
    row_fn decode;  /* rows_read */
    size_t size;    /* rows_read: the size of an out element */
} each_t;

/* (tenant, ids[i]) for statement x->id. */
static int fill_tenant_id(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    p_i64(p, x->tenant_id);
    p_i64(p, ((const int64_t *)x->in)[i]);
    return x->id;
}

static int take_row(void *ctx, size_t i, const PGresult *r)
{
    each_t *x = ctx;
    x->found[i] = PQntuples(r) > 0;
    return x->found[i] ? x->decode(r, 0, (char *)x->out + i * x->size) : 0;
}

/* out[i] (if set): the first column of row i's answer, 0 without a row; found[i]
 * (if set): whether it had one. */
static int take_int(void *ctx, size_t i, const PGresult *r)
{
    each_t *x = ctx;
    bool found = PQntuples(r) > 0;
    if (x->out)
        ((int64_t *)x->out)[i] = found ? col_i64(r, 0, 0) : 0;
    if (x->found)
        x->found[i] = found;
    return 0;
}

/* ---- write transactions ----------------------------------------------------------- */

/* Runs fn inside one transaction on a pooled connection, on the calling thread (one of
 * the store's writer threads, below), and commits it; then tells store__committed
 * what it took. A transaction that ended in error (a statement failed and fn went on)
 * is rolled back, not committed: PostgreSQL would answer the COMMIT with ROLLBACK. */
static int write_here(store_t *base, store__tx_fn fn, void *arg)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    store__tx_t tx = { .s = s, .c = c };
    rc = exec_plain(c, "BEGIN");
    bool committed = false;
    if (rc == 0) {
        rc = fn(&tx, arg);
        if (rc == 0 && PQtransactionStatus(c->db) != PQTRANS_INTRANS) {
            log_error("store: a postgres write transaction failed halfway");
            rc = BH_EIO;
        }
        bool ticket = rc == 0 && tx.n_notes > 0;
        uint64_t mine = 0;
        if (ticket) {
            pthread_mutex_lock(&s->lock);
            mine = s->next_ticket++;
            pthread_mutex_unlock(&s->lock);
        }
        if (rc == 0) {
            PGresult *r = PQexec(c->db, "COMMIT");
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                rc = map_result(c, r, "COMMIT");
            else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
                rc = BH_EIO;
            PQclear(r);
            committed = rc == 0;
        }
        if (ticket) {
            /* Earlier tickets have sent their COMMIT already: the wait is short. */
            pthread_mutex_lock(&s->lock);
            while (s->next_notify != mine)
                pthread_cond_wait(&s->cond, &s->lock);
            pthread_mutex_unlock(&s->lock);
            if (committed) {
                store__committed(base, tx.notes, tx.n_notes, 1);
                pg__notify_commit(s->notify, tx.notes, tx.n_notes);
            }
            pthread_mutex_lock(&s->lock);
            s->next_notify++;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
        } else if (committed) {
            store__committed(base, NULL, 0, 1);
        }
    }
    pthread_mutex_lock(&s->lock);
    if (committed) {
        s->writes++;
        s->commits++;
    }
    pthread_mutex_unlock(&s->lock);
    conn_put(s, c); /* rolls back what did not commit */
    free(tx.notes);
    return rc;
}

/* The store's writer threads: every write transaction runs on one of them, with a
 * connection of the pool, while its caller waits (as the SQLite back-end's writer
 * thread does). PG__WRITE_CONNECTIONS of them, so that writes of different tenants
 * run side by side while one waits for a tenant's row lock. */
static void *writer_main(void *arg)
{
    pg__store_t *s = arg;
    pthread_setname_np(pthread_self(), "bh-pg-writer");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->jhead && !s->jstop)
            pthread_cond_wait(&s->jcond, &s->lock);
        pg__job_t *j = s->jhead;
        if (!j)
            break; /* stopping, and nothing is left */
        s->jhead = j->next;
        if (!s->jhead)
            s->jtail = NULL;
        pthread_mutex_unlock(&s->lock);
        int rc = write_here(&s->base, j->fn, j->arg);
        pthread_mutex_lock(&s->lock);
        j->rc = rc;
        j->done = true;
        pthread_cond_broadcast(&s->jdone);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Hands fn to a writer thread and waits for its commit. The wait counts as a call in
 * flight, so shutdown waits for it; a job still queued at shutdown fails with
 * BH_ESHUTDOWN (conn_take refuses it). */
static int pg_run_write(store_t *base, store__tx_fn fn, void *arg, bool solo)
{
    (void)solo; /* every write is a transaction of its own here */
    pg__store_t *s = from_base(base);
    pg__job_t j = { .fn = fn, .arg = arg };
    pthread_mutex_lock(&s->lock);
    if (s->closing || s->n_writers == 0) {
        pthread_mutex_unlock(&s->lock);
        return BH_ESHUTDOWN;
    }
    s->inflight++;
    if (s->jtail)
        s->jtail->next = &j;
    else
        s->jhead = &j;
    s->jtail = &j;
    pthread_cond_signal(&s->jcond);
    while (!j.done)
        pthread_cond_wait(&s->jdone, &s->lock);
    s->inflight--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return j.rc;
}

static void writers_stop(pg__store_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->jstop = true;
    pthread_cond_broadcast(&s->jcond);
    int n = s->n_writers;
    s->n_writers = 0;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        pthread_join(s->writers[i], NULL);
}

static int writers_start(pg__store_t *s)
{
    for (int i = 0; i < PG__WRITE_CONNECTIONS; i++) {
        if (pthread_create(&s->writers[i], NULL, writer_main, s) != 0)
            return BH_ENOMEM;
        pthread_mutex_lock(&s->lock);
        s->n_writers++;
        pthread_mutex_unlock(&s->lock);
    }
    return 0;
}

static int pg_tx_note(store__tx_t *tx, const store__commit_t *note)
{
    if (tx->n_notes == tx->cap_notes) {
        size_t cap = tx->cap_notes ? tx->cap_notes * 2 : 8;
        store__commit_t *p = realloc(tx->notes, cap * sizeof(*p));
        if (!p)
            return BH_ENOMEM;
        tx->notes = p;
        tx->cap_notes = cap;
    }
    tx->notes[tx->n_notes++] = *note;
    return 0;
}

/* The tenant's counter, read with its row lock, held to COMMIT. */
static int pg_counter_get(store__tx_t *tx, int64_t tenant_id, uint64_t *out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    int64_t v = 0;
    bool found = false;
    int rc = q_int(tx->c, ST_COUNTER_LOCK, &p, &v, &found);
    if (rc == 0 && !found)
        rc = BH_ENOTFOUND;
    *out = (uint64_t)v;
    return rc;
}

static int pg_counter_set(store__tx_t *tx, int64_t tenant_id, uint64_t version)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, (int64_t)version);
    return run_done(tx->c, ST_VERSION_SET, &p, NULL);
}

/* The body goes in binary format: text's binary form is its bytes, so the slice
 * needs no NUL and no copy (the server still checks the encoding). */
static int fill_change(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    const store__change_row_t *r = &((const store__change_row_t *)x->in)[i];
    p_i64(p, x->tenant_id);
    p_i64(p, (int64_t)r->version);
    p_i64(p, (int64_t)r->collection);
    p_i64(p, (int64_t)r->type);
    p_i64(p, r->record_id);
    if (r->has_date)
        p_i64(p, r->date);
    else
        p_null(p);
    p_i64(p, r->committed_at_ms);
    p_bytes(p, r->body, r->body_len);
    if (r->has_prev_date)
        p_i64(p, r->prev_date);
    else
        p_null(p);
    return ST_CHANGE_INSERT;
}

static int pg_changes_append(store__tx_t *tx, int64_t tenant_id, const store__change_row_t *rows,
                             size_t n)
{
    each_t x = { .tenant_id = tenant_id, .in = rows };
    return run_each(tx->c, n, fill_change, NULL, &x);
}

/* ---- row decoding ----------------------------------------------------------------- */

static int decode_tenant(const PGresult *r, int row, void *out)
{
    store_tenant_t *t = out;
    memset(t, 0, sizeof(*t));
    t->id = col_i64(r, row, 0);
    t->created_at_ms = col_i64(r, row, 2);
    return col_text(r, row, 1, t->name, sizeof(t->name));
}

static int decode_client(const PGresult *r, int row, void *out)
{
    store_client_t *c = out;
    memset(c, 0, sizeof(*c));
    c->tenant_id = col_i64(r, row, 0);
    c->created_at_ms = col_i64(r, row, 5);
    c->revoked_at_ms = col_i64(r, row, 6);
    int rc = col_text(r, row, 1, c->client_id, sizeof(c->client_id));
    if (rc == 0)
        rc = col_text(r, row, 2, c->name, sizeof(c->name));
    if (rc == 0)
        rc = col_text(r, row, 3, c->scopes, sizeof(c->scopes));
    if (rc == 0)
        rc = col_text(r, row, 4, c->secret_hash, sizeof(c->secret_hash));
    return rc;
}

/* A signing key row as stored: the secret still sealed. */
typedef struct {
    store_signing_key_t k;
    unsigned char sealed[CRYPTO_SEALED_MAX];
    size_t sealed_len;
} key_row_t;

static int decode_signing_key(const PGresult *r, int row, void *out)
{
    key_row_t *k = out;
    memset(k, 0, sizeof(*k));
    k->k.created_at_ms = col_i64(r, row, 2);
    k->k.retired_at_ms = col_i64(r, row, 3);
    int rc = col_text(r, row, 0, k->k.kid, sizeof(k->k.kid));
    if (rc == 0)
        rc = col_bytes(r, row, 1, k->sealed, sizeof(k->sealed), &k->sealed_len);
    return rc;
}

/* A break from BREAK_COLS starting at column col. */
static void row_break(const PGresult *r, int row, int col, model_break_t *b)
{
    memset(b, 0, sizeof(*b));
    b->id = col_i64(r, row, col);
    b->version = (uint64_t)col_i64(r, row, col + 1);
    b->person_id = col_i64(r, row, col + 2);
    b->definition_id = col_i64(r, row, col + 3);
    b->date = col_i32(r, row, col + 4);
    b->calculated = col_i32(r, row, col + 5);
    b->calculated_given = col_i64(r, row, col + 6) != 0;
    b->clocked = col_i32(r, row, col + 7);
    b->start = col_i32(r, row, col + 8);
    b->end = col_i32(r, row, col + 9);
    b->taken = col_i64(r, row, col + 10) != 0;
    b->window_taken = col_i64(r, row, col + 11) == 0;
}

static int decode_break(const PGresult *r, int row, void *out)
{
    row_break(r, row, 0, out);
    return 0;
}

/* b as $1..$13 of ST_BREAK_INSERT / ST_BREAK_UPDATE. */
static void params_break(params_t *p, int64_t tenant_id, const model_break_t *b)
{
    p_i64(p, tenant_id);
    p_i64(p, b->id);
    p_i64(p, (int64_t)b->version);
    p_i64(p, b->person_id);
    p_i64(p, b->definition_id);
    p_i64(p, b->date);
    p_i64(p, b->calculated);
    p_i64(p, b->calculated_given);
    p_i64(p, b->clocked);
    p_i64(p, b->start);
    p_i64(p, b->end);
    p_i64(p, b->taken);
    p_i64(p, !b->window_taken);
}

static int decode_definition(const PGresult *r, int row, void *out)
{
    model_definition_t *d = out;
    memset(d, 0, sizeof(*d));
    d->id = col_i64(r, row, 0);
    d->version = (uint64_t)col_i64(r, row, 1);
    d->paid = col_i32(r, row, 2);
    d->minimum = col_i32(r, row, 3);
    d->maximum = col_i32(r, row, 4);
    d->if_not_clocked = col_i32(r, row, 5);
    d->uninterrupted = col_i64(r, row, 6) != 0;
    int rc = col_text(r, row, 7, d->name.def, sizeof(d->name.def));
    if (rc == 0)
        rc = store__texts_decode(PQgetvalue(r, row, 8), "name_tr", &d->name);
    if (rc == 0)
        rc = col_text(r, row, 9, d->friendly_name.def, sizeof(d->friendly_name.def));
    if (rc == 0)
        rc = store__texts_decode(PQgetvalue(r, row, 10), "friendly_tr", &d->friendly_name);
    d->has_earliest = !col_null(r, row, 11);
    d->earliest = col_i32(r, row, 11);
    d->has_latest = !col_null(r, row, 12);
    d->latest = col_i32(r, row, 12);
    return rc;
}

/* Rows of a PERSON_SELECT statement (ordered by id, then reference name) into a
 * malloc'd array of people, one per id. */
static int query_people(pg__conn_t *c, int id, const params_t *p, model_person_t **out,
                        size_t *n_out)
{
    int rc = 0;
    PGresult *r = run(c, id, p, &rc);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    model_person_t *arr = rows ? calloc((size_t)rows, sizeof(*arr)) : NULL;
    size_t n = 0;
    if (rows && !arr)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        int64_t pid = col_i64(r, i, 0);
        if (n == 0 || arr[n - 1].id != pid) {
            arr[n].id = pid;
            arr[n].version = (uint64_t)col_i64(r, i, 1);
            n++;
        }
        if (col_null(r, i, 2))
            continue;
        model_person_t *pp = &arr[n - 1];
        if (pp->n_refs == MODEL_REFS_MAX) {
            log_error("store: a person has more references than a record holds",
                      LOG_INT("person", pid));
            rc = BH_EIO;
            break;
        }
        model_ref_t *ref = &pp->refs[pp->n_refs++];
        rc = col_text(r, i, 2, ref->name, sizeof(ref->name));
        if (rc == 0)
            rc = col_text(r, i, 3, ref->value, sizeof(ref->value));
    }
    PQclear(r);
    if (rc != 0) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int person_read(pg__conn_t *c, int64_t tenant_id, int64_t id, model_person_t *out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, id);
    model_person_t *arr = NULL;
    size_t n = 0;
    int rc = query_people(c, ST_PERSON_GET, &p, &arr, &n);
    if (rc == 0 && n == 0)
        rc = BH_ENOTFOUND;
    if (rc == 0)
        *out = arr[0];
    free(arr);
    return rc;
}

/* "{1,2,3}": an int8[] parameter. */
static int ids_array(buf_t *b, const int64_t *ids, size_t n)
{
    int rc = buf_append_char(b, '{');
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = buf_printf(b, i ? ",%lld" : "%lld", (long long)ids[i]);
    if (rc == 0)
        rc = buf_append_char(b, '}');
    return rc;
}

/* ---- health and stats ------------------------------------------------------------- */

static int pg_ping(store_t *base)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    int64_t one = 0;
    bool found = false;
    rc = q_int(c, ST_PING, NULL, &one, &found);
    conn_put(s, c);
    return rc;
}

static int pg_schema_version(store_t *base, int *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    int64_t v = 0;
    bool found = false;
    rc = q_int(c, ST_SCHEMA_VERSION, NULL, &v, &found);
    conn_put(s, c);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

/* disk_rc stays 0: a full disk is the database server's, reported by its errors. */
static void pg_get_stats(store_t *base, store_stats_t *out)
{
    pg__store_t *s = from_base(base);
    pthread_mutex_lock(&s->lock);
    out->writes = s->writes;
    out->commits = s->commits;
    out->disk_rc = 0;
    pthread_mutex_unlock(&s->lock);
}

/* ---- tenants and clients ---------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t now_ms;
    store_tenant_t *out;
} tenant_create_arg_t;

static int job_tenant_create(store__tx_t *tx, void *arg)
{
    tenant_create_arg_t *a = arg;
    params_t p = { 0 };
    p_text(&p, a->name);
    p_i64(&p, a->now_ms);
    int64_t id = 0;
    bool found = false;
    int rc = q_int(tx->c, ST_TENANT_INSERT, &p, &id, &found);
    if (rc == 0 && a->out) {
        memset(a->out, 0, sizeof(*a->out));
        a->out->id = id;
        snprintf(a->out->name, sizeof(a->out->name), "%s", a->name);
        a->out->created_at_ms = a->now_ms;
    }
    return rc;
}

static int pg_tenant_create(store_t *base, const char *name, store_tenant_t *out)
{
    pg__store_t *s = from_base(base);
    tenant_create_arg_t a = { name, clock_now_ms(s->cfg.clock), out };
    return pg_run_write(base, job_tenant_create, &a, false);
}

static int pg_tenant_get(store_t *base, const char *name, store_tenant_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_text(&p, name);
    rc = q_one(c, ST_TENANT_GET, &p, decode_tenant, out);
    conn_put(s, c);
    return rc;
}

static int pg_tenant_list(store_t *base, store_tenant_t **out, size_t *n_out)
{
    return read_all(base, ST_TENANT_LIST, NULL, decode_tenant, sizeof(**out), (void **)out,
                    n_out);
}

typedef struct {
    int64_t tenant_id;
    const store_client_t *c;
    int64_t created_at_ms;
} client_create_arg_t;

/* A missing tenant fails the foreign key: BH_ENOTFOUND. */
static int job_client_create(store__tx_t *tx, void *arg)
{
    client_create_arg_t *a = arg;
    params_t p = { 0 };
    p_i64(&p, a->tenant_id);
    p_text(&p, a->c->client_id);
    p_text(&p, a->c->name);
    p_text(&p, a->c->scopes);
    p_text(&p, a->c->secret_hash);
    p_i64(&p, a->created_at_ms);
    return run_done(tx->c, ST_CLIENT_INSERT, &p, NULL);
}

static int pg_client_create(store_t *base, int64_t tenant_id, const store_client_t *cl)
{
    pg__store_t *s = from_base(base);
    client_create_arg_t a = { tenant_id, cl,
                              cl->created_at_ms ? cl->created_at_ms
                                                : clock_now_ms(s->cfg.clock) };
    return pg_run_write(base, job_client_create, &a, false);
}

static int pg_client_get(store_t *base, int64_t tenant_id, const char *client_id,
                         store_client_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, client_id);
    rc = q_one(c, ST_CLIENT_GET, &p, decode_client, out);
    conn_put(s, c);
    return rc;
}

static int pg_client_list(store_t *base, int64_t tenant_id, store_client_t **out,
                          size_t *n_out)
{
    return read_all(base, ST_CLIENT_LIST, &tenant_id, decode_client, sizeof(**out),
                    (void **)out, n_out);
}

static int pg_client_list_revoked(store_t *base, store_client_t **out, size_t *n_out)
{
    return read_all(base, ST_CLIENT_LIST_REVOKED, NULL, decode_client, sizeof(**out),
                    (void **)out, n_out);
}

typedef struct {
    int64_t tenant_id;
    const char *client_id;
    int64_t now_ms;
} client_revoke_arg_t;

/* Only an active client is updated, so the first revocation time stays. */
static int job_client_revoke(store__tx_t *tx, void *arg)
{
    client_revoke_arg_t *a = arg;
    params_t p = { 0 };
    p_i64(&p, a->tenant_id);
    p_text(&p, a->client_id);
    p_i64(&p, a->now_ms);
    uint64_t changed = 0;
    int rc = run_done(tx->c, ST_CLIENT_REVOKE, &p, &changed);
    if (rc != 0 || changed > 0)
        return rc;
    p.n = 2;
    int64_t one = 0;
    bool found = false;
    rc = q_int(tx->c, ST_CLIENT_EXISTS, &p, &one, &found);
    return rc == 0 && !found ? BH_ENOTFOUND : rc;
}

static int pg_client_revoke(store_t *base, int64_t tenant_id, const char *client_id,
                            int64_t now_ms)
{
    client_revoke_arg_t a = { tenant_id, client_id, now_ms };
    return pg_run_write(base, job_client_revoke, &a, false);
}

/* ---- signing keys ----------------------------------------------------------------- *
 * Sealed like webhook keys (crypto.h), bound to tenant 0 and "signing-key/<kid>",
 * exactly as in the SQLite back-end, so a store moved between back-ends opens. */

static void key_bound_id(const char *kid, char *out, size_t cap)
{
    snprintf(out, cap, "signing-key/%s", kid);
}

static int key_seal(const crypto_master_t *m, const store_signing_key_t *k,
                    unsigned char sealed[CRYPTO_SEALED_MAX], size_t *len)
{
    char id[64];
    key_bound_id(k->kid, id, sizeof(id));
    return crypto_key_seal(m, rand_system(), 0, id, k->secret, sealed, len);
}

static int key_open(const crypto_master_t *m, key_row_t *r)
{
    char id[64];
    key_bound_id(r->k.kid, id, sizeof(id));
    return crypto_key_open(m, 0, id, r->sealed, r->sealed_len, r->k.secret);
}

static int key_open_or_einval(const crypto_master_t *m, key_row_t *r)
{
    if (key_open(m, r) == 0)
        return 0;
    log_error(m->set ? "store: a token signing key does not open with this master key"
                     : "store: the token signing keys are sealed and no master key is set",
              LOG_STR("kid", r->k.kid));
    return BH_EINVAL;
}

static int pg_signing_key_list(store_t *base, store_signing_key_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    key_row_t *rows = NULL;
    size_t n = 0;
    int rc = read_all(base, ST_KEY_LIST, NULL, decode_signing_key, sizeof(*rows),
                      (void **)&rows, &n);
    if (rc != 0)
        return rc;
    store_signing_key_t *keys = malloc((n ? n : 1) * sizeof(*keys));
    if (!keys) {
        rc = BH_ENOMEM;
        goto out_rows;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = key_open_or_einval(&s->cfg.master, &rows[i]);
        keys[i] = rows[i].k;
    }
    if (rc != 0) {
        explicit_bzero(keys, n * sizeof(*keys));
        free(keys);
        goto out_rows;
    }
    *out = keys;
    *n_out = n;
out_rows:
    if (rows)
        explicit_bzero(rows, n * sizeof(*rows));
    free(rows);
    return rc;
}

/* Serializes the signing key writes of every node (PG__SIGNING_KEY_LOCK). */
static int key_lock(pg__conn_t *c)
{
    params_t p = { 0 };
    p_i64(&p, PG__SIGNING_KEY_LOCK);
    return run_done(c, ST_KEY_LOCK, &p, NULL);
}

static int key_insert(pg__conn_t *c, const crypto_master_t *m, const store_signing_key_t *k,
                      int64_t created_at_ms)
{
    unsigned char sealed[CRYPTO_SEALED_MAX];
    size_t sealed_len = 0;
    int rc = key_seal(m, k, sealed, &sealed_len);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_text(&p, k->kid);
    p_bytes(&p, sealed, sealed_len);
    p_i64(&p, created_at_ms);
    return run_done(c, ST_KEY_INSERT, &p, NULL);
}

typedef struct {
    const crypto_master_t *master;
    const store_signing_key_t *k;
    int64_t created_at_ms;
    store_signing_key_t *active; /* ensure only */
} signing_key_arg_t;

static int key_active(pg__conn_t *c, const crypto_master_t *m, store_signing_key_t *out)
{
    key_row_t row;
    int rc = q_one(c, ST_KEY_ACTIVE, NULL, decode_signing_key, &row);
    if (rc == 0) {
        rc = key_open_or_einval(m, &row);
        *out = row.k;
        explicit_bzero(&row, sizeof(row));
    }
    return rc;
}

static int job_signing_key_add(store__tx_t *tx, void *arg)
{
    signing_key_arg_t *a = arg;
    int rc = key_lock(tx->c);
    if (rc != 0)
        return rc;
    store_signing_key_t old;
    rc = key_active(tx->c, a->master, &old);
    explicit_bzero(&old, sizeof(old));
    if (rc != 0 && rc != BH_ENOTFOUND)
        return rc;
    params_t p = { 0 };
    p_i64(&p, a->created_at_ms);
    rc = run_done(tx->c, ST_KEY_RETIRE, &p, NULL);
    if (rc != 0)
        return rc;
    return key_insert(tx->c, a->master, a->k, a->created_at_ms);
}

static int pg_signing_key_add(store_t *base, const store_signing_key_t *k)
{
    pg__store_t *s = from_base(base);
    signing_key_arg_t a = { &s->cfg.master, k,
                            k->created_at_ms ? k->created_at_ms : clock_now_ms(s->cfg.clock),
                            NULL };
    return pg_run_write(base, job_signing_key_add, &a, false);
}

/* The advisory lock makes check and insert one step for every node. */
static int job_signing_key_ensure(store__tx_t *tx, void *arg)
{
    signing_key_arg_t *a = arg;
    int rc = key_lock(tx->c);
    if (rc != 0)
        return rc;
    rc = key_active(tx->c, a->master, a->active);
    if (rc != BH_ENOTFOUND)
        return rc;
    rc = key_insert(tx->c, a->master, a->k, a->created_at_ms);
    if (rc == 0) {
        *a->active = *a->k;
        a->active->created_at_ms = a->created_at_ms;
        a->active->retired_at_ms = 0;
    }
    return rc;
}

static int pg_signing_key_ensure(store_t *base, const store_signing_key_t *candidate,
                                 store_signing_key_t *active)
{
    pg__store_t *s = from_base(base);
    signing_key_arg_t a = { &s->cfg.master, candidate,
                            candidate->created_at_ms ? candidate->created_at_ms
                                                     : clock_now_ms(s->cfg.clock),
                            active };
    return pg_run_write(base, job_signing_key_ensure, &a, false);
}

/* ---- breaks data: reads ----------------------------------------------------------- */

static int pg_person_get(store_t *base, int64_t tenant_id, int64_t id, model_person_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    rc = person_read(c, tenant_id, id, out);
    conn_put(s, c);
    return rc;
}

static int pg_people_get_many(store_t *base, int64_t tenant_id, const int64_t *ids, size_t n,
                              model_person_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    buf_t set;
    buf_init(&set, n * 24 + 8);
    int rc = ids_array(&set, ids, n);
    pg__conn_t *c = NULL;
    if (rc == 0)
        rc = conn_take(s, &c);
    if (rc == 0) {
        params_t p = { 0 };
        p_i64(&p, tenant_id);
        p_text(&p, buf_cstr(&set));
        rc = query_people(c, ST_PEOPLE_MANY, &p, out, n_out);
        conn_put(s, c);
    }
    buf_deinit(&set);
    return rc;
}

/* Statement id bound to (tenant, id), its first row into out, on a pooled connection. */
static int read_one(store_t *base, int id, int64_t tenant_id, int64_t record_id, row_fn decode,
                    void *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, record_id);
    rc = q_one(c, id, &p, decode, out);
    conn_put(s, c);
    return rc;
}

static int pg_definition_get(store_t *base, int64_t tenant_id, int64_t id,
                             model_definition_t *out)
{
    return read_one(base, ST_DEF_GET, tenant_id, id, decode_definition, out);
}

static int pg_definitions_list(store_t *base, int64_t tenant_id, int64_t after_id,
                               size_t limit, model_definition_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, after_id);
    p_i64(&p, limit_arg(limit));
    rc = q_all(c, ST_DEF_LIST, &p, decode_definition, sizeof(**out), (void **)out, n_out);
    conn_put(s, c);
    return rc;
}

static int pg_break_get(store_t *base, int64_t tenant_id, int64_t id, model_break_t *out)
{
    return read_one(base, ST_BREAK_GET, tenant_id, id, decode_break, out);
}

/* The keyset start is the later of the page's "after" point and the range start;
 * (date_from, INT64_MIN) stands for "date >= date_from", ids being >= 1. */
static int pg_breaks_list(store_t *base, int64_t tenant_id, const store_breaks_query_t *q,
                          model_break_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    int32_t from_date = q->date_from;
    int64_t from_id = INT64_MIN;
    if (q->has_after && q->after_date >= q->date_from) {
        from_date = q->after_date;
        from_id = q->after_id;
    }
    int id = q->persons ? ST_BREAKS_LIST_PERSONS : ST_BREAKS_LIST;
    buf_t set;
    buf_init(&set, q->n_persons * 24 + 8);
    int rc = q->persons ? ids_array(&set, q->persons, q->n_persons) : 0;
    pg__conn_t *c = NULL;
    if (rc == 0)
        rc = conn_take(s, &c);
    if (rc == 0) {
        params_t p = { 0 };
        p_i64(&p, tenant_id);
        p_i64(&p, from_date);
        p_i64(&p, from_id);
        p_i64(&p, q->date_to);
        p_i64(&p, limit_arg(q->limit));
        if (q->persons)
            p_text(&p, buf_cstr(&set));
        rc = q_all(c, id, &p, decode_break, sizeof(**out), (void **)out, n_out);
        conn_put(s, c);
    }
    buf_deinit(&set);
    return rc;
}

/* The rows and the horizon come from one statement: one snapshot. */
static int pg_changes_after(store_t *base, int64_t tenant_id, store_collection_t coll,
                            uint64_t after, size_t limit, store_change_t **out, size_t *n_out,
                            uint64_t *horizon)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, (int64_t)coll);
    p_i64(&p, (int64_t)after);
    p_i64(&p, limit_arg(limit));
    PGresult *r = run(c, ST_CHANGES_AFTER, &p, &rc);
    conn_put(s, c);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    *horizon = rows ? (uint64_t)col_i64(r, 0, 0) : 0;
    store_change_t *arr = rows ? calloc((size_t)rows, sizeof(*arr)) : NULL;
    size_t n = 0;
    if (rows && !arr)
        rc = BH_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        if (col_null(r, i, 1))
            continue; /* the tenant's row without changes */
        store_change_t *ch = &arr[n];
        ch->version = (uint64_t)col_i64(r, i, 1);
        ch->collection = (store_collection_t)col_i64(r, i, 2);
        ch->type = (store_change_type_t)col_i64(r, i, 3);
        ch->record_id = col_i64(r, i, 4);
        ch->date = col_i32(r, i, 5);
        ch->committed_at_ms = col_i64(r, i, 6);
        ch->has_prev_date = !col_null(r, i, 8);
        ch->prev_date = col_i32(r, i, 8);
        size_t len = (size_t)PQgetlength(r, i, 7);
        ch->body = malloc(len + 1);
        if (!ch->body) {
            rc = BH_ENOMEM;
            break;
        }
        memcpy(ch->body, PQgetvalue(r, i, 7), len);
        ch->body[len] = '\0';
        n++;
    }
    PQclear(r);
    if (rc != 0) {
        store_changes_free(arr, n);
        return rc;
    }
    if (n == 0) {
        free(arr);
        arr = NULL;
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int pg_tenant_version(store_t *base, int64_t tenant_id, uint64_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    int64_t v = 0;
    bool found = false;
    rc = q_int(c, ST_VERSION_GET, &p, &v, &found);
    conn_put(s, c);
    if (rc == 0 && !found)
        rc = BH_ENOTFOUND;
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

/* ---- write primitives: people ----------------------------------------------------- */

/* Each of ids through statement id (bound to tenant and id) and decode, into out[i]
 * (elements of size bytes); found[i] tells whether it exists. */
static int rows_read(store__tx_t *tx, int id, row_fn decode, int64_t tenant_id,
                     const int64_t *ids, size_t n, void *out, size_t size, bool *found)
{
    each_t x = { .tenant_id = tenant_id, .in = ids, .out = out, .found = found, .id = id,
                 .decode = decode, .size = size };
    return run_each(tx->c, n, fill_tenant_id, take_row, &x);
}

static int pg_people_read(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                          model_person_t *out, bool *found)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = person_read(tx->c, tenant_id, ids[i], &out[i]);
        found[i] = rc == 0;
        if (rc == BH_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

/* Runs statement id bound to (tenant, ids[i]) per id; out[i] its integer answer
 * (found[i]: whether it answered a row). Either array may be NULL. */
static int ints_per_id(store__tx_t *tx, int id, int64_t tenant_id, const int64_t *ids,
                       size_t n, int64_t *out, bool *found)
{
    each_t x = { .tenant_id = tenant_id, .in = ids, .out = out, .found = found, .id = id };
    return run_each(tx->c, n, fill_tenant_id, take_int, &x);
}

static int pg_people_exist(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                           bool *found)
{
    return ints_per_id(tx, ST_PERSON_EXISTS, tenant_id, ids, n, NULL, found);
}

static int fill_ref_owner(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    const model_ref_t *ref = &((const model_ref_t *)x->in)[i];
    p_i64(p, x->tenant_id);
    p_text(p, ref->name);
    p_text(p, ref->value);
    return ST_REF_OWNER;
}

static int pg_ref_owners(store__tx_t *tx, int64_t tenant_id, const model_ref_t *refs, size_t n,
                         int64_t *owner)
{
    each_t x = { .tenant_id = tenant_id, .in = refs, .out = owner };
    return run_each(tx->c, n, fill_ref_owner, take_int, &x);
}

static int exec_per_id(store__tx_t *tx, int id, int64_t tenant_id, const int64_t *ids, size_t n)
{
    each_t x = { .tenant_id = tenant_id, .in = ids, .id = id };
    return run_each(tx->c, n, fill_tenant_id, NULL, &x);
}

/* people_write as one list of statements: per person its upsert, the delete of its
 * references, then one insert per reference (step[k] = (person, -2 | -1 | ref)). */
typedef struct people_ctx {
    int64_t tenant_id;
    const model_person_t *p;
    size_t (*step)[2];
} people_ctx_t;

static int fill_people(void *ctx, size_t i, params_t *p)
{
    const people_ctx_t *x = ctx;
    const model_person_t *pp = &x->p[x->step[i][0]];
    size_t what = x->step[i][1];
    p_i64(p, x->tenant_id);
    p_i64(p, pp->id);
    if (what == 0) {
        p_i64(p, (int64_t)pp->version);
        return ST_PERSON_UPSERT;
    }
    if (what == 1)
        return ST_REFS_DELETE;
    p_text(p, pp->refs[what - 2].name);
    p_text(p, pp->refs[what - 2].value);
    return ST_REF_INSERT;
}

static int pg_people_write(store__tx_t *tx, int64_t tenant_id, const model_person_t *pp, size_t n)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += 2 + pp[k].n_refs;
    people_ctx_t x = { tenant_id, pp, total ? malloc(total * sizeof(*x.step)) : NULL };
    if (total && !x.step)
        return BH_ENOMEM;
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t what = 0; what < 2 + pp[k].n_refs; what++) {
            x.step[m][0] = k;
            x.step[m++][1] = what;
        }
    int rc = run_each(tx->c, total, fill_people, NULL, &x);
    free(x.step);
    return rc;
}

static int pg_people_delete(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n)
{
    int rc = exec_per_id(tx, ST_REFS_DELETE, tenant_id, ids, n);
    return rc == 0 ? exec_per_id(tx, ST_PERSON_DELETE, tenant_id, ids, n) : rc;
}

static int pg_uses_count(store__tx_t *tx, int64_t tenant_id, store__uses_t kind,
                         const int64_t *ids, size_t n, int64_t *out)
{
    return ints_per_id(tx, kind == STORE__USES_PERSON ? ST_PERSON_USES : ST_DEF_USES,
                       tenant_id, ids, n, out, NULL);
}

/* ---- write primitives: definitions ------------------------------------------------ */

static int pg_definitions_read(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                               model_definition_t *out, bool *found)
{
    return rows_read(tx, ST_DEF_GET, decode_definition, tenant_id, ids, n, out, sizeof(*out),
                     found);
}

static int take_calc(void *ctx, size_t i, const PGresult *r)
{
    each_t *x = ctx;
    store__def_calc_t *e = &((store__def_calc_t *)x->out)[i];
    if (PQntuples(r) > 0) {
        e->exists = true;
        e->paid = col_i32(r, 0, 0);
        e->minimum = col_i32(r, 0, 1);
        e->maximum = col_i32(r, 0, 2);
        e->if_not_clocked = col_i32(r, 0, 3);
        e->uninterrupted = col_i64(r, 0, 4) != 0;
        e->has_earliest = !col_null(r, 0, 5);
        e->earliest = col_i32(r, 0, 5);
        e->has_latest = !col_null(r, 0, 6);
        e->latest = col_i32(r, 0, 6);
    }
    return 0;
}

static int pg_definition_calcs_read(store__tx_t *tx, int64_t tenant_id, const int64_t *ids,
                                    size_t n, store__def_calc_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (store__def_calc_t){ .id = ids[i] };
    each_t x = { .tenant_id = tenant_id, .in = ids, .out = out, .id = ST_DEF_CALC };
    return run_each(tx->c, n, fill_tenant_id, take_calc, &x);
}

static int fill_definition(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    const store__definition_row_t *row = &((const store__definition_row_t *)x->in)[i];
    const model_definition_t *d = row->d;
    p_i64(p, x->tenant_id);
    p_i64(p, d->id);
    p_i64(p, (int64_t)d->version);
    p_i64(p, d->paid);
    p_i64(p, d->minimum);
    p_i64(p, d->maximum);
    p_i64(p, d->if_not_clocked);
    p_i64(p, d->uninterrupted);
    p_text(p, d->name.def);
    p_text(p, row->name_tr);
    p_text(p, d->friendly_name.def);
    p_text(p, row->friendly_tr);
    if (d->has_earliest)
        p_i64(p, d->earliest);
    else
        p_null(p);
    if (d->has_latest)
        p_i64(p, d->latest);
    else
        p_null(p);
    return ST_DEF_UPSERT;
}

static int pg_definitions_write(store__tx_t *tx, int64_t tenant_id,
                                const store__definition_row_t *rows, size_t n)
{
    each_t x = { .tenant_id = tenant_id, .in = rows };
    return run_each(tx->c, n, fill_definition, NULL, &x);
}

static int pg_definitions_delete(store__tx_t *tx, int64_t tenant_id, const int64_t *ids,
                                 size_t n)
{
    return exec_per_id(tx, ST_DEF_DELETE, tenant_id, ids, n);
}

static int pg_breaks_computed(store__tx_t *tx, int64_t tenant_id, int64_t def_id,
                              int64_t after_id, size_t limit, model_break_t *out, size_t *n_out)
{
    *n_out = 0;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, def_id);
    p_i64(&p, after_id);
    p_i64(&p, limit_arg(limit));
    int rc = 0;
    PGresult *r = run(tx->c, ST_DEF_COMPUTED, &p, &rc);
    if (!r)
        return rc;
    size_t n = (size_t)PQntuples(r);
    for (size_t i = 0; i < n && i < limit; i++)
        row_break(r, (int)i, 0, &out[i]);
    *n_out = n < limit ? n : limit;
    PQclear(r);
    return 0;
}

/* ---- write primitives: breaks ----------------------------------------------------- */

static int fill_probe(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    const store__break_probe_t *pr = &((const store__break_probe_t *)x->in)[i];
    p_i64(p, x->tenant_id);
    p_i64(p, pr->id);
    p_i64(p, pr->person_id);
    return ST_BREAK_PROBE;
}

static int take_probe(void *ctx, size_t i, const PGresult *r)
{
    each_t *x = ctx;
    store__break_probe_t *pr = &((store__break_probe_t *)x->out)[i];
    pr->person_exists = pr->exists = false;
    if (PQntuples(r) == 0)
        return BH_EIO; /* the statement answers exactly one row */
    pr->person_exists = col_bool(r, 0, 0);
    pr->exists = !col_null(r, 0, 1);
    if (pr->exists)
        row_break(r, 0, 1, &pr->cur);
    return 0;
}

static int pg_breaks_probe(store__tx_t *tx, int64_t tenant_id, store__break_probe_t *pr, size_t n)
{
    each_t x = { .tenant_id = tenant_id, .in = pr, .out = pr };
    return run_each(tx->c, n, fill_probe, take_probe, &x);
}

static int pg_breaks_read(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                          model_break_t *out, bool *found)
{
    return rows_read(tx, ST_BREAK_GET, decode_break, tenant_id, ids, n, out, sizeof(*out), found);
}

static int fill_break_write(void *ctx, size_t i, params_t *p)
{
    const each_t *x = ctx;
    const store__break_row_t *row = &((const store__break_row_t *)x->in)[i];
    const model_break_t *b = &row->b;
    switch (row->kind) {
    case STORE__BREAK_INSERT:
    case STORE__BREAK_UPDATE:
        params_break(p, x->tenant_id, b);
        return row->kind == STORE__BREAK_INSERT ? ST_BREAK_INSERT : ST_BREAK_UPDATE;
    case STORE__BREAK_SET_DERIVED:
        p_i64(p, x->tenant_id);
        p_i64(p, b->id);
        p_i64(p, b->calculated);
        p_i64(p, (int64_t)b->version);
        p_i64(p, b->start);
        p_i64(p, b->end);
        return ST_BREAK_SET_DERIVED;
    case STORE__BREAK_SET_GIVEN:
        p_i64(p, x->tenant_id);
        p_i64(p, b->id);
        p_i64(p, b->calculated_given);
        p_i64(p, !b->window_taken);
        return ST_BREAK_SET_GIVEN;
    default:
        p_i64(p, x->tenant_id);
        p_i64(p, b->id);
        return ST_BREAK_DELETE;
    }
}

/* Rows in order, so a break written twice in one window ends as its last row says. */
static int pg_breaks_write(store__tx_t *tx, int64_t tenant_id, const store__break_row_t *rows,
                           size_t n)
{
    each_t x = { .tenant_id = tenant_id, .in = rows };
    return run_each(tx->c, n, fill_break_write, NULL, &x);
}

/* ---- webhooks --------------------------------------------------------------------- */

/* A webhook from WH_COLS; the delivery fields stay 0 (delivery.c reads the marks). */
static int decode_webhook(const PGresult *r, int row, void *out)
{
    store_webhook_t *w = out;
    memset(w, 0, sizeof(*w));
    w->tenant_id = col_i64(r, row, 1);
    w->collection = (store_collection_t)col_i64(r, row, 2);
    w->created_at_ms = col_i64(r, row, 6);
    w->valid_until_ms = col_i64(r, row, 7);
    w->status = (store_webhook_status_t)col_i64(r, row, 8);
    w->reason = (store_webhook_reason_t)col_i64(r, row, 9);
    w->disabled_at_ms = col_i64(r, row, 10);
    w->from_version = (uint64_t)col_i64(r, row, 11);
    w->until_version = (uint64_t)col_i64(r, row, 12);
    w->partitions = (uint32_t)col_i64(r, row, 13);
    int rc = col_text(r, row, 0, w->id, sizeof(w->id));
    if (rc == 0)
        rc = col_text(r, row, 3, w->destination_url, sizeof(w->destination_url));
    if (rc == 0)
        rc = col_text(r, row, 4, w->ext_refs, sizeof(w->ext_refs));
    if (rc == 0)
        rc = col_bytes(r, row, 5, w->key_blob, sizeof(w->key_blob), &w->key_blob_len);
    return rc;
}

static int pg_webhook_get(store_t *base, int64_t tenant_id, const char *id,
                          store_webhook_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, id);
    rc = q_one(c, ST_WH_GET, &p, decode_webhook, out);
    conn_put(s, c);
    return rc;
}

static int pg_webhooks_list(store_t *base, int64_t tenant_id, const store_webhook_query_t *q,
                            store_webhook_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    int id = q->status == STORE_WH_ENABLED    ? ST_WH_LIST_ENABLED
             : q->status == STORE_WH_DISABLED ? ST_WH_LIST_DISABLED
                                              : ST_WH_LIST;
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, q->after_id ? q->after_id : "");
    p_i64(&p, (int64_t)q->collection);
    p_i64(&p, limit_arg(q->limit));
    if (id != ST_WH_LIST)
        p_i64(&p, q->now_ms);
    rc = q_all(c, id, &p, decode_webhook, sizeof(**out), (void **)out, n_out);
    conn_put(s, c);
    return rc;
}

static int pg_webhooks_active(store_t *base, int64_t now_ms, store_webhook_t **out,
                              size_t *n_out)
{
    return read_all(base, ST_WH_ACTIVE, &now_ms, decode_webhook, sizeof(**out), (void **)out,
                    n_out);
}

/* ---- delivery state reads --------------------------------------------------------- */

static int decode_retrying(const PGresult *r, int row, void *out)
{
    store_retrying_t *t = out;
    t->record_id = col_i64(r, row, 0);
    t->version = (uint64_t)col_i64(r, row, 1);
    t->attempt = col_i32(r, row, 2);
    t->next_attempt_at_ms = col_i64(r, row, 3);
    return 0;
}

static int decode_acked(const PGresult *r, int row, void *out)
{
    store_acked_t *a = out;
    a->record_id = col_i64(r, row, 0);
    a->version = (uint64_t)col_i64(r, row, 1);
    return 0;
}

/* Each mark through ST_WH_MARK_GET on connection c. */
static int fill_mark_get(void *ctx, size_t i, params_t *p)
{
    const store__mark_t *m = &((const store__mark_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, m->tenant_id);
    p_text(p, m->webhook_id);
    p_i64(p, m->part);
    return ST_WH_MARK_GET;
}

static int take_mark(void *ctx, size_t i, const PGresult *r)
{
    store__mark_t *m = &((store__mark_t *)((each_t *)ctx)->out)[i];
    m->partitions = 0;
    m->version = 0;
    m->last_success_at_ms = m->last_failure_at_ms = 0;
    if (PQntuples(r) > 0) {
        m->partitions = (uint32_t)col_i64(r, 0, 0);
        m->version = (uint64_t)col_i64(r, 0, 1);
        m->last_success_at_ms = col_i64(r, 0, 2);
        m->last_failure_at_ms = col_i64(r, 0, 3);
    }
    m->found = m->part < m->partitions;
    return 0;
}

static int marks_read(pg__conn_t *c, store__mark_t *marks, size_t n)
{
    each_t x = { .in = marks, .out = marks };
    return run_each(c, n, fill_mark_get, take_mark, &x);
}

static int pg_marks_get(store_t *base, store__mark_t *marks, size_t n)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    rc = marks_read(c, marks, n);
    conn_put(s, c);
    return rc;
}

static int pg_acks_above(store_t *base, int64_t tenant_id, const char *webhook_id, uint32_t part,
                         uint64_t above, store_acked_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, webhook_id);
    p_i64(&p, part);
    p_i64(&p, (int64_t)above);
    rc = q_all(c, ST_ACKS_ABOVE, &p, decode_acked, sizeof(**out), (void **)out, n_out);
    conn_put(s, c);
    return rc;
}

static int pg_attempts_newest(store_t *base, int64_t tenant_id, const char *webhook_id,
                              store_attempt_status_t status, uint32_t partitions, uint32_t part,
                              uint64_t above, store_retrying_t **out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, webhook_id);
    p_i64(&p, (int64_t)status);
    p_i64(&p, (int64_t)above);
    p_i64(&p, partitions ? partitions : 1);
    p_i64(&p, part);
    rc = q_all(c, ST_ATTEMPTS_NEWEST, &p, decode_retrying, sizeof(**out), (void **)out, n_out);
    conn_put(s, c);
    return rc;
}

static int pg_changes_count(store_t *base, int64_t tenant_id, store__change_range_t *ranges,
                            size_t n)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store__change_range_t *rg = &ranges[i];
        int id = rg->partitions > 1 ? ST_CHANGES_COUNT_PART : ST_CHANGES_COUNT;
        params_t p = { 0 };
        p_i64(&p, tenant_id);
        p_i64(&p, (int64_t)rg->collection);
        p_i64(&p, (int64_t)rg->after);
        p_i64(&p, rg->upto > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)rg->upto);
        p_i64(&p, rg->before_ms);
        if (id == ST_CHANGES_COUNT_PART) {
            p_i64(&p, rg->partitions);
            p_i64(&p, rg->part);
        }
        PGresult *r = run(c, id, &p, &rc);
        if (!r)
            break;
        rg->count = (uint64_t)col_i64(r, 0, 0);
        rg->oldest = (uint64_t)col_i64(r, 0, 1);
        PQclear(r);
    }
    conn_put(s, c);
    return rc;
}

/* A row of the attempt log with its seq (the paging key). */
typedef struct attempt_row {
    int64_t seq;
    store_attempt_t a;
} attempt_row_t;

static int decode_attempt(const PGresult *r, int row, void *out)
{
    attempt_row_t *ar = out;
    store_attempt_t *a = &ar->a;
    memset(ar, 0, sizeof(*ar));
    ar->seq = col_i64(r, row, 0);
    a->tenant_id = col_i64(r, row, 1);
    a->record_id = col_i64(r, row, 4);
    a->version = (uint64_t)col_i64(r, row, 5);
    a->change_type = (store_change_type_t)col_i64(r, row, 6);
    a->attempt = col_i32(r, row, 7);
    a->attempted_at_ms = col_i64(r, row, 8);
    a->duration_ms = col_i64(r, row, 9);
    a->http_status = col_i32(r, row, 10);
    a->next_attempt_at_ms = col_i64(r, row, 12);
    a->status = (store_attempt_status_t)col_i64(r, row, 13);
    int rc = col_text(r, row, 2, a->webhook_id, sizeof(a->webhook_id));
    if (rc == 0)
        rc = col_text(r, row, 3, a->event_id, sizeof(a->event_id));
    if (rc == 0)
        rc = col_text(r, row, 11, a->error, sizeof(a->error));
    if (rc == 0)
        rc = col_text(r, row, 14, a->excerpt, sizeof(a->excerpt));
    return rc;
}

/* Webhooks are only removed by the prune, long after they were disabled, so the
 * existence check and the page need not share a snapshot. */
static int pg_attempts_list(store_t *base, int64_t tenant_id, const char *webhook_id,
                            const store_attempt_query_t *q, store_attempt_t **out,
                            int64_t **seq_out, size_t *n_out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, webhook_id);
    int64_t one = 0;
    bool found = false;
    rc = q_int(c, ST_WH_EXISTS, &p, &one, &found);
    if (rc == 0 && !found)
        rc = BH_ENOTFOUND;
    attempt_row_t *rows = NULL;
    size_t n = 0;
    if (rc == 0 && q->limit > 0) {
        p_i64(&p, q->before_seq ? q->before_seq : INT64_MAX);
        p_i64(&p, limit_arg(q->limit));
        p_i64(&p, q->status);
        rc = q_all(c, ST_ATTEMPTS_LIST, &p, decode_attempt, sizeof(*rows), (void **)&rows, &n);
    }
    conn_put(s, c);
    if (rc != 0 || n == 0)
        return rc;
    store_attempt_t *arr = malloc(n * sizeof(*arr));
    int64_t *seqs = malloc(n * sizeof(*seqs));
    if (!arr || !seqs) {
        free(arr);
        free(seqs);
        free(rows);
        return BH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        arr[i] = rows[i].a;
        seqs[i] = rows[i].seq;
    }
    free(rows);
    *out = arr;
    *seq_out = seqs;
    *n_out = n;
    return 0;
}

/* ---- prunes ----------------------------------------------------------------------- */

/* One chunk: DELETE statements run in order with ($1, $2) = (a, PRUNE_CHUNK); the
 * last one's rows are the chunk's count. */
typedef struct {
    const int *stmts;
    size_t n_stmts;
    int64_t a;
    size_t n; /* out */
} prune_arg_t;

static int job_prune(store__tx_t *tx, void *arg)
{
    prune_arg_t *pa = arg;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < pa->n_stmts; i++) {
        params_t p = { 0 };
        p_i64(&p, pa->a);
        p_i64(&p, PRUNE_CHUNK);
        uint64_t changed = 0;
        rc = run_done(tx->c, pa->stmts[i], &p, &changed);
        pa->n = (size_t)changed;
    }
    return rc;
}

/* Chunk after chunk, each its own transaction, until one comes back short. */
static int prune_chunks(store_t *base, const int *stmts, size_t n_stmts, int64_t a,
                        size_t *n_out)
{
    for (;;) {
        prune_arg_t pa = { stmts, n_stmts, a, 0 };
        int rc = pg_run_write(base, job_prune, &pa, true);
        if (rc != 0)
            return rc;
        *n_out += pa.n;
        if (pa.n < PRUNE_CHUNK)
            return 0;
    }
}

static int pg_attempts_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_ATTEMPTS_PRUNE };
    return prune_chunks(base, stmts, 1, before_ms, n_out);
}

static int pg_webhooks_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_WH_PRUNE_ACKS, ST_WH_PRUNE_MARKS, ST_WH_PRUNE_ATTEMPTS,
                                 ST_WH_PRUNE };
    return prune_chunks(base, stmts, sizeof(stmts) / sizeof(stmts[0]), before_ms, n_out);
}

static int pg_deltas_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_DELTAS_PRUNE };
    return prune_chunks(base, stmts, 1, before_ms, n_out);
}

static int decode_tenant_version(const PGresult *r, int row, void *out)
{
    store__tenant_version_t *t = out;
    t->tenant_id = col_i64(r, row, 0);
    t->version = (uint64_t)col_i64(r, row, 1);
    return 0;
}

static int decode_floor(const PGresult *r, int row, void *out)
{
    store__floor_t *f = out;
    f->tenant_id = col_i64(r, row, 0);
    f->from_version = (uint64_t)col_i64(r, row, 1);
    f->watermark = (uint64_t)col_i64(r, row, 2);
    return 0;
}

static int pg_changes_newest(store_t *base, int64_t before_ms, store__tenant_version_t **out,
                             size_t *n_out)
{
    return read_all(base, ST_CHANGES_NEWEST, &before_ms, decode_tenant_version, sizeof(**out),
                    (void **)out, n_out);
}

static int pg_floors_read(store__tx_t *tx, int64_t tenant_id, store__floor_t **out,
                          size_t *n_out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    return q_all(tx->c, ST_FLOORS, &p, decode_floor, sizeof(**out), (void **)out, n_out);
}

static int pg_changes_delete_upto(store__tx_t *tx, int64_t tenant_id, uint64_t upto,
                                  size_t limit, size_t *n_out, uint64_t *max_out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, (int64_t)upto);
    p_i64(&p, limit_arg(limit));
    int rc = 0;
    PGresult *r = run(tx->c, ST_CHANGES_PRUNE, &p, &rc);
    if (!r)
        return rc;
    size_t n = (size_t)PQntuples(r);
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = (uint64_t)col_i64(r, (int)i, 0);
        if (v > max)
            max = v;
    }
    PQclear(r);
    *n_out = n;
    *max_out = max;
    return 0;
}

static int pg_horizon_get(store__tx_t *tx, int64_t tenant_id, uint64_t *out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    int64_t v = 0;
    bool found = false;
    int rc = q_int(tx->c, ST_HORIZON_GET, &p, &v, &found);
    *out = (uint64_t)v;
    return rc == 0 && !found ? BH_ENOTFOUND : rc;
}

static int fill_horizon(void *ctx, size_t i, params_t *p)
{
    const store__tenant_version_t *t = &((const store__tenant_version_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, t->tenant_id);
    p_i64(p, (int64_t)t->version);
    return ST_HORIZON_RAISE;
}

static int pg_horizon_raise(store__tx_t *tx, const store__tenant_version_t *rows, size_t n)
{
    each_t x = { .in = rows };
    return run_each(tx->c, n, fill_horizon, NULL, &x);
}

/* ---- deltas ----------------------------------------------------------------------- */

static int decode_delta(const PGresult *r, int row, void *out)
{
    store_delta_t *d = out;
    memset(d, 0, sizeof(*d));
    d->tenant_id = col_i64(r, row, 0);
    d->collection = (store_collection_t)col_i64(r, row, 2);
    d->date_from = col_i32(r, row, 4);
    d->date_to = col_i32(r, row, 5);
    d->start_version = (uint64_t)col_i64(r, row, 6);
    d->floor_version = (uint64_t)col_i64(r, row, 7);
    d->created_at_ms = col_i64(r, row, 8);
    d->last_used_at_ms = col_i64(r, row, 9);
    int rc = col_text(r, row, 1, d->client_id, sizeof(d->client_id));
    if (rc == 0)
        rc = col_text(r, row, 3, d->id, sizeof(d->id));
    return rc;
}

static void params_delta_key(params_t *p, int64_t tenant_id, const char *client_id,
                             store_collection_t coll)
{
    p_i64(p, tenant_id);
    p_text(p, client_id);
    p_i64(p, (int64_t)coll);
}

static int pg_delta_get(store_t *base, int64_t tenant_id, const char *client_id,
                        store_collection_t coll, store_delta_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    params_t p = { 0 };
    params_delta_key(&p, tenant_id, client_id, coll);
    rc = q_one(c, ST_DELTA_GET, &p, decode_delta, out);
    conn_put(s, c);
    return rc;
}

static int pg_deltas_read(store__tx_t *tx, store_delta_t *d, bool *found, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_delta_t key = d[i];
        params_t p = { 0 };
        params_delta_key(&p, key.tenant_id, key.client_id, key.collection);
        rc = q_one(tx->c, ST_DELTA_LOCK, &p, decode_delta, &d[i]);
        found[i] = rc == 0;
        if (rc == BH_ENOTFOUND) {
            d[i] = key;
            rc = 0;
        }
    }
    return rc;
}

static int fill_delta(void *ctx, size_t i, params_t *p)
{
    const store_delta_t *d = &((const store_delta_t *)((const each_t *)ctx)->in)[i];
    params_delta_key(p, d->tenant_id, d->client_id, d->collection);
    p_text(p, d->id);
    p_i64(p, d->date_from);
    p_i64(p, d->date_to);
    p_i64(p, (int64_t)d->start_version);
    p_i64(p, (int64_t)d->floor_version);
    p_i64(p, d->created_at_ms);
    p_i64(p, d->last_used_at_ms);
    return ST_DELTA_UPSERT;
}

static int pg_deltas_write(store__tx_t *tx, const store_delta_t *d, size_t n)
{
    each_t x = { .in = d };
    return run_each(tx->c, n, fill_delta, NULL, &x);
}

/* ---- write primitives: webhooks and delivery state -------------------------------- */

static int pg_webhooks_enabled_count(store__tx_t *tx, int64_t tenant_id, int64_t now_ms,
                                     uint64_t *out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_i64(&p, now_ms);
    int64_t n = 0;
    bool found = false;
    int rc = q_int(tx->c, ST_WH_ENABLED_COUNT, &p, &n, &found);
    *out = (uint64_t)n;
    return rc;
}

static int pg_webhook_insert(store__tx_t *tx, int64_t tenant_id, const store_webhook_t *w)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, w->id);
    p_i64(&p, (int64_t)w->collection);
    p_text(&p, w->destination_url);
    p_text(&p, w->ext_refs);
    p_bytes(&p, w->key_blob, w->key_blob_len);
    p_i64(&p, w->created_at_ms);
    p_i64(&p, w->valid_until_ms);
    p_i64(&p, (int64_t)w->from_version);
    p_i64(&p, w->partitions ? w->partitions : 1);
    return run_done(tx->c, ST_WH_INSERT, &p, NULL);
}

static int pg_webhook_read(store__tx_t *tx, int64_t tenant_id, const char *id,
                           store_webhook_t *out)
{
    params_t p = { 0 };
    p_i64(&p, tenant_id);
    p_text(&p, id);
    return q_one(tx->c, ST_WH_GET, &p, decode_webhook, out);
}

static int fill_disable(void *ctx, size_t i, params_t *p)
{
    const store__disable_row_t *r = &((const store__disable_row_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, r->tenant_id);
    p_text(p, r->webhook_id);
    p_i64(p, (int64_t)r->reason);
    p_i64(p, r->disabled_at_ms);
    p_i64(p, (int64_t)r->until_version);
    return ST_WH_SET_DISABLED;
}

static int take_disable(void *ctx, size_t i, const PGresult *r)
{
    store__disable_row_t *d = &((store__disable_row_t *)((each_t *)ctx)->out)[i];
    d->changed = strtoull(PQcmdTuples((PGresult *)r), NULL, 10) > 0;
    return 0;
}

static int pg_webhooks_set_disabled(store__tx_t *tx, store__disable_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rows[i].changed = false;
    each_t x = { .in = rows, .out = rows };
    return run_each(tx->c, n, fill_disable, take_disable, &x);
}

static int decode_expiring(const PGresult *r, int row, void *out)
{
    store__disable_row_t *d = out;
    memset(d, 0, sizeof(*d));
    d->tenant_id = col_i64(r, row, 0);
    d->disabled_at_ms = col_i64(r, row, 2);
    return col_text(r, row, 1, d->webhook_id, sizeof(d->webhook_id));
}

static int pg_webhooks_expiring(store__tx_t *tx, int64_t now_ms, store__disable_row_t **out,
                                size_t *n_out)
{
    params_t p = { 0 };
    p_i64(&p, now_ms);
    return q_all(tx->c, ST_WH_EXPIRING, &p, decode_expiring, sizeof(**out), (void **)out,
                 n_out);
}

static int fill_attempt(void *ctx, size_t i, params_t *p)
{
    const store_attempt_t *a = &((const store_attempt_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, a->tenant_id);
    p_text(p, a->webhook_id);
    p_text(p, a->event_id);
    p_i64(p, a->record_id);
    p_i64(p, (int64_t)a->version);
    p_i64(p, (int64_t)a->change_type);
    p_i64(p, a->attempt);
    p_i64(p, a->attempted_at_ms);
    p_i64(p, a->duration_ms);
    p_i64_or_null(p, a->http_status);
    if (a->error[0])
        p_text(p, a->error);
    else
        p_null(p);
    p_i64_or_null(p, a->next_attempt_at_ms);
    p_i64(p, (int64_t)a->status);
    p_text(p, a->excerpt);
    return ST_ATTEMPT_INSERT;
}

/* In order: seq, the log's order, follows the batch's. */
static int pg_attempts_append(store__tx_t *tx, const store_attempt_t *attempts, size_t n)
{
    each_t x = { .in = attempts };
    return run_each(tx->c, n, fill_attempt, NULL, &x);
}

static int pg_marks_read(store__tx_t *tx, store__mark_t *marks, size_t n)
{
    return marks_read(tx->c, marks, n);
}

static int fill_ack(void *ctx, size_t i, params_t *p)
{
    const store__ack_row_t *a = &((const store__ack_row_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, a->tenant_id);
    p_text(p, a->webhook_id);
    p_i64(p, a->part);
    p_i64(p, a->record_id);
    p_i64(p, (int64_t)a->version);
    return ST_ACK_RAISE;
}

static int pg_acks_raise(store__tx_t *tx, const store__ack_row_t *acks, size_t n)
{
    each_t x = { .in = acks };
    return run_each(tx->c, n, fill_ack, NULL, &x);
}

static int fill_mark_set(void *ctx, size_t i, params_t *p)
{
    const store__mark_t *m = &((const store__mark_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, m->tenant_id);
    p_text(p, m->webhook_id);
    p_i64(p, m->part);
    p_i64(p, (int64_t)m->version);
    p_i64_or_null(p, m->last_success_at_ms);
    p_i64_or_null(p, m->last_failure_at_ms);
    return ST_MARK_SET;
}

static int pg_marks_write(store__tx_t *tx, const store__mark_t *marks, size_t n)
{
    each_t x = { .in = marks };
    return run_each(tx->c, n, fill_mark_set, NULL, &x);
}

static int fill_acks_drop(void *ctx, size_t i, params_t *p)
{
    const store__mark_t *m = &((const store__mark_t *)((const each_t *)ctx)->in)[i];
    p_i64(p, m->tenant_id);
    p_text(p, m->webhook_id);
    p_i64(p, m->part);
    p_i64(p, (int64_t)m->version);
    return ST_ACKS_DROP;
}

static int pg_acks_drop(store__tx_t *tx, const store__mark_t *marks, size_t n)
{
    each_t x = { .in = marks };
    return run_each(tx->c, n, fill_acks_drop, NULL, &x);
}

/* ---- lifetime --------------------------------------------------------------------- */

/* After the last write committed, its notification goes out (the CLI's import is
 * heard by the servers before store_close returns); then the listener stops. */
static void pg_shutdown(store_t *base)
{
    pg__store_t *s = from_base(base);
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    while (s->inflight > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    writers_stop(s);
    pg__notify_stop(s->notify);
}

static void pg_destroy(store_t *base)
{
    pg__store_t *s = from_base(base);
    writers_stop(s); /* an open that failed after starting them */
    pg__notify_free(s->notify);
    for (int i = 0; s->conns && i < s->n_conns; i++)
        if (s->conns[i].db)
            PQfinish(s->conns[i].db);
    free(s->conns);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->jcond);
    pthread_cond_destroy(&s->jdone);
    pthread_mutex_destroy(&s->lock);
    explicit_bzero(&s->cfg.master, sizeof(s->cfg.master));
    if (s->url)
        explicit_bzero(s->url, strlen(s->url)); /* it may hold a password */
    free(s->url);
    free(s);
}

/* ---- copying (store/copy.c) ------------------------------------------------------- */

/* Appends the quoted column list of t. */
static int cols_list(buf_t *b, const store__table_t *t)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < t->n_cols; i++)
        rc = buf_printf(b, "%s\"%s\"", i ? ", " : "", t->cols[i]);
    return rc;
}

static int pg_table_count(store_t *base, const store__table_t *t, uint64_t *out)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", t->name);
    PGresult *r = PQexec(c->db, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *out = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    else
        rc = map_result(c, r, sql);
    PQclear(r);
    conn_put(s, c);
    return rc;
}

/* One fetched batch as values; bytea is unescaped into owned buffers. */
static int scan_rows(const PGresult *r, const store__table_t *t, store__value_t *vals,
                     unsigned char **owned, size_t *n_owned)
{
    int rows = PQntuples(r);
    for (int row = 0; row < rows; row++) {
        for (size_t i = 0; i < t->n_cols; i++) {
            store__value_t *v = &vals[(size_t)row * t->n_cols + i];
            memset(v, 0, sizeof(*v));
            int col = (int)i;
            Oid type = PQftype(r, col);
            if (PQgetisnull(r, row, col)) {
                v->type = STORE__V_NULL;
            } else if (type == 20 || type == 21 || type == 23) { /* int8, int2, int4 */
                v->type = STORE__V_INT;
                v->i = strtoll(PQgetvalue(r, row, col), NULL, 10);
            } else if (type == 17) { /* bytea */
                size_t n = 0;
                unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col),
                                                   &n);
                if (!b)
                    return BH_ENOMEM;
                owned[(*n_owned)++] = b;
                v->type = STORE__V_BLOB;
                v->p = b;
                v->n = n;
            } else {
                v->type = STORE__V_TEXT;
                v->p = PQgetvalue(r, row, col);
                v->n = (size_t)PQgetlength(r, row, col);
            }
        }
    }
    return 0;
}

static int pg_table_scan(store_t *base, const store__table_t *t, size_t batch, store__rows_fn fn,
                         void *arg)
{
    pg__store_t *s = from_base(base);
    pg__conn_t *c;
    int rc = conn_take(s, &c);
    if (rc != 0)
        return rc;
    buf_t sql;
    buf_init(&sql, 1 << 16);
    rc = buf_append_str(&sql, "DECLARE bh_copy NO SCROLL CURSOR FOR SELECT ");
    rc = rc ? rc : cols_list(&sql, t);
    rc = rc ? rc : buf_printf(&sql, " FROM \"%s\" ORDER BY %s", t->name, t->order_by);
    store__value_t *vals = calloc(batch * t->n_cols, sizeof(*vals));
    unsigned char **owned = calloc(batch * t->n_cols, sizeof(*owned));
    if (rc == 0 && (!vals || !owned))
        rc = BH_ENOMEM;
    /* One snapshot for the whole table: a cursor inside one transaction. */
    rc = rc ? rc : exec_plain(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    rc = rc ? rc : exec_plain(c, buf_cstr(&sql));
    char fetch[64];
    snprintf(fetch, sizeof(fetch), "FETCH FORWARD %zu FROM bh_copy", batch);
    while (rc == 0) {
        PGresult *r = PQexec(c->db, fetch);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = map_result(c, r, fetch);
            PQclear(r);
            break;
        }
        size_t rows = (size_t)PQntuples(r), n_owned = 0;
        if (rows)
            rc = scan_rows(r, t, vals, owned, &n_owned);
        if (rc == 0 && rows)
            rc = fn(arg, vals, rows);
        for (size_t i = 0; i < n_owned; i++)
            PQfreemem(owned[i]);
        PQclear(r);
        if (rows < batch)
            break;
    }
    if (rc == 0)
        rc = exec_plain(c, "COMMIT");
    free(vals);
    free(owned);
    buf_deinit(&sql);
    conn_put(s, c); /* rolls back a scan that failed */
    return rc;
}

/* The rows in one multi-row INSERT (n_rows * n_cols parameters; copy.c's batches
 * stay under PostgreSQL's 65535). Integers go as text, text and blobs in binary
 * (their bytes); the target columns give every parameter its type. Identity columns
 * (delivery_attempts.seq) take the copied values: OVERRIDING SYSTEM VALUE. */
static int pg_table_insert(store__tx_t *tx, const store__table_t *t, const store__value_t *vals,
                           size_t n_rows)
{
    size_t n = n_rows * t->n_cols;
    if (n == 0)
        return 0;
    if (n > 65535)
        return BH_EINVAL;
    buf_t sql;
    buf_init(&sql, 16 << 20);
    int rc = buf_printf(&sql, "INSERT INTO \"%s\" (", t->name);
    rc = rc ? rc : cols_list(&sql, t);
    rc = rc ? rc : buf_append_str(&sql, ") OVERRIDING SYSTEM VALUE VALUES ");
    for (size_t r = 0; !rc && r < n_rows; r++) {
        rc = buf_append_str(&sql, r ? ",(" : "(");
        for (size_t i = 0; !rc && i < t->n_cols; i++)
            rc = buf_printf(&sql, "%s$%zu", i ? "," : "", r * t->n_cols + i + 1);
        rc = rc ? rc : buf_append_char(&sql, ')');
    }
    const char **pv = calloc(n, sizeof(*pv));
    int *plen = calloc(n, sizeof(*plen)), *pfmt = calloc(n, sizeof(*pfmt));
    char (*num)[24] = calloc(n, sizeof(*num));
    if (rc == 0 && (!pv || !plen || !pfmt || !num))
        rc = BH_ENOMEM;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const store__value_t *v = &vals[k];
        if (v->type == STORE__V_INT) {
            snprintf(num[k], sizeof(num[k]), "%lld", (long long)v->i);
            pv[k] = num[k];
        } else if (v->type != STORE__V_NULL) {
            pv[k] = v->n ? v->p : "";
            plen[k] = (int)v->n;
            pfmt[k] = 1;
        }
    }
    if (rc == 0) {
        PGresult *r = PQexecParams(tx->c->db, buf_cstr(&sql), (int)n, NULL, pv, plen, pfmt, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = map_result(tx->c, r, t->name);
        PQclear(r);
    }
    free(pv);
    free(plen);
    free(pfmt);
    free(num);
    buf_deinit(&sql);
    return rc;
}

/* The identity sequences go past the highest copied value, so that the next tenant
 * or attempt gets a fresh id. */
static int pg_copy_finish(store__tx_t *tx)
{
    static const char *const sql[] = {
        "SELECT setval(pg_get_serial_sequence('tenants', 'id'),"
        " GREATEST((SELECT COALESCE(MAX(id), 0) FROM tenants), 1),"
        " (SELECT COUNT(*) > 0 FROM tenants))",
        "SELECT setval(pg_get_serial_sequence('delivery_attempts', 'seq'),"
        " GREATEST((SELECT COALESCE(MAX(seq), 0) FROM delivery_attempts), 1),"
        " (SELECT COUNT(*) > 0 FROM delivery_attempts))",
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(sql) / sizeof(sql[0]); i++)
        rc = exec_plain(tx->c, sql[i]);
    return rc;
}

/* The first subscriber starts the listener: a command that never subscribes (an
 * import, a migrate) opens no connection for it. */
static void pg_subscribed(store_t *base)
{
    pg__notify_listen(from_base(base)->notify);
}

/* Several nodes share one database by design: nothing marks it as one server's. */
static int pg_in_use(store_t *base, bool *in_use)
{
    (void)base;
    *in_use = false;
    return 0;
}

static const store__ops_t pg_ops = {
    .name = "postgres",
    .table_count = pg_table_count,
    .table_scan = pg_table_scan,
    .table_insert = pg_table_insert,
    .copy_finish = pg_copy_finish,
    .in_use = pg_in_use,
    .shutdown = pg_shutdown,
    .destroy = pg_destroy,
    .subscribed = pg_subscribed,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .get_stats = pg_get_stats,
    .tenant_create = pg_tenant_create,
    .tenant_get = pg_tenant_get,
    .tenant_list = pg_tenant_list,
    .client_create = pg_client_create,
    .client_get = pg_client_get,
    .client_list = pg_client_list,
    .client_list_revoked = pg_client_list_revoked,
    .client_revoke = pg_client_revoke,
    .signing_key_list = pg_signing_key_list,
    .signing_key_add = pg_signing_key_add,
    .signing_key_ensure = pg_signing_key_ensure,
    .person_get = pg_person_get,
    .people_get_many = pg_people_get_many,
    .definition_get = pg_definition_get,
    .definitions_list = pg_definitions_list,
    .break_get = pg_break_get,
    .breaks_list = pg_breaks_list,
    .changes_after = pg_changes_after,
    .tenant_version = pg_tenant_version,
    .webhook_get = pg_webhook_get,
    .webhooks_list = pg_webhooks_list,
    .webhooks_active = pg_webhooks_active,
    .marks_get = pg_marks_get,
    .acks_above = pg_acks_above,
    .attempts_newest = pg_attempts_newest,
    .changes_count = pg_changes_count,
    .attempts_list = pg_attempts_list,
    .attempts_prune = pg_attempts_prune,
    .changes_newest = pg_changes_newest,
    .changes_delete_upto = pg_changes_delete_upto,
    .webhooks_prune = pg_webhooks_prune,
    .delta_get = pg_delta_get,
    .deltas_prune = pg_deltas_prune,

    .run_write = pg_run_write,
    .tx_note = pg_tx_note,
    .counter_get = pg_counter_get,
    .counter_set = pg_counter_set,
    .changes_append = pg_changes_append,
    .people_read = pg_people_read,
    .people_exist = pg_people_exist,
    .ref_owners = pg_ref_owners,
    .people_write = pg_people_write,
    .people_delete = pg_people_delete,
    .uses_count = pg_uses_count,
    .definitions_read = pg_definitions_read,
    .definition_calcs_read = pg_definition_calcs_read,
    .definitions_write = pg_definitions_write,
    .definitions_delete = pg_definitions_delete,
    .breaks_computed = pg_breaks_computed,
    .breaks_probe = pg_breaks_probe,
    .breaks_read = pg_breaks_read,
    .breaks_write = pg_breaks_write,
    .webhooks_enabled_count = pg_webhooks_enabled_count,
    .webhook_insert = pg_webhook_insert,
    .webhook_read = pg_webhook_read,
    .webhooks_set_disabled = pg_webhooks_set_disabled,
    .webhooks_expiring = pg_webhooks_expiring,
    .attempts_append = pg_attempts_append,
    .marks_read = pg_marks_read,
    .acks_raise = pg_acks_raise,
    .marks_write = pg_marks_write,
    .acks_drop = pg_acks_drop,
    .horizon_get = pg_horizon_get,
    .horizon_raise = pg_horizon_raise,
    .floors_read = pg_floors_read,
    .deltas_read = pg_deltas_read,
    .deltas_write = pg_deltas_write,
};

/* ---- open: migrations and keys ---------------------------------------------------- */

/* Brings the schema up to date, one migration per transaction, each after
 * pg_advisory_xact_lock(PG__MIGRATION_LOCK): nodes starting together wait for one
 * another, and each reads the version the previous one left, so every migration is
 * applied once. The version table is created under the same lock. */
static int migrate(pg__store_t *s, pg__conn_t *c, const char **err_msg)
{
    char sql[256];
    for (;;) {
        int rc = exec_plain(c, "BEGIN");
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
                 (long long)PG__MIGRATION_LOCK);
        if (rc == 0)
            rc = exec_plain(c, sql);
        if (rc == 0)
            rc = exec_plain(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                               " version integer PRIMARY KEY,"
                               " applied_at bigint NOT NULL)");
        int64_t version = 0;
        bool found = false;
        if (rc == 0)
            rc = q_int(c, ST_SCHEMA_VERSION, NULL, &version, &found);
        if (rc != 0)
            goto out_fail;
        if (version == (int64_t)pg__n_migrations)
            return exec_plain(c, "COMMIT") == 0 ? 0 : BH_EIO;
        if (version < 0 || version > (int64_t)pg__n_migrations) {
            (void)exec_plain(c, "ROLLBACK");
            *err_msg = store__set_open_error("the database schema version %lld is newer than "
                                             "this breakhook knows (%zu); upgrade breakhook",
                                             (long long)version, pg__n_migrations);
            return BH_ECONFLICT;
        }
        rc = exec_plain(c, pg__migrations[version]);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%lld, %lld)",
                 (long long)(version + 1), (long long)clock_now_ms(s->cfg.clock));
        if (rc == 0)
            rc = exec_plain(c, sql);
        if (rc == 0)
            rc = exec_plain(c, "COMMIT");
        if (rc != 0)
            goto out_fail;
        log_info("store: schema migration applied", LOG_STR("backend", "postgres"),
                 LOG_INT("version", version + 1));
    }
out_fail:;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->db));
    msg[strcspn(msg, "\n")] = '\0';
    if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
        (void)exec_plain(c, "ROLLBACK");
    *err_msg = store__set_open_error("schema migration failed: %s", msg);
    return BH_EIO;
}

/* At open with a master key: seals every signing key still in the clear and checks
 * that every key opens (as the SQLite back-end's keys_seal), in one transaction
 * under the signing key lock. */
static int keys_seal(pg__store_t *s, pg__conn_t *c, const char **err_msg)
{
    const crypto_master_t *m = &s->cfg.master;
    key_row_t *rows = NULL;
    size_t n = 0, n_sealed = 0;
    if (!m->set)
        return 0;
    int rc = exec_plain(c, "BEGIN");
    if (rc == 0)
        rc = key_lock(c);
    if (rc == 0)
        rc = q_all(c, ST_KEY_LIST, NULL, decode_signing_key, sizeof(*rows), (void **)&rows, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        key_row_t *r = &rows[i];
        if (crypto_key_is_clear(r->sealed, r->sealed_len)) {
            rc = key_open(m, r);
            rc = rc ? rc : key_seal(m, &r->k, r->sealed, &r->sealed_len);
            if (rc != 0)
                break;
            params_t p = { 0 };
            p_text(&p, r->k.kid);
            p_bytes(&p, r->sealed, r->sealed_len);
            rc = run_done(c, ST_KEY_RESEAL, &p, NULL);
            n_sealed++;
        } else if (key_open(m, r) != 0) {
            rc = BH_EINVAL;
            *err_msg = store__set_open_error(
                "token signing key %s does not open with this BREAKHOOK_MASTER_KEY", r->k.kid);
        }
    }
    if (rc == 0)
        rc = exec_plain(c, "COMMIT");
    if (rc != 0) {
        (void)exec_plain(c, "ROLLBACK");
        if (!*err_msg)
            *err_msg = store__set_open_error("cannot read the token signing keys: %s",
                                             err_str(rc));
    } else if (n_sealed) {
        log_info("store: token signing keys sealed with the master key",
                 LOG_INT("count", n_sealed));
    }
    if (rows)
        explicit_bzero(rows, n * sizeof(*rows));
    free(rows);
    return rc;
}

int pg__open(const char *url, const store__config_t *cfg, store_t **out, const char **err_msg)
{
    if (!PQisthreadsafe()) {
        *err_msg = "this libpq was built without thread support";
        return BH_EINVAL;
    }
    pg__store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return BH_ENOMEM;
    s->base.ops = &pg_ops;
    s->base.metrics = cfg->metrics;
    s->base.subs = cfg->subs;
    s->base.clock = cfg->clock;
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->jcond, NULL);
    pthread_cond_init(&s->jdone, NULL);
    int rc = BH_ENOMEM;
    s->url = strdup(url);
    s->n_conns = cfg->read_connections + PG__WRITE_CONNECTIONS;
    s->conns = calloc((size_t)s->n_conns, sizeof(*s->conns));
    if (!s->url || !s->conns)
        goto out_destroy;
    rc = pg__notify_new(&s->base, s->url, &s->notify);
    if (rc != 0)
        goto out_destroy;
    for (int i = s->n_conns - 1; i >= 0; i--) {
        s->conns[i].next_free = s->free_conns;
        s->free_conns = &s->conns[i];
    }
    /* The first connection now: a wrong URL fails the open, with libpq's reason. */
    pg__conn_t *c = &s->conns[0];
    rc = conn_open(s, c, err_msg);
    if (rc == 0)
        rc = migrate(s, c, err_msg);
    if (rc == 0)
        rc = keys_seal(s, c, err_msg);
    if (rc == 0 && (rc = writers_start(s)) != 0)
        *err_msg = "could not start the store's writer threads";
    if (rc != 0)
        goto out_destroy;
    *out = &s->base;
    return 0;

out_destroy:
    pg_destroy(&s->base);
    return rc;
}
