/*
 * retry.h: when to try a failed delivery again (SPEC §7.3).
 *
 * After failure n (1-based) the next attempt is schedule[n-1] later, ±20 % jitter
 * so that many events failing together do not come back together. A Retry-After
 * from the destination (on 429 or 503) is honoured when it asks for longer, up to
 * RETRY_AFTER_MAX_MS. After the last entry there is no next attempt: the webhook
 * is disabled (RetriesExhausted). Pure; any thread.
 */
#ifndef BREAKHOOK_DELIVERY_RETRY_H
#define BREAKHOOK_DELIVERY_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

#define RETRY_MAX_STEPS 32
#define RETRY_JITTER 0.2
#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

typedef struct retry_policy {
    int64_t schedule_ms[RETRY_MAX_STEPS];
    size_t n;
} retry_policy_t;

/* SPEC §7.3: 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 12h, 24h, 24h. */
void retry_policy_default(retry_policy_t *p);

/* The delay before the attempt that follows failure number `failures` (1 = the first
 * attempt failed), or -1 when the schedule is exhausted. retry_after_s < 0: none.
 * r gives the jitter. */
int64_t retry_next_delay_ms(const retry_policy_t *p, int failures, int64_t retry_after_s,
                            bh_rand_t *r);

#endif
