#!/usr/bin/env bash
# run.sh -- `make bench`: oneshot against its peers, side by side in one run.
#
# Every subject is a command that build/startbench starts N times; the runs of
# all subjects are interleaved (one of each in turn) so the machine's drift
# hits them alike, after one discarded warm-up run each. Every run prints a
# JSON line (ready_ms, rss_kb, resp_ms, cycle_ms, exit_code) into
# $BUILD/bench/raw.jsonl; report.py turns the rows below into medians, ratios
# and a Markdown table, printed and written to $BUILD/bench/results.md.
# A missed target prints MISSED; the exit code stays 0 (a report, not a test).
#
# To add a measurement: one `subject` line (the command, with {PORT}; {ID}
# is a per-run token for the --pre/--post hooks) and one `row` line (which
# metric, which two subjects, the target; report.py documents the modes).
#
# One private redis-server (unix socket in a temp folder, removed on exit)
# serves the queue rows and the fleet rows; one test
# Kafka broker (tests/brokers/kafka_broker_start.sh, Apache Kafka in one JVM) the
# Kafka rows.
#
#   BENCH_N=5 make bench      same N for every startbench subject (defaults below)
#   BENCH_FLEET_N, BENCH_FLEET_JOBS   fleet rounds and jobs per round
#   BENCH_KAFKA_N=11          Kafka one-shot runs per subject (9 subjects)
#   BENCH_KFLEET_N, BENCH_KFLEET_JOBS  Kafka fleet rounds (2) and jobs (500)
#   BENCH_ONLY=kafka          only the Kafka rows (while working on them)
#   BENCH_ONLY=static         only the static-against-dynamic rows
#   BENCH_SLOWLOG=1           the private Redis logs every command; its time
#                             per script and command printed at the end
#                             (tests/bench/slowlog.py; it slows every row)
#   ONESHOT_BUILD=dir         build folder (default build)
set -u
cd "$(dirname "$0")/../.."
BUILD=${ONESHOT_BUILD:-build}
OUT=$BUILD/bench
SB=$BUILD/startbench
PY=/usr/bin/python3 # Debian's: it has python3-fastapi and python3-uvicorn

BARE=$BUILD/bare_hiredis
STATIC=$BUILD/oneshot-static # `make static` (deploy/README.md "Static build")
if [ ! -x "$SB" ] || [ ! -x "$BUILD/oneshot" ] || [ ! -x "$BARE" ] || [ ! -x "$BUILD/kafka_admin" ] || [ ! -x "$STATIC" ]; then
    echo "run.sh: $SB, $BARE, $BUILD/kafka_admin, $BUILD/oneshot or $STATIC missing; run 'make bench'" >&2
    exit 2
fi
mkdir -p "$OUT"

# -- the private Redis, the 64 MiB payload, the per-run hooks ----------------
fdir=$(mktemp -d /tmp/oneshot-bench.XXXXXX)
fredis=""
trap '{ [ -n "$fredis" ] && kill -KILL "$fredis"; for p in "${BUSY[@]:-}"; do [ -n "$p" ] && kill -KILL "$p"; done
        [ -n "${KAFKA_BROKER_PID:-}" ] && kill -TERM "$KAFKA_BROKER_PID"; wait; } 2>/dev/null; rm -rf "$fdir"' EXIT
redis-server --port 0 --unixsocket "$fdir/redis.sock" --unixsocketperm 700 --dir "$fdir" --save '' \
    --appendonly no --logfile "$fdir/redis.log" >/dev/null 2>&1 &
fredis=$!
for ((i = 0; i < 250; i++)); do
    [ "$(redis-cli -s "$fdir/redis.sock" PING 2>/dev/null)" = PONG ] && break
    sleep 0.02
done
if [ "$(redis-cli -s "$fdir/redis.sock" PING 2>/dev/null)" != PONG ]; then
    echo "run.sh: redis-server did not start: $(tail -3 "$fdir/redis.log" 2>/dev/null)" >&2
    exit 2
fi
FURL=unix://$fdir/redis.sock
if [ "${BENCH_SLOWLOG:-}" = 1 ]; then
    redis-cli -s "$fdir/redis.sock" CONFIG SET slowlog-log-slower-than 0 >/dev/null &&
        redis-cli -s "$fdir/redis.sock" CONFIG SET slowlog-max-len 1000000 >/dev/null || exit 2
fi
# One real Kafka broker (tests/brokers/kafka_broker_start.sh) for the Kafka rows
# stopped by the trap above.
export TMPDIR_TEST=$fdir/kafka
. tests/brokers/kafka_broker_start.sh
if ! kafka_broker_start >/dev/null; then
    echo "run.sh: the Kafka broker did not start: $(tail -3 "$fdir/kafka/kafka.log" 2>/dev/null)" >&2
    exit 2
fi
fcli() { redis-cli -s "$fdir/redis.sock" "$@"; }
PAYLOAD=$fdir/64m
head -c $((64 * 1048576)) /dev/urandom >"$PAYLOAD"
# hook.sh: what startbench runs off the clock before (--pre) and after
# (--post) each queue run; one redis-cli call each, no shell quoting games.
HOOK=$fdir/hook.sh
cat >"$HOOK" <<SH
#!/bin/sh
# hook.sh lpush|xadd QUEUE ID | check PREFIX ID | rqcheck ID
c() { redis-cli -s '$fdir/redis.sock' "\$@"; }
case \$1 in
lpush) c EVAL "redis.call('DEL', KEYS[1]); return redis.call('LPUSH', KEYS[1], ARGV[1])" 1 "\$2" \
           "{\"id\":\"\$3\",\"input\":{\"n\":1}}" >/dev/null ;;
