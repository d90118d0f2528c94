#!/usr/bin/env bash
# redis_stream.sh -- the redis-stream source against a real redis-server,
# driven with redis-cli as an operator would.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

S=(--source redis-stream --queue work)

# Nothing pending, no consumer left behind.
settled_clean() {
    assert_eq "$(rcli XPENDING work oneshot | head -1)" 0 "pending entries"
    assert_eq "$(rcli XINFO CONSUMERS work oneshot | grep -c '^name$')" 0 "consumers left"
}

t_fields_result_status() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"k":1}' id st1 deadline_s 30 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(rcli GET oneshot:result:st1)" '{"k":1}' "result"
    assert_eq "$(job_field st1 state)" succeeded
    assert_eq "$(job_field st1 source)" redis-stream
    assert_eq "$(job_field st1 queue)" work
    settled_clean
    check_json_lines "$LOG"
}

# A field is named by all its bytes: "id\0x" and "input\0x" are unknown
# fields, not the id and the input (C's strcmp stopped at the NUL).
t_field_names_exact() {
    rcli FLUSHALL >/dev/null
    /usr/bin/python3 - "$RS_SOCK" <<'PY'
import sys, redis
r = redis.Redis(unix_socket_path=sys.argv[1])
r.xadd("work", {b"id\x00x": b"evil", b"input\x00x": b"wrong", b"input": b"right", b"id": b"good"})
PY
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field good state)" succeeded "the job named by the id field"
    assert_eq "$(rcli GET oneshot:result:good)" right "the input field's bytes"
    assert_eq "$(rcli EXISTS oneshot:job:evil)" 0 "no record under the NUL-named field's value"
    assert_contains "$(cat "$LOG")" "unknown" "the NUL-named fields warned as unknown"
    settled_clean
}

