/*
 * model_int.h: what the files of the model module share and nobody else uses.
 *
 * Two halves. The reading half wraps jansson so that every field check reports
 * its own reason, named by its full path ("person.id", "data.date"), and carries
 * on: the parsers never stop at the first problem. The writing half is a tiny
 * JSON emitter on top of buf_t with a sticky error, so the serialisers can be
 * written as a straight sequence of appends and check once at the end; it
 * produces the same bytes as jansson's json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) for the same tree (test_model proves it), without
 * building a tree for every record on the read path.
 */
#ifndef BREAKHOOK_MODEL_MODEL_INT_H
#define BREAKHOOK_MODEL_MODEL_INT_H

#include <jansson.h>

#include "model/model.h"

/* Nesting allowed in any body: the deepest legitimate one, a $batch line holding
 * a GET-shaped break, has 4 levels; 8 leaves room without letting a client make
 * us walk deep trees. */
#define MODEL__DEPTH_MAX 8

/* Identifiers are integers that survive a round trip through a JavaScript number. */
#define MODEL__ID_MAX 9007199254740992LL /* 2^53 */

/* Room for one field path such as "data.person.externalReferences". */
#define MODEL__PATH_MAX 96

/* ---- reasons ------------------------------------------------------------- */

/* Adds one reason unless MODEL_REASONS_MAX are already there. The text is
 * truncated to fit and made valid UTF-8 (stray bytes become '?'), because the
 * reasons end up in a JSON error body and may quote client input. */
void model__reason(model_errors_t *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short, printable excerpt of client input for quoting in a reason: at most
 * 40 bytes, cut on a character boundary, "..." appended when cut. */
#define MODEL__QUOTE_MAX 48
void model__quote(const char *s, size_t n, char out[MODEL__QUOTE_MAX]);

/* Parses a whole text: valid JSON without duplicate keys, an object, not nested
 * deeper than MODEL__DEPTH_MAX. what names the text in reasons ("body", "line").
 * On success *out is a new reference the caller releases. Otherwise one reason
 * is added and BH_EINVAL returned, or BH_ENOMEM (no reason) when jansson ran out
 * of memory. */
BH_MUST_USE int model__load(const char *p, size_t n, const char *what, model_errors_t *errs,
                            json_t **out);

/* True when j nests at most max_levels containers (j itself counting as one). */
bool model__depth_ok(const json_t *j, int max_levels);

/* ---- field readers --------------------------------------------------------- */

/* One JSON object being read, with the path prefix its fields are reported under
 * ("" at the top, "person." inside a break, "data.person." in a $batch line). */
typedef struct model__obj {
    const json_t *obj;
    const char *prefix;
    model_errors_t *errs;
} model__obj_t;

/* Reports every key of o that is neither in allowed nor in ignored (both
 * NULL-terminated) as "unknown property '<prefix><key>'", in document order. */
void model__check_keys(const model__obj_t *o, const char *const *allowed,
                       const char *const *ignored);

/* Each reader looks up key; when present and valid it stores the value and
 * returns true. When the key is absent it reports "<path>: is required" if
 * required; when the value is wrong it reports why. Either way it returns false
 * with *out untouched. */
bool model__get_int(const model__obj_t *o, const char *key, bool required, int64_t min,
                    int64_t max, int64_t *out);
bool model__get_bool(const model__obj_t *o, const char *key, bool required, bool *out);
bool model__get_string(const model__obj_t *o, const char *key, bool required,
                       const json_t **out);
bool model__get_object(const model__obj_t *o, const char *key, bool required,
                       const json_t **out);

/* The record's "id": with path_id 0 (a $batch line) the body's id is required;
 * otherwise the body's id must be present and equal path_id. Stores the id and
 * returns true when it is valid. */
bool model__get_id(const model__obj_t *o, int64_t path_id, int64_t *out);

/* Writes "<prefix><key>" into out (truncated if it would not fit). */
void model__path(const model__obj_t *o, const char *key, char out[MODEL__PATH_MAX]);

/* The parsers behind the public entry points, reading an object already loaded
 * and reporting under prefix. They clear *out first and return BH_EINVAL when
 * they added a reason. */
int model__break_read(const json_t *obj, int64_t path_id, const char *prefix,
                      model_break_t *out, model_errors_t *errs);

/* ---- writer -------------------------------------------------------------- */

/* Appends to b; the first failure sticks in rc and later appends do nothing.
 * model__w_end() undoes everything appended since model__w_begin() when rc is
 * set, so a serialiser never leaves half a record in the caller's buffer. */
typedef struct model__w {
    buf_t *b;
    size_t start;
    int rc;
} model__w_t;

void model__w_begin(model__w_t *w, buf_t *b);
BH_MUST_USE int model__w_end(model__w_t *w);
void model__w_raw(model__w_t *w, const char *p, size_t n);
/* A string literal of the source, appended without escaping. */
#define model__w_lit(w, s) model__w_raw((w), (s), sizeof(s) - 1)
void model__w_int(model__w_t *w, int64_t v);
/* A JSON string: quoted and escaped exactly like jansson does. */
void model__w_str(model__w_t *w, const char *p, size_t n);
/* "changeVersion":"<20 hex>" with the key. */
void model__w_version(model__w_t *w, uint64_t v);
/* An externalReferences map: {"name":"value",...} in the order given. */
void model__w_refs(model__w_t *w, const model_ref_t *refs, size_t n);

#endif
