/*
 * token.c: the OAuth2 client-credentials token endpoint (RFC 6749 §4.4), the
 * discovery document, and GET /token-info.
 *
 * POST /tenants/{tenant}/connect/token takes client_id/client_secret from the
 * form body or from HTTP Basic (never both), checks the secret against its slow
 * hash on the token pool's threads (api_pool_t: never libuv's pool, which serves
 * everyone else's requests), and answers a JWT. Requests that get as far as a
 * secret check are throttled per source address, per client id and in all, before
 * any hashing. Its errors are RFC 6749 §5.2 JSON
 * ({"error":"invalid_client",...}), not the API's error body, because OAuth
 * client libraries parse that shape.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/log.h"

typedef struct token_job {
    const char *tenant_name;
    const char *client_id;
    const char *secret;
    const char *scope;       /* requested, or NULL */
    bool basic;              /* credentials came in an Authorization header */
    /* results */
    int status;
    const char *error;       /* RFC 6749 error code */
    const char *description;
    char *token;             /* malloc'd */
    auth_claims_t claims;
} token_job_t;

static void oauth_error(http_request_t *req, int status, const char *error, const char *desc,
                        bool basic)
{
    json_t *o = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    http_response_header(req, "Cache-Control", "no-store");
    /* RFC 6749 §5.2: a challenge for the scheme the client authenticated with. */
    if (status == 401 && basic)
        http_response_header(req, "WWW-Authenticate", "Basic realm=\"breakhook\"");
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_respond_json(req, status, s, strlen(s));
    free(s);
}

static void token_work(http_request_t *req, void *arg)
{
    token_job_t *j = arg;
    api_ctx_t *ctx = api_ctx(req);
    store_tenant_t t;
    store_client_t c;
    j->status = 401;
    j->error = "invalid_client";
    j->description = "client authentication failed";
    int rc = store_tenant_get(ctx->store, j->tenant_name, &t);
    if (rc == 0)
        rc = store_client_get(ctx->store, t.id, j->client_id, &c);
    if (rc && rc != BH_ENOTFOUND && rc != BH_EINVAL) {
        j->status = 503;
        j->error = "temporarily_unavailable";
        j->description = api_store_error_message(rc);
        return;
    }
    /* An unknown tenant or client costs the same hash as a wrong secret, so the
     * answer time does not tell which one exists. */
    static const char dummy[] =
        "pbkdf2-sha256$60000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    bool ok = auth_secret_verify(j->secret, strlen(j->secret), rc ? dummy : c.secret_hash);
    if (rc || !ok || c.revoked_at_ms)
        return;
    const char *scope = j->scope ? j->scope : c.scopes;
    const char *bad;
    size_t bad_len;
    if (!auth_scopes_subset(scope, c.scopes, &bad, &bad_len)) {
        j->status = 400;
        j->error = "invalid_scope";
        char *d = arena_printf(&req->arena, "the scope '%.*s' is not allowed for this client",
                               (int)bad_len, bad);
        j->description = d ? d : "a requested scope is not allowed for this client";
        return;
    }
    int64_t now_s = clock_now_ms(ctx->clock) / 1000;
    auth_claims_t *cl = &j->claims;
    snprintf(cl->tenant, sizeof(cl->tenant), "%s", t.name);
    cl->tenant_id = t.id;
    snprintf(cl->client_id, sizeof(cl->client_id), "%s", c.client_id);
    /* Store the normalised, de-duplicated request (or the client's full set). */
    if (auth_scopes_normalize(scope, cl->scope, sizeof(cl->scope), &bad, &bad_len)) {
        snprintf(cl->scope, sizeof(cl->scope), "%s", c.scopes);
    }
    cl->iat = cl->nbf = now_s;
    cl->exp = now_s + ctx->token_ttl_s;
    if (auth_token_issue(ctx->keyring, ctx->rand, cl, &j->token)) {
        j->status = 500;
        j->error = "server_error";
        j->description = "could not issue a token";
        return;
    }
    j->status = 200;
}

static void token_done(http_request_t *req, void *arg)
{
    token_job_t *j = arg;
    api_ctx_t *ctx = api_ctx(req);
    if (j->status != 200) {
        if (j->status == 401)
            log_info("token refused", LOG_STR("rid", req->request_id),
                     LOG_STR("tenant", j->tenant_name), LOG_STR("client", j->client_id));
        oauth_error(req, j->status, j->error, j->description, j->basic);
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "access_token", j->token, "token_type", "Bearer",
                          "expires_in", (json_int_t)ctx->token_ttl_s, "scope", j->claims.scope);
    free(j->token);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_response_header(req, "Cache-Control", "no-store");
    http_response_header(req, "Pragma", "no-cache");
    http_respond_json(req, 200, s, strlen(s));
    free(s);
}

