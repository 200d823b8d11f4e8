/*
 * store_sqlite.c: the embedded SQLite back-end of the store.
 *
 * Shape. SQLite allows one writer at a time per database, and a durable commit
 * costs an fsync, so writes all go to one writer thread that owns the only
 * read-write connection. Callers queue a job and sleep; the writer takes everything
 * queued (up to max_group jobs), runs the jobs in one BEGIN IMMEDIATE transaction,
 * each inside its own SAVEPOINT so one failing job is undone alone, commits once,
 * and wakes every caller with its own result. N concurrent writes thus share one
 * fsync (group commit). A job alone in its transaction, and a "solo" job (a $batch
 * chunk, a definition change) always is, runs without a savepoint: see run_group.
 * Reads run on a pool of read-only connections; in WAL mode they see the last
 * committed state and never wait for the writer.
 *
 * What is stored and why is not decided here. The rules of writes and delivery
 * state (versions, unchanged detection, durations and fan-out, reasons, change-log
 * bodies, the webhook window, acks and watermarks) live in store/writes.c and
 * store/delivery.c, which run as writer jobs (sq_run_write) and reach the tables
 * only through the primitives of store_int.h (the "write primitives" sections
 * below): SQL, statements, connections, transactions, the writer and the
 * checkpointer are this file's whole business.
 *
 * Durability: synchronous=FULL, so a write whose call returned 0 survives a power
 * loss, not only a process crash.
 *
 * Lifetime: every call counts itself "in flight" while it uses the handle. Shutdown
 * refuses new calls (BH_ESHUTDOWN), waits for the calls in flight (which drains
 * the write queue, since every queued job belongs to a waiting call), then stops
 * and joins the writer.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
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
    ST_DATA_VERSION,
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
    /* breaks data */
    ST_VERSION_GET,
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
    ST_BREAK_UPDATE_VALUES,
    ST_BREAK_SET_DERIVED,
    ST_BREAK_SET_GIVEN,
    ST_BREAK_DELETE,
    ST_BREAKS_LIST,
    ST_BREAKS_LIST_FEW,
    ST_BREAKS_LIST_MANY,
    /* webhooks */
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
    /* delivery state */
    ST_WH_ACTIVE,
    ST_ACKS_ABOVE,
    ST_ATTEMPTS_NEWEST,
    ST_ATTEMPT_INSERT,
    ST_ACK_RAISE,
    ST_MARK_SET,
    ST_ACKS_DROP,
    ST_ATTEMPTS_LIST,
    ST_ATTEMPTS_LIST_STATUS,
    ST_ATTEMPTS_PRUNE,
    ST_CHANGES_NEWEST,
    ST_FLOORS,
    ST_CHANGES_PRUNE,
    ST_HORIZON_GET,
    ST_HORIZON_RAISE,
    ST_READ_BEGIN,
    ST_READ_END,
    /* deltas */
    ST_DELTA_GET,
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
                    " AND disabled_at_ms < ?1 ORDER BY tenant_id, id LIMIT ?2"

/* The column lists row_break and row_definition decode, in their order. */
#define BREAK_COLS "id, version, person_id, definition_id, date, calculated," \
                   " calculated_given, clocked, start, \"end\", taken, window_given"
#define DEF_COLS "id, version, paid, minimum, maximum, if_not_clocked, uninterrupted," \
                 " name, name_tr, friendly, friendly_tr, earliest_start, latest_end"
/* The keyset condition of GET /breaks. Written as a row value so that SQLite starts
 * the index range at the last row of the previous page (a page costs its own rows,
 * not the pages before it); the caller folds date_from into ?2/?3. */
#define BREAKS_KEYSET " (date, id) > (?2, ?3) AND date <= ?4"
/* A person's row and its references, one row per reference (or one with NULL
 * name), so one statement, one snapshot, answers a GET. */
#define PERSON_SELECT "SELECT p.id, p.version, r.name, r.value FROM people p" \
                      " LEFT JOIN person_refs r ON r.tenant_id = p.tenant_id" \
                      " AND r.person_id = p.id"
/* The column list row_webhook decodes, in its order. */
#define WH_COLS "id, tenant_id, collection, destination_url, ext_refs, key_blob," \
                " created_at_ms, valid_until_ms, status, reason, disabled_at_ms," \
                " from_version, until_version, partitions"
/* The keyset and collection filter every webhook list shares: ?2 the last id of
 * the previous page ('' from the start), ?3 the collection (0: any). */
#define WH_PAGE " AND id > ?2 AND (?3 = 0 OR collection = ?3)"
/* The webhooks of tenant ?1 in webhooks_by_status order within one status. */
#define WH_BY_STATUS "SELECT " WH_COLS " FROM webhooks INDEXED BY webhooks_by_status" \
                     " WHERE tenant_id = ?1 AND status = "
/* The column list row_delta decodes, in its order. */
#define DELTA_COLS "tenant_id, client_id, collection, id, date_from, date_to, start_version," \
                   " floor_version, created_at_ms, last_used_at_ms"
/* The column list row_attempt decodes, in its order. */
#define ATTEMPT_COLS "seq, tenant_id, webhook_id, event_id, record_id, version, change_type," \
                     " attempt, attempted_at_ms, duration_ms, http_status, error," \
                     " next_attempt_at_ms, status, excerpt"
/* One webhook's attempts of one status older than ?3, newest first from
 * delivery_attempts_by_webhook. */
#define ATTEMPTS_BY_STATUS "SELECT " ATTEMPT_COLS " FROM delivery_attempts" \
                           " INDEXED BY delivery_attempts_by_webhook WHERE tenant_id = ?1" \
                           " AND webhook_id = ?2 AND seq < ?3 AND status = "


