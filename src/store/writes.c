/*
 * writes.c: the rules of breaks data, once, above the back-ends.
 *
 * Every write is a function run by the back-end inside its write transaction
 * (ops->run_write) that reads and writes only through the back-end's primitives
 * (store_int.h). What is decided here, for every back-end alike:
 *
 *   - versions: the tenant's counter is read once per job (which takes the tenant's
 *     write lock until commit), advanced in memory by each change and written back
 *     once, so versions commit or roll back with the changes that used them and
 *     version order is commit order;
 *   - unchanged detection: a PUT that changes nothing a reader sees takes no version
 *     and writes no change-log row;
 *   - computed durations (model_break_compute), the start and end a break without
 *     them takes from its definition's window, and the fan-out of a definition
 *     change to the breaks that took either from it;
 *   - the reasons of refused writes, word for word;
 *   - the change-log records: the canonical JSON of the record at its version, or
 *     its tombstone, and a break's date before the change (prev_date).
 *
 * A refused write (res->rc set) is returned as the job's error so that the back-end
 * undoes it, and flagged so that the caller can tell it from a store failure.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "store/store_int.h"

/* The largest canonical JSON a change body can have: a definition with every
 * translation at its maximum is about 20 KiB. */
#define DATA_BODY_MAX (1u << 20)
/* Breaks a definition change recomputes per read of its fan-out. */
#define FANOUT_CHUNK 256

static void set_reason(store_write_result_t *res, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a refused write (rc) and its reason in res. */
static void set_reason(store_write_result_t *res, int rc, const char *fmt, ...)
{
    va_list ap;
    res->rc = rc;
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
    va_end(ap);
}

/* ---- the job context ------------------------------------------------------------ */

/*
 * The state of one write job. The tenant's version counter is read once when the
 * job starts, advanced in memory by each change, and written back once at the end,
 * inside the job's transaction: the versions commit or roll back with the changes
 * that used them. Jobs of one tenant run one after another under the tenant's write
 * lock, so each one reads what the previous one left and versions never repeat.
 */
typedef struct wctx {
    store_t *s;
    const store__ops_t *ops;
    store__tx_t *tx;
    int64_t tenant_id;
    uint64_t version;        /* the last version assigned */
    uint64_t stored_version; /* the value the counter holds */
    int64_t now_ms;          /* committed_at_ms of this job's changes */
    uint32_t created[4];     /* change-log entries appended, by store_collection_t */
    buf_t body;              /* the change body being written, reused */
    model_definition_t *calc; /* model_break_compute's argument: numbers only */
} wctx_t;

/* BH_ENOTFOUND when the tenant does not exist. */
static int ctx_begin(wctx_t *x, store_t *s, store__tx_t *tx, int64_t tenant_id)
{
    memset(x, 0, sizeof(*x));
    x->s = s;
    x->ops = s->ops;
    x->tx = tx;
    x->tenant_id = tenant_id;
    x->now_ms = clock_now_ms(s->clock);
    buf_init(&x->body, DATA_BODY_MAX);
    int rc = x->ops->counter_get(tx, tenant_id, &x->version);
    x->stored_version = x->version;
    return rc;
}

/* Writes the counter back when the job used versions, and notes what it took for
 * store__committed (the back-end drops the note when the job rolls back). */
static int ctx_finish(wctx_t *x)
{
    if (x->version == x->stored_version)
        return 0;
    int rc = x->ops->counter_set(x->tx, x->tenant_id, x->version);
    if (rc == 0) {
        store__commit_t note = { .tenant_id = x->tenant_id,
                                 .first = x->stored_version + 1,
                                 .last = x->version };
        memcpy(note.created, x->created, sizeof(note.created));
        rc = x->ops->tx_note(x->tx, &note);
    }
    if (rc == 0)
        x->stored_version = x->version;
    return rc;
}

static void ctx_free(wctx_t *x)
{
    buf_deinit(&x->body);
    free(x->calc);
    x->calc = NULL;
}

/* The change-log row of version with x->body as its body. Without has_date (people,
 * definitions) no date is stored. */
static store__change_row_t change_row(const wctx_t *x, uint64_t version,
                                      store_collection_t coll, store_change_type_t type,
                                      int64_t record_id, bool has_date, int32_t date)
{
    return (store__change_row_t){ .version = version, .collection = coll, .type = type,
                                  .record_id = record_id, .has_date = has_date,
                                  .date = has_date ? date : 0,
                                  .committed_at_ms = x->now_ms,
                                  .body = buf_cstr(&x->body), .body_len = x->body.len };
}

/* Appends one change-log row with x->body as its body. */
static int change_append(wctx_t *x, uint64_t version, store_collection_t coll,
                         store_change_type_t type, int64_t record_id, bool has_date,
                         int32_t date)
{
    store__change_row_t row = change_row(x, version, coll, type, record_id, has_date, date);
    int rc = x->ops->changes_append(x->tx, x->tenant_id, &row, 1);
    if (rc == 0 && (size_t)coll < 4)
        x->created[coll]++;
    return rc;
}

/* Writes the tombstone of a deleted record at version into the change log. */
static int change_tombstone(wctx_t *x, uint64_t version, store_collection_t coll, int64_t id,
                            bool has_date, int32_t date)
{
    buf_reset(&x->body);
    int rc = model_tombstone_json(&x->body, version, id);
    if (rc == 0)
        rc = change_append(x, version, coll, STORE_CHANGE_DELETE, id, has_date, date);
    return rc;
}

/* ---- people ------------------------------------------------------------------------ */

/* Finds which other person of the tenant already holds one of p's reference values;
 * checked before anything is written so the reason can name the person. */
static int person_ref_conflicts(wctx_t *x, const model_person_t *p, store_write_result_t *res)
{
    if (p->n_refs == 0)
        return 0;
    int64_t owner[MODEL_REFS_MAX];
    int rc = x->ops->ref_owners(x->tx, x->tenant_id, p->refs, p->n_refs, owner);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < p->n_refs; i++) {
        if (owner[i] != 0 && owner[i] != p->id) {
            set_reason(res, BH_ECONFLICT, "%s '%s' is already used by person %lld",
                       p->refs[i].name, p->refs[i].value, (long long)owner[i]);
            return 0;
        }
    }
    return 0;
}

