/*
 * fuzz_extref.c: the externalReferences parser on arbitrary bytes.
 *
 * Checks, besides memory errors, that reasons are printable ASCII and fit
 * EXTREF_ERR_MAX untruncated, and that an accepted list holds
 * 1..EXTREF_MAX_PAIRS distinct, well-formed references.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "filter/extref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_ok(const extref_t *r)
{
    if (r->name_len == 0 || r->name_len > EXTREF_MAX_NAME || strlen(r->name) != r->name_len)
        return false;
    if (r->predefined != (r->name[0] == '@'))
        return false;
    if (r->predefined)
        return strcmp(r->name, "@employee-number") == 0 || strcmp(r->name, "@badge-number") == 0;
    for (size_t i = 0; i < r->name_len; i++) {
        char c = r->name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 1 << 20);
    extref_list_t l;
    char err[EXTREF_ERR_MAX];
    if (extref_parse((const char *)data, size, &a, &l, err, sizeof(err)) == 0) {
        if (l.n == 0 || l.n > EXTREF_MAX_PAIRS)
            abort();
        for (size_t i = 0; i < l.n; i++) {
            if (strcmp(l.items[i].collection, "people") != 0 || !name_ok(&l.items[i]))
                abort();
            for (size_t j = 0; j < i; j++)
                if (strcmp(l.items[i].name, l.items[j].name) == 0)
                    abort();
        }
    } else {
        size_t n = 0;
        for (const char *p = err; *p; p++, n++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                abort();
        if (n == 0 || n >= EXTREF_ERR_MAX - 1) /* empty, or cut short by the buffer */
            abort();
    }
    arena_deinit(&a);
    return 0;
}
