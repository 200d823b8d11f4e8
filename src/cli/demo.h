/*
 * demo.h: the demo tenant and API client `serve --demo` creates on first run, so a
 * new user has something to send requests to right away.
 */
#ifndef BREAKHOOK_CLI_DEMO_H
#define BREAKHOOK_CLI_DEMO_H

#include <stdbool.h>

#include "auth/auth.h"
#include "store/store.h"

#define DEMO_TENANT "demo"
#define DEMO_CLIENT_NAME "demo client"

typedef struct demo {
    bool created;                     /* made by this run: the secret is known */
    char client_id[64];
    char secret[AUTH_SECRET_LEN + 1];
    char scopes[1024];
} demo_t;

/* Creates the demo tenant and a client with every scope when the tenant is missing.
 * Blocks; call before the loop runs. */
BH_MUST_USE int demo_ensure(store_t *store, demo_t *out);
/* Prints the credentials (once) and copy-paste curl lines on stdout. store: the
 * --store the server runs on, repeated in the printed CLI hint unless it is the
 * default. */
void demo_print(const demo_t *d, const char *host, int port, const char *domain,
                const char *store);

#endif