static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT job",
    [ST_RELEASE] = "RELEASE job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO job",
    [ST_PING] = "SELECT 1",
    [ST_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [ST_DATA_VERSION] = "PRAGMA data_version",
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
    [ST_KEY_RESEAL] = "UPDATE signing_keys SET secret = ?2 WHERE kid = ?1",
    [ST_VERSION_GET] = "SELECT last_version FROM tenants WHERE id = ?1",
    [ST_VERSION_SET] = "UPDATE tenants SET last_version = ?2 WHERE id = ?1",
    [ST_CHANGE_INSERT] = "INSERT INTO changes (tenant_id, version, collection, type, record_id,"
                         " date, committed_at_ms, body, prev_date)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* Without statistics the planner would walk the primary key and skip the other
     * collections' rows one by one (every break change, for a definitions delta);
     * the INDEXED BY here and below pins the plan the schema was designed for. */
    [ST_CHANGES_AFTER] = "SELECT version, collection, type, record_id, date, committed_at_ms,"
                         " body, prev_date FROM changes INDEXED BY changes_by_collection"
                         " WHERE tenant_id = ?1 AND collection = ?2"
                         " AND version > ?3 ORDER BY version LIMIT ?4",
    [ST_PERSON_GET] = PERSON_SELECT " WHERE p.tenant_id = ?1 AND p.id = ?2 ORDER BY r.name",
    [ST_PEOPLE_MANY] = PERSON_SELECT " WHERE p.tenant_id = ?1"
                       " AND p.id IN (SELECT value FROM json_each(?2)) ORDER BY p.id, r.name",
    [ST_PERSON_EXISTS] = "SELECT 1 FROM people WHERE tenant_id = ?1 AND id = ?2",
    [ST_PERSON_UPSERT] = "INSERT INTO people (tenant_id, id, version) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version",
    [ST_PERSON_DELETE] = "DELETE FROM people WHERE tenant_id = ?1 AND id = ?2",
    [ST_PERSON_USES] = "SELECT COUNT(*) FROM breaks WHERE tenant_id = ?1 AND person_id = ?2",
    [ST_REFS_DELETE] = "DELETE FROM person_refs WHERE tenant_id = ?1 AND person_id = ?2",
    [ST_REF_INSERT] = "INSERT INTO person_refs (tenant_id, person_id, name, value)"
                      " VALUES (?1, ?2, ?3, ?4)",
    [ST_REF_OWNER] = "SELECT person_id FROM person_refs WHERE tenant_id = ?1 AND name = ?2"
                     " AND value = ?3",
    [ST_DEF_GET] = "SELECT " DEF_COLS " FROM break_definitions WHERE tenant_id = ?1 AND id = ?2",
    [ST_DEF_CALC] = "SELECT paid, minimum, maximum, if_not_clocked, uninterrupted,"
                    " earliest_start, latest_end"
                    " FROM break_definitions WHERE tenant_id = ?1 AND id = ?2",
    [ST_DEF_UPSERT] = "INSERT INTO break_definitions (tenant_id, " DEF_COLS ")"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                      " ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version,"
                      " paid = excluded.paid, minimum = excluded.minimum,"
                      " maximum = excluded.maximum, if_not_clocked = excluded.if_not_clocked,"
                      " uninterrupted = excluded.uninterrupted, name = excluded.name,"
                      " name_tr = excluded.name_tr, friendly = excluded.friendly,"
                      " friendly_tr = excluded.friendly_tr,"
                      " earliest_start = excluded.earliest_start,"
                      " latest_end = excluded.latest_end",
    [ST_DEF_DELETE] = "DELETE FROM break_definitions WHERE tenant_id = ?1 AND id = ?2",
    [ST_DEF_LIST] = "SELECT " DEF_COLS " FROM break_definitions WHERE tenant_id = ?1"
                    " AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_DEF_USES] = "SELECT COUNT(*) FROM breaks WHERE tenant_id = ?1 AND definition_id = ?2",
    [ST_DEF_COMPUTED] = "SELECT " BREAK_COLS " FROM breaks INDEXED BY breaks_by_definition"
                        " WHERE tenant_id = ?1"
                        " AND definition_id = ?2 AND id > ?3"
                        " AND (calculated_given = 0 OR window_given = 0)"
                        " ORDER BY id LIMIT ?4",
    /* The one read a break upsert needs: whether its person exists, and the current
     * row if any (NULL columns when none); always exactly one row. */
    [ST_BREAK_PROBE] = "SELECT EXISTS (SELECT 1 FROM people WHERE tenant_id = ?1 AND id = ?3),"
                       " b.id, b.version, b.person_id, b.definition_id, b.date, b.calculated,"
                       " b.calculated_given, b.clocked, b.start, b.\"end\", b.taken, b.window_given"
                       " FROM (SELECT 1) LEFT JOIN breaks b ON b.tenant_id = ?1 AND b.id = ?2",
    [ST_BREAK_GET] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = ?1 AND id = ?2",
    [ST_BREAK_INSERT] = "INSERT INTO breaks (tenant_id, " BREAK_COLS ")"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_BREAK_UPDATE] = "UPDATE breaks SET version = ?3, person_id = ?4, definition_id = ?5,"
                        " date = ?6, calculated = ?7, calculated_given = ?8, clocked = ?9,"
                        " start = ?10, \"end\" = ?11, taken = ?12, window_given = ?13"
                        " WHERE tenant_id = ?1 AND id = ?2",
    /* The common replace: nothing an index covers changed, and SQLite rewrites the
     * entries of every index with a column in the SET list, changed or not. */
    [ST_BREAK_UPDATE_VALUES] = "UPDATE breaks SET version = ?3, calculated = ?7, clocked = ?9,"
                               " start = ?10, \"end\" = ?11, taken = ?12"
                               " WHERE tenant_id = ?1 AND id = ?2",
    [ST_BREAK_SET_DERIVED] = "UPDATE breaks SET calculated = ?3, version = ?4, start = ?5,"
                             " \"end\" = ?6 WHERE tenant_id = ?1 AND id = ?2",
    [ST_BREAK_SET_GIVEN] = "UPDATE breaks SET calculated_given = ?3, window_given = ?4"
                           " WHERE tenant_id = ?1 AND id = ?2",
    [ST_BREAK_DELETE] = "DELETE FROM breaks WHERE tenant_id = ?1 AND id = ?2",
    [ST_BREAKS_LIST] = "SELECT " BREAK_COLS " FROM breaks WHERE tenant_id = ?1 AND"
                       BREAKS_KEYSET " ORDER BY date, id LIMIT ?5",
    /* With a person filter the planner has no statistics to choose an index by, so
     * the statement says which: a few people are a few short ranges of
     * breaks_by_person, sorted afterwards; many people are one range of
     * breaks_by_date with the person test as a filter. */
    [ST_BREAKS_LIST_FEW] = "SELECT " BREAK_COLS " FROM breaks INDEXED BY breaks_by_person"
                           " WHERE tenant_id = ?1 AND person_id IN (SELECT value FROM"
                           " json_each(?6)) AND" BREAKS_KEYSET " ORDER BY date, id LIMIT ?5",
    [ST_BREAKS_LIST_MANY] = "SELECT " BREAK_COLS " FROM breaks INDEXED BY breaks_by_date"
                            " WHERE tenant_id = ?1 AND person_id IN (SELECT value FROM"
                            " json_each(?6)) AND" BREAKS_KEYSET " ORDER BY date, id LIMIT ?5",
    /* The cap check: Enabled webhooks not past valid_until at ?2, counted in
     * webhooks_by_status alone. */
    [ST_WH_ENABLED_COUNT] = "SELECT COUNT(*) FROM webhooks INDEXED BY webhooks_by_status"
                            " WHERE tenant_id = ?1 AND status = 0 AND valid_until_ms > ?2",
    [ST_WH_INSERT] = "INSERT INTO webhooks (tenant_id, id, collection, destination_url,"
                     " ext_refs, key_blob, created_at_ms, valid_until_ms, status, reason,"
                     " from_version, partitions)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, ?9, ?10)",
    [ST_WH_GET] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = ?1 AND id = ?2",
    /* Lists, ?4 the page size and ?5 the time that decides expiry. Any status: the
     * primary key in id order. Enabled: one range of webhooks_by_status, expired
     * ones filtered out on the index entry. Disabled: the Disabled range merged in
     * id order with the expired part of the Enabled range; both arms come sorted
     * from the index, so SQLite merges them (MERGE (UNION ALL)) and stops at the
     * LIMIT without sorting. */
    [ST_WH_LIST] = "SELECT " WH_COLS " FROM webhooks WHERE tenant_id = ?1" WH_PAGE
                   " ORDER BY id LIMIT ?4",
    [ST_WH_LIST_ENABLED] = WH_BY_STATUS "0 AND valid_until_ms > ?5" WH_PAGE
                           " ORDER BY id LIMIT ?4",
    [ST_WH_LIST_DISABLED] = WH_BY_STATUS "1" WH_PAGE
                            " UNION ALL " WH_BY_STATUS "0 AND valid_until_ms <= ?5" WH_PAGE
                            " ORDER BY id LIMIT ?4",
    /* Only an Enabled webhook changes (delivery.c decides reason and times). */
    [ST_WH_SET_DISABLED] = "UPDATE webhooks SET status = 1, reason = ?3, disabled_at_ms = ?4,"
                           " until_version = ?5 WHERE tenant_id = ?1 AND id = ?2 AND status = 0",
    /* A partition's mark with its webhook's partitions, in one snapshot: one row
     * when the webhook exists (mark columns NULL when the partition has no row),
     * none when it does not; two primary-key lookups. */
    [ST_WH_MARK_GET] = "SELECT w.partitions, m.version, m.last_success_at_ms,"
                       " m.last_failure_at_ms FROM webhooks w LEFT JOIN delivery_marks m"
                       " ON m.tenant_id = w.tenant_id AND m.webhook_id = w.id AND m.part = ?3"
                       " WHERE w.tenant_id = ?1 AND w.id = ?2",
    [ST_WH_EXISTS] = "SELECT 1 FROM webhooks WHERE tenant_id = ?1 AND id = ?2",
    /* Through the partial index of Enabled webhooks; the few rows are sorted
     * afterwards. */
    [ST_WH_EXPIRING] = "SELECT tenant_id, id, valid_until_ms FROM webhooks"
                       " INDEXED BY webhooks_expiry WHERE status = 0 AND valid_until_ms <= ?1"
                       " ORDER BY tenant_id, id",
    /* A range of one collection's change log (delivery.c decides which: the pending
     * window of a partition): one range of changes_by_collection, counted from the
     * index alone (committed_at_ms is in it since migration 3). Being an aggregate
     * it answers one row, count 0 and MIN NULL when the range is empty. */
    [ST_CHANGES_COUNT] = "SELECT COUNT(*), MIN(version) FROM changes"
                         " INDEXED BY changes_by_collection WHERE tenant_id = ?1"
                         " AND collection = ?2 AND version > ?3 AND version <= ?4"
                         " AND committed_at_ms < ?5",
    /* The same range restricted to one partition's records (record_id % ?6 = ?7):
     * record_id is not in the index, so each change of the range is looked up;
     * only a webhook with more than one partition takes it. */
    [ST_CHANGES_COUNT_PART] = "SELECT COUNT(*), MIN(version) FROM changes"
                              " INDEXED BY changes_by_collection WHERE tenant_id = ?1"
                              " AND collection = ?2 AND version > ?3 AND version <= ?4"
                              " AND committed_at_ms < ?5 AND record_id % ?6 = ?7",
    /* The delivery engine's list over every tenant: the partial index of Enabled
     * webhooks, from validity end ?1 on; the few rows are sorted afterwards. */
    [ST_WH_ACTIVE] = "SELECT " WH_COLS " FROM webhooks INDEXED BY webhooks_expiry"
                     " WHERE status = 0 AND valid_until_ms > ?1 ORDER BY tenant_id, id",
    /* One partition's acks above a version: one range of the acks' primary key, in
     * record id order. */
    [ST_ACKS_ABOVE] = "SELECT record_id, version FROM delivery_acks WHERE tenant_id = ?1"
                      " AND webhook_id = ?2 AND part = ?3 AND version > ?4 ORDER BY record_id",
    /* Per record of partition ?6 of ?5, the newest attempt of status ?3 above version
     * ?4: one status range of delivery_attempts_by_webhook (with MAX(seq), SQLite
     * takes the bare columns from that row), so only that status is read, however
     * many attempts of the others the webhook has. */
    [ST_ATTEMPTS_NEWEST] = "SELECT record_id, version, attempt, next_attempt_at_ms, MAX(seq)"
                           " FROM delivery_attempts INDEXED BY delivery_attempts_by_webhook"
                           " WHERE tenant_id = ?1 AND webhook_id = ?2 AND status = ?3"
                           " AND version > ?4 AND record_id % ?5 = ?6"
                           " GROUP BY record_id ORDER BY record_id",
    [ST_ATTEMPT_INSERT] = "INSERT INTO delivery_attempts (tenant_id, webhook_id, event_id,"
                          " record_id, version, change_type, attempt, attempted_at_ms,"
                          " duration_ms, http_status, error, next_attempt_at_ms, status,"
                          " excerpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                          " ?12, ?13, ?14)",
    /* A record's acked version only rises; an ack that does not raise it writes
     * nothing. */
    [ST_ACK_RAISE] = "INSERT INTO delivery_acks (tenant_id, webhook_id, part, record_id,"
                     " version) VALUES (?1, ?2, ?3, ?4, ?5)"
                     " ON CONFLICT (tenant_id, webhook_id, part, record_id)"
                     " DO UPDATE SET version = excluded.version"
                     " WHERE excluded.version > delivery_acks.version",
    /* A partition's mark, created when missing (a webhook's creation). */
    [ST_MARK_SET] = "INSERT INTO delivery_marks (tenant_id, webhook_id, part, version,"
                    " last_success_at_ms, last_failure_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    " ON CONFLICT (tenant_id, webhook_id, part) DO UPDATE SET"
                    " version = excluded.version,"
                    " last_success_at_ms = excluded.last_success_at_ms,"
                    " last_failure_at_ms = excluded.last_failure_at_ms",
    /* One partition's acks: one range of the acks' primary key. */
    [ST_ACKS_DROP] = "DELETE FROM delivery_acks WHERE tenant_id = ?1 AND webhook_id = ?2"
                     " AND part = ?3 AND version <= ?4",
    /* The log of webhook (?1, ?2) before seq ?3, newest first, ?4 rows. Without a
     * status filter: the three status ranges of delivery_attempts_by_webhook, each
     * sorted by seq, merged (MERGE (UNION ALL)) and stopped at the LIMIT, no sort;
     * with one (?5): one range. */
    [ST_ATTEMPTS_LIST] = ATTEMPTS_BY_STATUS "0 UNION ALL " ATTEMPTS_BY_STATUS "1"
                         " UNION ALL " ATTEMPTS_BY_STATUS "2 ORDER BY seq DESC LIMIT ?4",
    [ST_ATTEMPTS_LIST_STATUS] = ATTEMPTS_BY_STATUS "?5 ORDER BY seq DESC LIMIT ?4",
    /* At most ?2 attempts older than ?1, found oldest first by time, deleted by
     * rowid. */
    /* Per tenant: the newest version committed before ?1 (0: none). */
    [ST_CHANGES_NEWEST] = "SELECT t.id, COALESCE((SELECT MAX(c.version) FROM changes c"
                          " WHERE c.tenant_id = t.id AND c.committed_at_ms < ?1), 0)"
                          " FROM tenants t ORDER BY t.id",
    /* What holds tenant ?1's change log back: each Enabled webhook's window start with
     * each partition's watermark, from the Enabled range of webhooks_by_status and
     * one range of delivery_marks' primary key per webhook (LEFT JOIN: a webhook
     * without marks still holds its window back, as a watermark of 0), and each
     * delta's floor, one range of the deltas' primary key. */
    [ST_FLOORS] = "SELECT w.tenant_id, w.from_version, m.version FROM webhooks w"
                  " INDEXED BY webhooks_by_status LEFT JOIN delivery_marks m"
                  " ON m.tenant_id = w.tenant_id AND m.webhook_id = w.id"
                  " WHERE w.tenant_id = ?1 AND w.status = 0"
                  " UNION ALL SELECT tenant_id, floor_version, floor_version FROM deltas"
                  " WHERE tenant_id = ?1",
    /* Deletes and answers the versions it deleted (the horizon is their highest). */
    [ST_CHANGES_PRUNE] = "DELETE FROM changes WHERE tenant_id = ?1 AND version IN (SELECT version"
                         " FROM changes WHERE tenant_id = ?1 AND version <= ?2 ORDER BY version"
                         " LIMIT ?3) RETURNING version",
    [ST_HORIZON_GET] = "SELECT pruned_upto FROM tenants WHERE id = ?1",
    [ST_HORIZON_RAISE] = "UPDATE tenants SET pruned_upto = ?2 WHERE id = ?1 AND pruned_upto < ?2",
    /* A read transaction on a pooled connection: its statements share one snapshot
     * (WAL: from the first read until the end). */
    [ST_READ_BEGIN] = "BEGIN DEFERRED",
    [ST_READ_END] = "COMMIT",
    [ST_DELTA_GET] = "SELECT " DELTA_COLS " FROM deltas WHERE tenant_id = ?1 AND client_id = ?2"
                     " AND collection = ?3",
    /* A new start replaces the client's delta on the collection as a whole. */
    [ST_DELTA_UPSERT] = "INSERT INTO deltas (" DELTA_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                        " ?7, ?8, ?9, ?10) ON CONFLICT (tenant_id, client_id, collection)"
                        " DO UPDATE SET id = excluded.id, date_from = excluded.date_from,"
                        " date_to = excluded.date_to, start_version = excluded.start_version,"
                        " floor_version = excluded.floor_version,"
                        " created_at_ms = excluded.created_at_ms,"
                        " last_used_at_ms = excluded.last_used_at_ms",
    /* At most ?2 deltas unused since before ?1, found by deltas_by_use. */
    [ST_DELTAS_PRUNE] = "DELETE FROM deltas WHERE (tenant_id, client_id, collection) IN"
                        " (SELECT tenant_id, client_id, collection FROM deltas"
                        " INDEXED BY deltas_by_use WHERE last_used_at_ms < ?1"
                        " ORDER BY last_used_at_ms LIMIT ?2)",
    [ST_ATTEMPTS_PRUNE] = "DELETE FROM delivery_attempts WHERE seq IN (SELECT seq"
                          " FROM delivery_attempts INDEXED BY delivery_attempts_by_time"
                          " WHERE attempted_at_ms < ?1 ORDER BY attempted_at_ms LIMIT ?2)",
    /* A chunk of webhooks disabled before ?1 (any reason; the expiry sweep marks
     * expired ones within a second), ?2 at most: their delivery state, their
     * attempt log, then the webhooks, in one job, so the same chunk goes each time.
     * No index on disabled_at_ms: the table holds at most --max-webhooks Enabled
     * webhooks per tenant and what was disabled within the retention. */
    [ST_WH_PRUNE_ACKS] = "DELETE FROM delivery_acks WHERE (tenant_id, webhook_id) IN"
                         " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE_MARKS] = "DELETE FROM delivery_marks WHERE (tenant_id, webhook_id) IN"
                          " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE_ATTEMPTS] = "DELETE FROM delivery_attempts WHERE (tenant_id, webhook_id) IN"
                             " (" WH_PRUNABLE ")",
    [ST_WH_PRUNE] = "DELETE FROM webhooks WHERE (tenant_id, id) IN (" WH_PRUNABLE ")",
};

/* ST_ATTEMPTS_LIST spells out every status. */
_Static_assert(STORE_ATTEMPT_DELIVERED == 0 && STORE_ATTEMPT_FAILED == 1 &&
                   STORE_ATTEMPT_GAVE_UP == 2,
               "ST_ATTEMPTS_LIST merges the ranges of statuses 0, 1 and 2");

/* One connection with its statement cache. A connection is used by one thread at a
 * time (the writer, or whoever took it from the read pool), so it is opened with
 * SQLITE_OPEN_NOMUTEX. */
/* The writer's connection is the transaction handle (store__tx_t) the domain layer's
 * primitives take. */
typedef struct store__tx {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST__COUNT];
    struct store__tx *next_free;
    /* The writer's only: what the open transaction's jobs took (versions and
     * change-log entries, one entry per job that used versions), handed to
     * store__committed once the COMMIT returned. */
    store__commit_t *notes;
    size_t n_notes, cap_notes;
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
    bool solo; /* runs in a transaction of its own (see writer_main) */
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

    /* Another process's commits (the import CLI beside a running server): the
     * writer connection's PRAGMA data_version changes only for those, so the writer
     * reads it every STORE_EXTERNAL_POLL_MS and reports a change (writer only). */
    int64_t data_version;
    int64_t data_version_at_ms;

    pthread_t writer;
    bool writer_started;
    sqlite__conn_t wconn;

    /* The checkpointer: copies the WAL back into the database file on its own
     * thread and connection, so the writer never pauses for it. ckpt_lock guards
     * the two flags; the writer's WAL hook sets ckpt_wanted. */
    pthread_t checkpointer;
    bool ckpt_started;
    sqlite__conn_t cconn;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    bool ckpt_wanted, ckpt_stop;
    bool ckpt_truncate; /* the WAL passed SQLITE__WAL_HARD_PAGES: fold and truncate it */

    /* Guarded by lock. disk_rc is BH_ENOSPC or BH_EDISKIO from the last write that
     * failed with a full disk or an I/O error, 0 once a write commits again;
     * disk_at_ms (monotonic) is when the disk was last tried, by a write or a probe. */
    int disk_rc;
    int64_t disk_at_ms;
    /* The disk reserve (store/reserve.c): reserve_path is NULL without one;
     * reserve_held while its blocks are allocated; reserve_wanted when the
     * checkpointer should allocate it again (after a recovery). Guarded by lock. */
    char *reserve_path;
    bool reserve_held, reserve_wanted;

    /* "<file>-serve.lock", and its descriptor holding a shared lock while this
     * process serves the store (store_options_t.serving); -1 otherwise. */
    char *serve_lock_path;
    int serve_lock_fd;

    /* Test hook (BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE): a file holding a page count the
     * writer applies as PRAGMA max_page_count before each group. NULL normally. */
    char *page_limit_file;
    int64_t page_limit_applied;

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
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return BH_ENOMEM;
    case SQLITE_FULL:
        return BH_ENOSPC;
    case SQLITE_IOERR:
        return BH_EDISKIO;
    default:
        return BH_EIO;
    }
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
    free(c->notes);
    c->notes = NULL;
    c->n_notes = c->cap_notes = 0;
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
/* WAL pages after which the checkpointer is woken (8 MiB of 8 KiB pages). */
#define SQLITE__CHECKPOINT_PAGES 1024
/* WAL pages after which the checkpointer folds the whole WAL back and truncates it,
 * waiting for readers and the writer if it must (32 MiB): passive checkpoints fell
 * behind. A full disk does the same (see checkpointer_main). */
