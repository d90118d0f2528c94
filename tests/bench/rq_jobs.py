#!/usr/bin/python3
"""rq_jobs.py -- the RQ peer of the fleet bench (`make bench`).

Enqueues --count jobs of echo() (the result is the input, like oneshot's
echo core) on --url, then times `rq worker --burst` draining them: RQ forks
a work horse per job, so every job gets its own process there too. Prints
one JSON line: label, ok (every job finished), jobs, wall_s, jobs_per_s,
ms_per_job, cpu_ms (the worker and its work horses, from wait4) and
cpu_ms_per_job. --workers W runs W burst workers side by side.

Debian's python3-rq 1.13 and /usr/bin/python3; the worker imports this file
as the module rq_jobs (its folder is put on PYTHONPATH).

--enqueue-one ID only empties --queue and enqueues one echo() job with that
job id, then exits: the set-up step before each one-shot `rq worker --burst
--max-jobs 1` run (timed by startbench, which runs this off the clock).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def echo(x):
    return x


def cpu_ms(ru):
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="redis://... or unix:///path.sock?db=0")
    ap.add_argument("--queue", default="rqbench")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--label", default="rq")
    ap.add_argument("--enqueue-one", metavar="ID")
    a = ap.parse_args()

    from redis import Redis
    from rq import Queue
    from rq.registry import FinishedJobRegistry

    conn = Redis.from_url(a.url)
    q = Queue(a.queue, connection=conn)
    if a.enqueue_one:
        conn.delete(q.key)
        q.enqueue("rq_jobs.echo", {"n": 1}, job_id=a.enqueue_one, result_ttl=600)
        return 0
    q.empty()
    conn.delete(FinishedJobRegistry(a.queue, connection=conn).key)
    q.enqueue_many([Queue.prepare_data("rq_jobs.echo", ({"n": i},), result_ttl=600) for i in range(a.count)])

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["/usr/bin/rq", "worker", "--burst", "--quiet", "--url", a.url, a.queue]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(a.workers)]
    errs = [p.communicate()[1] for p in procs]
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    done = FinishedJobRegistry(a.queue, connection=conn).count
    ok = done == a.count and all(p.returncode == 0 for p in procs)
    cpu = cpu_ms(after) - cpu_ms(before)
    row = {"label": a.label, "ok": ok, "jobs": done, "workers": a.workers, "wall_s": round(wall, 3),
           "jobs_per_s": round(done / wall, 1) if wall else 0, "ms_per_job": round(wall * 1000 / max(done, 1), 3),
           "cpu_ms": round(cpu), "cpu_ms_per_job": round(cpu / max(done, 1), 3)}
    if not ok:
        row["error"] = (b"".join(errs)[-300:]).decode("utf-8", "replace")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
