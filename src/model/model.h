/*
 * model.h: the resources of SPEC §3 (breaks, break definitions, people) as C
 * records, their JSON wire form, and their validation.
 *
 * Parsing is strict: a body must be a JSON object without duplicate keys, every
 * field of SPEC §3 must be present with the right type and range, and unknown
 * properties are refused. Every problem is reported, each naming its field, so
 * one 400 answer tells the writer everything that is wrong. Read-only properties
 * a GET returns (changeVersion, person.externalReferences) are accepted and
 * ignored, so a client can GET, change and PUT back.
 *
 * Serialisation is canonical (fixed key order, compact), so the same record
 * always gives the same bytes: what a webhook signs is what a GET returns.
 *
 * Pure functions; thread-safe.
 */
#ifndef BREAKHOOK_MODEL_MODEL_H
#define BREAKHOOK_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* ---- versions ------------------------------------------------------------ */

/* changeVersion: a per-tenant counter written as 20 upper-case hex digits. */
#define MODEL_VERSION_LEN 20
void model_version_format(uint64_t v, char out[MODEL_VERSION_LEN + 1]);
/* Exactly 20 hex digits (either case accepted on input). */
BH_MUST_USE int model_version_parse(const char *p, size_t n, uint64_t *out);

/* ---- records ------------------------------------------------------------- */

#define MODEL_MINUTES_MIN (-1440)
#define MODEL_MINUTES_MAX 2880
#define MODEL_DURATION_MAX 100000 /* minutes; any duration above is a data error */

typedef struct model_break {
    int64_t id;                  /* >= 1 */
    uint64_t version;            /* 0 until stored */
    int64_t person_id;           /* >= 1 */
    int64_t definition_id;       /* >= 1 */
    int32_t date;                /* days since 1970-01-01 */
    int32_t calculated;          /* calculatedDurationInMinutes, >= 0 */
    bool calculated_given;       /* false: the server computes it (SPEC §3.1) */
    int32_t clocked;             /* clockedDurationInMinutes, >= 0 */
    int32_t start;               /* startTimeInMinutes, -1440..2880 */
    int32_t end;                 /* endTimeInMinutes, -1440..2880, >= start */
    bool window_taken;           /* true: start and end were both omitted; the store
                                    takes them from the definition's window. false
                                    (the zero value) is today's break: both given */
    bool taken;                  /* isBreakTaken */
} model_break_t;

#define MODEL_TEXT_MAX 256       /* bytes of one name or translation */
#define MODEL_TRANSLATIONS_MAX 32
#define MODEL_LANG_MAX 16

typedef struct model_text {
    char def[MODEL_TEXT_MAX];    /* "default" */
    size_t n_tr;
    struct {
        char lang[MODEL_LANG_MAX];  /* e.g. "nl", "fr-BE": [A-Za-z0-9-], 1..15 */
        char text[MODEL_TEXT_MAX];
    } tr[MODEL_TRANSLATIONS_MAX];  /* sorted by lang, unique */
} model_text_t;

typedef struct model_definition {
    int64_t id;
    uint64_t version;
    model_text_t name;
    model_text_t friendly_name;
    int32_t paid;                /* paidDurationInMinutes, >= 0 */
    int32_t minimum;             /* minimumDurationInMinutes, >= 0 */
    int32_t maximum;             /* maximumDurationInMinutes, >= minimum */
    int32_t if_not_clocked;      /* ifNotClockedDurationInMinutes, >= 0 */
    bool uninterrupted;          /* hasToBeTakenUninterrupted */
    /* The window a break takes when it gives no start and end: optional, each in
     * MODEL_MINUTES_MIN..MAX, latest >= earliest when both are set; 0 when not set. */
    bool has_earliest, has_latest;
    int32_t earliest;            /* earliestStartTimeInMinutes */
    int32_t latest;              /* latestEndTimeInMinutes */
} model_definition_t;

#define MODEL_REFS_MAX 16
#define MODEL_REF_NAME_MAX 65    /* 64 bytes + NUL */
#define MODEL_REF_VALUE_MAX 129  /* 128 bytes + NUL */

typedef struct model_ref {
    char name[MODEL_REF_NAME_MAX];   /* "@employee-number", "@badge-number" or custom */
    char value[MODEL_REF_VALUE_MAX]; /* non-empty */
} model_ref_t;

typedef struct model_person {
    int64_t id;
    uint64_t version;
    size_t n_refs;
    model_ref_t refs[MODEL_REFS_MAX];  /* sorted by name, unique names */
} model_person_t;

/* The computed duration of SPEC §3.1. */
int32_t model_break_compute(const model_break_t *b, const model_definition_t *d);

/* True when every field a writer controls is equal (version is ignored). */
bool model_break_same(const model_break_t *a, const model_break_t *b);
bool model_definition_same(const model_definition_t *a, const model_definition_t *b);
bool model_person_same(const model_person_t *a, const model_person_t *b);
/* True when both definitions have the same window (set bounds and their values). */
bool model_definition_window_same(const model_definition_t *a, const model_definition_t *b);

/* ---- parsing (PUT bodies, $batch lines) ---------------------------------- */

#define MODEL_REASONS_MAX 32

/* Everything wrong with one body. Each reason names its field, e.g.
 * "date: '2023-02-30' is not a calendar date", "unknown property 'colour'". */
typedef struct model_errors {
    size_t n;
    char reasons[MODEL_REASONS_MAX][160];
} model_errors_t;

/* Parses a JSON text. path_id is the id in the URL (0 for a $batch line: then the
 * body's id is required and used). BH_EINVAL with errs filled when invalid. */
BH_MUST_USE int model_break_parse(const char *json, size_t n, int64_t path_id,
                                  model_break_t *out, model_errors_t *errs);
BH_MUST_USE int model_definition_parse(const char *json, size_t n, int64_t path_id,
                                       model_definition_t *out, model_errors_t *errs);
BH_MUST_USE int model_person_parse(const char *json, size_t n, int64_t path_id,
                                   model_person_t *out, model_errors_t *errs);

/* The same from an already parsed jansson object (for $batch "data"). The object
 * type is json_t; declared as void to keep jansson out of this header. */
BH_MUST_USE int model_break_from_json(const void *json_obj, int64_t path_id, model_break_t *out,
                                      model_errors_t *errs);

/* One line of POST /breaks/$batch (SPEC §4): {"op":"upsert","data":{...break...}}
 * or {"op":"delete","id":N}. Anything else is BH_EINVAL with reasons. */
typedef struct model_batch_line {
    bool del;
    model_break_t rec;          /* upsert: the break; delete: rec.id only */
} model_batch_line_t;

BH_MUST_USE int model_batch_line_parse(const char *p, size_t n, model_batch_line_t *out,
                                       model_errors_t *errs);

/* ---- serialisation ------------------------------------------------------- */

/* External references to embed in a break's person object (SPEC §1): the values
 * the person has for the requested names, already filtered. NULL/0: none asked. */
typedef struct model_embed {
    const model_ref_t *refs;
    size_t n;
    bool asked;                 /* true: write "externalReferences":{} even when empty */
} model_embed_t;

/* Appends the canonical JSON of a record to b. */
BH_MUST_USE int model_break_json(buf_t *b, const model_break_t *r, const model_embed_t *embed);
BH_MUST_USE int model_definition_json(buf_t *b, const model_definition_t *r);
BH_MUST_USE int model_person_json(buf_t *b, const model_person_t *r);
/* A tombstone: {"changeVersion":"…","id":N}. */
BH_MUST_USE int model_tombstone_json(buf_t *b, uint64_t version, int64_t id);

#endif
