/*
 * auth.c: the bearer-token check in front of every API route.
 *
 * Everything it needs is in memory (the keyring, the revoked set, the rate
 * limiter), so authentication never waits for the store and costs one HMAC and
 * one small JSON parse per request.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

/* The tenant named by the Host header under ctx->domain, or false when the Host is
 * not "<tenant>.<domain>[:port]". */
static bool host_tenant(const api_ctx_t *ctx, const http_request_t *req, char *out, size_t n)
{
    slice_t host = http_request_header(req, "host");
    if (!host.p)
        return false;
    const char *colon = memchr(host.p, ':', host.n);
    if (colon)
        host.n = (size_t)(colon - host.p);
    size_t dn = strlen(ctx->domain);
    if (host.n < dn + 2 || host.p[host.n - dn - 1] != '.' ||
        strncasecmp(host.p + host.n - dn, ctx->domain, dn) != 0)
        return false;
    size_t tn = host.n - dn - 1;
    if (tn >= n)
        return false;
    for (size_t i = 0; i < tn; i++)
        out[i] = (char)(host.p[i] >= 'A' && host.p[i] <= 'Z' ? host.p[i] + 32 : host.p[i]);
    out[tn] = '\0';
    return true;
}

/* Who the request is from: the token, its client not revoked, its tenant's host.
 * 0, or 401 with a reason. */
static int auth_identify(api_ctx_t *ctx, const http_request_t *req, auth_claims_t *claims,
                         const char **reason)
{
    slice_t authz = http_request_header(req, "authorization");
    slice_t token;
    if (!authz.p) {
        *reason = "an access token is required (Authorization: Bearer <token>)";
        return 401;
    }
    if (auth_bearer_parse(authz, &token)) {
        *reason = "the Authorization header must be 'Bearer <token>'";
        return 401;
    }
    int64_t now = clock_now_ms(ctx->clock);
    auth_token_status_t st = auth_token_cache_verify(ctx->token_cache, ctx->keyring, token.p,
                                                     token.n, now, ctx->token_ttl_s, claims);
    if (st != AUTH_TOKEN_OK) {
        *reason = auth_token_status_str(st);
        return 401;
    }
    if (auth_revoked_has(ctx->revoked, claims->tenant_id, claims->client_id)) {
        *reason = "the API client of this access token has been revoked";
        return 401;
    }
    if (ctx->domain) {
        char tenant[STORE_NAME_MAX];
        if (!host_tenant(ctx, req, tenant, sizeof(tenant)) || strcmp(tenant, claims->tenant)) {
            *reason = "the access token is not valid for this tenant";
            return 401;
        }
    }
    return 0;
}

int api_auth_decide(api_ctx_t *ctx, const http_request_t *req, const char *scope,
                    auth_claims_t *claims, const char **reason, int64_t *retry_after_s)
{
    int status = auth_identify(ctx, req, claims, reason);
    if (status)
        return status;
    char key[96];
    snprintf(key, sizeof(key), "%lld/%s", (long long)claims->tenant_id, claims->client_id);
    int64_t wait = auth_ratelimit_take(ctx->ratelimit, key, clock_mono_ms(ctx->clock));
    if (wait > 0) {
        *retry_after_s = wait;
        *reason = "this API client is over its rate limit";
        return 429;
    }
    if (scope && !auth_scopes_contain(claims->scope, scope)) {
        *reason = "the access token does not grant the scope this request needs";
        return 403;
    }
    return 0;
}

static void refuse(http_request_t *req, int status, const char *reason, const char *scope,
                   int64_t retry);

const auth_claims_t *api_authorize(http_request_t *req, const char *scope)
{
    api_ctx_t *ctx = api_ctx(req);
    auth_claims_t *claims = arena_alloc(&req->arena, sizeof(*claims));
    const char *reason = NULL;
    int64_t retry = 0;
    if (!claims) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return NULL;
    }
    int status = api_auth_decide(ctx, req, scope, claims, &reason, &retry);
    if (status == 0)
        return claims;
    refuse(req, status, reason, scope, retry);
    return NULL;
}

/* Route check (http_route_opts_t.check) of the bearer-token routes: a request with a
 * body is authenticated from its head, so an unauthenticated client's body is never
 * read. Scope and rate limit are left to the handler, which authorizes again. */
void api_authenticate(http_request_t *req)
{
    auth_claims_t claims;
    const char *reason = NULL;
    int status = auth_identify(api_ctx(req), req, &claims, &reason);
    if (status)
        refuse(req, status, reason, NULL, 0);
}

/* Answers a refused request: 401 and 403 with their WWW-Authenticate, 429 with
 * Retry-After. */
static void refuse(http_request_t *req, int status, const char *reason, const char *scope,
                   int64_t retry)
{
    if (status == 401) {
        bool had_token = http_request_header(req, "authorization").p != NULL;
        http_response_header(req, "WWW-Authenticate",
                             had_token ? "Bearer error=\"invalid_token\"" : "Bearer");
    } else if (status == 403) {
        char *h = arena_printf(&req->arena, "Bearer error=\"insufficient_scope\", scope=\"%s\"",
                               scope);
        if (h)
            http_response_header(req, "WWW-Authenticate", h);
        char *r = arena_printf(&req->arena, "required scope: %s", scope);
        const char *reasons[] = { r ? r : scope };
        http_respond_error(req, 403, reason, reasons, 1);
        return;
    } else if (status == 429) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", (long long)retry);
        http_response_header(req, "Retry-After", v);
    }
    http_respond_error(req, status, reason, NULL, 0);
}
