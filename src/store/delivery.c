/*
 * delivery.c: the rules of webhooks and delivery state, once, above the back-ends.
 *
 * The version window: a webhook gets the changes with from_version < version <=
 * until_version (0: open). from_version is the tenant's counter read inside the
 * write transaction that inserts the webhook, until_version the counter read inside
 * the one that disables it; both hold the tenant's write lock (counter_get), which
 * every data write holds too, so no change can commit between the webhook's window
 * and its state (store.h, "webhooks").
 *
 * Delivery state: per webhook a watermark and times that only rise, and above the
 * watermark the newest acknowledged version of each record. A delivery batch is a
 * handful of primitive calls whatever its size: append the attempts, read the
 * watermarks of the webhooks it names, raise the acks above them, write the raised
 * watermarks and drop the acks they cover.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Delivery batches with more rows than this run solo (a transaction of their own,
 * no savepoint); smaller ones share a group commit. */
#define DELIVERY_SOLO_ROWS 256
/* Change-log rows one prune job deletes; the writer serves other jobs between
 * chunks. */
#define PRUNE_CHUNK 5000

/* ---- the webhook window ------------------------------------------------------------- */

typedef struct {
    store_t *s;
    int64_t tenant_id;
    const store_webhook_t *w;
    size_t max_enabled;
    uint64_t from_version; /* out */
} create_arg_t;

/*
 * The cap check, the read of the tenant's counter and the insert in one write: the
 * counter read takes the tenant's write lock, so no other create slips in between
 * the count and the insert, and from_version is the version of the last change
 * committed before the webhook exists, so every later change is in its window.
 */
static int job_webhook_create(store__tx_t *tx, void *arg)
{
    create_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    uint64_t version = 0, enabled = 0;
    int rc = ops->counter_get(tx, a->tenant_id, &version);
    if (rc == 0)
        rc = ops->webhooks_enabled_count(tx, a->tenant_id, a->w->created_at_ms, &enabled);
    if (rc != 0)
        return rc;
    if (enabled >= (uint64_t)a->max_enabled)
        return BH_ECONFLICT;
    store_webhook_t *w = malloc(sizeof(*w));
    if (!w)
        return BH_ENOMEM;
    *w = *a->w;
    w->from_version = version;
    rc = ops->webhook_insert(tx, a->tenant_id, w);
    free(w);
    if (rc == 0)
        a->from_version = version;
    return rc;
}

int store__webhook_create(store_t *s, int64_t tenant_id, store_webhook_t *w, size_t max_enabled)
{
    create_arg_t a = { s, tenant_id, w, max_enabled, 0 };
    int rc = s->ops->run_write(s, job_webhook_create, &a, false);
    if (rc != 0)
        return rc;
    w->tenant_id = tenant_id;
    w->status = STORE_WH_ENABLED;
    w->reason = STORE_WH_REASON_NONE;
    w->disabled_at_ms = 0;
    w->from_version = a.from_version;
    w->until_version = 0;
    w->last_delivered_version = 0;
    w->last_success_at_ms = 0;
    w->last_failure_at_ms = 0;
    return 0;
}

typedef struct {
    store_t *s;
    int64_t tenant_id;
    const char *id;
    store_webhook_reason_t reason;
    int64_t now_ms;
    store_webhook_reason_t applied; /* the reason written; NONE when nothing changed */
} disable_arg_t;

/* Only an Enabled webhook changes, so the first reason stays. One already past
 * valid_until at now_ms expired before it was disabled: it gets what the sweep
 * would have written (Expired, disabled at valid_until). */
