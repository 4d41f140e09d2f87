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


def forget_tenant_partition(tenant_id: str) -> bool:
    """Delete the tenant's partition from the Dagster instance in DAGSTER_HOME, if one is set
    up (its runs and materializations stay in the history). Returns False when there is no
    persistent instance; the landing sensor then deletes it on its next tick."""
    from orchestration.instance import dagster_home_instance

    with dagster_home_instance() as instance:
        if instance is None:
            return False
        if instance.has_dynamic_partition(tenant_partitions.name, tenant_id):
            instance.delete_dynamic_partition(tenant_partitions.name, tenant_id)
    return True
