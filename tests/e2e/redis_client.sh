#!/usr/bin/env bash
# redis_client.sh -- submit/status/wait/cancel end to end, the Redis store
# behind the HTTP source, URLs and credentials, Redis unreachable.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# Run a subcommand; OUT, ERR, CODE.
cli() {
    CODE=0
    timeout -s KILL 30 "$ONESHOT" "$@" >"$T_DIR/out" 2>"$T_DIR/err" || CODE=$?
    OUT=$(cat "$T_DIR/out")
    ERR=$(cat "$T_DIR/err")
    check_sanitizers "$T_DIR/err"
}

t_submit_status_wait_list() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --id c1 --deadline 60 '{"duration":0}'
    assert_eq "$CODE" 0 "submit: exit code"
    assert_eq "$OUT" c1 "submit prints the id"
    assert_eq "$(rcli LINDEX jobs 0)" '{"id":"c1","input":{"duration":0},"deadline_s":60}' "envelope"
    cli status c1 --redis "$RS_URL"
    assert_eq "$CODE" 0 "status before any replica"
    assert_contains "$OUT" '"state":"queued"' "status before any replica"
    cli submit --redis "$RS_URL" 'just text'
    echo "$OUT" | grep -Eq "$UUID_RE" || fail "generated id '$OUT'"
    local id2=$OUT
    assert_eq "$(rcli LINDEX jobs 0)" "{\"id\":\"$id2\",\"input\":\"just text\"}" "string input"
    printf '{"a":[1,2]}' | "$ONESHOT" submit --redis "$RS_URL" --id c2 - >/dev/null || fail "submit from stdin"
    assert_eq "$(rcli LINDEX jobs 0)" '{"id":"c2","input":{"a":[1,2]}}' "stdin input"
    start_replica --redis "$RS_URL" --source redis-list --idle-timeout 5 || return
    cli wait c1 --redis "$RS_URL" --timeout 10
    assert_eq "$CODE" 0 "wait: exit code"
    assert_contains "$OUT" '"success":true' "wait prints the result"
    assert_contains "$ERR" '"state":"succeeded"' "wait prints the record on stderr"
    assert_exit "$R_PID" 5 0 "replica"
    cli status c1 --redis "$RS_URL"
    assert_eq "$CODE" 0 "status: exit code"
    python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["state"]=="succeeded" and o["attempt"]==1 and o["exit_code"]==0 and isinstance(o["duration_ms"],int), o' "$OUT" ||
        fail "status JSON: $OUT"
}

# What submit enqueues is a valid envelope that gives the replica the
# submitted bytes back: JSON with trailing bytes is text, not JSON; bytes a
# JSON string cannot carry go as "input_base64".
t_submit_any_bytes() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --id t1 '{"a":1}xyz'
    assert_eq "$(rcli LINDEX jobs 0)" '{"id":"t1","input":"{\"a\":1}xyz"}' "JSON with trailing bytes"
    local f=$T_DIR/submit.bin
    printf '\377\000\376' >"$f"
    "$ONESHOT" submit --redis "$RS_URL" --id t2 - <"$f" >/dev/null || fail "submit binary stdin"
    assert_eq "$(rcli LINDEX jobs 0)" '{"id":"t2","input_base64":"/wD+"}' "binary input"
    run_sub() { timeout -s KILL 20 "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" --source redis-list --core echo --idle-timeout 5 2>/dev/null; }
    run_sub || fail "replica for t1"
    run_sub || fail "replica for t2"
    assert_eq "$(rcli GET oneshot:result:t1)" '{"a":1}xyz' "t1 result"
    assert_eq "$(rcli GET oneshot:result:t2 | head -c 3 | od -An -tx1 | tr -d ' \n')" ff00fe "t2 result bytes"
}

