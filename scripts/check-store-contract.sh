#!/usr/bin/env bash
# The back-end contract (tests/store/) must exercise every operation of the store's
# interface (issue #14): fails, naming them, when a public function of
# src/store/store.h is called by no file in tests/store/. Comments do not count on
# either side: a function named in a comment is neither declared nor called.
# Run by CTest (store/coverage) and by scripts/check-src.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
strip_comments() { perl -0777 -pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g' "$@"; }
declared=$(strip_comments src/store/store.h | grep -oE '\bstore_[a-z0-9_]+[[:space:]]*\(' |
           tr -d '( \t' | sort -u)
[ -n "$declared" ] || { echo "check-store-contract: no function found in store.h" >&2; exit 1; }
called=$(strip_comments tests/store/*.c)
missing=()
for fn in $declared; do
  grep -qE "\\b${fn}[[:space:]]*\\(" <<<"$called" || missing+=("$fn")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "check-store-contract: no test in tests/store/ calls these store.h operations:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "check-store-contract: all $(wc -w <<<"$declared") store.h operations are called in tests/store/"
