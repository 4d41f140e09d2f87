"""The one Dagster code location of StorePulse."""

from __future__ import annotations

from dagster import AssetSpec, Definitions

from orchestration.alerts import ALERT_SENSORS, alert_channels_from_env
from orchestration.assets.dashboards import metabase_dashboards
from orchestration.assets.ingestion import ingest_landing_files
from orchestration.assets.ml import store_anomalies, store_forecasts
from orchestration.automation import storepulse_automation
from orchestration.checks import QUALITY_CHECKS
from orchestration.constants import DATA_ENGINEERING
from orchestration.dbt import StorePulseDbtCli, storepulse_dbt_models
from orchestration.executors import executor_from_env
from orchestration.project import dbt_project
from orchestration.resources import LandingResource, WarehouseResource
from orchestration.sensors import (
    dbt_after_ingestion,
    dbt_build_job,
    ingest_job,
    landing_sensor,
)
from storepulse.dbt_runtime import dbt_executable

tenants_registry = AssetSpec(
    ["ops", "tenants"],
    description="Registered tenants; written by `storepulse tenants add`, not by a run.",
    group_name="ingestion",
    kinds={"postgres"},
    owners=[DATA_ENGINEERING],
)

ALL_ASSETS = [tenants_registry, ingest_landing_files, storepulse_dbt_models, store_forecasts,
              store_anomalies, metabase_dashboards]

ALL_CHECKS = QUALITY_CHECKS

RESOURCES = {
    "warehouse": WarehouseResource(),
    "landing": LandingResource(),
    "dbt": StorePulseDbtCli(project_dir=dbt_project, dbt_executable=dbt_executable()),
    "alert_channels": alert_channels_from_env(),
}


defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[ingest_job, dbt_build_job],
    sensors=[landing_sensor, dbt_after_ingestion, storepulse_automation, *ALERT_SENSORS],
    resources=RESOURCES,
    executor=executor_from_env(),
)
