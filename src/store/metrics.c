/*
 * metrics.c: the store's own metrics, kept above the back-ends: call latency per
 * operation, group-commit sizes, change-log entries created, and the commit time
 * of recent versions.
 *
 * Commit times: a change-log row carries committed_at_ms, but that is taken when
 * its transaction starts, before the group's fsync, and in milliseconds. The delivery
 * engine wants the moment the version became durable and visible, so the writer
 * reports each COMMIT here (store__committed) and the engine looks the versions it
 * delivers up (store_commit_times). The last COMMIT_RING commits are kept, in one
 * ring under one lock taken once per commit and once per engine scan, never per
 * event.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "store/store_int.h"

#define COMMIT_RING 8192

static const char *op_names[STORE__OP_COUNT] = {
    [STORE__OP_PING] = "ping",
    [STORE__OP_SCHEMA_VERSION] = "schema_version",
    [STORE__OP_TENANT_CREATE] = "tenant_create",
    [STORE__OP_TENANT_GET] = "tenant_get",
    [STORE__OP_TENANT_LIST] = "tenant_list",
    [STORE__OP_CLIENT_CREATE] = "client_create",
    [STORE__OP_CLIENT_GET] = "client_get",
    [STORE__OP_CLIENT_LIST] = "client_list",
    [STORE__OP_CLIENT_LIST_REVOKED] = "client_list_revoked",
    [STORE__OP_CLIENT_REVOKE] = "client_revoke",
    [STORE__OP_SIGNING_KEY_LIST] = "signing_key_list",
    [STORE__OP_SIGNING_KEY_ADD] = "signing_key_add",
    [STORE__OP_SIGNING_KEY_ENSURE] = "signing_key_ensure",
    [STORE__OP_PERSON_PUT] = "person_put",
    [STORE__OP_PERSON_DELETE] = "person_delete",
    [STORE__OP_DEFINITION_PUT] = "definition_put",
    [STORE__OP_DEFINITION_DELETE] = "definition_delete",
    [STORE__OP_BREAK_PUT] = "break_put",
    [STORE__OP_BREAK_DELETE] = "break_delete",
    [STORE__OP_BREAKS_APPLY] = "breaks_apply",
    [STORE__OP_PERSON_GET] = "person_get",
    [STORE__OP_PEOPLE_GET_MANY] = "people_get_many",
    [STORE__OP_DEFINITION_GET] = "definition_get",
    [STORE__OP_DEFINITIONS_LIST] = "definitions_list",
    [STORE__OP_BREAK_GET] = "break_get",
    [STORE__OP_BREAKS_LIST] = "breaks_list",
    [STORE__OP_CHANGES_AFTER] = "changes_after",
    [STORE__OP_TENANT_VERSION] = "tenant_version",
    [STORE__OP_WEBHOOK_CREATE] = "webhook_create",
    [STORE__OP_WEBHOOK_GET] = "webhook_get",
    [STORE__OP_WEBHOOKS_LIST] = "webhooks_list",
    [STORE__OP_WEBHOOK_DISABLE] = "webhook_disable",
    [STORE__OP_WEBHOOKS_EXPIRE] = "webhooks_expire",
    [STORE__OP_WEBHOOK_PENDING] = "webhook_pending",
    [STORE__OP_WEBHOOKS_ACTIVE] = "webhooks_active",
    [STORE__OP_DELIVERY_RETRYING] = "delivery_retrying",
    [STORE__OP_DELIVERY_ACKED] = "delivery_acked",
    [STORE__OP_DELIVERY_COMMIT] = "delivery_commit",
    [STORE__OP_ATTEMPTS_LIST] = "attempts_list",
    [STORE__OP_CHANGES_PRUNE] = "changes_prune",
    [STORE__OP_ATTEMPTS_PRUNE] = "attempts_prune",
    [STORE__OP_WEBHOOKS_PRUNE] = "webhooks_prune",
    [STORE__OP_DELTA_START] = "delta_start",
    [STORE__OP_DELTA_GET] = "delta_get",
    [STORE__OP_DELTA_TOUCH] = "delta_touch",
    [STORE__OP_DELTAS_PRUNE] = "deltas_prune",
};

/* 10 µs … 5 s, in nanoseconds: a cached read takes tens of microseconds. */
static const uint64_t call_bounds[] = {
    10000,    25000,    50000,     100000,    250000,    500000,     1000000,   2500000,
    5000000,  10000000, 25000000,  50000000,  100000000, 250000000,  500000000, 1000000000,
    2500000000, 5000000000,
};

static const uint64_t group_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };

typedef struct commit_entry {
    int64_t tenant_id;
    uint64_t first, last;
    int64_t at_us;
} commit_entry_t;

struct store__metrics {
    metrics_hist_t calls[STORE__OP_COUNT];
    metrics_hist_t group;
    metrics_counter_t created[4]; /* by store_collection_t */
    metrics_counter_t disabled[5]; /* by store_webhook_reason_t */
    pthread_mutex_t ring_lock;
    commit_entry_t ring[COMMIT_RING];
    uint64_t ring_next;           /* entries written so far; the newest is ring_next - 1 */
};

int store__metrics_new(store__metrics_t **out)
{
    store__metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return BH_ENOMEM;
    for (size_t i = 0; i < STORE__OP_COUNT; i++)
        metrics_hist_init(&m->calls[i], call_bounds, sizeof(call_bounds) / sizeof(call_bounds[0]),
                          1e9);
    metrics_hist_init(&m->group, group_bounds, sizeof(group_bounds) / sizeof(group_bounds[0]), 1);
    pthread_mutex_init(&m->ring_lock, NULL);
    *out = m;
    return 0;
}

