/*
 * test_auth.c: the authentication flow as an integrator and an operator see it,
 * against the real binary (`breakhook serve` on 127.0.0.1, started per test).
 *
 * Tenants, API clients and signing keys are made with the CLI (`tenant create`,
 * `client create --json`, `client revoke`, `key rotate`) on the very SQLite file
 * the running server uses, the way an operator does it. Then the test talks HTTP:
 * the token endpoint (RFC 6749 §4.4 and its §5.2 errors), the discovery document,
 * GET /token-info with good, bad, forged and foreign tokens, scopes (403), revocation
 * and key rotation picked up by a running server, the per-client rate limit (429),
 * the token endpoint's per-address and global limits under a flood of made-up client
 * ids, --domain Host checks, and tenant isolation on every data route.
 *
 * Every test stops its server(s) with SIGTERM in the teardown and requires exit
 * code 0, so under ASan/UBSan a memory error in the server fails the test too.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/clock.h"
#include "harness_api.h"
#include "store/store.h"

#define API "/connector/protimeapi/api/v1"
#define TOKEN_INFO API "/token-info"

#define REFRESH_MS 200         /* --revocation-refresh used by the tests that need it */
#define REVOKE_BOUND_MS 15000  /* a revoked client's token must fail within this (refresh is 200 ms; the rest is slack for a loaded machine) */
#define POLL_MS 50

typedef it_srvs_t fixture_t; /* servers 0 and 1 */

/* ---- fixture ------------------------------------------------------------------------ */

/* Starts server idx with extra arguments (NULL-terminated, may be NULL). */
static it_server_t *start(void **state, int idx, const char *const *args)
{
    fixture_t *f = *state;
    it_server_opts_t o = { .args = args };
    it_srv_start(&f->srv[idx], &o);
    return &f->srv[idx].s;
}

/* ---- small helpers ------------------------------------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64 of (p, n): standard alphabet with padding, or base64url without. malloc'd. */
static char *b64_encode(const void *p, size_t n, bool url)
{
    const unsigned char *in = p;
    const char *alpha = url ? b64_url : b64_std;
    char *out = malloc(4 * (n / 3 + 1) + 1);
    assert_non_null(out);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Decodes unpadded base64url (p, n) into a malloc'd NUL-terminated buffer; NULL when
 * it is not base64url. */
static char *b64url_decode(const char *p, size_t n, size_t *len)
{
    char *out = malloc(n * 3 / 4 + 4);
    assert_non_null(out);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = p[i] ? strchr(b64_url, p[i]) : NULL;
        if (!c) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(c - b64_url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    if (len)
        *len = o;
    return out;
}

/* Segment idx (0 header, 1 payload, 2 signature) of a JWT as (start, length). */
static void jwt_segment(const char *token, int idx, const char **p, size_t *n)
{
    const char *s = token;
    for (int i = 0; i < idx; i++) {
        s = strchr(s, '.');
        assert_non_null(s);
        s++;
    }
    const char *e = strchr(s, '.');
    *p = s;
    *n = e ? (size_t)(e - s) : strlen(s);
}

/* The decoded JSON of segment idx (header or payload) of a JWT. */
static json_t *jwt_json(const char *token, int idx)
{
    const char *p;
    size_t n, len;
    jwt_segment(token, idx, &p, &n);
    char *raw = b64url_decode(p, n, &len);
    if (!raw)
        fail_msg("JWT segment %d is not base64url: %.*s", idx, (int)n, p);
    json_t *j = it_json_parse(raw, len);
    if (!json_is_object(j))
        fail_msg("JWT segment %d is not a JSON object: %s", idx, raw);
    free(raw);
    return j;
}

/* The "kid" of a JWT's header, malloc'd. */
static char *jwt_kid(const char *token)
{
    json_t *h = jwt_json(token, 0);
    const char *kid = json_string_value(json_object_get(h, "kid"));
    if (!kid || !*kid)
        fail_msg("the token header has no kid");
    char *s = strdup(kid);
    json_decref(h);
    assert_non_null(s);
    return s;
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the CLI ------------------------------------------------------------------------- */

static void client_revoke(const it_server_t *s, const it_client_t *c)
{
    const char *args[] = { "client", "revoke", "--tenant", c->tenant, c->id, NULL };
    it_run_result_t r;
    it_cli_store(s, args, &r);
    assert_non_null(strstr(r.out, c->id));
    it_run_result_free(&r);
}

/* ---- HTTP ---------------------------------------------------------------------------- */

/* POST /tenants/<tenant>/connect/token with exactly these extra header lines. */
static void token_post(int port, const char *tenant, const char *headers, const char *body,
                       it_response_t *r)
{
    char *target = it_fmt("/tenants/%s/connect/token", tenant);
    it_req(port, "POST", target, headers, body, r);
    free(target);
}

static char *form_creds(const it_client_t *c, const char *extra)
{
    return it_fmt("grant_type=client_credentials&client_id=%s&client_secret=%s%s", c->id, c->secret,
               extra ? extra : "");
}

/* "Authorization: Basic ...\r\n" for id:secret. */
static char *basic_header(const char *id, const char *secret)
{
    char *pair = it_fmt("%s:%s", id, secret);
    char *b = b64_encode(pair, strlen(pair), false);
    char *h = it_fmt("Authorization: Basic %s\r\n", b);
    free(pair);
    free(b);
    return h;
}

/* An RFC 6749 §5.2 error answer: status, JSON with "error" (and a string
 * "error_description"), Cache-Control: no-store. */
static void assert_oauth_error(const it_response_t *r, int status, const char *error)
{
    json_t *j = it_assert_json(r, status);
    const char *e = json_string_value(json_object_get(j, "error"));
    if (!e || strcmp(e, error) != 0)
        fail_msg("expected error '%s', got: %s", error, r->body);
    json_t *d = json_object_get(j, "error_description");
    if (d && !json_is_string(d))
        fail_msg("error_description is not a string: %s", r->body);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "error") && strcmp(k, "error_description") && strcmp(k, "error_uri"))
            fail_msg("unexpected member '%s' in an OAuth error: %s", k, r->body);
    }
    const char *cc = it_response_header(r, "cache-control");
    if (!cc || strcmp(cc, "no-store") != 0)
        fail_msg("status %d: Cache-Control is '%s', expected no-store", status,
                 cc ? cc : "(none)");
    json_decref(j);
}

/* `key rotate`; returns the new key's kid (as the CLI prints it) in kid. */
static void key_rotate(const it_server_t *s, char *kid, size_t n)
{
    const char *args[] = { "key", "rotate", NULL };
    it_run_result_t rr;
    it_cli_store(s, args, &rr);
    char got[64] = "";
    if (sscanf(rr.out, "new signing key %63s is active", got) != 1) {
        it_run_dump(&rr);
        fail_msg("key rotate did not say which key is active");
    }
    it_run_result_free(&rr);
    snprintf(kid, n, "%s", got);
}

/* Gets tokens for c until one is signed with kid (the server has loaded the key),
 * for at most bound_ms; returns it (malloc'd), or NULL when it never happened. */
static char *token_with_kid(int port, const it_client_t *c, const char *kid, unsigned bound_ms)
{
    uint64_t t0 = it_now_ms();
    for (;;) {
        char *t = it_token_get(port, c, NULL, NULL);
        char *k = jwt_kid(t);
        bool same = strcmp(k, kid) == 0;
        free(k);
        if (same)
            return t;
        free(t);
        if (it_now_ms() - t0 > bound_ms)
            return NULL;
        it_sleep_ms(POLL_MS);
    }
}

/* GET /token-info with token (and host) must be 401. */
static void expect_token_info_401(int port, const char *token, const char *host,
                                  const char *what)
{
    it_response_t r;
    it_api_request(port, "GET", TOKEN_INFO, token, host, NULL, &r);
    if (r.status != 401)
        fail_msg("%s: expected 401, got %d: %s", what, r.status, r.body);
    it_assert_401(&r, token != NULL);
    it_response_free(&r);
}

