#!/usr/bin/env bash
# kafka.sh -- the Kafka source and store against a real
# Apache Kafka broker (tests/brokers/kafka_broker_start.sh: one JVM, KRaft, started
# once for this file), with kcat as the operator's producer and consumer.
#
# Replicas run with oneshot's own settings (session.timeout.ms 10000,
# heartbeat.interval.ms 1000) unless a test says otherwise. Every test has
# its own topics and group.
. "$(dirname "$0")/../harness/lib.sh"

export TMPDIR_TEST=$T_DIR/kafka
. "$ROOT/tests/brokers/kafka_broker_start.sh"

kafka_broker_start || {
    kafka_broker_keep_log always
    echo "FAIL kafka: the test broker did not start"
    exit 1
}
B=$KAFKA_BROKERS
# These tests name their jobs by their keys: the opt-in for producers whose
# keys are job ids. t_ids (and tests/e2e/kafka_ids.sh) test the default.
KP=(--kafka-key-is-id)

# topic NAME[:PARTITIONS]: the queue and its .results, .status and .dead.
topic() {
    local t=${1%%:*}
    kafka_broker_ctl create "$1" "$t.results" "$t.status" "$t.dead" || fail "create $1"
}

# produce TOPIC KEY VALUE [kcat args...]: one message, as an operator would
# (KEY "" = no key).
produce() {
    local t=$1 k=$2 v=$3
    shift 3
    if [ -n "$k" ]; then
        printf '%s\n' "$v" | kcat -P -b "$B" -t "$t" -k "$k" "$@" || fail "kcat produce to $t"
    else
        printf '%s\n' "$v" | kcat -P -b "$B" -t "$t" "$@" || fail "kcat produce to $t"
    fi
}

# consume TOPIC FORMAT: every message of TOPIC, one line each (without the
# results' `fence` header, a claim time: t_one_message checks it).
consume() { timeout 20 kcat -C -b "$B" -t "$1" -o beginning -e -q -u -f "$2" | sed -E 's/,fence=[0-9]+//'; }

