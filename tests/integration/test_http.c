/*
 * test_http.c: the HTTP/1.1 server as a client sees it, over real sockets, against
 * the real binary (`breakhook serve` on 127.0.0.1, started per test by the harness).
 *
 * Each test starts its own server (with the options it needs), so a crash or a hang
 * in one cannot spill into the next, and the teardown stops it with SIGTERM and
 * requires exit code 0: under ASan/LSan that also catches memory errors and leaks
 * the test itself did not notice.
 *
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness_api.h"

#define HEALTH_BODY "{\"status\":\"ok\"}"
#define READY_BODY "{\"status\":\"ready\"}"
#define CLOSE_WAIT_MS 15000 /* a connection the server must close: within this */

typedef it_srv_t fixture_t; /* one server; done: the test stopped or killed it itself */

/* Starts a server for this test with extra arguments (NULL-terminated, may be NULL). */
static it_server_t *start_with(void **state, const char *const *args, const char *const *env,
                               bool no_listen)
{
    fixture_t *f = *state;
    it_server_opts_t o = { .args = args, .env = env, .no_listen = no_listen };
    it_srv_start(f, &o);
    return &f->s;
}

static it_server_t *start(void **state, const char *const *args)
{
    return start_with(state, args, NULL, false);
}

/* ---- small assertion helpers ------------------------------------------------------ */

static void conn_open(it_conn_t *c, int port)
{
    if (it_connect(c, port) != 0)
        fail_msg("connect: %s", it_last_error());
}

static void send_raw(it_conn_t *c, const char *p, size_t n)
{
    if (it_send(c, p, n) != 0)
        fail_msg("send: %s", it_last_error());
}

static void send_str(it_conn_t *c, const char *s)
{
    send_raw(c, s, strlen(s));
}

static void read_resp(it_conn_t *c, it_response_t *r, bool head)
{
    if (it_read_response(c, r, head, IT_IO_TIMEOUT_MS) != 0)
        fail_msg("reading the response: %s", it_last_error());
}

static void request(it_conn_t *c, const char *method, const char *target, const char *headers,
                    const char *body, size_t body_len, it_response_t *r)
{
    if (it_conn_request(c, method, target, headers, body, body_len, r) != 0)
        fail_msg("%s %.60s: %s", method, target, it_last_error());
}

static void assert_health_ok(const it_response_t *r)
{
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, HEALTH_BODY);
    const char *ct = it_response_header(r, "content-type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "application/json", 16) == 0);
}

/* The server answered, said it closes, and did close. */
static void assert_closes(it_conn_t *c, const it_response_t *r)
{
    const char *conn = it_response_header(r, "connection");
    if (!conn || strcasecmp(conn, "close") != 0)
        fail_msg("status %d: expected 'Connection: close', got '%s'", r->status,
                 conn ? conn : "(none)");
    if (!it_peer_closed(c, CLOSE_WAIT_MS))
        fail_msg("status %d: the server did not close the connection", r->status);
    if (c->len != 0)
        fail_msg("status %d: %zu unexpected bytes after the answer: %.120s", r->status, c->len,
                 c->buf);
}

static void assert_open(it_conn_t *c, const it_response_t *r)
{
    const char *conn = it_response_header(r, "connection");
    if (conn && strcasecmp(conn, "close") == 0)
        fail_msg("status %d: the server said 'Connection: close'", r->status);
    if (it_data_within(c, 50))
        fail_msg("status %d: unexpected data or close after the answer (%zu bytes)", r->status,
                 c->len);
}

/* A fresh connection gets a 200 from /healthz: the server is alive and serving. */
static void assert_alive(int port)
{
    it_response_t r;
    if (it_request(port, "GET", "/healthz", NULL, NULL, 0, &r) != 0)
        fail_msg("the server no longer answers /healthz: %s", it_last_error());
    assert_health_ok(&r);
    it_response_free(&r);
}

static char *repeat(char ch, size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, ch, n);
    p[n] = '\0';
    return p;
}

