/*
 * test_metrics.c: GET /metrics (SPEC §8) as an operator sees it, read with the real
 * tool: Prometheus's own `promtool check metrics` (Debian's prometheus package) lints
 * a live scrape, and the values a user would check are asserted:
 *   - N writes: N events created, N requests counted on their route pattern (never
 *     the raw path), one request-duration observation each;
 *   - a destination that answers 500: every attempt counted as http_error, the
 *     retries counted, the event given up and the webhook counted as disabled for
 *     RetriesExhausted, the breaker and the pending gauges seeing it;
 *   - K delivered events: K successes and exactly K commit -> 2xx latency
 *     observations; the pending gauge back to 0;
 *   - the listener is separate: /metrics is not on the API port, --metrics-listen off
 *     serves none;
 *   - the alert rules and the dashboard only name metrics a live scrape has
 *     (scripts/check-contrib.sh with the scrape).
 * Consumers are `breakhook sink --status CODE` processes on 127.0.0.1.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_api.h"

#define WAIT_MS 20000

typedef struct fixture {
    it_srv_t srv;
    it_server_t sink;
} fixture_t;

/* With --rate-limit 0, which it_srv_boot adds. */
static const char *const server_args[] = { "--allow-http-destinations", "--allow-destination",
                                           "127.0.0.1/32", "--retry-schedule", "100ms,100ms",
                                           NULL };

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    int rc = it_srv_finish(&f->srv);
    if (f->sink.pid)
        (void)it_server_stop(&f->sink, 0);
    it_server_cleanup(&f->sink);
    free(f);
    return rc;
}

static fixture_t *boot(void **state, const char *const *args)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    *state = f;
    it_boot_opts_t o = { .args = args ? args : server_args };
    it_srv_boot(&f->srv, &o);
    return f;
}

static char *scrape(const fixture_t *f)
{
    char *s = it_metrics_scrape(&f->srv.s);
    if (!s)
        fail_msg("scrape: %s", it_last_error());
    return s;
}

static double metric(const fixture_t *f, const char *series)
{
    char *s = scrape(f);
    double v = it_metric(s, series);
    free(s);
    return v;
}

typedef struct metric_wait {
    const fixture_t *f;
    const char *series;
    double want, last;
} metric_wait_t;

static bool metric_is(void *arg)
{
    metric_wait_t *mw = arg;
    mw->last = metric(mw->f, mw->series);
    return mw->last == mw->want;
}

/* Waits until series has the value want (gauges follow the engine's snapshot, at
 * most a second behind). */
static void wait_metric(const fixture_t *f, const char *series, double want)
{
    metric_wait_t mw = { f, series, want, NAN };
    if (!it_wait_until(metric_is, &mw, WAIT_MS, 50))
        fail_msg("%s is %g after %d ms, want %g", series, mw.last, WAIT_MS, want);
}

static void call(fixture_t *f, const char *method, const char *target, const char *body,
                 int want)
{
    json_decref(it_srv_expect(&f->srv, method, target, body, want));
}

/* Person 1 and break definition 1, the records every break refers to. */
static void seed(fixture_t *f)
{
    it_seed_people(&f->srv, 1, 0);
    const it_definition_t d = { .id = 1, .maximum = 60, .if_not_clocked = 30 };
    it_seed_definition(&f->srv, &d);
}

static void put_break(fixture_t *f, int64_t id, int want)
{
    char *target = it_fmt(IT_BASE "/breaks/%lld", (long long)id);
    char *body = it_fmt("{\"id\":%lld,\"person\":{\"id\":1},\"breakDefinition\":{\"id\":1},"
                        "\"date\":\"2026-03-02\",\"clockedDurationInMinutes\":%lld,"
                        "\"startTimeInMinutes\":720,\"endTimeInMinutes\":750,"
                        "\"isBreakTaken\":true}",
                        (long long)id, (long long)(id % 50));
    call(f, "PUT", target, body, want);
    free(target);
    free(body);
}

