/*
 * soak.c: the bounded chaos soak of issue #12 (`make soak`; not part of `make test` or
 * CTest).
 *
 * Two rounds, each on a fresh store: `--coalesce=true`, then `--coalesce=false`. In a
 * round one writer sends random writes to SOAK_RECORDS breaks (PUT with a new
 * clockedDurationInMinutes each time, now and then a DELETE or a $batch of a few
 * upsert/delete lines) for its share of SOAK_SECONDS, while
 *   - the server is killed with SIGKILL every few seconds and restarted on the same
 *     store (the harness's `--store` is overridden by a later one: the last wins);
 *   - now and then the "disk" fills (the test hook BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE,
 *     see tests/integration/test_disk.c: "1" caps the database at its size) until a
 *     write fails with 503, stays full a second or two, and is freed again;
 *   - the destination, a small threaded HTTP server inside this program, answers 500,
 *     hangs past --delivery-timeout (2 s) or resets the connection (SO_LINGER 0) at
 *     random, and otherwise 200.
 * A write is acknowledged when the server answered it with success: its changeVersion
 * is then known (a PUT's body, a $batch line's report). A DELETE answers 204 without a
 * version; its version is known only to lie between the record's acknowledged versions
 * before and after it. A write that failed (503, a connection cut by the kill) counts
 * for nothing, but may still have committed, so deliveries of versions nobody
 * acknowledged are expected and fine.
 *
 * At the end of a round the disk is freed, the destination made healthy, and the soak
 * waits (at most SETTLE_S) until the expectations hold, then checks them:
 *   - newest missing: records whose newest acknowledged version (or a newer one) was
 *     never delivered (answered 2xx) -- must be 0;
 *   - skipped (--coalesce=false only): acknowledged versions never delivered -- must
 *     be 0 (with coalescing, intermediate versions may be replaced, SPEC §7.3);
 *   - backwards: deliveries of a version for the first time after a newer version of
 *     the same record was delivered -- must be 0 (a repeat of an older version after a
 *     crash is at-least-once, not backwards);
 *   - duplicates: deliveries of a version delivered before (expected after kills);
 *   - peak RSS: the server's VmHWM, read before every kill and at the end.
 * The server must also never exit by itself (crashes), and every delivery must carry a
 * record id and a changeVersion (malformed).
 *
 * Reading the output: per round one line "soak: round NAME PASS|FAIL: ..." with the
 * write requests sent (those answered 503 by the full disk, those cut by a kill), the
 * changes acknowledged (a $batch acknowledges one per applied line), kills, disk-full
 * episodes (each saw at least one 503 unless it ran out its 10 s), the destination's
 * attempts and how it failed them, deliveries (2xx), duplicates, the must-be-0 figures,
 * how long the settle took, the webhook's final status, the server's peak RSS; then the
 * same figures as one JSON line ({"round":"coalesce",...}) for docs to quote; on a
 * failure the first problem found, and the directories kept for a post-mortem. The
 * last line is "soak: PASS" or "soak: FAIL" with the seed. Exit status: 0 pass, 1 a
 * figure that must be 0 is not, 2 the soak itself could not run.
 *
 * Environment: SOAK_SECONDS (default 480: each round writes for (SOAK_SECONDS - 30) / 2,
 * then settles, normally within seconds and at most SETTLE_S); SOAK_SEED (the PRNG
 * seed, printed at the start: it replays the writer's choices, the kill and disk
 * schedule; thread and network timing make no two runs identical); SOAK_KEEP=1 keeps
 * the stores and logs (their directories are printed; kept anyway on a failure).
 */
#define _GNU_SOURCE /* accept4, memmem */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "model/model.h"

#define BASE "/connector/protimeapi/api/v1"
#define TENANT "acme"
#define ALL_SCOPES                                                                               \
    "connector-protimeapi-breaks.read connector-protimeapi-breaks.write "                        \
    "connector-protimeapi-break-definitions.read connector-protimeapi-break-definitions.write " \
    "connector-protimeapi-people.read connector-protimeapi-people.write "                        \
    "connector-protimeapi-webhooks.read connector-protimeapi-webhooks.write"

#define SOAK_RECORDS 50     /* break ids 1..SOAK_RECORDS */
#define SETTLE_S 60         /* a round's wait for the expectations, at most */
#define KILL_MIN_MS 3000    /* the server lives this long between kills, at least */
#define KILL_SPAN_MS 5000   /* ... plus up to this much */
#define DISK_FULL_MAX_MS 10000 /* a disk-full episode waits this long for a 503, at most */
#define MAX_BODY (1u << 20) /* a delivery body larger than this ends the connection */

/* The destination's answer to one delivery, in percent of deliveries while chaos is on. */
#define P_500 10
#define P_HANG 4
#define P_RESET 8

/* ---- the random sources: xorshift64*, seeded once -------------------------------- */

/* Two streams from the one seed: the writer's (main thread: writes, kills, disk) so that
 * a seed replays the same sequence of writes, and the destination's (its threads,
 * under a lock), whose draws depend on the order deliveries arrive in. */
static uint64_t rng_writer, rng_dest;
static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

/* Uniform in [0, n), the writer's stream. */
static unsigned rnd_below(unsigned n)
{
    return n ? (unsigned)(xorshift64s(&rng_writer) % n) : 0;
}

