/*
 * http_client.h: outbound HTTP POSTs with libcurl's multi-socket interface,
 * driven by a libuv loop (the delivery engine's).
 *
 * One client per loop; every call on the loop's thread. Connections are kept
 * alive and reused per destination, TLS sessions and DNS answers are shared
 * between requests, redirects are never followed, the answer body is read up to a
 * cap (1 MiB; a longer answer ends there and counts by its status, SPEC §7.2; its
 * connection is not reused), and the address each connection actually goes to is checked against the
 * destination rules (dest_check_addr) before it is used: a name that resolves to
 * a refused address at delivery time (DNS rebinding) fails the attempt.
 */
#ifndef BREAKHOOK_CLIENT_HTTP_CLIENT_H
#define BREAKHOOK_CLIENT_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/destination.h"
#include "core/err.h"

#define HC_EXCERPT_MAX 4096
/* Header lines a request may carry (hc_request_t.headers). */
#define HC_HEADERS_MAX 8

/* One header line in the list handed to libcurl: the layout of libcurl's public
 * struct curl_slist (http_client.c checks it), kept in the request so that sending
 * allocates nothing for headers. */
typedef struct hc_hdr_node {
    char *data;
    struct hc_hdr_node *next;
} hc_hdr_node_t;

typedef struct hc hc_t;
typedef struct hc_request hc_request_t;

typedef struct hc_result {
    int http_status;          /* 0 when no answer arrived */
    bool timed_out;           /* no answer within the attempt's time limit */
    char error[160];          /* "" when an answer arrived; else what went wrong */
    char excerpt[HC_EXCERPT_MAX + 1]; /* the first bytes of the answer body */
    size_t excerpt_len;
    int64_t duration_ms;
    int64_t duration_us;      /* the same, finer: for the attempt-duration histogram */
    int64_t retry_after_s;    /* Retry-After in seconds, -1 when absent or unparsable */
} hc_result_t;

struct hc_request {
    /* set by the caller; borrowed until done runs */
    const char *url;
    const char *const *headers;   /* "Name: value", NULL-terminated, HC_HEADERS_MAX at
                                     most; borrowed until done runs */
    const char *body;
    size_t body_len;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    void (*done)(hc_request_t *r, const hc_result_t *res);
    void *data;
    /* private */
    void *easy;
    hc_t *client;
    uint64_t start_ns;
    hc_result_t res;
    size_t body_seen;
    bool body_capped;             /* the answer went past the read cap: reading stopped */
    hc_hdr_node_t hnodes[HC_HEADERS_MAX + 1]; /* "Expect:" and the caller's headers */
    hc_request_t *prev, *next;    /* the client's in-flight list */
    /* private to hc_pool: the caller's callback and the queues between threads */
    void (*pool_done)(hc_request_t *r, const hc_result_t *res);
    void *pool_data;
    unsigned pool_slot;
    hc_request_t *qnext;
};

typedef struct hc_options {
    const dest_allow_t *allow;    /* destination rules for connected addresses */
    bool allow_http;              /* http:// as well as https:// */
    const char *ca_file;          /* extra CA bundle (private CAs); NULL: system CAs */
    const char *user_agent;
    size_t max_host_connections;  /* per host:port */
    /* A libcurl share (CURLSH *) for TLS sessions and DNS answers, made thread-safe
     * by its owner and outliving the client (hc_pool's, shared by its threads);
     * NULL: the client makes its own. */
    void *share;
} hc_options_t;

/* Clears a result for a new request: every field but the excerpt's bytes (4 KiB
 * that excerpt_len says are unused), so starting a request does not zero them. */
void hc_result_reset(hc_result_t *res);
/* Zeroes a request before the caller fills it, the same way (no 4 KiB memset). */
void hc_request_init(hc_request_t *r);

BH_MUST_USE int hc_new(uv_loop_t *loop, const hc_options_t *opt, hc_t **out);
/* Aborts transfers in progress (their done callbacks run with an error), then frees. */
void hc_free(hc_t *c);
/* Starts a POST; done runs later on the loop (never from inside hc_send). BH_EINVAL
 * (nothing started) for more than HC_HEADERS_MAX headers.
 * BH_ENOTFOUND at once for a host under .invalid (never resolves, RFC 6761). */
BH_MUST_USE int hc_send(hc_t *c, hc_request_t *r);
size_t hc_in_flight(const hc_t *c);
/* True for a URL whose host is under .invalid (RFC 6761): it is never looked up. */
bool hc_never_resolves(const char *url);

#endif
