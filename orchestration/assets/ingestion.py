"""Ingestion: load a tenant's new landing files into ``raw`` (one partition per tenant)."""


from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from ingestion.landing import ingest_tenant
from ingestion.loader import LoadResult
from orchestration.constants import DATA_ENGINEERING
from orchestration.partitions import tenant_partitions
from orchestration.resources import WarehouseResource

RAW_TABLES = {
    "sales_lines": "Canonical POS line items, one row per loaded file line.",
    "stores": "Store catalogues sent by tenants.",
    "products": "Product catalogues sent by tenants.",
    "ingest_files": "The file ledger: one row per file seen, with sha256, counts and status.",
    "quarantine": "Rows that failed validation, with file, line, raw text and reason.",
}


@multi_asset(
    name="ingest_landing_files",
    description=(
        "Loads every new file in landing/<tenant>/<source>/ with its source spec: COPY in one "
        "transaction per file, exactly once by sha256, bad rows quarantined."
    ),
    specs=[
        AssetSpec(AssetKey(["raw", table]), description=text, group_name="ingestion",
                  kinds={"python", "postgres"}, owners=[DATA_ENGINEERING])
        for table, text in RAW_TABLES.items()
    ],
    partitions_def=tenant_partitions,
)
def ingest_landing_files(context: AssetExecutionContext, warehouse: WarehouseResource):
    tenant_id = context.partition_key

    def report(result: LoadResult) -> None:
        log = context.log.error if result.status == "rejected" else context.log.info
        log(result.message)

    # The run id names the batch, so the quality checks of this run validate what it loaded.
    results = ingest_tenant(warehouse.engine(), warehouse.landing_path(), tenant_id,
                            on_file=report, batch_id=context.run_id)
    for table in RAW_TABLES:
        yield MaterializeResult(asset_key=AssetKey(["raw", table]),
                                metadata=_metadata_for(table, results))


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
    listed = [r for r in mine if r.status != "duplicate"]
    if listed:
        metadata["files"] = MetadataValue.md(
            "| file | status | read | loaded | quarantined | error |\n|---|---|---|---|---|---|\n"
            + "\n".join(f"| {r.path.name} | {r.status} | {r.rows_read} | {r.rows_loaded} | "
                        f"{r.rows_quarantined} | {(r.error or '').replace('|', '/')} |"
                        for r in listed))
    return metadata
