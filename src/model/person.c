/*
 * person.c: the person resource (SPEC §3.3), which exists for its external
 * references.
 */
#include "model/model_int.h"

#include <stdio.h>
#include <string.h>

static const char *const person_keys[] = { "id", "externalReferences", NULL };
static const char *const person_read_only[] = { "changeVersion", NULL };

/* Names starting with '@' are Protime's predefined references; only these two
 * exist for people (SPEC §1), so any other '@' name is a typo worth a 400. */
static const char *const predefined[] = { "@employee-number", "@badge-number", NULL };

static bool custom_name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= MODEL_REF_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool name_ok(const model__obj_t *o, const char *path, const char *name)
{
    size_t n = strlen(name);
    char q[MODEL__QUOTE_MAX];
    if (name[0] == '@') {
        for (const char *const *p = predefined; *p; p++)
            if (strcmp(name, *p) == 0)
                return true;
        model__quote(name, n, q);
        model__reason(o->errs,
                      "%s: '%s' is not a predefined reference (@employee-number, @badge-number)",
                      path, q);
        return false;
    }
    if (custom_name_ok(name, n))
        return true;
    model__quote(name, n, q);
    model__reason(o->errs, "%s: '%s' is not a valid reference name", path, q);
    return false;
}

static void read_refs(const model__obj_t *o, const json_t *refs, model_person_t *out)
{
    char path[MODEL__PATH_MAX];
    model__path(o, "externalReferences", path);
    if (json_object_size(refs) > MODEL_REFS_MAX) {
        model__reason(o->errs, "%s: must have at most %d entries", path, MODEL_REFS_MAX);
        return;
    }
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)refs, name, v) {
        if (!name_ok(o, path, name))
            continue;
        /* null: the person has no value for this reference, as when it is left
         * out (a GET leaves it out too). */
        if (json_is_null(v))
            continue;
        char vpath[MODEL__PATH_MAX + MODEL_REF_NAME_MAX + 1];
        snprintf(vpath, sizeof(vpath), "%s.%s", path, name);
        if (!json_is_string(v)) {
            model__reason(o->errs, "%s: must be a string", vpath);
            continue;
        }
        size_t n = json_string_length(v);
        if (n < 1 || n > MODEL_REF_VALUE_MAX - 1) {
            model__reason(o->errs, "%s: must be between 1 and %d bytes long", vpath,
                          MODEL_REF_VALUE_MAX - 1);
            continue;
        }
        model_ref_t *r = &out->refs[out->n_refs++];
        memcpy(r->name, name, strlen(name) + 1);
        memcpy(r->value, json_string_value(v), n);
        r->value[n] = '\0';
    }
    /* Sorted by name: the record, its JSON and its comparison must not depend on
     * the order the writer used. */
    for (size_t i = 1; i < out->n_refs; i++) {
        for (size_t k = i; k > 0 && strcmp(out->refs[k - 1].name, out->refs[k].name) > 0; k--) {
            model_ref_t tmp = out->refs[k];
            out->refs[k] = out->refs[k - 1];
            out->refs[k - 1] = tmp;
        }
    }
}

int model_person_parse(const char *json, size_t n, int64_t path_id, model_person_t *out,
                       model_errors_t *errs)
{
    model_errors_t scratch;
    if (!errs)
        errs = &scratch;
    errs->n = 0;
    memset(out, 0, sizeof(*out));
    json_t *j;
    int rc = model__load(json, n, "body", errs, &j);
    if (rc)
        return rc;
    model__obj_t o = { j, "", errs };
    (void)model__get_id(&o, path_id, &out->id);
    const json_t *refs = json_object_get(j, "externalReferences");
    if (refs && !json_is_null(refs) &&
        model__get_object(&o, "externalReferences", false, &refs))
        read_refs(&o, refs, out);
    model__check_keys(&o, person_keys, person_read_only);
    json_decref(j);
    return errs->n ? BH_EINVAL : 0;
}

bool model_person_same(const model_person_t *a, const model_person_t *b)
{
    if (a->id != b->id || a->n_refs != b->n_refs)
        return false;
    for (size_t i = 0; i < a->n_refs; i++)
        if (strcmp(a->refs[i].name, b->refs[i].name) != 0 ||
            strcmp(a->refs[i].value, b->refs[i].value) != 0)
            return false;
    return true;
}

int model_person_json(buf_t *b, const model_person_t *r)
{
    model__w_t w;
    model__w_begin(&w, b);
    model__w_lit(&w, "{");
    model__w_version(&w, r->version);
    model__w_lit(&w, ",\"id\":");
    model__w_int(&w, r->id);
    model__w_lit(&w, ",\"externalReferences\":");
    model__w_refs(&w, r->refs, r->n_refs);
    model__w_lit(&w, "}");
    return model__w_end(&w);
}
