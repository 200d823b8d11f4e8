/*
 * test_config.c: options from flags and the environment, described by a table.
 *
 * The environment is a fake getenv over a per-test table, so the tests never
 * depend on (or change) the real process environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"

#define SEC 1000LL
#define MIN (60 * SEC)

typedef struct cfg {
    const char *listen;
    int64_t port;
    int64_t count;
    int64_t timeout_ms;
    bool verbose;
    bool color;
    config_list_t allow;
    config_durations_t retry;
} cfg_t;

static const config_option_t options[] = {
    { "listen", CONFIG_STRING, offsetof(cfg_t, listen), "ADDR:PORT", "address to listen on", 0,
      0 },
    { "port", CONFIG_INT, offsetof(cfg_t, port), "PORT", "port to use", 1, 65535 },
    { "count", CONFIG_INT, offsetof(cfg_t, count), "N", "how many, unbounded", 0, 0 },
    { "timeout", CONFIG_DURATION, offsetof(cfg_t, timeout_ms), "DURATION", "request timeout",
      100, 60 * MIN },
    { "verbose", CONFIG_BOOL, offsetof(cfg_t, verbose), NULL, "talk more", 0, 0 },
    { "color", CONFIG_BOOL, offsetof(cfg_t, color), NULL, "colored output", 0, 0 },
    { "allow-destination", CONFIG_STRING_LIST, offsetof(cfg_t, allow), "CIDR",
      "destinations allowed despite the rules", 0, 0 },
    { "retry-schedule", CONFIG_DURATION_LIST, offsetof(cfg_t, retry), "LIST", "retry delays",
      SEC, 24 * 60 * MIN },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Values split from the environment are copied once and kept for the life of the
 * process (config.c says so); LeakSanitizer would report those copies, so they are
 * suppressed by name. Only an ASan build reads this. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:set_value\n";
}

/* ---- the fake environment ---------------------------------------------- */

#define ENV_MAX 16
static const char *env_names[ENV_MAX];
static const char *env_values[ENV_MAX];
static size_t env_n;
static char env_asked[64][96];
static size_t env_n_asked;

static void env_clear(void)
{
    env_n = 0;
}

static void env_set(const char *name, const char *value)
{
    assert_true(env_n < ENV_MAX);
    env_names[env_n] = name;
    env_values[env_n] = value;
    env_n++;
}

static const char *fake_getenv(const char *name)
{
    if (env_n_asked < sizeof(env_asked) / sizeof(env_asked[0]))
        snprintf(env_asked[env_n_asked++], sizeof(env_asked[0]), "%s", name);
    for (size_t i = 0; i < env_n; i++)
        if (strcmp(env_names[i], name) == 0)
            return env_values[i];
    return NULL;
}

static bool env_was_asked(const char *name)
{
    for (size_t i = 0; i < env_n_asked; i++)
        if (strcmp(env_asked[i], name) == 0)
            return true;
    return false;
}

static void env_forget_asked(void)
{
    env_n_asked = 0;
}

/* ---- a parse run --------------------------------------------------------- */

typedef struct run {
    cfg_t cfg;
    const char *pos[4];
    size_t n_pos;
    bool help;
    char err[256];
    int rc;
} run_t;

static void cfg_defaults(cfg_t *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:8080";
    c->port = 8080;
    c->count = 3;
    c->timeout_ms = 10 * SEC;
    c->verbose = false;
    c->color = true;
}

static int setup(void **state)
{
    run_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    env_clear();
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    env_forget_asked();
    env_clear();
    free(*state);
    return 0;
}

/* Parses args (a NULL-terminated list) into a fresh default configuration, allowing
 * max_pos positionals. */
