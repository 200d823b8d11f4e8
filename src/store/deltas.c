/*
 * deltas.c: the rules of deltas (store.h, "deltas"), once, above the back-ends.
 *
 * A client has at most one active delta per collection, keyed (tenant, client,
 * collection). Starting one reads the tenant's counter in the writer's transaction,
 * exactly like a webhook's from_version: the counter read takes the tenant's write
 * lock, so every change that commits after the start has a higher version, and a
 * consumer that pages through its initial load and then follows from start_version
 * misses nothing. A follow-up first touches the delta: one write that checks the
 * delta is still the client's active one and not expired, and moves its floor (what
 * the change-log prune keeps above) and its last use, so that the check and the
 * update cannot be split by another follow-up or a new start.
 */
#include <string.h>

#include "store/store_int.h"

typedef struct {
    store_t *s;
    int64_t tenant_id;
    store_delta_t *d; /* in: the new delta; out: with its versions */
} start_arg_t;

static int job_delta_start(store__tx_t *tx, void *arg)
{
    start_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    uint64_t version = 0;
    int rc = ops->counter_get(tx, a->tenant_id, &version);
    if (rc != 0)
        return rc;
    store_delta_t d = *a->d;
    d.tenant_id = a->tenant_id;
    d.start_version = d.floor_version = version;
    d.last_used_at_ms = d.created_at_ms;
    rc = ops->deltas_write(tx, &d, 1);
    if (rc == 0)
        *a->d = d;
    return rc;
}

int store__delta_start(store_t *s, int64_t tenant_id, store_delta_t *d)
{
    start_arg_t a = { s, tenant_id, d };
    return s->ops->run_write(s, job_delta_start, &a, false);
}

typedef struct {
    store_t *s;
    int64_t tenant_id;
    const char *client_id;
    store_collection_t coll;
    const char *id;
    uint64_t floor;
    int64_t now_ms, ttl_ms;
    store_delta_t row; /* out: the row as written */
} touch_arg_t;

/*
 * The client's active delta on the collection, read under the writer's lock: a
 * newer delta replaced id (BH_ECONFLICT) whether or not id would have expired, since
 * that is what the client did last; otherwise id expired when it was last used at or
 * before now_ms - ttl_ms (BH_EGONE); no row at all means it expired and was pruned
 * (BH_ENOTFOUND). A refusal writes nothing.
 */
static int job_delta_touch(store__tx_t *tx, void *arg)
{
    touch_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    store_delta_t d;
    memset(&d, 0, sizeof(d));
    d.tenant_id = a->tenant_id;
    memcpy(d.client_id, a->client_id, strlen(a->client_id) + 1);
    d.collection = a->coll;
    bool found = false;
    int rc = ops->deltas_read(tx, &d, &found, 1);
    if (rc != 0)
        return rc;
    if (!found)
        return BH_ENOTFOUND;
    if (strcmp(d.id, a->id) != 0)
        return BH_ECONFLICT;
    if (d.last_used_at_ms <= a->now_ms - a->ttl_ms)
        return BH_EGONE;
    d.last_used_at_ms = a->now_ms;
    d.floor_version = a->floor;
    rc = ops->deltas_write(tx, &d, 1);
    if (rc == 0)
        a->row = d;
    return rc;
}

int store__delta_touch(store_t *s, int64_t tenant_id, const char *client_id,
                       store_collection_t coll, const char *id, uint64_t floor, int64_t now_ms,
                       int64_t ttl_ms, store_delta_t *out)
{
    touch_arg_t a = { .s = s, .tenant_id = tenant_id, .client_id = client_id, .coll = coll,
                      .id = id, .floor = floor, .now_ms = now_ms, .ttl_ms = ttl_ms };
    int rc = s->ops->run_write(s, job_delta_touch, &a, false);
    if (rc == 0 && out)
        *out = a.row;
    return rc;
}
