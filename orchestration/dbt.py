"""The dbt project as Dagster assets: one asset per model, dbt tests as asset checks."""


import os
from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext
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
    """Groups assets by dbt folder (staging / intermediate / marts) and sets owners."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "marts"
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
    yield from dbt.cli(["build"], context=context).stream().fetch_row_counts()
