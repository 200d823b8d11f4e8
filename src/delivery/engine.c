/*
 * engine.c: the delivery engine's I/O glue: scans, turns, attempts, batched commits.
 * The states of a record's lane and of a webhook's breaker are lane.c's and
 * breaker.c's; this file carries out what their transitions ask.
 *
 * Everything here runs on the engine thread's loop except the jobs handed to the
 * worker pool (store reads and commits), whose results come back to the loop.
 *
 *   refresh (every refresh_ms)  store_webhooks_active -> add new webhooks, drop gone
 *   scan (a commit of the       store_changes_after -> lanes (coalescing); only the
 *     webhook's tenant; poll)   committing tenant's webhooks (by_tenant, to_scan)
 *   dispatch (completion, tick) per host with free slots, its webhooks with a ready
 *                               lane in turn, one attempt each, if the webhook's
 *                               breaker admits -> signed POST -> hc_send
 *   done                        2xx: ack; 410: disable; else retry later or give up
 *   flush (tick)                the touched webhooks' attempts, acks, watermarks ->
 *                               store_delivery_commit
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "delivery/engine.h"

#include <jansson.h>
#include <malloc.h> /* malloc_trim (glibc) */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <uv.h>

#include "client/hc_pool.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/imap.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/workpool.h"
#include "delivery/breaker.h"
#include "delivery/event.h"
#include "delivery/lane.h"
#include "delivery/sign.h"
#include "model/model.h"

#define TICK_MS 20
#define SCAN_BATCH 500
#define FLUSH_MS 100
#define FLUSH_MAX 2000
#define BREAKER_PAUSE_MAX_MS (5 * 60 * 1000)
/* An attempt that could not even be sent (no memory, signing failed) is tried again
 * after this pause, without counting as a failure. */
#define START_RETRY_MS 1000
#define SNAPSHOT_MS 1000         /* the gauges of /metrics are this old at most */
#define TOP_TENANTS 10           /* tenants with a pending series of their own */
#define FAIL_LOG_WINDOW_MS 10000 /* failed-attempt lines: at most FAIL_LOG_BURST per */
#define FAIL_LOG_BURST 10        /* destination per window; the rest are counted */
/* Finished attempts kept for the next ones: an attempt is ~4.6 KB (its result holds
 * the answer's excerpt), above malloc's per-thread caches, and allocating one per
 * delivery showed in the delivery profile. At least the default in-flight cap twice
 * over, so a busy destination reuses its own. */
#define ATTEMPT_SPARE_MAX 64

typedef struct wh wh_t;
typedef struct dest dest_t;

/* A lane (delivery/lane.h) is the webhook's: lane_t.owner is its wh_t, or NULL once
 * the webhook dropped its lanes while this one had an attempt in flight (the attempt
 * then frees it). next_ready links the webhook's ready list (READY lanes only);
 * delayed_ix is index + 1 in its delayed list (DELAYED lanes), 0 when not in it. */

/* A host (scheme://host:port) that webhooks deliver to. The in-flight cap protects
 * the host and is shared in turns: the webhooks with a lane ready for it queue in
 * `run`, each starts one attempt and goes to the back, so a busy or failing webhook
 * cannot take every slot while another one waits. The circuit breaker is not here
 * but the webhook's: one tenant's failing URL does not pause another's on the same
 * host. */
struct dest {
    char key[280];             /* scheme://host:port */
    size_t inflight;
    TAILQ_HEAD(, wh) run;      /* webhooks with a ready lane, in turn order */
    bool busy;                 /* in the engine's busy list (run not empty) */
    TAILQ_ENTRY(dest) busy_link;
    /* Failed-attempt log lines: at most FAIL_LOG_BURST per FAIL_LOG_WINDOW_MS; the
     * lines left out are counted and reported on the next line written. */
    int64_t log_window_ms;
    int log_lines;
    uint64_t log_suppressed;
    dest_t *next;
    dest_t *hash_next;         /* the same key hash (the engine's by_dest) */
};

typedef struct attempt {
    hc_request_t req;          /* first: the request's data points here */
    wh_t *wh;                  /* kept alive while it has attempts in flight */
    lane_t *lane;
    event_t *ev;
    bool probe;                /* the breaker's half-open probe */
    const char *headers[5];
    char id[64];               /* the webhook-id header's value */
    char hbuf[64 + 80 + 48 + SIGN_V1_LEN + 32]; /* the header lines headers[] point into */
    int number;
    int64_t started_ms;
    struct attempt *spare_next; /* the engine's spare list, while unused */
} attempt_t;

/* Counters and histograms: the engine thread adds, a scrape reads (atomics). */
enum { OUT_SUCCESS, OUT_HTTP_ERROR, OUT_GONE, OUT_TIMEOUT, OUT_NETWORK_ERROR, OUT_COUNT };
static const char *outcome_names[OUT_COUNT] = { "success", "http_error", "gone", "timeout",
                                                "network_error" };

typedef struct engine_metrics {
    metrics_counter_t outcome[OUT_COUNT];
    metrics_counter_t retries;   /* failed attempts scheduled to be tried again */
    metrics_counter_t given_up;  /* events given up: 410, or the last retry failed */
    metrics_hist_t latency;      /* commit -> 2xx, ns */
    metrics_hist_t attempt;      /* one attempt, ns */
} engine_metrics_t;

/* The gauges, computed on the engine loop every SNAPSHOT_MS from its own memory and
 * read by a scrape under snap_lock. */
typedef struct tenant_pending {
    int64_t tenant_id;
    char name[STORE_NAME_MAX];
    uint64_t pending;
    int64_t oldest_us;           /* 0: none pending */
} tenant_pending_t;

typedef struct engine_snapshot {
    uint64_t enabled, expiring_1d, expiring_7d, paused;
    uint64_t pending;
    uint64_t in_memory;          /* events held in memory (the budget's use) */
    int64_t oldest_us;
    tenant_pending_t top[TOP_TENANTS];
    size_t n_top;
} engine_snapshot_t;

/* What the engine keeps of a webhook's row: not the 4.6 KB store_webhook_t (its
 * sealed key is opened into wh_t.key, its externalReferences parsed into refs). */
typedef struct wh_row {
    char id[STORE_WEBHOOK_ID_LEN + 1];
    int64_t tenant_id;
    store_collection_t collection;
    char *destination_url;     /* malloc'd */
    uint64_t until_version;    /* 0 while Enabled */
    int64_t valid_until_ms;
} wh_row_t;

struct wh {
    wh_row_t row;
    unsigned char key[CRYPTO_WEBHOOK_KEY_LEN];
    sign_key_t *signer;        /* the key prepared for signing, made at the first
                                  attempt (idle webhooks never pay for it) */
    dest_t *dest;
    breaker_t breaker;         /* this webhook's URL's (delivery/breaker.h) */
    bool runnable;             /* in dest->run */
    TAILQ_ENTRY(wh) run_link;
    bool timed;                /* in the engine's timed list: lanes waiting for a
                                  retry time, or the breaker open */
    TAILQ_ENTRY(wh) timed_link;
    bool listed;               /* in the engine's scan list (dirty or more) */
    TAILQ_ENTRY(wh) scan_link;
    TAILQ_ENTRY(wh) touched_link;
    wh_t *tenant_next;         /* the engine's webhooks of the same tenant */
    uint64_t poll_hash;        /* its id's hash: which step of the poll reads it */
    wh_t *id_next;             /* the same id hash (the engine's by_id) */
    imap_t lanes;              /* record id -> lane_t* */
    imap_t acked;              /* record id -> acked version (cast), above the watermark */
    /* Recovery after a restart: for changes up to recovery_head (the log's head when
     * the webhook was loaded) only each record's newest version is sent. Acks of the
     * last moments before a crash may be lost; without this, a record's older state
     * could follow a newer one the consumer had already acknowledged. Not with
     * --coalesce=false: every change is owed there, and a lost ack only repeats an
     * older version after its first delivery, never sends one first after a newer. */
    imap_t latest;             /* record id -> newest version <= recovery_head; empty
                                  without coalescing */
    uint64_t recovery_head;
    /* Records that were waiting for a retry when the engine stopped: their lanes
     * resume the retry count and time (record id -> index + 1 into retry_v). */
    imap_t retrying;
    store_retrying_t *retry_v;
    lane_t *ready_head, *ready_tail;
    uint64_t scan_cursor;      /* changes up to here are in lanes or skipped */
    uint64_t watermark;        /* last persisted last_delivered_version */
    bool scanning, more, dirty, dead, seen;
    int64_t last_success_ms, last_failure_ms;
    bool touched;              /* has results to commit: in the engine's touched list */
    /* The external references its deliveries embed (its externalReferences, in
     * order; n = 0: none), names malloc'd; read-only once loaded, so scan jobs share
     * them. */
    extref_t *ref_items;
    extref_list_t refs;
    size_t in_flight;
    /* Lanes waiting for a retry time, and the earliest of those times: wake_due looks
     * at these only, and only once that time has come (walking every lane on every
     * dispatch cost a hung destination's neighbours their latency). */
    lane_t **delayed;
    size_t n_delayed, cap_delayed;
    int64_t next_due_ms;
    size_t n_waiting;          /* events waiting in lanes; with in_flight, what it holds
                                  of the memory budget (wh_held) */
    uint64_t head;             /* the tenant's last version when a scan last filled up */
    /* The lowest version pending in any lane (UINT64_MAX: none), kept while lanes are
     * only added (a new change's version is above everything already in lanes) and
     * recomputed by walking the lanes only after one's lowest version rose or a lane
     * went: a destination that accepts nothing no longer costs a walk of its up to
     * --max-pending-in-memory lanes at every flush. */
    uint64_t min_v;
    bool min_known;
    wh_t *next;
};

struct engine {
    engine_options_t o;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake_async, stop_async;
    uv_timer_t tick;
    uv_prepare_t log_prepare;  /* flushes the thread's batched log lines (one line per
                                  attempt) before the loop waits for I/O */
    hc_pool_t *http;
    workpool_t *writes;        /* the engine's store writes (flush, disable) */
    wh_t *whs;
    dest_t *dests;
    TAILQ_HEAD(, dest) busy;   /* hosts with a webhook waiting for a turn */
    TAILQ_HEAD(, wh) timed;    /* webhooks with something due at a time */
    TAILQ_HEAD(, wh) to_scan;  /* webhooks with changes to read (dirty or more) */
    TAILQ_HEAD(, wh) touched;  /* webhooks with results to commit */
    imap_t by_tenant;          /* tenant id -> its first webhook (tenant_next) */
    imap_t by_id;              /* hash of the id -> first webhook with it (id_next) */
    imap_t by_dest;            /* hash of the host key -> first dest with it */
    /* Tenants whose commits woke the engine, handed over by on_commit (store's writer)
     * to the loop under wake_lock; all_dirty: every webhook (another process wrote,
     * or the list overflowed). */
    pthread_mutex_t wake_lock;
    int64_t wake_tenants[64];
    size_t n_wake;
    bool all_dirty;
    bool webhooks_changed;     /* a webhook was created or disabled: refresh now */
    bool refresh_wanted;       /* the loop's copy, until a refresh starts */
    /* The memory budget (o.max_pending): the events all webhooks hold (waiting or in
     * flight), and the share one may read up to, recomputed every SNAPSHOT_MS from
     * the number of webhooks with work. */
    size_t held;
    size_t reserved;           /* the limits of the scans in flight (read, not yet held) */
    size_t share;
    /* The acks' webhooks, parallel to acks (alive until the flush: touched). */
    wh_t **ack_whs;
    bool stopping, refreshing, flushing;
    bool dispatching, dispatch_again; /* dispatch is not re-entered, it loops instead */
    int64_t last_refresh_ms, last_poll_ms, last_flush_ms;
    /* results waiting to be committed */
    store_attempt_t *attempts;
    size_t n_attempts, cap_attempts;
    /* The array the last flush job gave back: two arrays take turns, so a busy
     * engine does not map and unmap megabytes ten times a second. */
    store_attempt_t *spare;
    size_t cap_spare;
    struct store_ack *acks;
    size_t n_acks, cap_acks;
    engine_metrics_t m;
    attempt_t *spare_attempts; /* ATTEMPT_SPARE_MAX at most (n_spare_attempts) */
    size_t n_spare_attempts;
    imap_t tenant_names;       /* tenant id -> name (malloc'd), for metric labels */
    bool want_names;           /* a tenant without a name: the next refresh reads them */
    int64_t last_snapshot_ms;
    pthread_mutex_t snap_lock; /* guards snap */
    engine_snapshot_t snap;
    uv_sem_t started;
    int start_rc;
};

