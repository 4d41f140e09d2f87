"""Forecasting models with one interface: fit on a daily history, predict given dates.

A history is a DataFrame with ``ds`` (date), ``y`` (float) and ``closed`` (bool: the store did
not trade). Closed days are data: they are left out of model fitting (a zero there would read
as a collapse in demand) and predicted as closed, with zero sales, when the pattern says so.

``predict(dates, bands=False)`` leaves the 80% and 95% bands out (NaN): a backtest fold's
bands are replaced by ones calibrated on the other folds' errors (``ml.intervals``), and
Prophet's sampled band costs more than its point forecast.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.calendar import public_holidays

# v3: holidays from ml.calendar; v4: the looser L-BFGS stop (LBFGS_TOL_REL_GRAD); v5: outliers
# judged against the same weekday (_clip_outliers)
PROPHET_VERSION = "prophet-mult-cps0.5-v5"
# L-BFGS memory: Prophet's posterior is badly conditioned (Laplace-prior changepoints), so
# the default of 5 needs thousands of iterations; 50 reaches an equal or better optimum in
# fewer (BENCHMARKS.md, "Forecast speed").
LBFGS_HISTORY_SIZE = 50
# Stop once the gradient's relative size is below 1e8 machine epsilons (CmdStan's default is
# 1e7): on that flat posterior the last iterations move the forecast without improving it;
# held-out accuracy on UCI and the generated series was the same (BENCHMARKS.md).
LBFGS_TOL_REL_GRAD = 1e8
PROPHET_PARAMS = ("k", "m", "delta", "beta", "sigma_obs")
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


def _forecast_dates(dates: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(dates))


def _forecast(ds: pd.DatetimeIndex, yhat: np.ndarray,
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
        ds = _forecast_dates(dates)
        point = self._point(ds)
        lo95, lo80, hi80, hi95 = self.error_quantiles
        return _forecast(ds, point, (point + lo80, point + hi80, point + lo95, point + hi95),
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


class ProphetModel:
    """Prophet with weekly (and, given two years, yearly) seasonality and country holidays.

    Choices, checked on rolling-origin folds (see bench/forecast_quality.py): multiplicative
    seasonality (weekday swings grow with the level of sales), a flexible trend
    (changepoint_prior_scale 0.5), and days far from the same weekday's usual level clipped
    before fitting (``_clip_outliers``) so one-off bulk orders and promotions do not bend the
    trend. Closed days are not fitted. The 95% interval comes from Prophet's predictive
    samples; the 80% interval scales it by the ratio of normal quantiles.

    ``init`` warm-starts the optimizer from the ``params`` of an earlier fit of the same
    series (the previous backtest fold, or yesterday's model): the optimum is the same, it is
    reached in fewer iterations. Parameters of another shape are ignored by Prophet.
    """

    name = "prophet"
    version = PROPHET_VERSION
    seasonality_mode = "multiplicative"
    changepoint_prior_scale = 0.5

    def __init__(self, country_code: str | None = None, uncertainty_samples: int = 100,
                 seed: int = 0, init: dict[str, float | list[float]] | None = None) -> None:
        self.country_code = country_code
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed
        self.init = init
        self.params: dict[str, float | list[float]] | None = None

    def fit(self, history: pd.DataFrame) -> ProphetModel:
        Prophet = _prophet_class()
        # Prophet warns on every fit of under two years with yearly seasonality; the choice is
        # deliberate here (700+ days), so only errors are worth a log line.
        for name in ("prophet", "cmdstanpy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.rule = ClosedDayRule.learn(history)
        closed = history["closed"].to_numpy(bool)
        trading = history[~closed]
        # Clipped on the calendar (closed days left out as NaN), so the cycle is the week.
        y = _clip_outliers(np.where(closed, np.nan, history["y"].to_numpy(float)), 7)[~closed]
        span_days = (pd.to_datetime(history["ds"]).max() - pd.to_datetime(history["ds"]).min()).days
        self.model = Prophet(
            weekly_seasonality=True,
            yearly_seasonality=span_days >= 700,
            daily_seasonality=False,
            seasonality_mode=self.seasonality_mode,
            changepoint_prior_scale=self.changepoint_prior_scale,
            interval_width=0.95,
            uncertainty_samples=self.uncertainty_samples,
        )
        if self.country_code:
            years = pd.to_datetime(history["ds"]).dt.year
            # a year of margin covers the forecast horizon
            self.model.holidays = _holidays(self.country_code, int(years.min()),
                                            int(years.max()) + 1)
        options = {}
        if len(trading) >= 100:  # below that Prophet optimizes with Newton, not L-BFGS
            options["history_size"] = LBFGS_HISTORY_SIZE
            options["tol_rel_grad"] = LBFGS_TOL_REL_GRAD
        if self.init:
            options["init"] = {name: np.asarray(value, dtype=float)
                               for name, value in self.init.items()}
        self.model.fit(pd.DataFrame({"ds": pd.to_datetime(trading["ds"]).to_numpy(), "y": y}),
                       **options)
        # Plain floats and lists: JSON-ready, to be stored and passed back as ``init``.
        fitted = self.model.params
        self.params = {name: (fitted[name].ravel().tolist() if name in ("delta", "beta")
                              else float(fitted[name].ravel()[0]))
                       for name in PROPHET_PARAMS}
        return self

    def predict(self, dates: pd.Series, bands: bool = True) -> pd.DataFrame:
        ds = _forecast_dates(dates)
        future = pd.DataFrame({"ds": ds})
        closed = self.rule.is_closed(ds)
        if not bands:
            # Prophet skips its uncertainty sampling when asked for no samples; the point
            # forecast does not depend on it.
            samples, self.model.uncertainty_samples = self.model.uncertainty_samples, 0
            try:
                point = self.model.predict(future)["yhat"].to_numpy(float)
            finally:
                self.model.uncertainty_samples = samples
            return _forecast(ds, point, None, closed)
        np.random.seed(self.seed)  # Prophet samples with numpy's global generator
        predicted = self.model.predict(future)
        point = predicted["yhat"].to_numpy(float)
        lo95 = predicted["yhat_lower"].to_numpy(float)
        hi95 = predicted["yhat_upper"].to_numpy(float)
        # One sampling pass gives the 95% band; the 80% band is the same spread scaled by the
        # ratio of normal quantiles, side by side (1.2816 / 1.9600).
        ratio = 1.2816 / 1.9600
        return _forecast(ds, point, (point - (point - lo95) * ratio,
                                     point + (hi95 - point) * ratio, lo95, hi95), closed)


def load_prophet() -> None:
    """Import Prophet now, in this process: worker processes forked afterwards inherit it
    instead of each paying the import again."""
    _prophet_class()


@functools.cache
def _prophet_class() -> type:
    """Prophet with four costs of its Python side removed; its model and results are unchanged
    (tests/test_ml_models.py compares forecasts with plain Prophet's).

    - ``predict`` built a frame's seasonality and holiday features twice (for the components,
      then again for the uncertainty samples). Here once.
    - ``fit`` handed cmdstanpy nested Python lists, which stanio then walks element by
      element to write Stan's JSON input; numpy arrays take its vectorized path.
    - The component matrix (which feature column belongs to which component) depends only on
      the feature names, not on the dates, yet Prophet rebuilt it with a crosstab in every
      fit and predict. It is built once per process for each set of names.
    - Holiday features were built holiday by holiday, a date lookup each; here at once. The
      Fourier terms of each seasonality were computed on pandas Series; here on arrays.

    What each saved is in BENCHMARKS.md ("Forecast speed" and "End to end").

    Prophet is imported on first use: that takes seconds, and the baselines do not need it.
    """
    from prophet import Prophet
    from prophet.models import CmdStanPyBackend

    class ArrayInputBackend(CmdStanPyBackend):
        @staticmethod
        def prepare_data(init, data):
            stan_init, stan_data = CmdStanPyBackend.prepare_data(init, data)
            # the same values, as arrays again
            return stan_init, {name: np.asarray(value) if isinstance(value, list) else value
                               for name, value in stan_data.items()}

    class StreamlinedProphet(Prophet):
        _features_of: tuple | None = None
        _predicting = False
        # feature names etc. -> (component matrix, modes), shared by the process's models
        component_matrices: dict[tuple, tuple[pd.DataFrame, dict]] = {}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stan_backend = ArrayInputBackend()

        def make_all_seasonality_features(self, df):
            # Only within one predict call, and only for the very frame it already saw.
            cached = self._features_of
            if cached is not None and cached[0] is df and cached[1].equals(df["ds"]):
                return cached[2]
            features = super().make_all_seasonality_features(df)
            if self._predicting:
                self._features_of = (df, df["ds"].copy(), features)
            return features

        @staticmethod
        def fourier_series(dates, period, series_order):
            # Prophet's own, but each order's product taken on the array rather than on a
            # pandas Series (the same floating-point operations, without pandas' overhead).
            if not (series_order >= 1):
                raise ValueError("series_order must be >= 1")
            epoch = pd.Timestamp("1970-01-01", tz=dates.dt.tz)
            t = ((dates - epoch).dt.total_seconds() / (24 * 60 * 60)).to_numpy(float)
            angle = np.pi * 2 * t
            components = np.empty((dates.shape[0], 2 * series_order))
            for i in range(series_order):
                c = (i + 1) / period * angle
                components[:, 2 * i] = np.sin(c)
                components[:, 2 * i + 1] = np.cos(c)
            return components

        def make_holiday_features(self, dates, holidays):
            # Prophet walks the holidays row by row and looks each date up. Plain holidays
            # (a date and a name, no windows or prior scales: what ml.calendar gives) make
            # the same columns from one lookup of every date.
            if not (set(holidays.columns) <= {"ds", "holiday"}
                    and self.holidays_prior_scale > 0 and dates.is_unique):
                return super().make_holiday_features(dates, holidays)
            names = list(pd.unique(holidays["holiday"]))
            columns = sorted(f"{name}_delim_+0" for name in names)
            column_of = {column: i for i, column in enumerate(columns)}
            rows = pd.DatetimeIndex(dates.dt.normalize()).get_indexer(
                pd.DatetimeIndex(holidays["ds"]).normalize())
            cols = np.array([column_of[f"{name}_delim_+0"] for name in holidays["holiday"]],
                            dtype=int)
            matrix = np.zeros((len(dates), len(columns)))
            matrix[rows[rows >= 0], cols[rows >= 0]] = 1.0
            if self.train_holiday_names is None:
                self.train_holiday_names = pd.Series(names)
            return (pd.DataFrame(matrix, columns=columns),
                    [float(self.holidays_prior_scale)] * len(columns), names)

        def regressor_column_matrix(self, seasonal_features, modes):
            if self.extra_regressors:
                return super().regressor_column_matrix(seasonal_features, modes)
            holiday_names = (None if self.train_holiday_names is None
                             else tuple(self.train_holiday_names.unique()))
            key = (tuple(seasonal_features.columns), holiday_names, self.holidays_mode,
                   tuple((mode, tuple(names)) for mode, names in modes.items()))
            component_matrices = StreamlinedProphet.component_matrices
            if key not in component_matrices:
                # Built without the comparison to training (done below) so one entry serves
                # fit and predict alike.
                trained, self.train_component_cols = self.train_component_cols, None
                try:
                    built = super().regressor_column_matrix(
                        seasonal_features, {mode: list(names) for mode, names in modes.items()})
                finally:
                    self.train_component_cols = trained
                if len(component_matrices) >= 256:
                    component_matrices.clear()
                component_matrices[key] = built
            component_cols, built_modes = component_matrices[key]
            for mode, names in built_modes.items():  # Prophet extends ``modes`` in place
                modes[mode] = list(names)
            component_cols = component_cols.copy()
            if self.train_component_cols is not None:
                component_cols = component_cols[self.train_component_cols.columns]
                if not component_cols.equals(self.train_component_cols):
                    raise Exception('A bug occurred in constructing regressors.')
            return component_cols, modes

        def predict(self, df=None, vectorized=True):
            self._predicting = True
            try:
                return super().predict(df, vectorized)
            finally:
                self._predicting, self._features_of = False, None

    return StreamlinedProphet


@functools.lru_cache(maxsize=64)
def _holidays(country_code: str, first_year: int, last_year: int) -> pd.DataFrame | None:
    """The country's public holidays for those years, as the anomaly detector knows them
    (``ml.calendar``: with the days most regions observe), in Prophet's holidays frame, built
    once per process (Prophet would rebuild them on every fit); an unknown country forecasts
    without holidays."""
    days = public_holidays(country_code, tuple(range(first_year, last_year + 1)))
    if not days:
        logging.getLogger(__name__).warning("no holidays for %s", country_code)
        return None
    return pd.DataFrame({"ds": pd.to_datetime(list(days)), "holiday": list(days.values())})


def _clip_outliers(y: np.ndarray, season: int, k: float = 3.0) -> np.ndarray:
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


class TradingDayModel:
    """A statsforecast model on the trading-day series: the days a store trades, in order,
    with the store's real week as the season (a shop that closes on Sundays has a 6-day
    cycle once its closed days are dropped; keeping them as zeros hurts every such model).
    Its own bands are replaced by calibrated ones (``ml.intervals``) wherever it is used.
    Subclasses say which statsforecast model to fit."""

    name = "trading_day"
    version = "v1"
    params = None

    def _model(self, season: int):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def fit(self, history: pd.DataFrame) -> TradingDayModel:
        self.rule = ClosedDayRule.learn(history)
        self.last_day = pd.to_datetime(history["ds"]).max()
        self.season = 7 - len(self.rule.weekdays)
        # The clock skips only the weekdays the store never trades. A holiday or an outage
        # on another weekday keeps its place (filled with the same day a cycle earlier):
        # dropping it would shift the weekly pattern by a day from there on.
        days = history[~self._off_weekday(history["ds"])].reset_index(drop=True)
        y = days["y"].astype(float).where(~days["closed"].to_numpy(bool))
        y = y.fillna(y.shift(self.season)).fillna(y.median()).fillna(0.0)
        y = _clip_outliers(y.to_numpy(float), self.season)
        self.flat = len(y) < 3 * self.season  # too short for a season: its mean, flat
        if self.flat:
            self.level = float(np.mean(y)) if len(y) else 0.0
            return self
        self.model = self._model(self.season).fit(y)
        return self

    def _off_weekday(self, dates: pd.Series) -> np.ndarray:
        return np.isin(pd.DatetimeIndex(dates).day_of_week.to_numpy(), list(self.rule.weekdays))

    def predict(self, dates: pd.Series, bands: bool = True) -> pd.DataFrame:
        ds = _forecast_dates(dates)
        # Steps ahead on the trading-day clock: every day but the weekdays never traded.
        span = pd.date_range(self.last_day + pd.Timedelta(days=1), ds.max())
        open_days = span[~self._off_weekday(span)]
        steps = max(len(open_days), 1)
        if self.flat:
            path = {"mean": np.full(steps, self.level)}
            path.update({key: path["mean"] for key in ("lo-95", "lo-80", "hi-80", "hi-95")})
        else:
            path = self.model.predict(h=steps, level=[80, 95]) if bands \
                else self.model.predict(h=steps)
        # Each date's step on that clock; dates before the history's end or on a weekday
        # never traded have none.
        index = open_days.get_indexer(ds)
        usable = index >= 0
        step = np.clip(index, 0, None)

        def on_dates(key: str) -> np.ndarray:
            values = np.asarray(path.get(key, path["mean"]), dtype=float)
            return np.where(usable, values[step], 0.0)

        band = tuple(on_dates(key) for key in ("lo-80", "hi-80", "lo-95", "hi-95")) \
            if bands else None
        return _forecast(ds, on_dates("mean"), band, self.rule.is_closed(ds) | ~usable)


class MSTLModel(TradingDayModel):
    """MSTL: the week's pattern by STL, the deseasonalized rest by an ETS with additive
    errors and a damped additive trend. A damped trend was better than letting AutoETS pick
    the trend's form (6 fits instead of one) in the tournament's folds and on held-out days,
    on UCI and on the generated series alike (BENCHMARKS.md, "Forecast tournament")."""

    name = "mstl"
    version = "statsforecast-mstl-aadn-v3"

    def _model(self, season: int):
        from statsforecast.models import MSTL, AutoETS

        return MSTL(season_length=season,
                    trend_forecaster=AutoETS(model="AAN", damped=True))


class AutoETSModel(TradingDayModel):
    name = "autoets"
    version = "statsforecast-autoets-v2"

    def _model(self, season: int):
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season)


class AutoETSNoTrendModel(TradingDayModel):
    """AutoETS searching only the error type, with no trend and an additive week: about a
    tenth of the full search's cost."""

    name = "autoets_notrend"
    version = "statsforecast-autoets-zna-v2"

    def _model(self, season: int):
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season, model="ZNA")


