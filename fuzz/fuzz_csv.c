/*
 * fuzz_csv.c: the streaming CSV parser on arbitrary bytes, cut into chunks.
 *
 * The first input byte seeds the chunk sizes (and picks small limits when its
 * top bit is set, so the limit paths get exercised); the rest is the CSV. The
 * same bytes are parsed three ways: whole, in chunks of pseudo-random sizes, and
 * in chunks with the last one carrying eof. Besides "no crash, no leak, no
 * undefined behaviour" it checks what the importer relies on:
 *   - the consumed counts: never more than offered; all of it on CSV_MORE and
 *     CSV_END; at least one byte for a record or an error unless at eof; and
 *     the sum is the whole input;
 *   - every record has 1..max_fields fields, at most max_bytes bytes in all,
 *     each slice inside the parser's buffer;
 *   - line numbers never go back and never pass the number of lines;
 *   - the events (records and errors) are identical however the input is cut.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* How a run cuts its input. */
typedef enum { CUT_WHOLE, CUT_CHUNKS, CUT_CHUNKS_EOF_LAST } cut_t;

/* xorshift: deterministic chunk sizes from the seed byte. */
static uint32_t next_size(uint32_t *state, uint32_t max)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return 1 + x % max;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n' ? i == 0 || p[i - 1] != '\r' : p[i] == '\r')
            lines++;
    return lines;
}

/* Writes one event into the transcript with lengths, so that no two different
 * event sequences give the same bytes. */
static void note(buf_t *t, const csv_t *p, int rc, const csv_record_t *rec, size_t *last_line,
                 size_t max_line)
{
    if (rc == CSV_RECORD) {
        CHECK(rec->n >= 1 && rec->n <= p->max_fields);
        CHECK(rec->line >= *last_line && rec->line <= max_line);
        *last_line = rec->line;
        size_t total = 0;
        CHECK(buf_printf(t, "R%zu:%zu", rec->line, rec->n) == 0);
        for (size_t i = 0; i < rec->n; i++) {
            const slice_t *f = &rec->fields[i];
            CHECK(f->p >= p->buf && f->p + f->n <= p->buf + p->max_bytes);
            total += f->n;
            CHECK(buf_printf(t, ":%zu:", f->n) == 0);
            CHECK(buf_append(t, f->p, f->n) == 0);
        }
        CHECK(total <= p->max_bytes);
    } else if (rc < 0) {
        CHECK(rc == BH_EINVAL || rc == BH_ETOOBIG);
        CHECK(csv_error(p)[0] != '\0');
        CHECK(csv_error_line(p) >= 1 && csv_error_line(p) <= max_line);
        CHECK(buf_printf(t, "E%d:%zu:%s", rc, csv_error_line(p), csv_error(p)) == 0);
    }
}

static void run(const char *in, size_t n, uint8_t seed, size_t max_bytes, size_t max_fields,
                cut_t cut, buf_t *t)
{
    csv_t p;
    CHECK(csv_init(&p, max_bytes, max_fields) == 0);
    uint32_t state = 0x9e3779b9u ^ ((uint32_t)seed * 0x01000193u);
    uint32_t max_chunk = 1 + (seed & 0x3f);
    size_t off = 0, last_line = 1, max_line = count_lines(in, n);
    bool ended = false;
    /* Every call uses a byte or yields an event, and an input has at most one
     * event per byte plus a final one: anything longer is a loop. */
    size_t calls = 0, max_calls = 4 * n + 16;
    while (!ended) {
        size_t chunk = cut == CUT_WHOLE ? n - off : next_size(&state, max_chunk);
        if (chunk > n - off)
            chunk = n - off;
        bool eof = off + chunk == n && (cut != CUT_CHUNKS || chunk == 0);
        size_t end = off + chunk;
        do {
            CHECK(++calls <= max_calls);
            csv_record_t rec;
            size_t used = SIZE_MAX;
            int rc = csv_parse(&p, in + off, end - off, eof, &rec, &used);
            CHECK(used <= end - off);
            if (rc == CSV_MORE)
                CHECK(!eof && used == end - off);
            else if (rc == CSV_END)
                CHECK(eof && used == end - off);
            else
                CHECK(rc == CSV_RECORD || rc < 0);
            if ((rc == CSV_RECORD || rc < 0) && !eof)
                CHECK(used >= 1);
            off += used;
            note(t, &p, rc, &rec, &last_line, max_line);
            if (rc == CSV_END)
                ended = true;
            if (rc == CSV_MORE)
                break;
        } while (!ended && (off < end || eof));
    }
    CHECK(off == n);
    CHECK(csv_line(&p) == max_line);
    csv_deinit(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t seed = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    /* Small limits when the seed's top bit is set, so that long records and
     * many fields are errors often; otherwise room for any fuzz input. */
    size_t max_bytes = seed & 0x80 ? 1 + (seed & 0x1f) : 1 << 16;
    size_t max_fields = seed & 0x80 ? 1 + ((seed >> 2) & 0x7) : 1024;
    buf_t whole, chunks, chunks_eof;
    buf_init(&whole, 64u << 20);
    buf_init(&chunks, 64u << 20);
    buf_init(&chunks_eof, 64u << 20);
    run(in, n, seed, max_bytes, max_fields, CUT_WHOLE, &whole);
    run(in, n, seed, max_bytes, max_fields, CUT_CHUNKS, &chunks);
    run(in, n, seed, max_bytes, max_fields, CUT_CHUNKS_EOF_LAST, &chunks_eof);
    CHECK(whole.len == chunks.len && memcmp(buf_cstr(&whole), buf_cstr(&chunks), whole.len) == 0);
    CHECK(whole.len == chunks_eof.len &&
          memcmp(buf_cstr(&whole), buf_cstr(&chunks_eof), whole.len) == 0);
    buf_deinit(&whole);
    buf_deinit(&chunks);
    buf_deinit(&chunks_eof);
    return 0;
}
