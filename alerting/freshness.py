"""Stale data: a tenant whose sales stopped arriving for longer than its rules allow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DEFAULT_STALE_AFTER = timedelta(days=3)


@dataclass(frozen=True)
class StaleTenant:
    tenant_id: str
    last_arrival: datetime
    stale_after: timedelta

    @property
    def key(self) -> str:
        # one alert per silence: a new file ends it, the next silence gets a new key
        return f"stale:{self.last_arrival.isoformat()}"

    def describe(self, now: datetime) -> str:
        silent = now - self.last_arrival
        return (f"No new sales files for {self.tenant_id} since "
                f"{self.last_arrival:%Y-%m-%d %H:%M %Z} ({silent.days} days "
                f"{silent.seconds // 3600} h; the limit is {self.stale_after}).")


def stale_tenants(engine: Engine, now: datetime) -> list[StaleTenant]:
    """Tenants whose last sales file with rows (or onboarding, if none) is too old."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("""
            select tenants.tenant_id,
                   coalesce(max(files.loaded_at), tenants.created_at) as last_arrival,
                   coalesce(rules.stale_after, :default) as stale_after
            from ops.tenants as tenants
            left join raw.ingest_files as files
                on files.tenant_id = tenants.tenant_id and files.target = 'sales_lines'
               and files.status in ('loaded', 'superseded') and files.rows_loaded > 0
            left join ops.alert_rules as rules on rules.tenant_id = tenants.tenant_id
            group by tenants.tenant_id, tenants.created_at, rules.stale_after
        """), {"default": DEFAULT_STALE_AFTER}).all()
    return [StaleTenant(t, last, after) for t, last, after in rows if now - last > after]
