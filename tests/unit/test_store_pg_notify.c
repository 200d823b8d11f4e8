/*
 * test_store_pg_notify.c: the payload of the PostgreSQL back-end's commit
 * notifications (store/pg/notify.c), read as another node sent it. Pure: no
 * database. A payload comes from any process that can NOTIFY on the channel, so
 * every malformed shape must be refused whole (the listener then says "look
 * everywhere") and never half reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "store/pg/pg_int.h"
#include "store/store.h"

#define NODE "0123456789abcdef"
#define OTHER "fedcba9876543210"

typedef struct got {
    size_t n;
    int64_t tenant[8];
    uint64_t version[8];
    unsigned what[8];
} got_t;

static void take(void *arg, int64_t tenant_id, uint64_t version, unsigned what)
{
    got_t *g = arg;
    if (g->n < 8) {
        g->tenant[g->n] = tenant_id;
        g->version[g->n] = version;
        g->what[g->n] = what;
    }
    g->n++;
}

static void test_items(void **state)
{
    (void)state;
    got_t g = { 0 };
    assert_int_equal(pg__notify_parse(OTHER " 5:123:1 7:0:2 9:44:3", NODE, take, &g), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.tenant[0], 5);
    assert_int_equal(g.version[0], 123);
    assert_int_equal(g.what[0], STORE_COMMIT_CHANGES);
    assert_int_equal(g.tenant[1], 7);
    assert_int_equal(g.what[1], STORE_COMMIT_WEBHOOKS);
    assert_int_equal(g.tenant[2], 9);
    assert_int_equal(g.version[2], 44);
    assert_int_equal(g.what[2], STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS);

    memset(&g, 0, sizeof(g));
    assert_int_equal(pg__notify_parse(OTHER " all", NODE, take, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.tenant[0], 0);
    assert_int_equal(g.what[0], STORE_COMMIT_CHANGES | STORE_COMMIT_WEBHOOKS);

    /* Its own node's notification is read and dropped; NULL self drops none. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(pg__notify_parse(NODE " 5:1:1", NODE, take, &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(pg__notify_parse(NODE " 5:1:1", NULL, take, &g), 0);
    assert_int_equal(g.n, 1);
}

static void test_refused_whole(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        OTHER,
        OTHER " ",
        "0123456789ABCDEF 5:1:1",            /* upper-case hex */
        "0123456789abcde 5:1:1",             /* short node */
        OTHER "x5:1:1",
        OTHER " 5:1",
        OTHER " 5:1:",
        OTHER " :1:1",
        OTHER " 0:1:1",                      /* tenant 0 only as "all" */
        OTHER " 5:1:0",                      /* says nothing */
        OTHER " 5:1:4",                      /* an unknown bit */
        OTHER " 5:1:1 ",                     /* trailing space */
        OTHER " 5:1:1  6:1:1",
        OTHER " 5:1:1 6:x:1",                /* a bad item after a good one */
        OTHER " -5:1:1",
        OTHER " 5:99999999999999999999:1",   /* above uint64 */
        OTHER " 5:9223372036854775808:1",    /* above int64 */
        OTHER " 9223372036854775808:1:1",
        OTHER " all 5:1:1",
        OTHER " alll",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got_t g = { 0 };
        if (pg__notify_parse(bad[i], NODE, take, &g) != BH_EINVAL || g.n != 0)
            fail_msg("accepted \"%s\" (%zu items)", bad[i], g.n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
