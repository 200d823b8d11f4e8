/*
 * sink.c: `breakhook sink`: the reference consumer of breakhook webhooks.
 *
 * It does what docs/CONSUMERS.md asks of every consumer, on our own HTTP server:
 * verify the Standard Webhooks signature and the timestamp window (401 otherwise,
 * nothing recorded); de-duplicate, because delivery is at least once; record; and
 * answer at once. It also serves as the fast local destination of the benchmarks
 * and, with --fail-first and --status, as a misbehaving one for retry tests.
 *
 * De-duplication keeps, per record, the highest changeVersion accepted. A record is
 * (request path, data.id): webhooks of several collections or tenants can share one
 * sink under different paths without their ids colliding. A delivery whose
 * changeVersion is not above the one kept is a retry of something already accepted,
 * or an older state arriving late: it is acknowledged (200) so the producer stops
 * sending it, and not recorded again. Keeping the version rather than every
 * webhook-id makes the memory one small entry per record, and it also rejects the
 * stale-overwrites-newer case that webhook-id de-duplication lets through.
 *
 * With --record, every accepted delivery is appended to the file (one JSON line,
 * written before the answer, so nothing acknowledged is missing from it) and the
 * file is read back at start, so de-duplication survives a restart of the sink.
 *
 * One thread, one libuv loop; every request is answered synchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/consumer.h"
#include "core/clock.h"
#include "core/config.h"
#include "delivery/sign.h"
#include "http/http.h"

#define SINK_DEFAULT_LISTEN "127.0.0.1:9000"
#define SINK_DEFAULT_MAX_RECORDS 10000000
#define SINK_MAX_RECORDS_LIMIT 100000000
#define SINK_CV_LEN 20                    /* changeVersion: 20 upper-case hex digits */
#define SINK_MAX_PATH_SEGMENTS 8          /* POST is accepted on any path this deep */
#define SINK_RECORD_LINE_MAX (256u << 20) /* a record line longer than this is not ours */

typedef struct sink_config {
    const char *listen;
    const char *key;
    const char *record;
    const char *tolerance;
    int64_t fail_first;
    int64_t status;
    int64_t retry_after;
    int64_t max_body;
    int64_t max_records;
    const char *port_file;
    bool quiet;
} sink_config_t;

#define OPT(name, type, field, meta, help, lo, hi) \
    { name, type, offsetof(sink_config_t, field), meta, help, lo, hi }

static const config_option_t sink_options[] = {
    OPT("listen", CONFIG_STRING, listen, "ADDR:PORT",
        "address to listen on (default " SINK_DEFAULT_LISTEN "; port 0 picks a free one)", 0, 0),
    OPT("key", CONFIG_STRING, key, "whsec_...",
        "the webhook's signing key, as POST /webhooks returned it (required)", 0, 0),
    OPT("record", CONFIG_STRING, record, "FILE",
        "append every accepted delivery to FILE as one JSON line, and read FILE back at "
        "start so de-duplication survives restarts", 0, 0),
    OPT("tolerance", CONFIG_STRING, tolerance, "DURATION",
        "refuse deliveries whose webhook-timestamp is further than this from now (default "
        "5m; 0 disables the check)", 0, 0),
    OPT("fail-first", CONFIG_INT, fail_first, "N",
        "answer 500 to the first N deliveries of each record (to watch retries)", 0, 255),
    OPT("status", CONFIG_INT, status, "CODE",
        "answer every request with CODE, verifying and recording nothing (to test how the "
        "producer treats it)", 200, 599),
    OPT("retry-after", CONFIG_DURATION, retry_after, "DURATION",
        "add 'Retry-After' (whole seconds) to the answers of --status and --fail-first", 1000,
        86400000),
    OPT("max-body", CONFIG_INT, max_body, "BYTES", "request body limit (default 1048576)", 1,
        1LL << 30),
    OPT("max-records", CONFIG_INT, max_records, "N",
        "records de-duplication remembers at most (default 10000000, about 400 MB at the "
        "full size); new records past it get 503", 1, SINK_MAX_RECORDS_LIMIT),
    OPT("port-file", CONFIG_STRING, port_file, "PATH",
        "write the port actually bound to PATH once listening (for scripts and tests)", 0, 0),
    OPT("quiet", CONFIG_BOOL, quiet, NULL,
        "print nothing per delivery (only errors and the summary at exit)", 0, 0),
};
#define N_SINK_OPTIONS (sizeof(sink_options) / sizeof(sink_options[0]))

