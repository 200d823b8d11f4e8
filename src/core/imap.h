/*
 * imap.h: a hash map from int64 keys to pointers, with separate chaining.
 *
 * Grows by doubling when it holds more entries than buckets. Single-threaded.
 */
#ifndef BREAKHOOK_CORE_IMAP_H
#define BREAKHOOK_CORE_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct imap_node {
    int64_t key;
    void *value;
    struct imap_node *next;
} imap_node_t;

typedef struct imap {
    imap_node_t **buckets;
    size_t n_buckets;
    size_t n;
} imap_t;

void imap_init(imap_t *m);
/* Frees the map's own memory (not the values). */
void imap_deinit(imap_t *m);
void *imap_get(const imap_t *m, int64_t key);
/* Sets key to value (replacing). BH_ENOMEM on failure. */
BH_MUST_USE int imap_put(imap_t *m, int64_t key, void *value);
/* Sets the value of a key that is in the map (allocates nothing, cannot fail); false
 * when the key is not there (nothing changes). */
bool imap_replace(imap_t *m, int64_t key, void *value);
/* Removes key; returns its value or NULL. */
void *imap_del(imap_t *m, int64_t key);
/* Calls fn for every entry (the map must not change meanwhile). */
void imap_each(const imap_t *m, void (*fn)(int64_t key, void *value, void *arg), void *arg);

#endif
