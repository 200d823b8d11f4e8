#include "core/clock.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t sys_now_ms(bh_clock_t *c)
{
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t sys_mono_ms(bh_clock_t *c)
{
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bh_clock_t system_clock = { sys_now_ms, sys_mono_ms, 0, 0 };

bh_clock_t *clock_system(void)
{
    return &system_clock;
}

static int64_t fake_now_ms(bh_clock_t *c)
{
    return __atomic_load_n(&c->fake_now_ms, __ATOMIC_SEQ_CST);
}

static int64_t fake_mono_ms(bh_clock_t *c)
{
    return __atomic_load_n(&c->fake_mono_ms, __ATOMIC_SEQ_CST);
}

void clock_fake_init(bh_clock_t *c, int64_t start_ms)
{
    c->now_ms = fake_now_ms;
    c->mono_ms = fake_mono_ms;
    c->fake_now_ms = start_ms;
    c->fake_mono_ms = 1000000;
}

void clock_fake_advance(bh_clock_t *c, int64_t ms)
{
    __atomic_add_fetch(&c->fake_now_ms, ms, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&c->fake_mono_ms, ms, __ATOMIC_SEQ_CST);
}

void clock_format_rfc3339(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years outside 0..9999 do not occur; clamp so the output always fits. */
    if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        tm.tm_year = 9999 - 1900;
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, frac % 1000);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int clock_parse_rfc3339(const char *s, int64_t *ms_out)
{
    int y, mo, d, h, mi, sec, frac = 0;
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return BH_EINVAL;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return BH_EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        int nd = 0, scale = 100;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac += (*p - '0') * scale;
            scale /= 10;
            nd++;
            p++;
        }
        if (nd == 0)
            return BH_EINVAL;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (strlen(p) != 6 || p[3] != ':' || digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            return BH_EINVAL;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return BH_EINVAL;
    }
    if (*p != '\0')
        return BH_EINVAL;
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 ||
        mi > 59 || sec > 59)
        return BH_EINVAL;
    struct tm tm = { 0 };
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t secs = (int64_t)timegm(&tm) - (int64_t)offset_min * 60;
    *ms_out = secs * 1000 + frac;
    return 0;
}

static int sys_bytes(bh_rand_t *r, void *p, size_t n)
{
    (void)r;
    if (n > 0x7fffffff || RAND_bytes(p, (int)n) != 1)
        return BH_EIO;
    return 0;
}

static bh_rand_t system_rand = { sys_bytes, 0 };

bh_rand_t *rand_system(void)
{
    return &system_rand;
}

/* splitmix64: deterministic and good enough to make test output reproducible. */
static int fake_bytes(bh_rand_t *r, void *p, size_t n)
{
    unsigned char *out = p;
    while (n > 0) {
        uint64_t z = (r->fake_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        size_t k = n < 8 ? n : 8;
        memcpy(out, &z, k);
        out += k;
        n -= k;
    }
    return 0;
}

void rand_fake_init(bh_rand_t *r, uint64_t seed)
{
    r->bytes = fake_bytes;
    r->fake_state = seed;
}

int rand_hex(bh_rand_t *r, char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char b[64];
    if (n > sizeof(b) || rand_bytes(r, b, n))
        return BH_EIO;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

double rand_unit(bh_rand_t *r)
{
    uint64_t v = 0;
    if (rand_bytes(r, &v, sizeof(v)))
        return 0.5;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}