/* ---- the de-duplication table --------------------------------------------------- */

/* One record: 24 bytes, so the documented maximum (10 million records, a table of
 * 2^24 slots) stays near 400 MB. The changeVersion's 80 bits are kept as a 16-bit
 * high part and a 64-bit low part, which compare in the same order as the text. The
 * path is kept as a 32-bit hash: two paths colliding merely share records. */
typedef struct dedup_entry {
    int64_t id;
    uint64_t cv_lo;
    uint32_t path_hash;
    uint16_t cv_hi;
    uint8_t flags;
    uint8_t fails;        /* --fail-first answers given to this record */
} dedup_entry_t;

_Static_assert(sizeof(dedup_entry_t) == 24, "the documented memory per record");

#define DEDUP_USED 1
#define DEDUP_HAS_VERSION 2

/* Open addressing with linear probing: nothing is ever removed, so no tombstones,
 * and a probe walks adjacent memory. Grown by doubling at 3/4 full. */
typedef struct dedup {
    dedup_entry_t *slots;
    size_t cap;           /* a power of two, or 0 */
    size_t n;
    size_t max;           /* records at most */
} dedup_t;

typedef struct cv {
    uint16_t hi;
    uint64_t lo;
} cv_t;

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: ids are often consecutive, so spread them. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint32_t path_hash(slice_t p)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < p.n; i++) {
        h ^= (unsigned char)p.p[i];
        h *= 16777619u;
    }
    return h;
}

static size_t slot_of(const dedup_t *d, uint32_t ph, int64_t id)
{
    return (size_t)(mix64((uint64_t)id ^ ((uint64_t)ph << 32)) & (d->cap - 1));
}

static int dedup_grow(dedup_t *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1024;
    dedup_entry_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return BH_ENOMEM;
    dedup_t nd = { slots, cap, d->n, d->max };
    for (size_t i = 0; i < d->cap; i++) {
        if (!(d->slots[i].flags & DEDUP_USED))
            continue;
        size_t j = slot_of(&nd, d->slots[i].path_hash, d->slots[i].id);
        while (slots[j].flags & DEDUP_USED)
            j = (j + 1) & (cap - 1);
        slots[j] = d->slots[i];
    }
    free(d->slots);
    *d = nd;
    return 0;
}

/* The entry of (ph, id), added when missing. BH_ETOOBIG when it is missing and the
 * table already holds max records; BH_ENOMEM. The pointer is valid until the next
 * call. */
static int dedup_get(dedup_t *d, uint32_t ph, int64_t id, dedup_entry_t **out)
{
    if (d->cap) {
        for (size_t j = slot_of(d, ph, id);; j = (j + 1) & (d->cap - 1)) {
            dedup_entry_t *e = &d->slots[j];
            if (!(e->flags & DEDUP_USED))
                break;
            if (e->id == id && e->path_hash == ph) {
                *out = e;
                return 0;
            }
        }
    }
    if (d->n >= d->max)
        return BH_ETOOBIG;
    if ((d->n + 1) * 4 > d->cap * 3) {
        int rc = dedup_grow(d);
        if (rc)
            return rc;
    }
    size_t j = slot_of(d, ph, id);
    while (d->slots[j].flags & DEDUP_USED)
        j = (j + 1) & (d->cap - 1);
    dedup_entry_t *e = &d->slots[j];
    *e = (dedup_entry_t){ .id = id, .path_hash = ph, .flags = DEDUP_USED };
    d->n++;
    *out = e;
    return 0;
}

