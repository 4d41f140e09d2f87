"""What runs by itself (the daemon; `storepulse demo` drives the same through
orchestration/pipeline.py):

1. A file lands: ``landing_sensor`` requests that tenant's ingestion run (a sensor: files are
   outside Dagster's asset graph). The run loads and gates the batch; ``raw/sales_lines`` is
   materialized only for a batch that passed its blocking Great Expectations rules, and a
   held batch fails the run (the data team is emailed).
2. ``dbt_after_ingestion`` (a sensor, orchestration/sensors.py) requests one build of the
   whole dbt project per wave: once the ingestion runs that loaded new data are followed by
   no other ingestion run still going (or new data has waited a minute). dbt is a single
   incremental build over all tenants, queued one at a time.
3. Automation conditions here, evaluated by ``storepulse_automation`` (on by default, on the
   UI's Automation page): each tenant's forecasts and anomalies once its new sales reached
   the daily KPI mart (``TENANT_ML``), forecasts also daily (``FORECAST_REFRESH``), so their
   horizon starts tomorrow on a day with no new file; the dashboards once per wave.
4. The alert sensors read ``ml.anomalies`` and the run history (orchestration/alerts.py).

A tenant whose raw data did not change gets no ML run; a run that loads nothing materializes
nothing, so nothing turns stale.
"""

from datetime import timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    FreshnessPolicy,
)

from orchestration.constants import EVERY_DAEMON_LOOP

RAW_SALES_LINES = AssetKey(["raw", "sales_lines"])
DAILY_KPIS = AssetKey(["marts", "mart_daily_store_kpis"])

# Forecasts refresh daily, early enough for the morning, for every tenant.
FORECAST_REFRESH_CRON = "0 5 * * *"

# Freshness, shown in the UI and evaluated by the daemon. Sales files arrive daily; the marts
# follow each batch; forecasts refresh at least daily. (Each tenant's own stale-data limit,
# ops.alert_rules.stale_after, is checked per tenant by stale_data_sensor: an asset-level
# policy has one window for all partitions.)
RAW_SALES_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=72),
                                                  warn_window=timedelta(hours=36))
MARTS_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=72),
                                              warn_window=timedelta(hours=36))
FORECASTS_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=30),
                                                  warn_window=timedelta(hours=25))


def _settled() -> AutomationCondition:
    """Nothing this asset reads is being written, and it is not being built already."""
    return ~AutomationCondition.any_deps_in_progress() & ~AutomationCondition.in_progress()


def _tenant_sales_changed() -> AutomationCondition:
    return AutomationCondition.any_deps_match(
        AutomationCondition.newly_updated() & ~AutomationCondition.executed_with_root_target()
    ).allow(AssetSelection.assets(RAW_SALES_LINES)).with_label("tenant's raw sales changed")


def _daily_kpis_rebuilt() -> AutomationCondition:
    return AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).allow(
        AssetSelection.assets(DAILY_KPIS)).with_label("daily KPI mart rebuilt")


# Per tenant: its new sales have reached the daily KPI mart (the mart was rebuilt at or after
# the tick that saw the tenant's raw sales change: a tie counts, as `since` alone would let
# the change win it), and this tenant's ML has not run on them yet.
TENANT_ML = (
    _daily_kpis_rebuilt().since(_tenant_sales_changed() & ~_daily_kpis_rebuilt())
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
    # Each hop of the daily loop waits for one tick: every pass of the daemon's loop keeps a
    # landed file's way to the manager's inbox short (the evaluation reads event-log cursors).
    minimum_interval_seconds=EVERY_DAEMON_LOOP,
    # One run per tenant, launched by this tick: a backfill (the default when a tick requests
    # several partitions) waits for the backfill daemon's own loop, and the run queue's
    # per-tenant limit is what keeps a tenant's runs apart.
    emit_backfills=False,
    description="Evaluates the automation conditions on every asset: dbt after new raw "
                "data, each tenant's forecasts and anomalies after its data reached the "
                "marts (and forecasts daily), dashboards after the marts and ML tables.",
)
