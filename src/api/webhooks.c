/*
 * webhooks.c: the subscription API (SPEC §7.1): POST /webhooks, GET /webhooks,
 * GET /webhooks/{id}, DELETE /webhooks/{id}.
 *
 * A new webhook gets a random 32-byte signing key, shown once as "whsec_…" in the
 * 201 answer and stored sealed (crypto.h: AES-256-GCM under BREAKHOOK_MASTER_KEY
 * when the operator set one). Its destination is checked twice before it is
 * stored: the URL's form on the loop, and, on a worker, every address its host
 * resolves to (no loopback, private, link-local, metadata… unless allow-listed).
 * The delivery engine checks the address it actually connects to again.
 *
 * Status as a client sees it: a webhook past validUntil is Disabled/Expired even
 * before the periodic sweep has written that down.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "client/destination.h"
#include "core/crypto.h"
#include "core/log.h"
#include "filter/extref.h"
#include "filter/filter.h"

/* Every collection Protime can subscribe to; the ones this server serves are first. */
static const char *const protime_collections[] = {
    "absences", "absence-definitions", "absence-groups", "access-clockings",
    "activity-durations", "assignments", "calculated-totals", "clockings", "contracts",
    "counters", "counter-definitions", "counter-groups", "paid-presences", "people",
    "shift-definitions", "work-interruptions", NULL,
};

static const char *collection_name(store_collection_t c)
{
    return c == STORE_COLL_BREAKS ? "breaks" : c == STORE_COLL_DEFINITIONS ? "break-definitions" : "";
}

static const char *reason_name(store_webhook_reason_t r)
{
    switch (r) {
    case STORE_WH_EXPIRED: return "Expired";
    case STORE_WH_RETRIES_EXHAUSTED: return "RetriesExhausted";
    case STORE_WH_DESTINATION_GONE: return "DestinationGone";
    case STORE_WH_DELETED: return "Deleted";
    default: return NULL;
    }
}

/* ISO 8601 with an explicit offset, as Protime writes validUntil. */
static json_t *time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char t[32];
    clock_format_rfc3339(ms, t);
    size_t n = strlen(t);
    if (n > 0 && t[n - 1] == 'Z')
        snprintf(t + n - 1, sizeof(t) - (n - 1), "+00:00");
    return json_string(t);
}

static json_t *version_json(uint64_t v)
{
    if (!v)
        return json_null();
    char s[MODEL_VERSION_LEN + 1];
    model_version_format(v, s);
    return json_string(s);
}

/* What every answer says about a webhook; the key is never part of it. */
typedef struct wh_view {
    store_webhook_t w;
    uint64_t pending, oldest;
} wh_view_t;

static json_t *webhook_json(const wh_view_t *v, int64_t now_ms)
{
    const store_webhook_t *w = &v->w;
    bool expired = w->status == STORE_WH_ENABLED && now_ms >= w->valid_until_ms;
    store_webhook_status_t status = expired ? STORE_WH_DISABLED : w->status;
    const char *reason = expired ? "Expired" : reason_name(w->reason);
    json_error_t err;
    json_t *refs = json_loads(w->ext_refs[0] ? w->ext_refs : "[]", 0, &err);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->id));
    json_object_set_new(o, "validUntil", time_json(w->valid_until_ms));
    json_object_set_new(o, "status", json_string(status == STORE_WH_ENABLED ? "Enabled" : "Disabled"));
    json_object_set_new(o, "disabledReason", reason ? json_string(reason) : json_null());
    json_object_set_new(o, "destinationUrl", json_string(w->destination_url));
    json_object_set_new(o, "collectionName", json_string(collection_name(w->collection)));
    json_object_set_new(o, "externalReferences", refs ? refs : json_array());
    json_object_set_new(o, "createdAt", time_json(w->created_at_ms));
    json_object_set_new(o, "pendingEvents", json_integer((json_int_t)v->pending));
    json_object_set_new(o, "oldestPendingChangeVersion", version_json(v->oldest));
    json_object_set_new(o, "lastDeliveredChangeVersion",
                        version_json(w->last_delivered_version > w->from_version
                                         ? w->last_delivered_version
                                         : 0));
    json_object_set_new(o, "lastSuccessAt", time_json(w->last_success_at_ms));
    json_object_set_new(o, "lastFailureAt", time_json(w->last_failure_at_ms));
    return o;
}

