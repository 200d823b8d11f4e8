/*
 * harness_consumer.c: the in-process webhook consumer (harness_consumer.h).
 */
#define _GNU_SOURCE /* accept4, memmem */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/crypto.h"
#include "harness_api.h"
#include "harness_consumer.h"

/* ---- libssl, loaded at run time (the tests are linked with libcrypto only) ----------- */

typedef struct ssl_api {
    void *h;
    __typeof__(&TLS_server_method) p_TLS_server_method;
    __typeof__(&SSL_CTX_new) p_SSL_CTX_new;
    __typeof__(&SSL_CTX_free) p_SSL_CTX_free;
    __typeof__(&SSL_CTX_use_certificate_chain_file) p_SSL_CTX_use_certificate_chain_file;
    __typeof__(&SSL_CTX_use_PrivateKey_file) p_SSL_CTX_use_PrivateKey_file;
    __typeof__(&SSL_new) p_SSL_new;
    __typeof__(&SSL_free) p_SSL_free;
    __typeof__(&SSL_set_fd) p_SSL_set_fd;
    __typeof__(&SSL_accept) p_SSL_accept;
    __typeof__(&SSL_read) p_SSL_read;
    __typeof__(&SSL_write) p_SSL_write;
    __typeof__(&SSL_pending) p_SSL_pending;
    __typeof__(&SSL_get_error) p_SSL_get_error;
    __typeof__(&SSL_shutdown) p_SSL_shutdown;
    __typeof__(&SSL_session_reused) p_SSL_session_reused;
} ssl_api_t;

static ssl_api_t S;

