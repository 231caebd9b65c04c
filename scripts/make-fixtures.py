#!/usr/bin/env python3
"""Write the readable fixture batches under fixtures/ (decoded subscription payloads,
a plain log and NDJSON). Deterministic: run it again and git shows no change.

  python3 scripts/make-fixtures.py

Envelope forms (awslogs, Kinesis, Firehose, raw gzip) are written from the
`.payload` files in fixtures/envelopes/ by scripts/envelopes.py.
"""
import datetime as dt
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
ACCOUNT = "123456789012"
T0 = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.timezone.utc)
MS0 = int(T0.timestamp() * 1000)


def iso(ms):
    t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rid(prefix, n):
    return f"{prefix}-{n:04x}-4a6e-9c1d-{n:012x}"


class Batch:
    """One subscription payload: one log group, one log stream."""

    def __init__(self, group, stream):
        self.group, self.stream, self.events, self.n = group, stream, [], 0

    def add(self, ms, message):
        self.n += 1
        eid = f"{37000000000000000000000000000000000000000000000000000000 + ms * 1000 + self.n}"
        self.events.append({"id": eid, "timestamp": ms, "message": message})

    def payload(self):
        return {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": self.group,
                "logStream": self.stream, "subscriptionFilters": ["logwarden"],
                "logEvents": self.events}

    def write(self, path):
        head = {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": self.group,
                "logStream": self.stream, "subscriptionFilters": ["logwarden"]}
        lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
        lines.append(' "logEvents": [')
        ev = [f"  {json.dumps(e)}" for e in self.events]
        lines.append(",\n".join(ev))
        lines += [" ]", "}"]
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write("\n".join(lines) + "\n")


def invocation(b, ms, req, dur, mem=256, used=80, app=(), status=None, error_type=None):
    b.add(ms, f"START RequestId: {req} Version: $LATEST\n")
    for i, line in enumerate(app):
        b.add(ms + 1 + i, f"{iso(ms + 1 + i)}\t{req}\tINFO\t{line}\n")
    end = ms + int(dur)
    b.add(end, f"END RequestId: {req}\n")
    tail = ""
    if status:
        tail = f"\tStatus: {status}" + (f"\tError Type: {error_type}" if error_type else "")
    b.add(end, f"REPORT RequestId: {req}\tDuration: {dur:.2f} ms\tBilled Duration: {int(dur) + 1} ms\t"
               f"Memory Size: {mem} MB\tMax Memory Used: {used} MB{tail}\t\n")


def jitter(i, base):
    return base * (0.8 + 0.4 * ((i * 7919) % 101) / 100.0)


def auth():
    b = Batch("/aws/lambda/auth-api", "2026/11/22/[$LATEST]7f1c2a9e0b3d4c5e8f90a1b2c3d4e5f6")
    t = MS0 + 60_000
    for i in range(14):
        req = rid("a1b2c3d4", i)
        ms = t + i * 1500
        b.add(ms, f"START RequestId: {req} Version: $LATEST\n")
        body = {"event": "login_failed", "source_ip": "203.0.113.7",
                "user": ["admin", "root", "alice", "bob", "test"][i % 5], "reason": "bad_password"}
        b.add(ms + 3, f"{iso(ms + 3)}\t{req}\tWARN\t{json.dumps(body)}\n")
        b.add(ms + 9, f"END RequestId: {req}\n")
        b.add(ms + 9, f"REPORT RequestId: {req}\tDuration: 8.41 ms\tBilled Duration: 9 ms\t"
                      f"Memory Size: 128 MB\tMax Memory Used: 61 MB\t\n")
    # Controls: successful logins, and four failures from another source.
    for i in range(6):
        req = rid("b1b2c3d4", i)
        ms = t + 25_000 + i * 2000
        ok = {"event": "login_succeeded", "source_ip": "198.51.100.10", "user": "carol"}
        bad = {"event": "login_failed", "source_ip": "192.0.2.55", "user": "dave"}
        b.add(ms, f"START RequestId: {req} Version: $LATEST\n")
        b.add(ms + 2, f"{iso(ms + 2)}\t{req}\tINFO\t{json.dumps(ok if i % 3 else bad)}\n")
        b.add(ms + 7, f"END RequestId: {req}\n")
        b.add(ms + 7, f"REPORT RequestId: {req}\tDuration: 6.90 ms\tBilled Duration: 7 ms\t"
                      f"Memory Size: 128 MB\tMax Memory Used: 61 MB\t\n")
    b.write("auth/auth-api-login-burst.json")


