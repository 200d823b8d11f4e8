/*
 * server.c: connections, parsing, limits, timeouts and answers.
 *
 * Data flow on one connection:
 *
 *   read_cb --> conn_feed --> llhttp callbacks --> (request complete) --> dispatch
 *                                                                           |
 *   handler (now or later) --> http_respond --> uv_write --> finish_request-+
 *                                                                           |
 *   finish_request --> resume parsing pipelined bytes kept in c->pending ---+
 *
 * A connection handles one request at a time. on_message_complete pauses the
 * parser, so bytes of a pipelined next request stay unparsed in c->pending and
 * reading stops until the current answer is written: answers leave in request
 * order and a client that pipelines cannot make us buffer more than one read.
 *
 * Every input that grows memory is bounded: the URI (414), the header block
 * (431), the body (413, per route; 64 KiB until a route check has authenticated
 * the client, which happens from the head, before any body byte is read), the
 * number of connections, in all and per client address (503), and the time a
 * head or a body may take (408). Parse errors get a 400 and the connection is
 * closed after the answer is written.
 */
#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/imap.h"
#include "core/log.h"
#include "http/http_int.h"

#define READ_BUF_SIZE 65536

typedef enum {
    CONN_IDLE,     /* between requests (keep-alive) */
    CONN_HEAD,     /* receiving a request head */
    CONN_BODY,     /* receiving a request body */
    CONN_HANDLING, /* the handler has the request; parsing paused */
} conn_state_t;

typedef struct hdr_off {
    size_t name_off, name_len, val_off, val_len;
} hdr_off_t;

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_server_t *server;
    http_conn_t *prev, *next;
    llhttp_t parser;
    conn_state_t state;
    buf_t pending;            /* unparsed bytes that arrived after a complete request */
    buf_t url;                /* the request target being received */
    buf_t head;               /* header names and values being received */
    hdr_off_t hdrs[HTTP_MAX_HEADERS];
    size_t n_hdrs;
    bool in_value;            /* the last header callback was a value */
    const char *feed_p;       /* start of the bytes llhttp is parsing now */
    char feed_prev;           /* the last byte parsed before feed_p, SP/HTAB skipped */
    http_request_t req;
    const http_route_t *route;
    size_t max_body;
    size_t body_seen;
    int deferred_status;      /* an error to answer once the body has been read */
    const char *deferred_msg;
    unsigned deferred_allow;  /* Allow header for a deferred 405 */
    int fatal_status;         /* set by a callback that stops parsing (413, 414, 431) */
    const char *fatal_msg;
    bool keep_alive;
    bool in_dispatch;         /* inside dispatch(): the loop in conn_feed resumes */
    bool streaming;           /* the route streams its body to the handler */
    bool stream_started;      /* the handler has been called for the head */
    bool stream_waiting;      /* on_body owns the buffered body; parsing paused */
    bool stream_in_cb;        /* inside on_body: http_request_more only flags */
    bool stream_more;         /* http_request_more was called during on_body */
    bool body_cut;            /* a streamed body went past max_body: the handler ends */
    uint64_t body_deadline;   /* loop time by which the body must be complete */
    int64_t client_key;       /* the client address counted for max_per_client */
    bool client_counted;      /* ... and it is counted */
    bool behind_proxy;        /* the peer is a trusted proxy: X-Forwarded-For names the
                                 client */
    bool closing;
    bool close_after_write;
    bool lingering;           /* answered and half-closed; unread input is drained */
    size_t lingered;
    int open_handles;
    char peer[64];
    char peer_ip[48];         /* the peer's address alone, for per-address limits */
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    const http_router_t *router;
    http_server_options_t opt;
    llhttp_settings_t settings;
    http_conn_t *conns;
    size_t n_conns;
    imap_t per_client;        /* client address key -> open connections (as intptr_t) */
    bool shutting_down;
    void (*done)(void *);
    void *done_arg;
    char read_buf[READ_BUF_SIZE];
    bool read_buf_busy;
    time_t date_sec;
    char date[40];
    uint64_t next_request;
    char rid_prefix[16];
    int port;
    http__stats_t stats;      /* requests by route, method and status (metrics.c) */
    /* The loop thread batches its log lines (core/log.h) while the server runs: one
     * write(2) per loop iteration instead of one per access-log line. log_check
     * flushes what the I/O callbacks logged (the access lines); log_prepare flushes
     * right before the loop waits for I/O, so lines logged by timers, close callbacks
     * or before uv_run (serve's "listening") are not held while the loop sleeps. */
    uv_check_t log_check;
    uv_prepare_t log_prepare;
    int log_handles;          /* of the two, not closed yet */
};

void http_limits_default(http_limits_t *l)
{
    l->max_body = 1 << 20;
    l->max_header_bytes = 16 << 10;
    l->max_uri = 4096;
    l->max_connections = 10000;
    l->header_timeout_ms = 10000;
    l->idle_timeout_ms = 60000;
    l->body_timeout_ms = 60000;
    l->body_time_ms = 300000;
    l->max_per_client = 0;
}

static void conn_close(http_conn_t *c);
static void conn_resume(http_conn_t *c);
static void send_error_and_close(http_conn_t *c, int status, const char *msg);
static void stream_deliver(http_conn_t *c);
static void stream_cut(http_conn_t *c, int status);
static void set_body_timer(http_conn_t *c);
static int client_count(http_conn_t *c, int64_t key);
static void client_release(http_conn_t *c);
static int forwarded_key(http_conn_t *c, int64_t *key);
static void maybe_server_done(http_server_t *s);

/* ---- small helpers ---------------------------------------------------- */

static const char *cached_date(http_server_t *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = now;
    }
    return s->date;
}

static http_method_t method_of(llhttp_t *p)
{
    switch (llhttp_get_method(p)) {
    case HTTP_GET: return HTTP_M_GET;
    case HTTP_HEAD: return HTTP_M_HEAD;
    case HTTP_POST: return HTTP_M_POST;
    case HTTP_PUT: return HTTP_M_PUT;
    case HTTP_DELETE: return HTTP_M_DELETE;
    case HTTP_PATCH: return HTTP_M_PATCH;
    case HTTP_OPTIONS: return HTTP_M_OPTIONS;
    default: return HTTP_M_OTHER;
    }
}

