#!/usr/bin/env python3
"""fault_matrix.py -- every step of the Redis job protocol, under every
fault a real redis-server answers, for both Redis sources
(consumer/README.md "Steps"; run by tests/e2e/redis_matrix.sh).

For each (source, step, fault): a private redis-server (unix socket) and
the fault proxy (tests/harness/redis_proxy.py) in front of it; one job queued; the
test build (build/seams/oneshot, consumer/seam.h) run with ONESHOT_SEAM set
to the step, so it stops itself just before that step's script; the fault
injected while it is stopped; SIGCONT; the fault cleared once the replica
has met it; then ordinary replicas drain the queue. Afterwards the job must
have ended exactly once: one final record (published once on the events
channel, never followed by another state, fences never going back), its
result when it succeeded, its dead letter when it died, and no copy left in
the queue, a processing list, a pending entry or the quarantine.

Faults (all real): oom (maxmemory 1, noeviction), readonly (REPLICAOF an
address nobody serves), wrongtype (a key the step writes set to another
type), busy (a script that loops until SCRIPT KILL), lost_reply (the proxy
forwards the step's script and cuts the connection before the reply),
cut (CLIENT KILL of every normal client), frozen (SIGSTOP of the server for
a second, within the retry budget), paused (the replica itself stays stopped
past its lease while a successor takes the job over and finishes it; then it
resumes the step it was about to take: it must write nothing over its
successor). NOSCRIPT cannot happen: every script is sent whole with EVAL.

Prints one "PASS name" / "FAIL name: why" line per case and "# ..." notes.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ONESHOT_BUILD", "build")
SEAM_BIN = os.path.join(ROOT, BUILD, "seams", "oneshot")
BIN = os.environ.get("ONESHOT_BIN", os.path.join(ROOT, BUILD, "oneshot"))
PROXY = os.path.join(ROOT, "tests", "harness", "redis_proxy.py")

STEPS = ["claim", "begin", "heartbeat", "final", "settle", "sweep", "cancel"]
FAULTS = ["oom", "readonly", "wrongtype", "busy", "lost_reply", "cut", "frozen", "paused"]
SOURCES = ["redis-list", "redis-stream"]
FINAL = {"succeeded", "failed", "rejected", "timed_out", "dead", "cancelled"}
RESULT = b"result-ok"
ENV = dict(os.environ, ONESHOT_REDIS_RETRY_MS="3000")

# The script each step sends (its --oneshot:NAME tag), for lost_reply.
TAGS = {
    ("redis-list", "claim"): "LIST_CLAIM", ("redis-stream", "claim"): "STREAM_CLAIM",
    ("redis-list", "heartbeat"): "LIST_HEARTBEAT", ("redis-stream", "heartbeat"): "STREAM_HEARTBEAT",
    ("redis-list", "settle"): "LIST_SETTLE", ("redis-stream", "settle"): "STREAM_SETTLE",
    ("redis-list", "sweep"): "SWEEP", ("redis-stream", "sweep"): "STREAM_CLAIM",
    ("redis-stream", "begin"): "STREAM_CLAIM",
}


def seam_for(src, step, fault):
    """Where the replica stops: just before the step's script. A stream's
    sweep is its claim (XCLAIM of a dead owner's entry), and so is its
    begin (the claim script begins the entry it takes: consumer/README.md
    "Steps"); a paused stream begin stops after that script, before the
    core, to show that a replica which began the job and then lost its
    lease cannot write over its successor."""
    if src == "redis-stream" and (step == "sweep" or (step == "begin" and fault != "paused")):
        return "claim"
    return step


def skip_reason(src, step, fault):
    if fault == "wrongtype" and src == "redis-stream" and step in ("claim", "sweep"):
        return "the only key a stream claim writes that can hold another type is the queue itself"
    return None


class Case:
    def __init__(self, src, step, fault):
        self.src, self.step, self.fault = src, step, fault
        self.name = "%s %s %s" % (src, step, fault)
        self.dir = tempfile.mkdtemp(prefix="oneshot-matrix.")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.psock = os.path.join(self.dir, "proxy.sock")
        self.ctl = os.path.join(self.dir, "ctl")
        os.mkdir(self.ctl)
        self.procs = []
        self.notes = []
        self.failing = step == "settle" and fault == "wrongtype"  # settle then pushes a dead letter

    # --- plumbing ---
    def cli(self, *args, check=False):
        r = subprocess.run(["redis-cli", "-s", self.sock] + [str(a) for a in args],
                           capture_output=True, timeout=20)
        out = r.stdout.decode("utf-8", "replace").strip()
        if check and r.returncode != 0:
            raise RuntimeError("redis-cli %s: %s" % (args, r.stderr))
        return out

    def spawn(self, argv, log, env=None):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                             env=env or ENV, start_new_session=True)
        self.procs.append(p)
        return p

    def start(self):
        self.redis = self.spawn(["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                                 "--dir", self.dir, "--save", "", "--appendonly", "no",
                                 "--maxmemory-policy", "noeviction", "--busy-reply-threshold", "100"],
                                os.path.join(self.dir, "redis.log"))
        self.wait(lambda: self.cli("PING") == "PONG", 10, "redis-server did not start")
        self.proxy = self.spawn([sys.executable, PROXY, self.psock, self.sock, self.ctl],
                                os.path.join(self.dir, "proxy.log"))
        self.wait(lambda: os.path.exists(os.path.join(self.ctl, "ready")), 10, "proxy did not start")
        self.events = open(os.path.join(self.dir, "events"), "wb")
        self.sub = subprocess.Popen(["redis-cli", "-s", self.sock, "SUBSCRIBE", "oneshot:events"],
                                    stdout=self.events, stderr=subprocess.DEVNULL)
        self.procs.append(self.sub)
        self.wait(lambda: self.cli("PUBSUB", "NUMSUB", "oneshot:events").split()[-1] == "1", 5,
                  "subscriber not ready")

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL) if p is not self.sub else p.kill()
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def wait(cond, secs, why):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.02)
        raise AssertionError(why)

    def replica_argv(self, binary, url, extra=()):
        if self.failing:
            core = ["--core", "exec", "--max-attempts", "1", "--", "sh", "-c", "cat >/dev/null; exit 3"]
        else:
            secs = "2" if self.step == "heartbeat" else "0"
            core = ["--core", "exec", "--", "sh", "-c", "cat >/dev/null; sleep %s; printf result-ok" % secs]
        return [binary, "--port", "0", "--bind", "127.0.0.1", "--redis", url, "--source", self.src,
                "--lease", "3", "--term-grace", "1"] + list(extra) + core

    def enqueue(self):
        if self.src == "redis-list":
            self.cli("LPUSH", "jobs", json.dumps({"id": "j1", "input": "in-1"}), check=True)
        else:
            self.cli("XADD", "jobs", "*", "input", "in-1", "id", "j1", check=True)

    def make_orphan(self):
        """A replica takes j1 and is SIGKILLed mid-job; its lease then lapses."""
        log = os.path.join(self.dir, "orphan.log")
        argv = [BIN, "--port", "0", "--bind", "127.0.0.1", "--redis", "unix://" + self.sock, "--source", self.src,
                "--lease", "3", "--core", "exec", "--", "sh", "-c", "sleep 60"]
        p = self.spawn(argv, log)
        self.wait(lambda: self.cli("HGET", "oneshot:job:j1", "state") == "running", 10, "orphan not running")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        self.wait(lambda: not self.cli("--scan", "--pattern", "oneshot:lease:*"), 10, "orphan's lease kept")

    # --- faults ---
    def broken_key(self):
        if self.step == "claim":
            return "jobs:workers", ["SET", "jobs:workers", "x"]
        if self.step in ("begin", "heartbeat", "cancel"):
            return "oneshot:job:j1", ["SET", "oneshot:job:j1", "x"]
        if self.step == "final":
            return "oneshot:result:j1", ["HSET", "oneshot:result:j1", "a", "b"]
        if self.step == "settle":
            return "jobs.dead", ["SET", "jobs.dead", "x"]
        return "jobs", ["SET", "jobs", "x"]  # sweep: the queue the orphan goes back to

    def inject(self):
        f = self.fault
        if f == "oom":
            self.cli("CONFIG", "SET", "maxmemory", "1", check=True)
        elif f == "readonly":
            self.cli("REPLICAOF", "127.0.0.1", "1", check=True)
        elif f == "wrongtype":
            self.cli(*self.broken_key()[1], check=True)
        elif f == "busy":
            self.busy = subprocess.Popen(["redis-cli", "-s", self.sock, "EVAL", "while true do end", "0"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(self.busy)
            time.sleep(0.2)
        elif f == "lost_reply":
            tag = TAGS.get((self.src, self.step), self.step.upper())
            with open(os.path.join(self.ctl, "drop"), "w") as fh:
                fh.write("--oneshot:" + tag)
        elif f == "cut":
            self.cli("CLIENT", "KILL", "TYPE", "normal", check=True)
        elif f == "frozen":
            os.kill(self.redis.pid, signal.SIGSTOP)

    def after_continue(self):
        """Faults that pass by themselves end here, within the budget."""
        if self.fault == "busy":
            time.sleep(0.5)
            self.cli("SCRIPT", "KILL")
            self.busy.wait()
        elif self.fault == "frozen":
            time.sleep(1.0)
            os.kill(self.redis.pid, signal.SIGCONT)

    def clear(self):
        """What an operator does once the cause is fixed (consumer/README.md, "Poison")."""
        self.cli("CONFIG", "SET", "maxmemory", "0")
        self.cli("REPLICAOF", "NO", "ONE")
        if self.fault == "wrongtype":
            key = self.broken_key()[0]
            if key != "oneshot:job:j1" or self.step == "cancel":
                self.cli("DEL", key)
            for w in self.cli("SMEMBERS", "jobs:quarantine").split():
                self.cli("SMOVE", "jobs:quarantine", "jobs:workers", w)
            if self.src == "redis-stream":
                for line in self.cli("XPENDING", "jobs", "oneshot", "-", "+", "10", "quarantine").splitlines()[::4]:
                    self.cli("XCLAIM", "jobs", "oneshot", "operator", "0", line, "IDLE", "100000000", "JUSTID")
        try:
            os.unlink(os.path.join(self.ctl, "drop"))
        except FileNotFoundError:
            pass

    # --- the run ---
    def stopped(self, p):
        try:
            with open("/proc/%d/stat" % p.pid) as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "T"
        except FileNotFoundError:
            return False

    def run_seamed(self):
        log = os.path.join(self.dir, "seamed.log")
        env = dict(ENV, ONESHOT_SEAM=seam_for(self.src, self.step, self.fault))
        url = "unix://" + self.psock
        if self.step == "cancel":
            argv = [SEAM_BIN, "cancel", "j1", "--redis", url]
        else:
            argv = self.replica_argv(SEAM_BIN, url, ["--idle-timeout", "5"])
        p = self.spawn(argv, log, env)
        self.wait(lambda: self.stopped(p) or p.poll() is not None, 20, "never reached the seam")
        if p.poll() is not None:
            raise AssertionError("exited %s before the %s step: %s" % (p.returncode, self.step, tail(log)))
        if self.fault == "paused":
            # Past its lease: a successor takes the job over and ends it.
            time.sleep(3.5)
            self.drain()
            self.successor = self.cli("HGETALL", "oneshot:job:j1")
        else:
            self.inject()
        os.kill(p.pid, signal.SIGCONT)
        self.after_continue()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the stopped replica did not exit within 30 s: " + tail(log))
        self.seamed_rc = p.returncode
        if self.fault == "lost_reply" and not os.path.exists(os.path.join(self.ctl, "dropped")):
            raise AssertionError("the reply was never lost (no %s script sent)" % self.step)
        sanitizer(log)
        return p.returncode

    def drain(self):
        """Ordinary replicas until the job is final and nothing is held."""
        for i in range(6):
            if self.settled():
                return
            log = os.path.join(self.dir, "drain%d.log" % i)
            p = self.spawn(self.replica_argv(BIN, "unix://" + self.sock, ["--idle-timeout", "5"]), log)
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                raise AssertionError("a draining replica hung: " + tail(log))
            sanitizer(log)
        if not self.settled():
            raise AssertionError("not settled after 6 replicas: " + self.where())

    def copies(self):
        n = 0
        if self.src == "redis-list":
            t = self.cli("TYPE", "jobs")
            n += int(self.cli("LLEN", "jobs") or 0) if t == "list" else 0
            for k in self.cli("--scan", "--pattern", "jobs:processing:*").split():
                n += int(self.cli("LLEN", k) or 0)
        else:
            lines = self.cli("XINFO", "GROUPS", "jobs").splitlines()
            if "lag" not in lines:  # no group yet: nothing was ever read
                return int(self.cli("XLEN", "jobs") or 0)
            lag = lines[lines.index("lag") + 1]
            n += int(lag) if lag.isdigit() else 0
            summary = self.cli("XPENDING", "jobs", "oneshot").splitlines()
            n += int(summary[0]) if summary and summary[0].isdigit() else 0
        return n

    def settled(self):
        key_broken = self.cli("TYPE", "oneshot:job:j1") not in ("hash", "none")
        return self.copies() == 0 and (key_broken or self.cli("HGET", "oneshot:job:j1", "state") in FINAL)

    def where(self):
        return "state=%r copies=%d quarantine=%r" % (self.cli("HGET", "oneshot:job:j1", "state"), self.copies(),
                                                     self.cli("SMEMBERS", "jobs:quarantine"))

    def dead_letters(self):
        if self.cli("TYPE", "jobs.dead") == "list":
            return [l for l in self.cli("LRANGE", "jobs.dead", "0", "-1").splitlines() if '"j1"' in l]
        if self.cli("TYPE", "jobs.dead") == "stream":
            out = self.cli("XRANGE", "jobs.dead", "-", "+").splitlines()
            return [i for i, l in enumerate(out) if l == "j1" and i > 0 and out[i - 1] == "id"]
        return []

    def check(self):
        time.sleep(0.1)  # the subscriber's last line
        evs = []
        for line in open(os.path.join(self.dir, "events"), "rb").read().decode("utf-8", "replace").splitlines():
            if line.startswith("{"):
                e = json.loads(line)
                if e.get("id") == "j1":
                    evs.append(e)
        finals = [e for e in evs if e.get("state") in FINAL]
        if len(finals) > 1:
            raise AssertionError("final twice: %s" % [e["state"] for e in finals])
        if finals and evs[-1] is not finals[0]:
            raise AssertionError("a final record was replaced: %s" % [e["state"] for e in evs])
        fences = [e.get("fence", 0) for e in evs]
        if fences != sorted(fences):
            raise AssertionError("a stale write was applied: fences %s" % fences)
        key_broken = self.cli("TYPE", "oneshot:job:j1") not in ("hash", "none")
        state = "" if key_broken else self.cli("HGET", "oneshot:job:j1", "state")
        dead = self.dead_letters()
        if self.copies():
            raise AssertionError("a copy is left: " + self.where())
        if state == "succeeded":
            if self.cli("GET", "oneshot:result:j1").encode() != RESULT:
                raise AssertionError("succeeded without its result")
            if dead:
                raise AssertionError("succeeded and dead-lettered")
        elif state == "dead" or (key_broken and dead):
            if len(dead) != 1 and not (self.failing and len(dead) >= 1):
                raise AssertionError("dead with %d dead letters" % len(dead))
        elif state == "cancelled":
            if self.step != "cancel":
                raise AssertionError("cancelled, but nobody cancelled it")
        else:
            raise AssertionError("the job ended nowhere: " + self.where() + " dead letters %d" % len(dead))
        if self.fault == "paused" and self.cli("HGETALL", "oneshot:job:j1") != self.successor:
            raise AssertionError("the paused replica wrote over its successor's record")
        self.notes.append("seamed exit %s, %s, fences %s" % (self.seamed_rc, state or "no record", fences))

    def run(self):
        self.start()
        self.enqueue()
        if self.step == "sweep":
            self.make_orphan()
        self.run_seamed()
        self.clear()
        self.drain()
        self.check()


def tail(path, n=400):
    try:
        return open(path, "rb").read()[-n:].decode("utf-8", "replace").replace("\n", " | ")
    except FileNotFoundError:
        return ""


def sanitizer(log):
    text = open(log, "rb").read().decode("utf-8", "replace")
    for mark in ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "SUMMARY: "):
        if mark in text:
            raise AssertionError("sanitizer report: " + text[text.index(mark):][:300])


def one(src, step, fault):
    c = Case(src, step, fault)
    try:
        c.run()
        return "PASS fault matrix: %s (%s)" % (c.name, "; ".join(c.notes))
    except Exception as e:  # a failed assertion or a broken run: both fail the case
        return "FAIL fault matrix: %s: %s" % (c.name, e)
    finally:
        c.stop()


def main():
    cases, skipped = [], []
    only = os.environ.get("MATRIX_ONLY", "")
    for src in SOURCES:
        for step in STEPS:
            for fault in FAULTS:
                name = "%s %s %s" % (src, step, fault)
                if only and only not in name:
                    continue
                why = skip_reason(src, step, fault)
                if why:
                    skipped.append("%s (%s)" % (name, why))
                else:
                    cases.append((src, step, fault))
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("MATRIX_JOBS", "3"))) as ex:
        for line in ex.map(lambda a: one(*a), cases):
            print(line, flush=True)
    for s in skipped:
        print("# not applicable: " + s)
    print("# fault matrix: %d cases in %.0f s" % (len(cases), time.monotonic() - t0))


if __name__ == "__main__":
    main()