# "Another live replica runs the job" needs more than that replica's lease:
# an entry of the job pending with it. A stream replica whose claim reply
# was lost re-sends the claim, which sets its lease again after the entry
# it began may have been taken over (tests/model: BUG_RUNS_LEASE). Here W
# has a lease and a running record of the job but holds no entry of it.
t_lease_alone_not_running() {
    rcli FLUSHALL >/dev/null
    rcli XGROUP CREATE work oneshot 0 MKSTREAM >/dev/null
    stale_owner() { # id
        rcli HSET "oneshot:job:$1" id "$1" state running attempt 1 worker W fence 3 >/dev/null
        rcli SET oneshot:lease:W 1 PX 60000 >/dev/null
    }
    # begin: taken over, not called a duplicate.
    stale_owner la1
    rcli XADD work '*' input a id la1 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code (la1)"
    assert_eq "$(job_field la1 state)" succeeded "la1 run, not acked as a duplicate"
    assert_eq "$(job_field la1 fence)" 4 "la1's fence"
    assert_eq "$(rcli GET oneshot:result:la1)" a "la1's result"
    # The same with an entry the claim leaves to BEGIN (attempt "01").
    stale_owner la2
    rcli XADD work '*' input b id la2 attempt 01 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$(job_field la2 state)" succeeded "la2 (BEGIN) run, not acked as a duplicate"
    # Past --max-attempts: dead-lettered, not acked as run elsewhere.
    stale_owner la3
    rcli XADD work '*' input c id la3 attempt 3 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5 --max-attempts 2
    assert_eq "$(job_field la3 state)" dead "la3 exhausted: dead"
    assert_contains "$(rcli XRANGE work.dead - +)" la3 "la3's dead letter"
    # A real duplicate: W holds an entry of la4; a second copy is acked unrun.
    stale_owner la4
    rcli XADD work '*' input d id la4 >/dev/null
    rcli XREADGROUP GROUP oneshot W COUNT 1 STREAMS work '>' >/dev/null
    rcli XADD work '*' input d id la4 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code (la4's copy)"
    assert_eq "$(job_field la4 fence)" 3 "la4 left to W"
    assert_contains "$(cat "$LOG")" "duplicate"
    assert_eq "$(rcli XPENDING work oneshot | head -1)" 1 "pending: W's entry of la4 alone"
}

# Make consumer NAME of stream KEY look idle for MS: DUMP, its seen-time
# (the 8 bytes after its name in the payload, RDB's millisecond time) set
# back, RESTORE with the payload's CRC-64 recomputed (Redis's: Jones
# polynomial, reflected, init 0).
age_consumer() { # key name ms
    /usr/bin/python3 - "$RS_SOCK" "$@" <<'PY'
import sys, time, redis
sock, key, name, age_ms = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
def crc64(data):
    rpoly, crc = int('{:064b}'.format(0xad93d23594c935a9)[::-1], 2), 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ rpoly if crc & 1 else crc >> 1
    return crc
r = redis.Redis(unix_socket_path=sock)
body = r.dump(key)[:-8]
i = body.index(bytes([len(name)]) + name) + 1 + len(name)
seen = int(time.time() * 1000) - age_ms
body = body[:i] + seen.to_bytes(8, 'little') + body[i + 8:]
r.restore(key, 0, body + crc64(body).to_bytes(8, 'little'), replace=True)
PY
}

# The consumers of killed replicas: deleted by the first claim once idle for
# a minute with nothing pending (stream.c, STREAM_CLAIM_LUA); one idle as
# long but holding an entry, and one seen just now, are kept.
t_dead_consumers_deleted() {
    rcli FLUSHALL >/dev/null
    rcli XGROUP CREATE work oneshot 0 MKSTREAM >/dev/null
    rcli XADD work '*' input held id held1 >/dev/null
    rcli XREADGROUP GROUP oneshot ghost-busy COUNT 1 STREAMS work '>' >/dev/null
    rcli XGROUP CREATECONSUMER work oneshot ghost-old >/dev/null
    rcli XGROUP CREATECONSUMER work oneshot ghost-new >/dev/null
    age_consumer work ghost-old 120000 || { fail "could not age ghost-old"; return; }
    age_consumer work ghost-busy 120000 || { fail "could not age ghost-busy"; return; }
    rcli XADD work '*' input '{"k":2}' id cg1 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(job_field cg1 state)" succeeded "cg1"
    assert_eq "$(rcli XINFO CONSUMERS work oneshot | grep -A1 '^name$' | grep ghost | sort | tr '\n' ' ')" \
        "ghost-busy ghost-new " "consumers left"
    assert_contains "$(cat "$LOG")" "deleted 1 idle consumer(s) of killed replicas" "log"
}

t_group_created_at_start_of_stream() {
    rcli FLUSHALL >/dev/null
    # entries added before any group exists are served (group at 0, not $)
    local e
    e=$(rcli XADD work '*' input 'plain text, no id')
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(rcli GET "oneshot:result:$e")" 'plain text, no id' "job id = entry id"
    assert_eq "$(rcli XINFO GROUPS work | sed -n 2p)" oneshot "group"
    settled_clean
}

t_malformed_dead_letter() {
    rcli FLUSHALL >/dev/null
    local e
    e=$(rcli XADD work '*' payload 'no input field' owner ops)
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 65 "no input: exit code"
    local d
    d=$(rcli XRANGE work.dead - + | tr '\n' ' ')
    assert_contains "$d" "payload no input field owner ops" "original fields kept"
    assert_contains "$d" 'error stream entry'
    assert_contains "$d" "entry $e"
    assert_contains "$d" 'state rejected'
    assert_eq "$(job_field "$e" state)" rejected
    rcli XADD work '*' input x id 'bad id!' >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 65 "bad id: exit code"
    rcli XADD work '*' input x deadline_s -3 >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 65 "bad deadline_s: exit code"
    assert_eq "$(rcli XLEN work.dead)" 3 "dead letters"
    settled_clean
}

t_retry_then_dead() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"duration":0,"failed":true}' id sf1 >/dev/null
    run_replica 20 "${S[@]}" --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1 "attempt 1: exit code"
    assert_eq "$(job_field sf1 state)" retrying
    local last
    last=$(rcli XREVRANGE work + - COUNT 1 | tr '\n' ' ')
    assert_contains "$last" 'id sf1' "re-queued entry keeps the id"
    assert_contains "$last" 'attempt 2'
    assert_eq "$(rcli XLEN work)" 2 "a new entry"
    run_replica 20 "${S[@]}" --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 1 "attempt 2: exit code"
    assert_eq "$(job_field sf1 state)" dead
    assert_eq "$(job_field sf1 attempt)" 2
    local d
    d=$(rcli XRANGE work.dead - + | tr '\n' ' ')
    assert_contains "$d" 'error Job failed as requested'
    assert_contains "$d" 'attempts 2'
    settled_clean
}

# An entry some replica read and never acked, delivered too often: it is
# dead-lettered without running.
t_delivery_count_dead() {
    rcli FLUSHALL >/dev/null
    local e
    e=$(rcli XADD work '*' input '{"duration":0}' id dc1)
    rcli XGROUP CREATE work oneshot 0 >/dev/null
    rcli XREADGROUP GROUP oneshot ghost COUNT 1 STREAMS work '>' >/dev/null
    rcli XCLAIM work oneshot ghost 0 "$e" IDLE 100000000 RETRYCOUNT 3 JUSTID >/dev/null
    run_replica 20 "${S[@]}" --max-attempts 3 --idle-timeout 1 --lease 3
    assert_eq "$RC" 75 "nothing to run: exit code"
    assert_eq "$(job_field dc1 state)" dead
    assert_contains "$(rcli XRANGE work.dead - + | tr '\n' ' ')" 'max-attempts 3 is reached'
    assert_eq "$(rcli XPENDING work oneshot | head -1)" 0 "acked"
}

