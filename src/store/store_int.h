/*
 * store_int.h: what the store's front end and domain layer share with its back-ends.
 *
 * Three layers, the way Redis's ae.c sits on ae_epoll.c or ae_kqueue.c:
 *
 *   store.c       checks every argument once, times every call (store__timed), and
 *                 calls the domain layer or, for plain reads, the back-end;
 *   writes.c      the rules of breaks data: versions, unchanged detection, computed
 *   delivery.c    durations and the definition fan-out, reasons, change-log records
 *   deltas.c      and tombstones (writes.c); the webhook version window, the delivery
 *                 bookkeeping, the change-log prune and its horizon (delivery.c);
 *                 the delta rules (deltas.c). Written once, for every back-end;
 *   back-ends     SQL, statements, connections, transactions: the ops table below.
 *
 * A back-end allocates its own struct with a store_t as its first member and fills
 * in `ops`; callers of store.h never see which back-end runs. Adding PostgreSQL
 * means one more ops table and one more branch in store_open.
 *
 * Arguments reaching a back-end are already valid: non-NULL pointers, tenant names
 * that pass store__tenant_name_valid, strings NUL-terminated inside their struct
 * fields. Back-ends still scope every tenant query by tenant id.
 */
#ifndef BREAKHOOK_STORE_STORE_INT_H
#define BREAKHOOK_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* ---- metrics (store/metrics.c) ------------------------------------------------ *
 * Store calls are timed in store.c, per operation; back-ends report what each
 * COMMIT made durable with store__committed, from their writer, right after the
 * COMMIT returned. */

typedef enum store__op {
    STORE__OP_PING,
    STORE__OP_SCHEMA_VERSION,
    STORE__OP_TENANT_CREATE,
    STORE__OP_TENANT_GET,
    STORE__OP_TENANT_LIST,
    STORE__OP_CLIENT_CREATE,
    STORE__OP_CLIENT_GET,
    STORE__OP_CLIENT_LIST,
    STORE__OP_CLIENT_LIST_REVOKED,
    STORE__OP_CLIENT_REVOKE,
    STORE__OP_SIGNING_KEY_LIST,
    STORE__OP_SIGNING_KEY_ADD,
    STORE__OP_SIGNING_KEY_ENSURE,
    STORE__OP_PERSON_PUT,
    STORE__OP_PERSON_DELETE,
    STORE__OP_DEFINITION_PUT,
    STORE__OP_DEFINITION_DELETE,
    STORE__OP_BREAK_PUT,
    STORE__OP_BREAK_DELETE,
    STORE__OP_BREAKS_APPLY,
    STORE__OP_PERSON_GET,
    STORE__OP_PEOPLE_GET_MANY,
    STORE__OP_DEFINITION_GET,
    STORE__OP_DEFINITIONS_LIST,
    STORE__OP_BREAK_GET,
    STORE__OP_BREAKS_LIST,
    STORE__OP_CHANGES_AFTER,
    STORE__OP_TENANT_VERSION,
    STORE__OP_WEBHOOK_CREATE,
    STORE__OP_WEBHOOK_GET,
    STORE__OP_WEBHOOKS_LIST,
    STORE__OP_WEBHOOK_DISABLE,
    STORE__OP_WEBHOOKS_EXPIRE,
    STORE__OP_WEBHOOK_PENDING,
    STORE__OP_WEBHOOKS_ACTIVE,
    STORE__OP_DELIVERY_RETRYING,
    STORE__OP_DELIVERY_ACKED,
    STORE__OP_DELIVERY_COMMIT,
    STORE__OP_ATTEMPTS_LIST,
    STORE__OP_CHANGES_PRUNE,
    STORE__OP_ATTEMPTS_PRUNE,
    STORE__OP_WEBHOOKS_PRUNE,
    STORE__OP_DELTA_START,
    STORE__OP_DELTA_GET,
    STORE__OP_DELTA_TOUCH,
    STORE__OP_DELTAS_PRUNE,
    STORE__OP_COUNT
} store__op_t;

typedef struct store__metrics store__metrics_t;
typedef struct store__subs store__subs_t;

/* One tenant's part of a committed transaction: versions first..last (first > last
 * when it took none), the change-log entries it appended per collection, and whether
 * it created or disabled one of the tenant's webhooks. */
typedef struct store__commit {
    int64_t tenant_id;
    uint64_t first, last;
    uint32_t created[4];      /* indexed by store_collection_t */
    bool webhooks;
} store__commit_t;

BH_MUST_USE int store__metrics_new(store__metrics_t **out);
void store__metrics_free(store__metrics_t *m);
/* Ends the timing of a call started at t0 (metrics_now_ns) and passes rc through. */
int store__timed(store_t *s, store__op_t op, uint64_t t0, int rc);
/* From the writer thread, right after a COMMIT that made jobs write jobs durable;
 * commits describes the tenants whose versions it took. Records the commit time of
 * those versions (store_commit_times), counts the change-log entries, observes the
 * group size (metrics.c), then tells the subscribers (store.c). */
