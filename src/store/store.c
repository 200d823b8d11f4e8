/*
 * store.c: the front end of the store. It parses the store URL, picks the back-end,
 * checks every argument once for all back-ends, and forwards each call through the
 * back-end's ops table (store_int.h).
 */
#include "store/store.h"

#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/metrics.h"
#include "store/store_int.h"

/* The size of store_client_t's client_id field, for checks on bare client ids. */
#define CLIENT_ID_CAP sizeof(((store_client_t *)0)->client_id)

/* store_open's messages must outlive the call and must not race between threads that
 * open stores at the same time, hence one buffer per thread. */
static __thread char open_error[512];

const char *store__set_open_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(open_error, sizeof(open_error), fmt, ap);
    va_end(ap);
    return open_error;
}

bool store__tenant_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (n >= STORE_NAME_MAX - 1)
            return false;
        if (!alnum && (c != '-' || n == 0))
            return false;
    }
    return n >= 1;
}

/* True when s ends with a NUL inside a field of cap bytes, and is non-empty unless
 * empty_ok. Struct fields that arrive here were filled by callers, so a missing NUL
 * must be caught before any back-end runs strlen on them. */
static bool field_ok(const char *s, size_t cap, bool empty_ok)
{
    if (!s)
        return false;
    size_t n = strnlen(s, cap);
    return n < cap && (empty_ok || n > 0);
}

/* True when s starts with an RFC 3986 scheme and a colon ("mysql:", "http:"). */
static bool has_url_scheme(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return false;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return s[i] == ':';
}

/* URL schemes are matched exactly, case included, as in the documented forms. */
static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Creates the directory that will hold the database file (like `mkdir -p`), so that
 * the default "sqlite:var/breakhook.db" works on a fresh checkout. The directories
 * are not world-readable: the database holds token signing keys. */
static int make_parent_dirs(const char *path, const char **err_msg)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir)
        return BH_ENOMEM;
    memcpy(dir, path, n);
    dir[n] = '\0';

    int rc = 0;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
            *err_msg = store__set_open_error("cannot create directory %s: %s", dir,
                                             strerror(errno));
            rc = BH_EIO;
            break;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(dir);
    return rc;
}

/* Fills cfg from opt with the documented defaults, rejecting nonsense values. */
static int config_from_options(const store_options_t *opt, store__config_t *cfg,
                               const char **err_msg)
{
    store_options_t o = { 0 };
    if (opt)
        o = *opt;
    if (o.read_connections < 0 || o.read_connections > STORE__MAX_READ_CONNECTIONS) {
        *err_msg = store__set_open_error("read_connections must be 0..%d",
                                         STORE__MAX_READ_CONNECTIONS);
        return BH_EINVAL;
    }
    if (o.max_group < 0) {
        *err_msg = "max_group must not be negative";
        return BH_EINVAL;
    }
    if (o.disk_reserve < 0) {
        *err_msg = "disk_reserve must not be negative";
        return BH_EINVAL;
    }
    cfg->disk_reserve = o.disk_reserve;
    cfg->serving = o.serving;
    cfg->clock = o.clock ? o.clock : clock_system();
    cfg->read_connections = o.read_connections ? o.read_connections
                                               : STORE__DEFAULT_READ_CONNECTIONS;
    cfg->max_group = o.max_group ? o.max_group : STORE__DEFAULT_MAX_GROUP;
    memset(&cfg->master, 0, sizeof(cfg->master));
    if (o.master)
        cfg->master = *o.master;
    return 0;
}

