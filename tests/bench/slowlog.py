#!/usr/bin/env python3
"""slowlog.py SOCKET -- the bench Redis's time per command, from its SLOWLOG.

`BENCH_SLOWLOG=1 make bench` (tests/bench/run.sh) has the private Redis log
every command (slowlog-log-slower-than 0) and prints this at the end: for
each of oneshot's scripts (named by their first line, --oneshot:NAME) and
each plain command, the calls and the median and 90th percentile of the
server's own time in microseconds (what SLOWLOG measures: the command's
execution, not the wire). The bench's replicas start cold, one at a time,
so these are the figures of a cold cycle, not of a tight loop.
"""
import re
import statistics
import sys

import redis

SCRIPT = re.compile(rb"--oneshot:(\w+)")


def main():
    r = redis.Redis(unix_socket_path=sys.argv[1])
    times = {}
    for e in r.slowlog_get(1_000_000):
        argv = e["command"]
        m = SCRIPT.search(argv)
        name = argv.split(b" ", 1)[0].decode(errors="replace").upper()
        if m:
            name = "EVAL " + m.group(1).decode()
        elif name == "EVAL":
            name = "EVAL (the bench's own hooks)"
        times.setdefault(name, []).append(e["duration"])
    print("| command (SLOWLOG, us) | calls | median | p90 |")
    print("|---|---|---|---|")
    for name, v in sorted(times.items(), key=lambda kv: -len(kv[1])):
        if name in ("SLOWLOG", "CONFIG"):
            continue
        v.sort()
        print(f"| {name} | {len(v)} | {statistics.median(v):g} | {v[min(len(v) - 1, len(v) * 9 // 10)]} |")


if __name__ == "__main__":
    main()
