/*
 * batch.c: POST /breaks/$batch (SPEC §4): a stream of NDJSON lines, each
 * {"op":"upsert","data":{…break…}} or {"op":"delete","id":N}, applied in order.
 *
 * The body is streamed, never held whole: the server hands over windows of up to
 * API_BATCH_WINDOW bytes. Each window goes through two steps on worker threads:
 *
 *   parse  (any worker)   complete lines -> store ops, or a report for a bad line
 *   apply  (one at a time) ops in transactions of at most STORE_BATCH_MAX, each
 *                          refused op reported and the others applied
 *
 * The steps form a pipeline: while window k is being applied, window k+1 is read
 * and parsed, so JSON parsing and SQLite writing use both cores. Applies run one
 * at a time and in window order, so lines are applied in the order sent. At most
 * BATCH_PIPELINE parsed windows wait; beyond that the body is not read (the
 * server stops reading the socket), which bounds memory.
 *
 * The answer is NDJSON too, streamed with chunked encoding as transactions
 * commit: one line per input line that is not blank, in line order, then a
 * summary line. A client that loses the connection half way finds every line
 * reported as applied in the store. A body cut at the route's limit (a chunked
 * body that grows past it) is handled like a complete one that ends at the last
 * whole line before the cut, and the answer has an error line naming that line
 * before its summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/log.h"

#define BATCH_WINDOW API_BATCH_WINDOW /* also the longest line */
#define BATCH_PIPELINE 2              /* parsed windows waiting for their apply */

/* One window after parsing: its ops in line order, and the report lines of its bad
 * lines (each tagged with the number of ops that precede it, to merge in order). */
typedef struct window {
    store_break_op_t *ops;
    size_t *op_line;
    size_t n_ops, cap_ops;
    struct bad_line {
        size_t before_ops; /* ops of this window that come before the line */
        size_t off, len;   /* its report line in bad_text */
    } *bad;
    size_t n_bad, cap_bad;
    buf_t bad_text;
    buf_t report;          /* the apply step's answer text */
    int rc;                /* a store failure: the request ends */
    struct window *next;
} window_t;

typedef struct batch {
    int64_t tenant_id;
    size_t line_no;        /* lines seen so far (parse order) */
    bool skipping;         /* inside a line longer than BATCH_WINDOW */
    bool parsing, applying, body_waiting, finished;
    size_t consumed;       /* body bytes the running parse used */
    window_t *parsed;      /* the window being parsed */
    window_t *head, *tail; /* parsed windows in order; head is applied first */
    size_t queued;
    window_t *applied;     /* the window the running apply works on */
    int rc;
    struct {
        size_t lines, created, replaced, unchanged, deleted, failed;
    } sum;
} batch_t;

static void start_parse(http_request_t *req, batch_t *b);
static void try_apply(http_request_t *req, batch_t *b);
static void maybe_finish(http_request_t *req, batch_t *b);

static window_t *window_new(void)
{
    window_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    buf_init(&w->bad_text, 64 << 20);
    buf_init(&w->report, 64 << 20);
    return w;
}

static void window_free(window_t *w)
{
    if (!w)
        return;
    free(w->ops);
    free(w->op_line);
    free(w->bad);
    buf_deinit(&w->bad_text);
    buf_deinit(&w->report);
    free(w);
}

/* Appends s as a JSON string body (without quotes). Reasons are our own text with
 * quoted client bytes already made printable; escape what JSON needs. */
static int put_json_text(buf_t *o, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            rc = buf_append_char(o, '\\');
        if (!rc && c < 0x20)
            rc = buf_printf(o, "\\u%04x", c);
        else if (!rc)
            rc = buf_append_char(o, (char)c);
    }
    return rc;
}

int api_batch_format_error(buf_t *o, size_t line, int status, const char *const *reasons,
                           size_t n)
{
    int rc = buf_printf(o, "{\"line\":%zu,\"status\":%d,\"reasons\":[", line, status);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = buf_append_str(o, i ? ",\"" : "\"");
        rc = rc ? rc : put_json_text(o, reasons[i]);
        rc = rc ? rc : buf_append_char(o, '"');
    }
    return rc ? rc : buf_append_str(o, "]}\n");
}

/* ---- parse step (worker) ------------------------------------------------ */

