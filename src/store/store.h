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
 * BH_ESHUTDOWN, BH_EIO (the store failed; details are logged), BH_ENOSPC (the
 * disk is full) and BH_EDISKIO (the disk failed a read or write).
 * Results come back through out-parameters the caller owns; arrays returned
 * through `**out` are malloc'd and freed with free().
 *
 * Invariants every back-end keeps (the contract suite in tests/store/ checks them,
 * and every function here, through this header only, against any store URL;
 * test_contract_order.c the commit order):
 *
 *  - Commit order. Each tenant's changeVersions are 1, 2, 3, … with no gap, and
 *    version order is commit order: a reader never sees changeVersion v+1 committed
 *    while v is not. So a consumer (the delivery engine, a delta token) that has read
 *    up to v resumes after v and misses nothing. A back-end keeps it by taking the
 *    tenant's next version from the tenant's counter inside the writing transaction
 *    and holding the tenant's write lock until that transaction commits: SQLite by
 *    its single writer, which runs every write transaction one after another;
 *    PostgreSQL by the row lock of the tenant's counter row (UPDATE … RETURNING),
 *    held to COMMIT. A sequence, or any number taken outside that lock, breaks it
 *    (BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK=1 does exactly that, for the test).
 *  - The outbox. Every committed change is one change-log row in the same
 *    transaction, so there is exactly one event per committed change and webhook
 *    that was Enabled for it. A webhook's window (from_version at creation,
 *    until_version when disabled) is read under the same tenant write lock as the
 *    writes, inside the transaction that creates or disables it, so no change can
 *    commit between a webhook's window and its state.
 */
#ifndef BREAKHOOK_STORE_STORE_H
#define BREAKHOOK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "model/model.h"

typedef struct store store_t;

typedef struct store_options {
    bh_clock_t *clock;        /* NULL: clock_system() */
    int read_connections;     /* size of the read pool; 0: 4 */
    int max_group;            /* most writes in one commit; 0: 512 */
    /* Seals the token signing keys at rest (like webhook keys, crypto.h). NULL or
     * unset: they are stored in the clear. */
    const crypto_master_t *master;
    /* Bytes of disk held in "<store file>-reserve" and given back when a write fails
     * with a full disk, so that the store can checkpoint and recover (serve's
     * --disk-reserve). 0: no reserve (the CLI's short-lived commands). */
    int64_t disk_reserve;
    /* serve sets it: the store is marked as used by a server until it closes, which
     * store_in_use sees from any other process (SQLite: a lock on "<file>-serve.lock";
     * the kernel drops it when the process dies, also by kill -9). */
    bool serving;
} store_options_t;

/* Opens (creating if needed) the store named by url and applies every pending schema
 * migration. With opt->master set, seals every token signing key still stored in
 * the clear, and fails with BH_EINVAL when a sealed one does not open with it (another
 * master key). On error *err_msg (if given) points to a static or thread-local
 * message suitable for a one-line CLI error. */
BH_MUST_USE int store_open(const char *url, const store_options_t *opt, store_t **out,
                           const char **err_msg);
/* Stops the writer after it drained its queue, closes every connection. NULL is a no-op. */
void store_close(store_t *s);

/* 0 when the store answers a trivial query and can write (readiness). After a write
 * failed with a full disk or an I/O error this answers BH_ENOSPC or BH_EDISKIO until
 * a write succeeds again; while it does, a call tries a small probe write at most
 * once every STORE_PROBE_INTERVAL_MS and answers its outcome. */
#define STORE_PROBE_INTERVAL_MS 5000
BH_MUST_USE int store_ping(store_t *s);
/* The schema version now applied. */
BH_MUST_USE int store_schema_version(store_t *s, int *out);

typedef struct store_stats {
    uint64_t writes;   /* write operations applied */
    uint64_t commits;  /* transactions committed; writes/commits is the group size */
    int disk_rc;       /* BH_ENOSPC or BH_EDISKIO while writes fail for the disk; else 0 */
} store_stats_t;
void store_get_stats(store_t *s, store_stats_t *out);

/* When each of versions (ascending) of tenant was committed, in microseconds since
 * the epoch: the moment its COMMIT returned in this process, from memory. 0 for a
 * version this process did not commit or no longer remembers (it keeps the last
 * 8192 commits). Any thread; takes a short lock once per call. */
