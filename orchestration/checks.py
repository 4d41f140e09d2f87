"""Great Expectations suites as Dagster asset checks, one check per rule.

raw/sales_lines: validated inside the ingestion step, per tenant partition, on the batch the
run loaded (``ingest_landing_files`` yields these checks). Error rules are blocking: a failed
one fails the run (the data team is emailed), the batch is held out of the staging models
until a passing re-check or `storepulse quality release`, and ``raw/sales_lines`` is not
materialized for it, so no automation downstream starts. Each tenant's status is its own
partition's: one tenant's failed gate is never hidden by another's pass.

staging/stg_sales_lines: warnings on the typed lines of each tenant's latest batch, after dbt
builds the view (the view is shared by all tenants, so the check lists them).
"""

import warnings
from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
    multi_asset_check,
)

from orchestration.resources import WarehouseResource
from quality.gate import RuleOutcome, SuiteOutcome, validate_batch
from quality.suites import STG_SALES_LINES, Suite
from storepulse.tenants import list_tenants

RAW_SALES_LINES_KEY = AssetKey(["raw", "sales_lines"])
STG_SALES_LINES_KEY = AssetKey(["staging", "stg_sales_lines"])


def check_specs(suite: Suite, asset_key: AssetKey,
                partitions_def: PartitionsDefinition | None = None) -> list[AssetCheckSpec]:
    with warnings.catch_warnings():
        # Partitioned checks are a preview in Dagster 1.13; they are what gives each tenant
        # its own check status, and tests/test_quality_dagster.py pins the behaviour used.
        warnings.simplefilter("ignore", PreviewWarning)
        return _check_specs(suite, asset_key, partitions_def)


def _check_specs(suite: Suite, asset_key: AssetKey,
                 partitions_def: PartitionsDefinition | None) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(
        name=f"ge_{rule.name}", asset=asset_key, blocking=rule.severity == "error",
        partitions_def=partitions_def,
        description=f"[{rule.severity}] {rule.description} (Great Expectations suite "
                    f"`{suite.name}`)")
        for rule in suite.rules]


def _severity(rule: RuleOutcome) -> AssetCheckSeverity:
    return AssetCheckSeverity.ERROR if rule.severity == "error" else AssetCheckSeverity.WARN


def _failure_metadata(failing: list[tuple[SuiteOutcome, RuleOutcome]]) -> dict:
    metadata = {
        "failed_expectations": MetadataValue.md("\n".join(
            f"- **{o.tenant_id}**: {r.summary()}" for o, r in failing)),
        "observed": MetadataValue.json({o.tenant_id: r.observed for o, r in failing}),
        "unexpected_count": MetadataValue.int(sum(r.unexpected_count or 0 for _, r in failing)),
    }
    samples = [(o.tenant_id, row) for o, r in failing for row in r.samples]
    if samples:
        metadata["sample_failing_rows"] = MetadataValue.md(_sample_table(samples))
    held = [o.tenant_id for o, _ in failing if o.hold_action == "held"]
    if held:
        metadata["held_batches"] = MetadataValue.text(
            f"held out of staging for: {', '.join(held)} (storepulse quality holds / release)")
    return metadata


def tenant_check_results(asset_key: AssetKey, outcome: SuiteOutcome
                         ) -> list[AssetCheckResult]:
    """One result per rule for one tenant's batch (its partition)."""
    results = []
    for rule in outcome.rules:
        metadata = {"batch_files": MetadataValue.text(str(list(outcome.file_ids)) or "none")}
        if outcome.reused_from_run:
            metadata["validated_in_run"] = MetadataValue.text(outcome.reused_from_run)
        if not rule.success:
            metadata |= _failure_metadata([(outcome, rule)])
        results.append(AssetCheckResult(
            asset_key=asset_key, check_name=f"ge_{rule.rule}", passed=rule.success,
            severity=_severity(rule), description=rule.description, metadata=metadata))
    return results


def _sample_table(samples: list[tuple[str, dict]]) -> str:
    columns = sorted({k for _, row in samples for k in row})
    lines = ["| tenant | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for tenant, row in samples:
        lines.append(f"| {tenant} | " + " | ".join(
            str(row.get(c, "")).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


@multi_asset_check(specs=check_specs(STG_SALES_LINES, STG_SALES_LINES_KEY),
                   name="stg_sales_lines_quality",
                   description="Great Expectations suite `stg_sales_lines` on each tenant's "
                               "latest batch as staging types it; warnings only.")
def stg_sales_lines_quality(context: AssetCheckExecutionContext,
                            warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
    engine = warehouse.engine()
    # In a run that also rebuilt the view, a batch validated before keeps its result (the
    # view of an unchanged batch is unchanged); run on its own, every batch is validated.
    steps = context.run.step_keys_to_execute
    reuse = steps is None or "storepulse_dbt_models" in steps
    outcomes = [validate_batch(engine, STG_SALES_LINES, t.tenant_id, run_id=context.run.run_id,
                               asset="staging/stg_sales_lines", gate=False, reuse=reuse)
                for t in list_tenants(engine)]
    for rule in STG_SALES_LINES.rules:
        per_tenant = [(o, o.rule(rule.name)) for o in outcomes]
        failing = [(o, r) for o, r in per_tenant if not r.success]
        metadata = {"tenants": MetadataValue.text(
            ", ".join(o.tenant_id for o in outcomes) or "none")}
        if failing:
            metadata["failing_tenants"] = MetadataValue.text(
                ", ".join(o.tenant_id for o, _ in failing))
            metadata |= _failure_metadata(failing)
        yield AssetCheckResult(
            asset_key=STG_SALES_LINES_KEY, check_name=f"ge_{rule.name}", passed=not failing,
            severity=AssetCheckSeverity.WARN, description=rule.description, metadata=metadata)


QUALITY_CHECKS = [stg_sales_lines_quality]
