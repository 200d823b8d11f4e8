/*
 * log.h: structured logging, one line per event, to stderr (or a file).
 *
 * Lines are JSON objects or logfmt, chosen at start. Callers pass key/value
 * pairs; values are escaped, so network data can be logged safely. Secrets
 * are never passed here. Thread-safe: a line is written with one write(2) (more only
 * after a short write), under a lock, so lines of different threads never interleave
 * inside a line.
 *
 * A thread that logs a line per request can batch its lines (log_buffer_begin):
 * they are then appended to a buffer of its own and written together by log_flush,
 * one write(2) for many lines. The HTTP server's loop thread does so and flushes once
 * per loop iteration (src/http/server.c): a write(2) per access-log line held its
 * peak GET /healthz rate 15 % lower (bench/README.md). What batching means for the
 * file:
 *   - a thread's buffered lines are at most one loop iteration old, and the loop
 *     never waits for I/O with lines buffered;
 *   - lines at LOG_WARN and above are never delayed: they are written at once,
 *     together with everything the thread buffered before them, in order;
 *   - a crash or `kill -9` loses at most the lines the thread logged in the
 *     iteration in progress (request lines and other info lines, never a warning or
 *     an error), never data: a write is committed to the store before any answer;
 *   - lines of different threads may reach the file in another order than they
 *     were logged (each thread's own lines stay in order), as the "ts" field shows.
 */
#ifndef BREAKHOOK_CORE_LOG_H
#define BREAKHOOK_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level_t;
typedef enum { LOG_FORMAT_JSON, LOG_FORMAT_LOGFMT } log_format_t;

/* Key/value fields: a string value, or an integer when s is NULL. */
typedef struct log_field {
    const char *key;
    const char *s;
    size_t n;       /* length of s; (size_t)-1 means strlen(s) */
    int64_t i;
} log_field_t;

static inline const char *log__nonnull(const char *s)
{
    return s ? s : "";
}

#define LOG_STR(k, v) ((log_field_t){ (k), log__nonnull(v), (size_t)-1, 0 })
#define LOG_STRN(k, v, len) ((log_field_t){ (k), (v), (len), 0 })
#define LOG_INT(k, v) ((log_field_t){ (k), NULL, 0, (int64_t)(v) })

/* Configures the logger; call before any thread logs. path NULL means stderr. Lines
 * the calling thread has buffered are written to the old destination first; other
 * threads' buffered lines go to the new one at their next flush. */
BH_MUST_USE int log_setup(log_level_t level, log_format_t format, const char *path);
/* Reopens the log file (SIGHUP, after rotation). A no-op on stderr. Any thread may
 * call it. Lines the calling thread has buffered are written to the old file first;
 * other threads' buffered lines go to the new file at their next flush. */
void log_reopen(void);
bool log_enabled(log_level_t level);

BH_MUST_USE int log_level_parse(const char *s, log_level_t *out);
BH_MUST_USE int log_format_parse(const char *s, log_format_t *out);

/* Writes one line: time, level, msg, then the fields in order. Any thread may call
 * it; the line is copied, so nothing passed in is kept. On a thread that buffers
 * (log_buffer_begin) a line below LOG_WARN is appended to the thread's buffer, which
 * is written first when the line does not fit in what is left of it. */
void log_write(log_level_t level, const char *msg, const log_field_t *fields, size_t n);

/* ---- per-thread batching --------------------------------------------------------- */

/* The size of a thread's buffer; a line is at most 16 KiB, so one always fits. */
#define LOG_BUFFER_SIZE (64 << 10)

/* From now on the calling thread's lines below LOG_WARN go to a buffer of its own
 * (LOG_BUFFER_SIZE bytes, allocated here and owned by the thread) until
 * log_buffer_end. Calls nest: buffering stops at the log_buffer_end matching the
 * first log_buffer_begin. Never blocks; when the buffer cannot be allocated the
 * thread's lines are simply written at once, as before. The thread must call
 * log_flush often enough (once per loop iteration) and log_buffer_end before it
 * exits: lines still buffered when a thread exits are lost. */
void log_buffer_begin(void);
/* Writes the calling thread's buffered lines with one write(2), under the same lock
 * as single lines, so no other thread's line lands inside one of them. A no-op when
 * nothing is buffered (a thread-local check, no lock), so it is cheap to call once
 * per loop iteration. May block as long as write(2) on the log file does. */
void log_flush(void);
/* Flushes, then ends one log_buffer_begin: after the outermost one the thread's
 * lines are written at once again and its buffer is freed. A no-op on a thread that
 * does not buffer. */
void log_buffer_end(void);

#define LOG_FIELDS(...) ((const log_field_t[]){ __VA_ARGS__ }), \
    (sizeof((const log_field_t[]){ __VA_ARGS__ }) / sizeof(log_field_t))
#define log_info(msg, ...) log_write(LOG_INFO, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_warn(msg, ...) log_write(LOG_WARN, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_error(msg, ...) log_write(LOG_ERROR, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_debug(msg, ...) log_write(LOG_DEBUG, (msg), LOG_FIELDS(__VA_ARGS__))

#endif
