#!/usr/bin/env bash
# chaos.sh -- `make chaos`: per source, `oneshot fleet --drain
# --max-concurrent 4 -- ... --lease 3 --max-attempts 10` works through a
# queue of jobs while a chaos loop SIGKILLs replicas at random and the
# broker is restarted once (Redis: SIGKILL of redis-server, which runs with
# appendonly yes and appendfsync always, then started again on the same
# socket and folder; Kafka: the real test broker SIGKILLed, then started
# again on the same data and port, tests/brokers/kafka_broker_start.sh). Then:
# every job has a final record (succeeded with its result, or dead with a
# dead letter), every job ran, nothing is left pending (list: queue and
# processing lists; stream: XPENDING and the group's lag; Kafka: committed
# offsets against the high watermarks, as the fleet reads them), and the
# duplicate executions are counted. The history -- every record transition
# published on oneshot:events -- is checked by tests/chaos/chaos_check.py: no
# write under a stale fence applied, no final record overwritten or written
# twice (its figures are in the "# chaos" line).
#
# The jobs run the exec core on a bash script that appends "<id> <pid>
# <attempt> start" and, after sleeping 50..500 ms, "... end" to one log
# (O_APPEND, one short write each: lines never interleave), then prints
# "done <id>", the result. So:
#   duplicates = executions started - distinct jobs started
# (a job run again after its replica was killed mid-job); "completed twice"
# counts programs that ran to the end more than once (the replica was
# killed after the program ended, before the record was written).
#
# The kill loop: every 100..300 ms (Kafka: 2..5 s; each kill stalls a
# partition for session.timeout.ms, 6 s here) one of the 4 --max-concurrent
# slots is picked at random and its replica, if it has one, is SIGKILLed
# (one time in four it is instead paused with SIGSTOP until a second past
# its lease, then resumed: a stale writer): each replica's risk
# stays the same however few run (a fixed kill rate would kill the last
# replicas of a run over and over before they could finish). The kills
# stop once 90 % of the jobs ran to the end, or half the time bound is
# used; the broker restart comes when a third of the jobs ran.
#
# Settings (environment): CHAOS_JOBS (200), CHAOS_KAFKA_JOBS (100),
# CHAOS_SOURCES ("redis-list redis-stream kafka"), CHAOS_MAX_S (the bound
# on one source's run: 240 s, Kafka 600 s), CHAOS_DOWN_MS (1000: how long
# the broker stays away), CHAOS_KAFKA_KILL_MIN_MS / _MAX_MS (2000, 5000),
# CHAOS_LOGS (a folder that keeps each source's fleet log, summary and
# executions log). tests/e2e/chaos_smoke.sh runs it with 40 jobs on the
# Redis sources and 20 on Kafka in `make test`.
#
# Output: PASS/FAIL lines (tests/harness/lib.sh), and per source one line of
# figures starting "# chaos <source>:". Exit 0 when every source passed.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

JOBS_ALL=${CHAOS_JOBS:-200}
SOURCES=${CHAOS_SOURCES:-redis-list redis-stream kafka}
DOWN_MS=${CHAOS_DOWN_MS:-1000}
LEASE=3
ATTEMPTS=10
MAXC=4

# On the way out, the fleet's replicas too (killed with the fleet, they
# would wait out their SIGTERM grace).
FPID=""
chaos_cleanup() {
    [ -n "$FPID" ] && pkill -KILL -P "$FPID" 2>/dev/null
    t_cleanup
}
trap chaos_cleanup EXIT

# Redis with AOF, fsync at every write: a SIGKILL of the server loses
# nothing it acknowledged.
redis_start --appendonly yes --appendfsync always || exit 1

JOB=$T_DIR/job.sh
export CHAOS_EXECLOG=$T_DIR/executions.log
cat >"$JOB" <<'EOF'
#!/bin/bash
printf '%s %s %s start\n' "$ONESHOT_JOB_ID" "$$" "$ONESHOT_ATTEMPT" >>"$CHAOS_EXECLOG"
sleep "0.$(printf %03d $((RANDOM % 451 + 50)))"
printf '%s %s %s end\n' "$ONESHOT_JOB_ID" "$$" "$ONESHOT_ATTEMPT" >>"$CHAOS_EXECLOG"
printf 'done %s' "$ONESHOT_JOB_ID"
EOF
chmod +x "$JOB"

# Distinct jobs whose program ran to the end (progress, read from the log:
# it works while the broker is away).
ended() { awk '$4 == "end" { print $1 }' "$CHAOS_EXECLOG" 2>/dev/null | sort -u | wc -l; }

