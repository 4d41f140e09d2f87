"""statsforecast models on the trading-day series, with the store's real week as the season."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.models.base import ClosedDayRule, clip_outliers, forecast_dates, forecast_frame


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
        y = clip_outliers(y.to_numpy(float), self.season)
        self.flat = len(y) < 3 * self.season  # too short for a season: its mean, flat
        if self.flat:
            self.level = float(np.mean(y)) if len(y) else 0.0
            return self
        self.model = self._model(self.season).fit(y)
        return self

    def _off_weekday(self, dates: pd.Series) -> np.ndarray:
        return np.isin(pd.DatetimeIndex(dates).day_of_week.to_numpy(), list(self.rule.weekdays))

    def predict(self, dates: pd.Series, bands: bool = True) -> pd.DataFrame:
        ds = forecast_dates(dates)
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
        return forecast_frame(ds, on_dates("mean"), band, self.rule.is_closed(ds) | ~usable)


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