/* GET /token-info with token must be 200 for client c; returns the body parsed. */
static json_t *expect_token_info_200(int port, const char *token, const char *host,
                                     const it_client_t *c)
{
    it_response_t r;
    it_api_request(port, "GET", TOKEN_INFO, token, host, NULL, &r);
    if (r.status != 200)
        fail_msg("token-info: expected 200, got %d: %s", r.status, r.body);
    json_t *j = it_assert_json(&r, 200);
    const char *t = json_string_value(json_object_get(j, "tenant"));
    const char *id = json_string_value(json_object_get(j, "clientId"));
    assert_non_null(t);
    assert_non_null(id);
    assert_string_equal(t, c->tenant);
    assert_string_equal(id, c->id);
    assert_true(json_is_string(json_object_get(j, "scope")));
    assert_true(json_is_string(json_object_get(j, "expiresAt")));
    it_response_free(&r);
    return j;
}

/* ---- token endpoint ---------------------------------------------------------------------- */

static void test_token_endpoint(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_tenant_create(s, "beta");
    it_client_t c, gone;
    it_client_create(s, "acme", SC_BREAKS_R " " SC_PEOPLE_R, &c);
    it_client_create(s, "acme", SC_BREAKS_R, &gone);
    it_response_t r;

    /* Form credentials: 200, every scope of the client when none is asked for. */
    char *body = form_creds(&c, NULL);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    char *tok = it_assert_token_ok(&r, SC_BREAKS_R " " SC_PEOPLE_R, 1800);
    it_response_free(&r);
    /* The JWT itself: HS256 with a key id; exp is expires_in after iat. */
    json_t *hdr = jwt_json(tok, 0);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
    assert_true(json_is_string(json_object_get(hdr, "kid")));
    json_decref(hdr);
    json_t *claims = jwt_json(tok, 1);
    json_t *iat = json_object_get(claims, "iat"), *jexp = json_object_get(claims, "exp");
    assert_true(json_is_integer(iat) && json_is_integer(jexp));
    assert_int_equal(json_integer_value(jexp) - json_integer_value(iat), 1800);
    json_decref(claims);
    json_t *info = expect_token_info_200(port, tok, NULL, &c);
    assert_string_equal(json_string_value(json_object_get(info, "scope")),
                        SC_BREAKS_R " " SC_PEOPLE_R);
    json_decref(info);
    free(tok);

    /* HTTP Basic: 200. */
    char *basic = basic_header(c.id, c.secret);
    char *h = it_fmt(IT_FORM_CT "%s", basic);
    token_post(port, "acme", h, "grant_type=client_credentials", &r);
    tok = it_assert_token_ok(&r, SC_BREAKS_R " " SC_PEOPLE_R, 1800);
    it_response_free(&r);
    json_decref(expect_token_info_200(port, tok, NULL, &c));
    free(tok);

    /* Basic and client_secret together: 400 invalid_request. */
    token_post(port, "acme", h, body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(h);
    free(basic);
    free(body);

    /* Wrong secret in the form: 401 invalid_client. */
    it_client_t bad = c;
    bad.secret[0] = c.secret[0] == 'x' ? 'y' : 'x'; /* one character differs */
    body = form_creds(&bad, NULL);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 401, "invalid_client");
    char *wrong_body = strdup(r.body);
    assert_non_null(wrong_body);
    it_response_free(&r);
    free(body);

    /* Wrong secret with Basic: 401 with a Basic challenge. */
    basic = basic_header(c.id, bad.secret);
    h = it_fmt(IT_FORM_CT "%s", basic);
    token_post(port, "acme", h, "grant_type=client_credentials", &r);
    assert_oauth_error(&r, 401, "invalid_client");
    const char *w = it_response_header(&r, "www-authenticate");
    if (!w || strncasecmp(w, "Basic", 5) != 0)
        fail_msg("401 after Basic: WWW-Authenticate is '%s', expected a Basic challenge",
                 w ? w : "(none)");
    assert_string_equal(r.body, wrong_body);
    it_response_free(&r);
    free(h);
    free(basic);

    /* Unknown client, unknown tenant, a client of another tenant, a revoked client:
     * all exactly the answer of a wrong secret, so nothing tells which exists. */
    it_client_t unknown = c;
    snprintf(unknown.id, sizeof(unknown.id), "bh_00000000000000000000");
    body = form_creds(&unknown, NULL);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 401, "invalid_client");
    assert_string_equal(r.body, wrong_body);
    it_response_free(&r);
    free(body);

    body = form_creds(&c, NULL);
    token_post(port, "nosuchtenant", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 401, "invalid_client");
    assert_string_equal(r.body, wrong_body);
    it_response_free(&r);
    token_post(port, "beta", IT_FORM_CT, body, &r); /* acme's client at beta */
    assert_oauth_error(&r, 401, "invalid_client");
    assert_string_equal(r.body, wrong_body);
    it_response_free(&r);
    free(body);

    body = form_creds(&gone, NULL);
    token_post(port, "acme", IT_FORM_CT, body, &r); /* works before the revocation */
    free(it_assert_token_ok(&r, SC_BREAKS_R, 1800));
    it_response_free(&r);
    client_revoke(s, &gone);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 401, "invalid_client");
    assert_string_equal(r.body, wrong_body);
    it_response_free(&r);
    free(body);
    free(wrong_body);

    /* Missing grant_type, and a grant other than client_credentials. */
    body = it_fmt("client_id=%s&client_secret=%s", c.id, c.secret);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(body);
    body = it_fmt("grant_type=password&client_id=%s&client_secret=%s&username=u&password=p", c.id,
               c.secret);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    it_response_free(&r);
    free(body);

    /* A subset of the client's scopes: exactly that scope, in the answer and the token. */
    tok = it_token_get(port, &c, SC_PEOPLE_R, NULL);
    info = expect_token_info_200(port, tok, NULL, &c);
    assert_string_equal(json_string_value(json_object_get(info, "scope")), SC_PEOPLE_R);
    json_decref(info);
    free(tok);

    /* A known scope the client does not have, and an unknown one: invalid_scope. */
    body = form_creds(&c, "&scope=" SC_BREAKS_R "+" SC_BREAKS_W);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "invalid_scope");
    it_response_free(&r);
    free(body);
    body = form_creds(&c, "&scope=connector-protimeapi-everything.read");
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "invalid_scope");
    it_response_free(&r);
    free(body);

    /* Not form-encoded: a JSON body, and no Content-Type at all. */
    char *json = it_fmt("{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\","
                     "\"client_secret\":\"%s\"}", c.id, c.secret);
    token_post(port, "acme", IT_JSON_CT, json, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(json);
    body = form_creds(&c, NULL);
    token_post(port, "acme", NULL, body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(body);

    /* A repeated parameter (RFC 6749 §3.1): 400 invalid_request, even when both
     * values are the same. */
    body = form_creds(&c, "&grant_type=client_credentials");
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(body);
    body = form_creds(&c, "&scope=" SC_BREAKS_R "&scope=" SC_PEOPLE_R);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    free(body);

    /* No User-Agent: 400 even with good credentials, and like every answer of the token
     * endpoint an RFC 6749 §5.2 body, so that OAuth2 client libraries can read it. */
    body = form_creds(&c, NULL);
    char *raw = it_fmt("POST /tenants/acme/connect/token HTTP/1.1\r\nHost: 127.0.0.1\r\n" IT_FORM_CT
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                    strlen(body), body);
    it_conn_t conn;
    if (it_connect(&conn, port) != 0)
        fail_msg("connect: %s", it_last_error());
    if (it_send_str(&conn, raw) != 0)
        fail_msg("send: %s", it_last_error());
    if (it_read_response(&conn, &r, false, IT_IO_TIMEOUT_MS) != 0)
        fail_msg("reading: %s", it_last_error());
    assert_oauth_error(&r, 400, "invalid_request");
    assert_non_null(strstr(r.body, "User-Agent"));
    assert_null(strstr(r.body, "access_token"));
    it_response_free(&r);
    it_conn_close(&conn);
    free(raw);
    free(body);
}

/* ---- discovery ------------------------------------------------------------------------------ */

static void test_discovery(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    it_response_t r;
    it_req(s->port, "GET", "/tenants/acme/.well-known/openid-configuration", NULL, NULL, &r);
    json_t *j = it_assert_json(&r, 200);
    it_response_free(&r);
    const char *issuer = json_string_value(json_object_get(j, "issuer"));
    const char *ep = json_string_value(json_object_get(j, "token_endpoint"));
    assert_non_null(issuer);
    assert_non_null(ep);
    static const char tail[] = "/tenants/acme/connect/token";
    if (strlen(ep) < sizeof(tail) || strcmp(ep + strlen(ep) - (sizeof(tail) - 1), tail) != 0)
        fail_msg("token_endpoint '%s' does not end in %s", ep, tail);
    if (!starts_with(ep, "http://") && !starts_with(ep, "https://"))
        fail_msg("token_endpoint '%s' is not an absolute URL", ep);
    json_t *g = json_object_get(j, "grant_types_supported");
    assert_true(json_is_array(g));
    assert_int_equal(json_array_size(g), 1);
    assert_string_equal(json_string_value(json_array_get(g, 0)), "client_credentials");
    json_t *m = json_object_get(j, "token_endpoint_auth_methods_supported");
    assert_true(json_is_array(m));
    bool basic = false, post = false;
    for (size_t i = 0; i < json_array_size(m); i++) {
        const char *v = json_string_value(json_array_get(m, i));
        basic |= v && !strcmp(v, "client_secret_basic");
        post |= v && !strcmp(v, "client_secret_post");
    }
    assert_true(basic && post);
    json_t *sc = json_object_get(j, "scopes_supported");
    assert_true(json_is_array(sc));
    bool has_breaks = false;
    for (size_t i = 0; i < json_array_size(sc); i++) {
        const char *v = json_string_value(json_array_get(sc, i));
        has_breaks |= v && !strcmp(v, SC_BREAKS_R);
    }
    assert_true(has_breaks);

    /* The advertised endpoint is the one that works: POST to its path gives a token. */
    const char *path = strstr(ep, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    assert_non_null(path);
    char *body = form_creds(&c, NULL);
    it_req(s->port, "POST", path, IT_FORM_CT, body, &r);
    free(it_assert_token_ok(&r, SC_BREAKS_R, 1800));
    it_response_free(&r);
    free(body);
    json_decref(j);

    /* An unknown tenant: 404 with the SPEC body. */
    it_req(s->port, "GET", "/tenants/nosuchtenant/.well-known/openid-configuration", NULL, NULL,
            &r);
    it_assert_error(&r, 404, "NotFound");
    it_response_free(&r);
}

/* ---- token-info and bad tokens ------------------------------------------------------------ */

/* A token with byte i of segment seg replaced by another base64url character. */
static char *flip_char(const char *token, int seg, size_t i)
{
    const char *p;
    size_t n;
    jwt_segment(token, seg, &p, &n);
    assert_true(i < n);
    char *t = strdup(token);
    assert_non_null(t);
    char *c = t + (p - token) + i;
    *c = *c == 'A' ? 'B' : 'A';
    return t;
}

/* header.payload.signature with the payload's JSON replaced by payload (re-encoded). */
static char *with_payload(const char *token, const char *header_json, json_t *payload,
                          bool keep_signature)
{
    char *pj = json_dumps(payload, JSON_COMPACT);
    assert_non_null(pj);
    char *pb = b64_encode(pj, strlen(pj), true);
    char *hb = NULL;
    const char *hp;
    size_t hn;
    if (header_json) {
        hb = b64_encode(header_json, strlen(header_json), true);
    } else {
        jwt_segment(token, 0, &hp, &hn);
        hb = strndup(hp, hn);
        assert_non_null(hb);
    }
    const char *sp = "";
    size_t sn = 0;
    if (keep_signature)
        jwt_segment(token, 2, &sp, &sn);
    char *t = it_fmt("%s.%s.%.*s", hb, pb, (int)sn, sp);
    free(pj);
    free(pb);
    free(hb);
    return t;
}

static void test_token_info(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R " " SC_DEFS_R, &c);
    char *tok = it_token_get(port, &c, NULL, NULL);

    /* A valid token: what it grants. */
    json_t *info = expect_token_info_200(port, tok, NULL, &c);
    assert_string_equal(json_string_value(json_object_get(info, "scope")),
                        SC_BREAKS_R " " SC_DEFS_R);
    const char *exp_at = json_string_value(json_object_get(info, "expiresAt"));
    assert_true(strlen(exp_at) >= 20 && exp_at[4] == '-' && exp_at[10] == 'T');
    json_decref(info);

    /* No Authorization: 401 with a plain Bearer challenge. */
    it_response_t r;
    it_api_request(port, "GET", TOKEN_INFO, NULL, NULL, NULL, &r);
    it_assert_401(&r, false);
    it_response_free(&r);

    /* Another scheme, garbage, a JWT-looking garbage. */
    char *h = it_fmt("Authorization: Basic %s\r\n", "dXNlcjpwYXNz");
    it_req(port, "GET", TOKEN_INFO, h, NULL, &r);
    it_assert_error(&r, 401, "Unauthorized");
    assert_true(starts_with(it_response_header(&r, "www-authenticate"), "Bearer"));
    it_response_free(&r);
    free(h);
    expect_token_info_401(port, "garbage", NULL, "garbage token");
    expect_token_info_401(port, "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln", NULL, "JWT-like garbage");

    /* Tampered: one character of the payload flipped; the signature alone changed. */
    const char *pp;
    size_t pn;
    jwt_segment(tok, 1, &pp, &pn);
    char *t2 = flip_char(tok, 1, pn / 2);
    expect_token_info_401(port, t2, NULL, "payload character flipped");
    free(t2);
    jwt_segment(tok, 2, &pp, &pn);
    t2 = flip_char(tok, 2, pn / 2);
    expect_token_info_401(port, t2, NULL, "signature character flipped");
    free(t2);

    /* Tampered meaningfully: more scopes in the payload, the original signature. */
    json_t *payload = jwt_json(tok, 1);
    assert_true(json_is_string(json_object_get(payload, "scope")));
    json_object_set_new(payload, "scope", json_string(SC_ALL));
    t2 = with_payload(tok, NULL, payload, true);
    expect_token_info_401(port, t2, NULL, "payload with more scopes");
    free(t2);
    json_decref(payload);

    /* alg none: {"alg":"none","typ":"JWT"} + the real payload + an empty signature,
     * with and without the kid of the real key. */
    const char *p1;
    size_t n1;
    jwt_segment(tok, 1, &p1, &n1);
    char *hb = b64_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26, true);
    t2 = it_fmt("%s.%.*s.", hb, (int)n1, p1);
    expect_token_info_401(port, t2, NULL, "alg none");
    free(t2);
    free(hb);
    char *kid = jwt_kid(tok);
    char *hj = it_fmt("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    hb = b64_encode(hj, strlen(hj), true);
    t2 = it_fmt("%s.%.*s.", hb, (int)n1, p1);
    expect_token_info_401(port, t2, NULL, "alg none with the real kid");
    free(t2);
    free(hb);
    free(hj);
    free(kid);

    /* Signed with the server's own key but expired, or not valid for an hour: 401.
     * The same forging with sound times gives 200, so it is the time that fails. */
    int64_t now = clock_now_ms(clock_system()) / 1000;
    t2 = it_token_forge(s, &c, SC_BREAKS_R, now - 120, now - 120, now + 600);
    json_decref(expect_token_info_200(port, t2, NULL, &c));
    free(t2);
    t2 = it_token_forge(s, &c, SC_BREAKS_R, now - 3600, now - 3600, now - 60);
    expect_token_info_401(port, t2, NULL, "expired token");
    free(t2);
    t2 = it_token_forge(s, &c, SC_BREAKS_R, now + 3600, now + 3600, now + 5400);
    expect_token_info_401(port, t2, NULL, "token not valid before an hour from now");
    free(t2);
    /* A token that expires while in use: accepted (and so remembered by the server's
     * verified-token cache), then refused once its exp has passed. */
    now = clock_now_ms(clock_system()) / 1000;
    t2 = it_token_forge(s, &c, SC_BREAKS_R, now - 60, now - 60, now + 2);
    json_decref(expect_token_info_200(port, t2, NULL, &c));
    while (clock_now_ms(clock_system()) / 1000 < now + 2)
        it_sleep_ms(50);
    expect_token_info_401(port, t2, NULL, "a token used before its exp, after it");
    free(t2);

    /* A token of another server (its own store, so its own key), same tenant name and
     * client shape: 401 here, although it works there; and the other way round. */
    it_server_t *s2 = start(state, 1, NULL);
    it_tenant_create(s2, "acme");
    it_client_t c2;
    it_client_create(s2, "acme", SC_BREAKS_R, &c2);
    char *tok2 = it_token_get(s2->port, &c2, NULL, NULL);
    json_decref(expect_token_info_200(s2->port, tok2, NULL, &c2));
    expect_token_info_401(port, tok2, NULL, "a token of another server");
    expect_token_info_401(s2->port, tok, NULL, "a token of this server at another one");
    free(tok2);

    /* The good token is still good (nothing above broke the server's state). */
    json_decref(expect_token_info_200(port, tok, NULL, &c));
    free(tok);
}

/* ---- scopes ------------------------------------------------------------------------------- */

static void expect_403(int port, const char *method, const char *target, const char *token,
                       const char *body, const char *scope)
{
    it_response_t r;
    it_api_request(port, method, target, token, NULL, body, &r);
    if (r.status != 403)
        fail_msg("%s %s: expected 403, got %d: %s", method, target, r.status, r.body);
    it_assert_403(&r, scope);
    it_response_free(&r);
}

static void test_scopes(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_client_t br, pr;
    it_client_create(s, "acme", SC_BREAKS_R, &br);
    it_client_create(s, "acme", SC_PEOPLE_R, &pr);
    char *tb = it_token_get(port, &br, NULL, NULL);
    char *tp = it_token_get(port, &pr, NULL, NULL);

    static const char person[] = "{\"id\":1,\"externalReferences\":{\"@employee-number\":\"E-1\"}}";
    expect_403(port, "PUT", API "/people/1", tb, person, SC_PEOPLE_W);
    expect_403(port, "GET", API "/people/1", tb, NULL, SC_PEOPLE_R);
    expect_403(port, "DELETE", API "/people/1", tb, NULL, SC_PEOPLE_W);
    expect_403(port, "GET", API "/break-definitions", tb, NULL, SC_DEFS_R);
    expect_403(port, "PUT", API "/breaks/1", tp, "{}", SC_BREAKS_W);
    expect_403(port, "GET", API "/breaks/1", tp, NULL, SC_BREAKS_R);

    /* The right scope gets past authentication and authorization: 404, no such
     * person (and the person was not written by the refused PUT). */
    it_response_t r;
    it_api_request(port, "GET", API "/people/1", tp, NULL, NULL, &r);
    it_assert_error(&r, 404, "NotFound");
    it_response_free(&r);
    /* breaks.read reads breaks. */
    it_api_request(port, "GET", API "/breaks/1", tb, NULL, NULL, &r);
    it_assert_error(&r, 404, "NotFound");
    it_response_free(&r);
    free(tb);
    free(tp);
}

/* ---- revocation ------------------------------------------------------------------------------ */

static void test_revocation(void **state)
{
    const char *args[] = { "--revocation-refresh", "200ms", NULL };
    it_server_t *s = start(state, 0, args);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_client_t c, other;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    it_client_create(s, "acme", SC_BREAKS_R, &other);
    char *tok = it_token_get(port, &c, NULL, NULL);
    char *tok_other = it_token_get(port, &other, NULL, NULL);
    json_decref(expect_token_info_200(port, tok, NULL, &c));

    client_revoke(s, &c);
    uint64_t t0 = it_now_ms();
    int status = 0;
    for (;;) {
        it_response_t r;
        it_api_request(port, "GET", TOKEN_INFO, tok, NULL, NULL, &r);
        status = r.status;
        if (status == 401)
            it_assert_401(&r, true);
        else if (status != 200)
            fail_msg("token-info after revoke: unexpected %d: %s", status, r.body);
        it_response_free(&r);
        if (status == 401 || it_now_ms() - t0 > REVOKE_BOUND_MS)
            break;
        it_sleep_ms(POLL_MS);
    }
    if (status != 401)
        fail_msg("the revoked client's token still works %u ms after `client revoke`",
                 (unsigned)(it_now_ms() - t0));
    /* It stays refused, on data routes too, and gets no new token. */
    expect_token_info_401(port, tok, NULL, "revoked client, later");
    it_response_t r;
    it_api_request(port, "GET", API "/breaks/1", tok, NULL, NULL, &r);
    it_assert_401(&r, true);
    it_response_free(&r);
    char *body = form_creds(&c, NULL);
    token_post(port, "acme", IT_FORM_CT, body, &r);
    assert_oauth_error(&r, 401, "invalid_client");
    it_response_free(&r);
    free(body);

    /* `client list` shows it revoked; the other client of the tenant is unaffected. */
    const char *largs[] = { "client", "list", "--tenant", "acme", "--json", NULL };
    it_run_result_t lr;
    it_cli_store(s, largs, &lr);
    const char *line = strstr(lr.out, c.id);
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    const char *rv = strstr(line, "\"revokedAt\"");
    assert_true(rv && (!eol || rv < eol));
    it_run_result_free(&lr);
    json_decref(expect_token_info_200(port, tok_other, NULL, &other));
    free(tok);
    free(tok_other);
}

/* ---- key rotation ---------------------------------------------------------------------------- */

static void test_key_rotation(void **state)
{
    const char *args[] = { "--revocation-refresh", "200ms", NULL };
    it_server_t *s = start(state, 0, args);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    char *a = it_token_get(port, &c, NULL, NULL);
    char *kid_a = jwt_kid(a);
    json_decref(expect_token_info_200(port, a, NULL, &c));
    /* A second token of the old key that the server sees only after the rotation,
     * so it is verified against the retired key, not answered from a cache. */
    char *a2 = it_token_get(port, &c, NULL, NULL);

    char new_kid[64];
    key_rotate(s, new_kid, sizeof(new_kid));
    assert_string_not_equal(new_kid, kid_a);

    it_sleep_ms(3 * REFRESH_MS); /* more than one --revocation-refresh */

    /* The old tokens keep working until they expire. */
    json_decref(expect_token_info_200(port, a, NULL, &c));
    json_decref(expect_token_info_200(port, a2, NULL, &c));
    /* A new token is signed with the new key (the server loads it within
     * --revocation-refresh; a loaded machine gets a little slack), and works. */
    char *b = token_with_kid(port, &c, new_kid, REVOKE_BOUND_MS);
    if (!b)
        fail_msg("%d ms after `key rotate`, new tokens are still not signed with key %s",
                 REVOKE_BOUND_MS + 3 * REFRESH_MS, new_kid);
    char *kid_b = jwt_kid(b);
    assert_string_not_equal(kid_b, kid_a);
    json_decref(expect_token_info_200(port, b, NULL, &c));
    json_decref(expect_token_info_200(port, a, NULL, &c));

    it_run_result_t rr;
    /* `key list`: the old key retired, the new one active. */
    const char *largs[] = { "key", "list", NULL };
    it_cli_store(s, largs, &rr);
    const char *la = strstr(rr.out, kid_a);
    const char *lb = strstr(rr.out, new_kid);
    assert_non_null(la);
    assert_non_null(lb);
    const char *eol = strchr(la, '\n');
    const char *ret = strstr(la, "retired");
    assert_true(ret && (!eol || ret < eol));
    eol = strchr(lb, '\n');
    const char *act = strstr(lb, "active");
    assert_true(act && (!eol || act < eol));
    it_run_result_free(&rr);
    free(a);
    free(a2);
    free(b);
    free(kid_a);
    free(kid_b);
}

/* ---- rate limit -------------------------------------------------------------------------------- */

static long long retry_after(const it_response_t *r)
{
    const char *v = it_response_header(r, "retry-after");
    if (!v)
        fail_msg("429 without Retry-After");
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || n < 1 || n > 3600)
        fail_msg("Retry-After '%s' is not a number of seconds >= 1", v);
    return n;
}

