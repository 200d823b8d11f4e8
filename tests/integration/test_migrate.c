/*
 * test_migrate.c: `breakhook migrate` (issue #17, "moving up") as an operator runs it,
 * against the real binary: a server with a webhook delivering, stopped; breaks
 * imported by the CLI while it is down (pending events); the store copied; a server
 * started on the copy delivers the pending events and new ones, and does not deliver
 * again what the consumer had acknowledged before the move.
 *
 * The target is a fresh SQLite file, or, when the test runs with
 * BREAKHOOK_TEST_PG_URL (a PostgreSQL cluster's URL), a fresh database in that cluster
 * (it_store_url_make): the move up itself.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_api.h"
#include "harness_consumer.h"

#define LOOPBACK "--allow-http-destinations", "--allow-destination", "127.0.0.0/8"

typedef struct fixture {
    it_srvs_t srvs;
    it_consumer_t *cons;
    it_server_t target; /* only its dir and store_url: the copy's home */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    *state = f;
    return f ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    it_consumer_free(f->cons);
    int rc = it_srvs_finish(&f->srvs);
    if (f->target.dir[0])
        it_rmtree(f->target.dir);
    free(f);
    return rc;
}

static uint64_t put_break(it_srv_t *s, int64_t id, int clocked)
{
    char *path = it_fmt(IT_BASE "/breaks/%lld", (long long)id);
    char *body = it_fmt("{\"id\":%lld,\"person\":{\"id\":1},\"breakDefinition\":{\"id\":1},"
                        "\"date\":\"2026-03-01\",\"clockedDurationInMinutes\":%d,"
                        "\"startTimeInMinutes\":600,\"endTimeInMinutes\":700,"
                        "\"isBreakTaken\":true}",
                        (long long)id, clocked);
    json_t *j = it_srv_expect(s, "PUT", path, body, 0);
    uint64_t v = it_version_num(it_jstr(j, "changeVersion"));
    json_decref(j);
    free(path);
    free(body);
    return v;
}

static it_run_result_t migrate(const char *from, const char *to)
{
    const char *const args[] = { "migrate", "--from", from, "--to", to, NULL };
    it_run_opts_t o = { .timeout_ms = 60000 };
    it_run_result_t r;
    assert_int_equal(it_run(args, &o, &r), 0);
    return r;
}

