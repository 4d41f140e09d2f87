"""Forecasting models with one interface: fit on a daily history, predict given dates.

A history is a DataFrame with ``ds`` (date), ``y`` (float) and ``closed`` (bool: the store did
not trade). Closed days are data: they are left out of model fitting (a zero there would read
as a collapse in demand) and predicted as closed, with zero sales, when the pattern says so.

``predict(dates, bands=False)`` leaves the 80% and 95% bands out (NaN): a backtest fold's
bands are replaced by ones calibrated on the other folds' errors (``ml.intervals``), and
Prophet's sampled band costs more than its point forecast.
"""

from __future__ import annotations

from collections.abc import Callable

from ml.models.base import FORECAST_COLUMNS, ClosedDayRule
from ml.models.baselines import SeasonalMedian, SeasonalNaive
from ml.models.prophet import PROPHET_VERSION, DefaultProphetModel, ProphetModel, load_prophet
from ml.models.trading_day import (
    AutoARIMAModel,
    AutoETSModel,
    AutoETSNoTrendModel,
    AutoThetaModel,
    MSTLModel,
    TradingDayModel,
)

__all__ = ["FORECAST_COLUMNS", "PROPHET_VERSION", "ClosedDayRule", "MSTLModel", "ProphetModel",
           "SeasonalMedian", "SeasonalNaive", "build_model", "load_prophet", "model_factories",
           "tournament_factories"]

ModelFactory = Callable[..., SeasonalNaive | ProphetModel | TradingDayModel]


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
