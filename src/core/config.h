/*
 * config.h: options from the command line and the environment, described by a table.
 *
 * Each option `--some-name` may also come from the environment as
 * `BREAKHOOK_SOME_NAME`; a flag beats the environment, which beats the default
 * already in the target struct. The same table prints --help, so the help text
 * and the parser never disagree.
 */
#ifndef BREAKHOOK_CORE_CONFIG_H
#define BREAKHOOK_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

#define CONFIG_LIST_MAX 32

typedef enum {
    CONFIG_STRING,        /* const char *            */
    CONFIG_INT,           /* int64_t, within [min, max] */
    CONFIG_DURATION,      /* int64_t milliseconds, within [min, max] */
    CONFIG_BOOL,          /* bool; a flag takes no value, the env takes 1/0/true/false */
    CONFIG_STRING_LIST,   /* config_list_t; repeatable flag, comma-separated in env */
    CONFIG_DURATION_LIST, /* config_durations_t; "5s,30s,2m" */
} config_type_t;

typedef struct config_list {
    const char *items[CONFIG_LIST_MAX];
    size_t n;
} config_list_t;

typedef struct config_durations {
    int64_t ms[CONFIG_LIST_MAX];
    size_t n;
} config_durations_t;

typedef struct config_option {
    const char *name;     /* without the leading dashes: "listen" */
    config_type_t type;
    size_t offset;        /* offsetof() into the target struct */
    const char *metavar;  /* "ADDR:PORT" in the help */
    const char *help;
    int64_t min, max;     /* for CONFIG_INT and CONFIG_DURATION; both 0: unbounded */
} config_option_t;

/* Parses argv[0..argc) (without the program and command names) and then fills what
 * flags left unset from the environment (getenv_fn, usually getenv). Positional
 * arguments are returned in pos (up to max_pos, BH_EINVAL past it). "--help"/"-h" set
 * *help. On error, err receives a one-line reason naming the option. String values
 * point into argv or the environment. */
BH_MUST_USE int config_parse(const config_option_t *opts, size_t n_opts, void *target, int argc,
                             char **argv, const char *(*getenv_fn)(const char *),
                             const char **pos, size_t max_pos, size_t *n_pos, bool *help,
                             char *err, size_t err_len);

/* Prints the options, their environment variables and help text. */
void config_print_options(FILE *f, const config_option_t *opts, size_t n_opts);

/* "listen" -> "BREAKHOOK_LISTEN" into out. */
void config_env_name(const char *name, char *out, size_t n);

#endif
