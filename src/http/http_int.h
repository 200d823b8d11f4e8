/*
 * http_int.h: internals shared by the files of the http module (and its tests).
 */
#ifndef BREAKHOOK_HTTP_HTTP_INT_H
#define BREAKHOOK_HTTP_HTTP_INT_H

#include <stdbool.h>

#include "http/http.h"

typedef struct http__head {
    int status;
    const char *date;          /* IMF-fixdate */
    const char *server_name;
    const char *request_id;
    const char *content_type;  /* NULL: none */
    size_t content_length;
    bool send_length;          /* false for 1xx and 204 */
    bool keep_alive;
    bool http10;               /* the client spoke HTTP/1.0 */
    bool chunked;              /* Transfer-Encoding: chunked instead of Content-Length */
    slice_t extra;             /* header lines, each ending in CRLF */
} http__head_t;

/* Formats a response head into b. */
BH_MUST_USE int http__format_head(buf_t *b, const http__head_t *h);

/* Percent-decodes (p, n) into out (at least n+1 bytes); '+' becomes ' ' when plus
 * is true. Returns the decoded length, or -1 for a malformed escape or a NUL byte. */
long http__percent_decode(const char *p, size_t n, char *out, bool plus);

#endif
