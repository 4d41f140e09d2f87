-- "Customers who bought X also bought Y": directed product pairs within a tenant's sale orders.
--   support    = orders with both / all orders
--   confidence = orders with both / orders with X
--   lift       = confidence / (orders with Y / all orders)
-- Pair counts come from fct_daily_product_pairs (which leaves out baskets larger than
-- var('affinity_max_basket_products')); only pairs sharing at least
-- var('affinity_min_pair_orders') orders are kept.
{% set min_pair_orders = var('affinity_min_pair_orders') %}

with unordered_pairs as (
    select
        tenant_id,
        product_a,
        product_b,
        sum(pair_orders) as pair_order_count
    from {{ ref('fct_daily_product_pairs') }}
    group by tenant_id, product_a, product_b
    having sum(pair_orders) >= {{ min_pair_orders }}
),

directed_pairs as (
    select
        tenant_id,
        product_a as product_id,
        product_b as also_bought_product_id,
        pair_order_count
    from unordered_pairs
    union all
    select
        tenant_id,
        product_b,
        product_a,
        pair_order_count
    from unordered_pairs
),

product_orders as (
    select
        tenant_id,
        product_id,
        sum(orders) as product_order_count
    from {{ ref('fct_daily_product_sales') }}
    group by tenant_id, product_id
),

tenant_orders as (
    select
        tenant_id,
        sum(orders) as order_count
    from {{ ref('mart_daily_store_kpis') }}
    group by tenant_id
),

measured as (
    select
        directed_pairs.tenant_id,
        directed_pairs.product_id,
        directed_pairs.also_bought_product_id,
        directed_pairs.pair_order_count,
        antecedent.product_order_count,
        consequent.product_order_count as also_bought_order_count,
        tenant_orders.order_count,
        round(directed_pairs.pair_order_count::numeric / tenant_orders.order_count, 6)
            as support,
        round(directed_pairs.pair_order_count::numeric / antecedent.product_order_count, 6)
            as confidence,
        round(
            (directed_pairs.pair_order_count::numeric / antecedent.product_order_count)
            / (consequent.product_order_count::numeric / tenant_orders.order_count), 6
        ) as lift
    from directed_pairs
    join tenant_orders on directed_pairs.tenant_id = tenant_orders.tenant_id
    join product_orders as antecedent
        on
            directed_pairs.tenant_id = antecedent.tenant_id
            and directed_pairs.product_id = antecedent.product_id
    join product_orders as consequent
        on
            directed_pairs.tenant_id = consequent.tenant_id
            and directed_pairs.also_bought_product_id = consequent.product_id
)

select
    measured.*,
    row_number() over (
        partition by measured.tenant_id, measured.product_id
        order by
            measured.lift desc, measured.pair_order_count desc, measured.also_bought_product_id asc
    ) as also_bought_rank
from measured
