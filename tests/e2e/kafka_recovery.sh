#!/usr/bin/env bash
# kafka_recovery.sh -- the recovery question for Kafka, against the real
# broker (tests/brokers/kafka_broker_start.sh): a replica SIGKILLed mid-job with
# nothing else queued. Its offset is not committed, so the group's lag (what
# KEDA's kafka trigger reads, offsetResetPolicy earliest as in
# deploy/k8s/scaledjob-kafka.yaml) stays at 1: KEDA starts a replica, which
# gets the partition once the broker has expired the dead member's session
# (session.timeout.ms; the broker's minimum is 6000) and runs the message
# again to its final state. No sweep, and no new message, is needed.
. "$(dirname "$0")/../harness/lib.sh"

export TMPDIR_TEST=$T_DIR/kafka
. "$ROOT/tests/brokers/kafka_broker_start.sh"

kafka_broker_start || {
    kafka_broker_keep_log always
    echo "FAIL kafka recovery: the test broker did not start"
    exit 1
}
B=$KAFKA_BROKERS

# Every process's sanitizer reports to $T_DIR/san.* (lib.sh).
san_log_all

# The lag as KEDA's kafka trigger computes it: per partition, the high
# watermark minus the committed offset, or minus the low watermark when
# nothing is committed (offsetResetPolicy earliest). Debian's kafka-python.
lag() { # topic group
    timeout 30 /usr/bin/python3 - "$B" "$1" "$2" <<'PY'
import sys
from kafka import KafkaConsumer, TopicPartition
b, t, g = sys.argv[1:]
c = KafkaConsumer(bootstrap_servers=b, group_id=g, enable_auto_commit=False)
tps = [TopicPartition(t, p) for p in sorted(c.partitions_for_topic(t))]
end, beg = c.end_offsets(tps), c.beginning_offsets(tps)
lag = 0
for tp in tps:
    off = c.committed(tp)
    lag += end[tp] - (off if off is not None else beg[tp])
c.close()
print(lag)
PY
}

t_sigkill_nothing_queued() {
    kafka_broker_ctl create orph orph.results orph.status orph.dead || fail "create topics"
    printf '%s\n' '{"id":"ko1","input":{"duration":30}}' | kcat -P -b "$B" -t orph || fail "produce"
    local kp=(--source kafka --kafka "$B" --queue orph --group g-orph --kafka-prop session.timeout.ms=6000)
    start_replica "${kp[@]}" --idle-timeout 15 || return
    wait_for 15 grep -q 'running job' "$R_LOG" || fail "not running: $(tail -2 "$R_LOG")"
    kill -KILL "$R_PID"
    wait "$R_PID" 2>/dev/null
    # What KEDA reads: the message is still waiting work.
    assert_eq "$(lag orph g-orph)" 1 "lag after the kill"
    # KEDA starts a replica for it; nothing else is produced.
    local log=$T_DIR/second.log rc=0
    timeout -s KILL 40 "$ONESHOT" --port 0 --bind 127.0.0.1 "${kp[@]}" --idle-timeout 30 \
        --kafka-prop heartbeat.interval.ms=500 2>"$log" >/dev/null || rc=$?
    check_sanitizers "$log"
    assert_eq "$rc" 0 "the replica KEDA starts: exit code"
    assert_contains "$(grep '"msg":"claimed job' "$log")" '"job_id":"ko1"' "the same message"
    local st
    st=$(timeout 20 kcat -C -b "$B" -t orph.status -o beginning -e -q -u -f '%s\n')
    assert_contains "$(echo "$st" | tail -1)" '"id":"ko1","state":"succeeded"' "final status record"
    assert_eq "$(lag orph g-orph)" 0 "lag once it is done"
    san_check
}

t_run "kafka recovery: SIGKILL, nothing queued: lag stays 1, a new replica re-runs it after the session timeout" t_sigkill_nothing_queued

# consumer/kafka/README.md's re-drive recipe, as written there: the dead letter's
# key and the producer's bytes, produced to the queue with its id header;
# the job runs again (fresh attempts: no attempt header) to succeeded.
t_redrive_recipe() {
    kafka_broker_ctl create rdk rdk.results rdk.status rdk.dead || fail "create topics"
    local ok=$T_DIR/ok msg='{"id":"kr1", "input":{"n":1}}'
    local core=(--source kafka --kafka "$B" --queue rdk --group g-rdk --kafka-prop session.timeout.ms=6000
        --core exec --max-attempts 1 --idle-timeout 20 -- sh -c "cat >/dev/null; test -e '$ok'")
    printf '%s' "$msg" | kcat -P -b "$B" -t rdk -k cust-7 || fail "produce"
    local log=$T_DIR/dead.log rc=0
    timeout -s KILL 40 "$ONESHOT" --port 0 --bind 127.0.0.1 "${core[@]}" 2>"$log" >/dev/null || rc=$?
    assert_eq "$rc" 1 "the failing run: exit code"
    local h
    h=$(timeout 20 kcat -C -b "$B" -t rdk.dead -p 0 -o 0 -c 1 -e -q -f '%h')
    assert_contains "$h" 'state=dead' "dead letter headers"
    # --- the recipe (consumer/kafka/README.md, "Re-drive") ---
    cd "$T_DIR" || return
    kcat -C -b "$B" -t rdk.dead -p 0 -o 0 -c 1 -e -q -f '%h\n'             # check state= first
    kcat -C -b "$B" -t rdk.dead -p 0 -o 0 -c 1 -e -q -f '%k' >key
    kcat -C -b "$B" -t rdk.dead -p 0 -o 0 -c 1 -e -q -D '' -f '%s' >value
    kcat -P -b "$B" -t rdk -k "$(cat key)" -H id=kr1 value
    cd - >/dev/null || return
    # --- end of the recipe ---
    assert_eq "$(timeout 20 kcat -C -b "$B" -t rdk -p 0 -o 1 -c 1 -e -q -f '%k|%h|%s')" "cust-7|id=kr1|$msg" "the re-driven message"
    touch "$ok"
    rc=0
    timeout -s KILL 40 "$ONESHOT" --port 0 --bind 127.0.0.1 "${core[@]}" 2>"$log" >/dev/null || rc=$?
    check_sanitizers "$log"
    assert_eq "$rc" 0 "the re-driven job: exit code"
    assert_contains "$(timeout 20 kcat -C -b "$B" -t rdk.status -o beginning -e -q -u -f '%s\n' | tail -1)" \
        '"id":"kr1","state":"succeeded","attempt":1' "final status record"
    san_check
}