static int job_webhook_disable(store__tx_t *tx, void *arg)
{
    disable_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    store_webhook_t *w = malloc(sizeof(*w));
    if (!w)
        return BH_ENOMEM;
    int rc = ops->webhook_read(tx, a->tenant_id, a->id, w);
    uint64_t version = 0;
    if (rc == 0 && w->status == STORE_WH_ENABLED)
        rc = ops->counter_get(tx, a->tenant_id, &version);
    if (rc == 0 && w->status == STORE_WH_ENABLED) {
        bool expired = w->valid_until_ms <= a->now_ms;
        store__disable_row_t row = { .tenant_id = a->tenant_id,
                                     .reason = expired ? STORE_WH_EXPIRED : a->reason,
                                     .disabled_at_ms = expired ? w->valid_until_ms : a->now_ms,
                                     .until_version = version };
        memcpy(row.webhook_id, w->id, sizeof(row.webhook_id));
        rc = ops->webhooks_set_disabled(tx, &row, 1);
        if (rc == 0 && row.changed)
            a->applied = row.reason;
    }
    free(w);
    return rc;
}

int store__webhook_disable(store_t *s, int64_t tenant_id, const char *id,
                           store_webhook_reason_t reason, int64_t now_ms)
{
    disable_arg_t a = { s, tenant_id, id, reason, now_ms, STORE_WH_REASON_NONE };
    int rc = s->ops->run_write(s, job_webhook_disable, &a, false);
    if (rc == 0 && a.applied != STORE_WH_REASON_NONE)
        store__webhooks_disabled(s, a.applied, 1);
    return rc;
}

typedef struct {
    store_t *s;
    int64_t now_ms;
    size_t n; /* out */
} expire_arg_t;

/* The expiry sweep: every Enabled webhook past valid_until becomes Disabled/Expired
 * at valid_until, with until_version its tenant's counter read under the tenant's
 * write lock like any disable, so the window closes at a version no change of that
 * tenant can slip past. One read of the expired webhooks, one counter read per
 * tenant among them, one write of the set. */
static int job_webhooks_expire(store__tx_t *tx, void *arg)
{
    expire_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    store__disable_row_t *rows = NULL;
    size_t n = 0;
    int rc = ops->webhooks_expiring(tx, a->now_ms, &rows, &n);
    uint64_t version = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i == 0 || rows[i].tenant_id != rows[i - 1].tenant_id)
            rc = ops->counter_get(tx, rows[i].tenant_id, &version);
        rows[i].reason = STORE_WH_EXPIRED;
        rows[i].until_version = version;
    }
    if (rc == 0 && n)
        rc = ops->webhooks_set_disabled(tx, rows, n);
    size_t changed = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        changed += rows[i].changed;
    if (rc == 0)
        a->n = changed;
    free(rows);
    return rc;
}

int store__webhooks_expire(store_t *s, int64_t now_ms, size_t *n_out)
{
    expire_arg_t a = { s, now_ms, 0 };
    int rc = s->ops->run_write(s, job_webhooks_expire, &a, false);
    if (rc == 0)
        *n_out = a.n;
    return rc;
}

/* ---- what readers see ------------------------------------------------------------------ */

/* An Enabled webhook past valid_until at now_ms is Disabled/Expired since valid_until,
 * exactly as the sweep will write it (until_version stays 0 until then; the window's
 * committed_at_ms bound already closes it). */
static void webhook_as_of(store_webhook_t *w, int64_t now_ms)
{
    if (w->status == STORE_WH_ENABLED && w->valid_until_ms <= now_ms) {
        w->status = STORE_WH_DISABLED;
        w->reason = STORE_WH_EXPIRED;
        w->disabled_at_ms = w->valid_until_ms;
    }
}

/* Expiry is judged by the store's clock: a GET has no other time to go by. */
int store__webhook_get(store_t *s, int64_t tenant_id, const char *id, store_webhook_t *out)
{
    int rc = s->ops->webhook_get(s, tenant_id, id, out);
    if (rc == 0)
        webhook_as_of(out, clock_now_ms(s->clock));
    return rc;
}

int store__webhooks_list(store_t *s, int64_t tenant_id, const store_webhook_query_t *q,
                         store_webhook_t **out, size_t *n_out)
{
    int rc = s->ops->webhooks_list(s, tenant_id, q, out, n_out);
    for (size_t i = 0; rc == 0 && i < *n_out; i++)
        webhook_as_of(&(*out)[i], q->now_ms);
    return rc;
}

/* ---- delivery_commit ----------------------------------------------------------------- */

