/*
 * test_sign_interop.c: our signatures checked by an implementation that is not ours.
 *
 * The Standard Webhooks reference library for Node.js (npm "standardwebhooks", pinned
 * with its dependencies by tests/integration/npm/package-lock.json) verifies
 * deliveries that sign_v1 signed: 20 valid ones with varied bodies (multi-byte UTF-8,
 * escapes, pretty-printed JSON, empty, large) and tampered or replayed ones, and it
 * signs each case itself so the signatures can be compared byte for byte. A
 * consumer who follows docs/CONSUMERS.md with that library gets exactly this.
 *
 * The library is installed once per build directory (<build>/npm-interop, `npm ci`
 * from the lock file, bounded in time) and reused while the lock file is unchanged.
 * Without node and npm the test FAILS, it does not skip: CI installs them
 * (scripts/install-deps.sh), and a silent skip would hide an untested interop.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "delivery/sign.h"
#include "harness.h"

#ifndef SOURCE_DIR
#error "SOURCE_DIR must name the source tree (CMake defines it)"
#endif

#define KEY "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define NPM_SRC SOURCE_DIR "/tests/integration/npm"
#define NPM_TIMEOUT_MS 200000u /* a cold npm cache on a slow link; CTest allows 300 s */
#define NODE_TIMEOUT_MS 60000u
#define N_VALID 20
#define N_BAD 6

/* ---- processes and files ------------------------------------------------------------- */

/* The full path of an executable found on PATH, into out. */
static bool find_in_path(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len && snprintf(out, n, "%.*s/%s", (int)len, path, name) < (int)n &&
            access(out, X_OK) == 0)
            return true;
        path += len + (colon ? 1 : 0);
    }
    return false;
}

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *text = it_read_file(from, &n);
    if (!text)
        fail_msg("cannot read %s", from);
    write_file(to, text, n);
    free(text);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *ta = it_read_file(a, &na), *tb = it_read_file(b, &nb);
    bool same = ta && tb && na == nb && memcmp(ta, tb, na) == 0;
    free(ta);
    free(tb);
    return same;
}

static void path_join(char *out, size_t n, const char *dir, const char *name)
{
    if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
        fail_msg("path too long: %s/%s", dir, name);
}

