/*
 * http.h: the HTTP/1.1 server on libuv + llhttp.
 *
 * One server runs on one libuv loop and touches its connections only from that
 * loop's thread. A request is parsed completely (headers and body, chunked or not)
 * before its handler runs; the handler answers with http_respond*() exactly once,
 * right away or later from the same loop (after work done on a worker thread).
 * Requests pipelined on one connection are handled one at a time, so answers go
 * out in request order.
 *
 * Every error the server produces itself (malformed request, limits, 404/405)
 * carries the SPEC error body {"error":{"code","message","reasons"}}.
 */
#ifndef BREAKHOOK_HTTP_HTTP_H
#define BREAKHOOK_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;
typedef struct http_request http_request_t;
typedef struct http_router http_router_t;
typedef void (*http_body_fn)(http_request_t *req);

typedef struct http_limits {
    size_t max_body;            /* default request body limit (413 past it) */
    size_t max_header_bytes;    /* header block (431 past it) */
    size_t max_uri;             /* request target (414 past it) */
    int max_connections;        /* further connections get 503 and are closed */
    uint64_t header_timeout_ms; /* a request whose head is not complete in time: dropped */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request: closed */
    uint64_t body_timeout_ms;   /* no body byte for this long: dropped */
    uint64_t body_time_ms;      /* a whole body must arrive within this: 408 past it */
    int max_per_client;         /* open connections per client address (IPv6: per /64)
                                   at most; further ones get 503 and are closed. 0: none */
} http_limits_t;

/* A request body is held before authentication only up to this (a route without a
 * check, see http_route_opts_t.check). */
#define HTTP_UNAUTH_BODY_MAX (64 << 10)

/* SPEC §1 defaults: 1 MiB body, 16 KiB head, 4096-byte URI, 10 s head, 60 s idle;
 * a body within 5 min; no cap per client address. */
void http_limits_default(http_limits_t *l);

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_PARAMS 4

typedef struct http_header {
    slice_t name;
    slice_t value;
} http_header_t;

typedef enum {
    HTTP_M_GET = 1,
    HTTP_M_HEAD = 2,
    HTTP_M_POST = 4,
    HTTP_M_PUT = 8,
    HTTP_M_DELETE = 16,
    HTTP_M_PATCH = 32,
    HTTP_M_OPTIONS = 64,
    HTTP_M_OTHER = 128,
} http_method_t;

/* A parsed request. Everything it points to lives in req->arena and is valid until
 * the answer has been given. */
struct http_request {
    http_conn_t *conn;
    http_server_t *server;
    arena_t arena;              /* per-request memory, freed in one call */
    http_method_t method;
    slice_t method_name;
    slice_t target;             /* as sent: path plus query */
    slice_t path;
    slice_t query;              /* after '?', without it */
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t n_headers;
    buf_t body;
    struct {
        slice_t name;
        slice_t value;
    } params[HTTP_MAX_PARAMS];  /* path parameters of the matched route */
    size_t n_params;
    const void *route_data;     /* the matched route's user data */
    char request_id[40];
    uint64_t start_ns;
    void *ctx;                  /* for the handler's own use */
    /* Streaming routes only (see http_route_opts_t.stream_window). */
    http_body_fn on_body;       /* set by the handler: body bytes are waiting in body */
    bool body_complete;         /* the whole body has been received, or body_error */
    int body_error;             /* non-zero (413): the body was cut short past the route's
                                   limit; body_complete is set, the bytes in body end
                                   where the cut was, and nothing more is read */
    bool aborted;               /* the client went away: end the request with
                                   http_respond_end (or any answer) once idle */
    /* response side */
    buf_t resp_headers;         /* extra header lines set by the handler */
    int status;
    size_t resp_bytes;
    bool responded;
    bool resp_started;          /* http_respond_begin was called */
};

typedef void (*http_handler_fn)(http_request_t *req);

/* ---- router ------------------------------------------------------------- */

typedef struct http_route_opts {
    size_t max_body;            /* 0: the server default */
    /* Called when the head of a request with a body is complete, before any body
     * byte is read (and before 100 Continue): it authenticates, and answers the
     * request to refuse it (the connection then closes). A route without a check
     * holds at most HTTP_UNAUTH_BODY_MAX bytes of body. */
    void (*check)(http_request_t *req);
    bool api;                   /* API route: User-Agent required (400 without it) */
    const void *data;           /* passed to the handler as req->route_data */
    /* Non-zero: the body is streamed. The handler runs when the head is complete and
     * sets req->on_body; the server then buffers at most this many bytes (plus one
     * read) in req->body, stops reading, and calls on_body. The handler consumes
     * what it can (buf_consume) and calls http_request_more() for the next part.
     * The last call has req->body_complete set; the handler answers after it (or
     * earlier, which ends the connection after the answer). max_body still bounds
     * the total: a body that grows past it once the handler has the request is cut
     * (req->body_error = 413, req->body_complete set); the handler ends its answer
     * as it sees fit, and the connection closes after it. */
    size_t stream_window;
} http_route_opts_t;

http_router_t *http_router_new(void);
void http_router_free(http_router_t *r);
/* Adds a route. pattern is a path whose segments are literal or "{name}" (one
 * whole segment). GET routes answer HEAD too. The router keeps pointers to pattern
 * and opts->data: both must outlive it. */
BH_MUST_USE int http_router_add(http_router_t *r, unsigned methods, const char *pattern,
                                http_handler_fn fn, const http_route_opts_t *opts);

