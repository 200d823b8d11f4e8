/*
 * test_sign.c: Standard Webhooks v1 signing and verification.
 *
 * The vectors come from outside our code: the official one from the Standard
 * Webhooks libraries' test suites, the others computed with
 * `openssl dgst -sha256 -mac HMAC` over the exact "id.timestamp.body" bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "delivery/sign.h"

/* The official vector (standard-webhooks libraries, every language). */
#define OFF_KEY "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define OFF_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define OFF_TS 1614265330
#define OFF_BODY "{\"test\": 2432232314}"
#define OFF_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Key bytes 0x00..0x1f, as a breakhook webhook key would be. */
#define K32 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define UUID "7f1c2a4e-0d1b-4c5e-9a8f-2b3c4d5e6f70"
#define TS2 1767225600
#define DEL_BODY "{\"changeType\":\"Delete\",\"data\":{\"changeVersion\":\"0000000000000000002A\",\"id\":42}}"
#define DEL_SIG "v1,SmjQQG6vc4FAMn3LQ1Ea4dLyog9VdomKzdre+dyLbLA="
#define UTF8_BODY "{\"name\":\"Pause caf\xc3\xa9 \xe2\x98\x95 \xe6\x97\xa5\xe6\x9c\xac\"}"
#define UTF8_SIG "v1,xVAsSDnElRt4Al9K2jM/43ggHdk1mgiRSjpGUb2hQ8A="
#define EMPTY_SIG "v1,cyKFp+kEuukceU9t6TSf6xZc3X1y5UBA2FuJCx+ktV8="

typedef struct key {
    unsigned char b[SIGN_KEY_MAX];
    size_t n;
} tkey_t;

static tkey_t key_of(const char *whsec)
{
    tkey_t k;
    assert_int_equal(crypto_whsec_parse(whsec, k.b, sizeof(k.b), &k.n), 0);
    return k;
}

static sign_headers_t hdrs(const char *id, const char *ts, const char *sig)
{
    sign_headers_t h = { slice_from_cstr(id), slice_from_cstr(ts), slice_from_cstr(sig) };
    return h;
}

/* sign_verify on C strings. */
static int verify(const tkey_t *k, const char *id, const char *ts, const char *sig,
                  const char *body, int64_t now, int64_t tol)
{
    sign_headers_t h = hdrs(id, ts, sig);
    return sign_verify(k->b, k->n, &h, body, strlen(body), now, tol);
}

static void test_official_vector(void **state)
{
    (void)state;
    tkey_t k = key_of(OFF_KEY);
    assert_int_equal(k.n, 24);
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(k.b, k.n, OFF_ID, OFF_TS, OFF_BODY, strlen(OFF_BODY), sig), 0);
    assert_string_equal(sig, OFF_SIG);
    assert_int_equal(strlen(sig), SIGN_V1_LEN);
    assert_int_equal(verify(&k, OFF_ID, "1614265330", OFF_SIG, OFF_BODY, OFF_TS, 300), 0);
}

static void test_openssl_vectors(void **state)
{
    (void)state;
    tkey_t k = key_of(K32);
    assert_int_equal(k.n, 32);
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(k.b, k.n, UUID, TS2, DEL_BODY, strlen(DEL_BODY), sig), 0);
    assert_string_equal(sig, DEL_SIG);
    assert_int_equal(sign_v1(k.b, k.n, UUID, TS2, UTF8_BODY, strlen(UTF8_BODY), sig), 0);
    assert_string_equal(sig, UTF8_SIG);
    /* An empty body signs "evt_1.0." (and NULL is fine for no bytes). */
    assert_int_equal(sign_v1(k.b, k.n, "evt_1", 0, NULL, 0, sig), 0);
    assert_string_equal(sig, EMPTY_SIG);
    assert_int_equal(verify(&k, "evt_1", "0", EMPTY_SIG, "", 0, 300), 0);
}

/* A prepared key signs exactly as sign_v1, message after message (each call starts
 * a new message with the same key), and refuses what sign_v1 refuses. */
