/*
 * definition.c: the break definition resource (SPEC §3.2).
 */
#include "model/model_int.h"

#include <stdio.h>
#include <string.h>

static const char *const definition_keys[] = {
    "id", "name", "friendlyName", "paidDurationInMinutes", "minimumDurationInMinutes",
    "maximumDurationInMinutes", "ifNotClockedDurationInMinutes", "hasToBeTakenUninterrupted",
    "earliestStartTimeInMinutes", "latestEndTimeInMinutes", NULL,
};
static const char *const definition_read_only[] = { "changeVersion", NULL };
static const char *const text_keys[] = { "default", "translations", NULL };

/* A language tag as BCP 47 writes them ("nl", "fr-BE", "zh-Hant"), checked
 * only for its alphabet and length: the set of languages is the writer's. */
static bool lang_ok(const char *s, size_t n)
{
    if (n == 0 || n >= MODEL_LANG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* Copies a text of 1..MODEL_TEXT_MAX-1 bytes into out, or reports path. */
static bool copy_text(model_errors_t *errs, const char *path, const json_t *s,
                      char out[MODEL_TEXT_MAX])
{
    size_t n = json_string_length(s);
    if (n < 1 || n > MODEL_TEXT_MAX - 1) {
        model__reason(errs, "%s: must be between 1 and %d bytes long", path, MODEL_TEXT_MAX - 1);
        return false;
    }
    memcpy(out, json_string_value(s), n);
    out[n] = '\0';
    return true;
}

static void read_translations(const model__obj_t *t, const json_t *trs, model_text_t *out)
{
    char path[MODEL__PATH_MAX];
    model__path(t, "translations", path);
    if (json_object_size(trs) > MODEL_TRANSLATIONS_MAX) {
        model__reason(t->errs, "%s: must have at most %d entries", path,
                      MODEL_TRANSLATIONS_MAX);
        return;
    }
    const char *lang;
    json_t *v;
    json_object_foreach((json_t *)trs, lang, v) {
        size_t ln = strlen(lang);
        if (!lang_ok(lang, ln)) {
            char q[MODEL__QUOTE_MAX];
            model__quote(lang, ln, q);
            model__reason(t->errs, "%s: '%s' is not a language tag", path, q);
            continue;
        }
        char vpath[MODEL__PATH_MAX + MODEL_LANG_MAX + 1];
        snprintf(vpath, sizeof(vpath), "%s.%s", path, lang);
        if (!json_is_string(v)) {
            model__reason(t->errs, "%s: must be a string", vpath);
            continue;
        }
        if (!copy_text(t->errs, vpath, v, out->tr[out->n_tr].text))
            continue;
        memcpy(out->tr[out->n_tr].lang, lang, ln + 1);
        out->n_tr++;
    }
    /* Sorted, so that the record (and its JSON) does not depend on the order the
     * writer happened to use: the same content must compare and sign the same. */
    for (size_t i = 1; i < out->n_tr; i++) {
        for (size_t k = i; k > 0 && strcmp(out->tr[k - 1].lang, out->tr[k].lang) > 0; k--) {
            char lang_tmp[MODEL_LANG_MAX], text_tmp[MODEL_TEXT_MAX];
            memcpy(lang_tmp, out->tr[k].lang, sizeof(lang_tmp));
            memcpy(text_tmp, out->tr[k].text, sizeof(text_tmp));
            memcpy(out->tr[k].lang, out->tr[k - 1].lang, sizeof(lang_tmp));
            memcpy(out->tr[k].text, out->tr[k - 1].text, sizeof(text_tmp));
            memcpy(out->tr[k - 1].lang, lang_tmp, sizeof(lang_tmp));
            memcpy(out->tr[k - 1].text, text_tmp, sizeof(text_tmp));
        }
    }
}

/* {"default":"…","translations":{lang:"…"}} under key ("name", "friendlyName"). */
static void read_text(const model__obj_t *o, const char *key, model_text_t *out)
{
    const json_t *t;
    if (!model__get_object(o, key, true, &t))
        return;
    char prefix[MODEL__PATH_MAX];
    model__path(o, key, prefix);
    size_t len = strlen(prefix);
    if (len + 1 < sizeof(prefix)) {
        prefix[len] = '.';
        prefix[len + 1] = '\0';
    }
    model__obj_t to = { t, prefix, o->errs };
    const json_t *s;
    if (model__get_string(&to, "default", true, &s)) {
        char path[MODEL__PATH_MAX];
        model__path(&to, "default", path);
        (void)copy_text(o->errs, path, s, out->def);
    }
    /* Optional; null is read as "no translations", like an absent key. */
    const json_t *trs = json_object_get(t, "translations");
    if (trs && !json_is_null(trs) && model__get_object(&to, "translations", false, &trs))
        read_translations(&to, trs, out);
    model__check_keys(&to, text_keys, NULL);
}

static int definition_read(const json_t *obj, int64_t path_id, model_definition_t *out,
                           model_errors_t *errs)
{
    model__obj_t o = { obj, "", errs };
    int64_t v, minimum = 0, maximum = 0;
    (void)model__get_id(&o, path_id, &out->id);
    read_text(&o, "name", &out->name);
    read_text(&o, "friendlyName", &out->friendly_name);
    if (model__get_int(&o, "paidDurationInMinutes", true, 0, MODEL_DURATION_MAX, &v))
        out->paid = (int32_t)v;
    bool have_min = model__get_int(&o, "minimumDurationInMinutes", true, 0,
                                   MODEL_DURATION_MAX, &minimum);
    bool have_max = model__get_int(&o, "maximumDurationInMinutes", true, 0,
                                   MODEL_DURATION_MAX, &maximum);
    out->minimum = (int32_t)minimum;
    out->maximum = (int32_t)maximum;
    if (have_min && have_max && maximum < minimum)
        model__reason(errs,
                      "maximumDurationInMinutes: must not be less than minimumDurationInMinutes");
    if (model__get_int(&o, "ifNotClockedDurationInMinutes", true, 0, MODEL_DURATION_MAX, &v))
        out->if_not_clocked = (int32_t)v;
    (void)model__get_bool(&o, "hasToBeTakenUninterrupted", true, &out->uninterrupted);
    /* The window breaks take when they give no start and end: each bound optional
     * (absent or null), in a break's range, and not crossed. */
    const json_t *je = json_object_get(obj, "earliestStartTimeInMinutes");
    const json_t *jl = json_object_get(obj, "latestEndTimeInMinutes");
    if (je && !json_is_null(je) &&
        model__get_int(&o, "earliestStartTimeInMinutes", false, MODEL_MINUTES_MIN,
                       MODEL_MINUTES_MAX, &v)) {
        out->earliest = (int32_t)v;
        out->has_earliest = true;
    }
    if (jl && !json_is_null(jl) &&
        model__get_int(&o, "latestEndTimeInMinutes", false, MODEL_MINUTES_MIN,
                       MODEL_MINUTES_MAX, &v)) {
        out->latest = (int32_t)v;
        out->has_latest = true;
    }
    if (out->has_earliest && out->has_latest && out->latest < out->earliest)
        model__reason(errs,
                      "latestEndTimeInMinutes: must not be before earliestStartTimeInMinutes");
    model__check_keys(&o, definition_keys, definition_read_only);
    return errs->n ? BH_EINVAL : 0;
}

int model_definition_parse(const char *json, size_t n, int64_t path_id,
                           model_definition_t *out, model_errors_t *errs)
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
    rc = definition_read(j, path_id, out, errs);
    json_decref(j);
    return rc;
}

static bool text_same(const model_text_t *a, const model_text_t *b)
{
    if (strcmp(a->def, b->def) != 0 || a->n_tr != b->n_tr)
        return false;
    for (size_t i = 0; i < a->n_tr; i++)
        if (strcmp(a->tr[i].lang, b->tr[i].lang) != 0 ||
            strcmp(a->tr[i].text, b->tr[i].text) != 0)
            return false;
    return true;
}

bool model_definition_same(const model_definition_t *a, const model_definition_t *b)
{
    return a->id == b->id && text_same(&a->name, &b->name) &&
           text_same(&a->friendly_name, &b->friendly_name) && a->paid == b->paid &&
           a->minimum == b->minimum && a->maximum == b->maximum &&
           a->if_not_clocked == b->if_not_clocked && a->uninterrupted == b->uninterrupted &&
           model_definition_window_same(a, b);
}

bool model_definition_window_same(const model_definition_t *a, const model_definition_t *b)
{
    return a->has_earliest == b->has_earliest && a->has_latest == b->has_latest &&
           (!a->has_earliest || a->earliest == b->earliest) &&
           (!a->has_latest || a->latest == b->latest);
}

static void write_text(model__w_t *w, const model_text_t *t)
{
    model__w_lit(w, "{\"default\":");
    model__w_str(w, t->def, strlen(t->def));
    model__w_lit(w, ",\"translations\":{");
    for (size_t i = 0; i < t->n_tr; i++) {
        if (i)
            model__w_lit(w, ",");
        model__w_str(w, t->tr[i].lang, strlen(t->tr[i].lang));
        model__w_lit(w, ":");
        model__w_str(w, t->tr[i].text, strlen(t->tr[i].text));
    }
    model__w_lit(w, "}}");
}

int model_definition_json(buf_t *b, const model_definition_t *r)
{
    model__w_t w;
    model__w_begin(&w, b);
    model__w_lit(&w, "{");
    model__w_version(&w, r->version);
    model__w_lit(&w, ",\"id\":");
    model__w_int(&w, r->id);
    model__w_lit(&w, ",\"name\":");
    write_text(&w, &r->name);
    model__w_lit(&w, ",\"friendlyName\":");
    write_text(&w, &r->friendly_name);
    model__w_lit(&w, ",\"paidDurationInMinutes\":");
    model__w_int(&w, r->paid);
    model__w_lit(&w, ",\"minimumDurationInMinutes\":");
    model__w_int(&w, r->minimum);
    model__w_lit(&w, ",\"maximumDurationInMinutes\":");
    model__w_int(&w, r->maximum);
    model__w_lit(&w, ",\"ifNotClockedDurationInMinutes\":");
    model__w_int(&w, r->if_not_clocked);
    if (r->uninterrupted)
        model__w_lit(&w, ",\"hasToBeTakenUninterrupted\":true");
    else
        model__w_lit(&w, ",\"hasToBeTakenUninterrupted\":false");
    /* The window's bounds only when set: absent, not null, when not. */
    if (r->has_earliest) {
        model__w_lit(&w, ",\"earliestStartTimeInMinutes\":");
        model__w_int(&w, r->earliest);
    }
    if (r->has_latest) {
        model__w_lit(&w, ",\"latestEndTimeInMinutes\":");
        model__w_int(&w, r->latest);
    }
    model__w_lit(&w, "}");
    return model__w_end(&w);
}
