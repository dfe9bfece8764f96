#!/usr/bin/env bash
# Interop for mongo-client: installs nx-27017, briskdb and mongoeco into venvs, starts them on
# loopback, waits for an OP_MSG hello, and stops them by PID.
#
# usage (from anywhere):
#   bash crates/client/interop/run.sh [SHARED]              start, run the interop test, stop;
#                                                            prints `client-interop: N passed, N failed`
#   bash crates/client/interop/run.sh start STATE [SHARED]  install and start the servers, write
#                                                            STATE/env (source it), keep them running
#   bash crates/client/interop/run.sh stop STATE            stop what `start STATE` started, by PID
#
# STATE/env exports, per server (NX, BRISK, ECO):
#   MONGO_INTEROP_<NAME>=<uri>            the server answers hello: tests/interop.rs runs its case;
#   MONGO_INTEROP_<NAME>_SKIP=<reason>    the server cannot be installed on this machine (a missing
#                                         prerequisite: no Python 3.13 for mongoeco, no x86_64 for
#                                         briskdb); its case is skipped with the reason, CI included;
#   MONGO_INTEROP_<NAME>_ERROR=<reason>   installing or starting it failed although the machine has
#                                         what it needs; under MONGO_CI=1 its case FAILS (skipped,
#                                         with the reason, on a developer machine).
# `start` exits 0 when it could write STATE/env (the verdicts above are the test's to count).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# A free loopback port (another checkout may run its interop servers at the same time).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null
}
NX_PORT=${NX_PORT:-$(free_port || echo 27217)}
ECO_PORT=${ECO_PORT:-$(free_port || echo 27218)}
BRISK_PORT=${BRISK_PORT:-$(free_port || echo 27219)}
READY_TIMEOUT=${READY_TIMEOUT:-30}

shared_dir() { cd "${1:-$ROOT/../shared}" && pwd; }

