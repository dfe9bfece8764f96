#!/usr/bin/env bash
# PyMongo (the reference client) against mongo-testkit-server.
# Creates a venv, installs a pinned PyMongo, builds the server binary, starts a standalone with
# auth, a 3-member replica set and a TLS standalone, runs test_pymongo.py and stops the servers
# by PID. The last line is `pymongo-interop: N passed, N failed`; exit status is non-zero on failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/testkit-interop.XXXXXX")"
VENV="${TESTKIT_VENV:-$TARGET/pymongo-venv}"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# python-snappy and backports.zstd let PyMongo use the snappy and zstd compressors.
"$VENV/bin/pip" install -q --disable-pip-version-check "pymongo==4.20.0" \
  "python-snappy==0.7.3" "backports.zstd==1.8.0"

(cd "$ROOT" && cargo build -q -p mongo-testkit --bin mongo-testkit-server)
BIN="$TARGET/debug/mongo-testkit-server"

# start NAME ARGS...: runs the server in the background, waits for its `listening on` lines.
start() {
  local name="$1" want="$2"; shift 2
  "$BIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    if [ "$(grep -c '^listening on ' "$WORK/$name.out" 2>/dev/null || true)" -ge "$want" ]; then
      return 0
    fi
    sleep 0.05
  done
  echo "server $name did not start:" >&2
  cat "$WORK/$name.err" >&2
  return 1
}
hosts_of() { sed -n 's/^listening on //p' "$WORK/$1.out" | paste -sd, -; }

start auth 1 --port 0 --auth app:secret --auth sha1user:pw1
start rs 3 --port 0 --replset rs0 --members 3
start tls 1 --port 0 --gen-certs "$WORK/certs"

export TESTKIT_AUTH="$(hosts_of auth)"
export TESTKIT_RS="$(hosts_of rs)"
export TESTKIT_TLS="$(hosts_of tls)"
export TESTKIT_CA="$WORK/certs/ca.pem"

status=0
"$VENV/bin/python" "$HERE/test_pymongo.py" || status=$?
exit "$status"