# run_k SECS ARGS...: one replica in the foreground; sets RC and LOG.
run_k() {
    local secs=$1
    shift
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL "$secs" "$ONESHOT" --port 0 --bind 127.0.0.1 --source kafka --kafka "$B" "${KP[@]}" "$@" \
        2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

# start_k ARGS...: one replica in the background (R_PID, R_LOG).
start_k() { start_replica --source kafka --kafka "$B" "${KP[@]}" "$@"; }

# The id of the job a replica claimed ("" when none).
claimed() { grep '"msg":"claimed job' "$1" | head -1 | sed 's/.*"job_id":"\([^"]*\)".*/\1/'; }

# one_each GROUP N: the group is stable with N members holding one
# partition each (kafka_admin group: "member CLIENT HOST T:P ...").
one_each() {
    local d
    d=$(kafka_admin group "$1" 2>/dev/null) || return 1
    grep -q "^state=Stable members=$2 assigned=$2\$" <<<"$d" &&
        [ "$(grep -c '^member [^ ]* [^ ]* [^ ]*$' <<<"$d")" = "$2" ]
}

# The first error and warning lines of a log, for failure messages.
errors() { grep -E '"level":"(error|warn)"' "$1" | head -3 | sed 's/.*"msg":"//' | tr '\n' ' '; }

# A numeric field of the first log line that has it.
field() { grep -o "\"$2\":[0-9-]*" "$1" | head -1 | cut -d: -f2; }

t_one_message() {
    topic one
    produce one k1 '{"id":"k1","input":{"n":1}}'
    produce one k2 '{"input":{"n":2}}'
    produce one k3 'third'
    run_k 30 --queue one --group g-one --core echo --idle-timeout 15
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(claimed "$LOG")" k1 "job id"
    assert_eq "$(consume one.results '%k|%h|%s\n')" 'k1|state=succeeded,exit_code=0|{"n":1}' "results"
    local st
    st=$(consume one.status '%k|%h|%s\n')
    assert_eq "$(echo "$st" | wc -l)" 2 "status records"
    assert_contains "$(echo "$st" | head -1)" 'k1|state=running|{"id":"k1","state":"running"'
    assert_contains "$(echo "$st" | tail -1)" '"state":"succeeded"'
    assert_contains "$(echo "$st" | tail -1)" '"source":"kafka","queue":"one"'
    local fence
    fence=$(echo "$st" | tail -1 | grep -o '"fence":[0-9]*' | cut -d: -f2)
    assert_eq "$(timeout 20 kcat -C -b "$B" -t one.results -o beginning -e -q -u -f '%h\n')" \
        "state=succeeded,exit_code=0,fence=${fence:-none}" "the result's fence is the record's"
    local f
    for f in join_ms claim_ms flush_ms commit_ms close_ms; do
        [ -n "$(field "$LOG" $f)" ] || fail "no $f in the log"
    done
    assert_contains "$(cat "$LOG")" 'committed one [0] offset 1'
    check_json_lines "$LOG"
    # Exactly one was consumed: the next replica takes the second (offset 1).
    run_k 30 --queue one --group g-one --core echo --idle-timeout 15
    assert_eq "$RC" 0 "second replica: exit code"
    assert_eq "$(claimed "$LOG")" k2 "second replica: job id (the key)"
    assert_contains "$(cat "$LOG")" 'took the message at one [0] offset 1'
    # kcat as the operator's group consumer of the results
    local got
    got=$(timeout 20 kcat -b "$B" -G g-ops one.results -X auto.offset.reset=earliest -e -q -u -f '%k\n' 2>/dev/null |
        sort | tr '\n' ' ')
    assert_eq "$got" "k1 k2 " "results read by a kcat group consumer"
}

# Id: envelope "id", else header `id`, else topic:partition:offset; the
# key is only a partition key (without --kafka-key-is-id).
t_ids() {
    local KP=()
    topic ids
    produce ids "" 'no key, raw'
    produce ids 'bad key!' '{"input":"bad key"}'
    produce ids key-3 '{"id":"env-3","input":"both"}'
    produce ids key-4 '{"input":"a key"}'
    produce ids key-5 'raw' -H id=hdr-5
    run_k 30 --queue ids --group g-ids --core echo --idle-timeout 15
    assert_eq "$(claimed "$LOG")" "ids:0:0" "no key: topic:partition:offset"
    run_k 30 --queue ids --group g-ids --core echo --idle-timeout 15
    assert_eq "$(claimed "$LOG")" "ids:0:1" "a key (invalid as an id, and it need not be one)"
    run_k 30 --queue ids --group g-ids --core echo --idle-timeout 15
    assert_eq "$(claimed "$LOG")" "env-3" "the envelope's id"
    run_k 30 --queue ids --group g-ids --core echo --idle-timeout 15
    assert_eq "$(claimed "$LOG")" "ids:0:3" "a key is not the id"
    run_k 30 --queue ids --group g-ids --core echo --idle-timeout 15
    assert_eq "$(claimed "$LOG")" "hdr-5" "the id header"
    assert_eq "$(consume ids.results '%k=%s\n' | tr '\n' ' ')" \
        'ids:0:0=no key, raw ids:0:1=bad key env-3=both ids:0:3=a key hdr-5=raw ' "results by id"
}

# Failed with attempts left: a copy with attempt + 1 goes to the topic;
# then dead-lettered with error and attempts; both commits happen.
t_retry_dead() {
    topic rd
    produce rd rd1 '{"input":{"duration":0,"failed":true}}' -H trace=abc
    run_k 30 --queue rd --group g-rd --max-attempts 2 --idle-timeout 15
    assert_eq "$RC" 1 "attempt 1: exit code"
    assert_contains "$(cat "$LOG")" 're-queued to rd as attempt 2'
    local copy
    copy=$(consume rd '%o|%k|%h\n' | tail -1)
    assert_eq "$copy" '1|rd1|trace=abc,id=rd1,attempt=2' "the re-queued copy (offset|key|headers)"
    assert_contains "$(consume rd.status '%s\n' | tail -1)" '"state":"retrying"'
    run_k 30 --queue rd --group g-rd --max-attempts 2 --idle-timeout 15
    assert_eq "$RC" 1 "attempt 2: exit code"
    assert_eq "$(claimed "$LOG")" rd1 "attempt 2: same id"
    assert_contains "$(cat "$LOG")" 'claimed job (attempt 2)'
    local dead
    dead=$(consume rd.dead '%k|%h|%s\n')
    assert_contains "$dead" 'rd1|trace=abc,id=rd1,state=dead,error=Job failed as requested'
    assert_contains "$dead" 'attempts=2,origin=rd:0:1'
    assert_contains "$dead" '|{"input":{"duration":0,"failed":true}}'
    assert_contains "$(consume rd.status '%s\n' | tail -1)" '"state":"dead"'
    assert_eq "$(consume rd.results '%k|%h\n' | tail -1)" 'rd1|state=dead,exit_code=1' "last result"
    run_k 30 --queue rd --group g-rd --max-attempts 2 --idle-timeout 5
    assert_eq "$RC" 75 "nothing left: both were committed"
}

t_malformed() {
    topic bad
    produce bad m1 '{"id":"no spaces allowed","input":1}'
    produce bad m2 "$(printf 'x%.0s' $(seq 100))"
    produce bad m3 '{"input":"fine"}'
    run_k 30 --queue bad --group g-bad --idle-timeout 15 --max-input 50 --core echo
    assert_eq "$RC" 65 "bad id: exit code"
    local d
    d=$(consume bad.dead '%k|%h|%s\n')
    assert_contains "$d" 'm1|id=bad:0:0,state=rejected,error=envelope: "id" must be'
    assert_contains "$d" '|{"id":"no spaces allowed","input":1}'
    assert_contains "$(consume bad.status '%k|%s\n')" 'bad:0:0|{"id":"bad:0:0","state":"rejected"'
    run_k 30 --queue bad --group g-bad --idle-timeout 15 --max-input 50 --core echo
    assert_eq "$RC" 65 "over --max-input: exit code"
    assert_contains "$(consume bad.dead '%k|%h\n' | tail -1)" 'error=input of 100 bytes exceeds --max-input 50'
    run_k 30 --queue bad --group g-bad --idle-timeout 15 --max-input 50 --core echo
    assert_eq "$RC" 0 "the good one after both were committed"
    assert_eq "$(claimed "$LOG")" m3
}

# A result over the producer's message.max.bytes (1 MB by default) cannot be
# kept: the record says why and the job settles; raising it keeps it (and
# the topics' max.message.bytes, 1 MB by default on the broker).
t_big_result() {
    kafka_broker_ctl create big:1:max.message.bytes=2000000 big.results:1:max.message.bytes=2000000 big.status \
        big.dead || fail "create big"
    head -c 1200000 /dev/zero | tr '\0' 'y' >"$T_DIR/big"
    local i
    for i in 1 2; do
        { printf 'big%s:' "$i"; cat "$T_DIR/big"; echo; } |
            kcat -P -b "$B" -t big -K: -X message.max.bytes=2000000 || fail "kcat"
    done
    run_k 30 --queue big --group g-big --core echo --idle-timeout 15
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(consume big.results '%k|%h|%S\n')" "big1|state=succeeded,exit_code=0,error=result of 1200000 bytes \
exceeds the producer's message.max.bytes: raise it (--kafka-prop) and the topic's max.message.bytes|-1" "record"
    run_k 30 --queue big --group g-big --core echo --idle-timeout 15 --kafka-prop message.max.bytes=2000000
    assert_eq "$RC" 0 "raised: exit code"
    assert_eq "$(consume big.results '%k|%h|%S\n' | tail -1)" "big2|state=succeeded,exit_code=0|1200000" "raised: record"
    rm -f "$T_DIR/big"
}

t_idle() {
    topic idle
    run_k 30 --queue idle --group g-idle --idle-timeout 5
    assert_eq "$RC" 75 "empty topic: exit code"
    assert_not_contains "$(cat "$LOG")" 'committed'
    # Two replicas, one partition, one message: one runs it, the other has
    # no partition and leaves at --idle-timeout with nothing consumed.
    topic idle2
    produce idle2 i1 '{"input":{"duration":3}}'
    start_k --queue idle2 --group g-idle2 --idle-timeout 9 || return
    local a=$R_PID alog=$R_LOG
    start_k --queue idle2 --group g-idle2 --idle-timeout 9 || return
    local b=$R_PID blog=$R_LOG
    wait_exit "$a" 30
    local ra=$W_RC
    wait_exit "$b" 30
    local rb=$W_RC
    assert_eq "$(echo "$ra $rb" | tr ' ' '\n' | sort | tr '\n' ' ')" "0 75 " "exit codes"
    local idle=$alog
    [ "$ra" = 75 ] || idle=$blog
    assert_contains "$(cat "$idle")" '0 partition(s) (none free'
    assert_not_contains "$(cat "$idle")" 'committed'
    assert_eq "$(consume idle2.results '%k\n')" i1 "one result"
    check_sanitizers "$alog"
    check_sanitizers "$blog"
}

# Start offsets are resolved by oneshot (see consumer/kafka/README.md): a new group
# starts at the earliest offset of each partition (auto.offset.reset
# earliest, the default) or after the last message (latest), a group that
# committed at its committed offset.
t_start_offsets() {
    topic so:3
    local p line
    for p in 0 1 2; do produce so "" "{\"id\":\"so$p\",\"input\":$p}" -p "$p"; done
    run_k 30 --queue so --group g-so-late --idle-timeout 4 --kafka-prop auto.offset.reset=latest --log-level debug
    assert_eq "$RC" 75 "latest, new group: exit code"
    assert_eq "$(claimed "$LOG")" "" "latest, new group: nothing claimed"
    line=$(grep -o '"msg":"start offsets: [^"]*' "$LOG")
    for p in 0 1 2; do assert_contains "$line" "so [$p] 1" "latest, new group"; done
    run_k 30 --queue so --group g-so --core echo --idle-timeout 15 --log-level debug
    assert_eq "$RC" 0 "earliest, new group: exit code"
    line=$(grep -o '"msg":"start offsets: [^"]*' "$LOG")
    for p in 0 1 2; do assert_contains "$line" "so [$p] 0" "earliest, new group"; done
    local first
    first=$(claimed "$LOG")
    run_k 30 --queue so --group g-so --core echo --idle-timeout 15 --log-level debug
    assert_eq "$RC" 0 "earliest, committed group: exit code"
    line=$(grep -o '"msg":"start offsets: [^"]*' "$LOG")
    for p in 0 1 2; do
        if [ "so$p" = "$first" ]; then
            assert_contains "$line" "so [$p] 1" "committed group"
        else
            assert_contains "$line" "so [$p] 0" "committed group"
        fi
    done
    assert_not_contains "$(claimed "$LOG")" "$first" "the committed message again"
}

# SIGKILL mid-job: the dead member keeps its partition until the broker
# expires its session (session.timeout.ms, 6000 here); a replica started
# right away joins at once but gets the partition only then, and takes the
# message again. Measured: kill -> the new replica's claim.
t_sigkill() {
    topic kill
    produce kill sk1 '{"input":{"duration":30}}'
    local kp=(--kafka-prop session.timeout.ms=6000)
    start_k --queue kill --group g-kill --idle-timeout 15 "${kp[@]}" || return
    wait_for 15 grep -q 'running job' "$R_LOG" || fail "not running: $(tail -2 "$R_LOG")"
    local t0=$EPOCHREALTIME
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    produce kill sk2 '{"input":{"duration":0}}'
    run_k 40 --queue kill --group g-kill --idle-timeout 30 "${kp[@]}" --kafka-prop heartbeat.interval.ms=500
    assert_eq "$RC" 0 "second replica: exit code"
    assert_eq "$(claimed "$LOG")" sk1 "the same message, first"
    assert_contains "$(cat "$LOG")" 'committed kill [0] offset 1'
    local ms
    ms=$(python3 - "$t0" "$LOG" <<'PY'
import datetime, json, sys
t0 = float(sys.argv[1])
for l in open(sys.argv[2]):
    r = json.loads(l)
    if r["msg"].startswith("took the message"):
        t = datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        print(int(t.timestamp() * 1000 - t0 * 1000))
        break
PY
)
    echo "# kafka: SIGKILL mid-job -> the message taken again by a new replica after $ms ms (session.timeout.ms 6000)"
    [ -n "$ms" ] && [ "$ms" -ge 3000 ] && [ "$ms" -le 9000 ] ||
        fail "taken again after '$ms' ms: expected about the session timeout (6000)"
}

t_sigterm() {
    topic term
    produce term st1 '{"input":{"duration":30}}'
    start_k --queue term --group g-term --idle-timeout 15 --term-grace 0 || return
    wait_for 15 grep -q 'running job' "$R_LOG" || fail "not running: $(tail -2 "$R_LOG")"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 10 143 "exit code"
    assert_contains "$(cat "$R_LOG")" 'not committing term [0] offset 0'
    assert_contains "$(consume term.status '%s\n' | tail -1)" '"state":"interrupted"'
    start_k --queue term --group g-term --idle-timeout 15 || return
    wait_for 20 grep -q '"job_id":"st1","msg":"running job' "$R_LOG" || fail "not taken again: $(tail -2 "$R_LOG")"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
}

# The member stays in the group past max.poll.interval.ms because the
# heartbeat polls the consumer while the core runs; a replica joining
# mid-job makes the broker rebalance, which the busy member serves at once
# (its partition stays with it: nothing revoked).
t_long_job() {
    topic long
    produce long lj1 '{"input":{"duration":12}}'
    local kp=(--kafka-prop session.timeout.ms=6000 --kafka-prop max.poll.interval.ms=7000)
    start_k --queue long --group g-long --idle-timeout 15 "${kp[@]}" || return
    local a=$R_PID alog=$R_LOG
    wait_for 15 grep -q 'running job' "$alog" || fail "not running: $(tail -2 "$alog")"
    sleep 8 # the scenario, not a synchronisation: past max.poll.interval.ms since the claim
    run_k 30 --queue long --group g-long --idle-timeout 3 "${kp[@]}"
    assert_eq "$RC" 75 "a neighbour that finds nothing"
    assert_exit "$a" 30 0 "exit code" "$alog"
    assert_contains "$(cat "$alog")" 'committed long [0] offset 1'
    assert_not_contains "$(cat "$alog")" 'mid-job'
    assert_not_contains "$(cat "$alog")" 'max.poll'
}

t_broker_down() {
    topic down
    produce down dn1 '{"input":{"duration":3}}'
    start_k --queue down --group g-down --idle-timeout 15 --kafka-prop message.timeout.ms=2000 || return
    wait_for 15 grep -q 'running job' "$R_LOG" || fail "not running: $(tail -2 "$R_LOG")"
    kafka_broker_ctl down || fail "down"
    assert_exit "$R_PID" 20 69 "exit code"
    assert_contains "$(cat "$R_LOG")" 'leaving it to be redelivered'
    assert_not_contains "$(cat "$R_LOG")" 'committed'
    kafka_broker_ctl up || fail "up"
    run_k 40 --queue down --group g-down --idle-timeout 30
    assert_eq "$RC" 0 "after up: exit code"
    assert_eq "$(claimed "$LOG")" dn1 "the same message"
    assert_eq "$(consume down.results '%k|%h\n')" 'dn1|state=succeeded,exit_code=0' "one result"
}

t_unreachable() {
    local t0=$SECONDS
    run_k 20 --kafka 127.0.0.1:1 --queue none --group g-none --kafka-prop session.timeout.ms=6000
    assert_eq "$RC" 69 "exit code"
    [ $((SECONDS - t0)) -le 10 ] || fail "took $((SECONDS - t0)) s"
    assert_contains "$(cat "$LOG")" 'no Kafka broker reachable at 127.0.0.1:1 for 6000 ms'
}

t_props() {
    run_k 10 --queue p --kafka-prop no.such.thing=1
    assert_eq "$RC" 78 "unknown property"
    assert_contains "$(cat "$LOG")" '--kafka-prop no.such.thing: no such librdkafka property'
    run_k 10 --queue p --kafka-prop fetch.wait.max.ms=soon
    assert_eq "$RC" 78 "invalid value"
    run_k 10 --queue p --kafka-prop enable.auto.commit=true
    assert_eq "$RC" 78 "a property oneshot owns"
    run_k 10 --queue p --kafka-prop group.id=x
    assert_eq "$RC" 78 "group.id"
    assert_contains "$(cat "$LOG")" 'set it with --group'
    run_k 10 --queue p --kafka-prop security.protocol=sasl_plaintext --kafka-prop sasl.password=hunter2 \
        --kafka-prop sasl.mechanism=NOPE
    assert_eq "$RC" 78 "invalid SASL mechanism"
    assert_contains "$(cat "$LOG")" 'Unsupported SASL mechanism: NOPE'
    assert_not_contains "$(cat "$LOG")" hunter2
    # --kafka-prop reaches librdkafka: a TLS handshake with a plaintext broker
    run_k 20 --queue p --kafka-prop security.protocol=ssl --idle-timeout 15
    assert_eq "$RC" 69 "security.protocol=ssl against a plaintext broker"
}

t_submit() {
    topic sub
    local id out
    id=$("$ONESHOT" submit --source kafka --kafka "$B" --queue sub --id s-1 --deadline 60 '{"duration":0}')
    assert_eq "$?:$id" "0:s-1" "submit --id"
    out=$(echo 'from stdin' | "$ONESHOT" submit --source kafka --kafka "$B" --queue sub -)
    assert_eq "$?" 0 "submit from stdin"
    [ "${#out}" = 36 ] || fail "generated id '$out' is not a UUID"
    assert_eq "$(consume sub '%k|%s\n' | sed -n 1p)" 's-1|{"id":"s-1","input":{"duration":0},"deadline_s":60}' "envelope"
    assert_eq "$(consume sub '%k|%s\n' | tail -1)" "$out|{\"id\":\"$out\",\"input\":\"from stdin\\n\"}" "raw input"
    run_k 30 --queue sub --group g-sub --idle-timeout 15
    assert_eq "$RC" 0 "the replica runs it"
    assert_eq "$(claimed "$LOG")" s-1
    "$ONESHOT" submit --source kafka --kafka 127.0.0.1:1 --queue sub --kafka-prop message.timeout.ms=1000 x \
        >/dev/null 2>"$T_DIR/sub.err"
    assert_eq "$?" 69 "submit, broker unreachable"
    "$ONESHOT" submit --source kafka --kafka "$B" --queue sub --kafka-prop bogus=1 x >/dev/null 2>"$T_DIR/sub.err"
    assert_eq "$?" 78 "submit, bad property"
}

# The Redis store (status hash, result, idempotency by id) with the Kafka source.
t_redis_store() {
    . "$ROOT/tests/harness/redis_start.sh"
    redis_start || return
    topic rs
    produce rs r1 '{"input":{"k":1}}'
    run_k 30 --queue rs --group g-rs --store redis --redis "$RS_URL" --core echo --idle-timeout 15
    assert_eq "$RC" 0 "exit code"
    assert_eq "$(rcli HGET oneshot:job:r1 state)" succeeded "status hash"
    assert_eq "$(rcli HGET oneshot:job:r1 source)" kafka
    assert_eq "$(rcli GET oneshot:result:r1)" '{"k":1}' "result"
    # The same id again (a duplicate produce): acked without running.
    produce rs r1 '{"input":{"k":2}}'
    run_k 30 --queue rs --group g-rs --store redis --redis "$RS_URL" --core echo --idle-timeout 15
    assert_eq "$RC" 0 "duplicate: exit code"
    assert_contains "$(cat "$LOG")" 'already succeeded'
    assert_not_contains "$(cat "$LOG")" 'running job'
    assert_contains "$(cat "$LOG")" 'committed rs [0] offset 2'
    assert_eq "$(rcli GET oneshot:result:r1)" '{"k":1}' "result unchanged"
    assert_eq "$(consume rs.results '%k\n')" "" "nothing on the Kafka results topic"
    redis_kill
}

# 20 replicas one after another: each takes exactly one message, in order,
# none skipped, none repeated.
t_sequential() {
    topic seq
    local i want="" got=""
    for i in $(seq -w 1 20); do printf 'm%s:{"input":{"i":%d}}\n' "$i" "$((10#$i))"; done |
        kcat -P -b "$B" -t seq -K: || fail "kcat"
    for i in $(seq -w 1 20); do
        run_k 30 --queue seq --group g-seq --core echo --idle-timeout 15
        [ "$RC" = 0 ] || fail "replica $i: exit $RC: $(errors "$LOG")"
        got="$got $(claimed "$LOG")"
        want="$want m$i"
    done
    assert_eq "$got" "$want" "claimed, in order"
    assert_eq "$(consume seq.results '%k\n' | sort | uniq | wc -l)" 20 "distinct results"
    run_k 30 --queue seq --group g-seq --core echo --idle-timeout 5
    assert_eq "$RC" 75 "the 21st finds nothing"
}

# 4 replicas at once on 4 partitions take 4 distinct messages, queued once
# all four are in the group with a partition each.
t_concurrent() {
    topic par:4
    local p pids=() logs=() ids=""
    for p in 0 1 2 3; do
        start_k --queue par --group g-par --idle-timeout 40 || return
        pids+=("$R_PID")
        logs+=("$R_LOG")
    done
    wait_for 30 one_each g-par 4 || fail "not 4 members with a partition each: $(kafka_admin group g-par | tr '\n' ' ')"
    # One kcat call, so the four jobs end together; the keys hash (CRC32,
    # librdkafka's default partitioner) to partitions 3, 1, 2 and 0.
    printf '%s:{"input":{"duration":3}}\n' c0 c1 c4 c5 | kcat -P -b "$B" -t par -K: || fail "kcat"
    for p in 0 1 2 3; do
        assert_exit "${pids[$p]}" 50 0 "replica $p" "${logs[$p]}"
        [ "$W_RC" = 0 ] || fail "replica $p: $(errors "${logs[$p]}")"
        ids="$ids $(claimed "${logs[$p]}")"
    done
    assert_eq "$(echo "$ids" | tr -s ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')" "c0 c1 c4 c5 " "distinct jobs"
    run_k 30 --queue par --group g-par --idle-timeout 6
    assert_eq "$RC" 75 "all four committed"
}

# Replicas joining one after another while the earlier ones run their jobs,
# and leaving as they finish (durations 7, 5, 3, 1 s on partitions 0..3, a
# new replica started as soon as the previous one runs). A joiner makes the
# cooperative-sticky assignor move partitions off busy members; a busy
# member hands its held partition over only after it settled it (consumer/kafka/README.md),
# so no job is revoked and run twice. Checked: each job ran
# exactly once, every replica exits 0 without a "mid-job" warning, all
# four committed. Measured: each replica's start -> its claim.
t_neighbours() {
    topic nb:4
    local p pids=() logs=() runs
    for p in 0 1 2 3; do produce nb "" "{\"id\":\"nb$p\",\"input\":{\"duration\":$((7 - 2 * p))}}" -p "$p"; done
    for p in 0 1 2 3; do
        start_k --queue nb --group g-nb --idle-timeout 30 --log-level debug || return
        pids+=("$R_PID")
        logs+=("$R_LOG")
        wait_for 30 grep -q '"msg":"running job' "$R_LOG" || fail "replica $p runs no job: $(errors "$R_LOG")"
    done
    local lost=0
    for p in 0 1 2 3; do
        assert_exit "${pids[$p]}" 60 0 "replica $p" "${logs[$p]}"
        # a neighbour's join must never take a running job; a member the
        # broker fenced (it missed a rebalance under load: ILLEGAL_GENERATION)
        # loses its assignment, and its job is delivered again (consumer/kafka/README.md)
        assert_not_contains "$(cat "${logs[$p]}")" 'revoked mid-job' "replica $p"
        grep -q 'lost mid-job' "${logs[$p]}" && lost=$((lost + 1))
    done
    runs=$(cat "${logs[@]}" | grep '"msg":"running job' | sed 's/.*"job_id":"\([^"]*\)".*/\1/' | sort | tr '\n' ' ')
    assert_eq "$runs" "nb0 nb1 nb2 nb3 " "each job ran once"
    [ "$lost" = 0 ] || echo "# kafka: $lost replica(s) fenced by the broker mid-job (a missed rebalance under load); their job runs again"
    echo "# kafka: 4 replicas joining busy ones, start -> claim: $(for p in 0 1 2 3; do
        python3 - "${logs[$p]}" <<'PY'
import datetime, json, sys
ts = lambda r: datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
t = [r for r in recs if r["msg"].startswith("took the message")]
print(f"{(ts(t[0]) - ts(recs[0])) * 1000:.0f} ms" if t else "none", end=" ")
PY
    done)(deferred hand-overs: $(cat "${logs[@]}" | grep -c 'handing it over once'))"
    run_k 30 --queue nb --group g-nb --idle-timeout 5
    if [ "$lost" = 0 ]; then
        assert_eq "$RC" 75 "all four committed"
    else
        assert_eq "$RC" 0 "a fenced member's job, delivered again"
    fi
}

