/*
 * harness.c: the integration-test harness (see harness.h).
 *
 * Child processes are tracked in a small table so that whatever happens to a test
 * (a failed assertion longjmps out of it) they are killed when the test program
 * exits, and PR_SET_PDEATHSIG kills them if the test program itself dies.
 */
#define _GNU_SOURCE /* mkdtemp, nftw, strcasestr, pipe2 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#ifndef BREAKHOOK_BIN
#error "BREAKHOOK_BIN must name the breakhook binary (CMake defines it)"
#endif

extern char **environ;

#define MAX_ARGS 96
#define MAX_HEAD (1u << 20)        /* a response head larger than this is malformed */
#define MAX_BUFFERED (64u << 20)   /* bytes a connection may buffer */

static char last_error[512];

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

const char *it_last_error(void)
{
    return last_error;
}

uint64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void it_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

uint64_t it_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

bool it_wait_until(bool (*check)(void *arg), void *arg, unsigned timeout_ms, unsigned poll_ms)
{
    uint64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        if (check(arg))
            return true;
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(poll_ms);
    }
}

static unsigned remaining_ms(uint64_t deadline)
{
    uint64_t now = it_now_ms();
    return now >= deadline ? 0 : (unsigned)(deadline - now);
}

/* ---- files -------------------------------------------------------------------- */

int it_tmpdir_new(char *out, size_t n)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if (snprintf(out, n, "%s/breakhook-it-XXXXXX", base) >= (int)n) {
        set_error("temporary directory name too long");
        return -1;
    }
    if (!mkdtemp(out)) {
        set_error("mkdtemp %s: %s", out, strerror(errno));
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void it_rmtree(const char *path)
{
    if (!path || !*path)
        return;
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *it_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        if (cap - n < 2) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    if (!p)
        return NULL;
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* ---- child processes ------------------------------------------------------------- */

#define MAX_CHILDREN 32
static pid_t children[MAX_CHILDREN];
static bool atexit_set;

static void kill_children(void)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
}

static void child_track(pid_t pid)
{
    if (!atexit_set) {
        atexit(kill_children);
        atexit_set = true;
    }
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    }
}

static void child_untrack(pid_t pid)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -2;
}

/* Waits up to timeout_ms for pid; returns the decoded status, or -1 (still running). */
static int wait_bounded(pid_t pid, unsigned timeout_ms)
{
    uint64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return decode_status(st);
        if (r < 0 && errno != EINTR)
            return -2;
        if (it_now_ms() >= deadline)
            return -1;
        it_sleep_ms(5);
    }
}

/* In the child, after fork: dies with the parent, drops every BREAKHOOK_* variable of
 * the test's environment, applies env. */
static void child_prepare(pid_t parent, const char *const *env)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    signal(SIGPIPE, SIG_DFL);
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "BREAKHOOK_", 10) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                    break;
                }
            }
        }
        if (!name[0])
            break;
        unsetenv(name);
    }
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq) {
            char name[256];
            size_t n = (size_t)(eq - env[i]);
            if (n >= sizeof(name))
                continue;
            memcpy(name, env[i], n);
            name[n] = '\0';
            setenv(name, eq + 1, 1);
        } else {
            unsetenv(env[i]);
        }
    }
}

/* Forks and execs argv in s->dir (stdin /dev/null, stdout to out_path, stderr to
 * err_path), then waits (bounded) for s->port_path to hold a whole port. On failure
 * the child is killed, its output printed, and -1 returned. */
