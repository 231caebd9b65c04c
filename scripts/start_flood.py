#!/usr/bin/env python3
"""Write a START flood: N STARTs of one log stream, 1 ms apart, never ended,
split into P decoded subscription payloads (one file each) in OUT.

    scripts/start_flood.py --starts 200000 --payloads 8 --out DIR
    target/release/logwarden replay --output json DIR

The figures in README ("Bad input") come from this: a stream keeps at most
1,000 open invocations, so replay time stays linear in N.
"""
import argparse
import json
import os

T0 = 1_795_341_600_000  # 2026-11-22T10:00:00Z


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=200_000)
    ap.add_argument("--payloads", type=int, default=8)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    per = -(-a.starts // a.payloads)
    for p in range(a.payloads):
        events = [
            {
                "id": str(i),
                "timestamp": T0 + i,
                "message": f"START RequestId: {i:08x}-feed-4bad-beef-{i:012x} Version: $LATEST\n",
            }
            for i in range(p * per, min(a.starts, (p + 1) * per))
        ]
        doc = {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/aws/lambda/checkout",
            "logStream": "2026/11/22/[$LATEST]f100d000000000000000000000000000",
            "subscriptionFilters": ["logwarden"],
            "logEvents": events,
        }
        with open(os.path.join(a.out, f"flood-{p:02d}.json"), "w") as f:
            json.dump(doc, f)


if __name__ == "__main__":
    main()
