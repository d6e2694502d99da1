#!/usr/bin/env bash
# A private PostgreSQL 15 server for the tests: its own cluster under .data/postgres, on a
# private port (55432, or a free one when that is taken) with its unix socket in that
# directory, never the system cluster.
#   scripts/postgres.sh start   initialise (once) and start it, create the `sandlab` database,
#                               print the URL
#   scripts/postgres.sh url     print the URL (postgres://sandlab@127.0.0.1:55432/sandlab, or
#                               the port it moved to when 55432 was taken)
#   scripts/postgres.sh stop    stop it (and succeed when it is not running)
# The tests read the URL from SANDLAB_TEST_POSTGRES_URL:
#   export SANDLAB_TEST_POSTGRES_URL=$(scripts/postgres.sh start)
# The server runs as the `postgres` user (it refuses root). Run as root, or as `postgres`.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."

PGBIN=${SANDLAB_PG_BIN:-/usr/lib/postgresql/15/bin}
ROOT=$PWD/.data/postgres
# The server runs as `postgres`, which must reach the directory (a checkout under /root is
# out of its reach), and a unix socket path has at most 107 bytes: otherwise the cluster
# lives in a directory of its own under /tmp, named after this checkout.
if [ "$(id -u)" = 0 ] && { [ ${#ROOT} -gt 80 ] || ! runuser -u postgres -- test -x "$PWD"; }; then
  ROOT=/tmp/sandlab-postgres-$(printf '%s' "$PWD" | cksum | cut -d' ' -f1)
fi
DATA=$ROOT/data
# The port: SANDLAB_PG_PORT, else the one this cluster last started on (kept in $ROOT/port),
# else 55432; `start` moves to a free one when that is taken by something else (another
# checkout's server, say).
PORT=${SANDLAB_PG_PORT:-$(cat "$ROOT/port" 2>/dev/null || echo 55432)}
url() { echo "postgres://sandlab@127.0.0.1:$PORT/sandlab"; }

# Whether something listens on 127.0.0.1:$1.
port_taken() {
  python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

# A port the kernel says is free now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a command as the `postgres` user (or as ourselves when we are that user).
as_pg() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    echo "postgres.sh must run as root or as the postgres user" >&2
    exit 1
  fi
}

start() {
  if [ ! -x "$PGBIN/initdb" ]; then
    echo "PostgreSQL 15 is missing ($PGBIN/initdb); install it with: apt-get install -y postgresql" >&2
    exit 1
  fi
  mkdir -p "$ROOT"
  chown postgres: "$ROOT" 2>/dev/null || true
  if [ ! -f "$DATA/PG_VERSION" ]; then
    # Trust on the private socket and on loopback only: a throwaway server for tests.
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$ROOT/initdb.log"
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    if [ -z "${SANDLAB_PG_PORT:-}" ] && port_taken "$PORT"; then
      PORT=$(free_port)
    fi
    echo "$PORT" >"$ROOT/port"
    # fsync off: a crash of a test server loses nothing anyone needs, and tests go faster.
    # Autovacuum off: its workers would sit in the databases the tests drop.
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$ROOT/server.log" -w -t 60 \
      -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c autovacuum=off -c max_connections=300" \
      start >/dev/null
  fi
  local psql=("$PGBIN/psql" -h "$DATA" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 -d postgres)
  if [ "$(as_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'sandlab'")" != 1 ]; then
    # CREATEDB: the conformance tests make a database per case.
    as_pg "${psql[@]}" -c "CREATE ROLE sandlab LOGIN CREATEDB"
  fi
  # The tests drop their databases WITH (FORCE), which must be allowed to end any backend
  # still in them (an autovacuum worker of a cluster made before autovacuum was off).
  as_pg "${psql[@]}" -c "SET client_min_messages = warning" -c "GRANT pg_signal_backend TO sandlab"
  if [ "$(as_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'sandlab'")" != 1 ]; then
    as_pg "${psql[@]}" -c "CREATE DATABASE sandlab OWNER sandlab"
  fi
  url
}

stop() {
  if [ -f "$DATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