static int spawn_listening(it_server_t *s, const char *const *argv, const char *const *env,
                           const char *out_path, const char *err_path, const char *what)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        set_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child_prepare(parent, env);
        if (chdir(s->dir) < 0)
            _exit(127);
        int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(BREAKHOOK_BIN, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    child_track(pid);

    uint64_t deadline = it_now_ms() + IT_START_TIMEOUT_MS;
    for (;;) {
        char *text = it_read_file(s->port_path, NULL);
        if (text) {
            char *end;
            long port = strtol(text, &end, 10);
            bool whole = end != text && *end == '\n';
            free(text);
            if (whole && port > 0 && port < 65536) {
                s->port = (int)port;
                return 0;
            }
        }
        int st = wait_bounded(pid, 0);
        if (st != -1) {
            child_untrack(pid);
            s->pid = 0;
            s->status = st;
            set_error("the %s exited with status %d before listening", what, st);
            it_server_dump(s);
            return -1;
        }
        if (it_now_ms() >= deadline)
            break;
        it_sleep_ms(10);
    }
    set_error("the %s did not write its port file within %d ms", what, IT_START_TIMEOUT_MS);
    it_server_kill9(s);
    it_server_dump(s);
    return -1;
}

bool it_store_pg(void)
{
    const char *pg = getenv("BREAKHOOK_TEST_PG_URL");
    return pg && *pg;
}

int it_store_url_make(it_server_t *s)
{
    const char *pg = getenv("BREAKHOOK_TEST_PG_URL");
    if (!pg || !*pg) {
        snprintf(s->store_url, sizeof(s->store_url), "sqlite:%s", s->db_path);
        return 0;
    }
    /* postgres://user@host:port/db?params -> the same with db replaced. */
    const char *auth = strstr(pg, "://");
    const char *slash = auth ? strchr(auth + 3, '/') : NULL;
    const char *q = strchr(pg, '?');
    if (!slash || (q && q < slash)) {
        set_error("BREAKHOOK_TEST_PG_URL '%s' names no database (postgres://…/DB)", pg);
        return -1;
    }
    /* The directory's random suffix, in hex: unique like the directory, and a valid
     * lower-case name (mapping its letters instead made names collide). */
    const char *base = strrchr(s->dir, '/');
    base = base ? base + 1 : s->dir;
    const char *dash = strrchr(base, '-');
    const char *suffix = dash ? dash + 1 : base;
    char db[64] = "it_";
    size_t o = 3;
    for (const char *c = suffix; *c && o + 2 < sizeof(db); c++)
        o += (size_t)snprintf(db + o, sizeof(db) - o, "%02x", (unsigned char)*c);
    char sql[128], log[400];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    snprintf(log, sizeof(log), "%s/createdb.log", s->dir);
    const char *const argv[] = { "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg, "-c", sql,
                                 NULL };
    if (it_cmd_run(argv, s->dir, log, 30000) != 0) {
        set_error("psql could not create database %s in %s (see %s)", db, pg, log);
        return -1;
    }
    snprintf(s->store_url, sizeof(s->store_url), "%.*s/%s%s", (int)(slash - pg), pg, db,
             q ? q : "");
    return 0;
}

int it_server_start(it_server_t *s, const it_server_opts_t *opts)
{
    static const it_server_opts_t none = { 0 };
    if (!opts)
        opts = &none;
    memset(s, 0, sizeof(*s));
    if (it_tmpdir_new(s->dir, sizeof(s->dir)))
        return -1;
    snprintf(s->port_path, sizeof(s->port_path), "%s/port", s->dir);
    snprintf(s->db_path, sizeof(s->db_path), "%s/breakhook.db", s->dir);
    snprintf(s->log_path, sizeof(s->log_path), "%s/server.log", s->dir);
    snprintf(s->output_path, sizeof(s->output_path), "%s/output.log", s->dir);
    snprintf(s->metrics_port_path, sizeof(s->metrics_port_path), "%s/metrics-port", s->dir);
    if (it_store_url_make(s))
        return -1;
    const char *store = s->store_url;

    const char *argv[MAX_ARGS];
    size_t n = 0;
    argv[n++] = BREAKHOOK_BIN;
    argv[n++] = "serve";
    if (!opts->no_listen) {
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
    }
    argv[n++] = "--port-file";
    argv[n++] = s->port_path;
    /* Never the default 9464: tests run side by side. */
    argv[n++] = "--metrics-listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--metrics-port-file";
    argv[n++] = s->metrics_port_path;
    argv[n++] = "--store";
    argv[n++] = store;
    if (!opts->no_log_file) {
        argv[n++] = "--log-file";
        argv[n++] = s->log_path;
    }
    for (size_t i = 0; opts->args && opts->args[i]; i++) {
        if (n + 1 >= MAX_ARGS) {
            set_error("too many server arguments");
            return -1;
        }
        argv[n++] = opts->args[i];
    }
    argv[n] = NULL;
    if (spawn_listening(s, argv, opts->env, s->output_path, s->output_path, "server"))
        return -1;
    /* Written before the API's port file (absent with --metrics-listen off). */
    char *m = it_read_file(s->metrics_port_path, NULL);
    s->metrics_port = m ? (int)strtol(m, NULL, 10) : 0;
    free(m);
    return 0;
}

