/*
 * consumer.h: what the consumer-side commands (`sink`, `verify`) share. Private to
 * src/cli.
 *
 * Their options come from the environment as BREAKHOOK_SINK_<NAME>, not the
 * BREAKHOOK_<NAME> that config_parse derives: a consumer often runs in the same
 * shell as `breakhook serve`, and `sink` must not pick up BREAKHOOK_LISTEN (the
 * server's address) or any other server setting by accident.
 */
#ifndef BREAKHOOK_CLI_CONSUMER_H
#define BREAKHOOK_CLI_CONSUMER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/slice.h"
#include "delivery/sign.h"

#define CONSUMER_ENV_PREFIX "BREAKHOOK_SINK_"

/* A getenv for config_parse: "BREAKHOOK_KEY" is looked up as "BREAKHOOK_SINK_KEY". */
const char *cli__consumer_getenv(const char *name);
/* config_print_options with the BREAKHOOK_SINK_* variable names. */
void cli__consumer_print_options(FILE *f, const config_option_t *opts, size_t n_opts);

typedef struct cli_key {
    unsigned char b[SIGN_KEY_MAX];
    size_t n;
} cli_key_t;

/* Parses "whsec_<base64>" into k. On failure writes a one-line reason into why. */
BH_MUST_USE int cli__consumer_parse_key(const char *text, cli_key_t *k, char *why,
                                        size_t why_len);
/* Parses a --tolerance value: "0" (no window) or a duration of whole seconds ("300s",
 * "5m"). */
BH_MUST_USE int cli__parse_tolerance(const char *text, int64_t *seconds);
/* Splits "host:port" or "[v6]:port". */
BH_MUST_USE int cli__parse_listen(const char *s, char *host, size_t host_len, int *port);
/* Writes "<port>\n" to path atomically (write a temporary file, rename). */
BH_MUST_USE int cli__write_port_file(const char *path, int port);

/* One delivery as captured off the wire: its signature headers and body. */
typedef struct cli_captured {
    sign_headers_t h;
    slice_t body;
} cli_captured_t;

/* Splits one raw HTTP/1.x request (request line, headers, empty line, body; lines
 * ending in CRLF or LF) into the three webhook-* headers and the body: Content-Length
 * bytes, the decoded chunks of a chunked body (appended to dechunked, whose maximum
 * bounds them), or the rest of the input. Returns NULL, or a static one-line reason
 * when the input is not such a request. The slices point into in or dechunked.
 * Pure; no allocation but dechunked's. */
const char *cli__parse_captured_request(slice_t in, buf_t *dechunked, cli_captured_t *c);

#endif
