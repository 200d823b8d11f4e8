/*
 * handlers.h: the route handlers, shared between api.c (the table) and the
 * per-resource files that define them.
 */
#ifndef BREAKHOOK_API_HANDLERS_H
#define BREAKHOOK_API_HANDLERS_H

#include "http/http.h"

void api_healthz(http_request_t *req);
void api_readyz(http_request_t *req);
void api_token(http_request_t *req);
void api_discovery(http_request_t *req);
void api_token_info(http_request_t *req);

#endif
