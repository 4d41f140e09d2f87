"""Forecast and anomaly assets run by Dagster over real marts; reruns replace, never duplicate."""

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, materialize

from ingestion.generator import END_DATE
from ingestion.landing import ingest_tenant
from ml.tables import read_last_sale_times
from orchestration.assets.ml import store_anomalies, store_forecasts
from orchestration.resources import WarehouseResource
from storepulse.migrate import migrate
from storepulse.status import tenant_status
from storepulse.warehouse import get_engine
from tests.conftest import create_database, drop_database, register_demo_tenants
from tests.dbt_helpers import frame, run_dbt
from tests.ingestion_helpers import publish


@pytest.fixture(scope="module")
def warehouse(server_url, small_sample, tmp_path_factory):
    url = create_database(server_url)
    landing = tmp_path_factory.mktemp("landing")
    shutil.copytree(small_sample.root / "northwind", landing / "northwind")
    engine = get_engine(url)
    migrate(engine)
    register_demo_tenants(engine)
    ingest_tenant(engine, landing, "northwind")
    publish(engine)
    run_dbt(url, "build")
    try:
        yield url, engine
    finally:
        drop_database(url)


def _run(url, partition="northwind"):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", [partition])
        return materialize(
            [store_forecasts, store_anomalies], partition_key=partition, instance=instance,
            resources={"warehouse": WarehouseResource(database_url=url.render_as_string(False))},
            # as on the morning after the sample's last day
            run_config={"ops": {"store_forecasts": {"config": {
                "horizon_days": 21, "today": str(END_DATE + timedelta(days=1))}}}})


def test_forecast_and_anomaly_assets(warehouse):
    url, engine = warehouse
    first = _run(url)
    assert first.success
    forecasts = frame(engine, "select * from ml.forecasts where tenant_id = 'northwind'")
    assert len(forecasts) == 21 * 2  # one store, revenue and orders
    assert set(forecasts.metric) == {"net_revenue", "orders"}
    assert forecasts.run_id.nunique() == 1 and forecasts.model_version.str.len().gt(0).all()
    assert forecasts.champion_reason.str.contains("backtest WAPE").all()
    assert forecasts.champion_reason.str.contains("3 folds of 28 days").all()
    # Northwind is closed on Sundays: those days are forecast as closed, with zero sales.
    sundays = forecasts[__import__("pandas").to_datetime(forecasts.ds).dt.day_of_week == 6]
    assert len(sundays) > 0 and sundays.is_closed_day.all() and (sundays.yhat == 0).all()
    backtests = frame(engine, "select * from ml.forecast_backtests")
    assert set(backtests.model_name) == {"prophet", "mstl", "seasonal_naive",
                                         "seasonal_median_4w", "combination_mean"}
    assert backtests.groupby(["metric", "model_name"]).fold.nunique().min() >= 3
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in first.get_asset_materialization_events()}
    forecast_meta = meta[AssetKey(["ml", "forecasts"])]
    plot = Path(forecast_meta["forecast_plot"].value)  # a path, not 100 KB of base64
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.parent.name == "northwind"
    next_days = forecast_meta["next_days"].value  # a table shown as is
    assert len(next_days.records) == 14
    assert [c.name for c in next_days.schema.columns] == [
        "day", "forecast", "80% band", "95% band", "closed"]
    summary = forecast_meta["backtest_summary"].value
    assert {r.data["model_name"] for r in summary.records} >= {"prophet", "mstl"}
    assert sum(len(repr(v.value)) for v in forecast_meta.values()) < 20_000
    anomalies = frame(engine, "select anomaly_id from ml.anomalies")
    assert meta[AssetKey(["ml", "anomalies"])]["dagster/row_count"].value == len(anomalies)

    second = _run(url)
    assert second.success
    again = frame(engine, "select * from ml.forecasts where tenant_id = 'northwind'")
    assert len(again) == len(forecasts)
    assert again.run_id.nunique() == 1 and again.run_id.iloc[0] != forecasts.run_id.iloc[0]
    assert len(frame(engine, "select * from ml.anomalies")) == len(anomalies)