static int parse_pos(run_t *r, size_t max_pos, const char *const *args)
{
    char *argv[128];
    int argc = 0;
    while (args[argc]) {
        assert_true(argc < 127);
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    cfg_defaults(&r->cfg);
    r->n_pos = 99;
    r->help = true; /* must be cleared by the parser */
    memset(r->err, 0, sizeof(r->err));
    env_forget_asked();
    r->rc = config_parse(options, N_OPTIONS, &r->cfg, argc, argv, fake_getenv, r->pos, max_pos,
                         &r->n_pos, &r->help, r->err, sizeof(r->err));
    return r->rc;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ARGS ((const char *const[]){ NULL })
#define parse(r, ...) parse_pos((r), 0, ARGS(__VA_ARGS__))

/* The error must name what was wrong, so an operator can fix the right option. */
static void assert_err_names(const run_t *r, const char *what)
{
    if (!strstr(r->err, what))
        fail_msg("error message \"%s\" does not mention \"%s\"", r->err, what);
    assert_null(strchr(r->err, '\n'));
}

/* ---- tests ---------------------------------------------------------------- */

static void test_defaults_kept(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_string_equal(r->cfg.listen, "127.0.0.1:8080");
    assert_int_equal(r->cfg.port, 8080);
    assert_int_equal(r->cfg.count, 3);
    assert_int_equal(r->cfg.timeout_ms, 10 * SEC);
    assert_false(r->cfg.verbose);
    assert_true(r->cfg.color);
    assert_int_equal(r->cfg.allow.n, 0);
    assert_int_equal(r->cfg.retry.n, 0);
    assert_int_equal(r->n_pos, 0);
    assert_false(r->help);
    /* Every option was looked up under its environment name. */
    assert_true(env_was_asked("BREAKHOOK_LISTEN"));
    assert_true(env_was_asked("BREAKHOOK_PORT"));
    assert_true(env_was_asked("BREAKHOOK_TIMEOUT"));
    assert_true(env_was_asked("BREAKHOOK_VERBOSE"));
    assert_true(env_was_asked("BREAKHOOK_ALLOW_DESTINATION"));
    assert_true(env_was_asked("BREAKHOOK_RETRY_SCHEDULE"));
}

static void test_equals_and_separate_value(void **state)
{
    run_t *r = *state;
    const char *const args[] = { "--listen=0.0.0.0:9", "--port", "443", "--count=-7",
                                 "--timeout",          "2m",     "--retry-schedule=5s,30s,2m",
                                 NULL };
    assert_int_equal(parse_pos(r, 0, args), 0);
    assert_string_equal(r->cfg.listen, "0.0.0.0:9");
    assert_ptr_equal(r->cfg.listen, args[0] + strlen("--listen=")); /* points into argv */
    assert_int_equal(r->cfg.port, 443);
    assert_int_equal(r->cfg.count, -7);
    assert_int_equal(r->cfg.timeout_ms, 2 * MIN);
    assert_int_equal(r->cfg.retry.n, 3);
    assert_int_equal(r->cfg.retry.ms[0], 5 * SEC);
    assert_int_equal(r->cfg.retry.ms[1], 30 * SEC);
    assert_int_equal(r->cfg.retry.ms[2], 2 * MIN);

    const char *const args2[] = { "--listen", "[::1]:80", "--port=444", "--timeout=500ms",
                                  "--retry-schedule", "1m", NULL };
    assert_int_equal(parse_pos(r, 0, args2), 0);
    assert_ptr_equal(r->cfg.listen, args2[1]);
    assert_int_equal(r->cfg.port, 444);
    assert_int_equal(r->cfg.timeout_ms, 500);
    assert_int_equal(r->cfg.retry.n, 1);
    assert_int_equal(r->cfg.retry.ms[0], MIN);
}

static void test_value_with_equals_and_dashes(void **state)
{
    run_t *r = *state;
    /* Only the first '=' separates; a separate value may start with '-'. */
    assert_int_equal(parse(r, "--listen=a=b", "--count", "-3"), 0);
    assert_string_equal(r->cfg.listen, "a=b");
    assert_int_equal(r->cfg.count, -3);
    assert_int_equal(parse(r, "--listen="), 0);
    assert_string_equal(r->cfg.listen, "");
}

static void test_last_flag_wins(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--port=1", "--port=2", "--port", "3"), 0);
    assert_int_equal(r->cfg.port, 3);
}

static void test_flag_beats_env_beats_default(void **state)
{
    run_t *r = *state;
    env_set("BREAKHOOK_PORT", "9000");
    env_set("BREAKHOOK_LISTEN", "10.0.0.1:1");
    env_set("BREAKHOOK_TIMEOUT", "30s");
    env_set("BREAKHOOK_VERBOSE", "true");
    env_set("BREAKHOOK_COLOR", "0");

    /* Env over defaults. */
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_int_equal(r->cfg.port, 9000);
    assert_string_equal(r->cfg.listen, "10.0.0.1:1");
    assert_int_equal(r->cfg.timeout_ms, 30 * SEC);
    assert_true(r->cfg.verbose);
    assert_false(r->cfg.color);
    assert_int_equal(r->cfg.count, 3); /* no env: the default */

    /* Flags over env. */
    assert_int_equal(parse(r, "--port=7000", "--listen", "x:2", "--timeout=1s", "--color"), 0);
    assert_int_equal(r->cfg.port, 7000);
    assert_string_equal(r->cfg.listen, "x:2");
    assert_int_equal(r->cfg.timeout_ms, SEC);
    assert_true(r->cfg.color);
    assert_true(r->cfg.verbose); /* not flagged: still from env */

    assert_int_equal(parse(r, "--verbose=false"), 0);
    assert_false(r->cfg.verbose);
}

static void test_flag_beats_bad_env(void **state)
{
    run_t *r = *state;
    /* The environment is not consulted for an option set by a flag, so a broken
     * variable cannot fail a command line that overrides it. */
    env_set("BREAKHOOK_PORT", "not-a-number");
    assert_int_equal(parse(r, "--port=5"), 0);
    assert_int_equal(r->cfg.port, 5);
    assert_int_equal(parse_pos(r, 0, NO_ARGS), BH_EINVAL);
    assert_err_names(r, "BREAKHOOK_PORT");
}

static void test_empty_env_ignored(void **state)
{
    run_t *r = *state;
    env_set("BREAKHOOK_PORT", "");
    env_set("BREAKHOOK_LISTEN", "");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_int_equal(r->cfg.port, 8080);
    assert_string_equal(r->cfg.listen, "127.0.0.1:8080");
}

static void test_bool_flags(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--verbose"), 0);
    assert_true(r->cfg.verbose);
    static const struct {
        const char *arg;
        bool want;
    } cases[] = {
        { "--verbose=true", true },  { "--verbose=1", true },  { "--verbose=yes", true },
        { "--verbose=false", false }, { "--verbose=0", false }, { "--verbose=no", false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(r, cases[i].arg), 0);
        if (r->cfg.verbose != cases[i].want)
            fail_msg("%s gave %d", cases[i].arg, r->cfg.verbose);
    }
    assert_int_equal(parse(r, "--color=false", "--verbose"), 0);
    assert_false(r->cfg.color);
    assert_true(r->cfg.verbose);

    assert_int_equal(parse(r, "--verbose=maybe"), BH_EINVAL);
    assert_err_names(r, "--verbose");
    assert_err_names(r, "maybe");
}

static void test_bool_flag_takes_no_value(void **state)
{
    run_t *r = *state;
    /* A bool flag never swallows the next argument: it stays a positional. */
    assert_int_equal(parse_pos(r, 2, ARGS("--verbose", "false")), 0);
    assert_true(r->cfg.verbose);
    assert_int_equal(r->n_pos, 1);
    assert_string_equal(r->pos[0], "false");
}

static void test_bool_env(void **state)
{
    run_t *r = *state;
    static const struct {
        const char *value;
        bool want;
    } cases[] = { { "1", true }, { "true", true }, { "0", false }, { "false", false } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        env_clear();
        env_set("BREAKHOOK_VERBOSE", cases[i].value);
        env_set("BREAKHOOK_COLOR", cases[i].value);
        assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
        assert_true(r->cfg.verbose == cases[i].want);
        assert_true(r->cfg.color == cases[i].want);
    }
    env_clear();
    env_set("BREAKHOOK_VERBOSE", "sometimes");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), BH_EINVAL);
    assert_err_names(r, "BREAKHOOK_VERBOSE");
}

