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
#include "client/destination.h"
#include "core/crypto.h"
#include "core/clock.h"
#include "core/workpool.h"
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
    /* Token requests that need a secret check, per source address and in all
     * (--token-rate-per-address, --token-rate-global); NULL or rate 0: no limit. */
    auth_ratelimit_t *token_rate_addr, *token_rate_global;
    struct api_pool *token_pool;     /* runs the secret checks; NULL: api_run */
    struct api_pool *write_pool;     /* writes wait for their commit here; NULL: api_run */
    auth_token_cache_t *token_cache; /* loop thread only; NULL: no caching */
    const crypto_master_t *master;   /* seals webhook keys at rest */
    const dest_allow_t *allow;       /* --allow-destination CIDRs */
    bool allow_http;                 /* --allow-http-destinations */
    int64_t webhook_validity_ms;     /* --webhook-validity */
    size_t max_webhooks;             /* --max-webhooks (Enabled, per tenant) */
    size_t max_batch_body;           /* --max-batch-body; 0: API_BATCH_MAX_BODY */
    struct api_deltas *deltas;       /* delta follow-ups in progress and held (delta.c);
                                        NULL: no long polling, no 409 on a busy delta */
    int64_t delta_ttl_ms;            /* --delta-ttl: a delta unused this long is gone */
    const char *domain;       /* when set, Host must be <tenant>.<domain> */
    int64_t token_ttl_s;      /* lifetime of issued access tokens */
    int pbkdf2_iterations;    /* unused at verification: the hash names its own cost */
} api_ctx_t;

/* The check (http_route_opts_t.check) of the bearer-token routes: answers 401 from
 * the request head when its token is not valid, before the body is read. */
void api_authenticate(http_request_t *req);

/* Registers every route. ctx is borrowed and must outlive the router. */
BH_MUST_USE int api_register_routes(http_router_t *r, api_ctx_t *ctx);

/* Runs work(req, arg) on a worker thread, then done(req, arg) on the loop, which
 * must answer req. work must not touch the connection or answer; it may use
 * req->arena and the request fields, which stay valid until done has answered.
 * Fails (and answers 503) only when the job cannot be queued. */
typedef void (*api_work_fn)(http_request_t *req, void *arg);
void api_run(http_request_t *req, api_work_fn work, api_work_fn done, void *arg);
/* As api_run and api_run_write, but answers nothing when the job cannot be queued:
 * they return BH_ENOMEM, BH_EAGAIN (the write pool's queue is full) or BH_ESHUTDOWN,
 * and the caller answers, with api_respond_unqueued once it has undone its own state. */
BH_MUST_USE int api_run_job(http_request_t *req, api_work_fn work, api_work_fn done,
                            void *arg);
BH_MUST_USE int api_run_write_job(http_request_t *req, api_work_fn work, api_work_fn done,
                                  void *arg);
/* The 503 of a job that could not be queued (rc from the two above; write: it was for
 * the write pool, whose full queue gets Retry-After). */
void api_respond_unqueued(http_request_t *req, int rc, bool write);
/* As api_run for work that writes to the store: it waits for its group commit on a
 * thread of the context's write pool, not on one of libuv's, which the reads need
 * (without a write pool, api_run). A full write queue is answered 503 with
 * Retry-After. */
void api_run_write(http_request_t *req, api_work_fn work, api_work_fn done, void *arg);

/* A workpool (core/workpool.h) of requests: a few threads with a bounded queue, apart
 * from libuv's pool that serves the reads. One runs the token endpoint's PBKDF2
 * checks (work done for callers who have not authenticated yet), one the writes
 * that wait for their group commit (api_run_write). New, run and free on the
 * loop's thread. */
typedef struct api_pool api_pool_t;

/* threads 1..WORKPOOL_MAX_THREADS named name; at most max_queued jobs waiting or
 * running. */
BH_MUST_USE int api_pool_new(uv_loop_t *loop, const char *name, unsigned threads,
                             size_t max_queued, api_pool_t **out);
/* As api_run, but on the pool. BH_EAGAIN when the queue is full, BH_ESHUTDOWN when
 * the pool is stopping, BH_ENOMEM: the caller answers (nothing was queued). */
BH_MUST_USE int api_pool_run(api_pool_t *p, http_request_t *req, api_work_fn work,
                             api_work_fn done, void *arg);
/* Lets the threads finish the queued work, joins them and closes the pool's handle;
 * done callbacks that have not run yet are dropped (call it once the server has
 * stopped). The memory goes when the loop runs the close callback. NULL: no-op. */
void api_pool_free(api_pool_t *p);
/* Jobs waiting or running on the pool now. Any thread (takes the pool's lock). */
size_t api_pool_queued(api_pool_t *p);

