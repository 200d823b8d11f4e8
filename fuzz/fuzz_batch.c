/*
 * fuzz_batch.c: the body of POST /breaks/$batch, line by line, as batch.c reads it.
 *
 * The input is a whole NDJSON body. It is split at '\n' exactly as the parse step
 * does, every line goes to api_batch_line_parse, and every refused line gets its
 * report line from api_batch_format_error (reasons can quote the client's bytes).
 * The per-field checks of a break are model_break_parse's, which fuzz_model covers
 * on its own; this target covers the line framing (CR, blank lines, the last line
 * without '\n') and the report.
 *
 * Invariants checked beyond "no crash, no leak":
 *   - a line is blank (1), parsed (0) or refused with 1..MODEL_REASONS_MAX reasons;
 *   - a blank line is exactly one of spaces and tabs only once a '\r' is dropped;
 *   - every report line is one JSON object {"line","status","reasons"} and a '\n',
 *     whose reasons are the parser's, in order, byte for byte.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_report(const buf_t *b, size_t line, const model_errors_t *errs)
{
    if (b->len == 0 || b->p[b->len - 1] != '\n' || memchr(b->p, '\n', b->len - 1))
        abort();
    json_error_t e;
    json_t *j = json_loadb(b->p, b->len - 1, JSON_REJECT_DUPLICATES, &e);
    json_t *r = json_object_get(j, "reasons");
    if (json_object_size(j) != 3 ||
        json_integer_value(json_object_get(j, "line")) != (json_int_t)line ||
        json_integer_value(json_object_get(j, "status")) != 400 || json_array_size(r) != errs->n)
        abort();
    for (size_t i = 0; i < errs->n; i++) {
        const char *s = json_string_value(json_array_get(r, i));
        if (!s || strcmp(s, errs->reasons[i]) != 0)
            abort();
    }
    json_decref(j);
}

/* Blank as SPEC §4 means it: spaces and tabs only, before an optional '\r'. */
static bool blank(slice_t l)
{
    if (l.n && l.p[l.n - 1] == '\r')
        l.n--;
    for (size_t i = 0; i < l.n; i++)
        if (l.p[i] != ' ' && l.p[i] != '\t')
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    buf_t report;
    buf_init(&report, 1 << 20);
    size_t off = 0, line_no = 0;
    /* Bounded: each round consumes at least one byte or ends. */
    while (off < size) {
        const char *nl = memchr(p + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - p) : size;
        slice_t line = slice_make(p + off, end - off);
        off = nl ? end + 1 : size;
        line_no++;
        model_batch_line_t l;
        model_errors_t errs;
        errs.n = 0;
        int rc = api_batch_line_parse(line, &l, &errs);
        if (rc == 1) {
            if (!blank(line))
                abort();
            continue;
        }
        if (blank(line))
            abort();
        if (rc == 0) {
            if (errs.n != 0 || l.rec.id < 1)
                abort();
            continue;
        }
        if (rc == BH_ENOMEM)
            continue;
        if (rc != BH_EINVAL || errs.n < 1 || errs.n > MODEL_REASONS_MAX)
            abort();
        const char *reasons[MODEL_REASONS_MAX];
        for (size_t i = 0; i < errs.n; i++)
            reasons[i] = errs.reasons[i];
        buf_reset(&report);
        if (api_batch_format_error(&report, line_no, 400, reasons, errs.n) == 0)
            check_report(&report, line_no, &errs);
    }
    buf_deinit(&report);
    return 0;
}
