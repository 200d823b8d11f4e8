/*
 * test_delta.c: delta sync and webhook rollover (SPEC §6, §7.1 resumeAfter; issue #16)
 * as an integrator sees them, over real sockets, against the real binary.
 *
 * The consumer here keeps a copy of the breaks of one date range the way
 * docs/CONSUMERS.md tells an integrator to: the initial load's records, then each
 * follow-up's items applied when their changeVersion is newer than what it holds (an
 * InsertOrUpdate whose date left the range removes the record, like a Delete). Its
 * copy is compared with what GET /breaks answers for the range.
 *
 * Long polls run on a thread of their own (a plain socket; no cmocka call there), so
 * the test can write while one is held.
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
#include <time.h>

#include "harness_api.h"
#include "harness_consumer.h"

#define MAX_ID 2000
#define LOOPBACK "--allow-http-destinations", "--allow-destination", "127.0.0.0/8"

typedef struct fixture {
    it_srvs_t srvs;
    it_consumer_t *cons;
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
    free(f);
    return rc;
}

static it_srv_t *boot(fixture_t *f, const char *const *extra)
{
    it_srv_t *s = it_srvs_next(&f->srvs);
    it_boot_opts_t o = { .args = extra };
    it_srv_boot(s, &o);
    const it_definition_t lunch = { .id = 1, .paid = 15, .minimum = 15, .maximum = 60,
                                    .if_not_clocked = 30, .uninterrupted = true };
    it_seed_definition(s, &lunch);
    it_seed_people(s, 3, IT_REF_EMPLOYEE);
    return s;
}

/* ---- dates and writes ------------------------------------------------------------- */

/* The delta's range: the first half of this year (a delta may start on 1 January of the
 * previous year at the earliest, so it must move with the clock). */
static int this_year(void)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_year + 1900;
}

/* "YYYY-MM-DD" of this year: month 1..6 is inside the range, 7..12 outside. */
static void day(int month, int d, char out[32])
{
    snprintf(out, 32, "%04d-%02d-%02d", this_year(), month, d);
}

static bool in_range(const char *date)
{
    return strncmp(date + 5, "07", 2) < 0;
}

/* GET /breaks?filter=<the range>&delta&<extra> (extra may be ""). */
static char *delta_start_target(const char *extra)
{
    char *filter = it_fmt("date ge '%04d-01-01' and date le '%04d-06-30'", this_year(),
                          this_year());
    char *enc = it_urlenc(filter);
    char *t = it_fmt(IT_BASE "/breaks?filter=%s&delta%s%s", enc, *extra ? "&" : "", extra);
    free(enc);
    free(filter);
    return t;
}

static char *list_target(void)
{
    char *filter = it_fmt("date ge '%04d-01-01' and date le '%04d-06-30'", this_year(),
                          this_year());
    char *enc = it_urlenc(filter);
    char *t = it_fmt(IT_BASE "/breaks?filter=%s&pageSize=10000", enc);
    free(enc);
    free(filter);
    return t;
}

/* PUT a break of person 1 + id % 3 on date (month, d); returns its changeVersion. */
static uint64_t put_break(it_srv_t *s, int64_t id, int month, int d, int clocked)
{
    char date[32];
    day(month, d, date);
    char *path = it_fmt(IT_BASE "/breaks/%lld", (long long)id);
    char *body = it_fmt("{\"id\":%lld,\"person\":{\"id\":%lld},\"breakDefinition\":{\"id\":1},"
                        "\"date\":\"%s\",\"clockedDurationInMinutes\":%d,"
                        "\"startTimeInMinutes\":600,\"endTimeInMinutes\":700,"
                        "\"isBreakTaken\":true}",
                        (long long)id, (long long)(1 + id % 3), date, clocked);
    json_t *j = it_srv_expect(s, "PUT", path, body, 0);
    uint64_t v = it_version_num(it_jstr(j, "changeVersion"));
    json_decref(j);
    free(path);
    free(body);
    return v;
}

static void del_break(it_srv_t *s, int64_t id)
{
    char *path = it_fmt(IT_BASE "/breaks/%lld", (long long)id);
    json_decref(it_srv_expect(s, "DELETE", path, NULL, 204));
    free(path);
}

/* ---- the consumer's copy ------------------------------------------------------------ */

typedef struct copy {
    bool have[MAX_ID];
    uint64_t seen[MAX_ID]; /* the newest changeVersion applied, kept after a removal */
    size_t items;          /* follow-up items received */
} copy_t;

static int64_t rec_id(json_t *rec)
{
    int64_t id = it_jint(rec, "id");
    if (id <= 0 || id >= MAX_ID)
        fail_msg("record id %lld out of the test's range", (long long)id);
    return id;
}

