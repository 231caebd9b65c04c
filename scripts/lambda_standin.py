#!/usr/bin/env python3
"""A minimal Lambda Runtime API stand-in for measuring `logwarden-detector`.

  lambda_standin.py --detector BIN [--starts 10] [--event FILE] [--runs 3] [--json]

The detector runs as Lambda runs it: a process started with
AWS_LAMBDA_RUNTIME_API pointing at this server (127.0.0.1, a free port), which
long-polls `GET /2018-06-01/runtime/invocation/next` and posts the result to
`.../invocation/<id>/response` (or `/error`).  Standard library only.

Two measurements:

  start-up   time.perf_counter() from just before Popen to the arrival of the
             detector's first `/next` request (it is ready for work then);
             that request is never answered: the process is terminated.
             --starts runs (after one untimed warm-up start), median reported.
  batch RSS  the first `/next` is answered with the event in --event (e.g. one
             `{"awslogs":{"data":...}}` batch of the bench corpus); once the
             detector has posted its response and asks for the next
             invocation, VmHWM (peak RSS) is read from /proc/<pid>/status and
             the process is terminated.  The run fails unless the detector
             posted a response (not an error) and its metrics line counts one
             batch with every event of the file and no decode failure.
             --runs runs, the largest VmHWM reported.

The detector gets a clean Lambda-like environment (no LOGWARDEN_* settings,
so no SNS topic and no DynamoDB table: alerts go to its log, nothing leaves
the machine), dummy credentials, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128.

bench.py imports this module; run on its own it prints a short report (or
one JSON object with --json).  Exit status 0 when every run worked.
"""
import argparse
import base64
import gzip
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

API = "/2018-06-01"
NEXT = API + "/runtime/invocation/next"
FUNCTION = "logwarden-detector"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


