{{
    config(
        materialized='incremental',
        unique_key=['tenant_id', 'store_id', 'order_id'],
        post_hook=[
            "analyze {{ this }}",
            "{{ delete_orders_without_lines() }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, store_id, order_id)",
            "{{ watermark_index() }}",
            "create index if not exists {{ this.name }}_day on {{ this }} (tenant_id, order_date)",
            "create index if not exists {{ this.name }}_customer on {{ this }} (tenant_id, customer_id) where customer_id is not null",
        ],
    )
}}

-- One row per order (sale or return). Incremental: orders touched by lines that arrived in
-- fct_sales_lines since this table last ran are recomputed from all of their lines (a day's
-- orders are few: inline_small_set lets the planner see that and use the key index).
-- watermark(this) compiles to a literal, `'2026-10-31 08:00:00+00'::timestamptz`, looked
-- up when the model runs; inline_small_set to literal rows, `('tenant', ...), ...`.
-- Its post-hook (delete_orders_without_lines) reads stg_superseded_sales_lines; dbt does
-- not see refs in hooks when it parses, so this comment carries the dependency.
-- depends_on: {{ ref('stg_superseded_sales_lines') }}
{% if is_incremental() %}
{% set touched_orders_query %}
    select distinct tenant_id, store_id, order_id
    from {{ ref('fct_sales_lines') }}
    where batch_loaded_at > {{ watermark(this) }}
{% endset %}
{% endif %}

with order_lines as (
    select lines.*
    from {{ ref('fct_sales_lines') }} as lines
    {% if is_incremental() %}
    join ({{ inline_small_set(touched_orders_query,
                              [['tenant_id', 'text'], ['store_id', 'text'], ['order_id', 'text']],
                              max_rows=20000) }}) as touched_orders
        on
            lines.tenant_id = touched_orders.tenant_id
            and lines.store_id = touched_orders.store_id
            and lines.order_id = touched_orders.order_id
    {% endif %}
)

select
    tenant_id,
    store_id,
    order_id,
    min(ordered_at) as ordered_at,
    min(order_date) as order_date,
    min(customer_id) as customer_id,
    bool_and(is_guest) as is_guest,
    bool_or(is_return) as is_return,
    count(*) as line_count,
    sum(quantity) as units,
    sum(gross_amount) as gross_amount,
    sum(return_amount) as return_amount,
    sum(gross_amount) - sum(return_amount) as net_amount,
    min(currency) as currency,
    max(batch_loaded_at) as batch_loaded_at
from order_lines
group by tenant_id, store_id, order_id
