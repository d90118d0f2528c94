#!/usr/bin/env bash
# kafka_ids.sh -- Kafka job ids, the fence and the Kafka-only client
# (`status`, `wait`, `cancel` reading what the Kafka store wrote), against
# the real Apache Kafka broker (one for the file), with Debian's
# confluent-kafka and kafka-python under /usr/bin/python3 as the producers
# and readers a pipeline would use; and the same invalid id on every source
# (HTTP, redis-list, redis-stream, Kafka) for the rule they share.
. "$(dirname "$0")/../harness/lib.sh"

export TMPDIR_TEST=$T_DIR/kafka
. "$ROOT/tests/brokers/kafka_broker_start.sh"
. "$ROOT/tests/harness/redis_start.sh"

kafka_broker_start || {
    kafka_broker_keep_log always
    echo "FAIL kafka_ids: the test broker did not start"
    exit 1
}
B=$KAFKA_BROKERS
PY=/usr/bin/python3 # Debian's, with python3-confluent-kafka and python3-kafka

topic() {
    local t=${1%%:*}
    kafka_broker_ctl create "$1" "$t.results" "$t.status" "$t.dead" || fail "create $1"
}

# pyproduce TOPIC JSON: confluent-kafka produces each [key|null, value,
# [[header, value], ...]] of the JSON array, as given (bytes: UTF-8).
pyproduce() {
    "$PY" - "$B" "$1" "$2" <<'PY' || fail "confluent-kafka produce to $1"
import json, sys
from confluent_kafka import Producer
b, topic, msgs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
p = Producer({"bootstrap.servers": b})
for m in msgs:
    k = m[0].encode() if m[0] is not None else None
    h = [(n, v.encode()) for n, v in (m[2] if len(m) > 2 else [])]
    p.produce(topic, value=m[1].encode(), key=k, headers=h or None)
assert p.flush(20) == 0
PY
}

# pyconsume TOPIC: every message as one JSON line [key, value, [[h, v]...]]
# (kafka-python, from the start).
pyconsume() {
    "$PY" - "$B" "$1" <<'PY'
import json, sys
from kafka import KafkaConsumer
c = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], auto_offset_reset="earliest",
                  consumer_timeout_ms=3000, enable_auto_commit=False)
for m in c:
    print(json.dumps([m.key.decode() if m.key is not None else None, m.value.decode(),
                      [[n, v.decode()] for n, v in m.headers]]))
c.close()
PY
}

