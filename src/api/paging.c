/*
 * paging.c: keyset paging with sealed continuation tokens (SPEC §1).
 *
 * A page ends at a keyset position (for breaks: date and id). The token carries
 * that position, the collection, a hash of the query it belongs to and when it was
 * issued, sealed with auth_seal, so a client can neither forge a position nor
 * reuse a token with another filter: both answer 409 like an expired token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/hash.h"

typedef struct page_token {
    uint64_t query_hash;
    int64_t a, b;
    int64_t issued_s;
    char collection[24];
} page_token_t;

/* FNV-1a over the query parameters that decide the result set. */
static uint64_t query_hash(http_request_t *req)
{
    static const char *const keys[] = { "filter", "externalReferences", "pageSize" };
    uint64_t h = HASH_FNV_OFFSET;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const char *v;
        if (!http_request_query(req, keys[k], &v))
            v = "\x01";
        h = hash_fnv(h, v, strlen(v));
        h = hash_fnv(h, "\xff", 1);
    }
    return h;
}

int api_list_close(http_request_t *req, const char *collection, const api_cursor_t *next,
                   buf_t *out)
{
    int rc = buf_append_char(out, ']');
    if (!rc && next)
        rc = api_next_link(req, collection, next, out);
    return rc ? rc : buf_append_char(out, '}');
}

void api_list_done(http_request_t *req, void *arg)
{
    api_list_t *l = arg;
    if (l->rc)
        api_respond_store_error(req, l->rc);
    else
        api_respond_buf(req, 200, &l->out);
    buf_deinit(&l->out);
}

void api_cursor_from_id(const char *uuid, api_cursor_t *cur)
{
    uint64_t half[2] = { 0, 0 };
    size_t k = 0;
    for (const char *p = uuid; *p && k < 32; p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            continue; /* the dashes */
        half[k / 16] = half[k / 16] << 4 | (uint64_t)v;
        k++;
    }
    cur->a = (int64_t)half[0];
    cur->b = (int64_t)half[1];
}

void api_cursor_to_id(const api_cursor_t *cur, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t half[2] = { (uint64_t)cur->a, (uint64_t)cur->b };
    size_t o = 0;
    for (size_t k = 0; k < 32; k++) {
        if (k == 8 || k == 12 || k == 16 || k == 20)
            out[o++] = '-';
        out[o++] = hex[(half[k / 16] >> (4 * (15 - k % 16))) & 15];
    }
    out[o] = '\0';
}

const char *api_page_token_open(auth_keyring_t *k, const char *tok, size_t n,
                                const char *collection, uint64_t query_hash, int64_t now_s,
                                api_cursor_t *cur)
{
    page_token_t t;
    size_t got = 0;
    if (auth_unseal(k, "page", tok, n, &t, sizeof(t), &got) || got != sizeof(t))
        return "the continuationToken is not valid";
    if (strncmp(t.collection, collection, sizeof(t.collection)) != 0 ||
        t.query_hash != query_hash)
        return "the continuationToken belongs to another query";
    if (now_s - t.issued_s > API_PAGE_TOKEN_TTL_S)
        return "the continuationToken has expired";
    cur->a = t.a;
    cur->b = t.b;
    return NULL;
}

int api_page_token_seal(auth_keyring_t *k, const char *collection, uint64_t query_hash,
                        int64_t now_s, const api_cursor_t *cur, char **tok)
{
    page_token_t t;
    memset(&t, 0, sizeof(t));
    t.query_hash = query_hash;
    t.a = cur->a;
    t.b = cur->b;
    t.issued_s = now_s;
    snprintf(t.collection, sizeof(t.collection), "%s", collection);
    return auth_seal(k, "page", &t, sizeof(t), tok);
}

int api_cursor_read(http_request_t *req, const char *collection, api_cursor_t *cur)
{
    const char *tok;
    if (!http_request_query(req, "continuationToken", &tok))
        return 0;
    api_ctx_t *ctx = api_ctx(req);
    const char *why = api_page_token_open(ctx->keyring, tok, strlen(tok), collection,
                                          query_hash(req), clock_now_ms(ctx->clock) / 1000, cur);
    if (why) {
        const char *reasons[] = { why };
        http_respond_error(req, 409, "start the listing again without continuationToken",
                           reasons, 1);
        return -1;
    }
    return 1;
}

int api_next_link(http_request_t *req, const char *collection, const api_cursor_t *cur, buf_t *b)
{
    return api_next_link_with(req, collection, cur, NULL, NULL, b);
}

/* Whether the query parameter p..pe is name=…. */
static bool param_is(const char *p, const char *pe, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(pe - p) > n && !memcmp(p, name, n) && p[n] == '=';
}

int api_next_link_with(http_request_t *req, const char *collection, const api_cursor_t *cur,
                       const char *extra, const char *extra_value, buf_t *b)
{
    api_ctx_t *ctx = api_ctx(req);
    char *tok = NULL;
    int rc = api_page_token_seal(ctx->keyring, collection, query_hash(req),
                                 clock_now_ms(ctx->clock) / 1000, cur, &tok);
    if (rc)
        return rc;
    rc = buf_append_str(b, ",\"nextLink\":\"");
    rc = rc ? rc : buf_append(b, req->path.p, req->path.n);
    rc = rc ? rc : buf_append_char(b, '?');
    /* Keep the client's own parameters as it wrote them, minus the old token. The
     * query is URL-encoded, so it holds no '"' or '\' to escape for JSON. */
    const char *p = req->query.p, *end = req->query.p + req->query.n;
    while (!rc && p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        bool drop = param_is(p, pe, "continuationToken") || (extra && param_is(p, pe, extra));
        bool unsafe = memchr(p, '"', (size_t)(pe - p)) || memchr(p, '\\', (size_t)(pe - p));
        if (!drop && !unsafe && pe > p) {
            rc = buf_append(b, p, (size_t)(pe - p));
            rc = rc ? rc : buf_append_char(b, '&');
        }
        p = amp ? amp + 1 : end;
    }
    rc = rc ? rc : buf_printf(b, "continuationToken=%s", tok);
    if (extra)
        rc = rc ? rc : buf_printf(b, "&%s=%s", extra, extra_value);
    rc = rc ? rc : buf_append_char(b, '"');
    free(tok);
    return rc;
}
