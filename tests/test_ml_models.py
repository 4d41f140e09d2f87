"""Forecast models, backtests and champion selection on small synthetic series."""

import numpy as np
import pandas as pd
import pytest

from ml import metrics
from ml.backtest import backtest, choose_champion, fold_cutoffs
from ml.forecasting import SeriesTask, forecast_series
from ml.models import ClosedDayRule, ProphetModel, SeasonalMedian, SeasonalNaive


def weekly_series(days: int = 400, closed_weekday: int | None = 5, seed: int = 0,
                  level: float = 1000.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days, freq="D")
    weekly = np.array([0.8, 0.9, 1.0, 1.0, 1.2, 1.5, 1.1])[ds.day_of_week]
    trend = 1 + 0.3 * np.arange(days) / days
    y = level * weekly * trend * rng.lognormal(0, 0.08, days)
    closed = np.zeros(days, dtype=bool)
    if closed_weekday is not None:
        closed = ds.day_of_week == closed_weekday
    closed |= (ds.month == 12) & (ds.day == 25)
    y = np.where(closed, 0.0, y)
    return pd.DataFrame({"ds": ds, "y": y, "closed": closed})


def test_metrics_by_hand():
    actual = np.array([100.0, 0.0, 50.0])
    predicted = np.array([90.0, 10.0, 60.0])
    assert metrics.mape(actual, predicted) == pytest.approx((0.1 + 0.2) / 2)  # zeros skipped
    assert metrics.wape(actual, predicted) == pytest.approx(30 / 150)
    assert metrics.smape(actual, predicted) == pytest.approx(
        np.mean([20 / 190, 2.0, 20 / 110]))
    assert metrics.coverage(actual, predicted - 5, predicted + 5) == 0.0
    assert metrics.coverage(actual, predicted - 15, predicted + 15) == 1.0
    history = np.arange(14, dtype=float)
    assert metrics.mase(actual, predicted, history) == pytest.approx(10 / 7)


def test_closed_days_are_learnt_not_fitted_and_forecast_as_zero():
    history = weekly_series(closed_weekday=5)  # closed on Saturdays, like the UCI retailer
    rule = ClosedDayRule.learn(history)
    assert rule.weekdays == {5}
    assert (12, 25) in rule.dates
    model = ProphetModel(country_code="GB").fit(history)
    # Saturdays were dropped from the fit: Prophet saw only trading days.
    fitted = model.model.history
    assert (pd.to_datetime(fitted["ds"]).dt.day_of_week != 5).all()
    future = pd.Series(pd.date_range(history["ds"].max() + pd.Timedelta(days=1), periods=28))
    forecast = model.predict(future)
    saturdays = forecast[pd.to_datetime(forecast["ds"]).dt.day_of_week == 5]
    assert len(saturdays) == 4
    assert saturdays["is_closed_day"].all()
    assert (saturdays[["yhat", "yhat_lower_95", "yhat_upper_95"]] == 0).all().all()
    trading = forecast[~forecast["is_closed_day"]]
    # Zero Saturdays did not drag the level down: Fridays forecast near their recent level.
    recent_fridays = history[pd.to_datetime(history["ds"]).dt.day_of_week == 4].tail(4)["y"]
    fridays = trading[pd.to_datetime(trading["ds"]).dt.day_of_week == 4]["yhat"]
    assert fridays.mean() == pytest.approx(recent_fridays.mean(), rel=0.25)
    # Intervals nest: 95% contains 80% contains the point.
    assert (trading["yhat_lower_95"] <= trading["yhat_lower_80"]).all()
    assert (trading["yhat_lower_80"] <= trading["yhat"]).all()
    assert (trading["yhat"] <= trading["yhat_upper_80"]).all()
    assert (trading["yhat_upper_80"] <= trading["yhat_upper_95"]).all()


def test_baselines():
    history = weekly_series(days=120, closed_weekday=None)
    future = pd.Series(pd.date_range(history["ds"].max() + pd.Timedelta(days=1), periods=14))
    naive = SeasonalNaive().fit(history).predict(future)
    last_week = history.tail(7)
    by_weekday = last_week.set_index(last_week["ds"].dt.day_of_week)["y"]
    assert naive["yhat"].tolist()[:7] == pytest.approx(
        [by_weekday[d.day_of_week] for d in future[:7]])
    assert naive["yhat"].tolist()[7:] == naive["yhat"].tolist()[:7]
    median = SeasonalMedian().fit(history).predict(future)
    monday_values = history[history["ds"].dt.day_of_week == 0].tail(4)["y"]
    first_monday = median[pd.to_datetime(median["ds"]).dt.day_of_week == 0]["yhat"].iloc[0]
    assert first_monday == pytest.approx(float(np.median(monday_values)))


def test_backtest_is_rolling_origin_and_never_peeks():
    history = weekly_series(days=200, closed_weekday=None)
    assert fold_cutoffs(history, 3, 28) == [116, 144, 172]

    class Spy(SeasonalNaive):
        seen: list = []

        def fit(self, train):
            Spy.seen.append(train["ds"].max())
            return super().fit(train)

    results = backtest(history, {"spy": Spy}, folds=3, horizon=28)
    assert list(results["fold"]) == [1, 2, 3]
    for cutoff, seen in zip(results["cutoff"], Spy.seen, strict=True):
        assert pd.Timestamp(seen) < pd.Timestamp(cutoff)  # trained strictly before the fold
    assert results["horizon_days"].eq(28).all()


def test_champion_is_lowest_wape_with_reason():
    results = pd.DataFrame({
        "model_name": ["prophet", "prophet", "seasonal_naive", "seasonal_naive"],
        "fold": [1, 2, 1, 2], "horizon_days": [28] * 4, "wape": [0.20, 0.30, 0.18, 0.22]})
    champion = choose_champion(results)
    assert champion.model_name == "seasonal_naive"
    assert "20.0%" in champion.reason and "prophet 25.0%" in champion.reason
    assert "2 folds of 28 days" in champion.reason


def test_a_model_that_loses_to_the_baseline_is_not_used():
    """On pure weekly noise with a level step at the end, the champion must win its backtest."""
    history = weekly_series(days=300, closed_weekday=None, seed=3)
    task = SeriesTask("S1", "net_revenue", history, "GB", horizon=14, folds=3, fold_days=28)
    result = forecast_series(task)
    means = result.backtests.groupby("model_name")["wape"].mean()
    assert result.champion.model_name == means.idxmin()
    assert len(result.forecast) == 14
    assert result.model_version.startswith(result.champion.model_name)