t_sigkill_redelivered() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"duration":2}' id sk1 >/dev/null
    start_replica --redis "$RS_URL" "${S[@]}" --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is sk1 running || fail "not running"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    run_replica 30 "${S[@]}" --lease 3 --idle-timeout 15
    assert_eq "$RC" 0 "second replica: exit code"
    assert_eq "$(job_field sk1 state)" succeeded
    assert_eq "$(job_field sk1 attempt)" 2 "attempt"
    assert_contains "$(cat "$LOG")" 'took over entry'
    assert_eq "$(rcli XPENDING work oneshot | head -1)" 0 "acked"
}

t_no_steal_live_job() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"duration":5}' id sl1 >/dev/null
    start_replica --redis "$RS_URL" "${S[@]}" --lease 3 --idle-timeout 5 || return
    local a=$R_PID alog=$R_LOG
    wait_for 5 job_state_is sl1 running || fail "not running"
    run_replica 20 "${S[@]}" --lease 3 --idle-timeout 5
    assert_eq "$RC" 75 "the second replica found nothing to take"
    assert_exit "$a" 10 0 "first replica" "$alog"
    assert_eq "$(job_field sl1 attempt)" 1
    assert_eq "$(job_field sl1 state)" succeeded
    settled_clean
}

t_sigterm_gives_back() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"duration":30}' id sg1 >/dev/null
    start_replica --redis "$RS_URL" "${S[@]}" --term-grace 0 --lease 30 --idle-timeout 5 || return
    wait_for 5 job_state_is sg1 running || fail "not running"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 10 143 "exit code"
    assert_eq "$(job_field sg1 state)" interrupted
    # taken over at once (no --lease wait), the interrupted delivery not counted
    local w
    w=$(job_field sg1 worker)
    start_replica --redis "$RS_URL" "${S[@]}" --lease 30 --idle-timeout 5 || return
    wait_for 5 grep -q '"job_id":"sg1","msg":"claimed job (attempt 1)"' "$R_LOG" || fail "not taken over: $(tail -2 "$R_LOG")"
    wait_for 5 job_state_is sg1 running || fail "not running again"
    [ "$(job_field sg1 worker)" != "$w" ] || fail "same worker"
    assert_eq "$(job_field sg1 attempt)" 1 "attempt"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
}

t_redis_killed_mid_job() {
    redis_restart --appendonly yes --appendfsync always || return
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' input '{"duration":2}' id sr1 >/dev/null
    ONESHOT_REDIS_RETRY_MS=1500 start_replica --redis "$RS_URL" "${S[@]}" --lease 3 --idle-timeout 5 || return
    wait_for 5 job_state_is sr1 running || fail "not running"
    redis_kill
    assert_exit "$R_PID" 15 69 "exit code"
    redis_restart || return
    assert_eq "$(rcli XPENDING work oneshot | head -1)" 1 "still pending after the restart"
    run_replica 30 "${S[@]}" --lease 3 --idle-timeout 15
    assert_eq "$RC" 0 "after the restart: exit code"
    assert_eq "$(job_field sr1 state)" succeeded
    assert_eq "$(job_field sr1 attempt)" 2
    redis_restart --appendonly no
}

t_16mib() {
    rcli FLUSHALL >/dev/null
    head -c 16777216 /dev/zero | tr '\0' 'y' >"$T_DIR/big"
    redis-cli -s "$RS_SOCK" -x XADD work '*' id big input <"$T_DIR/big" >/dev/null
    run_replica 60 "${S[@]}" --core echo --idle-timeout 10
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(rcli STRLEN oneshot:result:big)" 16777216 "result size"
    rm -f "$T_DIR/big"
    settled_clean
}

t_run "redis-stream: fields, result, status" t_fields_result_status
t_run "redis-stream: a field is named by all its bytes (a NUL inside is no end)" t_field_names_exact
t_run "redis-stream: group at the stream's start, entry id as job id" t_group_created_at_start_of_stream
t_run "redis-stream: malformed entries -> 65, dead-letter stream" t_malformed_dead_letter
t_run "redis-stream: failed -> new entry with attempt 2, then dead" t_retry_then_dead
t_run "redis-stream: delivery count past --max-attempts -> dead" t_delivery_count_dead
t_run "redis-stream: the first claim deletes killed replicas' consumers (idle > 1 min, nothing pending)" t_dead_consumers_deleted
t_run "redis-stream: SIGKILL -> attempt 2 elsewhere" t_sigkill_redelivered
t_run "redis-stream: a live job is not stolen" t_no_steal_live_job
t_run "redis-stream: a lease alone is not a replica running the job (begin, BEGIN, past --max-attempts)" t_lease_alone_not_running
t_run "redis-stream: SIGTERM gives the entry back at once" t_sigterm_gives_back
t_run "redis-stream: Redis killed mid-job -> 69, done after restart" t_redis_killed_mid_job
t_run "redis-stream: 16 MiB input" t_16mib