static int op_person_put(wctx_t *x, const model_person_t *p, store_write_result_t *res)
{
    model_person_t *cur = malloc(sizeof(*cur));
    if (!cur)
        return BH_ENOMEM;
    bool exists = false;
    int rc = x->ops->people_read(x->tx, x->tenant_id, &p->id, 1, cur, &exists);
    if (rc != 0 || (exists && model_person_same(cur, p))) {
        if (rc == 0)
            res->outcome = STORE_OUT_UNCHANGED;
        free(cur);
        return rc;
    }
    rc = person_ref_conflicts(x, p, res);
    if (rc != 0 || res->rc != 0) {
        free(cur);
        return rc;
    }

    /* The references are replaced as a whole: a PUT is a full replace. */
    *cur = *p;
    cur->version = x->version + 1;
    rc = x->ops->people_write(x->tx, x->tenant_id, cur, 1);
    if (rc == 0) {
        buf_reset(&x->body);
        rc = model_person_json(&x->body, cur);
    }
    if (rc == 0)
        rc = change_append(x, cur->version, STORE_COLL_PEOPLE, STORE_CHANGE_UPSERT, p->id,
                           false, 0);
    if (rc == 0) {
        x->version = cur->version;
        res->outcome = exists ? STORE_OUT_REPLACED : STORE_OUT_CREATED;
        res->version = cur->version;
    }
    free(cur);
    return rc;
}

static int op_person_delete(wctx_t *x, int64_t id, store_write_result_t *res)
{
    bool found = false;
    int64_t uses = 0;
    int rc = x->ops->people_exist(x->tx, x->tenant_id, &id, 1, &found);
    if (rc == 0 && !found) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    if (rc == 0)
        rc = x->ops->uses_count(x->tx, x->tenant_id, STORE__USES_PERSON, &id, 1, &uses);
    if (rc != 0)
        return rc;
    if (uses > 0) {
        set_reason(res, BH_ECONFLICT, "person %lld is used by %lld break%s", (long long)id,
                   (long long)uses, uses == 1 ? "" : "s");
        return 0;
    }
    rc = x->ops->people_delete(x->tx, x->tenant_id, &id, 1);
    uint64_t v = x->version + 1;
    if (rc == 0)
        rc = change_tombstone(x, v, STORE_COLL_PEOPLE, id, false, 0);
    if (rc != 0)
        return rc;
    x->version = v;
    res->outcome = STORE_OUT_DELETED;
    res->version = v;
    return 0;
}

/* ---- definitions -------------------------------------------------------------------- */

/* Re-derives every break that takes something from d (the definition as just
 * stored): its duration when the server computed it, its start and end when it
 * took them from the window. Each one whose record changes gets the next version
 * (one, whatever changed) and its own change-log row, after the definition's. A
 * definition whose window lost a bound leaves those breaks' start and end as they
 * are (docs/API.md). A chunk of breaks is read, then written as one set of rows and
 * one set of change-log rows. */
