"""A real SMTP server for the tests of palisade-server's SmtpSender (src/notify/smtp.rs).

Usage: python3 smtp_sink.py OUT_FILE [USER:PASSWORD]

Listens on a free port of 127.0.0.1 with aiosmtpd, prints that port on the first line of stdout,
and serves until killed. Each accepted message is parsed with Python's own `email` package and
appended to OUT_FILE as one JSON object (envelope, decoded headers, content type, decoded body)
BEFORE the 250 reply, so a sender that saw its message accepted finds it in the file.

Scripted refusals, by recipient: `reject-…@` gets 550 (permanent), `busy-…@` gets 451 (transient).
With USER:PASSWORD, AUTH is required (over plain text: this is a loopback test server) and other
credentials get 535; the accepted login is recorded with the message.
"""

import asyncio
import json
import logging
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-"):
            return "550 5.1.1 no such user"
        if local.startswith("busy-"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "from": str(message["From"]) if message["From"] is not None else None,
            "to": str(message["To"]) if message["To"] is not None else None,
            "bcc": str(message["Bcc"]) if message["Bcc"] is not None else None,
            "subject": str(message["Subject"]) if message["Subject"] is not None else None,
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "transfer_encoding": message["Content-Transfer-Encoding"],
            "body": message.get_content(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


async def main():
    # Keep the test output clean: aiosmtpd warns (rightly) about AUTH without TLS.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    out = sys.argv[1]
    options = {}
    if len(sys.argv) > 2:
        user, password = sys.argv[2].split(":", 1)
        options = {"authenticator": Authenticator(user, password), "auth_required": True, "auth_require_tls": False}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(out), hostname="sink.test", **options), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
