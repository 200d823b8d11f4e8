/*
 * arena.h: a bump allocator freed in one call (h2o's per-request pool).
 *
 * Each HTTP request owns one arena; everything allocated for it lives until
 * arena_reset()/arena_deinit(). (A delivery attempt has none: its headers sit in a
 * fixed buffer of the attempt, and its body belongs to the event, allocated once
 * and freed with it.) The arena has a hard
 * maximum so a hostile request cannot make it grow without limit: past it,
 * allocation returns NULL.
 */
#ifndef BREAKHOOK_CORE_ARENA_H
#define BREAKHOOK_CORE_ARENA_H

#include <stddef.h>

#include "core/slice.h"

typedef struct arena_block arena_block_t;

typedef struct arena {
    arena_block_t *head;  /* current block; older blocks follow */
    size_t used;          /* bytes handed out in total */
    size_t max;           /* limit on used */
} arena_t;

void arena_init(arena_t *a, size_t max);
/* Frees every block but the first, which is kept for reuse. */
void arena_reset(arena_t *a);
void arena_deinit(arena_t *a);

/* n bytes aligned for any type, or NULL when out of memory or past the maximum. */
void *arena_alloc(arena_t *a, size_t n);
/* A NUL-terminated copy of (p, n), or NULL. */
char *arena_strndup(arena_t *a, const char *p, size_t n);
/* A formatted string, or NULL. */
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
