/*
 * notify.c: commit notifications between the processes that share one PostgreSQL
 * database (issue #17, "Commit notifications"; scale-out-notes.md, "Wake-ups").
 *
 * Sending. A NOTIFY inside every write transaction would take PostgreSQL's
 * cluster-wide notify lock at each COMMIT and serialize every tenant's writes, so
 * nothing is sent from inside a transaction. After its COMMIT, a write adds what it
 * took ((tenant, last version, what), merged per tenant) to a bounded pending set;
 * the sender, a thread of the store started by the first such commit, sends the
 * set as ONE `SELECT pg_notify('breakhook', payload)` in autocommit on a connection
 * of its own, at most once per PG__NOTIFY_INTERVAL_MS while something is pending.
 * So a node's notifications are coalesced: a burst of a thousand commits costs
 * about one notification per interval. The payload is "<node> t:v:w t:v:w ...": the
 * node id (random per store_open, so that a process ignores its own) and one item
 * per tenant; when the tenants do not fit the set (PG__PENDING_MAX, which keeps the
 * payload far below PostgreSQL's 8000 bytes) it is "<node> all". Stopping drains
 * the set first, so a short-lived CLI (`breakhook import`) has sent its commits by
 * the time store_close returns.
 *
 * Listening. The listener, a thread started by the first store_subscribe (commands
 * that never subscribe pay nothing), holds a connection of its own that ran
 * `LISTEN breakhook`, and waits on its socket with poll() beside an eventfd that
 * stopping writes. Each notification of another node becomes one subscriber call
 * per tenant (store__external_tenant), or one "look everywhere" for "all" and for
 * anything it cannot read. A notification is only sent to sessions listening when
 * it commits: after the listening connection (re)connects, it reports "look
 * everywhere" once, so subscribers scan from their last known version before they
 * trust notifications again. A lost connection is reopened with a doubling backoff.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/pg/pg_int.h"
#include "store/store_int.h"

#define CHANNEL "breakhook"
/* Tenants the pending set holds; one item is at most 19 + 1 + 19 + 1 + 1 + 1 bytes,
 * so a full set stays under 6000 bytes of payload. */
#define PG__PENDING_MAX 128
#define NODE_HEX (PG__NODE_ID_BYTES * 2)
/* Reconnect backoff of both threads: from the first to the last, doubling. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* How long a connection attempt of either thread may take (libpq connect_timeout);
 * a URL that sets its own wins. */
#define CONNECT_TIMEOUT_S "5"
/* Sends the sender tries while stopping before it drops what is left. */
#define STOP_TRIES 2

typedef struct pending {
    int64_t tenant_id;
    uint64_t version;
    unsigned what;
} pending_t;

struct pg__notify {
    store_t *base;
    const char *url; /* the store's; outlives this */
    char node[NODE_HEX + 1];
    int wake_fd;     /* eventfd: stopping wakes the listener's poll */

    /* lock guards everything below. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* monotonic clock: something pending; stopping */
    bool stopping, stopped;
    pending_t pend[PG__PENDING_MAX];
    size_t n_pend;
    bool pend_all;
    bool sender_started, listener_started;
    pthread_t sender, listener;
};

static int64_t mono_ms(void)
{
    return clock_mono_ms(clock_system());
}

/* Waits on n->cond until ms of the monotonic clock (or a signal). Lock held. */
static void wait_until(pg__notify_t *n, int64_t ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
    (void)pthread_cond_timedwait(&n->cond, &n->lock, &ts);
}

