/*
 * test_router.c: method + path matching, path parameters, 404 versus 405.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

/* Distinct handlers, so a match can be told apart by which one it returns. */
static void h_list(http_request_t *req) { (void)req; }
static void h_get(http_request_t *req) { (void)req; }
static void h_create(http_request_t *req) { (void)req; }
static void h_delete(http_request_t *req) { (void)req; }
static void h_batch(http_request_t *req) { (void)req; }
static void h_nested(http_request_t *req) { (void)req; }
static void h_root(http_request_t *req) { (void)req; }
static void h_health(http_request_t *req) { (void)req; }

static const char route_data[] = "batch-data";

typedef struct fixture {
    http_router_t *r;
    http_request_t req;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->r = http_router_new();
    if (!f->r) {
        free(f);
        return -1;
    }
    static const http_route_opts_t batch_opts = { .max_body = 64u << 20, .api = true,
                                                  .data = route_data };
    static const http_route_opts_t api_opts = { .api = true };
    if (http_router_add(f->r, HTTP_M_GET, "/breaks", h_list, &api_opts) ||
        http_router_add(f->r, HTTP_M_POST, "/breaks/$batch", h_batch, &batch_opts) ||
        http_router_add(f->r, HTTP_M_GET, "/breaks/{id}", h_get, &api_opts) ||
        http_router_add(f->r, HTTP_M_PUT, "/breaks/{id}", h_create, &api_opts) ||
        http_router_add(f->r, HTTP_M_DELETE, "/breaks/{id}", h_delete, NULL) ||
        http_router_add(f->r, HTTP_M_GET | HTTP_M_PATCH, "/tenants/{tenant}/webhooks/{id}",
                        h_nested, NULL) ||
        http_router_add(f->r, HTTP_M_POST, "/tokens", h_create, NULL) ||
        http_router_add(f->r, HTTP_M_GET, "/", h_root, NULL) ||
        http_router_add(f->r, HTTP_M_GET, "/healthz", h_health, NULL)) {
        http_router_free(f->r);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    http_router_free(f->r);
    free(f);
    return 0;
}

static http_match_t match(fixture_t *f, http_method_t m, const char *path,
                          const http_route_t **route, unsigned *allowed)
{
    memset(&f->req, 0, sizeof(f->req));
    *route = NULL;
    *allowed = 0;
    return http_router_match(f->r, m, slice_from_cstr(path), &f->req, route, allowed);
}

static void expect_ok(fixture_t *f, http_method_t m, const char *path, http_handler_fn fn)
{
    const http_route_t *route;
    unsigned allowed;
    http_match_t rc = match(f, m, path, &route, &allowed);
    if (rc != HTTP_MATCH_OK)
        fail_msg("%s (method %d) gave %d, want a match", path, (int)m, (int)rc);
    assert_non_null(route);
    if (http_route_handler(route) != fn)
        fail_msg("%s (method %d) matched the wrong route", path, (int)m);
}

static void expect_404(fixture_t *f, http_method_t m, const char *path)
{
    const http_route_t *route;
    unsigned allowed;
    http_match_t rc = match(f, m, path, &route, &allowed);
    if (rc != HTTP_MATCH_NO_PATH)
        fail_msg("\"%s\" (method %d) gave %d, want HTTP_MATCH_NO_PATH", path, (int)m, (int)rc);
}

static void test_literal_routes(void **state)
{
    fixture_t *f = *state;
    expect_ok(f, HTTP_M_GET, "/breaks", h_list);
    expect_ok(f, HTTP_M_POST, "/breaks/$batch", h_batch);
    expect_ok(f, HTTP_M_POST, "/tokens", h_create);
    expect_ok(f, HTTP_M_GET, "/healthz", h_health);
    expect_ok(f, HTTP_M_GET, "/", h_root);
    assert_int_equal(f->req.n_params, 0);
    /* Literal segments compare byte for byte: case matters. */
    expect_404(f, HTTP_M_GET, "/Breaks");
    expect_404(f, HTTP_M_GET, "/healthz2");
    expect_404(f, HTTP_M_GET, "/health");
}

static void test_route_opts(void **state)
{
    fixture_t *f = *state;
    const http_route_t *route;
    unsigned allowed;
    assert_int_equal(match(f, HTTP_M_POST, "/breaks/$batch", &route, &allowed), HTTP_MATCH_OK);
    const http_route_opts_t *o = http_route_opts(route);
    assert_non_null(o);
    assert_int_equal(o->max_body, 64u << 20);
    assert_true(o->api);
    assert_ptr_equal(o->data, route_data);
    assert_int_equal(match(f, HTTP_M_DELETE, "/breaks/1", &route, &allowed), HTTP_MATCH_OK);
    o = http_route_opts(route);
    assert_int_equal(o->max_body, 0);
    assert_false(o->api);
    assert_null(o->data);
}

static void test_param_capture(void **state)
{
    fixture_t *f = *state;
    expect_ok(f, HTTP_M_GET, "/breaks/42", h_get);
    assert_int_equal(f->req.n_params, 1);
    assert_true(slice_eq_cstr(f->req.params[0].name, "id"));
    assert_true(slice_eq_cstr(f->req.params[0].value, "42"));
    assert_true(slice_eq_cstr(http_request_param(&f->req, "id"), "42"));
    assert_null(http_request_param(&f->req, "tenant").p);

    expect_ok(f, HTTP_M_GET, "/tenants/acme/webhooks/wh_7", h_nested);
    assert_int_equal(f->req.n_params, 2);
    assert_true(slice_eq_cstr(http_request_param(&f->req, "tenant"), "acme"));
    assert_true(slice_eq_cstr(http_request_param(&f->req, "id"), "wh_7"));
    assert_true(slice_eq_cstr(f->req.params[0].name, "tenant"));
    assert_true(slice_eq_cstr(f->req.params[1].name, "id"));

    /* A parameter is one whole segment: not empty, never spanning a '/'. */
    expect_404(f, HTTP_M_GET, "/breaks/42/extra");
    expect_404(f, HTTP_M_GET, "/tenants//webhooks/1");
    expect_404(f, HTTP_M_GET, "/tenants/acme/webhooks/");

    /* The value is a view into the path given, not a copy. */
    const char *path = "/breaks/abc%20d";
    const http_route_t *route;
    unsigned allowed;
    assert_int_equal(match(f, HTTP_M_GET, path, &route, &allowed), HTTP_MATCH_OK);
    assert_ptr_equal(http_request_param(&f->req, "id").p, path + 8);
    assert_int_equal(http_request_param(&f->req, "id").n, 7);
}

static void test_param_within_slice(void **state)
{
    fixture_t *f = *state;
    /* The path slice stops before "?x": matching must not look past n. */
    const char *target = "/breaks/9?x=/y";
    const http_route_t *route;
    unsigned allowed;
    memset(&f->req, 0, sizeof(f->req));
    assert_int_equal(http_router_match(f->r, HTTP_M_GET, slice_make(target, 9), &f->req, &route,
                                       &allowed),
                     HTTP_MATCH_OK);
    assert_true(slice_eq_cstr(http_request_param(&f->req, "id"), "9"));
}

static void test_most_literal_route_wins(void **state)
{
    fixture_t *f = *state;
    /* The most literal pattern owns a path: "/breaks/$batch" is the batch route's,
     * whatever the method, so GET is a 405 listing POST, not a lookup of a break
     * called "$batch"; other ids still reach the parameter route. */
    expect_ok(f, HTTP_M_POST, "/breaks/$batch", h_batch);
    const http_route_t *route;
    unsigned allowed = 0;
    assert_int_equal(match(f, HTTP_M_GET, "/breaks/$batch", &route, &allowed),
                     HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_POST);
    expect_ok(f, HTTP_M_GET, "/breaks/batch", h_get);
    assert_true(slice_eq_cstr(http_request_param(&f->req, "id"), "batch"));
}

static void test_get_answers_head(void **state)
{
    fixture_t *f = *state;
    expect_ok(f, HTTP_M_HEAD, "/breaks", h_list);
    expect_ok(f, HTTP_M_HEAD, "/breaks/1", h_get);
    expect_ok(f, HTTP_M_HEAD, "/tenants/a/webhooks/b", h_nested);
    /* POST-only routes do not answer HEAD. */
    const http_route_t *route;
    unsigned allowed;
    assert_int_equal(match(f, HTTP_M_HEAD, "/tokens", &route, &allowed), HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_POST);
}

static void test_405_lists_allowed(void **state)
{
    fixture_t *f = *state;
    const http_route_t *route;
    unsigned allowed;
    char text[128];

    assert_int_equal(match(f, HTTP_M_POST, "/breaks/7", &route, &allowed), HTTP_MATCH_NO_METHOD);
    /* Every route with this path contributes: GET (+HEAD), PUT and DELETE. */
    assert_int_equal(allowed, HTTP_M_GET | HTTP_M_HEAD | HTTP_M_PUT | HTTP_M_DELETE);
    http_methods_format(allowed, text, sizeof(text));
    assert_string_equal(text, "GET, HEAD, PUT, DELETE");

    assert_int_equal(match(f, HTTP_M_DELETE, "/breaks", &route, &allowed),
                     HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_GET | HTTP_M_HEAD);

    assert_int_equal(match(f, HTTP_M_GET, "/tokens", &route, &allowed), HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_POST);

    assert_int_equal(match(f, HTTP_M_OPTIONS, "/tenants/t/webhooks/w", &route, &allowed),
                     HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_GET | HTTP_M_HEAD | HTTP_M_PATCH);

    assert_int_equal(match(f, HTTP_M_OTHER, "/healthz", &route, &allowed),
                     HTTP_MATCH_NO_METHOD);
    assert_int_equal(allowed, HTTP_M_GET | HTTP_M_HEAD);
}

static void test_404(void **state)
{
    fixture_t *f = *state;
    expect_404(f, HTTP_M_GET, "/nope");
    expect_404(f, HTTP_M_GET, "/breaks/1/2");
    expect_404(f, HTTP_M_GET, "/tenants/acme");
    expect_404(f, HTTP_M_GET, "");
    expect_404(f, HTTP_M_GET, "breaks");
    expect_404(f, HTTP_M_GET, "*");
    expect_404(f, HTTP_M_GET, "//");
    expect_404(f, HTTP_M_GET, "//breaks");
    /* An unknown path is 404 for every method, not 405. */
    expect_404(f, HTTP_M_DELETE, "/nope");
}

static void test_trailing_slash(void **state)
{
    fixture_t *f = *state;
    expect_404(f, HTTP_M_GET, "/breaks/");
    expect_404(f, HTTP_M_GET, "/healthz/");
    expect_404(f, HTTP_M_POST, "/tokens/");
    expect_404(f, HTTP_M_GET, "/breaks/1/");
}

static void test_too_many_segments(void **state)
{
    fixture_t *f = *state;
    http_router_t *r = http_router_new();
    assert_non_null(r);
    static const char twelve[] = "/a/b/c/d/e/f/g/h/i/j/k/l";
    static const char thirteen[] = "/a/b/c/d/e/f/g/h/i/j/k/l/m";
    assert_int_equal(http_router_add(r, HTTP_M_GET, twelve, h_root, NULL), 0);
    assert_int_equal(http_router_add(r, HTTP_M_GET, thirteen, h_root, NULL), BH_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_M_GET, "no-leading-slash", h_root, NULL),
                     BH_EINVAL);
    assert_int_equal(http_router_add(r, HTTP_M_GET, "", h_root, NULL), BH_EINVAL);

    const http_route_t *route;
    unsigned allowed = 0;
    memset(&f->req, 0, sizeof(f->req));
    assert_int_equal(http_router_match(r, HTTP_M_GET, slice_from_cstr(twelve), &f->req, &route,
                                       &allowed),
                     HTTP_MATCH_OK);
    assert_int_equal(http_router_match(r, HTTP_M_GET, slice_from_cstr(thirteen), &f->req,
                                       &route, &allowed),
                     HTTP_MATCH_NO_PATH);
    /* A long hostile path is a plain 404, whatever its length. */
    char big[4096];
    for (size_t i = 0; i + 1 < sizeof(big); i += 2) {
        big[i] = '/';
        big[i + 1] = 'x';
    }
    assert_int_equal(http_router_match(r, HTTP_M_GET, slice_make(big, sizeof(big)), &f->req,
                                       &route, &allowed),
                     HTTP_MATCH_NO_PATH);
    http_router_free(r);
}

