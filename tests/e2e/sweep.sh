#!/usr/bin/env bash
# sweep.sh -- `oneshot sweep` against a real redis-server: a replica
# SIGKILLed mid-job with nothing else queued leaves its job where no
# queue-length or lag trigger sees it; the sweep (deploy/k8s's CronJob)
# makes it waiting work again, and a replica started as KEDA would start
# it brings it to a final state without any new job submitted.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

# Every process's sanitizer reports to $T_DIR/san.* (lib.sh).
san_log_all

S=(--source redis-stream --queue work)

# What KEDA's triggers read: listLength is LLEN; lagCount the group's lag.
stream_lag() { rcli XINFO GROUPS work | awk 'p{print; exit} /^lag$/{p=1}'; }
stream_pending() { rcli XPENDING work oneshot | head -1; }

# A field of the sweep's JSON (python3 reads it).
sweep_json() { # json expr
    python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# The lease of the replica running job $1 is gone.
lease_gone() { [ "$(rcli EXISTS "oneshot:lease:$(job_field "$1" worker)")" = 0 ]; }

t_list_sigkill_nothing_queued() {
    rcli FLUSHALL >/dev/null
    local id
    id=$(oneshot_cli submit --id lk1 '{"duration":2}')
    start_replica --redis "$RS_URL" --source redis-list --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is lk1 running || fail "not running"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    # What KEDA's listLength trigger sees: nothing; no replica would start.
    assert_eq "$(rcli LLEN jobs)" 0 "queue length after the kill"
    # A sweep while the lease lives moves nothing.
    local out rc=0
    out=$(oneshot_cli sweep --lease 3 2>"$T_DIR/sweep.err") || rc=$?
    assert_eq "$rc" 0 "sweep under a live lease: exit code"
    assert_eq "$(sweep_json "$out" 'o["count"]')" 0 "sweep under a live lease: count"
    assert_eq "$(rcli LLEN jobs)" 0 "still held"
    wait_for 6 lease_gone lk1 || fail "the lease did not expire"
    local fence
    fence=$(job_field lk1 fence)
    rc=0
    out=$(oneshot_cli sweep --lease 3 2>"$T_DIR/sweep.err") || rc=$?
    assert_eq "$rc" 0 "sweep: exit code ($(cat "$T_DIR/sweep.err"))"
    assert_eq "$(sweep_json "$out" 'o["count"]')" 1 "sweep: count ($out)"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["id"]')" lk1 "sweep: id"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["to"]')" jobs "sweep: to"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["action"]')" requeue "sweep: action"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["attempts"]')" 1 "sweep: attempts"
    assert_contains "$(sweep_json "$out" 'o["moved"][0]["from"]')" 'jobs:processing:' "sweep: from"
    # Now the trigger sees one item: KEDA starts a replica.
    assert_eq "$(rcli LLEN jobs)" 1 "queue length after the sweep"
    assert_eq "$(job_field lk1 state)" interrupted "record after the sweep"
    assert_eq "$(job_field lk1 fence)" $((fence + 1)) "fence after the sweep"
    run_replica 20 --source redis-list --lease 3 --idle-timeout 5
    assert_eq "$RC" 0 "the replica KEDA starts: exit code"
    assert_eq "$(job_field lk1 state)" succeeded
    assert_eq "$(job_field lk1 attempt)" 2 "attempt"
    assert_eq "$(rcli --scan --pattern 'jobs:processing:*')" "" "nothing held"
    # A second sweep finds nothing.
    out=$(oneshot_cli sweep --lease 3 2>/dev/null)
    assert_eq "$(sweep_json "$out" 'o["count"]')" 0 "second sweep"
    san_check
}

t_list_dead_past_max_attempts() {
    rcli FLUSHALL >/dev/null
    rcli RPUSH jobs:processing:ghost '{"id":"ld1","input":"x","attempt":3}' >/dev/null
    rcli SADD jobs:workers ghost >/dev/null
    rcli HSET oneshot:job:ld1 id ld1 state running worker ghost fence 4 >/dev/null
    local out rc=0
    out=$(oneshot_cli sweep --max-attempts 3 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "exit code"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["action"]')" dead "action"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["to"]')" jobs.dead "to"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["attempts"]')" 3 "attempts"
    assert_eq "$(job_field ld1 state)" dead "record"
    assert_eq "$(job_field ld1 fence)" 5 "fence"
    assert_contains "$(rcli LINDEX jobs.dead 0)" 'max-attempts 3 is reached' "dead letter"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_eq "$(rcli EXISTS jobs:processing:ghost)" 0 "processing list"
    assert_eq "$(rcli SISMEMBER jobs:workers ghost)" 0 "unregistered"
    san_check
}

