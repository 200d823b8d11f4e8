/*
 * serve.c: `breakhook serve`: opens the store, builds the router and runs the HTTP
 * server on one libuv loop until SIGTERM or SIGINT.
 *
 * Shutdown: the first signal stops accepting, lets requests in progress finish
 * and closes idle connections; if that takes longer than --shutdown-timeout the
 * loop is stopped anyway. Store writes that were acknowledged are already
 * committed, so nothing accepted is lost either way.
 */
#include <fcntl.h>
#include <malloc.h> /* mallopt (glibc) */
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "delivery/engine.h"
#include "http/http.h"

typedef struct serve_config {
    const char *listen;
    const char *store;
    const char *log_level;
    const char *log_format;
    const char *log_file;
    bool access_log;
    bool delivery_log;
    const char *metrics_listen;
    const char *metrics_port_file;
    int64_t max_body;
    int64_t max_batch_body;
    int64_t max_header_bytes;
    int64_t max_connections;
    int64_t max_connections_per_client;
    config_list_t trusted_proxy;
    int64_t body_time;
    int64_t header_timeout;
    int64_t idle_timeout;
    int64_t shutdown_timeout;
    const char *port_file;
    bool demo;
    const char *domain;
    int64_t token_ttl;
    int64_t rate_limit;
    int64_t rate_burst;
    int64_t token_rate_per_address;
    int64_t token_rate_global;
    int64_t token_threads;
    int64_t write_threads;
    int64_t revocation_refresh;
    bool allow_http_destinations;
    config_list_t allow_destination;
    int64_t webhook_validity;
    int64_t max_webhooks;
    bool delivery;
    config_durations_t retry_schedule;
    int64_t delivery_timeout;
    int64_t connect_timeout;
    const char *ca_file;
    int64_t max_inflight_per_destination;
    int64_t max_pending_in_memory;
    int64_t retention;
    int64_t delta_ttl;
    int64_t long_poll_max;
    int64_t long_poll_per_client;
    int64_t disk_reserve;
    int64_t delivery_threads;
    int64_t breaker_threshold;
    int64_t breaker_pause;
    bool coalesce;
} serve_config_t;

#define OPT(name, type, field, meta, help, lo, hi) \
    { name, type, offsetof(serve_config_t, field), meta, help, lo, hi }

