/*
 * test_import.c: `breakhook import` as an operator runs it, against the real
 * binary, with the outcome checked in the store itself.
 *
 * Each test gets a fresh directory with a SQLite store, a tenant made with
 * `breakhook tenant create`, and (most of them) people and break definitions
 * imported first, since breaks must name existing ones. After the import process
 * has exited, the test opens the same SQLite file with store_open and reads what
 * was really committed: the summary line and the exit code are checked against
 * the store, not just against each other.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/date.h"
#include "harness.h"
#include "store/store.h"

#define TENANT "acme"
#define N_PEOPLE 20
#define RUN_TIMEOUT_MS 120000 /* a sanitizer build imports a few thousand rows slowly */

typedef struct fixture {
    char dir[256];
    char store_url[320];
} fixture_t;

typedef struct summary {
    size_t lines, created, replaced, unchanged, deleted, failed;
} summary_t;

/* ---- helpers ------------------------------------------------------------------ */

static void write_file(const fixture_t *f, const char *name, const char *text, size_t n,
                       char *path, size_t path_len)
{
    snprintf(path, path_len, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Runs `breakhook import --tenant acme --store URL --quiet <extra...>`; input goes
 * to stdin when not NULL. */
static void run_import(const fixture_t *f, const char *const *extra, const char *input,
                       size_t input_len, it_run_result_t *r)
{
    const char *args[24] = { "import", "--tenant", TENANT, "--store", f->store_url, "--quiet" };
    size_t n = 6;
    for (size_t i = 0; extra[i]; i++) {
        assert_true(n + 1 < sizeof(args) / sizeof(args[0]));
        args[n++] = extra[i];
    }
    args[n] = NULL;
    it_run_opts_t o = { .input = input, .input_len = input_len, .timeout_ms = RUN_TIMEOUT_MS,
                        .cwd = f->dir };
    if (it_run(args, &o, r) != 0)
        fail_msg("could not run breakhook: %s", it_last_error());
}

static void dump(const it_run_result_t *r)
{
    fprintf(stderr, "exit %d\n--- stdout\n%s--- stderr\n%s---\n", r->status, r->out, r->err);
}

static void expect_status(const it_run_result_t *r, int status)
{
    if (r->status != status) {
        dump(r);
        fail_msg("exit status %d, expected %d", r->status, status);
    }
}

/* Finds and parses "<collection>: N lines, N created, ..." on stdout. */
static summary_t parse_summary(const it_run_result_t *r, const char *collection)
{
    summary_t s;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s: ", collection);
    const char *p = strstr(r->out, prefix);
    if (!p) {
        dump(r);
        fail_msg("no summary for %s", collection);
    }
    int got = sscanf(p + strlen(prefix),
                     "%zu lines, %zu created, %zu replaced, %zu unchanged, %zu deleted, %zu failed",
                     &s.lines, &s.created, &s.replaced, &s.unchanged, &s.deleted, &s.failed);
    if (got != 6) {
        dump(r);
        fail_msg("summary not understood");
    }
    return s;
}

static void expect_summary(const it_run_result_t *r, const char *collection, size_t lines,
                           size_t created, size_t replaced, size_t unchanged, size_t deleted,
                           size_t failed)
{
    summary_t s = parse_summary(r, collection);
    if (s.lines != lines || s.created != created || s.replaced != replaced ||
        s.unchanged != unchanged || s.deleted != deleted || s.failed != failed) {
        dump(r);
        fail_msg("summary %zu/%zu/%zu/%zu/%zu/%zu, expected %zu/%zu/%zu/%zu/%zu/%zu", s.lines,
                 s.created, s.replaced, s.unchanged, s.deleted, s.failed, lines, created,
                 replaced, unchanged, deleted, failed);
    }
}

/* The line numbers of the "line N: ..." reports on stderr, in order. */
static size_t reported_lines(const it_run_result_t *r, size_t *out, size_t max)
{
    size_t n = 0;
    for (const char *p = r->err; p && *p;) {
        size_t line;
        if (strncmp(p, "line ", 5) == 0 && sscanf(p + 5, "%zu:", &line) == 1) {
            assert_true(n < max);
            out[n++] = line;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return n;
}

/* The report of one line on stderr, or NULL. */
static const char *report_of(const it_run_result_t *r, size_t line)
{
    char key[32];
    snprintf(key, sizeof(key), "line %zu: ", line);
    for (const char *p = r->err; p && *p;) {
        if (strncmp(p, key, strlen(key)) == 0)
            return p;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

static void expect_report(const it_run_result_t *r, size_t line, const char *text)
{
    const char *p = report_of(r, line);
    const char *end = p ? strchr(p, '\n') : NULL;
    if (!p || !end || !memmem(p, (size_t)(end - p), text, strlen(text))) {
        dump(r);
        fail_msg("no report for line %zu containing '%s'", line, text);
    }
}

static store_t *open_store(const fixture_t *f, int64_t *tenant_id)
{
    store_t *s;
    const char *msg = NULL;
    store_options_t o = { 0 };
    if (store_open(f->store_url, &o, &s, &msg) != 0)
        fail_msg("store_open: %s", msg ? msg : "?");
    store_tenant_t t;
    assert_int_equal(store_tenant_get(s, TENANT, &t), 0);
    *tenant_id = t.id;
    return s;
}

/* Every break of the tenant, by date then id (caller frees). */
static model_break_t *all_breaks(store_t *s, int64_t tenant_id, size_t *n_out)
{
    store_breaks_query_t q = { .date_from = DATE_MIN_DAYS, .date_to = DATE_MAX_DAYS,
                               .limit = 100000 };
    model_break_t *out = NULL;
    assert_int_equal(store_breaks_list(s, tenant_id, &q, &out, n_out), 0);
    return out;
}

static size_t count_breaks(const fixture_t *f)
{
    int64_t tid;
    store_t *s = open_store(f, &tid);
    size_t n;
    free(all_breaks(s, tid, &n));
    store_close(s);
    return n;
}

static uint64_t tenant_version(const fixture_t *f)
{
    int64_t tid;
    store_t *s = open_store(f, &tid);
    uint64_t v;
    assert_int_equal(store_tenant_version(s, tid, &v), 0);
    store_close(s);
    return v;
}

/* ---- test data --------------------------------------------------------------------- */

/* People 1..N_PEOPLE; every even one also has an HRMID with a comma in it (so the
 * cell is quoted). CRLF line ends, as a spreadsheet writes them. */
static void people_csv(buf_t *b)
{
    assert_int_equal(buf_append_str(b, "id,externalReferences.@employee-number,"
                                       "externalReferences.HRMID\r\n"), 0);
    for (int i = 1; i <= N_PEOPLE; i++)
        assert_int_equal(i % 2 ? buf_printf(b, "%d,E-%d,\r\n", i, i)
                               : buf_printf(b, "%d,E-%d,\"H, %d\"\r\n", i, i, i), 0);
}

typedef struct def_limits {
    int minimum, maximum, if_not_clocked;
} def_limits_t;

static const def_limits_t defs[3] = { { 0, 0, 0 }, { 15, 60, 30 }, { 10, 20, 5 } };

static const char defs_ndjson[] =
    "{\"op\":\"upsert\",\"data\":{\"id\":1,\"name\":{\"default\":\"Lunch\",\"translations\":"
    "{\"nl\":\"Middagpauze\",\"fr\":\"D\\u00e9jeuner\"}},\"friendlyName\":{\"default\":\"Lunch "
    "break\"},\"paidDurationInMinutes\":30,\"minimumDurationInMinutes\":15,"
    "\"maximumDurationInMinutes\":60,\"ifNotClockedDurationInMinutes\":30,"
    "\"hasToBeTakenUninterrupted\":true}}\n"
    "\n"
    "{\"op\":\"upsert\",\"data\":{\"id\":2,\"name\":{\"default\":\"Coffee\"},\"friendlyName\":"
    "{\"default\":\"Coffee\"},\"paidDurationInMinutes\":0,\"minimumDurationInMinutes\":10,"
    "\"maximumDurationInMinutes\":20,\"ifNotClockedDurationInMinutes\":5,"
    "\"hasToBeTakenUninterrupted\":false}}\n";

/* What row i of the generated breaks file holds. */
typedef struct row {
    int64_t id, person, def;
    int month, day;
    int clocked, calculated; /* calculated -1: left to the server */
    bool taken;
} row_t;

static row_t row_of(int i)
{
    row_t r = { .id = i, .person = i % N_PEOPLE + 1, .def = i % 2 + 1, .month = i % 12 + 1,
                .day = i % 28 + 1, .clocked = i % 90, .calculated = i % 5 == 0 ? i % 40 : -1,
                .taken = i % 3 != 0 };
    return r;
}

static int32_t expected_duration(const row_t *r)
{
    if (r->calculated >= 0)
        return r->calculated;
    const def_limits_t *d = &defs[r->def];
    if (!r->taken)
        return d->if_not_clocked;
    return r->clocked < d->minimum ? d->minimum : r->clocked > d->maximum ? d->maximum : r->clocked;
}

#define BAD_DATE_ROW 100
#define BAD_PERSON_ROW 1500
#define BAD_CLOCKED_ROW 2999

/* n generated rows (row i on line i + 1), with the three bad rows above when bad
 * is set. Some dates are quoted, some calculated durations empty; CRLF ends. */
static void breaks_csv(buf_t *b, int n, bool bad)
{
    assert_int_equal(buf_append_str(b, "id,person.id,breakDefinition.id,date,"
                                       "clockedDurationInMinutes,startTimeInMinutes,"
                                       "endTimeInMinutes,isBreakTaken,"
                                       "calculatedDurationInMinutes\r\n"), 0);
    for (int i = 1; i <= n; i++) {
        row_t r = row_of(i);
        char date[16], clocked[16], calc[16];
        snprintf(date, sizeof(date), i % 7 ? "2024-%02d-%02d" : "\"2024-%02d-%02d\"", r.month,
                 r.day);
        snprintf(clocked, sizeof(clocked), "%d", r.clocked);
        snprintf(calc, sizeof(calc), "%d", r.calculated);
        if (bad && i == BAD_DATE_ROW)
            snprintf(date, sizeof(date), "2023-02-29");
        if (bad && i == BAD_PERSON_ROW)
            r.person = 999;
        if (bad && i == BAD_CLOCKED_ROW)
            snprintf(clocked, sizeof(clocked), "abc");
        assert_int_equal(buf_printf(b, "%lld,%lld,%lld,%s,%s,720,780,%s,%s\r\n", (long long)r.id,
                                    (long long)r.person, (long long)r.def, date, clocked,
                                    r.taken ? "true" : "false", r.calculated >= 0 ? calc : ""),
                         0);
    }
}

/* Checks that the store holds exactly rows 1..n of the generated file (less the
 * bad ones when bad is set), each with the duration it should have. */
static void check_breaks(const fixture_t *f, int n, bool bad)
{
    int64_t tid;
    store_t *s = open_store(f, &tid);
    size_t got;
    model_break_t *all = all_breaks(s, tid, &got);
    size_t want = (size_t)n - (bad ? 3 : 0);
    assert_int_equal(got, want);
    bool *seen = calloc((size_t)n + 1, 1);
    assert_non_null(seen);
    for (size_t k = 0; k < got; k++) {
        const model_break_t *b = &all[k];
        assert_true(b->id >= 1 && b->id <= n);
        assert_false(seen[b->id]);
        seen[b->id] = true;
        row_t r = row_of((int)b->id);
        int32_t date;
        char ds[16];
        snprintf(ds, sizeof(ds), "2024-%02d-%02d", r.month, r.day);
        assert_int_equal(date_parse(ds, 10, &date), 0);
        assert_int_equal(b->person_id, r.person);
        assert_int_equal(b->definition_id, r.def);
        assert_int_equal(b->date, date);
        assert_int_equal(b->clocked, r.clocked);
        assert_int_equal(b->start, 720);
        assert_int_equal(b->end, 780);
        assert_int_equal(b->taken, r.taken);
        assert_int_equal(b->calculated, expected_duration(&r));
        assert_true(b->version > 0);
    }
    if (bad) {
        assert_false(seen[BAD_DATE_ROW]);
        assert_false(seen[BAD_PERSON_ROW]);
        assert_false(seen[BAD_CLOCKED_ROW]);
    }
    free(seen);
    free(all);
    store_close(s);
}

/* ---- fixture --------------------------------------------------------------------------- */

static void import_text(const fixture_t *f, const char *name, const char *text, size_t n,
                        const char *collection, it_run_result_t *r)
{
    char path[512];
    write_file(f, name, text, n, path, sizeof(path));
    const char *args[] = { "--collection", collection, path, NULL };
    run_import(f, args, NULL, 0, r);
}

/* A store with the tenant, and with people and definitions unless bare. */
static int setup_common(void **state, bool bare)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || it_tmpdir_new(f->dir, sizeof(f->dir)) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    snprintf(f->store_url, sizeof(f->store_url), "sqlite:%s/breakhook.db", f->dir);
    const char *args[] = { "tenant", "create", TENANT, "--store", f->store_url, NULL };
    it_run_result_t r;
    it_run_opts_t o = { .timeout_ms = RUN_TIMEOUT_MS };
    if (it_run(args, &o, &r) != 0 || r.status != 0) {
        dump(&r);
        it_run_result_free(&r);
        return -1;
    }
    it_run_result_free(&r);
    if (bare)
        return 0;

    buf_t b;
    buf_init(&b, 1 << 20);
    people_csv(&b);
    import_text(f, "people.csv", b.p, b.len, "people", &r);
    buf_deinit(&b);
    expect_status(&r, 0);
    expect_summary(&r, "people", N_PEOPLE, N_PEOPLE, 0, 0, 0, 0);
    it_run_result_free(&r);

    import_text(f, "defs.ndjson", defs_ndjson, strlen(defs_ndjson), "break-definitions", &r);
    expect_status(&r, 0);
    expect_summary(&r, "break-definitions", 2, 2, 0, 0, 0, 0);
    it_run_result_free(&r);
    return 0;
}

static int setup(void **state)
{
    return setup_common(state, false);
}

static int setup_bare(void **state)
{
    return setup_common(state, true);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f) {
        it_rmtree(f->dir);
        free(f);
    }
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* The setup's people CSV and definitions NDJSON landed as written: quoted cells,
 * empty cells as "no value", translations. */
static void test_people_and_definitions(void **state)
{
    fixture_t *f = *state;
    int64_t tid;
    store_t *s = open_store(f, &tid);
    model_person_t p;
    assert_int_equal(store_person_get(s, tid, 4, &p), 0);
    assert_int_equal(p.n_refs, 2);
    assert_string_equal(p.refs[0].name, "@employee-number");
    assert_string_equal(p.refs[0].value, "E-4");
    assert_string_equal(p.refs[1].name, "HRMID");
    assert_string_equal(p.refs[1].value, "H, 4");
    assert_int_equal(store_person_get(s, tid, 3, &p), 0);
    assert_int_equal(p.n_refs, 1);
    assert_string_equal(p.refs[0].value, "E-3");
    assert_int_equal(store_person_get(s, tid, N_PEOPLE + 1, &p), BH_ENOTFOUND);

    model_definition_t *d = malloc(sizeof(*d));
    assert_non_null(d);
    assert_int_equal(store_definition_get(s, tid, 1, d), 0);
    assert_string_equal(d->name.def, "Lunch");
    assert_int_equal(d->name.n_tr, 2);
    assert_string_equal(d->name.tr[0].lang, "fr");
    assert_string_equal(d->name.tr[0].text, "D\xc3\xa9jeuner");
    assert_int_equal(d->maximum, 60);
    assert_true(d->uninterrupted);
    free(d);
    store_close(s);
}

/* A bad person line in NDJSON and a bad definition row in CSV are reported with
 * the model's reasons (the NDJSON one under "data.", as on $batch) and the
 * others are applied. */
static void test_people_and_definitions_bad_lines(void **state)
{
    fixture_t *f = *state;
    const char people[] =
        "{\"op\":\"upsert\",\"data\":{\"id\":30,\"externalReferences\":{\"HRMID\":\"H30\"}}}\n"
        "{\"op\":\"upsert\",\"data\":{\"id\":31,\"externalReferences\":{\"@foo\":\"x\"}}}\n"
        "{\"op\":\"upsert\",\"data\":{\"id\":32,\"externalReferences\":{\"HRMID\":\"H30\"}}}\n"
        "{\"op\":\"delete\",\"id\":5}\n";
    it_run_result_t r;
    import_text(f, "more-people.jsonl", people, strlen(people), "people", &r);
    expect_status(&r, 1);
    expect_summary(&r, "people", 4, 1, 0, 0, 1, 2);
    expect_report(&r, 2, "data.externalReferences: '@foo' is not a predefined reference");
    expect_report(&r, 3, "already used by person 30");
    it_run_result_free(&r);

    const char defs_csv[] =
        "id,name.default,name.translations.de,friendlyName.default,paidDurationInMinutes,"
        "minimumDurationInMinutes,maximumDurationInMinutes,ifNotClockedDurationInMinutes,"
        "hasToBeTakenUninterrupted\n"
        "3,Tea,Tee,Tea,5,5,10,5,FALSE\n"
        "4,Bad,,Bad,five,20,10,0,no\n";
    import_text(f, "defs.csv", defs_csv, strlen(defs_csv), "break-definitions", &r);
    expect_status(&r, 1);
    expect_summary(&r, "break-definitions", 2, 1, 0, 0, 0, 1);
    expect_report(&r, 3, "paidDurationInMinutes: must be an integer");
    expect_report(&r, 3, "hasToBeTakenUninterrupted: must be a boolean");
    it_run_result_free(&r);

    int64_t tid;
    store_t *s = open_store(f, &tid);
    model_person_t p;
    assert_int_equal(store_person_get(s, tid, 30, &p), 0);
    assert_int_equal(store_person_get(s, tid, 31, &p), BH_ENOTFOUND);
    assert_int_equal(store_person_get(s, tid, 5, &p), BH_ENOTFOUND);
    model_definition_t *d = malloc(sizeof(*d));
    assert_non_null(d);
    assert_int_equal(store_definition_get(s, tid, 3, d), 0);
    assert_int_equal(d->name.n_tr, 1);
    assert_string_equal(d->name.tr[0].text, "Tee");
    assert_false(d->uninterrupted);
    assert_int_equal(store_definition_get(s, tid, 4, d), BH_ENOTFOUND);
    free(d);
    store_close(s);
}

/* A few thousand rows with three bad ones: exit 1, exactly those three lines
 * reported (two refused by the model, one by the store), the rest applied with
 * the right computed durations; the same file again changes nothing. */
static void test_breaks_csv(void **state)
{
    fixture_t *f = *state;
    const int n = 3000;
    buf_t b;
    buf_init(&b, 16 << 20);
    breaks_csv(&b, n, true);
    char path[512];
    write_file(f, "breaks.csv", b.p, b.len, path, sizeof(path));
    buf_deinit(&b);
    const char *args[] = { path, NULL };

    it_run_result_t r;
    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 1);
    expect_summary(&r, "breaks", (size_t)n, (size_t)n - 3, 0, 0, 0, 3);
    size_t lines[16];
    size_t k = reported_lines(&r, lines, 16);
    assert_int_equal(k, 3);
    assert_int_equal(lines[0], BAD_DATE_ROW + 1);
    assert_int_equal(lines[1], BAD_PERSON_ROW + 1);
    assert_int_equal(lines[2], BAD_CLOCKED_ROW + 1);
    expect_report(&r, BAD_DATE_ROW + 1, "date: '2023-02-29' is not a calendar date");
    expect_report(&r, BAD_PERSON_ROW + 1, "person.id: no person 999");
    expect_report(&r, BAD_CLOCKED_ROW + 1, "clockedDurationInMinutes: must be an integer");
    assert_non_null(strstr(r.err, "breakhook: import: 3 of 3000 lines failed"));
    it_run_result_free(&r);
    check_breaks(f, n, true);
    uint64_t v = tenant_version(f);

    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 1);
    expect_summary(&r, "breaks", (size_t)n, 0, 0, (size_t)n - 3, 0, 3);
    assert_int_equal(reported_lines(&r, lines, 16), 3);
    it_run_result_free(&r);
    assert_int_equal(tenant_version(f), v);
    check_breaks(f, n, true);
}

/* The definition's window through the importer: the CSV columns of a definition's
 * window, and breaks whose start and end cells are both empty take it (issue #14
 * point 7); the model's and the store's reasons name the fields. */
static void test_window_csv(void **state)
{
    fixture_t *f = *state;
    const char wdefs[] = "id,name.default,friendlyName.default,paidDurationInMinutes,"
                         "minimumDurationInMinutes,maximumDurationInMinutes,"
                         "ifNotClockedDurationInMinutes,hasToBeTakenUninterrupted,"
                         "earliestStartTimeInMinutes,latestEndTimeInMinutes\n"
                         "3,Window,Window,0,10,20,15,false,600,630\n";
    it_run_result_t r;
    import_text(f, "window-defs.csv", wdefs, strlen(wdefs), "break-definitions", &r);
    expect_status(&r, 0);
    expect_summary(&r, "break-definitions", 1, 1, 0, 0, 0, 0);
    it_run_result_free(&r);

    const char breaks[] = "id,person.id,breakDefinition.id,date,clockedDurationInMinutes,"
                          "startTimeInMinutes,endTimeInMinutes,isBreakTaken\n"
                          "1,1,3,2024-03-01,12,,,true\n"
                          "2,1,1,2024-03-01,12,,,true\n"
                          "3,1,3,2024-03-01,12,700,,true\n"
                          "4,1,3,2024-03-01,12,700,720,true\n";
    import_text(f, "window-breaks.csv", breaks, strlen(breaks), "breaks", &r);
    expect_status(&r, 1);
    expect_summary(&r, "breaks", 4, 2, 0, 0, 0, 2);
    expect_report(&r, 3, "break definition 1 has no earliestStartTimeInMinutes");
    expect_report(&r, 4, "endTimeInMinutes: is required when startTimeInMinutes is given");
    it_run_result_free(&r);

    int64_t tid;
    store_t *s = open_store(f, &tid);
    model_break_t b;
    assert_int_equal(store_break_get(s, tid, 1, &b), 0);
    assert_int_equal(b.start, 600);
    assert_int_equal(b.end, 630);
    assert_true(b.window_taken);
    assert_int_equal(store_break_get(s, tid, 4, &b), 0);
    assert_int_equal(b.start, 700);
    assert_false(b.window_taken);
    model_definition_t *d = malloc(sizeof(*d));
    assert_non_null(d);
    assert_int_equal(store_definition_get(s, tid, 3, d), 0);
    assert_true(d->has_earliest && d->has_latest);
    assert_int_equal(d->latest, 630);
    free(d);
    store_close(s);
}

/* A clean file exits 0; a deletes file (CSV with an op column, and NDJSON) removes
 * exactly what it names; deleting a missing break is that line's failure. */
static void test_deletes(void **state)
{
    fixture_t *f = *state;
    const int n = 50;
    buf_t b;
    buf_init(&b, 1 << 20);
    breaks_csv(&b, n, false);
    char path[512];
    write_file(f, "breaks.csv", b.p, b.len, path, sizeof(path));
    const char *args[] = { path, NULL };
    it_run_result_t r;
    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 0);
    expect_summary(&r, "breaks", (size_t)n, (size_t)n, 0, 0, 0, 0);
    it_run_result_free(&r);
    check_breaks(f, n, false);

    /* Deletes need only the id; upserts in the same file still work. */
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "op,id,person.id,breakDefinition.id,date,"
                                        "clockedDurationInMinutes,startTimeInMinutes,"
                                        "endTimeInMinutes,isBreakTaken\n"), 0);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(buf_printf(&b, "delete,%d,,,,,,,\n", i), 0);
    assert_int_equal(buf_append_str(&b, "upsert,11,1,1,2024-01-01,0,0,10,false\n"), 0);
    write_file(f, "deletes.csv", b.p, b.len, path, sizeof(path));
    buf_deinit(&b);
    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 0);
    expect_summary(&r, "breaks", 11, 0, 1, 0, 10, 0);
    it_run_result_free(&r);

    const char nd[] = "{\"op\":\"delete\",\"id\":12}\n{\"op\":\"delete\",\"id\":1}\r\n"
                      "{\"op\":\"delete\",\"id\":13}";
    write_file(f, "deletes.ndjson", nd, strlen(nd), path, sizeof(path));
    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 1);
    expect_summary(&r, "breaks", 3, 0, 0, 0, 2, 1);
    expect_report(&r, 2, "id: no break 1");
    it_run_result_free(&r);

    int64_t tid;
    store_t *s = open_store(f, &tid);
    model_break_t br;
    for (int i = 1; i <= 13; i++)
        assert_int_equal(store_break_get(s, tid, i, &br), i <= 10 || i >= 12 ? BH_ENOTFOUND : 0);
    assert_int_equal(store_break_get(s, tid, 11, &br), 0);
    assert_int_equal(br.calculated, 30); /* not taken: the definition's ifNotClocked */
    assert_int_equal(store_break_get(s, tid, 14, &br), 0);
    store_close(s);
    assert_int_equal(count_breaks(f), (size_t)n - 12);
}

