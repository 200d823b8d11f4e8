/*
 * test_destination.c: webhook destination URLs and the SSRF address checks.
 *
 * Nothing here touches DNS: hosts are IP literals, `localhost` names and
 * `.invalid` names (which dest_check_url answers itself), and the name path is
 * driven through a fake resolver. The only call to the system resolver passes a
 * numeric host, which getaddrinfo() converts without asking anyone.
 */
#define _GNU_SOURCE /* EAI_NODATA */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "client/destination.h"
#include "core/err.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* An address from text, IPv4 or IPv6, as a sockaddr_storage. */
static struct sockaddr_storage addr_of(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(443);
    } else if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);
    } else {
        fail_msg("bad test address %s", s);
    }
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* ---- parse: valid URLs --------------------------------------------------- */

typedef struct parse_ok_case {
    const char *url;
    bool allow_http;
    const char *scheme;
    const char *host;
    dest_host_kind_t kind;
    unsigned port;
    bool port_explicit;
    const char *path;
} parse_ok_case_t;

static const parse_ok_case_t parse_ok_cases[] = {
    { "https://example.com/hook", false, "https", "example.com", DEST_HOST_NAME, 443, false,
      "/hook" },
    { "HTTPS://Example.COM:8443/a/b?x=1&y=%2F", false, "https", "example.com", DEST_HOST_NAME,
      8443, true, "/a/b?x=1&y=%2F" },
    { "https://example.com", false, "https", "example.com", DEST_HOST_NAME, 443, false, "/" },
    { "https://example.com?x=1", false, "https", "example.com", DEST_HOST_NAME, 443, false,
      "/?x=1" },
    { "https://example.com/?", false, "https", "example.com", DEST_HOST_NAME, 443, false, "/?" },
    { "https://example.com./", false, "https", "example.com.", DEST_HOST_NAME, 443, false, "/" },
    { "http://example.com/", true, "http", "example.com", DEST_HOST_NAME, 80, false, "/" },
    { "HtTp://example.com:8080", true, "http", "example.com", DEST_HOST_NAME, 8080, true, "/" },
    { "https://example.com/", true, "https", "example.com", DEST_HOST_NAME, 443, false, "/" },
    { "https://x:1/", false, "https", "x", DEST_HOST_NAME, 1, true, "/" },
    { "https://x:65535/", false, "https", "x", DEST_HOST_NAME, 65535, true, "/" },
    { "https://x:00443/", false, "https", "x", DEST_HOST_NAME, 443, true, "/" },
    { "https://a-b.c0.xn--p1ai/~u/p;x=1/@:!$&'()*+,=?q=/?:@", false, "https", "a-b.c0.xn--p1ai",
      DEST_HOST_NAME, 443, false, "/~u/p;x=1/@:!$&'()*+,=?q=/?:@" },
    { "https://1e100.net/", false, "https", "1e100.net", DEST_HOST_NAME, 443, false, "/" },
    { "https://123.example/", false, "https", "123.example", DEST_HOST_NAME, 443, false, "/" },
    { "https://0x.example/", false, "https", "0x.example", DEST_HOST_NAME, 443, false, "/" },
    { "https://1.2.3.4x/", false, "https", "1.2.3.4x", DEST_HOST_NAME, 443, false, "/" },
    { "https://localhost/", false, "https", "localhost", DEST_HOST_NAME, 443, false, "/" },
    { "https://1.2.3.4/", false, "https", "1.2.3.4", DEST_HOST_IPV4, 443, false, "/" },
    { "https://8.8.8.8:8443/x", false, "https", "8.8.8.8", DEST_HOST_IPV4, 8443, true, "/x" },
    { "https://0.0.0.0/", false, "https", "0.0.0.0", DEST_HOST_IPV4, 443, false, "/" },
    { "https://[2001:DB8:0:0::1]:444/", false, "https", "2001:db8::1", DEST_HOST_IPV6, 444, true,
      "/" },
    { "https://[::1]", false, "https", "::1", DEST_HOST_IPV6, 443, false, "/" },
    { "https://[::ffff:127.0.0.1]/", false, "https", "::ffff:127.0.0.1", DEST_HOST_IPV6, 443,
      false, "/" },
    { "https://[::ffff:7f00:1]/", false, "https", "::ffff:127.0.0.1", DEST_HOST_IPV6, 443, false,
      "/" },
    { "https://[::127.0.0.1]/", false, "https", "::127.0.0.1", DEST_HOST_IPV6, 443, false, "/" },
    { "https://[64:ff9b::127.0.0.1]/", false, "https", "64:ff9b::7f00:1", DEST_HOST_IPV6, 443,
      false, "/" },
};

static void test_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(parse_ok_cases); i++) {
        const parse_ok_case_t *c = &parse_ok_cases[i];
        dest_url_t u;
        char why[DEST_WHY_MAX];
        int rc = dest_url_parse(c->url, strlen(c->url), c->allow_http, &u, why, sizeof(why));
        if (rc != 0)
            fail_msg("%s: %d %s", c->url, rc, why);
        assert_string_equal(u.scheme, c->scheme);
        assert_string_equal(u.host, c->host);
        assert_int_equal(u.host_kind, c->kind);
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.port_explicit, c->port_explicit);
        assert_string_equal(u.path, c->path);
        assert_int_equal(u.path_len, strlen(c->path));
        switch (c->kind) {
        case DEST_HOST_NAME:
            assert_int_equal(u.addr.ss_family, AF_UNSPEC);
            break;
        case DEST_HOST_IPV4: {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&u.addr;
            char t[INET_ADDRSTRLEN];
            assert_int_equal(sin->sin_family, AF_INET);
            assert_int_equal(ntohs(sin->sin_port), c->port);
            assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, t, sizeof(t)));
            assert_string_equal(t, c->host);
            break;
        }
        case DEST_HOST_IPV6: {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&u.addr;
            char t[INET6_ADDRSTRLEN];
            assert_int_equal(sin6->sin6_family, AF_INET6);
            assert_int_equal(ntohs(sin6->sin6_port), c->port);
            assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, t, sizeof(t)));
            assert_string_equal(t, c->host);
            break;
        }
        }
    }
}

/* ---- parse: refused URLs, with the exact reason -------------------------- */

typedef struct parse_bad_case {
    const char *url;
    bool allow_http;
    const char *why;
} parse_bad_case_t;