/* Appends breakhook_worker_queue_length (api_run jobs no worker has started) and,
 * with the pools, breakhook_token_queue_length and breakhook_write_queue_length, in
 * the Prometheus text format. Any thread. 0 or BH_ENOMEM when out is full. */
BH_MUST_USE int api_metrics_write(api_pool_t *token_pool, api_pool_t *write_pool, buf_t *out);

/* Authenticates the bearer token of req and checks that it grants scope (NULL:
 * any valid token). On success returns the claims (in req->arena). Otherwise
 * answers 401 (with WWW-Authenticate), 403 or 429 and returns NULL: the caller
 * just returns. Never blocks: the keyring and revocations are in memory. */
const auth_claims_t *api_authorize(http_request_t *req, const char *scope);

/* The same decision without answering, for tests: returns 0 and fills *claims, or
 * the HTTP status to answer with *reason and, for 429, *retry_after_s. */
int api_auth_decide(api_ctx_t *ctx, const http_request_t *req, const char *scope,
                    auth_claims_t *claims, const char **reason, int64_t *retry_after_s);

/* ---- helpers shared by the resource handlers (common.c) ---------------- */

/* The {id} path parameter as a positive integer (<= 2^53), or 0. */
int64_t api_path_id(const http_request_t *req);
/* True when the request's Content-Type is exactly this media type (compared
 * case-insensitively, parameters such as charset ignored, RFC 9110 §8.3.1). */
bool api_media_type_is(const http_request_t *req, const char *type);
/* Checks that the body is JSON (Content-Type application/json); answers 415 and
 * returns false otherwise. */
bool api_require_json(http_request_t *req);
/* Answers b's content as JSON with status. */
void api_respond_buf(http_request_t *req, int status, const buf_t *b);
/* Answers a store failure (BH_EIO and friends) as 503/500 with a reason. */
void api_respond_store_error(http_request_t *req, int rc);
/* The message of a 503 for a store failure rc: says when the disk is full or failed. */
const char *api_store_error_message(int rc);
/* Answers 400 with every reason of errs. */
void api_respond_invalid(http_request_t *req, const model_errors_t *errs);
/* Answers a store_write_result_t of a PUT or DELETE whose rc is not 0: 404, 400 or
 * 409 with its reason. */
void api_respond_write_error(http_request_t *req, const store_write_result_t *res);
/* Sets Location to API_BASE + collection + "/" + id. */
void api_set_location(http_request_t *req, const char *collection, int64_t id);
/* pageSize query parameter: default 1000, 1..10000; answers 400 and returns 0 when bad. */
size_t api_page_size(http_request_t *req);

/* ---- one-record resources (resource.c) ----------------------------------- */

/* What differs between PUT/GET/DELETE of people, break definitions and breaks;
 * resource.c does the rest (auth, ids, content type, worker jobs, status codes). */
typedef struct api_resource {
    const char *collection;   /* path segment: "people" */
    const char *read_scope, *write_scope;
    const char *not_found;    /* "no such person" */
    size_t rec_size;
    int (*parse)(const char *json, size_t n, int64_t path_id, void *out, model_errors_t *errs);
    int (*put)(store_t *s, int64_t tenant_id, const void *rec, store_write_result_t *res);
    int (*get)(store_t *s, int64_t tenant_id, int64_t id, void *out);
    int (*del)(store_t *s, int64_t tenant_id, int64_t id, store_write_result_t *res);
    /* Encodes rec; runs on the worker, so it may read the store (embedding). */
    int (*encode)(http_request_t *req, store_t *s, int64_t tenant_id, const void *rec, buf_t *b);
} api_resource_t;

void api_resource_put(http_request_t *req, const api_resource_t *r);
void api_resource_get(http_request_t *req, const api_resource_t *r);
void api_resource_delete(http_request_t *req, const api_resource_t *r);

/* ---- paging (paging.c) ---------------------------------------------------- */

/* Where a page ends, sealed into the continuationToken of nextLink. The token is
 * bound to the collection and to the query (hash of filter and externalReferences),
 * valid for API_PAGE_TOKEN_TTL_S; anything else is a 409. */
#define API_PAGE_TOKEN_TTL_S 86400

typedef struct api_cursor {
    int64_t a, b;             /* keyset position, meaning per collection */
} api_cursor_t;

/* Reads continuationToken if present: returns 1 with *cur filled, 0 when absent, or
 * answers 409 and returns -1. */
int api_cursor_read(http_request_t *req, const char *collection, api_cursor_t *cur);
/* The continuationToken itself, apart from the request (api_cursor_read and
 * api_next_link use these; so does fuzz/fuzz_paging.c). A token is the cursor, the
 * collection, the query's hash and the issue time, sealed with auth_seal for the
 * purpose "page". api_page_token_open returns NULL with *cur filled, or the reason
 * the token is refused (not valid, another query, expired: each answers 409). */
