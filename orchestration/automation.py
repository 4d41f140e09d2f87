"""What runs by itself, declared on the assets (Dagster declarative automation).

A file lands -> ``landing_sensor`` requests that tenant's ingestion run (a sensor: files are
outside Dagster's asset graph). Everything after it is an automation condition on the asset
it starts, evaluated by ``storepulse_automation`` (on by default, visible on the UI's
Automation page):

1. ``raw/sales_lines`` of a tenant is materialized only when a batch loaded *and* passed its
   blocking Great Expectations gate (a held batch records its failed checks and the ledger,
   not a new ``raw/sales_lines``), so nothing downstream ever starts from a held batch.
2. dbt models: ``DBT_MODELS`` - a raw data table (or an upstream model) changed since the
   model was last requested, and nothing upstream is still running.
3. forecasts and anomalies, per tenant: ``TENANT_ML`` - this tenant's raw sales changed and
   the daily KPI mart has been rebuilt since; forecasts also refresh on a daily cron
   (``FORECAST_REFRESH``), so their horizon starts tomorrow on a day with no new file.
4. dashboards: ``DASHBOARDS`` - the marts or ML tables changed.
5. The alert sensors read ``ml.anomalies`` and the run history (see orchestration/alerts.py).

A tenant whose raw data did not change gets no ML run; a run that loads nothing materializes
nothing, so nothing turns stale.
"""

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

RAW_SALES_LINES = AssetKey(["raw", "sales_lines"])
# Inputs dbt reads that exist as tables from the migrations on: the tenant registry (written
# by `storepulse tenants add`, outside any run) and the raw tables (a tenant that never sends
# a product catalogue leaves raw/products "missing" for its partition forever).
PLATFORM_TABLES = AssetSelection.assets(AssetKey(["ops", "tenants"])) | \
    AssetSelection.key_prefixes(["raw"])
DAILY_KPIS = AssetKey(["marts", "mart_daily_store_kpis"])
# The ledger and the quarantine change on every file, good or bad; the marts read the data
# tables, whose updates are what a model waits for.
RAW_LEDGER = AssetSelection.assets(AssetKey(["raw", "ingest_files"]),
                                   AssetKey(["raw", "quarantine"]))

# Forecasts refresh daily, early enough for the morning, for every tenant.
FORECAST_REFRESH_CRON = "0 5 * * *"


def _settled() -> AutomationCondition:
    """Nothing this asset reads is being written, and it is not being built already."""
    return ~AutomationCondition.any_deps_in_progress() & ~AutomationCondition.in_progress()


# dbt models: a data table they read changed (or a model they read will be rebuilt in the
# same run), once the loads have finished; on a fresh platform, every missing model is built
# once (views such as stg_tenants read live tables and never need a rebuild after that).
DBT_MODELS = (
    (AutomationCondition.any_deps_updated().ignore(RAW_LEDGER).since_last_handled()
     & _settled()).with_label("upstream data changed")
    # (since_last_handled: not on the daemon's very first tick, which only sets its cursor;
    # ~execution_failed: a model whose last build failed waits for new data, not every tick)
    | (AutomationCondition.missing().since_last_handled()
       & ~AutomationCondition.execution_failed()
       & ~AutomationCondition.any_deps_missing().ignore(PLATFORM_TABLES)
       & _settled()).with_label("missing: first build")
)


def _tenant_sales_changed() -> AutomationCondition:
    return AutomationCondition.any_deps_match(
        AutomationCondition.newly_updated() & ~AutomationCondition.executed_with_root_target()
    ).allow(AssetSelection.assets(RAW_SALES_LINES)).with_label("tenant's raw sales changed")


def _daily_kpis_rebuilt() -> AutomationCondition:
    return AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).allow(
        AssetSelection.assets(DAILY_KPIS)).with_label("daily KPI mart rebuilt")


# Per tenant: its new sales have reached the daily KPI mart (the mart was rebuilt after the
# tenant's raw sales last changed), and this tenant's ML has not run on them yet.
TENANT_ML = (
    _daily_kpis_rebuilt().since(_tenant_sales_changed())
    & _tenant_sales_changed().since_last_handled()
    & _settled()
).with_label("tenant's new sales reached the marts")

FORECAST_REFRESH = (
    TENANT_ML
    | (AutomationCondition.cron_tick_passed(FORECAST_REFRESH_CRON).since_last_handled()
       & _settled()).with_label(f"daily refresh ({FORECAST_REFRESH_CRON} UTC)")
)

ML_TABLES = AssetSelection.key_prefixes(["ml"])

# Once per wave, at its end: not while a tenant's ML is still due (will_be_requested cannot
# see it: partitioned ML runs apart from this unpartitioned asset), so one sync follows a
# landed file.
DASHBOARDS = (
    AutomationCondition.any_deps_match(
        AutomationCondition.newly_updated() & ~AutomationCondition.executed_with_root_target()
    ).since_last_handled()
    & ~AutomationCondition.any_deps_match(TENANT_ML).allow(ML_TABLES)
        .with_label("no tenant's ML due")
    & _settled()
).with_label("marts or ML tables changed")


storepulse_automation = AutomationConditionSensorDefinition(
    "storepulse_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    # Each hop of the daily loop waits for one tick; a short interval keeps a landed file's
    # way to the manager's inbox short (the evaluation itself reads only event-log cursors).
    minimum_interval_seconds=5,
    description="Evaluates the automation conditions on every asset: dbt after new raw "
                "data, each tenant's forecasts and anomalies after its data reached the "
                "marts (and forecasts daily), dashboards after the marts and ML tables.",
)
