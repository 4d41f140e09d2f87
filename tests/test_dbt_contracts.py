"""The marts that dashboards and the ML read have enforced contracts, and every mart column's
type reaches Dagster's catalog (instead of "?")."""

import yaml
from dagster import AssetKey

from tests.dbt_helpers import DBT_PATHS

READ_BY_DASHBOARDS_AND_ML = {
    "mart_daily_store_kpis", "mart_customer_rfm", "mart_cohort_retention", "mart_kpi_trends",
    "mart_product_affinity", "fct_orders", "fct_daily_product_sales", "dim_products"}


def _marts() -> dict[str, dict]:
    document = yaml.safe_load((DBT_PATHS.project_dir / "models" / "marts" / "_marts.yml")
                              .read_text())
    return {model["name"]: model for model in document["models"]}


def test_contracts_are_enforced_on_what_dashboards_and_ml_read():
    enforced = {name for name, model in _marts().items()
                if (model.get("config") or {}).get("contract", {}).get("enforced")}
    assert enforced == READ_BY_DASHBOARDS_AND_ML
    # every dashboard reads only contracted marts (the exposures say which they read)
    exposures = yaml.safe_load((DBT_PATHS.project_dir / "models" / "marts" / "_exposures.yml")
                               .read_text())["exposures"]
    read = {ref.split("'")[1] for e in exposures for ref in e["depends_on"]
            if ref.startswith("ref(")}
    assert read <= READ_BY_DASHBOARDS_AND_ML


def test_every_mart_column_has_a_type_and_dagster_shows_it():
    from orchestration.dbt import storepulse_dbt_models

    for name, model in _marts().items():
        assert all(column.get("data_type") for column in model["columns"]), name
    specs = storepulse_dbt_models.specs_by_key
    schema = specs[AssetKey(["marts", "mart_daily_store_kpis"])].metadata[
        "dagster/column_schema"]
    types = {column.name: column.type for column in schema.columns}
    assert types["day"] == "date" and types["tenant_id"] == "text"
    assert types["net_revenue"] == "numeric" and types["is_closed_day"] == "boolean"
    assert all(column.type and column.type != "?" for column in schema.columns)
