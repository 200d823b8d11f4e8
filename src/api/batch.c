/*
 * batch.c: POST /breaks/$batch (SPEC §4): a stream of NDJSON lines, each
 * {"op":"upsert","data":{…break…}} or {"op":"delete","id":N}, applied in order.
 *
 * The body is streamed, never held whole: the server hands over up to
 * BATCH_WINDOW bytes at a time; a worker parses the complete lines among them and
 * applies them in transactions of at most STORE_BATCH_MAX lines (each line in its
 * own savepoint, so a bad line is reported and the others still apply); then the
 * report of those lines is sent and the next part of the body is read. The answer
 * is NDJSON too, streamed with chunked encoding as the transactions commit: one
 * line per input line that is not blank, then a summary line. Because lines are
 * committed as they go, a client that loses the connection half way finds every
 * line that was reported as applied in the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/log.h"

#define BATCH_WINDOW API_BATCH_WINDOW /* also the longest line */

typedef struct batch {
    int64_t tenant_id;
    size_t line_no;           /* lines seen so far */
    bool skipping;            /* inside a line longer than BATCH_WINDOW */
    size_t consumed;          /* body bytes the current job used */
    store_break_op_t *ops;    /* STORE_BATCH_MAX */
    size_t *op_line;          /* the input line of each op */
    buf_t report;             /* what the current job answers */
    int rc;                   /* a store failure ends the request */
    struct {
        size_t lines, created, replaced, unchanged, deleted, failed;
    } sum;
} batch_t;

static void report_error(batch_t *b, size_t line, int status, const char *const *reasons,
                         size_t n)
{
    int rc = buf_printf(&b->report, "{\"line\":%zu,\"status\":%d,\"reasons\":[", line, status);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = buf_append_str(&b->report, i ? ",\"" : "\"");
        /* Reasons are our own text: ASCII field names and quoted values; escape what JSON
         * needs. */
        for (const char *p = reasons[i]; *p && !rc; p++) {
            if (*p == '"' || *p == '\\')
                rc = buf_append_char(&b->report, '\\');
            if (!rc && (unsigned char)*p < 0x20)
                rc = buf_printf(&b->report, "\\u%04x", (unsigned char)*p);
            else if (!rc)
                rc = buf_append_char(&b->report, *p);
        }
        rc = rc ? rc : buf_append_char(&b->report, '"');
    }
    rc = rc ? rc : buf_append_str(&b->report, "]}\n");
    b->sum.failed++;
    (void)rc; /* the report is bounded by the window's lines; a cut report is still valid NDJSON up to the cut */
}

