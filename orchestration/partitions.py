from dagster import DynamicPartitionsDefinition

# One partition per tenant; `storepulse tenants add` and the landing sensor add them.
tenant_partitions = DynamicPartitionsDefinition(name="tenants")


def register_tenant_partition(tenant_id: str) -> bool:
    """Add the tenant's partition to the Dagster instance in DAGSTER_HOME, if one is set up.

    Returns False when there is no persistent instance; the landing sensor then registers the
    partition on its next tick.
    """
    import logging
    import os

    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        return False
    # An instance folder without dagster.yaml (what `dagster dev` leaves) is normal here:
    # Dagster's warning about it would be noise on the command line.
    dagster_logger = logging.getLogger("dagster")
    level = dagster_logger.level
    dagster_logger.setLevel(logging.ERROR)
    try:
        with DagsterInstance.get() as instance:
            if not instance.has_dynamic_partition(tenant_partitions.name, tenant_id):
                instance.add_dynamic_partitions(tenant_partitions.name, [tenant_id])
    finally:
        dagster_logger.setLevel(level)
    return True