static const config_option_t serve_options[] = {
    OPT("listen", CONFIG_STRING, listen, "ADDR:PORT",
        "address to listen on (default 127.0.0.1:8080; port 0 picks a free one)", 0, 0),
    OPT("store", CONFIG_STRING, store, "URL",
        "sqlite:PATH (default " CLI_DEFAULT_STORE ") or postgres://...", 0, 0),
    OPT("log-level", CONFIG_STRING, log_level, "LEVEL", "debug, info, warn, error or off (default info)",
        0, 0),
    OPT("log-format", CONFIG_STRING, log_format, "FORMAT", "json or logfmt (default json)", 0, 0),
    OPT("log-file", CONFIG_STRING, log_file, "PATH",
        "append logs to PATH instead of stderr (reopened on SIGHUP)", 0, 0),
    OPT("access-log", CONFIG_BOOL, access_log, NULL,
        "one log line per request (default on; --access-log=false turns it off)", 0, 0),
    OPT("delivery-log", CONFIG_BOOL, delivery_log, NULL,
        "one log line per delivery attempt; failures at most 10 per destination per 10 s "
        "(default on; --delivery-log=false turns it off)", 0, 0),
    OPT("metrics-listen", CONFIG_STRING, metrics_listen, "ADDR:PORT",
        "serve GET /metrics (Prometheus text) on this separate address; its labels name "
        "tenants, so keep it private (default 127.0.0.1:9464; port 0 picks a free one; "
        "off: no metrics listener)", 0, 0),
    OPT("metrics-port-file", CONFIG_STRING, metrics_port_file, "PATH",
        "write the metrics port actually bound to PATH once listening", 0, 0),
    OPT("max-body", CONFIG_INT, max_body, "BYTES", "request body limit (default 1048576)", 1,
        1LL << 30),
    OPT("max-batch-body", CONFIG_INT, max_batch_body, "BYTES",
        "POST /breaks/$batch body limit, 1024 to 1073741824 (default 67108864)", 1024, 1LL << 30),
    OPT("max-header-bytes", CONFIG_INT, max_header_bytes, "BYTES",
        "request header block limit (default 16384)", 1024, 1 << 20),
    OPT("max-connections", CONFIG_INT, max_connections, "N",
        "open connections at most; more get 503 (default 10000)", 1, 1000000),
    OPT("max-connections-per-client", CONFIG_INT, max_connections_per_client, "N",
        "open connections from one client address (IPv6: one /64) at most, 0 to 1000000; "
        "more get 503; 0: no cap (default: a quarter of --max-connections, so that no "
        "single address can take every slot)", 0, 1000000),
    OPT("trusted-proxy", CONFIG_STRING_LIST, trusted_proxy, "CIDR",
        "a reverse proxy in this range names the client in X-Forwarded-For, which "
        "--max-connections-per-client then counts; repeatable", 0, 0),
    OPT("body-time", CONFIG_DURATION, body_time, "DURATION",
        "a request body must arrive whole within this, 1s to 1h; else 408 (default 5m)", 1000,
        3600000),
    OPT("header-timeout", CONFIG_DURATION, header_timeout, "DURATION",
        "drop a client that has not sent its request head in this time (default 10s)", 1, 0x7fffffff),
    OPT("idle-timeout", CONFIG_DURATION, idle_timeout, "DURATION",
        "close a keep-alive connection idle this long (default 60s)", 1, 0x7fffffff),
    OPT("shutdown-timeout", CONFIG_DURATION, shutdown_timeout, "DURATION",
        "on SIGTERM, wait at most this long for requests in progress (default 10s)", 1,
        0x7fffffff),
    OPT("port-file", CONFIG_STRING, port_file, "PATH",
        "write the port actually bound to PATH once listening (for scripts and tests)", 0, 0),
    OPT("demo", CONFIG_BOOL, demo, NULL,
        "create a demo tenant and API client on first run and print how to use them", 0, 0),
    OPT("domain", CONFIG_STRING, domain, "DOMAIN",
        "public domain: API requests must use Host <tenant>.DOMAIN matching their token", 0, 0),
    OPT("token-ttl", CONFIG_DURATION, token_ttl, "DURATION",
        "lifetime of issued access tokens (default 30m)", 60000, 86400000),
    OPT("rate-limit", CONFIG_INT, rate_limit, "N",
        "requests per second per API client, 0 for no limit (default 100)", 0, 100000000),
    OPT("rate-burst", CONFIG_INT, rate_burst, "N",
        "requests a client may send at once above --rate-limit (default 200)", 1, 100000000),
    OPT("token-rate-per-address", CONFIG_INT, token_rate_per_address, "N",
        "token requests per second from one source address (IPv6: one /64) that get a secret "
        "check, bursts of twice that; 0 for no limit (default 10)", 0, 100000),
    OPT("token-rate-global", CONFIG_INT, token_rate_global, "N",
        "token requests per second to the whole server that get a secret check, bursts of "
        "twice that; 0 for no limit (default 20)", 0, 100000),
    OPT("token-threads", CONFIG_INT, token_threads, "N",
        "threads that check client secrets (PBKDF2), apart from those serving other "
        "requests; 64 checks per thread may wait (default 1)", 1, 16),
    OPT("write-threads", CONFIG_INT, write_threads, "N",
        "threads on which API writes wait for their group commit, apart from the 4 that "
        "serve reads; 64 writes per thread may wait, more get 503 (default 16)", 1, 64),
    OPT("revocation-refresh", CONFIG_DURATION, revocation_refresh, "DURATION",
        "how often signing keys and client revocations are reloaded from the store; a revoked "
        "client's tokens stop working within this time (default 5s)", 100, 3600000),
    OPT("allow-http-destinations", CONFIG_BOOL, allow_http_destinations, NULL,
        "accept plain http:// webhook destinations (default: https only)", 0, 0),
    OPT("allow-destination", CONFIG_STRING_LIST, allow_destination, "CIDR",
        "allow webhook destinations in this range even if loopback/private/...; repeatable", 0,
        0),
    OPT("webhook-validity", CONFIG_DURATION, webhook_validity, "DURATION",
        "a webhook expires this long after its creation (default 30d)", 1000, 3650LL * 86400000),
    OPT("max-webhooks", CONFIG_INT, max_webhooks, "N",
        "enabled webhooks per tenant at most; more get 409 (default 100)", 1, 100000),
    OPT("delivery", CONFIG_BOOL, delivery, NULL,
        "run the delivery engine (default on; --delivery=false serves the API only)", 0, 0),
    OPT("retry-schedule", CONFIG_DURATION_LIST, retry_schedule, "D1,D2,...",
        "delays before each retry, ±20 % jitter (default 5s,30s,2m,10m,30m,1h,2h,4h,8h,12h,24h,24h)",
        1, 7LL * 86400000),
    OPT("delivery-timeout", CONFIG_DURATION, delivery_timeout, "DURATION",
        "a delivery attempt's whole time limit (default 10s)", 100, 600000),
    OPT("connect-timeout", CONFIG_DURATION, connect_timeout, "DURATION",
        "time limit to connect to a destination (default 5s)", 100, 600000),
    OPT("ca-file", CONFIG_STRING, ca_file, "PATH",
        "extra CA certificates (PEM) trusted for https destinations, e.g. a private CA", 0, 0),
    OPT("max-inflight-per-destination", CONFIG_INT, max_inflight_per_destination, "N",
        "deliveries in flight to one host:port at most, shared in turns by the webhooks "
        "that have events for it (default 16)", 1, 10000),
    OPT("max-pending-in-memory", CONFIG_INT, max_pending_in_memory, "N",
        "pending events held in memory, all webhooks together, shared between those with work "
        "(each may always hold 64); the rest waits on disk (default 20000)", 16, 10000000),
    OPT("delivery-threads", CONFIG_INT, delivery_threads, "N",
        "threads that send deliveries, beside the engine's own; 0 sends on the engine's thread "
        "(default: one per CPU, at most 4)", 0, 16),
    OPT("breaker-threshold", CONFIG_INT, breaker_threshold, "N",
        "consecutive failed deliveries that pause a webhook's destination (circuit breaker, "
        "per webhook; default 10)", 1,
        1000000),
    OPT("breaker-pause", CONFIG_DURATION, breaker_pause, "DURATION",
        "first pause of a failing destination; doubles while its probe fails, up to 5m "
        "(default 5s)", 100, 300000),
    OPT("coalesce", CONFIG_BOOL, coalesce, NULL,
        "a newer change of a record replaces its waiting event (default on; --coalesce=false "
        "delivers every change)", 0, 0),
    OPT("retention", CONFIG_DURATION, retention, "DURATION",
        "delivery attempt logs, delivered changes and disabled webhooks are kept this long "
        "(default 7d); pruned once a minute, or once per retention when shorter", 1000,
        3650LL * 86400000),
    OPT("delta-ttl", CONFIG_DURATION, delta_ttl, "DURATION",
        "a delta not used for this long is gone: its links answer 410 (default 72h)", 1000,
        3650LL * 86400000),
    OPT("long-poll-max", CONFIG_INT, long_poll_max, "N",
        "delta follow-ups held at once with Prefer: wait (long polls); more get 503 "
        "(default 1000)", 0, 1000000),
    OPT("long-poll-per-client", CONFIG_INT, long_poll_per_client, "N",
        "long polls held at once per API client; more get 429 (default 10)", 0, 1000000),
    OPT("disk-reserve", CONFIG_INT, disk_reserve, "BYTES",
        "disk space held in <store file>-reserve and given back when the disk fills, so the "
        "store can checkpoint and recover; 0 for none (default 33554432, 32 MiB)",
        0, 1LL << 32),
};
#define N_SERVE_OPTIONS (sizeof(serve_options) / sizeof(serve_options[0]))

