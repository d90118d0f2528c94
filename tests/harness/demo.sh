#!/usr/bin/env bash
# demo.sh -- `make demo`: the main job end to end on this machine.
#
# Starts a private redis-server (unix socket) and a real Kafka broker
# (tests/brokers/kafka_broker_start.sh), enqueues demo jobs with `oneshot submit`, drains
# them with `oneshot fleet` (one replica per job), runs one HTTP job with
# curl, shows the records with `oneshot status` and a table, and stops
# everything it started. Exits 0 when every job ended as expected.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${ONESHOT_BUILD:-build}
BIN=$PWD/$BUILD/oneshot
dir=$(mktemp -d /tmp/oneshot-demo.XXXXXX)
redis_pid=""
http_pid=""

cleanup() {
    [ -n "$http_pid" ] && kill -KILL "$http_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill -KILL "$redis_pid" 2>/dev/null
    if declare -F kafka_broker_stop >/dev/null; then
        [ "${demo_ok:-0}" = 1 ] || kafka_broker_keep_log always
        kafka_broker_stop >/dev/null 2>&1
    fi
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo: $*" >&2
    exit 1
}
# A field of a one-line JSON object: "name":"text" or "name":number.
jf() { # json name
    printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.]*\)" | head -1 | cut -d: -f2- | tr -d '"'
}

# -- the brokers --------------------------------------------------------------
step "starting a private redis-server and the test Kafka broker"
redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" --save '' \
    --appendonly no --logfile "$dir/redis.log" >/dev/null 2>&1 &
redis_pid=$!
for _ in $(seq 250); do
    [ "$(redis-cli -s "$dir/redis.sock" PING 2>/dev/null)" = PONG ] && break
    sleep 0.02
done
[ "$(redis-cli -s "$dir/redis.sock" PING 2>/dev/null)" = PONG ] || die "redis-server did not start"
export ONESHOT_REDIS_URL=unix://$dir/redis.sock
echo "redis: $ONESHOT_REDIS_URL"

export TMPDIR_TEST=$dir/kafka
. tests/brokers/kafka_broker_start.sh
kafka_broker_start kdemo kdemo.results kdemo.status kdemo.dead >/dev/null ||
    die "the Kafka broker did not start"
echo "kafka: $KAFKA_BROKERS (Apache Kafka $(basename "$(ls tests/brokers/kafka/target/libs/kafka_2.13-*.jar)" .jar | cut -d- -f2), KRaft, one JVM), topic kdemo"

# -- Redis list jobs through the fleet ----------------------------------------
step "oneshot submit: 4 jobs on the Redis list 'demo' (demo-4 fails on purpose)"
submit() { # id input [submit options]
    local id=$1 in=$2
    shift 2
    printf '%-8s %s -> ' "$id" "$in"
    "$BIN" submit "$in" --id "$id" "$@" || die "submit $id failed"
}
submit demo-1 '{"duration":1}' --queue demo
submit demo-2 '{"duration":2}' --queue demo
submit demo-3 '{"duration":1}' --queue demo
submit demo-4 '{"duration":1,"failed":true}' --queue demo

step "oneshot fleet --drain --max-concurrent 4 -- --source redis-list --queue demo --max-attempts 1"
t0=$EPOCHREALTIME
timeout 60 "$BIN" fleet --drain --max-concurrent 4 -- --source redis-list --queue demo --max-attempts 1 \
    --bind 127.0.0.1 >"$dir/fleet1.sum" 2>"$dir/fleet1.log"
rc1=$?
echo "a few of its log lines (each replica's lines carry its pid):"
grep -E '"msg":"(fleet started|claimed job|Progress: 1/2|exit 1 )|"msg":"drained' "$dir/fleet1.log" | head -7 | cut -c1-150
echo "summary (stdout): $(cat "$dir/fleet1.sum")"
echo "fleet exit code $rc1 (1: a replica that took a job did not exit 0 -- demo-4)"
fleet1_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')

