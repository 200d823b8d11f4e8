/*
 * crypto.h: webhook signing keys, their encryption at rest, and ids.
 *
 * A webhook key is 32 random bytes, shown to the client once as "whsec_" + base64
 * (Standard Webhooks). At rest it is sealed: with a master key (the operator's
 * BREAKHOOK_MASTER_KEY) it is encrypted with AES-256-GCM, the tenant and webhook id
 * as associated data, so a sealed key copied to another row does not open; without
 * a master key it is stored as is (and the server says so at start).
 *
 * Thread-safe, non-blocking.
 */
#ifndef BREAKHOOK_CORE_CRYPTO_H
#define BREAKHOOK_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

#define CRYPTO_WEBHOOK_KEY_LEN 32
#define CRYPTO_MASTER_KEY_LEN 32
#define CRYPTO_SEALED_MAX 64      /* 1 + 12 + 32 + 16 */
#define CRYPTO_WHSEC_LEN (6 + 44) /* "whsec_" + base64 of 32 bytes */

typedef struct crypto_master {
    bool set;
    unsigned char key[CRYPTO_MASTER_KEY_LEN];
} crypto_master_t;

/* Parses a master key given as 64 hex digits or base64 of 32 bytes. BH_EINVAL
 * otherwise. An empty or NULL text leaves the master unset (returns 0). */
BH_MUST_USE int crypto_master_parse(const char *text, crypto_master_t *out);

/* Seals key (32 bytes) for (tenant_id, id) into out (CRYPTO_SEALED_MAX bytes). */
BH_MUST_USE int crypto_key_seal(const crypto_master_t *m, bh_rand_t *r, int64_t tenant_id,
                                const char *id, const unsigned char key[CRYPTO_WEBHOOK_KEY_LEN],
                                unsigned char *out, size_t *out_len);
/* Opens a sealed key. BH_EAUTH when it was sealed with another master key, for another
 * row, or tampered with; BH_EINVAL when it is encrypted and no master key is set. */
BH_MUST_USE int crypto_key_open(const crypto_master_t *m, int64_t tenant_id, const char *id,
                                const unsigned char *sealed, size_t len,
                                unsigned char key[CRYPTO_WEBHOOK_KEY_LEN]);
/* True when a sealed key is stored as is (sealed without a master key). */
bool crypto_key_is_clear(const unsigned char *sealed, size_t len);

/* "whsec_" + base64(key), NUL-terminated, into out (at least CRYPTO_WHSEC_LEN + 1). */
void crypto_whsec_format(const unsigned char key[CRYPTO_WEBHOOK_KEY_LEN], char *out);
/* The key bytes of a "whsec_..." text (any length of key the base64 holds, up to cap). */
BH_MUST_USE int crypto_whsec_parse(const char *text, unsigned char *key, size_t cap,
                                   size_t *len_out);

/* A random (version 4) UUID in lower-case text, 36 characters + NUL. */
BH_MUST_USE int crypto_uuid4(bh_rand_t *r, char out[37]);

#endif