static int view_load(store_t *s, int64_t tenant_id, int64_t now_ms, wh_view_t *v)
{
    return store_webhook_pending(s, tenant_id, v->w.id, now_ms, &v->pending, &v->oldest);
}

static void respond_json_obj(http_request_t *req, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_respond_json(req, status, s, strlen(s));
    free(s);
}

/* ---- POST /webhooks ----------------------------------------------------- */

/* What a refused destination's answer adds, so that whoever runs the server knows
 * which switch the refusal is about (they are never on by default). */
#define HINT_ALLOW_HTTP \
    "the server's operator can allow plain http destinations with breakhook serve " \
    "--allow-http-destinations"
#define HINT_ALLOW_DESTINATION \
    "the server's operator can allow such addresses with breakhook serve " \
    "--allow-destination CIDR (for example 127.0.0.1/32)"

typedef struct create_job {
    int64_t tenant_id;
    dest_url_t url;
    store_webhook_t w;
    unsigned char key[CRYPTO_WEBHOOK_KEY_LEN];
    char why[256];
    int status;      /* 0: created; else the HTTP status to answer */
    int rc;
} create_job_t;

static void create_work(http_request_t *req, void *arg)
{
    create_job_t *j = arg;
    api_ctx_t *ctx = api_ctx(req);
    if (dest_check_url(&j->url, ctx->allow, j->why, sizeof(j->why))) {
        j->status = 400;
        return;
    }
    j->rc = store_webhook_create(ctx->store, j->tenant_id, &j->w, ctx->max_webhooks);
    if (j->rc == BH_ECONFLICT) {
        snprintf(j->why, sizeof(j->why),
                 "this tenant already has %zu enabled webhooks, the most allowed; delete one "
                 "first",
                 ctx->max_webhooks);
        j->status = 409;
        j->rc = 0;
    } else if (j->rc == BH_ERANGE || j->rc == BH_EGONE) {
        char v[MODEL_VERSION_LEN + 1];
        model_version_format(j->w.resume_after, v);
        if (j->rc == BH_ERANGE)
            snprintf(j->why, sizeof(j->why),
                     "resumeAfter: %s is newer than this tenant's last change", v);
        else
            snprintf(j->why, sizeof(j->why),
                     "resumeAfter: the changes after %s are no longer retained; a full sync is "
                     "needed (a delta's initial load, or GET /breaks)",
                     v);
        j->status = j->rc == BH_ERANGE ? 400 : 410;
        j->rc = 0;
    }
}

static void create_done(http_request_t *req, void *arg)
{
    create_job_t *j = arg;
    if (j->status) {
        /* An address refusal also names the operator option that lifts it. */
        const char *reasons[] = { j->why, HINT_ALLOW_DESTINATION };
        bool url = j->status == 400 && strncmp(j->why, "resumeAfter", 11) != 0;
        http_respond_error(req, j->status,
                           j->status == 409   ? "too many webhooks"
                           : j->status == 410 ? "a full sync is needed"
                           : url              ? "invalid destinationUrl"
                                              : "invalid resumeAfter",
                           reasons, url ? 2 : 1);
        goto out;
    }
    if (j->rc) {
        api_respond_store_error(req, j->rc);
        goto out;
    }
    wh_view_t v = { .w = j->w };
    json_t *o = webhook_json(&v, clock_now_ms(api_ctx(req)->clock));
    char whsec[CRYPTO_WHSEC_LEN + 1];
    crypto_whsec_format(j->key, whsec);
    json_object_set_new(o, "key", json_string(whsec));
    OPENSSL_cleanse(whsec, sizeof(whsec));
    char loc[128];
    snprintf(loc, sizeof(loc), API_BASE "/webhooks/%s", j->w.id);
    http_response_header(req, "Location", loc);
    http_response_header(req, "Cache-Control", "no-store");
    log_info("webhook created", LOG_STR("rid", req->request_id), LOG_STR("webhook", j->w.id),
             LOG_STR("collection", collection_name(j->w.collection)));
    respond_json_obj(req, 201, o);
out:
    OPENSSL_cleanse(j->key, sizeof(j->key));
}