int store_open(const char *url, const store_options_t *opt, store_t **out,
               const char **err_msg)
{
    const char *dummy;
    if (!err_msg)
        err_msg = &dummy;
    *err_msg = NULL;
    if (!out) {
        *err_msg = "no output handle";
        return BH_EINVAL;
    }
    *out = NULL;
    if (!url || !*url) {
        *err_msg = "the store URL is empty";
        return BH_EINVAL;
    }

    store__config_t cfg;
    int rc = config_from_options(opt, &cfg, err_msg);
    if (rc != 0)
        return rc;

    bool postgres = starts_with(url, "postgres://") || starts_with(url, "postgresql://");

    /* "sqlite:PATH", "sqlite://PATH" (so "sqlite:///abs/path" is absolute), or a
     * bare path. Anything else that starts like a URL ("mysql:x", "postgress://")
     * is a typo, not a file name: a file named "mysql:x" would be created silently. */
    const char *path = url;
    if (postgres) {
        path = NULL;
    } else if (starts_with(url, "sqlite:")) {
        path = url + strlen("sqlite:");
        if (starts_with(path, "//"))
            path += 2;
    } else if (has_url_scheme(url)) {
        *err_msg = store__set_open_error("unknown store URL scheme in \"%s\" (expected "
                                         "sqlite:PATH or postgres://...; a file name with a "
                                         "colon is written sqlite:NAME)", url);
        return BH_EINVAL;
    }
    if (path && !*path) {
        *err_msg = "the sqlite store URL has no file path";
        return BH_EINVAL;
    }
    if (path && strcmp(path, ":memory:") == 0) {
        /* Each connection would get its own private database: the read pool would
         * never see what the writer wrote. */
        *err_msg = "an in-memory SQLite store is not supported; give a file path";
        return BH_EINVAL;
    }

    rc = path ? make_parent_dirs(path, err_msg) : 0;
    if (rc != 0) {
        if (!*err_msg)
            *err_msg = err_str(rc);
        return rc;
    }
    rc = store__metrics_new(&cfg.metrics);
    if (rc == 0 && (rc = store__subs_new(&cfg.subs)) != 0)
        store__metrics_free(cfg.metrics);
    if (rc != 0) {
        *err_msg = err_str(rc);
        return rc;
    }
    rc = path ? sqlite__open(path, &cfg, out, err_msg) : pg__open(url, &cfg, out, err_msg);
    if (rc != 0) {
        store__metrics_free(cfg.metrics);
        store__subs_free(cfg.subs);
        if (!*err_msg)
            *err_msg = err_str(rc);
        return rc;
    }
    const char *hook = getenv("BREAKHOOK_TEST_VERSIONS_OUTSIDE_LOCK");
    (*out)->test_versions_outside_lock = hook && strcmp(hook, "1") == 0;
    return 0;
}

void store__shutdown(store_t *s)
{
    if (s)
        s->ops->shutdown(s);
}

void store_close(store_t *s)
{
    if (!s)
        return;
    store__metrics_t *m = s->metrics;
    store__subs_t *subs = s->subs;
    s->ops->shutdown(s);
    s->ops->destroy(s);
    store__metrics_free(m);
    store__subs_free(subs);
}

/* ---- commit notifications ---------------------------------------------------------- */

/* The lock is held while a notification runs, so store_unsubscribe can promise that
 * its callback is not running once it returns; callbacks are short (they hand the
 * news to their own thread), and commits take it once per group, not per change. */
struct store__subs {
    pthread_mutex_t lock;
    struct {
        store_commit_fn fn;
        void *arg;
    } v[STORE_MAX_SUBSCRIBERS];
    size_t n;
};

int store__subs_new(store__subs_t **out)
{
    store__subs_t *subs = calloc(1, sizeof(*subs));
    if (!subs)
        return BH_ENOMEM;
    pthread_mutex_init(&subs->lock, NULL);
    *out = subs;
    return 0;
}

void store__subs_free(store__subs_t *subs)
{
    if (!subs)
        return;
    pthread_mutex_destroy(&subs->lock);
    free(subs);
}

int store_subscribe(store_t *s, store_commit_fn fn, void *arg)
{
    if (!s || !fn || !s->subs)
        return BH_EINVAL;
    store__subs_t *subs = s->subs;
    pthread_mutex_lock(&subs->lock);
    int rc = BH_ERANGE;
    if (subs->n < STORE_MAX_SUBSCRIBERS) {
        subs->v[subs->n].fn = fn;
        subs->v[subs->n].arg = arg;
        subs->n++;
        rc = 0;
    }
    pthread_mutex_unlock(&subs->lock);
    if (rc == 0 && s->ops->subscribed)
        s->ops->subscribed(s);
    return rc;
}

void store_unsubscribe(store_t *s, store_commit_fn fn, void *arg)
{
    if (!s || !s->subs)
        return;
    store__subs_t *subs = s->subs;
    pthread_mutex_lock(&subs->lock);
    for (size_t i = 0; i < subs->n; i++) {
        if (subs->v[i].fn == fn && subs->v[i].arg == arg) {
            subs->v[i] = subs->v[--subs->n];
            break;
        }
    }
    pthread_mutex_unlock(&subs->lock);
}

