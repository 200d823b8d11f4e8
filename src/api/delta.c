/*
 * delta.c: delta sync (SPEC §6) for breaks and break definitions.
 *
 *   initial load   GET /breaks?filter=date ge '…'[ and date le '…']&delta
 *                  GET /break-definitions?delta
 *                  The first page starts the client's delta on the collection in
 *                  the store (store_delta_start: its starting version is taken in
 *                  the writer's transaction, before any page is read) and answers
 *                  the first page of plain records. Each nextLink carries a
 *                  continuationToken and the deltaToken; the last page has a
 *                  deltaLink instead.
 *   follow-up      GET /delta/breaks?deltaToken=…
 *                  store_delta_touch (the delta is still the client's, not expired;
 *                  its floor is the token's cursor), then the changes after the
 *                  cursor: one item per record ({"changeType","data"}, built by
 *                  delivery/event.c, byte for byte what a webhook delivers), the
 *                  newest change of each, in changeVersion order, at most
 *                  API_DELTA_PAGE_MAX records, and a deltaLink whose token carries
 *                  the new cursor. A break is reported when its date is in the
 *                  delta's range, or was just before the first of its changes the
 *                  page covers (store_change_t.prev_date): a break that left the
 *                  range is reported once, with its new date.
 *   long polling   A follow-up with Prefer: wait=N that finds nothing is held (no
 *                  worker, no connection state beyond the request) until a commit of
 *                  its tenant is notified by the store or N seconds pass; then it is
 *                  read again. Capped per client and in all.
 *
 * The cursor lives in the token, so sending the previous link again after a lost
 * answer answers the same changes again (or more). Everything here runs on the
 * loop except the jobs (store reads and writes), which run on workers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/hash.h"
#include "core/imap.h"
#include "core/log.h"
#include "delivery/event.h"

#define TOKEN_FORMAT 1
#define TOKEN_BYTES_MAX 1024
#define SCAN_MAX 20000          /* changes one follow-up reads at most */
#define READ_CHUNK 1000         /* changes per store read */
#define TICK_MS 100             /* held requests: timeouts and gone clients */
#define NOTIFY_MAX 256          /* tenants remembered between two wake-ups */

static const char token_invalid[] = "the deltaToken is not valid";

/* ---- the token ------------------------------------------------------------ */

