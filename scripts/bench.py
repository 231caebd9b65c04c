#!/usr/bin/env python3
"""Interleaved timing of floor, logwarden and the Python peer (driven by bench.sh).

  bench.py --logwarden BIN --floor BIN --peer PEER_PY [--runs 5] NAME=CORPUS_DIR...

Per corpus: one untimed logwarden run (alert count by rule, its own counts
checked against manifest.json), then --runs rounds in which every program runs
once under /usr/bin/time -v, in an order rotated each round (as the kit's
run.py does) so slow phases of a shared machine hit all of them alike.

Whole-process MB/s = manifest uncompressed_bytes / 10^6 / wall seconds, the
same numerator for every program, so they compare like for like (start-up,
file reads and, for logwarden, alert rendering included).  Wall time is taken
here with perf_counter around the /usr/bin/time process (time -v only reports
10 ms steps); peak RSS and user+sys CPU come from time -v.  The floor and peer
also print their own loop MB/s (files already in memory), shown for context.

Exit status: 0 when every run succeeded and passed its checks, 1 otherwise.
"""
import argparse
import collections
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

FLOOR, LOGWARDEN, PEER = "floor", "logwarden", "peer (python)"
NAMES = [FLOOR, LOGWARDEN, PEER]
SUMMARY_RE = re.compile(
    r"logwarden: (\d+) input\(s\), (\d+) batch\(es\), (\d+) event\(s\), (\d+) alert\(s\), "
    r"(\d+) suppressed, (\d+) input error\(s\)")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def tail(text, n=15):
    lines = text.rstrip().splitlines()
    return "\n".join(("    " + x) for x in lines[-n:]) if lines else "    (empty)"


class Corpus:
    def __init__(self, name, path):
        self.name, self.path = name, os.path.abspath(path)
        with open(os.path.join(self.path, "manifest.json")) as f:
            self.man = json.load(f)
        self.batches = sorted(glob.glob(os.path.join(self.path, "batch-*.json")))
        if len(self.batches) != self.man["files"]:
            sys.exit(f"bench: {self.path}: {len(self.batches)} batch files, "
                     f"manifest says {self.man['files']}")
        self.bytes = self.man["uncompressed_bytes"]


def commands(a, corpus):
    # logwarden gets the batch files, not the directory: walking the directory
    # would also read manifest.json, which is not a log input (an input error).
    return {
        FLOOR: ([a.floor, corpus.path], True),
        LOGWARDEN: ([a.logwarden, "replay", "--output", "json", *corpus.batches], False),
        PEER: ([sys.executable, a.peer, corpus.path], True),
    }


def check_logwarden(stderr, corpus):
    """Problems with a logwarden run, judged from its stderr summary line."""
    m = SUMMARY_RE.search(stderr)
    if not m:
        return ["no summary line on stderr (it stopped early)"]
    inputs, batches, events, _alerts, _supp, errors = map(int, m.groups())
    bad = []
    if errors:
        bad.append(f"{errors} input error(s)")
    if batches != corpus.man["files"]:
        bad.append(f"batches={batches}, manifest files={corpus.man['files']}")
    if events != corpus.man["events"]:
        bad.append(f"events={events}, manifest events={corpus.man['events']}")
    return bad


