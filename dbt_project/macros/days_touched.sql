{#- (tenant_id, day) pairs whose facts may have changed since `relation` last ran: days of
    lines that arrived in fct_sales_lines after its latest batch, and days of lines whose file
    version was replaced since then. Daily incremental models recompute exactly these days
    (written out as literal rows when they are few, see inline_small_set). -#}
{% macro days_touched(relation) %}
    {{ return(inline_small_set(days_touched_query(relation),
                               [['tenant_id', 'text'], ['day', 'date']])) }}
{% endmacro %}

{% macro days_touched_query(relation) %}
    select distinct tenant_id, order_date as day
    from {{ ref('fct_sales_lines') }}
    where batch_loaded_at > {{ watermark(relation) }}

    union

    {{ superseded_days(relation) }}
{% endmacro %}

{#- (tenant_id, day) of lines whose file version was replaced since `relation` last ran:
    their orders may have changed or vanished. -#}
{% macro superseded_days(relation) %}
    select distinct lines.tenant_id, (lines.ordered_at at time zone tenants.timezone)::date
    from {{ ref('stg_superseded_sales_lines') }} as lines
    join {{ ref('stg_tenants') }} as tenants
        on tenants.tenant_id = lines.tenant_id
    where lines.superseded_at > {{ watermark(relation) }}
{% endmacro %}
