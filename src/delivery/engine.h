/*
 * engine.h: the delivery engine (SPEC §7.2, §7.3).
 *
 * One thread with its own libuv loop. It walks every Enabled webhook's window of
 * the change log in version order, keeps one lane per record (at most one event of
 * a record in flight; a newer change replaces the waiting one), signs each POST
 * with the webhook's key (Standard Webhooks), hands it to libcurl on one of the
 * transport threads (client/hc_pool.h: one loop and curl multi handle each; with
 * send_threads 0, on the engine's own loop), retries on the SPEC schedule, disables a webhook on 410 or when retries
 * are exhausted, pauses a destination that fails everything (circuit breaker) and
 * caps requests in flight per destination. Results are committed to the store in
 * batches; see store.h "delivery state" for what survives a crash.
 *
 * Memory is bounded by max_pending (one budget for the process), not by the backlog:
 * what does not fit stays in the change log on disk and is read when lanes drain.
 * The budget is shared: a webhook reads more only while it holds less than its share
 * (the budget divided by the webhooks with work, recomputed every second) and the
 * process less than the budget; and a webhook holding fewer than ENGINE_SHARE_MIN
 * events may always read up to that many, so one whose destination hangs cannot keep
 * the others from progressing. Events in memory stay under the budget plus
 * ENGINE_SHARE_MIN per webhook with work.
 */
#ifndef BREAKHOOK_DELIVERY_ENGINE_H
#define BREAKHOOK_DELIVERY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/destination.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "delivery/retry.h"
#include "store/store.h"

typedef struct engine engine_t;

typedef struct engine_options {
    store_t *store;
    bh_clock_t *clock;
    bh_rand_t *rand;
    const crypto_master_t *master;
    const dest_allow_t *allow;
    bool allow_http;
    const char *ca_file;
    retry_policy_t retry;
    int64_t timeout_ms;              /* whole attempt; SPEC: 10 s */
    int64_t connect_timeout_ms;      /* SPEC: 5 s */
    size_t max_inflight_per_dest;    /* SPEC: 16 */
    size_t max_pending;              /* events held in memory, all webhooks together */
    int64_t poll_ms;                 /* a safety net beside the store's commit notifications:
                                      * each webhook reads its change log again at least
                                      * this often, the webhooks spread over the interval */
    int64_t refresh_ms;              /* reload the list of webhooks this often */
    int breaker_threshold;           /* consecutive failures that pause a destination */
    int64_t breaker_pause_ms;        /* first pause; doubles while probes fail, max 5 min */
    unsigned send_threads;           /* transport threads (hc_pool); 0: transfers on the
                                      * engine's own thread */
    bool coalesce;                   /* a newer change replaces a waiting one (SPEC: on) */
    bool log_attempts;               /* one log line per attempt (failures rate-limited per
                                      * destination) */
    /* Tests only (0 everywhere else): the next this-many attempts fail before anything
     * is sent, as when memory runs out while preparing one. */
    unsigned test_fail_starts;
} engine_options_t;

/* The least share of the budget a webhook with work may hold (events). */
#define ENGINE_SHARE_MIN 64

/* Fills the SPEC defaults (store, clock, rand, master, allow left NULL). */
void engine_options_default(engine_options_t *o);

/* Starts the engine thread. The options and what they point to must outlive it. */
BH_MUST_USE int engine_start(const engine_options_t *o, engine_t **out);
/* New changes were committed: look now instead of at the next poll. Any thread.
 * The engine subscribes to the store's commit notifications (store_subscribe), so
 * writes through the store wake it by themselves; this is for tests and tools. */
void engine_wake(engine_t *e);
/* Stops starting attempts, aborts those in flight (they are sent again after a
 * restart: at least once), commits what it knows, joins the thread, frees e.
 * NULL is a no-op. */
void engine_stop(engine_t *e);

typedef struct engine_stats {
    uint64_t attempts, delivered, failed, gave_up;
} engine_stats_t;
void engine_get_stats(engine_t *e, engine_stats_t *out);

/* Appends the engine's families in the Prometheus text format (docs/OPERATIONS.md
 * lists them): attempts by outcome, retries, given up, the commit -> 2xx latency and
 * attempt duration histograms, and the gauges (paused destinations, enabled and
 * expiring webhooks, pending events and the oldest one's age, in all and for the 10
 * tenants with most). Counters are atomics; the gauges are the engine's own
 * snapshot, at most a second old. Any thread. 0 or BH_ENOMEM when out is full. */
BH_MUST_USE int engine_metrics_write(engine_t *e, buf_t *out);

#endif
