#!/usr/bin/env bash
# tls_cycle.sh -- what TLS costs a redis-list replica: N sequential
# replicas (--core echo, one queued job each) over rediss:// and over plain
# TCP to the same redis-server, interleaved, with the TLS-capable binary
# (tests/brokers/tls/lib.sh's tls_bin); prints the median start-to-exit of each and
# the difference. BENCH_TLS_N (default 31).
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"
. "$(dirname "$0")/../brokers/tls/lib.sh"
N=${BENCH_TLS_N:-31}
TLS_CERTS=$T_DIR/certs
tls_certs "$TLS_CERTS" && tls_bin && tls_redis_start "$TLS_CERTS" || exit 1
one() { # url args... -> ms on stdout
    local t0 t1
    rcli LPUSH jobs '{"input":1}' >/dev/null
    t0=$(date +%s%N)
    "$TLS_BIN" --port 0 --bind 127.0.0.1 --source redis-list --core echo --idle-timeout 2 --redis "$@" 2>/dev/null || exit 1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
}
: >"$T_DIR/tls" && : >"$T_DIR/tcp"
for ((i = 0; i < N; i++)); do
    one "rediss://localhost:$TLS_PORT/0" --redis-ca "$TLS_CERTS/ca.pem" >>"$T_DIR/tls" || exit 1
    one "redis://127.0.0.1:$PLAIN_PORT/0" >>"$T_DIR/tcp" || exit 1
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t=$(med "$T_DIR/tls") p=$(med "$T_DIR/tcp")
printf 'redis-list replica cycle, median of %d: rediss:// %.2f ms, redis:// (TCP) %.2f ms, TLS +%.2f ms\n' \
    "$N" "$(echo "$t/1000" | bc -l)" "$(echo "$p/1000" | bc -l)" "$(echo "($t-$p)/1000" | bc -l)"