static void test_repeated_list_flags(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--allow-destination", "10.0.0.0/8", "--port=1",
                           "--allow-destination=192.168.0.0/16", "--allow-destination",
                           "a,b"),
                     0);
    assert_int_equal(r->cfg.allow.n, 3);
    assert_string_equal(r->cfg.allow.items[0], "10.0.0.0/8");
    assert_string_equal(r->cfg.allow.items[1], "192.168.0.0/16");
    /* A flag value is one item, commas and all. */
    assert_string_equal(r->cfg.allow.items[2], "a,b");
}

static void test_list_flag_beats_env(void **state)
{
    run_t *r = *state;
    env_set("BREAKHOOK_ALLOW_DESTINATION", "1.1.1.1/32,2.2.2.2/32");
    env_set("BREAKHOOK_RETRY_SCHEDULE", "1s,2s");
    assert_int_equal(parse(r, "--allow-destination=3.3.3.3/32", "--retry-schedule=9s"), 0);
    assert_int_equal(r->cfg.allow.n, 1);
    assert_string_equal(r->cfg.allow.items[0], "3.3.3.3/32");
    assert_int_equal(r->cfg.retry.n, 1);
    assert_int_equal(r->cfg.retry.ms[0], 9 * SEC);
}

static void test_list_flag_replaces_default(void **state)
{
    run_t *r = *state;
    const char *const args[] = { "--allow-destination=3.3.3.3/32", NULL };
    char *argv[] = { (char *)args[0], NULL };
    cfg_defaults(&r->cfg);
    r->cfg.allow.items[0] = "default-item";
    r->cfg.allow.n = 1;
    r->rc = config_parse(options, N_OPTIONS, &r->cfg, 1, argv, fake_getenv, r->pos, 0,
                         &r->n_pos, &r->help, r->err, sizeof(r->err));
    assert_int_equal(r->rc, 0);
    assert_true(r->cfg.allow.n >= 1);
    /* Regression (fixed): a string-list flag appends to the default already in the target instead of
     * replacing it (config.h: "a flag beats ... the default"). Input: default items
     * {"default-item"}, argv {"--allow-destination=3.3.3.3/32"}. Expected n == 1,
     * items[0] == "3.3.3.3/32"; actual n == 2, items == {"default-item", "3.3.3.3/32"}.
     * (The environment path does replace: it sets n = 0 first.) */
    assert_int_equal(r->cfg.allow.n, 1);
    assert_string_equal(r->cfg.allow.items[0], "3.3.3.3/32");

    /* The environment does replace the default. */
    env_set("BREAKHOOK_ALLOW_DESTINATION", "e1,e2");
    cfg_defaults(&r->cfg);
    r->cfg.allow.items[0] = "default-item";
    r->cfg.allow.n = 1;
    r->rc = config_parse(options, N_OPTIONS, &r->cfg, 0, argv, fake_getenv, r->pos, 0,
                         &r->n_pos, &r->help, r->err, sizeof(r->err));
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->cfg.allow.n, 2);
    assert_string_equal(r->cfg.allow.items[0], "e1");
    assert_string_equal(r->cfg.allow.items[1], "e2");
}

