"""Forecast and anomaly quality, measured honestly.

1. UCI Online Retail through the platform (load, dbt): daily net revenue of its one store.
   The partial last day is dropped (detected from the data) and the last 28 complete days are
   held out. The champion is chosen on three rolling folds before them, as the platform
   chooses it; every model and the champion are fitted on the days before only. Targets (#20):
   the champion's MAPE (days above the revenue floor) under 15% and WAPE under 16%. For
   scale, the held-out days are also fitted by themselves after the fact (``hindsight_fit``).
2. The generated sample (seed 42, the demo's): planted anomalies recalled >= 90% with
   precision >= 85%, scored against the generator's ground truth; a flag in one of the
   generator's promotion weeks (a real sustained rise it made on purpose) counts neither
   way.
   UCI with four events planted into its daily KPIs (outage, tripled quantities, a week with
   60% of the orders gone, a slide to a third), scored by what the planting changed; and UCI
   as it is: anomalies per store per month at each severity, none on a UK public holiday.
3. The champion on the last 28 days of 50 generated store series of ten shapes, against the
   best single model of each series (``generated_worst_gap_to_best``); other rules of choice
   on the same backtests; and all of it again on 250 series (four more seeds), so that no
   rule is judged on one draw (``generated_250_*``).
4. Calibrated band coverage of every model in the backtests of every series of both datasets.

    python bench/forecast_quality.py
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anomaly_scoring import score_against_truth, score_planted
from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from bench.dbt_build import dbt_build
from ingestion.generator import (
    DEMO_TENANTS,
    PlantedAnomaly,
    daily_store_series,
    generate_sample,
    load_ground_truth,
    load_promotions,
    plant_into_daily_kpis,
)
from ingestion.landing import ingest_tenant
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from ml import intervals, metrics
from ml.anomalies import detect_tenant
from ml.backtest import (
    COMBINATION,
    COMBINED,
    SINGLE_MODEL_MARGIN,
    backtest,
    choose_champion,
    combine,
    run_backtest,
)
from ml.calendar import public_holidays
from ml.forecasting import drop_partial_last_day, forecast_tenant, store_histories
from ml.models import build_model, load_prophet, model_factories
from ml.tables import read_daily_kpis
from storepulse.tenants import Tenant, add_tenant

HOLDOUT = 28
# Seeds of daily_store_series besides the demo's 0: a rule that looks best on 50 series may
# owe it to that draw, so every rule is also scored on 250.
MORE_SEEDS = (1, 2, 3, 4)


UCI_EVENTS = [
    PlantedAnomaly("uci", "online", "outage", date(2011, 3, 9), date(2011, 3, 9), 0.0, ""),
    PlantedAnomaly("uci", "online", "spike", date(2011, 5, 19), date(2011, 5, 19), 3.0, ""),
    PlantedAnomaly("uci", "online", "drop", date(2011, 7, 4), date(2011, 7, 10), 0.4, ""),
    PlantedAnomaly("uci", "online", "decline", date(2011, 9, 5), date(2011, 9, 25), 0.35, ""),
]
SEVERITIES = ("critical", "high", "medium", "low")


def uci_daily() -> pd.DataFrame:
    with scratch_database() as (url, engine):
        add_tenant(engine, Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB"))
        load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
        dbt_build(url)
        with engine.connect() as conn:
            return read_daily_kpis(conn, "uci")


def uci_holdout(kpis: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout of every model and the champion, and the folds before it (model choice)."""
    history = store_histories(kpis, "net_revenue")["online"]
    scores = holdout(("uci_online_retail", history, "GB"))
    trimmed, _ = drop_partial_last_day(history)
    before = backtest(trimmed.iloc[:-HOLDOUT], model_factories("GB"), folds=3, horizon=HOLDOUT)
    return scores, before


