#!/usr/bin/env python3
"""chaos_check.py -- the invariants of the job protocol (consumer/README.md)
checked over a chaos run's history: every record transition the store
published on P:events (redis-cli SUBSCRIBE output, one file per
subscription, given as arguments).

Per job id, in the order published (Redis publishes in execution order):
  stale writes applied   a transition under a fence lower than one already
                         seen: a replica wrote after losing its claim
  final overwritten      any transition after the job's final record
  final twice            a second final record
Prints "transitions=N jobs=N stale_writes_applied=N final_overwritten=N
final_twice=N" and exits 1 when any of the last three is not 0, with one
"# violation: ..." line each (at most 20)."""
import json
import sys

FINAL = {"succeeded", "failed", "rejected", "timed_out", "dead", "cancelled"}
seen = {}  # id -> (highest fence, final state or None)
n = stale = over = twice = 0
bad = []
for path in sys.argv[1:]:
    for line in open(path, "rb").read().decode("utf-8", "replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        jid, state, fence = e.get("id"), e.get("state"), int(e.get("fence", 0) or 0)
        if not jid:
            continue
        n += 1
        top, final = seen.get(jid, (0, None))
        if fence < top:
            stale += 1
            bad.append("%s: %s under fence %d after fence %d" % (jid, state, fence, top))
        if final:
            if state in FINAL:
                twice += 1
            else:
                over += 1
            bad.append("%s: %s after its final %s" % (jid, state, final))
        seen[jid] = (max(top, fence), final or (state if state in FINAL else None))
print("transitions=%d jobs=%d stale_writes_applied=%d final_overwritten=%d final_twice=%d"
      % (n, len(seen), stale, over, twice))
for b in bad[:20]:
    print("# violation: " + b)
sys.exit(1 if stale or over or twice else 0)