static const parse_bad_case_t parse_bad_cases[] = {
    { "", false, "URL is empty" },
    /* scheme */
    { "ftp://example.com/", false, "URL scheme must be https" },
    { "ftp://example.com/", true, "URL scheme must be https or http" },
    { "httpss://example.com/", false, "URL scheme must be https" },
    { "http://example.com/", false, "URL scheme http is not allowed by this server; use https" },
    { "example.com/hook", false, "URL has no scheme (it must start with https://)" },
    { "//example.com/hook", false, "URL has no scheme (it must start with https://)" },
    { "1https://example.com/", false, "URL has no scheme (it must start with https://)" },
    { "https", false, "URL has no scheme (it must start with https://)" },
    { "https:example.com", false,
      "URL must be absolute: the scheme must be followed by // and a host" },
    { "https:/example.com", false,
      "URL must be absolute: the scheme must be followed by // and a host" },
    { "https:", false, "URL must be absolute: the scheme must be followed by // and a host" },
    /* bytes that never belong in a URL */
    { " https://example.com/", false,
      "URL contains a character that is not allowed (' ' at byte 0)" },
    { "https://example.com/a b", false,
      "URL contains a character that is not allowed (' ' at byte 21)" },
    { "https://example.com/\x01", false,
      "URL contains a character that is not allowed (\\x01 at byte 20)" },
    { "https://example.com/\xc3\xa9", false,
      "URL contains a character that is not allowed (\\xc3 at byte 20)" },
    { "https://example.com/\n", false,
      "URL contains a character that is not allowed (\\x0a at byte 20)" },
    /* user-info */
    { "https://user@example.com/", false, "URL must not contain user-info ('@' in the authority)" },
    { "https://user:pw@example.com/", false,
      "URL must not contain user-info ('@' in the authority)" },
    { "https://@example.com", false, "URL must not contain user-info ('@' in the authority)" },
    { "https://example.com\\@evil.example/", false,
      "URL must not contain user-info ('@' in the authority)" },
    { "https://[::1]@evil.example/", false,
      "URL must not contain user-info ('@' in the authority)" },
    /* fragment */
    { "https://example.com/hook#frag", false, "URL must not contain a fragment ('#')" },
    { "https://example.com#", false, "URL must not contain a fragment ('#')" },
    { "https://example.com/?a=b#c", false, "URL must not contain a fragment ('#')" },
    /* host */
    { "https://", false, "URL host is empty" },
    { "https:///path", false, "URL host is empty" },
    { "https://:443/", false, "URL host is empty" },
    { "https://?q", false, "URL host is empty" },
    { "https://exa_mple.com/", false,
      "URL host contains a character that is not allowed ('_' at byte 11)" },
    { "https://example.com%2e/", false,
      "URL host contains a character that is not allowed ('%' at byte 19)" },
    { "https://exa..mple.com/", false, "URL host has an empty label" },
    { "https://.example.com/", false, "URL host has an empty label" },
    { "https://example.com../", false, "URL host has an empty label" },
    { "https://./", false, "URL host has an empty label" },
    { "https://-example.com/", false, "URL host has a label that starts or ends with '-'" },
    { "https://example-.com/", false, "URL host has a label that starts or ends with '-'" },
    { "https://1.2.3.4.5/", false, "URL host is not a valid IPv4 address" },
    { "https://256.0.0.1/", false, "URL host is not a valid IPv4 address" },
    { "https://1.2.3.256/", false, "URL host is not a valid IPv4 address" },
    { "https://foo.123/", false, "URL host is not a valid IPv4 address" },
    { "https://example.0x10/", false, "URL host is not a valid IPv4 address" },
    { "https://08.0.0.1/", false, "URL host is not a valid IPv4 address" },
    { "https://4294967296/", false, "URL host is not a valid IPv4 address" },
    { "https://0x100000000/", false, "URL host is not a valid IPv4 address" },
    { "https://1..2/", false, "URL host is not a valid IPv4 address" },
    /* IPv6 literals */
    { "https://[::1/", false, "URL host has an unclosed '['" },
    { "https://[::1]x/", false, "URL host has characters after the IPv6 literal" },
    { "https://[::1]]/", false, "URL host has characters after the IPv6 literal" },
    { "https://[fe80::1%25eth0]/", false, "URL host must not carry an IPv6 zone identifier" },
    { "https://[fe80::1%eth0]/", false, "URL host must not carry an IPv6 zone identifier" },
    { "https://[v1.abc]/", false, "URL host is an IPvFuture literal, which is not supported" },
    { "https://[]/", false, "URL host is not a valid IPv6 address" },
    { "https://[1::2::3]/", false, "URL host is not a valid IPv6 address" },
    { "https://[12345::]/", false, "URL host is not a valid IPv6 address" },
    { "https://[::ffff:127.0.0.01]/", false, "URL host is not a valid IPv6 address" },
    { "https://[::ffff:127.1]/", false, "URL host is not a valid IPv6 address" },
    { "https://[127.0.0.1]/", false, "URL host is not a valid IPv6 address" },
    { "https://[example.com]/", false, "URL host is not a valid IPv6 address" },
    { "https://[0000:0000:0000:0000:0000:ffff:127.000.000.001]/", false,
      "URL host is not a valid IPv6 address" },
    { "https://[::1][::2]/", false, "URL host has characters after the IPv6 literal" },
    { "https://ex[::1]/", false,
      "URL host contains a character that is not allowed ('[' at byte 10)" },
    /* port */
    { "https://example.com:/", false, "URL port is empty" },
    { "https://[::1]:/", false, "URL port is empty" },
    { "https://example.com:0/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:65536/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:443443/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:000443/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:8a/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:-1/", false, "URL port must be a number from 1 to 65535" },
    { "https://example.com:443:443/", false, "URL port must be a number from 1 to 65535" },
    /* path and query */
    { "https://example.com/{x}", false,
      "URL path or query contains a character that must be percent-encoded ('{' at byte 20)" },
    { "https://example.com/?a=\"b\"", false,
      "URL path or query contains a character that must be percent-encoded ('\"' at byte 23)" },
    { "https://example.com/a\\b", false,
      "URL path or query contains a character that must be percent-encoded ('\\' at byte 21)" },
    { "https://example.com/?a[]=1", false,
      "URL path or query contains a character that must be percent-encoded ('[' at byte 22)" },
    { "https://example.com/%zz", false, "URL has an invalid percent-encoding at byte 20" },
    { "https://example.com/%4", false, "URL has an invalid percent-encoding at byte 20" },
    { "https://example.com/%", false, "URL has an invalid percent-encoding at byte 20" },
    { "https://example.com/%41%4g", false, "URL has an invalid percent-encoding at byte 23" },
};