static bool cv_parse(const char *s, size_t n, cv_t *out)
{
    if (n != SINK_CV_LEN)
        return false;
    uint64_t hi = 0, lo = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned v;
        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v = (unsigned)(c - 'A' + 10);
        else
            return false;
        if (i < 4)
            hi = hi << 4 | v;
        else
            lo = lo << 4 | v;
    }
    out->hi = (uint16_t)hi;
    out->lo = lo;
    return true;
}

static void cv_format(const dedup_entry_t *e, char out[SINK_CV_LEN + 1])
{
    snprintf(out, SINK_CV_LEN + 1, "%04X%016llX", (unsigned)e->cv_hi,
             (unsigned long long)e->cv_lo);
}

/* True when v is above what e already holds (or e holds nothing yet). */
static bool cv_newer(const dedup_entry_t *e, cv_t v)
{
    if (!(e->flags & DEDUP_HAS_VERSION))
        return true;
    return v.hi != e->cv_hi ? v.hi > e->cv_hi : v.lo > e->cv_lo;
}

static void cv_store(dedup_entry_t *e, cv_t v)
{
    e->cv_hi = v.hi;
    e->cv_lo = v.lo;
    e->flags |= DEDUP_HAS_VERSION;
}

/* ---- the sink --------------------------------------------------------------------- */

typedef struct sink {
    uv_loop_t loop;
    http_server_t *server;
    uv_signal_t sigterm, sigint;
    uv_timer_t shutdown_timer;
    bool stopping;
    cli_key_t key;
    int64_t tolerance_s;
    const sink_config_t *cfg;
    char retry_after[24];
    dedup_t dedup;
    int record_fd;
    /* counters, printed at exit */
    uint64_t accepted, duplicates, rejected, invalid, failed, full, fixed;
} sink_t;

/* A delivery's body, checked: {"changeType": string, "data": {"id": integer,
 * "changeVersion": 20 hex digits, ...}, ...}. */
typedef struct delivery {
    json_t *root;
    const char *change_type;
    int64_t id;
    cv_t cv;
    const char *cv_text;
} delivery_t;

static const char *parse_delivery(const char *body, size_t n, delivery_t *d)
{
    json_error_t jerr;
    d->root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!d->root)
        return "the body is not JSON";
    json_t *ct = json_object_get(d->root, "changeType");
    json_t *data = json_object_get(d->root, "data");
    json_t *id = json_object_get(data, "id");
    json_t *cv = json_object_get(data, "changeVersion");
    if (!json_is_object(d->root))
        return "the body is not a JSON object";
    if (!json_is_string(ct) || json_string_length(ct) == 0)
        return "changeType is missing or not a string";
    if (!json_is_object(data))
        return "data is missing or not an object";
    if (!json_is_integer(id))
        return "data.id is missing or not an integer";
    if (!json_is_string(cv) || !cv_parse(json_string_value(cv), json_string_length(cv), &d->cv))
        return "data.changeVersion is missing or not 20 upper-case hex digits";
    d->change_type = json_string_value(ct);
    d->id = (int64_t)json_integer_value(id);
    d->cv_text = json_string_value(cv);
    return NULL;
}

/* Network text is printed on a terminal only when it is made of letters, digits and
 * a few marks: a signed body is still not a reason to pass escape sequences through. */
static slice_t printable(slice_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/'))
            return SLICE_LIT("?");
    }
    return s.p ? s : SLICE_LIT("-");
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return BH_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends the record line of an accepted delivery. One write(2) per line with
 * O_APPEND: a reader (or a test) sees whole lines, and a crash loses at most the line
 * being written, never one that was acknowledged. */
