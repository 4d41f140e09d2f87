"""Forecasts and anomalies per tenant, downstream of the daily store KPIs."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import Field

from ml.anomalies import detect_tenant
from ml.day_in_progress import day_in_progress, judged_days, read_last_day
from ml.forecasting import (
    describe_last_day,
    describe_too_short,
    forecast_tenant,
    store_histories,
    too_short_to_forecast,
)
from ml.plots import forecast_plot, save_forecast_plot
from ml.scan_plan import plan_scan
from ml.summary import backtest_summary, headline_series, next_days
from ml.tables import (
    last_anomaly_scan,
    model_states,
    read_daily_kpis,
    read_last_sale_times,
    recent_champions,
    write_anomalies,
    write_forecasts,
)
from orchestration.automation import (
    DAILY_KPIS,
    FORECAST_REFRESH,
    FORECASTS_FRESHNESS,
    RAW_SALES_LINES,
    TENANT_ML,
)
from orchestration.constants import DATA_SCIENCE
from orchestration.metadata import table_metadata
from orchestration.partitions import tenant_partitions
from orchestration.progress import report
from orchestration.resources import WarehouseResource
from storepulse.settings import load_settings
from storepulse.tenants import get_tenant

# The models read the daily KPI mart; the tenant's raw sales are a dependency too so that
# automation knows *which* tenant's data changed (the mart is shared by all tenants).
ML_DEPS = [DAILY_KPIS, RAW_SALES_LINES]


class AnomalyConfig(Config):
    full_history: bool = Field(
        default=False, description="Rescan all history now (otherwise: the first run, then "
                                   "weekly; daily runs judge the recent days only)")


class ForecastConfig(Config):
    horizon_days: int = Field(default=30, description="Days to forecast ahead")
    backtest_folds: int = Field(default=3, description="Rolling-origin folds")
    fold_days: int = Field(default=28, description="Days scored per fold")
    workers: int = Field(default=1, description="Processes for the store series")
    reuse_backtests_days: int = Field(
        default=7, description="Refit a series' champion without re-backtesting while its "
                               "backtest is younger than this (0: backtest every run)")
    today: str = Field(
        default="", description="Forecast as on this date (YYYY-MM-DD); empty: today in the "
                                "tenant's timezone. Forecasts reach horizon_days past it.")


def _today(config: ForecastConfig, timezone: str) -> date:
    return (date.fromisoformat(config.today) if config.today
            else datetime.now(ZoneInfo(timezone)).date())


@multi_asset(
    name="store_forecasts",
    description=("Per store: daily net revenue and orders forecast with 80/95% intervals by the "
                 "champion of a rolling-origin backtest: the mean of Prophet and MSTL, unless "
                 "Prophet, MSTL or a seasonal baseline beat it by more than 5% in every fold. "
                 "A last day exported during trading hours is forecast, not learned from "
                 "(last_day in the metadata)."),
    specs=[
        AssetSpec(["ml", "forecasts"], deps=ML_DEPS, group_name="ml",
                  automation_condition=FORECAST_REFRESH, freshness_policy=FORECASTS_FRESHNESS,
                  kinds={"python", "prophet", "postgres"}, owners=[DATA_SCIENCE],
                  description="Forecasts from the champion model of each series (its fitted "
                              "parameters go to ml.model_states, to warm-start tomorrow's "
                              "refit)."),
        AssetSpec(["ml", "forecast_backtests"], deps=ML_DEPS, group_name="ml",
                  automation_condition=FORECAST_REFRESH,
                  kinds={"python", "postgres"}, owners=[DATA_SCIENCE],
                  description="Backtest errors (MAPE, WAPE, sMAPE, MASE, coverage) per model."),
    ],
    partitions_def=tenant_partitions,
)
def store_forecasts(context: AssetExecutionContext, config: ForecastConfig,
                    warehouse: WarehouseResource):
    tenant = get_tenant(warehouse.engine(), context.partition_key)
    engine = warehouse.engine()
    with engine.connect() as conn:
        kpis = read_daily_kpis(conn, tenant.tenant_id)
        known = recent_champions(conn, tenant.tenant_id, config.reuse_backtests_days)
        states = model_states(conn, tenant.tenant_id)
        last_day = read_last_day(read_last_sale_times(conn, tenant.tenant_id, tenant.timezone))
    results = forecast_tenant(kpis, tenant.country_code, horizon=config.horizon_days,
                              folds=config.backtest_folds, fold_days=config.fold_days,
                              workers=config.workers, known_champions=known,
                              model_states=states, today=_today(config, tenant.timezone),
                              last_day=last_day)
    rows = write_forecasts(engine, tenant.tenant_id, results, context.run_id)
    short = too_short_to_forecast(kpis)
    report(context, f"{tenant.tenant_id}: {len(results)} series forecast "
                    f"({sum(not r.backtests.empty for r in results)} backtested)"
                    + (f"; not yet forecast: {describe_too_short(short)}" if short else ""))
    backtests = pd.concat([r.backtests.assign(store_id=r.store_id, metric=r.metric)
                           for r in results if not r.backtests.empty] or [pd.DataFrame()])
    champions = pd.Series([r.champion.model_name for r in results]).value_counts()
    summary = backtest_summary(backtests)
    forecast_meta = {
        "series": MetadataValue.int(len(results)),
        "series_backtested": MetadataValue.int(sum(not r.backtests.empty for r in results)),
        "series_warm_started": MetadataValue.int(sum(r.warm_started for r in results)),
        "series_partial_last_day": MetadataValue.int(sum(r.partial_day_dropped
                                                         for r in results)),
        "last_day": MetadataValue.text(describe_last_day(last_day)),
        "stores_not_yet_forecast": MetadataValue.text(describe_too_short(short)),
        "dagster/row_count": MetadataValue.int(rows),
        "champions": MetadataValue.json(champions.to_dict()),
        "backtest_summary": (table_metadata(summary) if not summary.empty else
                             MetadataValue.text("no new backtests: champions of recent "
                                                "backtests were refitted")),
    }
    headline = headline_series(kpis, results)
    if headline is not None:
        forecast_meta["headline_series"] = MetadataValue.text(
            f"{headline.store_id} net revenue, {headline.champion.model_name}")
        forecast_meta["next_days"] = table_metadata(next_days(headline))
        history = store_histories(kpis, "net_revenue")[headline.store_id]
        png = forecast_plot(history, headline.forecast, f"{tenant.tenant_id} / "
                            f"{headline.store_id}: net revenue, {headline.champion.model_name}")
        plots = load_settings().plots_dir / tenant.tenant_id
        forecast_meta["forecast_plot"] = MetadataValue.path(
            str(save_forecast_plot(plots, f"forecast-{context.run_id}", png)))
    yield MaterializeResult(asset_key=AssetKey(["ml", "forecasts"]), metadata=forecast_meta)
    yield MaterializeResult(asset_key=AssetKey(["ml", "forecast_backtests"]), metadata={
        "dagster/row_count": MetadataValue.int(len(backtests)),
        "mean_wape_by_model": MetadataValue.json(
            backtests.groupby("model_name")["wape"].mean().round(4).to_dict()
            if not backtests.empty else {}),
    })


@asset(
    key=["ml", "anomalies"],
    deps=ML_DEPS,
    automation_condition=TENANT_ML,
    group_name="ml",
    kinds={"python", "scikitlearn", "postgres"},
    owners=[DATA_SCIENCE],
    partitions_def=tenant_partitions,
    description=("Unusual store-days (revenue, orders, order value, returns, level shifts, "
                 "isolation forest) with severity and a one-line explanation; stable ids. A "
                 "last day exported during trading hours waits for a later export "
                 "(day_in_progress in the metadata)."),
)
def store_anomalies(context: AssetExecutionContext, config: AnomalyConfig,
                    warehouse: WarehouseResource) -> MaterializeResult:
    engine = warehouse.engine()
    tenant = get_tenant(engine, context.partition_key)
    with engine.connect() as conn:
        last = last_anomaly_scan(conn, tenant.tenant_id)
        plan = plan_scan(last[0] if last else None, last[1] if last else None,
                         datetime.now(UTC), force_full=config.full_history)
        kpis = read_daily_kpis(conn, tenant.tenant_id, since=plan.kpis_from)
        in_progress = day_in_progress(read_last_sale_times(conn, tenant.tenant_id,
                                                           tenant.timezone))
    if in_progress is not None:
        context.log.info(in_progress.describe())
    judged = judged_days(kpis, in_progress)
    anomalies = detect_tenant(judged, tenant.tenant_id, tenant.currency,
                              report_from=plan.report_from, country_code=tenant.country_code)
    written = write_anomalies(engine, tenant.tenant_id, anomalies, context.run_id,
                              scanned_through=max(judged["day"]) if not judged.empty else None,
                              full_scan=plan.full)
    recent = anomalies.sort_values("day", ascending=False).head(10)
    return MaterializeResult(metadata={
        "dagster/row_count": MetadataValue.int(written),
        "scan": MetadataValue.text(plan.describe()),
        "day_in_progress": MetadataValue.text(
            in_progress.describe() if in_progress else "none: every day was judged"),
        "by_severity": MetadataValue.json(anomalies["severity"].value_counts().to_dict()),
        "most_recent": MetadataValue.md(
            recent[["day", "store_id", "kpi", "severity", "explanation"]].to_markdown(
                index=False) if not recent.empty else "none"),
    })
