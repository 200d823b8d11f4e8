/*
 * fuzz_model.c: every model parser on arbitrary bytes.
 *
 * Each input goes to the break, definition, person and $batch-line parsers and
 * to model_version_parse. Besides "no crash, no leak, no undefined behaviour"
 * it checks the properties the rest of the server relies on:
 *   - a refused input has 1..MODEL_REASONS_MAX reasons, each valid UTF-8 (they
 *     go into a JSON error body);
 *   - an accepted record serialises, and what it serialises to parses again to
 *     the same record (so a GET can be PUT back and a signed body is stable);
 *   - the serialisation is what jansson itself would write for the same tree,
 *     byte for byte (our escaper equals jansson's).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                        \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                    \
        }                                                               \
    } while (0)

static void check_errors(int rc, const model_errors_t *errs)
{
    if (rc == BH_ENOMEM)
        return;
    CHECK(rc == 0 || rc == BH_EINVAL);
    if (rc == 0) {
        CHECK(errs->n == 0);
        return;
    }
    CHECK(errs->n >= 1 && errs->n <= MODEL_REASONS_MAX);
    for (size_t i = 0; i < errs->n; i++) {
        CHECK(memchr(errs->reasons[i], '\0', sizeof(errs->reasons[i])) != NULL);
        json_t *s = json_string(errs->reasons[i]);
        CHECK(s != NULL);
        json_decref(s);
    }
}

/* Re-encodes text with jansson and compares: our output must already be in
 * jansson's compact, order-preserving form. */
static void check_canonical(const buf_t *b)
{
    json_error_t e;
    json_t *j = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &e);
    CHECK(j != NULL);
    char *again = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CHECK(again != NULL);
    CHECK(strlen(again) == b->len && memcmp(again, b->p, b->len) == 0);
    free(again);
    json_decref(j);
}

static void fuzz_break(const char *p, size_t n, int64_t path_id)
{
    model_break_t a, b;
    model_errors_t errs;
    int rc = model_break_parse(p, n, path_id, &a, &errs);
    check_errors(rc, &errs);
    if (rc)
        return;
    CHECK(a.id >= 1 && a.start <= a.end && a.clocked >= 0);
    buf_t out;
    buf_init(&out, 1 << 16);
    /* Embed some references: the result must still be accepted on PUT. */
    static const model_ref_t refs[] = { { "@employee-number", "E\"1\\\n" }, { "x", "\x01/" } };
    model_embed_t embed = { refs, (size_t)(a.id % 3), a.id % 2 == 0 };
    CHECK(model_break_json(&out, &a, &embed) == 0);
    check_canonical(&out);
    rc = model_break_parse(out.p, out.len, a.id, &b, &errs);
    CHECK(rc == 0);
    /* The output always carries calculatedDurationInMinutes, startTimeInMinutes and
     * endTimeInMinutes (what a GET shows after the store filled them), so a record
     * that left them to the server comes back as giving them. */
    CHECK(!a.window_taken || (a.start == 0 && a.end == 0));
    a.calculated_given = true;
    a.window_taken = false;
    CHECK(model_break_same(&a, &b));
    buf_deinit(&out);
}

static void fuzz_definition(const char *p, size_t n)
{
    model_definition_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    CHECK(a && b);
    model_errors_t errs;
    int rc = model_definition_parse(p, n, 0, a, &errs);
    check_errors(rc, &errs);
    if (rc == 0) {
        CHECK(a->minimum <= a->maximum);
        for (size_t i = 1; i < a->name.n_tr; i++)
            CHECK(strcmp(a->name.tr[i - 1].lang, a->name.tr[i].lang) < 0);
        buf_t out;
        buf_init(&out, 1 << 20);
        CHECK(model_definition_json(&out, a) == 0);
        check_canonical(&out);
        CHECK(model_definition_parse(out.p, out.len, a->id, b, &errs) == 0);
        CHECK(model_definition_same(a, b));
        buf_deinit(&out);
    }
    free(a);
    free(b);
}

static void fuzz_person(const char *p, size_t n)
{
    model_person_t a, b;
    model_errors_t errs;
    int rc = model_person_parse(p, n, 0, &a, &errs);
    check_errors(rc, &errs);
    if (rc)
        return;
    for (size_t i = 1; i < a.n_refs; i++)
        CHECK(strcmp(a.refs[i - 1].name, a.refs[i].name) < 0);
    buf_t out;
    buf_init(&out, 1 << 16);
    CHECK(model_person_json(&out, &a) == 0);
    check_canonical(&out);
    CHECK(model_person_parse(out.p, out.len, a.id, &b, &errs) == 0);
    CHECK(model_person_same(&a, &b));
    /* The person's references embedded in a break go through the same writer. */
    model_break_t br;
    memset(&br, 0, sizeof(br));
    br.id = br.person_id = br.definition_id = a.id;
    model_embed_t embed = { a.refs, a.n_refs, true };
    buf_reset(&out);
    CHECK(model_break_json(&out, &br, &embed) == 0);
    check_canonical(&out);
    buf_deinit(&out);
}

static void fuzz_line(const char *p, size_t n)
{
    model_batch_line_t l, m;
    model_errors_t errs;
    int rc = model_batch_line_parse(p, n, &l, &errs);
    check_errors(rc, &errs);
    if (rc)
        return;
    buf_t out;
    buf_init(&out, 1 << 16);
    if (l.del) {
        CHECK(buf_printf(&out, "{\"op\":\"delete\",\"id\":%lld}", (long long)l.rec.id) == 0);
    } else {
        CHECK(buf_append_str(&out, "{\"op\":\"upsert\",\"data\":") == 0);
        CHECK(model_break_json(&out, &l.rec, NULL) == 0);
        CHECK(buf_append_char(&out, '}') == 0);
        l.rec.calculated_given = true;
        l.rec.window_taken = false;
    }
    CHECK(model_batch_line_parse(out.p, out.len, &m, &errs) == 0);
    CHECK(m.del == l.del);
    CHECK(l.del ? m.rec.id == l.rec.id : model_break_same(&l.rec, &m.rec));
    buf_deinit(&out);
}

static void fuzz_version(const char *p, size_t n)
{
    uint64_t v;
    int rc = model_version_parse(p, n, &v);
    CHECK(rc == 0 || rc == BH_EINVAL || rc == BH_ERANGE);
    if (rc)
        return;
    char s[MODEL_VERSION_LEN + 1];
    model_version_format(v, s);
    CHECK(n == MODEL_VERSION_LEN);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'a' && c <= 'f')
            c = (char)(c - 'a' + 'A');
        CHECK(c == s[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    /* The path id comes from the input's length so both the "$batch" (0) and the
     * "PUT /breaks/{id}" paths get exercised, including a matching id of 1. */
    fuzz_break(p, size, 0);
    fuzz_break(p, size, (int64_t)(size % 4));
    fuzz_definition(p, size);
    fuzz_person(p, size);
    fuzz_line(p, size);
    fuzz_version(p, size);
    return 0;
}
