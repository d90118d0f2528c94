#!/usr/bin/env bash
# fleet.sh -- `oneshot fleet`, the batch-jobs platform on one machine
#: the built binary supervising its own replicas against a
# private redis-server (and the test Kafka broker), checked with redis-cli.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

# run_fleet SECS ARGS...: a fleet in the foreground, bounded; sets RC, FLOG
# (its stderr) and SUM (its stdout: the summary line).
run_fleet() {
    local secs=$1
    shift
    FLOG=$(mktemp "$T_DIR/fleet.XXXXXX")
    SUM=$FLOG.sum
    RC=0
    timeout -s KILL "$secs" "$ONESHOT" fleet "$@" >"$SUM" 2>"$FLOG" || RC=$?
    check_sanitizers "$FLOG"
}

# start_fleet ARGS...: a fleet in the background; FPID, FLOG, SUM.
start_fleet() {
    FLOG=$(mktemp "$T_DIR/fleet.XXXXXX")
    SUM=$FLOG.sum
    "$ONESHOT" fleet "$@" >"$SUM" 2>"$FLOG" &
    FPID=$!
    T_PIDS+=("$FPID")
}

# A number in the summary line.
sf() { grep -o "\"$1\":[0-9.]*" "$SUM" | head -1 | cut -d: -f2; }

# The replica options every test uses (after `--`).
LIST=(--redis "$RS_URL" --source redis-list --bind 127.0.0.1)
STREAM=(--redis "$RS_URL" --source redis-stream --bind 127.0.0.1)

# push_list N [INPUT]: N envelopes j1..jN on the list "jobs".
push_list() {
    local i in=${2:-}
    for ((i = 1; i <= $1; i++)); do
        printf "LPUSH jobs '{\"id\":\"j%d\",\"input\":%s}'\n" "$i" "${in:-{\"n\":$i\}}"
    done | redis-cli -s "$RS_SOCK" >/dev/null
}

push_stream() {
    local i in=${2:-}
    for ((i = 1; i <= $1; i++)); do
        printf "XADD jobs * input '%s' id s%d\n" "${in:-{\"n\":$i\}}" "$i"
    done | redis-cli -s "$RS_SOCK" >/dev/null
}

# How many of PREFIX1..PREFIXn have a succeeded record and their input as result.
results_ok() { # prefix n
    rcli EVAL "local ok = 0
        for i = 1, $2 do
          local s = redis.call('HGET', 'oneshot:job:$1' .. i, 'state')
          local r = redis.call('GET', 'oneshot:result:$1' .. i)
          if s == 'succeeded' and r == '{\"n\":' .. i .. '}' then ok = ok + 1 end
        end
        return ok" 0
}

t_drain_500() {
    rcli FLUSHALL >/dev/null
    push_list 500
    run_fleet 170 --max-concurrent 4 --drain -- "${LIST[@]}" --core echo
    assert_eq "$RC" 0 "fleet exit code"
    assert_eq "$(sf "done")" 500 "done"
    assert_eq "$(sf replicas)" 500 "replicas started"
    assert_eq "$(sf idle)" 0 "idle replicas"
    local peak
    peak=$(sf peak)
    [ "$peak" -ge 1 ] && [ "$peak" -le 4 ] || fail "peak $peak not in 1..4"
    assert_eq "$(results_ok j 500)" 500 "jobs with one succeeded record and their result"
    assert_eq "$(rcli --scan --pattern 'oneshot:result:*' | wc -l)" 500 "results"
    assert_eq "$(rcli HGET oneshot:job:j500 attempt)" 1 "attempt"
    assert_eq "$(grep -c '"msg":"claimed job' "$FLOG")" 500 "claims"
    assert_eq "$(grep -o '"job_id":"j[0-9]*","msg":"claimed job' "$FLOG" | sort -u | wc -l)" 500 "distinct jobs claimed"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_eq "$(rcli --scan --pattern 'jobs:processing:*' | wc -l)" 0 "processing lists"
    # every line is JSON; every replica line carries the replica's pid
    check_json_lines "$FLOG"
    assert_eq "$(grep '"replica":' "$FLOG" | grep -vc '^{"pid":[0-9]*,')" 0 "replica lines without a pid"
    assert_eq "$(grep -o '^{"pid":[0-9]*' "$FLOG" | sort -u | wc -l)" 500 "distinct replica pids"
    assert_contains "$(cat "$SUM")" '"msg":"fleet summary"' "summary"
    assert_eq "$(wc -l <"$SUM")" 1 "summary lines"
}

