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

from ingestion.landing import fingerprints
from orchestration.assets.ingestion import ingest_landing_files
from orchestration.partitions import tenant_partitions
from orchestration.resources import WarehouseResource

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets(ingest_landing_files),
    partitions_def=tenant_partitions,
    description="Load a tenant's new landing files into raw.",
)


@sensor(job=ingest_job, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING,
        description="Requests an ingestion run for a tenant when files appear or change in "
                    "landing/<tenant>/; registers partitions for newly onboarded tenants.")
def landing_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    # Cursor: {tenant: {relative path: "size:mtime"}} as of the last requested run.
    cursor: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
    with warehouse.engine().connect() as conn:
        registered = conn.execute(sa.text("select tenant_id from ops.tenants")).scalars().all()
    known_partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name))
    new_tenants = sorted(set(registered) - known_partitions)
    landing = warehouse.landing_path()
    run_requests = []
    for tenant_id in sorted(registered):
        marks = fingerprints(landing, tenant_id)
        previous = cursor.get(tenant_id, {})
        changed = sorted(path for path, mark in marks.items() if previous.get(path) != mark)
        if changed:
            digest = hashlib.sha256(
                json.dumps({p: marks[p] for p in changed}, sort_keys=True).encode()
            ).hexdigest()[:16]
            run_requests.append(RunRequest(
                partition_key=tenant_id,
                run_key=f"{tenant_id}:{digest}",
                tags={"storepulse/files": str(len(changed))},
            ))
            cursor[tenant_id] = marks
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [tenant_partitions.build_add_request(new_tenants)] if new_tenants else []),
        cursor=json.dumps(cursor, sort_keys=True),
    )