void store_commit_times(store_t *s, int64_t tenant_id, const uint64_t *versions, size_t n,
                        int64_t *out_us);

/* ---- commit notifications ---------------------------------------------- *
 *
 * Whoever delivers or serves changes (the delivery engine; later delta long-polls)
 * learns of new ones from the store, not from the code that wrote them: fn(arg,
 * tenant_id, version, what) is called after every COMMIT that took versions or
 * created or disabled webhooks, once per tenant: what has STORE_COMMIT_CHANGES when
 * the tenant got new versions (version is then its last committed one, else 0) and
 * STORE_COMMIT_WEBHOOKS when one of its webhooks was created or disabled (not when
 * one merely expires: its validUntil is known in advance). So a write through the
 * API, the CLI's import into the same process's store, or anything else that goes
 * through the store wakes it. Commits made by another process on the same database
 * (the `breakhook import` CLI beside a running server, another node) are reported
 * too, by a back-end-specific route:
 *  - SQLite notices them within STORE_EXTERNAL_POLL_MS and cannot say where: tenant_id
 *    0, version 0 and both bits, "something changed, look everywhere".
 *  - PostgreSQL hears them through LISTEN/NOTIFY, per tenant as above (the other
 *    process's last version and bits), usually within tens of milliseconds; the
 *    other process sends them after its COMMIT and at the latest when it closes its
 *    store. It listens from the first store_subscribe on, and says "look everywhere"
 *    whenever it (re)starts listening: what committed while nobody listened was not
 *    heard, so a subscriber then scans from its last known version.
 * "Look everywhere" may thus come at any time, also with no commit behind it. A
 * process never hears its own commits twice.
 *
 * fn runs on a store thread (SQLite: the writer; PostgreSQL: the committing thread
 * or the listener) with no store lock held: it must not block or call the store; it
 * should only hand the news to its own thread (a uv_async_send). At most
 * STORE_MAX_SUBSCRIBERS at once. */
#define STORE_MAX_SUBSCRIBERS 8
#define STORE_EXTERNAL_POLL_MS 100
#define STORE_COMMIT_CHANGES 1u
#define STORE_COMMIT_WEBHOOKS 2u
typedef void (*store_commit_fn)(void *arg, int64_t tenant_id, uint64_t version, unsigned what);
/* BH_ERANGE when STORE_MAX_SUBSCRIBERS are already subscribed. Any thread; on
 * PostgreSQL the first call starts the listening thread (it connects in the
 * background). */
BH_MUST_USE int store_subscribe(store_t *s, store_commit_fn fn, void *arg);
/* After it returns, fn(arg, ...) is not running and will not be called again. */
void store_unsubscribe(store_t *s, store_commit_fn fn, void *arg);

/* Appends the store's families in the Prometheus text format:
 * breakhook_events_created_total{collection}, breakhook_store_call_duration_seconds{op},
 * breakhook_store_group_commit_size, breakhook_store_ready,
 * breakhook_webhooks_disabled_total{reason}. Reads counters only (and the back-end's
 * stats under its lock); any thread. 0; BH_ETOOBIG when out would pass its maximum
 * (buf.h), BH_ENOMEM when memory runs out. */
BH_MUST_USE int store_metrics_write(store_t *s, buf_t *out);

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

/* The store_signing_key_* functions answer BH_EINVAL when the keys are sealed and
 * the store was opened without the master key (store_options_t.master). */

/* Newest first. */
BH_MUST_USE int store_signing_key_list(store_t *s, store_signing_key_t **out, size_t *n_out);
/* Adds k as the active key and retires (retired_at_ms = k->created_at_ms) the
 * previous active one, in one transaction. */
BH_MUST_USE int store_signing_key_add(store_t *s, const store_signing_key_t *k);
/* First start: when no key is active, stores candidate as the active key. Either
 * way *active receives the active key. Safe when several nodes race. */
BH_MUST_USE int store_signing_key_ensure(store_t *s, const store_signing_key_t *candidate,
                                         store_signing_key_t *active);

/* ---- breaks data (tenant-scoped) ------------------------------------------ *
 *
 * Every committed change (insert, update, delete) of a person, break definition
 * or break gets the tenant's next changeVersion and a row in the tenant's change
 * log, in the same transaction as the change: version order is commit order,
 * because one writer commits. A write that changes nothing gets no version and
 * no change-log row. The change log holds the canonical JSON of the record at
 * that version (or its tombstone), so delta and webhooks can replay it.
 */