t_submit_stream() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --source redis-stream --queue work 'stream text'
    assert_eq "$CODE" 0 "submit: exit code"
    echo "$OUT" | grep -Eq '^[0-9]+-[0-9]+$' || fail "entry id '$OUT'"
    local e=$OUT
    assert_eq "$(rcli XRANGE work - + | tr '\n' ' ')" "$e input stream text " "fields"
    cli submit --redis "$RS_URL" --source redis-stream --queue work --id cs2 --deadline 9 '{"x":1}'
    assert_eq "$OUT" cs2
    assert_contains "$(rcli XREVRANGE work + - COUNT 1 | tr '\n' ' ')" 'input {"x":1} id cs2 deadline_s 9' "fields"
    run_replica 20 --source redis-stream --queue work --core echo --idle-timeout 5
    assert_eq "$RC" 0
    cli wait "$e" --redis "$RS_URL" --timeout 5
    assert_eq "$CODE" 0 "wait: exit code"
    assert_eq "$OUT" 'stream text' "result"
}

t_wait_failed_and_retrying() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --id wf '{"duration":0,"failed":true}'
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1
    cli wait wf --redis "$RS_URL" --timeout 1
    assert_eq "$CODE" 75 "retrying is not final: wait times out"
    assert_contains "$ERR" 'retrying'
    "$ONESHOT" wait wf --redis "$RS_URL" --timeout 20 >"$T_DIR/wout" 2>"$T_DIR/werr" &
    local w=$!
    T_PIDS+=("$w")
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1
    assert_exit "$w" 5 1 "wait: the job's exit code" "$T_DIR/werr"
    assert_contains "$(cat "$T_DIR/wout")" 'Job failed as requested' "result"
    assert_contains "$(cat "$T_DIR/werr")" '"state":"dead"'
}

t_wait_timeout_unknown() {
    local t0=$SECONDS
    cli wait nosuchjob --redis "$RS_URL" --timeout 1
    assert_eq "$CODE" 66 "exit code: no record"
    cli submit --redis "$RS_URL" --id waiting1 x
    cli wait waiting1 --redis "$RS_URL" --timeout 1
    assert_eq "$CODE" 75 "exit code: a queued job past --timeout"
    assert_contains "$ERR" "is queued after 1s" "message"
    [ $((SECONDS - t0)) -le 4 ] || fail "took $((SECONDS - t0)) s"
    cli status 'bad id!' --redis "$RS_URL"
    assert_eq "$CODE" 78 "invalid id"
}

t_cancel_queued() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --id cq '{"duration":30}'
    cli cancel cq --redis "$RS_URL"
    assert_eq "$CODE" 0 "cancel: exit code"
    assert_contains "$OUT" '"cancel":true'
    local t0=$SECONDS
    cli wait cq --redis "$RS_URL" --timeout 10
    assert_eq "$CODE" 0 "wait on a cancelled job"
    [ $((SECONDS - t0)) -le 2 ] || fail "wait took $((SECONDS - t0)) s"
    assert_eq "$(job_field cq state)" cancelled
    local ttl
    ttl=$(rcli TTL oneshot:cancel:cq)
    [ "$ttl" -gt 86000 ] || fail "cancel mark TTL $ttl"
    run_replica 20 --source redis-list --idle-timeout 5
    assert_eq "$RC" 0 "replica: exit code"
    assert_contains "$(cat "$LOG")" 'cancelled before it ran'
    assert_not_contains "$(cat "$LOG")" 'running job'
    assert_eq "$(rcli LLEN jobs)" 0 "acked"
    assert_eq "$(job_field cq state)" cancelled
}

