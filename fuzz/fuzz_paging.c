/*
 * fuzz_paging.c: the continuationToken decoder (SPEC §1 paging), fed raw tokens.
 *
 * The input is what a client puts after "continuationToken=": it goes to
 * api_page_token_open for each collection that pages, with a fixed keyring (kid
 * "fuzz-key-1" with the bytes 0x01..0x20, and a retired "fuzz-key-0" with
 * 0x65..0x84), a fixed query hash and a fixed "now". The seeds in
 * fuzz/corpus/paging/ are sealed with those keys for that query, so the fuzzer
 * starts from tokens that open and mutates from there.
 *
 * Invariants checked beyond "no crash, no leak":
 *   - a refused token always gets one of the three reasons a 409 names;
 *   - an accepted token opens for exactly one collection, and not for another query
 *     hash, nor once its age passes API_PAGE_TOKEN_TTL_S;
 *   - a cursor built from the input seals and opens back to itself, and the webhook
 *     id form of a cursor (api_cursor_to_id / api_cursor_from_id) round-trips.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "fuzz_keyring.h"

#define FUZZ_NOW_S INT64_C(1767225600)
#define FUZZ_QUERY_HASH UINT64_C(0x0123456789abcdef)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const collections[] = { "breaks", "break-definitions", "webhooks",
                                           "deliveries" };
#define N_COLLECTIONS (sizeof(collections) / sizeof(collections[0]))

static auth_keyring_t ring;

static void init_once(void)
{
    static bool done;
    if (done)
        return;
    fuzz_keyring_init(&ring, FUZZ_NOW_S * 1000);
    done = true;
}

static bool known_reason(const char *why)
{
    return !strcmp(why, "the continuationToken is not valid") ||
           !strcmp(why, "the continuationToken belongs to another query") ||
           !strcmp(why, "the continuationToken has expired");
}

static void fuzz_open(const char *p, size_t n)
{
    size_t opened = 0;
    for (size_t i = 0; i < N_COLLECTIONS; i++) {
        api_cursor_t cur;
        const char *why =
            api_page_token_open(&ring, p, n, collections[i], FUZZ_QUERY_HASH, FUZZ_NOW_S, &cur);
        if (why) {
            if (!known_reason(why))
                abort();
            continue;
        }
        opened++;
        /* Bound to the query and to its lifetime. */
        api_cursor_t other;
        if (!api_page_token_open(&ring, p, n, collections[i], FUZZ_QUERY_HASH ^ 1, FUZZ_NOW_S,
                                 &other) ||
            !api_page_token_open(&ring, p, n, collections[i], FUZZ_QUERY_HASH,
                                 FUZZ_NOW_S + 2 * API_PAGE_TOKEN_TTL_S + 1, &other))
            abort();
    }
    if (opened > 1)
        abort();
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    api_cursor_t cur = { 0, 0 };
    memcpy(&cur, data, size < sizeof(cur) ? size : sizeof(cur));
    const char *coll = collections[size % N_COLLECTIONS];
    char *tok = NULL;
    if (api_page_token_seal(&ring, coll, FUZZ_QUERY_HASH, FUZZ_NOW_S, &cur, &tok))
        abort();
    api_cursor_t back;
    if (api_page_token_open(&ring, tok, strlen(tok), coll, FUZZ_QUERY_HASH, FUZZ_NOW_S, &back) ||
        back.a != cur.a || back.b != cur.b)
        abort();
    const char *why = api_page_token_open(&ring, tok, strlen(tok), coll, FUZZ_QUERY_HASH,
                                          FUZZ_NOW_S + API_PAGE_TOKEN_TTL_S + 1, &back);
    if (!why || strcmp(why, "the continuationToken has expired") != 0)
        abort();
    free(tok);

    char id[37];
    api_cursor_to_id(&cur, id);
    if (strlen(id) != 36)
        abort();
    api_cursor_from_id(id, &back);
    if (back.a != cur.a || back.b != cur.b)
        abort();
}

/* A webhook id from the client's URL: anything, read as far as it goes. */
static void fuzz_id(const char *p, size_t n)
{
    char s[64];
    size_t k = n < sizeof(s) - 1 ? n : sizeof(s) - 1;
    memcpy(s, p, k);
    s[k] = '\0';
    api_cursor_t cur, back;
    api_cursor_from_id(s, &cur);
    char id[37];
    api_cursor_to_id(&cur, id);
    api_cursor_from_id(id, &back);
    if (back.a != cur.a || back.b != cur.b)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    fuzz_open((const char *)data, size);
    fuzz_round_trip(data, size);
    fuzz_id((const char *)data, size);
    return 0;
}