typedef struct serve_state {
    uv_loop_t loop;
    uv_timer_t refresh_timer;
    uv_work_t refresh_work;
    bool refresh_busy;
    uv_timer_t expiry_timer;
    uv_work_t expiry_work;
    bool expiry_busy;
    int64_t retention_ms;
    int64_t delta_ttl_ms;
    int64_t last_prune_ms;
    api_deltas_t *deltas;
    store_t *store;
    auth_keyring_t keyring;
    auth_revoked_t revoked;
    int64_t token_ttl_ms;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t shutdown_timer;
    http_server_t *server;
    http_server_t *metrics_server;  /* GET /metrics, on the same loop; NULL: none */
    http_router_t *metrics_router;
    http_route_opts_t metrics_opts;
    engine_t *engine;
    api_pool_t *token_pool;
    api_pool_t *write_pool;
    bool stopping;
    int64_t shutdown_timeout;
} serve_state_t;

static void print_help(void)
{
    printf("usage: breakhook serve [OPTIONS]\n\n"
           "Runs the breakhook API server on the given address and store.\n"
           "SIGTERM or SIGINT: stop accepting, finish requests in progress, exit.\n"
           "SIGHUP: reopen the log file.\n\noptions:\n");
    config_print_options(stdout, serve_options, N_SERVE_OPTIONS);
}

/* Splits "host:port" or "[v6]:port". */
static int parse_listen(const char *s, char *host, size_t host_len, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return BH_EINVAL;
        if ((size_t)(close - s - 1) >= host_len)
            return BH_EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= host_len || colon == s)
            return BH_EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    unsigned long long p;
    if (!slice_to_u64(slice_from_cstr(colon + 1), 65535, &p))
        return BH_EINVAL;
    *port = (int)p;
    return 0;
}

static int write_port_file(const char *path, int port);

/* The metrics listener's only route. Everything it reads is either loop-owned (the
 * API server's connections: this runs on the same loop) or atomics and snapshots
 * kept by their owners; no store call, no lock held for more than a copy. */
#define METRICS_BODY_MAX (16 << 20)

static void metrics_handler(http_request_t *req)
{
    serve_state_t *st = (serve_state_t *)req->route_data;
    buf_t b;
    buf_init(&b, METRICS_BODY_MAX);
    int rc = metrics_write_family(&b, "breakhook_build_info", "gauge",
                                  "Always 1; the version is in the label.");
    rc = rc ? rc : metrics_write_u64(&b, "breakhook_build_info",
                                     "version=\"" BREAKHOOK_VERSION "\"", 1);
    if (rc == 0 && st->server)
        rc = http_server_metrics_write(st->server, &b);
    rc = rc ? rc : api_metrics_write(st->token_pool, st->write_pool, &b);
    rc = rc ? rc : store_metrics_write(st->store, &b);
    if (rc == 0 && st->engine)
        rc = engine_metrics_write(st->engine, &b);
    rc = rc ? rc : metrics_write_process(&b);
    if (rc)
        http_respond_error(req, 500, "the metrics did not fit in the answer", NULL, 0);
    else
        http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    buf_deinit(&b);
}

