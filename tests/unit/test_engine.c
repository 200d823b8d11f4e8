/*
 * test_engine.c: the delivery engine in process (SPEC §7.3): retry timing, success
 * after failures, Retry-After, retries exhausted, expiry at validUntil, stop.
 *
 * Each test gets a store in a fresh temporary directory with a fake clock (the store
 * stamps committed_at_ms with it), one tenant with a person and a break definition,
 * a small HTTP consumer thread on 127.0.0.1:<ephemeral> and the engine started with
 * the same fake clock and a fixed fake random source, plain http allowed and
 * 127.0.0.1/32 allow-listed.
 *
 * Time. The engine's thread ticks every 20 ms of real time and compares due times
 * with the injected clock, so the tests move the fake clock (never sleep minutes) and
 * wait a bounded real time for the effect. Two facts of the engine shape the waits:
 *   - its flush of results to the store runs when FLUSH_MS (100 ms) of *fake* time
 *     passed since the previous flush, so the helpers that wait for the attempt log
 *     nudge the fake clock by 100 ms at a time (and only once the attempt's outcome is
 *     known, so attemptedAt and nextAttemptAt are computed on a still clock);
 *   - engine_get_stats counts an attempt's outcome (delivered / failed / gave_up)
 *     after the engine read the clock for it, so waiting on those counters is the
 *     safe moment to move the clock.
 *
 * The consumer: plain sockets, keep-alive, Content-Length bodies; programmable:
 * answer `fail_status` (with an optional Retry-After) `fail_left` times (-1:
 * always) then 204, or hang (read the request, never answer). It records each
 * request's webhook-id and the changeVersion and id of its body.
 *
 * Coalescing (on, and off with --coalesce=false) is checked on one record whose
 * first change waits for a retry while newer ones arrive, and without coalescing also
 * on a backlog the engine finds when it starts or when it loads a new webhook; three
 * tests run again with the transfers on two transport threads (setup_threads).
 *
 * Regressions these tests caught and keep covered (marked "was a bug"): a record
 * stalled when its attempt could not be started (test_start_failure_does_not_stall,
 * with the engine's test_fail_starts); the watermark claimed an undelivered event after RetriesExhausted, expiry and stop;
 * the wh_t was freed while a scan job or a flush batch still pointed to it. Those
 * two tests run last; `test_engine <name>` runs one test alone.
 */
#define _GNU_SOURCE /* nftw, mkdtemp, memmem, accept4 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/destination.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "delivery/engine.h"
#include "delivery/retry.h"
#include "model/model.h"
#include "store/store.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY0 20454            /* 2026-01-01 in days since the epoch */
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define FLUSH_NUDGE_MS 100    /* engine.c FLUSH_MS */
#define WAIT_MS 20000         /* the longest a test waits for anything (real time) */

/* ---- real time ------------------------------------------------------------------- */

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the consumer ---------------------------------------------------------------- */

#define MAX_CONNS 32
#define MAX_RECORDED 64
#define CONN_BUF 65536

typedef struct received {
    char webhook_id[96];
    uint64_t version;         /* data.changeVersion */
    int64_t record_id;        /* data.id */
    char change_type[24];
    char path[32];            /* the request's target */
    int answered;             /* the status sent back, 0 when hung */
} received_t;

typedef struct conn {
    int fd;
    size_t len;
    char *buf;
} conn_t;

typedef struct consumer {
    int lfd;
    uint16_t port;
    pthread_t thread;
    bool running;
    int stop;                 /* atomic */
    pthread_mutex_t mu;
    /* programmable (under mu) */
    int fail_status;
    int fail_left;            /* -1: always fail; 0: answer 204 */
    long long retry_after;    /* -1: no Retry-After header */
    bool hang;
    char fail_path[32];       /* "": the above for every request; else only for this
                                 target, and 204 for the others */
    /* recorded (under mu) */
    int n_requests;
    int n_other;              /* requests to a target other than fail_path (when set) */
    int n_bad;                /* requests that could not be parsed */
    received_t rec[MAX_RECORDED];
    conn_t conns[MAX_CONNS];  /* consumer thread only */
} consumer_t;

static void consumer_program(consumer_t *c, int fail_status, int fail_left, long long retry_after,
                             bool hang)
{
    pthread_mutex_lock(&c->mu);
    c->fail_status = fail_status;
    c->fail_left = fail_left;
    c->retry_after = retry_after;
    c->hang = hang;
    pthread_mutex_unlock(&c->mu);
}

static int consumer_count(consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->n_requests;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static received_t consumer_get(consumer_t *c, int i)
{
    received_t r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_lock(&c->mu);
    if (i >= 0 && i < c->n_requests && i < MAX_RECORDED)
        r = c->rec[i];
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* The value of header `name` in the header block h (n bytes), into out. */
static bool header_value(const char *h, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = h, *end = h + n;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = eol + 2;
    }
    return false;
}

static void record_body(received_t *r, const char *body, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(body, len, 0, &err);
    json_t *data = json_object_get(o, "data");
    const char *v = json_string_value(json_object_get(data, "changeVersion"));
    const char *ct = json_string_value(json_object_get(o, "changeType"));
    if (v && model_version_parse(v, strlen(v), &r->version))
        r->version = 0;
    if (json_is_integer(json_object_get(data, "id")))
        r->record_id = (int64_t)json_integer_value(json_object_get(data, "id"));
    snprintf(r->change_type, sizeof(r->change_type), "%s", ct ? ct : "");
    json_decref(o);
}

/* Handles every complete request in the connection's buffer. false: close it. */
static bool consumer_serve(consumer_t *c, conn_t *k)
{
    for (;;) {
        char *hend = memmem(k->buf, k->len, "\r\n\r\n", 4);
        if (!hend)
            return k->len < CONN_BUF;
        size_t hlen = (size_t)(hend - k->buf) + 4;
        char cl[32] = "0";
        (void)header_value(k->buf, hlen, "Content-Length", cl, sizeof(cl));
        char *endp = NULL;
        long long body_len = strtoll(cl, &endp, 10);
        if (body_len < 0 || body_len > CONN_BUF)
            return false;
        if (k->len < hlen + (size_t)body_len)
            return true; /* the rest of the body is still coming */

        received_t r;
        memset(&r, 0, sizeof(r));
        const char *target = memchr(k->buf, ' ', hlen);
        const char *target_end = target ? memchr(target + 1, ' ', hlen - (size_t)(target - k->buf) - 1) : NULL;
        if (target && target_end && (size_t)(target_end - target - 1) < sizeof(r.path))
            memcpy(r.path, target + 1, (size_t)(target_end - target - 1));
        (void)header_value(k->buf, hlen, "webhook-id", r.webhook_id, sizeof(r.webhook_id));
        record_body(&r, k->buf + hlen, (size_t)body_len);

        pthread_mutex_lock(&c->mu);
        bool programmed = !c->fail_path[0] || !strcmp(c->fail_path, r.path);
        bool hang = c->hang && programmed;
        int status = 204;
        long long ra = -1;
        if (!hang && programmed && c->fail_left != 0) {
            status = c->fail_status;
            ra = c->retry_after;
            if (c->fail_left > 0)
                c->fail_left--;
        }
        r.answered = hang ? 0 : status;
        if (r.version == 0)
            c->n_bad++;
        if (c->n_requests < MAX_RECORDED)
            c->rec[c->n_requests] = r;
        c->n_requests++;
        c->n_other += !programmed;
        pthread_mutex_unlock(&c->mu);

        size_t used = hlen + (size_t)body_len;
        memmove(k->buf, k->buf + used, k->len - used);
        k->len -= used;
        if (hang)
            continue; /* never answered; the client gives up or aborts */

        char resp[256];
        const char *body = status >= 300 ? "not now" : "";
        int n;
        if (ra >= 0)
            n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nRetry-After: %lld\r\n\r\n%s",
                         status, strlen(body), ra, body);
        else
            n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n%s",
                         status, strlen(body), body);
        if (n <= 0 || (size_t)n >= sizeof(resp))
            return false;
        if (send(k->fd, resp, (size_t)n, MSG_NOSIGNAL) != n)
            return false;
    }
}

