/*
 * store.h: the one interface to persistent state.
 *
 * Two back-ends sit behind it: SQLite (embedded default, "sqlite:PATH") and, in a
 * later step, PostgreSQL ("postgres://..."). Callers never see which one runs.
 *
 * Threading: every function here may block on disk or network. Call them from a
 * worker thread (uv_queue_work) or from the CLI, never from an event-loop thread.
 * All functions are thread-safe. Writes from many threads are queued to one writer
 * that commits them in groups (group commit); reads run concurrently on a pool of
 * read connections.
 *
 * Tenancy: every function that touches tenant data takes the tenant id as its
 * second argument, and every query it runs is scoped by it. An object of another
 * tenant is BH_ENOTFOUND, exactly like a missing one.
 *
 * Errors: 0, or BH_ENOTFOUND, BH_EEXIST, BH_ECONFLICT, BH_EINVAL, BH_ENOMEM,
 * BH_ESHUTDOWN, BH_EIO (the store failed; details are logged).
 * Results come back through out-parameters the caller owns; arrays returned
 * through `**out` are malloc'd and freed with free().
 */
#ifndef BREAKHOOK_STORE_STORE_H
#define BREAKHOOK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

typedef struct store store_t;

typedef struct store_options {
    bh_clock_t *clock;        /* NULL: clock_system() */
    int read_connections;     /* size of the read pool; 0: 4 */
    int max_group;            /* most writes in one commit; 0: 512 */
} store_options_t;

/* Opens (creating if needed) the store named by url and applies every pending schema
 * migration. On error *err_msg (if given) points to a static or thread-local message
 * suitable for a one-line CLI error. */
BH_MUST_USE int store_open(const char *url, const store_options_t *opt, store_t **out,
                           const char **err_msg);
/* Stops the writer after it drained its queue, closes every connection. NULL is a no-op. */
void store_close(store_t *s);

/* 0 when the store answers a trivial query (readiness). */
BH_MUST_USE int store_ping(store_t *s);
/* The schema version now applied. */
BH_MUST_USE int store_schema_version(store_t *s, int *out);

typedef struct store_stats {
    uint64_t writes;   /* write operations applied */
    uint64_t commits;  /* transactions committed; writes/commits is the group size */
} store_stats_t;
void store_get_stats(store_t *s, store_stats_t *out);

/* ---- tenants ------------------------------------------------------------- */

#define STORE_NAME_MAX 64

typedef struct store_tenant {
    int64_t id;
    char name[STORE_NAME_MAX];  /* [a-z0-9-], 1..63 chars, starts with a letter or digit */
    int64_t created_at_ms;
} store_tenant_t;

/* BH_EINVAL for a malformed name, BH_EEXIST when taken. */
BH_MUST_USE int store_tenant_create(store_t *s, const char *name, store_tenant_t *out);
BH_MUST_USE int store_tenant_get(store_t *s, const char *name, store_tenant_t *out);
BH_MUST_USE int store_tenant_list(store_t *s, store_tenant_t **out, size_t *n_out);

/* ---- API clients (tenant-scoped) ------------------------------------------ */

typedef struct store_client {
    int64_t tenant_id;
    char client_id[64];
    char name[128];
    char scopes[1024];        /* space-separated */
    char secret_hash[256];    /* self-describing hash string, never the secret */
    int64_t created_at_ms;
    int64_t revoked_at_ms;    /* 0 while active */
} store_client_t;

/* c->tenant_id is ignored; tenant_id is used. BH_EEXIST when client_id is taken. */
BH_MUST_USE int store_client_create(store_t *s, int64_t tenant_id, const store_client_t *c);
BH_MUST_USE int store_client_get(store_t *s, int64_t tenant_id, const char *client_id,
                                 store_client_t *out);
/* Ordered by creation. */
BH_MUST_USE int store_client_list(store_t *s, int64_t tenant_id, store_client_t **out,
                                  size_t *n_out);
/* Every revoked client of every tenant (for the in-memory revocation set that
 * authentication checks). Deliberately not tenant-scoped: it is an operator-level
 * query, and revocations are few. */
BH_MUST_USE int store_client_list_revoked(store_t *s, store_client_t **out, size_t *n_out);
/* Sets revoked_at_ms (first revocation wins). BH_ENOTFOUND when missing. */
BH_MUST_USE int store_client_revoke(store_t *s, int64_t tenant_id, const char *client_id,
                                    int64_t now_ms);

/* ---- token signing keys (global: every node must accept every token) ----- */

typedef struct store_signing_key {
    char kid[40];
    unsigned char secret[32];
    int64_t created_at_ms;
    int64_t retired_at_ms;    /* 0 while the key signs new tokens */
} store_signing_key_t;

/* Newest first. */
BH_MUST_USE int store_signing_key_list(store_t *s, store_signing_key_t **out, size_t *n_out);
/* Adds k as the active key and retires (retired_at_ms = k->created_at_ms) the
 * previous active one, in one transaction. */
BH_MUST_USE int store_signing_key_add(store_t *s, const store_signing_key_t *k);
/* First start: when no key is active, stores candidate as the active key. Either
 * way *active receives the active key. Safe when several nodes race. */
BH_MUST_USE int store_signing_key_ensure(store_t *s, const store_signing_key_t *candidate,
                                         store_signing_key_t *active);

#endif
