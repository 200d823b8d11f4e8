/*
 * destination.c: webhook destination URL parsing and SSRF address checks.
 * The rules, and why they are what they are, are in destination.h.
 */
#define _GNU_SOURCE /* EAI_NODATA */

#include "client/destination.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- reasons ------------------------------------------------------------ */

static void why_set(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    if (r < 0)
        why[0] = '\0';
}

/* One input byte as it may appear in a reason: 'c' when printable, else \xNN,
 * so reasons stay printable ASCII whatever the input holds. */
static const char *byte_quote(unsigned char c, char out[8])
{
    static const char hex[] = "0123456789abcdef";
    if (c >= 0x20 && c <= 0x7e) {
        out[0] = '\'';
        out[1] = (char)c;
        out[2] = '\'';
        out[3] = '\0';
    } else {
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[c >> 4];
        out[3] = hex[c & 15];
        out[4] = '\0';
    }
    return out;
}

/* ---- character classes --------------------------------------------------- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    return (unsigned)((c | 0x20) - 'a' + 10);
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* RFC 3986 path and query characters other than '%': unreserved, sub-delims,
 * ':', '@', '/', '?'. */
static bool is_path_char(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    switch (c) {
    case '-': case '.': case '_': case '~':                       /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')':  /* sub-delims */
    case '*': case '+': case ',': case ';': case '=':
    case ':': case '@': case '/': case '?':
        return true;
    default:
        return false;
    }
}

/* ---- IPv4 host spellings ------------------------------------------------- */

/* A label that makes the WHATWG URL parser treat the whole host as IPv4: all
 * decimal digits, or "0x"/"0X" and hex digits (possibly none). */
static bool label_is_number(const char *p, size_t n)
{
    if (n == 0)
        return false;
    size_t i = 0;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        for (i = 2; i < n; i++)
            if (!is_hex((unsigned char)p[i]))
                return false;
        return true;
    }
    for (; i < n; i++)
        if (!is_digit((unsigned char)p[i]))
            return false;
    return true;
}

/* One part of a legacy IPv4 spelling: 0x-prefixed hex, 0-prefixed octal or
 * decimal. Values above UINT32_MAX fail. */
static bool ipv4_legacy_part(const char *p, size_t n, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    if (n == 0)
        return false;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (n >= 2 && p[0] == '0') {
        base = 8;
        i = 1;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        unsigned d;
        if (base == 16 && is_hex(c))
            d = hex_val(c);
        else if (is_digit(c) && (unsigned)(c - '0') < base)
            d = c - '0';
        else
            return false;
        v = v * base + d;
        if (v > UINT32_MAX)
            return false;
    }
    *out = v;
    return true;
}

/* The address a host denotes under the WHATWG/inet_aton legacy rules (one to
 * four parts, each hex, octal or decimal, the last one filling the remaining
 * bytes; one trailing dot allowed), in host byte order. */
static bool ipv4_legacy(const char *p, size_t n, uint32_t *out)
{
    uint64_t parts[4];
    size_t np = 0, start = 0;
    if (n > 0 && p[n - 1] == '.')
        n--;
    if (n == 0)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.')
            continue;
        if (np == 4 || !ipv4_legacy_part(p + start, i - start, &parts[np]))
            return false;
        np++;
        start = i + 1;
    }
    uint64_t v = 0;
    for (size_t k = 0; k + 1 < np; k++) {
        if (parts[k] > 255)
            return false;
        v |= parts[k] << (8 * (3 - k));
    }
    if (parts[np - 1] >= (UINT64_C(1) << (8 * (5 - np))))
        return false;
    v |= parts[np - 1];
    *out = (uint32_t)v;
    return true;
}

/* ---- URL parsing --------------------------------------------------------- */

