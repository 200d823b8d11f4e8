/*
 * harness_api.h: a booted server, as every integration test that writes data needs it.
 *
 * One it_srv_t is one `breakhook serve` on 127.0.0.1 with its own SQLite store, tenant
 * IT_TENANT, an API client holding the scopes the test asks for (made with the CLI,
 * harness_auth.h), a bearer token from the token endpoint, and one keep-alive
 * connection the requests go over (reopened when the server closes it). On top of it:
 * requests that must answer a given status, seeding people and break definitions,
 * and creating a webhook. (Bounded waits on a condition: it_wait_until, harness.h.)
 *
 * There is no other copy: test_delivery.c, test_data_api.c, test_webhooks.c,
 * test_disk.c and test_metrics.c boot through it_srv_boot; test_auth.c, test_access.c,
 * test_http.c and test_log_secrets.c start their server with it_srv_start, and every
 * teardown is it_srv_finish. Everything runs on the test's thread; every helper fails the current cmocka test itself, with a message
 * naming what failed, instead of returning an error.
 */
#ifndef BREAKHOOK_TESTS_INTEGRATION_HARNESS_API_H
#define BREAKHOOK_TESTS_INTEGRATION_HARNESS_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "harness_auth.h"

#define IT_BASE "/connector/protimeapi/api/v1"
#define IT_TENANT "acme"

typedef struct it_srv {
    it_server_t s;
    bool started;       /* its directory exists (it_srv_finish must clean it up) */
    bool done;          /* stopped or killed by the test itself, which checked how */
    it_conn_t conn;     /* the keep-alive connection; fd < 0: none */
    char store[400];    /* "sqlite:<db>", the --store of CLI runs on this server's data */
    it_client_t client; /* tenant IT_TENANT's client (it_srv_boot) */
    char auth[1200];    /* "Authorization: Bearer <client's token>\r\n" */
} it_srv_t;

typedef struct it_boot_opts {
    const char *const *args;     /* extra serve arguments (NULL-terminated) or NULL */
    const char *const *env;      /* as it_server_opts_t.env */
    const char *scopes;          /* the client's scopes; NULL: IT_ALL_SCOPES */
    const it_srv_t *same_store;  /* run on that server's store (a restart: its tenant and
                                  * client exist and are reused), not a fresh one */
} it_boot_opts_t;

/* it_server_start(&s->s, o) (o may be NULL) for a test that makes its own tenants and
 * clients, or none: no --rate-limit 0, no tenant. Fails the test when the server does
 * not start; s->store names its store either way. */
void it_srv_start(it_srv_t *s, const it_server_opts_t *o);
/* Starts `breakhook serve --rate-limit 0 [o->args...]` (o may be NULL), creates tenant
 * IT_TENANT and a client with o->scopes (unless same_store) and gets its token into
 * s->auth. */
void it_srv_boot(it_srv_t *s, const it_boot_opts_t *o);
/* Gets a token for the client c (scope NULL: all of the client's) and puts it into
 * s->auth. */
void it_srv_auth(it_srv_t *s, const it_client_t *c, const char *scope);
/* SIGTERM from the test itself; fails the test unless the server exits 0. */
void it_srv_stop(it_srv_t *s);
/* For the teardown: closes the connection; unless the test stopped the server itself,
 * SIGTERM requiring exit 0 (it_server_stop_clean); removes its directory. Returns 0,
 * or -1 when the server did not exit cleanly. A server never started: 0. Servers that
 * share a store are finished newest first. */
int it_srv_finish(it_srv_t *s);

/* cmocka setup and teardown for a test whose state is one it_srv_t: calloc'd, then
 * it_srv_finish'ed (its result is the teardown's) and freed. */
int it_srv_setup(void **state);
int it_srv_teardown(void **state);

/* The servers of a test that starts several (a restart on the same store, a second
 * configuration). */
