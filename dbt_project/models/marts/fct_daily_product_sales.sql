{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'day'],
        post_hook=[
            "analyze {{ this }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, day)",
            "{{ watermark_index() }}",
        ],
    )
}}

-- days_touched runs its query when the model runs and compiles to literal rows,
-- a values list, `('tenant', '2026-10-31'::date), ...`, when few keys changed (else to the
-- query itself): given literals, the planner sees how few they are and uses the index.
-- dbt parses a model with is_incremental() false, so the refs inside its incremental
-- branch (days_touched: stg_tenants, stg_superseded_sales_lines)
-- are never seen then: ref() cannot carry them, these comments do.
-- depends_on: {{ ref('stg_tenants') }}
-- depends_on: {{ ref('stg_superseded_sales_lines') }}
-- One row per tenant, product and local day with sales or returns. Incremental: the days
-- touched since the last run are recomputed whole (unique key: tenant and day).
with lines as (
    select lines.*
    from {{ ref('fct_sales_lines') }} as lines
    {% if is_incremental() %}
    join ({{ days_touched(this) }}) as touched
        on
            lines.tenant_id = touched.tenant_id
            and lines.order_date = touched.day
    {% endif %}
)

select
    tenant_id,
    product_id,
    order_date as day,
    -- the name on the latest line of the day; dim_products takes the latest day's
    (
        array_agg(product_name order by ordered_at desc)
        filter (where product_name is not null)
    )[1] as product_name,
    coalesce(sum(quantity) filter (where not is_return), 0) as units_sold,
    coalesce(-sum(quantity) filter (where is_return), 0) as units_returned,
    sum(gross_amount) as gross_revenue,
    sum(return_amount) as returns_amount,
    sum(gross_amount) - sum(return_amount) as net_revenue,
    -- an order is a (store, order id) pair, counted as a row; sqlfluff reads the row's
    -- parentheses as a misplaced function call's (ST08, LT01, LT06)
    count(distinct (store_id, order_id)) filter (where not is_return) as orders,  -- noqa
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from lines
group by tenant_id, product_id, order_date