static int parse_ipv6_literal(const char *url, size_t at, size_t n, dest_url_t *out, char *why,
                              size_t why_len)
{
    const char *p = url + at;
    char tmp[INET6_ADDRSTRLEN];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;

    if (n > 0 && (p[0] == 'v' || p[0] == 'V')) {
        why_set(why, why_len, "URL host is an IPvFuture literal, which is not supported");
        return BH_EINVAL;
    }
    if (memchr(p, '%', n)) {
        why_set(why, why_len, "URL host must not carry an IPv6 zone identifier");
        return BH_EINVAL;
    }
    if (n == 0 || n >= sizeof(tmp))
        goto invalid;
    for (size_t i = 0; i < n; i++)
        if (!is_hex((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
            goto invalid;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    memset(sin6, 0, sizeof(*sin6));
    if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) != 1)
        goto invalid;
    sin6->sin6_family = AF_INET6;
    if (!inet_ntop(AF_INET6, &sin6->sin6_addr, out->host, sizeof(out->host)))
        goto invalid;
    out->host_kind = DEST_HOST_IPV6;
    return 0;
invalid:
    why_set(why, why_len, "URL host is not a valid IPv6 address");
    return BH_EINVAL;
}

static int parse_host_name(const char *url, size_t at, size_t n, dest_url_t *out, char *why,
                           size_t why_len)
{
    const char *p = url + at;
    char q[8];

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.') {
            why_set(why, why_len,
                    "URL host contains a character that is not allowed (%s at byte %zu)",
                    byte_quote(c, q), at + i);
            return BH_EINVAL;
        }
    }

    /* The last label, one trailing dot aside, decides whether this is an IPv4
     * address (as the WHATWG parser decides): "1.2.3.4", "127.1", "0x7f.1". */
    size_t end = n;
    if (end > 1 && p[end - 1] == '.')
        end--;
    size_t last = end;
    while (last > 0 && p[last - 1] != '.')
        last--;
    if (label_is_number(p + last, end - last)) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
        char tmp[INET_ADDRSTRLEN];
        uint32_t v;
        memset(sin, 0, sizeof(*sin));
        if (n < sizeof(tmp)) {
            memcpy(tmp, p, n);
            tmp[n] = '\0';
            if (inet_pton(AF_INET, tmp, &sin->sin_addr) == 1) {
                sin->sin_family = AF_INET;
                memcpy(out->host, tmp, n + 1);
                out->host_kind = DEST_HOST_IPV4;
                return 0;
            }
        }
        if (ipv4_legacy(p, n, &v)) {
            why_set(why, why_len,
                    "URL host is a non-canonical spelling of the IPv4 address %u.%u.%u.%u; "
                    "write it as four decimal numbers without leading zeros",
                    (unsigned)(v >> 24), (unsigned)(v >> 16) & 255, (unsigned)(v >> 8) & 255,
                    (unsigned)v & 255);
            return BH_EINVAL;
        }
        why_set(why, why_len, "URL host is not a valid IPv4 address");
        return BH_EINVAL;
    }

    if (end > DEST_HOST_MAX - 1) {
        why_set(why, why_len, "URL host is longer than 253 bytes");
        return BH_EINVAL;
    }
    size_t start = 0;
    for (size_t i = 0; i <= end; i++) {
        if (i < end && p[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0) {
            why_set(why, why_len, "URL host has an empty label");
            return BH_EINVAL;
        }
        if (len > 63) {
            why_set(why, why_len, "URL host has a label longer than 63 bytes");
            return BH_EINVAL;
        }
        if (p[start] == '-' || p[i - 1] == '-') {
            why_set(why, why_len, "URL host has a label that starts or ends with '-'");
            return BH_EINVAL;
        }
        start = i + 1;
    }
    for (size_t i = 0; i < n; i++)
        out->host[i] = to_lower(p[i]);
    out->host[n] = '\0';
    out->host_kind = DEST_HOST_NAME;
    out->addr.ss_family = AF_UNSPEC;
    return 0;
}

static int parse_port(const char *p, size_t n, dest_url_t *out, char *why, size_t why_len)
{
    unsigned v = 0;
    if (n == 0) {
        why_set(why, why_len, "URL port is empty");
        return BH_EINVAL;
    }
    if (n > 5)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            goto bad;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        goto bad;
    out->port = (uint16_t)v;
    out->port_explicit = true;
    return 0;
bad:
    why_set(why, why_len, "URL port must be a number from 1 to 65535");
    return BH_EINVAL;
}