static void on_metrics_server_freed(void *arg)
{
    serve_state_t *st = arg;
    st->metrics_server = NULL;
}

/* Starts the metrics listener on the serve loop; a message in err on failure. */
static int start_metrics(serve_state_t *st, const char *listen, const char *port_file,
                         char *err, size_t err_len)
{
    char host[128];
    int port;
    if (parse_listen(listen, host, sizeof(host), &port)) {
        snprintf(err, err_len, "--metrics-listen: expected ADDR:PORT or off, got '%s'", listen);
        return CLI_USAGE;
    }
    st->metrics_router = http_router_new();
    if (!st->metrics_router) {
        snprintf(err, err_len, "out of memory");
        return CLI_FAIL;
    }
    st->metrics_opts.data = st;
    http_server_options_t hopt = { .access_log = false };
    http_limits_default(&hopt.limits);
    hopt.limits.max_connections = 64;
    if (http_router_add(st->metrics_router, HTTP_M_GET, "/metrics", metrics_handler,
                        &st->metrics_opts) ||
        http_server_new(&st->loop, st->metrics_router, &hopt, &st->metrics_server)) {
        snprintf(err, err_len, "out of memory");
        return CLI_FAIL;
    }
    const char *why = "";
    if (http_server_listen(st->metrics_server, host, port, &why)) {
        snprintf(err, err_len, "cannot listen on %s (--metrics-listen): %s", listen, why);
        return CLI_FAIL;
    }
    port = http_server_port(st->metrics_server);
    if (port_file && *port_file && write_port_file(port_file, port)) {
        snprintf(err, err_len, "cannot write --metrics-port-file %s", port_file);
        return CLI_FAIL;
    }
    log_info("metrics listening", LOG_STR("host", host), LOG_INT("port", port));
    return 0;
}

static void on_server_done(void *arg)
{
    serve_state_t *st = arg;
    st->server = NULL;
    uv_stop(&st->loop);
}

/* The server of a start that failed (a port in use) is freed by the final loop run. */
static void on_server_freed(void *arg)
{
    serve_state_t *st = arg;
    st->server = NULL;
}

/* Requests still running after --shutdown-timeout may have store work in flight on
 * worker threads, so their memory cannot be torn down safely: the process exits at
 * once. Nothing is lost: every acknowledged write is committed (synchronous=FULL),
 * and what was not acknowledged was not accepted. */
static void on_shutdown_timeout(uv_timer_t *t)
{
    serve_state_t *st = t->data;
    log_warn("shutdown timeout: exiting with requests still in progress",
             LOG_INT("connections", st->server ? http_server_connections(st->server) : 0));
    _exit(CLI_OK);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve_state_t *st = h->data;
    if (signum == SIGHUP) {
        log_reopen();
        log_info("log file reopened");
        return;
    }
    if (st->stopping) {
        log_warn("second signal: exiting now");
        _exit(CLI_OK);
    }
    st->stopping = true;
    log_info("shutting down", LOG_INT("signal", signum));
    uv_timer_start(&st->shutdown_timer, on_shutdown_timeout, (uint64_t)st->shutdown_timeout, 0);
    /* Held long polls are answered now (an empty page), so the server can close. */
    api_deltas_stop(st->deltas);
    if (st->metrics_server)
        http_server_shutdown(st->metrics_server, on_metrics_server_freed, st);
    http_server_shutdown(st->server, on_server_done, st);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    char text[16];
    int n = snprintf(text, sizeof(text), "%d\n", port);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return BH_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return BH_EIO;
    bool ok = write(fd, text, (size_t)n) == n;
    close(fd);
    /* rename() makes the file appear whole: a reader never sees a partial port. */
    if (!ok || rename(tmp, path) != 0)
        return BH_EIO;
    return 0;
}

/* Loads the signing keys and the revoked clients into memory. Blocks: runs at start
 * and then on a worker thread. */
/* How long a retired key must keep verifying: what it signed lives at most the
 * longest of an access token, a continuation token and an unused delta token
 * (--delta-ttl: each follow-up seals a fresh one with the newest key), plus an hour
 * for nodes that signed with it until their next refresh. */
static int64_t key_keep_ms(int64_t token_ttl_ms, int64_t delta_ttl_ms)
{
    int64_t keep = (int64_t)API_PAGE_TOKEN_TTL_S * 1000;
    if (token_ttl_ms > keep)
        keep = token_ttl_ms;
    if (delta_ttl_ms > keep)
        keep = delta_ttl_ms;
    return keep + 3600000;
}

