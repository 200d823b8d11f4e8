/*
 * import.c: `breakhook import`: loads people, break definitions or breaks from
 * an NDJSON or CSV file into a tenant, through the same path as the write API
 * (SPEC §4).
 *
 * Every line becomes what POST /breaks/$batch would make of it: the model's
 * parser validates it (so a CSV cell gets exactly the reasons a JSON body would),
 * and the store applies it. Breaks go in transactions of up to STORE_BATCH_MAX
 * lines through store_breaks_apply, each line in its own savepoint, so a bad line
 * is reported and the others still apply; people and definitions go one store
 * call per line, because a definition can fan out to many breaks and a person's
 * references are checked for uniqueness one by one.
 *
 * The file is streamed: it is read IMPORT_CHUNK bytes at a time and only one
 * line (at most IMPORT_LINE_MAX, as on $batch) plus one window of breaks is ever
 * held, so a file of any size imports in bounded memory.
 *
 * Reports of bad lines are printed in line order. For breaks a window mixes
 * lines the parser refused (known at once) with lines the store refused (known
 * at commit), so the parser's reports wait in the window and both are printed
 * together, by line, when it commits; unlike $batch, a bad line does not cut the
 * transaction short, which keeps a file with many bad lines fast.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/csv.h"
#include "model/model.h"
#include "store/store.h"

#define IMPORT_CHUNK (256u << 10)    /* bytes per read() */
#define IMPORT_LINE_MAX (1u << 20)   /* the longest line or record, as on $batch */
#define IMPORT_FIELDS_MAX 128        /* CSV columns */
#define IMPORT_REPORT_MAX 1024       /* bytes of one line's reasons on stderr */
#define IMPORT_DRAW_MS 100           /* the progress bar is redrawn at most this often */
#define IMPORT_BAR_WIDTH 24

typedef struct import_opts {
    const char *store;
    const char *tenant;
    const char *collection;
    const char *format;
    bool quiet;
} import_opts_t;

static const config_option_t import_options[] = {
    { "tenant", CONFIG_STRING, offsetof(import_opts_t, tenant), "NAME",
      "the tenant to import into (required)", 0, 0 },
    { "collection", CONFIG_STRING, offsetof(import_opts_t, collection), "NAME",
      "breaks (default), people or break-definitions", 0, 0 },
    { "format", CONFIG_STRING, offsetof(import_opts_t, format), "FORMAT",
      "ndjson or csv (default: from the file name's extension)", 0, 0 },
    { "store", CONFIG_STRING, offsetof(import_opts_t, store), "URL",
      "store to use (default " CLI_DEFAULT_STORE ")", 0, 0 },
    { "quiet", CONFIG_BOOL, offsetof(import_opts_t, quiet), NULL,
      "no progress bar (it is only drawn when stderr is a terminal anyway)", 0, 0 },
};
#define N_IMPORT_OPTIONS (sizeof(import_options) / sizeof(import_options[0]))

typedef enum { IMP_BREAKS, IMP_PEOPLE, IMP_DEFINITIONS } imp_coll_t;
typedef enum { FMT_NDJSON, FMT_CSV } imp_fmt_t;

static const char *const coll_names[] = { "breaks", "people", "break-definitions" };
static const char *const coll_singular[] = { "break", "person", "break definition" };

/* ---- CSV columns ------------------------------------------------------------ */

typedef enum { CELL_INT, CELL_BOOL, CELL_STRING, CELL_OP } cell_type_t;

/* A column a header may name, and where its cell goes in the JSON the model
 * reads. A prefix column ("externalReferences.") stands for a family: the rest
 * of the header text is one more key, taken whole (reference names may contain
 * dots). */
typedef struct col_spec {
    const char *name;
    bool prefix;
    cell_type_t type;
    bool required;           /* must be in the header, unless an op column is there */
    const char *path[3];     /* JSON keys, NULL-terminated */
} col_spec_t;

static const col_spec_t break_cols[] = {
    { "id", false, CELL_INT, true, { "id" } },
    { "person.id", false, CELL_INT, true, { "person", "id" } },
    { "breakDefinition.id", false, CELL_INT, true, { "breakDefinition", "id" } },
    { "date", false, CELL_STRING, true, { "date" } },
    { "calculatedDurationInMinutes", false, CELL_INT, false, { "calculatedDurationInMinutes" } },
    { "clockedDurationInMinutes", false, CELL_INT, true, { "clockedDurationInMinutes" } },
    { "startTimeInMinutes", false, CELL_INT, false, { "startTimeInMinutes" } },
    { "endTimeInMinutes", false, CELL_INT, false, { "endTimeInMinutes" } },
    { "isBreakTaken", false, CELL_BOOL, true, { "isBreakTaken" } },
    { "op", false, CELL_OP, false, { NULL } },
    { NULL, false, CELL_INT, false, { NULL } },
};

static const col_spec_t person_cols[] = {
    { "id", false, CELL_INT, true, { "id" } },
    { "externalReferences.", true, CELL_STRING, false, { "externalReferences" } },
    { "op", false, CELL_OP, false, { NULL } },
    { NULL, false, CELL_INT, false, { NULL } },
};

