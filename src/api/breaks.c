/*
 * breaks.c: breaks (SPEC §3.1): PUT, GET, DELETE by id, and the list
 * GET /breaks?filter=date ge '…' and date le '…' [and person in (…)] with keyset
 * paging and externalReferences embedding (SPEC §1, §5).
 *
 * Embedding: the person references asked for with
 * externalReferences=(people,NAME)… are read from the store on the worker, for all
 * persons of a page at once, and written into each break's person object in the
 * order asked. A name the person has no value for is left out of the map.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/date.h"
#include "delivery/event.h"
#include "filter/extref.h"
#include "filter/filter.h"

/* The externalReferences parameter of a request: absent (n = 0, asked = false), or
 * parsed; answers 400 and returns false when malformed. */
static bool read_extrefs(http_request_t *req, extref_list_t *out, bool *asked)
{
    const char *v;
    *asked = false;
    out->items = NULL;
    out->n = 0;
    if (!http_request_query(req, "externalReferences", &v))
        return true;
    char err[EXTREF_ERR_MAX];
    if (extref_parse(v, strlen(v), &req->arena, out, err, sizeof(err))) {
        const char *reasons[] = { err };
        http_respond_error(req, 400, "invalid externalReferences", reasons, 1);
        return false;
    }
    *asked = true;
    return true;
}

/* Encodes breaks as a comma-separated list of objects, embedding the asked
 * references (delivery/event.c: the same code builds what webhooks deliver). Runs on
 * the worker. */
static int encode_breaks(store_t *s, int64_t tenant_id, const model_break_t *bs, size_t n,
                         const extref_list_t *refs, bool asked, buf_t *b)
{
    event_refs_t er = { .refs = refs, .asked = asked };
    return event_breaks_json(s, tenant_id, bs, n, &er, b);
}

/* ---- one break -------------------------------------------------------- */

/* The asked references travel from the loop to the encoder through req->ctx. */
typedef struct embed_ask {
    extref_list_t refs;
    bool asked;
} embed_ask_t;

static int parse(const char *json, size_t n, int64_t path_id, void *out, model_errors_t *errs)
{
    return model_break_parse(json, n, path_id, out, errs);
}

static int put(store_t *s, int64_t tenant_id, const void *rec, store_write_result_t *res)
{
    return store_break_put(s, tenant_id, rec, res);
}

static int get(store_t *s, int64_t tenant_id, int64_t id, void *out)
{
    return store_break_get(s, tenant_id, id, out);
}

static int encode(http_request_t *req, store_t *s, int64_t tenant_id, const void *rec, buf_t *b)
{
    const embed_ask_t *ask = req->ctx;
    static const embed_ask_t none = { { NULL, 0 }, false };
    if (!ask)
        ask = &none;
    return encode_breaks(s, tenant_id, rec, 1, &ask->refs, ask->asked, b);
}

static const api_resource_t breaks = {
    .collection = "breaks",
    .read_scope = SCOPE_BREAKS_READ,
    .write_scope = SCOPE_BREAKS_WRITE,
    .not_found = "no such break",
    .rec_size = sizeof(model_break_t),
    .parse = parse,
    .put = put,
    .get = get,
    .del = store_break_delete,
    .encode = encode,
};

void api_break_put(http_request_t *req)
{
    api_resource_put(req, &breaks);
}

void api_break_get(http_request_t *req)
{
    embed_ask_t *ask = arena_alloc(&req->arena, sizeof(*ask));
    if (!ask) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    if (!read_extrefs(req, &ask->refs, &ask->asked))
        return;
    req->ctx = ask;
    api_resource_get(req, &breaks);
}

void api_break_delete(http_request_t *req)
{
    api_resource_delete(req, &breaks);
}

/* ---- the list --------------------------------------------------------- */

typedef struct list_job {
    api_list_t list; /* first: api_list_done answers from it */
    int64_t tenant_id;
    store_breaks_query_t q;
    embed_ask_t ask;
} list_job_t;

int api_breaks_page(store_t *s, int64_t tenant_id, const store_breaks_query_t *q,
                    const extref_list_t *refs, bool asked, buf_t *out, bool *more,
                    api_cursor_t *next)
{
    model_break_t *bs = NULL;
    size_t n = 0;
    store_breaks_query_t one_more = *q; /* one more tells whether there is a next page */
    one_more.limit = q->limit + 1;
    int rc = store_breaks_list(s, tenant_id, &one_more, &bs, &n);
    if (rc)
        return rc;
    *more = n > q->limit;
    if (*more)
        n = q->limit;
    *next = (api_cursor_t){ .a = *more ? bs[n - 1].date : 0, .b = *more ? bs[n - 1].id : 0 };
    rc = buf_append_str(out, "{\"value\":[");
    rc = rc ? rc : encode_breaks(s, tenant_id, bs, n, refs, asked, out);
    free(bs);
    return rc;
}

static void list_work(http_request_t *req, void *arg)
{
    list_job_t *j = arg;
    bool more;
    api_cursor_t next;
    buf_t *out = &j->list.out;
    int rc = api_breaks_page(api_ctx(req)->store, j->tenant_id, &j->q, &j->ask.refs,
                             j->ask.asked, out, &more, &next);
    rc = rc ? rc : api_list_close(req, "breaks", more ? &next : NULL, out);
    j->list.rc = rc;
}

void api_breaks_list(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_BREAKS_READ);
    if (!c)
        return;
    api_ctx_t *ctx = api_ctx(req);
    list_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    j->tenant_id = c->tenant_id;
    const char *expr, *delta;
    bool is_delta = http_request_query(req, "delta", &delta);
    if (!http_request_query(req, "filter", &expr)) {
        const char *reasons[] = {
            "filter: a date range is required, e.g. filter=date ge '2024-01-01' and date le "
            "'2024-01-31'"
        };
        http_respond_error(req, 400, "missing filter", reasons, 1);
        return;
    }
    filter_breaks_t f;
    char err[FILTER_ERR_MAX];
    int32_t today = date_from_ms(clock_now_ms(ctx->clock));
    if (filter_breaks_compile(expr, strlen(expr), is_delta, today, &req->arena, &f, err,
                              sizeof(err))) {
        const char *reasons[] = { err };
        http_respond_error(req, 400, "invalid filter", reasons, 1);
        return;
    }
    if (!read_extrefs(req, &j->ask.refs, &j->ask.asked))
        return;
    if (is_delta) {
        api_delta_initial(req, c, STORE_COLL_BREAKS, f.date_from, f.date_to);
        return;
    }
    if (!(j->q.limit = api_page_size(req)))
        return;
    api_cursor_t cur;
    int have = api_cursor_read(req, "breaks", &cur);
    if (have < 0)
        return;
    j->q.date_from = f.date_from;
    j->q.date_to = f.date_to;
    j->q.persons = f.persons;
    j->q.n_persons = f.n_persons;
    if (have) {
        j->q.has_after = true;
        j->q.after_date = (int32_t)cur.a;
        j->q.after_id = cur.b;
    }
    buf_init(&j->list.out, 256 << 20);
    api_run(req, list_work, api_list_done, j);
}