static void notify(store_t *s, int64_t tenant_id, uint64_t version, unsigned what)
{
    store__subs_t *subs = s->subs;
    if (!subs)
        return;
    pthread_mutex_lock(&subs->lock);
    for (size_t i = 0; i < subs->n; i++)
        subs->v[i].fn(subs->v[i].arg, tenant_id, version, what);
    pthread_mutex_unlock(&subs->lock);
}

void store__committed(store_t *s, const store__commit_t *commits, size_t n, size_t jobs)
{
    store__metrics_committed(s, commits, n, jobs);
    /* Once per tenant, at its last note, with its last version: a group holds each
     * tenant's jobs in version order, so the last note with versions carries the
     * highest one. */
    for (size_t i = 0; i < n; i++) {
        bool later = false;
        for (size_t k = i + 1; k < n && !later; k++)
            later = commits[k].tenant_id == commits[i].tenant_id;
        if (later)
            continue;
        unsigned what = 0;
        uint64_t version = 0;
        for (size_t k = 0; k <= i; k++) {
            if (commits[k].tenant_id != commits[i].tenant_id)
                continue;
            if (commits[k].first <= commits[k].last) {
                what |= STORE_COMMIT_CHANGES;
                version = commits[k].last;
            }
            if (commits[k].webhooks)
                what |= STORE_COMMIT_WEBHOOKS;
        }
        if (what)
            notify(s, commits[i].tenant_id, version, what);
    }
}

void store__external_commit(store_t *s)
{
    notify(s, 0, 0, STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS);
}

void store__external_tenant(store_t *s, int64_t tenant_id, uint64_t version, unsigned what)
{
    what &= STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS;
    if (tenant_id <= 0 || !what)
        return;
    notify(s, tenant_id, (what & STORE_COMMIT_CHANGES) ? version : 0, what);
}

int store_ping(store_t *s)
{
    if (!s)
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_PING, t0, s->ops->ping(s));
}

int store_schema_version(store_t *s, int *out)
{
    if (!s || !out)
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_SCHEMA_VERSION, t0, s->ops->schema_version(s, out));
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (s)
        s->ops->get_stats(s, out);
}

int store_tenant_create(store_t *s, const char *name, store_tenant_t *out)
{
    if (!s || !name)
        return BH_EINVAL;
    if (!store__tenant_name_valid(name))
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_TENANT_CREATE, t0, s->ops->tenant_create(s, name, out));
}

/* A malformed name answers BH_ENOTFOUND: such a tenant cannot exist, and names come
 * from URLs where "no such tenant" is the answer the API gives. */
int store_tenant_get(store_t *s, const char *name, store_tenant_t *out)
{
    if (!s || !name || !out)
        return BH_EINVAL;
    if (!store__tenant_name_valid(name))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_TENANT_GET, t0, s->ops->tenant_get(s, name, out));
}

int store_tenant_list(store_t *s, store_tenant_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_TENANT_LIST, t0, s->ops->tenant_list(s, out, n_out));
}

int store_client_create(store_t *s, int64_t tenant_id, const store_client_t *c)
{
    if (!s || !c)
        return BH_EINVAL;
    if (!field_ok(c->client_id, sizeof(c->client_id), false) ||
        !field_ok(c->name, sizeof(c->name), true) ||
        !field_ok(c->scopes, sizeof(c->scopes), true) ||
        !field_ok(c->secret_hash, sizeof(c->secret_hash), false) || c->created_at_ms < 0)
        return BH_EINVAL;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CLIENT_CREATE, t0, s->ops->client_create(s, tenant_id, c));
}

/* Client ids arrive from token requests, so an overlong or empty one is simply not
 * found rather than invalid. */
int store_client_get(store_t *s, int64_t tenant_id, const char *client_id,
                     store_client_t *out)
{
    if (!s || !client_id || !out)
        return BH_EINVAL;
    if (tenant_id <= 0 || !field_ok(client_id, CLIENT_ID_CAP, false))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CLIENT_GET, t0, s->ops->client_get(s, tenant_id, client_id, out));
}

int store_client_list(store_t *s, int64_t tenant_id, store_client_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CLIENT_LIST, t0, s->ops->client_list(s, tenant_id, out, n_out));
}

int store_client_list_revoked(store_t *s, store_client_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CLIENT_LIST_REVOKED, t0, s->ops->client_list_revoked(s, out, n_out));
}

/* now_ms must be positive: 0 means "active" in store_client_t. */
int store_client_revoke(store_t *s, int64_t tenant_id, const char *client_id,
                        int64_t now_ms)
{
    if (!s || !client_id || now_ms <= 0)
        return BH_EINVAL;
    if (tenant_id <= 0 || !field_ok(client_id, CLIENT_ID_CAP, false))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CLIENT_REVOKE, t0, s->ops->client_revoke(s, tenant_id, client_id, now_ms));
}

