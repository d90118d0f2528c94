#!/usr/bin/env bash
# valgrind.sh -- a sample of replicas under valgrind memcheck: the
# HTTP demo job, the echo core, a rejected input and an idle exit. Each must
# exit with its own code: valgrind's --error-exitcode=99 turns any invalid
# read or write, use of uninitialised memory, bad free, or a definite or
# possible leak into exit 99 (tests/harness/valgrind.supp: the one
# allocation that is live at exit by design).
. "$(dirname "$0")/../harness/lib.sh"

U() { echo "http://127.0.0.1:$R_PORT$1"; }

command -v valgrind >/dev/null || { echo "FAIL valgrind: not installed (make deps)"; exit 1; }
if grep -qa -e __asan_init -e __tsan_init "$ONESHOT"; then
    echo "# valgrind: skipped, $ONESHOT is built with a sanitizer (they do not mix)"
    exit 0
fi

# Like start_replica, under valgrind (startup takes a second or two).
start_vg() {
    R_LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    VG_LOG=$(mktemp "$T_DIR/valgrind.XXXXXX")
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible \
        --suppressions="$(dirname "$0")/../harness/valgrind.supp" --track-fds=no --log-file="$VG_LOG" \
        "$ONESHOT" --port 0 --bind 127.0.0.1 "$@" 2>"$R_LOG" &
    R_PID=$!
    T_PIDS+=("$R_PID")
    wait_for 20 grep -q '"port":' "$R_LOG" || { fail "replica did not start: $(tail -3 "$R_LOG" "$VG_LOG")"; return 1; }
    R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" | head -1 | cut -d: -f2)
}

vg_exit() { # seconds expected what
    wait_exit "$R_PID" "$1"
    assert_eq "$W_RC" "$2" "$3"
    if [ "$W_RC" = 99 ]; then fail "valgrind: $(grep -m3 -E 'Invalid|uninitialised|definitely|possibly|ERROR SUMMARY' "$VG_LOG" | tr '\n' ' ')"; fi
    grep -q 'ERROR SUMMARY: 0 errors' "$VG_LOG" || fail "valgrind summary: $(grep 'ERROR SUMMARY' "$VG_LOG")"
}

t_demo_job() {
    start_vg || return
    http POST "$(U '/job?duration=1')" -H 'Content-Type: application/json' -d '{"note":"vg"}'
    assert_eq "$H_CODE" 200 "job"
    assert_contains "$H_BODY" '"success":true'
    vg_exit 20 0 "demo job under valgrind"
}

t_echo_core() {
    head -c 100000 /dev/urandom >"$T_DIR/in"
    start_vg --core echo || return
    curl -s -m 20 -X POST --data-binary "@$T_DIR/in" -H 'Content-Type: application/octet-stream' \
        -o "$T_DIR/out" "$(U /job)"
    cmp -s "$T_DIR/in" "$T_DIR/out" || fail "echoed body differs"
    vg_exit 20 0 "echo core under valgrind"
}

t_rejected() {
    start_vg --max-input 1k || return
    http POST "$(U '/job?duration=0')" -H 'Content-Type: application/json' -d '{"a":'
    assert_eq "$H_CODE" 400 "invalid JSON"
    vg_exit 20 65 "rejected input under valgrind"
}

t_idle() {
    start_vg --idle-timeout 1 || return
    http GET "$(U /health)"
    assert_eq "$H_CODE" 200 "/health"
    vg_exit 20 75 "idle exit under valgrind"
}

t_run "valgrind: HTTP demo job, exit 0, no errors or leaks" t_demo_job
t_run "valgrind: echo core, 100 kB, exit 0" t_echo_core
t_run "valgrind: invalid JSON -> 400, exit 65" t_rejected
t_run "valgrind: idle timeout -> 75" t_idle
