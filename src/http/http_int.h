/*
 * http_int.h: internals shared by the files of the http module (and its tests).
 */
#ifndef BREAKHOOK_HTTP_HTTP_INT_H
#define BREAKHOOK_HTTP_HTTP_INT_H

#include <stdbool.h>

#include "core/metrics.h"
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

/* ---- request metrics (metrics.c) ------------------------------------------ *
 * Requests counted by route, method and status, and a duration histogram per
 * route. Counting happens on the server's loop thread only, at the end of each
 * request; the table is written there and may be read from any thread (entries
 * are published with release stores), so a scrape never takes a lock. */

#define HTTP__STATS_SLOTS 1024 /* route x method x status combinations kept */

typedef struct http__stats {
    struct {
        _Atomic uint64_t key;   /* 0: empty; else see metrics.c stats_key */
        _Atomic uint64_t count;
    } slots[HTTP__STATS_SLOTS];
    size_t n_routes;            /* the router's routes; index n_routes: no route */
    metrics_hist_t *duration;   /* n_routes + 1 */
} http__stats_t;

BH_MUST_USE int http__stats_init(http__stats_t *st, const http_router_t *r);
void http__stats_deinit(http__stats_t *st);
/* route NULL: the request matched no route (404, 405, a malformed request). */
void http__stats_count(http__stats_t *st, const http_router_t *r, const http_route_t *route,
                       http_method_t method, int status, uint64_t ns);
BH_MUST_USE int http__stats_write(const http__stats_t *st, const http_router_t *r, buf_t *out);

/* The router's routes, in the order they were added, and a route's position. */
size_t http__router_size(const http_router_t *r);
const char *http__router_pattern(const http_router_t *r, size_t i);
size_t http__router_index(const http_router_t *r, const http_route_t *route);

#endif
