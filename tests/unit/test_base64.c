/*
 * test_base64.c: RFC 4648 base64, standard ("+/", padded) and URL-safe ("-_",
 * unpadded on output, padding optional on input).
 *
 * Decoding is strict because tokens, Basic credentials and hash strings go through
 * it: a decoder that accepts two spellings of the same bytes lets a tampered token
 * or hash pass as the original. Several inputs are slices of a longer buffer so a
 * decoder that reads past n gives a wrong answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/base64.h"

/* Decodes the C string s; returns the length or -1. */
static long dec(const char *s, bool url, unsigned char *out)
{
    return base64_decode(s, strlen(s), out, url);
}

static void check_encode(const char *plain, const char *want, bool url)
{
    char out[BASE64_ENCODED_SIZE(64)];
    memset(out, 'X', sizeof(out));
    size_t n = base64_encode(plain, strlen(plain), out, url);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_true(n + 1 <= BASE64_ENCODED_SIZE(strlen(plain)));
}

static void check_decode(const char *enc, const char *want, bool url)
{
    unsigned char out[128];
    memset(out, 0xAA, sizeof(out));
    long n = dec(enc, url, out);
    assert_int_equal(n, (long)strlen(want));
    assert_memory_equal(out, want, strlen(want));
}

/* RFC 4648 §10. */
static const struct {
    const char *plain, *std, *url;
} rfc_vectors[] = {
    { "", "", "" },
    { "f", "Zg==", "Zg" },
    { "fo", "Zm8=", "Zm8" },
    { "foo", "Zm9v", "Zm9v" },
    { "foob", "Zm9vYg==", "Zm9vYg" },
    { "fooba", "Zm9vYmE=", "Zm9vYmE" },
    { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void test_rfc4648_vectors_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
        check_encode(rfc_vectors[i].plain, rfc_vectors[i].std, false);
        check_encode(rfc_vectors[i].plain, rfc_vectors[i].url, true);
    }
}

static void test_rfc4648_vectors_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
        check_decode(rfc_vectors[i].std, rfc_vectors[i].plain, false);
        check_decode(rfc_vectors[i].url, rfc_vectors[i].plain, true);
        /* The URL alphabet takes padding too, when it is right. */
        check_decode(rfc_vectors[i].std, rfc_vectors[i].plain, true);
    }
}

/* The two alphabets differ only in the last two characters: bytes whose groups are
 * 62 and 63 show which one was used. */
static void test_alphabet_specific_chars(void **state)
{
    (void)state;
    static const unsigned char b62[] = { 0xfb, 0xef, 0xbe };      /* 62 62 62 62 */
    static const unsigned char b63[] = { 0xff, 0xff, 0xff };      /* 63 63 63 63 */
    static const unsigned char two[] = { 0xfb, 0xff };            /* 62 63 60 */
    char out[16];
    assert_int_equal(base64_encode(b62, 3, out, false), 4);
    assert_string_equal(out, "++++");
    assert_int_equal(base64_encode(b62, 3, out, true), 4);
    assert_string_equal(out, "----");
    assert_int_equal(base64_encode(b63, 3, out, false), 4);
    assert_string_equal(out, "////");
    assert_int_equal(base64_encode(b63, 3, out, true), 4);
    assert_string_equal(out, "____");
    assert_int_equal(base64_encode(two, 2, out, false), 4);
    assert_string_equal(out, "+/8=");
    assert_int_equal(base64_encode(two, 2, out, true), 3);
    assert_string_equal(out, "-_8");

    unsigned char raw[16];
    assert_int_equal(dec("+/8=", false, raw), 2);
    assert_memory_equal(raw, two, 2);
    assert_int_equal(dec("-_8", true, raw), 2);
    assert_memory_equal(raw, two, 2);
    /* Each alphabet refuses the other's characters. */
    assert_int_equal(dec("-_8=", false, raw), -1);
    assert_int_equal(dec("----", false, raw), -1);
    assert_int_equal(dec("____", false, raw), -1);
    assert_int_equal(dec("+/8", true, raw), -1);
    assert_int_equal(dec("++++", true, raw), -1);
    assert_int_equal(dec("////", true, raw), -1);
}

static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    unsigned char in[256], back[256 + 3];
    char enc[BASE64_ENCODED_SIZE(256)];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof(in); len++) {
        for (int url = 0; url <= 1; url++) {
            size_t n = base64_encode(in, len, enc, url);
            assert_int_equal(strlen(enc), n);
            /* Padded length for standard, exact ceil(8 len / 6) for URL. */
            assert_int_equal(n, url ? (len * 8 + 5) / 6 : (len + 2) / 3 * 4);
            long m = base64_decode(enc, n, back, url);
            assert_int_equal(m, (long)len);
            if (len)
                assert_memory_equal(back, in, len);
        }
    }
}

