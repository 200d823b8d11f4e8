#define _GNU_SOURCE /* dirfd */
#include "core/metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

const uint64_t metrics_buckets_request_ns[] = {
    500000,    1000000,    2500000,    5000000,    10000000,
    25000000,  50000000,   100000000,  250000000,  500000000,
    1000000000, 2500000000, 5000000000, 10000000000,
};
const size_t metrics_buckets_request_n =
    sizeof(metrics_buckets_request_ns) / sizeof(metrics_buckets_request_ns[0]);

void metrics_hist_init(metrics_hist_t *h, const uint64_t *bounds, size_t n_bounds, double unit)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n_bounds < METRICS_MAX_BUCKETS ? n_bounds : METRICS_MAX_BUCKETS;
    h->unit = unit;
}

void metrics_hist_observe(metrics_hist_t *h, uint64_t v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

uint64_t metrics_hist_count(const metrics_hist_t *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

uint64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t metrics_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int metrics_write_family(buf_t *out, const char *name, const char *type, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int write_name(buf_t *out, const char *name, const char *suffix, const char *labels,
                      const char *extra)
{
    bool has = labels && *labels;
    bool more = extra && *extra;
    if (!has && !more)
        return buf_printf(out, "%s%s ", name, suffix);
    return buf_printf(out, "%s%s{%s%s%s} ", name, suffix, has ? labels : "",
                      has && more ? "," : "", more ? extra : "");
}

int metrics_write_u64(buf_t *out, const char *name, const char *labels, uint64_t v)
{
    int rc = write_name(out, name, "", labels, NULL);
    return rc ? rc : buf_printf(out, "%llu\n", (unsigned long long)v);
}

/* The shortest %g text that reads back as v ("0.0005", not 0.00050000000000000001);
 * 17 digits always do. NaN and infinities have the names Prometheus reads. */
static void format_double(double v, char out[32])
{
    if (isnan(v)) {
        snprintf(out, 32, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 32, "%.0f", v); /* "60", not "6e+01" */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static int put_double(buf_t *out, double v)
{
    char text[32];
    format_double(v, text);
    return buf_printf(out, "%s\n", text);
}

int metrics_write_single(buf_t *out, const char *name, const char *type, const char *help,
                         uint64_t v)
{
    int rc = metrics_write_family(out, name, type, help);
    return rc ? rc : metrics_write_u64(out, name, NULL, v);
}

int metrics_write_double(buf_t *out, const char *name, const char *labels, double v)
{
    int rc = write_name(out, name, "", labels, NULL);
    return rc ? rc : put_double(out, v);
}

int metrics_write_hist(buf_t *out, const char *name, const char *labels, const metrics_hist_t *h)
{
    uint64_t cum = 0;
    char le[48];
    int rc = 0;
    for (size_t i = 0; i <= h->n_bounds && rc == 0; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n_bounds) {
            char text[32];
            format_double((double)h->bounds[i] / h->unit, text);
            snprintf(le, sizeof(le), "le=\"%s\"", text);
        } else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        rc = write_name(out, name, "_bucket", labels, le);
        rc = rc ? rc : buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / h->unit;
    rc = rc ? rc : write_name(out, name, "_sum", labels, NULL);
    rc = rc ? rc : put_double(out, sum);
    rc = rc ? rc : write_name(out, name, "_count", labels, NULL);
    return rc ? rc : buf_printf(out, "%llu\n", (unsigned long long)cum);
}

int metrics_label(buf_t *b, const char *key, const char *value)
{
    int rc = buf_printf(b, "%s%s=\"", b->len ? "," : "", key);
    for (const char *p = value; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = buf_append_str(b, "\\\\");
        else if (*p == '"')
            rc = buf_append_str(b, "\\\"");
        else if (*p == '\n')
            rc = buf_append_str(b, "\\n");
        else
            rc = buf_append_char(b, *p);
    }
    return rc ? rc : buf_append_char(b, '"');
}

/* Fields 14 (utime), 15 (stime), 22 (starttime) and 23 (vsize) of /proc/self/stat,
 * counted after the command name, which may itself hold spaces and parentheses. */
static bool read_stat(double *cpu_s, double *start_s, double *vsize)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return false;
    char line[1024];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    if (!p)
        return false;
    unsigned long long utime = 0, stime = 0, start = 0, vs = 0;
    int field = 2; /* p points at the end of field 2 */
    for (char *tok = p + 1; *tok && field < 23;) {
        while (*tok == ' ')
            tok++;
        field++;
        char *end;
        unsigned long long v = strtoull(tok, &end, 10);
        if (field == 14)
            utime = v;
        else if (field == 15)
            stime = v;
        else if (field == 22)
            start = v;
        else if (field == 23)
            vs = v;
        tok = end;
        while (*tok && *tok != ' ')
            tok++;
    }
    if (field < 23)
        return false;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return false;
    *cpu_s = (double)(utime + stime) / hz;
    *vsize = (double)vs;
    /* starttime counts clock ticks since boot; boot time comes from /proc/stat. */
    *start_s = -1;
    f = fopen("/proc/stat", "r");
    if (f) {
        char l[256];
        while (fgets(l, sizeof(l), f)) {
            unsigned long long btime;
            if (sscanf(l, "btime %llu", &btime) == 1) {
                *start_s = (double)btime + (double)start / hz;
                break;
            }
        }
        fclose(f);
    }
    return true;
}

static bool read_rss(double *rss)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return false;
    unsigned long long size, resident;
    int k = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (k != 2)
        return false;
    *rss = (double)resident * (double)sysconf(_SC_PAGESIZE);
    return true;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) == own)
            continue; /* the listing's own descriptor */
        n++;
    }
    closedir(d);
    return n;
}

int metrics_write_process(buf_t *out)
{
    int rc = 0;
    double cpu, start, vsize, rss;
    if (read_rss(&rss)) {
        rc = metrics_write_family(out, "process_resident_memory_bytes", "gauge",
                                  "Resident memory size in bytes.");
        rc = rc ? rc : metrics_write_double(out, "process_resident_memory_bytes", NULL, rss);
    }
    if (rc == 0 && read_stat(&cpu, &start, &vsize)) {
        rc = metrics_write_family(out, "process_virtual_memory_bytes", "gauge",
                                  "Virtual memory size in bytes.");
        rc = rc ? rc : metrics_write_double(out, "process_virtual_memory_bytes", NULL, vsize);
        rc = rc ? rc : metrics_write_family(out, "process_cpu_seconds_total", "counter",
                                            "Total user and system CPU time spent in seconds.");
        rc = rc ? rc : metrics_write_double(out, "process_cpu_seconds_total", NULL, cpu);
        if (start >= 0) {
            rc = rc ? rc : metrics_write_family(out, "process_start_time_seconds", "gauge",
                                                "Start time of the process since the Unix "
                                                "epoch in seconds.");
            rc = rc ? rc : metrics_write_double(out, "process_start_time_seconds", NULL, start);
        }
    }
    long fds = count_fds();
    if (rc == 0 && fds >= 0) {
        rc = metrics_write_family(out, "process_open_fds", "gauge",
                                  "Number of open file descriptors.");
        rc = rc ? rc : metrics_write_u64(out, "process_open_fds", NULL, (uint64_t)fds);
    }
    struct rlimit rl;
    if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rc = metrics_write_family(out, "process_max_fds", "gauge",
                                  "Maximum number of open file descriptors.");
        rc = rc ? rc : metrics_write_double(out, "process_max_fds", NULL,
                                            rl.rlim_cur == RLIM_INFINITY ? INFINITY
                                                                         : (double)rl.rlim_cur);
    }
    return rc;
}
