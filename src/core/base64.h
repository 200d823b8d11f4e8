/*
 * base64.h: RFC 4648 base64, standard ("+/", padded) and URL-safe ("-_", unpadded).
 * Strict decoding: wrong alphabet, bad padding or stray bytes are rejected.
 */
#ifndef BREAKHOOK_CORE_BASE64_H
#define BREAKHOOK_CORE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes needed to encode n bytes, plus the NUL. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encodes into out (BASE64_ENCODED_SIZE(n) bytes); returns the length written. */
size_t base64_encode(const void *p, size_t n, char *out, bool url);
/* Decodes (p, n) into out (at least n*3/4 + 3 bytes). Returns the decoded length or
 * -1. url: URL alphabet, padding optional; else standard alphabet, padding required. */
long base64_decode(const char *p, size_t n, unsigned char *out, bool url);

#endif