static void set_timer(http_conn_t *c, uint64_t ms);
static void on_timeout(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);
static void write_raw(http_conn_t *c, const char *p, size_t n, bool close_after);

/* A client-supplied request id is kept when it is short and plain, so callers can
 * correlate their own logs with ours; anything else is replaced. */
static void assign_request_id(http_conn_t *c)
{
    http_request_t *req = &c->req;
    slice_t given = http_request_header(req, "x-request-id");
    if (given.p && given.n > 0 && given.n < 37) {
        bool ok = true;
        for (size_t i = 0; i < given.n && ok; i++) {
            char ch = given.p[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        }
        if (ok) {
            memcpy(req->request_id, given.p, given.n);
            req->request_id[given.n] = '\0';
            return;
        }
    }
    snprintf(req->request_id, sizeof(req->request_id), "%s-%llx", c->server->rid_prefix,
             (unsigned long long)++c->server->next_request);
}

/* ---- llhttp callbacks ------------------------------------------------- */

static http_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int on_message_begin(llhttp_t *p)
{
    http_conn_t *c = conn_of(p);
    http_request_t *req = &c->req;
    buf_reset(&c->url);
    buf_reset(&c->head);
    c->n_hdrs = 0;
    c->in_value = false;
    c->route = NULL;
    c->deferred_status = 0;
    c->deferred_msg = NULL;
    c->body_seen = 0;
    c->streaming = c->stream_started = c->stream_waiting = c->stream_more = false;
    c->body_cut = false;
    req->on_body = NULL;
    req->body_complete = false;
    req->body_error = 0;
    req->aborted = false;
    arena_reset(&req->arena);
    buf_reset(&req->body);
    buf_reset(&req->resp_headers);
    req->method_name = SLICE_NULL;
    req->target = req->path = req->query = SLICE_NULL;
    req->n_headers = 0;
    req->n_params = 0;
    req->route_data = NULL;
    req->ctx = NULL;
    req->status = 0;
    req->resp_bytes = 0;
    req->responded = false;
    req->resp_started = false;
    req->request_id[0] = '\0';
    req->start_ns = uv_hrtime();
    c->head.max = c->server->opt.limits.max_header_bytes;
    c->state = CONN_HEAD;
    set_timer(c, c->server->opt.limits.header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (buf_append(&c->url, at, n)) {
        c->fatal_status = 414;
        c->fatal_msg = "the request URI is longer than the limit";
        return -1;
    }
    return 0;
}

static int head_overflow(http_conn_t *c)
{
    c->fatal_status = 431;
    c->fatal_msg = "the request header block is larger than the limit";
    return -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (c->in_value || c->n_hdrs == 0 ||
        c->hdrs[c->n_hdrs - 1].val_off != (size_t)-1) {
        /* A new header starts. */
        if (c->n_hdrs == HTTP_MAX_HEADERS)
            return head_overflow(c);
        hdr_off_t *h = &c->hdrs[c->n_hdrs++];
        h->name_off = c->head.len;
        h->name_len = 0;
        h->val_off = (size_t)-1;
        h->val_len = 0;
        c->in_value = false;
    }
    if (buf_append(&c->head, at, n))
        return head_overflow(c);
    c->hdrs[c->n_hdrs - 1].name_len += n;
    return 0;
}

/* The last byte before at that is not SP or HTAB, looking back into earlier reads
 * through feed_prev. */
static char byte_before(const http_conn_t *c, const char *at)
{
    const char *q = at;
    while (q > c->feed_p && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    return q > c->feed_p ? q[-1] : c->feed_prev;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    hdr_off_t *h = &c->hdrs[c->n_hdrs - 1];
    /* llhttp joins obs-fold continuation lines (CRLF then SP or HTAB) to the value.
     * A value piece that starts a line is one: RFC 9112 §5.2 lets us refuse it. */
    if (byte_before(c, at) == '\n') {
        c->fatal_status = 400;
        c->fatal_msg = "malformed request: obsolete line folding in a header value";
        return -1;
    }
    if (!c->in_value) {
        h->val_off = c->head.len;
        h->val_len = 0;
        c->in_value = true;
    }
    if (buf_append(&c->head, at, n))
        return head_overflow(c);
    h->val_len += n;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    http_conn_t *c = conn_of(p);
    if (c->n_hdrs == 0 || c->hdrs[c->n_hdrs - 1].name_len == 0) {
        c->fatal_status = 400;
        c->fatal_msg = "malformed request: empty header name";
        return -1;
    }
    hdr_off_t *h = &c->hdrs[c->n_hdrs - 1];
    if (h->val_off == (size_t)-1) {
        h->val_off = c->head.len; /* empty value */
        h->val_len = 0;
    }
    c->in_value = false;
    /* Count the ": " and CRLF a header line costs on the wire as well. */
    if (c->head.max - c->head.len < 4)
        return head_overflow(c);
    c->head.max -= 4;
    return 0;
}

static void split_target(http_request_t *req)
{
    const char *q = memchr(req->target.p, '?', req->target.n);
    if (q) {
        req->path = slice_make(req->target.p, (size_t)(q - req->target.p));
        req->query = slice_make(q + 1, req->target.n - req->path.n - 1);
    } else {
        req->path = req->target;
        req->query = SLICE_NULL;
    }
}

/* Absolute-form (RFC 9112 §3.2.2): "GET http://host/path HTTP/1.1". The request is
 * routed on the path, and the target's authority is the request's host: it replaces
 * the Host header, so every rule about the host (--domain) applies to it. An
 * authority that is empty or has userinfo is refused. Returns -1 with fatal_status
 * set when the request is refused. */
static int use_absolute_form(http_conn_t *c)
{
    http_request_t *req = &c->req;
    size_t skip; /* the scheme is case-insensitive (RFC 9110 §4.2.3) */
    if (req->target.n >= 7 && slice_eq_nocase(slice_make(req->target.p, 7), "http://"))
        skip = 7;
    else if (req->target.n >= 8 && slice_eq_nocase(slice_make(req->target.p, 8), "https://"))
        skip = 8;
    else
        return 0;
    const char *auth = req->target.p + skip;
    size_t rest = req->target.n - skip;
    const char *end = auth;
    while (end < auth + rest && *end != '/' && *end != '?' && *end != '#')
        end++;
    slice_t authority = slice_make(auth, (size_t)(end - auth));
    if (authority.n == 0 || memchr(authority.p, '@', authority.n)) {
        c->fatal_status = 400;
        c->fatal_msg = "malformed request: the authority of an absolute-form target must be a host";
        return -1;
    }
    size_t path_n = rest - authority.n;
    req->target = path_n ? slice_make(end, path_n) : SLICE_LIT("/");
    size_t i = 0;
    while (i < req->n_headers && !slice_eq_nocase(req->headers[i].name, "host"))
        i++;
    if (i == req->n_headers) {
        if (req->n_headers == HTTP_MAX_HEADERS)
            return head_overflow(c);
        req->headers[req->n_headers++].name = SLICE_LIT("Host");
    }
    req->headers[i].value = authority;
    return 0;
}

static void defer_error(http_conn_t *c, int status, const char *msg)
{
    if (!c->deferred_status) {
        c->deferred_status = status;
        c->deferred_msg = msg;
    }
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn_t *c = conn_of(p);
    http_server_t *s = c->server;
    http_request_t *req = &c->req;

    c->head.max = s->opt.limits.max_header_bytes; /* undo the per-line accounting */
    req->method = method_of(p);
    req->method_name = slice_from_cstr(llhttp_method_name(llhttp_get_method(p)));
    req->target = buf_slice(&c->url);
    for (size_t i = 0; i < c->n_hdrs; i++) {
        req->headers[i].name = slice_make(c->head.p + c->hdrs[i].name_off, c->hdrs[i].name_len);
        req->headers[i].value =
            slice_trim(slice_make(c->head.p + c->hdrs[i].val_off, c->hdrs[i].val_len));
    }
    req->n_headers = c->n_hdrs;
    assign_request_id(c);
    if (p->http_major != 1 || p->http_minor > 1) {
        c->fatal_status = 400;
        c->fatal_msg = "malformed request: only HTTP/1.0 and HTTP/1.1 are supported";
        return -1;
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host. */
    size_t hosts = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        hosts += slice_eq_nocase(req->headers[i].name, "host");
    if (hosts > 1 || (hosts == 0 && p->http_minor == 1)) {
        c->fatal_status = 400;
        c->fatal_msg = hosts ? "malformed request: more than one Host header"
                             : "malformed request: the Host header is required";
        return -1;
    }
    if (use_absolute_form(c))
        return -1;
    split_target(req);
    if (c->behind_proxy && !c->client_counted && forwarded_key(c, &c->client_key) == 0 &&
        client_count(c, c->client_key)) {
        c->fatal_status = 503;
        c->fatal_msg = "too many connections from this client address";
        return -1;
    }

    c->max_body = s->opt.limits.max_body;
    unsigned allowed = 0;
    http_match_t m = HTTP_MATCH_NO_PATH;
    if (req->target.n == 0 || req->target.p[0] != '/') {
        defer_error(c, 400, "the request target must be an absolute path");
    } else {
        m = http_router_match(s->router, req->method, req->path, req, &c->route, &allowed);
    }
    if (m == HTTP_MATCH_OK) {
        const http_route_opts_t *o = http_route_opts(c->route);
        if (o->max_body)
            c->max_body = o->max_body;
        if (!o->check && c->max_body > HTTP_UNAUTH_BODY_MAX)
            c->max_body = HTTP_UNAUTH_BODY_MAX; /* nobody vouched for the client yet */
        req->route_data = o->data;
        if (o->api && !http_request_header(req, "user-agent").p)
            defer_error(c, 400, "the User-Agent header is required");
    } else if (m == HTTP_MATCH_NO_METHOD) {
        c->deferred_allow = allowed;
        defer_error(c, 405, "this method is not allowed on this resource");
    } else {
        defer_error(c, 404, "no such resource");
    }

    if (p->content_length > c->max_body && !(p->flags & F_CHUNKED)) {
        c->fatal_status = 413;
        c->fatal_msg = "the request body is larger than the limit";
        return -1;
    }
    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if (m == HTTP_MATCH_OK && !c->deferred_status && has_body && http_route_opts(c->route)->check) {
        /* Authenticate before reading a body: a refused client's body is never held.
         * Its answer ends the connection (state BODY: the body is not read). */
        c->state = CONN_BODY;
        http_route_opts(c->route)->check(req);
        if (req->responded || c->closing)
            return -1;
    }
    slice_t expect = http_request_header(req, "expect");
    if (expect.p) {
        if (!slice_eq_nocase(expect, "100-continue")) {
            c->fatal_status = 417;
            c->fatal_msg = "only 'Expect: 100-continue' is supported";
            return -1;
        }
        if (c->deferred_status) {
            /* Refuse before the client sends a body we would throw away. */
            c->fatal_status = c->deferred_status;
            c->fatal_msg = c->deferred_msg;
            return -1;
        }
        if (p->http_major == 1 && p->http_minor >= 1)
            write_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, false);
    }
    c->state = CONN_BODY;
    c->body_deadline = uv_now(s->loop) + s->opt.limits.body_time_ms;
    set_body_timer(c);
    if (m == HTTP_MATCH_OK && !c->deferred_status && http_route_opts(c->route)->stream_window) {
        size_t window = http_route_opts(c->route)->stream_window;
        c->streaming = true;
        /* Room for the window plus one whole read, so on_body never has to split. */
        req->body.max = window + READ_BUF_SIZE;
        /* With a body, the handler is set up now, outside the parser (conn_feed). An
         * empty body completes in this same parse; dispatch sets the handler up then. */
        if ((p->flags & F_CHUNKED) || p->content_length > 0)
            return HPE_PAUSED;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = conn_of(p);
    if (n > c->max_body - c->body_seen) {
        if (c->streaming && c->stream_started && !c->req.responded) {
            /* The handler has the request and may have begun its answer: a 413 now
             * would be a second answer. It gets the body up to the limit, is told of
             * the cut, and ends its own answer. */
            size_t fit = c->max_body - c->body_seen;
            c->body_seen = c->max_body;
            c->body_cut = true;
            if (buf_append(&c->req.body, at, fit))
                log_warn("request body cut short of the limit: out of memory",
                         LOG_STR("rid", c->req.request_id));
            return -1;
        }
        c->fatal_status = 413;
        c->fatal_msg = "the request body is larger than the limit";
        return -1;
    }
    c->body_seen += n;
    if (c->deferred_status || c->req.responded)
        return 0; /* the body is read and dropped: the answer is already decided */
    if (c->streaming) {
        if (buf_append(&c->req.body, at, n)) {
            c->fatal_status = 500;
            c->fatal_msg = "out of memory";
            return -1;
        }
        if (c->req.body.len >= http_route_opts(c->route)->stream_window) {
            c->stream_waiting = true;
            return HPE_PAUSED;
        }
        return 0;
    }
    c->req.body.max = c->max_body;
    if (buf_append(&c->req.body, at, n)) {
        c->fatal_status = 500;
        c->fatal_msg = "out of memory";
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_conn_t *c = conn_of(p);
    /* We speak no other protocol: an Upgrade or CONNECT request is answered and the
     * connection then closes. */
    c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade && !c->server->shutting_down;
    c->state = CONN_HANDLING;
    c->req.body_complete = true;
    return HPE_PAUSED;
}

/* ---- answering -------------------------------------------------------- */

typedef struct write_req {
    uv_write_t req;
    http_conn_t *conn;
    bool close_after;
    size_t len;
    char data[];
} write_req_t;

#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1 << 20)

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = req->data;
    (void)status;
    if (c->closing)
        return;
    c->lingering = true;
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0 && rc != UV_EALREADY)
        conn_close(c);
}

/* Closing right after an error answer while the client is still sending (a body we
 * refused, a URI past the limit) makes the kernel reset the connection, and the
 * client may lose the answer. So: send FIN, read and drop what still comes (bounded
 * in time and bytes), then close — nginx's lingering close. */
static void conn_linger(http_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_linger_shutdown) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    http_conn_t *c = wr->conn;
    bool close_after = wr->close_after;
    free(wr);
    if (status < 0)
        conn_close(c);
    else if (close_after)
        conn_linger(c);
}

/* Queues n bytes (copied) on the connection; closes it afterwards when asked. */
static void write_raw(http_conn_t *c, const char *p, size_t n, bool close_after)
{
    write_req_t *wr = malloc(sizeof(*wr) + n);
    if (!wr) {
        conn_close(c);
        return;
    }
    memcpy(wr->data, p, n);
    wr->conn = c;
    wr->len = n;
    wr->close_after = close_after;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(wr);
        conn_close(c);
    }
}

static void log_access(http_conn_t *c)
{
    http_request_t *req = &c->req;
    if (!c->server->opt.access_log || !log_enabled(LOG_INFO))
        return;
    uint64_t us = (uv_hrtime() - req->start_ns) / 1000;
    log_info("request", LOG_STR("rid", req->request_id),
             LOG_STRN("method", req->method_name.p, req->method_name.n),
             LOG_STRN("path", req->path.p ? req->path.p : "-", req->path.p ? req->path.n : 1),
             LOG_INT("status", req->status),
             LOG_INT("bytes", req->resp_bytes), LOG_INT("us", us), LOG_STR("peer", c->peer));
}

/* Writes head+body in one buffer and one uv_write. */
/* stream: only the head of an answer whose body follows in chunks. */
static void write_response(http_conn_t *c, int status, const char *content_type,
                           const char *body, size_t n, bool stream)
{
    http_server_t *s = c->server;
    http_request_t *req = &c->req;
    char head_mem[1024];
    buf_t head = { head_mem, 0, sizeof(head_mem), sizeof(head_mem) - 1 };
    http__head_t h = {
        .status = status,
        .date = cached_date(s),
        .server_name = s->opt.server_name,
        .request_id = req->request_id[0] ? req->request_id : "-",
        .content_type = n || status >= 400 ? content_type : NULL,
        .content_length = n,
        .send_length = status >= 200 && status != 204 && status != 304,
        .keep_alive = c->keep_alive && !c->close_after_write,
        .http10 = c->parser.http_major == 1 && c->parser.http_minor == 0,
        .extra = buf_slice(&req->resp_headers),
    };
    if (stream) {
        h.content_type = content_type;
        h.send_length = false;
        /* HTTP/1.0 has no chunked encoding: the body ends when the connection does. */
        h.chunked = !h.http10;
        if (h.http10)
            c->keep_alive = h.keep_alive = false;
    }
    /* The head buffer lives on the stack; when the extra headers do not fit, fall back
     * to the heap, bounded at 64 KiB. */
    buf_t big;
    buf_init(&big, 65536);
    buf_t *hb = &head;
    if (http__format_head(&head, &h)) {
        hb = &big;
        if (http__format_head(&big, &h)) {
            buf_deinit(&big);
            log_error("response head too large", LOG_STR("rid", req->request_id));
            conn_close(c);
            return;
        }
    }
    bool with_body = req->method != HTTP_M_HEAD && h.send_length;
    size_t total = hb->len + (with_body ? n : 0);
    write_req_t *wr = malloc(sizeof(*wr) + total);
    if (!wr) {
        buf_deinit(&big);
        conn_close(c);
        return;
    }
    memcpy(wr->data, hb->p, hb->len);
    if (with_body && n)
        memcpy(wr->data + hb->len, body, n);
    buf_deinit(&big);
    wr->conn = c;
    wr->len = total;
    wr->close_after = !h.keep_alive && !stream;
    req->status = status;
    req->resp_bytes = total;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)total);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(wr);
        conn_close(c);
    }
}

