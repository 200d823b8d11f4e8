/*
 * http_client.c: libcurl multi-socket on a libuv loop.
 *
 * curl tells us which sockets to watch (socket_cb) and when to call it back
 * (timer_cb); libuv watches them (uv_poll_t per socket, one uv_timer_t) and hands
 * readiness back with curl_multi_socket_action. Finished transfers are collected
 * with curl_multi_info_read and reported through each request's done callback.
 *
 * The connect hook (opensocket_cb) sees the address curl is about to connect to,
 * after DNS: that is where the destination rules are enforced for real.
 */
#include "client/http_client.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

_Static_assert(sizeof(hc_hdr_node_t) == sizeof(struct curl_slist) &&
                   offsetof(hc_hdr_node_t, data) == offsetof(struct curl_slist, data) &&
                   offsetof(hc_hdr_node_t, next) == offsetof(struct curl_slist, next),
               "hc_hdr_node_t is laid out as libcurl's struct curl_slist");

/* The answer body is read up to this many bytes, then the transfer ends there (and
 * the connection with it). SPEC §7.2: the body does not decide the outcome, so a
 * longer answer counts by its status like any other; only the excerpt is kept. */
#define BODY_READ_CAP (1 << 20)

struct hc {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;
    bool own_share;
    uv_timer_t timer;
    hc_options_t opt;
    size_t in_flight;
    hc_request_t *flying;         /* in-flight requests, to abort them on hc_free */
    bool closing;
    /* Finished easy handles kept for the next requests: creating one per attempt
     * showed up as malloc/free churn in the delivery profile. */
    CURL *pool[256];
    size_t n_pool;
    /* Watchers by socket, kept from one request to the next on a kept-alive
     * connection (see socket_cb); a watcher goes when curl closes its socket. */
    struct hc_sock **socks;
    size_t n_socks;
};

/* Per socket curl opened. */
typedef struct hc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    hc_t *c;
    int events;                   /* what the poll handle watches; 0: stopped */
    bool parked;                  /* curl does not watch it: an idle kept-alive connection */
} hc_sock_t;

static void check_done(hc_t *c);

static void on_poll(uv_poll_t *p, int status, int events)
{
    hc_sock_t *s = p->data;
    if (s->parked) {
        /* An idle connection became readable: the peer closed it or sent something
         * unasked. Stop watching (a level-triggered watch would fire again and
         * again); curl finds it dead when it next considers reusing it. */
        uv_poll_stop(&s->poll);
        s->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
    check_done(s->c);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static hc_sock_t *sock_get(hc_t *c, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < c->n_socks ? c->socks[fd] : NULL;
}

static hc_sock_t *sock_new(hc_t *c, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= c->n_socks) {
        size_t n = c->n_socks ? c->n_socks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        hc_sock_t **p = realloc(c->socks, n * sizeof(*p));
        if (!p)
            return NULL;
        memset(p + c->n_socks, 0, (n - c->n_socks) * sizeof(*p));
        c->socks = p;
        c->n_socks = n;
    }
    hc_sock_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fd = fd;
    s->c = c;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
        free(s);
        return NULL;
    }
    s->poll.data = s;
    c->socks[fd] = s;
    return s;
}

static void sock_close(hc_t *c, hc_sock_t *s)
{
    c->socks[s->fd] = NULL;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed); /* stops watching, synchronously */
}

/* curl says what to watch. When a transfer ends, curl stops watching its kept-alive
 * connection (REMOVE) and watches it again for the next request on it. Stopping
 * and starting the poll handle each time cost two epoll_ctl calls per request;
 * instead the watcher stays as it is, "parked", until curl wants it again or the
 * connection closes. */
static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
    hc_t *c = userp;
    (void)e, (void)sockp;
    hc_sock_t *s = sock_get(c, fd);
    if (what == CURL_POLL_REMOVE) {
        if (s)
            s->parked = true;
        return 0;
    }
    if (!s && !(s = sock_new(c, fd)))
        return -1;
    s->parked = false;
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if (events != s->events) {
        uv_poll_start(&s->poll, events, on_poll);
        s->events = events;
    }
    return 0;
}

static int closesocket_cb(void *clientp, curl_socket_t fd)
{
    hc_t *c = clientp;
    hc_sock_t *s = sock_get(c, fd);
    if (s)
        sock_close(c, s);
    return close(fd);
}