static int definition_fanout(wctx_t *x, const model_definition_t *d, size_t *count)
{
    model_break_t *chunk = malloc(FANOUT_CHUNK * sizeof(*chunk));
    store__break_row_t *rows = malloc(FANOUT_CHUNK * sizeof(*rows));
    store__change_row_t *changes = malloc(FANOUT_CHUNK * sizeof(*changes));
    size_t *ends = malloc(FANOUT_CHUNK * sizeof(*ends));
    int rc = chunk && rows && changes && ends ? 0 : BH_ENOMEM;
    int64_t after = 0;
    while (rc == 0) {
        size_t n = 0, m = 0;
        rc = x->ops->breaks_computed(x->tx, x->tenant_id, d->id, after, FANOUT_CHUNK, chunk,
                                     &n);
        buf_reset(&x->body);
        uint64_t v = x->version;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            model_break_t *b = &chunk[i];
            int32_t calc = b->calculated_given ? b->calculated : model_break_compute(b, d);
            int32_t start = b->start, end = b->end;
            if (b->window_taken && d->has_earliest && d->has_latest) {
                start = d->earliest;
                end = d->latest;
            }
            if (calc == b->calculated && start == b->start && end == b->end)
                continue;
            b->calculated = calc;
            b->start = start;
            b->end = end;
            b->version = ++v;
            rows[m] = (store__break_row_t){ .kind = STORE__BREAK_SET_DERIVED, .b = *b };
            rc = model_break_json(&x->body, b, NULL);
            ends[m] = x->body.len;
            changes[m] = change_row(x, b->version, STORE_COLL_BREAKS, STORE_CHANGE_UPSERT,
                                    b->id, true, b->date);
            /* A fan-out never moves a break: its date before is the one it keeps. */
            changes[m].has_prev_date = true;
            changes[m].prev_date = b->date;
            m++;
        }
        /* The bodies share one buffer: point each row at its slice once it holds
         * them all (appending may have moved it). */
        for (size_t i = 0; rc == 0 && i < m; i++) {
            size_t start = i ? ends[i - 1] : 0;
            changes[i].body = buf_cstr(&x->body) + start;
            changes[i].body_len = ends[i] - start;
        }
        if (rc == 0 && m > 0)
            rc = x->ops->breaks_write(x->tx, x->tenant_id, rows, m);
        if (rc == 0 && m > 0)
            rc = x->ops->changes_append(x->tx, x->tenant_id, changes, m);
        if (rc == 0) {
            x->version = v;
            x->created[STORE_COLL_BREAKS] += (uint32_t)m;
            *count += m;
        }
        if (rc != 0 || n < FANOUT_CHUNK)
            break;
        after = chunk[n - 1].id;
    }
    free(chunk);
    free(rows);
    free(changes);
    free(ends);
    return rc;
}

/* True when the numbers a computed duration may depend on are equal. */
static bool definition_calc_same(const model_definition_t *a, const model_definition_t *b)
{
    return a->paid == b->paid && a->minimum == b->minimum && a->maximum == b->maximum &&
           a->if_not_clocked == b->if_not_clocked && a->uninterrupted == b->uninterrupted;
}

