/*
 * test_crypto.c: webhook keys at rest and their text forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/crypto.h"

static const char HEX_MASTER[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void fill(unsigned char *k, unsigned char seed)
{
    for (size_t i = 0; i < CRYPTO_WEBHOOK_KEY_LEN; i++)
        k[i] = (unsigned char)(seed + i * 7);
}

static void test_master_parse(void **state)
{
    (void)state;
    crypto_master_t m;
    assert_int_equal(crypto_master_parse(HEX_MASTER, &m), 0);
    assert_true(m.set);
    assert_int_equal(m.key[0], 0);
    assert_int_equal(m.key[31], 0x1f);
    /* The same bytes in base64. */
    crypto_master_t b;
    assert_int_equal(crypto_master_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &b), 0);
    assert_memory_equal(m.key, b.key, sizeof(m.key));
    assert_int_equal(crypto_master_parse("", &m), 0);
    assert_false(m.set);
    assert_int_equal(crypto_master_parse(NULL, &m), 0);
    assert_false(m.set);
    assert_int_equal(crypto_master_parse("short", &m), BH_EINVAL);
    assert_int_equal(crypto_master_parse("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                         &m),
                     BH_EINVAL);
    /* base64 of 31 bytes is not a key. */
    assert_int_equal(crypto_master_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", &m),
                     BH_EINVAL);
}

static void test_seal_open_encrypted(void **state)
{
    (void)state;
    crypto_master_t m, other;
    bh_rand_t r;
    rand_fake_init(&r, 9);
    assert_int_equal(crypto_master_parse(HEX_MASTER, &m), 0);
    other = m;
    other.key[5] ^= 1;
    unsigned char key[32], back[32], sealed[CRYPTO_SEALED_MAX];
    size_t n = 0;
    fill(key, 3);
    const char *id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert_int_equal(crypto_key_seal(&m, &r, 7, id, key, sealed, &n), 0);
    assert_int_equal(n, 61);
    /* The key bytes do not appear in what is stored. */
    for (size_t i = 0; i + 8 <= n; i++)
        assert_memory_not_equal(sealed + i, key, 8);
    assert_int_equal(crypto_key_open(&m, 7, id, sealed, n, back), 0);
    assert_memory_equal(key, back, 32);
    /* Another master key, tenant or webhook id: refused. */
    assert_int_equal(crypto_key_open(&other, 7, id, sealed, n, back), BH_EAUTH);
    assert_int_equal(crypto_key_open(&m, 8, id, sealed, n, back), BH_EAUTH);
    assert_int_equal(crypto_key_open(&m, 7, "1f8fad5b-d9cb-469f-a165-70867728950e", sealed, n, back),
                     BH_EAUTH);
    /* Any flipped byte: refused. */
    for (size_t i = 1; i < n; i++) {
        sealed[i] ^= 0x40;
        assert_int_equal(crypto_key_open(&m, 7, id, sealed, n, back), BH_EAUTH);
        sealed[i] ^= 0x40;
    }
    /* Encrypted, but the server runs without a master key: a clear error. */
    crypto_master_t none = { 0 };
    assert_int_equal(crypto_key_open(&none, 7, id, sealed, n, back), BH_EINVAL);
}

static void test_seal_open_plain(void **state)
{
    (void)state;
    crypto_master_t none = { 0 }, m;
    bh_rand_t r;
    rand_fake_init(&r, 9);
    assert_int_equal(crypto_master_parse(HEX_MASTER, &m), 0);
    unsigned char key[32], back[32], sealed[CRYPTO_SEALED_MAX];
    size_t n = 0;
    fill(key, 11);
    assert_int_equal(crypto_key_seal(&none, &r, 1, "x", key, sealed, &n), 0);
    assert_int_equal(n, 33);
    assert_int_equal(crypto_key_open(&none, 1, "x", sealed, n, back), 0);
    assert_memory_equal(key, back, 32);
    /* A key stored before a master key was set still opens after. */
    assert_int_equal(crypto_key_open(&m, 1, "x", sealed, n, back), 0);
    assert_memory_equal(key, back, 32);
    assert_int_equal(crypto_key_open(&none, 1, "x", sealed, n - 1, back), BH_EAUTH);
}

static void test_whsec(void **state)
{
    (void)state;
    unsigned char key[32], back[64];
    size_t n = 0;
    char text[CRYPTO_WHSEC_LEN + 1];
    fill(key, 200);
    crypto_whsec_format(key, text);
    assert_int_equal(strlen(text), CRYPTO_WHSEC_LEN);
    assert_memory_equal(text, "whsec_", 6);
    assert_int_equal(crypto_whsec_parse(text, back, sizeof(back), &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(key, back, 32);
    /* The Standard Webhooks test vector's key. */
    assert_int_equal(crypto_whsec_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", back, sizeof(back),
                                        &n),
                     0);
    assert_int_equal(n, 24);
    assert_int_equal(crypto_whsec_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", back, sizeof(back), &n),
                     BH_EINVAL);
    assert_int_equal(crypto_whsec_parse("whsec_", back, sizeof(back), &n), BH_EINVAL);
    assert_int_equal(crypto_whsec_parse("whsec_!!!!", back, sizeof(back), &n), BH_EINVAL);
}

static void test_uuid4(void **state)
{
    (void)state;
    bh_rand_t r;
    rand_fake_init(&r, 1);
    char a[37], b[37];
    assert_int_equal(crypto_uuid4(&r, a), 0);
    assert_int_equal(crypto_uuid4(&r, b), 0);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_parse),
        cmocka_unit_test(test_seal_open_encrypted),
        cmocka_unit_test(test_seal_open_plain),
        cmocka_unit_test(test_whsec),
        cmocka_unit_test(test_uuid4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