typedef enum {
    STORE_COLL_PEOPLE = 1,
    STORE_COLL_DEFINITIONS = 2,
    STORE_COLL_BREAKS = 3,
} store_collection_t;

typedef enum {
    STORE_CHANGE_UPSERT = 0,  /* delta/webhook changeType "InsertOrUpdate" */
    STORE_CHANGE_DELETE = 1,  /* "Delete" */
} store_change_type_t;

typedef enum {
    STORE_OUT_NONE = 0,
    STORE_OUT_CREATED,        /* PUT: 201 */
    STORE_OUT_REPLACED,       /* PUT: 200 */
    STORE_OUT_UNCHANGED,      /* PUT: 200, no new version */
    STORE_OUT_DELETED,        /* DELETE: 204 */
} store_outcome_t;

/* The result of one write. rc: 0; BH_ENOTFOUND (delete of a missing record);
 * BH_EINVAL (a reference to a missing person or definition: reason names the
 * field); BH_ECONFLICT (delete of a referenced record, or an external reference
 * value already used by another person: reason says which). */
typedef struct store_write_result {
    int rc;
    store_outcome_t outcome;
    uint64_t version;         /* the new changeVersion; 0 when unchanged */
    model_break_t stored;     /* breaks: the record as stored (computed duration) */
    size_t fanout;            /* definitions: breaks that got a new version */
    char reason[192];
} store_write_result_t;

/* Each call is one write job (one savepoint in a group commit). The returned int is
 * 0 when the job ran (its own outcome is in *res); BH_ENOTFOUND when the tenant does
 * not exist (nothing written); or a store failure (BH_EIO, BH_ENOSPC, BH_EDISKIO,
 * BH_ENOMEM) or BH_ESHUTDOWN. */
BH_MUST_USE int store_person_put(store_t *s, int64_t tenant_id, const model_person_t *p,
                                 store_write_result_t *res);
BH_MUST_USE int store_person_delete(store_t *s, int64_t tenant_id, int64_t id,
                                    store_write_result_t *res);
/* Changing a definition recomputes, in the same transaction, every break whose
 * duration the server computed from it; each break that changes gets its own
 * version and change-log row (res->fanout counts them). */
BH_MUST_USE int store_definition_put(store_t *s, int64_t tenant_id,
                                     const model_definition_t *d, store_write_result_t *res);
BH_MUST_USE int store_definition_delete(store_t *s, int64_t tenant_id, int64_t id,
                                        store_write_result_t *res);
BH_MUST_USE int store_break_put(store_t *s, int64_t tenant_id, const model_break_t *b,
                                store_write_result_t *res);
BH_MUST_USE int store_break_delete(store_t *s, int64_t tenant_id, int64_t id,
                                   store_write_result_t *res);

/* A $batch line: an upsert of rec, or a delete of rec.id. */
typedef struct store_break_op {
    bool del;
    model_break_t rec;
    store_write_result_t res;  /* filled by store_breaks_apply */
} store_break_op_t;

/* Applies ops in order, in one transaction (callers bound n: $batch sends chunks
 * of at most STORE_BATCH_MAX). Each op is applied or refused on its own: a refused
 * op (its res.rc) writes nothing and leaves the others applied. Returns 0 when the
 * transaction committed; otherwise no op applied and every res.rc is the error. */
#define STORE_BATCH_MAX 8000
BH_MUST_USE int store_breaks_apply(store_t *s, int64_t tenant_id, store_break_op_t *ops,
                                   size_t n);

BH_MUST_USE int store_person_get(store_t *s, int64_t tenant_id, int64_t id,
                                 model_person_t *out);
/* The people with the given ids (missing ones are skipped), for embedding
 * external references. *out is malloc'd. */
BH_MUST_USE int store_people_get_many(store_t *s, int64_t tenant_id, const int64_t *ids,
                                      size_t n, model_person_t **out, size_t *n_out);
BH_MUST_USE int store_definition_get(store_t *s, int64_t tenant_id, int64_t id,
                                     model_definition_t *out);
/* Definitions with id > after_id, by id, at most limit. */
BH_MUST_USE int store_definitions_list(store_t *s, int64_t tenant_id, int64_t after_id,
                                       size_t limit, model_definition_t **out, size_t *n_out);