static void test_prepared_key(void **state)
{
    (void)state;
    tkey_t k = key_of(K32), off = key_of(OFF_KEY);
    sign_key_t *sk = NULL, *so = NULL;
    assert_int_equal(sign_key_new(k.b, k.n, &sk), 0);
    assert_int_equal(sign_key_new(off.b, off.n, &so), 0);
    char sig[SIGN_V1_LEN + 1], want[SIGN_V1_LEN + 1];
    for (int round = 0; round < 3; round++) {
        assert_int_equal(sign_v1_key(sk, UUID, TS2, DEL_BODY, strlen(DEL_BODY), sig), 0);
        assert_string_equal(sig, DEL_SIG);
        assert_int_equal(sign_v1_key(sk, UUID, TS2, UTF8_BODY, strlen(UTF8_BODY), sig), 0);
        assert_string_equal(sig, UTF8_SIG);
        assert_int_equal(sign_v1_key(sk, "evt_1", 0, NULL, 0, sig), 0);
        assert_string_equal(sig, EMPTY_SIG);
        assert_int_equal(sign_v1_key(so, OFF_ID, OFF_TS, OFF_BODY, strlen(OFF_BODY), sig), 0);
        assert_string_equal(sig, OFF_SIG);
    }
    /* Timestamps of every length, against the unprepared path. */
    const int64_t stamps[] = { 0, 9, 10, 99, 1614265330, INT64_MAX };
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        assert_int_equal(sign_v1(k.b, k.n, UUID, stamps[i], "x", 1, want), 0);
        assert_int_equal(sign_v1_key(sk, UUID, stamps[i], "x", 1, sig), 0);
        assert_string_equal(sig, want);
    }
    assert_int_equal(sign_v1_key(sk, "", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1_key(sk, "a.b", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1_key(sk, "id", -1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1_key(NULL, "id", 1, "", 0, sig), BH_EINVAL);
    sign_key_free(sk);
    sign_key_free(so);
    sign_key_free(NULL);
    assert_int_equal(sign_key_new(k.b, 0, &sk), BH_EINVAL);
    assert_null(sk);
    assert_int_equal(sign_key_new(k.b, SIGN_KEY_MAX + 1, &sk), BH_EINVAL);
}

static void test_sign_rejects_bad_arguments(void **state)
{
    (void)state;
    tkey_t k = key_of(K32);
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(k.b, 0, "id", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(k.b, SIGN_KEY_MAX + 1, "id", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(NULL, 32, "id", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(k.b, k.n, "", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(k.b, k.n, "a.b", 1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(k.b, k.n, "id", -1, "", 0, sig), BH_EINVAL);
    assert_int_equal(sign_v1(k.b, k.n, "id", 1, NULL, 3, sig), BH_EINVAL);
    char long_id[SIGN_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(sign_v1(k.b, k.n, long_id, 1, "", 0, sig), BH_EINVAL);
    long_id[SIGN_ID_MAX] = '\0';
    assert_int_equal(sign_v1(k.b, k.n, long_id, 1, "", 0, sig), 0);
    /* The largest key the scheme allows works. */
    unsigned char big[SIGN_KEY_MAX];
    memset(big, 0x5a, sizeof(big));
    assert_int_equal(sign_v1(big, sizeof(big), "id", 1, "x", 1, sig), 0);
    sign_headers_t h = hdrs("id", "1", sig);
    assert_int_equal(sign_verify(big, sizeof(big), &h, "x", 1, 1, 300), 0);
}

static void test_multiple_signatures(void **state)
{
    (void)state;
    tkey_t k = key_of(OFF_KEY);
    const char *ts = "1614265330";
    /* Rotation: the good one anywhere in the list. */
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,Zm9vYmFy " OFF_SIG, OFF_BODY, OFF_TS, 300), 0);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG " v1,Zm9vYmFy", OFF_BODY, OFF_TS, 300), 0);
    assert_int_equal(
        verify(&k, OFF_ID, ts, "v1a,abcdef  v1,Zm9vYmFy   " OFF_SIG "  ", OFF_BODY, OFF_TS, 300), 0);
    /* Other versions are skipped, even when their text would match. */
    assert_int_equal(verify(&k, OFF_ID, ts, "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                            OFF_BODY, OFF_TS, 300),
                     SIGN_ENO_V1);
    assert_int_equal(verify(&k, OFF_ID, ts, "v2,abc", OFF_BODY, OFF_TS, 300), SIGN_ENO_V1);
    assert_int_equal(verify(&k, OFF_ID, ts, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", OFF_BODY,
                            OFF_TS, 300),
                     SIGN_ENO_V1);
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,Zm9vYmFy v1,YmFyYmF6", OFF_BODY, OFF_TS, 300),
                     SIGN_ENO_MATCH);
    /* The entries are split on spaces only: a comma list is one wrong entry. */
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,Zm9vYmFy," OFF_SIG, OFF_BODY, OFF_TS, 300),
                     SIGN_ENO_MATCH);
    /* A v1 entry that is a prefix or an extension of the right one does not match. */
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
                            OFF_BODY, OFF_TS, 300),
                     SIGN_ENO_MATCH);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG "A", OFF_BODY, OFF_TS, 300), SIGN_ENO_MATCH);
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,", OFF_BODY, OFF_TS, 300), SIGN_ENO_MATCH);
}

static void test_tolerance_edges(void **state)
{
    (void)state;
    tkey_t k = key_of(OFF_KEY);
    const char *ts = "1614265330";
    /* Both edges are inclusive; one second past either is refused. */
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS + 300, 300), 0);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS + 301, 300), SIGN_ETOO_OLD);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS - 300, 300), 0);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS - 301, 300), SIGN_ETOO_NEW);
    /* A one-second window. */
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS + 1, 1), 0);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS + 2, 1), SIGN_ETOO_OLD);
    /* Tolerance 0 disables the window: a capture from years ago still verifies. */
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, OFF_TS + 5 * 365 * 86400LL, 0), 0);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, 0, 0), 0);
    /* The window is checked before the MAC: a stale delivery is stale even if forged. */
    assert_int_equal(verify(&k, OFF_ID, ts, "v1,Zm9v", OFF_BODY, OFF_TS + 1000, 300),
                     SIGN_ETOO_OLD);
    /* Extreme values neither overflow nor pass. */
    assert_int_equal(verify(&k, OFF_ID, "9223372036854775807", OFF_SIG, OFF_BODY, 0, 300),
                     SIGN_ETOO_NEW);
    assert_int_equal(verify(&k, OFF_ID, "0", OFF_SIG, OFF_BODY, INT64_MAX, 300), SIGN_ETOO_OLD);
    assert_int_equal(verify(&k, OFF_ID, ts, OFF_SIG, OFF_BODY, -5, 300), SIGN_ETOO_NEW);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    tkey_t k = key_of(OFF_KEY);
    const int64_t now = OFF_TS;
    static const char *const bad_ts[] = { "abc", "-1614265330", "+1614265330", "1614265330.0",
                                          "1614265330 ", " 1614265330", "1e9", "0x10",
                                          "92233720368547758080", "1614265330\n" };
    for (size_t i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++)
        assert_int_equal(verify(&k, OFF_ID, bad_ts[i], OFF_SIG, OFF_BODY, now, 300),
                         SIGN_EBAD_TIMESTAMP);
    /* Missing (NULL) and empty headers. */
    sign_headers_t h = hdrs(OFF_ID, "1614265330", OFF_SIG);
    h.id = SLICE_NULL;
    assert_int_equal(sign_verify(k.b, k.n, &h, OFF_BODY, strlen(OFF_BODY), now, 300), SIGN_ENO_ID);
    h = hdrs(OFF_ID, "1614265330", OFF_SIG);
    h.timestamp = SLICE_NULL;
    assert_int_equal(sign_verify(k.b, k.n, &h, OFF_BODY, strlen(OFF_BODY), now, 300),
                     SIGN_ENO_TIMESTAMP);
    h = hdrs(OFF_ID, "1614265330", OFF_SIG);
    h.signature = SLICE_NULL;
    assert_int_equal(sign_verify(k.b, k.n, &h, OFF_BODY, strlen(OFF_BODY), now, 300),
                     SIGN_ENO_SIGNATURE);
    assert_int_equal(verify(&k, "", "1614265330", OFF_SIG, OFF_BODY, now, 300), SIGN_ENO_ID);
    assert_int_equal(verify(&k, OFF_ID, "", OFF_SIG, OFF_BODY, now, 300), SIGN_ENO_TIMESTAMP);
    assert_int_equal(verify(&k, OFF_ID, "1614265330", "", OFF_BODY, now, 300), SIGN_ENO_SIGNATURE);
    assert_int_equal(verify(&k, "msg.1", "1614265330", OFF_SIG, OFF_BODY, now, 300), SIGN_EBAD_ID);
    /* Bad keys. */
    assert_int_equal(sign_verify(k.b, 0, &h, "", 0, now, 300), BH_EINVAL);
    assert_int_equal(sign_verify(NULL, 3, &h, "", 0, now, 300), BH_EINVAL);
    /* Every code has its own message. */
    static const int codes[] = { 0, SIGN_ENO_ID, SIGN_ENO_TIMESTAMP, SIGN_ENO_SIGNATURE,
                                 SIGN_EBAD_ID, SIGN_EBAD_TIMESTAMP, SIGN_ETOO_OLD, SIGN_ETOO_NEW,
                                 SIGN_ENO_V1, SIGN_ENO_MATCH };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        for (size_t j = i + 1; j < sizeof(codes) / sizeof(codes[0]); j++)
            assert_string_not_equal(sign_strerror(codes[i]), sign_strerror(codes[j]));
    assert_string_equal(sign_strerror(0), "valid");
    assert_non_null(sign_strerror(-12345));
}