static void test_many_routes(void **state)
{
    (void)state;
    /* More routes than the first allocation holds, so the table grows. */
    http_router_t *r = http_router_new();
    assert_non_null(r);
    static char patterns[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(patterns[i], sizeof(patterns[i]), "/r%d/{x}", i);
        assert_int_equal(http_router_add(r, HTTP_M_GET, patterns[i],
                                         i % 2 ? h_get : h_list, NULL),
                         0);
    }
    http_request_t *req = calloc(1, sizeof(*req));
    assert_non_null(req);
    const http_route_t *route;
    unsigned allowed;
    assert_int_equal(http_router_match(r, HTTP_M_GET, slice_from_cstr("/r99/v"), req, &route,
                                       &allowed),
                     HTTP_MATCH_OK);
    assert_ptr_equal(http_route_handler(route), h_get);
    assert_true(slice_eq_cstr(http_request_param(req, "x"), "v"));
    assert_int_equal(http_router_match(r, HTTP_M_GET, slice_from_cstr("/r100/v"), req, &route,
                                       &allowed),
                     HTTP_MATCH_NO_PATH);
    free(req);
    http_router_free(r);
    http_router_free(NULL);
}

static void test_methods_format(void **state)
{
    (void)state;
    char out[128];
    http_methods_format(HTTP_M_GET, out, sizeof(out));
    assert_string_equal(out, "GET");
    http_methods_format(HTTP_M_POST | HTTP_M_GET, out, sizeof(out));
    assert_string_equal(out, "GET, POST");
    http_methods_format(HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST | HTTP_M_PUT | HTTP_M_DELETE |
                            HTTP_M_PATCH | HTTP_M_OPTIONS,
                        out, sizeof(out));
    assert_string_equal(out, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
    http_methods_format(HTTP_M_DELETE | HTTP_M_OPTIONS, out, sizeof(out));
    assert_string_equal(out, "DELETE, OPTIONS");
    memset(out, 'X', sizeof(out));
    http_methods_format(0, out, sizeof(out));
    assert_string_equal(out, "");
    /* OTHER is not a method name that can be listed. */
    http_methods_format(HTTP_M_OTHER | HTTP_M_PATCH, out, sizeof(out));
    assert_string_equal(out, "PATCH");
    /* A short buffer is never overrun and stays terminated. */
    char small[9];
    memset(small, 'X', sizeof(small));
    http_methods_format(HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST, small, sizeof(small));
    assert_true(memchr(small, '\0', sizeof(small)) != NULL);
    assert_true(strncmp(small, "GET", 3) == 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_literal_routes),
        T(test_route_opts),
        T(test_param_capture),
        T(test_param_within_slice),
        T(test_most_literal_route_wins),
        T(test_get_answers_head),
        T(test_405_lists_allowed),
        T(test_404),
        T(test_trailing_slash),
        T(test_too_many_segments),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_methods_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
