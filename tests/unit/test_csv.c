/*
 * test_csv.c: the streaming RFC 4180 parser.
 *
 * Every test describes its input and the expected events as one transcript
 * string ("R1[a|b]" for a record on line 1 with fields a and b, "E3:..." for an
 * error on line 3), then checks that the transcript is the same however the
 * input is cut into chunks: whole, split once at every offset, split twice at
 * every pair of offsets, and one byte at a time. The parser keeps its state
 * between calls, so any difference between those is a bug in a boundary case
 * (a chunk ending between the two quotes of an escape, or between CR and LF).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/csv.h"

#define BIG 4096

/* Appends the transcript of one event. Field bytes below 0x20 are shown as \n,
 * \r or \xNN so a transcript is one readable line. */
static void note_record(buf_t *t, const csv_record_t *rec)
{
    assert_true(rec->n >= 1);
    assert_int_equal(buf_printf(t, "R%zu[", rec->line), 0);
    for (size_t i = 0; i < rec->n; i++) {
        if (i)
            assert_int_equal(buf_append_char(t, '|'), 0);
        for (size_t k = 0; k < rec->fields[i].n; k++) {
            unsigned char c = (unsigned char)rec->fields[i].p[k];
            int rc;
            if (c == '\n')
                rc = buf_append_str(t, "\\n");
            else if (c == '\r')
                rc = buf_append_str(t, "\\r");
            else if (c < 0x20)
                rc = buf_printf(t, "\\x%02x", c);
            else
                rc = buf_append_char(t, (char)c);
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(buf_append_str(t, "]"), 0);
}

static void note_error(buf_t *t, const csv_t *p, int rc)
{
    assert_true(rc == BH_EINVAL || rc == BH_ETOOBIG);
    assert_int_equal(buf_printf(t, "E%zu:%s:%s", csv_error_line(p),
                                rc == BH_EINVAL ? "syntax" : "limit", csv_error(p)), 0);
}

/* Handles one csv_parse result; returns true when the input is exhausted. */
static bool note(buf_t *t, const csv_t *p, int rc, const csv_record_t *rec)
{
    if (rc == CSV_RECORD)
        note_record(t, rec);
    else if (rc < 0)
        note_error(t, p, rc);
    else if (rc == CSV_END)
        return true;
    return false;
}

/* Feeds in[0..n) cut at the offsets in cuts (ascending, each in 0..n) and returns
 * the transcript (caller frees). Checks the consumed counts on every call. When
 * eof_with_last is set, the last chunk goes with eof=true instead of an empty
 * final call. */
static char *run_cuts(const char *in, size_t n, const size_t *cuts, size_t n_cuts,
                      size_t max_bytes, size_t max_fields, bool eof_with_last)
{
    csv_t p;
    assert_int_equal(csv_init(&p, max_bytes, max_fields), 0);
    buf_t t;
    buf_init(&t, 1 << 20);
    assert_int_equal(buf_append_str(&t, ""), 0);
    size_t a = 0;
    bool ended = false;
    for (size_t c = 0; c <= n_cuts && !ended; c++) {
        size_t b = c < n_cuts ? cuts[c] : n;
        bool eof = c == n_cuts && eof_with_last;
        while (a < b || eof) {
            csv_record_t rec;
            size_t used = SIZE_MAX;
            int rc = csv_parse(&p, in + a, b - a, eof, &rec, &used);
            assert_true(used <= b - a);
            if (rc == CSV_MORE) {
                assert_false(eof);
                assert_int_equal(used, b - a);
            }
            if (rc == CSV_END) {
                assert_true(eof);
                assert_int_equal(used, b - a);
            }
            if (rc == CSV_RECORD || rc < 0)
                assert_true(used >= 1 || eof);
            a += used;
            if (note(&t, &p, rc, &rec)) {
                ended = true;
                break;
            }
        }
    }
    /* The input ends: flush what is left with empty calls. */
    for (int guard = 0; !ended; guard++) {
        assert_true(guard < 8);
        csv_record_t rec;
        size_t used = SIZE_MAX;
        int rc = csv_parse(&p, "", 0, true, &rec, &used);
        assert_int_equal(used, 0);
        assert_int_not_equal(rc, CSV_MORE);
        ended = note(&t, &p, rc, &rec);
    }
    assert_int_equal(a, n);
    /* After the end, the end again. */
    csv_record_t rec;
    size_t used;
    assert_int_equal(csv_parse(&p, "", 0, true, &rec, &used), CSV_END);
    csv_deinit(&p);
    char *s = strdup(buf_cstr(&t));
    buf_deinit(&t);
    assert_non_null(s);
    return s;
}

/* Checks that every way of cutting in gives want. Pairs of cuts only for short
 * inputs, to keep the test quick. */
static void check_limits(const char *in, size_t max_bytes, size_t max_fields, const char *want)
{
    size_t n = strlen(in);
    char *got = run_cuts(in, n, NULL, 0, max_bytes, max_fields, false);
    assert_string_equal(got, want);
    free(got);
    got = run_cuts(in, n, NULL, 0, max_bytes, max_fields, true);
    assert_string_equal(got, want);
    free(got);
    for (size_t k = 0; k <= n; k++) {
        for (int eof_last = 0; eof_last < 2; eof_last++) {
            got = run_cuts(in, n, &k, 1, max_bytes, max_fields, eof_last);
            if (strcmp(got, want) != 0)
                fail_msg("cut at %zu (eof with last %d):\n got  %s\n want %s", k, eof_last, got,
                         want);
            free(got);
        }
    }
    if (n <= 80) {
        for (size_t i = 0; i <= n; i++) {
            for (size_t k = i; k <= n; k++) {
                size_t cuts[2] = { i, k };
                got = run_cuts(in, n, cuts, 2, max_bytes, max_fields, false);
                if (strcmp(got, want) != 0)
                    fail_msg("cuts at %zu and %zu:\n got  %s\n want %s", i, k, got, want);
                free(got);
            }
        }
    }
    size_t *every = malloc((n + 1) * sizeof(*every));
    assert_non_null(every);
    for (size_t k = 0; k < n; k++)
        every[k] = k + 1;
    got = run_cuts(in, n, every, n, max_bytes, max_fields, false);
    assert_string_equal(got, want);
    free(got);
    free(every);
}

static void check(const char *in, const char *want)
{
    check_limits(in, BIG, 64, want);
}

static void test_plain(void **state)
{
    (void)state;
    check("a,b,c\n1,2,3\n", "R1[a|b|c]R2[1|2|3]");
    check("id\n7\n", "R1[id]R2[7]");
    check("one", "R1[one]");
    check("a,b\nc,d", "R1[a|b]R2[c|d]");
    check("", "");
    check(" a , b \n", "R1[ a | b ]"); /* spaces are data */
}

static void test_quoting_and_escapes(void **state)
{
    (void)state;
    check("\"a,b\",\"c\"\"d\"\n", "R1[a,b|c\"d]");
    check("\"\"\"\"\n", "R1[\"]");
    check("\"\"\"a\"\"\",x\n", "R1[\"a\"|x]");
    check("\"\"\n", "R1[]");
    check("\"\",\"\"", "R1[|]");
    check("x,\"\"\"\"\"\"\n", "R1[x|\"\"]");
    check("\"tab\there\",\xc3\xa9t\xc3\xa9\n", "R1[tab\\x09here|\xc3\xa9t\xc3\xa9]");
}

static void test_embedded_newlines(void **state)
{
    (void)state;
    check("\"x\ny\",z\nnext\n", "R1[x\\ny|z]R3[next]");
    check("\"a\r\nb\"\r\nc\r\n", "R1[a\\r\\nb]R3[c]");
    check("\"\n\n\n\"\nq", "R1[\\n\\n\\n]R5[q]");
    check("a,\"1\n2\n3\",b\nc\n", "R1[a|1\\n2\\n3|b]R4[c]");
}

static void test_line_ends(void **state)
{
    (void)state;
    check("a,b\r\nc,d\r\n", "R1[a|b]R2[c|d]");
    check("a\rb\rc", "R1[a]R2[b]R3[c]");
    check("a\r\n\r\nb\n\nc\r\rd\n", "R1[a]R3[b]R5[c]R7[d]");
    check("a\r\r\nb", "R1[a]R3[b]");
    check("\"q\"\r\n", "R1[q]");
}

static void test_empty_fields_and_blank_lines(void **state)
{
    (void)state;
    check(",,\n", "R1[||]");
    check("a,\n", "R1[a|]");
    check(",a", "R1[|a]");
    check("\n\na\n\r\n\nb", "R3[a]R6[b]");
    check("\n\n\n", "");
    check("\r\n\r\n", "");
}

static void test_limits(void **state)
{
    (void)state;
    /* max_bytes counts the raw bytes of a record, quotes included, line end not. */
    check_limits("abcd\nxy\n", 4, 8, "R1[abcd]R2[xy]");
    check_limits("abcde\nxy\n", 4, 8, "E1:limit:the record is longer than 4 bytes"
                                      "R2[xy]");
    check_limits("\"ab\"\n", 4, 8, "R1[ab]");
    check_limits("\"abc\"\nz", 4, 8, "E1:limit:the record is longer than 4 bytes"
                                     "R2[z]");
    /* An overlong record with a quoted line end is dropped up to its real end. */
    check_limits("\"abcdef\nghi\"\nok\n", 4, 8, "E1:limit:the record is longer than 4 bytes"
                                                "R3[ok]");
    check_limits("a,b,c\n", 16, 3, "R1[a|b|c]");
    check_limits("a,b,c,d\nx,y\n", 16, 3, "E1:limit:more than 3 fields"
                                          "R2[x|y]");
    check_limits(",,,\n,\n", 16, 3, "E1:limit:more than 3 fields"
                                    "R2[|]");
    check_limits("a,b,\"c\nd\",e\nnext\n", 64, 2, "E1:limit:more than 2 fields"
                                                  "R3[next]");
    check_limits("x\n1,2\n", 64, 1, "R1[x]E2:limit:more than 1 fields");
    check_limits("a", 1, 1, "R1[a]");
}

static void test_errors_with_lines(void **state)
{
    (void)state;
    const char *stray = "a '\"' inside an unquoted field (quote the whole field and double "
                        "the quote)";
    char want[512];
    snprintf(want, sizeof(want), "R1[h]E2:syntax:%sR3[ok]", stray);
    check("h\nab\"c,d\nok\n", want);
    snprintf(want, sizeof(want), "E1:syntax:%sR2[x]", stray);
    check("a\"\"b\nx\n", want);
    check("\"ab\"c,d\nok\n", "E1:syntax:'c' after the closing quote of a field (only ',' or a "
                             "line end may follow)R2[ok]");
    check("\"x\ny\" \nok", "E2:syntax:' ' after the closing quote of a field (only ',' or a "
                          "line end may follow)R3[ok]");
    check("a\n\"abc\ndef", "R1[a]E2:syntax:a quoted field is not closed before the end of "
                           "the input");
    check("a\n\n1,\"2\n", "R1[a]E3:syntax:a quoted field is not closed before the end of "
                          "the input");
    /* A record dropped after an error does not report a second error. */
    snprintf(want, sizeof(want), "E1:syntax:%s", stray);
    check("a\"b,\"c", want);
    /* An error after a closing quote is shown printable. */
    check("\"a\"\x01\n", "E1:syntax:'?' after the closing quote of a field (only ',' or a "
                         "line end may follow)");
}

static void test_init(void **state)
{
    (void)state;
    csv_t p;
    assert_int_equal(csv_init(&p, 0, 1), BH_EINVAL);
    csv_deinit(&p);
    assert_int_equal(csv_init(&p, 1, 0), BH_EINVAL);
    csv_deinit(&p);
    assert_int_equal(csv_init(&p, 10, 2), 0);
    assert_int_equal(csv_line(&p), 1);
    csv_deinit(&p);
    csv_deinit(&p); /* twice is harmless */
}

/* A record's slices stay valid until the next call, and the buffer is reused
 * afterwards (nothing accumulates). */
static void test_record_lifetime(void **state)
{
    (void)state;
    csv_t p;
    assert_int_equal(csv_init(&p, 8, 4), 0);
    const char *in = "abcdefgh\nabcdefgh\n";
    size_t off = 0, used;
    csv_record_t rec;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(csv_parse(&p, in + off, strlen(in) - off, false, &rec, &used),
                         CSV_RECORD);
        off += used;
        assert_int_equal(rec.n, 1);
        assert_int_equal(rec.fields[0].n, 8);
        assert_memory_equal(rec.fields[0].p, "abcdefgh", 8);
    }
    assert_int_equal(off, strlen(in));
    assert_int_equal(csv_line(&p), 3);
    assert_int_equal(csv_parse(&p, "", 0, true, &rec, &used), CSV_END);
    csv_deinit(&p);
}

/* A realistic input that mixes everything, at every cut. */
static void test_mixed_every_cut(void **state)
{
    (void)state;
    const char *in = "id,name,note\r\n"
                     "1,\"Smith, J\",\"said \"\"hi\"\"\"\r\n"
                     "2,,\"two\r\nlines\"\r\n"
                     "\r\n"
                     "3,x\"y,z\r\n"
                     "4,\"a\"\"\",\"\"\n"
                     "5,\"open";
    const char *want = "R1[id|name|note]"
                       "R2[1|Smith, J|said \"hi\"]"
                       "R3[2||two\\r\\nlines]"
                       "E6:syntax:a '\"' inside an unquoted field (quote the whole field and "
                       "double the quote)"
                       "R7[4|a\"|]"
                       "E8:syntax:a quoted field is not closed before the end of the input";
    check(in, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_quoting_and_escapes),
        cmocka_unit_test(test_embedded_newlines),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_empty_fields_and_blank_lines),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_record_lifetime),
        cmocka_unit_test(test_mixed_every_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
