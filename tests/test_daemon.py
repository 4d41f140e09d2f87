"""Acceptance: the real Dagster daemon runs the platform by itself.

`dagster-daemon run` (with its own code server) in a subprocess, on a temporary DAGSTER_HOME
whose storage is PostgreSQL, with a real SMTP server on loopback. The test only drops files in
the landing folder and watches: nothing here calls `materialize`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.scheduler.instigation import InstigatorType

from alerting.rules import AlertRules, save_rules
from ingestion.generator import DEMO_TENANTS, END_DATE, generate_sample, store_ids
from storepulse.tenants import Tenant, add_tenant
from tests.alerting_servers import SmtpServer
from tests.ingestion_helpers import good_row, pos_csv, scalar

ROOT = Path(__file__).resolve().parents[1]
DAEMON = Path(sys.executable).parent / "dagster-daemon"
# A small tenant: two stores, two years of history with planted anomalies.
SHOP = dataclasses.replace(DEMO_TENANTS[0], stores=2)
DEADLINE_S = 480


def instance_yaml(database_url, dagster_home: Path) -> str:
    """docker/dagster.yaml, the production instance, pointed at the test database, with run
    logs under ``dagster_home``."""
    config = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    config["compute_logs"]["config"]["base_dir"] = str(dagster_home / "compute_logs")
    socket_dir = database_url.query.get("host")
    config["storage"]["postgres"]["postgres_db"].update({
        "username": database_url.username or "postgres",
        "password": database_url.password or "",
        "hostname": database_url.host or "",
        "port": database_url.port or 5432,
        "db_name": database_url.database,
        **({"params": {"host": socket_dir}} if socket_dir else {}),
    })
    return yaml.safe_dump(config)


def _wait_for(what: str, condition: Callable[[], bool], daemon: subprocess.Popen,
              log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited ({daemon.returncode}) waiting for {what}:\n"
                        + log.read_text()[-3000:])
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}; daemon log tail:\n" + log.read_text()[-3000:])


def stop_process_group(process: subprocess.Popen) -> None:
    """The daemon and what it started (its code server, run workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(1)  # children that outlived the daemon get the same end
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _dashboards_synced(instance: DagsterInstance) -> bool:
    return any(AssetKey(["dashboards", "metabase"]) in (record.dagster_run.asset_selection or ())
               for record in instance.get_run_records(
                   RunsFilter(statuses=[DagsterRunStatus.SUCCESS])))


def _tick_reasons(instance: DagsterInstance, sensor_name: str) -> list[str | None]:
    """The skip reasons of the sensor's ticks, as its tick history shows them."""
    states = [state for state in instance.all_instigator_state(
        instigator_type=InstigatorType.SENSOR) if state.instigator_name == sensor_name]
    return [tick.skip_reason for state in states
            for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)]


def _emails_to(smtp: SmtpServer, address: str) -> list:
    return [m for m in smtp.messages if address in str(m["To"])]


