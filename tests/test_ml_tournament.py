"""The forecast tournament's newer parts: MSTL on the trading-day clock, the combination (the
mean of Prophet and MSTL), bands calibrated on backtest errors, metrics that survive refunds,
and a cut-short last day detected from the data."""

from datetime import time, timedelta

import numpy as np
import pandas as pd
import pytest

import ml.forecasting
from ml import intervals, metrics
from ml.backtest import COMBINATION, Champion, run_backtest
from ml.day_in_progress import DayInProgress, LastDay
from ml.forecasting import (
    MIN_HISTORY_DAYS,
    ModelState,
    SeriesTask,
    describe_too_short,
    drop_partial_last_day,
    forecast_series,
    forecast_tenant,
    last_day_is_whole,
    too_short_to_forecast,
)
from ml.models import MSTLModel, SeasonalMedian, SeasonalNaive, model_factories
from tests.test_ml_models import weekly_series

FAST = {"mstl": MSTLModel, "seasonal_naive": SeasonalNaive,
        "seasonal_median_4w": SeasonalMedian}
# The combination's members are Prophet and MSTL: with Prophet too, a backtest scores it.
WITH_PROPHET = {"prophet": model_factories(None)["prophet"], **FAST}


def test_mstl_uses_the_stores_real_week_and_forecasts_closed_days_as_zero():
    history = weekly_series(days=420, closed_weekday=6)  # closed on Sundays: a 6-day cycle
    train, test = history.iloc[:-28], history.iloc[-28:]
    model = MSTLModel().fit(train)
    assert model.season == 6
    forecast = model.predict(test["ds"])
    sundays = test["closed"].to_numpy(bool)
    assert (forecast["yhat"].to_numpy()[sundays] == 0).all()
    actual = test["y"].to_numpy(float)
    naive = SeasonalNaive().fit(train).predict(test["ds"])
    mstl_wape = metrics.wape(actual, forecast["yhat"].to_numpy(float))
    assert mstl_wape < 0.15
    assert mstl_wape < metrics.wape(actual, naive["yhat"].to_numpy(float))


def test_combination_is_the_daily_mean_of_prophet_and_mstl_and_is_scored_like_them():
    history = weekly_series(days=300, closed_weekday=6, seed=3)
    assert COMBINATION not in set(run_backtest(history, FAST, folds=2, horizon=28)
                                  .scores["model_name"])  # one member alone is no combination
    run = run_backtest(history, WITH_PROPHET, folds=3, horizon=28)
    assert set(run.scores["model_name"]) == {*WITH_PROPHET, COMBINATION}
    assert run.scores.groupby("model_name")["fold"].nunique().eq(3).all()
    daily = run.daily.set_index(["model_name", "fold", "ds"])["yhat"]
    members = np.column_stack([daily.loc[name].to_numpy() for name in ("prophet", "mstl")])
    assert np.allclose(daily.loc[COMBINATION].to_numpy(), members.mean(axis=1))
    # closed Sundays stay closed, at zero
    sundays = run.daily[(run.daily["model_name"] == COMBINATION)
                        & (pd.DatetimeIndex(run.daily["ds"]).day_of_week == 6)]
    assert len(sundays) and (sundays["yhat"] == 0).all()


def test_conformal_band_edges_follow_the_finite_sample_rule():
    errors = np.arange(1, 100, dtype=float)  # 99 errors
    edges = intervals.band_edges(errors)
    # 95%: the ceil(100 * 0.975) = 98th smallest above, the floor(100 * 0.025) = 2nd below
    assert edges[0.95] == (2.0, 98.0)
    assert edges[0.80] == (10.0, 90.0)
    assert intervals.band_edges(errors[:intervals.MIN_CALIBRATION_DAYS - 1]) is None


def test_calibrated_bands_cover_what_they_promise_in_backtests():
    """Over 30 series with noise the models do not know the size of, the 95% and 80% bands
    calibrated on the other folds cover close to 95% and 80% of the held-out days."""
    covered = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        series = weekly_series(days=250, closed_weekday=[None, 6][seed % 2], seed=seed,
                               level=float(rng.uniform(50, 5000)))
        noise = rng.lognormal(0, rng.uniform(0.05, 0.35), len(series))
        series["y"] = np.where(series["closed"], 0.0, series["y"] * noise)
        scores = run_backtest(series, {"seasonal_median_4w": SeasonalMedian}, folds=4,
                              horizon=28).scores
        covered.append(scores[["coverage_80", "coverage_95"]].mean())
    pooled = pd.DataFrame(covered).mean()
    assert 0.93 <= pooled["coverage_95"] <= 0.97, pooled
    assert 0.77 <= pooled["coverage_80"] <= 0.83, pooled


