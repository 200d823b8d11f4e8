/*
 * pool.c: api_pool_t, a workpool (core/workpool.h) whose jobs are requests: work
 * and done get the request, as with api_run.
 *
 * Two of them serve the API: the token endpoint's PBKDF2 checks (work anyone can
 * make the server do before proving who they are: a flood of made-up client ids
 * used to queue in front of other tenants' reads, GET /breaks/{id} going from
 * 0.3 ms to 28.7 ms at the median) and the writes, which wait for their group
 * commit (api_run_write). Both keep libuv's shared pool free for reads.
 */
#include <stdlib.h>

#include "api/api.h"
#include "core/workpool.h"

typedef struct pool_job {
    http_request_t *req;
    api_work_fn work, done;
    void *arg;
} pool_job_t;

struct api_pool {
    workpool_t *wp;
};

static void job_work(void *a)
{
    pool_job_t *j = a;
    j->work(j->req, j->arg);
}

static void job_done(void *a)
{
    pool_job_t *j = a;
    http_request_t *req = j->req;
    api_work_fn done = j->done;
    void *arg = j->arg;
    free(j);
    done(req, arg);
}

int api_pool_new(uv_loop_t *loop, const char *name, unsigned threads, size_t max_queued,
                 api_pool_t **out)
{
    api_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return BH_ENOMEM;
    int rc = workpool_new(loop, name, threads, max_queued, &p->wp);
    if (rc) {
        free(p);
        return rc;
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
    int rc = workpool_run(p->wp, job_work, job_done, j);
    if (rc)
        free(j);
    return rc;
}

void api_pool_free(api_pool_t *p)
{
    if (!p)
        return;
    workpool_free(p->wp, free);
    free(p);
}

size_t api_pool_queued(api_pool_t *p)
{
    return workpool_queued(p->wp);
}
