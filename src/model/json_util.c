/*
 * json_util.c: the reading and writing helpers the model parsers and
 * serialisers share (model_int.h describes them).
 */
#include "model/model_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- UTF-8 ----------------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are
 * not one. Reasons quote client input and jansson's own messages, and a JSON
 * error body can only carry valid UTF-8, so every reason goes through this. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Replaces every byte that does not start a well-formed sequence with '?'. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0) {
            p[i] = '?';
            k = 1;
        }
        i += k;
    }
}

/* ---- reasons ------------------------------------------------------------- */

void model__reason(model_errors_t *errs, const char *fmt, ...)
{
    if (errs->n >= MODEL_REASONS_MAX)
        return;
    char *r = errs->reasons[errs->n];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r, sizeof(errs->reasons[0]), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    utf8_sanitize(r);
    errs->n++;
}

void model__quote(const char *s, size_t n, char out[MODEL__QUOTE_MAX])
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < n) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0) {
            if (o + 1 > 40)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + k > 40)
            break;
        memcpy(out + o, p + i, k);
        o += k;
        i += k;
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- loading --------------------------------------------------------------- */

bool model__depth_ok(const json_t *j, int max_levels)
{
    /* Recursion is bounded by max_levels, whatever jansson accepted. */
    if (json_is_object(j)) {
        if (max_levels <= 0)
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            if (!model__depth_ok(v, max_levels - 1))
                return false;
        }
    } else if (json_is_array(j)) {
        if (max_levels <= 0)
            return false;
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (!model__depth_ok(v, max_levels - 1))
                return false;
        }
    }
    return true;
}

int model__load(const char *p, size_t n, const char *what, model_errors_t *errs,
                json_t **out)
{
    json_error_t e;
    /* JSON_DECODE_ANY so that "5" is reported as "not an object", which is the
     * truth, rather than as a syntax error. */
    json_t *j = json_loadb(p ? p : "", p ? n : 0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!j) {
        if (json_error_code(&e) == json_error_out_of_memory)
            return BH_ENOMEM;
        model__reason(errs, "%s is not valid JSON: %s at line %d column %d", what, e.text,
                      e.line, e.column);
        return BH_EINVAL;
    }
    if (!json_is_object(j)) {
        model__reason(errs, "%s must be a JSON object", what);
        json_decref(j);
        return BH_EINVAL;
    }
    if (!model__depth_ok(j, MODEL__DEPTH_MAX)) {
        model__reason(errs, "%s nests deeper than %d levels", what, MODEL__DEPTH_MAX);
        json_decref(j);
        return BH_EINVAL;
    }
    *out = j;
    return 0;
}

/* ---- field readers --------------------------------------------------------- */

void model__path(const model__obj_t *o, const char *key, char out[MODEL__PATH_MAX])
{
    snprintf(out, MODEL__PATH_MAX, "%s%s", o->prefix, key);
}

static bool in_list(const char *k, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(k, *list) == 0)
            return true;
    return false;
}

void model__check_keys(const model__obj_t *o, const char *const *allowed,
                       const char *const *ignored)
{
    const char *k;
    json_t *v;
    /* jansson keeps insertion order, so unknown names come out as written. */
    json_object_foreach((json_t *)o->obj, k, v) {
        if (in_list(k, allowed) || in_list(k, ignored))
            continue;
        char q[MODEL__QUOTE_MAX];
        model__quote(k, strlen(k), q);
        model__reason(o->errs, "unknown property '%s%s'", o->prefix, q);
    }
}

/* The value of key, or NULL with "is required" reported when required. */
static json_t *lookup(const model__obj_t *o, const char *key, bool required,
                      char path[MODEL__PATH_MAX])
{
    model__path(o, key, path);
    json_t *v = json_object_get(o->obj, key);
    if (!v && required)
        model__reason(o->errs, "%s: is required", path);
    return v;
}

bool model__get_int(const model__obj_t *o, const char *key, bool required, int64_t min,
                    int64_t max, int64_t *out)
{
    char path[MODEL__PATH_MAX];
    json_t *v = lookup(o, key, required, path);
    if (!v)
        return false;
    /* Only JSON integers: 5.0, 5e0 and "5" are refused, so a writer finds out
     * that it sends the wrong type instead of having it coerced silently. */
    if (!json_is_integer(v)) {
        model__reason(o->errs, "%s: must be an integer", path);
        return false;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        model__reason(o->errs, "%s: must be between %lld and %lld", path, (long long)min,
                      (long long)max);
        return false;
    }
    *out = x;
    return true;
}