t_stream_drain() {
    rcli FLUSHALL >/dev/null
    push_stream 100
    run_fleet 120 --max-concurrent 4 --drain -- "${STREAM[@]}" --core echo
    assert_eq "$RC" 0 "fleet exit code"
    assert_eq "$(sf "done")" 100 "done"
    assert_eq "$(sf replicas)" 100 "replicas started"
    assert_eq "$(results_ok s 100)" 100 "jobs with one succeeded record and their result"
    assert_eq "$(rcli XPENDING jobs oneshot | head -1)" 0 "pending entries"
    check_json_lines "$FLOG"
}

# Slow jobs and a high limit: the fleet looks at the backlog many times
# while they run, and must start exactly one replica per job.
t_no_more_replicas_than_jobs() {
    rcli FLUSHALL >/dev/null
    push_list 3 '{"duration":1}'
    run_fleet 60 --max-concurrent 10 --poll-ms 20 --drain -- "${LIST[@]}"
    assert_eq "$RC" 0 "fleet exit code (list)"
    assert_eq "$(sf replicas)" 3 "replicas for 3 list jobs"
    assert_eq "$(sf "done")" 3 "done"
    assert_eq "$(sf idle)" 0 "idle replicas"
    rcli FLUSHALL >/dev/null
    push_stream 3 '{"duration":1}'
    run_fleet 60 --max-concurrent 10 --poll-ms 20 --drain -- "${STREAM[@]}"
    assert_eq "$RC" 0 "fleet exit code (stream)"
    assert_eq "$(sf replicas)" 3 "replicas for 3 stream jobs"
    assert_eq "$(sf idle)" 0 "idle replicas (stream)"
    # nothing queued: nothing started, and --drain ends at once
    rcli FLUSHALL >/dev/null
    run_fleet 20 --drain -- "${LIST[@]}"
    assert_eq "$RC" 0 "empty queue: exit code"
    assert_eq "$(sf replicas)" 0 "empty queue: replicas"
}

# --deadline: the replica's own watchdog (the fleet passes the deadline on)
# times the job out; it is re-queued, then dead-lettered: never lost.
t_deadline_requeued_then_dead() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"slow","input":{"duration":30}}' >/dev/null
    run_fleet 60 --deadline 3 --drain -- "${LIST[@]}" --max-attempts 2
    assert_eq "$RC" 1 "fleet exit code"
    assert_eq "$(sf timed_out)" 2 "timed out"
    assert_eq "$(sf replicas)" 2 "replicas"
    assert_eq "$(rcli HGET oneshot:job:slow state)" dead "state"
    assert_eq "$(rcli HGET oneshot:job:slow exit_code)" 124 "recorded exit code"
    assert_eq "$(rcli LLEN jobs.dead)" 1 "dead letters"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_eq "$(grep -c '"msg":"exit 124 (deadline)"' "$FLOG")" 2 "replica exits 124"
}

