/*
 * fuzz_destination.c: the destinationUrl parser and the address checks on
 * arbitrary bytes.
 *
 * Each input is parsed with http refused and allowed. Besides memory errors it
 * checks that a refusal comes with a printable, untruncated reason; that what
 * is accepted with http refused is accepted identically with it allowed; that
 * an accepted URL is well formed (scheme, port, path starting with '/', a
 * host no parser reads as a number: inet_aton() must refuse every name); and
 * that an IP literal's text and address agree. Literals and special names go
 * through dest_check_url_with() with a resolver that never answers, so the
 * fuzzer never touches DNS. The input, as a C string, is also offered to the
 * allow-list parser.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/destination.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reason_ok(const char *why)
{
    size_t n = 0;
    for (const char *p = why; *p; p++, n++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            abort();
    if (n == 0 || n >= DEST_WHY_MAX - 1) /* empty, or cut short by the buffer */
        abort();
}

static int no_answer(const dest_resolver_t *r, const char *host, struct addrinfo **res)
{
    (void)r;
    (void)host;
    (void)res;
    return EAI_NONAME;
}

static void no_release(const dest_resolver_t *r, struct addrinfo *res)
{
    (void)r;
    (void)res;
}

static void url_ok(const dest_url_t *u, bool allow_http)
{
    size_t hn = strnlen(u->host, sizeof(u->host));
    if (hn == 0 || hn > DEST_HOST_MAX)
        abort();
    if (strcmp(u->scheme, "https") == 0) {
        if (!u->port_explicit && u->port != 443)
            abort();
    } else if (strcmp(u->scheme, "http") == 0) {
        if (!allow_http || (!u->port_explicit && u->port != 80))
            abort();
    } else {
        abort();
    }
    if (u->port == 0 || u->path[0] != '/' || strlen(u->path) != u->path_len ||
        memchr(u->path, '#', u->path_len))
        abort();

    char t[INET6_ADDRSTRLEN];
    struct in_addr in;
    switch (u->host_kind) {
    case DEST_HOST_NAME:
        if (u->addr.ss_family != AF_UNSPEC || inet_aton(u->host, &in) != 0)
            abort();
        for (size_t i = 0; i < hn; i++) {
            char c = u->host[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
                abort();
        }
        break;
    case DEST_HOST_IPV4: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&u->addr;
        if (sin->sin_family != AF_INET || ntohs(sin->sin_port) != u->port ||
            !inet_ntop(AF_INET, &sin->sin_addr, t, sizeof(t)) || strcmp(t, u->host) != 0)
            abort();
        break;
    }
    case DEST_HOST_IPV6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&u->addr;
        if (sin6->sin6_family != AF_INET6 || ntohs(sin6->sin6_port) != u->port ||
            !inet_ntop(AF_INET6, &sin6->sin6_addr, t, sizeof(t)) || strcmp(t, u->host) != 0)
            abort();
        break;
    }
    default:
        abort();
    }
}

static void check(const dest_url_t *u)
{
    static const dest_resolver_t r = { no_answer, no_release, NULL };
    static dest_allow_t allow;
    static bool init;
    char why[DEST_WHY_MAX];
    if (!init) {
        dest_allow_init(&allow);
        if (dest_allow_add(&allow, "10.0.0.0/8", why, sizeof(why)) != 0 ||
            dest_allow_add(&allow, "fd00::/8", why, sizeof(why)) != 0)
            abort();
        init = true;
    }
    if (u->host_kind != DEST_HOST_NAME) {
        const struct sockaddr *sa = (const struct sockaddr *)&u->addr;
        dest_class_t c = dest_classify_sockaddr(sa);
        if (c == DEST_NOT_IP || strcmp(dest_class_str(c), "unknown") == 0)
            abort();
        int rc = dest_check_addr(NULL, sa, why, sizeof(why));
        if ((rc == 0) != (c == DEST_PUBLIC))
            abort();
        if (rc != 0)
            reason_ok(why);
        rc = dest_check_addr(&allow, sa, why, sizeof(why));
        if ((rc == 0) != (c == DEST_PUBLIC || dest_allowed(&allow, sa)))
            abort();
        if (rc != 0)
            reason_ok(why);
    }
    /* Names ask the resolver above (which never answers) unless special. */
    if (dest_check_url_with(u, NULL, &r, why, sizeof(why)) != 0)
        reason_ok(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dest_url_t strict, lax;
    char why[DEST_WHY_MAX];
    const char *p = (const char *)data;

    int rs = dest_url_parse(p, size, false, &strict, why, sizeof(why));
    if (rs != 0) {
        if (rs != BH_EINVAL)
            abort();
        reason_ok(why);
    } else {
        url_ok(&strict, false);
        check(&strict);
    }
    int rl = dest_url_parse(p, size, true, &lax, why, sizeof(why));
    if (rl != 0) {
        if (rl != BH_EINVAL || rs == 0)
            abort();
        reason_ok(why);
    } else {
        url_ok(&lax, true);
        if (rs == 0 && memcmp(&strict, &lax, sizeof(lax)) != 0)
            abort();
        if (rs != 0)
            check(&lax);
    }

    /* The allow-list parser on the same bytes, as a C string. */
    char cidr[80];
    size_t cn = size < sizeof(cidr) - 1 ? size : sizeof(cidr) - 1;
    memcpy(cidr, data, cn);
    cidr[cn] = '\0';
    dest_allow_t a;
    dest_allow_init(&a);
    int rc = dest_allow_add(&a, cidr, why, sizeof(why));
    if (rc == 0) {
        if (a.n != 1 || (a.items[0].family == AF_INET ? a.items[0].prefix > 32
                                                      : a.items[0].prefix > 128))
            abort();
    } else {
        if (rc != BH_EINVAL || a.n != 0)
            abort();
        reason_ok(why);
    }
    return 0;
}
