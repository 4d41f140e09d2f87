{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'day'],
        pre_hook=[
            "set local work_mem = '256MB'",
            "{% if not is_incremental() %}set local enable_nestloop = off{% endif %}",
        ],
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
-- Unordered product pairs bought in the same sale order, counted per tenant and day, the
-- building block of mart_product_affinity (pair counts add up across days). Orders with more
-- than var('affinity_max_basket_products') distinct products (wholesale) are left out: they
-- say little about what goes together and, pairs growing with the square of basket size,
-- would dominate the cost. Nested loops are off for full builds, where the planner's CTE
-- estimates are poor; a daily run's few touched days want the index on fct_sales_lines.
{% set max_basket = var('affinity_max_basket_products') %}

with order_products as (
    select distinct
        lines.tenant_id,
        lines.store_id,
        lines.order_id,
        lines.order_date,
        lines.product_id
    from {{ ref('fct_sales_lines') }} as lines
    {% if is_incremental() %}
    join ({{ days_touched(this) }}) as touched
        on
            lines.tenant_id = touched.tenant_id
            and lines.order_date = touched.day
    {% endif %}
    where not lines.is_return
),

baskets as (
    select
        *,
        count(*) over (partition by tenant_id, store_id, order_id) as basket_products
    from order_products
),

pairable as (
    select * from baskets
    where basket_products between 2 and {{ max_basket }}
)

select
    first_item.tenant_id,
    first_item.order_date as day,
    first_item.product_id as product_a,
    second_item.product_id as product_b,
    count(*) as pair_orders,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from pairable as first_item
join pairable as second_item
    on
        first_item.tenant_id = second_item.tenant_id
        and first_item.store_id = second_item.store_id
        and first_item.order_id = second_item.order_id
        and first_item.product_id < second_item.product_id
group by
    first_item.tenant_id, first_item.order_date, first_item.product_id,
    second_item.product_id
