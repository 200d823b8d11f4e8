/*
 * token.c: access tokens as HS256 JWTs (libjwt) with a key id.
 *
 * libjwt 1.10 happily decodes an unsigned "alg: none" token when given no key
 * and does not look at exp/nbf (PITFALLS.md). So the header is read first, only
 * HS256 with a known kid goes on, jwt_decode always gets the key, the algorithm
 * is checked again afterwards, and the time claims are compared here with the
 * injectable clock.
 */
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/base64.h"

#define NBF_LEEWAY_S 30

void auth_keyring_init(auth_keyring_t *k)
{
    pthread_mutex_init(&k->lock, NULL);
    k->n = 0;
}

void auth_keyring_deinit(auth_keyring_t *k)
{
    OPENSSL_cleanse(k->keys, sizeof(k->keys));
    pthread_mutex_destroy(&k->lock);
}

void auth_keyring_set(auth_keyring_t *k, const store_signing_key_t *keys, size_t n)
{
    if (n > AUTH_KEYRING_MAX)
        n = AUTH_KEYRING_MAX;
    pthread_mutex_lock(&k->lock);
    if (n)
        memcpy(k->keys, keys, n * sizeof(*keys));
    k->n = n;
    pthread_mutex_unlock(&k->lock);
}

size_t auth_keys_prune(store_signing_key_t *keys, size_t n, int64_t now_ms, int64_t keep_ms)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!keys[i].retired_at_ms || now_ms - keys[i].retired_at_ms < keep_ms)
            keys[k++] = keys[i];
    return k;
}

int auth_signing_key_new(bh_rand_t *r, int64_t now_ms, store_signing_key_t *out)
{
    unsigned char id[12];
    memset(out, 0, sizeof(*out));
    if (rand_bytes(r, id, sizeof(id)) || rand_bytes(r, out->secret, sizeof(out->secret)))
        return BH_EIO;
    base64_encode(id, sizeof(id), out->kid, true);
    out->created_at_ms = now_ms;
    return 0;
}

int auth_token_issue(auth_keyring_t *k, bh_rand_t *r, const auth_claims_t *c, char **token_out)
{
    store_signing_key_t key;
    pthread_mutex_lock(&k->lock);
    bool have = k->n > 0;
    if (have)
        key = k->keys[0];
    pthread_mutex_unlock(&k->lock);
    if (!have)
        return BH_EINTERNAL;

    unsigned char jti_raw[16];
    char jti[BASE64_ENCODED_SIZE(16)];
    if (rand_bytes(r, jti_raw, sizeof(jti_raw)))
        return BH_EIO;
    base64_encode(jti_raw, sizeof(jti_raw), jti, true);

    jwt_t *jwt = NULL;
    int rc = BH_ENOMEM;
    if (jwt_new(&jwt))
        goto out;
    if (jwt_add_header(jwt, "kid", key.kid) || jwt_add_grant(jwt, "tnt", c->tenant) ||
        jwt_add_grant_int(jwt, "tid", (long)c->tenant_id) ||
        jwt_add_grant(jwt, "sub", c->client_id) || jwt_add_grant(jwt, "scope", c->scope) ||
        jwt_add_grant_int(jwt, "iat", (long)c->iat) || jwt_add_grant_int(jwt, "nbf", (long)c->nbf) ||
        jwt_add_grant_int(jwt, "exp", (long)c->exp) || jwt_add_grant(jwt, "jti", jti) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, key.secret, (int)sizeof(key.secret)))
        goto out;
    *token_out = jwt_encode_str(jwt);
    rc = *token_out ? 0 : BH_ENOMEM;
out:
    jwt_free(jwt);
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

/* Reads alg and kid from the token's header segment without trusting anything. */
static auth_token_status_t read_header(const char *token, size_t len, char kid[40])
{
    const char *dot = memchr(token, '.', len);
    if (!dot || dot == token || (size_t)(dot - token) > 1024)
        return AUTH_TOKEN_MALFORMED;
    unsigned char raw[1024];
    long n = base64_decode(token, (size_t)(dot - token), raw, true);
    if (n <= 0)
        return AUTH_TOKEN_MALFORMED;
    json_error_t err;
    json_t *h = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(h)) {
        json_decref(h);
        return AUTH_TOKEN_MALFORMED;
    }
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *k = json_string_value(json_object_get(h, "kid"));
    auth_token_status_t st = AUTH_TOKEN_OK;
    if (!alg || strcmp(alg, "HS256") != 0)
        st = AUTH_TOKEN_BAD_ALG;
    else if (!k || strlen(k) >= 40)
        st = AUTH_TOKEN_UNKNOWN_KEY;
    else
        snprintf(kid, 40, "%s", k);
    json_decref(h);
    return st;
}

