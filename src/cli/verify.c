/*
 * verify.c: `breakhook verify`: checks the signature of one captured delivery.
 *
 * Input, on stdin: one raw HTTP/1.x request exactly as it came over the wire, e.g.
 * saved by `nc -l 127.0.0.1 9001 > request.http` while breakhook delivered to it:
 * the request line, the header lines, an empty line, the body. Lines may end in CRLF
 * or, for hand-edited files, LF. The body is what Content-Length says (a capture
 * cut shorter is an error), the decoded chunks with Transfer-Encoding: chunked, or
 * everything after the empty line when there is neither.
 *
 * Output: "valid" on stdout and exit 0, or "invalid: <reason>" on stdout and exit 1.
 * Input that is not a request is a failure too (exit 1, reason on stderr); wrong
 * options exit 2.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/consumer.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "delivery/sign.h"

typedef struct verify_config {
    const char *key;
    const char *tolerance;
    int64_t max_bytes;
} verify_config_t;

#define OPT(name, type, field, meta, help, lo, hi) \
    { name, type, offsetof(verify_config_t, field), meta, help, lo, hi }

static const config_option_t verify_options[] = {
    OPT("key", CONFIG_STRING, key, "whsec_...", "the webhook's signing key (required)", 0, 0),
    OPT("tolerance", CONFIG_STRING, tolerance, "DURATION",
        "refuse a webhook-timestamp further than this from now (default 5m; 0 disables the "
        "check, for old captures)", 0, 0),
    OPT("max-bytes", CONFIG_INT, max_bytes, "BYTES",
        "the largest request read from stdin (default 67108864)", 1, 1LL << 32),
};
#define N_VERIFY_OPTIONS (sizeof(verify_options) / sizeof(verify_options[0]))

static int read_stdin(buf_t *b)
{
    for (;;) {
        char chunk[65536];
        ssize_t n = read(0, chunk, sizeof(chunk));
        if (n == 0)
            return 0;
        if (n < 0)
            return BH_EIO;
        if (buf_append(b, chunk, (size_t)n))
            return BH_ETOOBIG;
    }
}

static void print_help(void)
{
    printf("usage: breakhook verify --key whsec_... [--tolerance 5m|0] < request\n\n"
           "Checks the Standard Webhooks signature of one captured delivery: a raw HTTP/1.x\n"
           "request on stdin (request line, headers, empty line, body), as saved by e.g.\n"
           "  nc -l 127.0.0.1 9001 > request.http\n"
           "while breakhook delivered to http://127.0.0.1:9001/. Lines may end in CRLF or LF;\n"
           "the body is Content-Length bytes, the decoded chunks of a chunked body, or the\n"
           "rest of the input.\n\n"
           "Prints 'valid' (exit 0) or 'invalid: <reason>' (exit 1). A capture older than the\n"
           "tolerance is invalid: use --tolerance 0 to check the signature alone.\n\n"
           "options:\n");
    cli__consumer_print_options(stdout, verify_options, N_VERIFY_OPTIONS);
}

int cli_verify(int argc, char **argv)
{
    verify_config_t cfg = { .tolerance = "5m", .max_bytes = 64LL << 20 };
    char err[320];
    const char *pos[1];
    size_t n_pos;
    bool help;
    if (config_parse(verify_options, N_VERIFY_OPTIONS, &cfg, argc, argv, cli__consumer_getenv,
                     pos, 0, &n_pos, &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "verify: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    cli_key_t key;
    if (cli__consumer_parse_key(cfg.key, &key, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "verify: %s", err);
    int64_t tolerance_s;
    if (cli__parse_tolerance(cfg.tolerance, &tolerance_s)) {
        OPENSSL_cleanse(key.b, sizeof(key.b));
        return cli_fail(CLI_USAGE, "verify: --tolerance: expected 0 or whole seconds like 300s "
                                   "or 5m, got '%s'", cfg.tolerance);
    }

    int code = CLI_FAIL;
    buf_t in, dechunked;
    buf_init(&in, (size_t)cfg.max_bytes);
    buf_init(&dechunked, (size_t)cfg.max_bytes);
    int rc = read_stdin(&in);
    if (rc) {
        cli_fail(CLI_FAIL, "verify: %s", rc == BH_ETOOBIG ? "the request is larger than --max-bytes"
                                                          : "cannot read stdin");
        goto out;
    }
    cli_captured_t c;
    const char *why = cli__parse_captured_request(buf_slice(&in), &dechunked, &c);
    if (why) {
        cli_fail(CLI_FAIL, "verify: %s", why);
        goto out;
    }
    rc = sign_verify(key.b, key.n, &c.h, c.body.p, c.body.n,
                     clock_now_ms(clock_system()) / 1000, tolerance_s);
    if (rc == 0) {
        printf("valid\n");
        code = CLI_OK;
    } else {
        printf("invalid: %s\n", sign_strerror(rc));
    }
out:
    buf_deinit(&in);
    buf_deinit(&dechunked);
    OPENSSL_cleanse(key.b, sizeof(key.b));
    return code;
}
