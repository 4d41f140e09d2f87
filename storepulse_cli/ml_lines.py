"""The forecasts' and anomaly scan's lines of `storepulse status` (and `storepulse forecast`):
how far they reach, and, where they stop at or short of the marts' last day, why, read from
the marts now with the ML assets' own rule and words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # annotations only: `storepulse --help` does not pay for SQLAlchemy
    from sqlalchemy.engine import Engine

    from ml.day_in_progress import LastDay
    from storepulse.status import TenantStatus


def echo_ml_lines(engine: Engine, status: TenantStatus) -> None:
    from ml.forecasting import MIN_HISTORY_DAYS

    forecasts = status.forecasts_line()
    days = status.longest_store_days
    if status.forecasts_made is None and days is not None and days < MIN_HISTORY_DAYS:
        forecasts = (f"none yet: its stores have at most {days} day(s) of sales, and a store "
                     f"is forecast from {MIN_HISTORY_DAYS}")
    click.echo(f"  forecasts   {forecasts}")
    last_day = _last_day_now(engine, status.tenant_id) \
        if status.forecasts_start_on_last_day or status.scan_stops_short else None
    if status.forecasts_start_on_last_day:
        from ml.forecasting import describe_last_day

        click.echo(f"  last day    {describe_last_day(last_day)}")
    click.echo(f"  anomalies   {status.anomalies_line()}")
    if status.scan_stops_short:
        in_progress = last_day.in_progress if last_day is not None else None
        click.echo("  held back   " + (
            in_progress.describe() if in_progress is not None else
            f"no day looks cut short now: the next store_anomalies run judges through "
            f"{status.marts_through}"))


def _last_day_now(engine: Engine, tenant_id: str) -> LastDay | None:
    """The tenant's last day as the ML assets read it (``ml.day_in_progress.LastDay``)."""
    from ml.day_in_progress import read_last_day
    from ml.tables import read_last_sale_times
    from storepulse.tenants import get_tenant

    timezone = get_tenant(engine, tenant_id).timezone
    with engine.connect() as conn:
        return read_last_day(read_last_sale_times(conn, tenant_id, timezone))