static void dispatch(engine_t *e);
static void scan(engine_t *e, wh_t *w);
static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what);

/* Commit -> 2xx, in nanoseconds: 0.25 ms … 1 day, fine below 30 ms where the SPEC's
 * target (p99 <= 20 ms at 1,000 events/s) is read by interpolation. */
static const uint64_t latency_bounds[] = {
    250000,       500000,       750000,        1000000,       1500000,      2000000,
    2500000,      3000000,      4000000,       5000000,       7500000,      10000000,
    15000000,     20000000,     30000000,      50000000,      100000000,    250000000,
    500000000,    1000000000,   2500000000,    5000000000,    10000000000,  30000000000,
    60000000000,  300000000000, 1800000000000, 3600000000000, 21600000000000, 86400000000000,
};
/* One attempt, in nanoseconds: 0.5 ms … 30 s. */
static const uint64_t attempt_bounds[] = {
    500000,     1000000,    2500000,    5000000,    10000000,   25000000,   50000000, 100000000,
    250000000,  500000000,  1000000000, 2500000000, 5000000000, 10000000000, 30000000000,
};

void engine_options_default(engine_options_t *o)
{
    memset(o, 0, sizeof(*o));
    retry_policy_default(&o->retry);
    o->timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->max_inflight_per_dest = 16;
    o->max_pending = 20000;
    /* A safety net only: commits wake the engine (store_subscribe), per tenant, and
     * the store notices another process's commits itself. Reading every webhook's
     * change log four times a second cost thousands of idle webhooks their scans. */
    o->poll_ms = 30000;
    /* Also a safety net: the store says when a webhook is created or disabled
     * (STORE_COMMIT_WEBHOOKS) and expiry is checked in memory once a second. Reading
     * every Enabled row each second cost thousands of webhooks 4.6 KB each. */
    o->refresh_ms = 60000;
    o->breaker_threshold = 10;
    o->breaker_pause_ms = 5000;
    o->coalesce = true;
    o->log_attempts = true;
}

static int64_t now_ms(engine_t *e)
{
    return clock_now_ms(e->o.clock);
}

/* Intervals (poll, refresh, flush) follow the monotonic clock, so a wall-clock
 * step does not stall them. */
static int64_t mono_ms(engine_t *e)
{
    return clock_mono_ms(e->o.clock);
}

/* The webhook-id header: unique per webhook and change, the same on every retry and
 * after a restart: "evt_<version>_<webhook id without dashes>". Returns its length. */
static size_t event_id(const wh_t *w, uint64_t version, char out[64])
{
    memcpy(out, "evt_", 4);
    char v[MODEL_VERSION_LEN + 1];
    model_version_format(version, v);
    memcpy(out + 4, v, MODEL_VERSION_LEN);
    size_t k = 4 + MODEL_VERSION_LEN;
    out[k++] = '_';
    size_t hex = 0;
    for (const char *p = w->row.id; *p && hex < 32; p++)
        if (*p != '-') {
            out[k++] = *p;
            hex++;
        }
    out[k] = '\0';
    return k;
}

/* Decimal digits of v into out (no NUL); returns how many (at most 20). */
static size_t fmt_u64(uint64_t v, char out[24])
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* ---- destinations and the breaker ---------------------------------------- */

/* A string's hash as an imap key. */
static int64_t str_key(const char *str)
{
    return (int64_t)hash_str(str);
}

static dest_t *dest_get(engine_t *e, const char *url)
{
    char key[280];
    dest_url_t u;
    char why[DEST_WHY_MAX];
    if (dest_url_parse(url, strlen(url), true, &u, why, sizeof(why)) == 0)
        snprintf(key, sizeof(key), "%s://%.200s:%d", u.scheme, u.host, u.port);
    else
        snprintf(key, sizeof(key), "%.270s", url);
    int64_t hk = str_key(key);
    dest_t *first = imap_get(&e->by_dest, hk);
    for (dest_t *d = first; d; d = d->hash_next)
        if (!strcmp(d->key, key))
            return d;
    dest_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (imap_put(&e->by_dest, hk, d)) {
        free(d);
        return NULL;
    }
    d->hash_next = first;
    snprintf(d->key, sizeof(d->key), "%s", key);
    TAILQ_INIT(&d->run);
    d->next = e->dests;
    e->dests = d;
    return d;
}

/* ---- the engine's indexes and work lists ------------------------------------ *
 * So that a commit, a completion or a tick costs what it has to do, not a walk of
 * every webhook: a commit marks only its tenant's webhooks (by_tenant), the tick reads
 * the change log only for the webhooks in to_scan, a flush commits only those in
 * touched, and a refresh finds a webhook by its id (by_id). */

static void scan_list_add(engine_t *e, wh_t *w)
{
    if (w->listed || w->dead)
        return;
    TAILQ_INSERT_TAIL(&e->to_scan, w, scan_link);
    w->listed = true;
}

static void scan_list_remove(engine_t *e, wh_t *w)
{
    if (!w->listed)
        return;
    TAILQ_REMOVE(&e->to_scan, w, scan_link);
    w->listed = false;
}

/* New changes may wait in w's window. */
static void mark_dirty(engine_t *e, wh_t *w)
{
    w->dirty = true;
    scan_list_add(e, w);
}

/* w has results (attempts, acks, a watermark) for the next flush. */
static void mark_touched(engine_t *e, wh_t *w)
{
    if (w->touched)
        return;
    TAILQ_INSERT_TAIL(&e->touched, w, touched_link);
    w->touched = true;
}

static int wh_index(engine_t *e, wh_t *w)
{
    int64_t k = str_key(w->row.id);
    wh_t *first_id = imap_get(&e->by_id, k);
    wh_t *first_tenant = imap_get(&e->by_tenant, w->row.tenant_id);
    if (imap_put(&e->by_id, k, w))
        return BH_ENOMEM;
    if (imap_put(&e->by_tenant, w->row.tenant_id, w)) {
        if (!imap_replace(&e->by_id, k, first_id))
            imap_del(&e->by_id, k);
        return BH_ENOMEM;
    }
    w->id_next = first_id;
    w->tenant_next = first_tenant;
    return 0;
}

/* Takes w out of a chain whose head is the map's value at key. */
static void chain_remove(imap_t *m, int64_t key, wh_t *w, size_t next_off)
{
    wh_t **pp = NULL;
    wh_t *head = imap_get(m, key);
    if (head == w) {
        wh_t *next = *(wh_t **)((char *)w + next_off);
        if (next)
            imap_replace(m, key, next);
        else
            imap_del(m, key);
        return;
    }
    for (wh_t *p = head; p; p = *pp) {
        pp = (wh_t **)((char *)p + next_off);
        if (*pp == w) {
            *pp = *(wh_t **)((char *)w + next_off);
            return;
        }
    }
}

static void wh_unindex(engine_t *e, wh_t *w)
{
    chain_remove(&e->by_id, str_key(w->row.id), w, offsetof(wh_t, id_next));
    chain_remove(&e->by_tenant, w->row.tenant_id, w, offsetof(wh_t, tenant_next));
}

/* ---- turns: which webhook sends next --------------------------------------- */

static void timed_add(engine_t *e, wh_t *w)
{
    if (w->timed)
        return;
    TAILQ_INSERT_TAIL(&e->timed, w, timed_link);
    w->timed = true;
}

static void timed_remove(engine_t *e, wh_t *w)
{
    if (!w->timed)
        return;
    TAILQ_REMOVE(&e->timed, w, timed_link);
    w->timed = false;
}

static void run_remove(wh_t *w)
{
    if (!w->runnable)
        return;
    TAILQ_REMOVE(&w->dest->run, w, run_link);
    w->runnable = false;
}

/* The webhook may have a lane ready: it queues for a turn at its host, unless its
 * breaker holds it back (OPEN: the timed list brings it back when the pause ends;
 * HALF_OPEN: the probe's result does). */
static void wh_poke(engine_t *e, wh_t *w)
{
    if (w->runnable || w->dead || !w->ready_head || w->breaker.state == BREAKER_HALF_OPEN)
        return;
    if (w->breaker.state == BREAKER_OPEN && now_ms(e) < w->breaker.until_ms) {
        timed_add(e, w);
        return;
    }
    dest_t *d = w->dest;
    TAILQ_INSERT_TAIL(&d->run, w, run_link);
    w->runnable = true;
    if (!d->busy) {
        TAILQ_INSERT_TAIL(&e->busy, d, busy_link);
        d->busy = true;
    }
}

/* The result of an attempt of w for its breaker; ok: an answer that counts as one
 * (2xx, or 410). */
static void wh_breaker_result(engine_t *e, wh_t *w, bool ok)
{
    breaker_config_t c = { .threshold = e->o.breaker_threshold,
                           .pause_ms = e->o.breaker_pause_ms,
                           .pause_max_ms = BREAKER_PAUSE_MAX_MS };
    switch (breaker_result(&w->breaker, &c, ok, now_ms(e))) {
    case BREAKER_OPENED:
        log_warn("destination paused", LOG_STR("webhook", w->row.id),
                 LOG_STR("destination", w->dest->key), LOG_INT("failures", w->breaker.failures),
                 LOG_INT("pause_ms", w->breaker.pause_ms));
        run_remove(w);
        timed_add(e, w);
        break;
    case BREAKER_CLOSED_AGAIN:
        log_info("destination resumed", LOG_STR("webhook", w->row.id),
                 LOG_STR("destination", w->dest->key));
        break;
    case BREAKER_UNCHANGED:
        break;
    }
}

/* ---- lanes: the webhook's lists, moved by the lanes' transitions ---------- */

/* Only READY lanes are in the ready list, each once: a lane is scheduled only from
 * IDLE, DELAYED or INFLIGHT, none of which is in it. */
static void ready_push(wh_t *w, lane_t *l)
{
    l->next_ready = NULL;
    if (w->ready_tail)
        w->ready_tail->next_ready = l;
    else
        w->ready_head = l;
    w->ready_tail = l;
}

