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
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

meta=()
for s in "${SUBJECTS[@]}"; do
    meta+=(--subject "$s|${SUBJ_N[$s]}|$(sbcmd "$s")")
done
exec "$PY" tests/bench/report.py --raw "$raw" --out "$OUT/results.md" \
    --command "make bench   (BENCH_N=${BENCH_N:-unset})" \
    --machine "$(nproc) CPUs, $(uname -sr), load avg before $load_before, after $load_after" \
    "${meta[@]}" "${ROWS[@]}"
