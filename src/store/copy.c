/*
 * copy.c: store_copy, the copy `breakhook migrate` makes from one store to another
 * (an SQLite file to PostgreSQL, or a file to another file).
 *
 * The copy is of rows, not of records: every table of the logical schema (the same
 * names in every back-end) goes across as stored, keys, versions, sealed keys and
 * delivery state included, so the target serves exactly what the source did and the
 * delivery engine resumes from the same watermarks and acknowledgements. No rule of
 * writes.c or delivery.c runs again: a copy must not renumber a change or redeliver
 * one. Tables go in the order their references need (tenants first), each read in
 * one snapshot of the source and written in chunks, one write transaction each.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define COPY_BATCH 2000 /* rows per write transaction of the target */

#define COLS(...) (const char *const[]){ __VA_ARGS__ }, \
                  sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

/* The logical schema, in the order a copy fills it. */
static const store__table_t tables[STORE_COPY_TABLES] = {
    { "tenants", COLS("id", "name", "created_at_ms", "last_version", "pruned_upto"), "id" },
    { "clients", COLS("tenant_id", "client_id", "name", "scopes", "secret_hash", "created_at_ms",
                      "revoked_at_ms"),
      "tenant_id, client_id" },
    { "signing_keys", COLS("kid", "secret", "created_at_ms", "retired_at_ms"), "kid" },
    { "people", COLS("tenant_id", "id", "version"), "tenant_id, id" },
    { "person_refs", COLS("tenant_id", "person_id", "name", "value"),
      "tenant_id, person_id, name" },
    { "break_definitions", COLS("tenant_id", "id", "version", "paid", "minimum", "maximum",
                                "if_not_clocked", "uninterrupted", "name", "name_tr", "friendly",
                                "friendly_tr", "earliest_start", "latest_end"),
      "tenant_id, id" },
    { "breaks", COLS("tenant_id", "id", "version", "person_id", "definition_id", "date",
                     "calculated", "calculated_given", "clocked", "start", "end", "taken",
                     "window_given"),
      "tenant_id, id" },
    { "changes", COLS("tenant_id", "version", "collection", "type", "record_id", "date",
                      "committed_at_ms", "body", "prev_date"),
      "tenant_id, version" },
    { "webhooks", COLS("tenant_id", "id", "collection", "destination_url", "ext_refs", "key_blob",
                       "created_at_ms", "valid_until_ms", "status", "reason", "disabled_at_ms",
                       "from_version", "until_version", "partitions"),
      "tenant_id, id" },
    { "delivery_marks", COLS("tenant_id", "webhook_id", "part", "version", "last_success_at_ms",
                             "last_failure_at_ms"),
      "tenant_id, webhook_id, part" },
    { "delivery_acks", COLS("tenant_id", "webhook_id", "part", "record_id", "version"),
      "tenant_id, webhook_id, part, record_id" },
    { "delivery_attempts", COLS("seq", "tenant_id", "webhook_id", "event_id", "record_id",
                                "version", "change_type", "attempt", "attempted_at_ms",
                                "duration_ms", "http_status", "error", "next_attempt_at_ms",
                                "status", "excerpt"),
      "seq" },
    { "deltas", COLS("tenant_id", "client_id", "collection", "id", "date_from", "date_to",
                     "start_version", "floor_version", "created_at_ms", "last_used_at_ms"),
      "tenant_id, client_id, collection" },
};

typedef struct insert_job {
    store_t *to;
    const store__table_t *t;
    const store__value_t *vals;
    size_t n_rows;
} insert_job_t;

static int job_insert(store__tx_t *tx, void *arg)
{
    insert_job_t *j = arg;
    return j->to->ops->table_insert(tx, j->t, j->vals, j->n_rows);
}

static int job_finish(store__tx_t *tx, void *arg)
{
    store_t *to = arg;
    return to->ops->copy_finish(tx);
}

typedef struct scan_arg {
    store_t *to;
    const store__table_t *t;
    uint64_t done, total;
    store_copy_progress_fn fn;
    void *fn_arg;
} scan_arg_t;

static int on_rows(void *arg, const store__value_t *vals, size_t n_rows)
{
    scan_arg_t *a = arg;
    insert_job_t j = { a->to, a->t, vals, n_rows };
    int rc = a->to->ops->run_write(a->to, job_insert, &j, true);
    if (rc == 0) {
        a->done += n_rows;
        if (a->fn && a->done < a->total)
            a->fn(a->fn_arg, a->t->name, a->done, a->total);
    }
    return rc;
}

int store__copy(store_t *from, store_t *to, store_copy_progress_fn fn, void *arg,
                store_copy_count_t counts[STORE_COPY_TABLES])
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < STORE_COPY_TABLES; i++) {
        counts[i] = (store_copy_count_t){ .table = tables[i].name };
        uint64_t there = 0;
        rc = from->ops->table_count(from, &tables[i], &counts[i].source);
        if (rc == 0)
            rc = to->ops->table_count(to, &tables[i], &there);
        if (rc == 0 && there > 0)
            rc = BH_ECONFLICT;
    }
    for (size_t i = 0; rc == 0 && i < STORE_COPY_TABLES; i++) {
        scan_arg_t a = { to, &tables[i], 0, counts[i].source, fn, arg };
        rc = from->ops->table_scan(from, &tables[i], COPY_BATCH, on_rows, &a);
        if (rc == 0 && fn)
            fn(arg, tables[i].name, a.done, a.done);
    }
    if (rc == 0)
        rc = to->ops->run_write(to, job_finish, to, true);
    for (size_t i = 0; rc == 0 && i < STORE_COPY_TABLES; i++)
        rc = to->ops->table_count(to, &tables[i], &counts[i].target);
    return rc;
}