xadd) c EVAL "redis.call('XTRIM', KEYS[1], 'MAXLEN', 0); return redis.call('XADD', KEYS[1], '*', 'input', ARGV[1], 'id', ARGV[2])" \
          1 "\$2" '{"n":1}' "\$3" >/dev/null ;;
check) [ "\$(c EVAL "return redis.call('EXISTS', KEYS[1]) .. ':' .. (redis.call('HGET', KEYS[2], 'state') or '')" \
              2 "\$2:result:\$3" "\$2:job:\$3")" = 1:succeeded ] ;;
rqcheck) [ "\$(c HGET "rq:job:\$2" status)" = finished ] ;;
*) exit 2 ;;
esac
SH
chmod +x "$HOOK"

# shquote ARGS... -> one line that a shell (and a reader) takes back as ARGS
shquote() {
    local a out=""
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./=:,+@-]+$ ]]; then
            out+=" $a"
        else
            out+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    printf '%s' "${out# }"
}
# subject NAME N STARTBENCH-ARGS... -- CMD ARGS...
SUBJECTS=()
declare -A SUBJ_N SUBJ_ARGS
subject() {
    local name=$1 n=$2
    shift 2
    SUBJECTS+=("$name")
    SUBJ_N[$name]=${BENCH_N:-$n}
    SUBJ_ARGS[$name]=$(shquote "$@")
}
# row "LABEL|METRIC|SUBJECT|PEER|UNIT|SUBJECT MAX (empty: none)|MIN RATIO"
# Ratio = peer / subject, so bigger means oneshot is faster or smaller.
ROWS=()
row() { ROWS+=(--row "$1"); }
# srow: a static-against-dynamic row (also kept for BENCH_ONLY=static).
SROWS=()
srow() { row "$1"; SROWS+=(--row "$1"); }

# -- HTTP source, demo core, against the FastAPI example ----------
# One --job run gives all three numbers: the start -> 200 phase and the RSS
# read are the same whether or not a job follows.
JOB='/job?duration=0'
subject oneshot 21 --job "$JOB" -- "$BUILD/oneshot" --port '{PORT}' --bind 127.0.0.1
subject fastapi 11 --job "$JOB" -- "$PY" tests/bench/peer_fastapi.py --port '{PORT}'
row "start -> first 200 on /health|ready_ms|oneshot|fastapi|ms|5|30"
row "cycle: start -> POST $JOB -> exit|cycle_ms|oneshot|fastapi|ms||50"
row "idle VmRSS after first 200|rss_kb|oneshot|fastapi|kB|8192|5"

# -- one-shot Redis replicas, against a bare hiredis client and RQ --
# Each run: --pre queues one job (list: DEL + LPUSH; stream: XTRIM + XADD;
# RQ: empty the queue + enqueue, in python) off the clock; the clock runs
# from fork to the reaped exit (exit 0 required); --post checks the run's
# own job (result key exists and the status hash says succeeded; RQ: the
# job hash says finished), so a run that took a stale job or none fails.
RQ_ONE=(--env PYTHONPATH=tests/bench --pre "$PY tests/bench/rq_jobs.py --url $FURL --queue rqone --enqueue-one {ID}"
        --post "$HOOK rqcheck {ID}")
fcli XGROUP CREATE qsb bare 0 MKSTREAM >/dev/null
subject list-oneshot 31 --exit-only --pre "$HOOK lpush ql {ID}" --post "$HOOK check oneshot {ID}" -- \
    "$BUILD/oneshot" --source redis-list --redis "$FURL" --core echo --port 0 --idle-timeout 1 --queue ql
subject list-bare 31 --exit-only --pre "$HOOK lpush qlb {ID}" --post "$HOOK check bare {ID}" -- \
    "$BARE" list "$FURL" qlb
subject stream-oneshot 31 --exit-only --pre "$HOOK xadd qs {ID}" --post "$HOOK check oneshot {ID}" -- \
    "$BUILD/oneshot" --source redis-stream --redis "$FURL" --core echo --port 0 --idle-timeout 1 --queue qs
subject stream-bare 31 --exit-only --pre "$HOOK xadd qsb {ID}" --post "$HOOK check bare {ID}" -- \
    "$BARE" stream "$FURL" qsb bare
subject rq-one 11 --exit-only "${RQ_ONE[@]}" -- /usr/bin/rq worker --burst --max-jobs 1 --quiet --url "$FURL" rqone
LIFE="fork -> claim -> echo -> result + status -> ack -> exit"
row "redis-list replica, 1 LPUSHed job: $LIFE|cycle_ms|list-oneshot|list-bare|ms|3|1.5|within"
row "redis-list replica vs \`rq worker --burst --max-jobs 1\` (1 job)|cycle_ms|list-oneshot|rq-one|ms||30"
row "redis-stream replica, 1 XADDed job: $LIFE|cycle_ms|stream-oneshot|stream-bare|ms|3|1.5|within"
row "redis-stream replica vs the same list-based RQ run (RQ has no stream mode)|cycle_ms|stream-oneshot|rq-one|ms||30"

# -- the static file against the dynamic build, same runs interleaved ------
# build/oneshot-static (`make static`: Debian 13's libraries, everything
# linked in) against build/oneshot (the host's build: libc shared, Kafka
# a module). Ratio = dynamic / static for the first rows: >= 1 means the
# static file is not slower (the goal on every row).
subject oneshot-static 21 --job "$JOB" -- "$STATIC" --port '{PORT}' --bind 127.0.0.1
subject list-static 31 --exit-only --pre "$HOOK lpush qls {ID}" --post "$HOOK check oneshot {ID}" -- \
    "$STATIC" --source redis-list --redis "$FURL" --core echo --port 0 --idle-timeout 1 --queue qls