int store_signing_key_list(store_t *s, store_signing_key_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_SIGNING_KEY_LIST, t0, s->ops->signing_key_list(s, out, n_out));
}

/* The kid is a database key and appears in every token header: it must be set. */
static bool signing_key_ok(const store_signing_key_t *k)
{
    return k && field_ok(k->kid, sizeof(k->kid), false) && k->created_at_ms >= 0;
}

int store_signing_key_add(store_t *s, const store_signing_key_t *k)
{
    if (!s || !signing_key_ok(k))
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_SIGNING_KEY_ADD, t0, s->ops->signing_key_add(s, k));
}

int store_signing_key_ensure(store_t *s, const store_signing_key_t *candidate,
                             store_signing_key_t *active)
{
    if (!s || !signing_key_ok(candidate) || !active)
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_SIGNING_KEY_ENSURE, t0, s->ops->signing_key_ensure(s, candidate, active));
}

/* ---- breaks data ------------------------------------------------------------------ */

/* A person's references reach the back-end as SQL text and UNIQUE keys: each name and
 * value must be a non-empty string inside its field, and names strictly ascending
 * (the order model_person_parse produces), which also makes them unique. */
static bool person_ok(const model_person_t *p)
{
    if (p->id < 1 || p->n_refs > MODEL_REFS_MAX)
        return false;
    for (size_t i = 0; i < p->n_refs; i++) {
        const model_ref_t *r = &p->refs[i];
        if (!field_ok(r->name, sizeof(r->name), false) ||
            !field_ok(r->value, sizeof(r->value), false))
            return false;
        if (i > 0 && strcmp(p->refs[i - 1].name, r->name) >= 0)
            return false;
    }
    return true;
}

static bool text_ok(const model_text_t *t)
{
    if (!field_ok(t->def, sizeof(t->def), true) || t->n_tr > MODEL_TRANSLATIONS_MAX)
        return false;
    for (size_t i = 0; i < t->n_tr; i++)
        if (!field_ok(t->tr[i].lang, sizeof(t->tr[i].lang), false) ||
            !field_ok(t->tr[i].text, sizeof(t->tr[i].text), true))
            return false;
    return true;
}

static bool definition_ok(const model_definition_t *d)
{
    return d->id >= 1 && text_ok(&d->name) && text_ok(&d->friendly_name);
}

/* Writes: a caller bug (NULL, malformed record) is BH_EINVAL; a tenant that cannot
 * exist is BH_ENOTFOUND, as the back-end answers for one that does not. */
static int write_prologue(store_t *s, int64_t tenant_id, const void *rec,
                          store_write_result_t *res)
{
    if (!s || !rec || !res)
        return BH_EINVAL;
    memset(res, 0, sizeof(*res));
    if (tenant_id <= 0) {
        res->rc = BH_ENOTFOUND;
        return BH_ENOTFOUND;
    }
    return 0;
}

int store_person_put(store_t *s, int64_t tenant_id, const model_person_t *p,
                     store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, p, res);
    if (rc != 0)
        return rc;
    if (!person_ok(p))
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_PERSON_PUT, t0, store__person_put(s, tenant_id, p, res));
}

/* An id below 1 names no record: the delete's own outcome is BH_ENOTFOUND. */
int store_person_delete(store_t *s, int64_t tenant_id, int64_t id, store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, &id, res);
    if (rc != 0)
        return rc;
    if (id < 1) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_PERSON_DELETE, t0, store__person_delete(s, tenant_id, id, res));
}

int store_definition_put(store_t *s, int64_t tenant_id, const model_definition_t *d,
                         store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, d, res);
    if (rc != 0)
        return rc;
    if (!definition_ok(d))
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DEFINITION_PUT, t0, store__definition_put(s, tenant_id, d, res));
}

int store_definition_delete(store_t *s, int64_t tenant_id, int64_t id,
                            store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, &id, res);
    if (rc != 0)
        return rc;
    if (id < 1) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DEFINITION_DELETE, t0, store__definition_delete(s, tenant_id, id, res));
}

int store_break_put(store_t *s, int64_t tenant_id, const model_break_t *b,
                    store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, b, res);
    if (rc != 0)
        return rc;
    if (b->id < 1)
        return BH_EINVAL;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_BREAK_PUT, t0, store__break_put(s, tenant_id, b, res));
}

