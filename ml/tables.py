"""Reading marts and writing ml.* tables. Each write is one transaction per tenant."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from ml.backtest import Champion
from ml.day_in_progress import REFERENCE_WEEKS
from ml.forecasting import ModelState, SeriesResult


def read_daily_kpis(conn: sa.Connection, tenant_id: str, since: date | None = None
                    ) -> pd.DataFrame:
    """The tenant's daily store KPIs (from ``since`` on, when given)."""
    return pd.read_sql(sa.text(
        "select store_id, day, net_revenue, orders, avg_order_value, returns_amount, "
        "is_closed_day from marts.mart_daily_store_kpis where tenant_id = :t "
        "and (cast(:since as date) is null or day >= :since) order by store_id, day"),
        conn, params={"t": tenant_id, "since": since})


def read_last_sale_times(conn: sa.Connection, tenant_id: str, timezone: str,
                         weeks: int = REFERENCE_WEEKS) -> pd.DataFrame:
    """The local time of the tenant's latest order (across its stores) on its last day and
    on the same weekday of the ``weeks`` weeks before, and each of those days' orders after
    the last day's latest time: what ``day_in_progress`` judges by."""
    last_day = conn.execute(sa.text(
        "select max(order_date) from marts.fct_orders where tenant_id = :t"),
        {"t": tenant_id}).scalar()
    if last_day is None:
        return pd.DataFrame({"day": [], "last_sale": [], "orders_after": []})
    # Only the days compared, each found through the (tenant_id, order_date) index.
    days = [last_day - timedelta(weeks=w) for w in range(weeks + 1)]
    return pd.read_sql(sa.text("""
        with order_times as (
            select order_date as day, (ordered_at at time zone :tz)::time as at
            from marts.fct_orders where tenant_id = :t and order_date = any(:days)
        ), last_day as (
            select max(at) as last_sale from order_times where day = :last_day
        )
        select day, max(at) as last_sale,
               count(*) filter (where at > (select last_sale from last_day)) as orders_after
        from order_times group by day order by day"""),
        conn, params={"t": tenant_id, "tz": timezone, "days": days, "last_day": last_day})


def recent_champions(conn: sa.Connection, tenant_id: str, max_age_days: int
                     ) -> dict[tuple[str, str], Champion]:
    """Champions whose backtest is at most ``max_age_days`` old, to refit without
    re-backtesting; the reason says which backtest chose them."""
    if max_age_days <= 0:
        return {}
    rows = conn.execute(sa.text("""
        with latest_backtests as (
            select store_id, metric, max(created_at) as backtested_at
            from ml.forecast_backtests where tenant_id = :t group by store_id, metric
        )
        select distinct on (forecasts.store_id, forecasts.metric) forecasts.store_id,
               forecasts.metric, forecasts.model_name, forecasts.champion_reason,
               latest_backtests.backtested_at
        from ml.forecasts as forecasts
        join latest_backtests using (store_id, metric)
        where forecasts.tenant_id = :t
          and latest_backtests.backtested_at > now() - make_interval(days => :days)
        order by forecasts.store_id, forecasts.metric
    """), {"t": tenant_id, "days": max_age_days}).all()
    champions = {}
    for store_id, metric, model_name, reason, backtested_at in rows:
        base = reason.split(" [backtest of ")[0]
        champions[(store_id, metric)] = Champion(
            model_name, f"{base} [backtest of {backtested_at:%Y-%m-%d}, reused]")
    return champions


def model_states(conn: sa.Connection, tenant_id: str) -> dict[tuple[str, str], ModelState]:
    """Each series' champion as last fitted, to warm-start today's refit."""
    rows = conn.execute(sa.text(
        "select store_id, metric, model_name, model_version, params, band_edges "
        "from ml.model_states where tenant_id = :t"), {"t": tenant_id}).all()
    return {(r.store_id, r.metric): ModelState(r.model_name, r.model_version, r.params,
                                               _edges(r.band_edges))
            for r in rows}


def _edges(stored: dict | None) -> dict[float, tuple[float, float]] | None:
    """JSON keeps the levels as text: back to {0.8: (low, high), ...}."""
    return {float(level): tuple(edge) for level, edge in stored.items()} if stored else None


_MODEL_STATE_INSERT = sa.text("""
    insert into ml.model_states (tenant_id, store_id, metric, model_name, model_version,
                                 params, band_edges, fitted_through, run_id)
    values (:t, :store_id, :metric, :model_name, :model_version, :params, :band_edges,
            :fitted_through, :run_id)
""").bindparams(sa.bindparam("params", type_=JSONB), sa.bindparam("band_edges", type_=JSONB))


