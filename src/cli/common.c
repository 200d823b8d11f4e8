#include <stdarg.h>
#include <stdlib.h>

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