static void test_rate_limit(void **state)
{
    const char *args[] = { "--rate-limit", "2", "--rate-burst", "2", NULL };
    it_server_t *s = start(state, 0, args);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_client_t c1, c2;
    it_client_create(s, "acme", SC_BREAKS_R, &c1);
    it_client_create(s, "acme", SC_BREAKS_R, &c2);
    char *t1 = it_token_get(port, &c1, NULL, NULL);
    char *t2 = it_token_get(port, &c2, NULL, NULL);

    /* Rapid requests with one token on one connection: the burst passes, then 429. */
    it_conn_t conn;
    if (it_connect(&conn, port) != 0)
        fail_msg("connect: %s", it_last_error());
    char *h = it_fmt("Authorization: Bearer %s\r\n", t1);
    int ok = 0, limited = 0;
    long long wait_s = 0;
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < 10 && !limited; i++) {
        it_response_t r;
        if (it_conn_request(&conn, "GET", TOKEN_INFO, h, NULL, 0, &r) != 0)
            fail_msg("request %d: %s", i, it_last_error());
        if (r.status == 200) {
            ok++;
        } else if (r.status == 429) {
            it_assert_error(&r, 429, "TooManyRequests");
            wait_s = retry_after(&r);
            limited = 1;
        } else {
            fail_msg("request %d: unexpected %d: %s", i, r.status, r.body);
        }
        it_response_free(&r);
    }
    it_conn_close(&conn);
    free(h);
    if (!limited)
        fail_msg("10 rapid requests with --rate-limit 2 --rate-burst 2: no 429 (%d ok)", ok);
    /* The bucket holds 2 and refills 2 per second: on a slow machine a refill may
     * slip in while the requests run. */
    int allowed = 2 + (int)((it_now_ms() - t0) * 2 / 1000);
    if (ok < 1 || ok > allowed)
        fail_msg("with a burst of 2, %d requests passed before the 429 (at most %d)", ok,
                 allowed);

    /* Another client of the same tenant is not affected. */
    json_decref(expect_token_info_200(port, t2, NULL, &c2));
    /* After Retry-After, the first client may go on. */
    it_sleep_ms((unsigned)(wait_s * 1000 + 100));
    json_decref(expect_token_info_200(port, t1, NULL, &c1));

    /* The token endpoint counts per client id too: a burst of token requests sent
     * at once gets 429 slow_down with Retry-After. */
    enum { N = 4 };
    it_conn_t cs[N];
    char *body = form_creds(&c1, NULL);
    char *raw = it_fmt("POST /tenants/acme/connect/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "User-Agent: breakhook-it/1\r\n" IT_FORM_CT "Content-Length: %zu\r\n\r\n%s",
                    strlen(body), body);
    for (int i = 0; i < N; i++)
        if (it_connect(&cs[i], port) != 0 || it_send_str(&cs[i], raw) != 0)
            fail_msg("token burst %d: %s", i, it_last_error());
    int slow = 0;
    for (int i = 0; i < N; i++) {
        it_response_t r;
        if (it_read_response(&cs[i], &r, false, 15000) != 0)
            fail_msg("token burst %d: %s", i, it_last_error());
        if (r.status == 429) {
            assert_oauth_error(&r, 429, "slow_down");
            (void)retry_after(&r);
            slow++;
        } else if (r.status == 200) {
            free(it_assert_token_ok(&r, SC_BREAKS_R, 1800));
        } else {
            fail_msg("token burst %d: unexpected %d: %s", i, r.status, r.body);
        }
        it_response_free(&r);
        it_conn_close(&cs[i]);
    }
    if (slow == 0)
        fail_msg("%d token requests at once with --rate-burst 2: none got 429", N);
    free(raw);
    free(body);
    free(t1);
    free(t2);
}

