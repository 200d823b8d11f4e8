#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"

static struct {
    log_level_t level;
    log_format_t format;
    int fd;
    char path[1024];
    pthread_mutex_t lock;
} L = { LOG_INFO, LOG_FORMAT_JSON, 2, "", PTHREAD_MUTEX_INITIALIZER };

static const char *level_names[] = { "debug", "info", "warn", "error", "off" };

/* A thread's batch of lines (log_buffer_begin). Thread-local, so appending needs no
 * lock; only writing it out takes L.lock. p is NULL while the thread does not buffer
 * (or its buffer could not be allocated): then every line is written at once. */
typedef struct log_batch {
    char *p;        /* LOG_BUFFER_SIZE bytes */
    size_t len;
    unsigned depth; /* log_buffer_begin calls not ended yet */
} log_batch_t;

static _Thread_local log_batch_t T;

/* Writes all of p unless the file fails: retried after EINTR and after a short write
 * (a pipe, a signal), dropped on any other error, since logging never stops its
 * caller. Called with L.lock held, so the bytes are never split by another thread's. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Writes the calling thread's batch to fd and empties it. Called with L.lock held. */
static void batch_write_locked(int fd)
{
    if (T.len) {
        write_all(fd, T.p, T.len);
        T.len = 0;
    }
}

int log_setup(log_level_t level, log_format_t format, const char *path)
{
    int fd = 2;
    if (path && *path) {
        if (strlen(path) >= sizeof(L.path))
            return BH_EINVAL;
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return BH_EIO;
    }
    pthread_mutex_lock(&L.lock);
    batch_write_locked(L.fd); /* the caller's lines go where they were meant to go */
    int old = L.fd;
    L.level = level;
    L.format = format;
    L.fd = fd;
    if (fd != 2)
        snprintf(L.path, sizeof(L.path), "%s", path);
    else
        L.path[0] = '\0';
    pthread_mutex_unlock(&L.lock);
    if (old != 2)
        close(old);
    return 0;
}

void log_reopen(void)
{
    if (!L.path[0])
        return;
    int fd = open(L.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    pthread_mutex_lock(&L.lock);
    batch_write_locked(L.fd);
    int old = L.fd;
    L.fd = fd;
    pthread_mutex_unlock(&L.lock);
    close(old);
}

void log_buffer_begin(void)
{
    if (T.depth++ > 0)
        return;
    T.p = malloc(LOG_BUFFER_SIZE);
    T.len = 0;
}

void log_flush(void)
{
    if (!T.len)
        return;
    pthread_mutex_lock(&L.lock);
    batch_write_locked(L.fd);
    pthread_mutex_unlock(&L.lock);
}

void log_buffer_end(void)
{
    if (T.depth == 0)
        return;
    log_flush();
    if (--T.depth > 0)
        return;
    free(T.p);
    T.p = NULL;
}

bool log_enabled(log_level_t level)
{
    return level >= L.level && level != LOG_OFF;
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return BH_EINVAL;
}

int log_format_parse(const char *s, log_format_t *out)
{
    if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else if (strcmp(s, "logfmt") == 0)
        *out = LOG_FORMAT_LOGFMT;
    else
        return BH_EINVAL;
    return 0;
}

/* Escapes a value for a JSON string or a quoted logfmt value; both accept \" \\ \n
 * and \uXXXX for control bytes. Invalid UTF-8 passes through unchanged in logfmt and
 * is replaced in JSON so every line stays parseable. */
#define LOG_LINE_MAX 16384
_Static_assert(LOG_LINE_MAX <= LOG_BUFFER_SIZE, "a line must fit in an empty batch");
#define LOG_VALUE_ROOM (LOG_LINE_MAX - 256) /* what values may fill; the rest closes the line */

/* Bytes written as they are: everything but quotes, backslashes, controls and (in
 * JSON) bytes of UTF-8 sequences. */
static bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f &&
           (c < 0x80 || L.format != LOG_FORMAT_JSON);
}