/* The distinct webhooks of a batch, their delivery state as read and as it becomes,
 * and the acks to keep. index maps (tenant, webhook id) to marks (open addressing,
 * index + 1; 0 empty). */
typedef struct commit {
    store__mark_t *marks;   /* distinct webhooks: read, then raised in memory */
    bool *rose;             /* marks[i] changed: write it */
    uint64_t *drop;         /* marks[i]: drop acks at or below (0: none) */
    size_t n_marks;
    uint32_t *index;
    size_t slots;
    struct store_ack *acks; /* the acks above their webhook's watermark */
    size_t n_acks;
} commit_t;

static uint64_t key_hash(int64_t tenant_id, const char *id)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)tenant_id;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* The index of webhook (tenant_id, id) in c->marks, added when new. */
static size_t commit_mark(commit_t *c, int64_t tenant_id, const char *id)
{
    for (size_t i = (size_t)key_hash(tenant_id, id) & (c->slots - 1);;
         i = (i + 1) & (c->slots - 1)) {
        uint32_t v = c->index[i];
        if (v == 0) {
            c->marks[c->n_marks] = (store__mark_t){ .tenant_id = tenant_id, .webhook_id = id };
            c->index[i] = (uint32_t)++c->n_marks;
            return c->n_marks - 1;
        }
        const store__mark_t *m = &c->marks[v - 1];
        if (m->tenant_id == tenant_id && strcmp(m->webhook_id, id) == 0)
            return v - 1;
    }
}

static void commit_free(commit_t *c)
{
    free(c->marks);
    free(c->rose);
    free(c->drop);
    free(c->index);
    free(c->acks);
}

typedef struct {
    store_t *s;
    const store_delivery_batch_t *b;
} commit_arg_t;

/*
 * Attempts appended; acks kept only for a webhook of the tenant and only above its
 * watermark before this batch (at or below it they would be dropped at once), a
 * record's acked version only rising; then each watermark raised in order (version
 * and times only rise; a mark that raises nothing changes nothing) and, when a mark
 * raised anything, its webhook's acks at or below the mark's version dropped, so an
 * ack of this batch that a mark of this batch covers is gone at commit.
 */
static int job_delivery_commit(store__tx_t *tx, void *arg)
{
    commit_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    const store_delivery_batch_t *b = a->b;
    int rc = b->n_attempts ? ops->attempts_append(tx, b->attempts, b->n_attempts) : 0;
    if (rc != 0 || (b->n_acks == 0 && b->n_marks == 0))
        return rc;

    commit_t c = { 0 };
    size_t keys = b->n_acks + b->n_marks;
    c.slots = 16;
    while (c.slots < 2 * keys)
        c.slots *= 2;
    c.marks = malloc(keys * sizeof(*c.marks));
    c.rose = calloc(keys, sizeof(*c.rose));
    c.drop = calloc(keys, sizeof(*c.drop));
    c.index = calloc(c.slots, sizeof(*c.index));
    c.acks = b->n_acks ? malloc(b->n_acks * sizeof(*c.acks)) : NULL;
    if (!c.marks || !c.rose || !c.drop || !c.index || (b->n_acks && !c.acks)) {
        commit_free(&c);
        return BH_ENOMEM;
    }
    for (size_t i = 0; i < b->n_acks; i++)
        (void)commit_mark(&c, b->acks[i].tenant_id, b->acks[i].webhook_id);
    for (size_t i = 0; i < b->n_marks; i++)
        (void)commit_mark(&c, b->marks[i].tenant_id, b->marks[i].webhook_id);
    rc = ops->marks_read(tx, c.marks, c.n_marks);

    for (size_t i = 0; rc == 0 && i < b->n_acks; i++) {
        const struct store_ack *k = &b->acks[i];
        const store__mark_t *m = &c.marks[commit_mark(&c, k->tenant_id, k->webhook_id)];
        if (m->found && k->version > m->version)
            c.acks[c.n_acks++] = *k;
    }
    if (rc == 0 && c.n_acks)
        rc = ops->acks_raise(tx, c.acks, c.n_acks);

    for (size_t i = 0; rc == 0 && i < b->n_marks; i++) {
        const struct store_watermark *w = &b->marks[i];
        size_t j = commit_mark(&c, w->tenant_id, w->webhook_id);
        store__mark_t *m = &c.marks[j];
        if (!m->found)
            continue;
        bool up = w->version > m->version;
        bool ok_up = w->last_success_at_ms > m->last_success_at_ms;
        bool fail_up = w->last_failure_at_ms > m->last_failure_at_ms;
        if (!up && !ok_up && !fail_up)
            continue;
        if (up)
            m->version = w->version;
        if (ok_up)
            m->last_success_at_ms = w->last_success_at_ms;
        if (fail_up)
            m->last_failure_at_ms = w->last_failure_at_ms;
        c.rose[j] = true;
        if (w->version > c.drop[j])
            c.drop[j] = w->version;
    }
    /* The raised states, then the acks each mark covers, one set each. */
    size_t n = 0;
    for (size_t j = 0; rc == 0 && j < c.n_marks; j++)
        if (c.rose[j]) {
            c.drop[n] = c.drop[j];
            c.marks[n++] = c.marks[j];
        }
    if (rc == 0 && n)
        rc = ops->marks_write(tx, c.marks, n);
    size_t n_drop = 0;
    for (size_t j = 0; rc == 0 && j < n; j++)
        if (c.drop[j]) {
            c.marks[n_drop] = c.marks[j];
            c.marks[n_drop++].version = c.drop[j];
        }
    if (rc == 0 && n_drop)
        rc = ops->acks_drop(tx, c.marks, n_drop);
    commit_free(&c);
    return rc;
}

