#!/usr/bin/env bash
# redis_list.sh -- the redis-list source and the Redis store against a real
# redis-server, driven with redis-cli as an operator would.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

# Nothing but the queue's own keys may be left once a job is settled.
no_claim_keys() {
    local k
    k=$(rcli --scan --pattern 'jobs:processing:*'; rcli --scan --pattern 'oneshot:lease:*'; rcli --scan --pattern 'jobs:workers')
    [ -z "$k" ] || fail "claim keys left behind: $k"
}

t_envelope_result_status_events() {
    rcli FLUSHALL >/dev/null
    subscribe_events
    rcli LPUSH jobs '{"id":"e1","input":{"k":[1,2]},"deadline_s":30}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(rcli GET oneshot:result:e1)" '{"k":[1,2]}' "result"
    assert_eq "$(job_field e1 state)" succeeded "state"
    assert_eq "$(job_field e1 attempt)" 1 "attempt"
    assert_eq "$(job_field e1 source)" redis-list "source"
    assert_eq "$(job_field e1 exit_code)" 0 "exit_code"
    local ttl
    ttl=$(rcli TTL oneshot:job:e1)
    [ "$ttl" -gt 86000 ] && [ "$ttl" -le 86400 ] || fail "status TTL $ttl"
    ttl=$(rcli TTL oneshot:result:e1)
    [ "$ttl" -gt 86000 ] && [ "$ttl" -le 86400 ] || fail "result TTL $ttl"
    assert_eq "$(rcli LLEN jobs)" 0 "queue length"
    no_claim_keys
    wait_for 5 grep -q '"state":"succeeded"' "$T_DIR/events" || fail "no succeeded event"
    kill "$EVENTS_PID" 2>/dev/null
    wait "$EVENTS_PID" 2>/dev/null
    grep -q '"id":"e1","state":"running"' "$T_DIR/events" || fail "no running event: $(cat "$T_DIR/events")"
    # the worker in the record is the replica id in the log
    local w
    w=$(job_field e1 worker)
    grep -q "\"replica\":\"$w\"" "$LOG" || fail "worker $w not in the log"
    check_json_lines "$LOG"
}

t_raw_message() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs 'hello, raw world' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    local key id
    key=$(rcli --scan --pattern 'oneshot:result:*')
    id=${key#oneshot:result:}
    echo "$id" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' || fail "id '$id' is not a UUID"
    assert_eq "$(rcli GET "$key")" 'hello, raw world' "result"
    assert_eq "$(job_field "$id" state)" succeeded
}

t_malformed_dead_letter() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"bad id!","input":1}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 65 "bad id: exit code"
    local d
    d=$(rcli LPOP jobs.dead)
    assert_contains "$d" '"raw":"{\"id\":\"bad id!\",\"input\":1}"' "dead letter keeps the message"
    assert_contains "$d" '"state":"rejected"'
    assert_contains "$d" '"error":"envelope: \"id\" must be'
    rcli LPUSH jobs '{"id":"m2","input":1,"deadline_s":"soon"}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5 --dead-letter graveyard
    assert_eq "$RC" 65 "bad deadline_s: exit code"
    assert_eq "$(job_field m2 state)" rejected "record of the rejected job"
    assert_contains "$(rcli LINDEX graveyard 0)" 'deadline_s' "--dead-letter list"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    no_claim_keys
}

t_retry_then_dead() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"f1","input":{"duration":0,"failed":true}}' >/dev/null
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1 "attempt 1: exit code"
    assert_eq "$(job_field f1 state)" retrying "attempt 1: state"
    assert_eq "$(job_field f1 attempt)" 1
    local q
    q=$(rcli LINDEX jobs 0)
    assert_contains "$q" '"id":"f1"' "re-queued envelope"
    assert_contains "$q" '"attempt":2'
    assert_contains "$q" '"input":{"duration":0,"failed":true}'
    [ "$(rcli TTL oneshot:job:f1)" = -1 ] || fail "a retrying record must not expire"
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1 "attempt 2: exit code"
    assert_eq "$(job_field f1 state)" dead "attempt 2: state"
    assert_eq "$(job_field f1 attempt)" 2
    local d
    d=$(rcli LINDEX jobs.dead 0)
    assert_contains "$d" '"id":"f1"' "dead letter"
    assert_contains "$d" '"attempts":2'
    assert_contains "$d" '"error":"Job failed as requested via failed parameter"'
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    no_claim_keys
}

