/*
 * date.c: civil dates <-> day numbers.
 *
 * The conversions use the "era" decomposition of the Gregorian calendar: the
 * calendar repeats every 400 years (146097 days), and inside an era, counting
 * years from 1 March puts the leap day at the very end of the year, so the day
 * of the year maps to a month with one linear formula (153 days per 5 months,
 * starting in March). All arithmetic is done in int64_t so no intermediate
 * value can overflow for any int32_t input.
 */
#include "core/date.h"

#include <stdbool.h>

#define DAYS_PER_ERA 146097       /* days in 400 Gregorian years */
#define EPOCH_SHIFT 719468        /* days from 0000-03-01 to 1970-01-01 */
#define MS_PER_DAY 86400000LL

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int date_days_in_month(int y, int m)
{
    static const unsigned char len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m < 1 || m > 12)
        return 0;
    if (m == 2 && is_leap(y))
        return 29;
    return len[m - 1];
}

/* Floor division for a positive divisor: C's '/' truncates toward zero, which
 * would put negative days into the wrong era. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

int32_t date_from_ymd(int y, int m, int d)
{
    /* Years start on 1 March so February's variable length is the last month. */
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = floor_div(yy, 400);
    int64_t yoe = yy - era * 400;                                 /* 0..399 */
    int64_t mp = m > 2 ? m - 3 : m + 9;                           /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;                     /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
    return (int32_t)(era * DAYS_PER_ERA + doe - EPOCH_SHIFT);
}

void date_ymd(int32_t days, int *y, int *m, int *d)
{
    int64_t z = (int64_t)days + EPOCH_SHIFT;
    int64_t era = floor_div(z, DAYS_PER_ERA);
    int64_t doe = z - era * DAYS_PER_ERA;                                     /* 0..146096 */
    /* The corrections remove the leap days of the era so far: one per 4 years,
     * none per 100, one again per 400 (the era's last day). */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;      /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                    /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                         /* 0..11 */
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)mm;
    *y = (int)(yoe + era * 400 + (mm <= 2));
}

static int digits(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)p[i] - '0';
        if (c > 9)
            return -1;
        v = v * 10 + (int)c;
    }
    return v;
}

int date_parse(const char *p, size_t n, int32_t *days_out)
{
    if (!p || n != 10 || p[4] != '-' || p[7] != '-')
        return BH_EINVAL;
    int y = digits(p, 4), m = digits(p + 5, 2), d = digits(p + 8, 2);
    if (y < 1 || m < 1 || d < 1 || d > date_days_in_month(y, m))
        return BH_EINVAL;
    *days_out = date_from_ymd(y, m, d);
    return 0;
}

void date_format(int32_t days, char out[11])
{
    int y = 0, m = 0, d = 0;
    if (days >= DATE_MIN_DAYS && days <= DATE_MAX_DAYS)
        date_ymd(days, &y, &m, &d);
    /* Written by hand: the values are known to fit, and it keeps the hot path of
     * page rendering free of printf. */
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

int32_t date_from_ms(int64_t ms_utc)
{
    /* Only times some 5.8 million years away do not fit; clamp them rather than
     * let the conversion wrap. */
    int64_t days = floor_div(ms_utc, MS_PER_DAY);
    if (days > INT32_MAX)
        return INT32_MAX;
    if (days < INT32_MIN)
        return INT32_MIN;
    return (int32_t)days;
}
