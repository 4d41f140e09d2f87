from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from storepulse_cli.commands import cli

COMMANDS = [
    [], ["demo"], ["db"], ["db", "migrate"], ["db", "url"], ["tenants"], ["tenants", "add"],
    ["tenants", "list"], ["tenants", "remove"], ["tenants", "limits"],
    ["tenants", "native-sql"], ["ingest"], ["status"], ["forecast"], ["generate-sample"],
    ["dbt"], ["specs"], ["specs", "check"], ["specs", "schema"],
    ["quality"], ["quality", "check"], ["quality", "holds"], ["quality", "release"],
    ["alerts"], ["alerts", "set"], ["alerts", "outbox"], ["dashboards"], ["dashboards", "sync"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "storepulse")
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    # The help says what the command does, not just its name.
    assert len(result.output.splitlines()) >= 3


def test_tenants_add_and_list(database_env, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREPULSE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    runner = CliRunner()
    added = runner.invoke(cli, ["tenants", "add", "corner_shop", "--name", "Corner Shop",
                                "--timezone", "Europe/Paris", "--currency", "EUR",
                                "--country", "FR"])
    assert added.exit_code == 0, added.output
    assert "registered" in added.output
    assert "generated password for" in added.output
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        assert instance.has_dynamic_partition("tenants", "corner_shop")
    assert (tmp_path / "landing" / "corner_shop").is_dir()
    listed = runner.invoke(cli, ["tenants", "list"])
    assert "corner_shop" in listed.output and "Europe/Paris" in listed.output
    # the same again is fine; other details are refused, naming them, not silently dropped
    again = runner.invoke(cli, ["tenants", "add", "corner_shop", "--name", "Corner Shop",
                                "--timezone", "Europe/Paris", "--currency", "EUR",
                                "--country", "FR"])
    assert again.exit_code == 0 and "already registered" in again.output
    other = runner.invoke(cli, ["tenants", "add", "corner_shop", "--name", "Corner Shop",
                                "--timezone", "Europe/Berlin", "--currency", "EUR",
                                "--country", "FR"])
    assert other.exit_code != 0
    assert "timezone 'Europe/Paris' (given 'Europe/Berlin'); nothing changed" in str(
        other.exception)


def test_tenants_add_rejects_bad_timezone(database_env, engine):
    from storepulse.errors import StorePulseError

    result = CliRunner().invoke(cli, ["tenants", "add", "shop", "--name", "S",
                                      "--timezone", "Mars/Olympus"])
    assert isinstance(result.exception, StorePulseError)
    assert "unknown time zone" in str(result.exception)


def test_quality_check_holds_and_release(database_env, engine, tmp_path, monkeypatch):
    import sqlalchemy as sa

    from tests.ingestion_helpers import good_row, pos_csv, register

    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # no daemon to tell
    register(engine, "shop")
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.tenants set max_unit_price = 100"))
    path = pos_csv(tmp_path / "generic_pos_csv" / "sales.csv",
                   [good_row(), good_row(order="O2", price="500")])
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(path), "--tenant", "shop"]).exit_code == 0
    checked = runner.invoke(cli, ["quality", "check", "shop"])
    assert checked.exit_code == 1, checked.output
    assert "FAIL unit_price_plausible: 1 of 2 rows" in checked.output
    assert "on unit_price (allowed: 0.0 to 100.0)" in checked.output
    # the failing row, where a person finds it: file, line, value
    assert "         sales.csv line 3: unit_price 500" in checked.output, checked.output
    assert "batch held: its files stay out of the marts" in checked.output
    assert "`storepulse quality release shop`" in checked.output
    status = " ".join(runner.invoke(cli, ["status"]).output.split())
    assert "held 1 file(s) kept out of the marts by a failed gate: `storepulse quality holds " \
           "--tenant shop` says why" in status, status
    holds = runner.invoke(cli, ["quality", "holds"])
    assert "sales.csv" in holds.output and "unit_price_plausible" in holds.output
    released = runner.invoke(cli, ["quality", "release", "shop"])
    assert "1 file(s) released" in released.output
    assert "DAGSTER_HOME is unset, so no daemon was told" in released.output
    assert "no held files" in runner.invoke(cli, ["quality", "holds"]).output