typedef struct http_route http_route_t;
typedef enum { HTTP_MATCH_OK, HTTP_MATCH_NO_PATH, HTTP_MATCH_NO_METHOD } http_match_t;
/* Finds the route for method and path, filling req->params. On HTTP_MATCH_NO_METHOD
 * *allowed gets the methods the path does accept. */
http_match_t http_router_match(const http_router_t *r, http_method_t method, slice_t path,
                               http_request_t *req, const http_route_t **route,
                               unsigned *allowed);
/* Writes "GET, HEAD, POST" style text for an Allow header into out. */
void http_methods_format(unsigned methods, char *out, size_t n);
const http_route_opts_t *http_route_opts(const http_route_t *route);
http_handler_fn http_route_handler(const http_route_t *route);

/* ---- server ------------------------------------------------------------- */

typedef struct http_server_options {
    http_limits_t limits;
    bool access_log;            /* one log line per request */
    const char *server_name;    /* Server header value */
    /* Whether a peer is a reverse proxy whose X-Forwarded-For names the client (for
     * limits.max_per_client); NULL: none is. Called on the loop thread. */
    bool (*trusted_proxy)(const struct sockaddr *sa, void *arg);
    void *trusted_proxy_arg;
} http_server_options_t;

/* Creates a server on loop using router (borrowed, must outlive it). Call it on the
 * loop's thread: from here until http_server_shutdown that thread's log lines below
 * LOG_WARN are batched (core/log.h, log_buffer_begin) and written once per loop
 * iteration, warnings and errors at once. */
BH_MUST_USE int http_server_new(uv_loop_t *loop, const http_router_t *router,
                                const http_server_options_t *opt, http_server_t **out);
/* Binds and listens. host is a numeric IPv4/IPv6 address; port 0 picks a free port,
 * which http_server_port() then tells. Fails with BH_EINVAL (host is not a numeric
 * address) or BH_EIO (bind or listen refused); then *why, when why is not NULL, is a
 * static message naming the cause ("address already in use"). */
BH_MUST_USE int http_server_listen(http_server_t *s, const char *host, int port,
                                   const char **why);
int http_server_port(const http_server_t *s);
/* Serves an already connected stream socket (a socketpair end, for the fuzz target
 * and tests). The server owns fd afterwards. */
BH_MUST_USE int http_server_adopt(http_server_t *s, uv_os_sock_t fd);
/* Stops accepting, closes idle connections, lets busy ones finish; calls done(arg)
 * once every connection is closed, from a later loop callback (never from inside
 * this call). The server is freed after done. Call it on the loop's thread, once: it
 * writes the lines that thread has batched and ends the batching, so the answers
 * still going out are logged at once. */
void http_server_shutdown(http_server_t *s, void (*done)(void *arg), void *arg);
size_t http_server_connections(const http_server_t *s);
/* Appends the server's families to out in the Prometheus text format:
 * breakhook_http_requests_total{route,method,status},
 * breakhook_http_request_duration_seconds{route} and breakhook_http_connections.
 * Call on the server's loop thread (the connection count is loop-owned). Returns 0
 * or BH_ENOMEM when out is full. */
BH_MUST_USE int http_server_metrics_write(const http_server_t *s, buf_t *out);

/* ---- request helpers ---------------------------------------------------- */

/* The first header named name (case-insensitive), or SLICE_NULL with p == NULL. */
slice_t http_request_header(const http_request_t *req, const char *name);
/* The address the request's connection comes from ("127.0.0.1", "2001:db8::1"),
 * without the port; "" when unknown. Valid until the answer has been given. */
const char *http_request_peer_ip(const http_request_t *req);
/* The path parameter called name, or a NULL slice. */
slice_t http_request_param(const http_request_t *req, const char *name);
/* The first query parameter called name, percent-decoded into the arena. Returns
 * false when absent; *out is then NULL. A name present without '=' gives "". */
bool http_request_query(http_request_t *req, const char *name, const char **out);

/* Streaming routes: asks for more body after on_body consumed what it could. May be
 * called from on_body itself or later from the same loop. */
void http_request_more(http_request_t *req);

/* ---- answering (each request exactly once) ------------------------------ */

/* A streamed answer: the head (Transfer-Encoding: chunked; for an HTTP/1.0 client
 * the body ends with the connection), then any number of chunks, then the end,
 * which finishes the request like http_respond. May start before a streamed
 * request body is complete. */
void http_respond_begin(http_request_t *req, int status, const char *content_type);
void http_respond_chunk(http_request_t *req, const char *p, size_t n);
void http_respond_end(http_request_t *req);

/* Adds a response header line; name and value must not contain CR or LF. */
void http_response_header(http_request_t *req, const char *name, const char *value);
/* Sends status with body (copied) and Content-Type, then finishes the request. */
void http_respond(http_request_t *req, int status, const char *content_type, const char *body,
                  size_t n);
/* Sends a JSON body (copied). */
void http_respond_json(http_request_t *req, int status, const char *json, size_t n);
/* Sends the SPEC error body; code is derived from status; reasons may be NULL. */
void http_respond_error(http_request_t *req, int status, const char *message,
                        const char *const *reasons, size_t n_reasons);
/* The SPEC error code for a status ("BadRequest", "NotFound", ...). */
const char *http_error_code(int status);
const char *http_status_text(int status);

/* Writes a whole SPEC error body into b. */
BH_MUST_USE int http_error_body(buf_t *b, int status, const char *message,
                                const char *const *reasons, size_t n_reasons);

#endif
