#!/usr/bin/env bash
# Start a throwaway Milvus standalone server for the index tests and print its URL (the only
# stdout line), the way start-postgres.sh does for PostgreSQL.
#
#   url=$(bash scripts/start-milvus.sh) && export FACEINDEX_TEST_MILVUS_URI="$url"
#   bash scripts/start-milvus.sh --restart   # stop the server process and start it again
#                                            # on the same data (what the restart test runs)
#   bash scripts/start-milvus.sh --crash     # the same after SIGKILL (no graceful stop)
#   bash scripts/start-milvus.sh --stop      # stop it (the data dir stays until --wipe)
#   bash scripts/start-milvus.sh --wipe      # stop it and delete its data dir
#
# The server is PyPI's `milvus` package (embedded Milvus: the real standalone binary, with an
# embedded etcd and local storage instead of MinIO), installed into its own venv
# $FACEINDEX_MILVUS_VENV (default /tmp/milvus-venv, created when missing): never into the
# project's venv, it is a server, not a client dependency. Version 2.3.5: the newest with a
# Linux wheel (2.3.8 and 2.3.9 ship only a macOS arm64 one).
#
# Milvus 2.3 listens on every interface (no setting narrows its gRPC ports), so the server runs
# in a private network namespace with only a loopback device, and scripts/milvus_relay.py
# relays 127.0.0.1:$FACEINDEX_MILVUS_PORT (default 19530, else a free port) on this host into
# it: nothing is reachable from outside this machine. That needs root (unshare, setns).
# Data, logs and pid files live in $FACEINDEX_MILVUS_DIR (default /tmp/faceindex-milvus-<uid>).
# The server runs at nice 19 (it uses CPU even when idle: stop it when done).
set -euo pipefail

DIR=${FACEINDEX_MILVUS_DIR:-${TMPDIR:-/tmp}/faceindex-milvus-$(id -u)}
VENV=${FACEINDEX_MILVUS_VENV:-/tmp/milvus-venv}
VERSION=${FACEINDEX_MILVUS_VERSION:-2.3.5}
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "start-milvus: $*" >&2; exit 1; }
alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }
inside() { nsenter --net="/proc/$(cat "$DIR/netns.pid")/ns/net" -- "$@"; }
healthy() { inside curl -sf --max-time 2 http://127.0.0.1:9091/healthz 2>/dev/null | grep -q OK; }

stop_server() {  # SIGTERM is Milvus's graceful stop (a few seconds); --crash sends SIGKILL
  if alive milvus; then
    local pid; pid=$(cat "$DIR/milvus.pid")
    kill "-${1:-TERM}" "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$DIR/milvus.pid"
}

stop_all() {
  stop_server
  for name in relay netns; do
    alive "$name" && kill -TERM "$(cat "$DIR/$name.pid")"
    rm -f "$DIR/$name.pid"
  done
}

# The package's launcher (milvus-server) unpacks the binary and writes its config, but it
# probes each port with a bind that fails while the last run's connections are in TIME_WAIT
# and then silently moves the proxy off 19530: it is used once, to prepare the data dir, and
# the binary is started directly (on the config's fixed ports: the namespace is ours alone).
prepare() {
  [ -x "$DIR/data/bin/milvus" ] && [ -f "$DIR/data/configs/milvus.yaml" ] && return
  inside "$VENV/bin/python" -c 'import sys
from milvus import MilvusServer, _initialize_data_files
server = MilvusServer()
server.set_base_dir(sys.argv[1])
server.config.resolve()  # writes configs/milvus.yaml with the default ports
_initialize_data_files(server.config.base_data_dir)' "$DIR/data" >&2
}

start_server() {
  prepare
  # the subshell, nsenter, nice and env each exec the next: $! is the milvus process
  (cd "$DIR/data" && exec nsenter --net="/proc/$(cat "$DIR/netns.pid")/ns/net" -- nice -n 19 \
    env DEPLOY_MODE=STANDALONE METRICS_PORT=9091 MILVUS_RUN_DIR="$DIR/data/run" \
    LD_LIBRARY_PATH="$DIR/data/bin:${LD_LIBRARY_PATH:-}" "$DIR/data/bin/milvus" run standalone) \
    </dev/null >>"$DIR/server.log" 2>&1 &
  echo $! >"$DIR/milvus.pid"
  for _ in $(seq 1 360); do
    alive milvus || { tail -n 20 "$DIR/server.log" >&2; die "the server exited: see $DIR/server.log"; }
    healthy && return
    sleep 0.5
  done
  die "the server did not become healthy in 180 s: see $DIR/server.log"
}

case "${1:-}" in
  --stop) stop_all; exit 0 ;;
  --wipe) stop_all; rm -rf "$DIR"; exit 0 ;;
  --restart|--crash)
    alive netns && alive relay || die "not running: start it first"
    if [ "$1" = --crash ]; then stop_server KILL; else stop_server TERM; fi
    start_server
    echo "milvus://127.0.0.1:$(cat "$DIR/port")/faces"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--restart|--crash|--stop|--wipe]" ;;
esac

if [ ! -x "$VENV/bin/milvus-server" ]; then
  python3 -m venv "$VENV" >&2
  nice -n 19 "$VENV/bin/pip" install -q "milvus==$VERSION" >&2 || die "pip install milvus==$VERSION failed"
fi

mkdir -p "$DIR"
if alive netns && alive relay && alive milvus && healthy; then
  echo "milvus://127.0.0.1:$(cat "$DIR/port")/faces"; exit 0
fi
stop_all

port=${FACEINDEX_MILVUS_PORT:-19530}
port_free() { python3 -c 'import socket, sys; socket.create_server(("127.0.0.1", int(sys.argv[1]))).close()' "$1" 2>/dev/null; }
if ! port_free "$port"; then
  [ -n "${FACEINDEX_MILVUS_PORT:-}" ] && die "port $port is in use"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
echo "$port" >"$DIR/port"

# the namespace's holder: the server and the relay join it by this pid's /proc entry
unshare --net -- sh -c 'ip link set lo up && exec sleep infinity' </dev/null >/dev/null 2>&1 &
echo $! >"$DIR/netns.pid"
sleep 0.3
alive netns || die "cannot make a network namespace (needs root: unshare --net)"

start_server
nice -n 19 "$VENV/bin/python" "$HERE/milvus_relay.py" --listen-port "$port" \
  --netns "/proc/$(cat "$DIR/netns.pid")/ns/net" --target-port 19530 \
  </dev/null >>"$DIR/relay.log" 2>&1 &
echo $! >"$DIR/relay.pid"
for _ in $(seq 1 20); do port_free "$port" || break; sleep 0.2; done
alive relay || { cat "$DIR/relay.log" >&2; die "the relay did not start"; }

echo "milvus://127.0.0.1:$port/faces"
