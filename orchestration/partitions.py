from dagster import DynamicPartitionsDefinition

# One partition per tenant; `storepulse tenants add` and the landing sensor add them.
tenant_partitions = DynamicPartitionsDefinition(name="tenants")