def test_two_loads_before_one_check_are_both_checked_and_published(database_env, engine,
                                                                   tmp_path):
    """Each `storepulse ingest` is a batch of its own; a `quality check` after the second
    must not leave the first out of the marts, unpublished and unheld, for ever."""
    from tests.ingestion_helpers import good_row, pos_csv, register, scalar

    register(engine, "shop")
    runner = CliRunner()
    for name, order in (("monday.csv", "O1"), ("tuesday.csv", "O2")):
        path = pos_csv(tmp_path / "generic_pos_csv" / name,
                       [good_row(order=order), good_row(order=f"{order}-bad", qty="lots")])
        assert runner.invoke(cli, ["ingest", str(path), "--tenant", "shop"]).exit_code == 0
    status = runner.invoke(cli, ["status"]).output
    assert "last file tuesday.csv (" in " ".join(status.split()), status
    assert "), 1 row(s) quarantined; 0 rejected, 0 held" in status, status
    assert "unchecked 2 file(s) loaded but not through the gate yet, so not in the marts: " \
           "`storepulse quality check shop`" in " ".join(status.split()), status
    again = runner.invoke(cli, ["ingest", str(path), "--tenant", "shop"])
    assert again.exit_code == 0, again.output
    assert "already loaded as file" in again.output
    assert "nothing new loaded (every file was loaded before): no batch to check" \
        in again.output and "quality check" not in again.output
    checked = runner.invoke(cli, ["quality", "check", "shop"])
    assert checked.exit_code == 0, checked.output
    assert "shop: batch of 2 file(s)" in checked.output
    assert scalar(engine, "select count(*) from raw.ingest_files where status = 'loaded' "
                          "and published_at is null") == 0
    # the second ingest of tuesday.csv is in the ledger too, as what it repeats
    assert scalar(engine, "select count(*) from raw.ingest_files where status = 'duplicate' "
                          "and file_name = 'tuesday.csv'") == 1
    assert "unchecked" not in runner.invoke(cli, ["status"]).output


def test_ingest_leaves_the_planner_knowing_the_batch(database_env, engine, tmp_path):
    """`quality check` and dbt plan their queries on the table's statistics; a batch loaded
    since the last analyze looks like a handful of rows to them, so the load refreshes them
    as the landing sensor's runs do."""
    import sqlalchemy as sa

    from tests.ingestion_helpers import good_row, pos_csv, register, scalar

    register(engine, "shop")
    with engine.begin() as conn:
        conn.execute(sa.text("analyze raw.sales_lines"))
    rows = [good_row(order=f"O{n}") for n in range(3_000)]
    path = pos_csv(tmp_path / "generic_pos_csv" / "big.csv", rows)
    assert CliRunner().invoke(cli, ["ingest", str(path), "--tenant", "shop"]).exit_code == 0
    file_id = scalar(engine, "select max(file_id) from raw.ingest_files")
    with engine.connect() as conn:
        estimate = conn.execute(sa.text(
            "explain (format json) select * from raw.sales_lines where source_file_id = :f"),
            {"f": file_id}).scalar_one()[0]["Plan"]["Plan Rows"]
    assert estimate > len(rows) / 2, estimate