BH_MUST_USE int store_break_get(store_t *s, int64_t tenant_id, int64_t id, model_break_t *out);

typedef struct store_breaks_query {
    int32_t date_from, date_to;   /* inclusive, days since epoch */
    const int64_t *persons;       /* NULL: every person */
    size_t n_persons;
    bool has_after;               /* keyset: only (date, id) > (after_date, after_id) */
    int32_t after_date;
    int64_t after_id;
    size_t limit;
} store_breaks_query_t;

/* Breaks matching q, sorted by date then id. */
BH_MUST_USE int store_breaks_list(store_t *s, int64_t tenant_id, const store_breaks_query_t *q,
                                  model_break_t **out, size_t *n_out);

typedef struct store_change {
    uint64_t version;
    store_collection_t collection;
    store_change_type_t type;
    int64_t record_id;
    int32_t date;             /* breaks: the break's date (also for deletes) */
    /* Breaks: the break's date just before this change (an update that moved it, a
     * definition fan-out, a delete: the date it had); has_prev_date false for an
     * insert and for other collections. A delta follow-up reports a break that left
     * its date range once, by this. */
    bool has_prev_date;
    int32_t prev_date;
    int64_t committed_at_ms;
    char *body;               /* canonical JSON of the record, or the tombstone */
} store_change_t;

/* Changes of one collection with version > after, in version order, at most limit.
 * BH_EGONE when some of them may be gone: after is below the tenant's prune horizon
 * (store_changes_prune deleted versions above it), judged in the same snapshot as
 * the rows read. */
BH_MUST_USE int store_changes_after(store_t *s, int64_t tenant_id, store_collection_t coll,
                                    uint64_t after, size_t limit, store_change_t **out,
                                    size_t *n_out);
/* Frees an array from store_changes_after (and the bodies). */
void store_changes_free(store_change_t *c, size_t n);
/* The tenant's last assigned changeVersion (0 before the first change). */
BH_MUST_USE int store_tenant_version(store_t *s, int64_t tenant_id, uint64_t *out);

/* ---- deltas (tenant-scoped) ------------------------------------------------ *
 *
 * A delta (SPEC §6) follows one collection's changes for one API client. Its cursor
 * lives in the token the client hands back (sealed by the API); the store keeps, per
 * (tenant, client, collection), the one active delta: its id (tokens name it, so a
 * token of a replaced delta is told apart), its range, the version it started at,
 * when it was last used (for --delta-ttl) and its floor, the cursor of the last
 * follow-up served. The change-log prune keeps every change above the floor of every
 * delta in the table (store_changes_prune); store_deltas_prune drops the expired
 * ones, after which their changes may go.
 */

#define STORE_DELTA_ID_LEN 32      /* 16 random bytes in hex */

typedef struct store_delta {
    char id[STORE_DELTA_ID_LEN + 1];
    int64_t tenant_id;
    char client_id[64];
    store_collection_t collection;      /* STORE_COLL_BREAKS or STORE_COLL_DEFINITIONS */
    int32_t date_from, date_to;         /* breaks: inclusive range, days since the epoch;
                                           definitions: 0, 0 */
    uint64_t start_version;             /* set by store_delta_start */
    uint64_t floor_version;             /* the cursor of the last follow-up served */
    int64_t created_at_ms;
    int64_t last_used_at_ms;
} store_delta_t;

/* Starts d (id, client_id, collection, date range and created_at_ms given by the
 * caller) as the client's active delta on the collection, replacing the one it had,
 * in one write: start_version = floor_version = the tenant's last changeVersion, read
 * in the writer's transaction like a webhook's from_version (written back into *d),
 * last_used_at_ms = created_at_ms. Every change committed after it is above
 * start_version. BH_ENOTFOUND for a missing tenant; BH_EINVAL unless id has
 * STORE_DELTA_ID_LEN characters, client_id is non-empty, collection is breaks or
 * definitions, date_from <= date_to and created_at_ms > 0. */
BH_MUST_USE int store_delta_start(store_t *s, int64_t tenant_id, store_delta_t *d);
/* The client's active delta on coll. BH_ENOTFOUND when none. */
BH_MUST_USE int store_delta_get(store_t *s, int64_t tenant_id, const char *client_id,
                                store_collection_t coll, store_delta_t *out);