# The replicas: the fleet's live children (zombies are not killable).
replicas() { ps -o pid=,stat= --ppid "$FPID" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }'; }

# A sleep of 100..300 ms; the time in ms.
tick() { sleep "0.$((RANDOM % 201 + 100))"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# --- the brokers ---

kafka_up=0
kafka_setup() {
    [ "$kafka_up" = 1 ] && return 0
    export TMPDIR_TEST=$T_DIR/kafka
    . "$ROOT/tests/brokers/kafka_broker_start.sh"
    kafka_broker_start || {
        kafka_broker_keep_log always
        return 1
    }
    kafka_up=1
}

broker_restart() { # source
    if [ "$1" = kafka ]; then
        kafka_broker_ctl down kill || fail "kafka broker down"
        sleep "$((DOWN_MS / 1000)).$(printf %03d $((DOWN_MS % 1000)))"
        kafka_broker_ctl up || fail "kafka broker up"
    else
        redis_kill
        sleep "$((DOWN_MS / 1000)).$(printf %03d $((DOWN_MS % 1000)))"
        redis_start "${RS_ARGS[@]}" || fail "redis did not come back"
        history_subscribe # the subscription died with the server
    fi
}

# The history: every record transition published on oneshot:events, one
# file per subscription (a broker restart ends one), checked at the end by
# tests/chaos/chaos_check.py.
HIST_N=0
history_subscribe() {
    HIST_N=$((HIST_N + 1))
    redis-cli -s "$RS_SOCK" SUBSCRIBE oneshot:events >"$T_DIR/history.$HIST_N" 2>/dev/null &
    T_PIDS+=($!)
    wait_for 5 sh -c "[ \"\$(redis-cli -s '$RS_SOCK' PUBSUB NUMSUB oneshot:events | tail -1)\" -ge 1 ]" ||
        fail "history: subscriber not ready"
}

# A replica paused past its lease (SIGSTOP, then SIGCONT 1 s after the
# lease ran out): the stale writer the fences must stop.
pause_replica() { # pid
    (kill -STOP "$1" 2>/dev/null && sleep $((LEASE + 1)) && kill -CONT "$1" 2>/dev/null) &
}

# --- one source ---

# submit SOURCE: c1..cN with input {"n":i}.
submit() {
    local i
    case "$1" in
    redis-list)
        for ((i = 1; i <= JOBS; i++)); do
            printf "LPUSH jobs '{\"id\":\"c%d\",\"input\":{\"n\":%d}}'\n" "$i" "$i"
        done | rcli >/dev/null
        ;;
    redis-stream)
        for ((i = 1; i <= JOBS; i++)); do
            printf "XADD jobs * input '{\"n\":%d}' id c%d\n" "$i" "$i"
        done | rcli >/dev/null
        ;;
    kafka)
        for ((i = 1; i <= JOBS; i++)); do
            printf 'c%d\t{"id":"c%d","input":{"n":%d}}\n' "$i" "$i" "$i"
        done | kcat -P -b "$KAFKA_BROKERS" -t jobs -K '\t' || fail "kcat produce"
        ;;
    esac
}

# The replica options per source (after the fleet's `--`).
replica_opts() {
    R_OPTS=(--redis "$RS_URL" --bind 127.0.0.1 --lease "$LEASE" --max-attempts "$ATTEMPTS" --queue jobs)
    case "$1" in
    redis-list | redis-stream) R_OPTS+=(--source "$1") ;;
    kafka)
        R_OPTS+=(--source kafka --kafka "$KAFKA_BROKERS" --group chaos --store redis
            --kafka-prop session.timeout.ms=6000)
        ;;
    esac
}

# Nothing pending: a line "what=N" per place that must be empty.
pending() { # source
    case "$1" in
    redis-list)
        echo "queue=$(rcli LLEN jobs)"
        echo "processing=$(rcli EVAL "local n = 0
            for _, k in ipairs(redis.call('KEYS', 'jobs:processing:*')) do n = n + redis.call('LLEN', k) end
            return n" 0)"
        ;;
    redis-stream)
        echo "pending=$(rcli XPENDING jobs oneshot | head -1)"
        echo "lag=$(rcli XINFO GROUPS jobs | awk 'p { print; exit } $1 == "lag" { p = 1 }')"
        ;;
    kafka)
        # high watermark - committed offset over the partitions, as the
        # fleet reads it: a fleet on a drained topic starts nothing
        local out
        out=$(timeout 60 "$ONESHOT" fleet --drain --max-concurrent 1 --log-level debug -- "${R_OPTS[@]}" \
            --core echo 2>&1)
        echo "lag=$(grep -o '"waiting":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)"
        echo "replicas_for_leftovers=$(grep -o '"replicas":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)"
        ;;
    esac
}