run_k() {
    local secs=$1
    shift
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL "$secs" "$ONESHOT" --port 0 --bind 127.0.0.1 --source kafka --kafka "$B" "$@" \
        2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

# kcli CMD ID ARGS...: a Kafka-only client command (no --redis); sets
# C_RC, C_OUT, C_ERR.
kcli() {
    local cmd=$1 id=$2
    shift 2
    C_RC=0
    "$ONESHOT" "$cmd" "$id" --kafka "$B" "$@" >"$T_DIR/c.out" 2>"$T_DIR/c.err" || C_RC=$?
    C_OUT=$(cat "$T_DIR/c.out")
    C_ERR=$(cat "$T_DIR/c.err")
    check_sanitizers "$T_DIR/c.err"
}

claimed() { grep '"msg":"claimed job' "$1" | head -1 | sed 's/.*"job_id":"\([^"]*\)".*/\1/'; }

# Two messages with one key are two jobs: ids topic:partition:offset, both
# run, both results under their own ids (the Kafka store), read back with
# kafka-python and with `oneshot status` / `wait`: neither is job
# "customer-7", and neither result record stands for the other.
t_same_key_kafka_store() {
    topic sk
    pyproduce sk '[["customer-7", "{\"input\":{\"n\":1}}"], ["customer-7", "{\"input\":{\"n\":2}}"]]'
    run_k 30 --queue sk --group g-sk --core echo --idle-timeout 15
    assert_eq "$RC" 0 "first: exit code"
    assert_eq "$(claimed "$LOG")" "sk:0:0" "first: id"
    run_k 30 --queue sk --group g-sk --core echo --idle-timeout 15
    assert_eq "$RC" 0 "second: exit code"
    assert_eq "$(claimed "$LOG")" "sk:0:1" "second: id"
    local r
    r=$(pyconsume sk.results)
    assert_contains "$r" '["sk:0:0", "{\"n\":1}", [["state", "succeeded"], ["exit_code", "0"], ["fence", '
    assert_contains "$r" '["sk:0:1", "{\"n\":2}", [["state", "succeeded"]'
    kcli status sk:0:1 --queue sk
    assert_eq "$C_RC" 0 "status: exit code ($C_ERR)"
    assert_contains "$C_OUT" '{"id":"sk:0:1","state":"succeeded"'
    kcli wait sk:0:0 --queue sk --timeout 20
    assert_eq "$C_RC" 0 "wait: exit code ($C_ERR)"
    assert_eq "$C_OUT" '{"n":1}' "wait: the result of the first"
    assert_contains "$C_ERR" '"id":"sk:0:0","state":"succeeded"'
    assert_not_contains "$C_ERR" "edis" "no Redis anywhere"
}

# The same with --store redis: the second message runs too (it is not
# acked as "already succeeded").
t_same_key_redis_store() {
    redis_start || return
    topic skr
    pyproduce skr '[["customer-7", "{\"input\":{\"n\":1}}"], ["customer-7", "{\"input\":{\"n\":2}}"]]'
    local i
    for i in 0 1; do
        run_k 30 --queue skr --group g-skr --store redis --redis "$RS_URL" --core echo --idle-timeout 15
        assert_eq "$RC" 0 "message $i: exit code"
        assert_contains "$(cat "$LOG")" 'running job' "message $i ran"
    done
    assert_eq "$(rcli GET oneshot:result:skr:0:0)" '{"n":1}' "first result"
    assert_eq "$(rcli GET oneshot:result:skr:0:1)" '{"n":2}' "second result"
    assert_eq "$(rcli HGET oneshot:job:skr:0:1 state)" succeeded
    # The ids' colons make keys with more colons, and nothing else: no
    # key other than the job's own two per id.
    assert_eq "$(rcli --scan --pattern 'oneshot:*skr*' | sort | tr '\n' ' ')" \
        "oneshot:job:skr:0:0 oneshot:job:skr:0:1 oneshot:result:skr:0:0 oneshot:result:skr:0:1 " "keys"
    # `oneshot submit` to Kafka with the Redis store writes the job's queued
    # record in Redis (so `wait` knows it), and a replica moves it on.
    "$ONESHOT" submit --source kafka --kafka "$B" --queue skr --store redis --redis "$RS_URL" --id skr-q '"q"' \
        >/dev/null || fail "submit"
    assert_eq "$(rcli HGET oneshot:job:skr-q state)" queued "the queued record"
    assert_eq "$(rcli HGET oneshot:job:skr-q source)" kafka "its source"
    run_k 30 --queue skr --group g-skr --store redis --redis "$RS_URL" --core echo --idle-timeout 15
    assert_eq "$RC" 0 "the submitted job: exit code"
    assert_eq "$(rcli HGET oneshot:job:skr-q state)" succeeded "moved on"
    redis_kill
}

# A producer's invalid id in a header is a rejected message: 65, and the
# dead letter carries the producer's key, exact value bytes and headers
# (its `id` included), with ours after them; the header is not skipped,
# and the job never runs under the key.
t_invalid_header_id() {
    topic bh
    pyproduce bh '[["k-1", "  {\"input\": 1}\n", [["id", "bad id!"], ["trace", "t-9"]]]]'
    run_k 30 --queue bh --group g-bh --core echo --idle-timeout 15
    assert_eq "$RC" 65 "exit code"
    assert_contains "$(grep '"level":"warn"' "$LOG")" 'header \"id\" must be'
    local d
    d=$(pyconsume bh.dead)
    assert_eq "$(echo "$d" | wc -l)" 1 "one dead letter"
    assert_contains "$d" '["k-1", "  {\"input\": 1}\n", [["id", "bad id!"], ["trace", "t-9"], ["id", "bh:0:0"], ["state", "rejected"], ["error", "header \"id\" must be'
    assert_contains "$(pyconsume bh.status)" '["bh:0:0", "{\"id\":\"bh:0:0\",\"state\":\"rejected\"'
    assert_eq "$(pyconsume bh.results)" "" "no result"
    run_k 30 --queue bh --group g-bh --core echo --idle-timeout 4
    assert_eq "$RC" 75 "committed: nothing left"
}

# --kafka-key-is-id: the key is the id; an invalid key is rejected (65),
# dead-lettered with the key.
t_key_is_id() {
    topic ki
    pyproduce ki '[["job-9", "{\"input\":\"a\"}"], ["bad key!", "{\"input\":\"b\"}"], [null, "{\"input\":\"c\"}"]]'
    run_k 30 --queue ki --group g-ki --core echo --idle-timeout 15 --kafka-key-is-id
    assert_eq "$RC" 0 "valid key: exit code ($(tail -2 "$LOG"))"
    assert_eq "$(claimed "$LOG")" job-9 "the key is the id"
    ONESHOT_KAFKA_KEY_IS_ID=true run_k 30 --queue ki --group g-ki --core echo --idle-timeout 15
    assert_eq "$RC" 65 "invalid key: exit code"
    assert_contains "$(pyconsume ki.dead)" '["bad key!", "{\"input\":\"b\"}", [["id", "ki:0:1"], ["state", "rejected"], ["error", "the key must be a job id'
    run_k 30 --queue ki --group g-ki --core echo --idle-timeout 15 --kafka-key-is-id
    assert_eq "$RC" 0 "no key: exit code"
    assert_eq "$(claimed "$LOG")" ki:0:2 "no key: topic:partition:offset"
    assert_contains "$("$ONESHOT" --help 2>&1)" '--kafka-key-is-id'
    assert_eq "$(ONESHOT_KAFKA_KEY_IS_ID=1 "$ONESHOT" --print-config 2>&1 | grep -c '"kafka-key-is-id":.1,')" 1 \
        "--print-config"
}

# An invalid id on every source: 65, a warn line with the reason, and what
# the producer sent kept (HTTP answers 400; list and stream dead letters
# carry the message; Kafka's above).
t_invalid_id_every_source() {
    redis_start || return
    # HTTP
    start_replica --core echo || return
    http POST "http://127.0.0.1:$R_PORT/job" -H 'X-Inference-Id: bad id!' -d 'x'
    assert_eq "$H_CODE" 400 "http: status"
    assert_exit "$R_PID" 10 65 "http: exit"
    assert_contains "$(grep '"level":"warn"' "$R_LOG")" 'X-Inference-Id must be' "http: warn line"
    # redis-list
    rcli LPUSH jobs ' {"id":"bad id!","input":1} ' >/dev/null
    run_replica 20 --source redis-list --core echo --idle-timeout 5
    assert_eq "$RC" 65 "list: exit"
    assert_contains "$(grep '"level":"warn"' "$LOG")" 'must be 1..' "list: warn line"
    assert_contains "$(rcli LPOP jobs.dead)" '"raw":" {\"id\":\"bad id!\",\"input\":1} "' "list: the producer's bytes"
    # redis-stream
    rcli XADD work '*' input x id 'bad id!' >/dev/null
    run_replica 20 --source redis-stream --queue work --core echo --idle-timeout 5
    assert_eq "$RC" 65 "stream: exit"
    assert_contains "$(grep '"level":"warn"' "$LOG")" 'must be 1..' "stream: warn line"
    assert_contains "$(rcli XRANGE work.dead - + | tr '\n' ' ')" ' id bad id! input x error ' "stream: the producer's fields"
    # Kafka: an invalid envelope id, recorded under the message's own id
    topic be
    pyproduce be '[["k", "{\"id\":\"bad id!\",\"input\":1}"]]'
    run_k 30 --queue be --group g-be --core echo --idle-timeout 15
    assert_eq "$RC" 65 "kafka: exit"
    assert_contains "$(pyconsume be.dead)" '["k", "{\"id\":\"bad id!\",\"input\":1}", [["id", "be:0:0"], ["state", "rejected"], ["error", "envelope: \"id\" must be'
    redis_kill
}

# late_records TOPIC A B: how many records replica A made once B owned
# the job (heartbeat_at after B's first started_at). A's claim record may
# reach the topic after B's (produced before A was stopped, delivered after
# it): that one is not A's doing once B owned the job.
late_records() {
    pyconsume "$1" | "$PY" -c '
import json, sys
recs = [json.loads(json.loads(l)[1]) for l in sys.stdin]
a, b = sys.argv[1], sys.argv[2]
b_start = min((r["started_at"] for r in recs if r["worker"] == b and "started_at" in r), default="~")
print(sum(1 for r in recs if r["worker"] == a and r.get("heartbeat_at", "") > b_start))' "$2" "$3"
}

# The fence: replica A takes the message and is stopped (SIGSTOP) past its
# session; B in the same group gets the partition, runs the job and writes
# its outcome; A, continued after its core's time is up, writes nothing
# final and exits 69; status and wait report B's outcome.
t_fence() {
    topic fe
    pyproduce fe '[["dev-1", "{\"id\":\"fe-1\",\"input\":{\"duration\":8}}"]]'
    local kp=(--kafka-prop session.timeout.ms=6000)
    start_replica --source kafka --kafka "$B" --queue fe --group g-fe --idle-timeout 40 "${kp[@]}" || return
    local a=$R_PID alog=$R_LOG
    wait_for 20 grep -q '"msg":"running job' "$alog" || fail "A did not start the job: $(tail -3 "$alog")"
    kill -STOP "$a"
    start_replica --source kafka --kafka "$B" --queue fe --group g-fe --idle-timeout 40 "${kp[@]}" || return
    local b=$R_PID blog=$R_LOG
    assert_exit "$b" 40 0 "B: exit code" "$blog"
    assert_contains "$(cat "$blog")" 'committed fe [0] offset 1' "B settled it"
    # A's core ran out its 8 s while stopped: it ends as soon as it runs.
    kill -CONT "$a"
    assert_exit "$a" 30 69 "A: exit code" "$alog"
    assert_contains "$(grep '"level":"error"' "$alog")" 'fe [0]' "A says why"
    local aw bw by
    aw=$(grep -o '"replica":"[^"]*' "$alog" | head -1 | cut -d'"' -f4)
    bw=$(grep -o '"replica":"[^"]*' "$blog" | head -1 | cut -d'"' -f4)
    # worker state fence, one line per status record, in the topic's order
    by=$(pyconsume fe.status | "$PY" -c '
import json, sys
for l in sys.stdin:
    r = json.loads(json.loads(l)[1])
    print(r["worker"], r["state"], r.get("fence", 0))')
    assert_eq "$(grep "^$aw " <<<"$by" | grep -vc ' running ')" 0 "A wrote nothing final: $by"
    assert_eq "$(grep "^$bw " <<<"$by" | grep -c ' succeeded ')" 1 "B's final record: $by"
    assert_eq "$(late_records fe.status "$aw" "$bw")" 0 "A wrote nothing once B owned the job: $by"
    local fa fb
    fa=$(grep "^$aw " <<<"$by" | head -1 | cut -d' ' -f3)
    fb=$(grep "^$bw " <<<"$by" | head -1 | cut -d' ' -f3)
    [ "${fb:-0}" -gt "${fa:-0}" ] || fail "B's fence $fb is not above A's $fa"
    kcli status fe-1 --queue fe
    assert_eq "$C_RC" 0 "status: exit code ($C_ERR)"
    assert_contains "$C_OUT" '"state":"succeeded"' "status: the final record"
    assert_contains "$C_OUT" "\"worker\":\"$bw\"" "status: B's record"
    kcli wait fe-1 --queue fe --timeout 20
    assert_eq "$C_RC" 0 "wait: exit code"
    assert_contains "$C_OUT" '"success":true' "wait: B's result"
    assert_contains "$C_ERR" "\"worker\":\"$bw\"" "wait: B's record"
}

# The fence, the job still running when the stopped replica A is continued
# (an exec job: the first run sleeps 30 s, the second 1 s): A's first
# heartbeat finds it went unserved past its session, stops the job and
# writes nothing more, not even an overdue heartbeat record after B's
# final one.
t_fence_running() {
    topic fr
    pyproduce fr '[["dev-1", "{\"id\":\"fr-1\",\"input\":\"x\"}"]]'
    local kp=(--kafka-prop session.timeout.ms=6000 --lease 6)
    local cmd=(--core exec -- sh -c 'if mkdir "$0" 2>/dev/null; then sleep 30; else sleep 1; fi; echo done' "$T_DIR/fr.mark")
    start_replica --source kafka --kafka "$B" --queue fr --group g-fr --idle-timeout 40 "${kp[@]}" "${cmd[@]}" || return
    local a=$R_PID alog=$R_LOG
    wait_for 20 grep -q '"msg":"running job' "$alog" || fail "A did not start the job: $(tail -3 "$alog")"
    kill -STOP "$a"
    start_replica --source kafka --kafka "$B" --queue fr --group g-fr --idle-timeout 40 "${kp[@]}" "${cmd[@]}" || return
    local b=$R_PID blog=$R_LOG
    assert_exit "$b" 40 0 "B: exit code" "$blog"
    kill -CONT "$a"
    assert_exit "$a" 30 69 "A: exit code" "$alog"
    assert_contains "$(grep '"level":"error"' "$alog")" 'fr [0]' "A says why"
    local aw bw by
    aw=$(grep -o '"replica":"[^"]*' "$alog" | head -1 | cut -d'"' -f4)
    bw=$(grep -o '"replica":"[^"]*' "$blog" | head -1 | cut -d'"' -f4)
    by=$(pyconsume fr.status | "$PY" -c '
import json, sys
for l in sys.stdin:
    r = json.loads(json.loads(l)[1])
    print(r["worker"], r["state"], r.get("fence", 0))')
    assert_eq "$(grep "^$aw " <<<"$by" | grep -vc ' running ')" 0 "A wrote nothing final: $by"
    assert_eq "$(late_records fr.status "$aw" "$bw")" 0 "A wrote nothing once B owned the job: $by"
    kcli wait fr-1 --queue fr --timeout 20
    assert_eq "$C_RC" 0 "wait: exit code"
    assert_eq "$C_OUT" done "wait: B's result"
    assert_contains "$C_ERR" "\"worker\":\"$bw\"" "wait: B's record"
}

# Kafka-only client: wait on an id it never saw says so at once (66);
# status of it: 66; `oneshot submit` writes a queued record; cancel
# refuses in one line (78); none
# of them says a word of a Redis connection.
t_client_kafka_only() {
    topic co
    kcli status nope-1 --queue co
    assert_eq "$C_RC" 66 "status unknown: exit code"
    assert_contains "$C_ERR" 'no record of job nope-1 on co.status'
    local t0=$SECONDS
    kcli wait nope-1 --queue co --timeout 30
    assert_eq "$C_RC" 66 "wait unknown: exit code (at once)"
    [ $((SECONDS - t0)) -le 10 ] || fail "wait on an unknown id took $((SECONDS - t0)) s"
    assert_contains "$C_ERR" 'no record of job nope-1 on co.status'
    kcli cancel nope-1 --queue co
    assert_eq "$C_RC" 78 "cancel: exit code"
    assert_eq "$(echo "$C_ERR" | wc -l)" 1 "cancel: one line"
    assert_contains "$C_ERR" 'the Kafka store keeps no cancel marks'
    assert_not_contains "$C_ERR" 'edis:' "cancel: no Redis connection error"
    "$ONESHOT" status nope-1 --source kafka --kafka "$B" --queue co >/dev/null 2>"$T_DIR/c.err"
    assert_contains "$(cat "$T_DIR/c.err")" 'no record of job nope-1' "--source kafka alone"
    # A job submitted with `oneshot submit`, then waited for while it runs.
    "$ONESHOT" submit --source kafka --kafka "$B" --queue co --id co-1 '{"duration":2}' >/dev/null || fail submit
    kcli status co-1 --queue co
    assert_eq "$C_RC" 0 "status of a submitted job"
    assert_contains "$C_OUT" '"state":"queued"' "submit wrote its queued record"
    "$ONESHOT" wait co-1 --kafka "$B" --queue co --timeout 40 >"$T_DIR/w.out" 2>"$T_DIR/w.err" &
    local w=$!
    run_k 30 --queue co --group g-co --idle-timeout 15
    assert_eq "$RC" 0 "replica: exit code"
    assert_exit "$w" 40 0 "wait while it runs: exit code" "$T_DIR/w.err"
    assert_contains "$(cat "$T_DIR/w.out")" '"success":true'
    assert_not_contains "$(cat "$T_DIR/c.err" "$T_DIR/w.err")" 'edis' "no Redis"
}

# The reader rule on records written as several owners would (consumer/kafka/README.md
# "Reader rule"): a final record stands against a later run's
# outcome, a lower fence never overwrites, and the result is the one with
# the valid record's fence.
t_reader_rule() {
    topic rr
    local r='{"id":"rr-1","state":"%s","fence":%d,"exit_code":%d,"worker":"w%d"}'
    local recs="" x
    for x in "running 100 -1 1" "running 200 -1 2" "running 150 -1 3" "succeeded 200 0 2" "running 100 -1 1" \
        "failed 300 1 4"; do
        # shellcheck disable=SC2086
        recs="$recs${recs:+, }[\"rr-1\", $(printf "$r" $x | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]"
    done
    pyproduce rr.status "[$recs]"
    pyproduce rr.results '[["rr-1", "from 100", [["state", "succeeded"], ["fence", "100"]]],
        ["rr-1", "from 200", [["state", "succeeded"], ["fence", "200"]]],
        ["rr-1", "from 300", [["state", "failed"], ["fence", "300"]]]]'
    kcli status rr-1 --queue rr
    assert_eq "$C_RC" 0 "status: exit code ($C_ERR)"
    assert_contains "$C_OUT" '"state":"succeeded"' "status: the first final record"
    assert_contains "$C_OUT" '"worker":"w2"' "status: its owner"
    kcli wait rr-1 --queue rr --timeout 20
    assert_eq "$C_RC" 0 "wait: the valid record's exit code"
    assert_eq "$C_OUT" "from 200" "wait: the result with the valid record's fence"
    # Not final yet: the highest fence's record, a stale one skipped.
    pyproduce rr.status '[["rr-2", "{\"id\":\"rr-2\",\"state\":\"running\",\"fence\":200,\"worker\":\"w2\"}"],
        ["rr-2", "{\"id\":\"rr-2\",\"state\":\"running\",\"fence\":100,\"worker\":\"w1\"}"]]'
    kcli status rr-2 --queue rr
    assert_contains "$C_OUT" '"worker":"w2"' "status: the stale record skipped"
    kcli wait rr-2 --queue rr --timeout 3
    assert_eq "$C_RC" 75 "wait: not final within --timeout"
    assert_contains "$C_ERR" 'job rr-2 is running after 3s'
}

# An HTTP job behind the Kafka store has no queue to go back to: SIGTERM
# and the watchdog's hard exit (a core that never stops) end its record
# final on the status topic, which `oneshot status` then reads.
t_http_kafka_store_final() {
    topic hk
    start_replica --kafka "$B" --queue hk --store kafka --term-grace 1 --core exec -- sleep 30 || return
    curl -s -m 20 -o /dev/null -H 'X-Inference-Id: hk-term' --data x "http://127.0.0.1:$R_PORT/job" &
    T_PIDS+=("$!")
    wait_for 20 grep -q '"msg":"running job' "$R_LOG" || fail "not running"
    kill -TERM "$R_PID"
    assert_exit "$R_PID" 20 143 "SIGTERM: exit code"
    kcli status hk-term --queue hk
    assert_contains "$C_OUT" '"state":"failed"' "SIGTERM: the record"
    assert_contains "$C_OUT" '"exit_code":143' "SIGTERM: the record"
    start_replica --kafka "$B" --queue hk --store kafka --deadline 4 --deadline-margin 2 --term-grace 1 \
        --core "plugin:$ROOT/$BUILD/plugins/stuck.so" || return
    curl -s -m 20 -o /dev/null -H 'X-Inference-Id: hk-hard' --data x "http://127.0.0.1:$R_PORT/job" &
    T_PIDS+=("$!")
    assert_exit "$R_PID" 20 124 "hard exit: exit code"
    kcli status hk-hard --queue hk
    assert_contains "$C_OUT" '"state":"timed_out"' "hard exit: the record"
}

t_run "kafka client: the reader rule picks the valid record and its result" t_reader_rule
t_run "kafka ids: one key, two messages, two jobs (Kafka store; status, wait)" t_same_key_kafka_store
t_run "kafka ids: one key, two messages, two jobs (--store redis)" t_same_key_redis_store
t_run "kafka ids: an invalid id header -> 65, dead letter with the producer's bytes" t_invalid_header_id
t_run "kafka ids: --kafka-key-is-id" t_key_is_id
t_run "ids: an invalid id on every source -> 65, the producer's bytes kept" t_invalid_id_every_source
t_run "kafka fence: a replica stopped past its session writes nothing final (69)" t_fence
t_run "kafka fence: a stopped replica continued mid-job stops and writes nothing more (69)" t_fence_running
t_run "kafka client: status, wait, cancel without Redis" t_client_kafka_only
t_run "HTTP job, Kafka store: SIGTERM and a hard exit leave a final record" t_http_kafka_store_final
kafka_broker_keep_log
echo "kafka_ids: $T_FAILS failed"
