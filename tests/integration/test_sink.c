/*
 * test_sink.c: `breakhook sink` and `breakhook verify`, the reference consumer, run as
 * the real binary and fed deliveries signed with sign_v1, the function the delivery
 * engine signs with.
 *
 * The harness starts the sink (it_sink_start) with the same rules as the server:
 * 127.0.0.1 only, a port the kernel picks (--port-file), a fresh temporary directory,
 * the child killed if the test dies, and every wait bounded.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "delivery/sign.h"
#include "harness.h"

#define KEY "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

extern char **environ;

/* ---- the sink process ------------------------------------------------------------- */

typedef struct sink {
    it_server_t srv;      /* pid, port, dir; output_path = stdout, log_path = stderr */
    char record[320];
} sink_proc_t;

/* Starts the sink (it_sink_start) with --key KEY --record DIR/record.ndjson
 * [extra...]. dir: reuse that directory (a restart), or NULL for a new one. */
static void sink_start(sink_proc_t *k, const char *dir, const char *const *extra)
{
    char keep[256] = "";
    if (dir)
        snprintf(keep, sizeof(keep), "%s", dir);
    memset(k, 0, sizeof(*k));
    char tmp[256] = "";
    if (!keep[0]) {
        if (it_tmpdir_new(tmp, sizeof(tmp)))
            fail_msg("tmpdir: %s", it_last_error());
        snprintf(keep, sizeof(keep), "%s", tmp);
    }
    snprintf(k->record, sizeof(k->record), "%s/record.ndjson", keep);
    const char *argv[40] = { "--key", KEY, "--record", k->record };
    size_t n = 4;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n + 1 < sizeof(argv) / sizeof(argv[0]));
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    if (it_sink_start(&k->srv, keep, argv))
        fail_msg("sink: %s", it_last_error());
}

/* SIGTERM; the sink must exit 0 within the bound. */
static void sink_stop(sink_proc_t *k)
{
    int st = it_server_stop(&k->srv, 10000);
    if (st != 0) {
        it_server_dump(&k->srv);
        fail_msg("the sink exited with %d after SIGTERM", st);
    }
}

static void sink_cleanup(sink_proc_t *k)
{
    it_server_cleanup(&k->srv);
}

/* ---- deliveries ---------------------------------------------------------------------- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void key_bytes(const char *whsec, unsigned char *b, size_t *n)
{
    assert_int_equal(crypto_whsec_parse(whsec, b, SIGN_KEY_MAX, n), 0);
}

/* A delivery body as breakhook sends it. */
static void make_body(char *out, size_t n, const char *change_type, int64_t id, uint64_t cv)
{
    if (!strcmp(change_type, "Delete"))
        snprintf(out, n, "{\"changeType\":\"Delete\",\"data\":{\"changeVersion\":\"%020llX\",\"id\":%lld}}",
                 (unsigned long long)cv, (long long)id);
    else
        snprintf(out, n,
                 "{\"changeType\":\"%s\",\"data\":{\"changeVersion\":\"%020llX\",\"id\":%lld,"
                 "\"person\":{\"id\":7},\"breakDefinition\":{\"id\":3},\"date\":\"2026-03-02\","
                 "\"isBreakTaken\":true,\"clockedDurationInMinutes\":31}}",
                 change_type, (unsigned long long)cv, (long long)id);
}

/* POSTs body to path with the three Standard Webhooks headers. sig NULL: sign with
 * key (whsec) over (id, ts, body). Returns the status; r is filled (caller frees). */
static int post_signed(int port, const char *path, const char *whsec, const char *id, int64_t ts,
                       const char *sig, const char *body, size_t body_len, it_response_t *r)
{
    char computed[SIGN_V1_LEN + 1];
    if (!sig) {
        unsigned char k[SIGN_KEY_MAX];
        size_t kn;
        key_bytes(whsec, k, &kn);
        assert_int_equal(sign_v1(k, kn, id, ts, body, body_len, computed), 0);
        sig = computed;
    }
    char headers[1024];
    snprintf(headers, sizeof(headers),
             "webhook-id: %s\r\nwebhook-timestamp: %lld\r\nwebhook-signature: %s\r\n"
             "Content-Type: application/json\r\nUser-Agent: breakhook-test\r\n",
             id, (long long)ts, sig);
    if (it_request(port, "POST", path, headers, body, body_len, r) != 0)
        fail_msg("POST %s: %s", path, it_last_error());
    return r->status;
}