# More replicas than partitions: 4 replicas, 2 partitions, 2 jobs of 4 s.
# Two run them; the two extras get no partition (or an empty one once a
# job is done) and leave at --idle-timeout with 75, having taken and
# committed nothing; the two jobs are not revoked.
t_extras() {
    topic ex:2
    local p pids=() logs=() rcs="" ran=""
    for p in 0 1; do produce ex "" "{\"id\":\"ex$p\",\"input\":{\"duration\":4}}" -p "$p"; done
    for p in 0 1 2 3; do
        start_k --queue ex --group g-ex --idle-timeout 8 || return
        pids+=("$R_PID")
        logs+=("$R_LOG")
        wait_for 20 grep -q '"msg":"joined group' "$R_LOG" || fail "replica $p did not join: $(errors "$R_LOG")"
    done
    for p in 0 1 2 3; do
        wait_exit "${pids[$p]}" 40
        rcs="$rcs $W_RC"
        check_sanitizers "${logs[$p]}"
        if [ "$W_RC" = 75 ]; then
            assert_not_contains "$(cat "${logs[$p]}")" 'took the message' "extra replica $p"
            assert_not_contains "$(cat "${logs[$p]}")" 'committed' "extra replica $p"
        else
            ran="$ran $(claimed "${logs[$p]}")"
            # as in t_neighbours: a join never takes a running job; a member
            # the broker fenced under load ("lost") is said, not failed
            assert_not_contains "$(cat "${logs[$p]}")" 'revoked mid-job' "replica $p"
            grep -q 'lost mid-job' "${logs[$p]}" &&
                echo "# kafka: replica $p was fenced by the broker mid-job (a missed rebalance under load)"
        fi
    done
    assert_eq "$(echo "$rcs" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')" "0 0 75 75 " "exit codes"
    assert_eq "$(echo "$ran" | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')" "ex0 ex1 " "jobs run"
}

