#!/usr/bin/env python3
"""TOTP second-step load on a running Palisade (issue #7). Loopback only; every load is bounded in time.

    ~/.cache/peers/driver/venv/bin/python loadtest/mfa.py --base http://127.0.0.1:18181 > mfa.jsonl
    loadtest/mfa.sh            # or: start a release build on a temporary SQLite store, run this, stop it

Needs the peers' driver venv (Python 3.11 + aiohttp): ../shared/peers/setup-driver.sh. The measurement
(`pct`, `summarize`, `timed_loop`) is imported from ../shared/peers/drive.py (PEERS_DIR), so the figures
compare with docs/benchmarks.md; TOTP codes are computed here (RFC 6238 with hmac, checked against
pyotp in the docstring of `totp_code`).

Phases, each printing one JSON line on stdout like drive.py (progress goes to stderr):
  register      --users U users, concurrency 8 (Argon2-bound: ~130/s on 2 vCPU), capped by --setup-timeout
  mfa_enrol     per user: password login (Argon2) for a bearer token, POST /auth/mfa/totp/setup, then
                POST /auth/mfa/totp/confirm with the current code; concurrency 8, same cap
  mfa_verify    --verify-rounds rounds of: log in a batch of --verify-batch users (untimed; Argon2-bound),
                wait for a 30 s step none of them has used yet, then POST /auth/mfa/verify for each with
                its current TOTP code, concurrency 16. Only the verify requests are timed; the line
                aggregates the rounds (elapsed = sum of the bursts, first request to last answer).
  mfa_login     whole login: POST /auth/login (Argon2) then POST /auth/mfa/verify, concurrency 16 for
                --flow-seconds (drive.py's timed_loop), starting on a step no user has used yet; latency
                is the pair; login and verify latencies are also given apart.

The replay guard accepts one code per user per 30-second step, so no user is sent twice in one step:
users are taken oldest-use first, and a worker that finds none left for this step waits for the next
(counted as `waits_for_next_step`; enough --users keeps it at 0).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import os
import secrets
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
PEERS = Path(os.environ.get("PEERS_DIR", HERE / ".." / ".." / "shared" / "peers")).resolve()
sys.path.insert(0, str(PEERS))
from drive import pct, summarize, timed_loop  # noqa: E402  (the peers' measurement, unchanged)

PASSWORD = os.environ.get("BENCH_PASSWORD", "Bench-pass-123!x")  # drive.py's, accepted by the default policy
STEP = 30


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def step_now() -> int:
    return int(time.time()) // STEP


def totp_code(key: bytes, step: int) -> str:
    """RFC 6238 / 4226: HMAC-SHA-1, 6 digits. Agrees with pyotp:
    >>> k = base64.b32decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"); import pyotp
    >>> all(totp_code(k, s) == pyotp.TOTP("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").at(s * 30) for s in range(1000))
    True
    """
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


def b32_secret(text: str) -> bytes:
    clean = text.strip().upper().rstrip("=")
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


class User:
    __slots__ = ("name", "email", "key", "last_step")

    def __init__(self, name):
        self.name, self.email, self.key, self.last_step = name, f"{name}@example.com", None, -1


class Bench:
    def __init__(self, a):
        import aiohttp

        self.a = a
        self.aiohttp = aiohttp
        self.base = a.base.rstrip("/")
        self.run_id = a.run_id or secrets.token_hex(3)
        self.users: list[User] = []
        # Enrolled users, least recently used first: last_step never decreases along the queue.
        self.ready: collections.deque[User] = collections.deque()

    def emit(self, scenario, concurrency, seconds, res=None, extra=None):
        line = {
            "target": "palisade", "scenario": scenario, "base": self.base, "concurrency": concurrency,
            "duration_s": seconds, "tool": "aiohttp", "argon2": self.a.argon2, "run_id": self.run_id,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        line.update(res or {})
        line.update(extra or {})
        print(json.dumps(line), flush=True)

    def session(self, limit):
        conn = self.aiohttp.TCPConnector(limit=limit)
        return self.aiohttp.ClientSession(
            connector=conn, timeout=self.aiohttp.ClientTimeout(total=self.a.request_timeout))

    async def post(self, s, path, body, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with s.post(self.base + path, json=body, headers=headers) as r:
            raw = await r.read()
            status = r.status
        try:
            j = json.loads(raw) if raw else {}
        except ValueError:
            j = {}
        return status, j if isinstance(j, dict) else {}

    async def login(self, s, u):
        """Password step. Returns (ok, info, mfa_token)."""
        status, j = await self.post(s, "/auth/login", {"username": u.name, "password": PASSWORD})
        if status != 200:
            return False, status, None
        if j.get("mfa_required") is not True or not j.get("mfa_token"):
            return False, f"{status}:no_mfa_token", None
        if "totp" not in (j.get("methods") or []):
            return False, f"{status}:totp_not_offered", None
        return True, status, j["mfa_token"]

    async def verify(self, s, u, mfa_token):
        """Second step with the user's current code; the step it used becomes the user's last."""
        step = step_now()
        if step <= u.last_step:
            raise RuntimeError("user_reused_within_step")  # a bug of this script, never the server's
        u.last_step = step
        status, j = await self.post(s, "/auth/mfa/verify",
                                    {"mfa_token": mfa_token, "method": "totp", "code": totp_code(u.key, step)})
        if status != 200:
            return False, f"{status}:{j.get('code') or j.get('title') or ''}"
        if not j.get("access_token"):
            return False, f"{status}:no_access_token"
        return True, status

    async def bounded_pool(self, items, concurrency, fn, cap):
        """Runs fn(s, item) -> (ok, info) over items with `concurrency` workers for at most `cap` s
        (drive.py's sc_register shape). Returns summarize(...)."""
        it = iter(items)
        lat_ok, kinds, errors = [], Counter(), 0
        async with self.session(concurrency) as s:
            async def worker():
                nonlocal errors
                for item in it:
                    t0 = time.perf_counter()
                    try:
                        ok, info = await fn(s, item)
                    except Exception as ex:  # transport errors, timeouts
                        ok, info = False, type(ex).__name__
                    if ok:
                        lat_ok.append(time.perf_counter() - t0)
                    else:
                        errors += 1
                        kinds[str(info)] += 1

            t0 = time.perf_counter()
            tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
            _, pending = await asyncio.wait(tasks, timeout=cap)
            for t in pending:
                t.cancel()
            if pending:
                kinds["stopped_at_timeout"] += 1
                await asyncio.gather(*pending, return_exceptions=True)
            return summarize(lat_ok, errors, kinds, time.perf_counter() - t0)

    # -- phases
    async def sc_register(self):
        users = [User(f"m{self.run_id}u{i}") for i in range(self.a.users)]

        async def register(s, u):
            status, _ = await self.post(s, "/auth/register",
                                        {"username": u.name, "password": PASSWORD, "email": u.email})
            if status in (200, 201):
                self.users.append(u)
                return True, status
            return False, status

        res = await self.bounded_pool(users, 8, register, self.a.setup_timeout)
        self.emit("register", 8, None, res, extra={"users_requested": self.a.users})

    async def sc_enrol(self):
        async def enrol(s, u):
            status, j = await self.post(s, "/auth/login", {"username": u.name, "password": PASSWORD})
            if status != 200 or not j.get("access_token"):
                return False, f"login:{status}"
            token = j["access_token"]
            status, j = await self.post(s, "/auth/mfa/totp/setup", {}, token)
            if status != 200 or not j.get("secret"):
                return False, f"setup:{status}"
            key = b32_secret(j["secret"])
            step = step_now()
            status, _ = await self.post(s, "/auth/mfa/totp/confirm", {"code": totp_code(key, step)}, token)
            if status != 204:
                return False, f"confirm:{status}"
            u.key, u.last_step = key, step
            return True, status

        res = await self.bounded_pool(list(self.users), 8, enrol, self.a.setup_timeout)
        enrolled = sorted((u for u in self.users if u.key), key=lambda u: u.last_step)
        self.ready.extend(enrolled)
        self.emit("mfa_enrol", 8, None, res, extra={"enrolled": len(enrolled), "steps": "login+setup+confirm"})

    async def sc_verify(self):
        c = 16
        lat_all, kinds, errors, elapsed, rounds = [], Counter(), 0, 0.0, []
        prelogin = {"ok": 0, "elapsed_s": 0.0}
        for r in range(self.a.verify_rounds):
            batch = [self.ready.popleft() for _ in range(min(self.a.verify_batch, len(self.ready)))]
            tokens = {}

            async def pre(s, u):
                ok, info, mfa_token = await self.login(s, u)
                if ok:
                    tokens[u.name] = mfa_token
                return ok, info

            res = await self.bounded_pool(batch, 8, pre, self.a.setup_timeout)
            prelogin["ok"] += res["ok"]
            prelogin["elapsed_s"] += res["elapsed_s"]
            work = collections.deque(u for u in batch if u.name in tokens)
            need = max((u.last_step for u in work), default=-1) + 1
            while step_now() < need:  # each user's last accepted code is from an earlier step
                await asyncio.sleep(0.05)
            # The burst: drive.py's timed_loop measurement (time per request, summarize), ending when
            # the batch is used up or at the hard cap rather than after a fixed duration.
            lat, k, e = [], Counter(), 0
            async with self.session(c) as s:
                async def worker():
                    nonlocal e
                    while work:
                        u = work.popleft()
                        t0 = time.perf_counter()
                        try:
                            ok, info = await self.verify(s, u, tokens[u.name])
                        except asyncio.CancelledError:
                            raise
                        except Exception as ex:
                            ok, info = False, type(ex).__name__
                        if ok:
                            lat.append(time.perf_counter() - t0)
                        else:
                            e += 1
                            k[str(info)] += 1

                started = time.time()
                t0 = time.perf_counter()
                tasks = [asyncio.create_task(worker()) for _ in range(c)]
                _, pending = await asyncio.wait(tasks, timeout=self.a.verify_cap)
                for t in pending:
                    t.cancel()
                if pending:
                    k["cancelled_at_hard_cap"] += len(pending)
                    await asyncio.gather(*pending, return_exceptions=True)
                dt = min(time.perf_counter() - t0, self.a.verify_cap)
            one = summarize(list(lat), e, k, dt)
            log(f"  verify round {r + 1}: {one['ok']} ok, {one['errors']} errors in {one['elapsed_s']} s "
                f"= {one['ok_rps']}/s, p50 {one['p50_ms']} ms, p99 {one['p99_ms']} ms")
            rounds.append({"start": time.strftime("%H:%M:%S", time.localtime(started)), "elapsed_s": one["elapsed_s"],
                           "ok": one["ok"], "errors": one["errors"], "ok_rps": one["ok_rps"],
                           "p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"]})
            lat_all += lat
            kinds.update(k)
            errors += e
            elapsed += dt
            self.ready.extend(batch)  # used in this step: to the back of the queue
        res = summarize(lat_all, errors, kinds, elapsed)
        self.emit("mfa_verify", c, None, res, extra={
            "path": "/auth/mfa/verify", "method": "totp", "rounds": rounds,
            "prelogins": prelogin["ok"], "prelogin_elapsed_s": round(prelogin["elapsed_s"], 3)})

    async def sc_flow(self):
        c, secs = 16, self.a.flow_seconds
        login_lat, verify_lat, waits = [], [], 0
        need = max((u.last_step for u in self.ready), default=-1) + 1
        while step_now() < need:  # start on a step no user has used yet (untimed)
            await asyncio.sleep(0.05)
        async with self.session(c) as s:
            async def op(i, st):
                nonlocal waits
                while not self.ready or self.ready[0].last_step >= step_now():
                    waits += 1  # everyone has used this step's code: wait for the next step
                    await asyncio.sleep(STEP - time.time() % STEP + 0.01)
                u = self.ready.popleft()
                try:
                    t0 = time.perf_counter()
                    ok, info, mfa_token = await self.login(s, u)
                    if not ok:
                        return False, f"login:{info}"
                    t1 = time.perf_counter()
                    ok, info = await self.verify(s, u, mfa_token)
                    if ok:
                        login_lat.append(t1 - t0)
                        verify_lat.append(time.perf_counter() - t1)
                    return ok, f"verify:{info}"
                finally:
                    self.ready.append(u)

            res = await timed_loop(c, secs, op, [None] * c, secs + 2 * self.a.request_timeout + 5)
        login_lat.sort()
        verify_lat.sort()
        self.emit("mfa_login", c, secs, res, extra={
            "flow": "POST /auth/login + POST /auth/mfa/verify", "waits_for_next_step": waits,
            "login_p50_ms": pct(login_lat, 50), "login_p99_ms": pct(login_lat, 99),
            "verify_p50_ms": pct(verify_lat, 50), "verify_p99_ms": pct(verify_lat, 99)})

    async def run(self):
        t0 = time.perf_counter()
        log(f"mfa.py: base={self.base} run_id={self.run_id} users={self.a.users}")
        await self.sc_register()
        await self.sc_enrol()
        if len(self.ready) < 16:
            raise SystemExit("too few users enrolled to measure anything")
        for name in self.a.scenarios:
            await asyncio.sleep(self.a.pause)
            log(f"[palisade] {name} ...")
            await {"verify": self.sc_verify, "login": self.sc_flow}[name]()
        log(f"mfa.py: done in {time.perf_counter() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="e.g. http://127.0.0.1:18181")
    ap.add_argument("--users", type=int, default=5000,
                    help="users registered and enrolled; the login flow needs more than 30 s × its rate")
    ap.add_argument("--scenarios", default="verify,login", help="verify, login or both (after register+enrol)")
    ap.add_argument("--verify-batch", type=int, default=3000, help="mfa_tokens per verify burst")
    ap.add_argument("--verify-rounds", type=int, default=2)
    ap.add_argument("--verify-cap", type=float, default=60, help="hard cap of one verify burst, s")
    ap.add_argument("--flow-seconds", type=float, default=15)
    ap.add_argument("--setup-timeout", type=float, default=300, help="cap of each setup phase, s")
    ap.add_argument("--request-timeout", type=float, default=10)
    ap.add_argument("--pause", type=float, default=1.0)
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--argon2", default=os.environ.get("BENCH_ARGON2", "argon2id m=19456 t=2 p=1 (default)"))
    a = ap.parse_args()
    host = urlparse(a.base).hostname or ""
    if host not in ("localhost", "::1") and not host.startswith("127."):
        ap.error("loopback targets only")
    a.scenarios = [x.strip() for x in a.scenarios.split(",") if x.strip()]
    if any(x not in ("verify", "login") for x in a.scenarios):
        ap.error("scenarios: verify, login")
    asyncio.run(Bench(a).run())


if __name__ == "__main__":
    main()
