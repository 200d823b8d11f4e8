/*
 * slice.h: a borrowed (pointer, length) view of bytes, used on the wire path
 * instead of NUL-terminated strings. A slice never owns its bytes.
 */
#ifndef BREAKHOOK_CORE_SLICE_H
#define BREAKHOOK_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct slice {
    const char *p;
    size_t n;
} slice_t;

#define SLICE_LIT(s) ((slice_t){ (s), sizeof(s) - 1 })
#define SLICE_NULL ((slice_t){ NULL, 0 })

static inline slice_t slice_make(const char *p, size_t n)
{
    return (slice_t){ p, n };
}

static inline slice_t slice_from_cstr(const char *s)
{
    return (slice_t){ s, s ? strlen(s) : 0 };
}

static inline bool slice_eq(slice_t a, slice_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline bool slice_eq_cstr(slice_t a, const char *s)
{
    return slice_eq(a, slice_from_cstr(s));
}

/* ASCII case-insensitive equality, for header names and tokens. */
static inline bool slice_eq_nocase(slice_t a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && (n == 0 || strncasecmp(a.p, s, n) == 0);
}

static inline bool slice_starts_with(slice_t a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

/* Parses a whole slice as a non-negative decimal integer no larger than max.
 * Returns false on empty input, any non-digit, or overflow past max. */
bool slice_to_u64(slice_t s, unsigned long long max, unsigned long long *out);

/* Leading and trailing spaces and tabs removed. */
slice_t slice_trim(slice_t s);

#endif
