/*
 * pg_int.h: internals shared by the files of the PostgreSQL back-end.
 */
#ifndef BREAKHOOK_STORE_PG_PG_INT_H
#define BREAKHOOK_STORE_PG_PG_INT_H

#include <stddef.h>

/* The schema, as an ordered list of migrations: entry i takes the database from
 * version i to version i + 1. Entries are append-only: a released migration is never
 * edited, a change is a new entry. Each runs in its own transaction, after
 * pg_advisory_xact_lock(PG__MIGRATION_LOCK), together with its row in
 * schema_migrations. */
extern const char *const pg__migrations[];
extern const size_t pg__n_migrations;

/* The advisory lock key every breakhook node takes before it looks at or changes the
 * schema ("bhschema" in ASCII), so that nodes starting together apply each migration
 * once. */
#define PG__MIGRATION_LOCK 0x6268736368656d61LL
/* The advisory lock key the token signing key writes take, so that two nodes racing
 * through store_signing_key_ensure agree on one active key ("bhsignky"). */
#define PG__SIGNING_KEY_LOCK 0x62687369676e6b79LL

#endif
