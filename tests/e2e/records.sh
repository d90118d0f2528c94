#!/usr/bin/env bash
# records.sh -- what callers and operators can rely on in the Redis store:
# the record's fields, the final states (consumer/README.md "Job states"), `oneshot
# submit`'s queued record, `wait` and `status` on an id never seen, what
# `cancel` says, an HTTP job's record under SIGTERM and a hard exit, the
# warn line for an unknown envelope or stream field, the X-Inference-Id
# echo. Against a real redis-server, driven with redis-cli and curl.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

job_field() { rcli HGET "oneshot:job:$1" "$2"; }

# No field of the record may hold a placeholder for "unknown".
no_placeholders() { # id
    local v
    v=$(rcli HGETALL "oneshot:job:$1" | paste - - | awk -F'\t' '$2 == "-1" || $2 == "" {print $1}')
    [ -z "$v" ] || fail "placeholder values in fields: $v"
}

t_exec_success_fields() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"x1","input":"abc"}' >/dev/null
    run_replica 20 --source redis-list --store redis --idle-timeout 5 --core exec -- sh -c 'cat; printf "\001\002"'
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field x1 state)" succeeded "state"
    assert_eq "$(job_field x1 progress)" 100 "progress of a successful exec job"
    assert_eq "$(job_field x1 content_type)" application/octet-stream "content_type"
    assert_eq "$(job_field x1 result_bytes)" 5 "result_bytes"
    assert_eq "$(rcli GET oneshot:result:x1 | od -An -tx1 | tr -d ' \n')" 61626301020a "result bytes (redis-cli adds the newline)"
    no_placeholders x1
    # The echo core's result carries the envelope's JSON: its type says so.
    rcli LPUSH jobs '{"id":"x2","input":{"a":1}}' >/dev/null
    run_replica 20 --source redis-list --store redis --idle-timeout 5 --core demo
    assert_eq "$(job_field x2 content_type)" application/json "demo core's content_type"
    no_placeholders x2
}

# The final record's heartbeat_at is never before one a heartbeat wrote.
t_heartbeat_never_back() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"hb1","input":"x"}' >/dev/null
    local log=$T_DIR/hb.log max="" v
    "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 \
        --core exec -- sleep 3.5 2>"$log" &
    local pid=$!
    T_PIDS+=("$pid")
    local i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 500 ]; do
        v=$(job_field hb1 heartbeat_at)
        if [ "$(job_field hb1 state)" = running ] && [ -n "$v" ] && [[ "$v" > "$max" ]]; then max=$v; fi
        sleep 0.02
        i=$((i + 1))
    done
    assert_exit "$pid" 10 0 "exit code" "$log"
    assert_eq "$(job_field hb1 state)" succeeded "state"
    [ -n "$max" ] || fail "no heartbeat seen"
    v=$(job_field hb1 heartbeat_at)
    [[ "$v" < "$max" ]] && fail "final heartbeat_at $v is before a heartbeat's $max"
    [[ "$v" > "$(job_field hb1 finished_at)" ]] && fail "heartbeat_at $v after finished_at"
    return 0
}

# event_is_record ID STATE: the last event for ID in $T_DIR/events says
# STATE and holds exactly the record's fields and values (the replica
# writes begin's and final's JSON, the scripts only when they change it).
event_is_record() {
    local ev f n=0
    ev=$(grep "^{\"id\":\"$1\"," "$T_DIR/events" | tail -1)
    assert_eq "$(jq -r .state <<<"$ev")" "$2" "state in the last event of $1"
    while IFS= read -r f && IFS= read -r v; do
        assert_eq "$(jq -r --arg f "$f" '.[$f]' <<<"$ev")" "$v" "event field $f of $1"
        n=$((n + 1))
    done < <(rcli HGETALL "oneshot:job:$1")
    assert_eq "$(jq 'length' <<<"$ev")" "$n" "fields in the event of $1 (the record has $n)"
}