/* Posts a well-formed delivery of (id, cv) to path, signed now with KEY; returns the
 * status. */
static int deliver(const sink_proc_t *k, const char *path, const char *event_id, int64_t rec_id,
                   uint64_t cv)
{
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", rec_id, cv);
    it_response_t r;
    int st = post_signed(k->srv.port, path, KEY, event_id, now_s(), NULL, body, strlen(body), &r);
    it_response_free(&r);
    return st;
}

/* The record file's lines, parsed (caller decrefs); asserts every line is JSON. */
static json_t *record_lines(const sink_proc_t *k)
{
    json_t *arr = json_array();
    size_t n;
    char *text = it_read_file(k->record, &n);
    if (!text)
        return arr;
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line is whole */
        json_t *line = it_json_parse(p, (size_t)(nl - p));
        if (!line)
            fail_msg("record line is not JSON: %.*s", (int)(nl - p), p);
        json_array_append_new(arr, line);
        p = nl + 1;
    }
    free(text);
    return arr;
}

static const char *line_cv(json_t *line)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(line, "body"), "data"), "changeVersion"));
}

static void assert_reason_contains(const it_response_t *r, const char *needle)
{
    json_t *j = it_json_parse(r->body, r->body_len);
    assert_non_null(j);
    const char *reason =
        json_string_value(json_array_get(json_object_get(json_object_get(j, "error"), "reasons"), 0));
    if (!reason || !strstr(reason, needle))
        fail_msg("expected a reason with '%s', got: %s", needle, r->body);
    json_decref(j);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_accept_and_record(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 41, 0x2a);
    it_response_t r;
    int64_t ts = now_s();
    assert_int_equal(post_signed(k.srv.port, "/hooks/breaks", KEY, "evt-1", ts, NULL, body,
                                 strlen(body), &r),
                     204);
    assert_int_equal(r.body_len, 0);
    it_response_free(&r);
    make_body(body, sizeof(body), "Delete", 42, 0x2b);
    assert_int_equal(post_signed(k.srv.port, "/", KEY, "evt-2", ts, NULL, body, strlen(body), &r),
                     204);
    it_response_free(&r);

    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 2);
    json_t *l0 = json_array_get(lines, 0);
    assert_string_equal(json_string_value(json_object_get(l0, "webhookId")), "evt-1");
    assert_int_equal(json_integer_value(json_object_get(l0, "timestamp")), ts);
    assert_string_equal(json_string_value(json_object_get(l0, "path")), "/hooks/breaks");
    const char *received = json_string_value(json_object_get(l0, "receivedAt"));
    assert_non_null(received);
    int64_t received_ms;
    assert_int_equal(clock_parse_rfc3339(received, &received_ms), 0);
    assert_true(received_ms / 1000 >= ts - 1 && received_ms / 1000 <= now_s() + 1);
    /* The body is the delivered JSON itself, not a string of it. */
    make_body(body, sizeof(body), "InsertOrUpdate", 41, 0x2a);
    json_t *sent = it_json_parse(body, strlen(body));
    assert_true(json_equal(json_object_get(l0, "body"), sent));
    json_decref(sent);
    json_t *l1 = json_array_get(lines, 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(l1, "body"), "changeType")), "Delete");
    json_decref(lines);

    sink_stop(&k);
    char *out = it_read_file(k.srv.output_path, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "accepted path=/hooks/breaks id=41 changeType=InsertOrUpdate "
                                "changeVersion=0000000000000000002A webhookId=evt-1\n"));
    assert_non_null(strstr(out, "id=42 changeType=Delete"));
    free(out);
    char *err = it_read_file(k.srv.log_path, NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "sink: 2 accepted, 0 duplicates"));
    free(err);
    sink_cleanup(&k);
}