static int load_auth_state(store_t *store, auth_keyring_t *k, auth_revoked_t *r,
                           int64_t token_ttl_ms, int64_t delta_ttl_ms)
{
    store_signing_key_t *keys = NULL;
    store_client_t *revoked = NULL;
    size_t nk = 0, nr = 0;
    int rc = store_signing_key_list(store, &keys, &nk);
    if (!rc)
        nk = auth_keys_prune(keys, nk, clock_now_ms(clock_system()), key_keep_ms(token_ttl_ms, delta_ttl_ms));
    if (!rc && nk)
        auth_keyring_set(k, keys, nk);
    free(keys);
    if (!rc)
        rc = store_client_list_revoked(store, &revoked, &nr);
    if (!rc)
        rc = auth_revoked_set(r, revoked, nr);
    free(revoked);
    return rc;
}

static void refresh_work(uv_work_t *w)
{
    serve_state_t *st = w->data;
    if (load_auth_state(st->store, &st->keyring, &st->revoked, st->token_ttl_ms,
                        st->delta_ttl_ms))
        log_warn("could not reload signing keys and revocations; keeping the previous ones");
}

static void refresh_done(uv_work_t *w, int status)
{
    serve_state_t *st = w->data;
    (void)status;
    st->refresh_busy = false;
}

static void on_refresh(uv_timer_t *t)
{
    serve_state_t *st = t->data;
    if (st->refresh_busy || st->stopping)
        return;
    st->refresh_busy = true;
    st->refresh_work.data = st;
    if (uv_queue_work(&st->loop, &st->refresh_work, refresh_work, refresh_done) < 0)
        st->refresh_busy = false;
}

/* Webhooks past validUntil are marked Disabled/Expired in the store once a second.
 * Reads already show them expired at the exact moment; the sweep makes it durable
 * and stops them counting against --max-webhooks. */
static void expiry_work(uv_work_t *w)
{
    serve_state_t *st = w->data;
    size_t n = 0;
    int64_t now = clock_now_ms(clock_system());
    if (store_webhooks_expire(st->store, now, &n))
        log_warn("webhook expiry sweep failed");
    else if (n)
        log_info("webhooks expired", LOG_INT("count", n));
    /* The attempt log, delivered changes and webhooks disabled longer than the
     * retention are pruned once a minute (SPEC §7.3 retention). */
    if (now - st->last_prune_ms >= (st->retention_ms < 60000 ? st->retention_ms : 60000)) {
        st->last_prune_ms = now;
        if (store_attempts_prune(st->store, now - st->retention_ms, &n))
            log_warn("attempt log pruning failed");
        else if (n)
            log_info("delivery attempts pruned", LOG_INT("count", n));
        /* Expired deltas first: the changes only they held go in the same round. */
        if (store_deltas_prune(st->store, now - st->delta_ttl_ms, &n))
            log_warn("delta pruning failed");
        else if (n)
            log_info("expired deltas pruned", LOG_INT("count", n));
        if (store_changes_prune(st->store, now - st->retention_ms, &n))
            log_warn("change log pruning failed");
        else if (n)
            log_info("delivered changes pruned", LOG_INT("count", n));
        if (store_webhooks_prune(st->store, now - st->retention_ms, &n))
            log_warn("disabled webhook pruning failed");
        else if (n)
            log_info("disabled webhooks pruned", LOG_INT("count", n));
    }
}

static void expiry_done(uv_work_t *w, int status)
{
    serve_state_t *st = w->data;
    (void)status;
    st->expiry_busy = false;
}

static void on_expiry_sweep(uv_timer_t *t)
{
    serve_state_t *st = t->data;
    if (st->expiry_busy || st->stopping)
        return;
    st->expiry_busy = true;
    st->expiry_work.data = st;
    if (uv_queue_work(&st->loop, &st->expiry_work, expiry_work, expiry_done) < 0)
        st->expiry_busy = false;
}

/* First start: make sure a signing key exists (any node may create it; the store
 * keeps exactly one active), then load keys and revocations. */