static void test_too_many_list_flags(void **state)
{
    run_t *r = *state;
    const char *args[2 * (CONFIG_LIST_MAX + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < CONFIG_LIST_MAX; i++) {
        args[n++] = "--allow-destination";
        args[n++] = "x";
    }
    args[n] = NULL;
    assert_int_equal(parse_pos(r, 0, args), 0);
    assert_int_equal(r->cfg.allow.n, CONFIG_LIST_MAX);
    args[n++] = "--allow-destination";
    args[n++] = "one-too-many";
    args[n] = NULL;
    assert_int_equal(parse_pos(r, 0, args), BH_ETOOBIG);
    assert_err_names(r, "--allow-destination");
}

static void test_env_list_split_on_commas(void **state)
{
    run_t *r = *state;
    env_set("BREAKHOOK_ALLOW_DESTINATION", "10.0.0.0/8,192.168.0.0/16,fd00::/8");
    env_set("BREAKHOOK_RETRY_SCHEDULE", "5s,30s,2m");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_int_equal(r->cfg.allow.n, 3);
    assert_string_equal(r->cfg.allow.items[0], "10.0.0.0/8");
    assert_string_equal(r->cfg.allow.items[1], "192.168.0.0/16");
    assert_string_equal(r->cfg.allow.items[2], "fd00::/8");
    assert_int_equal(r->cfg.retry.n, 3);
    assert_int_equal(r->cfg.retry.ms[0], 5 * SEC);
    assert_int_equal(r->cfg.retry.ms[1], 30 * SEC);
    assert_int_equal(r->cfg.retry.ms[2], 2 * MIN);

    env_clear();
    env_set("BREAKHOOK_ALLOW_DESTINATION", "single");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_int_equal(r->cfg.allow.n, 1);
    assert_string_equal(r->cfg.allow.items[0], "single");
}

static void test_env_list_too_many(void **state)
{
    run_t *r = *state;
    char value[4 * (CONFIG_LIST_MAX + 1)];
    size_t o = 0;
    for (int i = 0; i < CONFIG_LIST_MAX; i++)
        o += (size_t)snprintf(value + o, sizeof(value) - o, "%s%c", i ? "," : "", 'a' + i % 26);
    env_set("BREAKHOOK_ALLOW_DESTINATION", value);
    assert_int_equal(parse_pos(r, 0, NO_ARGS), 0);
    assert_int_equal(r->cfg.allow.n, CONFIG_LIST_MAX);
    const char *last = r->cfg.allow.items[CONFIG_LIST_MAX - 1];
    assert_int_equal(strlen(last), 1);
    assert_int_equal(last[0], 'a' + (CONFIG_LIST_MAX - 1) % 26);
    snprintf(value + o, sizeof(value) - o, ",z");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), BH_ETOOBIG);
    assert_err_names(r, "BREAKHOOK_ALLOW_DESTINATION");
}