static lane_t *ready_pop(wh_t *w)
{
    lane_t *l = w->ready_head;
    if (!l)
        return NULL;
    w->ready_head = l->next_ready;
    if (!w->ready_head)
        w->ready_tail = NULL;
    return l;
}

static void delayed_remove(wh_t *w, lane_t *l)
{
    if (!l->delayed_ix)
        return;
    size_t i = l->delayed_ix - 1;
    lane_t *last = w->delayed[--w->n_delayed];
    w->delayed[i] = last;
    last->delayed_ix = i + 1;
    l->delayed_ix = 0;
}

/* The lane waits until l->next_at_ms; false when the list cannot grow. */
static bool delayed_add(wh_t *w, lane_t *l)
{
    if (l->next_at_ms < w->next_due_ms)
        w->next_due_ms = l->next_at_ms;
    if (l->delayed_ix)
        return true;
    if (w->n_delayed == w->cap_delayed) {
        size_t cap = w->cap_delayed ? w->cap_delayed * 2 : 64;
        lane_t **p = realloc(w->delayed, cap * sizeof(*p));
        if (!p)
            return false;
        w->delayed = p;
        w->cap_delayed = cap;
    }
    w->delayed[w->n_delayed++] = l;
    l->delayed_ix = w->n_delayed;
    return true;
}

static void lane_free(lane_t *l)
{
    /* An in-flight event belongs to its attempt until the attempt ends. */
    lane_clear(l);
    free(l);
}

/* Carries out a transition's action on the webhook's lists and counts; waiting_before
 * is l->n_waiting before the transition. */
static void lane_apply(engine_t *e, wh_t *w, lane_t *l, lane_step_t st, size_t waiting_before)
{
    w->n_waiting = w->n_waiting + l->n_waiting - waiting_before;
    e->held = e->held + l->n_waiting - waiting_before;
    if (st.released)
        w->min_known = false; /* the lane's lowest version may have risen */
    switch (st.action) {
    case LANE_KEEP:
        break;
    case LANE_SCHEDULE:
        delayed_remove(w, l);
        ready_push(w, l);
        wh_poke(e, w);
        break;
    case LANE_DELAY:
        if (delayed_add(w, l)) {
            timed_add(e, w);
        } else {
            /* No room to wait: due now instead (an early retry, never a lost one). */
            l->next_at_ms = now_ms(e);
            lane_apply(e, w, l, lane_due(l, l->next_at_ms), l->n_waiting);
        }
        break;
    case LANE_UNLIST:
        delayed_remove(w, l); /* never in the ready list: it was taken from it to start */
        break;
    case LANE_RELEASE:
        delayed_remove(w, l);
        imap_del(&w->lanes, l->record_id);
        lane_free(l);
        break;
    }
}

/* Adds a change to its record's lane (a new one, resuming a retry kept across a
 * restart, when the record has none). */
static void lane_add_event(engine_t *e, wh_t *w, int64_t record_id, event_t *ev)
{
    lane_t *l = imap_get(&w->lanes, record_id);
    if (!l) {
        l = malloc(sizeof(*l));
        if (!l || imap_put(&w->lanes, record_id, l)) {
            free(l);
            event_free(ev);
            w->more = true; /* read it again later */
            return;
        }
        lane_init(l, record_id);
        l->owner = w;
        uintptr_t k = (uintptr_t)imap_get(&w->retrying, record_id);
        if (k) {
            lane_restore(l, w->retry_v[k - 1].attempt, w->retry_v[k - 1].next_attempt_at_ms);
            imap_del(&w->retrying, record_id);
        }
    }
    size_t before = l->n_waiting;
    lane_apply(e, w, l, lane_add(l, ev, e->o.coalesce, now_ms(e)), before);
    uint64_t low = lane_lowest(l);
    if (w->min_known && low && low < w->min_v)
        w->min_v = low;
}

/* READY -> INFLIGHT: the event to send (NULL when the lane is not READY). */
static event_t *lane_take(engine_t *e, wh_t *w, lane_t *l, int64_t now)
{
    size_t before = l->n_waiting;
    event_t *ev = lane_start(l, now);
    w->n_waiting -= before - l->n_waiting;
    e->held -= before - l->n_waiting;
    return ev;
}

static void min_pending(int64_t key, void *value, void *arg)
{
    uint64_t *m = arg;
    (void)key;
    uint64_t v = lane_lowest(value);
    if (v && v < *m)
        *m = v;
}

/* The lowest version still owed to the destination, minus one: every event at or
 * below it was delivered or replaced by a newer one of its record. */
static uint64_t wh_watermark(wh_t *w)
{
    if (!w->min_known) {
        w->min_v = UINT64_MAX;
        imap_each(&w->lanes, min_pending, &w->min_v);
        w->min_known = true;
    }
    uint64_t m = w->scan_cursor;
    if (w->min_v != UINT64_MAX && w->min_v - 1 < m)
        m = w->min_v - 1;
    return m;
}

static void free_lane_cb(int64_t key, void *value, void *arg)
{
    (void)key, (void)arg;
    lane_t *l = value;
    if (l->inflight) {
        /* The attempt still owns its event and points to the lane: detach. */
        l->owner = NULL;
        return;
    }
    lane_free(l);
}

static void wh_drop_lanes(engine_t *e, wh_t *w)
{
    for (size_t i = 0; i < w->n_delayed; i++)
        w->delayed[i]->delayed_ix = 0;
    w->n_delayed = 0;
    w->next_due_ms = INT64_MAX;
    imap_each(&w->lanes, free_lane_cb, NULL);
    imap_deinit(&w->lanes);
    imap_init(&w->lanes);
    w->ready_head = w->ready_tail = NULL;
    e->held -= w->n_waiting;
    w->n_waiting = 0;
    w->min_known = false;
}

/* The webhook gets nothing more. Its watermark is settled first, from the lanes that
 * are still pending (what was delivered until now counts, nothing after). */
static void wh_kill(engine_t *e, wh_t *w)
{
    if (w->dead)
        return;
    uint64_t wm = wh_watermark(w);
    if (wm > w->watermark)
        w->watermark = wm;
    mark_touched(e, w);
    w->dead = true;
    scan_list_remove(e, w);
    wh_drop_lanes(e, w);
}

static void wh_free(engine_t *e, wh_t *w)
{
    run_remove(w);
    timed_remove(e, w);
    scan_list_remove(e, w);
    if (w->touched)
        TAILQ_REMOVE(&e->touched, w, touched_link);
    wh_unindex(e, w);
    wh_drop_lanes(e, w);
    imap_deinit(&w->acked);
    imap_deinit(&w->latest);
    imap_deinit(&w->retrying);
    free(w->retry_v);
    free(w->delayed);
    for (size_t i = 0; i < w->refs.n; i++)
        free((char *)w->ref_items[i].name);
    free(w->ref_items);
    free(w->row.destination_url);
    sign_key_free(w->signer);
    OPENSSL_cleanse(w->key, sizeof(w->key));
    free(w);
}

/* ---- results to commit --------------------------------------------------- */

_Static_assert(sizeof(((wh_row_t *)0)->id) == sizeof(((store_attempt_t *)0)->webhook_id),
               "a webhook id is copied whole into the attempt log's row");

static void record_attempt(engine_t *e, wh_t *w, const attempt_t *a, const hc_result_t *res,
                           store_attempt_status_t status, int64_t next_at_ms)
{
    if (e->n_attempts == e->cap_attempts) {
        size_t cap = e->cap_attempts ? e->cap_attempts * 2 : 256;
        store_attempt_t *p = realloc(e->attempts, cap * sizeof(*p));
        if (!p)
            return; /* the log loses a line; delivery state is unaffected */
        e->attempts = p;
        e->cap_attempts = cap;
    }
    /* Every field is set below; no memset of the 4 KiB excerpt per attempt. */
    store_attempt_t *t = &e->attempts[e->n_attempts++];
    t->tenant_id = w->row.tenant_id;
    memcpy(t->webhook_id, w->row.id, sizeof(t->webhook_id)); /* both STORE_WEBHOOK_ID_LEN + 1 */
    memcpy(t->event_id, a->id, sizeof(t->event_id));
    t->record_id = a->lane ? a->lane->record_id : 0;
    t->version = a->ev->version;
    t->change_type = a->ev->type;
    t->attempt = a->number;
    t->attempted_at_ms = a->started_ms;
    t->duration_ms = res->duration_ms;
    t->http_status = res->http_status;
    size_t elen = strnlen(res->error, sizeof(t->error) - 1);
    memcpy(t->error, res->error, elen);
    t->error[elen] = '\0';
    t->next_attempt_at_ms = next_at_ms;
    t->status = status;
    memcpy(t->excerpt, res->excerpt, res->excerpt_len);
    t->excerpt[res->excerpt_len] = '\0';
    mark_touched(e, w);
}

static void record_ack(engine_t *e, wh_t *w, int64_t record_id, uint64_t version)
{
    if (e->n_acks == e->cap_acks) {
        size_t cap = e->cap_acks ? e->cap_acks * 2 : 256;
        wh_t **q = realloc(e->ack_whs, cap * sizeof(*q));
        if (q)
            e->ack_whs = q;
        struct store_ack *p = q ? realloc(e->acks, cap * sizeof(*p)) : NULL;
        if (!p)
            return; /* a restart may send this record again: at least once still holds */
        e->acks = p;
        e->cap_acks = cap;
    }
    e->ack_whs[e->n_acks] = w;
    e->acks[e->n_acks++] = (struct store_ack){ w->row.tenant_id, w->row.id, record_id, version };
    mark_touched(e, w);
}

/* The engine's writes (flush, disable) run on its own store thread (e->writes), not
 * on libuv's shared pool: a write waits for its group commit. Each job starts with
 * drop, which frees it when the pool is freed before its done callback ran. */
typedef struct flush_job {
    void (*drop)(void *self);
    engine_t *e;
    size_t cap_attempts;
    /* Webhook ids the acks and marks point to, owned by the job: a webhook may be
     * freed on the loop while the job runs on a worker. */
    char (*ids)[STORE_WEBHOOK_ID_LEN + 1];
    store_attempt_t *attempts;
    size_t n_attempts;
    struct store_ack *acks;
    size_t n_acks;
    struct store_watermark *marks;
    size_t n_marks;
    int rc;
} flush_job_t;

static void flush_work(void *arg)
{
    flush_job_t *j = arg;
    store_delivery_batch_t b = { j->attempts, j->n_attempts, j->acks, j->n_acks, j->marks,
                                 j->n_marks };
    j->rc = store_delivery_commit(j->e->o.store, &b);
}

static void flush_free(flush_job_t *j)
{
    free(j->ids);
    free(j->attempts);
    free(j->acks);
    free(j->marks);
    free(j);
}

static void flush_drop(void *arg)
{
    flush_free(arg);
}

static void flush_done(void *arg)
{
    flush_job_t *j = arg;
    if (j->rc)
        log_error("delivery results not committed; those events will be sent again",
                  LOG_STR("error", err_str(j->rc)));
    j->e->flushing = false;
    if (!j->e->spare && j->attempts) {
        j->e->spare = j->attempts;
        j->e->cap_spare = j->cap_attempts;
        j->attempts = NULL;
    }
    flush_free(j);
}