# Four sweeps at once over twenty orphans: each moved exactly once.
t_list_concurrent_sweeps() {
    rcli FLUSHALL >/dev/null
    local i pids=()
    for i in $(seq 1 20); do
        rcli RPUSH "jobs:processing:g$i" "{\"id\":\"c$i\",\"input\":$i}" >/dev/null
        rcli SADD jobs:workers "g$i" >/dev/null
    done
    for i in 1 2 3 4; do
        oneshot_cli sweep >"$T_DIR/s$i.out" 2>/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail "a sweep exited $?"; done
    local total=0
    local c
    for i in 1 2 3 4; do
        c=$(sweep_json "$(cat "$T_DIR/s$i.out")" 'o["count"]')
        total=$((total + ${c:-0}))
    done
    assert_eq "$total" 20 "moved in all"
    assert_eq "$(rcli LLEN jobs)" 20 "queue"
    assert_eq "$(rcli LRANGE jobs 0 -1 | sort -u | wc -l)" 20 "each once"
    assert_eq "$(rcli LRANGE jobs 0 -1 | grep -c '"attempt":2')" 20 "attempt counted"
    assert_eq "$(rcli SCARD jobs:workers)" 0 "registry"
    san_check
}

t_stream_sigkill_nothing_queued() {
    rcli FLUSHALL >/dev/null
    oneshot_cli submit "${S[@]}" --id sk1 '{"duration":2}' >/dev/null
    start_replica --redis "$RS_URL" "${S[@]}" --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is sk1 running || fail "not running"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    # KEDA's lagCount sees nothing (pendingEntriesCount would see 1).
    assert_eq "$(stream_lag)" 0 "lag after the kill"
    assert_eq "$(stream_pending)" 1 "pending after the kill"
    local out rc=0
    out=$(oneshot_cli sweep "${S[@]}" --lease 3 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "sweep under a live lease: exit code"
    assert_eq "$(sweep_json "$out" 'o["count"]')" 0 "sweep under a live lease: count"
    wait_for 6 lease_gone sk1 || fail "the lease did not expire"
    # ...and the entry idle past --lease (the heartbeat reset it last).
    local entry
    entry=$(rcli XPENDING work oneshot - + 1 | head -1)
    wait_for 6 sh -c "[ \$(redis-cli -s '$RS_SOCK' XPENDING work oneshot IDLE 3000 - + 1 | wc -l) -gt 0 ]" ||
        fail "the entry did not go idle"
    local fence
    fence=$(job_field sk1 fence)
    rc=0
    out=$(oneshot_cli sweep "${S[@]}" --lease 3 2>"$T_DIR/sweep.err") || rc=$?
    assert_eq "$rc" 0 "sweep: exit code ($(cat "$T_DIR/sweep.err"))"
    assert_eq "$(sweep_json "$out" 'o["count"]')" 1 "sweep: count ($out)"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["id"]')" sk1 "sweep: id"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["from"]')" "$entry" "sweep: from"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["to"]')" work "sweep: to"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["attempts"]')" 1 "sweep: attempts"
    # Now lagCount sees one entry: KEDA starts a replica.
    assert_eq "$(stream_lag)" 1 "lag after the sweep"
    assert_eq "$(stream_pending)" 0 "pending after the sweep"
    assert_eq "$(job_field sk1 state)" interrupted "record after the sweep"
    assert_eq "$(job_field sk1 fence)" $((fence + 1)) "fence after the sweep"
    run_replica 20 "${S[@]}" --lease 3 --idle-timeout 5
    assert_eq "$RC" 0 "the replica KEDA starts: exit code"
    assert_eq "$(job_field sk1 state)" succeeded
    assert_eq "$(job_field sk1 attempt)" 2 "attempt"
    assert_eq "$(stream_pending)" 0 "acked"
    assert_eq "$(stream_lag)" 0 "nothing left"
    san_check
}

# A fresh stream with one entry of job ID pending with the consumer "ghost"
# (no lease), idle for years, delivered DELIVERIES times.
ghost_entry() { # id deliveries
    rcli FLUSHALL >/dev/null
    rcli XGROUP CREATE work oneshot 0 MKSTREAM >/dev/null
    local e
    e=$(rcli XADD work '*' input x id "$1")
    rcli XREADGROUP GROUP oneshot ghost COUNT 1 STREAMS work '>' >/dev/null
    rcli XCLAIM work oneshot ghost 0 "$e" IDLE 100000000 RETRYCOUNT "$2" JUSTID >/dev/null
}

t_stream_dead_past_max_attempts() {
    ghost_entry sd1 3
    local out rc=0
    out=$(oneshot_cli sweep "${S[@]}" --max-attempts 3 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "exit code"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["action"]')" dead "action ($out)"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["to"]')" work.dead "to"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["attempts"]')" 3 "attempts"
    assert_eq "$(job_field sd1 state)" dead "record"
    assert_contains "$(rcli XRANGE work.dead - + | tr '\n' ' ')" 'max-attempts 3 is reached' "dead letter"
    assert_eq "$(stream_pending)" 0 "acked"
    assert_eq "$(stream_lag)" 0 "nothing re-added"
    san_check
}

