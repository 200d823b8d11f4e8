/*
 * break.c: the break resource (SPEC §3.1) and the lines of POST /breaks/$batch
 * (SPEC §4): validation, the computed duration, canonical JSON.
 */
#include "model/model_int.h"

#include <string.h>

#include "core/date.h"

static const char *const break_keys[] = {
    "id", "person", "breakDefinition", "date", "calculatedDurationInMinutes",
    "clockedDurationInMinutes", "startTimeInMinutes", "endTimeInMinutes", "isBreakTaken",
    NULL,
};
/* What a GET returns and a PUT may send back unchanged (SPEC §4). */
static const char *const break_read_only[] = { "changeVersion", NULL };
static const char *const ref_keys[] = { "id", NULL };
static const char *const person_read_only[] = { "externalReferences", NULL };

/* A reference to another resource, {"id":N}: key is "person" or
 * "breakDefinition". */
static bool read_ref(const model__obj_t *o, const char *key, const char *const *read_only,
                     int64_t *out)
{
    const json_t *ref;
    if (!model__get_object(o, key, true, &ref))
        return false;
    char prefix[MODEL__PATH_MAX];
    model__path(o, key, prefix);
    size_t len = strlen(prefix);
    if (len + 1 < sizeof(prefix)) {
        prefix[len] = '.';
        prefix[len + 1] = '\0';
    }
    model__obj_t r = { ref, prefix, o->errs };
    bool ok = model__get_int(&r, "id", true, 1, MODEL__ID_MAX, out);
    model__check_keys(&r, ref_keys, read_only);
    return ok;
}

/* True when (p, n) has the shape YYYY-MM-DD, so that a refused value can be told
 * apart as "not a calendar date" (2023-02-30) or "not a date at all". */
static bool date_shaped(const char *p, size_t n)
{
    if (n != 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return false;
    }
    return true;
}

static void read_date(const model__obj_t *o, int32_t *out)
{
    const json_t *s;
    if (!model__get_string(o, "date", true, &s))
        return;
    const char *p = json_string_value(s);
    size_t n = json_string_length(s);
    if (date_parse(p, n, out) == 0)
        return;
    char q[MODEL__QUOTE_MAX];
    model__quote(p, n, q);
    if (date_shaped(p, n))
        model__reason(o->errs, "%sdate: '%s' is not a calendar date", o->prefix, q);
    else
        model__reason(o->errs, "%sdate: '%s' is not written YYYY-MM-DD", o->prefix, q);
}

int model__break_read(const json_t *obj, int64_t path_id, const char *prefix,
                      model_break_t *out, model_errors_t *errs)
{
    memset(out, 0, sizeof(*out));
    model__obj_t o = { obj, prefix, errs };
    int64_t v, start = 0, end = 0;

    (void)model__get_id(&o, path_id, &out->id);
    (void)read_ref(&o, "person", person_read_only, &out->person_id);
    (void)read_ref(&o, "breakDefinition", NULL, &out->definition_id);
    read_date(&o, &out->date);

    /* Absent or null: the writer leaves the duration to the server (SPEC §3.1). */
    const json_t *calc = json_object_get(obj, "calculatedDurationInMinutes");
    if (calc && !json_is_null(calc) &&
        model__get_int(&o, "calculatedDurationInMinutes", false, 0, MODEL_DURATION_MAX, &v)) {
        out->calculated = (int32_t)v;
        out->calculated_given = true;
    }
    if (model__get_int(&o, "clockedDurationInMinutes", true, 0, MODEL_DURATION_MAX, &v))
        out->clocked = (int32_t)v;
    /* Start and end are given as a pair or omitted as a pair (absent or null):
     * omitted, the store takes them from the break definition's window. */
    const json_t *js = json_object_get(obj, "startTimeInMinutes");
    const json_t *je = json_object_get(obj, "endTimeInMinutes");
    bool give_start = js && !json_is_null(js), give_end = je && !json_is_null(je);
    out->window_taken = !give_start && !give_end;
    bool have_start = give_start && model__get_int(&o, "startTimeInMinutes", true,
                                                   MODEL_MINUTES_MIN, MODEL_MINUTES_MAX, &start);
    bool have_end = give_end && model__get_int(&o, "endTimeInMinutes", true, MODEL_MINUTES_MIN,
                                               MODEL_MINUTES_MAX, &end);
    if (give_start && !give_end)
        model__reason(errs, "%sendTimeInMinutes: is required when startTimeInMinutes is given",
                      prefix);
    if (give_end && !give_start)
        model__reason(errs, "%sstartTimeInMinutes: is required when endTimeInMinutes is given",
                      prefix);
    out->start = (int32_t)start;
    out->end = (int32_t)end;
    if (have_start && have_end && end < start)
        model__reason(errs, "%sendTimeInMinutes: must not be before startTimeInMinutes",
                      prefix);
    (void)model__get_bool(&o, "isBreakTaken", true, &out->taken);
    model__check_keys(&o, break_keys, break_read_only);
    return errs->n ? BH_EINVAL : 0;
}

int model_break_parse(const char *json, size_t n, int64_t path_id, model_break_t *out,
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
    rc = model__break_read(j, path_id, "", out, errs);
    json_decref(j);
    return rc;
}