static void conn_close(conn_t *k)
{
    close(k->fd);
    free(k->buf);
    k->fd = -1;
    k->buf = NULL;
    k->len = 0;
}

static void *consumer_main(void *arg)
{
    consumer_t *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd pf[MAX_CONNS + 1];
        int map[MAX_CONNS + 1];
        nfds_t n = 0;
        pf[n].fd = c->lfd;
        pf[n].events = POLLIN;
        map[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            if (c->conns[i].fd >= 0) {
                pf[n].fd = c->conns[i].fd;
                pf[n].events = POLLIN;
                map[n++] = i;
            }
        int rc = poll(pf, n, 10);
        if (rc <= 0)
            continue;
        for (nfds_t j = 0; j < n; j++) {
            if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (map[j] < 0) {
                int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0; i++)
                    if (c->conns[i].fd < 0)
                        slot = i;
                char *buf = slot >= 0 ? malloc(CONN_BUF) : NULL;
                if (!buf) {
                    close(fd);
                    continue;
                }
                c->conns[slot].fd = fd;
                c->conns[slot].buf = buf;
                c->conns[slot].len = 0;
                continue;
            }
            conn_t *k = &c->conns[map[j]];
            ssize_t got = recv(k->fd, k->buf + k->len, CONN_BUF - k->len, 0);
            if (got <= 0) {
                conn_close(k);
                continue;
            }
            k->len += (size_t)got;
            if (!consumer_serve(c, k))
                conn_close(k);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (c->conns[i].fd >= 0)
            conn_close(&c->conns[i]);
    return NULL;
}

static int consumer_start(consumer_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->fail_left = 0;
    c->retry_after = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        c->conns[i].fd = -1;
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->lfd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof(a);
    if (bind(c->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(c->lfd, 64) != 0 ||
        getsockname(c->lfd, (struct sockaddr *)&a, &al) != 0) {
        close(c->lfd);
        return -1;
    }
    c->port = ntohs(a.sin_port);
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        close(c->lfd);
        return -1;
    }
    c->running = true;
    return 0;
}

static void consumer_stop(consumer_t *c)
{
    if (!c->running)
        return;
    __atomic_store_n(&c->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(c->thread, NULL);
    close(c->lfd);
    pthread_mutex_destroy(&c->mu);
    c->running = false;
}

/* ---- the fixture ----------------------------------------------------------------- */

typedef struct fx {
    char dir[64];
    char url[160];
    bh_clock_t clock;
    bh_rand_t rand;       /* the engine's (engine thread only once started) */
    bh_rand_t trand;      /* the test thread's: ids and keys */
    store_t *s;
    int64_t tenant;
    consumer_t cons;
    crypto_master_t master; /* unset: keys stored as is */
    dest_allow_t allow;
    engine_options_t eo;
    engine_t *e;
    char wh[STORE_WEBHOOK_ID_LEN + 1];
    uint64_t from_version;
} fx_t;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A tenant with person 1 and break definition 1, which every break here uses. */
static int seed_tenant(fx_t *f, const char *name, int64_t *id)
{
    store_tenant_t t;
    if (store_tenant_create(f->s, name, &t) != 0)
        return -1;
    *id = t.id;
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = 1;
    store_write_result_t r;
    if (store_person_put(f->s, t.id, &p, &r) != 0 || r.rc != 0)
        return -1;
    model_definition_t *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    d->id = 1;
    snprintf(d->name.def, sizeof(d->name.def), "Lunch");
    snprintf(d->friendly_name.def, sizeof(d->friendly_name.def), "Lunch");
    d->paid = 15;
    d->minimum = 0;
    d->maximum = 120;
    d->if_not_clocked = 30;
    int rc = store_definition_put(f->s, t.id, d, &r);
    free(d);
    return rc != 0 || r.rc != 0 ? -1 : 0;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-test-eng-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->url, sizeof(f->url), "sqlite:%s/store.db", f->dir);
    clock_fake_init(&f->clock, T0_MS);
    rand_fake_init(&f->rand, 0x5eed5eedULL);
    rand_fake_init(&f->trand, 0x7e57ULL);
    store_options_t so = { .clock = &f->clock };
    const char *msg = NULL;
    if (store_open(f->url, &so, &f->s, &msg) != 0) {
        fprintf(stderr, "store_open: %s\n", msg ? msg : "?");
        return -1;
    }
    if (seed_tenant(f, "tenant-eng", &f->tenant) != 0)
        return -1;

    if (consumer_start(&f->cons) != 0)
        return -1;
    memset(&f->master, 0, sizeof(f->master));
    dest_allow_init(&f->allow);
    char why[DEST_WHY_MAX];
    if (dest_allow_add(&f->allow, "127.0.0.1/32", why, sizeof(why)) != 0)
        return -1;
    engine_options_default(&f->eo);
    f->eo.store = f->s;
    f->eo.clock = &f->clock;
    f->eo.rand = &f->rand;
    f->eo.master = &f->master;
    f->eo.allow = &f->allow;
    f->eo.allow_http = true;
    f->eo.timeout_ms = 10000;
    f->eo.connect_timeout_ms = 2000;
    return 0;
}

/* The same fixture with two transport threads (hc_pool) instead of transfers on the
 * engine's own thread, as `breakhook serve` runs it on a machine with two CPUs. */
static int setup_threads(void **state)
{
    int rc = setup(state);
    fx_t *f = *state;
    if (f)
        f->eo.send_threads = 2;
    return rc;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (!f)
        return 0;
    engine_stop(f->e);
    f->e = NULL;
    consumer_stop(&f->cons);
    store_close(f->s);
    int rc = f->dir[0] ? nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) : 0;
    free(f);
    return rc;
}

/* ---- helpers ----------------------------------------------------------------------- */

static int64_t fake_now(fx_t *f)
{
    return clock_now_ms(&f->clock);
}

/* Moves the fake clock forward to `target` (never back). */
static void clock_to(fx_t *f, int64_t target)
{
    int64_t now = fake_now(f);
    if (target < now)
        fail_msg("the fake clock is already at T0%+lld ms, past the target T0%+lld ms",
                 (long long)(now - T0_MS), (long long)(target - T0_MS));
    clock_fake_advance(&f->clock, target - now);
}

/* Creates a breaks webhook of tenant to the consumer's path, valid for valid_ms from
 * now; its id into id. */
static void make_webhook_at(fx_t *f, int64_t tenant, const char *path, int64_t valid_ms,
                            char id[STORE_WEBHOOK_ID_LEN + 1])
{
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    assert_int_equal(crypto_uuid4(&f->trand, w.id), 0);
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "http://127.0.0.1:%u%s",
             (unsigned)f->cons.port, path);
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    unsigned char key[CRYPTO_WEBHOOK_KEY_LEN];
    assert_int_equal(rand_bytes(&f->trand, key, sizeof(key)), 0);
    assert_int_equal(crypto_key_seal(&f->master, &f->trand, tenant, w.id, key, w.key_blob,
                                     &w.key_blob_len),
                     0);
    w.created_at_ms = fake_now(f);
    w.valid_until_ms = fake_now(f) + valid_ms;
    assert_int_equal(store_webhook_create(f->s, tenant, &w, 100), 0);
    snprintf(id, STORE_WEBHOOK_ID_LEN + 1, "%s", w.id);
    if (tenant == f->tenant)
        f->from_version = w.from_version;
}

/* The breaks webhook of the fixture's tenant to /hook (f->wh). */
static void make_webhook(fx_t *f, int64_t valid_ms)
{
    make_webhook_at(f, f->tenant, "/hook", valid_ms, f->wh);
}

static void start_engine(fx_t *f)
{
    assert_null(f->e);
    assert_int_equal(engine_start(&f->eo, &f->e), 0);
    assert_non_null(f->e);
}