def test_alerts_set_stores_rules(database_env, engine):
    from tests.ingestion_helpers import register, scalar

    register(engine, "shop")
    runner = CliRunner()
    done = runner.invoke(cli, ["alerts", "set", "shop", "--email", "a@shop.test", "--email",
                               "b@shop.test", "--sms", "+447700900001", "--quiet", "22:00-07:00",
                               "--cap", "3"])
    assert done.exit_code == 0, done.output
    assert scalar(engine, "select array_length(email_recipients, 1) from ops.alert_rules") == 2
    assert str(scalar(engine, "select quiet_hours_start from ops.alert_rules")) == "22:00:00"
    bad = runner.invoke(cli, ["alerts", "set", "shop", "--quiet", "late"])
    assert bad.exit_code == 2 and "'late' is not HH:MM-HH:MM or off" in bad.output
    assert "empty" in runner.invoke(cli, ["alerts", "outbox"]).output
    # a number Twilio would refuse on every attempt is one line now, and nothing changes
    url = {"DATABASE_URL": database_env.render_as_string(False)}
    for args, says in [(["--sms", "07700900001"], "SMS recipient '07700900001' is not an E.164"),
                       (["--email", "a.shop.test"], "'a.shop.test' is not an email address"),
                       (["--cap", "0"], "at least 1 message per hour"),
                       (["--recent-days", "0"], "recent days must be at least 1")]:
        done = _storepulse("alerts", "set", "shop", *args, env=url)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("error: ") and says in done.stderr, done.stderr
    assert scalar(engine, "select sms_recipients from ops.alert_rules") == ["+447700900001"]
    assert scalar(engine, "select recent_days from ops.alert_rules") == 7
    # one setting changed: the rest stays (recipients, quiet hours, cap)
    widened = runner.invoke(cli, ["alerts", "set", "shop", "--recent-days", "31"])
    assert widened.output == (
        "shop: email a@shop.test, b@shop.test from medium; SMS +447700900001 from critical, "
        "quiet hours 22:00-07:00; at most 3 per hour; anomalies of the last 31 day(s) of "
        "data; stale after 72 hours without a file\n")
    assert scalar(engine, "select recent_days from ops.alert_rules") == 31
    cleared = runner.invoke(cli, ["alerts", "set", "shop", "--no-sms", "--quiet", "off",
                                  "--email", "c@shop.test"])
    assert cleared.output.startswith("shop: email c@shop.test from medium; SMS nobody from "
                                     "critical, quiet hours none; at most 3 per hour;")


def test_ingest_exits_non_zero_when_a_file_loads_nothing(database_env, engine, tmp_path):
    from tests.ingestion_helpers import good_row, pos_csv, register, write

    register(engine, "shop")
    folder = tmp_path / "generic_pos_csv"
    pos_csv(folder / "a_good.csv", [good_row()])
    pos_csv(folder / "b_all_bad.csv", [good_row(order="B1", qty="0"),
                                       good_row(order="B2", qty="zero")])
    write(folder / "c_binary.csv", b"\x00\x01\x02 not a csv")
    result = CliRunner().invoke(cli, ["ingest", str(folder), "--tenant", "shop"])
    assert result.exit_code == 2, result.output
    assert "a_good.csv: loaded 1 of 1 rows" in result.output
    assert "b_all_bad.csv: loaded 0 of 2 rows, 2 quarantined" in result.output
    # each quarantined row a line: where, which field, why
    assert "  line 2: quantity '0' is zero" in result.output, result.output
    assert "  line 3: quantity 'zero' is not a number" in result.output, result.output
    assert "c_binary.csv: rejected" in result.output
    assert "2 of 3 file(s) loaded nothing" in result.output


def test_gate_limits_are_set_from_the_cli_and_audited(database_env, engine):
    import sqlalchemy as sa

    from tests.ingestion_helpers import register

    register(engine, "shop")
    runner = CliRunner()
    shown = runner.invoke(cli, ["tenants", "limits", "shop"])
    assert "max unit price 10,000.00; currencies its own only" in shown.output
    changed = runner.invoke(cli, ["tenants", "limits", "shop", "--max-unit-price", "25000",
                                  "--currencies", "gbp, EUR"])
    assert changed.exit_code == 0, changed.output
    assert "max unit price 25,000.00; currencies GBP, EUR" in changed.output
    with engine.connect() as conn:
        price, currencies = conn.execute(sa.text(
            "select max_unit_price, accepted_currencies from ops.tenants "
            "where tenant_id = 'shop'")).one()
        audit = conn.execute(sa.text("select details from ops.audit_log "
                                     "where action = 'tenant_gate_limits' order by 1 desc")
                             ).scalars().first()
    assert (float(price), currencies) == (25000.0, ["GBP", "EUR"])
    assert audit["before"]["max_unit_price"] == 10000 and audit["after"]["max_unit_price"] == 25000
    bad = runner.invoke(cli, ["tenants", "limits", "shop", "--max-unit-price", "0"])
    assert bad.exit_code != 0 and "must be above 0" in str(bad.exception)