static bool ssl_load(void)
{
    if (S.h)
        return true;
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libssl.so", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return false;
#define SYM(n)                                                       \
    do {                                                             \
        S.p_##n = (__typeof__(S.p_##n))dlsym(h, #n);                 \
        if (!S.p_##n)                                                \
            return false;                                            \
    } while (0)
    SYM(TLS_server_method);
    SYM(SSL_CTX_new);
    SYM(SSL_CTX_free);
    SYM(SSL_CTX_use_certificate_chain_file);
    SYM(SSL_CTX_use_PrivateKey_file);
    SYM(SSL_new);
    SYM(SSL_free);
    SYM(SSL_set_fd);
    SYM(SSL_accept);
    SYM(SSL_read);
    SYM(SSL_write);
    SYM(SSL_pending);
    SYM(SSL_get_error);
    SYM(SSL_shutdown);
    SYM(SSL_session_reused);
#undef SYM
    S.h = h;
    return true;
}

typedef struct it_cconn {
    it_consumer_t *c;
    int fd;
    SSL *ssl;
    pthread_t th;
    struct it_cconn *next;
} it_cconn_t;

size_t it_consumer_slot(int64_t record)
{
    return record > 0 && record < IT_MAX_REC ? (size_t)record : 0;
}

/* Some bytes: > 0 read, 0 end of stream or error, -1 nothing within timeout_ms. */
static ssize_t cc_read(it_cconn_t *cc, char *p, size_t n, int timeout_ms)
{
    if (cc->ssl && S.p_SSL_pending(cc->ssl) > 0) {
        int r = S.p_SSL_read(cc->ssl, p, (int)n);
        return r > 0 ? r : 0;
    }
    struct pollfd pfd = { cc->fd, POLLIN, 0 };
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0)
        return -1;
    if (pr < 0)
        return errno == EINTR ? -1 : 0;
    if (cc->ssl) {
        int r = S.p_SSL_read(cc->ssl, p, (int)n);
        if (r > 0)
            return r;
        int e = S.p_SSL_get_error(cc->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : 0;
    }
    ssize_t r = recv(cc->fd, p, n, 0);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return -1;
    return 0;
}

static bool cc_write(it_cconn_t *cc, const char *p, size_t n)
{
    while (n) {
        ssize_t w;
        if (cc->ssl) {
            int r = S.p_SSL_write(cc->ssl, p, (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = send(cc->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The value of header name in a request head (NUL-terminated lines "Name: value\r\n"),
 * trimmed, or an empty slice with p NULL. */
static slice_t head_value(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (!end || end == line)
            break;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            return (slice_t){ v, (size_t)(e - v) };
        }
        line = end;
    }
    return (slice_t){ NULL, 0 };
}

static void slice_copy(char *out, size_t n, slice_t s)
{
    snprintf(out, n, "%.*s", s.p ? (int)s.n : 0, s.p ? s.p : "");
}

static void sleep_unless_stopped(it_consumer_t *c, int ms)
{
    uint64_t end = it_now_ms() + (uint64_t)ms;
    while (!atomic_load(&c->stop) && it_now_ms() < end) {
        uint64_t left = end - it_now_ms();
        it_sleep_ms(left > 10 ? 10 : (unsigned)left);
    }
}

/* Byte i of a big answer body: a pattern, so a test can tell the first 4 KiB apart
 * from any other 4 KiB. */
char it_consumer_body_byte(size_t i)
{
    return (char)('a' + i % 26);
}

/* Sends n bytes of it_consumer_body_byte() in 64 KiB pieces; false when the peer stopped
 * reading (the client may close once it has read enough). */
static bool cc_write_big_body(it_cconn_t *cc, size_t n)
{
    enum { PIECE = 26 * 2520 }; /* a multiple of the pattern's length, about 64 KiB */
    char *buf = malloc(PIECE);
    if (!buf)
        return false;
    for (size_t i = 0; i < PIECE; i++)
        buf[i] = it_consumer_body_byte(i);
    bool ok = true;
    for (size_t sent = 0; ok && sent < n; sent += PIECE)
        ok = cc_write(cc, buf, n - sent < PIECE ? n - sent : PIECE);
    free(buf);
    return ok;
}

/* Makes room for one more element of size bytes in the array *p of n used and *cap
 * allocated elements (doubling, from 256); false when out of memory. */
static bool room_for_one(void **p, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t want = *cap ? *cap * 2 : 256;
    void *q = realloc(*p, want * size);
    if (!q)
        return false;
    *p = q;
    *cap = want;
    return true;
}

/* Records the answer to delivery idx (status 0: none) and, for a 2xx, an ack: the
 * consumer processed that version, whether or not its answer still reached the sender
 * (a server killed meanwhile). */
static void consumer_answered(it_consumer_t *c, size_t idx, int status)
{
    pthread_mutex_lock(&c->mu);
    it_delivery_t *d = &c->d[idx];
    d->status = status;
    d->answered_ms = it_now_ms();
    size_t slot = it_consumer_slot(d->record);
    c->inflight[slot]--;
    c->inflight_all--;
    if (status >= 200 && status < 300) {
        if (room_for_one((void **)&c->acks, c->n_acks, &c->cap_acks, sizeof(*c->acks)))
            c->acks[c->n_acks++] = (it_ack_t){ d->record, d->v, d->answered_ms };
        if (d->v > c->acked_max[slot])
            c->acked_max[slot] = d->v;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* One request: records it, then answers as the rule says. Returns false when the
 * connection must end (hang, reset, write failure). */
static bool consumer_handle(it_cconn_t *cc, const char *head, const char *body, size_t body_len)
{
    it_consumer_t *c = cc->c;
    it_delivery_t d;
    memset(&d, 0, sizeof(d));
    d.at_ms = it_now_ms();
    d.wall_s = (int64_t)time(NULL);
    sscanf(head, "%7s %127s", d.method, d.path);
    slice_t id = head_value(head, "webhook-id");
    slice_t ts = head_value(head, "webhook-timestamp");
    slice_t sig = head_value(head, "webhook-signature");
    slice_copy(d.id, sizeof(d.id), id);
    slice_copy(d.ts_text, sizeof(d.ts_text), ts);
    d.ts = strtoll(d.ts_text, NULL, 10);
    slice_copy(d.ctype, sizeof(d.ctype), head_value(head, "content-type"));
    slice_copy(d.ua, sizeof(d.ua), head_value(head, "user-agent"));
    d.chunked = head_value(head, "transfer-encoding").p != NULL;
    d.body = malloc(body_len + 1);
    if (d.body) {
        memcpy(d.body, body, body_len);
        d.body[body_len] = '\0';
        d.body_len = body_len;
    }
    json_error_t jerr;
    json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *data = json_object_get(j, "data");
    snprintf(d.change_type, sizeof(d.change_type), "%s",
             json_string_value(json_object_get(j, "changeType")) ? json_string_value(json_object_get(j, "changeType")) : "");
    const char *ver = json_string_value(json_object_get(data, "changeVersion"));
    snprintf(d.version, sizeof(d.version), "%s", ver ? ver : "");
    d.v = it_version_num(ver);
    json_t *rid = json_object_get(data, "id");
    d.record = json_is_integer(rid) ? (int64_t)json_integer_value(rid) : -1;
    json_decref(j);

    pthread_mutex_lock(&c->mu);
    sign_headers_t h = { id, ts, sig };
    d.verify = c->key_len ? sign_verify(c->key, c->key_len, &h, body, body_len, d.wall_s,
                                        SIGN_TOLERANCE_DEFAULT_S)
                          : SIGN_ENO_MATCH;
    if (d.verify)
        c->bad_signatures++;
    size_t slot = it_consumer_slot(d.record);
    d.nth = ++c->per_record[slot];
    if (d.v > c->arrived_max[slot])
        c->arrived_max[slot] = d.v;
    if (++c->inflight[slot] > 1)
        d.overlap = true;
    if (++c->inflight_all > c->inflight_max)
        c->inflight_max = c->inflight_all;
    it_rule_t r = c->rule;
    bool applies = r.only_record == 0 || r.only_record == d.record;
    d.failed_on_purpose = applies && (r.fail_first < 0 || d.nth <= r.fail_first);
    bool ok = room_for_one((void **)&c->d, c->n, &c->cap, sizeof(*c->d));
    size_t idx = c->n;
    if (ok)
        c->d[c->n++] = d;
    else
        free(d.body);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        return false;

    int delay = d.record >= r.slow_from && d.record <= r.slow_to && r.slow_to ? r.slow_ms
                                                                           : r.delay_ms;
    if (delay > 0)
        sleep_unless_stopped(c, delay);
    it_act_t act = d.failed_on_purpose ? r.fail_act : IT_ACT_ANSWER;
    if (act == IT_ACT_HANG) {
        /* Until the client gives up (or the consumer stops). */
        char tmp[512];
        while (!atomic_load(&c->stop) && cc_read(cc, tmp, sizeof(tmp), 50) != 0)
            ;
        consumer_answered(c, idx, 0);
        return false;
    }
    if (act == IT_ACT_RESET) {
        static const char partial[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                      "Content-Length: 100\r\n\r\npartial";
        cc_write(cc, partial, sizeof(partial) - 1);
        it_sleep_ms(20);
        struct linger lg = { 1, 0 };
        setsockopt(cc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        consumer_answered(c, idx, 0);
        return false; /* the close sends RST */
    }
    int status = d.failed_on_purpose ? r.fail_status : 200;
    char text[64], extra[64] = "", resp[512];
    snprintf(text, sizeof(text), d.failed_on_purpose ? "failing on purpose %d" : "ok %d", d.nth);
    if (d.failed_on_purpose && r.retry_after >= 0)
        snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", r.retry_after);
    if (r.close_each)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "Connection: close\r\n");
    if (r.body_bytes) {
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d Test\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "%s\r\n",
                         status, r.body_bytes, extra);
        consumer_answered(c, idx, status);
        return cc_write(cc, resp, (size_t)n) && cc_write_big_body(cc, r.body_bytes) &&
               !r.close_each;
    }
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d Test\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, strlen(text), extra, text);
    /* Recorded before it is sent: once sent, the record's next event may arrive on
     * another connection at once. */
    consumer_answered(c, idx, status);
    return cc_write(cc, resp, (size_t)n) && !r.close_each;
}

/* Reads what arrives within 100 ms into buf[*len, cap); false when the connection
 * ended or the consumer is stopping. */
static bool cc_read_more(it_cconn_t *cc, char *buf, size_t *len, size_t cap)
{
    if (atomic_load(&cc->c->stop))
        return false;
    ssize_t r = cc_read(cc, buf + *len, cap - *len, 100);
    if (r == 0)
        return false;
    if (r > 0)
        *len += (size_t)r;
    return true;
}

static void *conn_main(void *arg)
{
    it_cconn_t *cc = arg;
    it_consumer_t *c = cc->c;
    int one = 1;
    setsockopt(cc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = { 0, 200000 };
    setsockopt(cc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (c->ctx) {
        cc->ssl = S.p_SSL_new(c->ctx);
        bool ok = cc->ssl && S.p_SSL_set_fd(cc->ssl, cc->fd) == 1;
        uint64_t deadline = it_now_ms() + 5000 * IT_PATIENCE;
        int r = 0;
        while (ok && !atomic_load(&c->stop) && it_now_ms() < deadline) {
            r = S.p_SSL_accept(cc->ssl);
            if (r == 1)
                break;
            int e = S.p_SSL_get_error(cc->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                ok = false;
        }
        if (!ok || r != 1) {
            pthread_mutex_lock(&c->mu);
            c->tls_failures++;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            goto out;
        }
        if (S.p_SSL_session_reused(cc->ssl)) {
            pthread_mutex_lock(&c->mu);
            c->tls_resumed++;
            pthread_mutex_unlock(&c->mu);
        }
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        goto out;
    for (;;) {
        /* The head. */
        char *he;
        for (;;) {
            buf[len] = '\0';
            if ((he = memmem(buf, len, "\r\n\r\n", 4)) != NULL)
                break;
            if (len == cap || !cc_read_more(cc, buf, &len, cap))
                goto done;
        }
        size_t head_len = (size_t)(he - buf) + 4;
        char saved = buf[head_len];
        buf[head_len] = '\0';
        slice_t cl = head_value(buf, "content-length");
        char cls[32];
        slice_copy(cls, sizeof(cls), cl);
        char *end;
        long long body_len = strtoll(cls, &end, 10);
        buf[head_len] = saved;
        if (!cl.p || end == cls || body_len < 0 || (size_t)body_len > (1u << 20)) {
            pthread_mutex_lock(&c->mu);
            c->malformed++;
            pthread_mutex_unlock(&c->mu);
            goto done;
        }
        size_t need = head_len + (size_t)body_len;
        if (need > cap) {
            char *p = realloc(buf, need + 1);
            if (!p)
                goto done;
            buf = p;
            cap = need;
        }
        while (len < need)
            if (!cc_read_more(cc, buf, &len, cap))
                goto done;
        char *head = malloc(head_len + 1);
        if (!head)
            goto done;
        memcpy(head, buf, head_len);
        head[head_len] = '\0';
        bool go_on = consumer_handle(cc, head, buf + head_len, (size_t)body_len);
        free(head);
        if (!go_on)
            goto done;
        memmove(buf, buf + need, len - need);
        len -= need;
    }
done:
    free(buf);
out:
    pthread_mutex_lock(&c->mu);
    if (cc->ssl) {
        S.p_SSL_free(cc->ssl);
        cc->ssl = NULL;
    }
    close(cc->fd);
    cc->fd = -1;
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    it_consumer_t *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd pfd = { c->lfd, POLLIN, 0 };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        it_cconn_t *cc = calloc(1, sizeof(*cc));
        if (!cc) {
            close(fd);
            continue;
        }
        cc->c = c;
        cc->fd = fd;
        pthread_mutex_lock(&c->mu);
        c->connections++;
        if (pthread_create(&cc->th, NULL, conn_main, cc) != 0) {
            pthread_mutex_unlock(&c->mu);
            close(fd);
            free(cc);
            continue;
        }
        cc->next = c->conns;
        c->conns = cc;
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* A consumer on 127.0.0.1:0; TLS when ctx is given (then owned by the consumer). */
it_consumer_t *it_consumer_new(it_rule_t rule, SSL_CTX *ctx)
{
    it_consumer_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->rule = rule;
    c->ctx = ctx;
    c->lfd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->lfd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(c->lfd, 256), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&a, &al), 0);
    c->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&c->acceptor, NULL, acceptor_main, c), 0);
    c->acceptor_started = true;
    return c;
}

void it_consumer_free(it_consumer_t *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    if (c->acceptor_started)
        pthread_join(c->acceptor, NULL);
    if (c->lfd >= 0)
        close(c->lfd);
    pthread_mutex_lock(&c->mu);
    for (it_cconn_t *cc = c->conns; cc; cc = cc->next)
        if (cc->fd >= 0)
            shutdown(cc->fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->mu);
    for (it_cconn_t *cc = c->conns; cc;) {
        it_cconn_t *next = cc->next;
        pthread_join(cc->th, NULL);
        free(cc);
        cc = next;
    }
    if (c->ctx)
        S.p_SSL_CTX_free(c->ctx);
    for (size_t i = 0; i < c->n; i++)
        free(c->d[i].body);
    free(c->d);
    free(c->acks);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void it_consumer_set_key(it_consumer_t *c, const char *whsec)
{
    unsigned char key[SIGN_KEY_MAX];
    size_t len = 0;
    if (crypto_whsec_parse(whsec, key, sizeof(key), &len) || len == 0)
        fail_msg("the webhook key '%.12s…' does not parse as whsec_", whsec);
    pthread_mutex_lock(&c->mu);
    memcpy(c->key, key, len);
    c->key_len = len;
    pthread_mutex_unlock(&c->mu);
}


bool it_consumer_wait(it_consumer_t *c, it_consumer_pred_t pred, const void *arg, unsigned timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms * IT_PATIENCE;
    pthread_mutex_lock(&c->mu);
    bool ok;
    while (!(ok = pred(c, arg)) && it_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

bool it_pred_acks_at_least(it_consumer_t *c, const void *arg)
{
    return c->n_acks >= *(const size_t *)arg;
}

bool it_pred_deliveries_at_least(it_consumer_t *c, const void *arg)
{
    return c->n >= *(const size_t *)arg;
}


bool it_pred_arrived(it_consumer_t *c, const void *arg)
{
    const it_rec_version_t *rv = arg;
    return c->arrived_max[it_consumer_slot(rv->record)] >= rv->v;
}

bool it_pred_acked(it_consumer_t *c, const void *arg)
{
    const it_rec_version_t *rv = arg;
    return c->acked_max[it_consumer_slot(rv->record)] >= rv->v;
}


bool it_pred_finals(it_consumer_t *c, const void *arg)
{
    const it_finals_t *f = arg;
    for (size_t i = 1; i <= f->n; i++)
        if (f->v[i] && c->acked_max[it_consumer_slot((int64_t)i)] < f->v[i])
            return false;
    return true;
}

size_t it_consumer_count(it_consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t it_consumer_acks(it_consumer_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_acks;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* A snapshot of the deliveries (bodies not copied: valid until it_consumer_free). */
it_delivery_t *it_consumer_snapshot(it_consumer_t *c, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    *n = c->n;
    it_delivery_t *d = malloc((c->n ? c->n : 1) * sizeof(*d));
    assert_non_null(d);
    if (c->n)
        memcpy(d, c->d, c->n * sizeof(*d));
    pthread_mutex_unlock(&c->mu);
    return d;
}

/* Every delivery's signature verified, and each was a POST of JSON, not chunked. */
void it_consumer_expect_signed(it_consumer_t *c, const char *what)
{
    size_t n;
    it_delivery_t *d = it_consumer_snapshot(c, &n);
    for (size_t i = 0; i < n; i++) {
        if (d[i].verify != 0)
            fail_msg("%s: delivery %zu (webhook-id %s, record %lld) does not verify: %s", what, i,
                     d[i].id, (long long)d[i].record, sign_strerror(d[i].verify));
        if (strcmp(d[i].method, "POST") != 0)
            fail_msg("%s: delivery %zu used method %s", what, i, d[i].method);
        if (d[i].chunked)
            fail_msg("%s: delivery %zu came chunked", what, i);
        if (d[i].record <= 0 || !d[i].v)
            fail_msg("%s: delivery %zu has no record id or changeVersion: %.300s", what, i,
                     d[i].body ? d[i].body : "");
    }
    free(d);
    pthread_mutex_lock(&c->mu);
    size_t malformed = c->malformed;
    pthread_mutex_unlock(&c->mu);
    if (malformed)
        fail_msg("%s: %zu malformed requests", what, malformed);
}

/* ---- TLS material ---------------------------------------------------------------------- */

/* Runs argv (PATH lookup) in dir with output to dir/cmd.log (printed when it fails);
 * bounded. True on exit 0. */
static bool run_cmd(const char *dir, const char *const *argv)
{
    char logp[512];
    snprintf(logp, sizeof(logp), "%s/cmd.log", dir);
    if (it_cmd_run(argv, dir, logp, 30000) == 0)
        return true;
    char *log = it_read_file(logp, NULL);
    fprintf(stderr, "%s failed:\n%s\n", argv[0], log ? log : "");
    free(log);
    return false;
}

void it_consumer_webhook(it_srv_t *s, it_consumer_t *c, const char *ext_refs, it_webhook_t *out)
{
    char url[128];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/hook", c->ctx ? "https" : "http", c->port);
    it_webhook_create(s, url, ext_refs, out);
    it_consumer_set_key(c, out->key);
}

/* A test CA and a server certificate for IP 127.0.0.1 in dir (ca.pem, srv.pem,
 * srv.key), made with the openssl command. */
void it_tls_certs_make(char *dir, size_t n)
{
    assert_int_equal(it_tmpdir_new(dir, n), 0);
    const char *const ca[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                               "-out", "ca.pem", "-days", "2", "-subj", "/CN=breakhook-it test CA",
                               "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                               "keyUsage=critical,keyCertSign,cRLSign", NULL };
    const char *const csr[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "srv.key",
                                "-out", "srv.csr", "-subj", "/CN=127.0.0.1", NULL };
    const char *const sign[] = { "openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem",
                                 "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days",
                                 "2", "-extfile", "ext.cnf", NULL };
    char extp[400];
    snprintf(extp, sizeof(extp), "%s/ext.cnf", dir);
    FILE *e = fopen(extp, "w");
    assert_non_null(e);
    fputs("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
          e);
    fclose(e);
    if (!run_cmd(dir, ca) || !run_cmd(dir, csr) || !run_cmd(dir, sign))
        fail_msg("could not make the test certificates with the openssl command");
}

SSL_CTX *it_consumer_tls_ctx(const char *dir)
{
    if (!ssl_load())
        fail_msg("libssl could not be loaded: %s", dlerror());
    SSL_CTX *ctx = S.p_SSL_CTX_new(S.p_TLS_server_method());
    assert_non_null(ctx);
    char cert[400], key[400];
    snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
    snprintf(key, sizeof(key), "%s/srv.key", dir);
    if (S.p_SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        S.p_SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        fail_msg("the test certificate does not load");
    return ctx;
}