/* Writes break `id` of tenant (clocked minutes make each write a change) and wakes the
 * engine (when started). Returns the new changeVersion. */
static uint64_t put_break_in(fx_t *f, int64_t tenant, int64_t id, int32_t clocked)
{
    model_break_t b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.person_id = 1;
    b.definition_id = 1;
    b.date = DAY0;
    b.clocked = clocked;
    b.taken = true;
    b.start = 720;
    b.end = 780;
    store_write_result_t r;
    assert_int_equal(store_break_put(f->s, tenant, &b, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.version > 0);
    if (f->e)
        engine_wake(f->e);
    return r.version;
}

static uint64_t put_break(fx_t *f, int64_t id, int32_t clocked)
{
    return put_break_in(f, f->tenant, id, clocked);
}

static store_webhook_t get_webhook(fx_t *f)
{
    store_webhook_t w;
    assert_int_equal(store_webhook_get(f->s, f->tenant, f->wh, &w), 0);
    return w;
}

/* Waits (real time) until the consumer has received n requests. */
static bool wait_requests(fx_t *f, int n, int64_t ms)
{
    int64_t end = real_ms() + ms;
    while (consumer_count(&f->cons) < n) {
        if (real_ms() >= end)
            return false;
        sleep_ms(5);
    }
    return true;
}

static void expect_requests(fx_t *f, int n, int64_t ms, const char *what)
{
    if (!wait_requests(f, n, ms))
        fail_msg("%s: the consumer received %d request(s) within %lld ms real, want %d", what,
                 consumer_count(&f->cons), (long long)ms, n);
}

/* Nothing new reaches the consumer for ms of real time. */
static void expect_quiet(fx_t *f, int64_t ms, const char *what)
{
    int before = consumer_count(&f->cons);
    sleep_ms(ms);
    int after = consumer_count(&f->cons);
    if (after != before) {
        received_t r = consumer_get(&f->cons, after - 1);
        fail_msg("%s: the consumer received %d more request(s) (last: record %lld version %llu) "
                 "at fake T0%+lld ms",
                 what, after - before, (long long)r.record_id, (unsigned long long)r.version,
                 (long long)(fake_now(f) - T0_MS));
    }
}

static uint64_t outcomes(fx_t *f)
{
    engine_stats_t st;
    engine_get_stats(f->e, &st);
    return st.delivered + st.failed + st.gave_up;
}

/* Waits until the engine has settled n attempts (read the clock for their outcome). */
static void expect_outcomes(fx_t *f, uint64_t n, const char *what)
{
    int64_t end = real_ms() + WAIT_MS;
    while (outcomes(f) < n) {
        if (real_ms() >= end)
            fail_msg("%s: the engine settled %llu attempt(s) within %d ms real, want %llu", what,
                     (unsigned long long)outcomes(f), WAIT_MS, (unsigned long long)n);
        sleep_ms(5);
    }
}

/* The attempt log, oldest first (the store gives newest first), into out[cap]. */
static size_t read_log(fx_t *f, store_attempt_t *out, size_t cap)
{
    store_attempt_query_t q = { -1, 0, 200 };
    store_attempt_t *a = NULL;
    int64_t *seq = NULL;
    size_t n = 0;
    assert_int_equal(store_attempts_list(f->s, f->tenant, f->wh, &q, &a, &seq, &n), 0);
    size_t k = n < cap ? n : cap;
    for (size_t i = 0; i < k; i++)
        out[i] = a[n - 1 - i];
    free(a);
    free(seq);
    return n;
}

/* Waits until the attempt log holds n rows; once the engine settled them, the fake
 * clock is nudged by the flush interval now and then so that it commits them. */
static size_t expect_log_rows(fx_t *f, size_t n, store_attempt_t *out, size_t cap)
{
    int64_t end = real_ms() + WAIT_MS, next_nudge = real_ms();
    for (;;) {
        if (real_ms() >= next_nudge) {
            clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
            next_nudge = real_ms() + 150;
        }
        size_t got = read_log(f, out, cap);
        if (got >= n)
            return got;
        if (real_ms() >= end)
            fail_msg("the attempt log holds %zu row(s) after %d ms real, want %zu", got, WAIT_MS,
                     n);
        sleep_ms(10);
    }
}

/* The same, once this engine has settled n attempts (its counters start at 0). */
static size_t expect_log(fx_t *f, size_t n, store_attempt_t *out, size_t cap)
{
    expect_outcomes(f, n, "attempt log");
    return expect_log_rows(f, n, out, cap);
}

static void expect_delay_in_band(const store_attempt_t *a, int64_t step)
{
    int64_t d = a->next_attempt_at_ms - a->attempted_at_ms;
    int64_t lo = step - step / 5, hi = step + step / 5;
    if (d < lo || d > hi)
        fail_msg("attempt %d: nextAttemptAt - attemptedAt = %lld ms, want %lld ms ±20 %% "
                 "[%lld, %lld]",
                 a->attempt, (long long)d, (long long)step, (long long)lo, (long long)hi);
}

/* Waits (real time) until store_webhook_get shows the webhook Disabled. */
static store_webhook_t expect_disabled(fx_t *f)
{
    int64_t end = real_ms() + WAIT_MS;
    for (;;) {
        store_webhook_t w = get_webhook(f);
        if (w.status == STORE_WH_DISABLED)
            return w;
        if (real_ms() >= end)
            fail_msg("the webhook is still Enabled %d ms real later", WAIT_MS);
        sleep_ms(10);
    }
}

/* ---- tests ------------------------------------------------------------------------- */

/* The consumer answers 500: attempt n+1 comes at attempt n's nextAttemptAt, which is
 * attemptedAt + step n ±20 %, never before it; same webhook-id and body every time. */
static void test_retry_timing(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 500, -1, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 1, 20);

    expect_requests(f, 1, WAIT_MS, "first attempt");
    store_attempt_t log[8];
    assert_int_equal(expect_log(f, 1, log, 8), 1);
    assert_int_equal(log[0].attempt, 1);
    assert_int_equal(log[0].status, STORE_ATTEMPT_FAILED);
    assert_int_equal(log[0].http_status, 500);
    assert_int_equal(log[0].version, v);
    assert_int_equal(log[0].record_id, 1);
    assert_int_equal(log[0].attempted_at_ms, T0_MS);
    assert_string_equal(log[0].excerpt, "not now");
    expect_delay_in_band(&log[0], 5 * SEC);

    /* 3 s later (below the lowest jittered 4 s): nothing. */
    clock_to(f, log[0].attempted_at_ms + 3 * SEC);
    expect_quiet(f, 300, "3 s after the first failure");
    assert_int_equal(read_log(f, log, 8), 1);

    static const int64_t steps[] = { 5 * SEC, 30 * SEC, 2 * MIN, 10 * MIN };
    int64_t delays[4];
    delays[0] = log[0].next_attempt_at_ms - log[0].attempted_at_ms;
    for (int k = 1; k < 4; k++) {
        const store_attempt_t *prev = &log[k - 1];
        /* One millisecond before it is due: nothing. */
        clock_to(f, prev->next_attempt_at_ms - 1);
        expect_quiet(f, 300, "1 ms before nextAttemptAt");
        /* Due: it comes. */
        clock_to(f, prev->next_attempt_at_ms);
        expect_requests(f, k + 1, 1000, "retry at nextAttemptAt");
        assert_int_equal(expect_log(f, (size_t)k + 1, log, 8), k + 1);
        const store_attempt_t *a = &log[k];
        assert_int_equal(a->attempt, k + 1);
        assert_int_equal(a->status, STORE_ATTEMPT_FAILED);
        assert_int_equal(a->http_status, 500);
        assert_int_equal(a->version, v);
        assert_string_equal(a->event_id, log[0].event_id);
        assert_true(a->attempted_at_ms >= prev->next_attempt_at_ms);
        assert_true(a->attempted_at_ms <= prev->next_attempt_at_ms + 3 * FLUSH_NUDGE_MS);
        expect_delay_in_band(a, steps[k]);
        delays[k] = a->next_attempt_at_ms - a->attempted_at_ms;
    }
    /* The jitter is applied (a fixed fake source does not give the bare steps). */
    int bare = 0;
    for (int k = 0; k < 4; k++)
        bare += delays[k] == steps[k];
    assert_true(bare < 4);

    /* Each retry is the same event: same webhook-id, same version and record. */
    assert_int_equal(consumer_count(&f->cons), 4);
    received_t r0 = consumer_get(&f->cons, 0);
    assert_true(r0.webhook_id[0] != '\0');
    assert_string_equal(r0.webhook_id, log[0].event_id);
    for (int i = 1; i < 4; i++) {
        received_t r = consumer_get(&f->cons, i);
        assert_string_equal(r.webhook_id, r0.webhook_id);
        assert_int_equal(r.version, v);
        assert_int_equal(r.record_id, 1);
    }
    /* Nothing delivered yet. */
    assert_int_equal(get_webhook(f).last_delivered_version, f->from_version);

    /* The consumer recovers: attempt 5 at its time is Delivered. */
    consumer_program(&f->cons, 500, 0, -1, false);
    clock_to(f, log[3].next_attempt_at_ms);
    expect_requests(f, 5, 1000, "fifth attempt");
    assert_int_equal(expect_log(f, 5, log, 8), 5);
    assert_int_equal(log[4].attempt, 5);
    assert_int_equal(log[4].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[4].http_status, 204);
    assert_int_equal(log[4].next_attempt_at_ms, 0);
}