/* ---- --domain ------------------------------------------------------------------------------- */

static void test_domain(void **state)
{
    const char *args[] = { "--domain", "example.test", NULL };
    it_server_t *s = start(state, 0, args);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_tenant_create(s, "other");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    char *tok = it_token_get(port, &c, NULL, "acme.example.test");

    /* The tenant's own host: 200, with a port and in any case too. */
    json_decref(expect_token_info_200(port, tok, "acme.example.test", &c));
    json_decref(expect_token_info_200(port, tok, "ACME.Example.TEST:8443", &c));
    /* Another tenant's host, a host outside the domain, look-alikes: 401. */
    expect_token_info_401(port, tok, "other.example.test", "Host of another tenant");
    expect_token_info_401(port, tok, "127.0.0.1", "Host without the domain");
    expect_token_info_401(port, tok, "example.test", "the bare domain");
    expect_token_info_401(port, tok, "acme.example.test.evil.test", "domain as a prefix");
    expect_token_info_401(port, tok, "x.acme.example.test", "a sub-subdomain");
    expect_token_info_401(port, tok, "acmeexample.test", "no dot before the domain");
    /* A data route too, not only token-info. */
    it_response_t r;
    it_api_request(port, "GET", API "/breaks/1", tok, "other.example.test", NULL, &r);
    it_assert_401(&r, true);
    it_response_free(&r);
    it_api_request(port, "GET", API "/breaks/1", tok, "acme.example.test", NULL, &r);
    it_assert_error(&r, 404, "NotFound");
    it_response_free(&r);

    /* The token endpoint of acme reached with another tenant's Host, or none of the
     * domain: 400 invalid_request, and no token. */
    char *body = form_creds(&c, NULL);
    token_post(port, "acme", IT_FORM_CT "Host: other.example.test\r\n", body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    token_post(port, "acme", IT_FORM_CT, body, &r); /* Host: 127.0.0.1 */
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    /* Absolute-form targets (RFC 9112 §3.2.2): the target's authority is the host, and
     * the same rule applies to it; the Host header is then ignored. */
    it_req(port, "POST", "http://other.example.test/tenants/acme/connect/token",
           IT_FORM_CT "Host: acme.example.test\r\n", body, &r);
    assert_oauth_error(&r, 400, "invalid_request");
    it_response_free(&r);
    it_api_request(port, "GET", "http://other.example.test" TOKEN_INFO, tok, "acme.example.test",
                   NULL, &r);
    it_assert_401(&r, true);
    it_response_free(&r);
    it_api_request(port, "GET", "http://example.test" TOKEN_INFO, tok, "acme.example.test", NULL,
                   &r);
    it_assert_401(&r, true);
    it_response_free(&r);
    it_api_request(port, "GET", "http://acme.example.test:8443" TOKEN_INFO, tok,
                   "other.example.test", NULL, &r);
    json_decref(it_assert_json(&r, 200));
    it_response_free(&r);
    free(body);
    /* Discovery follows the same rule. */
    it_req(port, "GET", "/tenants/acme/.well-known/openid-configuration",
            "Host: acme.example.test\r\n", NULL, &r);
    json_decref(it_assert_json(&r, 200));
    it_response_free(&r);
    it_req(port, "GET", "/tenants/acme/.well-known/openid-configuration",
            "Host: other.example.test\r\n", NULL, &r);
    it_assert_error(&r, 404, "NotFound");
    it_response_free(&r);
    free(tok);
}

/* ---- tenant isolation ------------------------------------------------------------------------- */

#define BREAKS_MARCH API IT_BREAKS_MARCH_PATH

static void expect_status_code(int port, const char *method, const char *target,
                               const char *token, const char *body, int status,
                               const char *code)
{
    it_response_t r;
    it_api_request(port, method, target, token, NULL, body, &r);
    if (r.status != status)
        fail_msg("%s %s: expected %d, got %d: %s", method, target, status, r.status, r.body);
    it_assert_error(&r, status, code);
    it_response_free(&r);
}

/* The NDJSON report line of input line `line` of a $batch answer, parsed. */
static json_t *batch_line(const char *body, size_t line)
{
    for (const char *p = body; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        json_t *j = n ? it_json_parse(p, n) : NULL;
        json_t *l = j ? json_object_get(j, "line") : NULL;
        if (json_is_integer(l) && (size_t)json_integer_value(l) == line)
            return j;
        json_decref(j);
        p = e ? e + 1 : NULL;
    }
    fail_msg("no report for line %zu in: %s", line, body);
    return NULL;
}

static void test_tenant_isolation(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    int port = s->port;
    it_tenant_create(s, "acme");
    it_tenant_create(s, "beta");
    it_client_t ca, cb;
    it_client_create(s, "acme", SC_ALL, &ca);
    it_client_create(s, "beta", SC_ALL, &cb);
    char *ta = it_token_get(port, &ca, NULL, NULL);
    char *tb = it_token_get(port, &cb, NULL, NULL);

    /* Tenant A writes a person, a definition and a break. */
    it_response_t r;
    it_api_request(port, "PUT", API "/people/101", ta, NULL, IT_PERSON_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    it_api_request(port, "PUT", API "/break-definitions/201", ta, NULL, IT_DEF_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    it_api_request(port, "PUT", API "/breaks/301", ta, NULL, IT_BREAK_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    char *pa = it_get_body(port, API "/people/101", ta, NULL);
    char *da = it_get_body(port, API "/break-definitions/201", ta, NULL);
    char *ba = it_get_body(port, API "/breaks/301", ta, NULL);
    char *la = it_get_body(port, BREAKS_MARCH, ta, NULL);
    char *lda = it_get_body(port, API "/break-definitions", ta, NULL);
    assert_int_equal(it_list_size(port, BREAKS_MARCH, ta, NULL), 1);
    assert_int_equal(it_list_size(port, API "/break-definitions", ta, NULL), 1);

    /* Tenant B sees none of it: 404 exactly like a missing id. */
    expect_status_code(port, "GET", API "/people/101", tb, NULL, 404, "NotFound");
    expect_status_code(port, "GET", API "/break-definitions/201", tb, NULL, 404, "NotFound");
    expect_status_code(port, "GET", API "/breaks/301", tb, NULL, 404, "NotFound");
    expect_status_code(port, "DELETE", API "/breaks/301", tb, NULL, 404, "NotFound");
    expect_status_code(port, "DELETE", API "/break-definitions/201", tb, NULL, 404, "NotFound");
    expect_status_code(port, "DELETE", API "/people/101", tb, NULL, 404, "NotFound");
    assert_int_equal(it_list_size(port, BREAKS_MARCH, tb, NULL), 0);
    assert_int_equal(it_list_size(port, API "/break-definitions", tb, NULL), 0);

    /* B cannot reference A's person or definition. */
    static const char break_b_a_person[] =
        "{\"id\":302,\"person\":{\"id\":101},\"breakDefinition\":{\"id\":201},\"date\":"
        "\"2024-03-06\",\"clockedDurationInMinutes\":20,\"startTimeInMinutes\":720,"
        "\"endTimeInMinutes\":780,\"isBreakTaken\":true}";
    it_api_request(port, "PUT", API "/breaks/302", tb, NULL, break_b_a_person, &r);
    it_assert_error(&r, 400, "BadRequest");
    if (!strstr(r.body, "person"))
        fail_msg("the 400 does not say the person is missing: %s", r.body);
    it_response_free(&r);
    static const char person_b[] = "{\"id\":102}";
    it_api_request(port, "PUT", API "/people/102", tb, NULL, person_b, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    static const char break_b_a_def[] =
        "{\"id\":302,\"person\":{\"id\":102},\"breakDefinition\":{\"id\":201},\"date\":"
        "\"2024-03-06\",\"clockedDurationInMinutes\":20,\"startTimeInMinutes\":720,"
        "\"endTimeInMinutes\":780,\"isBreakTaken\":true}";
    it_api_request(port, "PUT", API "/breaks/302", tb, NULL, break_b_a_def, &r);
    it_assert_error(&r, 400, "BadRequest");
    if (!strstr(r.body, "breakDefinition"))
        fail_msg("the 400 does not say the definition is missing: %s", r.body);
    it_response_free(&r);
    expect_status_code(port, "GET", API "/breaks/302", tb, NULL, 404, "NotFound");

    /* $batch of B: deleting A's break reports 404 for that line; an upsert naming A's
     * person reports 400. */
    static const char batch[] =
        "{\"op\":\"delete\",\"id\":301}\n"
        "{\"op\":\"upsert\",\"data\":{\"id\":303,\"person\":{\"id\":101},\"breakDefinition\":"
        "{\"id\":201},\"date\":\"2024-03-07\",\"clockedDurationInMinutes\":20,"
        "\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,\"isBreakTaken\":true}}\n";
    it_req(port, "POST", API "/breaks/$batch",
            "Content-Type: application/x-ndjson\r\nAuthorization: Bearer " /* token below */
            "x\r\n",
            NULL, &r); /* a bad token first: the batch route is protected too */
    it_assert_401(&r, true);
    it_response_free(&r);
    char *h = it_fmt("Content-Type: application/x-ndjson\r\nAuthorization: Bearer %s\r\n", tb);
    it_req(port, "POST", API "/breaks/$batch", h, batch, &r);
    free(h);
    if (r.status != 200)
        fail_msg("$batch: expected 200, got %d: %s", r.status, r.body);
    json_t *l1 = batch_line(r.body, 1);
    json_t *l2 = batch_line(r.body, 2);
    if (json_integer_value(json_object_get(l1, "status")) != 404)
        fail_msg("$batch delete of another tenant's break: %s", r.body);
    if (json_integer_value(json_object_get(l2, "status")) != 400)
        fail_msg("$batch upsert naming another tenant's person: %s", r.body);
    json_decref(l1);
    json_decref(l2);
    it_response_free(&r);

    /* A's data is exactly as it was. */
    char *pa2 = it_get_body(port, API "/people/101", ta, NULL);
    char *da2 = it_get_body(port, API "/break-definitions/201", ta, NULL);
    char *ba2 = it_get_body(port, API "/breaks/301", ta, NULL);
    char *la2 = it_get_body(port, BREAKS_MARCH, ta, NULL);
    char *lda2 = it_get_body(port, API "/break-definitions", ta, NULL);
    assert_string_equal(pa2, pa);
    assert_string_equal(da2, da);
    assert_string_equal(ba2, ba);
    assert_string_equal(la2, la);
    assert_string_equal(lda2, lda);

    /* Ids are per tenant: B may use the same ids for its own records, and A still
     * sees only its own. */
    static const char person_b101[] = "{\"id\":101}";
    it_api_request(port, "PUT", API "/people/101", tb, NULL, person_b101, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    static const char def_b201[] =
        "{\"id\":201,\"name\":{\"default\":\"Coffee\"},\"friendlyName\":{\"default\":\"Coffee\"},"
        "\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":5,\"maximumDurationInMinutes\":10,"
        "\"ifNotClockedDurationInMinutes\":5,\"hasToBeTakenUninterrupted\":false}";
    it_api_request(port, "PUT", API "/break-definitions/201", tb, NULL, def_b201, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    it_api_request(port, "PUT", API "/breaks/301", tb, NULL,
        "{\"id\":301,\"person\":{\"id\":101},\"breakDefinition\":{\"id\":201},\"date\":"
        "\"2024-03-20\",\"clockedDurationInMinutes\":7,\"startTimeInMinutes\":600,"
        "\"endTimeInMinutes\":620,\"isBreakTaken\":true}",
        &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    assert_int_equal(it_list_size(port, BREAKS_MARCH, tb, NULL), 1);
    char *pa3 = it_get_body(port, API "/people/101", ta, NULL);
    char *ba3 = it_get_body(port, API "/breaks/301", ta, NULL);
    char *da3 = it_get_body(port, API "/break-definitions/201", ta, NULL);
    assert_string_equal(pa3, pa);
    assert_string_equal(ba3, ba);
    assert_string_equal(da3, da);
    assert_int_equal(it_list_size(port, BREAKS_MARCH, ta, NULL), 1);

    /* B deleting its own records with those ids leaves A's alone. */
    it_response_t d;
    it_api_request(port, "DELETE", API "/breaks/301", tb, NULL, NULL, &d);
    assert_int_equal(d.status, 204);
    it_response_free(&d);
    it_api_request(port, "DELETE", API "/break-definitions/201", tb, NULL, NULL, &d);
    assert_int_equal(d.status, 204);
    it_response_free(&d);
    it_api_request(port, "DELETE", API "/people/101", tb, NULL, NULL, &d);
    assert_int_equal(d.status, 204);
    it_response_free(&d);
    expect_status_code(port, "GET", API "/breaks/301", tb, NULL, 404, "NotFound");
    char *pa4 = it_get_body(port, API "/people/101", ta, NULL);
    char *ba4 = it_get_body(port, API "/breaks/301", ta, NULL);
    char *da4 = it_get_body(port, API "/break-definitions/201", ta, NULL);
    assert_string_equal(pa4, pa);
    assert_string_equal(ba4, ba);
    assert_string_equal(da4, da);
    free(pa4);
    free(ba4);
    free(da4);

    char *all[] = { pa, da, ba, la, lda, pa2, da2, ba2, la2, lda2, pa3, ba3, da3, ta, tb };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
}

/* ---- --token-ttl ---------------------------------------------------------------------------- */

static void test_token_ttl(void **state)
{
    const char *args[] = { "--token-ttl", "2m", NULL };
    it_server_t *s = start(state, 0, args);
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    char *body = form_creds(&c, NULL);
    it_response_t r;
    token_post(s->port, "acme", IT_FORM_CT, body, &r);
    char *tok = it_assert_token_ok(&r, SC_BREAKS_R, 120);
    it_response_free(&r);
    json_t *claims = jwt_json(tok, 1);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")) -
                         json_integer_value(json_object_get(claims, "iat")),
                     120);
    json_decref(claims);
    json_decref(expect_token_info_200(s->port, tok, NULL, &c));
    free(tok);
    free(body);
}

/* ---- bugs found while writing this test ------------------------------------------------------ */

/*
 * Regression (fixed): the token endpoint compares Content-Type byte-wise as a prefix
 * (slice_starts_with(ctype, "application/x-www-form-urlencoded") in
 * src/api/token.c, api_token). Media types are case-insensitive (RFC 9110
 * §8.3.1), and the server's own JSON routes do compare them so
 * (api_require_json uses slice_eq_nocase), yet
 * "Content-Type: Application/X-WWW-Form-Urlencoded" gets 400 invalid_request
 * "the body must be application/x-www-form-urlencoded". The prefix match also
 * takes a different media type, "application/x-www-form-urlencodedjunk", as a form.
 */
static void test_token_content_type_is_a_media_type(void **state)
{
    it_server_t *s = start(state, 0, NULL);
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    char *body = form_creds(&c, NULL);
    it_response_t r1, r2;
    token_post(s->port, "acme", "Content-Type: Application/X-WWW-Form-Urlencoded\r\n", body, &r1);
    token_post(s->port, "acme", "Content-Type: application/x-www-form-urlencodedjunk\r\n", body,
               &r2);
    int st1 = r1.status, st2 = r2.status;
    char why[200];
    snprintf(why, sizeof(why), "%s", r1.body);
    it_response_free(&r1);
    it_response_free(&r2);
    free(body);
    if (st1 != 200)
        fail_msg("a form Content-Type in other letter case is refused: %d %s", st1, why);
    if (st2 != 400)
        fail_msg("Content-Type application/x-www-form-urlencodedjunk is taken as a form: %d",
                 st2);
}

/*
 * Regression (fixed): the in-memory keyring keeps only the newest AUTH_KEYRING_MAX (16) signing
 * keys (auth_keyring_set in src/auth/token.c truncates the list the store returns),
 * so after 16 `key rotate` within a token's lifetime, a token signed with the
 * 17th-newest key is refused ("the access token was signed by an unknown key")
 * although it has not expired — against docs/OPERATIONS.md ("tokens signed with the
 * previous key stay valid until they expire") and ARCHITECTURE.md ("a retired key
 * keeps verifying its tokens until they expire"). With --token-ttl up to 24h and,
 * say, hourly rotation, tokens die after 16 hours. The verified-token cache
 * (src/auth/token_cache.c) hides it only for a token this node has already seen
 * (and not yet evicted): the same token then works on one node and fails on
 * another, or after a restart. So token A is deliberately not used before the
 * rotations here.
 */
static void test_many_rotations_keep_tokens(void **state)
{
    const char *args[] = { "--revocation-refresh", "200ms", NULL };
    it_server_t *s = start(state, 0, args);
    it_tenant_create(s, "acme");
    it_client_t c;
    it_client_create(s, "acme", SC_BREAKS_R, &c);
    char *a = it_token_get(s->port, &c, NULL, NULL);
    char kid[64] = "";
    for (int i = 0; i < 16; i++)
        key_rotate(s, kid, sizeof(kid));
    /* Wait until the server has loaded the newest key (so it has reloaded the list). */
    char *b = token_with_kid(s->port, &c, kid, REVOKE_BOUND_MS);
    if (!b)
        fail_msg("the server did not load the newest signing key %s", kid);
    free(b);
    it_response_t r;
    it_api_request(s->port, "GET", TOKEN_INFO, a, NULL, NULL, &r);
    int status = r.status;
    char why[200];
    snprintf(why, sizeof(why), "%s", r.body);
    it_response_free(&r);
    free(a);
    if (status != 200)
        fail_msg("after 16 key rotations an unexpired token is refused: %d %s", status, why);
}

/* ---- token floods ---------------------------------------------------------------------------- */

/* One flooding thread: n token requests with made-up client ids on one kept-alive
 * connection, answers counted (a thread may not fail the test; the main thread
 * checks the counts). */
typedef struct flood {
    pthread_t th;
    int port;
    int id;
    int n;
    atomic_int *running;
    int n401, n429, other;
    int bad429;               /* a 429 without Retry-After or the RFC 6749 body */
    long long retry_after_s;  /* of the last 429 */
    char desc[160];           /* error_description of the last 429 */
    char other_what[160];     /* the first unexpected answer */
} flood_t;

/* A 429 as the token endpoint must give it: Retry-After in seconds, no-store and an
 * RFC 6749 §5.2 body with error slow_down. */
static bool flood_429_ok(flood_t *f, const it_response_t *r)
{
    const char *ra = it_response_header(r, "retry-after");
    const char *cc = it_response_header(r, "cache-control");
    char *end = NULL;
    long long v = ra ? strtoll(ra, &end, 10) : 0;
    if (!ra || end == ra || *end || v < 1 || v > 3600 || !cc || strcmp(cc, "no-store") != 0)
        return false;
    json_t *j = it_json_parse(r->body, r->body_len);
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "error_description"));
    bool ok = e && strcmp(e, "slow_down") == 0 && d && json_object_size(j) == 2;
    if (ok) {
        snprintf(f->desc, sizeof(f->desc), "%s", d);
        f->retry_after_s = v;
    }
    json_decref(j);
    return ok;
}

static void *flood_main(void *arg)
{
    flood_t *f = arg;
    it_conn_t c;
    bool connected = false;
    for (int i = 0; i < f->n; i++) {
        if (!connected && it_connect(&c, f->port) != 0)
            break;
        connected = true;
        char body[160];
        snprintf(body, sizeof(body),
                 "grant_type=client_credentials&client_id=nobody-%d-%d&client_secret=guess", f->id,
                 i);
        char head[320];
        snprintf(head, sizeof(head),
                 "POST /tenants/acme/connect/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "User-Agent: breakhook-it/1\r\n" IT_FORM_CT "Content-Length: %zu\r\n\r\n",
                 strlen(body));
        it_response_t r;
        if (it_send_str(&c, head) != 0 || it_send_str(&c, body) != 0 ||
            it_read_response(&c, &r, false, 30000) != 0) {
            if (!f->other_what[0])
                snprintf(f->other_what, sizeof(f->other_what), "request %d: no answer", i);
            f->other++;
            it_conn_close(&c);
            connected = false;
            continue;
        }
        if (r.status == 401) {
            f->n401++;
        } else if (r.status == 429) {
            f->n429++;
            if (!flood_429_ok(f, &r))
                f->bad429++;
        } else {
            if (!f->other_what[0])
                snprintf(f->other_what, sizeof(f->other_what), "%d %.120s", r.status, r.body);
            f->other++;
        }
        it_response_free(&r);
    }
    if (connected)
        it_conn_close(&c);
    atomic_fetch_sub(f->running, 1);
    return NULL;
}

enum { FLOOD_MAX_THREADS = 8 };

typedef struct flood_result {
    int n401, n429, other, bad429;
    long long retry_after_s;
    char desc[160];
    int gets;                 /* GETs answered 200 while the flood ran */
    uint64_t ms;              /* how long the flood ran */
} flood_result_t;

/* Floods the token endpoint of tenant acme from `threads` threads with `per_thread`
 * requests each, while this thread keeps reading target with token: every read must
 * be answered 200 within a generous bound, however busy the token endpoint is. */
static void flood_run(int port, int threads, int per_thread, const char *target,
                      const char *token, flood_result_t *out)
{
    assert_true(threads <= FLOOD_MAX_THREADS);
    flood_t f[FLOOD_MAX_THREADS];
    atomic_int running = threads;
    memset(f, 0, sizeof(f));
    memset(out, 0, sizeof(*out));
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < threads; i++) {
        f[i] = (flood_t){ .port = port, .id = i, .n = per_thread, .running = &running };
        assert_int_equal(pthread_create(&f[i].th, NULL, flood_main, &f[i]), 0);
    }
    char *h = it_fmt("Authorization: Bearer %s\r\n", token);
    char *raw = it_fmt("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: breakhook-it/1\r\n%s\r\n",
                       target, h);
    for (int i = 0; i < 10000 && (i == 0 || atomic_load(&running) > 0); i++) {
        it_conn_t c;
        it_response_t r;
        if (it_connect(&c, port) != 0 || it_send_str(&c, raw) != 0 ||
            it_read_response(&c, &r, false, 20000) != 0)
            fail_msg("GET %s during the token flood: no answer within 20 s (%s)", target,
                     it_last_error());
        it_conn_close(&c);
        if (r.status != 200)
            fail_msg("GET %s during the token flood: %d %s", target, r.status, r.body);
        it_response_free(&r);
        out->gets++;
        it_sleep_ms(20);
    }
    free(raw);
    free(h);
    for (int i = 0; i < threads; i++) {
        pthread_join(f[i].th, NULL);
        out->n401 += f[i].n401;
        out->n429 += f[i].n429;
        out->other += f[i].other;
        out->bad429 += f[i].bad429;
        if (f[i].n429 && !f[i].bad429) {
            out->retry_after_s = f[i].retry_after_s;
            snprintf(out->desc, sizeof(out->desc), "%s", f[i].desc);
        }
        if (f[i].other)
            fail_msg("token flood: %d unexpected answers, the first: %s", f[i].other,
                     f[i].other_what);
    }
    out->ms = it_now_ms() - t0;
}

/* A tenant acme with a client of every scope, its token, and break 301 to read. */
static char *flood_setup(it_server_t *s, it_client_t *c)
{
    it_tenant_create(s, "acme");
    it_client_create(s, "acme", SC_ALL, c);
    char *t = it_token_get(s->port, c, NULL, NULL);
    it_response_t r;
    it_api_request(s->port, "PUT", API "/people/101", t, NULL, IT_PERSON_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    it_api_request(s->port, "PUT", API "/break-definitions/201", t, NULL, IT_DEF_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    it_api_request(s->port, "PUT", API "/breaks/301", t, NULL, IT_BREAK_A, &r);
    json_decref(it_assert_json(&r, 201));
    it_response_free(&r);
    return t;
}

/* The flood's secret checks stayed within a bucket of `burst` refilled `rate` per
 * second (less `used` taken before), and the rest got a well-formed 429. */
static void expect_flood_limited(const flood_result_t *fr, int total, int rate, int burst,
                                 int used, const char *why)
{
    if (fr->n401 + fr->n429 != total)
        fail_msg("token flood: %d answers of %d", fr->n401 + fr->n429, total);
    if (fr->bad429)
        fail_msg("token flood: %d answers 429 without Retry-After or the RFC 6749 body",
                 fr->bad429);
    int allowed = burst - used + (int)(fr->ms * (uint64_t)rate / 1000) + 1;
    if (fr->n429 == 0 || fr->n401 > allowed)
        fail_msg("token flood of %d made-up client ids in %llu ms: %d secret checks (at most "
                 "%d allowed), %d answers 429",
                 total, (unsigned long long)fr->ms, fr->n401, allowed, fr->n429);
    if (!strstr(fr->desc, why))
        fail_msg("the 429 says '%s', expected it to mention '%s'", fr->desc, why);
}

/* Was a risk: token requests with random client ids each got a fresh per-client bucket
 * and a PBKDF2 check, never a 429. Now one address over --token-rate-per-address gets
 * 429 slow_down with Retry-After, other tenants' reads are answered meanwhile, and the
 * address may go on once Retry-After has passed. */
static void test_token_flood_per_address(void **state)
{
    const char *args[] = { "--token-rate-per-address", "1", NULL };
    it_server_t *s = start(state, 0, args);
    it_client_t c;
    char *t = flood_setup(s, &c);
    flood_result_t fr;
    flood_run(s->port, 4, 10, API "/breaks/301", t, &fr);
    expect_flood_limited(&fr, 40, 1, 2, 1, "address");
    if (fr.gets < 1)
        fail_msg("no read was made during the flood");
    it_sleep_ms((unsigned)(fr.retry_after_s * 1000 + 200));
    free(it_token_get(s->port, &c, NULL, NULL));
    free(t);
}

/* Many addresses at once are bounded by --token-rate-global (here one address with the
 * per-address limit off stands for them). */
static void test_token_flood_global(void **state)
{
    const char *args[] = { "--token-rate-per-address", "0", "--token-rate-global", "1", NULL };
    it_server_t *s = start(state, 0, args);
    it_client_t c;
    char *t = flood_setup(s, &c);
    flood_result_t fr;
    flood_run(s->port, 4, 10, API "/breaks/301", t, &fr);
    expect_flood_limited(&fr, 40, 1, 2, 1, "server");
    it_sleep_ms((unsigned)(fr.retry_after_s * 1000 + 200));
    free(it_token_get(s->port, &c, NULL, NULL));
    free(t);
}

/* With no limits, every made-up id costs a secret check, on the token threads: reads
 * of other requests are still answered while they run, and every check says 401. */
static void test_token_flood_reads_answered(void **state)
{
    const char *args[] = { "--token-rate-per-address", "0", "--token-rate-global", "0",
                           "--rate-limit", "0", NULL };
    it_server_t *s = start(state, 0, args);
    it_client_t c;
    char *t = flood_setup(s, &c);
    flood_result_t fr;
    flood_run(s->port, 4, 8, API "/breaks/301", t, &fr);
    if (fr.n401 != 32 || fr.n429 != 0)
        fail_msg("token flood without limits: %d answers 401 and %d 429, expected 32 and 0",
                 fr.n401, fr.n429);
    if (fr.gets < 1)
        fail_msg("no read was made during the flood");
    free(t);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, it_srvs_setup, it_srvs_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_token_endpoint), T(test_discovery),    T(test_token_info),
        T(test_scopes),         T(test_revocation),   T(test_key_rotation),
        T(test_rate_limit),     T(test_domain),       T(test_tenant_isolation),
        T(test_token_ttl),
        T(test_token_content_type_is_a_media_type), T(test_many_rotations_keep_tokens),
        T(test_token_flood_per_address), T(test_token_flood_global),
        T(test_token_flood_reads_answered),
    };
    return cmocka_run_group_tests_name("integration/auth", tests, NULL, NULL);
}
