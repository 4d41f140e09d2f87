{{
    config(
        pre_hook=[
            "set local work_mem = '256MB'",
            "set local enable_nestloop = off",
        ],
    )
}}

-- The planner's row estimates for the CTEs below are poor; with nested loops allowed it may
-- self-join the order items quadratically, so this model's transaction turns them off.

-- "Customers who bought X also bought Y": directed product pairs within a tenant's sale orders.
--   support    = orders with both / all orders
--   confidence = orders with both / orders with X
--   lift       = confidence / (orders with Y / all orders)
-- Only pairs sharing at least var('affinity_min_pair_orders') orders are kept, so products in
-- fewer orders than that are pruned before pairing. Orders with more than
-- var('affinity_max_basket_products') distinct products (wholesale, stock transfers) are left
-- out of pair counting: they say little about what goes together and, pairs growing with the
-- square of basket size, they would dominate the cost. They still count in `order_count`.
{% set min_pair_orders = var('affinity_min_pair_orders') %}
{% set max_basket = var('affinity_max_basket_products') %}

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
    select
        tenant_id,
        product_id,
        count(*) as product_order_count,
        -- integer keys make the self-join and grouping below much cheaper than text
        row_number() over (partition by tenant_id order by product_id) as product_key
    from order_products
    group by tenant_id, product_id
),

basket_sizes as (
    select tenant_id, store_id, order_id, count(*) as basket_products
    from order_products
    group by tenant_id, store_id, order_id
),

pairable as (
    select
        order_products.tenant_id,
        dense_rank() over (
            order by order_products.tenant_id, order_products.store_id, order_products.order_id
        ) as order_key,
        product_orders.product_key
    from order_products
    join product_orders
        on product_orders.tenant_id = order_products.tenant_id
       and product_orders.product_id = order_products.product_id
    join basket_sizes
        on basket_sizes.tenant_id = order_products.tenant_id
       and basket_sizes.store_id = order_products.store_id
       and basket_sizes.order_id = order_products.order_id
    where product_orders.product_order_count >= {{ min_pair_orders }}
      and basket_sizes.basket_products between 2 and {{ max_basket }}
),

unordered_pairs as (
    select
        first_item.tenant_id,
        first_item.product_key as key_a,
        second_item.product_key as key_b,
        count(*) as pair_order_count
    from pairable as first_item
    join pairable as second_item
        on second_item.order_key = first_item.order_key
       and second_item.product_key > first_item.product_key
    group by first_item.tenant_id, first_item.product_key, second_item.product_key
    having count(*) >= {{ min_pair_orders }}
),

directed_pairs as (
    select tenant_id, key_a as antecedent_key, key_b as consequent_key, pair_order_count
    from unordered_pairs
    union all
    select tenant_id, key_b, key_a, pair_order_count
    from unordered_pairs
),

measured as (
    select
        directed_pairs.tenant_id,
        antecedent.product_id,
        consequent.product_id as also_bought_product_id,
        directed_pairs.pair_order_count,
        antecedent.product_order_count,
        consequent.product_order_count as also_bought_order_count,
        tenant_orders.order_count,
        round(directed_pairs.pair_order_count::numeric / tenant_orders.order_count, 6)
            as support,
        round(directed_pairs.pair_order_count::numeric / antecedent.product_order_count, 6)
            as confidence,
        round((directed_pairs.pair_order_count::numeric / antecedent.product_order_count)
            / (consequent.product_order_count::numeric / tenant_orders.order_count), 6) as lift
    from directed_pairs
    join tenant_orders on tenant_orders.tenant_id = directed_pairs.tenant_id
    join product_orders as antecedent
        on antecedent.tenant_id = directed_pairs.tenant_id
       and antecedent.product_key = directed_pairs.antecedent_key
    join product_orders as consequent
        on consequent.tenant_id = directed_pairs.tenant_id
       and consequent.product_key = directed_pairs.consequent_key
)

select
    measured.*,
    row_number() over (
        partition by tenant_id, product_id
        order by lift desc, pair_order_count desc, also_bought_product_id
    ) as also_bought_rank
from measured
