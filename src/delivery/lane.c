/*
 * lane.c: a record's delivery lane (lane.h draws the states).
 */
#include "delivery/lane.h"

#include <stdlib.h>

void event_free(event_t *ev)
{
    if (!ev)
        return;
    free(ev->body);
    free(ev);
}

void lane_init(lane_t *l, int64_t record_id)
{
    *l = (lane_t){ .state = LANE_IDLE, .record_id = record_id };
}

void lane_restore(lane_t *l, int failures, int64_t next_at_ms)
{
    if (l->state != LANE_IDLE)
        return;
    l->failures = failures;
    l->next_at_ms = next_at_ms;
}

static void push_back(lane_t *l, event_t *ev)
{
    ev->next = NULL;
    if (l->waiting_tail)
        l->waiting_tail->next = ev;
    else
        l->waiting = ev;
    l->waiting_tail = ev;
    l->n_waiting++;
}

static void push_front(lane_t *l, event_t *ev)
{
    ev->next = l->waiting;
    l->waiting = ev;
    if (!l->waiting_tail)
        l->waiting_tail = ev;
    l->n_waiting++;
}

static event_t *pop_front(lane_t *l)
{
    event_t *ev = l->waiting;
    if (!ev)
        return NULL;
    l->waiting = ev->next;
    if (!l->waiting)
        l->waiting_tail = NULL;
    ev->next = NULL;
    l->n_waiting--;
    return ev;
}

static lane_step_t step(lane_action_t action, unsigned released)
{
    return (lane_step_t){ .action = action, .released = released };
}

lane_step_t lane_add(lane_t *l, event_t *ev, bool coalesce, int64_t now_ms)
{
    if (l->waiting_tail && l->waiting_tail->version >= ev->version) {
        event_free(ev);
        return step(LANE_KEEP, 0);
    }
    unsigned released = 0;
    if (coalesce && l->waiting) {
        event_free(pop_front(l));
        released = 1;
    }
    push_back(l, ev);
    if (l->state != LANE_IDLE)
        return step(LANE_KEEP, released);
    if (now_ms < l->next_at_ms) {
        l->state = LANE_DELAYED;
        return step(LANE_DELAY, released);
    }
    l->state = LANE_READY;
    return step(LANE_SCHEDULE, released);
}

event_t *lane_start(lane_t *l, int64_t now_ms)
{
    if (l->state != LANE_READY || !l->waiting || now_ms < l->next_at_ms)
        return NULL;
    l->inflight = pop_front(l);
    l->state = LANE_INFLIGHT;
    return l->inflight;
}

/* The event in flight comes back to the front, unless coalescing and a newer state
 * of the record already waits (then it is dropped: the newer one is owed instead). */
static unsigned take_back(lane_t *l, bool coalesce)
{
    event_t *ev = l->inflight;
    l->inflight = NULL;
    if (!ev)
        return 0;
    if (coalesce && l->waiting) {
        event_free(ev);
        return 1;
    }
    push_front(l, ev);
    return 0;
}

lane_step_t lane_start_failed(lane_t *l, int64_t now_ms, int64_t pause_ms)
{
    if (l->state != LANE_INFLIGHT)
        return step(LANE_KEEP, 0);
    take_back(l, false);
    l->next_at_ms = now_ms + pause_ms;
    l->state = LANE_DELAYED;
    return step(LANE_DELAY, 0);
}

lane_step_t lane_delivered(lane_t *l)
{
    if (l->state != LANE_INFLIGHT)
        return step(LANE_KEEP, 0);
    event_free(l->inflight);
    l->inflight = NULL;
    l->failures = 0;
    l->next_at_ms = 0;
    if (l->waiting) {
        l->state = LANE_READY;
        return step(LANE_SCHEDULE, 1);
    }
    l->state = LANE_IDLE;
    return step(LANE_RELEASE, 1);
}

lane_step_t lane_failed(lane_t *l, bool coalesce, int64_t next_at_ms)
{
    if (l->state != LANE_INFLIGHT)
        return step(LANE_KEEP, 0);
    l->failures++;
    unsigned released = take_back(l, coalesce);
    l->next_at_ms = next_at_ms;
    l->state = LANE_DELAYED;
    return step(LANE_DELAY, released);
}

lane_step_t lane_unsent(lane_t *l, bool coalesce)
{
    if (l->state != LANE_INFLIGHT)
        return step(LANE_KEEP, 0);
    unsigned released = take_back(l, coalesce);
    l->state = LANE_HELD;
    return step(LANE_UNLIST, released);
}

lane_step_t lane_due(lane_t *l, int64_t now_ms)
{
    if (l->state != LANE_DELAYED || now_ms < l->next_at_ms)
        return step(LANE_KEEP, 0);
    l->state = LANE_READY;
    return step(LANE_SCHEDULE, 0);
}

uint64_t lane_lowest(const lane_t *l)
{
    if (l->inflight)
        return l->inflight->version;
    return l->waiting ? l->waiting->version : 0;
}

void lane_clear(lane_t *l)
{
    for (event_t *ev; (ev = pop_front(l)) != NULL;)
        event_free(ev);
}

const char *lane_state_name(lane_state_t s)
{
    switch (s) {
    case LANE_IDLE:
        return "idle";
    case LANE_READY:
        return "ready";
    case LANE_DELAYED:
        return "delayed";
    case LANE_INFLIGHT:
        return "inflight";
    case LANE_HELD:
        return "held";
    }
    return "?";
}
