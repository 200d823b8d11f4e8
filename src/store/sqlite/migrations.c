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
};

const size_t sqlite__n_migrations = sizeof(sqlite__migrations) / sizeof(sqlite__migrations[0]);