def hindsight_fit(history: pd.DataFrame) -> tuple[float, float]:
    """MAPE and WAPE of the held-out trading days fitted by themselves: a level for each week
    times a weekday profile, least squares on logs, after the fact. No forecast made before
    those days can be expected to beat it; it tells the day-to-day noise of the data from
    the models' errors."""
    history, _ = drop_partial_last_day(history)
    floor = metrics.mape_floor(history["y"].iloc[:-HOLDOUT].to_numpy(float),
                               history["closed"].iloc[:-HOLDOUT].to_numpy(bool))
    test = history.iloc[-HOLDOUT:]
    test = test[~test["closed"].to_numpy(bool) & (test["y"] > 0)]
    ds = pd.DatetimeIndex(test["ds"])
    weeks = (ds - ds[0]).days // 7
    design = pd.get_dummies(pd.DataFrame({"weekday": ds.day_of_week, "week": weeks})
                            .astype(str), drop_first=True).astype(float)
    design.insert(0, "level", 1.0)
    actual = test["y"].to_numpy(float)
    coefficients, *_ = np.linalg.lstsq(design.to_numpy(), np.log(actual), rcond=None)
    fitted = np.exp(design.to_numpy() @ coefficients)
    return metrics.mape(actual, fitted, floor), metrics.wape(actual, fitted)


def uci_anomalies(kpis: pd.DataFrame) -> tuple[dict, dict]:
    """Planted-event scores, and UCI as it is: flags per store-month by severity."""
    untouched = detect_tenant(kpis, "uci", "GBP", country_code="GB")
    found = detect_tenant(plant_into_daily_kpis(kpis, UCI_EVENTS), "uci", "GBP",
                          country_code="GB")
    scores = score_planted(found.assign(tenant_id="uci"), untouched,
                           pd.DataFrame([e.__dict__ for e in UCI_EVENTS]))
    months = pd.to_datetime(kpis["day"]).dt.to_period("M").nunique()
    per_month = {level: float((untouched["severity"] == level).sum()) / months
                 for level in SEVERITIES}
    calendar = public_holidays("GB", (2010, 2011))
    per_month["on_holidays"] = int(untouched["day"].isin(calendar).sum())
    return scores, per_month


def holdout(item: tuple[str, pd.DataFrame, str | None]) -> pd.DataFrame:
    """One series as the platform treats it: the champion chosen on 3 rolling folds before
    the last HOLDOUT days, then every production model, the combination and the champion
    fitted on those earlier days and scored on the held-out ones, with bands calibrated on
    their own backtest errors. One row per model, and one for the champion."""
    import warnings

    warnings.filterwarnings("ignore")
    name, history, country = item
    history, _ = drop_partial_last_day(history)
    train, test = history.iloc[:-HOLDOUT], history.iloc[-HOLDOUT:]
    factories = model_factories(country)
    run = run_backtest(train, factories, folds=3, horizon=HOLDOUT)
    champion = choose_champion(run.scores).model_name
    forecasts = {model: build_model(factory).fit(train).predict(test["ds"])
                 for model, factory in factories.items()}
    forecasts[COMBINATION] = combine([forecasts[m] for m in COMBINED if m in forecasts])
    actual = test["y"].to_numpy(float)
    chosen_on = run.scores.groupby("model_name")["wape"].mean()
    by_fold = run.scores.pivot_table(index="fold", columns="model_name", values="wape")
    rows = []
    for model, forecast in forecasts.items():
        edges = run.band_edges(model)
        if edges:
            forecast = intervals.apply_band(forecast, edges, run.floor)
        rows.append({"series": name, "model_name": model,
                     "backtest_wape": chosen_on.get(model),
                     "beat_combination_every_fold": bool(
                         model in by_fold and COMBINATION in by_fold
                         and (by_fold[model] < by_fold[COMBINATION]).all()),
                     "mape": metrics.mape(actual, forecast["yhat"].to_numpy(float), run.floor),
                     "wape": metrics.wape(actual, forecast["yhat"].to_numpy(float)),
                     **{f"coverage_{level}": metrics.coverage(
                         actual, forecast[f"yhat_lower_{level}"].to_numpy(float),
                         forecast[f"yhat_upper_{level}"].to_numpy(float))
                        for level in (80, 95)}})
    rows.append({**next(r for r in rows if r["model_name"] == champion),
                 "model_name": "champion", "champion": champion})
    return pd.DataFrame(rows)


