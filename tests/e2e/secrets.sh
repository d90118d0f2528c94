#!/usr/bin/env bash
# secrets.sh -- passwords and tokens never reach a log: replicas
# and subcommands at --log-level debug with a Redis password (closed port,
# wrong password, a real redis-server with requirepass and an ACL user), a
# bearer token, Kafka SASL passwords (a real broker's SASL/PLAIN listener),
# a pushgateway password; --print-config
# and configuration errors; the termination log's mode and content.
# Every secret contains "SECRET"; nothing the replica writes may.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"
. "$(dirname "$0")/../brokers/tls/lib.sh"

LOGS=$T_DIR/logs # everything oneshot writes; grepped as a whole at the end
mkdir -p "$LOGS"
U() { echo "http://127.0.0.1:$R_PORT$1"; }

no_secret() { # file what
    if grep -q SECRET "$1" 2>/dev/null; then
        fail "${2:-$1} shows a secret: $(grep -m1 -o '.\{0,60\}SECRET.\{0,20\}' "$1")"
    fi
}

# oneshot in the background with a log in $LOGS; B_PID, B_LOG.
bg() { # name args...
    B_LOG=$LOGS/$1.log
    shift
    "$ONESHOT" --port 0 --bind 127.0.0.1 --log-level debug "$@" >"$B_LOG.out" 2>"$B_LOG" &
    B_PID=$!
    T_PIDS+=("$B_PID")
}

# A free TCP port for redis-server (it needs TCP for redis://user:pw@host).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

t_redis_unreachable() {
    # both URL forms, a replica and a subcommand, against nothing: exit 69
    local p1 p2 p3 l1 l2 l3
    bg redis-closed --source redis-list --redis redis://jobs:SECRETPW1@127.0.0.1:1/0 \
        --termination-log "$LOGS/term-closed.json"
    p1=$B_PID l1=$B_LOG
    bg redis-closed-unix --source http --store redis --redis "unix://$T_DIR/none.sock?password=SECRETPW1b"
    p2=$B_PID l2=$B_LOG
    "$ONESHOT" status some-id --redis redis://:SECRETPW1c@127.0.0.1:1/0 --log-level debug \
        >"$LOGS/status-closed.out" 2>"$LOGS/status-closed.log" &
    p3=$!
    T_PIDS+=("$p3")
    assert_exit "$p1" 20 69 "redis-list, closed port" "$l1"
    assert_exit "$p2" 20 69 "store on a missing socket" "$l2"
    wait_exit "$p3" 20
    [ "$W_RC" != 0 ] && [ "$W_RC" != timeout ] || fail "status against nothing: exit $W_RC"
    for l3 in "$l1" "$l2" "$LOGS/status-closed.log" "$LOGS/term-closed.json"; do no_secret "$l3"; done
    assert_contains "$(cat "$l1")" "127.0.0.1:1" "the log names the server"
    assert_eq "$(stat -c %a "$LOGS/term-closed.json")" 640 "termination log mode"
}

t_redis_with_password() {
    local port
    port=$(free_port)
    redis_start --port "$port" --bind 127.0.0.1 || return
    rcli CONFIG SET requirepass SECRETPW2 >/dev/null
    export REDISCLI_AUTH=SECRETPW2
    rcli ACL SETUSER jobs on '>SECRETPW3' '~*' '&*' '+@all' >/dev/null
    local tcp=redis://:SECRETPW2@127.0.0.1:$port/0 acl=redis://jobs:SECRETPW3@127.0.0.1:$port/0
    "$ONESHOT" submit --redis "unix://$RS_SOCK?password=SECRETPW2" --id s1 --log-level debug '{"k":1}' \
        >"$LOGS/submit.out" 2>"$LOGS/submit.log" || fail "submit: $(cat "$LOGS/submit.log")"
    bg redis-pw --source redis-list --redis "$tcp" --core echo --idle-timeout 5
    assert_exit "$B_PID" 20 0 "replica with requirepass" "$B_LOG"
    "$ONESHOT" submit --redis "$acl" --id s2 --log-level debug '{"k":2}' >>"$LOGS/submit.out" 2>>"$LOGS/submit.log"
    bg redis-acl --source redis-stream --redis "$acl" --core echo --idle-timeout 5 --queue jobs-stream
    "$ONESHOT" submit --redis "$acl" --source redis-stream --queue jobs-stream --id s3 '{"k":3}' \
        >>"$LOGS/submit.out" 2>>"$LOGS/submit.log"
    assert_exit "$B_PID" 20 0 "replica as an ACL user" "$B_LOG"
    "$ONESHOT" wait s1 --redis "$acl" --timeout 5 --log-level debug >"$LOGS/wait.out" 2>"$LOGS/wait.log"
    assert_eq "$?" 0 "wait s1"
    assert_eq "$(cat "$LOGS/wait.out")" '{"k":1}' "result of s1"
    bg redis-wrong --source redis-list --redis redis://:SECRETWRONG4@127.0.0.1:$port/0 --idle-timeout 5
    wait_exit "$B_PID" 20
    [ "$W_RC" = 69 ] || [ "$W_RC" = 78 ] || fail "wrong password: exit $W_RC"
    rcli HGETALL oneshot:job:s1 >"$LOGS/status-hash.txt"
    assert_contains "$(cat "$LOGS/status-hash.txt")" succeeded "status hash"
    for f in "$LOGS"/submit.* "$LOGS"/wait.* "$LOGS"/redis-*.log "$LOGS/status-hash.txt"; do no_secret "$f"; done
    unset REDISCLI_AUTH
}

