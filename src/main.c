/*
 * main.c: wiring only. Picks the command and hands it the rest of the arguments.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "serve", cli_serve, "run the API server and the delivery engine" },
    { "tenant", cli_tenant, "create and list tenants" },
    { "client", cli_client, "create, list and revoke API clients of a tenant" },
    { "import", cli_import, "load people, break definitions or breaks from NDJSON or CSV" },
    { "migrate", cli_migrate, "copy a whole store into an empty one (SQLite to PostgreSQL)" },
    { "key", cli_key, "rotate the access-token signing key" },
    { "sink", cli_sink, "a reference webhook consumer: verify, de-duplicate, record" },
    { "verify", cli_verify, "verify the signature of one captured delivery" },
    { "version", cli_version, "print the version" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: breakhook COMMAND [OPTIONS]\n\n"
               "breakhook serves the Protime API's webhooks for work breaks.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'breakhook COMMAND --help' describes a command and its options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_fail(CLI_USAGE, "missing command (try 'breakhook --help')");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version"))
        return cli_version(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    return cli_fail(CLI_USAGE, "unknown command '%s' (try 'breakhook --help')", argv[1]);
}