def test_planted_anomaly_alerts_each_recipient_once(warehouse, small_sample):
    """The issue's acceptance check, on detected (not hand-written) anomalies."""
    from alerting.rules import AlertRules, save_rules
    from orchestration.alerts import AlertChannelsResource, anomaly_alert_sensor
    from tests.alerting_servers import SmtpServer, TwilioServer
    from tests.test_alerting import Ticks

    url, engine = warehouse
    if frame(engine, "select count(*) as n from ml.anomalies").n[0] == 0:
        assert _run(url).success
    managers, phone = ("manager@northwind.test", "owner@northwind.test"), "+447700900123"
    outage = next(a for a in small_sample.anomalies
                  if a.tenant_id == "northwind" and a.kind == "outage")
    # The planted outage lies months back: the tenant's recent days reach just that far, so
    # it is sent and what the scan found before it is history, suppressed.
    through = frame(engine, "select scanned_through from ml.anomaly_scans "
                            "where tenant_id = 'northwind'").scanned_through[0]
    recent_days = (through - outage.start).days + 1
    save_rules(engine, AlertRules("northwind", email_recipients=managers,
                                  sms_recipients=(phone,), email_min_severity="medium",
                                  recent_days=recent_days))
    with SmtpServer() as smtp, TwilioServer() as twilio:
        resources = {
            "warehouse": WarehouseResource(database_url=url.render_as_string(False)),
            "alert_channels": AlertChannelsResource(
                smtp_host="127.0.0.1", smtp_port=smtp.port,
                twilio_account_sid=twilio.state.account_sid,
                twilio_auth_token=twilio.state.auth_token, twilio_from="+15005550006",
                twilio_api_base=twilio.base_url)}
        tick = Ticks(anomaly_alert_sensor, resources)
        tick()
        tick()
        assert sorted(m["To"] for m in smtp.messages) == sorted(managers)
        text = smtp.messages[0].get_body(("plain",)).get_content()
        assert str(outage.start) in text
        critical = frame(engine, "select count(*) as n from ml.anomalies where severity = "
                                 "'critical' and day >= :since", since=outage.start).n[0]
        assert [m["To"] for m in twilio.state.messages] == ([phone] if critical else [])
    statuses = frame(engine, "select d.status, a.day >= :since as recent, count(*) as n "
                             "from ops.alert_deliveries as d join ml.anomalies as a "
                             "using (tenant_id, anomaly_id) group by 1, 2 order by 1",
                     since=outage.start)
    assert statuses[["status", "recent"]].values.tolist() == [["sent", True],
                                                              ["suppressed", False]]


def test_recent_backtests_are_reused_then_redone_when_old(warehouse):
    url, engine = warehouse
    assert _run(url).success  # backtests exist now (or were just redone)
    before = frame(engine, "select store_id, metric, model_name, fold, run_id, created_at "
                           "from ml.forecast_backtests where tenant_id = 'northwind'")
    reused = _run(url)
    assert reused.success
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in reused.get_asset_materialization_events()}
    assert meta[AssetKey(["ml", "forecasts"])]["series_backtested"].value == 0
    # Champions with Prophet in them (Prophet, or the combination of Prophet and MSTL) were
    # refitted from the state the previous run stored, and stored anew.
    states = frame(engine, "select store_id, metric, model_name, params, fitted_through, "
                           "run_id from ml.model_states where tenant_id = 'northwind'")
    champions = frame(engine, "select distinct store_id, metric, model_name from ml.forecasts "
                              "where tenant_id = 'northwind'")
    with_prophet = champions[champions.model_name.isin(["prophet", "combination_mean"])]
    assert len(with_prophet) > 0
    assert sorted(states.metric) == sorted(with_prophet.metric)
    assert meta[AssetKey(["ml", "forecasts"])]["series_warm_started"].value == len(with_prophet)
    assert (states.run_id == reused.run_id).all()
    prophet_params = [row.params if row.model_name == "prophet" else row.params["prophet"]
                      for row in states.itertuples()]
    assert all(len(p["beta"]) > 0 and "k" in p for p in prophet_params)
    last_day = frame(engine, "select max(day) as d from marts.mart_daily_store_kpis "
                             "where tenant_id = 'northwind'").d[0]
    assert (states.fitted_through == last_day).all()
    after = frame(engine, "select store_id, metric, model_name, fold, run_id, created_at "
                          "from ml.forecast_backtests where tenant_id = 'northwind'")
    assert after.equals(before)  # kept, not redone
    reasons = frame(engine, "select champion_reason from ml.forecasts")
    assert reasons.champion_reason.str.contains("reused").all()
    with engine.begin() as conn:  # a week later the backtest is stale
        conn.execute(sa.text(
            "update ml.forecast_backtests set created_at = created_at - interval '8 days'"))
    redone = _run(url)
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in redone.get_asset_materialization_events()}
    assert meta[AssetKey(["ml", "forecasts"])]["series_backtested"].value == 2
    assert not frame(engine, "select champion_reason from ml.forecasts"
                     ).champion_reason.str.contains("reused").any()