@pytest.mark.slow
def test_a_landed_file_reaches_the_managers_inbox_with_nobody_clicking(
        database_env, engine, tmp_path):
    landing, dagster_home = tmp_path / "landing", tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(instance_yaml(database_env, dagster_home))
    add_tenant(engine, Tenant(SHOP.tenant_id, SHOP.name, SHOP.timezone, SHOP.currency,
                              SHOP.country_code))
    manager = f"manager@{SHOP.tenant_id}.example"
    # The export is the tenant's first: two years of history, with events planted in the last
    # one. Anomalies older than the recent days are history and never sent (tested in
    # test_alerting); here the recent days reach back over the planted events.
    save_rules(engine, AlertRules(SHOP.tenant_id, email_recipients=(manager,),
                                  email_min_severity="high", recent_days=366))
    sample = generate_sample(landing, seed=5, scale=0.2, tenants=(SHOP,))
    store = store_ids(SHOP)[0]
    assert sample.anomalies  # an outage, a spike and a decline are planted in the export
    tenant = SHOP.tenant_id

    with SmtpServer() as smtp:
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home),
               "STOREPULSE_LANDING": str(landing), "SMTP_HOST": "127.0.0.1",
               "SMTP_PORT": str(smtp.port), "ALERT_FROM": "StorePulse <alerts@test.local>",
               "DATA_TEAM_EMAIL": "data-team@test.local"}
        log = tmp_path / "daemon.log"
        with open(log, "w") as out:
            daemon = subprocess.Popen([str(DAEMON), "run", "-m", "orchestration.definitions"],
                                      cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        deadline = time.monotonic() + DEADLINE_S
        try:
            # 1. The export flows to marts, forecasts, anomalies and the manager's inbox.
            _wait_for("the anomaly email", lambda: _emails_to(smtp, manager), daemon, log,
                      deadline)
            _wait_for("the forecasts", lambda: scalar(
                engine, "select count(*) from ml.forecasts where tenant_id = :t", t=tenant),
                daemon, log, deadline)
            assert scalar(engine, "select count(*) from marts.fct_sales_lines") == \
                scalar(engine, "select count(*) from raw.sales_lines") > 0
            assert scalar(engine, "select count(*) from ml.forecasts where tenant_id = :t",
                          t=tenant) > 0
            assert scalar(engine, "select count(*) from ml.anomalies where tenant_id = :t "
                                  "and severity in ('high', 'critical')", t=tenant) > 0
            email = _emails_to(smtp, manager)[0]
            assert tenant in str(email["Subject"]) or tenant in email.get_body().get_content()
            # the wave ends with the dashboards sync
            with DagsterInstance.from_config(str(dagster_home)) as instance:
                _wait_for("the dashboards sync", lambda: _dashboards_synced(instance),
                          daemon, log, deadline)
                # the whole wave ran without a failed run
                assert instance.get_run_records(
                    RunsFilter(statuses=[DagsterRunStatus.FAILURE])) == []
                # the tick history says what each tick did, never Dagster's "empty result"
                alert_ticks = _tick_reasons(instance, "anomaly_alert_sensor")
                assert any(re.match(r"[1-9]\d* new anomalies, [1-9]\d* deliveries queued"
                                    r"(, \d+ not sent \([^)]*\))?; [1-9]\d* messages sent",
                                    reason or "")
                           for reason in alert_ticks), alert_ticks
                landing_ticks = _tick_reasons(instance, "landing_sensor")
                quiet = "no new or changed files ready to load for the 1 registered tenant(s)"
                assert quiet in landing_ticks, landing_ticks
                assert not [reason for reason in alert_ticks + landing_ticks
                            if reason and "empty result" in reason]

            # 2. A batch that fails a blocking rule: the data team hears, nothing downstream
            #    runs for it.
            with engine.begin() as conn:
                conn.execute(sa.text("update ops.tenants set max_unit_price = 100"))
            bad_day = END_DATE + timedelta(days=1)
            pos_csv(landing / tenant / SHOP.source / "pricey.csv",
                    [good_row(order=f"P{n}", store=store, at=f"{bad_day} 12:00:00",
                              price="950.00") for n in range(5)])
            _wait_for("the data team's email",
                      lambda: _emails_to(smtp, "data-team@test.local"), daemon, log, deadline)
            failure = _emails_to(smtp, "data-team@test.local")[0]
            assert "failed" in str(failure["Subject"])
            assert "ge_unit_price_plausible" in failure.get_body().get_content()
            with DagsterInstance.from_config(str(dagster_home)) as instance:
                failed = instance.get_run_records(
                    RunsFilter(tags={"dagster/partition": tenant}), limit=1)[0]
                assert failed.dagster_run.is_failure
                time.sleep(15)  # several automation ticks
                after = instance.get_run_records(
                    RunsFilter(created_after=failed.create_timestamp))
            assert [sorted(k.to_user_string() for k in r.dagster_run.asset_selection or ())
                    for r in after if r.dagster_run.run_id != failed.dagster_run.run_id] == []
            assert scalar(engine, "select count(*) from raw.ingest_files where held_at is "
                                  "not null") == 1

            # 3. A later good batch flows through again.
            good_day = END_DATE + timedelta(days=2)
            pos_csv(landing / tenant / SHOP.source / "next.csv",
                    [good_row(order=f"G{n}", store=store, at=f"{good_day} 12:00:00")
                     for n in range(5)])
            _wait_for("the good batch in the marts", lambda: scalar(
                engine, "select max(day) from marts.mart_daily_store_kpis where "
                        "tenant_id = :t", t=tenant) == good_day, daemon, log, deadline)
            # Five orders are far below a usual day: the platform takes the day as cut
            # short (an export taken mid-day), leaves it out of fitting and forecasts it.
            _wait_for("forecasts refreshed from it", lambda: scalar(
                engine, "select min(ds) from ml.forecasts where tenant_id = :t",
                t=tenant) == good_day, daemon, log, deadline)
        finally:
            stop_process_group(daemon)
