#!/usr/bin/python3
"""report.py -- medians, ratios and the Markdown table for `make bench`.

Reads the JSON lines build/startbench printed (one per run) and the rows and
subjects run.sh defines; prints the report and writes it to --out. A run
counts only when it succeeded end to end: "ok", and when it ran a job, a 200
answer and exit code 0 (a fast error exit must not look like a fast cycle).
Always exits 0 once the report is written: missed targets say MISSED.

A row is "LABEL|METRIC|SUBJECT|PEER|UNIT|SUBJECT MAX|RATIO[|MODE]":
- METRIC may be "SUBJECT_METRIC:PEER_METRIC" when the two sides differ
  (e.g. a core's own span against a whole peer process).
- PEER may be empty: then only SUBJECT MAX is a target.
- MODE "" (default): ratio = peer / subject, bigger is better, RATIO is the
  minimum ("N x faster / smaller than PEER").
- MODE "within": ratio = subject / peer, RATIO is the maximum ("within N x
  of PEER": a floor such as a bare client, which oneshot cannot beat).
- MODE "rate": the metric is a throughput (bigger is better), ratio =
  subject / peer, RATIO the minimum fraction of PEER's (0.5 = 50%), and
  SUBJECT MAX is then unused.
- MODE "diff": no ratio: subject - peer, no target.
"""
import argparse
import json
import statistics
import sys


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "kB":
        return f"{v:,.0f} kB ({v / 1024:.1f} MB)"
    return f"{v:.2f} {unit}" if v < 100 else f"{v:.1f} {unit}"


def good(run):
    if not run.get("ok"):
        return False
    if "job_status" in run and (run["job_status"] != 200 or run["exit_code"] != 0):
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--subject", action="append", default=[], help="NAME|N|startbench command")
    ap.add_argument("--note", action="append", default=[], help="a paragraph after the subjects")
    ap.add_argument("--row", action="append", default=[],
                    help="LABEL|METRIC|SUBJECT|PEER|UNIT|SUBJECT MAX|MIN RATIO")
    a = ap.parse_args()

    runs = {}
    with open(a.raw) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                runs.setdefault(r["label"], []).append(r)
    subjects = [s.split("|", 2) for s in a.subject]

    def values(name, metric):
        return [r[metric] for r in runs.get(name, []) if good(r) and r.get(metric, -1) >= 0]

    def median(name, metric):
        v = values(name, metric)
        return statistics.median(v) if v else None

    out = []
    out.append("## oneshot bench")
    out.append("")
    out.append(f"Command: `{a.command}`, from the repository root. Runs of all subjects "
               "interleaved (one of each in turn), one discarded warm-up run each; "
               "medians of the runs that succeeded.")
    out.append("")
    for name, n, cmd in subjects:
        rs = runs.get(name, [])
        ok = sum(1 for r in rs if good(r))
        out.append(f"- `{name}`: N={n} ({ok} good of {len(rs)}): `{cmd}`")
    out.append("")
    for note in a.note:
        out.append(note)
        out.append("")
    out.append("| row | oneshot median | peer median | ratio | target | met? |")
    out.append("|---|---|---|---|---|---|")
    missed = targets = 0
    for spec in a.row:
        f = spec.split("|")
        if len(f) not in (7, 8):
            sys.exit(f"report.py: a row needs 7 or 8 '|'-separated fields (no '|' in a label): {spec}")
        label, metric, subj, peer, unit, smax, lim_ratio = f[:7]
        mode = f[7] if len(f) > 7 else ""
        sm, _, pm = metric.partition(":")
        pm = pm or sm
        ms = median(subj, sm)
        mp = median(peer, pm) if peer else None
        ratio, rtxt = None, "n/a"
        if ms is not None and mp is not None and ms > 0 and mp > 0:
            if mode in ("within", "rate"):
                ratio = ms / mp
            elif mode == "diff":
                ratio = ms - mp
            else:
                ratio = mp / ms
        if ratio is not None:
            if mode == "diff":
                rtxt = f"{ratio:+.2f} {unit}"
            elif mode == "rate":
                rtxt = f"{ratio:.2f}x ({ratio * 100:.0f}%)"
            elif mode == "within":
                rtxt = f"{ratio:.2f}x of {peer}"
            else:
                rtxt = f"{ratio:.1f}x"
        target, why = [], []
        if smax and mode != "rate":
            lim = float(smax)
            target.append(f"{subj} <= {fmt(lim, unit)}")
            if ms is None or ms > lim:
                why.append(f"{subj} > {fmt(lim, unit)}")
        if lim_ratio and mode != "diff":
            r = float(lim_ratio)
            if mode == "within":
                target.append(f"within {lim_ratio}x of {peer}")
                bad = ratio is None or ratio > r
            elif mode == "rate":
                target.append(f">= {r * 100:.0f}% of {peer}'s")
                bad = ratio is None or ratio < r
            else:
                target.append(f">= {lim_ratio}x {'smaller' if unit == 'kB' else 'faster'} than {peer}")
                bad = ratio is None or ratio < r
            if bad:
                why.append("ratio " + ("> " if mode == "within" else "< ") + lim_ratio + "x")
        if ms is None or (peer and mp is None):
            why = ["no good runs"]
        if not target:
            met = "(no target)"
        else:
            targets += 1
            met = "yes" if not why else "**MISSED** (" + "; ".join(why) + ")"
            missed += bool(why)
        out.append(f"| {label} | {fmt(ms, unit)} | {fmt(mp, unit) if peer else '-'} | {rtxt} | "
                   f"{', '.join(target) or '-'} | {met} |")
    out.append("")
    out.append("Spread per subject, min / median / max (resp_ms = start -> job response read; "
               "post_ms = POST connect -> last response byte; span_ms = the --span between two "
               "log lines; maxrss_kb = wait4 ru_maxrss of the process tree):")
    out.append("")
    for name, _, _ in subjects:
        parts = []
        for metric in ("ready_ms", "resp_ms", "post_ms", "span_ms", "cycle_ms", "join_ms", "claim_ms",
                       "beyond_join_ms", "rss_kb", "maxrss_kb", "ms_per_job"):
            v = values(name, metric)
            if v:
                d = 0 if metric.endswith("_kb") else 1
                parts.append(f"{metric} {min(v):.{d}f} / {statistics.median(v):.{d}f} / {max(v):.{d}f}")
        bad = [r for r in runs.get(name, []) if not good(r)]
        if bad:
            parts.append(f"{len(bad)} bad run(s), first: {json.dumps(bad[0])}")
        out.append(f"- `{name}`: " + "; ".join(parts))
    out.append("")
    out.append(f"Machine: {a.machine}.")
    out.append("Noise caveat: this box has 2 shared, noisy cores; single runs swing by tens "
               "of percent and a whole run's medians can move 10-30% between invocations. "
               "Interleaving makes the ratios fairer than the absolute numbers; re-run before "
               "trusting a near-miss either way. The peer's cycle includes its deliberate "
               "0.1 s sleep between response and exit (its contract).")
    out.append("")
    if missed:
        out.append(f"MISSED: {missed} of {targets} rows with targets (this is a report: exit 0).")
    else:
        out.append(f"All {targets} rows with targets met.")
    text = "\n".join(out) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    sys.stdout.write(f"(written to {a.out})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