int it_sink_start(it_server_t *s, const char *dir, const char *const *args)
{
    char keep[256] = "";
    if (dir)
        snprintf(keep, sizeof(keep), "%s", dir);
    memset(s, 0, sizeof(*s));
    if (keep[0])
        snprintf(s->dir, sizeof(s->dir), "%s", keep);
    else if (it_tmpdir_new(s->dir, sizeof(s->dir)))
        return -1;
    snprintf(s->port_path, sizeof(s->port_path), "%s/port", s->dir);
    snprintf(s->output_path, sizeof(s->output_path), "%s/stdout.log", s->dir);
    snprintf(s->log_path, sizeof(s->log_path), "%s/stderr.log", s->dir);
    unlink(s->port_path);
    unlink(s->output_path);
    unlink(s->log_path);
    const char *argv[MAX_ARGS] = { BREAKHOOK_BIN, "sink", "--listen", "127.0.0.1:0",
                                   "--port-file", s->port_path };
    size_t n = 6;
    for (size_t i = 0; args && args[i]; i++) {
        if (n + 1 >= MAX_ARGS) {
            set_error("too many sink arguments");
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return spawn_listening(s, argv, NULL, s->output_path, s->log_path, "sink");
}

int it_server_stop(it_server_t *s, unsigned timeout_ms)
{
    if (s->pid <= 0)
        return s->status;
    if (timeout_ms == 0)
        timeout_ms = IT_STOP_TIMEOUT_MS;
    kill(s->pid, SIGTERM);
    int st = wait_bounded(s->pid, timeout_ms);
    if (st == -1) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        st = IT_STOP_KILLED;
        set_error("the server did not exit within %u ms of SIGTERM", timeout_ms);
    }
    child_untrack(s->pid);
    s->pid = 0;
    s->status = st;
    return st;
}

void it_server_kill9(it_server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    int st;
    if (waitpid(s->pid, &st, 0) == s->pid)
        s->status = decode_status(st);
    child_untrack(s->pid);
    s->pid = 0;
}

bool it_server_running(it_server_t *s)
{
    if (s->pid <= 0)
        return false;
    int st = wait_bounded(s->pid, 0);
    if (st == -1)
        return true;
    child_untrack(s->pid);
    s->pid = 0;
    s->status = st;
    return false;
}

int it_server_stop_clean(it_server_t *s)
{
    bool was_running = it_server_running(s);
    int st = it_server_stop(s, 0);
    if (was_running && st == 0)
        return 0;
    fprintf(stderr, "teardown: the server in %s %s with status %d\n", s->dir,
            was_running ? "exited" : "had already exited", st);
    it_server_dump(s);
    return -1;
}

void it_server_cleanup(it_server_t *s)
{
    it_server_kill9(s);
    it_rmtree(s->dir);
    s->dir[0] = '\0';
}

static void dump_tail(const char *title, const char *path, size_t max)
{
    size_t n;
    char *text = it_read_file(path, &n);
    if (!text)
        return;
    const char *p = n > max ? text + n - max : text;
    fprintf(stderr, "---- %s (%s)%s ----\n%s\n", title, path, n > max ? ", tail" : "", p);
    free(text);
}

void it_server_dump(const it_server_t *s)
{
    dump_tail("server output", s->output_path, 8192);
    dump_tail("server log", s->log_path, 4096);
}

/* ---- running the CLI ---------------------------------------------------------------- */

static int append_bytes(char **p, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*cap - *len < n + 1) {
        size_t c = *cap ? *cap : 4096;
        while (c - *len < n + 1)
            c *= 2;
        char *q = realloc(*p, c);
        if (!q)
            return -1;
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, src, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}

int it_run(const char *const *args, const it_run_opts_t *opts, it_run_result_t *r)
{
    /* A child that exits before reading its stdin must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    static const it_run_opts_t none = { 0 };
    if (!opts)
        opts = &none;
    memset(r, 0, sizeof(*r));
    const char *argv[MAX_ARGS];
    size_t n = 0;
    argv[n++] = BREAKHOOK_BIN;
    for (size_t i = 0; args && args[i]; i++) {
        if (n + 1 >= MAX_ARGS) {
            set_error("too many arguments");
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    if (pipe2(err, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        set_error("fork: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        return -1;
    }
    if (pid == 0) {
        child_prepare(parent, opts->env);
        if (opts->cwd && chdir(opts->cwd) < 0)
            _exit(127);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(BREAKHOOK_BIN, (char *const *)argv);
        _exit(127);
    }
    child_track(pid);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    int in_fd = in[1];
    size_t in_off = 0;
    if (!opts->input || opts->input_len == 0) {
        close(in_fd);
        in_fd = -1;
    } else {
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
    }
    size_t out_cap = 0, err_cap = 0;
    append_bytes(&r->out, &r->out_len, &out_cap, "", 0);
    append_bytes(&r->err, &r->err_len, &err_cap, "", 0);
    unsigned timeout = opts->timeout_ms ? opts->timeout_ms : 10000;
    uint64_t deadline = it_now_ms() + timeout;
    int out_fd = out[0], err_fd = err[0];
    bool timed_out = false;
    while (out_fd >= 0 || err_fd >= 0) {
        struct pollfd pf[3];
        int np = 0;
        if (out_fd >= 0)
            pf[np++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
        if (err_fd >= 0)
            pf[np++] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
        if (in_fd >= 0)
            pf[np++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
        unsigned left = remaining_ms(deadline);
        if (left == 0) {
            timed_out = true;
            break;
        }
        int pr = poll(pf, (nfds_t)np, (int)left);
        if (pr < 0 && errno != EINTR)
            break;
        for (int i = 0; i < np && pr > 0; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == in_fd) {
                ssize_t w = write(in_fd, opts->input + in_off, opts->input_len - in_off);
                if (w > 0)
                    in_off += (size_t)w;
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == opts->input_len) {
                    close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            char chunk[8192];
            ssize_t got = read(pf[i].fd, chunk, sizeof(chunk));
            if (got > 0) {
                if (pf[i].fd == out_fd)
                    append_bytes(&r->out, &r->out_len, &out_cap, chunk, (size_t)got);
                else
                    append_bytes(&r->err, &r->err_len, &err_cap, chunk, (size_t)got);
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                if (pf[i].fd == out_fd) {
                    close(out_fd);
                    out_fd = -1;
                } else {
                    close(err_fd);
                    err_fd = -1;
                }
            }
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    int st = timed_out ? -1 : wait_bounded(pid, remaining_ms(deadline));
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        st = IT_STOP_KILLED;
        set_error("the command did not finish within %u ms", timeout);
    }
    child_untrack(pid);
    r->status = st;
    return 0;
}

int it_cmd_run(const char *const *argv, const char *cwd, const char *log_path,
                       unsigned timeout_ms)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* Its own process group, so a timeout kills npm's children too. */
        setpgid(0, 0);
        int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || in < 0 || chdir(cwd) < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    uint64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (it_now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        it_sleep_ms(20);
    }
}

void it_run_result_free(it_run_result_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* ---- raw client ---------------------------------------------------------------------- */

int it_connect(it_conn_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        set_error("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (errno != EINPROGRESS) {
            set_error("connect 127.0.0.1:%d: %s", port, strerror(errno));
            goto fail;
        }
        struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
        if (poll(&pf, 1, IT_IO_TIMEOUT_MS) <= 0) {
            set_error("connect 127.0.0.1:%d: timed out", port);
            goto fail;
        }
        int e = 0;
        socklen_t el = sizeof(e);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            set_error("connect 127.0.0.1:%d: %s", port, strerror(e));
            goto fail;
        }
    }
    return 0;
fail:
    close(c->fd);
    c->fd = -1;
    return -1;
}

