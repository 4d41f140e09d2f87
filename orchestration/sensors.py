"""Sensors: new landing files (and new tenants) become ingestion runs; a wave of published
batches becomes one dbt build."""


import hashlib
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from ingestion.landing import pending_files, unregistered_folders, unregistered_message
from orchestration.assets.ingestion import ingest_landing_files
from orchestration.automation import RAW_SALES_LINES
from orchestration.constants import EVERY_DAEMON_LOOP
from orchestration.dbt import storepulse_dbt_models
from orchestration.partitions import tenant_partitions
from orchestration.resources import LandingResource, WarehouseResource

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


@sensor(job=ingest_job, minimum_interval_seconds=EVERY_DAEMON_LOOP,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests an ingestion run for a tenant when landing/<tenant>/ holds files "
                    "the ledger (raw.ingest_files) has not seen as they are now; registers "
                    "partitions for newly onboarded tenants and deletes those of purged "
                    "ones; warns of landing folders that name no registered tenant.")
def landing_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource,
                   landing: LandingResource):
    engine = warehouse.engine()
    with engine.connect() as conn:
        registered = conn.execute(sa.text("select tenant_id from ops.tenants")).scalars().all()
    known_partitions = set(context.instance.get_dynamic_partitions(tenant_partitions.name))
    new_tenants = sorted(set(registered) - known_partitions)
    removed_tenants = sorted(known_partitions - set(registered))
    landing_dir = landing.path()
    run_requests = []
    waiting: dict[str, int] = {}
    for tenant_id in sorted(registered):
        # The ledger is the memory: files loaded by any run, the CLI or the demo are not
        # requested again, and no cursor can drift from what was really loaded.
        pending = pending_files(engine, landing_dir, tenant_id, landing.settle())
        if not pending:
            continue
        waiting[tenant_id] = len(pending)
        digest = hashlib.sha256(json.dumps(pending, sort_keys=True).encode()).hexdigest()[:16]
        # The same pending files give the same run key, so a tick during the run that loads
        # them (or after a restart) requests nothing new.
        run_requests.append(RunRequest(
            partition_key=tenant_id, run_key=f"{tenant_id}:{digest}",
            tags={"storepulse/files": str(len(pending)), "storepulse/trigger": "landing"}))
    # Files in a folder that names no tenant are read by nothing: say so when that changes
    # (each tick's log would bury it), and keep it in the cursor, shown on the sensor's page.
    unregistered = unregistered_folders(landing_dir, set(registered))
    previous = json.loads(context.cursor).get("unregistered", {}) if context.cursor else {}
    for folder, files in unregistered.items():
        if previous.get(folder) != files:
            context.log.warning(unregistered_message(folder, files))
    return SensorResult(
        run_requests=run_requests,
        skip_reason=None if run_requests else _nothing_new(len(registered), unregistered),
        dynamic_partitions_requests=(
            ([tenant_partitions.build_add_request(new_tenants)] if new_tenants else [])
            + ([tenant_partitions.build_delete_request(removed_tenants)]
               if removed_tenants else [])),
        cursor=json.dumps({"pending": waiting, "unregistered": unregistered}, sort_keys=True),
    )


def _nothing_new(tenants: int, unregistered: dict[str, int]) -> SkipReason:
    """The tick history's line for a quiet tick (Dagster's own would read "Sensor function
    returned an empty result")."""
    reason = f"no new or changed files ready to load for the {tenants} registered tenant(s)"
    if unregistered:
        folders = ", ".join(f"landing/{folder}/" for folder in sorted(unregistered))
        reason += f"; no tenant is registered for {folders}"
    return SkipReason(reason)


# Runs of the ingestion job that have not finished.
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED]
# A wave's build waits for its last ingestion run, but never longer than this after new
# data first waited for it (files that land all day must not starve the marts).
WAVE_WAIT = timedelta(seconds=60)


@sensor(job=dbt_build_job, minimum_interval_seconds=EVERY_DAEMON_LOOP,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests one dbt build of the whole project for a wave of ingestion runs: "
                    "when runs that loaded new data (batches that passed the blocking gate) "
                    "have finished since the last build started, or batches were published "
                    "outside a load (a held batch released), and no other ingestion run is "
                    "still going (or new data has waited a minute).")
def dbt_after_ingestion(context: SensorEvaluationContext):
    # A sensor, not automation conditions on the models: dbt is one incremental build over
    # every tenant, and per-model conditions let the daemon request it in fragments that ran
    # concurrently on shared tables. One job per wave, one at a time (the run queue's
    # storepulse/dbt limit), is what dbt wants. A polling sensor rather than a run-status
    # one: the run that ends a wave may fail (a held batch) and still has to release it.
    instance = context.instance
    builds = instance.get_run_records(RunsFilter(job_name=dbt_build_job.name), limit=20)
    if builds and builds[0].start_time is None and builds[0].dagster_run.status in IN_FLIGHT:
        return SkipReason(f"dbt run {builds[0].dagster_run.run_id[:8]} is queued and will "
                          "include any new data")
    # what the last build that ran started reading at (one canceled before it started read
    # nothing); loads that ended before it are in it
    started = next((r.start_time for r in builds if r.start_time), 0)
    since = datetime.fromtimestamp(started, UTC)
    finished = instance.get_run_records(RunsFilter(
        job_name=ingest_job.name, statuses=[DagsterRunStatus.SUCCESS], updated_after=since))
    with_data = [r for r in finished if (r.end_time or 0) > since.timestamp()
                 and _loaded_new_data(instance, r.dagster_run.run_id)]
    published = _published_outside_runs(instance, since)
    if not with_data and not published:
        return SkipReason("no ingestion run has loaded new data, and no batch was published "
                          "outside one, since the last dbt build")
    loading = instance.get_runs(RunsFilter(job_name=ingest_job.name, statuses=IN_FLIGHT))
    first_arrival = min([r.end_time for r in with_data] + [p.timestamp for p in published])
    waited = datetime.now(UTC) - datetime.fromtimestamp(first_arrival, UTC)
    arrivals = len(with_data) + len(published)
    if loading and waited < WAVE_WAIT:
        return SkipReason(f"{arrivals} load(s) with new data wait for {len(loading)} "
                          "ingestion run(s) still going: one build for the wave")
    if with_data:
        latest = max(with_data, key=lambda r: r.end_time).dagster_run.run_id
        key, tags = latest, {"storepulse/after_run": latest}
    else:  # a released batch, say: the event that reported it names the build
        key, tags = f"published-{max(p.storage_id for p in published)}", {}
    return RunRequest(run_key=f"dbt-after-{key}",
                      tags={**tags, "storepulse/loads": str(arrivals)})


def _published_outside_runs(instance, since: datetime) -> list:
    """Batches published with no ingestion run's load (orchestration/publication.py) since
    ``since``: runless materializations of the tenants' raw sales."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=RAW_SALES_LINES, after_timestamp=since.timestamp()),
        limit=1000).records
    return [r for r in records if not r.run_id]


def _loaded_new_data(instance, run_id: str) -> bool:
    """A run that loads nothing materializes nothing (orchestration/assets/ingestion.py)."""
    logs = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return bool({record.dagster_event.asset_key for record in logs} & set(RAW_DATA))
