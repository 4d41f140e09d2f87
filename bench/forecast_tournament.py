"""The forecast tournament the defaults were chosen on: every candidate, on many series.

Series: 50 generated store series of ten shapes (ingestion.generator.daily_store_series:
trend breaks, 6- and 7-day weeks, holidays, promotions, low and intermittent volume, refund
days, level shifts, growth) and, unless --skip-uci, the UCI Online Retail store (loaded and
built through the platform). Each series is backtested on 3 rolling folds of 28 days by every
candidate of ml.models.tournament_factories and by the combination (the mean of Prophet and
MSTL), with bands calibrated cross-fold (ml.intervals).

Reported per model: mean WAPE over series, mean rank, series won, MAPE above the floor,
calibrated band coverage, and seconds per fit.

    python bench/forecast_tournament.py [--series 50] [--skip-uci] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import announce_machine, emit_json, print_table
from ingestion.generator import daily_store_series
from ml.backtest import COMBINATION, run_backtest
from ml.forecasting import drop_partial_last_day
from ml.models import load_prophet, tournament_factories


def contest(item: tuple[str, pd.DataFrame, str | None]) -> pd.DataFrame:
    """One series: every candidate's fold scores, and the seconds the whole backtest took."""
    import warnings

    warnings.filterwarnings("ignore")  # statsforecast's ARIMA optimizer notes
    name, history, country = item
    history, _ = drop_partial_last_day(history)
    started = time.perf_counter()
    scores = run_backtest(history, tournament_factories(country), folds=3, horizon=28).scores
    return scores.assign(series=name, series_seconds=time.perf_counter() - started)


def uci_series() -> tuple[str, pd.DataFrame, str]:
    from bench.forecast_quality import uci_daily
    from ml.forecasting import store_histories

    return "uci_online_retail", store_histories(uci_daily(), "net_revenue")["online"], "GB"


def timed_fits() -> dict[str, float]:
    """Seconds per fit and 28-day prediction of each candidate, on one two-year series."""
    _, history = daily_store_series(count=1, seed=99)[0]
    seconds = {}
    for name, factory in tournament_factories("GB").items():
        factory().fit(history)  # first fit pays imports and compilation
        started = time.perf_counter()
        for _ in range(3):
            factory().fit(history.iloc[:-28]).predict(history["ds"].iloc[-28:])
        seconds[name] = (time.perf_counter() - started) / 3
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50, help="generated series")
    parser.add_argument("--skip-uci", action="store_true", help="generated series only")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    announce_machine()
    items = [(name, frame, None) for name, frame in daily_store_series(args.series, seed=0)]
    if not args.skip_uci:
        items.append(uci_series())
    load_prophet()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        scores = pd.concat(pool.map(contest, items), ignore_index=True)
    wall = time.perf_counter() - started

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
    seconds = timed_fits()
    table["seconds_per_fit"] = pd.Series(seconds)
    shapes = per_series.assign(shape=per_series.index.str.rsplit("_", n=1).str[0]) \
        .groupby("shape").mean()
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
    figures = {"series": len(items), "folds": 3, "wall_seconds": round(wall, 1),
               "best_mean_rank_model": table.index[0],
               "combination_mean_rank": round(float(table.loc[COMBINATION, "mean_rank"]), 2),
               "combination_rank_position": int(list(table.index).index(COMBINATION)) + 1}
    for name, r in table.iterrows():
        figures[f"mean_wape_{name}"] = round(float(r.mean_wape), 4)
        figures[f"mean_rank_{name}"] = round(float(r.mean_rank), 2)
        figures[f"coverage_95_{name}"] = round(float(r.coverage_95), 3)
        figures[f"coverage_80_{name}"] = round(float(r.coverage_80), 3)
    emit_json(figures)


if __name__ == "__main__":
    main()
