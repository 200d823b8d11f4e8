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

#include "auth/auth.h"
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
    auth_keyring_t *keyring;
    auth_revoked_t *revoked;
    auth_ratelimit_t *ratelimit;
    const char *domain;       /* when set, Host must be <tenant>.<domain> */
    int64_t token_ttl_s;      /* lifetime of issued access tokens */
    int pbkdf2_iterations;    /* unused at verification: the hash names its own cost */
} api_ctx_t;

/* Registers every route. ctx is borrowed and must outlive the router. */
BH_MUST_USE int api_register_routes(http_router_t *r, api_ctx_t *ctx);

/* Runs work(req, arg) on a worker thread, then done(req, arg) on the loop, which
 * must answer req. work must not touch the connection or answer; it may use
 * req->arena and the request fields, which stay valid until done has answered.
 * Fails (and answers 503) only when the job cannot be queued. */
typedef void (*api_work_fn)(http_request_t *req, void *arg);
void api_run(http_request_t *req, api_work_fn work, api_work_fn done, void *arg);

/* Authenticates the bearer token of req and checks that it grants scope (NULL:
 * any valid token). On success returns the claims (in req->arena). Otherwise
 * answers 401 (with WWW-Authenticate), 403 or 429 and returns NULL: the caller
 * just returns. Never blocks: the keyring and revocations are in memory. */
const auth_claims_t *api_authorize(http_request_t *req, const char *scope);

/* The same decision without answering, for tests: returns 0 and fills *claims, or
 * the HTTP status to answer with *reason and, for 429, *retry_after_s. */
int api_auth_decide(api_ctx_t *ctx, const http_request_t *req, const char *scope,
                    auth_claims_t *claims, const char **reason, int64_t *retry_after_s);

/* The api_ctx_t a route was registered with. */
static inline api_ctx_t *api_ctx(const http_request_t *req)
{
    return (api_ctx_t *)req->route_data;
}

#endif