static void test_env_duration_list_errors(void **state)
{
    run_t *r = *state;
    env_set("BREAKHOOK_RETRY_SCHEDULE", "5s,,2m");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), BH_EINVAL);
    assert_err_names(r, "BREAKHOOK_RETRY_SCHEDULE");
    assert_int_equal(parse(r, "--retry-schedule=5s,x"), BH_EINVAL);
    assert_err_names(r, "--retry-schedule");
}

static void test_unknown_option(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--port=1", "--bogus"), BH_EINVAL);
    assert_err_names(r, "--bogus");
    assert_int_equal(parse(r, "--bogus=1"), BH_EINVAL);
    assert_err_names(r, "--bogus");
    assert_int_equal(parse(r, "-x"), BH_EINVAL);
    assert_err_names(r, "-x");
    /* A prefix of a real option is not that option. */
    assert_int_equal(parse(r, "--verb"), BH_EINVAL);
    assert_err_names(r, "--verb");
    assert_int_equal(parse(r, "--verbose-more"), BH_EINVAL);
    assert_err_names(r, "--verbose-more");
    /* Names are case-sensitive. */
    assert_int_equal(parse(r, "--PORT=1"), BH_EINVAL);
    assert_err_names(r, "--PORT");
}

static void test_missing_value(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--port"), BH_EINVAL);
    assert_err_names(r, "--port");
    assert_int_equal(parse(r, "--verbose", "--listen"), BH_EINVAL);
    assert_err_names(r, "--listen");
    assert_int_equal(parse(r, "--retry-schedule"), BH_EINVAL);
    assert_err_names(r, "--retry-schedule");
    assert_int_equal(parse(r, "--allow-destination"), BH_EINVAL);
    assert_err_names(r, "--allow-destination");
}

