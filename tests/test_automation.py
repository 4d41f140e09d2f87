"""What runs by itself: the landing sensor and the automation conditions on the assets,
evaluated by Dagster's own evaluator tick after tick (orchestration/pipeline.py), with real
runs, real dbt and real PostgreSQL. The daemon test (test_daemon.py) proves the same chain
with the real daemon in subprocesses.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from orchestration.automation import FORECAST_REFRESH_CRON
from orchestration.pipeline import PipelineRun, PlatformLoop
from quality.gate import list_holds
from tests.ingestion_helpers import good_row, pos_csv, register, scalar
from tests.quality_helpers import history_rows

START = date(2025, 1, 6)
HISTORY_DAYS = 70


def _labels(runs: list[PipelineRun]) -> list[str]:
    return [r.label for r in runs]


def _next_refresh() -> datetime:
    """The daily forecast refresh's next tick, with room before it."""
    minute, hour = (int(part) for part in FORECAST_REFRESH_CRON.split()[:2])
    now = datetime.now(UTC)
    cron_at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return cron_at + timedelta(days=1) if cron_at <= now + timedelta(minutes=5) else cron_at


def _day_rows(day: date, prefix: str, price: str = "3.50") -> list[str]:
    return [good_row(order=f"{prefix}{n}", at=f"{day} 1{n % 8}:00:00", price=price,
                     customer=f"C{n % 5}") for n in range(12)]


@pytest.fixture
def platform(database_env, engine, tmp_path, monkeypatch):
    """Two tenants with 10 weeks of history in landing/, and the platform's loop."""
    landing = tmp_path / "landing"
    monkeypatch.setenv("STOREPULSE_LANDING", str(landing))
    from orchestration.definitions import defs

    for tenant in ("alpha", "beta"):
        register(engine, tenant)
        pos_csv(landing / tenant / "generic_pos_csv" / "history.csv",
                history_rows(start=START, days=HISTORY_DAYS))
    with DagsterInstance.ephemeral() as instance:
        yield landing, PlatformLoop(defs, instance), instance


@pytest.mark.slow
def test_a_landed_file_flows_to_its_tenants_forecasts_and_nothing_else(platform, engine):
    landing, loop, instance = platform
    last_day = START + timedelta(days=HISTORY_DAYS - 1)

    first = loop.run_until_settled()
    assert all(r.success for r in first), [(r.label, r.failed_checks) for r in first]
    assert _labels(first) == ["raw [alpha]", "raw [beta]",
                              "intermediate + marts + staging",
                              "ml [alpha]", "ml [beta]", "dashboards"]
    assert [r.trigger for r in first[:2]] == ["landing_sensor"] * 2
    # runs say what they did in the UI, not only "__ephemeral_asset_job__"
    ml_run = instance.get_run_by_id(next(r.run_id for r in first if r.label == "ml [alpha]"))
    assert ml_run.tags["storepulse/run"] == "ml [alpha]"
    assert scalar(engine, "select count(distinct tenant_id) from ml.forecasts") == 2
    forecasts_before = scalar(engine, "select count(*) from ml.forecasts")

    # Nothing new: nothing runs.
    assert loop.run_until_settled() == []

    # A new day for alpha only: its load, dbt, its ML; beta's forecasts stay as they were.
    pos_csv(landing / "alpha" / "generic_pos_csv" / "day.csv",
            _day_rows(last_day + timedelta(days=1), "N"))
    second = loop.run_until_settled()
    assert all(r.success for r in second)
    assert _labels(second) == ["raw [alpha]", "intermediate + marts + staging", "ml [alpha]",
                               "dashboards"]
    assert scalar(engine, "select max(day) from marts.mart_daily_store_kpis "
                          "where tenant_id = 'alpha'") == last_day + timedelta(days=1)
    assert scalar(engine, "select count(*) from ml.forecasts") == forecasts_before

    # A batch for beta that fails a blocking rule: the run fails, the batch is held, and
    # nothing downstream runs; alpha's gate status is its own.
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.tenants set max_unit_price = 100 "
                             "where tenant_id = 'beta'"))
    pos_csv(landing / "beta" / "generic_pos_csv" / "pricey.csv",
            _day_rows(last_day + timedelta(days=1), "P", price="950.00"))
    third = loop.run_until_settled()
    assert _labels(third) == ["raw [beta]"]
    assert not third[0].success
    assert "raw/sales_lines ge_unit_price_plausible" in third[0].failed_checks
    assert [h.tenant_id for h in list_holds(engine)] == ["beta"]
    assert scalar(engine, "select max(day) from marts.mart_daily_store_kpis "
                          "where tenant_id = 'beta'") == last_day
    gate = AssetCheckKey(AssetKey(["raw", "sales_lines"]), "ge_unit_price_plausible")
    latest = {r.partition: r.status.value for r in reversed(
        instance.event_log_storage.get_asset_check_execution_history(gate, limit=10))}
    assert latest == {"alpha": "SUCCEEDED", "beta": "FAILED"}

    # A later good batch for beta flows through again (the held one stays held).
    pos_csv(landing / "beta" / "generic_pos_csv" / "next.csv",
            _day_rows(last_day + timedelta(days=2), "G"))
    fourth = loop.run_until_settled()
    assert all(r.success for r in fourth)
    assert _labels(fourth) == ["raw [beta]", "intermediate + marts + staging", "ml [beta]",
                               "dashboards"]
    assert scalar(engine, "select max(day) from marts.mart_daily_store_kpis "
                          "where tenant_id = 'beta'") == last_day + timedelta(days=2)


