-- Every store a tenant has: its catalogue entry where one was loaded, else derived from sales.
with catalogued as (
    select tenant_id, store_id, store_name, city, country, opened_on
    from {{ ref('stg_stores') }}
),

seen_in_sales as (
    select tenant_id, store_id, min(country) as country
    from {{ ref('stg_sales_lines') }}
    group by tenant_id, store_id
)

select
    coalesce(catalogued.tenant_id, seen_in_sales.tenant_id) as tenant_id,
    coalesce(catalogued.store_id, seen_in_sales.store_id) as store_id,
    coalesce(catalogued.store_name, coalesce(catalogued.store_id, seen_in_sales.store_id))
        as store_name,
    catalogued.city,
    coalesce(catalogued.country, seen_in_sales.country) as country,
    catalogued.opened_on,
    catalogued.store_id is not null as is_catalogued
from catalogued
full outer join seen_in_sales
    on seen_in_sales.tenant_id = catalogued.tenant_id
   and seen_in_sales.store_id = catalogued.store_id