/* The per-address bucket of a peer: its address, but for IPv6 its /64, since one
 * host usually holds a whole /64 and could otherwise take a fresh bucket per
 * request. An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) stays whole. */
static void token_addr_key(const char *ip, char *out, size_t n)
{
    struct in6_addr a;
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, ip, &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a)) {
        memset(a.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a, text, sizeof(text))) {
            snprintf(out, n, "%s/64", text);
            return;
        }
    }
    snprintf(out, n, "%s", ip);
}

/* Takes a token from rl's bucket key; when it is empty, answers 429 slow_down with
 * Retry-After and returns true. A NULL key (out of memory) is not limited. */
static bool token_throttled(http_request_t *req, auth_ratelimit_t *rl, const char *key,
                            const char *why)
{
    api_ctx_t *ctx = api_ctx(req);
    int64_t wait = key && rl ? auth_ratelimit_take(rl, key, clock_mono_ms(ctx->clock)) : 0;
    if (wait <= 0)
        return false;
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)wait);
    http_response_header(req, "Retry-After", v);
    oauth_error(req, 429, "slow_down", why, false);
    return true;
}

/* With --domain, the tenant of the Host must be the tenant of the path. */
static bool host_matches_tenant(http_request_t *req, slice_t tenant)
{
    api_ctx_t *ctx = api_ctx(req);
    if (!ctx->domain)
        return true;
    slice_t host = http_request_header(req, "host");
    if (!host.p)
        return false;
    const char *colon = memchr(host.p, ':', host.n);
    if (colon)
        host.n = (size_t)(colon - host.p);
    size_t dn = strlen(ctx->domain);
    return host.n == tenant.n + 1 + dn && strncasecmp(host.p, tenant.p, tenant.n) == 0 &&
           host.p[tenant.n] == '.' && strncasecmp(host.p + tenant.n + 1, ctx->domain, dn) == 0;
}

void api_token(http_request_t *req)
{
    api_ctx_t *ctx = api_ctx(req);
    slice_t tenant = http_request_param(req, "tenant");
    slice_t authz = http_request_header(req, "authorization");
    token_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    auth_form_t *form = arena_alloc(&req->arena, sizeof(*form));
    const char *why = NULL;
    if (!j || !form) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(j, 0, sizeof(*j));
    if (!http_request_header(req, "user-agent").p) {
        oauth_error(req, 400, "invalid_request", "the User-Agent header is required", false);
        return;
    }
    if (!host_matches_tenant(req, tenant)) {
        oauth_error(req, 400, "invalid_request", "the Host does not belong to this tenant", false);
        return;
    }
    if (!api_media_type_is(req, "application/x-www-form-urlencoded")) {
        oauth_error(req, 400, "invalid_request",
                    "the body must be application/x-www-form-urlencoded", false);
        return;
    }
    if (auth_form_parse(req->body.p ? req->body.p : "", req->body.len, &req->arena, form, &why)) {
        oauth_error(req, 400, "invalid_request", why, false);
        return;
    }
    const char *grant = auth_form_get(form, "grant_type");
    if (!grant || !*grant) {
        oauth_error(req, 400, "invalid_request", "grant_type is required", false);
        return;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        oauth_error(req, 400, "unsupported_grant_type",
                    "only grant_type=client_credentials is supported", false);
        return;
    }
    const char *fid = auth_form_get(form, "client_id");
    const char *fsecret = auth_form_get(form, "client_secret");
    if (authz.p) {
        if (fsecret) {
            oauth_error(req, 400, "invalid_request",
                        "use either HTTP Basic or client_secret in the body, not both", false);
            return;
        }
        if (auth_basic_parse(authz, &req->arena, &j->client_id, &j->secret)) {
            oauth_error(req, 401, "invalid_client", "malformed HTTP Basic credentials", true);
            return;
        }
        if (fid && strcmp(fid, j->client_id) != 0) {
            oauth_error(req, 400, "invalid_request", "client_id differs from the Basic credentials",
                        false);
            return;
        }
        j->basic = true;
    } else {
        if (!fid || !*fid || !fsecret) {
            oauth_error(req, 401, "invalid_client",
                        "client_id and client_secret are required (form body or HTTP Basic)",
                        false);
            return;
        }
        j->client_id = fid;
        j->secret = fsecret;
    }
    j->scope = auth_form_get(form, "scope");
    if (j->scope) {
        const char *bad;
        size_t bad_len;
        char norm[1024];
        int rc = auth_scopes_normalize(j->scope, norm, sizeof(norm), &bad, &bad_len);
        if (rc || !*norm) {
            char *d = rc == BH_EINVAL ? arena_printf(&req->arena, "unknown scope '%.*s'",
                                                     (int)bad_len, bad)
                                      : NULL;
            oauth_error(req, 400, "invalid_scope", d ? d : "the scope parameter is invalid", false);
            return;
        }
        j->scope = arena_strndup(&req->arena, norm, strlen(norm));
    }
    j->tenant_name = arena_strndup(&req->arena, tenant.p, tenant.n);
    if (!j->tenant_name) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    /* Slow down guessing, and bound the hashing anyone can ask for: failed and
     * successful attempts alike count against a bucket per source address, one per
     * client id (made-up ids get fresh ones, hence the other two) and one for all. */
    char addr[INET6_ADDRSTRLEN + 8];
    token_addr_key(http_request_peer_ip(req), addr, sizeof(addr));
    char *key = arena_printf(&req->arena, "token:%s/%s", j->tenant_name, j->client_id);
    if (token_throttled(req, ctx->token_rate_addr, addr,
                        "too many token requests from this address") ||
        token_throttled(req, ctx->ratelimit, key, "too many token requests for this client") ||
        token_throttled(req, ctx->token_rate_global, "all",
                        "too many token requests to this server"))
        return;
    if (!ctx->token_pool) {
        api_run(req, token_work, token_done, j);
        return;
    }
    int rc = api_pool_run(ctx->token_pool, req, token_work, token_done, j);
    if (rc == BH_EAGAIN) {
        http_response_header(req, "Retry-After", "1");
        oauth_error(req, 429, "slow_down", "too many token requests waiting to be checked",
                    false);
    } else if (rc) {
        oauth_error(req, 503, "temporarily_unavailable", "the server cannot check the secret now",
                    false);
    }
}

