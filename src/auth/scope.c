/*
 * scope.c: OAuth scopes as space-separated lists.
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

const char *const auth_known_scopes[] = {
    SCOPE_BREAKS_READ,   SCOPE_BREAKS_WRITE,   SCOPE_BREAK_DEFINITIONS_READ,
    SCOPE_BREAK_DEFINITIONS_WRITE, SCOPE_PEOPLE_READ, SCOPE_PEOPLE_WRITE,
    SCOPE_WEBHOOKS_READ, SCOPE_WEBHOOKS_WRITE, NULL,
};

bool auth_scope_known(slice_t scope)
{
    for (size_t i = 0; auth_known_scopes[i]; i++)
        if (slice_eq_cstr(scope, auth_known_scopes[i]))
            return true;
    return false;
}

/* Calls the items of a list separated by spaces (and commas when commas is true)
 * one after the other; stops when fn returns false. */
static bool each_item(const char *list, bool commas, bool (*fn)(slice_t item, void *arg),
                      void *arg)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || (commas && *p == ','))
            p++;
        const char *start = p;
        while (*p && *p != ' ' && !(commas && *p == ','))
            p++;
        if (p > start && !fn(slice_make(start, (size_t)(p - start)), arg))
            return false;
    }
    return true;
}

typedef struct find_arg {
    slice_t want;
    bool found;
} find_arg_t;

static bool find_item(slice_t item, void *arg)
{
    find_arg_t *f = arg;
    if (slice_eq(item, f->want)) {
        f->found = true;
        return false;
    }
    return true;
}

static bool list_has(const char *list, slice_t scope)
{
    find_arg_t f = { scope, false };
    each_item(list, false, find_item, &f);
    return f.found;
}

bool auth_scopes_contain(const char *list, const char *scope)
{
    return list_has(list, slice_from_cstr(scope));
}

typedef struct subset_arg {
    const char *allowed;
    slice_t bad;
} subset_arg_t;

static bool check_allowed(slice_t item, void *arg)
{
    subset_arg_t *s = arg;
    if (list_has(s->allowed, item))
        return true;
    s->bad = item;
    return false;
}

bool auth_scopes_subset(const char *requested, const char *allowed, const char **bad,
                        size_t *bad_len)
{
    subset_arg_t s = { allowed, SLICE_NULL };
    bool ok = each_item(requested, false, check_allowed, &s);
    if (!ok && bad) {
        *bad = s.bad.p;
        *bad_len = s.bad.n;
    }
    return ok;
}

typedef struct norm_arg {
    char *out;
    size_t n, len;
    slice_t bad;
    bool overflow;
} norm_arg_t;

static bool add_normalized(slice_t item, void *arg)
{
    norm_arg_t *a = arg;
    if (!auth_scope_known(item)) {
        a->bad = item;
        return false;
    }
    a->out[a->len] = '\0';
    if (list_has(a->out, item))
        return true;
    int w = snprintf(a->out + a->len, a->n - a->len, "%s%.*s", a->len ? " " : "", (int)item.n,
                     item.p);
    if (w < 0 || (size_t)w >= a->n - a->len) {
        a->overflow = true;
        return false;
    }
    a->len += (size_t)w;
    return true;
}

int auth_scopes_normalize(const char *in, char *out, size_t n, const char **bad, size_t *bad_len)
{
    norm_arg_t a = { out, n, 0, SLICE_NULL, false };
    if (n == 0)
        return BH_ETOOBIG;
    out[0] = '\0';
    if (!each_item(in, true, add_normalized, &a)) {
        if (a.overflow)
            return BH_ETOOBIG;
        if (bad) {
            *bad = a.bad.p;
            *bad_len = a.bad.n;
        }
        return BH_EINVAL;
    }
    return 0;
}
