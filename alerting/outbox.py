"""The outbox (``ops.alert_deliveries``): one row per alert x channel x recipient.

Rows are written first and sent later (``alerting.delivery``), so an alert survives a crash,
an SMTP outage or a Twilio 429: nothing is sent that is not in the outbox, and nothing in the
outbox is forgotten. The unique key (tenant, subject, channel, recipient) makes enqueueing
idempotent: a sensor tick that runs twice writes nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    rows: int
    alerts: int
    cursor: int


def enqueue_anomalies(engine: Engine, after_seq: int) -> Enqueued:
    """Outbox rows for anomalies numbered after ``after_seq``; returns the new cursor."""
    with engine.begin() as conn:
        anomalies = conn.execute(sa.text("""
            select alert_seq, tenant_id, anomaly_id, store_id, day, kpi, detector, actual,
                   expected, severity, explanation
            from ml.anomalies where alert_seq > :after order by alert_seq limit :limit
        """), {"after": after_seq, "limit": BATCH_LIMIT}).mappings().all()
        rules_by_tenant = {t: load_rules(conn, t) for t in {a["tenant_id"] for a in anomalies}}
        rows = []
        for anomaly in anomalies:
            rules = rules_by_tenant[anomaly["tenant_id"]]
            if rules is None:
                continue
            payload = {k: _plain(anomaly[k]) for k in (
                "store_id", "day", "kpi", "detector", "actual", "expected", "explanation")}
            for channel in ("email", "sms"):
                for recipient in rules.recipients(channel, anomaly["severity"]):
                    rows.append({"t": anomaly["tenant_id"], "key": anomaly["anomaly_id"],
                                 "channel": channel, "to": recipient, "kind": "anomaly",
                                 "severity": anomaly["severity"],
                                 "payload": payload})
        inserted = _insert(conn, rows)
    cursor = anomalies[-1]["alert_seq"] if anomalies else after_seq
    return Enqueued(rows=inserted, alerts=len(anomalies), cursor=cursor)


def enqueue_event(engine: Engine, tenant_id: str, kind: str, key: str, severity: str,
                  recipients: list[tuple[str, str]], payload: dict[str, Any]) -> int:
    """Outbox rows for a platform event (run failure, failed check, stale data)."""
    rows = [{"t": tenant_id, "key": key, "channel": channel, "to": recipient, "kind": kind,
             "severity": severity, "payload": _jsonable(payload)}
            for channel, recipient in recipients]
    with engine.begin() as conn:
        return _insert(conn, rows)


_DELIVERIES = sa.table(
    "alert_deliveries", sa.column("delivery_id"), sa.column("tenant_id"),
    sa.column("anomaly_id"), sa.column("channel"), sa.column("recipient"), sa.column("kind"),
    sa.column("severity"), sa.column("payload", JSONB), schema="ops")


def _insert(conn: sa.Connection, rows: list[dict]) -> int:
    """One statement for the whole batch; the rows it returns are the ones that were new."""
    if not rows:
        return 0
    statement = (pg_insert(_DELIVERIES)
                 .values([{"tenant_id": r["t"], "anomaly_id": r["key"], "channel": r["channel"],
                           "recipient": r["to"], "kind": r["kind"], "severity": r["severity"],
                           "payload": r["payload"]} for r in rows])
                 .on_conflict_do_nothing(
                     index_elements=["tenant_id", "anomaly_id", "channel", "recipient"])
                 .returning(_DELIVERIES.c.delivery_id))
    return len(conn.execute(statement).all())


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(payload, default=str))


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
