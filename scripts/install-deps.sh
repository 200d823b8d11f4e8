#!/usr/bin/env bash
# Installs the Debian 12 packages breakhook needs to build, test and benchmark.
# Idempotent: packages already installed are skipped, and nothing runs apt when
# everything is there.
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libuv1-dev node-llhttp libcurl4-openssl-dev libssl-dev libjansson-dev
      libjwt-dev libsqlite3-dev sqlite3 libpq-dev postgresql-15 libcmocka-dev curl wrk
      openssl prometheus python3 python3-yaml stunnel4)
# prometheus: its promtool checks the metrics and the alert rules (make
# check-contrib); python3 and python3-yaml run the rest of scripts/check-contrib.sh.
# stunnel4: bench/run.sh's tls section puts TLS in front of the bench sink.
# postgresql-15: the store contract's PostgreSQL run starts a throwaway cluster of its
# own (scripts/pg-test-cluster.sh); the package's default cluster is not used.

# tests/integration/test_sign_interop.c checks our signatures with the Standard
# Webhooks library for Node.js, so node and npm must be there. Only added when one is
# missing: a node installed another way (NodeSource's nodejs bundles npm) conflicts
# with Debian's npm package, and its node serves the test just as well.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