static void test_tampering(void **state)
{
    (void)state;
    tkey_t k = key_of(K32);
    const char *ts = "1767225600";
    assert_int_equal(verify(&k, UUID, ts, DEL_SIG, DEL_BODY, TS2, 300), 0);
    /* Each byte of the body matters. */
    char body[sizeof(DEL_BODY)];
    for (size_t i = 0; i < strlen(DEL_BODY); i++) {
        memcpy(body, DEL_BODY, sizeof(body));
        body[i] ^= 0x01;
        assert_int_equal(verify(&k, UUID, ts, DEL_SIG, body, TS2, 300), SIGN_ENO_MATCH);
    }
    /* A body cut short, or with a byte appended (trailing newline). */
    sign_headers_t h = hdrs(UUID, ts, DEL_SIG);
    assert_int_equal(sign_verify(k.b, k.n, &h, DEL_BODY, strlen(DEL_BODY) - 1, TS2, 300),
                     SIGN_ENO_MATCH);
    assert_int_equal(verify(&k, UUID, ts, DEL_SIG, DEL_BODY "\n", TS2, 300), SIGN_ENO_MATCH);
    /* Another id, another timestamp (inside the window), the same body. */
    assert_int_equal(verify(&k, "7f1c2a4e-0d1b-4c5e-9a8f-2b3c4d5e6f71", ts, DEL_SIG, DEL_BODY,
                            TS2, 300),
                     SIGN_ENO_MATCH);
    assert_int_equal(verify(&k, UUID, "1767225601", DEL_SIG, DEL_BODY, TS2, 300), SIGN_ENO_MATCH);
    /* The same instant written with a leading zero is another text: not signed. */
    assert_int_equal(verify(&k, UUID, "01767225600", DEL_SIG, DEL_BODY, TS2, 300),
                     SIGN_ENO_MATCH);
    /* Moving bytes between the parts cannot keep the signature: "id.ts.body" framing is
     * unambiguous because neither the id nor the timestamp may hold '.'. */
    assert_int_equal(verify(&k, UUID ".1767225600", "", DEL_SIG, DEL_BODY, TS2, 300),
                     SIGN_ENO_TIMESTAMP);
    assert_int_equal(verify(&k, UUID ".1", ts, DEL_SIG, DEL_BODY, TS2, 300), SIGN_EBAD_ID);
    /* A wrong key: the official vector's, and ours with one bit flipped. */
    tkey_t other = key_of(OFF_KEY);
    assert_int_equal(verify(&other, UUID, ts, DEL_SIG, DEL_BODY, TS2, 300), SIGN_ENO_MATCH);
    tkey_t flipped = k;
    flipped.b[31] ^= 0x80;
    assert_int_equal(verify(&flipped, UUID, ts, DEL_SIG, DEL_BODY, TS2, 300), SIGN_ENO_MATCH);
    /* The signature's own text: each character changed, and upper/lower case swapped. */
    char sig[sizeof(DEL_SIG)];
    for (size_t i = 3; i < strlen(DEL_SIG); i++) {
        memcpy(sig, DEL_SIG, sizeof(sig));
        sig[i] = sig[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(&k, UUID, ts, sig, DEL_BODY, TS2, 300), SIGN_ENO_MATCH);
    }
    assert_int_equal(verify(&k, UUID, ts, "V1,SmjQQG6vc4FAMn3LQ1Ea4dLyog9VdomKzdre+dyLbLA=",
                            DEL_BODY, TS2, 300),
                     SIGN_ENO_V1);
}

