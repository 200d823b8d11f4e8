/*
 * date.h: calendar dates as a count of days since 1970-01-01 (proleptic
 * Gregorian, UTC), the form filters, the store and range checks compare.
 *
 * Everything here is pure arithmetic: no libc time functions, no time zone, no
 * locale, no allocation, callable from any thread.
 */
#ifndef BREAKHOOK_CORE_DATE_H
#define BREAKHOOK_CORE_DATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* The days of 0001-01-01 and 9999-12-31, the range date_parse accepts. */
#define DATE_MIN_DAYS (-719162)
#define DATE_MAX_DAYS 2932896

/* Parses exactly "YYYY-MM-DD" (10 bytes, ASCII digits, '-' separators) naming a
 * real calendar date between 0001-01-01 and 9999-12-31: month 01..12, day within
 * the month's length, 29 February only in leap years. (p, n) is borrowed and
 * need not be NUL-terminated. Returns 0 and the day count through days_out, or
 * BH_EINVAL (days_out untouched) for anything else: other lengths, signs,
 * spaces, a time part, 2023-02-29, 0000-01-01. */
BH_MUST_USE int date_parse(const char *p, size_t n, int32_t *days_out);

/* Writes "YYYY-MM-DD" and a NUL into out. Days outside DATE_MIN_DAYS..
 * DATE_MAX_DAYS (such as INT32_MAX, used for an open range end) give
 * "0000-00-00", so the output is always 10 characters. */
void date_format(int32_t days, char out[11]);

/* The UTC calendar day of a Unix time in milliseconds; times before 1970 round
 * toward the earlier day (-1 ms is 1969-12-31, day -1). Clamped to the int32_t
 * range for times millions of years away. */
int32_t date_from_ms(int64_t ms_utc);

/* The year, month (1..12) and day (1..31) of a day count. Exact for every
 * int32_t (years outside 1..9999 included, e.g. year 0 or negative years). */
void date_ymd(int32_t days, int *y, int *m, int *d);

/* The day count of year y, month m (1..12), day d (1..31), the inverse of
 * date_ymd. No validation: callers pass a real date (see date_days_in_month)
 * whose day count fits int32_t (years within about -5.8 to +5.8 million). */
int32_t date_from_ymd(int y, int m, int d);

/* 28..31 for month m (1..12) of year y; 0 for a month outside 1..12. */
int date_days_in_month(int y, int m);

#endif