/* Fails twice, then 204: attempt 3 is Delivered and the webhook's
 * last_delivered_version is the break's version. */
static void test_success_after_failures(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 500, 2, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 7, 25);
    assert_true(v > f->from_version);

    store_attempt_t log[8];
    expect_requests(f, 1, WAIT_MS, "attempt 1");
    assert_int_equal(expect_log(f, 1, log, 8), 1);
    assert_int_equal(log[0].status, STORE_ATTEMPT_FAILED);
    clock_to(f, log[0].next_attempt_at_ms);
    expect_requests(f, 2, 1000, "attempt 2");
    assert_int_equal(expect_log(f, 2, log, 8), 2);
    assert_int_equal(log[1].status, STORE_ATTEMPT_FAILED);
    expect_delay_in_band(&log[1], 30 * SEC);
    assert_int_equal(get_webhook(f).last_delivered_version, f->from_version);

    clock_to(f, log[1].next_attempt_at_ms);
    expect_requests(f, 3, 1000, "attempt 3");
    assert_int_equal(expect_log(f, 3, log, 8), 3);
    assert_int_equal(log[2].attempt, 3);
    assert_int_equal(log[2].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[2].http_status, 204);
    assert_int_equal(log[2].next_attempt_at_ms, 0);
    assert_int_equal(log[2].version, v);
    assert_int_equal(log[2].record_id, 7);

    /* The watermark is committed with (or right after) the attempt. */
    int64_t end = real_ms() + WAIT_MS;
    store_webhook_t w = get_webhook(f);
    while (w.last_delivered_version != v && real_ms() < end) {
        clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
        sleep_ms(50);
        w = get_webhook(f);
    }
    assert_int_equal(w.last_delivered_version, v);
    assert_int_equal(w.status, STORE_WH_ENABLED);
    assert_true(w.last_success_at_ms >= log[2].attempted_at_ms);
    assert_true(w.last_failure_at_ms >= log[1].attempted_at_ms);
    uint64_t pending = 99, oldest = 99;
    assert_int_equal(store_webhook_pending(f->s, f->tenant, f->wh, fake_now(f), &pending, &oldest),
                     0);
    assert_int_equal(pending, 0);

    /* Delivered means done: no further attempt, however long we wait. */
    clock_fake_advance(&f->clock, 2 * DAY);
    expect_quiet(f, 300, "after delivery");
    assert_int_equal(consumer_count(&f->cons), 3);
}

/* An attempt that fails before anything is sent (no memory while preparing it,
 * signing failed) puts its event back first in line: it goes out after a short pause
 * (START_RETRY_MS in engine.c, 1 s of the engine's clock), as attempt 1 since nothing
 * failed at the destination, and the watermark passes it. Was a bug: the lane was
 * taken from the ready list and put nowhere, so the record stalled, holding the
 * webhook's watermark, until its next change or a restart. */
static void test_start_failure_does_not_stall(void **state)
{
    fx_t *f = *state;
    f->eo.test_fail_starts = 1;
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 7, 25);
    expect_quiet(f, 300, "during the pause after the failed start");
    assert_int_equal(consumer_count(&f->cons), 0);
    clock_fake_advance(&f->clock, 1000);
    expect_requests(f, 1, WAIT_MS, "the event whose first start failed");
    store_attempt_t log[4];
    assert_int_equal(expect_log(f, 1, log, 4), 1);
    assert_int_equal(log[0].attempt, 1);
    assert_int_equal(log[0].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[0].version, v);
    int64_t end = real_ms() + WAIT_MS;
    store_webhook_t w = get_webhook(f);
    while (w.last_delivered_version != v && real_ms() < end) {
        clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
        sleep_ms(50);
        w = get_webhook(f);
    }
    assert_int_equal(w.last_delivered_version, v);
}

/* Two tenants' webhooks on one host. A's URL fails every time: after
 * breaker_threshold failures A's breaker opens, and B, on the same host:port, is
 * delivered at once all the same. Was a bug: the breaker belonged to the host, so one
 * tenant's failing path paused every other tenant's webhook there. */
static void test_breaker_belongs_to_the_webhook(void **state)
{
    fx_t *f = *state;
    f->eo.breaker_threshold = 3;
    f->eo.breaker_pause_ms = 10 * MIN;
    pthread_mutex_lock(&f->cons.mu);
    snprintf(f->cons.fail_path, sizeof(f->cons.fail_path), "/a");
    pthread_mutex_unlock(&f->cons.mu);
    consumer_program(&f->cons, 500, -1, -1, false);
    int64_t tb;
    assert_int_equal(seed_tenant(f, "tenant-b", &tb), 0);
    char wa[STORE_WEBHOOK_ID_LEN + 1], wb[STORE_WEBHOOK_ID_LEN + 1];
    make_webhook_at(f, f->tenant, "/a", 30 * DAY, wa);
    make_webhook_at(f, tb, "/b", 30 * DAY, wb);
    start_engine(f);
    for (int64_t id = 1; id <= 5; id++)
        put_break(f, id, 20);
    /* Three failures open A's breaker; up to two more may have been in flight. */
    expect_requests(f, 3, WAIT_MS, "A's records until its breaker opens");
    expect_quiet(f, 300, "A paused (its records wait for their retry time anyway)");
    int n = consumer_count(&f->cons);
    assert_true(n >= 3 && n <= 5);
    uint64_t vb = put_break_in(f, tb, 9, 20);
    expect_requests(f, n + 1, WAIT_MS, "B's record while A's breaker is open");
    received_t r = consumer_get(&f->cons, n);
    assert_string_equal(r.path, "/b");
    assert_int_equal(r.version, vb);
    assert_int_equal(r.answered, 204);
    /* A stays paused past its records' retry time (5 s): nothing goes to /a while its
     * 10-minute pause runs. */
    clock_fake_advance(&f->clock, 30 * SEC);
    expect_quiet(f, 300, "A's retries while its breaker is open");
}

/* The host's in-flight cap is shared in turns. With a cap of 2, webhook A (20 records
 * ready) and webhook B (1 record) on one host: B's event is among the first four
 * requests, not after A's twenty. Was a bug: the engine walked its webhooks in list
 * order and the first one took every free slot, at every completion. */