def holdout_table(frame: pd.DataFrame) -> list[list]:
    summary = frame.groupby("model_name")[["mape", "wape", "coverage_80", "coverage_95"]].mean()
    return [[model, f"{r.mape:.1%}", f"{r.wape:.1%}", f"{r.coverage_80:.0%}",
             f"{r.coverage_95:.0%}"] for model, r in summary.sort_values("wape").iterrows()]


def champion_gaps(frame: pd.DataFrame) -> pd.Series:
    """Per series, how much worse (relative WAPE) the champion did than the best single
    model on the held-out days."""
    singles = frame[~frame["model_name"].isin(["champion", COMBINATION])]
    best = singles.groupby("series")["wape"].min()
    champion = frame[frame["model_name"] == "champion"].set_index("series")["wape"]
    return (champion / best - 1).fillna(0.0)


PLATFORM_RULE = (f"the platform's: combination unless beaten by "
                 f"{SINGLE_MODEL_MARGIN:.0%} in every fold")


def selection_rules(frame: pd.DataFrame, margins: tuple[float, ...] = (0.05, 0.1, 0.2)
                    ) -> pd.DataFrame:
    """Held-out WAPE under other ways of choosing a series' model from the same backtest:
    the platform's (``choose_champion``), the lowest mean backtest WAPE (the platform's rule
    until the ninth session), always the combination, the combination unless a single
    model's mean backtest WAPE is lower by more than a margin, and the combination unless
    the best single model beat it in every fold by any margin. Per rule: mean WAPE, and the
    gap to each series' best single model (median, worst, share within 5%)."""
    rows = []
    for _, scores in frame.groupby("series"):
        scores = scores.set_index("model_name")
        platform = scores.loc["champion", "champion"]
        scores = scores.drop("champion")
        best_single = scores.drop(COMBINATION)["wape"].min()
        backtest_wape = scores["backtest_wape"].dropna()
        single = backtest_wape.drop(COMBINATION).idxmin()
        chosen = {PLATFORM_RULE: platform,
                  "lowest mean backtest WAPE": backtest_wape.idxmin(),
                  "always the combination": COMBINATION}
        for margin in margins:
            beaten = backtest_wape[single] < backtest_wape[COMBINATION] * (1 - margin)
            chosen[f"combination unless beaten by {margin:.0%} on the mean"] = (
                single if beaten else COMBINATION)
        chosen["combination unless beaten in every fold"] = (
            single if scores.loc[single, "beat_combination_every_fold"] else COMBINATION)
        for rule, model in chosen.items():
            wape = scores.loc[model, "wape"]
            rows.append({"rule": rule, "wape": wape,
                         "gap": wape / best_single - 1 if best_single > 0 else 0.0})
    table = pd.DataFrame(rows).groupby("rule", sort=False).agg(
        mean_wape=("wape", "mean"), median_gap=("gap", "median"), worst_gap=("gap", "max"),
        within_5=("gap", lambda gaps: (gaps <= 0.05).mean()))
    return table


def print_rules(title: str, rules: pd.DataFrame) -> None:
    print_table(title, ["rule", "mean WAPE", "median gap", "worst gap", "within 5%"],
                [[rule, f"{r.mean_wape:.1%}", f"{r.median_gap:+.1%}", f"{r.worst_gap:+.1%}",
                  f"{r.within_5:.0%}"] for rule, r in rules.iterrows()])


