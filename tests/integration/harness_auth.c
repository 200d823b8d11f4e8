/*
 * harness_auth.c: tenants, clients and tokens for integration tests (harness_auth.h).
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/clock.h"
#include "harness_auth.h"
#include "store/store.h"

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}


void it_run_dump(const it_run_result_t *r)
{
    fprintf(stderr, "exit %d\n--- stdout\n%s--- stderr\n%s---\n", r->status, r->out, r->err);
}

/* Runs `breakhook <args...> --store <the server's store>` and requires exit 0. */
void it_cli_store(const it_server_t *s, const char *const *args, it_run_result_t *r)
{
    const char *argv[32];
    size_t n = 0;
    const char *url = s->store_url;
    for (; args[n]; n++) {
        assert_true(n + 3 < sizeof(argv) / sizeof(argv[0]));
        argv[n] = args[n];
    }
    argv[n++] = "--store";
    argv[n++] = url;
    argv[n] = NULL;
    it_run_opts_t o = { .timeout_ms = 30000 };
    if (it_run(argv, &o, r) != 0)
        fail_msg("could not run breakhook %s: %s", args[0], it_last_error());
    if (r->status != 0) {
        it_run_dump(r);
        fail_msg("breakhook %s %s: exit status %d", args[0], args[1] ? args[1] : "", r->status);
    }
}

void it_tenant_create(const it_server_t *s, const char *name)
{
    const char *args[] = { "tenant", "create", name, NULL };
    it_run_result_t r;
    it_cli_store(s, args, &r);
    it_run_result_free(&r);
}

/* `client create --json`: checks the one line it prints and fills c. */
void it_client_create(const it_server_t *s, const char *tenant, const char *scopes,
                      it_client_t *c)
{
    const char *args[] = { "client", "create", "--tenant", tenant, "--name", "it",
                           "--scopes", scopes, "--json", NULL };
    it_run_result_t r;
    it_cli_store(s, args, &r);
    json_t *j = it_json_parse(r.out, strlen(r.out));
    if (!json_is_object(j)) {
        it_run_dump(&r);
        fail_msg("client create --json did not print one JSON object");
    }
    const char *t = json_string_value(json_object_get(j, "tenant"));
    const char *id = json_string_value(json_object_get(j, "clientId"));
    const char *secret = json_string_value(json_object_get(j, "clientSecret"));
    json_t *sc = json_object_get(j, "scopes");
    assert_non_null(t);
    assert_string_equal(t, tenant);
    assert_non_null(id);
    assert_non_null(secret);
    assert_true(strlen(id) > 0 && strlen(id) < sizeof(c->id));
    assert_true(strlen(secret) >= 16 && strlen(secret) < sizeof(c->secret));
    assert_true(json_is_array(sc));
    /* The scopes array lists exactly what was asked for (space separated here). */
    size_t want = 0;
    for (const char *p = scopes; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (e > p) {
            const char *got = json_string_value(json_array_get(sc, want));
            if (!got || strlen(got) != (size_t)(e - p) || strncmp(got, p, (size_t)(e - p)))
                fail_msg("client create: scopes[%zu] is '%s', expected '%.*s'", want,
                         got ? got : "(none)", (int)(e - p), p);
            want++;
        }
        p = e;
    }
    assert_int_equal(json_array_size(sc), want);
    snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->secret, sizeof(c->secret), "%s", secret);
    json_decref(j);
    it_run_result_free(&r);
}

void it_req(int port, const char *method, const char *target, const char *headers,
            const char *body, it_response_t *r)
{
    if (it_request(port, method, target, headers, body, body ? strlen(body) : 0, r) != 0)
        fail_msg("%s %.80s: %s", method, target, it_last_error());
}

/* A 200 token answer: exactly the four members, Bearer, expires_in, scope, no-store.
 * Returns the access token (malloc'd). */
char *it_assert_token_ok(const it_response_t *r, const char *want_scope, long long ttl)
{
    json_t *j = it_assert_json(r, 200);
    const char *cc = it_response_header(r, "cache-control");
    if (!cc || strcmp(cc, "no-store") != 0)
        fail_msg("token answer: Cache-Control is '%s', expected no-store", cc ? cc : "(none)");
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    const char *type = json_string_value(json_object_get(j, "token_type"));
    json_t *exp = json_object_get(j, "expires_in");
    const char *scope = json_string_value(json_object_get(j, "scope"));
    if (!tok || !*tok || !type || !json_is_integer(exp) || !scope)
        fail_msg("token answer misses a member: %s", r->body);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(type, "Bearer");
    assert_int_equal(json_integer_value(exp), ttl);
    if (want_scope)
        assert_string_equal(scope, want_scope);
    /* Three base64url segments: a JWS in compact form. */
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d2[1] == '\0')
        fail_msg("access_token is not a compact JWS: %s", tok);
    char *out = strdup(tok);
    assert_non_null(out);
    json_decref(j);
    return out;
}

