/*
 * test_contract_open.c: the back-end contract (tests/store/), part 10: nodes starting
 * together on a fresh store. Eight threads open the same new store at once (each its
 * own handle and connections: for PostgreSQL eight nodes, for SQLite eight processes'
 * worth of connections); every open succeeds, every handle reports the same schema
 * version, and on PostgreSQL each migration is recorded exactly once
 * (pg_advisory_xact_lock around each, store/pg/migrations.c).
 *
 * The fresh store: with $BREAKHOOK_TEST_STORE_URL a PostgreSQL URL, a new database in
 * the same cluster (created and dropped here with libpq); otherwise a new SQLite file.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "fixture_store.h"
#include "store/store.h"

#define NODES 8

typedef struct node {
    const char *url;
    pthread_barrier_t *start;
    int rc;
    int version;
} node_t;

static void *open_one(void *arg)
{
    node_t *n = arg;
    store_options_t o = { 0 };
    store_t *s = NULL;
    const char *msg = NULL;
    pthread_barrier_wait(n->start);
    n->rc = store_open(n->url, &o, &s, &msg);
    if (n->rc == 0) {
        n->rc = store_schema_version(s, &n->version);
        store_close(s);
    }
    return NULL;
}

/* Runs sql on the database url names; the first value of the first row into out. */
static int pg_one(const char *url, const char *sql, char *out, size_t cap)
{
    PGconn *c = PQconnectdb(url);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            rc = 0;
            if (out)
                snprintf(out, cap, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
        } else {
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        }
        PQclear(r);
    } else {
        fprintf(stderr, "connect %s: %s", url, PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

static void test_nodes_open_a_fresh_store_together(void **state)
{
    (void)state;
    const char *env = getenv("BREAKHOOK_TEST_STORE_URL");
    bool pg = env && (strncmp(env, "postgres://", 11) == 0 || strncmp(env, "postgresql://", 13) == 0);
    fx_store_t fx;
    char url[512], db[64] = "";
    if (pg) {
        const char *slash = strchr(env + 13, '/');
        assert_non_null(slash);
        snprintf(db, sizeof(db), "bh_open_%ld", (long)getpid());
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
        assert_int_equal(pg_one(env, sql, NULL, 0), 0);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        assert_int_equal(pg_one(env, sql, NULL, 0), 0);
        snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - env), env, db);
    } else {
        fx_store_new(&fx, "open", 1767225600000LL, false);
        snprintf(url, sizeof(url), "%s", fx.url);
    }

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NODES);
    node_t nodes[NODES];
    pthread_t t[NODES];
    for (int i = 0; i < NODES; i++) {
        nodes[i] = (node_t){ .url = url, .start = &start, .rc = -1 };
        assert_int_equal(pthread_create(&t[i], NULL, open_one, &nodes[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].rc != 0)
            fail_msg("node %d could not open the fresh store: %s", i, err_str(nodes[i].rc));
        assert_true(nodes[i].version > 0);
        assert_int_equal(nodes[i].version, nodes[0].version);
    }
    if (pg) {
        char dup[32], n[32];
        assert_int_equal(pg_one(url, "SELECT count(*) - count(DISTINCT version) FROM "
                                     "schema_migrations", dup, sizeof(dup)), 0);
        assert_string_equal(dup, "0");
        assert_int_equal(pg_one(url, "SELECT count(*) FROM schema_migrations", n, sizeof(n)), 0);
        assert_int_equal(strtol(n, NULL, 10), nodes[0].version);
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", db);
        assert_int_equal(pg_one(env, sql, NULL, 0), 0);
    } else {
        fx_store_free(&fx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_open_a_fresh_store_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
