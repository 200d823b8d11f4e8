/*
 * hc_pool.c: transport threads for outbound POSTs (see hc_pool.h).
 *
 * Hand-over both ways is a mutex-protected singly linked list plus a wake-up
 * (wake_t below):
 *
 *   owner loop  hc_pool_send -> transport inbox -> wake
 *   transport   on_wake: hc_send each; when done: pool done list -> done wake
 *   owner loop  on_done: the caller's done callback
 *
 * A request belongs to exactly one thread at a time: the owner until it is queued,
 * the transport until it is queued back, the owner again after. A wake-up already
 * on its way is not sent again, so a busy pool pays for one hand-over per batch, not
 * per request.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "client/hc_pool.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A wake-up of a loop from another thread: an eventfd the loop watches and a flag
 * that says one is on its way, so senders write at most once per drain. The
 * receiver clears the flag after reading the eventfd and before it takes its queue,
 * so an item queued after the take always brings a new wake-up.
 *
 * Not uv_async_t: in libuv 1.44 a loop woken while a sender is between the two
 * steps of uv_async_send busy-waits for it, 997 spins and then sched_yield until
 * the sender is done, and it does so for every async handle of the loop. The engine
 * sends a request (or a transport hands one back) thousands of times a second; with
 * more busy threads than the two cores, a sender preempted inside uv_async_send cost
 * the receiver whole time slices (strace of a transport thread in the end-to-end
 * bench: 441 sched_yield calls in 2 s, a fifth of its system time). Here a sender
 * only does an atomic exchange and, for the first item, one write(2); nobody waits
 * for anybody. */
typedef struct wake {
    uv_poll_t poll;
    int fd;
    atomic_int pending;
    void (*cb)(struct wake *w);
    void *data;
} wake_t;

static void on_wake_readable(uv_poll_t *h, int status, int events)
{
    wake_t *w = h->data;
    uint64_t n;
    (void)status, (void)events;
    while (read(w->fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    atomic_store(&w->pending, 0);
    w->cb(w);
}

static int wake_init(uv_loop_t *loop, wake_t *w, void (*cb)(wake_t *w), void *data)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0)
        return BH_EIO;
    atomic_init(&w->pending, 0);
    w->cb = cb;
    w->data = data;
    if (uv_poll_init(loop, &w->poll, w->fd) < 0) {
        close(w->fd);
        return BH_EIO;
    }
    w->poll.data = w;
    /* Cannot fail with a valid handle and events (libuv only queues the watcher;
     * epoll_ctl runs at the next poll). */
    (void)uv_poll_start(&w->poll, UV_READABLE, on_wake_readable);
    return 0;
}

/* Any thread. */
static void wake_send(wake_t *w)
{
    if (atomic_exchange(&w->pending, 1))
        return;
    uint64_t one = 1;
    while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* On the loop's thread; close_cb as for uv_close (the poll handle's data is w). */
static void wake_close(wake_t *w, uv_close_cb close_cb)
{
    uv_close((uv_handle_t *)&w->poll, close_cb); /* stops watching the fd at once */
    close(w->fd);
}

typedef struct transport {
    hc_pool_t *pool;
    unsigned slot;
    uv_thread_t thread;
    uv_loop_t loop;
    wake_t wake;
    hc_t *hc;
    uv_sem_t started;
    int start_rc;
    pthread_mutex_t lock;       /* guards inbox and stop */
    hc_request_t *in_head, *in_tail;
    bool stop;
    size_t in_flight;           /* owner's count: sent minus done */
} transport_t;

struct hc_pool {
    uv_loop_t *loop;
    hc_options_t opt;
    /* One libcurl share for every transport: a TLS session made by one thread is
     * resumed by the others' connections to the same destination. */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    hc_t *direct;               /* 0 threads: one client on the owner's loop */
    transport_t *t;
    unsigned n;
    wake_t done;
    pthread_mutex_t lock;       /* guards the done list */
    hc_request_t *done_head, *done_tail;
};

static void list_push(hc_request_t **head, hc_request_t **tail, hc_request_t *r)
{
    r->qnext = NULL;
    if (*tail)
        (*tail)->qnext = r;
    else
        *head = r;
    *tail = r;
}

/* ---- transport thread ---------------------------------------------------------- */

/* The request's transfer is over (on the transport's thread): hand it back. */
static void transport_done(hc_request_t *r, const hc_result_t *res)
{
    (void)res; /* it is r->res: hc passes the request's own result */
    hc_pool_t *p = r->data;
    pthread_mutex_lock(&p->lock);
    list_push(&p->done_head, &p->done_tail, r);
    pthread_mutex_unlock(&p->lock);
    wake_send(&p->done);
}

