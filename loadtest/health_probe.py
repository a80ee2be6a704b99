"""Probe GET /health at a steady rate and report latency percentiles.

Used to show that /health stays fast during a login storm (password hashing runs on a bounded
blocking pool, never on the async workers). Loopback only; bounded by --seconds.

    python3 loadtest/health_probe.py --base http://127.0.0.1:8080 --seconds 15 --rate 20
"""

import argparse
import asyncio
import json
import statistics
import time
import urllib.parse

import aiohttp


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", type=float, default=20, help="probes per second")
    args = parser.parse_args()
    host = urllib.parse.urlparse(args.base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback targets only")
    latencies, errors = [], 0
    deadline = time.monotonic() + args.seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                async with session.get(args.base + "/health") as response:
                    await response.read()
                    if response.status == 200:
                        latencies.append((time.monotonic() - started) * 1000)
                    else:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            await asyncio.sleep(max(0.0, 1 / args.rate - (time.monotonic() - started)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
    print(json.dumps({
        "probes": len(latencies), "errors": errors,
        "p50_ms": round(pick(0.50), 2), "p95_ms": round(pick(0.95), 2), "p99_ms": round(pick(0.99), 2),
        "max_ms": round(latencies[-1], 2), "mean_ms": round(statistics.mean(latencies), 2),
    }))


asyncio.run(main())