static bool is_protime_collection(const char *name)
{
    for (size_t i = 0; protime_collections[i]; i++)
        if (!strcmp(protime_collections[i], name))
            return true;
    return false;
}

/* Reads and checks the body; answers 400 and returns false when it is wrong. */
int api_webhook_body_parse(const char *p, size_t n, arena_t *arena, api_webhook_body_t *out,
                           const char **reasons, size_t *n_reasons)
{
    size_t k = 0;
    memset(out, 0, sizeof(*out));
    json_error_t err;
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o)) {
        reasons[k++] = o ? "body must be a JSON object" : "body is not valid JSON";
        goto bad;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "destinationUrl") && strcmp(key, "collectionName") &&
            strcmp(key, "resumeAfter") && k < 6)
            reasons[k++] = arena_printf(arena, "unknown property '%.64s'", key);
    }
    const char *url = json_string_value(json_object_get(o, "destinationUrl"));
    const char *coll = json_string_value(json_object_get(o, "collectionName"));
    if (!url)
        reasons[k++] = "destinationUrl: is required and must be a string";
    if (!coll) {
        reasons[k++] = "collectionName: is required and must be a string";
    } else if (!strcmp(coll, "breaks")) {
        out->collection = STORE_COLL_BREAKS;
    } else if (!strcmp(coll, "break-definitions")) {
        out->collection = STORE_COLL_DEFINITIONS;
    } else if (is_protime_collection(coll)) {
        reasons[k++] = arena_printf(arena,
                                    "collectionName: '%.64s' is not supported by this server "
                                    "(supported: breaks, break-definitions)",
                                    coll);
    } else {
        reasons[k++] = arena_printf(arena, "collectionName: unknown collection '%.64s'", coll);
    }
    json_t *resume = json_object_get(o, "resumeAfter");
    if (resume) {
        const char *v = json_string_value(resume);
        if (!v || model_version_parse(v, json_string_length(resume), &out->resume_after))
            reasons[k++] = "resumeAfter: must be a changeVersion as the API writes it (20 hex "
                           "digits), the last one the consumer applied";
        else
            out->resume = true;
    }
    if (k)
        goto bad;
    /* destinationUrl may hold a NUL (JSON allows \u0000): its length is the string's. */
    out->url = arena_strndup(arena, url, json_string_length(json_object_get(o, "destinationUrl")));
    out->url_len = json_string_length(json_object_get(o, "destinationUrl"));
    json_decref(o);
    if (!out->url) {
        reasons[k++] = "out of memory";
        *n_reasons = k;
        return BH_ENOMEM;
    }
    *n_reasons = 0;
    return 0;
bad:
    json_decref(o);
    for (size_t i = 0; i < k; i++)
        if (!reasons[i])
            reasons[i] = "out of memory";
    *n_reasons = k;
    return BH_EINVAL;
}

static bool read_create_body(http_request_t *req, create_job_t *j, const char **url_out,
                             size_t *url_len)
{
    const char *reasons[API_WEBHOOK_BODY_REASONS_MAX];
    size_t n = 0;
    api_webhook_body_t b;
    if (api_webhook_body_parse(buf_cstr(&req->body), req->body.len, &req->arena, &b, reasons,
                               &n)) {
        http_respond_error(req, n && !strcmp(reasons[0], "out of memory") ? 503 : 400,
                           "the request body is invalid", reasons, n);
        return false;
    }
    j->w.collection = b.collection;
    j->w.resume = b.resume;
    j->w.resume_after = b.resume_after;
    *url_out = b.url;
    *url_len = b.url_len;
    return true;
}

