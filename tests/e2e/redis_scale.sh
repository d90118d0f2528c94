#!/usr/bin/env bash
# redis_scale.sh -- 1000 queued jobs, 1000 one-shot replicas one after the
# other: each job taken exactly once, nothing left behind.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/redis_start.sh"

redis_start || exit 1

N=1000

t_thousand_sequential() {
    rcli FLUSHALL >/dev/null
    local i
    for ((i = 1; i <= N; i++)); do
        printf "LPUSH jobs '{\"id\":\"n%d\",\"input\":{\"n\":%d}}'\n" "$i" "$i"
    done | redis-cli -s "$RS_SOCK" >/dev/null
    assert_eq "$(rcli LLEN jobs)" "$N" "queued"
    local log=$T_DIR/all.log bad=0 t0 t1 times=$T_DIR/times
    : >"$times"
    for ((i = 1; i <= N; i++)); do
        t0=$EPOCHREALTIME
        "$ONESHOT" --port 0 --bind 127.0.0.1 --redis "$RS_URL" --source redis-list --core echo --idle-timeout 1 \
            2>>"$log" >/dev/null || bad=$((bad + 1))
        t1=$EPOCHREALTIME
        echo "${t0/./} ${t1/./}" >>"$times"
    done
    assert_eq "$bad" 0 "replicas that did not exit 0"
    check_sanitizers "$log"
    local claimed distinct
    claimed=$(grep -c '"msg":"claimed job (attempt 1)"' "$log")
    distinct=$(grep -o '"job_id":"n[0-9]*","msg":"claimed job' "$log" | sort -u | wc -l)
    assert_eq "$claimed" "$N" "claims"
    assert_eq "$distinct" "$N" "distinct jobs claimed"
    # every record succeeded at attempt 1, every result is its input
    local check
    check=$(rcli EVAL "local bad = 0
        for i = 1, $N do
          local s = redis.call('HMGET', 'oneshot:job:n' .. i, 'state', 'attempt')
          local r = redis.call('GET', 'oneshot:result:n' .. i)
          if s[1] ~= 'succeeded' or s[2] ~= '1' or r ~= '{\"n\":' .. i .. '}' then bad = bad + 1 end
        end
        return bad" 0)
    assert_eq "$check" 0 "records or results wrong"
    assert_eq "$(rcli LLEN jobs)" 0 "queue"
    assert_eq "$(rcli --scan --pattern 'jobs:processing:*' | wc -l)" 0 "processing lists"
    assert_eq "$(rcli --scan --pattern 'oneshot:lease:*' | wc -l)" 0 "leases"
    assert_eq "$(rcli EXISTS jobs:workers)" 0 "registrations"
    run_replica 10 --source redis-list --core echo --idle-timeout 1
    assert_eq "$RC" 75 "one more replica finds nothing"
    awk '{print ($2 - $1) / 1000}' "$times" | sort -n |
        awk '{a[NR] = $1} END {printf "# %d sequential redis-list replicas: median %.2f ms, p90 %.2f ms (start to exit, echo core)\n", NR, a[int(NR / 2) + 1], a[int(NR * 0.9)]}'
}

t_run "redis-list: $N queued jobs, $N sequential replicas, each taken once" t_thousand_sequential
