/*
 * migrations.c: the SQLite schema, one migration per array entry (see sqlite_int.h).
 *
 * Conventions: times are INTEGER milliseconds since the Unix epoch; "not yet" times
 * (revoked_at_ms, retired_at_ms) are NULL, which the C structs show as 0.
 */
#include "store/sqlite/sqlite_int.h"

const char *const sqlite__migrations[] = {
    /* 1: tenants, their API clients, and the global token signing keys. */
    "CREATE TABLE tenants (\n"
    "  id            INTEGER PRIMARY KEY,\n"
    "  name          TEXT    NOT NULL UNIQUE,\n"
    "  created_at_ms INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE clients (\n"
    "  tenant_id     INTEGER NOT NULL REFERENCES tenants(id),\n"
    "  client_id     TEXT    NOT NULL,\n"
    "  name          TEXT    NOT NULL,\n"
    "  scopes        TEXT    NOT NULL,\n"
    "  secret_hash   TEXT    NOT NULL,\n"
    "  created_at_ms INTEGER NOT NULL,\n"
    "  revoked_at_ms INTEGER,\n"
    "  PRIMARY KEY (tenant_id, client_id)\n"
    ");\n"
    "CREATE TABLE signing_keys (\n"
    "  kid           TEXT    PRIMARY KEY NOT NULL,\n"
    "  secret        BLOB    NOT NULL CHECK (length(secret) = 32),\n"
    "  created_at_ms INTEGER NOT NULL,\n"
    "  retired_at_ms INTEGER\n"
    ");\n"
    /* At most one active key, enforced by the database and not only by the writer,
     * so that a second process on the same file cannot add a second one. */
    "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at_ms IS NULL))\n"
    "  WHERE retired_at_ms IS NULL;\n",

    /* 2: breaks data (people, break definitions, breaks) and the change log.
     *
     * Every table leads with tenant_id and every query binds it, so one tenant's
     * rows are a contiguous key range another tenant's queries never reach. The
     * record tables are WITHOUT ROWID, clustered on (tenant_id, id): a GET or the
     * writer's "current row" read is one b-tree search, and a secondary index
     * entry carries the key itself instead of a rowid.
     *
     * tenants.last_version is the tenant's changeVersion counter. Only the writer
     * reads and bumps it, inside the transaction that writes the changes, so the
     * versions commit together with their changes and in commit order. */
    "ALTER TABLE tenants ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE people (\n"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),\n"
    "  id        INTEGER NOT NULL,\n"
    "  version   INTEGER NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, id)\n"
    ") WITHOUT ROWID;\n"
    /* The UNIQUE key is the rule "a reference value belongs to one person of the
     * tenant"; the writer checks it first to name the other person, this keeps it
     * true whatever writes the file. */
    "CREATE TABLE person_refs (\n"
    "  tenant_id INTEGER NOT NULL,\n"
    "  person_id INTEGER NOT NULL,\n"
    "  name      TEXT    NOT NULL,\n"
    "  value     TEXT    NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, person_id, name),\n"
    "  UNIQUE (tenant_id, name, value),\n"
    "  FOREIGN KEY (tenant_id, person_id) REFERENCES people (tenant_id, id)\n"
    ") WITHOUT ROWID;\n"
    /* The numbers a computed break duration depends on are columns (the writer
     * reads them per break); the texts are kept as given, translations as a JSON
     * array of [lang, text] pairs in lang order. */
    "CREATE TABLE break_definitions (\n"
    "  tenant_id      INTEGER NOT NULL REFERENCES tenants(id),\n"
    "  id             INTEGER NOT NULL,\n"
    "  version        INTEGER NOT NULL,\n"
    "  paid           INTEGER NOT NULL,\n"
    "  minimum        INTEGER NOT NULL,\n"
    "  maximum        INTEGER NOT NULL,\n"
    "  if_not_clocked INTEGER NOT NULL,\n"
    "  uninterrupted  INTEGER NOT NULL,\n"
    "  name           TEXT    NOT NULL,\n"
    "  name_tr        TEXT    NOT NULL,\n"
    "  friendly       TEXT    NOT NULL,\n"
    "  friendly_tr    TEXT    NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, id)\n"
    ") WITHOUT ROWID;\n"
    /* date is days since 1970-01-01. No foreign keys on person_id and
     * definition_id, on purpose: the writer checks both references (and refuses
     * deleting a referenced person or definition) inside the same single-writer
     * transaction, and an enforced foreign key makes SQLite open a statement
     * journal for every insert and update of a break, which cost a measured 10 %
     * of $batch throughput. */
    "CREATE TABLE breaks (\n"
    "  tenant_id        INTEGER NOT NULL,\n"
    "  id               INTEGER NOT NULL,\n"
    "  version          INTEGER NOT NULL,\n"
    "  person_id        INTEGER NOT NULL,\n"
    "  definition_id    INTEGER NOT NULL,\n"
    "  date             INTEGER NOT NULL,\n"
    "  calculated       INTEGER NOT NULL,\n"
    "  calculated_given INTEGER NOT NULL,\n"
    "  clocked          INTEGER NOT NULL,\n"
    "  start            INTEGER NOT NULL,\n"
    "  \"end\"            INTEGER NOT NULL,\n"
    "  taken            INTEGER NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, id)\n"
    ") WITHOUT ROWID;\n"
    /* GET /breaks: a keyset range scan in (date, id) order. */
    "CREATE INDEX breaks_by_date ON breaks (tenant_id, date, id);\n"
    /* GET /breaks with a person filter, and "is this person still referenced". */
    "CREATE INDEX breaks_by_person ON breaks (tenant_id, person_id, date, id);\n"
    /* Fan-out of a definition change to the breaks computed from it
     * (calculated_given = 0), in id order; also "is it still referenced". */
    "CREATE INDEX breaks_by_definition ON breaks (tenant_id, definition_id, calculated_given);\n"
    /* The change log (transactional outbox): one row per version, with the record's
     * canonical JSON at that version or its tombstone. date is the break's date
     * (NULL for other collections), so delta can filter on it without parsing. No
     * foreign keys: a change outlives the record it describes. */
    "CREATE TABLE changes (\n"
    "  tenant_id       INTEGER NOT NULL,\n"
    "  version         INTEGER NOT NULL,\n"
    "  collection      INTEGER NOT NULL,\n"
    "  type            INTEGER NOT NULL,\n"
    "  record_id       INTEGER NOT NULL,\n"
    "  date            INTEGER,\n"
    "  committed_at_ms INTEGER NOT NULL,\n"
    "  body            TEXT    NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, version)\n"
    ") WITHOUT ROWID;\n"
    /* Delta and webhook lanes read one collection after a version. */
    "CREATE INDEX changes_by_collection ON changes (tenant_id, collection, version);\n",

    /* 3: webhooks. The outbox is the change log itself (store.h): a webhook is a
     * version window over its collection's changes, so a write costs nothing per
     * webhook. from_version and until_version are tenants.last_version read by the
     * writer when the webhook was created and disabled; until_version is NULL while
     * Enabled, so a webhook disabled before the tenant's first change has the empty
     * window (0, 0] rather than an unbounded one. Statuses, reasons and collections
     * are the store.h enum values. last_delivered_version is 0 until the first
     * delivery; the other "not yet" times are NULL.
     *
     * status stays Enabled in the row until something disables it; a webhook past
     * valid_until_ms is Disabled/Expired to every reader whether or not the sweep
     * (store_webhooks_expire) has written that yet. */
    "CREATE TABLE webhooks (\n"
    "  tenant_id              INTEGER NOT NULL REFERENCES tenants(id),\n"
    "  id                     TEXT    NOT NULL CHECK (length(id) = 36),\n"
    "  collection             INTEGER NOT NULL,\n"
    "  destination_url        TEXT    NOT NULL,\n"
    "  ext_refs               TEXT    NOT NULL,\n"
    "  key_blob               BLOB    NOT NULL,\n"
    "  created_at_ms          INTEGER NOT NULL,\n"
    "  valid_until_ms         INTEGER NOT NULL,\n"
    "  status                 INTEGER NOT NULL,\n"
    "  reason                 INTEGER NOT NULL,\n"
    "  disabled_at_ms         INTEGER,\n"
    "  from_version           INTEGER NOT NULL,\n"
    "  until_version          INTEGER,\n"
    "  last_delivered_version INTEGER NOT NULL DEFAULT 0,\n"
    "  last_success_at_ms     INTEGER,\n"
    "  last_failure_at_ms     INTEGER,\n"
    "  PRIMARY KEY (tenant_id, id)\n"
    ") WITHOUT ROWID;\n"
    /* GET /webhooks with a status filter: a keyset range in id order within one
     * status (Disabled merges two such ranges, see ST_WH_LIST_DISABLED), and the
     * cap check's count of Enabled, unexpired webhooks, answered from the index
     * alone (valid_until_ms is in it). Without a status filter the list walks the
     * primary key. */
    "CREATE INDEX webhooks_by_status ON webhooks (tenant_id, status, id, valid_until_ms);\n"
    /* The expiry sweep over every tenant: only Enabled webhooks, by validity end. */
    "CREATE INDEX webhooks_expiry ON webhooks (valid_until_ms) WHERE status = 0;\n"
    /* A webhook's pending events are a range of changes_by_collection filtered on
     * committed_at_ms < valid_until_ms. With committed_at_ms in the index entry the
     * count reads the index alone instead of looking up every change row (measured
     * 3.6x faster over a backlog of 270,000 changes, for 1.5 % more file). Same
     * name, same leading columns: the statements that say INDEXED BY
     * changes_by_collection keep their plans. */
    "DROP INDEX changes_by_collection;\n"
    "CREATE INDEX changes_by_collection ON changes\n"
    "  (tenant_id, collection, version, committed_at_ms);\n",

    /* 4: delivery state (store.h, "delivery state"). delivery_acks holds, per webhook,
     * the newest acknowledged version of each record above the webhook's watermark
     * (webhooks.last_delivered_version); the writer drops the rows at or below it
     * whenever it raises the watermark, so the table stays as small as what is in
     * flight or out of order. Clustered on its key: a webhook's acks are one range.
     *
     * delivery_attempts is the debugging log (GET /webhooks/{id}/deliveries), kept
     * after a webhook is disabled or deleted and pruned by age. seq is the rowid;
     * AUTOINCREMENT keeps it from being reused after a prune empties the table, so a
     * client's paging cursor (before_seq) never lands among newer rows. No foreign
     * key to webhooks: the log is keyed by (tenant_id, webhook_id) like the webhook,
     * and readers check the webhook exists in the tenant. "Not yet"/"none" values
     * (no HTTP status, no error, no next attempt) are NULL, shown as 0 or "". */
    "CREATE TABLE delivery_acks (\n"
    "  tenant_id  INTEGER NOT NULL,\n"
    "  webhook_id TEXT    NOT NULL,\n"
    "  record_id  INTEGER NOT NULL,\n"
    "  version    INTEGER NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, webhook_id, record_id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE delivery_attempts (\n"
    "  seq                INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  tenant_id          INTEGER NOT NULL,\n"
    "  webhook_id         TEXT    NOT NULL,\n"
    "  event_id           TEXT    NOT NULL,\n"
    "  record_id          INTEGER NOT NULL,\n"
    "  version            INTEGER NOT NULL,\n"
    "  change_type        INTEGER NOT NULL,\n"
    "  attempt            INTEGER NOT NULL,\n"
    "  attempted_at_ms    INTEGER NOT NULL,\n"
    "  duration_ms        INTEGER NOT NULL,\n"
    "  http_status        INTEGER,\n"
    "  error              TEXT,\n"
    "  next_attempt_at_ms INTEGER,\n"
    "  status             INTEGER NOT NULL,\n"
    "  excerpt            TEXT    NOT NULL\n"
    ");\n"
    /* One webhook's log, newest first: with a status filter one range of this index
     * in seq order; without one, the three status ranges merged in seq order
     * (MERGE (UNION ALL), no sort, stops at the LIMIT; see ST_ATTEMPTS_LIST). Either
     * way a page costs its own rows, however many attempts of other statuses the
     * webhook has, which an index on (tenant_id, webhook_id, seq) with status as a
     * filter would walk past. */
    "CREATE INDEX delivery_attempts_by_webhook ON delivery_attempts\n"
    "  (tenant_id, webhook_id, status, seq);\n"
    /* The retention prune over every tenant, oldest first. */
    "CREATE INDEX delivery_attempts_by_time ON delivery_attempts (attempted_at_ms);\n",

    /* 5: token signing keys are sealed at rest like webhook keys (crypto.h): the
     * secret column holds what crypto_key_seal makes, 33 bytes in the clear (a zero
     * byte, then the key) or 61 bytes under the master key. Existing keys become the
     * clear form here; SQL has no master key, so the store seals them at the next
     * open that has one (store_sqlite.c, keys_seal). A CHECK cannot be altered in
     * SQLite: the table is rebuilt, with its index. */
    "CREATE TABLE signing_keys_new (\n"
    "  kid           TEXT    PRIMARY KEY NOT NULL,\n"
    "  secret        BLOB    NOT NULL CHECK (length(secret) IN (33, 61)),\n"
    "  created_at_ms INTEGER NOT NULL,\n"
    "  retired_at_ms INTEGER\n"
    ");\n"
    "INSERT INTO signing_keys_new (rowid, kid, secret, created_at_ms, retired_at_ms)\n"
    "  SELECT rowid, kid, CAST(X'00' || secret AS BLOB), created_at_ms, retired_at_ms\n"
    "  FROM signing_keys;\n"
    "DROP TABLE signing_keys;\n"
    "ALTER TABLE signing_keys_new RENAME TO signing_keys;\n"
    "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at_ms IS NULL))\n"
    "  WHERE retired_at_ms IS NULL;\n",

    /* 6: the break definition's window (docs/API.md). earliest_start and latest_end
     * are NULL when not set. breaks.window_given is 0 for a break written without
     * start and end, which took them from its definition; every row before this
     * migration gave them. The fan-out of a definition change now selects breaks
     * whose duration OR window is derived: an OR of two flags cannot be one range
     * of the old index, so the index walks a definition's breaks by id with both
     * flags in the entry, and the filter never reads a table row. Still "is this
     * definition referenced" by its leading columns. */
    "ALTER TABLE break_definitions ADD COLUMN earliest_start INTEGER;\n"
    "ALTER TABLE break_definitions ADD COLUMN latest_end INTEGER;\n"
    "ALTER TABLE breaks ADD COLUMN window_given INTEGER NOT NULL DEFAULT 1;\n"
    "DROP INDEX breaks_by_definition;\n"
    "CREATE INDEX breaks_by_definition ON breaks\n"
    "  (tenant_id, definition_id, id, calculated_given, window_given);\n",

    /* 7: delivery state keyed by partition (store.h, "delivery state"). A webhook's
     * records are split into `partitions` partitions by record_id % partitions
     * (store_record_partition), so that a later multi-node step can hand them to
     * different nodes without another redesign; every webhook has one partition
     * until then. delivery_marks holds one watermark and its delivery times per
     * (webhook, partition), created at version 0 with the webhook and filled here,
     * as partition 0, from the webhook columns that held them; delivery_acks gains
     * the partition in its key (a primary key cannot be altered in SQLite: the
     * table is rebuilt), so a partition's acks are one range and a raised
     * watermark drops only its own partition's. The old webhook columns are
     * dropped (none of them is indexed, constrained or referenced, so SQLite 3.35+
     * drops them cleanly): the marks are the only copy of the delivery state. */
    "ALTER TABLE webhooks ADD COLUMN partitions INTEGER NOT NULL DEFAULT 1\n"
    "  CHECK (partitions >= 1);\n"
    "CREATE TABLE delivery_marks (\n"
    "  tenant_id          INTEGER NOT NULL,\n"
    "  webhook_id         TEXT    NOT NULL,\n"
    "  part               INTEGER NOT NULL,\n"
    "  version            INTEGER NOT NULL,\n"
    "  last_success_at_ms INTEGER,\n"
    "  last_failure_at_ms INTEGER,\n"
    "  PRIMARY KEY (tenant_id, webhook_id, part)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO delivery_marks (tenant_id, webhook_id, part, version, last_success_at_ms,\n"
    "                            last_failure_at_ms)\n"
    "  SELECT tenant_id, id, 0, last_delivered_version, last_success_at_ms,\n"
    "         last_failure_at_ms FROM webhooks;\n"
    "CREATE TABLE delivery_acks_new (\n"
    "  tenant_id  INTEGER NOT NULL,\n"
    "  webhook_id TEXT    NOT NULL,\n"
    "  part       INTEGER NOT NULL,\n"
    "  record_id  INTEGER NOT NULL,\n"
    "  version    INTEGER NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, webhook_id, part, record_id)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO delivery_acks_new (tenant_id, webhook_id, part, record_id, version)\n"
    "  SELECT tenant_id, webhook_id, 0, record_id, version FROM delivery_acks;\n"
    "DROP TABLE delivery_acks;\n"
    "ALTER TABLE delivery_acks_new RENAME TO delivery_acks;\n"
    "ALTER TABLE webhooks DROP COLUMN last_delivered_version;\n"
    "ALTER TABLE webhooks DROP COLUMN last_success_at_ms;\n"
    "ALTER TABLE webhooks DROP COLUMN last_failure_at_ms;\n",

    /* 8: delta sync and webhook rollover (#16). changes.prev_date is a break's date
     * just before the change (NULL for an insert and for other collections), so a
     * delta follow-up tells a break that left its range without parsing bodies.
     * tenants.pruned_upto is the prune horizon: the highest version the change-log
     * prune deleted, raised in the deleting transaction, read by changes_after in the
     * same snapshot as the rows and by a resumed webhook's create under the writer.
     * deltas holds each client's one active delta per collection, replaced as a
     * whole by a new start; its floor_version holds the change log back like a
     * webhook's watermark. Rows of existing changes keep prev_date NULL: their
     * previous dates are not known, and no delta started before this migration. */
    "ALTER TABLE changes ADD COLUMN prev_date INTEGER;\n"
    "ALTER TABLE tenants ADD COLUMN pruned_upto INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE deltas (\n"
    "  tenant_id       INTEGER NOT NULL REFERENCES tenants(id),\n"
    "  client_id       TEXT    NOT NULL,\n"
    "  collection      INTEGER NOT NULL,\n"
    "  id              TEXT    NOT NULL CHECK (length(id) = 32),\n"
    "  date_from       INTEGER NOT NULL,\n"
    "  date_to         INTEGER NOT NULL,\n"
    "  start_version   INTEGER NOT NULL,\n"
    "  floor_version   INTEGER NOT NULL,\n"
    "  created_at_ms   INTEGER NOT NULL,\n"
    "  last_used_at_ms INTEGER NOT NULL,\n"
    "  PRIMARY KEY (tenant_id, client_id, collection)\n"
    ") WITHOUT ROWID;\n"
    /* store_deltas_prune over every tenant, the longest unused first. */
    "CREATE INDEX deltas_by_use ON deltas (last_used_at_ms);\n",
};

const size_t sqlite__n_migrations = sizeof(sqlite__migrations) / sizeof(sqlite__migrations[0]);
