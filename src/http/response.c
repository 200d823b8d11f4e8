/*
 * response.c: status texts, SPEC error codes and the error body. Pure functions,
 * shared by the server (its own errors) and every handler.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static const struct {
    int status;
    const char *text;
    const char *code;
} statuses[] = {
    { 100, "Continue", NULL },
    { 200, "OK", NULL },
    { 201, "Created", NULL },
    { 202, "Accepted", NULL },
    { 204, "No Content", NULL },
    { 400, "Bad Request", "BadRequest" },
    { 401, "Unauthorized", "Unauthorized" },
    { 403, "Forbidden", "Forbidden" },
    { 404, "Not Found", "NotFound" },
    { 405, "Method Not Allowed", "MethodNotAllowed" },
    { 408, "Request Timeout", "RequestTimeout" },
    { 409, "Conflict", "Conflict" },
    { 410, "Gone", "Gone" },
    { 411, "Length Required", "LengthRequired" },
    { 413, "Payload Too Large", "PayloadTooLarge" },
    { 414, "URI Too Long", "UriTooLong" },
    { 415, "Unsupported Media Type", "UnsupportedMediaType" },
    { 417, "Expectation Failed", "ExpectationFailed" },
    { 429, "Too Many Requests", "TooManyRequests" },
    { 431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge" },
    { 500, "Internal Server Error", "InternalServerError" },
    { 501, "Not Implemented", "NotImplemented" },
    { 503, "Service Unavailable", "ServiceUnavailable" },
};

const char *http_status_text(int status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status)
            return statuses[i].text;
    return "Unknown";
}

const char *http_error_code(int status)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status && statuses[i].code)
            return statuses[i].code;
    return status >= 500 ? "InternalServerError" : "BadRequest";
}

/* A JSON string of s; bytes that are not valid UTF-8 become '?', so an error message
 * that quotes client input (a decoded %FF) still yields a valid error body. */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(copy);
    free(copy);
    return j;
}

int http_error_body(buf_t *b, int status, const char *message, const char *const *reasons,
                    size_t n_reasons)
{
    int rc = BH_ENOMEM;
    json_t *err = json_object();
    json_t *root = json_object();
    json_t *arr = json_array();
    if (!err || !root || !arr)
        goto out;
    if (json_object_set_new(err, "code", json_string(http_error_code(status))) ||
        json_object_set_new(err, "message", safe_string(message ? message : http_status_text(status))))
        goto out;
    for (size_t i = 0; i < n_reasons; i++)
        if (json_array_append_new(arr, safe_string(reasons[i])))
            goto out;
    if (json_object_set(err, "reasons", arr) || json_object_set(root, "error", err))
        goto out;
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        goto out;
    rc = buf_append_str(b, s);
    free(s);
out:
    json_decref(arr);
    json_decref(err);
    json_decref(root);
    return rc;
}

#include "http/http_int.h"

int http__format_head(buf_t *b, const http__head_t *h)
{
    int rc = buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\nX-Request-Id: %s\r\n",
                        h->status, http_status_text(h->status), h->date, h->server_name,
                        h->request_id);
    if (!rc && h->content_type)
        rc = buf_printf(b, "Content-Type: %s\r\n", h->content_type);
    if (!rc && h->chunked)
        rc = buf_append_str(b, "Transfer-Encoding: chunked\r\n");
    else if (!rc && h->send_length)
        rc = buf_printf(b, "Content-Length: %zu\r\n", h->content_length);
    if (!rc && h->extra.n)
        rc = buf_append(b, h->extra.p, h->extra.n);
    if (!rc && !h->keep_alive)
        rc = buf_append_str(b, "Connection: close\r\n");
    else if (!rc && h->http10)
        rc = buf_append_str(b, "Connection: keep-alive\r\n");
    if (!rc)
        rc = buf_append_str(b, "\r\n");
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http__percent_decode(const char *p, size_t n, char *out, bool plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0')
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}