# stop_servers DIR: kills every process recorded in DIR/*.bgpid and waits (5 s, then KILL).
stop_servers() {
    local dir=$1 f pid
    for f in "$dir"/*.bgpid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$f"
    done
}

# say NAME VAR VALUE: records `export VAR=VALUE` in the env file, and says it.
say() {
    local var=$2 value=$3
    printf 'export %s=%q\n' "$var" "$value" >> "$W/env"
    echo "client-interop: $1: $var=$value"
}

# wait_ready NAME VENV PORT VAR URI: after starting NAME, records its URI or why it is not there
# (the probe runs in the server's venv, which has PyMongo's bson module). The server must still
# be alive once the port answers: otherwise something else answered on that port.
wait_ready() {
    local name=$1 venv=$2 port=$3 var=$4 uri=$5
    if "$venv/bin/python" "$W/wait_hello.py" 127.0.0.1 "$port" "$READY_TIMEOUT" &&
        kill -0 "$(cat "$W/$name.bgpid")" 2>/dev/null; then
        say "$name" "$var" "$uri"
    else
        say "$name" "${var}_ERROR" "installed but did not answer hello on 127.0.0.1:$port within ${READY_TIMEOUT}s (log: $W/$name.out)"
    fi
}

# pip_install NAME VENV PYTHON PKG...: a venv with the packages; on failure records the error.
pip_install() {
    local name=$1 venv=$2 python=$3 var=$4
    shift 4
    if "$python" -m venv "$venv" >"$W/$name-pip.log" 2>&1 &&
        "$venv/bin/pip" install -q "$@" >>"$W/$name-pip.log" 2>&1; then
        return 0
    fi
    say "$name" "${var}_ERROR" "could not install $* ($(tail -n 1 "$W/$name-pip.log"); log: $W/$name-pip.log)"
    return 1
}

start_servers() {
    local servers=$1
    mkdir -p "$W"
    : > "$W/env" || return 1
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

    # nx-27017 (Python >= 3.10; the system python3 is checked here)
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        say nx MONGO_INTEROP_NX_SKIP "nx-27017 needs Python >= 3.10; python3 is $(python3 -V 2>&1)"
    elif pip_install nx "$W/venv-nx" python3 MONGO_INTEROP_NX nx-27017==0.8.1 pymongo; then
        "$W/venv-nx/bin/nx-27017" --db memory --host 127.0.0.1 -p "$NX_PORT" \
            --log-file "$W/nx.log" --pid-file "$W/nx.pid" >"$W/nx.out" 2>&1 </dev/null &
        echo $! > "$W/nx.bgpid"
        wait_ready nx "$W/venv-nx" "$NX_PORT" MONGO_INTEROP_NX "mongodb://127.0.0.1:$NX_PORT/?directConnection=true"
    fi

    # briskdb (an x86_64 wheel only)
    if [ "$(uname -m)" != x86_64 ]; then
        say brisk MONGO_INTEROP_BRISK_SKIP "briskdb ships an x86_64 wheel only; this machine is $(uname -m)"
    elif pip_install brisk "$W/venv-brisk" python3 MONGO_INTEROP_BRISK briskdb==0.1.0b3 'pymongo==4.17.0'; then
        "$W/venv-brisk/bin/python" "$servers/briskdb_server.py" "$W/brisk-data" --mongo "127.0.0.1:$BRISK_PORT" \
            >"$W/brisk.out" 2>&1 </dev/null &
        echo $! > "$W/brisk.bgpid"
        wait_ready brisk "$W/venv-brisk" "$BRISK_PORT" MONGO_INTEROP_BRISK "mongodb://127.0.0.1:$BRISK_PORT/?directConnection=true"
    fi

    # mongoeco (CPython >= 3.13 only, found through pyenv)
    local py313
    py313=$(PYENV_VERSION=3.13.0 pyenv which python3 2>/dev/null || true)
    if [ -z "$py313" ]; then
        say eco MONGO_INTEROP_ECO_SKIP "mongoeco needs CPython >= 3.13 and this machine has none (PYENV_VERSION=3.13.0 pyenv which python3 found nothing)"
    elif pip_install eco "$W/venv-eco" "$py313" MONGO_INTEROP_ECO mongoeco==4.11.0 pymongo; then
        "$W/venv-eco/bin/python" "$servers/mongoeco_server.py" --port "$ECO_PORT" --user app:secret \
            >"$W/eco.out" 2>&1 </dev/null &
        echo $! > "$W/eco.bgpid"
        wait_ready eco "$W/venv-eco" "$ECO_PORT" MONGO_INTEROP_ECO \
            "mongodb://app:secret@127.0.0.1:$ECO_PORT/?directConnection=true&authMechanism=SCRAM-SHA-256"
    fi
    return 0
}

case "${1:-}" in
start)
    W=${2:?usage: run.sh start STATE [SHARED]}
    SHARED=$(shared_dir "${3:-}") || exit 2
    start_servers "$SHARED/servers" || { echo "client-interop: cannot write $W/env"; exit 1; }
    echo "client-interop: servers started; source $W/env"
    ;;
stop)
    W=${2:?usage: run.sh stop STATE}
    stop_servers "$W"
    ;;
*)
    SHARED=$(shared_dir "${1:-}") || exit 2
    W=$(mktemp -d "${TMPDIR:-/tmp}/client-interop.XXXXXX")
    trap 'stop_servers "$W"' EXIT
    start_servers "$SHARED/servers"
    # shellcheck disable=SC1091
    . "$W/env"
    cd "$ROOT" || exit 2
    cargo test -p mongo-client --test interop 2>&1 | tee "$W/test.log"
    status=${PIPESTATUS[0]}
    stop_servers "$W"
    line=$(grep -E '^interop: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$W/test.log" | tail -n 1)
    passed=$(echo "$line" | sed -nE 's/^interop: ([0-9]+) passed.*/\1/p')
    failed=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
    skipped=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0}
    # A failed test run without a countable failure (a build error) is still a failure.
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    echo "client-interop: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    ;;
esac
