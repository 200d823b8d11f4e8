#!/usr/bin/env bash
# fuzz-smoke.sh: builds the libFuzzer targets (CMake preset "fuzz": clang, ASan+UBSan)
# and runs every fuzz/fuzz_<name>.c for a bounded time over its seed corpus
# fuzz/corpus/<name>/, failing on any crash, leak, timeout or out-of-memory.
#
#   FUZZ_SECONDS=30   time per target (libFuzzer -max_total_time)
#   FUZZ_TARGETS="http_request filter"   only these targets (default: all)
#   FUZZ_JOBS=1       parallel fuzzing processes per target (libFuzzer -fork)
#
# A dictionary is used when one exists: fuzz/<name>.dict, else fuzz/<prefix>.dict
# for the part of <name> before the first '_' (fuzz_http_request -> fuzz/http.dict).
# New inputs the fuzzer finds go to a scratch directory, never into the committed
# corpus; crash inputs are kept under build/fuzz/artifacts/ with the target's name.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

build=build/fuzz
artifacts=$build/artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/breakhook-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

shopt -s nullglob
sources=(fuzz/fuzz_*.c)
if [ ${#sources[@]} -eq 0 ]; then
    echo "fuzz-smoke: no fuzz/fuzz_*.c targets" >&2
    exit 0
fi

failed=()
ran=0
for src in "${sources[@]}"; do
    target=$(basename "$src" .c)   # fuzz_http_request
    name=${target#fuzz_}           # http_request
    if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $name "* ]]; then
        continue
    fi
    bin=$build/$target
    if [ ! -x "$bin" ]; then
        echo "fuzz-smoke: $bin was not built" >&2
        failed+=("$name (not built)")
        continue
    fi
    corpus=fuzz/corpus/$name
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$artifacts/$name-")
    if [ -f "fuzz/$name.dict" ]; then
        args+=(-dict="fuzz/$name.dict")
    elif [ -f "fuzz/${name%%_*}.dict" ]; then
        args+=(-dict="fuzz/${name%%_*}.dict")
    fi
    if [ "$jobs" -gt 1 ]; then
        args+=(-fork="$jobs")
    fi
    work=$scratch/$name
    mkdir -p "$work"
    dirs=("$work")
    if [ -d "$corpus" ]; then
        dirs+=("$corpus")
    else
        echo "fuzz-smoke: warning: no seed corpus $corpus for $target" >&2
    fi
    echo "== $target: ${seconds}s over ${dirs[*]}"
    log=$scratch/$name.log
    if "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
        grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|Done [0-9]+ runs)' "$log" || true
    else
        rc=$?
        echo "fuzz-smoke: $target FAILED (exit $rc); last lines of its output:" >&2
        tail -n 60 "$log" >&2
        failed+=("$name")
    fi
    ran=$((ran + 1))
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: $ran target(s) ran ${seconds}s each without a crash"
