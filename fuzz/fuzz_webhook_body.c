/*
 * fuzz_webhook_body.c: the JSON body of POST /webhooks, as webhooks.c reads it.
 *
 * The input is the whole body. api_webhook_body_parse either accepts it (a known
 * collection and a destinationUrl, which then goes through dest_url_parse exactly
 * as the handler does; fuzz_destination covers that parser on its own) or refuses it
 * with reasons.
 *
 * Invariants checked beyond "no crash, no leak":
 *   - accepted: no reasons, collection breaks or break-definitions, url non-NULL and
 *     url_len bytes long with a NUL after it (it lives in the arena);
 *   - refused: 1..API_WEBHOOK_BODY_REASONS_MAX reasons, every one a non-empty string;
 *   - the same input gives the same answer twice (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "client/destination.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_once(const char *p, size_t n, arena_t *a, api_webhook_body_t *b,
                      const char **reasons, size_t *k)
{
    int rc = api_webhook_body_parse(p, n, a, b, reasons, k);
    if (rc == 0) {
        if (*k != 0 || !b->url || b->url[b->url_len] != '\0' ||
            (b->collection != STORE_COLL_BREAKS && b->collection != STORE_COLL_DEFINITIONS))
            abort();
    } else if (rc == BH_EINVAL) {
        if (*k < 1 || *k > API_WEBHOOK_BODY_REASONS_MAX)
            abort();
        for (size_t i = 0; i < *k; i++)
            if (!reasons[i] || !reasons[i][0])
                abort();
    } else if (rc != BH_ENOMEM) {
        abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 1 << 20);
    const char *reasons[API_WEBHOOK_BODY_REASONS_MAX];
    api_webhook_body_t b1, b2;
    size_t k1 = 0, k2 = 0;
    int rc1 = parse_once((const char *)data, size, &a, &b1, reasons, &k1);
    int rc2 = parse_once((const char *)data, size, &a, &b2, reasons, &k2);
    if (rc1 != rc2 || k1 != k2)
        abort();
    if (rc1 == 0) {
        if (b1.collection != b2.collection || b1.url_len != b2.url_len ||
            memcmp(b1.url, b2.url, b1.url_len) != 0)
            abort();
        dest_url_t u;
        char why[DEST_WHY_MAX];
        (void)dest_url_parse(b1.url, b1.url_len, true, &u, why, sizeof(why));
    }
    arena_deinit(&a);
    return 0;
}
