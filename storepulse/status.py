"""`storepulse status`: each tenant's state at a glance, straight from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class TenantStatus:
    tenant_id: str
    last_file: str | None  # the newest file loaded (or rejected), and when
    last_file_at: datetime | None
    last_file_quarantined: int  # rows of the last file that went to raw.quarantine
    rejected_files: int  # current rejections (a later good load of the name clears none)
    held_files: int  # batches a failed blocking check keeps out of the marts
    awaiting_gate: int  # sales files loaded that no gate has judged yet (not in the marts)
    last_gate: str | None  # "passed" / "failed" / None: the raw suite's latest result
    marts_through: date | None  # the last day in the daily KPI mart
    forecasts_made: datetime | None
    forecasts_from: date | None
    anomalies_through: date | None  # the last day the anomaly scan judged
    anomalies_scanned: datetime | None
    alerts_pending: int
    alert_recipients: int  # email and SMS recipients in its alert rules (0: alerts reach nobody)
    # Deliveries queued in the last week that will not be sent: refused for good, out of
    # retries, or for a channel the deployment has no settings for; and the latest reason
    alerts_undelivered: int
    last_undelivered: str | None
    # Deliveries of the last week written as suppressed: anomalies on days before the
    # tenant's recent days (history, not news), never sent
    alerts_suppressed: int = 0
    longest_store_days: int | None = None  # the most days of sales any of its stores has

    @property
    def forecasts_start_on_last_day(self) -> bool:
        """The forecasts start on the marts' last day: it was forecast, not learned from."""
        return self.forecasts_from is not None and self.forecasts_from == self.marts_through

    @property
    def scan_stops_short(self) -> bool:
        """The anomaly scan has not judged the marts' last day."""
        return (self.anomalies_through is not None and self.marts_through is not None
                and self.marts_through > self.anomalies_through)

    def forecasts_line(self) -> str:
        """When the forecasts were made, the day they start on, and why that is a day the
        marts already hold."""
        if self.forecasts_made is None or self.forecasts_from is None:
            return "never made"
        line = f"made {self.forecasts_made:%Y-%m-%d %H:%M}, from {self.forecasts_from}"
        if self.marts_through is None or self.forecasts_from > self.marts_through:
            return line
        if self.forecasts_start_on_last_day:
            return line + (f"; {self.marts_through}, the marts' last day, is forecast, not "
                           "learned from (the `last day` line says why)")
        return line + f"; the marts reach {self.marts_through}: no forecast run since"

    def anomalies_line(self) -> str:
        """How far the anomaly scan reaches, and why not to the marts' last day."""
        if self.anomalies_through is None:
            return "never judged"
        line = (f"judged through {self.anomalies_through} "
                f"(scan {self.anomalies_scanned:%Y-%m-%d %H:%M})")
        if self.scan_stops_short:
            line += (f"; the marts reach {self.marts_through} (the `held back` line says "
                     "why)")
        return line


_STATUS = """
with files as (
    select distinct on (tenant_id) tenant_id, file_name, loaded_at, rows_quarantined
    from raw.ingest_files where status <> 'duplicate' order by tenant_id, loaded_at desc
), counts as (
    select tenant_id,
           count(*) filter (where status = 'rejected') as rejected,
           count(*) filter (where status = 'loaded' and held_at is not null) as held,
           count(*) filter (where status = 'loaded' and target = 'sales_lines'
                            and held_at is null and published_at is null) as awaiting
    from raw.ingest_files group by tenant_id
), gate as (
    select distinct on (tenant_id) tenant_id, run_id from ops.quality_results
    where suite = 'raw_sales_lines' order by tenant_id, checked_at desc
), gate_result as (
    select g.tenant_id, bool_and(q.success or q.severity <> 'error') as passed
    from gate as g join ops.quality_results as q
        on q.run_id = g.run_id and q.tenant_id = g.tenant_id and q.suite = 'raw_sales_lines'
    group by g.tenant_id
), alerts as (
    select tenant_id, count(*) filter (where status = 'pending') as pending,
           count(*) filter (where status in ('failed', 'not_configured')) as undelivered,
           count(*) filter (where status = 'suppressed') as suppressed
    from ops.alert_deliveries
    where status = 'pending' or created_at > now() - interval '7 days'
    group by tenant_id
), last_undelivered as (
    select distinct on (tenant_id) tenant_id,
           channel || ' to ' || recipient || ': ' || last_error as reason
    from ops.alert_deliveries
    where status in ('failed', 'not_configured') and created_at > now() - interval '7 days'
    order by tenant_id, created_at desc, delivery_id desc
), recipients as (
    select tenant_id,
           cardinality(email_recipients) + cardinality(sms_recipients) as recipients
    from ops.alert_rules
)
select t.tenant_id, files.file_name, files.loaded_at,
       coalesce(files.rows_quarantined, 0) as quarantined,
       coalesce(counts.rejected, 0) as rejected,
       coalesce(counts.held, 0) as held, coalesce(counts.awaiting, 0) as awaiting,
       case gate_result.passed when true then 'passed' when false then 'failed' end as gate,
       coalesce(alerts.pending, 0) as pending, coalesce(recipients.recipients, 0) as recipients,
       coalesce(alerts.undelivered, 0) as undelivered, last_undelivered.reason,
       coalesce(alerts.suppressed, 0) as suppressed
from ops.tenants as t
left join files using (tenant_id)
left join counts using (tenant_id)
left join gate_result using (tenant_id)
left join alerts using (tenant_id)
left join recipients using (tenant_id)
left join last_undelivered using (tenant_id)
order by t.tenant_id
"""


def tenant_status(engine: Engine) -> list[TenantStatus]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_STATUS)).all()
        marts = _per_tenant(conn, "marts.mart_daily_store_kpis", """
            select tenant_id, max(last_day), max(days)
            from (select tenant_id, store_id, max(day) as last_day, count(*) as days
                  from marts.mart_daily_store_kpis group by tenant_id, store_id) as stores
            group by tenant_id""")
        forecasts = _per_tenant(conn, "ml.forecasts",
                                "select tenant_id, max(created_at), min(ds) from ml.forecasts "
                                "group by tenant_id")
        scans = _per_tenant(conn, "ml.anomaly_scans",
                            "select tenant_id, scanned_through, last_scan_at "
                            "from ml.anomaly_scans")
    return [TenantStatus(r.tenant_id, r.file_name, r.loaded_at, r.quarantined, r.rejected,
                         r.held, r.awaiting, r.gate,
                         marts.get(r.tenant_id, (None, None))[0],
                         *forecasts.get(r.tenant_id, (None, None)),
                         *scans.get(r.tenant_id, (None, None)), r.pending, r.recipients,
                         r.undelivered, r.reason, r.suppressed,
                         longest_store_days=marts.get(r.tenant_id, (None, None))[1])
            for r in rows]


def _per_tenant(conn: sa.Connection, table: str, sql: str) -> dict[str, tuple]:
    """Per tenant, from a table dbt or the ML create (absent until their first run)."""
    if conn.execute(sa.text("select to_regclass(:t)"), {"t": table}).scalar() is None:
        return {}
    return {row[0]: tuple(row[1:]) for row in conn.execute(sa.text(sql))}
