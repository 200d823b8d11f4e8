/*
 * secret.c: client credentials and their salted slow hash.
 *
 * PBKDF2-HMAC-SHA256 from OpenSSL with a per-secret 16-byte salt. The stored form
 * names its algorithm and iteration count, so the cost can be raised later
 * without invalidating existing secrets.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/base64.h"

#define SALT_LEN 16
#define HASH_LEN 32

int auth_client_credentials_new(bh_rand_t *r, char client_id[32],
                                char secret[AUTH_SECRET_LEN + 1])
{
    unsigned char sec[32];
    memcpy(client_id, "bh_", 3);
    if (rand_hex(r, client_id + 3, 10) || rand_bytes(r, sec, sizeof(sec)))
        return BH_EIO;
    base64_encode(sec, sizeof(sec), secret, true);
    OPENSSL_cleanse(sec, sizeof(sec));
    return 0;
}

static int derive(const char *secret, size_t len, const unsigned char *salt, size_t salt_len,
                  int iterations, unsigned char out[HASH_LEN])
{
    if (PKCS5_PBKDF2_HMAC(secret, (int)len, salt, (int)salt_len, iterations, EVP_sha256(),
                          HASH_LEN, out) != 1)
        return BH_EIO;
    return 0;
}

int auth_secret_hash(bh_rand_t *r, const char *secret, int iterations, char *out, size_t n)
{
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    char salt64[BASE64_ENCODED_SIZE(SALT_LEN)], hash64[BASE64_ENCODED_SIZE(HASH_LEN)];
    if (iterations < 1000)
        return BH_EINVAL;
    if (rand_bytes(r, salt, sizeof(salt)))
        return BH_EIO;
    if (derive(secret, strlen(secret), salt, sizeof(salt), iterations, hash))
        return BH_EIO;
    base64_encode(salt, sizeof(salt), salt64, true);
    base64_encode(hash, sizeof(hash), hash64, true);
    int w = snprintf(out, n, "pbkdf2-sha256$%d$%s$%s", iterations, salt64, hash64);
    return w < 0 || (size_t)w >= n ? BH_ETOOBIG : 0;
}

bool auth_secret_verify(const char *secret, size_t secret_len, const char *hash)
{
    static const char prefix[] = "pbkdf2-sha256$";
    if (strncmp(hash, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *p = hash + sizeof(prefix) - 1;
    const char *d1 = strchr(p, '$');
    if (!d1)
        return false;
    const char *d2 = strchr(d1 + 1, '$');
    if (!d2)
        return false;
    unsigned long long iter;
    if (!slice_to_u64(slice_make(p, (size_t)(d1 - p)), 10000000, &iter) || iter < 1000)
        return false;
    unsigned char salt[SALT_LEN + 4], want[HASH_LEN + 4], got[HASH_LEN];
    /* Check the segment's length before decoding into the fixed buffer. */
    if ((size_t)(d2 - d1 - 1) > 24)
        return false;
    long sl = base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), salt, true);
    size_t hl_in = strlen(d2 + 1);
    if (sl != SALT_LEN || hl_in > 44)
        return false;
    long hl = base64_decode(d2 + 1, hl_in, want, true);
    if (hl != HASH_LEN)
        return false;
    if (derive(secret, secret_len, salt, SALT_LEN, (int)iter, got))
        return false;
    return CRYPTO_memcmp(got, want, HASH_LEN) == 0;
}
