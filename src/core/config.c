#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"

void config_env_name(const char *name, char *out, size_t n)
{
    size_t o = 0;
    const char *prefix = "BREAKHOOK_";
    for (const char *p = prefix; *p && o + 1 < n; p++)
        out[o++] = *p;
    for (const char *p = name; *p && o + 1 < n; p++)
        out[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static const config_option_t *find_option(const config_option_t *opts, size_t n, const char *name,
                                          size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static int parse_int(const char *s, int64_t *out)
{
    if (!*s)
        return BH_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return BH_EINVAL;
    *out = v;
    return 0;
}

/* Writes a range bound the way the option is written: a duration for durations. */
static void format_bound(const config_option_t *o, int64_t v, char *out, size_t n)
{
    if (o->type == CONFIG_DURATION || o->type == CONFIG_DURATION_LIST)
        duration_format(v, out, n);
    else
        snprintf(out, n, "%lld", (long long)v);
}

/* Applies one value. from_env: lists split on commas instead of accumulating. */
static int set_value(const config_option_t *o, void *target, const char *value, bool from_env,
                     const char *source, char *err, size_t err_len)
{
    char *field = (char *)target + o->offset;
    int64_t v;
    switch (o->type) {
    case CONFIG_STRING:
        *(const char **)field = value;
        return 0;
    case CONFIG_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(bool *)field = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(bool *)field = false;
        else
            goto bad;
        return 0;
    case CONFIG_INT:
    case CONFIG_DURATION:
        if (o->type == CONFIG_INT ? parse_int(value, &v) : duration_parse(value, &v))
            goto bad;
        if ((o->min || o->max) && (v < o->min || v > o->max)) {
            char lo[32], hi[32];
            format_bound(o, o->min, lo, sizeof(lo));
            format_bound(o, o->max, hi, sizeof(hi));
            snprintf(err, err_len, "%s: '%s' is out of range (allowed: %s to %s)", source, value,
                     lo, hi);
            return BH_ERANGE;
        }
        *(int64_t *)field = v;
        return 0;
    case CONFIG_STRING_LIST: {
        config_list_t *l = (config_list_t *)field;
        if (!from_env) {
            if (l->n == CONFIG_LIST_MAX)
                goto too_many;
            l->items[l->n++] = value;
            return 0;
        }
        /* From the environment: a comma-separated list. Split into a copy that lives
         * as long as the process (options are parsed once). */
        char *copy = strdup(value);
        if (!copy)
            return BH_ENOMEM;
        l->n = 0;
        for (char *p = copy, *comma; p && *p; p = comma ? comma + 1 : NULL) {
            comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            if (l->n == CONFIG_LIST_MAX)
                goto too_many;
            l->items[l->n++] = p;
        }
        return 0;
    }
    case CONFIG_DURATION_LIST: {
        config_durations_t *d = (config_durations_t *)field;
        int rc = duration_parse_list(value, d->ms, CONFIG_LIST_MAX, &d->n);
        if (rc == BH_ETOOBIG)
            goto too_many;
        if (rc)
            goto bad;
        for (size_t i = 0; i < d->n; i++)
            if ((o->min || o->max) && (d->ms[i] < o->min || d->ms[i] > o->max)) {
                char lo[32], hi[32];
                format_bound(o, o->min, lo, sizeof(lo));
                format_bound(o, o->max, hi, sizeof(hi));
                snprintf(err, err_len,
                         "%s: '%s' has a value out of range (each must be %s to %s)", source,
                         value, lo, hi);
                return BH_ERANGE;
            }
        return 0;
    }
    }
bad:
    snprintf(err, err_len, "%s: invalid value '%s'%s", source, value,
             o->type == CONFIG_DURATION || o->type == CONFIG_DURATION_LIST
                 ? " (durations look like 500ms, 5s, 10m, 72h, 30d)"
                 : "");
    return BH_EINVAL;
too_many:
    snprintf(err, err_len, "%s: more than %d values", source, CONFIG_LIST_MAX);
    return BH_ETOOBIG;
}

int config_parse(const config_option_t *opts, size_t n_opts, void *target, int argc, char **argv,
                 const char *(*getenv_fn)(const char *), const char **pos, size_t max_pos,
                 size_t *n_pos, bool *help, char *err, size_t err_len)
{
    bool seen[128] = { false };
    size_t np = 0;
    bool only_pos = false;
    *help = false;
    if (n_opts > sizeof(seen))
        return BH_EINVAL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (np == max_pos) {
                snprintf(err, err_len, "unexpected argument '%s'", a);
                return BH_EINVAL;
            }
            pos[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *help = true;
            continue;
        }
        if (a[1] != '-') {
            snprintf(err, err_len, "unknown option '%s'", a);
            return BH_EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const config_option_t *o = find_option(opts, n_opts, name, len);
        if (!o) {
            snprintf(err, err_len, "unknown option '--%.*s'", (int)len, name);
            return BH_EINVAL;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == CONFIG_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, err_len, "option '--%s' needs a value", o->name);
            return BH_EINVAL;
        }
        char source[96];
        snprintf(source, sizeof(source), "--%s", o->name);
        /* The first use of a repeatable flag replaces the default list. */
        if (!seen[o - opts] && o->type == CONFIG_STRING_LIST)
            ((config_list_t *)((char *)target + o->offset))->n = 0;
        int rc = set_value(o, target, value, false, source, err, err_len);
        if (rc)
            return rc;
        seen[o - opts] = true;
    }
    for (size_t i = 0; i < n_opts && getenv_fn; i++) {
        if (seen[i])
            continue;
        char env[96];
        config_env_name(opts[i].name, env, sizeof(env));
        const char *value = getenv_fn(env);
        if (!value || !*value)
            continue;
        int rc = set_value(&opts[i], target, value, true, env, err, err_len);
        if (rc)
            return rc;
    }
    *n_pos = np;
    return 0;
}

void config_print_options(FILE *f, const config_option_t *opts, size_t n_opts)
{
    for (size_t i = 0; i < n_opts; i++) {
        const config_option_t *o = &opts[i];
        char flag[96], env[96];
        if (o->type == CONFIG_BOOL)
            snprintf(flag, sizeof(flag), "--%s", o->name);
        else
            snprintf(flag, sizeof(flag), "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        config_env_name(o->name, env, sizeof(env));
        fprintf(f, "  %-34s %s\n  %-34s (env %s)\n", flag, o->help, "", env);
    }
    fprintf(f, "  %-34s %s\n", "-h, --help", "show this help");
}