/* A follow-up of delta id is about to be served from cursor floor: when the client's
 * active delta on coll is id and was last used after now_ms - ttl_ms, sets its
 * last_used_at_ms to now_ms and floor_version to floor, in one write, and copies the
 * row into *out (may be NULL). Else changes nothing and answers BH_ECONFLICT when
 * the active delta is another one (a newer delta replaced id), BH_EGONE when id
 * expired (last used at or before now_ms - ttl_ms), BH_ENOTFOUND when the client has
 * no delta on coll (it expired and was pruned). ttl_ms > 0, now_ms > 0. */
BH_MUST_USE int store_delta_touch(store_t *s, int64_t tenant_id, const char *client_id,
                                  store_collection_t coll, const char *id, uint64_t floor,
                                  int64_t now_ms, int64_t ttl_ms, store_delta_t *out);
/* Deletes every delta of every tenant last used before before_ms, in bounded chunks;
 * *n_out how many. */
BH_MUST_USE int store_deltas_prune(store_t *s, int64_t before_ms, size_t *n_out);

/* ---- webhooks (tenant-scoped) ---------------------------------------------- *
 *
 * The outbox is the change log itself. A webhook has a version window: it gets
 * every change of its collection with
 *
 *     from_version < version  and  (until_version == 0 or version <= until_version)
 *     and committed_at_ms < valid_until_ms
 *
 * from_version is the tenant's last changeVersion when the webhook was created and
 * until_version the tenant's last changeVersion when it was disabled (deleted,
 * retries exhausted, destination gone), both read inside the single writer's
 * transaction. Since versions are assigned in commit order by that writer, "the
 * webhook was Enabled when the change committed" is exactly "the change's version
 * is inside the window and it committed before validUntil": each committed change
 * is one pending event for each such webhook, never missed, never doubled, at no
 * cost per webhook when data is written. The delivery engine (next issue) walks
 * the window in version order.
 */

typedef enum {
    STORE_WH_ENABLED = 0,
    STORE_WH_DISABLED = 1,
} store_webhook_status_t;

typedef enum {
    STORE_WH_REASON_NONE = 0,
    STORE_WH_EXPIRED = 1,
    STORE_WH_RETRIES_EXHAUSTED = 2,
    STORE_WH_DESTINATION_GONE = 3,
    STORE_WH_DELETED = 4,
} store_webhook_reason_t;

#define STORE_WEBHOOK_ID_LEN 36    /* a UUID in text form */
#define STORE_URL_MAX 2048
#define STORE_KEY_BLOB_MAX 128

typedef struct store_webhook {
    char id[STORE_WEBHOOK_ID_LEN + 1];
    int64_t tenant_id;
    store_collection_t collection;       /* STORE_COLL_BREAKS or STORE_COLL_DEFINITIONS */
    char destination_url[STORE_URL_MAX + 1];
    char ext_refs[2304];                 /* JSON array of {collection,name}, "[]" when none:
                                            16 names of 64 bytes fit */
    unsigned char key_blob[STORE_KEY_BLOB_MAX]; /* the signing key as the API sealed it */
    size_t key_blob_len;
    int64_t created_at_ms;
    int64_t valid_until_ms;
    store_webhook_status_t status;
    store_webhook_reason_t reason;
    int64_t disabled_at_ms;              /* 0 while enabled */
    uint64_t from_version;               /* set by store_webhook_create */
    /* Input of store_webhook_create (rollover, SPEC §7.1 resumeAfter): when resume is
     * true the window starts after resume_after instead of the tenant's last
     * version. Ignored elsewhere; reads set both to 0. */
    bool resume;
    uint64_t resume_after;
    uint64_t until_version;              /* 0 while enabled */
    /* How many partitions its delivery state is split into (store_record_partition),
     * >= 1; set by the store (1 until the multi-node issue raises it). */
    uint32_t partitions;
    /* Delivery health, kept by the delivery engine per partition ("delivery state"
     * below) and read here over all of them: last_delivered_version is the lowest
     * watermark of its partitions (every event at or below it is delivered in every
     * partition), the times the latest of any partition. */
    uint64_t last_delivered_version;
    int64_t last_success_at_ms;
    int64_t last_failure_at_ms;
} store_webhook_t;

