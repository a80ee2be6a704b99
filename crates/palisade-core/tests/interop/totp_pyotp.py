"""The independent side of the TOTP check: pyotp (which Google Authenticator-compatible Python apps
use) reads our otpauth:// URI, computes codes at the instants we give, and verifies the codes we
computed. Reads a JSON request file, writes a JSON answer file."""
import json
import sys

import pyotp

request = json.load(open(sys.argv[1]))
totp = pyotp.parse_uri(request["uri"])
answer = {
    "secret": totp.secret,
    "issuer": totp.issuer,
    "name": totp.name,
    "digits": totp.digits,
    "interval": totp.interval,
    "digest": totp.digest().name,
    "codes": [{"time": t, "code": totp.at(t)} for t in request["times"]],
    # valid_window=0: pyotp must accept our code for exactly the step we computed it for.
    "verified": [totp.verify(c["code"], for_time=c["time"], valid_window=0) for c in request["ours"]],
    "refused": [totp.verify(c["code"], for_time=c["time"] + 90, valid_window=0) for c in request["ours"]],
}
json.dump(answer, open(sys.argv[2], "w"))