void it_conn_close(it_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

int it_send(it_conn_t *c, const void *p, size_t n)
{
    const char *b = p;
    uint64_t deadline = it_now_ms() + IT_IO_TIMEOUT_MS;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            set_error("send: %s", strerror(errno));
            return -1;
        }
        struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
        unsigned left = remaining_ms(deadline);
        if (left == 0 || poll(&pf, 1, (int)left) == 0) {
            set_error("send: timed out with %zu bytes left", n);
            return -1;
        }
    }
    return 0;
}

int it_send_str(it_conn_t *c, const char *s)
{
    return it_send(c, s, strlen(s));
}

/* Reads what is available within timeout_ms into c->buf. Returns the number of bytes
 * read, 0 at the end of the stream (c->eof set), -1 on timeout or error. */
static long recv_some(it_conn_t *c, unsigned timeout_ms)
{
    uint64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        if (c->eof)
            return 0;
        struct pollfd pf = { .fd = c->fd, .events = POLLIN };
        int pr = poll(&pf, 1, (int)remaining_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            set_error("timed out waiting for data (%zu bytes buffered)", c->len);
            return -1;
        }
        if (c->cap - c->len < 65536 + 1) {
            size_t cap = c->cap ? c->cap * 2 : 131072;
            if (cap > MAX_BUFFERED) {
                set_error("more than %u bytes buffered", MAX_BUFFERED);
                return -1;
            }
            char *p = realloc(c->buf, cap);
            if (!p)
                return -1;
            c->buf = p;
            c->cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, 65536, 0);
        if (r > 0) {
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
            return r;
        }
        if (r == 0 || errno == ECONNRESET || errno == EPIPE) {
            c->eof = true;
            c->reset = r < 0;
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR) {
            set_error("recv: %s", strerror(errno));
            return -1;
        }
    }
}

