/*
 * fuzz_delta_token.c: the deltaToken decoder (SPEC §6; api/delta.c), fed raw tokens.
 *
 * The input is what a client puts after "deltaToken=": it goes to
 * api_delta_token_open with the fixed keyring of fuzz_keyring.h. The seeds in
 * fuzz/corpus/delta_token/ were sealed with those keys (made by this target's
 * round trip, see below), so the fuzzer starts from tokens that open and mutates
 * from there.
 *
 * Invariants checked beyond "no crash, no leak":
 *   - a refused token always gets the one reason a 400 names;
 *   - an opened token's fields are inside their bounds (a known collection, a
 *     positive tenant, an ordered range, a 32-hex-digit delta id, a client id and
 *     externalReferences without NUL), and it seals again and opens back to itself;
 *   - a token built from the input's bytes either seals and opens back to the same
 *     fields, or is refused by the sealer (a field out of bounds).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "fuzz_keyring.h"

#define FUZZ_NOW_MS INT64_C(1767225600000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static auth_keyring_t ring;

static void init_once(void)
{
    static bool done;
    if (done)
        return;
    fuzz_keyring_init(&ring, FUZZ_NOW_MS);
    done = true;
}

static bool same(const api_delta_token_t *a, const api_delta_token_t *b)
{
    return a->tenant_id == b->tenant_id && a->collection == b->collection &&
           a->cursor == b->cursor && a->date_from == b->date_from && a->date_to == b->date_to &&
           !strcmp(a->client_id, b->client_id) && !strcmp(a->delta_id, b->delta_id) &&
           !strcmp(a->extrefs, b->extrefs);
}

static void check_bounds(const api_delta_token_t *t)
{
    if ((t->collection != STORE_COLL_BREAKS && t->collection != STORE_COLL_DEFINITIONS) ||
        t->tenant_id <= 0 || t->date_from > t->date_to ||
        strlen(t->delta_id) != STORE_DELTA_ID_LEN || !t->client_id[0] ||
        strlen(t->extrefs) > API_DELTA_EXTREFS_MAX)
        abort();
    for (size_t i = 0; i < STORE_DELTA_ID_LEN; i++) {
        char c = t->delta_id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            abort();
    }
}

/* Seals t and opens it back; true when the sealer accepted it. */
static bool round_trip(const api_delta_token_t *t)
{
    char *tok = NULL;
    if (api_delta_token_seal(&ring, t, &tok))
        return false;
    api_delta_token_t back;
    if (api_delta_token_open(&ring, tok, strlen(tok), &back) || !same(t, &back))
        abort();
    free(tok);
    return true;
}

static void fuzz_open(const char *p, size_t n)
{
    api_delta_token_t t;
    const char *why = api_delta_token_open(&ring, p, n, &t);
    if (why) {
        if (strcmp(why, "the deltaToken is not valid") != 0)
            abort();
        return;
    }
    check_bounds(&t);
    if (!round_trip(&t))
        abort();
}

/* A token from the input's bytes: fields read in order, strings cut at their bounds. */
static void fuzz_build(const uint8_t *d, size_t n)
{
    api_delta_token_t t;
    memset(&t, 0, sizeof(t));
    uint8_t buf[48] = { 0 };
    memcpy(buf, d, n < sizeof(buf) ? n : sizeof(buf));
    memcpy(&t.tenant_id, buf, 8);
    memcpy(&t.cursor, buf + 8, 8);
    memcpy(&t.date_from, buf + 16, 4);
    memcpy(&t.date_to, buf + 20, 4);
    t.collection = buf[24] & 1 ? STORE_COLL_BREAKS : STORE_COLL_DEFINITIONS;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < STORE_DELTA_ID_LEN; i++)
        t.delta_id[i] = hex[(buf[25 + i % 16] >> (i & 1 ? 4 : 0)) & 15];
    size_t rest = n > sizeof(buf) ? n - sizeof(buf) : 0;
    const char *s = (const char *)d + (n - rest);
    size_t cl = rest < 20 ? rest : 20;
    memcpy(t.client_id, s, cl);
    size_t el = rest - cl < API_DELTA_EXTREFS_MAX ? rest - cl : API_DELTA_EXTREFS_MAX;
    memcpy(t.extrefs, s + cl, el);
    bool valid = t.tenant_id > 0 && t.date_from <= t.date_to && t.client_id[0];
    /* A NUL inside a string cuts it, as the C string it is. */
    if (round_trip(&t) != valid)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    fuzz_open((const char *)data, size);
    fuzz_build(data, size);
    return 0;
}
