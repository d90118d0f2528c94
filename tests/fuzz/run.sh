#!/usr/bin/env bash
# run.sh -- `make fuzz`: every libFuzzer target for FUZZ_SECONDS (default
# 60) each, after `make fuzz-build`. Each starts from its seed corpus
# tests/fuzz/corpus/<target>/ plus what earlier runs found, kept in
# $BUILD/fuzz/corpus/<target>/; a crash is written to
# $BUILD/fuzz/artifacts/<target>-crash-... Once it is fixed, copy the input
# into tests/fuzz/corpus/<target>/ (as regress-<what>) so `make test` replays it.
# Prints one line per target (executions, rate, coverage) and exits 1 when
# any target failed.
set -u
cd "$(dirname "$0")/../.."
BUILD=${ONESHOT_BUILD:-build}
SECS=${FUZZ_SECONDS:-60}
rc=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    t=${t#fuzz_}
    bin=$BUILD/fuzz/fuzz_$t
    work=$BUILD/fuzz/corpus/$t
    log=$BUILD/fuzz/$t.log
    mkdir -p "$work" "$BUILD/fuzz/artifacts"
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
    code=$?
    execs=$(grep -a -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
    rate=$(grep -a -o 'average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -a -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' | grep -o '[0-9]*$')
    if [ $code -eq 0 ]; then
        printf 'fuzz %-10s %10s execs in %ss (%s/s), %s coverage points, corpus %s: no crash\n' \
            "$t" "${execs:-?}" "$SECS" "${rate:-?}" "${cov:-?}" "$(ls "$work" | wc -l)"
    else
        rc=1
        printf 'fuzz %-10s FAILED (exit %d): %s\n  input: %s\n' "$t" "$code" \
            "$(grep -a -m1 -E 'invariant broken|ERROR: |runtime error' "$log" | cut -c1-200)" \
            "$(grep -a -o 'Test unit written to .*' "$log" | cut -d' ' -f5)"
    fi
done
exit $rc
