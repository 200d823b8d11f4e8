/*
 * test_log_secrets.c: no secret ever reaches a log line (SPEC §8; issue #13, logs).
 *
 * One server runs at --log-level debug with the access log on, and goes through
 * everything that handles a secret: a client created with the CLI, tokens from the
 * token endpoint (secret in the form and in HTTP Basic), wrong secrets, requests with
 * good, tampered and garbage tokens, a webhook created (its key is in that answer
 * only) whose deliveries fail and are retried, a token signing key rotated and
 * reloaded. Then the server stops, and its log file and its own stdout/stderr are
 * searched for every secret, in every spelling it could be written in:
 *   - the client secret (as sent, and percent-encoded);
 *   - each access token, and its signature segment alone;
 *   - the webhook key (whsec_…, and its base64 part);
 *   - every token signing key of the store (hex, base64, base64url).
 * The CLI's own stdout is not searched: `client create` prints the secret once, on
 * purpose, to the operator who asked for it.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "harness_api.h"
#include "store/store.h"

#define API "/connector/protimeapi/api/v1"

typedef it_srv_t fixture_t; /* one server */

/* Fails the test when needle (n bytes, n >= 8) occurs in the text named what. */
static void assert_absent(const char *hay, size_t hay_len, const char *what, const char *needle,
                          size_t n, const char *secret_name)
{
    assert_true(n >= 8);
    const char *at = memmem(hay, hay_len, needle, n);
    if (at) {
        const char *line = at;
        while (line > hay && line[-1] != '\n')
            line--;
        const char *end = memchr(at, '\n', hay_len - (size_t)(at - hay));
        fail_msg("%s appears in %s:\n%.*s", secret_name, what,
                 (int)((end ? end : hay + hay_len) - line), line);
    }
}

static void assert_absent_str(const char *hay, size_t hay_len, const char *what,
                              const char *needle, const char *secret_name)
{
    assert_absent(hay, hay_len, what, needle, strlen(needle), secret_name);
}

static void request(int port, const char *method, const char *target, const char *headers,
                    const char *body, int want)
{
    it_response_t r;
    it_req(port, method, target, headers, body, &r);
    if (want && r.status != want)
        fail_msg("%s %s: %d, want %d: %s", method, target, r.status, want, r.body);
    it_response_free(&r);
}

