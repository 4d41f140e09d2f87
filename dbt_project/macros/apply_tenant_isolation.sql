{#- Post-hook for every mart: dbt re-creates tables, so row-level security, the tenant policy
    and the grant are re-applied after each build (ops.apply_tenant_isolation, migration 0005).
    A mart without tenant_id cannot be isolated and fails the build here. -#}
{% macro apply_tenant_isolation() %}
    select ops.apply_tenant_isolation('{{ this }}'::regclass)
{% endmacro %}