static void free_conn(http_conn_t *c)
{
    http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    client_release(c);
    buf_deinit(&c->pending);
    buf_deinit(&c->url);
    buf_deinit(&c->head);
    buf_deinit(&c->req.body);
    buf_deinit(&c->req.resp_headers);
    arena_deinit(&c->req.arena);
    free(c);
    maybe_server_done(s);
}

/* After the answer to the current request went out: log, then either close or go
 * back to parsing whatever the client pipelined behind it. */
static void finish_request(http_conn_t *c)
{
    log_access(c);
    http__stats_count(&c->server->stats, c->server->router, c->route, c->req.method,
                      c->req.status, c->req.start_ns ? uv_hrtime() - c->req.start_ns : 0);
    if (c->closing) {
        if (c->open_handles == 0)
            free_conn(c);
        return;
    }
    if (c->req.body.cap > 65536)
        buf_deinit(&c->req.body); /* do not keep a large body's memory on an idle conn */
    if (!c->keep_alive || c->close_after_write)
        return; /* on_write closes */
    c->state = CONN_IDLE;
    llhttp_resume(&c->parser);
    set_timer(c, c->server->opt.limits.idle_timeout_ms);
    if (!c->in_dispatch)
        conn_resume(c);
}

static void respond(http_request_t *req, int status, const char *content_type, const char *body,
                    size_t n)
{
    http_conn_t *c = req->conn;
    if (req->responded || req->resp_started) {
        log_error("handler answered twice", LOG_STR("rid", req->request_id));
        if (req->resp_started)
            http_respond_end(req);
        return;
    }
    req->responded = true;
    if (c->state == CONN_BODY || c->stream_waiting) {
        /* Answered before the body was read (a streaming handler refusing early):
         * the rest of the body is not worth reading, so the connection ends. */
        c->close_after_write = true;
        c->stream_waiting = false;
    }
    if (!c->closing)
        write_response(c, status, content_type, body, n, false);
    else
        req->status = status;
    finish_request(c);
}