/* A page of the initial load: plain break objects. */
static void apply_page(copy_t *c, json_t *value)
{
    size_t i;
    json_t *rec;
    json_array_foreach(value, i, rec)
    {
        int64_t id = rec_id(rec);
        uint64_t v = it_version_num(it_jstr(rec, "changeVersion"));
        if (!in_range(it_jstr(rec, "date")))
            fail_msg("the initial load answered break %lld dated %s, outside the range",
                     (long long)id, it_jstr(rec, "date"));
        if (v > c->seen[id]) {
            c->seen[id] = v;
            c->have[id] = true;
        }
    }
}

/* A follow-up's items, in order: each changeVersion must rise. */
static void apply_items(copy_t *c, json_t *value)
{
    size_t i;
    json_t *item;
    uint64_t last = 0;
    json_array_foreach(value, i, item)
    {
        const char *type = it_jstr(item, "changeType");
        json_t *data = json_object_get(item, "data");
        if (!json_is_object(data))
            fail_msg("a delta item without data");
        int64_t id = rec_id(data);
        uint64_t v = it_version_num(it_jstr(data, "changeVersion"));
        if (v <= last)
            fail_msg("delta items out of changeVersion order: %llu after %llu",
                     (unsigned long long)v, (unsigned long long)last);
        last = v;
        c->items++;
        if (v <= c->seen[id])
            continue;
        c->seen[id] = v;
        if (!strcmp(type, "Delete"))
            c->have[id] = false;
        else if (!strcmp(type, "InsertOrUpdate"))
            c->have[id] = in_range(it_jstr(data, "date"));
        else
            fail_msg("unknown changeType '%s'", type);
    }
}

/* The link's target (it is a path with its query). */
static char *link_of(json_t *page, const char *name)
{
    const char *l = json_string_value(json_object_get(page, name));
    return l ? strdup(l) : NULL;
}

/* Pages through the initial load from target, calling between(arg) after each page;
 * returns the deltaLink. */
static char *initial_load(it_srv_t *s, const char *target, copy_t *c, void (*between)(void *),
                          void *arg)
{
    char *next = strdup(target), *delta = NULL;
    for (int pages = 0; next; pages++) {
        if (pages > 1000)
            fail_msg("the initial load did not end");
        json_t *page = it_srv_expect(s, "GET", next, NULL, 200);
        apply_page(c, json_object_get(page, "value"));
        free(next);
        next = link_of(page, "nextLink");
        delta = link_of(page, "deltaLink");
        if (next && (delta || !strstr(next, "continuationToken=") || !strstr(next, "deltaToken=")))
            fail_msg("a nextLink must carry a continuationToken and a deltaToken, and no "
                     "deltaLink beside it: %s", next);
        if (!next && (!delta || !strstr(delta, IT_BASE "/delta/breaks?deltaToken=")))
            fail_msg("the last page must have a deltaLink to /delta/breaks");
        json_decref(page);
        if (next && between)
            between(arg);
    }
    return delta;
}

/* One follow-up: applies its items, returns the new deltaLink (and the count). */
static char *follow(it_srv_t *s, const char *link, copy_t *c, size_t *n_items)
{
    json_t *page = it_srv_expect(s, "GET", link, NULL, 200);
    json_t *value = json_object_get(page, "value");
    if (!json_is_array(value) || json_object_get(page, "nextLink"))
        fail_msg("a follow-up answers one page (value, no nextLink)");
    apply_items(c, value);
    if (n_items)
        *n_items = json_array_size(value);
    char *next = link_of(page, "deltaLink");
    if (!next || !strstr(next, "deltaToken="))
        fail_msg("a follow-up must answer a fresh deltaLink");
    json_decref(page);
    return next;
}

/* Follows until a page comes back empty. */
static char *follow_all(it_srv_t *s, char *link, copy_t *c)
{
    for (int i = 0; i < 100; i++) {
        size_t n = 0;
        char *next = follow(s, link, c, &n);
        free(link);
        link = next;
        if (!n)
            return link;
    }
    fail_msg("follow-ups did not run dry");
    return link;
}

/* The consumer's copy must be the server's state of the range. */
static void expect_same(it_srv_t *s, const copy_t *c)
{
    char *t = list_target();
    json_t *page = it_srv_expect(s, "GET", t, NULL, 200);
    free(t);
    bool server[MAX_ID] = { false };
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(page, "value"), i, rec)
    {
        int64_t id = rec_id(rec);
        server[id] = true;
        uint64_t v = it_version_num(it_jstr(rec, "changeVersion"));
        if (!c->have[id] || c->seen[id] != v)
            fail_msg("break %lld at %llu on the server, %s at %llu in the consumer's copy",
                     (long long)id, (unsigned long long)v, c->have[id] ? "present" : "absent",
                     (unsigned long long)c->seen[id]);
    }
    for (int id = 1; id < MAX_ID; id++)
        if (c->have[id] && !server[id])
            fail_msg("break %d is in the consumer's copy but not on the server", id);
    json_decref(page);
}

