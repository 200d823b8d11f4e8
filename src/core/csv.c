/*
 * csv.c: the RFC 4180 state machine behind csv.h.
 *
 * One byte at a time, with all state in csv_t, so a chunk boundary can fall
 * anywhere (between the two quotes of an escape, between CR and LF) without a
 * special case: the next call simply continues in the state the last one left.
 */
#include "core/csv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_START,    /* at the start of a field */
    ST_UNQUOTED, /* inside an unquoted field */
    ST_QUOTED,   /* inside a quoted field */
    ST_QUOTE,    /* a '"' inside a quoted field: an escape or the closing quote */
};

int csv_init(csv_t *p, size_t max_bytes, size_t max_fields)
{
    memset(p, 0, sizeof(*p));
    if (max_bytes == 0 || max_fields == 0 || max_fields > SIZE_MAX / sizeof(slice_t))
        return BH_EINVAL;
    p->buf = malloc(max_bytes);
    p->fields = malloc(max_fields * sizeof(*p->fields));
    if (!p->buf || !p->fields) {
        csv_deinit(p);
        return BH_ENOMEM;
    }
    p->max_bytes = max_bytes;
    p->max_fields = max_fields;
    p->state = ST_START;
    p->line = 1;
    p->rec_line = 1;
    return 0;
}

void csv_deinit(csv_t *p)
{
    free(p->buf);
    free(p->fields);
    p->buf = NULL;
    p->fields = NULL;
}

const char *csv_error(const csv_t *p)
{
    return p->err;
}

size_t csv_error_line(const csv_t *p)
{
    return p->err_line;
}

size_t csv_line(const csv_t *p)
{
    return p->line;
}

static void record_reset(csv_t *p)
{
    p->state = ST_START;
    p->len = 0;
    p->n_fields = 0;
    p->raw = 0;
    p->discard = false;
}

/* Enters discard mode for the rest of the record and remembers why. */
__attribute__((format(printf, 4, 5))) static int fail(csv_t *p, int rc, size_t line,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    p->err_line = line;
    p->discard = true;
    return rc;
}

/* Closes the field in progress. The caller has made sure there is room: the
 * check happens when a ',' announces one more field, so the error points there. */
static void field_end(csv_t *p)
{
    slice_t *f = &p->fields[p->n_fields++];
    f->n = p->len - (size_t)(f->p - p->buf);
}

static void field_begin(csv_t *p)
{
    p->fields[p->n_fields].p = p->buf + p->len;
}

static void record_out(csv_t *p, csv_record_t *rec)
{
    field_end(p);
    rec->fields = p->fields;
    rec->n = p->n_fields;
    rec->line = p->rec_line;
    /* The slices point into buf, which the next record overwrites only in the
     * next call: record_reset just rewinds the counters. */
    record_reset(p);
}

/* The transitions of a record being dropped after an error: the quote rules
 * still decide where the record ends (a line end inside quotes does not end
 * it), but nothing is stored, counted or reported. Returns true at the end of
 * the record. */
static bool discard_byte(csv_t *p, char c)
{
    switch (p->state) {
    case ST_START:
    case ST_UNQUOTED:
        if (c == '\n' || c == '\r')
            return true;
        if (c == '"' && p->state == ST_START)
            p->state = ST_QUOTED;
        else
            p->state = c == ',' ? ST_START : ST_UNQUOTED;
        return false;
    case ST_QUOTED:
        if (c == '"')
            p->state = ST_QUOTE;
        return false;
    default: /* ST_QUOTE */
        if (c == '\n' || c == '\r')
            return true;
        p->state = c == '"' ? ST_QUOTED : c == ',' ? ST_START : ST_UNQUOTED;
        return false;
    }
}

/* Advances the line counter past byte c: LF, CR and CRLF each end one line. */
static void count_line(csv_t *p, char c)
{
    if (c == '\n') {
        if (!p->prev_cr)
            p->line++;
        p->prev_cr = false;
    } else if (c == '\r') {
        p->line++;
        p->prev_cr = true;
    } else {
        p->prev_cr = false;
    }
}

int csv_parse(csv_t *p, const char *data, size_t n, bool eof, csv_record_t *rec,
              size_t *consumed)
{
    size_t i = 0;
    int rc = CSV_MORE;
    while (i < n) {
        char c = data[i];
        size_t line = p->line;
        count_line(p, c);
        i++;
        if (p->discard) {
            if (discard_byte(p, c))
                record_reset(p);
            continue;
        }
        bool end = c == '\n' || c == '\r';
        if (end && p->state != ST_QUOTED) {
            if (p->raw == 0)
                continue; /* an empty line, or the LF of a CRLF that ended a record */
            record_out(p, rec);
            rc = CSV_RECORD;
            goto out;
        }
        if (p->raw == 0) {
            p->rec_line = line;
            field_begin(p);
        }
        if (++p->raw > p->max_bytes) {
            (void)discard_byte(p, c); /* never a record end: line ends only count when quoted */
            rc = fail(p, BH_ETOOBIG, line, "the record is longer than %zu bytes", p->max_bytes);
            goto out;
        }
        switch (p->state) {
        case ST_START:
            if (c == '"') {
                p->state = ST_QUOTED;
                p->quote_line = line;
                continue;
            }
            p->state = ST_UNQUOTED;
            break; /* the byte is handled as the first of an unquoted field */
        case ST_QUOTED:
            if (c == '"')
                p->state = ST_QUOTE;
            else
                p->buf[p->len++] = c;
            continue;
        case ST_QUOTE:
            if (c == '"') {
                p->buf[p->len++] = '"';
                p->state = ST_QUOTED;
                continue;
            }
            if (c != ',') {
                p->state = ST_UNQUOTED; /* lenient from here on: the record is dropped */
                rc = fail(p, BH_EINVAL, line, "'%c' after the closing quote of a field "
                          "(only ',' or a line end may follow)", c >= 0x20 && c < 0x7f ? c : '?');
                goto out;
            }
            break; /* the ',' */
        default:
            break;
        }
        /* ST_UNQUOTED, or the ',' after a closing quote. */
        if (c == ',') {
            field_end(p);
            p->state = ST_START;
            if (p->n_fields == p->max_fields) {
                rc = fail(p, BH_ETOOBIG, line, "more than %zu fields", p->max_fields);
                goto out;
            }
            field_begin(p);
        } else if (c == '"') {
            rc = fail(p, BH_EINVAL, line, "a '\"' inside an unquoted field (quote the whole "
                      "field and double the quote)");
            goto out;
        } else {
            p->buf[p->len++] = c;
        }
    }
    if (!eof)
        goto out;
    /* The end of the input ends the last record, whatever line end it lacks. */
    if (p->discard) {
        record_reset(p);
        rc = CSV_END;
    } else if (p->raw == 0) {
        rc = CSV_END;
    } else if (p->state == ST_QUOTED) {
        rc = fail(p, BH_EINVAL, p->quote_line, "a quoted field is not closed before the end "
                  "of the input");
        record_reset(p);
    } else {
        record_out(p, rec);
        rc = CSV_RECORD;
    }
out:
    *consumed = i;
    return rc;
}