t_events_are_records() {
    rcli FLUSHALL >/dev/null
    subscribe_events
    # The common path: running, then the final record, both written by the client.
    rcli LPUSH jobs '{"id":"ev1","input":"a \"quoted\" / slashed\u00e9 line\n"}' >/dev/null
    run_replica 20 --source redis-list --idle-timeout 5 --max-attempts 1 --core exec -- sh -c 'cat >/dev/null; echo "failed: \"x\"" >&2; exit 3'
    wait_for 5 grep -q '^{"id":"ev1",.*"state":"dead"' "$T_DIR/events" || fail "no final event for ev1"
    grep -q '^{"id":"ev1","state":"running",.*"fence":1}$' "$T_DIR/events" || fail "running event: $(cat "$T_DIR/events")"
    event_is_record ev1 dead
    # begin finds a cancel mark: the script writes (and publishes) the cancelled record.
    oneshot_cli cancel ev2 >/dev/null 2>&1
    rcli LPUSH jobs '{"id":"ev2","input":"x"}' >/dev/null
    run_replica 20 --source redis-list --idle-timeout 5 --core echo
    wait_for 5 grep -q '^{"id":"ev2",' "$T_DIR/events" || fail "no event for ev2"
    event_is_record ev2 cancelled
    # final keeps a later heartbeat_at already in the record: the event says so too.
    rcli LPUSH jobs '{"id":"ev3","input":"x"}' >/dev/null
    "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" --source redis-list --idle-timeout 5 \
        --core exec -- sleep 1 2>"$T_DIR/ev3.log" &
    local pid=$!
    T_PIDS+=("$pid")
    wait_for 5 job_state_is ev3 running || fail "ev3 never running"
    rcli HSET oneshot:job:ev3 heartbeat_at 2099-01-01T00:00:00.000Z >/dev/null
    assert_exit "$pid" 10 0 "exit code of ev3" "$T_DIR/ev3.log"
    wait_for 5 grep -q '^{"id":"ev3",.*"state":"succeeded"' "$T_DIR/events" || fail "no final event for ev3"
    assert_eq "$(job_field ev3 heartbeat_at)" 2099-01-01T00:00:00.000Z "heartbeat_at kept"
    event_is_record ev3 succeeded
}

# EVAL calls since the last CONFIG RESETSTAT.
evals() { rcli INFO commandstats | sed -n 's/^cmdstat_eval:calls=\([0-9]*\),.*/\1/p'; }

# redis-stream with the Redis store: the claim script begins the entry it
# takes (consumer/README.md "Steps"): a cycle is three scripts (claim and
# begin, final, settle), the running record and its event are BEGIN's, and
# each of begin's answers comes from the claim; an entry the script leaves
# to the replica (an attempt field written "02") is begun by BEGIN.
t_stream_claim_begins() {
    rcli FLUSHALL >/dev/null
    rcli XGROUP CREATE jobs oneshot 0 MKSTREAM >/dev/null
    subscribe_events
    local S=(--source redis-stream --idle-timeout 5)
    rcli XADD jobs '*' input a id cb1 attempt 2 >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" "${S[@]}" --core exec -- sh -c 'cat; sleep 1' \
        2>"$T_DIR/cb1.log" &
    local pid=$!
    T_PIDS+=("$pid")
    wait_for 5 job_state_is cb1 running || fail "cb1 never running"
    wait_for 5 grep -q '^{"id":"cb1","state":"running",' "$T_DIR/events" || fail "no running event for cb1"
    event_is_record cb1 running
    assert_eq "$(job_field cb1 attempt)" 2 "attempt (the field's)"
    assert_eq "$(job_field cb1 fence)" 1 "fence"
    [ -n "$(job_field cb1 started_at)" ] || fail "no started_at"
    assert_exit "$pid" 10 0 "exit code of cb1" "$T_DIR/cb1.log"
    assert_eq "$(evals)" 3 "scripts in a cycle (claim and begin, final, settle)"
    assert_eq "$(grep -c '^{"id":"cb1","state":"running",' "$T_DIR/events")" 1 "running events of cb1"
    event_is_record cb1 succeeded
    # A copy of the finished job: the claim's begin says so, acked unrun.
    rcli XADD jobs '*' input a id cb1 >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 0 "exit code of the copy"
    assert_contains "$(cat "$LOG")" "already succeeded"
    assert_eq "$(evals)" 2 "scripts for the copy (claim and begin, settle)"
    assert_eq "$(job_field cb1 fence)" 1 "fence after the copy"
    # A cancel mark set before any replica met the job.
    oneshot_cli cancel cb2 >/dev/null 2>&1
    rcli XADD jobs '*' input x id cb2 >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 0 "exit code of cb2"
    assert_eq "$(job_field cb2 state)" cancelled "cb2"
    assert_eq "$(job_field cb2 attempt)" 1 "cb2's attempt"
    wait_for 5 grep -q '^{"id":"cb2",' "$T_DIR/events" || fail "no event for cb2"
    event_is_record cb2 cancelled
    # Left to the replica's own BEGIN: one script more, the same record.
    rcli XADD jobs '*' input y id cb3 attempt 02 >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 0 "exit code of cb3"
    assert_eq "$(evals)" 4 "scripts for cb3 (claim, begin, final, settle)"
    assert_eq "$(job_field cb3 attempt)" 2 "cb3's attempt"
    assert_eq "$(rcli GET oneshot:result:cb3)" y "cb3's result"
    event_is_record cb3 succeeded
}