/* An unknown column is a usage error before anything is applied, even when the
 * rows before the problem would be fine. */
static void test_unknown_column(void **state)
{
    fixture_t *f = *state;
    uint64_t v = tenant_version(f);
    const char csv[] = "id,person.id,breakDefinition.id,date,clockedDurationInMinutes,"
                       "startTimeInMinutes,endTimeInMinutes,isBreakTaken,colour\n"
                       "1,1,1,2024-01-01,10,0,30,true,red\n";
    char path[512];
    write_file(f, "colour.csv", csv, strlen(csv), path, sizeof(path));
    const char *args[] = { path, NULL };
    it_run_result_t r;
    run_import(f, args, NULL, 0, &r);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "unknown column 'colour'"));
    assert_null(strstr(r.out, "breaks:"));
    it_run_result_free(&r);

    /* A required column missing, a duplicate, a people column in a breaks file. */
    static const char *const headers[] = {
        "id,person.id\n1,1\n",
        "id,id\n1,1\n",
        "id,externalReferences.HRMID\n1,x\n",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        write_file(f, "bad.csv", headers[i], strlen(headers[i]), path, sizeof(path));
        run_import(f, args, NULL, 0, &r);
        expect_status(&r, 2);
        it_run_result_free(&r);
    }
    assert_int_equal(tenant_version(f), v);
    assert_int_equal(count_breaks(f), 0);
}

