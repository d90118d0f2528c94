#!/usr/bin/env bash
# input_bytes.sh -- ids and inputs are exactly what the producer sent:
# an id holding a byte outside its alphabet (an escaped NUL
# included) is rejected with 65 (redis-list and Kafka envelopes, the
# stream's id field; libmicrohttpd cuts an HTTP header at a NUL before we
# see it: tests/README.md, Reliability), a string input holding NUL reaches the core
# whole, and every retry, sweep re-queue and dead letter carries the
# producer's bytes, surrounding whitespace included.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

L=(--source redis-list --idle-timeout 5)
S=(--source redis-stream --idle-timeout 5)

# A redis-cli reply's bytes into a file, without the newline redis-cli adds.
rbytes() { # file args...
    local f=$1
    shift
    rcli "$@" | head -c -1 >"$f"
}

# The first entry's value of a field of a stream, raw (stream_field STREAM FIELD).
stream_field() {
    rcli EVAL "local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not e then return nil end
for i = 1, #e[2], 2 do if e[2][i] == ARGV[1] then return e[2][i + 1] end end" 1 "$1" "$2"
}

# The input bytes an envelope (a re-queued one, or a dead letter) carries,
# as job_parse_envelope reads them: "input_base64" decoded, a string
# "input" as its text, any other "input" as the bytes written in the
# envelope (cut out of its text, not re-printed).
envelope_input() { # envelope-file out-file
    python3 - "$1" "$2" <<'PY' || fail "envelope $(head -c 200 "$1") has no input"
import base64, json, re, sys
text = open(sys.argv[1], "rb").read().decode("utf-8")
env = json.loads(text)
if "input_base64" in env:
    out = base64.b64decode(env["input_base64"])
elif isinstance(env["input"], str):
    out = env["input"].encode("utf-8")
else:
    m = re.search(r'[{,]\s*"input"\s*:\s*', text)
    _, end = json.JSONDecoder().raw_decode(text, m.end())
    out = text[m.end():end].encode("utf-8")
open(sys.argv[2], "wb").write(out)
PY
}

# Two files hold the same bytes.
same_bytes() { # got want what
    cmp -s "$1" "$2" || fail "$3: got '$(od -An -c "$1" 2>/dev/null | tr -s ' \n' ' ' | head -c 200)', expected '$(od -An -c "$2" | tr -s ' \n' ' ' | head -c 200)'"
}

# A failing exec core that keeps each attempt's input in $T_DIR/seen.N.
FAILING=(--core exec -- sh -c 'cat >"$0.$ONESHOT_ATTEMPT"; exit 3' "$T_DIR/seen")

# ---- ids: a byte outside the alphabet is rejected, never cut ----

# {"id":"batch\u0000A"} must not become id "batch" (a later job "batch"
# would then be acked as already succeeded without running).
t_list_nul_id() {
    local m
    for m in '{"id":"batch\u0000A","input":"first"}' '{"id":"batch\u0000","input":"first"}'; do
        rcli FLUSHALL >/dev/null
        rcli LPUSH jobs "$m" >/dev/null
        run_replica 20 "${L[@]}" --core echo
        assert_eq "$RC" 65 "$m: exit code"
        assert_eq "$(rcli EXISTS oneshot:result:batch oneshot:job:batch)" 0 "$m: nothing recorded under 'batch'"
        local d
        d=$(rcli LINDEX jobs.dead 0)
        assert_contains "$d" '"state":"rejected"' "$m: dead letter"
        assert_contains "$d" '"error":"envelope: \"id\" must be' "$m: dead letter's reason"
        rbytes "$T_DIR/dl" LINDEX jobs.dead 0
        python3 -c 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["raw"])' "$T_DIR/dl" >"$T_DIR/raw" 2>/dev/null
        printf '%s' "$m" >"$T_DIR/want"
        same_bytes "$T_DIR/raw" "$T_DIR/want" "$m: dead letter's raw message"
        rcli LPUSH jobs '{"id":"batch","input":"second"}' >/dev/null
        run_replica 20 "${L[@]}" --core echo
        assert_eq "$RC" 0 "$m: then job 'batch': exit code"
        assert_eq "$(rcli GET oneshot:result:batch)" second "$m: then job 'batch' ran"
    done
}

# A string input holding NUL reaches the core whole (exec: its stdin; echo:
# the stored result); an input_base64 string holding NUL is not cut either.
t_list_nul_input() {
    rcli FLUSHALL >/dev/null
    rcli LPUSH jobs '{"id":"n1","input":"x\u0000y\u0000"}' >/dev/null
    run_replica 20 "${L[@]}" --core exec -- sh -c 'cat >"$0"' "$T_DIR/n1.in"
    assert_eq "$RC" 0 "exec: exit code"
    printf 'x\0y\0' >"$T_DIR/want"
    same_bytes "$T_DIR/n1.in" "$T_DIR/want" "exec core's stdin"
    rcli LPUSH jobs '{"id":"n2","input":"\u0000a\u0000b"}' >/dev/null
    run_replica 20 "${L[@]}" --core echo
    assert_eq "$RC" 0 "echo: exit code"
    rbytes "$T_DIR/n2.out" GET oneshot:result:n2
    printf '\0a\0b' >"$T_DIR/want"
    same_bytes "$T_DIR/n2.out" "$T_DIR/want" "echo core's stored result"
    # "eA==" is "x": what follows the NUL must not be ignored
    rcli LPUSH jobs '{"id":"n3","input_base64":"eA==\u0000garbage"}' >/dev/null
    run_replica 20 "${L[@]}" --core echo
    assert_eq "$RC" 65 "input_base64 holding NUL: exit code"
    assert_eq "$(rcli EXISTS oneshot:result:n3)" 0 "input_base64 holding NUL: no result"
}

