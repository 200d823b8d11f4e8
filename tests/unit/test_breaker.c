/*
 * test_breaker.c: every transition of the circuit breaker (delivery/breaker.h), as a
 * table of (state, event, time) -> (state, change, pause, until), plus a run through
 * a destination's outage and recovery. Threshold 3, first pause 1000 ms, longest 4000.
 * No clock, no sockets: the time is a number in each row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "delivery/breaker.h"

static const breaker_config_t cfg = { .threshold = 3, .pause_ms = 1000, .pause_max_ms = 4000 };

typedef enum from {
    F_CLOSED,
    F_CLOSED2,    /* closed, 2 failures (one short of opening) */
    F_OPEN,       /* opened at 100: until 1100, pause 1000 */
    F_HALF_OPEN,  /* opened at 100, probe admitted at 1100 */
    F_HALF_OPEN4, /* a probe after a pause of 4000 (the longest) */
} from_t;

typedef enum ev_kind { E_ADMIT, E_OK, E_FAIL, E_ABANDON } ev_kind_t;

typedef struct row {
    const char *name;
    from_t from;
    ev_kind_t ev;
    int64_t now;
    breaker_state_t to;
    bool admitted;           /* E_ADMIT */
    breaker_change_t change; /* E_OK, E_FAIL */
    int failures;
    int64_t until, pause;
} row_t;

static void setup_state(breaker_t *b, from_t from)
{
    breaker_init(b);
    switch (from) {
    case F_CLOSED:
        return;
    case F_CLOSED2:
        breaker_result(b, &cfg, false, 50);
        breaker_result(b, &cfg, false, 60);
        return;
    case F_OPEN:
    case F_HALF_OPEN:
        for (int i = 0; i < 3; i++)
            breaker_result(b, &cfg, false, 100);
        if (from == F_HALF_OPEN)
            assert_true(breaker_admit(b, 1100));
        return;
    case F_HALF_OPEN4:
        for (int i = 0; i < 3; i++)
            breaker_result(b, &cfg, false, 0);
        int64_t t = 0;
        for (int i = 0; i < 3; i++) { /* pauses 1000 -> 2000 -> 4000 */
            t = b->until_ms;
            assert_true(breaker_admit(b, t));
            breaker_result(b, &cfg, false, t);
        }
        assert_int_equal(b->pause_ms, 4000);
        assert_true(breaker_admit(b, b->until_ms));
        return;
    }
}

static const row_t rows[] = {
    { "closed admits", F_CLOSED, E_ADMIT, 0, BREAKER_CLOSED, true, BREAKER_UNCHANGED, 0, 0, 0 },
    { "closed + failure below threshold", F_CLOSED, E_FAIL, 10, BREAKER_CLOSED, false,
      BREAKER_UNCHANGED, 1, 0, 0 },
    { "closed + the threshold's failure -> open", F_CLOSED2, E_FAIL, 70, BREAKER_OPEN, false,
      BREAKER_OPENED, 3, 1070, 1000 },
    { "closed + success resets the count", F_CLOSED2, E_OK, 70, BREAKER_CLOSED, false,
      BREAKER_UNCHANGED, 0, 0, 0 },
    { "open refuses before its time", F_OPEN, E_ADMIT, 1099, BREAKER_OPEN, false,
      BREAKER_UNCHANGED, 3, 1100, 1000 },
    { "open admits one probe at its time -> half-open", F_OPEN, E_ADMIT, 1100,
      BREAKER_HALF_OPEN, true, BREAKER_UNCHANGED, 3, 1100, 1000 },
    { "open + a late failure (started before): no change", F_OPEN, E_FAIL, 500, BREAKER_OPEN,
      false, BREAKER_UNCHANGED, 4, 1100, 1000 },
    { "open + a late success: closed", F_OPEN, E_OK, 500, BREAKER_CLOSED, false,
      BREAKER_CLOSED_AGAIN, 0, 0, 0 },
    { "half-open refuses a second attempt", F_HALF_OPEN, E_ADMIT, 1200, BREAKER_HALF_OPEN,
      false, BREAKER_UNCHANGED, 3, 1100, 1000 },
    { "half-open + the probe succeeds -> closed", F_HALF_OPEN, E_OK, 1300, BREAKER_CLOSED, false,
      BREAKER_CLOSED_AGAIN, 0, 0, 0 },
    { "half-open + the probe fails -> open, pause doubled", F_HALF_OPEN, E_FAIL, 1300,
      BREAKER_OPEN, false, BREAKER_OPENED, 4, 3300, 2000 },
    { "half-open + a failed probe at the longest pause: capped", F_HALF_OPEN4, E_FAIL, 20000,
      BREAKER_OPEN, false, BREAKER_OPENED, 7, 24000, 4000 },
    { "half-open + probe abandoned -> open, due now", F_HALF_OPEN, E_ABANDON, 1250,
      BREAKER_OPEN, false, BREAKER_UNCHANGED, 3, 1250, 1000 },
    { "closed + abandon: nothing", F_CLOSED2, E_ABANDON, 80, BREAKER_CLOSED, false,
      BREAKER_UNCHANGED, 2, 0, 0 },
    { "open + abandon: nothing", F_OPEN, E_ABANDON, 300, BREAKER_OPEN, false,
      BREAKER_UNCHANGED, 3, 1100, 1000 },
};

