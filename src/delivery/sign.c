/*
 * sign.c: Standard Webhooks v1 signing and verification (see sign.h).
 *
 * The MAC is computed with OpenSSL's EVP_MAC over the three parts in turn, so the
 * body is never copied into an "id.timestamp.body" buffer: the delivery engine signs
 * every attempt and bodies can be large.
 */
#include "delivery/sign.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/base64.h"

#define MAC_LEN 32
#define SIG_B64_LEN 44 /* base64 of 32 bytes, padded */

/* EVP_MAC_fetch looks the algorithm up in the provider tables under a lock; doing it
 * once keeps that off the per-delivery path. The fetched object is immutable and may
 * be shared by every thread; it lives until the process exits. */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

/* A new HMAC-SHA256 context with key set (and so initialised); NULL on failure. */
static EVP_MAC_CTX *mac_ctx_new(const unsigned char *key, size_t key_len)
{
    static char digest[] = "SHA256";
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(ctx, key, key_len, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* HMAC(id "." ts "." body) into out, with ctx initialised for a new message. */
static int mac_message(EVP_MAC_CTX *ctx, slice_t id, slice_t ts, const char *body,
                       size_t body_len, unsigned char out[MAC_LEN])
{
    size_t len = 0;
    int ok = EVP_MAC_update(ctx, (const unsigned char *)id.p, id.n) &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
             EVP_MAC_update(ctx, (const unsigned char *)ts.p, ts.n) &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
             (body_len == 0 || EVP_MAC_update(ctx, (const unsigned char *)body, body_len)) &&
             EVP_MAC_final(ctx, out, &len, MAC_LEN) && len == MAC_LEN;
    return ok ? 0 : BH_EINTERNAL;
}

/* HMAC-SHA256(key, id "." ts "." body) into out. */
static int mac_compute(const unsigned char *key, size_t key_len, slice_t id, slice_t ts,
                       const char *body, size_t body_len, unsigned char out[MAC_LEN])
{
    EVP_MAC_CTX *ctx = mac_ctx_new(key, key_len);
    if (!ctx)
        return BH_EINTERNAL;
    int rc = mac_message(ctx, id, ts, body, body_len, out);
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static bool id_ok(slice_t id)
{
    return id.n > 0 && id.n <= SIGN_ID_MAX && !memchr(id.p, '.', id.n);
}

int sign_v1(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
            const char *body, size_t body_len, char out[SIGN_V1_LEN + 1])
{
    if (!key || key_len == 0 || key_len > SIGN_KEY_MAX || !msg_id || timestamp_s < 0 ||
        (!body && body_len))
        return BH_EINVAL;
    slice_t id = slice_make(msg_id, strnlen(msg_id, SIGN_ID_MAX + 1));
    if (!id_ok(id))
        return BH_EINVAL;
    char ts[24];
    int n = snprintf(ts, sizeof(ts), "%lld", (long long)timestamp_s);
    unsigned char mac[MAC_LEN];
    int rc = mac_compute(key, key_len, id, slice_make(ts, (size_t)n), body, body_len, mac);
    if (rc)
        return rc;
    memcpy(out, "v1,", 3);
    base64_encode(mac, MAC_LEN, out + 3, false);
    return 0;
}

struct sign_key {
    EVP_MAC_CTX *ctx;
};

int sign_key_new(const unsigned char *key, size_t key_len, sign_key_t **out)
{
    *out = NULL;
    if (!key || key_len == 0 || key_len > SIGN_KEY_MAX)
        return BH_EINVAL;
    sign_key_t *k = malloc(sizeof(*k));
    if (!k)
        return BH_ENOMEM;
    k->ctx = mac_ctx_new(key, key_len);
    if (!k->ctx) {
        free(k);
        return BH_EINTERNAL;
    }
    *out = k;
    return 0;
}

void sign_key_free(sign_key_t *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->ctx); /* cleanses the key's blocks */
    free(k);
}

int sign_v1_key(sign_key_t *k, const char *msg_id, int64_t timestamp_s, const char *body,
                size_t body_len, char out[SIGN_V1_LEN + 1])
{
    if (!k || !msg_id || timestamp_s < 0 || (!body && body_len))
        return BH_EINVAL;
    slice_t id = slice_make(msg_id, strnlen(msg_id, SIGN_ID_MAX + 1));
    if (!id_ok(id))
        return BH_EINVAL;
    char ts[24], tmp[24];
    size_t n = 0, t = 0;
    uint64_t v = (uint64_t)timestamp_s;
    do {
        tmp[t++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (t)
        ts[n++] = tmp[--t];
    unsigned char mac[MAC_LEN];
    /* A NULL key starts a new message with the key already set (OpenSSL 3's HMAC
     * keeps the prepared inner and outer blocks). */
    if (!EVP_MAC_init(k->ctx, NULL, 0, NULL))
        return BH_EINTERNAL;
    int rc = mac_message(k->ctx, id, slice_make(ts, n), body, body_len, mac);
    if (rc)
        return rc;
    memcpy(out, "v1,", 3);
    base64_encode(mac, MAC_LEN, out + 3, false);
    return 0;
}

/* A webhook-timestamp is plain decimal digits (no sign, no fraction, no spaces): the
 * signature covers the text exactly as sent, so anything looser would let two texts
 * mean the same time. */
static int parse_timestamp(slice_t s, int64_t *out)
{
    unsigned long long v;
    if (!slice_to_u64(s, (unsigned long long)INT64_MAX, &v))
        return SIGN_EBAD_TIMESTAMP;
    *out = (int64_t)v;
    return 0;
}

int sign_verify(const unsigned char *key, size_t key_len, const sign_headers_t *h,
                const char *body, size_t body_len, int64_t now_s, int64_t tolerance_s)
{
    if (!key || key_len == 0 || key_len > SIGN_KEY_MAX || (!body && body_len))
        return BH_EINVAL;
    if (!h->id.p || h->id.n == 0)
        return SIGN_ENO_ID;
    if (!h->timestamp.p || h->timestamp.n == 0)
        return SIGN_ENO_TIMESTAMP;
    if (!h->signature.p || h->signature.n == 0)
        return SIGN_ENO_SIGNATURE;
    if (!id_ok(h->id))
        return SIGN_EBAD_ID;
    int64_t ts;
    int rc = parse_timestamp(h->timestamp, &ts);
    if (rc)
        return rc;
    if (tolerance_s > 0) {
        /* Both are non-negative here, so neither difference can overflow. */
        if (now_s < 0)
            now_s = 0;
        if (ts < now_s && now_s - ts > tolerance_s)
            return SIGN_ETOO_OLD;
        if (ts > now_s && ts - now_s > tolerance_s)
            return SIGN_ETOO_NEW;
    }

    unsigned char mac[MAC_LEN];
    rc = mac_compute(key, key_len, h->id, h->timestamp, body, body_len, mac);
    if (rc)
        return rc;
    char want[BASE64_ENCODED_SIZE(MAC_LEN)];
    base64_encode(mac, MAC_LEN, want, false);
    OPENSSL_cleanse(mac, sizeof(mac));

    /* Entries are separated by one or more spaces; entries of other versions ("v1a,")
     * are skipped, as the specification asks. Lengths are public (every v1 signature
     * is 44 characters); only the bytes are compared in constant time. */
    bool saw_v1 = false, match = false;
    const char *p = h->signature.p, *end = p + h->signature.n;
    while (p < end && !match) {
        while (p < end && *p == ' ')
            p++;
        const char *e = p;
        while (e < end && *e != ' ')
            e++;
        slice_t entry = slice_make(p, (size_t)(e - p));
        if (slice_starts_with(entry, "v1,")) {
            saw_v1 = true;
            if (entry.n - 3 == SIG_B64_LEN && CRYPTO_memcmp(entry.p + 3, want, SIG_B64_LEN) == 0)
                match = true;
        }
        p = e;
    }
    if (match)
        return 0;
    return saw_v1 ? SIGN_ENO_MATCH : SIGN_ENO_V1;
}

const char *sign_strerror(int code)
{
    switch (code) {
    case 0:
        return "valid";
    case SIGN_ENO_ID:
        return "the webhook-id header is missing";
    case SIGN_ENO_TIMESTAMP:
        return "the webhook-timestamp header is missing";
    case SIGN_ENO_SIGNATURE:
        return "the webhook-signature header is missing";
    case SIGN_EBAD_ID:
        return "the webhook-id header is malformed (too long or contains '.')";
    case SIGN_EBAD_TIMESTAMP:
        return "the webhook-timestamp header is not a Unix time in seconds";
    case SIGN_ETOO_OLD:
        return "webhook-timestamp is too old (outside the tolerance: replayed or delayed)";
    case SIGN_ETOO_NEW:
        return "webhook-timestamp is too far in the future (outside the tolerance)";
    case SIGN_ENO_V1:
        return "the webhook-signature header holds no v1 signature";
    case SIGN_ENO_MATCH:
        return "no v1 signature matches (wrong key, or the id, timestamp or body was changed)";
    case BH_EINVAL:
        return "invalid signing key";
    default:
        return "signature check failed (internal error)";
    }
}