static bool find_key(auth_keyring_t *k, const char *kid, int64_t now_ms, int64_t max_ttl_s,
                     store_signing_key_t *out)
{
    bool found = false;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < k->n && !found; i++) {
        const store_signing_key_t *key = &k->keys[i];
        if (strcmp(key->kid, kid) != 0)
            continue;
        /* A retired key still verifies the tokens it signed until they have expired;
         * the hour of grace covers nodes that signed with it until their next key
         * refresh (exp is still checked below, so no token lives longer). */
        if (key->retired_at_ms &&
            now_ms > key->retired_at_ms + (max_ttl_s + AUTH_KEY_GRACE_S) * 1000)
            break;
        *out = *key;
        found = true;
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

static bool copy_claim(jwt_t *jwt, const char *name, char *out, size_t n)
{
    const char *v = jwt_get_grant(jwt, name);
    if (!v || strlen(v) >= n)
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

/* The integer claims, each required to be a JSON integer. libjwt's
 * jwt_get_grant_int cannot tell a missing or non-integer claim from 0 reliably
 * (it resets errno on success), so the claims are read from their JSON. */
static bool int_claims(jwt_t *jwt, auth_claims_t *out)
{
    char *text = jwt_get_grants_json(jwt, NULL);
    if (!text)
        return false;
    json_error_t err;
    json_t *g = json_loads(text, 0, &err);
    free(text);
    bool ok = json_is_object(g);
    const char *names[] = { "tid", "iat", "nbf", "exp" };
    int64_t *dst[] = { &out->tenant_id, &out->iat, &out->nbf, &out->exp };
    for (size_t i = 0; ok && i < 4; i++) {
        json_t *v = json_object_get(g, names[i]);
        ok = json_is_integer(v);
        if (ok)
            *dst[i] = (int64_t)json_integer_value(v);
    }
    json_decref(g);
    return ok;
}

auth_token_status_t auth_token_verify(auth_keyring_t *k, const char *token, size_t len,
                                      int64_t now_ms, int64_t max_ttl_s, auth_claims_t *out)
{
    char buf[4097], kid[40];
    if (len == 0 || len >= sizeof(buf) || memchr(token, '\0', len))
        return AUTH_TOKEN_MALFORMED;
    auth_token_status_t st = read_header(token, len, kid);
    if (st != AUTH_TOKEN_OK)
        return st;
    store_signing_key_t key;
    if (!find_key(k, kid, now_ms, max_ttl_s, &key))
        return AUTH_TOKEN_UNKNOWN_KEY;
    memcpy(buf, token, len);
    buf[len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, buf, key.secret, (int)sizeof(key.secret));
    OPENSSL_cleanse(&key, sizeof(key));
    if (rc || !jwt) {
        jwt_free(jwt);
        return rc == EINVAL ? AUTH_TOKEN_BAD_SIGNATURE : AUTH_TOKEN_MALFORMED;
    }
    st = AUTH_TOKEN_OK;
    memset(out, 0, sizeof(*out));
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        st = AUTH_TOKEN_BAD_ALG;
        goto out;
    }
    if (!int_claims(jwt, out) || !copy_claim(jwt, "tnt", out->tenant, sizeof(out->tenant)) ||
        !copy_claim(jwt, "sub", out->client_id, sizeof(out->client_id)) ||
        !copy_claim(jwt, "scope", out->scope, sizeof(out->scope)) ||
        !copy_claim(jwt, "jti", out->jti, sizeof(out->jti)) || out->tenant_id <= 0) {
        st = AUTH_TOKEN_MALFORMED;
        goto out;
    }
    int64_t now_s = now_ms / 1000;
    if (out->exp <= now_s)
        st = AUTH_TOKEN_EXPIRED;
    else if (out->nbf > now_s + NBF_LEEWAY_S)
        st = AUTH_TOKEN_NOT_YET_VALID;
out:
    jwt_free(jwt);
    return st;
}

const char *auth_token_status_str(auth_token_status_t s)
{
    switch (s) {
    case AUTH_TOKEN_OK: return "valid";
    case AUTH_TOKEN_MALFORMED: return "the access token is malformed";
    case AUTH_TOKEN_BAD_ALG: return "the access token's algorithm is not accepted";
    case AUTH_TOKEN_UNKNOWN_KEY: return "the access token was signed by an unknown key";
    case AUTH_TOKEN_BAD_SIGNATURE: return "the access token's signature is invalid";
    case AUTH_TOKEN_EXPIRED: return "the access token has expired";
    case AUTH_TOKEN_NOT_YET_VALID: return "the access token is not valid yet";
    }
    return "the access token is invalid";
}