static void test_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(parse_bad_cases); i++) {
        const parse_bad_case_t *c = &parse_bad_cases[i];
        dest_url_t u;
        char why[DEST_WHY_MAX];
        memset(&u, 0x5a, sizeof(u));
        int rc = dest_url_parse(c->url, strlen(c->url), c->allow_http, &u, why, sizeof(why));
        if (rc != BH_EINVAL)
            fail_msg("%s: accepted (rc %d, host %s)", c->url, rc, u.host);
        if (strcmp(why, c->why) != 0)
            fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", c->url, why, c->why);
        /* A refused URL leaves nothing half-filled behind. */
        assert_string_equal(u.host, "");
        assert_string_equal(u.path, "");
        assert_int_equal(u.port, 0);
        assert_int_equal(u.addr.ss_family, AF_UNSPEC);
    }
}

/* ---- parse: the legacy IPv4 spellings ------------------------------------ */

typedef struct legacy_case {
    const char *host;
    const char *denotes;
} legacy_case_t;

static const legacy_case_t legacy_cases[] = {
    { "2130706433", "127.0.0.1" },
    { "0177.0.0.1", "127.0.0.1" },
    { "017700000001", "127.0.0.1" },
    { "0x7f.0.0.1", "127.0.0.1" },
    { "0x7f000001", "127.0.0.1" },
    { "0X7F000001", "127.0.0.1" },
    { "0x7F.0X0.0.0x1", "127.0.0.1" },
    { "127.1", "127.0.0.1" },
    { "127.0.1", "127.0.0.1" },
    { "0x7f.1", "127.0.0.1" },
    { "0177.1", "127.0.0.1" },
    { "127.000.000.001", "127.0.0.1" },
    { "127.0.0.1.", "127.0.0.1" },
    { "0127.0.0.1", "87.0.0.1" },
    { "0", "0.0.0.0" },
    { "0x", "0.0.0.0" },
    { "00", "0.0.0.0" },
    { "10.0.0.010", "10.0.0.8" },
    { "10.1", "10.0.0.1" },
    { "169.254.43518", "169.254.169.254" },
    { "0xa9fea9fe", "169.254.169.254" },
    { "2852039166", "169.254.169.254" },
    { "3232235521", "192.168.0.1" },
    { "4294967295", "255.255.255.255" },
    { "0xffffffff", "255.255.255.255" },
    { "08.8.8.8.", "0" }, /* not valid: '8' is no octal digit */
    { "134744072", "8.8.8.8" }, /* public, still refused: only one spelling is accepted */
    { "8.8.2056", "8.8.8.8" },
};

static void test_parse_legacy_ipv4(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(legacy_cases); i++) {
        const legacy_case_t *c = &legacy_cases[i];
        char url[128], want[DEST_WHY_MAX], why[DEST_WHY_MAX];
        dest_url_t u;
        snprintf(url, sizeof(url), "https://%s/hook", c->host);
        if (strcmp(c->denotes, "0") == 0)
            snprintf(want, sizeof(want), "URL host is not a valid IPv4 address");
        else
            snprintf(want, sizeof(want),
                     "URL host is a non-canonical spelling of the IPv4 address %s; write it as "
                     "four decimal numbers without leading zeros",
                     c->denotes);
        int rc = dest_url_parse(url, strlen(url), true, &u, why, sizeof(why));
        if (rc != BH_EINVAL)
            fail_msg("%s: accepted as %s", url, u.host);
        if (strcmp(why, want) != 0)
            fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", url, why, want);
        /* Whatever inet_aton() makes of the spelling, it is what the reason names. */
        struct in_addr in;
        char t[INET_ADDRSTRLEN];
        char host[64];
        snprintf(host, sizeof(host), "%s", c->host);
        if (strcmp(c->denotes, "0") != 0 && strcmp(c->host, "0x") != 0 &&
            host[strlen(host) - 1] != '.' && inet_aton(host, &in)) {
            assert_non_null(inet_ntop(AF_INET, &in, t, sizeof(t)));
            assert_string_equal(t, c->denotes);
        }
    }
}

/* ---- parse: length limits ------------------------------------------------ */