def test_daily_anomaly_runs_judge_recent_days_and_weekly_rescans_all(warehouse):
    url, engine = warehouse
    with engine.begin() as conn:  # as if the last full scan were a week old
        conn.execute(sa.text("update ml.anomaly_scans set full_scan_at = now() - "
                             "interval '8 days'"))
    full = _run(url)
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in full.get_asset_materialization_events()}
    assert meta[AssetKey(["ml", "anomalies"])]["scan"].value == "full history"
    everything = frame(engine, "select anomaly_id, severity from ml.anomalies order by 1")
    daily = _run(url)
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in daily.get_asset_materialization_events()}
    assert meta[AssetKey(["ml", "anomalies"])]["scan"].value.startswith("recent")
    # the recent scan finds nothing new and drops nothing: same rows, ids stable
    assert frame(engine, "select anomaly_id, severity from ml.anomalies order by 1").equals(
        everything)


def test_a_store_with_too_few_days_waits_for_its_forecasts_and_says_so(
        warehouse, tmp_path, monkeypatch):
    """A merchant's first export: three days of one store. Forecasting it would repeat those
    days (the weekdays not seen yet at zero) inside a band of zero width; it waits for three
    weeks of sales, and the run and `storepulse status` say so."""
    from click.testing import CliRunner

    from ml.forecasting import MIN_HISTORY_DAYS
    from storepulse_cli.commands import cli
    from tests.ingestion_helpers import good_row, pos_csv

    url, engine = warehouse
    first = END_DATE - timedelta(days=2)
    pos_csv(tmp_path / "acme_grocers" / "generic_pos_csv" / "first.csv", [
        good_row(order=f"F{n}", store="NEW1", at=f"{first + timedelta(days=n % 3)} 10:00:00")
        .replace(",GBP,", ",USD,") for n in range(9)])
    assert {r.status for r in ingest_tenant(engine, tmp_path, "acme_grocers")} == {"loaded"}
    publish(engine)
    run_dbt(url, "run", "--select", "+mart_daily_store_kpis")
    result = _run(url, "acme_grocers")
    assert result.success
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in result.get_asset_materialization_events()}[AssetKey(["ml", "forecasts"])]
    assert meta["series"].value == 0
    assert meta["stores_not_yet_forecast"].value == (
        f"NEW1 (3 days): a store is forecast from {MIN_HISTORY_DAYS} days of sales")
    assert frame(engine, "select count(*) as n from ml.forecasts "
                         "where tenant_id = 'acme_grocers'").n[0] == 0
    # northwind's two years are forecast as ever
    assert meta_of_northwind_forecasts(url)["series"].value == 2

    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(cli, ["status"]).output.splitlines()
    acme = shown[shown.index("acme_grocers"):]
    assert next(line for line in acme if line.startswith("  forecasts")).split() == (
        f"forecasts none yet: its stores have at most 3 day(s) of sales, and a store is "
        f"forecast from {MIN_HISTORY_DAYS}").split()


def meta_of_northwind_forecasts(url) -> dict:
    result = _run(url)
    return {e.materialization.asset_key: e.materialization.metadata
            for e in result.get_asset_materialization_events()}[AssetKey(["ml", "forecasts"])]