static void test_sign_then_verify_many(void **state)
{
    (void)state;
    /* Round trips over varied ids, times, keys and bodies (binary included). */
    unsigned char keyb[32];
    char body[300], id[40], ts[24], sig[SIGN_V1_LEN + 1];
    for (unsigned i = 0; i < 200; i++) {
        for (size_t j = 0; j < sizeof(keyb); j++)
            keyb[j] = (unsigned char)(i * 31 + j * 17);
        size_t n = i % sizeof(body);
        for (size_t j = 0; j < n; j++)
            body[j] = (char)(i + j * 13);
        snprintf(id, sizeof(id), "evt-%u", i * 7919);
        int64_t t = 1700000000 + (int64_t)i * 3;
        snprintf(ts, sizeof(ts), "%lld", (long long)t);
        assert_int_equal(sign_v1(keyb, sizeof(keyb), id, t, body, n, sig), 0);
        sign_headers_t h = hdrs(id, ts, sig);
        assert_int_equal(sign_verify(keyb, sizeof(keyb), &h, body, n, t, 300), 0);
        if (n) {
            body[n / 2] ^= 0x40;
            assert_int_equal(sign_verify(keyb, sizeof(keyb), &h, body, n, t, 300), SIGN_ENO_MATCH);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_vector),
        cmocka_unit_test(test_openssl_vectors),
        cmocka_unit_test(test_prepared_key),
        cmocka_unit_test(test_sign_rejects_bad_arguments),
        cmocka_unit_test(test_multiple_signatures),
        cmocka_unit_test(test_tolerance_edges),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_sign_then_verify_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
