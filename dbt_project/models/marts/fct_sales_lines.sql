{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'store_id', 'order_id', 'line_number'],
        on_schema_change='fail',
        post_hook=[
            "analyze {{ this }}",
            "delete from {{ this }} where source_file_id in (select file_id from {{ source('raw', 'ingest_files') }} where status = 'superseded')",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, store_id, order_id, line_number)",
            "create index if not exists {{ this.name }}_batch on {{ this }} (batch_loaded_at)",
            "create index if not exists {{ this.name }}_file on {{ this }} (source_file_id)",
        ],
    )
}}

-- One row per current sale or return line. Incremental: a run reads only lines from files
-- this table has not seen yet; a new version of a file replaces its lines (unique key), and
-- lines of superseded files are deleted after the run.
with new_lines as (
    select *
    from {{ ref('int_sales_lines_localized') }}
    {% if is_incremental() %}
    where source_file_id in (
        select files.file_id
        from {{ source('raw', 'ingest_files') }} as files
        where files.status = 'loaded'
          and files.target = 'sales_lines'
          and not exists (
              select 1 from {{ this }} as seen where seen.source_file_id = files.file_id
          )
    )
    {% endif %}
)

select
    tenant_id,
    store_id,
    order_id,
    line_number,
    ordered_at,
    order_date,
    product_id,
    product_name,
    customer_id,
    is_guest,
    is_return,
    quantity,
    unit_price,
    line_amount,
    gross_amount,
    return_amount,
    currency,
    channel,
    country,
    source_file_id,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from new_lines
