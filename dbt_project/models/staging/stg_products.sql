with current_products as (
    select
        products.*,
        row_number() over (
            partition by products.tenant_id, products.product_id
            order by products.source_file_id desc, products.source_line desc
        ) as recency_rank
    from {{ source('raw', 'products') }} as products
    join {{ source('raw', 'ingest_files') }} as files
        on
            products.source_file_id = files.file_id
            and files.status = 'loaded'
)

select
    tenant_id,
    product_id,
    nullif(trim(product_name), '') as product_name,
    nullif(trim(category), '') as category,
    list_price
from current_products
where recency_rank = 1
