#!/usr/bin/env bash
# demo.sh -- `make demo`: one replica, one job, end to end on this machine.
# Starts a replica on a free port, sends it one job with curl, prints the
# response and the exit code, and leaves nothing running.
set -u
cd "$(dirname "$0")/.."
BIN=${ONESHOT_BUILD:-build}/oneshot
dir=$(mktemp -d /tmp/oneshot-demo.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

"$BIN" --port 0 --bind 127.0.0.1 --log-format text 2>"$dir/log" &
pid=$!
port=""
for _ in $(seq 500); do
    port=$(grep -o '"port":[0-9]*' "$dir/log" | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.01
done
[ -n "$port" ] || { echo "demo: the replica did not start"; cat "$dir/log"; exit 1; }

echo "== replica listening on 127.0.0.1:$port"
echo "== GET /health"
curl -s "http://127.0.0.1:$port/health"
echo
echo "== POST /job?duration=2 (the batch-jobs example's contract)"
curl -s -X POST -H 'Content-Type: application/json' -d '{"note":"hello from make demo"}' \
    -w '\n(HTTP %{http_code})\n' "http://127.0.0.1:$port/job?duration=2"
rc=0
wait "$pid" || rc=$?
pid=""
echo "== replica log"
cat "$dir/log"
echo "== replica exit code: $rc"
[ "$rc" -eq 0 ]
