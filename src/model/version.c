/*
 * version.c: changeVersion text (SPEC §3.4).
 *
 * Fixed width and zero padded, so that comparing two versions as strings (what
 * every consumer does with changeVersion) gives the same answer as comparing the
 * counters. Upper-case on output; either case on input, since a consumer may
 * have normalised what it stored.
 */
#include "model/model.h"

void model_version_format(uint64_t v, char out[MODEL_VERSION_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = MODEL_VERSION_LEN - 1; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
    out[MODEL_VERSION_LEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int model_version_parse(const char *p, size_t n, uint64_t *out)
{
    if (!p || n != MODEL_VERSION_LEN)
        return BH_EINVAL;
    uint64_t v = 0;
    bool overflow = false;
    for (size_t i = 0; i < n; i++) {
        int d = hex_value(p[i]);
        if (d < 0)
            return BH_EINVAL;
        /* 20 digits hold 80 bits; the counter has 64, so the first four digits
         * of any version we wrote are zero. */
        if (v >> 60)
            overflow = true;
        v = (v << 4) | (uint64_t)d;
    }
    if (overflow)
        return BH_ERANGE;
    *out = v;
    return 0;
}