void store__committed(store_t *s, const store__commit_t *commits, size_t n, size_t jobs);
/* The metrics part of store__committed. */
void store__metrics_committed(store_t *s, const store__commit_t *commits, size_t n,
                              size_t jobs);
/* Another process committed to the same database: tells the subscribers (tenant 0,
 * "look everywhere"). A back-end calls it when it cannot say which tenants (SQLite's
 * data_version) or may have missed some (PostgreSQL, after its listening connection
 * (re)connected). */
void store__external_commit(store_t *s);
/* Another process committed to the same database and said what, per tenant: tells
 * the subscribers (tenant_id > 0; version its last committed one or 0; what as in
 * store.h). Not counted in this process's metrics or commit times. */
void store__external_tenant(store_t *s, int64_t tenant_id, uint64_t version, unsigned what);

BH_MUST_USE int store__subs_new(store__subs_t **out);
void store__subs_free(store__subs_t *subs);
/* n webhooks went from Enabled to Disabled for reason (after the commit). A back-end
 * reports the disables it made; store.c the expiry sweep's. */
void store__webhooks_disabled(store_t *s, store_webhook_reason_t reason, size_t n);

/* ---- write transactions and primitives ------------------------------------------ *
 *
 * The domain layer (writes.c, delivery.c, deltas.c) runs a write as a function called inside a
 * transaction the back-end owns, on a thread the back-end owns: SQLite's writer
 * (group commit, one savepoint per job unless the job runs solo), for PostgreSQL a
 * blocking libpq connection on a store-owned thread. The function reads and writes
 * through the primitives below, each taking the transaction handle. A primitive is
 * one store round trip on a network database and works on a SET of rows, so that a
 * $batch window or a delivery batch is a handful of calls, not one per line; the
 * SQLite back-end may loop over a prepared statement inside one (cheap in-process).
 *
 * Every primitive returns 0 or a BH_E* store failure (BH_EIO, BH_ENOMEM, BH_ENOSPC,
 * BH_EDISKIO...), after which the transaction function returns that error and the
 * back-end rolls the job back. The only other codes are the ones a contract below
 * names (a missing tenant or webhook, a taken webhook id); refusals of a write (a
 * missing person, a conflict, their reasons) are decided above, from what the
 * primitives read. A primitive sees every write made earlier in the same
 * transaction, and assumes its arguments valid (the front end checked them). Arrays
 * of rows are applied in their order; out arrays have room for n elements.
 *
 * Shaped for PostgreSQL: counter_get is the tenant's write lock (SELECT ... FOR
 * UPDATE), held to commit, which is what keeps version order equal to commit order
 * and every webhook window exact; a set primitive is one statement over arrays
 * (unnest) or a pipelined batch.
 */

/* A back-end's transaction handle: valid only inside the store__tx_fn it was passed
 * to, on that thread. */
typedef struct store__tx store__tx_t;

/* A write run by the back-end inside its transaction. 0 keeps what it wrote; any
 * other value rolls it back (alone: the rest of a group commit is kept) and is what
 * run_write returns. */
typedef int (*store__tx_fn)(store__tx_t *tx, void *arg);

/* A change-log row. body (n bytes, not NUL-terminated) is the canonical JSON of the
 * record at version, or its tombstone; has_date false stores no date, has_prev_date
 * false no previous date (store_change_t.prev_date: writes.c decides it). */
typedef struct store__change_row {
    uint64_t version;
    store_collection_t collection;
    store_change_type_t type;
    int64_t record_id;
    bool has_date;
    int32_t date;
    bool has_prev_date;
    int32_t prev_date;
    int64_t committed_at_ms;
    const char *body;
    size_t body_len;
} store__change_row_t;

/* What a break write needs of its definition: the numbers a computed duration
 * depends on and the window (earliest start, latest end; has_* false when the bound
 * is not set) a break without start and end takes; exists false: the tenant has no
 * such definition. */
typedef struct store__def_calc {
    int64_t id;
    bool exists;
    int32_t paid, minimum, maximum, if_not_clocked;
    bool uninterrupted;
    bool has_earliest, has_latest;
    int32_t earliest, latest;
} store__def_calc_t;

/* A definition as stored: the record and its translations already encoded
 * (store__texts_encode), so that every back-end stores the same text. */
typedef struct store__definition_row {
    const model_definition_t *d;   /* d->version is the version to store */
    const char *name_tr;
    const char *friendly_tr;
} store__definition_row_t;

/* What a break upsert must know before it decides: whether its person exists and
 * the row as it is now. id and person_id in; the rest out. */
