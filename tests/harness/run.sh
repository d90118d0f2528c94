#!/usr/bin/env bash
# run.sh -- the whole suite: unit tests, then every tests/e2e/*.sh.
# Prints each PASS/FAIL line and, last, "N passed, N failed".
# ONESHOT_BUILD selects the build folder (build/asan for `make asan`);
# ONESHOT_TESTS=pattern runs only the e2e files whose name matches.
set -u
cd "$(dirname "$0")/../.."
BUILD=${ONESHOT_BUILD:-build}
export ONESHOT_BUILD=$BUILD
pass=0
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

count() {
    local p f
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    pass=$((pass + p))
    fail=$((fail + f))
}

"$BUILD/unit_tests" >"$out" 2>&1
rc=$?
grep -E '^(PASS|FAIL|     )' "$out"
count
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
    echo "FAIL unit tests crashed (exit $rc): $(tail -3 "$out" | tr '\n' ' ')"
    fail=$((fail + 1))
fi

for t in tests/e2e/*.sh; do
    case "$t" in *"${ONESHOT_TESTS:-}"*) ;; *) continue ;; esac
    echo "# $t"
    timeout 900 bash "$t" >"$out" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL|#)' "$out"
    count
    if [ $rc -ne 0 ]; then
        echo "FAIL $t exited $rc: $(tail -3 "$out" | tr '\n' ' ')"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
