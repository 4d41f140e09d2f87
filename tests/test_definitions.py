"""The one Definitions object loads with every asset, check, job and sensor we expect, and the
Dagster UI really serves it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from functools import cached_property
from pathlib import Path

import pytest
from dagster import AssetKey

from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_ASSETS = {
    ("raw", "sales_lines"), ("raw", "stores"), ("raw", "products"), ("raw", "ingest_files"),
    ("raw", "quarantine"), ("ops", "tenants"),
    ("staging", "stg_sales_lines"), ("staging", "stg_stores"), ("staging", "stg_tenants"),
    ("staging", "stg_ingest_files"), ("staging", "stg_superseded_sales_lines"),
    ("intermediate", "int_sales_lines_localized"),
    ("marts", "fct_sales_lines"), ("marts", "fct_orders"), ("marts", "dim_customers"),
    ("marts", "dim_products"), ("marts", "dim_stores"), ("marts", "mart_daily_store_kpis"),
    ("marts", "mart_customer_rfm"), ("marts", "mart_product_affinity"),
    ("marts", "mart_cohort_retention"), ("marts", "mart_kpi_trends"),
}


def _asset_graph():
    return defs.resolve_asset_graph()


def test_assets_groups_and_owners():
    graph = _asset_graph()
    keys = {tuple(k.path) for k in graph.get_all_asset_keys()}
    assert keys >= EXPECTED_ASSETS, EXPECTED_ASSETS - keys
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            groups.setdefault(node.group_name, set()).add(tuple(key.path))
            assert node.description, f"{key} has no description"
            assert node.owners, f"{key} has no owners"
    assert {"ingestion", "staging", "intermediate", "marts"} <= set(groups)
    assert ("marts", "fct_sales_lines") in groups["marts"]
    assert ("staging", "stg_sales_lines") in groups["staging"]
    # Layer order: marts depend (transitively) on the raw tables the ingestion asset writes.
    upstream = graph.get(AssetKey(["staging", "stg_sales_lines"])).parent_keys
    assert AssetKey(["raw", "sales_lines"]) in upstream


def test_dbt_tests_are_asset_checks():
    checks = {(tuple(c.asset_key.path), c.name) for c in _asset_graph().asset_check_keys}
    assert any(key == ("marts", "mart_customer_rfm") and name.startswith("accepted_values")
               for key, name in checks)
    # Singular business-rule tests sit on the asset they guard.
    assert (("marts", "mart_daily_store_kpis"), "assert_revenue_reconciles_to_raw") in checks
    assert (("marts", "mart_customer_rfm"), "assert_every_customer_has_one_segment") in checks
    # Exactly one check per dbt data test in the manifest and per Great Expectations rule.
    import json

    from orchestration.project import dbt_project
    from quality.suites import RAW_SALES_LINES, STG_SALES_LINES

    manifest = json.loads(dbt_project.manifest_path.read_text())
    dbt_tests = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "test"}
    ge_rules = {f"ge_{rule.name}" for suite in (RAW_SALES_LINES, STG_SALES_LINES)
                for rule in suite.rules}
    assert len(checks) == len(dbt_tests) + len(ge_rules)
    assert {name for _, name in checks} == dbt_tests | ge_rules


def test_dbt_resource_skips_dagster_dbts_start_up_without_changing_what_it_learns():
    from dagster_dbt import DbtCliResource

    from orchestration.dbt import StorePulseDbtCli
    from storepulse.dbt_runtime import dbt_executable

    # the private hooks StorePulseDbtCli overrides still exist in this dagster-dbt
    assert isinstance(DbtCliResource.__dict__["_cli_version"], cached_property)
    assert callable(DbtCliResource.__dict__["_initialize_dbt_core_adapter"])
    resource = StorePulseDbtCli(project_dir=str(ROOT / "dbt_project"),
                                dbt_executable=dbt_executable())
    # the version it states is the one `dbt --version` prints
    printed = subprocess.run([dbt_executable(), "--version"], capture_output=True,
                             text=True).stdout
    assert f"installed: {resource._cli_version}" in printed
    assert resource._cli_version.major == 1  # dbt Core, not Fusion
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_jobs_and_sensors():
    assert {"ingest_job", "dbt_build_job"} <= {j.name for j in defs.jobs}
    sensors = {s.name: s for s in defs.sensors}
    # the daily loop runs with nobody clicking: every sensor is on by default
    assert set(sensors) == {"landing_sensor", "dbt_after_ingestion", "storepulse_automation",
                            "anomaly_alert_sensor", "run_failure_alert_sensor",
                            "failed_check_alert_sensor", "stale_data_sensor"}
    assert all(s.default_status.value == "RUNNING" for s in sensors.values())
    # automation launches one run per tenant now, not a backfill for the backfill daemon
    assert sensors["storepulse_automation"].emit_backfills is False


def test_automation_and_freshness_are_declared_on_the_assets():
    from dagster import AssetKey

    from orchestration.automation import FORECAST_REFRESH, TENANT_ML

    graph = defs.resolve_asset_graph()

    def node(*path):
        return graph.get(AssetKey(list(path)))

    assert node("ml", "forecasts").automation_condition == FORECAST_REFRESH
    assert node("ml", "anomalies").automation_condition == TENANT_ML
    assert node("dashboards", "metabase").automation_condition is not None
    # dbt runs as one job per wave (dbt_after_ingestion), never in per-model fragments
    assert node("marts", "fct_sales_lines").automation_condition is None
    for key in (("raw", "sales_lines"), ("marts", "mart_daily_store_kpis"),
                ("ml", "forecasts")):
        assert node(*key).freshness_policy is not None, key
    assert node("raw", "ingest_files").freshness_policy is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dagster_webserver_serves_the_asset_graph(tmp_path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = json.dumps({"query": "{ assetNodes { assetKey { path } groupName } }"}).encode()
        deadline = time.time() + 120
        nodes = None
        while time.time() < deadline:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    payload = json.load(response)
                nodes = payload.get("data", {}).get("assetNodes")
                if nodes:
                    break
            except (OSError, ValueError):
                pass
            if server.poll() is not None:
                pytest.fail("dagster-webserver exited early")
            time.sleep(1)
        assert nodes, "the webserver never served asset nodes"
        served = {tuple(n["assetKey"]["path"]) for n in nodes}
        assert served >= EXPECTED_ASSETS
        assert {n["groupName"] for n in nodes} >= {"ingestion", "staging", "marts"}
    finally:
        server.terminate()
        server.wait(30)


def test_dbt_tables_are_named_without_the_database_the_manifest_was_parsed_on():
    from dagster import AssetKey

    spec = next(s for s in defs.resolve_all_asset_specs()
                if s.key == AssetKey(["marts", "fct_orders"]))
    assert spec.metadata["dagster/table_name"] == "marts.fct_orders"


def test_dbt_descriptions_are_the_yaml_ones_without_raw_sql():
    from dagster import AssetKey

    spec = next(s for s in defs.resolve_all_asset_specs()
                if s.key == AssetKey(["marts", "fct_orders"]))
    assert spec.description and "Raw SQL" not in spec.description
    assert "select" not in spec.description.lower()
