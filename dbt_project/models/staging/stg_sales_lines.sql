-- Current, published sales lines: only rows of files whose ledger status is `loaded` (a
-- re-exported file supersedes its previous version) and that are published (`published_at`:
-- the raw quality gate passed their batch, or a person released it).
-- Within a file, line keys are unique (ingestion quarantines duplicates); across files the
-- newest file wins, which fct_sales_lines applies as it loads (a cross-file anti-join here
-- would re-read every raw row on each incremental run).
with current_lines as (
    select lines.*
    from {{ source('raw', 'sales_lines') }} as lines
    join {{ source('raw', 'ingest_files') }} as files
        on
            lines.source_file_id = files.file_id
            and files.status = 'loaded'
            and files.published_at is not null
)

select
    tenant_id,
    store_id,
    order_id,
    line_number,
    ordered_at,
    product_id,
    nullif(trim(product_name), '') as product_name,
    quantity,
    unit_price,
    currency,
    nullif(trim(customer_id), '') as customer_id,
    country,
    coalesce(channel, 'unknown') as channel,
    is_return,
    source_file_id,
    source_line
from current_lines
