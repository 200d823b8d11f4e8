#include <stdio.h>

#include "cli/demo.h"
#include "core/log.h"

int demo_ensure(store_t *store, const char *const *listen, const char *host, int port)
{
    store_tenant_t t;
    (void)listen;
    int rc = store_tenant_get(store, DEMO_TENANT, &t);
    if (rc == 0)
        return 0;
    if (rc != BH_ENOTFOUND)
        return rc;
    rc = store_tenant_create(store, DEMO_TENANT, &t);
    if (rc)
        return rc;
    printf("\nCreated the demo tenant '%s'. Try:\n\n"
           "  curl -s http://%s:%d/healthz\n\n", DEMO_TENANT, host, port);
    fflush(stdout);
    return 0;
}
