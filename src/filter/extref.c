/*
 * extref.c: the externalReferences=(collection,name)... parameter.
 *
 * A single left-to-right scan: each pair is checked completely (syntax, then
 * collection, then name) before the next one is read, so the first reason the
 * client sees is about the leftmost problem.
 */
#include "filter/extref.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/slice.h"

static const char *const people_predefined[] = { "@employee-number", "@badge-number", NULL };

static const struct {
    const char *name;
    const char *const *predefined;
    const char *predefined_text; /* for reasons */
} collections[] = {
    { "people", people_predefined, "@employee-number or @badge-number" },
};

/* Bytes of input quoted in one reason, at most 4 characters each (\xNN). */
#define QUOTE_MAX 32
#define QUOTE_BUF (QUOTE_MAX * 4 + 4)

/* Input bytes as printable ASCII, so a reason is always valid UTF-8 for JSON. */
static void quote(const char *p, size_t n, char out[QUOTE_BUF])
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (n > QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

typedef struct scan {
    const char *p;
    size_t n;
    size_t i;
    char *err;
    size_t err_len;
} scan_t;

static int fail(scan_t *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(scan_t *s, int rc, const char *fmt, ...)
{
    if (s->err && s->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, s->err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* "end of input" or the quoted byte at the scan position, for "found ...". */
static void found(const scan_t *s, char *out, size_t cap)
{
    char q[QUOTE_BUF];
    if (s->i >= s->n) {
        snprintf(out, cap, "end of input");
        return;
    }
    quote(s->p + s->i, 1, q);
    snprintf(out, cap, "'%.16s'", q);
}

#define FOUND_BUF 24

static void skip_blanks(scan_t *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t'))
        s->i++;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

static int expect(scan_t *s, char c, const char *what)
{
    char f[FOUND_BUF];
    skip_blanks(s);
    if (s->i < s->n && s->p[s->i] == c) {
        s->i++;
        skip_blanks(s);
        return 0;
    }
    found(s, f, sizeof(f));
    return fail(s, BH_EINVAL, "expected %s in externalReferences at position %zu, found %s", what,
                s->i, f);
}

/* A run of name characters (after an optional '@' when at is true). */
static slice_t take_word(scan_t *s, bool at)
{
    size_t start = s->i;
    if (at && s->i < s->n && s->p[s->i] == '@')
        s->i++;
    while (s->i < s->n && is_name_char(s->p[s->i]))
        s->i++;
    return slice_make(s->p + start, s->i - start);
}

/* One "(collection,name)"; the scan is at its '('. */
static int parse_pair(scan_t *s, extref_t *out)
{
    char f[FOUND_BUF], q[QUOTE_BUF];
    int rc = expect(s, '(', "'('");
    if (rc)
        return rc;

    size_t cpos = s->i;
    slice_t coll = take_word(s, false);
    if (coll.n == 0) {
        found(s, f, sizeof(f));
        return fail(s, BH_EINVAL,
                    "expected a collection name in externalReferences at position %zu, found %s",
                    cpos, f);
    }
    rc = expect(s, ',', "',' after the collection name");
    if (rc)
        return rc;

    size_t npos = s->i;
    slice_t name = take_word(s, true);
    if (name.n == 0 || (name.n == 1 && name.p[0] == '@')) {
        found(s, f, sizeof(f));
        return fail(s, BH_EINVAL,
                    "expected a reference name in externalReferences at position %zu, found %s",
                    s->i, f);
    }
    /* A byte that can neither continue the name nor be followed by ')' is most
     * likely a character the client thought was allowed in a name: say so. */
    if (s->i < s->n && s->p[s->i] != ')' && s->p[s->i] != ' ' && s->p[s->i] != '\t' &&
        s->p[s->i] != ',' && s->p[s->i] != '(') {
        quote(s->p + s->i, 1, q);
        return fail(s, BH_EINVAL,
                    "invalid character '%s' in reference name at position %zu of "
                    "externalReferences: names use letters, digits, '-', '_' and '.'",
                    q, s->i);
    }
    rc = expect(s, ')', "')'");
    if (rc)
        return rc;

    size_t k = 0;
    while (k < sizeof(collections) / sizeof(collections[0]) &&
           !slice_eq_cstr(coll, collections[k].name))
        k++;
    if (k == sizeof(collections) / sizeof(collections[0])) {
        quote(coll.p, coll.n, q);
        return fail(s, BH_EINVAL,
                    "unknown collection '%s' in externalReferences at position %zu: only people "
                    "is supported",
                    q, cpos);
    }
    if (name.n > EXTREF_MAX_NAME) {
        quote(name.p, name.n, q);
        return fail(s, BH_EINVAL,
                    "reference name '%s' at position %zu of externalReferences is too long: "
                    "%zu characters, at most %d",
                    q, npos, name.n, EXTREF_MAX_NAME);
    }
    bool predefined = name.p[0] == '@';
    if (predefined) {
        const char *const *pre = collections[k].predefined;
        while (*pre && !slice_eq_cstr(name, *pre))
            pre++;
        if (!*pre) {
            quote(name.p, name.n, q);
            return fail(s, BH_EINVAL,
                        "unknown predefined reference '%s' for %s at position %zu of "
                        "externalReferences: expected %s",
                        q, collections[k].name, npos, collections[k].predefined_text);
        }
    }
    out->collection = collections[k].name;
    out->name = name.p; /* still borrowed: copied once known not to be a duplicate */
    out->name_len = name.n;
    out->predefined = predefined;
    return 0;
}

int extref_parse(const char *p, size_t n, arena_t *a, extref_list_t *out, char *err,
                 size_t err_len)
{
    scan_t s = { .p = p, .n = n, .err = err, .err_len = err_len };
    out->items = NULL;
    out->n = 0;
    if (err && err_len > 0)
        err[0] = '\0';
    if (n > EXTREF_MAX_INPUT)
        return fail(&s, BH_EINVAL, "externalReferences too long: %zu bytes, at most %d", n,
                    EXTREF_MAX_INPUT);
    skip_blanks(&s);
    if (s.i == n)
        return fail(&s, BH_EINVAL,
                    "externalReferences is empty: expected pairs such as "
                    "(people,@employee-number)");

    extref_t *items = arena_alloc(a, EXTREF_MAX_PAIRS * sizeof(*items));
    if (!items)
        return fail(&s, BH_ENOMEM, "out of memory while parsing externalReferences");
    size_t count = 0;
    while (s.i < n) {
        size_t pos = s.i;
        extref_t r;
        int rc = parse_pair(&s, &r);
        if (rc)
            return rc;
        bool dup = false;
        for (size_t k = 0; k < count && !dup; k++)
            dup = items[k].collection == r.collection && items[k].name_len == r.name_len &&
                  memcmp(items[k].name, r.name, r.name_len) == 0;
        if (dup)
            continue;
        if (count == EXTREF_MAX_PAIRS)
            return fail(&s, BH_EINVAL,
                        "too many external references at position %zu: at most %d different "
                        "pairs",
                        pos, EXTREF_MAX_PAIRS);
        r.name = arena_strndup(a, r.name, r.name_len);
        if (!r.name)
            return fail(&s, BH_ENOMEM, "out of memory while parsing externalReferences");
        items[count++] = r;
    }
    out->items = items;
    out->n = count;
    return 0;
}
