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
 * Delivery state: per webhook and partition (store_record_partition) a watermark
 * and times that only rise, and above the watermark the newest acknowledged version
 * of each of the partition's records. A delivery batch is a handful of primitive
 * calls whatever its size: append the attempts, read the watermarks of the
 * partitions it names, raise the acks above them, write the raised watermarks and
 * drop the acks they cover. The reads (pending events, acks, retry state, what a
 * webhook shows) are plain keyed and range reads of the back-end, combined here.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "store/store_int.h"

/* Delivery batches with more rows than this run solo (a transaction of their own,
 * no savepoint); smaller ones share a group commit. */
#define DELIVERY_SOLO_ROWS 256
/* Change-log rows one prune job deletes; the writer serves other jobs between
 * chunks. */
#define PRUNE_CHUNK 5000
/* The most partitions a webhook's delivery state may have. */
#define PARTITIONS_MAX 1024

/* ---- the webhook window ------------------------------------------------------------- */

typedef struct {
    store_t *s;
    int64_t tenant_id;
    const store_webhook_t *w;
    size_t max_enabled;
    uint32_t partitions;
    uint64_t from_version; /* out */
} create_arg_t;

/* The commit notification says the tenant's webhooks changed (store.h): the engine
 * reloads its list at once instead of at its next full refresh. */
static int note_webhooks(store__tx_t *tx, const store__ops_t *ops, int64_t tenant_id)
{
    store__commit_t note = { .tenant_id = tenant_id, .first = 1, .last = 0, .webhooks = true };
    return ops->tx_note(tx, &note);
}

/*
 * The cap check, the read of the tenant's counter and the insert in one write: the
 * counter read takes the tenant's write lock, so no other create slips in between
 * the count and the insert, and from_version is the version of the last change
 * committed before the webhook exists, so every later change is in its window. Its
 * partitions get their marks at version 0 in the same write.
 *
 * A resumed webhook (rollover) starts its window at resume_after instead, judged
 * under the same lock: above the counter it names a change that does not exist
 * (BH_ERANGE); below the prune horizon some change after it is gone (BH_EGONE). The
 * prune reads what holds a tenant back under that lock too (job_changes_prune), so
 * once this commits nothing after resume_after is pruned until the webhook passes
 * it, and a prune that committed first raised the horizon this reads.
 */
static int job_webhook_create(store__tx_t *tx, void *arg)
{
    create_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    uint64_t version = 0, enabled = 0, horizon = 0;
    int rc = ops->counter_get(tx, a->tenant_id, &version);
    if (rc == 0 && a->w->resume) {
        if (a->w->resume_after > version)
            return BH_ERANGE;
        rc = ops->horizon_get(tx, a->tenant_id, &horizon);
        if (rc == 0 && a->w->resume_after < horizon)
            return BH_EGONE;
        version = a->w->resume_after;
    }
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
    w->partitions = a->partitions;
    rc = ops->webhook_insert(tx, a->tenant_id, w);
    free(w);
    store__mark_t *marks = rc == 0 ? calloc(a->partitions, sizeof(*marks)) : NULL;
    if (rc == 0 && !marks)
        rc = BH_ENOMEM;
    for (uint32_t p = 0; rc == 0 && p < a->partitions; p++)
        marks[p] = (store__mark_t){ .tenant_id = a->tenant_id, .webhook_id = a->w->id, .part = p };
    if (rc == 0)
        rc = ops->marks_write(tx, marks, a->partitions);
    free(marks);
    if (rc == 0)
        rc = note_webhooks(tx, ops, a->tenant_id);
    if (rc == 0)
        a->from_version = version;
    return rc;
}

