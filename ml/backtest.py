"""Honest evaluation: rolling-origin backtests and champion selection.

Each fold trains only on days before its cutoff and is scored on the next ``horizon`` days,
exactly like a forecast made on that day. Folds end at the last day of the history and step
back ``horizon`` days each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml import metrics
from ml.models import build_model

METRIC_NAMES = ("mape", "wape", "smape", "mase", "coverage_80", "coverage_95")


@dataclass(frozen=True)
class Champion:
    model_name: str
    reason: str


def fold_cutoffs(history: pd.DataFrame, folds: int, horizon: int) -> list[int]:
    """Row positions where each fold's test window starts, oldest first."""
    n = len(history)
    starts = [n - horizon * k for k in range(folds, 0, -1)]
    return [s for s in starts if s >= max(2 * horizon, 56)]


def score(actual: np.ndarray, forecast: pd.DataFrame, train_y: np.ndarray) -> dict:
    predicted = forecast["yhat"].to_numpy(float)
    return {
        "mape": metrics.mape(actual, predicted),
        "wape": metrics.wape(actual, predicted),
        "smape": metrics.smape(actual, predicted),
        "mase": metrics.mase(actual, predicted, train_y),
        "coverage_80": metrics.coverage(actual, forecast["yhat_lower_80"].to_numpy(float),
                                        forecast["yhat_upper_80"].to_numpy(float)),
        "coverage_95": metrics.coverage(actual, forecast["yhat_lower_95"].to_numpy(float),
                                        forecast["yhat_upper_95"].to_numpy(float)),
    }


def backtest(history: pd.DataFrame, factories: dict[str, Callable], folds: int = 3,
             horizon: int = 28, warm_starts: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per model and fold with the cutoff date and every error measure.

    Each fold's fit starts from the previous fold's parameters of the same model, which were
    learnt on an earlier, shorter history: no test day leaks in, only the optimizer starts
    closer. ``warm_starts`` (model name -> params) seeds the first fold and is left holding
    the latest fold's, for the final fit on the full history.
    """
    history = history.reset_index(drop=True)
    warm = warm_starts if warm_starts is not None else {}
    rows = []
    for fold, start in enumerate(fold_cutoffs(history, folds, horizon), start=1):
        train, test = history.iloc[:start], history.iloc[start:start + horizon]
        actual = test["y"].to_numpy(float)
        for name, factory in factories.items():
            model = build_model(factory, warm.get(name)).fit(train)
            if model.params:
                warm[name] = model.params
            forecast = model.predict(test["ds"])
            rows.append({"model_name": name, "fold": fold,
                         "cutoff": pd.Timestamp(test["ds"].iloc[0]).date(),
                         "horizon_days": len(test),
                         **score(actual, forecast, train["y"].to_numpy(float))})
    return pd.DataFrame(rows)


def choose_champion(results: pd.DataFrame) -> Champion:
    """The model with the lowest mean backtest WAPE wins; the reason names the runner-up."""
    if results.empty:
        return Champion("seasonal_naive", "too little history to backtest: seasonal naive used")
    summary = results.groupby("model_name")["wape"].mean().dropna().sort_values()
    if summary.empty:
        return Champion("seasonal_naive", "no sales in the backtest window: seasonal naive used")
    winner = summary.index[0]
    others = ", ".join(f"{name} {value:.1%}" for name, value in summary.iloc[1:].items())
    folds = results["fold"].nunique()
    horizon = int(results["horizon_days"].max())
    return Champion(winner, f"lowest backtest WAPE {summary.iloc[0]:.1%} "
                            f"(vs {others}) over {folds} folds of {horizon} days")