static void test_transitions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *r = &rows[i];
        breaker_t b;
        setup_state(&b, r->from);
        bool admitted = false;
        breaker_change_t change = BREAKER_UNCHANGED;
        switch (r->ev) {
        case E_ADMIT:
            admitted = breaker_admit(&b, r->now);
            break;
        case E_OK:
        case E_FAIL:
            change = breaker_result(&b, &cfg, r->ev == E_OK, r->now);
            break;
        case E_ABANDON:
            breaker_abandon(&b, r->now);
            break;
        }
        if (b.state != r->to)
            fail_msg("%s: state %s, want %s", r->name, breaker_state_name(b.state),
                     breaker_state_name(r->to));
        if (admitted != r->admitted || change != r->change)
            fail_msg("%s: admitted %d change %d, want %d and %d", r->name, admitted, change,
                     r->admitted, r->change);
        if (b.failures != r->failures)
            fail_msg("%s: failures %d, want %d", r->name, b.failures, r->failures);
        if (b.state != BREAKER_CLOSED && (b.until_ms != r->until || b.pause_ms != r->pause))
            fail_msg("%s: until %lld pause %lld, want %lld and %lld", r->name,
                     (long long)b.until_ms, (long long)b.pause_ms, (long long)r->until,
                     (long long)r->pause);
    }
}

/* A destination down for a while, then back: attempts admitted only when due, one
 * probe at a time, pauses 1, 2, 4, 4 s, and after the first good answer everything
 * flows again with the pause back at its first value. */
static void test_outage_and_recovery(void **state)
{
    (void)state;
    breaker_t b;
    breaker_init(&b);
    int64_t t = 0;
    for (int i = 0; i < 3; i++) {
        assert_true(breaker_admit(&b, t));
        breaker_result(&b, &cfg, false, t);
    }
    const int64_t pauses[] = { 1000, 2000, 4000, 4000 };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(b.pause_ms, pauses[i]);
        assert_false(breaker_admit(&b, b.until_ms - 1));
        t = b.until_ms;
        assert_true(breaker_admit(&b, t));
        assert_false(breaker_admit(&b, t)); /* one probe at a time */
        if (i < 3)
            assert_int_equal(breaker_result(&b, &cfg, false, t), BREAKER_OPENED);
    }
    assert_int_equal(breaker_result(&b, &cfg, true, t), BREAKER_CLOSED_AGAIN);
    for (int i = 0; i < 20; i++)
        assert_true(breaker_admit(&b, t));
    for (int i = 0; i < 3; i++)
        breaker_result(&b, &cfg, false, t);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(b.pause_ms, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_outage_and_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
