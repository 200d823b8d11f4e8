/*
 * harness_api.c: a booted server with tenant, client, token and seeded data
 * (harness_api.h).
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "harness_api.h"
#include "model/model.h"

void it_srv_start(it_srv_t *s, const it_server_opts_t *o)
{
    s->conn.fd = -1;
    if (it_server_start(&s->s, o) != 0) {
        s->started = s->s.dir[0] != '\0';
        s->done = true;
        fail_msg("server did not start: %s", it_last_error());
    }
    s->started = true;
    snprintf(s->store, sizeof(s->store), "%s", s->s.store_url);
}

void it_srv_boot(it_srv_t *s, const it_boot_opts_t *o)
{
    static const it_boot_opts_t none = { 0 };
    if (!o)
        o = &none;
    const char *args[40];
    size_t n = 0;
    args[n++] = "--rate-limit";
    args[n++] = "0";
    if (o->same_store) {
        args[n++] = "--store"; /* the last --store wins over the harness's own */
        args[n++] = o->same_store->store;
    }
    for (size_t i = 0; o->args && o->args[i]; i++) {
        if (n >= 38)
            fail_msg("it_srv_boot: more than %zu arguments", n);
        args[n++] = o->args[i];
    }
    args[n] = NULL;
    it_server_opts_t so = { .args = args, .env = o->env };
    it_srv_start(s, &so);
    if (o->same_store) {
        memcpy(s->store, o->same_store->store, sizeof(s->store));
        s->client = o->same_store->client;
    } else {
        it_tenant_create(&s->s, IT_TENANT);
        it_client_create(&s->s, IT_TENANT, o->scopes ? o->scopes : IT_ALL_SCOPES, &s->client);
    }
    it_srv_auth(s, &s->client, NULL);
}

void it_srv_auth(it_srv_t *s, const it_client_t *c, const char *scope)
{
    char *h = it_token_header(s->s.port, c, scope);
    if (strlen(h) >= sizeof(s->auth))
        fail_msg("a token header of %zu bytes does not fit", strlen(h));
    snprintf(s->auth, sizeof(s->auth), "%s", h);
    free(h);
}

void it_srv_stop(it_srv_t *s)
{
    it_conn_close(&s->conn);
    int st = it_server_stop(&s->s, 0);
    s->done = true;
    if (st != 0) {
        it_server_dump(&s->s);
        fail_msg("the server exited with status %d", st);
    }
}

int it_srv_finish(it_srv_t *s)
{
    if (!s->started)
        return 0;
    it_conn_close(&s->conn);
    int rc = 0;
    if (!s->done && it_server_stop_clean(&s->s) != 0)
        rc = -1;
    it_server_cleanup(&s->s);
    s->started = false;
    return rc;
}

int it_srv_setup(void **state)
{
    it_srv_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    *state = s;
    return 0;
}

int it_srv_teardown(void **state)
{
    it_srv_t *s = *state;
    int rc = it_srv_finish(s);
    free(s);
    return rc;
}

it_srv_t *it_srvs_next(it_srvs_t *v)
{
    if (v->n >= IT_MAX_SRV)
        fail_msg("a test may start at most %d servers", IT_MAX_SRV);
    return &v->srv[v->n++];
}

int it_srvs_finish(it_srvs_t *v)
{
    int rc = 0;
    for (size_t i = IT_MAX_SRV; i-- > 0;)
        if (it_srv_finish(&v->srv[i]) != 0)
            rc = -1;
    return rc;
}

int it_srvs_setup(void **state)
{
    it_srvs_t *v = calloc(1, sizeof(*v));
    if (!v)
        return -1;
    *state = v;
    return 0;
}

int it_srvs_teardown(void **state)
{
    it_srvs_t *v = *state;
    int rc = it_srvs_finish(v);
    free(v);
    return rc;
}

