/*
 * fuzz_sign.c: the consumer-side parsers of a delivery, fed raw requests.
 *
 * The input is a captured HTTP request as `breakhook verify` reads it: the request
 * parser splits it into the webhook-* headers and the (possibly chunked) body, then
 * sign_verify checks it against a fixed key at a fixed "now", with and without the
 * timestamp window. The seeds in fuzz/corpus/sign/ are signed with that key at that
 * time, so the fuzzer starts from requests that verify and mutates from there.
 *
 * Invariant checked beyond "no crash": whenever sign_verify accepts, sign_v1 over
 * the same id, timestamp and body reproduces one of the header's v1 entries.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/consumer.h"
#include "core/buf.h"
#include "delivery/sign.h"

#define FUZZ_NOW_S INT64_C(1767225600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Key bytes 0x00..0x1f: whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= */
static const unsigned char key[32] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                       11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                       22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };

static void check_accepted(const cli_captured_t *c)
{
    char id[SIGN_ID_MAX + 1];
    unsigned long long ts;
    if (c->h.id.n > SIGN_ID_MAX || !slice_to_u64(c->h.timestamp, INT64_MAX, &ts))
        abort();
    memcpy(id, c->h.id.p, c->h.id.n);
    id[c->h.id.n] = '\0';
    char sig[SIGN_V1_LEN + 1];
    if (sign_v1(key, sizeof(key), id, (int64_t)ts, c->body.p, c->body.n, sig) != 0)
        abort();
    /* Leading zeros in the timestamp text are signed as sent, so sign_v1 (which writes
     * the number without them) need not reproduce those. */
    if (c->h.timestamp.n > 1 && c->h.timestamp.p[0] == '0')
        return;
    for (size_t i = 0; i + SIGN_V1_LEN <= c->h.signature.n; i++)
        if (memcmp(c->h.signature.p + i, sig, SIGN_V1_LEN) == 0)
            return;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t dechunked;
    buf_init(&dechunked, 1 << 20);
    cli_captured_t c;
    if (!cli__parse_captured_request(slice_make((const char *)data, size), &dechunked, &c)) {
        int windowed = sign_verify(key, sizeof(key), &c.h, c.body.p, c.body.n, FUZZ_NOW_S,
                                   SIGN_TOLERANCE_DEFAULT_S);
        int any_time = sign_verify(key, sizeof(key), &c.h, c.body.p, c.body.n, FUZZ_NOW_S, 0);
        (void)sign_strerror(windowed);
        /* The window can only refuse more, never accept what the signature refuses. */
        if (windowed == 0 && any_time != 0)
            abort();
        if (any_time == 0)
            check_accepted(&c);
    }
    buf_deinit(&dechunked);
    return 0;
}