# A raw message that is not valid UTF-8 and holds NULs: every attempt's
# core gets the producer's bytes (the re-queued envelope carries them as
# "input_base64"), and so does the dead letter.
t_binary_retry() {
    rcli FLUSHALL >/dev/null
    local f=$T_DIR/binary.in
    printf 'a\377\000b\303(\355\240\200\nz' >"$f"
    rcli -x LPUSH jobs <"$f" >/dev/null
    local want
    want=$(sha256sum <"$f" | cut -d' ' -f1)
    local core=(-- sh -c 'sha256sum | cut -d" " -f1 >"$0.$ONESHOT_ATTEMPT"; exit 3' "$T_DIR/sum")
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5 "${core[@]}"
    assert_eq "$RC" 3 "attempt 1: exit code"
    assert_contains "$(rcli LINDEX jobs 0)" '"input_base64":"'
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5 "${core[@]}"
    assert_eq "$RC" 3 "attempt 2: exit code"
    assert_eq "$(cat "$T_DIR/sum.1" 2>/dev/null)" "$want" "attempt 1 input"
    assert_eq "$(cat "$T_DIR/sum.2" 2>/dev/null)" "$want" "attempt 2 input"
    local d
    d=$(rcli LINDEX jobs.dead 0)
    assert_contains "$d" '"input_base64":"'
    local got
    got=$(printf '%s' "$d" | python3 -c 'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["input_base64"]))' | sha256sum | cut -d' ' -f1)
    assert_eq "$got" "$want" "dead letter input"
    no_claim_keys
}

t_deadline_retry() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"t1","input":{"duration":30},"deadline_s":1}' >/dev/null
    run_replica 20 --source redis-list --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 124 "exit code"
    assert_eq "$(job_field t1 state)" retrying "state"
    assert_contains "$(job_field t1 error)" deadline
    assert_contains "$(rcli LINDEX jobs 0)" '"attempt":2' "re-queued"
    assert_contains "$(rcli LINDEX jobs 0)" '"deadline_s":1' "deadline kept"
}

t_idempotent() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"d1","input":{"n":1}}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0
    local fin
    fin=$(job_field d1 finished_at)
    rcli LPUSH jobs '{"id":"d1","input":{"n":2}}' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "second delivery: exit code"
    assert_contains "$(cat "$LOG")" 'already succeeded'
    assert_not_contains "$(cat "$LOG")" 'running job'
    assert_eq "$(rcli GET oneshot:result:d1)" '{"n":1}' "result untouched"
    assert_eq "$(job_field d1 finished_at)" "$fin" "record untouched"
    assert_eq "$(rcli LLEN jobs)" 0 "acked"
    no_claim_keys
}

