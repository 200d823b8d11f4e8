/*
 * test_token_cache.c: the verified-token cache answers exactly what
 * auth_token_verify would, only faster: same claims for the same token, expiry
 * still enforced, and nothing served for a token that differs in any byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

#define NOW_MS 1800000000000LL

typedef struct fx {
    auth_keyring_t ring;
    bh_rand_t rand;
    auth_token_cache_t *cache;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    store_signing_key_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "k1");
    for (size_t i = 0; i < sizeof(k.secret); i++)
        k.secret[i] = (unsigned char)(7 + i);
    auth_keyring_init(&f->ring);
    auth_keyring_set(&f->ring, &k, 1);
    rand_fake_init(&f->rand, 42);
    f->cache = auth_token_cache_new();
    assert_non_null(f->cache);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    auth_token_cache_free(f->cache);
    auth_keyring_deinit(&f->ring);
    free(f);
    return 0;
}

static char *issue(fx_t *f, const char *client, int64_t ttl_s)
{
    auth_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.tenant, sizeof(c.tenant), "acme");
    c.tenant_id = 3;
    snprintf(c.client_id, sizeof(c.client_id), "%s", client);
    snprintf(c.scope, sizeof(c.scope), "%s", SCOPE_BREAKS_READ);
    c.iat = c.nbf = NOW_MS / 1000;
    c.exp = NOW_MS / 1000 + ttl_s;
    char *t = NULL;
    assert_int_equal(auth_token_issue(&f->ring, &f->rand, &c, &t), 0);
    return t;
}

static void test_hit_gives_same_claims(void **state)
{
    fx_t *f = *state;
    char *t = issue(f, "c1", 600);
    auth_claims_t a, b;
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, strlen(t), NOW_MS, 1800, &a),
                     AUTH_TOKEN_OK);
    /* Second time from the cache: even with the keyring emptied, which proves no
     * verification ran. */
    auth_keyring_set(&f->ring, NULL, 0);
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, strlen(t), NOW_MS + 1000, 1800,
                                             &b),
                     AUTH_TOKEN_OK);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_string_equal(b.client_id, "c1");
    free(t);
}

static void test_expiry_enforced_on_hit(void **state)
{
    fx_t *f = *state;
    char *t = issue(f, "c1", 60);
    auth_claims_t a;
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, strlen(t), NOW_MS, 1800, &a),
                     AUTH_TOKEN_OK);
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, strlen(t), NOW_MS + 59000,
                                             1800, &a),
                     AUTH_TOKEN_OK);
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, strlen(t), NOW_MS + 60000,
                                             1800, &a),
                     AUTH_TOKEN_EXPIRED);
    free(t);
}

static void test_other_bytes_are_verified(void **state)
{
    fx_t *f = *state;
    char *t = issue(f, "c1", 600);
    size_t n = strlen(t);
    auth_claims_t a;
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, n, NOW_MS, 1800, &a),
                     AUTH_TOKEN_OK);
    /* Every single-byte change of the signature is refused, cached or not. */
    const char *sig = strrchr(t, '.') + 1;
    for (size_t i = (size_t)(sig - t); i < n; i++) {
        char saved = t[i];
        t[i] = saved == 'A' ? 'B' : 'A';
        assert_int_not_equal(auth_token_cache_verify(f->cache, &f->ring, t, n, NOW_MS, 1800, &a),
                             AUTH_TOKEN_OK);
        t[i] = saved;
    }
    /* A prefix of a cached token is not the token. */
    assert_int_not_equal(auth_token_cache_verify(f->cache, &f->ring, t, n - 1, NOW_MS, 1800, &a),
                         AUTH_TOKEN_OK);
    free(t);
}

static void test_failures_not_cached(void **state)
{
    fx_t *f = *state;
    char *t = issue(f, "c1", 600);
    size_t n = strlen(t);
    store_signing_key_t saved = f->ring.keys[0];
    auth_claims_t a;
    /* Unknown key first: refused, and the refusal is not remembered. */
    auth_keyring_set(&f->ring, NULL, 0);
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, n, NOW_MS, 1800, &a),
                     AUTH_TOKEN_UNKNOWN_KEY);
    auth_keyring_set(&f->ring, &saved, 1);
    assert_int_equal(auth_token_cache_verify(f->cache, &f->ring, t, n, NOW_MS, 1800, &a),
                     AUTH_TOKEN_OK);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_gives_same_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_enforced_on_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_bytes_are_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_not_cached, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
