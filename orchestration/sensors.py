"""Sensors: new landing files (and new tenants) become ingestion runs; a tenant's published
batch becomes one dbt build."""


import hashlib
import json

import sqlalchemy as sa
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    run_status_sensor,
    sensor,
)

from ingestion.landing import pending_files
from orchestration.assets.ingestion import ingest_landing_files
from orchestration.dbt import storepulse_dbt_models
from orchestration.partitions import tenant_partitions
from orchestration.resources import WarehouseResource

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets(ingest_landing_files),
    partitions_def=tenant_partitions,
    description="Load a tenant's new landing files into raw and gate the batch.",
)

DBT_RUN_TAG = "storepulse/dbt"
dbt_build_job = define_asset_job(
    "dbt_build_job", selection=AssetSelection.assets(storepulse_dbt_models),
    tags={DBT_RUN_TAG: "build"},
    description="dbt build over all tenants: staging, intermediate and marts (incremental: "
                "only new files and the days they touch), with every dbt test as a check.")

# What the marts read from raw: a load that changed one of these is worth a dbt build.
RAW_DATA = [AssetKey(["raw", table]) for table in ("sales_lines", "stores", "products")]


@sensor(job=ingest_job, minimum_interval_seconds=5, default_status=DefaultSensorStatus.RUNNING,
        description="Requests an ingestion run for a tenant when landing/<tenant>/ holds files "
                    "the ledger (raw.ingest_files) has not seen as they are now; registers "
                    "partitions for newly onboarded tenants.")
def landing_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    engine = warehouse.engine()
    with engine.connect() as conn:
        registered = conn.execute(sa.text("select tenant_id from ops.tenants")).scalars().all()
    known_partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name))
    new_tenants = sorted(set(registered) - known_partitions)
    landing = warehouse.landing_path()
    run_requests = []
    waiting: dict[str, int] = {}
    for tenant_id in sorted(registered):
        # The ledger is the memory: files loaded by any run, the CLI or the demo are not
        # requested again, and no cursor can drift from what was really loaded.
        pending = pending_files(engine, landing, tenant_id)
        if not pending:
            continue
        waiting[tenant_id] = len(pending)
        digest = hashlib.sha256(json.dumps(pending, sort_keys=True).encode()).hexdigest()[:16]
        # The same pending files give the same run key, so a tick during the run that loads
        # them (or after a restart) requests nothing new.
        run_requests.append(RunRequest(
            partition_key=tenant_id, run_key=f"{tenant_id}:{digest}",
            tags={"storepulse/files": str(len(pending)), "storepulse/trigger": "landing"}))
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [tenant_partitions.build_add_request(new_tenants)] if new_tenants else []),
        cursor=json.dumps({"pending": waiting}, sort_keys=True),
    )


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[ingest_job],
    request_job=dbt_build_job, default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="After a tenant's ingestion run succeeded with new data (its batch passed the "
                "blocking gate: a held batch fails its run), requests one dbt build of the "
                "whole project; a build already queued covers it.")
def dbt_after_ingestion(context: RunStatusSensorContext):
    # A sensor, not automation conditions on the models: dbt is one incremental build over
    # every tenant, and per-model conditions let the daemon request it in fragments that ran
    # concurrently on shared tables. One job per wave, one at a time (the run queue's
    # storepulse/dbt limit), is what dbt wants.
    run = context.dagster_run
    logs = context.instance.all_logs(run.run_id,
                                     of_type=DagsterEventType.ASSET_MATERIALIZATION)
    if not {record.dagster_event.asset_key for record in logs} & set(RAW_DATA):
        return SkipReason(f"run {run.run_id[:8]} loaded no new data")
    waiting = context.instance.get_runs(RunsFilter(
        job_name=dbt_build_job.name,
        statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]), limit=1)
    if waiting:
        return SkipReason(f"dbt run {waiting[0].run_id[:8]} is queued and will include it")
    return RunRequest(run_key=f"dbt-after-{run.run_id}",
                      tags={"storepulse/after_run": run.run_id,
                            "storepulse/tenant": run.tags.get("dagster/partition", "")})

