/*
 * api.h: the HTTP API of breakhook: route table and handlers, one file per resource.
 *
 * Handlers run on the server's loop thread. Anything that touches the store runs
 * on libuv's worker pool through api_run(), and the answer is written back on the
 * loop when the work is done.
 */
#ifndef BREAKHOOK_API_API_H
#define BREAKHOOK_API_API_H

#include <uv.h>

#include "core/clock.h"
#include "http/http.h"
#include "store/store.h"

#define API_BASE "/connector/protimeapi/api/v1"

/* What every handler may reach. Owned by the serve command; outlives the server. */
typedef struct api_ctx {
    uv_loop_t *loop;
    store_t *store;
    bh_clock_t *clock;
    bh_rand_t *rand;
} api_ctx_t;

/* Registers every route. ctx is borrowed and must outlive the router. */
BH_MUST_USE int api_register_routes(http_router_t *r, api_ctx_t *ctx);

/* Runs work(req, arg) on a worker thread, then done(req, arg) on the loop, which
 * must answer req. work must not touch the connection or answer; it may use
 * req->arena and the request fields, which stay valid until done has answered.
 * Fails (and answers 503) only when the job cannot be queued. */
typedef void (*api_work_fn)(http_request_t *req, void *arg);
void api_run(http_request_t *req, api_work_fn work, api_work_fn done, void *arg);

/* The api_ctx_t a route was registered with. */
static inline api_ctx_t *api_ctx(const http_request_t *req)
{
    return (api_ctx_t *)req->route_data;
}

#endif