static void test_bad_signatures_are_refused(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 1, 5);
    it_response_t r;
    int64_t ts = now_s();
    /* Signed with another key. */
    assert_int_equal(post_signed(k.srv.port, "/h", OTHER_KEY, "evt-1", ts, NULL, body,
                                 strlen(body), &r),
                     401);
    it_assert_error(&r, 401, "Unauthorized");
    assert_reason_contains(&r, "no v1 signature matches");
    it_response_free(&r);
    /* Signed right, then the body changed by one byte on the way. */
    unsigned char kb[SIGN_KEY_MAX];
    size_t kn;
    key_bytes(KEY, kb, &kn);
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(kb, kn, "evt-1", ts, body, strlen(body), sig), 0);
    char tampered[512];
    snprintf(tampered, sizeof(tampered), "%s", body);
    *strstr(tampered, "31") = '9';
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", ts, sig, tampered,
                                 strlen(tampered), &r),
                     401);
    it_response_free(&r);
    /* Another event id under the same signature. */
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-2", ts, sig, body, strlen(body), &r),
                     401);
    it_response_free(&r);
    /* Not a v1 signature at all. */
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", ts, "v1a,abc", body, strlen(body),
                                 &r),
                     401);
    assert_reason_contains(&r, "no v1 signature");
    it_response_free(&r);
    /* Missing headers. */
    if (it_request(k.srv.port, "POST", "/h", "User-Agent: t\r\n", body, strlen(body), &r))
        fail_msg("%s", it_last_error());
    assert_int_equal(r.status, 401);
    assert_reason_contains(&r, "webhook-id header is missing");
    it_response_free(&r);
    /* Nothing of that was recorded. */
    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
    /* A rotation-style header with the right signature second is accepted. */
    char both[2 * SIGN_V1_LEN + 64];
    snprintf(both, sizeof(both), "v1,bm90IHRoaXMgb25lIGVpdGhlcgo= %s", sig);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", ts, both, body, strlen(body), &r),
                     204);
    it_response_free(&r);
    lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 1);
    json_decref(lines);
    sink_stop(&k);
    char *err = it_read_file(k.srv.log_path, NULL);
    assert_non_null(strstr(err, "1 accepted, 0 duplicates, 5 rejected (signature)"));
    free(err);
    sink_cleanup(&k);
}

static void test_timestamp_window(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 1, 5);
    it_response_t r;
    /* A correctly signed delivery replayed ten minutes later. */
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", now_s() - 600, NULL, body,
                                 strlen(body), &r),
                     401);
    assert_reason_contains(&r, "too old");
    it_response_free(&r);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", now_s() + 600, NULL, body,
                                 strlen(body), &r),
                     401);
    assert_reason_contains(&r, "future");
    it_response_free(&r);
    /* Well inside the default 5 minutes, either way. */
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", now_s() - 200, NULL, body,
                                 strlen(body), &r),
                     204);
    it_response_free(&r);
    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 1);
    json_decref(lines);
    sink_stop(&k);
    sink_cleanup(&k);

    /* A wider window, and none at all. */
    static const char *const wide[] = { "--tolerance", "15m", NULL };
    sink_start(&k, NULL, wide);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", now_s() - 600, NULL, body,
                                 strlen(body), &r),
                     204);
    it_response_free(&r);
    sink_stop(&k);
    sink_cleanup(&k);
    static const char *const none[] = { "--tolerance", "0", NULL };
    sink_start(&k, NULL, none);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-1", 1614265330, NULL, body,
                                 strlen(body), &r),
                     204);
    it_response_free(&r);
    sink_stop(&k);
    sink_cleanup(&k);
}

