"""Forecast every store series of a tenant: backtest, pick the champion, forecast ahead."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml import intervals
from ml.backtest import COMBINATION, COMBINED, Champion, choose_champion, combine, run_backtest
from ml.day_in_progress import LastDay
from ml.metrics import mape_floor
from ml.models import build_model, load_prophet, model_factories

METRICS = ("net_revenue", "orders")


@dataclass(frozen=True)
class ModelState:
    """A series' champion as last fitted: its parameters seed the next refit's optimizer."""

    model_name: str
    model_version: str
    params: dict | None
    # The champion's band, calibrated on its backtest errors (ml.intervals)
    band_edges: dict[float, tuple[float, float]] | None = None


@dataclass
class SeriesResult:
    store_id: str
    metric: str
    forecast: pd.DataFrame
    backtests: pd.DataFrame
    champion: Champion
    model_version: str
    # The champion's fitted parameters (None for the baselines; for the combination, its
    # members' by name): tomorrow's refit starts here.
    params: dict | None = None
    warm_started: bool = False
    band_edges: dict[float, tuple[float, float]] | None = None
    partial_day_dropped: bool = False


@dataclass(frozen=True)
class SeriesTask:
    store_id: str
    metric: str
    history: pd.DataFrame
    country_code: str | None
    horizon: int
    folds: int
    fold_days: int
    # A champion chosen by a recent backtest: refit it and skip the backtest (daily refresh).
    champion: Champion | None = None
    # The series' last fitted champion: a refit of the same model and version starts there.
    state: ModelState | None = None
    # The forecast runs ``horizon`` days past the later of the last data day and yesterday
    # (None: past the last data day), so a refresh on a day with no new file still reaches
    # ``horizon`` days ahead.
    today: date | None = None
    # Whether the last day is whole, as the export's times of day tell (ml.day_in_progress);
    # None: they cannot tell, and the sales must (drop_partial_last_day).
    last_day_whole: bool | None = None


def forecast_through(last_day: date, horizon: int, today: date | None) -> date:
    """The last day to forecast: ``horizon`` days past yesterday, or past the last data day
    when that is later. Days between the data and today are forecast too (a late file is
    still a day to plan for), but at most ``horizon`` of them: data older than that is stale
    (stale_data_sensor says so), and forecasting further from it would be guesswork."""
    if today is None:
        return last_day + timedelta(days=horizon)
    reached = min(today - timedelta(days=1), last_day + timedelta(days=horizon))
    return max(last_day, reached) + timedelta(days=horizon)


# A store is forecast once it has three weeks of days: each weekday seen three times, and
# enough week-apart differences for the seasonal baseline's band. With less, the baseline
# would repeat the few days there are (a weekday not seen yet forecast at zero) inside a band
# of zero width.
MIN_HISTORY_DAYS = 21


def too_short_to_forecast(daily_kpis: pd.DataFrame) -> dict[str, int]:
    """Stores with fewer than ``MIN_HISTORY_DAYS`` days in the marts, and how many they have:
    ``forecast_tenant`` leaves them out until they have enough."""
    if daily_kpis.empty:
        return {}
    days = daily_kpis.groupby("store_id")["day"].nunique()
    return {str(store): int(n) for store, n in days[days < MIN_HISTORY_DAYS].items()}


def describe_too_short(short: dict[str, int], shown: int = 5) -> str:
    """The stores not forecast yet, for a person reading a run."""
    if not short:
        return "none: every store has enough days to forecast"
    stores = sorted(short.items(), key=lambda item: (-item[1], item[0]))
    named = ", ".join(f"{store} ({days} day{'s' if days != 1 else ''})"
                      for store, days in stores[:shown])
    more = f" and {len(stores) - shown} more" if len(stores) > shown else ""
    return f"{named}{more}: a store is forecast from {MIN_HISTORY_DAYS} days of sales"


def store_histories(daily_kpis: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """Per store: the ds / y / closed history that models take, from mart_daily_store_kpis."""
    out = {}
    for store_id, rows in daily_kpis.sort_values("day").groupby("store_id"):
        out[store_id] = pd.DataFrame({
            "ds": pd.to_datetime(rows["day"]).to_numpy(),
            "y": rows[metric].astype(float).to_numpy(),
            "closed": rows["is_closed_day"].astype(bool).to_numpy(),
        })
    return out


# A day cut short by the export is often well past half its usual sales (UCI's last day
# stops at 12:50 with 64% of a typical Friday); a complete day so far below its weekday's
# median is rare, and forecasting it instead of learning from it costs little.
PARTIAL_DAY_SHARE = 0.75


def drop_partial_last_day(history: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The history without its last day when that day looks cut short: an export taken
    during trading leaves the last day with part of its sales. Told by the sales, for exports
    whose times of day cannot tell (``last_day_is_whole``): a last trading day below three
    quarters of the median of the same weekday over the four weeks before. It is then
    forecast like a future day instead of teaching the models a collapse."""
    if len(history) < 29 or bool(history["closed"].iloc[-1]):
        return history, False
    y = history["y"].to_numpy(float)
    closed = history["closed"].to_numpy(bool)
    same_weekday = np.arange(len(y) - 8, len(y) - 29, -7)
    reference = y[same_weekday][~closed[same_weekday]]
    if len(reference) < 2 or np.median(reference) <= 0:
        return history, False
    if y[-1] < PARTIAL_DAY_SHARE * np.median(reference):
        return history.iloc[:-1], True
    return history, False