int api_batch_line_parse(slice_t line, model_batch_line_t *out, model_errors_t *errs)
{
    if (line.n && line.p[line.n - 1] == '\r')
        line.n--;
    if (slice_trim(line).n == 0)
        return 1;
    return model_batch_line_parse(line.p, line.n, out, errs);
}

static int add_bad(window_t *w, size_t line, int status, const char *const *reasons, size_t n)
{
    if (w->n_bad == w->cap_bad) {
        size_t cap = w->cap_bad ? w->cap_bad * 2 : 16;
        struct bad_line *p = realloc(w->bad, cap * sizeof(*p));
        if (!p)
            return BH_ENOMEM;
        w->bad = p;
        w->cap_bad = cap;
    }
    size_t off = w->bad_text.len;
    int rc = api_batch_format_error(&w->bad_text, line, status, reasons, n);
    if (rc)
        return rc;
    w->bad[w->n_bad++] = (struct bad_line){ w->n_ops, off, w->bad_text.len - off };
    return 0;
}

static store_break_op_t *add_op(window_t *w, size_t line)
{
    if (w->n_ops == w->cap_ops) {
        size_t cap = w->cap_ops ? w->cap_ops * 2 : 256;
        store_break_op_t *ops = realloc(w->ops, cap * sizeof(*ops));
        if (!ops)
            return NULL;
        w->ops = ops;
        size_t *lines = realloc(w->op_line, cap * sizeof(*lines));
        if (!lines)
            return NULL;
        w->op_line = lines;
        w->cap_ops = cap;
    }
    w->op_line[w->n_ops] = line;
    store_break_op_t *op = &w->ops[w->n_ops++];
    memset(op, 0, sizeof(*op));
    return op;
}

/* Parses every complete line of the buffered body into b->parsed. The server does
 * not touch req->body while the parse runs (reading is paused). */
static void parse_work(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    window_t *w = b->parsed;
    const char *p = req->body.p ? req->body.p : "";
    size_t len = req->body.len, off = 0;
    model_errors_t errs;
    for (;;) {
        const char *nl = memchr(p + off, '\n', len - off);
        if (!nl && req->body_error) {
            b->consumed = len; /* the body was cut inside this line: it is not read */
            return;
        }
        if (!nl && !req->body_complete) {
            if (b->skipping) {
                off = len; /* still inside the overlong line */
            } else if (off == 0 && len >= BATCH_WINDOW) {
                const char *reasons[] = { "the line is longer than 1 MiB" };
                b->line_no++;
                b->sum.lines++;
                b->sum.failed++;
                w->rc = add_bad(w, b->line_no, 413, reasons, 1);
                b->skipping = true;
                off = len;
            }
            break;
        }
        size_t end = nl ? (size_t)(nl - p) : len;
        if (end == off && !nl)
            break; /* the body ended with a newline */
        slice_t line = slice_make(p + off, end - off);
        off = nl ? end + 1 : len;
        if (b->skipping) {
            b->skipping = false; /* the end of the overlong line */
            continue;
        }
        b->line_no++;
        model_batch_line_t parsed;
        int prc = api_batch_line_parse(line, &parsed, &errs);
        if (prc == 1)
            continue; /* blank lines are allowed and not reported */
        b->sum.lines++;
        if (prc) {
            const char *reasons[MODEL_REASONS_MAX];
            for (size_t i = 0; i < errs.n; i++)
                reasons[i] = errs.reasons[i];
            b->sum.failed++;
            if ((w->rc = add_bad(w, b->line_no, 400, reasons, errs.n)) != 0)
                break;
            continue;
        }
        store_break_op_t *op = add_op(w, b->line_no);
        if (!op) {
            w->rc = BH_ENOMEM;
            break;
        }
        op->del = parsed.del;
        op->rec = parsed.rec;
    }
    b->consumed = off;
}

static void parse_done(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    window_t *w = b->parsed;
    b->parsed = NULL;
    b->parsing = false;
    if (!req->aborted) {
        buf_consume(&req->body, b->consumed);
        if (req->body_complete)
            buf_reset(&req->body); /* a last line without newline was taken whole */
    }
    if (w->rc && !b->rc)
        b->rc = w->rc;
    if (b->rc || b->finished) {
        window_free(w);
    } else {
        if (b->tail)
            b->tail->next = w;
        else
            b->head = w;
        b->tail = w;
        b->queued++;
        try_apply(req, b);
        if (b->body_waiting)
            start_parse(req, b);
        else if (!req->body_complete && b->queued < BATCH_PIPELINE)
            http_request_more(req); /* read ahead while the apply runs */
    }
    maybe_finish(req, b);
}

