#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/demo.h"

/* Every known scope, space separated (out holds them all: 1024 bytes is plenty). */
static void every_scope(char *out, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; auth_known_scopes[i] && off < n; i++)
        off += (size_t)snprintf(out + off, n - off, "%s%s", i ? " " : "", auth_known_scopes[i]);
}

int demo_ensure(store_t *store, demo_t *out)
{
    store_tenant_t t;
    memset(out, 0, sizeof(*out));
    int rc = store_tenant_get(store, DEMO_TENANT, &t);
    if (rc == 0) {
        store_client_t *cs = NULL;
        size_t n = 0;
        rc = store_client_list(store, t.id, &cs, &n);
        for (size_t i = 0; i < n && !rc; i++) {
            if (!cs[i].revoked_at_ms && !strcmp(cs[i].name, DEMO_CLIENT_NAME)) {
                snprintf(out->client_id, sizeof(out->client_id), "%s", cs[i].client_id);
                break;
            }
        }
        free(cs);
        return rc;
    }
    if (rc != BH_ENOTFOUND)
        return rc;
    rc = store_tenant_create(store, DEMO_TENANT, &t);
    if (rc)
        return rc;
    store_client_t c = { 0 };
    every_scope(c.scopes, sizeof(c.scopes));
    snprintf(c.name, sizeof(c.name), "%s", DEMO_CLIENT_NAME);
    rc = auth_client_credentials_new(rand_system(), c.client_id, out->secret);
    rc = rc ? rc
            : auth_secret_hash(rand_system(), out->secret, AUTH_PBKDF2_ITER, c.secret_hash,
                               sizeof(c.secret_hash));
    c.created_at_ms = clock_now_ms(clock_system());
    rc = rc ? rc : store_client_create(store, t.id, &c);
    if (rc)
        return rc;
    out->created = true;
    snprintf(out->client_id, sizeof(out->client_id), "%s", c.client_id);
    snprintf(out->scopes, sizeof(out->scopes), "%s", c.scopes);
    return 0;
}

/* The running binary as the user can type it: relative to the working directory
 * when it lies under it ("build/release/breakhook"), else absolute; "breakhook"
 * when /proc is not there. */
static void self_path(char *out, size_t n)
{
    char exe[PATH_MAX], cwd[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0) {
        snprintf(out, n, "breakhook");
        return;
    }
    exe[len] = '\0';
    size_t c = getcwd(cwd, sizeof(cwd)) ? strlen(cwd) : 0;
    if (c > 1 && strncmp(exe, cwd, c) == 0 && exe[c] == '/')
        snprintf(out, n, "%s", exe + c + 1);
    else
        snprintf(out, n, "%s", exe);
}

void demo_print(const demo_t *d, const char *host, int port, const char *domain,
                const char *store)
{
    char base[300];
    if (domain)
        snprintf(base, sizeof(base), "http://%s.%s:%d", DEMO_TENANT, domain, port);
    else
        snprintf(base, sizeof(base), "http://%s:%d", host, port);
    printf("\nbreakhook is listening on %s\n\n", base);
    if (d->created) {
        printf("Created the demo tenant '%s' and an API client with every scope:\n\n"
               "  client_id:     %s\n  client_secret: %s   (shown only now)\n\n",
               DEMO_TENANT, d->client_id, d->secret);
    } else {
        char self[PATH_MAX], scopes[1024];
        self_path(self, sizeof(self));
        every_scope(scopes, sizeof(scopes));
        bool other_store = store && strcmp(store, CLI_DEFAULT_STORE) != 0;
        printf("The demo tenant '%s' exists; its client %s got its secret on the first run.\n"
               "For new credentials with every scope:\n\n"
               "  %s client create --tenant %s --name me%s%s \\\n"
               "      --scopes \"%s\"\n\n",
               DEMO_TENANT, d->client_id[0] ? d->client_id : "(none)", self, DEMO_TENANT,
               other_store ? " --store " : "", other_store ? store : "", scopes);
    }
    printf("Try:\n\n"
           "  curl -s %s/healthz\n\n"
           "  TOKEN=$(curl -s -A demo -u '%s:%s' -d grant_type=client_credentials \\\n"
           "      %s/tenants/%s/connect/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n\n"
           "  curl -s -A demo -H \"Authorization: Bearer $TOKEN\" "
           "%s/connector/protimeapi/api/v1/token-info\n\n",
           base, d->client_id[0] ? d->client_id : "CLIENT_ID", d->created ? d->secret : "CLIENT_SECRET",
           base, DEMO_TENANT, base);
    fflush(stdout);
}