# The records of c1..cN in the store (Redis for every source). Sets SUCC
# and DEAD (counts) and BAD: "id=state" for each job that is neither
# succeeded with its result nor dead, space-separated.
records() {
    local r
    r=$(rcli EVAL "local s, d, bad = 0, 0, {}
        for i = 1, $JOBS do
          local id = 'c' .. i
          local st = redis.call('HGET', 'oneshot:job:' .. id, 'state')
          if st == 'succeeded' and redis.call('GET', 'oneshot:result:' .. id) == 'done ' .. id then
            s = s + 1
          elseif st == 'dead' then d = d + 1
          elseif st == 'succeeded' then bad[#bad + 1] = id .. '=succeeded-without-its-result'
          else bad[#bad + 1] = id .. '=' .. (st or 'no-record') end
        end
        return {s, d, table.concat(bad, ' ')}" 0)
    SUCC=$(sed -n 1p <<<"$r")
    DEAD=$(sed -n 2p <<<"$r")
    BAD=$(sed -n 3p <<<"$r")
}

run_source() { # source
    local src=$1 t0 kills=0 pauses=0 restarts=0 ended_n rc v
    JOBS=$JOBS_ALL
    [ "$src" = kafka ] && JOBS=${CHAOS_KAFKA_JOBS:-100}
    rcli FLUSHALL >/dev/null
    : >"$CHAOS_EXECLOG"
    rm -f "$T_DIR"/history.*
    history_subscribe
    if [ "$src" = kafka ]; then
        kafka_setup || {
            fail "the Kafka test broker did not start"
            return
        }
        kafka_broker_ctl create jobs:4 jobs.results jobs.status jobs.dead || fail "create the topics"
    fi
    submit "$src"
    replica_opts "$src"
    FLOG=$T_DIR/fleet-$src.log
    SUM=$T_DIR/fleet-$src.sum
    local max_s=${CHAOS_MAX_S:-240} kmin=100 kmax=300 next_kill now
    if [ "$src" = kafka ]; then # see the header: Kafka replicas live seconds
        max_s=${CHAOS_KAFKA_MAX_S:-${CHAOS_MAX_S:-600}}
        kmin=${CHAOS_KAFKA_KILL_MIN_MS:-2000}
        kmax=${CHAOS_KAFKA_KILL_MAX_MS:-5000}
    fi
    t0=$SECONDS
    "$ONESHOT" fleet --drain --max-concurrent "$MAXC" --poll-ms 50 -- "${R_OPTS[@]}" -- "$JOB" >"$SUM" 2>"$FLOG" &
    FPID=$!
    T_PIDS+=("$FPID")
    next_kill=$(($(now_ms) + kmin + RANDOM % (kmax - kmin + 1)))
    # the chaos loop, until the fleet has drained the queue (bounded)
    while kill -0 "$FPID" 2>/dev/null; do
        if [ $((SECONDS - t0)) -ge "$max_s" ]; then
            fail "$src: not drained within $max_s s"
            kill -INT "$FPID" 2>/dev/null
            break
        fi
        tick
        ended_n=$(ended)
        if [ "$restarts" = 0 ] && [ "$ended_n" -ge $((JOBS / 3)) ]; then
            broker_restart "$src"
            restarts=1
        fi
        now=$(now_ms)
        [ "$now" -ge "$next_kill" ] || continue
        next_kill=$((now + kmin + RANDOM % (kmax - kmin + 1)))
        if [ "$ended_n" -lt $((JOBS * 9 / 10)) ] && [ $((SECONDS - t0)) -lt $((max_s / 2)) ]; then
            # one of the --max-concurrent slots at random: its replica, if
            # any, is killed (each replica's risk stays the same however
            # few run)
            mapfile -t live < <(replicas)
            v=$((RANDOM % MAXC))
            if [ "$v" -lt "${#live[@]}" ]; then
                # one in four: paused past its lease instead of killed
                if [ $((RANDOM % 4)) = 0 ]; then
                    pause_replica "${live[$v]}" && pauses=$((pauses + 1))
                else
                    kill -KILL "${live[$v]}" 2>/dev/null && kills=$((kills + 1))
                fi
            fi
        fi
    done
    wait_exit "$FPID" 60
    rc=$W_RC
    local wall=$((SECONDS - t0))
    # the fleet ends by itself; replicas it saw killed make it exit 1
    case "$rc" in 0 | 1) ;; *) fail "$src: fleet exit code $rc: $(tail -2 "$FLOG")" ;; esac
    check_sanitizers "$FLOG"
    records
    local starts dstarts ends dends never lost dead_letters
    starts=$(awk '$4 == "start"' "$CHAOS_EXECLOG" | wc -l)
    dstarts=$(awk '$4 == "start" { print $1 }' "$CHAOS_EXECLOG" | sort -u | wc -l)
    ends=$(awk '$4 == "end"' "$CHAOS_EXECLOG" | wc -l)
    dends=$(awk '$4 == "end" { print $1 }' "$CHAOS_EXECLOG" | sort -u | wc -l)
    # never executed: submitted ids without a "start" line
    never=$(comm -23 <(seq 1 "$JOBS" | sed 's/^/c/' | sort) \
        <(awk '$4 == "start" { print $1 }' "$CHAOS_EXECLOG" | sort -u) | tr '\n' ' ')
    # lost: without a final state (or succeeded without its result), or never executed
    lost=$(printf '%s\n' $BAD $never | sed 's/=.*//' | sort -u | grep -c .)
    [ -z "$BAD" ] || fail "$src: not final or without a result: $(printf %.300s "$BAD")"
    [ -z "$never" ] || fail "$src: never executed: $(printf %.300s "$never")"
    # dead letters match the dead records
    case "$src" in
    redis-list) dead_letters=$(rcli LLEN jobs.dead) ;;
    redis-stream) dead_letters=$(rcli XLEN jobs.dead) ;;
    kafka) dead_letters=$(timeout 20 kcat -C -b "$KAFKA_BROKERS" -t jobs.dead -o beginning -e -q 2>/dev/null | wc -l) ;;
    esac
    assert_eq "$dead_letters" "$DEAD" "$src: dead letters"
    # nothing pending
    local p
    while read -r p; do
        assert_eq "${p#*=}" 0 "$src: ${p%%=*}"
    done < <(pending "$src")
    [ "$restarts" = 1 ] || fail "$src: the broker was not restarted ($(ended) jobs ended)"
    [ "$kills" -gt 0 ] || fail "$src: no replica was killed"
    if [ -n "${CHAOS_LOGS:-}" ]; then
        mkdir -p "$CHAOS_LOGS" && cp "$FLOG" "$SUM" "$CHAOS_LOGS/" && cp "$CHAOS_EXECLOG" "$CHAOS_LOGS/executions-$src.log"
    fi
    local other hist
    other=$(grep -o '"other":[0-9]*' "$SUM" | cut -d: -f2)
    sleep 0.2 # the subscribers' last lines
    hist=$(python3 "$ROOT/tests/chaos/chaos_check.py" "$T_DIR"/history.*) || fail "$src: history: $(printf %.500s "$hist")"
    echo "# chaos $src: jobs=$JOBS kills=$kills pauses=$pauses broker_restarts=$restarts lost=$lost" \
        "$(head -1 <<<"$hist")" \
        "duplicates=$((starts - dstarts)) (executions=$starts, completed twice=$((ends - dends)))" \
        "succeeded=$SUCC dead=$DEAD replicas=$(grep -o '"replicas":[0-9]*' "$SUM" | cut -d: -f2)" \
        "killed_seen=${other:-?} wall_s=$wall"
}

CHAOS_RC=0
t_list() { run_source redis-list; }
t_stream() { run_source redis-stream; }
t_kafka() { run_source kafka; }

for s in $SOURCES; do
    case "$s" in
    redis-list) fn=t_list ;;
    redis-stream) fn=t_stream ;;
    kafka) fn=t_kafka ;;
    *)
        echo "FAIL chaos: unknown source $s"
        CHAOS_RC=1
        continue
        ;;
    esac
    JOBS=$JOBS_ALL
    [ "$s" = kafka ] && JOBS=${CHAOS_KAFKA_JOBS:-100}
    t_run "chaos $s: $JOBS jobs, random SIGKILLs, one broker restart: none lost, all final, nothing pending" "$fn"
    [ "$T_FAILED" = 0 ] || CHAOS_RC=1
done
# 0: every source passed; 1: a FAIL line says what did not
exit "$CHAOS_RC"
