/*
 * metrics.c: the server's request counters and duration histograms (http_int.h).
 *
 * The counters are keyed by (route, method, status) in a fixed open-addressing
 * table: a handful of routes times the statuses they actually answer is a few
 * hundred keys at most, and a fixed table needs no lock and no allocation on the
 * request path. Should it ever fill, further new combinations are counted under
 * status "other" of their route instead of being dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

#define OTHER_STATUS 0 /* the key's status when the table is full */

static const char *method_names[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                      "OPTIONS", "OTHER" };

static unsigned method_index(http_method_t m)
{
    unsigned i = m ? (unsigned)__builtin_ctz((unsigned)m) : 7;
    return i < 8 ? i : 7;
}

/* route1 = route index + 1 (0: no route) in bits 24..39, method in 16..23, status in 0..15; the
 * +1 on the whole key keeps 0 free for "empty". */
static uint64_t stats_key(size_t route1, unsigned method, int status)
{
    return (((uint64_t)route1 << 24) | ((uint64_t)method << 16) | (uint64_t)(status & 0xffff)) +
           1;
}

int http__stats_init(http__stats_t *st, const http_router_t *r)
{
    memset(st, 0, sizeof(*st));
    st->n_routes = http__router_size(r);
    st->duration = calloc(st->n_routes + 1, sizeof(*st->duration));
    if (!st->duration)
        return BH_ENOMEM;
    for (size_t i = 0; i <= st->n_routes; i++)
        metrics_hist_init(&st->duration[i], metrics_buckets_request_ns, metrics_buckets_request_n,
                          1e9);
    return 0;
}

void http__stats_deinit(http__stats_t *st)
{
    free(st->duration);
    st->duration = NULL;
}

/* Finds key's slot, claiming an empty one for it; NULL when the table is full. Only
 * the loop thread claims slots, so a plain probe-then-store is enough. */
static _Atomic uint64_t *slot_for(http__stats_t *st, uint64_t key)
{
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 54) % HTTP__STATS_SLOTS;
    for (size_t n = 0; n < HTTP__STATS_SLOTS; n++, h = (h + 1) % HTTP__STATS_SLOTS) {
        uint64_t k = atomic_load_explicit(&st->slots[h].key, memory_order_relaxed);
        if (k == key)
            return &st->slots[h].count;
        if (k == 0) {
            atomic_store_explicit(&st->slots[h].count, 0, memory_order_relaxed);
            atomic_store_explicit(&st->slots[h].key, key, memory_order_release);
            return &st->slots[h].count;
        }
    }
    return NULL;
}

void http__stats_count(http__stats_t *st, const http_router_t *r, const http_route_t *route,
                       http_method_t method, int status, uint64_t ns)
{
    if (!st->duration)
        return;
    size_t ix = route ? http__router_index(r, route) : st->n_routes;
    if (ix > st->n_routes)
        ix = st->n_routes;
    unsigned m = method_index(method);
    size_t route1 = ix < st->n_routes ? ix + 1 : 0;
    _Atomic uint64_t *c = slot_for(st, stats_key(route1, m, status));
    if (!c)
        c = slot_for(st, stats_key(route1, m, OTHER_STATUS));
    if (c)
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    metrics_hist_observe(&st->duration[ix], ns);
}

static const char *route_label(const http__stats_t *st, const http_router_t *r, size_t ix)
{
    const char *p = ix < st->n_routes ? http__router_pattern(r, ix) : NULL;
    return p ? p : "unmatched";
}

int http__stats_write(const http__stats_t *st, const http_router_t *r, buf_t *out)
{
    if (!st->duration)
        return 0;
    char mem[512];
    buf_t labels = { mem, 0, sizeof(mem), sizeof(mem) - 1 };
    int rc = metrics_write_family(out, "breakhook_http_requests_total", "counter",
                                  "HTTP requests answered, by route pattern, method and status.");
    for (size_t i = 0; i < HTTP__STATS_SLOTS && rc == 0; i++) {
        uint64_t k = atomic_load_explicit(&st->slots[i].key, memory_order_acquire);
        if (k == 0)
            continue;
        k--;
        size_t route1 = (size_t)(k >> 24);
        unsigned m = (unsigned)(k >> 16) & 0xff;
        int status = (int)(k & 0xffff);
        char code[8];
        if (status == OTHER_STATUS)
            memcpy(code, "other", 6);
        else
            snprintf(code, sizeof(code), "%d", status);
        buf_reset(&labels);
        rc = metrics_label(&labels, "route",
                           route_label(st, r, route1 ? route1 - 1 : st->n_routes));
        rc = rc ? rc : metrics_label(&labels, "method", method_names[m < 8 ? m : 7]);
        rc = rc ? rc : metrics_label(&labels, "status", code);
        rc = rc ? rc
                : metrics_write_u64(out, "breakhook_http_requests_total", buf_cstr(&labels),
                                    atomic_load_explicit(&st->slots[i].count,
                                                         memory_order_relaxed));
    }
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_http_request_duration_seconds", "histogram",
                                   "Time from the first byte of a request to its answer "
                                   "being queued, by route pattern.");
    for (size_t i = 0; i <= st->n_routes && rc == 0; i++) {
        if (metrics_hist_count(&st->duration[i]) == 0)
            continue; /* a route never asked for: no series yet */
        buf_reset(&labels);
        rc = metrics_label(&labels, "route", route_label(st, r, i));
        rc = rc ? rc
                : metrics_write_hist(out, "breakhook_http_request_duration_seconds",
                                     buf_cstr(&labels), &st->duration[i]);
    }
    return rc;
}