static int record_append(sink_t *s, slice_t webhook_id, int64_t ts, slice_t path,
                         const delivery_t *d)
{
    char received[32];
    clock_format_rfc3339(clock_now_ms(clock_system()), received);
    json_t *line = json_object();
    int rc = BH_ENOMEM;
    if (!line)
        return rc;
    json_t *wid = json_stringn(webhook_id.p, webhook_id.n);
    json_t *pth = json_stringn(path.p, path.n);
    if (!wid || !pth) {
        json_decref(wid);
        json_decref(pth);
        json_decref(line);
        return BH_EINVAL; /* not UTF-8 */
    }
    if (json_object_set_new(line, "webhookId", wid) ||
        json_object_set_new(line, "timestamp", json_integer(ts)) ||
        json_object_set_new(line, "receivedAt", json_string(received)) ||
        json_object_set_new(line, "path", pth) || json_object_set(line, "body", d->root))
        goto out;
    char *text = json_dumps(line, JSON_COMPACT);
    if (!text)
        goto out;
    size_t n = strlen(text);
    /* json_dumps never emits a raw newline (JSON strings escape it), so the line is one
     * line whatever the body held. The NUL becomes the newline. */
    text[n] = '\n';
    rc = write_all(s->record_fd, text, n + 1);
    free(text);
out:
    json_decref(line);
    return rc;
}

static void respond_status(sink_t *s, http_request_t *req, int status, const char *message)
{
    if (s->retry_after[0] && status >= 300)
        http_response_header(req, "Retry-After", s->retry_after);
    if (status >= 400)
        http_respond_error(req, status, message, NULL, 0);
    else
        http_respond(req, status, NULL, NULL, 0);
}

static void reject(sink_t *s, http_request_t *req, int status, const char *message,
                   const char *reason, slice_t webhook_id)
{
    if (!s->cfg->quiet) {
        slice_t p = printable(req->path), w = printable(webhook_id);
        fprintf(stderr, "rejected %d path=%.*s webhookId=%.*s: %s\n", status, (int)p.n, p.p,
                (int)w.n, w.p, reason);
    }
    const char *reasons[1] = { reason };
    http_respond_error(req, status, message, reasons, 1);
}

static void on_delivery(http_request_t *req)
{
    sink_t *s = (sink_t *)req->route_data;
    if (s->cfg->status) {
        s->fixed++;
        respond_status(s, req, (int)s->cfg->status, "answering this status on purpose (--status)");
        return;
    }
    sign_headers_t h = {
        .id = http_request_header(req, "webhook-id"),
        .timestamp = http_request_header(req, "webhook-timestamp"),
        .signature = http_request_header(req, "webhook-signature"),
    };
    int64_t now_s = clock_now_ms(clock_system()) / 1000;
    slice_t body = buf_slice(&req->body);
    int rc = sign_verify(s->key.b, s->key.n, &h, body.p, body.n, now_s, s->tolerance_s);
    if (rc) {
        s->rejected++;
        reject(s, req, 401, "the delivery's signature does not verify", sign_strerror(rc), h.id);
        return;
    }
    delivery_t d = { 0 };
    const char *why = parse_delivery(body.p, body.n, &d);
    if (why) {
        s->invalid++;
        reject(s, req, 400, "the body is not a breakhook delivery", why, h.id);
        goto out;
    }
    dedup_entry_t *e;
    rc = dedup_get(&s->dedup, path_hash(req->path), d.id, &e);
    if (rc == BH_ETOOBIG) {
        s->full++;
        char msg[160];
        snprintf(msg, sizeof(msg), "the sink remembers at most %zu records (--max-records)",
                 s->dedup.max);
        reject(s, req, 503, "the sink's de-duplication table is full", msg, h.id);
        goto out;
    }
    if (rc) {
        reject(s, req, 500, "out of memory", "out of memory", h.id);
        goto out;
    }
    if (e->fails < s->cfg->fail_first) {
        e->fails++;
        s->failed++;
        if (!s->cfg->quiet) {
            slice_t p = printable(req->path);
            printf("failing path=%.*s id=%lld changeVersion=%s (--fail-first %u/%lld)\n",
                   (int)p.n, p.p, (long long)d.id, d.cv_text, e->fails,
                   (long long)s->cfg->fail_first);
        }
        respond_status(s, req, 500, "failing on purpose (--fail-first)");
        goto out;
    }
    if (!cv_newer(e, d.cv)) {
        /* A retry of something accepted, or an older state arriving after a newer one:
         * acknowledge it so the producer moves on, and keep what we have. */
        s->duplicates++;
        char kept[SINK_CV_LEN + 1], answer[96];
        cv_format(e, kept);
        int n = snprintf(answer, sizeof(answer), "{\"duplicate\":true,\"changeVersion\":\"%s\"}",
                         kept);
        http_respond_json(req, 200, answer, (size_t)n);
        goto out;
    }
    if (s->record_fd >= 0) {
        unsigned long long ts = 0;
        (void)slice_to_u64(h.timestamp, (unsigned long long)INT64_MAX, &ts); /* verified */
        rc = record_append(s, h.id, (int64_t)ts, req->path, &d);
        if (rc) {
            reject(s, req, rc == BH_EINVAL ? 400 : 500, "the delivery could not be recorded",
                   rc == BH_EINVAL ? "webhook-id or the path is not UTF-8"
                                   : "writing the --record file failed",
                   h.id);
            goto out;
        }
    }
    cv_store(e, d.cv);
    s->accepted++;
    if (!s->cfg->quiet) {
        slice_t p = printable(req->path), ct = printable(slice_from_cstr(d.change_type)),
                w = printable(h.id);
        printf("accepted path=%.*s id=%lld changeType=%.*s changeVersion=%s webhookId=%.*s\n",
               (int)p.n, p.p, (long long)d.id, (int)ct.n, ct.p, d.cv_text, (int)w.n, w.p);
    }
    http_respond(req, 204, NULL, NULL, 0);
out:
    json_decref(d.root);
}

