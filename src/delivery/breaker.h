/*
 * breaker.h: the circuit breaker in front of a destination (SPEC §7.3).
 *
 *                 failure number `threshold` in a row
 *      CLOSED ───────────────────────────────────────────▶ OPEN (until now + pause)
 *        ▲                                                  │ admit at or after `until`
 *        │ success                                          ▼
 *        └──────────────────────────────────────────── HALF_OPEN (one probe in flight)
 *                                                           │ probe failed: OPEN again,
 *                                                           │ pause doubled (max pause_max)
 *                                                           │ probe abandoned (never
 *                                                           ▼ answered): OPEN, due now
 *
 * CLOSED admits every attempt (the in-flight cap is the caller's); OPEN admits none
 * until its pause ends; then the first admit is the probe (HALF_OPEN), which alone
 * decides: a success closes the breaker and resets the pause, a failure reopens it for
 * twice as long. Results of attempts started before the breaker opened count as
 * failures but do not move an OPEN breaker. 410 Gone counts as a success here: the
 * destination answered (the webhook is disabled for it instead).
 *
 * Pure: no clock of its own, no I/O, no allocation; callers pass the time. Not
 * thread-safe (the engine's loop owns its breakers).
 */
#ifndef BREAKHOOK_DELIVERY_BREAKER_H
#define BREAKHOOK_DELIVERY_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum breaker_state {
    BREAKER_CLOSED,
    BREAKER_OPEN,
    BREAKER_HALF_OPEN,
} breaker_state_t;

typedef struct breaker_config {
    int threshold;         /* consecutive failures that open it (>= 1) */
    int64_t pause_ms;      /* the first pause */
    int64_t pause_max_ms;  /* the longest pause */
} breaker_config_t;

typedef struct breaker {
    breaker_state_t state;
    int failures;          /* consecutive failures */
    int64_t until_ms;      /* OPEN: no attempt before this */
    int64_t pause_ms;      /* the pause the next opening takes (0: config's first) */
} breaker_t;

/* What a result did to the breaker, for the caller's log line. */
typedef enum breaker_change {
    BREAKER_UNCHANGED,
    BREAKER_OPENED,        /* it opened (from CLOSED or a failed probe) */
    BREAKER_CLOSED_AGAIN,  /* a probe succeeded: it closed */
} breaker_change_t;

/* A closed breaker. */
void breaker_init(breaker_t *b);

/* May an attempt start at now_ms? CLOSED: yes. OPEN: no before until_ms; at or after
 * it, yes, once: that attempt is the probe and the breaker becomes HALF_OPEN.
 * HALF_OPEN: no (the probe decides). */
bool breaker_admit(breaker_t *b, int64_t now_ms);

/* The result of an attempt the breaker admitted: ok (an answer that counts as one) or
 * not, at now_ms. */
breaker_change_t breaker_result(breaker_t *b, const breaker_config_t *c, bool ok, int64_t now_ms);

/* The probe will bring no result (it could not start, or its webhook went away while
 * it was in flight): HALF_OPEN goes back to OPEN, due at now_ms, so that the next
 * admit probes again. No-op in the other states. */
void breaker_abandon(breaker_t *b, int64_t now_ms);

/* "closed", "open", "half_open". */
const char *breaker_state_name(breaker_state_t s);

#endif
