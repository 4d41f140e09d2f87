"""The daemon's loop, in this process: the landing sensor, then the automation conditions,
tick after tick, until nothing more is requested.

`storepulse demo` and `bench/end_to_end.py` drive the platform through this, so they run
exactly what the daemon would run from the same definitions (sensors, automation conditions,
blocking checks), only without waiting for ticks and process launches. There is no list of
stages here: what runs, and in which order, is what the conditions on the assets request.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    RunRequest,
    build_sensor_context,
    evaluate_automation_conditions,
    materialize,
)

# A chain is ingestion -> dbt -> ML -> dashboards: a few ticks; more means a loop.
MAX_TICKS = 12


@dataclass
class PipelineRun:
    """One run the loop launched: what triggered it, what it built, how it went."""

    trigger: str  # "landing_sensor" or "automation"
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
    """The daemon's loop over one instance; keeps its automation cursor between calls, as
    the daemon keeps it between ticks."""

    def __init__(self, defs: Definitions, instance: DagsterInstance,
                 run_config: dict | None = None) -> None:
        self.defs = defs
        self.instance = instance
        self.run_config = run_config or {}
        self.cursor = None

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
                           self.run_config)
            runs.append(run)
            if on_run:
                on_run(run)

        if self.cursor is None:
            # A baseline tick first: automation reacts to what changes after it, as the
            # daemon does from its first tick on.
            self.tick(launch, evaluation_time)
        for request in _landing_requests(self.defs, self.instance):
            keys = set(self.defs.resolve_job_def(request.job_name or "ingest_job").asset_layer
                       .executable_asset_keys)
            launch("landing_sensor", keys, request.partition_key)
        for _ in range(MAX_TICKS):
            before = len(runs)
            self.tick(launch, evaluation_time)
            if len(runs) == before:
                break
        return runs

    def tick(self, launch: Callable[[str, set[AssetKey], str | None], None],
             evaluation_time: datetime | None = None) -> None:
        evaluation = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor,
            evaluation_time=evaluation_time)
        for partition, keys in _runs_of(evaluation):
            launch("automation", keys, partition)
        self.cursor = evaluation.cursor


def run_until_settled(defs: Definitions, instance: DagsterInstance,
                      run_config: dict | None = None,
                      on_start: Callable[[str], None] | None = None,
                      on_run: OnRun | None = None) -> list[PipelineRun]:
    """Everything the platform does by itself about what is in landing/ now."""
    return PlatformLoop(defs, instance, run_config).run_until_settled(on_start, on_run)


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
    sensor = defs.get_sensor_def("landing_sensor")
    with build_sensor_context(instance=instance, resources=defs.resources,
                              definitions=defs) as context:
        # Called directly: like the daemon, new tenants' partitions are added before their
        # run requests are looked at (evaluate_tick would validate them first).
        result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return list(result.run_requests or [])


def _execute(defs: Definitions, instance: DagsterInstance, trigger: str, keys: set[AssetKey],
             partition: str | None, run_config: dict) -> PipelineRun:
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]
    started = time.perf_counter()
    result = materialize(assets, selection=sorted(keys), partition_key=partition,
                         instance=instance, resources=defs.resources, run_config=run_config,
                         tags={"storepulse/trigger": trigger}, raise_on_error=False)
    failed = [f"{c.asset_key.to_user_string()} {c.check_name}"
              for c in result.get_asset_check_evaluations() if not c.passed]
    return PipelineRun(trigger, partition, tuple(sorted(keys)), result.run_id, result.success,
                       time.perf_counter() - started, failed)
