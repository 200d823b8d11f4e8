#!/usr/bin/env bash
# breakhook benchmark: bounded in time, 127.0.0.1 only, prints a table and writes
# bench/results/latest.json. Usage: bench/run.sh [--smoke]
#   --smoke   every section with tiny counts, a few seconds each (what CI runs on the
#             debug binary; it proves the script works and never asserts a speed)
# Environment: BIN (default build/release/breakhook; bench_sink and bench_load are
# taken from the same directory), DURATION (seconds per wrk run, default 10; smoke 2),
# CONNECTIONS (64), E2E_INFLIGHT (--max-inflight-per-destination, 16), E2E_INFLIGHT_HIGH
# (the second end-to-end run with one webhook, 64), DELIVERY_ARGS (extra `serve` options
# for every server that delivers, e.g. "--delivery-threads 1"; default none),
# SECTIONS (only these, e.g. "breaks latency"; names as in the run_section lines at
# the end), BENCH_KEEP=1 (keep the work directory: store, logs, send/receipt files).
#
# Every section starts its own server (and sinks) and stops them; a section that
# cannot measure a figure prints a note, records nothing for it and the run goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
DURATION=${DURATION:-$([ $SMOKE = 1 ] && echo 2 || echo 10)}
CONNECTIONS=${CONNECTIONS:-64}
E2E_INFLIGHT=${E2E_INFLIGHT:-16}
E2E_INFLIGHT_HIGH=${E2E_INFLIGHT_HIGH:-64}
BIN=${BIN:-build/release/breakhook}
[ -x "$BIN" ] || { echo "bench: $BIN missing: run 'make build' first" >&2; exit 1; }
BIN_DIR=$(dirname "$BIN")
SINK=${SINK:-$BIN_DIR/bench_sink}
LOAD=${LOAD:-$BIN_DIR/bench_load}
command -v wrk >/dev/null || { echo "bench: wrk missing: run scripts/install-deps.sh" >&2; exit 1; }

# Sizes. The full run stays under 10 minutes on 2 cores; smoke takes seconds.
if [ $SMOKE = 1 ]; then
  BATCH_FILES=2        # $batch files of LINES new breaks
  E2E_FILES=2          # end-to-end, 1 webhook: files of LINES new breaks
  E2E100_WRITES=50     # end-to-end, 100 webhooks: writes (x100 deliveries)
  LAT_SECONDS=1.5      # latency at a fixed rate: seconds of paced writes
  ISO_SECONDS=1.5      # isolation: seconds of paced writes per phase
  BACKLOG_RECORDS=2000 # backlog: records, each written BACKLOG_VERSIONS times
  BACKLOG_FILE_RECORDS=2000
  IMPORT_BREAKS=100    # import: new breaks written by the CLI beside the server
  IDLE_TENANTS=5       # idle: tenants with idle webhooks (bench/fleet.py)
  IDLE_PER=2           # idle: webhooks per such tenant
  IDLE_BUSY=2          # idle (b): of those tenants, how many get writes (x IDLE_PER webhooks)
  IDLE_BUSY_BREAKS=20  # idle (b): new breaks per such tenant
  DELTA_CHANGES=500    # delta: changes the follow-ups serve (bench/delta.py)
  PG_FILES=1           # pg: \$batch files of LINES new breaks per back-end
  DELTA_POLLS=5        # delta: long polls woken by a write
  WAIT_MAX=60          # the longest wait for deliveries in any one step (s)
else
  BATCH_FILES=40
  E2E_FILES=${E2E_FILES:-10}
  E2E100_WRITES=3000
  LAT_SECONDS=12
  ISO_SECONDS=10
  BACKLOG_RECORDS=100000
  BACKLOG_FILE_RECORDS=10000
  IMPORT_BREAKS=1000
  IDLE_TENANTS=1000
  IDLE_PER=10
  IDLE_BUSY=10
  IDLE_BUSY_BREAKS=1000
  DELTA_CHANGES=100000
  PG_FILES=10
  DELTA_POLLS=200
  WAIT_MAX=240
fi
LINES=10000
LAT_RATE=1000
BACKLOG_VERSIONS=10
# Retries a second apart, so a destination that comes back is retried within seconds.
RETRY_1S=$(printf '1s%.0s,' $(seq 30)); RETRY_1S=${RETRY_1S%,}

WORK=$(mktemp -d /tmp/breakhook-bench.XXXXXX)
STORE="sqlite:$WORK/bench.db"
SERVER_PID=""
MPORT=""
SINK_PIDS=()
WEBHOOK_IDS=()
RESULTS=()
NOTES=()
TIMINGS=()
STOPPED=0
NEXT_ID=20000000 # ids of breaks written by bench_load, each used once
CEIL=""
E2E_ONE=""       # end-to-end with one webhook alone (sec_e2e_one), for sec_idle's ratio

# ---- helpers --------------------------------------------------------------

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  for p in "${SINK_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# note TEXT: printed in the table and kept in the JSON.
note() {
  printf '  note: %s\n' "$*"
  NOTES+=("$*")
}

