-- Net revenue and orders over the last 7/30/90 days (as of the tenant's latest day), the same
-- for the period before, the change between them, and the least-squares slope per day.
-- Days without sales count as zero. The slope uses the closed form over x = 1..W, where the
-- sums of x and x^2 are known, so zero days need no rows:
--   slope = (W * sum(x*y) - sum(x) * sum(y)) / (W * sum(x^2) - sum(x)^2)
{% set windows = var('trend_windows') %}

with as_of as (
    {{ tenant_as_of_dates() }}
),

-- stores and products: only the days the widest window and the period before it reach
{% set sources = [('store', ref('mart_daily_store_kpis'), 'store_id'),
                  ('product', ref('fct_daily_product_sales'), 'product_id')] %}
all_days as (
    {% for grain, relation, entity in sources %}
    select
        entity_days.tenant_id,
        '{{ grain }}' as grain,
        entity_days.{{ entity }} as entity_id,
        entity_days.day,
        entity_days.net_revenue as revenue,
        entity_days.orders
    from {{ relation }} as entity_days
    join as_of on entity_days.tenant_id = as_of.tenant_id
    where entity_days.day > as_of.as_of_date - {{ 2 * (windows | max) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

windows as (
    select unnest(array[{{ windows | join(', ') }}]) as window_days
),

placed as (
    select
        all_days.*,
        windows.window_days,
        as_of.as_of_date,
        all_days.day > as_of.as_of_date - windows.window_days as is_current,
        -- x = 1 for the first day of the current window, W for the as-of day
        (all_days.day - (as_of.as_of_date - windows.window_days))::numeric as x
    from all_days
    join as_of on all_days.tenant_id = as_of.tenant_id
    cross join windows
    where
        all_days.day > as_of.as_of_date - 2 * windows.window_days
        and all_days.day <= as_of.as_of_date
),

summed as (
    select
        tenant_id,
        grain,
        entity_id,
        window_days,
        as_of_date,
        coalesce(sum(revenue) filter (where is_current), 0) as revenue,
        coalesce(sum(revenue) filter (where not is_current), 0) as previous_revenue,
        coalesce(sum(orders) filter (where is_current), 0) as orders,
        coalesce(sum(orders) filter (where not is_current), 0) as previous_orders,
        coalesce(sum(x * revenue) filter (where is_current), 0) as sum_xy_revenue,
        coalesce(sum(x * orders) filter (where is_current), 0) as sum_xy_orders
    from placed
    group by tenant_id, grain, entity_id, window_days, as_of_date
)

select
    tenant_id,
    grain,
    entity_id,
    window_days,
    as_of_date,
    revenue,
    previous_revenue,
    round((revenue - previous_revenue) / nullif(previous_revenue, 0), 4) as revenue_change_pct,
    orders,
    previous_orders,
    round((orders - previous_orders)::numeric / nullif(previous_orders, 0), 4)
        as orders_change_pct,
    {{ least_squares_slope('sum_xy_revenue', 'revenue', 'window_days') }}
        as revenue_slope_per_day,
    {{ least_squares_slope('sum_xy_orders', 'orders', 'window_days') }}
        as orders_slope_per_day
from summed