static void test_invalid_values(void **state)
{
    run_t *r = *state;
    static const char *const bad[][2] = {
        { "--port=abc", "--port" },          { "--port=", "--port" },
        { "--port=12x", "--port" },          { "--port=0x10", "--port" },
        { "--count=99999999999999999999", "--count" },
        { "--timeout=5", "--timeout" },      { "--timeout=5 s", "--timeout" },
        { "--timeout=-5s", "--timeout" },    { "--timeout=", "--timeout" },
        { "--retry-schedule=", "--retry-schedule" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(r, bad[i][0]) != BH_EINVAL)
            fail_msg("%s gave %d, want BH_EINVAL", bad[i][0], r->rc);
        assert_err_names(r, bad[i][1]);
    }
    /* Nothing was half-applied. */
    assert_int_equal(parse(r, "--port=abc"), BH_EINVAL);
    assert_int_equal(r->cfg.port, 8080);
}

static void test_int_range(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--port=1"), 0);
    assert_int_equal(r->cfg.port, 1);
    assert_int_equal(parse(r, "--port=65535"), 0);
    assert_int_equal(r->cfg.port, 65535);
    assert_int_equal(parse(r, "--port=0"), BH_ERANGE);
    assert_err_names(r, "--port");
    assert_int_equal(parse(r, "--port=65536"), BH_ERANGE);
    assert_err_names(r, "--port");
    /* The message says what is allowed, not only that the value is not. */
    assert_err_names(r, "allowed: 1 to 65535");
    assert_int_equal(parse(r, "--port=-1"), BH_ERANGE);
    assert_int_equal(r->cfg.port, 8080);
    /* min == max == 0: unbounded. */
    assert_int_equal(parse(r, "--count=-9223372036854775808"), 0);
    assert_true(r->cfg.count == INT64_MIN);
    assert_int_equal(parse(r, "--count=9223372036854775807"), 0);
    assert_true(r->cfg.count == INT64_MAX);

    env_set("BREAKHOOK_PORT", "70000");
    assert_int_equal(parse_pos(r, 0, NO_ARGS), BH_ERANGE);
    assert_err_names(r, "BREAKHOOK_PORT");
}

static void test_duration_range(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--timeout=100ms"), 0);
    assert_int_equal(r->cfg.timeout_ms, 100);
    assert_int_equal(parse(r, "--timeout=1h"), 0);
    assert_int_equal(r->cfg.timeout_ms, 60 * MIN);
    assert_int_equal(parse(r, "--timeout=99ms"), BH_ERANGE);
    assert_err_names(r, "--timeout");
    assert_int_equal(parse(r, "--timeout=61m"), BH_ERANGE);
    assert_err_names(r, "--timeout");
    assert_err_names(r, "allowed: 100ms to 1h");
    assert_int_equal(r->cfg.timeout_ms, 10 * SEC);

    /* Every element of a duration list is checked. */
    assert_int_equal(parse(r, "--retry-schedule=1s,1d"), 0);
    assert_int_equal(parse(r, "--retry-schedule=1s,500ms,2s"), BH_ERANGE);
    assert_err_names(r, "--retry-schedule");
    assert_int_equal(parse(r, "--retry-schedule=1s,2d"), BH_ERANGE);
    assert_err_names(r, "--retry-schedule");
    assert_err_names(r, "1s to 1d");
}

static void test_positionals(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse_pos(r, 2, ARGS("create", "--port=5", "acme")), 0);
    assert_int_equal(r->n_pos, 2);
    assert_string_equal(r->pos[0], "create");
    assert_string_equal(r->pos[1], "acme");
    assert_int_equal(r->cfg.port, 5);

    /* "-" alone is a positional (stdin, by convention). */
    assert_int_equal(parse_pos(r, 2, ARGS("-")), 0);
    assert_int_equal(r->n_pos, 1);
    assert_string_equal(r->pos[0], "-");

    /* One too many. */
    assert_int_equal(parse_pos(r, 2, ARGS("a", "b", "extra")), BH_EINVAL);
    assert_err_names(r, "extra");
    assert_int_equal(parse_pos(r, 0, ARGS("stray")), BH_EINVAL);
    assert_err_names(r, "stray");
}