# An operator's view of a replica that died: its processing list with no
# lease. The sweep of the next replica puts it back with the attempt
# counted, or dead-letters it past --max-attempts.
t_sweep_orphans() {
    rcli FLUSHALL >/dev/null
    rcli RPUSH jobs:processing:ghost1 '{"id":"o1","input":{"v":1}}' >/dev/null
    rcli RPUSH jobs:processing:ghost2 '{"id":"o2","input":{"v":2},"attempt":3}' >/dev/null
    rcli SADD jobs:workers ghost1 ghost2 >/dev/null
    rcli HSET oneshot:job:o2 id o2 state running attempt 3 worker ghost2 >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5 --max-attempts 3
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field o1 state)" succeeded "swept job ran"
    assert_eq "$(job_field o1 attempt)" 2 "attempt counted"
    assert_eq "$(job_field o2 state)" dead "past --max-attempts"
    assert_contains "$(job_field o2 error)" 'ghost2 lost its lease'
    local d
    d=$(rcli LINDEX jobs.dead 0)
    assert_contains "$d" '"id":"o2"' "dead letter"
    assert_contains "$d" '"attempts":3'
    assert_eq "$(rcli EXISTS jobs:processing:ghost1 jobs:processing:ghost2)" 0 "orphans moved"
    assert_eq "$(rcli SISMEMBER jobs:workers ghost1)" 0 "ghost deregistered"
    # an orphan found in the same round trip as a queued job: the job is
    # claimed, the orphan goes back untouched but for its attempt
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs 'queued raw' >/dev/null
    rcli RPUSH jobs:processing:ghost3 '{"id":"o3","input":"x"}' >/dev/null
    rcli SADD jobs:workers ghost3 >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "orphan and job: exit code"
    assert_eq "$(rcli LRANGE jobs 0 -1)" '{"id":"o3","input":"x","attempt":2}' "orphan back in the queue"
    assert_eq "$(rcli --scan --pattern 'oneshot:result:*' | xargs redis-cli -s "$RS_SOCK" GET)" 'queued raw' "job ran"
    # a raw orphan keeps the id its replica wrote back before it died
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"duration":30}' >/dev/null # JSON without "input": raw
    start_replica --redis "$RS_URL" --source redis-list --core demo --idle-timeout 5 --lease 30 || return
    wait_for 5 sh -c "redis-cli -s '$RS_SOCK' --scan --pattern 'oneshot:job:*' | grep -q ." || fail "no record"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    local key id held
    key=$(rcli --scan --pattern 'oneshot:job:*')
    id=${key#oneshot:job:}
    held=$(rcli --scan --pattern 'jobs:processing:*')
    assert_contains "$(rcli LINDEX "$held" 0)" "\"id\":\"$id\"" "id written back"
    rcli DEL "oneshot:lease:${held#jobs:processing:}" >/dev/null # as if the lease ran out
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "re-delivery: exit code"
    assert_eq "$(rcli GET "oneshot:result:$id")" '{"duration":30}' "same id, same input"
    assert_eq "$(job_field "$id" attempt)" 2
    no_claim_keys
}

t_sigkill_redelivered() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"k1","input":{"duration":2}}' >/dev/null
    start_replica --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is k1 running || fail "not running"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    assert_eq "$(rcli LLEN jobs)" 0 "held, not in the queue"
    local t0=$SECONDS
    run_replica 30 --source redis-list --lease 3 --idle-timeout 15
    assert_eq "$RC" 0 "second replica: exit code"
    assert_eq "$(job_field k1 state)" succeeded
    assert_eq "$(job_field k1 attempt)" 2 "attempt"
    assert_contains "$(cat "$LOG")" 'lost its lease'
    [ $((SECONDS - t0)) -le 12 ] || fail "took $((SECONDS - t0)) s"
    no_claim_keys
}

t_no_steal_live_job() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"l1","input":{"duration":5}}' >/dev/null
    start_replica --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 || return
    local a=$R_PID alog=$R_LOG
    wait_for 5 job_state_is l1 running || fail "not running"
    run_replica 20 --source redis-list --lease 3 --idle-timeout 5
    assert_eq "$RC" 75 "the second replica found nothing to take"
    assert_not_contains "$(cat "$LOG")" 'claimed job'
    assert_exit "$a" 10 0 "first replica" "$alog"
    assert_eq "$(job_field l1 attempt)" 1 "attempt"
    assert_eq "$(job_field l1 state)" succeeded
    no_claim_keys
}