# record NAME VALUE UNIT: a figure. A value that is not a number is not recorded.
record() {
  if ! [[ "$2" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then
    note "$1: not measured"
    return 0
  fi
  printf '%-58s %14s %s\n' "$1" "$2" "$3"
  RESULTS+=("{\"name\":\"$(json_esc "$1")\",\"value\":$2,\"unit\":\"$3\"}")
}

json_esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

# calc EXPR [VAR=VALUE...]: awk arithmetic, e.g. calc 'a / b' a=1 b=3 -> 0.333
calc() {
  local expr=$1; shift
  local args=()
  for kv in "$@"; do args+=(-v "$kv"); done
  awk "${args[@]}" "BEGIN { print ($expr) }"
}

# run_section NAME TITLE FUNCTION [ARGS...]: runs one section (unless SECTIONS names
# others); whatever it fails to measure is a note, then its server and sinks are
# stopped whatever happened.
run_section() {
  local name=$1 title=$2; shift 2
  [ -z "${SECTIONS:-}" ] || [[ " $SECTIONS " == *" $name "* ]] || return 0
  local t0=$SECONDS
  echo "-- $title"
  if ! "$@"; then
    note "$title: stopped early (figures above it in this section stand)"
    STOPPED=$((STOPPED + 1))
  fi
  [ -n "$SERVER_PID" ] && { webhooks_delete; stop_server; }
  for p in "${SINK_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  SINK_PIDS=()
  TIMINGS+=("$title: $((SECONDS - t0)) s")
}

# flag_supported FLAG: does this breakhook's `serve` know FLAG?
# Not grep -q: it exits at the first match, serve can then die of SIGPIPE, and with
# pipefail the check failed at random (3 in 20 runs).
flag_supported() { "$BIN" serve --help 2>/dev/null | grep -- "$1" >/dev/null; }

# start_server [serve options...]: one HTTP loop thread, no rate limit, warnings only;
# sets SERVER_PID, PORT, API, TOKEN and AUTH (a fresh token for the bench client).
start_server() {
  rm -f "$WORK/port" "$WORK/metrics-port"
  local metrics=()
  # Never the default 9464 (another server may hold it); older builds have no metrics.
  flag_supported --metrics-listen &&
    metrics=(--metrics-listen 127.0.0.1:0 --metrics-port-file "$WORK/metrics-port")
  "$BIN" serve --listen 127.0.0.1:0 --port-file "$WORK/port" --store "$STORE" \
    --rate-limit 0 --log-level warn "${metrics[@]}" "$@" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  if ! [ -s "$WORK/port" ]; then
    note "the server did not start with: $*: $(tail -n 2 "$WORK/server.log" | tr '\n' ' ')"
    kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
    return 1
  fi
  PORT=$(cat "$WORK/port")
  MPORT=$(cat "$WORK/metrics-port" 2>/dev/null || true)
  API="http://127.0.0.1:$PORT/connector/protimeapi/api/v1"
  TOKEN=$(curl -s -A bench -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    "http://127.0.0.1:$PORT/tenants/bench/connect/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$TOKEN" ] || { note "no access token from the server"; return 1; }
  AUTH=(-A bench -H "Authorization: Bearer $TOKEN")
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# The server with the delivery engine allowed to reach the sinks on 127.0.0.1.
start_delivery_server() {
  # shellcheck disable=SC2086 # DELIVERY_ARGS: extra serve options, split on spaces
  start_server --access-log=false --allow-http-destinations --allow-destination 127.0.0.1/32 \
    --max-inflight-per-destination "$E2E_INFLIGHT" ${DELIVERY_ARGS:-} "$@"
}

# webhook_create URL: a webhook on breaks; its id is kept for webhooks_delete.
webhook_create() {
  local ans id
  ans=$(curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -X POST "$API/webhooks" \
    -d "{\"destinationUrl\":\"$1\",\"collectionName\":\"breaks\"}")
  id=$(printf '%s' "$ans" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
  [ -n "$id" ] || { note "webhook not created: $(printf '%s' "$ans" | head -c 200)"; return 1; }
  WEBHOOK_IDS+=("$id")
}
# Deletes every webhook made in this section, so the next server does not deliver
# their leftovers.
webhooks_delete() {
  for id in "${WEBHOOK_IDS[@]}"; do
    curl -s -o /dev/null "${AUTH[@]}" -X DELETE "$API/webhooks/$id" || true
  done
  WEBHOOK_IDS=()
}
# The engine picks up new webhooks once a second.
wait_engine_pickup() { sleep 1.5; }

# sink_start NAME [bench_sink options...]: sets SINK_PID and SINK_PORT.
sink_start() {
  local name=$1; shift
  rm -f "$WORK/$name.port"
  "$SINK" "$@" "$WORK/$name.port" 2>>"$WORK/$name.err" &
  SINK_PID=$!
  SINK_PIDS+=("$SINK_PID")
  for _ in $(seq 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
  [ -s "$WORK/$name.port" ] || { note "bench_sink $* did not start: $(cat "$WORK/$name.err")"; return 1; }
  SINK_PORT=$(cat "$WORK/$name.port")
}
sink_stop() {
  local keep=()
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true
  for p in "${SINK_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  SINK_PIDS=("${keep[@]}")
}
# sink_stats PORT -> "deliveries first_ms last_ms"
sink_stats() {
  curl -s "http://127.0.0.1:$1/stats" |
    sed -n 's/.*"deliveries":\([0-9]*\),"first_ms":\([0-9]*\),"last_ms":\([0-9]*\).*/\1 \2 \3/p'
}
sink_count() { sink_stats "$1" | cut -d' ' -f1; }
sink_flush() { curl -s -o /dev/null "http://127.0.0.1:$1/flush"; }

# wait_deliveries PORT TARGET MAX_S IDLE_S: polls the sink until it has counted TARGET
# deliveries; gives up after MAX_S, or once deliveries have started and then not grown
# for IDLE_S. Sets GOT. Returns 0 only when TARGET was reached.
wait_deliveries() {
  local port=$1 target=$2 deadline=$((SECONDS + $3)) idle_s=$4
  local last=-1 last_change=$SECONDS
  while :; do
    GOT=$(sink_count "$port"); GOT=${GOT:-0}
    [ "$GOT" -ge "$target" ] && return 0
    if [ "$GOT" != "$last" ]; then last=$GOT; last_change=$SECONDS; fi
    [ "$GOT" -gt 0 ] && [ $((SECONDS - last_change)) -ge "$idle_s" ] && return 1
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# gen_breaks FILE FIRST_ID RECORDS VERSIONS MONTH BASE: NDJSON $batch upserts of
# RECORDS breaks from FIRST_ID, 100 people, one month. VERSIONS > 1 writes each record
# that many times on consecutive lines with clockedDurationInMinutes BASE, BASE+1, …,
# so every line is a real change.
gen_breaks() {
  awk -v out="$1" -v first="$2" -v n="$3" -v versions="$4" -v month="$5" -v base="$6" 'BEGIN {
    for (i = 0; i < n; i++) {
      id = first + i
      for (v = 0; v < versions; v++) {
        clocked = versions == 1 ? id % 90 : base + v
        printf "{\"op\":\"upsert\",\"data\":{\"id\":%d,\"person\":{\"id\":%d},\"breakDefinition\":{\"id\":1},\"date\":\"%s-%02d\",\"clockedDurationInMinutes\":%d,\"startTimeInMinutes\":720,\"endTimeInMinutes\":840,\"isBreakTaken\":true}}\n", id, id % 100 + 1, month, id % 28 + 1, clocked > out
      }
    }
    close(out)
  }'
}

# post_batch FILE: POSTs FILE to $batch; prints the summary object's fields as
# "created replaced unchanged failed" (nothing if there was no summary).
post_batch() {
  curl -s "${AUTH[@]}" -H 'Content-Type: application/x-ndjson' --data-binary @"$1" \
    "$API/breaks/\$batch" | tail -n 1 |
    sed -n 's/.*"created":\([0-9]*\),"replaced":\([0-9]*\),"unchanged":\([0-9]*\),.*"failed":\([0-9]*\).*/\1 \2 \3 \4/p'
}

# wrk_rps URL [extra wrk args...] -> requests/s
wrk_rps() {
  local url=$1; shift
  timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url" \
    | awk '/Requests\/sec/ {print $2}'
}

# wrk_lat URL [extra wrk args...]: sets WRK_RPS (requests/s) and WRK_P99 (ms).
wrk_lat() {
  local url=$1 out; shift
  out=$(timeout $((DURATION + 30)) wrk -t1 -c32 -d"${DURATION}s" --latency "$@" "$url" || true)
  WRK_RPS=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
  WRK_P99=$(printf '%s\n' "$out" | awk '$1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u);
    sub(/[a-z]+$/, "", v); print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v)}')
}

# CPU time (user + system, in clock ticks) of process PID so far.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# proc_mib PID FIELD: VmRSS/VmHWM of a process in MiB.
proc_mib() { awk -v f="$2:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
store_mib() { du -cb "$WORK"/bench.db* | awk 'END {printf "%.1f", $1 / 1048576}'; }

# paced_writes NAME SECONDS: bench_load writes LAT_RATE breaks a second (fresh ids,
# each once) with PUT over keep-alive; their send times go to $WORK/NAME.sent. Sets
# LOAD_SUMMARY (bench_load's key=value line) and LOAD_OK.
paced_writes() {
  local name=$1 count
  count=$(calc 'int(r * s)' r="$LAT_RATE" s="$2")
  LOAD_SUMMARY=$(BENCH_TOKEN=$TOKEN timeout $(( ${2%.*} + 60 )) "$LOAD" --url "$API/breaks/" \
    --rate "$LAT_RATE" --count "$count" --first-id "$NEXT_ID" --out "$WORK/$name.sent" \
    2>"$WORK/$name.load.err") || true
  NEXT_ID=$((NEXT_ID + count))
  LOAD_OK=$(load_field ok)
  [ -s "$WORK/$name.load.err" ] && note "bench_load: $(head -c 300 "$WORK/$name.load.err")"
  [ -n "$LOAD_OK" ] && [ "$LOAD_OK" -gt 0 ] || { note "bench_load wrote nothing"; return 1; }
  # The load must not fall behind silently: a slow writer would measure less load.
  if [ "$(calc 'rate < 0.95 * want || late > 0.01 * sent' rate="$(load_field rate)" \
        want="$LAT_RATE" late="$(load_field late)" sent="$(load_field sent)")" = 1 ]; then
    note "$name: the writer fell behind its schedule: $LOAD_SUMMARY"
  fi
}
load_field() { printf '%s\n' "$LOAD_SUMMARY" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# latency_percentiles NAME RECORD_FILE COPIES: joins $WORK/NAME.sent (id, sent µs,
# answer µs) with the sink's record file (id, receipt µs). Every write should arrive
# COPIES times (once per webhook). A delivery that never came counts as slower than
# any that did, so a percentile that falls on one is not measured. Sets P50 P99
# P999 of receipt - sent (empty when not measured), LOW_P99 (the p99 of receipt -
# write answered) and LAT_MISSING.
#
# The SPEC's latency is from the commit, which the client cannot see: it lies
# between the write being sent and its answer arriving. So per delivery
# receipt - answered <= receipt - commit <= receipt - sent, and the same holds for
# every percentile: the first is a lower bound (negative when the delivery beat the
# write's own answer), the second the figure reported as "write sent -> received".
latency_percentiles() {
  local sent=$WORK/$1.sent rec=$2 copies=$3 expected n
  expected=$(( $(wc -l <"$sent") * copies ))
  awk 'NR == FNR {s[$1] = $2; a[$1] = $3; next}
    ($1 in s) {printf "%.3f %.3f\n", ($2 - s[$1]) / 1000, ($2 - s[$1] - a[$1]) / 1000}' \
    "$sent" "$rec" >"$WORK/$1.lat"
  n=$(wc -l <"$WORK/$1.lat")
  LAT_MISSING=$((expected - n))
  [ "$LAT_MISSING" -gt 0 ] && note "$1: $LAT_MISSING of $expected deliveries did not arrive"
  [ "$LAT_MISSING" -lt 0 ] && note "$1: $((-LAT_MISSING)) deliveries more than writes x webhooks (repeats)"
  local pct='function q(p,   k) { k = int(p * total + 0.999999); if (k < 1) k = 1; return k <= NR ? v[k] : "-" }
    {v[NR] = $1} END {print q(0.5), q(0.99), q(0.999)}'
  read -r P50 P99 P999 < <(cut -d' ' -f1 "$WORK/$1.lat" | sort -n | awk -v total="$expected" "$pct")
  read -r _ LOW_P99 _ < <(cut -d' ' -f2 "$WORK/$1.lat" | sort -g | awk -v total="$expected" "$pct")
  [ "$P50" = - ] && P50=""; [ "$P99" = - ] && P99=""; [ "$P999" = - ] && P999=""
  [ "$LOW_P99" = - ] && LOW_P99=""
  return 0
}

# scrape FILE: the server's /metrics into FILE (empty without a metrics listener).
scrape() {
  : >"$1"
  [ -n "$MPORT" ] && curl -s -o "$1" "http://127.0.0.1:$MPORT/metrics"
  return 0
}

# hist_quantiles FAMILY BEFORE AFTER: p50, p99 and p99.9 (in ms) of the observations
# a histogram gained between two scrapes, interpolated linearly inside the bucket the
# rank falls in, as Prometheus's histogram_quantile does; a rank in the +Inf bucket
# gives the last finite bound. Sets HQ50 HQ99 HQ999 and HQ_N (observations); all
# empty when the scrapes have no such family.
hist_quantiles() {
  read -r HQ_N HQ50 HQ99 HQ999 < <(awk -v fam="$1_bucket{le=\"" '
    index($0, fam) == 1 {
      le = substr($0, length(fam) + 1); le = substr(le, 1, index(le, "\"") - 1)
      if (FILENAME == ARGV[1]) before[le] = $2
      else { if (!(le in after)) order[++n] = le; after[le] = $2 }
    }
    function q(p,   rank, k, prev, lo, c) {
      rank = p * total; prev = 0; lo = 0
      for (k = 1; k <= n; k++) {
        c = after[order[k]] - before[order[k]]
        if (c >= rank && c > prev) {
          if (order[k] == "+Inf") return lo * 1000
          return (lo + (order[k] - lo) * (rank - prev) / (c - prev)) * 1000
        }
        prev = c; if (order[k] != "+Inf") lo = order[k]
      }
      return lo * 1000
    }
    END {
      if (!n) { print "- - - -"; exit }
      total = after["+Inf"] - before["+Inf"]
      if (total <= 0) { print "0 - - -"; exit }
      printf "%d %.3f %.3f %.3f\n", total, q(0.5), q(0.99), q(0.999)
    }' "$2" "$3")
  [ "$HQ_N" = - ] && HQ_N=""
  [ "$HQ50" = - ] && HQ50=""; [ "$HQ99" = - ] && HQ99=""; [ "$HQ999" = - ] && HQ999=""
  return 0
}

# bench_tenant STORE_URL: tenant bench and an API client with every scope the bench
# needs in that store; sets CLIENT_ID and CLIENT_SECRET.
bench_tenant() {
  local json
  "$BIN" tenant create bench --store "$1" >/dev/null 2>"$WORK/cli.log" || return 1
  json=$("$BIN" client create --tenant bench --name bench --json --store "$1" \
    --scopes "connector-protimeapi-breaks.read connector-protimeapi-breaks.write connector-protimeapi-people.write connector-protimeapi-break-definitions.write connector-protimeapi-break-definitions.read connector-protimeapi-webhooks.read connector-protimeapi-webhooks.write" \
    2>>"$WORK/cli.log" | tail -n 1)
  CLIENT_ID=$(echo "$json" | sed 's/.*"clientId":"\([^"]*\)".*/\1/')
  CLIENT_SECRET=$(echo "$json" | sed 's/.*"clientSecret":"\([^"]*\)".*/\1/')
}

# seed_records: on the running server, a break definition and 100 people: every
# section writes breaks for them.
seed_records() {
  curl -s -o /dev/null "${AUTH[@]}" -H 'Content-Type: application/json' -X PUT "$API/break-definitions/1" \
    -d '{"id":1,"name":{"default":"Lunch"},"friendlyName":{"default":"Lunch"},"paidDurationInMinutes":0,"minimumDurationInMinutes":30,"maximumDurationInMinutes":60,"ifNotClockedDurationInMinutes":30,"hasToBeTakenUninterrupted":true}'
  for p in $(seq 1 100); do
    curl -s -o /dev/null "${AUTH[@]}" -H 'Content-Type: application/json' -X PUT "$API/people/$p" -d "{\"id\":$p}"
  done
}

seed_data() {
  start_server --access-log=false || return 1
  seed_records
  stop_server
}

# ---- sections ---------------------------------------------------------------

# HTTP and authentication without the store.
sec_http() {
  start_server --access-log=false || return 1
  record "healthz keep-alive" "$(wrk_rps "http://127.0.0.1:$PORT/healthz")" "req/s"
  record "token-info authenticated (JWT check)" \
    "$(wrk_rps "$API/token-info" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")" "req/s"
  record "token-info unauthenticated (401 answer)" \
    "$(wrk_rps "$API/token-info" -H "User-Agent: bench")" "req/s"
}

# Breaks data: $batch upserts of new breaks, then reads.
sec_breaks() {
  start_server --access-log=false || return 1
  # Each file: LINES upserts of distinct breaks over one month of 2026, 100 people.
  for f in $(seq 0 $((BATCH_FILES - 1))); do
    gen_breaks "$WORK/batch$f.ndjson" $((f * LINES + 1)) "$LINES" 1 2026-03 0
  done
  local t0 t1 s
  t0=$(date +%s.%N)
  for f in $(seq 0 $((BATCH_FILES - 1))); do
    s=$(post_batch "$WORK/batch$f.ndjson")
    [ "${s%% *}" = "$LINES" ] || { note "\$batch file $f: summary '$s', not $LINES created"; return 1; }
  done
  t1=$(date +%s.%N)
  rm -f "$WORK"/batch*.ndjson
  record "\$batch upserts (new breaks, durable)" \
    "$(calc 'sprintf("%.0f", n / (b - a))' n=$((BATCH_FILES * LINES)) a="$t0" b="$t1")" "upserts/s"
  local nbreaks=$((BATCH_FILES * LINES)) page_rps
  # A page of 1000 (the default page size) from the first day, with a token.
  page_rps=$(wrk_rps "$API/breaks?filter=date%20ge%20'2026-03-01'%20and%20date%20le%20'2026-03-31'" \
    -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")
  record "GET /breaks 1000-item pages" "$page_rps" "pages/s"
  record "GET /breaks breaks served" "$(calc 'sprintf("%.0f", r * 1000)' r="$page_rps")" "breaks/s"
  cat >"$WORK/byid.lua" <<LUA
local n = $nbreaks
request = function()
  return wrk.format("GET", "/connector/protimeapi/api/v1/breaks/" .. math.random(1, n))
end
LUA
  record "GET /breaks/{id} (random ids, with token)" \
    "$(wrk_rps "http://127.0.0.1:$PORT" -s "$WORK/byid.lua" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")" "req/s"
}

# Reads beside writes: random GET /breaks/{id} (32 connections) alone, then while
# $batch files are posted one after another, then while 32 connections PUT new
# breaks one at a time (each waiting for its group commit). A write that waits for
# its commit on a thread the reads need shows here as lost read throughput.
sec_mixed() {
  start_server --access-log=false || return 1
  local n=$((2 * LINES)) f
  for f in 0 1; do
    gen_breaks "$WORK/mixed$f.ndjson" $((30000000 + f * LINES + 1)) "$LINES" 1 2026-04 0
    post_batch "$WORK/mixed$f.ndjson" >/dev/null
  done
  cat >"$WORK/mixed-byid.lua" <<LUA
local n = $n
request = function()
  return wrk.format("GET", "/connector/protimeapi/api/v1/breaks/" .. (30000000 + math.random(1, n)))
end
LUA
  local rd=(-s "$WORK/mixed-byid.lua" -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN")
  wrk_lat "http://127.0.0.1:$PORT" "${rd[@]}"
  record "reads alone: GET /breaks/{id}" "$WRK_RPS" "req/s"
  record "reads alone: p99" "$WRK_P99" "ms"

  # $batch in a loop for as long as wrk reads: 8 files of new breaks, then the same
  # breaks again with clockedDurationInMinutes 91, 92, … (every line a real change),
  # 80 files in all (enough for 80,000 upserts/s over 10 s). Eight files alone ran
  # out within seconds: the reads ran beside $batch only part of the time and the
  # rate read 80,000 / DURATION whatever the server did.
  local mixed_files=80 k
  for f in 0 1 2 3 4 5 6 7; do
    gen_breaks "$WORK/mixedw$f.ndjson" $((31000000 + f * LINES + 1)) "$LINES" 1 2026-05 0
  done
  for k in $(seq 8 $((mixed_files - 1))); do
    sed "s/\"clockedDurationInMinutes\":[0-9]*/\"clockedDurationInMinutes\":$((91 + k / 8))/" \
      "$WORK/mixedw$((k % 8)).ndjson" >"$WORK/mixedw$k.ndjson"
  done
  (f=0; while [ ! -e "$WORK/mixed.stop" ] && [ $f -lt $mixed_files ]; do
     post_batch "$WORK/mixedw$f.ndjson" >/dev/null; f=$((f + 1)); echo $f >"$WORK/mixed.files"
   done) &
  local loop=$! t0 t1 files
  t0=$(date +%s.%N)
  wrk_lat "http://127.0.0.1:$PORT" "${rd[@]}"
  touch "$WORK/mixed.stop"; wait "$loop" 2>/dev/null || true
  t1=$(date +%s.%N)
  files=$(cat "$WORK/mixed.files" 2>/dev/null || echo 0)
  [ "$files" -ge $mixed_files ] &&
    note "mixed: all $mixed_files \$batch files were posted before the reads ended; the reads ran beside \$batch only part of the time"
  record "reads while \$batch runs: GET /breaks/{id}" "$WRK_RPS" "req/s"
  record "reads while \$batch runs: p99" "$WRK_P99" "ms"
  record "\$batch upserts while reads run" \
    "$(calc 'sprintf("%.0f", n / (b - a))' n=$((files * LINES)) a="$t0" b="$t1")" "upserts/s"
  rm -f "$WORK"/mixed*.ndjson "$WORK/mixed.stop"

  # 32 connections of single PUTs (new ids), each waiting for its commit.
  cat >"$WORK/mixed-put.lua" <<LUA
local id = 32000000
request = function()
  id = id + 1
  local body = string.format('{"id":%d,"person":{"id":%d},"breakDefinition":{"id":1},"date":"2026-06-%02d","clockedDurationInMinutes":30,"startTimeInMinutes":720,"endTimeInMinutes":840,"isBreakTaken":true}', id, id % 100 + 1, id % 28 + 1)
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end -- a table given to format replaces -H
  h["Content-Type"] = "application/json"
  return wrk.format("PUT", "/connector/protimeapi/api/v1/breaks/" .. id, h, body)
end
LUA
  timeout $((DURATION + 30)) wrk -t1 -c32 -d"${DURATION}s" -s "$WORK/mixed-put.lua" \
    -H "User-Agent: bench" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT" \
    >"$WORK/mixed-put.out" 2>&1 &
  local puts=$!
  wrk_lat "http://127.0.0.1:$PORT" "${rd[@]}"
  wait "$puts" 2>/dev/null || true
  record "reads while 32 connections PUT: GET /breaks/{id}" "$WRK_RPS" "req/s"
  record "reads while 32 connections PUT: p99" "$WRK_P99" "ms"
  grep -q "Non-2xx" "$WORK/mixed-put.out" &&
    note "mixed: PUTs answered non-2xx: $(grep Non-2xx "$WORK/mixed-put.out")"
  record "PUT /breaks/{id} beside the reads (32 connections)" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/mixed-put.out")" "req/s"
}

# The ceiling: a plain load generator POSTing a delivery-sized signed body to the sink.
sec_ceiling() {
  sink_start ceiling || return 1
  local body
  body=$(head -c 300 /dev/zero | tr '\0' x)
  cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"changeType":"InsertOrUpdate","data":{"pad":"$body"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "evt_00000000000000000001_abcdefgh"
wrk.headers["webhook-timestamp"] = "1800000000"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
LUA
  CEIL=$(wrk_rps "http://127.0.0.1:$SINK_PORT/hook" -s "$WORK/post.lua")
  record "ceiling: wrk POSTs to the sink" "$CEIL" "req/s"
}

# end_to_end NAME WEBHOOKS FILES...: WEBHOOKS webhooks on breaks all pointing to one
# sink, then the files through $batch; measures from the first write until the sink
# has counted every delivery (lines x WEBHOOKS), so writes and deliveries run at the
# same time, on the same cores as the sink. Sets E2E (events/s) on success.
end_to_end() {
  local name=$1 webhooks=$2; shift 2
  E2E=""
  sink_start "$name" || return 1
  local sport=$SINK_PORT lines=0 t0 first last ticks0 ticks1
  start_delivery_server --max-webhooks $((webhooks + 10)) || return 1
  if [ "$webhooks" = 1 ]; then
    webhook_create "http://127.0.0.1:$sport/hook" || return 1
  else
    for i in $(seq 1 "$webhooks"); do webhook_create "http://127.0.0.1:$sport/hook/$i" || return 1; done
  fi
  wait_engine_pickup
  for f in "$@"; do lines=$((lines + $(wc -l <"$f"))); done
  local n=$((lines * webhooks))
  scrape "$WORK/$name.before.prom"
  ticks0=$(proc_ticks "$SERVER_PID")
  t0=$(now_ms)
  for f in "$@"; do post_batch "$f" >/dev/null; done
  if ! wait_deliveries "$sport" "$n" 120 15; then
    note "$name: only $GOT of $n deliveries within the wait; no figure"
    return 1
  fi
  read -r _ first last < <(sink_stats "$sport")
  ticks1=$(proc_ticks "$SERVER_PID")
  scrape "$WORK/$name.after.prom"
  E2E=$(calc 'sprintf("%.0f", n * 1000 / (b - a))' n="$GOT" a="$t0" b="$last")
  # The server's user + system CPU per delivered event (the $batch writes included):
  # less sensitive to other load on the machine than the rate.
  E2E_CPU=$(calc 'sprintf("%.1f", (b - a) * 1000000 / hz / n)' a="$ticks0" b="$ticks1" \
    hz="$(getconf CLK_TCK)" n="$GOT")
}

sec_e2e_one() {
  for f in $(seq 0 $((E2E_FILES - 1))); do
    gen_breaks "$WORK/e2e1-$f.ndjson" $((5000000 + f * LINES + 1)) "$LINES" 1 2026-04 0
  done
  end_to_end e2e1 1 "$WORK"/e2e1-*.ndjson || return 1
  E2E_ONE=$E2E
  record "end-to-end: \$batch write -> signed POST -> 2xx (1 webhook)" "$E2E" "events/s"
  record "end-to-end, 1 webhook: server CPU per event" "$E2E_CPU" "us"
  # At saturation (\$batch takes writes faster than they are delivered) the p99 is
  # the queue's length, not a delivery's: sec_idle reports the same figure beside
  # 10,000 idle webhooks.
  hist_quantiles breakhook_delivery_latency_seconds "$WORK/e2e1.before.prom" "$WORK/e2e1.after.prom"
  [ -n "$HQ99" ] && record "end-to-end, 1 webhook: commit -> 2xx p99 (inside, /metrics)" "$HQ99" "ms"
  [ -n "$CEIL" ] && record "end-to-end as a ratio of the ceiling" "$(calc 'sprintf("%.2f", a / b)' a="$E2E" b="$CEIL")" "ratio"
  # The same with a higher per-destination cap than the SPEC's default of 16: at 16
  # the pipeline waits on round trips (hand-overs between threads) with CPU to spare,
  # so this shows how much of the gap to the ceiling is the cap.
  webhooks_delete
  stop_server
  for f in $(seq 0 $((E2E_FILES - 1))); do
    gen_breaks "$WORK/e2e1h-$f.ndjson" $((7000000 + f * LINES + 1)) "$LINES" 1 2026-04 0
  done
  local cap=$E2E_INFLIGHT
  E2E_INFLIGHT=$E2E_INFLIGHT_HIGH
  end_to_end e2e1h 1 "$WORK"/e2e1h-*.ndjson || { E2E_INFLIGHT=$cap; return 1; }
  E2E_INFLIGHT=$cap
  record "end-to-end, 1 webhook, $E2E_INFLIGHT_HIGH in flight per destination" "$E2E" "events/s"
  record "end-to-end, 1 webhook, $E2E_INFLIGHT_HIGH in flight: server CPU per event" "$E2E_CPU" "us"
  [ -n "$CEIL" ] && record "end-to-end, $E2E_INFLIGHT_HIGH in flight, as a ratio of the ceiling" "$(calc 'sprintf("%.2f", a / b)' a="$E2E" b="$CEIL")" "ratio"
  return 0
}

# 100 webhooks on breaks, all to one sink (distinct paths, one destination host:port,
# so they share its in-flight cap): each write is 100 deliveries.
sec_e2e_hundred() {
  gen_breaks "$WORK/e2e100.ndjson" 6000001 "$E2E100_WRITES" 1 2026-04 0
  end_to_end e2e100 100 "$WORK/e2e100.ndjson" || return 1
  record "end-to-end: 100 webhooks, $E2E100_WRITES writes x 100" "$E2E" "events/s"
  [ -n "$CEIL" ] && record "end-to-end, 100 webhooks, as a ratio of the ceiling" "$(calc 'sprintf("%.2f", a / b)' a="$E2E" b="$CEIL")" "ratio"
  return 0
}

# Latency at a fixed 1,000 events/s: one PUT /breaks/{id} a millisecond, each id
# once, one webhook. Latency is the sink's receipt time minus the time the write
# request was sent, so it includes the write's own durable commit: an upper bound
# of the SPEC's commit -> receipt (see latency_percentiles for the lower bound).
sec_latency() {
  [ -x "$LOAD" ] || { note "latency: $LOAD missing; skipped"; return 0; }
  sink_start lat --record "$WORK/lat.rec" || return 1
  local sport=$SINK_PORT
  start_delivery_server || return 1
  webhook_create "http://127.0.0.1:$sport/hook" || return 1
  wait_engine_pickup
  scrape "$WORK/lat.before.prom"
  paced_writes lat "$LAT_SECONDS" || return 1
  wait_deliveries "$sport" "$LOAD_OK" 30 3 || true
  sink_flush "$sport"
  scrape "$WORK/lat.after.prom"
  latency_percentiles lat "$WORK/lat.rec" 1
  # The SPEC's figure itself, from inside the server: commit -> 2xx, read from the
  # histogram of /metrics over exactly this section's deliveries.
  hist_quantiles breakhook_delivery_latency_seconds "$WORK/lat.before.prom" "$WORK/lat.after.prom"
  if [ -z "$HQ_N" ]; then
    note "latency: no commit -> 2xx histogram in /metrics (a build without metrics?)"
  else
    [ "$HQ_N" != "$LOAD_OK" ] &&
      note "latency: $HQ_N commit -> 2xx observations for $LOAD_OK writes"
    record "latency commit -> 2xx (inside, /metrics), p50" "$HQ50" "ms"
    record "latency commit -> 2xx (inside, /metrics), p99" "$HQ99" "ms"
    record "latency commit -> 2xx (inside, /metrics), p99.9" "$HQ999" "ms"
  fi
  record "latency at 1,000 writes/s: achieved write rate" "$(load_field rate)" "writes/s"
  record "latency at 1,000 writes/s: write answered, p99" "$(load_field answer_p99_ms)" "ms"
  record "latency write sent -> sink received, p50" "$P50" "ms"
  record "latency write sent -> sink received, p99" "$P99" "ms"
  record "latency write sent -> sink received, p99.9" "$P999" "ms"
  record "latency write answered -> sink received, p99 (lower bound)" "$LOW_P99" "ms"
}

# Import beside a running server: the CLI (`breakhook import`, another process) writes
# IMPORT_BREAKS new breaks into the same SQLite file while the server runs with one
# webhook to a sink; nothing else writes meanwhile, so only the server noticing
# another process's commit (the store's writer polls PRAGMA data_version every
# 100 ms and notifies) or the engine's own 250 ms poll can pick them up. Timed from
# the import process's exit to the sink's first and last receipt (the sink's
# wall-clock first_ms/last_ms; the first can come before the exit, as the commit
# precedes it: then it is negative).
sec_import() {
  sink_start import || return 1
  local sport=$SINK_PORT t0 t1 first last rc=0
  start_delivery_server || return 1
  webhook_create "http://127.0.0.1:$sport/hook" || return 1
  wait_engine_pickup
  gen_breaks "$WORK/import.ndjson" 40000001 "$IMPORT_BREAKS" 1 2026-08 0
  t0=$(now_ms)
  timeout 120 "$BIN" import --tenant bench --store "$STORE" --quiet "$WORK/import.ndjson" \
    >"$WORK/import.out" 2>"$WORK/import.err" || rc=$?
  t1=$(now_ms)
  [ "$rc" = 0 ] || { note "import: exit status $rc: $(head -c 300 "$WORK/import.err")"; return 1; }
  if ! wait_deliveries "$sport" "$IMPORT_BREAKS" 30 5; then
    note "import: only $GOT of $IMPORT_BREAKS deliveries within the wait; no figure"
    return 1
  fi
  read -r _ first last < <(sink_stats "$sport")
  record "import of $IMPORT_BREAKS breaks beside a running server: import run" "$((t1 - t0))" "ms"
  record "import beside a running server: import exit -> first delivery" "$((first - t1))" "ms"
  record "import beside a running server: import exit -> last delivery" "$((last - t1))" "ms"
  rm -f "$WORK/import.ndjson"
}

# End-to-end over TLS (issue #15): the same load as e2e1 (E2E_FILES $batch files of
# new breaks, one webhook) to an https destination. stunnel4 terminates TLS in front
# of bench_sink, with a certificate for IP 127.0.0.1 from a CA made here with openssl;
# the server trusts that CA through --ca-file. Reported: events/s, as a ratio of e2e1
# (plain http, same run), and the TLS handshakes stunnel accepted per 1,000 events,
# full ("new session negotiated") and resumed ("previous session reused"): keep-alive
# and session reuse keep both near zero. The figure includes stunnel's own relaying.
sec_tls() {
  command -v stunnel4 >/dev/null || { note "tls: stunnel4 missing (scripts/install-deps.sh); skipped"; return 0; }
  local d="$WORK/tls" sport tport lines=0 t0 n first last
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
    -subj "/CN=breakhook bench CA" 2>"$d/openssl.err" &&
  openssl req -newkey rsa:2048 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" \
    -subj "/CN=127.0.0.1" 2>>"$d/openssl.err" &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf" &&
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/srv.pem" -days 2 -extfile "$d/ext.cnf" 2>>"$d/openssl.err" ||
    { note "tls: openssl failed: $(head -c 300 "$d/openssl.err")"; return 1; }
  sink_start tls || return 1
  sport=$SINK_PORT
  tport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'foreground = yes\npid =\ndebug = 6\noutput = %s\n[sink]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
    "$d/stunnel.log" "$tport" "$sport" "$d/srv.pem" "$d/srv.key" >"$d/stunnel.conf"
  stunnel4 "$d/stunnel.conf" 2>>"$d/stunnel.err" &
  SINK_PIDS+=($!) # stopped with the sinks
  for _ in $(seq 50); do grep -q "Accepting new connections" "$d/stunnel.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "Accepting new connections" "$d/stunnel.log" 2>/dev/null ||
    { note "tls: stunnel4 did not start: $(tail -c 300 "$d/stunnel.log" 2>/dev/null)"; return 1; }
  start_delivery_server --ca-file "$d/ca.pem" || return 1
  webhook_create "https://127.0.0.1:$tport/hook" || return 1
  wait_engine_pickup
  for f in $(seq 0 $((E2E_FILES - 1))); do
    gen_breaks "$WORK/tls-$f.ndjson" $((9500000 + f * LINES + 1)) "$LINES" 1 2026-07 0
    lines=$((lines + LINES))
  done
  t0=$(now_ms)
  for f in "$WORK"/tls-*.ndjson; do post_batch "$f" >/dev/null; done
  if ! wait_deliveries "$sport" "$lines" 120 15; then
    note "tls: only $GOT of $lines deliveries within the wait; no figure"
    return 1
  fi
  read -r n first last < <(sink_stats "$sport")
  record "end-to-end over TLS (stunnel in front of the sink), 1 webhook" \
    "$(calc 'sprintf("%.0f", n * 1000 / (b - a))' n="$n" a="$t0" b="$last")" "events/s"
  [ -n "$E2E_ONE" ] && record "end-to-end over TLS as a ratio of plain http (e2e1)" \
    "$(calc 'sprintf("%.2f", n * 1000 / (b - a) / e)' n="$n" a="$t0" b="$last" e="$E2E_ONE")" "ratio"
  local full resumed
  full=$(grep -c "TLS accepted: new session negotiated" "$d/stunnel.log" || true)
  resumed=$(grep -c "TLS accepted: previous session reused" "$d/stunnel.log" || true)
  record "TLS full handshakes per 1,000 events" "$(calc 'sprintf("%.2f", h * 1000 / n)' h="$full" n="$n")" "handshakes"
  record "TLS resumed handshakes per 1,000 events" "$(calc 'sprintf("%.2f", h * 1000 / n)' h="$resumed" n="$n")" "handshakes"
  rm -f "$WORK"/tls-*.ndjson
}

# store_calls FILE [SKIP_OP]: store.h calls a scrape counted so far (the _count of
# breakhook_store_call_duration_seconds, every op but SKIP_OP).
store_calls() {
  awk -v skip="op=\"${2:-none}\"" 'index($0, "breakhook_store_call_duration_seconds_count{") == 1 &&
    index($0, skip) == 0 { n += $NF } END { printf "%.0f", n }' "$1"
}

# pg_statements URL: statements PostgreSQL executed so far in the database (every
# statement of a pipeline counts once), from pg_stat_statements.
pg_statements() {
  psql -X -q -A -t -d "$1" -c "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND query NOT ILIKE '%pg_stat_statements%'" 2>/dev/null || echo ""
}

# pg_phase LABEL STORE_URL: on a fresh store, tenant bench and a client, a definition
# and 100 people; then PG_FILES $batch files of new breaks (upserts/s, store calls per
# write), then the e2e1 load with one webhook (events/s, store calls per delivered
# event: every op but the $batch writes').
pg_phase() {
  local label=$1 url=$2 t0 t1 b0 b1 lines=$((PG_FILES * LINES)) s0="" s1=""
  bench_tenant "$url" || { note "pg: tenant and client on $label: $(tail -n 1 "$WORK/cli.log")"; return 1; }
  STORE=$url
  start_server --access-log=false || return 1
  seed_records
  for f in $(seq 0 $((PG_FILES - 1))); do
    gen_breaks "$WORK/pgb-$f.ndjson" $((f * LINES + 1)) "$LINES" 1 2026-03 0
  done
  scrape "$WORK/pgb.before.prom"
  [ "$label" = postgres ] && s0=$(pg_statements "$url")
  t0=$(date +%s.%N)
  for f in "$WORK"/pgb-*.ndjson; do post_batch "$f" >/dev/null; done
  t1=$(date +%s.%N)
  scrape "$WORK/pgb.after.prom"
  [ "$label" = postgres ] && s1=$(pg_statements "$url")
  record "$label: \$batch upserts (new breaks, durable)" \
    "$(calc 'sprintf("%.0f", n / (b - a))' n="$lines" a="$t0" b="$t1")" "upserts/s"
  b0=$(store_calls "$WORK/pgb.before.prom"); b1=$(store_calls "$WORK/pgb.after.prom")
  record "$label: store calls per \$batch write" "$(calc 'sprintf("%.4f", (b - a) / n)' a="$b0" b="$b1" n="$lines")" "calls"
  [ -n "$s0" ] && [ -n "$s1" ] && record "$label: PostgreSQL statements per \$batch write" \
    "$(calc 'sprintf("%.4f", (b - a) / n)' a="$s0" b="$s1" n="$lines")" "statements"
  rm -f "$WORK"/pgb-*.ndjson
  stop_server
  for f in $(seq 0 $((E2E_FILES - 1))); do
    gen_breaks "$WORK/pge-$f.ndjson" $((5000000 + f * LINES + 1)) "$LINES" 1 2026-04 0
  done
  [ "$label" = postgres ] && s0=$(pg_statements "$url")
  end_to_end "pg-$label" 1 "$WORK"/pge-*.ndjson || return 1
  [ "$label" = postgres ] && s1=$(pg_statements "$url")
  record "$label: end-to-end, 1 webhook" "$E2E" "events/s"
  record "$label: end-to-end, 1 webhook: server CPU per event" "$E2E_CPU" "us"
  b0=$(store_calls "$WORK/pg-$label.before.prom" breaks_apply)
  b1=$(store_calls "$WORK/pg-$label.after.prom" breaks_apply)
  record "$label: store calls per delivered event (writes' excluded)" \
    "$(calc 'sprintf("%.4f", (b - a) / n)' a="$b0" b="$b1" n="$GOT")" "calls"
  [ -n "$s0" ] && [ -n "$s1" ] && record "$label: PostgreSQL statements per delivered event (its write's included)" \
    "$(calc 'sprintf("%.2f", (b - a) / n)' a="$s0" b="$s1" n="$GOT")" "statements"
  rm -f "$WORK"/pge-*.ndjson
  webhooks_delete
  stop_server
}

# PostgreSQL next to SQLite (issue #17): the same load (pg_phase) on a fresh SQLite
# file and on a throwaway PostgreSQL 15 cluster on 127.0.0.1 with its durable defaults
# (scripts/pg-test-cluster.sh, PG_TEST_DURABLE=1; fsync and synchronous_commit on, as
# SQLite runs with synchronous=FULL), in the same run.
sec_pg() {
  [ -x /usr/lib/postgresql/15/bin/initdb ] || { note "pg: PostgreSQL 15 is not installed"; return 1; }
  local saved_store=$STORE saved_id=$CLIENT_ID saved_secret=$CLIENT_SECRET rc=0 url pgc
  pg_phase sqlite "sqlite:$WORK/pg-compare.db" || rc=1
  # Not under $WORK (mode 0700): the cluster runs as an unprivileged user, which must
  # reach its directory.
  pgc=$(mktemp -d /tmp/breakhook-bench-pg.XXXXXX)
  if PG_TEST_DURABLE=1 PG_TEST_EXTRA="-c shared_preload_libraries=pg_stat_statements" \
       scripts/pg-test-cluster.sh start "$pgc" >"$WORK/pgc.url" 2>"$WORK/pgc.err"; then
    url=$(tail -n 1 "$WORK/pgc.url")
    psql -X -q -d "$url" -c "CREATE DATABASE bench" >/dev/null 2>&1
    url=${url%/postgres}/bench
    psql -X -q -d "$url" -c "CREATE EXTENSION pg_stat_statements" >/dev/null 2>&1 ||
      note "pg: no pg_stat_statements; no statement counts"
    pg_phase postgres "$url" || rc=1
    [ -n "$SERVER_PID" ] && { webhooks_delete; stop_server; }
    scripts/pg-test-cluster.sh stop "$pgc" >/dev/null 2>&1 || true
  else
    note "pg: the PostgreSQL cluster did not start: $(tail -n 2 "$WORK/pgc.err" | tr '\n' ' ')"
    rc=1
  fi
  rm -rf "$pgc"
  STORE=$saved_store CLIENT_ID=$saved_id CLIENT_SECRET=$saved_secret
  return $rc
}

# Delta (issue #16, bench/delta.py): follow-ups over DELTA_CHANGES new breaks (delta
# items served per second), then DELTA_POLLS long polls each woken by one write
# (commit -> answer, p50 and p99).
sec_delta() {
  command -v python3 >/dev/null || { note "delta: python3 missing; skipped"; return 0; }
  flag_supported --delta-ttl || { note "delta: this build has no delta API"; return 0; }
  start_server --access-log=false || return 1
  local out
  if ! out=$(timeout 900 python3 bench/delta.py "$PORT" "$TOKEN" "$DELTA_CHANGES" "$DELTA_POLLS" 2>&1); then
    note "delta: $(printf '%s' "$out" | tail -n 1)"
    return 1
  fi
  field() { printf '%s' "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  record "delta follow-ups: items served" "$(field items_per_s)" "items/s"
  record "long poll wake-up, write answered -> poll answered, p50" "$(field p50_ms)" "ms"
  record "long poll wake-up, write answered -> poll answered, p99" "$(field p99_ms)" "ms"
  record "long poll wake-up, write sent -> poll answered, p50" "$(field send_p50_ms)" "ms"
  record "long poll wake-up, write sent -> poll answered, p99" "$(field send_p99_ms)" "ms"
}


# One busy webhook beside many idle ones (issue #15): IDLE_TENANTS other tenants with
# IDLE_PER webhooks each on breaks (bench/fleet.py: the CLI makes the tenants and
# clients, the API the webhooks), all to the same sink host:port as the busy one and
# never written to; then the bench tenant's one webhook gets the e2e1 load (E2E_FILES
# $batch files of new breaks). Reported: events/s, as a ratio of e2e1's (the same
# webhook alone, earlier in this run), commit -> 2xx p99 from /metrics, the server's
# CPU per delivered event and its RSS. Then the server is stopped, one break is
# imported by the CLI while it is down, and the server started again with every
# webhook in place: process start -> that break's delivery.
sec_idle() {
  command -v python3 >/dev/null || { note "idle: python3 missing; skipped"; return 0; }
  sink_start idle || return 1
  local sport=$SINK_PORT t0 first last fleet ticks0 ticks1 n lines=0
  # The fleet gets a token per tenant from one address: the token limiters off.
  local unlimited=()
  flag_supported --token-rate-per-address &&
    unlimited=(--token-rate-per-address 0 --token-rate-global 0)
  start_delivery_server --max-webhooks $((IDLE_PER + 10)) "${unlimited[@]}" || return 1
  if ! fleet=$(timeout 900 python3 bench/fleet.py "$BIN" "$STORE" "$PORT" "$IDLE_TENANTS" \
      "$IDLE_PER" "http://127.0.0.1:$sport/hook" "$IDLE_BUSY" "$WORK/fleet.tokens" 2>&1); then
    note "idle: fleet setup failed: $(printf '%s' "$fleet" | tail -n 1 | head -c 300)"
    return 1
  fi
  record "idle: webhooks of $IDLE_TENANTS other tenants, never written" \
    "$((IDLE_TENANTS * IDLE_PER))" "webhooks"
  record "idle: setting them up (CLI + API)" "$(printf '%s' "$fleet" | sed -n 's/.*seconds=//p')" "s"
  webhook_create "http://127.0.0.1:$sport/hook" || return 1
  sleep 3 # the engine loads new webhooks once a second; thousands take a moment
  for f in $(seq 0 $((E2E_FILES - 1))); do
    gen_breaks "$WORK/idle-$f.ndjson" $((8000000 + f * LINES + 1)) "$LINES" 1 2026-05 0
    lines=$((lines + LINES))
  done
  scrape "$WORK/idle.before.prom"
  ticks0=$(proc_ticks "$SERVER_PID")
  t0=$(now_ms)
  for f in "$WORK"/idle-*.ndjson; do post_batch "$f" >/dev/null; done
  if ! wait_deliveries "$sport" "$lines" 180 15; then
    note "idle: only $GOT of $lines deliveries within the wait; no figure"
    return 1
  fi
  read -r n first last < <(sink_stats "$sport")
  ticks1=$(proc_ticks "$SERVER_PID")
  scrape "$WORK/idle.after.prom"
  local e2e
  e2e=$(calc 'sprintf("%.0f", n * 1000 / (b - a))' n="$n" a="$t0" b="$last")
  record "idle: end-to-end, 1 busy webhook beside them" "$e2e" "events/s"
  if [ -n "$E2E_ONE" ]; then
    record "idle: as a ratio of the same webhook alone (e2e1)" \
      "$(calc 'sprintf("%.2f", a / b)' a="$e2e" b="$E2E_ONE")" "ratio"
  else
    note "idle: no e2e1 figure in this run to compare with (SECTIONS without e2e1?)"
  fi
  hist_quantiles breakhook_delivery_latency_seconds "$WORK/idle.before.prom" "$WORK/idle.after.prom"
  [ -n "$HQ99" ] && record "idle: commit -> 2xx p99 (inside, /metrics)" "$HQ99" "ms"
  record "idle: server CPU per delivered event" \
    "$(calc 'sprintf("%.1f", (b - a) * 1000000 / hz / n)' a="$ticks0" b="$ticks1" hz="$(getconf CLK_TCK)" n="$n")" "us"
  record "idle: server RSS" "$(proc_mib "$SERVER_PID" VmRSS)" "MiB"
  # (b) Many busy webhooks spread over tenants, beside the idle ones: the first
  # IDLE_BUSY fleet tenants each get IDLE_BUSY_BREAKS new breaks through \$batch, all
  # tenants at once; each of their IDLE_PER webhooks delivers every one.
  local busy_n=$((IDLE_BUSY * IDLE_PER * IDLE_BUSY_BREAKS)) base
  base=$(sink_count "$sport")
  local t=0
  while read -r tname ttoken; do
    t=$((t + 1))
    gen_breaks "$WORK/busy-$t.ndjson" $((9000000 + t * 100000)) "$IDLE_BUSY_BREAKS" 1 2026-06 0
    sed -i 's/"person":{"id":[0-9]*}/"person":{"id":1}/' "$WORK/busy-$t.ndjson"
    printf '%s %s\n' "$ttoken" "$WORK/busy-$t.ndjson"
  done <"$WORK/fleet.tokens" >"$WORK/busy.list"
  scrape "$WORK/busy.before.prom"
  ticks0=$(proc_ticks "$SERVER_PID")
  t0=$(now_ms)
  local posts=()
  while read -r ttoken f; do
    curl -s -o "$f.out" -A bench -H "Authorization: Bearer $ttoken" --max-time 120 \
      -H 'Content-Type: application/x-ndjson' --data-binary @"$f" "$API/breaks/\$batch" &
    posts+=($!)
  done <"$WORK/busy.list"
  for p in "${posts[@]}"; do wait "$p" || note "idle (b): a \$batch post failed"; done
  if ! wait_deliveries "$sport" $((base + busy_n)) 180 15; then
    note "idle (b): only $((GOT - base)) of $busy_n deliveries within the wait; no figure; a \$batch answer: $(tail -c 300 "$WORK/busy-1.ndjson.out" 2>/dev/null)"
  else
    read -r n _ last < <(sink_stats "$sport")
    ticks1=$(proc_ticks "$SERVER_PID")
    scrape "$WORK/busy.after.prom"
    record "idle (b): $((IDLE_BUSY * IDLE_PER)) busy webhooks of $IDLE_BUSY tenants beside the idle ones" \
      "$(calc 'sprintf("%.0f", n * 1000 / (b - a))' n="$busy_n" a="$t0" b="$last")" "events/s"
    hist_quantiles breakhook_delivery_latency_seconds "$WORK/busy.before.prom" "$WORK/busy.after.prom"
    [ -n "$HQ99" ] && record "idle (b): commit -> 2xx p99 (inside, /metrics)" "$HQ99" "ms"
    record "idle (b): server CPU per delivered event" \
      "$(calc 'sprintf("%.1f", (b - a) * 1000000 / hz / n)' a="$ticks0" b="$ticks1" hz="$(getconf CLK_TCK)" n="$busy_n")" "us"
    record "idle (b): server RSS" "$(proc_mib "$SERVER_PID" VmRSS)" "MiB"
  fi
  n=$(sink_count "$sport")
  stop_server
  gen_breaks "$WORK/idle-restart.ndjson" 8900001 1 1 2026-05 0
  timeout 60 "$BIN" import --tenant bench --store "$STORE" --quiet "$WORK/idle-restart.ndjson" \
    >/dev/null 2>"$WORK/idle-import.err" ||
    { note "idle: import while down failed: $(head -c 300 "$WORK/idle-import.err")"; return 1; }
  t0=$(now_ms)
  start_delivery_server --max-webhooks $((IDLE_PER + 10)) || return 1
  if ! wait_deliveries "$sport" $((n + 1)) 60 60; then
    note "idle: the change written while down was not delivered within 60 s of the restart"
    return 1
  fi
  read -r _ _ last < <(sink_stats "$sport")
  record "idle: restart with them all -> first delivery" "$((last - t0))" "ms"
  rm -f "$WORK"/idle-*.ndjson
}

# Isolation: four healthy webhooks, each to its own sink (A1-A4: four healthy
# destinations, each with its own in-flight cap), at 1,000 writes/s, in three phases
# of ISO_SECONDS: (1) alone; (2) with a fifth webhook to a fifth healthy sink C, the
# control: the same number of webhooks and scans as phase 3; (3) with the fifth
# webhook to sink B instead, which accepts connections and reads but never answers
# (--delivery-timeout 2s, so it times out again and again and trips the breaker).
# SPEC §10: the hung destination must not raise the others' p99 by more than 10 %.
# Two p99s per phase: from the write being sent (includes the write's own commit)
# and from the write's answer (the delivery side, the part a destination could
# disturb). The commit has stalls of tens of milliseconds now and then (fsync and
# WAL checkpoints on this disk); the writes they hold up are answered together and
# their deliveries leave in a burst, so at these few milliseconds one stall more or
# less in a phase moves its p99 whatever the destinations do.
iso_phase() { # NAME LABEL
  paced_writes "$1" "$ISO_SECONDS" || return 1
  local k
  for k in 1 2 3 4; do
    wait_deliveries "${ISO_PORTS[$k]}" $((ISO_BEFORE[$k] + LOAD_OK)) 30 3 || true
    ISO_BEFORE[$k]=$(sink_count "${ISO_PORTS[$k]}")
    sink_flush "${ISO_PORTS[$k]}"
  done
  cat "$WORK"/iso[1-4].rec >"$WORK/iso.rec"
  latency_percentiles "$1" "$WORK/iso.rec" 4
  record "isolation: 4 healthy $2, p99 from sent" "$P99" "ms"
  record "isolation: 4 healthy $2, p99 from answer" "$LOW_P99" "ms"
}
sec_isolation() {
  [ -x "$LOAD" ] || { note "isolation: $LOAD missing; skipped"; return 0; }
  ISO_PORTS=() ISO_BEFORE=()
  local k
  for k in 1 2 3 4; do
    sink_start "isoA$k" --record "$WORK/iso$k.rec" || return 1
    ISO_PORTS[$k]=$SINK_PORT ISO_BEFORE[$k]=0
  done
  sink_start isoC || return 1
  local cport=$SINK_PORT
  sink_start isoB --hang || return 1
  local bport=$SINK_PORT bpid=$SINK_PID
  local alone ctl ctl_low
  start_delivery_server --delivery-timeout 2s || return 1
  for k in 1 2 3 4; do webhook_create "http://127.0.0.1:${ISO_PORTS[$k]}/hook" || return 1; done
  wait_engine_pickup
  iso_phase iso_alone "alone" || return 1
  alone=$P99
  webhook_create "http://127.0.0.1:$cport/hook" || return 1
  local ctl_id=${WEBHOOK_IDS[${#WEBHOOK_IDS[@]}-1]}
  wait_engine_pickup
  iso_phase iso_ctl "+ a healthy 5th" || return 1
  ctl=$P99 ctl_low=$LOW_P99
  curl -s -o /dev/null "${AUTH[@]}" -X DELETE "$API/webhooks/$ctl_id"
  webhook_create "http://127.0.0.1:$bport/hook" || return 1
  wait_engine_pickup
  iso_phase iso_hang "+ a hung 5th" || return 1
  ratio() { [ -n "$2" ] && [ -n "$3" ] && record "$1" "$(calc 'sprintf("%.2f", b / a)' a="$2" b="$3")" "ratio"; }
  ratio "isolation: p99 from answer, hung / healthy 5th" "$ctl_low" "$LOW_P99"
  ratio "isolation: p99 from sent, hung / healthy 5th" "$ctl" "$P99"
  ratio "isolation: p99 from sent, hung 5th / 4 alone" "$alone" "$P99"
  sink_stop "$bpid"
  [ -s "$WORK/isoB.err" ] && note "hung destination: $(tail -n 1 "$WORK/isoB.err")"
  return 0
}

# Backlog: a webhook to a destination that is down (a port nothing listens on),
# then BACKLOG_RECORDS x BACKLOG_VERSIONS pending events through $batch (each
# record's versions on consecutive lines); the server's memory once all are
# committed; then the sink comes up on that port and the drain is timed.
# MODE on: coalescing (the default); off: --coalesce=false (every version delivered).
sec_backlog() {
  local mode=$1 label="backlog, coalescing $1"
  local flags=(--access-log=false --allow-http-destinations --allow-destination 127.0.0.1/32
    --max-inflight-per-destination "$E2E_INFLIGHT" --retry-schedule "$RETRY_1S")
  if [ "$mode" = off ]; then
    flag_supported --coalesce ||
      { note "$label: skipped: this breakhook has no --coalesce option yet"; return 0; }
    flags+=(--coalesce=false)
  fi
  if flag_supported --breaker-pause; then
    flags+=(--breaker-pause 500ms)
  else
    note "$label: this breakhook has no --breaker-pause option yet: a destination that is down is paused 5 s, doubling while probes fail, so the drain starts late"
  fi
  # Generated first: the shorter the destination is down, the shorter the breaker's
  # pause (it doubles while probes fail) when it comes back.
  local files=$((BACKLOG_RECORDS / BACKLOG_FILE_RECORDS)) base
  local events=$((BACKLOG_RECORDS * BACKLOG_VERSIONS))
  # Each run writes values the previous one did not, so every line is a change.
  base=$([ "$mode" = on ] && echo 20 || echo 40)
  for f in $(seq 0 $((files - 1))); do
    gen_breaks "$WORK/backlog$f.ndjson" $((10000001 + f * BACKLOG_FILE_RECORDS)) \
      "$BACKLOG_FILE_RECORDS" "$BACKLOG_VERSIONS" 2026-06 "$base"
  done
  # A free port, then nothing listening on it: the destination is down.
  sink_start "backlog-$mode-probe" || return 1
  local dport=$SINK_PORT
  sink_stop "$SINK_PID"
  start_server "${flags[@]}" || return 1
  webhook_create "http://127.0.0.1:$dport/hook" || return 1
  wait_engine_pickup
  local mib0 t0 t1 s applied=0
  mib0=$(store_mib)
  t0=$(date +%s.%N)
  for f in $(seq 0 $((files - 1))); do
    s=$(post_batch "$WORK/backlog$f.ndjson")
    read -r c r u x <<<"${s:-0 0 0 1}"
    [ "$x" = 0 ] && [ "$u" = 0 ] || { note "$label: \$batch file $f: summary '$s'"; return 1; }
    applied=$((applied + c + r))
  done
  t1=$(date +%s.%N)
  rm -f "$WORK"/backlog*.ndjson
  [ "$applied" = "$events" ] || { note "$label: $applied of $events writes applied"; return 1; }
  record "$label: \$batch, $events changes while down" \
    "$(calc 'sprintf("%.0f", n / (b - a))' n="$events" a="$t0" b="$t1")" "upserts/s"
  sleep 1 # let the engine notice what was committed
  record "$label: server RSS with $events events pending" "$(proc_mib "$SERVER_PID" VmRSS)" "MiB"
  record "$label: server peak RSS (VmHWM)" "$(proc_mib "$SERVER_PID" VmHWM)" "MiB"
  record "$label: store growth on disk" "$(calc 'sprintf("%.1f", b - a)' a="$mib0" b="$(store_mib)")" "MiB"
  # The destination comes back on the same port.
  local start first last got distinct
  start=$(now_ms)
  sink_start "backlog-$mode" --port "$dport" --record "$WORK/backlog-$mode.rec" || return 1
  # Coalesced, each record's newest state is one delivery; without, every event is.
  local expect=$([ "$mode" = on ] && echo "$BACKLOG_RECORDS" || echo "$events")
  wait_deliveries "$dport" "$expect" "$WAIT_MAX" 3 && sleep 1 # and any stragglers
  read -r got first last < <(sink_stats "$dport")
  sink_flush "$dport"
  distinct=$(cut -d' ' -f1 "$WORK/backlog-$mode.rec" | sort -u | wc -l)
  [ "${got:-0}" -gt 0 ] || { note "$label: nothing delivered within ${WAIT_MAX} s"; return 1; }
  record "$label: deliveries" "$got" "deliveries"
  record "$label: sink start -> first delivery" "$(calc 'sprintf("%.2f", (b - a) / 1000)' a="$start" b="$first")" "s"
  # A drain that did not finish has no end time and no rate.
  if [ "$distinct" -lt "$BACKLOG_RECORDS" ] || { [ "$mode" = off ] && [ "$got" -lt "$events" ]; }; then
    note "$label: the drain did not finish: $got deliveries, $distinct of $BACKLOG_RECORDS records; no drain figures"
    return 1
  fi
  record "$label: sink start -> last delivery" "$(calc 'sprintf("%.2f", (b - a) / 1000)' a="$start" b="$last")" "s"
  # Rates over the drain itself (first to last delivery), not over the wait for the
  # breaker's next probe, which "sink start -> first delivery" shows.
  local span=$((last - first > 0 ? last - first : 1))
  record "$label: drain, deliveries/s" "$(calc 'sprintf("%.0f", n * 1000 / s)' n="$got" s="$span")" "deliveries/s"
  record "$label: drain, events covered/s" "$(calc 'sprintf("%.0f", n * 1000 / s)' n="$events" s="$span")" "events/s"
}

sec_access_log() {
  start_server --access-log=true --log-level info --log-file "$WORK/access.log" || return 1
  record "healthz keep-alive, access log to a file" "$(wrk_rps "http://127.0.0.1:$PORT/healthz")" "req/s"
  rm -f "$WORK/access.log"
}

# ---- main -------------------------------------------------------------------

CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
CORES=$(nproc)
MEM_GIB=$(free -g | awk '/Mem:/ {print $2}')
KERNEL=$(uname -r)
OS=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}" || echo unknown)
BUILD_DIR=$(basename "$BIN_DIR")
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BIN_DIR/CMakeCache.txt" 2>/dev/null || true)
BUILD_TYPE=${BUILD_TYPE:-unknown}
CC_PATH=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BIN_DIR/CMakeCache.txt" 2>/dev/null || true)
COMPILER=$("${CC_PATH:-cc}" --version 2>/dev/null | head -n 1 || echo unknown)
VERSION=$("$BIN" version)
START=$SECONDS

bench_tenant "$STORE" || { cat "$WORK/cli.log" >&2; exit 1; }

echo "machine: $CPU | $CORES cores | $MEM_GIB GiB | Linux $KERNEL | $OS"
echo "build: $VERSION, $BUILD_TYPE ($BIN_DIR), $COMPILER; wrk -t1 -c$CONNECTIONS -d${DURATION}s$([ $SMOKE = 1 ] && echo '; SMOKE run: tiny counts, the figures mean nothing')"
printf '%-58s %14s %s\n' figure value unit

seed_data || { echo "bench: the server does not start" >&2; exit 1; }
run_section http "HTTP and tokens" sec_http
run_section breaks "breaks data" sec_breaks
run_section mixed "reads beside writes" sec_mixed
run_section delta "delta sync" sec_delta
if [ -x "$SINK" ]; then
  run_section ceiling "delivery ceiling" sec_ceiling
  run_section e2e1 "end-to-end, 1 webhook" sec_e2e_one
  run_section e2e100 "end-to-end, 100 webhooks" sec_e2e_hundred
  run_section tls "end-to-end over TLS" sec_tls
  run_section latency "latency at 1,000 writes/s" sec_latency
  run_section import "import beside a running server" sec_import
  run_section idle "one busy webhook beside idle ones" sec_idle
  run_section isolation "isolation from a hung destination" sec_isolation
  run_section backlog-on "backlog, coalescing on" sec_backlog on
  run_section backlog-off "backlog, coalescing off" sec_backlog off
  run_section pg "PostgreSQL next to SQLite" sec_pg
else
  note "$SINK missing: no delivery figures"
  STOPPED=$((STOPPED + 1))
fi
run_section access-log "access log" sec_access_log

echo "time per section: $(IFS=';'; echo "${TIMINGS[*]}" | sed 's/;/; /g'); total $((SECONDS - START)) s"

mkdir -p bench/results
{
  printf '{"machine":{"cpu":"%s","cores":%s,"memGiB":%s,"kernel":"%s","os":"%s"},' \
    "$(json_esc "$CPU")" "$CORES" "$MEM_GIB" "$(json_esc "$KERNEL")" "$(json_esc "$OS")"
  printf '"build":"%s","buildType":"%s","compiler":"%s","version":"%s","date":"%s","smoke":%s,"seconds":%s,"results":[' \
    "$(json_esc "$BUILD_DIR")" "$(json_esc "$BUILD_TYPE")" "$(json_esc "$COMPILER")" "$(json_esc "$VERSION")" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$([ $SMOKE = 1 ] && echo true || echo false)" "$((SECONDS - START))"
  (IFS=,; printf '%s' "${RESULTS[*]}")
  printf '],"notes":['
  sep=""
  for n in "${NOTES[@]}"; do printf '%s"%s"' "$sep" "$(json_esc "$n")"; sep=","; done
  printf ']}\n'
} >bench/results/latest.json
echo "wrote bench/results/latest.json"
# The smoke run asserts no speed, but it does prove every section runs: one that
# stopped early (a server or sink that did not start, deliveries that never came)
# fails it, so `make test` notices a broken benchmark.
if [ "$SMOKE" = 1 ] && [ "$STOPPED" -gt 0 ]; then
  echo "bench: $STOPPED section(s) stopped early (see the notes above)" >&2
  exit 1
fi