static int parse_authority(const char *url, size_t a0, size_t a1, dest_url_t *out, char *why,
                           size_t why_len)
{
    const char *p = url + a0;
    size_t n = a1 - a0;
    size_t host_end, port_at = 0;
    bool has_port = false;
    int rc;

    if (memchr(p, '@', n)) {
        why_set(why, why_len, "URL must not contain user-info ('@' in the authority)");
        return BH_EINVAL;
    }
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close) {
            why_set(why, why_len, "URL host has an unclosed '['");
            return BH_EINVAL;
        }
        host_end = (size_t)(close - p);
        if (host_end + 1 < n) {
            if (p[host_end + 1] != ':') {
                why_set(why, why_len, "URL host has characters after the IPv6 literal");
                return BH_EINVAL;
            }
            has_port = true;
            port_at = host_end + 2;
        }
        rc = parse_ipv6_literal(url, a0 + 1, host_end - 1, out, why, why_len);
    } else {
        const char *colon = memchr(p, ':', n);
        host_end = colon ? (size_t)(colon - p) : n;
        if (colon) {
            has_port = true;
            port_at = host_end + 1;
        }
        if (host_end == 0) {
            why_set(why, why_len, "URL host is empty");
            return BH_EINVAL;
        }
        rc = parse_host_name(url, a0, host_end, out, why, why_len);
    }
    if (rc != 0)
        return rc;
    if (has_port)
        return parse_port(p + port_at, n - port_at, out, why, why_len);
    return 0;
}

static int parse_path(const char *url, size_t at, size_t n, dest_url_t *out, char *why,
                      size_t why_len)
{
    const char *p = url + at;
    char q[8];

    if (memchr(p, '#', n)) {
        why_set(why, why_len, "URL must not contain a fragment ('#')");
        return BH_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex((unsigned char)p[i + 1]) ||
                !is_hex((unsigned char)p[i + 2])) {
                why_set(why, why_len, "URL has an invalid percent-encoding at byte %zu", at + i);
                return BH_EINVAL;
            }
            i += 2;
        } else if (!is_path_char(c)) {
            why_set(why, why_len,
                    "URL path or query contains a character that must be percent-encoded "
                    "(%s at byte %zu)",
                    byte_quote(c, q), at + i);
            return BH_EINVAL;
        }
    }
    size_t o = 0;
    if (n == 0 || p[0] != '/')
        out->path[o++] = '/';
    /* o + n <= 1 + (DEST_URL_MAX - 8): "https://" and a host come first. */
    memcpy(out->path + o, p, n);
    out->path_len = o + n;
    out->path[out->path_len] = '\0';
    return 0;
}

int dest_url_parse(const char *p, size_t n, bool allow_http, dest_url_t *out, char *why,
                   size_t why_len)
{
    char q[8];
    size_t i = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->addr.ss_family = AF_UNSPEC;
    if (why && why_len > 0)
        why[0] = '\0';

    if (n == 0) {
        why_set(why, why_len, "URL is empty");
        return BH_EINVAL;
    }
    if (n > DEST_URL_MAX) {
        why_set(why, why_len, "URL is longer than %d bytes", DEST_URL_MAX);
        return BH_EINVAL;
    }
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c <= 0x20 || c >= 0x7f) {
            why_set(why, why_len, "URL contains a character that is not allowed (%s at byte %zu)",
                    byte_quote(c, q), k);
            return BH_EINVAL;
        }
    }

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    if (is_alpha((unsigned char)p[0])) {
        for (i = 1; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
                break;
        }
    }
    if (i == 0 || i == n || p[i] != ':') {
        why_set(why, why_len, "URL has no scheme (it must start with https://)");
        return BH_EINVAL;
    }
    if (i == 5 && strncasecmp(p, "https", 5) == 0) {
        memcpy(out->scheme, "https", 6);
        out->port = 443;
    } else if (i == 4 && strncasecmp(p, "http", 4) == 0) {
        if (!allow_http) {
            why_set(why, why_len, "URL scheme http is not allowed by this server; use https");
            return BH_EINVAL;
        }
        memcpy(out->scheme, "http", 5);
        out->port = 80;
    } else {
        why_set(why, why_len, allow_http ? "URL scheme must be https or http"
                                         : "URL scheme must be https");
        goto fail;
    }
    i++;
    if (n - i < 2 || p[i] != '/' || p[i + 1] != '/') {
        why_set(why, why_len, "URL must be absolute: the scheme must be followed by // and a host");
        goto fail;
    }
    i += 2;

    size_t a0 = i;
    while (i < n && p[i] != '/' && p[i] != '?' && p[i] != '#')
        i++;
    rc = parse_authority(p, a0, i, out, why, why_len);
    if (rc == 0)
        rc = parse_path(p, i, n - i, out, why, why_len);
    if (rc == 0) {
        if (out->host_kind == DEST_HOST_IPV4)
            ((struct sockaddr_in *)&out->addr)->sin_port = htons(out->port);
        else if (out->host_kind == DEST_HOST_IPV6)
            ((struct sockaddr_in6 *)&out->addr)->sin6_port = htons(out->port);
        return 0;
    }