# -- Kafka jobs through the fleet (results and records in Redis) ---------------
step "oneshot submit --source kafka: 2 jobs on topic kdemo"
KOPTS=(--source kafka --kafka "$KAFKA_BROKERS" --queue kdemo)
submit kafka-1 '{"duration":0}' "${KOPTS[@]}"
submit kafka-2 '{"duration":1}' "${KOPTS[@]}"

step "oneshot fleet --drain -- --source kafka ... --store redis (one replica at a time: one partition)"
timeout 60 "$BIN" fleet --drain --max-concurrent 1 -- "${KOPTS[@]}" --group demo --store redis --bind 127.0.0.1 \
    >"$dir/fleet2.sum" 2>"$dir/fleet2.log"
rc2=$?
echo "summary (stdout): $(cat "$dir/fleet2.sum")"
echo "fleet exit code $rc2"

# -- one HTTP job ---------------------------------------------------------------
step "one HTTP job: oneshot --port 0 --store redis, then curl -X POST /job?duration=1"
"$BIN" --port 0 --bind 127.0.0.1 --store redis 2>"$dir/http.log" &
http_pid=$!
port=""
for _ in $(seq 500); do
    port=$(grep -o '"port":[0-9]*' "$dir/http.log" | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.01
done
[ -n "$port" ] || die "the HTTP replica did not start: $(tail -2 "$dir/http.log")"
echo "GET /health -> $(curl -s -m 10 "http://127.0.0.1:$port/health")"
echo "POST /job   -> $(curl -s -m 20 -X POST -H 'X-Inference-Id: http-1' -H 'Content-Type: application/json' \
    -d '{"note":"hello from make demo"}' -w ' (HTTP %{http_code})' "http://127.0.0.1:$port/job?duration=1")"
rc3=0
wait "$http_pid" || rc3=$?
http_pid=""
echo "replica exit code $rc3"

# -- the records ------------------------------------------------------------------
step "oneshot status demo-2"
"$BIN" status demo-2

step "every job (oneshot status ID)"
printf '%-8s %-11s %-10s %-9s %-7s %-11s %s\n' JOB SOURCE STATE EXIT_CODE ATTEMPT DURATION_MS WORKER
bad=0
expect() { # id state
    local rec state
    rec=$("$BIN" status "$1" 2>&1) || rec=""
    state=$(jf "$rec" state)
    printf '%-8s %-11s %-10s %-9s %-7s %-11s %s\n' "$1" "$(jf "$rec" source)" "${state:-?}" \
        "$(jf "$rec" exit_code)" "$(jf "$rec" attempt)" "$(jf "$rec" duration_ms)" "$(jf "$rec" worker)"
    [ "$state" = "$2" ] || {
        echo "   expected $2" >&2
        bad=1
    }
}
expect demo-1 succeeded
expect demo-2 succeeded
expect demo-3 succeeded
expect demo-4 dead # failed on its only attempt: dead-lettered
expect kafka-1 succeeded
expect kafka-2 succeeded
expect http-1 succeeded

step "summary"
printf '%-34s %s\n' "redis-list fleet (4 jobs, N=4)" \
    "done $(jf "$(cat "$dir/fleet1.sum")" "done"), failed $(jf "$(cat "$dir/fleet1.sum")" failed), replicas $(jf "$(cat "$dir/fleet1.sum")" replicas), peak $(jf "$(cat "$dir/fleet1.sum")" peak), ${fleet1_s} s"
printf '%-34s %s\n' "kafka fleet (2 jobs, N=1)" \
    "done $(jf "$(cat "$dir/fleet2.sum")" "done"), replicas $(jf "$(cat "$dir/fleet2.sum")" replicas), $(jf "$(cat "$dir/fleet2.sum")" wall_s) s"
printf '%-34s %s\n' "http job" "replica exit $rc3"
printf '%-34s %s\n' "dead letters on demo.dead" "$(redis-cli -s "$dir/redis.sock" LLEN demo.dead)"
[ "$rc1" -eq 1 ] && [ "$rc2" -eq 0 ] && [ "$rc3" -eq 0 ] && [ "$bad" -eq 0 ] || die "something did not end as expected (logs were in $dir)"
demo_ok=1
echo
echo "demo: every job ended as expected; stopping redis-server and the Kafka broker"