srow "static vs dynamic build: start -> first 200 on /health|ready_ms|oneshot-static|oneshot|ms||1"
srow "static vs dynamic build: cycle start -> POST $JOB -> exit|cycle_ms|oneshot-static|oneshot|ms||1"
srow "static vs dynamic build: idle VmRSS after first 200|rss_kb|oneshot-static|oneshot|kB||"
srow "static vs dynamic build: redis-list replica, 1 LPUSHed job: $LIFE|cycle_ms|list-static|list-oneshot|ms||1"
srow "static build: redis-list replica vs the bare hiredis program (same cycle)|cycle_ms|list-static|list-bare|ms||1.3|within"
subject stream-static 31 --exit-only --pre "$HOOK xadd qss {ID}" --post "$HOOK check oneshot {ID}" -- \
    "$STATIC" --source redis-stream --redis "$FURL" --core echo --port 0 --idle-timeout 1 --queue qss
srow "static vs dynamic build: redis-stream replica, 1 XADDed job: $LIFE|cycle_ms|stream-static|stream-oneshot|ms||1"
srow "static build: redis-stream replica vs the bare hiredis program (same cycle)|cycle_ms|stream-static|stream-bare|ms||1.3|within"

# -- the exec core ---------------------------------------------------------
# 64 MiB of random bytes POSTed (application/octet-stream, by startbench's
# own client: what `curl --data-binary @file` sends, without a curl spawn)
# through `exec -- cat`; the answer is compared byte by byte. Two spans:
# the core's own run (log lines "running job" -> "/usr/bin/cat succeeded",
# ms resolution: the fork of cat, 64 MiB in through a pipe, 64 MiB out,
# the reap) and POST connect -> last response byte (upload, core, answer).
# The peer is `cat FILE >/dev/null`, fork -> exit (startbench puts the
# child's stdout on /dev/null). Peak RSS: wait4's ru_maxrss of the replica
# (the largest of it and the cat it reaped).
MIB64=$((64 * 1048576))
subject exec-cat-64m 11 --job /job --body "$PAYLOAD" --check-echo --log "$fdir/cat64.log" \
    --span 'running job|/usr/bin/cat succeeded' --timeout 60 -- \
    "$BUILD/oneshot" --port '{PORT}' --bind 127.0.0.1 --max-input 64m --max-output 64m -- cat
subject cat-devnull 21 --exit-only --bytes "$MIB64" -- cat "$PAYLOAD"
# Context, not a target: the same bytes through one pipe hop between two cats
# (the exec core's data crosses two pipes, and is kept in memory).
subject cat-pipe-cat 21 --exit-only --bytes "$MIB64" -- sh -c 'cat "$0" | cat' "$PAYLOAD"
row "exec -- cat 64 MiB, **core's own run** (log span) vs \`cat file >/dev/null\`: MB/s (target judged on this)|span_mbps:cycle_mbps|exec-cat-64m|cat-devnull|MB/s||0.5|rate"
row "exec -- cat 64 MiB, end to end POST -> last response byte, same cat: MB/s (info, not judged)|post_mbps:cycle_mbps|exec-cat-64m|cat-devnull|MB/s|||rate"
row "exec -- cat 64 MiB, core's own run vs \`cat file\` piped into \`cat >/dev/null\` (one pipe hop): MB/s (context)|span_mbps:cycle_mbps|exec-cat-64m|cat-pipe-cat|MB/s|||rate"
row "exec -- cat 64 MiB: peak RSS of replica + cat (3 x payload + 8 MiB)|maxrss_kb|exec-cat-64m||kB|$((3 * 65536 + 8192))||"
# exec -- true against the echo core: start -> POST /job (empty) -> exit.
subject http-echo 31 --job /job -- "$BUILD/oneshot" --port '{PORT}' --bind 127.0.0.1 --core echo
subject http-exec-true 31 --job /job -- "$BUILD/oneshot" --port '{PORT}' --bind 127.0.0.1 -- true
row "exec -- true over --core echo: cycle start -> POST /job -> exit (difference)|cycle_ms|http-exec-true|http-echo|ms|||diff"

# -- run -------------------------------------------------------------------
if [ "${BENCH_ONLY:-}" = kafka ]; then # the Kafka rows alone
    SUBJECTS=()
    ROWS=()
fi
if [ "${BENCH_ONLY:-}" = static ]; then # the static rows and their peers alone
    SUBJECTS=(oneshot oneshot-static list-oneshot list-static list-bare stream-oneshot stream-static stream-bare)
    ROWS=("${SROWS[@]}")
fi
raw=$OUT/raw.jsonl
: >"$raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
sbcmd() { # NAME -> the startbench command line, shell-quoted
    printf '%s %s' "$(shquote "$SB" --label "$1")" "${SUBJ_ARGS[$1]}"
}
for s in "${SUBJECTS[@]}"; do # warm-up: page cache, lazy compiles; discarded
    eval "$(sbcmd "$s")" >/dev/null
done
max=0
for s in "${SUBJECTS[@]}"; do
    [ "${SUBJ_N[$s]}" -gt "$max" ] && max=${SUBJ_N[$s]}
done
echo "bench: ${#SUBJECTS[@]} subjects, up to $max interleaved runs each ..." >&2
for ((i = 1; i <= max; i++)); do
    for s in "${SUBJECTS[@]}"; do
        [ "$i" -le "${SUBJ_N[$s]}" ] || continue
        eval "$(sbcmd "$s")" >>"$raw"
    done
done