/* Moves pending results into a job. Returns NULL when there is nothing. */
static flush_job_t *flush_take(engine_t *e)
{
    size_t n_marks = 0;
    wh_t *w;
    TAILQ_FOREACH(w, &e->touched, touched_link)
        n_marks++;
    if (!e->n_attempts && !e->n_acks && !n_marks)
        return NULL;
    flush_job_t *j = calloc(1, sizeof(*j));
    struct store_watermark *marks = n_marks ? calloc(n_marks, sizeof(*marks)) : NULL;
    if (!j || (n_marks && !marks)) {
        free(j);
        free(marks);
        return NULL;
    }
    size_t k = 0;
    while ((w = TAILQ_FIRST(&e->touched)) != NULL) {
        TAILQ_REMOVE(&e->touched, w, touched_link);
        w->touched = false;
        /* A webhook whose lanes were dropped undelivered (disabled, expired) keeps
         * the watermark it had: it must never claim events it did not deliver. */
        uint64_t wm = w->dead ? w->watermark : wh_watermark(w);
        if (wm < w->watermark)
            wm = w->watermark;
        w->watermark = wm;
        /* Partition 0, the only one (see refresh_work). */
        marks[k++] = (struct store_watermark){ w->row.tenant_id, w->row.id, wm,
                                               w->last_success_ms, w->last_failure_ms, 0 };
    }
    /* An ack at or below its webhook's new watermark says nothing the watermark does
     * not: with a healthy destination that is nearly all of them, and dropping them
     * here saves the store most of its writes per delivery. */
    size_t kept = 0;
    for (size_t i = 0; i < e->n_acks; i++) {
        /* Every ack's webhook was touched, so its watermark was just settled above. */
        if (e->acks[i].version > e->ack_whs[i]->watermark)
            e->acks[kept++] = e->acks[i];
    }
    e->n_acks = kept;
    j->ids = calloc(e->n_acks + k + 1, sizeof(*j->ids));
    if (!j->ids) {
        free(j);
        free(marks);
        return NULL;
    }
    for (size_t i = 0; i < e->n_acks; i++) {
        memcpy(j->ids[i], e->acks[i].webhook_id, STORE_WEBHOOK_ID_LEN + 1);
        e->acks[i].webhook_id = j->ids[i];
    }
    for (size_t i = 0; i < k; i++) {
        memcpy(j->ids[e->n_acks + i], marks[i].webhook_id, STORE_WEBHOOK_ID_LEN + 1);
        marks[i].webhook_id = j->ids[e->n_acks + i];
    }
    j->e = e;
    j->drop = flush_drop;
    j->attempts = e->attempts;
    j->n_attempts = e->n_attempts;
    j->cap_attempts = e->cap_attempts;
    j->acks = e->acks;
    j->n_acks = e->n_acks;
    j->marks = marks;
    j->n_marks = k;
    e->attempts = e->spare;
    e->cap_attempts = e->spare ? e->cap_spare : 0;
    e->n_attempts = 0;
    e->spare = NULL;
    e->cap_spare = 0;
    e->acks = NULL;
    e->n_acks = e->cap_acks = 0;
    return j;
}

static void flush(engine_t *e)
{
    if (e->flushing)
        return;
    flush_job_t *j = flush_take(e);
    if (!j)
        return;
    e->flushing = true;
    if (workpool_run(e->writes, flush_work, flush_done, j) != 0) {
        e->flushing = false;
        flush_free(j);
    }
    e->last_flush_ms = mono_ms(e);
}

/* ---- disabling ------------------------------------------------------------ */

typedef struct disable_job {
    void (*drop)(void *self);
    store_t *store;
    int64_t tenant_id;
    char id[STORE_WEBHOOK_ID_LEN + 1];
    store_webhook_reason_t reason;
    int64_t now_ms;
} disable_job_t;

static void disable_work(void *arg)
{
    disable_job_t *j = arg;
    if (store_webhook_disable(j->store, j->tenant_id, j->id, j->reason, j->now_ms))
        log_error("could not disable webhook", LOG_STR("webhook", j->id));
}

static void disable_done(void *arg)
{
    free(arg);
}

/* The webhook gets nothing more: its lanes go, the store records why. */
static void wh_disable(engine_t *e, wh_t *w, store_webhook_reason_t reason, const char *why)
{
    if (w->dead)
        return;
    log_warn("webhook disabled", LOG_STR("webhook", w->row.id), LOG_STR("reason", why));
    wh_kill(e, w);
    disable_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->drop = disable_done;
    j->store = e->o.store;
    j->tenant_id = w->row.tenant_id;
    snprintf(j->id, sizeof(j->id), "%s", w->row.id);
    j->reason = reason;
    j->now_ms = now_ms(e);
    if (workpool_run(e->writes, disable_work, disable_done, j) != 0)
        free(j);
}

/* ---- attempts -------------------------------------------------------------- */


static int outcome_of(const hc_result_t *res)
{
    if (res->http_status >= 200 && res->http_status < 300)
        return OUT_SUCCESS;
    if (res->http_status == 410)
        return OUT_GONE;
    if (res->http_status > 0)
        return OUT_HTTP_ERROR;
    return res->timed_out ? OUT_TIMEOUT : OUT_NETWORK_ERROR;
}

/* One line per attempt (SPEC §8). A success is an info line; a failure a warning,
 * at most FAIL_LOG_BURST per destination per FAIL_LOG_WINDOW_MS, so a destination
 * that fails thousands of events cannot flood the log: the lines left out are
 * counted in the next one's "suppressed". next_at_ms is when the event is tried
 * again (0: not). */
static void log_attempt(engine_t *e, wh_t *w, const attempt_t *a, const hc_result_t *res,
                        int outcome, int64_t next_at_ms)
{
    if (!e->o.log_attempts)
        return;
    int64_t record = a->lane ? a->lane->record_id : 0;
    if (outcome == OUT_SUCCESS) {
        if (log_enabled(LOG_INFO))
            log_info("delivery", LOG_STR("webhook", w->row.id), LOG_STR("event", a->id),
                     LOG_INT("record", record), LOG_INT("attempt", a->number),
                     LOG_STR("outcome", outcome_names[outcome]),
                     LOG_INT("status", res->http_status), LOG_INT("us", res->duration_us));
        return;
    }
    dest_t *d = w->dest;
    int64_t now = mono_ms(e);
    if (now - d->log_window_ms >= FAIL_LOG_WINDOW_MS) {
        d->log_window_ms = now;
        d->log_lines = 0;
    }
    if (d->log_lines >= FAIL_LOG_BURST) {
        d->log_suppressed++;
        return;
    }
    d->log_lines++;
    uint64_t suppressed = d->log_suppressed;
    d->log_suppressed = 0;
    log_warn("delivery failed", LOG_STR("webhook", w->row.id), LOG_STR("event", a->id),
             LOG_INT("record", record), LOG_INT("attempt", a->number),
             LOG_STR("outcome", outcome_names[outcome]), LOG_INT("status", res->http_status),
             LOG_STR("error", res->error), LOG_INT("us", res->duration_us),
             LOG_INT("next_attempt_in_ms", next_at_ms ? next_at_ms - now_ms(e) : 0),
             LOG_STR("destination", d->key), LOG_INT("suppressed", suppressed));
}

static attempt_t *attempt_new(engine_t *e)
{
    attempt_t *a = e->spare_attempts;
    if (a) {
        e->spare_attempts = a->spare_next;
        e->n_spare_attempts--;
        return a;
    }
    /* Not calloc: the request's result holds a 4 KiB excerpt buffer that hc resets
     * by its length; start_attempt sets the request's own fields. */
    return malloc(sizeof(*a));
}

static void attempt_free(engine_t *e, attempt_t *a)
{
    if (e->n_spare_attempts >= ATTEMPT_SPARE_MAX) {
        free(a);
        return;
    }
    a->spare_next = e->spare_attempts;
    e->spare_attempts = a;
    e->n_spare_attempts++;
}

static void attempts_spare_free(engine_t *e)
{
    while (e->spare_attempts) {
        attempt_t *a = e->spare_attempts;
        e->spare_attempts = a->spare_next;
        free(a);
    }
    e->n_spare_attempts = 0;
}

static void on_attempt_done(hc_request_t *r, const hc_result_t *res)
{
    attempt_t *a = (attempt_t *)r;
    lane_t *l = a->lane;
    engine_t *e = r->data;
    wh_t *w = a->wh;
    event_t *ev = a->ev;
    bool ok = res->http_status >= 200 && res->http_status < 300;
    int outcome = outcome_of(res);
    metrics_counter_add(&e->m.outcome[outcome], 1);
    metrics_hist_observe(&e->m.attempt, (uint64_t)(res->duration_us > 0 ? res->duration_us : 0) *
                                            1000u);
    w->in_flight--;
    e->held--;
    w->dest->inflight--;
    int64_t now = now_ms(e);
    if (l->owner == NULL || w->dead) {
        /* The webhook was disabled or went away while this was in flight; its lanes
         * were dropped and this one was left to us. A probe brings no verdict. */
        if (a->probe && !e->stopping)
            breaker_abandon(&w->breaker, now);
        if (!ok)
            w->last_failure_ms = now;
        l->inflight = NULL;
        lane_free(l);
        event_free(ev);
        attempt_free(e, a);
        return;
    }
    size_t before = l->n_waiting;
    if (e->stopping) {
        /* Aborted by the stop: not acknowledged, so it stays pending (and holds the
         * watermark below it) and is sent again after a restart. */
        lane_apply(e, w, l, lane_unsent(l, e->o.coalesce), before);
        attempt_free(e, a);
        return;
    }
    wh_breaker_result(e, w, ok || res->http_status == 410);
    /* The attempt is logged and recorded before the lane's transition, which may free
     * its event. */
    if (ok) {
        if (ev->committed_us) {
            int64_t lat = metrics_wall_us() - ev->committed_us;
            metrics_hist_observe(&e->m.latency, (uint64_t)(lat > 0 ? lat : 0) * 1000u);
        }
        log_attempt(e, w, a, res, outcome, 0);
        record_attempt(e, w, a, res, STORE_ATTEMPT_DELIVERED, 0);
        record_ack(e, w, l->record_id, ev->version);
        w->last_success_ms = now;
        lane_apply(e, w, l, lane_delivered(l), before);
    } else if (res->http_status == 410) {
        metrics_counter_add(&e->m.given_up, 1);
        log_attempt(e, w, a, res, outcome, 0);
        record_attempt(e, w, a, res, STORE_ATTEMPT_GAVE_UP, 0);
        w->last_failure_ms = now;
        /* Undelivered: it must hold the watermark below it. */
        lane_apply(e, w, l, lane_unsent(l, e->o.coalesce), before);
        wh_disable(e, w, STORE_WH_DESTINATION_GONE, "the destination answered 410 Gone");
    } else {
        int64_t ra = (res->http_status == 429 || res->http_status == 503) ? res->retry_after_s : -1;
        int64_t delay = retry_next_delay_ms(&e->o.retry, l->failures + 1, ra, e->o.rand);
        w->last_failure_ms = now;
        if (delay < 0) {
            metrics_counter_add(&e->m.given_up, 1);
            log_attempt(e, w, a, res, outcome, 0);
            record_attempt(e, w, a, res, STORE_ATTEMPT_GAVE_UP, 0);
            lane_apply(e, w, l, lane_unsent(l, e->o.coalesce), before);
            wh_disable(e, w, STORE_WH_RETRIES_EXHAUSTED, "the last retry failed");
        } else {
            metrics_counter_add(&e->m.retries, 1);
            log_attempt(e, w, a, res, outcome, now + delay);
            record_attempt(e, w, a, res, STORE_ATTEMPT_FAILED, now + delay);
            /* Retry the newest state: a newer waiting change replaces this one. */
            lane_apply(e, w, l, lane_failed(l, e->o.coalesce, now + delay), before);
        }
    }
    attempt_free(e, a);
    wh_poke(e, w); /* a probe's success lets the webhook's ready lanes go again */
    if (e->n_attempts >= FLUSH_MAX)
        flush(e);
    /* A slot toward this destination is free: use it now, not at the next tick. */
    dispatch(e);
}

