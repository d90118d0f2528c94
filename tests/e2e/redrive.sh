#!/usr/bin/env bash
# redrive.sh -- `oneshot redrive` against a real redis-server: a dead job
# goes back as a fresh job (its id, the producer's bytes, attempts from 1),
# never as the dead letter; its dead record and cancel mark go in the same
# script, and the letter leaves the dead letters only with the job back in
# the queue. One id, --all, --dry-run, rejected letters only with
# --rejected (and then as the bytes the producer sent), for both sources.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

# Every process's sanitizer reports to $T_DIR/san.* (lib.sh).
san_log_all

S=(--source redis-stream --queue work)
OK=$T_DIR/ok # the exec core fails until this file exists
CORE=(--core exec --max-attempts 1 --idle-timeout 5 -- sh -c "cat >/dev/null; test -e '$OK'")

rjson() { # json expr
    python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# dead_list ID INPUT: a job that dies on its only attempt (redis-list).
dead_list() {
    rcli LPUSH jobs "{\"id\":\"$1\",\"input\":$2}" >/dev/null
    run_replica 20 --source redis-list "${CORE[@]}"
    [ "$RC" = 1 ] || fail "job $1: exit $RC, expected 1"
    [ "$(job_field "$1" state)" = dead ] || fail "job $1 is $(job_field "$1" state), not dead"
}

dead_stream() {
    rcli XADD work '*' id "$1" input "$2" >/dev/null
    run_replica 20 "${S[@]}" "${CORE[@]}"
    [ "$RC" = 1 ] || fail "job $1: exit $RC, expected 1"
    [ "$(job_field "$1" state)" = dead ] || fail "job $1 is $(job_field "$1" state), not dead"
}

t_list_one() {
    rcli FLUSHALL >/dev/null
    rm -f "$OK"
    dead_list d1 '{"n":1}'
    dead_list d2 '{"n":2}'
    rcli SET oneshot:cancel:d1 1 >/dev/null
    local out rc=0
    out=$(oneshot_cli redrive d1 2>"$T_DIR/e") || rc=$?
    assert_eq "$rc" 0 "exit code ($(cat "$T_DIR/e"))"
    assert_eq "$(rjson "$out" 'o["count"]')" 1 "count"
    assert_eq "$(rjson "$out" 'o["moved"][0]["id"]')" d1 "id"
    assert_eq "$(rjson "$out" 'o["moved"][0]["to"]')" jobs "to"
    # A fresh envelope: the id and the producer's input, no attempt, no dead-letter fields.
    assert_eq "$(rcli LRANGE jobs 0 -1)" '{"id":"d1","input":{"n":1}}' "the queue"
    assert_eq "$(rcli LLEN jobs.dead)" 1 "dead letters left"
    assert_contains "$(rcli LINDEX jobs.dead 0)" '"id":"d2"' "the other letter stays"
    assert_eq "$(rcli EXISTS oneshot:cancel:d1)" 0 "cancel mark"
    assert_eq "$(job_field d1 state)" queued "record reset to queued"
    assert_eq "$(rcli HEXISTS oneshot:job:d1 attempt)" 0 "no attempt of the dead run"
    assert_eq "$(rcli EXISTS oneshot:result:d1)" 0 "no result of the dead run"
    assert_eq "$(job_field d2 state)" dead "the other record"
    touch "$OK"
    run_replica 20 --source redis-list "${CORE[@]}"
    assert_eq "$RC" 0 "the redriven job: exit code"
    assert_eq "$(job_field d1 state)" succeeded
    assert_eq "$(job_field d1 attempt)" 1 "attempts start again"
    # an id with no letter
    rc=0
    oneshot_cli redrive nope >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 1 "unknown id: exit code"
    assert_contains "$(cat "$T_DIR/e")" 'no dead letter of job nope'
    san_check
}

t_list_all_dry_run() {
    rcli FLUSHALL >/dev/null
    rm -f "$OK"
    dead_list a1 1
    dead_list a2 2
    dead_list a3 3
    local before out
    before=$(rcli LRANGE jobs.dead 0 -1)
    out=$(oneshot_cli redrive --all --dry-run 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 3 "dry run: count"
    assert_eq "$(rjson "$out" 'o["dry_run"]')" True "dry run: flag"
    assert_eq "$(rcli LRANGE jobs.dead 0 -1)" "$before" "dry run: dead letters unchanged"
    assert_eq "$(rcli LLEN jobs)" 0 "dry run: queue"
    assert_eq "$(job_field a1 state)" dead "dry run: record"
    out=$(oneshot_cli redrive --all 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 3 "count"
    assert_eq "$(rjson "$out" '",".join(m["id"] for m in o["moved"])')" a1,a2,a3 "oldest first"
    assert_eq "$(rcli LLEN jobs.dead)" 0 "dead letters"
    touch "$OK"
    local i
    for i in 1 2 3; do
        run_replica 20 --source redis-list "${CORE[@]}"
        assert_eq "$RC" 0 "redriven job $i: exit code"
    done
    assert_eq "$(job_field a1 state)$(job_field a2 state)$(job_field a3 state)" succeededsucceededsucceeded "states"
    # a letter whose job ran again since is left
    rcli LPUSH jobs.dead '{"id":"a1","input":1,"state":"dead","error":"x","attempts":1}' >/dev/null
    out=$(oneshot_cli redrive --all 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 0 "stale letter: count"
    assert_contains "$(rjson "$out" 'o["skipped"][0]["why"]')" 'its record says succeeded' "stale letter: why"
    assert_eq "$(rcli LLEN jobs.dead)" 1 "stale letter stays"
    san_check
}

# A message rejected because it was too big: redriven only with
# --rejected, as the producer's exact bytes, and then it runs.
t_list_rejected() {
    rcli FLUSHALL >/dev/null
    local msg='{"id":"r1", "input":"0123456789abcdef"}'
    rcli LPUSH jobs "$msg" >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5 --max-input 10
    assert_eq "$RC" 65 "rejected: exit code"
    assert_eq "$(job_field r1 state)" rejected
    local out rc=0
    out=$(oneshot_cli redrive --all 2>/dev/null) || rc=$?
    assert_eq "$rc" 0 "--all without --rejected: exit code"
    assert_eq "$(rjson "$out" 'o["count"]')" 0 "not without --rejected"
    assert_contains "$(rjson "$out" 'o["skipped"][0]["why"]')" 'only with --rejected'
    rc=0
    oneshot_cli redrive r1 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 1 "the id without --rejected: exit code"
    assert_eq "$(rcli LLEN jobs.dead)" 1 "the letter stays"
    out=$(oneshot_cli redrive r1 --rejected 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 1 "with --rejected"
    assert_eq "$(rcli LRANGE jobs 0 -1)" "$msg" "the producer's bytes, not the dead letter"
    assert_eq "$(job_field r1 state)" queued "record reset"
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 0 "run: exit code"
    assert_eq "$(rcli GET oneshot:result:r1)" 0123456789abcdef "result"
    assert_eq "$(job_field r1 state)" succeeded
    # bytes a JSON string cannot carry come back exactly (raw_base64)
    rcli FLUSHALL >/dev/null
    printf '\xff\x00{"id":"b1"}  ' >"$T_DIR/bin"
    rcli -x LPUSH jobs <"$T_DIR/bin" >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5 --max-input 4
    assert_eq "$RC" 65 "binary rejected: exit code"
    assert_contains "$(rcli LINDEX jobs.dead 0)" '"raw_base64"' "binary letter"
    oneshot_cli redrive --all --rejected >/dev/null 2>&1
    rcli --raw LINDEX jobs 0 | head -c -1 >"$T_DIR/back"
    cmp -s "$T_DIR/bin" "$T_DIR/back" || fail "binary bytes: $(od -c "$T_DIR/back" | head -2)"
    san_check
}

t_stream_one_all_dry() {
    rcli FLUSHALL >/dev/null
    rm -f "$OK"
    dead_stream s1 one
    dead_stream s2 two
    local out before
    before=$(rcli XRANGE work.dead - +)
    out=$(oneshot_cli redrive "${S[@]}" --all --dry-run 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 2 "dry run: count"
    assert_eq "$(rcli XRANGE work.dead - +)" "$before" "dry run: unchanged"
    assert_eq "$(job_field s1 state)" dead "dry run: record"
    out=$(oneshot_cli redrive "${S[@]}" s1 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 1 "one: count"
    assert_eq "$(rcli XLEN work.dead)" 1 "one: dead letters left"
    # the fresh entry: the producer's fields only
    assert_eq "$(rcli XREVRANGE work + - COUNT 1 | tail -n +2 | tr '\n' ' ')" "id s1 input one " "the new entry"
    assert_eq "$(job_field s1 state)" queued "record reset"
    assert_eq "$(job_field s1 source)" redis-stream "source"
    touch "$OK"
    run_replica 20 "${S[@]}" "${CORE[@]}"
    assert_eq "$RC" 0 "redriven: exit code"
    assert_eq "$(job_field s1 state)" succeeded
    assert_eq "$(job_field s1 attempt)" 1 "attempt"
    out=$(oneshot_cli redrive "${S[@]}" --all 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["moved"][0]["id"]')" s2 "all"
    run_replica 20 "${S[@]}" "${CORE[@]}"
    assert_eq "$(job_field s2 state)" succeeded
    assert_eq "$(rcli XLEN work.dead)" 0 "no dead letters"
    san_check
}

t_stream_rejected() {
    rcli FLUSHALL >/dev/null
    rcli XADD work '*' id sr1 input 0123456789abcdef note kept >/dev/null
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5 --max-input 10
    assert_eq "$RC" 65 "rejected: exit code"
    local out
    out=$(oneshot_cli redrive "${S[@]}" --all 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 0 "without --rejected"
    out=$(oneshot_cli redrive "${S[@]}" --all --rejected 2>/dev/null)
    assert_eq "$(rjson "$out" 'o["count"]')" 1 "with --rejected"
    assert_eq "$(rcli XREVRANGE work + - COUNT 1 | tail -n +2 | tr '\n' ' ')" "id sr1 input 0123456789abcdef note kept " "the producer's fields"
    run_replica 20 "${S[@]}" --core echo --idle-timeout 5
    assert_eq "$RC" 0 "run: exit code"
    assert_eq "$(rcli GET oneshot:result:sr1)" 0123456789abcdef "result"
    san_check
}

t_bad_input() {
    rcli FLUSHALL >/dev/null
    local rc
    for args in "" "x1 --all" "--source http --all" "--source kafka k1" "bad!id"; do
        rc=0
        # shellcheck disable=SC2086
        oneshot_cli redrive $args >/dev/null 2>"$T_DIR/e" || rc=$?
        assert_eq "$rc" 78 "redrive $args"
    done
    rc=0
    "$ONESHOT" redrive --all --redis "unix://$T_DIR/nowhere.sock" >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 69 "Redis unreachable"
    rc=0
    "$ONESHOT" redrive --source kafka --kafka 127.0.0.1:1 --all >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 69 "Kafka unreachable"
    assert_contains "$(cat "$T_DIR/e")" 'metadata of jobs.dead'
    rcli LPUSH jobs.dead '{"id":"w1","input":1,"state":"dead"}' >/dev/null
    rcli SET jobs x >/dev/null
    rc=0
    oneshot_cli redrive --all >/dev/null 2>"$T_DIR/e" || rc=$?
    assert_eq "$rc" 69 "queue of another type"
    assert_contains "$(cat "$T_DIR/e")" 'WRONGTYPE jobs'
    assert_eq "$(rcli LLEN jobs.dead)" 1 "the letter stays"
    rcli DEL jobs >/dev/null
    rcli LPUSH jobs.dead 'not json' >/dev/null
    local out
    out=$(oneshot_cli redrive --all 2>/dev/null)
    assert_contains "$out" 'not a oneshot dead letter' "foreign letter"
    assert_eq "$(rjson "$out" 'o["count"]')" 1 "the good one moved"
    assert_eq "$(rcli LRANGE jobs.dead 0 -1)" 'not json' "the foreign one stays"
    san_check
}

t_run "redrive: redis-list one id, record and cancel mark reset, runs to succeeded" t_list_one
t_run "redrive: redis-list --all and --dry-run; a letter of a job run since is left" t_list_all_dry_run
t_run "redrive: redis-list rejected only with --rejected, as the producer's bytes" t_list_rejected
t_run "redrive: redis-stream one id, --all, --dry-run" t_stream_one_all_dry
t_run "redrive: redis-stream rejected only with --rejected, as the producer's fields" t_stream_rejected
t_run "redrive: bad input" t_bad_input