fail:
    memset(out, 0, sizeof(*out));
    out->addr.ss_family = AF_UNSPEC;
    return BH_EINVAL;
}

/* ---- classification ------------------------------------------------------ */

typedef struct v4_rule {
    uint32_t net;
    uint8_t len;
    dest_class_t c;
} v4_rule_t;

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* First match wins: the more specific entries come first. */
static const v4_rule_t v4_rules[] = {
    { V4(0, 0, 0, 0), 8, DEST_UNSPECIFIED },
    { V4(10, 0, 0, 0), 8, DEST_PRIVATE },
    { V4(100, 100, 100, 200), 32, DEST_METADATA }, /* Alibaba Cloud */
    { V4(100, 64, 0, 0), 10, DEST_CGNAT },
    { V4(127, 0, 0, 0), 8, DEST_LOOPBACK },
    { V4(169, 254, 169, 254), 32, DEST_METADATA }, /* AWS, GCP, Azure, OCI, ... */
    { V4(169, 254, 170, 2), 32, DEST_METADATA },   /* AWS ECS task metadata */
    { V4(169, 254, 0, 0), 16, DEST_LINK_LOCAL },
    { V4(172, 16, 0, 0), 12, DEST_PRIVATE },
    { V4(192, 0, 0, 0), 24, DEST_RESERVED },       /* IETF protocol assignments */
    { V4(192, 0, 2, 0), 24, DEST_DOCUMENTATION },
    { V4(192, 88, 99, 0), 24, DEST_RESERVED },     /* 6to4 relay anycast (deprecated) */
    { V4(192, 168, 0, 0), 16, DEST_PRIVATE },
    { V4(198, 18, 0, 0), 15, DEST_BENCHMARK },
    { V4(198, 51, 100, 0), 24, DEST_DOCUMENTATION },
    { V4(203, 0, 113, 0), 24, DEST_DOCUMENTATION },
    { V4(224, 0, 0, 0), 4, DEST_MULTICAST },
    { V4(255, 255, 255, 255), 32, DEST_BROADCAST },
    { V4(240, 0, 0, 0), 4, DEST_RESERVED },
};

static uint32_t v4_mask(unsigned len)
{
    return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

static dest_class_t classify_v4(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_rules) / sizeof(v4_rules[0]); i++)
        if ((a & v4_mask(v4_rules[i].len)) == v4_rules[i].net)
            return v4_rules[i].c;
    return DEST_PUBLIC;
}