def detector_env(port):
    """The environment Lambda gives the function; nothing from ours but PATH."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[1]0123456789abcdef0123456789abcdef",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHSTANDIN",
        "AWS_SECRET_ACCESS_KEY": "bench-stand-in-not-a-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def vm_hwm_kib(pid):
    """Peak RSS (VmHWM) of a live process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class _State:
    """What the server saw, shared between its threads and the caller."""

    def __init__(self, events):
        self.lock = threading.Lock()
        self.events = list(events)          # bodies (bytes) still to hand out
        self.served = 0
        self.first_next = None              # perf_counter at the first /next
        self.pid = None
        self.pid_set = threading.Event()
        self.done = threading.Event()       # the idle /next came; process signalled
        self.hwm_kib = None
        self.outcomes = []                  # ("response" | "error" | "init-error", id, body)
        self.unexpected = []


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"           # keep-alive, as the real API
    server_version = "lambda-standin"

    def log_message(self, *args):           # quiet
        pass

    def _reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass                # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        now = time.perf_counter()
        st = self.server.state
        if self.path != NEXT:
            with st.lock:
                st.unexpected.append(f"GET {self.path}")
            return self._reply(404)
        with st.lock:
            if st.first_next is None:
                st.first_next = now
            body = st.events.pop(0) if st.events else None
            if body is not None:
                st.served += 1
                rid = f"bench-{st.served:04d}"
        if body is not None:
            deadline = int(time.time() * 1000) + 15 * 60 * 1000
            return self._reply(200, body, [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", rid),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", ARN),
                ("Lambda-Runtime-Trace-Id",
                 "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ])
        # No more work: the detector is idle and waiting.  Read its peak RSS,
        # end it, and never answer this call.
        if st.pid_set.wait(10) and st.pid:
            st.hwm_kib = vm_hwm_kib(st.pid)
            try:
                os.kill(st.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        st.done.set()
        self.close_connection = True

    def do_POST(self):
        st = self.server.state
        body = self._body()
        parts = self.path.split("/")
        # /2018-06-01/runtime/invocation/<id>/response|error, /2018-06-01/runtime/init/error
        if self.path.startswith(API + "/runtime/invocation/") and len(parts) == 6 \
                and parts[5] in ("response", "error"):
            with st.lock:
                st.outcomes.append((parts[5], parts[4], body))
            return self._reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        if self.path == API + "/runtime/init/error":
            with st.lock:
                st.outcomes.append(("init-error", "", body))
            return self._reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        with st.lock:
            st.unexpected.append(f"POST {self.path}")
        return self._reply(404)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def run_detector(detector, event=None, timeout=60.0):
    """Start the detector against a fresh stand-in; optionally hand it one event.

    Returns a dict: ok, why, startup_s (Popen to first /next), hwm_kib (read at
    the idle /next), outcomes, stdout, stderr, returncode.
    """
    st = _State([event] if event is not None else [])
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.state = st
    port = srv.server_address[1]
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                          daemon=True)
    th.start()
    res = {"ok": False, "why": "", "startup_s": None, "hwm_kib": None, "outcomes": [],
           "stdout": "", "stderr": "", "returncode": None}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        argv, env = [os.path.abspath(detector)], detector_env(port)
        try:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd="/")
        except OSError as e:
            srv.shutdown()
            srv.server_close()
            res["why"] = f"cannot start {detector}: {e}"
            return res
        st.pid = proc.pid
        st.pid_set.set()
        limit = time.monotonic() + timeout
        early_exit = None
        while not st.done.wait(0.02):
            if proc.poll() is not None:
                early_exit = proc.returncode
                break
            if time.monotonic() > limit:
                break
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        srv.shutdown()
        srv.server_close()
        res["returncode"] = proc.returncode
        for f, k in ((out, "stdout"), (err, "stderr")):
            f.seek(0)
            res[k] = f.read().decode("utf-8", "replace")
    if st.first_next is not None:
        res["startup_s"] = st.first_next - t0
    res["hwm_kib"] = st.hwm_kib
    res["outcomes"] = [(kind, rid, body.decode("utf-8", "replace"))
                       for kind, rid, body in st.outcomes]
    if not st.done.is_set():
        stage = ("its first /next" if st.first_next is None else
                 "asking for the next invocation")
        res["why"] = (f"the detector exited (status {early_exit}) before {stage}"
                      if early_exit is not None else f"no idle /next within {timeout:.0f} s")
    elif st.unexpected:
        res["why"] = "unexpected request(s): " + ", ".join(st.unexpected)
    elif event is not None and st.served != 1:
        res["why"] = "the event was not fetched"
    elif event is not None and [o[0] for o in res["outcomes"]] != ["response"]:
        res["why"] = "the detector did not post one response: " + "; ".join(
            f"{k} {b[:300]}" for k, _, b in res["outcomes"]) if res["outcomes"] else \
            "the detector posted nothing for the event"
    elif event is None and res["outcomes"]:
        res["why"] = "unexpected post(s): " + "; ".join(f"{k} {b[:300]}"
                                                       for k, _, b in res["outcomes"])
    elif res["hwm_kib"] is None:
        res["why"] = "could not read VmHWM from /proc"
    else:
        res["ok"] = True
    return res


def emf_counts(stdout):
    """The detector's last metrics (EMF) line as a dict, or None."""
    found = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            try:
                found = json.loads(line)
            except ValueError:
                pass
    return found


def describe_event(path):
    """(raw bytes, decoded bytes, log events) of one awslogs event file."""
    with open(path, "rb") as f:
        raw = f.read()
    payload = gzip.decompress(base64.b64decode(json.loads(raw)["awslogs"]["data"]))
    return raw, len(payload), len(json.loads(payload)["logEvents"])


def measure_startup(detector, starts=10, warmup=1):
    """Start-up times (seconds) of `starts` runs after `warmup` untimed ones.

    Returns (times, idle_hwm_kib list, failures).
    """
    times, hwms, failures = [], [], []
    for i in range(warmup + starts):
        r = run_detector(detector)
        if not r["ok"] or r["startup_s"] is None:
            failures.append(f"start {i + 1}: {r['why'] or 'no /next'}"
                            + (f"; stderr: {r['stderr'].strip()[-400:]}" if r["stderr"].strip()
                               else ""))
            break                               # one clear failure is enough
        if i >= warmup:
            times.append(r["startup_s"])
            hwms.append(r["hwm_kib"])
    return times, hwms, failures


def measure_batch(detector, event_path, runs=3):
    """Peak RSS (KiB) of the detector handling one event; returns (hwms, info, failures)."""
    try:
        raw, decoded, n_events = describe_event(event_path)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        return [], {"file": event_path}, [f"{event_path}: not a readable awslogs event "
                                          f"file ({type(e).__name__}: {e})"]
    info = {"file": event_path, "file_bytes": len(raw), "decoded_bytes": decoded,
            "events": n_events, "alerts": None}
    hwms, failures = [], []
    for i in range(runs):
        r = run_detector(detector, raw)
        why = r["why"]
        if r["ok"]:
            emf = emf_counts(r["stdout"])
            if emf is None:
                why = "no metrics line on the detector's stdout"
            elif (emf.get("Batches"), emf.get("Events"), emf.get("DecodeFailures")) != \
                    (1, n_events, 0):
                why = (f"metrics say Batches={emf.get('Batches')} Events={emf.get('Events')} "
                       f"DecodeFailures={emf.get('DecodeFailures')}, expected 1/{n_events}/0")
            else:
                info["alerts"] = emf.get("AlertsRaised")
        if why:
            failures.append(f"run {i + 1}: {why}"
                            + (f"; stderr: {r['stderr'].strip()[-400:]}" if r["stderr"].strip()
                               else ""))
            break
        hwms.append(r["hwm_kib"])
    return hwms, info, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", required=True, help="the logwarden-detector binary")
    ap.add_argument("--starts", type=int, default=10, help="timed start-ups (default 10)")
    ap.add_argument("--event", help="an event file to invoke the detector with (batch RSS)")
    ap.add_argument("--runs", type=int, default=3, help="batch RSS runs (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    times, idle, failures = measure_startup(a.detector, a.starts) if a.starts > 0 \
        else ([], [], [])
    out = {"startup_ms": [t * 1000 for t in times],
           "startup_ms_median": statistics.median(times) * 1000 if times else None,
           "idle_hwm_kib_max": max(idle) if idle else None, "failures": failures}
    if a.event:
        hwms, info, bfail = measure_batch(a.detector, a.event, a.runs)
        out.update(batch=info, batch_hwm_kib=hwms,
                   batch_hwm_kib_max=max(hwms) if hwms else None)
        failures += bfail
    if a.json:
        print(json.dumps(out))
    else:
        if times:
            print(f"start-up to first /next: median {out['startup_ms_median']:.2f} ms over "
                  f"{len(times)} starts (min {min(times) * 1000:.2f}, max "
                  f"{max(times) * 1000:.2f}); idle VmHWM {out['idle_hwm_kib_max'] / 1024:.1f} MiB")
        if a.event and out["batch_hwm_kib_max"] is not None:
            b = out["batch"]
            print(f"one batch ({b['decoded_bytes'] / 1e6:.2f} MB decoded, {b['events']} events, "
                  f"{b['alerts']} alert(s)): peak RSS (VmHWM) "
                  f"{out['batch_hwm_kib_max'] / 1024:.1f} MiB over "
                  f"{len(out['batch_hwm_kib'])} run(s)")
        for f in failures:
            print(f"FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
