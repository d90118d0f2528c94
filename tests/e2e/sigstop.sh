#!/usr/bin/env bash
# sigstop.sh -- a replica stopped (SIGSTOP) longer than its lease, whose
# job another replica has taken over and finished meanwhile, is resumed
# (SIGCONT): it must notice that its claim is lost, log it, record it in
# its termination log, and exit 69 without acknowledging, re-queueing or
# overwriting anything (consumer/README.md). On redis-list and
# redis-stream, in two ways each:
#   - the replica alone is stopped (its program runs on and ends while it
#     is stopped: on resume the end of the job and the lost claim race);
#   - the replica and its program are stopped together (a frozen
#     container: on resume the program is still running and is cancelled).
# The job's program sleeps only on attempt 1 (ONESHOT_ATTEMPT), so the
# replica that takes the job over (attempt 2) finishes at once.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

JOB=$T_DIR/job.sh
export SIGSTOP_LOG=$T_DIR/executions.log
cat >"$JOB" <<'EOF'
#!/bin/sh
echo "$ONESHOT_JOB_ID $ONESHOT_ATTEMPT $$ start" >>"$SIGSTOP_LOG"
[ "$ONESHOT_ATTEMPT" = 1 ] && sleep "${SLOW_S:-15}"
echo "$ONESHOT_JOB_ID $ONESHOT_ATTEMPT $$ end" >>"$SIGSTOP_LOG"
echo "attempt $ONESHOT_ATTEMPT by $$"
EOF
chmod +x "$JOB"

# The replica id (W) in a replica's log.
worker_of() { grep -o '"replica":"[^"]*"' "$1" | head -1 | cut -d'"' -f4; }

# The record as one line, fields sorted (to compare before and after).
record() { rcli HGETALL oneshot:job:st1 | paste - - | sort | tr '\n' ' '; }

# A's claim has run out: its lease key is gone (list), its entry idle
# longer than the lease (stream).
lease_gone() { # source W
    if [ "$1" = redis-list ]; then
        [ "$(rcli EXISTS "oneshot:lease:$2")" = 0 ]
    else
        local idle
        idle=$(rcli XPENDING jobs oneshot - + 1 | sed -n 3p)
        [ "${idle:-0}" -gt 3200 ]
    fi
}

# sigstop SOURCE MODE: MODE "replica" (the replica alone) or "tree" (the
# replica and its program).
sigstop() {
    local src=$1 mode=$2 a alog aterm wa wb before after slow
    rcli FLUSHALL >/dev/null
    : >"$SIGSTOP_LOG"
    if [ "$src" = redis-list ]; then
        rcli LPUSH jobs '{"id":"st1","input":"x"}' >/dev/null
    else
        rcli XADD jobs '*' input x id st1 >/dev/null
    fi
    # replica: the program outlives the lease but ends before the resume;
    # tree: the program would run 15 s
    slow=15
    [ "$mode" = replica ] && slow=4
    aterm=$T_DIR/a.term
    SLOW_S=$slow start_replica --source "$src" --redis "$RS_URL" --lease 3 --idle-timeout 5 \
        --termination-log "$aterm" -- "$JOB" || return
    a=$R_PID
    alog=$R_LOG
    wait_for 10 grep -q "st1 1 [0-9]* start" "$SIGSTOP_LOG" || {
        fail "A did not start the job: $(tail -2 "$alog")"
        return
    }
    wa=$(worker_of "$alog")
    local prog
    prog=$(awk '$2 == 1 && $4 == "start" { print $3 }' "$SIGSTOP_LOG")
    if [ "$mode" = tree ]; then
        kill -STOP -- "-$prog" "$a" # the program's own process group, and A
    else
        kill -STOP "$a"
    fi
    wait_for 10 lease_gone "$src" "$wa" || {
        fail "A's claim did not run out"
        kill -KILL "$a" -- "-$prog"
        return
    }
    # B takes the job over and finishes it (attempt 2)
    run_replica 20 --source "$src" --lease 3 --idle-timeout 5 -- "$JOB"
    wb=$(worker_of "$LOG")
    assert_eq "$RC" 0 "B's exit code"
    assert_eq "$(rcli HGET oneshot:job:st1 state)" succeeded "state after B"
    assert_eq "$(rcli HGET oneshot:job:st1 worker)" "$wb" "worker after B"
    assert_eq "$(rcli HGET oneshot:job:st1 attempt)" 2 "attempt after B"
    assert_contains "$(rcli GET oneshot:result:st1)" "attempt 2 by" "B's result"
    if [ "$mode" = replica ]; then
        # A's program ends while A is stopped
        wait_for 10 grep -q "st1 1 [0-9]* end" "$SIGSTOP_LOG" || fail "A's program did not end"
    fi
    before="$(record) | $(rcli GET oneshot:result:st1)"
    [ "$T_FAILED" = 0 ] || {
        kill -KILL "$a" -- "-$prog"
        return
    }
    # resume A: it must notice and leave without touching anything
    if [ "$mode" = tree ]; then
        kill -CONT -- "$a" "-$prog"
    else
        kill -CONT "$a"
    fi
    assert_exit "$a" 20 69 "A's exit code after SIGCONT" "$alog"
    after="$(record) | $(rcli GET oneshot:result:st1)"
    assert_eq "$after" "$before" "the record and result after A resumed"
    assert_contains "$(cat "$alog")" '"msg":"claim lost: ' "A's log"
    assert_contains "$(cat "$alog")" 'not writing the status or settling: the claim was lost' "A's log"
    assert_not_contains "$(cat "$alog")" 're-queued' "A's log"
    assert_not_contains "$(cat "$alog")" 'given back' "A's log"
    assert_contains "$(cat "$aterm" 2>/dev/null)" '"exit_code":69' "A's termination log"
    assert_contains "$(cat "$aterm" 2>/dev/null)" '"state":"interrupted"' "A's termination log"
    if [ "$mode" = tree ]; then
        assert_eq "$(grep -c "st1 1 [0-9]* end" "$SIGSTOP_LOG")" 0 "A's program was cancelled"
        kill -0 "$prog" 2>/dev/null && fail "A's program $prog still runs"
    fi
    # nothing pending, nothing queued twice, nothing dead
    if [ "$src" = redis-list ]; then
        assert_eq "$(rcli LLEN jobs)" 0 "queue"
        assert_eq "$(rcli --scan --pattern 'jobs:processing:*' | wc -l)" 0 "processing lists"
        assert_eq "$(rcli LLEN jobs.dead)" 0 "dead letters"
    else
        assert_eq "$(rcli XPENDING jobs oneshot | head -1)" 0 "pending entries"
        assert_eq "$(rcli XLEN jobs)" 1 "stream entries (no copy re-queued)"
        assert_eq "$(rcli XLEN jobs.dead)" 0 "dead letters"
    fi
}

t_list_replica() { sigstop redis-list replica; }
t_list_tree() { sigstop redis-list tree; }
t_stream_replica() { sigstop redis-stream replica; }
t_stream_tree() { sigstop redis-stream tree; }

t_run "sigstop redis-list: replica stopped past its lease, its program ended meanwhile: exit 69, B's record kept" \
    t_list_replica
t_run "sigstop redis-list: replica and program stopped past the lease: program cancelled, exit 69, B's record kept" \
    t_list_tree
t_run "sigstop redis-stream: replica stopped past its lease, its program ended meanwhile: exit 69, B's record kept" \
    t_stream_replica
t_run "sigstop redis-stream: replica and program stopped past the lease: program cancelled, exit 69, B's record kept" \
    t_stream_tree