def generated_holdouts(series: int = 50, workers: int = 2, seed: int = 0) -> pd.DataFrame:
    """``holdout`` of each generated series; with another seed than the demo's 0, the names
    say the seed (``s1/growth_09``)."""
    items = [(name if seed == 0 else f"s{seed}/{name}", frame, None)
             for name, frame in daily_store_series(series, seed=seed)]
    load_prophet()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return pd.concat(pool.map(holdout, items), ignore_index=True)


def generated() -> tuple[dict, pd.DataFrame]:
    with scratch_database() as (url, engine), tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        generate_sample(landing, seed=42, scale=1.0)
        truth = load_ground_truth(landing)
        for p in DEMO_TENANTS:
            add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                      p.country_code))
            ingest_tenant(engine, landing, p.tenant_id)
        dbt_build(url)
        found, backtests = [], []
        for p in DEMO_TENANTS:
            with engine.connect() as conn:
                kpis = read_daily_kpis(conn, p.tenant_id)
            found.append(detect_tenant(kpis, p.tenant_id, p.currency,
                                       country_code=p.country_code).assign(
                tenant_id=p.tenant_id))
            for result in forecast_tenant(kpis, p.country_code, metrics=("net_revenue",)):
                backtests.append(result.backtests)
        explained = load_promotions(landing)
        return (score_against_truth(pd.concat(found), truth, explained),
                pd.concat(backtests))


