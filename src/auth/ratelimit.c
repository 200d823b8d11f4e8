/*
 * ratelimit.c: one token bucket per client, in an open-addressing hash table.
 *
 * Used on the loop thread only, so no locking. The table holds at most
 * RL_MAX_ENTRIES clients; when full, buckets idle long enough to be full again
 * are reused, and failing that the least recently used of the probed buckets is
 * taken over. It never fails open: a flood of made-up keys (token requests with
 * random client ids from many addresses) must not switch limiting off for the
 * keys that do hit it. A bucket taken over starts full, which gives its old key at
 * most one more burst.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/hash.h"

#define RL_MAX_ENTRIES 4096

typedef struct rl_entry {
    char key[96];
    double tokens;
    int64_t last_ms; /* last refill (probing refills buckets it passes) */
    int64_t used_ms; /* last request of this key: what "least recently used" means */
} rl_entry_t;

struct auth_ratelimit {
    double rate, burst;
    rl_entry_t *entries;
    size_t cap;
};

auth_ratelimit_t *auth_ratelimit_new(double rate_per_s, double burst)
{
    auth_ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->rate = rate_per_s;
    rl->burst = burst < 1 ? 1 : burst;
    rl->cap = RL_MAX_ENTRIES;
    rl->entries = calloc(rl->cap, sizeof(rl_entry_t));
    if (!rl->entries) {
        free(rl);
        return NULL;
    }
    return rl;
}

void auth_ratelimit_free(auth_ratelimit_t *rl)
{
    if (!rl)
        return;
    free(rl->entries);
    free(rl);
}

static void refill(auth_ratelimit_t *rl, rl_entry_t *e, int64_t now_ms)
{
    if (now_ms > e->last_ms) {
        e->tokens = fmin(rl->burst, e->tokens + (double)(now_ms - e->last_ms) * rl->rate / 1000.0);
        e->last_ms = now_ms;
    }
}

int64_t auth_ratelimit_take(auth_ratelimit_t *rl, const char *key_in, int64_t now_ms)
{
    if (!rl || rl->rate <= 0)
        return 0;
    /* Buckets store at most 95 bytes of a key: cut it once, here, so lookups and
     * stores agree. */
    char key[sizeof(((rl_entry_t *)0)->key)];
    snprintf(key, sizeof(key), "%s", key_in);
    size_t mask = rl->cap - 1, i = hash_str(key) & mask;
    rl_entry_t *e = NULL, *reusable = NULL, *oldest = NULL;
    for (size_t probe = 0; probe < 32; probe++, i = (i + 1) & mask) {
        rl_entry_t *c = &rl->entries[i];
        if (!c->key[0] || !strcmp(c->key, key)) {
            e = c;
            break;
        }
        if (!oldest || c->used_ms < oldest->used_ms)
            oldest = c;
        refill(rl, c, now_ms);
        if (!reusable && c->tokens >= rl->burst)
            reusable = c;
    }
    if (!e)
        e = reusable ? reusable : oldest;
    if (strcmp(e->key, key) != 0) {
        memcpy(e->key, key, sizeof(e->key));
        e->tokens = rl->burst;
        e->last_ms = now_ms;
    }
    refill(rl, e, now_ms);
    e->used_ms = now_ms;
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        return 0;
    }
    double wait_s = (1.0 - e->tokens) / rl->rate;
    int64_t w = (int64_t)ceil(wait_s);
    return w < 1 ? 1 : w;
}