bool it_data_within(it_conn_t *c, unsigned timeout_ms)
{
    if (c->eof)
        return true;
    return recv_some(c, timeout_ms) >= 0;
}

static void consume(it_conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf)
        c->buf[c->len] = '\0';
}

static const char *find_head_end(const char *p, size_t n)
{
    return n >= 4 ? memmem(p, n, "\r\n\r\n", 4) : NULL;
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void trim(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        p[--n] = '\0';
    *s = p;
}

/* Parses the head (status line and headers, without the blank line) into r. */
static int parse_head(it_response_t *r, const char *head, size_t n)
{
    char *text = dup_range(head, n);
    if (!text)
        return -1;
    char *line = text;
    char *next = strstr(line, "\r\n");
    if (next)
        *next = '\0';
    int major, minor, status, used = 0;
    if (sscanf(line, "HTTP/%d.%d %3d%n", &major, &minor, &status, &used) != 3 || major != 1 ||
        (line[used] != ' ' && line[used] != '\0')) {
        set_error("malformed status line: '%.80s'", line);
        free(text);
        return -1;
    }
    r->status = status;
    r->minor_version = minor;
    snprintf(r->reason, sizeof(r->reason), "%s", line[used] ? line + used + 1 : "");
    while (next) {
        line = next + 2;
        next = strstr(line, "\r\n");
        if (next)
            *next = '\0';
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            set_error("malformed header line: '%.80s'", line);
            free(text);
            return -1;
        }
        if (r->n_headers == IT_MAX_RESPONSE_HEADERS) {
            set_error("more than %d response headers", IT_MAX_RESPONSE_HEADERS);
            free(text);
            return -1;
        }
        *colon = '\0';
        char *value = colon + 1;
        trim(&value);
        r->headers[r->n_headers].name = strdup(line);
        r->headers[r->n_headers].value = strdup(value);
        r->n_headers++;
    }
    free(text);
    return 0;
}