static void test_host_slots_taken_in_turns(void **state)
{
    fx_t *f = *state;
    f->eo.max_inflight_per_dest = 2;
    int64_t tb;
    assert_int_equal(seed_tenant(f, "tenant-b", &tb), 0);
    char wa[STORE_WEBHOOK_ID_LEN + 1], wb[STORE_WEBHOOK_ID_LEN + 1];
    /* The busy webhook belongs to the second tenant: the engine loaded it first. */
    make_webhook_at(f, f->tenant, "/b", 30 * DAY, wb);
    make_webhook_at(f, tb, "/a", 30 * DAY, wa);
    for (int64_t id = 1; id <= 20; id++)
        put_break_in(f, tb, id, 20);
    put_break(f, 99, 20);
    start_engine(f);
    expect_requests(f, 21, WAIT_MS, "every event");
    int b_at = -1;
    for (int i = 0; i < 21; i++)
        if (!strcmp(consumer_get(&f->cons, i).path, "/b"))
            b_at = i;
    if (b_at < 0 || b_at > 3)
        fail_msg("B's only event was request %d of 21, want one of the first four", b_at + 1);
}

/* A webhook created or disabled while the engine runs is picked up at once, from the
 * store's commit notification (STORE_COMMIT_WEBHOOKS), not from a timer: here the
 * full refresh and the poll are a year apart and the fake clock does not move. */
static void test_webhook_changes_picked_up_at_once(void **state)
{
    fx_t *f = *state;
    f->eo.refresh_ms = 365 * DAY;
    f->eo.poll_ms = 365 * DAY;
    start_engine(f);
    sleep_ms(100); /* the engine's first refresh: no webhook yet */
    make_webhook(f, 30 * DAY);
    uint64_t v = put_break(f, 7, 25);
    expect_requests(f, 1, WAIT_MS, "a change for a webhook made after the engine started");
    assert_int_equal(consumer_get(&f->cons, 0).version, v);
    assert_int_equal(
        store_webhook_disable(f->s, f->tenant, f->wh, STORE_WH_DELETED, fake_now(f)), 0);
    sleep_ms(200);
    put_break(f, 8, 25);
    expect_quiet(f, 500, "a change after the webhook was deleted");
}

/* The events the engine holds in memory, from its /metrics gauge (read after the fake
 * clock moved past a snapshot). */
static double in_memory_gauge(fx_t *f)
{
    clock_fake_advance(&f->clock, 1100);
    sleep_ms(200);
    buf_t out;
    buf_init(&out, 1 << 20);
    assert_int_equal(engine_metrics_write(f->e, &out), 0);
    const char *k = "\nbreakhook_pending_events_in_memory ";
    const char *p = strstr(buf_cstr(&out), k);
    assert_non_null(p);
    double v = strtod(p + strlen(k), NULL);
    buf_deinit(&out);
    return v;
}

/* One memory budget for the process (engine.h): five webhooks whose destination hangs,
 * each with a backlog of 300, hold no more than the budget (200) plus 64 per webhook
 * with work; and a sixth webhook, on another host, still gets all of its 150 events
 * delivered meanwhile. Was: a limit per webhook, so memory grew with the number of
 * webhooks (5 x 200 here) and nothing bounded the process. */
static void test_memory_budget_shared(void **state)
{
    fx_t *f = *state;
    f->eo.max_pending = 200;
    pthread_mutex_lock(&f->cons.mu);
    snprintf(f->cons.fail_path, sizeof(f->cons.fail_path), "/hung");
    pthread_mutex_unlock(&f->cons.mu);
    consumer_program(&f->cons, 0, 0, -1, true);
    char id[STORE_WEBHOOK_ID_LEN + 1];
    for (int i = 0; i < 5; i++)
        make_webhook_at(f, f->tenant, "/hung", 30 * DAY, id);
    int64_t tb;
    assert_int_equal(seed_tenant(f, "tenant-b", &tb), 0);
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    make_webhook_at(f, tb, "/ok", 30 * DAY, id);
    /* Another host for B (localhost, not 127.0.0.1): the hung ones' in-flight cap is
     * theirs. */
    assert_int_equal(store_webhook_disable(f->s, tb, id, STORE_WH_DELETED, fake_now(f)), 0);
    assert_int_equal(crypto_uuid4(&f->trand, w.id), 0);
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "http://localhost:%u/ok",
             (unsigned)f->cons.port);
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    unsigned char key[CRYPTO_WEBHOOK_KEY_LEN];
    assert_int_equal(rand_bytes(&f->trand, key, sizeof(key)), 0);
    assert_int_equal(
        crypto_key_seal(&f->master, &f->trand, tb, w.id, key, w.key_blob, &w.key_blob_len), 0);
    w.created_at_ms = fake_now(f);
    w.valid_until_ms = fake_now(f) + 30 * DAY;
    assert_int_equal(store_webhook_create(f->s, tb, &w, 100), 0);
    for (int64_t r = 1; r <= 300; r++)
        put_break_in(f, f->tenant, r, 20);
    start_engine(f);
    for (int64_t r = 1; r <= 150; r++)
        put_break_in(f, tb, 1000 + r, 20);
    int64_t end = real_ms() + WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&f->cons.mu);
        int ok = f->cons.n_other;
        pthread_mutex_unlock(&f->cons.mu);
        if (ok >= 150)
            break;
        if (real_ms() >= end)
            fail_msg("B got %d of its 150 events while the hung webhooks held memory", ok);
        sleep_ms(20);
    }
    double held = in_memory_gauge(f);
    if (held > 200 + 6 * 64 || held < 16)
        fail_msg("%.0f events held in memory; want at least the 16 in flight and at most "
                 "the budget 200 + 64 x 6 webhooks",
                 held);
}

/* 429/503 with Retry-After: honoured when longer than the step, capped at 24 h,
 * the step when shorter; ignored on a 500. */
static void test_retry_after(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 429, -1, 120, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 3, 40);

    store_attempt_t log[8];
    expect_requests(f, 1, WAIT_MS, "attempt 1");
    assert_int_equal(expect_log(f, 1, log, 8), 1);
    assert_int_equal(log[0].http_status, 429);
    assert_int_equal(log[0].version, v);
    assert_int_equal(log[0].next_attempt_at_ms - log[0].attempted_at_ms, 120 * SEC);
    /* Not at the 5 s step (nor at its highest jitter). */
    clock_to(f, log[0].attempted_at_ms + 6 * SEC + 1);
    expect_quiet(f, 300, "6 s after a 429 with Retry-After: 120");
    clock_to(f, log[0].next_attempt_at_ms - 1);
    expect_quiet(f, 200, "1 ms before Retry-After: 120 ends");

    /* 503 asking for ~31.7 years: capped at RETRY_AFTER_MAX_MS (24 h). */
    consumer_program(&f->cons, 503, -1, 999999999LL, false);
    clock_to(f, log[0].next_attempt_at_ms);
    expect_requests(f, 2, 1000, "attempt 2");
    assert_int_equal(expect_log(f, 2, log, 8), 2);
    assert_int_equal(log[1].http_status, 503);
    assert_int_equal(log[1].next_attempt_at_ms - log[1].attempted_at_ms, RETRY_AFTER_MAX_MS);

    /* 429 asking for 1 s: the 2 min step stays. */
    consumer_program(&f->cons, 429, -1, 1, false);
    clock_to(f, log[1].next_attempt_at_ms);
    expect_requests(f, 3, 1000, "attempt 3");
    assert_int_equal(expect_log(f, 3, log, 8), 3);
    assert_int_equal(log[2].http_status, 429);
    expect_delay_in_band(&log[2], 2 * MIN);

    /* A 500's Retry-After is not honoured (only 429 and 503): the 10 min step. */
    consumer_program(&f->cons, 500, -1, 100000, false);
    clock_to(f, log[2].next_attempt_at_ms);
    expect_requests(f, 4, 1000, "attempt 4");
    assert_int_equal(expect_log(f, 4, log, 8), 4);
    assert_int_equal(log[3].http_status, 500);
    expect_delay_in_band(&log[3], 10 * MIN);
}