static void on_timeout(uv_timer_t *t)
{
    hc_t *c = t->data;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    hc_t *c = userp;
    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* The destination rule on the address actually connected to. */
static curl_socket_t opensocket_cb(void *clientp, curlsocktype purpose,
                                   struct curl_sockaddr *address)
{
    hc_request_t *r = clientp;
    (void)purpose;
    char why[DEST_WHY_MAX];
    if (dest_check_addr(r->client->opt.allow, &address->addr, why, sizeof(why))) {
        snprintf(r->res.error, sizeof(r->res.error), "address refused: %.140s", why);
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
    hc_request_t *r = userp;
    size_t len = size * n;
    if (r->res.excerpt_len < HC_EXCERPT_MAX) {
        size_t take = HC_EXCERPT_MAX - r->res.excerpt_len;
        if (take > len)
            take = len;
        memcpy(r->res.excerpt + r->res.excerpt_len, p, take);
        r->res.excerpt_len += take;
        r->res.excerpt[r->res.excerpt_len] = '\0';
    }
    r->body_seen += len;
    if (r->body_seen > BODY_READ_CAP) {
        r->body_capped = true;
        return 0; /* stops the transfer: CURLE_WRITE_ERROR, which finish() forgives */
    }
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *userp)
{
    hc_request_t *r = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        long long v = 0;
        size_t i = sizeof(name) - 1;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && p[i] >= '0' && p[i] <= '9' && v < 100000000)
            v = v * 10 + (p[i++] - '0');
        /* Only delay-seconds; an HTTP date is treated as absent. */
        r->res.retry_after_s = i > start ? v : -1;
    }
    return len;
}

static void finish(hc_t *c, hc_request_t *r, CURLcode code)
{
    CURL *e = r->easy;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    /* Stopped at the read cap: the status line and headers were complete (the body
     * comes after them), so the answer is what its status says. */
    if (code == CURLE_WRITE_ERROR && r->body_capped && status > 0)
        code = CURLE_OK;
    r->res.http_status = code == CURLE_OK ? (int)status : 0;
    r->res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    if (code != CURLE_OK && !r->res.error[0]) {
        const char *what = code == CURLE_OPERATION_TIMEDOUT ? "timeout"
                           : code == CURLE_COULDNT_CONNECT  ? "connection refused"
                           : code == CURLE_COULDNT_RESOLVE_HOST ? "name not resolved"
                           : code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION
                               ? "TLS"
                           : code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
                                   code == CURLE_GOT_NOTHING
                               ? "connection reset"
                               : "transfer failed";
        snprintf(r->res.error, sizeof(r->res.error), "%s: %.100s", what, curl_easy_strerror(code));
    }
    if (code == CURLE_OK)
        r->res.error[0] = '\0';
    r->res.duration_us = (int64_t)((uv_hrtime() - r->start_ns) / 1000);
    r->res.duration_ms = r->res.duration_us / 1000;
    curl_multi_remove_handle(c->multi, e);
    if (!c->closing && c->n_pool < sizeof(c->pool) / sizeof(c->pool[0])) {
        c->pool[c->n_pool++] = e; /* its options stay: easy_new set the fixed ones */
    } else {
        curl_easy_cleanup(e);
    }
    r->easy = NULL;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->flying = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->in_flight--;
    r->done(r, &r->res);
}

static void check_done(hc_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        hc_request_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        finish(c, r, m->data.result);
    }
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void hc_result_reset(hc_result_t *res)
{
    res->http_status = 0;
    res->timed_out = false;
    res->error[0] = '\0';
    res->excerpt[0] = '\0';
    res->excerpt_len = 0;
    res->duration_ms = 0;
    res->duration_us = 0;
    res->retry_after_s = -1;
}

void hc_request_init(hc_request_t *r)
{
    hc_result_t *res = &r->res;
    size_t at = offsetof(hc_request_t, res), after = at + sizeof(*res);
    memset(r, 0, at);
    memset((char *)r + after, 0, sizeof(*r) - after);
    hc_result_reset(res);
}

