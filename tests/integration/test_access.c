/*
 * test_access.c: who may call what, as one table: every route that needs a bearer
 * token (src/api/api.c, api_register_routes) × five kinds of caller that must be
 * refused, against the real binary on 127.0.0.1.
 *
 * The server runs with --domain example.test, so a request names its tenant in
 * Host (docs/API.md "Tenancy"). Tenant "acme" owns the data: person 101, break
 * definition 201, break 301 and one webhook. Every row is sent to acme's host,
 * acme.example.test, with a body that would change acme's data if it were accepted:
 *
 *   no Authorization header             401, WWW-Authenticate: Bearer
 *   a garbage token                     401, WWW-Authenticate: Bearer error="invalid_token"
 *   an expired token of acme (forged    401, the same; it is signed with the server's
 *   with the server's own key, every        own key and carries every scope, so only
 *   scope)                                  its exp refuses it
 *   a valid token of tenant "beta"      401, the same: with --domain a token of another
 *   (every scope) on acme's host            tenant than the Host's is not valid here
 *   a valid token of acme with one      403, WWW-Authenticate: Bearer
 *   unrelated scope                         error="insufficient_scope", scope="<needed>"
 *
 * "Another tenant's token" has a second meaning that the table checks too: beta's
 * token on beta's own host, naming acme's ids. For a read or a delete of a resource
 * by id that answers 404, exactly like a missing id (SPEC: another tenant's
 * resources answer 404). It does not apply to the other rows: a PUT by id creates
 * beta's own record with that id (ids are per tenant), and a collection route
 * (lists, POST /webhooks, $batch) reads or writes beta's own collection, so on
 * beta's host they are not refusals; for those rows the 401 above is the answer.
 * GET /token-info needs a valid token but no scope, so it has no 403 row.
 *
 * Every answer is checked for the status, the SPEC error body, and the challenge on
 * 401 and 403. At the end acme's data is read back with a good token and must be
 * byte for byte what it was before, with still exactly one webhook; beta has no
 * webhook and no break either.
 *
 * The teardown stops the server with SIGTERM and requires exit code 0, so under
 * ASan/UBSan a memory error in the server fails the test too.
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

#include "core/clock.h"
#include "harness_api.h"

#define API "/connector/protimeapi/api/v1"
#define HOST_A "acme.example.test"
#define HOST_B "beta.example.test"
#define NDJSON_CT "Content-Type: application/x-ndjson\r\n"
#define BREAKS_MARCH API IT_BREAKS_MARCH_PATH

static const char hook_a[] =
    "{\"destinationUrl\":\"https://hooks.example.invalid/a\",\"collectionName\":\"breaks\"}";

/* What the refused writes would have written. */
static const char person_x[] =
    "{\"id\":101,\"externalReferences\":{\"@employee-number\":\"E-999\"}}";
static const char def_x[] =
    "{\"id\":201,\"name\":{\"default\":\"Changed\"},\"friendlyName\":{\"default\":\"Changed\"},"
    "\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":1,\"maximumDurationInMinutes\":2,"
    "\"ifNotClockedDurationInMinutes\":1,\"hasToBeTakenUninterrupted\":false}";
static const char break_x[] =
    "{\"id\":301,\"person\":{\"id\":101},\"breakDefinition\":{\"id\":201},\"date\":\"2024-03-06\","
    "\"clockedDurationInMinutes\":5,\"startTimeInMinutes\":700,\"endTimeInMinutes\":710,"
    "\"isBreakTaken\":false}";
static const char batch_x[] =
    "{\"op\":\"delete\",\"id\":301}\n"
    "{\"op\":\"upsert\",\"data\":{\"id\":302,\"person\":{\"id\":101},\"breakDefinition\":"
    "{\"id\":201},\"date\":\"2024-03-07\",\"clockedDurationInMinutes\":20,"
    "\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,\"isBreakTaken\":true}}\n";
static const char hook_x[] =
    "{\"destinationUrl\":\"https://hooks.example.invalid/x\",\"collectionName\":\"breaks\"}";

/* One route and method. hook: the path is API "/webhooks/<acme's webhook id>" and
 * then path; otherwise API and path. */
