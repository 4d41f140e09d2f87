"""The outbox (``ops.alert_deliveries``): one row per alert x channel x recipient.

Rows are written first and sent later (``alerting.delivery``), so an alert survives a crash,
an SMTP outage or a Twilio 429: nothing is sent that is not in the outbox, and nothing in the
outbox is forgotten. The unique key (tenant, subject, channel, recipient) makes enqueueing
idempotent: a sensor tick that runs twice writes nothing twice.

Only news is sent. An anomaly on a day more than the tenant's ``recent_days`` before the
latest day its anomaly scan judged (the first load of two years of exports; a weekly rescan
that finds something on an old day) gets its rows written as ``suppressed``, with the reason:
it stays in ``ml.anomalies`` and the dashboards, and nobody is paged about last spring.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from alerting.rules import load_rules

PLATFORM_TENANT = "_platform"  # run failures and check failures not tied to one tenant
BATCH_LIMIT = 5000


@dataclass(frozen=True)
class Enqueued:
    rows: int  # new outbox rows to send
    alerts: int  # anomalies read
    cursor: int
    suppressed: int = 0  # new outbox rows written as suppressed: anomalies on older days

    def describe(self) -> str:
        history = (f", {self.suppressed} not sent (anomalies on days before the tenant's "
                   "recent days)" if self.suppressed else "")
        return f"{self.alerts} new anomalies, {self.rows} deliveries queued{history}"


def enqueue_anomalies(engine: Engine, after_seq: int) -> Enqueued:
    """Outbox rows for anomalies numbered after ``after_seq``; returns the new cursor."""
    with engine.begin() as conn:
        anomalies = conn.execute(sa.text("""
            select alert_seq, tenant_id, anomaly_id, store_id, day, kpi, detector, actual,
                   expected, severity, explanation
            from ml.anomalies where alert_seq > :after order by alert_seq limit :limit
        """), {"after": after_seq, "limit": BATCH_LIMIT}).mappings().all()
        tenants = sorted({a["tenant_id"] for a in anomalies})
        rules_by_tenant = {t: load_rules(conn, t) for t in tenants}
        latest_by_tenant = latest_judged_days(conn, tenants)
        rows = []
        for anomaly in anomalies:
            rules = rules_by_tenant[anomaly["tenant_id"]]
            if rules is None:
                continue
            history = _history_reason(anomaly["day"], latest_by_tenant[anomaly["tenant_id"]],
                                      rules.recent_days)
            payload = {k: _plain(anomaly[k]) for k in (
                "store_id", "day", "kpi", "detector", "actual", "expected", "explanation")}
            for channel in ("email", "sms"):
                for recipient in rules.recipients(channel, anomaly["severity"]):
                    rows.append({"t": anomaly["tenant_id"], "key": anomaly["anomaly_id"],
                                 "channel": channel, "to": recipient, "kind": "anomaly",
                                 "severity": anomaly["severity"], "payload": payload,
                                 "status": "suppressed" if history else "pending",
                                 "last_error": history})
        inserted = _insert(conn, rows)
    cursor = anomalies[-1]["alert_seq"] if anomalies else after_seq
    return Enqueued(rows=inserted.get("pending", 0), alerts=len(anomalies), cursor=cursor,
                    suppressed=inserted.get("suppressed", 0))


def latest_judged_days(conn: sa.Connection, tenants: list[str]) -> dict[str, date | None]:
    """Per tenant, the latest day its anomaly scan judged (recorded with the anomalies it
    found, in one transaction), else its latest anomaly's day."""
    if not tenants:
        return {}
    return dict(conn.execute(sa.text("""
        select t.tenant_id, greatest(s.scanned_through, a.latest_day)
        from unnest(cast(:tenants as text[])) as t (tenant_id)
        left join ml.anomaly_scans as s on s.tenant_id = t.tenant_id
        left join lateral (select max(day) as latest_day from ml.anomalies as x
                           where x.tenant_id = t.tenant_id) as a on true
    """), {"tenants": tenants}).all())


def _history_reason(day: date, latest: date | None, recent_days: int) -> str | None:
    """Why an anomaly on ``day`` is not sent, or None when it is news."""
    if latest is None or (latest - day).days < recent_days:
        return None
    return (f"not sent: {day} is {(latest - day).days} days before the latest day judged "
            f"({latest}); alerts cover the last {recent_days} days "
            "(storepulse alerts set --recent-days)")


def enqueue_event(engine: Engine, tenant_id: str, kind: str, key: str, severity: str,
                  recipients: list[tuple[str, str]], payload: dict[str, Any]) -> int:
    """Outbox rows for a platform event (run failure, failed check, stale data)."""
    rows = [{"t": tenant_id, "key": key, "channel": channel, "to": recipient, "kind": kind,
             "severity": severity, "payload": _jsonable(payload)}
            for channel, recipient in recipients]
    with engine.begin() as conn:
        return _insert(conn, rows).get("pending", 0)


_DELIVERIES = sa.table(
    "alert_deliveries", sa.column("delivery_id"), sa.column("tenant_id"),
    sa.column("anomaly_id"), sa.column("channel"), sa.column("recipient"), sa.column("kind"),
    sa.column("severity"), sa.column("payload", JSONB), sa.column("status"),
    sa.column("last_error"), schema="ops")


def _insert(conn: sa.Connection, rows: list[dict]) -> dict[str, int]:
    """One statement for the whole batch; counts the new rows (the ones it returns) by
    status."""
    if not rows:
        return {}
    statement = (pg_insert(_DELIVERIES)
                 .values([{"tenant_id": r["t"], "anomaly_id": r["key"], "channel": r["channel"],
                           "recipient": r["to"], "kind": r["kind"], "severity": r["severity"],
                           "payload": r["payload"], "status": r.get("status", "pending"),
                           "last_error": r.get("last_error")} for r in rows])
                 .on_conflict_do_nothing(
                     index_elements=["tenant_id", "anomaly_id", "channel", "recipient"])
                 .returning(_DELIVERIES.c.status))
    return dict(Counter(status for (status,) in conn.execute(statement).all()))


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(payload, default=str))


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
