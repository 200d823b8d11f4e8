/*
 * breaker.c: the circuit breaker's transitions (breaker.h draws them).
 */
#include "delivery/breaker.h"

void breaker_init(breaker_t *b)
{
    *b = (breaker_t){ .state = BREAKER_CLOSED };
}

bool breaker_admit(breaker_t *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        if (now_ms < b->until_ms)
            return false;
        b->state = BREAKER_HALF_OPEN;
        return true;
    case BREAKER_HALF_OPEN:
        return false;
    }
    return false;
}

static void open_for(breaker_t *b, int64_t pause_ms, int64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->pause_ms = pause_ms;
    b->until_ms = now_ms + pause_ms;
}

breaker_change_t breaker_result(breaker_t *b, const breaker_config_t *c, bool ok, int64_t now_ms)
{
    if (ok) {
        bool was_open = b->state != BREAKER_CLOSED;
        breaker_init(b);
        return was_open ? BREAKER_CLOSED_AGAIN : BREAKER_UNCHANGED;
    }
    b->failures++;
    switch (b->state) {
    case BREAKER_CLOSED:
        if (b->failures < c->threshold)
            return BREAKER_UNCHANGED;
        open_for(b, c->pause_ms, now_ms);
        return BREAKER_OPENED;
    case BREAKER_HALF_OPEN: {
        int64_t pause = b->pause_ms ? b->pause_ms * 2 : c->pause_ms;
        open_for(b, pause > c->pause_max_ms ? c->pause_max_ms : pause, now_ms);
        return BREAKER_OPENED;
    }
    case BREAKER_OPEN:
        /* An attempt started before it opened: the pause already runs. */
        return BREAKER_UNCHANGED;
    }
    return BREAKER_UNCHANGED;
}

void breaker_abandon(breaker_t *b, int64_t now_ms)
{
    if (b->state != BREAKER_HALF_OPEN)
        return;
    b->state = BREAKER_OPEN;
    b->until_ms = now_ms;
}

const char *breaker_state_name(breaker_state_t s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "?";
}