static void test_decode_reads_only_n_bytes(void **state)
{
    (void)state;
    unsigned char out[32];
    /* "Zm9v" followed by more valid text: only the first 4 count. */
    assert_int_equal(base64_decode("Zm9vYmFy", 4, out, false), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(base64_decode("Zm8=XXXX", 4, out, false), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(base64_decode("Zm8!", 3, out, true), 2);
    /* Stray bytes right after n make no difference, invalid ones inside n do. */
    assert_int_equal(base64_decode("Zm9v!!!!", 4, out, true), 3);
    assert_int_equal(base64_decode("Zm9v!!!!", 5, out, true), -1);
    assert_int_equal(base64_decode("", 0, out, false), 0);
    assert_int_equal(base64_decode("", 0, out, true), 0);
}

static void test_strict_bad_chars(void **state)
{
    (void)state;
    unsigned char out[32];
    static const char *const bad[] = {
        "Zm9v!A==", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9v ", "Zm.v", "Zm9\x80", "Zm9v\t",
        "Zm*v", "====", "Zm9v====",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dec(bad[i], false, out), -1);
        assert_int_equal(dec(bad[i], true, out), -1);
    }
    /* A NUL byte inside the input. */
    assert_int_equal(base64_decode("Zm\0v", 4, out, false), -1);
    assert_int_equal(base64_decode("Zm\0v", 4, out, true), -1);
    assert_int_equal(base64_decode("Zg\0=", 4, out, false), -1);
}

static void test_strict_bad_padding(void **state)
{
    (void)state;
    unsigned char out[32];
    /* Standard alphabet: padding is required and must be exactly right. */
    static const char *const bad_std[] = {
        "Zg",     /* missing padding */
        "Zg=",    /* short padding */
        "Zm8",    /* missing padding */
        "Zg===",  /* too much */
        "Zm8==",  /* too much */
        "Zm9v=",  /* padding after a full quantum */
        "Zm9v==", "=Zg=", "Zg==Zg==", /* padding in the middle */
        "Z===",   /* one character is never a whole byte */
        "Z",      "Zm9vY", "Zm9vY===",
        "=",      "==",
    };
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
        long n = dec(bad_std[i], false, out);
        if (n != -1)
            fail_msg("standard decode of \"%s\" gave %ld, want -1", bad_std[i], n);
    }
    /* URL alphabet: padding optional, but when present it must complete the quantum. */
    static const char *const bad_url[] = {
        "Zg=", "Zm8==", "Zg===", "Zm9v=", "Zm9v==", "Z", "Zm9vY", "Z===", "=Zg", "Zg==Zg",
        "=", "==",
    };
    for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
        long n = dec(bad_url[i], true, out);
        if (n != -1)
            fail_msg("URL decode of \"%s\" gave %ld, want -1", bad_url[i], n);
    }
}

/* RFC 4648 §3.5: the unused bits of the last character must be zero; otherwise
 * several strings decode to the same bytes. */
static void test_strict_non_canonical(void **state)
{
    (void)state;
    unsigned char out[32];
    /* "f" is Zg: 'h' (33) leaves low bits 0001 set. */
    assert_int_equal(dec("Zg==", false, out), 1);
    assert_int_equal(dec("Zh==", false, out), -1);
    assert_int_equal(dec("Zh", true, out), -1);
    assert_int_equal(dec("Zv", true, out), -1);
    /* "fo" is Zm8: '9' (61) leaves low bits 01 set. */
    assert_int_equal(dec("Zm8=", false, out), 2);
    assert_int_equal(dec("Zm9=", false, out), -1);
    assert_int_equal(dec("Zm9", true, out), -1);
    assert_int_equal(dec("Zm_", true, out), -1);
    /* 0xff: "/w==" / "_w"; "/x" has a stray bit. */
    assert_int_equal(dec("/w==", false, out), 1);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(dec("/x==", false, out), -1);
    assert_int_equal(dec("_w", true, out), 1);
    assert_int_equal(dec("_x", true, out), -1);
    assert_int_equal(dec("__", true, out), -1);
    /* A length of 4k+1 leaves a lone character: never valid, even when its bits are
     * all zero. */
    assert_int_equal(dec("A", true, out), -1);
    assert_int_equal(dec("Zm9vA", true, out), -1);
    assert_int_equal(dec("AAAAA", true, out), -1);
    assert_int_equal(dec("AAAAAAAAA", true, out), -1);
    assert_int_equal(dec("AAAAA", false, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors_encode),
        cmocka_unit_test(test_rfc4648_vectors_decode),
        cmocka_unit_test(test_alphabet_specific_chars),
        cmocka_unit_test(test_round_trip_all_bytes),
        cmocka_unit_test(test_decode_reads_only_n_bytes),
        cmocka_unit_test(test_strict_bad_chars),
        cmocka_unit_test(test_strict_bad_padding),
        cmocka_unit_test(test_strict_non_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
