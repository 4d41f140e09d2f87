-- "Customers who bought X also bought Y": directed product pairs within a tenant's sale orders.
--   support    = orders with both / all orders
--   confidence = orders with both / orders with X
--   lift       = confidence / (orders with Y / all orders)
-- Only pairs sharing at least var('affinity_min_pair_orders') orders are kept; products
-- bought in fewer orders than that cannot form such a pair, so they are pruned first.
{% set min_pair_orders = var('affinity_min_pair_orders') %}

with order_products as (
    select distinct tenant_id, store_id, order_id, product_id
    from {{ ref('fct_sales_lines') }}
    where not is_return
),

tenant_orders as (
    select tenant_id, count(distinct (store_id, order_id)) as order_count
    from order_products
    group by tenant_id
),

product_orders as (
    select tenant_id, product_id, count(*) as product_order_count
    from order_products
    group by tenant_id, product_id
),

frequent_order_products as (
    select order_products.*
    from order_products
    join product_orders
        on product_orders.tenant_id = order_products.tenant_id
       and product_orders.product_id = order_products.product_id
    where product_orders.product_order_count >= {{ min_pair_orders }}
),

pairs as (
    select
        bought.tenant_id,
        bought.product_id,
        also.product_id as also_bought_product_id,
        count(*) as pair_order_count
    from frequent_order_products as bought
    join frequent_order_products as also
        on also.tenant_id = bought.tenant_id
       and also.store_id = bought.store_id
       and also.order_id = bought.order_id
       and also.product_id <> bought.product_id
    group by bought.tenant_id, bought.product_id, also.product_id
    having count(*) >= {{ min_pair_orders }}
),

measured as (
    select
        pairs.tenant_id,
        pairs.product_id,
        pairs.also_bought_product_id,
        pairs.pair_order_count,
        antecedent.product_order_count,
        consequent.product_order_count as also_bought_order_count,
        tenant_orders.order_count,
        round(pairs.pair_order_count::numeric / tenant_orders.order_count, 6) as support,
        round(pairs.pair_order_count::numeric / antecedent.product_order_count, 6) as confidence,
        round((pairs.pair_order_count::numeric / antecedent.product_order_count)
            / (consequent.product_order_count::numeric / tenant_orders.order_count), 6) as lift
    from pairs
    join tenant_orders on tenant_orders.tenant_id = pairs.tenant_id
    join product_orders as antecedent
        on antecedent.tenant_id = pairs.tenant_id
       and antecedent.product_id = pairs.product_id
    join product_orders as consequent
        on consequent.tenant_id = pairs.tenant_id
       and consequent.product_id = pairs.also_bought_product_id
)

select
    measured.*,
    row_number() over (
        partition by tenant_id, product_id
        order by lift desc, pair_order_count desc, also_bought_product_id
    ) as also_bought_rank
from measured