/* <build>/npm-interop with the library installed; path into dir. */
static void npm_prepare(const char *npm, char *dir, size_t n)
{
    const char *bin = BREAKHOOK_BIN;
    const char *slash = strrchr(bin, '/');
    assert_non_null(slash);
    snprintf(dir, n, "%.*s/npm-interop", (int)(slash - bin), bin);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    char src_lock[512], lock[512], src_pkg[512], pkg[512], marker[512], log[512], js[512];
    char src_js[512];
    path_join(src_lock, sizeof(src_lock), NPM_SRC, "package-lock.json");
    path_join(src_pkg, sizeof(src_pkg), NPM_SRC, "package.json");
    path_join(src_js, sizeof(src_js), NPM_SRC, "verify.js");
    path_join(lock, sizeof(lock), dir, "package-lock.json");
    path_join(pkg, sizeof(pkg), dir, "package.json");
    path_join(marker, sizeof(marker), dir, "node_modules/standardwebhooks/package.json");
    path_join(log, sizeof(log), dir, "npm.log");
    path_join(js, sizeof(js), dir, "verify.js");
    /* The script is copied every run: it is small and may have changed. */
    copy_file(src_js, js);
    if (access(marker, R_OK) == 0 && same_file(src_lock, lock) && same_file(src_pkg, pkg))
        return; /* installed from this very lock file already */
    copy_file(src_pkg, pkg);
    copy_file(src_lock, lock);
    const char *argv[] = { npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", NULL };
    uint64_t t0 = it_now_ms();
    int st = it_cmd_run(argv, dir, log, NPM_TIMEOUT_MS);
    if (st != 0 || access(marker, R_OK) != 0) {
        char *text = it_read_file(log, NULL);
        fprintf(stderr, "---- npm ci output (%s) ----\n%s\n", log, text ? text : "");
        free(text);
        unlink(lock); /* so the next run tries again */
        fail_msg("npm ci in %s failed (status %d after %llu ms): the Standard Webhooks library "
                 "for Node.js could not be installed from the npm registry",
                 dir, st, (unsigned long long)(it_now_ms() - t0));
    }
}

/* ---- the cases ---------------------------------------------------------------------------- */

typedef struct icase {
    char id[64];
    int64_t ts;
    char sig[2 * SIGN_V1_LEN + 8];
    char *body;
    size_t body_len;
    bool want_valid;
    const char *what;
} icase_t;

static char *dup_text(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

static void sign_case(const unsigned char *k, size_t kn, icase_t *c)
{
    assert_int_equal(sign_v1(k, kn, c->id, c->ts, c->body, c->body_len, c->sig), 0);
}

/* Valid bodies of every shape a consumer could trip over. */
static char *valid_body(unsigned i)
{
    static const char *const fixed[] = {
        ("{\"changeType\":\"InsertOrUpdate\",\"data\":{\"changeVersion\":\"0000000000000000002A\","
        "\"id\":42,\"person\":{\"id\":7,\"externalReferences\":{\"@employee-number\":\"E-4821\"}},"
        "\"breakDefinition\":{\"id\":3},\"date\":\"2026-03-02\",\"calculatedDurationInMinutes\":30,"
        "\"clockedDurationInMinutes\":31,\"startTimeInMinutes\":720,\"endTimeInMinutes\":780,"
        "\"isBreakTaken\":true}}"),
        "{\"changeType\":\"Delete\",\"data\":{\"changeVersion\":\"0000000000000000002B\",\"id\":42}}",
        "{\"name\":\"Pause caf\xc3\xa9 \xe2\x98\x95\"}",
        "{\"name\":\"\xe6\x98\xbc\xe4\xbc\x91\xe3\x81\xbf\"}",                     /* 昼休み */
        "{\"name\":\"\xf0\x9f\xa7\x98 \xf0\x9f\x8d\xb1 break\"}",                  /* 4-byte */
        "{\"name\":\"\xd8\xa7\xd8\xb3\xd8\xaa\xd8\xb1\xd8\xa7\xd8\xad\xd8\xa9\"}", /* Arabic */
        "{\"escaped\":\"caf\\u00e9 \\ud83e\\uddd8 \\\"quoted\\\" back\\\\slash\"}",
        "{\n  \"pretty\": true,\n  \"data\": {\n    \"id\": 1\n  }\n}\n",
        "{}",
        "",
        "{\"tabs\":\"a\\tb\",\"nl\":\"a\\nb\",\"nul\":\"\\u0000\"}",
        ("{\"translations\":{\"nl\":\"Middagpauze\",\"fr\":\"Pause d\xc3\xa9jeuner\","
         "\"de\":\"Mittagspause \xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\"}}"),
        "{\"numbers\":[0,-1,1.5e300,9007199254740993,12345678901234567890]}",
        "{\"combining\":\"e\xcc\x81\",\"zwj\":\"\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb\"}",
    };
    if (i < sizeof(fixed) / sizeof(fixed[0]))
        return dup_text(fixed[i]);
    /* Larger bodies, up to 40 KiB, with multi-byte characters throughout. */
    size_t n = (size_t)(i - 13) * 6000;
    char *b = malloc(n + 64);
    assert_non_null(b);
    size_t o = (size_t)snprintf(b, 64, "{\"big\":\"");
    while (o + 2 < n) {
        memcpy(b + o, "\xc3\xa9", 2); /* é */
        o += 2;
        b[o] = (char)('a' + o % 26);
        o++;
    }
    snprintf(b + o, 64, "\"}");
    return b;
}

static void build_cases(icase_t *cases)
{
    unsigned char k[SIGN_KEY_MAX], other[SIGN_KEY_MAX];
    size_t kn, on;
    assert_int_equal(crypto_whsec_parse(KEY, k, sizeof(k), &kn), 0);
    assert_int_equal(crypto_whsec_parse(OTHER_KEY, other, sizeof(other), &on), 0);
    int64_t now = (int64_t)time(NULL);
    for (unsigned i = 0; i < N_VALID; i++) {
        icase_t *c = &cases[i];
        snprintf(c->id, sizeof(c->id), "%08x-0d1b-4c5e-9a8f-%012x", 0x7f1c2a40u + i, i * 7919u);
        c->ts = now - (int64_t)(i % 5) * 30; /* a few seconds to two minutes old */
        c->body = valid_body(i);
        c->body_len = strlen(c->body);
        c->want_valid = true;
        c->what = "valid";
        sign_case(k, kn, c);
        if (i == 5) {
            /* Key rotation: an unknown signature first, ours second. */
            char mine[SIGN_V1_LEN + 1];
            memcpy(mine, c->sig, sizeof(mine));
            snprintf(c->sig, sizeof(c->sig), "v1,bm90IHRoZSByaWdodCBrZXkgYXQgYWxsLCBubz8= %s",
                     mine);
        }
    }
    icase_t *b = &cases[N_VALID];
    for (unsigned i = 0; i < N_BAD; i++) {
        b[i] = cases[i]; /* start from a valid one */
        b[i].body = dup_text(cases[i].body);
        b[i].want_valid = false;
    }
    b[0].what = "body changed after signing";
    b[0].body[10] ^= 0x01;
    b[1].what = "another webhook-id";
    b[1].id[0] = b[1].id[0] == '0' ? '1' : '0';
    b[2].what = "webhook-timestamp moved by one second";
    b[2].ts += 1;
    b[3].what = "signed with another key";
    assert_int_equal(sign_v1(other, on, b[3].id, b[3].ts, b[3].body, b[3].body_len, b[3].sig), 0);
    b[4].what = "one character of the signature changed";
    b[4].sig[10] = b[4].sig[10] == 'A' ? 'B' : 'A';
    b[5].what = "correctly signed, replayed 10 minutes later";
    b[5].ts = now - 600;
    sign_case(k, kn, &b[5]);
}

static char *cases_json(const icase_t *cases, size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "key", json_string(KEY));
    json_object_set_new(root, "cases", arr);
    for (size_t i = 0; i < n; i++) {
        char *b64 = malloc(BASE64_ENCODED_SIZE(cases[i].body_len));
        assert_non_null(b64);
        base64_encode(cases[i].body, cases[i].body_len, b64, false);
        json_t *c = json_object();
        json_object_set_new(c, "id", json_string(cases[i].id));
        json_object_set_new(c, "timestamp", json_integer(cases[i].ts));
        json_object_set_new(c, "signature", json_string(cases[i].sig));
        json_object_set_new(c, "body", json_string(b64));
        json_array_append_new(arr, c);
        free(b64);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(text);
    return text;
}

/* ---- the test ------------------------------------------------------------------------------ */

static void test_node_standardwebhooks_agrees(void **state)
{
    (void)state;
    char node[512], npm[512];
    bool have_node = find_in_path("node", node, sizeof(node));
    bool have_npm = find_in_path("npm", npm, sizeof(npm));
    if (!have_node || !have_npm)
        fail_msg("this test needs %s%s%s on PATH to check our signatures with the Standard "
                 "Webhooks library for Node.js; install them with scripts/install-deps.sh "
                 "(Debian packages nodejs and npm)",
                 have_node ? "" : "node", !have_node && !have_npm ? " and " : "",
                 have_npm ? "" : "npm");
    char dir[512];
    npm_prepare(npm, dir, sizeof(dir));

    icase_t cases[N_VALID + N_BAD];
    memset(cases, 0, sizeof(cases));
    build_cases(cases);
    char *json = cases_json(cases, N_VALID + N_BAD);
    char cases_path[600], out_path[600], js[600];
    path_join(cases_path, sizeof(cases_path), dir, "cases.json");
    path_join(out_path, sizeof(out_path), dir, "verdicts.ndjson");
    path_join(js, sizeof(js), dir, "verify.js");
    write_file(cases_path, json, strlen(json));
    free(json);

    const char *argv[] = { node, js, cases_path, NULL };
    int st = it_cmd_run(argv, dir, out_path, NODE_TIMEOUT_MS);
    char *out = it_read_file(out_path, NULL);
    if (st != 0)
        fail_msg("node verify.js exited with %d:\n%s", st, out ? out : "");
    assert_non_null(out);

    unsigned char k[SIGN_KEY_MAX];
    size_t kn;
    assert_int_equal(crypto_whsec_parse(KEY, k, sizeof(k), &kn), 0);
    char *p = out;
    for (size_t i = 0; i < N_VALID + N_BAD; i++) {
        icase_t *c = &cases[i];
        char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("node printed %zu verdicts, expected %d:\n%s", i, N_VALID + N_BAD, out);
        json_t *v = it_json_parse(p, (size_t)(nl - p));
        if (!v)
            fail_msg("node printed a line that is not JSON: %.*s", (int)(nl - p), p);
        bool valid = json_is_true(json_object_get(v, "valid"));
        if (valid != c->want_valid)
            fail_msg("case %zu (%s): node says %s (%s), expected %s", i, c->what,
                     valid ? "valid" : "invalid",
                     json_string_value(json_object_get(v, "error")) ?: "-",
                     c->want_valid ? "valid" : "invalid");
        /* Our verifier gives the same verdict on the same bytes... */
        char ts[24];
        snprintf(ts, sizeof(ts), "%lld", (long long)c->ts);
        sign_headers_t h = { slice_from_cstr(c->id), slice_from_cstr(ts), slice_from_cstr(c->sig) };
        int ours = sign_verify(k, kn, &h, c->body, c->body_len, (int64_t)time(NULL), 300);
        if ((ours == 0) != c->want_valid)
            fail_msg("case %zu (%s): sign_verify says %s", i, c->what, sign_strerror(ours));
        /* ...and the library signs (id, timestamp, body) exactly as sign_v1 does. */
        char mine[SIGN_V1_LEN + 1];
        assert_int_equal(sign_v1(k, kn, c->id, c->ts, c->body, c->body_len, mine), 0);
        const char *theirs = json_string_value(json_object_get(v, "signature"));
        if (!theirs || strcmp(theirs, mine) != 0)
            fail_msg("case %zu (%s): node signs %s, sign_v1 signs %s", i, c->what,
                     theirs ? theirs : "(nothing)", mine);
        json_decref(v);
        p = nl + 1;
    }
    assert_string_equal(p, "");
    free(out);
    for (size_t i = 0; i < N_VALID + N_BAD; i++)
        free(cases[i].body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_standardwebhooks_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