static void test_parse_limits(void **state)
{
    (void)state;
    static char url[DEST_URL_MAX + 2];
    char why[DEST_WHY_MAX];
    dest_url_t u;
    const char *head = "https://example.com/";
    size_t hn = strlen(head);

    memcpy(url, head, hn);
    memset(url + hn, 'a', sizeof(url) - hn);
    assert_int_equal(dest_url_parse(url, DEST_URL_MAX, false, &u, why, sizeof(why)), 0);
    assert_int_equal(u.path_len, DEST_URL_MAX - hn + 1);
    assert_int_equal(strlen(u.path), u.path_len);
    assert_int_equal(dest_url_parse(url, DEST_URL_MAX + 1, false, &u, why, sizeof(why)),
                     BH_EINVAL);
    assert_string_equal(why, "URL is longer than 2048 bytes");

    /* An empty path with the longest query: the "/" added fits too. */
    memcpy(url, "https://e?", 10);
    memset(url + 10, 'q', DEST_URL_MAX - 10);
    assert_int_equal(dest_url_parse(url, DEST_URL_MAX, false, &u, why, sizeof(why)), 0);
    assert_int_equal(u.path_len, DEST_URL_MAX - 8);
    assert_int_equal(u.path[0], '/');
    assert_int_equal(u.path[1], '?');

    /* Labels: 63 bytes fit, 64 do not. */
    char host[300];
    memset(host, 'a', 63);
    snprintf(host + 63, sizeof(host) - 63, ".example");
    snprintf(url, sizeof(url), "https://%s/", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), 0);
    memset(host, 'a', 64);
    snprintf(host + 64, sizeof(host) - 64, ".example");
    snprintf(url, sizeof(url), "https://%s/", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "URL host has a label longer than 63 bytes");

    /* Hosts: 253 bytes fit, and a trailing dot after them; 254 do not. */
    for (size_t i = 0; i < 253; i++)
        host[i] = (i % 2 == 1) ? '.' : 'a';
    host[253] = '\0';
    snprintf(url, sizeof(url), "https://%s/", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), 0);
    assert_int_equal(strlen(u.host), 253);
    snprintf(url, sizeof(url), "https://%s./", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), 0);
    assert_int_equal(strlen(u.host), 254);
    snprintf(url, sizeof(url), "https://%sa/", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "URL host is longer than 253 bytes");
    snprintf(url, sizeof(url), "https://%sa./", host);
    assert_int_equal(dest_url_parse(url, strlen(url), false, &u, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "URL host is longer than 253 bytes");

    /* The input is a slice: bytes past n are not read. */
    const char *s = "https://example.com/hook#fragment";
    assert_int_equal(dest_url_parse(s, 24, false, &u, why, sizeof(why)), 0);
    assert_string_equal(u.path, "/hook");
    /* A NUL inside the slice is a byte like any other, and refused. */
    assert_int_equal(dest_url_parse("https://a\0b/", 12, false, &u, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "URL contains a character that is not allowed (\\x00 at byte 9)");
}

static void test_parse_reason_buffer(void **state)
{
    (void)state;
    dest_url_t u;
    char small[8];
    const char *s = "https://user@example.com/";
    /* No buffer at all, and a buffer too small: no overflow, a NUL-terminated prefix. */
    assert_int_equal(dest_url_parse(s, strlen(s), false, &u, NULL, 0), BH_EINVAL);
    memset(small, 'x', sizeof(small));
    assert_int_equal(dest_url_parse(s, strlen(s), false, &u, small, sizeof(small)), BH_EINVAL);
    assert_string_equal(small, "URL mus");
    /* Success clears the reason. */
    char why[DEST_WHY_MAX] = "stale";
    assert_int_equal(dest_url_parse("https://e/", 10, false, &u, why, sizeof(why)), 0);
    assert_string_equal(why, "");
}

/* ---- classification ------------------------------------------------------ */

typedef struct class_case {
    const char *addr;
    dest_class_t c;
} class_case_t;

static const class_case_t class_cases[] = {
    /* IPv4 */
    { "0.0.0.0", DEST_UNSPECIFIED },
    { "0.1.2.3", DEST_UNSPECIFIED },
    { "0.255.255.255", DEST_UNSPECIFIED },
    { "1.0.0.0", DEST_PUBLIC },
    { "127.0.0.1", DEST_LOOPBACK },
    { "127.255.255.254", DEST_LOOPBACK },
    { "126.255.255.255", DEST_PUBLIC },
    { "128.0.0.0", DEST_PUBLIC },
    { "10.0.0.0", DEST_PRIVATE },
    { "10.255.255.255", DEST_PRIVATE },
    { "9.255.255.255", DEST_PUBLIC },
    { "11.0.0.0", DEST_PUBLIC },
    { "172.16.0.0", DEST_PRIVATE },
    { "172.31.255.255", DEST_PRIVATE },
    { "172.15.255.255", DEST_PUBLIC },
    { "172.32.0.0", DEST_PUBLIC },
    { "192.168.0.1", DEST_PRIVATE },
    { "192.168.255.255", DEST_PRIVATE },
    { "192.167.255.255", DEST_PUBLIC },
    { "192.169.0.0", DEST_PUBLIC },
    { "169.254.0.1", DEST_LINK_LOCAL },
    { "169.254.255.255", DEST_LINK_LOCAL },
    { "169.254.169.253", DEST_LINK_LOCAL },
    { "169.254.169.254", DEST_METADATA },
    { "169.254.170.2", DEST_METADATA },
    { "169.253.255.255", DEST_PUBLIC },
    { "169.255.0.0", DEST_PUBLIC },
    { "100.64.0.0", DEST_CGNAT },
    { "100.127.255.255", DEST_CGNAT },
    { "100.63.255.255", DEST_PUBLIC },
    { "100.128.0.0", DEST_PUBLIC },
    { "100.100.100.200", DEST_METADATA },
    { "224.0.0.1", DEST_MULTICAST },
    { "239.255.255.255", DEST_MULTICAST },
    { "223.255.255.255", DEST_PUBLIC },
    { "240.0.0.0", DEST_RESERVED },
    { "255.255.255.254", DEST_RESERVED },
    { "255.255.255.255", DEST_BROADCAST },
    { "192.0.0.0", DEST_RESERVED },
    { "192.0.0.170", DEST_RESERVED },
    { "192.0.1.0", DEST_PUBLIC },
    { "192.0.2.0", DEST_DOCUMENTATION },
    { "192.0.2.255", DEST_DOCUMENTATION },
    { "192.0.3.0", DEST_PUBLIC },
    { "198.51.100.7", DEST_DOCUMENTATION },
    { "203.0.113.9", DEST_DOCUMENTATION },
    { "203.0.114.0", DEST_PUBLIC },
    { "198.18.0.0", DEST_BENCHMARK },
    { "198.19.255.255", DEST_BENCHMARK },
    { "198.17.255.255", DEST_PUBLIC },
    { "198.20.0.0", DEST_PUBLIC },
    { "192.88.99.1", DEST_RESERVED },
    { "8.8.8.8", DEST_PUBLIC },
    { "1.1.1.1", DEST_PUBLIC },
    /* IPv6: special forms and embedded IPv4 */
    { "::", DEST_UNSPECIFIED },
    { "::1", DEST_LOOPBACK },
    { "::2", DEST_IPV4_COMPAT },
    { "::127.0.0.1", DEST_IPV4_COMPAT },
    { "::8.8.8.8", DEST_IPV4_COMPAT },
    { "::ffff:127.0.0.1", DEST_IPV4_MAPPED },
    { "::ffff:7f00:1", DEST_IPV4_MAPPED },
    { "::ffff:8.8.8.8", DEST_IPV4_MAPPED },
    { "::ffff:0:0", DEST_IPV4_MAPPED },
    { "::fffe:127.0.0.1", DEST_RESERVED },
    { "::1:0:0:0", DEST_RESERVED },
    { "64:ff9b::7f00:1", DEST_LOOPBACK },
    { "64:ff9b::10.0.0.1", DEST_PRIVATE },
    { "64:ff9b::169.254.169.254", DEST_METADATA },
    { "64:ff9b::0.0.0.0", DEST_UNSPECIFIED },
    { "64:ff9b::8.8.8.8", DEST_PUBLIC },
    { "64:ff9b:1::1", DEST_PRIVATE },
    { "64:ff9b:0:0:0:1::", DEST_RESERVED },
    { "2002:7f00:1::", DEST_LOOPBACK },
    { "2002:a00:1::1", DEST_PRIVATE },
    { "2002:a9fe:a9fe::1", DEST_METADATA },
    { "2002:c000:201::", DEST_DOCUMENTATION },
    { "2002:808:808::1", DEST_PUBLIC },
    { "64:ff9b::100.64.0.1", DEST_CGNAT },
    { "2002:ffff:ffff::", DEST_BROADCAST },
    /* IPv6: ranges */
    { "fc00::1", DEST_PRIVATE },
    { "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", DEST_PRIVATE },
    { "fd00:ec2::254", DEST_METADATA },
    { "fd00:ec2::253", DEST_PRIVATE },
    { "fe80::1", DEST_LINK_LOCAL },
    { "febf:ffff::1", DEST_LINK_LOCAL },
    { "fec0::1", DEST_PRIVATE },
    { "fbff:ffff::1", DEST_RESERVED },
    { "ff02::1", DEST_MULTICAST },
    { "ff0e::101", DEST_MULTICAST },
    { "2001:db8::1", DEST_DOCUMENTATION },
    { "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", DEST_DOCUMENTATION },
    { "2001:db9::1", DEST_PUBLIC },
    { "2001:db7:ffff::1", DEST_PUBLIC },
    { "3fff::1", DEST_DOCUMENTATION },
    { "3fff:fff:ffff::1", DEST_DOCUMENTATION },
    { "3fff:1000::1", DEST_PUBLIC },
    { "2001:2::1", DEST_BENCHMARK },
    { "2001:2:0:ffff::1", DEST_BENCHMARK },
    { "2001:2:1::1", DEST_RESERVED },
    { "2001::1", DEST_RESERVED },            /* Teredo */
    { "2001:1ff:ffff::1", DEST_RESERVED },
    { "2001:200::1", DEST_PUBLIC },
    { "100::1", DEST_DISCARD },
    { "100::ffff:ffff:ffff:ffff", DEST_DISCARD },
    { "100:0:0:1::1", DEST_RESERVED },
    { "2606:4700:4700::1111", DEST_PUBLIC },
    { "2a00:1450:4001::200e", DEST_PUBLIC },
    { "2000::", DEST_PUBLIC },
    { "3fff:ffff::", DEST_PUBLIC },
    { "1fff:ffff::1", DEST_RESERVED },
    { "4000::1", DEST_RESERVED },
    { "5f00::1", DEST_RESERVED },
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(class_cases); i++) {
        struct sockaddr_storage ss = addr_of(class_cases[i].addr);
        dest_class_t c = dest_classify_sockaddr(SA(ss));
        if (c != class_cases[i].c)
            fail_msg("%s: %s, want %s", class_cases[i].addr, dest_class_str(c),
                     dest_class_str(class_cases[i].c));
        /* The check agrees with the class, without an allow-list. */
        assert_int_equal(dest_check_addr(NULL, SA(ss), NULL, 0) == 0, c == DEST_PUBLIC);
    }
}