char *it_token_get(int port, const it_client_t *c, const char *scope, const char *host)
{
    char *extra = scope ? it_fmt("&scope=%s", scope) : NULL;
    /* a form body encodes spaces as '+' */
    for (char *p = extra; p && *p; p++)
        if (*p == ' ')
            *p = '+';
    char *eid = it_urlenc(c->id), *esec = it_urlenc(c->secret);
    char *body = it_fmt("grant_type=client_credentials&client_id=%s&client_secret=%s%s", eid,
                        esec, extra ? extra : "");
    free(eid);
    free(esec);
    char *headers = host ? it_fmt(IT_FORM_CT "Host: %s\r\n", host) : it_fmt(IT_FORM_CT);
    char *target = it_fmt("/tenants/%s/connect/token", c->tenant);
    it_response_t r;
    it_req(port, "POST", target, headers, body, &r);
    char *tok = it_assert_token_ok(&r, scope, 1800);
    it_response_free(&r);
    free(target);
    free(extra);
    free(body);
    free(headers);
    return tok;
}

char *it_token_header(int port, const it_client_t *c, const char *scope)
{
    char *tok = it_token_get(port, c, scope, NULL);
    char *h = it_fmt("Authorization: Bearer %s\r\n", tok);
    free(tok);
    return h;
}

/* Issues a token signed with the server's real current key (read from its store), for
 * the claims given: the only way to get an expired or not-yet-valid one in a test. */
char *it_token_forge(const it_server_t *s, const it_client_t *c, const char *scope, int64_t iat,
                     int64_t nbf, int64_t exp)
{
    const char *url = s->store_url;
    store_t *st = NULL;
    const char *msg = NULL;
    store_options_t so = { 0 };
    if (store_open(url, &so, &st, &msg) != 0)
        fail_msg("store_open %s: %s", url, msg ? msg : "?");
    store_signing_key_t *keys = NULL;
    size_t nk = 0;
    store_tenant_t t;
    assert_int_equal(store_signing_key_list(st, &keys, &nk), 0);
    assert_true(nk > 0);
    assert_int_equal(store_tenant_get(st, c->tenant, &t), 0);
    store_close(st);
    auth_keyring_t ring;
    auth_keyring_init(&ring);
    auth_keyring_set(&ring, keys, nk);
    free(keys);
    auth_claims_t cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.tenant, sizeof(cl.tenant), "%s", t.name);
    cl.tenant_id = t.id;
    snprintf(cl.client_id, sizeof(cl.client_id), "%s", c->id);
    snprintf(cl.scope, sizeof(cl.scope), "%s", scope);
    cl.iat = iat;
    cl.nbf = nbf;
    cl.exp = exp;
    char *tok = NULL;
    assert_int_equal(auth_token_issue(&ring, rand_system(), &cl, &tok), 0);
    auth_keyring_deinit(&ring);
    return tok;
}

/* An API request with a bearer token (or none), an optional Host, a JSON body. */
void it_api_request(int port, const char *method, const char *target, const char *token,
                    const char *host, const char *body, it_response_t *r)
{
    char *headers = it_fmt("%s%s%s%s%s%s", token ? "Authorization: Bearer " : "",
                           token ? token : "", token ? "\r\n" : "", host ? "Host: " : "",
                           host ? host : "", host ? "\r\n" : "");
    if (body) {
        char *h2 = it_fmt("%s" IT_JSON_CT, headers);
        free(headers);
        headers = h2;
    }
    it_req(port, method, target, headers, body, r);
    free(headers);
}

json_t *it_api_expect(int port, const char *method, const char *target, const char *token,
                      const char *host, const char *body, int status)
{
    it_response_t r;
    it_api_request(port, method, target, token, host, body, &r);
    if (r.status != status)
        fail_msg("%s %s: expected %d, got %d: %.400s", method, target, status, r.status, r.body);
    json_t *j = status == 204 ? NULL : it_assert_json(&r, status);
    it_response_free(&r);
    return j;
}

char *it_get_body(int port, const char *target, const char *token, const char *host)
{
    it_response_t r;
    it_api_request(port, "GET", target, token, host, NULL, &r);
    if (r.status != 200)
        fail_msg("GET %s: expected 200, got %d: %.400s", target, r.status, r.body);
    json_decref(it_assert_json(&r, 200));
    char *b = strdup(r.body);
    assert_non_null(b);
    it_response_free(&r);
    return b;
}

size_t it_list_size(int port, const char *target, const char *token, const char *host)
{
    json_t *j = it_api_expect(port, "GET", target, token, host, NULL, 200);
    json_t *v = json_object_get(j, "value");
    if (!json_is_array(v))
        fail_msg("GET %s: no value list", target);
    size_t n = json_array_size(v);
    json_decref(j);
    return n;
}

/* 401 with the SPEC body and a Bearer challenge (invalid_token when one was sent). */
void it_assert_401(const it_response_t *r, bool had_token)
{
    it_assert_error(r, 401, "Unauthorized");
    const char *w = it_response_header(r, "www-authenticate");
    if (!starts_with(w, "Bearer"))
        fail_msg("401 without a Bearer challenge: WWW-Authenticate '%s'", w ? w : "(none)");
    if (had_token && !strstr(w, "error=\"invalid_token\""))
        fail_msg("401 for a bad token without error=\"invalid_token\": '%s'", w);
}

void it_assert_403(const it_response_t *r, const char *scope)
{
    it_assert_error(r, 403, "Forbidden");
    const char *w = it_response_header(r, "www-authenticate");
    if (!starts_with(w, "Bearer") || !strstr(w, "error=\"insufficient_scope\""))
        fail_msg("403 with WWW-Authenticate '%s'", w ? w : "(none)");
    char *want = it_fmt("scope=\"%s\"", scope);
    if (!strstr(w, want))
        fail_msg("the challenge '%s' does not name %s", w, scope);
    free(want);
}
