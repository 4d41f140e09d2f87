-- Every product a tenant sells: catalogue attributes where loaded, else the latest name seen
-- on a sales line, with lifetime sales.
with catalogued as (
    select * from {{ ref('stg_products') }}
),

sales as (
    select
        tenant_id,
        product_id,
        min(day) as first_sold_on,
        max(day) as last_sold_on,
        sum(units_sold) as units_sold,
        sum(units_returned) as units_returned,
        sum(net_revenue) as net_revenue,
        max(day) filter (where product_name is not null) as last_named_on
    from {{ ref('fct_daily_product_sales') }}
    group by tenant_id, product_id
),

-- the name of each product's latest named day: one key lookup per product instead of
-- sorting every product-day by date
latest_names as (
    select
        sales.tenant_id,
        sales.product_id,
        product_days.product_name
    from sales
    join {{ ref('fct_daily_product_sales') }} as product_days
        on
            sales.tenant_id = product_days.tenant_id
            and sales.last_named_on = product_days.day
            and sales.product_id = product_days.product_id
)

select
    coalesce(catalogued.tenant_id, sales.tenant_id) as tenant_id,
    coalesce(catalogued.product_id, sales.product_id) as product_id,
    coalesce(
        catalogued.product_name, latest_names.product_name,
        coalesce(catalogued.product_id, sales.product_id)
    ) as product_name,
    catalogued.category,
    catalogued.list_price,
    catalogued.product_id is not null as is_catalogued,
    sales.first_sold_on,
    sales.last_sold_on,
    coalesce(sales.units_sold, 0) as units_sold,
    coalesce(sales.units_returned, 0) as units_returned,
    coalesce(sales.net_revenue, 0) as net_revenue
from catalogued
full outer join sales
    on
        catalogued.tenant_id = sales.tenant_id
        and catalogued.product_id = sales.product_id
left join latest_names
    on
        latest_names.tenant_id = coalesce(catalogued.tenant_id, sales.tenant_id)
        and latest_names.product_id = coalesce(catalogued.product_id, sales.product_id)