static int op_definition_put(wctx_t *x, const model_definition_t *d, store_write_result_t *res)
{
    model_definition_t *cur = malloc(sizeof(*cur));
    if (!cur)
        return BH_ENOMEM;
    bool exists = false;
    int rc = x->ops->definitions_read(x->tx, x->tenant_id, &d->id, 1, cur, &exists);
    if (rc != 0 || (exists && model_definition_same(cur, d))) {
        if (rc == 0)
            res->outcome = STORE_OUT_UNCHANGED;
        free(cur);
        return rc;
    }
    bool recompute =
        exists && (!definition_calc_same(cur, d) || !model_definition_window_same(cur, d));

    char *name_tr = NULL, *friendly_tr = NULL;
    rc = store__texts_encode(&d->name, &name_tr);
    if (rc == BH_EINVAL) {
        set_reason(res, BH_EINVAL, "name.translations: not valid UTF-8");
        rc = 0;
        goto out;
    }
    if (rc == 0)
        rc = store__texts_encode(&d->friendly_name, &friendly_tr);
    if (rc == BH_EINVAL) {
        set_reason(res, BH_EINVAL, "friendlyName.translations: not valid UTF-8");
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;

    *cur = *d;
    cur->version = x->version + 1;
    store__definition_row_t row = { cur, name_tr, friendly_tr };
    rc = x->ops->definitions_write(x->tx, x->tenant_id, &row, 1);
    if (rc == 0) {
        buf_reset(&x->body);
        rc = model_definition_json(&x->body, cur);
    }
    if (rc == 0)
        rc = change_append(x, cur->version, STORE_COLL_DEFINITIONS, STORE_CHANGE_UPSERT, d->id,
                           false, 0);
    if (rc != 0)
        goto out;
    x->version = cur->version;
    res->outcome = exists ? STORE_OUT_REPLACED : STORE_OUT_CREATED;
    res->version = cur->version;
    if (recompute)
        rc = definition_fanout(x, cur, &res->fanout);
out:
    free(name_tr);
    free(friendly_tr);
    free(cur);
    return rc;
}

static int op_definition_delete(wctx_t *x, int64_t id, store_write_result_t *res)
{
    store__def_calc_t def;
    int rc = x->ops->definition_calcs_read(x->tx, x->tenant_id, &id, 1, &def);
    if (rc != 0)
        return rc;
    if (!def.exists) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    int64_t uses = 0;
    rc = x->ops->uses_count(x->tx, x->tenant_id, STORE__USES_DEFINITION, &id, 1, &uses);
    if (rc != 0)
        return rc;
    if (uses > 0) {
        set_reason(res, BH_ECONFLICT, "break definition %lld is used by %lld break%s",
                   (long long)id, (long long)uses, uses == 1 ? "" : "s");
        return 0;
    }
    rc = x->ops->definitions_delete(x->tx, x->tenant_id, &id, 1);
    uint64_t v = x->version + 1;
    if (rc == 0)
        rc = change_tombstone(x, v, STORE_COLL_DEFINITIONS, id, false, 0);
    if (rc != 0)
        return rc;
    x->version = v;
    res->outcome = STORE_OUT_DELETED;
    res->version = v;
    return 0;
}

/* ---- breaks ------------------------------------------------------------------------ */

/* Break ops a $batch job decides per window: one probe, one read of the
 * definitions, one write of the break rows and one append to the change log for
 * each window (see store__breaks_apply). */
#define BATCH_WINDOW 1024
/* The change bodies of one window share a buffer: a break's body is a few hundred
 * bytes. */
#define WINDOW_BODY_MAX (BATCH_WINDOW * 2048u)

/* The definitions a break job has read, sorted by id for bsearch. */
typedef struct defs {
    store__def_calc_t *v;
    size_t n, cap;
} defs_t;

static int def_cmp(const void *a, const void *b)
{
    int64_t x = ((const store__def_calc_t *)a)->id, y = ((const store__def_calc_t *)b)->id;
    return (x > y) - (x < y);
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static const store__def_calc_t *defs_find(const defs_t *d, int64_t id)
{
    store__def_calc_t key = { .id = id };
    return d->n ? bsearch(&key, d->v, d->n, sizeof(*d->v), def_cmp) : NULL;
}

/* Reads, in one primitive call, the definitions of ids (n, any order, repeats
 * allowed) not yet in d. ids is used as scratch: it comes back sorted. */
static int defs_load(wctx_t *x, defs_t *d, int64_t *ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), id_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if ((m == 0 || ids[m - 1] != ids[i]) && !defs_find(d, ids[i]))
            ids[m++] = ids[i];
    if (m == 0)
        return 0;
    if (d->n + m > d->cap) {
        size_t cap = d->n + m;
        store__def_calc_t *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return BH_ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    int rc = x->ops->definition_calcs_read(x->tx, x->tenant_id, ids, m, d->v + d->n);
    if (rc != 0)
        return rc;
    d->n += m;
    qsort(d->v, d->n, sizeof(*d->v), def_cmp);
    return 0;
}

/* x->calc holding def's numbers, ready for model_break_compute. model_definition_t
 * carries 18 KiB of texts compute never reads: one zeroed scratch per job. */
static int calc_of(wctx_t *x, const store__def_calc_t *d, const model_definition_t **out)
{
    if (!x->calc) {
        x->calc = calloc(1, sizeof(*x->calc));
        if (!x->calc)
            return BH_ENOMEM;
    }
    x->calc->id = d->id;
    x->calc->paid = d->paid;
    x->calc->minimum = d->minimum;
    x->calc->maximum = d->maximum;
    x->calc->if_not_clocked = d->if_not_clocked;
    x->calc->uninterrupted = d->uninterrupted;
    x->calc->has_earliest = d->has_earliest;
    x->calc->has_latest = d->has_latest;
    x->calc->earliest = d->earliest;
    x->calc->latest = d->latest;
    *out = x->calc;
    return 0;
}

/* What one break op leaves to write: at most one break row and one change-log row
 * (its body appended to x->body). */
typedef struct break_out {
    bool has_row, has_change;
    store__break_row_t row;
    store__change_row_t change;
} break_out_t;

/*
 * Decides a PUT of a break from what the probe found (p: person, current row) and
 * its definition (def, NULL when missing): every check that can refuse it comes
 * first, so a refused op leaves nothing to write and takes no version. On success
 * *cur (the state a later op of the same job sees) is updated.
 */
static int decide_upsert(wctx_t *x, const model_break_t *in, bool person, bool *exists,
                         model_break_t *cur, const store__def_calc_t *def,
                         store_write_result_t *res, break_out_t *out)
{
    if (!person) {
        set_reason(res, BH_EINVAL, "person.id: no person %lld", (long long)in->person_id);
        return 0;
    }
    if (!def || !def->exists) {
        set_reason(res, BH_EINVAL, "breakDefinition.id: no break definition %lld",
                   (long long)in->definition_id);
        return 0;
    }
    model_break_t b = *in;
    b.version = 0;
    if (b.window_taken) {
        if (!def->has_earliest || !def->has_latest) {
            set_reason(res, BH_EINVAL,
                       "startTimeInMinutes, endTimeInMinutes: not given, and break definition "
                       "%lld has no earliestStartTimeInMinutes/latestEndTimeInMinutes",
                       (long long)in->definition_id);
            return 0;
        }
        b.start = def->earliest;
        b.end = def->latest;
    }
    if (!b.calculated_given) {
        const model_definition_t *calc;
        int rc = calc_of(x, def, &calc);
        if (rc != 0)
            return rc;
        b.calculated = model_break_compute(&b, calc);
    }
    if (*exists) {
        /* Whether the duration and the window were given or derived is not part of
         * the record a reader sees: when only that changed there is no new version,
         * but the row keeps the new flags, which decide whether definition changes
         * re-derive them. */
        model_break_t cmp = b;
        cmp.calculated_given = cur->calculated_given;
        cmp.window_taken = cur->window_taken;
        cmp.version = cur->version;
        if (model_break_same(cur, &cmp)) {
            if (cur->calculated_given != b.calculated_given ||
                cur->window_taken != b.window_taken) {
                cur->calculated_given = b.calculated_given;
                cur->window_taken = b.window_taken;
                out->has_row = true;
                out->row = (store__break_row_t){ .kind = STORE__BREAK_SET_GIVEN, .b = *cur };
            }
            res->outcome = STORE_OUT_UNCHANGED;
            res->stored = *cur;
            return 0;
        }
    }

    b.version = x->version + 1;
    int rc = model_break_json(&x->body, &b, NULL);
    if (rc != 0)
        return rc;
    out->has_row = true;
    out->row = (store__break_row_t){ .kind = *exists ? STORE__BREAK_UPDATE : STORE__BREAK_INSERT,
                                     .b = b, .prev = *cur };
    out->has_change = true;
    out->change = change_row(x, b.version, STORE_COLL_BREAKS, STORE_CHANGE_UPSERT, b.id, true,
                             b.date);
    /* An update carries the date the break had (a delta reports a break that moved
     * out of its range by it); an insert had none. */
    out->change.has_prev_date = *exists;
    out->change.prev_date = *exists ? cur->date : 0;
    x->version = b.version;
    x->created[STORE_COLL_BREAKS]++;
    res->outcome = *exists ? STORE_OUT_REPLACED : STORE_OUT_CREATED;
    res->version = b.version;
    res->stored = b;
    *exists = true;
    *cur = b;
    return 0;
}

/* Decides a DELETE of a break from its current row. */
static int decide_delete(wctx_t *x, int64_t id, bool *exists, model_break_t *cur,
                         store_write_result_t *res, break_out_t *out)
{
    if (!*exists) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    uint64_t v = x->version + 1;
    int rc = model_tombstone_json(&x->body, v, id);
    if (rc != 0)
        return rc;
    out->has_row = true;
    out->row = (store__break_row_t){ .kind = STORE__BREAK_DELETE, .b = *cur };
    out->has_change = true;
    out->change = change_row(x, v, STORE_COLL_BREAKS, STORE_CHANGE_DELETE, id, true, cur->date);
    out->change.has_prev_date = true;
    out->change.prev_date = cur->date;
    x->version = v;
    x->created[STORE_COLL_BREAKS]++;
    res->outcome = STORE_OUT_DELETED;
    res->version = v;
    *exists = false;
    return 0;
}

/* Writes what one op decided (single PUT or DELETE). */
static int break_out_write(wctx_t *x, break_out_t *o)
{
    int rc = 0;
    if (o->has_row)
        rc = x->ops->breaks_write(x->tx, x->tenant_id, &o->row, 1);
    if (rc == 0 && o->has_change) {
        o->change.body = buf_cstr(&x->body);
        o->change.body_len = x->body.len;
        rc = x->ops->changes_append(x->tx, x->tenant_id, &o->change, 1);
    }
    return rc;
}

/*
 * PUT of a break: one probe (person exists + current row), one read of its
 * definition, then, when something visible changed, one break row and one
 * change-log row.
 */
static int op_break_upsert(wctx_t *x, const model_break_t *in, store_write_result_t *res)
{
    store__break_probe_t p = { .id = in->id, .person_id = in->person_id };
    int rc = x->ops->breaks_probe(x->tx, x->tenant_id, &p, 1);
    if (rc != 0 || !p.person_exists) {
        if (rc == 0)
            set_reason(res, BH_EINVAL, "person.id: no person %lld", (long long)in->person_id);
        return rc;
    }
    store__def_calc_t def;
    rc = x->ops->definition_calcs_read(x->tx, x->tenant_id, &in->definition_id, 1, &def);
    if (rc != 0)
        return rc;
    break_out_t o = { 0 };
    buf_reset(&x->body);
    rc = decide_upsert(x, in, true, &p.exists, &p.cur, &def, res, &o);
    if (rc == 0 && res->rc == 0)
        rc = break_out_write(x, &o);
    return rc;
}

static int op_break_delete(wctx_t *x, int64_t id, store_write_result_t *res)
{
    model_break_t cur;
    bool exists = false;
    int rc = x->ops->breaks_read(x->tx, x->tenant_id, &id, 1, &cur, &exists);
    if (rc != 0)
        return rc;
    break_out_t o = { 0 };
    buf_reset(&x->body);
    rc = decide_delete(x, id, &exists, &cur, res, &o);
    if (rc == 0 && res->rc == 0)
        rc = break_out_write(x, &o);
    return rc;
}

/* ---- $batch ------------------------------------------------------------------------ */

/* The scratch of one $batch job, sized for one window. last maps a break id to the
 * latest op of the window that touched it (open addressing, index + 1; 0 empty). */
#define LAST_SLOTS (2 * BATCH_WINDOW)
typedef struct batch {
    store__break_probe_t probes[BATCH_WINDOW];
    store__break_row_t rows[BATCH_WINDOW];
    store__change_row_t changes[BATCH_WINDOW];
    size_t ends[BATCH_WINDOW];
    int64_t def_ids[BATCH_WINDOW];
    uint32_t last[LAST_SLOTS];
    defs_t defs;
} batch_t;

/* The slot of id in b->last: where it is, or the empty one where it goes. */
static uint32_t *last_slot(batch_t *b, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    for (size_t i = (size_t)(h >> 40) & (LAST_SLOTS - 1);; i = (i + 1) & (LAST_SLOTS - 1)) {
        uint32_t v = b->last[i];
        if (v == 0 || b->probes[v - 1].id == id)
            return &b->last[i];
    }
}

/*
 * One window of a $batch job: ops[0..n) decided in memory, in order, against one
 * probe of their breaks and people and one read of their definitions, then written
 * as one set of break rows and one set of change-log rows.
 *
 * Each op is isolated from the others without a savepoint of its own: every check
 * that can refuse an op is made before it leaves anything to write, and it takes a
 * version only then, so a refused op writes nothing and advances nothing, and the
 * next op goes on. The rule is checked at run time, so an op changed to break it
 * fails the whole chunk instead of committing half of itself. An op on a break an
 * earlier op of the window touched sees that op's outcome, not the probe's.
 */
static int batch_window(wctx_t *x, batch_t *b, store_break_op_t *ops, size_t n)
{
    for (size_t k = 0; k < n; k++)
        b->probes[k] = (store__break_probe_t){ .id = ops[k].rec.id,
                                               .person_id = ops[k].del ? 0
                                                                       : ops[k].rec.person_id };
    int rc = x->ops->breaks_probe(x->tx, x->tenant_id, b->probes, n);
    if (rc != 0)
        return rc;
    size_t n_defs = 0;
    for (size_t k = 0; k < n; k++)
        if (!ops[k].del && b->probes[k].person_exists)
            b->def_ids[n_defs++] = ops[k].rec.definition_id;
    rc = defs_load(x, &b->defs, b->def_ids, n_defs);
    if (rc != 0)
        return rc;

    memset(b->last, 0, sizeof(b->last));
    buf_reset(&x->body);
    size_t n_rows = 0, n_changes = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        store_break_op_t *op = &ops[k];
        store__break_probe_t *p = &b->probes[k];
        uint32_t *slot = last_slot(b, p->id);
        if (*slot) {
            const store__break_probe_t *prev = &b->probes[*slot - 1];
            p->exists = prev->exists;
            p->cur = prev->cur;
        }
        *slot = (uint32_t)k + 1;

        uint64_t version = x->version;
        break_out_t o = { 0 };
        rc = op->del ? decide_delete(x, p->id, &p->exists, &p->cur, &op->res, &o)
                     : decide_upsert(x, &op->rec, p->person_exists, &p->exists, &p->cur,
                                     defs_find(&b->defs, op->rec.definition_id), &op->res, &o);
        if (rc == 0 && op->res.rc != 0 && (o.has_row || o.has_change || x->version != version)) {
            log_error("store: a refused batch op wrote", LOG_INT("id", op->rec.id));
            rc = BH_EINTERNAL;
        }
        if (rc == 0 && o.has_row)
            b->rows[n_rows++] = o.row;
        if (rc == 0 && o.has_change) {
            b->ends[n_changes] = x->body.len;
            b->changes[n_changes++] = o.change;
        }
    }
    /* The bodies share x->body: point each row at its slice once it holds them all
     * (appending may have moved it). */
    for (size_t i = 0; rc == 0 && i < n_changes; i++) {
        size_t start = i ? b->ends[i - 1] : 0;
        b->changes[i].body = buf_cstr(&x->body) + start;
        b->changes[i].body_len = b->ends[i] - start;
    }
    if (rc == 0 && n_rows)
        rc = x->ops->breaks_write(x->tx, x->tenant_id, b->rows, n_rows);
    if (rc == 0 && n_changes)
        rc = x->ops->changes_append(x->tx, x->tenant_id, b->changes, n_changes);
    return rc;
}

typedef struct apply_arg {
    store_t *s;
    int64_t tenant_id;
    store_break_op_t *ops;
    size_t n;
} apply_arg_t;

/* A $batch chunk as one job: one transaction (one fsync) for all its ops, in
 * windows of BATCH_WINDOW. A store failure ends the job, which the back-end then
 * rolls back as a whole. */
static int job_breaks_apply(store__tx_t *tx, void *arg)
{
    apply_arg_t *a = arg;
    batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return BH_ENOMEM;
    wctx_t x;
    int rc = ctx_begin(&x, a->s, tx, a->tenant_id);
    buf_deinit(&x.body);
    buf_init(&x.body, WINDOW_BODY_MAX);
    for (size_t i = 0; rc == 0 && i < a->n; i += BATCH_WINDOW) {
        size_t n = a->n - i < BATCH_WINDOW ? a->n - i : BATCH_WINDOW;
        rc = batch_window(&x, b, a->ops + i, n);
    }
    if (rc == 0)
        rc = ctx_finish(&x);
    ctx_free(&x);
    free(b->defs.v);
    free(b);
    return rc;
}

/* When the chunk did not commit, no op's result holds: each gets the call's error.
 * A chunk runs solo: thousands of writes that already share one fsync need no
 * savepoint (SQLite would copy every page they touch into the sub-journal). */
int store__breaks_apply(store_t *s, int64_t tenant_id, store_break_op_t *ops, size_t n)
{
    apply_arg_t a = { s, tenant_id, ops, n };
    int rc = s->ops->run_write(s, job_breaks_apply, &a, true);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            memset(&ops[i].res, 0, sizeof(ops[i].res));
            ops[i].res.rc = rc;
        }
    }
    return rc;
}