void http_respond_begin(http_request_t *req, int status, const char *content_type)
{
    http_conn_t *c = req->conn;
    if (req->responded || req->resp_started)
        return;
    req->resp_started = true;
    if (!c->closing)
        write_response(c, status, content_type, NULL, 0, true);
}

void http_respond_chunk(http_request_t *req, const char *p, size_t n)
{
    http_conn_t *c = req->conn;
    if (!req->resp_started || req->responded || c->closing || n == 0 ||
        req->method == HTTP_M_HEAD)
        return;
    bool http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
    char size[24];
    int sl = http10 ? 0 : snprintf(size, sizeof(size), "%zx\r\n", n);
    write_req_t *wr = malloc(sizeof(*wr) + (size_t)sl + n + 2);
    if (!wr) {
        conn_close(c);
        return;
    }
    memcpy(wr->data, size, (size_t)sl);
    memcpy(wr->data + sl, p, n);
    size_t total = (size_t)sl + n;
    if (!http10) {
        memcpy(wr->data + total, "\r\n", 2);
        total += 2;
    }
    wr->conn = c;
    wr->len = total;
    wr->close_after = false;
    req->resp_bytes += total;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)total);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(wr);
        conn_close(c);
    }
}

void http_respond_end(http_request_t *req)
{
    http_conn_t *c = req->conn;
    if (req->responded)
        return;
    if (!req->resp_started && !c->closing)
        return;
    req->responded = true;
    if (c->state == CONN_BODY || c->stream_waiting) {
        c->close_after_write = true;
        c->stream_waiting = false;
    }
    if (!c->closing) {
        bool http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
        bool close_after = !c->keep_alive || c->close_after_write || http10;
        if (http10)
            write_raw(c, "", 0, true);
        else if (req->method == HTTP_M_HEAD)
            write_raw(c, "", 0, close_after);
        else
            write_raw(c, "0\r\n\r\n", 5, close_after);
    }
    finish_request(c);
}