static void report_result(batch_t *b, size_t line, const store_break_op_t *op)
{
    const store_write_result_t *r = &op->res;
    if (r->rc) {
        int status = r->rc == BH_ENOTFOUND ? 404 : r->rc == BH_EINVAL ? 400 : 409;
        char missing[64];
        snprintf(missing, sizeof(missing), "no break %lld", (long long)op->rec.id);
        const char *reasons[] = { r->reason[0] ? r->reason
                                  : r->rc == BH_ENOTFOUND ? missing
                                                          : err_str(r->rc) };
        report_error(b, line, status, reasons, 1);
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
    int rc = buf_printf(&b->report, "{\"line\":%zu,\"status\":%d,\"result\":\"%s\",\"id\":%lld%s%s%s}\n",
                        line, status, what, (long long)op->rec.id, v[0] ? ",\"changeVersion\":\"" : "",
                        v, v[0] ? "\"" : "");
    (void)rc;
}

/* Applies the ops gathered so far in one transaction and reports them. */
static int flush_ops(store_t *s, batch_t *b, size_t n)
{
    if (n == 0)
        return 0;
    int rc = store_breaks_apply(s, b->tenant_id, b->ops, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        report_result(b, b->op_line[i], &b->ops[i]);
    return 0;
}

/* On the worker: parses and applies every complete line of the buffered body. */
static void batch_work(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    store_t *s = api_ctx(req)->store;
    const char *p = req->body.p ? req->body.p : "";
    size_t len = req->body.len, off = 0, n_ops = 0;
    model_errors_t errs;
    b->rc = 0;
    for (;;) {
        const char *nl = memchr(p + off, '\n', len - off);
        if (!nl && !req->body_complete) {
            if (b->skipping) {
                off = len; /* still inside the overlong line */
                break;
            }
            if (off == 0 && len >= BATCH_WINDOW) {
                /* A line longer than the window: report it and drop it up to its end. */
                const char *reasons[] = { "the line is longer than 1 MiB" };
                b->line_no++;
                b->sum.lines++;
                report_error(b, b->line_no, 413, reasons, 1);
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
            b->skipping = false; /* the rest of the overlong line */
            continue;
        }
        b->line_no++;
        if (line.n && line.p[line.n - 1] == '\r')
            line.n--;
        if (slice_trim(line).n == 0)
            continue; /* blank lines are allowed and not reported */
        b->sum.lines++;
        model_batch_line_t parsed;
        if (model_batch_line_parse(line.p, line.n, &parsed, &errs)) {
            /* Earlier lines must be committed and reported first: order is the contract. */
            if ((b->rc = flush_ops(s, b, n_ops)) != 0)
                break;
            n_ops = 0;
            const char *reasons[MODEL_REASONS_MAX];
            for (size_t i = 0; i < errs.n; i++)
                reasons[i] = errs.reasons[i];
            report_error(b, b->line_no, 400, reasons, errs.n);
            continue;
        }
        store_break_op_t *op = &b->ops[n_ops];
        memset(op, 0, sizeof(*op));
        op->del = parsed.del;
        op->rec = parsed.rec;
        b->op_line[n_ops++] = b->line_no;
        if (n_ops == STORE_BATCH_MAX) {
            if ((b->rc = flush_ops(s, b, n_ops)) != 0)
                break;
            n_ops = 0;
        }
    }
    if (!b->rc)
        b->rc = flush_ops(s, b, n_ops);
    b->consumed = off;
}

static void batch_finish(http_request_t *req, batch_t *b)
{
    if (!req->resp_started) {
        if (b->rc) {
            api_respond_store_error(req, b->rc);
            goto out;
        }
        http_respond_begin(req, 200, "application/x-ndjson");
    }
    if (b->rc) {
        /* The answer has started: say in its last line that the rest was not applied. */
        buf_reset(&b->report);
        if (buf_printf(&b->report, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":"
                                   "\"the store failed: lines after line %zu were not applied\"}}\n",
                       b->line_no) == 0)
            http_respond_chunk(req, b->report.p, b->report.len);
    } else {
        buf_reset(&b->report);
        if (buf_printf(&b->report,
                       "{\"summary\":{\"lines\":%zu,\"created\":%zu,\"replaced\":%zu,"
                       "\"unchanged\":%zu,\"deleted\":%zu,\"failed\":%zu}}\n",
                       b->sum.lines, b->sum.created, b->sum.replaced, b->sum.unchanged,
                       b->sum.deleted, b->sum.failed) == 0)
            http_respond_chunk(req, b->report.p, b->report.len);
    }
    http_respond_end(req);
out:
    buf_deinit(&b->report);
    free(b->ops);
    free(b->op_line);
    b->ops = NULL;
    b->op_line = NULL;
}

static void batch_done(http_request_t *req, void *arg)
{
    batch_t *b = arg;
    buf_consume(&req->body, b->consumed);
    if (b->report.len) {
        if (!req->resp_started)
            http_respond_begin(req, 200, "application/x-ndjson");
        http_respond_chunk(req, b->report.p, b->report.len);
        buf_reset(&b->report);
    }
    if (b->rc || req->body_complete) {
        if (req->body_complete && !b->rc && req->body.len) {
            /* The last line had no newline: batch_work took it as complete. */
            buf_consume(&req->body, req->body.len);
        }
        batch_finish(req, b);
        return;
    }
    http_request_more(req);
}

static void on_batch_body(http_request_t *req)
{
    api_run(req, batch_work, batch_done, req->ctx);
}

void api_breaks_batch(http_request_t *req)
{
    const auth_claims_t *c = api_authorize(req, SCOPE_BREAKS_WRITE);
    if (!c)
        return;
    slice_t ct = http_request_header(req, "content-type");
    if (!ct.p || !(slice_starts_with(ct, "application/x-ndjson") ||
                   slice_starts_with(ct, "application/jsonl"))) {
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
    b->ops = malloc(STORE_BATCH_MAX * sizeof(*b->ops));
    b->op_line = malloc(STORE_BATCH_MAX * sizeof(*b->op_line));
    if (!b->ops || !b->op_line) {
        free(b->ops);
        free(b->op_line);
        http_respond_error(req, 503, "out of memory", NULL, 0);
        return;
    }
    /* Reports are short lines; a window of lines stays well under this bound. */
    buf_init(&b->report, 64 << 20);
    req->ctx = b;
    req->on_body = on_batch_body;
}