/* Sends ev, the event lane l just took (INFLIGHT). Before the request is handed to
 * the HTTP pool nothing is sent and an error is returned (the caller puts the event
 * back); once handed over, every outcome ends in on_attempt_done. */
static int start_attempt(engine_t *e, wh_t *w, lane_t *l, event_t *ev, bool probe)
{
    if (e->o.test_fail_starts > 0) {
        e->o.test_fail_starts--;
        return BH_ENOMEM;
    }
    attempt_t *a = attempt_new(e);
    if (!a)
        return BH_ENOMEM;
    hc_request_init(&a->req);
    int64_t ts = now_ms(e) / 1000;
    char sig[SIGN_V1_LEN + 1];
    const char *id = a->id;
    size_t id_len = event_id(w, ev->version, a->id);
    if (!w->signer && sign_key_new(w->key, sizeof(w->key), &w->signer))
        w->signer = NULL; /* signed the slower way below, and prepared again next time */
    if (w->signer ? sign_v1_key(w->signer, id, ts, ev->body, ev->len, sig)
                  : sign_v1(w->key, sizeof(w->key), id, ts, ev->body, ev->len, sig)) {
        attempt_free(e, a);
        return BH_EINTERNAL;
    }
    /* Four NUL-separated lines in one buffer: no allocation per header, and no
     * printf (it showed in the delivery profile). */
    char tsbuf[24];
    size_t ts_len = fmt_u64((uint64_t)ts, tsbuf);
    char *end = a->hbuf + sizeof(a->hbuf), *q = a->hbuf;
    const struct {
        const char *name, *value;
        size_t name_len, value_len;
    } lines[4] = {
        { "Content-Type: ", "application/json", 14, 16 },
        { "webhook-id: ", id, 12, id_len },
        { "webhook-timestamp: ", tsbuf, 19, ts_len },
        { "webhook-signature: ", sig, 19, SIGN_V1_LEN },
    };
    for (int i = 0; i < 4; i++) {
        if ((size_t)(end - q) < lines[i].name_len + lines[i].value_len + 1) {
            attempt_free(e, a);
            return BH_EINTERNAL;
        }
        a->headers[i] = q;
        memcpy(q, lines[i].name, lines[i].name_len);
        q += lines[i].name_len;
        memcpy(q, lines[i].value, lines[i].value_len);
        q += lines[i].value_len;
        *q++ = '\0';
    }
    a->headers[4] = NULL;
    a->wh = w;
    a->lane = l;
    a->ev = ev;
    a->probe = probe;
    a->number = l->failures + 1;
    a->started_ms = now_ms(e);
    a->req.url = w->row.destination_url;
    a->req.headers = a->headers;
    a->req.body = ev->body;
    a->req.body_len = ev->len;
    a->req.timeout_ms = e->o.timeout_ms;
    a->req.connect_timeout_ms = e->o.connect_timeout_ms;
    a->req.done = on_attempt_done;
    a->req.data = e;
    w->in_flight++;
    e->held++;
    w->dest->inflight++;
    int rc = hc_pool_send(e->http, &a->req);
    if (rc) {
        /* Not sent: the same path as a failed attempt, so it is logged and retried. */
        hc_result_t res;
        hc_result_reset(&res);
        snprintf(res.error, sizeof(res.error), "%s",
                 rc == BH_ENOTFOUND ? "name not resolved (.invalid never resolves)"
                                    : "could not start the request");
        on_attempt_done(&a->req, &res);
    }
    return 0;
}

/* Lanes whose retry time has come go back to the ready list. */
static void wake_due(engine_t *e, wh_t *w, int64_t now)
{
    if (now < w->next_due_ms)
        return;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < w->n_delayed;) {
        lane_t *l = w->delayed[i];
        if (l->next_at_ms > now) {
            if (l->next_at_ms < next)
                next = l->next_at_ms;
            i++;
            continue;
        }
        lane_step_t st = lane_due(l, now);
        if (st.action == LANE_KEEP)
            delayed_remove(w, l); /* not DELAYED any more; the last one moves to i */
        else
            lane_apply(e, w, l, st, l->n_waiting); /* out of the list: the last moves to i */
    }
    w->next_due_ms = next;
}

/* The webhooks waiting for a time: lanes whose retry time came go back to the ready
 * list, a breaker whose pause ended lets its webhook queue for the probe. Only these
 * webhooks are looked at, not every webhook. */
static void timed_walk(engine_t *e, int64_t now)
{
    wh_t *next;
    for (wh_t *w = TAILQ_FIRST(&e->timed); w; w = next) {
        next = TAILQ_NEXT(w, timed_link);
        if (w->dead) {
            timed_remove(e, w);
            continue;
        }
        wake_due(e, w, now);
        bool held = w->breaker.state == BREAKER_OPEN && now < w->breaker.until_ms;
        if (!held)
            wh_poke(e, w);
        if (w->n_delayed == 0 && !held)
            timed_remove(e, w);
    }
}

/* Starts every attempt that may start now: per host with free slots, one attempt per
 * webhook in turn. */
static void dispatch_once(engine_t *e)
{
    int64_t now = now_ms(e);
    timed_walk(e, now);
    dest_t *dnext;
    for (dest_t *d = TAILQ_FIRST(&e->busy); d; d = dnext) {
        dnext = TAILQ_NEXT(d, busy_link);
        while (d->inflight < e->o.max_inflight_per_dest && !TAILQ_EMPTY(&d->run)) {
            wh_t *w = TAILQ_FIRST(&d->run);
            run_remove(w);
            if (w->dead || !w->ready_head)
                continue;
            if (now >= w->row.valid_until_ms) {
                /* Expired: nothing more is sent (the store's sweep records it). */
                wh_kill(e, w);
                continue;
            }
            if (!breaker_admit(&w->breaker, now)) {
                wh_poke(e, w); /* into the timed list while the pause runs */
                continue;
            }
            bool probe = w->breaker.state == BREAKER_HALF_OPEN;
            lane_t *l = ready_pop(w);
            event_t *ev = lane_take(e, w, l, now);
            int rc = ev ? start_attempt(e, w, l, ev, probe) : 0;
            if ((!ev || rc) && probe)
                breaker_abandon(&w->breaker, now);
            if (ev && rc) {
                /* Not sent: first in line again after a pause, so the record does not
                 * stall (and hold the webhook's watermark) until its next change. */
                log_warn("delivery not started", LOG_STR("webhook", w->row.id),
                         LOG_INT("record", l->record_id), LOG_STR("error", err_str(rc)),
                         LOG_INT("retry_in_ms", START_RETRY_MS));
                lane_apply(e, w, l, lane_start_failed(l, now, START_RETRY_MS), l->n_waiting);
            }
            wh_poke(e, w); /* to the back of the line, if it has more to send */
        }
        if (TAILQ_EMPTY(&d->run)) {
            TAILQ_REMOVE(&e->busy, d, busy_link);
            d->busy = false;
        }
    }
}

/* Starts every attempt that may start now. Re-entrant calls (an attempt that ends
 * at once calls back) only ask for one more pass. */
static void dispatch(engine_t *e)
{
    if (e->dispatching) {
        e->dispatch_again = true;
        return;
    }
    e->dispatching = true;
    do {
        e->dispatch_again = false;
        dispatch_once(e);
    } while (e->dispatch_again && !e->stopping);
    e->dispatching = false;
}

/* ---- scanning the change log ----------------------------------------------- */

typedef struct scan_job {
    uv_work_t work;
    engine_t *e;
    wh_t *w;
    int64_t tenant_id;        /* copies: the worker does not touch w */
    store_collection_t collection;
    const extref_list_t *refs; /* the webhook's, read-only on the worker */
    uint64_t after;
    size_t limit;             /* changes to read at most: the room left in w's share */
    store_change_t *changes;
    size_t n;
    char **bodies;            /* delivery bodies, one per change */
    int64_t *committed_us;    /* commit times, one per change */
    uint64_t head;            /* the tenant's last version, read when the batch filled up */
    int rc;
} scan_job_t;

/* The person's references the webhook asked for, embedded into a break's data. */
static void scan_work(uv_work_t *wk)
{
    scan_job_t *j = wk->data;
    store_t *s = j->e->o.store;
    j->rc = store_changes_after(s, j->tenant_id, j->collection, j->after, j->limit,
                                &j->changes, &j->n);
    if (j->rc || !j->n)
        return;
    j->bodies = calloc(j->n, sizeof(char *));
    j->committed_us = calloc(j->n, sizeof(*j->committed_us));
    uint64_t *versions = malloc(j->n * sizeof(*versions));
    if (!j->bodies || !j->committed_us || !versions) {
        free(versions);
        j->rc = BH_ENOMEM;
        return;
    }
    /* The precise commit times this process remembers; older changes (before a
     * restart, or far behind) fall back to the row's own millisecond timestamp,
     * taken when its transaction started. */
    for (size_t i = 0; i < j->n; i++)
        versions[i] = j->changes[i].version;
    store_commit_times(s, j->tenant_id, versions, j->n, j->committed_us);
    free(versions);
    for (size_t i = 0; i < j->n; i++)
        if (!j->committed_us[i])
            j->committed_us[i] = j->changes[i].committed_at_ms * 1000;
    if (j->n == j->limit && store_tenant_version(s, j->tenant_id, &j->head))
        j->head = 0;
    event_refs_t refs = { .refs = j->refs, .asked = false };
    j->rc = event_bodies(s, j->tenant_id, j->collection, j->changes, j->n, &refs, j->bodies);
}

