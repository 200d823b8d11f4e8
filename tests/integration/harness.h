/*
 * harness.h: what every integration test needs to drive the real breakhook binary.
 *
 * A test starts `breakhook serve` as a child process listening on 127.0.0.1 with a
 * port chosen by the kernel (--listen 127.0.0.1:0 --port-file), a SQLite store and a
 * log file in a fresh temporary directory, talks to it over plain sockets, and stops
 * it with SIGTERM. Nothing listens anywhere but 127.0.0.1, and every wait is bounded:
 * a server that hangs makes a test fail, never makes the suite hang.
 *
 * The client side is deliberately raw (bytes in, bytes out) so tests can send what a
 * well-behaved HTTP library never would: pipelined batches, partial heads, NUL bytes.
 *
 * Everything here runs on the test's one thread. Functions that can fail return 0 or
 * -1 (with the reason in it_last_error()); the it_assert_* helpers fail the current
 * cmocka test instead.
 *
 * The shared integration helpers, one copy of each, built on one another:
 *   harness.h           processes (server, sink, CLI), raw HTTP, JSON, bounded waits;
 *   harness_auth.h      tenants, clients and tokens the way an operator and an
 *                       integrator get them, requests on a new connection each;
 *   harness_api.h       a booted server (tenant, client, token, keep-alive requests
 *                       that must answer a status), seed data, webhook creation;
 *   harness_consumer.h  the in-process webhook consumer (plain or TLS, signature
 *                       checks, programmable answers).
 * A test file keeps only what is about its own subject; CMake builds every harness*.c
 * into every integration test.
 */
#ifndef BREAKHOOK_TESTS_INTEGRATION_HARNESS_H
#define BREAKHOOK_TESTS_INTEGRATION_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IT_START_TIMEOUT_MS 30000 /* until the port file appears */
#define IT_STOP_TIMEOUT_MS 15000  /* SIGTERM to exit; SIGKILL after (the server's own
                                     * --shutdown-timeout defaults to 10 s) */
#define IT_IO_TIMEOUT_MS 15000    /* default bound on one response */
#define IT_STOP_KILLED (-1)       /* it_server_stop: had to SIGKILL after the bound */
/* Waits for something a server does in the background (a delivery, a retry, a
 * webhook catching up) stretch their deadline by this factor: the deadlines are there
 * to catch a server that never gets there, not to time it, and the suite runs under
 * ASan on a 2-core machine that may be busy with another build. */
#define IT_PATIENCE 4

/* Why the last harness call failed (timeout, EOF, malformed answer, ...). */
const char *it_last_error(void);
/* Monotonic milliseconds. */
uint64_t it_now_ms(void);
void it_sleep_ms(unsigned ms);
/* The next number of a xorshift64 generator with state *s (not 0): rand is banned and
 * not thread-safe; each thread keeps its own state. */
uint64_t it_xorshift(uint64_t *s);
/* Calls check(arg) every poll_ms until it returns true, for at most timeout_ms (it is
 * called once more at the deadline); whether it held. The caller decides how to fail,
 * naming what it waited for. */
bool it_wait_until(bool (*check)(void *arg), void *arg, unsigned timeout_ms, unsigned poll_ms);

/* ---- temporary directories and files -------------------------------------- */

/* Creates a fresh directory /tmp/breakhook-it-XXXXXX (or under $TMPDIR) into out. */
int it_tmpdir_new(char *out, size_t n);
/* Removes a directory tree; a no-op for "" or a missing path. */
void it_rmtree(const char *path);
/* Reads a whole file into a NUL-terminated malloc'd buffer (caller frees); NULL if it
 * cannot be read. *len (may be NULL) gets the length without the NUL. */
char *it_read_file(const char *path, size_t *len);

/* ---- the server process ------------------------------------------------------ */

typedef struct it_server {
    pid_t pid;              /* 0 when not running */
    int port;               /* from the port file */
    int status;             /* once it has exited: as it_server_stop returns it */
    char dir[256];          /* the temporary directory; removed by it_server_cleanup */
    char port_path[320];
    char db_path[320];      /* the SQLite file; --store sqlite:<db_path> (unless PG) */
    /* The --store of this server and of CLI runs on its data: "sqlite:<db_path>", or,
     * when the test runs with BREAKHOOK_TEST_PG_URL (a PostgreSQL cluster's URL), a
     * database of its own made in that cluster (it_store_url_make). */
    char store_url[400];
    char log_path[320];     /* --log-file (the server's structured log) */
    char output_path[320];  /* the child's stdout and stderr (sanitizer reports land here) */
    char metrics_port_path[320];
    int metrics_port;       /* the /metrics listener's port; 0 when it has none */
} it_server_t;

