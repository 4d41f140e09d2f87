-- Identified customers only: guests have no id and are counted as guest orders in the facts.
with orders as (
    select * from {{ ref('fct_orders') }}
    where customer_id is not null
),

per_customer as (
    select
        tenant_id,
        customer_id,
        min(order_date) filter (where not is_return) as first_order_date,
        max(order_date) filter (where not is_return) as last_order_date,
        count(*) filter (where not is_return) as orders,
        count(*) filter (where is_return) as return_orders,
        sum(gross_amount) as gross_revenue,
        sum(return_amount) as returns_amount,
        sum(net_amount) as net_revenue
    from orders
    group by tenant_id, customer_id
),

home_store as (
    select distinct on (tenant_id, customer_id)
        tenant_id,
        customer_id,
        store_id
    from orders
    group by tenant_id, customer_id, store_id
    order by tenant_id, customer_id, count(*) desc, store_id
)

select
    per_customer.tenant_id,
    per_customer.customer_id,
    home_store.store_id as home_store_id,
    per_customer.first_order_date,
    per_customer.last_order_date,
    per_customer.orders,
    per_customer.return_orders,
    per_customer.gross_revenue,
    per_customer.returns_amount,
    per_customer.net_revenue,
    per_customer.orders > 1 as is_repeat_customer
from per_customer
join home_store
    on home_store.tenant_id = per_customer.tenant_id
   and home_store.customer_id = per_customer.customer_id
