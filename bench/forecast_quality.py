"""Forecast and anomaly quality, measured honestly.

1. UCI Online Retail through the platform (load, dbt): daily net revenue of its one store.
   The export stops at midday on 2011-12-09, so that day is dropped; the last 28 complete days
   are held out. Models are fitted on the days before only. Prophet must reach MAPE < 20% on
   trading days and a WAPE at least 10% below seasonal naive's. The same models are also scored
   on three rolling folds *before* the holdout: the evidence the configuration was chosen on.
2. The generated sample (seed 42, the demo's): planted anomalies recalled >= 90% with
   precision >= 85%, scored against the generator's ground truth; a flag in one of the
   generator's promotion weeks (a real sustained rise it made on purpose) counts neither
   way.
   UCI with four events planted into its daily KPIs (outage, tripled quantities, a week with
   60% of the orders gone, a slide to a third), scored by what the planting changed; and UCI
   as it is: anomalies per store per month at each severity, none on a UK public holiday.
3. 95% interval coverage of Prophet in the backtests of every series of both datasets.

    python bench/forecast_quality.py
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anomaly_scoring import score_against_truth, score_planted
from bench.common import UCI_CSV, emit_json, machine, print_table, scratch_database
from bench.dbt_build import dbt_build
from ingestion.generator import (
    DEMO_TENANTS,
    PlantedAnomaly,
    generate_sample,
    load_ground_truth,
    load_promotions,
    plant_into_daily_kpis,
)
from ingestion.landing import ingest_tenant
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from ml import metrics
from ml.anomalies import detect_tenant
from ml.backtest import backtest
from ml.calendar import public_holidays
from ml.forecasting import forecast_tenant, store_histories
from ml.models import model_factories
from ml.tables import read_daily_kpis
from storepulse.tenants import Tenant, add_tenant

HOLDOUT = 28


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


def uci_holdout(kpis: pd.DataFrame) -> tuple[list[list], dict, pd.DataFrame]:
    history = store_histories(kpis, "net_revenue")["online"]
    history = history[history["ds"] < pd.Timestamp("2011-12-09")]  # partial last day
    train, test = history.iloc[:-HOLDOUT], history.iloc[-HOLDOUT:]
    actual = test["y"].to_numpy(float)
    trading = ~test["closed"].to_numpy(bool)
    rows, scores = [], {}
    for name, factory in model_factories("GB").items():
        forecast = factory().fit(train).predict(test["ds"])
        predicted = forecast["yhat"].to_numpy(float)
        scores[name] = {
            "mape": metrics.mape(actual[trading], predicted[trading]),
            "wape": metrics.wape(actual, predicted),
            "coverage_95": metrics.coverage(actual, forecast["yhat_lower_95"].to_numpy(float),
                                            forecast["yhat_upper_95"].to_numpy(float))}
        rows.append([name, f"{scores[name]['mape']:.1%}", f"{scores[name]['wape']:.1%}",
                     f"{scores[name]['coverage_95']:.0%}"])
    before = backtest(train, model_factories("GB"), folds=3, horizon=28)
    return rows, scores, before


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
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
          f"Python {info['python']}, {info['date']}")
    kpis = uci_daily()
    rows, scores, before = uci_holdout(kpis)
    print_table(f"UCI Online Retail, daily net revenue, last {HOLDOUT} complete days held out",
                ["model", "MAPE (trading days)", "WAPE", "95% coverage"], rows)
    chosen = before.groupby("model_name")[["wape", "mape", "coverage_95"]].mean()
    print_table("Same models on 3 rolling folds of 28 days before the holdout (model choice)",
                ["model", "mean WAPE", "mean MAPE", "95% coverage"],
                [[m, f"{r.wape:.1%}", f"{r.mape:.1%}", f"{r.coverage_95:.0%}"]
                 for m, r in chosen.iterrows()])
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
    prophet = pd.concat([backtests, before])
    prophet = prophet[prophet["model_name"] == "prophet"]
    coverage_95 = float(np.nanmean(prophet["coverage_95"]))
    coverage_80 = float(np.nanmean(prophet["coverage_80"]))
    print(f"\nProphet backtest interval coverage over {len(prophet)} folds: "
          f"95% interval {coverage_95:.1%}, 80% interval {coverage_80:.1%}")
    naive_wape = scores["seasonal_naive"]["wape"]
    emit_json({
        "uci_mape": round(scores["prophet"]["mape"], 4),
        "uci_wape": round(scores["prophet"]["wape"], 4),
        "seasonal_naive_wape": round(naive_wape, 4),
        "wape_improvement_vs_naive": round(1 - scores["prophet"]["wape"] / naive_wape, 4),
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
