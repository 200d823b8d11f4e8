/*
 * tenant.c: `breakhook tenant create NAME` and `breakhook tenant list`.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "store/store.h"

typedef struct tenant_opts {
    const char *store;
    bool json;
} tenant_opts_t;

static const config_option_t tenant_options[] = {
    { "store", CONFIG_STRING, offsetof(tenant_opts_t, store), "URL",
      "store to use (default " CLI_DEFAULT_STORE ")", 0, 0 },
    { "json", CONFIG_BOOL, offsetof(tenant_opts_t, json), NULL, "print JSON lines", 0, 0 },
};
#define N_TENANT_OPTIONS (sizeof(tenant_options) / sizeof(tenant_options[0]))

static void print_help(void)
{
    printf("usage: breakhook tenant create NAME [--json] [--store URL]\n"
           "       breakhook tenant list [--json] [--store URL]\n\n"
           "Tenants are isolated spaces: nothing of one is visible to another.\n"
           "A name is 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit.\n\n"
           "options:\n");
    config_print_options(stdout, tenant_options, N_TENANT_OPTIONS);
}

int cli_tenant(int argc, char **argv)
{
    tenant_opts_t o = { .store = CLI_DEFAULT_STORE };
    const char *pos[2];
    size_t n_pos;
    bool help;
    char err[256];
    if (config_parse(tenant_options, N_TENANT_OPTIONS, &o, argc, argv, cli_getenv, pos, 2,
                     &n_pos, &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "tenant: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    bool create = n_pos == 2 && !strcmp(pos[0], "create");
    bool list = n_pos == 1 && !strcmp(pos[0], "list");
    if (!create && !list)
        return cli_fail(CLI_USAGE, "tenant: expected 'create NAME' or 'list' (see --help)");

    store_t *s;
    int rc = cli_store_open("tenant", o.store, 0, NULL, &s);
    if (rc)
        return rc;
    int code = CLI_OK;
    if (create) {
        store_tenant_t t;
        rc = store_tenant_create(s, pos[1], &t);
        if (rc == BH_EINVAL)
            code = cli_fail(CLI_USAGE, "tenant: invalid name '%s' (a-z, 0-9 and '-', at most 63)",
                            pos[1]);
        else if (rc == BH_EEXIST)
            code = cli_fail(CLI_FAIL, "tenant: '%s' already exists", pos[1]);
        else if (rc)
            code = cli_fail(CLI_FAIL, "tenant: %s", err_str(rc));
        else if (o.json) {
            char when[32];
            clock_format_rfc3339(t.created_at_ms, when);
            printf("{\"tenant\":\"%s\",\"createdAt\":\"%s\"}\n", t.name, when);
        } else
            printf("created tenant %s\n", t.name);
    } else {
        store_tenant_t *ts = NULL;
        size_t n = 0;
        rc = store_tenant_list(s, &ts, &n);
        if (rc) {
            code = cli_fail(CLI_FAIL, "tenant: %s", err_str(rc));
        } else {
            for (size_t i = 0; i < n; i++) {
                char when[32];
                clock_format_rfc3339(ts[i].created_at_ms, when);
                if (o.json)
                    printf("{\"tenant\":\"%s\",\"createdAt\":\"%s\"}\n", ts[i].name, when);
                else
                    printf("%-40s %s\n", ts[i].name, when);
            }
        }
        free(ts);
    }
    store_close(s);
    return code;
}
