/*
 * destination.h: which webhook destinations may be called (SPEC §7.1).
 *
 * A webhook's destinationUrl is chosen by an API client, and the server calls it
 * from inside the operator's network; without these checks a client could make
 * the server fetch its own admin port, a database on the private network or a
 * cloud metadata endpoint (server-side request forgery). The checks run twice:
 *
 *   1. When the webhook is created: dest_url_parse() decides whether the text is
 *      an acceptable URL, then dest_check_url() (blocking: it resolves names)
 *      whether its host is, or resolves to, a forbidden address.
 *   2. On every delivery: the delivery engine calls dest_check_addr() on the
 *      address it is about to connect to (curl's open-socket hook), so a name
 *      that resolved to a public address at creation and to 127.0.0.1 later
 *      (DNS rebinding) is still refused. This second check is the one that
 *      really protects; the first one gives the client an early, clear 400.
 *
 * URL rules. An absolute RFC 3986 URL of at most DEST_URL_MAX bytes:
 *   - scheme `https` (any case); `http` only when the caller allows it (the
 *     operator's --allow-http-destinations); anything else is refused;
 *   - `//` and an authority without user-info (any '@' before the path);
 *   - host: a DNS name (letters, digits, '-' and '.'; labels of 1..63 bytes
 *     that neither start nor end with '-'; at most 253 bytes plus one optional
 *     trailing dot; lower-cased), a dotted-quad IPv4 address, or a bracketed
 *     IPv6 address (embedded-IPv4 forms such as [::ffff:1.2.3.4] included;
 *     zone identifiers and IPvFuture literals refused). Percent-encoding is not
 *     accepted in the host;
 *   - an optional port 1..65535 (at most 5 digits; an empty port is refused);
 *   - path and query made of RFC 3986 characters (unreserved, sub-delims, ':',
 *     '@', '/', '?') and well-formed %XX escapes; other bytes (spaces, quotes,
 *     '<', '\', '{', controls, non-ASCII ...) must be percent-encoded;
 *   - no fragment: a '#' is refused, since a fragment is never sent to a server.
 *
 * Legacy IPv4 spellings. inet_aton(), getaddrinfo() and browsers (the WHATWG
 * URL parser) read hosts such as 2130706433, 0177.0.0.1, 017700000001,
 * 0x7f.0.0.1, 0x7f000001, 127.1 and 127.0.1 as 127.0.0.1. Choice made here:
 * such spellings are REFUSED outright, never classified and never treated as
 * names. A host is taken as an IPv4 address, as the WHATWG parser does,
 * whenever its last label (ignoring one trailing dot) is all decimal digits
 * or "0x" followed by hex digits; it is then accepted only as the canonical
 * dotted quad inet_pton() reads (four decimal numbers 0..255 without leading
 * zeros, no trailing dot). Anything else that ends in a number is refused,
 * with a reason naming the address it would denote when it denotes one
 * ("... non-canonical spelling of the IPv4 address 127.0.0.1 ...") or as not
 * a valid IPv4 address otherwise (1.2.3.4.5, 256.0.0.1). So no numeric host
 * ever reaches a resolver, and the URL stored means the same thing to every
 * parser that reads it later.
 *
 * Address classes (dest_classify_sockaddr). Public means globally routable
 * unicast; everything else is refused unless allow-listed:
 *   IPv4: 0/8 unspecified ("this network"), 10/8 172.16/12 192.168/16 private,
 *     100.64/10 CGNAT, 127/8 loopback, 169.254/16 link-local, the metadata
 *     endpoints 169.254.169.254, 169.254.170.2 (AWS ECS) and 100.100.100.200
 *     (Alibaba), 192.0.0/24 and 192.88.99/24 reserved, 192.0.2/24 198.51.100/24
 *     203.0.113/24 documentation, 198.18/15 benchmarking, 224/4 multicast,
 *     255.255.255.255 broadcast, 240/4 reserved.
 *   IPv6: :: unspecified, ::1 loopback, ::ffff:0:0/96 IPv4-mapped and the rest
 *     of ::/96 IPv4-compatible (both refused whatever they embed: write the
 *     IPv4 address itself), 64:ff9b::/96 NAT64 and 2002::/16 6to4 classified by
 *     the IPv4 address they embed, 64:ff9b:1::/48 (local-use NAT64) and
 *     fc00::/7 unique-local and fec0::/10 site-local private, fe80::/10
 *     link-local, ff00::/8 multicast, 2001:db8::/32 and 3fff::/20
 *     documentation, 2001:2::/48 benchmarking, 100::/64 discard-only,
 *     fd00:ec2::254 metadata (AWS), the rest of 2001::/23 (IETF protocol
 *     assignments, Teredo included) reserved, and everything outside 2000::/3
 *     reserved (not global unicast space).
 *
 * Allow-list. The operator's --allow-destination CIDRs (at most DEST_ALLOW_MAX)
 * let chosen non-public addresses through. An entry matches addresses of its
 * own family only: 10.0.0.0/8 does not match ::ffff:10.0.0.1. A metadata
 * address passes only through an entry of full length naming it
 * (169.254.169.254/32, fd00:ec2::254/128): allowing 169.254.0.0/16 for a
 * link-local device, or 0.0.0.0/0 for a test rig, must not open the cloud's
 * credentials endpoint by accident.
 *
 * Threads: everything is pure computation callable from any thread, except
 * dest_check_url(), which blocks in getaddrinfo() and must run on a worker
 * thread, never on an event loop. Nothing here allocates except getaddrinfo().
 *
 * Reasons: functions that refuse write a one-line English reason into why
 * (NUL-terminated, printable ASCII only so it is valid inside JSON once quoted,
 * at most DEST_WHY_MAX bytes with the NUL, truncated only if why_len is
 * smaller). why may be NULL when why_len is 0. Reasons name the problem
 * without the field name, e.g. "URL must not contain user-info ('@' in the
 * authority)", "127.0.0.1 is a loopback address"; the API adds the field.
 */