/* Every class appears in the table above in both families where it exists. */
static void test_classify_covers_every_class(void **state)
{
    (void)state;
    bool seen4[DEST_NOT_IP + 1] = { false }, seen6[DEST_NOT_IP + 1] = { false };
    for (size_t i = 0; i < ARRAY_LEN(class_cases); i++) {
        bool v6 = strchr(class_cases[i].addr, ':') != NULL;
        (v6 ? seen6 : seen4)[class_cases[i].c] = true;
    }
    for (int c = DEST_PUBLIC; c < DEST_NOT_IP; c++) {
        bool v6_only = c == DEST_IPV4_MAPPED || c == DEST_IPV4_COMPAT || c == DEST_DISCARD;
        if (!v6_only && !seen4[c])
            fail_msg("no IPv4 case for %s", dest_class_str((dest_class_t)c));
        if (!seen6[c])
            fail_msg("no IPv6 case for %s", dest_class_str((dest_class_t)c));
    }
}

static void test_classify_not_ip(void **state)
{
    (void)state;
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(dest_classify_sockaddr((const struct sockaddr *)&un), DEST_NOT_IP);
    assert_int_equal(dest_classify_sockaddr(NULL), DEST_NOT_IP);
    char why[DEST_WHY_MAX];
    assert_int_equal(dest_check_addr(NULL, (const struct sockaddr *)&un, why, sizeof(why)),
                     BH_EINVAL);
    assert_string_equal(why, "the address is not an IPv4 or IPv6 address");
    assert_int_equal(dest_check_addr(NULL, NULL, why, sizeof(why)), BH_EINVAL);

    /* Port and scope id do not change the class. */
    struct sockaddr_storage ss = addr_of("fe80::1");
    ((struct sockaddr_in6 *)&ss)->sin6_scope_id = 2;
    ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    assert_int_equal(dest_classify_sockaddr(SA(ss)), DEST_LINK_LOCAL);
}

static void test_class_str(void **state)
{
    (void)state;
    for (int c = DEST_PUBLIC; c <= DEST_NOT_IP; c++) {
        const char *s = dest_class_str((dest_class_t)c);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown");
        for (int d = DEST_PUBLIC; d < c; d++)
            assert_string_not_equal(s, dest_class_str((dest_class_t)d));
    }
    assert_string_equal(dest_class_str(DEST_LOOPBACK), "loopback");
    assert_string_equal(dest_class_str((dest_class_t)999), "unknown");
}

/* ---- dest_check_addr reasons --------------------------------------------- */

typedef struct reason_case {
    const char *addr;
    const char *why;
} reason_case_t;

static const reason_case_t reason_cases[] = {
    { "127.0.0.1", "127.0.0.1 is a loopback address" },
    { "10.1.2.3", "10.1.2.3 is a private address" },
    { "0.0.0.0", "0.0.0.0 is an unspecified address" },
    { "169.254.169.254", "169.254.169.254 is a cloud metadata address" },
    { "100.64.1.1", "100.64.1.1 is a carrier-grade NAT address" },
    { "255.255.255.255", "255.255.255.255 is a broadcast address" },
    { "::1", "::1 is a loopback address" },
    { "fe80::1", "fe80::1 is a link-local address" },
    { "::ffff:127.0.0.1", "::ffff:127.0.0.1 is an IPv4-mapped IPv6 address (it embeds 127.0.0.1)" },
    { "::ffff:8.8.8.8", "::ffff:8.8.8.8 is an IPv4-mapped IPv6 address (it embeds 8.8.8.8)" },
    { "::127.0.0.1", "::127.0.0.1 is an IPv4-compatible IPv6 address (it embeds 127.0.0.1)" },
    { "64:ff9b::7f00:1", "64:ff9b::7f00:1 is a loopback address (it embeds 127.0.0.1)" },
    { "2002:7f00:1::", "2002:7f00:1:: is a loopback address (it embeds 127.0.0.1)" },
    { "fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address" },
    { "2001:db8::1", "2001:db8::1 is a documentation address" },
    { "100::1", "100::1 is a discard-only address" },
    { "ff02::1", "ff02::1 is a multicast address" },
};

static void test_check_addr_reasons(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(reason_cases); i++) {
        struct sockaddr_storage ss = addr_of(reason_cases[i].addr);
        char why[DEST_WHY_MAX];
        assert_int_equal(dest_check_addr(NULL, SA(ss), why, sizeof(why)), BH_EINVAL);
        assert_string_equal(why, reason_cases[i].why);
    }
    struct sockaddr_storage pub = addr_of("8.8.8.8");
    char why[DEST_WHY_MAX] = "";
    assert_int_equal(dest_check_addr(NULL, SA(pub), why, sizeof(why)), 0);
    pub = addr_of("2606:4700:4700::1111");
    assert_int_equal(dest_check_addr(NULL, SA(pub), why, sizeof(why)), 0);
}

