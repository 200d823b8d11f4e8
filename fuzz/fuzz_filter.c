/*
 * fuzz_filter.c: the filter parser and every compile layer on arbitrary bytes.
 *
 * Besides memory errors (ASan/UBSan), it checks the promises of filter.h:
 * every reason is printable ASCII (it goes into JSON as is) and fits
 * FILTER_ERR_MAX untruncated, an accepted
 * breaks filter is a non-empty range of at most FILTER_BREAKS_MAX_DAYS days
 * with a strictly ascending person list, and compiled value sets are sorted
 * and unique.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/date.h"
#include "filter/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printable ASCII, and not cut short by the FILTER_ERR_MAX buffer. */
static void check_reason(const char *msg)
{
    size_t n = 0;
    for (const char *p = msg; *p; p++, n++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            abort();
    if (n == 0 || n >= FILTER_ERR_MAX - 1)
        abort();
}

static const char *const allowed[] = { "a", "b", NULL };

static const filter_field_t fields[] = {
    { .name = "date", .type = FILTER_T_DATE, .category = FILTER_RANGE },
    { .name = "person", .type = FILTER_T_INT, .category = FILTER_MULTIPLE },
    { .name = "status", .type = FILTER_T_STRING, .category = FILTER_SINGLE, .allowed = allowed },
    { .name = "tag", .type = FILTER_T_STRING, .category = FILTER_MULTIPLE },
    { .name = "n", .type = FILTER_T_INT, .category = FILTER_RANGE },
};

static void check_query(const filter_query_t *q)
{
    for (size_t i = 0; i < q->n_fields; i++) {
        const filter_cond_t *c = &q->conds[i];
        if (!c->present && (c->n_ints || c->n_strs || c->has_lo || c->has_hi))
            abort();
        for (size_t k = 1; k < c->n_ints; k++)
            if (c->ints[k - 1] >= c->ints[k])
                abort();
        for (size_t k = 1; k < c->n_strs; k++) {
            const slice_t *x = &c->strs[k - 1], *y = &c->strs[k];
            size_t n = x->n < y->n ? x->n : y->n;
            int r = n ? memcmp(x->p, y->p, n) : 0;
            if (r > 0 || (r == 0 && x->n >= y->n))
                abort();
        }
        if (c->n_ints > FILTER_MAX_LIST || c->n_strs > FILTER_MAX_LIST)
            abort();
    }
}

static void check_breaks(const filter_breaks_t *b, bool delta)
{
    if (b->date_from < DATE_MIN_DAYS || b->date_from > DATE_MAX_DAYS)
        abort();
    if (b->date_to != INT32_MAX || !delta) {
        if (b->date_to < b->date_from ||
            (int64_t)b->date_to - b->date_from + 1 > FILTER_BREAKS_MAX_DAYS)
            abort();
    }
    if (delta && b->n_persons)
        abort();
    for (size_t k = 1; k < b->n_persons; k++)
        if (b->persons[k - 1] >= b->persons[k])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    arena_t a;
    arena_init(&a, 4 << 20);
    char err[FILTER_ERR_MAX];

    const filter_node_t *root = NULL;
    filter_error_t e;
    if (filter_parse(p, size, &a, &root, &e) == 0) {
        filter_query_t q;
        if (filter_compile(root, fields, sizeof(fields) / sizeof(fields[0]), &a, &q, err,
                           sizeof(err)) == 0)
            check_query(&q);
        else
            check_reason(err);
    } else {
        check_reason(e.msg);
        if (e.pos > size)
            abort();
    }

    /* Today 2025-06-15, so delta start dates around 2024 are reachable. */
    const int32_t today = 20254;
    for (int delta = 0; delta <= 1; delta++) {
        filter_breaks_t b;
        if (filter_breaks_compile(p, size, delta, today, &a, &b, err, sizeof(err)) == 0)
            check_breaks(&b, delta);
        else
            check_reason(err);
    }

    filter_webhooks_t w;
    if (filter_webhooks_compile(p, size, &a, &w, err, sizeof(err)) == 0) {
        if (w.collection_name && strlen(w.collection_name) > w.collection_name_len)
            abort();
    } else {
        check_reason(err);
    }
    arena_deinit(&a);
    return 0;
}