@pytest.mark.slow
def test_forecasts_refresh_on_the_daily_cron_without_new_files(platform, engine):
    _, loop, _ = platform
    last_day = START + timedelta(days=HISTORY_DAYS - 1)

    def forecast_span() -> list[tuple[str, date, date]]:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(
                "select tenant_id, min(ds), max(ds) from ml.forecasts group by tenant_id "
                "order by tenant_id"))]

    loop.op_config = {"store_forecasts": {"today": str(last_day + timedelta(days=1))}}
    assert all(r.success for r in loop.run_until_settled())
    horizon = timedelta(days=30)
    assert forecast_span() == [(t, last_day + timedelta(days=1), last_day + horizon)
                               for t in ("alpha", "beta")]
    cron_at = _next_refresh()
    assert loop.run_until_settled(evaluation_time=cron_at - timedelta(minutes=5)) == []
    # ten days later with no new file: the refresh still reaches 30 days past "today"
    loop.op_config = {"store_forecasts": {"today": str(last_day + timedelta(days=11))}}
    refreshed = loop.run_until_settled(evaluation_time=cron_at + timedelta(minutes=5))
    assert all(r.success for r in refreshed)
    assert forecast_span() == [(t, last_day + timedelta(days=1),
                                last_day + timedelta(days=10) + horizon)
                               for t in ("alpha", "beta")]
    assert sorted((r.partition, sorted(k.to_user_string() for k in r.asset_keys))
                  for r in refreshed if r.partition) == [
        ("alpha", ["ml/forecast_backtests", "ml/forecasts"]),
        ("beta", ["ml/forecast_backtests", "ml/forecasts"])]
    # once a day: the next tick the same morning requests nothing
    assert loop.run_until_settled(evaluation_time=cron_at + timedelta(minutes=10)) == []


def test_a_purged_tenant_leaves_its_partition_and_the_daily_refresh(platform, engine):
    """Purged without DAGSTER_HOME (so nobody told the instance), the tenant's partition is
    deleted by the landing sensor's next tick, and the morning refresh forecasts the others
    only, instead of a run that fails on a tenant no longer registered."""
    from storepulse.tenants import remove_tenant

    landing, loop, instance = platform
    assert all(r.success for r in loop.run_until_settled())
    assert sorted(instance.get_dynamic_partitions("tenants")) == ["alpha", "beta"]
    remove_tenant(engine, "beta", purge=True, landing_dir=landing)
    assert loop.run_until_settled() == []
    assert instance.get_dynamic_partitions("tenants") == ["alpha"]
    cron_at = _next_refresh()
    assert loop.run_until_settled(evaluation_time=cron_at - timedelta(minutes=5)) == []
    refreshed = loop.run_until_settled(evaluation_time=cron_at + timedelta(minutes=5))
    assert [(r.label, r.success) for r in refreshed] == [("ml [alpha]", True),
                                                          ("dashboards", True)]


