#!/usr/bin/env python3
"""Interleaved timing of floor, logwarden and the Python peer (driven by bench.sh).

  bench.py --logwarden BIN --floor BIN --peer PEER_PY [--runs 5]
           [--detector BIN] [--starts 10] NAME=CORPUS_DIR...

Per corpus: one untimed logwarden run (alert count by rule, its own counts
checked against manifest.json; with --threads 1 too, whose alerts must be the
same lines), then --runs rounds in which every program runs once under
/usr/bin/time -v, in an order rotated each round (as the kit's run.py does) so
slow phases of a shared machine hit all of them alike.  The programs:
floor, `logwarden replay --output json` (all cores), `logwarden replay
--threads 1 --output json` (skipped, with a note, when `logwarden replay
--help` lists no --threads) and the Python peer.

With --detector, once per run (scripts/lambda_standin.py, a Lambda Runtime
API stand-in): `logwarden-detector` start-up time from process start to its
first `GET .../runtime/invocation/next` (median of --starts, after one
untimed warm-up), and its peak RSS (VmHWM) after handling the first batch of
the first corpus through the real handler path.

At the end: a target check (measured / target / met or NOT MET) and a compact
Markdown table for the README.  Targets are reported, not enforced.

Whole-process MB/s = manifest uncompressed_bytes / 10^6 / wall seconds, the
same numerator for every program, so they compare like for like (start-up,
file reads and, for logwarden, alert rendering included).  Wall time is taken
here with perf_counter around the /usr/bin/time process (time -v only reports
10 ms steps); peak RSS and user+sys CPU come from time -v.  The floor and peer
also print their own loop MB/s (files already in memory), shown for context.

Exit status: 0 when every run succeeded and passed its checks (whether or not
the targets are met), 1 otherwise.
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

sys.dont_write_bytecode = True          # no __pycache__ beside the scripts
import lambda_standin  # noqa: E402  (scripts/, beside this file)

FLOOR, LOGWARDEN, LW1, PEER = "floor", "logwarden", "logwarden --threads 1", "peer (python)"
LOGWARDENS = (LOGWARDEN, LW1)
W = 22                                  # width of the program column

# Performance targets.  Reported, never enforced.
# Issue 14: the whole built-in pack as shipped; peak RSS no higher than it was
# before the matching plane (31.5 MiB replay, 16.5 MiB detector).
T_FLOOR = 1.25       # logwarden / floor, median of per-round process MB/s ratios
T_LW1_FLOOR = 0.9    # logwarden --threads 1 / floor
T_PEER = 6.0         # logwarden / peer
T_REPLAY_RSS = 32.0  # MiB, peak RSS of the whole-corpus replay
T_LAMBDA_RSS = 16.5  # MiB, logwarden-detector peak RSS after one ~1 MB batch
T_STARTUP = 20.0     # ms, logwarden-detector start to first /next, median

# Between alerts and input errors come counts that vary with what happened
# (resolved, suppressed, …): batches, events, alerts and errors are read.
SUMMARY_RE = re.compile(
    r"logwarden: (\d+) input\(s\), (\d+) batch\(es\), (\d+) event\(s\), (\d+) alert\(s\)"
    r"(?:, \d+ [a-z]+)*, (\d+) input error\(s\)")


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


def threads_option(logwarden):
    """(supported, note): does `logwarden replay` take --threads?"""
    try:
        p = subprocess.run([logwarden, "replay", "--help"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`logwarden replay --help` did not run ({e})"
    if p.returncode != 0:
        return False, f"`logwarden replay --help` exited with status {p.returncode}"
    if re.search(r"(^|\s)--threads\b", p.stdout):
        return True, ""
    return False, ("this logwarden has no `replay --threads` option (not in `replay --help`); "
                   f"the `{LW1}` row is skipped")


def lw_cmd(a, corpus, threads1):
    # logwarden gets the batch files, not the directory: walking the directory
    # would also read manifest.json, which is not a log input (an input error).
    return [a.logwarden, "replay", *(["--threads", "1"] if threads1 else []),
            "--output", "json", *corpus.batches]


def commands(a, corpus):
    cmds = {
        FLOOR: ([a.floor, corpus.path], True),
        LOGWARDEN: (lw_cmd(a, corpus, False), False),
        LW1: (lw_cmd(a, corpus, True), False),
        PEER: ([sys.executable, a.peer, corpus.path], True),
    }
    return {n: cmds[n] for n in a.names}


def check_logwarden(stderr, corpus):
    """Problems with a logwarden run, judged from its stderr summary line."""
    m = SUMMARY_RE.search(stderr)
    if not m:
        return ["no summary line on stderr (it stopped early)"]
    inputs, batches, events, _alerts, errors = map(int, m.groups())
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
    if name in LOGWARDENS:
        bad = check_logwarden(p.stderr, corpus)
        if bad:
            res["ok"], res["why"] = False, "check failed: " + "; ".join(bad)
    return res


def alert_census(a, corpus, threads1=False):
    """Untimed run: count the alert lines (one JSON object each) by rule."""
    p = subprocess.run(lw_cmd(a, corpus, threads1), capture_output=True, text=True)
    rules, junk = collections.Counter(), 0
    for line in p.stdout.splitlines():
        try:
            rules[json.loads(line).get("rule", "?")] += 1
        except (ValueError, AttributeError):
            junk += 1
    return p, rules, junk


def census_threads1(a, corpus, p_all):
    """Untimed --threads 1 run: its alert lines must be those of the default run
    (compared as sorted lines: the order across batches may differ)."""
    p, rules, junk = alert_census(a, corpus, threads1=True)
    bad = check_logwarden(p.stderr, corpus)
    if p.returncode != 0 or bad or junk:
        why = "; ".join(bad + ([f"exit status {p.returncode}"] if p.returncode else [])
                        + ([f"{junk} non-JSON line(s)"] if junk else []))
        print(f"!!  {LW1} untimed run failed: {why}; stderr (last lines):")
        print(tail(p.stderr))
        return [f"{corpus.name}: {LW1} untimed run: {why}"]
    one, every = sorted(p.stdout.splitlines()), sorted(p_all.stdout.splitlines())
    if one == every:
        print(f"alerts: `{LW1}` printed the same {len(one)} alert line(s) (compared sorted)")
        return []
    diff = collections.Counter(one)
    diff.subtract(every)
    only1 = sum(n for n in diff.values() if n > 0)
    only_all = -sum(n for n in diff.values() if n < 0)
    by_rule = ", ".join(f"{r} {n}" for r, n in sorted(rules.items()))
    msg = (f"{LW1} printed {len(one)} alert line(s), the default run {len(every)}: "
           f"{only1} only with --threads 1, {only_all} only without (--threads 1 by rule: "
           f"{by_rule or 'none'})")
    print(f"!!  alerts differ: {msg}")
    return [f"{corpus.name}: {msg}"]


def mmm(xs, fmt="{:.1f}"):
    xs = [x for x in xs if x is not None and x == x]
    if not xs:
        return "-"
    return "/".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))


def med(xs, fmt="{:.1f}"):
    xs = [x for x in xs if x is not None and x == x]
    return fmt.format(statistics.median(xs)) if xs else "-"


def median_or_none(xs):
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else None


def round_ratios(res, a_name, b_name, key="proc"):
    """Per-round ratios a/b over the rounds where both ran fine."""
    return [x[key] / y[key] for x, y in zip(res[a_name], res[b_name])
            if x["ok"] and y["ok"] and y[key]]


def bench_corpus(a, corpus):
    """Rounds and table for one corpus; returns (failure messages, summary)."""
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
    elif LW1 in a.names:
        failures += census_threads1(a, corpus, p)

    for path in corpus.batches:                      # same page-cache state for all
        with open(path, "rb") as f:
            f.read()
    cmds = commands(a, corpus)
    names = a.names
    res = {n: [] for n in names}
    print(f"loadavg before: {loadavg()}")
    for r in range(a.runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            cmd, capture = cmds[n]
            x = run_once(n, cmd, capture, corpus)
            res[n].append(x)
            state = "ok" if x["ok"] else f"FAILED ({x['why']})"
            loop = f" loop={x['loop']:.1f}MB/s" if x["loop"] is not None else ""
            print(f"  round {r + 1} {n:{W}s} wall={x['wall']:.3f}s cpu={x['cpu_s']:.2f}s "
                  f"process={x['proc']:.1f}MB/s{loop} rss={x['rss']:.1f}MiB {state}",
                  flush=True)
    print(f"loadavg after:  {loadavg()}")

    ok = {n: [x for x in res[n] if x["ok"]] for n in names}
    summary = {}
    print()
    print(f"{'program':{W}s} {'process MB/s min/med/max':>26s} {'CPU MB/s med':>13s} "
          f"{'loop MB/s min/med/max':>23s} {'peak RSS MiB':>13s} {'runs ok':>8s}")
    for n in names:
        xs = ok[n]
        loop = mmm([x["loop"] for x in xs]) if n not in LOGWARDENS else "(n/a)"
        rss = max((x["rss"] for x in xs), default=None)
        print(f"{n:{W}s} {mmm([x['proc'] for x in xs]):>26s} "
              f"{med([x['cpu'] for x in xs]):>13s} {loop:>23s} "
              f"{(f'{rss:.1f}' if rss is not None else '-'):>13s} "
              f"{len(xs)}/{len(res[n]):<6d}")
        summary[n] = {
            "proc": median_or_none([x["proc"] for x in xs]), "rss": rss,
            "x_floor": median_or_none(round_ratios(res, n, FLOOR)) if n != FLOOR else None,
            "x_peer": median_or_none(round_ratios(res, n, PEER)) if n != PEER else None,
        }
    for lw in (n for n in names if n in LOGWARDENS):
        for other in (FLOOR, PEER):
            proc = mmm(round_ratios(res, lw, other), "{:.2f}")
            cpu = mmm(round_ratios(res, lw, other, "cpu"), "{:.2f}")
            pairs = len(round_ratios(res, lw, other))
            label = f"{lw} / {other}"
            print(f"ratio {label:{W + 16}s} per round, min/med/max: process {proc}x  "
                  f"CPU {cpu}x  ({pairs} round(s))")

    for n in names:
        bad = [(i + 1, x) for i, x in enumerate(res[n]) if not x["ok"]]
        if not bad:
            continue
        failures.append(f"{corpus.name}: {n} failed in {len(bad)}/{len(res[n])} round(s): "
                        f"{bad[0][1]['why']}")
        print(f"!!  {n} failed in {len(bad)}/{len(res[n])} round(s); round {bad[0][0]}: "
              f"{bad[0][1]['why']}; stderr (last lines):")
        print(tail(bad[0][1]["stderr"]))
    return failures, summary


def bench_lambda(a, corpus):
    """Start-up and one-batch peak RSS of logwarden-detector; (failures, summary)."""
    print("\n=== logwarden-detector under a Lambda Runtime API stand-in "
          "(scripts/lambda_standin.py)")
    print(f"    {a.detector}")
    print("    no LOGWARDEN_TOPIC_ARN / LOGWARDEN_STATE_TABLE: alerts go to the function log, "
          "state in memory, nothing leaves the machine")
    failures, out = [], {"startup": [], "hwm": [], "batch": None}
    times, idle, bad = lambda_standin.measure_startup(a.detector, a.starts)
    out["startup"] = [t * 1000 for t in times]
    if times:
        print(f"start-up, process start to first GET /runtime/invocation/next "
              f"({len(times)} starts after 1 warm-up): min/med/max "
              f"{mmm(out['startup'], '{:.2f}')} ms; idle peak RSS "
              f"{max(idle) / 1024:.1f} MiB")
    for f in bad:
        failures.append(f"logwarden-detector start-up: {f}")
        print(f"!!  logwarden-detector start-up failed: {f}")
    event = corpus.batches[0]
    hwms, info, bad = lambda_standin.measure_batch(a.detector, event, a.lambda_runs)
    out["hwm"] = [h / 1024 for h in hwms]
    out["batch"] = info
    if hwms:
        print(f"one batch ({corpus.name} corpus, {os.path.basename(event)}: "
              f"{info['file_bytes'] / 1e6:.2f} MB event, {info['decoded_bytes'] / 1e6:.2f} MB "
              f"decoded, {info['events']} events, {info['alerts']} alert(s) logged), "
              f"response posted; peak RSS (VmHWM) per run: "
              + ", ".join(f"{h:.1f}" for h in out["hwm"]) + " MiB")
    for f in bad:
        failures.append(f"logwarden-detector batch: {f}")
        print(f"!!  logwarden-detector batch run failed: {f}")
    return failures, out


def fmt_x(x):
    return f"{x:.2f}×" if x is not None else "—"


def fmt_mib(x):
    return f"{x:.1f} MiB" if x is not None else "—"


def target_rows(a, corpora, summaries, lam):
    """(check, measured, target, result) rows."""
    rows = []

    def row(check, value, target, text, higher_better, unit_fmt):
        want = ("≥ " if higher_better else "≤ ") + unit_fmt(target)
        if value is None:
            rows.append((check, "—", want, text or "NOT MEASURED (failed)"))
        else:
            met = value >= target if higher_better else value <= target
            rows.append((check, unit_fmt(value), want, "met" if met else "NOT MET"))

    x = lambda v: f"{v:.2f}×"                               # noqa: E731
    mib = lambda v: f"{v:.1f} MiB"                          # noqa: E731
    for c in corpora:
        s = summaries[c.name]
        lw, lw1 = s.get(LOGWARDEN, {}), s.get(LW1)
        row(f"{c.name}: logwarden / floor (median ratio)", lw.get("x_floor"), T_FLOOR, "",
            True, x)
        row(f"{c.name}: {LW1} / floor", lw1["x_floor"] if lw1 else None, T_LW1_FLOOR,
            "" if lw1 else "skipped (no --threads)", True, x)
        row(f"{c.name}: logwarden / peer", lw.get("x_peer"), T_PEER, "", True, x)
        rss = [s[n]["rss"] for n in LOGWARDENS if n in s and s[n]["rss"] is not None]
        row(f"{c.name}: peak RSS, whole-corpus replay", max(rss) if rss else None,
            T_REPLAY_RSS, "", False, mib)
    ms = lambda v: f"{v:.1f} ms"                            # noqa: E731
    skip = "" if lam is not None else "NOT MEASURED (no --detector)"
    b = (lam or {}).get("batch") or {}
    size = f" {b['decoded_bytes'] / 1e6:.2f} MB" if b.get("decoded_bytes") else ""
    row(f"detector: peak RSS, one{size} batch (Lambda handler)",
        max(lam["hwm"]) if lam and lam["hwm"] else None, T_LAMBDA_RSS, skip, False, mib)
    row(f"detector: start-up to first /next (median of {a.starts})",
        median_or_none(lam["startup"]) if lam else None, T_STARTUP, skip, False, ms)
    return rows


def print_targets(rows):
    print("\n=== targets (reported, not enforced: the exit status does not depend on them)")
    w = max(len(r[0]) for r in rows)
    print(f"{'check':{w}s}  {'measured':>10s}  {'target':>10s}  result")
    for check, measured, target, result in rows:
        flag = "  <<<" if result == "NOT MET" else ""
        print(f"{check:{w}s}  {measured:>10s}  {target:>10s}  {result}{flag}")
    not_met = [r for r in rows if r[3] == "NOT MET"]
    met = sum(r[3] == "met" for r in rows)
    unmeasured = len(rows) - met - len(not_met)
    print(f"{met} target(s) met, {len(not_met)} NOT MET"
          + (f", {unmeasured} not measured" if unmeasured else ""))
    for check, measured, target, _ in not_met:
        print(f"NOT MET: {check}: {measured} (target {target})")


def print_markdown(a, corpora, summaries, lam):
    print(f"\n=== Markdown ({os.cpu_count()} cpus, {cpu_model()}, loadavg {loadavg()}, "
          f"{a.runs} round(s), medians; logwarden {a.rev})\n")
    print("| corpus | program | MB/s | × floor | × peer | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in corpora:
        label = f"{c.name}, {c.bytes / 1e6:.2f} MB"
        for n in a.names:
            s = summaries[c.name].get(n)
            if s is None:
                continue
            mbs = f"{s['proc']:.1f}" if s["proc"] is not None else "—"
            print(f"| {label} | {'`' + n + '`' if n in LOGWARDENS else n} | {mbs} | "
                  f"{fmt_x(s['x_floor'])} | {fmt_x(s['x_peer'])} | {fmt_mib(s['rss'])} |")
    if lam is not None:
        st, b = lam["startup"], lam["batch"] or {}
        if st:
            print(f"\n`logwarden-detector` start-up to its first `/next`: "
                  f"{statistics.median(st):.1f} ms (median of {len(st)}; min {min(st):.1f}, "
                  f"max {max(st):.1f})  ")
        else:
            print("\n`logwarden-detector` start-up: not measured (failed)  ")
        if lam["hwm"]:
            print(f"`logwarden-detector` peak RSS, one {b['decoded_bytes'] / 1e6:.2f} MB batch "
                  f"({b['events']} events) through the Lambda handler: {max(lam['hwm']):.1f} MiB")
        else:
            print("`logwarden-detector` peak RSS, one batch: not measured (failed)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--logwarden", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--rev", default="unknown", help="logwarden revision, for the header")
    ap.add_argument("--detector", help="logwarden-detector binary (start-up and Lambda RSS)")
    ap.add_argument("--starts", type=int, default=10, help="timed detector start-ups")
    ap.add_argument("--lambda-runs", type=int, default=3, help="detector one-batch runs")
    ap.add_argument("corpora", nargs="+", metavar="NAME=DIR")
    a = ap.parse_args()
    if a.runs < 1 or a.starts < 1 or a.lambda_runs < 1:
        sys.exit("bench: --runs, --starts and --lambda-runs must be at least 1")
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
    threads, note = threads_option(a.logwarden)
    a.names = [FLOOR, LOGWARDEN, *([LW1] if threads else []), PEER]
    print(f"programs:     {', '.join(a.names)}")
    if note:
        print(f"note:         {note}")
    print(f"rustc:        {tool_version(['rustc', '-V'])}")
    print(f"python:       {platform.python_version()}  {sys.executable}")
    print(f"rounds:       {a.runs}, order rotated each round; MB = 10^6 decoded bytes")
    print("process MB/s = manifest uncompressed_bytes / wall seconds of the whole process;")
    print("CPU MB/s = the same bytes / (user+sys); loop MB/s = the program's own timed loop.")

    failures, summaries = [], {}
    for c in corpora:
        f, summaries[c.name] = bench_corpus(a, c)
        failures += f
    lam = None
    if a.detector:
        f, lam = bench_lambda(a, corpora[0])
        failures += f
    else:
        print("\nnote: no --detector given; logwarden-detector start-up and RSS not measured")
    print(f"\nloadavg at end: {loadavg()}")
    if failures:
        print("\nFAILURES (the numbers above and below exclude failed runs):")
        for f in failures:
            print(f"  - {f}")
    print_targets(target_rows(a, corpora, summaries, lam))
    print_markdown(a, corpora, summaries, lam)
    if failures:
        print(f"\nbench: {len(failures)} failure(s), listed under FAILURES above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
