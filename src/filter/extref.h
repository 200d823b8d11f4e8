/*
 * extref.h: the `externalReferences=` query parameter (SPEC §1, Protime
 * "external references"): a sequence of (collection,name) pairs such as
 *
 *     (people,@employee-number)(people,HRMID)
 *
 * A name starting with '@' is predefined and must be one the collection
 * defines (people: @employee-number, @badge-number); any other name is a custom
 * reference made of letters, digits, '-', '_' and '.'. Names are 1 to
 * EXTREF_MAX_NAME characters, '@' included. The only collection this server
 * knows is `people`. Spaces and tabs are tolerated around the parentheses and
 * the comma (names cannot contain them, so nothing is ambiguous); nothing else
 * may appear between pairs.
 *
 * Pure computation: no blocking, no global state, any thread. Memory comes from
 * the caller's arena and lives until it is reset.
 */
#ifndef BREAKHOOK_FILTER_EXTREF_H
#define BREAKHOOK_FILTER_EXTREF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

#define EXTREF_MAX_PAIRS 16   /* distinct pairs in one parameter */
#define EXTREF_MAX_NAME 64    /* bytes in one reference name */
#define EXTREF_MAX_INPUT 4096 /* bytes of parameter text */
#define EXTREF_ERR_MAX 256    /* a buffer this size holds every reason untruncated */

typedef struct extref {
    const char *collection; /* a static string: "people" */
    const char *name;       /* e.g. "@employee-number" or "HRMID"; NUL-terminated, in the arena */
    size_t name_len;
    bool predefined;        /* the name starts with '@' */
} extref_t;

typedef struct extref_list {
    const extref_t *items; /* in order of first appearance, duplicates removed; in the arena */
    size_t n;              /* 1..EXTREF_MAX_PAIRS */
} extref_list_t;

/* Parses (p, n), the parameter value after URL decoding, borrowed and not
 * necessarily NUL-terminated. Fails with BH_EINVAL and a reason for the API
 * client in err (what is wrong and at which 0-based byte position; input bytes
 * are quoted as printable ASCII or \xNN so the reason is valid JSON text) for
 * an empty value, a syntax error, an unknown collection or predefined name, a
 * bad custom name, more than EXTREF_MAX_PAIRS distinct pairs or more than
 * EXTREF_MAX_INPUT bytes; BH_ENOMEM when the arena is full. err may be NULL
 * when err_len is 0. On failure *out is empty. */
BH_MUST_USE int extref_parse(const char *p, size_t n, arena_t *a, extref_list_t *out, char *err,
                             size_t err_len);

#endif
