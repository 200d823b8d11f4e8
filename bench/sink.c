/*
 * sink.c: the benchmark's fast webhook consumer. It answers every POST with 204 at
 * once (no signature check: the ceiling the engine is compared with must not be
 * the sink), counts deliveries, and answers GET /stats with
 * {"deliveries":N,"first_ms":…,"last_ms":…} (wall-clock milliseconds).
 *
 * usage: bench_sink [--port N] [--record FILE] [--hang] [PORT_FILE]
 *   PORT_FILE      write the port listened on there (needed with the default port 0)
 *   --port N       listen on 127.0.0.1:N instead of a free port, so a destination
 *                  can be "down" (nothing listening) and come back on the same port
 *   --record FILE  append "id receipt_unix_us" for every delivery to FILE: data.id
 *                  of the body and the wall-clock time the whole request had
 *                  arrived. Lines are buffered and written on GET /flush (which
 *                  answers {"recorded":N}) and at SIGTERM.
 *   --hang         a destination that hangs: accept connections, read and discard
 *                  whatever arrives, never answer; a connection is closed only when
 *                  the peer closes it. No HTTP at all (so no /stats); at SIGTERM it
 *                  prints to stderr how many connections and bytes it took.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/http.h"

/* The hung destination keeps at most this many connections open; later ones are
 * closed at once (the engine caps its in-flight attempts far below this). */
#define SINK_HANG_MAX_CONNS 4096
/* Records are written through a stdio buffer this large, so the file costs one
 * write(2) per ~25,000 deliveries rather than one per delivery. */
#define SINK_RECORD_BUF (1 << 20)

typedef struct sink_opts {
    int port;
    const char *port_file;
    const char *record_path;
    bool hang;
} sink_opts_t;

static uint64_t deliveries;
static int64_t first_ms, last_ms;
static FILE *record_file;
static uint64_t recorded;

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* data.id of a delivery body {"changeType":…,"data":{"changeVersion":…,"id":N,…}}.
 * A small scan of the "data" object's own members (nested objects such as
 * "person":{"id":…} are skipped) instead of a JSON parse, which would make the
 * sink, not the engine, the bottleneck. Returns -1 when the body has another shape. */
static int64_t body_record_id(const char *p, size_t n)
{
    static const char data_key[] = "\"data\":{";
    static const char id_key[] = "\"id\":";
    const size_t dlen = sizeof(data_key) - 1, ilen = sizeof(id_key) - 1;
    size_t i = 0;
    while (i + dlen <= n && memcmp(p + i, data_key, dlen) != 0)
        i++;
    if (i + dlen > n)
        return -1;
    int depth = 1;
    for (i += dlen; i < n && depth > 0; i++) {
        char c = p[i];
        if (c == '"' && depth == 1 && i + ilen <= n && !memcmp(p + i, id_key, ilen)) {
            int64_t id = 0;
            size_t j = i + ilen, digits = 0;
            for (; j < n && p[j] >= '0' && p[j] <= '9' && digits < 18; j++, digits++)
                id = id * 10 + (p[j] - '0');
            return digits ? id : -1;
        }
        if (c == '"') { /* skip the string, escapes included */
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return -1;
}

static void on_post(http_request_t *req)
{
    int64_t now = clock_now_ms(clock_system());
    if (!deliveries)
        first_ms = now;
    last_ms = now;
    deliveries++;
    if (record_file) {
        int64_t us = wall_us();
        fprintf(record_file, "%" PRId64 " %" PRId64 "\n",
                body_record_id(req->body.p ? req->body.p : "", req->body.len), us);
        recorded++;
    }
    http_respond(req, 204, NULL, NULL, 0);
}

static void on_stats(http_request_t *req)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"deliveries\":%llu,\"first_ms\":%lld,\"last_ms\":%lld}",
                     (unsigned long long)deliveries, (long long)first_ms, (long long)last_ms);
    http_respond_json(req, 200, body, (size_t)n);
}

static void on_flush(http_request_t *req)
{
    char body[64];
    if (record_file && fflush(record_file) != 0) {
        http_respond_error(req, 500, "cannot write the record file", NULL, 0);
        return;
    }
    int n = snprintf(body, sizeof(body), "{\"recorded\":%llu}", (unsigned long long)recorded);
    http_respond_json(req, 200, body, (size_t)n);
}

/* ---- --hang: a raw TCP server that reads and never writes ---------------- */

static size_t hang_open, hang_total;
static uint64_t hang_bytes;
static char hang_read_buf[65536];

static void hang_on_closed(uv_handle_t *h)
{
    free(h);
    hang_open--;
}

