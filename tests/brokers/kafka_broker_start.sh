# shellcheck shell=bash
# kafka_broker_start.sh -- a real Apache Kafka broker for the tests (bash).
# SOURCE it, do not execute it:
#
#   TMPDIR_TEST=$T_DIR/kafka             # its folder (unset: $T_DIR/kafka when
#                                        # tests/harness/lib.sh was sourced, else
#                                        # a mktemp -d folder under /tmp)
#   . tests/brokers/kafka_broker_start.sh
#   kafka_broker_start orders:3 events   # exports KAFKA_BROKERS, KAFKA_BROKER_PID,
#                                        # KAFKA_BROKER_LOG (and KAFKA_SASL_BROKERS,
#                                        # KAFKA_SSL_BROKERS, KAFKA_SASL_SSL_BROKERS)
#   kafka_broker_ctl create jobs:4 jobs.results
#   kafka_broker_ctl down                # SIGTERM, wait for the exit (down kill: SIGKILL)
#   kafka_broker_ctl up                  # the same process again: same data, same ports
#   kafka_admin group GROUP              # build/kafka_admin on this broker
#   kafka_broker_keep_log                # copy the log to $BUILD/test-logs (a failed test)
#   kafka_broker_stop                    # SIGTERM + wait (safe to call twice)
#
# The broker is Kafka from tests/brokers/kafka/pom.xml (`make deps` puts it in
# tests/brokers/kafka/target/libs), one JVM in KRaft combined mode (broker and
# controller, node 1), storage formatted in $TMPDIR_TEST/kafka-data, on
# free loopback ports, heap $KAFKA_HEAP (512m). Its settings: the group
# coordinator's initial rebalance delay 0 (an operator's choice, consumer/kafka/README.md),
# replication factor 1 and one partition for the internal topics,
# min.insync.replicas 1, and the broker's own session with its controller
# 2 s instead of 9 (a broker restarted after a SIGKILL cannot register
# before its previous incarnation's session ends); everything else is
# Kafka's default. Once it answers,
# `kafka_admin warm` creates __consumer_offsets and __transaction_state (a
# real cluster has them: the tests should not pay for their creation).
#
# Environment: KAFKA_SASL_PASSWORD (also a SASL_PLAINTEXT listener, PLAIN
# mechanism, user $KAFKA_SASL_USER, default "oneshot", exported as
# KAFKA_SASL_BROKERS), KAFKA_TLS_DIR (a folder with ca.pem, server.pem and
# server.key, as tests/brokers/tls/lib.sh's tls_certs makes them: also an SSL
# listener, KAFKA_SSL_BROKERS, its certificate server.pem in a PEM
# keystore, ca.pem the truststore, no client certificates asked for; with
# KAFKA_SCRAM_PASSWORD too, a SASL_SSL listener, KAFKA_SASL_SSL_BROKERS,
# with SCRAM-SHA-512 (the user $KAFKA_SCRAM_USER, default "oneshot",
# written into the metadata when the storage is formatted, as KRaft wants)
# and PLAIN (the same user and password: librdkafka < 2.6.1 cannot do
# SCRAM with Kafka 4.x, see consumer/kafka/README.md), KAFKA_BROKER_PROPS (more
# server.properties lines),
# KAFKA_HEAP, KAFKA_ADMIN_BIN (default build/kafka_admin),
# KAFKA_LIBS (default tests/brokers/kafka/target/libs). Readiness is polled, bounded
# by KAFKA_START_S (60 s). The log is $TMPDIR_TEST/kafka.log, appended by
# every start.
#
# For clients that reach the broker by a cluster's host name (a pod whose
# /etc/hosts points that name at 127.0.0.1, the broker started in the
# pod's network namespace): KAFKA_TLS_HOST, the host name the SSL and
# SASL_SSL listeners advertise instead of 127.0.0.1 (the name server.pem
# must be for; they still bind 127.0.0.1), and KAFKA_SASL_SSL_PORT, the
# SASL_SSL listener's port instead of a free one. KAFKA_SSL_BROKERS and
# KAFKA_SASL_SSL_BROKERS then carry that name.
#
# When sourced after tests/harness/lib.sh the broker is added to T_PIDS (killed by
# its trap) and kafka_broker_keep_log to T_ON_EXIT: a test file that had a
# FAIL keeps the broker's log.

_kafka_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# A free TCP port on 127.0.0.1 (bound by the kernel, released at once).
_kafka_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

kafka_admin() {
    local -a x=()
    [ -n "${KAFKA_ADMIN_PROPS:-}" ] && read -r -a x <<<"$KAFKA_ADMIN_PROPS"
    "${KAFKA_ADMIN_BIN:-$_kafka_repo/${ONESHOT_BUILD:-build}/kafka_admin}" -b "$KAFKA_BROKERS" "${x[@]}" "$@"
}

