"""Real protocol endpoints on loopback: an SMTP server (aiosmtpd) and a Twilio Messages API."""

from __future__ import annotations

import base64
import json
import re
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from tests.loopback import LoopbackHttpServer


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.unknown: set[str] = set()  # mailboxes refused for good, as Postfix does (550)
        self.busy: set[str] = set()  # mailboxes refused for now (450)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return (f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in "
                    "local recipient table")
        if address in self.busy:
            return f"450 4.2.1 <{address}>: Recipient address rejected: mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SmtpServer:
    """An SMTP server on 127.0.0.1; ``messages`` holds what it received, parsed."""

    def __init__(self) -> None:
        self.inbox = _Inbox()
        # aiosmtpd probes the port it was given after starting, so it needs a real one
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self._port)

    def refuse(self, *, unknown: tuple[str, ...] = (), busy: tuple[str, ...] = ()) -> None:
        """Refuse these mailboxes at RCPT: for good (550) or for now (450)."""
        self.inbox.unknown.update(unknown)
        self.inbox.busy.update(busy)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages


@dataclass
class TwilioState:
    account_sid: str
    auth_token: str
    messages: list[dict] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer with, in order
    unsubscribed: set[str] = field(default_factory=set)  # numbers that texted STOP
    requests: int = 0


def _handler(state: TwilioState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: int, message: str) -> None:
            # Twilio's error body shape
            self._reply(status, {"code": code, "message": message, "status": status,
                                 "more_info": f"https://www.twilio.com/docs/errors/{code}"})

        def do_POST(self) -> None:
            state.requests += 1
            expected_path = f"/2010-04-01/Accounts/{state.account_sid}/Messages.json"
            if self.path != expected_path:
                return self._error(404, 20404, "The requested resource was not found")
            auth = self.headers.get("Authorization", "")
            token = base64.b64encode(
                f"{state.account_sid}:{state.auth_token}".encode()).decode()
            if auth != f"Basic {token}":
                return self._error(401, 20003, "Authenticate")
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            missing = [f for f in ("To", "From", "Body") if not form.get(f)]
            if missing:
                return self._error(400, 21604, f"A '{missing[0]}' parameter is required.")
            if not re.fullmatch(r"\+[1-9][0-9]{1,14}", form["To"]):
                # Twilio's 21211: a To number not in E.164 (no +, a local format, spaces)
                return self._error(400, 21211, f"The 'To' number {form['To']} is not a valid "
                                               "phone number.")
            if len(form["Body"]) > 1600:
                # Twilio's 21617: a Body over 1,600 characters is refused, never split
                return self._error(400, 21617, "The concatenated message body exceeds the "
                                               "1600 character limit")
            if form["To"] in state.unsubscribed:
                # Twilio's 21610: the recipient replied STOP to this sender
                return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
            if state.fail_next:
                status = state.fail_next.pop(0)
                return self._error(status, 20429 if status == 429 else 20500,
                                   "Too Many Requests" if status == 429 else "Internal error")
            sid = f"SM{len(state.messages) + 1:032d}"
            state.messages.append({**form, "sid": sid})
            self._reply(201, {"sid": sid, "account_sid": state.account_sid,
                              "to": form["To"], "from": form["From"], "body": form["Body"],
                              "status": "queued", "num_segments": "1",
                              "uri": f"{expected_path[:-5]}/{sid}.json"})
    return Handler


class TwilioServer(LoopbackHttpServer):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` as Twilio answers it."""

    def __init__(self, account_sid: str = "AC" + "1" * 32, auth_token: str = "secret") -> None:
        self.state = TwilioState(account_sid, auth_token)
        super().__init__(_handler(self.state))