/* A custom schedule of 2 steps: the third failure disables the webhook
 * (RetriesExhausted) and nothing more is sent. */
static void test_retries_exhausted(void **state)
{
    fx_t *f = *state;
    memset(&f->eo.retry, 0, sizeof(f->eo.retry));
    f->eo.retry.schedule_ms[0] = 10 * SEC;
    f->eo.retry.schedule_ms[1] = 20 * SEC;
    f->eo.retry.n = 2;
    consumer_program(&f->cons, 500, -1, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 5, 10);

    store_attempt_t log[8];
    expect_requests(f, 1, WAIT_MS, "attempt 1");
    assert_int_equal(expect_log(f, 1, log, 8), 1);
    expect_delay_in_band(&log[0], 10 * SEC);
    clock_to(f, log[0].next_attempt_at_ms);
    expect_requests(f, 2, 1000, "attempt 2");
    assert_int_equal(expect_log(f, 2, log, 8), 2);
    assert_int_equal(log[1].status, STORE_ATTEMPT_FAILED);
    expect_delay_in_band(&log[1], 20 * SEC);
    /* Two failures of a two-step schedule: still Enabled. */
    assert_int_equal(get_webhook(f).status, STORE_WH_ENABLED);

    clock_to(f, log[1].next_attempt_at_ms);
    expect_requests(f, 3, 1000, "attempt 3");
    store_webhook_t w = expect_disabled(f);
    assert_int_equal(w.reason, STORE_WH_RETRIES_EXHAUSTED);
    assert_true(w.disabled_at_ms >= log[1].next_attempt_at_ms);
    assert_true(w.until_version >= v);
    assert_int_equal(expect_log(f, 3, log, 8), 3);
    assert_int_equal(log[2].attempt, 3);
    assert_int_equal(log[2].status, STORE_ATTEMPT_GAVE_UP);
    assert_int_equal(log[2].http_status, 500);
    assert_int_equal(log[2].next_attempt_at_ms, 0);

    /* Nothing more, even much later and with a new change. */
    consumer_program(&f->cons, 500, 0, -1, false);
    clock_fake_advance(&f->clock, DAY);
    (void)put_break(f, 6, 10);
    expect_quiet(f, 500, "after RetriesExhausted");
    assert_int_equal(consumer_count(&f->cons), 3);

    /* Was a bug: the watermark must not claim the failed event was delivered
     * (store.h: every event at or below last_delivered_version is delivered or
     * replaced; SPEC §7.1 shows it as lastDeliveredChangeVersion, which a consumer
     * feeds to resumeAfter). wh_disable drops the lanes, and flush_take then
     * computes wh_watermark() = scan_cursor for the webhook (touched by the failed
     * attempt), so last_delivered_version becomes v although v was never
     * delivered. */
    clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
    sleep_ms(300);
    w = get_webhook(f);
    if (w.last_delivered_version >= v)
        fail_msg("last_delivered_version = %llu after RetriesExhausted, but version %llu "
                 "was never delivered (from_version %llu)",
                 (unsigned long long)w.last_delivered_version, (unsigned long long)v,
                 (unsigned long long)f->from_version);
}

/* validUntil = now + 10 s: writes before it are delivered; past it nothing is sent,
 * neither a new write nor a change committed before it that is still pending. */
static void test_expiry(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 500, 0, -1, false);
    make_webhook(f, 10 * SEC);
    int64_t valid_until = T0_MS + 10 * SEC;
    start_engine(f);

    uint64_t va = put_break(f, 1, 10);
    expect_requests(f, 1, WAIT_MS, "write at T0");
    expect_outcomes(f, 1, "write at T0");
    /* 9 s later, still inside validity: delivered too. */
    clock_to(f, T0_MS + 9 * SEC);
    uint64_t va2 = put_break(f, 1, 11);
    expect_requests(f, 2, WAIT_MS, "write at T0+9s");
    expect_outcomes(f, 2, "write at T0+9s");
    received_t r = consumer_get(&f->cons, 1);
    assert_int_equal(r.version, va2);
    assert_int_equal(r.answered, 204);
    assert_true(va2 > va);

    /* A change committed before validUntil whose first attempt fails: its retry is
     * due at T0+9s + 4..6 s, after validUntil. */
    consumer_program(&f->cons, 500, -1, -1, false);
    uint64_t vb = put_break(f, 2, 12);
    expect_requests(f, 3, WAIT_MS, "pending change");
    expect_outcomes(f, 3, "pending change");

    /* At once (before the engine's next flush) past validUntil and past the retry
     * time; the consumer would now accept. */
    consumer_program(&f->cons, 500, 0, -1, false);
    clock_to(f, T0_MS + 20 * SEC);
    expect_quiet(f, 1000, "pending change after validUntil");
    /* And a write after validUntil. */
    (void)put_break(f, 3, 13);
    (void)put_break(f, 1, 14);
    expect_quiet(f, 1000, "write after validUntil");
    assert_int_equal(consumer_count(&f->cons), 3);

    store_webhook_t w = get_webhook(f);
    assert_int_equal(w.status, STORE_WH_DISABLED);
    assert_int_equal(w.reason, STORE_WH_EXPIRED);
    assert_int_equal(w.disabled_at_ms, valid_until);
    uint64_t pending = 99, oldest = 99;
    assert_int_equal(store_webhook_pending(f->s, f->tenant, f->wh, fake_now(f), &pending, &oldest),
                     0);
    assert_int_equal(pending, 0);

    /* What was done before validUntil is committed: the three attempts, and a
     * watermark that covers exactly what was delivered.
     *
     * Was a bug (two causes, both at the tick that crosses validUntil):
     *  1. Use after free. That tick queues a refresh and a poll scan, then marks the
     *     webhook dead, then flushes (which clears w->touched). refresh_done frees
     *     the wh_t (not seen, !touched, in_flight == 0) although a scan job and the
     *     flush job still point to it: scan_done then writes w->scanning on freed
     *     memory (ASan: heap-use-after-free in scan_done, this test aborts there),
     *     and the flush's acks and marks carry w->row.id by pointer, so their
     *     commit reads freed memory (see test_deleted_with_results_pending): the
     *     ack of va2 and the mark are lost or the whole batch fails ("invalid
     *     argument") and the attempt rows go with it.
     *  2. Even without 1, dispatch drops the expired webhook's lanes and the flush
     *     computes wh_watermark() = scan_cursor = vb: last_delivered_version would
     *     claim vb, which was never delivered; a consumer rolling over with
     *     resumeAfter = lastDeliveredChangeVersion would skip it.
     * Want: 3 rows, last_delivered_version = va2. */
    store_attempt_t log[8];
    size_t n = 0;
    int64_t end = real_ms() + WAIT_MS;
    while ((n = read_log(f, log, 8)) < 3 && real_ms() < end) {
        clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
        sleep_ms(50);
    }
    if (n != 3)
        fail_msg("the attempt log holds %zu row(s) after expiry, want 3 (delivered %llu, "
                 "delivered %llu, failed %llu): results committed before validUntil were lost",
                 n, (unsigned long long)va, (unsigned long long)va2, (unsigned long long)vb);
    assert_int_equal(log[0].version, va);
    assert_int_equal(log[0].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[1].version, va2);
    assert_int_equal(log[1].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[2].version, vb);
    assert_int_equal(log[2].status, STORE_ATTEMPT_FAILED);
    assert_true(log[2].next_attempt_at_ms > valid_until);
    assert_true(log[2].next_attempt_at_ms < fake_now(f));
    clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
    sleep_ms(200);
    w = get_webhook(f);
    if (w.last_delivered_version != va2)
        fail_msg("last_delivered_version = %llu after expiry, want %llu (the last "
                 "delivered): %s",
                 (unsigned long long)w.last_delivered_version, (unsigned long long)va2,
                 w.last_delivered_version == vb
                     ? "it claims the pending change, which was never delivered"
                     : "the delivery of va2 was not committed (the lost flush)");
}

