#!/usr/bin/env bash
# fuzz.sh -- a short smoke of every libFuzzer target: builds them
# with clang into $BUILD/fuzz (make fuzz-build), then runs each over its
# seed corpus tests/fuzz/corpus/<target>/ (which keeps every crash found so
# far as a regression case) plus a bounded number of new inputs, with a
# fixed seed. `make fuzz` is the long run (tests/fuzz/run.sh).
. "$(dirname "$0")/../harness/lib.sh"

# runs per target (corpus replay included): a few seconds each
declare -A RUNS=([envelope]=40000 [status]=40000 [redis_url]=60000 [config]=10000 [http]=3000)

command -v clang >/dev/null || { echo "FAIL fuzz: clang is not installed (make deps)"; exit 1; }
if ! make -s -C "$ROOT" BUILD="$BUILD" fuzz-build >"$T_DIR/build.log" 2>&1; then
    echo "FAIL fuzz: make fuzz-build: $(grep -m3 -E 'error|Error' "$T_DIR/build.log" | tr '\n' ' ')"
    exit 1
fi

smoke() { # target
    local t=$1 bin=$ROOT/$BUILD/fuzz/fuzz_$1 log=$T_DIR/$1.log
    mkdir -p "$T_DIR/new/$t"
    [ -x "$bin" ] || { fail "$bin was not built"; return; }
    "$bin" -seed=1 -runs="${RUNS[$t]:-10000}" -max_total_time=20 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$T_DIR/crash-$t-" \
        "$T_DIR/new/$t" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "exit $rc: $(grep -a -m2 -E 'invariant broken|ERROR: |runtime error' "$log" | cut -c1-200 | tr '\n' ' ')"
        return
    fi
    local seeds execs
    seeds=$(ls "$ROOT/tests/fuzz/corpus/$t" | wc -l)
    execs=$(grep -a -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
    [ "${execs:-0}" -gt "$seeds" ] || fail "only ${execs:-0} executions for $seeds seeds"
    SUMMARY+=" $t:$execs"
}

SUMMARY=""
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    t=${t#fuzz_}
    eval "fz_$t() { smoke $t; }"
    t_run "fuzz: $t (seed corpus + new inputs, seed 1)" "fz_$t"
done
echo "# fuzz smoke executions:$SUMMARY"