bool model__get_bool(const model__obj_t *o, const char *key, bool required, bool *out)
{
    char path[MODEL__PATH_MAX];
    json_t *v = lookup(o, key, required, path);
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        model__reason(o->errs, "%s: must be a boolean", path);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool model__get_string(const model__obj_t *o, const char *key, bool required,
                       const json_t **out)
{
    char path[MODEL__PATH_MAX];
    json_t *v = lookup(o, key, required, path);
    if (!v)
        return false;
    if (!json_is_string(v)) {
        model__reason(o->errs, "%s: must be a string", path);
        return false;
    }
    *out = v;
    return true;
}

bool model__get_object(const model__obj_t *o, const char *key, bool required,
                       const json_t **out)
{
    char path[MODEL__PATH_MAX];
    json_t *v = lookup(o, key, required, path);
    if (!v)
        return false;
    if (!json_is_object(v)) {
        model__reason(o->errs, "%s: must be an object", path);
        return false;
    }
    *out = v;
    return true;
}

bool model__get_id(const model__obj_t *o, int64_t path_id, int64_t *out)
{
    if (path_id == 0)
        return model__get_int(o, "id", true, 1, MODEL__ID_MAX, out);
    char path[MODEL__PATH_MAX];
    model__path(o, "id", path);
    json_t *v = json_object_get(o->obj, "id");
    if (v && !json_is_integer(v)) {
        model__reason(o->errs, "%s: must be an integer", path);
        return false;
    }
    /* Full replace of the resource named by the URL: a body that names another
     * record (or none) is more likely a client bug than an intent. */
    if (!v || json_integer_value(v) != path_id) {
        model__reason(o->errs, "%s: must equal the id in the path (%lld)", path,
                      (long long)path_id);
        return false;
    }
    if (path_id < 1 || path_id > MODEL__ID_MAX) {
        model__reason(o->errs, "%s: must be between 1 and %lld", path, MODEL__ID_MAX);
        return false;
    }
    *out = path_id;
    return true;
}

/* ---- writer -------------------------------------------------------------- */

void model__w_begin(model__w_t *w, buf_t *b)
{
    w->b = b;
    w->start = b->len;
    w->rc = 0;
}

int model__w_end(model__w_t *w)
{
    if (w->rc) {
        w->b->len = w->start;
        if (w->b->p)
            w->b->p[w->start] = '\0';
    }
    return w->rc;
}

void model__w_raw(model__w_t *w, const char *p, size_t n)
{
    if (!w->rc)
        w->rc = buf_append(w->b, p, n);
}

void model__w_int(model__w_t *w, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    /* Through the unsigned magnitude so INT64_MIN needs no special case. */
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0)
        tmp[--i] = '-';
    model__w_raw(w, tmp + i, sizeof(tmp) - i);
}

void model__w_str(model__w_t *w, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    model__w_raw(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char u[6];
        size_t en = 2;
        /* jansson's escaping with its default flags: '"', '\\' and the C0
         * controls only; '/', DEL and non-ASCII text go out as they are. */
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c >= 0x20)
                continue;
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            esc = u;
            en = 6;
            break;
        }
        model__w_raw(w, p + run, i - run);
        model__w_raw(w, esc, en);
        run = i + 1;
    }
    model__w_raw(w, p + run, n - run);
    model__w_raw(w, "\"", 1);
}

void model__w_version(model__w_t *w, uint64_t v)
{
    char s[MODEL_VERSION_LEN + 1];
    model_version_format(v, s);
    model__w_lit(w, "\"changeVersion\":\"");
    model__w_raw(w, s, MODEL_VERSION_LEN);
    model__w_lit(w, "\"");
}

void model__w_refs(model__w_t *w, const model_ref_t *refs, size_t n)
{
    model__w_lit(w, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            model__w_lit(w, ",");
        model__w_str(w, refs[i].name, strlen(refs[i].name));
        model__w_lit(w, ":");
        model__w_str(w, refs[i].value, strlen(refs[i].value));
    }
    model__w_lit(w, "}");
}
