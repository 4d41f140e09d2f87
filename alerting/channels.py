"""Senders: SMTP for email, Twilio's REST API for SMS. Each returns the provider's message id
and raises on failure (the delivery loop decides about retries).

A refusal that sending again cannot change raises ``DeliveryRefused``: the delivery then
fails at once, with the provider's reason, instead of being retried for hours. Anything else
(a timeout, a busy server, a rate limit, credentials an operator can still fix) is raised as
the provider raised it and retried.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from twilio.base.exceptions import TwilioRestException, TwilioServiceException


class DeliveryFailed(Exception):
    """The provider did not take the message this time; its reason as plain text."""


class DeliveryRefused(DeliveryFailed):
    """The provider refused this message for good: sending it again gets the same answer."""


class EmailChannel(Protocol):
    sender: str

    def send(self, message: EmailMessage) -> str: ...


class SmsChannel(Protocol):
    def send(self, to: str, body: str) -> str: ...


def _permanent(code: int) -> bool:
    # RFC 5321 4.2.1: a 5yz reply is a permanent negative completion
    return 500 <= code < 600


@dataclass
class SmtpEmailChannel:
    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 15.0

    def send(self, message: EmailMessage) -> str:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                refused = smtp.send_message(message)
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
        except smtplib.SMTPRecipientsRefused as exc:
            # An unknown or closed mailbox (550, 553) stays so; a 4yz (mailbox busy,
            # greylisting) is worth another try.
            answers = exc.recipients.items()
            reason = "; ".join(f"{address}: {code} {_text(text)}"
                               for address, (code, text) in answers)
            if answers and all(_permanent(code) for _, (code, _) in answers):
                raise DeliveryRefused(reason) from exc
            raise DeliveryFailed(reason) from exc
        except smtplib.SMTPDataError as exc:
            # The message itself was refused (too large, judged spam): it would be again
            reason = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if _permanent(exc.smtp_code):
                raise DeliveryRefused(reason) from exc
            raise DeliveryFailed(reason) from exc
        return str(message["Message-ID"])


def _text(reason: bytes | str) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


@dataclass
class TwilioSmsChannel:
    """Wraps a ``twilio.rest.Client`` (dagster-twilio's resource builds it)."""

    client: object
    from_number: str

    def send(self, to: str, body: str) -> str:
        try:
            message = self.client.messages.create(to=to, from_=self.from_number, body=body)
        except (TwilioRestException, TwilioServiceException) as exc:
            # The library's str() of these is a coloured page when stderr is a terminal
            # (as under `dagster dev`): the outbox keeps the status, code and message only.
            text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or exc.title
            reason = f"HTTP {exc.status}, Twilio error {exc.code}: {text}"
            # 400: Twilio judged the request itself invalid (21211 a To number that is not a
            # phone number, 21610 a recipient who texted STOP, 21614 not a mobile number);
            # the same request gets the same answer. 401/403/404 (credentials, account) are
            # the operator's to fix, and 429 and 5xx pass: those are retried.
            if exc.status == 400:
                raise DeliveryRefused(reason) from exc
            raise DeliveryFailed(reason) from exc
        return message.sid