void http_respond(http_request_t *req, int status, const char *content_type, const char *body,
                  size_t n)
{
    respond(req, status, content_type, body, n);
}

void http_respond_json(http_request_t *req, int status, const char *json, size_t n)
{
    respond(req, status, "application/json; charset=utf-8", json, n);
}

void http_respond_error(http_request_t *req, int status, const char *message,
                        const char *const *reasons, size_t n_reasons)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    if (http_error_body(&b, status, message, reasons, n_reasons)) {
        buf_reset(&b);
        status = 500;
    }
    respond(req, status, "application/json; charset=utf-8", b.p ? b.p : "", b.len);
    buf_deinit(&b);
}

void http_response_header(http_request_t *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n") || strpbrk(value, "\r\n"))
        return;
    if (buf_printf(&req->resp_headers, "%s: %s\r\n", name, value))
        log_warn("response header dropped", LOG_STR("rid", req->request_id),
                 LOG_STR("header", name));
}

/* Answers with an error that ends the connection (parse errors, limits, timeouts). */
static void send_error_and_close(http_conn_t *c, int status, const char *msg)
{
    http_request_t *req = &c->req;
    if (c->closing)
        return;
    c->close_after_write = true;
    c->state = CONN_HANDLING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (!req->request_id[0])
        assign_request_id(c);
    if (!req->method_name.p)
        req->method_name = SLICE_LIT("-");
    if (req->start_ns == 0)
        req->start_ns = uv_hrtime();
    req->responded = false;
    buf_reset(&req->resp_headers);
    if (status == 405) {
        char allow[96];
        http_methods_format(c->deferred_allow, allow, sizeof(allow));
        http_response_header(req, "Allow", allow);
    }
    http_respond_error(req, status, msg, NULL, 0);
}

/* ---- dispatch --------------------------------------------------------- */

/* Hands buffered body bytes (or the end of the body) to a streaming handler. */
static void stream_deliver(http_conn_t *c)
{
    http_request_t *req = &c->req;
    if (req->responded)
        return;
    if (!req->on_body) {
        /* The handler did not set on_body: it is done with the body. */
        if (req->body_complete) {
            log_error("streaming handler left the request unanswered",
                      LOG_STR("rid", req->request_id));
            http_respond_error(req, 500, "the request was not answered", NULL, 0);
        }
        c->stream_waiting = false;
        return;
    }
    c->stream_in_cb = true;
    c->stream_more = false;
    req->on_body(req);
    c->stream_in_cb = false;
    if (c->stream_more)
        c->stream_waiting = false;
}

/* A streamed body went past the route's limit while its handler had the request:
 * nothing more is parsed, the handler gets the body so far marked as cut, and the
 * connection closes once it has answered (with a lingering close, so the client
 * reads the whole answer even while it is still sending). */
