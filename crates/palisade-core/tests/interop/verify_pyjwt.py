#!/usr/bin/env python3
"""Independent check of Palisade's access tokens with PyJWT, a JWT implementation we did not write.

Usage: verify_pyjwt.py DIR

DIR holds, written by tests/interop/main.rs:
  jwks.json    the JWK Set exactly as Palisade publishes it
  expect.json  {"issuer": ..., "audience": ...}
  cases.json   [{"name", "token", "expect": "valid" | "expired", "sub", "jti", "sid", "scope"}]

Keys come from jwks.json only (jwt.PyJWKSet / jwt.PyJWK), chosen by the token's kid; nothing of
Palisade's code is used. For each case the signature, iss, aud and exp are checked by PyJWT. For each
valid token, the script also checks that PyJWT refuses it with the payload tampered, and for another
audience or issuer (so a pass cannot come from a check PyJWT skipped).

Prints one line per verdict, "PASS <name>: ..." or "FAIL <name>: ...", and exits 0 only if every
verdict is PASS.
"""

import base64
import json
import pathlib
import sys

import jwt

REQUIRED = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main() -> int:
    directory = pathlib.Path(sys.argv[1])
    jwks_json = (directory / "jwks.json").read_text()
    expect = json.loads((directory / "expect.json").read_text())
    cases = json.loads((directory / "cases.json").read_text())
    issuer, audience = expect["issuer"], expect["audience"]
    failures = 0

    def verdict(ok: bool, name: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    raw = json.loads(jwks_json)
    leaked = [k.get("kid") for k in raw["keys"] if PRIVATE_MEMBERS & set(k)]
    verdict(not leaked, "jwks", f"{len(raw['keys'])} public keys, no private members" if not leaked else f"private members in {leaked}")
    jwks = jwt.PyJWKSet.from_json(jwks_json)

    def decode(token: str, key: "jwt.PyJWK", aud: str = audience, iss: str = issuer) -> dict:
        return jwt.decode(
            token,
            key=key,
            algorithms=[key.algorithm_name],
            audience=aud,
            issuer=iss,
            options={"require": REQUIRED},
        )

    for case in cases:
        name, token = case["name"], case["token"]
        try:
            header = jwt.get_unverified_header(token)
            key = jwks[header["kid"]]
        except Exception as e:  # noqa: BLE001 - every failure is a verdict
            verdict(False, name, f"no key for the token in the JWKS: {e!r}")
            continue
        if header.get("typ") != "at+jwt" or header.get("alg") != key.algorithm_name:
            verdict(False, name, f"unexpected header {header} for a {key.algorithm_name} key")
            continue

        if case["expect"] == "expired":
            try:
                decode(token, key)
                verdict(False, name, "an expired token was accepted")
            except jwt.ExpiredSignatureError:
                verdict(True, name, f"{key.algorithm_name} signature verified, refused as expired")
            except jwt.PyJWTError as e:
                verdict(False, name, f"refused for another reason: {e!r}")
            continue

        try:
            claims = decode(token, key)
        except jwt.PyJWTError as e:
            verdict(False, name, f"refused: {e!r}")
            continue
        same = all(claims[c] == case[c] for c in ("sub", "jti", "sid", "scope"))
        verdict(same, name, f"{key.algorithm_name} signature, iss, aud, exp verified; claims match" if same else f"claims differ: {claims}")

        # The same token with a forged payload (another subject, admin scope), header and signature kept.
        head, payload, signature = token.split(".")
        forged_claims = json.loads(b64url_decode(payload))
        forged_claims.update(sub="attacker", scope="admin")
        forged = ".".join([head, b64url(json.dumps(forged_claims, separators=(",", ":")).encode()), signature])
        try:
            decode(forged, key)
            verdict(False, f"{name}-tampered", "a tampered token was accepted")
        except jwt.InvalidSignatureError:
            verdict(True, f"{name}-tampered", "refused: signature verification failed")
        except jwt.PyJWTError as e:
            verdict(False, f"{name}-tampered", f"refused for another reason: {e!r}")

        for label, kwargs, error in [
            ("wrong-audience", {"aud": "https://someone-else.test"}, jwt.InvalidAudienceError),
            ("wrong-issuer", {"iss": "https://someone-else.test"}, jwt.InvalidIssuerError),
        ]:
            try:
                decode(token, key, **kwargs)
                verdict(False, f"{name}-{label}", "accepted")
            except error:
                verdict(True, f"{name}-{label}", f"refused: {error.__name__}")
            except jwt.PyJWTError as e:
                verdict(False, f"{name}-{label}", f"refused for another reason: {e!r}")

    print(f"{'OK' if failures == 0 else 'FAILED'}: {failures} failure(s), PyJWT {jwt.__version__}", flush=True)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
