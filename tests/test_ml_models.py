"""Forecast models, backtests and champion selection on small synthetic series."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml import metrics
from ml.backtest import COMBINATION, backtest, choose_champion, fold_cutoffs
from ml.forecasting import SeriesTask, forecast_series, forecast_through
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


def _fold_scores(wapes: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model_name": name, "fold": fold, "horizon_days": 28, "wape": wape}
                         for name, values in wapes.items()
                         for fold, wape in enumerate(values, start=1)])


def test_the_combination_stays_champion_unless_a_model_beats_it_clearly_in_every_fold():
    # MSTL has the lowest mean WAPE, but in fold 2 it is not 5% better than the combination
    close = _fold_scores({COMBINATION: [0.20, 0.20, 0.20], "mstl": [0.15, 0.195, 0.15],
                          "seasonal_naive": [0.30, 0.30, 0.30]})
    champion = choose_champion(close)
    assert champion.model_name == COMBINATION
    assert "mstl 16.5%, beat it by more than 5% in 2 of 3 folds" in champion.reason
    # 5% better in every fold: MSTL replaces the combination
    clear = _fold_scores({COMBINATION: [0.20, 0.20, 0.20], "mstl": [0.15, 0.189, 0.15],
                          "seasonal_naive": [0.30, 0.30, 0.30]})
    champion = choose_champion(clear)
    assert champion.model_name == "mstl"
    assert champion.reason.startswith("beat the combination by more than 5% in every fold")
    # only the single model with the lowest mean is compared: here the seasonal median beat
    # the combination in every fold, MSTL (the lower mean) did not
    assert choose_champion(_fold_scores({
        COMBINATION: [0.20, 0.20, 0.20], "mstl": [0.10, 0.10, 0.30],
        "seasonal_median_4w": [0.18, 0.18, 0.18]})).model_name == COMBINATION


def test_the_champion_follows_its_backtest():
    """On weekly noise with a level step at the end: the combination unless the best single
    model beat it by more than 5% in every fold."""
    history = weekly_series(days=300, closed_weekday=None, seed=3)
    task = SeriesTask("S1", "net_revenue", history, "GB", horizon=14, folds=3, fold_days=28)
    result = forecast_series(task)
    by_fold = result.backtests.pivot_table(index="fold", columns="model_name", values="wape")
    single = by_fold.drop(columns=COMBINATION).mean().idxmin()
    clearly_better = (by_fold[single] < 0.95 * by_fold[COMBINATION]).all()
    assert result.champion.model_name == (single if clearly_better else COMBINATION)
    assert len(result.forecast) == 14
    assert result.model_version.startswith(result.champion.model_name)


def test_forecasts_reach_the_horizon_past_today_across_a_gap_in_the_data():
    last = date(2026, 3, 1)
    assert forecast_through(last, 14, None) == last + timedelta(days=14)
    # the morning after the last day: the horizon past it
    assert forecast_through(last, 14, last + timedelta(days=1)) == last + timedelta(days=14)
    # three days without a file: the gap is forecast too, and tomorrow + 13 days after it
    assert forecast_through(last, 14, last + timedelta(days=4)) == last + timedelta(days=17)
    # data older than the horizon is stale: forecasting stops at twice the horizon past it
    assert forecast_through(last, 14, last + timedelta(days=90)) == last + timedelta(days=28)
    # a "today" before the data's end (a replayed as-of date) never shortens the horizon
    assert forecast_through(last, 14, last - timedelta(days=5)) == last + timedelta(days=14)

    history = weekly_series(days=200, closed_weekday=None, seed=5)
    end = pd.to_datetime(history["ds"]).max()
    result = forecast_series(SeriesTask("S1", "net_revenue", history, "GB", horizon=14,
                                        folds=2, fold_days=14,
                                        today=(end + pd.Timedelta(days=4)).date()))
    days = pd.to_datetime(result.forecast["ds"])
    assert days.min() == end + pd.Timedelta(days=1)
    assert days.max() == end + pd.Timedelta(days=17)
    assert days.diff().dropna().eq(pd.Timedelta(days=1)).all()


def test_closed_dates_need_two_years_unless_usual_and_not_just_their_weekday():
    ds = pd.date_range("2023-01-01", "2025-03-31", freq="D")
    closed = np.asarray(ds.day_of_week == 6)  # closed on Sundays
    closed |= (ds.month == 7) & (ds.day == 4)  # every year: a learnt closed date
    closed |= (ds.month == 12) & (ds.day == 26)  # usual holiday, seen closed every time
    closed |= (ds.year == 2024) & (ds.month == 3) & (ds.day == 5)  # once: an outage, not a rule
    history = pd.DataFrame({"ds": ds, "y": np.where(closed, 0.0, 100.0), "closed": closed})
    rule = ClosedDayRule.learn(history)
    assert rule.weekdays == {6}
    # (3, 5) was open in 2023 and 2025; no date is kept for merely falling on a Sunday.
    assert rule.dates == {(7, 4), (12, 26)}
    future = pd.Series(pd.date_range("2025-07-03", periods=4))  # Thu 3 .. Sun 6 July
    assert rule.is_closed(future).tolist() == [False, True, False, True]


def test_backtest_folds_warm_start_from_the_previous_fold():
    history = weekly_series(days=200, closed_weekday=None)

    class Recorder(SeasonalNaive):
        inits: list = []

        def __init__(self, init=None):
            Recorder.inits.append(init)

        def fit(self, train):
            self.params = {"fitted_through": str(train["ds"].max().date())}
            return super().fit(train)

    warm = {"recorder": {"fitted_through": "seed"}}
    backtest(history, {"recorder": Recorder}, folds=3, horizon=28, warm_starts=warm)
    fitted_through = [str(d.date()) for d in history["ds"].iloc[[115, 143, 171]]]
    # fold 1 starts from the caller's seed, each later fold from the fold before it, and the
    # caller is left holding the last fold's parameters for its final fit
    assert [i["fitted_through"] for i in Recorder.inits] == ["seed", *fitted_through[:2]]
    assert warm["recorder"] == {"fitted_through": fitted_through[2]}


def test_warm_started_prophet_reaches_the_same_forecast():
    history = weekly_series(days=420, closed_weekday=None, seed=5)
    earlier = ProphetModel("GB").fit(history.iloc[:-28])
    assert set(earlier.params) == {"k", "m", "delta", "beta", "sigma_obs"}
    assert len(earlier.params["beta"]) > 6 and isinstance(earlier.params["k"], float)
    future = pd.Series(pd.date_range(history["ds"].max() + pd.Timedelta(days=1), periods=28))
    cold = ProphetModel("GB").fit(history).predict(future)
    warm = ProphetModel("GB", init=earlier.params).fit(history).predict(future)
    assert warm["yhat"].to_numpy() == pytest.approx(cold["yhat"].to_numpy(), rel=0.02)
    # A model whose parameters have another shape (no holidays: fewer betas) still fits.
    other = ProphetModel(None, init=earlier.params).fit(history).predict(future)
    assert other["yhat"].gt(0).all()


def test_prophet_builds_features_once_per_predict_and_predicts_exactly_as_prophet(
        monkeypatch):
    from prophet import Prophet

    from ml.models.prophet import _holidays, _prophet_class

    history = weekly_series(days=300, closed_weekday=None, seed=7)
    frame = pd.DataFrame({"ds": history["ds"], "y": history["y"]})
    fitted = []
    for cls in (Prophet, _prophet_class()):
        model = cls(seasonality_mode="multiplicative", uncertainty_samples=50)
        model.holidays = _holidays("GB", 2024, 2025)
        fitted.append(model.fit(frame.iloc[:-28], seed=1))
    builds = []
    build = Prophet.make_all_seasonality_features
    monkeypatch.setattr(Prophet, "make_all_seasonality_features",
                        lambda self, df: builds.append(type(self)) or build(self, df))
    forecasts = []
    for model in fitted:
        np.random.seed(0)
        forecasts.append(model.predict(frame[["ds"]].iloc[-28:]))
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
    assert builds == [Prophet, Prophet, type(fitted[1])]  # Prophet builds them twice
    # and nothing is kept between predictions: new dates get new features
    np.random.seed(0)
    later = fitted[1].predict(frame[["ds"]].iloc[-14:])
    assert len(later) == 14 and len(builds) == 4


def test_prophet_builds_each_component_matrix_once_and_predicts_exactly_as_prophet(
        monkeypatch):
    from prophet import Prophet

    from ml.models.prophet import _holidays, _prophet_class

    streamlined = _prophet_class()
    streamlined.component_matrices.clear()
    builds = []
    build = Prophet.regressor_column_matrix
    monkeypatch.setattr(Prophet, "regressor_column_matrix",
                        lambda self, *args: builds.append(type(self)) or build(self, *args))
    for seed in (3, 4):  # two stores: other sales, the same calendar
        history = weekly_series(days=300, closed_weekday=None, seed=seed)
        frame = pd.DataFrame({"ds": history["ds"], "y": history["y"]})
        forecasts, modes = [], []
        for cls in (Prophet, streamlined):
            model = cls(seasonality_mode="multiplicative", uncertainty_samples=50)
            model.holidays = _holidays("GB", 2024, 2025)
            model.fit(frame.iloc[:-28], seed=1)
            np.random.seed(0)
            forecasts.append(model.predict(frame[["ds"]].iloc[-28:]))
            modes.append(model.component_modes)
        pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
        assert modes[0] == modes[1] and "holidays" in modes[1]["multiplicative"]
    # Prophet builds one in fit and two in predict, per model; the subclass builds one for
    # both stores' fits and predictions (the same feature names)
    assert builds.count(Prophet) == 6
    assert builds.count(streamlined) == 1 and len(streamlined.component_matrices) == 1


def test_a_known_champion_refits_from_its_stored_state_of_the_same_version():
    from ml.backtest import Champion
    from ml.forecasting import ModelState
    from ml.models import PROPHET_VERSION

    history = weekly_series(days=420, closed_weekday=None, seed=11)
    yesterday = ProphetModel("GB").fit(history.iloc[:-1])
    champion = Champion("prophet", "lowest backtest WAPE [reused]")

    def refit(state):
        return forecast_series(SeriesTask("S1", "net_revenue", history, "GB", horizon=14,
                                          folds=3, fold_days=28, champion=champion,
                                          state=state))

    cold = refit(None)
    warm = refit(ModelState("prophet", f"prophet:{PROPHET_VERSION}", yesterday.params))
    stale = refit(ModelState("prophet", "prophet:an-older-version", yesterday.params))
    assert (cold.warm_started, warm.warm_started, stale.warm_started) == (False, True, False)
    assert warm.backtests.empty and warm.params is not None
    assert warm.forecast["yhat"].to_numpy() == pytest.approx(cold.forecast["yhat"].to_numpy(),
                                                             rel=0.02)
    # a baseline champion has nothing to store
    naive = forecast_series(SeriesTask("S1", "net_revenue", history, "GB", horizon=14, folds=3,
                                       fold_days=28, champion=Champion("seasonal_naive", "x")))
    assert naive.params is None and not naive.warm_started


def test_worker_processes_forecast_exactly_what_one_process_does():
    import gc

    from ml.forecasting import forecast_tenant

    kpis = pd.concat([
        weekly_series(days=200, seed=seed).assign(store_id=f"S{seed}")
        .rename(columns={"ds": "day", "y": "net_revenue", "closed": "is_closed_day"})
        .assign(orders=lambda f: (f["net_revenue"] / 40).round())
        for seed in (1, 2, 3)])
    alone = forecast_tenant(kpis, "GB", horizon=14, folds=2, fold_days=14, workers=1)
    spread = forecast_tenant(kpis, "GB", horizon=14, folds=2, fold_days=14, workers=2)
    assert len(alone) == len(spread) == 6
    for one, other in zip(alone, spread, strict=True):
        assert (one.store_id, one.metric, one.champion) == (other.store_id, other.metric,
                                                            other.champion)
        pd.testing.assert_frame_equal(one.forecast, other.forecast)
    assert gc.get_freeze_count() == 0  # the parent's objects are collectable again


def test_prophet_knows_the_holidays_the_anomaly_detector_knows():
    from datetime import date

    from ml.calendar import public_holidays
    from ml.models.prophet import _holidays

    frame = _holidays("GB", 2024, 2025)
    assert set(frame["ds"].dt.date) == set(public_holidays("GB", (2024, 2025)))
    # England's Easter Monday and August bank holiday are not in GB's national calendar
    assert {date(2024, 3, 31), date(2024, 4, 1), date(2024, 8, 26)} <= set(frame["ds"].dt.date)
    assert _holidays("XX", 2024, 2025) is None  # unknown country: no holidays


def test_prophet_builds_holiday_features_exactly_as_prophet():
    from prophet import Prophet

    from ml.models.prophet import _holidays, _prophet_class

    calendar = _holidays("GB", 2023, 2025)
    fit_dates = pd.Series(pd.date_range("2023-01-01", "2024-12-31"))
    window = pd.Series(pd.date_range("2025-04-10", "2025-05-10"))  # Easter, May Day only
    built = []
    for cls in (Prophet, _prophet_class()):
        model = cls(holidays=calendar)
        fitted = model.make_holiday_features(fit_dates, model.construct_holiday_dataframe(
            fit_dates))
        later = model.make_holiday_features(window, model.construct_holiday_dataframe(window))
        built.append((fitted, later, list(model.train_holiday_names)))
    for ours, theirs in zip(built[1][:2], built[0][:2], strict=True):
        pd.testing.assert_frame_equal(ours[0], theirs[0])
        assert ours[1:] == theirs[1:]
    assert built[1][2] == built[0][2]
    easter = built[1][1][0]
    assert easter.to_numpy().sum() == 4  # Good Friday, Easter Sunday and Monday, May Day


def test_prophet_builds_fourier_terms_exactly_as_prophet():
    from prophet import Prophet

    from ml.models.prophet import _prophet_class

    dates = pd.Series(pd.date_range("2023-01-01", periods=800, freq="D"))
    for period, order in ((7, 3), (365.25, 10)):
        ours = _prophet_class().fourier_series(dates, period, order)
        assert np.array_equal(ours, Prophet.fourier_series(dates, period, order))
    with pytest.raises(ValueError):
        _prophet_class().fourier_series(dates, 7, 0)


def test_outliers_are_judged_against_the_same_weekday():
    from ml.models.base import clip_outliers

    history = weekly_series(days=140, closed_weekday=None)
    y = history["y"].to_numpy(float)
    # A strong weekday (Saturdays sell 1.5x) is the pattern, not an outlier.
    np.testing.assert_array_equal(clip_outliers(y, 7), y)
    # A promotion starting on the last day is pulled back near that weekday's usual level.
    promoted = y.copy()
    promoted[-1] *= 2.0
    clipped = clip_outliers(promoted, 7)
    usual = np.median(y[-29:-1:7])
    assert clipped[-1] < 1.5 * usual
    np.testing.assert_array_equal(clipped[:-1], y[:-1])
    # A lasting change of level is the new level once it has lasted a few cycles.
    shifted = np.where(np.arange(len(y)) >= 70, y * 1.6, y)
    np.testing.assert_array_equal(clip_outliers(shifted, 7)[-50:], shifted[-50:])
    # Closed days (NaN) stay NaN and do not count.
    gaps = y.copy()
    gaps[5::7] = np.nan
    clipped = clip_outliers(gaps, 7)
    assert np.isnan(clipped[5::7]).all()
    np.testing.assert_array_equal(clipped[~np.isnan(gaps)], y[~np.isnan(gaps)])


@pytest.mark.parametrize("model_name", ["mstl", "prophet"])
def test_a_promotion_on_the_last_day_does_not_lift_the_next_month(model_name):
    from ingestion.generator import daily_store_series
    from ml.models import model_factories

    # The generated store whose history ends on the first day of a promotion (1.85x its usual
    # Saturday), where the champion did worst against the best single model (BENCHMARKS.md).
    name, series = daily_store_series(15, seed=0)[14]
    assert name == "promotions_14"
    history, future = series.iloc[:-28], series["ds"].iloc[-28:]
    forecast = model_factories(None)[model_name]().fit(history).predict(future, bands=False)
    recent = history["y"].iloc[-29:-1].mean()
    # Judged against plain weekdays, that day is clipped: the month ahead is forecast near
    # the recent level. Clipped against the month around it, as before, MSTL forecast 1.54
    # times the recent level and Prophet 1.32.
    assert forecast["yhat"].mean() < 1.25 * recent
