/*
 * test_store_prune.c: the change log is pruned by age, but never past what an
 * Enabled webhook still has to deliver.
 */
#define _GNU_SOURCE /* nftw, mkdtemp */

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "store/store.h"

#define T0 1800000000000LL
#define HOUR 3600000LL

typedef struct fx {
    char dir[64];
    bh_clock_t clock;
    store_t *s;
    int64_t tenant;
} fx_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bh-test-prune-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    clock_fake_init(&f->clock, T0);
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/db", f->dir);
    store_options_t opt = { .clock = &f->clock };
    const char *msg = NULL;
    assert_int_equal(store_open(url, &opt, &f->s, &msg), 0);
    store_tenant_t t;
    assert_int_equal(store_tenant_create(f->s, "acme", &t), 0);
    f->tenant = t.id;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static uint64_t put_person(fx_t *f, int64_t id)
{
    model_person_t p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    store_write_result_t r;
    assert_int_equal(store_person_put(f->s, f->tenant, &p, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

static size_t count_changes(fx_t *f)
{
    store_change_t *c = NULL;
    size_t n = 0;
    assert_int_equal(store_changes_after(f->s, f->tenant, STORE_COLL_PEOPLE, 0, 1000, &c, &n), 0);
    store_changes_free(c, n);
    return n;
}

static void test_prune_by_age(void **state)
{
    fx_t *f = *state;
    for (int i = 1; i <= 5; i++) {
        put_person(f, i);
        clock_fake_advance(&f->clock, HOUR);
    }
    /* Changes at T0, T0+1h, …, T0+4h; prune what is older than T0+2h: two go. */
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->s, T0 + 2 * HOUR, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(count_changes(f), 3);
    /* Again: nothing more. */
    assert_int_equal(store_changes_prune(f->s, T0 + 2 * HOUR, &n), 0);
    assert_int_equal(n, 0);
}

static void test_pending_events_are_kept(void **state)
{
    fx_t *f = *state;
    /* A webhook created before any change: its window starts at version 0 and it has
     * delivered nothing, so nothing may be pruned however old. */
    store_webhook_t w;
    memset(&w, 0, sizeof(w));
    bh_rand_t r;
    rand_fake_init(&r, 3);
    assert_int_equal(crypto_uuid4(&r, w.id), 0);
    w.collection = STORE_COLL_BREAKS;
    snprintf(w.destination_url, sizeof(w.destination_url), "https://x.invalid/");
    snprintf(w.ext_refs, sizeof(w.ext_refs), "[]");
    w.key_blob_len = 33;
    w.created_at_ms = T0;
    w.valid_until_ms = T0 + 1000 * HOUR;
    assert_int_equal(store_webhook_create(f->s, f->tenant, &w, 10), 0);
    uint64_t v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = put_person(f, i + 1);
        clock_fake_advance(&f->clock, HOUR);
    }
    size_t n = 0;
    assert_int_equal(store_changes_prune(f->s, T0 + 100 * HOUR, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_changes(f), 5);
    /* It delivers up to the third change: those three may go, the rest stays. */
    struct store_watermark m = { f->tenant, w.id, v[2], T0, 0 };
    store_delivery_batch_t b = { NULL, 0, NULL, 0, &m, 1 };
    assert_int_equal(store_delivery_commit(f->s, &b), 0);
    assert_int_equal(store_changes_prune(f->s, T0 + 100 * HOUR, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(count_changes(f), 2);
    /* Once the webhook is disabled it no longer holds anything back. */
    assert_int_equal(store_webhook_disable(f->s, f->tenant, w.id, STORE_WH_DELETED, T0 + 6 * HOUR),
                     0);
    assert_int_equal(store_changes_prune(f->s, T0 + 100 * HOUR, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(count_changes(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_events_are_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