/* ---- initial load and follow-ups ------------------------------------------------------ */

typedef struct between_arg {
    it_srv_t *s;
    int n;
} between_arg_t;

/* While the consumer pages: a new break in range, and break 1 moved out of it. */
static void write_between(void *arg)
{
    between_arg_t *b = arg;
    if (b->n++ == 0) {
        put_break(b->s, 100, 2, 1, 20);
        put_break(b->s, 1, 9, 1, 20);
    }
}

static void test_initial_load_then_follow_ups(void **state)
{
    fixture_t *f = *state;
    it_srv_t *s = boot(f, NULL);
    for (int id = 1; id <= 5; id++)
        put_break(s, id, 3, id, 10);
    put_break(s, 6, 8, 1, 10); /* outside the range */
    put_break(s, 7, 12, 1, 10);
    copy_t c = { 0 };
    char *start = delta_start_target("pageSize=2");
    between_arg_t b = { s, 0 };
    char *link = initial_load(s, start, &c, write_between, &b);
    free(start);
    /* The changes made while paging show in the first follow-up at the latest. */
    link = follow_all(s, link, &c);
    expect_same(s, &c);
    assert_false(c.have[1]);
    assert_true(c.have[100]);

    /* A delete, a move out of the range (reported once), an update while out (not). */
    del_break(s, 2);
    put_break(s, 3, 10, 1, 10);
    size_t n = 0;
    char *prev = strdup(link);
    char *next = follow(s, link, &c, &n);
    assert_int_equal(n, 2);
    put_break(s, 3, 11, 1, 10);
    free(link);
    link = follow_all(s, next, &c);
    expect_same(s, &c);
    /* Sending the previous link again answers the same changes again. */
    copy_t again = { 0 };
    char *next2 = follow(s, prev, &again, &n);
    assert_int_equal(n, 2);
    free(next2);
    /* And moving back into the range is reported. */
    put_break(s, 3, 4, 1, 10);
    link = follow_all(s, link, &c);
    assert_true(c.have[3]);
    expect_same(s, &c);
    free(prev);
    free(link);
}

/* The same item bytes as a webhook delivers: a delta item is the delivered body. */
static void test_item_is_the_delivered_body(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { LOOPBACK, NULL };
    it_srv_t *s = boot(f, args);
    f->cons = it_consumer_new(IT_RULE_OK, NULL);
    it_webhook_t w;
    it_consumer_webhook(s, f->cons, "(people,@employee-number)", &w);
    copy_t c = { 0 };
    char *start = delta_start_target("externalReferences=%28people%2C%40employee-number%29");
    char *link = initial_load(s, start, &c, NULL, NULL);
    free(start);
    uint64_t v = put_break(s, 9, 5, 5, 12);
    it_rec_version_t want = { 9, v };
    assert_true(it_consumer_wait(f->cons, it_pred_acked, &want, 10000));
    it_response_t r;
    it_srv_call(s, s->auth, "GET", link, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    pthread_mutex_lock(&f->cons->mu);
    const char *body = f->cons->d[0].body;
    bool found = body && strstr(r.body, body) != NULL;
    pthread_mutex_unlock(&f->cons->mu);
    if (!found)
        fail_msg("the delivered body is not byte for byte in the follow-up: %.400s", r.body);
    assert_non_null(strstr(r.body, "\"@employee-number\":\"E-1\""));
    it_response_free(&r);
    free(link);
}

static void test_definitions_delta(void **state)
{
    fixture_t *f = *state;
    it_srv_t *s = boot(f, NULL);
    copy_t c = { 0 };
    json_t *page = it_srv_expect(s, "GET", IT_BASE "/break-definitions?delta", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(page, "value")), 1);
    char *link = link_of(page, "deltaLink");
    json_decref(page);
    assert_non_null(link);
    assert_non_null(strstr(link, IT_BASE "/delta/break-definitions?deltaToken="));
    const it_definition_t coffee = { .id = 2, .paid = 5, .minimum = 5, .maximum = 10 };
    it_seed_definition(s, &coffee);
    json_t *p2 = it_srv_expect(s, "GET", link, NULL, 200);
    json_t *items = json_object_get(p2, "value");
    assert_int_equal(json_array_size(items), 1);
    json_t *data = json_object_get(json_array_get(items, 0), "data");
    assert_int_equal(it_jint(data, "id"), 2);
    assert_string_equal(it_jstr(json_array_get(items, 0), "changeType"), "InsertOrUpdate");
    json_decref(p2);
    /* A definitions token is not a breaks token. */
    char *wrong = it_fmt(IT_BASE "/delta/breaks?%s", strchr(link, '?') + 1);
    it_response_t r;
    it_srv_call(s, s->auth, "GET", wrong, NULL, NULL, 0, &r);
    IT_EXPECT_ERROR(&r, 400, "BadRequest", "another collection");
    it_response_free(&r);
    free(wrong);
    free(link);
    (void)c;
}

