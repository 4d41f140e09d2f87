-- Line items with the tenant's local calendar day and signed money columns. Day boundaries
-- follow the tenant's time zone: a sale at 23:30 in New York belongs to that New York day.
with lines as (
    select * from {{ ref('stg_sales_lines') }}
),

tenants as (
    select
        tenant_id,
        timezone
    from {{ ref('stg_tenants') }}
)

select
    lines.tenant_id,
    lines.store_id,
    lines.order_id,
    lines.line_number,
    lines.ordered_at,
    (lines.ordered_at at time zone tenants.timezone)::date as order_date,
    lines.product_id,
    lines.product_name,
    lines.customer_id,
    lines.customer_id is null as is_guest,
    lines.is_return,
    lines.quantity,
    lines.unit_price,
    round(lines.quantity * lines.unit_price, 4) as line_amount,
    case when lines.is_return then 0 else round(lines.quantity * lines.unit_price, 4) end
        as gross_amount,
    case when lines.is_return then round(-lines.quantity * lines.unit_price, 4) else 0 end
        as return_amount,
    lines.currency,
    lines.channel,
    lines.country,
    lines.source_file_id,
    lines.source_line
from lines
join tenants on lines.tenant_id = tenants.tenant_id