/* Creates w (id, collection, destination, ext_refs, key blob, created_at_ms and
 * valid_until_ms given by the caller) as Enabled with from_version = the tenant's
 * last changeVersion, read in the writer's transaction (written back into *w), one
 * partition (w->partitions is ignored and written back as 1) and a watermark of 0.
 * With w->resume, from_version = w->resume_after instead, so the webhook first gets
 * every change after it: BH_ERANGE when resume_after is above the tenant's last
 * changeVersion, BH_EGONE when it is below the tenant's prune horizon (changes
 * after it were pruned), both judged in the same transaction. BH_ECONFLICT when the tenant already has max_enabled Enabled webhooks (expired
 * ones are not counted, whether or not the sweep has marked them yet: now_ms is
 * w->created_at_ms); BH_EEXIST for a duplicate id; BH_ENOTFOUND for a missing
 * tenant. BH_EINVAL unless: id has STORE_WEBHOOK_ID_LEN characters, collection is
 * breaks or definitions, destination_url is non-empty (NUL inside its field),
 * 1 <= key_blob_len <= STORE_KEY_BLOB_MAX, 0 <= created_at_ms < valid_until_ms. */
BH_MUST_USE int store_webhook_create(store_t *s, int64_t tenant_id, store_webhook_t *w,
                                     size_t max_enabled);
/* Reads, here and in store_webhooks_list, show what a client sees: a webhook still
 * Enabled in the table but past valid_until comes back Disabled/Expired with
 * disabled_at_ms = valid_until_ms (until_version stays 0 until the sweep marks it).
 * store_webhook_get judges expiry by the store's clock (store_options_t.clock). An id
 * that is not STORE_WEBHOOK_ID_LEN characters, like another tenant's, is
 * BH_ENOTFOUND. */
BH_MUST_USE int store_webhook_get(store_t *s, int64_t tenant_id, const char *id,
                                  store_webhook_t *out);

typedef struct store_webhook_query {
    int status;                 /* -1: any; else store_webhook_status_t */
    store_collection_t collection; /* 0: any */
    const char *after_id;       /* keyset: ids > after_id; NULL: from the start */
    size_t limit;
    int64_t now_ms;             /* an Enabled webhook past valid_until counts as Disabled */
} store_webhook_query_t;

/* Webhooks ordered by id. Soft-deleted webhooks are included (Disabled/Deleted). */
BH_MUST_USE int store_webhooks_list(store_t *s, int64_t tenant_id, const store_webhook_query_t *q,
                                    store_webhook_t **out, size_t *n_out);
/* Disables an Enabled webhook for reason at now_ms, setting until_version to the
 * tenant's last changeVersion in the writer's transaction. A webhook that is
 * already Disabled keeps its first reason (returns 0). BH_ENOTFOUND when missing.
 * A webhook still Enabled in the table but past valid_until at now_ms expired first:
 * it becomes Disabled/Expired with disabled_at_ms = valid_until_ms, as the sweep
 * would have marked it, whatever reason is given. reason is not NONE; now_ms > 0. */
BH_MUST_USE int store_webhook_disable(store_t *s, int64_t tenant_id, const char *id,
                                      store_webhook_reason_t reason, int64_t now_ms);
/* Marks every Enabled webhook of every tenant with valid_until_ms <= now_ms as
 * Disabled/Expired (until_version as in store_webhook_disable). *n_out: how many. */
BH_MUST_USE int store_webhooks_expire(store_t *s, int64_t now_ms, size_t *n_out);

/* The pending events of a webhook: the changes of its window not yet delivered
 * (in each partition, the partition's records with version > the partition's
 * watermark), their number over all partitions and the oldest version (0 when
 * none). A Disabled webhook has none: nothing more will be delivered; neither has
 * one past valid_until at now_ms. BH_ENOTFOUND when missing. */
BH_MUST_USE int store_webhook_pending(store_t *s, int64_t tenant_id, const char *id,
                                      int64_t now_ms, uint64_t *count, uint64_t *oldest);