#define SQLITE__WAL_HARD_PAGES 4096

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
        /* Only takes effect on a new, empty database (before WAL is on). */
        rc = pragma(c, "PRAGMA page_size=8192", NULL, err_msg);
        if (rc == 0)
            rc = pragma(c, "PRAGMA journal_mode=WAL", "wal", err_msg);
        if (rc == 0)
            rc = pragma(c, "PRAGMA synchronous=FULL", NULL, err_msg);
        /* 32 MiB of page cache for the writer (SQLite's default is 2 MiB): a $batch
         * chunk touches pages of six b-trees at random places, and every miss is a
         * pread. */
        if (rc == 0)
            rc = pragma(c, "PRAGMA cache_size=-32768", NULL, err_msg);
        /* Checkpoints run on the checkpointer thread, not inside the writer's
         * commits (measured: a third of $batch time went to auto-checkpoints). */
        if (rc == 0)
            rc = pragma(c, "PRAGMA wal_autocheckpoint=0", NULL, err_msg);
        char limit[64];
        snprintf(limit, sizeof(limit), "PRAGMA journal_size_limit=%d", SQLITE__WAL_LIMIT_BYTES);
        if (rc == 0)
            rc = pragma(c, limit, NULL, err_msg);
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
        int abort_rc = BH_EIO;
        /* A job alone in its transaction needs no savepoint: on failure the
         * transaction is rolled back (ok == 0 below). That matters for big jobs:
         * inside a savepoint SQLite copies every page the job modifies into the
         * sub-journal first, a cost that grows with the job. */
        bool alone = !pending->next;
        while (pending) {
            sqlite__job_t *j = pending;
            pending = j->next;
            size_t mark = c->n_notes;
            j->rc = alone ? j->fn(c, j->arg) : run_job(c, j);
            if (j->rc == 0)
                ok++;
            else
                c->n_notes = mark; /* rolled back: its versions never commit */
            if (sqlite3_get_autocommit(c->db)) {
                aborted = true;
                if (j->rc != 0)
                    abort_rc = j->rc;
                break;
            }
        }
        if (aborted) {
            log_error("store: sqlite aborted a write transaction",
                      LOG_STR("error", sqlite3_errmsg(c->db)));
            /* The jobs that had succeeded fail for the reason the transaction did
             * (a full disk, say), not for a reason of their own. */
            fail_succeeded(first, pending, abort_rc);
            c->n_notes = 0;
            continue;
        }
        if (ok == 0) {
            /* Nothing to keep: skip the fsync. */
            (void)stmt_exec(c, ST_ROLLBACK);
            c->n_notes = 0;
            return;
        }
        rc = stmt_exec(c, ST_COMMIT);
        if (rc != 0) {
            if (!sqlite3_get_autocommit(c->db))
                (void)stmt_exec(c, ST_ROLLBACK);
            fail_succeeded(first, NULL, rc);
            c->n_notes = 0;
            return;
        }
        store__committed(&s->base, c->notes, c->n_notes, ok);
        c->n_notes = 0;
        *applied += ok;
        (*commits)++;
    }
}

/* Test hook: applies the page count in s->page_limit_file as the writer's
 * PRAGMA max_page_count, so that SQLite answers SQLITE_FULL exactly as it does on a
 * full disk, and a test can lift the limit by rewriting the file. max_page_count
 * never goes below the database's current size. */
static void writer_apply_page_limit(sqlite__store_t *s)
{
    char text[32];
    FILE *f = fopen(s->page_limit_file, "r");
    if (!f)
        return;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *end;
    long long pages = strtoll(text, &end, 10);
    if (end == text || pages < 1 || pages == s->page_limit_applied)
        return;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%lld", pages);
    if (sqlite3_exec(s->wconn.db, sql, NULL, NULL, NULL) == SQLITE_OK)
        s->page_limit_applied = pages;
}

/* True for the failures that say the disk, not the request, is the problem. */
static bool is_disk_error(int rc)
{
    return rc == BH_ENOSPC || rc == BH_EDISKIO;
}

static int job_probe(sqlite__conn_t *c, void *arg);

/* Called with s->lock held after a group ran: remembers a full disk or an I/O error
 * (for readiness, and so the checkpointer folds the WAL back and truncates it), and
 * forgets it once a probe write (see sq_ping) committed. Other commits do not count:
 * one that changed nothing, or fitted in pages the file already had, proves little. */
static void writer_note_disk(sqlite__store_t *s, const sqlite__job_t *group)
{
    int disk_rc = 0;
    bool probed = false;
    for (const sqlite__job_t *j = group; j; j = j->next) {
        if (is_disk_error(j->rc))
            disk_rc = j->rc;
        else if (j->fn == job_probe && j->rc == 0)
            probed = true;
    }
    if (disk_rc != 0) {
        if (s->disk_rc == 0)
            log_error("store: writes fail until the disk recovers",
                      LOG_STR("error", err_str(disk_rc)));
        s->disk_rc = disk_rc;
        s->disk_at_ms = clock_mono_ms(s->cfg.clock);
        if (disk_rc == BH_ENOSPC && s->reserve_held) {
            /* Its blocks are what the checkpoint needs to fold the WAL back. */
            s->reserve_held = false;
            if (store__reserve_release(s->reserve_path))
                log_warn("store: the disk is full; released the disk reserve so that the "
                         "store can checkpoint and recover; free space on the disk",
                         LOG_STR("reserve", s->reserve_path),
                         LOG_INT("bytes", s->cfg.disk_reserve));
        }
    } else if (probed && s->disk_rc != 0) {
        log_info("store: a probe write succeeded; the store is ready again");
        s->disk_rc = 0;
        s->reserve_wanted = s->reserve_path != NULL && !s->reserve_held;
    }
}

/* Allocates the disk reserve (at open, and by the checkpointer after a recovery).
 * Blocks for the allocation and its fsync, without holding s->lock. */
static void reserve_take(sqlite__store_t *s)
{
    int rc = store__reserve_take(s->reserve_path, s->cfg.disk_reserve);
    pthread_mutex_lock(&s->lock);
    s->reserve_held = rc == 0;
    s->reserve_wanted = false;
    pthread_mutex_unlock(&s->lock);
    if (rc != 0)
        log_warn("store: cannot allocate the disk reserve; a full disk may need space "
                 "freed by hand before the store recovers",
                 LOG_STR("reserve", s->reserve_path), LOG_INT("bytes", s->cfg.disk_reserve),
                 LOG_STR("error", err_str(rc)));
}

/* The writer thread: sleeps until jobs are queued, takes up to max_group of them,
 * runs them as one transaction, and wakes their callers. Exits once told to stop
 * and the queue is empty. A solo job (a $batch chunk: thousands of writes that
 * already share one fsync) forms a group by itself, so it runs without a savepoint;
 * the jobs queued before and after it still commit in groups. */
/* Reads the writer connection's data_version when STORE_EXTERNAL_POLL_MS have
 * passed since the last read, and tells the subscribers when another process has
 * committed since. Called by the writer without s->lock. */
static void writer_poll_external(sqlite__store_t *s)
{
    int64_t now = clock_mono_ms(clock_system());
    if (now - s->data_version_at_ms < STORE_EXTERNAL_POLL_MS)
        return;
    s->data_version_at_ms = now;
    int64_t v = 0;
    if (query_int(&s->wconn, ST_DATA_VERSION, &v) != 0)
        return;
    bool changed = s->data_version != 0 && v != s->data_version;
    s->data_version = v;
    if (changed)
        store__external_commit(&s->base);
}

