# shellcheck shell=bash
# Helper for test scripts: run build/kafka_broker (librdkafka mock cluster).
# SOURCE it, do not execute it:
#
#   TMPDIR_TEST=$(mktemp -d)            # optional; created if unset
#   . tests/kafka_broker_start.sh
#   kafka_broker_start orders:3 events  # exports KAFKA_BROKERS, KAFKA_BROKER_PID,
#                                       # KAFKA_CONTROL (FIFO), KAFKA_BROKER_LOG
#   kafka_broker_ctl down               # waits for the broker's "ok ..." reply
#   kafka_broker_ctl up
#   kafka_broker_stop                   # SIGTERM + wait
#
# Options via environment: KAFKA_BROKER_BIN (default: build/kafka_broker next
# to this file's repo), KAFKA_BROKER_COUNT (default 1), KAFKA_BROKER_ARGS
# (extra arguments, word-split).  The broker's stdout (bootstrap line and
# command replies) goes to $TMPDIR_TEST/kafka_broker.out, stderr to
# $TMPDIR_TEST/kafka_broker.log.
#
# Note: librdkafka 2.0.2's mock broker delays the first JoinGroup of every
# group by a fixed 3 s; re-joining a group whose last member left waits
# session.timeout.ms - 1000 ms (45 s default!), so use fresh group ids or a
# small session.timeout.ms (e.g. 4000, heartbeat.interval.ms 1000).

_kafka_broker_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# kafka_broker_start TOPIC[:PARTITIONS] ...
kafka_broker_start() {
    local bin=${KAFKA_BROKER_BIN:-$_kafka_broker_repo/build/kafka_broker}
    local portfile i
    local -a extra=()

    if [ -z "${TMPDIR_TEST:-}" ]; then
        TMPDIR_TEST=$(mktemp -d) || return 1
        export TMPDIR_TEST
    fi
    mkdir -p "$TMPDIR_TEST" || return 1
    if [ ! -x "$bin" ]; then
        echo "kafka_broker_start: $bin not built" >&2
        return 1
    fi
    if [ -n "${KAFKA_BROKER_ARGS:-}" ]; then
        read -r -a extra <<<"$KAFKA_BROKER_ARGS"
    fi

    portfile=$TMPDIR_TEST/kafka_broker.port
    KAFKA_CONTROL=$TMPDIR_TEST/kafka_broker.ctl
    KAFKA_BROKER_LOG=$TMPDIR_TEST/kafka_broker.log
    KAFKA_BROKER_OUT=$TMPDIR_TEST/kafka_broker.out
    rm -f "$portfile" "$KAFKA_CONTROL"

    "$bin" --brokers "${KAFKA_BROKER_COUNT:-1}" --port-file "$portfile" \
        --control "$KAFKA_CONTROL" "${extra[@]}" "$@" \
        </dev/null >"$KAFKA_BROKER_OUT" 2>"$KAFKA_BROKER_LOG" &
    KAFKA_BROKER_PID=$!

    # Bounded wait (10 s) for the port file; no fixed sleeps.
    for ((i = 0; i < 200; i++)); do
        if [ -s "$portfile" ]; then
            KAFKA_BROKERS=$(head -n 1 "$portfile")
            export KAFKA_BROKERS KAFKA_BROKER_PID KAFKA_CONTROL \
                KAFKA_BROKER_LOG KAFKA_BROKER_OUT
            return 0
        fi
        if ! kill -0 "$KAFKA_BROKER_PID" 2>/dev/null; then
            echo "kafka_broker_start: broker exited early:" >&2
            cat "$KAFKA_BROKER_LOG" >&2
            wait "$KAFKA_BROKER_PID" 2>/dev/null
            unset KAFKA_BROKER_PID
            return 1
        fi
        sleep 0.05
    done
    echo "kafka_broker_start: no port file after 10 s" >&2
    kafka_broker_stop
    return 1
}

# kafka_broker_ctl CMD [ARGS]  -- e.g. "down", "up 2", "create t:3".
# Waits (max 10 s) for the reply line; prints it; returns 0 iff it is "ok ...".
kafka_broker_ctl() {
    local before reply i
    if [ -z "${KAFKA_CONTROL:-}" ] || [ ! -p "$KAFKA_CONTROL" ]; then
        echo "kafka_broker_ctl: no control FIFO (broker not started?)" >&2
        return 1
    fi
    before=$(wc -l <"$KAFKA_BROKER_OUT")
    # The broker holds the FIFO open read-write, so this open never blocks.
    printf '%s\n' "$*" >"$KAFKA_CONTROL" || return 1
    for ((i = 0; i < 1000; i++)); do
        if [ "$(wc -l <"$KAFKA_BROKER_OUT")" -gt "$before" ]; then
            reply=$(sed -n "$((before + 1))p" "$KAFKA_BROKER_OUT")
            echo "$reply"
            [ "${reply%% *}" = ok ]
            return
        fi
        sleep 0.01
    done
    echo "kafka_broker_ctl: no reply to '$*' within 10 s" >&2
    return 1
}

# kafka_broker_stop: SIGTERM the broker and wait for it (safe to call twice).
kafka_broker_stop() {
    local rc=0 i
    if [ -n "${KAFKA_BROKER_PID:-}" ]; then
        kill -TERM "$KAFKA_BROKER_PID" 2>/dev/null
        # Bounded: escalate to SIGKILL after 10 s.
        for ((i = 0; i < 200; i++)); do
            kill -0 "$KAFKA_BROKER_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$KAFKA_BROKER_PID" 2>/dev/null && rc=1
        wait "$KAFKA_BROKER_PID" 2>/dev/null || rc=$?
        unset KAFKA_BROKER_PID
    fi
    return "$rc"
}
