"""Forecast error measures. Arrays are aligned day by day; closed days count as actual zero.

WAPE is the headline: it weighs each day by its sales, so a quiet day cannot dominate it, and
it is defined on days with refunds (negative net revenue). MAPE is reported only over days
whose actual is above a stated floor (``mape_floor``): a day near zero, or a net refund day,
would make a percentage error meaningless (one refund day pushed every model's MAPE in a
fold past 76%).
"""

from __future__ import annotations

import numpy as np

MAPE_FLOOR_SHARE = 0.10  # of the series' median trading day


def mape_floor(history_y: np.ndarray, closed: np.ndarray | None = None) -> float:
    """The level below which a day is left out of MAPE: 10% of the median trading day of the
    history (at least 1, a unit of sales or one order)."""
    trading = history_y if closed is None else history_y[~closed]
    trading = trading[trading > 0]
    return max(1.0, MAPE_FLOOR_SHARE * float(np.median(trading))) if len(trading) else 1.0


def mape(actual: np.ndarray, predicted: np.ndarray, floor: float = 0.0) -> float | None:
    """Mean absolute percentage error over days whose actual is above ``floor`` (by default
    every day with positive sales)."""
    mask = actual > floor
    if not mask.any():
        return None
    return float(np.mean(np.abs(actual[mask] - predicted[mask]) / np.abs(actual[mask])))


def wape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    """Weighted absolute percentage error: total absolute error over total absolute actuals."""
    total = np.abs(actual).sum()
    return None if total == 0 else float(np.abs(actual - predicted).sum() / total)


def smape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    denominator = np.abs(actual) + np.abs(predicted)
    mask = denominator > 0
    if not mask.any():
        return None
    return float(np.mean(2 * np.abs(actual[mask] - predicted[mask]) / denominator[mask]))


def mase(actual: np.ndarray, predicted: np.ndarray, history: np.ndarray,
         season: int = 7) -> float | None:
    """Mean absolute error scaled by the in-sample error of a same-weekday-last-week forecast."""
    if len(history) <= season:
        return None
    scale = np.mean(np.abs(history[season:] - history[:-season]))
    return None if scale == 0 else float(np.mean(np.abs(actual - predicted)) / scale)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of days inside the band; None without days or without a band (NaN edges)."""
    if len(actual) == 0 or np.isnan(lower).any() or np.isnan(upper).any():
        return None
    return float(np.mean((actual >= lower) & (actual <= upper)))
