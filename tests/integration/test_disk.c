/*
 * test_disk.c: a full disk as an operator and an API client see it (issue #12):
 * /readyz says not ready while writes fail for the disk, a failing write answers 503
 * naming the full disk and is not applied, and once space is back the server becomes
 * ready again and writes (and `breakhook client create`) succeed, without a restart.
 *
 * How the disk fills. A test cannot mount a small file system unprivileged, so it
 * uses a limit SQLite itself enforces: the server is started with the test-only
 * variable BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE naming a file whose number the store's
 * writer applies as PRAGMA max_page_count before each write. Past it SQLite answers
 * SQLITE_FULL, the very code a full file system gives it, through the same paths.
 * Writing "1" into the file caps the database at its current size (SQLite never
 * lowers the cap below it); writing a large number frees the "disk" again. The
 * probe behind /readyz is a write too, so it reads the same file.
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
#include <sys/stat.h>

#include "harness_api.h"

#define SCOPES SC_PEOPLE_R " " SC_PEOPLE_W
#define MAX_WRITES 5000         /* writes tried before the capped file must be full */
#define FILL_DEADLINE_MS 180000 /* ... and the time they may take on a loaded machine */
#define READY_DEADLINE_MS 60000 /* probes run at most every 5 s */
#define RESERVE_ARG "1048576"   /* --disk-reserve: 1 MiB */

typedef struct fixture {
    it_srv_t srv;
    char limit_dir[256];
    char limit_path[320];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = it_srv_finish(&f->srv);
    it_rmtree(f->limit_dir);
    free(f);
    return rc;
}