t_submit_queued() {
    rcli FLUSHALL >/dev/null
    local id
    id=$(oneshot_cli submit --id q1 '"hello"')
    assert_eq "$id" q1 "printed id"
    assert_eq "$(job_field q1 state)" queued "state after submit"
    assert_eq "$(job_field q1 source)" redis-list "source"
    assert_eq "$(job_field q1 queue)" jobs "queue"
    local ttl
    ttl=$(rcli TTL oneshot:job:q1)
    [ "$ttl" -gt 86000 ] || fail "queued record TTL $ttl"
    oneshot_cli status q1 >"$T_DIR/out" 2>&1
    assert_contains "$(cat "$T_DIR/out")" '"state":"queued"' "status of a queued job"
    # The stream's submit records the entry id it got.
    id=$(oneshot_cli submit --source redis-stream --queue sjobs '"s"')
    assert_eq "$(job_field "$id" state)" queued "stream submit: state"
    assert_eq "$(job_field "$id" source)" redis-stream "stream submit: source"
    # The replica moves it on.
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field q1 state)" succeeded "state after the run"
    # An id whose record is final is not queued again: a replica would
    # acknowledge it without running it.
    oneshot_cli submit --id q1 '"again"' >"$T_DIR/out" 2>&1
    assert_eq "$?" 1 "submit of a finished id"
    assert_contains "$(cat "$T_DIR/out")" "already succeeded" "submit's message"
    assert_eq "$(rcli LLEN jobs)" 0 "nothing pushed"
}

t_wait_status_unknown() {
    rcli FLUSHALL >/dev/null
    local t0=$SECONDS rc=0
    oneshot_cli wait ghost --timeout 30 >"$T_DIR/out" 2>&1 || rc=$?
    assert_eq "$rc" 66 "wait on an id never seen"
    [ $((SECONDS - t0)) -le 5 ] || fail "wait took $((SECONDS - t0)) s on an unknown id"
    assert_contains "$(cat "$T_DIR/out")" "no record of job ghost" "wait's message"
    rc=0
    oneshot_cli status ghost >"$T_DIR/out" 2>&1 || rc=$?
    assert_eq "$rc" 66 "status on an id never seen"
}

t_wait_final_codes() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"f1","input":"x"}' >/dev/null
    run_replica 20 --source redis-list --idle-timeout 5 --max-attempts 1 --core exec -- sh -c 'exit 7'
    assert_eq "$(job_field f1 state)" dead "state"
    local rc=0
    oneshot_cli wait f1 --timeout 5 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 7 "wait on a dead job: its exit code"
    # A job that was cancelled before it ran: 0.
    oneshot_cli submit --id c0 '"x"' >/dev/null
    oneshot_cli cancel c0 >/dev/null 2>&1
    rc=0
    oneshot_cli wait c0 --timeout 5 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 0 "wait on a cancelled job"
}