static uint32_t load_be32(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Whether the first len bits of a and b are equal. */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned len)
{
    unsigned full = len / 8, rest = len % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

/* How an IPv6 rule treats the IPv4 address some prefixes carry. */
enum { EMB_NONE, EMB_REPORT, EMB_CLASSIFY };

typedef struct v6_rule {
    uint8_t net[16];
    uint8_t len;
    dest_class_t c;   /* unused with EMB_CLASSIFY */
    uint8_t embed;    /* EMB_* */
    uint8_t at;       /* byte offset of the embedded IPv4 address */
} v6_rule_t;

/* First match wins: the more specific entries come first. */
static const v6_rule_t v6_rules[] = {
    { { 0 }, 128, DEST_UNSPECIFIED, EMB_NONE, 0 },
    { { [15] = 1 }, 128, DEST_LOOPBACK, EMB_NONE, 0 },
    { { [10] = 0xff, [11] = 0xff }, 96, DEST_IPV4_MAPPED, EMB_REPORT, 12 },
    { { 0 }, 96, DEST_IPV4_COMPAT, EMB_REPORT, 12 },
    { { 0x00, 0x64, 0xff, 0x9b }, 96, DEST_PUBLIC, EMB_CLASSIFY, 12 },         /* NAT64 */
    { { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, DEST_PRIVATE, EMB_NONE, 0 }, /* local NAT64 */
    { { 0x01, 0x00 }, 64, DEST_DISCARD, EMB_NONE, 0 },
    { { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 }, 128, DEST_METADATA, EMB_NONE, 0 },
    { { 0xfc }, 7, DEST_PRIVATE, EMB_NONE, 0 },
    { { 0xfe, 0x80 }, 10, DEST_LINK_LOCAL, EMB_NONE, 0 },
    { { 0xfe, 0xc0 }, 10, DEST_PRIVATE, EMB_NONE, 0 }, /* site-local (deprecated) */
    { { 0xff }, 8, DEST_MULTICAST, EMB_NONE, 0 },
    { { 0x20, 0x01, 0x0d, 0xb8 }, 32, DEST_DOCUMENTATION, EMB_NONE, 0 },
    { { 0x3f, 0xff }, 20, DEST_DOCUMENTATION, EMB_NONE, 0 },
    { { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48, DEST_BENCHMARK, EMB_NONE, 0 },
    { { 0x20, 0x01 }, 23, DEST_RESERVED, EMB_NONE, 0 }, /* IETF assignments, Teredo */
    { { 0x20, 0x02 }, 16, DEST_PUBLIC, EMB_CLASSIFY, 2 }, /* 6to4 */
    { { 0x20 }, 3, DEST_PUBLIC, EMB_NONE, 0 },          /* global unicast */
};

static dest_class_t classify_v6(const uint8_t *b, uint32_t *emb, bool *has_emb)
{
    for (size_t i = 0; i < sizeof(v6_rules) / sizeof(v6_rules[0]); i++) {
        const v6_rule_t *r = &v6_rules[i];
        if (!prefix_eq(b, r->net, r->len))
            continue;
        if (r->embed == EMB_NONE)
            return r->c;
        *emb = load_be32(b + r->at);
        *has_emb = true;
        return r->embed == EMB_REPORT ? r->c : classify_v4(*emb);
    }
    return DEST_RESERVED;
}

/* The address bytes of sa and their count in bits, or NULL for other families. */
static const uint8_t *sa_bytes(const struct sockaddr *sa, unsigned *bits)
{
    if (!sa)
        return NULL;
    if (sa->sa_family == AF_INET) {
        *bits = 32;
        return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    }
    if (sa->sa_family == AF_INET6) {
        *bits = 128;
        return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    }
    return NULL;
}

static dest_class_t classify(const struct sockaddr *sa, uint32_t *emb, bool *has_emb)
{
    unsigned bits;
    const uint8_t *b = sa_bytes(sa, &bits);
    *has_emb = false;
    if (!b)
        return DEST_NOT_IP;
    if (bits == 32)
        return classify_v4(load_be32(b));
    return classify_v6(b, emb, has_emb);
}

dest_class_t dest_classify_sockaddr(const struct sockaddr *sa)
{
    uint32_t emb;
    bool has_emb;
    return classify(sa, &emb, &has_emb);
}

const char *dest_class_str(dest_class_t c)
{
    switch (c) {
    case DEST_PUBLIC: return "public";
    case DEST_LOOPBACK: return "loopback";
    case DEST_PRIVATE: return "private";
    case DEST_LINK_LOCAL: return "link-local";
    case DEST_CGNAT: return "carrier-grade NAT";
    case DEST_MULTICAST: return "multicast";
    case DEST_UNSPECIFIED: return "unspecified";
    case DEST_IPV4_MAPPED: return "IPv4-mapped IPv6";
    case DEST_IPV4_COMPAT: return "IPv4-compatible IPv6";
    case DEST_METADATA: return "cloud metadata";
    case DEST_RESERVED: return "reserved";
    case DEST_DOCUMENTATION: return "documentation";
    case DEST_BROADCAST: return "broadcast";
    case DEST_BENCHMARK: return "benchmarking";
    case DEST_DISCARD: return "discard-only";
    case DEST_NOT_IP: return "non-IP";
    }
    return "unknown";
}

/* ---- allow-list ---------------------------------------------------------- */

void dest_allow_init(dest_allow_t *a)
{
    memset(a, 0, sizeof(*a));
}

/* Operator text in a reason: non-printable bytes become '?'. */
static void sanitize(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[n] = '\0';
}

int dest_allow_add(dest_allow_t *a, const char *cidr, char *why, size_t why_len)
{
    enum { CIDR_TEXT_MAX = 64 };
    char text[CIDR_TEXT_MAX], addr[CIDR_TEXT_MAX];
    dest_cidr_t e;
    unsigned bits, prefix;

    if (!cidr || cidr[0] == '\0') {
        why_set(why, why_len, "allow-list entry is empty");
        return BH_EINVAL;
    }
    size_t n = strnlen(cidr, CIDR_TEXT_MAX);
    if (n >= CIDR_TEXT_MAX) {
        why_set(why, why_len, "allow-list entry is longer than %d bytes", CIDR_TEXT_MAX - 1);
        return BH_EINVAL;
    }
    sanitize(cidr, n, text);
    if (a->n >= DEST_ALLOW_MAX) {
        why_set(why, why_len, "allow-list entry %s: the list is full (at most %d entries)", text,
                DEST_ALLOW_MAX);
        return BH_ETOOBIG;
    }
    const char *slash = memchr(cidr, '/', n);
    size_t an = slash ? (size_t)(slash - cidr) : n;
    memcpy(addr, cidr, an);
    addr[an] = '\0';
    memset(&e, 0, sizeof(e));
    if (memchr(addr, '%', an)) {
        why_set(why, why_len, "allow-list entry %s: zone identifiers are not allowed", text);
        return BH_EINVAL;
    }
    if (inet_pton(AF_INET, addr, e.addr) == 1) {
        e.family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, e.addr) == 1) {
        e.family = AF_INET6;
        bits = 128;
    } else {
        why_set(why, why_len,
                "allow-list entry %s: not an IPv4 address (dotted quad) or IPv6 address", text);
        return BH_EINVAL;
    }
    prefix = bits;
    if (slash) {
        const char *d = slash + 1;
        size_t dn = n - an - 1;
        prefix = 0;
        bool ok = dn >= 1 && dn <= 3 && !(dn > 1 && d[0] == '0');
        for (size_t i = 0; ok && i < dn; i++) {
            if (!is_digit((unsigned char)d[i]))
                ok = false;
            else
                prefix = prefix * 10 + (unsigned)(d[i] - '0');
        }
        if (!ok || prefix > bits) {
            why_set(why, why_len, "allow-list entry %s: the prefix length must be 0 to %u", text,
                    bits);
            return BH_EINVAL;
        }
    }
    e.prefix = (uint8_t)prefix;

    /* Bits past the prefix are a typo more often than not (10.0.0.1/8): refuse
     * them and name the network the operator probably meant. */
    uint8_t net[16];
    memcpy(net, e.addr, sizeof(net));
    for (unsigned bit = prefix; bit < bits; bit++)
        net[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    if (memcmp(net, e.addr, bits / 8) != 0) {
        char s[INET6_ADDRSTRLEN];
        if (!inet_ntop(e.family, net, s, sizeof(s)))
            s[0] = '\0';
        why_set(why, why_len,
                "allow-list entry %s: bits are set past the prefix (did you mean %s/%u?)", text,
                s, prefix);
        return BH_EINVAL;
    }
    a->items[a->n++] = e;
    return 0;
}

bool dest_allowed(const dest_allow_t *a, const struct sockaddr *sa)
{
    unsigned bits;
    const uint8_t *b = sa_bytes(sa, &bits);
    if (!a || !b)
        return false;
    bool metadata = dest_classify_sockaddr(sa) == DEST_METADATA;
    sa_family_t fam = sa->sa_family;
    for (size_t i = 0; i < a->n; i++) {
        const dest_cidr_t *e = &a->items[i];
        if (e->family != fam)
            continue;
        if (metadata && e->prefix != bits)
            continue;
        if (prefix_eq(e->addr, b, e->prefix))
            return true;
    }
    return false;
}

/* ---- checks -------------------------------------------------------------- */

/* 0 when sa may be called; else BH_EINVAL with addr_out holding the address as
 * text and what_out "a loopback address (it embeds 127.0.0.1)". */
static int refuse_addr(const dest_allow_t *a, const struct sockaddr *sa,
                       char addr_out[INET6_ADDRSTRLEN], char what_out[96])
{
    uint32_t emb = 0;
    bool has_emb;
    dest_class_t c = classify(sa, &emb, &has_emb);
    if (c == DEST_PUBLIC || dest_allowed(a, sa))
        return 0;
    unsigned bits;
    const uint8_t *b = sa_bytes(sa, &bits);
    if (!b || !inet_ntop(sa->sa_family, b, addr_out, INET6_ADDRSTRLEN)) {
        memcpy(addr_out, "the address", sizeof("the address"));
        memcpy(what_out, "not an IPv4 or IPv6 address", sizeof("not an IPv4 or IPv6 address"));
        return BH_EINVAL;
    }
    const char *cs = dest_class_str(c);
    const char *art = strchr("aeiouAEIOU", cs[0]) ? "an" : "a";
    if (has_emb)
        snprintf(what_out, 96, "%s %s address (it embeds %u.%u.%u.%u)", art, cs,
                 (unsigned)(emb >> 24), (unsigned)(emb >> 16) & 255, (unsigned)(emb >> 8) & 255,
                 (unsigned)emb & 255);
    else
        snprintf(what_out, 96, "%s %s address", art, cs);
    return BH_EINVAL;
}

int dest_check_addr(const dest_allow_t *a, const struct sockaddr *sa, char *why, size_t why_len)
{
    char addr[INET6_ADDRSTRLEN], what[96];
    if (refuse_addr(a, sa, addr, what) == 0)
        return 0;
    why_set(why, why_len, "%s is %s", addr, what);
    return BH_EINVAL;
}

static bool name_is_under(const char *name, size_t n, const char *zone)
{
    size_t z = strlen(zone);
    if (n == z)
        return memcmp(name, zone, z) == 0;
    return n > z && name[n - z - 1] == '.' && memcmp(name + n - z, zone, z) == 0;
}

/* Checks one resolved address of name; on refusal the reason names both. */
static int check_resolved(const dest_allow_t *a, const char *name, const struct sockaddr *sa,
                          char *why, size_t why_len)
{
    char addr[INET6_ADDRSTRLEN], what[96];
    if (refuse_addr(a, sa, addr, what) == 0)
        return 0;
    why_set(why, why_len, "%s resolves to %s, which is %s", name, addr, what);
    return BH_EINVAL;
}

int dest_check_url_with(const dest_url_t *u, const dest_allow_t *a, const dest_resolver_t *r,
                        char *why, size_t why_len)
{
    if (u->host_kind != DEST_HOST_NAME)
        return dest_check_addr(a, (const struct sockaddr *)&u->addr, why, why_len);

    size_t n = strnlen(u->host, sizeof(u->host));
    if (n > 1 && u->host[n - 1] == '.')
        n--;

    if (name_is_under(u->host, n, "localhost")) {
        struct sockaddr_in v4 = { .sin_family = AF_INET };
        struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
        v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v6.sin6_addr = in6addr_loopback;
        if (check_resolved(a, u->host, (const struct sockaddr *)&v4, why, why_len) != 0 ||
            check_resolved(a, u->host, (const struct sockaddr *)&v6, why, why_len) != 0)
            return BH_EINVAL;
        return 0;
    }
    if (name_is_under(u->host, n, "invalid"))
        return 0;

    if (!r)
        r = dest_resolver_system();
    struct addrinfo *res = NULL;
    int g = r->resolve(r, u->host, &res);
    if (g != 0) {
        /* EAI_NONAME, EAI_NODATA (no such name, or no address for it) and
         * EAI_AGAIN (the resolver could not answer now) are names that do not
         * resolve: accepted, since they may resolve later (SPEC §7.1). Every
         * other failure (EAI_FAIL, EAI_MEMORY, EAI_SYSTEM ...) is accepted as
         * well: it says nothing about the destination, refusing would turn a
         * resolver fault into a client error, and the check that really
         * protects runs on every connection the delivery engine makes. */
        if (res)
            r->release(r, res);
        return 0;
    }
    int rc = 0;
    for (const struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        /* Only IPv4 and IPv6 can be connected to for an http(s) URL; another
         * family from an odd NSS module is not a destination at all. */
        if (!ai->ai_addr || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        rc = check_resolved(a, u->host, ai->ai_addr, why, why_len);
    }
    r->release(r, res);
    return rc;
}

static int system_resolve(const dest_resolver_t *r, const char *host, struct addrinfo **res)
{
    struct addrinfo hints;
    (void)r;
    memset(&hints, 0, sizeof(hints));
    /* No AI_ADDRCONFIG: every address the name has must pass, including those
     * of a family this host cannot use today. */
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    return getaddrinfo(host, NULL, &hints, res);
}

static void system_release(const dest_resolver_t *r, struct addrinfo *res)
{
    (void)r;
    if (res)
        freeaddrinfo(res);
}

static const dest_resolver_t system_resolver = { system_resolve, system_release, NULL };

const dest_resolver_t *dest_resolver_system(void)
{
    return &system_resolver;
}

int dest_check_url(const dest_url_t *u, const dest_allow_t *a, char *why, size_t why_len)
{
    return dest_check_url_with(u, a, &system_resolver, why, why_len);
}
