{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'day'],
        on_schema_change='fail',
        post_hook=[
            "analyze {{ this }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, day)",
            "{{ watermark_index() }}",
        ],
    )
}}

-- depends_on: {{ ref('stg_tenants') }}
-- depends_on: {{ source('raw', 'sales_lines') }}
-- depends_on: {{ source('raw', 'ingest_files') }}
-- One row per tenant, product and local day with sales or returns. Incremental: the days
-- touched since the last run are recomputed whole (unique key: tenant and day).
with lines as (
    select lines.*
    from {{ ref('fct_sales_lines') }} as lines
    {% if is_incremental() %}
    join ({{ days_touched(this) }}) as touched
        on touched.tenant_id = lines.tenant_id
       and touched.day = lines.order_date
    {% endif %}
)

select
    tenant_id,
    product_id,
    order_date as day,
    -- the name on the latest line of the day; dim_products takes the latest day's
    (array_agg(product_name order by ordered_at desc)
        filter (where product_name is not null))[1] as product_name,
    coalesce(sum(quantity) filter (where not is_return), 0) as units_sold,
    coalesce(-sum(quantity) filter (where is_return), 0) as units_returned,
    sum(gross_amount) as gross_revenue,
    sum(return_amount) as returns_amount,
    sum(gross_amount) - sum(return_amount) as net_revenue,
    count(distinct (store_id, order_id)) filter (where not is_return) as orders,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from lines
group by tenant_id, product_id, order_date
