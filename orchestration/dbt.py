"""The dbt project as Dagster assets: one asset per model, dbt tests as asset checks."""


import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MetadataValue,
    Output,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import default_description_fn
from packaging import version

from orchestration.automation import MARTS_FRESHNESS
from orchestration.constants import ANALYTICS
from orchestration.progress import NodeProgress
from orchestration.project import DBT_PATHS, dbt_project
from orchestration.resources import WarehouseResource
from storepulse.dbt_runtime import keep_partial_parse, partial_parse_cache, run_target
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

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # the YAML description only: the default appends the model's raw SQL, which then
        # fills the catalog's list view (the SQL is a click away, in dbt_project/)
        return default_description_fn(dbt_resource_props, display_raw_sql=False)

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        if node.get("resource_type") == "model":
            # schema.table: the manifest is parsed once for every warehouse, so the database
            # it names (dagster-dbt's default) is whichever one that parse saw
            table = f"{node['schema']}.{node.get('alias') or node['name']}"
            spec = spec.replace_attributes(metadata={**spec.metadata,
                                                     "dagster/table_name": table})
        if spec.group_name == "marts":
            return spec.replace_attributes(freshness_policy=MARTS_FRESHNESS)
        return spec


class StorePulseDbtCli(DbtCliResource):
    """dagster-dbt's resource without two start-up costs it pays on every run (most of a
    daily dbt step's fixed cost; BENCHMARKS.md, "End to end"):

    - it runs ``dbt --version`` in a subprocess to tell dbt Core from the Fusion engine; we
      install dbt-core, whose version the package itself states;
    - it loads the project and profile into an in-process adapter, used only to fetch column
      metadata and row counts; we fetch neither that way (see _row_count).

    Both are private hooks of dagster-dbt 0.29 (pinned); tests/test_definitions.py fails if
    an upgrade renames them.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args):
        return None


translator = StorePulseDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project,
            dagster_dbt_translator=translator)
def storepulse_dbt_models(context: AssetExecutionContext, dbt: StorePulseDbtCli,
                          warehouse: WarehouseResource):
    """dbt build: staging views, incremental facts, marts, and every dbt data test as a
    check. Unit tests check SQL logic against fixed inputs, which no new data can change:
    CI runs them (tests/test_dbt_marts.py), daily builds skip them, as dbt advises."""
    # dbt runs as a subprocess and reads its connection from profiles.yml's env_vars.
    connection = dbt_environment(warehouse.url())
    os.environ.update(connection)
    # dagster-dbt seeds each invocation with the partial-parse state under DBT_TARGET_PATH:
    # point it at the state the last run against this warehouse kept.
    parse_state = partial_parse_cache(DBT_PATHS, connection)
    os.environ.update({"DBT_TARGET_PATH": str(parse_state)})
    engine = warehouse.engine()
    # Artifacts and logs of this invocation go under STOREPULSE_HOME, one folder per run.
    target = run_target(DBT_PATHS, context.run.run_id)
    build = dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context,
                    target_path=target)
    progress = NodeProgress(context, "dbt build")
    for event in build.stream():
        if isinstance(event, Output):
            key = context.asset_key_for_output(event.output_name)
            event = event.with_metadata({**event.metadata, **_row_count(engine, key)})
            progress.node_done(key.to_user_string())
        elif isinstance(event, AssetCheckResult):
            progress.node_done(event.check_name)
        yield event
    keep_partial_parse(target, parse_state)


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