int store__delivery_commit(store_t *s, const store_delivery_batch_t *b)
{
    commit_arg_t a = { s, b };
    size_t rows = b->n_attempts + b->n_acks + b->n_marks;
    return s->ops->run_write(s, job_delivery_commit, &a, rows > DELIVERY_SOLO_ROWS);
}

/* ---- change-log pruning ------------------------------------------------------------- */

typedef struct {
    store_t *s;
    int64_t tenant_id;
    uint64_t upto;
    size_t n; /* out */
} prune_arg_t;

static int job_changes_prune(store__tx_t *tx, void *arg)
{
    prune_arg_t *a = arg;
    return a->s->ops->changes_delete_upto(tx, a->tenant_id, a->upto, PRUNE_CHUNK, &a->n);
}

/*
 * A change committed before before_ms goes once every Enabled webhook of its tenant
 * has passed it (at or below max(from_version, watermark)): a delivered event is
 * pruned, a pending one never is. The newest versions are read before the webhooks:
 * a webhook created in between starts its window at or above every version read,
 * one disabled no longer waits, and a watermark only rises, so the later read never
 * lets a pending event go. The deletes go by version range in chunks, each a solo
 * job of its own, so a week of rows never holds the writer in one long transaction;
 * *n_out counts what committed, also when a later chunk fails.
 */
int store__changes_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    store__tenant_version_t *newest = NULL;
    store__floor_t *floors = NULL;
    size_t n = 0, m = 0;
    int rc = s->ops->changes_newest(s, before_ms, &newest, &n);
    if (rc == 0)
        rc = s->ops->webhook_floors(s, &floors, &m);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t upto = newest[i].version;
        while (k < m && floors[k].tenant_id < newest[i].tenant_id)
            k++;
        for (; k < m && floors[k].tenant_id == newest[i].tenant_id; k++) {
            const store__floor_t *f = &floors[k];
            uint64_t passed = f->from_version > f->last_delivered_version
                                  ? f->from_version
                                  : f->last_delivered_version;
            if (passed < upto)
                upto = passed;
        }
        for (prune_arg_t a = { s, newest[i].tenant_id, upto, PRUNE_CHUNK };
             rc == 0 && upto > 0 && a.n == PRUNE_CHUNK;) {
            a.n = 0;
            rc = s->ops->run_write(s, job_changes_prune, &a, true);
            if (rc == 0)
                *n_out += a.n;
        }
    }
    free(newest);
    free(floors);
    return rc;
}
