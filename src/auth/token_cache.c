/*
 * token_cache.c: a direct-mapped cache of verified access tokens.
 *
 * Integrators send one token for up to --token-ttl; verifying it each time (one
 * HMAC-SHA256 plus libjwt's JSON parsing) capped authenticated requests at about
 * the rate of that work (bench/README.md has the before/after figures). The
 * cache keeps a copy of each verified token and its claims, indexed by a hash;
 * a lookup compares the whole token, so a collision is only a miss.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/hash.h"

#define CACHE_SLOTS 1024 /* a power of two */

typedef struct slot {
    char *token;          /* malloc'd copy, NULL when empty */
    size_t len;
    auth_claims_t claims;
} slot_t;

struct auth_token_cache {
    slot_t slots[CACHE_SLOTS];
};

auth_token_cache_t *auth_token_cache_new(void)
{
    return calloc(1, sizeof(auth_token_cache_t));
}

void auth_token_cache_free(auth_token_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(c->slots[i].token);
    free(c);
}

auth_token_status_t auth_token_cache_verify(auth_token_cache_t *c, auth_keyring_t *k,
                                            const char *token, size_t len, int64_t now_ms,
                                            int64_t max_ttl_s, auth_claims_t *out)
{
    if (!c)
        return auth_token_verify(k, token, len, now_ms, max_ttl_s, out);
    slot_t *s = &c->slots[hash_fnv(HASH_FNV_OFFSET, token, len) & (CACHE_SLOTS - 1)];
    if (s->token && s->len == len && memcmp(s->token, token, len) == 0) {
        int64_t now_s = now_ms / 1000;
        /* The same checks auth_token_verify makes on time, against now. */
        if (s->claims.exp > now_s) {
            *out = s->claims;
            return AUTH_TOKEN_OK;
        }
        return AUTH_TOKEN_EXPIRED;
    }
    auth_token_status_t st = auth_token_verify(k, token, len, now_ms, max_ttl_s, out);
    if (st != AUTH_TOKEN_OK)
        return st;
    char *copy = malloc(len);
    if (!copy)
        return st; /* not cached; the answer stands */
    memcpy(copy, token, len);
    free(s->token);
    s->token = copy;
    s->len = len;
    s->claims = *out;
    return st;
}