# A replica --deadline of 0 (none) under a fleet --deadline is replaced by
# the fleet's: otherwise the fleet's SIGTERM gives the job back uncounted and
# a job that always outlasts the deadline is retried forever (this fleet
# would never drain).
t_deadline_replica_none() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"slow0","input":{"duration":30}}' >/dev/null
    run_fleet 40 --deadline 3 --drain -- "${LIST[@]}" --max-attempts 2 --deadline 0
    assert_eq "$RC" 1 "fleet exit code"
    assert_eq "$(rcli HGET oneshot:job:slow0 state)" dead "state"
    assert_eq "$(rcli HGET oneshot:job:slow0 attempt)" 2 "attempt"
    assert_contains "$(cat "$FLOG")" 'replica --deadline 0 (none) is beyond the fleet' "warning"
    assert_eq "$(grep -c '"msg":"exit 124 (deadline)"' "$FLOG")" 2 "replica exits 124"
}

# A replica that does not answer SIGTERM (stopped) is SIGKILLed after the
# grace; its job comes back when its lease runs out and another replica
# finishes it.
t_deadline_kill() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"hang","input":{"duration":1}}' >/dev/null
    start_fleet --deadline 3 --poll-ms 50 --drain -- "${LIST[@]}" --deadline 0 --term-grace 0 --lease 3
    wait_for 20 grep -q '"msg":"claimed job' "$FLOG" || fail "no claim"
    local pid
    pid=$(grep '"msg":"claimed job' "$FLOG" | head -1 | grep -o '^{"pid":[0-9]*' | cut -d: -f2)
    kill -STOP "$pid"
    assert_exit "$FPID" 40 1 "fleet exit code" "$FLOG"
    assert_eq "$(sf timed_out)" 1 "timed out"
    assert_eq "$(sf "done")" 1 "done by the next replica"
    assert_eq "$(rcli HGET oneshot:job:hang state)" succeeded "state"
    assert_eq "$(rcli HGET oneshot:job:hang attempt)" 2 "attempt"
    assert_contains "$(cat "$FLOG")" 'SIGTERM, SIGKILL in 10 s' "deadline line"
    assert_contains "$(cat "$FLOG")" 'after SIGTERM: SIGKILL' "kill line"
    kill -0 "$pid" 2>/dev/null && fail "stopped replica $pid still exists"
}

# SIGINT: running replicas get SIGTERM and finish their jobs; nothing new
# starts; one summary line; jobs not started stay queued.
t_sigint() {
    rcli FLUSHALL >/dev/null
    push_list 6 '{"duration":2}'
    start_fleet --max-concurrent 2 -- "${LIST[@]}"
    wait_for 20 sh -c "[ \$(grep -c '\"msg\":\"claimed job' '$FLOG') -ge 2 ]" || fail "no 2 claims"
    kill -INT "$FPID"
    assert_exit "$FPID" 30 0 "fleet exit code" "$FLOG"
    assert_eq "$(sf "done")" 2 "done"
    assert_eq "$(sf replicas)" 2 "replicas"
    assert_eq "$(rcli LLEN jobs)" 4 "still queued"
    assert_eq "$(wc -l <"$SUM")" 1 "summary lines"
    assert_contains "$(cat "$FLOG")" 'stopping, SIGTERM to 2 replica(s)' "stop line"
}

# Replicas that cannot reach the broker (exit 69) slow the fleet down
# instead of being restarted in a loop; once the broker answers, the queue
# drains and those replicas, which took no job, are no failure.
t_backoff_69() {
    rcli FLUSHALL >/dev/null
    push_list 5
    rcli ACL SETUSER default -blmove -lmove >/dev/null # the replicas' claim is refused: exit 69
    start_fleet --max-concurrent 4 --poll-ms 100 --drain -- "${LIST[@]}" --core echo
    wait_for 20 sh -c "[ \$(grep -c 'could not reach the broker' '$FLOG') -ge 4 ]" || fail "no backoff"
    rcli ACL SETUSER default +blmove +lmove >/dev/null
    assert_exit "$FPID" 30 0 "fleet exit code" "$FLOG"
    assert_eq "$(sf "done")" 5 "done"
    local u
    u=$(sf unavailable)
    [ "$u" -ge 5 ] && [ "$u" -le 10 ] || fail "$u replicas exited 69 (a backoff allows 5..10)"
    assert_eq "$(results_ok j 5)" 5 "results"
    assert_contains "$(cat "$FLOG")" 'launch delay reset' "reset line"
}