t_cancel_unknown() {
    rcli FLUSHALL >/dev/null
    local rc=0
    oneshot_cli cancel ghost >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
    assert_eq "$rc" 0 "exit code"
    assert_eq "$(cat "$T_DIR/out")" '{"id":"ghost","cancel":true,"state":"unclaimed"}' "stdout"
    assert_contains "$(cat "$T_DIR/err")" "no record of job ghost" "stderr"
    assert_contains "$(cat "$T_DIR/err")" "cancel mark" "stderr"
    assert_not_contains "$(cat "$T_DIR/out")" '"state":"cancelled"' "stdout"
    assert_eq "$(rcli EXISTS oneshot:job:ghost)" 0 "no record invented"
    assert_eq "$(rcli EXISTS oneshot:cancel:ghost)" 1 "the mark"
    # A producer enqueues it after all: acked unrun, recorded with who met it.
    rcli LPUSH jobs '{"id":"ghost","input":"x"}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field ghost state)" cancelled "state"
    assert_eq "$(job_field ghost attempt)" 1 "attempt"
    assert_eq "$(job_field ghost source)" redis-list "source"
    assert_eq "$(job_field ghost queue)" jobs "queue"
    [ -n "$(job_field ghost worker)" ] || fail "no worker"
    assert_eq "$(rcli EXISTS oneshot:result:ghost)" 0 "no result"
}

t_cancel_queued_keeps_fields() {
    rcli FLUSHALL >/dev/null
    oneshot_cli submit --id cq '"x"' >/dev/null
    oneshot_cli cancel cq >"$T_DIR/out" 2>/dev/null
    assert_eq "$(cat "$T_DIR/out")" '{"id":"cq","cancel":true,"state":"cancelled"}' "stdout"
    assert_eq "$(job_field cq state)" cancelled "state"
    assert_eq "$(job_field cq source)" redis-list "source kept"
    assert_eq "$(job_field cq queue)" jobs "queue kept"
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field cq state)" cancelled "state after a replica met it"
    assert_eq "$(job_field cq attempt)" 1 "attempt filled in"
    [ -n "$(job_field cq worker)" ] || fail "worker not filled in"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
}

# A record claims a result exactly when the result key holds this run's:
# a cancel of a job waiting for its retry, or a final state without a
# result, leaves no earlier attempt's output (or its fields) behind.
t_no_stale_result() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"sr1","input":"x"}' >/dev/null
    local prog='if [ "$ONESHOT_ATTEMPT" = 1 ]; then echo attempt-one; exit 3; fi; sleep 30'
    run_replica 20 --source redis-list --idle-timeout 5 --max-attempts 3 --core exec -- sh -c "$prog"
    assert_eq "$(job_field sr1 state)" retrying "state after attempt 1"
    assert_eq "$(rcli EXISTS oneshot:result:sr1)" 1 "attempt 1's output kept while retrying"
    oneshot_cli cancel sr1 >/dev/null 2>&1
    assert_eq "$(job_field sr1 state)" cancelled "state"
    assert_eq "$(rcli EXISTS oneshot:result:sr1)" 0 "attempt 1's result after the cancel"
    local f
    for f in result_bytes content_type duration_ms cpu_ms max_rss_kb started_at heartbeat_at; do
        assert_eq "$(rcli HEXISTS oneshot:job:sr1 "$f")" 0 "cancelled record's $f"
    done
    assert_eq "$(job_field sr1 attempt)" 1 "attempt kept"
    # Cancelled while running attempt 2 (at its heartbeat): final, no result.
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"sr2","input":"x"}' >/dev/null
    run_replica 20 --source redis-list --idle-timeout 5 --max-attempts 3 --core exec -- sh -c "$prog"
    assert_eq "$(rcli EXISTS oneshot:result:sr2)" 1 "attempt 1's output kept while retrying"
    "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 \
        --core exec -- sh -c "$prog" 2>"$T_DIR/r2.log" &
    local pid=$!
    T_PIDS+=("$pid")
    wait_for 10 sh -c "[ \"\$(redis-cli -s '$RS_SOCK' HGET oneshot:job:sr2 state)\" = running ]" || fail "not running"
    oneshot_cli cancel sr2 >/dev/null 2>&1
    assert_exit "$pid" 10 0 "exit code" "$T_DIR/r2.log"
    assert_eq "$(job_field sr2 state)" cancelled "state"
    assert_eq "$(rcli EXISTS oneshot:result:sr2)" 0 "attempt 1's result after a final state without one"
    assert_eq "$(rcli HEXISTS oneshot:job:sr2 result_bytes)" 0 "result_bytes"
}