typedef struct discovery_job {
    const char *tenant;
    int rc;
} discovery_job_t;

static void discovery_work(http_request_t *req, void *arg)
{
    discovery_job_t *j = arg;
    store_tenant_t t;
    j->rc = store_tenant_get(api_ctx(req)->store, j->tenant, &t);
}

static void discovery_done(http_request_t *req, void *arg)
{
    discovery_job_t *j = arg;
    if (j->rc == BH_ENOTFOUND || j->rc == BH_EINVAL) {
        http_respond_error(req, 404, "no such tenant", NULL, 0);
        return;
    }
    if (j->rc) {
        http_respond_error(req, 503, api_store_error_message(j->rc), NULL, 0);
        return;
    }
    slice_t host = http_request_header(req, "host");
    char *issuer = arena_printf(&req->arena, "http://%.*s/tenants/%s", (int)host.n,
                                host.p ? host.p : "", j->tenant);
    char *endpoint = issuer ? arena_printf(&req->arena, "%s/connect/token", issuer) : NULL;
    json_t *scopes = json_array();
    for (size_t i = 0; auth_known_scopes[i]; i++)
        json_array_append_new(scopes, json_string(auth_known_scopes[i]));
    json_t *o = json_pack("{s:s,s:s,s:[s],s:[s,s],s:o,s:[s]}", "issuer", issuer ? issuer : "",
                          "token_endpoint", endpoint ? endpoint : "", "grant_types_supported",
                          "client_credentials", "token_endpoint_auth_methods_supported",
                          "client_secret_basic", "client_secret_post", "scopes_supported", scopes,
                          "id_token_signing_alg_values_supported", "HS256");
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_respond_json(req, 200, s, strlen(s));
    free(s);
}

void api_discovery(http_request_t *req)
{
    slice_t tenant = http_request_param(req, "tenant");
    discovery_job_t *j = arena_alloc(&req->arena, sizeof(*j));
    if (!j || !(j->tenant = arena_strndup(&req->arena, tenant.p, tenant.n))) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    if (!host_matches_tenant(req, tenant)) {
        http_respond_error(req, 404, "no such tenant", NULL, 0);
        return;
    }
    api_run(req, discovery_work, discovery_done, j);
}

void api_token_info(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, NULL);
    if (!c)
        return;
    char exp[32];
    clock_format_rfc3339(c->exp * 1000, exp);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "tenant", c->tenant, "clientId", c->client_id,
                          "scope", c->scope, "expiresAt", exp);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    http_respond_json(req, 200, s, strlen(s));
    free(s);
}