/* ---- single writes ------------------------------------------------------------------ */

typedef enum {
    W_PERSON_PUT,
    W_PERSON_DELETE,
    W_DEFINITION_PUT,
    W_DEFINITION_DELETE,
    W_BREAK_PUT,
    W_BREAK_DELETE,
} write_kind_t;

typedef struct write_arg {
    store_t *s;
    write_kind_t kind;
    int64_t tenant_id;
    const void *rec;   /* the record of a put */
    int64_t id;        /* the id of a delete */
    store_write_result_t *res;
    bool refused;      /* set in the job: it failed with res->rc, a refusal */
    uint64_t preassigned; /* test hook only (test_versions_outside_lock): the version
                             taken before the job reached the writer */
} write_arg_t;

/* One PUT or DELETE as one job. A refusal (res->rc set) is returned as the job's
 * error so that the back-end rolls it back, and flagged so that the caller can
 * tell it from a store failure. */
static int job_write(store__tx_t *tx, void *arg)
{
    write_arg_t *a = arg;
    wctx_t x;
    int rc = ctx_begin(&x, a->s, tx, a->tenant_id);
    if (rc == 0 && a->preassigned)
        x.version = a->preassigned - 1; /* the hook's version, not the counter's */
    if (rc == 0) {
        switch (a->kind) {
        case W_PERSON_PUT:
            rc = op_person_put(&x, a->rec, a->res);
            break;
        case W_PERSON_DELETE:
            rc = op_person_delete(&x, a->id, a->res);
            break;
        case W_DEFINITION_PUT:
            rc = op_definition_put(&x, a->rec, a->res);
            break;
        case W_DEFINITION_DELETE:
            rc = op_definition_delete(&x, a->id, a->res);
            break;
        case W_BREAK_PUT:
            rc = op_break_upsert(&x, a->rec, a->res);
            break;
        case W_BREAK_DELETE:
            rc = op_break_delete(&x, a->id, a->res);
            break;
        }
    }
    if (rc == 0 && a->res->rc != 0) {
        a->refused = true;
        rc = a->res->rc;
    } else if (rc == 0) {
        rc = ctx_finish(&x);
    }
    ctx_free(&x);
    return rc;
}

