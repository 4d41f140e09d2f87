-- Closed days are zero rows, never missing: each store has one row per day of its span.
with spans as (
    select
        tenant_id,
        store_id,
        min(day) as first_day,
        max(day) as last_day,
        count(*) as days
    from {{ ref('mart_daily_store_kpis') }}
    group by tenant_id, store_id
)

select *
from spans
where days <> (last_day - first_day + 1)