typedef struct store__break_probe {
    int64_t id, person_id;
    bool person_exists;
    bool exists;
    model_break_t cur;             /* when exists */
} store__break_probe_t;

typedef enum store__break_write {
    STORE__BREAK_INSERT,    /* b is new */
    STORE__BREAK_UPDATE,    /* b replaces prev (every column; prev lets the back-end
                               leave index entries of unchanged columns alone) */
    STORE__BREAK_SET_DERIVED, /* only b.calculated, b.start, b.end and b.version
                                 change (a definition fan-out) */
    STORE__BREAK_SET_GIVEN, /* only b.calculated_given and b.window_taken change (no
                               new version) */
    STORE__BREAK_DELETE,    /* b.id goes */
} store__break_write_t;

typedef struct store__break_row {
    store__break_write_t kind;
    model_break_t b;
    model_break_t prev;            /* UPDATE: the row it replaces */
} store__break_row_t;

/* Which breaks reference a record (uses_count). */
typedef enum store__uses {
    STORE__USES_PERSON,
    STORE__USES_DEFINITION,
} store__uses_t;

/* A webhook's delivery state in one partition (store.h, "delivery state"), keyed by
 * (tenant_id, webhook_id, part), as the marks primitives read and write it. */
typedef struct store__mark {
    int64_t tenant_id;
    const char *webhook_id;
    uint32_t part;
    bool found;                    /* read: the webhook exists in the tenant and
                                      part < partitions */
    uint32_t partitions;           /* read: the webhook's partitions; 0 when it does
                                      not exist */
    uint64_t version;              /* the partition's watermark */
    int64_t last_success_at_ms;    /* 0: none */
    int64_t last_failure_at_ms;    /* 0: none */
} store__mark_t;

/* An acknowledged record version, in the partition delivery.c computed for it. */
typedef struct store__ack_row {
    int64_t tenant_id;
    const char *webhook_id;
    uint32_t part;
    int64_t record_id;
    uint64_t version;
} store__ack_row_t;

/* A range of one collection's change log, counted by changes_count: the tenant's
 * changes with after < version <= upto, committed_at_ms < before_ms and, when
 * partitions > 1, record_id % partitions == part (store_record_partition). */
typedef struct store__change_range {
    store_collection_t collection;
    uint64_t after, upto;
    int64_t before_ms;
    uint32_t partitions, part;
    uint64_t count;                /* out */
    uint64_t oldest;               /* out: its lowest version, 0 when empty */
} store__change_range_t;

/* A webhook to disable (webhooks_set_disabled), or one that expired
 * (webhooks_expiring fills tenant_id, webhook_id and disabled_at_ms = valid_until). */
typedef struct store__disable_row {
    int64_t tenant_id;
    char webhook_id[STORE_WEBHOOK_ID_LEN + 1];
    store_webhook_reason_t reason;
    int64_t disabled_at_ms;
    uint64_t until_version;
    bool changed;                  /* set_disabled: it was Enabled and now is not */
} store__disable_row_t;

typedef struct store__tenant_version {
    int64_t tenant_id;
    uint64_t version;
} store__tenant_version_t;

/* What holds a tenant's change log back, for the change-log prune: one partition of
 * an Enabled webhook (its window start and the partition's watermark), or one delta
 * (from_version and watermark both its floor_version). Nothing at or below
 * max(from_version, watermark) is needed any more by it. */
typedef struct store__floor {
    int64_t tenant_id;
    uint64_t from_version, watermark;
} store__floor_t;

/* ---- copying (store/copy.c) ------------------------------------------------------- *
 * breakhook migrate copies tables row by row between back-ends that keep the same
 * logical schema: the same table and column names, integers, text and blobs. A
 * table is named with its columns (in order) and the columns that order it. */

typedef enum store__vtype {
    STORE__V_NULL,
    STORE__V_INT,
    STORE__V_TEXT,
    STORE__V_BLOB,
} store__vtype_t;

typedef struct store__value {
    store__vtype_t type;
    int64_t i;                     /* INT */
    const void *p;                 /* TEXT (not NUL-terminated) and BLOB */
    size_t n;
} store__value_t;

typedef struct store__table {
    const char *name;
    const char *const *cols;
    size_t n_cols;
    const char *order_by;          /* columns, comma-separated */
} store__table_t;

/* Receives n_rows rows of n_cols values each (row-major), valid during the call. */
typedef int (*store__rows_fn)(void *arg, const store__value_t *vals, size_t n_rows);

