/*
 * common.c: small pieces every resource handler needs: path ids, content types,
 * and the mapping of store results to HTTP answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"

int64_t api_path_id(const http_request_t *req)
{
    slice_t s = http_request_param(req, "id");
    unsigned long long v;
    if (!slice_to_u64(s, 9007199254740992ULL, &v) || v == 0 || (s.n > 1 && s.p[0] == '0'))
        return 0;
    return (int64_t)v;
}

bool api_media_type_is(const http_request_t *req, const char *type)
{
    slice_t ct = http_request_header(req, "content-type");
    if (!ct.p)
        return false;
    const char *semi = memchr(ct.p, ';', ct.n);
    if (semi)
        ct.n = (size_t)(semi - ct.p);
    return slice_eq_nocase(slice_trim(ct), type);
}

bool api_require_json(http_request_t *req)
{
    if (api_media_type_is(req, "application/json"))
        return true;
    const char *reasons[] = { "Content-Type must be application/json" };
    http_respond_error(req, 415, "unsupported media type", reasons, 1);
    return false;
}

void api_respond_buf(http_request_t *req, int status, const buf_t *b)
{
    http_respond_json(req, status, buf_cstr(b), b->len);
}

const char *api_store_error_message(int rc)
{
    switch (rc) {
    case BH_ENOMEM:
        return "the server is out of memory";
    case BH_ESHUTDOWN:
        return "the server is shutting down";
    case BH_ENOSPC:
        return "the store's disk is full (SQLITE_FULL); writes fail until space is freed";
    case BH_EDISKIO:
        return "the store's disk failed with an I/O error (SQLITE_IOERR)";
    default:
        return "the store is not available";
    }
}

void api_respond_store_error(http_request_t *req, int rc)
{
    log_error("store call failed", LOG_STR("rid", req->request_id), LOG_STR("error", err_str(rc)));
    http_respond_error(req, 503, api_store_error_message(rc), NULL, 0);
}

void api_respond_invalid(http_request_t *req, const model_errors_t *errs)
{
    const char *reasons[MODEL_REASONS_MAX];
    for (size_t i = 0; i < errs->n; i++)
        reasons[i] = errs->reasons[i];
    http_respond_error(req, 400, "the request body is invalid", reasons, errs->n);
}

void api_respond_write_error(http_request_t *req, const store_write_result_t *res)
{
    const char *reasons[] = { res->reason };
    size_t n = res->reason[0] ? 1 : 0;
    switch (res->rc) {
    case BH_ENOTFOUND:
        http_respond_error(req, 404, "no such resource", reasons, n);
        return;
    case BH_EINVAL:
        http_respond_error(req, 400, "the request body is invalid", reasons, n);
        return;
    case BH_ECONFLICT:
    case BH_EEXIST:
        http_respond_error(req, 409, "the change conflicts with the current data", reasons, n);
        return;
    default:
        api_respond_store_error(req, res->rc);
    }
}

void api_set_location(http_request_t *req, const char *collection, int64_t id)
{
    char loc[160];
    snprintf(loc, sizeof(loc), API_BASE "/%s/%lld", collection, (long long)id);
    http_response_header(req, "Location", loc);
}

size_t api_page_size(http_request_t *req)
{
    const char *v;
    if (!http_request_query(req, "pageSize", &v))
        return 1000;
    unsigned long long n;
    if (!slice_to_u64(slice_from_cstr(v), 10000, &n) || n == 0) {
        const char *reasons[] = { "pageSize: must be an integer between 1 and 10000" };
        http_respond_error(req, 400, "invalid query parameter", reasons, 1);
        return 0;
    }
    return (size_t)n;
}