def run_once(name, cmd, capture, corpus):
    """One timed run; returns a result dict (ok False with a reason on failure)."""
    with tempfile.NamedTemporaryFile("r", prefix="bench-time-", suffix=".txt") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd],
                           stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        tv = tf.read()
    res = {"ok": True, "why": "", "stderr": p.stderr, "wall": wall, "loop": None,
           "line": ""}
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
    user = re.search(r"User time \(seconds\): (\S+)", tv)
    sys_ = re.search(r"System time \(seconds\): (\S+)", tv)
    res["rss"] = int(rss[1]) / 1024 if rss else float("nan")
    cpu = (float(user[1]) + float(sys_[1])) if user and sys_ else float("nan")
    res["proc"] = corpus.bytes / 1e6 / wall
    res["cpu"] = corpus.bytes / 1e6 / cpu if cpu and cpu == cpu else float("nan")
    res["cpu_s"] = cpu
    if p.returncode != 0:
        res["ok"], res["why"] = False, f"exit status {p.returncode}"
        return res
    if capture:
        lines = p.stdout.strip().splitlines()
        res["line"] = lines[-1] if lines else ""
        try:
            f = dict(kv.split("=", 1) for kv in res["line"].split())
            res["loop"] = float(f["MBps"])
            if int(f["uncompressed_bytes"]) != corpus.bytes:
                res["ok"] = False
                res["why"] = (f"decoded {f['uncompressed_bytes']} bytes, manifest says "
                              f"{corpus.bytes}")
        except (ValueError, KeyError):
            res["ok"], res["why"] = False, f"unexpected output line {res['line']!r}"
    if name == LOGWARDEN:
        bad = check_logwarden(p.stderr, corpus)
        if bad:
            res["ok"], res["why"] = False, "check failed: " + "; ".join(bad)
    return res


def alert_census(a, corpus):
    """Untimed run: count the alert lines (one JSON object each) by rule."""
    cmd = [a.logwarden, "replay", "--output", "json", *corpus.batches]
    p = subprocess.run(cmd, capture_output=True, text=True)
    rules, junk = collections.Counter(), 0
    for line in p.stdout.splitlines():
        try:
            rules[json.loads(line).get("rule", "?")] += 1
        except (ValueError, AttributeError):
            junk += 1
    return p, rules, junk


def mmm(xs, fmt="{:.1f}"):
    xs = [x for x in xs if x is not None and x == x]
    if not xs:
        return "-"
    return "/".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))


def med(xs, fmt="{:.1f}"):
    xs = [x for x in xs if x is not None and x == x]
    return fmt.format(statistics.median(xs)) if xs else "-"