_kafka_write_config() {
    local d=$TMPDIR_TEST listeners map adv
    listeners="PLAINTEXT://127.0.0.1:$_KAFKA_PORT,CONTROLLER://127.0.0.1:$_KAFKA_CPORT"
    adv="PLAINTEXT://127.0.0.1:$_KAFKA_PORT"
    map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
        listeners+=",SASL_PLAINTEXT://127.0.0.1:$_KAFKA_SPORT"
        adv+=",SASL_PLAINTEXT://127.0.0.1:$_KAFKA_SPORT"
        map+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
    fi
    if [ -n "${KAFKA_TLS_DIR:-}" ]; then
        listeners+=",SSL://127.0.0.1:$_KAFKA_TPORT"
        adv+=",SSL://${KAFKA_TLS_HOST:-127.0.0.1}:$_KAFKA_TPORT"
        map+=",SSL:SSL"
        if [ -n "${KAFKA_SCRAM_PASSWORD:-}" ]; then
            listeners+=",SASL_SSL://127.0.0.1:$_KAFKA_TSPORT"
            adv+=",SASL_SSL://${KAFKA_TLS_HOST:-127.0.0.1}:$_KAFKA_TSPORT"
            map+=",SASL_SSL:SASL_SSL"
        fi
    fi
    cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$_KAFKA_CPORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$adv
listener.security.protocol.map=$map
log.dirs=$d/kafka-data
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.num.partitions=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
num.partitions=1
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=2000
EOF
    if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
        cat >>"$d/server.properties" <<EOF
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SASL_USER:-oneshot}="$KAFKA_SASL_PASSWORD";
EOF
    fi
    if [ -n "${KAFKA_TLS_DIR:-}" ]; then
        # A PEM keystore is the key (PKCS#8) followed by its certificate.
        cat "$KAFKA_TLS_DIR/server.key" "$KAFKA_TLS_DIR/server.pem" >"$d/broker-keystore.pem"
        cat >>"$d/server.properties" <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$d/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS_DIR/ca.pem
ssl.client.auth=none
EOF
        [ -z "${KAFKA_SCRAM_PASSWORD:-}" ] || cat >>"$d/server.properties" <<EOF
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SCRAM_USER:-oneshot}="$KAFKA_SCRAM_PASSWORD";
EOF
    fi
    [ -n "${KAFKA_BROKER_PROPS:-}" ] && printf '%s\n' "$KAFKA_BROKER_PROPS" >>"$d/server.properties"
    cat >"$d/log4j2.properties" <<'EOF'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
EOF
}