/* engine_stop with an attempt hanging in the consumer returns promptly; what was
 * delivered before is committed; the aborted event is sent again after a restart. */
static void test_stop(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 500, 0, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);

    uint64_t v1 = put_break(f, 1, 10);
    expect_requests(f, 1, WAIT_MS, "first write");
    expect_outcomes(f, 1, "first write");
    engine_stats_t st;
    engine_get_stats(f->e, &st);
    assert_int_equal(st.delivered, 1);

    consumer_program(&f->cons, 500, 0, -1, true);
    uint64_t v2 = put_break(f, 2, 10);
    assert_true(v2 > v1);
    expect_requests(f, 2, WAIT_MS, "hanging attempt");
    sleep_ms(50);
    assert_int_equal(outcomes(f), 1); /* still in flight */

    int64_t t = real_ms();
    engine_stop(f->e);
    f->e = NULL;
    int64_t took = real_ms() - t;
    /* The consumer hangs for good: without the abort, engine_stop would wait for the
     * 10 s delivery timeout. */
    if (took >= 8000)
        fail_msg("engine_stop took %lld ms real with an attempt in flight", (long long)took);

    /* The delivery before the stop is committed, the aborted one is not. */
    store_attempt_t log[8];
    size_t n = read_log(f, log, 8);
    assert_int_equal(n, 1);
    assert_int_equal(log[0].status, STORE_ATTEMPT_DELIVERED);
    assert_int_equal(log[0].version, v1);
    store_webhook_t w = get_webhook(f);
    assert_true(w.last_success_at_ms > 0);
    /* Was a bug: the aborted attempt's lane keeps neither an in-flight nor a waiting
     * event (on_attempt_done's stopping path frees it), so the final flush in
     * engine_main computes wh_watermark() = scan_cursor = v2 and persists
     * last_delivered_version = v2: after a restart the engine scans from v2 and the
     * aborted event is never sent again (engine.h: "they are sent again after a
     * restart: at least once"; SPEC §7.3 at least once). Want v1. */
    if (w.last_delivered_version != v1)
        fail_msg("last_delivered_version = %llu after stop, want %llu (version %llu was "
                 "aborted in flight, not delivered)",
                 (unsigned long long)w.last_delivered_version, (unsigned long long)v1,
                 (unsigned long long)v2);

    /* Restart: the aborted event comes again, the delivered one does not. */
    consumer_program(&f->cons, 500, 0, -1, false);
    start_engine(f);
    engine_wake(f->e);
    expect_requests(f, 3, WAIT_MS, "resend after restart");
    received_t r = consumer_get(&f->cons, 2);
    assert_int_equal(r.version, v2);
    assert_int_equal(r.record_id, 2);
    expect_quiet(f, 300, "after the resend");
    assert_int_equal(consumer_count(&f->cons), 3);
}

/* A restart resumes a failing record's retries: the next attempt is number 3, at the
 * time attempt 2 set, not a new attempt 1 at once (which would let a destination that
 * keeps failing escape RetriesExhausted as long as the process restarts often). */