# Redis restarts under a running fleet (AOF keeps the queue): the fleet
# logs it, keeps going, and every job ends with exactly one result.
t_redis_restart() {
    redis_restart --appendonly yes --appendfsync always || return
    rcli FLUSHALL >/dev/null
    push_list 150 '{"duration":0}'
    start_fleet --max-concurrent 4 --poll-ms 50 --drain -- "${LIST[@]}" --lease 3
    wait_for 30 sh -c "[ \$(grep -c '\"msg\":\"claimed job' '$FLOG') -ge 30 ]" || fail "no 30 claims"
    redis_restart || return
    wait_exit "$FPID" 90
    case "$W_RC" in 0 | 1) ;; *) fail "fleet exit code $W_RC" ;; esac
    check_sanitizers "$FLOG"
    assert_eq "$(rcli --scan --pattern 'oneshot:result:*' | wc -l)" 150 "results"
    assert_eq "$(rcli EVAL "local n = 0
        for i = 1, 150 do
          if redis.call('HGET', 'oneshot:job:j' .. i, 'state') == 'succeeded' then n = n + 1 end
        end
        return n" 0)" 150 "succeeded records"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_contains "$(cat "$SUM")" '"msg":"fleet summary"' "summary"
    redis_restart --appendonly no
}

# Lines that are not JSON (replicas logging text) are wrapped with the pid.
t_pass_through() {
    rcli FLUSHALL >/dev/null
    push_list 2
    run_fleet 30 --drain -- "${LIST[@]}" --core echo --log-format text
    assert_eq "$RC" 0 "exit code"
    check_json_lines "$FLOG"
    assert_eq "$(grep -c '"msg":".*claimed job (attempt 1)","pid":[0-9]*,"stream":"output"' "$FLOG")" 2 \
        "wrapped claim lines"
    assert_eq "$(sf "done")" 2 "done"
}

t_config() {
    run_fleet 10 --drain -- --source http
    assert_eq "$RC" 78 "http source"
    assert_contains "$(cat "$FLOG")" 'no queue to watch' "http message"
    run_fleet 10 --drain -- --source redis-list --bogus 1
    assert_eq "$RC" 78 "unknown replica flag"
    assert_contains "$(cat "$FLOG")" '--bogus' "bogus message"
    run_fleet 10 --drain extra -- --source redis-list
    assert_eq "$RC" 78 "positional argument"
    run_fleet 10 --deadline 5 -- "${LIST[@]}" --deadline-margin 8
    assert_eq "$RC" 78 "margin beyond the fleet's deadline"
    # the replicas cannot run: the fleet stops instead of looping
    rcli FLUSHALL >/dev/null
    push_list 3
    run_fleet 30 --drain -- "${LIST[@]}" --core exec -- /nonexistent/program
    assert_eq "$RC" 78 "replicas exit 78"
    [ "$(sf replicas)" -le 3 ] || fail "$(sf replicas) replicas started for a broken command"
    assert_eq "$(rcli LLEN jobs)" 3 "jobs untouched"
}

