{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'store_id', 'order_id'],
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}set local enable_hashjoin = off{% endif %}",
        post_hook=[
            "analyze {{ this }}",
            "{{ delete_orders_without_lines() }}",
            "create index if not exists {{ this.name }}_key on {{ this }} (tenant_id, store_id, order_id)",
            "create index if not exists {{ this.name }}_batch on {{ this }} (batch_loaded_at)",
            "create index if not exists {{ this.name }}_customer on {{ this }} (tenant_id, customer_id) where customer_id is not null",
        ],
    )
}}

-- An incremental batch touches few orders, but the planner cannot see that through the batch
-- watermark and would hash all of fct_sales_lines, so the pre-hook makes it use the key index.
-- One row per order (sale or return). Incremental: orders touched by lines that arrived in
-- fct_sales_lines since this table last ran are recomputed from all of their lines.
with touched_orders as (
    select distinct tenant_id, store_id, order_id
    from {{ ref('fct_sales_lines') }}
    {% if is_incremental() %}
    where batch_loaded_at > (select coalesce(max(batch_loaded_at), '-infinity') from {{ this }})
    {% endif %}
),

order_lines as (
    select lines.*
    from {{ ref('fct_sales_lines') }} as lines
    {% if is_incremental() %}
    join touched_orders
        on touched_orders.tenant_id = lines.tenant_id
       and touched_orders.store_id = lines.store_id
       and touched_orders.order_id = lines.order_id
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
