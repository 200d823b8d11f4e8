/*
 * sink.c: the benchmark's fast webhook consumer. It answers every POST with 204 at
 * once (no signature check: the ceiling the engine is compared with must not be
 * the sink), counts deliveries, and answers GET /stats with
 * {"deliveries":N,"first_ms":…,"last_ms":…} (wall-clock milliseconds).
 *
 * usage: bench_sink PORT_FILE   (listens on 127.0.0.1, a free port)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/http.h"

static uint64_t deliveries;
static int64_t first_ms, last_ms;

static void on_post(http_request_t *req)
{
    int64_t now = clock_now_ms(clock_system());
    if (!deliveries)
        first_ms = now;
    last_ms = now;
    deliveries++;
    http_respond(req, 204, NULL, NULL, 0);
}

static void on_stats(http_request_t *req)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"deliveries\":%llu,\"first_ms\":%lld,\"last_ms\":%lld}",
                     (unsigned long long)deliveries, (long long)first_ms, (long long)last_ms);
    http_respond_json(req, 200, body, (size_t)n);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_sink PORT_FILE\n");
        return 2;
    }
    if (log_setup(LOG_WARN, LOG_FORMAT_JSON, NULL))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    http_router_t *r = http_router_new();
    http_route_opts_t o = { 0 };
    if (!r || http_router_add(r, HTTP_M_POST, "/hook", on_post, &o) ||
        http_router_add(r, HTTP_M_GET, "/stats", on_stats, &o))
        return 1;
    http_server_options_t so = { .access_log = false };
    http_limits_default(&so.limits);
    http_server_t *s;
    if (http_server_new(loop, r, &so, &s) || http_server_listen(s, "127.0.0.1", 0))
        return 1;
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", http_server_port(s));
    fclose(f);
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