t_stream_nul_id() {
    rcli FLUSHALL >/dev/null
    printf 'batch\0A' | rcli -x XADD jobs '*' input first id >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 65 "exit code"
    assert_eq "$(rcli EXISTS oneshot:result:batch oneshot:job:batch)" 0 "nothing recorded under 'batch'"
    assert_eq "$(stream_field jobs.dead state)" rejected "dead letter"
    assert_contains "$(stream_field jobs.dead error)" '"id" must be' "dead letter's reason"
    rcli XADD jobs '*' input second id batch >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 0 "then job 'batch': exit code"
    assert_eq "$(rcli GET oneshot:result:batch)" second "then job 'batch' ran"
}

t_stream_nul_input() {
    rcli FLUSHALL >/dev/null
    printf 'x\0y\0' >"$T_DIR/want"
    rcli -x XADD jobs '*' id s1 input <"$T_DIR/want" >/dev/null
    run_replica 20 "${S[@]}" --core exec -- sh -c 'cat >"$0"' "$T_DIR/s1.in"
    assert_eq "$RC" 0 "exec: exit code"
    same_bytes "$T_DIR/s1.in" "$T_DIR/want" "exec core's stdin"
    rcli -x XADD jobs '*' id s2 input <"$T_DIR/want" >/dev/null
    run_replica 20 "${S[@]}" --core echo
    assert_eq "$RC" 0 "echo: exit code"
    rbytes "$T_DIR/s2.out" GET oneshot:result:s2
    same_bytes "$T_DIR/s2.out" "$T_DIR/want" "echo core's stored result"
}

t_kafka_nul() {
    export TMPDIR_TEST=$T_DIR/kafka
    . "$ROOT/tests/brokers/kafka_broker_start.sh"
    kafka_broker_start nul nul.results nul.status nul.dead || {
        fail "the Kafka test broker did not start"
        return
    }
    T_PIDS+=("$KAFKA_BROKER_PID")
    local B=$KAFKA_BROKERS
    local K=(--port 0 --bind 127.0.0.1 --source kafka --kafka "$B" --queue nul --group g-nul --idle-timeout 15)
    # One kcat each, the second after the first's delivery, so the order
    # this test depends on cannot come from the producer (in one CI run
    # each replica got the other's message; the cause is not known: a
    # retried produce is one candidate, removed here).
    printf '%s\n' '{"id":"batch\u0000A","input":1}' | kcat -P -b "$B" -t nul -k m || fail "kcat produce"
    printf '%s\n' '{"id":"k2","input":"x\u0000y"}' | kcat -P -b "$B" -t nul -k m || fail "kcat produce"
    RC=0
    timeout -s KILL 30 "$ONESHOT" "${K[@]}" --core echo 2>"$T_DIR/k1.log" >/dev/null || RC=$?
    check_sanitizers "$T_DIR/k1.log"
    assert_eq "$RC" 65 "NUL in the id: exit code"
    assert_contains "$(timeout 20 kcat -C -b "$B" -t nul.dead -o beginning -e -q -f '%h\n')" \
        'state=rejected,error=envelope: "id" must be' "dead letter"
    RC=0
    timeout -s KILL 30 "$ONESHOT" "${K[@]}" --core exec -- sh -c 'cat >"$0"' "$T_DIR/k2.in" \
        2>"$T_DIR/k2.log" >/dev/null || RC=$?
    check_sanitizers "$T_DIR/k2.log"
    assert_eq "$RC" 0 "NUL in the input: exit code"
    printf 'x\0y' >"$T_DIR/want"
    same_bytes "$T_DIR/k2.in" "$T_DIR/want" "exec core's stdin"
    kill "$KAFKA_BROKER_PID" 2>/dev/null
}

# ---- retries, sweeps and dead letters carry the producer's bytes ----

# Messages whose bytes a re-printed JSON value would change.
exact_cases() {
    printf '  {"duration":0}\n' >"$T_DIR/case.1"
    printf '\t[1, 2]\r\n' >"$T_DIR/case.2"
    printf ' 42 ' >"$T_DIR/case.3"
    printf '"quoted"\n' >"$T_DIR/case.4"
    printf '{"a": 1}\n\n' >"$T_DIR/case.5"
    printf '{"id":"w6","input": {"a" : [1 ,2]} }' >"$T_DIR/case.6" # an envelope: its input is {"a" : [1 ,2]}
    printf '{"a" : [1 ,2]}' >"$T_DIR/want.6"
    local i
    for i in 1 2 3 4 5; do cp "$T_DIR/case.$i" "$T_DIR/want.$i"; done
    CASES="1 2 3 4 5 6"
}

