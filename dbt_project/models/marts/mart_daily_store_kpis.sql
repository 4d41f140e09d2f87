{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'store_id', 'day'],
        post_hook=[
            "analyze {{ this }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, store_id, day)",
            "{{ watermark_index() }}",
        ],
    )
}}

-- inline_small_set runs its query when the model runs and compiles to literal rows,
-- a values list, `('tenant', '2026-10-31'::date), ...`, when few keys changed (else to the
-- query itself): given literals, the planner sees how few they are and uses the index.
-- dbt parses a model with is_incremental() false, so the refs inside its incremental
-- branch (superseded_days: stg_tenants, stg_superseded_sales_lines)
-- are never seen then: ref() cannot carry them, these comments do.
-- depends_on: {{ ref('stg_tenants') }}
-- depends_on: {{ ref('stg_superseded_sales_lines') }}
-- One row per tenant, store and local day, from the store's first sale to the tenant's latest
-- day, including days with no sales (zeros: a closed day is data). Incremental: days from the
-- earliest day touched by new orders onwards are recomputed, for every store of that tenant.
{% if is_incremental() %}
{% set changed_from_query %}
    with touched_days as (
        select tenant_id, order_date as day
        from {{ ref('fct_orders') }}
        where batch_loaded_at > {{ watermark(this) }}

        union all

        -- days whose orders may have disappeared with a replaced file version
        {{ superseded_days(this) }}
    )

    select tenant_id, min(day) as from_day
    from (
        select tenant_id, day from touched_days

        union all

        -- the day after the tenant's last day so far: days without any order between it and
        -- the new ones (a held batch, a closed weekend) get their zero rows too
        select this_mart.tenant_id, max(this_mart.day) + 1
        from {{ this }} as this_mart
        where this_mart.tenant_id in (select tenant_id from touched_days)
        group by this_mart.tenant_id
    ) as changed_days
    group by tenant_id
{% endset %}
{% endif %}

with changed_from as (
    {% if is_incremental() %}
    {{ inline_small_set(changed_from_query, [['tenant_id', 'text'], ['from_day', 'date']]) }}
    {% else %}
    select
        tenant_id,
        min(order_date) as from_day
    from {{ ref('fct_orders') }}
    group by tenant_id
    {% endif %}
),

-- Store spans and first purchases come from the dimensions, which already aggregate every
-- order (dim_customers incrementally): re-aggregating all orders here on every run cost more
-- than the touched days themselves.
tenant_last_day as (
    select
        tenant_id,
        as_of_date as last_day
    from ({{ tenant_as_of_dates() }}) as as_of
),

store_first_day as (
    select
        tenant_id,
        store_id,
        first_sale_date as first_day
    from {{ ref('dim_stores') }}
    where first_sale_date is not null
),

calendar as (
    select
        stores.tenant_id,
        stores.store_id,
        calendar_day::date as day
    from store_first_day as stores
    join tenant_last_day using (tenant_id)
    join changed_from using (tenant_id)
    cross join lateral generate_series(
        greatest(stores.first_day, changed_from.from_day),
        tenant_last_day.last_day,
        interval '1 day'
    ) as calendar_day
),

first_purchases as (
    select
        tenant_id,
        customer_id,
        first_order_date
    from {{ ref('dim_customers') }}
),

orders_in_window as (
    select
        orders.*,
        first_purchases.first_order_date = orders.order_date as is_first_purchase
    from {{ ref('fct_orders') }} as orders
    join changed_from
        on
            orders.tenant_id = changed_from.tenant_id
            and orders.order_date >= changed_from.from_day
    left join first_purchases
        on
            orders.tenant_id = first_purchases.tenant_id
            and orders.customer_id = first_purchases.customer_id
),

daily_totals as (
    select
        tenant_id,
        store_id,
        order_date as day,
        sum(gross_amount) as gross_revenue,
        sum(return_amount) as returns_amount,
        count(*) filter (where not is_return) as orders,
        count(*) filter (where is_return) as return_orders,
        count(*) filter (where not is_return and is_guest) as guest_orders,
        coalesce(sum(units) filter (where not is_return), 0) as units,
        count(distinct customer_id) filter (where not is_return) as customers,
        count(distinct customer_id) filter (where not is_return and is_first_purchase)
            as new_customers
    from orders_in_window
    group by tenant_id, store_id, order_date
)

select
    calendar.tenant_id,
    calendar.store_id,
    calendar.day,
    coalesce(daily_totals.gross_revenue, 0) as gross_revenue,
    coalesce(daily_totals.returns_amount, 0) as returns_amount,
    coalesce(daily_totals.gross_revenue, 0) - coalesce(daily_totals.returns_amount, 0)
        as net_revenue,
    coalesce(daily_totals.orders, 0) as orders,
    coalesce(daily_totals.return_orders, 0) as return_orders,
    coalesce(daily_totals.guest_orders, 0) as guest_orders,
    coalesce(daily_totals.units, 0) as units,
    coalesce(daily_totals.customers, 0) as customers,
    coalesce(daily_totals.new_customers, 0) as new_customers,
    coalesce(daily_totals.customers, 0) - coalesce(daily_totals.new_customers, 0)
        as returning_customers,
    round(daily_totals.gross_revenue / nullif(daily_totals.orders, 0), 4) as avg_order_value,
    coalesce(daily_totals.orders, 0) = 0 and coalesce(daily_totals.return_orders, 0) = 0
        as is_closed_day,
    extract(isodow from calendar.day)::int as iso_weekday,
    '{{ run_started_at }}'::timestamptz as batch_loaded_at
from calendar
left join daily_totals
    on
        calendar.tenant_id = daily_totals.tenant_id
        and calendar.store_id = daily_totals.store_id
        and calendar.day = daily_totals.day