# An HTTP job has no queue to go back to: SIGTERM ends it final.
t_http_sigterm_final() {
    rcli FLUSHALL >/dev/null
    start_replica --redis "$RS_URL" --store redis --term-grace 1 --core exec -- sleep 30 || return
    curl -s -m 20 -o /dev/null -H 'X-Inference-Id: h1' --data x "http://127.0.0.1:$R_PORT/job" &
    T_PIDS+=("$!")
    wait_for 10 sh -c "[ \"\$(redis-cli -s '$RS_SOCK' HGET oneshot:job:h1 state)\" = running ]" || fail "not running"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 10 143 "exit code"
    assert_eq "$(job_field h1 state)" failed "state"
    assert_eq "$(job_field h1 exit_code)" 143 "record's exit_code"
    assert_contains "$(job_field h1 error)" "SIGTERM" "error"
    local rc=0
    oneshot_cli wait h1 --timeout 5 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 143 "wait's exit code"
    [ "$(rcli TTL oneshot:job:h1)" -gt 0 ] || fail "final record without TTL"
}

# SIGKILL: nothing can write the HTTP job's record, and nothing
# re-delivers it; wait says so once heartbeat_at is three leases old
# (made old here by hand, rather than by waiting nine seconds).
t_http_sigkill_wait_gives_up() {
    rcli FLUSHALL >/dev/null
    start_replica --redis "$RS_URL" --store redis --core exec -- sleep 30 || return
    curl -s -m 20 -o /dev/null -H 'X-Inference-Id: k1' --data x "http://127.0.0.1:$R_PORT/job" &
    T_PIDS+=("$!")
    wait_for 10 sh -c "[ \"\$(redis-cli -s '$RS_SOCK' HGET oneshot:job:k1 state)\" = running ]" || fail "not running"
    kill -KILL "$R_PID"
    local rc=0
    oneshot_cli wait k1 --timeout 2 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 75 "a fresh heartbeat: wait keeps waiting"
    rcli HSET oneshot:job:k1 heartbeat_at 2026-01-01T00:00:00.000Z >/dev/null
    rc=0
    oneshot_cli wait k1 --timeout 20 >/dev/null 2>"$T_DIR/err" || rc=$?
    assert_eq "$rc" 69 "wait on a dead HTTP replica's job"
    assert_contains "$(cat "$T_DIR/err")" "never re-delivered" "message"
}

# A core that does not stop: the watchdog's hard exit still writes the
# HTTP job's final record.
t_http_hard_exit_final() {
    rcli FLUSHALL >/dev/null
    start_replica --redis "$RS_URL" --store redis --deadline 4 --deadline-margin 2 --term-grace 1 \
        --core "plugin:$ROOT/$BUILD/plugins/stuck.so" || return
    curl -s -m 20 -o /dev/null -H 'X-Inference-Id: h2' --data x "http://127.0.0.1:$R_PORT/job" &
    T_PIDS+=("$!")
    assert_exit "$R_PID" 15 124 "exit code"
    assert_eq "$(job_field h2 state)" timed_out "state"
    assert_eq "$(job_field h2 exit_code)" 124 "record's exit_code"
    [ "$(rcli TTL oneshot:job:h2)" -gt 0 ] || fail "final record without TTL"
}

t_unknown_fields_warned() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"u1","input":"x","deadline":5,"priority":1}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(grep -c 'unknown envelope field' "$LOG")" 1 "warn lines"
    grep 'unknown envelope field' "$LOG" | grep -q '"level":"warn"' || fail "not at warn: $(grep unknown "$LOG")"
    assert_contains "$(grep 'unknown envelope field' "$LOG")" 'deadline' "names deadline"
    assert_contains "$(grep 'unknown envelope field' "$LOG")" 'priority' "names priority"
    # Stream entries: the same for their fields.
    rcli XADD sjobs '*' input x id u2 dedline_s 3 >/dev/null
    run_replica 20 --source redis-stream --queue sjobs --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_contains "$(grep 'unknown stream field' "$LOG")" 'dedline_s' "names dedline_s"
    # A known envelope says nothing.
    rcli LPUSH jobs '{"id":"u3","input":"x","deadline_s":5}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$(grep -c 'unknown' "$LOG")" 0 "no warning for a known envelope"
}