const char *api_page_token_open(auth_keyring_t *k, const char *tok, size_t n,
                                const char *collection, uint64_t query_hash, int64_t now_s,
                                api_cursor_t *cur);
BH_MUST_USE int api_page_token_seal(auth_keyring_t *k, const char *collection,
                                    uint64_t query_hash, int64_t now_s,
                                    const api_cursor_t *cur, char **tok);
/* A webhook id (a UUID: 128 bits) as a keyset position, and back. */
void api_cursor_from_id(const char *uuid, api_cursor_t *cur);
void api_cursor_to_id(const api_cursor_t *cur, char out[37]);
/* Appends ,"nextLink":"<path>?<query without continuationToken>&continuationToken=…"
 * to b. */
BH_MUST_USE int api_next_link(http_request_t *req, const char *collection,
                              const api_cursor_t *cur, buf_t *b);

/* A list answer built on a worker: {"value":[…],"nextLink":"…"}. Embed it first in
 * a job struct; api_list_done answers from it and frees the text. */
typedef struct api_list {
    int rc;
    buf_t out;
} api_list_t;

/* Closes the value array and appends nextLink when next is given (a next page
 * exists) and the closing brace. */
BH_MUST_USE int api_list_close(http_request_t *req, const char *collection,
                               const api_cursor_t *next, buf_t *out);
/* An api_work_fn for done: answers 200 with the list, or the store error. */
void api_list_done(http_request_t *req, void *arg);
/* As api_next_link, and the query's own extra parameter (when extra is given) is
 * dropped too and appended again as "&<extra>=<extra_value>" (a delta's nextLink
 * carries its deltaToken). */
BH_MUST_USE int api_next_link_with(http_request_t *req, const char *collection,
                                   const api_cursor_t *cur, const char *extra,
                                   const char *extra_value, buf_t *b);

/* ---- delta (delta.c, SPEC §6) ------------------------------------------------ */

#define API_DELTA_PAGE_MAX 1000     /* records in one follow-up page at most */
#define API_DELTA_EXTREFS_MAX 512   /* bytes of externalReferences a delta keeps */
#define API_DELTA_WAIT_MAX_S 60     /* Prefer: wait=N is honoured up to this */

/* What a deltaToken carries, sealed with auth_seal for the purpose "delta": whose it
 * is (tenant, client, collection, the delta's id in the store), its date range and
 * externalReferences (as the client wrote them), and its cursor: every change of the
 * collection up to cursor has been answered. */
typedef struct api_delta_token {
    int64_t tenant_id;
    store_collection_t collection;
    char client_id[64];
    char delta_id[STORE_DELTA_ID_LEN + 1];
    int32_t date_from, date_to;
    uint64_t cursor;
    char extrefs[API_DELTA_EXTREFS_MAX + 1];
} api_delta_token_t;

/* Seals t into a token (malloc'd). BH_EINVAL when a field is out of its bounds. */
BH_MUST_USE int api_delta_token_seal(auth_keyring_t *k, const api_delta_token_t *t, char **tok);
/* Opens a deltaToken: NULL with *t filled, or the reason it is refused ("the
 * deltaToken is not valid": tampered, truncated, sealed for another purpose or with a
 * key no longer in the keyring, or its fields out of bounds). Also the fuzz target's
 * entry (fuzz/fuzz_delta_token.c). */
const char *api_delta_token_open(auth_keyring_t *k, const char *tok, size_t n,
                                 api_delta_token_t *t);

/* The state of delta follow-ups on one loop: which deltas have a request running
 * (a second one gets 409) and the long polls held (Prefer: wait=N), woken by the
 * store's commit notifications. New, stop and free on the loop's thread. */
typedef struct api_deltas api_deltas_t;
/* max_held: held long polls in all; max_held_per_client: per API client. */
BH_MUST_USE int api_deltas_new(uv_loop_t *loop, store_t *store, size_t max_held,
                               size_t max_held_per_client, api_deltas_t **out);
/* ctx is the context the routes run with: held requests are answered with it. */
void api_deltas_attach(api_deltas_t *d, api_ctx_t *ctx);
/* SIGTERM: answers every held request at once (an empty page and its deltaLink),
 * holds no more, and stops listening to the store. Idempotent. */
void api_deltas_stop(api_deltas_t *d);
/* After the loop has closed its handles (uv_walk + uv_run) or never ran: frees. */
void api_deltas_free(api_deltas_t *d);

/* The api_ctx_t a route was registered with. */
static inline api_ctx_t *api_ctx(const http_request_t *req)
{
    return (api_ctx_t *)req->route_data;
}

#endif