typedef struct store__ops {
    const char *name; /* "sqlite", "postgres": for logs */

    /* Stops accepting calls (later ones get BH_ESHUTDOWN), waits for the calls in
     * flight, drains the write queue and stops the writer. The handle stays valid.
     * Idempotent. */
    void (*shutdown)(store_t *s);
    /* Frees everything; shutdown has already run. */
    void (*destroy)(store_t *s);

    /* Optional (NULL: nothing to do). Called by store_subscribe after it added a
     * subscriber, outside its lock: a back-end that must start something to hear
     * other processes' commits (PostgreSQL's listener) starts it here. Idempotent. */
    void (*subscribed)(store_t *s);

    int (*ping)(store_t *s);
    int (*schema_version)(store_t *s, int *out);
    void (*get_stats)(store_t *s, store_stats_t *out);

    int (*tenant_create)(store_t *s, const char *name, store_tenant_t *out);
    int (*tenant_get)(store_t *s, const char *name, store_tenant_t *out);
    int (*tenant_list)(store_t *s, store_tenant_t **out, size_t *n_out);

    int (*client_create)(store_t *s, int64_t tenant_id, const store_client_t *c);
    int (*client_get)(store_t *s, int64_t tenant_id, const char *client_id,
                      store_client_t *out);
    int (*client_list)(store_t *s, int64_t tenant_id, store_client_t **out, size_t *n_out);
    int (*client_list_revoked)(store_t *s, store_client_t **out, size_t *n_out);
    int (*client_revoke)(store_t *s, int64_t tenant_id, const char *client_id,
                         int64_t now_ms);

    int (*signing_key_list)(store_t *s, store_signing_key_t **out, size_t *n_out);
    int (*signing_key_add)(store_t *s, const store_signing_key_t *k);
    int (*signing_key_ensure)(store_t *s, const store_signing_key_t *candidate,
                              store_signing_key_t *active);

    /* Breaks data reads. */
    int (*person_get)(store_t *s, int64_t tenant_id, int64_t id, model_person_t *out);
    int (*people_get_many)(store_t *s, int64_t tenant_id, const int64_t *ids, size_t n,
                           model_person_t **out, size_t *n_out);
    int (*definition_get)(store_t *s, int64_t tenant_id, int64_t id, model_definition_t *out);
    int (*definitions_list)(store_t *s, int64_t tenant_id, int64_t after_id, size_t limit,
                            model_definition_t **out, size_t *n_out);
    int (*break_get)(store_t *s, int64_t tenant_id, int64_t id, model_break_t *out);
    int (*breaks_list)(store_t *s, int64_t tenant_id, const store_breaks_query_t *q,
                       model_break_t **out, size_t *n_out);
    /* changes_after: the rows (prev_date included) and, read in the same snapshot
     * (one read transaction; PostgreSQL: REPEATABLE READ), the tenant's prune
     * horizon into *horizon (0 for a missing tenant): delivery.c judges BH_EGONE
     * from it (store__changes_after). */
    int (*changes_after)(store_t *s, int64_t tenant_id, store_collection_t coll,
                         uint64_t after, size_t limit, store_change_t **out, size_t *n_out,
                         uint64_t *horizon);
    int (*tenant_version)(store_t *s, int64_t tenant_id, uint64_t *out);

    /* Webhook reads. The front end has checked that ids are 36 characters and times
     * are positive. */
    /* The rows as stored, with partitions and without delivery state (the delivery
     * fields are 0): delivery.c folds in the marks and applies expiry as readers see
     * it. The list's status filter still judges expiry by q->now_ms (an Enabled row
     * past valid_until lists as Disabled). active: every webhook Enabled in the
     * table with valid_until_ms > now_ms, by tenant and id. */
    int (*webhook_get)(store_t *s, int64_t tenant_id, const char *id, store_webhook_t *out);
    int (*webhooks_list)(store_t *s, int64_t tenant_id, const store_webhook_query_t *q,
                         store_webhook_t **out, size_t *n_out);
    int (*webhooks_active)(store_t *s, int64_t now_ms, store_webhook_t **out, size_t *n_out);

    /* Delivery state reads, plain keyed and range reads on a read connection; the
     * rules (which watermark, which window, what an ack cancels) are delivery.c's.
     * Each is one snapshot of its own, not shared with the next call. Outputs are
     * zeroed; *out arrays are malloc'd (NULL when empty).
     * marks_get: like marks_read below. acks_above: the acks of partition part with
     * version > above, by record id. attempts_newest: per record of partition part
     * (record_id % partitions == part; every record when partitions is 1), its
     * newest attempt (highest seq) among those with the given status and version >
     * above, by record id, as (record, version, attempt, next_attempt_at_ms).
     * changes_count: fills count and oldest of each range (one snapshot per range). */
    int (*marks_get)(store_t *s, store__mark_t *marks, size_t n);
    int (*acks_above)(store_t *s, int64_t tenant_id, const char *webhook_id, uint32_t part,
                      uint64_t above, store_acked_t **out, size_t *n_out);
    int (*attempts_newest)(store_t *s, int64_t tenant_id, const char *webhook_id,
                           store_attempt_status_t status, uint32_t partitions, uint32_t part,
                           uint64_t above, store_retrying_t **out, size_t *n_out);
    int (*changes_count)(store_t *s, int64_t tenant_id, store__change_range_t *ranges,
                         size_t n);

    /* Attempt log reads and pruning. Query statuses are -1 or an attempt status,
     * before_seq >= 0, times positive; outputs are zeroed. */
    int (*attempts_list)(store_t *s, int64_t tenant_id, const char *webhook_id,
                         const store_attempt_query_t *q, store_attempt_t **out,
                         int64_t **seq_out, size_t *n_out);
    int (*attempts_prune)(store_t *s, int64_t before_ms, size_t *n_out);
    /* Change-log pruning, read on a read connection (delivery.c holds the rule).
     * newest: per tenant, by id, the newest version committed before before_ms (0:
     * none); what holds each tenant back is read in the deleting transaction
     * (floors_read below). webhooks_prune:
     * deletes the webhooks disabled before before_ms with their marks, acks and
     * attempts, in chunks (store.h). */
    int (*changes_newest)(store_t *s, int64_t before_ms, store__tenant_version_t **out,
                          size_t *n_out);
    int (*webhooks_prune)(store_t *s, int64_t before_ms, size_t *n_out);

    /* Deltas, keyed (tenant_id, client_id, collection). delta_get: the row, or
     * BH_ENOTFOUND. deltas_prune: deletes the deltas of every tenant with
     * last_used_at_ms < before_ms, in chunks each committed on its own (like
     * attempts_prune); *n_out how many. */
    int (*delta_get)(store_t *s, int64_t tenant_id, const char *client_id,
                     store_collection_t coll, store_delta_t *out);
    int (*deltas_prune)(store_t *s, int64_t before_ms, size_t *n_out);

    /* ---- write transactions (see "write transactions and primitives") ---- */

    /* Runs fn(tx, arg) inside a write transaction on the back-end's own thread and
     * waits for the commit; returns fn's result, or the commit's failure (then
     * nothing fn wrote is kept), or BH_ESHUTDOWN. Several calls may share one
     * commit (group commit), each undone alone on failure. solo: fn may write a lot
     * (a $batch chunk, a definition fan-out); it gets a transaction of its own and
     * no savepoint. Any thread but the back-end's own. */
    int (*run_write)(store_t *s, store__tx_fn fn, void *arg, bool solo);
    /* Records what this job took (versions first..last, change-log entries) for
     * store__committed, which the back-end calls with every kept note right after
     * its COMMIT returned; a job rolled back loses its note. */
    int (*tx_note)(store__tx_t *tx, const store__commit_t *note);

    /* The tenant's version counter: its last assigned changeVersion. get takes the
     * tenant's write lock until commit (PostgreSQL: SELECT ... FOR UPDATE; SQLite:
     * the single writer holds it already), so versions are assigned in commit
     * order; BH_ENOTFOUND when the tenant does not exist. set writes it back. */
    int (*counter_get)(store__tx_t *tx, int64_t tenant_id, uint64_t *out);
    int (*counter_set)(store__tx_t *tx, int64_t tenant_id, uint64_t version);
    /* Appends n change-log rows of the tenant (versions are unique per tenant). */
    int (*changes_append)(store__tx_t *tx, int64_t tenant_id, const store__change_row_t *rows,
                          size_t n);

    /* People. read: found[i] tells whether ids[i] exists, and out[i] is the person
     * with its references sorted by name. exist: the same without the references.
     * ref_owners: owner[i] is the person holding refs[i]'s value under its name, 0
     * when none. write: upserts each person (p->version stored) and replaces its
     * references as a whole. delete: removes each person with its references (the
     * caller checked that no break uses it). uses_count: how many of the tenant's
     * breaks reference each id, out[i]. */
    int (*people_read)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                       model_person_t *out, bool *found);
    int (*people_exist)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                        bool *found);
    int (*ref_owners)(store__tx_t *tx, int64_t tenant_id, const model_ref_t *refs, size_t n,
                      int64_t *owner);
    int (*people_write)(store__tx_t *tx, int64_t tenant_id, const model_person_t *p, size_t n);
    int (*people_delete)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n);
    int (*uses_count)(store__tx_t *tx, int64_t tenant_id, store__uses_t kind,
                      const int64_t *ids, size_t n, int64_t *out);

    /* Definitions. read: the full records (found[i]). calcs_read: only the numbers
     * (out[i].id = ids[i], exists). write: upserts each row. delete: removes each
     * (the caller checked it is unused). computed: the tenant's breaks of
     * definition def_id that take something from it: their duration computed
     * (calculated_given false) or their start and end taken from its window
     * (window_taken true), with id > after_id, by id, at most limit, into out
     * (room for limit). */
    int (*definitions_read)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                            model_definition_t *out, bool *found);
    int (*definition_calcs_read)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids,
                                 size_t n, store__def_calc_t *out);
    int (*definitions_write)(store__tx_t *tx, int64_t tenant_id,
                             const store__definition_row_t *rows, size_t n);
    int (*definitions_delete)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids,
                              size_t n);
    int (*breaks_computed)(store__tx_t *tx, int64_t tenant_id, int64_t def_id,
                           int64_t after_id, size_t limit, model_break_t *out, size_t *n_out);

    /* Breaks. probe: fills each probe (person exists, current row). read: found[i]
     * and out[i]. write: applies each row in order. */
    int (*breaks_probe)(store__tx_t *tx, int64_t tenant_id, store__break_probe_t *p, size_t n);
    int (*breaks_read)(store__tx_t *tx, int64_t tenant_id, const int64_t *ids, size_t n,
                       model_break_t *out, bool *found);
    int (*breaks_write)(store__tx_t *tx, int64_t tenant_id, const store__break_row_t *rows,
                        size_t n);

    /* Webhooks. enabled_count: the tenant's Enabled webhooks not past valid_until at
     * now_ms. insert: w as Enabled with w->from_version and w->partitions (no marks:
     * the caller writes them); BH_EEXIST for a taken id.
     * read: BH_ENOTFOUND when missing (the row as stored, no expiry applied).
     * set_disabled: each row's webhook, if still Enabled, becomes Disabled with the
     * row's reason, disabled_at_ms and until_version (rows[i].changed tells whether
     * it was Enabled). expiring: every Enabled webhook of every tenant with
     * valid_until_ms <= now_ms, ordered by tenant and id, into a malloc'd *out. */
    int (*webhooks_enabled_count)(store__tx_t *tx, int64_t tenant_id, int64_t now_ms,
                                  uint64_t *out);
    int (*webhook_insert)(store__tx_t *tx, int64_t tenant_id, const store_webhook_t *w);
    int (*webhook_read)(store__tx_t *tx, int64_t tenant_id, const char *id,
                        store_webhook_t *out);
    int (*webhooks_set_disabled)(store__tx_t *tx, store__disable_row_t *rows, size_t n);
    int (*webhooks_expiring)(store__tx_t *tx, int64_t now_ms, store__disable_row_t **out,
                             size_t *n_out);
    /* Deletes the tenant's change-log rows with version <= upto, the oldest first, at
     * most limit; *n_out how many, *max_out the highest version deleted (0: none).
     * PostgreSQL: DELETE ... RETURNING version. */
    int (*changes_delete_upto)(store__tx_t *tx, int64_t tenant_id, uint64_t upto, size_t limit,
                               size_t *n_out, uint64_t *max_out);
    /* The prune horizon: per tenant, the highest version the change-log prune has
     * deleted (0: none), a column of the tenant's counter row. horizon_get reads it
     * (BH_ENOTFOUND for a missing tenant); horizon_raise sets each row's tenant's to
     * the greater of the stored and the given version (PostgreSQL: GREATEST on the
     * tenant's row, which the caller locked with counter_get). floors_read: what holds the
     * tenant's change log back, one store__floor_t per partition of each of its
     * Enabled webhooks (status Enabled in the table, expired or not; watermark 0 for
     * a partition without a mark) and one per delta in the table, in no order, into
     * a malloc'd *out. */
    int (*horizon_get)(store__tx_t *tx, int64_t tenant_id, uint64_t *out);
    int (*horizon_raise)(store__tx_t *tx, const store__tenant_version_t *rows, size_t n);
    int (*floors_read)(store__tx_t *tx, int64_t tenant_id, store__floor_t **out,
                       size_t *n_out);

    /* Deltas. deltas_read: for each d[i] (tenant_id, client_id, collection in),
     * found[i] and the stored row into d[i], locked until commit so that a check
     * made on it holds when the row is written back (SQLite: the single writer;
     * PostgreSQL: SELECT ... FOR UPDATE). deltas_write: upserts each row,
     * replacing the one of its (tenant_id, client_id, collection) as a whole. */
    int (*deltas_read)(store__tx_t *tx, store_delta_t *d, bool *found, size_t n);
    int (*deltas_write)(store__tx_t *tx, const store_delta_t *d, size_t n);

    /* Delivery state, keyed by (tenant, webhook, part). attempts_append: appends n
     * attempts. marks_read: for each mark (tenant_id, webhook_id, part in), fills
     * partitions from its webhook, found (the webhook exists and part < partitions),
     * and the partition's version and times (0 when it has no mark row). acks_raise:
     * per (tenant, webhook, part, record) stores the greater of the stored and the
     * given version (the webhook exists). marks_write: sets each partition's
     * watermark and times (0: none), creating its row when missing (a webhook's
     * creation writes partitions 0..partitions-1 at version 0). acks_drop: removes
     * each mark's partition's acks at or below mark.version, and no other
     * partition's. */
    int (*attempts_append)(store__tx_t *tx, const store_attempt_t *a, size_t n);
    int (*marks_read)(store__tx_t *tx, store__mark_t *marks, size_t n);
    int (*acks_raise)(store__tx_t *tx, const store__ack_row_t *acks, size_t n);
    int (*marks_write)(store__tx_t *tx, const store__mark_t *marks, size_t n);
    int (*acks_drop)(store__tx_t *tx, const store__mark_t *marks, size_t n);

    /* Copying (store/copy.c). table_count: the rows of t. table_scan: every row of t
     * in order_by's order, in one read snapshot, handed to fn batch rows at a time
     * (fn's error stops the scan and is returned). table_insert: appends the rows as
     * given (every column, keys included) inside a write transaction. copy_finish:
     * after every table went in, whatever the back-end keeps beside the rows follows
     * them (PostgreSQL: sequences past the highest copied id; SQLite: nothing).
     * in_use: store_in_use. */
    int (*table_count)(store_t *s, const store__table_t *t, uint64_t *out);
    int (*table_scan)(store_t *s, const store__table_t *t, size_t batch, store__rows_fn fn,
                      void *arg);
    int (*table_insert)(store__tx_t *tx, const store__table_t *t, const store__value_t *vals,
                        size_t n_rows);
    int (*copy_finish)(store__tx_t *tx);
    int (*in_use)(store_t *s, bool *in_use);
} store__ops_t;

