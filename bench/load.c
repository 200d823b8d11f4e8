/*
 * load.c: paced writes for the latency figures of bench/run.sh.
 *
 * usage: bench_load --url PREFIX --rate N --count N --first-id N --out FILE
 *                   [--concurrency C] [--month YYYY-MM]
 *   The bearer token comes from the environment (BENCH_TOKEN), not argv.
 *
 * Writes the breaks FIRST-ID … FIRST-ID+COUNT-1, each once, with PUT PREFIX{id}
 * over keep-alive connections (at most C at a time, default 256), one every 1/RATE
 * seconds on a schedule fixed at the start: write i is due at start + i/RATE. A write
 * that is due while all C connections are busy goes out as soon as one frees, so the
 * tool never skips a write, but it does not hide falling behind either: every write's
 * lag behind its schedule is measured and the summary reports the achieved rate, the
 * largest lag and how many writes were more than 10 ms late.
 *
 * FILE gets "id send_unix_us answer_us" per write answered 200/201: the wall-clock
 * time at which libcurl was about to send the request on its (new or reused)
 * connection, and how long the whole answer took from then.
 * bench_sink --record writes the receipt time of each delivery in the same form,
 * so the two join on id. On stdout, one line (wrapped here):
 *   sent=N ok=N failed=N seconds=S rate=R max_lag_ms=L late=K
 *   answer_p50_ms=… answer_p99_ms=… answer_max_ms=…
 * Exit 0 when every write was answered 200/201, 1 otherwise (the summary is still
 * printed), 2 for usage errors.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD_MAX_COUNT 10000000
#define LOAD_MAX_CONCURRENCY 1024
#define LOAD_LATE_NS (10 * 1000000LL)
/* After the last write is due, this long at most for the answers. */
#define LOAD_GRACE_NS (30 * 1000000000LL)

typedef struct load_opts {
    const char *url;
    const char *out;
    const char *month;
    double rate;
    long count;
    long long first_id;
    long concurrency;
} load_opts_t;

typedef struct load load_t;

typedef struct slot {
    load_t *l;
    CURL *easy;
    long idx; /* the write in flight, -1 when idle */
    char url[1024];
    char body[512];
} slot_t;

struct load {
    load_opts_t o;
    int64_t *send_us; /* per write; 0 until sent */
    int64_t *answer_us; /* per write: from send to the whole answer */
    bool *ok;
    slot_t *slots;
    slot_t **idle;
    long n_idle;
    struct curl_slist *headers;
    long failed;
    char first_error[256];
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called by libcurl once the connection is ready, right before the request goes
 * out: the send time, without the time spent waiting for a connection. */
static int on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
    slot_t *s = arg;
    (void)ip;
    (void)local_ip;
    (void)port;
    (void)local_port;
    if (s->idx >= 0)
        s->l->send_us[s->idx] = wall_us();
    return CURL_PREREQFUNC_OK;
}
#endif

static int usage(void)
{
    fprintf(stderr, "usage: bench_load --url PREFIX --rate N --count N --first-id N --out FILE "
                    "[--concurrency C] [--month YYYY-MM]   (token in BENCH_TOKEN)\n");
    return 2;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, load_opts_t *o)
{
    double v;
    o->concurrency = 256;
    o->month = "2026-05";
    o->count = -1;
    o->first_id = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *a = argv[i + 1];
        if (!strcmp(k, "--url"))
            o->url = a;
        else if (!strcmp(k, "--out"))
            o->out = a;
        else if (!strcmp(k, "--month") && strlen(a) == 7)
            o->month = a;
        else if (!strcmp(k, "--rate") && !parse_num(a, 1, 1e6, &v))
            o->rate = v;
        else if (!strcmp(k, "--count") && !parse_num(a, 1, LOAD_MAX_COUNT, &v))
            o->count = (long)v;
        else if (!strcmp(k, "--first-id") && !parse_num(a, 1, 1e15, &v))
            o->first_id = (long long)v;
        else if (!strcmp(k, "--concurrency") && !parse_num(a, 1, LOAD_MAX_CONCURRENCY, &v))
            o->concurrency = (long)v;
        else
            return -1;
    }
    if (argc % 2 != 1 || !o->url || !o->out || o->rate <= 0 || o->count < 1 || o->first_id < 1)
        return -1;
    return 0;
}

