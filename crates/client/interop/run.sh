#!/usr/bin/env bash
# Interop for mongo-client: installs nx-27017, briskdb (and mongoeco where Python 3.13 exists)
# into venvs, starts them on loopback, waits for an OP_MSG hello, runs
# `cargo test -p mongo-client --test interop -- --test-threads=1` with their URIs, stops them
# by PID and prints `client-interop: N passed, N failed`.
#
# usage (from the workspace root): bash crates/client/interop/run.sh ../shared
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
SHARED=$(cd "${1:-$ROOT/../shared}" && pwd)
SERVERS="$SHARED/servers"
W=$(mktemp -d "${TMPDIR:-/tmp}/client-interop.XXXXXX")
NX_PORT=${NX_PORT:-27217}
ECO_PORT=${ECO_PORT:-27218}
BRISK_PORT=${BRISK_PORT:-27219}

stop_all() {
    for f in "$W"/*.bgpid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}
trap stop_all EXIT

cat > "$W/wait_hello.py" <<'PY'
import socket, struct, sys, time, bson
h, p, to = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]); end = time.time() + to
while time.time() < end:
    try:
        s = socket.create_connection((h, p), timeout=1)
        b = struct.pack("<I", 0) + b"\x00" + bson.encode({"hello": 1, "$db": "admin"})
        s.sendall(struct.pack("<iiii", 16 + len(b), 1, 0, 2013) + b)
        hd = s.recv(16, socket.MSG_WAITALL); r = s.recv(struct.unpack("<i", hd[:4])[0] - 16, socket.MSG_WAITALL)
        if bson.decode(r[5:]).get("ok") == 1: sys.exit(0)
    except Exception: time.sleep(0.1)
sys.exit(f"server {h}:{p} not ready after {to}s")
PY

envs=()
# nx-27017 (Python >= 3.10)
if python3 -m venv "$W/venv-nx" && "$W/venv-nx/bin/pip" install -q nx-27017==0.8.1 pymongo >"$W/nx-pip.log" 2>&1; then
    "$W/venv-nx/bin/nx-27017" --db memory --host 127.0.0.1 -p "$NX_PORT" \
        --log-file "$W/nx.log" --pid-file "$W/nx.pid" >"$W/nx.out" 2>&1 &
    echo $! > "$W/nx.bgpid"
    if "$W/venv-nx/bin/python" "$W/wait_hello.py" 127.0.0.1 "$NX_PORT" 30; then
        envs+=("MONGO_INTEROP_NX=mongodb://127.0.0.1:$NX_PORT/?directConnection=true")
    else
        echo "client-interop: nx-27017 did not start"
    fi
else
    echo "client-interop: could not install nx-27017 (see $W/nx-pip.log)"
fi

# briskdb (x86_64 wheel)
if python3 -m venv "$W/venv-brisk" && "$W/venv-brisk/bin/pip" install -q briskdb==0.1.0b3 'pymongo==4.17.0' >"$W/brisk-pip.log" 2>&1; then
    "$W/venv-brisk/bin/python" "$SERVERS/briskdb_server.py" "$W/brisk-data" --mongo "127.0.0.1:$BRISK_PORT" >"$W/brisk.out" 2>&1 &
    echo $! > "$W/brisk.bgpid"
    if "$W/venv-brisk/bin/python" "$W/wait_hello.py" 127.0.0.1 "$BRISK_PORT" 30; then
        envs+=("MONGO_INTEROP_BRISK=mongodb://127.0.0.1:$BRISK_PORT/?directConnection=true")
    else
        echo "client-interop: briskdb did not start"
    fi
else
    echo "client-interop: could not install briskdb (see $W/brisk-pip.log)"
fi

# mongoeco (CPython >= 3.13 only)
PY313=$(PYENV_VERSION=3.13.0 pyenv which python3 2>/dev/null || true)
if [ -n "$PY313" ]; then
    if "$PY313" -m venv "$W/venv-eco" && "$W/venv-eco/bin/pip" install -q mongoeco==4.11.0 pymongo >"$W/eco-pip.log" 2>&1; then
        "$W/venv-eco/bin/python" "$SERVERS/mongoeco_server.py" --port "$ECO_PORT" --user app:secret >"$W/eco.out" 2>&1 &
        echo $! > "$W/eco.bgpid"
        if "$W/venv-eco/bin/python" "$W/wait_hello.py" 127.0.0.1 "$ECO_PORT" 30; then
            envs+=("MONGO_INTEROP_ECO=mongodb://app:secret@127.0.0.1:$ECO_PORT/?directConnection=true&authMechanism=SCRAM-SHA-256")
        else
            echo "client-interop: mongoeco did not start"
        fi
    else
        echo "client-interop: could not install mongoeco (see $W/eco-pip.log)"
    fi
else
    echo "client-interop: no Python 3.13: mongoeco skipped"
fi

cd "$ROOT"
env "${envs[@]}" cargo test -p mongo-client --test interop -- --test-threads=1 2>&1 | tee "$W/test.log"
status=${PIPESTATUS[0]}
stop_all
wait 2>/dev/null || true

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$W/test.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$W/test.log" | awk '{s+=$6} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "client-interop: servers ${#envs[@]} started"
echo "client-interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