def main() -> None:
    announce_machine()
    kpis = uci_daily()
    uci, before = uci_holdout(kpis)
    champion = uci.loc[uci["model_name"] == "champion", "champion"].iloc[0]
    print_table(f"UCI Online Retail, daily net revenue, last {HOLDOUT} complete days held out "
                f"(champion: {champion}; bands calibrated on each model's backtest)",
                ["model", "MAPE (above floor)", "WAPE", "80% coverage", "95% coverage"],
                holdout_table(uci))
    hindsight_mape, hindsight_wape = hindsight_fit(
        store_histories(kpis, "net_revenue")["online"])
    print(f"the held-out days fitted by themselves, after the fact (a level per week x a "
          f"weekday profile): MAPE {hindsight_mape:.1%}, WAPE {hindsight_wape:.1%}")
    chosen = before.groupby("model_name")[["wape", "mape", "coverage_95"]].mean()
    print_table("Same models on 3 rolling folds of 28 days before the holdout (model choice)",
                ["model", "mean WAPE", "mean MAPE", "95% coverage"],
                [[m, f"{r.wape:.1%}", f"{r.mape:.1%}", f"{r.coverage_95:.0%}"]
                 for m, r in chosen.iterrows()])
    generated_scores = generated_holdouts()
    gaps = champion_gaps(generated_scores)
    print_table(f"50 generated store series (ingestion.generator.daily_store_series, seed 0), "
                f"last {HOLDOUT} days held out, mean over series",
                ["model", "MAPE (above floor)", "WAPE", "80% coverage", "95% coverage"],
                holdout_table(generated_scores))
    print(f"champion vs the best single model of its series (relative WAPE): median "
          f"{gaps.median():+.1%}, worst {gaps.max():+.1%} ({gaps.idxmax()}); within 5% on "
          f"{(gaps <= 0.05).mean():.0%} of series")
    rules = selection_rules(generated_scores)
    print_rules("Other ways to choose from the same backtest, on the generated series' held-out "
                "days", rules)
    every_seed = pd.concat([generated_scores,
                            *(generated_holdouts(seed=seed) for seed in MORE_SEEDS)],
                           ignore_index=True)
    every_seed_gaps = champion_gaps(every_seed)
    every_seed_rules = selection_rules(every_seed)
    print_rules(f"The same rules on {every_seed['series'].nunique()} generated series (seeds 0 "
                f"and {', '.join(map(str, MORE_SEEDS))}); platform's worst: "
                f"{every_seed_gaps.idxmax()}", every_seed_rules)
    uci_scores, per_month = uci_anomalies(kpis)
    print_table("UCI with four planted events (outage, tripled quantities, week-long 60% drop, "
                "slide to a third)", ["events", "found", "caused elsewhere", "recall",
                                      "precision"],
                [[uci_scores["events"], uci_scores["events_found"],
                  uci_scores["caused_outside_events"], f"{uci_scores['recall']:.0%}",
                  f"{uci_scores['precision']:.0%}"]])
    print_table("UCI as it is: anomalies per store per month", [*SEVERITIES, "on UK holidays"],
                [[f"{per_month[level]:.2f}" for level in SEVERITIES]
                 + [per_month["on_holidays"]]])
    anomaly, backtests = generated()
    print_table("Planted anomalies in the generated sample (seed 42), event recall and day "
                "precision", ["events", "found", "flagged store-days", "recall", "precision"],
                [[anomaly["events"], anomaly["events_found"], anomaly["flagged_days"],
                  f"{anomaly['recall']:.0%}", f"{anomaly['precision']:.0%}"]])
    folds = pd.concat([backtests, before])
    by_model = folds.groupby("model_name")[["coverage_80", "coverage_95"]].mean()
    print_table(f"Calibrated band coverage in the platform's backtests ({len(folds)} model-folds "
                "of the generated tenants and UCI; target 77-83% and 93-97%)",
                ["model", "80% band", "95% band"],
                [[m, f"{r.coverage_80:.1%}", f"{r.coverage_95:.1%}"]
                 for m, r in by_model.iterrows()])
    coverage_95 = float(np.nanmean(folds["coverage_95"]))
    coverage_80 = float(np.nanmean(folds["coverage_80"]))
    print(f"all models: 95% band {coverage_95:.1%}, 80% band {coverage_80:.1%}")
    uci_by_model = uci.set_index("model_name")
    naive_wape = float(uci_by_model.loc["seasonal_naive", "wape"])
    uci_champion = uci_by_model.loc["champion"]
    emit_json({
        "uci_champion": champion,
        "uci_mape": round(float(uci_champion["mape"]), 4),
        "uci_wape": round(float(uci_champion["wape"]), 4),
        "uci_hindsight_mape": round(hindsight_mape, 4),
        "uci_hindsight_wape": round(hindsight_wape, 4),
        "seasonal_naive_wape": round(naive_wape, 4),
        "wape_improvement_vs_naive": round(1 - float(uci_champion["wape"]) / naive_wape, 4),
        "generated_worst_gap_to_best": round(float(gaps.max()), 4),
        "generated_median_gap_to_best": round(float(gaps.median()), 4),
        "generated_champion_wape": round(float(
            generated_scores.loc[generated_scores["model_name"] == "champion", "wape"].mean()),
            4),
        "generated_always_combination_wape": round(float(
            rules.loc["always the combination", "mean_wape"]), 4),
        "generated_250_worst_gap_to_best": round(float(every_seed_gaps.max()), 4),
        "generated_250_median_gap_to_best": round(float(every_seed_gaps.median()), 4),
        "generated_250_within_5": round(float((every_seed_gaps <= 0.05).mean()), 4),
        "generated_250_champion_wape": round(float(
            every_seed_rules.loc[PLATFORM_RULE, "mean_wape"]), 4),
        "generated_250_always_combination_wape": round(float(
            every_seed_rules.loc["always the combination", "mean_wape"]), 4),
        "anomaly_recall": round(anomaly["recall"], 4),
        "anomaly_precision": round(anomaly["precision"], 4),
        "uci_anomaly_recall": round(uci_scores["recall"], 4),
        "uci_anomaly_precision": round(uci_scores["precision"], 4),
        "uci_alerts_per_month": {level: round(per_month[level], 2) for level in SEVERITIES},
        "uci_anomalies_on_holidays": per_month["on_holidays"],
        "coverage_95": round(coverage_95, 4),
        "coverage_80": round(coverage_80, 4),
    })


if __name__ == "__main__":
    main()