static void *writer_main(void *arg)
{
    sqlite__store_t *s = arg;
    pthread_setname_np(pthread_self(), "bh-store-writer");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += STORE_EXTERNAL_POLL_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->work_cond, &s->lock, &until);
            if (!s->head && !s->stop) {
                pthread_mutex_unlock(&s->lock);
                writer_poll_external(s);
                pthread_mutex_lock(&s->lock);
            }
        }
        if (!s->head)
            break;

        sqlite__job_t *group = s->head, *last = group;
        for (int n = 1; !group->solo && n < s->cfg.max_group && last->next &&
                        !last->next->solo;
             n++)
            last = last->next;
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->lock);

        if (s->page_limit_file)
            writer_apply_page_limit(s);
        writer_poll_external(s); /* a busy writer still notices other processes */
        uint64_t applied = 0, commits = 0;
        run_group(s, group, &applied, &commits);

        pthread_mutex_lock(&s->lock);
        s->writes += applied;
        s->commits += commits;
        writer_note_disk(s, group);
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
static int submit_job(sqlite__store_t *s, sqlite__job_fn fn, void *arg, bool solo)
{
    sqlite__job_t job = { .fn = fn, .arg = arg, .rc = 0, .done = false, .solo = solo,
                          .next = NULL };
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

static int submit(sqlite__store_t *s, sqlite__job_fn fn, void *arg)
{
    return submit_job(s, fn, arg, false);
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

/* A signing key row as stored: the secret still sealed (migration 5). */
typedef struct {
    store_signing_key_t k; /* secret zero until key_open */
    unsigned char sealed[CRYPTO_SEALED_MAX];
    size_t sealed_len;
} key_row_t;

_Static_assert(sizeof(((store_signing_key_t *)0)->secret) == CRYPTO_WEBHOOK_KEY_LEN,
               "signing keys are sealed with crypto_key_seal");

static int row_signing_key(sqlite3_stmt *st, key_row_t *r)
{
    memset(r, 0, sizeof(*r));
    r->k.created_at_ms = sqlite3_column_int64(st, 2);
    r->k.retired_at_ms = sqlite3_column_int64(st, 3);
    int rc = col_text(st, 0, r->k.kid, sizeof(r->k.kid));
    if (rc != 0)
        return rc;
    const void *sealed = sqlite3_column_blob(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    if (!sealed || n <= 0 || n > (int)sizeof(r->sealed)) {
        log_error("store: signing key secret has the wrong size", LOG_INT("length", n));
        return BH_EIO;
    }
    memcpy(r->sealed, sealed, (size_t)n);
    r->sealed_len = (size_t)n;
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

/* ---- signing keys at rest ---------------------------------------------------------- *
 *
 * A token signing key is sealed like a webhook key (crypto.h), bound to tenant 0 and
 * the id "signing-key/<kid>": no webhook has tenant 0 nor such an id, so a sealed key
 * of one kind copied into a row of the other does not open. */

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

/* Fills r->k.secret. BH_EINVAL when the key is sealed and m is unset, BH_EAUTH when
 * m is another master key (or the row was tampered with). */
static int key_open(const crypto_master_t *m, key_row_t *r)
{
    char id[64];
    key_bound_id(r->k.kid, id, sizeof(id));
    return crypto_key_open(m, 0, id, r->sealed, r->sealed_len, r->k.secret);
}

/* key_open for the signing key functions: BH_EINVAL (logged) when the key does not
 * open, that is when it is sealed and the store was opened without the master key
 * (store_open checked every key against a master key it was given). */
static int key_open_or_einval(const crypto_master_t *m, key_row_t *r)
{
    if (key_open(m, r) == 0)
        return 0;
    log_error(m->set ? "store: a token signing key does not open with this master key"
                     : "store: the token signing keys are sealed and no master key is set",
              LOG_STR("kid", r->k.kid));
    return BH_EINVAL;
}

/* ---- health and stats ------------------------------------------------------------- */

/* The probe write: a row with 64 KiB of zeros, deleted again in the same
 * transaction. The row needs pages the file does not have when it has none free,
 * which a full disk (or max_page_count) refuses, and the commit appends to the WAL.
 * It uses schema_migrations so that probing needs no table of its own; version -1
 * never commits, so no reader sees it. */
static int job_probe(sqlite__conn_t *c, void *arg)
{
    (void)arg;
    static const char sql[] = "INSERT INTO schema_migrations (version, applied_at)"
                              " VALUES (-1, zeroblob(65536));"
                              "DELETE FROM schema_migrations WHERE version = -1";
    int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? 0 : map_error(c->db, src, "probe write");
}

/* 0 when no write failed for the disk since the last probe; else, at most once per
 * STORE_PROBE_INTERVAL_MS (counting failed writes), a probe write, and its result;
 * between probes the last disk error. Called by /readyz and by the checkpointer, so
 * the store recovers by itself even when nobody asks whether it is ready. */
static int probe_if_due(sqlite__store_t *s)
{
    pthread_mutex_lock(&s->lock);
    int rc = s->disk_rc;
    bool probe = false;
    if (rc != 0) {
        int64_t now = clock_mono_ms(s->cfg.clock);
        if (now - s->disk_at_ms >= STORE_PROBE_INTERVAL_MS) {
            s->disk_at_ms = now; /* concurrent callers do not probe too */
            probe = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (probe)
        rc = submit_job(s, job_probe, NULL, true);
    return rc;
}

/* Readiness: a trivial query on a read connection proves the file is readable; after
 * a write failed for the disk, a probe write (at most one per
 * STORE_PROBE_INTERVAL_MS, counting failed writes) proves it is writable again. */
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
    if (rc != 0)
        return rc;

    return probe_if_due(s);
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
    out->disk_rc = s->disk_rc;
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

/* Every row of a statement with no parameter, or with one integer ?1 (param not
 * NULL), on a pooled read connection. */
static int read_all(store_t *base, int id, const int64_t *param, row_fn decode,
                    size_t elem_size, void **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, id, &rc);
    if (st) {
        if (param)
            sqlite3_bind_int64(st, 1, *param);
        rc = query_all(c, st, id, decode, elem_size, out, n_out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_tenant_list(store_t *base, store_tenant_t **out, size_t *n_out)
{
    return read_all(base, ST_TENANT_LIST, NULL, decode_tenant, sizeof(**out), (void **)out,
                    n_out);
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
    return read_all(base, ST_CLIENT_LIST, &tenant_id, decode_client, sizeof(**out),
                    (void **)out, n_out);
}

static int sq_client_list_revoked(store_t *base, store_client_t **out, size_t *n_out)
{
    return read_all(base, ST_CLIENT_LIST_REVOKED, NULL, decode_client, sizeof(**out),
                    (void **)out, n_out);
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
    if (rows) /* NULL when there is no key */
        explicit_bzero(rows, n * sizeof(*rows));
    free(rows);
    return rc;
}

/* Inserts k, sealed under m, as the active key (retired_at_ms NULL). */
static int key_insert(sqlite__conn_t *c, const crypto_master_t *m, const store_signing_key_t *k,
                      int64_t created_at_ms)
{
    unsigned char sealed[CRYPTO_SEALED_MAX];
    size_t sealed_len = 0;
    int rc = key_seal(m, k, sealed, &sealed_len);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, k->kid, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, sealed, (int)sealed_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, created_at_ms);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_KEY_INSERT]);
    stmt_done(st);
    return rc;
}

typedef struct {
    const crypto_master_t *master;
    const store_signing_key_t *k;
    int64_t created_at_ms;
    store_signing_key_t *active; /* ensure only */
} signing_key_arg_t;

/* The active key into *out, opened. BH_ENOTFOUND when there is none, BH_EINVAL when
 * it is sealed and m does not open it. */
static int key_active(sqlite__conn_t *c, const crypto_master_t *m, store_signing_key_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_KEY_ACTIVE, &rc);
    if (!st)
        return rc;
    key_row_t row;
    rc = query_one(c, st, ST_KEY_ACTIVE, decode_signing_key, &row);
    if (rc == 0) {
        rc = key_open_or_einval(m, &row);
        *out = row.k;
        explicit_bzero(&row, sizeof(row));
    }
    return rc;
}

/* Retires the active key and inserts the new one in one savepoint: a duplicate kid
 * undoes the retirement too, so there is never a moment without an active key. A
 * store whose active key is sealed gets no key in the clear (opened without the
 * master key): BH_EINVAL. */
static int job_signing_key_add(sqlite__conn_t *c, void *arg)
{
    signing_key_arg_t *a = arg;
    store_signing_key_t old;
    int rc = key_active(c, a->master, &old);
    explicit_bzero(&old, sizeof(old));
    if (rc != 0 && rc != BH_ENOTFOUND)
        return rc;
    rc = 0;
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
    return key_insert(c, a->master, a->k, a->created_at_ms);
}

/* created_at_ms of 0 means "now". */
static int sq_signing_key_add(store_t *base, const store_signing_key_t *k)
{
    sqlite__store_t *s = from_base(base);
    signing_key_arg_t a = { &s->cfg.master, k,
                            k->created_at_ms ? k->created_at_ms : clock_now_ms(s->cfg.clock),
                            NULL };
    return submit(s, job_signing_key_add, &a);
}

/* Check and insert happen in one writer job, inside one write transaction: no other
 * thread of this process and no other process on the file can slip a key in between
 * (and the unique index on active keys would refuse it if one did). */
static int job_signing_key_ensure(sqlite__conn_t *c, void *arg)
{
    signing_key_arg_t *a = arg;
    int rc = key_active(c, a->master, a->active);
    if (rc != BH_ENOTFOUND)
        return rc;
    rc = key_insert(c, a->master, a->k, a->created_at_ms);
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
    signing_key_arg_t a = { &s->cfg.master, candidate,
                            candidate->created_at_ms ? candidate->created_at_ms
                                                     : clock_now_ms(s->cfg.clock),
                            active };
    return submit(s, job_signing_key_ensure, &a);
}

/* ---- breaks data: shared helpers ------------------------------------------------- */

/* Up to this many people, a person filter uses breaks_by_person (see ST_BREAKS_LIST_FEW). */
#define FEW_PERSONS 32

/* Runs a cached statement that returns no rows; the caller has bound it. */
static int step_done(sqlite__conn_t *c, sqlite3_stmt *st, int id)
{
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : map_error(c->db, src, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* Like step_done for a statement that answers at most one integer: *found tells
 * whether it did. */
static int step_int(sqlite__conn_t *c, sqlite3_stmt *st, int id, int64_t *out, bool *found)
{
    int src = sqlite3_step(st);
    int rc = 0;
    *found = src == SQLITE_ROW;
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* A cached statement with its first parameters, tenant and record id, bound. */
static sqlite3_stmt *stmt_tenant_id(sqlite__conn_t *c, int id, int64_t tenant_id,
                                    int64_t record_id, int *rc)
{
    sqlite3_stmt *st = stmt_get(c, id, rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_int64(st, 2, record_id);
    }
    return st;
}

/* Appends "[id,id,...]" to b: the id set the json_each statements read. */
static int ids_json(buf_t *b, const int64_t *ids, size_t n)
{
    int rc = buf_append_char(b, '[');
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = buf_printf(b, i ? ",%lld" : "%lld", (long long)ids[i]);
    if (rc == 0)
        rc = buf_append_char(b, ']');
    return rc;
}

/* ---- breaks data: rows -------------------------------------------------------------- */

/* A break from BREAK_COLS starting at column col. */
static void row_break(sqlite3_stmt *st, int col, model_break_t *b)
{
    memset(b, 0, sizeof(*b));
    b->id = sqlite3_column_int64(st, col);
    b->version = (uint64_t)sqlite3_column_int64(st, col + 1);
    b->person_id = sqlite3_column_int64(st, col + 2);
    b->definition_id = sqlite3_column_int64(st, col + 3);
    b->date = sqlite3_column_int(st, col + 4);
    b->calculated = sqlite3_column_int(st, col + 5);
    b->calculated_given = sqlite3_column_int(st, col + 6) != 0;
    b->clocked = sqlite3_column_int(st, col + 7);
    b->start = sqlite3_column_int(st, col + 8);
    b->end = sqlite3_column_int(st, col + 9);
    b->taken = sqlite3_column_int(st, col + 10) != 0;
    b->window_taken = sqlite3_column_int(st, col + 11) == 0;
}

static int decode_break(sqlite3_stmt *st, void *out)
{
    row_break(st, 0, out);
    return 0;
}

/* Binds b as ?1..?13 of ST_BREAK_INSERT / ST_BREAK_UPDATE (same numbering); the
 * parameters ST_BREAK_UPDATE_VALUES does not use stay unused. */
static void bind_break(sqlite3_stmt *st, int64_t tenant_id, const model_break_t *b)
{
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_int64(st, 2, b->id);
    sqlite3_bind_int64(st, 3, (int64_t)b->version);
    sqlite3_bind_int64(st, 4, b->person_id);
    sqlite3_bind_int64(st, 5, b->definition_id);
    sqlite3_bind_int(st, 6, b->date);
    sqlite3_bind_int(st, 7, b->calculated);
    sqlite3_bind_int(st, 8, b->calculated_given);
    sqlite3_bind_int(st, 9, b->clocked);
    sqlite3_bind_int(st, 10, b->start);
    sqlite3_bind_int(st, 11, b->end);
    sqlite3_bind_int(st, 12, b->taken);
    sqlite3_bind_int(st, 13, !b->window_taken);
}

/* A definition from DEF_COLS. */
static int row_definition(sqlite3_stmt *st, model_definition_t *d)
{
    memset(d, 0, sizeof(*d));
    d->id = sqlite3_column_int64(st, 0);
    d->version = (uint64_t)sqlite3_column_int64(st, 1);
    d->paid = sqlite3_column_int(st, 2);
    d->minimum = sqlite3_column_int(st, 3);
    d->maximum = sqlite3_column_int(st, 4);
    d->if_not_clocked = sqlite3_column_int(st, 5);
    d->uninterrupted = sqlite3_column_int(st, 6) != 0;
    int rc = col_text(st, 7, d->name.def, sizeof(d->name.def));
    if (rc == 0)
        rc = store__texts_decode((const char *)sqlite3_column_text(st, 8), "name_tr", &d->name);
    if (rc == 0)
        rc = col_text(st, 9, d->friendly_name.def, sizeof(d->friendly_name.def));
    if (rc == 0)
        rc = store__texts_decode((const char *)sqlite3_column_text(st, 10), "friendly_tr",
                                 &d->friendly_name);
    /* NULL: the bound is not set. */
    d->has_earliest = sqlite3_column_type(st, 11) != SQLITE_NULL;
    d->earliest = sqlite3_column_int(st, 11);
    d->has_latest = sqlite3_column_type(st, 12) != SQLITE_NULL;
    d->latest = sqlite3_column_int(st, 12);
    return rc;
}

static int decode_definition(sqlite3_stmt *st, void *out)
{
    return row_definition(st, out);
}

/* Steps a PERSON_SELECT statement into a malloc'd array of people, one per id (rows
 * come ordered by id, then reference name). */
static int query_people(sqlite__conn_t *c, sqlite3_stmt *st, int id, model_person_t **out,
                        size_t *n_out)
{
    model_person_t *arr = NULL;
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
        int64_t pid = sqlite3_column_int64(st, 0);
        if (n == 0 || arr[n - 1].id != pid) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                model_person_t *narr = realloc(arr, ncap * sizeof(*arr));
                if (!narr) {
                    rc = BH_ENOMEM;
                    break;
                }
                arr = narr;
                cap = ncap;
            }
            memset(&arr[n], 0, sizeof(arr[n]));
            arr[n].id = pid;
            arr[n].version = (uint64_t)sqlite3_column_int64(st, 1);
            n++;
        }
        if (sqlite3_column_type(st, 2) == SQLITE_NULL)
            continue;
        model_person_t *p = &arr[n - 1];
        if (p->n_refs == MODEL_REFS_MAX) {
            log_error("store: a person has more references than a record holds",
                      LOG_INT("person", pid));
            rc = BH_EIO;
            break;
        }
        model_ref_t *r = &p->refs[p->n_refs++];
        rc = col_text(st, 2, r->name, sizeof(r->name));
        if (rc == 0)
            rc = col_text(st, 3, r->value, sizeof(r->value));
        if (rc != 0)
            break;
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

/* One person into *out; BH_ENOTFOUND when absent. */
static int person_read(sqlite__conn_t *c, int64_t tenant_id, int64_t id, model_person_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_PERSON_GET, tenant_id, id, &rc);
    if (!st)
        return rc;
    model_person_t *arr = NULL;
    size_t n = 0;
    rc = query_people(c, st, ST_PERSON_GET, &arr, &n);
    if (rc == 0 && n == 0)
        rc = BH_ENOTFOUND;
    if (rc == 0)
        *out = arr[0];
    free(arr);
    return rc;
}

/* ---- breaks data: reads ----------------------------------------------------------- */

static int sq_person_get(store_t *base, int64_t tenant_id, int64_t id, model_person_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    rc = person_read(c, tenant_id, id, out);
    reader_put(s, c);
    return rc;
}

static int sq_people_get_many(store_t *base, int64_t tenant_id, const int64_t *ids, size_t n,
                              model_person_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    buf_t set;
    buf_init(&set, n * 24 + 8);
    int rc = ids_json(&set, ids, n);
    if (rc != 0) {
        buf_deinit(&set);
        return rc;
    }
    sqlite__conn_t *c;
    rc = reader_take(s, &c);
    if (rc == 0) {
        sqlite3_stmt *st = stmt_get(c, ST_PEOPLE_MANY, &rc);
        if (st) {
            sqlite3_bind_int64(st, 1, tenant_id);
            sqlite3_bind_text(st, 2, buf_cstr(&set), (int)set.len, SQLITE_STATIC);
            rc = query_people(c, st, ST_PEOPLE_MANY, out, n_out);
        }
        reader_put(s, c);
    }
    buf_deinit(&set);
    return rc;
}

static int sq_definition_get(store_t *base, int64_t tenant_id, int64_t id,
                             model_definition_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_DEF_GET, tenant_id, id, &rc);
    if (st)
        rc = query_one(c, st, ST_DEF_GET, decode_definition, out);
    reader_put(s, c);
    return rc;
}

static int64_t limit_arg(size_t limit)
{
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

static int sq_definitions_list(store_t *base, int64_t tenant_id, int64_t after_id,
                               size_t limit, model_definition_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_DEF_LIST, tenant_id, after_id, &rc);
    if (st) {
        sqlite3_bind_int64(st, 3, limit_arg(limit));
        rc = query_all(c, st, ST_DEF_LIST, decode_definition, sizeof(**out), (void **)out,
                       n_out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_break_get(store_t *base, int64_t tenant_id, int64_t id, model_break_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_BREAK_GET, tenant_id, id, &rc);
    if (st)
        rc = query_one(c, st, ST_BREAK_GET, decode_break, out);
    reader_put(s, c);
    return rc;
}

/* The keyset start is the later of the page's "after" point and the range start;
 * (date_from, INT64_MIN) stands for "date >= date_from", ids being >= 1. */
static int sq_breaks_list(store_t *base, int64_t tenant_id, const store_breaks_query_t *q,
                          model_break_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    int32_t from_date = q->date_from;
    int64_t from_id = INT64_MIN;
    if (q->has_after && q->after_date >= q->date_from) {
        from_date = q->after_date;
        from_id = q->after_id;
    }
    int id = !q->persons ? ST_BREAKS_LIST
             : q->n_persons <= FEW_PERSONS ? ST_BREAKS_LIST_FEW : ST_BREAKS_LIST_MANY;
    buf_t set;
    buf_init(&set, q->n_persons * 24 + 8);
    int rc = q->persons ? ids_json(&set, q->persons, q->n_persons) : 0;
    sqlite__conn_t *c = NULL;
    if (rc == 0)
        rc = reader_take(s, &c);
    if (rc == 0) {
        sqlite3_stmt *st = stmt_get(c, id, &rc);
        if (st) {
            sqlite3_bind_int64(st, 1, tenant_id);
            sqlite3_bind_int(st, 2, from_date);
            sqlite3_bind_int64(st, 3, from_id);
            sqlite3_bind_int(st, 4, q->date_to);
            sqlite3_bind_int64(st, 5, limit_arg(q->limit));
            if (q->persons)
                sqlite3_bind_text(st, 6, buf_cstr(&set), (int)set.len, SQLITE_STATIC);
            rc = query_all(c, st, id, decode_break, sizeof(**out), (void **)out, n_out);
        }
        reader_put(s, c);
    }
    buf_deinit(&set);
    return rc;
}

/* The tenant's prune horizon (0 for a missing tenant), on any connection. */
static int horizon_read(sqlite__conn_t *c, int64_t tenant_id, uint64_t *out, bool *found)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_HORIZON_GET, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    int64_t v = 0;
    rc = step_int(c, st, ST_HORIZON_GET, &v, found);
    *out = (uint64_t)v;
    return rc;
}

/* Not query_all: each row owns a malloc'd body, freed with the array on error. The
 * horizon and the rows are read in one read transaction, one snapshot. */
static int sq_changes_after(store_t *base, int64_t tenant_id, store_collection_t coll,
                            uint64_t after, size_t limit, store_change_t **out, size_t *n_out,
                            uint64_t *horizon)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    rc = stmt_exec(c, ST_READ_BEGIN);
    bool in_tx = rc == 0, found = false;
    if (rc == 0)
        rc = horizon_read(c, tenant_id, horizon, &found);
    sqlite3_stmt *st = rc == 0 ? stmt_tenant_id(c, ST_CHANGES_AFTER, tenant_id, (int64_t)coll,
                                                &rc)
                               : NULL;
    store_change_t *arr = NULL;
    size_t n = 0, cap = 0;
    if (st) {
        sqlite3_bind_int64(st, 3, (int64_t)after);
        sqlite3_bind_int64(st, 4, limit_arg(limit));
        for (;;) {
            int src = sqlite3_step(st);
            if (src == SQLITE_DONE)
                break;
            if (src != SQLITE_ROW) {
                rc = map_error(c->db, src, stmt_sql[ST_CHANGES_AFTER]);
                break;
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                store_change_t *narr = realloc(arr, ncap * sizeof(*arr));
                if (!narr) {
                    rc = BH_ENOMEM;
                    break;
                }
                arr = narr;
                cap = ncap;
            }
            store_change_t *ch = &arr[n];
            ch->version = (uint64_t)sqlite3_column_int64(st, 0);
            ch->collection = (store_collection_t)sqlite3_column_int(st, 1);
            ch->type = (store_change_type_t)sqlite3_column_int(st, 2);
            ch->record_id = sqlite3_column_int64(st, 3);
            ch->date = sqlite3_column_int(st, 4); /* NULL reads as 0 */
            ch->committed_at_ms = sqlite3_column_int64(st, 5);
            ch->has_prev_date = sqlite3_column_type(st, 7) != SQLITE_NULL;
            ch->prev_date = sqlite3_column_int(st, 7); /* NULL reads as 0 */
            const unsigned char *body = sqlite3_column_text(st, 6);
            size_t len = (size_t)sqlite3_column_bytes(st, 6);
            ch->body = body ? malloc(len + 1) : NULL;
            if (!ch->body) {
                rc = BH_ENOMEM;
                break;
            }
            memcpy(ch->body, body, len);
            ch->body[len] = '\0';
            n++;
        }
        stmt_done(st);
    }
    /* A read transaction has nothing to keep: ending it only releases the snapshot. */
    if (in_tx) {
        int end = stmt_exec(c, ST_READ_END);
        if (rc == 0)
            rc = end;
    }
    reader_put(s, c);
    if (rc != 0) {
        store_changes_free(arr, n);
        return rc;
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int sq_tenant_version(store_t *base, int64_t tenant_id, uint64_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_VERSION_GET, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        int64_t v = 0;
        bool found;
        rc = step_int(c, st, ST_VERSION_GET, &v, &found);
        if (rc == 0 && !found)
            rc = BH_ENOTFOUND;
        if (rc == 0)
            *out = (uint64_t)v;
    }
    reader_put(s, c);
    return rc;
}

/* ---- write transactions ------------------------------------------------------------ *
 * The domain layer's writes (store/writes.c, store/delivery.c) run as writer jobs:
 * the transaction handle a primitive takes is the writer's connection itself. */

typedef struct tx_job {
    store__tx_fn fn;
    void *arg;
} tx_job_t;

static int job_tx(sqlite__conn_t *c, void *arg)
{
    tx_job_t *j = arg;
    return j->fn(c, j->arg);
}

static int sq_run_write(store_t *base, store__tx_fn fn, void *arg, bool solo)
{
    tx_job_t j = { fn, arg };
    return submit_job(from_base(base), job_tx, &j, solo);
}

/* Kept in c->notes until run_group hands them to store__committed after COMMIT (or
 * drops them with a job that rolled back). */
static int sq_tx_note(store__tx_t *c, const store__commit_t *note)
{
    if (c->n_notes == c->cap_notes) {
        size_t cap = c->cap_notes ? c->cap_notes * 2 : 64;
        store__commit_t *p = realloc(c->notes, cap * sizeof(*p));
        if (!p)
            return BH_ENOMEM;
        c->notes = p;
        c->cap_notes = cap;
    }
    c->notes[c->n_notes++] = *note;
    return 0;
}

/* The single writer is the tenant's write lock: nothing to take. */
static int sq_counter_get(store__tx_t *c, int64_t tenant_id, uint64_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_VERSION_GET, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    int64_t v = 0;
    bool found;
    rc = step_int(c, st, ST_VERSION_GET, &v, &found);
    if (rc == 0 && !found)
        rc = BH_ENOTFOUND;
    *out = (uint64_t)v;
    return rc;
}

static int sq_counter_set(store__tx_t *c, int64_t tenant_id, uint64_t version)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_VERSION_SET, tenant_id, (int64_t)version, &rc);
    return st ? step_done(c, st, ST_VERSION_SET) : rc;
}

static int sq_changes_append(store__tx_t *c, int64_t tenant_id, const store__change_row_t *rows,
                             size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_CHANGE_INSERT, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        const store__change_row_t *r = &rows[i];
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_int64(st, 2, (int64_t)r->version);
        sqlite3_bind_int(st, 3, (int)r->collection);
        sqlite3_bind_int(st, 4, (int)r->type);
        sqlite3_bind_int64(st, 5, r->record_id);
        if (r->has_date)
            sqlite3_bind_int(st, 6, r->date);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(st, 7, r->committed_at_ms);
        sqlite3_bind_text(st, 8, r->body, (int)r->body_len, SQLITE_STATIC);
        if (r->has_prev_date)
            sqlite3_bind_int(st, 9, r->prev_date);
        else
            sqlite3_bind_null(st, 9);
        rc = step_done(c, st, ST_CHANGE_INSERT);
    }
    return rc;
}

/* ---- write primitives: people -------------------------------------------------------- */

/* Each of ids[0..n) of the tenant through statement id (bound to tenant and id) and
 * decode, into out[i] (elements of size bytes); found[i] tells whether it exists. */
static int rows_read(store__tx_t *c, int id, row_fn decode, int64_t tenant_id,
                     const int64_t *ids, size_t n, void *out, size_t size, bool *found)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, id, tenant_id, ids[i], &rc);
        if (st)
            rc = query_one(c, st, id, decode, (char *)out + i * size);
        found[i] = rc == 0;
        if (rc == BH_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

static int sq_people_read(store__tx_t *c, int64_t tenant_id, const int64_t *ids, size_t n,
                          model_person_t *out, bool *found)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = person_read(c, tenant_id, ids[i], &out[i]);
        found[i] = rc == 0;
        if (rc == BH_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

static int sq_people_exist(store__tx_t *c, int64_t tenant_id, const int64_t *ids, size_t n,
                           bool *found)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, ST_PERSON_EXISTS, tenant_id, ids[i], &rc);
        int64_t one = 0;
        if (st)
            rc = step_int(c, st, ST_PERSON_EXISTS, &one, &found[i]);
    }
    return rc;
}

