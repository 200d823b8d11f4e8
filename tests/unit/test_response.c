/*
 * test_response.c: status texts, SPEC error codes and bodies, the response head,
 * and percent-decoding.
 *
 * Error bodies are checked twice: byte for byte where the SPEC fixes the shape, and
 * parsed back with jansson, so escaping mistakes show up as a parse failure or a
 * changed string rather than a text difference that is easy to misread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"

/* ---- error codes and status texts --------------------------------------- */

static void test_error_codes(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *code;
    } spec[] = {
        { 400, "BadRequest" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "NotFound" },
        { 405, "MethodNotAllowed" },
        { 409, "Conflict" },
        { 410, "Gone" },
        { 413, "PayloadTooLarge" },
        { 414, "UriTooLong" },
        { 415, "UnsupportedMediaType" },
        { 429, "TooManyRequests" },
        { 431, "RequestHeaderFieldsTooLarge" },
        { 500, "InternalServerError" },
        { 503, "ServiceUnavailable" },
    };
    for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
        const char *got = http_error_code(spec[i].status);
        assert_non_null(got);
        if (strcmp(got, spec[i].code) != 0)
            fail_msg("http_error_code(%d) = \"%s\", want \"%s\"", spec[i].status, got,
                     spec[i].code);
    }
    /* Statuses without a code of their own fall back by class. */
    assert_string_equal(http_error_code(418), "BadRequest");
    assert_string_equal(http_error_code(599), "InternalServerError");
}

static void test_status_texts(void **state)
{
    (void)state;
    assert_string_equal(http_status_text(200), "OK");
    assert_string_equal(http_status_text(201), "Created");
    assert_string_equal(http_status_text(204), "No Content");
    assert_string_equal(http_status_text(400), "Bad Request");
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_status_text(405), "Method Not Allowed");
    assert_string_equal(http_status_text(414), "URI Too Long");
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_text(503), "Service Unavailable");
    assert_non_null(http_status_text(299));
    assert_true(strlen(http_status_text(299)) > 0);
}

/* ---- error bodies --------------------------------------------------------- */

/* Parses b as one JSON object and returns its "error" member (borrowed from *root). */
static json_t *parse_error(const buf_t *b, json_t **root)
{
    json_error_t jerr;
    *root = json_loadb(buf_cstr(b), b->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        fail_msg("error body does not parse (%s): %s", jerr.text, buf_cstr(b));
    assert_true(json_is_object(*root));
    assert_int_equal(json_object_size(*root), 1);
    json_t *err = json_object_get(*root, "error");
    assert_non_null(err);
    assert_true(json_is_object(err));
    assert_int_equal(json_object_size(err), 3);
    return err;
}

static void test_error_body_exact(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    const char *reasons[] = { "a", "b" };
    assert_int_equal(http_error_body(&b, 400, "bad input", reasons, 2), 0);
    assert_string_equal(buf_cstr(&b),
                        "{\"error\":{\"code\":\"BadRequest\",\"message\":\"bad input\","
                        "\"reasons\":[\"a\",\"b\"]}}");

    json_t *root;
    json_t *err = parse_error(&b, &root);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "BadRequest");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "bad input");
    json_t *arr = json_object_get(err, "reasons");
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), "a");
    assert_string_equal(json_string_value(json_array_get(arr, 1)), "b");
    json_decref(root);
    buf_deinit(&b);
}

static void test_error_body_defaults(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    /* No reasons: an empty array, never a missing member. No message: the status text. */
    assert_int_equal(http_error_body(&b, 404, NULL, NULL, 0), 0);
    assert_string_equal(buf_cstr(&b),
                        "{\"error\":{\"code\":\"NotFound\",\"message\":\"Not Found\","
                        "\"reasons\":[]}}");
    buf_reset(&b);
    assert_int_equal(http_error_body(&b, 503, "draining", NULL, 0), 0);
    json_t *root;
    json_t *err = parse_error(&b, &root);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "ServiceUnavailable");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "draining");
    assert_int_equal(json_array_size(json_object_get(err, "reasons")), 0);
    json_decref(root);
    buf_deinit(&b);
}

static void test_error_body_each_status(void **state)
{
    (void)state;
    static const int statuses[] = { 400, 401, 403, 404, 405, 409, 410, 413,
                                    414, 415, 429, 431, 500, 503 };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        buf_t b;
        buf_init(&b, 4096);
        assert_int_equal(http_error_body(&b, statuses[i], "m", NULL, 0), 0);
        json_t *root;
        json_t *err = parse_error(&b, &root);
        assert_string_equal(json_string_value(json_object_get(err, "code")),
                            http_error_code(statuses[i]));
        json_decref(root);
        buf_deinit(&b);
    }
}