# The record's worker W has a lease but holds no entry of the job: not a
# replica running it (a stream replica's re-sent claim sets its lease again:
# redis_stream.sh t_lease_alone_not_running), so the orphan is re-queued, not
# dropped as a duplicate.
t_stream_lease_alone_not_running() {
    ghost_entry sl1 1
    rcli HSET oneshot:job:sl1 id sl1 state running attempt 1 worker W fence 2 >/dev/null
    rcli SET oneshot:lease:W 1 PX 60000 >/dev/null
    local out rc=0
    out=$(oneshot_cli sweep "${S[@]}" 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "exit code"
    assert_eq "$(sweep_json "$out" 'o["moved"][0]["action"]')" requeue "action ($out)"
    assert_eq "$(job_field sl1 state)" interrupted "record"
    assert_eq "$(stream_lag)" 1 "re-added"
    san_check
}

# A frozen owner that wakes after the sweep writes nothing: its fence is
# stale and its entry is gone.
t_stream_owner_wakes_after_sweep() {
    rcli FLUSHALL >/dev/null
    oneshot_cli submit "${S[@]}" --id sw1 '{"duration":6}' >/dev/null
    start_replica --redis "$RS_URL" "${S[@]}" --lease 3 --idle-timeout 5 || return
    local a=$R_PID alog=$R_LOG
    wait_for 5 job_state_is sw1 running || fail "not running"
    kill -STOP "$a"
    wait_for 8 sh -c "[ \$(redis-cli -s '$RS_SOCK' XPENDING work oneshot IDLE 3000 - + 1 | wc -l) -gt 0 ]" ||
        fail "the entry did not go idle"
    wait_for 6 lease_gone sw1 || fail "the lease did not expire"
    local out
    out=$(oneshot_cli sweep "${S[@]}" --lease 3 2>/dev/null)
    assert_eq "$(sweep_json "$out" 'o["count"]')" 1 "sweep: count ($out)"
    kill -CONT "$a"
    assert_exit "$a" 15 69 "the woken owner" "$alog"
    run_replica 20 "${S[@]}" --lease 3 --idle-timeout 5
    assert_eq "$RC" 0 "successor: exit code"
    assert_eq "$(job_field sw1 state)" succeeded
    assert_eq "$(job_field sw1 attempt)" 2 "attempt"
    assert_eq "$(stream_pending)" 0 "acked"
    san_check
}

t_bad_input() {
    rcli FLUSHALL >/dev/null
    local rc=0
    oneshot_cli sweep --source kafka >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 78 "--source kafka"
    assert_contains "$(cat "$T_DIR/e")" 'sweep supports redis-list and redis-stream'
    rc=0
    oneshot_cli sweep extra >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 78 "an argument"
    rc=0
    "$ONESHOT" sweep --redis "unix://$T_DIR/nowhere.sock" >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 69 "Redis unreachable"
    rcli SET jobs:workers x >/dev/null
    rc=0
    oneshot_cli sweep >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 69 "workers key of another type"
    assert_contains "$(cat "$T_DIR/e")" 'WRONGTYPE jobs:workers'
    # a dead-letter key of another type: the orphan stays, quarantined, exit 1
    rcli FLUSHALL >/dev/null
    rcli RPUSH jobs:processing:ghost '{"id":"q1","input":"x","attempt":3}' >/dev/null
    rcli SADD jobs:workers ghost >/dev/null
    rcli SET jobs.dead x >/dev/null
    local out
    rc=0
    out=$(oneshot_cli sweep --max-attempts 3 2>"$T_DIR/e") || rc=$?
    assert_eq "$rc" 1 "quarantined: exit code"
    assert_eq "$(sweep_json "$out" 'o["left"]')" 1 "left"
    assert_eq "$(rcli LLEN jobs:processing:ghost)" 1 "the copy stays"
    assert_eq "$(rcli SISMEMBER jobs:quarantine ghost)" 1 "quarantined"
    # nothing to sweep at all: a stream without a group
    rcli FLUSHALL >/dev/null
    rc=0
    out=$(oneshot_cli sweep "${S[@]}" 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "no stream: exit code"
    assert_eq "$(sweep_json "$out" 'o["count"]')" 0 "no stream: count"
    san_check
}

t_run "sweep: redis-list SIGKILL, nothing queued: sweep, then a replica" t_list_sigkill_nothing_queued
t_run "sweep: redis-list orphan past --max-attempts is dead-lettered" t_list_dead_past_max_attempts
t_run "sweep: redis-list four sweeps at once" t_list_concurrent_sweeps
t_run "sweep: redis-stream SIGKILL, nothing queued: lag 0, sweep, lag 1, a replica" t_stream_sigkill_nothing_queued
t_run "sweep: redis-stream orphan past --max-attempts is dead-lettered" t_stream_dead_past_max_attempts
t_run "sweep: redis-stream a lease alone is not a replica running the job: re-queued" t_stream_lease_alone_not_running
t_run "sweep: redis-stream frozen owner woken after the sweep writes nothing" t_stream_owner_wakes_after_sweep
t_run "sweep: bad input" t_bad_input
