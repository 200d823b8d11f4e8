/*
 * api.c: the route table and the worker-pool bridge.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/log.h"
#include "core/metrics.h"

typedef struct api_job {
    uv_work_t work;
    http_request_t *req;
    api_work_fn fn, done;
    void *arg;
} api_job_t;

/* Jobs queued by api_run that no worker has started yet. libuv's pool is one per
 * process, so is this count. */
static _Atomic uint64_t jobs_waiting;

static void job_work(uv_work_t *w)
{
    api_job_t *j = w->data;
    atomic_fetch_sub_explicit(&jobs_waiting, 1, memory_order_relaxed);
    j->fn(j->req, j->arg);
}

static void job_done(uv_work_t *w, int status)
{
    api_job_t *j = w->data;
    (void)status;
    http_request_t *req = j->req;
    api_work_fn done = j->done;
    void *arg = j->arg;
    free(j);
    done(req, arg);
}

int api_run_job(http_request_t *req, api_work_fn work, api_work_fn done, void *arg)
{
    api_job_t *j = malloc(sizeof(*j));
    if (!j)
        return BH_ENOMEM;
    j->work.data = j;
    j->req = req;
    j->fn = work;
    j->done = done;
    j->arg = arg;
    atomic_fetch_add_explicit(&jobs_waiting, 1, memory_order_relaxed);
    if (uv_queue_work(api_ctx(req)->loop, &j->work, job_work, job_done) < 0) {
        atomic_fetch_sub_explicit(&jobs_waiting, 1, memory_order_relaxed);
        free(j);
        return BH_EAGAIN;
    }
    return 0;
}

void api_respond_unqueued(http_request_t *req, int rc, bool write)
{
    if (write && rc == BH_EAGAIN) {
        http_response_header(req, "Retry-After", "1");
        http_respond_error(req, 503, "too many writes are waiting for the store; try again",
                           NULL, 0);
        return;
    }
    http_respond_error(req, 503,
                       rc == BH_ENOMEM ? "the server is out of memory" : "the server is busy",
                       NULL, 0);
}

void api_run(http_request_t *req, api_work_fn work, api_work_fn done, void *arg)
{
    int rc = api_run_job(req, work, done, arg);
    if (rc)
        api_respond_unqueued(req, rc, false);
}

int api_run_write_job(http_request_t *req, api_work_fn work, api_work_fn done, void *arg)
{
    api_pool_t *pool = api_ctx(req)->write_pool;
    return pool ? api_pool_run(pool, req, work, done, arg) : api_run_job(req, work, done, arg);
}

void api_run_write(http_request_t *req, api_work_fn work, api_work_fn done, void *arg)
{
    int rc = api_run_write_job(req, work, done, arg);
    if (rc)
        api_respond_unqueued(req, rc, api_ctx(req)->write_pool != NULL);
}

/* One route per path: the method picks the handler. */
static void api_person_route(http_request_t *req)
{
    if (req->method == HTTP_M_PUT)
        api_person_put(req);
    else if (req->method == HTTP_M_DELETE)
        api_person_delete(req);
    else
        api_person_get(req);
}

static void api_definition_route(http_request_t *req)
{
    if (req->method == HTTP_M_PUT)
        api_definition_put(req);
    else if (req->method == HTTP_M_DELETE)
        api_definition_delete(req);
    else
        api_definition_get(req);
}

static void api_break_route(http_request_t *req)
{
    if (req->method == HTTP_M_PUT)
        api_break_put(req);
    else if (req->method == HTTP_M_DELETE)
        api_break_delete(req);
    else
        api_break_get(req);
}

static void api_webhooks_route(http_request_t *req)
{
    if (req->method == HTTP_M_POST)
        api_webhook_create(req);
    else
        api_webhooks_list(req);
}

static void api_webhook_route(http_request_t *req)
{
    if (req->method == HTTP_M_DELETE)
        api_webhook_delete(req);
    else
        api_webhook_get(req);
}

int api_register_routes(http_router_t *r, api_ctx_t *ctx)
{
    const http_route_opts_t plain = { .data = ctx };
    const http_route_opts_t open = { .data = ctx, .api = true };
    const http_route_opts_t api = { .data = ctx, .api = true, .check = api_authenticate };
    /* The token endpoint checks User-Agent itself, so that even that refusal is an
     * RFC 6749 §5.2 body that OAuth2 client libraries can read. */
    const http_route_opts_t form = { .data = ctx, .max_body = 16384 };
    const http_route_opts_t batch = { .data = ctx, .api = true, .check = api_authenticate,
                                      .max_body = ctx->max_batch_body ? ctx->max_batch_body
                                                                      : API_BATCH_MAX_BODY,
                                      .stream_window = API_BATCH_WINDOW };
    int rc = 0;
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, "/healthz", api_healthz, &plain);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, "/readyz", api_readyz, &plain);
    rc = rc ? rc : http_router_add(r, HTTP_M_POST, "/tenants/{tenant}/connect/token", api_token,
                                   &form);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, "/tenants/{tenant}/.well-known/openid-configuration",
                                   api_discovery, &open);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/token-info", api_token_info, &api);

    rc = rc ? rc : http_router_add(r, HTTP_M_PUT | HTTP_M_GET | HTTP_M_DELETE,
                                   API_BASE "/people/{id}", api_person_route, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/break-definitions",
                                   api_definitions_list, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_PUT | HTTP_M_GET | HTTP_M_DELETE,
                                   API_BASE "/break-definitions/{id}", api_definition_route, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_POST, API_BASE "/breaks/$batch", api_breaks_batch,
                                   &batch);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/breaks", api_breaks_list, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/delta/breaks", api_delta_breaks,
                                   &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/delta/break-definitions",
                                   api_delta_definitions, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_PUT | HTTP_M_GET | HTTP_M_DELETE,
                                   API_BASE "/breaks/{id}", api_break_route, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_POST | HTTP_M_GET, API_BASE "/webhooks",
                                   api_webhooks_route, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET | HTTP_M_DELETE, API_BASE "/webhooks/{id}",
                                   api_webhook_route, &api);
    rc = rc ? rc : http_router_add(r, HTTP_M_GET, API_BASE "/webhooks/{id}/deliveries",
                                   api_webhook_deliveries, &api);
    return rc;
}

int api_metrics_write(api_pool_t *token_pool, api_pool_t *write_pool, buf_t *out)
{
    int rc = metrics_write_single(out, "breakhook_worker_queue_length", "gauge",
                                  "API store jobs waiting for a worker thread.",
                                  atomic_load_explicit(&jobs_waiting, memory_order_relaxed));
    if (token_pool)
        rc = rc ? rc
                : metrics_write_single(out, "breakhook_token_queue_length", "gauge",
                                       "Token requests waiting for (or in) a bh-token thread.",
                                       api_pool_queued(token_pool));
    if (write_pool)
        rc = rc ? rc
                : metrics_write_single(out, "breakhook_write_queue_length", "gauge",
                                       "API writes waiting for (or in) a bh-write thread, "
                                       "which waits for the write's group commit.",
                                       api_pool_queued(write_pool));
    return rc;
}