def test_ingest_without_source_picks_the_spec_whose_columns_fit(database_env, engine,
                                                              tmp_path):
    from tests.ingestion_helpers import good_row, pos_csv, register, write

    register(engine, "shop")
    downloads = tmp_path / "Downloads"  # a folder that names no spec
    pos_csv(downloads / "till.csv", [good_row()])
    write(downloads / "web.csv",
          "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
          "536365,85123A,WHITE HANGING HEART,6,2025-03-01 08:26:00,2.55,17850,United Kingdom\n")
    result = CliRunner().invoke(cli, ["ingest", str(downloads), "--tenant", "shop"])
    assert result.exit_code == 0, result.output
    assert "till.csv: spec 'generic_pos_csv' (its columns fit the file)" in result.output
    assert "web.csv: spec 'uci_online_retail_csv'" in result.output
    assert "run `storepulse quality check shop`" in result.output

    # a tenant spec beside the file that reads the same columns: both fit, so it asks
    copied = (Path(__file__).parents[1] / "ingestion" / "specs" / "generic_pos_csv.yaml")
    clash = tmp_path / "clash"
    write(clash / "spec.yaml", copied.read_text().replace("name: generic_pos_csv",
                                                          "name: my_till"))
    pos_csv(clash / "day.csv", [good_row(order="O9")])
    asked = CliRunner().invoke(cli, ["ingest", str(clash / "day.csv"), "--tenant", "shop"])
    assert asked.exit_code == 2
    assert "several specs fit its columns (generic_pos_csv, my_till); pass --source" \
        in asked.output


def _storepulse(*args: str, env: dict | None = None):
    """The installed command, as a user runs it: exit code and what it printed."""
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "storepulse"
    return subprocess.run([str(exe), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("args, says", [
    (["generate-sample", "/tmp/never", "--scale", "-1"], "-1.0 is not in the range x>0"),
    (["generate-sample", "/tmp/never", "--scale", "0"], "0.0 is not in the range x>0"),
    (["alerts", "set", "nosuch", "--email", "a@b.test"], "tenant 'nosuch' is not registered"),
    (["tenants", "limits", "nosuch", "--max-unit-price", "5"], "'nosuch' is not registered"),
    (["tenants", "native-sql", "nosuch", "--on"], "'nosuch' is not registered"),
    (["tenants", "remove", "nosuch", "--yes"], "'nosuch' is not registered"),
    (["tenants", "add", "Bad-Slug", "--name", "x", "--timezone", "UTC", "--currency", "EUR",
      "--country", "GB"], "tenant slug 'Bad-Slug' must be lowercase"),
    (["tenants", "add", "shop_uk", "--name", "x", "--currency", "GPB", "--country", "GB"],
     "not an ISO 4217 currency code: GPB"),
    (["tenants", "add", "shop_uk", "--name", "x", "--currency", "GBP", "--country", "EN"],
     "country 'EN' is not an ISO 3166 code"),
    (["forecast", "nosuch"], "'nosuch' is not registered"),
    (["quality", "holds", "--tenant", "nosuch"], "'nosuch' is not registered"),
    (["ingest", "/nonexistent", "--tenant", "x"], "Path '/nonexistent' does not exist"),
    (["quality", "check", "nosuch"], "tenant 'nosuch' is not registered"),
    (["quality", "release", "nosuch"], "tenant 'nosuch' is not registered"),
])
def test_ordinary_mistakes_get_one_line_and_no_traceback(database_env, engine, args, says):
    done = _storepulse(*args, env={"DATABASE_URL": database_env.render_as_string(False)})
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["soon", "-5", "nan"])
def test_a_settle_time_that_is_not_seconds_is_one_line(database_env, value):
    done = _storepulse("status", env={"DATABASE_URL": database_env.render_as_string(False),
                                      "STOREPULSE_LANDING_SETTLE_SECONDS": value})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: STOREPULSE_LANDING_SETTLE_SECONDS is {value!r}: "
                                   "give a number of seconds, 0 or more")


def test_a_broken_dashboard_spec_is_one_line_before_metabase_is_asked(tmp_path):
    (tmp_path / "sales.yaml").write_text("key: sales\nname: Sales\naudience: everyone\n"
                                         "cards: []\n")
    done = _storepulse("dashboards", "sync", "--specs", str(tmp_path), "--dry-run",
                       env={"METABASE_URL": ""})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error: sales.yaml: audience must be tenant or data_team"
    (tmp_path / "sales.yaml").write_text("- not\n- a mapping\n")
    done = _storepulse("dashboards", "sync", "--specs", str(tmp_path), "--dry-run")
    assert done.stderr.strip() == "error: sales.yaml: a dashboard spec must be a YAML mapping"