/* Uniform in [0, n), the destination's stream; any thread. */
static unsigned rnd_dest_below(unsigned n)
{
    pthread_mutex_lock(&rng_mu);
    uint64_t x = xorshift64s(&rng_dest);
    pthread_mutex_unlock(&rng_mu);
    return n ? (unsigned)(x % n) : 0;
}

/* A changeVersion (20 upper-case hex digits) as a number; 0 when it is not one. */
static uint64_t version_num(const char *s)
{
    uint64_t v;
    return s && model_version_parse(s, strlen(s), &v) == 0 ? v : 0;
}

static void die(const char *what)
{
    fprintf(stderr, "soak: %s\n", what);
    exit(2);
}

/* A growable array of fixed-size items; dies when out of memory. */
static void *grow(void *p, size_t *cap, size_t n, size_t item)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 1024;
    void *q = realloc(p, c * item);
    if (!q)
        die("out of memory");
    *cap = c;
    return q;
}

/* ---- the destination ------------------------------------------------------------------ */

typedef struct delivered { /* a 2xx the destination answered, in the order it answered */
    int64_t record;
    uint64_t v;
    bool is_delete;
} delivered_t;

typedef struct dest {
    int lfd, port;
    pthread_t acceptor;
    atomic_bool stop;
    atomic_bool healthy;   /* answer 200 to everything */
    atomic_int threads;    /* connection threads still running */
    pthread_mutex_t mu;
    delivered_t *ok;
    size_t n_ok, cap_ok;
    size_t attempts, n_500, n_hang, n_reset, malformed;
} dest_t;

typedef struct dconn {
    dest_t *d;
    int fd;
} dconn_t;

/* Some bytes: > 0 read, 0 end of stream or error, -1 nothing within timeout_ms. */
static ssize_t d_read(int fd, char *p, size_t n, int timeout_ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0 || (pr < 0 && errno == EINTR))
        return -1;
    if (pr < 0)
        return 0;
    ssize_t r = recv(fd, p, n, 0);
    if (r > 0)
        return r;
    return r < 0 && (errno == EINTR || errno == EAGAIN) ? -1 : 0;
}

static bool d_write(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The Content-Length of a request head (NUL-terminated), or -1. */
static long long content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\ncontent-length:");
    if (!p)
        return -1;
    char *end;
    long long n = strtoll(p + 17, &end, 10);
    return end == p + 17 ? -1 : n;
}

/* One delivery: decides the answer, records a 2xx, answers. False when the
 * connection must end. */
static bool d_handle(dest_t *d, int fd, const char *body, size_t n)
{
    json_t *j = json_loadb(body, n, 0, NULL);
    json_t *data = json_object_get(j, "data");
    json_t *rid = json_object_get(data, "id");
    const char *ct = json_string_value(json_object_get(j, "changeType"));
    delivered_t rec = { json_is_integer(rid) ? (int64_t)json_integer_value(rid) : -1,
                        version_num(json_string_value(json_object_get(data, "changeVersion"))),
                        ct && strcmp(ct, "Delete") == 0 };
    json_decref(j);

    unsigned roll = atomic_load(&d->healthy) ? 100 : rnd_dest_below(100);
    pthread_mutex_lock(&d->mu);
    d->attempts++;
    if (rec.record <= 0 || !rec.v)
        d->malformed++;
    enum { OK, E500, HANG, RESET } act = roll < P_500                   ? E500
                                         : roll < P_500 + P_HANG        ? HANG
                                         : roll < P_500 + P_HANG + P_RESET ? RESET
                                                                        : OK;
    if (act == OK) {
        /* Recorded before the answer leaves: once it is sent, the record's next event
         * may arrive on another connection at once. */
        d->ok = grow(d->ok, &d->cap_ok, d->n_ok, sizeof(*d->ok));
        d->ok[d->n_ok++] = rec;
    }
    d->n_500 += act == E500;
    d->n_hang += act == HANG;
    d->n_reset += act == RESET;
    pthread_mutex_unlock(&d->mu);

    if (act == HANG) { /* until the server gives up on it (or the soak stops) */
        char tmp[512];
        while (!atomic_load(&d->stop) && d_read(fd, tmp, sizeof(tmp), 100) != 0)
            ;
        return false;
    }
    if (act == RESET) {
        static const char partial[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart";
        d_write(fd, partial, sizeof(partial) - 1);
        struct linger lg = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return false; /* the close sends RST */
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    static const char fail[] = "HTTP/1.1 500 Soak\r\nContent-Length: 4\r\n\r\nfail";
    return act == OK ? d_write(fd, ok, sizeof(ok) - 1) : d_write(fd, fail, sizeof(fail) - 1);
}

static void *d_conn_main(void *arg)
{
    dconn_t *c = arg;
    dest_t *d = c->d;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf && !atomic_load(&d->stop)) {
        char *he = NULL;
        while (!atomic_load(&d->stop)) {
            buf[len] = '\0';
            if ((he = memmem(buf, len, "\r\n\r\n", 4)) != NULL || len == cap)
                break;
            ssize_t r = d_read(c->fd, buf + len, cap - len, 100);
            if (r == 0)
                goto out;
            if (r > 0)
                len += (size_t)r;
        }
        if (!he)
            break;
        size_t head_len = (size_t)(he - buf) + 4;
        char saved = buf[head_len];
        buf[head_len] = '\0';
        long long body_len = content_length(buf);
        buf[head_len] = saved;
        if (body_len < 0 || body_len > MAX_BODY) {
            pthread_mutex_lock(&d->mu);
            d->malformed++;
            pthread_mutex_unlock(&d->mu);
            break;
        }
        size_t need = head_len + (size_t)body_len;
        if (need > cap) {
            char *p = realloc(buf, need + 1);
            if (!p)
                break;
            buf = p;
            cap = need;
        }
        while (len < need && !atomic_load(&d->stop)) {
            ssize_t r = d_read(c->fd, buf + len, cap - len, 100);
            if (r == 0)
                goto out;
            if (r > 0)
                len += (size_t)r;
        }
        if (len < need || !d_handle(d, c->fd, buf + head_len, (size_t)body_len))
            break;
        memmove(buf, buf + need, len - need);
        len -= need;
    }
out:
    free(buf);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&d->threads, 1);
    return NULL;
}