static int sq_ref_owners(store__tx_t *c, int64_t tenant_id, const model_ref_t *refs, size_t n,
                         int64_t *owner)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_REF_OWNER, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, refs[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, refs[i].value, -1, SQLITE_STATIC);
        bool found;
        owner[i] = 0;
        rc = step_int(c, st, ST_REF_OWNER, &owner[i], &found);
        if (!found)
            owner[i] = 0;
    }
    return rc;
}

static int sq_people_write(store__tx_t *c, int64_t tenant_id, const model_person_t *p, size_t n)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        sqlite3_stmt *st = stmt_tenant_id(c, ST_PERSON_UPSERT, tenant_id, p[k].id, &rc);
        if (st) {
            sqlite3_bind_int64(st, 3, (int64_t)p[k].version);
            rc = step_done(c, st, ST_PERSON_UPSERT);
        }
        if (rc == 0) {
            st = stmt_tenant_id(c, ST_REFS_DELETE, tenant_id, p[k].id, &rc);
            if (st)
                rc = step_done(c, st, ST_REFS_DELETE);
        }
        for (size_t i = 0; rc == 0 && i < p[k].n_refs; i++) {
            st = stmt_tenant_id(c, ST_REF_INSERT, tenant_id, p[k].id, &rc);
            if (!st)
                break;
            sqlite3_bind_text(st, 3, p[k].refs[i].name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, p[k].refs[i].value, -1, SQLITE_STATIC);
            rc = step_done(c, st, ST_REF_INSERT);
        }
    }
    return rc;
}

/* Runs statement id, bound with (tenant, ids[i]), once per id. */
static int exec_per_id(sqlite__conn_t *c, int id, int64_t tenant_id, const int64_t *ids,
                       size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, id, tenant_id, ids[i], &rc);
        if (st)
            rc = step_done(c, st, id);
    }
    return rc;
}

static int sq_people_delete(store__tx_t *c, int64_t tenant_id, const int64_t *ids, size_t n)
{
    int rc = exec_per_id(c, ST_REFS_DELETE, tenant_id, ids, n);
    return rc == 0 ? exec_per_id(c, ST_PERSON_DELETE, tenant_id, ids, n) : rc;
}

static int sq_uses_count(store__tx_t *c, int64_t tenant_id, store__uses_t kind,
                         const int64_t *ids, size_t n, int64_t *out)
{
    int id = kind == STORE__USES_PERSON ? ST_PERSON_USES : ST_DEF_USES;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, id, tenant_id, ids[i], &rc);
        bool found;
        out[i] = 0;
        if (st)
            rc = step_int(c, st, id, &out[i], &found);
    }
    return rc;
}

/* ---- write primitives: definitions ---------------------------------------------------- */

static int sq_definitions_read(store__tx_t *c, int64_t tenant_id, const int64_t *ids, size_t n,
                               model_definition_t *out, bool *found)
{
    return rows_read(c, ST_DEF_GET, decode_definition, tenant_id, ids, n, out, sizeof(*out),
                     found);
}

static int sq_definition_calcs_read(store__tx_t *c, int64_t tenant_id, const int64_t *ids,
                                    size_t n, store__def_calc_t *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, ST_DEF_CALC, tenant_id, ids[i], &rc);
        if (!st)
            break;
        store__def_calc_t *e = &out[i];
        *e = (store__def_calc_t){ .id = ids[i] };
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            e->exists = true;
            e->paid = sqlite3_column_int(st, 0);
            e->minimum = sqlite3_column_int(st, 1);
            e->maximum = sqlite3_column_int(st, 2);
            e->if_not_clocked = sqlite3_column_int(st, 3);
            e->uninterrupted = sqlite3_column_int(st, 4) != 0;
            e->has_earliest = sqlite3_column_type(st, 5) != SQLITE_NULL;
            e->earliest = sqlite3_column_int(st, 5);
            e->has_latest = sqlite3_column_type(st, 6) != SQLITE_NULL;
            e->latest = sqlite3_column_int(st, 6);
        } else if (src != SQLITE_DONE) {
            rc = map_error(c->db, src, stmt_sql[ST_DEF_CALC]);
        }
        stmt_done(st);
    }
    return rc;
}

static int sq_definitions_write(store__tx_t *c, int64_t tenant_id,
                                const store__definition_row_t *rows, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const model_definition_t *d = rows[i].d;
        sqlite3_stmt *st = stmt_tenant_id(c, ST_DEF_UPSERT, tenant_id, d->id, &rc);
        if (!st)
            break;
        sqlite3_bind_int64(st, 3, (int64_t)d->version);
        sqlite3_bind_int(st, 4, d->paid);
        sqlite3_bind_int(st, 5, d->minimum);
        sqlite3_bind_int(st, 6, d->maximum);
        sqlite3_bind_int(st, 7, d->if_not_clocked);
        sqlite3_bind_int(st, 8, d->uninterrupted);
        sqlite3_bind_text(st, 9, d->name.def, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, rows[i].name_tr, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, d->friendly_name.def, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, rows[i].friendly_tr, -1, SQLITE_STATIC);
        if (d->has_earliest)
            sqlite3_bind_int(st, 13, d->earliest);
        else
            sqlite3_bind_null(st, 13);
        if (d->has_latest)
            sqlite3_bind_int(st, 14, d->latest);
        else
            sqlite3_bind_null(st, 14);
        rc = step_done(c, st, ST_DEF_UPSERT);
    }
    return rc;
}

static int sq_definitions_delete(store__tx_t *c, int64_t tenant_id, const int64_t *ids,
                                 size_t n)
{
    return exec_per_id(c, ST_DEF_DELETE, tenant_id, ids, n);
}

/* The rows are read and the statement reset before the caller writes any of them,
 * so no update runs under an open read of the same table. */
static int sq_breaks_computed(store__tx_t *c, int64_t tenant_id, int64_t def_id,
                              int64_t after_id, size_t limit, model_break_t *out, size_t *n_out)
{
    int rc = 0;
    *n_out = 0;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_DEF_COMPUTED, tenant_id, def_id, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 3, after_id);
    sqlite3_bind_int64(st, 4, limit_arg(limit));
    size_t n = 0;
    int src = SQLITE_DONE;
    while (n < limit && (src = sqlite3_step(st)) == SQLITE_ROW)
        row_break(st, 0, &out[n++]);
    if (n < limit && src != SQLITE_DONE)
        rc = map_error(c->db, src, stmt_sql[ST_DEF_COMPUTED]);
    stmt_done(st);
    *n_out = n;
    return rc;
}

/* ---- write primitives: breaks --------------------------------------------------------- */

/* One ST_BREAK_PROBE per break: whether its person exists and its current row. */
static int sq_breaks_probe(store__tx_t *c, int64_t tenant_id, store__break_probe_t *p, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_BREAK_PROBE, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_int64(st, 2, p[i].id);
        sqlite3_bind_int64(st, 3, p[i].person_id);
        int src = sqlite3_step(st);
        p[i].person_exists = p[i].exists = false;
        if (src == SQLITE_ROW) {
            p[i].person_exists = sqlite3_column_int(st, 0) != 0;
            p[i].exists = sqlite3_column_type(st, 1) != SQLITE_NULL;
            if (p[i].exists)
                row_break(st, 1, &p[i].cur);
        } else {
            rc = map_error(c->db, src == SQLITE_DONE ? SQLITE_ERROR : src,
                           stmt_sql[ST_BREAK_PROBE]);
        }
        stmt_done(st);
    }
    return rc;
}

static int sq_breaks_read(store__tx_t *c, int64_t tenant_id, const int64_t *ids, size_t n,
                          model_break_t *out, bool *found)
{
    return rows_read(c, ST_BREAK_GET, decode_break, tenant_id, ids, n, out, sizeof(*out), found);
}

/* An update that leaves every indexed column alone takes ST_BREAK_UPDATE_VALUES:
 * SQLite rewrites the entries of every index with a column in the SET list. */
static int sq_breaks_write(store__tx_t *c, int64_t tenant_id, const store__break_row_t *rows,
                           size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const model_break_t *b = &rows[i].b, *prev = &rows[i].prev;
        int id;
        switch (rows[i].kind) {
        case STORE__BREAK_INSERT:
            id = ST_BREAK_INSERT;
            break;
        case STORE__BREAK_UPDATE:
            id = prev->person_id == b->person_id && prev->definition_id == b->definition_id &&
                         prev->date == b->date && prev->calculated_given == b->calculated_given &&
                         prev->window_taken == b->window_taken
                     ? ST_BREAK_UPDATE_VALUES
                     : ST_BREAK_UPDATE;
            break;
        case STORE__BREAK_SET_DERIVED:
            id = ST_BREAK_SET_DERIVED;
            break;
        case STORE__BREAK_SET_GIVEN:
            id = ST_BREAK_SET_GIVEN;
            break;
        default:
            id = ST_BREAK_DELETE;
            break;
        }
        sqlite3_stmt *st = stmt_get(c, id, &rc);
        if (!st)
            break;
        if (id == ST_BREAK_INSERT || id == ST_BREAK_UPDATE || id == ST_BREAK_UPDATE_VALUES) {
            bind_break(st, tenant_id, b);
        } else {
            sqlite3_bind_int64(st, 1, tenant_id);
            sqlite3_bind_int64(st, 2, b->id);
            if (id == ST_BREAK_SET_DERIVED) {
                sqlite3_bind_int(st, 3, b->calculated);
                sqlite3_bind_int64(st, 4, (int64_t)b->version);
                sqlite3_bind_int(st, 5, b->start);
                sqlite3_bind_int(st, 6, b->end);
            } else if (id == ST_BREAK_SET_GIVEN) {
                sqlite3_bind_int(st, 3, b->calculated_given);
                sqlite3_bind_int(st, 4, !b->window_taken);
            }
        }
        rc = step_done(c, st, id);
    }
    return rc;
}

