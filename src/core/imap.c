#include "core/imap.h"

#include <stdlib.h>

static size_t slot(const imap_t *m, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (m->n_buckets - 1);
}

void imap_init(imap_t *m)
{
    m->buckets = NULL;
    m->n_buckets = 0;
    m->n = 0;
}

void imap_deinit(imap_t *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        imap_node_t *n = m->buckets[i];
        while (n) {
            imap_node_t *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->buckets);
    imap_init(m);
}

void *imap_get(const imap_t *m, int64_t key)
{
    if (!m->n_buckets)
        return NULL;
    for (imap_node_t *n = m->buckets[slot(m, key)]; n; n = n->next)
        if (n->key == key)
            return n->value;
    return NULL;
}

static int grow(imap_t *m)
{
    size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
    imap_node_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return BH_ENOMEM;
    imap_t nm = { b, nb, m->n };
    for (size_t i = 0; i < m->n_buckets; i++) {
        imap_node_t *n = m->buckets[i];
        while (n) {
            imap_node_t *next = n->next;
            size_t s = slot(&nm, n->key);
            n->next = b[s];
            b[s] = n;
            n = next;
        }
    }
    free(m->buckets);
    *m = nm;
    return 0;
}

int imap_put(imap_t *m, int64_t key, void *value)
{
    if (m->n_buckets) {
        for (imap_node_t *n = m->buckets[slot(m, key)]; n; n = n->next) {
            if (n->key == key) {
                n->value = value;
                return 0;
            }
        }
    }
    if (m->n >= m->n_buckets && grow(m))
        return BH_ENOMEM;
    imap_node_t *n = malloc(sizeof(*n));
    if (!n)
        return BH_ENOMEM;
    size_t s = slot(m, key);
    n->key = key;
    n->value = value;
    n->next = m->buckets[s];
    m->buckets[s] = n;
    m->n++;
    return 0;
}

bool imap_replace(imap_t *m, int64_t key, void *value)
{
    if (!m->n_buckets)
        return false;
    for (imap_node_t *n = m->buckets[slot(m, key)]; n; n = n->next) {
        if (n->key == key) {
            n->value = value;
            return true;
        }
    }
    return false;
}

void *imap_del(imap_t *m, int64_t key)
{
    if (!m->n_buckets)
        return NULL;
    for (imap_node_t **pp = &m->buckets[slot(m, key)]; *pp; pp = &(*pp)->next) {
        if ((*pp)->key == key) {
            imap_node_t *n = *pp;
            void *v = n->value;
            *pp = n->next;
            free(n);
            m->n--;
            return v;
        }
    }
    return NULL;
}

void imap_each(const imap_t *m, void (*fn)(int64_t key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (imap_node_t *n = m->buckets[i]; n; n = n->next)
            fn(n->key, n->value, arg);
}
