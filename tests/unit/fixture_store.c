#define _GNU_SOURCE /* mkdtemp, nftw */
#include "fixture_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void fx_store_new(fx_store_t *fx, const char *name, int64_t t0_ms, bool from_env)
{
    memset(fx, 0, sizeof(*fx));
    clock_fake_init(&fx->clock, t0_ms);
    const char *env = from_env ? getenv("BREAKHOOK_TEST_STORE_URL") : NULL;
    if (env && *env) {
        snprintf(fx->url, sizeof(fx->url), "%s", env);
        return;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/bh-%.20s-XXXXXX", name);
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
    snprintf(fx->url, sizeof(fx->url), "sqlite:%s", fx->path);
}

void fx_store_open(fx_store_t *fx)
{
    store_options_t opt = { .clock = &fx->clock };
    const char *msg = NULL;
    if (store_open(fx->url, &opt, &fx->s, &msg) != 0)
        fail_msg("store_open %s: %s", fx->url, msg ? msg : "?");
}

void fx_store_free(fx_store_t *fx)
{
    store_close(fx->s);
    fx->s = NULL;
    if (fx->dir[0])
        nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    fx->dir[0] = '\0';
}

bool fx_store_shared(const fx_store_t *fx)
{
    return fx->dir[0] == '\0';
}

void fx_store_assert_count(const fx_store_t *fx, size_t n, size_t want)
{
    if (fx_store_shared(fx)) {
        if (n < want)
            fail_msg("counted %zu, want at least %zu", n, want);
    } else {
        assert_int_equal(n, want);
    }
}

int64_t fx_store_tenant(fx_store_t *fx, const char *label, char *name_out)
{
    /* The process id, the wall clock in microseconds and a counter: unique across the
     * tests of one process, the processes of one run and the runs against one
     * database. */
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long us = (unsigned long long)ts.tv_sec * 1000000ULL +
                            (unsigned long long)ts.tv_nsec / 1000ULL;
    char name[STORE_NAME_MAX];
    snprintf(name, sizeof(name), "%.16s-%x-%llx-%u", label, (unsigned)getpid(), us,
             atomic_fetch_add(&counter, 1));
    store_tenant_t t;
    int rc = store_tenant_create(fx->s, name, &t);
    if (rc != 0)
        fail_msg("store_tenant_create %s: %d", name, rc);
    if (name_out)
        snprintf(name_out, STORE_NAME_MAX, "%s", name);
    return t.id;
}

int fx_two_setup(void **state, const char *label, int64_t t0_ms)
{
    fx_two_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    char name[32];
    fx_store_new(&f->fx, label, t0_ms, true);
    fx_store_open(&f->fx);
    snprintf(name, sizeof(name), "%s-a", label);
    f->ta = fx_store_tenant(&f->fx, name, NULL);
    snprintf(name, sizeof(name), "%s-b", label);
    f->tb = fx_store_tenant(&f->fx, name, NULL);
    *state = f;
    return 0;
}

int fx_two_teardown(void **state)
{
    fx_two_t *f = *state;
    fx_store_free(&f->fx);
    free(f);
    return 0;
}

void fx_webhook_id(char out[STORE_WEBHOOK_ID_LEN + 1], int n)
{
    snprintf(out, STORE_WEBHOOK_ID_LEN + 1, "00000000-0000-4000-8000-%012d", n);
}

/* True when name is one of the comma-separated names in list. */
static bool name_listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

int fx_run_tests(const char *group, struct CMUnitTest *tests, size_t n)
{
    const char *exclude = getenv("BH_TEST_EXCLUDE");
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (exclude && name_listed(exclude, tests[i].name)) {
            fprintf(stderr, "[ EXCLUDED ] %s (BH_TEST_EXCLUDE)\n", tests[i].name);
            continue;
        }
        tests[kept++] = tests[i];
    }
    return _cmocka_run_group_tests(group, tests, kept, NULL, NULL);
}
