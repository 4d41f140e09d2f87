"""Runs StorePulse jobs the way a launched run does, in a process of their own, so the
executor comes from this process's environment (STOREPULSE_EXECUTOR) and not from whatever
an earlier import chose. Prints one JSON line: per run, its job, success and the Celery
workers that executed its steps.

    python -m tests.celery_runs JOB[:PARTITION] ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

ROOT = Path(__file__).resolve().parents[1]


def run(job_name: str, partition: str | None) -> dict:
    job = ReconstructableRepository.for_module(
        "orchestration.definitions", "defs", working_directory=str(ROOT)
    ).get_reconstructable_job(job_name)
    with DagsterInstance.get() as instance:
        if partition:  # what `storepulse tenants add` registers
            instance.add_dynamic_partitions("tenants", [partition])
        tags = {"dagster/partition": partition} if partition else {}
        result = execute_job(job, instance=instance, tags=tags)
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
            "workers": sorted(workers)}


def main(argv: list[str]) -> None:
    outcomes = []
    for spec in argv:
        job_name, _, partition = spec.partition(":")
        outcomes.append(run(job_name, partition or None))
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1:])