static void test_duplicates_and_out_of_order(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 7, 5);
    it_response_t r;
    int64_t ts = now_s();
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-5", ts, NULL, body, strlen(body), &r),
                     204);
    it_response_free(&r);
    /* The same delivery again (the producer never saw our answer), then a retry with a
     * fresh timestamp: acknowledged, not recorded. */
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-5", ts, NULL, body, strlen(body), &r),
                     200);
    json_t *j = it_assert_json(&r, 200);
    assert_true(json_is_true(json_object_get(j, "duplicate")));
    assert_string_equal(json_string_value(json_object_get(j, "changeVersion")),
                        "00000000000000000005");
    json_decref(j);
    it_response_free(&r);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-5", ts + 2, NULL, body, strlen(body),
                                 &r),
                     200);
    it_response_free(&r);
    /* An older state arriving after the newer one: acknowledged, dropped. */
    assert_int_equal(deliver(&k, "/h", "evt-3", 7, 3), 200);
    /* Newer ones go through; another record is independent. */
    assert_int_equal(deliver(&k, "/h", "evt-6", 7, 6), 204);
    assert_int_equal(deliver(&k, "/h", "evt-4", 7, 4), 200);
    assert_int_equal(deliver(&k, "/h", "evt-1", 8, 1), 204);
    /* Versions compare over all 20 digits (the top bits too). */
    assert_int_equal(deliver(&k, "/h", "evt-big", 8, 0xFFFFFFFFFFFFFFFFULL), 204);
    char big[512];
    snprintf(big, sizeof(big),
             "{\"changeType\":\"InsertOrUpdate\",\"data\":{\"changeVersion\":\"00010000000000000000\","
             "\"id\":8}}");
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-top", now_s(), NULL, big, strlen(big),
                                 &r),
                     204);
    it_response_free(&r);
    assert_int_equal(deliver(&k, "/h", "evt-big2", 8, 0xFFFFFFFFFFFFFFFFULL), 200);
    /* The same id under another path is another record (another webhook). */
    assert_int_equal(deliver(&k, "/other", "evt-o", 7, 1), 204);

    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 6);
    assert_string_equal(line_cv(json_array_get(lines, 0)), "00000000000000000005");
    assert_string_equal(line_cv(json_array_get(lines, 1)), "00000000000000000006");
    assert_string_equal(line_cv(json_array_get(lines, 2)), "00000000000000000001");
    assert_string_equal(line_cv(json_array_get(lines, 4)), "00010000000000000000");
    json_decref(lines);
    sink_stop(&k);
    char *err = it_read_file(k.srv.log_path, NULL);
    assert_non_null(strstr(err, "6 accepted, 5 duplicates"));
    free(err);
    sink_cleanup(&k);
}

static void test_fail_first(void **state)
{
    (void)state;
    sink_proc_t k;
    static const char *const args[] = { "--fail-first", "2", "--retry-after", "3s", NULL };
    sink_start(&k, NULL, args);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 1, 10);
    it_response_t r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-a", now_s(), NULL, body,
                                     strlen(body), &r),
                         500);
        assert_string_equal(it_response_header(&r, "Retry-After"), "3");
        it_response_free(&r);
    }
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "evt-a", now_s(), NULL, body, strlen(body),
                                 &r),
                     204);
    it_response_free(&r);
    /* Per record: another record fails twice on its own; the first does not again. */
    assert_int_equal(deliver(&k, "/h", "evt-b", 2, 1), 500);
    assert_int_equal(deliver(&k, "/h", "evt-c", 1, 11), 204);
    assert_int_equal(deliver(&k, "/h", "evt-b", 2, 1), 500);
    assert_int_equal(deliver(&k, "/h", "evt-b", 2, 1), 204);
    /* A bad signature is refused before --fail-first counts it. */
    assert_int_equal(post_signed(k.srv.port, "/h", OTHER_KEY, "evt-x", now_s(), NULL, body,
                                 strlen(body), &r),
                     401);
    it_response_free(&r);
    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 3);
    json_decref(lines);
    sink_stop(&k);
    sink_cleanup(&k);
}

