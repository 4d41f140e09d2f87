"""The dbt project as Dagster assets: one asset per model, dbt tests as asset checks."""


import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from dagster import AssetExecutionContext, AssetKey, MetadataValue, Output
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.constants import ANALYTICS
from orchestration.project import dbt_project
from orchestration.resources import WarehouseResource
from storepulse.warehouse import dbt_environment


class StorePulseDbtTranslator(DagsterDbtTranslator):
    """Keys as <schema>/<model>, groups by dbt folder (staging / intermediate / marts)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "intermediate"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return [ANALYTICS]


translator = StorePulseDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project,
            dagster_dbt_translator=translator)
def storepulse_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource,
                          warehouse: WarehouseResource):
    """dbt build: staging views, incremental facts, marts, and every dbt test as a check."""
    # dbt runs as a subprocess and reads its connection from profiles.yml's env_vars.
    os.environ.update(dbt_environment(warehouse.url()))
    engine = warehouse.engine()
    for event in dbt.cli(["build"], context=context).stream():
        if isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name)
            event = event.with_metadata({**event.metadata, **_row_count(engine, key)})
        yield event


def _row_count(engine: sa.Engine, key: AssetKey) -> dict:
    """Row counts of materialized tables. (dagster-dbt's fetch_row_counts() uses the database
    name frozen into the manifest at parse time, which breaks when one manifest serves several
    databases; views are skipped because counting them re-runs their query.)"""
    schema, name = key.path[0], key.path[-1]
    if schema != "marts":
        return {}
    with engine.connect() as conn:
        count = conn.execute(sa.text(f'select count(*) from "{schema}"."{name}"')).scalar_one()
    return {"dagster/row_count": MetadataValue.int(count)}