static void set_page_limit(const fixture_t *f, const char *pages)
{
    FILE *fp = fopen(f->limit_path, "w");
    assert_non_null(fp);
    assert_true(fputs(pages, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

/* Starts the server with the page-limit file (no limit yet), creates the tenant and
 * a client with the CLI, obtains a token. */
static fixture_t *boot(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(it_tmpdir_new(f->limit_dir, sizeof(f->limit_dir)), 0);
    snprintf(f->limit_path, sizeof(f->limit_path), "%s/max-pages", f->limit_dir);
    set_page_limit(f, "0"); /* 0: no limit */
    char *env_var = it_fmt("BREAKHOOK_TEST_MAX_PAGE_COUNT_FILE=%s", f->limit_path);
    const char *const env[] = { env_var, NULL };
    const char *const args[] = { "--disk-reserve", RESERVE_ARG, NULL };
    it_boot_opts_t o = { .args = args, .env = env, .scopes = SCOPES };
    it_srv_boot(&f->srv, &o);
    free(env_var);
    return f;
}

/* PUT /people/id with a person carrying two long references (each value up to 128
 * bytes), so that the rows fill pages quickly. */
static void put_person(const fixture_t *f, int id, it_response_t *r)
{
    char target[128], badge[101];
    snprintf(target, sizeof(target), IT_BASE "/people/%d", id);
    char *headers = it_fmt("%sContent-Type: application/json\r\n", f->srv.auth);
    memset(badge, 'b', sizeof(badge) - 1);
    badge[sizeof(badge) - 1] = '\0';
    char *body = it_fmt("{\"id\":%d,\"externalReferences\":{\"@badge-number\":\"%d-%s\","
                        "\"HRMID\":\"h%d-%s\"}}",
                        id, id, badge, id, badge);
    int rc = it_request(f->srv.s.port, "PUT", target, headers, body, strlen(body), r);
    free(headers);
    free(body);
    if (rc != 0)
        fail_msg("PUT %s: %s", target, it_last_error());
}

static int get_person_status(const fixture_t *f, int id)
{
    char target[128];
    snprintf(target, sizeof(target), IT_BASE "/people/%d", id);
    it_response_t r;
    if (it_request(f->srv.s.port, "GET", target, f->srv.auth, NULL, 0, &r) != 0)
        fail_msg("GET %s: %s", target, it_last_error());
    int status = r.status;
    it_response_free(&r);
    return status;
}

/* /readyz answers 503 with the SPEC error body naming the full disk. */
static void assert_not_ready_disk_full(const fixture_t *f)
{
    it_response_t r;
    if (it_request(f->srv.s.port, "GET", "/readyz", NULL, NULL, 0, &r) != 0)
        fail_msg("GET /readyz: %s", it_last_error());
    it_assert_error(&r, 503, "ServiceUnavailable");
    if (!strstr(r.body, "disk is full"))
        fail_msg("/readyz does not name the full disk: %s", r.body);
    it_response_free(&r);
}

/* True when the disk reserve next to the store holds at least its size in allocated
 * blocks (not a sparse file). */
static bool reserve_held(void *arg)
{
    const fixture_t *f = arg;
    char path[400];
    snprintf(path, sizeof(path), "%s-reserve", f->srv.s.db_path);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size >= strtoll(RESERVE_ARG, NULL, 10) &&
           (long long)st.st_blocks * 512 >= strtoll(RESERVE_ARG, NULL, 10);
}

/*
 * The whole cycle: ready; writes until the "disk" is full; the failed write answers
 * 503 naming the full disk and is not applied; the disk reserve is given back (it is
 * what lets a real full disk checkpoint); /readyz says not ready, also after a probe
 * failed; space comes back; the store notices by itself (the checkpointer probes,
 * nobody calls /readyz) and takes its reserve again; ready; writes and the CLI work.
 */
static void test_full_disk_not_ready_and_recovers(void **state)
{
    if (it_store_pg())
        skip(); /* fills the SQLite file's disk: nothing of it applies to PostgreSQL */
    fixture_t *f = boot(state);
    it_response_t r;
    assert_true(reserve_held(f));
    put_person(f, 1, &r);
    assert_int_equal(r.status, 201);
    it_response_free(&r);
    assert_int_equal(it_get_status(f->srv.s.port, "/readyz"), 200);

    /* Cap the file at its size, then write until a write no longer fits. */
    set_page_limit(f, "1");
    int failed = 0;
    uint64_t deadline = it_now_ms() + FILL_DEADLINE_MS;
    for (int id = 2; id < 2 + MAX_WRITES && it_now_ms() < deadline; id++) {
        put_person(f, id, &r);
        if (r.status == 201) {
            it_response_free(&r);
            continue;
        }
        it_assert_error(&r, 503, "ServiceUnavailable");
        if (!strstr(r.body, "disk is full") || !strstr(r.body, "SQLITE_FULL"))
            fail_msg("the failed write does not name the full disk: %s", r.body);
        it_response_free(&r);
        failed = id;
        break;
    }
    if (!failed)
        fail_msg("no write failed with the database capped at its size");

    /* The write was not applied, the reserve is released, and the server says it is
     * not ready ... */
    assert_int_equal(get_person_status(f, failed), 404);
    assert_false(reserve_held(f));
    assert_not_ready_disk_full(f);
    /* ... also once a probe write has run (at most every 5 s) and failed. */
    it_sleep_ms(6000);
    assert_not_ready_disk_full(f);
    put_person(f, failed, &r);
    assert_int_equal(r.status, 503);
    it_response_free(&r);

    /* Space is back: the store probes by itself (no /readyz, no client write) and
     * takes its reserve again, then says ready. */
    set_page_limit(f, "1000000000");
    if (!it_wait_until(reserve_held, f, READY_DEADLINE_MS, 250))
        fail_msg("the store did not recover and retake its disk reserve within %d s",
                 READY_DEADLINE_MS / 1000);
    assert_int_equal(it_get_status(f->srv.s.port, "/readyz"), 200);

    put_person(f, failed, &r);
    assert_int_equal(r.status, 201);
    it_response_free(&r);
    assert_int_equal(get_person_status(f, failed), 200);

    const char *const client[] = { "client", "create", "--tenant", IT_TENANT, "--name", "after",
                                   "--scopes", SCOPES, "--store", f->srv.store, NULL };
    free(it_cli_ok(f->srv.s.dir, client));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_disk_not_ready_and_recovers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