/* A sink answering every request with status; the webhook on breaks to it. */
static void webhook_to_sink(fixture_t *f, const char *status)
{
    /* --status answers without verifying: the key is required but unused. */
    const char *const args[] = { "--status", status, "--quiet", "--key",
                                 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", NULL };
    if (it_sink_start(&f->sink, NULL, args))
        fail_msg("sink: %s", it_last_error());
    char *url = it_fmt("http://127.0.0.1:%d/hook", f->sink.port);
    it_webhook_t w;
    it_webhook_create(&f->srv, url, NULL, &w);
    free(url);
}

/* Seeds the data, a webhook to a sink answering 204, and break id delivered. */
static void deliver_one(fixture_t *f, int64_t id)
{
    seed(f);
    webhook_to_sink(f, "204");
    put_break(f, id, 201);
    wait_metric(f, "breakhook_delivery_attempts_total{outcome=\"success\"}", 1);
}

/* Writes text to a new file name in dir; the path (malloc'd). */
static char *write_temp(const char *dir, const char *name, const char *text)
{
    char *path = it_fmt("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
    return path;
}

/* Runs promtool (from PATH) with args and text on stdin; its exit status, and its
 * output in *out (malloc'd). */
static int promtool(const char *const *args, const char *text, char **out)
{
    const char *argv[8] = { "promtool" };
    size_t n = 1;
    for (size_t i = 0; args[i] && n + 1 < 8; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char dir[256];
    assert_int_equal(it_tmpdir_new(dir, sizeof(dir)), 0);
    char *in_path = write_temp(dir, "in", text);
    char *out_path = it_fmt("%s/out", dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(in_path, "r", stdin) || !freopen(out_path, "w", stdout) ||
            dup2(fileno(stdout), 2) < 0)
            _exit(126);
        execvp("promtool", (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *out = it_read_file(out_path, NULL);
    free(in_path);
    free(out_path);
    it_rmtree(dir);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (code == 127)
        fail_msg("promtool is not installed (Debian package prometheus; make deps installs it)");
    return code;
}

/* ---- tests ----------------------------------------------------------------------- */

/* The scrape of a server that has done a bit of everything passes Prometheus's own
 * linter, and carries every family docs/OPERATIONS.md lists. */
static void test_promtool_accepts_live_scrape(void **state)
{
    fixture_t *f = boot(state, NULL);
    deliver_one(f, 1);
    wait_metric(f, "breakhook_webhooks_enabled", 1);
    call(f, "GET", IT_BASE "/breaks/1", NULL, 200);
    call(f, "GET", IT_BASE "/breaks/404", NULL, 404);
    char *s = scrape(f);
    static const char *const check[] = { "check", "metrics", NULL };
    char *out = NULL;
    int code = promtool(check, s, &out);
    if (code != 0 || (out && *out))
        fail_msg("promtool check metrics: exit %d:\n%s", code, out ? out : "");
    free(out);
    static const char *const families[] = {
        "breakhook_http_requests_total", "breakhook_http_request_duration_seconds",
        "breakhook_http_connections", "breakhook_events_created_total",
        "breakhook_delivery_attempts_total", "breakhook_delivery_retries_total",
        "breakhook_delivery_given_up_total", "breakhook_delivery_latency_seconds",
        "breakhook_delivery_attempt_duration_seconds", "breakhook_destinations_paused",
        "breakhook_webhooks_enabled", "breakhook_webhooks_expiring",
        "breakhook_webhooks_disabled_total", "breakhook_pending_events",
        "breakhook_oldest_pending_age_seconds", "breakhook_tenant_pending_events",
        "breakhook_tenant_oldest_pending_age_seconds", "breakhook_store_call_duration_seconds",
        "breakhook_store_group_commit_size", "breakhook_store_ready",
        "breakhook_worker_queue_length", "breakhook_token_queue_length",
        "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
        "process_max_fds", "process_start_time_seconds", "breakhook_build_info",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char *type = it_fmt("# TYPE %s ", families[i]);
        if (!strstr(s, type))
            fail_msg("the scrape has no family %s", families[i]);
        free(type);
    }
    /* The route pattern, never the raw path (ids would make a series per record). */
    assert_null(strstr(s, "/breaks/404"));
    assert_true(it_metric(s, "breakhook_http_requests_total{route=\"" IT_BASE
                             "/breaks/{id}\",method=\"GET\",status=\"404\"}") == 1);
    assert_true(it_metric(s, "breakhook_webhooks_enabled") == 1);
    assert_true(it_metric(s, "breakhook_store_ready") == 1);
    assert_true(it_metric(s, "process_resident_memory_bytes") > 1e6);
    free(s);
}

/* N writes through the API: N events created, N requests on the route pattern, N
 * duration observations; an unchanged PUT creates no event. */
static void test_writes_counted(void **state)
{
    fixture_t *f = boot(state, NULL);
    seed(f);
    char *before = scrape(f);
    const int n = 37;
    for (int i = 1; i <= n; i++)
        put_break(f, i, 201);
    put_break(f, 5, 200); /* the same content again: no new version, no event */
    char *after = scrape(f);
    static const char *const created = "breakhook_events_created_total{collection=\"breaks\"}";
    assert_true(it_metric(before, created) == 0);
    assert_true(it_metric(after, created) == n);
    assert_true(it_metric(after, "breakhook_events_created_total{collection=\"people\"}") == 1);
    assert_true(
        it_metric(after, "breakhook_events_created_total{collection=\"break-definitions\"}") == 1);
    const char *put201 = "breakhook_http_requests_total{route=\"" IT_BASE
                         "/breaks/{id}\",method=\"PUT\",status=\"201\"}";
    const char *put200 = "breakhook_http_requests_total{route=\"" IT_BASE
                         "/breaks/{id}\",method=\"PUT\",status=\"200\"}";
    assert_true(it_metric(after, put201) == n);
    assert_true(it_metric(after, put200) == 1);
    assert_true(it_metric(after, "breakhook_http_request_duration_seconds_count{route=\"" IT_BASE
                                 "/breaks/{id}\"}") == n + 1);
    /* The writes went through the store: break_put timed once per write. */
    assert_true(it_metric(after, "breakhook_store_call_duration_seconds_count{op=\"break_put\"}") ==
                n + 1);
    double commits = it_metric(after, "breakhook_store_group_commit_size_count");
    double jobs = it_metric(after, "breakhook_store_group_commit_size_sum");
    assert_true(commits >= 1 && jobs >= commits);
    free(before);
    free(after);
}

/* A destination answering 500 to everything, with two retries: three attempts,
 * each an http_error; two retries; then the event is given up and the webhook
 * disabled (RetriesExhausted). */
static void test_failing_destination_counted(void **state)
{
    fixture_t *f = boot(state, NULL);
    seed(f);
    webhook_to_sink(f, "500");
    put_break(f, 1, 201);
    wait_metric(f, "breakhook_delivery_given_up_total", 1);
    char *s = scrape(f);
    assert_true(it_metric(s, "breakhook_delivery_attempts_total{outcome=\"http_error\"}") == 3);
    assert_true(it_metric(s, "breakhook_delivery_attempts_total{outcome=\"success\"}") == 0);
    assert_true(it_metric(s, "breakhook_delivery_retries_total") == 2);
    assert_true(it_metric(s, "breakhook_delivery_attempt_duration_seconds_count") == 3);
    assert_true(it_metric(s, "breakhook_delivery_latency_seconds_count") == 0);
    free(s);
    /* The engine counts the event given up before the store has committed the
     * webhook's disabling (and counted it): wait for that too. */
    wait_metric(f, "breakhook_webhooks_disabled_total{reason=\"RetriesExhausted\"}", 1);
    wait_metric(f, "breakhook_webhooks_enabled", 0);
}

/* While a destination fails, its event is pending: the gauges show it, in all and
 * for the tenant by name, with an age that grows. */
static void test_pending_gauges(void **state)
{
    static const char *const slow_retry[] = { "--allow-http-destinations", "--allow-destination",
                                              "127.0.0.1/32", "--retry-schedule", "1h", NULL };
    fixture_t *f = boot(state, slow_retry);
    seed(f);
    webhook_to_sink(f, "503");
    put_break(f, 1, 201);
    put_break(f, 2, 201);
    wait_metric(f, "breakhook_pending_events", 2);
    wait_metric(f, "breakhook_tenant_pending_events{tenant=\"acme\"}", 2);
    it_sleep_ms(1500);
    char *s = scrape(f);
    double age = it_metric(s, "breakhook_oldest_pending_age_seconds");
    double tenant_age = it_metric(s, "breakhook_tenant_oldest_pending_age_seconds{tenant=\"acme\"}");
    assert_true(age >= 1.0 && age < 120.0);
    assert_true(tenant_age == age);
    free(s);
}

/* K events delivered: K successes, exactly K commit -> 2xx observations (one per
 * delivered event), each below the bound of a delivery on loopback; nothing pending
 * afterwards. */
static void test_delivered_latency_observed(void **state)
{
    fixture_t *f = boot(state, NULL);
    seed(f);
    webhook_to_sink(f, "204");
    const int k = 25;
    for (int i = 1; i <= k; i++)
        put_break(f, i, 201);
    wait_metric(f, "breakhook_delivery_attempts_total{outcome=\"success\"}", k);
    char *s = scrape(f);
    assert_true(it_metric(s, "breakhook_delivery_latency_seconds_count") == k);
    assert_true(it_metric(s, "breakhook_delivery_latency_seconds_bucket{le=\"+Inf\"}") == k);
    /* Observed from the commit, which is before the answer: more than nothing, and on
     * loopback well under the first hour bucket. */
    double sum = it_metric(s, "breakhook_delivery_latency_seconds_sum");
    assert_true(sum > 0 && sum < k * 60.0);
    assert_true(it_metric(s, "breakhook_delivery_latency_seconds_bucket{le=\"60\"}") == k);
    assert_true(it_metric(s, "breakhook_delivery_retries_total") == 0);
    free(s);
    wait_metric(f, "breakhook_pending_events", 0);
    wait_metric(f, "breakhook_oldest_pending_age_seconds", 0);
}

/* The metrics are on their own listener only: the API port answers 404; a metrics
 * port in use is a clear start failure, not a server without metrics; with
 * --metrics-listen off there is none (the server still serves the API). */
static void test_metrics_listener_is_separate(void **state)
{
    fixture_t *f = boot(state, NULL);
    assert_true(f->srv.s.metrics_port > 0 && f->srv.s.metrics_port != f->srv.s.port);
    assert_int_equal(it_get_status(f->srv.s.port, "/metrics"), 404);
    assert_int_equal(it_get_status(f->srv.s.metrics_port, "/metrics"), 200);
    assert_int_equal(it_get_status(f->srv.s.metrics_port, "/healthz"), 404);

    char *taken = it_fmt("127.0.0.1:%d", f->srv.s.metrics_port);
    const char *const clash[] = { "--metrics-listen", taken, NULL };
    it_server_opts_t oc = { .args = clash };
    it_server_t s2;
    assert_int_equal(it_server_start(&s2, &oc), -1);
    char *log = it_read_file(s2.output_path, NULL);
    assert_non_null(log);
    if (!strstr(log, "--metrics-listen") || !strstr(log, "address already in use"))
        fail_msg("the metrics listen failure does not say why: %s", log);
    free(log);
    free(taken);
    it_server_cleanup(&s2);

    static const char *const off[] = { "--metrics-listen", "off", NULL };
    it_server_opts_t o = { .args = off };
    assert_int_equal(it_server_start(&s2, &o), 0);
    assert_int_equal(s2.metrics_port, 0);
    assert_int_equal(it_get_status(s2.port, "/healthz"), 200);
    assert_int_equal(it_server_stop_clean(&s2), 0);
    it_server_cleanup(&s2);
}

/* One structured line per attempt: a success names the webhook, event, record,
 * attempt, status and duration; failures toward one destination are capped at 10
 * lines per 10 s, and the lines left out are counted in the next line's
 * "suppressed", so the attempts logged plus suppressed add up to the attempts made. */
static void test_attempt_log_lines(void **state)
{
    static const char *const many_retries[] = {
        "--allow-http-destinations", "--allow-destination", "127.0.0.1/32",
        "--retry-schedule", "10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms",
        "--breaker-threshold", "1000", NULL };
    fixture_t *f = boot(state, many_retries);
    seed(f);
    webhook_to_sink(f, "500");
    put_break(f, 1, 201);
    put_break(f, 2, 201);
    /* 2 records x 14 attempts; both given up, so the webhook goes after the first. */
    wait_metric(f, "breakhook_webhooks_disabled_total{reason=\"RetriesExhausted\"}", 1);
    double attempts = metric(f, "breakhook_delivery_attempts_total{outcome=\"http_error\"}");
    assert_true(attempts >= 14);
    it_srv_stop(&f->srv);
    char *log = it_read_file(f->srv.s.log_path, NULL);
    assert_non_null(log);
    int lines = 0;
    long long suppressed = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        const char *msg = json_string_value(json_object_get(o, "msg"));
        if (msg && strcmp(msg, "delivery failed") == 0) {
            lines++;
            assert_non_null(json_string_value(json_object_get(o, "webhook")));
            assert_non_null(strstr(json_string_value(json_object_get(o, "event")), "evt_"));
            assert_true(json_integer_value(json_object_get(o, "record")) >= 1);
            assert_true(json_integer_value(json_object_get(o, "attempt")) >= 1);
            assert_int_equal(json_integer_value(json_object_get(o, "status")), 500);
            assert_string_equal(json_string_value(json_object_get(o, "outcome")), "http_error");
            assert_true(json_is_integer(json_object_get(o, "us")));
            suppressed += json_integer_value(json_object_get(o, "suppressed"));
        }
        json_decref(o);
    }
    free(log);
    /* The whole run fits in one 10 s window: 10 lines, the rest suppressed (what the
     * last window held back is reported only if another line follows). */
    assert_int_equal(lines, 10);
    assert_true(suppressed <= attempts - lines);
}

/* A delivered event's line: info level, outcome success, the sink's status. */
static void test_attempt_log_success(void **state)
{
    fixture_t *f = boot(state, NULL);
    deliver_one(f, 7);
    it_srv_stop(&f->srv);
    char *log = it_read_file(f->srv.s.log_path, NULL);
    assert_non_null(log);
    const char *p = strstr(log, "\"msg\":\"delivery\"");
    assert_non_null(p);
    const char *start = p;
    while (start > log && start[-1] != '\n')
        start--;
    const char *end = strchr(p, '\n');
    json_error_t err;
    json_t *o = json_loadb(start, (size_t)(end - start), 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "outcome")), "success");
    assert_int_equal(json_integer_value(json_object_get(o, "record")), 7);
    assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 204);
    json_decref(o);
    free(log);
}

/* A change made by another process on the same store (the import CLI beside the
 * running server) reaches the destination without any further write: the server's
 * store notices the other process's commit (PRAGMA data_version, polled every
 * 100 ms) and wakes the delivery engine. Observed through the metrics: the
 * deliveries counted, and nothing written through the API after the import. */
static void test_import_beside_server_delivered(void **state)
{
    fixture_t *f = boot(state, NULL);
    seed(f);
    webhook_to_sink(f, "204");
    char *path = it_fmt("%s/breaks.ndjson", f->srv.s.dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 1; i <= 3; i++)
        fprintf(fp,
                "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":1},"
                "\"breakDefinition\":{\"id\":1},\"date\":\"2026-03-0%d\","
                "\"clockedDurationInMinutes\":20,\"startTimeInMinutes\":720,"
                "\"endTimeInMinutes\":750,\"isBreakTaken\":true}}\n",
                100 + i, i);
    fclose(fp);
    /* The engine has loaded the webhook (it reads new ones once a second). */
    wait_metric(f, "breakhook_webhooks_enabled", 1);
        const char *const args[] = { "import", "--tenant", "acme", "--store", f->srv.store, "--quiet",
                                 path, NULL };
    it_run_result_t r;
    it_run_opts_t o = { .timeout_ms = 60000 };
    assert_int_equal(it_run(args, &o, &r), 0);
    if (r.status != 0)
        fail_msg("import: exit %d: %s", r.status, r.err);
    it_run_result_free(&r);
    uint64_t t0 = it_now_ms();
    wait_metric(f, "breakhook_delivery_attempts_total{outcome=\"success\"}", 3);
    fprintf(stderr, "imported changes delivered %llu ms after the import exited\n",
            (unsigned long long)(it_now_ms() - t0));
    /* Imported by another process: not counted as created by this one. */
    assert_true(metric(f, "breakhook_events_created_total{collection=\"breaks\"}") == 0);
    free(path);
}

