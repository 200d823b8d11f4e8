/*
 * revoked.c: the set of revoked clients, as a sorted array searched by bsearch.
 * Revocations are rare, so the set is small and rebuilt whole on each refresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

void auth_revoked_init(auth_revoked_t *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->keys = NULL;
    r->n = 0;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

void auth_revoked_deinit(auth_revoked_t *r)
{
    free_keys(r->keys, r->n);
    pthread_mutex_destroy(&r->lock);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int auth_revoked_set(auth_revoked_t *r, const store_client_t *list, size_t n)
{
    char **keys = calloc(n ? n : 1, sizeof(char *));
    if (!keys)
        return BH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!list[i].revoked_at_ms)
            continue;
        char tmp[128];
        snprintf(tmp, sizeof(tmp), "%lld/%s", (long long)list[i].tenant_id, list[i].client_id);
        keys[k] = strdup(tmp);
        if (!keys[k]) {
            free_keys(keys, k);
            return BH_ENOMEM;
        }
        k++;
    }
    qsort(keys, k, sizeof(char *), cmp_keys);
    pthread_mutex_lock(&r->lock);
    char **old = r->keys;
    size_t old_n = r->n;
    r->keys = keys;
    r->n = k;
    pthread_mutex_unlock(&r->lock);
    free_keys(old, old_n);
    return 0;
}

bool auth_revoked_has(auth_revoked_t *r, int64_t tenant_id, const char *client_id)
{
    char key[128];
    const char *kp = key;
    snprintf(key, sizeof(key), "%lld/%s", (long long)tenant_id, client_id);
    pthread_mutex_lock(&r->lock);
    bool found = r->n && bsearch(&kp, r->keys, r->n, sizeof(char *), cmp_keys) != NULL;
    pthread_mutex_unlock(&r->lock);
    return found;
}
