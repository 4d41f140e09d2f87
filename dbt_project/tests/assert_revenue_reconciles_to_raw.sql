{{ config(meta={'dagster': {'ref': {'name': 'mart_daily_store_kpis'}}}) }}
-- Net revenue in the marts equals the current raw lines, per tenant, to the cent. Computed
-- straight from raw (not through staging) so a bug in the models cannot hide itself.
with current_raw as (
    select distinct on (lines.tenant_id, lines.store_id, lines.order_id, lines.line_number)
        lines.tenant_id,
        lines.quantity * lines.unit_price as amount
    from {{ source('raw', 'sales_lines') }} as lines
    join {{ source('raw', 'ingest_files') }} as files
        on files.file_id = lines.source_file_id and files.status = 'loaded'
    order by lines.tenant_id, lines.store_id, lines.order_id, lines.line_number,
             lines.source_file_id desc
),

raw_totals as (
    select tenant_id, round(sum(amount), 2) as net_revenue
    from current_raw
    group by tenant_id
),

mart_totals as (
    select tenant_id, round(sum(net_revenue), 2) as net_revenue
    from {{ ref('mart_daily_store_kpis') }}
    group by tenant_id
)

select raw_totals.tenant_id, raw_totals.net_revenue as raw_net, mart_totals.net_revenue as mart_net
from raw_totals
full outer join mart_totals on mart_totals.tenant_id = raw_totals.tenant_id
where abs(coalesce(raw_totals.net_revenue, 0) - coalesce(mart_totals.net_revenue, 0)) >= 0.01