def test_one_dbt_build_per_wave_released_even_by_a_failed_last_load(platform, monkeypatch):
    """dbt_after_ingestion waits for the wave's ingestion runs; the one that ends the wave may
    fail (a held batch) and still releases the build."""
    from dagster import build_sensor_context

    # the ingestion run below is launched by hand, not by the landing sensor, right after
    # the fixture wrote whole files: nothing to wait out
    monkeypatch.setenv("STOREPULSE_LANDING_SETTLE_SECONDS", "0")

    from orchestration.definitions import defs

    _, _, instance = platform
    sensor = defs.resolve_sensor_def("dbt_after_ingestion")

    def evaluate():
        with build_sensor_context(instance=instance, definitions=defs) as context:
            return sensor(context)

    assert "no ingestion run has loaded new data" in evaluate().skip_message
    # a build canceled before it started read nothing, and does not confuse the sensor
    canceled = instance.create_run_for_job(defs.resolve_job_def("dbt_build_job"),
                                           run_config={})
    instance.report_run_canceled(canceled)
    assert "no ingestion run has loaded new data" in evaluate().skip_message
    ingest = defs.resolve_job_def("ingest_job")
    instance.add_dynamic_partitions("tenants", ["alpha", "beta"])
    assert ingest.execute_in_process(instance=instance, partition_key="alpha").success
    # beta's load has been requested and not finished (NOT_STARTED: in flight)
    still_loading = instance.create_run_for_job(ingest, run_config={},
                                                tags={"dagster/partition": "beta"})
    waiting = evaluate()
    assert "wait for 1 ingestion run(s) still going" in waiting.skip_message
    instance.report_run_failed(still_loading)
    request = evaluate()
    assert request.run_key.startswith("dbt-after-")
    assert request.tags["storepulse/loads"] == "1"


def test_storepulse_forecast_refreshes_one_tenant_without_asset_keys(platform, engine):
    from click.testing import CliRunner

    from storepulse_cli.commands import cli

    _, loop, _ = platform
    assert all(r.success for r in loop.run_until_settled())
    before = {t: scalar(engine, "select max(created_at) from ml.forecasts where tenant_id = :t",
                        t=t) for t in ("alpha", "beta")}
    done = CliRunner().invoke(cli, ["forecast", "alpha"])
    assert done.exit_code == 0, done.output
    # (on a fresh DAGSTER_HOME, Dagster's one-time telemetry notice comes first, on stderr)
    lines = done.stdout.strip().splitlines()
    headline = next(line for line in lines if line.startswith("ml [alpha]"))
    assert headline.startswith("ml [alpha]: done in ")
    forecasts, anomalies = (next(line for line in lines if line.split()[0] == label)
                            for label in ("forecasts", "anomalies"))
    # what the run left, as status says it
    made = scalar(engine, "select max(created_at) from ml.forecasts where tenant_id = 'alpha'")
    assert forecasts.split()[:3] == ["forecasts", "made", f"{made:%Y-%m-%d}"], forecasts
    through = scalar(engine, "select scanned_through from ml.anomaly_scans "
                             "where tenant_id = 'alpha'")
    assert anomalies.split()[:4] == ["anomalies", "judged", "through", str(through)], anomalies
    assert scalar(engine, "select max(created_at) from ml.forecasts where tenant_id = 'alpha'"
                  ) > before["alpha"]
    assert scalar(engine, "select max(created_at) from ml.forecasts where tenant_id = 'beta'"
                  ) == before["beta"]
    unknown = CliRunner().invoke(cli, ["forecast", "nosuch"])
    assert unknown.exit_code != 0 and "not registered" in str(unknown.exception)