/* Deliveries of record at version v the consumer received. */
static size_t received(it_consumer_t *c, int64_t record, uint64_t v)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++)
        if (c->d[i].record == record && c->d[i].v == v)
            n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void test_move_and_go_on(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { LOOPBACK, NULL };
    /* The source is always the embedded file: the server that starts on it must not
     * get a PostgreSQL database of its own from the harness. */
    const char *pg = getenv("BREAKHOOK_TEST_PG_URL");
    char *pg_url = pg ? strdup(pg) : NULL;
    unsetenv("BREAKHOOK_TEST_PG_URL");
    it_srv_t *a = it_srvs_next(&f->srvs);
    it_boot_opts_t o = { .args = args };
    it_srv_boot(a, &o);
    if (pg_url) {
        setenv("BREAKHOOK_TEST_PG_URL", pg_url, 1);
        free(pg_url);
    }
    assert_non_null(strstr(a->store, "sqlite:"));
    const it_definition_t lunch = { .id = 1, .paid = 15, .minimum = 15, .maximum = 60,
                                    .if_not_clocked = 30 };
    it_seed_definition(a, &lunch);
    it_seed_people(a, 1, IT_REF_EMPLOYEE);
    f->cons = it_consumer_new(IT_RULE_OK, NULL);
    it_webhook_t w;
    it_consumer_webhook(a, f->cons, NULL, &w);
    uint64_t before[11] = { 0 };
    for (int id = 1; id <= 10; id++)
        before[id] = put_break(a, id, 10 + id);
    for (int id = 1; id <= 10; id++) {
        it_rec_version_t rv = { id, before[id] };
        assert_true(it_consumer_wait(f->cons, it_pred_acked, &rv, 15000));
    }

    /* The copy's home; a server that holds the source is refused. */
    assert_int_equal(it_tmpdir_new(f->target.dir, sizeof(f->target.dir)), 0);
    snprintf(f->target.db_path, sizeof(f->target.db_path), "%s/target.db", f->target.dir);
    assert_int_equal(it_store_url_make(&f->target), 0);
    it_run_result_t r = migrate(a->store, f->target.store_url);
    if (r.status != 2 || !strstr(r.err, "a server is using")) {
        it_run_dump(&r);
        fail_msg("migrate from a served store: expected exit 2");
    }
    it_run_result_free(&r);

    /* Stopped; changes made while it is down are pending events. */
    it_srv_stop(a);
    char *nd = it_fmt("%s/more.ndjson", f->target.dir);
    FILE *fp = fopen(nd, "w");
    assert_non_null(fp);
    for (int id = 11; id <= 15; id++)
        fprintf(fp,
                "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":1},"
                "\"breakDefinition\":{\"id\":1},\"date\":\"2026-03-02\","
                "\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":600,"
                "\"endTimeInMinutes\":700,\"isBreakTaken\":true}}\n",
                id);
    fclose(fp);
    const char *const imp[] = { "import", "--tenant", IT_TENANT, "--store", a->store, "--quiet",
                                nd, NULL };
    it_run_opts_t io = { .timeout_ms = 30000 };
    assert_int_equal(it_run(imp, &io, &r), 0);
    if (r.status != 0) {
        it_run_dump(&r);
        fail_msg("import while stopped");
    }
    it_run_result_free(&r);
    free(nd);

    r = migrate(a->store, f->target.store_url);
    if (r.status != 0 || !strstr(r.out, "verified: every table has the same rows")) {
        it_run_dump(&r);
        fail_msg("migrate: expected exit 0 and a verified copy");
    }
    assert_non_null(strstr(r.out, "changes"));
    it_run_result_free(&r);
    /* Not into a store that holds anything. */
    r = migrate(a->store, f->target.store_url);
    if (r.status != 2 || !strstr(r.err, "is not empty")) {
        it_run_dump(&r);
        fail_msg("migrate into a filled store: expected exit 2");
    }
    it_run_result_free(&r);

    /* A server on the copy: the pending events arrive, then new writes. */
    it_srv_t copy_of = { 0 };
    snprintf(copy_of.store, sizeof(copy_of.store), "%s", f->target.store_url);
    copy_of.client = a->client;
    it_srv_t *b = it_srvs_next(&f->srvs);
    it_boot_opts_t ob = { .args = args, .same_store = &copy_of };
    it_srv_boot(b, &ob);
    json_t *list = it_srv_expect(b, "GET",
                                 IT_BASE "/breaks?filter=date%20ge%20%272026-03-01%27%20and%20"
                                         "date%20le%20%272026-03-31%27",
                                 NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "value")), 15);
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(list, "value"), i, rec)
    {
        it_rec_version_t rv = { it_jint(rec, "id"), it_version_num(it_jstr(rec, "changeVersion")) };
        if (!it_consumer_wait(f->cons, it_pred_acked, &rv, 15000))
            fail_msg("break %lld at %llu was not delivered from the copy", (long long)rv.record,
                     (unsigned long long)rv.v);
    }
    json_decref(list);
    uint64_t v16 = put_break(b, 16, 40);
    it_rec_version_t rv16 = { 16, v16 };
    assert_true(it_consumer_wait(f->cons, it_pred_acked, &rv16, 15000));
    /* What was acknowledged before the move was not sent again. */
    for (int id = 1; id <= 10; id++)
        if (received(f->cons, id, before[id]) != 1)
            fail_msg("break %d at %llu arrived %zu times", id, (unsigned long long)before[id],
                     received(f->cons, id, before[id]));
    it_consumer_expect_signed(f->cons, "after the move");
}

static void test_usage(void **state)
{
    (void)state;
    const char *const none[] = { "migrate", NULL };
    it_run_result_t r;
    assert_int_equal(it_run(none, NULL, &r), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--from and --to"));
    it_run_result_free(&r);
    const char *const help[] = { "migrate", "--help", NULL };
    assert_int_equal(it_run(help, NULL, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: breakhook migrate"));
    it_run_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_move_and_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
