/*
 * hash.h: FNV-1a, 64 bits: the hash of the in-memory tables and keys (engine maps,
 * token cache, rate limiter, paging query hash). Not a keyed hash.
 */
#ifndef BREAKHOOK_CORE_HASH_H
#define BREAKHOOK_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 1469598103934665603ULL
#define HASH_FNV_PRIME 1099511628211ULL

/* Continues hash h over the n bytes at p (start with HASH_FNV_OFFSET). */
static inline uint64_t hash_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * HASH_FNV_PRIME;
    return h;
}

/* The hash of a NUL-terminated string. */
static inline uint64_t hash_str(const char *s)
{
    uint64_t h = HASH_FNV_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * HASH_FNV_PRIME;
    return h;
}

#endif