t_cancel_running() {
    rcli FLUSHALL >/dev/null
    cli submit --redis "$RS_URL" --id cr '{"duration":30}'
    start_replica --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is cr running || fail "not running"
    "$ONESHOT" wait cr --redis "$RS_URL" --timeout 20 >"$T_DIR/wout" 2>"$T_DIR/werr" &
    local w=$!
    T_PIDS+=("$w")
    cli cancel cr --redis "$RS_URL"
    assert_eq "$CODE" 0 "cancel: exit code"
    assert_contains "$OUT" '"state":"running"'
    assert_exit "$R_PID" 5 0 "replica stops at its next heartbeat, exit 0"
    assert_eq "$(job_field cr state)" cancelled
    assert_exit "$w" 5 0 "wait" "$T_DIR/werr"
    assert_contains "$(cat "$T_DIR/werr")" '"state":"cancelled"'
    assert_eq "$(rcli LLEN jobs)" 0 "acked"
    # cancelling a finished job does nothing
    cli cancel cr --redis "$RS_URL"
    rcli LPUSH jobs '{"id":"done1","input":{"duration":0}}' >/dev/null
    run_replica 20 --source redis-list --idle-timeout 5
    cli cancel done1 --redis "$RS_URL"
    assert_eq "$CODE" 1 "cancel after success"
    assert_eq "$(rcli EXISTS oneshot:cancel:done1)" 0 "no mark on a finished job"
    assert_eq "$(job_field done1 state)" succeeded
}

t_http_source_redis_store() {
    rcli FLUSHALL >/dev/null
    start_replica --redis "$RS_URL" --store redis --idle-timeout 10 || return
    http POST "http://127.0.0.1:$R_PORT/job?duration=0" -H 'X-Inference-Id: h1'
    assert_eq "$H_CODE" 200 "HTTP code"
    assert_exit "$R_PID" 5 0 "exit code"
    assert_eq "$(job_field h1 state)" succeeded
    assert_eq "$(job_field h1 source)" http
    assert_contains "$(rcli GET oneshot:result:h1)" '"success":true'
    cli wait h1 --redis "$RS_URL" --timeout 2
    assert_eq "$CODE" 0
    # already succeeded: a second request with the same id is not run again
    start_replica --redis "$RS_URL" --store redis --idle-timeout 10 || return
    http POST "http://127.0.0.1:$R_PORT/job?duration=0" -H 'X-Inference-Id: h1'
    assert_exit "$R_PID" 5 0 "second: exit code"
    assert_contains "$(cat "$R_LOG")" 'already succeeded'
}

t_credentials_and_urls() {
    local port dir=$T_DIR/auth
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$dir/r.sock" --dir "$dir" --save '' \
        --requirepass 's3cr3t-pw' --logfile "$dir/log" >/dev/null 2>&1 &
    local pid=$!
    T_PIDS+=("$pid")
    wait_for 10 sh -c "[ \"\$(redis-cli -p $port -a s3cr3t-pw --no-auth-warning PING)\" = PONG ]" || {
        fail "auth redis did not start"
        return
    }
    local A=(redis-cli -p "$port" -a s3cr3t-pw --no-auth-warning)
    "${A[@]}" ACL SETUSER alice on '>wonder%land' '~*' '&*' '+@all' >/dev/null
    local url="redis://:s3cr3t-pw@127.0.0.1:$port/3"
    cli submit --redis "$url" --id a1 '{"duration":0}'
    assert_eq "$CODE" 0 "submit with a password"
    assert_eq "$("${A[@]}" -n 3 LLEN jobs)" 1 "in database 3"
    local log=$T_DIR/auth.log
    timeout -s KILL 20 "$ONESHOT" --port 0 --redis "$url" --source redis-list --idle-timeout 5 2>"$log" >/dev/null
    assert_eq "$?" 0 "replica with a password"
    assert_eq "$("${A[@]}" -n 3 HGET oneshot:job:a1 state)" succeeded "record in database 3"
    # an ACL user (percent-encoded password) over TCP, and the unix socket with ?db=&password=
    cli submit --redis "redis://alice:wonder%25land@127.0.0.1:$port/0" --id a2 x
    assert_eq "$CODE" 0 "ACL user"
    assert_eq "$("${A[@]}" -n 0 LLEN jobs)" 1 "in database 0"
    cli status a1 --redis "unix://$dir/r.sock?db=3&password=s3cr3t-pw"
    assert_eq "$CODE" 0 "unix socket URL"
    # refused credentials: exit 69 at once, password nowhere
    local t0=$SECONDS
    timeout -s KILL 20 "$ONESHOT" --port 0 --redis "redis://:wrong-pw@127.0.0.1:$port/0" --source redis-list \
        --idle-timeout 5 2>>"$log" >/dev/null
    assert_eq "$?" 69 "wrong password: exit code"
    [ $((SECONDS - t0)) -le 3 ] || fail "a refused password is not retried"
    assert_contains "$(cat "$log")" 'AUTH refused'
    cli status a1 --redis "redis://alice:nope@127.0.0.1:$port/3"
    assert_eq "$CODE" 69 "wrong ACL password"
    assert_not_contains "$(cat "$log") $ERR" 's3cr3t-pw' "password in logs"
    assert_not_contains "$(cat "$log") $ERR" 'wrong-pw' "password in logs"
    cli --print-config --redis "$url"
    assert_not_contains "$OUT" 's3cr3t-pw' "--print-config"
    assert_contains "$OUT" "redis://:***@127.0.0.1:$port/3"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
}