static void test_no_secret_in_logs(void **state)
{
    fixture_t *f = *state;
    static const char *const args[] = { "--log-level", "debug", "--access-log",
                                        "--allow-http-destinations", "--allow-destination",
                                        "127.0.0.1/32", "--retry-schedule", "100ms,100ms,100ms",
                                        "--revocation-refresh", "200ms", NULL };
    it_server_opts_t o = { .args = args };
    it_srv_start(f, &o);
    int port = f->s.port;

    it_tenant_create(&f->s, "acme");
    it_client_t c;
    it_client_create(&f->s, "acme", SC_ALL, &c);

    /* Tokens: secret in the form, then in HTTP Basic; wrong secrets too. */
    char *tok = it_token_get(port, &c, NULL, NULL);
    char *enc_id = it_urlenc(c.id), *enc_secret = it_urlenc(c.secret);
    char *basic_raw = it_fmt("%s:%s", c.id, c.secret);
    char basic[256];
    base64_encode(basic_raw, strlen(basic_raw), basic, false);
    char *h = it_fmt(IT_FORM_CT "Authorization: Basic %s\r\n", basic);
    it_response_t r;
    it_req(port, "POST", "/tenants/acme/connect/token", h, "grant_type=client_credentials", &r);
    char *tok2 = it_assert_token_ok(&r, NULL, 1800);
    it_response_free(&r);
    free(h);
    char *wrong = it_fmt("grant_type=client_credentials&client_id=%s&client_secret=%sX", enc_id,
                         enc_secret);
    request(port, "POST", "/tenants/acme/connect/token", IT_FORM_CT, wrong, 401);
    free(wrong);

    /* Requests with the token, a tampered one and garbage. */
    char *auth = it_fmt("Authorization: Bearer %s\r\n" IT_JSON_CT, tok);
    request(port, "GET", API "/token-info", auth, NULL, 200);
    request(port, "PUT", API "/people/7", auth, "{\"id\":7}", 201);
    request(port, "PUT", API "/break-definitions/1", auth,
            "{\"id\":1,\"name\":{\"default\":\"L\"},\"friendlyName\":{\"default\":\"L\"},"
            "\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":30,"
            "\"maximumDurationInMinutes\":60,\"ifNotClockedDurationInMinutes\":30,"
            "\"hasToBeTakenUninterrupted\":true}",
            201);
    /* Tampered: the signature's first character changed (never a no-op). */
    char *bad = strdup(tok);
    assert_non_null(bad);
    char *sig = strrchr(bad, '.') + 1;
    *sig = *sig == 'A' ? 'B' : 'A';
    char *tampered = it_fmt("Authorization: Bearer %s\r\n", bad);
    free(bad);
    request(port, "GET", API "/token-info", tampered, NULL, 401);
    request(port, "GET", API "/token-info", "Authorization: Bearer not.a.token\r\n", NULL, 401);

    /* A webhook whose deliveries fail (nothing listens on port 9) and are retried. */
    it_req(port, "POST", API "/webhooks", auth,
           "{\"destinationUrl\":\"http://127.0.0.1:9/hook\",\"collectionName\":\"breaks\"}", &r);
    json_t *w = it_assert_json(&r, 201);
    char *key = strdup(json_string_value(json_object_get(w, "key")));
    json_decref(w);
    it_response_free(&r);
    assert_non_null(key);
    request(port, "PUT", API "/breaks/1", auth,
            "{\"id\":1,\"person\":{\"id\":7},\"breakDefinition\":{\"id\":1},"
            "\"date\":\"2026-11-02\",\"clockedDurationInMinutes\":45,"
            "\"startTimeInMinutes\":720,\"endTimeInMinutes\":840,\"isBreakTaken\":true}",
            201);

    /* A signing key rotated, reloaded by the server. */
    const char *const rotate[] = { "key", "rotate", NULL };
    it_run_result_t rr;
    it_cli_store(&f->s, rotate, &rr);
    it_run_result_free(&rr);
    it_sleep_ms(1500); /* retries ran, the new key was loaded */
    it_srv_stop(f);

    /* Every signing key the store holds, as the secret bytes they are. */
    const char *url = f->store;
    store_t *st = NULL;
    const char *msg = NULL;
    store_options_t so = { 0 };
    if (store_open(url, &so, &st, &msg) != 0)
        fail_msg("store_open: %s", msg ? msg : "?");
    store_signing_key_t *keys = NULL;
    size_t nk = 0;
    assert_int_equal(store_signing_key_list(st, &keys, &nk), 0);
    store_close(st);
    assert_true(nk >= 2);

    const char *files[] = { f->s.log_path, f->s.output_path };
    size_t lines = 0;
    for (size_t fi = 0; fi < 2; fi++) {
        size_t n = 0;
        char *text = it_read_file(files[fi], &n);
        assert_non_null(text);
        for (size_t i = 0; i < n; i++)
            lines += text[i] == '\n';
        const char *what = files[fi];
        assert_absent_str(text, n, what, c.secret, "the client secret");
        assert_absent_str(text, n, what, enc_secret, "the client secret (percent-encoded)");
        assert_absent_str(text, n, what, basic, "the Basic credentials");
        const char *toks[] = { tok, tok2 };
        for (size_t t = 0; t < 2; t++) {
            assert_absent_str(text, n, what, toks[t], "an access token");
            assert_absent_str(text, n, what, strrchr(toks[t], '.') + 1,
                              "an access token's signature");
        }
        assert_absent_str(text, n, what, key, "the webhook key");
        assert_absent_str(text, n, what, key + strlen("whsec_"), "the webhook key's base64");
        for (size_t k = 0; k < nk; k++) {
            char hex[65], b64[48], b64url[48];
            for (size_t b = 0; b < 32; b++)
                snprintf(hex + 2 * b, 3, "%02x", keys[k].secret[b]);
            base64_encode(keys[k].secret, 32, b64, false);
            base64_encode(keys[k].secret, 32, b64url, true);
            assert_absent_str(text, n, what, hex, "a token signing key (hex)");
            assert_absent(text, n, what, b64, 40, "a token signing key (base64)");
            assert_absent(text, n, what, b64url, 40, "a token signing key (base64url)");
        }
        free(text);
    }
    /* The log did record all this (an empty log would pass the search trivially). */
    printf("  %zu log lines searched\n", lines);
    assert_true(lines >= 10);

    free(keys);
    free(key);
    free(auth);
    free(tampered);
    free(basic_raw);
    free(enc_id);
    free(enc_secret);
    free(tok);
    free(tok2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_secret_in_logs, it_srv_setup, it_srv_teardown),
    };
    return cmocka_run_group_tests_name("integration/log_secrets", tests, NULL, NULL);
}