t_run "kafka recovery: consumer/kafka/README.md's re-drive recipe (kcat) runs the producer's bytes again to succeeded" t_redrive_recipe

# `oneshot redrive --source kafka --all`: the letters past the group
# <group>.redrive's offset, in order, as the producer's key, bytes and
# headers with `id`; a rejected letter stops its partition unless
# --rejected; --dry-run moves and commits nothing; a second run moves
# nothing twice.
t_redrive_kafka() {
    kafka_broker_ctl create rdo:1 rdo.results rdo.status rdo.dead:1 || fail "create topics"
    local ok=$T_DIR/ok2 rc out i
    local base=(--source kafka --kafka "$B" --queue rdo --group g-rdo)
    local core=("${base[@]}" --kafka-prop session.timeout.ms=6000 --core exec --max-attempts 1 --idle-timeout 20
        -- sh -c "cat >/dev/null; test -e '$ok'")
    printf '%s' '{"id":"k1","input":1}' | kcat -P -b "$B" -t rdo -k cust-1 -H trace=t1 || fail "produce"
    printf '%s' '{"id":"bad id!","input":2}' | kcat -P -b "$B" -t rdo || fail "produce"
    printf '%s' '{"id":"k3","input":3}' | kcat -P -b "$B" -t rdo || fail "produce"
    for i in 1 2 3; do
        timeout -s KILL 40 "$ONESHOT" --port 0 --bind 127.0.0.1 "${core[@]}" 2>>"$T_DIR/rdo.log" >/dev/null
    done
    assert_eq "$(timeout 20 kcat -C -b "$B" -t rdo.dead -o beginning -e -q -f '%h\n' | grep -o 'state=[a-z]*' | tr '\n' ' ')" \
        "state=dead state=rejected state=dead " "the dead letters"
    out=$("$ONESHOT" redrive "${base[@]}" --all --dry-run 2>"$T_DIR/e")
    assert_eq "$(echo "$out" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["count"], len(o["skipped"]))')" "1 1" "dry run ($out $(cat "$T_DIR/e"))"
    assert_eq "$(timeout 20 kcat -C -b "$B" -t rdo -o beginning -e -q -f 'x\n' | wc -l)" 3 "dry run: nothing produced"
    out=$("$ONESHOT" redrive "${base[@]}" --all 2>"$T_DIR/e")
    assert_eq "$(echo "$out" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["count"], o["moved"][0]["id"], o["skipped"][0]["state"])')" \
        "1 k1 rejected" "stops at the rejected letter ($out)"
    assert_eq "$(timeout 20 kcat -C -b "$B" -t rdo -o 3 -e -q -f '%k|%h|%s\n')" 'cust-1|trace=t1,id=k1|{"id":"k1","input":1}' \
        "the re-driven message: key, producer's headers, id, bytes"
    out=$("$ONESHOT" redrive "${base[@]}" --all --rejected 2>/dev/null)
    assert_eq "$(echo "$out" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["count"], [m["state"] for m in o["moved"]])')" \
        "2 ['rejected', 'dead']" "with --rejected, from where the last run stopped"
    assert_eq "$(timeout 20 kcat -C -b "$B" -t rdo -o 4 -e -q -f '%s\n' | head -1)" '{"id":"bad id!","input":2}' "the rejected one: the producer's bytes"
    out=$("$ONESHOT" redrive "${base[@]}" --all --rejected 2>/dev/null)
    assert_eq "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" 0 "nothing twice"
    rc=0
    "$ONESHOT" redrive "${base[@]}" k1 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 78 "one id on Kafka"
    touch "$ok"
    for i in 1 2 3; do
        timeout -s KILL 40 "$ONESHOT" --port 0 --bind 127.0.0.1 "${core[@]}" 2>>"$T_DIR/rdo2.log" >/dev/null
    done
    check_sanitizers "$T_DIR/rdo2.log"
    local st
    st=$(timeout 20 kcat -C -b "$B" -t rdo.status -o beginning -e -q -u -f '%s\n')
    assert_contains "$st" '"id":"k1","state":"succeeded","attempt":1' "k1 re-driven to succeeded"
    assert_contains "$st" '"id":"k3","state":"succeeded","attempt":1' "k3 re-driven to succeeded"
    san_check
}

t_run "kafka recovery: oneshot redrive --source kafka --all (in order, rejected only with --rejected, never twice)" t_redrive_kafka