static void stream_cut(http_conn_t *c, int status)
{
    http_request_t *req = &c->req;
    log_info(status == 413 ? "request body cut at the limit" : "request body cut: too slow",
             LOG_STR("rid", req->request_id), LOG_INT("limit", c->max_body));
    uv_timer_stop(&c->timer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->keep_alive = false;
    c->state = CONN_HANDLING;
    c->stream_waiting = false;
    req->body_error = status;
    req->body_complete = true;
    stream_deliver(c);
}

void http_request_more(http_request_t *req)
{
    http_conn_t *c = req->conn;
    if (c->stream_in_cb) {
        c->stream_more = true;
        return;
    }
    if (!c->stream_waiting || c->closing || req->responded)
        return;
    c->stream_waiting = false;
    llhttp_resume(&c->parser);
    set_body_timer(c);
    conn_resume(c);
}

static void dispatch(http_conn_t *c)
{
    http_request_t *req = &c->req;
    c->in_dispatch = true;
    uv_timer_stop(&c->timer);
    if (c->deferred_status) {
        if (c->deferred_status == 405) {
            char allow[96];
            http_methods_format(c->deferred_allow, allow, sizeof(allow));
            http_response_header(req, "Allow", allow);
        }
        http_respond_error(req, c->deferred_status, c->deferred_msg, NULL, 0);
    } else if (c->streaming) {
        if (!c->stream_started) {
            c->stream_started = true;
            http_route_handler(c->route)(req);
        }
        stream_deliver(c);
    } else {
        http_route_handler(c->route)(req);
    }
    c->in_dispatch = false;
}

/* Remembers the last byte of p[0..n) that is not SP or HTAB, for byte_before. */
static void feed_note(http_conn_t *c, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n > 0)
        c->feed_prev = p[n - 1];
}

static size_t conn_feed_some(http_conn_t *c, const char *p, size_t n);

/* Parses n bytes at p. Returns how many were consumed: all of them, unless a
 * request is now waiting for an asynchronous answer or the connection closes. */
static size_t conn_feed(http_conn_t *c, const char *p, size_t n)
{
    size_t used = conn_feed_some(c, p, n);
    feed_note(c, p, used);
    return used;
}

static size_t conn_feed_some(http_conn_t *c, const char *p, size_t n)
{
    size_t used = 0;
    while (used < n && !c->closing && !c->close_after_write) {
        feed_note(c, p, used);
        c->feed_p = p + used;
        llhttp_errno_t err = llhttp_execute(&c->parser, p + used, n - used);
        if (err == HPE_OK)
            return n;
        if (err == HPE_PAUSED_UPGRADE && c->state != CONN_HANDLING) {
            /* What follows an upgrade request is not HTTP; it was answered already. */
            conn_close(c);
            return n;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            used = pos ? (size_t)(pos - p) : n;
            if (err == HPE_PAUSED_UPGRADE)
                c->keep_alive = false;
            if (c->streaming && c->state == CONN_BODY) {
                if (!c->stream_started) {
                    /* The head of a streaming request: the handler sets up. */
                    c->stream_started = true;
                    c->in_dispatch = true;
                    http_route_handler(c->route)(&c->req);
                    c->in_dispatch = false;
                } else {
                    uv_timer_stop(&c->timer);
                    stream_deliver(c);
                    if (c->stream_waiting)
                        return used; /* the handler asks for more later */
                }
                if (c->closing || c->close_after_write)
                    return used;
                llhttp_resume(&c->parser);
                continue;
            }
            dispatch(c);
            if (c->state == CONN_HANDLING)
                return used; /* answer pending: the rest waits */
            continue;
        }
        if (c->body_cut) {
            stream_cut(c, 413);
            return n;
        }
        if (c->req.responded)
            return n; /* answered already (a route check refused the request) */
        if (c->fatal_status) {
            send_error_and_close(c, c->fatal_status, c->fatal_msg);
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "malformed request: %s", llhttp_get_error_reason(&c->parser));
            send_error_and_close(c, 400, msg);
        }
        return n;
    }
    return used;
}

/* Continues with pipelined bytes after an asynchronous answer, then reads again. */
static void conn_resume(http_conn_t *c)
{
    while (c->pending.len > 0 && c->state != CONN_HANDLING && !c->stream_waiting &&
           !c->closing && !c->close_after_write) {
        size_t used = conn_feed(c, c->pending.p, c->pending.len);
        buf_consume(&c->pending, used);
    }
    if (c->state != CONN_HANDLING && !c->stream_waiting && !c->closing &&
        !c->close_after_write) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0 && rc != UV_EALREADY)
            conn_close(c);
    }
}

/* ---- libuv callbacks -------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    http_conn_t *c = h->data;
    http_server_t *s = c->server;
    (void)suggested;
    /* One read buffer per server: reads are parsed at once, and whatever must
     * survive the callback is copied out (into the request or c->pending). */
    if (s->read_buf_busy) {
        b->base = NULL;
        b->len = 0;
        return;
    }
    s->read_buf_busy = true;
    b->base = s->read_buf;
    b->len = sizeof(s->read_buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    http_conn_t *c = st->data;
    http_server_t *s = c->server;
    if (b->base == s->read_buf)
        s->read_buf_busy = false;
    if (c->lingering) {
        if (nread < 0 || (c->lingered += (size_t)nread) > LINGER_MAX_BYTES)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && c->state == CONN_BODY) {
            /* A body delimited by the end of the stream is complete now. */
            llhttp_finish(&c->parser);
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->state == CONN_HANDLING || c->stream_waiting) {
        /* Bytes that arrive while a request waits for its answer are kept for later. */
        uv_read_stop(st);
        if (buf_append(&c->pending, b->base, (size_t)nread))
            send_error_and_close(c, 500, "out of memory");
        return;
    }
    if (c->state == CONN_BODY)
        set_body_timer(c);
    size_t used = conn_feed(c, b->base, (size_t)nread);
    if ((c->state == CONN_HANDLING || c->stream_waiting) && !c->closing &&
        !c->close_after_write) {
        /* The handler answers later: stop reading until it has, keeping what is
         * left of this read for then. */
        uv_read_stop(st);
        if (buf_append(&c->pending, b->base + used, (size_t)nread - used))
            send_error_and_close(c, 500, "out of memory");
    }
}