/* "-" reads stdin; the format must then be given. */
static void test_stdin(void **state)
{
    fixture_t *f = *state;
    buf_t b;
    buf_init(&b, 1 << 20);
    const int n = 500;
    for (int i = 1; i <= n; i++) {
        row_t r = row_of(i);
        char calc[48] = "";
        if (r.calculated >= 0)
            snprintf(calc, sizeof(calc), "\"calculatedDurationInMinutes\":%d,", r.calculated);
        assert_int_equal(
            buf_printf(&b,
                       "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":%lld},"
                       "\"breakDefinition\":{\"id\":%lld},\"date\":\"2024-%02d-%02d\","
                       "%s\"clockedDurationInMinutes\":%d,\"startTimeInMinutes\":720,"
                       "\"endTimeInMinutes\":780,\"isBreakTaken\":%s}}\n",
                       i, (long long)r.person, (long long)r.def, r.month, r.day, calc,
                       r.clocked, r.taken ? "true" : "false"),
            0);
    }
    it_run_result_t r;
    const char *no_format[] = { "-", NULL };
    run_import(f, no_format, b.p, b.len, &r);
    expect_status(&r, 2);
    it_run_result_free(&r);

    const char *args[] = { "--format", "ndjson", "-", NULL };
    run_import(f, args, b.p, b.len, &r);
    buf_deinit(&b);
    expect_status(&r, 0);
    expect_summary(&r, "breaks", (size_t)n, (size_t)n, 0, 0, 0, 0);
    it_run_result_free(&r);
    assert_int_equal(count_breaks(f), (size_t)n);

    /* CSV on stdin too. */
    const char csv[] = "id,op\n1,delete\n2,delete\n";
    const char *csv_args[] = { "--format", "csv", "-", NULL };
    run_import(f, csv_args, csv, strlen(csv), &r);
    expect_status(&r, 0);
    expect_summary(&r, "breaks", 2, 0, 0, 0, 2, 0);
    it_run_result_free(&r);
    assert_int_equal(count_breaks(f), (size_t)n - 2);
}