static bool plain_id(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

/* ---- keep-alive and pipelining ---------------------------------------------------------- */

static void test_keep_alive(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    for (int i = 0; i < 3; i++) {
        request(&c, "GET", "/healthz", NULL, NULL, 0, &r);
        assert_health_ok(&r);
        assert_int_equal(r.minor_version, 1);
        assert_string_equal(it_response_header(&r, "content-length"), "15");
        assert_non_null(it_response_header(&r, "date"));
        assert_open(&c, &r);
        it_response_free(&r);
    }
    it_conn_close(&c);
}

static void test_pipelining_in_order(void **state)
{
    it_server_t *s = start(state, NULL);
    /* /readyz answers from a worker thread, /healthz at once: the order of the answers
     * must still be the order of the requests. */
    static const char batch[] =
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p1\r\n\r\n"
        "GET /readyz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p2\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p3\r\n\r\n"
        "GET /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: p4\r\n\r\n"
        "GET /readyz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p5\r\n\r\n";
    static const struct {
        int status;
        const char *rid;
        const char *body;
    } want[] = {
        { 200, "p1", HEALTH_BODY }, { 200, "p2", READY_BODY }, { 200, "p3", HEALTH_BODY },
        { 404, "p4", NULL },        { 200, "p5", READY_BODY },
    };
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_raw(&c, batch, sizeof(batch) - 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        read_resp(&c, &r, false);
        assert_int_equal(r.status, want[i].status);
        assert_string_equal(it_response_header(&r, "x-request-id"), want[i].rid);
        if (want[i].body)
            assert_string_equal(r.body, want[i].body);
        else
            it_assert_error(&r, 404, "NotFound");
        it_response_free(&r);
    }
    /* Nothing more, and the connection is still usable. */
    assert_false(it_data_within(&c, 100));
    request(&c, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
}

static void test_pipelining_malformed_last(void **state)
{
    it_server_t *s = start(state, NULL);
    static const char batch[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: q1\r\n\r\n"
                                "GET /readyz HTTP/1.1\r\nHost: t\r\nX-Request-Id: q2\r\n\r\n"
                                "BOGUS /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_raw(&c, batch, sizeof(batch) - 1);
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    assert_string_equal(it_response_header(&r, "x-request-id"), "q1");
    it_response_free(&r);
    read_resp(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, READY_BODY);
    assert_string_equal(it_response_header(&r, "x-request-id"), "q2");
    it_response_free(&r);
    /* The malformed third request ends the connection: the fourth is never answered. */
    read_resp(&c, &r, false);
    it_assert_error(&r, 400, "BadRequest");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    assert_alive(s->port);
}

static void test_http10(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.0\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    /* HTTP/1.0 asking for keep-alive: kept open and said so. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    assert_string_equal(it_response_header(&r, "connection"), "keep-alive");
    assert_open(&c, &r);
    it_response_free(&r);
    /* HTTP/1.1 asking to close: answered, then closed. */
    request(&c, "GET", "/healthz", "Connection: close\r\n", NULL, 0, &r);
    assert_health_ok(&r);
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
}

/* ---- bodies --------------------------------------------------------------------------------- */

static void test_chunked_body_then_405_keeps_connection(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_str(&c, "POST /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                 "5\r\nhello\r\n");
    /* The answer waits for the whole body. */
    assert_false(it_data_within(&c, 150));
    send_str(&c, "6;ext=1\r\n world\r\n");
    assert_false(it_data_within(&c, 100));
    send_str(&c, "0\r\nX-Trailer: t\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 405, "MethodNotAllowed");
    assert_string_equal(it_response_header(&r, "allow"), "GET, HEAD");
    assert_open(&c, &r);
    it_response_free(&r);
    /* The body was consumed exactly: the next request on the socket parses. */
    request(&c, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
}

static void test_content_length_body_accepted(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    /* A GET may carry a body; exactly the limit is accepted: on a route that
     * authenticates nobody that is 64 KiB (1 MiB, the default, needs a token). */
    size_t n = 64u << 10;
    char *body = repeat('b', n);
    request(&c, "GET", "/healthz", NULL, body, n, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    /* A chunked one too, and the connection stays usable. */
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    assert_open(&c, &r);
    it_response_free(&r);
    free(body);
    it_conn_close(&c);
}

static void test_expect_100_continue(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;

    /* On a route that takes the request: 100 first, the final answer after the body. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 4\r\n\r\n");
    read_resp(&c, &r, false);
    assert_int_equal(r.status, 100);
    assert_true(strncmp(r.raw, "HTTP/1.1 100 Continue\r\n", 23) == 0);
    it_response_free(&r);
    assert_false(it_data_within(&c, 100)); /* nothing else until the body comes */
    send_str(&c, "abcd");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    assert_open(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* On a path that does not exist: the 404 comes instead of 100, and closes. */
    conn_open(&c, s->port);
    send_str(&c, "POST /nope HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\nExpect: 100-continue\r\n"
                 "Content-Length: 10\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 404, "NotFound");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* On a method the path does not take: 405 with Allow instead of 100. */
    conn_open(&c, s->port);
    send_str(&c, "POST /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 405, "MethodNotAllowed");
    assert_string_equal(it_response_header(&r, "allow"), "GET, HEAD");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* With a body over the limit: 413, never 100. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 2097152\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 413, "PayloadTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* An expectation other than 100-continue: 417. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 417, "ExpectationFailed");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
}

/* ---- methods and paths ----------------------------------------------------------------------- */

static void test_head(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    request(&c, "HEAD", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(it_response_header(&r, "content-length"), "15");
    assert_int_equal(r.body_len, 0);
    it_response_free(&r);
    /* Not one body byte follows the head. */
    assert_false(it_data_within(&c, 150));
    assert_int_equal(c.len, 0);
    /* HEAD between two GETs in one pipelined write: framing stays exact. */
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                 "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    it_response_free(&r);
    read_resp(&c, &r, true);
    assert_int_equal(r.status, 200);
    assert_string_equal(it_response_header(&r, "content-length"), "15");
    it_response_free(&r);
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    it_response_free(&r);
    assert_false(it_data_within(&c, 50));
    it_conn_close(&c);
}

static void test_405_and_404(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        request(&c, methods[i], i % 2 ? "/readyz" : "/healthz", NULL, "", 0, &r);
        it_assert_error(&r, 405, "MethodNotAllowed");
        assert_string_equal(it_response_header(&r, "allow"), "GET, HEAD");
        assert_open(&c, &r); /* a 405 does not end the connection */
        it_response_free(&r);
    }
    static const char *const missing[] = { "/nope", "/healthz/", "/healthz/x", "/HEALTHZ", "/",
                                           "/connector/protimeapi/api/v1/nope" };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        request(&c, "GET", missing[i], NULL, NULL, 0, &r);
        it_assert_error(&r, 404, "NotFound");
        assert_open(&c, &r);
        it_response_free(&r);
    }
    /* A query string does not change the route. */
    request(&c, "GET", "/healthz?x=1&y", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
}

/* ---- limits ------------------------------------------------------------------------------------ */

static void test_uri_limit(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    /* A request target of exactly 4096 bytes is served. */
    char *pad = repeat('a', 4096 - strlen("/healthz?pad="));
    char *target = it_fmt("/healthz?pad=%s", pad);
    assert_int_equal(strlen(target), 4096);
    conn_open(&c, s->port);
    request(&c, "GET", target, NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
    /* One byte more is 414, and the connection ends. */
    char *longer = it_fmt("%sa", target);
    conn_open(&c, s->port);
    request(&c, "GET", longer, NULL, NULL, 0, &r);
    it_assert_error(&r, 414, "UriTooLong");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    /* Far over, sent in small pieces. */
    char *huge = repeat('z', 20000);
    conn_open(&c, s->port);
    send_str(&c, "GET /");
    for (size_t off = 0; off < 20000; off += 1000)
        send_raw(&c, huge + off, 1000);
    read_resp(&c, &r, false);
    it_assert_error(&r, 414, "UriTooLong");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    free(huge);
    free(longer);
    free(target);
    free(pad);
    assert_alive(s->port);
}

static void test_header_block_limit_default(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    /* 15 000 bytes of headers: under the 16 KiB default. */
    char *v = repeat('h', 15000);
    char *h = it_fmt("X-Big: %s\r\n", v);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", h, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
    free(h);
    free(v);
    /* One 17 000-byte header: 431. */
    v = repeat('h', 17000);
    h = it_fmt("X-Big: %s\r\n", v);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", h, NULL, 0, &r);
    it_assert_error(&r, 431, "RequestHeaderFieldsTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    free(h);
    free(v);
    /* Many headers that add up to more than 16 KiB: 431 as well. */
    char *line = repeat('m', 500);
    char *lines = NULL;
    size_t used = 0;
    for (int i = 0; i < 40; i++) {
        char *l = it_fmt("X-H%d: %s\r\n", i, line);
        size_t ln = strlen(l);
        lines = realloc(lines, used + ln + 1);
        assert_non_null(lines);
        memcpy(lines + used, l, ln + 1);
        used += ln;
        free(l);
    }
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", lines, NULL, 0, &r);
    it_assert_error(&r, 431, "RequestHeaderFieldsTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    free(lines);
    free(line);
    assert_alive(s->port);
}

static void test_header_block_limit_lowered(void **state)
{
    static const char *const args[] = { "--max-header-bytes", "2048", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c;
    it_response_t r;
    char *v = repeat('h', 1000);
    char *h = it_fmt("X-Big: %s\r\n", v);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", h, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
    free(h);
    free(v);

    v = repeat('h', 3000);
    h = it_fmt("X-Big: %s\r\n", v);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", h, NULL, 0, &r);
    it_assert_error(&r, 431, "RequestHeaderFieldsTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    free(h);
    free(v);

    /* Six 400-byte headers: each fine, together over 2048. */
    v = repeat('k', 400);
    h = it_fmt("A: %s\r\nB: %s\r\nC: %s\r\nD: %s\r\nE: %s\r\nF: %s\r\n", v, v, v, v, v, v);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", h, NULL, 0, &r);
    it_assert_error(&r, 431, "RequestHeaderFieldsTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    free(h);
    free(v);
    assert_alive(s->port);
}

static void test_body_limit(void **state)
{
    static const char *const args[] = { "--max-body", "1000", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c;
    it_response_t r;

    /* Content-Length over the limit: 413 at once, before any body byte is sent. */
    conn_open(&c, s->port);
    send_str(&c, "POST /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Content-Length: 1001\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 413, "PayloadTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* Exactly the limit: accepted. */
    char *body = repeat('x', 1000);
    conn_open(&c, s->port);
    request(&c, "GET", "/healthz", NULL, body, 1000, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);

    /* A chunked body that grows past the limit: 413 and closed. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char *chunk = it_fmt("258\r\n%.600s\r\n", body); /* 0x258 = 600 */
    send_str(&c, chunk);
    send_str(&c, chunk);
    read_resp(&c, &r, false);
    it_assert_error(&r, 413, "PayloadTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);

    /* A chunked body under the limit in several chunks: accepted. */
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    send_str(&c, chunk);
    send_str(&c, "12c\r\n");
    send_raw(&c, body, 300);
    send_str(&c, "\r\n0\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
    free(chunk);
    free(body);
    assert_alive(s->port);
}

/* The default limit is 1 MiB (before authentication 64 KiB: test_content_length_body_accepted). */
static void test_body_limit_default(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_str(&c, "POST /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Content-Length: 1048577\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 413, "PayloadTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
}

/* ---- slow bodies before authentication (issue #12, risk 1) ------------------------------ */

#define API_BREAK "/connector/protimeapi/api/v1/breaks/1"

/* A request to an authenticated route with a bad or missing token and a large body is
 * answered 401 from its head: the server neither waits for nor holds the body. */
static void test_unauthenticated_body_refused_first(void **state)
{
    it_server_t *s = start(state, NULL);
    static const char *const auth[] = { "Authorization: Bearer not-a-token\r\n", "" };
    for (size_t i = 0; i < 2; i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        char *head = it_fmt("PUT " API_BREAK " HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n%s"
                            "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n",
                            auth[i]);
        send_str(&c, head); /* and no body */
        free(head);
        if (it_read_response(&c, &r, false, IT_IO_TIMEOUT_MS) != 0)
            fail_msg("[%zu] no answer before the body: %s", i, it_last_error());
        it_assert_error(&r, 401, "Unauthorized");
        assert_non_null(it_response_header(&r, "www-authenticate"));
        assert_closes(&c, &r);
        it_response_free(&r);
        it_conn_close(&c);
    }
    /* With Expect: 100-continue the refusal comes instead of the 100. */
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_str(&c, "PUT " API_BREAK " HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 401, "Unauthorized");
    it_response_free(&r);
    it_conn_close(&c);
    /* A route that authenticates nobody holds at most 64 KiB of body. */
    conn_open(&c, s->port);
    send_str(&c, "GET /tenants/acme/.well-known/openid-configuration HTTP/1.1\r\nHost: t\r\n"
                 "User-Agent: it\r\nContent-Length: 65537\r\n\r\n");
    read_resp(&c, &r, false);
    it_assert_error(&r, 413, "PayloadTooLarge");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    assert_alive(s->port);
}

/* A body trickled in a byte at a time (never a 60 s gap) is cut with 408 once
 * --body-time has passed. */
static void test_body_time_bound(void **state)
{
    static const char *const args[] = { "--body-time", "1s", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c;
    conn_open(&c, s->port);
    send_str(&c, "POST /tenants/acme/connect/token HTTP/1.1\r\nHost: t\r\nUser-Agent: it\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: 1000\r\n\r\n");
    /* One byte every 250 ms for at most 15 s (60 bytes), until the server answers. */
    bool answered = false;
    for (int i = 0; i < 60 && !answered; i++) {
        if (it_send(&c, "x", 1) != 0)
            break; /* the server closed after answering */
        answered = it_data_within(&c, 250);
    }
    it_response_t r;
    read_resp(&c, &r, false);
    it_assert_error(&r, 408, "RequestTimeout");
    it_response_free(&r);
    it_conn_close(&c);
    assert_alive(s->port);
}

/* Opens a connection and checks it is served (a /healthz round trip), with headers. */
static void open_served(it_conn_t *c, int port, const char *headers)
{
    it_response_t r;
    conn_open(c, port);
    request(c, "GET", "/healthz", headers, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
}

/* The next connection is refused with 503 and closed. */
static void expect_refused(int port, const char *headers)
{
    it_conn_t c;
    it_response_t r;
    conn_open(&c, port);
    char *req = it_fmt("GET /healthz HTTP/1.1\r\nHost: t\r\n%s\r\n", headers ? headers : "");
    it_send_str(&c, req); /* the server may have answered and closed already */
    free(req);
    read_resp(&c, &r, false);
    it_assert_error(&r, 503, "ServiceUnavailable");
    if (!it_peer_closed(&c, CLOSE_WAIT_MS))
        fail_msg("the refused connection was not closed");
    it_response_free(&r);
    it_conn_close(&c);
}

static void test_max_connections_per_client(void **state)
{
    static const char *const args[] = { "--max-connections-per-client", "3", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c[3];
    for (int i = 0; i < 3; i++)
        open_served(&c[i], s->port, NULL);
    expect_refused(s->port, NULL);
    /* Once one closes, its place is free again (the server notices the close soon). */
    it_conn_close(&c[0]);
    bool served = false;
    for (int i = 0; i < 50 && !served; i++) {
        it_response_t r;
        if (it_request(s->port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
            served = r.status == 200;
            it_response_free(&r);
        }
        if (!served)
            it_sleep_ms(100);
    }
    assert_true(served);
    it_conn_close(&c[1]);
    it_conn_close(&c[2]);
}

/* Without --max-connections-per-client, one address gets a quarter of the slots:
 * 50 clients of one address no longer take every slot of --max-connections. */
static void test_max_connections_per_client_default(void **state)
{
    static const char *const args[] = { "--max-connections", "8", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c[2];
    for (int i = 0; i < 2; i++)
        open_served(&c[i], s->port, NULL);
    expect_refused(s->port, NULL);
    it_conn_close(&c[0]);
    it_conn_close(&c[1]);
}

/* Behind a --trusted-proxy, connections count per X-Forwarded-For client; addresses
 * a client put left of the proxy's own entry do not help it. */
static void test_max_connections_per_client_behind_proxy(void **state)
{
    static const char *const args[] = { "--max-connections-per-client", "2", "--trusted-proxy",
                                        "127.0.0.1/32", NULL };
    it_server_t *s = start(state, args);
    it_conn_t a1, a2, b1;
    open_served(&a1, s->port, "X-Forwarded-For: 192.0.2.1\r\n");
    open_served(&a2, s->port, "X-Forwarded-For: 198.51.100.7, 192.0.2.1\r\n");
    expect_refused(s->port, "X-Forwarded-For: 192.0.2.1\r\n");
    expect_refused(s->port, "X-Forwarded-For: 203.0.113.9, 192.0.2.1\r\n");
    open_served(&b1, s->port, "X-Forwarded-For: 192.0.2.2\r\n");
    it_conn_close(&a1);
    it_conn_close(&a2);
    it_conn_close(&b1);
}

static void test_max_connections(void **state)
{
    /* Both connections come from 127.0.0.1: lift the per-client cap. */
    static const char *const args[] = { "--max-connections", "2", "--max-connections-per-client",
                                        "0", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c1, c2, c3;
    it_response_t r;
    conn_open(&c1, s->port);
    conn_open(&c2, s->port);
    request(&c1, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    request(&c2, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);

    /* The third is refused with 503 and closed, without sending anything. */
    conn_open(&c3, s->port);
    read_resp(&c3, &r, false);
    it_assert_error(&r, 503, "ServiceUnavailable");
    assert_closes(&c3, &r);
    it_response_free(&r);
    it_conn_close(&c3);

    /* The two admitted ones still work. */
    request(&c2, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);

    /* After one closes, a new connection is admitted (once the server has seen the
     * close, which takes a moment: bounded retry). */
    it_conn_close(&c1);
    int status = -1;
    uint64_t deadline = it_now_ms() + 15000;
    while (it_now_ms() < deadline) {
        status = it_get_status(s->port, "/healthz");
        if (status == 200)
            break;
        it_sleep_ms(20);
    }
    assert_int_equal(status, 200);
    request(&c2, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c2);
}

/* ---- timeouts ----------------------------------------------------------------------------------- */

static void test_slow_header_dropped(void **state)
{
    static const char *const args[] = { "--header-timeout", "300ms", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c;
    it_response_t r;

    /* A head that stops half-way: 408 after about 300 ms, then closed. */
    conn_open(&c, s->port);
    uint64_t t0 = it_now_ms();
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Partial: ");
    read_resp(&c, &r, false);
    uint64_t took = it_now_ms() - t0;
    it_assert_error(&r, 408, "RequestTimeout");
    assert_closes(&c, &r);
    it_response_free(&r);
    it_conn_close(&c);
    /* Not before the deadline; the upper bound only tells "the head deadline fired" from
     * "the 60 s idle timeout did", with room for a loaded machine. */
    if (took < 250 || took > 20000)
        fail_msg("408 after %llu ms, expected about 300", (unsigned long long)took);

    /* A client trickling one byte every 50 ms is dropped all the same: the deadline is
     * for the whole head, not per byte. */
    conn_open(&c, s->port);
    static const char head[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
    t0 = it_now_ms();
    bool dropped = false;
    for (size_t i = 0; i < sizeof(head) - 1 && it_now_ms() - t0 < 20000; i++) {
        if (it_send(&c, head + i, 1) != 0 || it_data_within(&c, 50)) {
            dropped = true;
            break;
        }
    }
    assert_true(dropped);
    read_resp(&c, &r, false);
    took = it_now_ms() - t0;
    it_assert_error(&r, 408, "RequestTimeout");
    it_response_free(&r);
    assert_true(it_peer_closed(&c, CLOSE_WAIT_MS));
    it_conn_close(&c);
    if (took > 20000)
        fail_msg("trickling client dropped after %llu ms", (unsigned long long)took);

    /* A connection that never sends a byte is closed too. */
    conn_open(&c, s->port);
    t0 = it_now_ms();
    assert_true(it_peer_closed(&c, CLOSE_WAIT_MS));
    assert_true(it_now_ms() - t0 >= 200);
    it_conn_close(&c);
    assert_alive(s->port);
}

static void test_idle_timeout(void **state)
{
    static const char *const args[] = { "--idle-timeout", "300ms", NULL };
    it_server_t *s = start(state, args);
    it_conn_t c;
    it_response_t r;

    /* Active: requests 100 ms apart keep the connection for longer than 300 ms. */
    conn_open(&c, s->port);
    for (int i = 0; i < 6; i++) {
        request(&c, "GET", "/healthz", NULL, NULL, 0, &r);
        assert_health_ok(&r);
        it_response_free(&r);
        it_sleep_ms(100);
    }
    /* Idle: closed after about 300 ms, without an answer. */
    request(&c, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    uint64_t t0 = it_now_ms();
    assert_true(it_peer_closed(&c, CLOSE_WAIT_MS));
    uint64_t took = it_now_ms() - t0;
    assert_int_equal(c.len, 0);
    it_conn_close(&c);
    if (took < 150 || took > 20000)
        fail_msg("idle connection closed after %llu ms, expected about 300",
                 (unsigned long long)took);
    assert_alive(s->port);
}

/* ---- malformed requests ------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *data;
    size_t len; /* 0: strlen(data) */
} bad_case_t;

#define BAD(name, lit) { name, lit, sizeof(lit) - 1 }

static const bad_case_t malformed[] = {
    BAD("unknown method", "FOO /healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
    BAD("lower-case method", "get /healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
    BAD("version 9.9", "GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n"),
    BAD("version 1.x", "GET /healthz HTTP/1.x\r\nHost: t\r\n\r\n"),
    BAD("protocol HTTX", "GET /healthz HTTX/1.1\r\nHost: t\r\n\r\n"),
    BAD("space in target", "GET /heal thz HTTP/1.1\r\nHost: t\r\n\r\n"),
    BAD("target not a path", "GET healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
    BAD("request line without CRLF", "GET /healthz HTTP/1.1Host: t\r\n\r\n"),
    BAD("bare CR", "GET /healthz HTTP/1.1\rHost: t\r\n\r\n"),
    BAD("LF-only line ends", "GET /healthz HTTP/1.1\nHost: t\n\n"),
    BAD("header without colon", "GET /healthz HTTP/1.1\r\nHost t\r\n\r\n"),
    BAD("NUL in target", "GET /heal\0thz HTTP/1.1\r\nHost: t\r\n\r\n"),
    BAD("NUL in header name", "GET /healthz HTTP/1.1\r\nHo\0st: t\r\n\r\n"),
    BAD("NUL in header value", "GET /healthz HTTP/1.1\r\nHost: t\0u\r\n\r\n"),
    BAD("control byte in header value", "GET /healthz HTTP/1.1\r\nHost: t\001u\r\n\r\n"),
    BAD("DEL in header value", "GET /healthz HTTP/1.1\r\nHost: t\177u\r\n\r\n"),
    BAD("Content-Length not a number",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n"),
    BAD("Content-Length negative", "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"),
    BAD("Content-Length list", "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 1\r\n\r\na"),
    BAD("Content-Length twice",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    BAD("Content-Length overflow",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    BAD("Content-Length and Transfer-Encoding",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    BAD("Transfer-Encoding and Content-Length",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 5\r\n\r\n0\r\n\r\n"),
    BAD("Transfer-Encoding not chunked", "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"),
    BAD("Transfer-Encoding chunked, gzip",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
    BAD("Content-Length with space before colon",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello"),
    BAD("Transfer-Encoding with space before colon",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    BAD("chunk size not hex",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    BAD("chunk size negative",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"),
    BAD("chunk size overflow",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"),
    BAD("chunk data glued to the next size",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n"),
    BAD("chunk with LF-only",
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
};

static void test_malformed_requests(void **state)
{
    it_server_t *s = start(state, NULL);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        const bad_case_t *bc = &malformed[i];
        it_conn_t c;
        it_response_t r;
        char why[160];
        conn_open(&c, s->port);
        send_raw(&c, bc->data, bc->len);
        if (it_read_response(&c, &r, false, IT_IO_TIMEOUT_MS) != 0)
            fail_msg("[%s] no answer: %s", bc->name, it_last_error());
        if (r.status != 400)
            fail_msg("[%s] expected 400, got %d: %.200s", bc->name, r.status, r.body);
        if (!it_error_body_ok(r.body, r.body_len, "BadRequest", why, sizeof(why)))
            fail_msg("[%s] bad error body (%s): %.200s", bc->name, why, r.body);
        const char *conn = it_response_header(&r, "connection");
        if (!conn || strcasecmp(conn, "close") != 0)
            fail_msg("[%s] no 'Connection: close'", bc->name);
        if (!it_peer_closed(&c, CLOSE_WAIT_MS))
            fail_msg("[%s] the connection was not closed", bc->name);
        if (c.len != 0)
            fail_msg("[%s] extra bytes after the 400: %.100s", bc->name, c.buf);
        it_response_free(&r);
        it_conn_close(&c);
        assert_alive(s->port);
    }
}

/* RFC 9112 §5.2: a server either rejects obs-fold with 400 or replaces it with spaces.
 * Either way, the folded line must never become a header of its own (here a
 * Content-Length that would swallow the next request). */
static void test_obs_fold_not_a_header(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b\r\n Content-Length: 38\r\n\r\n"
                 "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    read_resp(&c, &r, false);
    if (r.status == 400) {
        it_assert_error(&r, 400, "BadRequest");
        assert_closes(&c, &r);
    } else {
        assert_health_ok(&r);
        it_response_free(&r);
        read_resp(&c, &r, false);
        it_assert_error(&r, 404, "NotFound");
    }
    it_response_free(&r);
    it_conn_close(&c);
    assert_alive(s->port);
}

/* Issue #12, risk 6: obs-fold is refused with 400 rather than joined to the value,
 * also when the folded line arrives in a read of its own. */
static void test_obs_fold_refused(void **state)
{
    it_server_t *s = start(state, NULL);
    static const char *const folds[] = {
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\tc\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A:\r\n c\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b\r\n",
    };
    for (size_t i = 0; i < sizeof(folds) / sizeof(folds[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_str(&c, folds[i]);
        if (i == 3) {
            it_sleep_ms(200); /* the continuation comes in a later read */
            send_str(&c, "  c\r\n\r\n");
        }
        read_resp(&c, &r, false);
        if (r.status != 400)
            fail_msg("fold %zu: expected 400, got %d", i, r.status);
        it_assert_error(&r, 400, "BadRequest");
        assert_closes(&c, &r);
        it_response_free(&r);
        it_conn_close(&c);
    }
    /* A value split across reads is not a fold. */
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: b");
    it_sleep_ms(200);
    send_str(&c, " c\r\nX-B: ");
    it_sleep_ms(200);
    send_str(&c, "d\r\n\r\n");
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    it_response_free(&r);
    it_conn_close(&c);
}

/* Issue #12, risk 6: absolute-form targets are routed on their path; an authority
 * that is not a host is refused. (Its check against --domain: test_auth.) */
static void test_absolute_form(void **state)
{
    it_server_t *s = start(state, NULL);
    static const char *const ok[] = {
        "GET http://other.example/healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET HTTP://other.example:81/healthz?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://other.example/healthz HTTP/1.0\r\n\r\n",
    };
    static const char *const bad[] = {
        "GET http:///healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://user@other.example/healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://@/healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_str(&c, ok[i]);
        read_resp(&c, &r, false);
        if (r.status != 200)
            fail_msg("ok %zu: expected 200, got %d: %s", i, r.status, r.body);
        assert_health_ok(&r);
        it_response_free(&r);
        it_conn_close(&c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_str(&c, bad[i]);
        read_resp(&c, &r, false);
        if (r.status != 400)
            fail_msg("bad %zu: expected 400, got %d: %s", i, r.status, r.body);
        it_assert_error(&r, 400, "BadRequest");
        it_response_free(&r);
        it_conn_close(&c);
    }
}

/*
 * Regression, fixed (header-name validation, src/http/server.c with llhttp in loose mode): a header
 * name containing whitespace ("Bad Name: x"), whitespace between a name and its colon
 * ("X-Custom : x"; only Content-Length and Transfer-Encoding are rejected) and an empty
 * name (": x") are accepted and answered 200. RFC 9112 §5.1 requires a 400 for
 * whitespace before the colon (a request-smuggling vector through proxies that read
 * the name differently). Fix: check every header name is a non-empty RFC 9110 token in
 * on_header_field/on_headers_complete, or compile llhttp with LLHTTP_STRICT_MODE=1
 * (which rejects the first two, not the empty name).
 */
static void test_malformed_header_names(void **state)
{
    static const bad_case_t cases[] = {
        BAD("space in header name", "GET /healthz HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n"),
        BAD("space before colon", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Custom : x\r\n\r\n"),
        BAD("empty header name", "GET /healthz HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n"),
    };
    it_server_t *s = start(state, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_raw(&c, cases[i].data, cases[i].len);
        read_resp(&c, &r, false);
        if (r.status != 400)
            fail_msg("[%s] expected 400, got %d", cases[i].name, r.status);
        it_assert_error(&r, 400, "BadRequest");
        assert_closes(&c, &r);
        it_response_free(&r);
        it_conn_close(&c);
    }
}

/*
 * Regression, fixed (chunked framing, llhttp compiled in loose mode by CMakeLists.txt): the two bytes
 * after a chunk's data are skipped without checking they are CRLF. "3\r\nabcXX0\r\n\r\n"
 * is accepted as a complete body "abc" (answered 405 here), and
 * "3\r\nabcdef\r\n0\r\n\r\n" is read as "abc" followed by a chunk of size 0xf ("f"
 * taken from the data), so the server waits for 15 more bytes that are really the next
 * request: a front proxy that frames the body correctly and breakhook disagree about
 * where the request ends (request smuggling). RFC 9112 §7.1: chunk = chunk-size CRLF
 * chunk-data CRLF. Fix: build llhttp with LLHTTP_STRICT_MODE=1 (target_compile_definitions
 * on the llhttp object library, PUBLIC so http.h and server.c agree), which answers
 * "Expected CRLF after chunk" for both.
 */
static void test_chunk_data_must_end_in_crlf(void **state)
{
    static const bad_case_t cases[] = {
        BAD("two junk bytes instead of CRLF",
            "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabcXX0\r\n\r\n"),
        BAD("chunk data longer than its size",
            "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabcdef\r\n0\r\n\r\n"),
    };
    it_server_t *s = start(state, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_raw(&c, cases[i].data, cases[i].len);
        if (it_read_response(&c, &r, false, 1000) != 0) {
            it_conn_close(&c);
            fail_msg("[%s] no answer within 1 s: %s", cases[i].name, it_last_error());
        }
        if (r.status != 400)
            fail_msg("[%s] expected 400, got %d", cases[i].name, r.status);
        it_assert_error(&r, 400, "BadRequest");
        assert_closes(&c, &r);
        it_response_free(&r);
        it_conn_close(&c);
    }
}

/*
 * Regression, fixed (request validation, src/http/server.c): an HTTP/1.1 request without a Host
 * header (or with two), request lines claiming HTTP/2.0 or HTTP/0.9, and a request line
 * without any version are answered 200 with an HTTP/1.1 head.
 * RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
 * HTTP/1.1 request message that lacks a Host header field"; a major version other than
 * 1 should get 505 (or 400). Fix: in on_headers_complete, reject http_major != 1 and,
 * for 1.1, a missing or repeated Host.
 */
static void test_missing_host_and_foreign_versions(void **state)
{
    static const bad_case_t cases[] = {
        BAD("HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\nUser-Agent: it\r\n\r\n"),
        BAD("two Host headers", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        BAD("HTTP/2.0 request line", "GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n"),
        BAD("HTTP/0.9 request line", "GET /healthz HTTP/0.9\r\nHost: t\r\n\r\n"),
        BAD("no version (HTTP/0.9 simple request)", "GET /healthz\r\nHost: t\r\n\r\n"),
    };
    it_server_t *s = start(state, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_raw(&c, cases[i].data, cases[i].len);
        read_resp(&c, &r, false);
        if (r.status != 400 && r.status != 505)
            fail_msg("[%s] expected 400 or 505, got %d", cases[i].name, r.status);
        it_response_free(&r);
        it_conn_close(&c);
    }
}

/*
 * Regression, fixed (src/http/server.c, conn_feed): after a request with "Connection: Upgrade" +
 * "Upgrade: ..." (or any CONNECT) has been answered, the next bytes on that connection
 * make llhttp return HPE_PAUSED_UPGRADE at once without consuming anything; conn_feed
 * then calls dispatch() again for the already-answered request (the handler answers
 * twice: "handler answered twice" in the log), the state stays CONN_IDLE and the loop
 * retries forever. The whole server spins at 100 % CPU, stops serving every client and
 * writes the error line to its log without end (hundreds of MB in seconds).
 * Reproducer:
 *   printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n'\
 *          'Upgrade: websocket\r\n\r\nx' | nc 127.0.0.1 PORT
 * Fix: on HPE_PAUSED_UPGRADE do not dispatch again; treat the request as the last one
 * on the connection (answer with Connection: close and close; llhttp's upgrade flag
 * can be read in on_message_complete to clear keep_alive before dispatch).
 */
static void test_upgrade_then_more_bytes(void **state)
{
    static const char *const first[] = {
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
    };
    it_server_t *s = start(state, NULL);
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
        it_conn_t c;
        it_response_t r;
        conn_open(&c, s->port);
        send_str(&c, first[i]);
        read_resp(&c, &r, false);
        it_response_free(&r);
        /* More bytes after the upgrade request: whatever happens to this connection,
         * the server must go on serving others. */
        (void)it_send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        it_sleep_ms(100);
        assert_alive(s->port);
        it_conn_close(&c);
    }
}

/* A client that vanishes mid-request (reset) does not disturb the server. */
static void test_client_reset_mid_request(void **state)
{
    it_server_t *s = start(state, NULL);
    for (int i = 0; i < 5; i++) {
        it_conn_t c;
        conn_open(&c, s->port);
        send_str(&c, i % 2 ? "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"
                           : "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: ");
        struct linger lg = { 1, 0 }; /* close with RST */
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        it_conn_close(&c);
    }
    assert_alive(s->port);
}

/* ---- request ids and the access log ------------------------------------------------------------ */

static void test_request_id(void **state)
{
    it_server_t *s = start(state, NULL);
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    /* Sane ids are echoed, on success and on error alike. */
    static const char *const sane[] = { "abc-123", "req_42.A", "0b8f6a3c-5d1e-4e7b-9a2f-3c4d5e6f7a8b",
                                        "0123456789abcdef0123456789abcdef" };
    for (size_t i = 0; i < sizeof(sane) / sizeof(sane[0]); i++) {
        char *h = it_fmt("X-Request-Id: %s\r\n", sane[i]);
        request(&c, "GET", i % 2 ? "/nope" : "/healthz", h, NULL, 0, &r);
        assert_int_equal(r.status, i % 2 ? 404 : 200);
        assert_int_equal(it_response_header_count(&r, "x-request-id"), 1);
        assert_string_equal(it_response_header(&r, "x-request-id"), sane[i]);
        it_response_free(&r);
        free(h);
    }
    /* Anything else is replaced by an id of the server's own. */
    char *too_long = repeat('a', 200);
    const char *const insane[] = { "has space", "semi;colon", "slash/x", "quote\"x", "%41", too_long };
    for (size_t i = 0; i < sizeof(insane) / sizeof(insane[0]); i++) {
        char *h = it_fmt("X-Request-Id: %s\r\n", insane[i]);
        request(&c, "GET", "/healthz", h, NULL, 0, &r);
        assert_health_ok(&r);
        const char *id = it_response_header(&r, "x-request-id");
        assert_non_null(id);
        assert_string_not_equal(id, insane[i]);
        if (!plain_id(id))
            fail_msg("generated id '%s' is not plain", id);
        it_response_free(&r);
        free(h);
    }
    free(too_long);
    it_conn_close(&c);

    /* Without one: generated, plain, and unique across requests and connections. */
    char *seen[24];
    size_t n_seen = 0;
    for (int k = 0; k < 4; k++) {
        conn_open(&c, s->port);
        for (int i = 0; i < 6; i++) {
            request(&c, "GET", i == 5 ? "/nope" : "/healthz", NULL, NULL, 0, &r);
            const char *id = it_response_header(&r, "x-request-id");
            if (!plain_id(id))
                fail_msg("generated id '%s' is not plain", id ? id : "(none)");
            for (size_t j = 0; j < n_seen; j++)
                if (strcmp(seen[j], id) == 0)
                    fail_msg("request id '%s' was given twice", id);
            seen[n_seen++] = strdup(id);
            it_response_free(&r);
        }
        it_conn_close(&c);
    }
    /* Errors the server produces itself carry one too. */
    conn_open(&c, s->port);
    send_str(&c, "FOO / HTTP/1.1\r\n\r\n");
    read_resp(&c, &r, false);
    assert_int_equal(r.status, 400);
    assert_true(plain_id(it_response_header(&r, "x-request-id")));
    it_response_free(&r);
    it_conn_close(&c);
    for (size_t j = 0; j < n_seen; j++)
        free(seen[j]);
}

/* Reads the server log and returns its "request" lines (parsed), checking that every
 * line of the file is one JSON object. */
static json_t *access_lines(const it_server_t *s)
{
    size_t n;
    char *text = it_read_file(s->log_path, &n);
    assert_non_null(text);
    json_t *out = json_array();
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            fail_msg("the log does not end with a newline: %.200s", line);
        *nl = '\0';
        json_t *j = it_json_parse(line, strlen(line));
        if (!j || !json_is_object(j))
            fail_msg("log line is not a JSON object: %.200s", line);
        json_t *msg = json_object_get(j, "msg");
        if (json_is_string(msg) && strcmp(json_string_value(msg), "request") == 0)
            json_array_append(out, j);
        json_decref(j);
        line = nl + 1;
    }
    free(text);
    return out;
}

static json_t *line_with_rid(json_t *lines, const char *rid)
{
    json_t *found = NULL;
    size_t i, count = 0;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        json_t *r = json_object_get(l, "rid");
        if (json_is_string(r) && strcmp(json_string_value(r), rid) == 0) {
            found = l;
            count++;
        }
    }
    if (count != 1)
        fail_msg("%zu access log lines for request id '%s', expected 1", count, rid);
    return found;
}

static void test_access_log(void **state)
{
    it_server_t *s = start(state, NULL);
    fixture_t *f = *state;
    static const struct {
        const char *method, *path, *rid;
        int status;
    } reqs[] = {
        { "GET", "/healthz", "log-a", 200 },  { "GET", "/nope", "log-b", 404 },
        { "POST", "/healthz", "log-c", 405 }, { "HEAD", "/healthz", "log-d", 200 },
        { "GET", "/readyz", "log-e", 200 },
    };
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        char *h = it_fmt("X-Request-Id: %s\r\n", reqs[i].rid);
        request(&c, reqs[i].method, reqs[i].path, h, strcmp(reqs[i].method, "POST") ? NULL : "",
                0, &r);
        assert_int_equal(r.status, reqs[i].status);
        it_response_free(&r);
        free(h);
    }
    it_conn_close(&c);
    /* A malformed request is logged too, with the id the answer carried. */
    conn_open(&c, s->port);
    send_str(&c, "FOO / HTTP/1.1\r\n\r\n");
    read_resp(&c, &r, false);
    assert_int_equal(r.status, 400);
    char *bad_rid = strdup(it_response_header(&r, "x-request-id"));
    it_response_free(&r);
    it_conn_close(&c);

    assert_int_equal(it_server_stop(s, 0), 0);
    f->done = true;
    json_t *lines = access_lines(s);
    assert_int_equal(json_array_size(lines), sizeof(reqs) / sizeof(reqs[0]) + 1);
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        json_t *l = line_with_rid(lines, reqs[i].rid);
        assert_int_equal(json_integer_value(json_object_get(l, "status")), reqs[i].status);
        assert_string_equal(json_string_value(json_object_get(l, "method")), reqs[i].method);
        assert_string_equal(json_string_value(json_object_get(l, "path")), reqs[i].path);
        assert_true(json_is_integer(json_object_get(l, "bytes")));
        assert_true(json_integer_value(json_object_get(l, "bytes")) > 0);
        assert_string_equal(json_string_value(json_object_get(l, "level")), "info");
    }
    json_t *l = line_with_rid(lines, bad_rid);
    assert_int_equal(json_integer_value(json_object_get(l, "status")), 400);
    json_decref(lines);
    free(bad_rid);
}

static void test_access_log_off(void **state)
{
    static const char *const args[] = { "--access-log=false", NULL };
    it_server_t *s = start(state, args);
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(it_get_status(s->port, "/healthz"), 200);
    assert_int_equal(it_server_stop(s, 0), 0);
    f->done = true;
    json_t *lines = access_lines(s);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
}

/* Counts the "request" lines of rids[0..n) in the log (each must appear at most once,
 * and in the order given: one connection's answers go out, and are logged, in
 * request order). Returns how many are there so far. */
static size_t access_lines_logged(const it_server_t *s, char rids[][16], size_t n)
{
    json_t *lines = access_lines(s);
    size_t next = 0, i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        const char *rid = json_string_value(json_object_get(l, "rid"));
        if (!rid || strncmp(rid, "run-", 4) != 0)
            continue;
        if (next >= n || strcmp(rid, rids[next]) != 0)
            fail_msg("access line for '%s' where '%s' was due", rid,
                     next < n ? rids[next] : "(none)");
        assert_int_equal(json_integer_value(json_object_get(l, "status")), 200);
        next++;
    }
    json_decref(lines);
    return next;
}

/* The loop thread batches its log lines and writes them once per loop iteration
 * (src/http/server.c, core/log.h): while the server runs, and without any other
 * event to wake its loop, every answered request still gets its one access line,
 * whole, in order, and soon. Keep-alive requests one by one, then a pipelined batch. */
#define RUN_SINGLE 20
#define RUN_PIPELINED 40
static void test_access_log_while_running(void **state)
{
    it_server_t *s = start(state, NULL);
    static char rids[RUN_SINGLE + RUN_PIPELINED][16];
    it_conn_t c;
    it_response_t r;
    conn_open(&c, s->port);
    for (size_t i = 0; i < RUN_SINGLE; i++) {
        snprintf(rids[i], sizeof(rids[i]), "run-%zu", i);
        char *h = it_fmt("X-Request-Id: %s\r\n", rids[i]);
        request(&c, "GET", "/healthz", h, NULL, 0, &r);
        assert_health_ok(&r);
        it_response_free(&r);
        free(h);
    }
    size_t cap = RUN_PIPELINED * 80, len = 0;
    char *batch = malloc(cap);
    assert_non_null(batch);
    for (size_t i = RUN_SINGLE; i < RUN_SINGLE + RUN_PIPELINED; i++) {
        snprintf(rids[i], sizeof(rids[i]), "run-%zu", i);
        len += (size_t)snprintf(batch + len, cap - len,
                                "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\n\r\n",
                                rids[i]);
        assert_true(len < cap);
    }
    send_raw(&c, batch, len);
    free(batch);
    for (size_t i = 0; i < RUN_PIPELINED; i++) {
        read_resp(&c, &r, false);
        assert_health_ok(&r);
        it_response_free(&r);
    }
    /* The connection stays open and idle: no close, no new request wakes the loop. A
     * line is written after its answer, so wait a little (bounded) for the last. */
    size_t want = RUN_SINGLE + RUN_PIPELINED, got = 0;
    uint64_t t0 = it_now_ms();
    while ((got = access_lines_logged(s, rids, want)) < want && it_now_ms() - t0 < 5000)
        it_sleep_ms(5);
    if (got != want)
        fail_msg("%zu of %zu access lines in the log %llu ms after the last answer", got, want,
                 (unsigned long long)(it_now_ms() - t0));
    it_conn_close(&c);
}

/*
 * Regression, fixed (src/http/server.c, log_access via send_error_and_close): when a request fails
 * before its head is complete (parse error, 431, 408, ...), the access log line uses
 * req->path left over from the previous request on the same connection. That slice
 * points into c->url, which on_message_begin reset and on_url may since have
 * reallocated: with a longer target the log reads freed memory (ASan:
 * heap-use-after-free in put_escaped <- log_access <- finish_request <-
 * send_error_and_close, the server aborts); otherwise it logs the old path or bytes of
 * the new target. On a connection's first request the path is a NULL slice and is
 * logged as the integer 0 ("path":0) instead of a string.
 * Reproducer (ASan build):
 *   printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /%0300d HTTP/1.1\r\nBad\001: x\r\n\r\n' 0 \
 *     | nc 127.0.0.1 PORT
 * Fix: reset req->method_name/target/path/query in on_message_begin (and log "-" for
 * a path that is not known yet, as for the method).
 */
static void test_access_log_after_error_on_reused_connection(void **state)
{
    it_server_t *s = start(state, NULL);
    fixture_t *f = *state;
    it_conn_t c;
    it_response_t r;
    char *pad = repeat('a', 300);
    char *batch = it_fmt("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: first\r\n\r\n"
                      "GET /%s HTTP/1.1\r\nX-Request-Id: second\r\nBad\001: x\r\n\r\n",
                      pad);
    conn_open(&c, s->port);
    send_str(&c, batch);
    read_resp(&c, &r, false);
    assert_health_ok(&r);
    it_response_free(&r);
    read_resp(&c, &r, false);
    it_assert_error(&r, 400, "BadRequest");
    char *rid = strdup(it_response_header(&r, "x-request-id"));
    it_response_free(&r);
    it_conn_close(&c);
    /* First request on a connection, malformed. */
    conn_open(&c, s->port);
    send_str(&c, "FOO / HTTP/1.1\r\n\r\n");
    read_resp(&c, &r, false);
    char *rid2 = strdup(it_response_header(&r, "x-request-id"));
    it_response_free(&r);
    it_conn_close(&c);
    assert_alive(s->port);

    assert_int_equal(it_server_stop(s, 0), 0);
    f->done = true;
    json_t *lines = access_lines(s);
    json_t *l = line_with_rid(lines, rid);
    json_t *path = json_object_get(l, "path");
    assert_true(json_is_string(path));
    /* Whatever it logs for the failed request, it is not the previous request's path. */
    assert_string_not_equal(json_string_value(path), "/healthz");
    l = line_with_rid(lines, rid2);
    assert_true(json_is_string(json_object_get(l, "path")));
    json_decref(lines);
    free(rid);
    free(rid2);
    free(batch);
    free(pad);
}

/* ---- process lifecycle ------------------------------------------------------------------------------ */

static void test_sigterm_exits_cleanly(void **state)
{
    it_server_t *s = start(state, NULL);
    fixture_t *f = *state;
    it_conn_t idle;
    it_response_t r;
    /* An idle keep-alive connection does not hold the shutdown up. */
    conn_open(&idle, s->port);
    request(&idle, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    uint64_t t0 = it_now_ms();
    int st = it_server_stop(s, 30000);
    f->done = true;
    if (st != 0) {
        it_server_dump(s);
        fail_msg("exit status %d after SIGTERM", st);
    }
    /* The idle connection does not hold the exit for --shutdown-timeout (10 s). */
    assert_true(it_now_ms() - t0 < 9000);
    assert_true(it_peer_closed(&idle, CLOSE_WAIT_MS));
    it_conn_close(&idle);
}

/*
 * Regression, fixed (src/cli/serve.c, shutdown timeout; ASan builds only): when --shutdown-timeout
 * expires with a connection still open, cli_serve stops the loop and closes the
 * remaining handles with uv_close(h, NULL) (close_walk), so the connections' close
 * callbacks never run: the http_server_t (64 KiB), each http_conn_t and their buffers
 * are never freed. Harmless in production (the process exits), but LeakSanitizer
 * reports it and the ASan binary exits with status 1 instead of 0. Reproducer: an ASan
 * `breakhook serve --shutdown-timeout 1s`, a client that sends "GET / HTTP/1.1\r\n" and
 * waits, then SIGTERM. Fix: give the http module a way to force-close the remaining
 * connections through their normal close path (e.g. http_server_shutdown with a
 * "now" flag, or an http_server_abort()) before the final uv_run in cli_serve.
 * In non-ASan builds the test runs fully.
 */
static void test_sigterm_with_stuck_client(void **state)
{
    static const char *const args[] = { "--shutdown-timeout", "1s", NULL };
    it_server_t *s = start(state, args);
    fixture_t *f = *state;
    it_conn_t stuck;
    /* A client that never finishes its head: the server still exits, within
     * --shutdown-timeout, with status 0. */
    conn_open(&stuck, s->port);
    send_str(&stuck, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    it_sleep_ms(50);
    uint64_t t0 = it_now_ms();
    int st = it_server_stop(s, 30000);
    f->done = true;
    uint64_t took = it_now_ms() - t0;
    if (st != 0) {
        it_server_dump(s);
        fail_msg("exit status %d after SIGTERM with a stuck client", st);
    }
    /* Without the timeout the stuck client would hold the exit until SIGKILL (30 s). */
    if (took > 20000)
        fail_msg("exit took %llu ms with --shutdown-timeout 1s", (unsigned long long)took);
    assert_true(it_peer_closed(&stuck, CLOSE_WAIT_MS));
    it_conn_close(&stuck);
}

/* ---- command line ---------------------------------------------------------------------------------- */

static size_t count_char(const char *s, char ch)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == ch;
    return n;
}

static void assert_one_line(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || s[n - 1] != '\n' || count_char(s, '\n') != 1)
        fail_msg("expected exactly one line on stderr, got: '%s'", s);
}

static void test_cli_version(void **state)
{
    (void)state;
    it_run_result_t r;
    static const char *const args[] = { "version", NULL };
    assert_int_equal(it_run(args, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, BREAKHOOK_VERSION));
    assert_int_equal(count_char(r.out, '\n'), 1);
    assert_int_equal(r.err_len, 0);
    it_run_result_free(&r);
    static const char *const args2[] = { "--version", NULL };
    assert_int_equal(it_run(args2, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, BREAKHOOK_VERSION));
    it_run_result_free(&r);
}

static void test_cli_usage_errors(void **state)
{
    (void)state;
    it_run_result_t r;
    char dir[256];
    assert_int_equal(it_tmpdir_new(dir, sizeof(dir)), 0);
    it_run_opts_t o = { .cwd = dir }; /* nothing may end up in the source tree */

    static const char *const bogus[] = { "serve", "--bogus", NULL };
    assert_int_equal(it_run(bogus, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    assert_non_null(strstr(r.err, "bogus"));
    it_run_result_free(&r);

    static const char *const bad_value[] = { "serve", "--max-connections", "lots", NULL };
    assert_int_equal(it_run(bad_value, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    it_run_result_free(&r);

    static const char *const bad_listen[] = { "serve", "--listen", "nowhere", NULL };
    assert_int_equal(it_run(bad_listen, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    it_run_result_free(&r);

    /* A store URL with an unknown scheme is a typo, not a file name: refused, and no
     * file named after it appears. */
    static const char *const mysql[] = { "serve", "--store", "mysql:x", NULL };
    assert_int_equal(it_run(mysql, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    assert_non_null(strstr(r.err, "unknown store URL scheme"));
    it_run_result_free(&r);
    char *stray = it_fmt("%s/mysql:x", dir);
    assert_int_equal(access(stray, F_OK), -1);
    free(stray);

    /* A bounded option out of range says the range. */
    static const char *const ttl[] = { "serve", "--token-ttl", "1s", NULL };
    assert_int_equal(it_run(ttl, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    assert_non_null(strstr(r.err, "allowed: 1m to 1d"));
    it_run_result_free(&r);

    static const char *const unknown[] = { "frobnicate", NULL };
    assert_int_equal(it_run(unknown, &o, &r), 0);
    assert_int_equal(r.status, 2);
    assert_one_line(r.err);
    assert_non_null(strstr(r.err, "frobnicate"));
    it_run_result_free(&r);

    static const char *const help[] = { "serve", "--help", NULL };
    assert_int_equal(it_run(help, &o, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--listen"));
    assert_non_null(strstr(r.out, "--max-body"));
    it_run_result_free(&r);
    it_rmtree(dir);
}

static void test_listen_in_use(void **state)
{
    /* A second server on the first one's port fails at start and says why. */
    (void)state;
    it_server_t first;
    assert_int_equal(it_server_start(&first, NULL), 0);
    char *listen = it_fmt("127.0.0.1:%d", first.port);
    char *store = it_fmt("sqlite:%s/second.db", first.dir);
    char *log = it_fmt("%s/second.log", first.dir);
    const char *const args[] = { "serve", "--listen", listen, "--store", store,
                                 "--log-file", log, "--metrics-listen", "off", NULL };
    it_run_opts_t o = { .cwd = first.dir };
    it_run_result_t r;
    assert_int_equal(it_run(args, &o, &r), 0);
    assert_int_equal(r.status, 1);
    assert_one_line(r.err);
    if (!strstr(r.err, "address already in use"))
        fail_msg("the listen failure does not give its cause: %s", r.err);
    it_run_result_free(&r);
    free(listen);
    free(store);
    free(log);
    assert_int_equal(it_server_stop(&first, 0), 0);
    it_server_cleanup(&first);
}

/* The second start of a --demo store cannot show the secret again; its hint for new
 * credentials must be runnable as printed: the binary's real path (not a bare
 * "breakhook", which is not on PATH after make run), this store, every scope. */
static void test_demo_second_run_hint(void **state)
{
    (void)state;
    if (it_store_pg())
        skip(); /* the hint names the SQLite file the demo made */
    static const char *const demo[] = { "--demo", NULL };
    it_server_t first;
    it_server_opts_t o = { .args = demo };
    assert_int_equal(it_server_start(&first, &o), 0);
    assert_int_equal(it_server_stop(&first, 0), 0);
    char *out = it_read_file(first.output_path, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "client_secret:"));
    free(out);

    char *store = it_fmt("sqlite:%s", first.db_path);
    char *log = it_fmt("%s/second.log", first.dir);
    const char *const args[] = { "serve", "--demo", "--listen", "127.0.0.1:0", "--store", store,
                                 "--log-file", log, "--metrics-listen", "127.0.0.1:0", NULL };
    /* The second server runs until the CLI runner's deadline kills it: only its
     * stdout matters here. */
    it_run_opts_t ro = { .cwd = first.dir, .timeout_ms = 10000 };
    it_run_result_t r;
    assert_int_equal(it_run(args, &ro, &r), 0);
    if (!strstr(r.out, BREAKHOOK_BIN " client create --tenant demo --name me --store ") ||
        !strstr(r.out, store) || !strstr(r.out, "connector-protimeapi-webhooks.write") ||
        !strstr(r.out, "connector-protimeapi-breaks.read") || strstr(r.out, "client_secret:"))
        fail_msg("the second run's hint is not runnable as printed:\n%s", r.out);
    it_run_result_free(&r);
    free(store);
    free(log);
    it_server_cleanup(&first);
}

static void test_env_listen(void **state)
{
    /* Without --listen, BREAKHOOK_LISTEN decides (the default would be port 8080). */
    static const char *const env[] = { "BREAKHOOK_LISTEN=127.0.0.1:0", NULL };
    it_server_t *s = start_with(state, NULL, env, true);
    assert_true(s->port != 8080);
    assert_alive(s->port);
}

static void test_flag_beats_env(void **state)
{
    /* With --listen given, a bad BREAKHOOK_LISTEN is ignored. */
    static const char *const env[] = { "BREAKHOOK_LISTEN=not-an-address", NULL };
    it_server_t *s = start_with(state, NULL, env, false);
    assert_alive(s->port);
}

static void test_env_max_connections(void **state)
{
    /* Any option comes from the environment: BREAKHOOK_MAX_CONNECTIONS=1. */
    static const char *const env[] = { "BREAKHOOK_MAX_CONNECTIONS=1", NULL };
    it_server_t *s = start_with(state, NULL, env, false);
    it_conn_t c1, c2;
    it_response_t r;
    conn_open(&c1, s->port);
    request(&c1, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_health_ok(&r);
    it_response_free(&r);
    conn_open(&c2, s->port);
    read_resp(&c2, &r, false);
    it_assert_error(&r, 503, "ServiceUnavailable");
    it_response_free(&r);
    it_conn_close(&c2);
    it_conn_close(&c1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, it_srv_setup, it_srv_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_keep_alive),
        T(test_pipelining_in_order),
        T(test_pipelining_malformed_last),
        T(test_http10),
        T(test_chunked_body_then_405_keeps_connection),
        T(test_content_length_body_accepted),
        T(test_expect_100_continue),
        T(test_head),
        T(test_405_and_404),
        T(test_uri_limit),
        T(test_header_block_limit_default),
        T(test_header_block_limit_lowered),
        T(test_body_limit),
        T(test_body_limit_default),
        T(test_max_connections),
        T(test_slow_header_dropped),
        T(test_idle_timeout),
        T(test_malformed_requests),
        T(test_obs_fold_not_a_header),
        T(test_obs_fold_refused),
        T(test_unauthenticated_body_refused_first),
        T(test_body_time_bound),
        T(test_max_connections_per_client),
        T(test_max_connections_per_client_default),
        T(test_max_connections_per_client_behind_proxy),
        T(test_absolute_form),
        T(test_malformed_header_names),
        T(test_missing_host_and_foreign_versions),
        T(test_chunk_data_must_end_in_crlf),
        T(test_upgrade_then_more_bytes),
        T(test_client_reset_mid_request),
        T(test_request_id),
        T(test_access_log),
        T(test_access_log_off),
        T(test_access_log_while_running),
        T(test_access_log_after_error_on_reused_connection),
        T(test_sigterm_exits_cleanly),
        T(test_sigterm_with_stuck_client),
        T(test_cli_version),
        T(test_cli_usage_errors),
        T(test_listen_in_use),
        T(test_demo_second_run_hint),
        T(test_env_listen),
        T(test_flag_beats_env),
        T(test_env_max_connections),
    };
    return cmocka_run_group_tests_name("integration/http", tests, NULL, NULL);
}