/* ---- the domain layer ------------------------------------------------------------ *
 * Called by store.c after its argument checks and under its timing; each runs one
 * write through ops->run_write and has the contract of its store.h namesake. */

/* writes.c */
BH_MUST_USE int store__person_put(store_t *s, int64_t tenant_id, const model_person_t *p,
                                  store_write_result_t *res);
BH_MUST_USE int store__person_delete(store_t *s, int64_t tenant_id, int64_t id,
                                     store_write_result_t *res);
BH_MUST_USE int store__definition_put(store_t *s, int64_t tenant_id,
                                      const model_definition_t *d, store_write_result_t *res);
BH_MUST_USE int store__definition_delete(store_t *s, int64_t tenant_id, int64_t id,
                                         store_write_result_t *res);
BH_MUST_USE int store__break_put(store_t *s, int64_t tenant_id, const model_break_t *b,
                                 store_write_result_t *res);
BH_MUST_USE int store__break_delete(store_t *s, int64_t tenant_id, int64_t id,
                                    store_write_result_t *res);
BH_MUST_USE int store__breaks_apply(store_t *s, int64_t tenant_id, store_break_op_t *ops,
                                    size_t n);

/* delivery.c */
/* partitions, 1..1024 (else BH_EINVAL): how many partitions the webhook's delivery
 * state has. store.c passes 1 (one partition per webhook until the multi-node
 * issue); only tests call this directly with more, to check the per-partition rules
 * (test-only until then: the delivery engine runs partition 0 alone). */
