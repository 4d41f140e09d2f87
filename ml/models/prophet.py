"""Prophet, tuned (multiplicative seasonality, a flexible trend) and as it comes, with its
Python side streamlined."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from ml.calendar import public_holidays
from ml.models.base import ClosedDayRule, clip_outliers, forecast_dates, forecast_frame

# v3: holidays from ml.calendar; v4: the looser L-BFGS stop (LBFGS_TOL_REL_GRAD); v5: outliers
# judged against the same weekday (clip_outliers)
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


class ProphetModel:
    """Prophet with weekly (and, given two years, yearly) seasonality and country holidays.

    Choices, checked on rolling-origin folds (see bench/forecast_quality.py): multiplicative
    seasonality (weekday swings grow with the level of sales), a flexible trend
    (changepoint_prior_scale 0.5), and days far from the same weekday's usual level clipped
    before fitting (``clip_outliers``) so one-off bulk orders and promotions do not bend the
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
        self.rule = ClosedDayRule.learn(history)
        closed = history["closed"].to_numpy(bool)
        trading = history[~closed]
        # Clipped on the calendar (closed days left out as NaN), so the cycle is the week.
        y = clip_outliers(np.where(closed, np.nan, history["y"].to_numpy(float)), 7)[~closed]
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
        ds = forecast_dates(dates)
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
            return forecast_frame(ds, point, None, closed)
        np.random.seed(self.seed)  # Prophet samples with numpy's global generator
        predicted = self.model.predict(future)
        point = predicted["yhat"].to_numpy(float)
        lo95 = predicted["yhat_lower"].to_numpy(float)
        hi95 = predicted["yhat_upper"].to_numpy(float)
        # One sampling pass gives the 95% band; the 80% band is the same spread scaled by the
        # ratio of normal quantiles, side by side (1.2816 / 1.9600).
        ratio = 1.2816 / 1.9600
        return forecast_frame(ds, point, (point - (point - lo95) * ratio,
                                     point + (hi95 - point) * ratio, lo95, hi95), closed)


def load_prophet() -> None:
    """Import Prophet now, in this process: worker processes forked afterwards inherit it
    instead of each paying the import again."""
    _prophet_class()


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _quiet_prophet_logs() -> None:
    """Only errors of Prophet and its Stan backend are worth a log line:

    - Prophet warns on every fit of under two years with yearly seasonality; the choice is
      deliberate here (700+ days).
    - ``prophet.plot`` logs an error at import when plotly is missing: its interactive plots
      are not used here (``ml.plots`` draws with matplotlib).
    - cmdstanpy logs two INFO lines per fit.

    Both libraries set their loggers' levels themselves (Prophet at import, cmdstanpy on its
    first log call), so a filter on each logger does the holding back, set before either is
    imported.
    """
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    for name in ("prophet", "cmdstanpy"):
        logger = logging.getLogger(name)
        if _errors_only not in logger.filters:
            logger.addFilter(_errors_only)


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
    _quiet_prophet_logs()
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


class DefaultProphetModel(ProphetModel):
    """Prophet as it comes (additive seasonality, changepoint prior 0.05), for comparison
    with the variant tuned on UCI."""

    name = "prophet_default"
    version = "prophet-default-v2"
    seasonality_mode = "additive"
    changepoint_prior_scale = 0.05

