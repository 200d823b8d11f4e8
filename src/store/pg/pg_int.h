/*
 * pg_int.h: internals shared by the files of the PostgreSQL back-end.
 */
#ifndef BREAKHOOK_STORE_PG_PG_INT_H
#define BREAKHOOK_STORE_PG_PG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_int.h"

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

/* ---- commit notifications between nodes (notify.c) ---------------------------------
 * One per store handle. The back-end hands it every COMMIT's notes; it sends them,
 * coalesced, to the other processes on the database, and (once listening) tells
 * this handle's subscribers about theirs. notify.c's header comment has the design. */
typedef struct pg__notify pg__notify_t;

/* At most one notification per this many milliseconds while commits are pending. */
#define PG__NOTIFY_INTERVAL_MS 20
/* PostgreSQL's limit on a NOTIFY payload, NUL included here. */
#define PG__NOTIFY_PAYLOAD_MAX 8000
/* Random bytes of a node id (hex in payloads). */
#define PG__NODE_ID_BYTES 8

/* A new notifier for base with a fresh random node id; starts no thread. url is the
 * store's and must outlive it. 0, BH_ENOMEM or BH_EIO (no random bytes, no eventfd). */
BH_MUST_USE int pg__notify_new(store_t *base, const char *url, pg__notify_t **out);
/* After a COMMIT that kept notes: merges them into the pending set (per tenant: the
 * highest version, the bits ORed; more than the set holds becomes "all") and wakes
 * the sender, starting its thread on first use. Never blocks on the network. Any
 * thread. */
void pg__notify_commit(pg__notify_t *n, const store__commit_t *notes, size_t n_notes);
/* Starts the listener thread unless it runs or stopping began. Any thread;
 * idempotent. */
void pg__notify_listen(pg__notify_t *n);
/* Sends what is pending (bounded tries), then stops both threads. Idempotent; after
 * it, commits are no longer sent and subscribers hear no other node. */
void pg__notify_stop(pg__notify_t *n);
/* Stops (if not yet) and frees. NULL is a no-op. */
void pg__notify_free(pg__notify_t *n);
/* The node id, 2 * PG__NODE_ID_BYTES hex characters; valid while n lives. */
const char *pg__notify_node(const pg__notify_t *n);

/* Reads a payload ("<node> all" or "<node> tenant:version:what ..."): nothing when
 * the node is self (NULL: no node is self), else fn once per item (tenant 0 for
 * "all"), only after every item read well. BH_EINVAL for a payload it cannot read
 * (then fn was not called). Pure; exposed for tests. */
typedef void (*pg__notify_item_fn)(void *arg, int64_t tenant_id, uint64_t version,
                                   unsigned what);
BH_MUST_USE int pg__notify_parse(const char *payload, const char *self, pg__notify_item_fn fn,
                                 void *arg);

#endif
