#!/usr/bin/env bash
# http.sh -- the replica over HTTP, driven with curl.
. "$(dirname "$0")/../harness/lib.sh"

U() { echo "http://127.0.0.1:$R_PORT$1"; }

t_health() {
    start_replica --idle-timeout 20 || return
    http GET "$(U /health)"
    assert_eq "$H_CODE" 200 "health code"
    assert_contains "$H_BODY" '"status":"ok"'
    assert_contains "$H_BODY" '"state":"idle"'
    http HEAD "$(U /health)" -I
    assert_eq "$H_CODE" 200 "HEAD /health"
    kill -KILL "$R_PID"
}

t_success() {
    start_replica || return
    http POST "$(U '/job?duration=0')" -H 'Content-Type: application/json' -d '{"note":"hi"}'
    assert_eq "$H_CODE" 200 "job code"
    assert_contains "$H_BODY" '"success":true'
    assert_contains "$H_BODY" '"message":"Job completed successfully"'
    assert_contains "$H_BODY" '"executionTime":0'
    echo "$H_BODY" | grep -Eq '"timestamp":"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"' ||
        fail "timestamp format: $H_BODY"
    assert_exit "$R_PID" 5 0 "exit code"
    check_json_lines "$R_LOG"
    check_sanitizers "$R_LOG"
}

t_default_duration_and_progress() {
    start_replica || return
    http POST "$(U '/job?duration=2')"
    assert_eq "$H_CODE" 200
    assert_exit "$R_PID" 5 0 "exit code"
    assert_contains "$(cat "$R_LOG")" 'Progress: 1/2 seconds elapsed'
    assert_contains "$(cat "$R_LOG")" 'Progress: 2/2 seconds elapsed'
    check_sanitizers "$R_LOG"
}

t_failure() {
    local v
    for v in true 1; do
        start_replica || return
        http POST "$(U "/job?duration=0&failed=$v")"
        assert_eq "$H_CODE" 500 "failed=$v code"
        assert_eq "$H_BODY" '{"detail":"Job failed as requested via failed parameter"}'
        assert_exit "$R_PID" 5 1 "failed=$v exit"
        check_sanitizers "$R_LOG"
    done
    start_replica || return
    http POST "$(U "/job?duration=0&failed=false")"
    assert_eq "$H_CODE" 200 "failed=false code"
    assert_exit "$R_PID" 5 0 "failed=false exit"
}

t_second_job_503() {
    start_replica || return
    curl -s -m 20 -X POST -o "$T_DIR/first" -w '%{http_code}' "$(U '/job?duration=2')" >"$T_DIR/first.code" &
    local c=$!
    wait_for 5 sh -c "curl -s $(U /health) | grep -q '\"state\":\"running\"'" || fail "never running"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 503 "second job"
    assert_contains "$H_BODY" '"detail"'
    http GET "$(U /health)"
    assert_contains "$H_BODY" '"state":"running"'
    wait "$c"
    assert_eq "$(cat "$T_DIR/first.code")" 200 "first job"
    assert_exit "$R_PID" 5 0 "exit"
}

t_404_405_stay_up() {
    start_replica --idle-timeout 30 || return
    http GET "$(U /nope)"
    assert_eq "$H_CODE" 404 "unknown path"
    assert_contains "$H_BODY" '"detail"'
    http GET "$(U /job)"
    assert_eq "$H_CODE" 405 "GET /job"
    http POST "$(U /health)"
    assert_eq "$H_CODE" 405 "POST /health"
    http PUT "$(U /job)" -d x
    assert_eq "$H_CODE" 405 "PUT /job"
    kill -0 "$R_PID" 2>/dev/null || fail "replica ended"
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job after 404/405"
    assert_exit "$R_PID" 5 0 "exit"
}

# Each bad input: its code, a JSON detail, exit 65.
bad_input() { # expected-code path curl-args...
    local want=$1 path=$2
    shift 2
    start_replica --max-input 1024 || return
    http POST "$(U "$path")" "$@"
    assert_eq "$H_CODE" "$want" "code for $*"
    assert_contains "$H_BODY" '{"detail":' "body for $*"
    assert_exit "$R_PID" 5 65 "exit for $path $*"
}

