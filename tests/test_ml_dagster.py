"""Forecast and anomaly assets run by Dagster over real marts; reruns replace, never duplicate."""

import shutil

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from ingestion.landing import ingest_tenant
from orchestration.assets.ml import store_anomalies, store_forecasts
from orchestration.resources import WarehouseResource
from storepulse.migrate import migrate
from storepulse.warehouse import get_engine
from tests.conftest import create_database, drop_database, register_demo_tenants
from tests.dbt_helpers import frame, run_dbt


@pytest.fixture(scope="module")
def warehouse(server_url, small_sample, tmp_path_factory):
    url = create_database(server_url)
    landing = tmp_path_factory.mktemp("landing")
    shutil.copytree(small_sample.root / "northwind", landing / "northwind")
    engine = get_engine(url)
    migrate(engine)
    register_demo_tenants(engine)
    ingest_tenant(engine, landing, "northwind")
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
            run_config={"ops": {"store_forecasts": {"config": {"horizon_days": 21}}}})


def test_forecast_and_anomaly_assets(warehouse):
    url, engine = warehouse
    first = _run(url)
    assert first.success
    forecasts = frame(engine, "select * from ml.forecasts where tenant_id = 'northwind'")
    assert len(forecasts) == 21 * 2  # one store, revenue and orders
    assert set(forecasts.metric) == {"net_revenue", "orders"}
    assert forecasts.run_id.nunique() == 1 and forecasts.model_version.str.len().gt(0).all()
    assert forecasts.champion_reason.str.contains("lowest backtest WAPE").all()
    # Northwind is closed on Sundays: those days are forecast as closed, with zero sales.
    sundays = forecasts[__import__("pandas").to_datetime(forecasts.ds).dt.day_of_week == 6]
    assert len(sundays) > 0 and sundays.is_closed_day.all() and (sundays.yhat == 0).all()
    backtests = frame(engine, "select * from ml.forecast_backtests")
    assert set(backtests.model_name) == {"prophet", "seasonal_naive", "seasonal_median_4w"}
    assert backtests.groupby(["metric", "model_name"]).fold.nunique().min() >= 3
    meta = {e.materialization.asset_key: e.materialization.metadata
            for e in first.get_asset_materialization_events()}
    assert meta[AssetKey(["ml", "forecasts"])]["forecast_plot"].value.startswith(
        "![forecast](data:image/png;base64,")
    anomalies = frame(engine, "select anomaly_id from ml.anomalies")
    assert meta[AssetKey(["ml", "anomalies"])]["dagster/row_count"].value == len(anomalies)

    second = _run(url)
    assert second.success
    again = frame(engine, "select * from ml.forecasts where tenant_id = 'northwind'")
    assert len(again) == len(forecasts)
    assert again.run_id.nunique() == 1 and again.run_id.iloc[0] != forecasts.run_id.iloc[0]
    assert len(frame(engine, "select * from ml.anomalies")) == len(anomalies)
