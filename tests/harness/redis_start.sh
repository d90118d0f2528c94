# redis_start.sh -- a private redis-server for the Redis tests (bash).
# Source it after lib.sh. The server lives in $T_DIR/redis, listens on a
# unix socket only (--port 0), and is killed by lib.sh's EXIT trap.
#
#   redis_start [redis-server args...]   start (args are kept for redis_restart)
#   redis_kill                           SIGKILL it (no shutdown save)
#   redis_restart [ARGS...]              start again in the same folder, with the
#                                        same args unless new ones are given
#   rcli ARGS...                         redis-cli on it, as an operator would
#   run_replica SECS ARGS...             one replica in the foreground on it,
#                                        bounded; sets RC and LOG
#   oneshot_cli ARGS...                  a subcommand with --redis set

RS_DIR=$T_DIR/redis
RS_SOCK=$RS_DIR/redis.sock
RS_URL=unix://$RS_SOCK
RS_ARGS=()
RS_PID=""

rcli() { redis-cli -s "$RS_SOCK" "$@"; }

redis_ready() { [ "$(redis-cli -s "$RS_SOCK" PING 2>/dev/null)" = PONG ]; }

redis_start() {
    mkdir -p "$RS_DIR"
    RS_ARGS=("$@")
    redis-server --port 0 --unixsocket "$RS_SOCK" --unixsocketperm 700 --dir "$RS_DIR" \
        --save '' --appendonly no --logfile "$RS_DIR/redis.log" "$@" >/dev/null 2>&1 &
    RS_PID=$!
    T_PIDS+=("$RS_PID")
    wait_for 10 redis_ready || {
        fail "redis-server did not start: $(tail -3 "$RS_DIR/redis.log" 2>/dev/null)"
        return 1
    }
}

redis_kill() {
    [ -n "$RS_PID" ] || return 0
    kill -KILL "$RS_PID" 2>/dev/null
    wait "$RS_PID" 2>/dev/null
    RS_PID=""
}

redis_restart() { # [new redis-server args...]
    redis_kill
    if [ $# -gt 0 ]; then redis_start "$@"; else redis_start "${RS_ARGS[@]}"; fi
}

run_replica() { # seconds args...
    local secs=$1
    shift
    LOG=$(mktemp "$T_DIR/replica.XXXXXX")
    RC=0
    timeout -s KILL "$secs" "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" "$@" \
        2>"$LOG" >/dev/null || RC=$?
    check_sanitizers "$LOG"
}

oneshot_cli() { "$ONESHOT" "$@" --redis "$RS_URL"; }

# The value of a field of a job's status hash.
job_field() { rcli HGET "oneshot:job:$1" "$2"; }

# Succeeds once the job's state is $2.
job_state_is() { [ "$(job_field "$1" state)" = "$2" ]; }

# A redis-cli subscriber of oneshot:events writing to $T_DIR/events (pid
# in EVENTS_PID, killed with the test's T_PIDS; an earlier test's is
# killed first, so one writes the file). Returns once Redis counts it, so
# no event published after the call is missed.
subscribe_events() {
    if [ -n "${EVENTS_PID:-}" ]; then
        kill "$EVENTS_PID" 2>/dev/null
        wait "$EVENTS_PID" 2>/dev/null
    fi
    redis-cli -s "$RS_SOCK" SUBSCRIBE oneshot:events >"$T_DIR/events" &
    EVENTS_PID=$!
    T_PIDS+=("$EVENTS_PID")
    wait_for 5 sh -c "[ \"\$(redis-cli -s '$RS_SOCK' PUBSUB NUMSUB oneshot:events | tail -1)\" = 1 ]" ||
        fail "subscriber not ready"
}
