/*
 * sign.h: Standard Webhooks v1 signatures (https://www.standardwebhooks.com).
 *
 * Every delivery carries three headers:
 *   webhook-id         the event id, the same on every retry (no '.')
 *   webhook-timestamp  Unix seconds of this attempt, decimal
 *   webhook-signature  "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>"
 * The key is the raw bytes behind "whsec_<base64>" (crypto_whsec_parse). A
 * signature header may hold several space-separated entries ("v1,AAA v1,BBB",
 * during a key rotation, or "v1a,..." entries of other schemes, which are skipped);
 * a delivery is valid when any v1 entry matches.
 *
 * sign_v1 and sign_verify are pure: no allocation that outlives the call, no global
 * state but OpenSSL's, thread-safe, non-blocking. A signer (sign_key_t) is the one
 * object that outlives a call: a key prepared once, for a sender that signs many
 * deliveries with the same key. Key bytes are never logged or copied anywhere but
 * into OpenSSL's MAC context, which is cleansed when freed.
 */
#ifndef BREAKHOOK_DELIVERY_SIGN_H
#define BREAKHOOK_DELIVERY_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

/* "v1," + base64 of 32 bytes: the length of one signature, without the NUL. */
#define SIGN_V1_LEN (3 + 44)
/* The replay window consumers should use unless they have a reason not to (the
 * Standard Webhooks libraries use the same). */
#define SIGN_TOLERANCE_DEFAULT_S 300
/* Key sizes the scheme allows (24..64 bytes); sign_v1 accepts 1..SIGN_KEY_MAX. */
#define SIGN_KEY_MAX 64
/* Longest webhook-id sign_v1/sign_verify accept: ids are UUIDs; anything this long
 * is not ours and is refused before any MAC work. */
#define SIGN_ID_MAX 256

/* Why a delivery did not verify. Distinct from the BH_E* codes so a caller can tell a
 * consumer exactly what is wrong (sign_strerror). */
enum {
    SIGN_ENO_ID = -101,        /* webhook-id header missing or empty */
    SIGN_ENO_TIMESTAMP = -102, /* webhook-timestamp header missing or empty */
    SIGN_ENO_SIGNATURE = -103, /* webhook-signature header missing or empty */
    SIGN_EBAD_ID = -104,       /* webhook-id longer than SIGN_ID_MAX or holds '.' */
    SIGN_EBAD_TIMESTAMP = -105,/* webhook-timestamp is not a plain decimal integer */
    SIGN_ETOO_OLD = -106,      /* timestamp older than now - tolerance */
    SIGN_ETOO_NEW = -107,      /* timestamp newer than now + tolerance */
    SIGN_ENO_V1 = -108,        /* no "v1,..." entry in webhook-signature */
    SIGN_ENO_MATCH = -109,     /* v1 entries present, none matches */
};

/* The three headers of a delivery, as received. A NULL p means the header is absent.
 * Values are borrowed for the duration of the call. */
typedef struct sign_headers {
    slice_t id;
    slice_t timestamp;
    slice_t signature;
} sign_headers_t;

/* Writes "v1,<base64>" (SIGN_V1_LEN characters and a NUL) into out. key: key_len
 * bytes (1..SIGN_KEY_MAX), borrowed. msg_id: NUL-terminated, non-empty, at most
 * SIGN_ID_MAX bytes, without '.'. timestamp_s >= 0. body may be NULL when body_len
 * is 0. Returns 0, BH_EINVAL for bad arguments, BH_EINTERNAL if OpenSSL fails. */
BH_MUST_USE int sign_v1(const unsigned char *key, size_t key_len, const char *msg_id,
                        int64_t timestamp_s, const char *body, size_t body_len,
                        char out[SIGN_V1_LEN + 1]);

/* A key prepared for signing: OpenSSL's HMAC context with the digest looked up and
 * the key's inner and outer blocks computed once. sign_v1 pays for a context, the
 * digest's lookup (under OpenSSL's lock) and the key setup on every call, a few
 * microseconds that showed in the delivery profile; the engine signs every attempt
 * and keeps a signer per webhook that sends. Not shared between threads at once. */
typedef struct sign_key sign_key_t;

/* key: key_len bytes (1..SIGN_KEY_MAX), copied into OpenSSL's context. Returns 0,
 * BH_EINVAL for a bad key, BH_ENOMEM/BH_EINTERNAL when OpenSSL fails. */
BH_MUST_USE int sign_key_new(const unsigned char *key, size_t key_len, sign_key_t **out);
/* Cleanses and frees; NULL is a no-op. */
void sign_key_free(sign_key_t *k);
/* sign_v1 with a prepared key: the same signature for the same key and arguments. */
BH_MUST_USE int sign_v1_key(sign_key_t *k, const char *msg_id, int64_t timestamp_s,
                            const char *body, size_t body_len, char out[SIGN_V1_LEN + 1]);

/* Verifies one delivery: the headers must be present, the timestamp within
 * tolerance_s seconds of now_s either way (both edges inclusive; tolerance_s <= 0
 * disables the window, for checking old captures), and one v1 entry of the signature
 * header must equal the signature computed over (id, timestamp text as received,
 * body). The comparison is constant-time (CRYPTO_memcmp). Returns 0 or one SIGN_E*
 * code; BH_EINVAL for a bad key, BH_EINTERNAL if OpenSSL fails. */
BH_MUST_USE int sign_verify(const unsigned char *key, size_t key_len, const sign_headers_t *h,
                            const char *body, size_t body_len, int64_t now_s,
                            int64_t tolerance_s);

/* A static, never-NULL, one-line English reason for a sign_verify result
 * ("webhook-timestamp is too old"); "valid" for 0. */
const char *sign_strerror(int code);

#endif