BH_MUST_USE int store__webhook_create(store_t *s, int64_t tenant_id, store_webhook_t *w,
                                      size_t max_enabled, uint32_t partitions);
BH_MUST_USE int store__webhook_disable(store_t *s, int64_t tenant_id, const char *id,
                                       store_webhook_reason_t reason, int64_t now_ms);
BH_MUST_USE int store__webhooks_expire(store_t *s, int64_t now_ms, size_t *n_out);
/* The back-end's read, then what a client sees of an expired webhook (store.h). */
BH_MUST_USE int store__webhook_get(store_t *s, int64_t tenant_id, const char *id,
                                   store_webhook_t *out);
BH_MUST_USE int store__webhooks_list(store_t *s, int64_t tenant_id,
                                     const store_webhook_query_t *q, store_webhook_t **out,
                                     size_t *n_out);
BH_MUST_USE int store__webhooks_active(store_t *s, int64_t now_ms, store_webhook_t **out,
                                       size_t *n_out);
BH_MUST_USE int store__webhook_pending(store_t *s, int64_t tenant_id, const char *id,
                                       int64_t now_ms, uint64_t *count, uint64_t *oldest);
BH_MUST_USE int store__delivery_acked(store_t *s, int64_t tenant_id, const char *webhook_id,
                                      uint32_t partition, store_acked_t **out, size_t *n_out);
