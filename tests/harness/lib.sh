# lib.sh -- helpers for the end-to-end tests (bash). Source it.
#
# Each test is a function run by `t_run "name" fn`; it fails by calling
# `fail "why"` (or any assertion below). Results print as "PASS name" /
# "FAIL name: why"; tests/harness/run.sh counts them. Every server and replica a
# test starts lives in $T_DIR (a mktemp -d folder) and is killed by the
# EXIT trap, after the commands in T_ON_EXIT (a helper's last words, such
# as keeping a broker's log when T_FAILS, the count of failed tests, > 0).
# It is the one temporary folder of a suite: anything a suite writes goes
# under it (a Kafka broker's in $T_DIR/kafka), and a tool that makes its own
# temporary folders (Python's tempfile, node's os.tmpdir) is run with
# TMPDIR=$T_DIR, so the trap removes them too.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${ONESHOT_BUILD:-build}
ONESHOT=${ONESHOT_BIN:-$ROOT/$BUILD/oneshot}
T_DIR=$(mktemp -d /tmp/oneshot-test.XXXXXX)
T_PIDS=()
T_ON_EXIT=()
T_FAILS=0
T_FAILED=0
T_WHY=""

t_cleanup() {
    local p
    for p in "${T_ON_EXIT[@]:-}"; do
        [ -n "$p" ] && $p
    done
    for p in "${T_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T_DIR"
}
trap t_cleanup EXIT

fail() {
    T_FAILED=1
    T_WHY="${T_WHY:+$T_WHY; }$*"
}

t_run() { # name fn
    local name=$1 fn=$2
    T_FAILED=0
    T_WHY=""
    "$fn"
    if [ "$T_FAILED" = 0 ]; then
        echo "PASS $name"
    else
        echo "FAIL $name: $T_WHY"
        T_FAILS=$((T_FAILS + 1))
    fi
}

assert_eq() { # actual expected what
    [ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}
assert_contains() { # haystack needle what
    case "$1" in *"$2"*) ;; *) fail "${3:-output}: '$(printf %.300s "$1")' lacks '$2'" ;; esac
}
assert_not_contains() {
    case "$1" in *"$2"*) fail "${3:-output}: contains '$2'" ;; *) ;; esac
}

# Poll a condition (a command) every 20 ms for at most $1 seconds.
wait_for() { # seconds cmd...
    local limit=$(($1 * 50)) i=0
    shift
    while [ $i -lt $limit ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
        i=$((i + 1))
    done
    return 1
}

# Start a replica on a free port (--port 0, read back from its log).
# Sets R_PID, R_PORT, R_LOG. Extra args pass through.
start_replica() {
    R_LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    "$ONESHOT" --port 0 --bind 127.0.0.1 "$@" 2>"$R_LOG" &
    R_PID=$!
    T_PIDS+=("$R_PID")
    R_PORT=""
    local i=0
    while [ $i -lt 500 ]; do
        R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" 2>/dev/null | head -1 | cut -d: -f2)
        [ -n "$R_PORT" ] && return 0
        if ! kill -0 "$R_PID" 2>/dev/null; then
            # It may have started, run a queued job and exited between
            # the two looks: its log has the port then.
            R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" 2>/dev/null | head -1 | cut -d: -f2)
            [ -n "$R_PORT" ] && return 0
            break
        fi
        sleep 0.01
        i=$((i + 1))
    done
    fail "replica did not start: $(tail -3 "$R_LOG")"
    return 1
}

# Wait for a child pid to exit within $2 seconds; sets W_RC to its exit
# code (or "timeout"). Must run in the test's own shell, never in $(...):
# only the parent shell can collect a child's exit status.
wait_exit() { # pid seconds
    local pid=$1 limit=$(($2 * 50)) i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt "$limit" ]; do
        sleep 0.02
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        W_RC=timeout
        return
    fi
    W_RC=0
    wait "$pid" 2>/dev/null || W_RC=$?
}

# Assert that a child exits with a code within a time, and that its log
# (R_LOG by default) has no sanitizer report.
assert_exit() { # pid seconds expected what [log]
    wait_exit "$1" "$2"
    assert_eq "$W_RC" "$3" "${4:-exit code}"
    check_sanitizers "${5:-${R_LOG:-/dev/null}}"
}

# Sanitizer reports of every process a suite starts (a subcommand's
# stderr is often not kept) go to $T_DIR/san.*: a suite calls san_log_all
# once, and each test ends with san_check (a report fails it).
san_log_all() {
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$T_DIR/san"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$T_DIR/san"
}
san_check() {
    local f
    for f in "$T_DIR"/san.*; do
        [ -e "$f" ] || continue
        fail "sanitizer report: $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$f")"
        rm -f "$f"
    done
}

check_sanitizers() { # log
    if grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer|SUMMARY: (Address|Undefined)' "$1" 2>/dev/null; then
        fail "sanitizer report: $(grep -m1 -E 'runtime error:|Sanitizer' "$1")"
    fi
}

# Every stderr line must be a JSON object (python3 parses each).
check_json_lines() { # log
    python3 - "$1" <<'PY' || fail "log is not JSON lines: $(head -c 300 "$1")"
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    assert isinstance(o, dict) and "ts" in o and "level" in o and "msg" in o, line
    n += 1
assert n > 0
PY
}

# curl with bounded time; prints "BODY\nCODE".
http() { # method url [curl args...]
    local m=$1 u=$2
    shift 2
    curl -s -m 20 -X "$m" -o "$T_DIR/body" -w '%{http_code}' "$@" "$u" >"$T_DIR/code" 2>/dev/null
    H_CODE=$(cat "$T_DIR/code")
    H_BODY=$(cat "$T_DIR/body" 2>/dev/null)
}
