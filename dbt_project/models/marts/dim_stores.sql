with stores as (
    select * from {{ ref('int_stores') }}
),

sales_span as (
    select tenant_id, store_id, min(order_date) as first_sale_date, max(order_date) as last_sale_date
    from {{ ref('fct_orders') }}
    group by tenant_id, store_id
),

tenants as (
    select tenant_id, timezone, currency from {{ ref('stg_tenants') }}
)

select
    stores.tenant_id,
    stores.store_id,
    stores.store_name,
    stores.city,
    stores.country,
    stores.opened_on,
    stores.is_catalogued,
    tenants.timezone,
    tenants.currency,
    sales_span.first_sale_date,
    sales_span.last_sale_date
from stores
join tenants on tenants.tenant_id = stores.tenant_id
left join sales_span
    on sales_span.tenant_id = stores.tenant_id
   and sales_span.store_id = stores.store_id
