"""Forecast error measures. Arrays are aligned day by day; closed days count as actual zero."""

from __future__ import annotations

import numpy as np


def mape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    """Mean absolute percentage error over days with non-zero actuals (trading days)."""
    mask = actual != 0
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
    if len(actual) == 0:
        return None
    return float(np.mean((actual >= lower) & (actual <= upper)))