/* externalReferences of a webhook, as a JSON array of {collection, name}. */
static bool read_webhook_extrefs(http_request_t *req, create_job_t *j)
{
    const char *v;
    snprintf(j->w.ext_refs, sizeof(j->w.ext_refs), "[]");
    if (!http_request_query(req, "externalReferences", &v))
        return true;
    extref_list_t refs;
    char err[EXTREF_ERR_MAX];
    const char *why = err;
    if (extref_parse(v, strlen(v), &req->arena, &refs, err, sizeof(err)))
        goto bad;
    if (j->w.collection != STORE_COLL_BREAKS) {
        why = "externalReferences: break-definitions events carry no external references";
        goto bad;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < refs.n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s}", "collection", refs.items[i].collection,
                                           "name", refs.items[i].name));
    char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    if (!s || strlen(s) >= sizeof(j->w.ext_refs)) {
        free(s);
        why = "externalReferences: too long";
        goto bad;
    }
    snprintf(j->w.ext_refs, sizeof(j->w.ext_refs), "%s", s);
    free(s);
    return true;
bad:;
    const char *reasons[] = { why };
    http_respond_error(req, 400, "invalid externalReferences", reasons, 1);
    return false;
}

void api_webhook_create(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_WEBHOOKS_WRITE);
    if (!c || !api_require_json(req))
        return;
    api_ctx_t *ctx = api_ctx(req);
    create_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    j->tenant_id = c->tenant_id;
    const char *url;
    size_t url_len;
    if (!read_create_body(req, j, &url, &url_len))
        return;
    /* Subscribing to a collection needs the right to read it (SPEC §2). */
    const char *read_scope =
        j->w.collection == STORE_COLL_BREAKS ? SCOPE_BREAKS_READ : SCOPE_BREAK_DEFINITIONS_READ;
    if (!auth_scopes_contain(c->scope, read_scope)) {
        char *h = arena_printf(&req->arena, "Bearer error=\"insufficient_scope\", scope=\"%s\"",
                               read_scope);
        if (h)
            http_response_header(req, "WWW-Authenticate", h);
        char *r = arena_printf(&req->arena, "required scope: %s", read_scope);
        const char *reasons[] = { r ? r : read_scope };
        http_respond_error(req, 403, "the access token cannot read this collection", reasons, 1);
        return;
    }
    if (!read_webhook_extrefs(req, j))
        return;
    /* With its real length: a "\u0000" inside is refused, not a cut-off URL accepted. */
    if (dest_url_parse(url, url_len, ctx->allow_http, &j->url, j->why, sizeof(j->why))) {
        const char *reasons[] = { j->why, HINT_ALLOW_HTTP };
        bool plain_http = !ctx->allow_http && strncasecmp(url, "http:", 5) == 0;
        http_respond_error(req, 400, "invalid destinationUrl", reasons, plain_http ? 2 : 1);
        return;
    }
    int64_t now = clock_now_ms(ctx->clock);
    store_webhook_t *w = &j->w;
    snprintf(w->destination_url, sizeof(w->destination_url), "%s", url);
    w->created_at_ms = now;
    w->valid_until_ms = now + ctx->webhook_validity_ms;
    if (crypto_uuid4(ctx->rand, w->id) || rand_bytes(ctx->rand, j->key, sizeof(j->key)) ||
        crypto_key_seal(ctx->master, ctx->rand, c->tenant_id, w->id, j->key, w->key_blob,
                        &w->key_blob_len)) {
        http_respond_error(req, 500, "could not make a webhook key", NULL, 0);
        return;
    }
    api_run_write(req, create_work, create_done, j);
}

/* ---- GET /webhooks/{id}, DELETE /webhooks/{id} --------------------------- */

typedef struct one_job {
    int64_t tenant_id;
    const char *id;
    wh_view_t v;
    int64_t now_ms;
    int rc;
} one_job_t;