# java with the broker's class path and a small heap (2 cores: serial GC).
# exec: in the background, $! is then the JVM itself.
_kafka_java() { # main-class args...
    exec java -Xmx"${KAFKA_HEAP:-512m}" -Xms64m -XX:+UseSerialGC -Xss512k -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$TMPDIR_TEST/log4j2.properties" -cp "$_KAFKA_LIBS/*" "$@"
}

# Start the JVM on the configured folder and wait until it serves: the log
# line "Kafka Server started" after this start, and a metadata answer.
_kafka_launch() {
    local before i limit=$((${KAFKA_START_S:-60} * 20))
    before=$(wc -l <"$KAFKA_BROKER_LOG" 2>/dev/null || echo 0)
    _kafka_java kafka.Kafka "$TMPDIR_TEST/server.properties" </dev/null >>"$KAFKA_BROKER_LOG" 2>&1 &
    KAFKA_BROKER_PID=$!
    export KAFKA_BROKER_PID
    declare -p T_PIDS >/dev/null 2>&1 && T_PIDS+=("$KAFKA_BROKER_PID")
    for ((i = 0; i < limit; i++)); do
        if tail -n +"$((before + 1))" "$KAFKA_BROKER_LOG" | grep -q 'Kafka Server started'; then
            return 0
        fi
        if ! kill -0 "$KAFKA_BROKER_PID" 2>/dev/null; then
            echo "kafka_broker_start: the broker exited: $(tail -n +"$((before + 1))" "$KAFKA_BROKER_LOG" |
                grep -m3 -E 'ERROR|Exception')" >&2
            wait "$KAFKA_BROKER_PID" 2>/dev/null
            unset KAFKA_BROKER_PID
            return 1
        fi
        sleep 0.05
    done
    echo "kafka_broker_start: not started within ${KAFKA_START_S:-60} s (log: $KAFKA_BROKER_LOG)" >&2
    return 1
}

# kafka_broker_start [TOPIC[:PARTITIONS] ...]
kafka_broker_start() {
    _KAFKA_LIBS=${KAFKA_LIBS:-$_kafka_repo/tests/brokers/kafka/target/libs}
    if ! ls "$_KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
        echo "kafka_broker_start: no Kafka in $_KAFKA_LIBS: run 'make deps'" >&2
        return 1
    fi
    if [ -z "${TMPDIR_TEST:-}" ]; then
        if [ -n "${T_DIR:-}" ]; then
            TMPDIR_TEST=$T_DIR/kafka
        else
            TMPDIR_TEST=$(mktemp -d /tmp/oneshot-kafka.XXXXXX) || return 1
        fi
        export TMPDIR_TEST
    fi
    mkdir -p "$TMPDIR_TEST/kafka-data" || return 1
    KAFKA_BROKER_LOG=$TMPDIR_TEST/kafka.log
    export KAFKA_BROKER_LOG
    _KAFKA_PORT=$(_kafka_free_port) && _KAFKA_CPORT=$(_kafka_free_port) || return 1
    KAFKA_BROKERS=127.0.0.1:$_KAFKA_PORT
    export KAFKA_BROKERS
    if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
        _KAFKA_SPORT=$(_kafka_free_port) || return 1
        KAFKA_SASL_BROKERS=127.0.0.1:$_KAFKA_SPORT
        export KAFKA_SASL_BROKERS
    fi
    local -a scram=()
    if [ -n "${KAFKA_TLS_DIR:-}" ]; then
        _KAFKA_TPORT=$(_kafka_free_port) || return 1
        KAFKA_SSL_BROKERS=${KAFKA_TLS_HOST:-127.0.0.1}:$_KAFKA_TPORT
        export KAFKA_SSL_BROKERS
        if [ -n "${KAFKA_SCRAM_PASSWORD:-}" ]; then
            _KAFKA_TSPORT=${KAFKA_SASL_SSL_PORT:-$(_kafka_free_port)} || return 1
            KAFKA_SASL_SSL_BROKERS=${KAFKA_TLS_HOST:-127.0.0.1}:$_KAFKA_TSPORT
            export KAFKA_SASL_SSL_BROKERS
            scram=(--add-scram "SCRAM-SHA-512=[name=\"${KAFKA_SCRAM_USER:-oneshot}\",password=\"$KAFKA_SCRAM_PASSWORD\"]")
        fi
    fi
    _kafka_write_config
    # One cluster id per folder: any 16 bytes, base64url without padding.
    (_kafka_java kafka.tools.StorageTool format -t b25lc2hvdC10ZXN0LWNsdQ -c "$TMPDIR_TEST/server.properties" \
        "${scram[@]}" >>"$KAFKA_BROKER_LOG" 2>&1) || {
        echo "kafka_broker_start: storage format failed: $(tail -3 "$KAFKA_BROKER_LOG")" >&2
        return 1
    }
    declare -p T_ON_EXIT >/dev/null 2>&1 && T_ON_EXIT+=(kafka_broker_keep_log)
    _kafka_launch || return 1
    kafka_admin warm >>"$KAFKA_BROKER_LOG" 2>&1 || {
        echo "kafka_broker_start: warm-up failed: $(tail -2 "$KAFKA_BROKER_LOG")" >&2
        return 1
    }
    [ $# -eq 0 ] || kafka_admin create "$@" >&2
}

# kafka_broker_ctl down [kill] | up | create TOPIC[:PARTITIONS]...
kafka_broker_ctl() {
    case "${1:-}" in
    down)
        if [ "${2:-}" = kill ]; then
            kill -KILL "$KAFKA_BROKER_PID" 2>/dev/null
            wait "$KAFKA_BROKER_PID" 2>/dev/null
            unset KAFKA_BROKER_PID
        else
            kafka_broker_stop
        fi
        ;;
    up)
        [ -z "${KAFKA_BROKER_PID:-}" ] || {
            echo "kafka_broker_ctl: the broker is up" >&2
            return 1
        }
        _kafka_launch
        ;;
    create)
        shift
        kafka_admin create "$@"
        ;;
    *)
        echo "kafka_broker_ctl: down [kill] | up | create TOPIC[:PARTITIONS]..." >&2
        return 2
        ;;
    esac
}

# SIGTERM (a controlled shutdown) and wait, SIGKILL after 30 s. 0 when it
# stopped by itself.
kafka_broker_stop() {
    local rc=0 i
    [ -n "${KAFKA_BROKER_PID:-}" ] || return 0
    kill -TERM "$KAFKA_BROKER_PID" 2>/dev/null
    for ((i = 0; i < 600; i++)); do
        kill -0 "$KAFKA_BROKER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$KAFKA_BROKER_PID" 2>/dev/null && rc=1
    wait "$KAFKA_BROKER_PID" 2>/dev/null
    unset KAFKA_BROKER_PID
    return "$rc"
}

# Keep the broker's log: always when called with "always", else only when
# a test of this file failed (lib.sh's T_FAILS). It goes to
# $BUILD/test-logs/kafka-<test file>-<pid>.log, and a "#" line says where.
kafka_broker_keep_log() {
    [ "${1:-}" = always ] || [ "${T_FAILS:-0}" -gt 0 ] || return 0
    [ -s "${KAFKA_BROKER_LOG:-}" ] || return 0
    local dir=$_kafka_repo/${ONESHOT_BUILD:-build}/test-logs
    local to=$dir/kafka-$(basename "$0" .sh)-$$.log
    mkdir -p "$dir" && cp "$KAFKA_BROKER_LOG" "$to" && echo "# the Kafka broker's log is kept in $to"
}