def test_the_champions_forecast_carries_its_calibrated_band_and_a_refit_reuses_it():
    history = weekly_series(days=300, closed_weekday=None, seed=7)
    task = SeriesTask("s1", "net_revenue", history, None, horizon=14, folds=3, fold_days=28)
    first = _forecast(task, FAST)
    assert first.band_edges is not None
    low, _ = first.band_edges[0.95]
    floor = metrics.mape_floor(history["y"].to_numpy(float), history["closed"].to_numpy(bool))
    yhat = first.forecast["yhat"].to_numpy(float)
    expected = np.clip(yhat + low * np.maximum(yhat, floor), 0, None)
    assert np.allclose(first.forecast["yhat_lower_95"].to_numpy(float), expected)
    assert (first.forecast["yhat_upper_95"] >= first.forecast["yhat_upper_80"]).all()
    # the daily refit skips the backtest: the band comes from the stored state
    state = ModelState(first.champion.model_name, first.model_version, first.params,
                       first.band_edges)
    refit = _forecast(SeriesTask("s1", "net_revenue", history, None, horizon=14, folds=3,
                                 fold_days=28, champion=first.champion, state=state), FAST)
    assert refit.backtests.empty and refit.band_edges == first.band_edges
    assert np.allclose(refit.forecast["yhat_lower_95"], first.forecast["yhat_lower_95"])


def test_a_combination_champion_is_refitted_as_the_mean_of_its_members_warm_started():
    history = weekly_series(days=300, closed_weekday=None, seed=11)
    champion = Champion(COMBINATION, "chosen earlier")

    def refit(state: ModelState | None):
        return _forecast(SeriesTask("s1", "orders", history, None, horizon=14, folds=3,
                                    fold_days=28, champion=champion, state=state),
                         WITH_PROPHET)

    cold = refit(None)
    future = cold.forecast["ds"]
    members = [WITH_PROPHET["prophet"]().fit(history).predict(future)["yhat"].to_numpy(),
               MSTLModel().fit(history).predict(future)["yhat"].to_numpy()]
    assert cold.model_version.startswith(f"{COMBINATION}(")
    assert np.allclose(cold.forecast["yhat"].to_numpy(), np.mean(members, axis=0))
    # what is stored for tomorrow: the members' parameters by name (MSTL has none)
    assert set(cold.params) == {"prophet"} and "k" in cold.params["prophet"]
    assert not cold.warm_started
    warm = refit(ModelState(COMBINATION, cold.model_version, cold.params))
    assert warm.warm_started and set(warm.params) == {"prophet"}
    assert np.allclose(warm.forecast["yhat"].to_numpy(), cold.forecast["yhat"].to_numpy(),
                       rtol=0.02)


def test_mape_skips_days_below_the_floor_and_refund_days():
    history = np.array([100.0, 120.0, 80.0, 0.0, 110.0])
    closed = np.array([False, False, False, True, False])
    assert metrics.mape_floor(history, closed) == pytest.approx(10.5)  # 10% of the median
    actual = np.array([100.0, -40.0, 5.0, 200.0])  # a net refund day, a near-empty day
    predicted = np.array([90.0, 100.0, 50.0, 220.0])
    assert metrics.mape(actual, predicted, floor=10.5) == pytest.approx((0.1 + 0.1) / 2)
    assert metrics.wape(actual, predicted) == pytest.approx((10 + 140 + 45 + 20) / 345)


def test_a_cut_short_last_day_is_detected_from_the_data():
    history = weekly_series(days=120, closed_weekday=None, seed=5)
    same, dropped = drop_partial_last_day(history)
    assert not dropped and len(same) == len(history)
    cut = history.copy()
    cut.loc[cut.index[-1], "y"] *= 0.3  # the export stopped at mid-morning
    trimmed, dropped = drop_partial_last_day(cut)
    assert dropped and len(trimmed) == len(history) - 1
    # UCI's export stops at 12:50 on its last Friday, with 64% of a typical Friday's sales
    cut.loc[cut.index[-1], "y"] = history["y"].iloc[-1] * 0.64
    assert drop_partial_last_day(cut)[1]
    # and the forecast then starts on the cut-short day
    result = _forecast(SeriesTask("s1", "net_revenue", cut, None, horizon=7, folds=2,
                                  fold_days=28), FAST)
    assert result.partial_day_dropped
    assert pd.Timestamp(result.forecast["ds"].iloc[0]) == pd.Timestamp(cut["ds"].iloc[-1])


def test_the_exports_times_of_day_decide_whether_the_last_day_is_learned_from(monkeypatch):
    monkeypatch.setattr(ml.forecasting, "model_factories", lambda country_code: FAST)
    history = weekly_series(days=120, closed_weekday=None, seed=5)
    last = history["ds"].iloc[-1].date()
    poor = history.copy()  # a whole day, but a poor one
    poor.loc[poor.index[-1], "y"] *= 0.3
    nearly = history.copy()  # exported at 16:00, with nine tenths of the day so far
    nearly.loc[nearly.index[-1], "y"] *= 0.9
    assert drop_partial_last_day(poor)[1] and not drop_partial_last_day(nearly)[1]
    cut_at_four = DayInProgress(last, time(16, 0), time(19, 20), reference_days=8,
                                usual_orders_after=30.0)

    def first_forecast_day(series: pd.DataFrame, last_day: LastDay | None):
        kpis = pd.DataFrame({"store_id": "s1", "day": series["ds"].dt.date,
                             "net_revenue": series["y"], "is_closed_day": series["closed"]})
        (result,) = forecast_tenant(kpis, None, horizon=7, folds=2,
                                    metrics=("net_revenue",), last_day=last_day)
        return result.forecast["ds"].iloc[0].date(), result.partial_day_dropped

    after = last + timedelta(days=1)
    # where the times of day tell, they decide: the poor day is learned from, the cut one not
    assert first_forecast_day(poor, LastDay(last, told=True)) == (after, False)
    assert first_forecast_day(nearly, LastDay(last, told=True, in_progress=cut_at_four)) \
        == (last, True)
    # where they cannot, the sales do
    assert first_forecast_day(poor, LastDay(last, told=False)) == (last, True)
    assert first_forecast_day(nearly, None) == (after, False)
    # a store without a sale yet on the day in progress ends on an earlier, whole day
    assert last_day_is_whole(history.iloc[:-1], LastDay(last, True, cut_at_four)) is True