def test_a_day_exported_mid_trading_is_forecast_and_judged_once_a_later_export_completes_it(
        warehouse, small_sample, tmp_path, monkeypatch):
    """Last in this module: it adds a day to the shared warehouse."""
    url, engine = warehouse
    exports = pd.concat(pd.read_csv(f, dtype=str) for f in sorted(
        (small_sample.root / "northwind" / "generic_pos_csv").glob("*.csv")))
    exports["at"] = pd.to_datetime(exports["ordered_at"], errors="coerce")
    monday = END_DATE + timedelta(days=2)  # Sunday the 1st is closed
    # Monday's trade is the Monday before's, with new order ids, exported at 11:00 and
    # again after the close.
    day = exports[exports["at"].dt.date == monday - timedelta(weeks=1)].copy()
    day["ordered_at"] = (day["at"] + pd.Timedelta(weeks=1)).dt.strftime("%Y-%m-%d %H:%M:%S")
    day["order_id"] = "LATE-" + day["order_id"]
    morning = day[day["at"].dt.hour < 11]
    assert 0 < morning["order_id"].nunique() < day["order_id"].nunique()
    source = tmp_path / "northwind" / "generic_pos_csv"
    source.mkdir(parents=True)

    def land_and_judge(part: pd.DataFrame, name: str):
        part.drop(columns="at").to_csv(source / name, index=False)
        loaded = {r.path.name: r.status for r in ingest_tenant(engine, tmp_path, "northwind")}
        assert loaded[name] == "loaded"
        publish(engine)
        run_dbt(url, "run", "--select", "+mart_daily_store_kpis")
        result = _run(url)  # the anomaly scan and the forecasts
        assert result.success
        meta = {e.materialization.asset_key: e.materialization.metadata
                for e in result.get_asset_materialization_events()}
        scanned = frame(engine, "select scanned_through from ml.anomaly_scans "
                                "where tenant_id = 'northwind'").scanned_through[0]
        forecast_from = frame(engine, "select min(ds) as ds from ml.forecasts "
                                      "where tenant_id = 'northwind'").ds[0]
        return (meta[AssetKey(["ml", "anomalies"])], meta[AssetKey(["ml", "forecasts"])],
                scanned, forecast_from)

    meta, forecast_meta, scanned, forecast_from = land_and_judge(
        morning, "sales_2026-11-02_1100.csv")
    so_far = f"its sales so far end at {morning['at'].max():%H:%M}"
    assert meta["day_in_progress"].value.startswith(f"{monday} not judged yet: {so_far}")
    assert scanned == monday - timedelta(days=1)
    # the forecasts do not learn from the morning either: they forecast the whole day
    assert forecast_meta["last_day"].value.startswith(
        f"{monday} forecast, not learned from: {so_far}")
    assert forecast_from == monday
    with engine.connect() as conn:  # local times, across British Summer Time too
        times = read_last_sale_times(conn, "northwind", "Europe/London")
    mondays = exports[exports["at"].dt.date.isin(set(times["day"]))]
    expected = mondays.groupby(mondays["at"].dt.date)["at"].max().dt.time
    assert len(times) == 9
    assert times.set_index("day")["last_sale"].iloc[:-1].to_dict() == expected.to_dict()
    # and the orders of those Mondays after the morning's last sale: enough that an empty
    # rest of the day would be no chance
    assert times["orders_after"].iloc[-1] == 0 and times["orders_after"].iloc[:-1].mean() > 4.6
    assert frame(engine, "select count(*) as n from ml.anomalies where tenant_id = "
                         f"'northwind' and day = '{monday}'").n[0] == 0
    status = next(t for t in tenant_status(engine) if t.tenant_id == "northwind")
    assert status.anomalies_line().startswith(f"judged through {monday - timedelta(days=1)} ")
    assert status.anomalies_line().endswith(
        f"; the marts reach {monday} (the `held back` line says why)")
    assert f"from {monday}; {monday}, the marts' last day, is forecast, not learned from" in \
        status.forecasts_line()
    # `storepulse status` gives the reason itself, under the forecasts line
    from click.testing import CliRunner

    from storepulse_cli.commands import cli

    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(cli, ["status"])
    assert shown.exit_code == 0, shown.output
    assert f"  last day    {monday} forecast, not learned from: {so_far}" in shown.output, \
        shown.output
    assert f"  held back   {monday} not judged yet: {so_far}" in shown.output, shown.output

    meta, forecast_meta, scanned, forecast_from = land_and_judge(
        day[day["at"].dt.hour >= 11], "sales_2026-11-02_2200.csv")
    assert meta["day_in_progress"].value == "none: every day was judged"
    assert scanned == monday
    assert forecast_meta["last_day"].value == (
        f"{monday} learned from: its sales went on as late as on earlier Mondays")
    assert forecast_from == monday + timedelta(days=1)
    status = next(t for t in tenant_status(engine) if t.tenant_id == "northwind")
    assert "marts reach" not in status.anomalies_line()
    assert status.forecasts_line().endswith(f", from {monday + timedelta(days=1)}")
    shown = CliRunner().invoke(cli, ["status"]).output
    assert "last day" not in shown and "held back" not in shown, shown