static one_job_t *one_job_new(http_request_t *req, const char *scope)
{
    const auth_claims_t *c = api_authorize(req, scope);
    if (!c)
        return NULL;
    one_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    slice_t id = http_request_param(req, "id");
    if (!j || !(j->id = arena_strndup(&req->arena, id.p, id.n))) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return NULL;
    }
    j->tenant_id = c->tenant_id;
    j->now_ms = clock_now_ms(api_ctx(req)->clock);
    j->rc = 0;
    if (id.n != STORE_WEBHOOK_ID_LEN) {
        http_respond_error(req, 404, "no such webhook", NULL, 0);
        return NULL;
    }
    return j;
}

static void get_work(http_request_t *req, void *arg)
{
    one_job_t *j = arg;
    store_t *s = api_ctx(req)->store;
    j->rc = store_webhook_get(s, j->tenant_id, j->id, &j->v.w);
    if (!j->rc)
        j->rc = view_load(s, j->tenant_id, j->now_ms, &j->v);
}

static void get_done(http_request_t *req, void *arg)
{
    one_job_t *j = arg;
    if (j->rc == BH_ENOTFOUND)
        http_respond_error(req, 404, "no such webhook", NULL, 0);
    else if (j->rc)
        api_respond_store_error(req, j->rc);
    else
        respond_json_obj(req, 200, webhook_json(&j->v, j->now_ms));
}

void api_webhook_get(http_request_t *req)
{
    one_job_t *j = one_job_new(req, SCOPE_WEBHOOKS_READ);
    if (j)
        api_run(req, get_work, get_done, j);
}

static void delete_work(http_request_t *req, void *arg)
{
    one_job_t *j = arg;
    j->rc = store_webhook_disable(api_ctx(req)->store, j->tenant_id, j->id, STORE_WH_DELETED,
                                  j->now_ms);
}

static void delete_done(http_request_t *req, void *arg)
{
    one_job_t *j = arg;
    if (j->rc == BH_ENOTFOUND) {
        http_respond_error(req, 404, "no such webhook", NULL, 0);
    } else if (j->rc) {
        api_respond_store_error(req, j->rc);
    } else {
        log_info("webhook deleted", LOG_STR("rid", req->request_id), LOG_STR("webhook", j->id));
        http_respond(req, 204, NULL, NULL, 0);
    }
}

void api_webhook_delete(http_request_t *req)
{
    one_job_t *j = one_job_new(req, SCOPE_WEBHOOKS_WRITE);
    if (j)
        api_run_write(req, delete_work, delete_done, j);
}

/* ---- GET /webhooks ------------------------------------------------------ */

typedef struct list_job {
    api_list_t list; /* first: api_list_done answers from it */
    int64_t tenant_id;
    store_webhook_query_t q;
    char after[STORE_WEBHOOK_ID_LEN + 1];
} list_job_t;

static void list_work(http_request_t *req, void *arg)
{
    list_job_t *j = arg;
    store_t *s = api_ctx(req)->store;
    store_webhook_t *ws = NULL;
    size_t n = 0, limit = j->q.limit;
    j->q.limit = limit + 1;
    j->list.rc = store_webhooks_list(s, j->tenant_id, &j->q, &ws, &n);
    if (j->list.rc)
        return;
    bool more = n > limit;
    if (more)
        n = limit;
    buf_t *out = &j->list.out;
    int rc = buf_append_str(out, "{\"value\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        wh_view_t v = { .w = ws[i] };
        rc = view_load(s, j->tenant_id, j->q.now_ms, &v);
        char *text = NULL;
        if (!rc) {
            json_t *o = webhook_json(&v, j->q.now_ms);
            text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(o);
            rc = text ? 0 : BH_ENOMEM;
        }
        if (!rc && i)
            rc = buf_append_char(out, ',');
        if (!rc)
            rc = buf_append_str(out, text);
        free(text);
    }
    /* The keyset position is the last id; it travels in the cursor as two halves. */
    api_cursor_t next = { 0, 0 };
    if (more)
        api_cursor_from_id(ws[n - 1].id, &next);
    rc = rc ? rc : api_list_close(req, "webhooks", more ? &next : NULL, out);
    free(ws);
    j->list.rc = rc;
}