int hc_new(uv_loop_t *loop, const hc_options_t *opt, hc_t **out)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, global_init);
    hc_t *c = calloc(1, sizeof(*c));
    if (!c)
        return BH_ENOMEM;
    c->loop = loop;
    c->opt = *opt;
    c->multi = curl_multi_init();
    c->own_share = opt->share == NULL;
    c->share = c->own_share ? curl_share_init() : opt->share;
    if (!c->multi || !c->share) {
        hc_free(c);
        return BH_ENOMEM;
    }
    if (c->own_share) {
        /* One loop thread uses it: no lock callbacks are needed. */
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    long per_host = (long)(opt->max_host_connections ? opt->max_host_connections : 16);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    /* Idle connections kept for reuse. curl's default follows the number of
     * transfers added at the moment, so a dip in load closed connections that the
     * next burst had to open again (seen as connect/close in the delivery profile). */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, per_host * 8 > 256 ? per_host * 8 : 256);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    *out = c;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    hc_t *c = h->data;
    free(c);
}

void hc_free(hc_t *c)
{
    if (!c)
        return;
    c->closing = true;
    if (c->multi) {
        /* Abort what is in flight; each request still hears about it. */
        while (c->flying) {
            hc_request_t *r = c->flying;
            snprintf(r->res.error, sizeof(r->res.error), "aborted: the engine is stopping");
            finish(c, r, CURLE_ABORTED_BY_CALLBACK);
        }
        curl_multi_cleanup(c->multi);
    }
    while (c->n_pool)
        curl_easy_cleanup(c->pool[--c->n_pool]);
    /* Sockets curl closed went with closesocket_cb; any left are only watchers. */
    for (size_t i = 0; i < c->n_socks; i++)
        if (c->socks[i])
            sock_close(c, c->socks[i]);
    free(c->socks);
    c->socks = NULL;
    c->n_socks = 0;
    if (c->share && c->own_share)
        curl_share_cleanup(c->share);
    if (c->loop) {
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    free(c);
}

size_t hc_in_flight(const hc_t *c)
{
    return c->in_flight;
}

/* RFC 6761: names under .invalid never resolve; asking a resolver would only send
 * a query off this machine. */
bool hc_never_resolves(const char *url)
{
    const char *host = strstr(url, "://");
    if (!host)
        return false;
    host += 3;
    size_t n = strcspn(host, ":/?#");
    static const char tld[] = ".invalid";
    size_t t = sizeof(tld) - 1;
    if (n > 0 && host[n - 1] == '.')
        n--;
    return n >= t && strncasecmp(host + n - t, tld, t) == 0;
}

/* A new easy handle with the options every request shares. Handles go back to the
 * pool with them; hc_send sets only what differs per request. */
static CURL *easy_new(hc_t *c)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->opt.allow_http ? "https,http" : "https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* Never through a proxy (and so no proxy environment lookups per request). */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (c->opt.user_agent)
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->opt.user_agent);
    if (c->opt.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->opt.ca_file);
    return e;
}

int hc_send(hc_t *c, hc_request_t *r)
{
    if (c->closing)
        return BH_ESHUTDOWN;
    if (hc_never_resolves(r->url)) {
        hc_result_reset(&r->res);
        return BH_ENOTFOUND;
    }
    /* The header list lives in the request: libcurl reads it (and copies what it
     * sends) during the transfer and never frees it. No "Expect: 100-continue" round
     * trip: curl 7.88 adds it above 1 KiB. */
    static char expect[] = "Expect:";
    size_t n = 0;
    r->hnodes[n++].data = expect;
    for (size_t i = 0; r->headers && r->headers[i]; i++) {
        if (n > HC_HEADERS_MAX)
            return BH_EINVAL;
        r->hnodes[n++].data = (char *)r->headers[i];
    }
    for (size_t i = 0; i + 1 < n; i++)
        r->hnodes[i].next = &r->hnodes[i + 1];
    r->hnodes[n - 1].next = NULL;
    CURL *e = c->n_pool ? c->pool[--c->n_pool] : easy_new(c);
    if (!e)
        return BH_ENOMEM;
    hc_result_reset(&r->res);
    r->client = c;
    r->body_seen = 0;
    r->body_capped = false;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)(void *)r->hnodes);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    r->easy = e;
    r->start_ns = uv_hrtime();
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        r->easy = NULL;
        return BH_EIO;
    }
    c->in_flight++;
    r->prev = NULL;
    r->next = c->flying;
    if (c->flying)
        c->flying->prev = r;
    c->flying = r;
    return 0;
}
