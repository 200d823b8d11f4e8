/*
 * client.c: `breakhook client create|list|revoke`: API clients of a tenant.
 *
 * The secret is printed once, at creation, and stored only as a salted PBKDF2
 * hash; nothing can show it again.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/config.h"
#include "store/store.h"

typedef struct client_opts {
    const char *store;
    const char *tenant;
    const char *name;
    const char *scopes;
    bool json;
} client_opts_t;

static const config_option_t client_options[] = {
    { "store", CONFIG_STRING, offsetof(client_opts_t, store), "URL",
      "store to use (default " CLI_DEFAULT_STORE ")", 0, 0 },
    { "tenant", CONFIG_STRING, offsetof(client_opts_t, tenant), "NAME", "the tenant (required)", 0,
      0 },
    { "name", CONFIG_STRING, offsetof(client_opts_t, name), "LABEL",
      "create: a label for people (required)", 0, 0 },
    { "scopes", CONFIG_STRING, offsetof(client_opts_t, scopes), "\"SCOPE ...\"",
      "create: the scopes the client may ask for, space or comma separated (required)", 0, 0 },
    { "json", CONFIG_BOOL, offsetof(client_opts_t, json), NULL, "print JSON lines", 0, 0 },
};
#define N_CLIENT_OPTIONS (sizeof(client_options) / sizeof(client_options[0]))

static void print_help(void)
{
    printf("usage: breakhook client create --tenant NAME --name LABEL --scopes \"...\" [--json]\n"
           "       breakhook client list --tenant NAME [--json]\n"
           "       breakhook client revoke --tenant NAME CLIENT_ID\n\n"
           "API clients get access tokens from POST /tenants/NAME/connect/token with their\n"
           "client_id and client_secret. The secret is shown once, at creation.\n"
           "A revoked client gets no new tokens, and its tokens stop working within the\n"
           "server's --revocation-refresh interval (default 5s).\n\nscopes:\n");
    for (size_t i = 0; auth_known_scopes[i]; i++)
        printf("  %s\n", auth_known_scopes[i]);
    printf("\noptions:\n");
    config_print_options(stdout, client_options, N_CLIENT_OPTIONS);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

static json_t *scopes_array(const char *scopes)
{
    json_t *a = json_array();
    const char *p = scopes;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        if (n)
            json_array_append_new(a, json_stringn(p, n));
        p += n + (sp ? 1 : 0);
    }
    return a;
}

static int do_create(store_t *s, const store_tenant_t *t, const client_opts_t *o)
{
    store_client_t c = { 0 };
    char secret[AUTH_SECRET_LEN + 1];
    const char *bad;
    size_t bad_len;
    if (!o->name || !*o->name || strlen(o->name) >= sizeof(c.name))
        return cli_fail(CLI_USAGE, "client create: --name LABEL is required (at most 127 bytes)");
    if (!o->scopes)
        return cli_fail(CLI_USAGE, "client create: --scopes is required (see --help)");
    int rc = auth_scopes_normalize(o->scopes, c.scopes, sizeof(c.scopes), &bad, &bad_len);
    if (rc == BH_EINVAL)
        return cli_fail(CLI_USAGE, "client create: unknown scope '%.*s' (see --help)",
                        (int)bad_len, bad);
    if (rc || !c.scopes[0])
        return cli_fail(CLI_USAGE, "client create: --scopes names no scope");
    snprintf(c.name, sizeof(c.name), "%s", o->name);
    if (auth_client_credentials_new(rand_system(), c.client_id, secret) ||
        auth_secret_hash(rand_system(), secret, AUTH_PBKDF2_ITER, c.secret_hash,
                         sizeof(c.secret_hash)))
        return cli_fail(CLI_FAIL, "client create: could not make credentials");
    c.created_at_ms = clock_now_ms(clock_system());
    rc = store_client_create(s, t->id, &c);
    if (rc)
        return cli_fail(CLI_FAIL, "client create: %s", err_str(rc));
    if (o->json) {
        print_json(json_pack("{s:s,s:s,s:s,s:o}", "tenant", t->name, "clientId", c.client_id,
                             "clientSecret", secret, "scopes", scopes_array(c.scopes)));
    } else {
        printf("tenant:        %s\nclient_id:     %s\nclient_secret: %s\nscopes:        %s\n\n"
               "The secret is shown only now: keep it somewhere safe.\n",
               t->name, c.client_id, secret, c.scopes);
    }
    return CLI_OK;
}

static int do_list(store_t *s, const store_tenant_t *t, const client_opts_t *o)
{
    store_client_t *cs = NULL;
    size_t n = 0;
    int rc = store_client_list(s, t->id, &cs, &n);
    if (rc)
        return cli_fail(CLI_FAIL, "client list: %s", err_str(rc));
    for (size_t i = 0; i < n; i++) {
        char created[32], revoked[32] = "";
        clock_format_rfc3339(cs[i].created_at_ms, created);
        if (cs[i].revoked_at_ms)
            clock_format_rfc3339(cs[i].revoked_at_ms, revoked);
        if (o->json) {
            json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:s}", "tenant", t->name, "clientId",
                                  cs[i].client_id, "name", cs[i].name, "scopes",
                                  scopes_array(cs[i].scopes), "createdAt", created);
            if (j && cs[i].revoked_at_ms)
                json_object_set_new(j, "revokedAt", json_string(revoked));
            print_json(j);
        } else {
            printf("%-26s %-24s %s%s%s\n", cs[i].client_id, created,
                   cs[i].revoked_at_ms ? "revoked " : "", revoked, "");
            printf("    name: %s\n    scopes: %s\n", cs[i].name, cs[i].scopes);
        }
    }
    free(cs);
    return CLI_OK;
}

int cli_client(int argc, char **argv)
{
    client_opts_t o = { .store = CLI_DEFAULT_STORE };
    const char *pos[2];
    size_t n_pos;
    bool help;
    char err[256];
    if (config_parse(client_options, N_CLIENT_OPTIONS, &o, argc, argv, cli_getenv, pos, 2,
                     &n_pos, &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "client: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    const char *verb = n_pos ? pos[0] : "";
    bool create = !strcmp(verb, "create") && n_pos == 1;
    bool list = !strcmp(verb, "list") && n_pos == 1;
    bool revoke = !strcmp(verb, "revoke") && n_pos == 2;
    if (!create && !list && !revoke)
        return cli_fail(CLI_USAGE, "client: expected 'create', 'list' or 'revoke CLIENT_ID' (see --help)");
    if (!o.tenant)
        return cli_fail(CLI_USAGE, "client %s: --tenant NAME is required", verb);

    store_t *s;
    int rc = cli_store_open("client", o.store, 0, NULL, &s);
    if (rc)
        return rc;
    store_tenant_t t;
    int code;
    rc = store_tenant_get(s, o.tenant, &t);
    if (rc == BH_ENOTFOUND || rc == BH_EINVAL) {
        code = cli_fail(CLI_FAIL, "client %s: no tenant '%s'", verb, o.tenant);
    } else if (rc) {
        code = cli_fail(CLI_FAIL, "client %s: %s", verb, err_str(rc));
    } else if (create) {
        code = do_create(s, &t, &o);
    } else if (list) {
        code = do_list(s, &t, &o);
    } else {
        rc = store_client_revoke(s, t.id, pos[1], clock_now_ms(clock_system()));
        if (rc == BH_ENOTFOUND)
            code = cli_fail(CLI_FAIL, "client revoke: no client '%s' in tenant '%s'", pos[1],
                            o.tenant);
        else if (rc)
            code = cli_fail(CLI_FAIL, "client revoke: %s", err_str(rc));
        else {
            printf("revoked %s\n", pos[1]);
            code = CLI_OK;
        }
    }
    store_close(s);
    return code;
}