static int init_auth_state(serve_state_t *st)
{
    store_signing_key_t candidate, active;
    int rc = auth_signing_key_new(rand_system(), clock_now_ms(clock_system()), &candidate);
    rc = rc ? rc : store_signing_key_ensure(st->store, &candidate, &active);
    return rc ? rc : load_auth_state(st->store, &st->keyring, &st->revoked, st->token_ttl_ms,
                        st->delta_ttl_ms);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* http_server_options_t.trusted_proxy: the peer is in a --trusted-proxy range. */
static bool serve_trusted_proxy(const struct sockaddr *sa, void *arg)
{
    return dest_allowed(arg, sa);
}

/* Allocations from 128 KiB up get their own mapping, given back to the system when
 * freed. glibc's default threshold starts there but rises to the size of the largest
 * such block freed so far (up to 32 MiB), after which big short-lived buffers ($batch
 * windows, scan results, the engine's result arrays) come from the heaps of the ~20
 * threads' arenas and stay there as free but resident memory. With 10,000 webhooks
 * under load that held the server at 194-245 MiB; with a fixed threshold it stayed
 * at 102-127 MiB in five rounds, at no CPU per event we could measure (bench/README.md,
 * "One busy webhook beside idle ones"). A fixed threshold also stops the trim
 * threshold from rising with it. */
#define SERVE_MMAP_THRESHOLD (128 << 10)

int cli_serve(int argc, char **argv)
{
    /* Before any thread exists. */
    mallopt(M_MMAP_THRESHOLD, SERVE_MMAP_THRESHOLD);
    serve_config_t cfg = {
        .listen = "127.0.0.1:8080",
        .store = CLI_DEFAULT_STORE,
        .log_level = "info",
        .log_format = "json",
        .access_log = true,
        .delivery_log = true,
        .metrics_listen = "127.0.0.1:9464",
        .max_body = 1 << 20,
        .max_batch_body = 64 << 20,
        .max_header_bytes = 16 << 10,
        .max_connections = 10000,
        .max_connections_per_client = -1, /* a quarter of max_connections */
        .body_time = 300000,
        .header_timeout = 10000,
        .idle_timeout = 60000,
        .shutdown_timeout = 10000,
        .token_ttl = 1800000,
        .rate_limit = 100,
        .rate_burst = 200,
        .token_rate_per_address = 10,
        .token_rate_global = 20,
        .token_threads = 1,
        .write_threads = 16,
        .revocation_refresh = 5000,
        .webhook_validity = 30LL * 86400000,
        .max_webhooks = 100,
        .delivery = true,
        .delivery_timeout = 10000,
        .connect_timeout = 5000,
        .max_inflight_per_destination = 16,
        .max_pending_in_memory = 20000,
        .retention = 7LL * 86400000,
        .delta_ttl = 72LL * 3600000,
        .long_poll_max = 1000,
        .long_poll_per_client = 10,
        .disk_reserve = 32LL << 20,
        .delivery_threads = -1,
        .breaker_threshold = 10,
        .breaker_pause = 5000,
        .coalesce = true,
    };
    char err[256];
    const char *pos[1];
    size_t n_pos;
    bool help;
    if (config_parse(serve_options, N_SERVE_OPTIONS, &cfg, argc, argv, cli_getenv, pos, 0, &n_pos,
                     &help, err, sizeof(err)))
        return cli_fail(CLI_USAGE, "serve: %s", err);
    if (help) {
        print_help();
        return CLI_OK;
    }
    log_level_t level;
    log_format_t format;
    if (log_level_parse(cfg.log_level, &level))
        return cli_fail(CLI_USAGE, "serve: --log-level: unknown level '%s'", cfg.log_level);
    if (log_format_parse(cfg.log_format, &format))
        return cli_fail(CLI_USAGE, "serve: --log-format: unknown format '%s'", cfg.log_format);
    char host[128];
    int port;
    if (parse_listen(cfg.listen, host, sizeof(host), &port))
        return cli_fail(CLI_USAGE, "serve: --listen: expected ADDR:PORT, got '%s'", cfg.listen);
    engine_options_t eopt;
    engine_options_default(&eopt);
    if (cfg.retry_schedule.n) {
        eopt.retry.n = cfg.retry_schedule.n;
        for (size_t i = 0; i < cfg.retry_schedule.n; i++)
            eopt.retry.schedule_ms[i] = cfg.retry_schedule.ms[i];
    }
    eopt.timeout_ms = cfg.delivery_timeout;
    eopt.connect_timeout_ms = cfg.connect_timeout;
    eopt.ca_file = cfg.ca_file && *cfg.ca_file ? cfg.ca_file : NULL;
    eopt.max_inflight_per_dest = (size_t)cfg.max_inflight_per_destination;
    eopt.max_pending = (size_t)cfg.max_pending_in_memory;
    eopt.allow_http = cfg.allow_http_destinations;
    eopt.breaker_threshold = (int)cfg.breaker_threshold;
    eopt.breaker_pause_ms = cfg.breaker_pause;
    eopt.coalesce = cfg.coalesce;
    eopt.log_attempts = cfg.delivery_log;
    if (cfg.delivery_threads < 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.delivery_threads = cpus < 1 ? 1 : cpus > 4 ? 4 : cpus;
    }
    eopt.send_threads = (unsigned)cfg.delivery_threads;
    if (log_setup(level, format, cfg.log_file))
        return cli_fail(CLI_FAIL, "serve: cannot open log file '%s'", cfg.log_file);

    int code = CLI_FAIL;
    store_t *store = NULL;
    http_router_t *router = NULL;
    auth_ratelimit_t *ratelimit = NULL;
    auth_ratelimit_t *token_rate_addr = NULL, *token_rate_global = NULL;
    api_pool_t *token_pool = NULL, *write_pool = NULL;
    auth_token_cache_t *token_cache = NULL;
    serve_state_t st = { 0 };
    /* The master key also seals webhook keys (api.h). */
    crypto_master_t master;
    int rc = cli_store_open("serve", cfg.store, cfg.disk_reserve, &master, &store);
    if (rc)
        return rc;
    dest_allow_t allow;
    dest_allow_init(&allow);
    for (size_t i = 0; i < cfg.allow_destination.n; i++) {
        char why[160];
        if (dest_allow_add(&allow, cfg.allow_destination.items[i], why, sizeof(why))) {
            cli_fail(CLI_USAGE, "serve: --allow-destination: %s", why);
            store_close(store);
            return CLI_USAGE;
        }
    }
    dest_allow_t proxies;
    dest_allow_init(&proxies);
    for (size_t i = 0; i < cfg.trusted_proxy.n; i++) {
        char why[160];
        if (dest_allow_add(&proxies, cfg.trusted_proxy.items[i], why, sizeof(why))) {
            cli_fail(CLI_USAGE, "serve: --trusted-proxy: %s", why);
            store_close(store);
            return CLI_USAGE;
        }
    }
    st.store = store;
    st.token_ttl_ms = cfg.token_ttl;
    st.retention_ms = cfg.retention;
    st.delta_ttl_ms = cfg.delta_ttl;
    auth_keyring_init(&st.keyring);
    auth_revoked_init(&st.revoked);
    rc = init_auth_state(&st);
    if (rc) {
        code = cli_fail(rc == BH_EINVAL ? CLI_USAGE : CLI_FAIL,
                        "serve: could not load the token signing keys from the store: %s",
                        cli_keys_error(rc));
        goto out_auth;
    }
    demo_t demo = { 0 };
    if (cfg.demo && demo_ensure(store, &demo) != 0) {
        cli_fail(CLI_FAIL, "serve: could not create the demo tenant");
        goto out_auth;
    }

    uv_loop_init(&st.loop);
    ratelimit = auth_ratelimit_new((double)cfg.rate_limit, (double)cfg.rate_burst);
    token_cache = auth_token_cache_new();
    token_rate_addr = auth_ratelimit_new((double)cfg.token_rate_per_address,
                                         2.0 * (double)cfg.token_rate_per_address);
    token_rate_global = auth_ratelimit_new((double)cfg.token_rate_global,
                                           2.0 * (double)cfg.token_rate_global);
    engine_t *engine = NULL;
    if (cfg.delivery) {
        eopt.store = store;
        eopt.clock = clock_system();
        eopt.rand = rand_system();
        eopt.master = &master;
        eopt.allow = &allow;
        if (engine_start(&eopt, &engine)) {
            cli_fail(CLI_FAIL, "serve: could not start the delivery engine");
            goto out_loop;
        }
    }
    if (api_pool_new(&st.loop, "bh-token", (unsigned)cfg.token_threads,
                     64 * (size_t)cfg.token_threads, &token_pool)) {
        cli_fail(CLI_FAIL, "serve: could not start the token threads");
        goto out_loop;
    }
    st.engine = engine;
    st.token_pool = token_pool;
    /* Writes wait for their group commit on threads of their own: the more wait
     * together, the bigger the group, and libuv's 4 stay free for the reads. */
    if (api_pool_new(&st.loop, "bh-write", (unsigned)cfg.write_threads,
                     64 * (size_t)cfg.write_threads, &write_pool)) {
        cli_fail(CLI_FAIL, "serve: could not start the write threads");
        goto out_loop;
    }
    st.write_pool = write_pool;
    if (api_deltas_new(&st.loop, store, (size_t)cfg.long_poll_max,
                       (size_t)cfg.long_poll_per_client, &st.deltas)) {
        cli_fail(CLI_FAIL, "serve: out of memory");
        goto out_loop;
    }
    api_ctx_t ctx = { .loop = &st.loop, .store = store, .clock = clock_system(),
                      .rand = rand_system(), .keyring = &st.keyring, .revoked = &st.revoked,
                      .ratelimit = ratelimit, .token_rate_addr = token_rate_addr,
                      .token_rate_global = token_rate_global, .token_pool = token_pool,
                      .write_pool = write_pool,
                      .token_cache = token_cache, .domain = cfg.domain && *cfg.domain ? cfg.domain : NULL,
                      .token_ttl_s = cfg.token_ttl / 1000, .master = &master,
                      .allow = &allow, .allow_http = cfg.allow_http_destinations,
                      .webhook_validity_ms = cfg.webhook_validity,
                      .max_webhooks = (size_t)cfg.max_webhooks,
                      .max_batch_body = (size_t)cfg.max_batch_body,
                      .deltas = st.deltas, .delta_ttl_ms = cfg.delta_ttl };
    api_deltas_attach(st.deltas, &ctx);
    router = http_router_new();
    if (!router || !ratelimit || !token_cache || !token_rate_addr || !token_rate_global ||
        api_register_routes(router, &ctx)) {
        cli_fail(CLI_FAIL, "serve: out of memory");
        goto out_loop;
    }
    http_server_options_t hopt = { .access_log = cfg.access_log };
    http_limits_default(&hopt.limits);
    hopt.limits.max_body = (size_t)cfg.max_body;
    hopt.limits.max_header_bytes = (size_t)cfg.max_header_bytes;
    hopt.limits.max_connections = (int)cfg.max_connections;
    hopt.limits.header_timeout_ms = (uint64_t)cfg.header_timeout;
    hopt.limits.idle_timeout_ms = (uint64_t)cfg.idle_timeout;
    hopt.limits.body_time_ms = (uint64_t)cfg.body_time;
    /* Not given: a quarter of the slots. Behind a reverse proxy every client shares
     * the proxy's address: name it with --trusted-proxy (or lift the cap with 0). */
    hopt.limits.max_per_client = cfg.max_connections_per_client >= 0
                                     ? (int)cfg.max_connections_per_client
                                     : (int)(cfg.max_connections / 4 > 0 ? cfg.max_connections / 4
                                                                         : 1);
    if (proxies.n) {
        hopt.trusted_proxy = serve_trusted_proxy;
        hopt.trusted_proxy_arg = &proxies;
    }
    if (http_server_new(&st.loop, router, &hopt, &st.server)) {
        cli_fail(CLI_FAIL, "serve: out of memory");
        goto out_loop;
    }
    const char *why = "";
    if (http_server_listen(st.server, host, port, &why)) {
        cli_fail(CLI_FAIL, "serve: cannot listen on %s: %s", cfg.listen, why);
        goto out_loop;
    }
    if (cfg.metrics_listen && *cfg.metrics_listen && strcmp(cfg.metrics_listen, "off") != 0) {
        char merr[256];
        int mrc = start_metrics(&st, cfg.metrics_listen, cfg.metrics_port_file, merr,
                                sizeof(merr));
        if (mrc) {
            code = cli_fail(mrc, "serve: %s", merr);
            goto out_loop;
        }
    }
    port = http_server_port(st.server);
    if (cfg.port_file && write_port_file(cfg.port_file, port)) {
        cli_fail(CLI_FAIL, "serve: cannot write --port-file %s", cfg.port_file);
        goto out_loop;
    }
    st.shutdown_timeout = cfg.shutdown_timeout;
    uv_timer_init(&st.loop, &st.refresh_timer);
    st.refresh_timer.data = &st;
    uv_timer_start(&st.refresh_timer, on_refresh, (uint64_t)cfg.revocation_refresh,
                   (uint64_t)cfg.revocation_refresh);
    uv_timer_init(&st.loop, &st.expiry_timer);
    st.expiry_timer.data = &st;
    uv_timer_start(&st.expiry_timer, on_expiry_sweep, 1000, 1000);
    if (!master.set)
        log_warn("BREAKHOOK_MASTER_KEY is not set: webhook and token signing keys are stored "
                 "unencrypted");
    if (cfg.demo)
        demo_print(&demo, host, port, ctx.domain, cfg.store);
    uv_timer_init(&st.loop, &st.shutdown_timer);
    st.shutdown_timer.data = &st;
    uv_signal_init(&st.loop, &st.sigterm);
    uv_signal_init(&st.loop, &st.sigint);
    uv_signal_init(&st.loop, &st.sighup);
    st.sigterm.data = st.sigint.data = st.sighup.data = &st;
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sighup, on_signal, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    log_info("listening", LOG_STR("host", host), LOG_INT("port", port),
             LOG_STR("store", cfg.store), LOG_STR("version", BREAKHOOK_VERSION));
    uv_run(&st.loop, UV_RUN_DEFAULT);
    log_info("stopped");
    code = CLI_OK;

out_loop:
    /* The engine first: it commits what it delivered before the store closes. */
    engine_stop(engine);
    api_deltas_stop(st.deltas);
    st.engine = NULL; /* a last scrape must not read it */
    /* Every request was answered (or the timeout exited): the token threads are idle. */
    api_pool_free(token_pool);
    st.token_pool = NULL;
    api_pool_free(write_pool);
    st.write_pool = NULL;
    /* A server that never served (its listen failed) goes through its own close path,
     * which frees it; then close whatever is left (signals, timers, connections cut by
     * the timeout) so the loop can be closed; the process exits right after. */
    if (st.server)
        http_server_shutdown(st.server, on_server_freed, &st);
    if (st.metrics_server)
        http_server_shutdown(st.metrics_server, on_metrics_server_freed, &st);
    uv_walk(&st.loop, close_walk, NULL);
    uv_run(&st.loop, UV_RUN_DEFAULT);
    uv_loop_close(&st.loop);
    api_deltas_free(st.deltas);
    http_router_free(router);
    http_router_free(st.metrics_router);
    auth_ratelimit_free(ratelimit);
    auth_ratelimit_free(token_rate_addr);
    auth_ratelimit_free(token_rate_global);
    auth_token_cache_free(token_cache);
out_auth:
    auth_keyring_deinit(&st.keyring);
    auth_revoked_deinit(&st.revoked);
    store_close(store);
    return code;
}
