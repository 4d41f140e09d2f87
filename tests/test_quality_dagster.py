"""The Great Expectations checks in real Dagster runs: a failed blocking check fails the
ingestion step, holds the batch and stops the dbt assets downstream (raw/sales_lines is not
materialized for a held batch); a failed warning does not. Results are per tenant partition."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from orchestration.assets.ingestion import ingest_landing_files
from orchestration.checks import stg_sales_lines_quality
from orchestration.dbt import storepulse_dbt_models
from orchestration.definitions import RESOURCES, defs
from orchestration.resources import LandingResource, WarehouseResource
from quality.gate import list_holds
from tests.ingestion_helpers import good_row, pos_csv, register, scalar
from tests.quality_helpers import HISTORY_START, history_rows


class TenantRun:
    """The tenant's ingestion run, then (as automation would after a passed gate) the dbt
    run; results of both, as one."""

    def __init__(self, ingest, build) -> None:
        self.runs = [r for r in (ingest, build) if r is not None]
        self.success = all(r.success for r in self.runs)

    def get_asset_materialization_events(self):
        return [e for r in self.runs for e in r.get_asset_materialization_events()]

    def get_asset_check_evaluations(self):
        return [c for r in self.runs for c in r.get_asset_check_evaluations()]


@pytest.fixture
def run_tenant(database_url, tmp_path):
    landing = tmp_path / "landing"
    resources = {**RESOURCES, "warehouse": WarehouseResource(
        database_url=database_url.render_as_string(hide_password=False)),
        "landing": LandingResource(landing_dir=str(landing), settle_seconds=0)}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", ["shop"])

        def run():
            ingest = materialize([ingest_landing_files], partition_key="shop",
                                 instance=instance, resources=resources, raise_on_error=False)
            build = (materialize([storepulse_dbt_models, stg_sales_lines_quality],
                                 instance=instance, resources=resources)
                     if ingest.success else None)
            return TenantRun(ingest, build)
        yield landing, run


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _checks(result) -> dict[str, object]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_checks_are_listed_on_the_assets_they_guard():
    graph = defs.resolve_asset_graph()
    raw_checks = {k.name for k in graph.get_check_keys_for_assets({AssetKey(["raw",
                                                                              "sales_lines"])})}
    assert {"ge_unit_price_plausible", "ge_currency_accepted", "ge_daily_revenue_in_band",
            "ge_line_keys_unique", "ge_tenant_registered", "ge_batch_has_rows"} <= raw_checks
    staging = {k.name for k in graph.get_check_keys_for_assets(
        {AssetKey(["staging", "stg_sales_lines"])})}
    assert "ge_channel_known" in staging
    spec = next(s for s in ingest_landing_files.check_specs
                if s.name == "ge_unit_price_plausible")
    assert spec.blocking
    assert spec.partitions_def == ingest_landing_files.partitions_def  # per tenant
    warn = next(s for s in ingest_landing_files.check_specs
                if s.name == "ge_daily_revenue_in_band")
    assert not warn.blocking


def test_blocking_failure_stops_dbt_and_holds_the_batch(engine, run_tenant):
    landing, run = run_tenant
    register(engine, "shop")
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.tenants set max_unit_price = 100"))
    rows = history_rows()
    rows[5] = good_row(order="PRICEY", at=f"{HISTORY_START} 12:00:00", price="950.00")
    pos_csv(landing / "shop" / "generic_pos_csv" / "sales.csv", rows)

    result = run()
    assert not result.success
    # the ledger records the file; the held batch is not published as new raw sales
    assert _materialized(result) == {"raw/ingest_files"}
    failed = _checks(result)["ge_unit_price_plausible"]
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert failed.partition == "shop"
    meta = failed.metadata
    assert "unit_price" in meta["failed_expectations"].value
    assert "950" in meta["sample_failing_rows"].value
    assert meta["unexpected_count"].value == 1
    assert [h.tenant_id for h in list_holds(engine)] == ["shop"]
    assert scalar(engine, "select count(*) from ops.quality_results where not success "
                          "and expectation = 'unit_price_plausible' and tenant_id = 'shop'") == 1


def test_warning_reports_but_lets_dbt_build(engine, run_tenant):
    landing, run = run_tenant
    register(engine, "shop")
    rows = history_rows()
    spike_day = HISTORY_START + timedelta(days=20)
    rows += [good_row(order=f"BIG{n}", at=f"{spike_day} 12:00:00", price="600.00")
             for n in range(12)]
    pos_csv(landing / "shop" / "generic_pos_csv" / "sales.csv", rows)

    result = run()
    assert result.success
    checks = _checks(result)
    warning = checks["ge_daily_revenue_in_band"]
    assert not warning.passed and warning.severity == AssetCheckSeverity.WARN
    assert str(spike_day) in warning.metadata["sample_failing_rows"].value
    assert all(c.passed for name, c in checks.items() if name != "ge_daily_revenue_in_band")
    assert {"staging/stg_sales_lines", "marts/mart_daily_store_kpis"} <= _materialized(result)
    assert scalar(engine, "select count(*) from marts.fct_sales_lines") == len(rows)
    assert list_holds(engine) == []


def test_a_rerun_that_loads_nothing_keeps_the_batch_result(engine, run_tenant):
    landing, run = run_tenant
    register(engine, "shop")
    pos_csv(landing / "shop" / "generic_pos_csv" / "sales.csv", history_rows())
    first = run()
    assert first.success and "raw/sales_lines" in _materialized(first)
    validations = "select count(distinct run_id) from ops.quality_results where suite = :s"
    assert scalar(engine, validations, s="raw_sales_lines") == 1
    again = run()  # nothing new in landing: nothing to validate, nothing raw to report
    assert again.success
    assert not any(key.startswith("raw/") for key in _materialized(again))
    assert not any(name in _checks(again) for name in ("ge_unit_price_plausible",
                                                       "ge_batch_has_rows"))
    assert scalar(engine, validations, s="raw_sales_lines") == 1
    assert scalar(engine, validations, s="stg_sales_lines") == 1
