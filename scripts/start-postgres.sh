#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the catalog tests and print its URL (the only stdout line).
#
#   url=$(bash scripts/start-postgres.sh) && export FACEINDEX_TEST_PG_URL="$url"
#   bash scripts/start-postgres.sh --stop      # stop it (the data dir stays until --wipe)
#   bash scripts/start-postgres.sh --wipe      # stop it and delete its data dir
#
# The cluster lives in $FACEINDEX_PG_DIR (default /tmp/faceindex-pg-<uid>), listens on
# 127.0.0.1 only, on a free port, with trust auth for local connections: test data only.
# Run twice, it prints the running server's URL again. As root the server runs as the
# 'postgres' user (PostgreSQL refuses to run as root); otherwise as the calling user.
# Binaries: Debian's postgresql package (/usr/lib/postgresql/<version>/bin), else PATH.
set -euo pipefail

DIR=${FACEINDEX_PG_DIR:-${TMPDIR:-/tmp}/faceindex-pg-$(id -u)}
DB=${FACEINDEX_PG_DB:-faceindex}
DATA="$DIR/data"
LOG="$DIR/server.log"

die() { echo "start-postgres: $*" >&2; exit 1; }

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [ -x "$d/initdb" ] && { bindir=$d; break; }
done
if [ -z "$bindir" ]; then
  command -v initdb >/dev/null || die "no PostgreSQL found: apt-get install postgresql"
  bindir=$(dirname "$(command -v initdb)")
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { as_owner "$bindir/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

case "${1:-}" in
  --stop|--wipe)
    if [ -d "$DATA" ] && running; then
      as_owner "$bindir/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
    [ "$1" = --wipe ] && rm -rf "$DIR"
    exit 0 ;;
  "") ;;
  *) die "usage: $0 [--stop|--wipe]" ;;
esac

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
chmod 700 "$DIR"

# A cluster left by another PostgreSQL major version cannot be started: make a new one.
if [ -f "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$("$bindir/postgres" -V | sed -E 's/.* ([0-9]+).*/\1/')" ]; then
  running || rm -rf "$DATA"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  as_owner "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    </dev/null >>"$DIR/initdb.log" 2>&1 \
    || as_owner "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale \
      </dev/null >>"$DIR/initdb.log" 2>&1 \
    || die "initdb failed: see $DIR/initdb.log"
fi

if running; then
  port=$(sed -n 4p "$DATA/postmaster.pid")  # line 4 of postmaster.pid is the port
else
  port=$(free_port)
  # Throwaway test data: durability is traded for speed (fsync off).
  as_owner "$bindir/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB -c max_connections=200" \
    </dev/null >>"$DIR/pg_ctl.log" 2>&1 || { tail -n 20 "$LOG" >&2 || true; die "the server did not start"; }
fi

psql=("$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA)
for _ in $(seq 1 50); do
  "${psql[@]}" -c "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.2
done
if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  "${psql[@]}" -c "CREATE DATABASE \"$DB\"" >/dev/null || die "cannot create database $DB"
fi

echo "postgresql://postgres@127.0.0.1:$port/$DB"
