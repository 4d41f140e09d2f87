"""Reading marts and writing ml.* tables. Each write is one transaction per tenant."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from ml.forecasting import SeriesResult


def read_daily_kpis(conn: sa.Connection, tenant_id: str) -> pd.DataFrame:
    return pd.read_sql(sa.text(
        "select store_id, day, net_revenue, orders, avg_order_value, returns_amount, "
        "is_closed_day from marts.mart_daily_store_kpis where tenant_id = :t order by store_id, "
        "day"), conn, params={"t": tenant_id})


def write_forecasts(engine: sa.Engine, tenant_id: str, results: list[SeriesResult],
                    run_id: str) -> int:
    """Replace the tenant's forecasts and backtests atomically; returns forecast rows written."""
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
        conn.execute(sa.text("delete from ml.forecast_backtests where tenant_id = :t"),
                     {"t": tenant_id})
        if forecasts:
            pd.concat(forecasts).to_sql("forecasts", conn, schema="ml", if_exists="append",
                                        index=False, method="multi", chunksize=2000)
        if backtests:
            pd.concat(backtests).to_sql("forecast_backtests", conn, schema="ml",
                                        if_exists="append", index=False, method="multi",
                                        chunksize=2000)
    return sum(len(f) for f in forecasts)


def write_anomalies(engine: sa.Engine, tenant_id: str, anomalies: pd.DataFrame,
                    run_id: str) -> int:
    """Upsert by stable id: a rerun updates what it finds again and never duplicates."""
    if anomalies.empty:
        return 0
    rows = anomalies.assign(tenant_id=tenant_id, run_id=run_id)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    with engine.begin() as conn:
        conn.execute(sa.text("""
            insert into ml.anomalies (tenant_id, anomaly_id, store_id, day, kpi, detector,
                actual, expected, lower_bound, upper_bound, score, severity, explanation, run_id)
            values (:tenant_id, :anomaly_id, :store_id, :day, :kpi, :detector, :actual,
                :expected, :lower_bound, :upper_bound, :score, :severity, :explanation, :run_id)
            on conflict (tenant_id, anomaly_id) do update set
                actual = excluded.actual, expected = excluded.expected,
                lower_bound = excluded.lower_bound, upper_bound = excluded.upper_bound,
                score = excluded.score, severity = excluded.severity,
                explanation = excluded.explanation, run_id = excluded.run_id
        """), records)
    return len(records)
