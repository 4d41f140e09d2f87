{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'store_id', 'order_id', 'line_number'],
        post_hook=[
            "analyze {{ this }}",
            "delete from {{ this }} where source_file_id in (select file_id from {{ ref('stg_ingest_files') }} where status = 'superseded')",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, store_id, order_id, line_number)",
            "{{ watermark_index() }}",
            "create index if not exists {{ this.name }}_file on {{ this }} (source_file_id)",
            "create index if not exists {{ this.name }}_day on {{ this }} (tenant_id, order_date)",
        ],
    )
}}

-- One row per current sale or return line: the deduplicated line items. Incremental: a run
-- reads only lines from files this table has not seen yet; when several files carry the same
-- line key the newest file wins, within the batch (distinct on) and against older rows (the
-- unique key), and lines of superseded files are deleted after the run.
-- The unseen-files lookup and the post-hook read the ledger; dbt does not see refs there
-- when it parses, so this comment carries the dependency.
-- depends_on: {{ ref('stg_ingest_files') }}
{% if is_incremental() and execute %}
{#- The files not yet in this table, looked up first and inlined as literals: the planner
    then reads just their rows through the BRIN index on raw.sales_lines.source_file_id,
    where a subquery would have it scan every raw row. -#}
{% set unseen = run_query(
    "select coalesce(string_agg(files.file_id::text, ', '), 'null') "
    ~ "from " ~ ref('stg_ingest_files') ~ " as files "
    ~ "where files.status = 'loaded' and files.published_at is not null "
    ~ "and files.target = 'sales_lines' "
    ~ "and not exists (select 1 from " ~ this ~ " as seen "
    ~ "where seen.source_file_id = files.file_id)") %}
{% set unseen_file_ids = unseen.columns[0].values()[0] %}
{% else %}
{% set unseen_file_ids = 'null' %}
{% endif %}

with new_lines as (
    select *
    from {{ ref('int_sales_lines_localized') }}
    {% if is_incremental() %}
    where source_file_id in ({{ unseen_file_ids }})
    {% endif %}
),

latest_lines as (
    select distinct on (tenant_id, store_id, order_id, line_number) *
    from new_lines
    order by
        tenant_id asc,
        store_id asc,
        order_id asc,
        line_number asc,
        source_file_id desc,
        source_line desc
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
from latest_lines
