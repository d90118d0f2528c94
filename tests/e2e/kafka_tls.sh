#!/usr/bin/env bash
# kafka_tls.sh -- the Kafka source and store over SSL and SASL_SSL
# (SCRAM-SHA-512) against the real broker's TLS listeners
# (tests/brokers/kafka_broker_start.sh with KAFKA_TLS_DIR and KAFKA_SCRAM_PASSWORD),
# with certificates made here (tests/brokers/tls/lib.sh): a job over each, submit
# over each (SCRAM where librdkafka can: >= 2.6.1); a wrong CA and a wrong
# password fail with the reason
# (69) and commit nothing (a good replica then takes the same message); no
# password in any log (at debug, with librdkafka's debug=all) or in
# --print-config. The operator's side (kcat, kafka_admin) uses the
# PLAINTEXT listener of the same broker.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../brokers/tls/lib.sh"

C=$T_DIR/certs
tls_certs "$C" || {
    echo "FAIL kafka_tls: openssl could not make the certificates"
    exit 1
}
export TMPDIR_TEST=$T_DIR/kafka KAFKA_TLS_DIR=$C KAFKA_SCRAM_PASSWORD=SECRETSCRAM1
. "$ROOT/tests/brokers/kafka_broker_start.sh"
kafka_broker_start tj:1 tj.results tj.status tj.dead sj:1 sj.results sj.status sj.dead \
    pj:1 pj.results pj.status pj.dead wj:1 wj.results wj.status wj.dead || {
    kafka_broker_keep_log always
    echo "FAIL kafka_tls: the test broker did not start"
    exit 1
}
unset KAFKA_SCRAM_PASSWORD
B=$KAFKA_BROKERS
LOGS=$T_DIR/logs
mkdir -p "$LOGS"
SSL=(--kafka "$KAFKA_SSL_BROKERS" --kafka-prop security.protocol=SSL --kafka-prop "ssl.ca.location=$C/ca.pem")
SASL_SSL=(--kafka "$KAFKA_SASL_SSL_BROKERS" --kafka-prop security.protocol=SASL_SSL
    --kafka-prop "ssl.ca.location=$C/ca.pem" --kafka-prop sasl.username=oneshot)

