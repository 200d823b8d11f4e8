/*
 * form.c: application/x-www-form-urlencoded bodies and HTTP credentials headers.
 */
#include <string.h>

#include "auth/auth.h"
#include "core/base64.h"
#include "http/http_int.h"

int auth_form_parse(const char *p, size_t n, arena_t *a, auth_form_t *out, const char **why)
{
    out->n = 0;
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(p + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - p) : n;
        if (end > i) {
            const char *eq = memchr(p + i, '=', end - i);
            size_t kend = eq ? (size_t)(eq - p) : end;
            if (out->n == AUTH_FORM_MAX) {
                *why = "too many form fields";
                return BH_EINVAL;
            }
            char *k = arena_alloc(a, kend - i + 1);
            char *v = arena_alloc(a, eq ? end - kend : 1);
            if (!k || !v) {
                *why = "form too large";
                return BH_EINVAL;
            }
            if (http__percent_decode(p + i, kend - i, k, true) < 0 ||
                (eq && http__percent_decode(eq + 1, end - kend - 1, v, true) < 0)) {
                *why = "malformed percent-encoding in the form body";
                return BH_EINVAL;
            }
            if (!eq)
                v[0] = '\0';
            if (auth_form_get(out, k)) {
                /* RFC 6749 §3.1: parameters must not be included more than once. */
                *why = "a form parameter is repeated";
                return BH_EINVAL;
            }
            out->items[out->n].name = k;
            out->items[out->n].value = v;
            out->n++;
        }
        i = end + 1;
    }
    return 0;
}

const char *auth_form_get(const auth_form_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->items[i].name, name))
            return f->items[i].value;
    return NULL;
}

int auth_basic_parse(slice_t header, arena_t *a, const char **id, const char **secret)
{
    if (header.n < 6 || strncasecmp(header.p, "basic ", 6) != 0)
        return BH_EINVAL;
    slice_t b64 = slice_trim(slice_make(header.p + 6, header.n - 6));
    if (b64.n == 0 || b64.n > 2048)
        return BH_EINVAL;
    unsigned char *raw = arena_alloc(a, b64.n);
    if (!raw)
        return BH_EINVAL;
    long n = base64_decode(b64.p, b64.n, raw, false);
    if (n <= 0)
        return BH_EINVAL;
    const unsigned char *colon = memchr(raw, ':', (size_t)n);
    if (!colon)
        return BH_EINVAL;
    size_t idn = (size_t)(colon - raw), sn = (size_t)n - idn - 1;
    char *i = arena_alloc(a, idn + 1), *s = arena_alloc(a, sn + 1);
    if (!i || !s)
        return BH_EINVAL;
    if (http__percent_decode((const char *)raw, idn, i, true) < 0 ||
        http__percent_decode((const char *)colon + 1, sn, s, true) < 0)
        return BH_EINVAL;
    *id = i;
    *secret = s;
    return 0;
}

int auth_bearer_parse(slice_t header, slice_t *token)
{
    if (header.n < 7 || strncasecmp(header.p, "bearer ", 7) != 0)
        return BH_EINVAL;
    slice_t t = slice_trim(slice_make(header.p + 7, header.n - 7));
    if (t.n == 0 || t.n > 4096)
        return BH_EINVAL;
    for (size_t i = 0; i < t.n; i++) {
        char c = t.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
        if (!ok)
            return BH_EINVAL;
    }
    *token = t;
    return 0;
}