#ifndef BREAKHOOK_CLIENT_DESTINATION_H
#define BREAKHOOK_CLIENT_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/err.h"

#define DEST_URL_MAX 2048  /* bytes of URL text */
#define DEST_HOST_MAX 254  /* bytes of host text: 253 and a trailing dot */
#define DEST_WHY_MAX 512   /* a reason buffer this size is never truncated */
#define DEST_ALLOW_MAX 32  /* allow-list entries */

typedef enum dest_host_kind {
    DEST_HOST_NAME, /* a DNS name, to be resolved */
    DEST_HOST_IPV4, /* a dotted-quad literal */
    DEST_HOST_IPV6, /* a bracketed literal */
} dest_host_kind_t;

/* A parsed destination URL. Self-contained: it holds copies, no pointers into
 * the input, so it may be copied and kept. */
typedef struct dest_url {
    char scheme[6];                /* "https" or "http", lower case */
    char host[DEST_HOST_MAX + 1];  /* a name in lower case (trailing dot kept as
                                    * written), a dotted quad, or an IPv6 address
                                    * in inet_ntop() form without brackets */
    dest_host_kind_t host_kind;
    uint16_t port;                 /* as written, else 443 (https) or 80 (http) */
    bool port_explicit;
    /* For an IP literal: the address and port (sockaddr_in or sockaddr_in6).
     * For a name: ss_family is AF_UNSPEC. */
    struct sockaddr_storage addr;
    char path[DEST_URL_MAX + 1];   /* path and query as written; "/" when the path
                                    * is empty ("https://h?q" gives "/?q") */
    size_t path_len;
} dest_url_t;

/* Parses (p, n), borrowed and not necessarily NUL-terminated, by the rules above.
 * allow_http: the operator allows plain http. Returns 0 with *out filled, or
 * BH_EINVAL with a reason in why (and *out zeroed). Pure; any thread. */
BH_MUST_USE int dest_url_parse(const char *p, size_t n, bool allow_http, dest_url_t *out,
                               char *why, size_t why_len);

typedef enum dest_class {
    DEST_PUBLIC = 0,
    DEST_LOOPBACK,
    DEST_PRIVATE,
    DEST_LINK_LOCAL,
    DEST_CGNAT,
    DEST_MULTICAST,
    DEST_UNSPECIFIED,
    DEST_IPV4_MAPPED,
    DEST_IPV4_COMPAT,
    DEST_METADATA,
    DEST_RESERVED,
    DEST_DOCUMENTATION,
    DEST_BROADCAST,
    DEST_BENCHMARK,
    DEST_DISCARD,
    DEST_NOT_IP, /* NULL, or a family other than AF_INET/AF_INET6 */
} dest_class_t;

/* The class of the address in sa (AF_INET or AF_INET6; the port and the IPv6
 * scope id are ignored). Pure; any thread. */
