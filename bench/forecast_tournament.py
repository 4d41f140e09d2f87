"""The forecast tournament the defaults were chosen on: every candidate, on many series.

Series: 50 generated store series of ten shapes (ingestion.generator.daily_store_series:
trend breaks, 6- and 7-day weeks, holidays, promotions, low and intermittent volume, refund
days, level shifts, growth) and, unless --skip-uci, the UCI Online Retail store (loaded and
built through the platform). Each series is backtested on 3 rolling folds of 28 days by every
candidate of ml.models.tournament_factories and by the combination (the mean of Prophet and
MSTL), with bands calibrated cross-fold (ml.intervals).

Reported per model: mean WAPE over series, mean rank, series won, MAPE above the floor,
calibrated band coverage, and seconds per fit. Then other combinations, scored on the same
folds from their members' fold forecasts (no extra fit): the mean of each pair and triple of
the better candidates (``COMBINABLE``), and means weighted by each member's WAPE on the other
folds of the series. #20 asks whether combinations win here, and which. With --holdout,
the folds end before each series' last days, and every candidate, fitted on the days before,
forecasts them: the combinations are scored there too, on days no choice was made on.

    python bench/forecast_tournament.py [--series 50] [--seeds 1] [--skip-uci]
        [--without autoarima] [--holdout 28] [--workers 2]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import announce_machine, emit_json, print_table
from ingestion.generator import daily_store_series
from ml.backtest import COMBINATION, COMBINED, combine, run_backtest
from ml.forecasting import drop_partial_last_day
from ml.models import FORECAST_COLUMNS, build_model, load_prophet, tournament_factories

# Candidates whose pairs and triples are scored as combinations: the production pair and the
# single models that came close to or beat them in these folds.
COMBINABLE = ("prophet", "mstl", "autoets", "autoets_notrend", "autotheta")
HELD_OUT = 0  # the fold number of held-out days in the day-by-day forecasts


def candidates(country: str | None, without: tuple[str, ...] = ()) -> dict:
    """The tournament's candidates, less those named in ``without``."""
    return {name: factory for name, factory in tournament_factories(country).items()
            if name not in without}