def baselines():
    # checkout: ~3 s with ±20 % jitter, one 1.5x blip (control), then one 30 s run.
    b = Batch("/aws/lambda/checkout", "2026/11/22/[$LATEST]0123456789abcdef0123456789abcdef")
    t = MS0
    for i in range(40):
        dur = jitter(i, 3000.0)
        if i == 25:
            dur = 4500.0
        invocation(b, t + i * 10_000, rid("c0ffee00", i), dur, mem=512, used=140 + (i % 7),
                   app=[f"order {1000 + i} confirmed"])
    invocation(b, t + 400_000, rid("c0ffee00", 99), 30412.0, mem=512, used=143,
               app=["order 1099 confirmed after 14 upstream retries"])
    b.write("baselines/checkout-denial-of-wallet.json")
    # inventory: a stable control function, silent.
    b = Batch("/aws/lambda/inventory", "2026/11/22/[$LATEST]fedcba9876543210fedcba9876543210")
    for i in range(30):
        invocation(b, t + i * 12_000, rid("1a2b3c4d", i), jitter(i * 3, 120.0), mem=256,
                   used=70 + (i % 5))
    b.write("baselines/inventory-stable.json")
    # thumbnailer: memory climbing to the limit.
    b = Batch("/aws/lambda/thumbnailer", "2026/11/22/[$LATEST]abcabcabcabcabcabcabcabcabcabcab")
    for i in range(24):
        used = 90 + (i % 4) if i < 22 else [231, 240][i - 22]
        invocation(b, t + i * 15_000, rid("7e7e7e7e", i), jitter(i, 800.0), mem=256, used=used)
    b.write("baselines/thumbnailer-memory.json")


def spike():
    # image-api: about 10 invocations a minute (±20 %) for half an hour in one warm
    # environment, then 400 more in minute 30 from eight new environments (a denial of
    # wallet), then back to normal. One NDJSON file of one-minute batches per stream in time
    # order, as CloudWatch delivers them: whole files replayed concurrently would deliver
    # minutes out of order, which a per-minute rate cannot judge. It ends before the other
    # fixtures' last event, so it does not move the watermark.
    group = "/aws/lambda/image-api"
    steady = "2026/11/22/[$LATEST]5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    n = 0
    batches = []

    def minute(stream, m, count, used):
        nonlocal n
        b = Batch(group, stream)
        for k in range(count):
            ms = MS0 - 40 * 60_000 + m * 60_000 + (k * 60_000) // count
            invocation(b, ms, rid("1ea9e000", n), jitter(n, 240.0), mem=512, used=used + n % 3)
            n += 1
        batches.append(b)

    for m in range(30):
        minute(steady, m, round(jitter(m, 10.0)), 96)
    for e in range(8):
        minute(f"2026/11/22/[$LATEST]b0057{e:027x}", 30, 50, 96)
    for m in range(30, 34):
        minute(steady, m, round(jitter(m, 10.0)), 96)
    full = os.path.join(ROOT, "spike/image-api-denial-of-wallet.ndjson")
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        for b in batches:
            f.write(json.dumps(b.payload()) + "\n")


def leak():
    # report-cache: one environment collecting garbage (a sawtooth, the control), then
    # another whose Max Memory Used rises ~7 MB per warm invocation (a leak).
    group = "/aws/lambda/report-cache"
    b = Batch(group, "2026/11/22/[$LATEST]9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c")
    for i in range(30):
        invocation(b, MS0 + i * 20_000, rid("cace0000", i), jitter(i, 150.0), mem=512,
                   used=170 + 22 * (i % 5))
    b.write("leak/01-report-cache-gc.json")
    b = Batch(group, "2026/11/22/[$LATEST]1eac1eac1eac1eac1eac1eac1eac1eac")
    for i in range(17):
        invocation(b, MS0 + 5_000 + i * 20_000, rid("1eac0000", i), jitter(i, 150.0), mem=512,
                   used=180 + 7 * i - (2 if i % 4 == 3 else 0))
    b.write("leak/02-report-cache-leak.json")