dest_class_t dest_classify_sockaddr(const struct sockaddr *sa);

/* A static adjective for messages: "public", "loopback", "private",
 * "link-local", "carrier-grade NAT", "multicast", "unspecified",
 * "IPv4-mapped IPv6", "IPv4-compatible IPv6", "cloud metadata", "reserved",
 * "documentation", "broadcast", "benchmarking", "discard-only", "non-IP";
 * "unknown" for a value outside the enum. Never NULL. */
const char *dest_class_str(dest_class_t c);

typedef struct dest_cidr {
    sa_family_t family;  /* AF_INET or AF_INET6 */
    uint8_t prefix;      /* 0..32 or 0..128 */
    uint8_t addr[16];    /* network address; 4 bytes used for AF_INET */
} dest_cidr_t;

/* The operator's allow-list, embedded by its owner. Filled at start, then only
 * read (so any number of threads may read it without locks). */
typedef struct dest_allow {
    dest_cidr_t items[DEST_ALLOW_MAX];
    size_t n;
} dest_allow_t;

/* Empties a. */
void dest_allow_init(dest_allow_t *a);

/* Adds one CIDR from the NUL-terminated cidr: "10.0.0.0/8", "fd00::/8",
 * "::1/128", or a bare address meaning /32 or /128. The address must be a
 * canonical dotted quad or an inet_pton() IPv6 address (no brackets, no zone);
 * the prefix a decimal number without leading zeros, at most 32 or 128; no
 * bits may be set past the prefix (10.0.0.1/8 is refused, the reason suggests
 * 10.0.0.0/8). BH_EINVAL with a reason for a malformed entry, BH_ETOOBIG past
 * DEST_ALLOW_MAX entries; a is unchanged on failure. */
BH_MUST_USE int dest_allow_add(dest_allow_t *a, const char *cidr, char *why, size_t why_len);

/* Whether an entry of a (which may be NULL: empty) matches sa; a metadata
 * address needs a full-length entry (see above). */
bool dest_allowed(const dest_allow_t *a, const struct sockaddr *sa);

/* 0 when sa may be connected to: public, or allow-listed. Else BH_EINVAL with a
 * reason such as "127.0.0.1 is a loopback address" or "64:ff9b::7f00:1 is a
 * loopback address (it embeds 127.0.0.1)". a may be NULL. Pure; any thread;
 * the delivery engine calls it on every address it connects to. */
BH_MUST_USE int dest_check_addr(const dest_allow_t *a, const struct sockaddr *sa, char *why,
                                size_t why_len);

/* Name resolution for dest_check_url_with(), replaceable so tests never touch
 * DNS. resolve works like getaddrinfo(host, NULL, {AF_UNSPEC, SOCK_STREAM}):
 * 0 and a list in *res that release frees, or an EAI_* code. */
typedef struct dest_resolver dest_resolver_t;
struct addrinfo;
struct dest_resolver {
    int (*resolve)(const dest_resolver_t *r, const char *host, struct addrinfo **res);
    void (*release)(const dest_resolver_t *r, struct addrinfo *res);
    void *ctx;
};

/* getaddrinfo()/freeaddrinfo(). Never NULL. */
const dest_resolver_t *dest_resolver_system(void);

/* Decides whether the host of u (from dest_url_parse) may be called now:
 *   - an IP literal: dest_check_addr() on it;
 *   - `localhost`, or a name under `.localhost` (trailing dot or not): treated
 *     as resolving to both 127.0.0.1 and ::1, which must both pass, without
 *     asking a resolver (RFC 6761 §6.3);
 *   - a name under `.invalid`: accepted without asking a resolver, as RFC 6761
 *     §6.4 asks (it can never resolve);
 *   - any other name: resolved, and every address returned must pass (the
 *     connection may go to any of them). A name that does not resolve is
 *     accepted: it may resolve later, and then the delivery check applies.
 * Returns 0 or BH_EINVAL with a reason ("... resolves to 10.0.0.7, which is a
 * private address"). a may be NULL. BLOCKING (DNS): call it from a worker
 * thread. dest_check_url uses dest_resolver_system(), as does
 * dest_check_url_with() when r is NULL. */
BH_MUST_USE int dest_check_url(const dest_url_t *u, const dest_allow_t *a, char *why,
                               size_t why_len);
BH_MUST_USE int dest_check_url_with(const dest_url_t *u, const dest_allow_t *a,
                                    const dest_resolver_t *r, char *why, size_t why_len);

#endif
