#!/usr/bin/env bash
# redis_matrix.sh -- the fault matrix (tests/harness/fault_matrix.py): every step of
# the Redis job protocol x every fault a store answers (and a replica paused
# past its lease) x both Redis sources, each case on its own redis-server.
. "$(dirname "$0")/../harness/lib.sh"

if [ ! -x "$ROOT/$BUILD/seams/oneshot" ]; then
    echo "FAIL fault matrix: $BUILD/seams/oneshot is not built (make seams)"
    exit 1
fi
# The chaos runs' checker (tests/chaos/chaos_check.py) must flag what it exists
# to catch: a write under a stale fence, a final record overwritten.
t_checker_can_fail() {
    printf '%s\n' '{"id":"a","state":"running","fence":2}' '{"id":"a","state":"succeeded","fence":1}' \
        '{"id":"b","state":"succeeded","fence":1}' '{"id":"b","state":"interrupted","fence":2}' >"$T_DIR/h"
    local out
    out=$(python3 "$ROOT/tests/chaos/chaos_check.py" "$T_DIR/h")
    assert_eq "$?" 1 "checker exit code"
    assert_contains "$out" "stale_writes_applied=1 final_overwritten=1"
}
t_run "chaos checker flags a stale write and an overwritten final record" t_checker_can_fail

# Its per-case folders (Python's tempfile) go under $T_DIR, removed by the trap.
TMPDIR=$T_DIR ONESHOT_BUILD=$BUILD python3 "$ROOT/tests/harness/fault_matrix.py"
