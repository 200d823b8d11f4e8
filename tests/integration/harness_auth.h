/*
 * harness_auth.h: tenants, API clients and bearer tokens for integration tests, the
 * way an operator and an integrator get them.
 *
 * Tenants and clients are made with the CLI on the very SQLite file the running
 * server uses; tokens come from the token endpoint, or are forged with the server's
 * own signing key (read from its store) when a test needs claims the endpoint never
 * issues, such as an expired token. Every helper fails the current cmocka test
 * instead of returning an error.
 *
 * The request helpers here open a new connection per request and take a raw token and
 * an optional Host (test_auth.c, test_access.c); a test that boots a server with its
 * tenant and client and keeps one connection uses harness_api.h, built on these.
 */
#ifndef BREAKHOOK_TESTS_INTEGRATION_HARNESS_AUTH_H
#define BREAKHOOK_TESTS_INTEGRATION_HARNESS_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* The scopes, spelled out here (not taken from the server's headers) so the tests
 * pin the public contract. */
#define SC_BREAKS_R "connector-protimeapi-breaks.read"
#define SC_BREAKS_W "connector-protimeapi-breaks.write"
#define SC_DEFS_R "connector-protimeapi-break-definitions.read"
#define SC_DEFS_W "connector-protimeapi-break-definitions.write"
#define SC_PEOPLE_R "connector-protimeapi-people.read"
#define SC_PEOPLE_W "connector-protimeapi-people.write"
#define SC_HOOKS_R "connector-protimeapi-webhooks.read"
#define SC_HOOKS_W "connector-protimeapi-webhooks.write"
#define SC_ALL                                                                              \
    SC_BREAKS_R " " SC_BREAKS_W " " SC_DEFS_R " " SC_DEFS_W " " SC_PEOPLE_R " " SC_PEOPLE_W \
                " " SC_HOOKS_R " " SC_HOOKS_W

#define IT_FORM_CT "Content-Type: application/x-www-form-urlencoded\r\n"
#define IT_JSON_CT "Content-Type: application/json\r\n"
/* Every scope a client can hold. */
#define IT_ALL_SCOPES SC_ALL

/* One record of each kind, acme's data in the isolation and access tests (ids 101,
 * 201, 301; the break is on 2024-03-05) and a webhook body. */
#define IT_PERSON_A "{\"id\":101,\"externalReferences\":{\"@employee-number\":\"E-101\"}}"
#define IT_DEF_A                                                                              \
    "{\"id\":201,\"name\":{\"default\":\"Lunch\"},\"friendlyName\":{\"default\":\"Lunch break\"}," \
    "\"paidDurationInMinutes\":30,\"minimumDurationInMinutes\":15,\"maximumDurationInMinutes\":60," \
    "\"ifNotClockedDurationInMinutes\":30,\"hasToBeTakenUninterrupted\":true}"
#define IT_BREAK_A                                                                                \
    "{\"id\":301,\"person\":{\"id\":101},\"breakDefinition\":{\"id\":201},\"date\":\"2024-03-05\"," \
    "\"clockedDurationInMinutes\":25,\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,"     \
    "\"isBreakTaken\":true}"
/* The breaks of March 2024 (a path below the API base). */
#define IT_BREAKS_MARCH_PATH \
    "/breaks?filter=date%20ge%20%272024-03-01%27%20and%20date%20le%20%272024-03-31%27"

typedef struct it_client {
    char tenant[64];
    char id[64];
    char secret[128];
} it_client_t;

/* Prints a CLI run's exit status, stdout and stderr on stderr. */
void it_run_dump(const it_run_result_t *r);
/* Runs `breakhook <args...> --store sqlite:<the server's file>` and requires exit 0. */
void it_cli_store(const it_server_t *s, const char *const *args, it_run_result_t *r);
/* `tenant create <name>`. */
void it_tenant_create(const it_server_t *s, const char *name);
/* `client create --json` with scopes (space separated): checks the one line it
 * prints and fills c. */
void it_client_create(const it_server_t *s, const char *tenant, const char *scopes,
                      it_client_t *c);

/* A request on a new connection; fails the test when no answer came. */
void it_req(int port, const char *method, const char *target, const char *headers,
            const char *body, it_response_t *r);
/* A 200 token answer: exactly the four members, Bearer, expires_in == ttl, the scope
 * (when want_scope is not NULL), no-store, a compact JWS. Returns the token
 * (malloc'd). */
char *it_assert_token_ok(const it_response_t *r, const char *want_scope, long long ttl);
/* Gets a token for c from the token endpoint (form credentials), for scope (NULL:
 * every scope of the client) and with a Host header (NULL: none). The server must
 * use the default --token-ttl. malloc'd. */
char *it_token_get(int port, const it_client_t *c, const char *scope, const char *host);
/* it_token_get (without Host) as an "Authorization: Bearer <token>\r\n" header line
 * (malloc'd). */
char *it_token_header(int port, const it_client_t *c, const char *scope);
/* Issues a token signed with the server's real current key (read from its store) for
 * c, with scope and the times given (Unix seconds): the only way to get an expired
 * or not-yet-valid one in a test. malloc'd. */
char *it_token_forge(const it_server_t *s, const it_client_t *c, const char *scope, int64_t iat,
                     int64_t nbf, int64_t exp);

/* An API request with a bearer token (or none), an optional Host, and a body sent
 * as application/json (or none). */
void it_api_request(int port, const char *method, const char *target, const char *token,
                    const char *host, const char *body, it_response_t *r);
/* it_api_request whose answer must have status; returns the parsed JSON answer
 * (caller decrefs; NULL for a 204). */
json_t *it_api_expect(int port, const char *method, const char *target, const char *token,
                      const char *host, const char *body, int status);
/* GET target (200 with a JSON body required); the body (malloc'd). */
char *it_get_body(int port, const char *target, const char *token, const char *host);
/* GET target (200 required); the number of items in its "value" list. */
size_t it_list_size(int port, const char *target, const char *token, const char *host);
/* 401 with the SPEC body and a Bearer challenge (error="invalid_token" when a token
 * was sent). */
void it_assert_401(const it_response_t *r, bool had_token);
/* 403 with the SPEC body and a Bearer challenge naming error="insufficient_scope"
 * and scope="<scope>". */
void it_assert_403(const it_response_t *r, const char *scope);

#endif