static void scan_done(uv_work_t *wk, int status)
{
    scan_job_t *j = wk->data;
    engine_t *e = j->e;
    wh_t *w = j->w;
    (void)status;
    w->scanning = false;
    e->reserved -= j->limit; /* what it read is held by its lanes from here on */
    if (j->rc) {
        log_warn("change-log scan failed", LOG_STR("webhook", w->row.id),
                 LOG_STR("error", err_str(j->rc)));
    } else if (!w->dead && !e->stopping) {
        uint64_t until = w->row.until_version;
        for (size_t i = 0; i < j->n; i++) {
            const store_change_t *c = &j->changes[i];
            w->scan_cursor = c->version;
            if ((until && c->version > until) || c->committed_at_ms >= w->row.valid_until_ms)
                continue; /* outside the window */
            uintptr_t acked = (uintptr_t)imap_get(&w->acked, c->record_id);
            if (acked && c->version <= (uint64_t)acked)
                continue; /* acknowledged before a restart */
            if (e->o.coalesce && c->version <= w->recovery_head) {
                uintptr_t newest = (uintptr_t)imap_get(&w->latest, c->record_id);
                if (newest && c->version < (uint64_t)newest)
                    continue; /* a newer state of the record follows: send only that */
            }
            if (!j->bodies[i])
                continue;
            event_t *ev = malloc(sizeof(*ev));
            if (!ev)
                continue;
            ev->version = c->version;
            ev->type = c->type;
            ev->committed_us = j->committed_us[i];
            ev->body = j->bodies[i];
            ev->len = strlen(ev->body);
            j->bodies[i] = NULL;
            lane_add_event(e, w, c->record_id, ev);
        }
        w->more = j->n == j->limit;
        if (j->head > w->head)
            w->head = j->head;
        if (w->scan_cursor >= w->recovery_head && (w->latest.n || w->retrying.n)) {
            /* past the recovery range: not needed any more */
            imap_deinit(&w->latest);
            imap_init(&w->latest);
            imap_deinit(&w->retrying);
            imap_init(&w->retrying);
        }
        if (j->n)
            mark_touched(e, w); /* the watermark may rise past skipped changes */
    }
    for (size_t i = 0; j->bodies && i < j->n; i++)
        free(j->bodies[i]);
    free(j->bodies);
    free(j->committed_us);
    store_changes_free(j->changes, j->n);
    free(j);
    if (!e->stopping) {
        dispatch(e);
        if (w->more && !w->dead)
            scan(e, w); /* keep reading while there is room */
        if ((w->more || w->dirty) && !w->scanning)
            scan_list_add(e, w); /* the next tick tries again (room, or new changes) */
    }
}

/* What w holds of the memory budget: events waiting in its lanes or in flight. */
static size_t wh_held(const wh_t *w)
{
    return w->n_waiting + w->in_flight;
}

/* How many more events w may read into memory now (engine.h): up to its share while
 * the process is under its budget, and in any case up to ENGINE_SHARE_MIN, so that
 * every webhook with work makes progress whatever the others hold. Memory stays
 * under the budget plus ENGINE_SHARE_MIN per webhook with work. */
static size_t wh_room(const engine_t *e, const wh_t *w)
{
    size_t held = wh_held(w), used = e->held + e->reserved, room = 0;
    if (held < e->share && used < e->o.max_pending) {
        room = e->share - held;
        if (room > e->o.max_pending - used)
            room = e->o.max_pending - used;
    }
    if (held < ENGINE_SHARE_MIN && room < ENGINE_SHARE_MIN - held)
        room = ENGINE_SHARE_MIN - held;
    return room < SCAN_BATCH ? room : SCAN_BATCH;
}

static void scan(engine_t *e, wh_t *w)
{
    size_t room = w->scanning || w->dead ? 0 : wh_room(e, w);
    if (room == 0)
        return;
    scan_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->work.data = j;
    j->e = e;
    j->w = w;
    j->tenant_id = w->row.tenant_id;
    j->collection = w->row.collection;
    j->refs = &w->refs;
    j->after = w->scan_cursor;
    j->limit = room;
    e->reserved += room;
    w->scanning = true;
    w->dirty = false;
    if (uv_queue_work(&e->loop, &j->work, scan_work, scan_done) < 0) {
        w->scanning = false;
        e->reserved -= room;
        free(j);
    }
}

/* ---- the list of webhooks ---------------------------------------------------- */

typedef struct latest_list {
    store_acked_t *v;          /* record id, newest version */
    size_t n, cap;
    uint64_t head;
} latest_list_t;

typedef struct refresh_job {
    uv_work_t work;
    engine_t *e;
    latest_list_t *latest;     /* per row, for webhooks new to the engine */
    char (*known)[STORE_WEBHOOK_ID_LEN + 1]; /* ids the engine has, at queue time */
    size_t n_known;
    store_webhook_t *rows;
    size_t n;
    store_acked_t **acked;     /* per row, for webhooks new to the engine */
    size_t *n_acked;
    store_retrying_t **retrying; /* per row, for webhooks new to the engine */
    size_t *n_retrying;
    bool *is_new;
    bool want_names;           /* read the tenants' names too (for metric labels) */
    store_tenant_t *tenants;
    size_t n_tenants;
    int rc;
} refresh_job_t;

static wh_t *wh_find(engine_t *e, const char *id)
{
    for (wh_t *w = imap_get(&e->by_id, str_key(id)); w; w = w->id_next)
        if (!strcmp(w->row.id, id))
            return w;
    return NULL;
}

/* Each record's newest version in the webhook's window above its watermark, read in
 * pages (on the worker). A record whose change was never delivered is fine too: it
 * gets its newest state, as coalescing would have done. Without coalescing nothing is
 * skipped, so only the head is read (cheaply: the tenant's last version) and the
 * backlog is not walked nor held in memory. */
static void load_latest(store_t *s, const store_webhook_t *row, bool coalesce,
                        latest_list_t *out)
{
    uint64_t after = row->last_delivered_version > row->from_version ? row->last_delivered_version
                                                                     : row->from_version;
    if (!coalesce) {
        if (store_tenant_version(s, row->tenant_id, &out->head) || out->head < after)
            out->head = after;
        return;
    }
    imap_t m;
    imap_init(&m);
    for (;;) {
        store_change_t *c = NULL;
        size_t n = 0;
        if (store_changes_after(s, row->tenant_id, row->collection, after, 5000, &c, &n))
            break;
        for (size_t i = 0; i < n; i++) {
            uintptr_t cur = (uintptr_t)imap_get(&m, c[i].record_id);
            if (c[i].version > cur && imap_put(&m, c[i].record_id, (void *)(uintptr_t)c[i].version))
                break;
            after = c[i].version;
        }
        store_changes_free(c, n);
        if (n < 5000)
            break;
    }
    out->head = after;
    out->v = m.n ? malloc(m.n * sizeof(*out->v)) : NULL;
    for (size_t b = 0; out->v && b < m.n_buckets; b++)
        for (imap_node_t *nd = m.buckets[b]; nd; nd = nd->next)
            out->v[out->n++] = (store_acked_t){ nd->key, (uint64_t)(uintptr_t)nd->value };
    imap_deinit(&m);
}

static void refresh_work(uv_work_t *wk)
{
    refresh_job_t *j = wk->data;
    store_t *s = j->e->o.store;
    if (j->want_names && store_tenant_list(s, &j->tenants, &j->n_tenants))
        j->n_tenants = 0;
    j->rc = store_webhooks_active(s, now_ms(j->e), &j->rows, &j->n);
    if (j->rc || !j->n)
        return;
    j->acked = calloc(j->n, sizeof(*j->acked));
    j->n_acked = calloc(j->n, sizeof(*j->n_acked));
    j->is_new = calloc(j->n, sizeof(*j->is_new));
    j->latest = calloc(j->n, sizeof(*j->latest));
    j->retrying = calloc(j->n, sizeof(*j->retrying));
    j->n_retrying = calloc(j->n, sizeof(*j->n_retrying));
    if (!j->acked || !j->n_acked || !j->is_new || !j->latest || !j->retrying || !j->n_retrying) {
        j->rc = BH_ENOMEM;
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        j->is_new[i] = true;
        for (size_t k = 0; k < j->n_known; k++)
            if (!strcmp(j->known[k], j->rows[i].id))
                j->is_new[i] = false;
        if (!j->is_new[i])
            continue;
        /* Partition 0: the engine runs one partition per webhook, which is what
         * store_webhook_create makes (store.h, "delivery state"). */
        if (store_delivery_acked(s, j->rows[i].tenant_id, j->rows[i].id, 0, &j->acked[i],
                                 &j->n_acked[i]))
            j->n_acked[i] = 0;
        if (store_delivery_retrying(s, j->rows[i].tenant_id, j->rows[i].id, 0, &j->retrying[i],
                                    &j->n_retrying[i]))
            j->n_retrying[i] = 0;
        load_latest(s, &j->rows[i], j->e->o.coalesce, &j->latest[i]);
    }
}

/* The webhook's externalReferences (a JSON array of {"collection","name"} as the
 * API stored it) as the list its deliveries embed. */
static int wh_refs_load(wh_t *w, const store_webhook_t *row)
{
    json_error_t err;
    json_t *a = json_loads(row->ext_refs[0] ? row->ext_refs : "[]", 0, &err);
    size_t n = json_array_size(a);
    w->ref_items = n ? calloc(n, sizeof(*w->ref_items)) : NULL;
    if (n && !w->ref_items) {
        json_decref(a);
        return BH_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(a, i), "name"));
        if (!name)
            continue; /* the API stored none such */
        char *copy = strdup(name);
        if (!copy) {
            for (size_t q = 0; q < k; q++)
                free((char *)w->ref_items[q].name);
            free(w->ref_items);
            w->ref_items = NULL;
            json_decref(a);
            return BH_ENOMEM;
        }
        w->ref_items[k++] = (extref_t){ .collection = "people", .name = copy,
                                        .name_len = strlen(copy), .predefined = copy[0] == '@' };
    }
    json_decref(a);
    w->refs = (extref_list_t){ .items = w->ref_items, .n = k };
    return 0;
}

static void wh_add(engine_t *e, const store_webhook_t *row, const store_acked_t *acked,
                   size_t n_acked, const latest_list_t *latest, store_retrying_t *retrying,
                   size_t n_retrying)
{
    /* retrying is ours from here on, kept or freed. */
    wh_t *w = calloc(1, sizeof(*w));
    if (!w) {
        free(retrying);
        return;
    }
    memcpy(w->row.id, row->id, sizeof(w->row.id));
    w->row.tenant_id = row->tenant_id;
    w->row.collection = row->collection;
    w->row.until_version = row->until_version;
    w->row.valid_until_ms = row->valid_until_ms;
    w->row.destination_url = strdup(row->destination_url);
    int rc = w->row.destination_url ? crypto_key_open(e->o.master, row->tenant_id, row->id,
                                                      row->key_blob, row->key_blob_len, w->key)
                                    : BH_ENOMEM;
    if (rc && rc != BH_ENOMEM)
        log_error(rc == BH_EINVAL ? "webhook key is encrypted and BREAKHOOK_MASTER_KEY is not set"
                                  : "webhook key does not open with this BREAKHOOK_MASTER_KEY",
                  LOG_STR("webhook", row->id));
    if (rc == 0 && (!(w->dest = dest_get(e, row->destination_url)) || wh_refs_load(w, row)))
        rc = BH_ENOMEM;
    if (rc) {
        free(retrying);
        free(w->row.destination_url);
        OPENSSL_cleanse(w->key, sizeof(w->key));
        free(w);
        return;
    }
    imap_init(&w->lanes);
    imap_init(&w->acked);
    imap_init(&w->latest);
    imap_init(&w->retrying);
    w->next_due_ms = INT64_MAX;
    for (size_t i = 0; latest && i < latest->n; i++)
        if (imap_put(&w->latest, latest->v[i].record_id, (void *)(uintptr_t)latest->v[i].version))
            break;
    w->recovery_head = latest ? latest->head : 0;
    for (size_t i = 0; i < n_acked; i++)
        if (imap_put(&w->acked, acked[i].record_id, (void *)(uintptr_t)acked[i].version))
            break;
    w->retry_v = retrying;
    for (size_t i = 0; i < n_retrying; i++)
        if (imap_put(&w->retrying, retrying[i].record_id, (void *)(i + 1)))
            break;
    w->watermark = row->last_delivered_version > row->from_version ? row->last_delivered_version
                                                                    : row->from_version;
    w->scan_cursor = w->watermark;
    if (wh_index(e, w)) {
        wh_free(e, w);
        return;
    }
    w->poll_hash = (uint64_t)str_key(w->row.id);
    w->seen = true;
    w->next = e->whs;
    e->whs = w;
    mark_dirty(e, w);
}