static void on_timeout(uv_timer_t *t)
{
    http_conn_t *c = t->data;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_BODY && c->streaming && c->stream_started && !c->req.responded) {
        stream_cut(c, 408); /* its handler may have begun the answer */
        return;
    }
    if (c->state == CONN_HEAD || c->state == CONN_BODY) {
        log_info("request timed out", LOG_STR("peer", c->peer),
                 LOG_STR("phase", c->state == CONN_HEAD ? "head" : "body"));
        send_error_and_close(c, 408, c->state == CONN_HEAD
                                         ? "the request head was not received in time"
                                         : "the request body was not received in time");
    } else if (c->state == CONN_IDLE) {
        conn_close(c);
    }
}

static void set_timer(http_conn_t *c, uint64_t ms)
{
    if (!c->closing && !c->lingering)
        uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* While a body arrives, two bounds hold: the gap between bytes (body_timeout_ms)
 * and the whole body's time (body_time_ms), so a client trickling a byte now and
 * then cannot hold the connection for ever. */
static void set_body_timer(http_conn_t *c)
{
    uint64_t now = uv_now(c->server->loop);
    uint64_t left = c->body_deadline > now ? c->body_deadline - now : 1;
    uint64_t gap = c->server->opt.limits.body_timeout_ms;
    set_timer(c, gap < left ? gap : left);
}

static void on_handle_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->streaming && c->stream_started && !c->req.responded) {
        /* A streaming handler holds the request (maybe with work on a worker): tell
         * it the client is gone; it ends the request, which frees the connection. */
        c->req.aborted = true;
        c->req.body_complete = true;
        c->stream_waiting = false;
        if (c->req.on_body)
            c->req.on_body(&c->req);
        else
            http_respond_end(&c->req);
        return;
    }
    /* A handler still holding the request frees the connection when it answers; it
     * may look at aborted to answer early (a held long poll does). */
    if (c->state == CONN_HANDLING && !c->req.responded) {
        c->req.aborted = true;
        return;
    }
    free_conn(c);
}

static void conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void format_peer(http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->peer[0] = '\0';
    c->peer_ip[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", ip);
}

/* ---- connections per client address ---------------------------------- */

/* The key a client address is counted under: an IPv4 address (also IPv4-mapped),
 * or an IPv6 address's /64, which one client usually holds whole. -1: not IP. */
static int64_t addr_key(const struct sockaddr *sa)
{
    const unsigned char *b;
    if (sa->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(b, mapped, 12) != 0) {
            uint64_t k = 0;
            for (int i = 0; i < 8; i++)
                k = k << 8 | b[i];
            return (int64_t)(k & 0x7fffffffffffffffULL) | (1LL << 62);
        }
        b += 12;
    } else {
        return -1;
    }
    return (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
}

/* Parses one X-Forwarded-For entry (a bare IPv4 or IPv6 address) into ss. */
static int parse_forwarded(slice_t e, struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN];
    e = slice_trim(e);
    if (e.n == 0 || e.n >= sizeof(ip))
        return -1;
    memcpy(ip, e.p, e.n);
    ip[e.n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(ip, 0, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -1;
}

/* The client behind a trusted proxy: the right-most X-Forwarded-For entry that is not
 * itself a trusted proxy (entries further left are the client's own claims). -1
 * when there is none that parses. */
static int forwarded_key(http_conn_t *c, int64_t *key)
{
    http_server_t *s = c->server;
    slice_t xff = SLICE_NULL;
    for (size_t i = 0; i < c->req.n_headers; i++)
        if (slice_eq_nocase(c->req.headers[i].name, "x-forwarded-for"))
            xff = c->req.headers[i].value; /* the last one is the nearest proxy's */
    if (!xff.p)
        return -1;
    size_t end = xff.n;
    while (end > 0) {
        const char *comma = NULL;
        for (size_t i = end; i > 0 && !comma; i--)
            if (xff.p[i - 1] == ',')
                comma = xff.p + i - 1;
        size_t start = comma ? (size_t)(comma - xff.p) + 1 : 0;
        struct sockaddr_storage ss;
        if (parse_forwarded(slice_make(xff.p + start, end - start), &ss))
            return -1;
        if (!comma || !s->opt.trusted_proxy(
                          (struct sockaddr *)&ss, s->opt.trusted_proxy_arg)) {
            *key = addr_key((struct sockaddr *)&ss);
            return *key < 0 ? -1 : 0;
        }
        end = start - 1;
    }
    return -1;
}

/* Counts c under key; -1 when the address is at the cap already. */
static int client_count(http_conn_t *c, int64_t key)
{
    http_server_t *s = c->server;
    if (s->opt.limits.max_per_client <= 0 || key < 0)
        return 0;
    intptr_t n = (intptr_t)imap_get(&s->per_client, key);
    if (n >= s->opt.limits.max_per_client)
        return -1;
    if (imap_put(&s->per_client, key, (void *)(n + 1)))
        return 0; /* out of memory: not counted rather than refused */
    c->client_key = key;
    c->client_counted = true;
    return 0;
}

static void client_release(http_conn_t *c)
{
    http_server_t *s = c->server;
    if (!c->client_counted)
        return;
    c->client_counted = false;
    intptr_t n = (intptr_t)imap_get(&s->per_client, c->client_key);
    if (n <= 1)
        imap_del(&s->per_client, c->client_key);
    else if (imap_put(&s->per_client, c->client_key, (void *)(n - 1)))
        imap_del(&s->per_client, c->client_key);
}

/* Sets up a connection object; the caller attaches a socket to c->tcp. */
static http_conn_t *conn_new(http_server_t *s)
{
    http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    buf_init(&c->pending, READ_BUF_SIZE);
    buf_init(&c->url, s->opt.limits.max_uri);
    buf_init(&c->head, s->opt.limits.max_header_bytes);
    buf_init(&c->req.body, s->opt.limits.max_body);
    buf_init(&c->req.resp_headers, 16384);
    arena_init(&c->req.arena, 4 << 20);
    c->req.conn = c;
    c->req.server = s;
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    return c;
}

/* Starts serving an accepted connection, or refuses it when over the limit. */
static void conn_start(http_conn_t *c)
{
    http_server_t *s = c->server;
    format_peer(c);
    if ((int)s->n_conns > s->opt.limits.max_connections || s->shutting_down) {
        log_warn("connection refused: too many connections", LOG_STR("peer", c->peer),
                 LOG_INT("connections", s->n_conns));
        send_error_and_close(c, 503, s->shutting_down ? "the server is shutting down"
                                                      : "too many connections");
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (s->opt.limits.max_per_client > 0 &&
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        /* Behind a trusted proxy the client is known from the first request head. */
        c->behind_proxy = s->opt.trusted_proxy &&
                          s->opt.trusted_proxy((struct sockaddr *)&ss, s->opt.trusted_proxy_arg);
        if (!c->behind_proxy && client_count(c, addr_key((struct sockaddr *)&ss))) {
            log_warn("connection refused: too many connections from one address",
                     LOG_STR("peer", c->peer), LOG_INT("limit", s->opt.limits.max_per_client));
            send_error_and_close(c, 503, "too many connections from this client address");
            return;
        }
    }
    c->state = CONN_IDLE;
    set_timer(c, s->opt.limits.header_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    http_server_t *s = ls->data;
    if (status < 0) {
        log_warn("accept failed", LOG_STR("error", uv_strerror(status)));
        return;
    }
    http_conn_t *c = conn_new(s);
    if (!c)
        return;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_start(c);
}

int http_server_adopt(http_server_t *s, uv_os_sock_t fd)
{
    http_conn_t *c = conn_new(s);
    if (!c)
        return BH_ENOMEM;
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        conn_close(c);
        return BH_EIO;
    }
    conn_start(c);
    return 0;
}

/* ---- server ----------------------------------------------------------- */

static void on_log_check(uv_check_t *h)
{
    log_flush();
}

static void on_log_prepare(uv_prepare_t *h)
{
    log_flush();
}

int http_server_new(uv_loop_t *loop, const http_router_t *router,
                    const http_server_options_t *opt, http_server_t **out)
{
    http_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return BH_ENOMEM;
    s->loop = loop;
    s->router = router;
    s->opt = *opt;
    if (http__stats_init(&s->stats, router)) {
        free(s);
        return BH_ENOMEM;
    }
    imap_init(&s->per_client);
    if (!s->opt.server_name)
        s->opt.server_name = "breakhook/" BREAKHOOK_VERSION;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    unsigned char rnd[4];
    if (rand_bytes(rand_system(), rnd, sizeof(rnd)))
        memset(rnd, 0, sizeof(rnd));
    snprintf(s->rid_prefix, sizeof(s->rid_prefix), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3]);
    /* Unreferenced: flushing the log is no reason to keep the loop alive. */
    uv_check_init(loop, &s->log_check);
    uv_prepare_init(loop, &s->log_prepare);
    s->log_check.data = s;
    s->log_prepare.data = s;
    s->log_handles = 2;
    uv_check_start(&s->log_check, on_log_check);
    uv_prepare_start(&s->log_prepare, on_log_prepare);
    uv_unref((uv_handle_t *)&s->log_check);
    uv_unref((uv_handle_t *)&s->log_prepare);
    log_buffer_begin();
    *out = s;
    return 0;
}

int http_server_listen(http_server_t *s, const char *host, int port, const char **why)
{
    struct sockaddr_storage addr;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc < 0) {
        if (why)
            *why = "not a numeric IPv4 or IPv6 address";
        return BH_EINVAL;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    /* On Linux a port in use is reported by listen, not by bind: both carry the cause. */
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection)) < 0) {
        if (why)
            *why = uv_strerror(rc);
        return BH_EIO;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

size_t http_server_connections(const http_server_t *s)
{
    return s->n_conns;
}

int http_server_metrics_write(const http_server_t *s, buf_t *out)
{
    int rc = http__stats_write(&s->stats, s->router, out);
    return rc ? rc
              : metrics_write_single(out, "breakhook_http_connections", "gauge",
                                     "Open connections on the API listener.", s->n_conns);
}

static void maybe_server_done(http_server_t *s)
{
    if (!s->shutting_down || s->n_conns > 0 || s->listening || s->log_handles > 0)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    imap_deinit(&s->per_client);
    http__stats_deinit(&s->stats);
    free(s);
    if (done)
        done(arg);
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    s->listening = false;
    maybe_server_done(s);
}

static void on_log_handle_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    s->log_handles--;
    maybe_server_done(s);
}

