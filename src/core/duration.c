#include "core/duration.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *unit;
    int64_t ms;
} units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
};

static int parse_n(const char *s, size_t len, int64_t *ms_out)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return BH_EINVAL;
        v = v * 10 + d;
        i++;
    }
    if (i == 0 || i == len)
        return BH_EINVAL;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t ulen = strlen(units[u].unit);
        if (len - i == ulen && memcmp(s + i, units[u].unit, ulen) == 0) {
            if (v > INT64_MAX / units[u].ms)
                return BH_EINVAL;
            *ms_out = v * units[u].ms;
            return 0;
        }
    }
    return BH_EINVAL;
}

int duration_parse(const char *s, int64_t *ms_out)
{
    if (!s)
        return BH_EINVAL;
    return parse_n(s, strlen(s), ms_out);
}

int duration_parse_list(const char *s, int64_t *out, size_t max, size_t *n_out)
{
    size_t n = 0;
    const char *p = s;
    if (!s || !*s)
        return BH_EINVAL;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == max)
            return BH_ETOOBIG;
        if (parse_n(p, len, &out[n]))
            return BH_EINVAL;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n_out = n;
    return 0;
}

void duration_format(int64_t ms, char *out, size_t n)
{
    for (size_t u = sizeof(units) / sizeof(units[0]); u-- > 0;) {
        if (ms != 0 && ms % units[u].ms == 0) {
            snprintf(out, n, "%lld%s", (long long)(ms / units[u].ms), units[u].unit);
            return;
        }
    }
    snprintf(out, n, "%lldms", (long long)ms);
}