int store_break_delete(store_t *s, int64_t tenant_id, int64_t id, store_write_result_t *res)
{
    int rc = write_prologue(s, tenant_id, &id, res);
    if (rc != 0)
        return rc;
    if (id < 1) {
        res->rc = BH_ENOTFOUND;
        return 0;
    }
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_BREAK_DELETE, t0, store__break_delete(s, tenant_id, id, res));
}

/* Ids below 1 never come out of model_batch_line_parse, so one here is a caller bug
 * and refuses the whole call rather than one line. */
int store_breaks_apply(store_t *s, int64_t tenant_id, store_break_op_t *ops, size_t n)
{
    if (!s || (!ops && n > 0) || n > STORE_BATCH_MAX)
        return BH_EINVAL;
    for (size_t i = 0; i < n; i++) {
        memset(&ops[i].res, 0, sizeof(ops[i].res));
        if (ops[i].rec.id < 1)
            return BH_EINVAL;
    }
    if (n == 0)
        return 0;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_BREAKS_APPLY, t0, store__breaks_apply(s, tenant_id, ops, n));
}

int store_person_get(store_t *s, int64_t tenant_id, int64_t id, model_person_t *out)
{
    if (!s || !out)
        return BH_EINVAL;
    if (tenant_id <= 0 || id < 1)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_PERSON_GET, t0, s->ops->person_get(s, tenant_id, id, out));
}

int store_people_get_many(store_t *s, int64_t tenant_id, const int64_t *ids, size_t n,
                          model_person_t **out, size_t *n_out)
{
    if (!s || (!ids && n > 0) || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0 || n == 0)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_PEOPLE_GET_MANY, t0, s->ops->people_get_many(s, tenant_id, ids, n, out, n_out));
}

int store_definition_get(store_t *s, int64_t tenant_id, int64_t id, model_definition_t *out)
{
    if (!s || !out)
        return BH_EINVAL;
    if (tenant_id <= 0 || id < 1)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DEFINITION_GET, t0, s->ops->definition_get(s, tenant_id, id, out));
}

int store_definitions_list(store_t *s, int64_t tenant_id, int64_t after_id, size_t limit,
                           model_definition_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0 || limit == 0)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DEFINITIONS_LIST, t0, s->ops->definitions_list(s, tenant_id, after_id, limit, out, n_out));
}

int store_break_get(store_t *s, int64_t tenant_id, int64_t id, model_break_t *out)
{
    if (!s || !out)
        return BH_EINVAL;
    if (tenant_id <= 0 || id < 1)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_BREAK_GET, t0, s->ops->break_get(s, tenant_id, id, out));
}

/* An empty date range or an empty person set matches nothing: answered here, so the
 * back-end never has to build an empty IN list. */
int store_breaks_list(store_t *s, int64_t tenant_id, const store_breaks_query_t *q,
                      model_break_t **out, size_t *n_out)
{
    if (!s || !q || !out || !n_out || (!q->persons && q->n_persons > 0))
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0 || q->limit == 0 || q->date_from > q->date_to ||
        (q->persons && q->n_persons == 0))
        return 0;
    if (q->has_after && q->after_date > q->date_to)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_BREAKS_LIST, t0, s->ops->breaks_list(s, tenant_id, q, out, n_out));
}

int store_changes_after(store_t *s, int64_t tenant_id, store_collection_t coll,
                        uint64_t after, size_t limit, store_change_t **out, size_t *n_out)
{
    if (!s || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (coll != STORE_COLL_PEOPLE && coll != STORE_COLL_DEFINITIONS &&
        coll != STORE_COLL_BREAKS)
        return BH_EINVAL;
    if (tenant_id <= 0 || limit == 0 || after >= (uint64_t)INT64_MAX)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CHANGES_AFTER, t0, store__changes_after(s, tenant_id, coll, after, limit, out, n_out));
}

void store_changes_free(store_change_t *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++)
        free(c[i].body);
    free(c);
}

int store_tenant_version(store_t *s, int64_t tenant_id, uint64_t *out)
{
    if (!s || !out)
        return BH_EINVAL;
    *out = 0;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_TENANT_VERSION, t0, s->ops->tenant_version(s, tenant_id, out));
}

/* ---- deltas ----------------------------------------------------------------------- */

static bool delta_coll_ok(store_collection_t coll)
{
    return coll == STORE_COLL_BREAKS || coll == STORE_COLL_DEFINITIONS;
}

