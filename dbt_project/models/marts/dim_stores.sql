-- Every store a tenant has: its catalogue entry where one was loaded, else derived from sales.
with catalogued as (
    select * from {{ ref('stg_stores') }}
),

sales_span as (
    select
        tenant_id,
        store_id,
        min(order_date) as first_sale_date,
        max(order_date) as last_sale_date
    from {{ ref('fct_orders') }}
    group by tenant_id, store_id
),

tenants as (
    select
        tenant_id,
        timezone,
        currency,
        country_code
    from {{ ref('stg_tenants') }}
),

stores as (
    select
        coalesce(catalogued.tenant_id, sales_span.tenant_id) as tenant_id,
        coalesce(catalogued.store_id, sales_span.store_id) as store_id,
        catalogued.store_name,
        catalogued.city,
        catalogued.country,
        catalogued.opened_on,
        catalogued.store_id is not null as is_catalogued,
        sales_span.first_sale_date,
        sales_span.last_sale_date
    from catalogued
    full outer join sales_span
        on
            catalogued.tenant_id = sales_span.tenant_id
            and catalogued.store_id = sales_span.store_id
)

select
    stores.tenant_id,
    stores.store_id,
    coalesce(stores.store_name, stores.store_id) as store_name,
    stores.city,
    coalesce(stores.country, tenants.country_code) as country,
    stores.opened_on,
    stores.is_catalogued,
    tenants.timezone,
    tenants.currency,
    stores.first_sale_date,
    stores.last_sale_date
from stores
join tenants on stores.tenant_id = tenants.tenant_id