static const col_spec_t definition_cols[] = {
    { "id", false, CELL_INT, true, { "id" } },
    { "name.default", false, CELL_STRING, true, { "name", "default" } },
    { "friendlyName.default", false, CELL_STRING, true, { "friendlyName", "default" } },
    { "paidDurationInMinutes", false, CELL_INT, true, { "paidDurationInMinutes" } },
    { "minimumDurationInMinutes", false, CELL_INT, true, { "minimumDurationInMinutes" } },
    { "maximumDurationInMinutes", false, CELL_INT, true, { "maximumDurationInMinutes" } },
    { "ifNotClockedDurationInMinutes", false, CELL_INT, true,
      { "ifNotClockedDurationInMinutes" } },
    { "hasToBeTakenUninterrupted", false, CELL_BOOL, true, { "hasToBeTakenUninterrupted" } },
    { "earliestStartTimeInMinutes", false, CELL_INT, false, { "earliestStartTimeInMinutes" } },
    { "latestEndTimeInMinutes", false, CELL_INT, false, { "latestEndTimeInMinutes" } },
    { "name.translations.", true, CELL_STRING, false, { "name", "translations" } },
    { "friendlyName.translations.", true, CELL_STRING, false, { "friendlyName", "translations" } },
    { "op", false, CELL_OP, false, { NULL } },
    { NULL, false, CELL_INT, false, { NULL } },
};

static const col_spec_t *const coll_cols[] = { break_cols, person_cols, definition_cols };

/* One column of the file's header. */
typedef struct column {
    const col_spec_t *spec;
    char *header;            /* owned copy of the header cell */
    const char *keys[4];     /* the JSON path: spec->path, then a prefix column's key */
    size_t n_keys;
} column_t;

/* ---- the importer ------------------------------------------------------------ */

/* A parser's refusal of a breaks line, waiting in the window for its turn. */
typedef struct pending_error {
    size_t line;
    size_t off, len;         /* in perr_text */
} pending_error_t;

typedef struct importer {
    imp_coll_t coll;
    imp_fmt_t fmt;
    const char *path;        /* "-" for stdin */
    store_t *store;
    int64_t tenant_id;

    /* Input. */
    int fd;
    char *chunk;             /* IMPORT_CHUNK */
    uint64_t size;           /* 0: unknown (a pipe) */
    uint64_t bytes;          /* read so far */
    int read_errno;

    /* NDJSON: the line being assembled across chunks. */
    buf_t line;
    size_t line_no;          /* lines seen, blank ones included */
    bool skipping;           /* inside a line longer than IMPORT_LINE_MAX */

    /* CSV. */
    csv_t csv;
    bool have_header;
    column_t cols[IMPORT_FIELDS_MAX];
    size_t n_cols;
    ssize_t op_col;          /* -1: no op column */

    /* Breaks: the window of lines for the next transaction. */
    store_break_op_t *ops;   /* STORE_BATCH_MAX */
    size_t *op_line;
    size_t n_ops;
    pending_error_t *perr;   /* STORE_BATCH_MAX */
    size_t n_perr;
    buf_t perr_text;

    /* The record a line parsed into (people and definitions). */
    model_person_t person;
    model_definition_t *def; /* large: on the heap */

    /* Outcome. */
    struct {
        size_t lines, created, replaced, unchanged, deleted, failed, fanout;
    } sum;
    int stop_rc;             /* the store failed (or memory ran out): nothing from */
    size_t stop_line;        /* stop_line on was applied */

    /* Progress. */
    bool progress;
    bool bar_shown;
    int64_t start_ms, drawn_ms;
    buf_t scratch;           /* one report line */
} importer_t;

/* ---- progress and reports ------------------------------------------------------ */

static void bar_clear(importer_t *im)
{
    if (im->bar_shown) {
        fputs("\r\033[K", stderr);
        im->bar_shown = false;
    }
}