static void expect_status(it_srv_t *s, const char *auth, const char *target, int status,
                          const char *code, const char *fragment);

/* A backlog larger than a page is cut at the page cap; the deltaLink goes on. */
static void test_follow_up_page_cap(void **state)
{
    fixture_t *f = *state;
    it_srv_t *s = boot(f, NULL);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *link = initial_load(s, start, &c, NULL, NULL);
    size_t len = 0, cap = 1 << 20;
    char *nd = malloc(cap);
    assert_non_null(nd);
    char date[32];
    day(5, 5, date);
    for (int id = 1; id <= 1500; id++)
        len += (size_t)snprintf(nd + len, cap - len,
                                "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":1},"
                                "\"breakDefinition\":{\"id\":1},\"date\":\"%s\","
                                "\"clockedDurationInMinutes\":10,\"startTimeInMinutes\":600,"
                                "\"endTimeInMinutes\":700,\"isBreakTaken\":true}}\n",
                                id, date);
    it_response_t r;
    it_srv_call(s, s->auth, "POST", IT_BASE "/breaks/$batch", "application/x-ndjson", nd, len,
                &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"created\":1500"));
    it_response_free(&r);
    free(nd);
    size_t n1 = 0, n2 = 0, n3 = 0;
    char *l2 = follow(s, link, &c, &n1);
    char *l3 = follow(s, l2, &c, &n2);
    char *l4 = follow(s, l3, &c, &n3);
    assert_int_equal(n1, 1000);
    assert_int_equal(n2, 500);
    assert_int_equal(n3, 0);
    expect_same(s, &c);
    free(l2);
    free(l3);
    free(l4);
    free(link);
    free(start);
}

/* A delta lives in the store: a restart keeps it, and the link goes on. */
static void test_delta_survives_restart(void **state)
{
    fixture_t *f = *state;
    it_srv_t *s = boot(f, NULL);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *link = initial_load(s, start, &c, NULL, NULL);
    put_break(s, 70, 2, 2, 10);
    it_srv_stop(s);
    it_srv_t *s2 = it_srvs_next(&f->srvs);
    it_boot_opts_t o = { .same_store = s };
    it_srv_boot(s2, &o);
    size_t n = 0;
    char *next = follow(s2, link, &c, &n);
    assert_int_equal(n, 1);
    assert_true(c.have[70]);
    /* Replaced after the restart too: a new delta of the client ends this one. */
    copy_t c2 = { 0 };
    char *other = initial_load(s2, start, &c2, NULL, NULL);
    expect_status(s2, s2->auth, next, 410, "Gone", "replaced");
    free(other);
    free(next);
    free(link);
    free(start);
}

/* ---- a writer and a consumer at random ---------------------------------------------- */

typedef struct writer {
    it_srv_t *s;
    uint64_t rng;
    bool exists[MAX_ID];
} writer_t;

static void random_ops(writer_t *w, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t id = 1 + (int64_t)(it_xorshift(&w->rng) % 60);
        unsigned r = (unsigned)(it_xorshift(&w->rng) % 100);
        if (w->exists[id] && r < 15) {
            del_break(w->s, id);
            w->exists[id] = false;
            continue;
        }
        int month = 1 + (int)(it_xorshift(&w->rng) % 12); /* half in range */
        put_break(w->s, id, month, 1 + (int)(it_xorshift(&w->rng) % 28),
                  5 + (int)(it_xorshift(&w->rng) % 50));
        w->exists[id] = true;
    }
}

static void write_some(void *arg)
{
    random_ops(arg, 6);
}

/* The same random writes from a thread of their own, on their own connection, while
 * the test's thread reads the delta: no cmocka call there, failures are counted. */
typedef struct bg_writer {
    int port;
    char auth[1200];
    uint64_t rng;
    int ops;
    atomic_int failed;
    pthread_t t;
} bg_writer_t;