t_list_retry_exact() {
    exact_cases
    local i
    for i in $CASES; do
        rcli FLUSHALL >/dev/null
        rm -f "$T_DIR"/seen.*
        rcli -x LPUSH jobs <"$T_DIR/case.$i" >/dev/null
        run_replica 20 "${L[@]}" --max-attempts 2 "${FAILING[@]}"
        assert_eq "$RC" 3 "case $i, attempt 1: exit code"
        rbytes "$T_DIR/requeued" LINDEX jobs 0
        envelope_input "$T_DIR/requeued" "$T_DIR/requeued.in"
        same_bytes "$T_DIR/requeued.in" "$T_DIR/want.$i" "case $i: re-queued envelope's input"
        run_replica 20 "${L[@]}" --max-attempts 2 "${FAILING[@]}"
        assert_eq "$RC" 3 "case $i, attempt 2: exit code"
        same_bytes "$T_DIR/seen.1" "$T_DIR/want.$i" "case $i: attempt 1's input"
        same_bytes "$T_DIR/seen.2" "$T_DIR/seen.1" "case $i: attempt 2's input"
        rbytes "$T_DIR/dl" LINDEX jobs.dead 0
        envelope_input "$T_DIR/dl" "$T_DIR/dl.in"
        same_bytes "$T_DIR/dl.in" "$T_DIR/want.$i" "case $i: dead letter's input"
    done
}

# An orphan (a replica died holding it): the sweep re-queues it (attempt 2
# runs it) or, past --max-attempts, dead-letters it.
t_sweep_exact() {
    exact_cases
    local i
    for i in $CASES; do
        rcli FLUSHALL >/dev/null
        rm -f "$T_DIR"/seen.*
        rcli -x RPUSH jobs:processing:ghost <"$T_DIR/case.$i" >/dev/null
        rcli SADD jobs:workers ghost >/dev/null
        run_replica 20 "${L[@]}" --max-attempts 2 "${FAILING[@]}"
        assert_eq "$RC" 3 "case $i: the swept job's exit code"
        same_bytes "$T_DIR/seen.2" "$T_DIR/want.$i" "case $i: input after the sweep's re-queue"
        rcli FLUSHALL >/dev/null
        rcli -x RPUSH jobs:processing:ghost <"$T_DIR/case.$i" >/dev/null
        rcli SADD jobs:workers ghost >/dev/null
        run_replica 20 "${L[@]}" --idle-timeout 1 --max-attempts 1 "${FAILING[@]}"
        assert_eq "$RC" 75 "case $i: sweep dead-letters, nothing to run"
        rbytes "$T_DIR/dl" LINDEX jobs.dead 0
        envelope_input "$T_DIR/dl" "$T_DIR/dl.in"
        same_bytes "$T_DIR/dl.in" "$T_DIR/want.$i" "case $i: the sweep's dead letter's input"
    done
}

# redis-stream's retry is a copy of the entry's fields (XADD), its dead
# letter the original fields.
t_stream_retry_exact() {
    exact_cases
    local i
    for i in 1 2 3 4 5; do
        rcli FLUSHALL >/dev/null
        rm -f "$T_DIR"/seen.*
        rcli -x XADD jobs '*' id "w$i" input <"$T_DIR/case.$i" >/dev/null
        run_replica 20 "${S[@]}" --max-attempts 2 "${FAILING[@]}"
        assert_eq "$RC" 3 "case $i, attempt 1: exit code"
        run_replica 20 "${S[@]}" --max-attempts 2 "${FAILING[@]}"
        assert_eq "$RC" 3 "case $i, attempt 2: exit code"
        same_bytes "$T_DIR/seen.1" "$T_DIR/want.$i" "case $i: attempt 1's input"
        same_bytes "$T_DIR/seen.2" "$T_DIR/seen.1" "case $i: attempt 2's input"
        stream_field jobs.dead input | head -c -1 >"$T_DIR/dl.in"
        same_bytes "$T_DIR/dl.in" "$T_DIR/want.$i" "case $i: dead letter's input"
    done
}

t_run "input bytes: redis-list id with an escaped NUL -> 65, never cut" t_list_nul_id
t_run "input bytes: redis-list string input with NUL reaches the core whole" t_list_nul_input
t_run "input bytes: redis-stream id field with NUL -> 65" t_stream_nul_id
t_run "input bytes: redis-stream input with NUL reaches the core whole" t_stream_nul_input
t_run "input bytes: Kafka envelope id with NUL -> 65, input with NUL whole" t_kafka_nul
t_run "input bytes: redis-list retry and dead letter keep the producer's bytes" t_list_retry_exact
t_run "input bytes: redis-list sweep re-queue and dead letter keep the producer's bytes" t_sweep_exact
t_run "input bytes: redis-stream retry and dead letter keep the producer's bytes" t_stream_retry_exact
