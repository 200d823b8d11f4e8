/*
 * test_lane.c: every transition of a delivery lane (delivery/lane.h), as a table of
 * (state, event, time) -> (state, action, what is in flight and waiting). No store,
 * no sockets, no sleeping: the time is a number in each row.
 *
 * Each row starts from a lane put into its `from` state by a short, fixed history
 * (setup_state), applies one event and checks the whole outcome: the new state, the
 * action the owner must take on its lists, how many events the lane let go, which
 * version is in flight and which versions wait, in order, and the lane's failure
 * count and next attempt time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/lane.h"

static event_t *ev_new(uint64_t version)
{
    event_t *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    ev->version = version;
    ev->body = strdup("{}");
    assert_non_null(ev->body);
    ev->len = 2;
    return ev;
}

/* Histories that put a fresh lane (record 7, at t = 1000) into a state, with version
 * 10 in flight or waiting. DELAYED waits until 5000; RESTORED is an IDLE lane that
 * resumed a retry (2 failures, due at 5000) after a restart. */
typedef enum from {
    F_IDLE,
    F_RESTORED,
    F_READY,     /* 10 waiting */
    F_INFLIGHT,  /* 10 in flight */
    F_INFLIGHT2, /* 10 in flight, 11 waiting */
    F_DELAYED,   /* 10 waiting, due at 5000, 1 failure */
    F_HELD,      /* 10 waiting, held */
} from_t;

typedef enum ev_kind {
    E_ADD,          /* version arg */
    E_START,
    E_START_FAILED, /* pause 1000 */
    E_DELIVERED,
    E_FAILED,       /* retry at 9000 */
    E_UNSENT,
    E_DUE,
} ev_kind_t;

typedef struct row {
    const char *name;
    from_t from;
    ev_kind_t ev;
    uint64_t arg;       /* E_ADD: the version */
    int64_t now;
    bool coalesce;
    lane_state_t to;
    lane_action_t action;
    unsigned released;
    uint64_t inflight;  /* 0: none */
    uint64_t waiting[3]; /* in order, 0-terminated */
    int failures;
    int64_t next_at;
    bool started;       /* E_START returned an event */
} row_t;

static void setup_state(lane_t *l, from_t from)
{
    lane_init(l, 7);
    switch (from) {
    case F_IDLE:
        return;
    case F_RESTORED:
        lane_restore(l, 2, 5000);
        return;
    case F_READY:
        lane_add(l, ev_new(10), true, 1000);
        return;
    case F_INFLIGHT:
        lane_add(l, ev_new(10), true, 1000);
        assert_non_null(lane_start(l, 1000));
        return;
    case F_INFLIGHT2:
        lane_add(l, ev_new(10), true, 1000);
        assert_non_null(lane_start(l, 1000));
        lane_add(l, ev_new(11), true, 1000);
        return;
    case F_DELAYED:
        lane_add(l, ev_new(10), true, 1000);
        assert_non_null(lane_start(l, 1000));
        lane_failed(l, true, 5000);
        return;
    case F_HELD:
        lane_add(l, ev_new(10), true, 1000);
        assert_non_null(lane_start(l, 1000));
        lane_unsent(l, true);
        return;
    }
}

