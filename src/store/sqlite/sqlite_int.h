/*
 * sqlite_int.h: internals shared by the files of the SQLite back-end.
 */
#ifndef BREAKHOOK_STORE_SQLITE_SQLITE_INT_H
#define BREAKHOOK_STORE_SQLITE_SQLITE_INT_H

#include <stddef.h>

/* The schema, as an ordered list of migrations: entry i takes the database from
 * version i to version i + 1. Entries are append-only: a released migration is
 * never edited, a change is a new entry. Each runs in its own transaction together
 * with its row in schema_migrations. */
extern const char *const sqlite__migrations[];
extern const size_t sqlite__n_migrations;

/* The size the writer truncates the WAL file to when it starts it over after a
 * checkpoint (PRAGMA journal_size_limit). Without it the file keeps its largest size,
 * which a full disk cannot spare. */
#define SQLITE__WAL_LIMIT_BYTES (8 * 1024 * 1024)

#endif
