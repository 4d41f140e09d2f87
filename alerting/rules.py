"""Per-tenant alert rules (``ops.alert_rules``): recipients, thresholds, quiet hours, cap."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SEVERITIES = ("low", "medium", "high", "critical")
# What Twilio accepts as a To number: + and the country code, no spaces or punctuation (it
# refuses anything else with error 21211 on every attempt).
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


class InvalidAlertRules(ValueError):
    """Rules that could never deliver or make no sense, refused before they are saved (a
    mistyped number would otherwise surface only as failed rows in the outbox)."""


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class AlertRules:
    tenant_id: str
    timezone: str = "UTC"
    email_recipients: tuple[str, ...] = ()
    sms_recipients: tuple[str, ...] = ()
    email_min_severity: str = "medium"
    sms_min_severity: str = "critical"
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    max_messages_per_hour: int = 6
    stale_after: timedelta = field(default=timedelta(days=3))
    dashboard_url: str | None = None
    # Anomalies more than this many days before the tenant's latest judged day are history:
    # recorded in the outbox as suppressed, never sent (see alerting.outbox).
    recent_days: int = 7

    def recipients(self, channel: str, severity: str) -> tuple[str, ...]:
        """Who gets an alert of ``severity`` on ``channel``."""
        if channel == "email":
            wanted = severity_rank(severity) >= severity_rank(self.email_min_severity)
            return self.email_recipients if wanted else ()
        wanted = severity_rank(severity) >= severity_rank(self.sms_min_severity)
        return self.sms_recipients if wanted else ()

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet hours that contain ``now`` end (None when it is not quiet)."""
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        start, end, clock = self.quiet_hours_start, self.quiet_hours_end, local.time()
        overnight = start > end  # e.g. 22:00-07:00
        quiet = (clock >= start or clock < end) if overnight else (start <= clock < end)
        if not quiet:
            return None
        end_day = local.date() + timedelta(days=1) if overnight and clock >= start \
            else local.date()
        return datetime.combine(end_day, end, tzinfo=local.tzinfo)


def load_rules(conn: sa.Connection, tenant_id: str) -> AlertRules | None:
    row = conn.execute(sa.text(
        "select r.*, t.timezone from ops.alert_rules r join ops.tenants t using (tenant_id) "
        "where r.tenant_id = :t"), {"t": tenant_id}).mappings().first()
    if row is None:
        return None
    return AlertRules(
        tenant_id=tenant_id, timezone=row["timezone"],
        email_recipients=tuple(row["email_recipients"]),
        sms_recipients=tuple(row["sms_recipients"]),
        email_min_severity=row["email_min_severity"], sms_min_severity=row["sms_min_severity"],
        quiet_hours_start=row["quiet_hours_start"], quiet_hours_end=row["quiet_hours_end"],
        max_messages_per_hour=row["max_messages_per_hour"], stale_after=row["stale_after"],
        dashboard_url=row["dashboard_url"], recent_days=row["recent_days"])


def check_rules(rules: AlertRules) -> None:
    for severity in (rules.email_min_severity, rules.sms_min_severity):
        if severity not in SEVERITIES:
            raise InvalidAlertRules(f"severity must be one of {', '.join(SEVERITIES)}, "
                                    f"not {severity!r}")
    for phone in rules.sms_recipients:
        if not E164.fullmatch(phone):
            raise InvalidAlertRules(f"SMS recipient {phone!r} is not an E.164 number: + and "
                                    "the country code, no spaces (like +447700900123)")
    for address in rules.email_recipients:
        if not EMAIL_ADDRESS.fullmatch(address):
            raise InvalidAlertRules(f"email recipient {address!r} is not an email address")
    if rules.max_messages_per_hour < 1:
        raise InvalidAlertRules("the cap must allow at least 1 message per hour per "
                                f"recipient (got {rules.max_messages_per_hour})")
    if rules.recent_days < 1:
        raise InvalidAlertRules("recent days must be at least 1, the latest day itself "
                                f"(got {rules.recent_days})")
    if rules.stale_after <= timedelta(0):
        raise InvalidAlertRules(f"stale-after must be longer than zero (got {rules.stale_after})")


def save_rules(engine: Engine, rules: AlertRules) -> None:
    """Insert or replace a tenant's rules."""
    check_rules(rules)
    values = {
        "t": rules.tenant_id, "emails": list(rules.email_recipients),
        "phones": list(rules.sms_recipients), "email_sev": rules.email_min_severity,
        "sms_sev": rules.sms_min_severity, "qs": rules.quiet_hours_start,
        "qe": rules.quiet_hours_end, "cap": rules.max_messages_per_hour,
        "stale": rules.stale_after, "url": rules.dashboard_url, "recent": rules.recent_days}
    with engine.begin() as conn:
        conn.execute(sa.text("""
            insert into ops.alert_rules (tenant_id, email_recipients, sms_recipients,
                email_min_severity, sms_min_severity, quiet_hours_start, quiet_hours_end,
                max_messages_per_hour, stale_after, dashboard_url, recent_days)
            values (:t, :emails, :phones, :email_sev, :sms_sev, :qs, :qe, :cap, :stale, :url,
                    :recent)
            on conflict (tenant_id) do update set
                email_recipients = excluded.email_recipients,
                sms_recipients = excluded.sms_recipients,
                email_min_severity = excluded.email_min_severity,
                sms_min_severity = excluded.sms_min_severity,
                quiet_hours_start = excluded.quiet_hours_start,
                quiet_hours_end = excluded.quiet_hours_end,
                max_messages_per_hour = excluded.max_messages_per_hour,
                stale_after = excluded.stale_after, dashboard_url = excluded.dashboard_url,
                recent_days = excluded.recent_days
        """), values)
