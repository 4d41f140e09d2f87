-- Current, deduplicated line items. A line is current when its file is the loaded version
-- (a re-exported file supersedes the old one); when two loaded files carry the same line key,
-- the newer file wins. The anti-join (not a window) lets incremental models push their
-- "new files only" filter down to raw.sales_lines.
with current_lines as (
    select lines.*
    from {{ source('raw', 'sales_lines') }} as lines
    join {{ source('raw', 'ingest_files') }} as files
        on files.file_id = lines.source_file_id
       and files.status = 'loaded'
),

latest_lines as (
    select *
    from current_lines as candidate
    where not exists (
        select 1
        from current_lines as newer
        where newer.tenant_id = candidate.tenant_id
          and newer.store_id = candidate.store_id
          and newer.order_id = candidate.order_id
          and newer.line_number = candidate.line_number
          and newer.source_file_id > candidate.source_file_id
    )
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
from latest_lines