/* ---- webhooks ------------------------------------------------------------------------ */

/* A webhook from WH_COLS. NULL columns ("not yet") read as 0. The delivery fields
 * stay 0: delivery.c reads them from delivery_marks. */
static int row_webhook(sqlite3_stmt *st, store_webhook_t *w)
{
    memset(w, 0, sizeof(*w));
    w->tenant_id = sqlite3_column_int64(st, 1);
    w->collection = (store_collection_t)sqlite3_column_int(st, 2);
    w->created_at_ms = sqlite3_column_int64(st, 6);
    w->valid_until_ms = sqlite3_column_int64(st, 7);
    w->status = (store_webhook_status_t)sqlite3_column_int(st, 8);
    w->reason = (store_webhook_reason_t)sqlite3_column_int(st, 9);
    w->disabled_at_ms = sqlite3_column_int64(st, 10);
    w->from_version = (uint64_t)sqlite3_column_int64(st, 11);
    w->until_version = (uint64_t)sqlite3_column_int64(st, 12);
    w->partitions = (uint32_t)sqlite3_column_int64(st, 13);
    int rc = col_text(st, 0, w->id, sizeof(w->id));
    if (rc == 0)
        rc = col_text(st, 3, w->destination_url, sizeof(w->destination_url));
    if (rc == 0)
        rc = col_text(st, 4, w->ext_refs, sizeof(w->ext_refs));
    if (rc != 0)
        return rc;
    const void *key = sqlite3_column_blob(st, 5);
    int len = sqlite3_column_bytes(st, 5);
    if ((!key && len > 0) || len < 0 || (size_t)len > sizeof(w->key_blob)) {
        log_error("store: stored webhook key has the wrong size", LOG_INT("length", len));
        return BH_EIO;
    }
    if (len > 0)
        memcpy(w->key_blob, key, (size_t)len);
    w->key_blob_len = (size_t)len;
    return 0;
}

static int decode_webhook(sqlite3_stmt *st, void *out)
{
    return row_webhook(st, out);
}

/* The row as stored: delivery.c applies what a reader sees of an expired webhook. */
static int sq_webhook_get(store_t *base, int64_t tenant_id, const char *id,
                          store_webhook_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_WH_GET, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = query_one(c, st, ST_WH_GET, decode_webhook, out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_webhooks_list(store_t *base, int64_t tenant_id, const store_webhook_query_t *q,
                            store_webhook_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    int id = q->status == STORE_WH_ENABLED    ? ST_WH_LIST_ENABLED
             : q->status == STORE_WH_DISABLED ? ST_WH_LIST_DISABLED
                                              : ST_WH_LIST;
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, id, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, q->after_id ? q->after_id : "", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)q->collection);
        sqlite3_bind_int64(st, 4, limit_arg(q->limit));
        if (id != ST_WH_LIST)
            sqlite3_bind_int64(st, 5, q->now_ms);
        rc = query_all(c, st, id, decode_webhook, sizeof(**out), (void **)out, n_out);
    }
    reader_put(s, c);
    return rc;
}

/* 0 when webhook `id` exists in the tenant (in any status), else BH_ENOTFOUND or
 * the error. */
static int webhook_exists(sqlite__conn_t *c, int64_t tenant_id, const char *id)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_EXISTS, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int64_t one = 0;
    bool found;
    rc = step_int(c, st, ST_WH_EXISTS, &one, &found);
    return rc == 0 && !found ? BH_ENOTFOUND : rc;
}

/* ---- delivery state --------------------------------------------------------------- */

/* Attempts one prune job deletes; the writer serves other jobs between chunks. */
#define PRUNE_CHUNK 5000

static int sq_webhooks_active(store_t *base, int64_t now_ms, store_webhook_t **out,
                              size_t *n_out)
{
    return read_all(base, ST_WH_ACTIVE, &now_ms, decode_webhook, sizeof(**out), (void **)out,
                    n_out);
}

static int decode_retrying(sqlite3_stmt *st, void *out)
{
    store_retrying_t *r = out;
    r->record_id = sqlite3_column_int64(st, 0);
    r->version = (uint64_t)sqlite3_column_int64(st, 1);
    r->attempt = sqlite3_column_int(st, 2);
    r->next_attempt_at_ms = sqlite3_column_int64(st, 3);
    return 0;
}

static int decode_acked(sqlite3_stmt *st, void *out)
{
    store_acked_t *a = out;
    a->record_id = sqlite3_column_int64(st, 0);
    a->version = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

/* Reads each mark of ST_WH_MARK_GET on connection c (the writer's inside a
 * transaction, or a reader's). */
static int marks_read(sqlite__conn_t *c, store__mark_t *marks, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_MARK_GET, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        store__mark_t *m = &marks[i];
        sqlite3_bind_int64(st, 1, m->tenant_id);
        sqlite3_bind_text(st, 2, m->webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, m->part);
        int src = sqlite3_step(st);
        m->partitions = 0;
        m->version = 0;
        m->last_success_at_ms = m->last_failure_at_ms = 0;
        if (src == SQLITE_ROW) {
            m->partitions = (uint32_t)sqlite3_column_int64(st, 0);
            m->version = (uint64_t)sqlite3_column_int64(st, 1); /* NULL reads as 0 */
            m->last_success_at_ms = sqlite3_column_int64(st, 2);
            m->last_failure_at_ms = sqlite3_column_int64(st, 3);
        } else if (src != SQLITE_DONE) {
            rc = map_error(c->db, src, stmt_sql[ST_WH_MARK_GET]);
        }
        m->found = m->part < m->partitions;
        stmt_done(st);
    }
    return rc;
}

static int sq_marks_get(store_t *base, store__mark_t *marks, size_t n)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    rc = marks_read(c, marks, n);
    reader_put(s, c);
    return rc;
}

static int sq_acks_above(store_t *base, int64_t tenant_id, const char *webhook_id, uint32_t part,
                         uint64_t above, store_acked_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_ACKS_ABOVE, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, part);
        sqlite3_bind_int64(st, 4, (int64_t)above);
        rc = query_all(c, st, ST_ACKS_ABOVE, decode_acked, sizeof(**out), (void **)out, n_out);
    }
    reader_put(s, c);
    return rc;
}

static int sq_attempts_newest(store_t *base, int64_t tenant_id, const char *webhook_id,
                              store_attempt_status_t status, uint32_t partitions, uint32_t part,
                              uint64_t above, store_retrying_t **out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_get(c, ST_ATTEMPTS_NEWEST, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)status);
        sqlite3_bind_int64(st, 4, (int64_t)above);
        sqlite3_bind_int64(st, 5, partitions ? partitions : 1);
        sqlite3_bind_int64(st, 6, part);
        rc = query_all(c, st, ST_ATTEMPTS_NEWEST, decode_retrying, sizeof(**out), (void **)out,
                       n_out);
    }
    reader_put(s, c);
    return rc;
}

/* One statement per range; a range of a single partition's webhook uses the index
 * alone (ST_CHANGES_COUNT). */
static int sq_changes_count(store_t *base, int64_t tenant_id, store__change_range_t *ranges,
                            size_t n)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store__change_range_t *r = &ranges[i];
        int id = r->partitions > 1 ? ST_CHANGES_COUNT_PART : ST_CHANGES_COUNT;
        sqlite3_stmt *st = stmt_tenant_id(c, id, tenant_id, (int64_t)r->collection, &rc);
        if (!st)
            break;
        sqlite3_bind_int64(st, 3, (int64_t)r->after);
        sqlite3_bind_int64(st, 4, r->upto > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)r->upto);
        sqlite3_bind_int64(st, 5, r->before_ms);
        if (id == ST_CHANGES_COUNT_PART) {
            sqlite3_bind_int64(st, 6, r->partitions);
            sqlite3_bind_int64(st, 7, r->part);
        }
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            r->count = (uint64_t)sqlite3_column_int64(st, 0);
            r->oldest = (uint64_t)sqlite3_column_int64(st, 1); /* NULL (none) reads as 0 */
        } else {
            rc = map_error(c->db, src == SQLITE_DONE ? SQLITE_ERROR : src, stmt_sql[id]);
        }
        stmt_done(st);
    }
    reader_put(s, c);
    return rc;
}

/* An attempt from ATTEMPT_COLS (seq is column 0). NULL columns read as 0 or "". */
static int row_attempt(sqlite3_stmt *st, store_attempt_t *a)
{
    memset(a, 0, sizeof(*a));
    a->tenant_id = sqlite3_column_int64(st, 1);
    a->record_id = sqlite3_column_int64(st, 4);
    a->version = (uint64_t)sqlite3_column_int64(st, 5);
    a->change_type = (store_change_type_t)sqlite3_column_int(st, 6);
    a->attempt = sqlite3_column_int(st, 7);
    a->attempted_at_ms = sqlite3_column_int64(st, 8);
    a->duration_ms = sqlite3_column_int64(st, 9);
    a->http_status = sqlite3_column_int(st, 10);
    a->next_attempt_at_ms = sqlite3_column_int64(st, 12);
    a->status = (store_attempt_status_t)sqlite3_column_int(st, 13);
    int rc = col_text(st, 2, a->webhook_id, sizeof(a->webhook_id));
    if (rc == 0)
        rc = col_text(st, 3, a->event_id, sizeof(a->event_id));
    if (rc == 0)
        rc = col_text(st, 11, a->error, sizeof(a->error));
    if (rc == 0)
        rc = col_text(st, 14, a->excerpt, sizeof(a->excerpt));
    return rc;
}

/* A row of the attempt log with its seq (the paging key), as query_all reads it. */
typedef struct attempt_row {
    int64_t seq;
    store_attempt_t a;
} attempt_row_t;

static int row_attempt_seq(sqlite3_stmt *st, void *out)
{
    attempt_row_t *r = out;
    r->seq = sqlite3_column_int64(st, 0);
    return row_attempt(st, &r->a);
}

/* Reads the page of attempts st selects into two parallel malloc'd arrays. */
static int query_attempts(sqlite__conn_t *c, sqlite3_stmt *st, int id, store_attempt_t **out,
                          int64_t **seq_out, size_t *n_out)
{
    attempt_row_t *rows = NULL;
    size_t n = 0;
    int rc = query_all(c, st, id, row_attempt_seq, sizeof(*rows), (void **)&rows, &n);
    if (rc != 0)
        return rc;
    store_attempt_t *arr = n ? malloc(n * sizeof(*arr)) : NULL;
    int64_t *seqs = n ? malloc(n * sizeof(*seqs)) : NULL;
    if (n && (!arr || !seqs)) {
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

/* Webhooks are never removed (a delete is a soft one), so the existence check and
 * the page need not share a snapshot. */
static int sq_attempts_list(store_t *base, int64_t tenant_id, const char *webhook_id,
                            const store_attempt_query_t *q, store_attempt_t **out,
                            int64_t **seq_out, size_t *n_out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    rc = webhook_exists(c, tenant_id, webhook_id);
    int id = q->status == -1 ? ST_ATTEMPTS_LIST : ST_ATTEMPTS_LIST_STATUS;
    sqlite3_stmt *st = rc == 0 && q->limit > 0 ? stmt_get(c, id, &rc) : NULL;
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, q->before_seq ? q->before_seq : INT64_MAX);
        sqlite3_bind_int64(st, 4, limit_arg(q->limit));
        if (id == ST_ATTEMPTS_LIST_STATUS)
            sqlite3_bind_int(st, 5, q->status);
        rc = query_attempts(c, st, id, out, seq_out, n_out);
    }
    reader_put(s, c);
    return rc;
}

/* One chunk of a prune: DELETE statements, run in order, whose parameters are
 * (?1, ?2, ?3) = (a, b, limit), or (?1, ?2) = (a, limit) when b < 0, each deleting
 * at most PRUNE_CHUNK rows; the last one's rows are the chunk's count. */
typedef struct {
    const int *stmts;
    size_t n_stmts;
    int64_t a, b;  /* b < 0: the statements take (a, limit) */
    size_t n;      /* out: deleted by this chunk's last statement */
} prune_arg_t;

static int job_prune(sqlite__conn_t *c, void *arg)
{
    prune_arg_t *p = arg;
    int rc = 0;
    for (size_t i = 0; i < p->n_stmts && rc == 0; i++) {
        sqlite3_stmt *st = stmt_get(c, p->stmts[i], &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, p->a);
        if (p->b < 0) {
            sqlite3_bind_int64(st, 2, PRUNE_CHUNK);
        } else {
            sqlite3_bind_int64(st, 2, p->b);
            sqlite3_bind_int64(st, 3, PRUNE_CHUNK);
        }
        rc = step_done(c, st, p->stmts[i]);
        if (rc == 0)
            p->n = (size_t)sqlite3_changes64(c->db);
    }
    return rc;
}

/* Chunk after chunk, each a solo job of its own, until one comes back short: a
 * week of rows never holds the writer in one long transaction. *n_out counts what
 * committed, also when a later chunk fails. */
static int prune_chunks(sqlite__store_t *s, const int *stmts, size_t n_stmts, int64_t a,
                        int64_t b, size_t *n_out)
{
    for (;;) {
        prune_arg_t p = { stmts, n_stmts, a, b, 0 };
        int rc = submit_job(s, job_prune, &p, true);
        if (rc != 0)
            return rc;
        *n_out += p.n;
        if (p.n < PRUNE_CHUNK)
            return 0;
    }
}

static int sq_attempts_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_ATTEMPTS_PRUNE };
    return prune_chunks(from_base(base), stmts, 1, before_ms, -1, n_out);
}

/* Webhooks disabled before before_ms, with everything kept under their id. */
static int sq_webhooks_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_WH_PRUNE_ACKS, ST_WH_PRUNE_MARKS, ST_WH_PRUNE_ATTEMPTS,
                                 ST_WH_PRUNE };
    return prune_chunks(from_base(base), stmts, sizeof(stmts) / sizeof(stmts[0]), before_ms,
                        -1, n_out);
}

/* ---- change-log pruning (the rule is delivery.c's) ------------------------------- */

