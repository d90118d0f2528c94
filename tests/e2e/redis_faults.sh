#!/usr/bin/env bash
# redis_faults.sh -- the Redis job protocol (consumer/README.md) under the
# faults a real redis-server answers: keys of the wrong type, out of memory,
# a reply lost on the wire and the command re-sent, the same job delivered
# twice, a frozen or vanished server. Each test is a defect found by trying
# them; each asserts that nothing enqueued is lost, run twice to a second
# final record, or recorded falsely.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

job_field() { rcli HGET "oneshot:job:$1" "$2"; }
job_state_is() { [ "$(job_field "$1" state)" = "$2" ]; }
held_by() { rcli --scan --pattern 'jobs:processing:*' | head -1 | sed 's/^jobs:processing://'; }

# The fault proxy (tests/harness/redis_proxy.py) in front of the server.
PX_DIR=$T_DIR/proxy
PX_SOCK=$PX_DIR/redis.sock
PX_URL=unix://$PX_SOCK
proxy_start() {
    mkdir -p "$PX_DIR/ctl"
    rm -f "$PX_DIR"/ctl/*
    python3 "$ROOT/tests/harness/redis_proxy.py" "$PX_SOCK" "$RS_SOCK" "$PX_DIR/ctl" 2>"$PX_DIR/log" &
    T_PIDS+=($!)
    PX_PID=$!
    wait_for 5 test -e "$PX_DIR/ctl/ready" || fail "proxy did not start: $(cat "$PX_DIR/log")"
}
proxy_stop() { kill "$PX_PID" 2>/dev/null; wait "$PX_PID" 2>/dev/null; }

# --- a dead-letter key of the wrong type ---

t_deadletter_wrongtype_list() {
    rcli FLUSHALL >/dev/null
    rcli SET jobs.dead not-a-list >/dev/null
    rcli LPUSH jobs '{"id":"dl1","input":"payload-1"}' >/dev/null
    run_replica 20 --source redis-list --core exec --max-attempts 1 --lease 3 --idle-timeout 3 -- sh -c 'exit 3'
    assert_eq "$RC" 69 "exit code: the dead letter could not be pushed"
    assert_contains "$(cat "$LOG")" "jobs.dead is not a list"
    local w
    w=$(held_by)
    [ -n "$w" ] || { fail "the job is nowhere: not in a processing list"; return; }
    assert_eq "$(rcli SISMEMBER jobs:quarantine "$w")" 1 "quarantined replica"
    assert_eq "$(rcli SISMEMBER jobs:workers "$w")" 0 "out of the sweep's set"
    assert_eq "$(job_field dl1 state)" dead
    # Other replicas leave it alone (it is not theirs to move yet)...
    run_replica 20 --source redis-list --core echo --lease 3 --idle-timeout 2
    assert_eq "$RC" 75 "a replica with nothing to do"
    assert_eq "$(rcli LLEN "jobs:processing:$w")" 1 "still held"
    # ...until the operator fixes the key and hands it back, as the log says.
    rcli DEL jobs.dead >/dev/null
    rcli SMOVE jobs:quarantine jobs:workers "$w" >/dev/null
    run_replica 20 --source redis-list --core echo --lease 3 --idle-timeout 2
    assert_eq "$RC" 75 "the sweeper's own exit"
    assert_eq "$(rcli LLEN jobs.dead)" 1 "dead-lettered once fixed"
    assert_contains "$(rcli LINDEX jobs.dead 0)" '"input":"payload-1"'
    assert_eq "$(rcli EXISTS "jobs:processing:$w")" 0 "no copy left behind"
    assert_eq "$(rcli LLEN jobs)" 0 "not re-queued"
}

t_deadletter_wrongtype_stream() {
    rcli FLUSHALL >/dev/null
    rcli SET jobs.dead not-a-stream >/dev/null
    rcli XADD jobs '*' input payload-2 id sdl1 >/dev/null
    run_replica 20 --source redis-stream --core exec --max-attempts 1 --lease 3 --idle-timeout 3 -- sh -c 'exit 3'
    assert_eq "$RC" 69 "exit code: the dead letter could not be pushed"
    assert_contains "$(cat "$LOG")" "jobs.dead is not a stream"
    local p
    p=$(rcli XPENDING jobs oneshot - + 10 quarantine | head -1)
    [ -n "$p" ] || fail "the entry is not pending with the quarantine consumer"
    run_replica 20 --source redis-stream --core echo --lease 3 --idle-timeout 2
    assert_eq "$RC" 75 "a replica leaves the quarantined entry alone"
    assert_eq "$(rcli XPENDING jobs oneshot - + 10 quarantine | head -1)" "$p" "still quarantined"
    assert_eq "$(job_field sdl1 state)" dead
}

# --- out of memory while the result is written ---

t_oom_result() {
    rcli FLUSHALL >/dev/null
    rcli CONFIG SET maxmemory-policy noeviction >/dev/null
    rcli LPUSH jobs '{"id":"big","input":"x"}' >/dev/null
    # The core itself pushes Redis over its limit, once, before it answers.
    local core="[ -e $T_DIR/oom-once ] || { touch $T_DIR/oom-once; redis-cli -s $RS_SOCK CONFIG SET maxmemory 1 >/dev/null; }; head -c 300000 /dev/zero | tr '\\\\0' y"
    rm -f "$T_DIR/oom-once"
    run_replica 20 --source redis-list --core exec --lease 3 --idle-timeout 3 -- sh -c "$core"
    rcli CONFIG SET maxmemory 0 >/dev/null
    assert_eq "$RC" 69 "exit code: the result could not be written"
    assert_contains "$(cat "$LOG")" "OOM"
    assert_eq "$(job_field big state)" running "no final record without its result"
    assert_eq "$(rcli EXISTS oneshot:result:big)" 0 "no result"
    assert_eq "$(rcli LLEN jobs:processing:"$(held_by)")" 1 "still held"
    run_replica 30 --source redis-list --core exec --lease 3 --idle-timeout 4 -- sh -c "$core"
    assert_eq "$RC" 0 "the retry after the sweep"
    assert_eq "$(job_field big state)" succeeded
    assert_eq "$(job_field big attempt)" 2
    oneshot_cli wait big --timeout 5 >"$T_DIR/out" 2>/dev/null
    assert_eq "$?" 0 "wait: exit code"
    assert_eq "$(wc -c <"$T_DIR/out")" 300000 "wait: the result's bytes"
}

# --- a reply lost on the wire, the sweep re-sent ---

t_sweep_resend_after_lost_reply() {
    rcli FLUSHALL >/dev/null
    proxy_start || return
    rcli LPUSH jobs '{"id":"x1","input":"a"}' >/dev/null
    start_replica --redis "$RS_URL" --source redis-list --lease 3 --core exec -- sh -c 'sleep 30' || return
    wait_for 5 job_state_is x1 running || fail "x1 not running"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    rcli LPUSH jobs '{"id":"y1","input":"b"}' >/dev/null
    wait_for 5 sh -c "[ -z \"\$(redis-cli -s '$RS_SOCK' --scan --pattern 'oneshot:lease:*')\" ]" || fail "lease kept"
    # The sweep's script goes out in its own call: lose its reply once.
    printf "%s" "'RPOP', KEYS[1]" >"$PX_DIR/ctl/drop"
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL 20 "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$PX_URL" --source redis-list --core echo \
        --lease 5 --idle-timeout 3 2>"$LOG" >/dev/null || RC=$?
    test -e "$PX_DIR/ctl/dropped" || fail "the fault was not injected"
    assert_eq "$RC" 0 "the replica that swept through the lost reply"
    assert_eq "$(job_field y1 state)" succeeded "the job claimed in the same round trip"
    assert_eq "$(rcli LLEN jobs)" 1 "x1 re-queued exactly once"
    run_replica 20 --source redis-list --core echo --idle-timeout 2
    assert_eq "$RC" 0 "x1's retry"
    assert_eq "$(job_field x1 state)" succeeded
    assert_eq "$(job_field x1 attempt)" 2
    assert_eq "$(rcli LLEN jobs)" 0 "nothing queued twice"
    proxy_stop
}

# --- a status key holding a string ---

t_status_key_wrongtype() {
    local src=$1
    rcli FLUSHALL >/dev/null
    rcli SET oneshot:job:p1 garbage >/dev/null
    if [ "$src" = redis-list ]; then
        rcli LPUSH jobs '{"id":"p1","input":"poison"}' '{"id":"g1","input":"good"}' >/dev/null
    else
        rcli XADD jobs '*' input poison id p1 >/dev/null
        rcli XADD jobs '*' input good id g1 >/dev/null
    fi
    run_replica 20 --source "$src" --core echo --idle-timeout 3
    assert_eq "$RC" 69 "the poisoned job's replica"
    assert_contains "$(cat "$LOG")" "holds a string"
    assert_eq "$(rcli GET oneshot:job:p1)" garbage "the broken key is not written"
    if [ "$src" = redis-list ]; then
        assert_contains "$(rcli LINDEX jobs.dead 0)" '"id":"p1"' "dead-lettered"
        assert_contains "$(rcli LINDEX jobs.dead 0)" 'holds a string' "with the reason"
    else
        assert_contains "$(rcli XRANGE jobs.dead - +)" 'holds a string' "dead-lettered with the reason"
    fi
    run_replica 20 --source "$src" --core echo --idle-timeout 3
    assert_eq "$RC" 0 "the next job is not dragged along"
    assert_eq "$(job_field g1 state)" succeeded
    run_replica 20 --source "$src" --core echo --idle-timeout 1
    assert_eq "$RC" 75 "nothing left: the poisoned job is not retried for ever"
}
t_status_key_wrongtype_list() { t_status_key_wrongtype redis-list; }
t_status_key_wrongtype_stream() { t_status_key_wrongtype redis-stream; }

# --- the same job delivered twice, run at once ---

t_duplicate_concurrent() {
    local src=$1
    rcli FLUSHALL >/dev/null
    if [ "$src" = redis-list ]; then
        rcli LPUSH jobs '{"id":"dup","input":"ok"}' '{"id":"dup","input":"fail"}' >/dev/null
    else
        rcli XADD jobs '*' input ok id dup >/dev/null
        rcli XADD jobs '*' input fail id dup >/dev/null
    fi
    local core='read x; sleep 2; [ "$x" = ok ]'
    start_replica --redis "$RS_URL" --source "$src" --lease 3 --core exec -- sh -c "$core" || return
    local a=$R_PID alog=$R_LOG
    wait_for 5 job_state_is dup running || fail "first copy not running"
    run_replica 20 --source "$src" --lease 3 --core exec --idle-timeout 3 -- sh -c "$core"
    assert_eq "$RC" 0 "the duplicate's replica"
    assert_contains "$(cat "$LOG")" "duplicate"
    assert_not_contains "$(cat "$LOG")" "running job" "the duplicate ran"
    assert_exit "$a" 20 0 "the first copy's replica" "$alog"
    assert_eq "$(job_field dup state)" succeeded
    assert_eq "$(job_field dup fence)" 1 "one owner"
    run_replica 20 --source "$src" --lease 3 --core exec --idle-timeout 2 -- sh -c "$core"
    assert_eq "$RC" 75 "nothing left to run a third time"
    assert_eq "$(job_field dup state)" succeeded
}
t_duplicate_concurrent_list() { t_duplicate_concurrent redis-list; }
t_duplicate_concurrent_stream() { t_duplicate_concurrent redis-stream; }

# --- a server that stops answering, or goes away ---

# The core stops (or kills) Redis as it ends, so the final write meets the
# fault; the replica must give up within the retry budget of that write.
t_budget_end_to_end() {
    local how=$1
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"fz","input":"x"}' >/dev/null
    local core="date +%s%N >$T_DIR/fault-at; kill -$how $RS_PID"
    ONESHOT_REDIS_RETRY_MS=3000 run_replica 40 --source redis-list --core exec --lease 30 --idle-timeout 3 -- \
        sh -c "$core"
    local end now
    now=$(date +%s%N)
    end=$(( (now - $(cat "$T_DIR/fault-at")) / 1000000 ))
    echo "# $how: exit $RC ${end} ms after the fault (budget 3000 ms)"
    assert_eq "$RC" 69 "exit code"
    [ "$end" -le 4500 ] || fail "gave up ${end} ms after the fault, budget 3000 ms"
    if [ "$how" = STOP ]; then kill -CONT "$RS_PID"; else redis_restart; fi
}
t_budget_frozen() { t_budget_end_to_end STOP; }
t_budget_dropped() { t_budget_end_to_end KILL; }

# Mid-job: the heartbeat cannot renew the claim for the whole budget (the
# heartbeat's own store connection opens during the outage): the job stops.
t_budget_heartbeat() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"hb","input":"x"}' >/dev/null
    ONESHOT_REDIS_RETRY_MS=3000 start_replica --redis "$RS_URL" --source redis-list --core exec --lease 3 \
        --term-grace 1 --idle-timeout 3 -- sh -c 'sleep 60' || return
    wait_for 5 job_state_is hb running || fail "not running"
    kill -STOP "$RS_PID"
    local t0
    t0=$(date +%s%N)
    assert_exit "$R_PID" 20 69 "exit code"
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "# frozen mid-job: exit ${ms} ms after the freeze (heartbeat every 1000 ms, budget 3000 ms, grace 1000 ms)"
    [ "$ms" -le 7000 ] || fail "exit ${ms} ms after the freeze"
    kill -CONT "$RS_PID"
}

# A frozen Redis while the replica connects: the HTTP server and the
# signals are served meanwhile (the watchdog's thread, which runs both,
# starts before the source connects). /health answers; a SIGTERM is taken
# at once (logged while Redis is still frozen), and the claim already on
# the wire when it came runs its job within --term-grace, once.
t_frozen_connect() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"fc","input":"x"}' >/dev/null
    kill -STOP "$RS_PID"
    ONESHOT_REDIS_RETRY_MS=5000 start_replica --redis "$RS_URL" --source redis-list --core echo --idle-timeout 5 || {
        kill -CONT "$RS_PID"
        return
    }
    local code
    code=$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$R_PORT/health")
    assert_eq "$code" 200 "/health while Redis is frozen during the connect"
    kill -TERM "$R_PID"
    wait_for 2 grep -q 'SIGTERM: no job running, stopping' "$R_LOG" || fail "SIGTERM not taken during the connect"
    kill -CONT "$RS_PID"
    assert_exit "$R_PID" 10 0 "exit code (the claim on the wire runs its job)"
    assert_eq "$(job_field fc state)" succeeded "record"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_eq "$(grep -c '"running job' "$R_LOG")" 1 "runs"
}

t_run "frozen Redis during the connect: /health answers, SIGTERM taken, the job runs once" t_frozen_connect
t_run "dead-letter key of another type (list): job kept and quarantined" t_deadletter_wrongtype_list
t_run "dead-letter key of another type (stream): entry kept and quarantined" t_deadletter_wrongtype_stream
t_run "OOM on the result: no final record, retried, wait gets the result" t_oom_result
t_run "sweep re-sent after a lost reply: nothing lost, nothing queued twice" t_sweep_resend_after_lost_reply
t_run "status key holding a string (list): dead-lettered, the next job runs" t_status_key_wrongtype_list
t_run "status key holding a string (stream): dead-lettered, the next job runs" t_status_key_wrongtype_stream
t_run "same id delivered twice at once (list): one run, one final record" t_duplicate_concurrent_list
t_run "same id delivered twice at once (stream): one run, one final record" t_duplicate_concurrent_stream
t_run "frozen Redis at the final write: 69 within the budget" t_budget_frozen
t_run "Redis gone at the final write: 69 within the budget" t_budget_dropped
t_run "frozen Redis mid-job: the heartbeat gives up within the budget" t_budget_heartbeat
