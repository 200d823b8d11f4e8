/*
 * handlers.h: the route handlers, shared between api.c (the table) and the
 * per-resource files that define them.
 */
#ifndef BREAKHOOK_API_HANDLERS_H
#define BREAKHOOK_API_HANDLERS_H

#include "api/api.h"
#include "core/buf.h"
#include "core/slice.h"
#include "filter/extref.h"
#include "http/http.h"
#include "model/model.h"
#include "store/store.h"

void api_healthz(http_request_t *req);
void api_readyz(http_request_t *req);
void api_token(http_request_t *req);
void api_discovery(http_request_t *req);
void api_token_info(http_request_t *req);

void api_person_put(http_request_t *req);
void api_person_get(http_request_t *req);
void api_person_delete(http_request_t *req);

void api_definition_put(http_request_t *req);
void api_definition_get(http_request_t *req);
void api_definition_delete(http_request_t *req);
void api_definitions_list(http_request_t *req);

void api_break_put(http_request_t *req);
void api_break_get(http_request_t *req);
void api_break_delete(http_request_t *req);
void api_breaks_list(http_request_t *req);
void api_breaks_batch(http_request_t *req);

/* One page of a list answer, without its closing ']' (breaks.c, definitions.c; the
 * delta's initial load uses them too): {"value":[ and the records, *more when a next
 * page exists, which starts after *next. */
BH_MUST_USE int api_breaks_page(store_t *s, int64_t tenant_id, const store_breaks_query_t *q,
                                const extref_list_t *refs, bool asked, buf_t *out, bool *more,
                                api_cursor_t *next);
BH_MUST_USE int api_definitions_page(store_t *s, int64_t tenant_id, int64_t after_id,
                                     size_t limit, buf_t *out, bool *more, api_cursor_t *next);

/* Delta (delta.c): the initial load, reached from GET /breaks?…&delta and GET
 * /break-definitions?delta once the list handler has checked the scope and the filter
 * (breaks: date_from..date_to, a delta's range); and the follow-ups. */
void api_delta_initial(http_request_t *req, const auth_claims_t *c, store_collection_t coll,
                       int32_t date_from, int32_t date_to);
void api_delta_breaks(http_request_t *req);
void api_delta_definitions(http_request_t *req);

void api_webhook_create(http_request_t *req);
void api_webhooks_list(http_request_t *req);
void api_webhook_get(http_request_t *req);
void api_webhook_delete(http_request_t *req);
void api_webhook_deliveries(http_request_t *req);

#define API_BATCH_WINDOW (1 << 20)    /* body bytes handed to $batch at a time */
#define API_BATCH_MAX_BODY (64 << 20) /* SPEC §1: batch bodies up to 64 MiB */

/* The body of POST /webhooks (webhooks.c; also fuzz/fuzz_webhook_body.c):
 * {"destinationUrl","collectionName"} with duplicate keys refused. 0 with *out
 * filled (url allocated in arena, url_len its length: it may hold a NUL, which the
 * destination rules then refuse); BH_EINVAL with 1..API_WEBHOOK_BODY_REASONS_MAX
 * reasons in reasons[] (strings static or in arena); BH_ENOMEM. */
#define API_WEBHOOK_BODY_REASONS_MAX 10
typedef struct api_webhook_body {
    store_collection_t collection;
    const char *url;
    size_t url_len;
    bool resume;              /* resumeAfter was given: */
    uint64_t resume_after;    /* its changeVersion */
} api_webhook_body_t;
BH_MUST_USE int api_webhook_body_parse(const char *p, size_t n, arena_t *arena,
                                       api_webhook_body_t *out, const char **reasons,
                                       size_t *n_reasons);

/* The pure parts of $batch (batch.c; also fuzz/fuzz_batch.c). One line of the body
 * without its '\n' (a trailing '\r' is dropped): 1 for a blank line (skipped, not
 * reported), 0 with *out filled, or an error code with errs filled. */
BH_MUST_USE int api_batch_line_parse(slice_t line, model_batch_line_t *out,
                                     model_errors_t *errs);
/* Appends the report line of a refused line, {"line":N,"status":S,"reasons":[...]}
 * and a '\n'; the reasons are escaped for JSON. */
BH_MUST_USE int api_batch_format_error(buf_t *o, size_t line, int status,
                                       const char *const *reasons, size_t n);

#endif