static void refresh_done(uv_work_t *wk, int status)
{
    refresh_job_t *j = wk->data;
    engine_t *e = j->e;
    (void)status;
    e->refreshing = false;
    for (size_t i = 0; i < j->n_tenants; i++) {
        if (imap_get(&e->tenant_names, j->tenants[i].id))
            continue;
        char *name = strdup(j->tenants[i].name);
        if (name && imap_put(&e->tenant_names, j->tenants[i].id, name))
            free(name);
    }
    free(j->tenants);
    if (!j->rc && !e->stopping) {
        for (wh_t *w = e->whs; w; w = w->next)
            w->seen = false;
        for (size_t i = 0; i < j->n; i++) {
            wh_t *w = wh_find(e, j->rows[i].id);
            if (w) {
                w->seen = true;
                w->row.valid_until_ms = j->rows[i].valid_until_ms;
            } else if (j->is_new && j->is_new[i]) {
                wh_add(e, &j->rows[i], j->acked ? j->acked[i] : NULL,
                       j->n_acked ? j->n_acked[i] : 0, j->latest ? &j->latest[i] : NULL,
                       j->retrying ? j->retrying[i] : NULL, j->n_retrying ? j->n_retrying[i] : 0);
                if (j->retrying)
                    j->retrying[i] = NULL; /* wh_add took it */
            }
        }
        /* Deleted, disabled or expired since: delivery stops. */
        for (wh_t **pp = &e->whs; *pp;) {
            wh_t *w = *pp;
            if (!w->seen && !w->touched && w->in_flight == 0 && !w->scanning) {
                *pp = w->next;
                wh_free(e, w);
                continue;
            }
            if (!w->seen && !w->dead)
                wh_kill(e, w);
            pp = &w->next;
        }
    }
    for (size_t i = 0; j->acked && i < j->n; i++)
        free(j->acked[i]);
    for (size_t i = 0; j->latest && i < j->n; i++)
        free(j->latest[i].v);
    for (size_t i = 0; j->retrying && i < j->n; i++)
        free(j->retrying[i]);
    free(j->retrying);
    free(j->n_retrying);
    free(j->latest);
    free(j->acked);
    free(j->n_acked);
    free(j->is_new);
    free(j->known);
    free(j->rows);
    free(j);
    /* The rows (4.6 KB per webhook) were read on a worker thread, into its malloc
     * arena, which keeps the freed pages otherwise: with thousands of webhooks, tens
     * of MiB per worker. A refresh is rare now (a webhook created or disabled). */
    malloc_trim(0);
}

static void refresh(engine_t *e)
{
    if (e->refreshing)
        return;
    refresh_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->work.data = j;
    j->e = e;
    j->want_names = e->want_names;
    e->want_names = false;
    /* Which rows are new is decided on the worker against this snapshot of ids. */
    size_t n = 0;
    for (wh_t *w = e->whs; w; w = w->next)
        n++;
    j->known = n ? calloc(n, sizeof(*j->known)) : NULL;
    if (n && !j->known) {
        free(j);
        return;
    }
    for (wh_t *w = e->whs; w; w = w->next)
        memcpy(j->known[j->n_known++], w->row.id, sizeof(w->row.id));
    e->refreshing = true;
    e->refresh_wanted = false; /* this read sees every change notified before it */
    e->last_refresh_ms = mono_ms(e);
    if (uv_queue_work(&e->loop, &j->work, refresh_work, refresh_done) < 0) {
        e->refreshing = false;
        free(j->known);
        free(j);
    }
}

/* ---- the gauges of /metrics ----------------------------------------------------- */

typedef struct oldest_arg {
    int64_t oldest_us;
} oldest_arg_t;

/* A lane's oldest pending event is the one in flight, else the first waiting. */
static void lane_oldest(int64_t key, void *value, void *arg)
{
    (void)key;
    const lane_t *l = value;
    oldest_arg_t *o = arg;
    const event_t *ev = l->inflight ? l->inflight : l->waiting;
    if (ev && ev->committed_us && (o->oldest_us == 0 || ev->committed_us < o->oldest_us))
        o->oldest_us = ev->committed_us;
}

static void tenant_name_free(int64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

/* Recomputes the gauges from the engine's own memory: no store call. A webhook's
 * pending events are those in its lanes, plus, while its backlog does not fit in
 * memory, the versions between its scan cursor and the tenant's last version (an
 * upper bound: those include the tenant's changes to other collections). The oldest
 * pending event is always in memory: lanes are filled in version order. Walks every
 * lane once; runs every SNAPSHOT_MS. */
static void snapshot(engine_t *e)
{
    engine_snapshot_t sn;
    memset(&sn, 0, sizeof(sn));
    int64_t now = now_ms(e);
    int64_t mono = mono_ms(e);
    size_t busy = 0;             /* webhooks with work: the budget's sharers */

    imap_t ix;                   /* tenant id -> index + 1 into per */
    imap_init(&ix);
    tenant_pending_t *per = NULL;
    size_t n_per = 0, cap_per = 0;
    for (wh_t *w = e->whs; w; w = w->next) {
        if (w->dead)
            continue;
        sn.enabled++;
        if (w->breaker.state != BREAKER_CLOSED)
            sn.paused++;
        if (w->row.valid_until_ms - now < 24 * 3600 * 1000LL)
            sn.expiring_1d++;
        if (w->row.valid_until_ms - now < 7 * 24 * 3600 * 1000LL)
            sn.expiring_7d++;
        uint64_t pending = wh_held(w);
        busy += pending > 0 || w->more;
        if (w->more && w->head > w->scan_cursor)
            pending += w->head - w->scan_cursor;
        oldest_arg_t o = { 0 };
        if (pending)
            imap_each(&w->lanes, lane_oldest, &o);
        sn.pending += pending;
        if (o.oldest_us && (sn.oldest_us == 0 || o.oldest_us < sn.oldest_us))
            sn.oldest_us = o.oldest_us;
        if (!pending)
            continue;
        size_t k = (size_t)(uintptr_t)imap_get(&ix, w->row.tenant_id);
        if (!k) {
            if (n_per == cap_per) {
                size_t cap = cap_per ? cap_per * 2 : 16;
                tenant_pending_t *p = realloc(per, cap * sizeof(*p));
                if (!p)
                    continue;
                per = p;
                cap_per = cap;
            }
            if (imap_put(&ix, w->row.tenant_id, (void *)(uintptr_t)(n_per + 1)))
                continue;
            per[n_per] = (tenant_pending_t){ .tenant_id = w->row.tenant_id };
            k = ++n_per;
        }
        tenant_pending_t *t = &per[k - 1];
        t->pending += pending;
        if (o.oldest_us && (t->oldest_us == 0 || o.oldest_us < t->oldest_us))
            t->oldest_us = o.oldest_us;
    }
    /* The TOP_TENANTS with most pending, by selection: n_per is small next to the
     * lanes walked above. */
    for (size_t i = 0; i < n_per && sn.n_top < TOP_TENANTS; i++) {
        size_t best = i;
        for (size_t k = i + 1; k < n_per; k++)
            if (per[k].pending > per[best].pending)
                best = k;
        tenant_pending_t t = per[best];
        per[best] = per[i];
        per[i] = t;
        const char *name = imap_get(&e->tenant_names, t.tenant_id);
        if (name)
            snprintf(t.name, sizeof(t.name), "%s", name);
        else {
            snprintf(t.name, sizeof(t.name), "id-%lld", (long long)t.tenant_id);
            e->want_names = true;
            e->refresh_wanted = true; /* the refresh reads the names */
        }
        sn.top[sn.n_top++] = t;
    }
    free(per);
    imap_deinit(&ix);
    size_t share = e->o.max_pending / (busy ? busy : 1);
    e->share = share > ENGINE_SHARE_MIN ? share : ENGINE_SHARE_MIN;
    sn.in_memory = e->held;
    pthread_mutex_lock(&e->snap_lock);
    e->snap = sn;
    pthread_mutex_unlock(&e->snap_lock);
    e->last_snapshot_ms = mono;
}

/* ---- the loop ------------------------------------------------------------------ */

/* Webhooks past validUntil get nothing more (the store's sweep records it): checked
 * once a second in memory, since a refresh no longer comes every second. dispatch
 * also checks each webhook it gives a turn, so nothing is sent after expiry. */
static void expire(engine_t *e)
{
    int64_t now = now_ms(e);
    for (wh_t *w = e->whs; w; w = w->next)
        if (!w->dead && now >= w->row.valid_until_ms)
            wh_kill(e, w);
}

static void on_tick(uv_timer_t *t)
{
    engine_t *e = t->data;
    if (e->stopping)
        return;
    int64_t now = mono_ms(e);
    if (e->refresh_wanted || now - e->last_refresh_ms >= e->o.refresh_ms)
        refresh(e);
    if (now - e->last_snapshot_ms >= SNAPSHOT_MS) {
        expire(e);
        snapshot(e);
    }
    /* The safety-net poll, spread out: every step the webhooks of one slot (by their
     * id's hash) are read again, so each is polled once per poll_ms and thousands of
     * idle webhooks never all scan in the same tick. */
    int64_t step = e->o.poll_ms < 1000 ? e->o.poll_ms : 1000;
    if (step > 0 && now - e->last_poll_ms >= step) {
        e->last_poll_ms = now;
        uint64_t slots = (uint64_t)(e->o.poll_ms / step);
        uint64_t slot = (uint64_t)(now / step) % slots;
        for (wh_t *w = e->whs; w; w = w->next)
            if (w->poll_hash % slots == slot)
                mark_dirty(e, w);
    }
    wh_t *next;
    for (wh_t *w = TAILQ_FIRST(&e->to_scan); w; w = next) {
        next = TAILQ_NEXT(w, scan_link);
        if (!w->dead && (w->dirty || w->more))
            scan(e, w);
        /* Kept while it could not start (already reading, lanes full). */
        if (w->dead || w->scanning || !(w->dirty || w->more))
            scan_list_remove(e, w);
    }
    dispatch(e);
    if (now - e->last_flush_ms >= FLUSH_MS)
        flush(e);
}

/* Commits happened: the webhooks of the tenants that committed read their change log
 * (every webhook after another process's commit, or an engine_wake). */
static void on_wake(uv_async_t *a)
{
    engine_t *e = a->data;
    int64_t tenants[sizeof(e->wake_tenants) / sizeof(e->wake_tenants[0])];
    pthread_mutex_lock(&e->wake_lock);
    size_t n = e->n_wake;
    bool all = e->all_dirty;
    memcpy(tenants, e->wake_tenants, n * sizeof(tenants[0]));
    e->n_wake = 0;
    e->all_dirty = false;
    if (e->webhooks_changed)
        e->refresh_wanted = true;
    e->webhooks_changed = false;
    pthread_mutex_unlock(&e->wake_lock);
    if (all)
        for (wh_t *w = e->whs; w; w = w->next)
            mark_dirty(e, w);
    else
        for (size_t i = 0; i < n; i++)
            for (wh_t *w = imap_get(&e->by_tenant, tenants[i]); w; w = w->tenant_next)
                mark_dirty(e, w);
    on_tick(&e->tick);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void on_log_prepare(uv_prepare_t *h)
{
    (void)h;
    log_flush();
}

static void job_drop(void *arg)
{
    void (**drop)(void *) = arg; /* each job's first member */
    (*drop)(arg);
}

static void on_stop(uv_async_t *a)
{
    engine_t *e = a->data;
    e->stopping = true;
    uv_timer_stop(&e->tick);
    hc_pool_free(e->http); /* aborts in-flight attempts: they are not acknowledged */
    e->http = NULL;
    /* Waits for a write in progress; a finished one whose done has not run is freed
     * (what it committed stands; what is left is committed below, synchronously). */
    workpool_free(e->writes, job_drop);
    e->writes = NULL;
    uv_close((uv_handle_t *)&e->tick, close_cb);
    uv_close((uv_handle_t *)&e->log_prepare, close_cb);
    uv_close((uv_handle_t *)&e->wake_async, close_cb);
    uv_close((uv_handle_t *)&e->stop_async, close_cb);
}

static void engine_main(void *arg)
{
    engine_t *e = arg;
    /* Named so that top, perf and gdb show which thread is which. */
    pthread_setname_np(pthread_self(), "bh-delivery");
    uv_loop_init(&e->loop);
    hc_options_t ho = { .allow = e->o.allow, .allow_http = e->o.allow_http,
                        .ca_file = e->o.ca_file, .user_agent = "breakhook/" BREAKHOOK_VERSION,
                        .max_host_connections = e->o.max_inflight_per_dest };
    e->start_rc = hc_pool_new(&e->loop, &ho, e->o.send_threads, &e->http);
    if (e->start_rc == 0)
        e->start_rc = workpool_new(&e->loop, "bh-deliv-store", 1, 1024, &e->writes);
    uv_async_init(&e->loop, &e->wake_async, on_wake);
    uv_async_init(&e->loop, &e->stop_async, on_stop);
    uv_timer_init(&e->loop, &e->tick);
    uv_prepare_init(&e->loop, &e->log_prepare);
    uv_prepare_start(&e->log_prepare, on_log_prepare);
    uv_unref((uv_handle_t *)&e->log_prepare);
    log_buffer_begin();
    e->wake_async.data = e->stop_async.data = e->tick.data = e;
    /* Once wake_async exists: the store may call on_commit from now on. */
    if (e->start_rc == 0 && (e->start_rc = store_subscribe(e->o.store, on_commit, e)) != 0)
        log_error("engine: cannot subscribe to the store's commits");
    uv_sem_post(&e->started);
    if (e->start_rc == 0) {
        uv_timer_start(&e->tick, on_tick, 0, TICK_MS);
        uv_run(&e->loop, UV_RUN_DEFAULT);
    }
    /* Whatever was acknowledged before the stop is committed now, synchronously. */
    flush_job_t *j = flush_take(e);
    if (j) {
        flush_work(j);
        flush_free(j);
    }
    uv_run(&e->loop, UV_RUN_DEFAULT); /* drain jobs still coming back */
    attempts_spare_free(e);
    log_buffer_end();
    uv_loop_close(&e->loop);
}

/* The store's commit notification (store_subscribe), on the store's writer: only
 * the hand-over to the engine's loop happens here. */
static void on_commit(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    engine_t *e = arg;
    (void)version;
    const size_t cap = sizeof(e->wake_tenants) / sizeof(e->wake_tenants[0]);
    pthread_mutex_lock(&e->wake_lock);
    if (what & STORE_COMMIT_WEBHOOKS)
        e->webhooks_changed = true;
    bool known = e->all_dirty || !(what & STORE_COMMIT_CHANGES);
    for (size_t i = 0; i < e->n_wake && !known; i++)
        known = e->wake_tenants[i] == tenant_id;
    if (!known) {
        if (tenant_id == 0 || e->n_wake == cap)
            e->all_dirty = true; /* another process wrote, or too many to list */
        else
            e->wake_tenants[e->n_wake++] = tenant_id;
    }
    pthread_mutex_unlock(&e->wake_lock);
    uv_async_send(&e->wake_async);
}

int engine_start(const engine_options_t *o, engine_t **out)
{
    engine_t *e = calloc(1, sizeof(*e));
    if (!e)
        return BH_ENOMEM;
    e->o = *o;
    pthread_mutex_init(&e->snap_lock, NULL);
    pthread_mutex_init(&e->wake_lock, NULL);
    imap_init(&e->tenant_names);
    e->share = e->o.max_pending > ENGINE_SHARE_MIN ? e->o.max_pending : ENGINE_SHARE_MIN;
    TAILQ_INIT(&e->busy);
    TAILQ_INIT(&e->timed);
    TAILQ_INIT(&e->to_scan);
    TAILQ_INIT(&e->touched);
    imap_init(&e->by_tenant);
    imap_init(&e->by_id);
    imap_init(&e->by_dest);
    metrics_hist_init(&e->m.latency, latency_bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0]),
                      1e9);
    metrics_hist_init(&e->m.attempt, attempt_bounds, sizeof(attempt_bounds) / sizeof(attempt_bounds[0]),
                      1e9);
    uv_sem_init(&e->started, 0);
    if (uv_thread_create(&e->thread, engine_main, e) < 0) {
        uv_sem_destroy(&e->started);
        free(e);
        return BH_EIO;
    }
    uv_sem_wait(&e->started);
    if (e->start_rc) {
        uv_async_send(&e->stop_async);
        uv_thread_join(&e->thread);
        int rc = e->start_rc;
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void engine_wake(engine_t *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->wake_lock);
    e->all_dirty = true;
    pthread_mutex_unlock(&e->wake_lock);
    uv_async_send(&e->wake_async);
}

void engine_stop(engine_t *e)
{
    if (!e)
        return;
    store_unsubscribe(e->o.store, on_commit, e);
    uv_async_send(&e->stop_async);
    uv_thread_join(&e->thread);
    for (wh_t *w = e->whs; w;) {
        wh_t *next = w->next;
        wh_free(e, w);
        w = next;
    }
    for (dest_t *d = e->dests; d;) {
        dest_t *next = d->next;
        free(d);
        d = next;
    }
    free(e->attempts);
    free(e->spare);
    free(e->acks);
    free(e->ack_whs);
    imap_deinit(&e->by_tenant);
    imap_deinit(&e->by_id);
    imap_deinit(&e->by_dest);
    uv_sem_destroy(&e->started);
    pthread_mutex_destroy(&e->snap_lock);
    pthread_mutex_destroy(&e->wake_lock);
    imap_each(&e->tenant_names, tenant_name_free, NULL);
    imap_deinit(&e->tenant_names);
    free(e);
}

void engine_get_stats(engine_t *e, engine_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < OUT_COUNT; i++)
        out->attempts += metrics_counter_get(&e->m.outcome[i]);
    out->delivered = metrics_counter_get(&e->m.outcome[OUT_SUCCESS]);
    out->failed = metrics_counter_get(&e->m.retries);
    out->gave_up = metrics_counter_get(&e->m.given_up);
}


