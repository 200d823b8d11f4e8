/*
 * cli.h: the commands of the breakhook binary. Each takes the arguments after its
 * name and returns the process exit code: 0 success, 1 runtime failure, 2 bad usage
 * (SPEC §9), after printing a one-line reason on stderr.
 */
#ifndef BREAKHOOK_CLI_CLI_H
#define BREAKHOOK_CLI_CLI_H

#include <stdio.h>

#include "core/crypto.h"
#include "store/store.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_DEFAULT_STORE "sqlite:var/breakhook.db"

int cli_serve(int argc, char **argv);
int cli_tenant(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_key(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_sink(int argc, char **argv);
int cli_verify(int argc, char **argv);

/* Prints "breakhook: <msg>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getenv with the signature config_parse wants. */
const char *cli_getenv(const char *name);
/* Opens the store at url for the command cmd. The master key comes from the
 * environment only (a flag would show in ps): BREAKHOOK_MASTER_KEY seals the token
 * signing keys; with another master key than theirs the store does not open. master
 * (NULL: not wanted) receives the parsed key. disk_reserve: bytes of disk reserve
 * (store_options_t; serve's --disk-reserve, 0 for short-lived commands). CLI_OK, or
 * the exit code after saying why on stderr. */
int cli_store_open(const char *cmd, const char *url, int64_t disk_reserve, crypto_master_t *master,
                   store_t **out);
/* The reason a signing key function failed: rc BH_EINVAL means the keys are sealed
 * and BREAKHOOK_MASTER_KEY is not set. */
const char *cli_keys_error(int rc);

#endif
