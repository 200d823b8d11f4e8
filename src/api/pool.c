/*
 * pool.c: a small pool of threads with a bounded queue, for work that anyone can
 * make the server do before they have proved who they are: the token endpoint's
 * PBKDF2 check of a client secret (tens of milliseconds of CPU each).
 *
 * That work used to go to libuv's worker pool with everything else, so a flood of
 * token requests with made-up client ids queued in front of other tenants' reads
 * (GET /breaks/{id} went from 0.3 ms to 28.7 ms at the median). Here it has its own
 * threads: a flood fills this queue, and once the queue is full the caller is told
 * to answer 429, while libuv's pool keeps serving everyone else.
 *
 * Jobs go in on the loop thread; a worker runs work(), hands the job back through
 * a uv_async_t, and done() runs on the loop, as with api_run.
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"

typedef struct pool_job {
    http_request_t *req;
    api_work_fn work, done;
    void *arg;
    struct pool_job *next;
} pool_job_t;

typedef struct pool_list {
    pool_job_t *head, *tail;
} pool_list_t;

struct api_pool {
    uv_loop_t *loop;
    uv_async_t done_async;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pool_list_t todo, done;
    size_t n_queued;           /* in todo or running: what max_queued bounds */
    size_t max_queued;
    bool stopping;
    unsigned n_threads;
    pthread_t threads[API_POOL_MAX_THREADS];
};

static void list_push(pool_list_t *l, pool_job_t *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static pool_job_t *list_take_all(pool_list_t *l)
{
    pool_job_t *j = l->head;
    l->head = l->tail = NULL;
    return j;
}

/* On the loop: answers every finished job. */
static void on_done_async(uv_async_t *a)
{
    api_pool_t *p = a->data;
    pthread_mutex_lock(&p->lock);
    pool_job_t *j = list_take_all(&p->done);
    pthread_mutex_unlock(&p->lock);
    while (j) {
        pool_job_t *next = j->next;
        http_request_t *req = j->req;
        api_work_fn done = j->done;
        void *arg = j->arg;
        free(j);
        done(req, arg);
        j = next;
    }
}

/* Runs queued jobs until stopped; the queue is drained first, so no request that
 * was accepted is left without its work done. */
static void *pool_main(void *arg)
{
    api_pool_t *p = arg;
    pthread_setname_np(pthread_self(), "bh-token");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->todo.head && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        pool_job_t *j = p->todo.head;
        if (!j)
            break;
        p->todo.head = j->next;
        if (!p->todo.head)
            p->todo.tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->work(j->req, j->arg);
        pthread_mutex_lock(&p->lock);
        p->n_queued--;
        list_push(&p->done, j);
        uv_async_send(&p->done_async);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void stop_threads(api_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

static void pool_free_mem(uv_handle_t *h)
{
    api_pool_t *p = h->data;
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int api_pool_new(uv_loop_t *loop, unsigned threads, size_t max_queued, api_pool_t **out)
{
    if (threads < 1 || threads > API_POOL_MAX_THREADS || max_queued < 1)
        return BH_EINVAL;
    api_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return BH_ENOMEM;
    p->loop = loop;
    p->max_queued = max_queued;
    if (uv_async_init(loop, &p->done_async, on_done_async) < 0) {
        free(p);
        return BH_ENOMEM;
    }
    p->done_async.data = p;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (; p->n_threads < threads; p->n_threads++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p) != 0) {
            api_pool_free(p);
            return BH_EIO;
        }
    }
    *out = p;
    return 0;
}

int api_pool_run(api_pool_t *p, http_request_t *req, api_work_fn work, api_work_fn done,
                 void *arg)
{
    pool_job_t *j = malloc(sizeof(*j));
    if (!j)
        return BH_ENOMEM;
    *j = (pool_job_t){ .req = req, .work = work, .done = done, .arg = arg };
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->n_queued >= p->max_queued) {
        int rc = p->stopping ? BH_ESHUTDOWN : BH_EAGAIN;
        pthread_mutex_unlock(&p->lock);
        free(j);
        return rc;
    }
    p->n_queued++;
    list_push(&p->todo, j);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void api_pool_free(api_pool_t *p)
{
    if (!p)
        return;
    stop_threads(p);
    /* The loop is stopping: finished jobs are not answered any more. */
    pool_job_t *j = list_take_all(&p->done);
    while (j) {
        pool_job_t *next = j->next;
        free(j);
        j = next;
    }
    uv_close((uv_handle_t *)&p->done_async, pool_free_mem);
}

size_t api_pool_queued(api_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->n_queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}