def failures():
    b = Batch("/aws/lambda/report-builder", "2026/11/22/[$LATEST]5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b")
    t = MS0 + 120_000
    invocation(b, t, rid("5e0d5b0c", 1), 2410.0, mem=1024, used=300)
    req = rid("5e0d5b0c", 2)
    b.add(t + 10_000, f"START RequestId: {req} Version: $LATEST\n")
    b.add(t + 10_020, f"{iso(t + 10_020)}\t{req}\tINFO\tbuilding monthly report for tenant 42\n")
    b.add(t + 40_010, f"{iso(t + 40_010)} {req} Task timed out after 30.00 seconds\n\n")
    b.add(t + 40_011, f"END RequestId: {req}\n")
    b.add(t + 40_011, f"REPORT RequestId: {req}\tDuration: 30000.00 ms\tBilled Duration: 30000 ms\t"
                      f"Memory Size: 1024 MB\tMax Memory Used: 412 MB\tStatus: timeout\n")
    b.write("failures/report-builder-timeout.json")

    # JSON log format: out of memory.
    b = Batch("/aws/lambda/image-resize", "2026/11/22/[$LATEST]9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a")
    t = MS0 + 150_000
    req = rid("0e0e0e0e", 1)
    recs = [
        (t, {"time": iso(t), "type": "platform.initStart", "record": {"initializationType": "on-demand", "phase": "init", "runtimeVersion": "nodejs:20.v41", "functionName": "image-resize", "functionVersion": "$LATEST"}}),
        (t + 180, {"time": iso(t + 180), "type": "platform.initReport", "record": {"initializationType": "on-demand", "phase": "init", "status": "success", "metrics": {"durationMs": 178.2}}}),
        (t + 181, {"time": iso(t + 181), "type": "platform.start", "record": {"requestId": req, "version": "$LATEST"}}),
        (t + 200, {"timestamp": iso(t + 200), "level": "INFO", "requestId": req, "message": "resizing 48 MB TIFF to 12 sizes"}),
        (t + 4100, {"time": iso(t + 4100), "type": "platform.runtimeDone", "record": {"requestId": req, "status": "error", "errorType": "Runtime.OutOfMemory", "metrics": {"durationMs": 3919.0}}}),
        (t + 4102, {"time": iso(t + 4102), "type": "platform.report", "record": {"requestId": req, "status": "error", "errorType": "Runtime.OutOfMemory", "metrics": {"durationMs": 3920.4, "billedDurationMs": 3921, "memorySizeMB": 512, "maxMemoryUsedMB": 512}}}),
    ]
    for ms, r in recs:
        b.add(ms, json.dumps(r, separators=(",", ":")))
    b.write("failures/image-resize-oom-json-format.json")

    b = Batch("/aws/lambda/payments", "2026/11/22/[$LATEST]3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c")
    t = MS0 + 200_000
    invocation(b, t, rid("16f8d3a2", 1), 95.0, mem=256, used=88)
    req = rid("16f8d3a2", 2)
    b.add(t + 5000, f"START RequestId: {req} Version: 12\n")
    b.add(t + 5040, f"{iso(t + 5040)}\t{req}\tERROR\tpanic: runtime error: index out of range [3] with length 3\n")
    b.add(t + 5041, f"RequestId: {req} Error: Runtime exited with error: exit status 2\nRuntime.ExitError\n")
    b.add(t + 5042, f"END RequestId: {req}\n")
    b.add(t + 5042, f"REPORT RequestId: {req}\tDuration: 42.00 ms\tBilled Duration: 43 ms\tMemory Size: 256 MB\t"
                    f"Max Memory Used: 31 MB\tStatus: error\tError Type: Runtime.ExitError\n")
    b.write("failures/payments-crash.json")

    b = Batch("/aws/lambda/notify", "2026/11/22/[$LATEST]4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d")
    t = MS0 + 240_000
    b.add(t, "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:2b1f\n")
    b.add(t + 150, f"[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'app': invalid syntax (app.py, line 17)\n")
    b.add(t + 151, "INIT_REPORT Init Duration: 150.79 ms\tPhase: init\tStatus: error\tError Type: Runtime.UserCodeSyntaxError\n")
    b.write("failures/notify-init-failure.json")


