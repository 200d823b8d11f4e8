#include "delivery/retry.h"

void retry_policy_default(retry_policy_t *p)
{
    static const int64_t s = 1000, m = 60 * s, h = 60 * m;
    static const int64_t def[] = { 5 * s, 30 * s, 2 * m, 10 * m, 30 * m, 1 * h,
                                   2 * h, 4 * h, 8 * h, 12 * h, 24 * h, 24 * h };
    p->n = sizeof(def) / sizeof(def[0]);
    for (size_t i = 0; i < p->n; i++)
        p->schedule_ms[i] = def[i];
}

int64_t retry_next_delay_ms(const retry_policy_t *p, int failures, int64_t retry_after_s,
                            bh_rand_t *r)
{
    if (failures < 1 || (size_t)failures > p->n)
        return -1;
    int64_t base = p->schedule_ms[failures - 1];
    double f = 1.0 + RETRY_JITTER * (2.0 * rand_unit(r) - 1.0);
    int64_t delay = (int64_t)((double)base * f);
    if (retry_after_s >= 0) {
        int64_t ra = retry_after_s > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS
                                                                : retry_after_s * 1000;
        if (ra > delay)
            delay = ra;
    }
    return delay < 0 ? 0 : delay;
}
