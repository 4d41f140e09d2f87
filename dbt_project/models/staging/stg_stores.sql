with current_stores as (
    select
        stores.*,
        row_number() over (
            partition by stores.tenant_id, stores.store_id
            order by stores.source_file_id desc, stores.source_line desc
        ) as recency_rank
    from {{ source('raw', 'stores') }} as stores
    join {{ source('raw', 'ingest_files') }} as files
        on
            stores.source_file_id = files.file_id
            and files.status = 'loaded'
)

select
    tenant_id,
    store_id,
    nullif(trim(store_name), '') as store_name,
    nullif(trim(city), '') as city,
    country,
    opened_on
from current_stores
where recency_rank = 1