def _forecast(task: SeriesTask, factories: dict):
    """forecast_series with a fixed set of models (the fast ones: no Prophet)."""
    import ml.forecasting

    original = ml.forecasting.model_factories
    ml.forecasting.model_factories = lambda country_code: factories
    try:
        return forecast_series(task)
    finally:
        ml.forecasting.model_factories = original


@pytest.mark.parametrize("model", ["prophet", "mstl", "seasonal_naive", "seasonal_median_4w"])
def test_a_forecast_without_bands_has_the_same_days_and_points(model):
    """Backtest folds and calibrated champions predict without the model's own band
    (Prophet's is sampled, and costly): same point forecast, same closed days, no band."""
    history = weekly_series(days=420, closed_weekday=6, seed=5)
    fitted = model_factories("GB")[model]().fit(history.iloc[:-28])
    future = history["ds"].iloc[-28:]
    banded, bare = fitted.predict(future), fitted.predict(future, bands=False)
    pd.testing.assert_series_equal(bare["yhat"], banded["yhat"])
    pd.testing.assert_series_equal(bare["is_closed_day"], banded["is_closed_day"])
    open_days = ~bare["is_closed_day"].to_numpy(bool)
    assert open_days.any() and not open_days.all()
    if model in ("prophet", "mstl"):
        assert bare.loc[open_days, "yhat_lower_95"].isna().all()
        assert metrics.coverage(history["y"].iloc[-28:].to_numpy(float),
                                bare["yhat_lower_95"].to_numpy(float),
                                bare["yhat_upper_95"].to_numpy(float)) is None
    assert (banded.loc[open_days, "yhat_upper_95"] > banded.loc[open_days, "yhat"]).all()


def test_backtest_folds_report_calibrated_coverage_without_the_models_own_bands():
    history = weekly_series(days=420, closed_weekday=None, seed=9)
    run = run_backtest(history, {"prophet": model_factories(None)["prophet"], **FAST},
                       folds=3, horizon=28)
    prophet_days = run.daily[run.daily["model_name"] == "prophet"]
    assert prophet_days["yhat_lower_95"].isna().all()  # never sampled
    prophet = run.scores[run.scores["model_name"] == "prophet"]
    assert prophet["coverage_95"].notna().all() and prophet["coverage_80"].notna().all()
    assert (prophet["coverage_95"] >= prophet["coverage_80"]).all()
    # one fold: nothing to calibrate on, so the model's own band is computed and scored
    single = run_backtest(history, {"prophet": model_factories(None)["prophet"]}, folds=1,
                          horizon=28)
    assert single.daily["yhat_lower_95"].notna().all()
    assert single.scores["coverage_95"].notna().all()


def test_a_store_is_forecast_from_three_weeks_of_sales(monkeypatch):
    """A store with fewer days is left out, by name: the seasonal baseline would forecast
    the weekdays it has not seen yet at zero, in a band of zero width."""
    monkeypatch.setattr(ml.forecasting, "model_factories", lambda country_code: FAST)
    long = weekly_series(days=120, closed_weekday=None, seed=3)
    kpis = pd.concat([
        long.tail(days).assign(store_id=store)
        for store, days in (("old", 120), ("three_weeks", MIN_HISTORY_DAYS),
                            ("new", MIN_HISTORY_DAYS - 1), ("first_day", 1))
    ]).rename(columns={"ds": "day", "y": "net_revenue", "closed": "is_closed_day"})
    results = forecast_tenant(kpis, None, horizon=7, folds=2, metrics=("net_revenue",))
    assert sorted(r.store_id for r in results) == ["old", "three_weeks"]
    assert all(len(r.forecast) == 7 for r in results)
    short = too_short_to_forecast(kpis)
    assert short == {"new": MIN_HISTORY_DAYS - 1, "first_day": 1}
    assert describe_too_short(short) == (
        f"new ({MIN_HISTORY_DAYS - 1} days), first_day (1 day): a store is forecast from "
        f"{MIN_HISTORY_DAYS} days of sales")
    many = {f"s{n}": n for n in range(1, 8)}
    assert describe_too_short(many, shown=2) == (
        f"s7 (7 days), s6 (6 days) and 5 more: a store is forecast from {MIN_HISTORY_DAYS} "
        "days of sales")