static int decode_tenant_version(sqlite3_stmt *st, void *out)
{
    store__tenant_version_t *t = out;
    t->tenant_id = sqlite3_column_int64(st, 0);
    t->version = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

static int decode_floor(sqlite3_stmt *st, void *out)
{
    store__floor_t *f = out;
    f->tenant_id = sqlite3_column_int64(st, 0);
    f->from_version = (uint64_t)sqlite3_column_int64(st, 1);
    f->watermark = (uint64_t)sqlite3_column_int64(st, 2); /* NULL (no mark) reads as 0 */
    return 0;
}

static int sq_changes_newest(store_t *base, int64_t before_ms, store__tenant_version_t **out,
                             size_t *n_out)
{
    return read_all(base, ST_CHANGES_NEWEST, &before_ms, decode_tenant_version, sizeof(**out),
                    (void **)out, n_out);
}

static int sq_floors_read(store__tx_t *c, int64_t tenant_id, store__floor_t **out,
                          size_t *n_out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_FLOORS, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    return query_all(c, st, ST_FLOORS, decode_floor, sizeof(**out), (void **)out, n_out);
}

static int sq_changes_delete_upto(store__tx_t *c, int64_t tenant_id, uint64_t upto,
                                  size_t limit, size_t *n_out, uint64_t *max_out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_CHANGES_PRUNE, tenant_id, (int64_t)upto, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 3, limit_arg(limit));
    size_t n = 0;
    uint64_t max = 0;
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = map_error(c->db, src, stmt_sql[ST_CHANGES_PRUNE]);
            break;
        }
        uint64_t v = (uint64_t)sqlite3_column_int64(st, 0);
        if (v > max)
            max = v;
        n++;
    }
    stmt_done(st);
    if (rc == 0) {
        *n_out = n;
        *max_out = max;
    }
    return rc;
}

static int sq_horizon_get(store__tx_t *c, int64_t tenant_id, uint64_t *out)
{
    bool found = false;
    int rc = horizon_read(c, tenant_id, out, &found);
    return rc == 0 && !found ? BH_ENOTFOUND : rc;
}

static int sq_horizon_raise(store__tx_t *c, const store__tenant_version_t *rows, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = stmt_tenant_id(c, ST_HORIZON_RAISE, rows[i].tenant_id,
                                          (int64_t)rows[i].version, &rc);
        if (st)
            rc = step_done(c, st, ST_HORIZON_RAISE);
    }
    return rc;
}

/* ---- deltas ------------------------------------------------------------------------ */

/* A delta from DELTA_COLS. */
static int row_delta(sqlite3_stmt *st, store_delta_t *d)
{
    memset(d, 0, sizeof(*d));
    d->tenant_id = sqlite3_column_int64(st, 0);
    d->collection = (store_collection_t)sqlite3_column_int(st, 2);
    d->date_from = sqlite3_column_int(st, 4);
    d->date_to = sqlite3_column_int(st, 5);
    d->start_version = (uint64_t)sqlite3_column_int64(st, 6);
    d->floor_version = (uint64_t)sqlite3_column_int64(st, 7);
    d->created_at_ms = sqlite3_column_int64(st, 8);
    d->last_used_at_ms = sqlite3_column_int64(st, 9);
    int rc = col_text(st, 1, d->client_id, sizeof(d->client_id));
    if (rc == 0)
        rc = col_text(st, 3, d->id, sizeof(d->id));
    return rc;
}

static int decode_delta(sqlite3_stmt *st, void *out)
{
    return row_delta(st, out);
}

/* ST_DELTA_GET bound to one key, on any connection. */
static sqlite3_stmt *stmt_delta_key(sqlite__conn_t *c, int64_t tenant_id, const char *client_id,
                                    store_collection_t coll, int *rc)
{
    sqlite3_stmt *st = stmt_get(c, ST_DELTA_GET, rc);
    if (st) {
        sqlite3_bind_int64(st, 1, tenant_id);
        sqlite3_bind_text(st, 2, client_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)coll);
    }
    return st;
}

static int sq_delta_get(store_t *base, int64_t tenant_id, const char *client_id,
                        store_collection_t coll, store_delta_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = stmt_delta_key(c, tenant_id, client_id, coll, &rc);
    if (st)
        rc = query_one(c, st, ST_DELTA_GET, decode_delta, out);
    reader_put(s, c);
    return rc;
}

static int sq_deltas_prune(store_t *base, int64_t before_ms, size_t *n_out)
{
    static const int stmts[] = { ST_DELTAS_PRUNE };
    return prune_chunks(from_base(base), stmts, 1, before_ms, -1, n_out);
}

/* The key fields of d[i] are copied before the read overwrites d[i]. */
static int sq_deltas_read(store__tx_t *c, store_delta_t *d, bool *found, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_delta_t key = d[i];
        sqlite3_stmt *st = stmt_delta_key(c, key.tenant_id, key.client_id, key.collection, &rc);
        if (st)
            rc = query_one(c, st, ST_DELTA_GET, decode_delta, &d[i]);
        found[i] = rc == 0;
        if (rc == BH_ENOTFOUND) {
            d[i] = key;
            rc = 0;
        }
    }
    return rc;
}

static int sq_deltas_write(store__tx_t *c, const store_delta_t *d, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_DELTA_UPSERT, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, d[i].tenant_id);
        sqlite3_bind_text(st, 2, d[i].client_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)d[i].collection);
        sqlite3_bind_text(st, 4, d[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, d[i].date_from);
        sqlite3_bind_int(st, 6, d[i].date_to);
        sqlite3_bind_int64(st, 7, (int64_t)d[i].start_version);
        sqlite3_bind_int64(st, 8, (int64_t)d[i].floor_version);
        sqlite3_bind_int64(st, 9, d[i].created_at_ms);
        sqlite3_bind_int64(st, 10, d[i].last_used_at_ms);
        rc = step_done(c, st, ST_DELTA_UPSERT);
    }
    return rc;
}

/* ---- write primitives: webhooks and delivery state ------------------------------------ */

static int sq_webhooks_enabled_count(store__tx_t *c, int64_t tenant_id, int64_t now_ms,
                                     uint64_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_tenant_id(c, ST_WH_ENABLED_COUNT, tenant_id, now_ms, &rc);
    if (!st)
        return rc;
    int64_t n = 0;
    bool found;
    rc = step_int(c, st, ST_WH_ENABLED_COUNT, &n, &found);
    *out = (uint64_t)n;
    return rc;
}

static int sq_webhook_insert(store__tx_t *c, int64_t tenant_id, const store_webhook_t *w)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_text(st, 2, w->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)w->collection);
    sqlite3_bind_text(st, 4, w->destination_url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, w->ext_refs, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, w->key_blob, (int)w->key_blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, w->created_at_ms);
    sqlite3_bind_int64(st, 8, w->valid_until_ms);
    sqlite3_bind_int64(st, 9, (int64_t)w->from_version);
    sqlite3_bind_int64(st, 10, w->partitions ? w->partitions : 1);
    return step_done(c, st, ST_WH_INSERT);
}

static int sq_webhook_read(store__tx_t *c, int64_t tenant_id, const char *id,
                           store_webhook_t *out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_GET, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return query_one(c, st, ST_WH_GET, decode_webhook, out);
}

static int sq_webhooks_set_disabled(store__tx_t *c, store__disable_row_t *rows, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_SET_DISABLED, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        store__disable_row_t *r = &rows[i];
        sqlite3_bind_int64(st, 1, r->tenant_id);
        sqlite3_bind_text(st, 2, r->webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)r->reason);
        sqlite3_bind_int64(st, 4, r->disabled_at_ms);
        sqlite3_bind_int64(st, 5, (int64_t)r->until_version);
        rc = step_done(c, st, ST_WH_SET_DISABLED);
        r->changed = rc == 0 && sqlite3_changes(c->db) > 0;
    }
    return rc;
}

static int decode_expiring(sqlite3_stmt *st, void *out)
{
    store__disable_row_t *r = out;
    memset(r, 0, sizeof(*r));
    r->tenant_id = sqlite3_column_int64(st, 0);
    r->disabled_at_ms = sqlite3_column_int64(st, 2);
    return col_text(st, 1, r->webhook_id, sizeof(r->webhook_id));
}

static int sq_webhooks_expiring(store__tx_t *c, int64_t now_ms, store__disable_row_t **out,
                                size_t *n_out)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_WH_EXPIRING, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    return query_all(c, st, ST_WH_EXPIRING, decode_expiring, sizeof(**out), (void **)out, n_out);
}

/* Binds v to parameter i, or NULL when it is 0 ("none"). */
static void bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int sq_attempts_append(store__tx_t *c, const store_attempt_t *attempts, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_ATTEMPT_INSERT, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        const store_attempt_t *a = &attempts[i];
        sqlite3_bind_int64(st, 1, a->tenant_id);
        sqlite3_bind_text(st, 2, a->webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->event_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, a->record_id);
        sqlite3_bind_int64(st, 5, (int64_t)a->version);
        sqlite3_bind_int(st, 6, (int)a->change_type);
        sqlite3_bind_int(st, 7, a->attempt);
        sqlite3_bind_int64(st, 8, a->attempted_at_ms);
        sqlite3_bind_int64(st, 9, a->duration_ms);
        bind_int64_or_null(st, 10, a->http_status);
        if (a->error[0])
            sqlite3_bind_text(st, 11, a->error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 11);
        bind_int64_or_null(st, 12, a->next_attempt_at_ms);
        sqlite3_bind_int(st, 13, (int)a->status);
        sqlite3_bind_text(st, 14, a->excerpt, -1, SQLITE_STATIC);
        rc = step_done(c, st, ST_ATTEMPT_INSERT);
    }
    return rc;
}

static int sq_marks_read(store__tx_t *c, store__mark_t *marks, size_t n)
{
    return marks_read(c, marks, n);
}

static int sq_acks_raise(store__tx_t *c, const store__ack_row_t *acks, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_ACK_RAISE, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, acks[i].tenant_id);
        sqlite3_bind_text(st, 2, acks[i].webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, acks[i].part);
        sqlite3_bind_int64(st, 4, acks[i].record_id);
        sqlite3_bind_int64(st, 5, (int64_t)acks[i].version);
        rc = step_done(c, st, ST_ACK_RAISE);
    }
    return rc;
}

static int sq_marks_write(store__tx_t *c, const store__mark_t *marks, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_MARK_SET, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, marks[i].tenant_id);
        sqlite3_bind_text(st, 2, marks[i].webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, marks[i].part);
        sqlite3_bind_int64(st, 4, (int64_t)marks[i].version);
        bind_int64_or_null(st, 5, marks[i].last_success_at_ms);
        bind_int64_or_null(st, 6, marks[i].last_failure_at_ms);
        rc = step_done(c, st, ST_MARK_SET);
    }
    return rc;
}

static int sq_acks_drop(store__tx_t *c, const store__mark_t *marks, size_t n)
{
    int rc = 0;
    sqlite3_stmt *st = stmt_get(c, ST_ACKS_DROP, &rc);
    for (size_t i = 0; st && rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, marks[i].tenant_id);
        sqlite3_bind_text(st, 2, marks[i].webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, marks[i].part);
        sqlite3_bind_int64(st, 4, (int64_t)marks[i].version);
        rc = step_done(c, st, ST_ACKS_DROP);
    }
    return rc;
}

/* ---- lifetime --------------------------------------------------------------------- */

/* See the lifetime notes at the top of the file. Only the first call joins the
 * writer; later calls find it stopped and return at once. */
/* Called by SQLite in the writer after each commit with the WAL's size in pages. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    sqlite__store_t *s = arg;
    (void)db, (void)name;
    if (pages >= SQLITE__CHECKPOINT_PAGES) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_wanted = true;
        if (pages >= SQLITE__WAL_HARD_PAGES)
            s->ckpt_truncate = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

/* PASSIVE checkpoints never block the writer or readers; they copy what they can.
 * Also runs every second, so a quiet database's WAL is folded back soon. When the
 * WAL outgrew SQLITE__WAL_HARD_PAGES, or while writes fail for the disk, the
 * checkpoint is TRUNCATE instead: it waits (busy timeout) for readers and the
 * writer, folds the whole WAL back and truncates the file to zero bytes, which gives
 * a full disk back the WAL's space; retried every second until writes succeed. */
static void *checkpointer_main(void *arg)
{
    sqlite__store_t *s = arg;
    pthread_setname_np(pthread_self(), "bh-checkpoint");
    pthread_mutex_lock(&s->ckpt_lock);
    while (!s->ckpt_stop) {
        if (!s->ckpt_wanted) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&s->ckpt_cond, &s->ckpt_lock, &until);
            if (s->ckpt_stop)
                break;
        }
        s->ckpt_wanted = false;
        bool truncate = s->ckpt_truncate;
        s->ckpt_truncate = false;
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_mutex_lock(&s->lock);
        truncate = truncate || s->disk_rc != 0;
        pthread_mutex_unlock(&s->lock);
        int log_pages = 0, done_pages = 0;
        int src = sqlite3_wal_checkpoint_v2(
            s->cconn.db, NULL, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
            &log_pages, &done_pages);
        if (src != SQLITE_OK && src != SQLITE_BUSY)
            log_warn("store: checkpoint failed", LOG_STR("error", sqlite3_errmsg(s->cconn.db)));
        if (truncate) {
            /* Writes failed for the disk: try a probe write once it is due (the same
             * rule as /readyz), and take the reserve back after a recovery. */
            (void)probe_if_due(s);
        }
        pthread_mutex_lock(&s->lock);
        bool take = s->reserve_wanted && s->disk_rc == 0;
        pthread_mutex_unlock(&s->lock);
        if (take)
            reserve_take(s);
        pthread_mutex_lock(&s->ckpt_lock);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return NULL;
}

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
    pthread_mutex_lock(&s->ckpt_lock);
    bool join_ckpt = s->ckpt_started && !s->ckpt_stop;
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cond);
    pthread_mutex_unlock(&s->ckpt_lock);
    if (join_ckpt)
        pthread_join(s->checkpointer, NULL);
}

/* Frees a store at any stage of sqlite__open: connections that never opened have a
 * NULL db and are skipped. The readers close first so that the writer's close is the
 * last one, which checkpoints the WAL into the database file. */
/* ---- copying (store/copy.c) ------------------------------------------------------- */

/* "SELECT "a","b" FROM "t" ORDER BY …", "INSERT INTO "t" ("a","b") VALUES (?,?)",
 * "SELECT count(*) FROM "t"": names come from copy.c's table list, never from input. */
static int table_sql(buf_t *b, const store__table_t *t, int kind)
{
    int rc = 0;
    if (kind == 0)
        return buf_printf(b, "SELECT count(*) FROM \"%s\"", t->name);
    rc = buf_append_str(b, kind == 1 ? "SELECT " : "INSERT INTO \"");
    if (kind == 2)
        rc = rc ? rc : buf_printf(b, "%s\" (", t->name);
    for (size_t i = 0; !rc && i < t->n_cols; i++)
        rc = buf_printf(b, "%s\"%s\"", i ? "," : "", t->cols[i]);
    if (kind == 1)
        return rc ? rc : buf_printf(b, " FROM \"%s\" ORDER BY %s", t->name, t->order_by);
    rc = rc ? rc : buf_append_str(b, ") VALUES (");
    for (size_t i = 0; !rc && i < t->n_cols; i++)
        rc = buf_append_str(b, i ? ",?" : "?");
    return rc ? rc : buf_append_char(b, ')');
}