/* Decodes a chunked body starting at p (n bytes available). Returns the bytes the
 * encoding took (body appended to *body) when complete, 0 when more is needed, -1 when
 * malformed. */
static long decode_chunked(const char *p, size_t n, char **body, size_t *body_len)
{
    size_t off = 0, cap = 0, blen = 0;
    char *b = NULL;
    append_bytes(&b, &blen, &cap, "", 0);
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (!eol)
            goto more;
        char *end;
        unsigned long size = strtoul(p + off, &end, 16);
        if (end == p + off) {
            free(b);
            return -1;
        }
        off = (size_t)(eol - p) + 2;
        if (size == 0) {
            /* trailers, then an empty line */
            for (;;) {
                const char *t = memmem(p + off, n - off, "\r\n", 2);
                if (!t)
                    goto more;
                size_t tl = (size_t)(t - (p + off));
                off += tl + 2;
                if (tl == 0) {
                    *body = b;
                    *body_len = blen;
                    return (long)off;
                }
            }
        }
        if (n - off < size + 2)
            goto more;
        append_bytes(&b, &blen, &cap, p + off, size);
        off += size;
        if (memcmp(p + off, "\r\n", 2) != 0) {
            free(b);
            return -1;
        }
        off += 2;
    }
more:
    free(b);
    return 0;
}

int it_read_response(it_conn_t *c, it_response_t *r, bool head_request, unsigned timeout_ms)
{
    memset(r, 0, sizeof(*r));
    uint64_t deadline = it_now_ms() + timeout_ms;
    const char *he;
    while (!(he = find_head_end(c->buf, c->len))) {
        if (c->len > MAX_HEAD) {
            set_error("response head larger than %u bytes", MAX_HEAD);
            return -1;
        }
        if (c->eof) {
            set_error("connection closed%s before a complete response head (%zu bytes: '%.120s')",
                      c->reset ? " (reset)" : "", c->len, c->len ? c->buf : "");
            return -1;
        }
        if (recv_some(c, remaining_ms(deadline)) < 0)
            return -1;
    }
    size_t head_len = (size_t)(he - c->buf);
    if (parse_head(r, c->buf, head_len)) {
        it_response_free(r);
        return -1;
    }
    size_t start = head_len + 4;
    bool no_body = head_request || r->status / 100 == 1 || r->status == 204 || r->status == 304;
    const char *te = it_response_header(r, "transfer-encoding");
    const char *cl = it_response_header(r, "content-length");
    size_t total;
    if (no_body) {
        total = start;
        r->body = dup_range("", 0);
    } else if (te && strcasestr(te, "chunked")) {
        for (;;) {
            long used = decode_chunked(c->buf + start, c->len - start, &r->body, &r->body_len);
            if (used < 0) {
                set_error("malformed chunked response body");
                it_response_free(r);
                return -1;
            }
            if (used > 0) {
                total = start + (size_t)used;
                break;
            }
            if (c->eof || recv_some(c, remaining_ms(deadline)) <= 0) {
                set_error("chunked response body incomplete: %s",
                          c->eof ? "connection closed" : it_last_error());
                it_response_free(r);
                return -1;
            }
        }
    } else if (cl) {
        char *end;
        unsigned long long want = strtoull(cl, &end, 10);
        if (end == cl || *end || want > MAX_BUFFERED) {
            set_error("bad Content-Length '%s'", cl);
            it_response_free(r);
            return -1;
        }
        while (c->len - start < want) {
            if (c->eof || recv_some(c, remaining_ms(deadline)) <= 0) {
                set_error("response body incomplete: %zu of %llu bytes (%s)", c->len - start, want,
                          c->eof ? "connection closed" : it_last_error());
                it_response_free(r);
                return -1;
            }
        }
        total = start + (size_t)want;
        r->body = dup_range(c->buf + start, (size_t)want);
        r->body_len = (size_t)want;
    } else {
        while (!c->eof) {
            if (recv_some(c, remaining_ms(deadline)) < 0) {
                it_response_free(r);
                return -1;
            }
        }
        total = c->len;
        r->body = dup_range(c->buf + start, c->len - start);
        r->body_len = c->len - start;
    }
    r->raw = dup_range(c->buf, total);
    r->raw_len = total;
    consume(c, total);
    return 0;
}