static void *bg_write(void *arg)
{
    bg_writer_t *w = arg;
    it_conn_t c;
    if (it_connect(&c, w->port)) {
        w->failed++;
        return NULL;
    }
    for (int i = 0; i < w->ops; i++) {
        int64_t id = 1 + (int64_t)(it_xorshift(&w->rng) % 60);
        unsigned r = (unsigned)(it_xorshift(&w->rng) % 100);
        char date[32];
        day(1 + (int)(it_xorshift(&w->rng) % 12), 1 + (int)(it_xorshift(&w->rng) % 28), date);
        char *path = it_fmt(IT_BASE "/breaks/%lld", (long long)id);
        char *body = it_fmt("{\"id\":%lld,\"person\":{\"id\":%lld},\"breakDefinition\":{\"id\":1},"
                            "\"date\":\"%s\",\"clockedDurationInMinutes\":%d,"
                            "\"startTimeInMinutes\":600,\"endTimeInMinutes\":700,"
                            "\"isBreakTaken\":true}",
                            (long long)id, (long long)(1 + id % 3), date, 5 + (int)(r % 50));
        char *hdrs = it_fmt("%sContent-Type: application/json\r\n", w->auth);
        it_response_t resp;
        memset(&resp, 0, sizeof(resp));
        bool del = r < 15;
        int rc = it_conn_request(&c, del ? "DELETE" : "PUT", path, hdrs, del ? NULL : body,
                                 del ? 0 : strlen(body), &resp);
        /* A delete of a break that does not exist is a 404, and fine. */
        if (rc || (resp.status != 200 && resp.status != 201 && resp.status != 204 &&
                   !(del && resp.status == 404)))
            w->failed++;
        if (!rc)
            it_response_free(&resp);
        free(hdrs);
        free(body);
        free(path);
        if (rc)
            break;
    }
    it_conn_close(&c);
    return NULL;
}

static void test_random_writes_copy_equals_server(void **state)
{
    fixture_t *f = *state;
    it_srv_t *s = boot(f, NULL);
    writer_t w = { .s = s, .rng = 0x9e3779b97f4a7c15ULL };
    random_ops(&w, 80);
    copy_t c = { 0 };
    char *start = delta_start_target("pageSize=5");
    char *link = initial_load(s, start, &c, write_some, &w);
    free(start);
    for (int round = 0; round < 15; round++) {
        random_ops(&w, 12);
        char *next = follow(s, link, &c, NULL);
        free(link);
        link = next;
    }
    /* Now a writer that does not wait for the reader: follow-ups run while its
     * commits land. */
    bg_writer_t *bw = calloc(1, sizeof(*bw));
    assert_non_null(bw);
    bw->port = s->s.port;
    snprintf(bw->auth, sizeof(bw->auth), "%s", s->auth);
    bw->rng = 0x2545f4914f6cdd1dULL;
    bw->ops = 400;
    assert_int_equal(pthread_create(&bw->t, NULL, bg_write, bw), 0);
    for (int round = 0; round < 40; round++) {
        char *next = follow(s, link, &c, NULL);
        free(link);
        link = next;
    }
    pthread_join(bw->t, NULL);
    assert_int_equal(bw->failed, 0);
    free(bw);
    link = follow_all(s, link, &c);
    expect_same(s, &c);
    free(link);
}

/* ---- tokens ------------------------------------------------------------------------- */

static void expect_status(it_srv_t *s, const char *auth, const char *target, int status,
                          const char *code, const char *fragment)
{
    it_response_t r;
    it_srv_call(s, auth, "GET", target, NULL, NULL, 0, &r);
    IT_EXPECT_ERROR(&r, status, code, fragment);
    it_response_free(&r);
}

static void test_tokens(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { "--delta-ttl", "2s", NULL };
    it_srv_t *s = boot(f, args);
    put_break(s, 1, 3, 3, 10);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *link = initial_load(s, start, &c, NULL, NULL);

    /* Missing, tampered. */
    expect_status(s, s->auth, IT_BASE "/delta/breaks", 400, "BadRequest", "deltaToken");
    char *bad = strdup(link);
    char *tok = strstr(bad, "deltaToken=") + 11;
    tok[5] = tok[5] == 'A' ? 'B' : 'A';
    expect_status(s, s->auth, bad, 400, "BadRequest", "not valid");
    free(bad);

    /* Another client of the tenant, and another tenant's client. */
    it_client_t c2;
    it_client_create(&s->s, IT_TENANT, IT_ALL_SCOPES, &c2);
    char *auth2 = it_token_header(s->s.port, &c2, NULL);
    expect_status(s, auth2, link, 400, "BadRequest", "another client");
    it_tenant_create(&s->s, "other");
    it_client_t c3;
    it_client_create(&s->s, "other", IT_ALL_SCOPES, &c3);
    char *auth3 = it_token_header(s->s.port, &c3, NULL);
    expect_status(s, auth3, link, 400, "BadRequest", "another client");

    /* A second delta by the same client ends the first: 410. */
    copy_t c4 = { 0 };
    char *link2 = initial_load(s, start, &c4, NULL, NULL);
    expect_status(s, s->auth, link, 410, "Gone", "replaced");
    /* ...but not another client's delta on the same collection. */
    json_t *p = it_srv_expect_as(s, auth2, "GET", start, NULL, 200);
    json_decref(p);
    json_decref(it_srv_expect(s, "GET", link2, NULL, 200));

    /* Unused for longer than --delta-ttl: 410. */
    it_sleep_ms(2600);
    expect_status(s, s->auth, link2, 410, "Gone", "expired");

    /* person is refused in a delta, and a start too far back. */
    char *pfilter = it_fmt("date ge '%04d-01-01' and person eq 1", this_year());
    char *pf = it_urlenc(pfilter);
    free(pfilter);
    char *pt = it_fmt(IT_BASE "/breaks?filter=%s&delta", pf);
    expect_status(s, s->auth, pt, 400, "BadRequest", "person");
    free(pf);
    free(pt);
    char *old = it_fmt("date ge '%04d-12-31'", this_year() - 2);
    char *oe = it_urlenc(old);
    char *ot = it_fmt(IT_BASE "/breaks?filter=%s&delta", oe);
    expect_status(s, s->auth, ot, 400, "BadRequest", "no earlier than");
    free(old);
    free(oe);
    free(ot);
    free(auth2);
    free(auth3);
    free(start);
    free(link);
    free(link2);
}

