/*
 * seal.c: opaque tokens that clients hand back (continuation tokens, later delta
 * tokens). They are authenticated, not encrypted: the payload is ours to read,
 * and any change to it is detected. The MAC key is derived from a signing key
 * and the token's purpose, so a continuation token cannot pass as anything else,
 * and key rotation needs nothing more: the key id travels in the token.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/base64.h"

#define SEAL_PAYLOAD_MAX 1024
#define MAC_LEN 32

static int mac(const unsigned char secret[32], const char *purpose, const char *p, size_t n,
               unsigned char out[MAC_LEN])
{
    unsigned char derived[MAC_LEN];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), secret, 32, (const unsigned char *)purpose, strlen(purpose), derived,
              &len))
        return BH_EIO;
    if (!HMAC(EVP_sha256(), derived, MAC_LEN, (const unsigned char *)p, n, out, &len))
        return BH_EIO;
    OPENSSL_cleanse(derived, sizeof(derived));
    return 0;
}

int auth_seal(auth_keyring_t *k, const char *purpose, const void *payload, size_t n,
              char **token_out)
{
    if (n > SEAL_PAYLOAD_MAX)
        return BH_ETOOBIG;
    store_signing_key_t key;
    pthread_mutex_lock(&k->lock);
    bool have = k->n > 0;
    if (have)
        key = k->keys[0];
    pthread_mutex_unlock(&k->lock);
    if (!have)
        return BH_EINTERNAL;
    size_t kid_len = strlen(key.kid);
    size_t cap = BASE64_ENCODED_SIZE(n) + 1 + kid_len + 1 + BASE64_ENCODED_SIZE(MAC_LEN);
    char *t = malloc(cap);
    if (!t)
        return BH_ENOMEM;
    size_t off = base64_encode(payload, n, t, true);
    t[off++] = '.';
    memcpy(t + off, key.kid, kid_len);
    off += kid_len;
    unsigned char m[MAC_LEN];
    int rc = mac(key.secret, purpose, t, off, m);
    OPENSSL_cleanse(&key, sizeof(key));
    if (rc) {
        free(t);
        return rc;
    }
    t[off++] = '.';
    base64_encode(m, MAC_LEN, t + off, true);
    *token_out = t;
    return 0;
}

int auth_unseal(auth_keyring_t *k, const char *purpose, const char *token, size_t len, void *out,
                size_t cap, size_t *n_out)
{
    if (len == 0 || len > 4 * SEAL_PAYLOAD_MAX)
        return BH_EINVAL;
    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return BH_EINVAL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2)
        return BH_EINVAL;
    size_t kid_len = (size_t)(d2 - d1 - 1);
    unsigned char given[MAC_LEN + 3];
    size_t mac_len = len - (size_t)(d2 + 1 - token);
    if (kid_len == 0 || kid_len >= 40 || mac_len != 43 ||
        base64_decode(d2 + 1, mac_len, given, true) != MAC_LEN)
        return BH_EINVAL;
    store_signing_key_t key;
    bool found = false;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < k->n && !found; i++) {
        if (strlen(k->keys[i].kid) == kid_len && !memcmp(k->keys[i].kid, d1 + 1, kid_len)) {
            key = k->keys[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&k->lock);
    if (!found)
        return BH_EINVAL;
    unsigned char want[MAC_LEN];
    int rc = mac(key.secret, purpose, token, (size_t)(d2 - token), want);
    OPENSSL_cleanse(&key, sizeof(key));
    if (rc || CRYPTO_memcmp(want, given, MAC_LEN) != 0)
        return BH_EINVAL;
    size_t pl = (size_t)(d1 - token);
    unsigned char *tmp = malloc(pl + 3);
    if (!tmp)
        return BH_ENOMEM;
    long n = base64_decode(token, pl, tmp, true);
    if (n < 0 || (size_t)n > cap) {
        free(tmp);
        return BH_EINVAL;
    }
    memcpy(out, tmp, (size_t)n);
    free(tmp);
    *n_out = (size_t)n;
    return 0;
}
