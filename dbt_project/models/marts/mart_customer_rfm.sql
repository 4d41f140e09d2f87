-- Recency, frequency and monetary value per identified customer who bought at least once,
-- scored 1-5 within each tenant by rank (rank_score: tied values take the lowest position of
-- their group). Frequency suits retail, where most customers buy once: one order is F=1, and
-- repeat buyers are ranked among themselves into F=2..5. Segments come from the documented
-- R x F grid in the seed rfm_segment_map, every cell of which can occur.
with customers as (
    select * from {{ ref('dim_customers') }}
    where orders > 0
),

tenant_as_of as (
    {{ tenant_as_of_dates() }}
),

measured as (
    select
        customers.tenant_id,
        customers.customer_id,
        tenant_as_of.as_of_date,
        customers.last_order_date,
        (tenant_as_of.as_of_date - customers.last_order_date) as recency_days,
        customers.orders as frequency,
        customers.net_revenue as monetary
    from customers
    join tenant_as_of on customers.tenant_id = tenant_as_of.tenant_id
),

scored as (
    select
        measured.*,
        {{ rank_score(5, 'recency_days desc') }} as r_score,
        case
            when measured.frequency = 1 then 1
            else 1 + {{ rank_score(4, 'frequency', 'tenant_id, frequency = 1') }}
        end as f_score,
        {{ rank_score(5, 'monetary') }} as m_score
    from measured
)

select
    scored.tenant_id,
    scored.customer_id,
    scored.as_of_date,
    scored.last_order_date,
    scored.recency_days,
    scored.frequency,
    scored.monetary,
    scored.r_score,
    scored.f_score,
    scored.m_score,
    concat(scored.r_score, scored.f_score, scored.m_score) as rfm_code,
    segment_map.segment
from scored
join {{ ref('rfm_segment_map') }} as segment_map
    on
        scored.r_score = segment_map.r_score
        and scored.f_score = segment_map.f_score