def last_day_is_whole(history: pd.DataFrame, last_day: LastDay | None) -> bool | None:
    """Whether a store's last day is whole, as the tenant's export tells by its times of day:
    not when it is the tenant's day in progress. None when the times cannot tell."""
    if last_day is None or not last_day.told or history.empty:
        return None
    return (last_day.in_progress is None
            or pd.Timestamp(history["ds"].iloc[-1]) != pd.Timestamp(last_day.in_progress.day))


def describe_last_day(last_day: LastDay | None) -> str:
    """What the forecasts made of the tenant's last day, for a person reading a run."""
    if last_day is None:
        return "no sales yet"
    if last_day.in_progress is not None:
        return f"{last_day.day} forecast, not learned from: {last_day.in_progress.reason()}"
    if last_day.told:
        return (f"{last_day.day} learned from: its sales went on as late as on earlier "
                f"{last_day.day:%A}s")
    return (f"{last_day.day}: the export's times of day cannot tell whether it is whole, so its "
            f"sales do (a store's last day under {PARTIAL_DAY_SHARE:.0%} of its weekday's "
            f"median is forecast, not learned from)")


def _without_partial_last_day(task: SeriesTask) -> tuple[pd.DataFrame, bool]:
    if task.last_day_whole is None:
        return drop_partial_last_day(task.history)
    if task.last_day_whole or len(task.history) < 2:  # a store's first day stays: it is all
        return task.history, False
    return task.history.iloc[:-1], True


