"""The pipeline on Dagster's Celery executor with real workers: RabbitMQ on 127.0.0.1:5672
(what .ci/run checks answers), two `dagster-celery worker` processes, several tenants' loads
and the dbt build executed on them, with the same warehouse as the multiprocess executor
leaves; and a worker killed mid-step, whose step another worker runs again."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from storepulse.migrate import migrate
from storepulse.tenants import set_gate_limits
from storepulse.warehouse import get_engine
from tests.celery_runs import start_worker, wait_ready
from tests.conftest import UCI_CSV, create_database, drop_database, register_demo_tenants
from tests.test_daemon import ROOT, instance_yaml, stop_process_group

BROKER = "pyamqp://guest@127.0.0.1:5672//"
DAGSTER = Path(sys.executable).parent / "dagster"
DAEMON = Path(sys.executable).parent / "dagster-daemon"

pytestmark = pytest.mark.slow


def _broker_answers() -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", 5672)) == 0


@pytest.fixture
def celery_env(database_env, tmp_path, small_sample, monkeypatch):
    """A warehouse with the demo tenants and their landing files, a persistent Dagster
    instance, and the environment runs and workers share (a queue of this test's own)."""
    if not _broker_answers():
        pytest.fail("RabbitMQ does not answer on 127.0.0.1:5672 (.ci/run checks it first)")
    landing = tmp_path / "landing"
    shutil.copytree(small_sample.root, landing)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(instance_yaml(database_env, dagster_home))
    # Create the instance's tables once, here: workers starting together on a fresh instance
    # would race to create them ("type secondary_indexes already exists").
    with DagsterInstance.from_config(str(dagster_home)):
        pass
    # Runs are launched by hand here, not by the landing sensor, on files copied whole: no
    # upload to wait out (STOREPULSE_LANDING_SETTLE_SECONDS)
    env = {"DAGSTER_HOME": str(dagster_home), "STOREPULSE_LANDING": str(landing),
           "STOREPULSE_LANDING_SETTLE_SECONDS": "0",
           "STOREPULSE_HOME": str(tmp_path / "home"), "STOREPULSE_EXECUTOR": "celery",
           "STOREPULSE_CELERY_BROKER": BROKER,
           "STOREPULSE_CELERY_QUEUE": f"storepulse-test-{uuid.uuid4().hex[:8]}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env, tmp_path


def _runs(*jobs: str, env: dict | None = None) -> list[dict]:
    """The jobs (JOB or JOB:PARTITION), one after another, in a process of their own."""
    done = subprocess.run([sys.executable, "-m", "tests.celery_runs", *jobs], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fingerprint(engine: sa.Engine) -> dict[str, object]:
    """What a run leaves in the warehouse, independent of ids and times."""
    queries = {
        "raw lines": "select tenant_id, count(*), sum(quantity * unit_price)::numeric(18,2) "
                     "from raw.sales_lines group by 1 order by 1",
        "ledger": "select tenant_id, file_name, status, rows_read, rows_loaded, "
                  "rows_quarantined from raw.ingest_files order by 1, 2",
        "quarantine": "select tenant_id, count(*) from raw.quarantine group by 1 order by 1",
        "daily kpis": "select tenant_id, count(*), sum(net_revenue)::numeric(18,2) "
                      "from marts.mart_daily_store_kpis group by 1 order by 1",
        "rfm": "select tenant_id, segment, count(*) from marts.mart_customer_rfm "
               "group by 1, 2 order by 1, 2",
    }
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(sa.text(sql))]
                for name, sql in queries.items()}


def _pipeline(tenants: list[str], env: dict | None = None) -> set[str]:
    """Each tenant's load and gate, then the dbt build; the workers that ran the steps."""
    outcomes = _runs(*(f"ingest_job:{tenant}" for tenant in tenants), "dbt_build_job",
                     env=env)
    assert all(outcome["success"] for outcome in outcomes), outcomes
    return {worker for outcome in outcomes for worker in outcome["workers"]}


def test_tenants_pipeline_runs_on_celery_workers_like_on_multiprocess(celery_env, engine,
                                                                       server_url):
    env, tmp_path = celery_env
    tenants = register_demo_tenants(engine)
    workers = [start_worker(f"w{i}", env, tmp_path / f"w{i}.log")
               for i in (1, 2)]
    try:
        for i, worker in enumerate(workers, start=1):
            wait_ready(tmp_path / f"w{i}.log", worker)
        used = _pipeline(tenants)
    finally:
        for worker in workers:
            stop_process_group(worker)
    # every step ran on a worker of this test (named name@host), and both took steps
    assert {worker.split("@")[0] for worker in used} == {"w1", "w2"}, used
    on_celery = _fingerprint(engine)
    assert on_celery["raw lines"] and on_celery["daily kpis"]

    # The same pipeline with the multiprocess executor, into a second warehouse.
    other = create_database(server_url)
    try:
        other_engine = get_engine(other)
        migrate(other_engine)
        register_demo_tenants(other_engine)
        assert _pipeline(tenants, env={
            "DATABASE_URL": other.render_as_string(hide_password=False),
            "STOREPULSE_EXECUTOR": "multiprocess"}) == set()  # no celery worker involved
        assert _fingerprint(other_engine) == on_celery
        other_engine.dispose()
    finally:
        drop_database(other)


def test_a_worker_killed_mid_step_hands_the_step_to_another_and_nothing_is_partial(
        celery_env, engine):
    env, tmp_path = celery_env
    tenant = register_demo_tenants(engine)[0]
    # A large export, so the load is still copying when the worker is killed; its prices
    # (up to 38,970 GBP) and currency pass the tenant's gate.
    set_gate_limits(engine, tenant, max_unit_price=50_000,
                    accepted_currencies=("GBP", "EUR", "USD"))
    big = Path(env["STOREPULSE_LANDING"]) / tenant / "uci_online_retail_csv"
    big.mkdir(parents=True)
    shutil.copy(UCI_CSV, big / UCI_CSV.name)
    victim = start_worker("victim", env, tmp_path / "victim.log")
    wait_ready(tmp_path / "victim.log", victim)
    rescuer = None
    outcome: dict = {}
    run = threading.Thread(target=lambda: outcome.update(run=_runs(f"ingest_job:{tenant}")))
    try:
        killer = subprocess.Popen([sys.executable, "-c", _KILL_WHEN_COPYING, str(victim.pid)],
                                  env={**os.environ, **env})
        run.start()
        assert killer.wait(timeout=240) == 0, "the worker was never seen copying"
        assert victim.wait(timeout=30) is not None
        rescuer = start_worker("rescuer", env, tmp_path / "rescuer.log")
        run.join(timeout=400)
        assert not run.is_alive(), "the run never finished"
    finally:
        for worker in (victim, rescuer):
            if worker is not None:
                stop_process_group(worker)
    (result,) = outcome["run"]
    workers = result["workers"]
    assert result["success"]
    # the step was acknowledged only when done: RabbitMQ gave it to the other worker
    assert {worker.split("@")[0] for worker in workers} == {"victim", "rescuer"}, workers
    with engine.connect() as conn:
        # each file loaded once: the killed attempt's transaction left nothing behind
        loaded = conn.execute(sa.text(
            "select file_name, count(*) from raw.ingest_files where tenant_id = :t "
            "and status = 'loaded' group by 1 order by 1"), {"t": tenant}).all()
        lines = conn.execute(sa.text(
            "select count(*), count(distinct (source_file_id, source_line)), "
            "count(distinct source_file_id) from raw.sales_lines where tenant_id = :t"),
            {"t": tenant}).one()
        read = conn.execute(sa.text(
            "select sum(rows_loaded) from raw.ingest_files where tenant_id = :t and "
            "status = 'loaded' and target = 'sales_lines'"), {"t": tenant}).scalar_one()
    assert loaded and all(count == 1 for _, count in loaded)
    assert UCI_CSV.name in {name for name, _ in loaded}
    assert lines[0] == lines[1] == read > 500_000


# Waits until a COPY into raw.sales_lines runs in this test's database (the worker's step,
# mid-load; other tests may be copying in theirs), then kills the worker's whole process
# group (its main process and its pool) with SIGKILL.
_KILL_WHEN_COPYING = """
import os, signal, sys, time
import sqlalchemy as sa
from storepulse.warehouse import get_engine
pid = sys.argv[1]
engine = get_engine()
deadline = time.monotonic() + 170
while time.monotonic() < deadline:
    with engine.connect() as conn:
        busy = conn.execute(sa.text(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and state <> 'idle' and query ilike 'copy raw.sales_lines%'")).scalar_one()
    if busy:
        os.killpg(int(pid), signal.SIGKILL)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
"""


def test_the_run_queue_runs_tenants_side_by_side_and_never_one_tenant_twice(celery_env,
                                                                            engine):
    """The production instance (docker/dagster.yaml: queued runs, one per tenant partition)
    with the real daemon and two Celery workers: two loads queued for each of two tenants."""
    env, tmp_path = celery_env
    tenants = register_demo_tenants(engine)[:2]
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("tenants", tenants)
    workers = [start_worker(f"q{i}", env, tmp_path / f"q{i}.log") for i in (1, 2)]
    daemon = None
    try:
        for i, worker in enumerate(workers, start=1):
            wait_ready(tmp_path / f"q{i}.log", worker)
        # Queued before the daemon starts, so all four wait for its first dequeue together.
        launched = []
        for _ in range(2):
            for tenant in tenants:
                run_id = str(uuid.uuid4())
                subprocess.run([str(DAGSTER), "job", "launch", "-m", "orchestration.definitions",
                                "-j", "ingest_job", "--run-id", run_id,
                                "--tags", json.dumps({"dagster/partition": tenant})],
                               cwd=ROOT, env={**os.environ, **env}, check=True,
                               capture_output=True, timeout=120)
                launched.append(run_id)
        with open(tmp_path / "daemon.log", "w") as out:
            daemon = subprocess.Popen([str(DAEMON), "run", "-m", "orchestration.definitions"],
                                      cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 400
        with DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                records = [instance.get_run_record_by_id(r) for r in launched]
                if all(r.dagster_run.is_finished for r in records):
                    break
                time.sleep(2)
            else:
                pytest.fail("queued runs never finished: "
                            + (tmp_path / "daemon.log").read_text()[-3000:])
    finally:
        for process in (daemon, *workers):
            if process is not None:
                stop_process_group(process)
    assert all(r.dagster_run.is_success for r in records), [
        (r.dagster_run.run_id, r.dagster_run.status) for r in records]
    spans = [(r.dagster_run.tags["dagster/partition"], r.start_time, r.end_time)
             for r in records]

    def overlap(a, b) -> bool:
        return a[1] < b[2] and b[1] < a[2]

    pairs = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]]
    assert not [p for p in pairs if p[0][0] == p[1][0] and overlap(*p)]  # one tenant at a time
    assert [p for p in pairs if p[0][0] != p[1][0] and overlap(*p)], spans  # side by side