typedef struct route {
    const char *method;
    bool hook;
    const char *path;
    const char *body;
    const char *content_type;  /* header line for body */
    const char *scope;         /* the scope it needs; NULL: any valid token */
    const char *unrelated;     /* a scope that does not grant it */
    bool by_id_read_or_delete; /* beta's token on beta's host answers 404 */
} route_t;

static const route_t routes[] = {
    { "GET", false, "/token-info", NULL, NULL, NULL, NULL, false },
    { "PUT", false, "/people/101", person_x, IT_JSON_CT, SC_PEOPLE_W, SC_HOOKS_R, false },
    { "GET", false, "/people/101", NULL, NULL, SC_PEOPLE_R, SC_HOOKS_R, true },
    { "DELETE", false, "/people/101", NULL, NULL, SC_PEOPLE_W, SC_HOOKS_R, true },
    { "GET", false, "/break-definitions", NULL, NULL, SC_DEFS_R, SC_HOOKS_R, false },
    { "PUT", false, "/break-definitions/201", def_x, IT_JSON_CT, SC_DEFS_W, SC_HOOKS_R, false },
    { "GET", false, "/break-definitions/201", NULL, NULL, SC_DEFS_R, SC_HOOKS_R, true },
    { "DELETE", false, "/break-definitions/201", NULL, NULL, SC_DEFS_W, SC_HOOKS_R, true },
    { "POST", false, "/breaks/$batch", batch_x, NDJSON_CT, SC_BREAKS_W, SC_HOOKS_R, false },
    { "GET", false, IT_BREAKS_MARCH_PATH, NULL, NULL, SC_BREAKS_R, SC_HOOKS_R, false },
    { "GET", false, "/delta/breaks?deltaToken=x", NULL, NULL, SC_BREAKS_R, SC_HOOKS_R, false },
    { "GET", false, "/delta/break-definitions?deltaToken=x", NULL, NULL, SC_DEFS_R, SC_HOOKS_R,
      false },
    { "PUT", false, "/breaks/301", break_x, IT_JSON_CT, SC_BREAKS_W, SC_HOOKS_R, false },
    { "GET", false, "/breaks/301", NULL, NULL, SC_BREAKS_R, SC_HOOKS_R, true },
    { "DELETE", false, "/breaks/301", NULL, NULL, SC_BREAKS_W, SC_HOOKS_R, true },
    { "POST", false, "/webhooks", hook_x, IT_JSON_CT, SC_HOOKS_W, SC_PEOPLE_R, false },
    { "GET", false, "/webhooks", NULL, NULL, SC_HOOKS_R, SC_PEOPLE_R, false },
    { "GET", true, "", NULL, NULL, SC_HOOKS_R, SC_PEOPLE_R, true },
    { "DELETE", true, "", NULL, NULL, SC_HOOKS_W, SC_PEOPLE_R, true },
    { "GET", true, "/deliveries", NULL, NULL, SC_HOOKS_R, SC_PEOPLE_R, true },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

typedef it_srv_t fixture_t; /* one server */

/* Sends route rt with token (or none) to host; the body with its Content-Type. */
static void send_route(int port, const route_t *rt, const char *hook_id, const char *token,
                       const char *host, it_response_t *r)
{
    char *target = rt->hook ? it_fmt(API "/webhooks/%s%s", hook_id, rt->path)
                            : it_fmt(API "%s", rt->path);
    char *headers = it_fmt("%s%s%sHost: %s\r\n%s", token ? "Authorization: Bearer " : "",
                           token ? token : "", token ? "\r\n" : "", host,
                           rt->body ? rt->content_type : "");
    it_req(port, rt->method, target, headers, rt->body, r);
    free(headers);
    free(target);
}

/* One refused call: the status, the SPEC error body and the challenge. */
static void expect_refused(int port, const route_t *rt, const char *hook_id, const char *token,
                           const char *host, int status, const char *what)
{
    it_response_t r;
    send_route(port, rt, hook_id, token, host, &r);
    if (r.status != status)
        fail_msg("%s %s%s (%s): expected %d, got %d: %.400s", rt->method,
                 rt->hook ? "/webhooks/{id}" : "", rt->path, what, status, r.status, r.body);
    if (status == 401)
        it_assert_401(&r, token != NULL);
    else if (status == 403)
        it_assert_403(&r, rt->scope);
    else
        it_assert_error(&r, status, "NotFound");
    it_response_free(&r);
}

static void test_access_table(void **state)
{
    fixture_t *f = *state;
    const char *args[] = { "--domain", "example.test", NULL };
    it_server_opts_t o = { .args = args };
    it_srv_start(f, &o);
    it_server_t *s = &f->s;
    int port = s->port;

    it_tenant_create(s, "acme");
    it_tenant_create(s, "beta");
    it_client_t ca, cb, cu_hooks, cu_people;
    it_client_create(s, "acme", SC_ALL, &ca);
    it_client_create(s, "beta", SC_ALL, &cb);
    it_client_create(s, "acme", SC_HOOKS_R, &cu_hooks);
    it_client_create(s, "acme", SC_PEOPLE_R, &cu_people);
    char *ta = it_token_get(port, &ca, NULL, HOST_A);
    char *tb = it_token_get(port, &cb, NULL, HOST_B);
    char *t_hooks = it_token_get(port, &cu_hooks, NULL, HOST_A);
    char *t_people = it_token_get(port, &cu_people, NULL, HOST_A);
    int64_t now = clock_now_ms(clock_system()) / 1000;
    char *expired = it_token_forge(s, &ca, SC_ALL, now - 3600, now - 3600, now - 60);

    /* acme's data, and what it reads like before any refused call. */
    json_decref(it_api_expect(port, "PUT", API "/people/101", ta, HOST_A, IT_PERSON_A, 201));
    json_decref(it_api_expect(port, "PUT", API "/break-definitions/201", ta, HOST_A, IT_DEF_A, 201));
    json_decref(it_api_expect(port, "PUT", API "/breaks/301", ta, HOST_A, IT_BREAK_A, 201));
    json_t *hook = it_api_expect(port, "POST", API "/webhooks", ta, HOST_A, hook_a, 201);
    const char *hid = json_string_value(json_object_get(hook, "id"));
    if (!hid || strlen(hid) != 36)
        fail_msg("the new webhook has no id");
    char *hook_path = it_fmt(API "/webhooks/%s", hid);
    const char *const reads[] = { API "/people/101", API "/break-definitions/201",
                                  API "/breaks/301", BREAKS_MARCH, API "/break-definitions",
                                  hook_path };
    enum { N_READS = sizeof(reads) / sizeof(reads[0]) };
    char *before[N_READS];
    for (size_t i = 0; i < N_READS; i++)
        before[i] = it_get_body(port, reads[i], ta, HOST_A);
    assert_int_equal(it_list_size(port, API "/webhooks", ta, HOST_A), 1);

    for (size_t i = 0; i < N_ROUTES; i++) {
        const route_t *rt = &routes[i];
        expect_refused(port, rt, hid, NULL, HOST_A, 401, "no token");
        expect_refused(port, rt, hid, "garbage", HOST_A, 401, "garbage token");
        expect_refused(port, rt, hid, expired, HOST_A, 401, "expired token");
        expect_refused(port, rt, hid, tb, HOST_A, 401, "another tenant's token");
        if (rt->by_id_read_or_delete)
            expect_refused(port, rt, hid, tb, HOST_B, 404,
                           "another tenant's token on its own host, this tenant's id");
        if (rt->scope)
            expect_refused(port, rt, hid, strcmp(rt->unrelated, SC_HOOKS_R) ? t_people : t_hooks,
                           HOST_A, 403, "a token without the route's scope");
    }

    /* Nothing changed: acme's records, lists and webhook read exactly as before, and
     * beta got no webhook and no break from its refused calls. */
    for (size_t i = 0; i < N_READS; i++) {
        char *after = it_get_body(port, reads[i], ta, HOST_A);
        if (strcmp(after, before[i]) != 0)
            fail_msg("GET %s changed:\nbefore %s\nafter  %s", reads[i], before[i], after);
        free(after);
        free(before[i]);
    }
    assert_int_equal(it_list_size(port, API "/webhooks", ta, HOST_A), 1);
    assert_int_equal(it_list_size(port, API "/webhooks", tb, HOST_B), 0);
    assert_int_equal(it_list_size(port, BREAKS_MARCH, tb, HOST_B), 0);

    json_decref(hook);
    char *all[] = { ta, tb, t_hooks, t_people, expired, hook_path };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_access_table, it_srv_setup, it_srv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