int model_break_from_json(const void *json_obj, int64_t path_id, model_break_t *out,
                          model_errors_t *errs)
{
    model_errors_t scratch;
    if (!errs)
        errs = &scratch;
    errs->n = 0;
    memset(out, 0, sizeof(*out));
    const json_t *j = json_obj;
    if (!json_is_object(j)) {
        model__reason(errs, "body must be a JSON object");
        return BH_EINVAL;
    }
    if (!model__depth_ok(j, MODEL__DEPTH_MAX)) {
        model__reason(errs, "body nests deeper than %d levels", MODEL__DEPTH_MAX);
        return BH_EINVAL;
    }
    return model__break_read(j, path_id, "", out, errs);
}

/* ---- $batch ---------------------------------------------------------------- */

static const char *const line_keys_upsert[] = { "op", "data", NULL };
static const char *const line_keys_delete[] = { "op", "id", NULL };
static const char *const line_keys_any[] = { "op", "data", "id", NULL };

int model_batch_line_parse(const char *p, size_t n, model_batch_line_t *out,
                           model_errors_t *errs)
{
    model_errors_t scratch;
    if (!errs)
        errs = &scratch;
    errs->n = 0;
    memset(out, 0, sizeof(*out));
    json_t *j;
    int rc = model__load(p, n, "line", errs, &j);
    if (rc)
        return rc;
    model__obj_t o = { j, "", errs };
    const json_t *op;
    const char *const *keys = line_keys_any;
    if (model__get_string(&o, "op", true, &op)) {
        const char *s = json_string_value(op);
        if (strcmp(s, "upsert") == 0) {
            keys = line_keys_upsert;
            /* The break's fields are reported as data.<field>, so that they
             * cannot be confused with the line's own op and id. */
            const json_t *data;
            if (model__get_object(&o, "data", true, &data))
                (void)model__break_read(data, 0, "data.", &out->rec, errs);
        } else if (strcmp(s, "delete") == 0) {
            keys = line_keys_delete;
            out->del = true;
            (void)model__get_int(&o, "id", true, 1, MODEL__ID_MAX, &out->rec.id);
        } else {
            char q[MODEL__QUOTE_MAX];
            model__quote(s, json_string_length(op), q);
            model__reason(errs, "op: '%s' is not 'upsert' or 'delete'", q);
        }
    }
    model__check_keys(&o, keys, NULL);
    json_decref(j);
    return errs->n ? BH_EINVAL : 0;
}

/* ---- computed duration, comparison ----------------------------------------- */

int32_t model_break_compute(const model_break_t *b, const model_definition_t *d)
{
    if (!b->taken)
        return d->if_not_clocked;
    int32_t v = b->clocked;
    if (v < d->minimum)
        v = d->minimum;
    if (v > d->maximum)
        v = d->maximum;
    return v;
}

bool model_break_same(const model_break_t *a, const model_break_t *b)
{
    return a->id == b->id && a->person_id == b->person_id &&
           a->definition_id == b->definition_id && a->date == b->date &&
           a->calculated == b->calculated && a->calculated_given == b->calculated_given &&
           a->clocked == b->clocked && a->start == b->start && a->end == b->end &&
           a->window_taken == b->window_taken && a->taken == b->taken;
}

/* ---- serialisation ------------------------------------------------------- */

int model_break_json(buf_t *b, const model_break_t *r, const model_embed_t *embed)
{
    model__w_t w;
    char date[11];
    date_format(r->date, date);
    model__w_begin(&w, b);
    model__w_lit(&w, "{");
    model__w_version(&w, r->version);
    model__w_lit(&w, ",\"id\":");
    model__w_int(&w, r->id);
    model__w_lit(&w, ",\"person\":{\"id\":");
    model__w_int(&w, r->person_id);
    if (embed && (embed->asked || embed->n)) {
        model__w_lit(&w, ",\"externalReferences\":");
        model__w_refs(&w, embed->refs, embed->n);
    }
    model__w_lit(&w, "},\"breakDefinition\":{\"id\":");
    model__w_int(&w, r->definition_id);
    model__w_lit(&w, "},\"date\":\"");
    model__w_raw(&w, date, 10);
    model__w_lit(&w, "\",\"calculatedDurationInMinutes\":");
    model__w_int(&w, r->calculated);
    model__w_lit(&w, ",\"clockedDurationInMinutes\":");
    model__w_int(&w, r->clocked);
    model__w_lit(&w, ",\"startTimeInMinutes\":");
    model__w_int(&w, r->start);
    model__w_lit(&w, ",\"endTimeInMinutes\":");
    model__w_int(&w, r->end);
    if (r->taken)
        model__w_lit(&w, ",\"isBreakTaken\":true}");
    else
        model__w_lit(&w, ",\"isBreakTaken\":false}");
    return model__w_end(&w);
}

int model_tombstone_json(buf_t *b, uint64_t version, int64_t id)
{
    model__w_t w;
    model__w_begin(&w, b);
    model__w_lit(&w, "{");
    model__w_version(&w, version);
    model__w_lit(&w, ",\"id\":");
    model__w_int(&w, id);
    model__w_lit(&w, "}");
    return model__w_end(&w);
}
