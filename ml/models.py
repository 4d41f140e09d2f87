"""Forecasting models with one interface: fit on a daily history, predict given dates.

A history is a DataFrame with ``ds`` (date), ``y`` (float) and ``closed`` (bool: the store did
not trade). Closed days are data: they are left out of model fitting (a zero there would read
as a collapse in demand) and predicted as closed, with zero sales, when the pattern says so.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PROPHET_VERSION = "prophet-mult-cps0.5-v1"
INTERVAL_QUANTILES = (0.025, 0.10, 0.90, 0.975)  # for the empirical baselines
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
        ds = pd.to_datetime(history["ds"]).reset_index(drop=True)
        closed = history["closed"].to_numpy(bool)
        weekday = ds.dt.day_of_week.to_numpy()
        weekdays = set()
        for day in range(7):
            recent = closed[weekday == day][-8:]
            if len(recent) >= 4 and recent.mean() >= 0.8:
                weekdays.add(day)
        marks = pd.DataFrame({"month": ds.dt.month, "day": ds.dt.day, "closed": closed,
                              "weekday_closed": np.isin(weekday, list(weekdays))})
        per_date = marks.groupby(["month", "day"]).agg(
            all_closed=("closed", "all"), by_weekday=("weekday_closed", "all"),
            seen=("closed", "size"))
        # Closed every time it was seen, in at least two years (a single closed day may be an
        # outage), except the usual holidays; and not merely because of its weekday.
        usual = per_date.index.isin(list(USUAL_CLOSED_DATES))
        keep = per_date["all_closed"] & ~per_date["by_weekday"] & (
            (per_date["seen"] >= 2) | usual)
        return cls(weekdays, {(int(m), int(d)) for m, d in per_date.index[keep.to_numpy()]})

    def is_closed(self, dates: pd.Series) -> np.ndarray:
        dates = pd.to_datetime(dates)
        by_weekday = dates.dt.day_of_week.isin(list(self.weekdays)).to_numpy()
        by_date = np.array([(d.month, d.day) in self.dates for d in dates], dtype=bool)
        return by_weekday | by_date


def _empty_forecast(dates: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.to_datetime(dates).reset_index(drop=True)})


def _finish(frame: pd.DataFrame, closed: np.ndarray) -> pd.DataFrame:
    """Closed days forecast as exactly zero; sales are never negative."""
    for column in FORECAST_COLUMNS[1:-1]:
        frame[column] = np.where(closed, 0.0, np.clip(frame[column].to_numpy(float), 0, None))
    frame["is_closed_day"] = closed
    return frame[FORECAST_COLUMNS]


class SeasonalNaive:
    """Same weekday last week (for longer horizons, the last observed week repeated).

    Intervals come from the empirical quantiles of its own in-sample errors on trading days.
    """

    name = "seasonal_naive"
    version = "v1"

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        self.history = history.reset_index(drop=True)
        self.rule = ClosedDayRule.learn(history)
        y = self.history["y"].to_numpy(float)
        errors = (y[7:] - y[:-7])[~self.history["closed"].to_numpy(bool)[7:]]
        self.error_quantiles = np.quantile(errors, INTERVAL_QUANTILES) if len(errors) > 10 \
            else np.zeros(4)
        return self

    def _point(self, dates: pd.Series) -> np.ndarray:
        last_week = self.history.tail(7)
        by_weekday = dict(zip(pd.to_datetime(last_week["ds"]).dt.day_of_week,
                              last_week["y"].to_numpy(float), strict=True))
        return np.array([by_weekday.get(d.day_of_week, 0.0) for d in pd.to_datetime(dates)])

    def predict(self, dates: pd.Series) -> pd.DataFrame:
        frame = _empty_forecast(dates)
        point = self._point(dates)
        frame["yhat"] = point
        lo95, lo80, hi80, hi95 = self.error_quantiles
        frame["yhat_lower_95"], frame["yhat_lower_80"] = point + lo95, point + lo80
        frame["yhat_upper_80"], frame["yhat_upper_95"] = point + hi80, point + hi95
        return _finish(frame, self.rule.is_closed(frame["ds"]))


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
        recent = self.history.tail(28)
        weekdays = pd.to_datetime(recent["ds"]).dt.day_of_week.to_numpy()
        values = recent["y"].to_numpy(float)
        medians = {w: float(np.median(values[weekdays == w])) for w in set(weekdays)}
        return np.array([medians.get(d.day_of_week, 0.0) for d in pd.to_datetime(dates)])


class ProphetModel:
    """Prophet with weekly (and, given two years, yearly) seasonality and country holidays.

    Choices, checked on rolling-origin folds (see bench/forecast_quality.py): multiplicative
    seasonality (weekday swings grow with the level of sales), a flexible trend
    (changepoint_prior_scale 0.5), and days more than 4 robust deviations from their month's
    median clipped before fitting so one-off bulk orders do not bend the trend. Closed days are
    not fitted. The 95% interval comes from Prophet's predictive samples; the 80% interval
    scales it by the ratio of normal quantiles.
    """

    name = "prophet"
    version = PROPHET_VERSION

    def __init__(self, country_code: str | None = None, uncertainty_samples: int = 100,
                 seed: int = 0) -> None:
        self.country_code = country_code
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed

    def fit(self, history: pd.DataFrame) -> ProphetModel:
        from prophet import Prophet

        # Prophet warns on every fit of under two years with yearly seasonality; the choice is
        # deliberate here (700+ days), so only errors are worth a log line.
        for name in ("prophet", "cmdstanpy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.rule = ClosedDayRule.learn(history)
        trading = history[~history["closed"].to_numpy(bool)]
        y = _clip_outliers(trading["y"].astype(float).reset_index(drop=True))
        span_days = (pd.to_datetime(history["ds"]).max() - pd.to_datetime(history["ds"]).min()).days
        self.model = Prophet(
            weekly_seasonality=True,
            yearly_seasonality=span_days >= 700,
            daily_seasonality=False,
            seasonality_mode="multiplicative",
            changepoint_prior_scale=0.5,
            interval_width=0.95,
            uncertainty_samples=self.uncertainty_samples,
        )
        if self.country_code:
            years = pd.to_datetime(history["ds"]).dt.year
            # a year of margin covers the forecast horizon
            self.model.holidays = _holidays(self.country_code, int(years.min()),
                                            int(years.max()) + 1)
        self.model.fit(pd.DataFrame({"ds": pd.to_datetime(trading["ds"]).to_numpy(), "y": y}))
        return self

    def predict(self, dates: pd.Series) -> pd.DataFrame:
        frame = _empty_forecast(dates)
        future = pd.DataFrame({"ds": frame["ds"]})
        np.random.seed(self.seed)  # Prophet samples with numpy's global generator
        predicted = self.model.predict(future)
        point = predicted["yhat"].to_numpy(float)
        lo95 = predicted["yhat_lower"].to_numpy(float)
        hi95 = predicted["yhat_upper"].to_numpy(float)
        # One sampling pass gives the 95% band; the 80% band is the same spread scaled by the
        # ratio of normal quantiles, side by side (1.2816 / 1.9600).
        ratio = 1.2816 / 1.9600
        frame["yhat"] = point
        frame["yhat_lower_95"], frame["yhat_upper_95"] = lo95, hi95
        frame["yhat_lower_80"] = point - (point - lo95) * ratio
        frame["yhat_upper_80"] = point + (hi95 - point) * ratio
        return _finish(frame, self.rule.is_closed(frame["ds"]))


@functools.lru_cache(maxsize=64)
def _holidays(country_code: str, first_year: int, last_year: int) -> pd.DataFrame | None:
    """The country's public holidays for those years, built once per process (Prophet would
    rebuild them on every fit); an unknown country forecasts without holidays."""
    from prophet.make_holidays import make_holidays_df

    try:
        return make_holidays_df(year_list=list(range(first_year, last_year + 1)),
                                country=country_code)
    except Exception:
        logging.getLogger(__name__).warning("no holidays for %s", country_code)
        return None


def _clip_outliers(y: pd.Series, k: float = 4.0) -> np.ndarray:
    median = y.rolling(28, min_periods=7, center=True).median()
    spread = (y - median).abs().rolling(28, min_periods=7, center=True).median() * 1.4826
    upper = (median + k * spread).fillna(np.inf)
    lower = (median - k * spread).fillna(-np.inf)
    return y.clip(lower=lower, upper=upper).to_numpy(float)


def model_factories(country_code: str | None) -> dict[str, callable]:
    return {
        "prophet": lambda: ProphetModel(country_code),
        "seasonal_naive": SeasonalNaive,
        "seasonal_median_4w": SeasonalMedian,
    }