static void test_invalid_bodies(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    static const char *const bodies[] = {
        "not json",
        "[1,2]",
        "{\"changeType\":\"InsertOrUpdate\"}",
        "{\"changeType\":\"InsertOrUpdate\",\"data\":{\"id\":1}}",
        "{\"changeType\":\"InsertOrUpdate\",\"data\":{\"id\":\"1\",\"changeVersion\":\"00000000000000000001\"}}",
        "{\"changeType\":\"InsertOrUpdate\",\"data\":{\"id\":1,\"changeVersion\":\"0000000000000000000a\"}}",
        "{\"changeType\":\"InsertOrUpdate\",\"data\":{\"id\":1,\"changeVersion\":\"1\"}}",
        "{\"data\":{\"id\":1,\"changeVersion\":\"00000000000000000001\"}}",
        "{\"changeType\":\"A\",\"changeType\":\"B\",\"data\":{\"id\":1,\"changeVersion\":\"00000000000000000001\"}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        it_response_t r;
        char id[32];
        snprintf(id, sizeof(id), "evt-%zu", i);
        int st = post_signed(k.srv.port, "/h", KEY, id, now_s(), NULL, bodies[i], strlen(bodies[i]),
                             &r);
        if (st != 400)
            fail_msg("body %zu: expected 400, got %d: %s", i, st, r.body);
        it_assert_error(&r, 400, "BadRequest");
        it_response_free(&r);
    }
    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
    /* Other methods are not deliveries. */
    assert_int_equal(it_get_status(k.srv.port, "/h"), 405);
    sink_stop(&k);
    sink_cleanup(&k);
}

static void test_fixed_status(void **state)
{
    (void)state;
    sink_proc_t k;
    static const char *const args[] = { "--status", "503", "--retry-after", "7s", NULL };
    sink_start(&k, NULL, args);
    it_response_t r;
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 1, 1);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "e", now_s(), NULL, body, strlen(body), &r),
                     503);
    assert_string_equal(it_response_header(&r, "Retry-After"), "7");
    it_response_free(&r);
    assert_int_equal(post_signed(k.srv.port, "/h", OTHER_KEY, "e", now_s(), NULL, body,
                                 strlen(body), &r),
                     503);
    it_response_free(&r);
    sink_stop(&k);
    json_t *lines = record_lines(&k);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
    sink_cleanup(&k);

    static const char *const gone[] = { "--status", "410", NULL };
    sink_start(&k, NULL, gone);
    assert_int_equal(deliver(&k, "/h", "e", 1, 1), 410);
    sink_stop(&k);
    sink_cleanup(&k);
}

static void test_max_records(void **state)
{
    (void)state;
    sink_proc_t k;
    static const char *const args[] = { "--max-records", "2", "--quiet", NULL };
    sink_start(&k, NULL, args);
    assert_int_equal(deliver(&k, "/h", "e1", 1, 1), 204);
    assert_int_equal(deliver(&k, "/h", "e2", 2, 1), 204);
    it_response_t r;
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 3, 1);
    assert_int_equal(post_signed(k.srv.port, "/h", KEY, "e3", now_s(), NULL, body, strlen(body), &r),
                     503);
    assert_reason_contains(&r, "--max-records");
    it_response_free(&r);
    /* Records already known still go through. */
    assert_int_equal(deliver(&k, "/h", "e4", 1, 2), 204);
    sink_stop(&k);
    /* --quiet: nothing per delivery on stdout. */
    char *out = it_read_file(k.srv.output_path, NULL);
    assert_string_equal(out ? out : "", "");
    free(out);
    sink_cleanup(&k);
}

static void test_restart_keeps_dedup(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    assert_int_equal(deliver(&k, "/h", "e5", 1, 5), 204);
    assert_int_equal(deliver(&k, "/x", "e9", 1, 9), 204);
    sink_stop(&k);
    /* A crash cut the last line short: it is skipped and ended. */
    FILE *f = fopen(k.record, "a");
    assert_non_null(f);
    fputs("{\"webhookId\":\"e7\",\"timest", f);
    fclose(f);

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", k.srv.dir);
    sink_start(&k, dir, NULL);
    assert_int_equal(deliver(&k, "/h", "e5", 1, 5), 200);
    assert_int_equal(deliver(&k, "/h", "e4", 1, 4), 200);
    assert_int_equal(deliver(&k, "/x", "e8", 1, 8), 200);
    assert_int_equal(deliver(&k, "/h", "e6", 1, 6), 204);
    sink_stop(&k);
    char *err = it_read_file(k.srv.log_path, NULL);
    assert_non_null(strstr(err, "2 records read back"));
    assert_non_null(strstr(err, "1 other lines skipped"));
    free(err);
    /* The cut line stays (it is the file's history) but the next record starts on a
     * line of its own; record_lines would fail on a merged line. */
    char *text = it_read_file(k.record, NULL);
    assert_non_null(strstr(text, "\"timest\n{"));
    free(text);
    sink_cleanup(&k);
}