static void human_bytes(uint64_t n, char out[32])
{
    if (n < (1u << 20))
        snprintf(out, 32, "%.1f KiB", (double)n / 1024.0);
    else if (n < (1ull << 30))
        snprintf(out, 32, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(out, 32, "%.2f GiB", (double)n / (1024.0 * 1024.0 * 1024.0));
}

/* Redraws the one-line progress bar, at most every IMPORT_DRAW_MS: a terminal
 * that gets a line per chunk would spend more time drawing than we importing. */
static void bar_tick(importer_t *im, bool force)
{
    if (!im->progress)
        return;
    int64_t now = clock_mono_ms(clock_system());
    if (!force && now - im->drawn_ms < IMPORT_DRAW_MS)
        return;
    im->drawn_ms = now;
    double secs = (double)(now - im->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)im->sum.lines / secs : 0;
    char done[32], total[32];
    human_bytes(im->bytes, done);
    fputs("\r", stderr);
    if (im->size) {
        uint64_t b = im->bytes < im->size ? im->bytes : im->size;
        int filled = (int)(b * IMPORT_BAR_WIDTH / im->size);
        char bar[IMPORT_BAR_WIDTH + 1];
        for (int i = 0; i < IMPORT_BAR_WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[IMPORT_BAR_WIDTH] = '\0';
        human_bytes(im->size, total);
        fprintf(stderr, "[%s] %3d%%  %s / %s", bar, (int)(b * 100 / im->size), done, total);
    } else {
        fprintf(stderr, "%s", done);
    }
    fprintf(stderr, "  %zu lines  %.0f lines/s\033[K", im->sum.lines, rate);
    fflush(stderr);
    im->bar_shown = true;
}

/* Prints "line N: reasons" on stderr, above the progress bar. */
static void print_line_report(importer_t *im, size_t line, const char *p, size_t n)
{
    bar_clear(im);
    fprintf(stderr, "line %zu: %.*s\n", line, (int)n, p);
}

/* Joins reasons with "; " into im->scratch, at most IMPORT_REPORT_MAX bytes. */
static void join_reasons(importer_t *im, const char *const *reasons, size_t n)
{
    buf_reset(&im->scratch);
    for (size_t i = 0; i < n; i++) {
        if (i && buf_append_str(&im->scratch, "; "))
            break;
        size_t len = strlen(reasons[i]);
        size_t room = im->scratch.max - im->scratch.len;
        if (buf_append(&im->scratch, reasons[i], len < room ? len : room) || len > room)
            break;
    }
}

/* A line that will not be applied: reported now for people and definitions, and
 * when the window commits for breaks (so reports stay in line order). */
static void line_failed(importer_t *im, size_t line, const char *const *reasons, size_t n)
{
    im->sum.failed++;
    join_reasons(im, reasons, n);
    if (im->coll != IMP_BREAKS) {
        print_line_report(im, line, im->scratch.p, im->scratch.len);
        return;
    }
    pending_error_t *e = &im->perr[im->n_perr++];
    e->line = line;
    e->off = im->perr_text.len;
    /* Room for every report of a window is reserved at start (see importer_init). */
    e->len = buf_append(&im->perr_text, im->scratch.p, im->scratch.len) ? 0 : im->scratch.len;
}

static void line_failed1(importer_t *im, size_t line, const char *reason)
{
    line_failed(im, line, &reason, 1);
}

static void line_failed_errs(importer_t *im, size_t line, const model_errors_t *errs)
{
    const char *reasons[MODEL_REASONS_MAX];
    for (size_t i = 0; i < errs->n; i++)
        reasons[i] = errs->reasons[i];
    if (errs->n == 0)
        reasons[0] = "invalid";
    line_failed(im, line, reasons, errs->n ? errs->n : 1);
}

/* Counts a store outcome, and reports it when the store refused the line. */
static void count_result(importer_t *im, size_t line, int64_t id, const store_write_result_t *r)
{
    if (r->rc) {
        char why[224];
        if (r->reason[0])
            snprintf(why, sizeof(why), "%s", r->reason);
        else if (r->rc == BH_ENOTFOUND)
            snprintf(why, sizeof(why), "id: no %s %lld", coll_singular[im->coll], (long long)id);
        else
            snprintf(why, sizeof(why), "%s", err_str(r->rc));
        im->sum.failed++;
        print_line_report(im, line, why, strlen(why));
        return;
    }
    switch (r->outcome) {
    case STORE_OUT_CREATED: im->sum.created++; break;
    case STORE_OUT_REPLACED: im->sum.replaced++; break;
    case STORE_OUT_DELETED: im->sum.deleted++; break;
    default: im->sum.unchanged++; break;
    }
    im->sum.fanout += r->fanout;
}

/* ---- applying ------------------------------------------------------------------ */

/* Commits the window of breaks and prints its reports, the parser's and the
 * store's merged by line. A store failure leaves the window unapplied: its
 * parser reports are still printed (those lines were bad anyway), the rest is
 * the caller's to say. */
static int window_flush(importer_t *im)
{
    int rc = 0;
    if (im->n_ops)
        rc = store_breaks_apply(im->store, im->tenant_id, im->ops, im->n_ops);
    if (rc) {
        im->stop_rc = rc;
        im->stop_line = im->op_line[0];
        im->n_ops = 0; /* only the parser's reports are printed below */
    }
    size_t i = 0, k = 0;
    while (i < im->n_ops || k < im->n_perr) {
        if (k < im->n_perr && (i == im->n_ops || im->perr[k].line < im->op_line[i])) {
            const pending_error_t *e = &im->perr[k++];
            print_line_report(im, e->line, im->perr_text.p + e->off, e->len);
        } else {
            count_result(im, im->op_line[i], im->ops[i].rec.id, &im->ops[i].res);
            i++;
        }
    }
    im->n_ops = 0;
    im->n_perr = 0;
    buf_reset(&im->perr_text);
    bar_tick(im, false);
    return rc;
}

/* Room for one more line in the window of breaks. */
static int window_room(importer_t *im)
{
    if (im->coll == IMP_BREAKS && im->n_ops + im->n_perr >= STORE_BATCH_MAX)
        return window_flush(im);
    return 0;
}

static int apply_break(importer_t *im, size_t line, bool del, const model_break_t *rec)
{
    store_break_op_t *op = &im->ops[im->n_ops];
    memset(op, 0, sizeof(*op));
    op->del = del;
    op->rec = *rec;
    im->op_line[im->n_ops++] = line;
    return 0;
}

/* People and definitions: one store call per line. A non-zero return from the
 * store is the store failing, not the line: the import stops there. */
static int apply_other(importer_t *im, size_t line, bool del, int64_t id)
{
    store_write_result_t res;
    int rc;
    if (im->coll == IMP_PEOPLE)
        rc = del ? store_person_delete(im->store, im->tenant_id, id, &res)
                 : store_person_put(im->store, im->tenant_id, &im->person, &res);
    else
        rc = del ? store_definition_delete(im->store, im->tenant_id, id, &res)
                 : store_definition_put(im->store, im->tenant_id, im->def, &res);
    if (rc) {
        im->stop_rc = rc;
        im->stop_line = line;
        return rc;
    }
    count_result(im, line, id, &res);
    return 0;
}

/* ---- NDJSON -------------------------------------------------------------------- */

/* The model reports a person's or a definition's fields by their own names;
 * on a line they sit under "data", as a break's do on $batch, so the reasons
 * get the same "data." the $batch parser gives a break's. */
static void prefix_reasons(model_errors_t *errs)
{
    static const char unknown[] = "unknown property '";
    for (size_t i = 0; i < errs->n; i++) {
        char *r = errs->reasons[i];
        char tmp[sizeof(errs->reasons[i]) + 8];
        if (strncmp(r, unknown, sizeof(unknown) - 1) == 0)
            snprintf(tmp, sizeof(tmp), "%sdata.%s", unknown, r + sizeof(unknown) - 1);
        else if (strncmp(r, "body ", 5) == 0)
            snprintf(tmp, sizeof(tmp), "data %s", r + 5);
        else
            snprintf(tmp, sizeof(tmp), "data.%s", r);
        /* Cut to fit on a character boundary: a reason may quote UTF-8 text. */
        size_t n = strlen(tmp);
        if (n >= sizeof(errs->reasons[i])) {
            n = sizeof(errs->reasons[i]) - 1;
            while (n > 0 && ((unsigned char)tmp[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(r, tmp, n);
        r[n] = '\0';
    }
}

static void add_reason(model_errors_t *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_reason(model_errors_t *errs, const char *fmt, ...)
{
    if (errs->n >= MODEL_REASONS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs->reasons[errs->n++], sizeof(errs->reasons[0]), fmt, ap);
    va_end(ap);
}

/* Client text quoted in a reason: printable ASCII only, at most 40 bytes. */
static void quote_text(const char *p, size_t n, char out[48])
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < 40; i++)
        out[k++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    if (n > 40) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* Parses the person or definition in a JSON text into im. */
static int parse_other(importer_t *im, const char *text, size_t n, model_errors_t *errs)
{
    if (im->coll == IMP_PEOPLE)
        return model_person_parse(text, n, 0, &im->person, errs);
    return model_definition_parse(text, n, 0, im->def, errs);
}

/* A line for people or definitions: the $batch envelope, with a person or a
 * definition as "data". A delete line is the same for every collection, so the
 * $batch parser reads it; so does a line that is not a JSON object, for the
 * same wording. */
static int ndjson_other(importer_t *im, slice_t line, bool *del, int64_t *id,
                        model_errors_t *errs)
{
    model_batch_line_t bl;
    errs->n = 0;
    json_error_t e;
    json_t *j = json_loadb(line.p, line.n, JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        if (model_batch_line_parse(line.p, line.n, &bl, errs) == 0)
            add_reason(errs, "line must be a JSON object");
        return BH_EINVAL;
    }
    int rc = BH_EINVAL;
    const json_t *op = json_object_get(j, "op");
    const char *ops = json_string_value(op);
    if (!op) {
        add_reason(errs, "op: is required");
    } else if (!ops) {
        add_reason(errs, "op: must be a string");
    } else if (strcmp(ops, "delete") == 0) {
        rc = model_batch_line_parse(line.p, line.n, &bl, errs);
        *del = true;
        *id = bl.rec.id;
    } else if (strcmp(ops, "upsert") == 0) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            if (strcmp(key, "op") != 0 && strcmp(key, "data") != 0) {
                char q[48];
                quote_text(key, strlen(key), q);
                add_reason(errs, "unknown property '%s'", q);
            }
        }
        const json_t *data = json_object_get(j, "data");
        if (!data) {
            add_reason(errs, "data: is required");
        } else if (!json_is_object(data)) {
            add_reason(errs, "data: must be an object");
        } else if (errs->n == 0) {
            char *text = json_dumps(data, JSON_COMPACT);
            if (!text) {
                add_reason(errs, "out of memory");
            } else {
                rc = parse_other(im, text, strlen(text), errs);
                free(text);
                if (rc)
                    prefix_reasons(errs);
                *del = false;
                *id = im->coll == IMP_PEOPLE ? im->person.id : im->def->id;
            }
        }
    } else {
        char q[48];
        quote_text(ops, json_string_length(op), q);
        add_reason(errs, "op: '%s' is not 'upsert' or 'delete'", q);
    }
    json_decref(j);
    if (rc == 0 && errs->n)
        rc = BH_EINVAL;
    return rc;
}

/* One line of an NDJSON file (without its line end). */
static int ndjson_line(importer_t *im, slice_t line)
{
    if (line.n && line.p[line.n - 1] == '\r')
        line.n--;
    if (slice_trim(line).n == 0)
        return 0; /* blank lines are allowed and not counted, as on $batch */
    int rc = window_room(im);
    if (rc)
        return rc;
    im->sum.lines++;
    model_errors_t errs;
    if (im->coll == IMP_BREAKS) {
        model_batch_line_t bl;
        if (model_batch_line_parse(line.p, line.n, &bl, &errs)) {
            line_failed_errs(im, im->line_no, &errs);
            return 0;
        }
        return apply_break(im, im->line_no, bl.del, &bl.rec);
    }
    bool del = false;
    int64_t id = 0;
    if (ndjson_other(im, line, &del, &id, &errs)) {
        line_failed_errs(im, im->line_no, &errs);
        return 0;
    }
    return apply_other(im, im->line_no, del, id);
}

/* Adds part of a line to the one being assembled. A line longer than any line
 * may be is reported once and dropped up to its end (im->skipping). */
static int ndjson_partial(importer_t *im, const char *p, size_t n)
{
    if (buf_append(&im->line, p, n) == 0)
        return 0;
    int rc = window_room(im);
    if (rc)
        return rc;
    im->line_no++;
    im->sum.lines++;
    buf_reset(&im->line);
    im->skipping = true;
    char why[64];
    snprintf(why, sizeof(why), "the line is longer than %u MiB", IMPORT_LINE_MAX >> 20);
    line_failed1(im, im->line_no, why);
    return 0;
}

static int ndjson_feed(importer_t *im, const char *p, size_t n, bool eof)
{
    size_t off = 0;
    while (off < n) {
        const char *nl = memchr(p + off, '\n', n - off);
        if (!nl) {
            if (!im->skipping)
                return ndjson_partial(im, p + off, n - off);
            break;
        }
        size_t end = (size_t)(nl - p);
        if (im->skipping) {
            im->skipping = false; /* the end of the overlong line */
            off = end + 1;
            continue;
        }
        slice_t line = slice_make(p + off, end - off);
        off = end + 1;
        if (im->line.len) {
            int rc = ndjson_partial(im, line.p, line.n);
            if (rc)
                return rc;
            if (im->skipping) {
                im->skipping = false; /* it ended right here */
                continue;
            }
            line = buf_slice(&im->line);
        }
        im->line_no++;
        int rc = ndjson_line(im, line);
        buf_reset(&im->line);
        if (rc)
            return rc;
    }
    if (eof && im->line.len) {
        /* The last line had no line end. */
        im->line_no++;
        int rc = ndjson_line(im, buf_slice(&im->line));
        buf_reset(&im->line);
        return rc;
    }
    return 0;
}

/* ---- CSV ------------------------------------------------------------------------ */

static bool utf8_ok(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    json_decref(s);
    return s != NULL;
}

/* Reads the header row into im->cols. A header the import cannot follow is a
 * usage error, found before any line is applied. */
static int csv_header(importer_t *im, const csv_record_t *rec)
{
    const col_spec_t *specs = coll_cols[im->coll];
    im->op_col = -1;
    for (size_t i = 0; i < rec->n; i++) {
        slice_t h = slice_trim(rec->fields[i]);
        char q[48];
        quote_text(h.p, h.n, q);
        if (memchr(h.p, '\0', h.n) || !utf8_ok(h.p, h.n))
            return cli_fail(CLI_USAGE, "import: %s: unknown column '%s' (see --help)", im->path, q);
        const col_spec_t *spec = NULL;
        for (const col_spec_t *s = specs; s->name && !spec; s++) {
            size_t len = strlen(s->name);
            if (s->prefix ? h.n > len && memcmp(h.p, s->name, len) == 0
                          : h.n == len && memcmp(h.p, s->name, len) == 0)
                spec = s;
        }
        if (!spec)
            return cli_fail(CLI_USAGE, "import: %s: unknown column '%s' for %s (see --help)",
                            im->path, q, coll_names[im->coll]);
        for (size_t k = 0; k < im->n_cols; k++)
            if (strlen(im->cols[k].header) == h.n && memcmp(im->cols[k].header, h.p, h.n) == 0)
                return cli_fail(CLI_USAGE, "import: %s: column '%s' appears twice", im->path, q);
        column_t *c = &im->cols[im->n_cols];
        c->header = strndup(h.p, h.n);
        if (!c->header) {
            im->stop_rc = BH_ENOMEM;
            im->stop_line = rec->line;
            return BH_ENOMEM;
        }
        im->n_cols++;
        c->spec = spec;
        c->n_keys = 0;
        for (size_t k = 0; k < 3 && spec->path[k]; k++)
            c->keys[c->n_keys++] = spec->path[k];
        if (spec->prefix)
            c->keys[c->n_keys++] = c->header + strlen(spec->name);
        if (spec->type == CELL_OP)
            im->op_col = (ssize_t)i;
    }
    /* With an op column a delete row needs only its id, so only id is required. */
    for (const col_spec_t *s = specs; s->name; s++) {
        if (!s->required || (im->op_col >= 0 && strcmp(s->name, "id") != 0))
            continue;
        bool found = false;
        for (size_t k = 0; k < im->n_cols && !found; k++)
            found = im->cols[k].spec == s;
        if (!found)
            return cli_fail(CLI_USAGE, "import: %s: the header has no column '%s' (see --help)",
                            im->path, s->name);
    }
    im->have_header = true;
    return 0;
}

/* A cell as the JSON value a writer would have sent: a number for an integer
 * column, a boolean for a boolean one. A cell that is not what its column
 * wants stays a string, so that the model's own "must be an integer" names the
 * field. NULL when the cell is not valid UTF-8. */
static json_t *cell_json(cell_type_t type, slice_t v)
{
    if (type == CELL_INT) {
        bool neg = v.n > 1 && v.p[0] == '-';
        slice_t digits = neg ? slice_make(v.p + 1, v.n - 1) : v;
        unsigned long long u;
        if (slice_to_u64(digits, neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX, &u))
            return json_integer(neg ? (json_int_t)(0 - u) : (json_int_t)u);
    } else if (type == CELL_BOOL) {
        if (v.n == 4 && strncasecmp(v.p, "true", 4) == 0)
            return json_true();
        if (v.n == 5 && strncasecmp(v.p, "false", 5) == 0)
            return json_false();
    }
    return json_stringn(v.p, v.n);
}

/* Sets value at the column's path in root, creating the objects on the way.
 * Takes the reference to value. */
static int json_put(json_t *root, const column_t *c, json_t *value)
{
    json_t *o = root;
    for (size_t k = 0; k + 1 < c->n_keys; k++) {
        json_t *next = json_object_get(o, c->keys[k]);
        if (!next) {
            next = json_object();
            if (json_object_set_new(o, c->keys[k], next)) {
                json_decref(value);
                return BH_ENOMEM;
            }
        }
        o = next;
    }
    return json_object_set_new(o, c->keys[c->n_keys - 1], value) ? BH_ENOMEM : 0;
}

/* Builds the record's JSON: the body a PUT would carry. Empty cells are left
 * out, so a required field left empty is "is required", as in JSON. */
static json_t *row_json(importer_t *im, const csv_record_t *rec, model_errors_t *errs)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    for (size_t i = 0; i < im->n_cols; i++) {
        const column_t *c = &im->cols[i];
        slice_t v = rec->fields[i];
        if (c->spec->type == CELL_OP || v.n == 0)
            continue;
        json_t *j = cell_json(c->spec->type, v);
        if (!j) {
            add_reason(errs, "%s: is not valid UTF-8", c->header);
            continue;
        }
        if (json_put(root, c, j)) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

/* One data row. */
static int csv_row(importer_t *im, const csv_record_t *rec)
{
    int rc = window_room(im);
    if (rc)
        return rc;
    im->sum.lines++;
    size_t line = rec->line;
    model_errors_t errs = { .n = 0 };
    if (rec->n != im->n_cols) {
        char why[96];
        snprintf(why, sizeof(why), "the row has %zu field%s, the header %zu", rec->n,
                 rec->n == 1 ? "" : "s", im->n_cols);
        line_failed1(im, line, why);
        return 0;
    }
    bool del = false;
    if (im->op_col >= 0) {
        slice_t op = rec->fields[im->op_col];
        if (op.n == 6 && memcmp(op.p, "delete", 6) == 0) {
            del = true;
        } else if (op.n != 0 && !(op.n == 6 && memcmp(op.p, "upsert", 6) == 0)) {
            char q[48];
            quote_text(op.p, op.n, q);
            add_reason(&errs, "op: '%s' is not 'upsert' or 'delete'", q);
            line_failed_errs(im, line, &errs);
            return 0;
        }
    }
    json_t *root = NULL;
    if (del) {
        /* {"op":"delete","id":…} through the $batch parser: the id is checked the
         * same way whatever the collection. */
        root = json_pack("{s:s}", "op", "delete");
        for (size_t i = 0; root && i < im->n_cols; i++)
            if (!strcmp(im->cols[i].header, "id") && rec->fields[i].n) {
                json_t *v = cell_json(CELL_INT, rec->fields[i]);
                if (!v)
                    add_reason(&errs, "id: is not valid UTF-8");
                else if (json_object_set_new(root, "id", v)) {
                    json_decref(root);
                    root = NULL;
                }
            }
    } else {
        root = row_json(im, rec, &errs);
    }
    if (!root) {
        im->stop_rc = BH_ENOMEM;
        im->stop_line = line;
        return BH_ENOMEM;
    }
    if (errs.n) {
        json_decref(root);
        line_failed_errs(im, line, &errs);
        return 0;
    }
    int prc;
    model_break_t brk;
    int64_t id = 0;
    if (im->coll == IMP_BREAKS && !del) {
        prc = model_break_from_json(root, 0, &brk, &errs);
    } else {
        char *text = json_dumps(root, JSON_COMPACT);
        if (!text) {
            json_decref(root);
            im->stop_rc = BH_ENOMEM;
            im->stop_line = line;
            return BH_ENOMEM;
        }
        if (del) {
            model_batch_line_t bl;
            prc = model_batch_line_parse(text, strlen(text), &bl, &errs);
            brk = bl.rec;
            id = bl.rec.id;
        } else {
            prc = parse_other(im, text, strlen(text), &errs);
            id = im->coll == IMP_PEOPLE ? im->person.id : im->def->id;
        }
        free(text);
    }
    json_decref(root);
    if (prc) {
        line_failed_errs(im, line, &errs);
        return 0;
    }
    if (im->coll == IMP_BREAKS)
        return apply_break(im, line, del, &brk);
    return apply_other(im, line, del, id);
}

static int csv_feed(importer_t *im, const char *p, size_t n, bool eof)
{
    size_t off = 0;
    for (;;) {
        csv_record_t rec;
        size_t used;
        int rc = csv_parse(&im->csv, p + off, n - off, eof, &rec, &used);
        off += used;
        if (rc == CSV_MORE || rc == CSV_END)
            break;
        if (rc < 0) {
            if (!im->have_header)
                return cli_fail(CLI_USAGE, "import: %s: line %zu: %s (in the header)", im->path,
                                csv_error_line(&im->csv), csv_error(&im->csv));
            if ((rc = window_room(im)) != 0)
                return rc;
            im->sum.lines++;
            line_failed1(im, csv_error_line(&im->csv), csv_error(&im->csv));
            continue;
        }
        rc = im->have_header ? csv_row(im, &rec) : csv_header(im, &rec);
        if (rc)
            return rc;
    }
    if (eof && !im->have_header)
        return cli_fail(CLI_USAGE, "import: %s: no header row (see --help)", im->path);
    return 0;
}

/* ---- the command ------------------------------------------------------------------ */

static void print_help(void)
{
    printf(
        "usage: breakhook import --tenant NAME [--collection breaks|people|break-definitions]\n"
        "                        [--format ndjson|csv] [--store URL] [--quiet] FILE\n\n"
        "Loads records into a tenant through the same validation and the same store path\n"
        "as the write API (POST /breaks/$batch, PUT /people/{id}, ...). FILE '-' reads\n"
        "stdin. The format comes from the extension (.ndjson, .jsonl, .csv) unless given.\n"
        "The file is streamed: any size imports in bounded memory. Breaks are applied in\n"
        "transactions of up to %d lines; people and definitions one at a time.\n\n"
        "A bad line is reported on stderr as 'line N: reason; reason' and the others are\n"
        "applied. At the end a summary goes to stdout. On a terminal a progress bar is\n"
        "drawn on stderr (not with --quiet).\n"
        "Exit status: 0 every line applied, 1 some lines failed or the store failed,\n"
        "2 bad usage (unknown option, unknown CSV column, ...).\n\n"
        "NDJSON: one line per record, exactly the $batch line format; for people and\n"
        "break definitions \"data\" is a person or a definition:\n"
        "  {\"op\":\"upsert\",\"data\":{\"id\":1,\"person\":{\"id\":7},\"breakDefinition\":{\"id\":2},\n"
        "    \"date\":\"2024-03-01\",\"clockedDurationInMinutes\":31,\"startTimeInMinutes\":720,\n"
        "    \"endTimeInMinutes\":780,\"isBreakTaken\":true}}\n"
        "  {\"op\":\"delete\",\"id\":1}\n"
        "  {\"op\":\"upsert\",\"data\":{\"id\":7,\"externalReferences\":{\"@employee-number\":\"E-1\"}}}\n\n"
        "CSV (RFC 4180): a header row names the columns; empty cells are left out (an\n"
        "optional field then takes its default, a required one is reported missing).\n"
        "Integers as digits, booleans as true/false. An optional 'op' column (upsert or\n"
        "delete; empty is upsert) allows deletes, which need only the id.\n"
        "  breaks: id, person.id, breakDefinition.id, date, clockedDurationInMinutes,\n"
        "    isBreakTaken, [startTimeInMinutes, endTimeInMinutes] (both empty: taken\n"
        "    from the definition's window), [calculatedDurationInMinutes] (empty:\n"
        "    computed by the server), [op]\n"
        "      id,person.id,breakDefinition.id,date,clockedDurationInMinutes,startTimeInMinutes,endTimeInMinutes,isBreakTaken\n"
        "      1,7,2,2024-03-01,31,720,780,true\n"
        "  people: id, and externalReferences.NAME per reference (empty: no value)\n"
        "      id,externalReferences.@employee-number,externalReferences.HRMID\n"
        "      7,E-1,\"H 42\"\n"
        "  break-definitions: id, name.default, friendlyName.default,\n"
        "    paidDurationInMinutes, minimumDurationInMinutes, maximumDurationInMinutes,\n"
        "    ifNotClockedDurationInMinutes, hasToBeTakenUninterrupted,\n"
        "    [earliestStartTimeInMinutes], [latestEndTimeInMinutes],\n"
        "    [name.translations.LANG], [friendlyName.translations.LANG]\n"
        "      id,name.default,name.translations.nl,friendlyName.default,paidDurationInMinutes,minimumDurationInMinutes,maximumDurationInMinutes,ifNotClockedDurationInMinutes,hasToBeTakenUninterrupted\n"
        "      2,Lunch,Middagpauze,Lunch break,30,15,60,30,false\n\n"
        "options:\n",
        STORE_BATCH_MAX);
    config_print_options(stdout, import_options, N_IMPORT_OPTIONS);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int importer_init(importer_t *im)
{
    im->chunk = malloc(IMPORT_CHUNK);
    im->def = malloc(sizeof(*im->def));
    buf_init(&im->line, IMPORT_LINE_MAX);
    buf_init(&im->scratch, IMPORT_REPORT_MAX);
    /* Every line of a window may be refused by the parser: room for all of them. */
    buf_init(&im->perr_text, (size_t)STORE_BATCH_MAX * IMPORT_REPORT_MAX);
    if (!im->chunk || !im->def)
        return BH_ENOMEM;
    if (im->coll == IMP_BREAKS) {
        im->ops = malloc(STORE_BATCH_MAX * sizeof(*im->ops));
        im->op_line = malloc(STORE_BATCH_MAX * sizeof(*im->op_line));
        im->perr = malloc(STORE_BATCH_MAX * sizeof(*im->perr));
        if (!im->ops || !im->op_line || !im->perr)
            return BH_ENOMEM;
    }
    if (im->fmt == FMT_CSV)
        return csv_init(&im->csv, IMPORT_LINE_MAX, IMPORT_FIELDS_MAX);
    return 0;
}

static void importer_deinit(importer_t *im)
{
    free(im->chunk);
    free(im->def);
    free(im->ops);
    free(im->op_line);
    free(im->perr);
    buf_deinit(&im->line);
    buf_deinit(&im->scratch);
    buf_deinit(&im->perr_text);
    csv_deinit(&im->csv);
    for (size_t i = 0; i < im->n_cols; i++)
        free(im->cols[i].header);
}

/* Reads into the chunk; fills at least min bytes unless the input ends first.
 * Returns the count, or -1 with im->read_errno set. */
static ssize_t read_chunk(importer_t *im, size_t min)
{
    size_t got = 0;
    while (got < IMPORT_CHUNK) {
        ssize_t r = read(im->fd, im->chunk + got, IMPORT_CHUNK - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            im->read_errno = errno;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got >= min)
            break;
    }
    return (ssize_t)got;
}

/* The read loop. Returns 0, or non-zero when the import stopped: a usage error
 * (already printed, CLI_USAGE), a read error or a store failure (in im). */
static int importer_run(importer_t *im)
{
    bool first = true;
    for (;;) {
        /* The first read takes at least 3 bytes, so a UTF-8 byte order mark
         * (which spreadsheets write) is seen whole and dropped. */
        ssize_t got = read_chunk(im, first ? 3 : 1);
        if (got < 0)
            return CLI_FAIL;
        bool eof = got == 0;
        const char *p = im->chunk;
        size_t n = (size_t)got;
        im->bytes += n;
        if (first && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            p += 3;
            n -= 3;
        }
        first = false;
        int rc = im->fmt == FMT_CSV ? csv_feed(im, p, n, eof) : ndjson_feed(im, p, n, eof);
        if (rc)
            return rc;
        bar_tick(im, false);
        if (eof)
            break;
    }
    if (im->coll == IMP_BREAKS)
        return window_flush(im);
    return 0;
}

static int open_input(importer_t *im)
{
    if (strcmp(im->path, "-") == 0) {
        im->fd = STDIN_FILENO;
    } else {
        im->fd = open(im->path, O_RDONLY | O_CLOEXEC);
        if (im->fd < 0)
            return cli_fail(CLI_FAIL, "import: cannot open %s: %s", im->path, strerror(errno));
    }
    struct stat st;
    if (fstat(im->fd, &st) == 0 && S_ISREG(st.st_mode))
        im->size = (uint64_t)st.st_size;
    return 0;
}

static int parse_args(int argc, char **argv, import_opts_t *o, importer_t *im)
{
    const char *pos[2];
    size_t n_pos;
    bool help;
    char err[256];
    if (config_parse(import_options, N_IMPORT_OPTIONS, o, argc, argv, cli_getenv, pos, 2, &n_pos,
                     &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "import: %s", err);
    if (help) {
        print_help();
        return -1;
    }
    if (n_pos != 1)
        return cli_fail(CLI_USAGE, "import: expected one FILE ('-' for stdin; see --help)");
    im->path = pos[0];
    if (!o->tenant || !*o->tenant)
        return cli_fail(CLI_USAGE, "import: --tenant NAME is required");
    size_t c = 0;
    while (c < 3 && strcmp(o->collection, coll_names[c]) != 0)
        c++;
    if (c == 3)
        return cli_fail(CLI_USAGE,
                        "import: --collection '%s' is not breaks, people or break-definitions",
                        o->collection);
    im->coll = (imp_coll_t)c;
    const char *f = o->format;
    if (!f) {
        if (ends_with(im->path, ".ndjson") || ends_with(im->path, ".jsonl"))
            f = "ndjson";
        else if (ends_with(im->path, ".csv"))
            f = "csv";
        else
            return cli_fail(CLI_USAGE, "import: cannot tell the format of %s from its name: "
                            "give --format ndjson or --format csv", im->path);
    }
    if (strcmp(f, "ndjson") == 0 || strcmp(f, "jsonl") == 0)
        im->fmt = FMT_NDJSON;
    else if (strcmp(f, "csv") == 0)
        im->fmt = FMT_CSV;
    else
        return cli_fail(CLI_USAGE, "import: --format '%s' is not ndjson or csv", f);
    return 0;
}

int cli_import(int argc, char **argv)
{
    import_opts_t o = { .store = CLI_DEFAULT_STORE, .collection = "breaks" };
    importer_t *im = calloc(1, sizeof(*im));
    if (!im)
        return cli_fail(CLI_FAIL, "import: out of memory");
    im->fd = -1;
    int code = parse_args(argc, argv, &o, im);
    if (code) {
        free(im);
        return code < 0 ? CLI_OK : code;
    }
    if (importer_init(im)) {
        code = cli_fail(CLI_FAIL, "import: out of memory");
        goto out_deinit;
    }
    if ((code = open_input(im)) != 0)
        goto out_deinit;

    int rc = cli_store_open("import", o.store, 0, NULL, &im->store);
    if (rc) {
        code = rc;
        goto out_close_input;
    }
    store_tenant_t t;
    rc = store_tenant_get(im->store, o.tenant, &t);
    if (rc) {
        code = rc == BH_ENOTFOUND || rc == BH_EINVAL
                   ? cli_fail(CLI_FAIL, "import: no tenant '%s'", o.tenant)
                   : cli_fail(CLI_FAIL, "import: %s", err_str(rc));
        goto out_close_store;
    }
    im->tenant_id = t.id;

    im->progress = !o.quiet && isatty(STDERR_FILENO);
    im->start_ms = clock_mono_ms(clock_system());
    rc = importer_run(im);
    bar_clear(im);
    if (rc == CLI_USAGE) {
        /* The header was refused (and said so) before anything was applied. */
        code = CLI_USAGE;
        goto out_close_store;
    }
    double secs = (double)(clock_mono_ms(clock_system()) - im->start_ms) / 1000.0;
    printf("%s: %zu lines, %zu created, %zu replaced, %zu unchanged, %zu deleted, %zu failed "
           "in %.2f s (%.0f lines/s)\n",
           coll_names[im->coll], im->sum.lines, im->sum.created, im->sum.replaced,
           im->sum.unchanged, im->sum.deleted, im->sum.failed, secs,
           (double)im->sum.lines / (secs > 0.001 ? secs : 0.001));
    if (im->sum.fanout)
        printf("%zu breaks recomputed from the changed definitions\n", im->sum.fanout);
    fflush(stdout);
    if (im->read_errno)
        code = cli_fail(CLI_FAIL, "import: reading %s: %s (lines after %zu were not read)",
                        im->path, strerror(im->read_errno), im->sum.lines);
    else if (im->stop_rc)
        code = cli_fail(CLI_FAIL, "import: %s%s%s: line %zu and the lines after it were not "
                        "applied", im->stop_rc == BH_ENOMEM ? "" : "the store failed (",
                        err_str(im->stop_rc), im->stop_rc == BH_ENOMEM ? "" : ")",
                        im->stop_line);
    else if (im->sum.failed)
        code = cli_fail(CLI_FAIL, "import: %zu of %zu lines failed (reported above)",
                        im->sum.failed, im->sum.lines);
    else
        code = CLI_OK;
out_close_store:
    store_close(im->store);
out_close_input:
    if (im->fd > STDIN_FILENO)
        close(im->fd);
out_deinit:
    importer_deinit(im);
    free(im);
    return code;
}
