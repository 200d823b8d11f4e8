/*
 * key.c: `breakhook key rotate|list`: the keys that sign access tokens.
 *
 * Rotation adds a new active key and retires the old one. Running servers load
 * the new key within their --revocation-refresh interval; tokens signed with the
 * retired key stay valid until they expire (at most --token-ttl later).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/config.h"
#include "store/store.h"

typedef struct key_opts {
    const char *store;
} key_opts_t;

static const config_option_t key_options[] = {
    { "store", CONFIG_STRING, offsetof(key_opts_t, store), "URL",
      "store to use (default " CLI_DEFAULT_STORE ")", 0, 0 },
};

int cli_key(int argc, char **argv)
{
    key_opts_t o = { .store = CLI_DEFAULT_STORE };
    const char *pos[1];
    size_t n_pos;
    bool help;
    char err[256];
    if (config_parse(key_options, 1, &o, argc, argv, cli_getenv, pos, 1, &n_pos, &help, err,
                     sizeof(err)))
        return cli_fail(CLI_USAGE, "key: %s", err);
    if (help) {
        printf("usage: breakhook key rotate [--store URL]\n"
               "       breakhook key list [--store URL]\n\n"
               "Access tokens are signed with the newest key. 'rotate' adds a new key and\n"
               "retires the previous one; tokens it signed stay valid until they expire.\n"
               "Servers pick up a new key within their --revocation-refresh interval.\n"
               "With BREAKHOOK_MASTER_KEY in the environment the keys are stored encrypted\n"
               "(as 'serve' does); once they are, 'key' and 'serve' need it.\n\n"
               "options:\n");
        config_print_options(stdout, key_options, 1);
        return CLI_OK;
    }
    bool rotate = n_pos == 1 && !strcmp(pos[0], "rotate");
    bool list = n_pos == 1 && !strcmp(pos[0], "list");
    if (!rotate && !list)
        return cli_fail(CLI_USAGE, "key: expected 'rotate' or 'list' (see --help)");
    store_t *s;
    int rc = cli_store_open("key", o.store, 0, NULL, &s);
    if (rc)
        return rc;
    int code = CLI_OK;
    if (rotate) {
        store_signing_key_t k;
        rc = auth_signing_key_new(rand_system(), clock_now_ms(clock_system()), &k);
        rc = rc ? rc : store_signing_key_add(s, &k);
        if (rc)
            code = cli_fail(rc == BH_EINVAL ? CLI_USAGE : CLI_FAIL, "key rotate: %s",
                            cli_keys_error(rc));
        else
            printf("new signing key %s is active\n", k.kid);
    } else {
        store_signing_key_t *ks = NULL;
        size_t n = 0;
        rc = store_signing_key_list(s, &ks, &n);
        if (rc)
            code = cli_fail(rc == BH_EINVAL ? CLI_USAGE : CLI_FAIL, "key list: %s",
                            cli_keys_error(rc));
        for (size_t i = 0; i < n && !rc; i++) {
            char created[32], retired[32] = "active";
            clock_format_rfc3339(ks[i].created_at_ms, created);
            if (ks[i].retired_at_ms)
                clock_format_rfc3339(ks[i].retired_at_ms, retired);
            printf("%-20s created %s  %s%s\n", ks[i].kid, created,
                   ks[i].retired_at_ms ? "retired " : "", retired);
        }
        free(ks);
    }
    store_close(s);
    return code;
}