/* contrib/: the alert rules and the dashboard only use metrics a real scrape has, and
 * the rules pass promtool's checks and unit tests (scripts/check-contrib.sh). */
static void test_contrib_names_exist(void **state)
{
    fixture_t *f = boot(state, NULL);
    deliver_one(f, 1);
    char *s = scrape(f);
    char dir[256];
    assert_int_equal(it_tmpdir_new(dir, sizeof(dir)), 0);
    char *path = write_temp(dir, "scrape.prom", s);
    char *cmd = it_fmt("%s/scripts/check-contrib.sh %s 2>&1", SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[512];
    while (fgets(line, sizeof(line), p))
        fputs(line, stderr);
    int st = pclose(p);
    assert_int_equal(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
    free(cmd);
    free(path);
    free(s);
    it_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_promtool_accepts_live_scrape, teardown),
        cmocka_unit_test_teardown(test_writes_counted, teardown),
        cmocka_unit_test_teardown(test_failing_destination_counted, teardown),
        cmocka_unit_test_teardown(test_pending_gauges, teardown),
        cmocka_unit_test_teardown(test_delivered_latency_observed, teardown),
        cmocka_unit_test_teardown(test_metrics_listener_is_separate, teardown),
        cmocka_unit_test_teardown(test_attempt_log_lines, teardown),
        cmocka_unit_test_teardown(test_attempt_log_success, teardown),
        cmocka_unit_test_teardown(test_import_beside_server_delivered, teardown),
        cmocka_unit_test_teardown(test_contrib_names_exist, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