void api_webhooks_list(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_WEBHOOKS_READ);
    if (!c)
        return;
    list_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    j->tenant_id = c->tenant_id;
    j->q.status = -1;
    j->q.now_ms = clock_now_ms(api_ctx(req)->clock);
    const char *expr;
    if (http_request_query(req, "filter", &expr)) {
        filter_webhooks_t f;
        char err[FILTER_ERR_MAX];
        if (filter_webhooks_compile(expr, strlen(expr), &req->arena, &f, err, sizeof(err))) {
            const char *reasons[] = { err };
            http_respond_error(req, 400, "invalid filter", reasons, 1);
            return;
        }
        if (f.status != FILTER_WEBHOOK_ANY)
            j->q.status = f.status == FILTER_WEBHOOK_ENABLED ? STORE_WH_ENABLED : STORE_WH_DISABLED;
        if (f.collection_name) {
            if (!strcmp(f.collection_name, "breaks"))
                j->q.collection = STORE_COLL_BREAKS;
            else if (!strcmp(f.collection_name, "break-definitions"))
                j->q.collection = STORE_COLL_DEFINITIONS;
            else
                j->q.collection = (store_collection_t)-1; /* matches nothing */
        }
    }
    if (!(j->q.limit = api_page_size(req)))
        return;
    api_cursor_t cur;
    int have = api_cursor_read(req, "webhooks", &cur);
    if (have < 0)
        return;
    if (have) {
        api_cursor_to_id(&cur, j->after);
        j->q.after_id = j->after;
    }
    if (j->q.collection == (store_collection_t)-1) {
        static const char empty[] = "{\"value\":[]}";
        http_respond_json(req, 200, empty, sizeof(empty) - 1);
        return;
    }
    buf_init(&j->list.out, 16 << 20);
    api_run(req, list_work, api_list_done, j);
}

/* ---- GET /webhooks/{id}/deliveries --------------------------------------- */

typedef struct deliveries_job {
    api_list_t list; /* first: api_list_done answers from it */
    int64_t tenant_id;
    const char *id;
    store_attempt_query_t q;
} deliveries_job_t;

static const char *attempt_status_name(store_attempt_status_t s)
{
    return s == STORE_ATTEMPT_DELIVERED ? "Delivered" : s == STORE_ATTEMPT_FAILED ? "Failed"
                                                                                  : "GaveUp";
}

static json_t *attempt_json(const store_attempt_t *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "eventId", json_string(a->event_id));
    json_object_set_new(o, "recordId", json_integer(a->record_id));
    json_object_set_new(o, "changeVersion", version_json(a->version));
    json_object_set_new(o, "changeType",
                        json_string(a->change_type == STORE_CHANGE_DELETE ? "Delete"
                                                                          : "InsertOrUpdate"));
    json_object_set_new(o, "attempt", json_integer(a->attempt));
    json_object_set_new(o, "status", json_string(attempt_status_name(a->status)));
    json_object_set_new(o, "attemptedAt", time_json(a->attempted_at_ms));
    json_object_set_new(o, "durationMs", json_integer(a->duration_ms));
    json_object_set_new(o, "httpStatus", a->http_status ? json_integer(a->http_status) : json_null());
    json_object_set_new(o, "error", a->error[0] ? json_string(a->error) : json_null());
    json_object_set_new(o, "nextAttemptAt", time_json(a->next_attempt_at_ms));
    /* The answer body as received; invalid UTF-8 is replaced so the JSON stays valid. */
    json_t *ex = json_string(a->excerpt);
    if (!ex) {
        char copy[STORE_EXCERPT_MAX + 1];
        size_t n = strlen(a->excerpt);
        for (size_t i = 0; i <= n; i++)
            copy[i] = (unsigned char)a->excerpt[i] >= 0x80 ? '?' : a->excerpt[i];
        ex = json_string(copy);
    }
    json_object_set_new(o, "responseBody", ex ? ex : json_null());
    return o;
}