def lifecycle():
    stream = "2026/11/22/[$LATEST]e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"
    t = MS0 + 300_000
    # 1: an oversized upload: START Y, nothing else; the next invocation starts in the same stream.
    b = Batch("/aws/lambda/upload-handler", stream)
    y = rid("9b2f0c1e", 0xbad)
    b.add(t, f"START RequestId: {y} Version: $LATEST\n")
    for i in range(1, 8):
        invocation(b, t + i * 15_000, rid("9b2f0c1e", i), 310.0 + i, mem=512, used=120,
                   app=[f"stored upload {i} (212 KB)"])
    # 2: START of R1 here, its END/REPORT in the next file: normal, silent.
    r1 = rid("9b2f0c1e", 0x51)
    b.add(t + 125_000, f"START RequestId: {r1} Version: $LATEST\n")
    b.add(t + 125_010, f"{iso(t + 125_010)}\t{r1}\tINFO\tstored upload 8 (190 KB)\n")
    b.write("lifecycle/01-upload-handler.json")
    b = Batch("/aws/lambda/upload-handler", stream)
    b.add(t + 125_400, f"END RequestId: {r1}\n")
    b.add(t + 125_400, f"REPORT RequestId: {r1}\tDuration: 400.00 ms\tBilled Duration: 400 ms\t"
                       f"Memory Size: 512 MB\tMax Memory Used: 121 MB\t\n")
    for i in range(9, 12):
        invocation(b, t + 125_000 + (i - 8) * 15_000, rid("9b2f0c1e", i), 305.0, mem=512, used=120)
    # 3: an invocation still running at the end of input: silent.
    b.add(t + 185_000, f"START RequestId: {rid('9b2f0c1e', 0x99)} Version: $LATEST\n")
    b.write("lifecycle/02-upload-handler-continued.json")