t_run "kafka: exactly one message, result and status topics, phase timings" t_one_message
t_run "kafka: job id from envelope, key, topic:partition:offset" t_ids
t_run "kafka: failed -> copy with attempt 2, then dead letter" t_retry_dead
t_run "kafka: malformed and oversized -> 65, dead-lettered, committed" t_malformed
t_run "kafka: a result too big for the producer is recorded as such" t_big_result
t_run "kafka: no message or no partition -> 75, nothing committed" t_idle
t_run "kafka: start offsets: earliest, latest, committed" t_start_offsets
t_run "kafka: SIGKILL mid-job -> a new replica gets the message after the session" t_sigkill
t_run "kafka: SIGTERM -> 143, not committed, taken again" t_sigterm
t_run "kafka: 12 s job with max.poll.interval.ms=7000 and a neighbour joining commits" t_long_job
t_run "kafka: broker down mid-job -> 69, taken again after up" t_broker_down
t_run "kafka: no broker reachable -> 69" t_unreachable
t_run "kafka: --kafka-prop checked (78) and passed to librdkafka" t_props
t_run "kafka: submit produces an envelope keyed by id" t_submit
t_run "kafka: Redis store with the Kafka source, idempotency by id" t_redis_store
t_run "kafka: 20 sequential replicas, one message each, in order" t_sequential
t_run "kafka: 4 concurrent replicas on 4 partitions, 4 distinct jobs" t_concurrent
t_run "kafka: replicas joining busy ones: no job revoked or run twice" t_neighbours
t_run "kafka: more replicas than partitions: the extras exit 75, nothing taken" t_extras
kafka_broker_stop
