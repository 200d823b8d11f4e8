/*
 * fuzz_http_request.c: the whole request path of the HTTP server on arbitrary bytes.
 *
 * The input is what a client sends on one connection. A real http_server_t on a libuv
 * loop serves one end of a socketpair (http_server_adopt); the input is written to the
 * other end in pieces whose sizes are derived from the input itself (so the fuzzer also
 * explores how requests are split across reads), the write side is then shut down,
 * and the loop runs until the server has closed the connection, with everything it
 * answers drained and checked.
 *
 * The router has routes of every shape the API uses: the real api_healthz handler,
 * path parameters, query parameters, GET/HEAD/POST/PUT/DELETE, an API route (User-Agent
 * required) with its own body limit, a handler that answers later from a timer (the
 * path where the client may vanish before the answer), error answers with reasons, and
 * streaming routes (/stream/{mode}: a small stream_window, the body consumed piece by
 * piece, more asked for at once or from a timer, refused at the head or half-way, and
 * answered with a chunked response that may start before the body is complete).
 * Limits are small so inputs of a few hundred bytes reach 413, 414 and 431.
 *
 * Besides ASan/UBSan/LSan, it checks: the server always ends the connection once the
 * client has shut down its side (no connection is leaked or hangs), and every answer
 * starts with an HTTP/1.1 status line.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/handlers.h"
#include "core/log.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Loop turns allowed per input before the server is declared stuck. Each turn either
 * makes progress or finds nothing to do; a few thousand are plenty for any input. */
#define MAX_TURNS 200000

static uv_loop_t loop;
static http_router_t *router;
static http_server_t *server;
static size_t pending_timers;

/* ---- handlers --------------------------------------------------------------------- */

static void h_root(http_request_t *req)
{
    http_respond(req, 204, NULL, NULL, 0);
}

/* GET /items/{id}?q=&page=: reads the parameter and the query, echoes them back as a
 * header (the server must refuse CR/LF there) and in a JSON body. */
static void h_item(http_request_t *req)
{
    slice_t id = http_request_param(req, "id");
    const char *q = NULL, *page = NULL;
    bool has_q = http_request_query(req, "q", &q);
    bool has_page = http_request_query(req, "page", &page);
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"id_len\":%zu,\"q\":%d,\"page\":%d}", id.n,
                     has_q ? (int)strlen(q) : -1, has_page ? (int)strlen(page) : -1);
    if (has_q)
        http_response_header(req, "X-Echo-Q", q);
    http_respond_json(req, 200, body, (size_t)n);
}

/* POST/PUT /items/{id}/notes/{note}: an API route with a smaller body limit. */
static void h_note(http_request_t *req)
{
    slice_t id = http_request_param(req, "id"), note = http_request_param(req, "note");
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"id\":%zu,\"note\":%zu,\"body\":%zu}", id.n, note.n,
                     req->body.len);
    http_response_header(req, "Location", "/items/1/notes/1");
    http_respond_json(req, req->method == HTTP_M_POST ? 201 : 200, body, (size_t)n);
}

/* POST /echo: the body back as it came. */
static void h_echo(http_request_t *req)
{
    http_respond(req, 200, "application/octet-stream", req->body.p, req->body.len);
}

/* DELETE /items/{id}: an error with reasons. */
static void h_delete(http_request_t *req)
{
    static const char *const reasons[] = { "first reason", "second \"quoted\" reason" };
    http_respond_error(req, 409, "conflict", reasons, 2);
}

typedef struct later {
    uv_timer_t timer;
    http_request_t *req;
    bool more; /* http_request_more instead of an answer */
} later_t;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
    pending_timers--;
}

static void later_fire(uv_timer_t *t)
{
    later_t *l = t->data;
    if (l->more) {
        http_request_more(l->req);
        uv_close((uv_handle_t *)&l->timer, later_closed);
        return;
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"later\":true,\"body\":%zu}", l->req->body.len);
    http_respond_json(l->req, 200, body, (size_t)n);
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

/* Runs later_fire on the next loop turn. Returns false when out of memory. */
static bool schedule(http_request_t *req, bool more)
{
    later_t *l = malloc(sizeof(*l));
    if (!l)
        return false;
    l->req = req;
    l->more = more;
    uv_timer_init(&loop, &l->timer);
    l->timer.data = l;
    pending_timers++;
    uv_timer_start(&l->timer, later_fire, 0, 0);
    return true;
}

/* GET/POST /async/{n}: answers on a later loop turn, as handlers that go to the store
 * do; the connection may be gone by then. */
static void h_async(http_request_t *req)
{
    if (!schedule(req, false))
        http_respond_error(req, 503, "out of memory", NULL, 0);
}

/* /stream/{mode}: the first letter of mode picks the handler's behaviour. */
typedef struct stream_state {
    char mode;
    size_t seen;
    unsigned calls;
} stream_state_t;

static void stream_finish(http_request_t *req, const stream_state_t *st)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"seen\":%zu,\"calls\":%u}", st->seen, st->calls);
    if (req->resp_started) {
        http_respond_chunk(req, body, (size_t)n);
        http_respond_end(req);
    } else {
        http_respond_json(req, 200, body, (size_t)n);
    }
}