t_bad_inputs() {
    bad_input 422 '/job?duration=abc'
    bad_input 422 '/job?duration=-1'
    bad_input 422 '/job?duration=1.5'
    bad_input 422 '/job?duration='
    bad_input 400 '/job?duration=0' -H 'Content-Type: application/json' -d '{"a":'
    bad_input 422 '/job?duration=0' -H 'Content-Type: application/json' -d '[1,2]'
    bad_input 422 '/job?duration=0' -H 'Content-Type: application/json' -d '"str"'
    bad_input 415 '/job?duration=0' -H 'Content-Type: text/plain' -d 'hello'
    bad_input 413 '/job?duration=0' -H 'Content-Type: application/json' --data-binary "@$T_DIR/big"
    bad_input 413 '/job?duration=0' -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "@$T_DIR/big"
    bad_input 400 '/job?duration=0' -H 'X-Inference-Id: bad id!'
}

t_inference_id() {
    start_replica || return
    http POST "$(U '/job?duration=0')" -H 'X-Inference-Id: infer-77'
    assert_eq "$H_CODE" 200
    assert_exit "$R_PID" 5 0 "exit"
    assert_contains "$(cat "$R_LOG")" '"job_id":"infer-77"'
}

t_auth_token() {
    start_replica --auth-token s3cret-T0ken || return
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 401 "no token"
    http POST "$(U '/job?duration=0')" -H 'Authorization: Bearer wrong'
    assert_eq "$H_CODE" 401 "wrong token"
    http POST "$(U '/job?duration=0')" -H 'Authorization: Bearer s3cret-T0ke'
    assert_eq "$H_CODE" 401 "prefix of the token"
    kill -0 "$R_PID" 2>/dev/null || fail "replica ended after 401"
    http GET "$(U /health)"
    assert_eq "$H_CODE" 200 "health needs no token"
    http POST "$(U '/job?duration=0')" -H 'Authorization: Bearer s3cret-T0ken'
    assert_eq "$H_CODE" 200 "right token"
    assert_exit "$R_PID" 5 0 "exit"
    assert_not_contains "$(cat "$R_LOG")" "s3cret-T0ken" "log"
}

t_deadline() {
    start_replica --deadline 3 --deadline-margin 1 || return
    local t0=$SECONDS
    http POST "$(U '/job?duration=30')"
    assert_eq "$H_CODE" 504 "deadline code"
    assert_eq "$H_BODY" '{"detail":"deadline exceeded"}'
    assert_exit "$R_PID" 5 124 "deadline exit"
    [ $((SECONDS - t0)) -le 5 ] || fail "took $((SECONDS - t0)) s"
    check_sanitizers "$R_LOG"
}

t_deadline_idle() {
    start_replica --deadline 2 --deadline-margin 1 || return
    assert_exit "$R_PID" 5 75 "no job by the deadline"
}

t_sigterm_within_grace() {
    start_replica --term-grace 5 || return
    curl -s -m 20 -X POST -o "$T_DIR/b" -w '%{http_code}' "$(U '/job?duration=2')" >"$T_DIR/c" &
    local c=$!
    wait_for 5 grep -q 'Running job' "$R_LOG" || fail "job never started"
    kill -TERM "$R_PID"
    wait "$c"
    assert_eq "$(cat "$T_DIR/c")" 200 "job finished within the grace"
    assert_exit "$R_PID" 5 0 "exit"
}

t_sigterm_beyond_grace() {
    start_replica --term-grace 1 || return
    curl -s -m 20 -X POST -o "$T_DIR/b" -w '%{http_code}' "$(U '/job?duration=30')" >"$T_DIR/c" &
    local c=$!
    wait_for 5 grep -q 'Running job' "$R_LOG" || fail "job never started"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 6 143 "exit"
    wait "$c"
    assert_eq "$(cat "$T_DIR/c")" 503 "answer"
    assert_contains "$(cat "$T_DIR/b")" '"detail"'
    check_sanitizers "$R_LOG"
}