static void *d_acceptor_main(void *arg)
{
    dest_t *d = arg;
    while (!atomic_load(&d->stop)) {
        struct pollfd pfd = { d->lfd, POLLIN, 0 };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        dconn_t *c = malloc(sizeof(*c));
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (c) {
            *c = (dconn_t){ d, fd };
            atomic_fetch_add(&d->threads, 1);
        }
        if (!c || pthread_create(&th, &at, d_conn_main, c) != 0) {
            if (c)
                atomic_fetch_sub(&d->threads, 1);
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

static void dest_start(dest_t *d)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (d->lfd < 0 || bind(d->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(d->lfd, 256) != 0 || getsockname(d->lfd, (struct sockaddr *)&a, &al) != 0)
        die("the destination cannot listen on 127.0.0.1");
    d->port = ntohs(a.sin_port);
    if (pthread_create(&d->acceptor, NULL, d_acceptor_main, d) != 0)
        die("pthread_create");
}

/* Stops accepting and waits (bounded) for the connection threads to end. */
static void dest_stop(dest_t *d)
{
    atomic_store(&d->stop, true);
    pthread_join(d->acceptor, NULL);
    close(d->lfd);
    for (int i = 0; i < 100 && atomic_load(&d->threads) > 0; i++)
        it_sleep_ms(50);
}

/* ---- the server, its restarts, its disk --------------------------------------------------- */

typedef struct ack { /* an acknowledged write, in the order of the answers */
    int64_t record;
    uint64_t v;      /* 0: a DELETE (204 names no version) */
    bool is_delete;
} ack_t;

typedef struct round {
    bool coalesce;
    const char *name;
    it_server_t first;     /* the first server: its directory holds the store */
    it_server_t cur;       /* the one running now (the first, or a restart) */
    char store[400];
    char limit_dir[256];   /* holds the page-limit file */
    char limit_path[400];  /* BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE */
    char client_id[128], client_secret[256];
    char auth[1200];
    char webhook_id[64];
    it_conn_t conn;
    dest_t dest;
    /* The killer thread sends SIGKILL to kill_pid once the clock passes kill_at, at
     * whatever point the writer is (often in the middle of a request), after reading
     * the process's VmHWM; then sets fired. The writer reaps and restarts. */
    pthread_t killer;
    atomic_bool killer_stop, fired;
    atomic_bool in_request;  /* the writer is between sending a request and its answer */
    atomic_bool kill_mid_request; /* this kill waits (up to 1 s) for a request in flight */
    atomic_int kill_pid;
    _Atomic uint64_t kill_at;
    atomic_long peak_rss_atomic;
    ack_t *acks;
    size_t n_acks, cap_acks;
    unsigned write_seq;
    /* figures */
    size_t writes_tried, writes_503, writes_other, writes_lost, kills, disk_episodes, crashes;
    long peak_rss_kb;
} round_t;

/* VmHWM of pid in kB, or 0. */
static long vm_hwm_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *text = it_read_file(path, NULL);
    long kb = 0;
    const char *p = text ? strstr(text, "VmHWM:") : NULL;
    if (p)
        kb = strtol(p + 6, NULL, 10);
    free(text);
    return kb;
}

static void note_rss_of(round_t *r, pid_t pid)
{
    long kb = pid > 0 ? vm_hwm_kb(pid) : 0;
    long cur = atomic_load(&r->peak_rss_atomic);
    while (kb > cur && !atomic_compare_exchange_weak(&r->peak_rss_atomic, &cur, kb))
        ;
}

static void note_rss(round_t *r)
{
    note_rss_of(r, r->cur.pid);
}

static void *killer_main(void *arg)
{
    round_t *r = arg;
    while (!atomic_load(&r->killer_stop)) {
        pid_t pid = atomic_load(&r->kill_pid);
        uint64_t at = atomic_load(&r->kill_at), now = it_now_ms();
        bool due = now >= at && (!atomic_load(&r->kill_mid_request) ||
                                 atomic_load(&r->in_request) || now >= at + 1000);
        if (pid > 0 && !atomic_load(&r->fired) && due) {
            note_rss_of(r, pid);
            kill(pid, SIGKILL); /* not reaped here: the pid cannot be reused meanwhile */
            atomic_store(&r->fired, true);
        }
        it_sleep_ms(2);
    }
    return NULL;
}

/* The next kill, KILL_MIN_MS + up to KILL_SPAN_MS after now. */
static void schedule_kill(round_t *r)
{
    atomic_store(&r->kill_at, it_now_ms() + KILL_MIN_MS + rnd_below(KILL_SPAN_MS));
    atomic_store(&r->kill_mid_request, rnd_below(2) == 0);
    atomic_store(&r->fired, false);
    atomic_store(&r->kill_pid, r->cur.pid);
}

static void set_page_limit(const round_t *r, const char *pages)
{
    FILE *fp = fopen(r->limit_path, "w");
    if (!fp || fputs(pages, fp) < 0 || fclose(fp) != 0)
        die("cannot write the page-limit file");
}

/* One request on the round's keep-alive connection (reconnecting when needed). -1
 * when no answer came (the server was killed, or is being restarted). */
static int request(round_t *r, const char *method, const char *target, const char *ctype,
                   const char *body, it_response_t *resp)
{
    if (r->conn.fd < 0 || r->conn.eof) {
        it_conn_close(&r->conn);
        if (it_connect(&r->conn, r->cur.port) != 0)
            return -1;
    }
    char headers[1400];
    snprintf(headers, sizeof(headers), "%s%s%s%s", r->auth, ctype ? "Content-Type: " : "",
             ctype ? ctype : "", ctype ? "\r\n" : "");
    atomic_store(&r->in_request, true);
    int rc = it_conn_request(&r->conn, method, target, headers, body, body ? strlen(body) : 0,
                             resp);
    atomic_store(&r->in_request, false);
    if (rc != 0) {
        it_conn_close(&r->conn);
        return -1;
    }
    const char *c = it_response_header(resp, "connection");
    if (c && strcasecmp(c, "close") == 0)
        it_conn_close(&r->conn);
    return 0;
}

static bool get_token(round_t *r)
{
    char *id = it_urlenc(r->client_id), *sec = it_urlenc(r->client_secret);
    char *form = it_fmt("grant_type=client_credentials&client_id=%s&client_secret=%s", id, sec);
    free(id);
    free(sec);
    it_response_t resp;
    bool ok = false;
    r->auth[0] = '\0';
    if (request(r, "POST", "/tenants/" TENANT "/connect/token",
                "application/x-www-form-urlencoded", form, &resp) == 0) {
        json_t *j = resp.status == 200 ? it_json_parse(resp.body, resp.body_len) : NULL;
        const char *tok = json_string_value(json_object_get(j, "access_token"));
        if (tok && strlen(tok) < sizeof(r->auth) - 40) {
            snprintf(r->auth, sizeof(r->auth), "Authorization: Bearer %s\r\n", tok);
            ok = true;
        }
        json_decref(j);
        it_response_free(&resp);
    }
    free(form);
    return ok;
}

/* Starts `serve` with the soak's options: on a fresh store (r->first), or on the first
 * one's store (a restart: the later --store wins over the harness's own). */
static void server_start(round_t *r, bool restart)
{
    char *env_var = it_fmt("BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE=%s", r->limit_path);
    const char *const env[] = { env_var, NULL };
    char retries[32 * 6 + 1] = "";
    for (int i = 0; i < 32; i++) /* the most values it takes: nothing is disabled */
        snprintf(retries + strlen(retries), sizeof(retries) - strlen(retries), "%s200ms",
                 i ? "," : "");
    const char *args[40];
    size_t n = 0;
    const char *fixed[] = { "--allow-http-destinations", "--allow-destination", "127.0.0.1/32",
                            "--retry-schedule", retries, "--delivery-timeout", "2s",
                            "--breaker-pause", "200ms", "--rate-limit", "0",
                            "--token-rate-per-address", "0", "--token-rate-global", "0",
                            "--disk-reserve", "1048576", "--shutdown-timeout", "2s",
                            r->coalesce ? "--coalesce=true" : "--coalesce=false" };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        args[n++] = fixed[i];
    if (restart) {
        args[n++] = "--store";
        args[n++] = r->store;
    }
    args[n] = NULL;
    it_server_opts_t o = { .args = args, .env = env };
    it_server_t *s = restart ? &r->cur : &r->first;
    if (it_server_start(s, &o) != 0) {
        fprintf(stderr, "soak: the server did not start: %s\n", it_last_error());
        exit(2);
    }
    free(env_var);
    if (!restart)
        r->cur = r->first;
    r->conn.fd = -1;
}

/* After the killer thread's SIGKILL: reaps the server and restarts it on the same store
 * with the disk freed. A restart's own directory (port file, log) goes once it is
 * killed in turn; the first server's holds the store and stays. */
static void kill_and_restart(round_t *r)
{
    atomic_store(&r->kill_pid, 0); /* the killer leaves the pid alone once it is reaped */
    it_conn_close(&r->conn);
    bool was_first = r->cur.pid == r->first.pid;
    it_server_kill9(&r->cur);
    if (r->cur.status != 128 + SIGKILL) {
        /* It had died by itself before the kill: a crash, which fails the round. */
        r->crashes++;
        printf("soak: round %s: the server had exited with status %d before its kill\n",
               r->name, r->cur.status);
        it_server_dump(&r->cur);
    }
    if (was_first)
        r->first.pid = 0;
    else
        it_server_cleanup(&r->cur);
    r->kills++;
    set_page_limit(r, "0");
    server_start(r, true);
    for (int i = 0; i < 50 && !get_token(r); i++)
        it_sleep_ms(100);
}

/* ---- writes ---------------------------------------------------------------------------------- */

static void ack(round_t *r, int64_t record, uint64_t v, bool is_delete)
{
    r->acks = grow(r->acks, &r->cap_acks, r->n_acks, sizeof(*r->acks));
    r->acks[r->n_acks++] = (ack_t){ record, v, is_delete };
}

/* A break whose state is new on every call (clockedDurationInMinutes counts writes). */
static char *break_body(round_t *r, int64_t id)
{
    unsigned k = ++r->write_seq;
    return it_fmt("{\"id\":%lld,\"person\":{\"id\":1},\"breakDefinition\":{\"id\":1},"
                  "\"date\":\"2024-03-01\",\"clockedDurationInMinutes\":%u,"
                  "\"startTimeInMinutes\":%u,\"endTimeInMinutes\":%u,\"isBreakTaken\":true}",
                  (long long)id, k % 100000, k / 100000 % 600, k / 100000 % 600 + 120);
}

static void count_failure(round_t *r, int rc, const it_response_t *resp)
{
    if (rc != 0)
        r->writes_lost++;
    else if (resp->status == 503)
        r->writes_503++;
    else
        r->writes_other++;
}

static void write_put(round_t *r, int64_t id)
{
    char target[96];
    snprintf(target, sizeof(target), BASE "/breaks/%lld", (long long)id);
    char *b = break_body(r, id);
    it_response_t resp;
    int rc = request(r, "PUT", target, "application/json", b, &resp);
    free(b);
    r->writes_tried++;
    if (rc == 0 && (resp.status == 200 || resp.status == 201)) {
        json_t *j = it_json_parse(resp.body, resp.body_len);
        uint64_t v = version_num(json_string_value(json_object_get(j, "changeVersion")));
        json_decref(j);
        if (!v) {
            fprintf(stderr, "soak: PUT %s answered %d without a changeVersion: %.300s\n", target,
                    resp.status, resp.body);
            exit(2);
        }
        ack(r, id, v, false);
    } else {
        count_failure(r, rc, &resp);
    }
    if (rc == 0)
        it_response_free(&resp);
}

static void write_delete(round_t *r, int64_t id)
{
    char target[96];
    snprintf(target, sizeof(target), BASE "/breaks/%lld", (long long)id);
    it_response_t resp;
    int rc = request(r, "DELETE", target, NULL, NULL, &resp);
    r->writes_tried++;
    if (rc == 0 && resp.status == 204)
        ack(r, id, 0, true);
    else if (rc != 0 || resp.status != 404) /* 404: nothing to delete, nothing changed */
        count_failure(r, rc, &resp);
    if (rc == 0)
        it_response_free(&resp);
}

/* A $batch of 2..6 lines to random records (a record may come twice). */
static void write_batch(round_t *r)
{
    char body[8192];
    size_t len = 0;
    unsigned lines = 2 + rnd_below(5);
    for (unsigned i = 0; i < lines; i++) {
        int64_t id = 1 + rnd_below(SOAK_RECORDS);
        if (rnd_below(8) == 0) {
            len += (size_t)snprintf(body + len, sizeof(body) - len,
                                    "{\"op\":\"delete\",\"id\":%lld}\n", (long long)id);
        } else {
            char *b = break_body(r, id);
            len += (size_t)snprintf(body + len, sizeof(body) - len,
                                    "{\"op\":\"upsert\",\"data\":%s}\n", b);
            free(b);
        }
    }
    it_response_t resp;
    int rc = request(r, "POST", BASE "/breaks/$batch", "application/x-ndjson", body, &resp);
    r->writes_tried++;
    if (rc != 0 || resp.status != 200) {
        count_failure(r, rc, &resp);
        if (rc == 0)
            it_response_free(&resp);
        return;
    }
    /* One report line per input line; the applied ones name their changeVersion. */
    const char *p = resp.body, *end = resp.body + resp.body_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        json_t *j = it_json_parse(p, (size_t)(le - p));
        json_int_t st = json_integer_value(json_object_get(j, "status"));
        json_int_t id = json_integer_value(json_object_get(j, "id"));
        uint64_t v = version_num(json_string_value(json_object_get(j, "changeVersion")));
        if (v && id > 0 && st >= 200 && st < 300)
            ack(r, id, v, st == 204);
        json_decref(j);
        p = nl ? nl + 1 : end;
    }
    it_response_free(&resp);
}

static void write_random(round_t *r)
{
    unsigned roll = rnd_below(100);
    int64_t id = 1 + rnd_below(SOAK_RECORDS);
    if (roll < 8)
        write_delete(r, id);
    else if (roll < 20)
        write_batch(r);
    else
        write_put(r, id);
}

/* ---- the round ------------------------------------------------------------------------------- */

static char *cli(round_t *r, const char *const *args)
{
    it_run_result_t res;
    it_run_opts_t o = { .cwd = r->first.dir, .timeout_ms = 30000 };
    if (it_run(args, &o, &res) != 0) {
        fprintf(stderr, "soak: cannot run breakhook %s: %s\n", args[0], it_last_error());
        exit(2);
    }
    if (res.status != 0) {
        fprintf(stderr, "soak: breakhook %s %s exited %d: %s\n", args[0], args[1], res.status,
                res.err);
        exit(2);
    }
    char *out = res.out;
    res.out = NULL;
    it_run_result_free(&res);
    return out;
}

/* A setup request that must succeed. */
static void must(round_t *r, const char *method, const char *target, const char *body,
                 json_t **out)
{
    it_response_t resp;
    if (request(r, method, target, "application/json", body, &resp) != 0 || resp.status < 200 ||
        resp.status > 299) {
        fprintf(stderr, "soak: %s %s failed: %s\n", method, target, it_last_error());
        exit(2);
    }
    if (out)
        *out = it_json_parse(resp.body, resp.body_len);
    it_response_free(&resp);
}

static void round_setup(round_t *r)
{
    if (it_tmpdir_new(r->limit_dir, sizeof(r->limit_dir)) != 0)
        die("cannot create a temporary directory");
    snprintf(r->limit_path, sizeof(r->limit_path), "%s/max-pages", r->limit_dir);
    set_page_limit(r, "0");
    server_start(r, false);
    snprintf(r->store, sizeof(r->store), "sqlite:%s", r->first.db_path);

    const char *const tenant[] = { "tenant", "create", TENANT, "--store", r->store, NULL };
    free(cli(r, tenant));
    const char *const client[] = { "client", "create", "--tenant", TENANT, "--name", "soak",
                                   "--json", "--scopes", ALL_SCOPES, "--store", r->store, NULL };
    char *out = cli(r, client);
    json_t *c = it_json_parse(out, strlen(out));
    free(out);
    snprintf(r->client_id, sizeof(r->client_id), "%s",
             json_string_value(json_object_get(c, "clientId")));
    snprintf(r->client_secret, sizeof(r->client_secret), "%s",
             json_string_value(json_object_get(c, "clientSecret")));
    json_decref(c);
    if (!get_token(r))
        die("no token");

    must(r, "PUT", BASE "/people/1",
         "{\"id\":1,\"externalReferences\":{\"@employee-number\":\"E-1\",\"HRMID\":\"H-1\"}}",
         NULL);
    must(r, "PUT", BASE "/break-definitions/1",
         "{\"id\":1,\"name\":{\"default\":\"Lunch\"},\"friendlyName\":{\"default\":\"Lunch\"},"
         "\"paidDurationInMinutes\":15,\"minimumDurationInMinutes\":15,"
         "\"maximumDurationInMinutes\":60,\"ifNotClockedDurationInMinutes\":30,"
         "\"hasToBeTakenUninterrupted\":true}",
         NULL);
    dest_start(&r->dest);
    char *wb = it_fmt("{\"destinationUrl\":\"http://127.0.0.1:%d/hook\",\"collectionName\":"
                      "\"breaks\"}",
                      r->dest.port);
    json_t *w = NULL;
    must(r, "POST", BASE "/webhooks", wb, &w);
    free(wb);
    snprintf(r->webhook_id, sizeof(r->webhook_id), "%s",
             json_string_value(json_object_get(w, "id")));
    json_decref(w);
}

/* Runs writes with kills and disk-full episodes until deadline_ms. */
static void round_chaos(round_t *r, uint64_t deadline_ms)
{
    uint64_t disk_at = 0, disk_until = 0; /* a disk-full episode: filled at, freed at */
    bool disk_full = false, disk_failed = false;
    schedule_kill(r);
    if (pthread_create(&r->killer, NULL, killer_main, r) != 0)
        die("pthread_create");
    while (it_now_ms() < deadline_ms) {
        uint64_t now = it_now_ms();
        if (atomic_load(&r->fired)) {
            kill_and_restart(r); /* frees the disk first when it was full */
            disk_full = false;
            disk_at = 0;
            schedule_kill(r);
            /* One kill interval in four has a disk-full episode in it. */
            if (rnd_below(4) == 0)
                disk_at = it_now_ms() + rnd_below(KILL_MIN_MS);
            continue;
        }
        if (disk_at && !disk_full && now >= disk_at) {
            set_page_limit(r, "1");
            disk_full = true;
            disk_failed = false;
            disk_until = now + DISK_FULL_MAX_MS;
            r->disk_episodes++;
        }
        if (disk_full && now >= disk_until) {
            set_page_limit(r, "0");
            disk_full = false;
            disk_at = 0;
        }
        size_t before = r->writes_503;
        write_random(r);
        if (disk_full && !disk_failed && r->writes_503 > before) {
            /* Full for real: stay so for another second or two, then free it. */
            disk_failed = true;
            disk_until = it_now_ms() + 1000 + rnd_below(1500);
        }
        if (r->auth[0] == '\0')
            get_token(r);
        it_sleep_ms(rnd_below(15));
    }
    atomic_store(&r->killer_stop, true);
    pthread_join(r->killer, NULL);
    if (atomic_load(&r->fired)) /* killed at the very end: restart for the settle */
        kill_and_restart(r);
    set_page_limit(r, "0");
}

/* ---- the checks ---------------------------------------------------------------------------- */

typedef struct figures {
    size_t deliveries, duplicates, skipped, newest_missing, backwards, unknown_deliveries;
    char first_problem[256];
} figures_t;

/* Was (record, v) delivered among ok[0..n)? */
static bool delivered_in(const delivered_t *ok, size_t n, int64_t record, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (ok[i].record == record && ok[i].v == v)
            return true;
    return false;
}

static void problem(figures_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(figures_t *f, const char *fmt, ...)
{
    if (f->first_problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->first_problem, sizeof(f->first_problem), fmt, ap);
    va_end(ap);
}

/* Computes every figure from the acknowledged writes and the deliveries so far. */
static void compute(round_t *r, figures_t *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_lock(&r->dest.mu);
    size_t n = r->dest.n_ok;
    delivered_t *ok = malloc((n ? n : 1) * sizeof(*ok));
    if (!ok)
        die("out of memory");
    memcpy(ok, r->dest.ok, n * sizeof(*ok));
    pthread_mutex_unlock(&r->dest.mu);
    f->deliveries = n;

    /* Per record, in arrival order: repeats, and first deliveries below the newest
     * first-delivered version (backwards). */
    for (int64_t id = 1; id <= SOAK_RECORDS; id++) {
        uint64_t newest_first = 0;
        for (size_t i = 0; i < n; i++) {
            if (ok[i].record != id)
                continue;
            bool repeat = false;
            for (size_t k = 0; k < i && !repeat; k++)
                repeat = ok[k].record == id && ok[k].v == ok[i].v;
            if (repeat) {
                f->duplicates++;
                continue;
            }
            if (ok[i].v < newest_first) {
                f->backwards++;
                problem(f, "record %lld: version %020llX first delivered (delivery %zu) after "
                           "the newer %020llX", (long long)id, (unsigned long long)ok[i].v, i + 1,
                        (unsigned long long)newest_first);
            } else {
                newest_first = ok[i].v;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        f->unknown_deliveries += ok[i].record < 1 || ok[i].record > SOAK_RECORDS;

    /* Per record, the acknowledged writes in order. A DELETE's version is unknown: it
     * lies between the record's acknowledged versions before and after it. */
    for (int64_t id = 1; id <= SOAK_RECORDS; id++) {
        uint64_t prev = 0; /* the last known acknowledged version before this write */
        ssize_t last = -1;
        for (size_t a = 0; a < r->n_acks; a++) {
            const ack_t *w = &r->acks[a];
            if (w->record != id)
                continue;
            last = (ssize_t)a;
            if (!r->coalesce) {
                bool found;
                if (w->v) {
                    found = delivered_in(ok, n, id, w->v);
                } else { /* a Delete delivered with a version after prev (and before next) */
                    uint64_t next = UINT64_MAX;
                    for (size_t b = a + 1; b < r->n_acks && next == UINT64_MAX; b++)
                        if (r->acks[b].record == id && r->acks[b].v)
                            next = r->acks[b].v;
                    found = false;
                    for (size_t i = 0; i < n && !found; i++)
                        found = ok[i].record == id && ok[i].is_delete && ok[i].v > prev &&
                                ok[i].v < next;
                }
                if (!found) {
                    f->skipped++;
                    problem(f, "record %lld: acknowledged %s %020llX never delivered",
                            (long long)id, w->is_delete ? "delete" : "version",
                            (unsigned long long)w->v);
                }
            }
            if (w->v)
                prev = w->v;
        }
        if (last < 0)
            continue;
        /* The newest acknowledged state, or a newer one (a write whose answer the kill
         * cut may have committed after it), must have been delivered. */
        const ack_t *w = &r->acks[last];
        uint64_t need = w->v ? w->v : prev + 1;
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = ok[i].record == id && ok[i].v >= need;
        if (!found) {
            f->newest_missing++;
            problem(f, "record %lld: newest acknowledged %s %020llX (or newer) never delivered",
                    (long long)id, w->is_delete ? "delete after" : "version",
                    (unsigned long long)(w->v ? w->v : prev));
        }
    }
    free(ok);
}

/* The webhook's status as the server reports it (for the summary: a Disabled webhook
 * explains missing deliveries). */
static void webhook_status(round_t *r, char *out, size_t n)
{
    char *target = it_fmt(BASE "/webhooks/%s", r->webhook_id);
    it_response_t resp;
    snprintf(out, n, "?");
    /* Twice: the keep-alive connection may have been closed while idle (a long settle). */
    int rc = request(r, "GET", target, NULL, NULL, &resp);
    if (rc != 0)
        rc = request(r, "GET", target, NULL, NULL, &resp);
    if (rc == 0) {
        json_t *j = it_json_parse(resp.body, resp.body_len);
        const char *st = json_string_value(json_object_get(j, "status"));
        const char *why = json_string_value(json_object_get(j, "disabledReason"));
        snprintf(out, n, "%s%s%s", st ? st : "?", why ? "/" : "", why ? why : "");
        json_decref(j);
        it_response_free(&resp);
    }
    free(target);
}

/* One round; returns true when every must-be-0 figure is 0. */
static bool run_round(bool coalesce, unsigned write_s, bool keep)
{
    round_t r;
    memset(&r, 0, sizeof(r));
    r.coalesce = coalesce;
    r.name = coalesce ? "coalesce" : "no-coalesce";
    r.conn.fd = -1;
    uint64_t t0 = it_now_ms();
    round_setup(&r);
    printf("soak: round %s: writing for %u s (server %s, destination port %d)\n", r.name,
           write_s, r.first.dir, r.dest.port);
    fflush(stdout);
    round_chaos(&r, t0 + (uint64_t)write_s * 1000);

    /* Settle: a healthy destination and a free disk, until the expectations hold. */
    atomic_store(&r.dest.healthy, true);
    uint64_t t_settle = it_now_ms();
    figures_t f;
    for (;;) {
        compute(&r, &f);
        if ((f.newest_missing == 0 && f.skipped == 0) ||
            it_now_ms() - t_settle > (uint64_t)SETTLE_S * 1000)
            break;
        it_sleep_ms(500);
    }
    it_sleep_ms(1000); /* anything still on its way */
    compute(&r, &f);
    uint64_t settle_ms = it_now_ms() - t_settle;
    char wstatus[96];
    webhook_status(&r, wstatus, sizeof(wstatus));
    note_rss(&r);
    if (!it_server_running(&r.cur)) {
        r.crashes++;
        printf("soak: round %s: the server exited with status %d during the settle\n", r.name,
               r.cur.status);
        it_server_dump(&r.cur);
    }
    r.peak_rss_kb = atomic_load(&r.peak_rss_atomic);

    bool ok = f.newest_missing == 0 && f.skipped == 0 && f.backwards == 0 && r.crashes == 0 &&
              r.dest.malformed == 0 && f.unknown_deliveries == 0;
    printf("soak: round %s %s: %zu write requests (%zu answered 503, %zu cut by a kill, %zu "
           "failed otherwise), %zu changes acknowledged, %zu kills, %zu disk-full episodes; "
           "destination: %zu attempts (%zu 500, %zu hung, %zu reset), %zu deliveries, %zu "
           "duplicates; versions skipped %zu, newest missing %zu, backwards %zu, crashes %zu, "
           "malformed %zu; settled in %llu ms; webhook %s; peak RSS %ld kB\n",
           r.name, ok ? "PASS" : "FAIL", r.writes_tried, r.writes_503, r.writes_lost,
           r.writes_other, r.n_acks, r.kills, r.disk_episodes, r.dest.attempts, r.dest.n_500,
           r.dest.n_hang, r.dest.n_reset, f.deliveries, f.duplicates, f.skipped,
           f.newest_missing, f.backwards, r.crashes, r.dest.malformed,
           (unsigned long long)settle_ms, wstatus, r.peak_rss_kb);
    if (f.first_problem[0])
        printf("soak: round %s: first problem: %s\n", r.name, f.first_problem);
    printf("{\"round\":\"%s\",\"seconds\":%llu,\"writesTried\":%zu,\"acknowledged\":%zu,"
           "\"kills\":%zu,\"diskFullEpisodes\":%zu,\"writes503\":%zu,\"attempts\":%zu,"
           "\"deliveries\":%zu,\"duplicates\":%zu,\"versionsSkipped\":%zu,\"newestMissing\":%zu,"
           "\"backwards\":%zu,\"crashes\":%zu,\"settleMs\":%llu,\"peakRssKb\":%ld,\"pass\":%s}\n",
           r.name, (unsigned long long)((it_now_ms() - t0) / 1000), r.writes_tried, r.n_acks,
           r.kills, r.disk_episodes, r.writes_503, r.dest.attempts, f.deliveries, f.duplicates,
           f.skipped, f.newest_missing, f.backwards, r.crashes, (unsigned long long)settle_ms,
           r.peak_rss_kb, ok ? "true" : "false");
    fflush(stdout);

    it_conn_close(&r.conn);
    bool cur_is_first = strcmp(r.cur.dir, r.first.dir) == 0;
    int st = it_server_stop(&r.cur, 0);
    if (cur_is_first)
        r.first.pid = 0;
    if (st != 0)
        printf("soak: round %s: the last server exited with status %d\n", r.name, st);
    if (!ok || keep) {
        printf("soak: round %s: kept %s (store) and %s (last server's log)\n", r.name,
               r.first.dir, r.cur.dir);
    } else {
        if (!cur_is_first)
            it_server_cleanup(&r.cur);
        it_server_cleanup(&r.first);
    }
    it_rmtree(r.limit_dir);
    dest_stop(&r.dest);
    free(r.acks);
    return ok;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *s = getenv("SOAK_SECONDS");
    unsigned total = s && *s ? (unsigned)strtoul(s, NULL, 10) : 480;
    if (total < 60)
        total = 60;
    const char *seed_s = getenv("SOAK_SEED");
    uint64_t seed = seed_s && *seed_s ? strtoull(seed_s, NULL, 10)
                                      : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    if (!seed)
        seed = 1;
    rng_writer = seed;
    rng_dest = seed ^ 0x9E3779B97F4A7C15ULL;
    bool keep = getenv("SOAK_KEEP") && strcmp(getenv("SOAK_KEEP"), "1") == 0;
    /* Each round writes for its half of the total less a settle margin. */
    unsigned write_s = (total - 2 * 15) / 2;
    printf("soak: seed %llu (SOAK_SEED=%llu replays it), %u s in all, %u s of writes per round, "
           "%d records\n",
           (unsigned long long)seed, (unsigned long long)seed, total, write_s, SOAK_RECORDS);
    fflush(stdout);
    bool ok1 = run_round(true, write_s, keep);
    bool ok2 = run_round(false, write_s, keep);
    printf("soak: %s (seed %llu)\n", ok1 && ok2 ? "PASS" : "FAIL", (unsigned long long)seed);
    return ok1 && ok2 ? 0 : 1;
}