int store__webhook_create(store_t *s, int64_t tenant_id, store_webhook_t *w, size_t max_enabled,
                          uint32_t partitions)
{
    if (partitions < 1 || partitions > PARTITIONS_MAX)
        return BH_EINVAL;
    create_arg_t a = { s, tenant_id, w, max_enabled, partitions, 0 };
    int rc = s->ops->run_write(s, job_webhook_create, &a, false);
    if (rc != 0)
        return rc;
    w->tenant_id = tenant_id;
    w->status = STORE_WH_ENABLED;
    w->reason = STORE_WH_REASON_NONE;
    w->disabled_at_ms = 0;
    w->from_version = a.from_version;
    w->until_version = 0;
    w->partitions = partitions;
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
        if (rc == 0 && row.changed)
            rc = note_webhooks(tx, ops, a->tenant_id);
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

/* A webhook's partitions as stored; a row without (never written so) has one. */
static uint32_t partitions_of(const store_webhook_t *w)
{
    return w->partitions ? w->partitions : 1;
}

/*
 * What a webhook shows of its delivery state (store.h): the lowest watermark of its
 * partitions, since only at or below it is every event delivered in every
 * partition, and the latest success and failure of any. The marks of every webhook
 * of w[0..n) in one marks_get.
 */
static int webhooks_fold_marks(store_t *s, store_webhook_t *w, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += partitions_of(&w[i]);
    if (total == 0)
        return 0;
    store__mark_t *m = calloc(total, sizeof(*m));
    if (!m)
        return BH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t p = 0; p < partitions_of(&w[i]); p++)
            m[k++] = (store__mark_t){ .tenant_id = w[i].tenant_id, .webhook_id = w[i].id,
                                      .part = p };
    int rc = s->ops->marks_get(s, m, total);
    k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        w[i].last_delivered_version = m[k].version;
        w[i].last_success_at_ms = w[i].last_failure_at_ms = 0;
        for (uint32_t p = 0; p < partitions_of(&w[i]); p++, k++) {
            if (m[k].version < w[i].last_delivered_version)
                w[i].last_delivered_version = m[k].version;
            if (m[k].last_success_at_ms > w[i].last_success_at_ms)
                w[i].last_success_at_ms = m[k].last_success_at_ms;
            if (m[k].last_failure_at_ms > w[i].last_failure_at_ms)
                w[i].last_failure_at_ms = m[k].last_failure_at_ms;
        }
    }
    free(m);
    return rc;
}

/* Expiry is judged by the store's clock: a GET has no other time to go by. */
int store__webhook_get(store_t *s, int64_t tenant_id, const char *id, store_webhook_t *out)
{
    int rc = s->ops->webhook_get(s, tenant_id, id, out);
    if (rc == 0)
        rc = webhooks_fold_marks(s, out, 1);
    if (rc == 0)
        webhook_as_of(out, clock_now_ms(s->clock));
    return rc;
}

/* An array the caller would have owned is freed when the marks cannot be read. */
static int webhooks_fold_all(store_t *s, int rc, store_webhook_t **out, size_t *n_out)
{
    if (rc == 0)
        rc = webhooks_fold_marks(s, *out, *n_out);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n_out = 0;
    }
    return rc;
}

int store__webhooks_list(store_t *s, int64_t tenant_id, const store_webhook_query_t *q,
                         store_webhook_t **out, size_t *n_out)
{
    int rc = webhooks_fold_all(s, s->ops->webhooks_list(s, tenant_id, q, out, n_out), out,
                               n_out);
    for (size_t i = 0; rc == 0 && i < *n_out; i++)
        webhook_as_of(&(*out)[i], q->now_ms);
    return rc;
}

int store__webhooks_active(store_t *s, int64_t now_ms, store_webhook_t **out, size_t *n_out)
{
    return webhooks_fold_all(s, s->ops->webhooks_active(s, now_ms, out, n_out), out, n_out);
}

/*
 * The pending window, per partition: the changes of the webhook's collection with
 * max(from_version, the partition's watermark) < version <= until_version (open
 * while Enabled), committed before valid_until, of the partition's records. Nothing
 * is pending for a Disabled webhook, nor for one past valid_until at now_ms
 * (whether or not the sweep has marked it). The webhook, its marks and the counts
 * are three reads, not one snapshot: a watermark only rises and a change only
 * joins the log, so the answer lies between what was pending when the call began
 * and what is pending when it returns.
 */