def write_forecasts(engine: sa.Engine, tenant_id: str, results: list[SeriesResult],
                    run_id: str) -> int:
    """Replace the tenant's forecasts and model states atomically, and the backtests of the
    series that were backtested in this run (reused champions keep theirs); returns forecast
    rows written."""
    forecasts, backtests = [], []
    for r in results:
        frame = r.forecast.assign(tenant_id=tenant_id, store_id=r.store_id, metric=r.metric,
                                  model_name=r.champion.model_name, model_version=r.model_version,
                                  champion_reason=r.champion.reason, run_id=run_id)
        frame["ds"] = pd.to_datetime(frame["ds"]).dt.date
        forecasts.append(frame)
        if not r.backtests.empty:
            backtests.append(r.backtests.assign(tenant_id=tenant_id, store_id=r.store_id,
                                                metric=r.metric, run_id=run_id))
    with engine.begin() as conn:
        conn.execute(sa.text("delete from ml.forecasts where tenant_id = :t"), {"t": tenant_id})
        backtested = [{"t": tenant_id, "s": r.store_id, "m": r.metric}
                      for r in results if not r.backtests.empty]
        if backtested:
            conn.execute(sa.text("delete from ml.forecast_backtests where tenant_id = :t and "
                                 "store_id = :s and metric = :m"), backtested)
        if forecasts:
            _copy_frame(conn, pd.concat(forecasts), "ml.forecasts")
        if backtests:
            _copy_frame(conn, pd.concat(backtests), "ml.forecast_backtests")
        conn.execute(sa.text("delete from ml.model_states where tenant_id = :t"),
                     {"t": tenant_id})
        states = [{"t": tenant_id, "store_id": r.store_id, "metric": r.metric,
                   "model_name": r.champion.model_name, "model_version": r.model_version,
                   "params": r.params, "fitted_through": _fitted_through(r), "run_id": run_id,
                   "band_edges": ({str(level): list(edge) for level, edge in r.band_edges.items()}
                                  if r.band_edges else None)}
                  for r in results if r.params or r.band_edges]
        if states:
            conn.execute(_MODEL_STATE_INSERT, states)
    return sum(len(f) for f in forecasts)


def _copy_frame(conn: sa.Connection, frame: pd.DataFrame, table: str) -> None:
    """COPY a frame into ``table`` (columns by name) inside the connection's transaction.
    (pandas' to_sql spent half a second per tenant compiling a multi-row INSERT.)"""
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"copy {table} ({', '.join(frame.columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _fitted_through(result: SeriesResult):
    """The day before the first forecast day: the last day the champion was fitted on."""
    return (pd.Timestamp(result.forecast["ds"].min()) - pd.Timedelta(days=1)).date()


def write_anomalies(engine: sa.Engine, tenant_id: str, anomalies: pd.DataFrame,
                    run_id: str, scanned_through: date | None = None,
                    full_scan: bool = False) -> int:
    """Upsert by stable id: a rerun updates what it finds again and never duplicates.

    With ``scanned_through``, the scan's reach is recorded in the same transaction, so
    whoever sees these anomalies (the alert sensor judging which are recent) sees how far
    the scan that found them looked."""
    rows = anomalies.assign(tenant_id=tenant_id, run_id=run_id)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    with engine.begin() as conn:
        if records:
            lock_anomaly_writes(conn)
            conn.execute(sa.text("""
                insert into ml.anomalies (tenant_id, anomaly_id, store_id, day, kpi, detector,
                    actual, expected, lower_bound, upper_bound, score, severity, explanation,
                    run_id)
                values (:tenant_id, :anomaly_id, :store_id, :day, :kpi, :detector, :actual,
                    :expected, :lower_bound, :upper_bound, :score, :severity, :explanation,
                    :run_id)
                on conflict (tenant_id, anomaly_id) do update set
                    actual = excluded.actual, expected = excluded.expected,
                    lower_bound = excluded.lower_bound, upper_bound = excluded.upper_bound,
                    score = excluded.score, severity = excluded.severity,
                    explanation = excluded.explanation, run_id = excluded.run_id
            """), records)
        if scanned_through is not None:
            _record_anomaly_scan(conn, tenant_id, scanned_through, full_scan)
    return len(records)


def lock_anomaly_writes(conn: sa.Connection) -> None:
    """One writer of ml.anomalies at a time, until its transaction ends. The alert sensor's
    cursor is ``alert_seq``, which a row takes when inserted, not when committed: two
    tenants' runs writing at once could commit out of order, the sensor could pass the later
    number while the earlier one is still uncommitted, and that tenant's anomalies would never
    be alerted. Serialized, every committed row's number is below any still to come.
    (Readers are not blocked.)"""
    conn.execute(sa.text("lock table ml.anomalies in share row exclusive mode"))


def last_anomaly_scan(conn: sa.Connection, tenant_id: str) -> tuple | None:
    """(scanned_through, full_scan_at) of the tenant's last anomaly scan, if any."""
    return conn.execute(sa.text(
        "select scanned_through, full_scan_at from ml.anomaly_scans where tenant_id = :t"),
        {"t": tenant_id}).first()


def _record_anomaly_scan(conn: sa.Connection, tenant_id: str, scanned_through: date,
                         full: bool) -> None:
    conn.execute(sa.text("""
        insert into ml.anomaly_scans (tenant_id, scanned_through, full_scan_at)
        values (:t, :through, now())
        on conflict (tenant_id) do update set
            scanned_through = excluded.scanned_through, last_scan_at = now(),
            full_scan_at = case when :full then now() else ml.anomaly_scans.full_scan_at end
    """), {"t": tenant_id, "through": scanned_through, "full": full})
