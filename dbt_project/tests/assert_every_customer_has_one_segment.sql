{{ config(meta={'dagster': {'ref': {'name': 'mart_customer_rfm'}}}) }}
-- Every customer who bought at least once has exactly one RFM row with a segment.
with buyers as (
    select
        tenant_id,
        customer_id
    from {{ ref('dim_customers') }}
    where orders > 0
),

segmented as (
    select
        tenant_id,
        customer_id,
        count(*) as rows_found,
        count(segment) as segments
    from {{ ref('mart_customer_rfm') }}
    group by tenant_id, customer_id
)

select
    buyers.tenant_id,
    buyers.customer_id,
    segmented.rows_found,
    segmented.segments
from buyers
left join segmented using (tenant_id, customer_id)
where coalesce(segmented.rows_found, 0) <> 1 or coalesce(segmented.segments, 0) <> 1