/* Runs a write job and sorts out its two kinds of failure: a refusal is the job's
 * outcome (0, with res->rc), anything else the call's error (res cleared). A
 * definition change runs solo: its fan-out may rewrite any number of breaks. */
/* The test hook's sequence: what a back-end that took versions from a database
 * sequence, outside the tenant's lock, would do. Seeded from the tenant's counter
 * at first use; one tenant per process is all the contract test needs. */
static _Atomic uint64_t hook_sequence;

static void hook_preassign(store_t *s, write_arg_t *a)
{
    if (atomic_load(&hook_sequence) == 0) {
        uint64_t v = 0;
        if (store_tenant_version(s, a->tenant_id, &v) == 0) {
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&hook_sequence, &zero, v);
        }
    }
    a->preassigned = atomic_fetch_add(&hook_sequence, 1) + 1;
    /* The time between taking a number and committing, that makes the order differ. */
    usleep((useconds_t)(a->preassigned % 7) * 150);
}

static int run_single(store_t *s, write_arg_t *a)
{
    a->s = s;
    if (s->test_versions_outside_lock)
        hook_preassign(s, a);
    int rc = s->ops->run_write(s, job_write, a, a->kind == W_DEFINITION_PUT);
    if (a->refused)
        return 0;
    if (rc != 0) {
        memset(a->res, 0, sizeof(*a->res));
        a->res->rc = rc;
    }
    return rc;
}

