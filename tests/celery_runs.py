"""Runs StorePulse jobs the way a launched run does, in a process of their own, so the
executor comes from this process's environment (STOREPULSE_EXECUTOR) and not from whatever
an earlier import chose. Prints one JSON line: per run, its job, success and the Celery
workers that executed its steps. Also starts and stops `dagster-celery worker` processes for
the Celery tests and ``bench/end_to_end.py --executor celery``.

    python -m tests.celery_runs JOB[:PARTITION][+ASSET/KEY,...] ...

``__ASSET_JOB:tenant+ml/forecasts,ml/anomalies`` runs those assets of one tenant, as an
automation condition's run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dagster import AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(sys.executable).parent / "dagster-celery"


def start_worker(name: str, env: dict, log: Path) -> subprocess.Popen:
    """One `dagster-celery worker` taking one step at a time from the queue in ``env``."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(WORKER), "worker", "start", "-A", "dagster_celery.app",
             "-y", str(ROOT / "deploy" / "celery" / "worker.yaml"), "-n", name,
             "-q", env["STOREPULSE_CELERY_QUEUE"], "--", "--concurrency=1"],
            cwd=ROOT, env={**os.environ, **env,
                           # the worker CLI starts `celery` from PATH
                           "PATH": f"{WORKER.parent}{os.pathsep}{os.environ['PATH']}"},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(log: Path, worker: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if " ready." in log.read_text():
            return
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"the worker never became ready: {log.read_text()[-2000:]}")


def run(job_name: str, partition: str | None, assets: list[str] | None = None) -> dict:
    job = ReconstructableRepository.for_module(
        "orchestration.definitions", "defs", working_directory=str(ROOT)
    ).get_reconstructable_job(job_name)
    with DagsterInstance.get() as instance:
        if partition:  # what `storepulse tenants add` registers
            instance.add_dynamic_partitions("tenants", [partition])
        tags = {"dagster/partition": partition} if partition else {}
        selection = [AssetKey(key.split("/")) for key in assets] if assets else None
        result = execute_job(job, instance=instance, tags=tags, asset_selection=selection)
        workers = set()
        for record in instance.get_event_records(
                EventRecordsFilter(event_type=DagsterEventType.ENGINE_EVENT)):
            entry = record.event_log_entry
            if entry.run_id != result.run_id:
                continue
            metadata = entry.dagster_event.event_specific_data.metadata or {}
            if "Celery worker" in metadata:
                workers.add(str(metadata["Celery worker"].value))
    return {"job": job_name, "partition": partition, "success": result.success,
            "run_id": result.run_id, "workers": sorted(workers)}


def main(argv: list[str]) -> None:
    outcomes = []
    for spec in argv:
        spec, _, assets = spec.partition("+")
        job_name, _, partition = spec.partition(":")
        outcomes.append(run(job_name, partition or None, assets.split(",") if assets else None))
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1:])
