#!/usr/bin/env python3
"""An OpenID Connect relying party built on authlib (code we did not write), run against a live
Palisade server by crates/palisade-server/tests/api/oidc_interop.rs.

Usage: authlib_rp.py ISSUER, with the user and the clients in the environment (secrets stay off
the command line):

  PALISADE_RP_USERNAME, PALISADE_RP_PASSWORD        a user of the server, password only
  PALISADE_RP_REDIRECT_URI                          registered for the code client; never fetched
  PALISADE_RP_CODE_CLIENT_ID, ..._CODE_CLIENT_SECRET  authorization_code + refresh_token, client_secret_basic
  PALISADE_RP_POST_CLIENT_ID, ..._POST_CLIENT_SECRET  client_credentials, client_secret_post
  PALISADE_RP_JWT_CLIENT_ID, PALISADE_RP_JWT_KID    client_credentials, private_key_jwt, whose public
  PALISADE_RP_JWT_KEY_PEM                           JWK (kid) is registered; its PKCS#8 Ed25519 key

Steps, each printed as one JSON line on stdout once it passed:
  discovery           the provider's metadata (its issuer must be ISSUER) and JWKS
  authorization_code  an authorization URL with PKCE S256, state and nonce built by authlib's
                      OAuth2Session; the sign-in and consent forms driven with requests as a browser
                      (cookies kept, hidden inputs parsed); the redirect's state checked by authlib and
                      its iss (RFC 9207) here; the code exchanged by authlib (client_secret_basic);
                      the ID token verified as authlib's own OpenIDMixin.parse_id_token does it:
                      joserfc (authlib's JOSE layer) checks the signature with the JWKS and the
                      discovered algorithms, authlib.oidc.core.CodeIDToken the claims (iss, aud, azp,
                      exp, iat, nonce, at_hash), with negative controls for nonce and at_hash
  userinfo            UserInfo with the session's bearer token
  refresh             authlib's refresh: a rotated refresh token and a new, verified ID token
  client_secret_post  client_credentials, the access token verified against the JWKS
  private_key_jwt     client_credentials with authlib's PrivateKeyJWT (EdDSA)

Exits 1 with "authlib_rp: FAIL: ..." on stderr at the first failure, 2 when authlib is missing.
"""

import json
import os
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit


def fail(message):
    print(f"authlib_rp: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


try:
    import requests
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2.claims import JWTClaims
    from authlib.oauth2.rfc7523 import PrivateKeyJWT
    from authlib.oidc.core import CodeIDToken, IDToken

    # joserfc is authlib's JOSE layer (a dependency of authlib, by its author): authlib.jose is
    # deprecated for it, authlib's OIDC claims raise its errors, and PrivateKeyJWT signs with its keys.
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet, OKPKey
    from joserfc.jws import JWSRegistry
except ImportError as error:
    print(f"authlib_rp: {error}: python3 -m pip install authlib requests", file=sys.stderr)
    sys.exit(2)


def env(name):
    value = os.environ.get(name)
    if not value:
        fail(f"{name} is not set")
    return value


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


class Forms(HTMLParser):
    """The forms of a page: action, hidden inputs and submit buttons (name, value)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "hidden": {}, "buttons": []})
        elif self.forms and tag == "input" and attrs.get("type") == "hidden":
            self.forms[-1]["hidden"][attrs.get("name")] = attrs.get("value", "")
        elif self.forms and tag == "button" and attrs.get("name"):
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value", "")))


def form(response, action):
    """The form of `response` posting to `action` (html.parser unescapes the values)."""
    if response.status_code != 200:
        fail(f"expected a page with a form to {action}, got {response.status_code}: {response.text[:500]}")
    parser = Forms()
    parser.feed(response.text)
    for found in parser.forms:
        if found["action"] == action:
            return found
    fail(f"no form posting to {action} in: {response.text[:1000]}")


def verify_jwt(token, key_set, algorithms, claims_cls, options, params=None):
    """The claims of `token`, its signature verified with `key_set` (one of `algorithms`) and its
    claims validated by `claims_cls` with `options` and `params`; JoseError when refused."""
    decoded = jwt.decode(token, key_set, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False))
    claims = claims_cls(decoded.claims, decoded.header, options, params)
    claims.validate(now=int(time.time()), leeway=5)
    return claims


def refused(check):
    try:
        check()
    except JoseError:
        return True
    return False


def main():
    if len(sys.argv) != 2:
        fail("usage: authlib_rp.py ISSUER")
    issuer = sys.argv[1]
    username, password = env("PALISADE_RP_USERNAME"), env("PALISADE_RP_PASSWORD")
    redirect_uri = env("PALISADE_RP_REDIRECT_URI")
    timeout = 30

    # --- discovery
    response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout)
    if response.status_code != 200:
        fail(f"discovery answered {response.status_code}")
    metadata = response.json()
    if metadata.get("issuer") != issuer:
        fail(f"the metadata's issuer {metadata.get('issuer')!r} is not {issuer!r}")
    for field in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        if not str(metadata.get(field, "")).startswith(issuer):
            fail(f"{field} {metadata.get(field)!r} is not under the issuer")
    if "S256" not in metadata.get("code_challenge_methods_supported", []):
        fail("S256 is not in code_challenge_methods_supported")
    algorithms = metadata["id_token_signing_alg_values_supported"]
    key_set = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=timeout).json())
    token_endpoint = metadata["token_endpoint"]
    report("discovery", issuer=metadata["issuer"], algorithms=algorithms)

    # --- authorization code with PKCE, as authlib's relying party
    client_id = env("PALISADE_RP_CODE_CLIENT_ID")
    session = OAuth2Session(
        client_id,
        env("PALISADE_RP_CODE_CLIENT_SECRET"),
        scope="openid profile email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    query = parse_qs(urlsplit(url).query)
    if query.get("code_challenge_method") != ["S256"] or not query.get("code_challenge"):
        fail(f"authlib built no S256 challenge: {url}")

    # The browser: requests keeps the palisade_browser cookie; nothing redirects by itself.
    browser = requests.Session()
    page = browser.get(url, allow_redirects=False, timeout=timeout)
    sign_in = form(page, "/oauth2/authorize/login")
    page = browser.post(
        urljoin(issuer, sign_in["action"]),
        data={**sign_in["hidden"], "username": username, "password": password},
        allow_redirects=False,
        timeout=timeout,
    )
    consent = form(page, "/oauth2/authorize/consent")
    if ("decision", "allow") not in consent["buttons"]:
        fail(f"the consent form has no allow button: {consent}")
    back = browser.post(
        urljoin(issuer, consent["action"]),
        data={**consent["hidden"], "decision": "allow"},
        allow_redirects=False,
        timeout=timeout,
    )
    location = back.headers.get("location", "")
    if back.status_code not in (302, 303) or not location.startswith(redirect_uri + "?"):
        fail(f"consent did not send the browser back: {back.status_code} {location!r} {back.text[:500]}")
    answered = parse_qs(urlsplit(location).query)
    if answered.get("iss") != [issuer]:
        fail(f"the redirect's iss is {answered.get('iss')!r}, not {issuer!r} (RFC 9207)")

    # authlib checks the state against its own and exchanges the code.
    token = session.fetch_token(token_endpoint, authorization_response=location, code_verifier=code_verifier)
    for field in ("access_token", "id_token", "refresh_token"):
        if field not in token:
            fail(f"the token response has no {field}: {sorted(token)}")
    if token.get("token_type", "").lower() != "bearer":
        fail(f"token_type is {token.get('token_type')!r}")

    id_options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "auth_time": {"essential": True},
    }
    params = {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]}
    claims = verify_jwt(token["id_token"], key_set, algorithms, CodeIDToken, id_options, params)
    if "at_hash" not in claims:
        fail("the ID token has no at_hash")
    # Negative controls: the same checks refuse another nonce and another access token.
    if not refused(lambda: verify_jwt(token["id_token"], key_set, algorithms, CodeIDToken, id_options,
                                      {**params, "nonce": "other"})):
        fail("a wrong nonce was accepted")
    if not refused(lambda: verify_jwt(token["id_token"], key_set, algorithms, CodeIDToken, id_options,
                                      {**params, "access_token": token["access_token"] + "x"})):
        fail("a wrong at_hash was accepted")
    report(
        "authorization_code",
        sub=claims["sub"],
        aud=claims["aud"],
        alg=claims.header["alg"],
        at_hash_checked=True,
        scope=token.get("scope"),
    )

    # --- userinfo, with the session's bearer token
    response = session.get(metadata["userinfo_endpoint"], timeout=timeout)
    if response.status_code != 200:
        fail(f"userinfo answered {response.status_code}: {response.text[:500]}")
    info = response.json()
    if info.get("sub") != claims["sub"]:
        fail(f"userinfo's sub {info.get('sub')!r} is not the ID token's {claims['sub']!r}")
    report("userinfo", claims=info)

    # --- refresh: rotated, and a new ID token for the same user and sign-in
    refreshed = session.refresh_token(token_endpoint)
    if refreshed.get("refresh_token") in (None, token["refresh_token"]):
        fail("the refresh token did not rotate")
    renewed = verify_jwt(refreshed["id_token"], key_set, algorithms, IDToken, id_options,
                         {"client_id": client_id, "access_token": refreshed["access_token"]})
    if renewed["sub"] != claims["sub"] or renewed["auth_time"] != claims["auth_time"]:
        fail("the refreshed ID token is for another user or sign-in")
    if session.get(metadata["userinfo_endpoint"], timeout=timeout).status_code != 200:
        fail("userinfo refused the refreshed access token")
    report("refresh", sub=renewed["sub"], rotated=True)

    # --- client credentials, client_secret_post
    access_options = {"iss": {"essential": True, "value": issuer}, "sub": {"essential": True}}

    def client_token(client, scope):
        extra = {"scope": scope} if scope else {}
        issued = client.fetch_token(token_endpoint, grant_type="client_credentials", **extra)
        if "refresh_token" in issued or "id_token" in issued:
            fail(f"client_credentials issued more than an access token: {sorted(issued)}")
        verified = verify_jwt(issued["access_token"], key_set, algorithms, JWTClaims, access_options)
        return issued, verified

    post_id = env("PALISADE_RP_POST_CLIENT_ID")
    post = OAuth2Session(post_id, env("PALISADE_RP_POST_CLIENT_SECRET"),
                         token_endpoint_auth_method="client_secret_post")
    issued, verified = client_token(post, "orders:read")
    report("client_secret_post", sub=verified["sub"], client_id=verified.get("client_id"),
           scope=issued.get("scope"))

    # --- client credentials, private_key_jwt (EdDSA), assertions built by authlib
    jwt_id = env("PALISADE_RP_JWT_CLIENT_ID")
    key = OKPKey.import_key(env("PALISADE_RP_JWT_KEY_PEM"))
    signer = OAuth2Session(jwt_id, key, token_endpoint_auth_method="private_key_jwt")
    signer.register_client_auth_method(
        PrivateKeyJWT(token_endpoint, alg="EdDSA", headers={"kid": env("PALISADE_RP_JWT_KID")})
    )
    issued, verified = client_token(signer, None)
    report("private_key_jwt", sub=verified["sub"], client_id=verified.get("client_id"),
           scope=issued.get("scope"))


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as error:  # any library or HTTP error is a failure, said plainly
        fail(f"{type(error).__name__}: {error}")