static void test_retries_survive_restart(void **state)
{
    fx_t *f = *state;
    consumer_program(&f->cons, 500, -1, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    uint64_t v = put_break(f, 7, 10);
    store_attempt_t log[4];
    expect_requests(f, 1, WAIT_MS, "attempt 1");
    assert_int_equal(expect_log(f, 1, log, 4), 1);
    clock_to(f, log[0].next_attempt_at_ms);
    expect_requests(f, 2, WAIT_MS, "attempt 2");
    assert_int_equal(expect_log(f, 2, log, 4), 2);
    assert_int_equal(log[1].attempt, 2);

    engine_stop(f->e);
    f->e = NULL;
    start_engine(f);
    engine_wake(f->e);
    expect_quiet(f, 400, "right after the restart (attempt 3 is due at attempt 2's nextAttemptAt)");
    clock_to(f, log[1].next_attempt_at_ms);
    expect_requests(f, 3, WAIT_MS, "attempt 3 after the restart");
    assert_int_equal(expect_log_rows(f, 3, log, 4), 3);
    assert_int_equal(log[2].attempt, 3);
    assert_int_equal(log[2].version, v);
    expect_delay_in_band(&log[2], 2 * MIN); /* the third step of the schedule */
}

/* Record 7's first change fails (500 once), then three newer changes of it are
 * written while it waits for its retry. Returns the four versions. */
static void four_versions_one_waiting(fx_t *f, uint64_t v[4])
{
    consumer_program(&f->cons, 500, 1, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    v[0] = put_break(f, 7, 10);
    expect_requests(f, 1, WAIT_MS, "attempt 1");
    expect_outcomes(f, 1, "attempt 1");
    for (int i = 1; i < 4; i++)
        v[i] = put_break(f, 7, 10 + i);
    /* Let the engine scan them into the lane before the retry time comes. */
    sleep_ms(200);
    store_attempt_t log[2];
    assert_int_equal(expect_log(f, 1, log, 2), 1);
    clock_to(f, log[0].next_attempt_at_ms);
}

/* SPEC §7.3 coalescing: the retry sends the newest state only (the failed change
 * and the two in between are replaced by it). */
static void test_coalescing(void **state)
{
    fx_t *f = *state;
    uint64_t v[4];
    four_versions_one_waiting(f, v);
    expect_requests(f, 2, WAIT_MS, "the retry");
    expect_quiet(f, 300, "after the retry");
    assert_int_equal(consumer_count(&f->cons), 2);
    assert_int_equal(consumer_get(&f->cons, 1).version, v[3]);
}

/* --coalesce=false: every change is delivered, in order, the failed one first. */
static void test_no_coalescing(void **state)
{
    fx_t *f = *state;
    f->eo.coalesce = false;
    uint64_t v[4];
    four_versions_one_waiting(f, v);
    expect_requests(f, 5, WAIT_MS, "the retry and the three newer changes");
    expect_quiet(f, 300, "after them");
    assert_int_equal(consumer_count(&f->cons), 5);
    for (int i = 0; i < 4; i++) {
        received_t r = consumer_get(&f->cons, 1 + i);
        if (r.version != v[i] || r.record_id != 7)
            fail_msg("delivery %d after the failure: record %lld version %llu, want record 7 "
                     "version %llu",
                     i + 1, (long long)r.record_id, (unsigned long long)r.version,
                     (unsigned long long)v[i]);
    }
    /* All four delivered: the watermark reaches the newest. */
    int64_t end = real_ms() + WAIT_MS;
    store_webhook_t w = get_webhook(f);
    while (w.last_delivered_version != v[3] && real_ms() < end) {
        clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
        sleep_ms(50);
        w = get_webhook(f);
    }
    assert_int_equal(w.last_delivered_version, v[3]);
}

/* A backlog for --coalesce=false: NC_VERSIONS changes to each of NC_RECORDS records
 * (ids 1..NC_RECORDS), interleaved; v[r][k] is record r+1's k-th version. */
enum { NC_RECORDS = 3, NC_VERSIONS = 5 };

static void write_backlog(fx_t *f, uint64_t v[NC_RECORDS][NC_VERSIONS])
{
    for (int k = 0; k < NC_VERSIONS; k++)
        for (int r = 0; r < NC_RECORDS; r++)
            v[r][k] = put_break(f, r + 1, 10 + k);
}

/* Every version of the backlog arrives once, and per record in version order. */
static void expect_every_version(fx_t *f, uint64_t v[NC_RECORDS][NC_VERSIONS], const char *what)
{
    int n = NC_RECORDS * NC_VERSIONS;
    expect_requests(f, n, WAIT_MS, what);
    expect_quiet(f, 300, what);
    int next[NC_RECORDS] = { 0 };
    for (int i = 0; i < consumer_count(&f->cons); i++) {
        received_t got = consumer_get(&f->cons, i);
        int r = (int)got.record_id - 1;
        if (r < 0 || r >= NC_RECORDS || next[r] >= NC_VERSIONS || got.version != v[r][next[r]])
            fail_msg("%s: delivery %d is record %lld version %llu, want that record's next "
                     "version in order (%d of record %d's %d delivered before)",
                     what, i + 1, (long long)got.record_id, (unsigned long long)got.version,
                     r >= 0 && r < NC_RECORDS ? next[r] : -1, r + 1, NC_VERSIONS);
        next[r]++;
    }
}

/* --coalesce=false, a backlog present when the engine starts (a restart): every
 * change is sent, not only each record's newest. Was a bug: the restart recovery
 * sent only the newest version of each record, whatever the option said. */
static void test_no_coalescing_backlog_at_start(void **state)
{
    fx_t *f = *state;
    f->eo.coalesce = false;
    make_webhook(f, 30 * DAY);
    uint64_t v[NC_RECORDS][NC_VERSIONS];
    write_backlog(f, v);
    start_engine(f);
    expect_every_version(f, v, "backlog written before the engine started");
}

/* --coalesce=false, changes written after the webhook is created and before the engine
 * loads it (its list is refreshed once a second): every change is sent. Was a bug:
 * they were treated like a restart's backlog and coalesced. */
static void test_no_coalescing_new_webhook(void **state)
{
    fx_t *f = *state;
    f->eo.coalesce = false;
    start_engine(f);
    sleep_ms(300); /* the engine's first refresh has run: it knows of no webhook */
    make_webhook(f, 30 * DAY);
    uint64_t v[NC_RECORDS][NC_VERSIONS];
    write_backlog(f, v);
    clock_fake_advance(&f->clock, 1000); /* the next refresh finds the webhook */
    expect_every_version(f, v, "written before the engine loaded the new webhook");
}

/* Keeps the store's single writer busy: one $batch transaction of STORE_BATCH_MAX
 * break upserts, run on its own thread. */
typedef struct busy_writer {
    fx_t *f;
    pthread_t thread;
    int rc;
    int started;              /* atomic */
} busy_writer_t;

static void *busy_writer_main(void *arg)
{
    busy_writer_t *b = arg;
    store_break_op_t *ops = calloc(STORE_BATCH_MAX, sizeof(*ops));
    if (!ops) {
        b->rc = BH_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < STORE_BATCH_MAX; i++) {
        model_break_t *r = &ops[i].rec;
        r->id = 100000 + (int64_t)i;
        r->person_id = 1;
        r->definition_id = 1;
        r->date = DAY0 + (int32_t)(i % 300);
        r->clocked = 5 + (int32_t)(i % 50);
        r->taken = true;
        r->start = 720;
        r->end = 780;
    }
    __atomic_store_n(&b->started, 1, __ATOMIC_SEQ_CST);
    b->rc = store_breaks_apply(b->f->s, b->f->tenant, ops, STORE_BATCH_MAX);
    free(ops);
    return NULL;
}

/* DELETE while results of the webhook are not yet committed: its attempt log and
 * delivery health stay readable (SPEC §7.1), so the delivery made before the delete
 * must still be committed. poll_ms is made huge so that no change-log scan is in
 * flight at that moment (that is test_expiry's case). */
static void test_deleted_with_results_pending(void **state)
{
    fx_t *f = *state;
    f->eo.poll_ms = 365 * DAY;
    consumer_program(&f->cons, 500, 0, -1, false);
    make_webhook(f, 30 * DAY);
    start_engine(f);
    /* A first delivery, committed: the engine's flush clock now starts at T0. */
    uint64_t v1 = put_break(f, 1, 10);
    expect_requests(f, 1, WAIT_MS, "first delivery");
    /* The engine may have flushed its scan before the ack came back (the store wakes
     * it at the commit); then the frozen fake clock would hold the ack's flush back
     * for ever. Once the ack is recorded (the outcome is counted in the same
     * callback, before the loop's next tick), one nudge makes exactly one more flush,
     * the one that carries it, and the flush clock restarts at the fake now. */
    expect_outcomes(f, 1, "first delivery");
    clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
    int64_t end = real_ms() + WAIT_MS;
    while (get_webhook(f).last_delivered_version != v1 && real_ms() < end)
        sleep_ms(10);
    assert_int_equal(get_webhook(f).last_delivered_version, v1);
    /* A second one; the fake clock does not move, so its ack is not flushed yet. */
    uint64_t v2 = put_break(f, 2, 10);
    expect_requests(f, 2, WAIT_MS, "second delivery");
    expect_outcomes(f, 2, "second delivery");
    sleep_ms(100);
    store_webhook_t w = get_webhook(f);
    assert_int_equal(w.last_delivered_version, v1);
    size_t n = read_log(f, NULL, 0);
    assert_int_equal(n, 1);

    assert_int_equal(
        store_webhook_disable(f->s, f->tenant, f->wh, STORE_WH_DELETED, fake_now(f)), 0);
    /* One refresh interval: the engine drops the webhook and flushes its results in
     * the same tick; the writer is kept busy meanwhile, so the flush's commit waits
     * while the refresh (a read) comes back. */
    busy_writer_t bw = { f, 0, 0, 0 };
    assert_int_equal(pthread_create(&bw.thread, NULL, busy_writer_main, &bw), 0);
    while (!__atomic_load_n(&bw.started, __ATOMIC_SEQ_CST))
        sleep_ms(1);
    sleep_ms(5);
    clock_fake_advance(&f->clock, f->eo.refresh_ms);
    pthread_join(bw.thread, NULL);
    assert_int_equal(bw.rc, 0);

    /* Was a bug: struct store_ack and struct store_watermark carry `const char *webhook_id`
     * pointing into the engine's wh_t (w->row.id). flush_take clears w->touched and
     * hands the batch to a worker; refresh_done then frees the wh_t (not seen,
     * !touched, in_flight == 0) while the batch is still being committed: the
     * commit reads freed memory (ASan: heap-use-after-free in the store's writer
     * thread; without ASan glibc has overwritten the start of the id, so the mark
     * and the ack match no webhook, or the batch fails with "invalid argument" and
     * the attempt rows are lost as well). Want: the delivery of v2 committed. */
    end = real_ms() + WAIT_MS;
    store_attempt_t log[4];
    for (;;) {
        n = read_log(f, log, 4);
        w = get_webhook(f);
        if ((n >= 2 && w.last_delivered_version == v2) || real_ms() >= end)
            break;
        clock_fake_advance(&f->clock, FLUSH_NUDGE_MS);
        sleep_ms(50);
    }
    assert_int_equal(w.status, STORE_WH_DISABLED);
    assert_int_equal(w.reason, STORE_WH_DELETED);
    if (n != 2 || log[1].status != STORE_ATTEMPT_DELIVERED || log[1].version != v2)
        fail_msg("the attempt log of the deleted webhook holds %zu row(s), want the "
                 "two deliveries made before the delete",
                 n);
    if (w.last_delivered_version != v2)
        fail_msg("last_delivered_version = %llu after the delete, want %llu (delivered "
                 "before it)",
                 (unsigned long long)w.last_delivered_version, (unsigned long long)v2);
    assert_int_equal(consumer_count(&f->cons), 2);
}

/* An optional argument selects tests by name (cmocka pattern, e.g. "test_stop"):
 * under ASan a test that trips a use-after-free aborts the whole run, so the tests
 * that do so come last and can be run one by one. */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_timing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_after_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_does_not_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_belongs_to_the_webhook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_slots_taken_in_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_changes_picked_up_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_budget_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_coalescing_backlog_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_coalescing_new_webhook, setup, teardown),
        /* The same paths with the transfers on two transport threads. */
        { "test_success_after_failures_threads", test_success_after_failures, setup_threads,
          teardown, NULL },
        { "test_stop_threads", test_stop, setup_threads, teardown, NULL },
        { "test_no_coalescing_threads", test_no_coalescing, setup_threads, teardown, NULL },
        cmocka_unit_test_setup_teardown(test_deleted_with_results_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
