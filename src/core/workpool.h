/*
 * workpool.h: a few threads with a bounded queue whose results come back to a
 * libuv loop, for work that blocks and must not hold libuv's shared pool.
 *
 * libuv has one worker pool per process (4 threads here), shared by store reads,
 * $batch parsing and the delivery engine's scans. Work that waits a long time for
 * something else — a store write waiting for its group commit, the token
 * endpoint's PBKDF2 — gets a workpool of its own, so that it cannot park those
 * threads: a flood of such work fills its own queue (the caller is told, and
 * answers 429 or 503) while everyone else is still served.
 *
 * Jobs go in on the loop's thread; a pool thread runs work(arg); done(arg) then
 * runs on the loop, as with uv_queue_work.
 */
#ifndef BREAKHOOK_CORE_WORKPOOL_H
#define BREAKHOOK_CORE_WORKPOOL_H

#include <stddef.h>
#include <uv.h>

#include "core/err.h"

#define WORKPOOL_MAX_THREADS 64

typedef struct workpool workpool_t;
typedef void (*workpool_fn)(void *arg);

/* threads 1..WORKPOOL_MAX_THREADS named name (at most 15 characters); at most
 * max_queued jobs waiting or running. On loop's thread. */
BH_MUST_USE int workpool_new(uv_loop_t *loop, const char *name, unsigned threads,
                             size_t max_queued, workpool_t **out);
/* Queues work(arg), then done(arg) on the loop. BH_EAGAIN when the queue is full,
 * BH_ESHUTDOWN when the pool is stopping, BH_ENOMEM: nothing was queued and done
 * will not run. On the loop's thread. */
BH_MUST_USE int workpool_run(workpool_t *p, workpool_fn work, workpool_fn done, void *arg);
/* Lets the threads finish the queued work, joins them and closes the pool's handle;
 * done callbacks that have not run yet are dropped, their arg handed to drop (may
 * be NULL) instead. The memory goes when the loop runs the close callback. NULL:
 * no-op. On the loop's thread. */
void workpool_free(workpool_t *p, workpool_fn drop);
/* Jobs waiting or running now. Any thread (takes the pool's lock). */
size_t workpool_queued(workpool_t *p);

#endif