def forecast_series(task: SeriesTask) -> SeriesResult:
    """Backtest (unless a recent champion is known), then fit the champion on the whole history
    and forecast ``horizon`` days ahead, with the band calibrated on its backtest errors.

    Warm starts never cross the backtest's cutoffs: folds start from the previous fold, and
    only the refit of a known champion starts from its stored state (fitted on yesterday's
    history, which the forecast is allowed to see).
    """
    factories = model_factories(task.country_code)
    history, partial = _without_partial_last_day(task)
    warm: dict[str, dict] = {}
    edges = None
    if task.champion is not None and (task.champion.model_name in factories
                                      or task.champion.model_name == COMBINATION):
        results, champion = pd.DataFrame(), task.champion
        state = task.state
        version = _version(champion.model_name, factories)
        if state and (state.model_name, state.model_version) == (champion.model_name, version):
            if state.params:
                warm.update(state.params if champion.model_name == COMBINATION
                            else {champion.model_name: state.params})
            edges = state.band_edges
    else:
        run = run_backtest(history, factories, folds=task.folds, horizon=task.fold_days,
                           warm_starts=warm)
        results = run.scores
        champion = choose_champion(results)
        edges = run.band_edges(champion.model_name) if not results.empty else None
    last = pd.to_datetime(history["ds"]).max()
    through = forecast_through(last.date(), task.horizon, task.today)
    future = pd.Series(pd.date_range(last + pd.Timedelta(days=1), through))
    members = [champion.model_name] if champion.model_name != COMBINATION else \
        [name for name in COMBINED if name in factories]
    warm_started = task.champion is not None and any(name in warm for name in members)
    forecasts, fitted = [], {}
    for name in members:
        model = build_model(factories[name], warm.get(name))
        model.fit(history)
        # A calibrated band replaces the model's own, so it is only computed without one.
        forecasts.append(model.predict(future, bands=not edges))
        if model.params:
            fitted[name] = model.params
    forecast = forecasts[0] if len(forecasts) == 1 else combine(forecasts)
    params = fitted.get(champion.model_name) if champion.model_name != COMBINATION \
        else fitted or None
    if edges:
        forecast = intervals.apply_band(forecast, edges, mape_floor(
            history["y"].to_numpy(float), history["closed"].to_numpy(bool)))
    return SeriesResult(task.store_id, task.metric, forecast, results, champion,
                        _version(champion.model_name, factories), params,
                        warm_started=warm_started,
                        band_edges=edges, partial_day_dropped=partial)


def _version(model_name: str, factories: dict) -> str:
    if model_name == COMBINATION:
        members = "+".join(f"{name}:{factories[name]().version}" for name in COMBINED
                           if name in factories)
        return f"{COMBINATION}({members})"
    return f"{model_name}:{factories[model_name]().version}"


def forecast_tenant(daily_kpis: pd.DataFrame, country_code: str | None, horizon: int = 30,
                    folds: int = 3, fold_days: int = 28, metrics: tuple[str, ...] = METRICS,
                    workers: int = 1,
                    known_champions: Mapping[tuple[str, str], Champion] | None = None,
                    model_states: Mapping[tuple[str, str], ModelState] | None = None,
                    today: date | None = None, last_day: LastDay | None = None
                    ) -> list[SeriesResult]:
    """Every store x metric series of a store with ``MIN_HISTORY_DAYS`` days or more
    (``too_short_to_forecast`` names the others); ``workers`` > 1 spreads series over
    processes.

    ``known_champions`` ((store, metric) -> champion of a recent backtest) skips the backtest
    of those series: the champion is refitted on the full history and forecasts ahead. New
    stores, and series without one, are backtested as usual. ``model_states`` (the last fitted
    parameters per series) warm-start those refits. ``today`` (the tenant's date) extends
    the forecast past a gap in the data (see ``forecast_through``). ``last_day`` (what the
    export's times of day tell, ``ml.day_in_progress.read_last_day``) says whether the last
    day is whole; without it, or where the times cannot tell, each series' sales say.
    """
    known, states = known_champions or {}, model_states or {}
    short = too_short_to_forecast(daily_kpis)
    tasks = [SeriesTask(store, metric, history, country_code, horizon, folds, fold_days,
                        known.get((store, metric)), states.get((store, metric)), today,
                        last_day_is_whole(history, last_day))
             for metric in metrics
             for store, history in store_histories(daily_kpis, metric).items()
             if store not in short]
    if workers <= 1 or len(tasks) <= 1:
        return [forecast_series(task) for task in tasks]
    if any(task.champion is None or task.champion.model_name == "prophet" for task in tasks):
        load_prophet()
    # Forked workers share the parent's memory until they write to it, and the garbage
    # collector in each would write to every object it visits, copying much of the parent's
    # heap. Frozen objects are left alone (Python's docs advise gc.freeze before fork).
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(forecast_series, tasks))
    finally:
        gc.unfreeze()