static bool delta_id_ok(const char *id)
{
    return id && strnlen(id, STORE_DELTA_ID_LEN + 1) == STORE_DELTA_ID_LEN;
}

int store_delta_start(store_t *s, int64_t tenant_id, store_delta_t *d)
{
    if (!s || !d || !delta_id_ok(d->id) || !field_ok(d->client_id, CLIENT_ID_CAP, false) ||
        !delta_coll_ok(d->collection) || d->date_from > d->date_to || d->created_at_ms <= 0)
        return BH_EINVAL;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELTA_START, t0, store__delta_start(s, tenant_id, d));
}

/* client_id comes from the caller's authenticated token: an empty or overlong one
 * has no delta, like another tenant's. */
int store_delta_get(store_t *s, int64_t tenant_id, const char *client_id,
                    store_collection_t coll, store_delta_t *out)
{
    if (!s || !client_id || !out || !delta_coll_ok(coll))
        return BH_EINVAL;
    if (tenant_id <= 0 || !field_ok(client_id, CLIENT_ID_CAP, false))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELTA_GET, t0, s->ops->delta_get(s, tenant_id, client_id, coll, out));
}

/* The delta id comes out of a token the API sealed itself, so one of another
 * length is a caller bug (BH_EINVAL), not a delta that does not exist. */
int store_delta_touch(store_t *s, int64_t tenant_id, const char *client_id,
                      store_collection_t coll, const char *id, uint64_t floor, int64_t now_ms,
                      int64_t ttl_ms, store_delta_t *out)
{
    if (!s || !field_ok(client_id, CLIENT_ID_CAP, false) || !delta_coll_ok(coll) ||
        !delta_id_ok(id) || floor > (uint64_t)INT64_MAX || now_ms <= 0 || ttl_ms <= 0)
        return BH_EINVAL;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELTA_TOUCH, t0, store__delta_touch(s, tenant_id, client_id, coll, id, floor, now_ms, ttl_ms, out));
}

int store_deltas_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    if (!s || !n_out || before_ms <= 0)
        return BH_EINVAL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELTAS_PRUNE, t0, s->ops->deltas_prune(s, before_ms, n_out));
}

/* ---- webhooks --------------------------------------------------------------------- */

/* A webhook id is a UUID in text form: exactly STORE_WEBHOOK_ID_LEN characters. Ids
 * arrive from URLs, so one of another length is simply not found. */
static bool webhook_id_ok(const char *id)
{
    return id && strnlen(id, STORE_WEBHOOK_ID_LEN + 1) == STORE_WEBHOOK_ID_LEN;
}

/* The fields store_webhook_create stores; the status and delivery fields are the
 * store's and ignored. A webhook without a key could not sign, so the key blob has
 * 1..STORE_KEY_BLOB_MAX bytes. */
static bool webhook_ok(const store_webhook_t *w)
{
    return strnlen(w->id, sizeof(w->id)) == STORE_WEBHOOK_ID_LEN &&
           (w->collection == STORE_COLL_BREAKS || w->collection == STORE_COLL_DEFINITIONS) &&
           field_ok(w->destination_url, sizeof(w->destination_url), false) &&
           field_ok(w->ext_refs, sizeof(w->ext_refs), true) && w->key_blob_len >= 1 &&
           w->key_blob_len <= STORE_KEY_BLOB_MAX && w->created_at_ms >= 0 &&
           w->valid_until_ms > w->created_at_ms;
}

int store_webhook_create(store_t *s, int64_t tenant_id, store_webhook_t *w,
                         size_t max_enabled)
{
    if (!s || !w || !webhook_ok(w))
        return BH_EINVAL;
    if (tenant_id <= 0)
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOK_CREATE, t0, store__webhook_create(s, tenant_id, w, max_enabled, 1));
}

