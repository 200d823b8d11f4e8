/*
 * hc_pool.h: the delivery engine's transport threads.
 *
 * A request through libcurl and the kernel's TCP path costs several times what the
 * engine's own bookkeeping per event costs (bench/README.md has the profile). The
 * pool keeps the bookkeeping — lanes, watermarks, the breaker, the caps — on the
 * owner's loop thread and runs the transfers on N threads, each with its own libuv
 * loop and its own http client (hc_t: libcurl multi-socket, its own connection
 * cache). A request goes to the thread with the fewest requests in flight; its
 * done callback comes back on the owner's loop.
 *
 * With 0 threads the pool is one hc_t on the owner's loop (no hand-over at all).
 *
 * Every call on the owner loop's thread.
 */
#ifndef BREAKHOOK_CLIENT_HC_POOL_H
#define BREAKHOOK_CLIENT_HC_POOL_H

#include "client/http_client.h"

#define HC_POOL_MAX_THREADS 16

typedef struct hc_pool hc_pool_t;

BH_MUST_USE int hc_pool_new(uv_loop_t *loop, const hc_options_t *opt, unsigned threads,
                            hc_pool_t **out);
/* Starts a POST; done runs later on the owner's loop (never from inside the call).
 * BH_ENOTFOUND at once for a host under .invalid, as hc_send. */
BH_MUST_USE int hc_pool_send(hc_pool_t *p, hc_request_t *r);
/* Aborts transfers in progress and stops the threads; every outstanding request's
 * done callback has run (with an error) when this returns. The pool's memory goes
 * once the owner's loop has run its close callbacks. */
void hc_pool_free(hc_pool_t *p);

#endif