t_unreachable() {
    local nope="unix://$T_DIR/nope.sock"
    local t0=$SECONDS
    run_replica 30 --redis "$nope" --source redis-list --idle-timeout 30
    assert_eq "$RC" 69 "default budget: exit code"
    local took=$((SECONDS - t0))
    [ "$took" -ge 9 ] && [ "$took" -le 14 ] || fail "gave up after $took s, not ~10 s"
    assert_contains "$(cat "$LOG")" 'gave up after 10000 ms'
    t0=$SECONDS
    ONESHOT_REDIS_RETRY_MS=300 run_replica 30 --redis "$nope" --source redis-stream --idle-timeout 30
    assert_eq "$RC" 69 "short budget: exit code"
    [ $((SECONDS - t0)) -le 3 ] || fail "short budget took $((SECONDS - t0)) s"
    ONESHOT_REDIS_RETRY_MS=0 cli submit --redis "$nope" x
    assert_eq "$CODE" 69 "submit"
    ONESHOT_REDIS_RETRY_MS=0 cli wait x --redis "$nope"
    assert_eq "$CODE" 69 "wait"
}

t_redis_restart_while_waiting() {
    rcli FLUSHALL >/dev/null
    start_replica --redis "$RS_URL" --source redis-list --core echo --idle-timeout 20 || return
    wait_for 5 sh -c "redis-cli -s '$RS_SOCK' SMEMBERS jobs:workers | grep -q ." || fail "not registered"
    redis_restart || return
    rcli LPUSH jobs '{"id":"rw1","input":"after the restart"}' >/dev/null
    assert_exit "$R_PID" 15 0 "exit code"
    assert_eq "$(rcli GET oneshot:result:rw1)" 'after the restart'
}

t_run "client: submit, status, wait (list)" t_submit_status_wait_list
t_run "client: submit enqueues any bytes as a valid envelope" t_submit_any_bytes
t_run "client: submit and wait (stream)" t_submit_stream
t_run "client: wait exits with the job's code, waits through retries" t_wait_failed_and_retrying
t_run "client: wait --timeout, bad id" t_wait_timeout_unknown
t_run "client: cancel a queued job" t_cancel_queued
t_run "client: cancel a running job" t_cancel_running
t_run "store: redis store behind the HTTP source" t_http_source_redis_store
t_run "redis: passwords, ACL users, databases, unix URL, masking" t_credentials_and_urls
t_run "redis: unreachable at start -> 69 within the bound" t_unreachable
t_run "redis: restart while a replica waits -> reconnects" t_redis_restart_while_waiting