/* ---- apply step (worker, one at a time) --------------------------------- */

static void report_result(batch_t *b, buf_t *o, size_t line, const store_break_op_t *op)
{
    const store_write_result_t *r = &op->res;
    if (r->rc) {
        int status = r->rc == BH_ENOTFOUND ? 404 : r->rc == BH_EINVAL ? 400 : 409;
        char missing[64];
        snprintf(missing, sizeof(missing), "no break %lld", (long long)op->rec.id);
        const char *reasons[] = { r->reason[0] ? r->reason
                                  : r->rc == BH_ENOTFOUND ? missing
                                                          : err_str(r->rc) };
        b->sum.failed++;
        if (api_batch_format_error(o, line, status, reasons, 1))
            log_warn("batch report truncated");
        return;
    }
    char v[MODEL_VERSION_LEN + 1] = "";
    const char *what = "unchanged";
    int status = 200;
    switch (r->outcome) {
    case STORE_OUT_CREATED: what = "created"; status = 201; b->sum.created++; break;
    case STORE_OUT_REPLACED: what = "replaced"; b->sum.replaced++; break;
    case STORE_OUT_DELETED: what = "deleted"; status = 204; b->sum.deleted++; break;
    default: b->sum.unchanged++; break;
    }
    if (r->version)
        model_version_format(r->version, v);
    if (buf_printf(o, "{\"line\":%zu,\"status\":%d,\"result\":\"%s\",\"id\":%lld%s%s%s}\n", line,
                   status, what, (long long)op->rec.id, v[0] ? ",\"changeVersion\":\"" : "", v,
                   v[0] ? "\"" : ""))
        log_warn("batch report truncated");
}

/* The bad lines that come before op index `before`, in order. */
static void report_bad_until(window_t *w, size_t *next_bad, size_t before)
{
    while (*next_bad < w->n_bad && w->bad[*next_bad].before_ops <= before) {
        const struct bad_line *bl = &w->bad[(*next_bad)++];
        if (buf_append(&w->report, w->bad_text.p + bl->off, bl->len))
            log_warn("batch report truncated");
    }
}

static void apply_work(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    window_t *w = b->applied;
    store_t *s = api_ctx(req)->store;
    size_t next_bad = 0;
    for (size_t i = 0; i < w->n_ops && !w->rc; i += STORE_BATCH_MAX) {
        size_t n = w->n_ops - i < STORE_BATCH_MAX ? w->n_ops - i : STORE_BATCH_MAX;
        int rc = store_breaks_apply(s, b->tenant_id, w->ops + i, n);
        if (rc) {
            w->rc = rc;
            break;
        }
        for (size_t k = i; k < i + n; k++) {
            report_bad_until(w, &next_bad, k);
            report_result(b, &w->report, w->op_line[k], &w->ops[k]);
        }
    }
    if (!w->rc)
        report_bad_until(w, &next_bad, w->n_ops);
}

static void finish(http_request_t *req, batch_t *b)
{
    char line[320];
    int n;
    b->finished = true;
    if (!req->resp_started && b->rc) {
        api_respond_store_error(req, b->rc);
        return;
    }
    if (!req->resp_started)
        http_respond_begin(req, 200, "application/x-ndjson");
    if (!b->rc && req->body_error) {
        /* The body went past the limit (413) or its time (408): what was read before the cut is applied and
         * reported above; say where reading stopped, then the usual summary. */
        n = snprintf(line, sizeof(line),
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"reasons\":[\"lines "
                     "after line %zu were not read and not applied\"]}}\n",
                     http_error_code(req->body_error),
                     req->body_error == 413 ? "the request body is larger than the limit"
                                            : "the request body was not received in time",
                     b->line_no);
        http_respond_chunk(req, line, (size_t)n);
    }
    if (b->rc)
        n = snprintf(line, sizeof(line),
                     "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"%s: lines that are "
                     "not reported above were not applied\"}}\n",
                     b->rc == BH_ENOMEM ? "out of memory" : "the store failed");
    else
        n = snprintf(line, sizeof(line),
                     "{\"summary\":{\"lines\":%zu,\"created\":%zu,\"replaced\":%zu,"
                     "\"unchanged\":%zu,\"deleted\":%zu,\"failed\":%zu%s}}\n",
                     b->sum.lines, b->sum.created, b->sum.replaced, b->sum.unchanged,
                     b->sum.deleted, b->sum.failed, req->body_error ? ",\"complete\":false" : "");
    http_respond_chunk(req, line, (size_t)n);
    http_respond_end(req);
}

