/*
 * event.c: a change as consumers see it (event.h).
 */
#include "delivery/event.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static int cmp_person(const void *a, const void *b)
{
    int64_t x = ((const model_person_t *)a)->id, y = ((const model_person_t *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool wants_refs(const event_refs_t *refs)
{
    return refs && refs->refs && refs->refs->n > 0;
}

/* The people ids[0..n) (any order, repeats allowed; sorted in place), read at once
 * and sorted by id into *people. */
static int people_read(store_t *s, int64_t tenant_id, int64_t *ids, size_t n,
                       model_person_t **people, size_t *n_people)
{
    *people = NULL;
    *n_people = 0;
    if (n == 0)
        return 0;
    qsort(ids, n, sizeof(*ids), cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || ids[u - 1] != ids[i])
            ids[u++] = ids[i];
    int rc = store_people_get_many(s, tenant_id, ids, u, people, n_people);
    if (rc == 0)
        qsort(*people, *n_people, sizeof(**people), cmp_person);
    return rc;
}

/* The asked references of the person, in the order asked, into refs_out (room for
 * EXTREF_MAX_PAIRS); p may be NULL (no such person: none). */
static model_embed_t embed_of(const event_refs_t *refs, const model_person_t *p,
                              model_ref_t *refs_out)
{
    model_embed_t em = { .refs = refs_out, .n = 0, .asked = refs && refs->asked };
    if (!wants_refs(refs) || !p)
        return em;
    const extref_list_t *l = refs->refs;
    for (size_t r = 0; r < l->n && em.n < EXTREF_MAX_PAIRS; r++)
        for (size_t q = 0; q < p->n_refs; q++)
            if (!strcmp(p->refs[q].name, l->items[r].name))
                refs_out[em.n++] = p->refs[q];
    return em;
}

static const model_person_t *person_find(const model_person_t *people, size_t n, int64_t id)
{
    model_person_t key = { .id = id };
    return people ? bsearch(&key, people, n, sizeof(*people), cmp_person) : NULL;
}

int event_breaks_json(store_t *s, int64_t tenant_id, const model_break_t *bs, size_t n,
                      const event_refs_t *refs, buf_t *out)
{
    model_person_t *people = NULL;
    size_t n_people = 0;
    int rc = 0;
    if (wants_refs(refs) && n > 0) {
        int64_t *ids = malloc(n * sizeof(*ids));
        if (!ids)
            return BH_ENOMEM;
        for (size_t i = 0; i < n; i++)
            ids[i] = bs[i].person_id;
        rc = people_read(s, tenant_id, ids, n, &people, &n_people);
        free(ids);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        model_ref_t embedded[EXTREF_MAX_PAIRS];
        model_embed_t em =
            embed_of(refs, person_find(people, n_people, bs[i].person_id), embedded);
        if (i)
            rc = buf_append_char(out, ',');
        rc = rc ? rc : model_break_json(out, &bs[i], &em);
    }
    free(people);
    return rc;
}

/* {"changeType":"…","data":<data>} from data[0..n). */
static char *wrap(store_change_type_t type, const char *data, size_t n)
{
    const char *head = type == STORE_CHANGE_DELETE ? "{\"changeType\":\"Delete\",\"data\":"
                                                   : "{\"changeType\":\"InsertOrUpdate\",\"data\":";
    size_t hl = strlen(head);
    char *b = malloc(hl + n + 2);
    if (!b)
        return NULL;
    memcpy(b, head, hl);
    memcpy(b + hl, data, n);
    b[hl + n] = '}';
    b[hl + n + 1] = '\0';
    return b;
}

int event_bodies(store_t *s, int64_t tenant_id, store_collection_t coll,
                 const store_change_t *changes, size_t n, const event_refs_t *refs,
                 char **bodies)
{
    for (size_t i = 0; i < n; i++)
        bodies[i] = NULL;
    bool embed = coll == STORE_COLL_BREAKS && wants_refs(refs) && n > 0;
    model_break_t *parsed = NULL;   /* embed: the upserts, parsed once */
    bool *ok = NULL;                /* parsed[i] holds change i */
    model_person_t *people = NULL;
    size_t n_people = 0;
    int rc = 0;
    if (embed) {
        parsed = malloc(n * sizeof(*parsed));
        ok = calloc(n, sizeof(*ok));
        int64_t *ids = malloc(n * sizeof(*ids));
        size_t k = 0;
        if (!parsed || !ok || !ids)
            rc = BH_ENOMEM;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const store_change_t *c = &changes[i];
            if (c->type != STORE_CHANGE_UPSERT)
                continue;
            model_errors_t errs;
            if (model_break_parse(c->body, strlen(c->body), 0, &parsed[i], &errs)) {
                log_error("a stored break does not parse; delivered without references",
                          LOG_INT("version", (int64_t)c->version),
                          LOG_STR("reason", errs.n ? errs.reasons[0] : ""));
                continue;
            }
            parsed[i].version = c->version;
            parsed[i].calculated_given = true; /* written as stored */
            ok[i] = true;
            ids[k++] = parsed[i].person_id;
        }
        if (rc == 0)
            rc = people_read(s, tenant_id, ids, k, &people, &n_people);
        free(ids);
    }
    buf_t out;
    buf_init(&out, 1 << 20);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const store_change_t *c = &changes[i];
        if (!embed || !ok[i]) {
            bodies[i] = wrap(c->type, c->body, strlen(c->body));
        } else {
            model_ref_t embedded[EXTREF_MAX_PAIRS];
            model_embed_t em =
                embed_of(refs, person_find(people, n_people, parsed[i].person_id), embedded);
            buf_reset(&out);
            if (model_break_json(&out, &parsed[i], &em) == 0)
                bodies[i] = wrap(c->type, out.p, out.len);
        }
        if (!bodies[i])
            rc = BH_ENOMEM;
    }
    buf_deinit(&out);
    free(people);
    free(parsed);
    free(ok);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            free(bodies[i]);
            bodies[i] = NULL;
        }
    }
    return rc;
}
