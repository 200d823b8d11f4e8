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
 *   - the fan-out of a definition change to the breaks whose duration it computes;
 *   - the reasons of refused writes, word for word;
 *   - the change-log records: the canonical JSON of the record at its version, or
 *     its tombstone.
 *
 * A refused write (res->rc set) is returned as the job's error so that the back-end
 * undoes it, and flagged so that the caller can tell it from a store failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Recomputes every break whose duration the server computed from d (the definition
 * as just stored); each one whose value changes gets the next version and its own
 * change-log row, after the definition's. A chunk of breaks is read, then written
 * as one set of rows and one set of change-log rows. */
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
            int32_t calc = model_break_compute(b, d);
            if (calc == b->calculated)
                continue;
            b->calculated = calc;
            b->version = ++v;
            rows[m] = (store__break_row_t){ .kind = STORE__BREAK_SET_CALC, .b = *b };
            rc = model_break_json(&x->body, b, NULL);
            ends[m] = x->body.len;
            changes[m] = change_row(x, b->version, STORE_COLL_BREAKS, STORE_CHANGE_UPSERT,
                                    b->id, true, b->date);
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
    bool recompute = exists && !definition_calc_same(cur, d);

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

/* ---- single writes ------------------------------------------------------------------ */

typedef enum {
    W_PERSON_PUT,
    W_PERSON_DELETE,
    W_DEFINITION_PUT,
    W_DEFINITION_DELETE,
} write_kind_t;

typedef struct write_arg {
    store_t *s;
    write_kind_t kind;
    int64_t tenant_id;
    const void *rec;   /* the record of a put */
    int64_t id;        /* the id of a delete */
    store_write_result_t *res;
    bool refused;      /* set in the job: it failed with res->rc, a refusal */
} write_arg_t;

/* One PUT or DELETE as one job. A refusal (res->rc set) is returned as the job's
 * error so that the back-end rolls it back, and flagged so that the caller can
 * tell it from a store failure. */
static int job_write(store__tx_t *tx, void *arg)
{
    write_arg_t *a = arg;
    wctx_t x;
    int rc = ctx_begin(&x, a->s, tx, a->tenant_id);
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
static int run_single(store_t *s, write_arg_t *a)
{
    a->s = s;
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