/* ---- long polling ------------------------------------------------------------------- */

typedef struct lp {
    int port;
    char target[2048];
    char headers[1600];
    int status;
    char *body;
    char applied[64];
    uint64_t ms;
    pthread_t t;
} lp_t;

static void *lp_run(void *arg)
{
    lp_t *l = arg;
    it_conn_t c;
    uint64_t t0 = it_now_ms();
    l->status = -1;
    if (it_connect(&c, l->port))
        return NULL;
    it_response_t r;
    memset(&r, 0, sizeof(r));
    char *req = it_fmt("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: breakhook-it/1\r\n"
                       "%s\r\n",
                       l->target, l->headers);
    if (!it_send_str(&c, req) && !it_read_response(&c, &r, false, 70000)) {
        l->status = r.status;
        l->body = r.body ? strdup(r.body) : NULL;
        const char *a = it_response_header(&r, "Preference-Applied");
        snprintf(l->applied, sizeof(l->applied), "%s", a ? a : "");
        it_response_free(&r);
    }
    free(req);
    it_conn_close(&c);
    l->ms = it_now_ms() - t0;
    return NULL;
}

static lp_t *lp_start(it_srv_t *s, const char *auth, const char *link, int wait_s)
{
    lp_t *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->port = s->s.port;
    snprintf(l->target, sizeof(l->target), "%s", link);
    snprintf(l->headers, sizeof(l->headers), "%sPrefer: wait=%d\r\n", auth, wait_s);
    assert_int_equal(pthread_create(&l->t, NULL, lp_run, l), 0);
    return l;
}

static void lp_join(lp_t *l)
{
    pthread_join(l->t, NULL);
}

static void lp_free(lp_t *l)
{
    free(l->body);
    free(l);
}

/* The number of items in a long poll's answer. */
static size_t lp_items(const lp_t *l)
{
    json_t *j = it_json_parse(l->body, strlen(l->body));
    assert_non_null(j);
    size_t n = json_array_size(json_object_get(j, "value"));
    assert_non_null(json_object_get(j, "deltaLink"));
    json_decref(j);
    return n;
}

/* A long poll on link that a cap refuses at once with status (429 or 503). */
static void expect_long_poll_refused(it_srv_t *s, const char *auth, const char *link,
                                     int status, const char *code)
{
    it_response_t r;
    char *hdrs = it_fmt("%sPrefer: wait=5\r\n", auth);
    assert_int_equal(it_request(s->s.port, "GET", link, hdrs, NULL, 0, &r), 0);
    IT_EXPECT_ERROR(&r, status, code, "long polls");
    it_response_free(&r);
    free(hdrs);
}

