#!/usr/bin/env python3
"""OAuth figures of issue #12, Palisade and node-oidc-provider driven the same way in one run.

Usage: oauth_flows.py palisade BASE CLIENT_ID CLIENT_SECRET [--seconds 10] [--concurrency 16]
       oauth_flows.py node BASE CLIENT_ID CLIENT_SECRET [...]

Scenarios (each bounded in time, one JSON line per scenario on stdout):
- code_flow (Palisade only): the whole authorization-code flow with PKCE S256 as a browser and a
  relying party do it — GET /oauth2/authorize (a new browser), POST the sign-in form (the password
  hash), the 303 with the code (consent was given once per user beforehand), POST /oauth2/token with
  the code and verifier (HTTP Basic). One flow = 4 requests; flows/s and per-flow percentiles.
  node-oidc-provider in ../shared/peers has no interactive login (devInteractions off, no redirect
  URIs): it is not measured here, and its password grant (a login, the same hash) is the nearest
  figure (scenario "login" of the peer kit).
- refresh: one rotating refresh-token chain per worker (POST /oauth2/token grant_type=refresh_token,
  HTTP Basic, the next request uses the new refresh token). Palisade's chains come from code flows,
  node-oidc-provider's from its password grant.
- introspection: POST the introspection endpoint (HTTP Basic) with a pool of live access tokens.

Needs aiohttp (the peer kit's driver venv has it: ~/.cache/peers/driver/venv/bin/python).
"""
import argparse
import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import urllib.parse

import aiohttp

PASSWORD = "Load-test-pass-1234!"
REDIRECT = "http://127.0.0.1:9/cb"


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return round(values[k] * 1000, 2)


def report(target, scenario, conc, seconds, latencies, errors, unit="req"):
    print(json.dumps({
        "target": target, "scenario": scenario, "concurrency": conc, "seconds": round(seconds, 3),
        f"ok_{unit}_per_s": round(len(latencies) / seconds, 1), "ok": len(latencies), "errors": errors,
        "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95), "p99_ms": pct(latencies, 99),
    }), flush=True)


def basic(client_id, secret):
    """HTTP Basic client authentication (RFC 6749 §2.3.1: both parts form-urlencoded first)."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def pkce():
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Palisade:
    def __init__(self, base, client_id, secret):
        self.base, self.client_id, self.auth = base, client_id, basic(client_id, secret)

    async def register(self, s, name):
        async with s.post(f"{self.base}/auth/register", json={"username": name, "password": PASSWORD}) as r:
            assert r.status in (200, 201), await r.text()

    async def flow(self, s, name, consent=False):
        """One whole code flow in a new browser; returns the token answer."""
        verifier, challenge = pkce()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
            "scope": "openid profile", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge, "code_challenge_method": "S256"})
        async with s.get(f"{self.base}/oauth2/authorize?{q}", allow_redirects=False) as r:
            page = await r.text()
            cookie = r.cookies["palisade_browser"].value
        request = re.search(r'name="request" value="([^"]+)"', page).group(1)
        headers = {"Cookie": f"palisade_browser={cookie}"}
        async with s.post(f"{self.base}/oauth2/authorize/login", headers=headers, allow_redirects=False,
                          data={"request": request, "username": name, "password": PASSWORD}) as r:
            cookie = r.cookies["palisade_browser"].value
            body = await r.text()
            location = r.headers.get("Location")
        if consent:
            request = re.search(r'name="request" value="([^"]+)"', body).group(1)
            async with s.post(f"{self.base}/oauth2/authorize/consent", allow_redirects=False,
                              headers={"Cookie": f"palisade_browser={cookie}"},
                              data={"request": request, "decision": "allow"}) as r:
                location = r.headers.get("Location")
        if not location:
            raise RuntimeError(f"no redirect after sign-in: {body[:200]}")
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
        async with s.post(f"{self.base}/oauth2/token", headers=self.auth, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier}) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"token: {r.status} {answer}")
            return answer

    token_path = "/oauth2/token"
    introspect_path = "/oauth2/introspect"


class Node:
    def __init__(self, base, client_id, secret):
        self.base, self.auth = base, basic(client_id, secret)

    async def register(self, s, name):
        async with s.post(f"{self.base}/register",
                          json={"username": name, "password": PASSWORD, "email": f"{name}@example.test"}) as r:
            assert r.status in (200, 201), await r.text()

    async def flow(self, s, name, consent=False):
        async with s.post(f"{self.base}/token", headers=self.auth, data={
                "grant_type": "password", "username": name, "password": PASSWORD,
                "scope": "openid email offline_access"}) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"password grant: {r.status} {answer}")
            return answer

    token_path = "/token"
    introspect_path = "/token/introspection"


async def timed(workers, seconds, body):
    """Runs body(worker) in a loop on each worker for `seconds`; latencies and errors."""
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds

    async def loop(w):
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                await body(w)
                latencies.append(time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001 — counted, and the first few printed
                errors += 1
                if errors <= 3:
                    print(f"error: {e}", flush=True)

    start = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    return latencies, errors, time.perf_counter() - start


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["palisade", "node"])
    ap.add_argument("base")
    ap.add_argument("client_id")
    ap.add_argument("client_secret")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    server = (Palisade if args.target == "palisade" else Node)(args.base, args.client_id, args.client_secret)
    name = "node-oidc-provider" if args.target == "node" else "palisade"
    c = args.concurrency
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as s:
        users = [f"load{secrets.token_hex(4)}{i}" for i in range(c)]
        await asyncio.gather(*(server.register(s, u) for u in users))
        # Consent once per user (Palisade remembers it); the chains for the refresh scenario.
        firsts = await asyncio.gather(*(server.flow(s, u, consent=True) for u in users))
        chains = [f["refresh_token"] for f in firsts]
        pool = [f["access_token"] for f in firsts]

        if args.target == "palisade":
            lat, err, secs = await timed(c, args.seconds, lambda w: server.flow(s, users[w]))
            report(name, "code_flow", c, secs, lat, err, unit="flows")
            # Fresh chains: the flows above opened new grants; the first ones are still alive.

        async def rotate(w):
            async with s.post(f"{args.base}{server.token_path}", headers=server.auth,
                              data={"grant_type": "refresh_token", "refresh_token": chains[w]}) as r:
                answer = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"refresh: {r.status} {answer}")
                chains[w] = answer["refresh_token"]
                pool[w] = answer["access_token"]

        lat, err, secs = await timed(c, args.seconds, rotate)
        report(name, "refresh", c, secs, lat, err)

        async def introspect(w):
            async with s.post(f"{args.base}{server.introspect_path}", headers=server.auth,
                              data={"token": pool[w]}) as r:
                answer = await r.json()
                if r.status != 200 or answer.get("active") is not True:
                    raise RuntimeError(f"introspect: {r.status} {answer}")

        lat, err, secs = await timed(c, args.seconds, introspect)
        report(name, "introspection", c, secs, lat, err)


if __name__ == "__main__":
    asyncio.run(main())
