#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests (issue #17), on 127.0.0.1 only.
#
#   pg-test-cluster.sh start DIR       initdb into DIR/data, start it on a free loopback
#                                      port, print the postgres:// URL of its
#                                      "postgres" database
#   pg-test-cluster.sh stop DIR        stop it (immediate) and remove DIR/data
#   pg-test-cluster.sh restart DIR     pg_ctl restart -m fast (clients are cut off, the
#                                      server comes back on the same port)
#   pg-test-cluster.sh down DIR        pg_ctl stop -m fast, keeping the data and the port
#   pg-test-cluster.sh up DIR          start it again after down, on the same port
#   pg-test-cluster.sh url DIR [DB]    print the URL of database DB (default postgres)
#   pg-test-cluster.sh exec DIR DB CMD [ARG...]
#                                      (re)create database DB, then run CMD with
#                                      BREAKHOOK_TEST_STORE_URL set to its URL
#
# The server runs as an unprivileged user: PostgreSQL refuses to run as root, so as
# root the cluster belongs to $PG_TEST_USER (default nobody), started through
# runuser. Binaries come from $PG_BIN (default /usr/lib/postgresql/15/bin: Debian's
# postgresql-15, which scripts/install-deps.sh installs). Trust authentication is
# safe only because the server listens on 127.0.0.1 and a socket in DIR/data.
# fsync is off: the store contract does not test durability, and the cluster is
# thrown away after the run. PG_TEST_DURABLE=1 keeps PostgreSQL's durable defaults
# (fsync, synchronous_commit) for a test that restarts the server. PG_TEST_EXTRA adds
# server options ("-c shared_preload_libraries=pg_stat_statements" for the bench).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_TEST_USER=${PG_TEST_USER:-nobody}

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 start|stop|url|exec DIR ..."
cmd=$1
dir=$(realpath -m "$2")
shift 2
data="$dir/data"

need_bin() {
  for b in initdb pg_ctl psql; do
    [ -x "$PG_BIN/$b" ] || die "$PG_BIN/$b not found: install PostgreSQL 15 (Debian package" \
                               "postgresql-15; scripts/install-deps.sh installs it)"
  done
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_TEST_USER" -- "$@"
  else
    "$@"
  fi
}

port_of() {
  [ -f "$dir/port" ] || die "no cluster in $dir (run: $0 start $dir)"
  cat "$dir/port"
}

url_of() {
  echo "postgres://postgres@127.0.0.1:$(port_of)/$1"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

psql_admin() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port_of)" -U postgres \
    -d postgres "$@"
}

stop_cluster() {
  if [ -f "$data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$dir/port"
}

case "$cmd" in
start)
  need_bin
  mkdir -p "$dir"
  stop_cluster
  mkdir -m 0700 "$data"
  if [ "$(id -u)" -eq 0 ]; then
    id "$PG_TEST_USER" >/dev/null 2>&1 || die "no user $PG_TEST_USER to run PostgreSQL as"
    chown "$PG_TEST_USER" "$dir" "$data"
    as_owner test -w "$data" ||
      die "$PG_TEST_USER cannot reach $data: every parent directory must be searchable"
  fi
  as_owner "$PG_BIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # A port is free when we look and may be taken before the server binds it: try a
  # few.
  fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_TEST_DURABLE:-0}" = 1 ] && fast=""
  fast="$fast ${PG_TEST_EXTRA:-}"
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    opts="-p $port -k $data -c listen_addresses=127.0.0.1 $fast -c max_connections=200"
    if as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 -o "$opts" \
         start >/dev/null; then
      echo "$port" >"$dir/port"
      echo "$opts" >"$dir/opts"
      url_of postgres
      exit 0
    fi
  done
  cat "$data/server.log" >&2 || true
  die "the server did not start"
  ;;
stop)
  stop_cluster
  ;;
restart)
  need_bin
  port_of >/dev/null
  as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 restart >/dev/null
  ;;
down)
  need_bin
  port_of >/dev/null
  as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  ;;
up)
  need_bin
  port_of >/dev/null
  as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 -o "$(cat "$dir/opts")" \
    start >/dev/null
  ;;
url)
  url_of "${1:-postgres}"
  ;;
exec)
  [ $# -ge 2 ] || die "usage: $0 exec DIR DB CMD [ARG...]"
  need_bin
  db=$1
  shift
  [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name $db: use [a-z0-9_]"
  psql_admin -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
    -c "CREATE DATABASE $db"
  BREAKHOOK_TEST_STORE_URL=$(url_of "$db")
  export BREAKHOOK_TEST_STORE_URL
  exec "$@"
  ;;
*)
  die "unknown command $cmd (start, stop, restart, down, up, url, exec)"
  ;;
esac
