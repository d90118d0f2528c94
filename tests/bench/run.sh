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
# To add a measurement: one `subject` line (the command, with {PORT}) and one
# `row` line (which metric, which two subjects, the target).
#
#   BENCH_N=5 make bench      same N for every subject (defaults below)
#   ONESHOT_BUILD=dir         build folder (default build)
set -u
cd "$(dirname "$0")/../.."
BUILD=${ONESHOT_BUILD:-build}
OUT=$BUILD/bench
SB=$BUILD/startbench
PY=/usr/bin/python3 # Debian's: it has python3-fastapi and python3-uvicorn

if [ ! -x "$SB" ] || [ ! -x "$BUILD/oneshot" ]; then
    echo "run.sh: $SB or $BUILD/oneshot missing; run 'make bench'" >&2
    exit 2
fi
mkdir -p "$OUT"

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

# -- issue 2: HTTP source, demo core, against the FastAPI example ----------
# One --job run gives all three numbers: the start -> 200 phase and the RSS
# read are the same whether or not a job follows.
JOB='/job?duration=0'
subject oneshot 21 --job "$JOB" -- "$BUILD/oneshot" --port '{PORT}' --bind 127.0.0.1
subject fastapi 11 --job "$JOB" -- "$PY" tests/bench/peer_fastapi.py --port '{PORT}'
row "start -> first 200 on /health|ready_ms|oneshot|fastapi|ms|5|30"
row "cycle: start -> POST $JOB -> exit|cycle_ms|oneshot|fastapi|ms||50"
row "idle VmRSS after first 200|rss_kb|oneshot|fastapi|kB|8192|5"

# -- run -------------------------------------------------------------------
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

# -- issue 7: the fleet against RQ, same Redis, same count ------------------
# FLEET_JOBS echo jobs drained by `oneshot fleet --drain --max-concurrent 4`
# (one replica process per job) on a Redis list and on a Redis stream, and
# by `rq worker --burst` (a forked work horse per job; tests/bench/rq_jobs.py),
# one run of each in turn, FLEET_N rounds, on one private redis-server.
# Rows: ms per job (wall / jobs: the inverse of jobs/s, so the ratio is the
# throughput ratio) and CPU per job (the workers' processes + Redis).
FLEET_JOBS=${BENCH_FLEET_JOBS:-2000}
FLEET_N=${BENCH_FLEET_N:-3}
fdir=$(mktemp -d /tmp/oneshot-bench.XXXXXX)
fredis=""
trap '[ -n "$fredis" ] && kill -KILL "$fredis" 2>/dev/null; wait 2>/dev/null; rm -rf "$fdir"' EXIT
redis-server --port 0 --unixsocket "$fdir/redis.sock" --unixsocketperm 700 --dir "$fdir" --save '' \
    --appendonly no --logfile "$fdir/redis.log" >/dev/null 2>&1 &
fredis=$!
for ((i = 0; i < 250; i++)); do
    [ "$(redis-cli -s "$fdir/redis.sock" PING 2>/dev/null)" = PONG ] && break
    sleep 0.02
done
FURL=unix://$fdir/redis.sock
fcli() { redis-cli -s "$fdir/redis.sock" "$@"; }
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
for s in "${SUBJECTS[@]}"; do
    meta+=(--subject "$s|${SUBJ_N[$s]}|$(sbcmd "$s")")
done
meta+=(--subject "fleet-list|$FLEET_N|$(shquote "${FLEET_CMD[@]}" -- --source redis-list --redis "$FURL" --core echo)")
meta+=(--subject "fleet-stream|$FLEET_N|$(shquote "${FLEET_CMD[@]}" -- --source redis-stream --redis "$FURL" --core echo)")
meta+=(--subject "rq|$FLEET_N|$(shquote "$PY" tests/bench/rq_jobs.py --url "$FURL" --count "$FLEET_JOBS" --workers 1)")
meta+=(--subject "rq-4workers|$FLEET_N|$(shquote "$PY" tests/bench/rq_jobs.py --url "$FURL" --count "$FLEET_JOBS" --workers 4)")
"$PY" tests/bench/report.py --raw "$raw" --out "$OUT/results.md" \
    --command "make bench   (BENCH_N=${BENCH_N:-unset})" \
    --machine "$(nproc) CPUs, $(uname -sr), load avg before $load_before, after $load_after" \
    "${meta[@]}" "${ROWS[@]}"
