"""Seasonal baselines: last week's same weekday, and the median of the last four."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.models.base import ClosedDayRule, forecast_dates, forecast_frame

INTERVAL_QUANTILES = (0.025, 0.10, 0.90, 0.975)  # for the empirical baselines


class SeasonalNaive:
    """Same weekday last week (for longer horizons, the last observed week repeated).

    Intervals come from the empirical quantiles of its own in-sample errors on trading days.
    """

    name = "seasonal_naive"
    version = "v1"
    params = None  # nothing to warm-start from

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        self.history = history.reset_index(drop=True)
        self.rule = ClosedDayRule.learn(history)
        y = self.history["y"].to_numpy(float)
        errors = (y[7:] - y[:-7])[~self.history["closed"].to_numpy(bool)[7:]]
        self.error_quantiles = np.quantile(errors, INTERVAL_QUANTILES) if len(errors) > 10 \
            else np.zeros(4)
        return self

    def _point(self, dates: pd.Series) -> np.ndarray:
        return _by_weekday(self.history.tail(7), dates, "last")

    def predict(self, dates: pd.Series, bands: bool = True) -> pd.DataFrame:
        # The baselines' bands cost next to nothing: always given.
        ds = forecast_dates(dates)
        point = self._point(ds)
        lo95, lo80, hi80, hi95 = self.error_quantiles
        return forecast_frame(ds, point, (point + lo80, point + hi80, point + lo95, point + hi95),
                         self.rule.is_closed(ds))


class SeasonalMedian(SeasonalNaive):
    """Median of the same weekday over the last four weeks: steadier than last week alone."""

    name = "seasonal_median_4w"

    def fit(self, history: pd.DataFrame) -> SeasonalMedian:
        self.history = history.reset_index(drop=True)
        self.rule = ClosedDayRule.learn(history)
        y = self.history["y"].to_numpy(float)
        # Median of the same weekday over the previous four weeks, for every day at once.
        lagged = np.column_stack([np.r_[np.full(k, np.nan), y[:-k]] for k in (7, 14, 21, 28)])
        medians = np.median(lagged, axis=1)
        errors = (y - medians)[28:][~self.history["closed"].to_numpy(bool)[28:]]
        self.error_quantiles = np.quantile(errors, INTERVAL_QUANTILES) if len(errors) > 10 \
            else np.zeros(4)
        return self

    def _point(self, dates: pd.Series) -> np.ndarray:
        return _by_weekday(self.history.tail(28), dates, "median")


def _by_weekday(recent: pd.DataFrame, dates: pd.Series, how: str) -> np.ndarray:
    """Per date, the last value or the median of ``recent`` on the same weekday (0 for a
    weekday ``recent`` does not have)."""
    weekdays = pd.DatetimeIndex(recent["ds"]).day_of_week.to_numpy()
    values = recent["y"].to_numpy(float)
    per_weekday = np.zeros(7)
    for weekday in np.unique(weekdays):
        same = values[weekdays == weekday]
        per_weekday[weekday] = same[-1] if how == "last" else np.median(same)
    return per_weekday[pd.DatetimeIndex(dates).day_of_week.to_numpy()]
