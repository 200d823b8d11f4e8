/*
 * log.h: structured logging, one line per event, to stderr (or a file).
 *
 * Lines are JSON objects or logfmt, chosen at start. Callers pass key/value
 * pairs; values are escaped, so network data can be logged safely. Secrets
 * are never passed here. Thread-safe: a line is written with one write(2).
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

/* Configures the logger; call before any thread logs. path NULL means stderr. */
BH_MUST_USE int log_setup(log_level_t level, log_format_t format, const char *path);
/* Reopens the log file (SIGHUP, after rotation). A no-op on stderr. */
void log_reopen(void);
bool log_enabled(log_level_t level);

BH_MUST_USE int log_level_parse(const char *s, log_level_t *out);
BH_MUST_USE int log_format_parse(const char *s, log_format_t *out);

/* Writes one line: time, level, msg, then the fields in order. */
void log_write(log_level_t level, const char *msg, const log_field_t *fields, size_t n);

#define LOG_FIELDS(...) ((const log_field_t[]){ __VA_ARGS__ }), \
    (sizeof((const log_field_t[]){ __VA_ARGS__ }) / sizeof(log_field_t))
#define log_info(msg, ...) log_write(LOG_INFO, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_warn(msg, ...) log_write(LOG_WARN, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_error(msg, ...) log_write(LOG_ERROR, (msg), LOG_FIELDS(__VA_ARGS__))
#define log_debug(msg, ...) log_write(LOG_DEBUG, (msg), LOG_FIELDS(__VA_ARGS__))

#endif
