/*
 * resource.c: PUT, GET and DELETE of one record, shared by people, break
 * definitions and breaks (SPEC §4, §5). A table (api_resource_t) says what
 * differs; the flow is the same for all three:
 *
 *   loop: authorize, check id and Content-Type, parse and validate the body
 *   worker: store write (group commit) and read back, encode the answer
 *   loop: status code (201 + Location / 200 / 204 / 400 / 404 / 409) and body
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

typedef struct resource_job {
    const api_resource_t *r;
    int64_t tenant_id;
    int64_t id;
    void *rec;
    store_write_result_t res;
    int rc;
    buf_t out;
} resource_job_t;

static resource_job_t *job_new(http_request_t *req, const api_resource_t *r, const char *scope)
{
    const auth_claims_t *c = api_authorize(req, scope);
    if (!c)
        return NULL;
    resource_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    void *rec = arena_alloc(&req->arena, r->rec_size);
    if (!j || !rec) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return NULL;
    }
    memset(j, 0, sizeof(*j));
    memset(rec, 0, r->rec_size);
    j->r = r;
    j->rec = rec;
    j->tenant_id = c->tenant_id;
    j->id = api_path_id(req);
    buf_init(&j->out, 8 << 20);
    return j;
}

/* Reads the record back and encodes it, on the worker. */
static void load_and_encode(http_request_t *req, resource_job_t *j)
{
    store_t *s = api_ctx(req)->store;
    j->rc = j->r->get(s, j->tenant_id, j->id, j->rec);
    if (!j->rc)
        j->rc = j->r->encode(req, s, j->tenant_id, j->rec, &j->out);
}

static void put_work(http_request_t *req, void *arg)
{
    resource_job_t *j = arg;
    j->rc = j->r->put(api_ctx(req)->store, j->tenant_id, j->rec, &j->res);
    if (!j->rc && !j->res.rc)
        load_and_encode(req, j);
}

static void put_done(http_request_t *req, void *arg)
{
    resource_job_t *j = arg;
    if (j->rc) {
        api_respond_store_error(req, j->rc);
    } else if (j->res.rc) {
        api_respond_write_error(req, &j->res);
    } else {
        bool created = j->res.outcome == STORE_OUT_CREATED;
        if (created)
            api_set_location(req, j->r->collection, j->id);
        api_respond_buf(req, created ? 201 : 200, &j->out);
    }
    buf_deinit(&j->out);
}

void api_resource_put(http_request_t *req, const api_resource_t *r)
{
    resource_job_t *j = job_new(req, r, r->write_scope);
    if (!j || !api_require_json(req))
        return;
    if (!j->id) {
        const char *reasons[] = { "id: the path must end in a positive integer id" };
        http_respond_error(req, 400, "invalid id", reasons, 1);
        return;
    }
    model_errors_t *errs = arena_alloc(&req->arena, sizeof(*errs));
    if (!errs) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    if (r->parse(buf_cstr(&req->body), req->body.len, j->id, j->rec, errs)) {
        api_respond_invalid(req, errs);
        return;
    }
    api_run_write(req, put_work, put_done, j);
}

static void get_work(http_request_t *req, void *arg)
{
    load_and_encode(req, arg);
}

static void get_done(http_request_t *req, void *arg)
{
    resource_job_t *j = arg;
    if (j->rc == BH_ENOTFOUND)
        http_respond_error(req, 404, j->r->not_found, NULL, 0);
    else if (j->rc)
        api_respond_store_error(req, j->rc);
    else
        api_respond_buf(req, 200, &j->out);
    buf_deinit(&j->out);
}

void api_resource_get(http_request_t *req, const api_resource_t *r)
{
    resource_job_t *j = job_new(req, r, r->read_scope);
    if (!j)
        return;
    if (!j->id) {
        http_respond_error(req, 404, r->not_found, NULL, 0);
        return;
    }
    api_run(req, get_work, get_done, j);
}

static void delete_work(http_request_t *req, void *arg)
{
    resource_job_t *j = arg;
    j->rc = j->r->del(api_ctx(req)->store, j->tenant_id, j->id, &j->res);
}

static void delete_done(http_request_t *req, void *arg)
{
    resource_job_t *j = arg;
    if (j->rc)
        api_respond_store_error(req, j->rc);
    else if (j->res.rc)
        api_respond_write_error(req, &j->res);
    else
        http_respond(req, 204, NULL, NULL, 0);
    buf_deinit(&j->out);
}

void api_resource_delete(http_request_t *req, const api_resource_t *r)
{
    resource_job_t *j = job_new(req, r, r->write_scope);
    if (!j)
        return;
    if (!j->id) {
        http_respond_error(req, 404, r->not_found, NULL, 0);
        return;
    }
    api_run_write(req, delete_work, delete_done, j);
}