/* ---- allow-list ---------------------------------------------------------- */

static void allow(dest_allow_t *a, const char *cidr)
{
    char why[DEST_WHY_MAX];
    if (dest_allow_add(a, cidr, why, sizeof(why)) != 0)
        fail_msg("dest_allow_add(%s): %s", cidr, why);
}

static bool allowed(const dest_allow_t *a, const char *addr)
{
    struct sockaddr_storage ss = addr_of(addr);
    bool r = dest_allowed(a, SA(ss));
    /* dest_check_addr agrees: allowed or public means 0. */
    bool pub = dest_classify_sockaddr(SA(ss)) == DEST_PUBLIC;
    assert_int_equal(dest_check_addr(a, SA(ss), NULL, 0) == 0, r || pub);
    return r;
}

static void test_allow_match(void **state)
{
    (void)state;
    dest_allow_t a;

    dest_allow_init(&a);
    assert_false(allowed(&a, "10.0.0.1"));
    assert_false(allowed(NULL, "10.0.0.1"));

    allow(&a, "10.0.0.0/8");
    assert_true(allowed(&a, "10.0.0.0"));
    assert_true(allowed(&a, "10.255.255.255"));
    assert_false(allowed(&a, "9.255.255.255"));
    assert_false(allowed(&a, "11.0.0.0"));
    assert_false(allowed(&a, "::ffff:10.0.0.1")); /* entries match their own family only */
    assert_false(allowed(&a, "127.0.0.1"));

    dest_allow_init(&a);
    allow(&a, "172.16.0.0/12");
    assert_true(allowed(&a, "172.31.255.255"));
    assert_false(allowed(&a, "172.32.0.0"));
    assert_false(allowed(&a, "172.15.255.255"));

    dest_allow_init(&a);
    allow(&a, "192.168.1.128/25");
    assert_true(allowed(&a, "192.168.1.128"));
    assert_true(allowed(&a, "192.168.1.255"));
    assert_false(allowed(&a, "192.168.1.127"));

    dest_allow_init(&a);
    allow(&a, "127.0.0.1/32");
    assert_true(allowed(&a, "127.0.0.1"));
    assert_false(allowed(&a, "127.0.0.2"));
    allow(&a, "127.0.0.2"); /* a bare address is a /32 */
    assert_true(allowed(&a, "127.0.0.2"));
    assert_int_equal(a.items[1].prefix, 32);

    dest_allow_init(&a);
    allow(&a, "0.0.0.0/0");
    assert_true(allowed(&a, "127.0.0.1"));
    assert_true(allowed(&a, "255.255.255.255"));
    assert_true(allowed(&a, "100.64.0.1"));
    assert_false(allowed(&a, "::1"));
    /* Metadata addresses need an entry naming them exactly. */
    assert_false(allowed(&a, "169.254.169.254"));
    assert_false(allowed(&a, "100.100.100.200"));
    allow(&a, "169.254.0.0/16");
    assert_false(allowed(&a, "169.254.169.254"));
    allow(&a, "169.254.169.254/32");
    assert_true(allowed(&a, "169.254.169.254"));
    assert_false(allowed(&a, "169.254.170.2"));

    dest_allow_init(&a);
    allow(&a, "::/0");
    assert_true(allowed(&a, "::1"));
    assert_true(allowed(&a, "::ffff:127.0.0.1"));
    assert_false(allowed(&a, "fd00:ec2::254"));
    assert_false(allowed(&a, "127.0.0.1"));

    dest_allow_init(&a);
    allow(&a, "::1/128");
    assert_true(allowed(&a, "::1"));
    assert_false(allowed(&a, "::2"));
    assert_false(allowed(&a, "::"));

    dest_allow_init(&a);
    allow(&a, "fd00::/8");
    assert_true(allowed(&a, "fd12:3456::1"));
    assert_false(allowed(&a, "fc00::1"));
    assert_false(allowed(&a, "fd00:ec2::254"));
    allow(&a, "fd00:ec2::254/128");
    assert_true(allowed(&a, "fd00:ec2::254"));

    dest_allow_init(&a);
    allow(&a, "fe80::/10");
    assert_true(allowed(&a, "febf:ffff::1"));
    assert_false(allowed(&a, "fec0::1"));
    allow(&a, "2001:db8:1:2::/63");
    assert_true(allowed(&a, "2001:db8:1:3::ffff"));
    assert_false(allowed(&a, "2001:db8:1:4::"));
    assert_false(allowed(&a, "2001:db8:1:1:ffff:ffff:ffff:ffff"));
    allow(&a, "::ffff:127.0.0.1/128");
    assert_true(allowed(&a, "::ffff:127.0.0.1"));
    assert_false(allowed(&a, "127.0.0.1"));
}

typedef struct cidr_bad_case {
    const char *cidr;
    const char *why;
} cidr_bad_case_t;

static const cidr_bad_case_t cidr_bad_cases[] = {
    { "", "allow-list entry is empty" },
    { "10.0.0.0/33", "allow-list entry 10.0.0.0/33: the prefix length must be 0 to 32" },
    { "::/129", "allow-list entry ::/129: the prefix length must be 0 to 128" },
    { "10.0.0.0/", "allow-list entry 10.0.0.0/: the prefix length must be 0 to 32" },
    { "10.0.0.0/08", "allow-list entry 10.0.0.0/08: the prefix length must be 0 to 32" },
    { "10.0.0.0/-1", "allow-list entry 10.0.0.0/-1: the prefix length must be 0 to 32" },
    { "10.0.0.0/8 ", "allow-list entry 10.0.0.0/8?: the prefix length must be 0 to 32" },
    { "10.0.0.0/8/8", "allow-list entry 10.0.0.0/8/8: the prefix length must be 0 to 32" },
    { "10.0.0.0/1000", "allow-list entry 10.0.0.0/1000: the prefix length must be 0 to 32" },
    { "10.0.0.1/8",
      "allow-list entry 10.0.0.1/8: bits are set past the prefix (did you mean 10.0.0.0/8?)" },
    { "192.168.1.1/31",
      "allow-list entry 192.168.1.1/31: bits are set past the prefix (did you mean "
      "192.168.1.0/31?)" },
    { "fe80::1/10",
      "allow-list entry fe80::1/10: bits are set past the prefix (did you mean fe80::/10?)" },
    { "10.0.0/8",
      "allow-list entry 10.0.0/8: not an IPv4 address (dotted quad) or IPv6 address" },
    { "010.0.0.0/8",
      "allow-list entry 010.0.0.0/8: not an IPv4 address (dotted quad) or IPv6 address" },
    { "0x7f000001/32",
      "allow-list entry 0x7f000001/32: not an IPv4 address (dotted quad) or IPv6 address" },
    { "[::1]/128",
      "allow-list entry [::1]/128: not an IPv4 address (dotted quad) or IPv6 address" },
    { "localhost",
      "allow-list entry localhost: not an IPv4 address (dotted quad) or IPv6 address" },
    { "/8", "allow-list entry /8: not an IPv4 address (dotted quad) or IPv6 address" },
    { "fe80::1%eth0/64", "allow-list entry fe80::1%eth0/64: zone identifiers are not allowed" },
    { "1\x01.0.0.0/8",
      "allow-list entry 1?.0.0.0/8: not an IPv4 address (dotted quad) or IPv6 address" },
    { "1234567890123456789012345678901234567890123456789012345678901234",
      "allow-list entry is longer than 63 bytes" },
};

