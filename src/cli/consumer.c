/*
 * consumer.c: helpers shared by `breakhook sink` and `breakhook verify`.
 */
#include "cli/consumer.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/crypto.h"
#include "core/duration.h"
#include "core/slice.h"

const char *cli__consumer_getenv(const char *name)
{
    static const char prefix[] = "BREAKHOOK_";
    char mapped[128];
    if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
        return NULL;
    if (snprintf(mapped, sizeof(mapped), "%s%s", CONSUMER_ENV_PREFIX,
                 name + sizeof(prefix) - 1) >= (int)sizeof(mapped))
        return NULL;
    return getenv(mapped);
}

void cli__consumer_print_options(FILE *f, const config_option_t *opts, size_t n_opts)
{
    for (size_t i = 0; i < n_opts; i++) {
        const config_option_t *o = &opts[i];
        char flag[96], env[96], mapped[128];
        if (o->type == CONFIG_BOOL)
            snprintf(flag, sizeof(flag), "--%s", o->name);
        else
            snprintf(flag, sizeof(flag), "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        config_env_name(o->name, env, sizeof(env));
        snprintf(mapped, sizeof(mapped), "%s%s", CONSUMER_ENV_PREFIX, env + strlen("BREAKHOOK_"));
        fprintf(f, "  %-34s %s\n  %-34s (env %s)\n", flag, o->help, "", mapped);
    }
    fprintf(f, "  %-34s %s\n", "-h, --help", "show this help");
}

int cli__consumer_parse_key(const char *text, cli_key_t *k, char *why, size_t why_len)
{
    if (!text || !*text) {
        snprintf(why, why_len, "--key is required (whsec_..., as POST /webhooks returned it; "
                               "or set %sKEY)", CONSUMER_ENV_PREFIX);
        return BH_EINVAL;
    }
    if (strncmp(text, "whsec_", 6) != 0) {
        snprintf(why, why_len, "--key must start with 'whsec_'");
        return BH_EINVAL;
    }
    if (crypto_whsec_parse(text, k->b, sizeof(k->b), &k->n) != 0) {
        OPENSSL_cleanse(k->b, sizeof(k->b));
        snprintf(why, why_len, "--key: the part after 'whsec_' is not padded base64 of 1 to %d "
                               "bytes", SIGN_KEY_MAX);
        return BH_EINVAL;
    }
    return 0;
}

int cli__parse_tolerance(const char *text, int64_t *seconds)
{
    int64_t ms;
    if (!strcmp(text, "0")) {
        *seconds = 0;
        return 0;
    }
    if (duration_parse(text, &ms) != 0 || ms % 1000 != 0)
        return BH_EINVAL;
    *seconds = ms / 1000;
    return 0;
}

int cli__parse_listen(const char *s, char *host, size_t host_len, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= host_len)
            return BH_EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= host_len || colon == s)
            return BH_EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    unsigned long long p;
    if (!slice_to_u64(slice_from_cstr(colon + 1), 65535, &p))
        return BH_EINVAL;
    *port = (int)p;
    return 0;
}

int cli__write_port_file(const char *path, int port)
{
    char tmp[4096];
    char text[16];
    int n = snprintf(text, sizeof(text), "%d\n", port);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return BH_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return BH_EIO;
    bool ok = write(fd, text, (size_t)n) == n;
    close(fd);
    /* rename() makes the file appear whole: a reader never sees a partial port. */
    if (!ok || rename(tmp, path) != 0)
        return BH_EIO;
    return 0;
}

/* ---- captured requests (breakhook verify) ---------------------------------------- */

/* The next line of (p, end): its text without the line ending, and where the line
 * after it starts. False when no line ending is left. */
static bool next_line(const char **p, const char *end, slice_t *line)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return false;
    const char *e = nl;
    if (e > *p && e[-1] == '\r')
        e--;
    *line = slice_make(*p, (size_t)(e - *p));
    *p = nl + 1;
    return true;
}