static void test_long_poll(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { "--long-poll-per-client", "1", NULL };
    it_srv_t *s = boot(f, args);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *link = initial_load(s, start, &c, NULL, NULL);

    /* Nothing for a second: an empty page after about a second. */
    lp_t *l = lp_start(s, s->auth, link, 1);
    lp_join(l);
    assert_int_equal(l->status, 200);
    assert_int_equal(lp_items(l), 0);
    assert_string_equal(l->applied, "wait=1");
    assert_true(l->ms >= 900);
    lp_free(l);

    /* Held: a change outside the range does not answer it, one inside does, long before
     * the 30 s run out. The same delta meanwhile: 409. */
    l = lp_start(s, s->auth, link, 30);
    it_sleep_ms(300);
    expect_status(s, s->auth, link, 409, "Conflict", "still running");
    put_break(s, 50, 9, 9, 10);
    it_sleep_ms(300);
    put_break(s, 51, 2, 2, 10);
    lp_join(l);
    assert_int_equal(l->status, 200);
    assert_int_equal(lp_items(l), 1);
    assert_string_equal(l->applied, "wait=30");
    if (l->ms > 10000)
        fail_msg("the held follow-up answered after %llu ms", (unsigned long long)l->ms);

    /* The per-client cap: a second held long poll of the client (on its definitions
     * delta) is refused with 429 while the first is held. */
    json_t *dp = it_srv_expect(s, "GET", IT_BASE "/break-definitions?delta", NULL, 200);
    char *dlink = link_of(dp, "deltaLink");
    json_decref(dp);
    json_t *lj = it_json_parse(l->body, strlen(l->body));
    free(link);
    link = strdup(it_jstr(lj, "deltaLink"));
    json_decref(lj);
    lp_free(l);
    l = lp_start(s, s->auth, link, 30);
    it_sleep_ms(300);
    expect_long_poll_refused(s, s->auth, dlink, 429, "TooManyRequests");

    /* SIGTERM answers the held request at once: an empty page and its deltaLink. */
    uint64_t t0 = it_now_ms();
    it_srv_stop(s);
    lp_join(l);
    assert_int_equal(l->status, 200);
    assert_int_equal(lp_items(l), 0);
    if (it_now_ms() - t0 > 10000)
        fail_msg("the held request was not answered at SIGTERM");
    lp_free(l);
    free(dlink);
    free(start);
    free(link);
}

static void test_long_poll_total_cap(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { "--long-poll-max", "1", NULL };
    it_srv_t *s = boot(f, args);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *link = initial_load(s, start, &c, NULL, NULL);
    lp_t *l = lp_start(s, s->auth, link, 20);
    it_sleep_ms(300);
    it_client_t c2;
    it_client_create(&s->s, IT_TENANT, IT_ALL_SCOPES, &c2);
    char *auth2 = it_token_header(s->s.port, &c2, NULL);
    json_t *p = it_srv_expect_as(s, auth2, "GET", start, NULL, 200);
    char *link2 = link_of(p, "deltaLink");
    json_decref(p);
    expect_long_poll_refused(s, auth2, link2, 503, "ServiceUnavailable");
    put_break(s, 60, 1, 1, 10);
    lp_join(l);
    assert_int_equal(l->status, 200);
    assert_int_equal(lp_items(l), 1);
    lp_free(l);
    free(auth2);
    free(link2);
    free(start);
    free(link);
}

/* ---- rollover ------------------------------------------------------------------------ */

/* The newest version of each record the consumer acknowledged (its applied state). */
static void consumer_state(it_consumer_t *k, uint64_t *v, size_t n)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n_acks; i++)
        if (k->acks[i].record > 0 && (size_t)k->acks[i].record < n &&
            k->acks[i].v > v[k->acks[i].record])
            v[k->acks[i].record] = k->acks[i].v;
    pthread_mutex_unlock(&k->mu);
}

/* it_consumer_wait's predicate: a Delete of break 7 arrived (mu is held). */
static bool delete_of_7_arrived(it_consumer_t *c, const void *arg)
{
    (void)arg;
    for (size_t k = 0; k < c->n; k++)
        if (c->d[k].record == 7 && !strcmp(c->d[k].change_type, "Delete"))
            return true;
    return false;
}

