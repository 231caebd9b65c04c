#!/usr/bin/env python3
"""Write the envelope fixtures from their readable sources.

  python3 scripts/envelopes.py [fixtures/envelopes]

Each `NAME.payload` (a decoded subscription payload, JSON) becomes, by its prefix:
  awslogs-*   -> awslogs-*.json     {"awslogs":{"data": base64(gzip(payload))}}
  kinesis-N-* -> kinesis-event.json {"Records":[{"kinesis":{"data":...}}, ...]} (N orders the records)
  firehose-*  -> firehose-event.json {"invocationId":..,"records":[{"recordId":..,"data":..}]}
  raw-*       -> raw-*.gz           gzip(payload), as S3 exports and Kinesis consumers see it
Base64 is standard with padding, as AWS sends it. gzip mtime is fixed so the output
is reproducible.
"""
import base64
import glob
import gzip
import json
import os
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "envelopes")


def gz(raw):
    return gzip.compress(raw, compresslevel=6, mtime=0)


def b64gz(raw):
    return base64.b64encode(gz(raw)).decode()


def compact(path):
    with open(path, "rb") as f:
        return json.dumps(json.load(f), separators=(",", ":")).encode()


def write(name, obj):
    with open(os.path.join(DIR, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


sources = sorted(glob.glob(os.path.join(DIR, "*.payload")))
kinesis, firehose = [], []
for src in sources:
    name = os.path.basename(src)[: -len(".payload")]
    raw = compact(src)
    if name.startswith("awslogs-"):
        write(name + ".json", {"awslogs": {"data": b64gz(raw)}})
    elif name.startswith("kinesis-"):
        kinesis.append(raw)
    elif name.startswith("firehose-"):
        firehose.append((name, raw))
    elif name.startswith("raw-"):
        with open(os.path.join(DIR, name + ".gz"), "wb") as f:
            f.write(gz(raw))
    else:
        sys.exit(f"{src}: name must start with awslogs-, kinesis-, firehose- or raw-")
if kinesis:
    write("kinesis-event.json", {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": f"p{i}",
                    "sequenceNumber": f"4959033013848573943766458739247483647{i:04d}",
                    "data": b64gz(raw), "approximateArrivalTimestamp": 1795342020.5},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:4959033013848573943766458739247483647{i:04d}",
        "eventName": "aws:kinesis:record", "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/logwarden-logs"}
        for i, raw in enumerate(kinesis)]})
if firehose:
    write("firehose-event.json", {
        "invocationId": "5f1a9c2e-fixture", "region": "eu-west-1",
        "deliveryStreamArn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/logwarden",
        "records": [{"recordId": f"{n}", "approximateArrivalTimestamp": 1795342020500, "data": b64gz(raw)}
                    for n, raw in firehose]})
print(f"{len(sources)} sources -> {DIR}")