int store_webhook_get(store_t *s, int64_t tenant_id, const char *id, store_webhook_t *out)
{
    if (!s || !id || !out)
        return BH_EINVAL;
    if (tenant_id <= 0 || !webhook_id_ok(id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOK_GET, t0, store__webhook_get(s, tenant_id, id, out));
}

/* after_id comes from the caller's own continuation token, so one longer than an id
 * is a caller bug. No webhook has the people collection: that filter lists nothing. */
int store_webhooks_list(store_t *s, int64_t tenant_id, const store_webhook_query_t *q,
                        store_webhook_t **out, size_t *n_out)
{
    if (!s || !q || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (q->status != -1 && q->status != STORE_WH_ENABLED && q->status != STORE_WH_DISABLED)
        return BH_EINVAL;
    if (q->collection != 0 && q->collection != STORE_COLL_PEOPLE &&
        q->collection != STORE_COLL_DEFINITIONS && q->collection != STORE_COLL_BREAKS)
        return BH_EINVAL;
    if (q->after_id && strnlen(q->after_id, STORE_WEBHOOK_ID_LEN + 1) > STORE_WEBHOOK_ID_LEN)
        return BH_EINVAL;
    if (tenant_id <= 0 || q->limit == 0 || q->collection == STORE_COLL_PEOPLE)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOKS_LIST, t0, store__webhooks_list(s, tenant_id, q, out, n_out));
}

/* now_ms must be positive: 0 means "enabled" in disabled_at_ms. */
int store_webhook_disable(store_t *s, int64_t tenant_id, const char *id,
                          store_webhook_reason_t reason, int64_t now_ms)
{
    if (!s || !id || now_ms <= 0)
        return BH_EINVAL;
    if (reason != STORE_WH_EXPIRED && reason != STORE_WH_RETRIES_EXHAUSTED &&
        reason != STORE_WH_DESTINATION_GONE && reason != STORE_WH_DELETED)
        return BH_EINVAL;
    if (tenant_id <= 0 || !webhook_id_ok(id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOK_DISABLE, t0, store__webhook_disable(s, tenant_id, id, reason, now_ms));
}

int store_webhooks_expire(store_t *s, int64_t now_ms, size_t *n_out)
{
    if (!s || !n_out || now_ms <= 0)
        return BH_EINVAL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    int rc = store__timed(s, STORE__OP_WEBHOOKS_EXPIRE, t0, store__webhooks_expire(s, now_ms, n_out));
    if (rc == 0 && *n_out)
        store__webhooks_disabled(s, STORE_WH_EXPIRED, *n_out);
    return rc;
}

int store_webhook_pending(store_t *s, int64_t tenant_id, const char *id, int64_t now_ms,
                          uint64_t *count, uint64_t *oldest)
{
    if (!s || !id || !count || !oldest)
        return BH_EINVAL;
    *count = 0;
    *oldest = 0;
    if (tenant_id <= 0 || !webhook_id_ok(id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOK_PENDING, t0, store__webhook_pending(s, tenant_id, id, now_ms, count, oldest));
}

/* ---- delivery state --------------------------------------------------------------- */

int store_webhooks_active(store_t *s, int64_t now_ms, store_webhook_t **out, size_t *n_out)
{
    if (!s || !out || !n_out || now_ms <= 0)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOKS_ACTIVE, t0, store__webhooks_active(s, now_ms, out, n_out));
}

int store_delivery_retrying(store_t *s, int64_t tenant_id, const char *webhook_id,
                            uint32_t partition, store_retrying_t **out, size_t *n_out)
{
    if (!s || !webhook_id || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0 || !webhook_id_ok(webhook_id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELIVERY_RETRYING, t0, store__delivery_retrying(s, tenant_id, webhook_id, partition, out, n_out));
}

int store_delivery_acked(store_t *s, int64_t tenant_id, const char *webhook_id,
                         uint32_t partition, store_acked_t **out, size_t *n_out)
{
    if (!s || !webhook_id || !out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (tenant_id <= 0 || !webhook_id_ok(webhook_id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELIVERY_ACKED, t0, store__delivery_acked(s, tenant_id, webhook_id, partition, out, n_out));
}

/* Versions are changeVersions (>= 1) stored as SQLite integers. */
static bool version_ok(uint64_t v)
{
    return v >= 1 && v <= (uint64_t)INT64_MAX;
}

/* Every field of an attempt the log keeps. The engine fills them, so a bad one is a
 * caller bug: it refuses the whole batch. A record id of 0 is accepted: the log line
 * of an attempt whose record lane is already gone may not know it. */
static bool attempt_ok(const store_attempt_t *a)
{
    return a->tenant_id >= 1 && webhook_id_ok(a->webhook_id) &&
           field_ok(a->event_id, sizeof(a->event_id), false) && a->record_id >= 0 &&
           version_ok(a->version) &&
           (a->change_type == STORE_CHANGE_UPSERT || a->change_type == STORE_CHANGE_DELETE) &&
           a->attempt >= 1 && a->attempted_at_ms >= 0 && a->duration_ms >= 0 &&
           a->http_status >= 0 && a->http_status <= 999 &&
           field_ok(a->error, sizeof(a->error), true) && a->next_attempt_at_ms >= 0 &&
           (a->status == STORE_ATTEMPT_DELIVERED || a->status == STORE_ATTEMPT_FAILED ||
            a->status == STORE_ATTEMPT_GAVE_UP) &&
           field_ok(a->excerpt, sizeof(a->excerpt), true);
}

/* webhook_id_ok reads at most 37 bytes of a bare id: it must be NUL-terminated. */
static bool ack_ok(const struct store_ack *k)
{
    return k->tenant_id >= 1 && webhook_id_ok(k->webhook_id) && k->record_id >= 1 &&
           version_ok(k->version);
}

/* A watermark of 0 raises nothing (the times may still rise). */
static bool mark_ok(const struct store_watermark *m)
{
    return m->tenant_id >= 1 && webhook_id_ok(m->webhook_id) &&
           m->version <= (uint64_t)INT64_MAX && m->last_success_at_ms >= 0 &&
           m->last_failure_at_ms >= 0;
}

int store_delivery_commit(store_t *s, const store_delivery_batch_t *b)
{
    if (!s || !b || (!b->attempts && b->n_attempts > 0) || (!b->acks && b->n_acks > 0) ||
        (!b->marks && b->n_marks > 0))
        return BH_EINVAL;
    for (size_t i = 0; i < b->n_attempts; i++)
        if (!attempt_ok(&b->attempts[i]))
            return BH_EINVAL;
    for (size_t i = 0; i < b->n_acks; i++)
        if (!ack_ok(&b->acks[i]))
            return BH_EINVAL;
    for (size_t i = 0; i < b->n_marks; i++)
        if (!mark_ok(&b->marks[i]))
            return BH_EINVAL;
    if (b->n_attempts == 0 && b->n_acks == 0 && b->n_marks == 0)
        return 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_DELIVERY_COMMIT, t0, store__delivery_commit(s, b));
}

/* The webhook id comes from a URL: a malformed one, like another tenant's, is not
 * found. The back-end answers BH_ENOTFOUND for a missing webhook even when limit is
 * 0, so that the existence answer never depends on the page size. */
int store_attempts_list(store_t *s, int64_t tenant_id, const char *webhook_id,
                        const store_attempt_query_t *q, store_attempt_t **out,
                        int64_t **seq_out, size_t *n_out)
{
    if (!s || !webhook_id || !q || !out || !seq_out || !n_out)
        return BH_EINVAL;
    *out = NULL;
    *seq_out = NULL;
    *n_out = 0;
    if (q->status != -1 && q->status != STORE_ATTEMPT_DELIVERED &&
        q->status != STORE_ATTEMPT_FAILED && q->status != STORE_ATTEMPT_GAVE_UP)
        return BH_EINVAL;
    if (q->before_seq < 0)
        return BH_EINVAL;
    if (tenant_id <= 0 || !webhook_id_ok(webhook_id))
        return BH_ENOTFOUND;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_ATTEMPTS_LIST, t0, s->ops->attempts_list(s, tenant_id, webhook_id, q, out, seq_out, n_out));
}

int store_changes_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    if (!s || !n_out || before_ms <= 0)
        return BH_EINVAL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_CHANGES_PRUNE, t0, store__changes_prune(s, before_ms, n_out));
}

int store_attempts_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    if (!s || !n_out || before_ms <= 0)
        return BH_EINVAL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_ATTEMPTS_PRUNE, t0, s->ops->attempts_prune(s, before_ms, n_out));
}

int store_webhooks_prune(store_t *s, int64_t before_ms, size_t *n_out)
{
    if (!s || !n_out || before_ms <= 0)
        return BH_EINVAL;
    *n_out = 0;
    uint64_t t0 = metrics_now_ns();
    return store__timed(s, STORE__OP_WEBHOOKS_PRUNE, t0, s->ops->webhooks_prune(s, before_ms, n_out));
}

int store_in_use(store_t *s, bool *in_use)
{
    if (!s || !in_use)
        return BH_EINVAL;
    *in_use = false;
    return s->ops->in_use(s, in_use);
}

int store_copy(store_t *from, store_t *to, store_copy_progress_fn fn, void *arg,
               store_copy_count_t counts[STORE_COPY_TABLES])
{
    if (!from || !to || from == to || !counts)
        return BH_EINVAL;
    return store__copy(from, to, fn, arg, counts);
}