static void test_allow_bad(void **state)
{
    (void)state;
    dest_allow_t a;
    dest_allow_init(&a);
    allow(&a, "10.0.0.0/8");
    for (size_t i = 0; i < ARRAY_LEN(cidr_bad_cases); i++) {
        char why[DEST_WHY_MAX];
        int rc = dest_allow_add(&a, cidr_bad_cases[i].cidr, why, sizeof(why));
        if (rc != BH_EINVAL)
            fail_msg("%s: rc %d", cidr_bad_cases[i].cidr, rc);
        if (strcmp(why, cidr_bad_cases[i].why) != 0)
            fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", cidr_bad_cases[i].cidr, why,
                     cidr_bad_cases[i].why);
        assert_int_equal(a.n, 1); /* unchanged */
    }
    char why[DEST_WHY_MAX];
    assert_int_equal(dest_allow_add(&a, NULL, why, sizeof(why)), BH_EINVAL);
    assert_int_equal(a.n, 1);
}

static void test_allow_capacity(void **state)
{
    (void)state;
    dest_allow_t a;
    char cidr[32], why[DEST_WHY_MAX];
    dest_allow_init(&a);
    for (int i = 0; i < DEST_ALLOW_MAX; i++) {
        snprintf(cidr, sizeof(cidr), "10.%d.0.0/16", i);
        allow(&a, cidr);
    }
    assert_int_equal(a.n, DEST_ALLOW_MAX);
    assert_int_equal(dest_allow_add(&a, "192.168.0.0/16", why, sizeof(why)), BH_ETOOBIG);
    assert_string_equal(why,
                        "allow-list entry 192.168.0.0/16: the list is full (at most 32 entries)");
    assert_int_equal(a.n, DEST_ALLOW_MAX);
    assert_true(allowed(&a, "10.31.255.255"));
    assert_false(allowed(&a, "10.32.0.0"));
}

/* ---- dest_check_url ------------------------------------------------------ */

/* A resolver that answers from a table and counts its calls. */
typedef struct fake_dns {
    int rc;
    const char *addrs[4];
    size_t n;
    int calls;
    struct sockaddr_storage ss[4];
    struct addrinfo ai[4];
} fake_dns_t;