/* Prepares slot s for write idx and returns it to the caller to add to the multi. */
static void slot_prepare(load_t *l, slot_t *s, long idx)
{
    long long id = l->o.first_id + idx;
    s->idx = idx;
    snprintf(s->url, sizeof(s->url), "%s%lld", l->o.url, id);
    snprintf(s->body, sizeof(s->body),
             "{\"id\":%lld,\"person\":{\"id\":%lld},\"breakDefinition\":{\"id\":1},"
             "\"date\":\"%s-%02lld\",\"clockedDurationInMinutes\":%lld,"
             "\"startTimeInMinutes\":720,\"endTimeInMinutes\":840,\"isBreakTaken\":true}",
             id, id % 100 + 1, l->o.month, id % 28 + 1, id % 90);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
}

static int slots_init(load_t *l, const char *token)
{
    char auth[2048];
    if (snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >= (int)sizeof(auth))
        return -1;
    l->headers = curl_slist_append(NULL, auth);
    l->headers = curl_slist_append(l->headers, "Content-Type: application/json");
    l->headers = curl_slist_append(l->headers, "Expect:");
    if (!l->headers)
        return -1;
    l->slots = calloc((size_t)l->o.concurrency, sizeof(*l->slots));
    l->idle = calloc((size_t)l->o.concurrency, sizeof(*l->idle));
    if (!l->slots || !l->idle)
        return -1;
    for (long i = 0; i < l->o.concurrency; i++) {
        slot_t *s = &l->slots[i];
        s->l = l;
        s->idx = -1;
        s->easy = curl_easy_init();
        if (!s->easy)
            return -1;
        curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, l->headers);
        curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "bench");
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(s->easy, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
#if LIBCURL_VERSION_NUM >= 0x075000
        curl_easy_setopt(s->easy, CURLOPT_PREREQFUNCTION, on_prereq);
        curl_easy_setopt(s->easy, CURLOPT_PREREQDATA, s);
#endif
        l->idle[l->n_idle++] = s;
    }
    return 0;
}

static void note_failure(load_t *l, long idx, long status, const char *why)
{
    l->failed++;
    if (!l->first_error[0])
        snprintf(l->first_error, sizeof(l->first_error), "break %lld: %s (HTTP status %ld)",
                 l->o.first_id + idx, why, status);
}

/* Collects finished writes and returns their slots to the idle list. */
static long reap(load_t *l, CURLM *m)
{
    long done = 0;
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        slot_t *s;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (msg->data.result != CURLE_OK)
            note_failure(l, s->idx, status, curl_easy_strerror(msg->data.result));
        else if (status != 200 && status != 201)
            note_failure(l, s->idx, status, "not 200 or 201");
        else
            l->ok[s->idx] = true;
        l->answer_us[s->idx] = wall_us() - l->send_us[s->idx];
        curl_multi_remove_handle(m, s->easy);
        s->idx = -1;
        l->idle[l->n_idle++] = s;
        done++;
    }
    return done;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p-th quantile (nearest rank) of the n first values of v (sorted), in ms. */
static double quantile_ms(int64_t *v, long n, double p)
{
    if (n <= 0)
        return 0;
    long k = (long)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return (double)v[k - 1] / 1000.0;
}

static int write_out(const load_t *l)
{
    FILE *f = fopen(l->o.out, "w");
    if (!f)
        return -1;
    for (long i = 0; i < l->o.count; i++)
        if (l->ok[i])
            fprintf(f, "%lld %" PRId64 " %" PRId64 "\n", l->o.first_id + i, l->send_us[i],
                    l->answer_us[i]);
    return fclose(f);
}