static void test_usage_errors(void **state)
{
    (void)state;
    it_run_result_t r;
    static const char *const no_key[] = { "sink", "--listen", "127.0.0.1:0", NULL };
    assert_int_equal(it_run(no_key, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--key is required"));
    it_run_result_free(&r);
    static const char *const bad_key[] = { "sink", "--key", "whsec_not base64", NULL };
    assert_int_equal(it_run(bad_key, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    it_run_result_free(&r);
    static const char *const bad_tol[] = { "sink", "--key", KEY, "--tolerance", "5", NULL };
    assert_int_equal(it_run(bad_tol, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--tolerance"));
    it_run_result_free(&r);
    static const char *const help[] = { "sink", "--help", NULL };
    assert_int_equal(it_run(help, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "BREAKHOOK_SINK_KEY"));
    it_run_result_free(&r);
    static const char *const vhelp[] = { "verify", "--help", NULL };
    assert_int_equal(it_run(vhelp, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    it_run_result_free(&r);
}

/* ---- breakhook verify ------------------------------------------------------------------- */

/* A raw request as `nc -l` would capture it. eol: "\r\n" or "\n". */
static char *capture(const char *eol, const char *id, int64_t ts, const char *sig,
                     const char *body, bool chunked)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    fprintf(f, "POST /hooks HTTP/1.1%sHost: 127.0.0.1:9001%sUser-Agent: breakhook/0.1.0%s", eol,
            eol, eol);
    fprintf(f, "Content-Type: application/json%swebhook-id: %s%swebhook-timestamp: %lld%s", eol,
            id, eol, (long long)ts, eol);
    fprintf(f, "webhook-signature: %s%s", sig, eol);
    if (chunked) {
        size_t len = strlen(body), half = len / 2;
        fprintf(f, "Transfer-Encoding: chunked%s%s", eol, eol);
        fprintf(f, "%zx%s%.*s%s%zx;ext=1%s%s%s0%s%s", half, eol, (int)half, body, eol, len - half,
                eol, body + half, eol, eol, eol);
    } else {
        fprintf(f, "Content-Length: %zu%s%s%s", strlen(body), eol, eol, body);
    }
    fclose(f);
    return out;
}

static void run_verify(const char *const *args, const char *input, const char *const *env,
                       it_run_result_t *r)
{
    it_run_opts_t o = { .input = input, .input_len = strlen(input), .env = env };
    if (it_run(args, &o, r) != 0)
        fail_msg("could not run breakhook verify: %s", it_last_error());
}

static void test_verify_command(void **state)
{
    (void)state;
    unsigned char kb[SIGN_KEY_MAX];
    size_t kn;
    key_bytes(KEY, kb, &kn);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 9, 0x99);
    int64_t ts = now_s();
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(kb, kn, "evt-9", ts, body, strlen(body), sig), 0);
    static const char *const args[] = { "verify", "--key", KEY, NULL };
    it_run_result_t r;

    char *req = capture("\r\n", "evt-9", ts, sig, body, false);
    run_verify(args, req, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "valid\n");
    it_run_result_free(&r);
    /* The key from the environment instead of the flag. */
    static const char *const env_args[] = { "verify", NULL };
    static const char *const env[] = { "BREAKHOOK_SINK_KEY=" KEY, NULL };
    run_verify(env_args, req, env, &r);
    assert_int_equal(r.status, 0);
    it_run_result_free(&r);
    /* Another key. */
    static const char *const other[] = { "verify", "--key", OTHER_KEY, NULL };
    run_verify(other, req, NULL, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "invalid: no v1 signature matches"));
    it_run_result_free(&r);
    free(req);

    /* LF-only lines and a chunked body are the same delivery. */
    req = capture("\n", "evt-9", ts, sig, body, false);
    run_verify(args, req, NULL, &r);
    assert_int_equal(r.status, 0);
    it_run_result_free(&r);
    free(req);
    req = capture("\r\n", "evt-9", ts, sig, body, true);
    run_verify(args, req, NULL, &r);
    if (r.status != 0)
        fail_msg("chunked capture: %s%s\n%s", r.out, r.err, req);
    it_run_result_free(&r);
    free(req);

    /* A tampered body. */
    char tampered[512];
    snprintf(tampered, sizeof(tampered), "%s", body);
    *strstr(tampered, "true") = 'T';
    req = capture("\r\n", "evt-9", ts, sig, tampered, false);
    run_verify(args, req, NULL, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "invalid:"));
    it_run_result_free(&r);
    free(req);

    /* An old capture: invalid by default, valid with --tolerance 0. */
    int64_t old = ts - 86400;
    assert_int_equal(sign_v1(kb, kn, "evt-9", old, body, strlen(body), sig), 0);
    req = capture("\r\n", "evt-9", old, sig, body, false);
    run_verify(args, req, NULL, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "too old"));
    it_run_result_free(&r);
    static const char *const tol0[] = { "verify", "--key", KEY, "--tolerance", "0", NULL };
    run_verify(tol0, req, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "valid\n");
    it_run_result_free(&r);

    /* A capture cut short: not a verdict, an error. */
    req[strlen(req) - 5] = '\0';
    run_verify(tol0, req, NULL, &r);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "shorter than its Content-Length"));
    it_run_result_free(&r);
    free(req);

    /* Not a request; no key. */
    run_verify(args, "{\"changeType\":\"Delete\"}\n", NULL, &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "not an HTTP"));
    it_run_result_free(&r);
    static const char *const nokey[] = { "verify", NULL };
    run_verify(nokey, "POST / HTTP/1.1\r\n\r\n", NULL, &r);
    assert_int_equal(r.status, 2);
    it_run_result_free(&r);
}

