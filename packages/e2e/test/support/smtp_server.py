"""Real SMTP servers (aiosmtpd) for the email channel tests.

Usage: /usr/bin/python3 smtp_server.py CERT KEY USER PASSWORD

Starts three servers on 127.0.0.1, each on a free port:
  starttls  offers STARTTLS and requires it, then requires AUTH (USER/PASSWORD)
  tls       TLS from the first byte (port-465 style), requires AUTH
  plain     no TLS, no AUTH (a local relay; also: a server without STARTTLS)
Prints one JSON line {"ready": {"starttls": PORT, "tls": PORT, "plain": PORT}},
then one {"mail": {...}} line per message received, parsed with the email
package. Runs until its stdin closes.
"""

import email
import email.policy
import json
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_print_lock = threading.Lock()


def emit(obj):
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self, name):
        self.name = name

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        emit(
            {
                "mail": {
                    "server": self.name,
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "subject": str(msg["subject"]),
                    "from": str(msg["from"]),
                    "to": str(msg["to"]),
                    # As a mail reader shows it: lines end in \n, not SMTP's \r\n.
                    "text": body.get_content().replace("\r\n", "\n") if body is not None else "",
                    "starttls": session.ssl is not None,
                    "login": login,
                }
            }
        )
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def start(make):
    # A free port can be taken between the probe and the bind: try a few.
    for _ in range(5):
        controller = make(free_port())
        try:
            controller.start()
            return controller
        except OSError:
            continue
    raise RuntimeError("no free port for the SMTP server")


def main():
    cert, key, user, password = sys.argv[1:5]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    check = authenticator(user, password)
    servers = {
        "starttls": start(
            lambda port: Controller(
                Recorder("starttls"),
                hostname="127.0.0.1",
                port=port,
                tls_context=context,
                require_starttls=True,
                authenticator=check,
                auth_required=True,
                auth_require_tls=True,
            )
        ),
        "tls": start(
            lambda port: Controller(
                Recorder("tls"),
                hostname="127.0.0.1",
                port=port,
                ssl_context=context,
                authenticator=check,
                auth_required=True,
                # The whole connection is TLS; aiosmtpd only knows about STARTTLS here.
                auth_require_tls=False,
            )
        ),
        "plain": start(lambda port: Controller(Recorder("plain"), hostname="127.0.0.1", port=port)),
    }
    emit({"ready": {name: c.port for name, c in servers.items()}})
    sys.stdin.read()
    for c in servers.values():
        c.stop()


if __name__ == "__main__":
    main()