BH_MUST_USE int store__delivery_retrying(store_t *s, int64_t tenant_id, const char *webhook_id,
                                         uint32_t partition, store_retrying_t **out,
                                         size_t *n_out);
BH_MUST_USE int store__delivery_commit(store_t *s, const store_delivery_batch_t *b);
BH_MUST_USE int store__changes_prune(store_t *s, int64_t before_ms, size_t *n_out);
/* store_copy (copy.c). */
BH_MUST_USE int store__copy(store_t *from, store_t *to, store_copy_progress_fn fn, void *arg,
                            store_copy_count_t counts[STORE_COPY_TABLES]);
/* The back-end's rows and horizon, then BH_EGONE (rows freed) when after is below
 * the horizon. */
BH_MUST_USE int store__changes_after(store_t *s, int64_t tenant_id, store_collection_t coll,
                                     uint64_t after, size_t limit, store_change_t **out,
                                     size_t *n_out);

/* deltas.c */
BH_MUST_USE int store__delta_start(store_t *s, int64_t tenant_id, store_delta_t *d);
BH_MUST_USE int store__delta_touch(store_t *s, int64_t tenant_id, const char *client_id,
                                   store_collection_t coll, const char *id, uint64_t floor,
                                   int64_t now_ms, int64_t ttl_ms, store_delta_t *out);

