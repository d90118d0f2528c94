#!/usr/bin/env bash
# cores.sh -- the exec and plugin cores, driven over HTTP with curl.
. "$(dirname "$0")/../harness/lib.sh"

U() { echo "http://127.0.0.1:$R_PORT$1"; }
PLUGINS="$ROOT/$BUILD/plugins"
MIB=1048576

# Sanitizer builds keep freed memory in quarantine and grow the heap by
# copying: their memory figures are not the product's.
ASAN=0
ldd "$ONESHOT" 2>/dev/null | grep -q libasan && ASAN=1

# --- helpers ---

# A wrapper that runs oneshot and, when it exits, writes its peak RSS in
# KiB (wait4's ru_maxrss, the whole process's high-water mark) to $RSS_OUT.
# The child dies with the wrapper (PR_SET_PDEATHSIG), so the EXIT trap
# that kills the wrapper leaves nothing behind.
cat >"$T_DIR/rsswrap" <<'PY'
#!/usr/bin/env python3
import ctypes, os, sys
out, real = os.environ["RSS_OUT"], os.environ["ONESHOT_REAL"]
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    os.execv(real, [real] + sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write(str(ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
PY
chmod +x "$T_DIR/rsswrap"

# start_replica, measured: the peak RSS lands in $RSS_OUT when it exits.
start_measured() {
    RSS_OUT="$T_DIR/rss.$RANDOM"
    export RSS_OUT ONESHOT_REAL="$ONESHOT"
    local saved=$ONESHOT
    ONESHOT="$T_DIR/rsswrap"
    start_replica "$@"
    local rc=$?
    ONESHOT=$saved
    return $rc
}

assert_peak_mib_le() { # limit_mib what
    local kb
    kb=$(cat "$RSS_OUT" 2>/dev/null)
    [ -n "$kb" ] || { fail "$2: no peak RSS recorded"; return; }
    echo "# $2: peak RSS $((kb / 1024)) MiB (limit $1 MiB)"
    [ "$((kb / 1024))" -le "$1" ] || fail "$2: peak RSS $((kb / 1024)) MiB > $1 MiB"
}

# Is a process running (a zombie does not count)?
alive() { # pid
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}
none_alive() { # pid...
    local p
    for p in "$@"; do alive "$p" && return 1; done
    return 0
}
# Register the pids a job wrote (one a line) for the EXIT trap.
track_pids() { # file
    local p
    for p in $(cat "$1" 2>/dev/null); do T_PIDS+=("$p"); done
}
lines_in() { [ "$(wc -l <"$2" 2>/dev/null)" -ge "$1" ]; } # n file

log_has() { grep -q -- "$1" "$R_LOG"; }

# A command that ignores SIGTERM, starts two grandchildren that ignore it
# too, and writes every pid to $1 (its own last, so 3 lines = all started).
STUBBORN='trap "" TERM; sleep 300 & echo $! >>"$0"; sleep 300 & echo $! >>"$0"; echo $$ >>"$0"; echo started >&2; wait; wait'

# --- exec: the data path ---

t_shell_metacharacters() {
    local evil='$(touch '"$T_DIR"'/pwn1); `touch '"$T_DIR"'/pwn2`; touch '"$T_DIR"'/pwn3 | & > < * ? ~ \ '"'"' "'
    printf '%s' "$evil" >"$T_DIR/evil.in"
    start_replica -- cat || return
    http POST "$(U /job)" --data-binary "@$T_DIR/evil.in"
    assert_eq "$H_CODE" 200 "cat code"
    assert_eq "$H_BODY" "$evil" "input comes back unchanged"
    assert_exit "$R_PID" 5 0 "cat exit"
    # query parameters reach the environment verbatim
    start_replica -- env || return
    http POST "$(U '/job?q=%24%28touch%20'"$T_DIR"'%2Fpwn4%29%3Brm%20-rf%20x&Foo-bar.baz=1')"
    assert_eq "$H_CODE" 200 "env code"
    assert_contains "$H_BODY" "ONESHOT_PARAM_Q=\$(touch $T_DIR/pwn4);rm -rf x" "param value"
    assert_contains "$H_BODY" "ONESHOT_PARAM_FOO_BAR_BAZ=1" "param name mapping"
    assert_exit "$R_PID" 5 0 "env exit"
    # ONESHOT_EXEC is split like a shell would, but nothing is expanded
    ONESHOT_EXEC="printf '%s|' 'a b' \$HOME \"\$(id)\" '*'" start_replica || return
    http POST "$(U /job)"
    assert_eq "$H_BODY" 'a b|$HOME|$(id)|*|' "ONESHOT_EXEC words"
    assert_exit "$R_PID" 5 0 "printf exit"
    local f
    for f in pwn1 pwn2 pwn3 pwn4; do [ -e "$T_DIR/$f" ] && fail "a shell ran job data ($f exists)"; done
}

t_cat_64m() {
    head -c $((64 * MIB)) /dev/urandom >"$T_DIR/64m"
    start_measured --max-input 64m --max-output 64m -- cat || return
    local t0 t1
    t0=$(date +%s%N)
    curl -s -m 60 -X POST --data-binary "@$T_DIR/64m" -o "$T_DIR/64m.out" -w '%{http_code}' "$(U /job)" >"$T_DIR/code"
    t1=$(date +%s%N)
    assert_eq "$(cat "$T_DIR/code")" 200 "code"
    cmp -s "$T_DIR/64m" "$T_DIR/64m.out" || fail "64 MiB through cat is not byte-identical"
    assert_exit "$R_PID" 20 0 "exit"
    echo "# exec cat 64 MiB: $(((t1 - t0) / 1000000)) ms end to end"
    # the input, the result and one copy for the HTTP answer, and no more
    if [ "$ASAN" = 0 ]; then assert_peak_mib_le $((3 * 64 + 16)) "exec cat 64 MiB"; fi
    grep '"exit_code":0' "$R_LOG" | grep -q '"max_rss_kb":[1-9]' || fail "no child max_rss_kb in the final line"
    grep '"exit_code":0' "$R_LOG" | grep -q '"cpu_ms":[0-9]' || fail "no cpu_ms in the final line"
    rm -f "$T_DIR/64m.out"
}

t_echo_borrows() {
    [ -e "$T_DIR/64m" ] || head -c $((64 * MIB)) /dev/urandom >"$T_DIR/64m"
    start_measured --max-input 64m --max-output 64m --core echo || return
    curl -s -m 60 -X POST --data-binary "@$T_DIR/64m" -o "$T_DIR/64m.out" "$(U /job)"
    cmp -s "$T_DIR/64m" "$T_DIR/64m.out" || fail "echo is not byte-identical"
    assert_exit "$R_PID" 20 0 "exit"
    # the input and the HTTP answer's copy: the core itself copies nothing
    if [ "$ASAN" = 0 ]; then assert_peak_mib_le $((2 * 64 + 16)) "echo 64 MiB"; fi
    rm -f "$T_DIR/64m.out"
}

t_never_reads_stdin() {
    head -c $((8 * MIB)) /dev/zero >"$T_DIR/8m"
    start_replica --max-input 8m -- echo never read || return
    http POST "$(U /job)" --data-binary "@$T_DIR/8m"
    assert_eq "$H_CODE" 200 "code"
    assert_eq "$H_BODY" "never read" "body"
    assert_exit "$R_PID" 5 0 "exit"
    # reads 5 bytes, then leaves
    start_replica --max-input 9m -- head -c 5 || return
    printf 'abcdefgh' | cat - "$T_DIR/8m" >"$T_DIR/8m.b"
    http POST "$(U /job)" --data-binary "@$T_DIR/8m.b"
    assert_eq "$H_BODY" "abcde" "head -c 5"
    assert_exit "$R_PID" 5 0 "head exit"
}

t_writes_before_reading() {
    # 8 MiB out before reading 8 MiB in: a writer that waits for the
    # child to take all its input would deadlock here.
    start_replica --max-input 8m --max-output 16m -- sh -c 'head -c 8388608 /dev/zero; wc -c' || return
    curl -s -m 20 -X POST --data-binary "@$T_DIR/8m" -o "$T_DIR/wbr.out" -w '%{http_code}' "$(U /job)" >"$T_DIR/code"
    assert_eq "$(cat "$T_DIR/code")" 200 "code"
    assert_eq "$(stat -c %s "$T_DIR/wbr.out")" $((8 * MIB + 8)) "result size"
    assert_eq "$(tail -c 8 "$T_DIR/wbr.out")" "8388608" "the child read all its input"
    assert_exit "$R_PID" 5 0 "exit"
}

t_closes_stdout_early() {
    start_replica --max-input 8m -- sh -c 'exec >&-; wc -c >&2; echo "done" >&2' || return
    http POST "$(U /job)" --data-binary "@$T_DIR/8m"
    assert_eq "$H_CODE" 200 "code"
    assert_eq "$H_BODY" "" "empty result"
    assert_exit "$R_PID" 5 0 "exit"
    grep '"stream":"stderr"' "$R_LOG" | grep -q '"msg":"8388608"' || fail "stderr line with the byte count missing"
}

t_writer_1g_cut() {
    start_measured --max-output 8m -- head -c 1G /dev/zero || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 500 "code"
    assert_contains "$H_BODY" "result exceeds --max-output 8388608 bytes" "detail"
    assert_exit "$R_PID" 10 1 "exit"
    if [ "$ASAN" = 0 ]; then assert_peak_mib_le 40 "1 GiB writer cut at 8 MiB"; fi
    # one that ignores SIGTERM and SIGPIPE is killed after the grace
    start_replica --max-output 1m --term-grace 1 -- sh -c 'trap "" TERM PIPE; while :; do head -c 65536 /dev/zero; done' || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 500 "stubborn writer code"
    assert_exit "$R_PID" 10 1 "stubborn writer exit"
    log_has 'SIGKILL to its process group' || fail "stubborn writer was not SIGKILLed"
}

t_progress_fd3() {
    start_replica --termination-log "$T_DIR/term.json" -- sh -c \
        'echo "hello" >&3; echo "progress 400" >&3; echo "progress 40" >&3; while [ ! -e "$0" ]; do sleep 0.02; done; echo "progress 100" >&3; echo ok' \
        "$T_DIR/go" || return
    curl -s -m 20 -X POST -o "$T_DIR/pb" -w '%{http_code}' "$(U /job)" >"$T_DIR/pc" &
    local c=$!
    wait_for 10 sh -c "curl -s $(U /health) | grep -q '\"progress\":40'" || fail "health never showed progress 40"
    touch "$T_DIR/go"
    wait "$c"
    assert_eq "$(cat "$T_DIR/pc")" 200 "code"
    assert_exit "$R_PID" 5 0 "exit"
    assert_contains "$(cat "$T_DIR/term.json")" '"progress":100' "final progress"
}

t_exit_codes() {
    start_replica --termination-log "$T_DIR/t7.json" -- sh -c 'echo partial; echo "boom here" >&2; exit 7' || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 500 "exit 7 code"
    assert_eq "$H_BODY" "partial" "exit 7 body: what the command printed"
    assert_exit "$R_PID" 5 7 "exit 7 passes through"
    assert_contains "$(cat "$T_DIR/t7.json")" '"exit_code":7'
    assert_contains "$(cat "$T_DIR/t7.json")" 'exited with 7: boom here' "error names the code and the last stderr line"
    start_replica --termination-log "$T_DIR/t200.json" -- sh -c 'exit 200' || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 500 "exit 200 code"
    assert_contains "$H_BODY" "exited with 200"
    assert_exit "$R_PID" 5 1 "exit 200 becomes 1"
    start_replica --termination-log "$T_DIR/t9.json" -- sh -c 'kill -9 $$' || return
    http POST "$(U /job)"
    assert_contains "$H_BODY" "killed by signal 9 (SIGKILL)"
    assert_exit "$R_PID" 5 1 "death by signal becomes 1"
    assert_contains "$(cat "$T_DIR/t9.json")" "killed by signal 9 (SIGKILL)" "signal recorded"
    start_replica -- true || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 200 "true"
    assert_exit "$R_PID" 5 0 "true exit"
}

t_env_and_stderr() {
    local long
    long=$(head -c 10000 /dev/zero | tr '\0' x)
    ONESHOT_PARAM_STALE=old ONESHOT_JOB_ID=stale start_replica --deadline 100 --deadline-margin 10 -- sh -c \
        'env | grep ^ONESHOT_ | sort; printf "line one\nline two\n" >&2; printf "%s\n" "$0" >&2; printf "no newline" >&2' \
        "$long" || return
    local now
    now=$(date +%s)
    http POST "$(U '/job?name=World')" -H 'X-Inference-Id: env-job-1'
    assert_eq "$H_CODE" 200 "code"
    assert_contains "$H_BODY" "ONESHOT_JOB_ID=env-job-1"
    assert_contains "$H_BODY" "ONESHOT_ATTEMPT=1"
    assert_contains "$H_BODY" "ONESHOT_PARAM_NAME=World"
    assert_not_contains "$H_BODY" "STALE" "stale job variables removed"
    assert_not_contains "$H_BODY" "=stale" "stale job id replaced"
    local at
    at=$(printf '%s\n' "$H_BODY" | sed -n 's/^ONESHOT_DEADLINE_AT=//p')
    [ -n "$at" ] && [ "$at" -ge $((now + 80)) ] && [ "$at" -le $((now + 95)) ] ||
        fail "ONESHOT_DEADLINE_AT=$at, expected about now+90 ($((now + 90)))"
    assert_exit "$R_PID" 5 0 "exit"
    check_json_lines "$R_LOG"
    local s
    s=$(grep '"stream":"stderr"' "$R_LOG")
    assert_contains "$s" '"job_id":"env-job-1"' "stderr lines carry the job id"
    assert_contains "$s" '"msg":"line one"'
    assert_contains "$s" '"msg":"line two"'
    assert_contains "$s" '"msg":"no newline"' "last line without newline"
    printf '%s\n' "$s" | grep -q '"truncated":true' || fail "long line not marked truncated"
    [ "$(printf '%s\n' "$s" | awk '{ if (length($0) > m) m = length($0) } END { print m }')" -lt 4600 ] ||
        fail "a stderr log line is longer than 4.5 KiB"
}

t_missing_program() {
    local out rc
    touch "$T_DIR/noexec"
    chmod 644 "$T_DIR/noexec"
    mkdir -p "$T_DIR/adir"
    for cmd in "no-such-program-$$" "$T_DIR/nope/prog" "$T_DIR/noexec" "$T_DIR/adir"; do
        out=$("$ONESHOT" --port 0 -- "$cmd" arg 2>&1 >/dev/null)
        rc=$?
        assert_eq "$rc" 78 "exit for $cmd"
        assert_contains "$out" "--exec" "names the setting ($cmd)"
        assert_contains "$out" "$cmd" "names the program ($cmd)"
    done
    out=$(PATH="$T_DIR" "$ONESHOT" --port 0 -- "no-such-program-$$" 2>&1)
    assert_contains "$out" "not found in PATH" "PATH search"
    # found along PATH, as execvp would
    printf '#!/bin/sh\necho from-path\n' >"$T_DIR/adir/mytool"
    chmod 755 "$T_DIR/adir/mytool"
    PATH="$T_DIR/adir:$PATH" start_replica -- mytool || return
    http POST "$(U /job)"
    assert_eq "$H_BODY" "from-path" "PATH lookup"
    assert_exit "$R_PID" 5 0 "exit"
}

# --- exec: cancel ---

t_deadline_grandchildren() {
    : >"$T_DIR/pids.d"
    start_replica --deadline 3 --deadline-margin 2 -- sh -c "$STUBBORN" "$T_DIR/pids.d" || return
    curl -s -m 20 -X POST -o "$T_DIR/db" -w '%{http_code}' "$(U /job)" >"$T_DIR/dc" &
    local c=$!
    wait_for 5 lines_in 3 "$T_DIR/pids.d" || fail "the command did not start its grandchildren"
    track_pids "$T_DIR/pids.d"
    assert_exit "$R_PID" 8 124 "deadline exit"
    wait "$c"
    assert_eq "$(cat "$T_DIR/dc")" 504 "answer"
    log_has 'SIGKILL to its process group' || fail "no SIGKILL after the grace"
    log_has 'aborting it' && fail "the core did not end its group by itself: the watchdog had to abort it"
    # shellcheck disable=SC2046
    wait_for 2 none_alive $(cat "$T_DIR/pids.d") || fail "a process of the job outlived the replica"
}

t_sigterm_past_grace_grandchildren() {
    : >"$T_DIR/pids.t"
    start_replica --term-grace 1 -- sh -c "$STUBBORN" "$T_DIR/pids.t" || return
    curl -s -m 20 -X POST -o /dev/null -w '%{http_code}' "$(U /job)" >"$T_DIR/tc" &
    local c=$!
    wait_for 5 lines_in 3 "$T_DIR/pids.t" || fail "the command did not start its grandchildren"
    track_pids "$T_DIR/pids.t"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 8 143 "SIGTERM past the grace"
    wait "$c"
    assert_eq "$(cat "$T_DIR/tc")" 503 "answer"
    log_has 'aborting it' && fail "the core did not end its group by itself: the watchdog had to abort it"
    # shellcheck disable=SC2046
    wait_for 2 none_alive $(cat "$T_DIR/pids.t") || fail "a process of the job outlived the replica"
}

t_sigint_aborts_group() {
    : >"$T_DIR/pids.i"
    start_replica -- sh -c "$STUBBORN" "$T_DIR/pids.i" || return
    curl -s -m 20 -X POST -o /dev/null "$(U /job)" 2>/dev/null &
    wait_for 5 lines_in 3 "$T_DIR/pids.i" || fail "the command did not start its grandchildren"
    track_pids "$T_DIR/pids.i"
    kill -INT "$R_PID"
    assert_exit "$R_PID" 3 130 "SIGINT"
    # shellcheck disable=SC2046
    wait_for 2 none_alive $(cat "$T_DIR/pids.i") || fail "abort left a process of the job running"
}

t_exit_kills_leftovers() {
    # the command exits at once, leaving a background grandchild behind
    : >"$T_DIR/pids.l"
    start_replica -- sh -c 'sleep 300 >/dev/null 2>&1 & echo $! >>"$0"; echo quick' "$T_DIR/pids.l" || return
    http POST "$(U /job)"
    assert_eq "$H_BODY" "quick" "body"
    track_pids "$T_DIR/pids.l"
    assert_exit "$R_PID" 5 0 "exit"
    # shellcheck disable=SC2046
    wait_for 2 none_alive $(cat "$T_DIR/pids.l") || fail "a leftover of the command outlived the job"
}

# --- plugins ---

t_plugin_success() {
    start_replica --core "plugin:$PLUGINS/wordcount.so" || return
    http POST "$(U /job)" --data-binary $'one two  three\nfour\n' -D "$T_DIR/hdr"
    assert_eq "$H_CODE" 200 "code"
    assert_eq "$H_BODY" '{"bytes":20,"words":4,"lines":2}' "result"
    grep -qi '^content-type: application/json' "$T_DIR/hdr" || fail "content type not set by the plugin"
    assert_exit "$R_PID" 5 0 "exit"
    grep '"plugin":"wordcount"' "$R_LOG" | grep -q 'counted 4 words' || fail "plugin log line missing"
    check_json_lines "$R_LOG"
}

t_plugin_failure() {
    start_replica --core "plugin:$PLUGINS/fail.so" --termination-log "$T_DIR/pf.json" || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 500 "code"
    assert_eq "$H_BODY" '{"detail":"fail plugin failed on purpose"}' "body"
    assert_exit "$R_PID" 5 7 "the plugin's code passes through"
    assert_contains "$(cat "$T_DIR/pf.json")" 'fail plugin: failed on purpose' "error recorded"
    start_replica --core "plugin:$PLUGINS/fail.so" || return
    http POST "$(U '/job?mode=reject')"
    assert_eq "$H_CODE" 422 "reject code"
    assert_contains "$H_BODY" "input rejected on purpose"
    assert_exit "$R_PID" 5 65 "rejected"
    start_replica --core "plugin:$PLUGINS/fail.so" --max-output 1m || return
    http POST "$(U '/job?mode=big')"
    assert_eq "$H_CODE" 500 "too big code"
    assert_contains "$H_BODY" "result exceeds --max-output 1048576 bytes"
    assert_exit "$R_PID" 5 1 "too big exit"
}

t_plugin_cancel() {
    start_replica --core "plugin:$PLUGINS/spin.so" --deadline 3 --deadline-margin 2 || return
    http POST "$(U /job)"
    assert_eq "$H_CODE" 504 "code"
    assert_exit "$R_PID" 5 124 "deadline exit"
    log_has 'saw the cancel flag' || fail "the plugin did not see the cancel flag"
    log_has 'exiting now' && fail "the watchdog had to end the process: cancel not seen in time"
}

t_plugin_bad() {
    local out rc
    out=$("$ONESHOT" --port 0 --core "plugin:$PLUGINS/badabi.so" 2>&1 >/dev/null)
    rc=$?
    assert_eq "$rc" 78 "ABI mismatch exit"
    assert_contains "$out" "ABI version 42" "ABI mismatch message"
    out=$("$ONESHOT" --port 0 --core "plugin:$PLUGINS/nosym.so" 2>&1 >/dev/null)
    assert_eq "$?" 78 "missing symbol exit"
    assert_contains "$out" "exports no oneshot_plugin_table" "missing symbol message"
    out=$("$ONESHOT" --port 0 --core "plugin:$T_DIR/none.so" 2>&1 >/dev/null)
    assert_eq "$?" 78 "missing file exit"
    assert_contains "$out" "does not load" "missing file message"
    # a relative path is a file in the working directory, not a library search
    out=$(cd "$PLUGINS" && "$ONESHOT" --port 0 --core "plugin:badabi.so" 2>&1 >/dev/null)
    assert_contains "$out" "./badabi.so has ABI version" "relative path"
}

t_run "cores: shell metacharacters never reach a shell" t_shell_metacharacters
t_run "cores: 64 MiB through exec cat, identical, bounded memory" t_cat_64m
t_run "cores: echo borrows a 64 MiB input" t_echo_borrows
t_run "cores: a child that never reads stdin" t_never_reads_stdin
t_run "cores: a child that writes 8 MiB before reading" t_writes_before_reading
t_run "cores: a child that closes stdout early" t_closes_stdout_early
t_run "cores: a 1 GiB writer is cut at --max-output" t_writer_1g_cut
t_run "cores: progress lines on fd 3" t_progress_fd3
t_run "cores: exit codes 7, 200, signal 9" t_exit_codes
t_run "cores: environment and stderr lines" t_env_and_stderr
t_run "cores: a missing program -> 78" t_missing_program
t_run "cores: deadline kills the group, grandchildren too" t_deadline_grandchildren
t_run "cores: SIGTERM past the grace kills the group" t_sigterm_past_grace_grandchildren
t_run "cores: SIGINT aborts the group at once" t_sigint_aborts_group
t_run "cores: leftovers of a finished command are killed" t_exit_kills_leftovers
t_run "cores: plugin success" t_plugin_success
t_run "cores: plugin failure, reject, too big" t_plugin_failure
t_run "cores: plugin stops on the cancel flag" t_plugin_cancel
t_run "cores: plugin ABI mismatch, missing symbol, missing file -> 78" t_plugin_bad