/* Frees the pipeline once nothing runs on a worker any more. */
static void cleanup_if_idle(batch_t *b)
{
    if (b->parsing || b->applying)
        return;
    window_free(b->parsed);
    b->parsed = NULL;
    while (b->head) {
        window_t *next = b->head->next;
        window_free(b->head);
        b->head = next;
    }
    b->tail = NULL;
}

static void apply_done(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    window_t *w = b->applied;
    b->applied = NULL;
    b->applying = false;
    if (w->report.len) {
        if (!req->resp_started)
            http_respond_begin(req, 200, "application/x-ndjson");
        http_respond_chunk(req, w->report.p, w->report.len);
    }
    if (w->rc && !b->rc)
        b->rc = w->rc;
    window_free(w);
    if (!b->rc && !b->finished) {
        try_apply(req, b);
        if (b->body_waiting && !b->parsing)
            start_parse(req, b);
    }
    maybe_finish(req, b);
}

/* Ends the request once no work is on a worker: never earlier, because the jobs
 * use the request and its arena. */
static void maybe_finish(http_request_t *req, batch_t *b)
{
    if (b->finished || b->parsing || b->applying)
        return;
    if (req->aborted) {
        b->finished = true;
        cleanup_if_idle(b);
        log_info("batch ended: the client went away", LOG_STR("rid", req->request_id),
                 LOG_INT("lines", b->sum.lines));
        http_respond_end(req);
        return;
    }
    if (b->rc || (req->body_complete && !b->head && !b->body_waiting)) {
        cleanup_if_idle(b);
        finish(req, b);
    }
}

static void try_apply(http_request_t *req, batch_t *b)
{
    if (b->applying || !b->head || b->rc || b->finished)
        return;
    b->applied = b->head;
    b->head = b->head->next;
    if (!b->head)
        b->tail = NULL;
    b->queued--;
    b->applying = true;
    api_run_write(req, apply_work, apply_done, b);
    /* The pipeline has room again: let the next window in. */
    if (!req->body_complete && !b->body_waiting && !b->parsing)
        http_request_more(req);
}

/* ---- body windows -------------------------------------------------------- */

static void start_parse(http_request_t *req, batch_t *b)
{
    if (b->parsing || b->finished || b->rc || req->aborted)
        return;
    if (b->queued >= BATCH_PIPELINE) {
        b->body_waiting = true; /* parsed after an apply makes room */
        return;
    }
    b->body_waiting = false;
    b->parsed = window_new();
    if (!b->parsed) {
        b->rc = BH_ENOMEM;
        maybe_finish(req, b);
        return;
    }
    b->parsing = true;
    api_run(req, parse_work, parse_done, b);
}

/* The server has a window of body bytes (or the end of the body) for us. */
static void on_batch_body(http_request_t *req)
{
    batch_t *b = req->ctx;
    if (req->aborted) {
        b->body_waiting = false;
        maybe_finish(req, b);
        return;
    }
    if (b->parsing) {
        b->body_waiting = true;
        return;
    }
    start_parse(req, b);
    maybe_finish(req, b);
}

void api_breaks_batch(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_BREAKS_WRITE);
    if (!c)
        return;
    if (!api_media_type_is(req, "application/x-ndjson") &&
        !api_media_type_is(req, "application/jsonl")) {
        const char *reasons[] = { "Content-Type must be application/x-ndjson" };
        http_respond_error(req, 415, "unsupported media type", reasons, 1);
        return;
    }
    batch_t *b = arena_alloc(&req->arena, sizeof(*b));
    if (!b) {
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    memset(b, 0, sizeof(*b));
    b->tenant_id = c->tenant_id;
    req->ctx = b;
    req->on_body = on_batch_body;
}