static void deliveries_work(http_request_t *req, void *arg)
{
    deliveries_job_t *j = arg;
    store_attempt_t *as = NULL;
    int64_t *seqs = NULL;
    size_t n = 0, limit = j->q.limit;
    j->q.limit = limit + 1;
    j->list.rc = store_attempts_list(api_ctx(req)->store, j->tenant_id, j->id, &j->q, &as, &seqs,
                                     &n);
    if (j->list.rc)
        return;
    bool more = n > limit;
    if (more)
        n = limit;
    buf_t *out = &j->list.out;
    int rc = buf_append_str(out, "{\"value\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *o = attempt_json(&as[i]);
        char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        rc = text ? 0 : BH_ENOMEM;
        if (!rc && i)
            rc = buf_append_char(out, ',');
        if (!rc)
            rc = buf_append_str(out, text);
        free(text);
    }
    api_cursor_t next = { more ? seqs[n - 1] : 0, 0 };
    rc = rc ? rc : api_list_close(req, "deliveries", more ? &next : NULL, out);
    free(as);
    free(seqs);
    j->list.rc = rc;
}

static void deliveries_done(http_request_t *req, void *arg)
{
    deliveries_job_t *j = arg;
    if (j->list.rc == BH_ENOTFOUND) {
        buf_deinit(&j->list.out);
        http_respond_error(req, 404, "no such webhook", NULL, 0);
        return;
    }
    api_list_done(req, arg);
}

void api_webhook_deliveries(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_WEBHOOKS_READ);
    if (!c)
        return;
    deliveries_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    slice_t id = http_request_param(req, "id");
    if (!j || !(j->id = arena_strndup(&req->arena, id.p, id.n))) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(&j->list, 0, sizeof(j->list));
    memset(&j->q, 0, sizeof(j->q));
    j->tenant_id = c->tenant_id;
    j->q.status = -1;
    if (id.n != STORE_WEBHOOK_ID_LEN) {
        http_respond_error(req, 404, "no such webhook", NULL, 0);
        return;
    }
    const char *expr;
    if (http_request_query(req, "filter", &expr)) {
        /* status eq 'Delivered' | 'Failed' | 'GaveUp' */
        static const char *const statuses[] = { "Delivered", "Failed", "GaveUp", NULL };
        static const filter_field_t fields[] = {
            { "status", FILTER_T_STRING, FILTER_SINGLE, statuses },
        };
        const filter_node_t *root = NULL;
        filter_error_t ferr;
        filter_query_t q;
        char err[FILTER_ERR_MAX];
        if (filter_parse(expr, strlen(expr), &req->arena, &root, &ferr)) {
            const char *reasons[] = { ferr.msg };
            http_respond_error(req, 400, "invalid filter", reasons, 1);
            return;
        }
        if (filter_compile(root, fields, 1, &req->arena, &q, err, sizeof(err))) {
            const char *reasons[] = { err };
            http_respond_error(req, 400, "invalid filter", reasons, 1);
            return;
        }
        if (q.conds[0].present && q.conds[0].n_strs) {
            slice_t v = q.conds[0].strs[0];
            j->q.status = slice_eq_cstr(v, "Delivered") ? STORE_ATTEMPT_DELIVERED
                          : slice_eq_cstr(v, "Failed")  ? STORE_ATTEMPT_FAILED
                                                        : STORE_ATTEMPT_GAVE_UP;
        }
    }
    if (!(j->q.limit = api_page_size(req)))
        return;
    api_cursor_t cur;
    int have = api_cursor_read(req, "deliveries", &cur);
    if (have < 0)
        return;
    if (have)
        j->q.before_seq = cur.a;
    buf_init(&j->list.out, 64 << 20);
    api_run(req, deliveries_work, deliveries_done, j);
}
