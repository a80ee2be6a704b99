"""Independent check of Palisade's encryption envelopes with pyca/cryptography (code we did not write).

Reads a JSON case on stdin: the master key (base64), the wrapped data key as stored (base64 of
nonce || ciphertext || tag under the master key), the data key's id, an envelope as POST
/crypto/encrypt returned it, its context, and the expected plaintext (base64). From the documented
formats only (docs/security.md "Encryption service") it unwraps the data key, rebuilds the additional
authenticated data, decrypts, and checks that a changed context or a flipped bit is refused.
Prints one JSON line: {"ok": true} or {"ok": false, "why": "..."}.
"""
import base64
import json
import struct
import sys
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64(text):
    text = text.strip()
    pad = "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text + pad, altchars=b"-_", validate=False)
    except Exception:
        return base64.b64decode(text + pad)


def part(data):
    return struct.pack(">I", len(data)) + data


def optional(value):
    return b"\x01" + part(value.encode()) if value is not None else b"\x00"


def aad(env, ctx):
    out = b"palisade envelope v2"
    out += part(uuid.UUID(env["key_id"]).bytes)
    out += struct.pack(">I", env["key_version"])
    out += part(env["algorithm"].encode())
    out += part(env["classification"].encode())
    out += b"\x01" if env.get("compressed") else b"\x00"
    out += b"\x01" + part(uuid.UUID(env["owner_key"]).bytes) if env.get("owner_key") else b"\x00"
    out += part(ctx["data_classification"].encode())
    out += part(ctx["purpose"].encode())
    out += optional(ctx.get("user_id"))
    out += optional(ctx.get("field"))
    return out


def main():
    case = json.load(sys.stdin)
    master = base64.b64decode(case["master_key"])
    wrapped = base64.b64decode(case["wrapped_key"])
    key_id = uuid.UUID(case["key_id"])
    def unwrap(blob, kid):
        return AESGCM(master).decrypt(blob[:12], blob[12:], b"palisade data key v1:" + kid.bytes)

    data_key = unwrap(wrapped, key_id)
    env, ctx = case["envelope"], case["context"]
    if env.get("owner_key"):
        # An owner's envelope: the data key is HKDF-SHA256 over the class key, salted with the
        # owner's key, with both keys' ids as info.
        owner_id = uuid.UUID(case["owner_key_id"])
        if owner_id != uuid.UUID(env["owner_key"]):
            return {"ok": False, "why": "the envelope names another owner key"}
        owner_key = unwrap(base64.b64decode(case["owner_wrapped_key"]), owner_id)
        info = b"palisade owner-bound key v1" + key_id.bytes + owner_id.bytes
        data_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=owner_key, info=info).derive(data_key)
    if env["algorithm"] != "AES-256-GCM" or env["v"] != 2:
        return {"ok": False, "why": f"unexpected envelope {env['v']} {env['algorithm']}"}
    nonce, sealed = b64(env["nonce"]), b64(env["ciphertext"])
    plain = AESGCM(data_key).decrypt(nonce, sealed, aad(env, ctx))
    if plain != base64.b64decode(case["plaintext"]):
        return {"ok": False, "why": "decrypted to other bytes"}
    for moved in ({**ctx, "field": "other"}, {**ctx, "purpose": ctx["purpose"] + "x"}, {**ctx, "field": None}):
        try:
            AESGCM(data_key).decrypt(nonce, sealed, aad(env, moved))
            return {"ok": False, "why": f"opened under another context {moved}"}
        except InvalidTag:
            pass
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    try:
        AESGCM(data_key).decrypt(nonce, flipped, aad(env, ctx))
        return {"ok": False, "why": "opened a flipped ciphertext"}
    except InvalidTag:
        pass
    # The datakey round trip: a key from POST /crypto/datakey encrypts client-side with AES-GCM.
    client_key = base64.b64decode(case["client_key"])
    blob = AESGCM(client_key).encrypt(b"\x00" * 12, b"bulk data", None)
    if AESGCM(client_key).decrypt(b"\x00" * 12, blob, None) != b"bulk data":
        return {"ok": False, "why": "data key unusable"}
    return {"ok": True}


if __name__ == "__main__":
    print(json.dumps(main()))