void it_srv_call(it_srv_t *s, const char *auth, const char *method, const char *target,
                 const char *ctype, const char *body, size_t len, it_response_t *r)
{
    it_conn_ensure(&s->conn, s->s.port);
    char *headers = it_fmt("%s%s%s%s", auth ? auth : "", ctype ? "Content-Type: " : "",
                           ctype ? ctype : "", ctype ? "\r\n" : "");
    int rc = it_conn_request(&s->conn, method, target, headers, body, len, r);
    free(headers);
    if (rc != 0) {
        it_conn_close(&s->conn);
        fail_msg("%s %.200s: %s (server running: %d)", method, target, it_last_error(),
                 it_server_running(&s->s));
    }
    const char *c = it_response_header(r, "connection");
    if (c && strcasecmp(c, "close") == 0)
        it_conn_close(&s->conn);
}

json_t *it_srv_expect(it_srv_t *s, const char *method, const char *target, const char *body,
                      int status)
{
    return it_srv_expect_as(s, s->auth, method, target, body, status);
}

json_t *it_srv_expect_as(it_srv_t *s, const char *auth, const char *method, const char *target,
                         const char *body, int status)
{
    it_response_t r;
    it_srv_call(s, auth, method, target, body ? "application/json" : NULL, body,
                body ? strlen(body) : 0, &r);
    bool ok = status ? r.status == status : (r.status == 200 || r.status == 201);
    if (!ok)
        fail_msg("%s %.200s: status %d, expected %d; body: %.600s", method, target, r.status,
                 status, r.body);
    /* docs/API.md: a PUT that creates answers 201 and Location; one that replaces, none. */
    const char *loc = it_response_header(&r, "location");
    if (strcmp(method, "PUT") == 0 && r.status == 201 && (!loc || strcmp(loc, target) != 0))
        fail_msg("PUT %s: Location is '%s', expected the target", target, loc ? loc : "(none)");
    if (strcmp(method, "PUT") == 0 && r.status != 201 && loc)
        fail_msg("PUT %s: status %d with a Location header", target, r.status);
    json_t *j = r.status == 204 ? NULL : it_assert_json(&r, r.status);
    it_response_free(&r);
    return j;
}

void it_seed_people(it_srv_t *s, int n, unsigned refs)
{
    for (int i = 1; i <= n; i++) {
        char emp[48] = "", hrmid[48] = "";
        if (refs & IT_REF_EMPLOYEE)
            snprintf(emp, sizeof(emp), "\"@employee-number\":\"E-%d\"", i);
        if (refs & IT_REF_HRMID)
            snprintf(hrmid, sizeof(hrmid), "%s\"HRMID\":\"H-%d\"", emp[0] ? "," : "", i);
        char *path = it_fmt(IT_BASE "/people/%d", i);
        char *body = refs ? it_fmt("{\"id\":%d,\"externalReferences\":{%s%s}}", i, emp, hrmid)
                          : it_fmt("{\"id\":%d}", i);
        json_decref(it_srv_expect(s, "PUT", path, body, 201));
        free(path);
        free(body);
    }
}

void it_seed_definition(it_srv_t *s, const it_definition_t *d)
{
    char *path = it_fmt(IT_BASE "/break-definitions/%lld", (long long)d->id);
    char *body = it_fmt("{\"id\":%lld,\"name\":{\"default\":\"Lunch\"%s},\"friendlyName\":"
                        "{\"default\":\"Lunch break\"},\"paidDurationInMinutes\":%d,"
                        "\"minimumDurationInMinutes\":%d,\"maximumDurationInMinutes\":%d,"
                        "\"ifNotClockedDurationInMinutes\":%d,\"hasToBeTakenUninterrupted\":%s}",
                        (long long)d->id,
                        d->translated ? ",\"translations\":{\"nl\":\"Lunch-nl\"}" : "", d->paid,
                        d->minimum, d->maximum, d->if_not_clocked,
                        d->uninterrupted ? "true" : "false");
    json_decref(it_srv_expect(s, "PUT", path, body, 201));
    free(path);
    free(body);
}

uint64_t it_version_num(const char *s)
{
    uint64_t v;
    return s && model_version_parse(s, strlen(s), &v) == 0 ? v : 0;
}

