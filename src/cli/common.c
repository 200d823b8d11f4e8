#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("breakhook: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

const char *cli_getenv(const char *name)
{
    return getenv(name);
}

int cli_store_open(const char *cmd, const char *url, int64_t disk_reserve, crypto_master_t *master,
                   store_t **out)
{
    crypto_master_t m;
    if (crypto_master_parse(getenv("BREAKHOOK_MASTER_KEY"), &m))
        return cli_fail(CLI_USAGE,
                        "%s: BREAKHOOK_MASTER_KEY must be 64 hex digits or base64 of 32 bytes", cmd);
    /* serve marks the store as served, so that `migrate` refuses to copy it. */
    store_options_t sopt = { .master = &m, .disk_reserve = disk_reserve,
                             .serving = strcmp(cmd, "serve") == 0 };
    const char *msg = NULL;
    int rc = store_open(url, &sopt, out, &msg);
    if (master)
        *master = m;
    explicit_bzero(&m, sizeof(m));
    if (rc)
        return cli_fail(rc == BH_EINVAL ? CLI_USAGE : CLI_FAIL, "%s: --store %s: %s", cmd, url,
                        msg ? msg : err_str(rc));
    return CLI_OK;
}

const char *cli_keys_error(int rc)
{
    return rc == BH_EINVAL ? "the token signing keys are sealed: set BREAKHOOK_MASTER_KEY"
                           : err_str(rc);
}

int cli_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 0 && argv[0][0] == '-') {
        printf("usage: breakhook version\n\nPrints the version of breakhook.\n");
        return CLI_OK;
    }
    printf("breakhook %s\n", BREAKHOOK_VERSION);
    return CLI_OK;
}
