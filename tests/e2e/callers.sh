#!/usr/bin/env bash
# callers.sh -- the examples of consumer/CALLERS.md, run exactly as written:
# each fenced block marked `<!-- test: NAME -->` is extracted and run as a
# caller would run it (Debian's /usr/bin/python3 with python3-redis and
# python3-kafka; node with ioredis from tests/callers, installed with
# npm ci), against a real redis-server and the real Kafka broker, with
# real replicas doing the jobs. The examples submit their own job and wait;
# the test only starts the replicas, and checks what the example printed,
# its exit code, and the result byte for byte.
. "$(dirname "$0")/../harness/lib.sh"
. "$ROOT/tests/harness/redis_start.sh"

DOC=$ROOT/consumer/CALLERS.md
NODE_DIR=$ROOT/tests/callers
PY=/usr/bin/python3

setup_fail() {
    echo "FAIL callers set-up: $*"
    exit 1
}

$PY -c 'import redis, kafka' 2>/dev/null ||
    setup_fail "/usr/bin/python3 lacks redis or kafka (python3-redis, python3-kafka: tests/harness/deps.sh installs them)"
command -v node >/dev/null && command -v npm >/dev/null || setup_fail "node and npm are needed (tests/harness/deps.sh)"

# npm ci when node_modules is missing or older than the lock file.
if ! cmp -s "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.oneshot-lock" 2>/dev/null; then
    (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$T_DIR/npm.log" 2>&1) ||
        setup_fail "npm ci: $(tail -3 "$T_DIR/npm.log" | tr '\n' ' ')"
    cp "$NODE_DIR/package-lock.json" "$NODE_DIR/node_modules/.oneshot-lock"
fi

# block NAME FILE: the fenced block after "<!-- test: NAME -->", as written.
block() {
    awk -v tag="<!-- test: $1 -->" '
        $0 == tag { want = 1; next }
        want && /^```/ { if (inside) { done = 1; exit } inside = 1; next }
        inside { print }
        END { exit done ? 0 : 1 }' "$DOC" >"$2" && [ -s "$2" ] ||
        setup_fail "no complete block marked '<!-- test: $1 -->' in consumer/CALLERS.md"
}
mkdir -p "$T_DIR/node"
block callers_redis_py "$T_DIR/redis_poll.py"
block callers_redis_node "$T_DIR/node/redis_poll.mjs"
block callers_kafka_py "$T_DIR/kafka_poll.py"
# The Node example imports ioredis as an installed package: it resolves
# from the script's folder, as in a caller's project.
ln -s "$NODE_DIR/node_modules" "$T_DIR/node/node_modules"

# A free TCP port on loopback: the examples take a redis:// URL.
RPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis_start --port "$RPORT" --bind 127.0.0.1 || setup_fail "redis-server: $T_WHY"
URL=redis://127.0.0.1:$RPORT/0

# The job's input, binary: a PNG signature, every byte value, 64 KiB of noise.
IN=$T_DIR/in.png
$PY -c 'import os, sys; sys.stdout.buffer.write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + os.urandom(65536))' >"$IN"

# Fails on the first attempt, then passes its input through.
cat >"$T_DIR/flaky.sh" <<'EOF'
#!/bin/sh
if [ "$ONESHOT_ATTEMPT" = 1 ]; then
    echo "first attempt fails" >&2
    exit 3
fi
exec cat
EOF
chmod +x "$T_DIR/flaky.sh"
FAILING=(/bin/sh -c 'echo "no such frame" >&2; exit 7')

# poll_bg KIND ARGS...: an example in the background (P_PID, P_OUT, P_ERR).
poll_bg() {
    local kind=$1
    shift
    P_OUT=$(mktemp "$T_DIR/out.XXXXXX")
    P_ERR=$(mktemp "$T_DIR/err.XXXXXX")
    case $kind in
    py) $PY "$T_DIR/redis_poll.py" --redis "$URL" "$@" >"$P_OUT" 2>"$P_ERR" & ;;
    node) node "$T_DIR/node/redis_poll.mjs" --redis "$URL" "$@" >"$P_OUT" 2>"$P_ERR" & ;;
    kafka) $PY "$T_DIR/kafka_poll.py" --kafka "$B" "$@" >"$P_OUT" 2>"$P_ERR" & ;;
    esac
    P_PID=$!
    T_PIDS+=("$P_PID")
}

# poll_done SECONDS EXIT: the example ends within SECONDS with EXIT.
poll_done() {
    wait_exit "$P_PID" "$1"
    assert_eq "$W_RC" "$2" "the example's exit code ($(tail -c 300 "$P_ERR" | tr '\n' ' '))"
}

# The job is retrying: the example, which re-reads the record at least
# every second, must still be waiting 3 s later.
still_waiting() {
    wait_exit "$P_PID" 3
    [ "$W_RC" = timeout ] && return 0
    fail "the example stopped at 'retrying' (exit $W_RC: $(tail -c 200 "$P_ERR"))"
    return 1
}

same_bytes() { # file
    cmp -s "$1" "$IN" || fail "result: $(wc -c <"$1") bytes, not the $(wc -c <"$IN") bytes expected"
}

subscribed() { [ "$(rcli PUBSUB NUMSUB oneshot:events | tail -1)" -ge 1 ]; }

# Redis: each case for the Python example on a redis-list queue and the
# Node one on a redis-stream queue.
replica() { # KIND QUEUE ARGS...
    local kind=$1 q=$2
    shift 2
    if [ "$kind" = py ]; then
        run_replica 30 --source redis-list --queue "$q" --idle-timeout 10 "$@"
    else
        run_replica 30 --source redis-stream --queue "$q" --group g-"$q" --idle-timeout 10 "$@"
    fi
}

# Binary bytes through an exec core, compared byte for byte.
redis_bytes() { # KIND
    local q=bytes-$1
    poll_bg "$1" --queue "$q" --id "png-$1" --timeout 30 "$IN"
    replica "$1" "$q" -- cat
    assert_eq "$RC" 0 "replica exit code"
    poll_done 15 0
    same_bytes "$P_OUT"
    assert_contains "$(cat "$P_ERR")" "job png-$1: succeeded, exit code 0, attempt 1" "summary"
}

# retrying is not final: the example waits for the second attempt.
redis_retry() { # KIND
    local q=retry-$1
    poll_bg "$1" --queue "$q" --id "flaky-$1" --timeout 30 "$IN"
    wait_for 10 subscribed || fail "the example never subscribed to oneshot:events"
    replica "$1" "$q" --max-attempts 2 -- "$T_DIR/flaky.sh"
    assert_eq "$RC" 3 "first replica's exit code"
    still_waiting || return
    replica "$1" "$q" --max-attempts 2 -- "$T_DIR/flaky.sh"
    assert_eq "$RC" 0 "second replica's exit code"
    poll_done 15 0
    same_bytes "$P_OUT"
    assert_contains "$(cat "$P_ERR")" "job flaky-$1: succeeded, exit code 0, attempt 2" "summary"
}

# A core that fails with its last attempt: the example says dead, with
# the exit code and the error, and exits with the job's code; the result
# of a program that printed nothing is the error as JSON (consumer/cores/README.md "exec").
redis_failed() { # KIND
    local q=failed-$1
    poll_bg "$1" --queue "$q" --id "bad-$1" --timeout 30 "$IN"
    replica "$1" "$q" --max-attempts 1 -- "${FAILING[@]}"
    assert_eq "$RC" 7 "replica exit code"
    poll_done 15 7
    assert_contains "$(cat "$P_ERR")" "job bad-$1: dead, exit code 7, attempt 1, error: exited with 7: no such frame, content type application/json, 41 bytes" \
        "summary"
    assert_eq "$(cat "$P_OUT")" '{"detail":"exited with 7: no such frame"}' "the result of a job that printed nothing"
}

# Final states that store no result: rejected (the input is over the
# replica's --max-input) and cancelled (`oneshot cancel` before a replica
# took the job): the example says so and prints nothing.
redis_rejected() { # KIND
    local q=rejected-$1
    poll_bg "$1" --queue "$q" --id "big-$1" --timeout 30 "$IN"
    replica "$1" "$q" --max-input 1k -- cat
    assert_eq "$RC" 65 "replica exit code"
    poll_done 15 65
    assert_contains "$(cat "$P_ERR")" "job big-$1: rejected, exit code 65" "summary"
    assert_contains "$(cat "$P_ERR")" "exceeds --max-input 1024, no result" "summary"
    [ -s "$P_OUT" ] && fail "a result was printed for a job that stored none"
}

redis_cancelled() { # KIND
    local q=cancelled-$1
    poll_bg "$1" --queue "$q" --id "stop-$1" --timeout 30 "$IN"
    wait_for 10 subscribed || fail "the example never subscribed to oneshot:events"
    oneshot_cli cancel "stop-$1" >/dev/null || fail "oneshot cancel failed"
    replica "$1" "$q" -- cat
    assert_eq "$RC" 0 "replica exit code"
    poll_done 15 0
    assert_contains "$(cat "$P_ERR")" "job stop-$1: cancelled, exit code 0" "summary"
    assert_contains "$(cat "$P_ERR")" "no result" "summary"
    [ -s "$P_OUT" ] && fail "a result was printed for a job that stored none"
}

# A record without result_bytes has no result of its own: attempt 1
# failed and left its output in P:result:<id>, then the job, back in the
# queue, was cancelled. The example must not print attempt 1's bytes.
redis_stale_result() { # KIND
    local q=stale-$1
    poll_bg "$1" --queue "$q" --id "stale-$1" --timeout 30 "$IN"
    replica "$1" "$q" --max-attempts 2 -- "$T_DIR/flaky.sh"
    assert_eq "$RC" 3 "first replica's exit code"
    [ -n "$(rcli GET "oneshot:result:stale-$1")" ] || fail "attempt 1 left no result (the case is not set up)"
    oneshot_cli cancel "stale-$1" >/dev/null || fail "oneshot cancel failed"
    poll_done 15 0
    assert_contains "$(cat "$P_ERR")" "job stale-$1: cancelled, exit code 0" "summary"
    assert_contains "$(cat "$P_ERR")" "no result" "summary"
    [ -s "$P_OUT" ] && fail "printed an earlier attempt's result: $(head -c 100 "$P_OUT")"
    assert_eq "$(rcli EXISTS "oneshot:result:stale-$1")" 0 "the cancel dropped attempt 1's result"
}

# An id nobody submitted: a clear message at the timeout, exit 75.
redis_unknown() { # KIND
    local t0=$SECONDS
    poll_bg "$1" --wait "nobody-$1" --timeout 1
    poll_done 10 75
    assert_contains "$(cat "$P_ERR")" "job nobody-$1 is without a record after 1 s: giving up" "message"
    [ $((SECONDS - t0)) -le 4 ] || fail "gave up after $((SECONDS - t0)) s, not about 1"
}

# A final record that no event announced (written here by hand, with the
# content type the record may carry): seen by the one-second re-read.
redis_missed_event() { # KIND
    local id=ghost-$1
    poll_bg "$1" --wait "$id" --timeout 30
    wait_for 10 subscribed || fail "the example never subscribed to oneshot:events"
    printf '\000\377png' | rcli -x SET "oneshot:result:$id" >/dev/null
    rcli HSET "oneshot:job:$id" id "$id" state succeeded exit_code 0 attempt 1 result_bytes 5 \
        content_type image/png >/dev/null
    poll_done 3 0
    assert_eq "$(od -An -tx1 "$P_OUT" | tr -d ' \n')" 00ff706e67 "result bytes"
    assert_contains "$(cat "$P_ERR")" "job $id: succeeded, exit code 0, attempt 1, content type image/png, 5 bytes" \
        "summary"
}

# The subscription killed while the example waits: it still sees the end.
redis_lost_subscription() { # KIND
    local q=lost-$1
    poll_bg "$1" --queue "$q" --id "lost-$1" --timeout 30 "$IN"
    wait_for 10 subscribed || fail "the example never subscribed to oneshot:events"
    rcli CLIENT KILL TYPE pubsub >/dev/null
    replica "$1" "$q" -- cat
    assert_eq "$RC" 0 "replica exit code"
    poll_done 15 0
    same_bytes "$P_OUT"
}

t_redis_py_bytes() { redis_bytes py; }
t_redis_py_retry() { redis_retry py; }
t_redis_py_failed() { redis_failed py; }
t_redis_py_unknown() { redis_unknown py; }
t_redis_py_stale_result() { redis_stale_result py; }
t_redis_py_rejected() { redis_rejected py; }
t_redis_py_cancelled() { redis_cancelled py; }
t_redis_py_missed_event() { redis_missed_event py; }
t_redis_py_lost_subscription() { redis_lost_subscription py; }
t_redis_node_bytes() { redis_bytes node; }
t_redis_node_retry() { redis_retry node; }
t_redis_node_failed() { redis_failed node; }
t_redis_node_unknown() { redis_unknown node; }
t_redis_node_stale_result() { redis_stale_result node; }
t_redis_node_rejected() { redis_rejected node; }
t_redis_node_cancelled() { redis_cancelled node; }
t_redis_node_missed_event() { redis_missed_event node; }
t_redis_node_lost_subscription() { redis_lost_subscription node; }

# Redis not there: one line and 69, no hang.
t_redis_unreachable() {
    local kind
    for kind in py node; do
        P_OUT=$(mktemp "$T_DIR/out.XXXXXX")
        P_ERR=$(mktemp "$T_DIR/err.XXXXXX")
        local rc=0
        if [ $kind = py ]; then
            timeout 20 $PY "$T_DIR/redis_poll.py" --redis redis://127.0.0.1:1/0 --timeout 5 "$IN" \
                >"$P_OUT" 2>"$P_ERR" || rc=$?
        else
            timeout 20 node "$T_DIR/node/redis_poll.mjs" --redis redis://127.0.0.1:1/0 --timeout 5 "$IN" \
                >"$P_OUT" 2>"$P_ERR" || rc=$?
        fi
        assert_eq "$rc" 69 "$kind: exit code ($(tail -c 300 "$P_ERR"))"
        assert_contains "$(cat "$P_ERR")" "redis_poll: Redis at redis://127.0.0.1:1/0" "$kind: message"
        assert_eq "$(wc -l <"$P_ERR")" 1 "$kind: lines on stderr"
    done
}

for t in bytes retry failed rejected cancelled stale_result unknown missed_event lost_subscription; do
    t_run "callers_redis_py_$t" "t_redis_py_$t"
done
for t in bytes retry failed rejected cancelled stale_result unknown missed_event lost_subscription; do
    t_run "callers_redis_node_$t" "t_redis_node_$t"
done
t_run callers_redis_unreachable t_redis_unreachable

# --- Kafka: the real broker ---

export TMPDIR_TEST=$T_DIR/kafka
. "$ROOT/tests/brokers/kafka_broker_start.sh"
kafka_broker_start || {
    kafka_broker_keep_log always
    echo "FAIL callers kafka: the test broker did not start"
    exit 1
}
B=$KAFKA_BROKERS

topic() { kafka_broker_ctl create "$1" "$1.results" "$1.status" "$1.dead" || fail "create $1"; }

# One Kafka replica in the foreground; sets RC and LOG.
kreplica() { # QUEUE ARGS...
    local q=$1
    shift
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL 60 "$ONESHOT" --port 0 --bind 127.0.0.1 --source kafka --kafka "$B" --queue "$q" \
        --group g-"$q" --idle-timeout 30 "$@" 2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

t_kafka_bytes() {
    topic kbytes
    poll_bg kafka --queue kbytes --id kpng --timeout 60 "$IN"
    kreplica kbytes -- cat
    assert_eq "$RC" 0 "replica exit code"
    poll_done 30 0
    same_bytes "$P_OUT"
    assert_contains "$(cat "$P_ERR")" "job kpng: succeeded, exit code 0, attempt 1" "summary"
}

t_kafka_retry() {
    topic kretry
    poll_bg kafka --queue kretry --id kflaky --timeout 60 "$IN"
    kreplica kretry --max-attempts 2 -- "$T_DIR/flaky.sh"
    assert_eq "$RC" 3 "first replica's exit code"
    still_waiting || return
    kreplica kretry --max-attempts 2 -- "$T_DIR/flaky.sh"
    assert_eq "$RC" 0 "second replica's exit code"
    poll_done 30 0
    same_bytes "$P_OUT"
    assert_contains "$(cat "$P_ERR")" "job kflaky: succeeded, exit code 0, attempt 2" "summary"
}

t_kafka_failed() {
    topic kfailed
    poll_bg kafka --queue kfailed --id kbad --timeout 60 "$IN"
    kreplica kfailed --max-attempts 1 -- "${FAILING[@]}"
    assert_eq "$RC" 7 "replica exit code"
    poll_done 30 7
    assert_contains "$(cat "$P_ERR")" "job kbad: dead, exit code 7, attempt 1, error: exited with 7: no such frame, content type application/json, 41 bytes" \
        "summary"
    assert_eq "$(cat "$P_OUT")" '{"detail":"exited with 7: no such frame"}' "the result of a job that printed nothing"
}

t_kafka_rejected() {
    topic krejected
    poll_bg kafka --queue krejected --id kbig --timeout 60 "$IN"
    kreplica krejected --max-input 1k -- cat
    assert_eq "$RC" 65 "replica exit code"
    poll_done 30 65
    assert_contains "$(cat "$P_ERR")" "job kbig: rejected, exit code 65" "summary"
    assert_contains "$(cat "$P_ERR")" "exceeds --max-input 1024, no result" "summary"
    [ -s "$P_OUT" ] && fail "a result was printed for a job that stored none"
}

# --wait reads from the start: a job that ended before the example ran
# (its records produced here by hand, with a content type), and an id
# nobody submitted (a clear message at the timeout, exit 75).
t_kafka_wait() {
    topic kwait
    printf 'hi' | kcat -P -b "$B" -t kwait.results -k done-1 -H state=succeeded -H exit_code=0 ||
        fail "kcat produce"
    printf '%s' '{"id":"done-1","state":"succeeded","exit_code":0,"attempt":1,"result_bytes":2,"content_type":"text/plain"}' |
        kcat -P -b "$B" -t kwait.status -k done-1 -H state=succeeded || fail "kcat produce"
    poll_bg kafka --queue kwait --wait done-1 --timeout 20
    poll_done 25 0
    assert_eq "$(cat "$P_OUT")" hi "result"
    assert_contains "$(cat "$P_ERR")" "job done-1: succeeded, exit code 0, attempt 1, content type text/plain, 2 bytes"
    local t0=$SECONDS
    poll_bg kafka --queue kwait --wait nobody --timeout 2
    poll_done 20 75
    assert_contains "$(cat "$P_ERR")" "job nobody is without a status record after 2 s: giving up" "message"
    [ $((SECONDS - t0)) -le 8 ] || fail "gave up after $((SECONDS - t0)) s, not about 2"
}

# No broker, or no such topics: one line and 69, no hang.
t_kafka_unusable() {
    local rc=0
    timeout 30 $PY "$T_DIR/kafka_poll.py" --kafka 127.0.0.1:1 --timeout 5 "$IN" >"$T_DIR/k.out" 2>"$T_DIR/k.err" ||
        rc=$?
    assert_eq "$rc" 69 "no broker: exit code ($(tail -c 300 "$T_DIR/k.err"))"
    assert_eq "$(cat "$T_DIR/k.err")" "kafka_poll: Kafka at 127.0.0.1:1: NoBrokersAvailable" "no broker: message"
    rc=0
    timeout 30 $PY "$T_DIR/kafka_poll.py" --kafka "$B" --queue nosuch --timeout 5 "$IN" >"$T_DIR/k.out" \
        2>"$T_DIR/k.err" || rc=$?
    assert_eq "$rc" 69 "no topics: exit code ($(tail -c 300 "$T_DIR/k.err"))"
    assert_eq "$(cat "$T_DIR/k.err")" "kafka_poll: Kafka at $B: KafkaError: topic nosuch.status does not exist" \
        "no topics: message"
    kcat -L -b "$B" 2>/dev/null | grep -q 'topic "nosuch' &&
        fail "the example created topic nosuch (nothing may be submitted to a queue nobody reads)"
}

t_run callers_kafka_py_unusable t_kafka_unusable
t_run callers_kafka_py_bytes t_kafka_bytes
t_run callers_kafka_py_retry t_kafka_retry
t_run callers_kafka_py_failed t_kafka_failed
t_run callers_kafka_py_rejected t_kafka_rejected
t_run callers_kafka_py_wait t_kafka_wait
[ "$T_FAILS" -eq 0 ]