/* ---- delivery state (the delivery engine) -------------------------------- *
 *
 * What survives a crash: per webhook and partition, a watermark (every event of the
 * partition's records at or below it is delivered or replaced by a newer one of its
 * record) with the partition's last success and failure times, and, above it, the
 * newest acknowledged version of each of the partition's records. After a restart
 * the engine rescans each window from the watermark and skips, per record, what was
 * acknowledged: every committed change is sent at least once, and a record's older
 * state is never sent after a newer one was acknowledged.
 *
 * Partitions. Delivery state is keyed (tenant, webhook, partition[, record]) so
 * that a webhook's records can later be split among nodes, each owning some
 * partitions with their own watermark, without another change of the schema or of
 * these calls. A record's partition is store_record_partition(record_id,
 * partitions); a webhook has one partition (0) until the multi-node issue raises
 * it, and the delivery engine runs that one. Pruning and store_webhook_pending go by
 * each partition's own watermark; store_webhook_t.last_delivered_version is the
 * lowest of them.
 */

/* The partition of a record in a webhook of `partitions` partitions: record_id mod
 * partitions, in [0, partitions). Record ids are >= 1 (model.h) and partitions >=
 * 1; for those, SQL's `record_id % partitions` is the same number in SQLite and
 * PostgreSQL alike, so a back-end may select a partition's rows in SQL. */
static inline uint32_t store_record_partition(int64_t record_id, uint32_t partitions)
{
    return partitions > 1 ? (uint32_t)(record_id % (int64_t)partitions) : 0;
}

/* Every Enabled webhook of every tenant not past valid_until at now_ms (the engine
 * serves all tenants). *out is malloc'd. */
BH_MUST_USE int store_webhooks_active(store_t *s, int64_t now_ms, store_webhook_t **out,
                                      size_t *n_out);

typedef struct store_acked {
    int64_t record_id;
    uint64_t version;
} store_acked_t;

/* The acknowledged versions of the partition's records above the partition's
 * watermark, by record id. BH_ENOTFOUND when the webhook does not exist in the
 * tenant or has no such partition. */
BH_MUST_USE int store_delivery_acked(store_t *s, int64_t tenant_id, const char *webhook_id,
                                     uint32_t partition, store_acked_t **out, size_t *n_out);

/* A record whose newest attempt above the watermark failed and waits for a retry: the
 * engine resumes its retry count and time after a restart instead of starting over
 * (so a destination that keeps failing still reaches RetriesExhausted). */
typedef struct store_retrying {
    int64_t record_id;
    uint64_t version;             /* of the failed attempt */
    int attempt;                  /* its number: the failures so far */
    int64_t next_attempt_at_ms;
} store_retrying_t;

/* The partition's records whose newest failed attempt above the partition's
 * watermark is followed neither by an acknowledgement of that version or a newer one
 * nor by a give-up (a newer version given up, or the same version's later attempt):
 * those whose newest attempt failed and waits for its retry, by record id. BH_ENOTFOUND when the webhook does not exist in the tenant or has no
 * such partition. */
BH_MUST_USE int store_delivery_retrying(store_t *s, int64_t tenant_id, const char *webhook_id,
                                        uint32_t partition, store_retrying_t **out,
                                        size_t *n_out);

typedef enum {
    STORE_ATTEMPT_DELIVERED = 0,  /* 2xx */
    STORE_ATTEMPT_FAILED = 1,     /* will be retried */
    STORE_ATTEMPT_GAVE_UP = 2,    /* last retry failed, or 410 */
} store_attempt_status_t;

#define STORE_EXCERPT_MAX 4096

/* One delivery attempt, for the debugging log (GET /webhooks/{id}/deliveries). */
typedef struct store_attempt {
    int64_t tenant_id;
    char webhook_id[STORE_WEBHOOK_ID_LEN + 1];
    char event_id[64];
    int64_t record_id;
    uint64_t version;
    store_change_type_t change_type;
    int attempt;                  /* 1 for the first try */
    int64_t attempted_at_ms;
    int64_t duration_ms;
    int http_status;              /* 0 when no answer */
    char error[128];              /* "" when an answer came */
    int64_t next_attempt_at_ms;   /* 0 when none */
    store_attempt_status_t status;
    char excerpt[STORE_EXCERPT_MAX + 1]; /* first bytes of the answer body */
} store_attempt_t;