# run_k NAME SECS ARGS...: one replica in the foreground at debug; RC, LOG.
run_k() {
    local name=$1 secs=$2
    shift 2
    LOG=$LOGS/$name.log
    RC=0
    timeout -s KILL "$secs" "$ONESHOT" --port 0 --bind 127.0.0.1 --source kafka --log-level debug "$@" \
        2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

results() { timeout 20 kcat -C -b "$B" -t "$1" -o beginning -e -q -f '%k\n' | sort | tr '\n' ' '; }
claimed() { grep '"msg":"claimed job' "$1" | head -1 | sed 's/.*"job_id":"\([^"]*\)".*/\1/'; }
first_error() { grep -m1 '"level":"error"' "$1" | sed 's/.*"msg":"\([^"]*\)".*/\1/'; }

t_ssl_job() {
    "$ONESHOT" submit --source kafka "${SSL[@]}" --queue tj --id tls-k1 '{"n":1}' \
        >"$LOGS/submit-ssl.out" 2>"$LOGS/submit-ssl.log" || fail "submit over SSL: $(tail -2 "$LOGS/submit-ssl.log")"
    run_k ssl 40 "${SSL[@]}" --queue tj --group g-tj --core echo --idle-timeout 20
    assert_eq "$RC" 0 "replica over SSL: $(first_error "$LOG")"
    assert_eq "$(claimed "$LOG")" tls-k1 "the job"
    assert_eq "$(results tj.results)" "tls-k1 " "results"
}

# SASL_SSL with PLAIN: the TLS transport and SASL together, on every
# librdkafka.
t_sasl_ssl_plain() {
    "$ONESHOT" submit --source kafka "${SASL_SSL[@]}" --kafka-prop sasl.mechanism=PLAIN \
        --kafka-prop sasl.password=SECRETSCRAM1 --queue pj --id tls-p1 --log-level debug '{"n":3}' \
        >"$LOGS/submit-plain.out" 2>"$LOGS/submit-plain.log" ||
        fail "submit over SASL_SSL/PLAIN: $(tail -2 "$LOGS/submit-plain.log")"
    ONESHOT_KAFKA_PROPS=sasl.password=SECRETSCRAM1 run_k plain 40 "${SASL_SSL[@]}" --kafka-prop sasl.mechanism=PLAIN \
        --queue pj --group g-pj --core echo --idle-timeout 20 --kafka-prop debug=security,broker
    assert_eq "$RC" 0 "replica over SASL_SSL/PLAIN: $(first_error "$LOG")"
    assert_eq "$(claimed "$LOG")" tls-p1 "the job"
    assert_eq "$(results pj.results)" "tls-p1 " "results"
}

# The librdkafka version of a oneshot binary's Kafka module ("" if none).
rdkafka_version() { "$1" --version 2>/dev/null | sed -n 's/.*librdkafka \([0-9.]*\).*/\1/p'; }
# librdkafka >= 2.6.1 does SCRAM as Kafka 4.x wants it (an older one
# repeats the client nonce in its final message, which Kafka 4.x refuses).
scram_ok() { [ "$(printf '%s\n2.6.1\n' "$1" | sort -V | head -1)" = 2.6.1 ]; }

# SCRAM-SHA-512 over SASL_SSL: a job with a binary whose librdkafka can
# (the static build, ONESHOT_TLS_BIN); with Debian 12's 2.0.2 alone, the
# broker's refusal, as consumer/kafka/README.md documents it.
t_scram() {
    local b kb="" v
    for b in ${ONESHOT_TLS_BIN:-} "$ROOT/build/oneshot-static" "$ONESHOT"; do
        [ -x "$b" ] || continue
        v=$(rdkafka_version "$b")
        if [ -n "$v" ] && scram_ok "$v"; then
            kb=$b
            break
        fi
    done
    if [ -z "$kb" ]; then
        v=$(rdkafka_version "$ONESHOT")
        ONESHOT_KAFKA_PROPS=sasl.password=SECRETSCRAM1 run_k scram-old 40 "${SASL_SSL[@]}" \
            --kafka-prop sasl.mechanism=SCRAM-SHA-512 --queue sj --group g-sj --idle-timeout 30 \
            --kafka-prop session.timeout.ms=6000
        assert_eq "$RC" 69 "SCRAM with librdkafka $v: exit"
        assert_contains "$(first_error "$LOG")" "invalid credentials with SASL mechanism SCRAM-SHA-512" \
            "SCRAM with librdkafka $v: the broker's refusal"
        echo "# kafka_tls: librdkafka $v cannot do SCRAM with Kafka 4.x (needs >= 2.6.1: the static build); refusal checked"
        return
    fi
    echo "# kafka_tls: SCRAM-SHA-512 with ${kb#"$ROOT"/} (librdkafka $(rdkafka_version "$kb"))"
    "$kb" submit --source kafka "${SASL_SSL[@]}" --kafka-prop sasl.mechanism=SCRAM-SHA-512 \
        --kafka-prop sasl.password=SECRETSCRAM1 --queue sj --id tls-s1 --log-level debug '{"n":2}' \
        >"$LOGS/submit-scram.out" 2>"$LOGS/submit-scram.log" ||
        fail "submit over SASL_SSL/SCRAM: $(tail -2 "$LOGS/submit-scram.log")"
    ONESHOT=$kb ONESHOT_KAFKA_PROPS=sasl.password=SECRETSCRAM1 run_k scram 40 "${SASL_SSL[@]}" \
        --kafka-prop sasl.mechanism=SCRAM-SHA-512 --queue sj --group g-sj --core echo --idle-timeout 20
    assert_eq "$RC" 0 "replica over SASL_SSL/SCRAM-SHA-512: $(first_error "$LOG")"
    assert_eq "$(claimed "$LOG")" tls-s1 "the job"
    assert_eq "$(results sj.results)" "tls-s1 " "results"
}

# A replica that cannot get through: 69 once no broker was reachable for
# session.timeout.ms (6 s), with the refusal as the reason; it committed
# nothing, so the next good replica takes the very message.
refused() { # name expected-in-error args...
    local name=$1 want=$2
    shift 2
    run_k "$name" 40 --queue wj --group g-wj --core echo --idle-timeout 30 --kafka-prop session.timeout.ms=6000 "$@"
    assert_eq "$RC" 69 "$name: exit"
    assert_contains "$(first_error "$LOG")" "$want" "$name: the error"
    assert_contains "$(grep '"exit 69' "$LOG" | head -1; grep -m1 'no Kafka broker reachable at' "$LOG")" \
        "$want" "$name: the exit's reason"
    [ -z "$(claimed "$LOG")" ] || fail "$name: it claimed a job"
}

t_refused() {
    printf '%s\n' '{"id":"tls-w1","input":"w"}' | kcat -P -b "$B" -t wj -k tls-w1 || fail "produce"
    refused wrong-ca "certificate verify failed" --kafka "$KAFKA_SSL_BROKERS" --kafka-prop security.protocol=SSL \
        --kafka-prop "ssl.ca.location=$C/wrong-ca.pem"
    refused wrong-password "Authentication failed" "${SASL_SSL[@]}" --kafka-prop sasl.mechanism=PLAIN \
        --kafka-prop sasl.password=SECRETWRONG2
    assert_eq "$(results wj.results)" "" "no result yet"
    run_k after 40 "${SSL[@]}" --queue wj --group g-wj --core echo --idle-timeout 20
    assert_eq "$RC" 0 "the next good replica: $(first_error "$LOG")"
    assert_eq "$(claimed "$LOG")" tls-w1 "it takes the message the refused ones left"
    assert_eq "$(results wj.results)" "tls-w1 " "one result"
}

t_no_secret() {
    "$ONESHOT" --print-config --source kafka "${SASL_SSL[@]}" --kafka-prop sasl.password=SECRETSCRAM1 \
        --kafka-prop "ssl.key.password=SECRETKEY3" >"$LOGS/print-config.json" 2>&1
    assert_eq "$?" 0 "--print-config"
    assert_contains "$(cat "$LOGS/print-config.json")" '"sasl.password=***"' "masked"
    local f n=0
    for f in "$LOGS"/*; do
        n=$((n + 1))
        if grep -q SECRET "$f"; then fail "$(basename "$f") shows a password: $(grep -m1 -o '.\{0,40\}SECRET.\{0,10\}' "$f")"; fi
    done
    echo "# kafka_tls: $n files written by oneshot, none shows a password"
}

t_run "kafka_tls: a job over SSL (submit and replica), CA from ssl.ca.location" t_ssl_job
t_run "kafka_tls: a job over SASL_SSL with PLAIN (password in ONESHOT_KAFKA_PROPS and as a flag)" t_sasl_ssl_plain
t_run "kafka_tls: SASL_SSL with SCRAM-SHA-512: a job where librdkafka >= 2.6.1, else Kafka 4.x's refusal" t_scram
t_run "kafka_tls: wrong CA, wrong SASL password: 69 with the reason, nothing committed" t_refused
t_run "kafka_tls: no password in logs (debug, librdkafka debug) or --print-config" t_no_secret
kafka_broker_stop
