with products as (
    select * from {{ ref('int_products') }}
),

sales as (
    select
        tenant_id,
        product_id,
        min(order_date) as first_sold_on,
        max(order_date) as last_sold_on,
        sum(quantity) filter (where not is_return) as units_sold,
        -sum(quantity) filter (where is_return) as units_returned,
        sum(gross_amount) - sum(return_amount) as net_revenue
    from {{ ref('fct_sales_lines') }}
    group by tenant_id, product_id
)

select
    products.tenant_id,
    products.product_id,
    products.product_name,
    products.category,
    products.list_price,
    products.is_catalogued,
    sales.first_sold_on,
    sales.last_sold_on,
    coalesce(sales.units_sold, 0) as units_sold,
    coalesce(sales.units_returned, 0) as units_returned,
    coalesce(sales.net_revenue, 0) as net_revenue
from products
left join sales
    on sales.tenant_id = products.tenant_id
   and sales.product_id = products.product_id
