{#- After a file version is replaced, an order that only the old version had has no lines left
    in fct_sales_lines. Only orders seen in superseded files can be affected, so only those are
    checked (a BRIN lookup on raw.sales_lines), keeping the hook cheap as history grows. -#}
{% macro delete_orders_without_lines() %}
delete from {{ this }} as orders
using (
    select distinct tenant_id, store_id, order_id
    from {{ ref('stg_superseded_sales_lines') }}
) as replaced
where orders.tenant_id = replaced.tenant_id
  and orders.store_id = replaced.store_id
  and orders.order_id = replaced.order_id
  and not exists (
      select 1
      from {{ ref('fct_sales_lines') }} as remaining
      where remaining.tenant_id = orders.tenant_id
        and remaining.store_id = orders.store_id
        and remaining.order_id = orders.order_id
  )
{% endmacro %}