void it_webhook_create(it_srv_t *s, const char *url, const char *ext_refs, it_webhook_t *out)
{
    snprintf(out->url, sizeof(out->url), "%s", url);
    char *target;
    if (ext_refs) {
        char *e = it_urlenc(ext_refs);
        target = it_fmt(IT_BASE "/webhooks?externalReferences=%s", e);
        free(e);
    } else {
        target = it_fmt(IT_BASE "/webhooks");
    }
    char *body = it_fmt("{\"destinationUrl\":\"%s\",\"collectionName\":\"breaks\"}", url);
    json_t *j = it_srv_expect(s, "POST", target, body, 201);
    free(target);
    free(body);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *key = json_string_value(json_object_get(j, "key"));
    if (!id || !key || strlen(id) >= sizeof(out->id) || strlen(key) >= sizeof(out->key))
        fail_msg("webhook create answered no id or key (or one too long)");
    snprintf(out->id, sizeof(out->id), "%s", id);
    snprintf(out->key, sizeof(out->key), "%s", key);
    json_decref(j);
}

int64_t it_jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer", key);
    return (int64_t)json_integer_value(v);
}

const char *it_jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) {
        char *t = json_dumps(o, JSON_COMPACT);
        fail_msg("'%s' is not a string in %.600s", key, t ? t : "(not JSON)");
    }
    return s;
}

void it_expect_error(const it_response_t *r, int status, const char *code, ...)
{
    if (r->status != status)
        fail_msg("status %d, expected %d; body: %.600s", r->status, status, r->body);
    it_assert_error(r, status, code);
    json_t *j = it_json_parse(r->body, r->body_len);
    json_t *reasons = json_object_get(json_object_get(j, "error"), "reasons");
    va_list ap;
    va_start(ap, code);
    const char *frags[8];
    size_t n = 0;
    const char *s;
    while (n < 8 && (s = va_arg(ap, const char *)) != NULL)
        frags[n++] = s;
    va_end(ap);
    bool found = false;
    for (size_t i = 0; i < json_array_size(reasons) && !found; i++) {
        const char *rs = json_string_value(json_array_get(reasons, i));
        bool all = rs != NULL && (n > 0 || rs[0] != '\0');
        for (size_t k = 0; k < n && all; k++)
            all = strstr(rs, frags[k]) != NULL;
        found = all;
    }
    json_decref(j);
    if (found)
        return;
    if (n == 0)
        fail_msg("status %d without a reason: %.600s", status, r->body);
    char want[256] = "";
    for (size_t k = 0; k < n; k++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", k ? " | " : "",
                 frags[k]);
    fail_msg("status %d: no reason contains all of [%s]; body: %.600s", status, want, r->body);
}

json_t *it_ndjson_lines(const char *body, size_t len)
{
    json_t *a = json_array();
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p) {
            json_t *j = it_json_parse(p, (size_t)(le - p));
            if (!j)
                fail_msg("answer line is not JSON: %.*s", (int)(le - p > 200 ? 200 : le - p), p);
            json_array_append_new(a, j);
        }
        p = nl ? nl + 1 : end;
    }
    return a;
}

char *it_continuation_token(const char *link)
{
    const char *p = strstr(link, "continuationToken=");
    if (!p)
        fail_msg("nextLink without continuationToken: %s", link);
    p += strlen("continuationToken=");
    size_t n = strcspn(p, "&");
    if (n == 0)
        fail_msg("nextLink with an empty continuationToken: %s", link);
    char *t = strndup(p, n);
    assert_non_null(t);
    return t;
}

int64_t it_iso_ms(const char *t)
{
    int Y, M, D, h, m, sec, oh, om, used = 0;
    char sign;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &used) != 6 || used != 19)
        fail_msg("'%s' is not an ISO 8601 date-time", t);
    const char *p = t + 19;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            fail_msg("'%s': empty fraction", t);
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (sscanf(p, "%c%2d:%2d%n", &sign, &oh, &om, &used) != 3 || used != 6 || p[6] ||
        (sign != '+' && sign != '-'))
        fail_msg("'%s' does not end in a numeric offset (+HH:MM)", t);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    int64_t secs = (int64_t)timegm(&tm);
    int64_t off = (int64_t)(oh * 60 + om) * 60;
    secs -= sign == '+' ? off : -off;
    return secs * 1000 + frac;
}