static void put_u64(uint8_t *b, size_t *o, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[(*o)++] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static bool hex_id(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

int api_delta_token_seal(auth_keyring_t *k, const api_delta_token_t *t, char **tok)
{
    size_t cl = strnlen(t->client_id, sizeof(t->client_id));
    size_t el = strnlen(t->extrefs, sizeof(t->extrefs));
    if (cl == 0 || cl >= sizeof(t->client_id) || el > API_DELTA_EXTREFS_MAX ||
        t->tenant_id <= 0 || strnlen(t->delta_id, sizeof(t->delta_id)) != STORE_DELTA_ID_LEN ||
        !hex_id(t->delta_id, STORE_DELTA_ID_LEN) ||
        (t->collection != STORE_COLL_BREAKS && t->collection != STORE_COLL_DEFINITIONS) ||
        t->date_from > t->date_to)
        return BH_EINVAL;
    uint8_t b[TOKEN_BYTES_MAX];
    size_t o = 0;
    b[o++] = TOKEN_FORMAT;
    b[o++] = (uint8_t)t->collection;
    put_u64(b, &o, (uint64_t)t->tenant_id);
    put_u64(b, &o, t->cursor);
    put_u64(b, &o, (uint64_t)(uint32_t)t->date_from << 32 | (uint32_t)t->date_to);
    memcpy(b + o, t->delta_id, STORE_DELTA_ID_LEN);
    o += STORE_DELTA_ID_LEN;
    b[o++] = (uint8_t)cl;
    memcpy(b + o, t->client_id, cl);
    o += cl;
    b[o++] = (uint8_t)(el >> 8);
    b[o++] = (uint8_t)el;
    memcpy(b + o, t->extrefs, el);
    o += el;
    return auth_seal(k, "delta", b, o, tok);
}

const char *api_delta_token_open(auth_keyring_t *k, const char *tok, size_t n,
                                 api_delta_token_t *t)
{
    uint8_t b[TOKEN_BYTES_MAX];
    size_t got = 0, o = 0;
    memset(t, 0, sizeof(*t));
    if (auth_unseal(k, "delta", tok, n, b, sizeof(b), &got))
        return token_invalid;
    /* format, collection, three u64, the id, the client's length */
    if (got < 2 + 24 + STORE_DELTA_ID_LEN + 1 || b[0] != TOKEN_FORMAT)
        return token_invalid;
    t->collection = b[1];
    o = 2;
    t->tenant_id = (int64_t)get_u64(b + o);
    t->cursor = get_u64(b + o + 8);
    uint64_t range = get_u64(b + o + 16);
    t->date_from = (int32_t)(uint32_t)(range >> 32);
    t->date_to = (int32_t)(uint32_t)range;
    o += 24;
    memcpy(t->delta_id, b + o, STORE_DELTA_ID_LEN);
    o += STORE_DELTA_ID_LEN;
    size_t cl = b[o++];
    if (cl == 0 || cl >= sizeof(t->client_id) || got - o < cl + 2)
        return token_invalid;
    memcpy(t->client_id, b + o, cl);
    o += cl;
    size_t el = (size_t)b[o] << 8 | b[o + 1];
    o += 2;
    if (el > API_DELTA_EXTREFS_MAX || got - o != el)
        return token_invalid;
    memcpy(t->extrefs, b + o, el);
    if ((t->collection != STORE_COLL_BREAKS && t->collection != STORE_COLL_DEFINITIONS) ||
        t->tenant_id <= 0 || t->date_from > t->date_to ||
        !hex_id(t->delta_id, STORE_DELTA_ID_LEN) || memchr(t->client_id, '\0', cl) ||
        memchr(t->extrefs, '\0', el))
        return token_invalid;
    return NULL;
}

/* ---- the registry of running and held follow-ups --------------------------- */

typedef struct follow follow_t;

struct api_deltas {
    uv_loop_t *loop;
    store_t *store;
    api_ctx_t *ctx;
    uv_async_t async;
    uv_timer_t tick;
    bool subscribed, stopped;
    size_t max_held, max_held_per_client;
    /* Filled by the store's writer thread, emptied on the loop. */
    pthread_mutex_t lock;
    int64_t notified[NOTIFY_MAX];
    size_t n_notified;
    bool notified_all;
    /* Loop only. */
    uint64_t seq;                  /* wake-ups handled so far */
    uint64_t all_seq;              /* the last one that named every tenant */
    imap_t tenant_seq;             /* tenant -> the last wake-up that named it */
    imap_t busy;                   /* hash of a delta id -> requests on it (0 or 1) */
    imap_t held_by_client;         /* hash of tenant/client -> held requests */
    TAILQ_HEAD(, follow) held;
    size_t n_held;
};

static int64_t id_key(const char *delta_id)
{
    return (int64_t)hash_fnv(HASH_FNV_OFFSET, delta_id, strlen(delta_id));
}

static int64_t client_key(int64_t tenant_id, const char *client_id)
{
    uint64_t h = hash_fnv(HASH_FNV_OFFSET, &tenant_id, sizeof(tenant_id));
    return (int64_t)hash_fnv(h, client_id, strlen(client_id));
}

/* Adds delta to an imap of counts (by key). */
static int count_add(imap_t *m, int64_t key, intptr_t delta)
{
    intptr_t v = (intptr_t)imap_get(m, key) + delta;
    if (v <= 0) {
        imap_del(m, key);
        return 0;
    }
    if (imap_replace(m, key, (void *)v))
        return 0;
    return imap_put(m, key, (void *)v);
}

static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    api_deltas_t *d = arg;
    (void)version;
    if (!(what & STORE_COMMIT_CHANGES))
        return;
    pthread_mutex_lock(&d->lock);
    if (tenant_id == 0 || d->n_notified == NOTIFY_MAX)
        d->notified_all = true;
    else
        d->notified[d->n_notified++] = tenant_id;
    pthread_mutex_unlock(&d->lock);
    uv_async_send(&d->async);
}

int api_deltas_new(uv_loop_t *loop, store_t *store, size_t max_held, size_t max_held_per_client,
                   api_deltas_t **out)
{
    api_deltas_t *d = calloc(1, sizeof(*d));
    if (!d)
        return BH_ENOMEM;
    d->loop = loop;
    d->store = store;
    d->max_held = max_held;
    d->max_held_per_client = max_held_per_client;
    pthread_mutex_init(&d->lock, NULL);
    imap_init(&d->tenant_seq);
    imap_init(&d->busy);
    imap_init(&d->held_by_client);
    TAILQ_INIT(&d->held);
    *out = d;
    return 0;
}

static void on_async(uv_async_t *a);
static void on_tick(uv_timer_t *t);

void api_deltas_attach(api_deltas_t *d, api_ctx_t *ctx)
{
    d->ctx = ctx;
    uv_async_init(d->loop, &d->async, on_async);
    d->async.data = d;
    uv_timer_init(d->loop, &d->tick);
    d->tick.data = d;
    if (store_subscribe(d->store, on_commit, d) == 0)
        d->subscribed = true;
    else
        log_warn("delta long polls will not wake on commits: no store subscription left");
}

void api_deltas_free(api_deltas_t *d)
{
    if (!d)
        return;
    if (d->subscribed)
        store_unsubscribe(d->store, on_commit, d);
    imap_deinit(&d->tenant_seq);
    imap_deinit(&d->busy);
    imap_deinit(&d->held_by_client);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---- one follow-up ----------------------------------------------------------- */

struct follow {
    http_request_t *req;
    api_deltas_t *d;               /* NULL: no registry (nothing to release) */
    api_delta_token_t tok;         /* cursor: where the next read starts */
    extref_list_t refs;
    bool asked;
    int wait_s;                    /* Prefer: wait applied; 0: none */
    uint64_t deadline;             /* uv_now when a held request is answered empty */
    uint64_t seq;                  /* d->seq when the last read was started */
    bool touch;                    /* the first read: store_delta_touch first */
    bool busy;                     /* counted in d->busy */
    bool held;                     /* in d->held */
    TAILQ_ENTRY(follow) link;
    /* The read's result. */
    int rc;
    const char *gone;              /* 410 with this reason */
    buf_t items;
    size_t n_items;
    uint64_t next_cursor;
};

/* A change of a record in the page: the first one's previous date and the newest. */
typedef struct cand {
    bool first_has_prev;
    int32_t first_prev;
    store_change_t last;
} cand_t;

static bool in_range(const api_delta_token_t *t, int32_t date)
{
    return date >= t->date_from && date <= t->date_to;
}

static int by_version(const void *a, const void *b)
{
    uint64_t x = ((const store_change_t *)a)->version, y = ((const store_change_t *)b)->version;
    return x < y ? -1 : x > y;
}

/* Reads the changes after t->cursor, one candidate per record (its newest change),
 * until API_DELTA_PAGE_MAX records, SCAN_MAX changes or the end of the log; then the
 * items of the candidates the delta reports, in changeVersion order, into out. */
static int scan(store_t *s, const api_delta_token_t *t, const event_refs_t *er, buf_t *out,
                size_t *n_items, uint64_t *cursor)
{
    cand_t *c = calloc(API_DELTA_PAGE_MAX, sizeof(*c));
    if (!c)
        return BH_ENOMEM;
    imap_t ix;
    imap_init(&ix);
    size_t nc = 0, scanned = 0;
    uint64_t after = t->cursor;
    bool full = false;
    int rc = 0;
    while (!rc && !full && scanned < SCAN_MAX) {
        store_change_t *ch = NULL;
        size_t n = 0;
        rc = store_changes_after(s, t->tenant_id, t->collection, after, READ_CHUNK, &ch, &n);
        for (size_t i = 0; !rc && i < n; i++) {
            uintptr_t k = (uintptr_t)imap_get(&ix, ch[i].record_id);
            if (!k) {
                if (nc == API_DELTA_PAGE_MAX) {
                    full = true;
                    break;
                }
                if ((rc = imap_put(&ix, ch[i].record_id, (void *)(uintptr_t)(nc + 1))))
                    break;
                c[nc].first_has_prev = ch[i].has_prev_date;
                c[nc].first_prev = ch[i].prev_date;
                k = ++nc;
            }
            free(c[k - 1].last.body);
            c[k - 1].last = ch[i];
            ch[i].body = NULL; /* moved into the candidate */
            after = ch[i].version;
            scanned++;
        }
        store_changes_free(ch, n);
        if (n < READ_CHUNK)
            break;
    }
    store_change_t *sel = NULL;
    size_t ns = 0;
    char **bodies = NULL;
    if (!rc && nc) {
        sel = malloc(nc * sizeof(*sel));
        bodies = calloc(nc, sizeof(*bodies));
        rc = sel && bodies ? 0 : BH_ENOMEM;
    }
    for (size_t i = 0; !rc && i < nc; i++) {
        const cand_t *x = &c[i];
        bool report = t->collection != STORE_COLL_BREAKS || in_range(t, x->last.date) ||
                      (x->first_has_prev && in_range(t, x->first_prev));
        if (report)
            sel[ns++] = x->last;
    }
    if (!rc && ns) {
        qsort(sel, ns, sizeof(*sel), by_version);
        rc = event_bodies(s, t->tenant_id, t->collection, sel, ns, er, bodies);
    }
    for (size_t i = 0; !rc && i < ns; i++) {
        if (i)
            rc = buf_append_char(out, ',');
        rc = rc ? rc : buf_append_str(out, bodies[i]);
    }
    if (!rc) {
        *n_items = ns;
        *cursor = after;
    }
    for (size_t i = 0; bodies && i < ns; i++)
        free(bodies[i]);
    free(bodies);
    free(sel);
    for (size_t i = 0; i < nc; i++)
        free(c[i].last.body);
    free(c);
    imap_deinit(&ix);
    return rc;
}

static const char gone_replaced[] =
    "a newer delta of this client on this collection replaced this one: follow the newer "
    "delta's links";
static const char gone_expired[] =
    "this delta expired: it was not used within the delta lifetime; start a new delta (a "
    "full sync of the range)";
static const char gone_pruned[] =
    "the changes since this token are no longer retained; start a new delta (a full sync "
    "of the range)";

/* What store_delta_touch's refusal means to the client. */
static const char *touch_gone(int rc)
{
    return rc == BH_ECONFLICT ? gone_replaced
           : rc == BH_EGONE || rc == BH_ENOTFOUND ? gone_expired
                                                  : NULL;
}

static void follow_work(http_request_t *req, void *arg)
{
    follow_t *f = arg;
    api_ctx_t *ctx = api_ctx(req);
    f->n_items = 0;
    f->items.len = 0;
    if (f->touch) {
        f->rc = store_delta_touch(ctx->store, f->tok.tenant_id, f->tok.client_id,
                                  f->tok.collection, f->tok.delta_id, f->tok.cursor,
                                  clock_now_ms(ctx->clock), ctx->delta_ttl_ms, NULL);
        if ((f->gone = touch_gone(f->rc)))
            f->rc = 0;
        if (f->rc || f->gone)
            return;
        f->touch = false;
    }
    event_refs_t er = { .refs = &f->refs, .asked = f->asked };
    f->rc = scan(ctx->store, &f->tok, &er, &f->items, &f->n_items, &f->next_cursor);
    if (f->rc == BH_EGONE) {
        f->rc = 0;
        f->gone = gone_pruned;
    }
}

/* The collection's path segment: the continuationToken's collection too. */
static const char *coll_path(store_collection_t coll)
{
    return coll == STORE_COLL_BREAKS ? "breaks" : "break-definitions";
}

static const char *delta_path(store_collection_t coll)
{
    return coll == STORE_COLL_BREAKS ? API_BASE "/delta/breaks"
                                     : API_BASE "/delta/break-definitions";
}

/* Appends "deltaLink":"<path>?deltaToken=<t sealed>". */
static int append_delta_link(api_ctx_t *ctx, const api_delta_token_t *t, buf_t *out)
{
    char *tok = NULL;
    int rc = api_delta_token_seal(ctx->keyring, t, &tok);
    rc = rc ? rc : buf_printf(out, "\"deltaLink\":\"%s?deltaToken=%s\"", delta_path(t->collection),
                              tok);
    free(tok);
    return rc;
}

/* Takes a held f off the held list (the tick stops with the last one). */
static void unhold(follow_t *f)
{
    api_deltas_t *d = f->d;
    TAILQ_REMOVE(&d->held, f, link);
    f->held = false;
    d->n_held--;
    (void)count_add(&d->held_by_client, client_key(f->tok.tenant_id, f->tok.client_id), -1);
    if (!d->n_held)
        uv_timer_stop(&d->tick);
}

/* The request on t's delta has ended (take_busy's counterpart). */
static void drop_busy(api_deltas_t *d, const api_delta_token_t *t)
{
    (void)count_add(&d->busy, id_key(t->delta_id), -1);
}

static void release(follow_t *f)
{
    if (!f->d)
        return;
    if (f->held)
        unhold(f);
    if (f->busy) {
        drop_busy(f->d, &f->tok);
        f->busy = false;
    }
}

/* 410 with reason (a touch_gone or gone_pruned text). */
static void respond_gone(http_request_t *req, const char *reason)
{
    const char *reasons[] = { reason };
    http_respond_error(req, 410, "this delta is gone", reasons, 1);
}

/* Answers the page read last (maybe empty) and its deltaLink. */
static void answer(follow_t *f)
{
    http_request_t *req = f->req;
    release(f);
    buf_t *b = &f->items;
    buf_t out;
    buf_init(&out, b->max);
    f->tok.cursor = f->next_cursor;
    int rc = buf_append_str(&out, "{\"value\":[");
    rc = rc ? rc : buf_append(&out, buf_cstr(b), b->len);
    rc = rc ? rc : buf_append_str(&out, "],");
    rc = rc ? rc : append_delta_link(api_ctx(req), &f->tok, &out);
    rc = rc ? rc : buf_append_char(&out, '}');
    if (f->wait_s) {
        char v[32];
        snprintf(v, sizeof(v), "wait=%d", f->wait_s);
        http_response_header(req, "Preference-Applied", v);
    }
    if (rc)
        http_respond_error(req, 503, "the server is out of memory", NULL, 0);
    else
        api_respond_buf(req, 200, &out);
    buf_deinit(&out);
    buf_deinit(b);
}

static void follow_done(http_request_t *req, void *arg);

/* Starts a read of f (the first, or again after a wake-up); answers on failure. */
static void launch(follow_t *f)
{
    if (f->d)
        f->seq = f->d->seq;
    int rc = f->touch ? api_run_write_job(f->req, follow_work, follow_done, f)
                      : api_run_job(f->req, follow_work, follow_done, f);
    if (rc) {
        release(f);
        buf_deinit(&f->items);
        api_respond_unqueued(f->req, rc, f->touch);
    }
}

static void hold(follow_t *f)
{
    api_deltas_t *d = f->d;
    TAILQ_INSERT_TAIL(&d->held, f, link);
    f->held = true;
    d->n_held++;
    (void)count_add(&d->held_by_client, client_key(f->tok.tenant_id, f->tok.client_id), 1);
    if (!uv_is_active((uv_handle_t *)&d->tick))
        uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
}

/* Whether a commit of f's tenant was notified since its last read started. */
static bool woken_since(const follow_t *f)
{
    const api_deltas_t *d = f->d;
    uint64_t t = (uint64_t)(uintptr_t)imap_get(&d->tenant_seq, f->tok.tenant_id);
    return d->all_seq > f->seq || t > f->seq;
}

static void follow_done(http_request_t *req, void *arg)
{
    follow_t *f = arg;
    if (f->gone || f->rc) {
        release(f);
        buf_deinit(&f->items);
        if (f->gone)
            respond_gone(req, f->gone);
        else
            api_respond_store_error(req, f->rc);
        return;
    }
    api_deltas_t *d = f->d;
    bool wait = f->n_items == 0 && f->wait_s > 0 && d && !d->stopped && !req->aborted &&
                uv_now(d->loop) < f->deadline;
    if (!wait) {
        answer(f);
        return;
    }
    /* Nothing yet: read on from where this read ended, when the tenant commits. */
    f->tok.cursor = f->next_cursor;
    if (woken_since(f))
        launch(f);
    else
        hold(f);
}

static void wake(api_deltas_t *d, bool all, const int64_t *tenants, size_t n)
{
    d->seq++;
    if (all)
        d->all_seq = d->seq;
    for (size_t i = 0; i < n; i++)
        if (!imap_replace(&d->tenant_seq, tenants[i], (void *)(uintptr_t)d->seq) &&
            imap_put(&d->tenant_seq, tenants[i], (void *)(uintptr_t)d->seq))
            d->all_seq = d->seq; /* out of memory: wake everyone rather than miss one */
    follow_t *f, *next;
    for (f = TAILQ_FIRST(&d->held); f; f = next) {
        next = TAILQ_NEXT(f, link);
        if (!woken_since(f))
            continue;
        unhold(f);
        launch(f);
    }
}

static void on_async(uv_async_t *a)
{
    api_deltas_t *d = a->data;
    int64_t tenants[NOTIFY_MAX];
    pthread_mutex_lock(&d->lock);
    size_t n = d->n_notified;
    bool all = d->notified_all;
    memcpy(tenants, d->notified, n * sizeof(tenants[0]));
    d->n_notified = 0;
    d->notified_all = false;
    pthread_mutex_unlock(&d->lock);
    if (n || all)
        wake(d, all, tenants, n);
}

/* Held requests whose wait ran out, or whose client went away, are answered. */
static void on_tick(uv_timer_t *t)
{
    api_deltas_t *d = t->data;
    uint64_t now = uv_now(d->loop);
    follow_t *f, *next;
    for (f = TAILQ_FIRST(&d->held); f; f = next) {
        next = TAILQ_NEXT(f, link);
        if (now >= f->deadline || f->req->aborted)
            answer(f);
    }
}

void api_deltas_stop(api_deltas_t *d)
{
    if (!d || d->stopped)
        return;
    d->stopped = true;
    while (!TAILQ_EMPTY(&d->held))
        answer(TAILQ_FIRST(&d->held));
    if (d->subscribed) {
        store_unsubscribe(d->store, on_commit, d);
        d->subscribed = false;
    }
    if (d->ctx) /* attached: the timer exists */
        uv_timer_stop(&d->tick);
}

/* ---- requests --------------------------------------------------------------- */

/* Prefer: wait=N (RFC 7240 §4.3) among the header's preferences: N seconds, at most
 * API_DELTA_WAIT_MAX_S; 0 when absent or not a number (a preference the server does
 * not understand is ignored, RFC 7240 §2). */
static int prefer_wait(const http_request_t *req)
{
    slice_t h = http_request_header(req, "Prefer");
    const char *p = h.p, *end = h.p ? h.p + h.n : NULL;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (end - p > 5 && !strncasecmp(p, "wait", 4)) {
            const char *q = p + 4;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            if (q < end && *q == '=') {
                q++;
                while (q < end && (*q == ' ' || *q == '\t'))
                    q++;
                long v = 0;
                size_t digits = 0;
                for (; q < end && *q >= '0' && *q <= '9' && digits < 10; q++, digits++)
                    v = v * 10 + (*q - '0');
                if (digits && (q == end || *q == ',' || *q == ';' || *q == ' ' || *q == '\t'))
                    return v > API_DELTA_WAIT_MAX_S ? API_DELTA_WAIT_MAX_S : (int)v;
            }
        }
        while (p < end && *p != ',')
            p++;
    }
    return 0;
}

static void respond_400(http_request_t *req, const char *message, const char *reason)
{
    const char *reasons[] = { reason };
    http_respond_error(req, 400, message, reasons, 1);
}

/* Opens the request's deltaToken for c's client and coll; answers 400 and returns
 * false when it is missing, not valid, or another tenant's, client's or
 * collection's. */
static bool read_token(http_request_t *req, const auth_claims_t *c, store_collection_t coll,
                       api_delta_token_t *t)
{
    const char *tok;
    if (!http_request_query(req, "deltaToken", &tok) || !*tok) {
        respond_400(req, "missing deltaToken",
                    "deltaToken: follow the deltaLink of the delta's last answer");
        return false;
    }
    const char *why = api_delta_token_open(api_ctx(req)->keyring, tok, strlen(tok), t);
    if (why) {
        respond_400(req, "invalid deltaToken", why);
        return false;
    }
    if (t->tenant_id != c->tenant_id || strcmp(t->client_id, c->client_id) != 0) {
        respond_400(req, "invalid deltaToken",
                    "the deltaToken belongs to another client: a delta is followed by the "
                    "client that started it");
        return false;
    }
    if (t->collection != coll) {
        respond_400(req, "invalid deltaToken", "the deltaToken belongs to another collection");
        return false;
    }
    return true;
}

/* Marks t's delta busy; answers 409 and returns false when a request on it runs. */
static bool take_busy(http_request_t *req, api_deltas_t *d, const api_delta_token_t *t)
{
    if (!d)
        return true;
    int64_t key = id_key(t->delta_id);
    if (imap_get(&d->busy, key)) {
        const char *reasons[] = {
            "another request on this delta is still running (a held long poll counts): "
            "send one request at a time"
        };
        http_respond_error(req, 409, "concurrency conflict", reasons, 1);
        return false;
    }
    if (count_add(&d->busy, key, 1)) {
        http_respond_error(req, 503, "the server is out of memory", NULL, 0);
        return false;
    }
    return true;
}

/* Parses the externalReferences a token carries (checked when the delta started). */
static bool token_refs(http_request_t *req, const api_delta_token_t *t, extref_list_t *refs,
                       bool *asked)
{
    refs->items = NULL;
    refs->n = 0;
    *asked = t->extrefs[0] != '\0';
    char err[EXTREF_ERR_MAX];
    if (*asked &&
        extref_parse(t->extrefs, strlen(t->extrefs), &req->arena, refs, err, sizeof(err))) {
        respond_400(req, "invalid deltaToken", token_invalid);
        return false;
    }
    return true;
}

static void delta_follow(http_request_t *req, store_collection_t coll, const char *scope)
{
    const auth_claims_t *c = api_authorize(req, scope);
    if (!c)
        return;
    api_ctx_t *ctx = api_ctx(req);
    api_deltas_t *d = ctx->deltas;
    follow_t *f = arena_alloc(&req->arena, sizeof(*f));
    if (!f) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(f, 0, sizeof(*f));
    f->req = req;
    if (!read_token(req, c, coll, &f->tok) || !token_refs(req, &f->tok, &f->refs, &f->asked))
        return;
    f->wait_s = d && !d->stopped ? prefer_wait(req) : 0;
    if (f->wait_s) {
        if ((size_t)(intptr_t)imap_get(&d->held_by_client, client_key(c->tenant_id,
                                                                      c->client_id)) >=
            d->max_held_per_client) {
            const char *reasons[] = { "this client already has as many long polls held as "
                                      "allowed (--long-poll-per-client)" };
            http_response_header(req, "Retry-After", "1");
            http_respond_error(req, 429, "too many long polls", reasons, 1);
            return;
        }
        if (d->n_held >= d->max_held) {
            const char *reasons[] = { "the server holds as many long polls as allowed "
                                      "(--long-poll-max): try again, or poll without wait" };
            http_response_header(req, "Retry-After", "1");
            http_respond_error(req, 503, "too many long polls", reasons, 1);
            return;
        }
        f->deadline = uv_now(d->loop) + (uint64_t)f->wait_s * 1000;
    }
    if (!take_busy(req, d, &f->tok))
        return;
    f->d = d;
    f->busy = d != NULL;
    f->touch = true;
    f->next_cursor = f->tok.cursor;
    buf_init(&f->items, 64 << 20);
    launch(f);
}

void api_delta_breaks(http_request_t *req)
{
    delta_follow(req, STORE_COLL_BREAKS, SCOPE_BREAKS_READ);
}

void api_delta_definitions(http_request_t *req)
{
    delta_follow(req, STORE_COLL_DEFINITIONS, SCOPE_BREAK_DEFINITIONS_READ);
}

/* ---- the initial load ---------------------------------------------------------- */

typedef struct initial {
    api_deltas_t *d;
    api_delta_token_t tok;
    bool start;                    /* the first page: start the delta */
    bool busy;
    api_cursor_t cur;              /* the page starts after it (has_cur) */
    bool has_cur;
    size_t limit;
    extref_list_t refs;
    bool asked;
    int rc;
    const char *gone;
    buf_t out;
    bool more;
    api_cursor_t next;
} initial_t;

static void initial_work(http_request_t *req, void *arg)
{
    initial_t *j = arg;
    api_ctx_t *ctx = api_ctx(req);
    store_t *s = ctx->store;
    int64_t now = clock_now_ms(ctx->clock);
    if (j->start) {
        store_delta_t sd;
        memset(&sd, 0, sizeof(sd));
        memcpy(sd.id, j->tok.delta_id, sizeof(sd.id));
        snprintf(sd.client_id, sizeof(sd.client_id), "%s", j->tok.client_id);
        sd.collection = j->tok.collection;
        sd.date_from = j->tok.date_from;
        sd.date_to = j->tok.date_to;
        sd.created_at_ms = now;
        j->rc = store_delta_start(s, j->tok.tenant_id, &sd);
        if (j->rc)
            return;
        j->tok.cursor = sd.start_version;
    } else {
        j->rc = store_delta_touch(s, j->tok.tenant_id, j->tok.client_id, j->tok.collection,
                                  j->tok.delta_id, j->tok.cursor, now, ctx->delta_ttl_ms, NULL);
        if ((j->gone = touch_gone(j->rc)))
            j->rc = 0;
        if (j->rc || j->gone)
            return;
    }
    if (j->tok.collection == STORE_COLL_BREAKS) {
        store_breaks_query_t q = { .date_from = j->tok.date_from, .date_to = j->tok.date_to,
                                   .has_after = j->has_cur, .after_date = (int32_t)j->cur.a,
                                   .after_id = j->cur.b, .limit = j->limit };
        j->rc = api_breaks_page(s, j->tok.tenant_id, &q, &j->refs, j->asked, &j->out, &j->more,
                                &j->next);
    } else {
        j->rc = api_definitions_page(s, j->tok.tenant_id, j->has_cur ? j->cur.a : 0, j->limit,
                                     &j->out, &j->more, &j->next);
    }
}

static void initial_done(http_request_t *req, void *arg)
{
    initial_t *j = arg;
    api_ctx_t *ctx = api_ctx(req);
    if (j->busy)
        drop_busy(j->d, &j->tok);
    if (j->gone) {
        respond_gone(req, j->gone);
        buf_deinit(&j->out);
        return;
    }
    int rc = j->rc;
    char *tok = NULL;
    rc = rc ? rc : buf_append_char(&j->out, ']');
    if (!rc && j->more) {
        rc = api_delta_token_seal(ctx->keyring, &j->tok, &tok);
        rc = rc ? rc : api_next_link_with(req, coll_path(j->tok.collection), &j->next,
                                          "deltaToken", tok, &j->out);
    } else if (!rc) {
        rc = buf_append_char(&j->out, ',');
        rc = rc ? rc : append_delta_link(ctx, &j->tok, &j->out);
    }
    rc = rc ? rc : buf_append_char(&j->out, '}');
    free(tok);
    if (rc)
        api_respond_store_error(req, rc);
    else
        api_respond_buf(req, 200, &j->out);
    buf_deinit(&j->out);
}

void api_delta_initial(http_request_t *req, const auth_claims_t *c, store_collection_t coll,
                       int32_t date_from, int32_t date_to)
{
    api_ctx_t *ctx = api_ctx(req);
    initial_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    j->d = ctx->deltas;
    const char *v, *name = coll_path(coll);
    if (!(j->limit = api_page_size(req)))
        return;
    int have = api_cursor_read(req, name, &j->cur);
    if (have < 0)
        return;
    bool has_token = http_request_query(req, "deltaToken", &v);
    if (have && !has_token) {
        respond_400(req, "missing deltaToken",
                    "a delta's continuationToken goes with its deltaToken: follow the nextLink "
                    "as given");
        return;
    }
    if (!have && has_token) {
        respond_400(req, "unexpected deltaToken",
                    "a deltaToken is followed at /delta/breaks or /delta/break-definitions; "
                    "start a new delta without one");
        return;
    }
    if (have) {
        /* A page after the first: the delta the first page started. */
        if (!read_token(req, c, coll, &j->tok) ||
            !token_refs(req, &j->tok, &j->refs, &j->asked))
            return;
        if (j->tok.date_from != date_from || j->tok.date_to != date_to) {
            respond_400(req, "invalid deltaToken", "the deltaToken belongs to another filter");
            return;
        }
        if (!take_busy(req, j->d, &j->tok))
            return;
        j->busy = j->d != NULL;
        j->has_cur = true;
    } else {
        const char *refs = NULL;
        if (!http_request_query(req, "externalReferences", &refs))
            refs = "";
        if (strlen(refs) > API_DELTA_EXTREFS_MAX) {
            char reason[128];
            snprintf(reason, sizeof(reason),
                     "externalReferences: a delta keeps at most %d bytes of it",
                     API_DELTA_EXTREFS_MAX);
            respond_400(req, "invalid externalReferences", reason);
            return;
        }
        if (rand_hex(ctx->rand, j->tok.delta_id, STORE_DELTA_ID_LEN / 2)) {
            http_respond_error(req, 503, "the server could not make a random id", NULL, 0);
            return;
        }
        j->tok.tenant_id = c->tenant_id;
        j->tok.collection = coll;
        snprintf(j->tok.client_id, sizeof(j->tok.client_id), "%s", c->client_id);
        j->tok.date_from = date_from;
        j->tok.date_to = date_to;
        if (coll == STORE_COLL_BREAKS) /* definitions embed no references */
            snprintf(j->tok.extrefs, sizeof(j->tok.extrefs), "%s", refs);
        if (!token_refs(req, &j->tok, &j->refs, &j->asked))
            return;
        j->start = true;
    }
    buf_init(&j->out, 256 << 20);
    int rc = api_run_write_job(req, initial_work, initial_done, j);
    if (rc) {
        if (j->busy)
            drop_busy(j->d, &j->tok);
        buf_deinit(&j->out);
        api_respond_unqueued(req, rc, true);
    }
}
