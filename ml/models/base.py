"""What every model shares: the forecast frame, the closed-day rule, and outlier clipping
before a fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

USUAL_CLOSED_DATES = {(12, 25), (12, 26), (1, 1)}
FORECAST_COLUMNS = ["ds", "yhat", "yhat_lower_80", "yhat_upper_80", "yhat_lower_95",
                    "yhat_upper_95", "is_closed_day"]


@dataclass
class ClosedDayRule:
    """Which future days a store will not trade, learnt from its own history.

    A weekday is closed when the store was closed on at least 80% of its last 8 occurrences
    (the UCI retailer's Saturdays); a calendar date (month, day) is closed when it was closed
    in every year seen, at least twice (or once for Christmas, Boxing Day and New Year's Day).
    """

    weekdays: set[int] = field(default_factory=set)
    dates: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    def learn(cls, history: pd.DataFrame) -> ClosedDayRule:
        ds = pd.DatetimeIndex(history["ds"])
        closed = history["closed"].to_numpy(bool)
        weekday = ds.day_of_week.to_numpy()
        weekdays = set()
        for day in range(7):
            recent = closed[weekday == day][-8:]
            if len(recent) >= 4 and recent.mean() >= 0.8:
                weekdays.add(day)
        # Per calendar date: how often seen, closed, and closed because of its weekday. Counted
        # with bincount over month * 32 + day: every model fit learns a rule, so this is hot.
        keys = _date_keys(ds)
        seen = np.bincount(keys, minlength=_DATE_KEYS)
        times_closed = np.bincount(keys, weights=closed, minlength=_DATE_KEYS)
        weekday_closed = np.bincount(keys, weights=np.isin(weekday, list(weekdays)),
                                     minlength=_DATE_KEYS)
        # Closed every time it was seen, in at least two years (a single closed day may be an
        # outage), except the usual holidays; and not merely because of its weekday.
        usual = np.isin(np.arange(_DATE_KEYS), [m * 32 + d for m, d in USUAL_CLOSED_DATES])
        keep = (seen > 0) & (times_closed == seen) & (weekday_closed < seen) \
            & ((seen >= 2) | usual)
        return cls(weekdays, {(int(k) // 32, int(k) % 32) for k in np.flatnonzero(keep)})

    def is_closed(self, dates: pd.Series) -> np.ndarray:
        dates = pd.DatetimeIndex(dates)
        by_weekday = np.isin(dates.day_of_week.to_numpy(), list(self.weekdays))
        by_date = np.isin(_date_keys(dates), [m * 32 + d for m, d in self.dates])
        return by_weekday | by_date


_DATE_KEYS = 13 * 32


def _date_keys(dates: pd.DatetimeIndex) -> np.ndarray:
    """month * 32 + day: one small integer per calendar date, for counting and lookups."""
    return dates.month.to_numpy() * 32 + dates.day.to_numpy()


def forecast_dates(dates: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(dates))


def forecast_frame(ds: pd.DatetimeIndex, yhat: np.ndarray,
              band: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
              closed: np.ndarray) -> pd.DataFrame:
    """The forecast frame (FORECAST_COLUMNS), built at once: ``band`` is (lower 80, upper 80,
    lower 95, upper 95), or None for a forecast without bands (NaN). Closed days are exactly
    zero; sales are never negative."""
    if band is None:
        band = (np.full(len(ds), np.nan),) * 4
    columns = dict(zip(FORECAST_COLUMNS[1:-1], (yhat, *band), strict=True))
    return pd.DataFrame({
        "ds": ds,
        **{name: np.where(closed, 0.0, np.clip(np.asarray(values, dtype=float), 0, None))
           for name, values in columns.items()},
        "is_closed_day": closed,
    })


def clip_outliers(y: np.ndarray, season: int, k: float = 3.0) -> np.ndarray:
    """``y`` with days far from their usual level pulled back to its edge: a promotion, a bulk
    order or a refund is not the store's level, and a model that learns it as one forecasts
    it for weeks (a promotion starting on the last day of history lifted MSTL's whole next
    month by more than a quarter).

    A day's usual level is the median of the same day of the cycle (``season`` days apart)
    over three cycles either side, the day itself left out, so the weekly pattern is not
    mistaken for outliers and a few days of promotion barely move it. The allowed distance is
    ``k`` robust deviations, relative to the usual level (sales vary in proportion to it), of
    the days around it (eight cycles). At the end of the history only earlier cycles exist,
    so a jump on the last days is judged against the weeks before it; a lasting change of
    level becomes the usual level within a few cycles. Where the usual level is not positive
    (intermittent sales) nothing is clipped. NaN (a closed day) stays NaN and is not counted.

    ``k`` was chosen on the backtest folds of UCI and the 50 generated series, not on their
    held-out days (BENCHMARKS.md, "Forecast and anomaly quality").
    """
    y = np.asarray(y, dtype=float)
    series = pd.Series(y)
    others = [offset for offset in range(-3 * season, 3 * season + 1, season) if offset]
    usual = pd.DataFrame({offset: series.shift(-offset) for offset in others}) \
        .median(axis=1).to_numpy()
    known = usual > 0  # False for NaN too
    relative = np.where(known, np.abs(y - usual) / np.where(known, usual, 1.0), np.nan)
    spread = pd.Series(relative).rolling(8 * season, min_periods=season, center=True) \
        .median().to_numpy() * 1.4826
    known &= spread > 0
    return np.clip(y, np.where(known, usual * (1 - k * spread), -np.inf),
                   np.where(known, usual * (1 + k * spread), np.inf))
