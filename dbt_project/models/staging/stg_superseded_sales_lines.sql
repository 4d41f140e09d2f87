-- Sales lines of file versions a newer version replaced: the orders, customers and days they
-- name may have changed or vanished since. stg_sales_lines holds the current lines; together
-- they split raw.sales_lines by the status of each line's file.
select
    lines.tenant_id,
    lines.store_id,
    lines.order_id,
    lines.ordered_at,
    nullif(trim(lines.customer_id), '') as customer_id,
    lines.source_file_id,
    files.superseded_at
from {{ source('raw', 'sales_lines') }} as lines
join {{ source('raw', 'ingest_files') }} as files
    on
        lines.source_file_id = files.file_id
        and files.status = 'superseded'
