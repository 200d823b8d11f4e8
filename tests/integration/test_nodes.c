/*
 * test_nodes.c: two `breakhook serve` processes on one store (issue #17 point 4): what
 * one node issues, every node accepts. Access tokens, continuation tokens and delta
 * tokens are signed with keys kept in the store, so a client may be sent to either
 * node by a load balancer; a client revoked with the CLI is refused by both within
 * --revocation-refresh. On the PostgreSQL run (integration-pg) the two nodes share one
 * database, which is the scale-out setting; on SQLite they share one file.
 *
 * Neither node runs the delivery engine (--delivery=false): two engines on one SQLite
 * file would both deliver, and deliveries across nodes are issue #18's.
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

#include "harness_api.h"

#define MARCH "date%20ge%20%272026-03-01%27%20and%20date%20le%20%272026-03-31%27"

static void put_break(it_srv_t *s, int id)
{
    char *path = it_fmt(IT_BASE "/breaks/%d", id);
    char *body = it_fmt("{\"id\":%d,\"person\":{\"id\":1},\"breakDefinition\":{\"id\":1},"
                        "\"date\":\"2026-03-%02d\",\"clockedDurationInMinutes\":20,"
                        "\"startTimeInMinutes\":600,\"endTimeInMinutes\":700,"
                        "\"isBreakTaken\":true}",
                        id, 1 + id % 28);
    json_decref(it_srv_expect(s, "PUT", path, body, 0));
    free(path);
    free(body);
}

static void test_tokens_of_one_node_work_on_the_other(void **state)
{
    it_srvs_t *v = *state;
    const char *const args[] = { "--delivery=false", "--revocation-refresh", "200ms", NULL };
    it_srv_t *a = it_srvs_next(v);
    it_boot_opts_t oa = { .args = args };
    it_srv_boot(a, &oa);
    it_srv_t *b = it_srvs_next(v);
    it_boot_opts_t ob = { .args = args, .same_store = a };
    it_srv_boot(b, &ob);
    const it_definition_t lunch = { .id = 1, .paid = 15, .minimum = 15, .maximum = 60,
                                    .if_not_clocked = 30 };
    it_seed_definition(a, &lunch);
    it_seed_people(a, 1, 0);
    for (int id = 1; id <= 3; id++)
        put_break(a, id);

    /* An access token from node a on node b. */
    json_decref(it_srv_expect_as(b, a->auth, "GET", IT_BASE "/token-info", NULL, 200));

    /* A continuation token from a, followed on b. */
    json_t *p1 = it_srv_expect(a, "GET", IT_BASE "/breaks?filter=" MARCH "&pageSize=1", NULL, 200);
    const char *next = it_jstr(p1, "nextLink");
    json_t *p2 = it_srv_expect_as(b, a->auth, "GET", next, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(p2, "value")), 1);
    json_decref(p2);
    json_decref(p1);

    /* A delta started on a, followed on b, a change made on b seen from a. */
    json_t *d0 = it_srv_expect(a, "GET", IT_BASE "/breaks?filter=date%20ge%20%272026-01-01%27"
                                         "&delta", NULL, 200);
    char *link = strdup(it_jstr(d0, "deltaLink"));
    json_decref(d0);
    put_break(b, 4);
    json_t *f1 = it_srv_expect_as(b, a->auth, "GET", link, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(f1, "value")), 1);
    char *link2 = strdup(it_jstr(f1, "deltaLink"));
    json_decref(f1);
    put_break(b, 5);
    json_t *f2 = it_srv_expect(a, "GET", link2, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(f2, "value")), 1);
    json_decref(f2);

    /* Revoked with the CLI: both nodes refuse the client's token within the refresh. */
    const char *const revoke[] = { "client", "revoke", "--tenant", IT_TENANT, a->client.id,
                                   NULL };
    it_run_result_t r;
    it_cli_store(&a->s, revoke, &r);
    it_run_result_free(&r);
    it_sleep_ms(1500);
    it_response_t ra, rb;
    it_srv_call(a, a->auth, "GET", IT_BASE "/token-info", NULL, NULL, 0, &ra);
    it_srv_call(b, a->auth, "GET", IT_BASE "/token-info", NULL, NULL, 0, &rb);
    assert_int_equal(ra.status, 401);
    assert_int_equal(rb.status, 401);
    it_response_free(&ra);
    it_response_free(&rb);
    free(link);
    free(link2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens_of_one_node_work_on_the_other,
                                        it_srvs_setup, it_srvs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
