/*
 * clock.h: the injectable time and randomness sources.
 *
 * Everything that asks "what time is it" or "give me random bytes" goes
 * through a bh_clock_t / bh_rand_t, so tests can drive retry schedules, expiry
 * and token lifetimes with a fake clock instead of sleeping.
 */
#ifndef BREAKHOOK_CORE_CLOCK_H
#define BREAKHOOK_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct bh_clock bh_clock_t;
struct bh_clock {
    /* Wall-clock time in milliseconds since the Unix epoch. Thread-safe. */
    int64_t (*now_ms)(bh_clock_t *c);
    /* Monotonic milliseconds, for measuring durations. Thread-safe. */
    int64_t (*mono_ms)(bh_clock_t *c);
    int64_t fake_now_ms; /* used by the fake clock only */
    int64_t fake_mono_ms;
};

/* The process clock (CLOCK_REALTIME / CLOCK_MONOTONIC). Never NULL. */
bh_clock_t *clock_system(void);
/* Initialises a fake clock starting at start_ms; advance with clock_fake_advance. */
void clock_fake_init(bh_clock_t *c, int64_t start_ms);
void clock_fake_advance(bh_clock_t *c, int64_t ms);

static inline int64_t clock_now_ms(bh_clock_t *c) { return c->now_ms(c); }
static inline int64_t clock_mono_ms(bh_clock_t *c) { return c->mono_ms(c); }

/* Formats ms-since-epoch as RFC 3339 UTC with milliseconds ("2026-01-02T03:04:05.678Z")
 * into out (at least 32 bytes). */
void clock_format_rfc3339(int64_t ms, char out[32]);
/* Parses the format above (with or without milliseconds, 'Z' or +hh:mm offset). */
BH_MUST_USE int clock_parse_rfc3339(const char *s, int64_t *ms_out);

typedef struct bh_rand bh_rand_t;
struct bh_rand {
    /* Fills p with n cryptographically strong random bytes. Thread-safe. */
    int (*bytes)(bh_rand_t *r, void *p, size_t n);
    uint64_t fake_state; /* used by the fake source only */
};

/* OpenSSL's RAND_bytes. */
bh_rand_t *rand_system(void);
/* A deterministic source for tests (NOT random; never use outside tests). */
void rand_fake_init(bh_rand_t *r, uint64_t seed);

static inline BH_MUST_USE int rand_bytes(bh_rand_t *r, void *p, size_t n)
{
    return r->bytes(r, p, n);
}

/* n random bytes from r as 2n lower-case hex digits and a NUL into out (room for
 * 2n + 1): the ids of deltas, store nodes and API clients. */
BH_MUST_USE int rand_hex(bh_rand_t *r, char *out, size_t n);

/* A uniformly distributed double in [0, 1) from r, for jitter. */
double rand_unit(bh_rand_t *r);

#endif
