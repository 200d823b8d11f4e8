/*
 * event.h: a change as consumers see it, built by one piece of code for every way
 * they see it (issue #15): the body a webhook delivers
 * ({"changeType":"InsertOrUpdate"|"Delete","data":<record>}), the delta item (the
 * same object), and the GET representation of breaks (the record alone). A break's
 * person object carries the external references asked for (externalReferences=
 * (people,NAME)… on a GET, the webhook's externalReferences for deliveries), in the
 * order asked; a name the person has no value for is left out; the people are read
 * from the store once per call.
 *
 * Runs where store calls may block (a worker thread); any thread.
 */
#ifndef BREAKHOOK_DELIVERY_EVENT_H
#define BREAKHOOK_DELIVERY_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "filter/extref.h"
#include "model/model.h"
#include "store/store.h"

/* The references to embed: refs->items in order (NULL or n = 0: none). asked: write
 * "externalReferences":{} even when no value is found (a GET that asked). */
typedef struct event_refs {
    const extref_list_t *refs;
    bool asked;
} event_refs_t;

/* Appends breaks bs[0..n) of the tenant to out as a comma-separated list of objects,
 * the asked references embedded. 0, a store failure, BH_ENOMEM or BH_ETOOBIG. */
BH_MUST_USE int event_breaks_json(store_t *s, int64_t tenant_id, const model_break_t *bs,
                                  size_t n, const event_refs_t *refs, buf_t *out);

/* The bodies of changes[0..n) of one tenant's collection, into bodies[i] (malloc'd,
 * NUL-terminated): {"changeType":"…","data":…}. A break upsert is parsed once and
 * written again with the references embedded when refs names any (its changeVersion
 * is the change's); other changes carry the stored record or tombstone as it is, and
 * so does a stored break that does not parse (logged). 0; or a store failure reading
 * the people, or BH_ENOMEM: then no body is left in bodies (all NULL), so that a
 * caller never skips a change it could not build. */
BH_MUST_USE int event_bodies(store_t *s, int64_t tenant_id, store_collection_t coll,
                             const store_change_t *changes, size_t n,
                             const event_refs_t *refs, char **bodies);

#endif
