/*
 * auth.h: API clients, their secrets, scopes, access tokens and rate limits.
 *
 * Client secrets are 32 random bytes shown once and stored only as a salted
 * PBKDF2-HMAC-SHA256 hash. Access tokens are HS256 JWTs made and checked with
 * libjwt, signed with a key kept in the store (so every node accepts every token)
 * and named by a key id, so a rotated key keeps its tokens valid until they
 * expire.
 *
 * Threading: the keyring and the revocation set are read on the loop thread and
 * replaced whole from a worker thread under a lock; everything else is pure.
 */
#ifndef BREAKHOOK_AUTH_AUTH_H
#define BREAKHOOK_AUTH_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/slice.h"
#include "store/store.h"

/* ---- scopes ------------------------------------------------------------- */

#define SCOPE_BREAKS_READ "connector-protimeapi-breaks.read"
#define SCOPE_BREAKS_WRITE "connector-protimeapi-breaks.write"
#define SCOPE_BREAK_DEFINITIONS_READ "connector-protimeapi-break-definitions.read"
#define SCOPE_BREAK_DEFINITIONS_WRITE "connector-protimeapi-break-definitions.write"
#define SCOPE_PEOPLE_READ "connector-protimeapi-people.read"
#define SCOPE_PEOPLE_WRITE "connector-protimeapi-people.write"
#define SCOPE_WEBHOOKS_READ "connector-protimeapi-webhooks.read"
#define SCOPE_WEBHOOKS_WRITE "connector-protimeapi-webhooks.write"

/* Every scope this server knows, NULL-terminated. */
extern const char *const auth_known_scopes[];

/* True when scope is one of auth_known_scopes. */
bool auth_scope_known(slice_t scope);
/* True when the space-separated list has scope as one of its items. */
bool auth_scopes_contain(const char *list, const char *scope);
/* Checks that every item of the space-separated `requested` is in `allowed`.
 * On failure *bad (if given) points into requested at the first offending scope,
 * with *bad_len its length. An empty request is a subset. */
bool auth_scopes_subset(const char *requested, const char *allowed, const char **bad,
                        size_t *bad_len);
/* Normalises a scope list given by a person (spaces or commas, duplicates) into
 * single-space form in out. BH_EINVAL names an unknown scope through *bad. */
BH_MUST_USE int auth_scopes_normalize(const char *in, char *out, size_t n, const char **bad,
                                      size_t *bad_len);

/* ---- client secrets ----------------------------------------------------- */

#define AUTH_SECRET_LEN 43   /* base64url of 32 bytes, unpadded */
#define AUTH_PBKDF2_ITER 60000

/* A new client id ("bh_" + 20 hex chars) and secret (43 base64url chars) from r. */
BH_MUST_USE int auth_client_credentials_new(bh_rand_t *r, char client_id[32],
                                            char secret[AUTH_SECRET_LEN + 1]);
/* "pbkdf2-sha256$ITER$SALT$HASH" with a 16-byte salt from r. Slow on purpose:
 * call from a worker thread. */
BH_MUST_USE int auth_secret_hash(bh_rand_t *r, const char *secret, int iterations, char *out,
                                 size_t n);
/* Constant-time check of a secret against a stored hash. False for a malformed hash. */
bool auth_secret_verify(const char *secret, size_t secret_len, const char *hash);

/* ---- form bodies and credentials --------------------------------------- */

#define AUTH_FORM_MAX 16

typedef struct auth_form {
    struct {
        const char *name, *value; /* decoded, NUL-terminated, in the arena */
    } items[AUTH_FORM_MAX];
    size_t n;
} auth_form_t;

/* Decodes application/x-www-form-urlencoded. A repeated parameter, a malformed
 * escape, a NUL byte or more than AUTH_FORM_MAX fields: BH_EINVAL, with a reason
 * in *why. */
BH_MUST_USE int auth_form_parse(const char *p, size_t n, arena_t *a, auth_form_t *out,
                                const char **why);
const char *auth_form_get(const auth_form_t *f, const char *name);

/* Parses "Basic base64(id:secret)" (RFC 6749 §2.3.1: both parts form-urlencoded).
 * BH_EINVAL when malformed. */
BH_MUST_USE int auth_basic_parse(slice_t header, arena_t *a, const char **id,
                                 const char **secret);
/* The token of "Bearer <token>" (scheme case-insensitive), or BH_EINVAL. */
BH_MUST_USE int auth_bearer_parse(slice_t header, slice_t *token);

/* ---- signing keys and tokens -------------------------------------------- */

#define AUTH_KEYRING_MAX 64
/* How long past retired_at + max_ttl a retired key still verifies: nodes may sign
 * with it until they reload their keys (at most --revocation-refresh, <= 1 h). */
#define AUTH_KEY_GRACE_S 3600

typedef struct auth_keyring {
    pthread_mutex_t lock;
    store_signing_key_t keys[AUTH_KEYRING_MAX]; /* newest first; keys[0] signs */
    size_t n;
} auth_keyring_t;

void auth_keyring_init(auth_keyring_t *k);
void auth_keyring_deinit(auth_keyring_t *k);
/* Keeps, in place and in order, the keys that can still matter at now_ms: the
 * active ones and those retired less than keep_ms ago (what they signed may still
 * be valid). Returns how many remain. */
