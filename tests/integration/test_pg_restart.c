/*
 * test_pg_restart.c: PostgreSQL stopped and started again under load (issue #17 point
 * 6). The node must answer not ready while the database is gone, reconnect by itself,
 * and lose nothing it acknowledged: every write answered 2xx is there afterwards and
 * is delivered to the webhook.
 *
 * The test runs its own durable cluster (scripts/pg-test-cluster.sh with
 * PG_TEST_DURABLE=1: fsync and synchronous_commit on), not the shared one of the
 * integration-pg run, since it takes it down; it points BREAKHOOK_TEST_PG_URL at it
 * so that the harness puts the server's store there. It needs the PostgreSQL 15
 * binaries (CI installs them) and fails, never skips, without them.
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

#include "harness_api.h"
#include "harness_consumer.h"

#define LOOPBACK "--allow-http-destinations", "--allow-destination", "127.0.0.0/8"
#define WRITES 400
#define SCRIPT SOURCE_DIR "/scripts/pg-test-cluster.sh"

typedef struct fixture {
    it_srvs_t srvs;
    it_consumer_t *cons;
    char dir[256];   /* the cluster's directory */
    char *saved_pg;  /* BREAKHOOK_TEST_PG_URL as it was */
} fixture_t;

static int cluster(fixture_t *f, const char *cmd, char *url, size_t n)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/%s.log", f->dir, cmd);
    const char *const argv[] = { "env", "PG_TEST_DURABLE=1", SCRIPT, cmd, f->dir, NULL };
    int rc = it_cmd_run(argv, f->dir, log, 90000);
    if (rc == 0 && url) {
        size_t len = 0;
        char *out = it_read_file(log, &len);
        if (!out)
            return -1;
        char *nl = strrchr(out, '\n');
        if (nl && nl == out + len - 1)
            *nl = '\0';
        char *last = strrchr(out, '\n');
        snprintf(url, n, "%s", last ? last + 1 : out);
        free(out);
    }
    return rc;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || it_tmpdir_new(f->dir, sizeof(f->dir)))
        return -1;
    const char *pg = getenv("BREAKHOOK_TEST_PG_URL");
    f->saved_pg = pg ? strdup(pg) : NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    it_consumer_free(f->cons);
    int rc = it_srvs_finish(&f->srvs);
    cluster(f, "stop", NULL, 0);
    it_rmtree(f->dir);
    if (f->saved_pg)
        setenv("BREAKHOOK_TEST_PG_URL", f->saved_pg, 1);
    else
        unsetenv("BREAKHOOK_TEST_PG_URL");
    free(f->saved_pg);
    free(f);
    return rc;
}

/* The writer: PUT /breaks/1..WRITES on its own connection, one after another, noting
 * which were acknowledged and at which version. No cmocka call on this thread. */
typedef struct writer {
    int port;
    char auth[1200];
    int status[WRITES + 1];
    uint64_t version[WRITES + 1];
    atomic_int done;
    pthread_t t;
} writer_t;

