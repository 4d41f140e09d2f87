-- Every product a tenant sells: catalogue attributes where loaded, else the most recent name
-- seen on a sales line.
with catalogued as (
    select tenant_id, product_id, product_name, category, list_price
    from {{ ref('stg_products') }}
),

named_in_sales as (
    select distinct on (tenant_id, product_id)
        tenant_id,
        product_id,
        product_name
    from {{ ref('stg_sales_lines') }}
    order by tenant_id, product_id, (product_name is null), ordered_at desc
)

select
    coalesce(catalogued.tenant_id, named_in_sales.tenant_id) as tenant_id,
    coalesce(catalogued.product_id, named_in_sales.product_id) as product_id,
    coalesce(catalogued.product_name, named_in_sales.product_name) as product_name,
    catalogued.category,
    catalogued.list_price,
    catalogued.product_id is not null as is_catalogued
from catalogued
full outer join named_in_sales
    on named_in_sales.tenant_id = catalogued.tenant_id
   and named_in_sales.product_id = catalogued.product_id
