"""Honest evaluation: rolling-origin backtests and champion selection.

Each fold trains only on days before its cutoff and is scored on the next ``horizon`` days,
exactly like a forecast made on that day. Folds end at the last day of the history and step
back ``horizon`` days each.

Besides the fitted models, the backtest scores the *combination* (the mean of Prophet's and
MSTL's forecasts, day by day) from the members' own fold forecasts: combinations win most
forecasting competitions, and this way it is judged on the same folds at no extra fit. The
members are fixed (``COMBINED``), not picked by their scores, so no fold's result leaks into
its choice.

The combination is the champion unless one single model beat it clearly in every fold
(``choose_champion``): on 250 generated store series that rule forecast the held-out month
better than taking the lowest mean backtest WAPE (BENCHMARKS.md, "Forecast and anomaly
quality").

Every model's 80% and 95% bands are calibrated on its backtest errors (``ml.intervals``);
the coverage reported for a fold uses a band calibrated on the other folds only. With two
folds or more, the models' own bands are therefore never looked at and not computed; a fold
whose other folds hold too few errors to calibrate on reports no coverage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml import intervals, metrics
from ml.models import FORECAST_COLUMNS, build_model

METRIC_NAMES = ("mape", "wape", "smape", "mase", "coverage_80", "coverage_95")
COMBINATION = "combination_mean"
COMBINED = ("prophet", "mstl")
# A single model replaces the combination as champion only when its WAPE is lower than the
# combination's by more than this share in every fold: three folds of 28 days cannot tell
# models apart more finely, and picking on smaller differences lost accuracy on held-out days.
SINGLE_MODEL_MARGIN = 0.05


@dataclass(frozen=True)
class Champion:
    model_name: str
    reason: str


@dataclass
class Backtest:
    scores: pd.DataFrame  # one row per model and fold: every error measure
    daily: pd.DataFrame  # one row per model, fold and day: actual, yhat, bands, closed
    floor: float  # the MAPE floor, and the least level a band is scaled by

    def band_edges(self, model_name: str) -> dict[float, tuple[float, float]] | None:
        """The calibrated band for forecasts of ``model_name``, from all its folds' errors."""
        rows = self.daily[self.daily["model_name"] == model_name]
        return intervals.band_edges(intervals.scaled_errors(rows, self.floor)) \
            if len(rows) else None


def fold_cutoffs(history: pd.DataFrame, folds: int, horizon: int) -> list[int]:
    """Row positions where each fold's test window starts, oldest first."""
    n = len(history)
    starts = [n - horizon * k for k in range(folds, 0, -1)]
    return [s for s in starts if s >= max(2 * horizon, 56)]


def score(actual: np.ndarray, forecast: pd.DataFrame, train_y: np.ndarray,
          floor: float = 0.0) -> dict:
    predicted = forecast["yhat"].to_numpy(float)
    return {
        "mape": metrics.mape(actual, predicted, floor),
        "wape": metrics.wape(actual, predicted),
        "smape": metrics.smape(actual, predicted),
        "mase": metrics.mase(actual, predicted, train_y),
        "coverage_80": metrics.coverage(actual, forecast["yhat_lower_80"].to_numpy(float),
                                        forecast["yhat_upper_80"].to_numpy(float)),
        "coverage_95": metrics.coverage(actual, forecast["yhat_lower_95"].to_numpy(float),
                                        forecast["yhat_upper_95"].to_numpy(float)),
    }


def run_backtest(history: pd.DataFrame, factories: dict[str, Callable], folds: int = 3,
                 horizon: int = 28, warm_starts: dict[str, dict] | None = None) -> Backtest:
    """Every model on every fold, the combination, and calibrated coverage.

    Each fold's fit starts from the previous fold's parameters of the same model, which were
    learnt on an earlier, shorter history: no test day leaks in, only the optimizer starts
    closer. ``warm_starts`` (model name -> params) seeds the first fold and is left holding
    the latest fold's, for the final fit on the full history.
    """
    history = history.reset_index(drop=True)
    floor = metrics.mape_floor(history["y"].to_numpy(float), history["closed"].to_numpy(bool))
    warm = warm_starts if warm_starts is not None else {}
    rows, days = [], []
    combined = [name for name in COMBINED if name in factories]
    cutoffs = fold_cutoffs(history, folds, horizon)
    own_bands = len(cutoffs) < 2  # one fold: nothing else to calibrate its band on
    for fold, start in enumerate(cutoffs, start=1):
        train, test = history.iloc[:start], history.iloc[start:start + horizon]
        actual = test["y"].to_numpy(float)
        forecasts = {}
        for name, factory in factories.items():
            model = build_model(factory, warm.get(name)).fit(train)
            if model.params:
                warm[name] = model.params
            forecasts[name] = model.predict(test["ds"], bands=own_bands)
        if len(combined) >= 2:
            forecasts[COMBINATION] = combine([forecasts[name] for name in combined])
        for name, forecast in forecasts.items():
            rows.append({"model_name": name, "fold": fold,
                         "cutoff": pd.Timestamp(test["ds"].iloc[0]).date(),
                         "horizon_days": len(test),
                         **score(actual, forecast, train["y"].to_numpy(float), floor)})
            days.append(pd.DataFrame({
                "model_name": name, "fold": fold, "ds": test["ds"].to_numpy(),
                "actual": actual, "closed": test["closed"].to_numpy(bool),
                "predicted_closed": forecast["is_closed_day"].to_numpy(bool),
                **{column: forecast[column].to_numpy(float)
                   for column in ("yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95",
                                  "yhat_upper_95")}}))
    scores = pd.DataFrame(rows)
    daily = pd.concat(days, ignore_index=True) if days else pd.DataFrame()
    if not scores.empty:
        _calibrated_coverage(scores, daily, floor)
    return Backtest(scores, daily, floor)