int store__webhook_pending(store_t *s, int64_t tenant_id, const char *id, int64_t now_ms,
                           uint64_t *count, uint64_t *oldest)
{
    store_webhook_t *w = malloc(sizeof(*w));
    if (!w)
        return BH_ENOMEM;
    int rc = s->ops->webhook_get(s, tenant_id, id, w);
    if (rc != 0 || w->status != STORE_WH_ENABLED || w->valid_until_ms <= now_ms) {
        free(w);
        return rc;
    }
    uint32_t parts = partitions_of(w);
    store__mark_t *m = calloc(parts, sizeof(*m));
    store__change_range_t *r = calloc(parts, sizeof(*r));
    if (!m || !r)
        rc = BH_ENOMEM;
    for (uint32_t p = 0; rc == 0 && p < parts; p++)
        m[p] = (store__mark_t){ .tenant_id = tenant_id, .webhook_id = w->id, .part = p };
    if (rc == 0)
        rc = s->ops->marks_get(s, m, parts);
    for (uint32_t p = 0; rc == 0 && p < parts; p++)
        r[p] = (store__change_range_t){
            .collection = w->collection,
            .after = m[p].version > w->from_version ? m[p].version : w->from_version,
            .upto = w->until_version ? w->until_version : (uint64_t)INT64_MAX,
            .before_ms = w->valid_until_ms,
            .partitions = parts,
            .part = p,
        };
    if (rc == 0)
        rc = s->ops->changes_count(s, tenant_id, r, parts);
    for (uint32_t p = 0; rc == 0 && p < parts; p++) {
        *count += r[p].count;
        if (r[p].oldest && (*oldest == 0 || r[p].oldest < *oldest))
            *oldest = r[p].oldest;
    }
    free(r);
    free(m);
    free(w);
    return rc;
}

/* ---- delivery state reads ------------------------------------------------------------ */

/* The partition's mark; BH_ENOTFOUND when the webhook or the partition is missing. */
static int partition_mark(store_t *s, int64_t tenant_id, const char *webhook_id,
                          uint32_t partition, store__mark_t *m)
{
    *m = (store__mark_t){ .tenant_id = tenant_id, .webhook_id = webhook_id, .part = partition };
    int rc = s->ops->marks_get(s, m, 1);
    return rc == 0 && !m->found ? BH_ENOTFOUND : rc;
}

int store__delivery_acked(store_t *s, int64_t tenant_id, const char *webhook_id,
                          uint32_t partition, store_acked_t **out, size_t *n_out)
{
    store__mark_t m;
    int rc = partition_mark(s, tenant_id, webhook_id, partition, &m);
    if (rc == 0)
        rc = s->ops->acks_above(s, tenant_id, webhook_id, partition, m.version, out, n_out);
    return rc;
}

/*
 * The retry state a restart resumes: per record of the partition, its newest Failed
 * attempt above the partition's watermark, unless an ack of that version or a newer
 * one says it is over. Only failures are read, however many deliveries succeeded
 * since, and only the acks above the watermark. The acks are read after the
 * attempts, so an ack that lands in between cancels its failure; the engine reads
 * this for a webhook before it delivers anything for it.
 */