# -- Kafka: one one-shot, phase by phase, against kcat and
# Python, on the real broker (tests/brokers/kafka_broker_start.sh), in three groups:
#   empty: each run its own topic k{ID} (1 partition, + .results, .status,
#          .dead) holding one message, and its own group g{ID};
#   m4, m16: group gbN already has N live members, oneshot replicas each
#          running a long job (exec sleep) on its own partition of kbusyN
#          (N partitions); the run subscribes to knewN (1 partition) in
#          the same group, so its join is a rebalance of all N + 1
#          members (each must re-join: the cost a new replica pays and
#          imposes) and no busy member's partition moves.
# kafka.hook prep produces the run's message (key and envelope id {ID})
# off the clock; the clock runs fork -> reaped exit (exit 0 required);
# kafka.hook check then requires the group's committed offset to be the
# partition's high watermark (oneshot: and the last result record to be
# "{ID}|state=succeeded"). Everyone uses cooperative-sticky (a group
# speaks one protocol; Python's and kcat's default is eager) and
# auto.offset.reset=earliest; the rest is each client's default (oneshot:
# session 10 s, heartbeat 1 s; librdkafka: 45 s, 3 s). Phases: oneshot's
# own log fields, Python's own JSON line (tests/bench/kafka_oneshot.py);
# kcat reports none.
KHOOK=$fdir/kafka.hook
cat >"$KHOOK" <<SH
#!/usr/bin/env bash
# kafka.hook prep TOPIC ID | check TOPIC GROUP | checkone TOPIC GROUP ID
case \$1 in
prep)
    if [ "\${2#knew}" = "\$2" ]; then
        '$BUILD/kafka_admin' -b '$KAFKA_BROKERS' create "\$2" "\$2.results" "\$2.status" "\$2.dead" || exit 1
    fi
    printf '{"id":"%s","input":{"n":1}}\n' "\$3" | kcat -P -b '$KAFKA_BROKERS' -t "\$2" -k "\$3" ;;
check | checkone)
    '$PY' '$PWD/tests/bench/kafka_oneshot.py' --check --brokers '$KAFKA_BROKERS' --topic "\$2" --group "\$3" --want -1 || exit 1
    [ "\$1" = check ] && exit 0
    r=\$(timeout 10 kcat -C -b '$KAFKA_BROKERS' -t "\$2.results" -o -1 -e -q -f '%k|%h\\n')
    # The headers start with state and exit_code; the fence follows.
    case "\$r" in
    "\$4|state=succeeded,exit_code=0" | "\$4|state=succeeded,exit_code=0,"*) ;;
    *) echo "kafka.hook: results of \$4: '\$r'" >&2; exit 1 ;;
    esac ;;
*) exit 2 ;;
esac
SH
chmod +x "$KHOOK"