t_sigterm_idle_and_twice() {
    start_replica || return
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 3 143 "idle SIGTERM"
    start_replica --term-grace 30 || return
    curl -s -m 20 -X POST "$(U '/job?duration=30')" >/dev/null 2>&1 &
    wait_for 5 grep -q 'Running job' "$R_LOG" || fail "job never started"
    kill -TERM "$R_PID"
    wait_for 3 grep -q 'may finish within' "$R_LOG"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 3 143 "second SIGTERM"
    start_replica || return
    curl -s -m 20 -X POST "$(U '/job?duration=30')" >/dev/null 2>&1 &
    wait_for 5 grep -q 'Running job' "$R_LOG" || fail "job never started"
    kill -INT "$R_PID"
    assert_exit "$R_PID" 3 130 "SIGINT"
}

t_idle_timeout() {
    start_replica --idle-timeout 1 || return
    assert_exit "$R_PID" 4 75 "idle exit"
    check_json_lines "$R_LOG"
}

t_bad_configuration() {
    local out rc
    for args in "--port 70000" "--source sqs" "--core nope" "--bogus" "--deadline 5 --deadline-margin 9" \
        "--log-level loud" "--max-input 0"; do
        # shellcheck disable=SC2086
        out=$("$ONESHOT" $args 2>&1 >/dev/null)
        rc=$?
        assert_eq "$rc" 78 "exit for $args"
        assert_eq "$(printf '%s\n' "$out" | wc -l)" 1 "one line for $args"
        assert_contains "$out" "${args%% *}" "names the setting ($args)"
    done
    out=$(ONESHOT_PORT=abc "$ONESHOT" 2>&1)
    assert_eq "$?" 78 "env exit"
    assert_contains "$out" ONESHOT_PORT
    # a port in use is a configuration error too
    start_replica --idle-timeout 10 || return
    "$ONESHOT" --bind 127.0.0.1 --port "$R_PORT" 2>"$T_DIR/e"
    assert_eq "$?" 78 "port in use"
    kill -KILL "$R_PID"
}

