#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 4096
#define ARENA_ALIGN 16

struct arena_block {
    arena_block_t *next;
    size_t size;
    size_t off;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

void arena_init(arena_t *a, size_t max)
{
    a->head = NULL;
    a->used = 0;
    a->max = max;
}

static void free_chain(arena_block_t *b)
{
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
}

void arena_reset(arena_t *a)
{
    arena_block_t *keep = a->head;
    if (keep) {
        /* Keep the oldest block: it is the one every request uses. */
        arena_block_t *prev = NULL;
        while (keep->next) {
            prev = keep;
            keep = keep->next;
        }
        if (prev) {
            prev->next = NULL;
            free_chain(a->head);
        }
        keep->off = 0;
    }
    a->head = keep;
    a->used = 0;
}

void arena_deinit(arena_t *a)
{
    free_chain(a->head);
    a->head = NULL;
    a->used = 0;
}

void *arena_alloc(arena_t *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n || need > a->max - a->used)
        return NULL;
    arena_block_t *b = a->head;
    if (!b || b->size - b->off < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = malloc(sizeof(*b) + size);
        if (!b)
            return NULL;
        b->size = size;
        b->off = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->off;
    b->off += need;
    a->used += need;
    return p;
}

char *arena_strndup(arena_t *a, const char *p, size_t n)
{
    char *s = arena_alloc(a, n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = arena_alloc(a, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
