"""Freshness through the real daemon: from a daily file landing to the manager's inbox.

For each size (stores over tenants, two years of history, as in bench/end_to_end.py) in a
scratch database: the history is loaded and modelled in-process by the platform's own loop
(not timed), then `dagster-daemon run` starts on the production instance file
(docker/dagster.yaml: PostgreSQL storage, the run queue) with a real SMTP server on loopback.
Every tenant's next-day file lands at once, the first tenant's first store selling three times
its usual orders for the weekday (an anomaly to alert on), and the script watches:

- landed -> marts: every tenant's daily KPIs reach the new day;
- landed -> forecasts: every tenant's forecasts are rewritten by a run after the landing
  (most series start the day after; a store whose new day looks cut short starts on it);
- landed -> email: the alert about that store and day arrives (not any alert for the day:
  another store's may come first, or instead).

The daemon's overhead is the part of landed -> email when no step of the wave was running
(ticks, queueing, launching runs, process start-up, the alert sensor's wait), from the runs'
own step events; `overhead_share` is that over landed -> email.
Target at 200 stores: email under 180 s, overhead under 25% of it.

    python bench/freshness.py [--sizes 10,50,200] [--scale 0.35]

``--executor celery --workers N`` runs the steps as docker-compose.yml does: on N real
``dagster-celery worker`` processes (one step at a time each, RabbitMQ on 127.0.0.1:5672 or
STOREPULSE_CELERY_BROKER, a queue of this run's own) started before the daemon. By default a
run's steps execute in the run's own process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
import sqlalchemy as sa
from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter
from dagster._core.definitions.partitions.context import partition_loading_context

from alerting.outbox import enqueue_anomalies
from alerting.rules import AlertRules, save_rules
from bench.common import (
    QUIET_RUNS,
    emit_json,
    machine,
    print_table,
    scratch_database,
    step_spans,
)
from bench.end_to_end import settle, tenant_profiles
from ingestion.generator import END_DATE, TenantProfile, generate_sample, store_ids
from orchestration.definitions import defs
from orchestration.pipeline import PlatformLoop
from storepulse.settings import load_settings
from storepulse.tenants import Tenant, add_tenant
from tests.celery_runs import start_worker, wait_ready
from tests.test_daemon import instance_yaml, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
DAEMON = Path(sys.executable).parent / "dagster-daemon"
# The history ends on a Sunday so the new day is a Monday, a trading day for every profile
# (one closes on Sundays, and a closed day has no file to land).
HISTORY_END = END_DATE + timedelta(days=(6 - END_DATE.weekday()))
NEW_DAY = HISTORY_END + timedelta(days=1)
TIMEOUT_S = int(os.environ.get("FRESHNESS_TIMEOUT_S", "900"))
BROKER = os.environ.get("STOREPULSE_CELERY_BROKER", "pyamqp://guest@127.0.0.1:5672//")


def typical_orders(landing: Path, tenant_id: str, store_id: str, weekday: int) -> float:
    """The store's median orders on this weekday over the history's last eight weeks."""
    files = sorted((landing / tenant_id).rglob("sales_*.csv"))[-3:]
    lines = pd.concat([pd.read_csv(path, dtype=str, usecols=["store_id", "order_id",
                                                              "ordered_at"])
                       for path in files], ignore_index=True)
    lines = lines[lines["store_id"] == store_id]
    lines = lines.assign(day=pd.to_datetime(lines["ordered_at"].str[:10]))
    orders = lines[lines["day"].dt.weekday == weekday].groupby("day")["order_id"].nunique()
    return float(orders.tail(8).median())


def generate_next_day(folder: Path, profiles, scale: float) -> None:
    """Every tenant's sales of NEW_DAY alone, with order ids apart from the history's."""
    generate_sample(folder, seed=21, scale=scale, tenants=profiles, end_date=NEW_DAY,
                    history_days=1, broken_rows=False, order_offset=9_000_000)


def land_next_day(landing: Path, profiles, scale: float) -> None:
    """Every tenant's next-day file; the first tenant's first store sells at least three
    times its usual orders for the weekday. (The next day is generated apart from the
    history, so a store's day in it is not sized like its past: copies of its orders make
    the spike, as many as it takes.)"""
    staging = landing.parent / "next_day"
    generate_next_day(staging, profiles, scale)
    first = profiles[0]
    store = store_ids(first)[0]
    usual = typical_orders(landing, first.tenant_id, store, NEW_DAY.weekday())
    for path in sorted((staging / first.tenant_id).rglob("sales_*.csv")):
        day = pd.read_csv(path, dtype=str)
        spike = day[day["store_id"] == store]
        copies = max(2, math.ceil(3 * usual / spike["order_id"].nunique()) - 1)
        pd.concat([day, *(spike.assign(order_id=spike["order_id"] + f"-x{n}")
                          for n in range(1, copies + 1))]).to_csv(path, index=False)
    for tenant in [p.tenant_id for p in profiles]:
        for path in (staging / tenant).rglob("*.*"):
            if path.parent.name != "stores_csv":
                path.rename(landing / tenant / path.parent.name / f"next_{path.name}")


def busy_seconds(instance: DagsterInstance, since: datetime, until: float) -> float:
    """Seconds between ``since`` and ``until`` when at least one step of a run was running."""
    intervals = [span for record in instance.get_run_records(RunsFilter(created_after=since))
                 for span in step_spans(instance, record.dagster_run.run_id).values()]
    busy, end = 0.0, since.timestamp()
    for start, stop in sorted(intervals):
        start, stop = max(start, end), min(stop, until)
        if stop > start:
            busy += stop - start
            end = stop
    return busy


@contextlib.contextmanager
def _restored_environment():
    """Each size points DATABASE_URL at its scratch database: the next size starts from the
    server's."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def step_workers(executor: str, workers: int, env: dict, logs: Path):
    """The executor's environment for the daemon: nothing for in-process steps; for Celery,
    ``workers`` ready workers on a queue no other run shares, stopped afterwards."""
    if executor != "celery":
        yield {}
        return
    with DagsterInstance.from_config(env["DAGSTER_HOME"]):
        pass  # its tables, before the workers race to create them
    celery_env = {**env, "STOREPULSE_EXECUTOR": "celery", "STOREPULSE_CELERY_BROKER": BROKER,
                  "STOREPULSE_CELERY_QUEUE": f"storepulse-fresh-{uuid.uuid4().hex[:8]}"}
    started = [start_worker(f"fresh{i}-{celery_env['STOREPULSE_CELERY_QUEUE'][-8:]}",
                            celery_env, logs / f"celery-worker-{i}.log")
               for i in range(workers)]
    try:
        for i, worker in enumerate(started):
            wait_ready(logs / f"celery-worker-{i}.log", worker)
        yield celery_env
    finally:
        for worker in started:
            stop_process_group(worker)


