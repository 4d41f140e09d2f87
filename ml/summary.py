"""What a person wants to see of a forecast run at a glance: the tenant's headline series,
its next days, and how the models did in the backtests."""

from __future__ import annotations

import pandas as pd

from ml.forecasting import SeriesResult


def headline_series(kpis: pd.DataFrame, results: list[SeriesResult]) -> SeriesResult | None:
    """The net-revenue series of the tenant's largest store (by revenue over the history)."""
    if kpis.empty:
        return None
    largest = kpis.groupby("store_id")["net_revenue"].sum().idxmax()
    return next((r for r in results if r.store_id == largest and r.metric == "net_revenue"),
                None)


def next_days(result: SeriesResult, days: int = 14) -> pd.DataFrame:
    """The first ``days`` forecast days with their bands, rounded for reading."""
    head = result.forecast.head(days)
    return pd.DataFrame({
        "day": pd.to_datetime(head["ds"]).dt.strftime("%Y-%m-%d %a"),
        "forecast": head["yhat"].round(2),
        "80% band": [f"{lo:,.0f} to {hi:,.0f}" for lo, hi in
                     zip(head["yhat_lower_80"], head["yhat_upper_80"], strict=True)],
        "95% band": [f"{lo:,.0f} to {hi:,.0f}" for lo, hi in
                     zip(head["yhat_lower_95"], head["yhat_upper_95"], strict=True)],
        "closed": head["is_closed_day"].astype(bool),
    })


def backtest_summary(backtests: pd.DataFrame) -> pd.DataFrame:
    """Per metric and model: mean WAPE, MAPE and calibrated band coverage over the folds,
    best WAPE first."""
    if backtests.empty:
        return pd.DataFrame()
    columns = ["wape", "mape", "coverage_80", "coverage_95"]
    return (backtests.groupby(["metric", "model_name"])[columns].mean().round(3)
            .reset_index().sort_values(["metric", "wape"]).reset_index(drop=True))
