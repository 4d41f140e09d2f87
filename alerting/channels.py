"""Senders: SMTP for email, Twilio's REST API for SMS. Each returns the provider's message id
and raises on failure (the delivery loop decides about retries)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol


class EmailChannel(Protocol):
    sender: str

    def send(self, message: EmailMessage) -> str: ...


class SmsChannel(Protocol):
    def send(self, to: str, body: str) -> str: ...


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
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return str(message["Message-ID"])


@dataclass
class TwilioSmsChannel:
    """Wraps a ``twilio.rest.Client`` (dagster-twilio's resource builds it)."""

    client: object
    from_number: str

    def send(self, to: str, body: str) -> str:
        message = self.client.messages.create(to=to, from_=self.from_number, body=body)
        return message.sid