static void notice_drop(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A connection of one of the two threads, outside the pool: connect_timeout bounds
 * the attempt unless the URL says otherwise (the URL comes after it). */
static PGconn *connect_own(pg__notify_t *n, const char *who)
{
    const char *const keys[] = { "connect_timeout", "dbname", NULL };
    const char *const vals[] = { CONNECT_TIMEOUT_S, n->url, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c && PQstatus(c) == CONNECTION_OK) {
        /* libpq would print notices, and the FATAL of a killed session, to stderr. */
        PQsetNoticeProcessor(c, notice_drop, NULL);
        return c;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("store: cannot connect to PostgreSQL for commit notifications",
             LOG_STR("thread", who), LOG_STR("error", msg));
    PQfinish(c);
    return NULL;
}

/* ---- sending ----------------------------------------------------------------------- */

/* Merges one tenant's news into the pending set. Lock held. */
static void pend_add(pg__notify_t *n, int64_t tenant_id, uint64_t version, unsigned what)
{
    if (n->pend_all)
        return;
    for (size_t i = 0; i < n->n_pend; i++) {
        pending_t *p = &n->pend[i];
        if (p->tenant_id == tenant_id) {
            if (version > p->version)
                p->version = version;
            p->what |= what;
            return;
        }
    }
    if (n->n_pend == PG__PENDING_MAX) {
        n->pend_all = true; /* too many tenants to name: "look everywhere" */
        n->n_pend = 0;
        return;
    }
    n->pend[n->n_pend++] = (pending_t){ tenant_id, version, what };
}

/* The payload of a set: "<node> all", or "<node>" and " tenant:version:what" per
 * tenant. Within PostgreSQL's 8000 bytes by PG__PENDING_MAX; "all" if not. */
static void payload_build(const pg__notify_t *n, const pending_t *p, size_t np, bool all,
                          char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "%s", n->node);
    for (size_t i = 0; !all && i < np; i++) {
        int w = snprintf(out + len, cap - len, " %" PRId64 ":%" PRIu64 ":%u", p[i].tenant_id,
                         p[i].version, p[i].what);
        if (w < 0 || (size_t)w >= cap - len)
            all = true;
        else
            len += (size_t)w;
    }
    if (all)
        snprintf(out, cap, "%s all", n->node);
}

/* One pg_notify in autocommit on the sender's connection, (re)opened as needed. */
static int send_one(pg__notify_t *n, PGconn **conn, const char *payload)
{
    if (*conn && PQstatus(*conn) != CONNECTION_OK) {
        PQfinish(*conn);
        *conn = NULL;
    }
    if (!*conn && !(*conn = connect_own(n, "sender")))
        return BH_EIO;
    const char *const params[] = { payload };
    PGresult *r = PQexecParams(*conn, "SELECT pg_notify('" CHANNEL "', $1)", 1, NULL, params,
                               NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_warn("store: commit notification not sent",
                 LOG_STR("error", PQresultErrorMessage(r)));
        rc = BH_EIO;
        PQfinish(*conn); /* whatever went wrong, the next try starts afresh */
        *conn = NULL;
    }
    PQclear(r);
    return rc;
}

/*
 * The sender: waits for something pending, takes the whole set, sends it as one
 * notification, and waits PG__NOTIFY_INTERVAL_MS before the next. A failed send
 * puts the set back and tries again after a backoff. Once stopping, it sends what is
 * pending at once and returns when the set is empty (or after STOP_TRIES failures:
 * the database is gone, and so is anyone who would hear it).
 */
static void *sender_main(void *arg)
{
    pg__notify_t *n = arg;
    PGconn *conn = NULL;
    int64_t next_at = 0, backoff = BACKOFF_FIRST_MS;
    int stop_fails = 0;
    pending_t batch[PG__PENDING_MAX];
    char payload[PG__NOTIFY_PAYLOAD_MAX];
    pthread_mutex_lock(&n->lock);
    for (;;) {
        bool empty = n->n_pend == 0 && !n->pend_all;
        if (empty && n->stopping)
            break;
        if (empty) {
            pthread_cond_wait(&n->cond, &n->lock);
            continue;
        }
        if (!n->stopping && mono_ms() < next_at) {
            wait_until(n, next_at);
            continue;
        }
        size_t nb = n->n_pend;
        bool all = n->pend_all;
        memcpy(batch, n->pend, nb * sizeof(batch[0]));
        n->n_pend = 0;
        n->pend_all = false;
        pthread_mutex_unlock(&n->lock);

        payload_build(n, batch, nb, all, payload, sizeof(payload));
        int rc = send_one(n, &conn, payload);

        pthread_mutex_lock(&n->lock);
        if (rc == 0) {
            backoff = BACKOFF_FIRST_MS;
            next_at = mono_ms() + PG__NOTIFY_INTERVAL_MS;
            continue;
        }
        if (all) {
            n->pend_all = true;
            n->n_pend = 0;
        }
        for (size_t i = 0; !all && i < nb; i++)
            pend_add(n, batch[i].tenant_id, batch[i].version, batch[i].what);
        if (n->stopping && ++stop_fails >= STOP_TRIES) {
            log_warn("store: commit notifications dropped at close: PostgreSQL unreachable");
            n->n_pend = 0;
            n->pend_all = false;
            break;
        }
        next_at = mono_ms() + backoff;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    pthread_mutex_unlock(&n->lock);
    PQfinish(conn);
    return NULL;
}

void pg__notify_commit(pg__notify_t *n, const store__commit_t *notes, size_t n_notes)
{
    pthread_mutex_lock(&n->lock);
    for (size_t i = 0; i < n_notes; i++) {
        unsigned what = 0;
        uint64_t version = 0;
        if (notes[i].first <= notes[i].last) {
            what |= STORE_COMMIT_CHANGES;
            version = notes[i].last;
        }
        if (notes[i].webhooks)
            what |= STORE_COMMIT_WEBHOOKS;
        if (what)
            pend_add(n, notes[i].tenant_id, version, what);
    }
    bool added = n->n_pend > 0 || n->pend_all;
    if (added && !n->sender_started && !n->stopping) {
        if (pthread_create(&n->sender, NULL, sender_main, n) == 0)
            n->sender_started = true;
        else
            log_warn("store: no thread for commit notifications; they go out at close");
    }
    if (added)
        pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* ---- listening --------------------------------------------------------------------- */

/* Parses one decimal number of a payload item up to stop (':' or the end of the
 * item); false when it is not one. */
static bool parse_u64(const char **p, const char *end, char stop, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (stop && (s == end || *s != stop))
        return false;
    *p = stop ? s + 1 : s;
    *out = v;
    return true;
}

int pg__notify_parse(const char *payload, const char *self, pg__notify_item_fn fn, void *arg)
{
    size_t len = strnlen(payload, PG__NOTIFY_PAYLOAD_MAX);
    const char *p = payload, *end = payload + len;
    if (len < NODE_HEX + 1 || p[NODE_HEX] != ' ')
        return BH_EINVAL;
    for (size_t i = 0; i < NODE_HEX; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return BH_EINVAL;
    if (self && memcmp(p, self, NODE_HEX) == 0)
        return 0;
    p += NODE_HEX + 1;
    if ((size_t)(end - p) == 3 && memcmp(p, "all", 3) == 0) {
        fn(arg, 0, 0, STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS);
        return 0;
    }
    /* Every item is checked before any is reported: a payload half understood is not
     * understood (the caller then reports "look everywhere"). */
    if (p == end)
        return BH_EINVAL;
    for (int pass = 0; pass < 2; pass++) {
        for (const char *q = p;;) {
            const char *item_end = memchr(q, ' ', (size_t)(end - q));
            if (!item_end)
                item_end = end;
            uint64_t t, v, w;
            if (!parse_u64(&q, item_end, ':', &t) || !parse_u64(&q, item_end, ':', &v) ||
                !parse_u64(&q, item_end, 0, &w) || q != item_end || t == 0 ||
                t > (uint64_t)INT64_MAX || v > (uint64_t)INT64_MAX || w == 0 ||
                (w & ~(uint64_t)(STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS)))
                return BH_EINVAL;
            if (pass == 1)
                fn(arg, (int64_t)t, v, (unsigned)w);
            if (item_end == end)
                break;
            q = item_end + 1; /* an item after every space: "a " is refused */
        }
    }
    return 0;
}

static void tell_subscribers(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    pg__notify_t *n = arg;
    if (tenant_id == 0)
        store__external_commit(n->base);
    else
        store__external_tenant(n->base, tenant_id, version, what);
}

/* Sleeps ms unless stopping; true when stopping. Lock not held. */
static bool pause_unless_stopping(pg__notify_t *n, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    pthread_mutex_lock(&n->lock);
    while (!n->stopping && mono_ms() < until)
        wait_until(n, until);
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->lock);
    return stopping;
}

static bool is_stopping(pg__notify_t *n)
{
    pthread_mutex_lock(&n->lock);
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->lock);
    return stopping;
}

/* Reads notifications on a connection that runs LISTEN until it fails or stopping;
 * returns when one of them happens. */
static void listen_on(pg__notify_t *n, PGconn *conn)
{
    struct pollfd fds[2] = {
        { .fd = PQsocket(conn), .events = POLLIN },
        { .fd = n->wake_fd, .events = POLLIN },
    };
    for (;;) {
        /* The timeout only bounds the wait should the eventfd fail to wake it. */
        int r = poll(fds, 2, 1000);
        if (is_stopping(n))
            return;
        if (r < 0 && errno != EINTR)
            return;
        if (r <= 0)
            continue;
        if (!PQconsumeInput(conn))
            return;
        PGnotify *nf;
        while ((nf = PQnotifies(conn))) {
            if (strcmp(nf->relname, CHANNEL) == 0 &&
                pg__notify_parse(nf->extra, n->node, tell_subscribers, n) != 0) {
                log_warn("store: unreadable commit notification; looking everywhere");
                store__external_commit(n->base);
            }
            PQfreemem(nf);
        }
        if (PQstatus(conn) != CONNECTION_OK)
            return;
    }
}

/* The listener: connect, LISTEN, report "look everywhere", read notifications; on a
 * lost connection, start again after a backoff. */
static void *listener_main(void *arg)
{
    pg__notify_t *n = arg;
    int64_t backoff = BACKOFF_FIRST_MS;
    while (!is_stopping(n)) {
        PGconn *conn = connect_own(n, "listener");
        if (conn) {
            PGresult *r = PQexec(conn, "LISTEN " CHANNEL);
            bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (ok) {
                backoff = BACKOFF_FIRST_MS;
                /* Whatever committed while nobody listened was not heard. */
                store__external_commit(n->base);
                listen_on(n, conn);
            }
            PQfinish(conn);
            if (is_stopping(n))
                break;
            log_warn("store: lost the PostgreSQL connection that listens for commits; "
                     "reconnecting", LOG_INT("retry_ms", backoff));
        }
        if (pause_unless_stopping(n, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

void pg__notify_listen(pg__notify_t *n)
{
    pthread_mutex_lock(&n->lock);
    if (!n->listener_started && !n->stopping) {
        if (pthread_create(&n->listener, NULL, listener_main, n) == 0)
            n->listener_started = true;
        else
            log_warn("store: no thread to listen for other nodes' commits");
    }
    pthread_mutex_unlock(&n->lock);
}

/* ---- lifetime ---------------------------------------------------------------------- */

int pg__notify_new(store_t *base, const char *url, pg__notify_t **out)
{
    pg__notify_t *n = calloc(1, sizeof(*n));
    if (!n)
        return BH_ENOMEM;
    if (rand_hex(rand_system(), n->node, PG__NODE_ID_BYTES) != 0) {
        free(n);
        return BH_EIO;
    }
    n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->wake_fd < 0) {
        free(n);
        return BH_EIO;
    }
    n->base = base;
    n->url = url;
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = n;
    return 0;
}

void pg__notify_stop(pg__notify_t *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    if (n->stopped) {
        pthread_mutex_unlock(&n->lock);
        return;
    }
    n->stopping = true;
    n->stopped = true;
    bool sender = n->sender_started, listener = n->listener_started;
    bool pending = n->n_pend > 0 || n->pend_all;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    uint64_t one = 1;
    if (write(n->wake_fd, &one, sizeof(one)) < 0)
        log_warn("store: cannot wake the commit listener; it stops within a second");
    if (sender)
        pthread_join(n->sender, NULL);
    else if (pending)
        (void)sender_main(n); /* its thread never started: drain here */
    if (listener)
        pthread_join(n->listener, NULL);
}

void pg__notify_free(pg__notify_t *n)
{
    if (!n)
        return;
    pg__notify_stop(n);
    close(n->wake_fd);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

const char *pg__notify_node(const pg__notify_t *n)
{
    return n->node;
}