int store__person_put(store_t *s, int64_t tenant_id, const model_person_t *p,
                      store_write_result_t *res)
{
    write_arg_t a = { .kind = W_PERSON_PUT, .tenant_id = tenant_id, .rec = p, .res = res };
    return run_single(s, &a);
}

int store__person_delete(store_t *s, int64_t tenant_id, int64_t id, store_write_result_t *res)
{
    write_arg_t a = { .kind = W_PERSON_DELETE, .tenant_id = tenant_id, .id = id, .res = res };
    return run_single(s, &a);
}

int store__definition_put(store_t *s, int64_t tenant_id, const model_definition_t *d,
                          store_write_result_t *res)
{
    write_arg_t a = { .kind = W_DEFINITION_PUT, .tenant_id = tenant_id, .rec = d, .res = res };
    return run_single(s, &a);
}

int store__definition_delete(store_t *s, int64_t tenant_id, int64_t id,
                             store_write_result_t *res)
{
    write_arg_t a = { .kind = W_DEFINITION_DELETE, .tenant_id = tenant_id, .id = id,
                      .res = res };
    return run_single(s, &a);
}

int store__break_put(store_t *s, int64_t tenant_id, const model_break_t *b,
                     store_write_result_t *res)
{
    write_arg_t a = { .kind = W_BREAK_PUT, .tenant_id = tenant_id, .rec = b, .res = res };
    return run_single(s, &a);
}

int store__break_delete(store_t *s, int64_t tenant_id, int64_t id, store_write_result_t *res)
{
    write_arg_t a = { .kind = W_BREAK_DELETE, .tenant_id = tenant_id, .id = id, .res = res };
    return run_single(s, &a);
}
