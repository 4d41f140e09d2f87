"""Sales files published outside an ingestion run's load, reported to Dagster.

An ingestion run that publishes a batch materializes the tenant's ``raw/sales_lines``, and
the dbt sensor and the tenant's ML automation follow. A batch can also be published without
one: a held batch released (`storepulse quality release`, or its checks re-run and passed
after a limit changed), or a `storepulse ingest` checked by `storepulse quality check`.
Reported here as a runless materialization of the same partition, it flows on the same way,
instead of waiting for the tenant's next file.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetMaterialization, DagsterInstance, MetadataValue

from orchestration.automation import RAW_SALES_LINES
from orchestration.instance import dagster_home_instance
from orchestration.partitions import tenant_partitions


def report_published(instance: DagsterInstance, tenant_id: str, file_ids: Iterable[int],
                     published_by: str) -> None:
    if not instance.has_dynamic_partition(tenant_partitions.name, tenant_id):
        instance.add_dynamic_partitions(tenant_partitions.name, [tenant_id])
    instance.report_runless_asset_event(AssetMaterialization(
        asset_key=RAW_SALES_LINES, partition=tenant_id,
        description=f"published by {published_by}",
        metadata={"files_published": MetadataValue.text(", ".join(str(i) for i in file_ids)),
                  "published_by": MetadataValue.text(published_by)}))


def report_to_dagster_home(tenant_id: str, file_ids: Iterable[int], published_by: str
                           ) -> bool:
    """``report_published`` to the instance in DAGSTER_HOME; False when none is set up (the
    files then reach the marts with the next dbt build)."""
    with dagster_home_instance() as instance:
        if instance is None:
            return False
        report_published(instance, tenant_id, file_ids, published_by)
    return True
