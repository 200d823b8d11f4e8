#!/usr/bin/env bash
# breakhook benchmark: bounded in time, 127.0.0.1 only, prints a table and writes
# bench/results/latest.json. Usage: bench/run.sh [--smoke]
#   --smoke   a few seconds per figure (what CI runs; never asserts speed)
# Environment: DURATION (seconds per wrk run, default 10; smoke 2), CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
DURATION=${DURATION:-$([ $SMOKE = 1 ] && echo 2 || echo 10)}
CONNECTIONS=${CONNECTIONS:-64}
BIN=${BIN:-build/release/breakhook}
[ -x "$BIN" ] || { echo "bench: $BIN missing: run 'make build' first" >&2; exit 1; }
BUILD_KIND=$(basename "$(dirname "$BIN")")
command -v wrk >/dev/null || { echo "bench: wrk missing: run scripts/install-deps.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/breakhook-bench.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

STORE="sqlite:$WORK/bench.db"
"$BIN" tenant create bench --store "$STORE" >/dev/null
CLIENT_JSON=$("$BIN" client create --tenant bench --name bench --json --store "$STORE" \
  --scopes "connector-protimeapi-breaks.read connector-protimeapi-breaks.write connector-protimeapi-people.write connector-protimeapi-break-definitions.write connector-protimeapi-break-definitions.read connector-protimeapi-webhooks.read connector-protimeapi-webhooks.write")
CLIENT_ID=$(echo "$CLIENT_JSON" | sed 's/.*"clientId":"\([^"]*\)".*/\1/')
CLIENT_SECRET=$(echo "$CLIENT_JSON" | sed 's/.*"clientSecret":"\([^"]*\)".*/\1/')

# One loop thread serves HTTP; the access log is off so the figure is the server's,
# not the log writer's (the access-log cost is measured separately below).
start_server() {
  rm -f "$WORK/port"
  "$BIN" serve --listen 127.0.0.1:0 --port-file "$WORK/port" --store "$STORE" \
    --rate-limit 0 --log-level warn "$@" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(cat "$WORK/port")
}
stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# wrk_rps URL [extra wrk args...] -> requests/s
wrk_rps() {
  local url=$1; shift
  timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url" \
    | awk '/Requests\/sec/ {print $2}'
}

RESULTS=()
record() { # name value unit
  printf '%-48s %14s %s\n' "$1" "$2" "$3"
  RESULTS+=("{\"name\":\"$1\",\"value\":$2,\"unit\":\"$3\"}")
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | $(free -g | awk '/Mem:/ {print $2}') GiB | $(uname -r)"
echo "build: $("$BIN" version) $BUILD_KIND, wrk -t1 -c$CONNECTIONS -d${DURATION}s"
printf '%-48s %14s %s\n' figure value unit

start_server --access-log=false
record "healthz keep-alive" "$(wrk_rps "http://127.0.0.1:$PORT/healthz")" "req/s"
TOKEN=$(curl -s -A bench -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
  "http://127.0.0.1:$PORT/tenants/bench/connect/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
record "token-info authenticated (JWT check)" \
  "$(wrk_rps "http://127.0.0.1:$PORT/connector/protimeapi/api/v1/token-info" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")" "req/s"
record "token-info unauthenticated (401 answer)" \
  "$(wrk_rps "http://127.0.0.1:$PORT/connector/protimeapi/api/v1/token-info" -H "User-Agent: bench")" "req/s"

# ---- breaks data: $batch upserts, then reads ----------------------------------
API="http://127.0.0.1:$PORT/connector/protimeapi/api/v1"
AUTH=(-A bench -H "Authorization: Bearer $TOKEN")
curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -X PUT "$API/break-definitions/1" \
  -d '{"id":1,"name":{"default":"Lunch"},"friendlyName":{"default":"Lunch"},"paidDurationInMinutes":0,"minimumDurationInMinutes":30,"maximumDurationInMinutes":60,"ifNotClockedDurationInMinutes":30,"hasToBeTakenUninterrupted":true}' >/dev/null
for p in $(seq 1 100); do
  curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -X PUT "$API/people/$p" -d "{\"id\":$p}" >/dev/null
done
BATCH_FILES=$([ $SMOKE = 1 ] && echo 2 || echo 40)
LINES=10000
# Each file: LINES upserts of distinct breaks over one month of 2026, 100 people.
awk -v files="$BATCH_FILES" -v lines="$LINES" -v dir="$WORK" 'BEGIN {
  for (f = 0; f < files; f++) {
    out = dir "/batch" f ".ndjson"
    for (i = 0; i < lines; i++) {
      id = f * lines + i + 1
      printf "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":%d},\"breakDefinition\":{\"id\":1},\"date\":\"2026-03-%02d\",\"clockedDurationInMinutes\":%d,\"startTimeInMinutes\":720,\"endTimeInMinutes\":840,\"isBreakTaken\":true}}\n", id, id % 100 + 1, id % 28 + 1, id % 90 > out
    }
    close(out)
  }
}'
t0=$(date +%s.%N)
for f in $(seq 0 $((BATCH_FILES - 1))); do
  curl -s "${AUTH[@]}" -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/batch$f.ndjson" \
    "$API/breaks/\$batch" | tail -n 1 | grep -q "\"created\":$LINES" || { echo "bench: batch $f failed" >&2; exit 1; }
done
t1=$(date +%s.%N)
record "\$batch upserts (new breaks, durable)" "$(awk -v n=$((BATCH_FILES * LINES)) -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')" "upserts/s"
NBREAKS=$((BATCH_FILES * LINES))
# A page of 1000 (the default page size) from the first day, with a token.
PAGE_URL="$API/breaks?filter=date%20ge%20'2026-03-01'%20and%20date%20le%20'2026-03-31'"
PAGE_RPS=$(wrk_rps "$PAGE_URL" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")
record "GET /breaks 1000-item pages" "$PAGE_RPS" "pages/s"
record "GET /breaks breaks served" "$(awk -v r="$PAGE_RPS" 'BEGIN {printf "%.0f", r * 1000}')" "breaks/s"
cat > "$WORK/byid.lua" <<LUA
local n = $NBREAKS
request = function()
  return wrk.format("GET", "/connector/protimeapi/api/v1/breaks/" .. math.random(1, n))
end
LUA
record "GET /breaks/{id} (random ids, with token)" \
  "$(wrk_rps "http://127.0.0.1:$PORT" -s "$WORK/byid.lua" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")" "req/s"

# ---- end-to-end deliveries ---------------------------------------------------
SINK=${SINK:-$(dirname "$BIN")/bench_sink}
if [ -x "$SINK" ]; then
  "$SINK" "$WORK/sink.port" & SINK_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/sink.port" ] && break; sleep 0.05; done
  SPORT=$(cat "$WORK/sink.port")
  # Ceiling: a plain load generator POSTing a delivery-sized signed body to the same sink.
  BODY=$(head -c 300 /dev/zero | tr '\0' x)
  cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"changeType":"InsertOrUpdate","data":{"pad":"$BODY"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "evt_00000000000000000001_abcdefgh"
wrk.headers["webhook-timestamp"] = "1800000000"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
LUA
  CEIL=$(wrk_rps "http://127.0.0.1:$SPORT/hook" -s "$WORK/post.lua")
  record "ceiling: wrk POSTs to the sink" "$CEIL" "req/s"
  stop_server
  start_server --access-log=false --allow-http-destinations --allow-destination 127.0.0.1/32 \
    --max-inflight-per-destination ${E2E_INFLIGHT:-16}
  API="http://127.0.0.1:$PORT/connector/protimeapi/api/v1"
  TOKEN=$(curl -s -A bench -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    "http://127.0.0.1:$PORT/tenants/bench/connect/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  AUTH=(-A bench -H "Authorization: Bearer $TOKEN")
  curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -X POST "$API/webhooks" \
    -d "{\"destinationUrl\":\"http://127.0.0.1:$SPORT/hook\",\"collectionName\":\"breaks\"}" >/dev/null
  sleep 1.5 # the engine picks up new webhooks once a second
  E2E_FILES=$([ $SMOKE = 1 ] && echo 2 || echo 10)
  awk -v files="$E2E_FILES" -v lines="$LINES" -v dir="$WORK" 'BEGIN {
    for (f = 0; f < files; f++) {
      out = dir "/e2e" f ".ndjson"
      for (i = 0; i < lines; i++) {
        id = 5000000 + f * lines + i + 1
        printf "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":%d},\"breakDefinition\":{\"id\":1},\"date\":\"2026-04-%02d\",\"clockedDurationInMinutes\":%d,\"startTimeInMinutes\":720,\"endTimeInMinutes\":840,\"isBreakTaken\":true}}\n", id, id % 100 + 1, id % 28 + 1, id % 90 > out
      }
      close(out)
    }
  }'
  N=$((E2E_FILES * LINES))
  BEFORE=$(curl -s "http://127.0.0.1:$SPORT/stats" | sed 's/.*"deliveries":\([0-9]*\).*/\1/')
  t0=$(date +%s.%N)
  for f in $(seq 0 $((E2E_FILES - 1))); do
    curl -s "${AUTH[@]}" -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/e2e$f.ndjson" \
      "$API/breaks/\$batch" >/dev/null
  done
  DEADLINE=$(( $(date +%s) + 120 ))
  while :; do
    GOT=$(curl -s "http://127.0.0.1:$SPORT/stats" | sed 's/.*"deliveries":\([0-9]*\).*/\1/')
    [ $((GOT - BEFORE)) -ge "$N" ] && break
    [ "$(date +%s)" -ge "$DEADLINE" ] && { echo "bench: only $((GOT - BEFORE)) of $N delivered" >&2; break; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  E2E=$(awk -v n=$((GOT - BEFORE)) -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  record "end-to-end: \$batch write -> signed POST -> 2xx (1 webhook)" "$E2E" "events/s"
  record "end-to-end as a ratio of the ceiling" "$(awk -v a="$E2E" -v b="$CEIL" 'BEGIN {printf "%.2f", a / b}')" "ratio"
  kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
fi
stop_server

start_server --access-log=true --log-level info --log-file "$WORK/access.log"
record "healthz keep-alive, access log to a file" "$(wrk_rps "http://127.0.0.1:$PORT/healthz")" "req/s"
stop_server

mkdir -p bench/results
{
  printf '{"machine":{"cpu":"%s","cores":%s,"memGiB":%s,"kernel":"%s"},"build":"%s","smoke":%s,"results":[' \
    "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" "$(free -g | awk '/Mem:/ {print $2}')" "$(uname -r)" \
    "$BUILD_KIND" "$([ $SMOKE = 1 ] && echo true || echo false)"
  (IFS=,; printf '%s' "${RESULTS[*]}")
  printf ']}\n'
} > bench/results/latest.json
echo "wrote bench/results/latest.json"