int store__delivery_retrying(store_t *s, int64_t tenant_id, const char *webhook_id,
                             uint32_t partition, store_retrying_t **out, size_t *n_out)
{
    store__mark_t m;
    int rc = partition_mark(s, tenant_id, webhook_id, partition, &m);
    store_retrying_t *r = NULL;
    store_acked_t *a = NULL;
    size_t n_r = 0, n_a = 0;
    if (rc == 0)
        rc = s->ops->attempts_newest(s, tenant_id, webhook_id, STORE_ATTEMPT_FAILED,
                                     m.partitions, partition, m.version, &r, &n_r);
    if (rc == 0 && n_r)
        rc = s->ops->acks_above(s, tenant_id, webhook_id, partition, m.version, &a, &n_a);
    /* A give-up after the failure ends the record's retries too (store.h): its newest
     * attempt did not fail to be tried again. */
    store_retrying_t *g = NULL;
    size_t n_g = 0;
    if (rc == 0 && n_r)
        rc = s->ops->attempts_newest(s, tenant_id, webhook_id, STORE_ATTEMPT_GAVE_UP,
                                     m.partitions, partition, m.version, &g, &n_g);
    size_t kept = 0;
    for (size_t i = 0, j = 0, k = 0; rc == 0 && i < n_r; i++) {
        while (j < n_a && a[j].record_id < r[i].record_id)
            j++;
        if (j < n_a && a[j].record_id == r[i].record_id && a[j].version >= r[i].version)
            continue;
        while (k < n_g && g[k].record_id < r[i].record_id)
            k++;
        if (k < n_g && g[k].record_id == r[i].record_id &&
            (g[k].version > r[i].version ||
             (g[k].version == r[i].version && g[k].attempt > r[i].attempt)))
            continue;
        r[kept++] = r[i];
    }
    free(a);
    free(g);
    if (rc != 0 || kept == 0) {
        free(r);
        return rc;
    }
    *out = r;
    *n_out = kept;
    return 0;
}

/* ---- delivery_commit ----------------------------------------------------------------- */

/* The distinct (webhook, partition) keys of a batch, their delivery state as read
 * and as it becomes, and the acks to keep. index maps (tenant, webhook id, part) to
 * marks (open addressing, index + 1; 0 empty). */
typedef struct commit {
    store__mark_t *marks;   /* distinct keys: read, then raised in memory */
    bool *rose;             /* marks[i] changed: write it */
    uint64_t *drop;         /* marks[i]: drop acks at or below (0: none) */
    size_t n_marks;
    uint32_t *index;
    size_t slots;
    size_t *ack_at;         /* per batch ack: its partition's mark, SIZE_MAX to skip */
    size_t *mark_at;        /* per batch watermark: likewise */
    store__ack_row_t *acks; /* the acks above their partition's watermark */
    size_t n_acks;
} commit_t;

static uint64_t key_hash(int64_t tenant_id, const char *id, uint32_t part)
{
    uint64_t h = hash_fnv(HASH_FNV_OFFSET ^ (uint64_t)tenant_id, id, strlen(id));
    return (h ^ part) * HASH_FNV_PRIME;
}

/* The index of key (tenant_id, id, part) in c->marks, added when new. */
static size_t commit_mark(commit_t *c, int64_t tenant_id, const char *id, uint32_t part)
{
    for (size_t i = (size_t)key_hash(tenant_id, id, part) & (c->slots - 1);;
         i = (i + 1) & (c->slots - 1)) {
        uint32_t v = c->index[i];
        if (v == 0) {
            c->marks[c->n_marks] =
                (store__mark_t){ .tenant_id = tenant_id, .webhook_id = id, .part = part };
            c->index[i] = (uint32_t)++c->n_marks;
            return c->n_marks - 1;
        }
        const store__mark_t *m = &c->marks[v - 1];
        if (m->tenant_id == tenant_id && m->part == part && strcmp(m->webhook_id, id) == 0)
            return v - 1;
    }
}

static void commit_free(commit_t *c)
{
    free(c->marks);
    free(c->rose);
    free(c->drop);
    free(c->index);
    free(c->ack_at);
    free(c->mark_at);
    free(c->acks);
}

/* Room for every key a batch can name: one partition 0 per webhook plus one
 * partition per ack and watermark. */
