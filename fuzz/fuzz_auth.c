/*
 * fuzz_auth.c: every parser in front of authentication, fed the same bytes.
 *
 * The input goes to the form decoder (token endpoint body), the Basic and Bearer
 * header parsers, and the token verifier, both directly and through the Bearer
 * parser as api_auth_decide does. The keyring is fixed (kid "fuzz-key-1" with the
 * bytes 0x01..0x20, and a retired "fuzz-key-0") and so is the clock, so the seed
 * tokens in fuzz/corpus/auth/ are valid and the fuzzer starts from inside the
 * claims checks rather than at the signature. Scope lists are cheap and pure, so
 * they get the input too.
 *
 * Secret hashes are left out on purpose: their iteration count comes from the
 * input and PBKDF2 would make every such input a timeout.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "fuzz_keyring.h"

#define FUZZ_NOW_MS INT64_C(1700000000000)
#define FUZZ_MAX_TTL_S 1800

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

static void check_token(const char *p, size_t n)
{
    auth_claims_t c;
    auth_token_status_t st = auth_token_verify(&ring, p, n, FUZZ_NOW_MS, FUZZ_MAX_TTL_S, &c);
    if (st == AUTH_TOKEN_OK) {
        /* A valid token has every claim, NUL-terminated inside its field. */
        if (!memchr(c.tenant, '\0', sizeof(c.tenant)) ||
            !memchr(c.client_id, '\0', sizeof(c.client_id)) ||
            !memchr(c.scope, '\0', sizeof(c.scope)) || !memchr(c.jti, '\0', sizeof(c.jti)) ||
            c.tenant_id <= 0 || c.exp * 1000 <= FUZZ_NOW_MS)
            abort();
    }
    if (!auth_token_status_str(st))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    const char *p = (const char *)data;

    arena_t a;
    arena_init(&a, 1 << 20);

    auth_form_t form;
    const char *why = NULL;
    if (auth_form_parse(p, size, &a, &form, &why) == 0) {
        if (form.n > AUTH_FORM_MAX)
            abort();
        for (size_t i = 0; i < form.n; i++)
            if (auth_form_get(&form, form.items[i].name) != form.items[i].value)
                abort(); /* names are unique: the first match is this item */
    } else if (!why) {
        abort();
    }

    const char *id = NULL, *secret = NULL;
    if (auth_basic_parse(slice_make(p, size), &a, &id, &secret) == 0 && (!id || !secret))
        abort();

    slice_t tok;
    if (auth_bearer_parse(slice_make(p, size), &tok) == 0) {
        if (tok.n == 0 || tok.p < p || tok.p + tok.n > p + size)
            abort();
        check_token(tok.p, tok.n);
    }
    check_token(p, size);

    /* Scope lists are NUL-terminated strings. */
    char *s = arena_strndup(&a, p, size);
    if (s && strlen(s) == size) {
        char norm[256];
        const char *bad = NULL;
        size_t bad_len = 0;
        int rc = auth_scopes_normalize(s, norm, sizeof(norm), &bad, &bad_len);
        if (rc == 0 && !auth_scopes_subset(norm, s, NULL, NULL) && !strchr(s, ','))
            abort(); /* without commas, the normal form is a subset of the input */
        if (rc == BH_EINVAL && (bad < s || bad + bad_len > s + size))
            abort();
        (void)auth_scopes_contain(s, SCOPE_BREAKS_READ);
    }

    arena_deinit(&a);
    return 0;
}
