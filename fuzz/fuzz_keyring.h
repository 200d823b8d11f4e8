/*
 * fuzz_keyring.h: the fixed token signing keys of the fuzz targets that verify or
 * seal something (fuzz_auth, fuzz_paging). Their seed corpora were made with these
 * very keys, so the fuzzer starts from inputs that open.
 *
 * "fuzz-key-1" (bytes 0x01..0x20) signs; "fuzz-key-0" (bytes 101..132) was retired
 * 10 minutes before now_ms, still inside any token's lifetime.
 */
#ifndef BREAKHOOK_FUZZ_KEYRING_H
#define BREAKHOOK_FUZZ_KEYRING_H

#include <string.h>

#include "auth/auth.h"

static inline void fuzz_keyring_init(auth_keyring_t *ring, int64_t now_ms)
{
    store_signing_key_t keys[2];
    memset(keys, 0, sizeof(keys));
    memcpy(keys[0].kid, "fuzz-key-1", sizeof("fuzz-key-1"));
    memcpy(keys[1].kid, "fuzz-key-0", sizeof("fuzz-key-0"));
    for (size_t i = 0; i < sizeof(keys[0].secret); i++) {
        keys[0].secret[i] = (unsigned char)(i + 1);
        keys[1].secret[i] = (unsigned char)(i + 101);
    }
    keys[0].created_at_ms = now_ms - 3600000;
    keys[1].created_at_ms = now_ms - 7200000;
    keys[1].retired_at_ms = now_ms - 600000;
    auth_keyring_init(ring);
    auth_keyring_set(ring, keys, 2);
}

#endif
