#!/usr/bin/env bash
# Checks the build cannot: banned C functions (STYLE.md, curl's checksrc idea).
set -euo pipefail
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|rand|srand|localtime)[[:space:]]*\('
hits=$(grep -rnE "$banned" src tests fuzz bench --include='*.c' --include='*.h' 2>/dev/null || true)
if [ -n "$hits" ]; then
  echo "banned functions (see docs/STYLE notes in docs/ARCHITECTURE.md):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-src: no banned functions"
# The back-end contract calls every operation of store.h (tests/store/).
./scripts/check-store-contract.sh