static void stream_on_body(http_request_t *req)
{
    stream_state_t *st = req->ctx;
    st->calls++;
    st->seen += req->body.len;
    if (st->mode == 'c' && req->body.len)
        http_respond_chunk(req, req->body.p, req->body.len);
    buf_consume(&req->body, req->body.len);
    if (req->body_complete) {
        stream_finish(req, st);
        return;
    }
    if (st->mode == 'e' && st->calls == 2) {
        /* Refuses half-way: the rest of the body is never read. */
        http_respond_error(req, 413, "enough of that", NULL, 0);
        return;
    }
    if (st->mode == 'l') {
        if (!schedule(req, true))
            http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    http_request_more(req);
}

static void h_stream(http_request_t *req)
{
    slice_t mode = http_request_param(req, "mode");
    char m = mode.n ? mode.p[0] : 's';
    if (m == 'r') {
        /* Refuses at the head, before any body byte is read. */
        http_respond_error(req, 400, "refused at the head", NULL, 0);
        return;
    }
    stream_state_t *st = arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    st->mode = m;
    st->seen = 0;
    st->calls = 0;
    req->ctx = st;
    req->on_body = stream_on_body;
    if (m == 'c')
        http_respond_begin(req, 200, "application/octet-stream");
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* Logs go nowhere, but every access-log line is still formatted. */
    if (log_setup(LOG_DEBUG, LOG_FORMAT_JSON, "/dev/null"))
        abort();
    if (uv_loop_init(&loop))
        abort();
    router = http_router_new();
    if (!router)
        abort();
    static const http_route_opts_t plain = { 0 };
    static const http_route_opts_t api = { .api = true, .max_body = 512 };
    static const http_route_opts_t stream = { .stream_window = 64, .max_body = 4096 };
    int rc = 0;
    rc = rc ? rc : http_router_add(router, HTTP_M_GET, "/", h_root, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_GET, "/healthz", api_healthz, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_GET, "/items/{id}", h_item, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_DELETE, "/items/{id}", h_delete, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_POST | HTTP_M_PUT, "/items/{id}/notes/{note}",
                                   h_note, &api);
    rc = rc ? rc : http_router_add(router, HTTP_M_POST, "/echo", h_echo, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_GET | HTTP_M_POST, "/async/{n}", h_async, &plain);
    rc = rc ? rc : http_router_add(router, HTTP_M_GET | HTTP_M_POST | HTTP_M_PUT, "/stream/{mode}",
                                   h_stream, &stream);
    if (rc)
        abort();
    http_server_options_t opt = { .access_log = true, .server_name = "fuzz" };
    http_limits_default(&opt.limits);
    opt.limits.max_body = 1024;
    opt.limits.max_header_bytes = 1024;
    opt.limits.max_uri = 256;
    opt.limits.max_connections = 4;
    if (http_server_new(&loop, router, &opt, &server))
        abort();
}

/* ---- one input ------------------------------------------------------------------------- */

typedef struct drain {
    bool any;
    char first[9];  /* the first bytes the server sent */
    size_t n_first;
} drain_t;

/* Reads whatever the server has written so far. */
static void drain_peer(int fd, drain_t *d)
{
    char buf[16384];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0)
            return;
        d->any = true;
        for (ssize_t i = 0; i < r && d->n_first < sizeof(d->first); i++)
            d->first[d->n_first++] = buf[i];
    }
}

static void turn(int fd, drain_t *d, unsigned *turns)
{
    if (++*turns > MAX_TURNS) {
        fprintf(stderr, "fuzz_http_request: the server did not finish the connection "
                        "(%zu open, %zu timers)\n",
                http_server_connections(server), pending_timers);
        abort();
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    drain_peer(fd, d);
}

/* FNV-1a of the input: drives how the input is cut into writes, so the same input is
 * always delivered the same way. */
static uint32_t hash_input(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
        abort();
    if (http_server_adopt(server, sv[0]) != 0)
        abort();

    drain_t d = { 0 };
    unsigned turns = 0;
    uint32_t h = hash_input(data, size);
    bool whole = (h & 3) == 0; /* a quarter of the time: one write */
    size_t off = 0;
    while (off < size) {
        size_t piece = size - off;
        if (!whole) {
            h = h * 1103515245u + 12345u;
            size_t max = 1 + ((h >> 16) % 64);
            if (piece > max)
                piece = max;
        }
        ssize_t w = send(sv[1], data + off, piece, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            break; /* the server closed the connection (after an error answer) */
        turn(sv[1], &d, &turns);
    }
    shutdown(sv[1], SHUT_WR);
    while (http_server_connections(server) > 0 || pending_timers > 0)
        turn(sv[1], &d, &turns);
    drain_peer(sv[1], &d);
    close(sv[1]);

    /* Whatever the input, an answer starts with a status line. */
    if (d.any && (d.n_first < 9 || memcmp(d.first, "HTTP/1.1 ", 9) != 0)) {
        fprintf(stderr, "fuzz_http_request: the answer does not start with 'HTTP/1.1 '\n");
        abort();
    }
    return 0;
}
