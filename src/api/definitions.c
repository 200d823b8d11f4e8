/*
 * definitions.c: break definitions (SPEC §3.2): PUT, GET, DELETE by id, and the
 * list GET /break-definitions (no filter, paged by id). Changing a definition
 * recomputes the breaks whose duration the server computed from it (the store
 * does it in the same transaction).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"

static int parse(const char *json, size_t n, int64_t path_id, void *out, model_errors_t *errs)
{
    return model_definition_parse(json, n, path_id, out, errs);
}

static int put(store_t *s, int64_t tenant_id, const void *rec, store_write_result_t *res)
{
    return store_definition_put(s, tenant_id, rec, res);
}

static int get(store_t *s, int64_t tenant_id, int64_t id, void *out)
{
    return store_definition_get(s, tenant_id, id, out);
}

static int encode(http_request_t *req, store_t *s, int64_t tenant_id, const void *rec, buf_t *b)
{
    (void)req, (void)s, (void)tenant_id;
    return model_definition_json(b, rec);
}

static const api_resource_t definitions = {
    .collection = "break-definitions",
    .read_scope = SCOPE_BREAK_DEFINITIONS_READ,
    .write_scope = SCOPE_BREAK_DEFINITIONS_WRITE,
    .not_found = "no such break definition",
    .rec_size = sizeof(model_definition_t),
    .parse = parse,
    .put = put,
    .get = get,
    .del = store_definition_delete,
    .encode = encode,
};

void api_definition_put(http_request_t *req)
{
    api_resource_put(req, &definitions);
}

void api_definition_get(http_request_t *req)
{
    api_resource_get(req, &definitions);
}

void api_definition_delete(http_request_t *req)
{
    api_resource_delete(req, &definitions);
}

typedef struct list_job {
    api_list_t list; /* first: api_list_done answers from it */
    int64_t tenant_id;
    api_cursor_t cur;
    size_t limit;
} list_job_t;

int api_definitions_page(store_t *s, int64_t tenant_id, int64_t after_id, size_t limit,
                         buf_t *out, bool *more, api_cursor_t *next)
{
    model_definition_t *defs = NULL;
    size_t n = 0;
    /* One more than a page tells whether a next page exists. */
    int rc = store_definitions_list(s, tenant_id, after_id, limit + 1, &defs, &n);
    if (rc)
        return rc;
    *more = n > limit;
    if (*more)
        n = limit;
    *next = (api_cursor_t){ .a = *more ? defs[n - 1].id : 0, .b = 0 };
    rc = buf_append_str(out, "{\"value\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = buf_append_char(out, ',');
        rc = rc ? rc : model_definition_json(out, &defs[i]);
    }
    free(defs);
    return rc;
}

static void list_work(http_request_t *req, void *arg)
{
    list_job_t *j = arg;
    bool more;
    api_cursor_t next;
    buf_t *out = &j->list.out;
    int rc = api_definitions_page(api_ctx(req)->store, j->tenant_id, j->cur.a, j->limit, out,
                                  &more, &next);
    rc = rc ? rc : api_list_close(req, "break-definitions", more ? &next : NULL, out);
    j->list.rc = rc;
}

void api_definitions_list(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_BREAK_DEFINITIONS_READ);
    if (!c)
        return;
    list_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    j->tenant_id = c->tenant_id;
    const char *filter;
    if (http_request_query(req, "filter", &filter)) {
        const char *reasons[] = { "filter: break-definitions take no filter" };
        http_respond_error(req, 400, "invalid filter", reasons, 1);
        return;
    }
    const char *delta;
    if (http_request_query(req, "delta", &delta)) {
        api_delta_initial(req, c, STORE_COLL_DEFINITIONS, 0, 0);
        return;
    }
    if (!(j->limit = api_page_size(req)))
        return;
    if (api_cursor_read(req, "break-definitions", &j->cur) < 0)
        return;
    buf_init(&j->list.out, 64 << 20);
    api_run(req, list_work, api_list_done, j);
}
