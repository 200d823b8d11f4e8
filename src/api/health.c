/*
 * health.c: GET /healthz (the process is alive and its loop turns) and
 * GET /readyz (the store answers a query and, as far as it knows, can write, so
 * requests can be served; see store_ping).
 */
#include "api/api.h"
#include "api/handlers.h"

void api_healthz(http_request_t *req)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    http_respond_json(req, 200, ok, sizeof(ok) - 1);
}

static void ready_work(http_request_t *req, void *arg)
{
    int *rc = arg;
    *rc = store_ping(api_ctx(req)->store);
}

static void ready_done(http_request_t *req, void *arg)
{
    int *rc = arg;
    if (*rc == 0) {
        static const char ok[] = "{\"status\":\"ready\"}";
        http_respond_json(req, 200, ok, sizeof(ok) - 1);
    } else {
        http_respond_error(req, 503,
                           *rc == BH_ENOSPC || *rc == BH_EDISKIO ? api_store_error_message(*rc)
                                                                 : "the store is not reachable",
                           NULL, 0);
    }
}

void api_readyz(http_request_t *req)
{
    int *rc = arena_alloc(&req->arena, sizeof(int));
    if (!rc) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    api_run(req, ready_work, ready_done, rc);
}