int main(int argc, char **argv)
{
    load_t l = { 0 };
    if (parse_args(argc, argv, &l.o))
        return usage();
    const char *token = getenv("BENCH_TOKEN");
    if (!token || !*token) {
        fprintf(stderr, "bench_load: BENCH_TOKEN is not set\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return 1;
    l.send_us = calloc((size_t)l.o.count, sizeof(*l.send_us));
    l.ok = calloc((size_t)l.o.count, sizeof(*l.ok));
    l.answer_us = calloc((size_t)l.o.count, sizeof(*l.answer_us));
    CURLM *m = curl_multi_init();
    if (!l.send_us || !l.ok || !l.answer_us || !m || slots_init(&l, token)) {
        fprintf(stderr, "bench_load: out of memory\n");
        return 1;
    }
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, l.o.concurrency);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, l.o.concurrency);

    const int64_t interval_ns = (int64_t)(1e9 / l.o.rate);
    const int64_t t0 = mono_ns();
    const int64_t deadline = t0 + l.o.count * interval_ns + LOAD_GRACE_NS;
    int64_t max_lag = 0, last_send = t0;
    long next = 0, finished = 0, late = 0;
    bool timed_out = false;
    while (finished < l.o.count) {
        int64_t now = mono_ns();
        if (now > deadline) {
            timed_out = true;
            break;
        }
        while (next < l.o.count && t0 + next * interval_ns <= now && l.n_idle > 0) {
            slot_t *s = l.idle[--l.n_idle];
            slot_prepare(&l, s, next);
            int64_t lag = now - (t0 + next * interval_ns);
            if (lag > max_lag)
                max_lag = lag;
            if (lag > LOAD_LATE_NS)
                late++;
            /* Overwritten by on_prereq with the moment the request goes out, where
             * libcurl has that callback. */
            l.send_us[next] = wall_us();
            last_send = now;
            curl_multi_add_handle(m, s->easy);
            next++;
        }
        int running;
        curl_multi_perform(m, &running);
        finished += reap(&l, m);
        int timeout_ms = 100;
        if (next < l.o.count && l.n_idle > 0) {
            int64_t wait = t0 + next * interval_ns - mono_ns();
            timeout_ms = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        }
        if (timeout_ms > 0 || running > 0)
            curl_multi_poll(m, NULL, 0, timeout_ms, NULL);
    }
    double seconds = (double)(last_send - t0 + interval_ns) / 1e9;
    long ok = 0;
    for (long i = 0; i < l.o.count; i++)
        ok += l.ok[i];
    if (write_out(&l)) {
        fprintf(stderr, "bench_load: cannot write %s\n", l.o.out);
        return 1;
    }
    long n_ans = 0;
    for (long i = 0; i < l.o.count; i++)
        if (l.ok[i])
            l.answer_us[n_ans++] = l.answer_us[i];
    qsort(l.answer_us, (size_t)n_ans, sizeof(*l.answer_us), cmp_i64);
    printf("sent=%ld ok=%ld failed=%ld seconds=%.3f rate=%.1f max_lag_ms=%.1f late=%ld "
           "answer_p50_ms=%.2f answer_p99_ms=%.2f answer_max_ms=%.2f\n",
           next, ok, l.o.count - ok, seconds, (double)next / seconds, (double)max_lag / 1e6, late,
           quantile_ms(l.answer_us, n_ans, 0.5), quantile_ms(l.answer_us, n_ans, 0.99),
           quantile_ms(l.answer_us, n_ans, 1.0));
    if (timed_out)
        fprintf(stderr, "bench_load: gave up waiting for %ld answers\n", l.o.count - finished);
    if (l.first_error[0])
        fprintf(stderr, "bench_load: %ld failed writes, first: %s\n", l.failed, l.first_error);
    for (long i = 0; i < l.o.concurrency; i++) {
        if (l.slots[i].idx >= 0)
            curl_multi_remove_handle(m, l.slots[i].easy);
        curl_easy_cleanup(l.slots[i].easy);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(l.headers);
    curl_global_cleanup();
    free(l.slots);
    free(l.idle);
    free(l.send_us);
    free(l.ok);
    free(l.answer_us);
    return ok == l.o.count ? 0 : 1;
}