static int fake_resolve(const dest_resolver_t *r, const char *host, struct addrinfo **res)
{
    fake_dns_t *f = r->ctx;
    (void)host;
    f->calls++;
    if (f->rc != 0)
        return f->rc;
    memset(f->ai, 0, sizeof(f->ai));
    for (size_t i = 0; i < f->n; i++) {
        f->ss[i] = addr_of(f->addrs[i]);
        f->ai[i].ai_family = f->ss[i].ss_family;
        f->ai[i].ai_socktype = SOCK_STREAM;
        f->ai[i].ai_addr = (struct sockaddr *)&f->ss[i];
        f->ai[i].ai_addrlen = f->ss[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                            : sizeof(struct sockaddr_in6);
        f->ai[i].ai_next = i + 1 < f->n ? &f->ai[i + 1] : NULL;
    }
    *res = f->n ? &f->ai[0] : NULL;
    return 0;
}

static void fake_release(const dest_resolver_t *r, struct addrinfo *res)
{
    (void)r;
    (void)res;
}

static dest_url_t url_of(const char *s)
{
    dest_url_t u;
    char why[DEST_WHY_MAX];
    if (dest_url_parse(s, strlen(s), false, &u, why, sizeof(why)) != 0)
        fail_msg("%s: %s", s, why);
    return u;
}

static void expect_url(const dest_allow_t *a, const dest_resolver_t *r, const char *s,
                       const char *want)
{
    dest_url_t u = url_of(s);
    char why[DEST_WHY_MAX] = "";
    int rc = dest_check_url_with(&u, a, r, why, sizeof(why));
    if (!want) {
        if (rc != 0)
            fail_msg("%s: refused: %s", s, why);
        return;
    }
    if (rc != BH_EINVAL)
        fail_msg("%s: accepted, want \"%s\"", s, want);
    if (strcmp(why, want) != 0)
        fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", s, why, want);
}

static void test_check_url_literals_and_special_names(void **state)
{
    (void)state;
    fake_dns_t f = { .rc = 0, .addrs = { "8.8.8.8" }, .n = 1 };
    dest_resolver_t r = { fake_resolve, fake_release, &f };
    dest_allow_t a;
    dest_allow_init(&a);

    expect_url(&a, &r, "https://127.0.0.1/", "127.0.0.1 is a loopback address");
    expect_url(&a, &r, "https://10.0.0.7:8443/x", "10.0.0.7 is a private address");
    expect_url(&a, &r, "https://169.254.169.254/latest",
               "169.254.169.254 is a cloud metadata address");
    expect_url(&a, &r, "https://[::1]/", "::1 is a loopback address");
    expect_url(&a, &r, "https://[::ffff:7f00:1]/",
               "::ffff:127.0.0.1 is an IPv4-mapped IPv6 address (it embeds 127.0.0.1)");
    expect_url(&a, &r, "https://[::127.0.0.1]/",
               "::127.0.0.1 is an IPv4-compatible IPv6 address (it embeds 127.0.0.1)");
    expect_url(&a, &r, "https://[64:ff9b::7f00:1]/",
               "64:ff9b::7f00:1 is a loopback address (it embeds 127.0.0.1)");
    expect_url(&a, &r, "https://[2002:7f00:1::]/",
               "2002:7f00:1:: is a loopback address (it embeds 127.0.0.1)");
    expect_url(&a, &r, "https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address");
    expect_url(&a, &r, "https://8.8.8.8/", NULL);
    expect_url(&a, &r, "https://[2606:4700:4700::1111]:8443/", NULL);

    expect_url(&a, &r, "https://localhost/", "localhost resolves to 127.0.0.1, which is a "
                                            "loopback address");
    expect_url(&a, &r, "https://LOCALHOST.:8080/", "localhost. resolves to 127.0.0.1, which is a "
                                                  "loopback address");
    expect_url(&a, &r, "https://api.localhost/", "api.localhost resolves to 127.0.0.1, which is a "
                                                "loopback address");
    expect_url(&a, &r, "https://a.b.localhost./", "a.b.localhost. resolves to 127.0.0.1, which is "
                                                 "a loopback address");
    expect_url(&a, &r, "https://hook.invalid/", NULL);
    expect_url(&a, &r, "https://invalid/", NULL);
    expect_url(&a, &r, "https://x.y.invalid./", NULL);
    /* None of these asked the resolver. */
    assert_int_equal(f.calls, 0);

    /* Names that merely contain the special ones go to the resolver. */
    expect_url(&a, &r, "https://notlocalhost/", NULL);
    expect_url(&a, &r, "https://localhost.example/", NULL);
    expect_url(&a, &r, "https://invalid.example/", NULL);
    assert_int_equal(f.calls, 3);

    /* localhost stands for both loopback addresses: both must be allowed. */
    allow(&a, "127.0.0.1/32");
    expect_url(&a, &r, "https://127.0.0.1/", NULL);
    expect_url(&a, &r, "https://localhost/", "localhost resolves to ::1, which is a loopback "
                                            "address");
    allow(&a, "::1/128");
    expect_url(&a, &r, "https://localhost/", NULL);
    expect_url(&a, &r, "https://[::1]/", NULL);
    expect_url(&a, &r, "https://127.0.0.2/", "127.0.0.2 is a loopback address");
    assert_int_equal(f.calls, 3);
}

static void test_check_url_resolved_names(void **state)
{
    (void)state;
    fake_dns_t f = { .rc = 0 };
    dest_resolver_t r = { fake_resolve, fake_release, &f };
    dest_allow_t a;
    dest_allow_init(&a);

    f = (fake_dns_t){ .addrs = { "8.8.8.8", "2606:4700:4700::1111" }, .n = 2 };
    expect_url(&a, &r, "https://hooks.example/", NULL);

    /* Every address must pass: one bad one refuses the name. */
    f = (fake_dns_t){ .addrs = { "8.8.8.8", "10.0.0.7", "1.1.1.1" }, .n = 3 };
    expect_url(&a, &r, "https://hooks.example/",
               "hooks.example resolves to 10.0.0.7, which is a private address");
    f = (fake_dns_t){ .addrs = { "2606:4700:4700::1111", "fe80::1" }, .n = 2 };
    expect_url(&a, &r, "https://Hooks.Example./",
               "hooks.example. resolves to fe80::1, which is a link-local address");
    f = (fake_dns_t){ .addrs = { "64:ff9b::a9fe:a9fe" }, .n = 1 };
    expect_url(&a, &r, "https://rebind.example/",
               "rebind.example resolves to 64:ff9b::a9fe:a9fe, which is a cloud metadata address "
               "(it embeds 169.254.169.254)");

    /* The allow-list applies to resolved addresses too. */
    allow(&a, "10.0.0.0/8");
    f = (fake_dns_t){ .addrs = { "8.8.8.8", "10.0.0.7", "1.1.1.1" }, .n = 3 };
    expect_url(&a, &r, "https://hooks.example/", NULL);
    assert_int_equal(f.calls, 1);

    /* Names that do not resolve (now) are accepted, as are resolver faults. */
    static const int eai[] = { EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_MEMORY, EAI_SYSTEM,
#ifdef EAI_NODATA
                               EAI_NODATA,
#endif
    };
    for (size_t i = 0; i < ARRAY_LEN(eai); i++) {
        f = (fake_dns_t){ .rc = eai[i] };
        expect_url(&a, &r, "https://later.example/", NULL);
        assert_int_equal(f.calls, 1);
    }
    f = (fake_dns_t){ .n = 0 };
    expect_url(&a, &r, "https://empty.example/", NULL);
}

/* The real resolver on a numeric host: getaddrinfo() converts it itself, no DNS.
 * (The parser never makes a name of a number; the URL is built by hand.) */
static void test_check_url_system_resolver(void **state)
{
    (void)state;
    dest_url_t u;
    char why[DEST_WHY_MAX];
    memset(&u, 0, sizeof(u));
    memcpy(u.scheme, "https", 6);
    u.port = 443;
    u.host_kind = DEST_HOST_NAME;
    u.addr.ss_family = AF_UNSPEC;

    snprintf(u.host, sizeof(u.host), "127.0.0.1");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "127.0.0.1 resolves to 127.0.0.1, which is a loopback address");
    snprintf(u.host, sizeof(u.host), "::1");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "::1 resolves to ::1, which is a loopback address");
    snprintf(u.host, sizeof(u.host), "8.8.8.8");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), 0);

    /* Literals and special names through dest_check_url itself. */
    u = url_of("https://[::1]:8443/");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "::1 is a loopback address");
    u = url_of("https://localhost/");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), BH_EINVAL);
    u = url_of("https://hook.invalid/");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), 0);
    u = url_of("https://203.0.114.1/");
    assert_int_equal(dest_check_url(&u, NULL, why, sizeof(why)), 0);

    /* A NULL resolver is the system one. */
    memset(&u, 0, sizeof(u));
    u.host_kind = DEST_HOST_NAME;
    snprintf(u.host, sizeof(u.host), "10.9.8.7");
    assert_int_equal(dest_check_url_with(&u, NULL, NULL, why, sizeof(why)), BH_EINVAL);
    assert_string_equal(why, "10.9.8.7 resolves to 10.9.8.7, which is a private address");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_legacy_ipv4),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_reason_buffer),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_classify_covers_every_class),
        cmocka_unit_test(test_classify_not_ip),
        cmocka_unit_test(test_class_str),
        cmocka_unit_test(test_check_addr_reasons),
        cmocka_unit_test(test_allow_match),
        cmocka_unit_test(test_allow_bad),
        cmocka_unit_test(test_allow_capacity),
        cmocka_unit_test(test_check_url_literals_and_special_names),
        cmocka_unit_test(test_check_url_resolved_names),
        cmocka_unit_test(test_check_url_system_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
