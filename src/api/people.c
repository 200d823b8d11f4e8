/*
 * people.c: PUT, GET and DELETE /people/{id} (SPEC §3.3, §4). People carry only
 * what external references need: an id and reference names mapped to values,
 * each value unique among the tenant's people.
 */
#include "api/api.h"
#include "api/handlers.h"

static int parse(const char *json, size_t n, int64_t path_id, void *out, model_errors_t *errs)
{
    return model_person_parse(json, n, path_id, out, errs);
}

static int put(store_t *s, int64_t tenant_id, const void *rec, store_write_result_t *res)
{
    return store_person_put(s, tenant_id, rec, res);
}

static int get(store_t *s, int64_t tenant_id, int64_t id, void *out)
{
    return store_person_get(s, tenant_id, id, out);
}

static int encode(http_request_t *req, store_t *s, int64_t tenant_id, const void *rec, buf_t *b)
{
    (void)req, (void)s, (void)tenant_id;
    return model_person_json(b, rec);
}

static const api_resource_t people = {
    .collection = "people",
    .read_scope = SCOPE_PEOPLE_READ,
    .write_scope = SCOPE_PEOPLE_WRITE,
    .not_found = "no such person",
    .rec_size = sizeof(model_person_t),
    .parse = parse,
    .put = put,
    .get = get,
    .del = store_person_delete,
    .encode = encode,
};

void api_person_put(http_request_t *req)
{
    api_resource_put(req, &people);
}

void api_person_get(http_request_t *req)
{
    api_resource_get(req, &people);
}

void api_person_delete(http_request_t *req)
{
    api_resource_delete(req, &people);
}
