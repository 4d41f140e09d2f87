from dagster import DynamicPartitionsDefinition

# One partition per tenant; `storepulse tenants add` and the landing sensor add them, and
# `storepulse tenants remove --purge` and the landing sensor delete those of a tenant no
# longer registered (else the daily forecast refresh would request runs for it, each failing).
tenant_partitions = DynamicPartitionsDefinition(name="tenants")


def register_tenant_partition(tenant_id: str) -> bool:
    """Add the tenant's partition to the Dagster instance in DAGSTER_HOME, if one is set up.

    Returns False when there is no persistent instance; the landing sensor then registers the
    partition on its next tick.
    """
    from orchestration.instance import dagster_home_instance

    with dagster_home_instance() as instance:
        if instance is None:
            return False
        if not instance.has_dynamic_partition(tenant_partitions.name, tenant_id):
            instance.add_dynamic_partitions(tenant_partitions.name, [tenant_id])
    return True


def forget_tenant(tenant_id: str) -> int | None:
    """Delete the tenant's partition from the Dagster instance in DAGSTER_HOME, and its runs
    (their logs and metadata hold its file names, quarantined values and figures; runs of
    every tenant, like the dbt builds, stay). Returns the runs deleted, or None when there is
    no persistent instance: the landing sensor then deletes the partition on its next tick."""
    from dagster import RunsFilter

    from orchestration.instance import dagster_home_instance

    with dagster_home_instance() as instance:
        if instance is None:
            return None
        if instance.has_dynamic_partition(tenant_partitions.name, tenant_id):
            instance.delete_dynamic_partition(tenant_partitions.name, tenant_id)
        runs = instance.get_run_records(RunsFilter(tags={"dagster/partition": tenant_id}))
        for record in runs:
            instance.delete_run(record.dagster_run.run_id)
    return len(runs)
