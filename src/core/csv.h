/*
 * csv.h: an RFC 4180 record parser for input that arrives in chunks.
 *
 * The grammar: fields separated by ','; a field is either unquoted (no '"', no
 * line end) or enclosed in '"' with '""' standing for one quote and line ends
 * allowed inside. Records end at LF, CRLF or a lone CR. A line with no bytes at
 * all between two line ends is skipped (a spreadsheet's trailing blank lines);
 * a line holding only "" is a record with one empty field.
 *
 * Push model: the caller hands over whatever bytes it has; the parser copies the
 * field contents into its own buffer (allocated once, at init, with the largest
 * record allowed) and keeps its state between calls, so a record may be split
 * across any number of chunks at any byte. Each call stops after one record, and
 * says how many of the offered bytes it used, so the caller offers the rest
 * again. Memory never grows with the input: a record past max_bytes or
 * max_fields is an error, not a reallocation.
 *
 * Errors name the physical line (1-based, counting every LF, CRLF and lone CR,
 * inside quotes too) where they happen, so a user can find them in an editor.
 * After an error the parser recovers by itself: it drops the rest of the bad
 * record (following the quote rules leniently, so a quoted line end does not
 * end it) and the next call goes on with the record after it.
 *
 * Single-threaded: a parser belongs to one caller. No libc allocation after
 * csv_init.
 */
#ifndef BREAKHOOK_CORE_CSV_H
#define BREAKHOOK_CORE_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/slice.h"

/* What csv_parse found. Negative values are BH_E* errors (see csv_parse). */
enum {
    CSV_MORE = 0,   /* every offered byte was used and no record ended: offer more */
    CSV_RECORD = 1, /* a record is in *rec */
    CSV_END = 2,    /* eof and nothing left */
};

#define CSV_ERROR_MAX 96

typedef struct csv {
    /* Limits, fixed at init. */
    size_t max_bytes;         /* raw bytes of one record, quotes and escapes included */
    size_t max_fields;
    /* Storage for one record, allocated at init. */
    char *buf;                /* max_bytes: field contents, unescaped */
    slice_t *fields;          /* max_fields: slices into buf */
    /* The record in progress. */
    int state;
    size_t len;               /* bytes of buf in use */
    size_t n_fields;          /* fields finished */
    size_t raw;               /* raw bytes of the record so far */
    size_t rec_line;          /* line where the record started */
    size_t quote_line;        /* line where the open quoted field started */
    bool discard;             /* dropping the rest of a record that had an error */
    /* Position. */
    size_t line;              /* the line of the next byte */
    bool prev_cr;             /* the last byte was CR: an LF now ends the same line */
    bool skip_lf;             /* a record just ended at CR: an LF now belongs to it */
    /* The last error. */
    size_t err_line;
    char err[CSV_ERROR_MAX];
} csv_t;

/* One record, borrowed from the parser: valid until the next csv_parse or
 * csv_deinit. */
typedef struct csv_record {
    const slice_t *fields;
    size_t n;                 /* >= 1 */
    size_t line;              /* the line the record starts on */
} csv_record_t;

/* Embeds a parser for records of at most max_bytes raw bytes (the line end not
 * counted) and max_fields fields; both must be at least 1. Allocates both
 * buffers now. BH_EINVAL for a zero limit, BH_ENOMEM. */
BH_MUST_USE int csv_init(csv_t *p, size_t max_bytes, size_t max_fields);
/* Frees the buffers; csv_deinit on a zeroed or already deinit'd parser is a no-op. */
void csv_deinit(csv_t *p);

/* Parses from (data, n), which continues the bytes of the previous calls; eof
 * says that nothing follows data. *consumed gets how many bytes of data were used
 * (never more than n); the caller passes the others again, with what follows them.
 * Returns:
 *   CSV_RECORD  a record is in *rec; *consumed includes its line end (the LF of a
 *               CRLF may come with the next call, and is then skipped).
 *   CSV_MORE    (only when !eof) all n bytes were used; the record is not finished.
 *   CSV_END     (only when eof) everything was used and no record is left.
 *   BH_EINVAL   a syntax error: a '"' inside an unquoted field, a character other
 *               than ',' or a line end after a closing quote, or (at eof) a quoted
 *               field never closed. csv_error() and csv_error_line() say which.
 *   BH_ETOOBIG  the record has more than max_bytes raw bytes or max_fields fields.
 * After an error *consumed includes the offending byte, and parsing goes on with
 * the next call (the rest of the bad record is dropped). Never fails otherwise. */
BH_MUST_USE int csv_parse(csv_t *p, const char *data, size_t n, bool eof, csv_record_t *rec,
                          size_t *consumed);

/* The last error's message ("a '\"' inside an unquoted field", ...) and line. */
const char *csv_error(const csv_t *p);
size_t csv_error_line(const csv_t *p);

/* The line the next byte belongs to: after CSV_END, one past the last line. */
size_t csv_line(const csv_t *p);

#endif