# rediss:// with a password and a client certificate (tests/brokers/tls/lib.sh's
# TLS-capable binary): the password in the URL, the key's contents, appear
# in no log at debug, no error (wrong password, a refused certificate) and
# no --print-config (which shows the files' paths, never what they hold).
t_redis_tls() {
    local C=$T_DIR/certs key_line u b
    tls_certs "$C" && tls_bin || {
        fail "no certificates or no TLS-capable oneshot"
        return
    }
    redis_kill
    tls_redis_start "$C" --tls-auth-clients yes || return
    rcli CONFIG SET requirepass SECRETPWt1 >/dev/null
    key_line=$(sed -n 2p "$C/client.key")
    u=rediss://:SECRETPWt1@localhost:$TLS_PORT/0
    local -a tls=(--redis-ca "$C/ca.pem" --redis-cert "$C/client.pem" --redis-key "$C/client.key")
    "$TLS_BIN" submit --redis "$u" "${tls[@]}" --id st1 --log-level debug '{"k":"t"}' >"$LOGS/tls-submit.out" \
        2>"$LOGS/tls-submit.log" || fail "submit over TLS: $(cat "$LOGS/tls-submit.log")"
    b=$ONESHOT
    ONESHOT=$TLS_BIN
    bg tls-replica --source redis-list --redis "$u" "${tls[@]}" --core echo --idle-timeout 5 \
        --termination-log "$LOGS/tls-term.json"
    assert_exit "$B_PID" 20 0 "replica over TLS with a password and a client certificate" "$B_LOG"
    bg tls-wrong-password --source redis-list --redis "rediss://:SECRETWRONGt2@localhost:$TLS_PORT/0" "${tls[@]}" \
        --idle-timeout 5
    wait_exit "$B_PID" 20
    assert_eq "$W_RC" 69 "wrong password over TLS"
    bg tls-no-cert --source redis-list --redis "$u" --redis-ca "$C/ca.pem" --idle-timeout 5
    wait_exit "$B_PID" 20
    assert_eq "$W_RC" 69 "no client certificate"
    ONESHOT=$b
    "$TLS_BIN" --print-config --redis "$u" "${tls[@]}" >"$LOGS/tls-print-config.json" 2>&1
    assert_eq "$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["redis-key"], c["redis"])' \
        "$LOGS/tls-print-config.json")" "$C/client.key rediss://:***@localhost:$TLS_PORT/0" \
        "--print-config: the key's path, the URL masked"
    local f
    for f in "$LOGS"/tls-*; do
        no_secret "$f"
        ! grep -qF -- "$key_line" "$f" || fail "$(basename "$f") shows the client key"
        ! grep -q "PRIVATE KEY" "$f" || fail "$(basename "$f") shows a private key"
    done
    redis_kill
}

t_bearer_token() {
    local u=$T_DIR/term.json
    : >"$u"
    chmod 666 "$u"
    R_LOG=$LOGS/token.log
    (umask 000 && exec "$ONESHOT" --port 0 --bind 127.0.0.1 --log-level debug --auth-token SECRETTOK5 \
        --termination-log "$u" 2>"$R_LOG") &
    R_PID=$!
    T_PIDS+=("$R_PID")
    wait_for 5 grep -q '"port":' "$R_LOG" || { fail "replica did not start"; return; }
    R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" | head -1 | cut -d: -f2)
    http POST "$(U '/job?duration=0')" -H 'Authorization: Bearer SECRETWRONG5'
    assert_eq "$H_CODE" 401 "wrong token"
    http POST "$(U '/job?duration=0')" -H 'Authorization: Bearer SECRETTOK5'
    assert_eq "$H_CODE" 200 "right token"
    assert_exit "$R_PID" 5 0 "exit"
    no_secret "$R_LOG"
    cp "$u" "$LOGS/term-token.json"
    assert_eq "$(stat -c %a "$u")" 640 "termination log mode (was 0666, umask 000)"
    assert_contains "$(cat "$u")" '"state":"succeeded"' "termination log"
}

