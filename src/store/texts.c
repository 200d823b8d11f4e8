/*
 * texts.c: the stored form of a definition's translations, shared by every back-end
 * so that each stores, and gives back, exactly the same text.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/store_int.h"

int store__texts_encode(const model_text_t *t, char **out)
{
    json_t *arr = json_array();
    if (!arr)
        return BH_ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n_tr; i++) {
        json_t *pair = json_pack("[ss]", t->tr[i].lang, t->tr[i].text);
        if (!pair || json_array_append_new(arr, pair) != 0)
            rc = BH_EINVAL; /* not UTF-8: model_definition_parse lets none through */
    }
    if (rc == 0) {
        *out = json_dumps(arr, JSON_COMPACT);
        if (!*out)
            rc = BH_ENOMEM;
    }
    json_decref(arr);
    return rc;
}

/* Copies a JSON string into a fixed field; false when it does not fit. */
static bool json_str_copy(const json_t *v, char *dst, size_t cap)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    if (n >= cap)
        return false;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return true;
}

int store__texts_decode(const char *s, const char *what, model_text_t *t)
{
    json_t *arr = s ? json_loads(s, 0, NULL) : NULL;
    bool ok = json_is_array(arr) && json_array_size(arr) <= MODEL_TRANSLATIONS_MAX;
    for (size_t i = 0; ok && i < json_array_size(arr); i++) {
        json_t *pair = json_array_get(arr, i);
        ok = json_is_array(pair) && json_array_size(pair) == 2 &&
             json_str_copy(json_array_get(pair, 0), t->tr[i].lang, sizeof(t->tr[i].lang)) &&
             json_str_copy(json_array_get(pair, 1), t->tr[i].text, sizeof(t->tr[i].text));
        t->n_tr = i + 1;
    }
    json_decref(arr);
    if (!ok) {
        log_error("store: stored translations are unreadable", LOG_STR("column", what));
        return BH_EIO;
    }
    return 0;
}
