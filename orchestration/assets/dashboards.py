"""Metabase dashboards, synced from the specs after the marts and ML tables refresh."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dashboards.sync import sync_dashboards
from orchestration.automation import DASHBOARDS
from orchestration.constants import ANALYTICS
from orchestration.resources import WarehouseResource
from storepulse.settings import load_metabase_settings

# What the cards read; the sync runs after these refresh.
UPSTREAM = [AssetKey(["marts", name]) for name in (
    "mart_daily_store_kpis", "mart_customer_rfm", "mart_product_affinity",
    "mart_cohort_retention", "mart_kpi_trends", "fct_daily_product_sales", "fct_orders",
    "dim_products")] + [AssetKey(["ml", "forecasts"]), AssetKey(["ml", "anomalies"])]


@asset(
    key=["dashboards", "metabase"],
    deps=UPSTREAM,
    automation_condition=DASHBOARDS,
    group_name="dashboards",
    kinds={"metabase"},
    owners=[ANALYTICS],
    output_required=False,
    description="Each tenant's Metabase space (connection as its own role, collection, group, "
                "permissions, dashboards) and the data team's, synced idempotently from "
                "dashboards/specs/; the spaces of purged tenants are retired. Skipped, with a "
                "log line, when METABASE_URL is unset.",
)
def metabase_dashboards(context: AssetExecutionContext, warehouse: WarehouseResource):
    settings = load_metabase_settings()
    if settings is None:
        context.log.warning("METABASE_URL is not set: dashboards not synced (nothing "
                            "materialized). Set METABASE_* to provision Metabase.")
        return
    report = sync_dashboards(warehouse.engine(), warehouse.url(), settings)
    for action in report.actions:
        context.log.info(action)
    yield MaterializeResult(metadata={
        "changes": MetadataValue.int(report.changes),
        "actions": MetadataValue.md("\n".join(f"- {a}" for a in report.actions) or "none"),
        "cards_not_in_specs": MetadataValue.int(len(report.unmanaged_cards)),
        "metabase": MetadataValue.url(settings.url),
    })