static const row_t rows[] = {
    /* add */
    { "idle + add -> ready", F_IDLE, E_ADD, 10, 1000, true, LANE_READY, LANE_SCHEDULE, 0, 0,
      { 10 }, 0, 0, false },
    { "restored + add before its retry time -> delayed", F_RESTORED, E_ADD, 10, 1000, true,
      LANE_DELAYED, LANE_DELAY, 0, 0, { 10 }, 2, 5000, false },
    { "restored + add at its retry time -> ready", F_RESTORED, E_ADD, 10, 5000, true,
      LANE_READY, LANE_SCHEDULE, 0, 0, { 10 }, 2, 5000, false },
    { "ready + add, coalescing: the newer replaces the waiting", F_READY, E_ADD, 11, 1000,
      true, LANE_READY, LANE_KEEP, 1, 0, { 11 }, 0, 0, false },
    { "ready + add, no coalescing: queued behind", F_READY, E_ADD, 11, 1000, false, LANE_READY,
      LANE_KEEP, 0, 0, { 10, 11 }, 0, 0, false },
    { "ready + add of a version already queued: dropped", F_READY, E_ADD, 10, 1000, true,
      LANE_READY, LANE_KEEP, 0, 0, { 10 }, 0, 0, false },
    { "inflight + add: waits behind", F_INFLIGHT, E_ADD, 11, 1000, true, LANE_INFLIGHT,
      LANE_KEEP, 0, 10, { 11 }, 0, 0, false },
    { "delayed + add, coalescing: replaces, still delayed", F_DELAYED, E_ADD, 11, 1000, true,
      LANE_DELAYED, LANE_KEEP, 1, 0, { 11 }, 1, 5000, false },
    { "held + add: still held", F_HELD, E_ADD, 11, 1000, false, LANE_HELD, LANE_KEEP, 0, 0,
      { 10, 11 }, 0, 0, false },
    /* start */
    { "ready + start -> inflight", F_READY, E_START, 0, 1000, true, LANE_INFLIGHT, LANE_KEEP, 0,
      10, { 0 }, 0, 0, true },
    { "delayed + start before its time: refused", F_DELAYED, E_START, 0, 4999, true,
      LANE_DELAYED, LANE_KEEP, 0, 0, { 10 }, 1, 5000, false },
    { "idle + start: nothing to send", F_IDLE, E_START, 0, 1000, true, LANE_IDLE, LANE_KEEP, 0,
      0, { 0 }, 0, 0, false },
    { "inflight + start: one at a time", F_INFLIGHT2, E_START, 0, 1000, true, LANE_INFLIGHT,
      LANE_KEEP, 0, 10, { 11 }, 0, 0, false },
    { "held + start: refused", F_HELD, E_START, 0, 1000, true, LANE_HELD, LANE_KEEP, 0, 0,
      { 10 }, 0, 0, false },
    /* start failed: the stall fix */
    { "inflight + start_failed -> delayed, first in line, no failure", F_INFLIGHT2,
      E_START_FAILED, 0, 2000, true, LANE_DELAYED, LANE_DELAY, 0, 0, { 10, 11 }, 0, 3000,
      false },
    /* results */
    { "inflight + delivered, none waiting -> idle (released)", F_INFLIGHT, E_DELIVERED, 0,
      1000, true, LANE_IDLE, LANE_RELEASE, 1, 0, { 0 }, 0, 0, false },
    { "inflight + delivered, more waiting -> ready", F_INFLIGHT2, E_DELIVERED, 0, 1000, true,
      LANE_READY, LANE_SCHEDULE, 1, 0, { 11 }, 0, 0, false },
    { "inflight + failed -> delayed, the event back in front", F_INFLIGHT, E_FAILED, 0, 1000,
      true, LANE_DELAYED, LANE_DELAY, 0, 0, { 10 }, 1, 9000, false },
    { "inflight + failed, coalescing, newer waiting: the newer is retried", F_INFLIGHT2,
      E_FAILED, 0, 1000, true, LANE_DELAYED, LANE_DELAY, 1, 0, { 11 }, 1, 9000, false },
    { "inflight + failed, no coalescing: both kept, in order", F_INFLIGHT2, E_FAILED, 0, 1000,
      false, LANE_DELAYED, LANE_DELAY, 0, 0, { 10, 11 }, 1, 9000, false },
    { "inflight + unsent -> held, the event kept", F_INFLIGHT, E_UNSENT, 0, 1000, true,
      LANE_HELD, LANE_UNLIST, 0, 0, { 10 }, 0, 0, false },
    { "results outside inflight change nothing", F_READY, E_DELIVERED, 0, 1000, true,
      LANE_READY, LANE_KEEP, 0, 0, { 10 }, 0, 0, false },
    { "failed outside inflight changes nothing", F_DELAYED, E_FAILED, 0, 1000, true,
      LANE_DELAYED, LANE_KEEP, 0, 0, { 10 }, 1, 5000, false },
    /* time */
    { "delayed + due before its time: still delayed", F_DELAYED, E_DUE, 0, 4999, true,
      LANE_DELAYED, LANE_KEEP, 0, 0, { 10 }, 1, 5000, false },
    { "delayed + due at its time -> ready", F_DELAYED, E_DUE, 0, 5000, true, LANE_READY,
      LANE_SCHEDULE, 0, 0, { 10 }, 1, 5000, false },
    { "ready + due: nothing", F_READY, E_DUE, 0, 9999, true, LANE_READY, LANE_KEEP, 0, 0,
      { 10 }, 0, 0, false },
};

