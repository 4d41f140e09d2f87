"""Sensors: new landing files (and new tenants) become ingestion runs."""


import hashlib
import json

import sqlalchemy as sa
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    sensor,
)

from ingestion.landing import pending_files
from orchestration.assets.ingestion import ingest_landing_files
from orchestration.partitions import tenant_partitions
from orchestration.resources import WarehouseResource

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets(ingest_landing_files),
    partitions_def=tenant_partitions,
    description="Load a tenant's new landing files into raw and gate the batch.",
)


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