size_t auth_keys_prune(store_signing_key_t *keys, size_t n, int64_t now_ms, int64_t keep_ms);
/* Replaces the keys (newest first, as store_signing_key_list returns them); past
 * AUTH_KEYRING_MAX the oldest are dropped, so prune first. */
void auth_keyring_set(auth_keyring_t *k, const store_signing_key_t *keys, size_t n);
/* A fresh signing key with a random kid and secret. */
BH_MUST_USE int auth_signing_key_new(bh_rand_t *r, int64_t now_ms, store_signing_key_t *out);

typedef struct auth_claims {
    char tenant[STORE_NAME_MAX];
    int64_t tenant_id;
    char client_id[64];
    char scope[1024];
    int64_t iat, nbf, exp;   /* seconds */
    char jti[33];
} auth_claims_t;

/* Issues a token for c (exp = iat + ttl_s) signed with the newest key. The string is
 * malloc'd; free() it. */
BH_MUST_USE int auth_token_issue(auth_keyring_t *k, bh_rand_t *r, const auth_claims_t *c,
                                 char **token_out);

typedef enum {
    AUTH_TOKEN_OK = 0,
    AUTH_TOKEN_MALFORMED,   /* not a JWT, or claims missing */
    AUTH_TOKEN_BAD_ALG,     /* anything but HS256 (alg none included) */
    AUTH_TOKEN_UNKNOWN_KEY, /* kid not in the keyring (or retired too long ago) */
    AUTH_TOKEN_BAD_SIGNATURE,
    AUTH_TOKEN_EXPIRED,
    AUTH_TOKEN_NOT_YET_VALID,
} auth_token_status_t;

/* Verifies a token's signature, algorithm and time claims against now. Fills out on
 * success. A retired key verifies tokens until retired_at + max_ttl_s. */
auth_token_status_t auth_token_verify(auth_keyring_t *k, const char *token, size_t len,
                                      int64_t now_ms, int64_t max_ttl_s, auth_claims_t *out);
/* A short English reason for a status, for the 401 body. */
const char *auth_token_status_str(auth_token_status_t s);

/* ---- verified-token cache (one loop thread only) ------------------------- */

/* Remembers the claims of tokens that verified, so a client that sends the same
 * token on every request pays for HMAC and JSON parsing once. An entry is used only
 * for the exact same token bytes and only while the token's time claims are still
 * valid at `now`; revocation is not cached (callers check it every time). */
typedef struct auth_token_cache auth_token_cache_t;

auth_token_cache_t *auth_token_cache_new(void);
void auth_token_cache_free(auth_token_cache_t *c);
/* auth_token_verify through the cache. c may be NULL (no caching). */
auth_token_status_t auth_token_cache_verify(auth_token_cache_t *c, auth_keyring_t *k,
                                            const char *token, size_t len, int64_t now_ms,
                                            int64_t max_ttl_s, auth_claims_t *out);

/* ---- sealed opaque tokens (continuation and delta tokens) --------------- */

/* Seals payload (any bytes, at most 1024) into an opaque, URL-safe, tamper-proof
 * token "payload.kid.mac" (base64url), authenticated with a key derived from the
 * newest signing key. The string is malloc'd. */
BH_MUST_USE int auth_seal(auth_keyring_t *k, const char *purpose, const void *payload, size_t n,
                          char **token_out);
/* Checks a sealed token made for purpose; copies the payload into out (up to cap
 * bytes) and its length into *n_out. BH_EINVAL for anything tampered, malformed,
 * made for another purpose, or sealed with a key no longer in the keyring. */
BH_MUST_USE int auth_unseal(auth_keyring_t *k, const char *purpose, const char *token,
                            size_t len, void *out, size_t cap, size_t *n_out);

/* ---- revocations -------------------------------------------------------- */

/* The set of revoked (tenant, client) pairs, reloaded from the store periodically
 * so a revoked client's tokens stop working on every node within the refresh
 * interval. */
typedef struct auth_revoked {
    pthread_mutex_t lock;
    char **keys;  /* "tenant_id/client_id", sorted */
    size_t n;
} auth_revoked_t;

void auth_revoked_init(auth_revoked_t *r);
void auth_revoked_deinit(auth_revoked_t *r);
/* Replaces the set with the revoked clients in list. */
BH_MUST_USE int auth_revoked_set(auth_revoked_t *r, const store_client_t *list, size_t n);
bool auth_revoked_has(auth_revoked_t *r, int64_t tenant_id, const char *client_id);

/* ---- rate limiting ------------------------------------------------------ */

/* One token bucket per client, touched only on the loop thread. rate 0 turns
 * limiting off. */
typedef struct auth_ratelimit auth_ratelimit_t;

auth_ratelimit_t *auth_ratelimit_new(double rate_per_s, double burst);
void auth_ratelimit_free(auth_ratelimit_t *rl);
/* Takes one token for key at now_ms. Returns 0, or the seconds to wait (>= 1) when
 * the bucket is empty. */
int64_t auth_ratelimit_take(auth_ratelimit_t *rl, const char *key, int64_t now_ms);

#endif