/* Decodes a chunked body into out. Chunk extensions and trailers are ignored. */
static const char *dechunk(const char *p, const char *end, buf_t *out)
{
    for (;;) {
        slice_t line;
        if (!next_line(&p, end, &line))
            return "the chunked body is cut short (no chunk size line)";
        const char *semi = memchr(line.p, ';', line.n);
        slice_t hex = slice_trim(semi ? slice_make(line.p, (size_t)(semi - line.p)) : line);
        size_t size = 0;
        if (hex.n == 0 || hex.n > 8)
            return "the chunked body has a malformed chunk size";
        for (size_t i = 0; i < hex.n; i++) {
            char c = hex.p[i];
            unsigned v = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (v == 16)
                return "the chunked body has a malformed chunk size";
            size = size << 4 | v;
        }
        if (size == 0)
            return NULL; /* trailers, if any, carry nothing we need */
        if ((size_t)(end - p) < size)
            return "the chunked body is cut short";
        if (buf_append(out, p, size))
            return "the chunked body is larger than --max-bytes";
        p += size;
        if (!next_line(&p, end, &line) || line.n != 0)
            return "the chunked body has no line ending after a chunk";
    }
}

const char *cli__parse_captured_request(slice_t in, buf_t *dechunked, cli_captured_t *c)
{
    const char *p = in.p, *end = in.p + in.n;
    slice_t line;
    /* RFC 9112 §2.2: empty lines before the request line are ignored. */
    do {
        if (!next_line(&p, end, &line))
            return "the input is not an HTTP request (no request line)";
    } while (line.n == 0);
    if (line.n < 10 || !memchr(line.p, ' ', line.n) ||
        memcmp(line.p + line.n - 8, "HTTP/1.", 7) != 0)
        return "the first line is not an HTTP/1.x request line (like 'POST /hooks HTTP/1.1')";
    slice_t content_length = SLICE_NULL, transfer_encoding = SLICE_NULL;
    memset(c, 0, sizeof(*c));
    for (;;) {
        if (!next_line(&p, end, &line))
            return "the headers do not end with an empty line";
        if (line.n == 0)
            break;
        if (line.p[0] == ' ' || line.p[0] == '\t')
            return "a header line is folded (obsolete line folding is not supported)";
        const char *colon = memchr(line.p, ':', line.n);
        if (!colon || colon == line.p)
            return "a header line has no name (expected 'Name: value')";
        slice_t name = slice_make(line.p, (size_t)(colon - line.p));
        slice_t value = slice_trim(slice_make(colon + 1, line.n - name.n - 1));
        if (memchr(name.p, ' ', name.n) || memchr(name.p, '\t', name.n))
            return "a header name holds white space";
        slice_t *slot = slice_eq_nocase(name, "webhook-id")          ? &c->h.id
                        : slice_eq_nocase(name, "webhook-timestamp") ? &c->h.timestamp
                        : slice_eq_nocase(name, "webhook-signature") ? &c->h.signature
                        : slice_eq_nocase(name, "content-length")    ? &content_length
                        : slice_eq_nocase(name, "transfer-encoding") ? &transfer_encoding
                                                                     : NULL;
        if (!slot)
            continue;
        /* Two copies of a signature header are ambiguous: libraries disagree on which
         * one counts, so none is picked. */
        if (slot->p)
            return "a webhook-*, Content-Length or Transfer-Encoding header appears twice";
        *slot = value;
    }
    slice_t rest = slice_make(p, (size_t)(end - p));
    if (transfer_encoding.p) {
        if (transfer_encoding.n < 7 ||
            strncasecmp(transfer_encoding.p + transfer_encoding.n - 7, "chunked", 7) != 0)
            return "Transfer-Encoding other than chunked is not supported";
        const char *why = dechunk(rest.p, rest.p + rest.n, dechunked);
        if (why)
            return why;
        c->body = buf_slice(dechunked);
    } else if (content_length.p) {
        unsigned long long n;
        if (!slice_to_u64(content_length, (unsigned long long)SIZE_MAX, &n))
            return "Content-Length is not a number";
        if (n > rest.n)
            return "the body is shorter than its Content-Length: the capture is cut short";
        c->body = slice_make(rest.p, (size_t)n);
    } else {
        c->body = rest;
    }
    return NULL;
}