void it_response_free(it_response_t *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->body);
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

const char *it_response_header(const it_response_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t it_response_header_count(const it_response_t *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            n++;
    return n;
}

int it_read_until_eof(it_conn_t *c, unsigned timeout_ms, char **out, size_t *n)
{
    uint64_t deadline = it_now_ms() + timeout_ms;
    int rc = 0;
    while (!c->eof) {
        if (recv_some(c, remaining_ms(deadline)) < 0) {
            rc = -1;
            break;
        }
    }
    if (out) {
        *out = dup_range(c->len ? c->buf : "", c->len);
        if (n)
            *n = c->len;
    }
    consume(c, c->len);
    return rc;
}

bool it_peer_closed(it_conn_t *c, unsigned timeout_ms)
{
    uint64_t deadline = it_now_ms() + timeout_ms;
    while (!c->eof) {
        if (recv_some(c, remaining_ms(deadline)) < 0)
            return false;
    }
    return true;
}

/* True when the header lines contain one named name. */
static bool has_header_line(const char *headers, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = headers; p && *p;) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return true;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

int it_conn_request(it_conn_t *c, const char *method, const char *target, const char *headers,
                    const char *body, size_t body_len, it_response_t *r)
{
    char *req = NULL;
    size_t len = 0, cap = 0;
    char line[256];
    int rc = -1;
    if (append_bytes(&req, &len, &cap, method, strlen(method)) ||
        append_bytes(&req, &len, &cap, " ", 1) ||
        append_bytes(&req, &len, &cap, target, strlen(target)) ||
        append_bytes(&req, &len, &cap, " HTTP/1.1\r\n", 11))
        goto out;
    if (!has_header_line(headers, "host") &&
        append_bytes(&req, &len, &cap, "Host: 127.0.0.1\r\n", 17))
        goto out;
    if (!has_header_line(headers, "user-agent") &&
        append_bytes(&req, &len, &cap, "User-Agent: breakhook-it/1\r\n", 28))
        goto out;
    if (body && !has_header_line(headers, "content-length") &&
        !has_header_line(headers, "transfer-encoding")) {
        int w = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
        if (append_bytes(&req, &len, &cap, line, (size_t)w))
            goto out;
    }
    if (headers && append_bytes(&req, &len, &cap, headers, strlen(headers)))
        goto out;
    if (append_bytes(&req, &len, &cap, "\r\n", 2))
        goto out;
    if (body && body_len && append_bytes(&req, &len, &cap, body, body_len))
        goto out;
    if (it_send(c, req, len))
        goto out;
    rc = it_read_response(c, r, strcmp(method, "HEAD") == 0, IT_IO_TIMEOUT_MS);
out:
    free(req);
    return rc;
}

int it_request(int port, const char *method, const char *target, const char *headers,
               const char *body, size_t body_len, it_response_t *r)
{
    it_conn_t c;
    memset(r, 0, sizeof(*r));
    if (it_connect(&c, port))
        return -1;
    int rc = it_conn_request(&c, method, target, headers, body, body_len, r);
    it_conn_close(&c);
    return rc;
}

int it_get_status(int port, const char *target)
{
    it_response_t r;
    if (it_request(port, "GET", target, NULL, NULL, 0, &r))
        return -1;
    int status = r.status;
    it_response_free(&r);
    return status;
}

/* ---- JSON ------------------------------------------------------------------------------ */

json_t *it_json_parse(const char *p, size_t n)
{
    json_error_t e;
    return json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
}

bool it_error_body_ok(const char *p, size_t n, const char *code, char *why, size_t why_len)
{
    bool ok = false;
    json_t *root = it_json_parse(p, n);
    json_t *err = root ? json_object_get(root, "error") : NULL;
    json_t *jc = err ? json_object_get(err, "code") : NULL;
    json_t *jm = err ? json_object_get(err, "message") : NULL;
    json_t *jr = err ? json_object_get(err, "reasons") : NULL;
    if (!root) {
        snprintf(why, why_len, "the body is not JSON");
    } else if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_object(err)) {
        snprintf(why, why_len, "the body is not {\"error\":{...}}");
    } else if (json_object_size(err) != 3 || !jc || !jm || !jr) {
        snprintf(why, why_len, "\"error\" must have exactly code, message and reasons");
    } else if (!json_is_string(jc) || strcmp(json_string_value(jc), code) != 0) {
        snprintf(why, why_len, "code is %s, expected \"%s\"",
                 json_is_string(jc) ? json_string_value(jc) : "not a string", code);
    } else if (!json_is_string(jm) || json_string_length(jm) == 0) {
        snprintf(why, why_len, "message must be a non-empty string");
    } else if (!json_is_array(jr)) {
        snprintf(why, why_len, "reasons must be an array");
    } else {
        ok = true;
        for (size_t i = 0; i < json_array_size(jr); i++) {
            if (!json_is_string(json_array_get(jr, i))) {
                snprintf(why, why_len, "reasons[%zu] is not a string", i);
                ok = false;
            }
        }
    }
    json_decref(root);
    return ok;
}