static void hang_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    /* One buffer for every connection: what arrives is counted and dropped. */
    b->base = hang_read_buf;
    b->len = sizeof(hang_read_buf);
}

static void hang_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    if (nread > 0)
        hang_bytes += (uint64_t)nread;
    else if (nread < 0)
        uv_close((uv_handle_t *)st, hang_on_closed);
}

static void hang_on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(server->loop, c);
    hang_open++;
    if (uv_accept(server, (uv_stream_t *)c) < 0 || hang_open > SINK_HANG_MAX_CONNS) {
        uv_close((uv_handle_t *)c, hang_on_closed);
        return;
    }
    hang_total++;
    if (uv_read_start((uv_stream_t *)c, hang_on_alloc, hang_on_read) < 0)
        uv_close((uv_handle_t *)c, hang_on_closed);
}

/* Binds the hanging listener; *port gets the port bound to. */
static int hang_listen(uv_loop_t *loop, uv_tcp_t *srv, int want_port, int *port)
{
    struct sockaddr_in addr;
    struct sockaddr_storage got;
    int len = sizeof(got);
    int rc = uv_ip4_addr("127.0.0.1", want_port, &addr);
    if (!rc)
        rc = uv_tcp_init(loop, srv);
    if (!rc)
        rc = uv_tcp_bind(srv, (const struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)srv, 1024, hang_on_connection);
    if (!rc)
        rc = uv_tcp_getsockname(srv, (struct sockaddr *)&got, &len);
    if (rc)
        return rc;
    *port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_sink [--port N] [--record FILE] [--hang] [PORT_FILE]\n");
    return 2;
}

static int parse_args(int argc, char **argv, sink_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            char *end;
            errno = 0;
            long p = strtol(argv[++i], &end, 10);
            if (errno || *end || p < 0 || p > 65535)
                return -1;
            o->port = (int)p;
        } else if (!strcmp(argv[i], "--record") && i + 1 < argc) {
            o->record_path = argv[++i];
        } else if (!strcmp(argv[i], "--hang")) {
            o->hang = true;
        } else if (argv[i][0] != '-' && !o->port_file) {
            o->port_file = argv[i];
        } else {
            return -1;
        }
    }
    /* A free port nobody is told about would be useless. */
    if (!o->port_file && o->port == 0)
        return -1;
    return 0;
}

static int write_port_file(const char *path, int port)
{
    /* Written to a temporary name and renamed, so a reader polling for the file
     * never sees it empty or half written. */
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    sink_opts_t o = { 0 };
    if (parse_args(argc, argv, &o))
        return usage();
    if (log_setup(LOG_WARN, LOG_FORMAT_JSON, NULL))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    int port;
    uv_tcp_t hang_srv;
    if (o.hang) {
        int rc = hang_listen(loop, &hang_srv, o.port, &port);
        if (rc) {
            fprintf(stderr, "bench_sink: listen on port %d: %s\n", o.port, uv_strerror(rc));
            return 1;
        }
    } else {
        if (o.record_path) {
            record_file = fopen(o.record_path, "a");
            if (!record_file || setvbuf(record_file, NULL, _IOFBF, SINK_RECORD_BUF)) {
                fprintf(stderr, "bench_sink: cannot open %s\n", o.record_path);
                return 1;
            }
        }
        http_router_t *r = http_router_new();
        http_route_opts_t ro = { 0 };
        if (!r || http_router_add(r, HTTP_M_POST, "/hook", on_post, &ro) ||
            http_router_add(r, HTTP_M_POST, "/hook/{n}", on_post, &ro) ||
            http_router_add(r, HTTP_M_GET, "/stats", on_stats, &ro) ||
            http_router_add(r, HTTP_M_GET, "/flush", on_flush, &ro))
            return 1;
        http_server_options_t so = { .access_log = false };
        http_limits_default(&so.limits);
        http_server_t *s;
        int rc = http_server_new(loop, r, &so, &s);
        if (!rc)
            rc = http_server_listen(s, "127.0.0.1", o.port, NULL);
        if (rc) {
            fprintf(stderr, "bench_sink: listen on port %d: %s\n", o.port, err_str(rc));
            return 1;
        }
        port = http_server_port(s);
    }
    if (o.port_file && write_port_file(o.port_file, port)) {
        fprintf(stderr, "bench_sink: cannot write %s\n", o.port_file);
        return 1;
    }
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    if (record_file && fclose(record_file) != 0) {
        fprintf(stderr, "bench_sink: cannot write %s\n", o.record_path);
        return 1;
    }
    if (o.hang)
        fprintf(stderr, "bench_sink --hang: %zu connections, %" PRIu64 " bytes read, none answered\n",
                hang_total, hang_bytes);
    return 0;
}