@pytest.mark.slow
def test_batches_published_outside_a_run_flow_on_by_themselves(database_env, engine, tmp_path,
                                                               monkeypatch):
    """A held batch released by a person, one its re-run checks pass after a limit changed,
    and a `storepulse ingest` passed by `storepulse quality check` each reach the marts, the
    tenant's forecasts and the dashboards with nobody starting a run: the Dagster instance is
    told, and the dbt sensor and the automation take it from there."""
    from click.testing import CliRunner

    from orchestration.assets.ingestion import ingest_landing_files
    from orchestration.definitions import defs
    from storepulse_cli.commands import cli

    landing = tmp_path / "landing"
    monkeypatch.setenv("STOREPULSE_LANDING", str(landing))
    monkeypatch.setenv("STOREPULSE_LANDING_SETTLE_SECONDS", "0")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    register(engine, "alpha")
    pos_csv(landing / "alpha" / "generic_pos_csv" / "history.csv",
            history_rows(start=START, days=HISTORY_DAYS))
    last_day = START + timedelta(days=HISTORY_DAYS - 1)

    def marts_through():
        return scalar(engine, "select max(day) from marts.mart_daily_store_kpis")

    def limit_price(limit: int) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("update ops.tenants set max_unit_price = :p"), {"p": limit})

    def flows_on(runs: list[PipelineRun], day: date) -> None:
        assert all(r.success for r in runs), [(r.label, r.failed_checks) for r in runs]
        assert _labels(runs) == ["intermediate + marts + staging", "ml [alpha]", "dashboards"]
        assert runs[0].trigger == "dbt_after_ingestion"
        assert marts_through() == day
        assert scalar(engine, "select max(created_at) from ml.forecasts") > made

    runner = CliRunner()
    with DagsterInstance.get() as instance:
        loop = PlatformLoop(defs, instance)
        assert all(r.success for r in loop.run_until_settled())
        assert marts_through() == last_day

        # held, then released by a person
        limit_price(100)
        pos_csv(landing / "alpha" / "generic_pos_csv" / "pricey.csv",
                _day_rows(last_day + timedelta(days=1), "P", price="950.00"))
        held = loop.run_until_settled()
        assert _labels(held) == ["raw [alpha]"] and not held[0].success
        made = scalar(engine, "select max(created_at) from ml.forecasts")
        released = runner.invoke(cli, ["quality", "release", "alpha"])
        assert released.exit_code == 0, released.output
        assert "1 file(s) released" in released.output
        assert "told the Dagster instance in DAGSTER_HOME: its daemon builds the marts" \
            in released.output
        flows_on(loop.run_until_settled(), last_day + timedelta(days=1))
        assert loop.run_until_settled() == []

        # held, then passed by its checks re-run (as from the UI) once the limit is raised
        pos_csv(landing / "alpha" / "generic_pos_csv" / "pricier.csv",
                _day_rows(last_day + timedelta(days=2), "Q", price="990.00"))
        assert not loop.run_until_settled()[0].success
        made = scalar(engine, "select max(created_at) from ml.forecasts")
        limit_price(5_000)
        checks_alone = defs.resolve_job_def("ingest_job").get_subset(
            asset_selection=set(), asset_check_selection=set(ingest_landing_files.check_keys))
        rechecked = checks_alone.execute_in_process(instance=instance, partition_key="alpha")
        assert rechecked.success and list_holds(engine) == []
        assert rechecked.get_asset_materialization_events() == []  # checks alone
        flows_on(loop.run_until_settled(), last_day + timedelta(days=2))

        # loaded by hand, published by `quality check`
        made = scalar(engine, "select max(created_at) from ml.forecasts")
        by_hand = pos_csv(tmp_path / "by_hand" / "day.csv",
                          _day_rows(last_day + timedelta(days=3), "H"))
        assert runner.invoke(cli, ["ingest", str(by_hand), "--tenant", "alpha"]).exit_code == 0
        assert loop.run_until_settled() == []  # not published yet
        checked = runner.invoke(cli, ["quality", "check", "alpha"])
        assert checked.exit_code == 0, checked.output
        assert "published 1 file(s)" in checked.output
        # a loop started after the publication (the next `storepulse demo`) sees it too:
        # its cursor is the last loop's, kept in the instance, as the daemon keeps its own
        later_loop = PlatformLoop(defs, instance)
        flows_on(later_loop.run_until_settled(), last_day + timedelta(days=3))
        assert later_loop.run_until_settled() == []