def test_a_warehouse_not_migrated_says_to_migrate(server_url):
    from tests.conftest import create_database, drop_database

    bare = create_database(server_url, prefix="sp_bare")
    try:
        done = _storepulse("tenants", "list",
                           env={"DATABASE_URL": bare.render_as_string(False)})
    finally:
        drop_database(bare)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "run `storepulse db migrate` first" in done.stderr


def test_tenants_add_prints_no_dagster_instance_warning(database_env, engine, tmp_path):
    dagster_home = tmp_path / "dagster"  # as `dagster dev` leaves it: no dagster.yaml
    dagster_home.mkdir()
    done = _storepulse("tenants", "add", "quiet_shop", "--name", "Quiet Shop",
                       env={"DATABASE_URL": database_env.render_as_string(False),
                            "DAGSTER_HOME": str(dagster_home),
                            "STOREPULSE_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr
    assert "Dagster partition 'quiet_shop' registered" in done.stdout
    assert "dagster.yaml" not in done.stdout + done.stderr
    from dagster import DagsterInstance, RunsFilter, asset, materialize

    from orchestration.partitions import tenant_partitions

    @asset(partitions_def=tenant_partitions)
    def per_tenant() -> None:
        """Stands for the tenant's ingestion and ML runs."""

    @asset
    def every_tenant() -> None:
        """Stands for the dbt builds, which are every tenant's."""

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions("tenants") == ["quiet_shop"]
        assert materialize([per_tenant], partition_key="quiet_shop", instance=instance).success
        assert materialize([every_tenant], instance=instance).success
    plot = tmp_path / "home" / "plots" / "quiet_shop" / "forecast-run.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(b"\x89PNG")
    # purged, its partition goes too (the daily forecast refresh would otherwise request a
    # run for it every morning, each failing), with its runs and forecast plots
    purged = _storepulse("tenants", "remove", "quiet_shop", "--purge", "--yes",
                         env={"DATABASE_URL": database_env.render_as_string(False),
                              "DAGSTER_HOME": str(dagster_home),
                              "STOREPULSE_HOME": str(tmp_path / "home")})
    assert purged.returncode == 0, purged.stderr
    assert "Dagster partition 'quiet_shop' deleted, with its 1 run(s) and their logs" \
        in purged.stdout
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_dynamic_partitions("tenants") == []
        remaining = instance.get_run_records(RunsFilter())
        assert [r.dagster_run.tags.get("dagster/partition") for r in remaining] == [None]
    assert not plot.parent.exists() and plot.parent.parent.exists()


def test_status_shows_each_tenant_at_a_glance(database_env, engine, tmp_path, monkeypatch):
    from alerting.rules import AlertRules, save_rules
    from tests.ingestion_helpers import good_row, pos_csv, register, write

    monkeypatch.setenv("STOREPULSE_LANDING", str(tmp_path / "landing"))  # nothing waiting

    register(engine, "shop")
    register(engine, "idle")
    save_rules(engine, AlertRules("shop", email_recipients=("manager@shop.test",)))
    folder = tmp_path / "generic_pos_csv"
    pos_csv(folder / "monday.csv", [good_row()])
    write(folder / "broken.csv", b"\x00\x01 not a csv")
    with engine.begin() as conn:  # a refusal this week, an older one, a sent alert
        conn.execute(sa.text("""
            insert into ops.alert_deliveries (tenant_id, anomaly_id, channel, recipient, status,
                                              last_error, created_at)
            values ('shop', 'a1', 'sms', '+447700900001', 'failed', 'refused, not retried: '
                    || 'HTTP 400, Twilio error 21610: Attempt to send to unsubscribed '
                    || 'recipient', now() - interval '1 day'),
                   ('shop', 'a0', 'email', 'old@shop.test', 'failed', 'long ago',
                    now() - interval '8 days'),
                   ('shop', 'a1', 'email', 'manager@shop.test', 'sent', null, now()),
                   ('shop', 'spring', 'email', 'manager@shop.test', 'suppressed',
                    'not sent: 2026-04-12 is ...', now())"""))
        conn.execute(sa.text("""
            insert into ml.anomaly_scans (tenant_id, scanned_through, full_scan_at, last_scan_at)
            values ('shop', '2026-11-01', now(), '2026-11-02 07:30+00')"""))
    runner = CliRunner()
    runner.invoke(cli, ["ingest", str(folder), "--tenant", "shop"])
    assert runner.invoke(cli, ["quality", "check", "shop"]).exit_code == 0
    shown = runner.invoke(cli, ["status"])
    assert shown.exit_code == 0, shown.output
    blocks: dict[str, list[str]] = {}
    for text in shown.output.splitlines():
        if not text.startswith(" "):
            blocks[text] = []
        else:
            blocks[list(blocks)[-1]].append(" ".join(text.split()))
    assert blocks["shop"][0].startswith("last file monday.csv (")
    assert blocks["shop"][0].endswith("1 rejected, 0 held")
    assert blocks["shop"][1:3] == ["gate passed", "marts through -"]  # no dbt build yet
    assert blocks["idle"][:3] == ["last file - (-); 0 rejected, 0 held", "gate never run",
                                  "marts through -"]
    assert "anomalies never judged" in blocks["idle"]
    assert "forecasts never made" in blocks["idle"]
    scan = next(line for line in blocks["shop"] if line.startswith("anomalies"))
    assert scan.startswith("anomalies judged through 2026-11-01 (scan 2026-11-02 ")
    assert scan.endswith(")")  # the marts reach no further: nothing waits
    assert blocks["shop"][-1] == ("alerts 0 pending, 1 not delivered in the last 7 days "
                                  "(latest: sms to +447700900001: refused, not retried: HTTP "
                                  "400, Twilio error 21610: Attempt to send to unsubscribed "
                                  "recipient), 1 about older days suppressed in the last 7 "
                                  "days (history, not news: storepulse alerts set "
                                  "--recent-days)")
    outbox = runner.invoke(cli, ["alerts", "outbox"]).output.splitlines()
    assert [line.split() for line in outbox] == [["failed", "2"], ["sent", "1"],
                                                 ["suppressed", "1"]]
    # a tenant without alert rules: its anomalies would be queued for nobody
    assert blocks["idle"][-1] == ("alerts 0 pending; no recipients, so anomalies reach nobody: "
                                  "storepulse alerts set idle --email ...")


def test_status_says_why_forecasts_start_on_a_day_the_marts_hold():
    from storepulse.status import TenantStatus

    made = datetime(2026, 11, 3, 6, 5)
    status = TenantStatus(
        tenant_id="shop", last_file=None, last_file_at=None, last_file_quarantined=0,
        rejected_files=0, held_files=0, awaiting_gate=0, last_gate="passed",
        marts_through=date(2026, 11, 2), forecasts_made=made,
        forecasts_from=date(2026, 11, 3), anomalies_through=None, anomalies_scanned=None,
        alerts_pending=0, alert_recipients=1, alerts_undelivered=0, last_undelivered=None)
    assert status.forecasts_line() == "made 2026-11-03 06:05, from 2026-11-03"
    cut_short = replace(status, forecasts_from=date(2026, 11, 2))
    assert cut_short.forecasts_line() == (
        "made 2026-11-03 06:05, from 2026-11-02; 2026-11-02, the marts' last day, is "
        "forecast, not learned from (the `last day` line says why)")
    behind = replace(status, marts_through=date(2026, 11, 4))
    assert behind.forecasts_line() == ("made 2026-11-03 06:05, from 2026-11-03; the marts "
                                       "reach 2026-11-04: no forecast run since")
    assert replace(status, forecasts_made=None, forecasts_from=None).forecasts_line() \
        == "never made"


def test_status_warns_of_a_landing_folder_no_tenant_reads(database_env, engine, tmp_path,
                                                           monkeypatch):
    from tests.ingestion_helpers import good_row, pos_csv, register

    register(engine, "shop")
    monkeypatch.setenv("STOREPULSE_LANDING", str(tmp_path / "landing"))
    pos_csv(tmp_path / "landing" / "shop" / "generic_pos_csv" / "a.csv", [good_row()])
    pos_csv(tmp_path / "landing" / "shopp" / "generic_pos_csv" / "a.csv", [good_row()])
    pos_csv(tmp_path / "landing" / "shopp" / "generic_pos_csv" / "b.csv", [good_row()])
    shown = CliRunner().invoke(cli, ["status"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == (
        "warning: landing/shopp/ holds 2 file(s) but no tenant 'shopp' is registered: register "
        "it (storepulse tenants add shopp --name ...) or move the files to a registered "
        "tenant's folder")
    assert "landing/shop/ holds" not in shown.output
    # shop's file is in its own folder, and nothing has loaded it yet
    (waiting,) = [line.strip() for line in shown.output.splitlines()
                  if line.strip().startswith("waiting")]
    assert waiting.startswith("waiting     1 file(s) in landing/shop/ not loaded yet, the "
                              "oldest changed 20"), waiting
    assert "daemon" not in waiting  # just landed: the daemon has had no time for it


def test_files_left_unloaded_for_long_point_at_the_daemon(engine, tmp_path):
    import time

    from ingestion.landing import ingest_tenant, waiting_message
    from tests.ingestion_helpers import good_row, pos_csv, register

    register(engine, "shop")
    landing = tmp_path / "landing"
    assert waiting_message(engine, landing, "shop") is None
    pos_csv(landing / "shop" / "generic_pos_csv" / "a.csv", [good_row()])
    pos_csv(landing / "shop" / "generic_pos_csv" / "b.csv", [good_row("O2")])
    in_an_hour = time.time() + 3600
    assert waiting_message(engine, landing, "shop", now=in_an_hour).endswith(
        "; 60 minutes without a load: is the Dagster daemon running, with landing_sensor on?")
    assert waiting_message(engine, landing, "shop").startswith(
        "2 file(s) in landing/shop/ not loaded yet")
    ingest_tenant(engine, landing, "shop")
    assert waiting_message(engine, landing, "shop", now=in_an_hour) is None


def test_a_file_repeating_loaded_bytes_gets_a_ledger_row_and_waits_for_nothing(engine,
                                                                                tmp_path):
    """A re-upload of the same export, and a copy of it under another name: each loads
    nothing and gets a 'duplicate' ledger row naming what it repeats, so the landing sensor
    does not take them for new on every tick, nor `status` for files waiting on the daemon."""
    import os
    import shutil
    import time

    from ingestion.landing import ingest_tenant, pending_files, waiting_message
    from tests.ingestion_helpers import good_row, pos_csv, register, rows

    register(engine, "shop")
    landing = tmp_path / "landing"
    folder = landing / "shop" / "generic_pos_csv"
    original = pos_csv(folder / "monday.csv", [good_row(), good_row("O2")])
    (first,) = ingest_tenant(engine, landing, "shop")
    time.sleep(0.01)
    shutil.copy(original, folder / "monday (1).csv")
    os.utime(original)  # uploaded again, the same bytes
    original.write_bytes(original.read_bytes())
    assert sorted(pending_files(engine, landing, "shop")) == [
        "generic_pos_csv/monday (1).csv", "generic_pos_csv/monday.csv"]
    again = {r.path.name: r for r in ingest_tenant(engine, landing, "shop")}
    assert {name: r.status for name, r in again.items()} == {
        "monday.csv": "duplicate", "monday (1).csv": "duplicate"}
    assert {r.file_id for r in again.values()} == {first.file_id}
    ledger = rows(engine, "select file_name, status, rows_loaded, duplicate_of, error from "
                          "raw.ingest_files where status = 'duplicate' order by file_name")
    assert [tuple(r) for r in ledger] == [
        (name, "duplicate", 0, first.file_id,
         f"same bytes as monday.csv (file {first.file_id}, version 1), nothing loaded")
        for name in ("monday (1).csv", "monday.csv")]
    assert pending_files(engine, landing, "shop") == {}
    assert waiting_message(engine, landing, "shop", now=time.time() + 3600) is None
    # the next pass reads neither again
    assert {r.error for r in ingest_tenant(engine, landing, "shop")} == {
        f"same bytes as monday.csv (file {first.file_id}, version 1), nothing loaded; "
        "unchanged since"}
    assert rows(engine, "select count(*) from raw.sales_lines")[0][0] == 2