static void *write_all(void *arg)
{
    writer_t *w = arg;
    it_conn_t c = { .fd = -1 };
    for (int id = 1; id <= WRITES; id++) {
        if (c.fd < 0 || c.eof) { /* it_conn_ensure would fail the test from this thread */
            it_conn_close(&c);
            if (it_connect(&c, w->port) != 0) {
                w->status[id] = -1;
                continue;
            }
        }
        char *path = it_fmt(IT_BASE "/breaks/%d", id);
        char *body = it_fmt("{\"id\":%d,\"person\":{\"id\":1},\"breakDefinition\":{\"id\":1},"
                            "\"date\":\"2026-03-%02d\",\"clockedDurationInMinutes\":20,"
                            "\"startTimeInMinutes\":600,\"endTimeInMinutes\":700,"
                            "\"isBreakTaken\":true}",
                            id, 1 + id % 28);
        char *hdrs = it_fmt("%sContent-Type: application/json\r\n", w->auth);
        it_response_t r;
        memset(&r, 0, sizeof(r));
        if (it_conn_request(&c, "PUT", path, hdrs, body, strlen(body), &r) == 0) {
            w->status[id] = r.status;
            json_t *j = r.status / 100 == 2 ? it_json_parse(r.body, r.body_len) : NULL;
            const char *v = j ? json_string_value(json_object_get(j, "changeVersion")) : NULL;
            w->version[id] = v ? it_version_num(v) : 0;
            json_decref(j);
            it_response_free(&r);
        } else {
            w->status[id] = -1;
            it_conn_close(&c);
        }
        free(hdrs);
        free(body);
        free(path);
        it_sleep_ms(10);
    }
    it_conn_close(&c);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Polls /readyz until it answers want, at most timeout_ms. */
static bool ready_is(it_srv_t *s, int want, unsigned timeout_ms)
{
    uint64_t end = it_now_ms() + timeout_ms;
    while (it_now_ms() < end) {
        if (it_get_status(s->s.port, "/readyz") == want)
            return true;
        it_sleep_ms(50);
    }
    return false;
}

static void test_restart_under_load(void **state)
{
    fixture_t *f = *state;
    char url[300];
    if (cluster(f, "start", url, sizeof(url)) != 0)
        fail_msg("could not start a PostgreSQL cluster in %s (see start.log there)", f->dir);
    setenv("BREAKHOOK_TEST_PG_URL", url, 1);
    const char *const args[] = { LOOPBACK, NULL };
    it_srv_t *s = it_srvs_next(&f->srvs);
    it_boot_opts_t o = { .args = args };
    it_srv_boot(s, &o);
    assert_non_null(strstr(s->store, "postgres://"));
    const it_definition_t lunch = { .id = 1, .paid = 15, .minimum = 15, .maximum = 60,
                                    .if_not_clocked = 30 };
    it_seed_definition(s, &lunch);
    it_seed_people(s, 1, 0);
    f->cons = it_consumer_new(IT_RULE_OK, NULL);
    it_webhook_t wh;
    it_consumer_webhook(s, f->cons, NULL, &wh);
    assert_true(ready_is(s, 200, 5000));

    writer_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->port = s->s.port;
    snprintf(w->auth, sizeof(w->auth), "%s", s->auth);
    assert_int_equal(pthread_create(&w->t, NULL, write_all, w), 0);
    it_sleep_ms(800);
    /* The database goes away under load: the node says it is not ready. */
    assert_int_equal(cluster(f, "down", NULL, 0), 0);
    bool not_ready = ready_is(s, 503, 10000);
    it_sleep_ms(1000);
    assert_int_equal(cluster(f, "up", NULL, 0), 0);
    /* ...and comes back by itself. */
    bool ready_again = ready_is(s, 200, 30000);
    pthread_join(w->t, NULL);
    if (!not_ready)
        fail_msg("/readyz never answered 503 while PostgreSQL was down");
    if (!ready_again)
        fail_msg("/readyz did not answer 200 within 30 s of PostgreSQL's return");

    /* Nothing acknowledged is lost: it reads back, and it is delivered. */
    int acked = 0, refused = 0;
    for (int id = 1; id <= WRITES; id++) {
        if (w->status[id] / 100 != 2) {
            refused++;
            continue;
        }
        acked++;
        char *path = it_fmt(IT_BASE "/breaks/%d", id);
        json_t *j = it_srv_expect(s, "GET", path, NULL, 200);
        uint64_t v = it_version_num(it_jstr(j, "changeVersion"));
        if (v != w->version[id])
            fail_msg("break %d: acknowledged at %llu, reads %llu", id,
                     (unsigned long long)w->version[id], (unsigned long long)v);
        json_decref(j);
        free(path);
        it_rec_version_t rv = { id, w->version[id] };
        if (!it_consumer_wait(f->cons, it_pred_acked, &rv, 30000))
            fail_msg("break %d at %llu was acknowledged but never delivered", id,
                     (unsigned long long)w->version[id]);
    }
    fprintf(stderr, "writes: %d acknowledged, %d refused or cut off during the outage\n",
            acked, refused);
    assert_true(acked > WRITES / 2);
    free(w);
    it_consumer_expect_signed(f->cons, "after the restart");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_under_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