class AutoThetaModel(TradingDayModel):
    name = "autotheta"
    version = "statsforecast-autotheta-v2"

    def _model(self, season: int):
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season)


class AutoARIMAModel(TradingDayModel):
    """AutoARIMA with the stepwise search's usual bounds and the approximation on: the full
    search is too slow for a tournament over many series."""

    name = "autoarima"
    version = "statsforecast-autoarima-approx-v2"

    def _model(self, season: int):
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=season, approximation=True, max_p=3, max_q=3,
                         max_P=1, max_Q=1)


class DefaultProphetModel(ProphetModel):
    """Prophet as it comes (additive seasonality, changepoint prior 0.05), for comparison
    with the variant tuned on UCI."""

    name = "prophet_default"
    version = "prophet-default-v2"
    seasonality_mode = "additive"
    changepoint_prior_scale = 0.05


ModelFactory = Callable[..., "SeasonalNaive | ProphetModel | TradingDayModel"]


def model_factories(country_code: str | None) -> dict[str, ModelFactory]:
    """Model name -> factory; a model that can be warm-started takes ``init``."""
    return {
        "prophet": lambda init=None: ProphetModel(country_code, init=init),
        "mstl": MSTLModel,
        "seasonal_naive": SeasonalNaive,
        "seasonal_median_4w": SeasonalMedian,
    }


def tournament_factories(country_code: str | None) -> dict[str, ModelFactory]:
    """Every candidate, for the offline tournament that chose the defaults above
    (bench/forecast_tournament.py): the production set plus the peers it was measured
    against."""
    return {
        **model_factories(country_code),
        "prophet_default": lambda init=None: DefaultProphetModel(country_code, init=init),
        "autoets": AutoETSModel,
        "autoets_notrend": AutoETSNoTrendModel,
        "autotheta": AutoThetaModel,
        "autoarima": AutoARIMAModel,
    }


def build_model(factory: ModelFactory, init: dict | None = None):
    """A new model, warm-started from ``init`` (``params`` of an earlier fit) when given."""
    return factory(init=init) if init else factory()
