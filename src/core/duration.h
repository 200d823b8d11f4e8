/*
 * duration.h: durations as people write them: "500ms", "5s", "10m", "72h", "30d",
 * and lists of them ("5s,30s,2m").
 */
#ifndef BREAKHOOK_CORE_DURATION_H
#define BREAKHOOK_CORE_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Parses one duration: a decimal integer followed by ms, s, m, h or d. No sign,
 * no spaces, no missing unit, no overflow. BH_EINVAL otherwise. */
BH_MUST_USE int duration_parse(const char *s, int64_t *ms_out);

/* Parses a comma-separated list of durations into out[0..max). Returns the count
 * through n_out, BH_EINVAL for a bad element or an empty list, BH_ETOOBIG past max. */
BH_MUST_USE int duration_parse_list(const char *s, int64_t *out, size_t max, size_t *n_out);

/* Writes the shortest exact form of ms ("90s" stays "90s", 3600000 gives "1h") into
 * out, which must hold at least 24 bytes. */
void duration_format(int64_t ms, char *out, size_t n);

#endif
