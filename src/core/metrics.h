/*
 * metrics.h: counters, gauges and histograms for the Prometheus text format.
 *
 * The hot path only increments: a counter is one relaxed atomic add, an
 * observation in a histogram a short search over its bounds and two relaxed
 * atomic adds. No lock, no allocation, callable from any thread. A scrape reads
 * the same atomics; it may see one observation in a bucket but not yet in the sum,
 * which Prometheus tolerates (every series stays monotonic).
 *
 * There is no global registry: each module owns its metrics and writes its own
 * families with the metrics_write_* helpers below when serve's /metrics handler
 * asks it to (see cli/serve.c). A family is written by one module, in one piece, as
 * the text format requires.
 */
#ifndef BREAKHOOK_CORE_METRICS_H
#define BREAKHOOK_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct metrics_counter {
    _Atomic uint64_t v;
} metrics_counter_t;

static inline void metrics_counter_add(metrics_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline uint64_t metrics_counter_get(const metrics_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

#define METRICS_MAX_BUCKETS 32

/* A histogram of integer observations (nanoseconds for durations, plain numbers for
 * sizes). bounds are the buckets' inclusive upper bounds in the same unit, ascending;
 * an exposed value is an observed one divided by unit (1e9: nanoseconds → seconds;
 * dividing keeps bounds such as 60 s exact where multiplying by 1e-9 does not). The
 * +Inf bucket is implicit. Initialise with metrics_hist_init; zeroed memory is a
 * histogram with no buckets. */
typedef struct metrics_hist {
    const uint64_t *bounds;
    size_t n_bounds;
    double unit;
    _Atomic uint64_t counts[METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
    _Atomic uint64_t sum;
} metrics_hist_t;

/* bounds must outlive h (a static table); at most METRICS_MAX_BUCKETS of them. */
void metrics_hist_init(metrics_hist_t *h, const uint64_t *bounds, size_t n_bounds, double unit);
void metrics_hist_observe(metrics_hist_t *h, uint64_t v);
/* The number of observations so far. */
uint64_t metrics_hist_count(const metrics_hist_t *h);

/* Bucket tables shared by several modules, in nanoseconds. */
extern const uint64_t metrics_buckets_request_ns[];   /* 0.5 ms … 10 s */
extern const size_t metrics_buckets_request_n;

/* Monotonic nanoseconds, for timing an operation. */
uint64_t metrics_now_ns(void);
/* Wall-clock microseconds since the epoch, for latencies between threads or
 * processes (a commit's time and the answer's). */
int64_t metrics_wall_us(void);

/* ---- the text format ----------------------------------------------------- *
 * Each writer appends to out and returns 0 or BH_ENOMEM when out is full (the
 * scrape then fails as a whole rather than answering a truncated family).
 * labels is a preformatted `a="x",b="y"` list (values escaped with
 * metrics_label_value) or NULL. */

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
int metrics_write_family(buf_t *out, const char *name, const char *type, const char *help);
int metrics_write_u64(buf_t *out, const char *name, const char *labels, uint64_t v);
int metrics_write_double(buf_t *out, const char *name, const char *labels, double v);
/* "# HELP", "# TYPE" and the one unlabelled sample of a family. */
int metrics_write_single(buf_t *out, const char *name, const char *type, const char *help,
                         uint64_t v);
/* The _bucket lines (cumulative, le="…"), _sum and _count of h. */
int metrics_write_hist(buf_t *out, const char *name, const char *labels, const metrics_hist_t *h);
/* Appends `key="value"` with value escaped as the text format wants (\\, \", \n),
 * preceded by a comma unless b is empty. */
int metrics_label(buf_t *b, const char *key, const char *value);

/* The standard process families (process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_cpu_seconds_total, process_open_fds,
 * process_max_fds, process_start_time_seconds), read from /proc/self at scrape
 * time. Families that cannot be read are left out. */
int metrics_write_process(buf_t *out);

#endif
