{#- Per tenant, its latest day with an order (`tenant_id`, `as_of_date`): where the daily KPI
    calendar ends, and what recency and trend windows are measured from. Said once here so
    the marts cannot disagree about "today". -#}
{% macro tenant_as_of_dates() %}
    select tenant_id, max(last_sale_date) as as_of_date
    from {{ ref('dim_stores') }}
    group by tenant_id
{% endmacro %}
