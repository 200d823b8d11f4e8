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

/* ---- single writes ------------------------------------------------------------------ */

typedef enum {
    W_PERSON_PUT,
    W_PERSON_DELETE,
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
 * outcome (0, with res->rc), anything else the call's error (res cleared). */
static int run_single(store_t *s, write_arg_t *a)
{
    a->s = s;
    int rc = s->ops->run_write(s, job_write, a, false);
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