t_sigterm_gives_back() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"s1","input":{"duration":30}}' '{"id":"s0","input":{"duration":0}}' >/dev/null
    start_replica --redis "$RS_URL" --source redis-list --term-grace 0 --idle-timeout 5 || return
    wait_for 5 job_state_is s1 running || fail "not running"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 10 143 "exit code"
    assert_eq "$(job_field s1 state)" interrupted "state"
    assert_eq "$(rcli LINDEX jobs -1)" '{"id":"s1","input":{"duration":30}}' "back at the head, untouched"
    no_claim_keys
}

t_redis_killed_mid_job() {
    rcli FLUSHALL >/dev/null
    redis_restart --appendonly yes --appendfsync always || return
    rcli LPUSH jobs '{"id":"r1","input":{"duration":2}}' >/dev/null
    ONESHOT_REDIS_RETRY_MS=1500 start_replica --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is r1 running || fail "not running"
    redis_kill
    local t0=$SECONDS
    assert_exit "$R_PID" 15 69 "exit code"
    [ $((SECONDS - t0)) -le 8 ] || fail "gave up after $((SECONDS - t0)) s"
    assert_contains "$(cat "$R_LOG")" 'gave up after 1500 ms'
    redis_restart || return
    assert_eq "$(rcli LLEN jobs)" 0 "still held after the restart"
    run_replica 30 --source redis-list --lease 3 --idle-timeout 15
    assert_eq "$RC" 0 "after the restart: exit code"
    assert_eq "$(job_field r1 state)" succeeded
    assert_eq "$(job_field r1 attempt)" 2
    no_claim_keys
    redis_restart --appendonly no
}

t_16mib() {
    rcli FLUSHALL >/dev/null
    head -c 16777216 /dev/zero | tr '\0' 'x' >"$T_DIR/big"
    redis-cli -s "$RS_SOCK" -x LPUSH jobs <"$T_DIR/big" >/dev/null
    run_replica 60 --source redis-list --core echo --idle-timeout 10
    assert_eq "$RC" 0 "16 MiB: exit code"
    local key
    key=$(rcli --scan --pattern 'oneshot:result:*')
    assert_eq "$(rcli STRLEN "$key")" 16777216 "result size"
    assert_eq "$(rcli GETRANGE "$key" 16777210 -1)" xxxxxx
    # one byte more is rejected and dead-lettered whole
    printf x >>"$T_DIR/big"
    redis-cli -s "$RS_SOCK" -x LPUSH jobs <"$T_DIR/big" >/dev/null
    run_replica 60 --source redis-list --core echo --idle-timeout 10
    assert_eq "$RC" 65 "16 MiB + 1: exit code"
    assert_contains "$(cat "$LOG")" 'exceeds --max-input'
    [ "$(rcli LLEN jobs.dead)" = 1 ] || fail "not dead-lettered"
    rm -f "$T_DIR/big"
    no_claim_keys
}

t_run "redis-list: envelope, result, status, TTLs, events" t_envelope_result_status_events
t_run "redis-list: raw message gets a UUID" t_raw_message
t_run "redis-list: malformed envelope -> 65, dead letter" t_malformed_dead_letter
t_run "redis-list: failed -> retrying, then dead" t_retry_then_dead
t_run "redis-list: binary raw input survives retries and the dead letter" t_binary_retry
t_run "redis-list: deadline -> 124, re-queued" t_deadline_retry
t_run "redis-list: already succeeded -> acked unrun" t_idempotent
t_run "redis-list: orphan sweep counts attempts" t_sweep_orphans
t_run "redis-list: SIGKILL -> attempt 2 elsewhere" t_sigkill_redelivered
t_run "redis-list: a live job is not stolen" t_no_steal_live_job
t_run "redis-list: SIGTERM gives the job back" t_sigterm_gives_back
t_run "redis-list: Redis killed mid-job -> 69, done after restart" t_redis_killed_mid_job
t_run "redis-list: 16 MiB message" t_16mib
