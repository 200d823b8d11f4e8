/*
 * buf.h: a growable byte buffer with a hard maximum (curl's dynbuf idea).
 *
 * Every buffer that grows from input is created with the largest size it may
 * ever reach; an append past it fails with BH_ETOOBIG and leaves the buffer as
 * it was, so a client can never grow our memory without limit. The content is
 * always NUL-terminated (the NUL is not counted in len) so it can be handed to
 * C APIs without copying.
 */
#ifndef BREAKHOOK_CORE_BUF_H
#define BREAKHOOK_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"
#include "core/slice.h"

typedef struct buf {
    char *p;     /* NULL until the first append */
    size_t len;  /* bytes in use, excluding the trailing NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard limit on len */
} buf_t;

/* Embeds an empty buffer that may hold at most max bytes. Allocates nothing. */
void buf_init(buf_t *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_deinit(buf_t *b);
/* Empties the buffer but keeps its storage for reuse. */
void buf_reset(buf_t *b);

BH_MUST_USE int buf_append(buf_t *b, const void *p, size_t n);
BH_MUST_USE int buf_append_str(buf_t *b, const char *s);
BH_MUST_USE int buf_append_char(buf_t *b, char c);
BH_MUST_USE int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
BH_MUST_USE int buf_vprintf(buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Makes room for n more bytes without changing len (for callers that write in place). */
BH_MUST_USE int buf_reserve(buf_t *b, size_t n);
/* Removes the first n bytes (n <= len). */
void buf_consume(buf_t *b, size_t n);

static inline slice_t buf_slice(const buf_t *b)
{
    return (slice_t){ b->p ? b->p : "", b->len };
}

/* The content as a C string; "" for an empty buffer. Valid until the next change. */
static inline const char *buf_cstr(const buf_t *b)
{
    return b->p ? b->p : "";
}

#endif