/* What the sink received is what verify checks: a delivery captured by a plain socket
 * listener (like nc) verifies, and the sink accepts the same bytes. */
static void test_sink_accepts_what_verify_accepts(void **state)
{
    (void)state;
    sink_proc_t k;
    sink_start(&k, NULL, NULL);
    unsigned char kb[SIGN_KEY_MAX];
    size_t kn;
    key_bytes(KEY, kb, &kn);
    char body[512];
    make_body(body, sizeof(body), "InsertOrUpdate", 77, 0x77);
    int64_t ts = now_s();
    char sig[SIGN_V1_LEN + 1];
    assert_int_equal(sign_v1(kb, kn, "evt-77", ts, body, strlen(body), sig), 0);
    char *req = capture("\r\n", "evt-77", ts, sig, body, false);
    static const char *const args[] = { "verify", "--key", KEY, NULL };
    it_run_result_t r;
    run_verify(args, req, NULL, &r);
    assert_int_equal(r.status, 0);
    it_run_result_free(&r);
    it_conn_t c;
    assert_int_equal(it_connect(&c, k.srv.port), 0);
    assert_int_equal(it_send_str(&c, req), 0);
    it_response_t resp;
    assert_int_equal(it_read_response(&c, &resp, false, IT_IO_TIMEOUT_MS), 0);
    assert_int_equal(resp.status, 204);
    it_response_free(&resp);
    it_conn_close(&c);
    free(req);
    sink_stop(&k);
    sink_cleanup(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_and_record),
        cmocka_unit_test(test_bad_signatures_are_refused),
        cmocka_unit_test(test_timestamp_window),
        cmocka_unit_test(test_duplicates_and_out_of_order),
        cmocka_unit_test(test_fail_first),
        cmocka_unit_test(test_invalid_bodies),
        cmocka_unit_test(test_fixed_status),
        cmocka_unit_test(test_max_records),
        cmocka_unit_test(test_restart_keeps_dedup),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_verify_command),
        cmocka_unit_test(test_sink_accepts_what_verify_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