static void test_double_dash(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse_pos(r, 3, ARGS("--port=5", "--", "--port=6", "-x", "--help")), 0);
    assert_int_equal(r->cfg.port, 5);
    assert_int_equal(r->n_pos, 3);
    assert_string_equal(r->pos[0], "--port=6");
    assert_string_equal(r->pos[1], "-x");
    assert_string_equal(r->pos[2], "--help");
    assert_false(r->help);
    /* A second "--" after the first is a positional too. */
    assert_int_equal(parse_pos(r, 3, ARGS("--", "--")), 0);
    assert_int_equal(r->n_pos, 1);
    assert_string_equal(r->pos[0], "--");
}

static void test_help(void **state)
{
    run_t *r = *state;
    assert_int_equal(parse(r, "--help"), 0);
    assert_true(r->help);
    assert_int_equal(parse(r, "-h"), 0);
    assert_true(r->help);
    assert_int_equal(parse(r, "--port=5", "--help"), 0);
    assert_true(r->help);
    assert_int_equal(parse(r, "--port=5"), 0);
    assert_false(r->help);
}

static void test_env_name(void **state)
{
    (void)state;
    char out[96];
    config_env_name("listen", out, sizeof(out));
    assert_string_equal(out, "BREAKHOOK_LISTEN");
    config_env_name("allow-http-destinations", out, sizeof(out));
    assert_string_equal(out, "BREAKHOOK_ALLOW_HTTP_DESTINATIONS");
    config_env_name("a1-b2", out, sizeof(out));
    assert_string_equal(out, "BREAKHOOK_A1_B2");
    /* Truncated to the buffer, always terminated. */
    char small[6];
    memset(small, 'X', sizeof(small));
    config_env_name("listen", small, sizeof(small));
    assert_string_equal(small, "BREAK");
}

static void test_print_options(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_options(f, options, N_OPTIONS);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    static const char *const want[] = {
        "--listen ADDR:PORT",
        "address to listen on",
        "BREAKHOOK_LISTEN",
        "--port PORT",
        "BREAKHOOK_PORT",
        "--timeout DURATION",
        "--allow-destination CIDR",
        "BREAKHOOK_ALLOW_DESTINATION",
        "--retry-schedule LIST",
        "BREAKHOOK_RETRY_SCHEDULE",
        "--verbose",
        "talk more",
        "BREAKHOOK_VERBOSE",
        "--help",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("help text lacks \"%s\":\n%s", want[i], text);
    /* A bool flag takes no value, so the help shows none. */
    assert_null(strstr(text, "--verbose VALUE"));
    assert_null(strstr(text, "--verbose ("));
    free(text);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults_kept),
        T(test_equals_and_separate_value),
        T(test_value_with_equals_and_dashes),
        T(test_last_flag_wins),
        T(test_flag_beats_env_beats_default),
        T(test_flag_beats_bad_env),
        T(test_empty_env_ignored),
        T(test_bool_flags),
        T(test_bool_flag_takes_no_value),
        T(test_bool_env),
        T(test_repeated_list_flags),
        T(test_list_flag_beats_env),
        T(test_list_flag_replaces_default),
        T(test_too_many_list_flags),
        T(test_env_list_split_on_commas),
        T(test_env_list_too_many),
        T(test_env_duration_list_errors),
        T(test_unknown_option),
        T(test_missing_value),
        T(test_invalid_values),
        T(test_int_range),
        T(test_duration_range),
        T(test_positionals),
        T(test_double_dash),
        T(test_help),
        T(test_env_name),
        T(test_print_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