static sqlite3_stmt *table_stmt(sqlite3 *db, const store__table_t *t, int kind, int *rc)
{
    buf_t sql;
    buf_init(&sql, 1 << 16);
    sqlite3_stmt *st = NULL;
    *rc = table_sql(&sql, t, kind);
    if (*rc == 0) {
        int src = sqlite3_prepare_v2(db, buf_cstr(&sql), -1, &st, NULL);
        if (src != SQLITE_OK)
            *rc = map_error(db, src, buf_cstr(&sql));
    }
    buf_deinit(&sql);
    return st;
}

static int sq_table_count(store_t *base, const store__table_t *t, uint64_t *out)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = table_stmt(c->db, t, 0, &rc);
    if (st) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *out = (uint64_t)sqlite3_column_int64(st, 0);
        else
            rc = map_error(c->db, src, t->name);
        sqlite3_finalize(st);
    }
    reader_put(s, c);
    return rc;
}

/* The values of one batch of rows: text and blobs copied, since a column's bytes
 * last only until the next step. */
typedef struct scan_batch {
    store__value_t *vals;
    void **owned;
    size_t n_owned;
} scan_batch_t;

static void scan_batch_clear(scan_batch_t *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    b->n_owned = 0;
}

static int scan_value(sqlite3_stmt *st, int col, store__value_t *v, scan_batch_t *b)
{
    memset(v, 0, sizeof(*v));
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        v->type = STORE__V_NULL;
        return 0;
    case SQLITE_INTEGER:
        v->type = STORE__V_INT;
        v->i = sqlite3_column_int64(st, col);
        return 0;
    case SQLITE_BLOB:
        v->type = STORE__V_BLOB;
        v->p = sqlite3_column_blob(st, col);
        break;
    default: /* text (the schema has no floats) */
        v->type = STORE__V_TEXT;
        v->p = sqlite3_column_text(st, col);
        break;
    }
    v->n = (size_t)sqlite3_column_bytes(st, col);
    void *copy = malloc(v->n ? v->n : 1);
    if (!copy)
        return BH_ENOMEM;
    if (v->n)
        memcpy(copy, v->p, v->n);
    v->p = copy;
    b->owned[b->n_owned++] = copy;
    return 0;
}

static int sq_table_scan(store_t *base, const store__table_t *t, size_t batch, store__rows_fn fn,
                         void *arg)
{
    sqlite__store_t *s = from_base(base);
    sqlite__conn_t *c;
    int rc = reader_take(s, &c);
    if (rc != 0)
        return rc;
    rc = stmt_exec(c, ST_READ_BEGIN);
    bool in_tx = rc == 0;
    sqlite3_stmt *st = rc == 0 ? table_stmt(c->db, t, 1, &rc) : NULL;
    scan_batch_t b = { calloc(batch * t->n_cols, sizeof(*b.vals)),
                       calloc(batch * t->n_cols, sizeof(*b.owned)), 0 };
    if (rc == 0 && (!b.vals || !b.owned))
        rc = BH_ENOMEM;
    size_t rows = 0;
    while (st && rc == 0) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            for (size_t i = 0; rc == 0 && i < t->n_cols; i++)
                rc = scan_value(st, (int)i, &b.vals[rows * t->n_cols + i], &b);
            if (rc == 0 && ++rows == batch) {
                rc = fn(arg, b.vals, rows);
                scan_batch_clear(&b);
                rows = 0;
            }
        } else if (src == SQLITE_DONE) {
            if (rows)
                rc = fn(arg, b.vals, rows);
            break;
        } else {
            rc = map_error(c->db, src, t->name);
        }
    }
    scan_batch_clear(&b);
    free(b.vals);
    free(b.owned);
    sqlite3_finalize(st);
    if (in_tx) {
        int end = stmt_exec(c, ST_READ_END);
        if (rc == 0)
            rc = end;
    }
    reader_put(s, c);
    return rc;
}

static int sq_table_insert(store__tx_t *tx, const store__table_t *t, const store__value_t *vals,
                           size_t n_rows)
{
    int rc = 0;
    sqlite3_stmt *st = table_stmt(tx->db, t, 2, &rc);
    for (size_t r = 0; st && rc == 0 && r < n_rows; r++) {
        for (size_t i = 0; i < t->n_cols; i++) {
            const store__value_t *v = &vals[r * t->n_cols + i];
            int col = (int)i + 1;
            if (v->type == STORE__V_INT)
                sqlite3_bind_int64(st, col, v->i);
            else if (v->type == STORE__V_TEXT)
                sqlite3_bind_text(st, col, v->p, (int)v->n, SQLITE_STATIC);
            else if (v->type == STORE__V_BLOB)
                sqlite3_bind_blob(st, col, v->p, (int)v->n, SQLITE_STATIC);
            else
                sqlite3_bind_null(st, col);
        }
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = map_error(tx->db, src, t->name);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* AUTOINCREMENT follows the highest seq inserted by itself. */
static int sq_copy_finish(store__tx_t *tx)
{
    (void)tx;
    return 0;
}

/* A server holds a shared lock on "<file>-serve.lock" (store_options_t.serving);
 * another process asks whether it could take an exclusive one. */
static int sq_in_use(store_t *base, bool *in_use)
{
    sqlite__store_t *s = from_base(base);
    *in_use = s->serve_lock_fd >= 0;
    if (*in_use || !s->serve_lock_path)
        return 0;
    int fd = open(s->serve_lock_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* no server ever made it */
    struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int rc = fcntl(fd, F_GETLK, &l) == 0 ? 0 : BH_EIO;
    close(fd);
    *in_use = rc == 0 && l.l_type != F_UNLCK;
    return rc;
}

/* serve: the shared lock that tells other processes a server uses this file. */
static int serve_lock_take(sqlite__store_t *s, const char **err_msg)
{
    int fd = open(s->serve_lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
    if (fd < 0 || fcntl(fd, F_SETLK, &l) != 0) {
        if (fd >= 0)
            close(fd);
        *err_msg = "cannot lock the store's -serve.lock file";
        return BH_EIO;
    }
    s->serve_lock_fd = fd;
    return 0;
}

static void sq_destroy(store_t *base)
{
    sqlite__store_t *s = from_base(base);
    for (int i = 0; s->readers && i < s->n_readers; i++)
        conn_close(&s->readers[i]);
    free(s->readers);
    conn_close(&s->cconn);
    conn_close(&s->wconn);
    pthread_cond_destroy(&s->ckpt_cond);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->done_cond);
    pthread_cond_destroy(&s->work_cond);
    pthread_mutex_destroy(&s->lock);
    explicit_bzero(&s->cfg.master, sizeof(s->cfg.master));
    free(s->page_limit_file);
    free(s->reserve_path);
    if (s->serve_lock_fd >= 0)
        close(s->serve_lock_fd); /* drops the lock */
    free(s->serve_lock_path);
    free(s);
}

static const store__ops_t sqlite_ops = {
    .name = "sqlite",
    .table_count = sq_table_count,
    .table_scan = sq_table_scan,
    .table_insert = sq_table_insert,
    .copy_finish = sq_copy_finish,
    .in_use = sq_in_use,
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
    .person_get = sq_person_get,
    .people_get_many = sq_people_get_many,
    .definition_get = sq_definition_get,
    .definitions_list = sq_definitions_list,
    .break_get = sq_break_get,
    .breaks_list = sq_breaks_list,
    .changes_after = sq_changes_after,
    .tenant_version = sq_tenant_version,
    .webhook_get = sq_webhook_get,
    .webhooks_list = sq_webhooks_list,
    .webhooks_active = sq_webhooks_active,
    .marks_get = sq_marks_get,
    .acks_above = sq_acks_above,
    .attempts_newest = sq_attempts_newest,
    .changes_count = sq_changes_count,
    .attempts_list = sq_attempts_list,
    .attempts_prune = sq_attempts_prune,
    .changes_newest = sq_changes_newest,
    .changes_delete_upto = sq_changes_delete_upto,
    .webhooks_prune = sq_webhooks_prune,
    .delta_get = sq_delta_get,
    .deltas_prune = sq_deltas_prune,

    .run_write = sq_run_write,
    .tx_note = sq_tx_note,
    .counter_get = sq_counter_get,
    .counter_set = sq_counter_set,
    .changes_append = sq_changes_append,
    .people_read = sq_people_read,
    .people_exist = sq_people_exist,
    .ref_owners = sq_ref_owners,
    .people_write = sq_people_write,
    .people_delete = sq_people_delete,
    .uses_count = sq_uses_count,
    .definitions_read = sq_definitions_read,
    .definition_calcs_read = sq_definition_calcs_read,
    .definitions_write = sq_definitions_write,
    .definitions_delete = sq_definitions_delete,
    .breaks_computed = sq_breaks_computed,
    .breaks_probe = sq_breaks_probe,
    .breaks_read = sq_breaks_read,
    .breaks_write = sq_breaks_write,
    .webhooks_enabled_count = sq_webhooks_enabled_count,
    .webhook_insert = sq_webhook_insert,
    .webhook_read = sq_webhook_read,
    .webhooks_set_disabled = sq_webhooks_set_disabled,
    .webhooks_expiring = sq_webhooks_expiring,
    .attempts_append = sq_attempts_append,
    .marks_read = sq_marks_read,
    .acks_raise = sq_acks_raise,
    .marks_write = sq_marks_write,
    .acks_drop = sq_acks_drop,
    .horizon_get = sq_horizon_get,
    .horizon_raise = sq_horizon_raise,
    .floors_read = sq_floors_read,
    .deltas_read = sq_deltas_read,
    .deltas_write = sq_deltas_write,
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

/* At open with a master key, on the writer's connection before any thread starts:
 * seals every signing key still stored in the clear (a store from before the master
 * key was set, or from before migration 5), and checks that every key opens, so a
 * wrong master key stops the start with a clear message instead of failing every
 * token later. Without a master key nothing is checked here: commands that never
 * touch the signing keys (tenant, client, import) work as before, and the signing
 * key functions answer BH_EINVAL for a sealed key. One transaction: two processes
 * opening the file at once cannot both seal a key. */
static int keys_seal(sqlite__store_t *s, const char **err_msg)
{
    sqlite__conn_t *c = &s->wconn;
    const crypto_master_t *m = &s->cfg.master;
    key_row_t *rows = NULL;
    size_t n = 0, n_sealed = 0;
    sqlite3_stmt *st = NULL;
    if (!m->set)
        return 0;
    int rc = stmt_exec(c, ST_BEGIN);
    if (rc != 0)
        goto out_fail;
    st = stmt_get(c, ST_KEY_LIST, &rc);
    if (st)
        rc = query_all(c, st, ST_KEY_LIST, decode_signing_key, sizeof(*rows), (void **)&rows,
                       &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        key_row_t *r = &rows[i];
        if (crypto_key_is_clear(r->sealed, r->sealed_len)) {
            rc = key_open(m, r);
            rc = rc ? rc : key_seal(m, &r->k, r->sealed, &r->sealed_len);
            sqlite3_stmt *up = rc ? NULL : stmt_get(c, ST_KEY_RESEAL, &rc);
            if (!up)
                break;
            sqlite3_bind_text(up, 1, r->k.kid, -1, SQLITE_STATIC);
            sqlite3_bind_blob(up, 2, r->sealed, (int)r->sealed_len, SQLITE_STATIC);
            rc = step_done(c, up, ST_KEY_RESEAL);
            n_sealed++;
        } else if (key_open(m, r) != 0) {
            rc = BH_EINVAL;
            *err_msg = store__set_open_error(
                "token signing key %s does not open with this BREAKHOOK_MASTER_KEY", r->k.kid);
        }
    }
    if (rc == 0)
        rc = stmt_exec(c, ST_COMMIT);
    if (rc != 0) {
        (void)stmt_exec(c, ST_ROLLBACK);
        goto out_fail;
    }
    if (n_sealed)
        log_info("store: token signing keys sealed with the master key",
                 LOG_INT("count", n_sealed));
    goto out_free;
out_fail:
    if (!*err_msg)
        *err_msg = store__set_open_error("cannot read the token signing keys: %s",
                                         err_str(rc));
out_free:
    if (rows)
        explicit_bzero(rows, n * sizeof(*rows));
    free(rows);
    return rc;
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
    s->serve_lock_fd = -1;
    s->base.metrics = cfg->metrics;
    s->base.subs = cfg->subs;
    s->base.clock = cfg->clock;
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cond, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    const char *limit_file = getenv("BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE");
    if (limit_file && limit_file[0]) {
        s->page_limit_file = strdup(limit_file);
        if (!s->page_limit_file) {
            rc = BH_ENOMEM;
            goto out_destroy;
        }
    }

    size_t lock_n = strlen(path) + sizeof("-serve.lock");
    s->serve_lock_path = malloc(lock_n);
    if (!s->serve_lock_path) {
        rc = BH_ENOMEM;
        goto out_destroy;
    }
    snprintf(s->serve_lock_path, lock_n, "%s-serve.lock", path);
    if (cfg->serving && (rc = serve_lock_take(s, err_msg)) != 0)
        goto out_destroy;

    if (cfg->disk_reserve > 0) {
        size_t n = strlen(path) + sizeof("-reserve");
        s->reserve_path = malloc(n);
        if (!s->reserve_path) {
            rc = BH_ENOMEM;
            goto out_destroy;
        }
        snprintf(s->reserve_path, n, "%s-reserve", path);
    }

    /* The writer first: it creates the schema and turns WAL on, which read-only
     * connections cannot do. */
    rc = conn_open(&s->wconn, path, true, err_msg);
    if (rc != 0)
        goto out_destroy;
    rc = migrate(s, err_msg);
    if (rc != 0)
        goto out_destroy;
    rc = keys_seal(s, err_msg);
    if (rc != 0)
        goto out_destroy;
    if (s->reserve_path)
        reserve_take(s); /* a disk too full for it is logged, not fatal */

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

    /* The checkpointer's connection before any thread starts, so a failure here
     * has nothing to stop. */
    rc = conn_open(&s->cconn, path, true, err_msg);
    if (rc != 0)
        goto out_destroy;
    sqlite3_wal_hook(s->wconn.db, wal_hook, s);

    int prc = pthread_create(&s->writer, NULL, writer_main, s);
    if (prc != 0) {
        *err_msg = store__set_open_error("cannot start the store writer thread: %s",
                                         strerror(prc));
        rc = BH_EIO;
        goto out_destroy;
    }
    s->writer_started = true;
    prc = pthread_create(&s->checkpointer, NULL, checkpointer_main, s);
    if (prc != 0) {
        *err_msg = store__set_open_error("cannot start the store checkpointer thread: %s",
                                         strerror(prc));
        rc = BH_EIO;
        sq_shutdown(&s->base);
        goto out_destroy;
    }
    s->ckpt_started = true;
    *out = &s->base;
    return 0;

out_destroy:
    sq_destroy(&s->base);
    return rc;
}
