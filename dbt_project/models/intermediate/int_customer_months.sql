{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'activity_month'],
        post_hook=[
            "delete from {{ this }} where customer_id is null",
            "analyze {{ this }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, activity_month)",
            "{{ watermark_index() }}",
        ],
    )
}}

-- days_touched runs its query when the model runs and compiles to literal rows,
-- a values list, `('tenant', '2026-10-31'::date), ...`, when few keys changed (else to the
-- query itself): given literals, the planner sees how few they are and uses the index.
-- dbt parses a model with is_incremental() false, so the refs inside its incremental
-- branch (days_touched: fct_sales_lines, stg_tenants, stg_superseded_sales_lines)
-- are never seen then: ref() cannot carry them, these comments do.
-- depends_on: {{ ref('fct_sales_lines') }}
-- depends_on: {{ ref('stg_tenants') }}
-- depends_on: {{ ref('stg_superseded_sales_lines') }}
-- Which identified customers bought (sale orders) in which calendar month: the activity behind
-- the cohort mart, a tenth of the size of the orders it comes from. Incremental by month: the
-- months of days touched since the last run (new orders, replaced file versions) are rebuilt
-- whole from fct_orders, so a customer whose only order of a month vanished leaves it. Each
-- rebuilt month also yields a marker row without a customer: delete+insert clears the months
-- present in the new rows, and the marker makes a month present even when nobody is left in
-- it; the post-hook removes the markers.
with
{% if is_incremental() %}
touched_months as (
    select distinct
        tenant_id,
        date_trunc('month', day)::date as activity_month
    from ({{ days_touched(this) }}) as touched
),
{% endif %}

sale_orders as (
    select
        orders.tenant_id,
        orders.customer_id,
        orders.order_date
    from {{ ref('fct_orders') }} as orders
    {% if is_incremental() %}
    join touched_months
        on
            orders.tenant_id = touched_months.tenant_id
            and orders.order_date >= touched_months.activity_month
            and orders.order_date < (touched_months.activity_month + interval '1 month')::date
    {% endif %}
    where
        not orders.is_return
        and orders.customer_id is not null
)

select
    tenant_id,
    customer_id,
    date_trunc('month', order_date)::date as activity_month,
    count(*) as orders,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from sale_orders
group by tenant_id, customer_id, date_trunc('month', order_date)::date
{% if is_incremental() %}

union all

select
    tenant_id,
    null as customer_id,
    activity_month,
    0 as orders,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from touched_months
{% endif %}