# A real broker with a SASL_PLAINTEXT listener (PLAIN, user oneshot) whose
# password is in every form oneshot takes it: flags, ONESHOT_KAFKA_PROPS,
# with librdkafka's own debug=all (its configuration dump must redact it).
# The right password runs a job (replica and submit); a wrong one is
# refused by the broker (69).
t_kafka_sasl() {
    export TMPDIR_TEST=$T_DIR/kafka KAFKA_SASL_PASSWORD=SECRETKP6
    . "$ROOT/tests/brokers/kafka_broker_start.sh"
    kafka_broker_start sj sj.results sj.status sj.dead || {
        kafka_broker_keep_log always
        fail "the test broker did not start"
        return
    }
    unset KAFKA_SASL_PASSWORD
    local S=$KAFKA_SASL_BROKERS sasl=(--kafka-prop security.protocol=SASL_PLAINTEXT --kafka-prop sasl.mechanism=PLAIN)
    "$ONESHOT" submit --source kafka --kafka "$S" --queue sj --id sj1 "${sasl[@]}" --kafka-prop sasl.username=oneshot \
        --kafka-prop sasl.password=SECRETKP6 --log-level debug '{"duration":0}' >"$LOGS/kafka-submit.out" \
        2>"$LOGS/kafka-submit.log" || fail "submit over SASL: $(tail -2 "$LOGS/kafka-submit.log")"
    "$ONESHOT" submit --source kafka --kafka "$S" --queue sj --id sj2 "${sasl[@]}" --kafka-prop sasl.username=oneshot \
        --kafka-prop sasl.password=SECRETKP6 '{"duration":0}' >>"$LOGS/kafka-submit.out" 2>>"$LOGS/kafka-submit.log"
    ONESHOT_KAFKA_PROPS='sasl.username=oneshot,sasl.password=SECRETKP6' \
        bg kafka-env --source kafka --kafka "$S" --queue sj --group g-sj --core echo --idle-timeout 20 "${sasl[@]}"
    assert_exit "$B_PID" 40 0 "SASL, password in ONESHOT_KAFKA_PROPS" "$B_LOG"
    local l1=$B_LOG
    bg kafka-flag --source kafka --kafka "$S" --queue sj --group g-sj --core echo --idle-timeout 20 "${sasl[@]}" \
        --kafka-prop sasl.username=oneshot --kafka-prop sasl.password=SECRETKP6 --kafka-prop debug=all
    assert_exit "$B_PID" 40 0 "SASL, password as a flag, debug=all" "$B_LOG"
    grep -q 'sasl.password' "$B_LOG" || fail "librdkafka's configuration dump is missing (debug=all)"
    grep -q 'claimed job' "$l1" && grep -q 'claimed job' "$B_LOG" || fail "the SASL replicas ran no job"
    assert_eq "$(timeout 20 kcat -C -b "$KAFKA_BROKERS" -t sj.results -o beginning -e -q -f '%k\n' | sort | tr '\n' ' ')" \
        "sj1 sj2 " "results"
    bg kafka-wrong --source kafka --kafka "$S" --queue sj --group g-sj --idle-timeout 20 "${sasl[@]}" \
        --kafka-prop sasl.username=oneshot --kafka-prop sasl.password=SECRETWRONG6 --kafka-prop session.timeout.ms=6000
    wait_exit "$B_PID" 40
    assert_eq "$W_RC" 69 "SASL, wrong password"
    grep -qi 'authentication' "$B_LOG" || fail "the wrong password's log does not say so: $(tail -2 "$B_LOG")"
    # and against a closed port, the old case
    bg kafka-closed --source kafka --kafka 127.0.0.1:1 --idle-timeout 2 "${sasl[@]}" --kafka-prop sasl.username=u \
        --kafka-prop sasl.password=SECRETKP7
    wait_exit "$B_PID" 20
    [ "$W_RC" = 75 ] || [ "$W_RC" = 69 ] || fail "kafka (closed port): exit $W_RC"
    local f
    for f in "$l1" "$LOGS"/kafka-*; do no_secret "$f"; done
    kafka_broker_stop
}

t_pushgateway() {
    bg pushgw --pushgateway http://metrics:SECRETPG8@127.0.0.1:1/
    R_PID=$B_PID R_LOG=$B_LOG
    wait_for 5 grep -q '"port":' "$R_LOG" || { fail "replica did not start"; return; }
    R_PORT=$(grep -o '"port":[0-9]*' "$R_LOG" | head -1 | cut -d: -f2)
    http POST "$(U '/job?duration=0')"
    assert_eq "$H_CODE" 200 "job"
    assert_exit "$R_PID" 10 0 "exit"
    grep -q pushgateway "$R_LOG" || fail "no pushgateway line"
    no_secret "$R_LOG"
}