typedef struct it_server_opts {
    const char *const *args; /* extra arguments after the harness's own, NULL-terminated */
    const char *const *env;  /* "NAME=VALUE" sets, "NAME" unsets, in the child; NULL-terminated */
    bool no_listen;          /* omit --listen (the test supplies it, e.g. through the env) */
    bool no_log_file;        /* omit --log-file (logs go to output_path then) */
} it_server_opts_t;

/* Starts `BREAKHOOK_BIN serve --listen 127.0.0.1:0 --port-file DIR/port
 * --metrics-listen 127.0.0.1:0 --metrics-port-file DIR/metrics-port
 * --store sqlite:DIR/breakhook.db --log-file DIR/server.log [args...]` in a new
 * temporary directory (also its working directory), with every BREAKHOOK_* variable of
 * the test's environment removed, then waits (bounded) for the port file. opts may be
 * NULL. On failure the child is killed, its output printed, and -1 returned; the
 * directory is kept until it_server_cleanup. The child dies with the test process. */
int it_server_start(it_server_t *s, const it_server_opts_t *opts);
/* Fills s->store_url for s->dir and s->db_path (it_server_start does): sqlite:<db_path>,
 * or with BREAKHOOK_TEST_PG_URL set, a new database "it_<dir's name>" made in that
 * cluster with psql and the same URL naming it. 0, or -1 (reason in it_last_error). */
int it_store_url_make(it_server_t *s);
/* True when the test runs with BREAKHOOK_TEST_PG_URL (every server on PostgreSQL). A
 * test that reads or fills the SQLite file itself skips then (cmocka skip()). */
bool it_store_pg(void);
/* Starts `BREAKHOOK_BIN sink --listen 127.0.0.1:0 --port-file DIR/port [args...]` in
 * dir (a restart keeps its files) or, with dir NULL, a new temporary directory, with
 * BREAKHOOK_* variables removed; stdout goes to DIR/stdout.log (output_path), stderr
 * to DIR/stderr.log (log_path). Waits (bounded) for the port; -1 on failure (output
 * printed). it_server_stop, it_server_dump and it_server_cleanup work on it. */
int it_sink_start(it_server_t *s, const char *dir, const char *const *args);
/* Sends SIGTERM and waits up to timeout_ms (0: IT_STOP_TIMEOUT_MS) for the exit. Returns
 * the exit code, 128+N when killed by signal N, or IT_STOP_KILLED when it had to be
 * SIGKILLed after the bound. A server not running: returns what it last exited with. */
int it_server_stop(it_server_t *s, unsigned timeout_ms);
/* SIGKILL and reap (a crash as the server sees it). */
void it_server_kill9(it_server_t *s);
/* True while the process has not exited. */
bool it_server_running(it_server_t *s);
/* What every teardown asks: SIGTERM, and the server must still have been running and
 * exit 0 (a crash, a sanitizer report or a server that ignores SIGTERM fails the test
 * even when its assertions passed). Otherwise prints why, with it_server_dump, and
 * returns -1. Does not remove the directory (it_server_cleanup does). */
int it_server_stop_clean(it_server_t *s);
/* Kills the server if it still runs and removes its directory. Safe to call twice. */
void it_server_cleanup(it_server_t *s);
/* Prints the child's output and the tail of its log on stderr (for failing tests). */
void it_server_dump(const it_server_t *s);

/* GET /metrics from the server's metrics listener: the body (malloc'd, caller
 * frees), or NULL when the answer is not a 200. */
char *it_metrics_scrape(const it_server_t *s);
/* The value of the sample named exactly series ("name" or `name{a="x",b="y"}`, labels
 * in the order the server writes them) in a scrape; NAN when there is none. */
double it_metric(const char *scrape, const char *series);

/* ---- running the CLI ----------------------------------------------------------- */

typedef struct it_run_opts {
    const char *const *env; /* as in it_server_opts_t */
    const char *cwd;        /* NULL: the current directory */
    const char *input;      /* written to stdin, then closed; NULL: /dev/null */
    size_t input_len;
    unsigned timeout_ms;    /* 0: 10 s; the child is SIGKILLed past it */
} it_run_opts_t;

typedef struct it_run_result {
    int status;             /* exit code, 128+signal, or IT_STOP_KILLED on timeout */
    char *out;              /* stdout, NUL-terminated */
    size_t out_len;
    char *err;              /* stderr, NUL-terminated */
    size_t err_len;
} it_run_result_t;

/* Runs BREAKHOOK_BIN with args (NULL-terminated, without the program name) and
 * captures its exit status, stdout and stderr. opts may be NULL. Returns 0 when the
 * child could be run (whatever its exit status), -1 otherwise. */
int it_run(const char *const *args, const it_run_opts_t *opts, it_run_result_t *r);
void it_run_result_free(it_run_result_t *r);
/* Runs another program, argv[0] found on PATH (or a path), in cwd in its own process
 * group, with stdin from /dev/null and stdout and stderr to log_path (truncated);
 * waits at most timeout_ms, then SIGKILLs the group. Returns the exit status, 128+N
 * when killed by signal N, or -1 on timeout or when it could not be run. */
