"""Send what is due in the outbox: digests per recipient, quiet hours, hourly caps, retries.

Each (tenant, kind, channel, recipient) group that is due becomes one message. The group's
rows are locked (``for update skip locked``, so two sensors never send the same rows), sent,
and marked in the same transaction: a restart resends nothing that was marked sent. (If the
process dies between the provider accepting a message and the commit, that one message is
sent again: delivery is at least once, never zero times.)

A failed send is retried with backoff, up to ``MAX_ATTEMPTS``; a refusal that another try
cannot change (an unknown mailbox, a number that is not a phone number) fails at once, with
the provider's reason in ``last_error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alerting.channels import DeliveryRefused, EmailChannel, SmsChannel
from alerting.messages import compose_email, compose_sms
from alerting.rules import AlertRules, load_rules

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
CAP_WINDOW = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes after the n-th failed attempt, at most an hour."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


@dataclass
class DeliveryReport:
    messages_sent: int = 0
    rows_sent: int = 0
    rows_retrying: int = 0
    rows_failed: int = 0
    rows_deferred: int = 0
    rows_not_configured: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.messages_sent} messages sent ({self.rows_sent} alert rows), "
                f"{self.rows_retrying} retrying, {self.rows_failed} failed, "
                f"{self.rows_deferred} deferred, {self.rows_not_configured} not configured")


def deliver_due(engine: Engine, now: datetime, email: EmailChannel | None = None,
                sms: SmsChannel | None = None, default_link: str | None = None,
                missing_settings: dict[str, str] | None = None) -> DeliveryReport:
    """Send what is due. ``missing_settings`` (channel -> what its settings lack, in the
    deployment's words) is recorded on the rows of a channel that is not configured, so
    whoever reads the outbox knows what to set."""
    report = DeliveryReport()
    with engine.connect() as conn:
        groups = conn.execute(sa.text("""
            select distinct tenant_id, kind, channel, recipient from ops.alert_deliveries
            where status = 'pending' and next_attempt_at <= :now
            order by tenant_id, kind, channel, recipient
        """), {"now": now}).all()
    for tenant_id, kind, channel, recipient in groups:
        with engine.begin() as conn:
            rows = conn.execute(sa.text("""
                select delivery_id, severity, attempts, payload from ops.alert_deliveries
                where status = 'pending' and next_attempt_at <= :now and tenant_id = :t
                  and kind = :k and channel = :c and recipient = :r
                order by delivery_id for update skip locked
            """), {"now": now, "t": tenant_id, "k": kind, "c": channel, "r": recipient}
            ).mappings().all()
            if rows:
                _deliver_group(conn, now, tenant_id, kind, channel, recipient, list(rows),
                               email, sms, default_link, report, missing_settings or {})
    return report


def _deliver_group(conn: sa.Connection, now: datetime, tenant_id: str, kind: str,
                   channel: str, recipient: str, rows: list, email: EmailChannel | None,
                   sms: SmsChannel | None, default_link: str | None,
                   report: DeliveryReport, missing_settings: dict[str, str]) -> None:
    ids = [r["delivery_id"] for r in rows]
    sender = email if channel == "email" else sms
    if sender is None:
        missing = missing_settings.get(channel)
        reason = f"{channel} channel not configured" + (f" ({missing})" if missing else "")
        log.warning("%s alerts for %s to %s not sent: %s", len(ids), tenant_id, recipient,
                    reason)
        conn.execute(sa.text(
            "update ops.alert_deliveries set status = 'not_configured', "
            "last_error = :e where delivery_id = any(:ids)"), {"ids": ids, "e": reason})
        report.rows_not_configured += len(ids)
        return

    rules = load_rules(conn, tenant_id) or AlertRules(tenant_id)
    wait_until = _wait_until(conn, now, rules, tenant_id, channel, recipient)
    if wait_until is not None:
        conn.execute(sa.text("update ops.alert_deliveries set next_attempt_at = :w "
                             "where delivery_id = any(:ids)"), {"w": wait_until, "ids": ids})
        report.rows_deferred += len(ids)
        return

    items = [{"severity": r["severity"], "payload": r["payload"]} for r in rows]
    link = rules.dashboard_url or default_link
    try:
        if channel == "email":
            message = compose_email(tenant_id, kind, items, email.sender, recipient, link)
            provider_id = email.send(message)
        else:
            provider_id = sms.send(recipient, compose_sms(tenant_id, kind, items))
    except Exception as exc:  # any provider error: record it; retry it unless it was final
        attempts = max(r["attempts"] for r in rows) + 1
        refused = isinstance(exc, DeliveryRefused)
        final = refused or attempts >= MAX_ATTEMPTS
        error = (f"refused, not retried: {exc}" if refused
                 else f"{type(exc).__name__}: {exc}")[:1000]
        log.warning("sending %s to %s failed (attempt %s): %s", channel, recipient, attempts,
                    error)
        conn.execute(sa.text("""
            update ops.alert_deliveries set attempts = :a, last_error = :e,
                   status = case when :final then 'failed' else 'pending' end,
                   next_attempt_at = :next
            where delivery_id = any(:ids)
        """), {"a": attempts, "e": error, "final": final, "next": now + backoff(attempts),
               "ids": ids})
        report.errors.append(f"{channel} to {recipient}: {error}")
        if final:
            report.rows_failed += len(ids)
        else:
            report.rows_retrying += len(ids)
        return
    conn.execute(sa.text("""
        update ops.alert_deliveries set status = 'sent', sent_at = :now,
               attempts = attempts + 1, message_id = :m, last_error = null
        where delivery_id = any(:ids)
    """), {"now": now, "m": provider_id, "ids": ids})
    report.messages_sent += 1
    report.rows_sent += len(ids)


def _wait_until(conn: sa.Connection, now: datetime, rules: AlertRules, tenant_id: str,
                channel: str, recipient: str) -> datetime | None:
    """When this recipient may be messaged again, or None if now."""
    if channel == "sms":
        quiet_end = rules.quiet_until(now)
        if quiet_end is not None:
            return quiet_end
    recent = conn.execute(sa.text("""
        select count(distinct message_id), min(sent_at) from ops.alert_deliveries
        where tenant_id = :t and channel = :c and recipient = :r and status = 'sent'
          and sent_at > :since
    """), {"t": tenant_id, "c": channel, "r": recipient, "since": now - CAP_WINDOW}).one()
    if recent[0] >= rules.max_messages_per_hour:
        return recent[1] + CAP_WINDOW
    return None


def outbox_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "select status, count(*) from ops.alert_deliveries group by status")).all())