#define IT_MAX_SRV 5
typedef struct it_srvs {
    it_srv_t srv[IT_MAX_SRV];
    size_t n; /* handed out by it_srvs_next */
} it_srvs_t;
/* The next unused server; fails the test when all IT_MAX_SRV are in use. */
it_srv_t *it_srvs_next(it_srvs_t *v);
/* it_srv_finish on every server, newest first (a later one may use an earlier one's
 * store); -1 when any did not exit cleanly. */
int it_srvs_finish(it_srvs_t *v);
/* cmocka setup and teardown for a test whose state is one it_srvs_t. */
int it_srvs_setup(void **state);
int it_srvs_teardown(void **state);

/* One request on s's keep-alive connection. auth: a header line ("Authorization:
 * ...\r\n") or NULL; ctype: a Content-Type value or NULL. Fails the test when no
 * answer comes. */
void it_srv_call(it_srv_t *s, const char *auth, const char *method, const char *target,
                 const char *ctype, const char *body, size_t len, it_response_t *r);
/* A request with s->auth and a JSON body (or none) whose answer must have status (0:
 * 200 or 201) and, unless it is a 204, a JSON body; a PUT answered 201 must name the
 * target in Location, any other PUT answer must not have one. Returns the parsed JSON
 * answer (caller decrefs), NULL for a 204. */
json_t *it_srv_expect(it_srv_t *s, const char *method, const char *target, const char *body,
                      int status);
/* The same with another Authorization header line (another tenant's or scope's token;
 * NULL: none). */
json_t *it_srv_expect_as(it_srv_t *s, const char *auth, const char *method, const char *target,
                         const char *body, int status);

/* The externalReferences a seeded person gets. */
#define IT_REF_EMPLOYEE 1u /* "@employee-number": "E-<id>" */
#define IT_REF_HRMID 2u    /* "HRMID": "H-<id>" */
/* Creates people 1..n with refs (IT_REF_* or 0); each PUT must answer 201. */
void it_seed_people(it_srv_t *s, int n, unsigned refs);
/* A break definition to seed: its id, durations in minutes and flags. */
typedef struct it_definition {
    int64_t id;
    int paid, minimum, maximum, if_not_clocked;
    bool uninterrupted;
    bool translated; /* the name has a Dutch translation ("Lunch-nl") */
} it_definition_t;
/* Creates break definition d->id, named Lunch with friendly name "Lunch break"; the PUT
 * must answer 201. */
void it_seed_definition(it_srv_t *s, const it_definition_t *d);

/* A changeVersion (20 upper-case hex digits) as a number; 0 when it is not one. */
uint64_t it_version_num(const char *s);

/* The member key of o as an integer / a string; fails the test when it is not one. */
int64_t it_jint(json_t *o, const char *key);
const char *it_jstr(json_t *o, const char *key);
/* The SPEC error body with status and code and, when fragments are given (a
 * NULL-terminated list of up to 8), one reason containing every fragment; without
 * fragments, at least one reason that is not empty. IT_EXPECT_ERROR adds the NULL. */
void it_expect_error(const it_response_t *r, int status, const char *code, ...);
#define IT_EXPECT_ERROR(r, status, code, ...) it_expect_error(r, status, code, __VA_ARGS__, NULL)
/* The lines of an NDJSON body, each parsed, as a JSON array (caller decrefs); fails
 * the test on a line that is not JSON. */
json_t *it_ndjson_lines(const char *body, size_t len);
/* An ISO 8601 date-time "YYYY-MM-DDTHH:MM:SS[.fff]+HH:MM" (the explicit numeric offset
 * every timestamp the API writes has) as Unix milliseconds; fails the test when t is
 * not one. */
int64_t it_iso_ms(const char *t);
/* The continuationToken value inside a nextLink (malloc'd); fails the test when there
 * is none. */
char *it_continuation_token(const char *link);

typedef struct it_webhook {
    char id[64];
    char url[128];
    char key[128]; /* whsec_... */
} it_webhook_t;

/* Creates a webhook on the breaks collection to url (201 required) and fills out.
 * ext_refs: the externalReferences query value (not encoded) or NULL. */
void it_webhook_create(it_srv_t *s, const char *url, const char *ext_refs, it_webhook_t *out);

#endif