def bench_size(stores: int, scale: float, executor: str = "in_process",
               workers: int = 2) -> dict:
    from tests.alerting_servers import SmtpServer  # a real SMTP server on loopback

    profiles = tenant_profiles(stores)
    with scratch_database("sp_fresh") as (url, engine), tempfile.TemporaryDirectory() as tmp, \
            _restored_environment(), contextlib.ExitStack() as stack:
        landing, dagster_home = Path(tmp) / "landing", Path(tmp) / "dagster"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(instance_yaml(url, dagster_home))
        generate_sample(landing, seed=11, scale=scale, tenants=profiles, end_date=HISTORY_END)
        for p in profiles:
            add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                      p.country_code), landing)
            save_rules(engine, AlertRules(p.tenant_id, email_min_severity="high",
                                          email_recipients=(f"manager@{p.tenant_id}.example",)))
        os.environ.update(DATABASE_URL=url.render_as_string(hide_password=False),
                          STOREPULSE_LANDING=str(landing))
        print(f"\n{stores} stores over {len(profiles)} tenants: loading the history ...",
              flush=True)
        with DagsterInstance.ephemeral() as history, contextlib.redirect_stdout(io.StringIO()):
            PlatformLoop(defs, history, run_config=QUIET_RUNS).run_until_settled()
        # The history's recent anomalies were alerted long ago (older ones are suppressed).
        enqueue_anomalies(engine, 0)
        with engine.begin() as conn:
            conn.execute(sa.text("update ops.alert_deliveries set status = 'sent', "
                                 "sent_at = now() where status = 'pending'"))
        settle(engine)
        rows = engine.connect().execute(sa.text("select count(*) from raw.sales_lines")).scalar()

        daemon_log = load_settings().home / "bench" / f"freshness-daemon-{stores}.log"
        daemon_log.parent.mkdir(parents=True, exist_ok=True)
        with SmtpServer() as smtp, open(daemon_log, "w") as log:
            env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "SMTP_HOST": "127.0.0.1",
                   "SMTP_PORT": str(smtp.port), "ALERT_FROM": "alerts@bench.local"}
            env |= stack.enter_context(step_workers(executor, workers, env, daemon_log.parent))
            daemon = subprocess.Popen([str(DAEMON), "run", "-m", "orchestration.definitions"],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            try:
                time.sleep(30)  # its code server up and first ticks done, as in production
                landed_at = datetime.now(UTC)
                land_next_day(landing, profiles, scale)
                landed = time.monotonic()
                figures = watch(engine, smtp, profiles, landed, landed_at, daemon)
            except TimeoutError as exc:
                explain_timeout(dagster_home, landed_at, daemon_log)
                sys.exit(str(exc))
            finally:
                stop_process_group(daemon)
            with DagsterInstance.from_config(str(dagster_home)) as instance:
                busy = busy_seconds(instance, landed_at,
                                    landed_at.timestamp() + figures["landed_to_email_s"])
                runs = len(instance.get_run_records(RunsFilter(created_after=landed_at)))
                print_timeline(instance, landed_at)
                if os.environ.get("FRESHNESS_EXPLAIN"):
                    explain_automation(instance, landed_at)
            print(f"  daemon log: {daemon_log}")
    email = figures["landed_to_email_s"]
    figures |= {"stores": stores, "tenants": len(profiles), "rows": rows, "runs": runs,
                "executor": executor if executor != "celery" else f"celery x{workers}",
                "busy_s": round(busy, 1), "overhead_s": round(email - busy, 1),
                "overhead_share": round((email - busy) / email, 3)}
    print(f"    {figures}", flush=True)
    return figures


def print_timeline(instance: DagsterInstance, since: datetime) -> None:
    """Each run's hops, in seconds after the landing began (the next day's files generated,
    then moved into the landing folders; the figures count from when they were all there):
    requested (created), its process started, first step started, last step ended."""
    rows = []
    for record in reversed(instance.get_run_records(RunsFilter(created_after=since))):
        run, marks = record.dagster_run, {}
        for event in instance.all_logs(run.run_id):
            kind = event.dagster_event.event_type if event.dagster_event else None
            if kind == DagsterEventType.RUN_START:
                marks.setdefault("started", event.timestamp)
            elif kind == DagsterEventType.STEP_START:
                marks.setdefault("first step", event.timestamp)
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                marks["last step end"] = event.timestamp
        rows.append([run.job_name, run.tags.get("dagster/partition", "-"),
                     *(f"{at - since.timestamp():.1f}" if at else "-" for at in (
                         record.create_timestamp.timestamp(), marks.get("started"),
                         marks.get("first step"), marks.get("last step end")))])
    print_table("Runs after the landing began (s)", ["job", "partition", "requested",
                                                    "process up", "first step",
                                                    "last step end"], rows)


def explain_automation(instance: DagsterInstance, since: datetime) -> None:
    """Why ml/forecasts was (not) requested at each tick: every sub-condition's true subset."""
    records = instance.schedule_storage.get_auto_materialize_asset_evaluations(
        AssetKey(["ml", "forecasts"]), limit=40)
    for record in reversed(records):
        if record.timestamp < since.timestamp():
            continue
        print(f"  tick {record.evaluation_id} at {record.timestamp - since.timestamp():.1f} s")

        def walk(evaluation, depth: int = 2) -> None:
            label = evaluation.condition_snapshot.label or evaluation.condition_snapshot.name
            size = evaluation.true_subset.size if hasattr(evaluation.true_subset, "size") \
                else evaluation.true_subset
            print(f"{' ' * 2 * depth}{label}: {size}")
            for child in evaluation.child_evaluations:
                walk(child, depth + 1)

        with partition_loading_context(datetime.now(UTC), instance):
            walk(record.get_evaluation_with_run_ids().evaluation)


def explain_timeout(dagster_home: Path, since: datetime, daemon_log: Path) -> None:
    """What the daemon did after the files landed, so a stalled wave can be diagnosed."""
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for record in reversed(instance.get_run_records(RunsFilter(created_after=since))):
            run = record.dagster_run
            print(f"  run {run.run_id[:8]} {run.job_name} "
                  f"{run.tags.get('dagster/partition', '-')} {run.status.value}")
    print("  daemon log, last lines:")
    for line in daemon_log.read_text().splitlines()[-40:]:
        print(f"    {line}")


def planted_alert(message, first: TenantProfile) -> bool:
    """The email about the tripled day: the first tenant's digest with a line for its first
    store on the new day (store ids repeat across tenants; another tenant's alert for the new
    day, or one about another of this tenant's stores, is not the one planted)."""
    line = f"{NEW_DAY} store {store_ids(first)[0]}:"
    return (f"] {first.tenant_id}:" in str(message["Subject"])
            and line in message.get_body(("plain",)).get_content())


def watch(engine, smtp, profiles, landed: float, landed_at: datetime,
          daemon: subprocess.Popen) -> dict:
    tenants = [p.tenant_id for p in profiles]
    seen: dict[str, float] = {}
    while len(seen) < 3:
        if daemon.poll() is not None:
            sys.exit(f"the daemon exited with {daemon.returncode}")
        if time.monotonic() - landed > TIMEOUT_S:
            raise TimeoutError(f"timed out after {TIMEOUT_S} s; reached: {seen}")
        with engine.connect() as conn:
            if "marts" not in seen and conn.execute(sa.text(
                    "select count(*) from (select tenant_id from marts.mart_daily_store_kpis "
                    "group by tenant_id having max(day) = :d) as t"),
                    {"d": NEW_DAY}).scalar() == len(tenants):
                seen["marts"] = time.monotonic() - landed
            # Not "starts the day after": the partial-day rule (ml.forecasting) forecasts a
            # store's new day itself when its sales look cut short, as a small store's may.
            if "forecasts" not in seen and conn.execute(sa.text(
                    "select count(*) from (select tenant_id from ml.forecasts group by "
                    "tenant_id having min(created_at) >= :t) as t"),
                    {"t": landed_at}).scalar() == len(tenants):
                seen["forecasts"] = time.monotonic() - landed
        if "email" not in seen and any(planted_alert(message, profiles[0])
                                       for message in list(smtp.messages)):
            seen["email"] = time.monotonic() - landed
        time.sleep(0.5)
    return {"landed_to_marts_s": round(seen["marts"], 1),
            "landed_to_forecasts_s": round(seen["forecasts"], 1),
            "landed_to_email_s": round(seen["email"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="store counts, comma-separated")
    parser.add_argument("--scale", type=float, default=0.35, help="order volume per store")
    parser.add_argument("--executor", choices=("in_process", "celery"), default="in_process",
                        help="where the runs' steps execute (docker-compose.yml: celery)")
    parser.add_argument("--workers", type=int, default=2,
                        help="Celery workers, with --executor celery")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    facts = machine()
    print(f"machine: {facts}")
    results = [bench_size(int(n), args.scale, args.executor, args.workers)
               for n in args.sizes.split(",")]
    print_table(f"Daily file to inbox through dagster-daemon (scale {args.scale}; overhead = "
                "time no step was running: ticks, queue, launch, process start-up)",
                ["stores", "tenants", "raw rows", "steps on", "runs", "to marts s",
                 "to forecasts s", "to email s", "steps busy s", "overhead s", "overhead share"],
                [[r["stores"], r["tenants"], f"{r['rows']:,}", r["executor"], r["runs"],
                  r["landed_to_marts_s"], r["landed_to_forecasts_s"], r["landed_to_email_s"],
                  r["busy_s"], r["overhead_s"], f"{r['overhead_share']:.0%}"]
                 for r in results])
    emit_json({"machine": facts, "scale": args.scale, "executor": results[0]["executor"],
               **{str(r["stores"]): {k: r[k] for k in (
                   "landed_to_marts_s", "landed_to_forecasts_s", "landed_to_email_s",
                   "overhead_share", "overhead_s", "busy_s", "runs")} for r in results}})


if __name__ == "__main__":
    main()