static void fail_request(hc_request_t *r, const char *why)
{
    hc_result_reset(&r->res);
    snprintf(r->res.error, sizeof(r->res.error), "%s", why);
    transport_done(r, &r->res);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_wake(wake_t *w)
{
    transport_t *t = w->data;
    pthread_mutex_lock(&t->lock);
    hc_request_t *r = t->in_head;
    t->in_head = t->in_tail = NULL;
    bool stop = t->stop;
    pthread_mutex_unlock(&t->lock);
    while (r) {
        hc_request_t *next = r->qnext;
        if (stop)
            fail_request(r, "aborted: the engine is stopping");
        else if (hc_send(t->hc, r))
            fail_request(r, "could not start the request");
        r = next;
    }
    if (stop && t->hc) {
        hc_free(t->hc); /* aborts what is in flight: each comes back through transport_done */
        t->hc = NULL;
        wake_close(&t->wake, on_closed);
    }
}

static void transport_main(void *arg)
{
    transport_t *t = arg;
    char name[16];
    snprintf(name, sizeof(name), "bh-send-%u", t->slot);
    pthread_setname_np(pthread_self(), name);
    t->start_rc = uv_loop_init(&t->loop) < 0 ? BH_EIO : 0;
    if (!t->start_rc)
        t->start_rc = hc_new(&t->loop, &t->pool->opt, &t->hc);
    if (!t->start_rc && wake_init(&t->loop, &t->wake, on_wake, t)) {
        hc_free(t->hc);
        t->hc = NULL;
        t->start_rc = BH_EIO;
    }
    uv_sem_post(&t->started);
    if (!t->start_rc)
        uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_run(&t->loop, UV_RUN_DEFAULT); /* close callbacks */
    uv_loop_close(&t->loop);
}

/* ---- owner loop ------------------------------------------------------------------ */

static void on_done(wake_t *w)
{
    hc_pool_t *p = w->data;
    pthread_mutex_lock(&p->lock);
    hc_request_t *r = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (r) {
        hc_request_t *next = r->qnext;
        p->t[r->pool_slot].in_flight--;
        r->done = r->pool_done;
        r->data = r->pool_data;
        r->done(r, &r->res);
        r = next;
    }
}

static void stop_threads(hc_pool_t *p, unsigned started)
{
    for (unsigned i = 0; i < started; i++) {
        transport_t *t = &p->t[i];
        pthread_mutex_lock(&t->lock);
        t->stop = true;
        pthread_mutex_unlock(&t->lock);
        if (!t->start_rc)
            wake_send(&t->wake);
    }
    for (unsigned i = 0; i < started; i++) {
        uv_thread_join(&p->t[i].thread);
        uv_sem_destroy(&p->t[i].started);
        pthread_mutex_destroy(&p->t[i].lock);
    }
}

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *userp)
{
    hc_pool_t *p = userp;
    (void)e, (void)access;
    pthread_mutex_lock(&p->share_locks[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *userp)
{
    hc_pool_t *p = userp;
    (void)e;
    pthread_mutex_unlock(&p->share_locks[data]);
}

static int share_new(hc_pool_t *p)
{
    p->share = curl_share_init();
    if (!p->share)
        return BH_ENOMEM;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&p->share_locks[i], NULL);
    curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    p->opt.share = p->share;
    return 0;
}

/* Once the threads and their handles are gone. */
static void share_free(hc_pool_t *p)
{
    if (!p->share)
        return;
    curl_share_cleanup(p->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&p->share_locks[i]);
    p->share = NULL;
}

static void pool_free_mem(uv_handle_t *h)
{
    wake_t *w = h->data;
    hc_pool_t *p = w->data;
    share_free(p);
    pthread_mutex_destroy(&p->lock);
    free(p->t);
    free(p);
}

int hc_pool_new(uv_loop_t *loop, const hc_options_t *opt, unsigned threads, hc_pool_t **out)
{
    if (threads > HC_POOL_MAX_THREADS)
        return BH_EINVAL;
    hc_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return BH_ENOMEM;
    p->loop = loop;
    p->opt = *opt;
    if (threads == 0) {
        int rc = hc_new(loop, opt, &p->direct);
        if (rc) {
            free(p);
            return rc;
        }
        *out = p;
        return 0;
    }
    p->t = calloc(threads, sizeof(*p->t));
    if (!p->t || share_new(p) || wake_init(loop, &p->done, on_done, p)) {
        share_free(p);
        free(p->t);
        free(p);
        return BH_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    unsigned started = 0;
    int rc = 0;
    for (; started < threads; started++) {
        transport_t *t = &p->t[started];
        t->pool = p;
        t->slot = started;
        pthread_mutex_init(&t->lock, NULL);
        uv_sem_init(&t->started, 0);
        if (uv_thread_create(&t->thread, transport_main, t) < 0) {
            uv_sem_destroy(&t->started);
            pthread_mutex_destroy(&t->lock);
            rc = BH_EIO;
            break;
        }
        uv_sem_wait(&t->started);
        if (t->start_rc) {
            rc = t->start_rc;
            started++;
            break;
        }
    }
    if (rc) {
        stop_threads(p, started);
        wake_close(&p->done, pool_free_mem);
        return rc;
    }
    p->n = threads;
    *out = p;
    return 0;
}

int hc_pool_send(hc_pool_t *p, hc_request_t *r)
{
    if (p->direct)
        return hc_send(p->direct, r);
    if (hc_never_resolves(r->url)) {
        hc_result_reset(&r->res);
        return BH_ENOTFOUND;
    }
    transport_t *t = &p->t[0];
    for (unsigned i = 1; i < p->n; i++)
        if (p->t[i].in_flight < t->in_flight)
            t = &p->t[i];
    r->pool_done = r->done;
    r->pool_data = r->data;
    r->pool_slot = t->slot;
    r->done = transport_done;
    r->data = p;
    t->in_flight++;
    pthread_mutex_lock(&t->lock);
    list_push(&t->in_head, &t->in_tail, r);
    pthread_mutex_unlock(&t->lock);
    wake_send(&t->wake);
    return 0;
}

void hc_pool_free(hc_pool_t *p)
{
    if (!p)
        return;
    if (p->direct) {
        hc_free(p->direct);
        free(p);
        return;
    }
    stop_threads(p, p->n);
    on_done(&p->done); /* the aborted ones, on this thread, now */
    wake_close(&p->done, pool_free_mem);
}