def contest(item: tuple[str, pd.DataFrame, str | None], without: tuple[str, ...] = (),
            holdout: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One series: every candidate's fold scores with the seconds the whole backtest took,
    and every candidate's forecasts day by day. With ``holdout`` days, the folds end before
    them, and each candidate is also fitted on the days before and forecasts them (fold
    ``HELD_OUT``)."""
    import warnings

    warnings.filterwarnings("ignore")  # statsforecast's ARIMA optimizer notes
    name, history, country = item
    history, _ = drop_partial_last_day(history)
    train = history.iloc[:-holdout] if holdout else history
    factories = candidates(country, without)
    started = time.perf_counter()
    run = run_backtest(train, factories, folds=3, horizon=28)
    seconds = time.perf_counter() - started
    daily = [run.daily[run.daily["model_name"] != COMBINATION]]
    if holdout:
        test = history.iloc[-holdout:]
        for model, factory in factories.items():
            forecast = build_model(factory).fit(train).predict(test["ds"], bands=False)
            daily.append(pd.DataFrame({
                "model_name": model, "fold": HELD_OUT, "ds": test["ds"].to_numpy(),
                "actual": test["y"].to_numpy(float), "yhat": forecast["yhat"].to_numpy(float),
                "predicted_closed": forecast["is_closed_day"].to_numpy(bool)}))
    columns = ["model_name", "fold", "ds", "actual", "yhat", "predicted_closed"]
    return (run.scores.assign(series=name, series_seconds=seconds),
            pd.concat([frame[columns] for frame in daily], ignore_index=True)
            .assign(series=name))


def fold_wape(actual: pd.Series, predicted: pd.Series | pd.DataFrame
              ) -> pd.Series | pd.DataFrame:
    """WAPE per series and fold of day-by-day forecasts indexed by (series, fold, ds); a
    frame of forecasts (one column per model) gives one column per model."""
    keys = ["series", "fold"]
    return (predicted.sub(actual, axis=0).abs().groupby(level=keys).sum()
            .div(actual.abs().groupby(level=keys).sum(), axis=0))


def combination_table(daily: pd.DataFrame) -> pd.DataFrame:
    """Mean WAPE over series (folds averaged per series; held-out days apart) of the
    ``COMBINABLE`` models and of combinations of them, with their members: the mean of every
    pair and triple, and the means of all candidates and of the combinable weighted by
    1 / each member's mean WAPE on the series' other backtest folds (so no fold's own result,
    and no held-out day, sets its weights)."""
    wide = daily.set_index(["series", "fold", "ds", "model_name"]).unstack("model_name")
    actual = wide["actual"].iloc[:, 0]
    singles = fold_wape(actual, wide["yhat"])
    available = [name for name in COMBINABLE if name in wide["yhat"]]
    forecasts: dict[str, tuple[tuple[str, ...], pd.Series]] = {
        name: ((name,), wide["yhat"][name]) for name in available}
    for size in (2, 3):
        for members in combinations(available, size):
            mean = combined(wide, members)["yhat"].to_numpy()
            forecasts[f"mean({', '.join(members)})"] = (members, pd.Series(mean, wide.index))
    for label, members in (("every candidate", tuple(wide["yhat"].columns)),
                           ("the combinable", tuple(available))):
        forecasts[f"weighted mean of {label}"] = (members,
                                                  weighted_mean(wide, members, singles))
    rows = []
    for name, (members, predicted) in forecasts.items():
        wapes = fold_wape(actual, predicted)
        held_out = wapes.index.get_level_values("fold") == HELD_OUT
        rows.append({"forecast": name, "members": members,
                     "mean_wape": wapes[~held_out].groupby(level="series").mean().mean(),
                     "holdout_wape": wapes[held_out].mean() if held_out.any() else np.nan})
    return pd.DataFrame(rows).set_index("forecast").sort_values("mean_wape")


def combined(wide: pd.DataFrame, members: tuple[str, ...]) -> pd.DataFrame:
    """The platform's combination (``ml.backtest.combine``) of the members' day-by-day
    forecasts in ``wide``; their bands are not kept, so each stands in for its own."""
    frames = [pd.DataFrame({"ds": wide.index.get_level_values("ds"),
                            **{column: wide["yhat"][model].to_numpy(float)
                               for column in FORECAST_COLUMNS[1:-1]},
                            "is_closed_day": wide["predicted_closed"][model].to_numpy(bool)})
              for model in members]
    return combine(frames)


def weighted_mean(wide: pd.DataFrame, members: tuple[str, ...], fold_wapes: pd.DataFrame
                  ) -> pd.Series:
    """Day by day, the members' forecasts weighted by 1 / their mean WAPE on the series'
    other backtest folds (held-out days: on all of them); a day the combination calls
    closed stays zero."""
    wapes = fold_wapes[list(members)]
    backtest = wapes.index.get_level_values("fold") != HELD_OUT
    totals = wapes[backtest].groupby(level="series").sum()
    counts = wapes[backtest].groupby(level="series").count()
    series = wapes.index.get_level_values("series")
    own = np.where(backtest[:, None], wapes.to_numpy(), 0.0)
    others = (totals.reindex(series).to_numpy() - own) \
        / (counts.reindex(series).to_numpy() - backtest[:, None])
    weights = 1 / np.clip(others, 1e-6, None)
    weights = pd.DataFrame(weights / weights.sum(axis=1, keepdims=True), wapes.index)
    per_day = weights.reindex(wide.index.droplevel("ds")).to_numpy()
    forecast = (wide["yhat"][list(members)].to_numpy(float) * per_day).sum(axis=1)
    closed = combined(wide, members)["is_closed_day"].to_numpy(bool)
    return pd.Series(np.where(closed, 0.0, forecast), wide.index)


def uci_series() -> tuple[str, pd.DataFrame, str]:
    from bench.forecast_quality import uci_daily
    from ml.forecasting import store_histories

    return "uci_online_retail", store_histories(uci_daily(), "net_revenue")["online"], "GB"


def timed_fits(without: tuple[str, ...] = ()) -> dict[str, float]:
    """Seconds per fit and 28-day prediction of each candidate, on one two-year series."""
    _, history = daily_store_series(count=1, seed=99)[0]
    seconds = {}
    for name, factory in candidates("GB", without).items():
        factory().fit(history)  # first fit pays imports and compilation
        started = time.perf_counter()
        for _ in range(3):
            factory().fit(history.iloc[:-28]).predict(history["ds"].iloc[-28:])
        seconds[name] = (time.perf_counter() - started) / 3
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50, help="generated series per seed")
    parser.add_argument("--seeds", type=int, default=1,
                        help="draws of the generated series (seeds 0 to N-1)")
    parser.add_argument("--skip-uci", action="store_true", help="generated series only")
    parser.add_argument("--without", nargs="*", default=[], metavar="MODEL",
                        help="candidates to leave out (autoarima takes most of the time)")
    parser.add_argument("--holdout", type=int, default=0, metavar="DAYS",
                        help="also hold out each series' last DAYS days (the folds end "
                             "before them) and score every forecast on them")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    without = tuple(args.without)
    unknown = set(without) - set(tournament_factories(None))
    if unknown:
        parser.error(f"no candidate named {', '.join(sorted(unknown))}; the candidates are "
                     f"{', '.join(tournament_factories(None))}")
    if set(without) & set(COMBINED):
        parser.error(f"{' and '.join(COMBINED)} make the production combination every "
                     f"figure is compared with: leave out other candidates")
    if args.seeds < 1 or args.holdout < 0:
        parser.error("--seeds takes 1 or more, --holdout 0 days or more")
    announce_machine()
    items = [(name if seed == 0 else f"s{seed}/{name}", frame, None)
             for seed in range(args.seeds)
             for name, frame in daily_store_series(args.series, seed=seed)]
    if not args.skip_uci:
        items.append(uci_series())
    load_prophet()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(partial(contest, without=without, holdout=args.holdout), items))
    wall = time.perf_counter() - started
    scores = pd.concat([scores for scores, _ in results], ignore_index=True)
    daily = pd.concat([daily for _, daily in results], ignore_index=True)

    per_series = scores.groupby(["series", "model_name"])["wape"].mean().unstack()
    ranks = per_series.rank(axis=1, method="min")
    winners = per_series.idxmin(axis=1).value_counts()
    table = pd.DataFrame({
        "mean_wape": per_series.mean(),
        "median_wape": per_series.median(),
        "mean_rank": ranks.mean(),
        "series_won": winners.reindex(per_series.columns).fillna(0).astype(int),
        "mape_above_floor": scores.groupby("model_name")["mape"].mean(),
        "coverage_80": scores.groupby("model_name")["coverage_80"].mean(),
        "coverage_95": scores.groupby("model_name")["coverage_95"].mean(),
    }).sort_values("mean_rank")
    seconds = timed_fits(without)
    table["seconds_per_fit"] = pd.Series(seconds)
    shape = per_series.index.str.replace(r"^s\d+/", "", regex=True).str.rsplit("_", n=1).str[0]
    shapes = per_series.assign(shape=shape).groupby("shape").mean()
    best_by_shape = shapes.idxmin(axis=1)

    print_table(f"{len(items)} series x 3 folds of 28 days ({wall:.0f} s with "
                f"{args.workers} workers); sorted by mean rank",
                ["model", "mean WAPE", "median WAPE", "mean rank", "won", "MAPE>floor",
                 "cover 80%", "cover 95%", "s/fit"],
                [[name, f"{r.mean_wape:.1%}", f"{r.median_wape:.1%}", f"{r.mean_rank:.2f}",
                  f"{int(r.series_won)}", f"{r.mape_above_floor:.1%}", f"{r.coverage_80:.1%}",
                  f"{r.coverage_95:.1%}",
                  "-" if pd.isna(r.seconds_per_fit) else f"{r.seconds_per_fit:.2f}"]
                 for name, r in table.iterrows()])
    print_table("best mean WAPE by series shape", ["shape", "best model", "its WAPE"],
                [[shape, model, f"{shapes.loc[shape, model]:.1%}"]
                 for shape, model in best_by_shape.items()])
    combos = combination_table(daily)
    production = combos.loc[f"mean({', '.join(COMBINED)})"]
    print_table("the combinable models and their combinations on the same folds"
                + (f" and on the last {args.holdout} days, held out" if args.holdout else "")
                + "; sorted by mean WAPE in the folds; vs: the production combination",
                ["forecast", "folds WAPE", "vs", "held-out WAPE", "vs", "s/fit of members"],
                [[name, f"{r.mean_wape:.2%}", f"{r.mean_wape - production.mean_wape:+.2%}",
                  *(["-", "-"] if pd.isna(r.holdout_wape) else
                    [f"{r.holdout_wape:.2%}", f"{r.holdout_wape - production.holdout_wape:+.2%}"]),
                  f"{sum(seconds.get(m, 0.0) for m in r.members):.2f}"]
                 for name, r in combos.iterrows()])
    figures = {"series": len(items), "folds": 3, "wall_seconds": round(wall, 1),
               "best_mean_rank_model": table.index[0],
               "combination_mean_rank": round(float(table.loc[COMBINATION, "mean_rank"]), 2),
               "combination_rank_position": int(list(table.index).index(COMBINATION)) + 1}
    for name, r in table.iterrows():
        figures[f"mean_wape_{name}"] = round(float(r.mean_wape), 4)
        figures[f"mean_rank_{name}"] = round(float(r.mean_rank), 2)
        figures[f"coverage_95_{name}"] = round(float(r.coverage_95), 3)
        figures[f"coverage_80_{name}"] = round(float(r.coverage_80), 3)
    combined = combos[combos["members"].str.len() > 1]
    figures["best_combination"] = combined.index[0]
    for name, r in combos.iterrows():
        key = re.sub(r"[^a-z]+", "_", name).strip("_")
        if len(r.members) > 1:
            figures[f"combination_wape_{key}"] = round(float(r.mean_wape), 4)
        if not pd.isna(r.holdout_wape):
            figures[f"holdout_wape_{key}"] = round(float(r.holdout_wape), 4)
    emit_json(figures)


if __name__ == "__main__":
    main()