def bench_corpus(a, corpus):
    """Rounds and table for one corpus; returns the list of failure messages."""
    m = corpus.man
    print(f"\n=== corpus {corpus.name}: {m['files']} files, {corpus.bytes / 1e6:.2f} MB decoded, "
          f"{m['gzip_bytes'] / 1e6:.2f} MB gzip, {m['events']} events, "
          f"{m['invocations']} invocations")
    print(f"    {corpus.path}")
    failures = []

    p, rules, junk = alert_census(a, corpus)
    summary = SUMMARY_RE.search(p.stderr)
    n_alerts = sum(rules.values())
    print(f"alerts: logwarden replay --output json printed {n_alerts} alert line(s)"
          + (f" and {junk} non-JSON line(s)" if junk else "")
          + f" (untimed run, exit status {p.returncode})")
    for rule, n in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {n:6d}  {rule}")
    if summary:
        print("    " + summary[0])
    bad = check_logwarden(p.stderr, corpus)
    if p.returncode != 0 or bad or junk:
        why = "; ".join(bad + ([f"exit status {p.returncode}"] if p.returncode else []))
        failures.append(f"{corpus.name}: logwarden untimed run: {why or 'non-JSON output'}")
        print(f"!!  logwarden untimed run failed: {why}; stderr (last lines):")
        print(tail(p.stderr))

    for path in corpus.batches:                      # same page-cache state for all
        with open(path, "rb") as f:
            f.read()
    cmds = commands(a, corpus)
    res = {n: [] for n in NAMES}
    print(f"loadavg before: {loadavg()}")
    for r in range(a.runs):
        order = NAMES[r % len(NAMES):] + NAMES[:r % len(NAMES)]
        for n in order:
            cmd, capture = cmds[n]
            x = run_once(n, cmd, capture, corpus)
            res[n].append(x)
            state = "ok" if x["ok"] else f"FAILED ({x['why']})"
            loop = f" loop={x['loop']:.1f}MB/s" if x["loop"] is not None else ""
            print(f"  round {r + 1} {n:14s} wall={x['wall']:.3f}s cpu={x['cpu_s']:.2f}s "
                  f"process={x['proc']:.1f}MB/s{loop} rss={x['rss']:.1f}MiB {state}",
                  flush=True)
    print(f"loadavg after:  {loadavg()}")

    ok = {n: [x for x in res[n] if x["ok"]] for n in NAMES}
    print()
    print(f"{'program':14s} {'process MB/s min/med/max':>26s} {'CPU MB/s med':>13s} "
          f"{'loop MB/s min/med/max':>23s} {'peak RSS MiB':>13s} {'runs ok':>8s}")
    for n in NAMES:
        xs = ok[n]
        loop = mmm([x["loop"] for x in xs]) if n != LOGWARDEN else "(n/a)"
        rss = max((x["rss"] for x in xs), default=None)
        print(f"{n:14s} {mmm([x['proc'] for x in xs]):>26s} "
              f"{med([x['cpu'] for x in xs]):>13s} {loop:>23s} "
              f"{(f'{rss:.1f}' if rss is not None else '-'):>13s} "
              f"{len(xs)}/{len(res[n]):<6d}")
    for other in (FLOOR, PEER):
        pairs = [(lw, o) for lw, o in zip(res[LOGWARDEN], res[other]) if lw["ok"] and o["ok"]]
        proc = mmm([lw["proc"] / o["proc"] for lw, o in pairs], "{:.2f}")
        cpu = mmm([lw["cpu"] / o["cpu"] for lw, o in pairs], "{:.2f}")
        print(f"ratio logwarden / {other:13s} per round, min/med/max: process {proc}x  "
              f"CPU {cpu}x  ({len(pairs)} round(s))")

    for n in NAMES:
        bad = [(i + 1, x) for i, x in enumerate(res[n]) if not x["ok"]]
        if not bad:
            continue
        failures.append(f"{corpus.name}: {n} failed in {len(bad)}/{len(res[n])} round(s): "
                        f"{bad[0][1]['why']}")
        print(f"!!  {n} failed in {len(bad)}/{len(res[n])} round(s); round {bad[0][0]}: "
              f"{bad[0][1]['why']}; stderr (last lines):")
        print(tail(bad[0][1]["stderr"]))
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--logwarden", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--rev", default="unknown", help="logwarden revision, for the header")
    ap.add_argument("corpora", nargs="+", metavar="NAME=DIR")
    a = ap.parse_args()
    if a.runs < 1:
        sys.exit("bench: --runs must be at least 1")
    corpora = []
    for c in a.corpora:
        name, sep, path = c.partition("=")
        corpora.append(Corpus(name, path) if sep else Corpus(os.path.basename(c), c))

    print("\n=== machine")
    print(f"cpus (nproc): {os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable")
    print(f"cpu model:    {cpu_model()}")
    print(f"kernel:       {platform.release()}")
    print(f"loadavg:      {loadavg()} (1/5/15 min, before)")
    print(f"logwarden:    {a.rev}  {a.logwarden}")
    print(f"rustc:        {tool_version(['rustc', '-V'])}")
    print(f"python:       {platform.python_version()}  {sys.executable}")
    print(f"rounds:       {a.runs}, order rotated each round; MB = 10^6 decoded bytes")
    print("process MB/s = manifest uncompressed_bytes / wall seconds of the whole process;")
    print("CPU MB/s = the same bytes / (user+sys); loop MB/s = the program's own timed loop.")

    failures = []
    for c in corpora:
        failures += bench_corpus(a, c)
    print(f"\nloadavg at end: {loadavg()}")
    if failures:
        print("\nFAILURES (the numbers above exclude failed runs):")
        for f in failures:
            print(f"  - {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
