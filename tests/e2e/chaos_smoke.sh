#!/usr/bin/env bash
# chaos_smoke.sh -- `make chaos` in small, for `make test`: 40 jobs on
# redis-list and on redis-stream, 20 on Kafka (a real broker), drained by
# the fleet while replicas are SIGKILLed at random and the broker (Redis
# with AOF; Kafka) is killed and restarted once; none lost, all final,
# nothing pending, duplicates reported. See tests/chaos/chaos.sh.
CHAOS_JOBS=${CHAOS_JOBS:-40} CHAOS_KAFKA_JOBS=${CHAOS_KAFKA_JOBS:-20} \
    CHAOS_SOURCES=${CHAOS_SOURCES:-redis-list redis-stream kafka} \
    CHAOS_MAX_S=${CHAOS_MAX_S:-60} CHAOS_KAFKA_MAX_S=${CHAOS_KAFKA_MAX_S:-180} bash "$(dirname "$0")/../chaos/chaos.sh"
rc=$?
# 1: failures, already reported as FAIL lines; anything else: it broke
[ "$rc" -le 1 ] || exit "$rc"
exit 0
