#!/usr/bin/env bash
# redis_matrix.sh -- the fault matrix (tests/fault_matrix.py): every step of
# the Redis job protocol x every fault a store answers (and a replica paused
# past its lease) x both Redis sources, each case on its own redis-server.
. "$(dirname "$0")/../lib.sh"

if [ ! -x "$ROOT/$BUILD/seams/oneshot" ]; then
    echo "FAIL fault matrix: $BUILD/seams/oneshot is not built (make seams)"
    exit 1
fi
ONESHOT_BUILD=$BUILD python3 "$ROOT/tests/fault_matrix.py"
