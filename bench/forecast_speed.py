"""Forecast speed: 50 and 200 store series of two years, each backtested (3 folds of 28 days,
Prophet, MSTL, two baselines and the mean of Prophet and MSTL, bands calibrated on the folds) and
forecast 30 days, with 1 and with 2 worker processes.

Target: 200 series in under 60 s on 2 cores, and 2 workers at least 1.7x faster than 1.

    python bench/forecast_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import announce_machine, emit_json, print_table
from ml.forecasting import forecast_tenant


def synthetic_kpis(series: int, days: int = 730, seed: int = 0) -> pd.DataFrame:
    """Daily KPIs of ``series`` stores: weekly and yearly seasonality, growth, noise, and a
    closed weekday for a third of the stores."""
    rng = np.random.default_rng(seed)
    day = pd.date_range("2024-11-01", periods=days, freq="D")
    frames = []
    for s in range(series):
        weekly = rng.uniform(0.8, 1.4, 7)
        if s % 3 == 0:
            weekly[6] = 0.0
        level = rng.uniform(500, 5000)
        yearly = 1 + 0.2 * np.cos(2 * np.pi * (day.day_of_year - 350) / 365.25)
        revenue = level * weekly[day.day_of_week] * yearly * (1 + 0.1 * np.arange(days) / 365) \
            * rng.lognormal(0, 0.1, days)
        frames.append(pd.DataFrame({
            "store_id": f"S{s:03d}", "day": day.date, "net_revenue": revenue,
            "orders": np.round(revenue / 40), "is_closed_day": revenue == 0}))
    return pd.concat(frames, ignore_index=True)


def timed(kpis: pd.DataFrame, workers: int) -> float:
    started = time.perf_counter()
    results = forecast_tenant(kpis, "GB", horizon=30, folds=3, fold_days=28,
                              metrics=("net_revenue",), workers=workers)
    assert all(len(r.forecast) == 30 and r.backtests["fold"].nunique() == 3 for r in results)
    return time.perf_counter() - started


def main() -> None:
    announce_machine()
    timed(synthetic_kpis(2), 1)  # warm imports and the Stan binary
    rows, figures = [], {}
    for series in (50, 200):
        kpis = synthetic_kpis(series)
        one = timed(kpis, 1)
        two = timed(kpis, 2)
        rows.append([series, f"{one:.1f}", f"{series / one:.2f}", f"{two:.1f}",
                     f"{series / two:.2f}", f"{one / two:.2f}x"])
        figures[f"series_{series}_seconds_1_worker"] = round(one, 2)
        figures[f"series_{series}_seconds"] = round(two, 2)
        figures[f"speedup_2_workers_{series}"] = round(one / two, 2)
    print_table("Forecast + 3-fold backtest per series (Prophet, MSTL, seasonal naive, seasonal "
                "median, the mean of Prophet and MSTL), 2 years daily, 30-day horizon",
                ["series", "1 worker s", "series/s", "2 workers s", "series/s", "speedup"],
                rows)
    figures["speedup_2_workers"] = figures["speedup_2_workers_200"]
    emit_json(figures)


if __name__ == "__main__":
    main()