void store__metrics_free(store__metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->ring_lock);
    free(m);
}

int store__timed(store_t *s, store__op_t op, uint64_t t0, int rc)
{
    if (s->metrics && op < STORE__OP_COUNT)
        metrics_hist_observe(&s->metrics->calls[op], metrics_now_ns() - t0);
    return rc;
}


void store__metrics_committed(store_t *s, const store__commit_t *commits, size_t n,
                              size_t jobs)
{
    store__metrics_t *m = s->metrics;
    if (!m)
        return;
    metrics_hist_observe(&m->group, jobs);
    int64_t now = metrics_wall_us();
    pthread_mutex_lock(&m->ring_lock);
    for (size_t i = 0; i < n; i++) {
        const store__commit_t *c = &commits[i];
        for (size_t k = 0; k < 4; k++)
            if (c->created[k])
                metrics_counter_add(&m->created[k], c->created[k]);
        if (c->first > c->last)
            continue;
        m->ring[m->ring_next % COMMIT_RING] =
            (commit_entry_t){ c->tenant_id, c->first, c->last, now };
        m->ring_next++;
    }
    pthread_mutex_unlock(&m->ring_lock);
}

void store__webhooks_disabled(store_t *s, store_webhook_reason_t reason, size_t n)
{
    if (s->metrics && (size_t)reason < 5)
        metrics_counter_add(&s->metrics->disabled[reason], n);
}

/* The first index in v[0..n) whose version is >= x. */
static size_t lower_bound(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void store_commit_times(store_t *s, int64_t tenant_id, const uint64_t *versions, size_t n,
                        int64_t *out_us)
{
    for (size_t i = 0; i < n; i++)
        out_us[i] = 0;
    if (!s || !s->metrics || n == 0)
        return;
    store__metrics_t *m = s->metrics;
    pthread_mutex_lock(&m->ring_lock);
    /* Newest first: a tenant's entries go down in version order, so the walk ends
     * at the first of its entries below the lowest version asked for. */
    uint64_t kept = m->ring_next < COMMIT_RING ? m->ring_next : COMMIT_RING;
    for (uint64_t k = 1; k <= kept; k++) {
        const commit_entry_t *e = &m->ring[(m->ring_next - k) % COMMIT_RING];
        if (e->tenant_id != tenant_id)
            continue;
        if (e->last < versions[0])
            break;
        for (size_t i = lower_bound(versions, n, e->first); i < n && versions[i] <= e->last; i++)
            out_us[i] = e->at_us;
    }
    pthread_mutex_unlock(&m->ring_lock);
}

static const char *coll_label(size_t k)
{
    switch (k) {
    case STORE_COLL_PEOPLE: return "people";
    case STORE_COLL_DEFINITIONS: return "break-definitions";
    case STORE_COLL_BREAKS: return "breaks";
    default: return NULL;
    }
}

int store_metrics_write(store_t *s, buf_t *out)
{
    if (!s || !s->metrics)
        return 0;
    store__metrics_t *m = s->metrics;
    char mem[128];
    buf_t labels = { mem, 0, sizeof(mem), sizeof(mem) - 1 };
    int rc = metrics_write_family(out, "breakhook_events_created_total", "counter",
                                  "Change-log entries committed (one event for each webhook "
                                  "subscribed to the collection), by collection.");
    for (size_t k = 0; k < 4 && rc == 0; k++) {
        if (!coll_label(k))
            continue;
        buf_reset(&labels);
        rc = metrics_label(&labels, "collection", coll_label(k));
        rc = rc ? rc
                : metrics_write_u64(out, "breakhook_events_created_total", buf_cstr(&labels),
                                    metrics_counter_get(&m->created[k]));
    }
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_store_call_duration_seconds", "histogram",
                                   "Store calls by operation, from the caller's side (queueing "
                                   "for the writer or a read connection included).");
    for (size_t i = 0; i < STORE__OP_COUNT && rc == 0; i++) {
        if (metrics_hist_count(&m->calls[i]) == 0)
            continue; /* operations this process never ran: no series */
        buf_reset(&labels);
        rc = metrics_label(&labels, "op", op_names[i]);
        rc = rc ? rc
                : metrics_write_hist(out, "breakhook_store_call_duration_seconds",
                                     buf_cstr(&labels), &m->calls[i]);
    }
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_store_group_commit_size", "histogram",
                                   "Write jobs made durable by one COMMIT (group commit).");
    rc = rc ? rc : metrics_write_hist(out, "breakhook_store_group_commit_size", NULL, &m->group);
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_webhooks_disabled_total", "counter",
                                   "Webhooks disabled since the start, by reason (the API lists "
                                   "them; disabled webhooks are not kept in memory).");
    static const char *reasons[5] = { NULL, "Expired", "RetriesExhausted", "DestinationGone",
                                      "Deleted" };
    for (size_t k = 1; k < 5 && rc == 0; k++) {
        buf_reset(&labels);
        rc = metrics_label(&labels, "reason", reasons[k]);
        rc = rc ? rc
                : metrics_write_u64(out, "breakhook_webhooks_disabled_total", buf_cstr(&labels),
                                    metrics_counter_get(&m->disabled[k]));
    }
    store_stats_t st;
    store_get_stats(s, &st);
    return rc ? rc
              : metrics_write_single(out, "breakhook_store_ready", "gauge",
                                     "1 while writes commit; 0 while they fail for a full disk "
                                     "or an I/O error (see /readyz).",
                                     st.disk_rc == 0);
}
