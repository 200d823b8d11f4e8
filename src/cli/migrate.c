/*
 * migrate.c: `breakhook migrate --from URL --to URL`: copies a whole store into an
 * empty one (moving up from an SQLite file to PostgreSQL, docs/OPERATIONS.md).
 *
 * store_copy does the work (store/copy.c): every table row by row, as stored, so
 * the target serves what the source did and deliveries resume from the same
 * watermarks. This command refuses a source that a server holds (a copy of a store
 * that keeps changing would be torn) and a target that holds anything, shows
 * progress on stderr (a bar on a terminal, a line per table otherwise) and ends with
 * a verification table on stdout: every table counted again in both stores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "store/store.h"

#define BAR_WIDTH 24
#define DRAW_MS 100

typedef struct migrate_opts {
    const char *from;
    const char *to;
    bool quiet;
} migrate_opts_t;

static const config_option_t migrate_options[] = {
    { "from", CONFIG_STRING, offsetof(migrate_opts_t, from), "URL",
      "the store to copy (required), e.g. sqlite:var/breakhook.db; no server may be using it",
      0, 0 },
    { "to", CONFIG_STRING, offsetof(migrate_opts_t, to), "URL",
      "the empty store to fill (required), e.g. postgres://breakhook@db.internal/breakhook", 0,
      0 },
    { "quiet", CONFIG_BOOL, offsetof(migrate_opts_t, quiet), NULL,
      "no progress on stderr", 0, 0 },
};
#define N_MIGRATE_OPTIONS (sizeof(migrate_options) / sizeof(migrate_options[0]))

typedef struct progress {
    bool tty, quiet;
    int64_t drawn_ms;
    int64_t start_ms;
} progress_t;

static void on_progress(void *arg, const char *table, uint64_t done, uint64_t total)
{
    progress_t *p = arg;
    if (p->quiet)
        return;
    int64_t now = clock_mono_ms(clock_system());
    bool end = done >= total;
    if (!p->tty) {
        if (end)
            fprintf(stderr, "copied %s: %llu rows\n", table, (unsigned long long)done);
        return;
    }
    if (!end && now - p->drawn_ms < DRAW_MS)
        return;
    p->drawn_ms = now;
    int fill = total ? (int)(done * BAR_WIDTH / total) : BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\r%-18s [%s] %llu/%llu%s", table, bar, (unsigned long long)done,
            (unsigned long long)total, end ? "\n" : "");
    fflush(stderr);
}

static void print_help(void)
{
    printf("usage: breakhook migrate --from URL --to URL [--quiet]\n\n"
           "Copies a whole store into an empty one: tenants, API clients, token signing\n"
           "keys, people, break definitions, breaks, the change log with its versions,\n"
           "webhooks with their keys and delivery state, the attempt log and deltas. The\n"
           "usual move is from the embedded SQLite file to PostgreSQL; stop the server\n"
           "first (a source a server is using is refused), then start it on the target.\n"
           "Deliveries go on from where they stopped. Keys sealed with\n"
           "BREAKHOOK_MASTER_KEY are copied sealed: the server on the target needs the\n"
           "same master key.\n\n"
           "Progress goes to stderr; at the end every table is counted again in both\n"
           "stores and the counts are printed. Exit 0 when they match, 1 when the copy\n"
           "failed or a count differs (start again on an empty target), 2 for wrong\n"
           "options, a source in use or a target that is not empty.\n\noptions:\n");
    config_print_options(stdout, migrate_options, N_MIGRATE_OPTIONS);
}

int cli_migrate(int argc, char **argv)
{
    migrate_opts_t o = { 0 };
    char err[256];
    const char *pos[1];
    size_t n_pos;
    bool help;
    if (config_parse(migrate_options, N_MIGRATE_OPTIONS, &o, argc, argv, cli_getenv, pos, 0,
                     &n_pos, &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "migrate: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    if (!o.from || !*o.from || !o.to || !*o.to)
        return cli_fail(CLI_USAGE, "migrate: --from and --to are both required");
    if (!strcmp(o.from, o.to))
        return cli_fail(CLI_USAGE, "migrate: --from and --to name the same store");
    store_t *from = NULL, *to = NULL;
    int code = cli_store_open("migrate", o.from, 0, NULL, &from);
    if (code)
        return code;
    bool busy = false;
    int rc = store_in_use(from, &busy);
    if (rc || busy) {
        store_close(from);
        return rc ? cli_fail(CLI_FAIL, "migrate: --from %s: %s", o.from, err_str(rc))
                  : cli_fail(CLI_USAGE,
                             "migrate: a server is using %s: stop it first (the copy must "
                             "not change while it runs)",
                             o.from);
    }
    code = cli_store_open("migrate", o.to, 0, NULL, &to);
    if (code) {
        store_close(from);
        return code;
    }
    progress_t p = { .tty = isatty(STDERR_FILENO), .quiet = o.quiet,
                     .start_ms = clock_mono_ms(clock_system()) };
    store_copy_count_t counts[STORE_COPY_TABLES];
    rc = store_copy(from, to, on_progress, &p, counts);
    if (rc == BH_ECONFLICT) {
        code = cli_fail(CLI_USAGE, "migrate: --to %s is not empty: migrate fills an empty store",
                        o.to);
        goto out;
    }
    if (rc) {
        code = cli_fail(CLI_FAIL, "migrate: the copy failed: %s (the target is partly filled: "
                                  "empty it and start again)",
                        err_str(rc));
        goto out;
    }
    bool same = true;
    printf("%-20s %14s %14s\n", "table", "source rows", "target rows");
    for (size_t i = 0; i < STORE_COPY_TABLES; i++) {
        same = same && counts[i].source == counts[i].target;
        printf("%-20s %14llu %14llu%s\n", counts[i].table, (unsigned long long)counts[i].source,
               (unsigned long long)counts[i].target,
               counts[i].source == counts[i].target ? "" : "  DIFFERENT");
    }
    double secs = (double)(clock_mono_ms(clock_system()) - p.start_ms) / 1000.0;
    printf("%s in %.2f s\n", same ? "verified: every table has the same rows" : "NOT verified",
           secs);
    code = same ? CLI_OK : cli_fail(CLI_FAIL, "migrate: the counts differ (see above)");
out:
    store_close(to);
    store_close(from);
    return code;
}
