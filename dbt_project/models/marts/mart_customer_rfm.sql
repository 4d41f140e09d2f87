-- Recency, frequency and monetary value per identified customer who bought at least once,
-- scored 1-5 within each tenant by cumulative distribution, so tied values share a score:
-- score = ceil(5 * cume_dist()). Recency is ordered so that the most recent buyers score 5.
-- Segments come from the documented R x F grid in the seed rfm_segment_map.
with orders as (
    select * from {{ ref('fct_orders') }}
),

tenant_as_of as (
    select tenant_id, max(order_date) as as_of_date
    from orders
    group by tenant_id
),

per_customer as (
    select
        tenant_id,
        customer_id,
        max(order_date) filter (where not is_return) as last_order_date,
        count(*) filter (where not is_return) as frequency,
        sum(net_amount) as monetary
    from orders
    where customer_id is not null
    group by tenant_id, customer_id
    having count(*) filter (where not is_return) > 0
),

measured as (
    select
        per_customer.tenant_id,
        per_customer.customer_id,
        tenant_as_of.as_of_date,
        per_customer.last_order_date,
        (tenant_as_of.as_of_date - per_customer.last_order_date) as recency_days,
        per_customer.frequency,
        per_customer.monetary
    from per_customer
    join tenant_as_of on tenant_as_of.tenant_id = per_customer.tenant_id
),

scored as (
    select
        measured.*,
        ceil(5 * cume_dist() over (
            partition by tenant_id order by recency_days desc))::int as r_score,
        ceil(5 * cume_dist() over (
            partition by tenant_id order by frequency))::int as f_score,
        ceil(5 * cume_dist() over (
            partition by tenant_id order by monetary))::int as m_score
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
    on segment_map.r_score = scored.r_score
   and segment_map.f_score = scored.f_score