t_help_version_print_config() {
    "$ONESHOT" --help | grep -q -- '--deadline-margin' || fail "--help"
    "$ONESHOT" --version | grep -q '^oneshot ' || fail "--version"
    local j
    j=$(ONESHOT_AUTH_TOKEN=tok9 "$ONESHOT" --print-config --redis redis://:pw9@h:1/0)
    assert_eq "$?" 0 "--print-config exit"
    printf '%s' "$j" | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "not JSON"
    assert_not_contains "$j" tok9 "token masked"
    assert_not_contains "$j" pw9 "password masked"
}

t_large_response_fully_sent() {
    head -c 10485760 /dev/urandom >"$T_DIR/10m"
    start_replica --core echo || return
    curl -s -m 30 -X POST --data-binary "@$T_DIR/10m" -H 'Content-Type: application/octet-stream' \
        -o "$T_DIR/10m.out" "$(U /job)"
    cmp -s "$T_DIR/10m" "$T_DIR/10m.out" || fail "echoed body differs"
    assert_exit "$R_PID" 5 0 "exit"
}

# The answer goes out however the threads interleave. The seam build's
# http-handoff pause (300 ms) holds the HTTP thread inside the request's
# handler, after it has handed the job over: the job runs and is answered
# meanwhile, and its wake-up of that thread comes while an earlier one (a
# SIGUSR1 sent here while the replica was stopped) is still pending. The
# thread used to take the pending wake-up after its run, so it could take
# both and sleep on with the answer unsent until the caller gave up, and
# the job was handed over before its connection was held, so the answer's
# resume could come before the suspend, which cancels it. Under load one
# POST in 60-150 lost its answer so (cores.sh's plugin test in CI; with
# two CPU burners, 2 of 210 empty POSTs to the fail plugin; 0 of 500
# after). This interleaving, made every time, passed before the fix too:
# it guards the order, the load test found the loss.
t_answer_when_a_wakeup_comes_during_the_run() {
    local seams=$ROOT/$BUILD/seams/oneshot resp i
    [ -x "$seams" ] || { fail "$seams is not built (make seams)"; return; }
    local ONESHOT=$seams
    export ONESHOT_SEAM=http-handoff
    start_replica --core echo
    local started=$?
    unset ONESHOT_SEAM
    [ "$started" = 0 ] || return
    exec 7<>"/dev/tcp/127.0.0.1/$R_PORT"
    printf 'POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n' >&7
    wait_for 5 sh -c "curl -s '$(U /health)' | grep -q '\"state\":\"running\"'" || fail "the headers were never read"
    kill -STOP "$R_PID"
    for ((i = 0; i < 250; i++)); do
        [ "$(awk '{print $3}' "/proc/$R_PID/stat" 2>/dev/null)" = T ] && break
        sleep 0.02
    done
    printf 'hello' >&7
    kill -USR1 "$R_PID"
    kill -CONT "$R_PID"
    resp=$(timeout 5 head -c 12 <&7)
    exec 7>&-
    assert_eq "$resp" "HTTP/1.1 200" "the answer within 5 s"
    assert_exit "$R_PID" 10 0 "exit"
    grep -q 'seam: paused at http-handoff' "$R_LOG" || fail "the seam never paused: $(tail -3 "$R_LOG")"
}

t_stalled_client() {
    start_replica --http-timeout 1 --idle-timeout 15 || return
    # headers promise a body that never comes: the slot must be freed
    exec 7<>"/dev/tcp/127.0.0.1/$R_PORT"
    printf 'POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc' >&7
    wait_for 5 grep -q 'abandoned by the client' "$R_LOG" || fail "stalled upload was never dropped"
    exec 7>&-
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job after the stalled client"
    assert_exit "$R_PID" 5 0 "exit"
}

t_client_gone_still_exits() {
    start_replica || return
    curl -s -m 1 -X POST "$(U '/job?duration=2')" >/dev/null 2>&1
    assert_exit "$R_PID" 8 0 "exit with the job's code though the caller left"
}

t_termination_log() {
    start_replica --termination-log "$T_DIR/term.json" || return
    http POST "$(U '/job?duration=0&failed=1')"
    assert_exit "$R_PID" 5 1 exit
    local t
    t=$(cat "$T_DIR/term.json")
    assert_contains "$t" '"state":"failed"'
    assert_contains "$t" '"exit_code":1'
    assert_eq "$(stat -c %a "$T_DIR/term.json")" 640 "mode"
    start_replica --deadline 3 --deadline-margin 1 --termination-log "$T_DIR/term2.json" || return
    http POST "$(U '/job?duration=30')"
    assert_exit "$R_PID" 5 124 exit
    assert_contains "$(cat "$T_DIR/term2.json")" '"state":"timed_out"'
}

t_text_logs() {
    start_replica --log-format text --log-level debug --idle-timeout 1 || return
    assert_exit "$R_PID" 4 75
    grep -q '^[0-9-]*T[0-9:.]*Z debug' "$R_LOG" || fail "no debug text line"
    head -c 1 "$R_LOG" | grep -q '{' && fail "text format printed JSON"
}

head -c 2048 /dev/zero | tr '\0' 'a' | sed 's/^/{"a":"/; s/$/"}/' >"$T_DIR/big"

t_run "http: GET /health" t_health
t_run "http: success, response, exit 0" t_success
t_run "http: default duration and Progress lines" t_default_duration_and_progress
t_run "http: failed=true|1 -> 500, exit 1" t_failure
t_run "http: second job -> 503, first unaffected" t_second_job_503
t_run "http: 404 and 405 keep the replica" t_404_405_stay_up
t_run "http: bad input -> 4xx JSON, exit 65" t_bad_inputs
t_run "http: X-Inference-Id is the job id" t_inference_id
t_run "http: bearer token" t_auth_token
t_run "http: deadline -> 504, exit 124" t_deadline
t_run "http: deadline with no job -> 75" t_deadline_idle
t_run "http: SIGTERM within the grace" t_sigterm_within_grace
t_run "http: SIGTERM beyond the grace -> 143" t_sigterm_beyond_grace
t_run "http: SIGTERM idle, twice, SIGINT" t_sigterm_idle_and_twice
t_run "http: idle timeout -> 75" t_idle_timeout
t_run "http: bad configuration -> 78, one line" t_bad_configuration
t_run "http: --help, --version, --print-config" t_help_version_print_config
t_run "http: 10 MiB response fully sent before exit" t_large_response_fully_sent
t_run "http: answered though a wake-up comes while the HTTP thread runs" t_answer_when_a_wakeup_comes_during_the_run
t_run "http: a stalled client cannot hold the replica" t_stalled_client
t_run "http: caller gone, replica still exits" t_client_gone_still_exits
t_run "http: termination log" t_termination_log
t_run "http: text logs and debug level" t_text_logs