void it_assert_error(const it_response_t *r, int status, const char *code)
{
    char why[160];
    if (r->status != status)
        fail_msg("expected status %d, got %d; body: %.300s", status, r->status,
                 r->body ? r->body : "");
    const char *ct = it_response_header(r, "content-type");
    if (!ct || strncmp(ct, "application/json", 16) != 0)
        fail_msg("status %d: Content-Type is '%s', expected application/json", status,
                 ct ? ct : "(none)");
    if (!it_error_body_ok(r->body, r->body_len, code, why, sizeof(why)))
        fail_msg("status %d: bad error body (%s): %.300s", status, why, r->body);
}

json_t *it_assert_json(const it_response_t *r, int status)
{
    if (r->status != status)
        fail_msg("expected status %d, got %d; body: %.300s", status, r->status,
                 r->body ? r->body : "");
    const char *ct = it_response_header(r, "content-type");
    if (!ct || strncmp(ct, "application/json", 16) != 0)
        fail_msg("Content-Type is '%s', expected application/json", ct ? ct : "(none)");
    json_t *j = it_json_parse(r->body, r->body_len);
    if (!j)
        fail_msg("the body is not JSON: %.300s", r->body);
    return j;
}

char *it_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

char *it_urlenc(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    assert_non_null(out);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

char *it_cli_ok(const char *dir, const char *const *args)
{
    it_run_result_t r;
    it_run_opts_t o = { .cwd = dir, .timeout_ms = 30000 };
    if (it_run(args, &o, &r) != 0)
        fail_msg("could not run breakhook %s: %s", args[0], it_last_error());
    if (r.status != 0) {
        fprintf(stderr, "exit %d\n--- stdout\n%s--- stderr\n%s---\n", r.status, r.out, r.err);
        it_run_result_free(&r);
        fail_msg("breakhook %s %s failed", args[0], args[1]);
    }
    char *out = r.out;
    r.out = NULL;
    it_run_result_free(&r);
    return out;
}

void it_conn_ensure(it_conn_t *c, int port)
{
    if (c->fd >= 0 && !c->eof)
        return;
    it_conn_close(c);
    if (it_connect(c, port) != 0)
        fail_msg("connect: %s", it_last_error());
}

char *it_metrics_scrape(const it_server_t *s)
{
    if (s->metrics_port <= 0) {
        set_error("the server has no metrics listener");
        return NULL;
    }
    it_response_t r;
    if (it_request(s->metrics_port, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
        return NULL;
    char *body = NULL;
    if (r.status == 200)
        body = strdup(r.body);
    else
        set_error("GET /metrics answered %d", r.status);
    it_response_free(&r);
    return body;
}

double it_metric(const char *scrape, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = scrape; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = next ? next + 1 : NULL;
    }
    return NAN;
}
