/*
 * lane.h: one record's delivery lane of one webhook, and its states.
 *
 * A webhook delivers each record's changes in order, one at a time: the record's lane
 * holds the event in flight and those waiting behind it (with coalescing at most one:
 * a newer change replaces the waiting one). Lanes of different records run in
 * parallel. The transitions (state, event -> state, what the owner does):
 *
 *   IDLE      add            -> READY    schedule   (DELAYED, delay: while a
 *                                                    restored retry time is ahead)
 *   READY     start          -> INFLIGHT unlist     (the event goes out)
 *   INFLIGHT  delivered      -> READY    schedule   when more wait,
 *                            -> IDLE     release    when none does
 *   INFLIGHT  failed         -> DELAYED  delay      (until the retry time)
 *   INFLIGHT  start_failed   -> DELAYED  delay      (a short pause, no failure counted)
 *   INFLIGHT  unsent         -> HELD     unlist     (stopping, or webhook disabled)
 *   DELAYED   due            -> READY    schedule   (once now >= next_at)
 *   any       add            -> same     keep       (except IDLE, above)
 *
 * The states:
 *
 *   IDLE       nothing waiting, nothing in flight: the owner frees the lane (a new lane
 *              may start IDLE with a retry count and time restored after a restart).
 *   READY      events waiting, the oldest may be sent now: in the owner's ready list.
 *   DELAYED    events waiting, not before next_at_ms (a retry's delay): in the owner's
 *              delayed list.
 *   INFLIGHT   one event in flight; newer ones may wait behind it.
 *   HELD       events waiting that will not be sent by this engine: it is stopping, or
 *              the webhook is being disabled. They stay pending (the watermark stays
 *              below them) and are sent again after a restart.
 *
 * Each transition returns the action the owner takes on its lists (lane_action_t);
 * the lane never touches them. start_failed is an attempt that could not even be
 * sent (no memory, signing failed): the event goes back to the front and the lane
 * waits a short pause without counting a failure, instead of being lost from every
 * list (which stalled the record and the webhook's watermark until a restart).
 *
 * Pure: no clock of its own, no I/O; frees events it drops. Not thread-safe.
 */
#ifndef BREAKHOOK_DELIVERY_LANE_H
#define BREAKHOOK_DELIVERY_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One change to deliver. */
typedef struct event {
    uint64_t version;
    store_change_type_t type;
    char *body;                /* the delivery body: {"changeType":…,"data":…} (malloc'd) */
    size_t len;
    int64_t committed_us;      /* when its version committed (wall clock, µs); 0: unknown */
    struct event *next;        /* the lane's queue */
} event_t;

/* Frees ev and its body. NULL is a no-op. */
void event_free(event_t *ev);

typedef enum lane_state {
    LANE_IDLE,
    LANE_READY,
    LANE_DELAYED,
    LANE_INFLIGHT,
    LANE_HELD,
} lane_state_t;

/* What the owner does with the lane after a transition. */
typedef enum lane_action {
    LANE_KEEP,      /* nothing: its list membership does not change */
    LANE_SCHEDULE,  /* into the ready list (out of the delayed list) */
    LANE_DELAY,     /* into the delayed list, until next_at_ms */
    LANE_RELEASE,   /* IDLE: out of every list, freed */
    LANE_UNLIST,    /* out of the ready and delayed lists (INFLIGHT, HELD) */
} lane_action_t;

typedef struct lane_step {
    lane_action_t action;
    /* Events the lane let go (replaced by a newer one, or delivered): its lowest
     * pending version may have risen. */
    unsigned released;
} lane_step_t;

typedef struct lane {
    lane_state_t state;
    int64_t record_id;
    event_t *inflight;         /* INFLIGHT: the event being sent */
    event_t *waiting;          /* oldest first */
    event_t *waiting_tail;
    size_t n_waiting;
    int failures;              /* consecutive failed attempts */
    int64_t next_at_ms;        /* no attempt before this (0: none) */
    /* The owner's links; lane.c never reads or writes them. */
    void *owner;
    struct lane *next_ready;
    size_t delayed_ix;
} lane_t;

/* A new IDLE lane of record_id. */
void lane_init(lane_t *l, int64_t record_id);
/* An IDLE lane resumes a retry count and time kept across a restart. */
void lane_restore(lane_t *l, int failures, int64_t next_at_ms);

/* A newer change of the record. An event not newer than the last one queued is
 * freed (read twice). With coalesce, it replaces the waiting one. IDLE becomes READY,
 * or DELAYED while a restored retry time is ahead; the other states keep theirs. */
lane_step_t lane_add(lane_t *l, event_t *ev, bool coalesce, int64_t now_ms);
/* READY (and its time reached) -> INFLIGHT: returns the event to send, still owned by
 * the lane (l->inflight). NULL in any other state, which does not change. */
event_t *lane_start(lane_t *l, int64_t now_ms);
/* INFLIGHT -> DELAYED until now_ms + pause_ms: the event was not sent; it is first in
 * line again and no failure is counted. */
lane_step_t lane_start_failed(lane_t *l, int64_t now_ms, int64_t pause_ms);
/* INFLIGHT, acknowledged: the event is freed, the failure count reset. READY when more
 * wait, else IDLE (release). */
lane_step_t lane_delivered(lane_t *l);
/* INFLIGHT, failed, to be tried again at next_at_ms: one more failure; the event goes
 * back to the front unless coalescing and a newer one waits (then the newer one is
 * what the retry sends). -> DELAYED. */
lane_step_t lane_failed(lane_t *l, bool coalesce, int64_t next_at_ms);
/* INFLIGHT, not delivered and not to be retried by this engine (stopping, or the
 * webhook is disabled): the event goes back as in lane_failed, -> HELD. */
lane_step_t lane_unsent(lane_t *l, bool coalesce);
/* DELAYED and now_ms >= next_at_ms -> READY; otherwise nothing. */
lane_step_t lane_due(lane_t *l, int64_t now_ms);

/* The lowest version the lane still owes (in flight, else the oldest waiting); 0 when
 * none. */
uint64_t lane_lowest(const lane_t *l);
/* Frees the waiting events (not the one in flight, which its attempt owns). */
void lane_clear(lane_t *l);

/* "idle", "ready", "delayed", "inflight", "held". */
const char *lane_state_name(lane_state_t s);

#endif
