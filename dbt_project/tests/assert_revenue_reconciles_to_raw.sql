{{ config(meta={'dagster': {'ref': {'name': 'mart_daily_store_kpis'}}}) }}
-- Net revenue per tenant, store and day equals the current raw lines to the cent, computed
-- straight from raw (not through the models) so a model bug cannot hide itself. Checked for
-- the days the latest run recomputed (every day after a full refresh): each day is
-- reconciled whenever it changes, without re-reading all history on every run.
{% set first_checked_day %}
    select min(day) from {{ ref('mart_daily_store_kpis') }}
    where batch_loaded_at = (select max(batch_loaded_at) from {{ ref('mart_daily_store_kpis') }})
{% endset %}

with checked_days as (
    select
        kpis.tenant_id,
        kpis.store_id,
        kpis.day
    from {{ ref('mart_daily_store_kpis') }} as kpis
    where kpis.batch_loaded_at = (
        select max(latest.batch_loaded_at) from {{ ref('mart_daily_store_kpis') }} as latest
    )
),

recent_raw as (
    -- one literal bound (a day of slack for time zones): raw lines are appended in time
    -- order, so the BRIN index on ordered_at skips all older history
    select
        lines.tenant_id,
        lines.store_id,
        lines.order_id,
        lines.line_number,
        lines.source_file_id,
        lines.source_line,
        lines.ordered_at,
        lines.quantity * lines.unit_price as amount
    from {{ source('raw', 'sales_lines') }} as lines
    join {{ source('raw', 'ingest_files') }} as files
        on
            lines.source_file_id = files.file_id and files.status = 'loaded'
            and files.published_at is not null
    where lines.ordered_at >= {{ inline_value(first_checked_day, 'date') }} - interval '1 day'
),

latest_raw as (
    select distinct on (
        recent_raw.tenant_id, recent_raw.store_id, recent_raw.order_id,
        recent_raw.line_number)
        recent_raw.tenant_id,
        recent_raw.store_id,
        recent_raw.order_id,
        (recent_raw.ordered_at at time zone tenants.timezone)::date as line_day,
        recent_raw.amount
    from recent_raw
    join {{ source('ops', 'tenants') }} as tenants
        on recent_raw.tenant_id = tenants.tenant_id
    order by
        recent_raw.tenant_id asc, recent_raw.store_id asc, recent_raw.order_id asc,
        recent_raw.line_number asc, recent_raw.source_file_id desc, recent_raw.source_line desc
),

current_raw as (
    -- the marts count an order on its first day, so a line is attributed to its order's day
    select
        tenant_id,
        store_id,
        amount,
        min(line_day) over (partition by tenant_id, store_id, order_id) as day
    from latest_raw
),

raw_daily_totals as (
    -- aggregated before the join: joining millions of lines to the checked days on a
    -- window-computed day once made the planner compare every line with every day
    select
        tenant_id,
        store_id,
        day,
        round(sum(amount), 2) as net_revenue
    from current_raw
    group by tenant_id, store_id, day
),

raw_totals as (
    select raw_daily_totals.*
    from raw_daily_totals
    join checked_days using (tenant_id, store_id, day)
),

mart_totals as (
    select
        kpis.tenant_id,
        kpis.store_id,
        kpis.day,
        round(kpis.net_revenue, 2) as net_revenue
    from {{ ref('mart_daily_store_kpis') }} as kpis
    join checked_days using (tenant_id, store_id, day)
)

select
    coalesce(raw_totals.tenant_id, mart_totals.tenant_id) as tenant_id,
    coalesce(raw_totals.store_id, mart_totals.store_id) as store_id,
    coalesce(raw_totals.day, mart_totals.day) as day,
    raw_totals.net_revenue as raw_net,
    mart_totals.net_revenue as mart_net
from raw_totals
full outer join mart_totals using (tenant_id, store_id, day)
where abs(coalesce(raw_totals.net_revenue, 0) - coalesce(mart_totals.net_revenue, 0)) >= 0.01