/* The stored form of a definition's translations (texts.c), the same for every
 * back-end: a JSON array of [lang, text] pairs in the record's order, so decoding
 * gives back exactly what was written. encode: *out is malloc'd; BH_EINVAL when a
 * text is not UTF-8, BH_ENOMEM. decode: s NUL-terminated (NULL reads as unreadable);
 * BH_EIO (logged, naming what) when unreadable. */
BH_MUST_USE int store__texts_encode(const model_text_t *t, char **out);
BH_MUST_USE int store__texts_decode(const char *s, const char *what, model_text_t *t);

/* The common head of every back-end's handle. A back-end copies metrics from its
 * store__config_t (store.c allocates it, and frees it after destroy). */
struct store {
    const store__ops_t *ops;
    store__metrics_t *metrics;
    store__subs_t *subs;
    bh_clock_t *clock;  /* committed_at_ms of changes; the back-end copies it from cfg */
    /* Test hook, set by store_open from BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK=1: a single
     * write takes its version from a sequence before it reaches the writer, the way a
     * back-end that used a database sequence would, so that versions no longer commit
     * in order. tests/store/test_contract_order.c proves its commit-order check catches that. Never
     * set in production. */
    bool test_versions_outside_lock;
};

/* Options with the defaults filled in, as every back-end receives them. */
typedef struct store__config {
    bh_clock_t *clock;
    int read_connections;
    int max_group;
    crypto_master_t master; /* unset: signing keys in the clear */
    int64_t disk_reserve;   /* bytes kept in "<store>-reserve"; 0: no reserve */
    bool serving;           /* store_options_t.serving */
    store__metrics_t *metrics; /* for the back-end's store_t.metrics */
    store__subs_t *subs;       /* for the back-end's store_t.subs */
} store__config_t;

#define STORE__DEFAULT_READ_CONNECTIONS 4
#define STORE__MAX_READ_CONNECTIONS 64
#define STORE__DEFAULT_MAX_GROUP 512

/* The disk reserve (reserve.c): takes (allocates) bytes in the file at path unless it
 * already holds them; 0, BH_ENOSPC (the file is then removed: no partial reserve) or
 * BH_EIO. Blocks (fsync); call it off any event loop. */
BH_MUST_USE int store__reserve_take(const char *path, int64_t bytes);
/* Deletes the reserve file at path, giving its space back; true when there was one. */
bool store__reserve_release(const char *path);

/* True when name is 1..63 characters of [a-z0-9-] starting with a letter or digit. */
bool store__tenant_name_valid(const char *name);

/* Sets the thread-local message store_open hands back through err_msg, and returns
 * it. printf-style. */
const char *store__set_open_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Stops a store like store_close does but keeps the handle valid, so that calls
 * made afterwards fail with BH_ESHUTDOWN instead of touching freed memory. Used by
 * a graceful stop that still has threads holding the handle, and by tests.
 * store_close must still be called to free it. */
void store__shutdown(store_t *s);

/* The SQLite back-end (store/sqlite/store_sqlite.c). path is a file path, never a
 * URL; its parent directory exists. On error *err_msg points to a message from
 * store__set_open_error. */
BH_MUST_USE int sqlite__open(const char *path, const store__config_t *cfg, store_t **out,
                             const char **err_msg);
/* The PostgreSQL back-end (store/pg/store_pg.c). url is a libpq connection URI
 * ("postgres://..." or "postgresql://..."), passed to libpq as given. On error
 * *err_msg points to a message from store__set_open_error. */
BH_MUST_USE int pg__open(const char *url, const store__config_t *cfg, store_t **out,
                         const char **err_msg);

#endif