# busy_group N: gbN with N oneshot replicas each running a job on its own
# partition of kbusyN. They join idle (no message yet) until the group is
# stable with one partition each, then get one message per partition, so
# no busy member ever holds a second partition.
BUSY=()
busy_group() {
    local n=$1 i
    "$BUILD/kafka_admin" -b "$KAFKA_BROKERS" create "kbusy$n:$n" "kbusy$n.results" "kbusy$n.status" "kbusy$n.dead" \
        "knew$n" "knew$n.results" "knew$n.status" "knew$n.dead" || return 1
    for ((i = 0; i < n; i++)); do
        "$BUILD/oneshot" --source kafka --kafka "$KAFKA_BROKERS" --queue "kbusy$n" --group "gb$n" --port 0 \
            --bind 127.0.0.1 --idle-timeout 3000 --core exec -- sleep 3000 2>"$fdir/busy$n.$i.log" &
        BUSY+=($!)
    done
    for ((i = 0; i < 600; i++)); do
        "$BUILD/kafka_admin" -b "$KAFKA_BROKERS" group "gb$n" 2>/dev/null | grep -q "state=Stable members=$n assigned=$n" &&
            [ "$("$BUILD/kafka_admin" -b "$KAFKA_BROKERS" group "gb$n" | grep -c "kbusy$n:[0-9]*\$")" = "$n" ] && break
        sleep 0.1
    done
    for ((i = 0; i < n; i++)); do printf '{"input":"busy"}\n' | kcat -P -b "$KAFKA_BROKERS" -t "kbusy$n" -p "$i"; done
    for ((i = 0; i < 600; i++)); do
        [ "$(cat "$fdir"/busy$n.*.log | grep -c '"msg":"running job')" = "$n" ] && return 0
        sleep 0.1
    done
    echo "run.sh: the $n busy members of gb$n are not all running: $(cat "$fdir"/busy$n.*.log | grep -c 'running job')" >&2
    return 1
}
if [ "${BENCH_ONLY:-}" != static ]; then
    busy_group 4 && busy_group 16 || exit 2
fi

KAFKA_N=${BENCH_KAFKA_N:-11}
KSUBJECTS=()
ksubject() { # NAME HOOK-CHECK TOPIC GROUP STARTBENCH-ARGS... -- CMD...
    local name=$1 check=$2 topic=$3 group=$4
    shift 4
    KSUBJECTS+=("$name")
    SUBJ_N[$name]=$KAFKA_N
    SUBJ_ARGS[$name]=$(shquote --exit-only --timeout 40 --pre "$KHOOK prep $topic {ID}" \
        --post "$KHOOK $check $topic $group {ID}" --log "$fdir/$name.log" "$@")
}
COOP=partition.assignment.strategy=cooperative-sticky
for g in empty 4 16; do
    if [ $g = empty ]; then t='k{ID}' gr='g{ID}' sfx=""; else t=knew$g gr=gb$g sfx=-m$g; fi
    ksubject "kafka-oneshot$sfx" checkone "$t" "$gr" -- "$BUILD/oneshot" --source kafka --kafka "$KAFKA_BROKERS" \
        --queue "$t" --group "$gr" --core echo --port 0 --idle-timeout 30
    ksubject "kafka-python$sfx" check "$t" "$gr" -- "$PY" tests/bench/kafka_oneshot.py --brokers "$KAFKA_BROKERS" \
        --topic "$t" --group "$gr" --prop "$COOP"
    ksubject "kafka-kcat$sfx" check "$t" "$gr" -- kcat -b "$KAFKA_BROKERS" -G "$gr" -c 1 -q \
        -X auto.offset.reset=earliest -X "$COOP" "$t"
done
# The static file in an empty group of its own, like kafka-oneshot.
ksubject kafka-oneshot-static checkone 'ks{ID}' 'gs{ID}' -- "$STATIC" --source kafka --kafka "$KAFKA_BROKERS" \
    --queue 'ks{ID}' --group 'gs{ID}' --core echo --port 0 --idle-timeout 30
[ "${BENCH_ONLY:-}" = static ] && KSUBJECTS=(kafka-oneshot kafka-oneshot-static)
echo "bench: kafka one-shots, ${#KSUBJECTS[@]} subjects x $KAFKA_N interleaved runs ..." >&2
mkdir -p "$fdir/klogs"
: >"$fdir/kafka.jsonl"
for s in "${KSUBJECTS[@]}"; do # warm-up, discarded
    eval "$(sbcmd "$s")" >/dev/null
done
k=0
for ((i = 1; i <= KAFKA_N; i++)); do
    for s in "${KSUBJECTS[@]}"; do
        eval "$(sbcmd "$s")" >>"$fdir/kafka.jsonl"
        k=$((k + 1))
        cp "$fdir/$s.log" "$fdir/klogs/$k.log" 2>/dev/null
    done
done
# A busy member whose job was revoked would say so: none may.
revoked=$(cat "$fdir"/busy*.log 2>/dev/null | grep -c 'mid-job\|handing it over')
# Phase fields into each run's line. join_ms here is subscribe -> the
# assignment that holds the partition (oneshot: assigned_ms; Python: the
# last non-empty on_assign before the message; in a busy group the first,
# empty cooperative assignment comes earlier: first_join_ms). oneshot:
# claim_ms (assignment -> message), flush_ms + commit_ms = publish_commit_ms,
# close_ms, and core_ms = log ts "running job" -> ts "result and status
# delivered" minus flush_ms (ms resolution). Python: its claim_ms,
# commit_ms (= publish_commit_ms: it publishes nothing), close_ms.
# beyond_join_ms = cycle_ms - join_ms, other_ms = beyond_join_ms - the
# phases (exec, start-up, consumer creation, exit). kcat logs no join: its
# beyond_join_ms is its cycle_ms minus the median oneshot join_ms of the
# same group (an approximation).
"$PY" - "$fdir/kafka.jsonl" "$fdir/klogs" >>"$raw" <<'PY'
import datetime, json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ts(rec):
    return datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
for k, r in enumerate(lines, 1):
    try:
        recs = [json.loads(l) for l in open(f"{sys.argv[2]}/{k}.log") if l.startswith("{")]
    except OSError:
        recs = []
    f = {}
    for rec in recs:
        for key, v in rec.items():
            if key.endswith("_ms") and isinstance(v, (int, float)):
                f.setdefault(key, v)
    lab = r["label"]
    if lab.startswith("kafka-oneshot") and all(x in f for x in ("assigned_ms", "claim_ms", "flush_ms", "commit_ms", "close_ms")):
        run = [rec for rec in recs if str(rec.get("msg", "")).startswith("running job")]
        pub = [rec for rec in recs if "flush_ms" in rec]
        r.update({x: f[x] for x in ("claim_ms", "flush_ms", "commit_ms", "close_ms")})
        r["join_ms"], r["first_join_ms"] = f["assigned_ms"], f["join_ms"]
        r["core_ms"] = max(0.0, ts(pub[0]) - ts(run[0]) - f["flush_ms"]) if run and pub else -1
        r["publish_commit_ms"] = f["flush_ms"] + f["commit_ms"]
    elif lab.startswith("kafka-python") and "assigned_ms" in f:
        r.update({x: f[x] for x in ("claim_ms", "commit_ms", "close_ms", "import_ms")})
        r["join_ms"], r["first_join_ms"] = f["assigned_ms"], f["join_ms"]
        r["publish_commit_ms"] = f["commit_ms"]
    if "join_ms" in r and r.get("cycle_ms", -1) >= 0:
        r["beyond_join_ms"] = r["cycle_ms"] - r["join_ms"]
        r["other_ms"] = r["beyond_join_ms"] - sum(r.get(x, 0) for x in ("claim_ms", "core_ms", "publish_commit_ms", "close_ms"))
for r in lines:
    if r["label"].startswith("kafka-kcat") and r.get("cycle_ms", -1) >= 0:
        twin = r["label"].replace("kcat", "oneshot")
        joins = [x["join_ms"] for x in lines if x["label"] == twin and x.get("ok") and "join_ms" in x]
        if joins:
            r["beyond_join_ms"] = r["cycle_ms"] - statistics.median(joins)
    print(json.dumps(r))
PY
for g in empty 4 16; do
    if [ $g = empty ]; then sfx="" KO="Kafka one-shot, empty group"; else sfx=-m$g KO="Kafka one-shot, group with $g busy members"; fi
    goal_beyond="" goal_join=""
    [ $g = empty ] && goal_beyond=10 goal_join=100
    row "$KO: **oneshot's own time beyond the join** (fork -> exit minus subscribe -> partition) vs Python confluent-kafka's|beyond_join_ms|kafka-oneshot$sfx|kafka-python$sfx|ms|$goal_beyond||"
    row "$KO: join (subscribe -> the assignment holding the partition)|join_ms|kafka-oneshot$sfx|kafka-python$sfx|ms|$goal_join||"
    row "$KO: wall fork -> exit vs Python confluent-kafka|cycle_ms|kafka-oneshot$sfx|kafka-python$sfx|ms|||"
    row "$KO: wall fork -> exit vs \`kcat -G -c 1\` (auto-commit)|cycle_ms|kafka-oneshot$sfx|kafka-kcat$sfx|ms|||"
    row "$KO: oneshot beyond the join vs kcat (approx.: kcat wall minus oneshot's median join)|beyond_join_ms|kafka-oneshot$sfx|kafka-kcat$sfx|ms|||"
done
KO="Kafka one-shot, empty group"
row "$KO phase: first (possibly empty) assignment, in a group of 16 busy members|first_join_ms|kafka-oneshot-m16|kafka-python-m16|ms|||"
row "$KO phase: claim (assignment -> message in hand)|claim_ms|kafka-oneshot|kafka-python|ms|||"
row "$KO phase: core (echo, + result/status produce calls; log ts, ms resolution)|core_ms|kafka-oneshot||ms|||"
row "$KO phase: publish + commit (oneshot: flush result + status, sync commit; Python: sync commit only)|publish_commit_ms|kafka-oneshot|kafka-python|ms|||"
row "$KO phase: close (LeaveGroup + destroy)|close_ms|kafka-oneshot|kafka-python|ms|||"
row "$KO: the rest (exec, start-up, consumer creation, exit; Python: interpreter + import)|other_ms|kafka-oneshot|kafka-python|ms|||"
srow "static vs dynamic build, Kafka one-shot in an empty group: **start-up and the rest** (exec, start-up, consumer creation, exit)|other_ms|kafka-oneshot-static|kafka-oneshot|ms||1"
srow "static vs dynamic build, Kafka one-shot: beyond the join (fork -> exit minus subscribe -> partition)|beyond_join_ms|kafka-oneshot-static|kafka-oneshot|ms||1"
srow "static vs dynamic build, Kafka one-shot: the join itself (the broker's: context)|join_ms|kafka-oneshot-static|kafka-oneshot|ms|||"
[ "${BENCH_ONLY:-}" = static ] && ROWS=("${SROWS[@]}")
for p in "${BUSY[@]}"; do kill -KILL "$p" 2>/dev/null; done
[ ${#BUSY[@]} -gt 0 ] && wait "${BUSY[@]}" 2>/dev/null # (a bare `wait` would wait for the broker)
BUSY=()

# -- the fleet on Kafka against the redis-list fleet and a Python
# burst worker: KFLEET_JOBS echo jobs on KFLEET_PARTS partitions drained by
# `oneshot fleet --drain --max-concurrent 8` (one replica process per job),
# the same count on a Redis list with the same fleet command, and
# tests/bench/kafka_burst.py (one confluent-kafka consumer for all: echo,
# result produced and flushed, sync commit, per message), each round a
# fresh topic and group; KFLEET_N rounds, interleaved.
KFLEET_JOBS=${BENCH_KFLEET_JOBS:-500}
KFLEET_N=${BENCH_KFLEET_N:-2}
[ "${BENCH_ONLY:-}" = static ] && KFLEET_N=0
KFLEET_PARTS=8
KFLEET_CMD=("$BUILD/oneshot" fleet --drain --max-concurrent 8)
kfleet_topic() { # NAME: the topics, KFLEET_JOBS envelopes keyed b1..bN
    "$BUILD/kafka_admin" -b "$KAFKA_BROKERS" create "$1:$KFLEET_PARTS" "$1.results:$KFLEET_PARTS" "$1.status" "$1.dead" ||
        return 1
    for ((j = 1; j <= KFLEET_JOBS; j++)); do printf 'b%d\t{"id":"b%d","input":{"n":%d}}\n' "$j" "$j" "$j"; done |
        kcat -P -b "$KAFKA_BROKERS" -t "$1" -K '\t'
}
kresults() { timeout 60 kcat -C -b "$KAFKA_BROKERS" -t "$1.results" -o beginning -e -q -f '%k\n' | sort -u | wc -l; }
kfleet_line() { # LABEL SUMMARY-or-BURST-LINE RESULTS
    "$PY" - "$1" "$KFLEET_JOBS" "$3" "$2" <<'PY'
import json, sys
label, jobs, results, line = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = json.loads(line or "{}")
done = s.get("done", s.get("jobs", 0))
ok = done == jobs and results == jobs and s.get("exit_code", 0) == 0
wall = s.get("wall_s", 0) or 1e9
print(json.dumps({"label": label, "ok": ok, "jobs": done, "wall_s": wall, "jobs_per_s": done / wall,
                  "ms_per_job": wall * 1000 / max(done, 1), "cpu_ms_per_job": s.get("cpu_ms", 0) / max(done, 1),
                  "replicas": s.get("replicas"), "peak": s.get("peak")}))
PY
}
echo "bench: fleet on Kafka, $KFLEET_JOBS jobs on $KFLEET_PARTS partitions, N=8, vs redis-list and a Python burst worker, $KFLEET_N rounds ..." >&2
for ((i = 1; i <= KFLEET_N; i++)); do
    t=kf$i-$RANDOM
    kfleet_topic "$t" || exit 2
    sum=$("${KFLEET_CMD[@]}" -- --source kafka --kafka "$KAFKA_BROKERS" --queue "$t" --group "g$t" --core echo 2>/dev/null)
    kfleet_line kfleet-kafka "$sum" "$(kresults "$t")" >>"$raw"
    fcli FLUSHALL >/dev/null
    for ((j = 1; j <= KFLEET_JOBS; j++)); do printf "LPUSH jobs '{\"id\":\"b%d\",\"input\":{\"n\":%d}}'\n" "$j" "$j"; done |
        fcli >/dev/null
    sum=$("${KFLEET_CMD[@]}" -- --source redis-list --redis "$FURL" --core echo 2>/dev/null)
    kfleet_line kfleet-list "$sum" "$(fcli EVAL "return #redis.call('KEYS', 'oneshot:result:*')" 0)" >>"$raw"
    t=kp$i-$RANDOM
    kfleet_topic "$t" || exit 2
    line=$("$PY" tests/bench/kafka_burst.py --brokers "$KAFKA_BROKERS" --topic "$t" --group "g$t" --prop "$COOP")
    kfleet_line kfleet-python "$line" "$(kresults "$t")" >>"$raw"
done
row "fleet on Kafka, $KFLEET_JOBS echo jobs, $KFLEET_PARTS partitions, N=8 vs the redis-list fleet (same N, same count): jobs/s|jobs_per_s|kfleet-kafka|kfleet-list|jobs/s|||rate"
row "fleet on Kafka vs one confluent-kafka Python worker in burst mode (same topic layout): jobs/s|jobs_per_s|kfleet-kafka|kfleet-python|jobs/s|||rate"
row "fleet on Kafka: CPU per job (fleet + replicas; Python: its process)|cpu_ms_per_job|kfleet-kafka|kfleet-python|ms|||"

# -- the fleet against RQ, same Redis, same count ------------------
# FLEET_JOBS echo jobs drained by `oneshot fleet --drain --max-concurrent 4`
# (one replica process per job) on a Redis list and on a Redis stream, and
# by `rq worker --burst` (a forked work horse per job; tests/bench/rq_jobs.py),
# one run of each in turn, FLEET_N rounds, on one private redis-server.
# Rows: ms per job (wall / jobs: the inverse of jobs/s, so the ratio is the
# throughput ratio) and CPU per job (the workers' processes + Redis).
FLEET_JOBS=${BENCH_FLEET_JOBS:-2000}
FLEET_N=${BENCH_FLEET_N:-3}
[ "${BENCH_ONLY:-}" = kafka ] && FLEET_N=0
[ "${BENCH_ONLY:-}" = static ] && FLEET_N=0
redis_cpu_ms() { fcli INFO cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%d", s * 1000}'; }
FLEET_CMD=("$BUILD/oneshot" fleet --drain --max-concurrent 4)
# fleet_run LABEL SOURCE: enqueue, drain, one JSON line for report.py
fleet_run() {
    local label=$1 src=$2 i c0 c1 sum
    fcli FLUSHALL >/dev/null
    for ((i = 1; i <= FLEET_JOBS; i++)); do
        if [ "$src" = redis-list ]; then
            printf "LPUSH jobs '{\"id\":\"b%d\",\"input\":{\"n\":%d}}'\n" "$i" "$i"
        else
            printf "XADD jobs * input '{\"n\":%d}' id b%d\n" "$i" "$i"
        fi
    done | fcli >/dev/null
    c0=$(redis_cpu_ms)
    sum=$("${FLEET_CMD[@]}" -- --source "$src" --redis "$FURL" --core echo 2>/dev/null)
    c1=$(redis_cpu_ms)
    "$PY" - "$label" "$FLEET_JOBS" "$((c1 - c0))" "$(fcli EVAL "return #redis.call('KEYS', 'oneshot:result:*')" 0)" \
        "$sum" <<'PY'
import json, sys
label, jobs, rcpu, results, line = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = json.loads(line or "{}")
done = s.get("done", 0)
ok = done == jobs and results == jobs and s.get("exit_code") == 0
wall = s.get("wall_s", 0) or 1e9
print(json.dumps({"label": label, "ok": ok, "jobs": done, "wall_s": wall, "jobs_per_s": s.get("jobs_per_s"),
                  "ms_per_job": wall * 1000 / max(done, 1), "cpu_ms_per_job": s.get("cpu_ms", 0) / max(done, 1),
                  "redis_cpu_ms_per_job": rcpu / max(done, 1),
                  "total_cpu_ms_per_job": (s.get("cpu_ms", 0) + rcpu) / max(done, 1),
                  "replicas": s.get("replicas"), "peak": s.get("peak")}))
PY
}
# rq_run LABEL WORKERS
rq_run() {
    local c0 c1 line
    fcli FLUSHALL >/dev/null
    c0=$(redis_cpu_ms)
    line=$("$PY" tests/bench/rq_jobs.py --url "$FURL" --count "$FLEET_JOBS" --workers "$2" --label "$1")
    c1=$(redis_cpu_ms)
    "$PY" - "$((c1 - c0))" "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
n = max(r.get("jobs", 0), 1)
# Redis CPU here includes the enqueue (about 1% of it): a small handicap for RQ.
r["redis_cpu_ms_per_job"] = int(sys.argv[1]) / n
r["total_cpu_ms_per_job"] = r["cpu_ms_per_job"] + r["redis_cpu_ms_per_job"]
print(json.dumps(r))
PY
}
echo "bench: fleet vs rq, $FLEET_JOBS jobs each, $FLEET_N rounds (about 1.5 min per round) ..." >&2
for ((i = 1; i <= FLEET_N; i++)); do
    fleet_run fleet-list redis-list >>"$raw"
    fleet_run fleet-stream redis-stream >>"$raw"
    rq_run rq 1 >>"$raw"
    rq_run rq-4workers 4 >>"$raw"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
row "fleet redis-list, $FLEET_JOBS echo jobs, N=4: ms per job (1000 / jobs/s)|ms_per_job|fleet-list|rq|ms||3"
row "fleet redis-stream, same: ms per job|ms_per_job|fleet-stream|rq|ms||3"
row "fleet redis-list vs 4 rq workers: ms per job|ms_per_job|fleet-list|rq-4workers|ms||"
row "CPU per job, processes + Redis (fleet redis-list)|total_cpu_ms_per_job|fleet-list|rq|ms||"
row "CPU per job, processes + Redis (fleet redis-stream)|total_cpu_ms_per_job|fleet-stream|rq|ms||"

meta=()
for s in "${SUBJECTS[@]:-}" "${KSUBJECTS[@]}"; do
    [ -n "$s" ] || continue
    meta+=(--subject "$s|${SUBJ_N[$s]}|$(sbcmd "$s")")
done
meta+=(--subject "fleet-list|$FLEET_N|$(shquote "${FLEET_CMD[@]}" -- --source redis-list --redis "$FURL" --core echo)")
meta+=(--subject "fleet-stream|$FLEET_N|$(shquote "${FLEET_CMD[@]}" -- --source redis-stream --redis "$FURL" --core echo)")
meta+=(--subject "rq|$FLEET_N|$(shquote "$PY" tests/bench/rq_jobs.py --url "$FURL" --count "$FLEET_JOBS" --workers 1)")
meta+=(--subject "kfleet-kafka|$KFLEET_N|$(shquote "${KFLEET_CMD[@]}" -- --source kafka --kafka "$KAFKA_BROKERS" --queue kfR --group gkfR --core echo)")
meta+=(--subject "kfleet-list|$KFLEET_N|$(shquote "${KFLEET_CMD[@]}" -- --source redis-list --redis "$FURL" --core echo)")
meta+=(--subject "kfleet-python|$KFLEET_N|$(shquote "$PY" tests/bench/kafka_burst.py --brokers "$KAFKA_BROKERS" --topic kpR --group gkpR --prop "$COOP")")
meta+=(--subject "rq-4workers|$FLEET_N|$(shquote "$PY" tests/bench/rq_jobs.py --url "$FURL" --count "$FLEET_JOBS" --workers 4)")
notes=(
    --note "Queue rows: the clock runs from fork to the reaped exit; off the clock, before each run, hook.sh queues the run's own job (list: DEL + LPUSH of {\"id\":ID,\"input\":{\"n\":1}}; stream: XTRIM MAXLEN 0 + XADD input id; RQ: rq_jobs.py --enqueue-one empties the queue and enqueues echo() with job_id ID), and after it checks that very job: result key exists and status hash state = succeeded (RQ: job status = finished), exit code 0. Every run is checked, not a sample. bare_hiredis = tests/bench/bare_hiredis.c: connect, BLMOVE + SET + HSET + LREM (stream: XREADGROUP + SET + HSET + XACK), one round trip each. RQ has no stream mode: both stream rows compare with the same list-based RQ run."
    --note "Kafka rows: one real broker (Apache Kafka from tests/brokers/kafka/pom.xml, KRaft, one JVM, group.initial.rebalance.delay.ms=0; tests/brokers/kafka_broker_start.sh) for the whole bench. Empty group: every run has its own topic k{ID} and group g{ID}. m4 / m16: group gbN holds N oneshot replicas each running a long job on its own partition of kbusyN; the run subscribes to knewN in that group, so its join is a rebalance of N + 1 members and no busy partition moves (a busy member whose job was revoked would log it: $revoked such lines). Join = subscribe -> the assignment that holds the partition (cooperative: the first assignment in a busy group is empty, first_join_ms). Clock: fork -> reaped exit, exit 0 required; after each run the group's committed offset must be the partition's high watermark (oneshot also: the last result record is {ID} succeeded). Everyone cooperative-sticky, auto.offset.reset=earliest, else its defaults. Python = tests/bench/kafka_oneshot.py (Debian python3-confluent-kafka 1.7.0): subscribe, poll the first message, commit(message, asynchronous=False), close; nothing published. kcat -G -c 1 commits by auto-commit at close and logs no phases: its 'beyond the join' is its wall minus oneshot's median join of the same group. Fleet rows: $KFLEET_JOBS echo jobs on $KFLEET_PARTS partitions, fleet --drain --max-concurrent 8 (one replica per job), the same on a Redis list, and tests/bench/kafka_burst.py (one long-lived consumer: echo, produce + flush the result, sync commit, per message); each checked: every job one result."
    --note "exec cat rows: 64 MiB of random bytes POSTed by startbench's own HTTP client (Content-Type application/octet-stream, as curl --data-binary @file sends it, without a curl spawn in the span), answer compared byte for byte. span_mbps = 64 MiB / the core's own run, from the replica's log lines 'running job' -> '/usr/bin/cat succeeded' (ms resolution: fork of cat, input pipe, output pipe, reap); post_mbps = 64 MiB / POST connect -> last response byte (upload + core + answer). The peer is cat FILE >/dev/null from fork to exit (page cache warm). The 50% target is judged on the core span; the end-to-end row is information. Peak RSS = wait4 ru_maxrss of the replica, which also covers the cat it reaped (the larger of the two, not a sum). MB = 10^6 bytes."
)
[ "${BENCH_ONLY:-}" = static ] && ROWS=("${SROWS[@]}")
"$PY" tests/bench/report.py --raw "$raw" --out "$OUT/results.md" \
    --command "make bench   (BENCH_N=${BENCH_N:-unset}, BENCH_KAFKA_N=$KAFKA_N, BENCH_FLEET_N=$FLEET_N, BENCH_FLEET_JOBS=$FLEET_JOBS, BENCH_KFLEET_N=$KFLEET_N, BENCH_KFLEET_JOBS=$KFLEET_JOBS)" "${notes[@]}" \
    --machine "$(nproc) CPUs, $(uname -sr), load avg before $load_before, after $load_after" \
    "${meta[@]}" "${ROWS[@]}"
rc=$?
if [ "${BENCH_SLOWLOG:-}" = 1 ]; then "$PY" tests/bench/slowlog.py "$fdir/redis.sock"; fi
exit $rc
