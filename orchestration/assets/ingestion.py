"""Ingestion: load a tenant's new landing files into ``raw`` and gate the batch (per tenant).

One step loads the files and validates the batch with the raw Great Expectations suite, so a
table is reported as materialized only when it really changed, and ``raw/sales_lines`` only
when its batch passed the blocking rules: automation downstream (dbt, the tenant's ML) then
never starts from a held batch, and a run that loaded nothing reports nothing.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from ingestion.landing import LandingFile, ingest_tenant
from ingestion.loader import LoadResult
from orchestration.automation import RAW_SALES_FRESHNESS
from orchestration.checks import RAW_SALES_LINES_KEY, check_specs, tenant_check_results
from orchestration.constants import DATA_ENGINEERING
from orchestration.partitions import tenant_partitions
from orchestration.publication import report_published
from orchestration.resources import LandingResource, WarehouseResource
from quality.gate import files_awaiting_gate, validate_batch
from quality.suites import RAW_SALES_LINES

RAW_TABLES = {
    "sales_lines": "Canonical POS line items, one row per loaded file line; materialized "
                   "for a tenant when a batch loaded and passed its blocking quality rules.",
    "stores": "Store catalogues sent by tenants.",
    "products": "Product catalogues sent by tenants.",
    "ingest_files": "The file ledger: one row per file seen, with sha256, counts and status.",
    "quarantine": "Rows that failed validation, with file, line, raw text and reason.",
}


@multi_asset(
    name="ingest_landing_files",
    description=(
        "Loads every new file in landing/<tenant>/<source>/ with its source spec (COPY in one "
        "transaction per file, exactly once by sha256, bad rows quarantined), then validates "
        "the batch with the raw Great Expectations suite; a failed error rule holds it."
    ),
    specs=[
        AssetSpec(AssetKey(["raw", table]), description=text, group_name="ingestion",
                  kinds={"python", "postgres"}, owners=[DATA_ENGINEERING], skippable=True,
                  freshness_policy=RAW_SALES_FRESHNESS if table == "sales_lines" else None)
        for table, text in RAW_TABLES.items()
    ],
    check_specs=check_specs(RAW_SALES_LINES, RAW_SALES_LINES_KEY, tenant_partitions),
    partitions_def=tenant_partitions,
    can_subset=True,
)
def ingest_landing_files(context: AssetExecutionContext, warehouse: WarehouseResource,
                         landing: LandingResource
                         ) -> Iterator[MaterializeResult | AssetCheckResult]:
    tenant_id = context.partition_key
    engine = warehouse.engine()

    def report(result: LoadResult) -> None:
        if result.status == "rejected":
            context.log.error(result.message)
        elif result.rows_quarantined:  # which rows, where the run's log is read first
            context.log.warning("\n  ".join([result.message, *result.quarantine_lines]))
        else:
            context.log.info(result.message)

    def wait(item: LandingFile) -> None:
        context.log.info(f"{item.source}/{item.path.name} changed in the last "
                         f"{landing.settle():g} s and may still be being written: left for "
                         "the next run, which the landing sensor requests once it is still")

    # The run id names the batch, so the gate validates exactly what this run loaded.
    results = (ingest_tenant(engine, landing.path(), tenant_id, on_file=report,
                             batch_id=context.run_id, settle_seconds=landing.settle(),
                             on_wait=wait)
               if context.selected_asset_keys else [])
    # This run's new sales, and any an earlier run committed but never gated (it was
    # interrupted between its load and its gate): the gate judges them together.
    with engine.connect() as conn:
        new_sales = bool(files_awaiting_gate(conn, tenant_id))
    published: tuple[int, ...] = ()
    checks: list[AssetCheckResult] = []
    if context.selected_asset_check_keys and (new_sales or not context.selected_asset_keys):
        # Checks selected alone re-validate what awaits the gate, else the tenant's latest
        # batch (after a limit changed, say: passing releases it).
        outcome = validate_batch(engine, RAW_SALES_LINES, tenant_id, run_id=context.run_id,
                                 batch_id=context.run_id, asset="raw/sales_lines")
        for failure in outcome.blocking_failures:
            context.log.error(f"{tenant_id}: {failure.summary()}")
        if outcome.hold_action != "none":
            context.log.warning(f"{tenant_id}: batch {list(outcome.file_ids)} "
                                f"{outcome.hold_action}")
        checks = [c for c in tenant_check_results(RAW_SALES_LINES_KEY, outcome)
                  if AssetCheckKey(RAW_SALES_LINES_KEY, c.check_name or "")
                  in context.selected_asset_check_keys]
        new_sales = new_sales and not outcome.blocking_failures
        published = outcome.published
        if published and not context.selected_asset_keys:
            # Checks run alone materialize nothing: what they published (files awaiting the
            # gate, or a held batch they released) is reported, so the marts follow.
            report_published(context.instance, tenant_id, published,
                             f"raw/sales_lines checks in run {context.run_id}")
    for table in RAW_TABLES:
        key = AssetKey(["raw", table])
        if key not in context.selected_asset_keys:
            continue
        if table == "sales_lines":
            if new_sales:
                metadata = _metadata_for(table, results)
                if published:
                    metadata["files_published"] = MetadataValue.text(
                        ", ".join(str(file_id) for file_id in published))
                yield MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)
                checks = []
            continue
        if not _changed(table, results):
            continue
        yield MaterializeResult(asset_key=key, metadata=_metadata_for(table, results))
    # A held batch (or checks run alone): results without a new materialization.
    yield from checks


def _changed(table: str, results: list[LoadResult]) -> bool:
    if table == "ingest_files":
        return any(r.status != "duplicate" for r in results)
    if table == "quarantine":
        return any(r.rows_quarantined for r in results if r.status == "loaded")
    return any(r.status == "loaded" and r.target == table for r in results)


def _metadata_for(table: str, results: list[LoadResult]) -> dict:
    if table in ("ingest_files", "quarantine"):
        mine = results  # every file is in the ledger, every target can quarantine
    else:
        mine = [r for r in results if r.target == table]
    loaded = [r for r in mine if r.status == "loaded"]
    metadata = {
        "files_seen": MetadataValue.int(len(mine)),
        "files_loaded": MetadataValue.int(len(loaded)),
        "files_already_loaded": MetadataValue.int(sum(r.status == "duplicate" for r in mine)),
        "files_rejected": MetadataValue.int(sum(r.status == "rejected" for r in mine)),
        "rows_read": MetadataValue.int(sum(r.rows_read for r in loaded)),
        "rows_loaded": MetadataValue.int(sum(r.rows_loaded for r in loaded)),
        "rows_quarantined": MetadataValue.int(sum(r.rows_quarantined for r in loaded)),
    }
    if table == "quarantine" and any(r.first_quarantined for r in loaded):
        metadata["first_quarantined"] = MetadataValue.md(
            "| file | line | field | reason |\n|---|---|---|---|\n"
            + "\n".join(f"| {r.path.name} | {bad.line_number} | {bad.field or ''} | "
                        f"{bad.reason.replace('|', '/')} |"
                        for r in loaded for bad in r.first_quarantined))
    listed = [r for r in mine if r.status != "duplicate"]
    if listed:
        metadata["files"] = MetadataValue.md(
            "| file | status | read | loaded | quarantined | error |\n|---|---|---|---|---|---|\n"
            + "\n".join(f"| {r.path.name} | {r.status} | {r.rows_read} | {r.rows_loaded} | "
                        f"{r.rows_quarantined} | {(r.error or '').replace('|', '/')} |"
                        for r in listed))
    return metadata