static void test_error_body_escaping(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    const char *message = "say \"hi\"\n\tback\\slash \x01\x1f end";
    const char *reasons[] = { "field \"x\" is\r\nwrong", "</script>", "caf\xc3\xa9 \xe2\x82\xac" };
    assert_int_equal(http_error_body(&b, 400, message, reasons, 3), 0);

    /* No raw control byte survives: the body is a single line of JSON. */
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.p[i] < 0x20)
            fail_msg("raw control byte 0x%02x at %zu in %s", (unsigned char)b.p[i], i, b.p);
    assert_non_null(strstr(buf_cstr(&b), "say \\\"hi\\\"\\n\\tback\\\\slash "));

    json_t *root;
    json_t *err = parse_error(&b, &root);
    assert_string_equal(json_string_value(json_object_get(err, "message")), message);
    json_t *arr = json_object_get(err, "reasons");
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), reasons[i]);
    json_decref(root);
    buf_deinit(&b);
}

static void test_error_body_invalid_utf8(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    /* Messages and reasons can quote request data (a decoded query parameter, say),
     * which need not be UTF-8. The SPEC wants an error body "always". */
    const char *reasons[] = { "unknown field '\xff\xfe'" };
    int rc = http_error_body(&b, 400, "bad \xc3", reasons, 1);
    /* Whatever happens, no partial body is left behind on failure. */
    if (rc != 0)
        assert_int_equal(b.len, 0);
    /* Regression (fixed): jansson's json_string() returns NULL for invalid UTF-8, and http_error_body
     * then fails with BH_ENOMEM; http_respond_error turns that into a 500 with an
     * empty body. Input: status 400, message "bad \xc3", reasons {"unknown field
     * '\xff\xfe'"}. Expected rc 0 and a parseable SPEC body (e.g. the bad bytes
     * replaced); actual rc BH_ENOMEM (-1) and nothing written. */
    assert_int_equal(rc, 0);
    json_t *root;
    json_t *err = parse_error(&b, &root);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "BadRequest");
    json_decref(root);
    buf_deinit(&b);
}

static void test_error_body_appends_and_bounds(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(buf_append_str(&b, "prefix:"), 0);
    assert_int_equal(http_error_body(&b, 409, "taken", NULL, 0), 0);
    assert_string_equal(buf_cstr(&b), "prefix:{\"error\":{\"code\":\"Conflict\",\"message\":"
                                      "\"taken\",\"reasons\":[]}}");
    buf_deinit(&b);

    /* A body that does not fit is refused, and the buffer keeps what it had. */
    buf_init(&b, 40);
    assert_int_equal(buf_append_str(&b, "keep"), 0);
    assert_int_equal(http_error_body(&b, 400, "this message is far too long to fit", NULL, 0),
                     BH_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "keep");
    buf_deinit(&b);
}

/* ---- response head --------------------------------------------------------- */

static http__head_t base_head(void)
{
    http__head_t h;
    memset(&h, 0, sizeof(h));
    h.status = 200;
    h.date = "Thu, 01 Jan 2026 00:00:00 GMT";
    h.server_name = "breakhook";
    h.request_id = "req-1";
    h.content_type = "application/json; charset=utf-8";
    h.content_length = 17;
    h.send_length = true;
    h.keep_alive = true;
    h.http10 = false;
    h.extra = SLICE_NULL;
    return h;
}

static void expect_head(const http__head_t *h, const char *want)
{
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(http__format_head(&b, h), 0);
    if (strcmp(buf_cstr(&b), want) != 0)
        fail_msg("head:\n%s\nwant:\n%s", buf_cstr(&b), want);
    buf_deinit(&b);
}

#define HEAD_START(status_line)                                                              \
    status_line "\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nServer: breakhook\r\n"            \
                "X-Request-Id: req-1\r\n"

static void test_head_basic(void **state)
{
    (void)state;
    http__head_t h = base_head();
    expect_head(&h, HEAD_START("HTTP/1.1 200 OK")
                "Content-Type: application/json; charset=utf-8\r\n"
                "Content-Length: 17\r\n"
                "\r\n");
}

static void test_head_no_content(void **state)
{
    (void)state;
    http__head_t h = base_head();
    h.status = 204;
    h.content_type = NULL;
    h.content_length = 0;
    h.send_length = false;
    expect_head(&h, HEAD_START("HTTP/1.1 204 No Content") "\r\n");

    /* A zero-length body that is not a 204 still says so. */
    h.status = 200;
    h.send_length = true;
    expect_head(&h, HEAD_START("HTTP/1.1 200 OK") "Content-Length: 0\r\n\r\n");
}

static void test_head_connection(void **state)
{
    (void)state;
    http__head_t h = base_head();
    h.status = 404;
    h.keep_alive = false;
    expect_head(&h, HEAD_START("HTTP/1.1 404 Not Found")
                "Content-Type: application/json; charset=utf-8\r\n"
                "Content-Length: 17\r\n"
                "Connection: close\r\n"
                "\r\n");

    /* HTTP/1.0 closes by default, so keeping it open must be said. */
    h.status = 200;
    h.keep_alive = true;
    h.http10 = true;
    expect_head(&h, HEAD_START("HTTP/1.1 200 OK")
                "Content-Type: application/json; charset=utf-8\r\n"
                "Content-Length: 17\r\n"
                "Connection: keep-alive\r\n"
                "\r\n");

    /* HTTP/1.0 without keep-alive: close, and never both headers. */
    h.keep_alive = false;
    expect_head(&h, HEAD_START("HTTP/1.1 200 OK")
                "Content-Type: application/json; charset=utf-8\r\n"
                "Content-Length: 17\r\n"
                "Connection: close\r\n"
                "\r\n");
}

