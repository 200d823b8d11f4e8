#include "core/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/base64.h"

#define SEAL_PLAIN 0x00
#define SEAL_AES_GCM 0x01
#define NONCE_LEN 12
#define TAG_LEN 16

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int crypto_master_parse(const char *text, crypto_master_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return 0;
    size_t n = strlen(text);
    if (n == 2 * CRYPTO_MASTER_KEY_LEN) {
        for (size_t i = 0; i < CRYPTO_MASTER_KEY_LEN; i++) {
            int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return BH_EINVAL;
            out->key[i] = (unsigned char)(hi * 16 + lo);
        }
    } else {
        unsigned char raw[CRYPTO_MASTER_KEY_LEN + 4];
        if (n > 48 || base64_decode(text, n, raw, false) != CRYPTO_MASTER_KEY_LEN)
            return BH_EINVAL;
        memcpy(out->key, raw, CRYPTO_MASTER_KEY_LEN);
        OPENSSL_cleanse(raw, sizeof(raw));
    }
    out->set = true;
    return 0;
}

/* The associated data: binds a sealed key to its tenant and webhook. */
static size_t make_aad(int64_t tenant_id, const char *id, char *aad, size_t cap)
{
    int w = snprintf(aad, cap, "breakhook-webhook-key/%lld/%s", (long long)tenant_id, id);
    return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
}

int crypto_key_seal(const crypto_master_t *m, bh_rand_t *r, int64_t tenant_id, const char *id,
                    const unsigned char key[CRYPTO_WEBHOOK_KEY_LEN], unsigned char *out,
                    size_t *out_len)
{
    if (!m->set) {
        out[0] = SEAL_PLAIN;
        memcpy(out + 1, key, CRYPTO_WEBHOOK_KEY_LEN);
        *out_len = 1 + CRYPTO_WEBHOOK_KEY_LEN;
        return 0;
    }
    char aad[128];
    size_t aad_len = make_aad(tenant_id, id, aad, sizeof(aad));
    unsigned char *nonce = out + 1, *ct = out + 1 + NONCE_LEN;
    unsigned char *tag = ct + CRYPTO_WEBHOOK_KEY_LEN;
    if (rand_bytes(r, nonce, NONCE_LEN))
        return BH_EIO;
    int rc = BH_EIO, len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return BH_ENOMEM;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, m->key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)aad_len) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &len, key, CRYPTO_WEBHOOK_KEY_LEN) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;
    out[0] = SEAL_AES_GCM;
    *out_len = 1 + NONCE_LEN + CRYPTO_WEBHOOK_KEY_LEN + TAG_LEN;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

bool crypto_key_is_clear(const unsigned char *sealed, size_t len)
{
    return len == 1 + CRYPTO_WEBHOOK_KEY_LEN && sealed[0] == SEAL_PLAIN;
}

int crypto_key_open(const crypto_master_t *m, int64_t tenant_id, const char *id,
                    const unsigned char *sealed, size_t len,
                    unsigned char key[CRYPTO_WEBHOOK_KEY_LEN])
{
    if (crypto_key_is_clear(sealed, len)) {
        memcpy(key, sealed + 1, CRYPTO_WEBHOOK_KEY_LEN);
        return 0;
    }
    if (len != 1 + NONCE_LEN + CRYPTO_WEBHOOK_KEY_LEN + TAG_LEN || sealed[0] != SEAL_AES_GCM)
        return BH_EAUTH;
    if (!m->set)
        return BH_EINVAL;
    char aad[128];
    size_t aad_len = make_aad(tenant_id, id, aad, sizeof(aad));
    const unsigned char *nonce = sealed + 1, *ct = sealed + 1 + NONCE_LEN;
    unsigned char tag[TAG_LEN];
    memcpy(tag, ct + CRYPTO_WEBHOOK_KEY_LEN, TAG_LEN);
    int rc = BH_EAUTH, n = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return BH_ENOMEM;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, m->key, nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aad_len) != 1 ||
        EVP_DecryptUpdate(ctx, key, &n, ct, CRYPTO_WEBHOOK_KEY_LEN) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, key + n, &n) != 1) {
        OPENSSL_cleanse(key, CRYPTO_WEBHOOK_KEY_LEN);
        goto out;
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

void crypto_whsec_format(const unsigned char key[CRYPTO_WEBHOOK_KEY_LEN], char *out)
{
    memcpy(out, "whsec_", 6);
    base64_encode(key, CRYPTO_WEBHOOK_KEY_LEN, out + 6, false);
}

int crypto_whsec_parse(const char *text, unsigned char *key, size_t cap, size_t *len_out)
{
    if (strncmp(text, "whsec_", 6) != 0)
        return BH_EINVAL;
    size_t n = strlen(text + 6);
    if (n == 0 || n > 4 * ((cap + 2) / 3))
        return BH_EINVAL;
    unsigned char tmp[512];
    if (n * 3 / 4 + 3 > sizeof(tmp))
        return BH_EINVAL;
    long m = base64_decode(text + 6, n, tmp, false);
    if (m <= 0 || (size_t)m > cap)
        return BH_EINVAL;
    memcpy(key, tmp, (size_t)m);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    *len_out = (size_t)m;
    return 0;
}

int crypto_uuid4(bh_rand_t *r, char out[37])
{
    unsigned char b[16];
    if (rand_bytes(r, b, sizeof(b)))
        return BH_EIO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return 0;
}