void http_server_shutdown(http_server_t *s, void (*done)(void *arg), void *arg)
{
    s->shutting_down = true;
    s->done = done;
    s->done_arg = arg;
    /* The loop thread writes its lines at once from here: the answers still going out
     * are logged without waiting, and the flush handles can close now, before a
     * caller's uv_walk closes whatever is left on the loop. */
    log_buffer_end();
    uv_close((uv_handle_t *)&s->log_check, on_log_handle_closed);
    uv_close((uv_handle_t *)&s->log_prepare, on_log_handle_closed);
    for (http_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        /* A connection whose request has not reached a handler has no work in flight
         * and nothing was acknowledged to it: it can go now. The others are answered,
         * then closed. */
        if ((c->state != CONN_HANDLING && !c->stream_waiting) || c->lingering)
            conn_close(c);
        else
            c->close_after_write = true;
    }
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* ---- request helpers -------------------------------------------------- */

slice_t http_request_header(const http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (slice_eq_nocase(req->headers[i].name, name))
            return req->headers[i].value;
    return SLICE_NULL;
}

const char *http_request_peer_ip(const http_request_t *req)
{
    return req->conn ? req->conn->peer_ip : "";
}

slice_t http_request_param(const http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++)
        if (slice_eq_cstr(req->params[i].name, name))
            return req->params[i].value;
    return SLICE_NULL;
}

bool http_request_query(http_request_t *req, const char *name, const char **out)
{
    *out = NULL;
    if (!req->query.p)
        return false;
    const char *p = req->query.p, *end = req->query.p + req->query.n;
    size_t name_len = strlen(name);
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        char *key = arena_alloc(&req->arena, (size_t)(ke - p) + 1);
        if (!key)
            return false;
        long kn = http__percent_decode(p, (size_t)(ke - p), key, true);
        if (kn == (long)name_len && memcmp(key, name, name_len) == 0) {
            size_t vlen = eq ? (size_t)(pe - eq - 1) : 0;
            char *val = arena_alloc(&req->arena, vlen + 1);
            if (!val)
                return false;
            if (http__percent_decode(eq ? eq + 1 : pe, vlen, val, true) < 0)
                return false;
            *out = val;
            return true;
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}