static void test_head_extra_headers(void **state)
{
    (void)state;
    http__head_t h = base_head();
    h.status = 405;
    h.content_length = 1234567;
    h.extra = SLICE_LIT("Allow: GET, HEAD\r\nRetry-After: 5\r\n");
    h.keep_alive = false;
    expect_head(&h, HEAD_START("HTTP/1.1 405 Method Not Allowed")
                "Content-Type: application/json; charset=utf-8\r\n"
                "Content-Length: 1234567\r\n"
                "Allow: GET, HEAD\r\nRetry-After: 5\r\n"
                "Connection: close\r\n"
                "\r\n");
}

static void test_head_appends_and_bounds(void **state)
{
    (void)state;
    http__head_t h = base_head();
    buf_t b;
    buf_init(&b, 4096);
    assert_int_equal(buf_append_str(&b, "X"), 0);
    assert_int_equal(http__format_head(&b, &h), 0);
    assert_int_equal(b.p[0], 'X');
    assert_true(strncmp(b.p + 1, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_int_equal(b.p[b.len - 1], '\n');
    assert_int_equal(b.p[b.len - 2], '\r');
    assert_int_equal(b.p[b.len - 3], '\n');
    assert_int_equal(b.p[b.len - 4], '\r');
    buf_deinit(&b);

    buf_init(&b, 50);
    assert_int_equal(http__format_head(&b, &h), BH_ETOOBIG);
    buf_deinit(&b);
}

/* ---- percent-decoding ------------------------------------------------------- */

/* Decodes into a heap buffer of exactly n + 1 bytes, so ASan sees any overrun. */
static long decode(const char *p, size_t n, bool plus, char **out)
{
    *out = malloc(n + 1);
    assert_non_null(*out);
    return http__percent_decode(p, n, *out, plus);
}

static void expect_decode(const char *in, bool plus, const char *want, size_t want_len)
{
    char *out;
    long n = decode(in, strlen(in), plus, &out);
    if (n != (long)want_len)
        fail_msg("decode(\"%s\", plus=%d) gave length %ld, want %zu", in, plus, n, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[want_len], '\0');
    free(out);
}

static void expect_decode_fails(const char *in, size_t n, bool plus)
{
    char *out;
    long rc = decode(in, n, plus, &out);
    free(out);
    if (rc != -1)
        fail_msg("decode of %zu bytes \"%.*s\" gave %ld, want -1", n, (int)n, in, rc);
}

static void test_percent_decode(void **state)
{
    (void)state;
    expect_decode("%41", false, "A", 1);
    expect_decode("a%41b", false, "aAb", 3);
    expect_decode("%7e%7E", false, "~~", 2);
    expect_decode("%2541", false, "%41", 3); /* decoded once only */
    expect_decode("%C3%A9", false, "\xc3\xa9", 2);
    expect_decode("%ff", false, "\xff", 1);
    expect_decode("", false, "", 0);
    expect_decode("plain", false, "plain", 5);
    expect_decode("%20%2f%3F", false, " /?", 3);
}

static void test_percent_decode_plus(void **state)
{
    (void)state;
    expect_decode("a+b", true, "a b", 3);
    expect_decode("a+b", false, "a+b", 3);
    expect_decode("++", true, "  ", 2);
    /* An escaped plus is a literal plus in either mode. */
    expect_decode("%2B", true, "+", 1);
    expect_decode("%2b+", true, "+ ", 2);
}

static void test_percent_decode_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = { "%", "%4", "a%", "a%4", "%zz", "%4g", "%g4", "%%41",
                                       "% 41", "%-1", "ok%" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_decode_fails(bad[i], strlen(bad[i]), false);
        expect_decode_fails(bad[i], strlen(bad[i]), true);
    }
    /* The escape must be complete within n, even if more bytes follow in memory. */
    expect_decode_fails("%41", 2, false);
    expect_decode_fails("x%41", 3, false);
}

static void test_percent_decode_rejects_nul(void **state)
{
    (void)state;
    expect_decode_fails("%00", 3, false);
    expect_decode_fails("a%00b", 5, true);
    expect_decode_fails("a\0b", 3, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_status_texts),
        cmocka_unit_test(test_error_body_exact),
        cmocka_unit_test(test_error_body_defaults),
        cmocka_unit_test(test_error_body_each_status),
        cmocka_unit_test(test_error_body_escaping),
        cmocka_unit_test(test_error_body_invalid_utf8),
        cmocka_unit_test(test_error_body_appends_and_bounds),
        cmocka_unit_test(test_head_basic),
        cmocka_unit_test(test_head_no_content),
        cmocka_unit_test(test_head_connection),
        cmocka_unit_test(test_head_extra_headers),
        cmocka_unit_test(test_head_appends_and_bounds),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_decode_plus),
        cmocka_unit_test(test_percent_decode_malformed),
        cmocka_unit_test(test_percent_decode_rejects_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