static int commit_init(commit_t *c, const store_delivery_batch_t *b)
{
    size_t keys = 2 * (b->n_acks + b->n_marks);
    c->slots = 16;
    while (c->slots < 2 * keys)
        c->slots *= 2;
    c->marks = malloc(keys * sizeof(*c->marks));
    c->rose = calloc(keys, sizeof(*c->rose));
    c->drop = calloc(keys, sizeof(*c->drop));
    c->index = calloc(c->slots, sizeof(*c->index));
    c->ack_at = b->n_acks ? malloc(b->n_acks * sizeof(*c->ack_at)) : NULL;
    c->mark_at = b->n_marks ? malloc(b->n_marks * sizeof(*c->mark_at)) : NULL;
    c->acks = b->n_acks ? malloc(b->n_acks * sizeof(*c->acks)) : NULL;
    if (!c->marks || !c->rose || !c->drop || !c->index ||
        (b->n_acks && (!c->ack_at || !c->acks)) || (b->n_marks && !c->mark_at))
        return BH_ENOMEM;
    return 0;
}

/*
 * Which partition's mark each ack and watermark of the batch goes to, read in at
 * most two marks_read calls: partition 0 of every webhook named (which every
 * webhook has, and which tells its partitions), then the other partitions the
 * batch names, if any (none while every webhook has one partition). An ack goes to
 * its record's partition; a watermark names its own. A missing webhook, or a
 * watermark of a partition the webhook does not have, is skipped (SIZE_MAX).
 */
static int commit_resolve(store__tx_t *tx, const store__ops_t *ops, commit_t *c,
                          const store_delivery_batch_t *b)
{
    for (size_t i = 0; i < b->n_acks; i++)
        (void)commit_mark(c, b->acks[i].tenant_id, b->acks[i].webhook_id, 0);
    for (size_t i = 0; i < b->n_marks; i++)
        (void)commit_mark(c, b->marks[i].tenant_id, b->marks[i].webhook_id, 0);
    int rc = ops->marks_read(tx, c->marks, c->n_marks);
    if (rc != 0)
        return rc;
    size_t first = c->n_marks;
    for (size_t i = 0; i < b->n_acks; i++) {
        const struct store_ack *k = &b->acks[i];
        uint32_t parts = c->marks[commit_mark(c, k->tenant_id, k->webhook_id, 0)].partitions;
        c->ack_at[i] = parts ? commit_mark(c, k->tenant_id, k->webhook_id,
                                           store_record_partition(k->record_id, parts))
                             : SIZE_MAX;
    }
    for (size_t i = 0; i < b->n_marks; i++) {
        const struct store_watermark *w = &b->marks[i];
        uint32_t parts = c->marks[commit_mark(c, w->tenant_id, w->webhook_id, 0)].partitions;
        c->mark_at[i] = w->partition < parts
                            ? commit_mark(c, w->tenant_id, w->webhook_id, w->partition)
                            : SIZE_MAX;
    }
    if (c->n_marks > first)
        rc = ops->marks_read(tx, c->marks + first, c->n_marks - first);
    return rc;
}

typedef struct {
    store_t *s;
    const store_delivery_batch_t *b;
} commit_arg_t;

/*
 * Attempts appended; acks kept only for a webhook of the tenant and only above
 * their partition's watermark before this batch (at or below it they would be
 * dropped at once), a record's acked version only rising; then each watermark
 * raised in order (version and times only rise; a mark that raises nothing changes
 * nothing) and, when a mark raised anything, its partition's acks at or below the
 * mark's version dropped, so an ack of this batch that a mark of this batch covers
 * is gone at commit, and the other partitions' acks stay.
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
    rc = commit_init(&c, b);
    if (rc == 0)
        rc = commit_resolve(tx, ops, &c, b);

    for (size_t i = 0; rc == 0 && i < b->n_acks; i++) {
        if (c.ack_at[i] == SIZE_MAX)
            continue;
        const struct store_ack *k = &b->acks[i];
        const store__mark_t *m = &c.marks[c.ack_at[i]];
        if (m->found && k->version > m->version)
            c.acks[c.n_acks++] = (store__ack_row_t){ k->tenant_id, k->webhook_id, m->part,
                                                     k->record_id, k->version };
    }
    if (rc == 0 && c.n_acks)
        rc = ops->acks_raise(tx, c.acks, c.n_acks);

    for (size_t i = 0; rc == 0 && i < b->n_marks; i++) {
        const struct store_watermark *w = &b->marks[i];
        size_t j = c.mark_at[i];
        if (j == SIZE_MAX || !c.marks[j].found)
            continue;
        store__mark_t *m = &c.marks[j];
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

/* ---- the change log ----------------------------------------------------------------- */