static double age_s(int64_t now_us, int64_t then_us)
{
    return then_us && now_us > then_us ? (double)(now_us - then_us) / 1e6 : 0.0;
}

int engine_metrics_write(engine_t *e, buf_t *out)
{
    char mem[160];
    buf_t labels = { mem, 0, sizeof(mem), sizeof(mem) - 1 };
    int rc = metrics_write_family(out, "breakhook_delivery_attempts_total", "counter",
                                  "Delivery attempts by outcome: success (2xx), http_error "
                                  "(another status), gone (410), timeout, network_error.");
    for (int i = 0; i < OUT_COUNT && rc == 0; i++) {
        buf_reset(&labels);
        rc = metrics_label(&labels, "outcome", outcome_names[i]);
        rc = rc ? rc
                : metrics_write_u64(out, "breakhook_delivery_attempts_total", buf_cstr(&labels),
                                    metrics_counter_get(&e->m.outcome[i]));
    }
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_delivery_retries_total", "counter",
                                   "Failed attempts scheduled to be tried again.",
                                   metrics_counter_get(&e->m.retries));
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_delivery_given_up_total", "counter",
                                   "Events given up: the destination answered 410, or the "
                                   "last retry failed (the webhook is then disabled).",
                                   metrics_counter_get(&e->m.given_up));
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_delivery_latency_seconds", "histogram",
                                   "From the COMMIT of a change to its consumer's 2xx answer, "
                                   "per delivered event (retries included).");
    rc = rc ? rc : metrics_write_hist(out, "breakhook_delivery_latency_seconds", NULL, &e->m.latency);
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_delivery_attempt_duration_seconds", "histogram",
                                   "One delivery attempt: request sent to answer (or error).");
    rc = rc ? rc
            : metrics_write_hist(out, "breakhook_delivery_attempt_duration_seconds", NULL,
                                 &e->m.attempt);

    pthread_mutex_lock(&e->snap_lock);
    engine_snapshot_t sn = e->snap;
    pthread_mutex_unlock(&e->snap_lock);
    int64_t now_us = metrics_wall_us();
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_destinations_paused", "gauge",
                                   "Destinations whose circuit breaker is open now.", sn.paused);
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_webhooks_enabled", "gauge",
                                   "Enabled webhooks the engine delivers for.", sn.enabled);
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_webhooks_expiring", "gauge",
                                   "Enabled webhooks whose validUntil is less than `within` away.");
    rc = rc ? rc : metrics_write_u64(out, "breakhook_webhooks_expiring", "within=\"1d\"",
                                     sn.expiring_1d);
    rc = rc ? rc : metrics_write_u64(out, "breakhook_webhooks_expiring", "within=\"7d\"",
                                     sn.expiring_7d);
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_pending_events", "gauge",
                                   "Events not delivered yet, all webhooks.", sn.pending);
    rc = rc ? rc
            : metrics_write_single(out, "breakhook_pending_events_in_memory", "gauge",
                                   "Pending events held in memory (the --max-pending-in-memory "
                                   "budget's use); the rest waits on disk.",
                                   sn.in_memory);
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_oldest_pending_age_seconds", "gauge",
                                   "Age of the oldest event not delivered yet (0: none).");
    rc = rc ? rc
            : metrics_write_double(out, "breakhook_oldest_pending_age_seconds", NULL,
                                   age_s(now_us, sn.oldest_us));
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_tenant_pending_events", "gauge",
                                   "Events not delivered yet, for the 10 tenants with most.");
    for (size_t i = 0; i < sn.n_top && rc == 0; i++) {
        buf_reset(&labels);
        rc = metrics_label(&labels, "tenant", sn.top[i].name);
        rc = rc ? rc
                : metrics_write_u64(out, "breakhook_tenant_pending_events", buf_cstr(&labels),
                                    sn.top[i].pending);
    }
    rc = rc ? rc
            : metrics_write_family(out, "breakhook_tenant_oldest_pending_age_seconds", "gauge",
                                   "Age of the oldest pending event, for the same 10 tenants.");
    for (size_t i = 0; i < sn.n_top && rc == 0; i++) {
        buf_reset(&labels);
        rc = metrics_label(&labels, "tenant", sn.top[i].name);
        rc = rc ? rc
                : metrics_write_double(out, "breakhook_tenant_oldest_pending_age_seconds",
                                       buf_cstr(&labels), age_s(now_us, sn.top[i].oldest_us));
    }
    return rc;
}