t_print_config_and_errors() {
    local f=$T_DIR/conf.json out
    cat >"$f" <<'EOF'
{"redis": "redis://u:SECRETPW9@127.0.0.1:1/0?password=SECRETPW9b", "auth_token": "SECRETTOK9",
 "kafka_prop": {"sasl.password": "SECRETKP9", "ssl.key.password": "SECRETKP9b", "sasl.username": "u"},
 "pushgateway": "http://m:SECRETPG9@127.0.0.1:9091/"}
EOF
    "$ONESHOT" --config "$f" --print-config >"$LOGS/print-file.json" 2>&1
    assert_eq "$?" 0 "--print-config (file)"
    ONESHOT_REDIS_URL='unix:///tmp/r.sock?user=jobs&password=SECRETPWa&db=1' ONESHOT_AUTH_TOKEN=SECRETTOKa \
        ONESHOT_KAFKA_PROPS='sasl.password=SECRETKPa,sasl.oauthbearer.config=SECRETKPb' \
        ONESHOT_PUSHGATEWAY='http://SECRETPGa@127.0.0.1:9091/' \
        "$ONESHOT" --print-config >"$LOGS/print-env.json" 2>&1
    assert_eq "$?" 0 "--print-config (env)"
    "$ONESHOT" --print-config --redis redis://SECRETPWb@127.0.0.1:6379/0 --auth-token=SECRETTOKb \
        --kafka-prop sasl.jaas.config=SECRETKPc --kafka-prop ssl.key.pem=SECRETKPd \
        --pushgateway http://m:SECRETPGb@127.0.0.1:9091/ >"$LOGS/print-flags.json" 2>&1
    assert_eq "$?" 0 "--print-config (flags)"
    for out in "$LOGS"/print-*.json; do
        python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" || fail "$out is not JSON"
        assert_contains "$(cat "$out")" '***' "$(basename "$out") masks"
        no_secret "$out"
    done
    # configuration errors quote values: never a secret's
    local i=0 line
    while IFS= read -r line; do
        i=$((i + 1))
        eval "$line --idle-timeout 1" >"$LOGS/config-error-$i.out" 2>"$LOGS/config-error-$i.log"
        assert_eq "$?" 78 "exit for $line"
        no_secret "$LOGS/config-error-$i.log"
    done <<'EOF'
ONESHOT_KAFKA_PROPS='sasl.username=u,sasl.password=SECRETx,SECRETy' "$ONESHOT"
ONESHOT_KAFKA_PROPS='=SECRETKPe' "$ONESHOT"
"$ONESHOT" --kafka-prop =SECRETKPf
"$ONESHOT" --redis redis://u:SECRETPWc@h:99999/0
"$ONESHOT" --redis 'redis://u:SECRET%zz@h/0'
"$ONESHOT" --redis 'unix:///tmp/s?password=SECRETPWd&bogus=1'
"$ONESHOT" --redis 'redis://u:SECRETPWe@h/0?db=x'
"$ONESHOT" --pushgateway 'http://u:SECRETPGc@h:bad/'
"$ONESHOT" --pushgateway 'https://u:SECRETPGd@h/'
"$ONESHOT" --auth-token SECRETTOKc --port 99999
EOF
}

t_every_log() {
    local n
    n=$(find "$LOGS" -type f | wc -l)
    [ "$n" -ge 20 ] || fail "only $n log files"
    if grep -rl SECRET "$LOGS" >/dev/null; then
        fail "a secret in $(grep -rl SECRET "$LOGS" | head -3 | tr '\n' ' ')"
    else
        echo "# secrets: $n files written by oneshot (logs at debug, --print-config, errors), none shows a secret"
    fi
}

t_run "secrets: Redis password, server unreachable (exit 69)" t_redis_unreachable
t_run "secrets: Redis requirepass and ACL user, wrong password" t_redis_with_password
t_run "secrets: rediss:// password, client key: not in logs, errors, --print-config" t_redis_tls
t_run "secrets: bearer token; termination log 0640" t_bearer_token
t_run "secrets: Kafka SASL/PLAIN on a real broker (flags, env, librdkafka debug, wrong password)" t_kafka_sasl
t_run "secrets: pushgateway password" t_pushgateway
t_run "secrets: --print-config masks, errors do not quote" t_print_config_and_errors
t_run "secrets: every log written above" t_every_log