/* What the engine commits in one transaction (group of results). */
typedef struct store_delivery_batch {
    const store_attempt_t *attempts;   /* appended to the attempt log */
    size_t n_attempts;
    const struct store_ack {          /* goes to the record's partition */
        int64_t tenant_id;
        const char *webhook_id;
        int64_t record_id;
        uint64_t version;             /* acknowledged (2xx) */
    } *acks;
    size_t n_acks;
    const struct store_watermark {
        int64_t tenant_id;
        const char *webhook_id;
        uint64_t version;             /* the partition's new watermark (only raised) */
        int64_t last_success_at_ms;   /* 0: unchanged */
        int64_t last_failure_at_ms;   /* 0: unchanged */
        uint32_t partition;           /* < the webhook's partitions; 0 for one */
    } *marks;
    size_t n_marks;
} store_delivery_batch_t;

/* Commits a batch in one writer job: attempts appended, acks upserted into their
 * record's partition (a record's acked version only rises), watermarks raised, and
 * the acks of a raised watermark's partition at or below it dropped (other
 * partitions' acks stay). Acks and marks of a missing webhook, and marks of a
 * partition the webhook does not have, are ignored. */
BH_MUST_USE int store_delivery_commit(store_t *s, const store_delivery_batch_t *b);

typedef struct store_attempt_query {
    int status;                   /* -1 any; else store_attempt_status_t */
    int64_t before_seq;           /* keyset, newest first: 0 = from the newest */
    size_t limit;
} store_attempt_query_t;

/* The attempt log of one webhook, newest first (readable after soft delete). Each
 * row's seq (for paging) comes back in seq_out[i] (*seq_out is malloc'd like *out).
 * BH_ENOTFOUND when the webhook does not exist in the tenant, whatever q->limit. */
BH_MUST_USE int store_attempts_list(store_t *s, int64_t tenant_id, const char *webhook_id,
                                    const store_attempt_query_t *q, store_attempt_t **out,
                                    int64_t **seq_out, size_t *n_out);
/* Deletes change-log rows committed before before_ms that every Enabled webhook of
 * their tenant has already passed (at or below the lowest watermark of its
 * partitions) and every delta of the tenant still in the table too (at or below its
 * floor_version): a delivered event is pruned, a pending one never is. Raises the
 * tenant's prune horizon to the highest version it deleted, in the same transaction
 * (store_changes_after, store_webhook_create's resume). In bounded chunks; *n_out
 * how many. */
BH_MUST_USE int store_changes_prune(store_t *s, int64_t before_ms, size_t *n_out);
/* Deletes attempts older than before_ms, in bounded chunks; *n_out how many. */
BH_MUST_USE int store_attempts_prune(store_t *s, int64_t before_ms, size_t *n_out);
/* Deletes every Disabled webhook (any reason) disabled before before_ms, with its
 * delivery state and attempt log: it answers BH_ENOTFOUND from then on. In bounded
 * chunks; *n_out how many webhooks. */
BH_MUST_USE int store_webhooks_prune(store_t *s, int64_t before_ms, size_t *n_out);

/* ---- copying a store (breakhook migrate) ------------------------------------ */

/* Whether a server holds the store (store_options_t.serving), this process or
 * another. PostgreSQL: always false (several nodes share one database by design). */
BH_MUST_USE int store_in_use(store_t *s, bool *in_use);

#define STORE_COPY_TABLES 13

/* One table of a copy: its rows in the source, and in the target after the copy. */
typedef struct store_copy_count {
    const char *table;
    uint64_t source;
    uint64_t target;
} store_copy_count_t;

/* Called as rows of a table are copied (done of total), and once with done == total
 * at its end. */
typedef void (*store_copy_progress_fn)(void *arg, const char *table, uint64_t done,
                                       uint64_t total);

/* Copies every row of every table of from into to, as stored: tenants, clients,
 * signing keys (sealed as they are: the target needs the same master key), people,
 * break definitions, breaks, the change log with its versions, the tenants' version
 * counters and prune horizons, webhooks with their windows, keys and delivery state,
 * the attempt log and deltas. Then counts every table again in both into
 * counts[0..STORE_COPY_TABLES). to must hold no row in any of them: BH_ECONFLICT
 * otherwise, before anything is written. Each table goes in chunks, each chunk one
 * write transaction of to; on a failure the copy stops with that error and to is
 * left partly filled (start again on an empty target). from must not change while it
 * runs (the caller checks store_in_use). fn may be NULL. */
BH_MUST_USE int store_copy(store_t *from, store_t *to, store_copy_progress_fn fn, void *arg,
                           store_copy_count_t counts[STORE_COPY_TABLES]);

#endif
