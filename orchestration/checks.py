"""Great Expectations suites as Dagster asset checks, one check per rule.

raw/sales_lines: validated per tenant partition on the batch the run loaded. Error rules are
blocking: downstream assets in the same run (dbt, forecasts) do not start, and the batch is held
out of the staging models until a passing re-check or `storepulse quality release`.
staging/stg_sales_lines: warnings on the typed lines, after dbt builds the view.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from orchestration.resources import WarehouseResource
from quality.gate import SuiteOutcome, validate_batch
from quality.suites import RAW_SALES_LINES, STG_SALES_LINES, Suite
from storepulse.tenants import list_tenants

RAW_SALES_LINES_KEY = AssetKey(["raw", "sales_lines"])
STG_SALES_LINES_KEY = AssetKey(["staging", "stg_sales_lines"])


def _specs(suite: Suite, asset_key: AssetKey) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(
        name=f"ge_{rule.name}", asset=asset_key, blocking=rule.severity == "error",
        description=f"[{rule.severity}] {rule.description} (Great Expectations suite "
                    f"`{suite.name}`)")
        for rule in suite.rules]


def _tenants(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> list[str]:
    partition = context.run.tags.get("dagster/partition")
    return [partition] if partition else [t.tenant_id for t in list_tenants(warehouse.engine())]


def _reuse_allowed(context: AssetCheckExecutionContext, producer_step: str,
                   producer: AssetKey) -> bool:
    """Re-validate when the check runs on its own (someone asked: a changed limit may release
    a hold); in a pipeline run, a batch already validated keeps its recorded result."""
    steps = context.run.step_keys_to_execute
    if steps is not None:
        return producer_step in steps
    return producer in context.job_def.asset_layer.executable_asset_keys


def _results(suite: Suite, asset_key: AssetKey, outcomes: list[SuiteOutcome]
             ) -> Iterator[AssetCheckResult]:
    """One result per rule: failed if it failed for any tenant, with that tenant's evidence."""
    for rule in suite.rules:
        per_tenant = [(o, o.rule(rule.name)) for o in outcomes]
        failing = [(o, r) for o, r in per_tenant if not r.success]
        metadata = {
            "tenants": MetadataValue.text(", ".join(o.tenant_id for o in outcomes) or "none"),
            "validated_now": MetadataValue.text(", ".join(
                o.tenant_id for o in outcomes if not o.reused_from_run) or "none (unchanged "
                "batches keep their recorded results)"),
            "batch_files": MetadataValue.text(
                "; ".join(f"{o.tenant_id}: {list(o.file_ids)}" for o in outcomes)),
        }
        if failing:
            metadata["failing_tenants"] = MetadataValue.text(
                ", ".join(o.tenant_id for o, _ in failing))
            metadata["failed_expectations"] = MetadataValue.md("\n".join(
                f"- **{o.tenant_id}**: {r.summary()}" for o, r in failing))
            metadata["observed"] = MetadataValue.json(
                {o.tenant_id: r.observed for o, r in failing})
            metadata["unexpected_count"] = MetadataValue.int(
                sum(r.unexpected_count or 0 for _, r in failing))
            samples = [(o.tenant_id, row) for o, r in failing for row in r.samples]
            if samples:
                metadata["sample_failing_rows"] = MetadataValue.md(_sample_table(samples))
            held = [o.tenant_id for o, _ in failing if o.hold_action == "held"]
            if held:
                metadata["held_batches"] = MetadataValue.text(
                    f"held out of staging for: {', '.join(held)} "
                    "(storepulse quality holds / release)")
        yield AssetCheckResult(
            asset_key=asset_key, check_name=f"ge_{rule.name}", passed=not failing,
            severity=(AssetCheckSeverity.ERROR if rule.severity == "error"
                      else AssetCheckSeverity.WARN),
            description=rule.description, metadata=metadata)


def _sample_table(samples: list[tuple[str, dict]]) -> str:
    columns = sorted({k for _, row in samples for k in row})
    lines = ["| tenant | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for tenant, row in samples:
        lines.append(f"| {tenant} | " + " | ".join(
            str(row.get(c, "")).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


@multi_asset_check(specs=_specs(RAW_SALES_LINES, RAW_SALES_LINES_KEY),
                   name="raw_sales_lines_quality",
                   description="Great Expectations suite `raw_sales_lines` on the tenant's "
                               "loaded batch; error rules block and hold the batch.")
def raw_sales_lines_quality(context: AssetCheckExecutionContext,
                            warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
    engine = warehouse.engine()
    outcomes = []
    for tenant_id in _tenants(context, warehouse):
        outcome = validate_batch(engine, RAW_SALES_LINES, tenant_id, run_id=context.run.run_id,
                                 batch_id=context.run.run_id, asset="raw/sales_lines",
                                 reuse=_reuse_allowed(context, "ingest_landing_files",
                                                     RAW_SALES_LINES_KEY))
        if outcome.reused_from_run:
            context.log.info(f"{tenant_id}: batch {list(outcome.file_ids)} unchanged since "
                             f"run {outcome.reused_from_run}; its result stands")
        for failure in outcome.blocking_failures:
            context.log.error(f"{tenant_id}: {failure.summary()}")
        if outcome.hold_action in ("held", "released"):
            context.log.warning(f"{tenant_id}: batch {list(outcome.file_ids)} "
                                f"{outcome.hold_action}")
        outcomes.append(outcome)
    yield from _results(RAW_SALES_LINES, RAW_SALES_LINES_KEY, outcomes)


@multi_asset_check(specs=_specs(STG_SALES_LINES, STG_SALES_LINES_KEY),
                   name="stg_sales_lines_quality",
                   description="Great Expectations suite `stg_sales_lines` on each tenant's "
                               "latest batch as staging types it; warnings only.")
def stg_sales_lines_quality(context: AssetCheckExecutionContext,
                            warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
    engine = warehouse.engine()
    reuse = _reuse_allowed(context, "storepulse_dbt_models", STG_SALES_LINES_KEY)
    outcomes = [validate_batch(engine, STG_SALES_LINES, tenant_id, run_id=context.run.run_id,
                               asset="staging/stg_sales_lines", gate=False, reuse=reuse)
                for tenant_id in _tenants(context, warehouse)]
    yield from _results(STG_SALES_LINES, STG_SALES_LINES_KEY, outcomes)


QUALITY_CHECKS = [raw_sales_lines_quality, stg_sales_lines_quality]