def plain():
    lines = []
    t = T0 + dt.timedelta(minutes=7)
    users = ["oracle", "test", "git", "pi", "ftpuser", "ubuntu", "postgres", "admin", "guest", "user",
             "deploy", "jenkins"]
    for i, u in enumerate(users):
        s = (t + dt.timedelta(seconds=2 * i)).strftime("%b %d %H:%M:%S")
        lines.append(f"{s} bastion sshd[{3100 + i}]: Invalid user {u} from 198.51.100.23 port {40100 + i}")
        lines.append(f"{s} bastion sshd[{3100 + i}]: Failed password for invalid user {u} from 198.51.100.23 port {40100 + i} ssh2")
    s = (t + dt.timedelta(seconds=30)).strftime("%b %d %H:%M:%S")
    lines.append(f"{s} bastion sshd[3200]: Accepted publickey for deploy from 192.0.2.10 port 50022 ssh2")
    path = os.path.join(ROOT, "plain", "bastion-auth.log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def envelope_sources():
    """Readable sources of fixtures/envelopes/ (extension .payload, so replay's
    directory walk skips them); scripts/envelopes.py turns them into envelopes."""
    t = MS0 + 420_000
    # awslogs: JSON log format, ECS-style failures inside `message`.
    b = Batch("/aws/lambda/sso-callback", "2026/11/22/[$LATEST]2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e")
    for i in range(11):
        ms = t + i * 2500
        req = rid("55005500", i)
        b.add(ms, json.dumps({"time": iso(ms), "type": "platform.start", "record": {"requestId": req, "version": "$LATEST"}}, separators=(",", ":")))
        msg = {"event": {"outcome": "failure", "category": ["authentication"], "action": "saml-login"},
               "source": {"ip": "203.0.113.99"}, "user": {"name": f"user{i % 3}@example.com"}}
        b.add(ms + 5, json.dumps({"timestamp": iso(ms + 5), "level": "WARN", "requestId": req, "message": msg}, separators=(",", ":")))
        b.add(ms + 9, json.dumps({"time": iso(ms + 9), "type": "platform.report", "record": {"requestId": req, "status": "success", "metrics": {"durationMs": 8.2, "billedDurationMs": 9, "memorySizeMB": 256, "maxMemoryUsedMB": 77}}}, separators=(",", ":")))
    b.write("envelopes/awslogs-sso-callback.payload")
    # Kinesis record 0: out of memory, killed by signal.
    b = Batch("/aws/lambda/pdf-render", "2026/11/22/[$LATEST]6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f")
    req = rid("3c3e2c44", 1)
    b.add(t, f"START RequestId: {req} Version: $LATEST\n")
    b.add(t + 30, f"{iso(t + 30)}\t{req}\tINFO\trendering 1,900 page contract bundle\n")
    b.add(t + 2900, f"RequestId: {req} Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n")
    b.add(t + 2901, f"END RequestId: {req}\n")
    b.add(t + 2901, f"REPORT RequestId: {req}\tDuration: 2901.33 ms\tBilled Duration: 2902 ms\tMemory Size: 1024 MB\tMax Memory Used: 1024 MB\t\n")
    b.write("envelopes/kinesis-0-pdf-render.payload")
    # Kinesis record 1: the health check CloudWatch Logs sends; skipped.
    with open(os.path.join(ROOT, "envelopes/kinesis-1-control.payload"), "w") as f:
        f.write(json.dumps({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                            "logStream": "", "subscriptionFilters": [],
                            "logEvents": [{"id": "", "timestamp": t, "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}, indent=1) + "\n")
    # Firehose: a SnapStart restore failing.
    b = Batch("/aws/lambda/quote-java", "2026/11/22/[1]8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a")
    b.add(t + 5000, "RESTORE_START Runtime Version: java:21.v19\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:77aa\n")
    b.add(t + 6236, "RESTORE_REPORT Restore Duration: 1236.04 ms Status: error Error Type: Runtime.ExitError\n")
    b.write("envelopes/firehose-quote-java.payload")
    # Raw gzip: API Gateway access logs, a 401 burst.
    b = Batch("/aws/apigateway/shop-access", "d1a2b3c4e5f6-prod")
    for i in range(12):
        ms = t + 10_000 + i * 3000
        line = {"requestId": rid("a9a9a9a9", i), "ip": "192.0.2.200", "requestTime": iso(ms), "httpMethod": "POST",
                "resourcePath": "/v1/login", "status": "401", "protocol": "HTTP/1.1", "responseLength": "43"}
        b.add(ms, json.dumps(line, separators=(",", ":")))
    b.write("envelopes/raw-apigateway-401.payload")


def spraying():
    # customer-portal: one source tries 18 users once each, 10 s apart: spraying, never
    # 10 failures within 60 s, so not a burst. Control: another source failing for one
    # user eight times (a forgotten password), and successful logins.
    b = Batch("/aws/lambda/customer-portal", "2026/11/22/[$LATEST]c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0")
    t = MS0 + 600_000
    users = ["admin", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
             "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter", "zoe"]
    for i, u in enumerate(users):
        ms = t + i * 10_000
        body = {"event": "login_failed", "source_ip": "203.0.113.150", "user": f"{u}@example.com",
                "reason": "bad_password"}
        invocation(b, ms, rid("5b5b5b5b", i), 11.2, mem=128, used=58, app=[json.dumps(body)])
        if i % 2 == 0:
            other = {"event": "login_failed", "source_ip": "198.51.100.60", "user": "bob@example.com",
                     "reason": "bad_password"} if i < 16 else \
                    {"event": "login_succeeded", "source_ip": "198.51.100.60", "user": "bob@example.com"}
            invocation(b, ms + 5_000, rid("6b6b6b6b", i), 10.4, mem=128, used=58, app=[json.dumps(other)])
    b.write("auth/customer-portal-password-spraying.json")


def access():
    # orders: a deploy lost dynamodb:PutItem; every order retries the call (one incident),
    # and a report job is denied an S3 object (another key).
    b = Batch("/aws/lambda/orders", "2026/11/22/[$LATEST]0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d")
    t = MS0 + 900_000
    denied = ("AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/orders-role/orders "
              "is not authorized to perform: dynamodb:PutItem on resource: "
              "arn:aws:dynamodb:eu-west-1:123456789012:table/orders because no identity-based policy "
              "allows the dynamodb:PutItem action")
    for i in range(6):
        ms = t + i * 7_000
        req = rid("0dd0d0d0", i)
        b.add(ms, f"START RequestId: {req} Version: $LATEST\n")
        b.add(ms + 2, f"{iso(ms + 2)}\t{req}\tINFO\tsaving order {4100 + i}\n")
        b.add(ms + 41, f"{iso(ms + 41)}\t{req}\tERROR\t{denied}\n")
        b.add(ms + 45, f"END RequestId: {req}\n")
        b.add(ms + 45, f"REPORT RequestId: {req}\tDuration: 44.80 ms\tBilled Duration: 45 ms\t"
                       f"Memory Size: 256 MB\tMax Memory Used: 91 MB\t\n")
    req = rid("0dd0d0d0", 0x40)
    ms = t + 60_000
    invocation(b, ms, req, 230.5, app=["[ERROR] ClientError: An error occurred (AccessDenied) when calling "
                                       "the GetObject operation: Access Denied"])
    invocation(b, ms + 5_000, rid("0dd0d0d0", 0x41), 35.0, app=["order 4107 saved"])
    b.write("security/orders-access-denied.json")


def secrets():
    # billing-sync: a debug line dumps its configuration with AWS's documented example
    # keys, and a connection string carries its password. Alerts name the kind and the
    # place; the golden expectations show the secrets never reach an alert.
    b = Batch("/aws/lambda/billing-sync", "2026/11/22/[$LATEST]5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e")
    t = MS0 + 1_200_000
    cfg = ("DEBUG config loaded: {'region': 'eu-west-1', 'aws_access_key_id': 'AKIAIOSFODNN7EXAMPLE', "
           "'aws_secret_access_key': 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'}")
    invocation(b, t, rid("5ec5ec00", 1), 812.0, app=[cfg, "syncing 212 invoices"])
    invocation(b, t + 60_000, rid("5ec5ec00", 2), 640.0,
               app=["connecting to postgres://billing:Tr0ub4dor-3@billing-db.internal:5432/billing",
                    "syncing 3 invoices"])
    invocation(b, t + 120_000, rid("5ec5ec00", 3), 598.0, app=["syncing 5 invoices"])
    b.write("security/billing-sync-secrets.json")


def brute_force():
    # bastion sshd via the CloudWatch agent: 192.0.2.66 guesses passwords for unknown users,
    # 4 connections of 3 tries (sshd logs Invalid user + PAM once per connection and one
    # Failed line per try: 12 attempts), then logs in as ubuntu three minutes later:
    # failed-auth-burst, then brute-force-success. Control: a deploy key login from another
    # source with no burst stays silent.
    b = Batch("/ec2/bastion/sshd", "i-0b4571044e1a2c3d4")
    t = MS0 + 900_000  # ends before the other fixtures' last event (the watermark)
    ip = "192.0.2.66"

    def line(ms, pid, text):
        s = (ms - MS0) // 1000
        return f"Nov 22 10:{s // 60:02d}:{s % 60:02d} bastion sshd[{pid}]: {text}"
    for c, user in enumerate(["oracle", "test", "git", "pi"]):
        pid, port, ms = 7100 + c, 51000 + c, t + c * 12_000
        b.add(ms, line(ms, pid, f"Invalid user {user} from {ip} port {port}"))
        b.add(ms, line(ms, pid, "pam_unix(sshd:auth): check pass; user unknown"))
        b.add(ms, line(ms, pid, "pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                                f"euid=0 tty=ssh ruser= rhost={ip}"))
        for k in range(3):
            at = ms + 2_000 + k * 3_000
            b.add(at, line(at, pid, f"Failed password for invalid user {user} from {ip} port {port} ssh2"))
    ok = t + 230_000
    b.add(ok - 30_000, line(ok - 30_000, 7200, "Accepted publickey for deploy from 198.51.100.20 "
                                               "port 40022 ssh2: ED25519 SHA256:Zm9vYmFyYmF6"))
    b.add(ok, line(ok, 7201, f"Accepted password for ubuntu from {ip} port 51010 ssh2"))
    b.add(ok, line(ok, 7201, "pam_unix(sshd:session): session opened for user ubuntu(uid=1000) by (uid=0)"))
    b.write("auth/bastion-brute-force-success.json")


if __name__ == "__main__":
    envelope_sources()
    auth()
    baselines()
    spike()
    leak()
    failures()
    lifecycle()
    plain()
    spraying()
    access()
    secrets()
    brute_force()