# The Kafka backlog (a real broker, tests/brokers/kafka_broker_start.sh):
# committed offsets against the high watermarks, first with one replica at
# a time (the fleet sees 3 2 1 0), then 12 jobs on 4 partitions with N=4
# (replicas joining and leaving a group whose other members run jobs).
t_kafka_backlog() {
    export TMPDIR_TEST=$T_DIR/kafka
    . "$ROOT/tests/brokers/kafka_broker_start.sh"
    kafka_broker_start kq kq.results kq.status kq.dead kq4:4 kq4.results kq4.status kq4.dead || {
        kafka_broker_keep_log always
        fail "the test broker did not start"
        return
    }
    local B=$KAFKA_BROKERS s
    for s in 1 2 3; do
        printf '{"id":"k%d","input":{"n":%d}}\n' "$s" "$s" | kcat -P -b "$B" -t kq -k "k$s" || fail "produce"
    done
    run_fleet 120 --max-concurrent 1 --drain --log-level debug -- --source kafka --kafka "$B" --queue kq \
        --group fleet-g --core echo --bind 127.0.0.1 --log-level info
    assert_eq "$(grep '"msg":"backlog"' "$FLOG" | grep -o '"waiting":[0-9]*' | cut -d: -f2 | uniq | tr '\n' ' ')" \
        "3 2 1 0 " "backlog seen by the fleet"
    assert_eq "$RC" 0 "fleet exit code: $(grep -E '"level":"(error|warn)"' "$FLOG" | head -2)"
    assert_eq "$(sf "done")" 3 "done"
    assert_eq "$(sf replicas)" 3 "replicas"
    assert_eq "$(timeout 20 kcat -C -b "$B" -t kq.results -o beginning -e -q -f '%k\n' | sort | tr '\n' ' ')" \
        "k1 k2 k3 " "results"
    for s in $(seq 1 12); do printf 'm%d:{"input":{"duration":1}}\n' "$s"; done | kcat -P -b "$B" -t kq4 -K: ||
        fail "produce"
    run_fleet 120 --max-concurrent 4 --drain -- --source kafka --kafka "$B" --queue kq4 --group fleet-g4 \
        --bind 127.0.0.1
    assert_eq "$RC" 0 "4 partitions, N=4: fleet exit code: $(grep -E '"level":"(error|warn)"' "$FLOG" | head -2)"
    # a member the broker fenced mid-job (a missed rebalance under load)
    # loses its assignment: its job runs again (consumer/kafka/README.md)
    local lost
    lost=$(grep -c 'lost mid-job' "$FLOG")
    [ "$lost" = 0 ] || echo "# fleet: $lost replica(s) fenced by the broker mid-job; their job ran again"
    assert_eq "$(sf "done")" $((12 + lost)) "4 partitions, N=4: done"
    assert_eq "$(timeout 20 kcat -C -b "$B" -t kq4.results -o beginning -e -q -f '%k\n' | sort -u | wc -l)" 12 \
        "4 partitions, N=4: distinct results"
    assert_eq "$(grep -c '"msg":"running job' "$FLOG")" $((12 + lost)) "4 partitions, N=4: each job ran once"
    assert_not_contains "$(cat "$FLOG")" 'revoked mid-job' "4 partitions, N=4"
    echo "# fleet: 12 one-second Kafka jobs on 4 partitions, N=4: $(sf wall_s) s, $(sf replicas) replicas"
    kafka_broker_stop
}

# FLEET_ONLY=t_name runs one test (while working on it).
[ -n "${FLEET_ONLY:-}" ] && { t_run "$FLEET_ONLY" "$FLEET_ONLY"; exit; }
t_run "fleet: 500 list jobs drained with N=4, one result each, JSON lines with pids" t_drain_500
t_run "fleet: 100 stream jobs drained" t_stream_drain
t_run "fleet: never more replicas than jobs (list, stream, empty)" t_no_more_replicas_than_jobs
t_run "fleet: --deadline -> timed out, re-queued, then dead-lettered" t_deadline_requeued_then_dead
t_run "fleet: replica --deadline 0 gets the fleet's (no endless retry)" t_deadline_replica_none
t_run "fleet: --deadline SIGTERM then SIGKILL; the job comes back and succeeds" t_deadline_kill
t_run "fleet: SIGINT lets running jobs finish, one summary" t_sigint
t_run "fleet: exit 69 backs off, then drains" t_backoff_69
t_run "fleet: survives a Redis restart, every job one result" t_redis_restart
t_run "fleet: non-JSON replica lines wrapped with the pid" t_pass_through
t_run "fleet: invalid options and broken replicas exit 78" t_config
t_run "fleet: Kafka backlog drained" t_kafka_backlog