t_http_reject_warns_and_echoes() {
    rcli FLUSHALL >/dev/null
    start_replica --core demo --log-format json || return
    curl -s -m 10 -D "$T_DIR/h" -o "$T_DIR/b" -H 'X-Inference-Id: r1' -H 'Content-Type: text/plain' \
        --data 'not json' "http://127.0.0.1:$R_PORT/job"
    assert_exit "$R_PID" 10 65 "exit code"
    grep -qi '^HTTP/1.1 4' "$T_DIR/h" || fail "not a 4xx: $(head -1 "$T_DIR/h")"
    grep -qi '^X-Inference-Id: r1' "$T_DIR/h" || fail "X-Inference-Id not echoed: $(cat "$T_DIR/h")"
    grep '"level":"warn"' "$R_LOG" | grep -q 'rejected' || fail "no warn line: $(cat "$R_LOG")"
    # A success echoes it too.
    start_replica --core echo || return
    curl -s -m 10 -D "$T_DIR/h" -o /dev/null -H 'X-Inference-Id: r2' --data x "http://127.0.0.1:$R_PORT/job"
    assert_exit "$R_PID" 10 0 "exit code"
    grep -qi '^X-Inference-Id: r2' "$T_DIR/h" || fail "X-Inference-Id not echoed on 200"
}

# A 409 ends an HTTP replica too: the job is done already.
t_http_409_warns() {
    rcli FLUSHALL >/dev/null
    rcli HSET oneshot:job:d1 id d1 state failed exit_code 3 >/dev/null
    start_replica --redis "$RS_URL" --store redis --core echo --log-format json || return
    http POST "http://127.0.0.1:$R_PORT/job" -H 'X-Inference-Id: d1' --data x
    assert_exit "$R_PID" 10 0 "exit code"
    assert_eq "$H_CODE" 409 "status"
    grep '"level":"warn"' "$R_LOG" | grep -q "already failed" || fail "no warn line: $(cat "$R_LOG")"
}

t_states_documented() {
    local help states s
    help=$("$ONESHOT" status --help)
    assert_contains "$help" "Job states" "status --help"
    states=$(printf '%s\n' "$help" | awk '/^Job states/{on=1; next} on && /^  [a-z_]+ /{print $1}')
    [ "$(echo "$states" | wc -w)" -ge 10 ] || fail "states in --help: $states"
    for s in $states; do
        grep -q "^| \`$s\` |" "$ROOT/consumer/README.md" || fail "state $s not in consumer/README.md's table"
    done
    for s in queued running retrying interrupted succeeded failed rejected timed_out dead cancelled; do
        assert_contains "$states" "$s" "--help's states"
    done
}

t_run "record fields of a successful exec job" t_exec_success_fields
t_run "heartbeat_at never goes back in time" t_heartbeat_never_back
t_run "events hold the record as written, the scripts' own changes included" t_events_are_records
t_run "redis-stream: the claim script begins the entry it takes, each of begin's answers" t_stream_claim_begins
t_run "submit writes a queued record, refuses a finished id" t_submit_queued
t_run "wait and status on an id never seen exit 66 at once" t_wait_status_unknown
t_run "wait returns on every final state with its code" t_wait_final_codes
t_run "cancel of an unknown id sets a mark and says so" t_cancel_unknown
t_run "cancel of a queued job keeps its fields" t_cancel_queued_keeps_fields
t_run "no record claims an earlier attempt's result" t_no_stale_result
t_run "HTTP job's record is final after SIGTERM" t_http_sigterm_final
t_run "HTTP job's record is final after a hard exit" t_http_hard_exit_final
t_run "wait gives up on an HTTP job whose replica was SIGKILLed" t_http_sigkill_wait_gives_up
t_run "unknown envelope and stream fields are warned once" t_unknown_fields_warned
t_run "HTTP 4xx warns with the reason and echoes X-Inference-Id" t_http_reject_warns_and_echoes
t_run "HTTP 409 (job done already) warns" t_http_409_warns
t_run "every job state is in status --help and consumer/README.md" t_states_documented
exit 0
