#!/usr/bin/env python3
"""Detection latency: from the audit record that crosses the brute-force threshold to the incident.

Runs `--attacks` brute-force attacks spread over `--seconds` (each: 10 LOGIN_FAILURE reports for a
fresh account, from 8 threads), then reads every brute_force incident of this run and, for each,
the record that opened it (its first attached `seq`): latency = incident `opened_at` minus that
record's `timestamp`, both stamped by the server. Prints one JSON line. Standard library only.

    loadtest/detection_latency.py --base http://127.0.0.1:8080 --key "$API_KEY" --attacks 200 --seconds 20
"""
import argparse
import json
import statistics
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime


def call(base, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("X-API-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def instant(text):
    # RFC 3339 with up to 9 fractional digits; Python keeps 6.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--attacks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    users = [f"bf-{run}-{i}" for i in range(args.attacks)]

    def attack(i):
        time.sleep(i * args.seconds / args.attacks)
        for _ in range(10):
            body = {"event_type": "LOGIN_FAILURE", "user_id": users[i], "ip_address": f"192.0.2.{i % 250}", "source": "latency"}
            for attempt in range(50):
                try:
                    call(args.base, args.key, "POST", "/monitoring/events", body)
                    break
                except urllib.error.HTTPError as e:  # 503 while the detectors' queue is full: retry
                    if e.code != 503:
                        raise
                    time.sleep(0.2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(attack, range(args.attacks)))
    time.sleep(3)
    incidents, before = [], None
    while True:
        page = call(args.base, args.key, "GET", "/monitoring/incidents?limit=500" + (f"&before={before}" if before else ""))
        incidents += page["incidents"]
        before = page.get("next_cursor")
        if not before:
            break
    ours = [i for i in incidents if i["cause"] == "brute_force" and i["subject"].startswith(f"user:bf-{run}-")]
    latencies = []
    for incident in ours:
        seq = incident["events"][0]
        event = call(args.base, args.key, "GET", f"/monitoring/events?before={seq + 1}&limit=1")["events"][0]
        assert event["seq"] == seq, (event, seq)
        latencies.append((instant(incident["opened_at"]) - instant(event["timestamp"])).total_seconds() * 1000)
    latencies.sort()
    if not latencies:
        print(json.dumps({"attacks": args.attacks, "incidents": 0}))
        sys.exit(1)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(json.dumps({
        "attacks": args.attacks,
        "incidents": len(ours),
        "p50_ms": round(pick(0.50), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(latencies[-1], 2),
        "mean_ms": round(statistics.mean(latencies), 2),
    }))
    sys.exit(0 if len(ours) == args.attacks else 1)


if __name__ == "__main__":
    main()