static void put_escaped(buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->len >= LOG_VALUE_ROOM) {
            if (buf_append_str(b, "...")) {
            }
            return; /* the value is cut, the line stays whole */
        }
        /* A run of plain bytes in one copy (an access line is nearly all of them),
         * bounded by the room values may fill. */
        size_t run = 0;
        while (i + run < n && run < LOG_VALUE_ROOM - b->len &&
               plain_byte((unsigned char)s[i + run]))
            run++;
        if (run) {
            if (buf_append(b, s + i, run))
                return;
            i += run - 1;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        int rc = 0;
        if (c == '"' || c == '\\') {
            rc = buf_append_char(b, '\\');
            rc = rc ? rc : buf_append_char(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            rc = buf_printf(b, "\\u%04x", c);
        } else if (c >= 0x80 && L.format == LOG_FORMAT_JSON) {
            rc = buf_append_char(b, '?');
        } else {
            rc = buf_append_char(b, (char)c);
        }
        if (rc)
            return; /* line full: the rest is cut */
    }
}

/* An integer in decimal, without printf (the access log writes several per line). */
static int put_int(buf_t *b, int64_t v)
{
    char tmp[24];
    size_t k = sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--k] = '-';
    return buf_append(b, tmp + k, sizeof(tmp) - k);
}

/* ,"key":"value" in JSON, or  key="value" in logfmt (keys are ours, never escaped);
 * an integer value when s is NULL. */
static void put_field(buf_t *b, bool first, const char *key, const char *s, size_t n,
                      int64_t i)
{
    bool json = L.format == LOG_FORMAT_JSON;
    int rc = first ? 0 : buf_append_char(b, json ? ',' : ' ');
    if (json)
        rc = rc ? rc : buf_append_char(b, '"');
    rc = rc ? rc : buf_append_str(b, key);
    rc = rc ? rc : buf_append_str(b, json ? "\":" : "=");
    if (s) {
        rc = rc ? rc : buf_append_char(b, '"');
        if (rc == 0)
            put_escaped(b, s, n);
        rc = rc ? rc : buf_append_char(b, '"');
    } else {
        rc = rc ? rc : put_int(b, i);
    }
    (void)rc;
}

/* The line's timestamp. gmtime_r and a printf per line showed in the access log's
 * profile: the part up to the second is kept per thread and redone once a second. */
static void format_ts(char out[32])
{
    static __thread int64_t cached_sec = -1;
    static __thread char prefix[32]; /* "YYYY-MM-DDTHH:MM:SS" */
    int64_t ms = clock_now_ms(clock_system());
    int64_t sec = ms / 1000;
    int frac = (int)(ms % 1000);
    if (ms < 0 || frac < 0) {
        clock_format_rfc3339(ms, out);
        return;
    }
    if (sec != cached_sec) {
        char full[32];
        clock_format_rfc3339(sec * 1000, full);
        memcpy(prefix, full, 19);
        prefix[19] = '\0';
        cached_sec = sec;
    }
    memcpy(out, prefix, 19);
    out[19] = '.';
    out[20] = (char)('0' + frac / 100);
    out[21] = (char)('0' + frac / 10 % 10);
    out[22] = (char)('0' + frac % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

void log_write(log_level_t level, const char *msg, const log_field_t *fields, size_t n)
{
    if (!log_enabled(level))
        return;
    char ts[32];
    format_ts(ts);
    buf_t b;
    buf_init(&b, LOG_LINE_MAX);
    if (L.format == LOG_FORMAT_JSON && buf_append_char(&b, '{'))
        goto out;
    put_field(&b, true, "ts", ts, strlen(ts), 0);
    put_field(&b, false, "level", level_names[level], strlen(level_names[level]), 0);
    put_field(&b, false, "msg", msg, strlen(msg), 0);
    for (size_t i = 0; i < n; i++) {
        const log_field_t *f = &fields[i];
        size_t len = f->s && f->n == (size_t)-1 ? strlen(f->s) : f->n;
        put_field(&b, false, f->key, f->s, len, f->i);
    }
    if (L.format == LOG_FORMAT_JSON && buf_append_char(&b, '}'))
        goto out;
    if (buf_append_char(&b, '\n'))
        goto out;
    if (T.p && b.len > LOG_BUFFER_SIZE - T.len)
        log_flush(); /* the line does not fit behind what is buffered */
    if (T.p) {
        memcpy(T.p + T.len, b.p, b.len);
        T.len += b.len;
        /* A warning or an error is not delayed, nor written ahead of the lines the
         * thread logged before it. */
        if (level >= LOG_WARN)
            log_flush();
        goto out;
    }
    pthread_mutex_lock(&L.lock);
    write_all(L.fd, b.p, b.len);
    pthread_mutex_unlock(&L.lock);
out:
    buf_deinit(&b);
}