def backtest(history: pd.DataFrame, factories: dict[str, Callable], folds: int = 3,
             horizon: int = 28, warm_starts: dict[str, dict] | None = None) -> pd.DataFrame:
    """The scores of :func:`run_backtest`: one row per model and fold."""
    return run_backtest(history, factories, folds, horizon, warm_starts).scores


def combine(forecasts: list[pd.DataFrame]) -> pd.DataFrame:
    """The day-by-day mean of several forecasts of the same days (bands: the mean of theirs,
    until calibrated); closed where more than half of them say closed."""
    closed = np.column_stack([f["is_closed_day"].to_numpy(bool)
                              for f in forecasts]).mean(axis=1) > 0.5
    means = {column: np.column_stack([f[column].to_numpy(float) for f in forecasts]).mean(axis=1)
             for column in FORECAST_COLUMNS[1:-1]}
    return pd.DataFrame({"ds": forecasts[0]["ds"].to_numpy(),
                         **{column: np.where(closed, 0.0, values)
                            for column, values in means.items()},
                         "is_closed_day": closed})


def _calibrated_coverage(scores: pd.DataFrame, daily: pd.DataFrame, floor: float) -> None:
    """Per model and fold, the coverage of a band calibrated on that model's other folds
    (cross-conformal); left as it was where the other folds hold too few errors."""
    fold_of = daily["fold"].to_numpy()
    actual = daily["actual"].to_numpy(float)
    yhat = daily["yhat"].to_numpy(float)
    predicted_closed = daily["predicted_closed"].to_numpy(bool)
    errors = intervals.scaled_errors(daily, floor)
    rows_of = daily.groupby("model_name", sort=False).indices
    for index, model_name, fold in zip(scores.index, scores["model_name"], scores["fold"],
                                       strict=True):
        mine = rows_of[model_name]
        edges = intervals.band_edges(errors[mine][fold_of[mine] != fold])
        if edges is None:
            continue
        rows = mine[fold_of[mine] == fold]
        banded = intervals.bands(yhat[rows], predicted_closed[rows], edges, floor)
        for level, (lower, upper) in banded.items():
            scores.loc[index, f"coverage_{round(level * 100)}"] = metrics.coverage(
                actual[rows], lower, upper)


def choose_champion(results: pd.DataFrame) -> Champion:
    """The combination, unless the single model with the lowest mean backtest WAPE beat it
    by more than ``SINGLE_MODEL_MARGIN`` in every fold; without a combination, the lowest
    mean WAPE. The reason gives the figures the choice was made on."""
    if results.empty:
        return Champion("seasonal_naive", "too little history to backtest: seasonal naive used")
    summary = results.groupby("model_name")["wape"].mean().dropna().sort_values()
    if summary.empty:
        return Champion("seasonal_naive", "no sales in the backtest window: seasonal naive used")
    folds, days = results["fold"].nunique(), int(results["horizon_days"].max())
    over = f"over {folds} folds of {days} days"
    if COMBINATION not in summary.index or len(summary) == 1:
        winner = summary.index[0]
        others = ", ".join(f"{name} {value:.1%}" for name, value in summary.iloc[1:].items())
        return Champion(winner, f"lowest backtest WAPE {summary.iloc[0]:.1%} (vs {others}) "
                                f"{over}")
    single = summary.drop(COMBINATION).index[0]
    by_fold = results.pivot_table(index="fold", columns="model_name", values="wape")
    won = int((by_fold[single] < by_fold[COMBINATION] * (1 - SINGLE_MODEL_MARGIN)).sum())
    margin = f"by more than {SINGLE_MODEL_MARGIN:.0%}"
    if won == folds:
        return Champion(single, f"beat the combination {margin} in every fold: backtest WAPE "
                                f"{summary[single]:.1%} vs {summary[COMBINATION]:.1%} {over}")
    return Champion(COMBINATION, f"the combination (mean of {' and '.join(COMBINED)}), backtest "
                                 f"WAPE {summary[COMBINATION]:.1%}; the best single model, "
                                 f"{single} {summary[single]:.1%}, beat it {margin} in {won} "
                                 f"of {folds} folds of {days} days")
