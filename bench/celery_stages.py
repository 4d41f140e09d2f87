"""The pipeline on Dagster's Celery executor with real workers, for ``bench/end_to_end.py
--executor celery --workers 1,2``.

For each worker count, in a scratch database with a Dagster instance of its own (the
production instance config, docker/dagster.yaml) and a RabbitMQ queue of its own: start that
many ``dagster-celery worker`` processes (one step at a time each), then run the pipeline as
the daemon would launch it: every tenant's ingestion run (load and raw quality gate) at once,
the dbt build, every tenant's forecast and anomaly run at once. Each run is a process of its
own whose steps go to the workers. A stage's time is from its first step's start to its last
step's end (the runs' own start-up is counted apart), read from the instance's event log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from dagster import DagsterInstance

from bench.common import scratch_database, step_spans
from ingestion.generator import TenantProfile, generate_sample
from storepulse.tenants import Tenant, add_tenant
from tests.celery_runs import start_worker, wait_ready
from tests.test_daemon import instance_yaml, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("STOREPULSE_CELERY_BROKER", "pyamqp://guest@127.0.0.1:5672//")
ML_ASSETS = "ml/forecasts,ml/forecast_backtests,ml/anomalies"
PARALLEL_STAGES = ("ingest + checks", "forecasts + anomalies")


def _launch(specs: list[str], env: dict) -> list[dict]:
    """Each run spec in a process of its own, all at once (as the daemon launches a wave)."""
    processes = [subprocess.Popen([sys.executable, "-m", "tests.celery_runs", spec], cwd=ROOT,
                                  env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for spec in specs]
    outcomes = []
    for spec, process in zip(specs, processes, strict=True):
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            sys.exit(f"run {spec} crashed:\n{err[-3000:]}")
        outcome, = json.loads(out.strip().splitlines()[-1])
        if not outcome["success"]:
            sys.exit(f"run {spec} failed; its logs are in the instance under {env['DAGSTER_HOME']}")
        outcomes.append(outcome)
    return outcomes


def _step_window(instance: DagsterInstance, run_ids: list[str]) -> tuple[float, float]:
    """Seconds from the stage's first step start to its last step end, and the steps' busy
    seconds added up."""
    spans = [span for run_id in run_ids for span in step_spans(instance, run_id).values()]
    busy = sum(end - start for start, end in spans)
    return max(end for _, end in spans) - min(start for start, _ in spans), busy


def run_on_workers(profiles: tuple[TenantProfile, ...], scale: float, workers: int) -> dict:
    tenants = [p.tenant_id for p in profiles]
    with scratch_database("sp_celery") as (url, engine), tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        landing = tmp_path / "landing"
        generate_sample(landing, seed=11, scale=scale, tenants=profiles)
        for p in profiles:
            add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                      p.country_code), landing)
        home = tmp_path / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text(instance_yaml(url, home))
        with DagsterInstance.from_config(str(home)):
            pass  # its tables, before workers race to create them
        run_tag = uuid.uuid4().hex[:8]  # queue and worker names no other run shares
        # runs launched by hand on files written whole: no upload to wait out
        env = {"DATABASE_URL": url.render_as_string(hide_password=False),
               "DAGSTER_HOME": str(home), "STOREPULSE_LANDING": str(landing),
               "STOREPULSE_LANDING_SETTLE_SECONDS": "0",
               "STOREPULSE_HOME": str(tmp_path / "home"), "STOREPULSE_EXECUTOR": "celery",
               "STOREPULSE_CELERY_BROKER": BROKER,
               "STOREPULSE_CELERY_QUEUE": f"storepulse-bench-{run_tag}"}
        started = [start_worker(f"bench{i}-{run_tag}", env, tmp_path / f"bench{i}.log")
                   for i in range(workers)]
        stages: dict[str, dict] = {}
        try:
            for i, worker in enumerate(started):
                wait_ready(tmp_path / f"bench{i}.log", worker)
            for stage, specs in (
                    ("ingest + checks", [f"ingest_job:{t}" for t in tenants]),
                    ("dbt build", ["dbt_build_job"]),
                    ("forecasts + anomalies", [f"__ASSET_JOB:{t}+{ML_ASSETS}" for t in tenants])):
                print(f"    {stage} ...", flush=True)
                began = time.perf_counter()
                outcomes = _launch(specs, env)
                stages[stage] = {"wall_s": time.perf_counter() - began,
                                 "run_ids": [o["run_id"] for o in outcomes],
                                 "workers": sorted({w.split("@")[0].split("-")[0]
                                                    for o in outcomes for w in o["workers"]})}
        finally:
            for worker in started:
                stop_process_group(worker)
        with DagsterInstance.from_config(str(home)) as instance:
            for figures in stages.values():
                figures["steps_s"], figures["busy_s"] = _step_window(instance,
                                                                     figures.pop("run_ids"))
        for stage, figures in stages.items():
            print(f"    {stage:<22} steps {figures['steps_s']:7.1f} s   busy "
                  f"{figures['busy_s']:7.1f} s   with runs' start-up {figures['wall_s']:7.1f} s"
                  f"   on {', '.join(figures['workers'])}", flush=True)
        return stages