/* ---- start and stop ---------------------------------------------------------------- */

/* Reads a --record file back: each line's (path, data.id, data.changeVersion) seeds
 * the table, so a restarted sink still knows what it acknowledged. Lines that are not
 * record lines (a last line cut short by a crash, say) are counted and skipped. The
 * file is our own output, so a line is read whole; SINK_RECORD_LINE_MAX only marks a
 * file that cannot be ours. */
static int record_load(sink_t *s, const char *path, size_t *loaded, size_t *skipped,
                       bool *needs_newline, char *why, size_t why_len)
{
    *loaded = *skipped = 0;
    *needs_newline = false;
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, why_len, "cannot read --record %s: %s", path, strerror(errno));
        return BH_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        *needs_newline = line[len - 1] != '\n';
        if ((size_t)len > SINK_RECORD_LINE_MAX) {
            snprintf(why, why_len, "--record %s: a line longer than %u bytes: not a record file",
                     path, SINK_RECORD_LINE_MAX);
            rc = BH_EINVAL;
            break;
        }
        json_t *j = json_loadb(line, (size_t)len, 0, NULL);
        json_t *pth = json_object_get(j, "path");
        json_t *data = json_object_get(json_object_get(j, "body"), "data");
        json_t *id = json_object_get(data, "id");
        json_t *cv = json_object_get(data, "changeVersion");
        cv_t v;
        if (!json_is_integer(id) || !json_is_string(cv) ||
            !cv_parse(json_string_value(cv), json_string_length(cv), &v)) {
            (*skipped)++;
            json_decref(j);
            continue;
        }
        slice_t p = json_is_string(pth)
                        ? slice_make(json_string_value(pth), json_string_length(pth))
                        : SLICE_LIT("/");
        dedup_entry_t *e;
        rc = dedup_get(&s->dedup, path_hash(p), (int64_t)json_integer_value(id), &e);
        json_decref(j);
        if (rc) {
            snprintf(why, why_len, "--record %s holds more records than --max-records %zu",
                     path, s->dedup.max);
            break;
        }
        if (cv_newer(e, v))
            cv_store(e, v);
        (*loaded)++;
    }
    if (!rc && ferror(f)) {
        snprintf(why, why_len, "cannot read --record %s", path);
        rc = BH_EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

static int record_open(sink_t *s, const char *path, char *why, size_t why_len)
{
    size_t loaded, skipped;
    bool needs_newline;
    int rc = record_load(s, path, &loaded, &skipped, &needs_newline, why, why_len);
    if (rc)
        return rc;
    s->record_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (s->record_fd < 0) {
        snprintf(why, why_len, "cannot open --record %s: %s", path, strerror(errno));
        return BH_EIO;
    }
    /* A last line cut short: end it, so the next record starts on a line of its own. */
    if (needs_newline && write_all(s->record_fd, "\n", 1)) {
        snprintf(why, why_len, "cannot write --record %s", path);
        return BH_EIO;
    }
    if (!s->cfg->quiet && (loaded || skipped))
        fprintf(stderr, "sink: %zu records read back from %s (%zu other lines skipped)\n",
                loaded, path, skipped);
    return 0;
}

static void on_server_done(void *arg)
{
    sink_t *s = arg;
    s->server = NULL;
    uv_stop(&s->loop);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* SIGTERM/SIGINT: stop accepting and let answers in flight go out (every request is
 * answered synchronously, so this is quick); the record file is synced after the
 * loop. A second signal, or 5 s, stops the loop at once; the record is still synced. */
static void on_signal(uv_signal_t *h, int signum)
{
    sink_t *s = h->data;
    (void)signum;
    if (s->stopping || !s->server) {
        uv_stop(&s->loop);
        return;
    }
    s->stopping = true;
    uv_timer_start(&s->shutdown_timer, on_shutdown_timeout, 5000, 0);
    http_server_shutdown(s->server, on_server_done, s);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void print_help(void)
{
    printf("usage: breakhook sink --key whsec_... [--listen ADDR:PORT] [--record FILE] [OPTIONS]\n\n"
           "A reference consumer of breakhook webhooks. Every POST (on any path) is checked\n"
           "like docs/CONSUMERS.md says a consumer should:\n"
           "  - signature and timestamp (Standard Webhooks): 401 with the reason, never recorded;\n"
           "  - body {\"changeType\",\"data\":{\"id\",\"changeVersion\",...}}: 400 otherwise;\n"
           "  - de-duplication per record (request path + data.id): a changeVersion not above\n"
           "    the highest accepted one is a retry or a late older state: 200, not recorded;\n"
           "  - otherwise recorded (--record: one JSON line {\"webhookId\",\"timestamp\",\n"
           "    \"receivedAt\",\"path\",\"body\"}) and answered 204, with one line on stdout.\n"
           "SIGTERM or SIGINT: finish, sync the record file, print a summary on stderr, exit 0.\n\n"
           "options:\n");
    cli__consumer_print_options(stdout, sink_options, N_SINK_OPTIONS);
}

static const char *const sink_routes[SINK_MAX_PATH_SEGMENTS + 1] = {
    "/",
    "/{p1}",
    "/{p1}/{p2}",
    "/{p1}/{p2}/{p3}",
    "/{p1}/{p2}/{p3}/{p4}",
    "/{p1}/{p2}/{p3}/{p4}/{p5}",
    "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}",
    "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}",
    "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}",
};

int cli_sink(int argc, char **argv)
{
    sink_config_t cfg = {
        .listen = SINK_DEFAULT_LISTEN,
        .tolerance = "5m",
        .max_body = 1 << 20,
        .max_records = SINK_DEFAULT_MAX_RECORDS,
    };
    char err[320];
    const char *pos[1];
    size_t n_pos;
    bool help;
    if (config_parse(sink_options, N_SINK_OPTIONS, &cfg, argc, argv, cli__consumer_getenv, pos, 0,
                     &n_pos, &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "sink: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    sink_t s = { .cfg = &cfg, .record_fd = -1 };
    if (cli__consumer_parse_key(cfg.key, &s.key, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "sink: %s", err);
    if (cli__parse_tolerance(cfg.tolerance, &s.tolerance_s))
        return cli_fail(CLI_USAGE, "sink: --tolerance: expected 0 or whole seconds like 300s or "
                                   "5m, got '%s'", cfg.tolerance);
    char host[128];
    int port;
    if (cli__parse_listen(cfg.listen, host, sizeof(host), &port))
        return cli_fail(CLI_USAGE, "sink: --listen: expected ADDR:PORT, got '%s'", cfg.listen);
    if (cfg.retry_after)
        snprintf(s.retry_after, sizeof(s.retry_after), "%lld",
                 (long long)((cfg.retry_after + 999) / 1000));
    s.dedup.max = (size_t)cfg.max_records;

    int code = CLI_FAIL;
    http_router_t *router = NULL;
    if (cfg.record && record_open(&s, cfg.record, err, sizeof(err))) {
        cli_fail(CLI_FAIL, "sink: %s", err);
        goto out_record;
    }
    /* One line per delivery, visible at once to whoever watches (a terminal, a pipe,
     * a test), not when a 4 KiB stdio buffer happens to fill. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    uv_loop_init(&s.loop);
    router = http_router_new();
    http_route_opts_t ropt = { .max_body = (size_t)cfg.max_body, .data = &s };
    bool routes_ok = router != NULL;
    for (size_t i = 0; routes_ok && i <= SINK_MAX_PATH_SEGMENTS; i++)
        routes_ok = http_router_add(router, HTTP_M_POST, sink_routes[i], on_delivery, &ropt) == 0;
    if (!routes_ok) {
        cli_fail(CLI_FAIL, "sink: out of memory");
        goto out_loop;
    }
    http_server_options_t hopt = { .access_log = false,
                                   .server_name = "breakhook-sink/" BREAKHOOK_VERSION };
    http_limits_default(&hopt.limits);
    hopt.limits.max_body = (size_t)cfg.max_body;
    if (http_server_new(&s.loop, router, &hopt, &s.server)) {
        cli_fail(CLI_FAIL, "sink: out of memory");
        goto out_loop;
    }
    const char *why = "";
    if (http_server_listen(s.server, host, port, &why)) {
        cli_fail(CLI_FAIL, "sink: cannot listen on %s: %s", cfg.listen, why);
        goto out_loop;
    }
    port = http_server_port(s.server);
    if (cfg.port_file && cli__write_port_file(cfg.port_file, port)) {
        cli_fail(CLI_FAIL, "sink: cannot write --port-file %s", cfg.port_file);
        goto out_loop;
    }
    uv_timer_init(&s.loop, &s.shutdown_timer);
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    if (!cfg.quiet) {
        char tol[32] = "off";
        if (s.tolerance_s)
            snprintf(tol, sizeof(tol), "%llds", (long long)s.tolerance_s);
        fprintf(stderr, "sink: listening on http://%s%s%s:%d/ (tolerance %s%s%s)\n",
                strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port, tol,
                cfg.record ? ", recording to " : "", cfg.record ? cfg.record : "");
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    code = CLI_OK;

out_loop:
    if (s.server && !s.stopping) {
        /* A start that failed after the server was made: let it free itself. */
        s.stopping = true;
        http_server_shutdown(s.server, on_server_done, &s);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    /* Close what is left (signals, the timer, connections cut by the timeout) so the
     * loop can be closed. */
    uv_walk(&s.loop, close_walk, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    http_router_free(router);
out_record:
    if (s.record_fd >= 0) {
        if (fsync(s.record_fd) != 0 && errno != EINVAL)
            code = cli_fail(CLI_FAIL, "sink: cannot sync --record %s: %s", cfg.record,
                            strerror(errno));
        close(s.record_fd);
    }
    fflush(stdout);
    if (code == CLI_OK)
        fprintf(stderr,
                "sink: %llu accepted, %llu duplicates, %llu rejected (signature), %llu invalid, "
                "%llu failed on purpose, %llu refused (table full), %llu fixed-status answers\n",
                (unsigned long long)s.accepted, (unsigned long long)s.duplicates,
                (unsigned long long)s.rejected, (unsigned long long)s.invalid,
                (unsigned long long)s.failed, (unsigned long long)s.full,
                (unsigned long long)s.fixed);
    free(s.dedup.slots);
    OPENSSL_cleanse(s.key.b, sizeof(s.key.b));
    return code;
}