/* The command line's own errors: exit 2 (usage) or 1 (runtime), one line each. */
static void test_usage(void **state)
{
    fixture_t *f = *state;
    it_run_result_t r;
    const char *none[] = { NULL };
    run_import(f, none, NULL, 0, &r);
    expect_status(&r, 2);
    it_run_result_free(&r);
    const char *txt[] = { "breaks.txt", NULL };
    run_import(f, txt, NULL, 0, &r);
    expect_status(&r, 2);
    assert_non_null(strstr(r.err, "--format"));
    it_run_result_free(&r);
    const char *coll[] = { "--collection", "shifts", "x.csv", NULL };
    run_import(f, coll, NULL, 0, &r);
    expect_status(&r, 2);
    it_run_result_free(&r);
    const char *missing[] = { "/nonexistent/breaks.csv", NULL };
    run_import(f, missing, NULL, 0, &r);
    expect_status(&r, 1);
    it_run_result_free(&r);

    const char *args[] = { "import", "--tenant", "nobody", "--store", f->store_url,
                           "--format", "csv", "-", NULL };
    it_run_opts_t o = { .input = "id\n", .input_len = 3, .timeout_ms = RUN_TIMEOUT_MS };
    assert_int_equal(it_run(args, &o, &r), 0);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "no tenant 'nobody'"));
    it_run_result_free(&r);

    const char *help[] = { "import", "--help", NULL };
    assert_int_equal(it_run(help, NULL, &r), 0);
    expect_status(&r, 0);
    assert_non_null(strstr(r.out, "breakDefinition.id"));
    assert_non_null(strstr(r.out, "{\"op\":\"delete\",\"id\":1}"));
    it_run_result_free(&r);
}

int main(void)
{
    /* A command that exits before reading its stdin (a usage error) closes the
     * pipe the harness is still writing: that must be a short write, not a
     * SIGPIPE that kills the test. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_people_and_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_people_and_definitions_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaks_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup_bare, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
