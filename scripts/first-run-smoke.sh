#!/usr/bin/env bash
# first-run-smoke.sh: the README's first session, run the way a new user runs it.
#
#  1. `make run` with the flags of the README's "Your first webhook" section, in the
#     background, on a temporary store and a port the kernel picks (this is also
#     the release build: WERROR=ON from `make test` turns warnings into errors);
#  2. waits until it listens, then runs the `curl` lines the server printed, exactly
#     as printed, and checks that the token they got is the demo tenant's;
#  3. runs the README's first-webhook block as written (only the credentials and the
#     two ports are filled in), and waits for `breakhook sink` to print the verified
#     delivery of break 100;
#  4. stops the server with SIGTERM and requires exit code 0.
#
# Everything listens on 127.0.0.1; every wait is bounded. Exit 0 when all of it held.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/breakhook-first-run-XXXXXX")
server_pid=""
sink_port=""

fail() {
    echo "first-run smoke: FAILED: $*" >&2
    for f in make.out make.err try.out webhook.out webhook.err; do
        if [ -s "$tmp/$f" ]; then
            echo "---- $f (last 40 lines)" >&2
            tail -n 40 "$tmp/$f" >&2
        fi
    done
    exit 1
}

cleanup() {
    if [ -n "$sink_port" ]; then
        pkill -f "breakhook sink --listen 127.0.0.1:$sink_port" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        pkill -KILL -f -- "--store sqlite:$tmp/breakhook.db" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The README's run command for the first webhook, and its block of commands.
readme_args=$(sed -n 's/^make run ARGS="\(.*\)"$/\1/p' README.md | head -n 1)
[ -n "$readme_args" ] || fail "README.md has no 'make run ARGS=\"…\"' line"
awk '/<!-- first-webhook: begin/{on=1; next} /<!-- first-webhook: end/{on=0} on' README.md |
    sed '/^```/d' >"$tmp/webhook.sh"
[ -s "$tmp/webhook.sh" ] || fail "README.md has no first-webhook block"

# 1. The server, as `make run` starts it. A port in use is not an option here, so the
#    kernel picks it and the server writes it to a file.
make --no-print-directory run LISTEN=127.0.0.1:0 STORE="sqlite:$tmp/breakhook.db" \
    ARGS="$readme_args --port-file $tmp/port --log-file $tmp/server.log" \
    >"$tmp/make.out" 2>"$tmp/make.err" &
server_pid=$!

# The first run builds the release binary: allow it time on a slow 2-core machine.
for _ in $(seq 1 1800); do
    [ -s "$tmp/port" ] && grep -q 'curl -s -A demo -H' "$tmp/make.out" && break
    kill -0 "$server_pid" 2>/dev/null || fail "make run exited before listening"
    sleep 0.5
done
[ -s "$tmp/port" ] || fail "the server did not listen within 15 minutes"
port=$(cat "$tmp/port")

# 2. The lines printed under "Try:", run exactly as printed (two leading spaces off).
awk '/^Try:/{on=1; next} on' "$tmp/make.out" | sed 's/^  //' >"$tmp/try.sh"
grep -q "127.0.0.1:$port" "$tmp/try.sh" || fail "the printed lines do not use port $port"
bash -e -o pipefail "$tmp/try.sh" >"$tmp/try.out" 2>&1 || fail "the printed curl lines failed"
grep -q '"tenant":"demo"' "$tmp/try.out" || fail "the printed curl lines did not reach token-info"

# 3. The README's block, with the printed credentials and the two real ports.
client_id=$(sed -n 's/^ *client_id: *\([^ ]*\).*/\1/p' "$tmp/make.out")
secret=$(sed -n 's/^ *client_secret: *\([^ ]*\).*/\1/p' "$tmp/make.out")
[ -n "$client_id" ] && [ -n "$secret" ] || fail "the first run printed no credentials"
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        sink_port=$p
        break
    fi
done
[ -n "$sink_port" ] || fail "no free port for the sink"
sed -e "s/CLIENT_ID/$client_id/; s/CLIENT_SECRET/$secret/" \
    -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/g; s/127\.0\.0\.1:9000/127.0.0.1:$sink_port/g" \
    "$tmp/webhook.sh" >"$tmp/webhook-run.sh"
bash -e -o pipefail "$tmp/webhook-run.sh" >"$tmp/webhook.out" 2>"$tmp/webhook.err" ||
    fail "the README's first-webhook block failed"

delivered=""
for _ in $(seq 1 120); do
    if grep -q 'accepted path=/hooks/breaks id=100 changeType=InsertOrUpdate' "$tmp/webhook.out"; then
        delivered=yes
        break
    fi
    sleep 0.5
done
[ -n "$delivered" ] || fail "the sink printed no verified delivery of break 100 within 60 s"

# 4. SIGTERM: the server exits cleanly, and so does `make run` with it.
server=$(pgrep -f -- "serve --demo .*--store sqlite:$tmp/breakhook.db" | head -n 1)
[ -n "$server" ] || fail "cannot find the server process"
kill -TERM "$server"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" -eq 0 ] || fail "the server exited with $status after SIGTERM"
echo "first-run smoke: ok (server on port $port, delivery verified by breakhook sink)"