static void run_row(const row_t *r)
{
    lane_t l;
    setup_state(&l, r->from);
    lane_step_t st = { LANE_KEEP, 0 };
    bool started = false;
    switch (r->ev) {
    case E_ADD:
        st = lane_add(&l, ev_new(r->arg), r->coalesce, r->now);
        break;
    case E_START:
        started = lane_start(&l, r->now) != NULL;
        break;
    case E_START_FAILED:
        st = lane_start_failed(&l, r->now, 1000);
        break;
    case E_DELIVERED:
        st = lane_delivered(&l);
        break;
    case E_FAILED:
        st = lane_failed(&l, r->coalesce, 9000);
        break;
    case E_UNSENT:
        st = lane_unsent(&l, r->coalesce);
        break;
    case E_DUE:
        st = lane_due(&l, r->now);
        break;
    }
    if (l.state != r->to)
        fail_msg("%s: state %s, want %s", r->name, lane_state_name(l.state),
                 lane_state_name(r->to));
    if (st.action != r->action)
        fail_msg("%s: action %d, want %d", r->name, (int)st.action, (int)r->action);
    if (st.released != r->released)
        fail_msg("%s: released %u, want %u", r->name, st.released, r->released);
    if (started != r->started)
        fail_msg("%s: start %s an event", r->name, started ? "returned" : "did not return");
    uint64_t inflight = l.inflight ? l.inflight->version : 0;
    if (inflight != r->inflight)
        fail_msg("%s: in flight %llu, want %llu", r->name, (unsigned long long)inflight,
                 (unsigned long long)r->inflight);
    size_t k = 0;
    for (const event_t *ev = l.waiting; ev; ev = ev->next, k++)
        if (k >= 3 || ev->version != r->waiting[k])
            fail_msg("%s: waiting[%zu] = %llu, want %llu", r->name, k,
                     (unsigned long long)ev->version,
                     (unsigned long long)(k < 3 ? r->waiting[k] : 0));
    if (k < 3 && r->waiting[k])
        fail_msg("%s: %zu waiting, want more (next %llu)", r->name, k,
                 (unsigned long long)r->waiting[k]);
    assert_int_equal(l.n_waiting, k);
    if (l.failures != r->failures || l.next_at_ms != r->next_at)
        fail_msg("%s: failures %d next_at %lld, want %d and %lld", r->name, l.failures,
                 (long long)l.next_at_ms, r->failures, (long long)r->next_at);
    assert_int_equal(lane_lowest(&l), inflight ? inflight : r->waiting[0]);
    event_free(l.inflight);
    lane_clear(&l);
}

static void test_transitions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i]);
}

/* Every state the header names is reached by some row, and every action appears. */
static void test_table_covers_every_state_and_action(void **state)
{
    (void)state;
    bool to[LANE_HELD + 1] = { false }, act[LANE_UNLIST + 1] = { false };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        to[rows[i].to] = true;
        act[rows[i].action] = true;
    }
    for (int s = LANE_IDLE; s <= LANE_HELD; s++)
        if (!to[s])
            fail_msg("no row ends in %s", lane_state_name((lane_state_t)s));
    for (int a = LANE_KEEP; a <= LANE_UNLIST; a++)
        if (!act[a])
            fail_msg("no row takes action %d", a);
}

/* A record's life with coalescing, as the engine drives it: several changes while
 * one is in flight and a retry, and the order of what goes out. */
static void test_sequence_delivers_newest_in_order(void **state)
{
    (void)state;
    lane_t l;
    lane_init(&l, 1);
    lane_add(&l, ev_new(1), true, 0);
    event_t *ev = lane_start(&l, 0);
    assert_int_equal(ev->version, 1);
    lane_add(&l, ev_new(2), true, 0);
    lane_add(&l, ev_new(3), true, 0);              /* replaces 2 */
    assert_int_equal(lane_failed(&l, true, 100).action, LANE_DELAY); /* 1 dropped: 3 owed */
    assert_null(lane_start(&l, 99));
    assert_int_equal(lane_due(&l, 100).action, LANE_SCHEDULE);
    ev = lane_start(&l, 100);
    assert_int_equal(ev->version, 3);
    assert_int_equal(lane_delivered(&l).action, LANE_RELEASE);
    assert_int_equal(l.failures, 0);
    assert_int_equal(lane_lowest(&l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_table_covers_every_state_and_action),
        cmocka_unit_test(test_sequence_delivers_newest_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