/* The rows and the horizon come from one snapshot, so a prune that commits between
 * them cannot make a gap look like an empty answer. */
int store__changes_after(store_t *s, int64_t tenant_id, store_collection_t coll,
                         uint64_t after, size_t limit, store_change_t **out, size_t *n_out)
{
    uint64_t horizon = 0;
    int rc = s->ops->changes_after(s, tenant_id, coll, after, limit, out, n_out, &horizon);
    if (rc == 0 && after < horizon) {
        store_changes_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
        rc = BH_EGONE;
    }
    return rc;
}

/* ---- change-log pruning ------------------------------------------------------------- */

typedef struct {
    store_t *s;
    int64_t tenant_id;
    uint64_t newest; /* the newest version committed before before_ms */
    size_t n;        /* out: deleted by this chunk */
} prune_arg_t;

/*
 * One chunk of one tenant. What holds the tenant back is read here, under the
 * tenant's write lock (counter_get: the single writer, or PostgreSQL's row lock,
 * which a webhook create and a delta start take too): every Enabled webhook at
 * max(from_version, the partition's watermark), one row per partition so the lowest
 * wins, and every delta still in the table at its floor_version. A webhook created
 * or resumed, or a delta started or moved back, before this job is seen by it; one
 * after it sees the horizon this job raises, in the same transaction as the delete,
 * to the highest version it deleted.
 */
static int job_changes_prune(store__tx_t *tx, void *arg)
{
    prune_arg_t *a = arg;
    const store__ops_t *ops = a->s->ops;
    store__floor_t *floors = NULL;
    size_t m = 0;
    a->n = 0;
    uint64_t counter = 0;
    int rc = ops->counter_get(tx, a->tenant_id, &counter);
    if (rc == 0)
        rc = ops->floors_read(tx, a->tenant_id, &floors, &m);
    uint64_t upto = a->newest;
    for (size_t k = 0; rc == 0 && k < m; k++) {
        const store__floor_t *f = &floors[k];
        uint64_t passed = f->from_version > f->watermark ? f->from_version : f->watermark;
        if (passed < upto)
            upto = passed;
    }
    free(floors);
    uint64_t deleted = 0;
    if (rc == 0 && upto > 0)
        rc = ops->changes_delete_upto(tx, a->tenant_id, upto, PRUNE_CHUNK, &a->n, &deleted);
    if (rc == 0 && deleted > 0) {
        store__tenant_version_t h = { .tenant_id = a->tenant_id, .version = deleted };
        rc = ops->horizon_raise(tx, &h, 1);
    }
    return rc;
}

/*
 * A change committed before before_ms goes once nothing of its tenant needs it (a
 * delivered event is pruned, a pending one never is; a live delta's changes above
 * its floor stay). The newest versions are read first, on a read connection, to
 * know which tenants have anything old enough; the rest is decided per chunk in the
 * deleting transaction (job_changes_prune). The deletes go by version range in
 * chunks, each a solo job of its own, so a week of rows never holds the writer in
 * one long transaction; *n_out counts what committed, also when a later chunk fails.
 */
int store__changes_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    store__tenant_version_t *newest = NULL;
    size_t n = 0;
    int rc = s->ops->changes_newest(s, before_ms, &newest, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        for (prune_arg_t a = { s, newest[i].tenant_id, newest[i].version, PRUNE_CHUNK };
             rc == 0 && a.newest > 0 && a.n == PRUNE_CHUNK;) {
            rc = s->ops->run_write(s, job_changes_prune, &a, true);
            if (rc == 0)
                *n_out += a.n;
        }
    }
    free(newest);
    return rc;
}
