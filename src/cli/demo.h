/*
 * demo.h: the demo tenant `serve --demo` creates on first run, so a new user has
 * something to send requests to right away.
 */
#ifndef BREAKHOOK_CLI_DEMO_H
#define BREAKHOOK_CLI_DEMO_H

#include "store/store.h"

#define DEMO_TENANT "demo"

/* Creates the demo tenant (and API client) when missing and prints how to use them
 * on stdout. Blocks; call before the loop runs. */
BH_MUST_USE int demo_ensure(store_t *store, const char *const *listen, const char *host, int port);

#endif
