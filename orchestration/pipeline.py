"""The daemon's loop, in this process: the landing sensor, the dbt sensor, then the
automation conditions, tick after tick, until nothing more is requested.

`storepulse demo` and `bench/end_to_end.py` drive the platform through this, so they run
exactly what the daemon would run from the same definitions (sensors, jobs, automation
conditions, blocking checks), only without waiting for ticks and process launches. There is no
list of stages here: what runs, and in which order, is what the sensors and the conditions on
the assets request (orchestration/automation.py tells the story).
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from dagster import (
    AssetCheckSeverity,
    AssetKey,
    BetaWarning,
    DagsterInstance,
    Definitions,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    build_sensor_context,
    deserialize_value,
    evaluate_automation_conditions,
    materialize,
    serialize_value,
)

from ingestion.landing import wait_until_still
from orchestration.partitions import tenant_partitions

# A chain is ingestion -> dbt -> ML -> dashboards: a few ticks; more means a loop.
MAX_TICKS = 12
# Where the loop's automation cursor is kept in the instance (its key-value store).
LOOP_CURSOR_KEY = "storepulse/platform_loop/automation_cursor"


@dataclass
class PipelineRun:
    """One run the loop launched: what triggered it, what it built, how it went."""

    trigger: str  # the sensor that requested it, or "automation"
    partition: str | None
    asset_keys: tuple[AssetKey, ...]
    run_id: str
    success: bool
    seconds: float
    failed_checks: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        groups = sorted({key.path[0] for key in self.asset_keys})
        return " + ".join(groups) + (f" [{self.partition}]" if self.partition else "")


OnRun = Callable[[PipelineRun], None]


class PlatformLoop:
    """The daemon's loop over one instance; keeps its automation cursor between calls and in
    the instance, as the daemon keeps its own between ticks and restarts: what changed while
    no loop ran (a batch `storepulse quality release` published, say) is seen on the next
    tick, not taken as the baseline."""

    def __init__(self, defs: Definitions, instance: DagsterInstance,
                 run_config: dict | None = None, op_config: dict[str, dict] | None = None
                 ) -> None:
        """``op_config``: config per op name, given to the runs that execute that op (e.g.
        ``{"store_forecasts": {"workers": 2}}``)."""
        self.defs = defs
        self.instance = instance
        self.run_config = run_config or {}
        self.op_config = op_config or {}
        self.cursor = _stored_cursor(instance)

    def config_for(self, keys: set[AssetKey] | tuple[AssetKey, ...]) -> dict:
        ops = {assets.op.name: set(assets.keys) for assets in self.defs.assets or ()
               if hasattr(assets, "op")}
        chosen = {op: {"config": config} for op, config in self.op_config.items()
                  if ops.get(op, set()) & set(keys)}
        return {**self.run_config, **({"ops": chosen} if chosen else {})}

    def run_until_settled(self, on_start: Callable[[str], None] | None = None,
                          on_run: OnRun | None = None,
                          evaluation_time: datetime | None = None) -> list[PipelineRun]:
        """One landing-sensor tick, then automation ticks until a tick requests nothing."""
        runs: list[PipelineRun] = []

        def launch(trigger: str, keys: set[AssetKey], partition: str | None) -> None:
            if on_start:
                on_start(PipelineRun(trigger, partition, tuple(sorted(keys)), "", True,
                                     0.0).label)
            run = _execute(self.defs, self.instance, trigger, keys, partition,
                           self.config_for(keys))
            runs.append(run)
            if on_run:
                on_run(run)

        if self.cursor is None:
            # A baseline tick first: automation reacts to what changes after it, as the
            # daemon does from its first tick on.
            self.tick(launch, evaluation_time)
        # The daemon would take a file that just changed a tick later, once it is still;
        # this loop looks once, so it waits for that (a few seconds at most).
        landing = self.defs.resources["landing"]
        wait_until_still(landing.path(), landing.settle())
        for request in _landing_requests(self.defs, self.instance):
            self._run_job("landing_sensor", "ingest_job", request, on_start, on_run, runs)
        # dbt_after_ingestion, once the wave's loads have all finished (here: now); it also
        # answers a batch published outside a run (a held batch released).
        if dbt_request := _dbt_request(self.defs, self.instance):
            self._run_job("dbt_after_ingestion", "dbt_build_job", dbt_request, on_start,
                          on_run, runs)
        for _ in range(MAX_TICKS):
            before = len(runs)
            self.tick(launch, evaluation_time)
            if len(runs) == before:
                break
        return runs

    def _run_job(self, trigger: str, job_name: str, request: RunRequest,
                 on_start: Callable[[str], None] | None, on_run: OnRun | None,
                 runs: list[PipelineRun]) -> str:
        job = self.defs.resolve_job_def(job_name)
        keys = tuple(sorted(job.asset_layer.executable_asset_keys))
        if on_start:
            on_start(PipelineRun(trigger, request.partition_key, keys, "", True, 0.0).label)
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key,
            run_config=self.config_for(keys), raise_on_error=False,
            tags={**request.tags, "storepulse/trigger": trigger})
        run = PipelineRun(trigger, request.partition_key, keys, result.run_id, result.success,
                          time.perf_counter() - started, _failed_checks(result))
        runs.append(run)
        if on_run:
            on_run(run)
        return result.run_id

    def tick(self, launch: Callable[[str, set[AssetKey], str | None], None],
             evaluation_time: datetime | None = None) -> None:
        with warnings.catch_warnings():
            # raised inside Dagster's own evaluator (a beta selection parameter it passes),
            # about nothing this project calls
            warnings.simplefilter("ignore", BetaWarning)
            evaluation = evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, cursor=self.cursor,
                evaluation_time=evaluation_time)
        for partition, keys in _runs_of(evaluation):
            launch("automation", keys, partition)
        self.cursor = evaluation.cursor
        self.instance.run_storage.set_cursor_values(
            {LOOP_CURSOR_KEY: serialize_value(evaluation.cursor)})


def _stored_cursor(instance: DagsterInstance):
    """The loop's last automation cursor (Dagster's AssetDaemonCursor), if any."""
    stored = instance.run_storage.get_cursor_values({LOOP_CURSOR_KEY}).get(LOOP_CURSOR_KEY)
    if not stored:
        return None
    try:
        return deserialize_value(stored)
    except Exception:  # written by another Dagster version: start from a baseline tick
        return None


def run_until_settled(defs: Definitions, instance: DagsterInstance,
                      run_config: dict | None = None,
                      on_start: Callable[[str], None] | None = None,
                      on_run: OnRun | None = None,
                      op_config: dict[str, dict] | None = None) -> list[PipelineRun]:
    """Everything the platform does by itself about what is in landing/ now."""
    return PlatformLoop(defs, instance, run_config, op_config).run_until_settled(on_start,
                                                                                 on_run)


def refresh_tenant_ml(defs: Definitions, instance: DagsterInstance, tenant_id: str,
                      run_config: dict | None = None) -> PipelineRun:
    """One run of a tenant's forecasts and anomalies now (`storepulse forecast`), as the
    automation would request it."""
    keys = {key for assets in defs.assets or () if hasattr(assets, "keys")
            for key in assets.keys if key.path[0] == "ml"}
    if tenant_id not in instance.get_dynamic_partitions(tenant_partitions.name):
        instance.add_dynamic_partitions(tenant_partitions.name, [tenant_id])
    return _execute(defs, instance, "cli", keys, tenant_id, run_config or {})


def _runs_of(evaluation) -> Iterator[tuple[str | None, set[AssetKey]]]:
    """Requested asset partitions grouped into runs: one per partition (unpartitioned first)."""
    by_partition: dict[str | None, set[AssetKey]] = defaultdict(set)
    for result in evaluation.results:
        key = result.key
        if not isinstance(key, AssetKey):
            continue
        for partition in evaluation.get_requested_partitions(key):
            by_partition[partition].add(key)
    yield from sorted(by_partition.items(), key=lambda item: (item[0] is not None, item[0]))


def _landing_requests(defs: Definitions, instance: DagsterInstance) -> list[RunRequest]:
    sensor = defs.resolve_sensor_def("landing_sensor")
    with build_sensor_context(instance=instance, resources=defs.resources,
                              definitions=defs) as context:
        # Called directly: like the daemon, new tenants' partitions are added before their
        # run requests are looked at (evaluate_tick would validate them first).
        result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return list(result.run_requests or [])


def _dbt_request(defs: Definitions, instance: DagsterInstance) -> RunRequest | None:
    """What the dbt_after_ingestion sensor asks for now."""
    sensor = defs.resolve_sensor_def("dbt_after_ingestion")
    with build_sensor_context(instance=instance, definitions=defs) as context:
        result = sensor(context)
    return result if isinstance(result, RunRequest) else None


def _failed_checks(result) -> list[str]:
    """Checks that failed with ERROR severity (a failed warning is reported in the UI, not
    as a failure)."""
    return [f"{c.asset_key.to_user_string()} {c.check_name}"
            for c in result.get_asset_check_evaluations()
            if not c.passed and c.severity == AssetCheckSeverity.ERROR]


def _execute(defs: Definitions, instance: DagsterInstance, trigger: str, keys: set[AssetKey],
             partition: str | None, run_config: dict) -> PipelineRun:
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]
    started = time.perf_counter()
    # materialize() names every run __ephemeral_asset_job__: a tag says what the run did
    what = PipelineRun(trigger, partition, tuple(sorted(keys)), "", True, 0.0).label
    result = materialize(assets, selection=sorted(keys), partition_key=partition,
                         instance=instance, resources=defs.resources, run_config=run_config,
                         tags={"storepulse/trigger": trigger, "storepulse/run": what},
                         raise_on_error=False)
    return PipelineRun(trigger, partition, tuple(sorted(keys)), result.run_id, result.success,
                       time.perf_counter() - started, _failed_checks(result))
