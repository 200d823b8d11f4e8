#define _GNU_SOURCE /* pthread_setname_np */
#include "core/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct job {
    workpool_fn work, done;
    void *arg;
    struct job *next;
} job_t;

typedef struct job_list {
    job_t *head, *tail;
} job_list_t;

struct workpool {
    uv_loop_t *loop;
    uv_async_t done_async;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job_list_t todo, done;
    size_t n_queued;           /* in todo or running: what max_queued bounds */
    size_t max_queued;
    bool stopping;
    char name[16];
    unsigned n_threads;
    pthread_t threads[WORKPOOL_MAX_THREADS];
};

static void list_push(job_list_t *l, job_t *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static job_t *list_take_all(job_list_t *l)
{
    job_t *j = l->head;
    l->head = l->tail = NULL;
    return j;
}

/* On the loop: the done callback of every finished job. */
static void on_done_async(uv_async_t *a)
{
    workpool_t *p = a->data;
    pthread_mutex_lock(&p->lock);
    job_t *j = list_take_all(&p->done);
    pthread_mutex_unlock(&p->lock);
    while (j) {
        job_t *next = j->next;
        workpool_fn done = j->done;
        void *arg = j->arg;
        free(j);
        done(arg);
        j = next;
    }
}

/* Runs queued jobs until stopped; the queue is drained first, so no job that was
 * accepted is left without its work done. */
static void *pool_main(void *arg)
{
    workpool_t *p = arg;
    pthread_setname_np(pthread_self(), p->name);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->todo.head && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        job_t *j = p->todo.head;
        if (!j)
            break;
        p->todo.head = j->next;
        if (!p->todo.head)
            p->todo.tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        pthread_mutex_lock(&p->lock);
        p->n_queued--;
        list_push(&p->done, j);
        uv_async_send(&p->done_async);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void stop_threads(workpool_t *p)
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
    workpool_t *p = h->data;
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int workpool_new(uv_loop_t *loop, const char *name, unsigned threads, size_t max_queued,
                 workpool_t **out)
{
    if (threads < 1 || threads > WORKPOOL_MAX_THREADS || max_queued < 1)
        return BH_EINVAL;
    workpool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return BH_ENOMEM;
    p->loop = loop;
    p->max_queued = max_queued;
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (uv_async_init(loop, &p->done_async, on_done_async) < 0) {
        free(p);
        return BH_ENOMEM;
    }
    p->done_async.data = p;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (; p->n_threads < threads; p->n_threads++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p) != 0) {
            workpool_free(p, NULL);
            return BH_EIO;
        }
    }
    *out = p;
    return 0;
}

int workpool_run(workpool_t *p, workpool_fn work, workpool_fn done, void *arg)
{
    job_t *j = malloc(sizeof(*j));
    if (!j)
        return BH_ENOMEM;
    *j = (job_t){ .work = work, .done = done, .arg = arg };
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

void workpool_free(workpool_t *p, workpool_fn drop)
{
    if (!p)
        return;
    stop_threads(p);
    /* The loop is stopping: finished jobs get no done callback any more. */
    job_t *j = list_take_all(&p->done);
    while (j) {
        job_t *next = j->next;
        if (drop)
            drop(j->arg);
        free(j);
        j = next;
    }
    uv_close((uv_handle_t *)&p->done_async, pool_free_mem);
}

size_t workpool_queued(workpool_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->n_queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}
