/*
 * cli.h: the commands of the breakhook binary. Each takes the arguments after its
 * name and returns the process exit code: 0 success, 1 runtime failure, 2 bad usage
 * (SPEC §9), after printing a one-line reason on stderr.
 */
#ifndef BREAKHOOK_CLI_CLI_H
#define BREAKHOOK_CLI_CLI_H

#include <stdio.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_DEFAULT_STORE "sqlite:var/breakhook.db"

int cli_serve(int argc, char **argv);
int cli_tenant(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_key(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_sink(int argc, char **argv);
int cli_verify(int argc, char **argv);

/* Prints "breakhook: <msg>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getenv with the signature config_parse wants. */
const char *cli_getenv(const char *name);

#endif
