/*
 * router.c: method + path matching with "{name}" path parameters.
 *
 * Routes are few (tens), so a linear scan over pre-split patterns is both the
 * simplest and, at this size, the fastest structure. Literal segments compare
 * byte for byte; a "{name}" segment matches any one non-empty segment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"

#define ROUTER_MAX_SEGMENTS 12

struct http_route {
    unsigned methods;
    const char *pattern;
    slice_t segs[ROUTER_MAX_SEGMENTS];
    bool is_param[ROUTER_MAX_SEGMENTS];
    size_t n_segs;
    http_handler_fn fn;
    http_route_opts_t opts;
};

struct http_router {
    http_route_t *routes;
    size_t n, cap;
};

http_router_t *http_router_new(void)
{
    return calloc(1, sizeof(http_router_t));
}

void http_router_free(http_router_t *r)
{
    if (!r)
        return;
    free(r->routes);
    free(r);
}

/* Splits "/a/b/c" into segments. A trailing slash yields a final empty segment,
 * so "/breaks/" does not match "/breaks". Returns -1 when there are too many. */
static int split_path(slice_t path, slice_t *segs, size_t max)
{
    size_t n = 0;
    if (path.n == 0 || path.p[0] != '/')
        return -1;
    size_t i = 1, start = 1;
    for (;; i++) {
        if (i == path.n || path.p[i] == '/') {
            if (n == max)
                return -1;
            segs[n++] = slice_make(path.p + start, i - start);
            if (i == path.n)
                break;
            start = i + 1;
        }
    }
    if (n == 1 && segs[0].n == 0)
        return 0; /* "/" */
    return (int)n;
}

int http_router_add(http_router_t *r, unsigned methods, const char *pattern, http_handler_fn fn,
                    const http_route_opts_t *opts)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        http_route_t *p = realloc(r->routes, cap * sizeof(*p));
        if (!p)
            return BH_ENOMEM;
        r->routes = p;
        r->cap = cap;
    }
    http_route_t *rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    int n = split_path(slice_from_cstr(pattern), rt->segs, ROUTER_MAX_SEGMENTS);
    if (n < 0)
        return BH_EINVAL;
    rt->n_segs = (size_t)n;
    for (size_t i = 0; i < rt->n_segs; i++) {
        slice_t s = rt->segs[i];
        rt->is_param[i] = s.n >= 3 && s.p[0] == '{' && s.p[s.n - 1] == '}';
        if (rt->is_param[i])
            rt->segs[i] = slice_make(s.p + 1, s.n - 2);
    }
    if (methods & HTTP_M_GET)
        methods |= HTTP_M_HEAD;
    rt->methods = methods;
    rt->pattern = pattern;
    rt->fn = fn;
    if (opts)
        rt->opts = *opts;
    r->n++;
    return 0;
}

static bool route_matches_path(const http_route_t *rt, const slice_t *segs, size_t n,
                               http_request_t *req)
{
    if (rt->n_segs != n)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (rt->is_param[i]) {
            if (segs[i].n == 0)
                return false;
            if (req && np < HTTP_MAX_PARAMS) {
                req->params[np].name = rt->segs[i];
                req->params[np].value = segs[i];
                np++;
            }
        } else if (!slice_eq(rt->segs[i], segs[i])) {
            return false;
        }
    }
    if (req)
        req->n_params = np;
    return true;
}

static size_t literal_segments(const http_route_t *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->n_segs; i++)
        n += !rt->is_param[i];
    return n;
}

http_match_t http_router_match(const http_router_t *r, http_method_t method, slice_t path,
                               http_request_t *req, const http_route_t **route,
                               unsigned *allowed)
{
    slice_t segs[ROUTER_MAX_SEGMENTS];
    int n = split_path(path, segs, ROUTER_MAX_SEGMENTS);
    unsigned allow = 0;
    if (n < 0)
        return HTTP_MATCH_NO_PATH;
    /* The most specific patterns that match the path decide (most literal segments):
     * /breaks/$batch belongs to its own route, not to /breaks/{id}, whatever the
     * method. */
    size_t best = 0;
    bool any = false;
    for (size_t i = 0; i < r->n; i++) {
        const http_route_t *rt = &r->routes[i];
        if (!route_matches_path(rt, segs, (size_t)n, NULL))
            continue;
        size_t lit = literal_segments(rt);
        if (!any || lit > best)
            best = lit;
        any = true;
    }
    for (size_t i = 0; any && i < r->n; i++) {
        const http_route_t *rt = &r->routes[i];
        if (literal_segments(rt) != best || !route_matches_path(rt, segs, (size_t)n, NULL))
            continue;
        if (rt->methods & method) {
            route_matches_path(rt, segs, (size_t)n, req);
            *route = rt;
            return HTTP_MATCH_OK;
        }
        allow |= rt->methods;
    }
    if (allow) {
        *allowed = allow;
        return HTTP_MATCH_NO_METHOD;
    }
    return HTTP_MATCH_NO_PATH;
}

void http_methods_format(unsigned methods, char *out, size_t n)
{
    static const struct {
        unsigned m;
        const char *name;
    } names[] = { { HTTP_M_GET, "GET" },       { HTTP_M_HEAD, "HEAD" },   { HTTP_M_POST, "POST" },
                  { HTTP_M_PUT, "PUT" },       { HTTP_M_DELETE, "DELETE" }, { HTTP_M_PATCH, "PATCH" },
                  { HTTP_M_OPTIONS, "OPTIONS" } };
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(methods & names[i].m))
            continue;
        int w = snprintf(out + off, n - off, "%s%s", off ? ", " : "", names[i].name);
        if (w < 0 || (size_t)w >= n - off)
            return;
        off += (size_t)w;
    }
}

const http_route_opts_t *http_route_opts(const http_route_t *route)
{
    return &route->opts;
}

http_handler_fn http_route_handler(const http_route_t *route)
{
    return route->fn;
}

size_t http__router_size(const http_router_t *r)
{
    return r->n;
}

const char *http__router_pattern(const http_router_t *r, size_t i)
{
    return i < r->n ? r->routes[i].pattern : NULL;
}

size_t http__router_index(const http_router_t *r, const http_route_t *route)
{
    return (size_t)(route - r->routes);
}