static void test_rollover_resume_after(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { LOOPBACK, NULL };
    it_srv_t *s = boot(f, args);
    f->cons = it_consumer_new(IT_RULE_OK, NULL);
    it_webhook_t a;
    it_consumer_webhook(s, f->cons, NULL, &a);
    uint64_t first[21] = { 0 };
    for (int i = 1; i <= 20; i++)
        first[i] = put_break(s, i, 3, 1 + i % 20, 10);
    /* Every one acknowledged before A goes, so none of A's attempts is still on its
     * way when the consumer switches to B's key. */
    for (int i = 1; i <= 20; i++) {
        it_rec_version_t want = { i, first[i] };
        assert_true(it_consumer_wait(f->cons, it_pred_acked, &want, 15000));
    }
    /* A disabled mid-stream: the consumer applied up to its newest acknowledged version. */
    char *pa = it_fmt(IT_BASE "/webhooks/%s", a.id);
    json_decref(it_srv_expect(s, "DELETE", pa, NULL, 204));
    free(pa);
    uint64_t applied[MAX_ID] = { 0 };
    consumer_state(f->cons, applied, MAX_ID);
    uint64_t resume = 0;
    for (int i = 0; i < MAX_ID; i++)
        resume = applied[i] > resume ? applied[i] : resume;
    /* Changes while no webhook is enabled... */
    for (int i = 5; i <= 30; i++)
        put_break(s, i, 4, 1 + i % 20, 20);
    del_break(s, 7);
    /* ...reach B, created with resumeAfter. */
    char rv[21];
    snprintf(rv, sizeof(rv), "%020llX", (unsigned long long)resume);
    char *body = it_fmt("{\"destinationUrl\":\"http://127.0.0.1:%d/hook\","
                        "\"collectionName\":\"breaks\",\"resumeAfter\":\"%s\"}",
                        f->cons->port, rv);
    json_t *b = it_srv_expect(s, "POST", IT_BASE "/webhooks", body, 201);
    free(body);
    it_consumer_set_key(f->cons, it_jstr(b, "key"));
    json_decref(b);
    put_break(s, 31, 5, 5, 10);
    /* The consumer's state reaches the server's: every record at its newest version
     * (the backlog goes out per record, so each is waited for). */
    char *lt = list_target();
    json_t *page = it_srv_expect(s, "GET", lt, NULL, 200);
    free(lt);
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(page, "value"), i, rec)
    {
        it_rec_version_t w = { it_jint(rec, "id"),
                               it_version_num(it_jstr(rec, "changeVersion")) };
        if (!it_consumer_wait(f->cons, it_pred_acked, &w, 15000))
            fail_msg("break %lld at %llu never reached the consumer", (long long)w.record,
                     (unsigned long long)w.v);
    }
    uint64_t now[MAX_ID] = { 0 };
    consumer_state(f->cons, now, MAX_ID);
    json_array_foreach(json_object_get(page, "value"), i, rec)
    {
        int64_t id = it_jint(rec, "id");
        uint64_t v = it_version_num(it_jstr(rec, "changeVersion"));
        if (now[id] != v)
            fail_msg("break %lld: server %llu, consumer %llu", (long long)id,
                     (unsigned long long)v, (unsigned long long)now[id]);
    }
    json_decref(page);
    if (!it_consumer_wait(f->cons, delete_of_7_arrived, NULL, 15000))
        fail_msg("the delete of break 7 was not delivered to B");
    it_consumer_expect_signed(f->cons, "rollover");

    /* Malformed, and newer than the tenant's last change: 400. */
    const char *bad[] = { "\"12\"", "12", "\"FFFFFFFFFFFFFFFFFFFF\"" };
    for (size_t k = 0; k < 3; k++) {
        char *bb = it_fmt("{\"destinationUrl\":\"http://127.0.0.1:%d/hook\","
                          "\"collectionName\":\"breaks\",\"resumeAfter\":%s}",
                          f->cons->port, bad[k]);
        it_response_t r;
        it_srv_call(s, s->auth, "POST", IT_BASE "/webhooks", "application/json", bb,
                    strlen(bb), &r);
        IT_EXPECT_ERROR(&r, 400, "BadRequest", "resumeAfter");
        it_response_free(&r);
        free(bb);
    }
}

/* Older than retention: 410, a full sync is needed. The follow-up of a token whose
 * changes were pruned: 410 too. */
static void test_resume_after_pruned(void **state)
{
    fixture_t *f = *state;
    const char *const args[] = { LOOPBACK, "--retention", "1s", NULL };
    it_srv_t *s = boot(f, args);
    copy_t c = { 0 };
    char *start = delta_start_target("");
    char *l0 = initial_load(s, start, &c, NULL, NULL);
    put_break(s, 1, 3, 3, 10);
    char *l1 = follow(s, l0, &c, NULL);
    put_break(s, 2, 3, 3, 10);
    char *l2 = follow(s, l1, &c, NULL); /* the delta's floor: l1's cursor */
    char *l3 = follow(s, l2, &c, NULL); /* floor: l2's cursor, after both changes */
    /* Pruned once they are older than a second (the sweep runs every second). */
    it_sleep_ms(3500);
    expect_status(s, s->auth, l0, 410, "Gone", "no longer retained");
    char *body = it_fmt("{\"destinationUrl\":\"http://127.0.0.1:9/hook\","
                        "\"collectionName\":\"breaks\",\"resumeAfter\":\"%020X\"}",
                        0);
    it_response_t r;
    it_srv_call(s, s->auth, "POST", IT_BASE "/webhooks", "application/json", body,
                strlen(body), &r);
    IT_EXPECT_ERROR(&r, 410, "Gone", "full sync");
    it_response_free(&r);
    /* The newest link still works: it needs nothing that was pruned. */
    json_decref(it_srv_expect(s, "GET", l3, NULL, 200));
    free(body);
    free(start);
    free(l0);
    free(l1);
    free(l2);
    free(l3);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_initial_load_then_follow_ups),
        T(test_item_is_the_delivered_body),
        T(test_definitions_delta),
        T(test_delta_survives_restart),
        T(test_follow_up_page_cap),
        T(test_random_writes_copy_equals_server),
        T(test_tokens),
        T(test_long_poll),
        T(test_long_poll_total_cap),
        T(test_rollover_resume_after),
        T(test_resume_after_pruned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