int it_cmd_run(const char *const *argv, const char *cwd, const char *log_path,
               unsigned timeout_ms);

/* ---- raw client ------------------------------------------------------------------ */

typedef struct it_conn {
    int fd;
    char *buf;  /* received bytes not consumed yet (pipelined answers, extra data) */
    size_t len, cap;
    bool eof;   /* the peer closed (FIN or reset) */
    bool reset; /* ... with a reset */
} it_conn_t;

/* Connects to 127.0.0.1:port (bounded by IT_IO_TIMEOUT_MS). */
int it_connect(it_conn_t *c, int port);
void it_conn_close(it_conn_t *c);
/* Sends all n bytes (bounded by IT_IO_TIMEOUT_MS); never raises SIGPIPE. */
int it_send(it_conn_t *c, const void *p, size_t n);
int it_send_str(it_conn_t *c, const char *s);

#define IT_MAX_RESPONSE_HEADERS 64

typedef struct it_response {
    int status;
    int minor_version;          /* HTTP/1.x */
    char reason[64];
    struct {
        char *name;
        char *value;
    } headers[IT_MAX_RESPONSE_HEADERS];
    size_t n_headers;
    char *body;                 /* NUL-terminated; "" when there is none */
    size_t body_len;
    char *raw;                  /* the whole response as received (head and body) */
    size_t raw_len;
} it_response_t;

/* Reads one response from c (bytes already buffered first): the status line, the
 * headers, and a body delimited by Content-Length, chunked encoding or, without either,
 * the end of the stream. head_request: the request was HEAD (no body follows). A 1xx,
 * 204 or 304 has no body. Bytes after the response stay buffered for the next call.
 * Fails on timeout, on EOF before a complete response, or on a malformed one. */
int it_read_response(it_conn_t *c, it_response_t *r, bool head_request, unsigned timeout_ms);
void it_response_free(it_response_t *r);
/* The first header named name (case-insensitive), or NULL. */
const char *it_response_header(const it_response_t *r, const char *name);
size_t it_response_header_count(const it_response_t *r, const char *name);
/* Reads until the peer closes, up to timeout_ms. *out (malloc'd, NUL-terminated, caller
 * frees) gets every byte received, buffered ones included. Returns 0 when the end of
 * the stream was reached, -1 on timeout (*out still set). out may be NULL. */
int it_read_until_eof(it_conn_t *c, unsigned timeout_ms, char **out, size_t *n);
/* Waits up to timeout_ms for the peer to close. Bytes that arrive meanwhile are
 * buffered. True when it closed (FIN or reset), false when still open. */
bool it_peer_closed(it_conn_t *c, unsigned timeout_ms);

/* Waits up to timeout_ms for more bytes (buffered) or the end of the stream. True when
 * something arrived, false when nothing did. */
bool it_data_within(it_conn_t *c, unsigned timeout_ms);

/* A complete request on an open connection: adds Host and User-Agent (unless the extra
 * header lines contain them) and Content-Length when body is not NULL. headers: extra
 * lines, each ending in CRLF, or NULL. Then reads the answer. */
int it_conn_request(it_conn_t *c, const char *method, const char *target, const char *headers,
                    const char *body, size_t body_len, it_response_t *r);
/* The same on a new connection, closed afterwards. */
int it_request(int port, const char *method, const char *target, const char *headers,
               const char *body, size_t body_len, it_response_t *r);
/* GET target on a new connection; returns the status, or -1. */
int it_get_status(int port, const char *target);

/* ---- JSON ------------------------------------------------------------------------- */

/* Parses (p, n) as JSON with duplicate keys rejected; NULL when it is not JSON. */
json_t *it_json_parse(const char *p, size_t n);
/* Checks that (p, n) is the SPEC error body {"error":{"code":code,"message":"<non-empty>",
 * "reasons":[strings]}} with nothing else. On mismatch returns false and puts why. */
bool it_error_body_ok(const char *p, size_t n, const char *code, char *why, size_t why_len);
/* cmocka assertions: the status is status, the Content-Type is JSON, and the body is
 * the SPEC error body with code. */
void it_assert_error(const it_response_t *r, int status, const char *code);
/* cmocka assertion: the response is status with a JSON body; returns it parsed (caller
 * decrefs). */
json_t *it_assert_json(const it_response_t *r, int status);

/* A malloc'd printf; fails the test when out of memory. */
char *it_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
/* Percent-encodes everything but RFC 3986's unreserved characters (malloc'd). */
char *it_urlenc(const char *s);

/* Runs the CLI with args in dir; fails the test unless it exits 0; returns its stdout
 * (malloc'd). */
char *it_cli_ok(const char *dir, const char *const *args);
/* Reconnects c to port when it is closed or the server closed it. */
void it_conn_ensure(it_conn_t *c, int port);

#endif
